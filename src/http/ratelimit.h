/* http/ratelimit.h -- a fixed-window request counter per key (issue 9 part 5), shared by
 * the pool threads: keys are credentials ("key:17") or, for unauthenticated routes, client
 * addresses ("ip:203.0.113.9"). A key's window starts at its first hit and lasts
 * window_s; within it `limit` hits are allowed, the others denied until it ends.
 *
 * Memory is bounded: at most max_keys keys are tracked. A new key in a full shard evicts
 * that shard's key whose window started first (an expired one if any: windows are kept in
 * start order), so under a flood of distinct keys an old key may lose its count early:
 * the limiter then errs on the side of letting a request through, never of refusing one. */
#ifndef CD_HTTP_RATELIMIT_H
#define CD_HTTP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "util/err.h"

typedef struct cd_ratelimit cd_ratelimit;

/* cd_ratelimit_info (the figures of one hit) is in http/http.h, which keeps them per request. */

#define CD_RATELIMIT_MAX_KEYS 100000 /* the default table cap */

/* max_keys: 0 = CD_RATELIMIT_MAX_KEYS. */
cd_ratelimit *cd_ratelimit_new(size_t max_keys);
void cd_ratelimit_free(cd_ratelimit *rl); /* NULL is a no-op */

/* Counts one hit of `key` (copied; at most 127 bytes are kept) against `limit` hits per
 * window_s seconds, at now_ms (any clock that only moves forward: cd_monotonic_us()/1000
 * or wall time). Returns 1 when allowed, 0 when denied (a denied hit is not counted);
 * fills *out when not NULL. limit <= 0 or window_s <= 0: no limit, always 1, nothing
 * tracked and out->limit = 0. Thread-safe. */
int cd_ratelimit_hit(cd_ratelimit *rl, const char *key, int limit, int window_s, int64_t now_ms,
                     cd_ratelimit_info *out);
/* Keys tracked now (for tests and metrics). */
size_t cd_ratelimit_size(cd_ratelimit *rl);

/* Fills *err for a denied hit: CD_EBUSY with reason "rate_limited" (surfaces answer it
 * 429 with Retry-After: info->retry_after_s). Returns -1. */
int cd_ratelimit_fail(cd_err *err, const cd_ratelimit_info *info);

/* Adds <prefix>Limit, <prefix>Remaining and <prefix>Reset (seconds) from the request's
 * figures, and Retry-After on 429; nothing when none were set. For a headers hook:
 * cd_ratelimit_add_headers(req, status, "X-Rate-Limit-"). */
void cd_ratelimit_add_headers(cd_req *req, int status, const char *prefix);

#endif
