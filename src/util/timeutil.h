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

#endif
