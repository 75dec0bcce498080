/* core/optqueue.c -- message-type opts applied all or nothing (see optqueue.h): the rule
 * as a pure function at the top, the store-backed check and apply below it. */
#include "core/optqueue.h"

#include <assert.h>

#include "core/contact.h"

static const char *const outcome_names[] = {
    [CD_OPT_NOT_APPLIED] = "not_applied",       [CD_OPT_WRITTEN] = "written",
    [CD_OPT_REPLACED_OUT] = "replaced_opt_out", [CD_OPT_KEPT_OUT] = "kept_opt_out",
    [CD_OPT_KEPT_OUT_ALL] = "kept_opt_out_all", [CD_OPT_UNKNOWN_TYPE] = "unknown_type",
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

int cd_optqueue_check(cd_db *db, int64_t account_id, cd_opt *opts, size_t n, size_t *bad,
                      cd_err *err)
{
    *bad = 0;
    for (size_t i = 0; i < n; i++) {
        cd_named t;
        cd_err e;
        opts[i].outcome = CD_OPT_NOT_APPLIED;
        opts[i].event_seq = 0;
        if (cd_store_named_get(db, "type", account_id, opts[i].type_id, &t, &e) == 0)
            continue;
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

/* Decides and writes one opt for contact c. */
static int apply_one(cd_db *db, int64_t account_id, const cd_contact *c, cd_opt *o,
                     const cd_provenance *p, cd_err *err)
{
    cd_scope type = {.kind = CD_SCOPE_TYPE, .id = o->type_id};
    cd_scope all = {.kind = CD_SCOPE_ALL, .id = 0};
    cd_state s_all, s_type;
    cd_event ev;
    if (cd_consent_state(db, account_id, c->id, all, &s_all, err) != 0 ||
        cd_consent_state(db, account_id, c->id, type, &s_type, err) != 0)
        return -1;
    o->outcome = cd_opt_decide(s_all, s_type, o);
    if (o->outcome != CD_OPT_WRITTEN && o->outcome != CD_OPT_REPLACED_OUT)
        return 0;
    unsigned flags = o->outcome == CD_OPT_REPLACED_OUT ? CD_CONSENT_OVERRIDE : 0;
    if (cd_consent_set(db, account_id, c, type, o->state, flags, p, NULL, &ev, err) != 0)
        return -1;
    o->event_seq = ev.seq;
    return 0;
}

int cd_optqueue_apply(cd_db *db, int64_t account_id, const char *phone, cd_opt *opts, size_t n,
                      const cd_provenance *p, bool *applied, cd_err *err)
{
    size_t bad;
    assert(phone != NULL && p != NULL && p->surface != NULL && applied != NULL);
    *applied = false;
    if (cd_optqueue_check(db, account_id, opts, n, &bad, err) != 0)
        return -1;
    if (bad > 0)
        return 0;
    if (n > 0) {
        cd_contact_patch patch = {.phone = phone, .merge = true};
        cd_contact c;
        if (cd_contact_apply(db, account_id, 0, &patch, true, &c, NULL, err) != 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = apply_one(db, account_id, &c, &opts[i], p, err);
        cd_contact_clear(&c);
        if (rc != 0)
            return -1;
    }
    *applied = true;
    return 0;
}
