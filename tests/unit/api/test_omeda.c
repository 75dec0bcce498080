/* tests/unit/api/test_omeda.c -- api/omeda.c's parsing of an opt queue body (issue 12,
 * seed 002's field tables) and its answers, reached by including the .c (h2o's way to test
 * static functions). The surface end to end is tests/e2e/omeda.test.mjs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/omeda.c"

static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", text, e.text);
    return v;
}

typedef struct parsed {
    omeda_in in;
    cd_opt opts[8];
} parsed;

static parsed *parse(const char *text)
{
    parsed *p = test_calloc(1, sizeof *p);
    json_t *o = j(text);
    json_t *list = json_object_get(o, "MessageOpts");
    if (json_is_array(list) && count_opts(list) > 8 && count_opts(list) <= OMEDA_MAX_OPTS)
        fail_msg("test body has more than 8 opts");
    p->in.opts = p->opts;
    snprintf(p->in.uuid, sizeof p->in.uuid, "31f8c71a-d2f8-47a6-9b58-fc56439ffe9a");
    parse_body(o, &p->in);
    json_decref(o);
    return p;
}

/* seed 002's first example: every field read, nothing wrong. */
static void test_seed_example(void **state)
{
    (void)state;
    parsed *p = parse("{\"SiteId\": 498, \"SiteSessionId\": \"ECD8906C31075A7A44F98F39E5F57671\","
                      "\"PhoneNumber\": \"6303303039\", \"CountryCallingCode\": 1,"
                      "\"MessageOpts\": [{\"Status\": 1, \"DeleteOptOut\": 1, "
                      "\"MessageTypeId\": [6]}]}");
    assert_int_equal(p->in.nerrors, 0);
    assert_string_equal(p->in.phone, "+16303303039");
    assert_string_equal(p->in.shown, "6303303039");
    assert_string_equal(p->in.site, "498");
    assert_string_equal(p->in.session, "ECD8906C31075A7A44F98F39E5F57671");
    assert_int_equal(p->in.nopts, 1);
    assert_int_equal(p->opts[0].type_id, 6);
    assert_int_equal(p->opts[0].state, CD_STATE_OPTED_IN);
    assert_true(p->opts[0].delete_opt_out);
    test_free(p);
}

/* PhoneNumber as a number or a string, ids as one integer, an array, or digit strings. */
static void test_shapes(void **state)
{
    (void)state;
    parsed *p =
        parse("{\"PhoneNumber\": 6465550123, \"CountryCallingCode\": \"1\","
              "\"MessageOpts\": [{\"Status\": 0, \"MessageTypeId\": 6},"
              "{\"Status\": \"1\", \"MessageTypeId\": [7, \"8\"], \"DeleteOptOut\": null}]}");
    assert_int_equal(p->in.nerrors, 0);
    assert_string_equal(p->in.phone, "+16465550123");
    assert_string_equal(p->in.site, "");
    assert_int_equal(p->in.nopts, 3);
    assert_int_equal(p->opts[0].state, CD_STATE_OPTED_OUT);
    assert_int_equal(p->opts[1].type_id, 7);
    assert_int_equal(p->opts[2].type_id, 8);
    assert_int_equal(p->opts[2].state, CD_STATE_OPTED_IN);
    assert_false(p->opts[2].delete_opt_out);
    test_free(p);
    /* MessageOpts is optional. */
    p = parse("{\"PhoneNumber\": \"(646) 555-0123\", \"CountryCallingCode\": 1}");
    assert_int_equal(p->in.nerrors, 0);
    assert_int_equal(p->in.nopts, 0);
    assert_string_equal(p->in.phone, "+16465550123");
    test_free(p);
}

