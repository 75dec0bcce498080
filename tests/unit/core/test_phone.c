/* tests/unit/core/test_phone.c -- core/phone.h: normalisation tables (DESIGN.md section 2:
 * one contact per E.164 number, validity is isValidNumber, not "possible"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/phone.h"

/* A case expects `want` as E.164, or a failure with reason `reason` when want is NULL. */
struct norm_case {
    const char *raw;
    const char *region;
    const char *want;
    const char *reason;
};

#define INVALID "invalid_phone"

static const struct norm_case norm_cases[] = {
    /* DESIGN.md section 2: ProTexting, Octopush and native spellings of one contact. */
    {"16465550123", "US", "+16465550123", NULL},
    {"+16465550123", "US", "+16465550123", NULL},
    {"+1 (646) 555-0123", "US", "+16465550123", NULL},
    {"(646) 555-0123", "US", "+16465550123", NULL},
    {"646.555.0123", "US", "+16465550123", NULL},
    {"646-555-0123", "US", "+16465550123", NULL},
    {"  646 555 0123\t", "US", "+16465550123", NULL},
    {"(646) 555-0123", NULL, "+16465550123", NULL}, /* NULL region means US */
    {"(646) 555-0123", "us", "+16465550123", NULL}, /* regions are case-insensitive */
    {"(646) 555-0123", "CA", "+16465550123", NULL}, /* NANP regions share +1 */
    /* No-break spaces, as pasted from a web page; octal, since "\xa0646" is one escape. */
    {"+1\302\240646\302\240555\302\2400123", "US", "+16465550123", NULL},
    {"\xef\xbc\x8b\xef\xbc\x91 646 555 0123", "US", "+16465550123", NULL}, /* fullwidth +1 */
    {"+1 800 555 0199", "US", "+18005550199", NULL},      /* toll-free numbers can text */
    {"011 33 6 12 34 56 78", "US", "+33612345678", NULL}, /* US international prefix */
    {"+33 6 12 34 56 78", "US", "+33612345678", NULL},
    /* France: mobiles start with 6 or 7; 00 is the international prefix. */
    {"33612345678", "FR", "+33612345678", NULL},
    {"+33612345678", "FR", "+33612345678", NULL},
    {"06 12 34 56 78", "FR", "+33612345678", NULL},
    {"06.12.34.56.78", "FR", "+33612345678", NULL},
    {"0033 6 12 34 56 78", "FR", "+33612345678", NULL},
    {"0049 151 23456789", "FR", "+4915123456789", NULL},
    /* United Kingdom. */
    {"07400 123456", "GB", "+447400123456", NULL},
    {"+44 7400 123456", "GB", "+447400123456", NULL},
    {"0044 7400 123456", "GB", "+447400123456", NULL},
    {"+44 (0)7400 123456", "GB", "+447400123456", NULL},
    /* Germany. */
    {"01512 3456789", "DE", "+4915123456789", NULL},
    {"+49 1512 3456789", "DE", "+4915123456789", NULL},
    {"0033 6 12 34 56 78", "DE", "+33612345678", NULL},

    /* The seed's example: an exchange code cannot start with 1 in NANP. */
    {"16461234567", "US", NULL, INVALID},
    {"+1 646 123 4567", "US", NULL, INVALID},
    {"0033612345678", "US", NULL, INVALID},  /* 00 is not the US international prefix */
    {"1-900-555-0123", "US", NULL, INVALID}, /* premium rate */
    {"01 45 45 45 45", "FR", NULL, INVALID}, /* landline */
    {"33145454545", "FR", NULL, INVALID},    /* landline, country code without "+" */
    {"020 7946 0018", "GB", NULL, INVALID},  /* landline */
    {"0740012345", "GB", NULL, INVALID},     /* one digit short */
    {"030 123456", "DE", NULL, INVALID},     /* landline */
    {"123", "US", NULL, INVALID},
    {"+1 646 555 0123 4567 8901 234", "US", NULL, INVALID},
    {"1234567890123456789012345678901234567890123456789012345678901234567890", "US", NULL, INVALID},
    {"", "US", NULL, INVALID},
    {NULL, "US", NULL, INVALID},
    {"   ", "US", NULL, INVALID},
    {"()- .", "US", NULL, INVALID},
    {"1-800-FLOWERS", "US", NULL, INVALID},
    {"646 555 0123 ext 12", "US", NULL, INVALID},
    {"646 555 0123 x12", "US", NULL, INVALID},
    {"tel:+1-646-555-0123", "US", NULL, INVALID},
    /* libphonenumber would drop this trailing letter without a word. */
    {"+1 646 555 0123\xc3\xa9", "US", NULL, INVALID},
    {"+1 646 555 \xff\xfe", "US", NULL, INVALID}, /* not UTF-8 */
    {"+1 646 555 \xc0\xb0", "US", NULL, INVALID}, /* overlong encoding of '0' */
    {"+1 646 555 0123\n", "US", NULL, INVALID},

    /* Regions libphonenumber does not know. */
    {"+1 646 555 0123", "ZZ", NULL, "invalid_region"},
    {"+1 646 555 0123", "USA", NULL, "invalid_region"},
    {"+1 646 555 0123", "", NULL, "invalid_region"},
};

