/* tests/unit/util/test_gsm.c -- util/gsm.h: GSM-7 / UCS-2 choice, part counts at
 * the 160/153 and 70/67 boundaries, escape and surrogate pairs never split, decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/gsm.h"
#include "util/buf.h"

#define CYR   "\xD0\xB6"         /* U+0436, not in GSM-7: one UCS-2 unit */
#define EMOJI "\xF0\x9F\x98\x80" /* U+1F600: a surrogate pair, two units */
#define EURO  "\xE2\x82\xAC"     /* in the extension table: two septets */

/* n copies of s, as a new string (free it). */
static char *rep(const char *s, size_t n)
{
    cd_buf b = {0};
    for (size_t i = 0; i < n; i++)
        cd_buf_puts(&b, s);
    return cd_buf_take(&b);
}

static char *cat3(const char *a, const char *b, const char *c)
{
    cd_buf x = {0};
    cd_buf_puts(&x, a);
    cd_buf_puts(&x, b);
    cd_buf_puts(&x, c);
    return cd_buf_take(&x);
}

/* Encodes s (taken: freed here) and checks the coding and the part count. */
static void expect_parts(char *s, int coding, int nparts, cd_gsm_msg *out)
{
    cd_err err = {0};
    assert_int_equal(cd_gsm_parts(s), nparts);
    assert_int_equal(cd_gsm_encode(s, out, &err), 0);
    assert_int_equal(out->coding, coding);
    assert_int_equal(out->nparts, nparts);
    free(s);
}

static void test_ascii_is_gsm7(void **state)
{
    (void)state;
    cd_gsm_msg m;
    expect_parts(strdup("Hi @ $5_"), CD_GSM_CODING_GSM7, 1, &m);
    const unsigned char want[] = {'H', 'i', ' ', 0x00, ' ', 0x02, '5', 0x11};
    assert_int_equal(m.parts[0].len, sizeof want);
    assert_memory_equal(m.parts[0].data, want, sizeof want);
    cd_gsm_msg_free(&m);
    assert_null(m.parts);
}

static void test_extension_chars(void **state)
{
    (void)state;
    cd_gsm_msg m;
    expect_parts(strdup("{" EURO "}"), CD_GSM_CODING_GSM7, 1, &m);
    const unsigned char want[] = {0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29};
    assert_int_equal(m.parts[0].len, sizeof want);
    assert_memory_equal(m.parts[0].data, want, sizeof want);
    cd_gsm_msg_free(&m);
}

static void test_non_gsm_is_ucs2(void **state)
{
    (void)state;
    cd_gsm_msg m;
    /* A backtick has no septet: the whole message goes UCS-2. */
    expect_parts(strdup("a`"), CD_GSM_CODING_UCS2, 1, &m);
    const unsigned char want[] = {0x00, 'a', 0x00, '`'};
    assert_memory_equal(m.parts[0].data, want, sizeof want);
    cd_gsm_msg_free(&m);
}

static void test_gsm7_boundaries(void **state)
{
    (void)state;
    cd_gsm_msg m;
    expect_parts(rep("a", 160), CD_GSM_CODING_GSM7, 1, &m);
    assert_int_equal(m.parts[0].len, 160);
    cd_gsm_msg_free(&m);
    expect_parts(rep("a", 161), CD_GSM_CODING_GSM7, 2, &m);
    assert_int_equal(m.parts[0].len, 153);
    assert_int_equal(m.parts[1].len, 8);
    cd_gsm_msg_free(&m);
    expect_parts(rep("a", 306), CD_GSM_CODING_GSM7, 2, &m);
    cd_gsm_msg_free(&m);
    expect_parts(rep("a", 307), CD_GSM_CODING_GSM7, 3, &m);
    cd_gsm_msg_free(&m);
}

static void test_ucs2_boundaries(void **state)
{
    (void)state;
    cd_gsm_msg m;
    expect_parts(rep(CYR, 70), CD_GSM_CODING_UCS2, 1, &m);
    assert_int_equal(m.parts[0].len, 140);
    cd_gsm_msg_free(&m);
    expect_parts(rep(CYR, 71), CD_GSM_CODING_UCS2, 2, &m);
    assert_int_equal(m.parts[0].len, 134);
    assert_int_equal(m.parts[1].len, 8);
    cd_gsm_msg_free(&m);
    expect_parts(rep(CYR, 134), CD_GSM_CODING_UCS2, 2, &m);
    cd_gsm_msg_free(&m);
    expect_parts(rep(CYR, 135), CD_GSM_CODING_UCS2, 3, &m);
    cd_gsm_msg_free(&m);
}

