/* tests/unit/core/test_keyword.c -- core/keyword.h (DESIGN.md section 3: whole message,
 * trimmed, case-insensitive; the FCC lists; per-account lists and replies) and the quiet
 * hours arithmetic of util/timeutil.h (issue 4 item 6). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/keyword.h"
#include "util/err.h"
#include "util/timeutil.h"

static void test_default_lists(void **state)
{
    (void)state;
    static const char *const stop[] = {"STOP", "stopall", "Unsubscribe", "CANCEL",
                                       "end",  "QUIT",    "revoke",      "OptOut"};
    static const char *const start[] = {"START", "yes", "Unstop"};
    static const char *const help[] = {"HELP", "info"};
    char word[32];
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        assert_int_equal(cd_keyword_classify(stop[i], NULL, word), CD_KW_STOP);
    for (size_t i = 0; i < sizeof start / sizeof start[0]; i++)
        assert_int_equal(cd_keyword_classify(start[i], NULL, word), CD_KW_START);
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        assert_int_equal(cd_keyword_classify(help[i], NULL, word), CD_KW_HELP);
    assert_int_equal(cd_keyword_classify("  stop \n", NULL, word), CD_KW_STOP);
    assert_string_equal(word, "STOP");
}

static void test_whole_message_only(void **state)
{
    (void)state;
    static const char *const none[] = {"stop it", "please stop", "STOPP",  "S TOP",    "",
                                       "   ",     "yes please",  "helpme", "\xff\xfe", "STOP!"};
    char word[32] = "x";
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_int_equal(cd_keyword_classify(none[i], NULL, word), CD_KW_NONE);
    assert_string_equal(word, "");
    assert_int_equal(cd_keyword_classify(NULL, NULL, NULL), CD_KW_NONE);
    char longer[200];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(cd_keyword_classify(longer, NULL, NULL), CD_KW_NONE);
}

static void test_account_lists_replace_defaults(void **state)
{
    (void)state;
    json_t *s = json_pack("{s{s[ss] s[s] s[s]}}", "keywords", "stop", "ARRET", "STOPPEN", "start",
                          "GO", "help", "AIDE");
    assert_int_equal(cd_keyword_classify("arret", s, NULL), CD_KW_STOP);
    assert_int_equal(cd_keyword_classify("stoppen", s, NULL), CD_KW_STOP);
    /* A configured start or help list replaces the default one of that action only. */
    assert_int_equal(cd_keyword_classify("go", s, NULL), CD_KW_START);
    assert_int_equal(cd_keyword_classify("START", s, NULL), CD_KW_NONE);
    assert_int_equal(cd_keyword_classify("aide", s, NULL), CD_KW_HELP);
    assert_int_equal(cd_keyword_classify("HELP", s, NULL), CD_KW_NONE);
    json_decref(s);
    /* A word in two lists opts out: the safe reading. */
    s = json_pack("{s{s[s] s[s]}}", "keywords", "stop", "BYE", "start", "BYE");
    assert_int_equal(cd_keyword_classify("bye", s, NULL), CD_KW_STOP);
    json_decref(s);
}

static void test_default_stop_words_always_opt_out(void **state)
{
    /* issue 8 item 3: a configured stop list adds words; the default opt-out words of
     * DESIGN.md section 3 stay, even listed as start or help words. */
    (void)state;
    static const char *const stop[] = {"STOP", "stopall", "Unsubscribe", "CANCEL",
                                       "end",  "QUIT",    "revoke",      "OptOut"};
    json_t *s =
        json_pack("{s{s[s] s[s] s[s]}}", "keywords", "stop", "XYZ", "start", "STOP", "help", "end");
    char word[32];
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        assert_int_equal(cd_keyword_classify(stop[i], s, word), CD_KW_STOP);
    assert_string_equal(word, "OPTOUT");
    assert_int_equal(cd_keyword_classify("xyz", s, NULL), CD_KW_STOP);
    json_decref(s);
}

