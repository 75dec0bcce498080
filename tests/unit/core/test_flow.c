/* tests/unit/core/test_flow.c -- core/flow.h against a real SQLite store (issue 9 parts 8
 * and 10): cd_flow_start's steps (scopes marked pending, the flow record, the CTA queued),
 * its refusals leaving no trace, confirm/close/cancel, and the signed link's token. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/flow.h"
#include "core/message.h"
#include "util/timeutil.h"

#include "core_fixture.h"

#define DAY_MS 86400000LL

typedef struct start_op {
    const cd_account *a;
    const char *phone;
    const char *scopes; /* JSON array */
    const char *channel;
    const char *disclosure;
    int64_t ttl_ms;
    cd_flow flow;
    cd_message cta;
} start_op;

static int job_start(cd_db *db, void *arg, cd_err *err)
{
    start_op *o = arg;
    json_t *scopes = json_loads(o->scopes ? o->scopes : "[\"all\"]", 0, NULL);
    cd_flow_in in = {.phone = o->phone,
                     .scopes = scopes,
                     .channel = o->channel ? o->channel : "sms",
                     .disclosure = o->disclosure,
                     .ext_ref = "order-7",
                     .email = "x@example.com",
                     .ttl_ms = o->ttl_ms};
    cd_provenance p = {.surface = "native", .channel = "api"};
    int rc = cd_flow_start(db, o->a, &in, &p, &o->flow, &o->cta, err);
    json_decref(scopes);
    return rc;
}

static int count_flow(const cd_flow *f, int64_t rowid, void *arg)
{
    (void)f;
    (void)rowid;
    (*(int *)arg)++;
    return 0;
}

static int flows_of(cf_fx *fx, int64_t account_id)
{
    int n = 0;
    cd_db *db = cd_store_reader(fx->store);
    cd_flow_filter f = {.limit = 100};
    assert_int_equal(cd_store_flow_list(db, account_id, &f, count_flow, &n, NULL), 0);
    cd_store_release(fx->store, db);
    return n;
}

static void test_start_sms(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550100";
    start_op o = {.a = &fx->acme, .phone = phone};
    cd_err err = {0};
    int64_t t0 = cd_now_ms();
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    /* The record. */
    assert_int_equal(strncmp(o.flow.id, "flow_", 5), 0);
    assert_string_equal(o.flow.status, "pending");
    assert_string_equal(o.flow.phone, phone);
    assert_string_equal(o.flow.ext_ref, "order-7");
    assert_string_equal(o.flow.channel, "sms");
    assert_true(o.flow.contact_id > 0);
    assert_true(o.flow.expires_ms - o.flow.created_ms == CD_FLOW_DEFAULT_TTL_MS);
    assert_true(o.flow.created_ms >= t0);
    /* The default CTA with the brand (issue 9 part 9), and it is the disclosure. */
    assert_string_equal(o.flow.disclosure,
                        "ACME: Reply YES to confirm you want to receive our text messages. "
                        "Msg&data rates may apply. Reply STOP to cancel.");
    /* Scopes marked pending. */
    assert_int_equal(cf_state(fx, fx->acme.id, phone, "all"), CD_STATE_PENDING);
    /* The CTA queued. */
    assert_string_equal(o.cta.kind, "cta");
    assert_string_equal(o.cta.status, "queued");
    assert_string_equal(o.cta.flow_id, o.flow.id);
    assert_string_equal(o.cta.text, o.flow.disclosure);
    assert_string_equal(o.cta.category, "transactional");
    cf_msgs l;
    cf_messages(fx, fx->acme.id, phone, "cta", &l);
    assert_int_equal(l.n, 1);
    cf_msgs_clear(&l);
    assert_int_equal(flows_of(fx, fx->acme.id), 1);
    assert_int_equal(flows_of(fx, fx->beta.id), 0);
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
}

typedef struct bare_start {
    const cd_account *a;
    const char *phone, *disclosure;
    cd_flow flow;
} bare_start;

/* cd_flow_start() with no `cta` to fill, as the ProTexting opt-in calls it. */
static int job_start_bare(cd_db *db, void *arg, cd_err *err)
{
    bare_start *o = arg;
    json_t *scopes = json_pack("[s]", "all");
    cd_flow_in in = {
        .phone = o->phone, .scopes = scopes, .channel = "sms", .disclosure = o->disclosure};
    cd_provenance p = {.surface = "protexting", .channel = "sms"};
    int rc = cd_flow_start(db, o->a, &in, &p, &o->flow, NULL, err);
    json_decref(scopes);
    return rc;
}

