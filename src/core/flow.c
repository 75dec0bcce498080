#include "core/flow.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/account.h"
#include "core/contact.h"
#include "core/keyword.h"
#include "core/message.h"
#include "util/gsm.h"
#include "util/crypto.h"
#include "util/timeutil.h"

static int contact_of(cd_db *db, int64_t account_id, const char *phone, int64_t id, cd_contact *c,
                      cd_err *err)
{
    cd_contact_patch patch = {.phone = phone, .merge = true};
    return cd_contact_apply(db, account_id, id, &patch, id == 0, c, NULL, err);
}

/* The CTA is sent without consent, so the caller's text for it is kept short: a long
 * "disclosure" would make the CTA a free marketing message (issue 8 item 5). */
static int check_cta_text(const cd_flow_in *in, int *parts, cd_err *err)
{
    *parts = in->disclosure && strcmp(in->channel, "sms") == 0 ? cd_gsm_parts(in->disclosure) : 0;
    if (*parts > CD_FLOW_CTA_MAX_PARTS)
        return cd_fail_reason(err, CD_EINVAL, "text_too_long", "disclosure",
                              "the CTA text needs %d SMS parts; at most %d are allowed", *parts,
                              CD_FLOW_CTA_MAX_PARTS);
    return 0;
}

/* Whether scopes[0..i) holds `scope` (in any spelling the parser accepts). */
static bool repeated(const json_t *scopes, size_t i, cd_scope scope)
{
    for (size_t k = 0; k < i; k++) {
        cd_scope was;
        if (cd_scope_parse(json_string_value(json_array_get(scopes, k)), "scopes", &was, NULL) ==
                0 &&
            was.kind == scope.kind && was.id == scope.id)
            return true;
    }
    return false;
}

/* Marks each requested scope pending for contact c, with `prov` (which carries the
 * disclosure) in the ledger. */
static int mark_pending(cd_db *db, const cd_account *a, const cd_contact *c, const cd_flow_in *in,
                        const cd_provenance *prov, cd_err *err)
{
    size_t i;
    json_t *sv;
    json_array_foreach (in->scopes, i, sv) {
        cd_scope scope;
        cd_state st = CD_STATE_NONE; /* a new contact has no consent */
        if (cd_scope_parse(json_string_value(sv), "scopes", &scope, err) != 0)
            return -1;
        if (repeated(in->scopes, i, scope))
            continue; /* written once: st below is what the store had before this call */
        if ((!in->scopes_exist && cd_scope_exists(db, a->id, scope, "scopes", err) != 0) ||
            (!in->new_contact && cd_consent_state(db, a->id, c->id, scope, &st, err) != 0))
            return -1;
        /* Someone who already agreed is not asked again. A scope they opted out of is asked
         * again (the CTA goes out) but stays opted out until they confirm: asking is not
         * consent, and a pending state written over the opt-out would both allow sends under
         * an opted-in "all" and vanish with the flow (issue 8 item 2). */
        if (st != CD_STATE_OPTED_IN && st != CD_STATE_OPTED_OUT &&
            cd_consent_set_from(db, a->id, c, scope, st, CD_STATE_PENDING, CD_CONSENT_OVERRIDE,
                                prov, NULL, NULL, err) != 0) /* st was just read: no second read */
            return -1;
    }
    return 0;
}

/* Fills the new flow record (out->disclosure is already set): a fresh id, pending, and
 * its expiry from the caller's ttl, else the account's flow_ttl_days, else 30 days. */
static void build_flow(const cd_account *a, const cd_contact *c, const cd_flow_in *in,
                       const json_t *settings, cd_flow *out)
{
    int64_t now = cd_now_ms();
    json_int_t days = json_integer_value(json_object_get(settings, "flow_ttl_days"));
    int64_t ttl = in->ttl_ms > 0 ? in->ttl_ms
                  : days > 0     ? (int64_t)days * 86400000
                                 : CD_FLOW_DEFAULT_TTL_MS;
    /* "flow_" and 32 hex digits, as ever, time first: inserts go to the right edge of the
     * id index instead of a random page of it, which the commit would write to the WAL whole. */
    cd_time_id(out->id, sizeof out->id, "flow_", now);
    out->account_id = a->id;
    out->contact_id = c->id;
    snprintf(out->phone, sizeof out->phone, "%s", c->phone);
    snprintf(out->ext_ref, sizeof out->ext_ref, "%s", in->ext_ref ? in->ext_ref : "");
    out->scopes = json_deep_copy(in->scopes);
    snprintf(out->channel, sizeof out->channel, "%s", in->channel);
    snprintf(out->email, sizeof out->email, "%s", in->email ? in->email : "");
    snprintf(out->status, sizeof out->status, "pending");
    out->confirm_text = in->confirm_text && *in->confirm_text ? strdup(in->confirm_text) : NULL;
    out->created_ms = out->updated_ms = now;
    out->expires_ms = now + ttl;
}

