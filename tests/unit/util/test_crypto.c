/* tests/unit/util/test_crypto.c -- util/crypto.h (hashes, HMAC, randomness, constant-time
 * compares: known vectors from FIPS 180-2 and RFC 4231) and util/timeutil.h (RFC 3339). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/crypto.h"
#include "util/timeutil.h"

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state)
{
    char out[CD_SHA256_HEX];
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    (void)state;

    cd_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cd_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cd_sha256_hex(two_blocks, strlen(two_blocks), out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* A NULL pointer with no bytes is the empty message. */
    cd_sha256_hex(NULL, 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_million_a(void **state)
{
    char out[CD_SHA256_HEX];
    char *a = malloc(1000000);
    (void)state;

    assert_non_null(a);
    memset(a, 'a', 1000000);
    cd_sha256_hex(a, 1000000, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* issues 11, 12: cd_sha256_hex (OpenSSL, by the CPU's SHA extensions where it has them)
 * against libsodium's portable SHA-256, for every length across the padding's
 * one-block/two-block edge and a few blocks more. */
static void test_sha256_fast_matches_portable(void **state)
{
    unsigned char data[300], ref[32];
    char got[CD_SHA256_HEX], want[CD_SHA256_HEX];
    (void)state;
    randombytes_buf(data, sizeof data);
    for (size_t len = 0; len <= sizeof data; len++) {
        crypto_hash_sha256(ref, data, len);
        sodium_bin2hex(want, sizeof want, ref, sizeof ref);
        cd_sha256_hex(data, len, got);
        assert_string_equal(got, want);
    }
}

/* Binary input: the length counts, not the first NUL. */
static void test_sha256_binary(void **state)
{
    char a[CD_SHA256_HEX], b[CD_SHA256_HEX];
    (void)state;

    cd_sha256_hex("a\0b", 3, a);
    cd_sha256_hex("a", 1, b);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
}

/* ---- HMAC-SHA256 (RFC 4231) ---- */

static void test_hmac_rfc4231(void **state)
{
    char out[CD_SHA256_HEX];
    unsigned char key1[20], key6[131];
    const char *data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    (void)state;

    /* Test case 2: a short key. */
    cd_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* Test case 1. */
    memset(key1, 0x0b, sizeof key1);
    cd_hmac_sha256_hex(key1, sizeof key1, "Hi There", 8, out);
    assert_string_equal(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* Test case 6: a key longer than the block is hashed first. */
    memset(key6, 0xaa, sizeof key6);
    cd_hmac_sha256_hex(key6, sizeof key6, data6, strlen(data6), out);
    assert_string_equal(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_hmac_key_matters(void **state)
{
    char a[CD_SHA256_HEX], b[CD_SHA256_HEX];
    (void)state;

    cd_hmac_sha256_hex("k1", 2, "body", 4, a);
    cd_hmac_sha256_hex("k2", 2, "body", 4, b);
    assert_string_not_equal(a, b);
    cd_hmac_sha256_hex("k1", 2, "body!", 5, b);
    assert_string_not_equal(a, b);
}

/* ---- randomness ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_random_hex(void **state)
{
    enum { COUNT = 1000 };
    char(*seen)[33] = calloc(COUNT, sizeof *seen);
    (void)state;

    assert_non_null(seen);
    for (int i = 0; i < COUNT; i++) {
        cd_random_hex(seen[i], 16);
        assert_int_equal(strlen(seen[i]), 32);
        assert_int_equal(strspn(seen[i], "0123456789abcdef"), 32);
    }
    qsort(seen, COUNT, sizeof *seen, cmp_str);
    for (int i = 1; i < COUNT; i++)
        assert_string_not_equal(seen[i - 1], seen[i]);
    free(seen);
}

static void test_random_hex_lengths(void **state)
{
    char out[130];
    (void)state;

    for (size_t n = 0; n <= 64; n++) {
        memset(out, 'X', sizeof out);
        cd_random_hex(out, n);
        assert_int_equal(strlen(out), 2 * n);
        assert_int_equal(strspn(out, "0123456789abcdef"), 2 * n);
    }
}

static void test_random_token(void **state)
{
    char a[64], b[64];
    const char *urlsafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (void)state;

    cd_random_token(a, sizeof a, 32);
    cd_random_token(b, sizeof b, 32);
    assert_int_equal(strlen(a), 43); /* 32 bytes, base64url without padding */
    assert_int_equal(strspn(a, urlsafe), 43);
    assert_string_not_equal(a, b);
}

// RFC 9562 section 5.7: 48 bits of unix ms, version 7, variant 10, the rest random; the
// RFC's own example time (2022-02-22 19:22:22 UTC = 0x017F22E279B0 ms) leads the id.
static void test_uuid_v7(void **state)
{
    (void)state;
    char a[CD_UUID_LEN], b[CD_UUID_LEN], c[CD_UUID_LEN];
    cd_uuid_v7(a, 0x017F22E279B0LL);
    assert_int_equal(strlen(a), 36);
    assert_memory_equal(a, "017f22e2-79b0-7", 15);
    assert_non_null(strchr("89ab", a[19]));
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    cd_uuid_v7(b, 0x017F22E279B0LL);
    assert_string_not_equal(a, b); /* the random part differs */
    cd_uuid_v7(c, 0x017F22E279B1LL);
    assert_true(strcmp(a, c) < 0 && strcmp(b, c) < 0); /* later sorts later */
}

static void test_ct_equal(void **state)
{
    unsigned char x[32], y[32];
    (void)state;

    memset(x, 0x5a, sizeof x);
    memcpy(y, x, sizeof y);
    assert_true(cd_ct_equal(x, y, sizeof x));
    y[0] ^= 1;
    assert_false(cd_ct_equal(x, y, sizeof x));
    y[0] ^= 1;
    y[31] ^= 0x80;
    assert_false(cd_ct_equal(x, y, sizeof x));
    assert_true(cd_ct_equal(x, y, 31)); /* only `len` bytes are compared */
    assert_true(cd_ct_equal("", "", 0));
    assert_true(cd_ct_equal("abc", "abd", 2));
    assert_false(cd_ct_equal("abc", "abd", 3));
}

/* ---- time ---- */

#define T_2026_11_23 1795392000000LL             /* 2026-11-23T00:00:00Z */
#define T_181254     (T_2026_11_23 + 65574000LL) /* 2026-11-23T18:12:54Z */

static void test_time_format(void **state)
{
    char out[CD_TIME_LEN];
    (void)state;

    cd_time_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    cd_time_format(T_181254 + 123, out);
    assert_string_equal(out, "2026-11-23T18:12:54.123Z");
    cd_time_format(T_181254 + 7, out);
    assert_string_equal(out, "2026-11-23T18:12:54.007Z");
    cd_time_format(951782400000LL, out); /* a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
}

struct parse_case {
    const char *text;
    int64_t want;
};

static const struct parse_case parse_cases[] = {
    {"2026-11-23T18:12:54Z", T_181254},
    {"2026-11-23T18:12:54.123Z", T_181254 + 123},
    {"2026-11-23T18:12:54.5Z", T_181254 + 500},
    {"2026-11-23T18:12:54.12Z", T_181254 + 120},
    {"2026-11-23T18:12:54.123456789Z", T_181254 + 123}, /* below a millisecond: dropped */
    {"2026-11-23T18:12:54.000Z", T_181254},
    {"2026-11-23t18:12:54z", T_181254},
    {"2026-11-23 18:12:54Z", T_181254},
    {"2026-11-23T20:12:54+02:00", T_181254},
    {"2026-11-23T20:12:54.250+02:00", T_181254 + 250},
    {"2026-11-23T13:12:54-05:00", T_181254},
    {"2026-11-23T23:42:54+05:30", T_181254},
    {"2026-11-23T18:12:54+00:00", T_181254},
    {"2026-11-23T18:12:54-00:00", T_181254},
    {"2026-11-24T01:12:54+07:00", T_181254}, /* the offset crosses midnight */
    {"2026-11-23", T_2026_11_23},
    {"1970-01-01T00:00:00Z", 0},
    {"2000-02-29T00:00:00Z", 951782400000LL},
    {"1969-12-31T23:59:59Z", -1000},
};

static void test_time_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        int64_t ms = -42;
        int rc = cd_time_parse(parse_cases[i].text, &ms);

        if (rc != 0 || ms != parse_cases[i].want) {
            print_error("\"%s\": want %lld, got rc %d %lld\n", parse_cases[i].text,
                        (long long)parse_cases[i].want, rc, (long long)ms);
            fail();
        }
    }
}

static const char *const bad_times[] = {
    "2026-13-01",
    "2026-00-10",
    "2026-11-00",
    "2026-11-32",
    "2026-11-23T25:00:00Z",
    "2026-11-23T24:00:00Z",
    "2026-11-23T10:60:00Z",
    "2026-11-23T10:00:61Z",
    "garbage",
    "",
    "2026-11-23T10:00:00", /* no zone: ambiguous */
    "2026-11-23T10:00Z",   /* no seconds */
    "2026-11-23T10:00:00.Z",
    "2026-11-23T10:00:00+0200",
    "2026-11-23T10:00:00+02",
    "2026-11-23T10:00:00 Z",
    "2026-11-23T10:00:00Zjunk",
    "2026-11-23T10:00:00+02:00x",
    "2026-11-23T",
    "2026-11-23 ",
    "2026-11-3",
    "26-11-23",
    "2026/11/23",
    "20261123",
    "-2026-11-23",
    "2026-11-23T1:00:00Z",
};

static void test_time_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        int64_t ms = 0;
        if (cd_time_parse(bad_times[i], &ms) != -1) {
            print_error("\"%s\" was accepted as %lld\n", bad_times[i], (long long)ms);
            fail();
        }
    }
    int64_t ms = 0;
    assert_int_equal(cd_time_parse(NULL, &ms), -1);
}

/* What cd_time_format writes, cd_time_parse reads back exactly. */
static void test_time_round_trip(void **state)
{
    static const int64_t values[] = {0,
                                     1,
                                     999,
                                     1000,
                                     T_181254,
                                     T_181254 + 1,
                                     T_181254 + 999,
                                     951782400000LL + 86399999,
                                     4102444799999LL};
    (void)state;

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char text[CD_TIME_LEN];
        int64_t back = -1;
        cd_time_format(values[i], text);
        assert_int_equal(cd_time_parse(text, &back), 0);
        assert_int_equal(back, values[i]);
    }
    /* And a parsed, non-UTC time formats as UTC. */
    int64_t ms;
    char text[CD_TIME_LEN];
    assert_int_equal(cd_time_parse("2026-11-23T20:12:54.5+02:00", &ms), 0);
    cd_time_format(ms, text);
    assert_string_equal(text, "2026-11-23T18:12:54.500Z");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = cd_now_ms();
    assert_true(now > T_2026_11_23 - 366LL * 86400000 * 5); /* sanity: after 2021 */
    int64_t a = cd_monotonic_us(), b = cd_monotonic_us();
    assert_true(b >= a);
}

/* Regression (found by these tests, fixed): cd_time_parse accepts days that do not exist in their
 * month and silently normalises them (timegm): "2026-02-30" reads as 2026-03-02. contact.c relies
 * on it to validate birthdays, so {"birthday":"2026-02-31"} is stored as given. */
static void test_time_parse_nonexistent_day(void **state)
{
    static const char *const days[] = {"2026-02-29", "2026-02-30", "2026-04-31",
                                       "2026-02-29T10:00:00Z"};
    (void)state;
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        int64_t ms = 0;
        if (cd_time_parse(days[i], &ms) != -1) {
            char back[CD_TIME_LEN];
            cd_time_format(ms, back);
            print_error("\"%s\" was accepted as %s\n", days[i], back);
            fail();
        }
    }
}