/* An escape pair counts two septets in the single-message limit too. */
static void test_extension_at_single_limit(void **state)
{
    (void)state;
    cd_gsm_msg m;
    char *a = rep("a", 158);
    expect_parts(cat3(a, EURO, ""), CD_GSM_CODING_GSM7, 1, &m); /* 160 septets */
    cd_gsm_msg_free(&m);
    free(a);
    a = rep("a", 159);
    expect_parts(cat3(a, EURO, ""), CD_GSM_CODING_GSM7, 2, &m); /* 161 */
    assert_int_equal(m.parts[0].len, 153);
    const unsigned char tail[] = {'a', 'a', 'a', 'a', 'a', 'a', 0x1B, 0x65};
    assert_int_equal(m.parts[1].len, sizeof tail);
    assert_memory_equal(m.parts[1].data, tail, sizeof tail);
    cd_gsm_msg_free(&m);
    free(a);
}

/* 152 septets + an escape pair would be 154 > 153: the pair moves whole to part 2. */
static void test_extension_not_split(void **state)
{
    (void)state;
    cd_gsm_msg m;
    char *a = rep("a", 152), *b = rep("b", 10);
    expect_parts(cat3(a, EURO, b), CD_GSM_CODING_GSM7, 2, &m);
    assert_int_equal(m.parts[0].len, 152);
    assert_int_equal(m.parts[0].data[151], 'a');
    assert_int_equal(m.parts[1].len, 12);
    assert_int_equal(m.parts[1].data[0], 0x1B);
    assert_int_equal(m.parts[1].data[1], 0x65);
    cd_gsm_msg_free(&m);
    free(a);
    free(b);
}

static void test_surrogate_pair_not_split(void **state)
{
    (void)state;
    cd_gsm_msg m;
    char *a = rep(CYR, 66), *b = rep(CYR, 10);
    /* 66 + 2 > 67: the emoji opens part 2 rather than being cut in half. */
    expect_parts(cat3(a, EMOJI, b), CD_GSM_CODING_UCS2, 2, &m);
    assert_int_equal(m.parts[0].len, 132);
    const unsigned char pair[] = {0xD8, 0x3D, 0xDE, 0x00};
    assert_memory_equal(m.parts[1].data, pair, sizeof pair);
    assert_int_equal(m.parts[1].len, 4 + 20);
    cd_gsm_msg_free(&m);
    free(a);
    free(b);
    a = rep(CYR, 68);
    expect_parts(cat3(a, EMOJI, ""), CD_GSM_CODING_UCS2, 1, &m); /* 70 units: fits */
    cd_gsm_msg_free(&m);
    free(a);
    a = rep(CYR, 69);
    expect_parts(cat3(a, EMOJI, ""), CD_GSM_CODING_UCS2, 2, &m); /* 71 units */
    assert_int_equal(m.parts[0].len, 134);
    assert_int_equal(m.parts[1].len, 8);
    cd_gsm_msg_free(&m);
    free(a);
}

static void test_max_parts(void **state)
{
    (void)state;
    cd_gsm_msg m;
    cd_err err = {0};
    expect_parts(rep("a", 153 * 255), CD_GSM_CODING_GSM7, 255, &m);
    cd_gsm_msg_free(&m);
    char *s = rep("a", 153 * 255 + 1);
    assert_true(cd_gsm_parts(s) > CD_GSM_MAX_PARTS);
    assert_int_equal(cd_gsm_encode(s, &m, &err), -1);
    assert_int_equal(err.code, CD_ELIMIT);
    assert_int_equal(m.nparts, 0);
    cd_gsm_msg_free(&m);
    free(s);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\xC3",             /* truncated */
        "ok\xC3(",          /* bad continuation */
        "\xC0\xAF",         /* overlong '/' */
        "\xE0\x80\xAF",     /* overlong, 3 bytes */
        "\xED\xA0\x80",     /* a surrogate */
        "\xF4\x90\x80\x80", /* past U+10FFFF */
        "\xFF",
        "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cd_gsm_msg m;
        cd_err err = {0};
        assert_int_equal(cd_gsm_parts(bad[i]), -1);
        assert_int_equal(cd_gsm_encode(bad[i], &m, &err), -1);
        assert_int_equal(err.code, CD_EINVAL);
        cd_gsm_msg_free(&m);
    }
    assert_int_equal(cd_gsm_parts(NULL), -1);
}

