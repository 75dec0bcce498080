/* tests/unit/core/test_pool.c -- issue 14: core/pool.h (the number pool's rules: the weighted
 * type draw, health from receipts, the pick with spreading, skipping and stickiness) and
 * core/profile.h (the seed 004 limits, callback URL rules, sender types), on a real store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/pool.h"
#include "core/profile.h"
#include "core/usecase.h"
#include "util/timeutil.h"

#include "core_fixture.h"

/* ---- pure rules ---- */

static void test_choose_type_is_proportional(void **state)
{
    (void)state;
    int w[2] = {1, 3};
    bool both[2] = {true, true};
    /* r in [0, 4): 0 -> long code, 1..3 -> toll-free. */
    assert_int_equal(cd_pool_choose_type(w, both, 0), CD_POOL_LONG_CODE);
    for (uint32_t r = 1; r < 4; r++)
        assert_int_equal(cd_pool_choose_type(w, both, r), CD_POOL_TOLL_FREE);
    assert_int_equal(cd_pool_choose_type(w, both, 4), -1);
    /* issue 14 "done when": 10,000 selections follow the weight ratio within 3 points. */
    static const int weights[][2] = {{1, 3}, {1, 1}, {9, 1}, {2, 7}, {5, 4}};
    for (size_t k = 0; k < sizeof weights / sizeof weights[0]; k++) {
        int n[2] = {0, 0};
        for (int i = 0; i < 10000; i++) {
            int t = cd_pool_choose_type_random(weights[k], both);
            assert_true(t == 0 || t == 1);
            n[t]++;
        }
        double want = (double)weights[k][1] / (weights[k][0] + weights[k][1]);
        double got = n[1] / 10000.0;
        if (got < want - 0.03 || got > want + 0.03)
            fail_msg("weights %d:%d gave %.4f toll-free, want %.4f", weights[k][0], weights[k][1],
                     got, want);
    }
}

static void test_weight_zero_never(void **state)
{
    (void)state;
    int w[2] = {0, 5};
    bool both[2] = {true, true};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(cd_pool_choose_type_random(w, both), CD_POOL_TOLL_FREE);
    int w2[2] = {4, 0};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(cd_pool_choose_type_random(w2, both), CD_POOL_LONG_CODE);
    /* An unavailable type is never drawn either; nothing left -> -1. */
    bool only_long[2] = {true, false};
    int w3[2] = {1, 9};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cd_pool_choose_type_random(w3, only_long), CD_POOL_LONG_CODE);
    int zero[2] = {0, 0};
    assert_int_equal(cd_pool_choose_type_random(zero, both), -1);
    bool none[2] = {false, false};
    assert_int_equal(cd_pool_choose_type_random(w3, none), -1);
}

