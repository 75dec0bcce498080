/* util/log.h -- one JSON object per line on stderr, written with a single fprintf so lines
 * from different threads never interleave. */
#ifndef CD_UTIL_LOG_H
#define CD_UTIL_LOG_H

#include "util/buf.h"

/* Logs {"ts","level","msg"} plus the members in `fields`, a preformatted JSON member list
 * without braces ("\"port\":8080") or NULL. */
void cd_log(const char *level, const char *msg, const char *fields);
/* Formats the members with printf rules, then logs. */
void cd_logf(const char *level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends s as a JSON string literal (quotes included, escaped) to b. */
void cd_json_quote(cd_buf *b, const char *s);
/* 0 = quiet (errors only), 1 = info (default); set once in main. */
void cd_log_set_level(int level);
/* From now on, lines go to a buffer that a background thread writes out every 20 ms (or
 * at 64 KiB): one write() per batch instead of one per line, which matters at tens of
 * thousands of requests a second. Lines of level "error" and "fatal" are written at once,
 * with everything buffered before them. Call from the serving thread before the server
 * starts; cd_log_stop_async() writes what is left and joins the thread. */
void cd_log_start_async(void);
void cd_log_stop_async(void);

#endif