static void test_empty(void **state)
{
    (void)state;
    cd_gsm_msg m;
    cd_err err = {0};
    assert_int_equal(cd_gsm_parts(""), 0);
    assert_int_equal(cd_gsm_encode("", &m, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    cd_gsm_msg_free(&m);
    cd_gsm_msg_free(NULL);
}

/* Encodes s, decodes every part, joins them: must give s back. */
static void round_trip(const char *s, int coding)
{
    cd_gsm_msg m;
    cd_err err = {0};
    cd_buf joined = {0};
    assert_int_equal(cd_gsm_encode(s, &m, &err), 0);
    assert_int_equal(m.coding, coding);
    for (int i = 0; i < m.nparts; i++) {
        char *d = cd_gsm_decode(m.parts[i].data, m.parts[i].len, m.coding);
        assert_non_null(d);
        cd_buf_puts(&joined, d);
        free(d);
    }
    assert_string_equal(joined.data, s);
    cd_buf_free(&joined);
    cd_gsm_msg_free(&m);
}

static void test_round_trips(void **state)
{
    (void)state;
    /* The whole default alphabet (bar the escape) and the extension table. */
    round_trip("@\xC2\xA3$\xC2\xA5\xC3\xA8\xC3\xA9\xC3\xB9\xC3\xAC\xC3\xB2\xC3\x87\n"
               "\xC3\x98\xC3\xB8\r\xC3\x85\xC3\xA5\xCE\x94_\xCE\xA6\xCE\x93\xCE\x9B\xCE\xA9"
               "\xCE\xA0\xCE\xA8\xCE\xA3\xCE\x98\xCE\x9E\xC3\x86\xC3\xA6\xC3\x9F\xC3\x89"
               " !\"#\xC2\xA4%&'()*+,-./0123456789:;<=>?\xC2\xA1"
               "ABCDEFGHIJKLMNOPQRSTUVWXYZ\xC3\x84\xC3\x96\xC3\x91\xC3\x9C\xC2\xA7\xC2\xBF"
               "abcdefghijklmnopqrstuvwxyz\xC3\xA4\xC3\xB6\xC3\xB1\xC3\xBC\xC3\xA0"
               "^{}\\[~]|" EURO "\f",
               CD_GSM_CODING_GSM7);
    round_trip("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 " EMOJI
               " \xE4\xB8\x96\xE7\x95\x8C",
               CD_GSM_CODING_UCS2);
    char *long_gsm = rep("Reply STOP to end. {" EURO "} ", 40);
    round_trip(long_gsm, CD_GSM_CODING_GSM7);
    free(long_gsm);
    char *long_ucs = rep(EMOJI CYR "x", 50);
    round_trip(long_ucs, CD_GSM_CODING_UCS2);
    free(long_ucs);
}

static void expect_decode(const void *data, size_t len, int coding, const char *want)
{
    char *got = cd_gsm_decode(data, len, coding);
    if (want == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_decode_codings(void **state)
{
    (void)state;
    expect_decode("\xE9t\xE9", 3, CD_GSM_CODING_LATIN1, "\xC3\xA9t\xC3\xA9");
    expect_decode("STOP\xE9", 5, CD_GSM_CODING_ASCII, "STOP\xEF\xBF\xBD");
    expect_decode("\x00S\x00T", 4, CD_GSM_CODING_UCS2, "ST");
    expect_decode("\xD8\x3D\xDE\x00", 4, CD_GSM_CODING_UCS2, EMOJI);
    expect_decode("\xD8\x3D\x00x", 4, CD_GSM_CODING_UCS2, "\xEF\xBF\xBDx"); /* lone high */
    expect_decode("\x00x\x00", 3, CD_GSM_CODING_UCS2, "x");                 /* odd byte dropped */
    expect_decode("\x00\x02", 2, CD_GSM_CODING_GSM7, "@$");
    expect_decode("\x1B\x65\x1B", 3, CD_GSM_CODING_GSM7, EURO " "); /* trailing escape */
    expect_decode("\x1B\x41", 2, CD_GSM_CODING_GSM7, "A");          /* unknown extension: base */
    expect_decode("Hi", 2, 0xF0, "Hi");                             /* GSM-7, class 0 */
    expect_decode("", 0, CD_GSM_CODING_GSM7, "");
    expect_decode("\x00\x00", 2, CD_GSM_CODING_LATIN1, ""); /* NULs dropped */
    expect_decode("\x01\x02", 2, 4, NULL);                  /* binary */
    expect_decode("\x01\x02", 2, 2, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_is_gsm7),
        cmocka_unit_test(test_extension_chars),
        cmocka_unit_test(test_non_gsm_is_ucs2),
        cmocka_unit_test(test_gsm7_boundaries),
        cmocka_unit_test(test_ucs2_boundaries),
        cmocka_unit_test(test_extension_at_single_limit),
        cmocka_unit_test(test_extension_not_split),
        cmocka_unit_test(test_surrogate_pair_not_split),
        cmocka_unit_test(test_max_parts),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_decode_codings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
