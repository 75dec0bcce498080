#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

static int log_level = 1;

void cd_log_set_level(int level)
{
    log_level = level;
}

void cd_json_quote(cd_buf *b, const char *s)
{
    cd_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            cd_buf_puts(b, "\\\"");
            break;
        case '\\':
            cd_buf_puts(b, "\\\\");
            break;
        case '\n':
            cd_buf_puts(b, "\\n");
            break;
        default:
            if (*p < 0x20 || *p >= 0x7f)
                cd_buf_printf(b, "\\u%04x", *p); /* logs stay ASCII whatever came in */
            else
                cd_buf_append(b, p, 1);
        }
    }
    cd_buf_append(b, "\"", 1);
}

void cd_log(const char *level, const char *msg, const char *fields)
{
    if (log_level == 0 && strcmp(level, "error") != 0 && strcmp(level, "fatal") != 0)
        return;
    char ts[CD_TIME_LEN];
    cd_buf b = {0};
    cd_time_format(cd_now_ms(), ts);
    cd_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level);
    cd_json_quote(&b, msg);
    if (fields && *fields)
        cd_buf_printf(&b, ",%s", fields);
    cd_buf_puts(&b, "}\n");
    fputs(b.data, stderr); /* one write per line: stderr is unbuffered */
    cd_buf_free(&b);
}

void cd_logf(const char *level, const char *msg, const char *fmt, ...)
{
    cd_buf f = {0};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        char *s = malloc((size_t)n + 1);
        if (s) {
            va_start(ap, fmt);
            vsnprintf(s, (size_t)n + 1, fmt, ap);
            va_end(ap);
            cd_buf_puts(&f, s);
            free(s);
        }
    }
    cd_log(level, msg, f.data);
    cd_buf_free(&f);
}
