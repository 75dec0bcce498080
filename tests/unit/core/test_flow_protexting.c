/* tests/unit/core/test_flow_protexting.c -- issue 10: the core rules the ProTexting surface
 * relies on, against a real SQLite store: cd_flow_start's CTA options (not asking someone
 * opted in to every scope, asking again after an opt-out made through the API, a refused
 * CTA stored after a STOP), OptedOutViaApi and its undo, the flow's ConfirmMessage sent once
 * on YES instead of the START reply, cd_store_event_last and the local-time formatter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/flow.h"
#include "core/inbound.h"
#include "core/message.h"
#include "util/timeutil.h"

#include "core_fixture.h"

#define PHONE "+16465550100"

typedef struct start_op {
    const cd_account *a;
    const char *phone;
    enum cd_flow_cta cta;
    bool admit, record;
    const char *confirm;
    cd_flow flow;
    cd_message cta_msg;
} start_op;

static int job_start(cd_db *db, void *arg, cd_err *err)
{
    start_op *o = arg;
    json_t *scopes = json_pack("[s]", "group:1");
    cd_flow_in in = {.phone = o->phone,
                     .scopes = scopes,
                     .channel = "sms",
                     .disclosure = "Reply YES",
                     .cta = o->cta,
                     .admit_api_optout = o->admit,
                     .record_refused_cta = o->record,
                     .confirm_text = o->confirm};
    cd_provenance p = {.surface = "protexting", .channel = "sms"};
    int rc = cd_flow_start(db, o->a, &in, &p, &o->flow, &o->cta_msg, err);
    json_decref(scopes);
    return rc;
}

static int job_group(cd_db *db, void *arg, cd_err *err)
{
    cd_named n = {0};
    snprintf(n.name, sizeof n.name, "news");
    return cd_store_named_insert(db, "group", ((cf_fx *)arg)->acme.id, &n, err);
}

static int setup(void **state)
{
    cd_err err = {0};
    cf_setup(state);
    if (cf_run(*state, job_group, *state, &err) != 0)
        fail_msg("group: %s", err.msg);
    return 0;
}

/* Sets `all` to `state` as `surface` over `channel` would. */
typedef struct consent_op {
    const cd_account *a;
    cd_state state;
    const char *surface, *channel;
} consent_op;

static int job_all(cd_db *db, void *arg, cd_err *err)
{
    consent_op *o = arg;
    cd_contact c;
    cd_provenance p = {.surface = o->surface, .channel = o->channel};
    if (cd_contact_apply(db, o->a->id, 0, &(cd_contact_patch){.phone = PHONE, .merge = true}, true,
                         &c, NULL, err) != 0)
        return -1;
    int rc = cd_consent_set(db, o->a->id, &c, (cd_scope){.kind = CD_SCOPE_ALL}, o->state,
                            CD_CONSENT_OVERRIDE, &p, NULL, NULL, err);
    cd_contact_clear(&c);
    return rc;
}

static void set_all(cf_fx *fx, cd_state st, const char *surface, const char *channel)
{
    consent_op o = {&fx->acme, st, surface, channel};
    cd_err err = {0};
    if (cf_run(fx, job_all, &o, &err) != 0)
        fail_msg("consent: %s", err.msg);
}

static int start(cf_fx *fx, start_op *o, cd_err *err)
{
    o->a = &fx->acme;
    o->phone = PHONE;
    int rc = cf_run(fx, job_start, o, err);
    cd_flow_clear(&o->flow);
    return rc;
}

static int n_messages(cf_fx *fx, const char *kind, const char *status, const char *text)
{
    cf_msgs l;
    int n = 0;
    cf_messages(fx, fx->acme.id, PHONE, kind, &l);
    for (int i = 0; i < l.n; i++)
        n += (!status || strcmp(l.m[i].status, status) == 0) &&
             (!text || strcmp(l.m[i].text, text) == 0);
    cf_msgs_clear(&l);
    return n;
}

static void test_unless_opted_in(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    start_op o = {.cta = CD_FLOW_CTA_UNLESS_OPTED_IN};
    cf_set_consent(fx, fx->acme.id, PHONE, "group:1", CD_STATE_OPTED_IN);
    assert_int_equal(start(fx, &o, &err), 0);
    assert_string_equal(o.cta_msg.id, ""); /* nobody asked: no flow, no CTA */
    assert_int_equal(n_messages(fx, "cta", NULL, NULL), 0);
    start_op always = {.cta = CD_FLOW_CTA_ALWAYS};
    assert_int_equal(start(fx, &always, &err), 0);
    assert_string_equal(always.cta_msg.status, "queued");
    cd_message_clear(&always.cta_msg);
    assert_int_equal(n_messages(fx, "cta", "queued", "Reply YES"), 1);
}

