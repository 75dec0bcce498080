/* core/batch.c -- many contacts written as one use case (see batch.h). */
#include "core/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/consent.h"
#include "core/ledger.h"
#include "core/usecase.h"
#include "util/xalloc.h"

const char *cd_batch_status_name(cd_batch_status s)
{
    switch (s) {
    case CD_BATCH_ADDED:
        return "added";
    case CD_BATCH_UPDATED:
        return "updated";
    case CD_BATCH_SKIPPED:
        return "skipped";
    default:
        return "";
    }
}

/* What every item of one batch shares, built once. */
typedef struct batch_ctx {
    json_t *tags;     /* [tag], or NULL */
    cd_scope scope;   /* group:<the list> */
    int64_t *members; /* the contacts to add to the list, written at the batch's end */
    size_t n_members;
    int64_t *known; /* per item: the id of the contact with its number, 0 for none */
} batch_ctx;

static size_t hash_phone(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

/* Sets each item's `first`: one open-addressing table of indexes, so that a batch of n
 * numbers costs n probes rather than n^2 comparisons. */
static void mark_firsts(cd_batch_item *items, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    size_t *slot = cd_xmalloc(cap * sizeof *slot);
    memset(slot, 0xff, cap * sizeof *slot); /* SIZE_MAX: empty */
    for (size_t i = 0; i < n; i++) {
        size_t h = hash_phone(items[i].phone) & (cap - 1);
        while (slot[h] != SIZE_MAX && strcmp(items[slot[h]].phone, items[i].phone) != 0)
            h = (h + 1) & (cap - 1);
        if (slot[h] == SIZE_MAX)
            slot[h] = i;
        items[i].first = slot[h];
    }
    free(slot);
}

/* keep_existing and drop_blacklisted decide on what is stored before anything is written:
 * *skip tells whether the item is left out (then its status is set). */
static int skip_existing(cd_db *db, int64_t acct, const cd_batch *b, int64_t id, cd_batch_item *it,
                         bool *skip, cd_err *err)
{
    *skip = false;
    if (!b->keep_existing && !b->drop_blacklisted)
        return 0;
    if (id == 0)
        return 0; /* a new number: neither flag applies */
    cd_state all = CD_STATE_NONE;
    if (!b->keep_existing &&
        cd_consent_state(db, acct, id, (cd_scope){.kind = CD_SCOPE_ALL}, &all, err) != 0)
        return -1;
    if (b->keep_existing || all == CD_STATE_OPTED_OUT) {
        *skip = true;
        it->status = CD_BATCH_SKIPPED;
        it->contact_id = id;
    }
    return 0;
}

/* The client asserts consent for the list by adding the contact to it. Checked here rather
 * than left to cd_consent_transition: that refuses to lift a group opt-out, but would let
 * an opt-in of the group through for someone opted out of everything, and write a ledger
 * event that reads like consent. */
static int list_opt_in(cd_db *db, int64_t acct, cd_batch *b, const batch_ctx *x,
                       const cd_contact *c, bool created, cd_err *err)
{
    if (!created) { /* a contact created just now has no consent to respect yet */
        cd_state all, mine;
        if (cd_consent_state(db, acct, c->id, (cd_scope){.kind = CD_SCOPE_ALL}, &all, err) != 0 ||
            cd_consent_state(db, acct, c->id, x->scope, &mine, err) != 0)
            return -1;
        if (all == CD_STATE_OPTED_OUT || mine == CD_STATE_OPTED_OUT || mine == CD_STATE_OPTED_IN)
            return 0;
    }
    /* No CD_CONSENT_OVERRIDE: this is never the explicit opt-in that lifts an opt-out. */
    unsigned flags = created ? CD_CONSENT_NEW_CONTACT : 0;
    if (cd_consent_set(db, acct, c, x->scope, CD_STATE_OPTED_IN, flags, &b->prov, NULL, NULL,
                       err) != 0)
        return -1;
    b->opted_in++;
    return 0;
}

static int apply_item(cd_db *db, int64_t acct, cd_batch *b, batch_ctx *x, cd_batch_item *it,
                      cd_err *err)
{
    bool skip, created = false;
    int64_t id = x->known[it - b->items];
    if (skip_existing(db, acct, b, id, it, &skip, err) != 0)
        return -1;
    if (skip)
        return 0;
    /* The membership is added at the batch's end: as a patch's groups it would cost a check
     * of the group and a rewrite of every membership of the contact, per item. */
    cd_contact_patch p = {.phone = it->phone, .tags = x->tags, .merge = true};
    memcpy(p.has, it->has, sizeof p.has);
    memcpy(p.value, it->value, sizeof p.value);
    cd_contact c;
    /* A known number is updated by its id; a new one is inserted without a read. */
    if ((id ? cd_contact_apply(db, acct, id, &p, false, &c, &created, err)
            : cd_contact_upsert(db, acct, &p, &c, &created, err)) != 0)
        return -1;
    it->status = created ? CD_BATCH_ADDED : CD_BATCH_UPDATED;
    it->contact_id = c.id;
    int rc = 0;
    if (b->group_id) {
        x->members[x->n_members++] = c.id; /* each item once: repeats are not applied */
        rc = list_opt_in(db, acct, b, x, &c, created, err);
    }
    cd_contact_clear(&c);
    return rc;
}

/* Which numbers of the batch are contacts already, in one read for the whole batch: a new
 * number is then inserted without a read of its own, and a known one is never tried as an
 * insert first. */
static int known_ids(cd_db *db, int64_t acct, const cd_batch *b, batch_ctx *x, cd_err *err)
{
    size_t n = b->n ? b->n : 1;
    const char **phones = cd_xmalloc(n * sizeof *phones);
    for (size_t i = 0; i < b->n; i++)
        phones[i] = b->items[i].phone;
    x->known = cd_xmalloc(n * sizeof *x->known);
    int rc = cd_store_contact_ids_by_phones(db, acct, phones, b->n, x->known, err);
    free(phones);
    if (rc != 0) {
        free(x->known);
        x->known = NULL;
    }
    return rc;
}

int cd_contact_batch(cd_db *db, int64_t account_id, cd_batch *b, cd_err *err)
{
    batch_ctx x = {.tags = NULL, .members = NULL, .known = NULL};
    int rc = 0;
    b->group_id = 0;
    b->group_created = false;
    b->failed = b->n;
    b->opted_in = b->removed = 0;
    mark_firsts(b->items, b->n);
    if (known_ids(db, account_id, b, &x, err) != 0)
        return -1;
    if (b->list) {
        cd_named g;
        if (cd_named_ensure(db, "group", account_id, b->list, &g, &b->group_created, err) != 0) {
            free(x.known);
            return -1;
        }
        b->group_id = g.id;
        x.scope = (cd_scope){.kind = CD_SCOPE_GROUP, .id = g.id};
        x.members = cd_xmalloc(b->n * sizeof *x.members);
    }
    if (b->tag)
        x.tags = json_pack("[s]", b->tag);
    /* Only list opt-ins write events: the account's ledger head is then written once for
     * the whole batch instead of once per contact. */
    bool events = b->group_id != 0;
    if (events && cd_ledger_batch_begin(db, account_id, err) != 0) {
        json_decref(x.tags);
        free(x.members);
        free(x.known);
        return -1;
    }
    /* The batch's new rows go in many to a statement (store.h): what it stores is the same. */
    rc = cd_store_rows_defer(db, err);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        cd_batch_item *it = &b->items[i];
        if (it->first != i) { /* a repeat: applied once, reported again */
            it->status = b->items[it->first].status;
            it->contact_id = b->items[it->first].contact_id;
        } else if (apply_item(db, account_id, b, &x, it, err) != 0) {
            b->failed = i;
            rc = -1;
        }
    }
    if (rc == 0)
        rc = cd_store_rows_end(db, true, err);
    else
        cd_store_rows_end(db, false, NULL);
    if (rc == 0 && b->group_id)
        rc = cd_store_group_add_members(db, account_id, b->group_id, x.members, x.n_members, err);
    if (rc == 0 && b->group_id && b->drop_blacklisted)
        rc = cd_store_group_drop_opted_out(db, account_id, b->group_id, &b->removed, err);
    if (events && rc == 0)
        rc = cd_ledger_batch_end(db, err);
    else if (events)
        cd_ledger_batch_abort();
    json_decref(x.tags);
    free(x.members);
    free(x.known);
    return rc;
}
