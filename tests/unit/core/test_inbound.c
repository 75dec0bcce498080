/* tests/unit/core/test_inbound.c -- core/inbound.h against a real SQLite store (issue 9
 * parts 7, 9 and 10): routing an MO to the account that owns the number, keeping an
 * unrouted one, the keywords (STOP, START/YES, HELP) with their replies and flows, and
 * "{brand}" in the replies being the account's brand. */
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

#include "core_fixture.h"

#define ACME_NUM "+16465550190"
#define BETA_NUM "+16465550191"

/* ---- routing (issue 9 part 7: the outbox worker's policy, now in core) ---- */

typedef struct route_case {
    const char *to;
    const char *account; /* NULL: no account owns it */
} route_case;

static void test_route(void **state)
{
    cf_fx *fx = *state;
    cf_add_sender(fx, fx->acme.id, ACME_NUM);
    cf_add_sender(fx, fx->beta.id, BETA_NUM);
    cf_add_sender(fx, fx->beta.id, "72345"); /* a short code */
    static const route_case cases[] = {
        {ACME_NUM, "acme"},         /* as given */
        {"16465550190", "acme"},    /* international digits without "+" */
        {"(646) 555-0190", "acme"}, /* a national (US) reading */
        {"6465550191", "beta"},     {"72345", "beta"}, {"+16465550199", NULL}, {"", NULL},
        {"not a number", NULL},
    };
    cd_db *db = cd_store_reader(fx->store);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cd_account a;
        cd_err err = {0};
        int rc = cd_inbound_route(db, cases[i].to, &a, &err);
        if (cases[i].account == NULL) {
            if (rc != -1 || err.code != CD_ENOTFOUND)
                fail_msg("\"%s\" routed (rc %d, code %d)", cases[i].to, rc, (int)err.code);
        } else if (rc != 0 || strcmp(a.name, cases[i].account) != 0) {
            fail_msg("\"%s\": rc %d, account %s", cases[i].to, rc, rc == 0 ? a.name : err.msg);
        }
    }
    cd_store_release(fx->store, db);
}

static int job_unrouted(cd_db *db, void *arg, cd_err *err)
{
    return cd_inbound_unrouted(db, arg, "smpp", err);
}

typedef struct unrouted_list {
    int n;
    cd_unrouted u;
    char text[64];
} unrouted_list;

static int collect_unrouted(const cd_unrouted *u, void *arg)
{
    unrouted_list *l = arg;
    if (l->n++ == 0) {
        l->u = *u;
        snprintf(l->text, sizeof l->text, "%s", u->text ? u->text : "");
        l->u.text = NULL;
    }
    return 0;
}

static void test_unrouted_kept(void **state)
{
    cf_fx *fx = *state;
    cd_err err = {0};
    /* from is longer than the record holds: shortened, not refused. */
    cd_inbound_in in = {.from = "+1646555010012345678901234567890123456789",
                        .to = "+16465550199",
                        .text = "STOP",
                        .provider_id = "p-1"};
    assert_int_equal(cf_run(fx, job_unrouted, &in, &err), 0);
    unrouted_list l = {0};
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_unrouted_list(db, 10, collect_unrouted, &l, NULL), 0);
    cd_store_release(fx->store, db);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.u.to, "+16465550199");
    assert_int_equal(strlen(l.u.from), 31);
    assert_string_equal(l.u.transport, "smpp");
    assert_string_equal(l.u.provider_id, "p-1");
    assert_string_equal(l.text, "STOP");
}

/* ---- receiving ---- */

typedef struct recv_op {
    const cd_account *a;
    cd_inbound_in in;
    cd_message out;
    cd_keyword_action action;
} recv_op;

static int job_receive(cd_db *db, void *arg, cd_err *err)
{
    recv_op *o = arg;
    return cd_inbound_receive(db, o->a, &o->in, &o->out, &o->action, err);
}

