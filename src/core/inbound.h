/* core/inbound.h -- inbound SMS (MO): which account a message belongs to, and what it asks
 * for (the keyword engine: STOP, START/YES, HELP). Above flows and messages: a YES confirms
 * the contact's pending flows and a STOP cancels them, and the replies are queued as
 * messages, so neither flow.c nor message.c needs the other for inbound handling.
 * Every write runs in the writer's transaction `db`. */
#ifndef CD_CORE_INBOUND_H
#define CD_CORE_INBOUND_H

#include "core/keyword.h"
#include "store/store.h"
#include "util/err.h"

typedef struct cd_inbound_in {
    const char *from; /* as received */
    const char *to;   /* our number */
    const char *text;
    const char *provider_id;
    const char *surface; /* "native", "smpp" */
    const char *credential_id;
    const char *request_id;
    const char *ip;
} cd_inbound_in;

/* The account that owns the number `to` an MO was sent to: the number as given (E.164 or a
 * short code), then international digits without their "+", and only then a national
 * (US) reading, which has to guess a region before the account is known. Reads only, so
 * `db` may be a reader. 0 with *out filled, or -1 (CD_ENOTFOUND when no account owns it).
 * to and out must not be NULL. */
int cd_inbound_route(cd_db *db, const char *to, cd_account *out, cd_err *err);

/* Keeps an MO to a number no account owns, for an operator (consentd inbound unrouted):
 * from/to are shortened to what the record holds. `transport` names where it came from.
 * in and transport must not be NULL. */
int cd_inbound_unrouted(cd_db *db, const cd_inbound_in *in, const char *transport, cd_err *err);

/* Stores an inbound SMS of account `a` and applies its keyword: STOP opts out of
 * everything (one reply, and none when already opted out) and cancels pending flows,
 * START/YES/UNSTOP opts back in and confirms pending double opt-ins, HELP replies with the
 * help text. *action says which. a, in, out and action must not be NULL. */
int cd_inbound_receive(cd_db *db, const cd_account *a, const cd_inbound_in *in, cd_message *out,
                       cd_keyword_action *action, cd_err *err);

#endif
