/* tests/unit/core/test_message.c -- core/message.h against a real SQLite store (issue 9
 * part 10): the consent-gated send and its refusals, validation leaving no trace, the caps
 * on exempt messages, quiet hours, the claim, and what transports report back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/message.h"
#include "util/timeutil.h"

#include "core_fixture.h"

#define SENDER "+16465550190"

typedef struct send_op {
    const cd_account *a;
    cd_send_in in;
    cd_message out;
    const char *refused;
} send_op;

static int job_send(cd_db *db, void *arg, cd_err *err)
{
    send_op *o = arg;
    return cd_message_send(db, o->a, &o->in, &o->out, &o->refused, err);
}

/* A marketing send of `text` to `to` under "all"; rc of the job. */
static int send(cf_fx *fx, send_op *o, const char *to, const char *text, cd_err *err)
{
    memset(o, 0, sizeof *o);
    o->a = &fx->acme;
    o->in = (cd_send_in){.to = to, .text = text, .scope = "all"};
    return cf_run(fx, job_send, o, err);
}

static void test_send_by_consent(void **state)
{
    cf_fx *fx = *state;
    static const struct {
        const char *phone;
        int state; /* -1: no contact */
        const char *refused;
    } cases[] = {
        {"+16465550100", -1, "no_consent"},
        {"+16465550101", CD_STATE_OPTED_IN, NULL},
        {"+16465550102", CD_STATE_OPTED_OUT, "opted_out"},
        {"+16465550103", CD_STATE_PENDING, "pending_confirmation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        send_op o;
        cd_err err = {0};
        if (cases[i].state >= 0)
            cf_set_consent(fx, fx->acme.id, cases[i].phone, "all", (cd_state)cases[i].state);
        assert_int_equal(send(fx, &o, cases[i].phone, "hello", &err), 0);
        cf_msgs l;
        cf_messages(fx, fx->acme.id, cases[i].phone, "send", &l);
        assert_int_equal(l.n, 1); /* a refusal is on record too */
        if (cases[i].refused == NULL) {
            assert_null(o.refused);
            assert_string_equal(l.m[0].status, "queued");
            assert_true(l.m[0].contact_id > 0);
        } else {
            assert_non_null(o.refused);
            assert_string_equal(o.refused, cases[i].refused);
            assert_string_equal(l.m[0].status, "refused");
            assert_string_equal(l.m[0].reason, cases[i].refused);
        }
        cf_msgs_clear(&l);
        cd_message_clear(&o.out);
    }
    /* Tenant isolation: beta sees none of it. */
    cf_msgs l;
    cf_messages(fx, fx->beta.id, NULL, NULL, &l);
    assert_int_equal(l.n, 0);
}

static void test_bad_input_leaves_no_trace(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550104";
    send_op o;
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_IN);
    char long_text[153 * CD_MESSAGE_MAX_PARTS + 2];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    assert_int_equal(send(fx, &o, to, long_text, &err), -1);
    assert_string_equal(err.reason, "text_too_long");
    assert_int_equal(send(fx, &o, to, "", &err), -1);
    assert_string_equal(err.reason, "invalid_field");
    memset(&o, 0, sizeof o);
    o.a = &fx->acme;
    o.in = (cd_send_in){.to = to, .text = "hi", .from = "+16465550199"};
    assert_int_equal(cf_run(fx, job_send, &o, &err), -1);
    assert_string_equal(err.reason, "unknown_sender");
    o.in = (cd_send_in){.to = to, .text = "hi", .scope = "group:5"};
    assert_int_equal(cf_run(fx, job_send, &o, &err), -1);
    assert_string_equal(err.reason, "invalid_scope");
    /* beta's number is not acme's sender. */
    cf_add_sender(fx, fx->beta.id, SENDER);
    o.in = (cd_send_in){.to = to, .text = "hi", .from = SENDER};
    assert_int_equal(cf_run(fx, job_send, &o, &err), -1);
    assert_string_equal(err.reason, "unknown_sender");
    cf_msgs l;
    cf_messages(fx, fx->acme.id, NULL, NULL, &l);
    assert_int_equal(l.n, 0);
}

static void test_sender_rule(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550105";
    send_op o;
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_IN);
    /* Over smpp a send needs a registered sender; a keyword reply does not. */
    cd_message_set_default_transport("smpp");
    assert_int_equal(send(fx, &o, to, "hi", &err), -1);
    assert_string_equal(err.reason, "no_sender");
    cf_add_sender(fx, fx->acme.id, SENDER);
    cf_put_settings(fx, fx->acme.id, "{\"default_sender\":\"" SENDER "\"}");
    assert_int_equal(send(fx, &o, to, "hi", &err), 0);
    assert_string_equal(o.out.from, SENDER);
    cd_message_clear(&o.out);
    cd_message_set_default_transport(NULL); /* back to "sink" */
}