/* Queues the CTA of an "sms" flow f (its disclosure, under the flow's first scope). */
static int queue_cta(cd_db *db, const cd_account *a, const json_t *settings, const cd_contact *c,
                     const cd_flow_in *in, const cd_flow *f, int parts, cd_message *cta,
                     cd_err *err)
{
    cd_send_in s = {.to = c->phone,
                    .text = f->disclosure,
                    .scope = json_string_value(json_array_get(f->scopes, 0)),
                    .kind = "cta",
                    .category = "transactional",
                    .flow_id = f->id,
                    .contact_id = c->id,
                    .new_contact = in->new_contact,
                    .parts = parts};
    /* Without `cta` nobody reads the message back: cd_message_queue() writes its history
     * as text. */
    return cd_message_queue(db, a, settings, &s, cta, err);
}

/* issue 10: true when every scope of the flow is opted in already. */
static int all_opted_in(cd_db *db, const cd_account *a, const cd_contact *c, const json_t *scopes,
                        bool *yes, cd_err *err)
{
    size_t i;
    json_t *sv;
    *yes = true;
    json_array_foreach (scopes, i, sv) {
        cd_scope scope;
        const char *reason;
        if (cd_scope_parse(json_string_value(sv), "scopes", &scope, err) != 0 ||
            cd_consent_check(db, a->id, c->id, scope, &reason, err) != 0)
            return -1;
        if (!cd_consent_reason_allows(reason))
            *yes = false;
    }
    return 0;
}

/* Whether contact c is asked at all (*ask). Someone who opted out of everything is not,
 * unless (issue 10) that opt-out came through the API and the caller admits it; with
 * record_refused_cta the CTA they are not sent is stored refused, into *cta. */
static int should_ask(cd_db *db, const cd_account *a, const cd_flow_in *in, const cd_contact *c,
                      const json_t *settings, const char *text, bool *ask, cd_message *cta,
                      cd_err *err)
{
    cd_state all;
    bool via_api = false, opted_in;
    *ask = true;
    if (in->new_contact) /* no consent yet: neither opted out nor opted in */
        return 0;
    if (cd_consent_state(db, a->id, c->id, (cd_scope){.kind = CD_SCOPE_ALL}, &all, err) != 0)
        return -1;
    if (all == CD_STATE_OPTED_OUT) {
        if (in->admit_api_optout &&
            cd_consent_optout_via_api(db, a->id, c->id, &via_api, NULL, err) != 0)
            return -1;
        if (via_api)
            return 0;
        if (!in->record_refused_cta)
            return cd_fail_reason(err, CD_ECONFLICT, "opted_out", "phone",
                                  "the contact opted out of all messages");
        *ask = false;
        cd_send_in s = {.to = c->phone,
                        .text = text,
                        .scope = json_string_value(json_array_get(in->scopes, 0)),
                        .kind = "cta",
                        .category = "transactional",
                        .contact_id = c->id};
        return strcmp(in->channel, "sms") == 0
                   ? cd_message_refuse(db, a, settings, &s, "opted_out", cta, err)
                   : 0;
    }
    if (in->cta != CD_FLOW_CTA_UNLESS_OPTED_IN)
        return 0;
    if (all_opted_in(db, a, c, in->scopes, &opted_in, err) != 0)
        return -1;
    *ask = !opted_in;
    return 0;
}