/* True when rc/out/err are what `c` expects. */
static int norm_matches(const struct norm_case *c, int rc, const char *out, const cd_err *err)
{
    if (c->want != NULL)
        return rc == 0 && strcmp(out, c->want) == 0;
    return rc == -1 && err->code == CD_EINVAL && strcmp(cd_err_reason(err), c->reason) == 0 &&
           out[0] == '\0' && err->msg[0] != '\0';
}

static void test_normalize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        const struct norm_case *c = &norm_cases[i];
        char out[CD_PHONE_MAX];
        cd_err err = {0};
        int rc = cd_phone_normalize(c->raw, c->region, "PhoneNumber", out, &err);

        if (!norm_matches(c, rc, out, &err)) {
            /* Name the row, since a bare assert in a loop does not. */
            print_error("case %zu: \"%s\" (%s): want %s, got rc %d \"%s\" %s: %s\n", i,
                        c->raw ? c->raw : "(null)", c->region ? c->region : "(null)",
                        c->want ? c->want : c->reason, rc, out, err.reason, err.msg);
            fail();
        }
    }
}

static void test_normalize_error_fields(void **state)
{
    char out[CD_PHONE_MAX];
    cd_err err = {0};
    (void)state;

    assert_int_equal(cd_phone_normalize("16461234567", "US", "PhoneNumber", out, &err), -1);
    assert_string_equal(err.field, "PhoneNumber");
    assert_string_equal(err.reason, "invalid_phone");

    assert_int_equal(cd_phone_normalize("+16465550123", "XX", "PhoneNumber", out, &err), -1);
    assert_string_equal(err.field, "region");

    /* A NULL err and a NULL field are allowed. */
    assert_int_equal(cd_phone_normalize("16461234567", "US", NULL, out, NULL), -1);
    memset(&err, 0, sizeof err);
    assert_int_equal(cd_phone_normalize("", "US", NULL, out, &err), -1);
    assert_string_equal(err.field, "");
}

/* 64 bytes are accepted (if they hold a number), 65 are not, whatever they hold. */
static void test_normalize_length_limit(void **state)
{
    char raw[80];
    char out[CD_PHONE_MAX];
    (void)state;

    memset(raw, ' ', sizeof raw);
    memcpy(raw, "+16465550123", 12);
    raw[64] = '\0';
    assert_int_equal(cd_phone_normalize(raw, "US", "phone", out, NULL), 0);
    assert_string_equal(out, "+16465550123");
    raw[64] = ' ';
    raw[65] = '\0';
    assert_int_equal(cd_phone_normalize(raw, "US", "phone", out, NULL), -1);
}

struct parts_case {
    int cc;
    const char *national;
    const char *want; /* NULL = invalid_phone */
};

static const struct parts_case parts_cases[] = {
    {1, "6465550123", "+16465550123"},
    {1, "(646) 555-0123", "+16465550123"},
    {1, "16465550123", "+16465550123"}, /* the trunk prefix 1 */
    {33, "612345678", "+33612345678"},
    {33, "06 12 34 56 78", "+33612345678"}, /* the trunk prefix 0 */
    {33, "33612345678", "+33612345678"},    /* the country code repeated */
    {44, "7400 123456", "+447400123456"},
    {49, "1512 3456789", "+4915123456789"},
    {1, "6461234567", NULL},
    {1, "9005550123", NULL}, /* premium rate */
    {33, "145454545", NULL}, /* landline */
    {49, "30 123456", NULL}, /* landline */
    {1, "+16465550123", NULL},
    {1, "646555012a", NULL},
    {1, "", NULL},
    {1, NULL, NULL},
    {0, "6465550123", NULL},
    {-1, "6465550123", NULL},
    {999, "6465550123", NULL},
    {100000, "6465550123", NULL},
};