typedef struct queue_op {
    const cd_account *a;
    cd_send_in in;
    cd_message out;
} queue_op;

static int job_queue(cd_db *db, void *arg, cd_err *err)
{
    queue_op *o = arg;
    json_t *settings = NULL;
    int rc = cd_store_settings_get(db, o->a->id, &settings, err);
    if (rc == 0)
        rc = cd_message_queue(db, o->a, settings, &o->in, &o->out, err);
    json_decref(settings);
    return rc;
}

static void test_help_cap(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550106";
    cd_err err = {0};
    for (int i = 0; i <= CD_CAP_HELP_LIMIT; i++) {
        queue_op o = {.a = &fx->acme,
                      .in = {.to = to,
                             .text = "help text",
                             .kind = "keyword_reply",
                             .action = "help",
                             .category = "transactional"}};
        assert_int_equal(cf_run(fx, job_queue, &o, &err), 0);
        /* Over the cap: kept, refused, and still 0. */
        assert_string_equal(o.out.status, i < CD_CAP_HELP_LIMIT ? "queued" : "refused");
        if (i == CD_CAP_HELP_LIMIT)
            assert_string_equal(o.out.reason, "rate_limited");
        cd_message_clear(&o.out);
    }
    /* The opt-out's confirmation is never capped. */
    for (int i = 0; i <= CD_CAP_HELP_LIMIT; i++) {
        queue_op o = {.a = &fx->acme,
                      .in = {.to = to,
                             .text = "bye",
                             .kind = "keyword_reply",
                             .action = "opted_out",
                             .category = "transactional"}};
        assert_int_equal(cf_run(fx, job_queue, &o, &err), 0);
        assert_string_equal(o.out.status, "queued");
        cd_message_clear(&o.out);
    }
}

static void test_exempt_caps_settings(void **state)
{
    (void)state;
    cd_err err = {0};
    json_t *d = cd_message_exempt_caps(NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "cta"), "limit")),
                     CD_CAP_CTA_LIMIT);
    json_decref(d);
    static const char *const bad[] = {
        "[]",
        "{\"sms\":{}}",
        "{\"cta\":1}",
        "{\"cta\":{\"limit\":-1}}",
        "{\"help\":{\"window_seconds\":0}}",
        "{\"help\":{\"limit\":1001}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        if (cd_message_exempt_caps_check(v, &err) != -1)
            fail_msg("%s accepted", bad[i]);
        assert_string_equal(err.field, "exempt_caps");
        json_decref(v);
    }
    json_t *ok = json_loads("{\"cta\":{\"limit\":0},\"help\":{\"window_seconds\":60}}", 0, NULL);
    assert_int_equal(cd_message_exempt_caps_check(ok, &err), 0);
    json_t *settings = json_pack("{sO}", "exempt_caps", ok);
    json_t *eff = cd_message_exempt_caps(settings);
    json_decref(settings);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(eff, "cta"), "limit")), 0);
    json_decref(eff);
    json_decref(ok);
}

/* "HH:MM" in UTC, `min` minutes from now. */
static void hhmm_from_now(int min, char out[6])
{
    time_t t = time(NULL) + min * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 6, "%02d:%02d", tm.tm_hour, tm.tm_min);
}

static void test_quiet_hours_hold_marketing_only(void **state)
{
    cf_fx *fx = *state;
    char start[6], end[6], json[96];
    cd_err err = {0};
    hhmm_from_now(-60, start);
    hhmm_from_now(60, end);
    snprintf(json, sizeof json, "{\"quiet_hours\":{\"start\":\"%s\",\"end\":\"%s\"}}", start, end);
    cf_put_settings(fx, fx->acme.id, json);
    queue_op m = {.a = &fx->acme, .in = {.to = "+16465550107", .text = "sale!"}};
    assert_int_equal(cf_run(fx, job_queue, &m, &err), 0);
    assert_true(m.out.next_attempt_ms > m.out.created_ms + 30 * 60000);
    queue_op t = {.a = &fx->acme,
                  .in = {.to = "+16465550107", .text = "code 1234", .category = "transactional"}};
    assert_int_equal(cf_run(fx, job_queue, &t, &err), 0);
    assert_true(t.out.next_attempt_ms == t.out.created_ms);
    cd_message_clear(&m.out);
    cd_message_clear(&t.out);
}

/* ---- claim and reports ---- */

typedef struct claim_op {
    cd_message m;
    bool claimed;
    const char *refused;
} claim_op;

static int job_claim(cd_db *db, void *arg, cd_err *err)
{
    claim_op *o = arg;
    return cd_message_claim(db, &o->m, cd_now_ms(), &o->claimed, &o->refused, err);
}