typedef struct claim_op {
    const cd_message *m;
    bool claimed;
    const char *refused;
} claim_op;

static int job_claim(cd_db *db, void *arg, cd_err *err)
{
    claim_op *c = arg;
    return cd_message_claim(db, c->m, cd_now_ms(), &c->claimed, &c->refused, err);
}

static void test_api_optout_asked_again(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    set_all(fx, CD_STATE_OPTED_OUT, "protexting", "api");
    start_op plain = {0};
    assert_int_equal(start(fx, &plain, &err), -1); /* the native rule is unchanged */
    assert_int_equal(err.code, CD_ECONFLICT);
    start_op o = {.admit = true, .record = true};
    assert_int_equal(start(fx, &o, &err), 0);
    assert_string_equal(o.cta_msg.status, "queued");
    /* The CTA is claimed (not refused) at send time too. */
    claim_op c = {.m = &o.cta_msg, .refused = "x"};
    assert_int_equal(cf_run(fx, job_claim, &c, &err), 0);
    assert_true(c.claimed);
    assert_null(c.refused);
    assert_int_equal(n_messages(fx, "cta", "sending", NULL), 1);
    cd_message_clear(&o.cta_msg);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "all"), CD_STATE_OPTED_OUT);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "group:1"), CD_STATE_PENDING);
}

static void test_stop_gets_refused_cta(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    set_all(fx, CD_STATE_OPTED_OUT, "smpp", "sms");
    start_op o = {.cta = CD_FLOW_CTA_ALWAYS, .admit = true, .record = true};
    assert_int_equal(start(fx, &o, &err), 0);
    assert_string_equal(o.cta_msg.status, "refused");
    assert_string_equal(o.cta_msg.reason, "opted_out");
    cd_message_clear(&o.cta_msg);
    assert_int_equal(n_messages(fx, "cta", "refused", "Reply YES"), 1);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "group:1"), CD_STATE_NONE); /* no flow */
    /* Without record_refused_cta it is the native refusal, and nothing is stored. */
    start_op plain = {.admit = true};
    assert_int_equal(start(fx, &plain, &err), -1);
    assert_string_equal(cd_err_reason(&err), "opted_out");
    assert_int_equal(n_messages(fx, "cta", NULL, NULL), 1);
}

typedef struct via_op {
    const cd_account *a;
    bool via, undone;
    cd_event last;
    int rc_last;
} via_op;

static int job_via(cd_db *db, void *arg, cd_err *err)
{
    via_op *o = arg;
    cd_contact c;
    if (cd_store_contact_by_phone(db, o->a->id, PHONE, &c, err) != 0)
        return -1;
    int rc = cd_consent_optout_via_api(db, o->a->id, c.id, &o->via, NULL, err);
    o->rc_last = cd_store_event_last(db, o->a->id, c.id, "all", &o->last, NULL);
    cd_contact_clear(&c);
    return rc;
}

static int job_undo(cd_db *db, void *arg, cd_err *err)
{
    via_op *o = arg;
    cd_contact c;
    cd_provenance p = {.surface = "protexting", .channel = "api"};
    if (cd_store_contact_by_phone(db, o->a->id, PHONE, &c, err) != 0)
        return -1;
    int rc = cd_consent_undo_api_optout(db, o->a->id, &c, &p, &o->undone, err);
    cd_contact_clear(&c);
    return rc;
}

