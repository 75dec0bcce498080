/* tests/unit/api/test_protexting.c -- issue 10: the ProTexting surface's field parsers,
 * reached by including the .c (h2o's t/00unit pattern): SendCTAMessage's accepted forms,
 * group ids from JSON and forms, the CTA/ConfirmMessage limits, and the model's field names
 * mapped to ProTexting's in errors raised by the core. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../../src/api/protexting.c"

static json_t *obj(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    return o;
}

static void test_send_cta(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int want;
        size_t errors;
    } cases[] = {
        {"{}", -1, 0},
        {"{\"SendCTAMessage\":null}", -1, 0},
        {"{\"SendCTAMessage\":\"\"}", -1, 0},
        {"{\"SendCTAMessage\":1}", 1, 0},
        {"{\"SendCTAMessage\":\"1\"}", 1, 0},
        {"{\"SendCTAMessage\":true}", 1, 0},
        {"{\"SendCTAMessage\":0}", 0, 0},
        {"{\"SendCTAMessage\":\"0\"}", 0, 0},
        {"{\"SendCTAMessage\":false}", 0, 0},
        {"{\"SendCTAMessage\":2}", -1, 1},
        {"{\"SendCTAMessage\":\"yes\"}", -1, 1},
        {"{\"SendCTAMessage\":[1]}", -1, 1},
        {"{\"SendCTAMessage\":1.0}", -1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = obj(cases[i].body), *errs = json_array();
        assert_int_equal(parse_send_cta(o, errs), cases[i].want);
        assert_int_equal(json_array_size(errs), cases[i].errors);
        if (cases[i].errors)
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(errs, 0), "field")),
                "SendCTAMessage");
        json_decref(o);
        json_decref(errs);
    }
}

static void test_group_id(void **state)
{
    (void)state;
    json_t *o = obj("[1, \"2\", 0, -3, \"x\", \"4a\", 9007199254740991, \"\", null, 1.5]");
    const int64_t want[] = {1, 2, 0, 0, 0, 0, 9007199254740991LL, 0, 0, 0};
    for (size_t i = 0; i < json_array_size(o); i++)
        assert_int_equal(group_id(json_array_get(o, i)), want[i]);
    json_decref(o);
}

static void test_texts(void **state)
{
    (void)state;
    char body[1200];
    const char *out = "x";
    json_t *errs = json_array();
    json_t *o = obj("{\"CTAMessage\":\"\",\"ConfirmMessage\":\"Thanks\"}");
    parse_text(o, "CTAMessage", "CTA Message", &out, errs);
    assert_null(out); /* "" is as absent */
    parse_text(o, "ConfirmMessage", "Confirm Message", &out, errs);
    assert_string_equal(out, "Thanks");
    assert_int_equal(json_array_size(errs), 0);
    json_decref(o);
    /* 4 parts of GSM text fit (4 x 153), 5 do not. */
    memset(body, 0, sizeof body);
    snprintf(body, sizeof body, "{\"CTAMessage\":\"%0612d\"}", 0);
    o = obj(body);
    parse_text(o, "CTAMessage", "CTA Message", &out, errs);
    assert_non_null(out);
    assert_int_equal(json_array_size(errs), 0);
    json_decref(o);
    snprintf(body, sizeof body, "{\"CTAMessage\":\"%0613d\"}", 0);
    o = obj(body);
    parse_text(o, "CTAMessage", "CTA Message", &out, errs);
    assert_null(out);
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "message")),
                        "CTA Message is too long: 5 SMS parts, at most 4 are allowed.");
    json_decref(o);
    o = obj("{\"ConfirmMessage\":{\"a\":1}}");
    parse_text(o, "ConfirmMessage", "Confirm Message", &out, errs);
    assert_int_equal(json_array_size(errs), 2);
    json_decref(o);
    json_decref(errs);
}

static void test_field_names(void **state)
{
    (void)state;
    assert_string_equal(field_name("phone"), "PhoneNumber");
    assert_string_equal(field_name("groups"), "GroupIds");
    assert_string_equal(field_name("scopes"), "GroupIds");
    assert_string_equal(field_name("disclosure"), "CTAMessage");
    assert_string_equal(field_name(""), "PhoneNumber");
    assert_string_equal(field_name("Idempotency-Key"), "Idempotency-Key");
}

static void test_contact_shape(void **state)
{
    (void)state;
    cd_contact c = {.id = 7, .created_ms = 1421767289000LL, .updated_ms = 1421768489000LL};
    snprintf(c.phone, sizeof c.phone, "+16465550123");
    c.first_name = strdup("John");
    c.groups = json_pack("[i]", 1);
    json_t *o = contact_json(&c, false, "America/New_York");
    char *s = json_dumps(o, JSON_COMPACT);
    /* The seed's example, field for field and in its order. */
    assert_string_equal(s, "{\"Id\":7,\"Number\":\"16465550123\",\"OptedOut\":0,\"FirstName\":"
                           "\"John\",\"LastName\":\"\",\"BirthDay\":\"0000-00-00\",\"Email\":\"\","
                           "\"Zip\":\"\",\"City\":\"\",\"DateCreated\":\"2015-01-20 10:21:29\","
                           "\"DateUpdated\":\"2015-01-20 10:41:29\",\"GroupIds\":[1],"
                           "\"CustomFieldIds\":[]}");
    free(s);
    json_decref(o);
    cd_contact_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_cta),      cmocka_unit_test(test_group_id),
        cmocka_unit_test(test_texts),         cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_contact_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
