/* tests/unit/core/test_optin.c -- issue 13's core rules against a real SQLite store:
 * revoked flows (a confirmed flow whose contact opts out, by STOP or through the API, and
 * only the flows the opt-out covers), flows declined when made (nothing sent, the request
 * and its withdrawal in the ledger), the "smtp" setting's check, and its password never
 * shown by cd_settings_view or a PATCH's answer. */
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
#include "core/usecase.h"

#include "core_fixture.h"

typedef struct start_op {
    const cd_account *a;
    const char *phone;
    const char *scope;
    bool declined;
    cd_flow flow;
} start_op;

static int job_start(cd_db *db, void *arg, cd_err *err)
{
    start_op *o = arg;
    json_t *scopes = json_pack("[s]", o->scope ? o->scope : "all");
    cd_flow_in in = {.phone = o->phone, .scopes = scopes, .channel = "sms", .ext_ref = "ref-13"};
    cd_provenance p = {.surface = "cursor", .channel = "api", .ext_ref = "ref-13"};
    int rc = o->declined ? cd_flow_start_declined(db, o->a, &in, &p, &o->flow, err)
                         : cd_flow_start(db, o->a, &in, &p, &o->flow, NULL, err);
    json_decref(scopes);
    return rc;
}

typedef struct confirm_op {
    const cd_account *a;
    cd_flow *f;
} confirm_op;

static int job_confirm(cd_db *db, void *arg, cd_err *err)
{
    confirm_op *o = arg;
    cd_provenance p = {.surface = "cursor", .channel = "api"};
    return cd_flow_confirm(db, o->a, o->f, "api", &p, err);
}

static void status_of(cf_fx *fx, int64_t account_id, const char *id, char out[12])
{
    cd_flow f;
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_flow_get(db, account_id, id, &f, NULL), 0);
    snprintf(out, 12, "%s", f.status);
    cd_flow_clear(&f);
    cd_store_release(fx->store, db);
}

static void started_confirmed(cf_fx *fx, start_op *o)
{
    cd_err err = {0};
    assert_int_equal(cf_run(fx, job_start, o, &err), 0);
    confirm_op c = {o->a, &o->flow};
    assert_int_equal(cf_run(fx, job_confirm, &c, &err), 0);
}

typedef struct inbound_op {
    const cd_account *a;
    const char *from, *text;
} inbound_op;

static int job_inbound(cd_db *db, void *arg, cd_err *err)
{
    inbound_op *o = arg;
    cd_inbound_in in = {
        .from = o->from, .to = "+16465550199", .text = o->text, .surface = "native"};
    cd_message m;
    cd_keyword_action act;
    int rc = cd_inbound_receive(db, o->a, &in, &m, &act, err);
    if (rc == 0)
        cd_message_clear(&m);
    return rc;
}

/* A STOP revokes every confirmed flow of the contact, cancels the pending ones, and
 * touches no other contact's or account's flow. */
static void test_stop_revokes(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550120", *other = "+16465550121";
    char st[12];
    cd_err err = {0};
    start_op a = {.a = &fx->acme, .phone = phone}, b = {.a = &fx->acme, .phone = other};
    start_op pend = {.a = &fx->acme, .phone = phone}, beta = {.a = &fx->beta, .phone = phone};
    started_confirmed(fx, &a);
    started_confirmed(fx, &b);
    started_confirmed(fx, &beta);
    assert_int_equal(cf_run(fx, job_start, &pend, &err), 0);
    inbound_op stop = {&fx->acme, phone, "STOP"};
    assert_int_equal(cf_run(fx, job_inbound, &stop, &err), 0);
    status_of(fx, fx->acme.id, a.flow.id, st);
    assert_string_equal(st, "revoked");
    status_of(fx, fx->acme.id, pend.flow.id, st);
    assert_string_equal(st, "cancelled");
    status_of(fx, fx->acme.id, b.flow.id, st);
    assert_string_equal(st, "confirmed");
    status_of(fx, fx->beta.id, beta.flow.id, st);
    assert_string_equal(st, "confirmed");
    /* A revoked flow cannot be confirmed again: only a new flow (or START) opts back in. */
    confirm_op c = {&fx->acme, &a.flow};
    snprintf(a.flow.status, sizeof a.flow.status, "revoked");
    assert_int_equal(cf_run(fx, job_confirm, &c, &err), -1);
    assert_string_equal(err.reason, "flow_not_pending");
    cd_flow_clear(&a.flow);
    cd_flow_clear(&b.flow);
    cd_flow_clear(&pend.flow);
    cd_flow_clear(&beta.flow);
}

