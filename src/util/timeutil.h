/* util/timeutil.h -- wall-clock helpers. Times are RFC 3339 UTC strings in the API. */
#ifndef CD_UTIL_TIMEUTIL_H
#define CD_UTIL_TIMEUTIL_H

#include <stdint.h>

#define CD_TIME_LEN 48

int64_t cd_now_ms(void);       /* wall clock, milliseconds since the epoch */
int64_t cd_monotonic_us(void); /* for durations */
/* "2026-11-23T18:12:54.123Z" (milliseconds) into out[CD_TIME_LEN]. */
void cd_time_format(int64_t ms, char out[CD_TIME_LEN]);
/* Parses RFC 3339 ("2026-11-23T18:12:54Z", fractions and offsets allowed) or a date
 * ("2026-11-23"); returns 0 and *ms, or -1. */
int cd_time_parse(const char *s, int64_t *ms);

/* Minutes since local midnight (0..1439) at `ms` in the IANA time zone `tz` ("UTC",
 * "America/New_York"); -1 when the zone is unknown. Safe from any thread: the libc zone
 * switch it needs is serialised inside. */
int cd_time_local_minute(int64_t ms, const char *tz);
/* When a quiet period [start_min, end_min) (local minutes, may wrap midnight) is active at
 * `ms` in `tz`, returns the time it ends (ms); otherwise 0. */
int64_t cd_time_quiet_until(int64_t ms, const char *tz, int start_min, int end_min);

#endif
