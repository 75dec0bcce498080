/* api/limits.h -- the per-account request limit (issue 9 part 5): the account's settings
 * "rate_limit" ({"limit", "window_seconds"}) applied per credential by a cd_ratelimit
 * (http/ratelimit.h). One per server, reached through cd_api_env.limits.
 *
 * The hot path reads no settings: each account's figures are cached here and read again
 * only when older than a second or when cd_api_limits_changed() was called since (after
 * a settings change has committed). No "rate_limit" setting: no limit, nothing tracked. */
#ifndef CD_API_LIMITS_H
#define CD_API_LIMITS_H

#include "api/env.h"
#include "core/account.h"
#include "http/ratelimit.h"
#include "store/store.h"

/* cd_api_limits_new() and cd_api_limits_free() are declared in api.h (the server's). */

/* Counts one request of `who` (authenticated) read through db (the request's reader).
 * 0: allowed (the figures are set on the request when a limit applies: cd_req_ratelimit);
 * -1: denied, *err is cd_ratelimit_fail's CD_EBUSY "rate_limited". l NULL: always 0. If
 * the settings cannot be read the last known figures apply (none: no limit). */
int cd_api_limits_check(cd_api_limits *l, cd_req *req, cd_db *db, const cd_principal *who,
                        cd_err *err);

/* Counts one request of an unauthenticated route from the request's client address, like
 * cd_api_limits_check. l NULL or no public limit: always 0. */
int cd_api_limits_check_ip(cd_api_limits *l, cd_req *req, cd_err *err);

/* Makes every cached figure stale: call once a settings change has committed. */
void cd_api_limits_changed(cd_api_limits *l);

#endif
