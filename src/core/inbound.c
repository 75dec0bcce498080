#include "core/inbound.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/account.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/flow.h"
#include "core/message.h"
#include "core/phone.h"
#include "util/timeutil.h"

/* ---- routing ---- */

int cd_inbound_route(cd_db *db, const char *to, cd_account *out, cd_err *err)
{
    cd_sender s;
    char e164[CD_PHONE_MAX], idbuf[32];
    assert(to != NULL && out != NULL);
    bool known = cd_store_sender_get(db, to, &s, NULL) == 0;
    if (!known && to[0] >= '1' && to[0] <= '9') {
        snprintf(e164, sizeof e164, "+%.22s", to);
        known = cd_store_sender_get(db, e164, &s, NULL) == 0;
    }
    if (!known)
        known = cd_phone_normalize(to, "US", "to", e164, NULL) == 0 &&
                cd_store_sender_get(db, e164, &s, NULL) == 0;
    if (!known)
        return cd_fail(err, CD_ENOTFOUND, "to", "no account owns this number");
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)s.account_id);
    return cd_store_account_get(db, "id", idbuf, out, err);
}

int cd_inbound_unrouted(cd_db *db, const cd_inbound_in *in, const char *transport, cd_err *err)
{
    assert(in != NULL && transport != NULL);
    /* The record owns its text; a copy keeps the caller's const. */
    cd_unrouted u = {.text = strdup(in->text ? in->text : ""), .received_ms = cd_now_ms()};
    if (u.text == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    snprintf(u.from, sizeof u.from, "%.31s", in->from ? in->from : "");
    snprintf(u.to, sizeof u.to, "%.31s", in->to ? in->to : "");
    snprintf(u.provider_id, sizeof u.provider_id, "%.63s", in->provider_id ? in->provider_id : "");
    snprintf(u.transport, sizeof u.transport, "%s", transport);
    int rc = cd_store_unrouted_insert(db, &u, err);
    free(u.text);
    return rc;
}

/* ---- keywords ---- */

static int reply(cd_db *db, const cd_account *a, const json_t *settings, cd_keyword_action act,
                 const cd_contact *c, const char *our_number, cd_err *err)
{
    char *text = cd_keyword_reply(act, settings, cd_account_brand(a));
    cd_sender s;
    /* Answer from the number they wrote to, when it is one of ours. */
    bool ours =
        our_number && cd_store_sender_get(db, our_number, &s, NULL) == 0 && s.account_id == a->id;
    cd_send_in in = {.to = c->phone,
                     .from = ours ? our_number : NULL,
                     .text = text,
                     .scope = "all",
                     .kind = "keyword_reply",
                     .action = cd_keyword_action_name(act), /* "help" is capped */
                     .category = "transactional",
                     .contact_id = c->id};
    int rc = cd_message_queue(db, a, settings, &in, NULL, err);
    free(text);
    return rc;
}

/* issue 10: the confirmation a flow asked for (ProTexting's ConfirmMessage), sent once,
 * instead of the START reply, from the number they wrote to when it is one of ours. */
static int send_confirmation(cd_db *db, const cd_account *a, const json_t *settings,
                             const cd_contact *c, const char *our_number, const char *text,
                             const char *scope, cd_err *err)
{
    cd_sender s;
    bool ours =
        our_number && cd_store_sender_get(db, our_number, &s, NULL) == 0 && s.account_id == a->id;
    cd_send_in in = {.to = c->phone,
                     .from = ours ? our_number : NULL,
                     .text = text,
                     .scope = scope,
                     .kind = "confirmation",
                     .category = "transactional",
                     .contact_id = c->id};
    return cd_message_queue(db, a, settings, &in, NULL, err);
}

/* START/YES: confirms the pending flows, or opts in to everything when there are none. */
static int start(cd_db *db, const cd_account *a, const json_t *settings, const cd_contact *c,
                 const char *to, const cd_provenance *p, cd_state before, cd_err *err)
{
    cd_scope all = {.kind = CD_SCOPE_ALL};
    char *confirm = NULL, scope[CD_SCOPE_LEN];
    int confirmed = 0, rc = -1;
    cd_err e = {0};
    if (cd_flow_confirm_text(db, a->id, c->id, &confirm, scope, err) != 0 ||
        cd_flow_confirm_contact(db, a, c->id, p, &confirmed, err) != 0)
        goto done;
    if (before == CD_STATE_OPTED_OUT || (confirmed == 0 && before != CD_STATE_OPTED_IN)) {
        if (cd_consent_set(db, a->id, c, all, CD_STATE_OPTED_IN, CD_CONSENT_OVERRIDE, p, NULL, NULL,
                           err) != 0)
            goto done;
    } else if (confirmed == 0) {
        rc = 0; /* already subscribed: nothing changed, nothing to confirm */
        goto done;
    }
    rc = confirmed > 0 && confirm ? send_confirmation(db, a, settings, c, to, confirm, scope, &e)
                                  : reply(db, a, settings, CD_KW_START, c, to, &e);
    /* A confirmation needs a sender where the keyword reply does not: without one the YES
     * still counts, answered with the START reply, which is always allowed out. */
    if (rc != 0 && confirm && strcmp(cd_err_reason(&e), "no_sender") == 0)
        rc = reply(db, a, settings, CD_KW_START, c, to, &e);
    if (rc != 0 && err)
        *err = e;
done:
    free(confirm);
    return rc;
}

static int apply_keyword(cd_db *db, const cd_account *a, const json_t *settings,
                         cd_keyword_action act, const cd_contact *c, const char *to,
                         const cd_provenance *p, cd_err *err)
{
    cd_scope all = {.kind = CD_SCOPE_ALL};
    cd_state before;
    if (cd_consent_state(db, a->id, c->id, all, &before, err) != 0)
        return -1;
    switch (act) {
    case CD_KW_STOP:
        /* issue 13: pending flows are cancelled, confirmed ones revoked */
        if (cd_consent_set(db, a->id, c, all, CD_STATE_OPTED_OUT, 0, p, NULL, NULL, err) != 0 ||
            cd_flow_cancel_contact(db, a->id, c->id, p, err) != 0 ||
            cd_flow_revoke_contact(db, a->id, c->id, all, NULL, err) != 0)
            return -1;
        /* One confirmation per revocation: a repeated STOP gets no second text. */
        return before == CD_STATE_OPTED_OUT ? 0 : reply(db, a, settings, act, c, to, err);
    case CD_KW_START:
        return start(db, a, settings, c, to, p, before, err);
    case CD_KW_HELP:
        return reply(db, a, settings, act, c, to, err);
    default:
        return 0;
    }
}

int cd_inbound_receive(cd_db *db, const cd_account *a, const cd_inbound_in *in, cd_message *out,
                       cd_keyword_action *action, cd_err *err)
{
    char from[CD_PHONE_MAX], to[CD_PHONE_MAX], word[32];
    json_t *settings = NULL;
    cd_contact c = {0};
    int rc = -1;
    assert(a != NULL && in != NULL && out != NULL && action != NULL);
    bool valid = cd_phone_normalize(in->from, a->region, "from", from, NULL) == 0;
    if (cd_phone_normalize(in->to, a->region, "to", to, NULL) != 0)
        snprintf(to, sizeof to, "%.23s", in->to ? in->to : "");
    memset(out, 0, sizeof *out);
    *action = CD_KW_NONE;
    if (cd_store_settings_get(db, a->id, &settings, err) != 0)
        return -1;
    if (valid && cd_contact_apply(db, a->id, 0, &(cd_contact_patch){.phone = from, .merge = true},
                                  true, &c, NULL, err) != 0)
        goto done;
    cd_message_new_id(out->id);
    out->account_id = a->id;
    snprintf(out->to, sizeof out->to, "%s", to);
    snprintf(out->from, sizeof out->from, "%.23s", valid ? from : in->from ? in->from : "");
    out->text = strdup(in->text ? in->text : "");
    snprintf(out->kind, sizeof out->kind, "inbound");
    snprintf(out->direction, sizeof out->direction, "in");
    snprintf(out->scope, sizeof out->scope, "all");
    snprintf(out->category, sizeof out->category, "transactional");
    snprintf(out->provider_id, sizeof out->provider_id, "%.63s",
             in->provider_id ? in->provider_id : "");
    out->contact_id = c.id;
    out->parts = 1;
    out->created_ms = out->updated_ms = cd_now_ms();
    cd_message_history(out, "received", NULL, out->created_ms);
    if (cd_store_message_insert(db, out, err) != 0)
        goto done;
    if (valid) {
        cd_keyword_action act = cd_keyword_classify(in->text, settings, word);
        cd_provenance p = {.surface = in->surface,
                           .channel = "sms",
                           .keyword = word,
                           .credential_id = in->credential_id,
                           .request_id = in->request_id,
                           .ip = in->ip};
        if (apply_keyword(db, a, settings, act, &c, to, &p, err) != 0)
            goto done;
        *action = act;
    }
    /* issue 15: message.inbound, in the transaction that stored it */
    if (cd_events_message_inbound(db, out, cd_keyword_action_name(*action), err) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        cd_message_clear(out);
    cd_contact_clear(&c);
    json_decref(settings);
    return rc;
}
