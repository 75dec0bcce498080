/* tests/unit/core/test_phone_fast.c -- issue 16: the number type that core/phone_shim.cc
 * works out itself for +1 numbers (its own metadata copy and reused ICU matchers) is the
 * one libphonenumber's GetNumberType() gives, for every kind of +1 number. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "core/phone.h"

int cd_phone__nanp_type(unsigned long long national, int *slow);

static unsigned long long rng = 88172645463325252ull;

static unsigned long long next(void)
{
    rng ^= rng << 13; /* xorshift64: the same numbers on every run */
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int checked, unknown;

static void same(unsigned long long national)
{
    int slow = -2;
    int fast = cd_phone__nanp_type(national, &slow);
    if (fast != slow)
        fail_msg("+1 %llu: fast type %d, libphonenumber %d", national, fast, slow);
    checked++;
    unknown += slow == 11; /* PhoneNumberUtil::UNKNOWN */
}

/* Every area code (valid, unassigned, N11, toll-free, premium, Caribbean and Canadian ones),
 * with random, 555 fiction-block and 0/1-led exchanges. */
static void test_every_area_code(void **state)
{
    (void)state;
    for (unsigned npa = 200; npa <= 999; npa++) {
        for (int i = 0; i < 24; i++) {
            unsigned nxx = (unsigned)(next() % 1000), line = (unsigned)(next() % 10000);
            if (i == 0)
                nxx = 555, line = 100 + (unsigned)(next() % 100);
            if (i == 1)
                nxx = (unsigned)(next() % 200); /* 0xx, 1xx: never valid */
            if (i == 2)
                nxx = 211 + 100 * (unsigned)(next() % 8); /* N11 */
            same((unsigned long long)npa * 10000000ull + nxx * 10000ull + line);
        }
    }
    printf("# %d numbers, %d of them invalid\n", checked, unknown);
    assert_true(unknown > 0 && unknown < checked);
}

/* What Parse() may hand over for +1 too: any length from 1 to 15 digits. */
static void test_other_lengths(void **state)
{
    (void)state;
    for (int digits = 1; digits <= 15; digits++) {
        unsigned long long lo = 1;
        for (int d = 1; d < digits; d++)
            lo *= 10;
        for (int i = 0; i < 300; i++)
            same(lo + next() % (lo * 9));
    }
}

/* Both paths give the same answers through cd_phone_normalize too. */
static void test_normalize(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int ok;
    } cases[] = {{"+12125550123", 0},  {"+16465550123", 0},  {"+15550000000", -1},
                 {"+18005550100", 0},  {"+19005550100", -1}, {"+14165550123", 0},
                 {"+12685550123", -1}, {"+12684641234", 0},  {"+18092345678", 0},
                 {"+12115550123", -1}, {"+11125550123", -1}, {"+12120550123", -1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CD_PHONE_MAX];
        cd_err err;
        int rc = cd_phone_normalize(cases[i].raw, NULL, "phone", out, &err);
        int slow = -2;
        (void)cd_phone__nanp_type(strtoull(cases[i].raw + 2, NULL, 10), &slow);
        printf("# %s: %d (library type %d)\n", cases[i].raw, rc, slow);
        if (rc != cases[i].ok)
            fail_msg("%s: %d", cases[i].raw, rc);
    }
}

int main(void)
{
    cd_phone_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_area_code),
        cmocka_unit_test(test_other_lengths),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
