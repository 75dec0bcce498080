/* core/consent.c -- the consent rules (pure, at the top) and the store-backed operations
 * that apply them (at the bottom). */
#include "core/consent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/ledger.h"
#include "util/buf.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define MAX_SCOPE_ID 9007199254740991LL /* 2^53 - 1: survives every JSON client */

static int parse_id(const char *s, int64_t *out)
{
    if (*s < '1' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v > MAX_SCOPE_ID)
        return -1;
    *out = v;
    return 0;
}

int cd_scope_parse(const char *s, const char *field, cd_scope *out, cd_err *err)
{
    if (s == NULL)
        return cd_fail_reason(err, CD_EINVAL, "invalid_scope", field, "scope is required");
    if (strcmp(s, "all") == 0) {
        *out = (cd_scope){.kind = CD_SCOPE_ALL, .id = 0};
        return 0;
    }
    if (strncmp(s, "group:", 6) == 0 && parse_id(s + 6, &out->id) == 0) {
        out->kind = CD_SCOPE_GROUP;
        return 0;
    }
    if (strncmp(s, "type:", 5) == 0 && parse_id(s + 5, &out->id) == 0) {
        out->kind = CD_SCOPE_TYPE;
        return 0;
    }
    return cd_fail_reason(err, CD_EINVAL, "invalid_scope", field,
                          "scope must be \"all\", \"group:ID\" or \"type:ID\"");
}

/* "prefix" and the decimal id: what snprintf("%s%" PRId64) writes, without its cost (every
 * consent change formats its scope a few times on the writer). Fits: 6 + 20 < CD_SCOPE_LEN. */
static void scope_id(const char *prefix, size_t n, int64_t id, char out[CD_SCOPE_LEN])
{
    memcpy(out, prefix, n);
    out[n + cd_fmt_int(out + n, id)] = '\0';
}

void cd_scope_format(cd_scope scope, char out[CD_SCOPE_LEN])
{
    switch (scope.kind) {
    case CD_SCOPE_GROUP:
        scope_id("group:", 6, scope.id, out);
        break;
    case CD_SCOPE_TYPE:
        scope_id("type:", 5, scope.id, out);
        break;
    default:
        memcpy(out, "all", 4);
    }
}

static const char *const state_names[] = {
    [CD_STATE_NONE] = "",
    [CD_STATE_PENDING] = "pending",
    [CD_STATE_OPTED_IN] = "opted_in",
    [CD_STATE_OPTED_OUT] = "opted_out",
};

const char *cd_state_name(cd_state s)
{
    return (unsigned)s <= CD_STATE_OPTED_OUT ? state_names[s] : "";
}

cd_state cd_state_parse(const char *s)
{
    for (int i = CD_STATE_PENDING; s && i <= CD_STATE_OPTED_OUT; i++)
        if (strcmp(s, state_names[i]) == 0)
            return (cd_state)i;
    return CD_STATE_NONE;
}

const char *cd_consent_decide(cd_state all, cd_state scoped, bool scope_is_all)
{
    if (all == CD_STATE_OPTED_OUT)
        return "opted_out"; /* STOP beats everything */
    if (!scope_is_all) {
        if (scoped == CD_STATE_OPTED_OUT)
            return "opted_out";
        if (scoped == CD_STATE_OPTED_IN)
            return "opted_in";
    }
    if (all == CD_STATE_OPTED_IN)
        return "opted_in";
    if (all == CD_STATE_PENDING || (!scope_is_all && scoped == CD_STATE_PENDING))
        return "pending_confirmation";
    return "no_consent";
}

bool cd_consent_reason_allows(const char *reason)
{
    return strcmp(reason, "opted_in") == 0;
}

int cd_consent_transition(cd_state old, cd_state new_state, unsigned flags, cd_err *err)
{
    if (new_state == CD_STATE_NONE)
        return cd_fail_reason(err, CD_EINVAL, "invalid_state", "state",
                              "state must be pending, opted_in or opted_out");
    if (old == CD_STATE_OPTED_OUT && new_state != CD_STATE_OPTED_OUT &&
        !(flags & CD_CONSENT_OVERRIDE))
        return cd_fail_reason(err, CD_ECONFLICT, "opted_out", "state",
                              "the contact opted out; only an explicit opt-in lifts that");
    if (old == CD_STATE_OPTED_IN && new_state == CD_STATE_PENDING)
        return cd_fail_reason(err, CD_ECONFLICT, "already_opted_in", "state",
                              "the contact already opted in");
    return 0;
}

/* ---- operations on the store ---- */

static cd_state stored_state(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                             cd_err *err, int *rc)
{
    cd_consent c;
    cd_err e;
    *rc = 0;
    if (cd_store_consent_get(db, account_id, contact_id, scope, &c, &e) == 0)
        return cd_state_parse(c.state);
    if (e.code != CD_ENOTFOUND) {
        *rc = -1;
        if (err)
            *err = e;
    }
    return CD_STATE_NONE;
}