static void test_via_api_and_undo(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    via_op o = {.a = &fx->acme};
    set_all(fx, CD_STATE_OPTED_IN, "native", "api");
    assert_int_equal(cf_run(fx, job_via, &o, &err), 0);
    assert_false(o.via); /* an opt-in is not an opt-out */
    assert_int_equal(o.rc_last, 0);
    assert_string_equal(o.last.new_state, "opted_in");
    set_all(fx, CD_STATE_OPTED_OUT, "protexting", "api");
    assert_int_equal(cf_run(fx, job_via, &o, &err), 0);
    assert_true(o.via);
    assert_string_equal(o.last.surface, "protexting");
    /* Undo: back to the opted-in state the opt-out replaced. */
    assert_int_equal(cf_run(fx, job_undo, &o, &err), 0);
    assert_true(o.undone);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "all"), CD_STATE_OPTED_IN);
    /* Nothing to undo now: no change, no error. */
    assert_int_equal(cf_run(fx, job_undo, &o, &err), 0);
    assert_false(o.undone);
    /* A STOP (channel sms) is not undone through the API. */
    set_all(fx, CD_STATE_OPTED_OUT, "smpp", "sms");
    assert_int_equal(cf_run(fx, job_via, &o, &err), 0);
    assert_false(o.via);
    assert_int_equal(cf_run(fx, job_undo, &o, &err), -1);
    assert_string_equal(cd_err_reason(&err), "opted_out_by_sms");
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "all"), CD_STATE_OPTED_OUT);
    /* Another account has no such contact and no event. */
    via_op b = {.a = &fx->beta};
    assert_int_equal(cf_run(fx, job_via, &b, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
}

static void test_undo_to_none(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    via_op o = {.a = &fx->acme};
    set_all(fx, CD_STATE_OPTED_OUT, "native", "api");
    assert_int_equal(cf_run(fx, job_undo, &o, &err), 0);
    assert_true(o.undone);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "all"), CD_STATE_NONE);
    assert_int_equal(cf_run(fx, job_via, &o, &err), 0);
    assert_string_equal(o.last.old_state, "opted_out");
    assert_string_equal(o.last.new_state, "none");
}

typedef struct recv_op {
    const cd_account *a;
    const char *text;
    cd_keyword_action action;
} recv_op;

static int job_receive(cd_db *db, void *arg, cd_err *err)
{
    recv_op *o = arg;
    cd_message m;
    cd_inbound_in in = {.from = PHONE, .to = "+16465550199", .text = o->text, .surface = "smpp"};
    int rc = cd_inbound_receive(db, o->a, &in, &m, &o->action, err);
    if (rc == 0)
        cd_message_clear(&m);
    return rc;
}

static void test_yes_sends_confirm_text_once(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    start_op o = {.confirm = "You are in"};
    assert_int_equal(start(fx, &o, &err), 0);
    cd_message_clear(&o.cta_msg);
    recv_op yes = {.a = &fx->acme, .text = "YES"};
    assert_int_equal(cf_run(fx, job_receive, &yes, &err), 0);
    assert_int_equal(yes.action, CD_KW_START);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "group:1"), CD_STATE_OPTED_IN);
    assert_int_equal(n_messages(fx, "confirmation", "queued", "You are in"), 1);
    assert_int_equal(n_messages(fx, "keyword_reply", NULL, NULL), 0);
    /* A second YES confirms nothing: the confirmation is not sent again. */
    assert_int_equal(cf_run(fx, job_receive, &yes, &err), 0);
    assert_int_equal(n_messages(fx, "confirmation", NULL, NULL), 1);
}

static void test_yes_without_confirm_text_replies(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    start_op o = {0}; /* a native flow: no confirm_text */
    assert_int_equal(start(fx, &o, &err), 0);
    cd_message_clear(&o.cta_msg);
    recv_op yes = {.a = &fx->acme, .text = "YES"};
    assert_int_equal(cf_run(fx, job_receive, &yes, &err), 0);
    assert_int_equal(n_messages(fx, "confirmation", NULL, NULL), 0);
    assert_int_equal(n_messages(fx, "keyword_reply", NULL, NULL), 1);
}

static void test_yes_without_sender_still_counts(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    start_op o = {.confirm = "You are in"};
    assert_int_equal(start(fx, &o, &err), 0);
    cd_message_clear(&o.cta_msg);
    /* Now smpp, with no sender: a confirmation cannot go, the exempt START reply can. */
    cf_put_settings(fx, fx->acme.id, "{\"transport\":\"smpp\"}");
    recv_op yes = {.a = &fx->acme, .text = "YES"};
    assert_int_equal(cf_run(fx, job_receive, &yes, &err), 0);
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "group:1"), CD_STATE_OPTED_IN);
    assert_int_equal(n_messages(fx, "confirmation", NULL, NULL), 0);
    assert_int_equal(n_messages(fx, "keyword_reply", NULL, NULL), 1);
}

/* The ProTexting job's path (perf): the caller applies the contact, reads the settings and
 * passes them in, with new_contact and scopes_exist; the outcome is the same as without. */
typedef struct caller_op {
    const cd_account *a;
    const char *phone;
    bool fresh;
    cd_flow flow;
    cd_message cta;
} caller_op;

