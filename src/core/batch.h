/* core/batch.h -- many contacts written as one use case (issue 11: Octopush's
 * contact/create): each upserted by number, optionally into a list (a group, created on
 * first use) and with a tag, in one writer transaction: every item is applied, or on a
 * failure none is.
 *
 * A surface checks each item's fields (cd_contact_field_check) before it defers the job, so
 * that a refusal names the item. The rules, per item:
 * - a number that is not a contact of the account is created: CD_BATCH_ADDED;
 * - an existing contact has the fields the item sets rewritten (the others are left
 *   alone): CD_BATCH_UPDATED;
 * - with keep_existing, an existing contact is left untouched, whatever the item says
 *   (no field, tag, list or consent change): CD_BATCH_SKIPPED;
 * - with drop_blacklisted, a contact opted out of "all" (the blacklist) is left out:
 *   CD_BATCH_SKIPPED; and every blacklisted member of the list is removed from it;
 * - adding a contact to the list records its opt-in at scope group:<list> (the client
 *   asserting consent for that list), unless it is opted out of "all" or of that group, or
 *   already opted in to it: this use case never lifts an opt-out and never writes an
 *   event that changes nothing;
 * - the same number given more than once is applied once, with the first occurrence's
 *   fields; every occurrence reports the status of that one application. */
#ifndef CD_CORE_BATCH_H
#define CD_CORE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/contact.h"
#include "core/phone.h"
#include "core/provenance.h"
#include "store/store.h"
#include "util/err.h"

typedef enum cd_batch_status {
    CD_BATCH_NONE = 0, /* not applied (yet) */
    CD_BATCH_ADDED,
    CD_BATCH_UPDATED,
    CD_BATCH_SKIPPED,
} cd_batch_status;

/* "added", "updated", "skipped" ("" for NONE): static strings. */
const char *cd_batch_status_name(cd_batch_status s);

typedef struct cd_batch_item {
    char phone[CD_PHONE_MAX];       /* E.164, normalised by the surface */
    bool has[CD_CF_COUNT];          /* the fields this item sets */
    const char *value[CD_CF_COUNT]; /* borrowed; NULL (with has[f]) clears the field */
    /* set by cd_contact_batch */
    size_t first; /* index of the first item with this number (its own index when unique) */
    cd_batch_status status;
    int64_t contact_id; /* the contact the item was applied to (or skipped) */
} cd_batch_item;

typedef struct cd_batch {
    const char *list;      /* the group (by name) to put the contacts in; NULL: none */
    const char *tag;       /* a tag to attach to each contact; NULL: none */
    bool drop_blacklisted; /* leave out, and remove from the list, numbers opted out of all */
    bool keep_existing;    /* leave existing contacts untouched */
    cd_provenance prov;    /* of the group opt-ins (strings borrowed) */
    cd_batch_item *items;  /* borrowed; statuses are written into it */
    size_t n;
    /* set by cd_contact_batch */
    int64_t group_id;   /* the list's group, 0 without a list */
    bool group_created; /* the list was created by this batch */
    size_t failed;      /* on failure: the index of the item at fault, or n when none is */
    int opted_in;       /* group opt-in events written */
    int removed;        /* blacklisted members removed from the list */
} cd_batch;

/* Applies the batch (the rules above) in the writer's transaction `db`. Fills every item's
 * first, status and contact_id, and b's outputs. On failure returns -1 with *err and
 * b->failed; the caller's job must then fail too, so that nothing of it is committed. */
int cd_contact_batch(cd_db *db, int64_t account_id, cd_batch *b, cd_err *err);

#endif