/* issue 10: the caller's CTA text is counted once, when it is checked, and the CTA queued
 * without a `cta` to fill is stored as with one: its parts, its status and its history. */
static void test_start_cta_parts(void **state)
{
    cf_fx *fx = *state;
    static const struct {
        const char *text;
        int parts;
    } cases[] = {
        {"Reply YES", 1},
        /* 80 UCS-2 characters: two parts of 67. */
        {"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
         "\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d"
         "\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d\u4e2d",
         2},
    };
    const char *phones[] = {"+16465550141", "+16465550142"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bare_start o = {.a = &fx->acme, .phone = phones[i], .disclosure = cases[i].text};
        cd_err err = {0};
        assert_int_equal(cf_run(fx, job_start_bare, &o, &err), 0);
        cf_msgs l;
        cf_messages(fx, fx->acme.id, phones[i], "cta", &l);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.m[0].parts, cases[i].parts);
        assert_string_equal(l.m[0].status, "queued");
        assert_string_equal(l.m[0].text, cases[i].text);
        assert_string_equal(l.m[0].flow_id, o.flow.id);
        cd_message m;
        cd_db *db = cd_store_reader(fx->store);
        assert_int_equal(cd_store_message_get(db, fx->acme.id, l.m[0].id, &m, NULL), 0);
        cd_store_release(fx->store, db);
        assert_int_equal(json_array_size(m.history), 1);
        json_t *e = json_array_get(m.history, 0);
        assert_string_equal(json_string_value(json_object_get(e, "status")), "queued");
        assert_true(json_is_null(json_object_get(e, "detail")));
        cd_message_clear(&m);
        cf_msgs_clear(&l);
        cd_flow_clear(&o.flow);
    }
}

typedef struct raw_flow {
    cd_flow f;
    const char *scopes; /* JSON */
} raw_flow;

static int job_flow_insert(cd_db *db, void *arg, cd_err *err)
{
    raw_flow *r = arg;
    r->f.scopes = json_loads(r->scopes, 0, NULL);
    int rc = cd_store_flow_insert(db, &r->f, err);
    json_decref(r->f.scopes);
    r->f.scopes = NULL;
    return rc;
}

/* The scopes column of flow `id`, as stored. */
static void stored_scopes(cf_fx *fx, const char *id, char *out, size_t n)
{
    char path[TU_PATH_MAX + 16];
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    snprintf(path, sizeof path, "%s/core.db", fx->dir);
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT scopes FROM flows WHERE id = ?", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* issue 10: a flow's scopes are stored as json_dumps() writes them, whether they are the
 * scope names the store writes itself or anything else, which it dumps. */
static void test_flow_scopes_text(void **state)
{
    cf_fx *fx = *state;
    static const char *const cases[] = {
        "[\"all\"]",   "[\"group:7\",\"type:2\",\"all\"]", "[]", "[\"Odd \\\"x\\\" \\u00e9/\"]",
        "[\"all\",3]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_flow r = {.f = {.account_id = fx->acme.id, .contact_id = 1}, .scopes = cases[i]};
        snprintf(r.f.id, sizeof r.f.id, "flow_t%zu", i);
        snprintf(r.f.status, sizeof r.f.status, "pending");
        cd_err err = {0};
        assert_int_equal(cf_run(fx, job_flow_insert, &r, &err), 0);
        json_t *want = json_loads(cases[i], 0, NULL);
        char *text = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY), got[256];
        stored_scopes(fx, r.f.id, got, sizeof got);
        assert_string_equal(got, text);
        free(text);
        json_decref(want);
    }
}

static void test_start_ttl(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    cf_put_settings(fx, fx->acme.id, "{\"flow_ttl_days\":2}");
    start_op o = {.a = &fx->acme, .phone = "+16465550101"};
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    assert_true(o.flow.expires_ms - o.flow.created_ms == 2 * DAY_MS);
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
    /* The caller's ttl wins over the setting. */
    start_op p = {.a = &fx->acme, .phone = "+16465550102", .ttl_ms = 60000};
    assert_int_equal(cf_run(fx, job_start, &p, &err), 0);
    assert_true(p.flow.expires_ms - p.flow.created_ms == 60000);
    cd_flow_clear(&p.flow);
    cd_message_clear(&p.cta);
}