int cd_scope_exists(cd_db *db, int64_t account_id, cd_scope scope, const char *field, cd_err *err)
{
    if (scope.kind == CD_SCOPE_ALL)
        return 0;
    cd_named n;
    cd_err e;
    const char *kind = scope.kind == CD_SCOPE_GROUP ? "group" : "type";
    if (cd_store_named_get(db, kind, account_id, scope.id, &n, &e) == 0)
        return 0;
    if (e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        return -1;
    }
    return cd_fail_reason(err, CD_EINVAL, "invalid_scope", field, "no %s with id %lld", kind,
                          (long long)scope.id);
}

/* ---- issue 15: message.status for the messages an opt-out refuses ---- */

typedef struct refused_ids {
    const char *scope; /* NULL: every scope */
    int n;
    char ids[256][40];
} refused_ids;

static int collect_refusable(const cd_message *m, int64_t rowid, void *arg)
{
    refused_ids *r = arg;
    (void)rowid;
    if (r->n == 256)
        return 1;
    /* what cd_store_message_refuse_queued refuses: queued outbound, not keyword replies */
    if (strcmp(m->direction, "out") == 0 && strcmp(m->kind, "keyword_reply") != 0 &&
        (r->scope == NULL || strcmp(m->scope, r->scope) == 0) && m->contact_id != 0)
        snprintf(r->ids[r->n++], sizeof r->ids[0], "%s", m->id);
    return 0;
}

/* Refuses the contact's queued messages (issue 8 item 1) and queues a message.status
 * event for each, in the same transaction. */
static int refuse_queued(cd_db *db, int64_t account_id, const cd_contact *contact,
                         const char *scope, int64_t now_ms, cd_err *err)
{
    int on = cd_events_listening(db, account_id, err);
    if (on <= 0) /* nobody listens: no ids to collect for message.status events */
        return on < 0 ? -1
                      : cd_store_message_refuse_queued(db, account_id, contact->id, scope, now_ms,
                                                       "opted_out", NULL, err);
    refused_ids *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    r->scope = scope;
    /* The ids first: the refusal below changes what the filter sees. The newest 256 get
     * their event; an older backlog beyond that is refused all the same. */
    cd_message_filter f = {.to = contact->phone, .status = "queued", .limit = 1000};
    int rc = cd_store_message_list(db, account_id, &f, collect_refusable, r, err);
    if (rc == 0)
        rc = cd_store_message_refuse_queued(db, account_id, contact->id, scope, now_ms, "opted_out",
                                            NULL, err);
    for (int i = 0; rc == 0 && i < r->n; i++) {
        cd_message m;
        if (cd_store_message_get(db, account_id, r->ids[i], &m, err) != 0) {
            rc = -1;
            break;
        }
        if (strcmp(m.status, "refused") == 0 && m.contact_id == contact->id)
            rc = cd_events_message_status(db, &m, err);
        cd_message_clear(&m);
    }
    free(r);
    return rc;
}

int cd_consent_set(cd_db *db, int64_t account_id, const cd_contact *contact, cd_scope scope,
                   cd_state state, unsigned flags, const cd_provenance *p, cd_consent *out,
                   cd_event *ev, cd_err *err)
{
    char name[CD_SCOPE_LEN];
    int rc = 0;
    cd_scope_format(scope, name);
    cd_state old = flags & CD_CONSENT_NEW_CONTACT
                       ? CD_STATE_NONE
                       : stored_state(db, account_id, contact->id, name, err, &rc);
    if (rc != 0)
        return -1;
    return cd_consent_set_from(db, account_id, contact, scope, old, state, flags, p, out, ev, err);
}

int cd_consent_set_from(cd_db *db, int64_t account_id, const cd_contact *contact, cd_scope scope,
                        cd_state old, cd_state state, unsigned flags, const cd_provenance *p,
                        cd_consent *out, cd_event *ev, cd_err *err)
{
    char name[CD_SCOPE_LEN];
    cd_scope_format(scope, name);
    if (cd_consent_transition(old, state, flags, err) != 0)
        return -1;
    cd_consent c = {.updated_ms = cd_now_ms()};
    _Static_assert(sizeof c.scope >= CD_SCOPE_LEN, "a scope fits a consent");
    memcpy(c.scope, name, strlen(name) + 1);
    const char *sn = cd_state_name(state);
    _Static_assert(sizeof c.state >= sizeof "opted_out", "a state fits a consent");
    memcpy(c.state, sn, strlen(sn) + 1);
    if (cd_store_consent_put(db, account_id, contact->id, &c, err) != 0)
        return -1;
    if (cd_ledger_append(db, account_id, contact, name, cd_state_name(old), c.state, p,
                         c.updated_ms, ev, err) != 0)
        return -1;
    /* issue 8 item 1: what is still queued for the scopes the opt-out covers is refused
     * in the same transaction, so a held or retried message cannot go out after a STOP;
     * what is claimed and waits for a transport is checked again before it is submitted,
     * once this is durable (cd_store_optout_noted). */
    if (state == CD_STATE_OPTED_OUT) {
        if (refuse_queued(db, account_id, contact, scope.kind == CD_SCOPE_ALL ? NULL : name,
                          c.updated_ms, err) != 0)
            return -1;
        cd_store_optout_noted(db, account_id);
    }
    if (out)
        *out = c;
    return 0;
}

