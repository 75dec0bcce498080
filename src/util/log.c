#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

static int log_level = 1;

/* The asynchronous writer: one buffer, its lock, and the thread that empties it. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    cd_buf buf;
    bool on, stop;
    pthread_t thread;
} async = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return; /* nowhere to complain to */
        p += w;
        n -= (size_t)w;
    }
}

/* Swaps the buffer out under the lock and writes it outside. */
static void flush_locked(void)
{
    cd_buf out = async.buf;
    async.buf = (cd_buf){0};
    pthread_mutex_unlock(&async.lock);
    if (out.len)
        write_all(out.data, out.len);
    cd_buf_free(&out);
    pthread_mutex_lock(&async.lock);
}

static void *async_main(void *arg)
{
    cd_thread_name("cd-log");
    (void)arg;
    pthread_mutex_lock(&async.lock);
    while (!async.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&async.cond, &async.lock, &until);
        flush_locked();
    }
    flush_locked();
    pthread_mutex_unlock(&async.lock);
    return NULL;
}

void cd_log_start_async(void)
{
    pthread_mutex_lock(&async.lock);
    if (!async.on && pthread_create(&async.thread, NULL, async_main, NULL) == 0) {
        async.on = true;
        async.stop = false;
    }
    pthread_mutex_unlock(&async.lock);
}

void cd_log_stop_async(void)
{
    pthread_mutex_lock(&async.lock);
    bool on = async.on;
    async.stop = true;
    pthread_cond_signal(&async.cond);
    pthread_mutex_unlock(&async.lock);
    if (on)
        pthread_join(async.thread, NULL);
    pthread_mutex_lock(&async.lock);
    async.on = false;
    pthread_mutex_unlock(&async.lock);
}

static void emit(const char *line, size_t n, bool urgent)
{
    pthread_mutex_lock(&async.lock);
    if (!async.on) {
        pthread_mutex_unlock(&async.lock);
        write_all(line, n);
        return;
    }
    cd_buf_append(&async.buf, line, n);
    if (urgent) /* keep the order: what was buffered goes first */
        flush_locked();
    else if (async.buf.len > 65536)
        pthread_cond_signal(&async.cond);
    pthread_mutex_unlock(&async.lock);
}

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
    bool urgent = strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0;
    if (log_level == 0 && !urgent)
        return;
    char ts[CD_TIME_LEN];
    cd_buf b = {.data = cd_xmalloc(512), .cap = 512}; /* a request's line fits: no regrowth */
    b.data[0] = '\0';
    cd_time_format(cd_now_ms(), ts);
    /* issue 16: no printf, one of the costs of every request's line */
    cd_buf_puts(&b, "{\"ts\":\"");
    cd_buf_puts(&b, ts);
    cd_buf_puts(&b, "\",\"level\":\"");
    cd_buf_puts(&b, level);
    cd_buf_puts(&b, "\",\"msg\":");
    cd_json_quote(&b, msg);
    if (fields && *fields) {
        cd_buf_append(&b, ",", 1);
        cd_buf_puts(&b, fields);
    }
    cd_buf_puts(&b, "}\n");
    emit(b.data, b.len, urgent);
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