static void test_from_parts_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parts_cases / sizeof parts_cases[0]; i++) {
        const struct parts_case *c = &parts_cases[i];
        char out[CD_PHONE_MAX];
        cd_err err = {0};
        int rc = cd_phone_from_parts(c->cc, c->national, "PhoneNumber", out, &err);
        int ok = c->want != NULL ? rc == 0 && strcmp(out, c->want) == 0
                                 : rc == -1 && err.code == CD_EINVAL &&
                                       strcmp(err.reason, "invalid_phone") == 0 &&
                                       strcmp(err.field, "PhoneNumber") == 0 && out[0] == '\0';

        if (!ok) {
            print_error("case %zu: %d \"%s\": want %s, got rc %d \"%s\" %s: %s\n", i, c->cc,
                        c->national ? c->national : "(null)", c->want ? c->want : "failure", rc,
                        out, err.reason, err.msg);
            fail();
        }
    }
}

static void test_region_valid(void **state)
{
    (void)state;
    assert_true(cd_phone_region_valid("US"));
    assert_true(cd_phone_region_valid("FR"));
    assert_true(cd_phone_region_valid("gb"));
    assert_true(cd_phone_region_valid("De"));
    assert_false(cd_phone_region_valid("ZZ"));
    assert_false(cd_phone_region_valid("XX"));
    assert_false(cd_phone_region_valid("001"));
    assert_false(cd_phone_region_valid("USA"));
    assert_false(cd_phone_region_valid("U1"));
    assert_false(cd_phone_region_valid(""));
    assert_false(cd_phone_region_valid(NULL));
}

/* issue 16: the spelling readers look up before normalising. It is syntax only: numbers
 * that look canonical but are not valid pass it, and cd_phone_normalize() still refuses
 * them (the lookup of such a spelling misses, since only valid numbers are stored). */
static void test_is_canonical(void **state)
{
    static const char *yes[] = {
        "+16465550123", "+33612345678", "+390612345678", "+123456789012345", "+15550000000",
        "+99912345",    "+12"};
    static const char *no[] = {NULL,
                               "",
                               "+",
                               "16465550123",
                               "+06465550123",
                               "+1 646 555 0123",
                               "+1(646)5550123",
                               "+16465550123 ",
                               "+1234567890123456",
                               "++16465550123",
                               "+1646555012x",
                               "\357\274\21316465550123"};
    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(cd_phone_is_canonical(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(cd_phone_is_canonical(no[i]));
    /* canonical spellings that are no valid number: normalising still refuses them */
    static const char *invalid[] = {"+15550000000", "+99912345",     "+12",
                                    "+1646555012",  "+164655501234", "+123456789012345"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char out[CD_PHONE_MAX];
        assert_true(cd_phone_is_canonical(invalid[i]));
        assert_int_not_equal(cd_phone_normalize(invalid[i], "US", "phone", out, NULL), 0);
    }
}

/* phone.h promises that any thread may normalise once cd_phone_init() has run. */
static void *normalize_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        char out[CD_PHONE_MAX];
        const struct norm_case *c = &norm_cases[i % (sizeof norm_cases / sizeof norm_cases[0])];
        int rc = cd_phone_normalize(c->raw, c->region, "phone", out, NULL);
        if ((rc == 0) != (c->want != NULL) || (rc == 0 && strcmp(out, c->want) != 0))
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    (void)state;

    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, normalize_many, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        void *res = (void *)1;
        assert_int_equal(pthread_join(t[i], &res), 0);
        assert_null(res);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_error_fields),
        cmocka_unit_test(test_normalize_length_limit),
        cmocka_unit_test(test_from_parts_table),
        cmocka_unit_test(test_region_valid),
        cmocka_unit_test(test_is_canonical),
        cmocka_unit_test(test_threads),
    };

    cd_phone_init();
    cd_phone_init(); /* idempotent */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