typedef struct sent_op {
    cd_sent_report r;
    int max_attempts;
} sent_op;

static int job_sent(cd_db *db, void *arg, cd_err *err)
{
    sent_op *o = arg;
    return cd_message_record_sent(db, &o->r, o->max_attempts, err);
}

typedef struct receipt_op {
    const char *remote_id, *status;
} receipt_op;

static int job_receipt(cd_db *db, void *arg, cd_err *err)
{
    receipt_op *o = arg;
    return cd_message_record_receipt(db, "sink", o->remote_id, o->status, NULL, err);
}

static void status_is(cf_fx *fx, const char *id, const char *want)
{
    cd_message m;
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_message_get(db, fx->acme.id, id, &m, NULL), 0);
    cd_store_release(fx->store, db);
    assert_string_equal(m.status, want);
    cd_message_clear(&m);
}

/* The sent entry that cd_message_record_sent appended, last in the history, and the ids. */
static void sent_entry_is(cf_fx *fx, const char *id, const char *remote)
{
    cd_message m;
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_message_get(db, fx->acme.id, id, &m, NULL), 0);
    cd_store_release(fx->store, db);
    assert_string_equal(m.transport_id, remote);
    assert_string_equal(m.transport, "sink");
    json_t *last = json_array_get(m.history, json_array_size(m.history) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "status")), "sent");
    assert_string_equal(json_string_value(json_object_get(last, "detail")), remote);
    assert_non_null(json_string_value(json_object_get(last, "at")));
    assert_true(json_array_size(m.history) >= 2); /* queued, then sent */
    cd_message_clear(&m);
}

/* issue 16: ids keep their form, "msg_" and 32 hex digits, and start with the time. */
static void test_new_id(void **state)
{
    (void)state;
    char a[40], b[40];
    int64_t before = cd_now_ms();
    cd_message_new_id(a);
    cd_message_new_id(b);
    int64_t after = cd_now_ms();
    assert_int_equal(strlen(a), 36);
    assert_memory_equal(a, "msg_", 4);
    assert_int_equal(strspn(a + 4, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
    char ts[13];
    memcpy(ts, a + 4, 12);
    ts[12] = '\0';
    long long t = strtoll(ts, NULL, 16);
    assert_true(t >= before && t <= after);
}

/* The ids' random bits come from a per-thread pool: across its refills every id keeps the
 * form and none repeats. */
static void test_new_id_pool(void **state)
{
    (void)state;
    enum { N = 300 }; /* several refills of a 64-id pool */
    static char ids[N][40];
    for (int i = 0; i < N; i++) {
        cd_message_new_id(ids[i]);
        assert_int_equal(strlen(ids[i]), 36);
        assert_int_equal(strspn(ids[i] + 4, "0123456789abcdef"), 32);
        for (int j = 0; j < i; j++) /* the random part alone differs */
            assert_memory_not_equal(ids[i] + 16, ids[j] + 16, 20);
    }
}

typedef struct bare_op {
    const cd_account *a;
    cd_send_in in;
    cd_message *out; /* NULL: the history is written as text */
} bare_op;

static int job_bare(cd_db *db, void *arg, cd_err *err)
{
    bare_op *o = arg;
    return cd_message_queue(db, o->a, NULL, &o->in, o->out, err);
}

/* The stored history of the one message to `to`, as text. */
static char *history_of(cf_fx *fx, const char *to)
{
    cf_msgs l;
    cd_message m;
    cf_messages(fx, fx->acme.id, to, "cta", &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.m[0].status, "queued");
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_message_get(db, fx->acme.id, l.m[0].id, &m, NULL), 0);
    cd_store_release(fx->store, db);
    char *s = json_dumps(m.history, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(s);
    cd_message_clear(&m);
    cf_msgs_clear(&l);
    return s;
}

/* issue 10: a message queued with no caller to read it stores its history as text, written
 * without jansson; it is what the JSON path stores, and it reads back as the same JSON. */
static void test_queue_history_text(void **state)
{
    cf_fx *fx = *state;
    const char *to[2] = {"+16465550131", "+16465550132"};
    cd_message out = {0};
    for (int i = 0; i < 2; i++) {
        bare_op o = {
            .a = &fx->acme,
            .in = {.to = to[i], .text = "Reply YES", .kind = "cta", .category = "transactional"},
            .out = i == 0 ? &out : NULL};
        cd_err err = {0};
        assert_int_equal(cf_run(fx, job_bare, &o, &err), 0);
    }
    char *a = history_of(fx, to[0]), *b = history_of(fx, to[1]);
    /* The same but for the time, which is the message's own. */
    assert_int_equal(strlen(a), strlen(b));
    assert_non_null(strstr(b, "\"status\":\"queued\""));
    assert_non_null(strstr(b, "\"detail\":null}]"));
    assert_memory_equal(a, b, strstr(a, "\"at\"") - a);
    assert_string_equal(strstr(a, "\"detail\""), strstr(b, "\"detail\""));
    /* A status change of a message that holds its history as text appends to it. */
    cd_message m = {.history_json = strdup(b)};
    cd_message_history(&m, "sent", "r1", 1);
    assert_int_equal(json_array_size(m.history), 2);
    assert_null(m.history_json);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m.history, 0), "status")),
                        "queued");
    cd_message_clear(&m);
    cd_message_clear(&out);
    free(a);
    free(b);
}

