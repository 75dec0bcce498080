/* tests/unit/core/test_keyword.c -- core/keyword.h (DESIGN.md section 3: whole message,
 * trimmed, case-insensitive; the FCC lists; per-account lists and replies) and the quiet
 * hours arithmetic of util/timeutil.h (issue 4 item 6). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
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
    /* Empty windows never hold anything. */
    assert_int_equal(cd_time_quiet_until(ms, "UTC", 600, 600), 0);
}

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    assert_int_equal(cd_time_parse(rfc3339, &ms), 0);
    return ms;
}

static void test_quiet_hours_across_dst(void **state)
{
    /* issue 8 item 10: the end of quiet hours is a wall-clock time; a night with a DST
     * change in New York is an hour shorter (March) or longer (November). */
    (void)state;
    int q0 = 21 * 60, q1 = 8 * 60;
    /* 2026-03-07 22:00 EST; clocks go 02:00 -> 03:00 on the 8th; 08:00 EDT is 12:00 UTC. */
    assert_int_equal(cd_time_local_minute(at("2026-03-08T03:00:00Z"), "America/New_York"), 22 * 60);
    assert_int_equal(cd_time_quiet_until(at("2026-03-08T03:00:00Z"), "America/New_York", q0, q1),
                     at("2026-03-08T12:00:00Z"));
    /* Inside the skipped hour's night, after the change: 03:30 EDT. */
    assert_int_equal(cd_time_quiet_until(at("2026-03-08T07:30:00Z"), "America/New_York", q0, q1),
                     at("2026-03-08T12:00:00Z"));
    /* 2026-10-31 22:00 EDT; clocks go 02:00 -> 01:00 on Nov 1; 08:00 EST is 13:00 UTC. */
    assert_int_equal(cd_time_quiet_until(at("2026-11-01T02:00:00Z"), "America/New_York", q0, q1),
                     at("2026-11-01T13:00:00Z"));
    /* The repeated hour, both times: 01:30 EDT then 01:30 EST. */
    assert_int_equal(cd_time_local_minute(at("2026-11-01T05:30:00Z"), "America/New_York"), 90);
    assert_int_equal(cd_time_local_minute(at("2026-11-01T06:30:00Z"), "America/New_York"), 90);
    assert_int_equal(cd_time_quiet_until(at("2026-11-01T06:30:00Z"), "America/New_York", q0, q1),
                     at("2026-11-01T13:00:00Z"));
    /* A window that ends in the skipped hour ends when the clock jumps past it. */
    assert_int_equal(
        cd_time_quiet_until(at("2026-03-08T06:10:00Z"), "America/New_York", 60, 2 * 60 + 30),
        at("2026-03-08T07:30:00Z"));
    /* Southern hemisphere, and a zone with a half-hour offset. */
    assert_int_equal(cd_time_local_minute(at("2026-01-15T12:00:00Z"), "Australia/Sydney"), 23 * 60);
    assert_int_equal(cd_time_local_minute(at("2026-01-15T12:00:00Z"), "Asia/Kolkata"),
                     17 * 60 + 30);
}

static void test_unknown_zones(void **state)
{
    /* issue 8 item 10: a zone that cannot be loaded is an error, never a silent UTC. */
    (void)state;
    int64_t ms = at("2026-11-24T02:00:00Z");
    static const char *const bad[] = {
        "Mars/Olympus", "../../etc/passwd", "", "America/Nowhere", "GMT+5",
        "Etc/Unknown",  "/etc/localtime"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(cd_time_zone_valid(bad[i]));
        assert_int_equal(cd_time_local_minute(ms, bad[i]), -1);
        assert_int_equal(cd_time_quiet_until(ms, bad[i], 0, 1439), -1);
    }
    assert_false(cd_time_zone_valid(NULL));
    char longer[200];
    memset(longer, 'A', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_false(cd_time_zone_valid(longer));
    static const char *const good[] = {"UTC", "America/New_York", "Europe/Paris", "Asia/Tokyo",
                                       "US/Eastern"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(cd_time_zone_valid(good[i]));
    /* Cached zones answer the same as the first time. */
    assert_int_equal(cd_time_local_minute(ms, "America/New_York"), 21 * 60);
    assert_int_equal(cd_time_local_minute(ms, "America/New_York"), 21 * 60);
}

static void *convert_many(void *arg)
{
    static const char *const zones[] = {"America/New_York", "Europe/Paris", "Asia/Tokyo",
                                        "Australia/Sydney"};
    static const int want[] = {21 * 60, 3 * 60, 11 * 60, 13 * 60};
    int64_t ms = at("2026-11-24T02:00:00Z");
    (void)arg;
    for (int i = 0; i < 2000; i++)
        if (cd_time_local_minute(ms, zones[i % 4]) != want[i % 4])
            return (void *)1;
    return NULL;
}

static void test_zones_from_many_threads(void **state)
{
    /* issue 8 item 10: no process-wide TZ switch, so threads do not see each other's zone. */
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, convert_many, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
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
        cmocka_unit_test(test_quiet_hours_across_dst),
        cmocka_unit_test(test_unknown_zones),
        cmocka_unit_test(test_zones_from_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