static void test_faults_listed_in_order(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *errors[4];
    } rows[] = {
        {"{}", {"CountryCallingCode is required.", "PhoneNumber is required."}},
        {"{\"CountryCallingCode\": 0, \"PhoneNumber\": \"6465550123\"}",
         {"CountryCallingCode must be an integer from 1 to 999."}},
        {"{\"CountryCallingCode\": 1.5, \"PhoneNumber\": true}",
         {"CountryCallingCode must be an integer from 1 to 999.",
          "PhoneNumber must be an integer: the cell phone number without its country calling "
          "code."}},
        {"{\"CountryCallingCode\": 1, \"PhoneNumber\": \"+16465550123\"}",
         {"PhoneNumber must be an integer: the cell phone number without its country calling "
          "code."}},
        {"{\"CountryCallingCode\": 1, \"PhoneNumber\": 6461234567}",
         {"PhoneNumber 6461234567 is not a valid cell phone number for CountryCallingCode 1."}},
        {"{\"CountryCallingCode\": 1, \"PhoneNumber\": 6465550123, \"SiteId\": -1}",
         {"SiteId must be an integer."}},
        {"{\"CountryCallingCode\": 1, \"PhoneNumber\": 6465550123, \"MessageOpts\": 6}",
         {"MessageOpts must be an array."}},
        {"{\"CountryCallingCode\": 1, \"PhoneNumber\": 6465550123, \"MessageOpts\": "
         "[{\"MessageTypeId\": 6}, {\"Status\": 1, \"MessageTypeId\": []}, "
         "{\"Status\": 1, \"MessageTypeId\": [6, 0]}, {\"Status\": 1, \"MessageTypeId\": 6, "
         "\"DeleteOptOut\": 2}]}",
         {"MessageOpts element 1: Status is required: 0 (opt out) or 1 (opt in).",
          "MessageOpts element 2: MessageTypeId is required: an integer or an array of integers.",
          "MessageOpts element 3: MessageTypeId is required: an integer or an array of integers.",
          "MessageOpts element 4: DeleteOptOut must be 0 or 1."}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        parsed *p = parse(rows[i].body);
        size_t want = 0;
        while (want < 4 && rows[i].errors[want])
            want++;
        if (p->in.nerrors != want)
            fail_msg("row %zu: %zu errors, want %zu (first: %s)", i, p->in.nerrors, want,
                     p->in.nerrors ? p->in.errors[0] : "none");
        for (size_t k = 0; k < want; k++)
            assert_string_equal(p->in.errors[k], rows[i].errors[k]);
        assert_int_equal(p->in.nopts, 0); /* a faulty element adds no opt */
        test_free(p);
    }
}

static void test_too_many_ids(void **state)
{
    (void)state;
    char body[8192];
    int n = snprintf(body, sizeof body,
                     "{\"CountryCallingCode\":1,\"PhoneNumber\":6465550123,"
                     "\"MessageOpts\":[{\"Status\":1,\"MessageTypeId\":[");
    for (int i = 0; i <= OMEDA_MAX_OPTS; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s1", i ? "," : "");
    snprintf(body + n, sizeof body - (size_t)n, "]}]}");
    parsed *p = parse(body);
    assert_int_equal(p->in.nerrors, 1);
    assert_string_equal(p->in.errors[0],
                        "MessageOpts may name at most 1000 MessageTypeIds in one submission.");
    assert_int_equal(p->in.nopts, 0);
    test_free(p);
}

/* The answers: seed 002's 400 example, and a 200 with Messages. */
static void test_answers(void **state)
{
    (void)state;
    parsed *p = parse("{\"PhoneNumber\": \"6303030983\", \"CountryCallingCode\": 1, "
                      "\"MessageOpts\": [{\"Status\": 1, \"MessageTypeId\": 4194}]}");
    p->opts[0].outcome = CD_OPT_UNKNOWN_TYPE;
    json_t *a = refusal(&p->in);
    char *text = json_dumps(a, JSON_COMPACT);
    assert_string_equal(
        text, "{\"Submission\":\"31f8c71a-d2f8-47a6-9b58-fc56439ffe9a\",\"Errors\":[{\"Error\":"
              "\"MessageOpts submission (4194): the MessageTypeId is not authorized for Opts for "
              "the AppId submitted. Phone number 6303030983 was not opted in.\"},{\"Error\":"
              "\"There were errors with your submission. None of the Opts submitted in your "
              "request were created.\"}]}");
    free(text);
    json_decref(a);

    p->opts[0].outcome = CD_OPT_WRITTEN;
    a = success(&p->in);
    text = json_dumps(a, JSON_COMPACT);
    assert_string_equal(text, "{\"Submission\":\"31f8c71a-d2f8-47a6-9b58-fc56439ffe9a\","
                              "\"Success\":\"Your submission was successful\"}");
    free(text);
    json_decref(a);

    p->opts[0].outcome = CD_OPT_KEPT_OUT;
    a = success(&p->in);
    assert_int_equal(json_array_size(json_object_get(a, "Messages")), 1);
    json_decref(a);
    test_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_faults_listed_in_order),
        cmocka_unit_test(test_too_many_ids),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