static int job_caller(cd_db *db, void *arg, cd_err *err)
{
    caller_op *o = arg;
    json_t *scopes = json_pack("[s]", "group:1"), *groups = json_pack("[i]", 1), *settings = NULL;
    cd_contact c = {0};
    cd_contact_patch patch = {.phone = o->phone, .groups = groups, .merge = true};
    int rc = cd_contact_apply(db, o->a->id, 0, &patch, true, &c, &o->fresh, err);
    if (rc == 0)
        rc = cd_store_settings_get(db, o->a->id, &settings, err);
    if (rc == 0) {
        cd_flow_in in = {.phone = o->phone,
                         .scopes = scopes,
                         .channel = "sms",
                         .disclosure = "Reply YES",
                         .cta = CD_FLOW_CTA_UNLESS_OPTED_IN,
                         .admit_api_optout = true,
                         .record_refused_cta = true,
                         .contact = &c,
                         .settings = settings,
                         .new_contact = o->fresh,
                         .scopes_exist = true};
        cd_provenance p = {.surface = "protexting", .channel = "sms"};
        rc = cd_flow_start(db, o->a, &in, &p, &o->flow, &o->cta, err);
    }
    json_decref(settings);
    json_decref(scopes);
    json_decref(groups);
    cd_contact_clear(&c);
    return rc;
}

static void test_caller_reads(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    int64_t t0 = cd_now_ms();
    caller_op o = {.a = &fx->acme, .phone = PHONE};
    assert_int_equal(cf_run(fx, job_caller, &o, &err), 0);
    assert_true(o.fresh);
    /* "flow_" and 32 hex digits, the first 12 the creation time. */
    assert_int_equal(strlen(o.flow.id), 37);
    unsigned long long t = 0;
    assert_int_equal(sscanf(o.flow.id + 5, "%12llx", &t), 1);
    assert_true((int64_t)t >= t0 && (int64_t)t <= cd_now_ms());
    assert_string_equal(o.cta.status, "queued");
    assert_int_equal(cf_state(fx, fx->acme.id, PHONE, "group:1"), CD_STATE_PENDING);
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
    /* Known now: read as before. Pending is not opted in, so the CTA goes out again. */
    caller_op again = {.a = &fx->acme, .phone = PHONE};
    assert_int_equal(cf_run(fx, job_caller, &again, &err), 0);
    assert_false(again.fresh);
    assert_string_equal(again.cta.status, "queued");
    cd_flow_clear(&again.flow);
    cd_message_clear(&again.cta);
    assert_int_equal(n_messages(fx, "cta", "queued", "Reply YES"), 2);
}

/* A new contact's first CTA is not counted against its cap, but a cap of 0 still holds. */
static void test_caller_new_contact_cap(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    cf_put_settings(fx, fx->acme.id,
                    "{\"exempt_caps\":{\"cta\":{\"limit\":0,\"window_seconds\":60}}}");
    caller_op o = {.a = &fx->acme, .phone = PHONE};
    assert_int_equal(cf_run(fx, job_caller, &o, &err), 0);
    assert_true(o.fresh);
    assert_string_equal(o.cta.status, "refused");
    assert_string_equal(o.cta.reason, "rate_limited");
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
}

static void test_local_time(void **state)
{
    (void)state;
    char t[CD_TIME_LOCAL_LEN];
    /* 2015-01-20T15:21:29Z: 10:21:29 in New York (EST), 16:21:29 in Paris. */
    int64_t ms = 1421767289000LL + 500;
    assert_int_equal(cd_time_format_local(ms, "America/New_York", t), 0);
    assert_string_equal(t, "2015-01-20 10:21:29");
    assert_int_equal(cd_time_format_local(ms, "Europe/Paris", t), 0);
    assert_string_equal(t, "2015-01-20 16:21:29");
    assert_int_equal(cd_time_format_local(ms, "UTC", t), 0);
    assert_string_equal(t, "2015-01-20 15:21:29");
    /* Summer time: 2015-07-01T12:00:00Z is 08:00:00 EDT. */
    assert_int_equal(cd_time_format_local(1435752000000LL, "America/New_York", t), 0);
    assert_string_equal(t, "2015-07-01 08:00:00");
    assert_int_equal(cd_time_format_local(ms, "Nowhere/Special", t), -1);
    assert_string_equal(t, "2015-01-20 15:21:29"); /* UTC, and said so */
    assert_int_equal(cd_time_format_local(-62198755200001LL, "UTC", t), -1);
    assert_string_equal(t, "0000-00-00 00:00:00");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unless_opted_in, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_api_optout_asked_again, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_stop_gets_refused_cta, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_via_api_and_undo, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_undo_to_none, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_yes_sends_confirm_text_once, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_yes_without_confirm_text_replies, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_yes_without_sender_still_counts, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_caller_reads, setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_caller_new_contact_cap, setup, cf_teardown),
        cmocka_unit_test(test_local_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
