/* tests/unit/api/test_native_json.c -- issue 16: the contact answer written straight into a
 * buffer (cd_native__contact_dump) is byte for byte what the jansson tree gives
 * (json_dumps(cd_native__contact_json(c), JSON_COMPACT | JSON_ENCODE_ANY)). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/native_int.h"

/* Parses a JSON literal the test wrote; a typo in a test is a test failure. */
static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", text, e.text);
    return v;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Both ways of writing c agree. */
static void same(cd_contact *c)
{
    json_t *tree = cd_native__contact_json(c);
    char *want = json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(tree);
    cd_buf b = {0};
    assert_int_equal(cd_native__contact_dump(c, &b), 0);
    assert_non_null(want);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    free(want);
    cd_buf_free(&b);
}

static void test_plain(void **state)
{
    (void)state;
    cd_contact c = {.id = 5001,
                    .phone = "+12122005000",
                    .created_ms = 1764786288201,
                    .updated_ms = 1764786288202};
    c.first_name = dup_or_null("Bench");
    c.last_name = dup_or_null("N5000");
    c.tags = j("[\"bench\"]");
    c.groups = j("[1]");
    same(&c);
    cd_contact_clear(&c);
    /* nothing set: nulls, empty containers, no times */
    cd_contact e = {.id = 1, .phone = "+16465550123"};
    same(&e);
    e.first_name = dup_or_null(""); /* empty text is null */
    e.custom = j("{}");
    e.tags = j("[]");
    e.groups = j("[]");
    same(&e);
    cd_contact_clear(&e);
}

static void test_every_field(void **state)
{
    (void)state;
    cd_contact c = {.id = 9007199254740991LL,
                    .phone = "+33612345678",
                    .created_ms = 1,
                    .updated_ms = 4102444800000};
    static const char *vals[] = {"Zo\xc3\xab", "O'Brien", "a@b.example",
                                 "1990-01-02", "75001",   "K\xc3\xb6ln"};
    char **fields[] = {&c.first_name, &c.last_name, &c.email, &c.birthday, &c.zip, &c.city};
    for (size_t i = 0; i < 6; i++)
        *fields[i] = dup_or_null(vals[i]);
    for (int i = 0; i < CD_CONTACT_PARAMS; i++)
        c.params[i] = i % 2 ? dup_or_null("p") : NULL;
    c.custom = j("{\"z\":\"1\",\"a\":\"\\u00fc\\u0007\",\"n\":\"x\"}");
    c.tags = j("[\"vip\",\"ny\\\"\\\\\"]");
    c.groups = j("[1,2,30000000000]");
    same(&c);
    cd_contact_clear(&c);
}

/* Every escape jansson writes: \" \\ \b \f \n \r \t, other control characters as \u00XX in
 * upper case; '/', DEL and UTF-8 (also 4-byte) as they are. */
static void test_escapes(void **state)
{
    (void)state;
    cd_contact c = {.id = 2, .phone = "+16465550198"};
    c.first_name = dup_or_null("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f end");
    c.last_name = dup_or_null("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    c.params[1] = dup_or_null("\x1b[0m\"");
    c.city = dup_or_null("\"");
    same(&c);
    cd_contact_clear(&c);
}

/* Text that is not UTF-8 is refused, so the caller falls back to the tree. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cd_contact c = {.id = 3, .phone = "+16465550197"};
        c.zip = dup_or_null(bad[i]);
        cd_buf b = {0};
        assert_int_equal(cd_native__contact_dump(&c, &b), -1);
        cd_buf_free(&b);
        cd_contact_clear(&c);
    }
}

/* The consent POST's answer: cd_native__consent_dump against the tree it replaces. */
static void same_consent(const cd_consent *c, const cd_event *e)
{
    json_t *tree = json_pack("{so so}", "consent", cd_native__consent_json(c), "event",
                             cd_native__event_json(e));
    char *want = json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(tree);
    cd_buf b = {0};
    assert_int_equal(cd_native__consent_dump(c, e, &b), 0);
    assert_non_null(want);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    free(want);
    cd_buf_free(&b);
}

static void test_consent(void **state)
{
    (void)state;
    cd_consent c = {.scope = "all", .state = "opted_in", .updated_ms = 1764786288201};
    cd_event e = {.id = 7,
                  .seq = 3,
                  .phone = "+12122005000",
                  .scope = "all",
                  .new_state = "opted_in",
                  .surface = "native",
                  .channel = "api",
                  .credential_id = "k_1",
                  .request_id = "r-1",
                  .created_ms = 1764786288201,
                  .hash = "ab",
                  .prev_hash = ""};
    same_consent(&c, &e);
    /* every text field set, escapes and UTF-8; no times */
    cd_consent c2 = {.scope = "group:12", .state = "opted_out"};
    cd_event f = {.id = 9007199254740991LL,
                  .seq = 1,
                  .phone = "+33612345678",
                  .scope = "group:12",
                  .old_state = "pending",
                  .new_state = "opted_out",
                  .surface = "octopush",
                  .channel = "sms",
                  .keyword = "STOP",
                  .disclosure_sha256 = "0123",
                  .ip = "::1",
                  .user_agent = "a\"b\\c\n\x01\xc3\xa9",
                  .site = "s/t",
                  .session = "\t",
                  .ext_ref = "\xf0\x9f\x98\x80",
                  .credential_id = "c",
                  .request_id = "r",
                  .hash = "h",
                  .prev_hash = "p"};
    same_consent(&c2, &f);
    /* not UTF-8: refused, the tree decides */
    memcpy(f.site, "\xff", 2);
    cd_buf b = {0};
    assert_int_equal(cd_native__consent_dump(&c2, &f, &b), -1);
    cd_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),   cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_escapes), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_consent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
