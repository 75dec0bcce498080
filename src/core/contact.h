/* core/contact.h -- contacts: one per (account, E.164 number), created or merged here.
 * Field names are the model's (the native API uses them as they are; vendor surfaces map
 * their own names onto them). */
#ifndef CD_CORE_CONTACT_H
#define CD_CORE_CONTACT_H

#include <stdbool.h>

#include "store/store.h"
#include "util/err.h"

enum cd_contact_field {
    CD_CF_FIRST_NAME,
    CD_CF_LAST_NAME,
    CD_CF_EMAIL,
    CD_CF_BIRTHDAY,
    CD_CF_ZIP,
    CD_CF_CITY,
    CD_CF_PARAM1,
    CD_CF_COUNT = CD_CF_PARAM1 + CD_CONTACT_PARAMS
};

/* "first_name", ..., "param1".."param5" */
const char *cd_contact_field_name(int f);
/* The slot of field f in c (borrowed). */
char **cd_contact_field(cd_contact *c, int f);
/* Checks one field's value ("" is allowed and means unset). */
int cd_contact_field_check(int f, const char *value, cd_err *err);

/* issue 8 item 11: totals one contact may hold, after a merge with what it has (an upsert
 * adds tags and custom keys, so per-request checks alone let them grow without bound).
 * Over them cd_contact_apply fails with CD_EINVAL (422): reason "too_many_tags" (field
 * "tags"), "too_many_custom_fields" or "custom_too_large" (field "custom"). */
#define CD_CONTACT_MAX_TAGS         100
#define CD_CONTACT_MAX_CUSTOM_KEYS  50
#define CD_CONTACT_MAX_CUSTOM_BYTES 16384 /* custom as compact JSON */

/* A change to a contact. Every pointer is borrowed. */
typedef struct cd_contact_patch {
    const char *phone; /* E.164; the key of an upsert */
    bool has[CD_CF_COUNT];
    const char *value[CD_CF_COUNT]; /* NULL with has[f] = clear the field */
    json_t *custom;                 /* object; NULL = leave as it is */
    json_t *tags;                   /* array of strings; NULL = leave */
    json_t *groups;                 /* array of group ids; NULL = leave */
    bool merge; /* true: add tags/groups and custom keys (upsert); false: replace (PATCH) */
} cd_contact_patch;

/* Applies p to the contact with `id` (id != 0) or with p->phone, in the writer's
 * transaction. With `create`, a missing contact is inserted (*created = true); without,
 * it is CD_ENOTFOUND. Group ids must exist in the account (CD_EINVAL, field "groups").
 * out receives the stored contact (caller clears it). */
int cd_contact_apply(cd_db *db, int64_t account_id, int64_t id, const cd_contact_patch *p,
                     bool create, cd_contact *out, bool *created, cd_err *err);

/* cd_contact_apply(db, account_id, 0, p, true, out, created, err) for a batch that writes
 * mostly new numbers: the contact is inserted first, without a read; only when the number is
 * already taken does it read and update the stored one as cd_contact_apply does. */
int cd_contact_upsert(cd_db *db, int64_t account_id, const cd_contact_patch *p, cd_contact *out,
                      bool *created, cd_err *err);

/* Finds a contact by reference: an id ("42") or a number in any format. Numbers with 8 or
 * more digits, or with anything but digits, are read as phone numbers. */
int cd_contact_find(cd_db *db, int64_t account_id, const char *region, const char *ref,
                    cd_contact *out, cd_err *err);

#endif
