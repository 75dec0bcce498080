/* core/consent.h -- consent states, scopes, the precedence rules, and the one function
 * through which every consent change goes (cd_consent_set), which writes the new state
 * and its ledger event in the caller's transaction.
 *
 * The rules (DESIGN.md section 2):
 * - a scope is the whole account ("all"), a group ("group:ID") or a message type
 *   ("type:ID"); "all" is wider than every group and type;
 * - an opt-out of "all" beats every opt-in; an opt-out of a scope beats an opt-in of "all"
 *   for that scope;
 * - an opt-in of "all" allows every group and type that is not itself opted out;
 * - only an explicit override lifts an opt-out. */
#ifndef CD_CORE_CONSENT_H
#define CD_CORE_CONSENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/provenance.h"
#include "store/store.h"
#include "util/err.h"

typedef enum cd_state {
    CD_STATE_NONE = 0, /* never asked */
    CD_STATE_PENDING,
    CD_STATE_OPTED_IN,
    CD_STATE_OPTED_OUT,
} cd_state;

typedef struct cd_scope { /* a value type: copy it freely */
    enum { CD_SCOPE_ALL, CD_SCOPE_GROUP, CD_SCOPE_TYPE } kind;
    int64_t id; /* 0 when kind is CD_SCOPE_ALL */
} cd_scope;

#define CD_SCOPE_LEN 40

/* "all", "group:12", "type:3" (ids 1..2^53). Fails with reason "invalid_scope". */
int cd_scope_parse(const char *s, const char *field, cd_scope *out, cd_err *err);
void cd_scope_format(cd_scope scope, char out[CD_SCOPE_LEN]);

const char *cd_state_name(cd_state s);  /* "" for NONE */
cd_state cd_state_parse(const char *s); /* NONE when unknown */

/* The answer of `check`: may a message in `scope` be sent, given the contact's state for
 * "all" and for that scope (pass the same value twice for "all")? Returns the static
 * reason code: "opted_in" (allowed), "opted_out", "pending_confirmation", "no_consent". */
const char *cd_consent_decide(cd_state all, cd_state scoped, bool scope_is_all);
bool cd_consent_reason_allows(const char *reason);

/* May a contact move from `old` to `new`? Lifting an opt-out needs CD_CONSENT_OVERRIDE
 * (an explicit opt-in, a START/YES reply, a confirmed double opt-in). Asking again
 * (pending) for someone already opted in is refused: it would weaken a real consent.
 * Fails with CD_ECONFLICT and reason "opted_out" or "already_opted_in". */
#define CD_CONSENT_OVERRIDE 1u
/* For cd_consent_set: the contact was inserted in this very transaction, so it has no stored
 * state to read (issue 11: a batch of new contacts skips one read per contact). */
#define CD_CONSENT_NEW_CONTACT 2u
int cd_consent_transition(cd_state old, cd_state new_state, unsigned flags, cd_err *err);

/* Sets the state of (contact, scope) and appends the ledger event, in the writer's
 * transaction `db`. Checks the transition rules first. out and ev may be NULL. */
int cd_consent_set(cd_db *db, int64_t account_id, const cd_contact *contact, cd_scope scope,
                   cd_state state, unsigned flags, const cd_provenance *p, cd_consent *out,
                   cd_event *ev, cd_err *err);

/* cd_consent_set for a caller that has already read, in this same transaction, the state
 * `old` that (contact, scope) has now (CD_STATE_NONE when it has none): the store is not
 * asked again. Only for a caller that keeps `old` up to date as it writes. */
int cd_consent_set_from(cd_db *db, int64_t account_id, const cd_contact *contact, cd_scope scope,
                        cd_state old, cd_state state, unsigned flags, const cd_provenance *p,
                        cd_consent *out, cd_event *ev, cd_err *err);

/* Withdraws a pending request for (contact, scope) (an expired or cancelled double
 * opt-in): the state is removed and the ledger records pending -> "none". Does nothing
 * when the state is not pending. */
int cd_consent_clear_pending(cd_db *db, int64_t account_id, const cd_contact *contact,
                             cd_scope scope, const cd_provenance *p, cd_err *err);

/* The current state of (contact, scope), CD_STATE_NONE when never set. */
int cd_consent_state(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                     cd_state *out, cd_err *err);

/* Reads the states that decide `scope` and answers like cd_consent_decide(). */
int cd_consent_check(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                     const char **reason, cd_err *err);

/* Fails with CD_EINVAL "invalid_scope" when a group or type scope names nothing in the
 * account. */
int cd_scope_exists(cd_db *db, int64_t account_id, cd_scope scope, const char *field, cd_err *err);

/* issue 10: *via_api is true when the newest event of the contact at scope "all" is an
 * opt-out made through an API (surface "protexting" or "native", channel "api") rather than
 * by SMS: ProTexting's OptedOutViaApi, which the API may undo and ask again. *at_ms (may be
 * NULL) receives that event's time (0 without events). */
int cd_consent_optout_via_api(cd_db *db, int64_t account_id, int64_t contact_id, bool *via_api,
                              int64_t *at_ms, cd_err *err);

/* issue 10: undoes an opt-out of "all" made through the API (cd_consent_optout_via_api):
 * "all" goes back to the state the opt-out replaced (opted_in or pending), or to none, with
 * its ledger event. *undone says whether anything changed: a contact not opted out of all
 * is left alone (0). One who opted out by SMS is CD_ECONFLICT "opted_out_by_sms". */
int cd_consent_undo_api_optout(cd_db *db, int64_t account_id, const cd_contact *contact,
                               const cd_provenance *p, bool *undone, cd_err *err);

#endif