typedef struct record_op {
    int64_t account_id;
    const char *phone, *scope;
    cd_state state;
} record_op;

static int job_record(cd_db *db, void *arg, cd_err *err)
{
    record_op *o = arg;
    cd_consent_request rq = {
        .phone = o->phone, .state = o->state, .prov = {.surface = "native", .channel = "api"}};
    if (cd_scope_parse(o->scope, "scope", &rq.scope, err) != 0)
        return -1;
    return cd_consent_record(db, o->account_id, &rq, NULL, NULL, err);
}

typedef struct group_op {
    int64_t account_id;
    cd_named g;
} group_op;

static int job_group(cd_db *db, void *arg, cd_err *err)
{
    group_op *o = arg;
    return cd_named_create(db, "group", o->account_id, &o->g, err);
}

/* An opt-out recorded through an API revokes the confirmed flows whose scope it covers:
 * a group's opt-out that group's flows only, "all" every flow. */
static void test_api_optout_revokes_covered(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550122";
    char st[12], scope[40];
    cd_err err = {0};
    group_op g = {.account_id = fx->acme.id};
    snprintf(g.g.name, sizeof g.g.name, "news");
    assert_int_equal(cf_run(fx, job_group, &g, &err), 0);
    snprintf(scope, sizeof scope, "group:%lld", (long long)g.g.id);
    start_op inall = {.a = &fx->acme, .phone = phone};
    start_op ingroup = {.a = &fx->acme, .phone = phone, .scope = scope};
    started_confirmed(fx, &inall);
    started_confirmed(fx, &ingroup);
    record_op out = {fx->acme.id, phone, scope, CD_STATE_OPTED_OUT};
    assert_int_equal(cf_run(fx, job_record, &out, &err), 0);
    status_of(fx, fx->acme.id, ingroup.flow.id, st);
    assert_string_equal(st, "revoked");
    status_of(fx, fx->acme.id, inall.flow.id, st);
    assert_string_equal(st, "confirmed");
    /* An opt-in is no revocation. */
    record_op in = {fx->acme.id, phone, "all", CD_STATE_OPTED_IN};
    assert_int_equal(cf_run(fx, job_record, &in, &err), 0);
    status_of(fx, fx->acme.id, inall.flow.id, st);
    assert_string_equal(st, "confirmed");
    out.scope = "all";
    assert_int_equal(cf_run(fx, job_record, &out, &err), 0);
    status_of(fx, fx->acme.id, inall.flow.id, st);
    assert_string_equal(st, "revoked");
    cd_flow_clear(&inall.flow);
    cd_flow_clear(&ingroup.flow);
}

/* Declined when made: cancelled, no CTA, the consent left as it was, and refused like a
 * start for someone opted out of everything. */
