/* core/optqueue.c -- message-type opts applied all or nothing (see optqueue.h): the rule
 * as a pure function at the top, the store-backed check and apply below it. */
#include "core/optqueue.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/contact.h"
#include "util/xalloc.h"

static const char *const outcome_names[] = {
    [CD_OPT_NOT_APPLIED] = "not_applied",   [CD_OPT_KNOWN] = "not_applied",
    [CD_OPT_WRITTEN] = "written",           [CD_OPT_REPLACED_OUT] = "replaced_opt_out",
    [CD_OPT_KEPT_OUT] = "kept_opt_out",     [CD_OPT_KEPT_OUT_ALL] = "kept_opt_out_all",
    [CD_OPT_UNKNOWN_TYPE] = "unknown_type",
};

const char *cd_opt_outcome_name(cd_opt_outcome o)
{
    return (unsigned)o <= CD_OPT_UNKNOWN_TYPE ? outcome_names[o] : "";
}

cd_opt_outcome cd_opt_decide(cd_state all, cd_state type, const cd_opt *opt)
{
    if (opt->state != CD_STATE_OPTED_IN)
        return CD_OPT_WRITTEN; /* an opt-out is always honoured */
    /* A STOP is the consumer's own word for everything; one brand's opt of one type
     * cannot take it back, not even with delete_opt_out. */
    if (all == CD_STATE_OPTED_OUT)
        return CD_OPT_KEPT_OUT_ALL;
    if (type == CD_STATE_OPTED_OUT)
        return opt->delete_opt_out ? CD_OPT_REPLACED_OUT : CD_OPT_KEPT_OUT;
    return CD_OPT_WRITTEN;
}

/* issue 12: the account's types with ids in [lo, lo + 63], as bits of *known. */
typedef struct type_window {
    int64_t lo, hi;
    uint64_t known;
} type_window;

static int window_add(const cd_named *t, void *arg)
{
    type_window *w = arg;
    if (t->id >= w->lo && t->id <= w->hi)
        w->known |= 1ull << (t->id - w->lo);
    return 0;
}

int cd_optqueue_check(cd_db *db, int64_t account_id, cd_opt *opts, size_t n, size_t *bad,
                      cd_err *err)
{
    type_window w = {.lo = INT64_MAX, .hi = 0};
    *bad = 0;
    size_t remembered = 0;
    for (size_t i = 0; i < n; i++) {
        opts[i].outcome = CD_OPT_KNOWN; /* until a read finds otherwise */
        opts[i].event_seq = 0;
        remembered += cd_store_type_known(db, account_id, opts[i].type_id);
        w.lo = opts[i].type_id < w.lo ? opts[i].type_id : w.lo;
        w.hi = opts[i].type_id > w.hi ? opts[i].type_id : w.hi;
    }
    if (remembered == n)
        return 0;
    /* Ids close together (Omeda's usual few types) are read by one range query rather than
     * one query each; the window holds only what the store listed. */
    bool ranged = n >= 2 && w.lo >= 1 && w.hi - w.lo < 64;
    if (ranged && cd_store_named_list(db, "type", account_id, w.lo - 1, (int)(w.hi - w.lo + 1),
                                      window_add, &w, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        cd_named t;
        cd_err e;
        if (ranged) {
            if (w.known & (1ull << (opts[i].type_id - w.lo))) {
                cd_store_type_seen(db, account_id, opts[i].type_id);
                continue;
            }
            opts[i].outcome = CD_OPT_UNKNOWN_TYPE;
            (*bad)++;
            continue;
        }
        if (cd_store_named_get(db, "type", account_id, opts[i].type_id, &t, &e) == 0) {
            cd_store_type_seen(db, account_id, opts[i].type_id);
            continue;
        }
        if (e.code != CD_ENOTFOUND) { /* a storage failure is not an unknown type */
            if (err)
                *err = e;
            return -1;
        }
        opts[i].outcome = CD_OPT_UNKNOWN_TYPE;
        (*bad)++;
    }
    return 0;
}

/* The contact's states, read once for the whole queue (one query instead of two per opt)
 * and kept up to date as opts are written, so that each opt sees the ones before it. */
typedef struct states {
    cd_consent *v;
    size_t n, cap;
} states;

static int collect_state(const cd_consent *c, void *arg)
{
    states *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = cd_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = *c;
    return 0;
}

static cd_consent *state_find(states *s, const char *scope)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].scope, scope) == 0)
            return &s->v[i];
    return NULL;
}

static cd_state state_of(states *s, const char *scope)
{
    cd_consent *c = state_find(s, scope);
    return c ? cd_state_parse(c->state) : CD_STATE_NONE;
}

static void state_put(states *s, const cd_consent *c)
{
    cd_consent *have = state_find(s, c->scope);
    if (have)
        *have = *c;
    else
        collect_state(c, s);
}

/* Decides and writes one opt for contact c. */
static int apply_one(cd_db *db, int64_t account_id, const cd_contact *c, states *st, cd_opt *o,
                     const cd_provenance *p, cd_err *err)
{
    cd_scope type = {.kind = CD_SCOPE_TYPE, .id = o->type_id};
    char name[CD_SCOPE_LEN];
    cd_consent now;
    cd_event ev;
    cd_scope_format(type, name);
    cd_state old = state_of(st, name);
    o->outcome = cd_opt_decide(state_of(st, "all"), old, o);
    if (o->outcome != CD_OPT_WRITTEN && o->outcome != CD_OPT_REPLACED_OUT)
        return 0;
    unsigned flags = o->outcome == CD_OPT_REPLACED_OUT ? CD_CONSENT_OVERRIDE : 0;
    /* st holds what the store has, this job's writes included: no second read */
    if (cd_consent_set_from(db, account_id, c, type, old, o->state, flags, p, &now, &ev, err) != 0)
        return -1;
    state_put(st, &now);
    o->event_seq = ev.seq;
    return 0;
}

int cd_optqueue_apply(cd_db *db, int64_t account_id, const char *phone, cd_opt *opts, size_t n,
                      const cd_provenance *p, cd_err *err)
{
    assert(phone != NULL && p != NULL && p->surface != NULL);
    for (size_t i = 0; i < n; i++)
        if (opts[i].outcome != CD_OPT_KNOWN)
            return cd_fail(err, CD_EINTERNAL, "", "an opt was not checked");
    if (n == 0)
        return 0;
    cd_contact_patch patch = {.phone = phone, .merge = true};
    cd_contact c = {.account_id = account_id};
    states st = {0};
    cd_err e;
    /* A known number needs no more than its id (cd_contact_apply would read the whole
     * contact and, with nothing to change, write nothing); a new one is created. */
    int found = cd_store_contact_id_by_phone(db, account_id, phone, &c.id, &e);
    if (found != 0 && e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        return -1;
    }
    if (found == 0)
        snprintf(c.phone, sizeof c.phone, "%s", phone);
    else if (cd_contact_apply(db, account_id, 0, &patch, true, &c, NULL, err) != 0)
        return -1;
    int rc = cd_store_consent_list(db, account_id, c.id, collect_state, &st, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = apply_one(db, account_id, &c, &st, &opts[i], p, err);
    free(st.v);
    cd_contact_clear(&c);
    return rc;
}