/* An SMS from `from` to `to` with `text` for account a; returns the keyword's action. */
static cd_keyword_action receive(cf_fx *fx, const cd_account *a, const char *from, const char *to,
                                 const char *text)
{
    recv_op o = {.a = a, .in = {.from = from, .to = to, .text = text, .surface = "smpp"}};
    cd_err err = {0};
    if (cf_run(fx, job_receive, &o, &err) != 0)
        fail_msg("receive %s: %s", text, err.msg);
    assert_string_equal(o.out.direction, "in");
    assert_string_equal(o.out.kind, "inbound");
    assert_string_equal(o.out.status, "received");
    cd_message_clear(&o.out);
    return o.action;
}

static void test_stop_one_reply_with_brand(void **state)
{
    cf_fx *fx = *state;
    const char *from = "+16465550100";
    cf_add_sender(fx, fx->acme.id, ACME_NUM);
    cf_set_consent(fx, fx->acme.id, from, "all", CD_STATE_OPTED_IN);
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, " stop "), CD_KW_STOP);
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_OPTED_OUT);
    /* A repeated STOP changes nothing and gets no second text. */
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "STOP"), CD_KW_STOP);
    cf_msgs l;
    cf_messages(fx, fx->acme.id, from, "keyword_reply", &l);
    assert_int_equal(l.n, 1);
    /* issue 9 part 9: the brand (ACME), not the account's name (acme). */
    assert_string_equal(l.m[0].text, "ACME: You are unsubscribed and will get no more messages. "
                                     "Reply START to resubscribe.");
    assert_string_equal(l.m[0].from, ACME_NUM); /* answered from the number written to */
    assert_string_equal(l.m[0].category, "transactional");
    cf_msgs_clear(&l);
    cf_messages(fx, fx->acme.id, NULL, "inbound", &l);
    assert_int_equal(l.n, 2);
    cf_msgs_clear(&l);
}

static void test_help_reply_brand_not_name(void **state)
{
    cf_fx *fx = *state;
    const char *from = "+16465550101";
    assert_int_equal(receive(fx, &fx->beta, from, BETA_NUM, "help"), CD_KW_HELP);
    cf_msgs l;
    cf_messages(fx, fx->beta.id, from, "keyword_reply", &l);
    assert_int_equal(l.n, 1);
    /* issue 9 part 9: beta's brand is BETACO; its name would give "beta:". */
    assert_string_equal(l.m[0].text, "BETACO: Reply STOP to unsubscribe, START to resubscribe. "
                                     "Msg&data rates may apply.");
    assert_string_equal(l.m[0].from, ""); /* BETA_NUM is not registered here */
    cf_msgs_clear(&l);
    /* HELP is no consent. */
    assert_int_equal(cf_state(fx, fx->beta.id, from, "all"), CD_STATE_NONE);
}

static void test_brand_falls_back_to_name(void **state)
{
    (void)state;
    cd_account a = {.id = 1};
    snprintf(a.name, sizeof a.name, "shop");
    assert_string_equal(cd_account_brand(&a), "shop"); /* no brand: the name */
    snprintf(a.brand, sizeof a.brand, "SHOPCO");
    assert_string_equal(cd_account_brand(&a), "SHOPCO");
}

typedef struct flow_op {
    const cd_account *a;
    const char *phone;
    cd_flow flow;
} flow_op;

static int job_flow(cd_db *db, void *arg, cd_err *err)
{
    flow_op *o = arg;
    json_t *scopes = json_pack("[s]", "all");
    cd_flow_in in = {.phone = o->phone, .scopes = scopes, .channel = "sms"};
    cd_provenance p = {.surface = "native", .channel = "api"};
    int rc = cd_flow_start(db, o->a, &in, &p, &o->flow, NULL, err);
    json_decref(scopes);
    return rc;
}

static void flow_status(cf_fx *fx, const cd_account *a, const char *id, const char *want)
{
    cd_flow f;
    cd_db *db = cd_store_reader(fx->store);
    assert_int_equal(cd_store_flow_get(db, a->id, id, &f, NULL), 0);
    cd_store_release(fx->store, db);
    assert_string_equal(f.status, want);
    cd_flow_clear(&f);
}