static void test_claim_sent_receipts(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550108";
    send_op o;
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_IN);
    assert_int_equal(send(fx, &o, to, "hello", &err), 0);
    claim_op c = {.m = o.out};
    assert_int_equal(cf_run(fx, job_claim, &c, &err), 0);
    assert_true(c.claimed);
    status_is(fx, o.out.id, "sending");
    sent_op s = {.r = {.account_id = fx->acme.id,
                       .id = o.out.id,
                       .transport = "sink",
                       .ok = true,
                       .remote_id = "r1,r2"},
                 .max_attempts = 5};
    assert_int_equal(cf_run(fx, job_sent, &s, &err), 0);
    status_is(fx, o.out.id, "sent");
    sent_entry_is(fx, o.out.id, "r1,r2"); /* issue 16: written in place, as before */
    receipt_op r1 = {"r1", "delivered"}, r2 = {"r2", "delivered"}, nope = {"r9", "delivered"};
    assert_int_equal(cf_run(fx, job_receipt, &r1, &err), 0);
    status_is(fx, o.out.id, "sent"); /* one part of two */
    assert_int_equal(cf_run(fx, job_receipt, &r2, &err), 0);
    status_is(fx, o.out.id, "delivered");
    assert_int_equal(cf_run(fx, job_receipt, &nope, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    cd_message_clear(&o.out);
}

static void test_failures_retry_then_fail(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550109";
    send_op o;
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_IN);
    assert_int_equal(send(fx, &o, to, "hello", &err), 0);
    claim_op c = {.m = o.out};
    assert_int_equal(cf_run(fx, job_claim, &c, &err), 0);
    sent_op s = {.r = {.account_id = fx->acme.id,
                       .id = o.out.id,
                       .transport = "sink",
                       .ok = false,
                       .error = "throttled"},
                 .max_attempts = 2};
    assert_int_equal(cf_run(fx, job_sent, &s, &err), 0);
    status_is(fx, o.out.id, "queued"); /* 1 attempt of 2: again later */
    assert_int_equal(cf_run(fx, job_claim, &c, &err), 0);
    assert_int_equal(cf_run(fx, job_sent, &s, &err), 0);
    status_is(fx, o.out.id, "failed");
    cd_message_clear(&o.out);
}

static void test_claim_after_opt_out(void **state)
{
    cf_fx *fx = *state;
    const char *to = "+16465550110";
    send_op o;
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_IN);
    assert_int_equal(send(fx, &o, to, "hello", &err), 0);
    cf_set_consent(fx, fx->acme.id, to, "all", CD_STATE_OPTED_OUT);
    claim_op c = {.m = o.out};
    assert_int_equal(cf_run(fx, job_claim, &c, &err), 0);
    assert_false(c.claimed);
    status_is(fx, o.out.id, "refused");
    cd_message_clear(&o.out);
}

/* ---- preconditions (issue 9 part 10) ---- */

static void send_null_in(void *arg)
{
    cd_message m;
    const char *r;
    (void)cd_message_send(NULL, arg, NULL, &m, &r, NULL);
}

static void claim_null(void *arg)
{
    bool claimed;
    const char *r;
    (void)arg;
    (void)cd_message_claim(NULL, NULL, 0, &claimed, &r, NULL);
}

static void test_preconditions(void **state)
{
    cf_fx *fx = *state;
    cf_expect_abort(send_null_in, &fx->acme);
    cf_expect_abort(claim_null, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_by_consent, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_leaves_no_trace, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_sender_rule, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_help_cap, cf_setup, cf_teardown),
        cmocka_unit_test(test_exempt_caps_settings),
        cmocka_unit_test(test_new_id),
        cmocka_unit_test(test_new_id_pool),
        cmocka_unit_test_setup_teardown(test_queue_history_text, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_quiet_hours_hold_marketing_only, cf_setup,
                                        cf_teardown),
        cmocka_unit_test_setup_teardown(test_claim_sent_receipts, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_failures_retry_then_fail, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_claim_after_opt_out, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_preconditions, cf_setup, cf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
