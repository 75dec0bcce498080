/* core/pool.h -- issue 14: the number pool. A messaging profile with number_pool_enable
 * sends from the numbers it leases: the type (long code or toll-free) is drawn with
 * probability proportional to the profile's weights (0 = never that type), the load is
 * spread within a type (the number picked longest ago goes next), unhealthy numbers are
 * skipped when the profile says so, and with sticky_sender a recipient keeps its number for
 * CD_POOL_STICKY_MS.
 *
 * Health comes from final delivery receipts over a sliding window (recorded by
 * cd_message_record_receipt through cd_pool_note_receipt): with at least
 * CD_POOL_MIN_RECEIPTS in the last CD_POOL_WINDOW_MS, a number is unhealthy when under 25%
 * of them were delivered or over 75% were blocked or rejected. Fewer receipts: healthy
 * (nothing is known against it). */
#ifndef CD_CORE_POOL_H
#define CD_CORE_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CD_POOL_WINDOW_MS    (24LL * 3600 * 1000)
#define CD_POOL_MIN_RECEIPTS 4
#define CD_POOL_STICKY_MS    (8LL * 24 * 3600 * 1000)

enum { CD_POOL_LONG_CODE = 0, CD_POOL_TOLL_FREE = 1, CD_POOL_TYPES = 2 };

/* Pure: the type for a draw r in [0, the sum of the available types' weights), or -1 when
 * no available type has a weight above 0. */
int cd_pool_choose_type(const int weight[CD_POOL_TYPES], const bool available[CD_POOL_TYPES],
                        uint32_t r);
/* The same with a uniform random draw (libsodium). */
int cd_pool_choose_type_random(const int weight[CD_POOL_TYPES],
                               const bool available[CD_POOL_TYPES]);
/* Pure: counts as cd_store_sender_health fills them -> healthy? */
bool cd_pool_healthy(const int counts[3]);

/* Is the account's sender `number` healthy now? */
int cd_pool_sender_healthy(cd_db *db, int64_t account_id, const char *number, bool *healthy,
                           cd_err *err);

/* Notes a final receipt status ("delivered", "failed", "expired", "rejected", "blocked")
 * for the sender it was sent from; "unknown" and "" senders are ignored. Writer's
 * transaction. */
int cd_pool_note_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                         cd_err *err);

/* The sender for a message to `to` that names no `from`: from the pool of profile
 * `profile_uuid` (NULL: the account's default profile, cd_profile_default). Returns 1 with
 * *out filled when the pool picked one (and remembers the pick: last use, sticky sender),
 * 0 when no pool applies (no profile, or its pool is off), -1 on error: CD_EINVAL
 * "unknown_profile" (field "profile") for a uuid the account does not have,
 * "no_healthy_sender" when every eligible number is unhealthy and the profile skips
 * unhealthy numbers, "no_sender" when the profile leases no number of a type with a weight
 * above 0. Writer's transaction. `settings` is borrowed and may be NULL. */
int cd_pool_pick(cd_db *db, int64_t account_id, const json_t *settings, const char *profile_uuid,
                 const char *to, cd_sender *out, cd_err *err);

#endif