static void test_declined(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550123";
    cd_err err = {0};
    start_op d = {.a = &fx->acme, .phone = phone, .declined = true};
    assert_int_equal(cf_run(fx, job_start, &d, &err), 0);
    assert_string_equal(d.flow.status, "cancelled");
    assert_string_equal(d.flow.ext_ref, "ref-13");
    assert_int_equal(cf_state(fx, fx->acme.id, phone, "all"), CD_STATE_NONE);
    cf_msgs l;
    cf_messages(fx, fx->acme.id, phone, "cta", &l);
    assert_int_equal(l.n, 0);
    cf_msgs_clear(&l);
    cd_flow_clear(&d.flow);
    cf_set_consent(fx, fx->acme.id, phone, "all", CD_STATE_OPTED_OUT);
    start_op again = {.a = &fx->acme, .phone = phone, .declined = true};
    assert_int_equal(cf_run(fx, job_start, &again, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.reason, "opted_out");
}

/* ---- the smtp setting ---- */

static void test_smtp_check(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"url\":\"smtp://mail.example.com:587\",\"from\":\"a@example.com\"}",
        "{\"url\":\"smtps://mail.example.com\",\"from\":\"a@example.com\",\"username\":\"u\","
        "\"password\":\"p\"}",
        "{\"url\":\"smtp://127.0.0.1:2525\",\"from\":\"a@b\",\"username\":null,\"password\":null}",
    };
    static const char *const bad[] = {
        "\"smtp://x\"",
        "{}",
        "{\"url\":\"http://mail.example.com\",\"from\":\"a@example.com\"}",
        "{\"url\":\"smtp://\",\"from\":\"a@example.com\"}",
        "{\"url\":\"smtp://m\",\"from\":\"nobody\"}",
        "{\"url\":\"smtp://m\",\"from\":\"a@b@c\"}",
        "{\"url\":\"smtp://m\",\"from\":\"<a@b>\"}",
        "{\"url\":\"smtp://m\",\"from\":\"a@b\\r\\nBcc: c@d\"}",
        "{\"url\":\"smtp://m\\r\\nRSET\",\"from\":\"a@b\"}",
        "{\"url\":\"smtp://m\",\"from\":\"a@b\",\"password\":7}",
        "{\"url\":\"smtp://m\",\"from\":\"a@b\",\"port\":25}",
    };
    cd_err err = {0};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *v = json_loads(good[i], 0, NULL);
        assert_non_null(v);
        if (cd_settings_check("smtp", v, &err) != 0)
            fail_msg("refused %s: %s", good[i], err.msg);
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        if (cd_settings_check("smtp", v, &err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_string_equal(err.field, "smtp");
        json_decref(v);
    }
    assert_int_equal(cd_settings_check("smtp", json_null(), &err), 0); /* removes it */
}

typedef struct patch_op {
    const cd_account *a;
    const char *json;
    json_t *out;
} patch_op;

static int job_patch(cd_db *db, void *arg, cd_err *err)
{
    patch_op *o = arg;
    json_t *patch = json_loads(o->json, 0, NULL);
    int rc = cd_settings_patch(db, o->a, patch, &o->out, err);
    json_decref(patch);
    return rc;
}

static json_t *stored_smtp(cf_fx *fx, int64_t account_id)
{
    json_t *s = NULL;
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_settings_get(db, account_id, &s, NULL), 0);
    cd_store_release(fx->store, db);
    json_t *smtp = json_incref(json_object_get(s, "smtp"));
    json_decref(s);
    return smtp;
}

/* The password is stored as given, shown as "***" (null when none), and kept by a PATCH
 * that leaves it out or sends the "***" back. */
static void test_smtp_password(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    patch_op p = {&fx->acme,
                  "{\"smtp\":{\"url\":\"smtp://m\",\"from\":\"a@b\",\"username\":\"u\","
                  "\"password\":\"hunter2\"}}",
                  NULL};
    assert_int_equal(cf_run(fx, job_patch, &p, &err), 0);
    char *shown = json_dumps(p.out, 0);
    assert_null(strstr(shown, "hunter2"));
    free(shown);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p.out, "smtp"), "password")), "***");
    json_decref(p.out);
    json_t *smtp = stored_smtp(fx, fx->acme.id);
    assert_string_equal(json_string_value(json_object_get(smtp, "password")), "hunter2");
    json_decref(smtp);
    const char *keep[] = {
        "{\"smtp\":{\"url\":\"smtp://n\",\"from\":\"a@b\",\"username\":\"u\"}}",
        "{\"smtp\":{\"url\":\"smtp://n\",\"from\":\"a@b\",\"password\":\"***\"}}"};
    for (int i = 0; i < 2; i++) {
        patch_op k = {&fx->acme, keep[i], NULL};
        assert_int_equal(cf_run(fx, job_patch, &k, &err), 0);
        json_decref(k.out);
        smtp = stored_smtp(fx, fx->acme.id);
        assert_string_equal(json_string_value(json_object_get(smtp, "url")), "smtp://n");
        assert_string_equal(json_string_value(json_object_get(smtp, "password")), "hunter2");
        json_decref(smtp);
    }
    patch_op none = {&fx->beta, "{\"smtp\":{\"url\":\"smtp://m\",\"from\":\"a@b\"}}", NULL};
    assert_int_equal(cf_run(fx, job_patch, &none, &err), 0);
    assert_true(json_is_null(json_object_get(json_object_get(none.out, "smtp"), "password")));
    json_decref(none.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop_revokes, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_api_optout_revokes_covered, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_declined, cf_setup, cf_teardown),
        cmocka_unit_test(test_smtp_check),
        cmocka_unit_test_setup_teardown(test_smtp_password, cf_setup, cf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
