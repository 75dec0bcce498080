/* core/usecase.h -- one function per use case that several API surfaces share (issue 9
 * part 2), so that six surfaces cannot grow six consent semantics. The api layer parses a
 * request into these inputs and renders what comes out; every rule lives here or below.
 *
 * Functions that take a `db` and change something run in the writer's transaction (a
 * cd_store job); the others take a reader. Strings in the inputs are borrowed. Each
 * function returns 0, or -1 with *err (which may be NULL) set and nothing changed. */
#ifndef CD_CORE_USECASE_H
#define CD_CORE_USECASE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/account.h"
#include "core/consent.h"
#include "core/phone.h"
#include "store/store.h"
#include "util/err.h"

/* ---- recording a consent ---- */

typedef struct cd_consent_request {
    const char *phone; /* E.164 (already normalised by the surface) */
    cd_scope scope;
    cd_state state;
    cd_provenance prov; /* strings borrowed; surface and channel required */
} cd_consent_request;

/* Records one consent: the scope must exist in the account (CD_EINVAL "invalid_scope"),
 * the contact is upserted by number, the state is set and its ledger event appended. An
 * explicit opt-in is the override that may lift an opt-out (DESIGN.md section 2).
 * out and ev may be NULL. Writer's transaction. */
int cd_consent_record(cd_db *db, int64_t account_id, const cd_consent_request *in, cd_consent *out,
                      cd_event *ev, cd_err *err);

/* The answer to "may I text this number in this scope?". */
typedef struct cd_check_result {
    bool valid;               /* raw parsed as a number of the account's region */
    char phone[CD_PHONE_MAX]; /* E.164 when valid, else "" */
    const char *reason;       /* static: "opted_in", "opted_out", "pending_confirmation",
                               * "no_consent", "invalid_number" */
    bool allowed;
} cd_check_result;

/* Checks `raw` (any format) for `scope` against the account's consents. An unparseable
 * number is not an error: it is answered with reason "invalid_number". A number without a
 * contact is "no_consent". Fails only when the store does. Reader; `db` is not used (and
 * may be NULL) when raw is not a valid number, so a caller may skip opening one then. */
int cd_consent_check_phone(cd_db *db, const cd_account *account, const char *raw, cd_scope scope,
                           cd_check_result *out, cd_err *err);

/* ---- groups and message types ("group" or "type") ---- */

/* Creates a group or message type called n->name; n->id, when not 0, asks for that id
 * (types only: a vendor's numeric category). Fails with CD_ECONFLICT reason "conflict"
 * (field "name") when the name exists, or (field "id") when the id is taken. Fills n->id
 * and n->created_ms. Writer's transaction. */
int cd_named_create(cd_db *db, const char *kind, int64_t account_id, cd_named *n, cd_err *err);

/* Finds the group or type called `name`, creating it when missing (*created tells which;
 * may be NULL). For surfaces that address groups by name. Writer's transaction. */
int cd_named_ensure(cd_db *db, const char *kind, int64_t account_id, const char *name,
                    cd_named *out, bool *created, cd_err *err);

/* ---- settings ---- */

/* Checks one setting's value (null removes a setting and is always fine); the keywords,
 * the exempt caps, quiet hours, replies, transport and the rest. An unknown key fails.
 * CD_EINVAL reason "invalid_field", field = the key. */
int cd_settings_check(const char *key, json_t *value, cd_err *err);

/* Applies `patch` (an object; borrowed) to the account's settings after checking every
 * member with cd_settings_check(): null removes a setting, default_sender must be one of
 * the account's senders (CD_EINVAL "unknown_sender"). *out receives the stored settings as
 * cd_settings_view() shows them (a new reference). Writer's transaction. */
int cd_settings_patch(cd_db *db, const cd_account *account, json_t *patch, json_t **out,
                      cd_err *err);

/* Takes `settings` and returns it with the caps in effect added ("exempt_caps"), so that a
 * client sees the limits it runs into (issue 8 item 5). */
json_t *cd_settings_view(json_t *settings);

/* ---- senders ---- */

typedef struct cd_sender_in {
    const char *number;    /* any format, or a short code of 3 to 8 digits */
    const char *transport; /* NULL, "sink", "smpp" or "http" */
    bool make_default;
    const char *type; /* issue 14: NULL = inferred (cd_sender_type_of) */
} cd_sender_in;

/* Checks a sender's input and fills number[CD_PHONE_MAX] with its stored form (the short
 * code, or E.164 in `region`). CD_EINVAL "invalid_field" or "invalid_phone" (field
 * "number" or "transport"). For surfaces that must refuse before they defer. */
int cd_sender_parse(const cd_sender_in *in, const char *region, char number[CD_PHONE_MAX],
                    cd_err *err);

/* Adds (or updates) a sender number of the account, making it the default sender when
 * asked. out receives the stored sender (its first created_at kept); *is_default tells
 * whether it is now the default (may be NULL). Writer's transaction. */
int cd_sender_add(cd_db *db, const cd_account *account, const cd_sender_in *in, cd_sender *out,
                  bool *is_default, cd_err *err);

#endif
