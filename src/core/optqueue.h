/* core/optqueue.h -- a queue of message-type opts for one number, applied all or nothing
 * (issue 12: what Omeda's messageoptqueue does, in consentd's own words; the vendor's field
 * names and texts stay in api/omeda.c).
 *
 * The rule for an opt-in where an opt-out exists (Omeda's DeleteOptOut table):
 * - without delete_opt_out, an opt-in of a message type that is opted out is not written:
 *   the opt-out remains;
 * - with delete_opt_out, the type's opt-out is replaced by the opt-in (the explicit
 *   override of DESIGN.md section 2);
 * - an opt-out of the whole account ("all": a STOP) is never lifted by an opt of one
 *   message type, whatever delete_opt_out says: the opt-in is not written.
 * An opt-out is always written. Opts apply in their order, so an opt-out followed by an
 * opt-in of the same type in one queue keeps the opt-out (unless delete_opt_out). */
#ifndef CD_CORE_OPTQUEUE_H
#define CD_CORE_OPTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/consent.h"
#include "store/store.h"
#include "util/err.h"

typedef enum cd_opt_outcome {
    CD_OPT_NOT_APPLIED = 0, /* not applied: the queue was refused (or not run yet) */
    CD_OPT_KNOWN,           /* checked: a type of the account, not applied yet */
    CD_OPT_WRITTEN,         /* the state was written */
    CD_OPT_REPLACED_OUT,    /* an opt-in replaced the type's opt-out (delete_opt_out) */
    CD_OPT_KEPT_OUT,        /* an opt-in not written: the type is opted out */
    CD_OPT_KEPT_OUT_ALL,    /* an opt-in not written: the contact opted out of "all" */
    CD_OPT_UNKNOWN_TYPE,    /* the type is not one of the account's: refuses the queue */
} cd_opt_outcome;

/* "not_applied" (also for CD_OPT_KNOWN), "written", "replaced_opt_out", "kept_opt_out",
 * "kept_opt_out_all", "unknown_type" (static). */
const char *cd_opt_outcome_name(cd_opt_outcome o);

typedef struct cd_opt {
    int64_t type_id;     /* a message type id of the account */
    cd_state state;      /* CD_STATE_OPTED_IN or CD_STATE_OPTED_OUT */
    bool delete_opt_out; /* an opt-in replaces an opt-out of its type */
    /* set by cd_optqueue_check / cd_optqueue_apply */
    cd_opt_outcome outcome;
    int64_t event_seq; /* the ledger event written, 0 when none */
} cd_opt;

/* The rule above, as a pure function: what becomes of `opt` when the contact's state is
 * `all` for "all" and `type` for the opt's type. Never CD_OPT_NOT_APPLIED or _UNKNOWN_TYPE. */
cd_opt_outcome cd_opt_decide(cd_state all, cd_state type, const cd_opt *opt);

/* Checks that every opt names a message type of the account: those that do not get
 * CD_OPT_UNKNOWN_TYPE, the others CD_OPT_KNOWN. *bad counts the unknown ones. Reads only:
 * a reader will do, before the writer is asked for anything, since message types are never
 * deleted (a type known on a reader is known on the writer). Fails only when the store does. */
int cd_optqueue_check(cd_db *db, int64_t account_id, cd_opt *opts, size_t n, size_t *bad,
                      cd_err *err);

/* Applies n opts that cd_optqueue_check found all CD_OPT_KNOWN (else CD_EINTERNAL, nothing
 * written) to the contact of `phone` (E.164; created when missing and n > 0), in order, in
 * the writer's transaction: each gets its outcome (cd_opt_decide), the written ones their
 * ledger event with provenance p (strings borrowed; surface and channel required). On -1
 * some opts may have been written: the caller must fail its job, so that its savepoint
 * takes them back -- all or nothing. */
int cd_optqueue_apply(cd_db *db, int64_t account_id, const char *phone, cd_opt *opts, size_t n,
                      const cd_provenance *p, cd_err *err);

#endif
