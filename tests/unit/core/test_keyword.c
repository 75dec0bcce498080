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
    json_t *s = json_pack("{s{s[ss]}}", "keywords", "stop", "ARRET", "STOPPEN");
    assert_int_equal(cd_keyword_classify("arret", s, NULL), CD_KW_STOP);
    assert_int_equal(cd_keyword_classify("stoppen", s, NULL), CD_KW_STOP);
    /* The configured list replaces the default one for that action only. */
    assert_int_equal(cd_keyword_classify("STOP", s, NULL), CD_KW_NONE);
    assert_int_equal(cd_keyword_classify("HELP", s, NULL), CD_KW_HELP);
    json_decref(s);
    /* A word in two lists opts out: the safe reading. */
    s = json_pack("{s{s[s] s[s]}}", "keywords", "stop", "BYE", "start", "BYE");
    assert_int_equal(cd_keyword_classify("bye", s, NULL), CD_KW_STOP);
    json_decref(s);
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
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_quiet_hours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