int cd_flow_start(cd_db *db, const cd_account *a, const cd_flow_in *in, const cd_provenance *p,
                  cd_flow *out, cd_message *cta, cd_err *err)
{
    cd_contact own = {0};
    json_t *read = NULL;
    bool ask;
    int rc = -1, parts; /* of in->disclosure; 0 when the CTA is the account's */
    assert(a != NULL && in != NULL && p != NULL && out != NULL);
    assert(in->phone != NULL && in->channel != NULL && json_is_array(in->scopes));
    assert(in->contact != NULL || !in->new_contact);
    const cd_contact *c = in->contact ? in->contact : &own;
    const json_t *settings = in->settings;
    memset(out, 0, sizeof *out);
    if (cta)
        memset(cta, 0, sizeof *cta);
    if (check_cta_text(in, &parts, err) != 0 ||
        (in->contact == NULL &&
         cd_contact_apply(db, a->id, 0, &(cd_contact_patch){.phone = in->phone, .merge = true},
                          true, &own, NULL, err) != 0))
        return -1;
    if (settings == NULL) {
        if (cd_store_settings_get(db, a->id, &read, err) != 0)
            goto done;
        settings = read;
    }
    /* The text shown is what the ledger hashes: the CTA when the caller gave none. */
    out->disclosure =
        in->disclosure ? strdup(in->disclosure) : cd_keyword_cta(settings, cd_account_brand(a));
    if (should_ask(db, a, in, c, settings, out->disclosure, &ask, cta, err) != 0)
        goto done;
    if (!ask) {
        cd_flow_clear(out); /* nobody is asked: no flow */
        rc = 0;
        goto done;
    }
    cd_provenance prov = *p;
    prov.disclosure = out->disclosure;
    if (mark_pending(db, a, c, in, &prov, err) != 0)
        goto done;
    build_flow(a, c, in, settings, out);
    if (cd_store_flow_insert(db, out, err) != 0)
        goto done;
    if (strcmp(in->channel, "sms") == 0 &&
        queue_cta(db, a, settings, c, in, out, parts, cta, err) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        cd_flow_clear(out);
    json_decref(read);
    cd_contact_clear(&own);
    return rc;
}

static int set_status(cd_db *db, cd_flow *f, const char *status, const char *via, cd_err *err)
{
    snprintf(f->status, sizeof f->status, "%s", status);
    snprintf(f->confirmed_via, sizeof f->confirmed_via, "%s", via ? via : "");
    f->updated_ms = cd_now_ms();
    if (cd_store_flow_update(db, f, err) != 0)
        return -1;
    return cd_events_flow(db, f, err); /* issue 15: flow.confirmed, flow.expired */
}

int cd_flow_confirm(cd_db *db, const cd_account *a, cd_flow *f, const char *via,
                    const cd_provenance *p, cd_err *err)
{
    cd_contact c;
    size_t i;
    json_t *sv;
    if (strcmp(f->status, "confirmed") == 0)
        return 0;
    if (strcmp(f->status, "pending") != 0)
        return cd_fail_reason(err, CD_ECONFLICT, "flow_not_pending", "", "the flow is %s",
                              f->status);
    if (f->expires_ms <= cd_now_ms())
        return cd_fail_reason(err, CD_ECONFLICT, "flow_not_pending", "", "the flow expired");
    if (contact_of(db, a->id, f->phone, f->contact_id, &c, err) != 0)
        return -1;
    cd_provenance prov = *p;
    if (prov.ext_ref == NULL || !*prov.ext_ref)
        prov.ext_ref = f->ext_ref;
    if (prov.disclosure == NULL)
        prov.disclosure = f->disclosure;
    int rc = 0;
    json_array_foreach (f->scopes, i, sv) {
        cd_scope scope;
        if (cd_scope_parse(json_string_value(sv), "scopes", &scope, err) != 0 ||
            cd_consent_set(db, a->id, &c, scope, CD_STATE_OPTED_IN, CD_CONSENT_OVERRIDE, &prov,
                           NULL, NULL, err) != 0) {
            rc = -1;
            break;
        }
    }
    cd_contact_clear(&c);
    return rc == 0 ? set_status(db, f, "confirmed", via, err) : -1;
}

int cd_flow_close(cd_db *db, int64_t account_id, cd_flow *f, const char *status,
                  const cd_provenance *p, cd_err *err)
{
    cd_contact c;
    size_t i;
    json_t *sv;
    if (strcmp(f->status, "pending") != 0)
        return cd_fail_reason(err, CD_ECONFLICT, "flow_not_pending", "", "the flow is %s",
                              f->status);
    if (contact_of(db, account_id, f->phone, f->contact_id, &c, err) != 0)
        return -1;
    cd_provenance prov = *p;
    if (prov.ext_ref == NULL || !*prov.ext_ref)
        prov.ext_ref = f->ext_ref;
    int rc = 0;
    json_array_foreach (f->scopes, i, sv) {
        cd_scope scope;
        if (cd_scope_parse(json_string_value(sv), "scopes", &scope, err) != 0 ||
            cd_consent_clear_pending(db, account_id, &c, scope, &prov, err) != 0) {
            rc = -1;
            break;
        }
    }
    cd_contact_clear(&c);
    return rc == 0 ? set_status(db, f, status, NULL, err) : -1;
}

typedef struct pending_ids {
    char ids[64][40];
    int n;
} pending_ids;

static int collect_id(const cd_flow *f, int64_t rowid, void *arg)
{
    pending_ids *p = arg;
    (void)rowid;
    if (p->n == 64)
        return 1;
    snprintf(p->ids[p->n++], 40, "%s", f->id);
    return 0;
}

/* Applies `fn` to each pending flow of a contact. Collected first: the flows are
 * rewritten while we go. */
static int each_pending(cd_db *db, int64_t account_id, int64_t contact_id,
                        int (*fn)(cd_db *, cd_flow *, void *, cd_err *), void *arg, int *count,
                        cd_err *err)
{
    pending_ids *p = calloc(1, sizeof *p);
    cd_flow_filter filter = {.status = "pending", .contact_id = contact_id, .limit = 64};
    int rc = p ? cd_store_flow_list(db, account_id, &filter, collect_id, p, err)
               : cd_fail(err, CD_EINTERNAL, "", "out of memory");
    for (int i = 0; rc == 0 && p && i < p->n; i++) {
        cd_flow f;
        if ((rc = cd_store_flow_get(db, account_id, p->ids[i], &f, err)) != 0)
            break;
        rc = fn(db, &f, arg, err);
        cd_flow_clear(&f);
    }
    if (count)
        *count = p ? p->n : 0;
    free(p);
    return rc;
}

typedef struct confirm_ctx {
    const cd_account *a;
    const cd_provenance *p;
} confirm_ctx;

static int confirm_one(cd_db *db, cd_flow *f, void *arg, cd_err *err)
{
    confirm_ctx *c = arg;
    return cd_flow_confirm(db, c->a, f, "sms", c->p, err);
}

int cd_flow_confirm_contact(cd_db *db, const cd_account *a, int64_t contact_id,
                            const cd_provenance *p, int *count, cd_err *err)
{
    confirm_ctx c = {.a = a, .p = p};
    return each_pending(db, a->id, contact_id, confirm_one, &c, count, err);
}

static int cancel_one(cd_db *db, cd_flow *f, void *arg, cd_err *err)
{
    const cd_provenance *p = arg;
    return cd_flow_close(db, f->account_id, f, "cancelled", p, err);
}

int cd_flow_cancel_contact(cd_db *db, int64_t account_id, int64_t contact_id,
                           const cd_provenance *p, cd_err *err)
{
    cd_provenance copy = *p; /* each_pending() hands a mutable pointer around */
    return each_pending(db, account_id, contact_id, cancel_one, &copy, NULL, err);
}

/* ---- issue 10: the confirmation a flow sends ---- */

typedef struct confirm_pick {
    char *text; /* owned */
    char scope[CD_SCOPE_LEN];
    int64_t created_ms;
} confirm_pick;

static int newest_text(const cd_flow *f, int64_t rowid, void *arg)
{
    confirm_pick *best = arg;
    (void)rowid;
    if (f->confirm_text == NULL || *f->confirm_text == '\0' || f->expires_ms <= cd_now_ms() ||
        (best->text && f->created_ms < best->created_ms))
        return 0;
    free(best->text);
    best->text = strdup(f->confirm_text);
    best->created_ms = f->created_ms;
    const char *scope = json_string_value(json_array_get(f->scopes, 0));
    snprintf(best->scope, sizeof best->scope, "%s", scope ? scope : "all");
    return 0;
}

int cd_flow_confirm_text(cd_db *db, int64_t account_id, int64_t contact_id, char **text,
                         char scope[CD_SCOPE_LEN], cd_err *err)
{
    confirm_pick best = {0};
    cd_flow_filter filter = {.status = "pending", .contact_id = contact_id, .limit = 64};
    int rc = cd_store_flow_list(db, account_id, &filter, newest_text, &best, err);
    *text = rc == 0 ? best.text : NULL;
    if (rc != 0)
        free(best.text);
    snprintf(scope, CD_SCOPE_LEN, "%s", best.scope);
    return rc;
}

/* ---- issue 13: revocation ---- */

typedef struct revoke_ctx {
    cd_scope scope;
    pending_ids ids;
} revoke_ctx;

/* True when an opt-out of `out` covers one of the flow's scopes. */
static bool covered(const cd_flow *f, cd_scope out)
{
    size_t i;
    json_t *sv;
    if (out.kind == CD_SCOPE_ALL)
        return true;
    json_array_foreach (f->scopes, i, sv) {
        cd_scope s;
        if (cd_scope_parse(json_string_value(sv), "scopes", &s, NULL) == 0 && s.kind == out.kind &&
            s.id == out.id)
            return true;
    }
    return false;
}

static int collect_covered(const cd_flow *f, int64_t rowid, void *arg)
{
    revoke_ctx *r = arg;
    (void)rowid;
    if (covered(f, r->scope) && r->ids.n < 64)
        snprintf(r->ids.ids[r->ids.n++], 40, "%s", f->id);
    return 0;
}

int cd_flow_revoke_contact(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                           int *count, cd_err *err)
{
    revoke_ctx *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    r->scope = scope;
    int rc = 0, n = 0;
    /* Pages of 64, collected first: the flows are rewritten while we go, and a revoked
     * flow leaves the "confirmed" filter, so the next page starts at the first again. */
    do {
        r->ids.n = 0;
        cd_flow_filter filter = {.status = "confirmed", .contact_id = contact_id, .limit = 500};
        rc = cd_store_flow_list(db, account_id, &filter, collect_covered, r, err);
        for (int i = 0; rc == 0 && i < r->ids.n; i++) {
            cd_flow f;
            if ((rc = cd_store_flow_get(db, account_id, r->ids.ids[i], &f, err)) != 0)
                break;
            char via[sizeof f.confirmed_via]; /* kept: how it was confirmed */
            memcpy(via, f.confirmed_via, sizeof via);
            rc = set_status(db, &f, "revoked", via, err);
            cd_flow_clear(&f);
            n++;
        }
    } while (rc == 0 && r->ids.n == 64);
    free(r);
    if (count)
        *count = n;
    return rc;
}

int cd_flow_start_declined(cd_db *db, const cd_account *a, const cd_flow_in *in,
                           const cd_provenance *p, cd_flow *out, cd_err *err)
{
    cd_contact c;
    json_t *settings = NULL;
    cd_state all;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (contact_of(db, a->id, in->phone, 0, &c, err) != 0)
        return -1;
    if (cd_store_settings_get(db, a->id, &settings, err) != 0 ||
        cd_consent_state(db, a->id, c.id, (cd_scope){.kind = CD_SCOPE_ALL}, &all, err) != 0)
        goto done;
    if (all == CD_STATE_OPTED_OUT) {
        cd_fail_reason(err, CD_ECONFLICT, "opted_out", "phone",
                       "the contact opted out of all messages");
        goto done;
    }
    out->disclosure =
        in->disclosure ? strdup(in->disclosure) : cd_keyword_cta(settings, cd_account_brand(a));
    cd_provenance prov = *p;
    prov.disclosure = out->disclosure;
    build_flow(a, &c, in, settings, out);
    if (mark_pending(db, a, &c, in, &prov, err) != 0 || cd_store_flow_insert(db, out, err) != 0 ||
        cd_flow_close(db, a->id, out, "cancelled", &prov, err) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        cd_flow_clear(out);
    json_decref(settings);
    cd_contact_clear(&c);
    return rc;
}

static void token_mac(const cd_account *a, int64_t account_id, const char *flow_id, char out[65])
{
    char msg[128];
    /* Domain-separated from the JWTs made with the same secret. */
    int n = snprintf(msg, sizeof msg, "consentd-flow-link/%lld.%s", (long long)account_id, flow_id);
    cd_hmac_sha256_hex(a->jwt_secret, strlen(a->jwt_secret), msg, (size_t)n, out);
}

void cd_flow_token(const cd_account *a, const char *flow_id, char out[160])
{
    char mac[65];
    token_mac(a, a->id, flow_id, mac);
    snprintf(out, 160, "%lld.%s.%s", (long long)a->id, flow_id, mac);
}

int cd_flow_token_parse(const char *token, int64_t *account_id, char flow_id[40])
{
    const char *d1 = token ? strchr(token, '.') : NULL;
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || d1 == token || d2 - d1 - 1 <= 0 || d2 - d1 - 1 >= 40 || strlen(d2 + 1) != 64)
        return -1;
    char *end;
    long long id = strtoll(token, &end, 10);
    if (end != d1 || id <= 0)
        return -1;
    *account_id = id;
    memcpy(flow_id, d1 + 1, (size_t)(d2 - d1 - 1));
    flow_id[d2 - d1 - 1] = '\0';
    return 0;
}

bool cd_flow_token_valid(const cd_account *a, const char *token)
{
    int64_t id;
    char flow_id[40], mac[65];
    if (cd_flow_token_parse(token, &id, flow_id) != 0 || id != a->id)
        return false;
    token_mac(a, id, flow_id, mac);
    return cd_ct_equal(mac, strrchr(token, '.') + 1, 64);
}
