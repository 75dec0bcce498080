/* core/ledger.h -- the tamper-evident consent ledger.
 *
 * Events of one account form a chain: event n stores prev_hash = hash of event n-1 (64
 * zeros for the first) and hash = SHA-256 of its canonical content, prev_hash included.
 * The account row keeps the newest seq and hash, so deleting the newest events is
 * detected too. Editing, deleting or reordering any event breaks a link that
 * cd_ledger_verify() reports. */
#ifndef CD_CORE_LEDGER_H
#define CD_CORE_LEDGER_H

#include <jansson.h>

#include "core/consent.h"
#include "store/store.h"

#define CD_LEDGER_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* The content that is hashed: every field but id and hash. New reference. */
json_t *cd_ledger_content(const cd_event *ev);
/* SHA-256 hex of the canonical JSON of cd_ledger_content(ev). */
void cd_ledger_hash(const cd_event *ev, char out[65]);

/* Appends an event in the writer's transaction: next seq, chained hash, account head.
 * `ev` (may be NULL) receives the stored event. */
int cd_ledger_append(cd_db *db, int64_t account_id, const cd_contact *contact, const char *scope,
                     const char *old_state, const char *new_state, const cd_provenance *p,
                     int64_t created_ms, cd_event *ev, cd_err *err);

typedef struct cd_ledger_report {
    bool ok;
    int64_t events;     /* events checked */
    int64_t account_id; /* where the first problem is */
    char account[128];
    int64_t seq;         /* the first bad seq */
    const char *problem; /* "hash_mismatch", "missing", "reordered", "head_mismatch" */
} cd_ledger_report;

/* Verifies one account's chain, or every account's when account_id is 0. Returns 0 when
 * the check could run (look at report->ok), -1 on a storage error. */
int cd_ledger_verify(cd_db *db, int64_t account_id, cd_ledger_report *report, cd_err *err);

#endif
