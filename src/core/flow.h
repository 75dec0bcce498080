/* core/flow.h -- double opt-in flows: a request for consent to some scopes, confirmed by
 * an SMS reply (YES/START), a signed link, or an API call; cancelled; or expired by the
 * periodic job. Every function runs in the writer's transaction. */
#ifndef CD_CORE_FLOW_H
#define CD_CORE_FLOW_H

#include <jansson.h>

#include "core/consent.h"
#include "store/store.h"
#include "util/err.h"

#define CD_FLOW_DEFAULT_TTL_MS (30LL * 24 * 3600 * 1000)
#define CD_FLOW_CTA_MAX_PARTS  4 /* SMS parts of a caller-supplied CTA text */

/* issue 10: when cd_flow_start asks (makes the flow and queues the CTA). */
enum cd_flow_cta {
    CD_FLOW_CTA_ALWAYS = 0,      /* every time (native, CURSOR) */
    CD_FLOW_CTA_UNLESS_OPTED_IN, /* not when every scope is opted in already */
};

typedef struct cd_flow_in {
    const char *phone;      /* E.164 */
    const json_t *scopes;   /* array of valid scope strings, at least one */
    const char *channel;    /* "sms" or "email" */
    const char *ext_ref;    /* NULL: none */
    const char *email;      /* for "email" */
    const char *disclosure; /* the text shown; NULL: the account's CTA text. For "sms" at
                             * most CD_FLOW_CTA_MAX_PARTS parts (CD_EINVAL "text_too_long") */
    int64_t ttl_ms;         /* 0: the account's flow_ttl_days, else 30 days */
    /* issue 10 (ProTexting): */
    enum cd_flow_cta cta;     /* when the CTA goes out (and the flow is made) */
    bool admit_api_optout;    /* ask again a contact whose opt-out of all came through the
                               * API (cd_consent_optout_via_api) instead of refusing */
    bool record_refused_cta;  /* another opt-out of all is not an error: the CTA is stored
                               * refused ("opted_out") and no flow is made */
    const char *confirm_text; /* sent once, kind "confirmation", when a YES confirms the
                               * flow (core/inbound.c); NULL: the START keyword reply */
    /* What the caller has read or written already in this transaction (all optional): */
    const cd_contact *contact; /* the contact of `phone`; NULL: found or created here */
    const json_t *settings;    /* the account's settings; NULL: read here */
    bool new_contact;          /* `contact` was created in this transaction, so it has no
                                * consent and no flow yet: none is read */
    bool scopes_exist;         /* the caller found every scope in this transaction */
} cd_flow_in;

/* Starts a flow: marks each scope pending (scopes already opted in, and scopes opted out,
 * are left alone: only the confirmation lifts an opt-out), and
 * for "sms" queues the CTA message. Refuses (CD_ECONFLICT "opted_out") a contact who
 * opted out of everything. cta (may be NULL) receives the CTA message, which is stored
 * refused ("rate_limited") when the number is over its CTA cap: the flow is still made.
 * issue 10: in->cta, admit_api_optout and record_refused_cta may decide that nobody is
 * asked: then 0 is returned with no flow made (out->id is ""), and cta receives the
 * refused CTA if one was stored (else its id is ""). */
int cd_flow_start(cd_db *db, const cd_account *a, const cd_flow_in *in, const cd_provenance *p,
                  cd_flow *out, cd_message *cta, cd_err *err);
/* pending -> confirmed: every scope opted in (an explicit consent: it lifts opt-outs of
 * those scopes). `via` is "sms", "link" or "api". Confirming a confirmed flow is a no-op;
 * any other state is CD_ECONFLICT "flow_not_pending". f is updated. */
int cd_flow_confirm(cd_db *db, const cd_account *a, cd_flow *f, const char *via,
                    const cd_provenance *p, cd_err *err);
/* pending -> cancelled or expired (`status`); scopes still pending are withdrawn, and no
 * other state (an opt-out above all) is ever touched. */
int cd_flow_close(cd_db *db, int64_t account_id, cd_flow *f, const char *status,
                  const cd_provenance *p, cd_err *err);
/* Confirms every pending flow of a contact (a YES by SMS); *count says how many. */
int cd_flow_confirm_contact(cd_db *db, const cd_account *a, int64_t contact_id,
                            const cd_provenance *p, int *count, cd_err *err);
/* Cancels every pending flow of a contact (a STOP by SMS). */
int cd_flow_cancel_contact(cd_db *db, int64_t account_id, int64_t contact_id,
                           const cd_provenance *p, cd_err *err);

/* issue 10: the confirm_text of the contact's newest pending flow that has one, before a YES
 * confirms them (*text: caller frees; NULL when none), and that flow's first scope. */
int cd_flow_confirm_text(cd_db *db, int64_t account_id, int64_t contact_id, char **text,
                         char scope[CD_SCOPE_LEN], cd_err *err);
/* ---- issue 13: revocation ---- */

/* confirmed -> revoked: every confirmed flow of the contact with a scope that the opt-out
 * of `scope` covers ("all" covers every scope). Called where a contact opts out (a STOP, an
 * opt-out recorded through an API), in the same transaction; the opt-out's own ledger
 * event records the change. *count (may be NULL) says how many flows were revoked. */
int cd_flow_revoke_contact(cd_db *db, int64_t account_id, int64_t contact_id, cd_scope scope,
                           int *count, cd_err *err);

/* issue 13: records a flow declined when it is made (CURSOR approval=false): its scopes are
 * marked pending and withdrawn at once, so the ledger shows the request and the refusal
 * with the flow's ext_ref; nothing is sent, no other state changes. *out is the cancelled
 * flow. Refuses like cd_flow_start (an opt-out of everything: CD_ECONFLICT "opted_out"). */
int cd_flow_start_declined(cd_db *db, const cd_account *a, const cd_flow_in *in,
                           const cd_provenance *p, cd_flow *out, cd_err *err);

/* The signed confirmation link's token: "<account>.<flow id>.<hmac>", HMAC-SHA256 with the
 * account's secret. Writes at most 160 bytes into out. */
void cd_flow_token(const cd_account *a, const char *flow_id, char out[160]);
/* Splits a token; 0 when it has the right shape. */
int cd_flow_token_parse(const char *token, int64_t *account_id, char flow_id[40]);
/* True when the token was made with this account's secret (constant-time). */
bool cd_flow_token_valid(const cd_account *a, const char *token);

#endif
