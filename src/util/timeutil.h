/* util/timeutil.h -- wall-clock helpers. Times are RFC 3339 UTC strings in the API. */
#ifndef CD_UTIL_TIMEUTIL_H
#define CD_UTIL_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

#define CD_TIME_LEN 48

int64_t cd_now_ms(void);       /* wall clock, milliseconds since the epoch */
int64_t cd_monotonic_us(void); /* for durations */
/* "2026-11-23T18:12:54.123Z" (milliseconds) into out[CD_TIME_LEN]. */
void cd_time_format(int64_t ms, char out[CD_TIME_LEN]);
/* Parses RFC 3339 ("2026-11-23T18:12:54Z", fractions and offsets allowed) or a date
 * ("2026-11-23"); returns 0 and *ms, or -1. */
int cd_time_parse(const char *s, int64_t *ms);

/* Time zones are IANA names ("UTC", "America/New_York") resolved by ICU, each loaded once
 * and then shared (util/tz_shim.cc). Every function below is safe from any thread and
 * never touches the TZ environment variable. */
#define CD_TIME_ZONE_MAX 63 /* bytes of a zone name */

/* True when ICU knows the zone: check it where a zone is set, so that an unknown zone is
 * an error then rather than a silent skip later (issue 8 item 10). */
bool cd_time_zone_valid(const char *tz);
/* Minutes since local midnight (0..1439) at `ms` in `tz`; -1 when the zone is unknown. */
int cd_time_local_minute(int64_t ms, const char *tz);
/* When a quiet period [start_min, end_min) (local minutes, may wrap midnight) is active at
 * `ms` in `tz`, returns the time it ends (ms), found in local time, so that a daylight
 * saving change in between is counted; otherwise 0. -1 when the zone is unknown. */
int64_t cd_time_quiet_until(int64_t ms, const char *tz, int start_min, int end_min);

/* issue 10: "YYYY-MM-DD HH:MM:SS", the wall-clock time at `ms` in `tz` (ProTexting's
 * DateCreated), into out[CD_TIME_LOCAL_LEN]. 0; -1 when the zone is unknown (then the time
 * is written in UTC) or the year falls outside 0000..9999 (then "0000-00-00 00:00:00"). */
#define CD_TIME_LOCAL_LEN 20
int cd_time_format_local(int64_t ms, const char *tz, char out[CD_TIME_LOCAL_LEN]);

/* For timeutil.c: the zone's offset from UTC (ms) at `ms`, which is a UTC time, or with
 * `local` a wall-clock time in the zone (a time skipped by a DST change counts with the
 * offset before it). -1 when the zone is unknown. */
int cd_time__zone_offset(const char *tz, int64_t ms, bool local, int64_t *offset_ms);

#endif