static void test_health_thresholds(void **state)
{
    (void)state;
    /* {receipts, delivered, blocked}: under 25% delivered or over 75% blocked is unhealthy,
     * with at least CD_POOL_MIN_RECEIPTS receipts. */
    static const struct {
        int c[3];
        bool healthy;
    } cases[] = {
        {{0, 0, 0}, true},   {{3, 0, 3}, true},    {{4, 0, 0}, false},  {{4, 1, 0}, true},
        {{5, 1, 0}, false},  {{8, 2, 0}, true},    {{4, 1, 3}, true},   {{5, 2, 4}, false},
        {{20, 5, 15}, true}, {{20, 5, 16}, false}, {{10, 10, 0}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cd_pool_healthy(cases[i].c) != cases[i].healthy)
            fail_msg("case %zu: {%d,%d,%d}", i, cases[i].c[0], cases[i].c[1], cases[i].c[2]);
}

static void test_profile_limits(void **state)
{
    (void)state;
    cd_profile_in in;
    cd_err err;
    char name[600];
    cd_profile_in_init(&in);
    assert_int_equal(cd_profile_check(&in, true, &err), -1);
    assert_string_equal(err.field, "name");
    assert_int_equal(cd_profile_check(&in, false, NULL), 0); /* an update may leave it out */
    in.name = "";
    assert_int_equal(cd_profile_check(&in, true, NULL), -1);
    /* 255 characters of two-byte UTF-8 are fine (510 bytes); 256 are not. */
    for (int i = 0; i < 256; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[510] = '\0';
    in.name = name;
    assert_int_equal(cd_profile_check(&in, true, NULL), 0);
    name[510] = '\xc3';
    name[511] = '\xa9';
    name[512] = '\0';
    assert_int_equal(cd_profile_check(&in, true, &err), -1);
    assert_string_equal(err.field, "name");
    in.name = "ok";
    in.long_code_weight = 10;
    assert_int_equal(cd_profile_check(&in, true, &err), -1);
    assert_string_equal(err.field, "long_code_weight");
    in.long_code_weight = 9;
    in.toll_free_weight = -2;
    assert_int_equal(cd_profile_check(&in, true, &err), -1);
    assert_string_equal(err.field, "toll_free_weight");
    in.toll_free_weight = 0;
    assert_int_equal(cd_profile_check(&in, true, NULL), 0);
}

static void test_callback_urls(void **state)
{
    (void)state;
    static const char *const good[] = {"https://hooks.example.com/x", "http://e.c/", "http://e.co",
                                       "https://93.184.216.34/hook", "http://[2001:db8::1]/x"};
    static const char *const bad[] = {
        "http://a",           "ftp://files.example.com/x", "https://127.0.0.1/x",
        "http://localhost/x", "http://app.localhost/x",    "http://10.0.0.1/x",
        "http://172.31.0.1/", "http://192.168.1.1/",       "http://169.254.169.254/",
        "http://[::1]/x",     "http://[fd00::1]/x",        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",   "http://100.64.0.1/x",       "not a url at all"};
    cd_err err;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (cd_profile_url_check(good[i], "callback_url", &err) != 0)
            fail_msg("%s refused: %s", good[i], err.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cd_profile_url_check(bad[i], "callback_url2", &err) == 0)
            fail_msg("%s accepted", bad[i]);
        assert_string_equal(err.field, "callback_url2");
    }
    cd_profile_set_allow_private(true);
    assert_int_equal(cd_profile_url_check("http://127.0.0.1:9/x", "callback_url", NULL), 0);
    assert_int_equal(cd_profile_url_check("ftp://127.0.0.1/x", "callback_url", NULL), -1);
    cd_profile_set_allow_private(false);
}

static void test_sender_types(void **state)
{
    (void)state;
    assert_string_equal(cd_sender_type_of("+16465550123"), "long_code");
    assert_string_equal(cd_sender_type_of("+18005550100"), "toll_free");
    assert_string_equal(cd_sender_type_of("+18885550100"), "toll_free");
    assert_string_equal(cd_sender_type_of("55501"), "short_code");
    assert_string_equal(cd_sender_type_of("123"), "short_code");
    assert_string_equal(cd_sender_type_of("+447700900123"), "long_code");
    assert_true(cd_sender_type_valid("toll_free"));
    assert_false(cd_sender_type_valid("pager"));
    assert_false(cd_sender_type_valid(NULL));
}

/* ---- the pick, on a real store ---- */

typedef struct pick_job {
    const cd_account *a;
    cd_profile_in in;
    cd_profile p;
    const char *numbers[4];
    const char *to;
    cd_sender out;
    int rc;
    cd_err err;
} pick_job;

static int job_setup(cd_db *db, void *arg, cd_err *err)
{
    pick_job *j = arg;
    if (cd_profile_create(db, j->a->id, &j->in, &j->p, err) != 0)
        return -1;
    for (int i = 0; i < 4 && j->numbers[i]; i++) {
        cd_sender s;
        cd_sender_in si = {.number = j->numbers[i]};
        if (cd_sender_add(db, j->a, &si, &s, NULL, err) != 0 ||
            cd_sender_lease(db, j->a->id, s.number, j->p.uuid, &s, err) != 0)
            return -1;
    }
    return 0;
}

static int job_pick(cd_db *db, void *arg, cd_err *err)
{
    pick_job *j = arg;
    (void)err;
    j->rc = cd_pool_pick(db, j->a->id, NULL, j->p.uuid, j->to, &j->out, &j->err);
    return 0;
}

typedef struct receipt_job {
    const cd_account *a;
    const char *number, *status;
    int n;
} receipt_job;

static int job_receipts(cd_db *db, void *arg, cd_err *err)
{
    receipt_job *r = arg;
    for (int i = 0; i < r->n; i++)
        if (cd_pool_note_receipt(db, r->a->id, r->number, r->status, err) != 0)
            return -1;
    return 0;
}

static const char *pick(cf_fx *fx, pick_job *j, const char *to)
{
    cd_err err;
    j->to = to;
    assert_int_equal(cf_run(fx, job_pick, j, &err), 0);
    return j->rc == 1 ? j->out.number : NULL;
}

static void test_pick_spreads_and_skips(void **state)
{
    cf_fx *fx = *state;
    cd_err err;
    pick_job j = {.a = &fx->acme, .numbers = {"+16465550181", "+16465550182", "+18005550183"}};
    cd_profile_in_init(&j.in);
    j.in.name = "pool";
    j.in.number_pool_enable = 1;
    j.in.toll_free_weight = 0;
    j.in.skip_unhealthy_tns = 1;
    if (cf_run(fx, job_setup, &j, &err) != 0)
        fail_msg("setup: %s", err.msg);
    int n81 = 0, n82 = 0;
    for (int i = 0; i < 20; i++) {
        const char *f = pick(fx, &j, "+16465550101");
        assert_non_null(f);
        n81 += strcmp(f, "+16465550181") == 0;
        n82 += strcmp(f, "+16465550182") == 0;
    }
    assert_int_equal(n81, 10); /* spread evenly; the toll-free number (weight 0) never */
    assert_int_equal(n82, 10);
    receipt_job r = {.a = &fx->acme, .number = "+16465550181", .status = "failed", .n = 4};
    assert_int_equal(cf_run(fx, job_receipts, &r, &err), 0);
    for (int i = 0; i < 5; i++)
        assert_string_equal(pick(fx, &j, "+16465550101"), "+16465550182");
    r.number = "+16465550182";
    r.status = "blocked";
    assert_int_equal(cf_run(fx, job_receipts, &r, &err), 0);
    assert_null(pick(fx, &j, "+16465550101"));
    assert_int_equal(j.rc, -1);
    assert_string_equal(cd_err_reason(&j.err), "no_healthy_sender");
    /* Another account cannot pick from this profile: its uuid is unknown there. */
    pick_job other = j;
    other.a = &fx->beta;
    assert_null(pick(fx, &other, "+16465550101"));
    assert_string_equal(cd_err_reason(&other.err), "unknown_profile");
}

static void test_pick_sticky(void **state)
{
    cf_fx *fx = *state;
    cd_err err;
    pick_job j = {.a = &fx->acme, .numbers = {"+16465550191", "+16465550192"}};
    cd_profile_in_init(&j.in);
    j.in.name = "sticky";
    j.in.number_pool_enable = 1;
    j.in.sticky_sender = 1;
    j.in.skip_unhealthy_tns = 1;
    if (cf_run(fx, job_setup, &j, &err) != 0)
        fail_msg("setup: %s", err.msg);
    char first[24], second[24];
    snprintf(first, sizeof first, "%s", pick(fx, &j, "+16465550111"));
    snprintf(second, sizeof second, "%s", pick(fx, &j, "+16465550112"));
    assert_string_not_equal(first, second); /* two recipients spread */
    for (int i = 0; i < 10; i++) {
        assert_string_equal(pick(fx, &j, "+16465550111"), first);
        assert_string_equal(pick(fx, &j, "+16465550112"), second);
    }
    /* Unhealthy: the recipient moves to the other number (and stays there). */
    receipt_job r = {.a = &fx->acme, .number = first, .status = "failed", .n = 5};
    assert_int_equal(cf_run(fx, job_receipts, &r, &err), 0);
    assert_string_equal(pick(fx, &j, "+16465550111"), second);
    assert_string_equal(pick(fx, &j, "+16465550111"), second);
}

/* A sender stored before migration 0010 has no type: the pool infers it from the number. */
static int job_untyped(cd_db *db, void *arg, cd_err *err)
{
    pick_job *j = arg;
    cd_sender s = {.account_id = j->a->id, .created_ms = cd_now_ms()};
    snprintf(s.number, sizeof s.number, "+18885550177");
    if (cd_profile_create(db, j->a->id, &j->in, &j->p, err) != 0 ||
        cd_store_sender_put(db, &s, err) != 0 ||
        cd_store_sender_lease(db, j->a->id, s.number, j->p.uuid, "lease", cd_now_ms(), err) != 0)
        return -1;
    return cd_store_sender_get(db, s.number, &j->out, err);
}

static void test_pick_infers_missing_type(void **state)
{
    cf_fx *fx = *state;
    cd_err err;
    pick_job j = {.a = &fx->acme};
    cd_profile_in_init(&j.in);
    j.in.name = "old senders";
    j.in.number_pool_enable = 1;
    j.in.long_code_weight = 0;
    if (cf_run(fx, job_untyped, &j, &err) != 0)
        fail_msg("setup: %s", err.msg);
    assert_string_equal(j.out.type, "");
    assert_string_equal(pick(fx, &j, "+16465550121"), "+18885550177"); /* toll-free */
    json_t *v = cd_lease_view(&j.out);
    assert_string_equal(json_string_value(json_object_get(v, "type")), "toll_free");
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_type_is_proportional),
        cmocka_unit_test(test_weight_zero_never),
        cmocka_unit_test(test_health_thresholds),
        cmocka_unit_test(test_profile_limits),
        cmocka_unit_test(test_callback_urls),
        cmocka_unit_test(test_sender_types),
        cmocka_unit_test_setup_teardown(test_pick_spreads_and_skips, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_pick_sticky, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_pick_infers_missing_type, cf_setup, cf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