static void check_fails(const char *json, const char *reason, const char *field)
{
    json_error_t je;
    json_t *kw = json_loads(json, 0, &je);
    assert_non_null(kw);
    cd_err err = {0};
    assert_int_equal(cd_keyword_check(kw, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    assert_string_equal(cd_err_reason(&err), reason);
    assert_string_equal(err.field, field);
    json_decref(kw);
}

static void check_ok(const char *json)
{
    json_error_t je;
    json_t *kw = json_loads(json, 0, &je);
    assert_non_null(kw);
    cd_err err = {0};
    assert_int_equal(cd_keyword_check(kw, &err), 0);
    json_decref(kw);
}

static void test_check_conflicts(void **state)
{
    /* issue 8 item 3: a word that would be both an opt-out word and another is refused. */
    (void)state;
    check_ok("{}");
    check_ok("{\"stop\":[\"XYZ\",\"STOP\"],\"start\":[\"GO\"],\"help\":[\"AIDE\"]}");
    check_ok("{\"stop\":[\"ARRET\"]}");
    check_fails("{\"stop\":[\"XYZ\"],\"start\":[\"STOP\"]}", "keyword_conflict", "keywords.start");
    check_fails("{\"start\":[\"go\",\"Unsubscribe\"]}", "keyword_conflict", "keywords.start");
    check_fails("{\"help\":[\"quit\"]}", "keyword_conflict", "keywords.help");
    check_fails("{\"stop\":[\"XYZ\"],\"help\":[\"xyz\"]}", "keyword_conflict", "keywords.help");
    /* A configured stop word that is a default start word: the stop list is at fault. */
    check_fails("{\"stop\":[\"yes\"]}", "keyword_conflict", "keywords.stop");
    check_fails("{\"stop\":[\"Info\"]}", "keyword_conflict", "keywords.stop");
    check_fails("{\"start\":[\"GO\"],\"help\":[\"go\"]}", "keyword_conflict", "keywords.help");
    check_fails("{\"help\":[\"START\"]}", "keyword_conflict", "keywords.help");
    check_fails("{\"start\":[\"HELP\"]}", "keyword_conflict", "keywords.start");
}

static void test_check_words(void **state)
{
    (void)state;
    check_fails("[]", "invalid_field", "keywords");
    check_fails("{\"unsubscribe\":[\"X\"]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[]}", "invalid_field", "keywords");
    check_fails("{\"stop\":\"X\"}", "invalid_field", "keywords");
    check_fails("{\"stop\":[\"\"]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[\" X\"]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[\"X\\t\"]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[\"TWO WORDS\"]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[7]}", "invalid_field", "keywords");
    check_fails("{\"stop\":[\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\"]}", "invalid_field", "keywords");
    check_ok("{\"stop\":[\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234\"]}");
    check_ok("{\"stop\":[\"ARR\u00caT\"]}");
}

static void test_replies(void **state)
{
    (void)state;
    char *r = cd_keyword_reply(CD_KW_STOP, NULL, "Acme");
    assert_non_null(strstr(r, "Acme: "));
    assert_non_null(strstr(r, "unsubscribed"));
    free(r);
    json_t *s = json_pack("{s{ss}}", "replies", "help", "{brand} help: call {brand}");
    r = cd_keyword_reply(CD_KW_HELP, s, "Acme");
    assert_string_equal(r, "Acme help: call Acme");
    free(r);
    assert_null(cd_keyword_reply(CD_KW_NONE, s, "Acme"));
    json_decref(s);
    r = cd_keyword_cta(NULL, "Acme");
    assert_non_null(strstr(r, "Reply YES"));
    free(r);
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(cd_keyword_action_name(CD_KW_STOP), "opted_out");
    assert_string_equal(cd_keyword_action_name(CD_KW_START), "opted_in");
    assert_string_equal(cd_keyword_action_name(CD_KW_HELP), "help");
    assert_string_equal(cd_keyword_action_name(CD_KW_NONE), "none");
}

static void test_quiet_hours(void **state)
{
    (void)state;
    int64_t ms;
    /* 2026-11-23 22:30 UTC: inside 21:00-08:00, which ends at 08:00 the next day. */
    assert_int_equal(cd_time_parse("2026-11-23T22:30:00Z", &ms), 0);
    int64_t until = cd_time_quiet_until(ms, "UTC", 21 * 60, 8 * 60);
    int64_t want;
    assert_int_equal(cd_time_parse("2026-11-24T08:00:00Z", &want), 0);
    assert_int_equal(until, want);
    /* 12:00 is outside it. */
    assert_int_equal(cd_time_parse("2026-11-23T12:00:00Z", &ms), 0);
    assert_int_equal(cd_time_quiet_until(ms, "UTC", 21 * 60, 8 * 60), 0);
    /* A window that does not wrap midnight. */
    assert_int_equal(cd_time_parse("2026-11-23T12:15:00Z", &ms), 0);
    assert_int_equal(cd_time_parse("2026-11-23T13:00:00Z", &want), 0);
    assert_int_equal(cd_time_quiet_until(ms, "UTC", 12 * 60, 13 * 60), want);
    /* New York is UTC-5 in November: 02:00 UTC is 21:00 there. */
    assert_int_equal(cd_time_parse("2026-11-24T02:00:00Z", &ms), 0);
    assert_int_equal(cd_time_local_minute(ms, "America/New_York"), 21 * 60);
    assert_int_equal(cd_time_parse("2026-11-24T13:00:00Z", &want), 0);
    assert_int_equal(cd_time_quiet_until(ms, "America/New_York", 21 * 60, 8 * 60), want);
    /* Unknown zones and empty windows never hold anything. */
    assert_int_equal(cd_time_local_minute(ms, "Mars/Olympus"), -1);
    assert_int_equal(cd_time_local_minute(ms, "../../etc/passwd"), -1);
    assert_int_equal(cd_time_quiet_until(ms, "Mars/Olympus", 0, 1439), 0);
    assert_int_equal(cd_time_quiet_until(ms, "UTC", 600, 600), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_lists),
        cmocka_unit_test(test_whole_message_only),
        cmocka_unit_test(test_account_lists_replace_defaults),
        cmocka_unit_test(test_default_stop_words_always_opt_out),
        cmocka_unit_test(test_check_conflicts),
        cmocka_unit_test(test_check_words),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_quiet_hours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
