/* tests/unit/http/test_form.c -- issue 9 part 4: form-encoded bodies as JSON objects
 * (http/form.h), edge cases included. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/form.h"

/* Parses s and compares the result, dumped compactly with sorted keys, with `want`. */
static void expect_form(const char *s, const char *want)
{
    json_t *o = NULL;
    cd_err err = {0};
    int rc = cd_form_parse(s, strlen(s), 100, &o, &err);
    if (rc != 0)
        fail_msg("%s: %s", s, err.msg);
    char *got = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, want);
    free(got);
    json_decref(o);
}

/* Parses s, expects a refusal with reason invalid_form and a message containing `why`. */
static void expect_refused(const char *s, size_t max, const char *why)
{
    json_t *o = (json_t *)1;
    cd_err err = {0};
    assert_int_equal(cd_form_parse(s, strlen(s), max, &o, &err), -1);
    assert_null(o);
    assert_int_equal(err.code, CD_EINVAL);
    assert_string_equal(cd_err_reason(&err), "invalid_form");
    if (strstr(err.msg, why) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", s, err.msg, why);
}

static void test_scalars(void **state)
{
    (void)state;
    expect_form("", "{}");
    expect_form("a=1&b=two", "{\"a\":\"1\",\"b\":\"two\"}");
    expect_form("Name=Ann+Lee&Phone=%2B33612345678",
                "{\"Name\":\"Ann Lee\",\"Phone\":\"+33612345678\"}");
    /* empty values, a name without '=', and empty fields */
    expect_form("a=&b", "{\"a\":\"\",\"b\":\"\"}");
    expect_form("&a=1&&b=2&", "{\"a\":\"1\",\"b\":\"2\"}");
    /* '=' inside a value, escapes in names, UTF-8 */
    expect_form("q=a%3Db=c", "{\"q\":\"a=b=c\"}");
    expect_form("x=a=b", "{\"x\":\"a=b\"}");
    expect_form("na%6De=%C3%A9t%c3%a9", "{\"name\":\"\xC3\xA9t\xC3\xA9\"}");
    /* a literal '+' is sent as %2B; a space may be %20 too */
    expect_form("s=1%2B1+%20=2", "{\"s\":\"1+1  =2\"}");
}

static void test_arrays(void **state)
{
    (void)state;
    expect_form("GroupIds[]=1&GroupIds[]=2", "{\"GroupIds\":[\"1\",\"2\"]}");
    expect_form("GroupIds%5B%5D=7", "{\"GroupIds\":[\"7\"]}"); /* brackets escaped */
    expect_form("a[]=&a[]=x&b=1", "{\"a\":[\"\",\"x\"],\"b\":\"1\"}");
    expect_form("a[]", "{\"a\":[\"\"]}");
    /* only a trailing "[]" makes a list */
    expect_form("a[0]=x&a[k]=y", "{\"a[0]\":\"x\",\"a[k]\":\"y\"}");
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("a=1&a=2", 100, "more than once");   /* repeated without [] */
    expect_refused("a=1&a[]=2", 100, "both");           /* a value, then a list */
    expect_refused("a[]=1&a=2", 100, "more than once"); /* a list, then a value */
    expect_refused("a=%G1", 100, "bad %-escape");
    expect_refused("a=%4", 100, "bad %-escape");
    expect_refused("a=%", 100, "bad %-escape");
    expect_refused("a%=1", 100, "bad %-escape");
    expect_refused("a=x%00y", 100, "NUL");
    expect_refused("a=%FF", 100, "UTF-8");
    expect_refused("a=%C0%AF", 100, "UTF-8");    /* overlong '/' */
    expect_refused("a=%ED%A0%80", 100, "UTF-8"); /* a surrogate */
    expect_refused("%FF=1", 100, "UTF-8");
    expect_refused("=1", 100, "no name");
    expect_refused("[]=1", 100, "no name");
    expect_refused("a=1&b=2&c=3", 2, "more than 2 fields");
    /* empty fields do not count against the limit */
    json_t *o = NULL;
    cd_err err = {0};
    assert_int_equal(cd_form_parse("a=1&&&b=2", 9, 2, &o, &err), 0);
    json_decref(o);
}

/* The body is not NUL-terminated where the parser stops: only len bytes count. */
static void test_length_bound(void **state)
{
    (void)state;
    json_t *o = NULL;
    cd_err err = {0};
    assert_int_equal(cd_form_parse("a=12&b=3", 4, 10, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "a")), "12");
    assert_null(json_object_get(o, "b"));
    json_decref(o);
    /* an escape cut by the length is refused, not read past the end */
    assert_int_equal(cd_form_parse("a=%41", 4, 10, &o, &err), -1);
}

/* A PHP client's 10,000-contact batch fits the default limit. */
static void test_big_batch(void **state)
{
    (void)state;
    size_t cap = 20000 * 24;
    char *s = malloc(cap), *w = s;
    for (int i = 0; i < 10000; i++)
        w += sprintf(w, "%sPhones[]=3361%07d&Ids[]=%d", i ? "&" : "", i, i);
    json_t *o = NULL;
    cd_err err = {0};
    assert_int_equal(cd_form_parse(s, (size_t)(w - s), CD_FORM_MAX_FIELDS, &o, &err), 0);
    assert_int_equal(json_array_size(json_object_get(o, "Phones")), 10000);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "Ids"), 9999)), "9999");
    json_decref(o);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),   cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_big_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