static void test_yes_confirms_pending_flow(void **state)
{
    cf_fx *fx = *state;
    const char *from = "+16465550102";
    flow_op o = {.a = &fx->acme, .phone = from};
    cd_err err = {0};
    assert_int_equal(cf_run(fx, job_flow, &o, &err), 0);
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_PENDING);
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "Yes"), CD_KW_START);
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_OPTED_IN);
    flow_status(fx, &fx->acme, o.flow.id, "confirmed");
    cf_msgs l;
    cf_messages(fx, fx->acme.id, from, "keyword_reply", &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.m[0].text, "ACME: You are subscribed. Msg&data rates may apply. "
                                     "Reply HELP for help, STOP to cancel.");
    cf_msgs_clear(&l);
    /* Subscribed already and nothing pending: no second confirmation. */
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "START"), CD_KW_START);
    cf_messages(fx, fx->acme.id, from, "keyword_reply", &l);
    assert_int_equal(l.n, 1);
    cf_msgs_clear(&l);
    cd_flow_clear(&o.flow);
}

static void test_stop_cancels_pending_flow(void **state)
{
    cf_fx *fx = *state;
    const char *from = "+16465550103";
    flow_op o = {.a = &fx->acme, .phone = from};
    cd_err err = {0};
    assert_int_equal(cf_run(fx, job_flow, &o, &err), 0);
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "STOP"), CD_KW_STOP);
    flow_status(fx, &fx->acme, o.flow.id, "cancelled");
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_OPTED_OUT);
    /* START lifts the opt-out (an explicit consent) and says so. */
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "START"), CD_KW_START);
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_OPTED_IN);
    cd_flow_clear(&o.flow);
}

static void test_invalid_sender_stored_no_keyword(void **state)
{
    cf_fx *fx = *state;
    /* Not a phone number: the message is kept, no contact, no keyword applied. */
    assert_int_equal(receive(fx, &fx->acme, "SHORTNAME", ACME_NUM, "STOP"), CD_KW_NONE);
    cf_msgs l;
    cf_messages(fx, fx->acme.id, NULL, "inbound", &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.m[0].from, "SHORTNAME");
    assert_int_equal(l.m[0].contact_id, 0);
    cf_msgs_clear(&l);
    cf_messages(fx, fx->acme.id, NULL, "keyword_reply", &l);
    assert_int_equal(l.n, 0);
}

static void test_tenant_isolation(void **state)
{
    cf_fx *fx = *state;
    const char *from = "+16465550104";
    cf_set_consent(fx, fx->beta.id, from, "all", CD_STATE_OPTED_IN);
    assert_int_equal(receive(fx, &fx->acme, from, ACME_NUM, "STOP"), CD_KW_STOP);
    assert_int_equal(cf_state(fx, fx->acme.id, from, "all"), CD_STATE_OPTED_OUT);
    assert_int_equal(cf_state(fx, fx->beta.id, from, "all"), CD_STATE_OPTED_IN);
}

/* ---- preconditions the header states are asserted (issue 9 part 10) ---- */

static void route_null_to(void *arg)
{
    cd_account a;
    (void)arg;
    (void)cd_inbound_route(NULL, NULL, &a, NULL);
}

static void receive_null_in(void *arg)
{
    cd_message m;
    cd_keyword_action act;
    (void)cd_inbound_receive(NULL, arg, NULL, &m, &act, NULL);
}

static void test_preconditions(void **state)
{
    cf_fx *fx = *state;
    cf_expect_abort(route_null_to, NULL);
    cf_expect_abort(receive_null_in, &fx->acme);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_unrouted_kept, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_stop_one_reply_with_brand, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_help_reply_brand_not_name, cf_setup, cf_teardown),
        cmocka_unit_test(test_brand_falls_back_to_name),
        cmocka_unit_test_setup_teardown(test_yes_confirms_pending_flow, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_stop_cancels_pending_flow, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_sender_stored_no_keyword, cf_setup,
                                        cf_teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, cf_setup, cf_teardown),
        cmocka_unit_test_setup_teardown(test_preconditions, cf_setup, cf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