int cd_consent_check(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                     const char **reason, cd_err *err)
{
    char name[CD_SCOPE_LEN];
    int rc;
    cd_state all = stored_state(db, account_id, contact_id, "all", err, &rc);
    if (rc != 0)
        return -1;
    cd_state scoped = all;
    if (scope.kind != CD_SCOPE_ALL) {
        cd_scope_format(scope, name);
        scoped = stored_state(db, account_id, contact_id, name, err, &rc);
        if (rc != 0)
            return -1;
    }
    *reason = cd_consent_decide(all, scoped, scope.kind == CD_SCOPE_ALL);
    return 0;
}

int cd_consent_clear_pending(cd_db *db, int64_t account_id, const cd_contact *contact,
                             cd_scope scope, const cd_provenance *p, cd_err *err)
{
    char name[CD_SCOPE_LEN];
    int rc;
    cd_scope_format(scope, name);
    cd_state old = stored_state(db, account_id, contact->id, name, err, &rc);
    if (rc != 0)
        return -1;
    if (old != CD_STATE_PENDING)
        return 0;
    if (cd_store_consent_delete(db, account_id, contact->id, name, err) != 0)
        return -1;
    return cd_ledger_append(db, account_id, contact, name, "pending", "none", p, cd_now_ms(), NULL,
                            err);
}

int cd_consent_state(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                     cd_state *out, cd_err *err)
{
    char name[CD_SCOPE_LEN];
    int rc;
    cd_scope_format(scope, name);
    *out = stored_state(db, account_id, contact_id, name, err, &rc);
    return rc;
}

/* ---- issue 10: how an opt-out of everything was made ---- */

int cd_consent_optout_via_api(cd_db *db, int64_t account_id, int64_t contact_id, bool *via_api,
                              int64_t *at_ms, cd_err *err)
{
    cd_event *ev = cd_xmalloc(sizeof *ev); /* ~1.5 KB: kept off small thread stacks */
    cd_err e;
    int rc = 0;
    *via_api = false;
    if (at_ms)
        *at_ms = 0;
    if (cd_store_event_last(db, account_id, contact_id, "all", ev, &e) == 0) {
        /* Only a surface that opts out on the caller's word, over its API, counts: a STOP
         * by SMS (channel "sms") is the person's own, and only they may undo it. */
        bool api_surface =
            strcmp(ev->surface, "protexting") == 0 || strcmp(ev->surface, "native") == 0;
        *via_api = strcmp(ev->new_state, "opted_out") == 0 && api_surface &&
                   strcmp(ev->channel, "api") == 0;
        if (at_ms)
            *at_ms = ev->created_ms;
    } else if (e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        rc = -1;
    }
    free(ev);
    return rc;
}

int cd_consent_undo_api_optout(cd_db *db, int64_t account_id, const cd_contact *contact,
                               const cd_provenance *p, bool *undone, cd_err *err)
{
    cd_event *ev = cd_xmalloc(sizeof *ev);
    cd_state all = CD_STATE_NONE;
    bool via_api = false;
    int rc = -1;
    *undone = false;
    if (cd_consent_state(db, account_id, contact->id, (cd_scope){.kind = CD_SCOPE_ALL}, &all,
                         err) != 0)
        goto done;
    if (all != CD_STATE_OPTED_OUT) { /* nothing to undo: a retry after success lands here */
        rc = 0;
        goto done;
    }
    if (cd_consent_optout_via_api(db, account_id, contact->id, &via_api, NULL, err) != 0 ||
        cd_store_event_last(db, account_id, contact->id, "all", ev, err) != 0)
        goto done;
    if (!via_api) {
        cd_fail_reason(err, CD_ECONFLICT, "opted_out_by_sms", "phone",
                       "the contact opted out by SMS; only they can undo that, by texting START");
        goto done;
    }
    /* Back to what the opt-out replaced: the opted-in or pending "all" it overlaid, or no
     * state at all, so that the contact's group consents count again as they were. */
    cd_state old = cd_state_parse(ev->old_state);
    if (old == CD_STATE_OPTED_IN || old == CD_STATE_PENDING) {
        rc = cd_consent_set(db, account_id, contact, (cd_scope){.kind = CD_SCOPE_ALL}, old,
                            CD_CONSENT_OVERRIDE, p, NULL, NULL, err);
    } else {
        rc = cd_store_consent_delete(db, account_id, contact->id, "all", err);
        if (rc == 0)
            rc = cd_ledger_append(db, account_id, contact, "all", "opted_out", "none", p,
                                  cd_now_ms(), NULL, err);
    }
    *undone = rc == 0;
done:
    free(ev);
    return rc;
}