static void test_start_email_no_cta(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    start_op o = {.a = &fx->acme, .phone = "+16465550103", .channel = "email"};
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    assert_string_equal(o.flow.channel, "email");
    assert_string_equal(o.flow.email, "x@example.com");
    cf_msgs l;
    cf_messages(fx, fx->acme.id, NULL, NULL, &l);
    assert_int_equal(l.n, 0);
    cd_flow_clear(&o.flow);
}

static void test_start_refusals_leave_no_trace(void **state)
{
    cf_fx *fx = *state;
    const char *out = "+16465550104";
    cd_err err = {0};
    /* Opted out of everything: refused, nothing written. */
    cf_set_consent(fx, fx->acme.id, out, "all", CD_STATE_OPTED_OUT);
    start_op o = {.a = &fx->acme, .phone = out};
    assert_int_equal(cf_run(fx, job_start, &o, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.reason, "opted_out");
    /* A CTA text over CD_FLOW_CTA_MAX_PARTS parts. */
    char long_text[161 * CD_FLOW_CTA_MAX_PARTS];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    start_op t = {.a = &fx->acme, .phone = "+16465550105", .disclosure = long_text};
    assert_int_equal(cf_run(fx, job_start, &t, &err), -1);
    assert_string_equal(err.reason, "text_too_long");
    /* A scope that names no group: refused after the first step, rolled back whole. */
    start_op g = {.a = &fx->acme, .phone = "+16465550106", .scopes = "[\"all\",\"group:99\"]"};
    assert_int_equal(cf_run(fx, job_start, &g, &err), -1);
    assert_string_equal(err.reason, "invalid_scope");
    assert_int_equal(cf_state(fx, fx->acme.id, "+16465550106", "all"), CD_STATE_NONE);
    assert_int_equal(flows_of(fx, fx->acme.id), 0);
    cf_msgs l;
    cf_messages(fx, fx->acme.id, NULL, NULL, &l);
    assert_int_equal(l.n, 0);
}

static void test_start_leaves_decided_scopes(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550107";
    cd_err err = {0};
    cf_set_consent(fx, fx->acme.id, phone, "all", CD_STATE_OPTED_IN);
    start_op o = {.a = &fx->acme, .phone = phone};
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    /* Someone who agreed is not asked again: still opted in, not pending. */
    assert_int_equal(cf_state(fx, fx->acme.id, phone, "all"), CD_STATE_OPTED_IN);
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
}

/* ---- confirm, close, per contact ---- */

typedef struct change_op {
    const cd_account *a;
    const char *id;
    const char *what; /* "confirm", "cancel", "confirm_contact", "cancel_contact" */
    int64_t contact_id;
    int count;
} change_op;

static int job_change(cd_db *db, void *arg, cd_err *err)
{
    change_op *o = arg;
    cd_provenance p = {.surface = "native", .channel = "api"};
    if (strcmp(o->what, "confirm_contact") == 0)
        return cd_flow_confirm_contact(db, o->a, o->contact_id, &p, &o->count, err);
    if (strcmp(o->what, "cancel_contact") == 0)
        return cd_flow_cancel_contact(db, o->a->id, o->contact_id, &p, err);
    cd_flow f;
    if (cd_store_flow_get(db, o->a->id, o->id, &f, err) != 0)
        return -1;
    int rc = strcmp(o->what, "confirm") == 0
                 ? cd_flow_confirm(db, o->a, &f, "api", &p, err)
                 : cd_flow_close(db, o->a->id, &f, "cancelled", &p, err);
    cd_flow_clear(&f);
    return rc;
}

static void test_confirm_then_cancel_refused(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550108";
    cd_err err = {0};
    start_op o = {.a = &fx->acme, .phone = phone};
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    change_op c = {.a = &fx->acme, .id = o.flow.id, .what = "confirm"};
    assert_int_equal(cf_run(fx, job_change, &c, &err), 0);
    assert_int_equal(cf_state(fx, fx->acme.id, phone, "all"), CD_STATE_OPTED_IN);
    assert_int_equal(cf_run(fx, job_change, &c, &err), 0); /* again: a no-op */
    change_op x = {.a = &fx->acme, .id = o.flow.id, .what = "cancel"};
    assert_int_equal(cf_run(fx, job_change, &x, &err), -1);
    assert_string_equal(err.reason, "flow_not_pending");
    /* Another account cannot see the flow. */
    change_op b = {.a = &fx->beta, .id = o.flow.id, .what = "confirm"};
    assert_int_equal(cf_run(fx, job_change, &b, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
}

static void test_cancel_withdraws_pending(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550109";
    cd_err err = {0};
    start_op o = {.a = &fx->acme, .phone = phone};
    assert_int_equal(cf_run(fx, job_start, &o, &err), 0);
    change_op x = {.a = &fx->acme, .id = o.flow.id, .what = "cancel"};
    assert_int_equal(cf_run(fx, job_change, &x, &err), 0);
    assert_int_equal(cf_state(fx, fx->acme.id, phone, "all"), CD_STATE_NONE);
    change_op c = {.a = &fx->acme, .id = o.flow.id, .what = "confirm"};
    assert_int_equal(cf_run(fx, job_change, &c, &err), -1);
    assert_string_equal(err.reason, "flow_not_pending");
    cd_flow_clear(&o.flow);
    cd_message_clear(&o.cta);
}

static void test_per_contact(void **state)
{
    cf_fx *fx = *state;
    const char *phone = "+16465550110";
    cd_err err = {0};
    start_op o1 = {.a = &fx->acme, .phone = phone};
    start_op o2 = {.a = &fx->acme, .phone = phone, .ttl_ms = 3600000};
    assert_int_equal(cf_run(fx, job_start, &o1, &err), 0);
    assert_int_equal(cf_run(fx, job_start, &o2, &err), 0);
    change_op c = {.a = &fx->acme, .what = "confirm_contact", .contact_id = o1.flow.contact_id};
    assert_int_equal(cf_run(fx, job_change, &c, &err), 0);
    assert_int_equal(c.count, 2);
    assert_int_equal(cf_run(fx, job_change, &c, &err), 0);
    assert_int_equal(c.count, 0); /* nothing pending any more */
    start_op o3 = {.a = &fx->acme, .phone = "+16465550111"};
    assert_int_equal(cf_run(fx, job_start, &o3, &err), 0);
    change_op x = {.a = &fx->acme, .what = "cancel_contact", .contact_id = o3.flow.contact_id};
    assert_int_equal(cf_run(fx, job_change, &x, &err), 0);
    change_op again = {.a = &fx->acme, .id = o3.flow.id, .what = "confirm"};
    assert_int_equal(cf_run(fx, job_change, &again, &err), -1);
    assert_string_equal(err.reason, "flow_not_pending");
    cd_flow_clear(&o1.flow);
    cd_flow_clear(&o2.flow);
    cd_flow_clear(&o3.flow);
    cd_message_clear(&o1.cta);
    cd_message_clear(&o2.cta);
    cd_message_clear(&o3.cta);
}

/* ---- the signed link ---- */

static void test_token(void **state)
{
    cf_fx *fx = *state;
    char tok[160], id[40];
    int64_t acc = 0;
    cd_flow_token(&fx->acme, "flow_abc", tok);
    assert_int_equal(cd_flow_token_parse(tok, &acc, id), 0);
    assert_int_equal(acc, fx->acme.id);
    assert_string_equal(id, "flow_abc");
    assert_true(cd_flow_token_valid(&fx->acme, tok));
    assert_false(cd_flow_token_valid(&fx->beta, tok)); /* another account's secret */
    tok[strlen(tok) - 1] = tok[strlen(tok) - 1] == '0' ? '1' : '0';
    assert_false(cd_flow_token_valid(&fx->acme, tok));
    assert_int_equal(cd_flow_token_parse("1.flow_abc.short", &acc, id), -1);
    assert_int_equal(cd_flow_token_parse(NULL, &acc, id), -1);
}

/* ---- preconditions (issue 9 part 10) ---- */

static void start_null_in(void *arg)
{
    cd_flow f;
    cd_provenance p = {0};
    (void)cd_flow_start(NULL, arg, NULL, &p, &f, NULL, NULL);
}

static void start_no_scopes(void *arg)
{
    cd_flow f;
    cd_provenance p = {0};
    cd_flow_in in = {.phone = "+16465550100", .channel = "sms"};
    (void)cd_flow_start(NULL, arg, &in, &p, &f, NULL, NULL);
}

static void test_preconditions(void **state)
{
    cf_fx *fx = *state;
    cf_expect_abort(start_null_in, &fx->acme);
    cf_expect_abort(start_no_scopes, &fx->acme);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_sms, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_start_cta_parts, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_flow_scopes_text, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_start_ttl, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_start_email_no_cta, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_start_refusals_leave_no_trace, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_start_leaves_decided_scopes, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_confirm_then_cancel_refused, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_withdraws_pending, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_per_contact, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_token, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_preconditions, cf_setup, cf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