/* Regression (found by these tests, fixed): offsets are not range-checked: "+99:99" (RFC 3339:
 * hours 00-23, minutes 00-59) is accepted and shifts the time by 100 h 39 min. */
static void test_time_parse_offset_range(void **state)
{
    static const char *const bad[] = {"2026-11-23T10:00:00+99:99", "2026-11-23T10:00:00+24:00",
                                      "2026-11-23T10:00:00-00:60"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 0;
        if (cd_time_parse(bad[i], &ms) != -1) {
            print_error("\"%s\" was accepted as %lld\n", bad[i], (long long)ms);
            fail();
        }
    }
}

/* Regression (found by these tests, fixed): cd_time_format of a time before 1970 that is not a
 * whole second prints a negative millisecond field: -500 gives "1970-01-01T00:00:00.-500Z", not
 * "1969-12-31T23:59:59.500Z" (C division truncates toward zero). cd_time_parse produces such
 * values from "1969-12-31T23:59:59.5Z". */
static void test_time_format_before_epoch(void **state)
{
    char out[CD_TIME_LEN];
    int64_t ms = 0;
    (void)state;
    assert_int_equal(cd_time_parse("1969-12-31T23:59:59.5Z", &ms), 0);
    assert_int_equal(ms, -500);
    cd_time_format(ms, out);
    assert_string_equal(out, "1969-12-31T23:59:59.500Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_uuid_v7),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_binary),
        cmocka_unit_test(test_sha256_fast_matches_portable),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_key_matters),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_random_hex_lengths),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_parse_invalid),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_time_parse_nonexistent_day),
        cmocka_unit_test(test_time_parse_offset_range),
        cmocka_unit_test(test_time_format_before_epoch),
    };

    if (cd_crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
