/* core/ledger.h -- the tamper-evident consent ledger.
 *
 * Events of one account form a chain: event n stores prev_hash = hash of event n-1 (64
 * zeros for the first) and hash = SHA-256 of its canonical content, prev_hash included.
 * The account row keeps the newest seq and hash, so deleting the newest events is
 * detected too. Editing, deleting or reordering any event breaks a link that
 * cd_ledger_verify() reports.
 *
 * Whoever can write the database could still rewrite every event and the head
 * consistently, so the head is also signed: HMAC-SHA256 under a 32-byte key that lives in
 * a file outside the database (cd_ledger_key_load) and in memory (cd_store_set_ledger_key).
 * Without the key a rewritten head cannot be re-signed, and cd_ledger_verify reports it. */
#ifndef CD_CORE_LEDGER_H
#define CD_CORE_LEDGER_H

#include <jansson.h>

#include "core/provenance.h"
#include "store/store.h"
#include "util/buf.h"

#define CD_LEDGER_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define CD_LEDGER_KEY_LEN 32

/* The content that is hashed: every field but id and hash. New reference. */
json_t *cd_ledger_content(const cd_event *ev);
/* SHA-256 hex of the canonical JSON of cd_ledger_content(ev). */
void cd_ledger_hash(const cd_event *ev, char out[65]);

/* The head's signature: HMAC-SHA256(key, "<account_id>|<seq>|<head hash>") in hex. */
void cd_ledger_sign(const unsigned char key[CD_LEDGER_KEY_LEN], int64_t account_id, int64_t seq,
                    const char *head, char out[65]);

/* Reads the key file at `path`: 64 hex digits (32 random bytes), optionally followed by a
 * newline. When it does not exist and `create` is true, creates it with mode 0600 (and
 * sets *created, which may be NULL). CD_ENOTFOUND when it does not exist and `create` is
 * false; CD_EINVAL when it is not a key. */
int cd_ledger_key_load(const char *path, bool create, unsigned char key[CD_LEDGER_KEY_LEN],
                       bool *created, cd_err *err);

/* Loads the key file into the store (cd_store_set_ledger_key). With `create`, a missing
 * file is created and, as a new key trusts the ledger as it is now, every account's head
 * is signed with it; *signed_heads (may be NULL) is then the number of accounts, else -1. */
int cd_ledger_key_use(cd_store *s, const char *path, bool create, int *signed_heads, cd_err *err);

/* Signs the account's current head with the store's key (a writer job). An account gets
 * its first signature when it is created, so that erasing its whole ledger (seq back to
 * 0) is detected too. Does nothing when the store has no key. */
int cd_ledger_sign_account(cd_db *db, const cd_account *a, cd_err *err);
/* Signs the current head of every account with the store's key (a writer job). Used when
 * a new key was just created, so that an existing ledger is trusted from then on. */
int cd_ledger_sign_all(cd_db *db, int *accounts, cd_err *err);

/* Appends to `out` the canonical JSON of the event's content: the bytes that are hashed. */
void cd_ledger_canon(const cd_event *ev, cd_buf *out);

/* ---- export (issue 8 items 11 to 13) ----
 * A proof carries, for every event, exactly the hashed content plus "hash", so that anyone
 * can recompute each hash (SHA-256 of the canonical JSON of the event without "hash") and
 * each link (prev_hash = the hash of seq - 1). JSON: one object a line. CSV: a header,
 * then one row an event, the content's columns in canonical order and then hash; a string
 * cell that starts with ' had one added (cd_ledger_csv_neutralise) and a reader drops it. */

/* What a proof says about itself, for whoever checks it without consentd. */
#define CD_LEDGER_HASH_ALGORITHM "sha256(canonical_json(event without hash))"
#define CD_LEDGER_CANONICAL_JSON                                                                   \
    "object keys sorted by byte, no whitespace, strings with the escapes \\\" \\\\ \\b \\f \\n "   \
    "\\r \\t, other control characters and all non-ASCII as \\uXXXX (upper-case hex, UTF-16 "      \
    "surrogate pairs), integers in decimal"

#define CD_LEDGER_EXPORT_PAGE 256 /* events per read: each page is its own short read */

/* A cursor over one account's events (one contact's, or all of them). Fill the members
 * from store to csv and zero the rest. */
typedef struct cd_ledger_export {
    cd_store *store; /* borrowed; each page takes a reader of its own */
    int64_t account_id;
    int64_t contact_id; /* 0: every event of the account */
    int64_t upto_seq;   /* the account's head when the export began: later events are left out */
    bool csv;
    int64_t after_seq; /* the cursor */
    int64_t written;
    bool done;
} cd_ledger_export;

/* Appends the next page of events to `out`. Returns 1 while more may follow, 0 when the
 * export is complete, -1 with *err on a storage error. */
int cd_ledger_export_page(cd_ledger_export *x, cd_buf *out, cd_err *err);
/* The CSV header line. */
void cd_ledger_csv_header(cd_buf *out);
/* Whether a CSV cell gets a leading ' so that no spreadsheet runs it as a formula. */
bool cd_ledger_csv_neutralise(const char *cell);

/* Appends an event in the writer's transaction: next seq, chained hash, account head.
 * `ev` (may be NULL) receives the stored event. Free text is stored as valid UTF-8 (bad
 * bytes as \\xHH) and cut at a character boundary to fit its column (cd_canon_text_copy).
 * When the store has a ledger key the new head is signed. */
int cd_ledger_append(cd_db *db, int64_t account_id, const cd_contact *contact, const char *scope,
                     const char *old_state, const char *new_state, const cd_provenance *p,
                     int64_t created_ms, cd_event *ev, cd_err *err);

/* issue 11: many events of one account in one job (a batch of contacts). Between _begin
 * and _end, cd_ledger_append for that account chains to the head it keeps in memory,
 * instead of reading the account and rewriting (and re-signing) its head for every event;
 * _end writes and signs the head once. Every event is still appended by cd_ledger_append,
 * with its own seq, hash and link. A job that fails after _begin calls _abort (its
 * savepoint takes the events back); batches do not nest.
 * issue 16: in a job of the writer's batch this is what cd_ledger_append always does, for
 * every account the batch touches: the heads are written and signed once, just before the
 * batch's COMMIT (a failed job's savepoint takes its heads back with its events), so
 * there _begin, _end and _abort have nothing left to do. */
int cd_ledger_batch_begin(cd_db *db, int64_t account_id, cd_err *err);
int cd_ledger_batch_end(cd_db *db, cd_err *err);
void cd_ledger_batch_abort(void);

typedef struct cd_ledger_report {
    bool ok;
    int64_t events;     /* events checked */
    int64_t account_id; /* where the first problem is */
    char account[128];
    int64_t seq; /* the first bad seq */
    /* "hash_mismatch", "missing", "reordered", "head_mismatch", "head_unsigned",
     * "head_signature" (the head is not signed by our key: rewritten without it) */
    const char *problem;
    bool signature_checked; /* false when the store has no ledger key */
} cd_ledger_report;

/* Verifies one account's chain, or every account's when account_id is 0, and each head's
 * signature (an account without events included) when the store has a ledger key. Returns 0 when
 * the check could run (look at report->ok), -1 on a storage error. */
int cd_ledger_verify(cd_db *db, int64_t account_id, cd_ledger_report *report, cd_err *err);

#endif
