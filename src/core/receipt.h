/* core/receipt.h -- issue 14: delivery receipts that HTTP providers report through the
 * native API (POST /api/v1/receipts). SMPP receipts arrive by deliver_sm and go straight
 * to cd_message_record_receipt; both count towards the sender's health (core/pool.h). */
#ifndef CD_CORE_RECEIPT_H
#define CD_CORE_RECEIPT_H

#include "store/store.h"
#include "util/err.h"

/* A delivery receipt from an HTTP provider (POST /api/v1/receipts): for the account's
 * message `message_id`, or for the message whose http part is `provider_id` (exactly one of
 * the two). status is "delivered", "failed", "blocked", "expired" or "rejected" (else
 * CD_EINVAL "invalid_field", field "status"). Applied like an SMPP receipt
 * (cd_message_record_receipt: the message's status, the sender's health). CD_ENOTFOUND for
 * a message the account does not have; CD_ECONFLICT "not_sent" for one not sent yet. out
 * gets the updated message. Writer's transaction. */
int cd_receipt_record(cd_db *db, int64_t account_id, const char *message_id,
                      const char *provider_id, const char *status, const char *error_code,
                      cd_message *out, cd_err *err);

#endif
