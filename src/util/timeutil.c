#include "util/timeutil.h"

#include <stdbool.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

int64_t cd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cd_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void cd_time_format(int64_t ms, char out[CD_TIME_LEN])
{
    int64_t rem = ms % 1000;
    if (rem < 0) /* before 1970: floor, so the milliseconds stay 0..999 */
        rem += 1000;
    time_t s = (time_t)((ms - rem) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        snprintf(out, CD_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
        return;
    }
    /* Written by hand: this runs several times per request, and snprintf showed up. */
    char *p = put_digits(out, year, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, (int)rem, 3);
    *p++ = 'Z';
    *p = '\0';
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int cd_time_parse(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    const char *p = s;
    if (s == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
            digits(&p, 2, &sec))
            return -1;
        if (*p == '.') {
            int scale = 100;
            p++;
            if (!isdigit((unsigned char)*p))
                return -1;
            while (isdigit((unsigned char)*p)) {
                frac += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 60 + om);
        } else {
            return -1;
        }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm() normalises 2026-02-30 into March: a date that moved did not exist. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

#define DAY_MS 86400000LL

/* ms modulo a day, 0..DAY_MS-1 also before 1970. */
static int64_t day_part(int64_t ms)
{
    return ((ms % DAY_MS) + DAY_MS) % DAY_MS;
}

int cd_time_local_minute(int64_t ms, const char *tz)
{
    int64_t off;
    if (cd_time__zone_offset(tz, ms, false, &off) != 0)
        return -1;
    return (int)(day_part(ms + off) / 60000);
}

int64_t cd_time_quiet_until(int64_t ms, const char *tz, int start_min, int end_min)
{
    int64_t off;
    if (cd_time__zone_offset(tz, ms, false, &off) != 0)
        return -1;
    int64_t local = ms + off;
    int now = (int)(day_part(local) / 60000);
    bool quiet = start_min == end_min  ? false
                 : start_min < end_min ? now >= start_min && now < end_min
                                       : now >= start_min || now < end_min;
    if (!quiet)
        return 0;
    /* The end as a wall-clock time, today or tomorrow, then back to UTC with the offset in
     * force then: across a DST change the quiet period is an hour shorter or longer. */
    int64_t end_local = local - day_part(local) + (int64_t)end_min * 60000;
    if (end_local <= local)
        end_local += DAY_MS;
    if (cd_time__zone_offset(tz, end_local, true, &off) != 0)
        return -1;
    return end_local - off;
}

/* ---- issue 10: local wall-clock time ---- */

int cd_time_format_local(int64_t ms, const char *tz, char out[CD_TIME_LOCAL_LEN])
{
    int64_t off = 0;
    int rc = cd_time__zone_offset(tz, ms, false, &off) != 0 ? -1 : 0;
    if (rc != 0)
        off = 0; /* an unknown zone: UTC, and say so */
    int64_t local = ms + off;
    int64_t rem = ((local % 1000) + 1000) % 1000;
    time_t s = (time_t)((local - rem) / 1000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(out, CD_TIME_LOCAL_LEN, "0000-00-00 00:00:00");
        return -1;
    }
    if (strftime(out, CD_TIME_LOCAL_LEN, "%Y-%m-%d %H:%M:%S", &tm) != CD_TIME_LOCAL_LEN - 1) {
        snprintf(out, CD_TIME_LOCAL_LEN, "0000-00-00 00:00:00");
        return -1;
    }
    return rc;
}
