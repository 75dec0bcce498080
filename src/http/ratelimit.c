/* http/ratelimit.c -- fixed windows per key in a sharded hash table (ratelimit.h). Each
 * shard has its own mutex, a chained hash and a list of its keys in window-start order, so
 * that the key to evict is always the list's head. */
#include "http/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define NSHARDS 16 /* a power of two */
#define KEY_MAX 128

typedef struct entry {
    struct entry *chain;       /* next in the hash bucket */
    struct entry *prev, *next; /* the shard's list, oldest window first */
    uint64_t hash;
    int64_t start_ms, end_ms;
    int count;
    char key[KEY_MAX];
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t n, cap;
    entry *head, *tail;
} shard;

struct cd_ratelimit {
    shard shards[NSHARDS];
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

cd_ratelimit *cd_ratelimit_new(size_t max_keys)
{
    if (max_keys == 0)
        max_keys = CD_RATELIMIT_MAX_KEYS;
    cd_ratelimit *rl = cd_xcalloc(1, sizeof *rl);
    size_t per = (max_keys + NSHARDS - 1) / NSHARDS, nb = 16;
    while (nb < per)
        nb *= 2;
    for (int i = 0; i < NSHARDS; i++) {
        shard *s = &rl->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->cap = per;
        s->nbuckets = nb;
        s->buckets = cd_xcalloc(nb, sizeof *s->buckets);
    }
    return rl;
}

void cd_ratelimit_free(cd_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        shard *s = &rl->shards[i];
        for (entry *e = s->head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(rl);
}

static void list_unlink(shard *s, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(shard *s, entry *e)
{
    e->prev = s->tail;
    e->next = NULL;
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
}

static entry **slot_of(shard *s, uint64_t hash, const char *key)
{
    entry **p = &s->buckets[(hash >> 4) & (s->nbuckets - 1)];
    while (*p && ((*p)->hash != hash || strcmp((*p)->key, key) != 0))
        p = &(*p)->chain;
    return p;
}

/* Removes the shard's oldest key (under the shard's lock). */
static void evict_oldest(shard *s)
{
    entry *e = s->head;
    entry **p = slot_of(s, e->hash, e->key);
    *p = e->chain;
    list_unlink(s, e);
    free(e);
    s->n--;
}

/* The entry for key, created (evicting if the shard is full) when absent. */
static entry *lookup(shard *s, uint64_t hash, const char *key)
{
    entry **p = slot_of(s, hash, key);
    entry *found = *p;
    if (found != NULL)
        return found;
    if (s->n >= s->cap) {
        evict_oldest(s);
        p = slot_of(s, hash, key); /* the chain may have changed */
    }
    entry *e = cd_xcalloc(1, sizeof *e);
    e->hash = hash;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->start_ms = e->end_ms = INT64_MIN; /* expired: the caller opens a window */
    *p = e;
    list_append(s, e);
    s->n++;
    return e;
}

int cd_ratelimit_hit(cd_ratelimit *rl, const char *key, int limit, int window_s, int64_t now_ms,
                     cd_ratelimit_info *out)
{
    if (limit <= 0 || window_s <= 0) {
        if (out)
            *out = (cd_ratelimit_info){0};
        return 1;
    }
    char k[KEY_MAX];
    snprintf(k, sizeof k, "%s", key); /* the key as it is stored */
    uint64_t hash = fnv1a(k, strlen(k));
    shard *s = &rl->shards[hash & (NSHARDS - 1)];
    pthread_mutex_lock(&s->lock);
    entry *e = lookup(s, hash, k);
    if (now_ms >= e->end_ms) { /* a new window: it is now the shard's newest */
        e->start_ms = now_ms;
        e->end_ms = now_ms + (int64_t)window_s * 1000;
        e->count = 0;
        list_unlink(s, e);
        list_append(s, e);
    }
    bool ok = e->count < limit;
    if (ok)
        e->count++;
    int count = e->count;
    int64_t end = e->end_ms;
    pthread_mutex_unlock(&s->lock);
    if (out) {
        out->limit = limit;
        out->remaining = count < limit ? limit - count : 0;
        out->reset_ms = end;
        int64_t left = (end - now_ms + 999) / 1000;
        out->reset_s = left < 1 ? 1 : (int)left;
        out->retry_after_s = ok ? 0 : out->reset_s;
    }
    return ok ? 1 : 0;
}

size_t cd_ratelimit_size(cd_ratelimit *rl)
{
    size_t n = 0;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&rl->shards[i].lock);
        n += rl->shards[i].n;
        pthread_mutex_unlock(&rl->shards[i].lock);
    }
    return n;
}

int cd_ratelimit_fail(cd_err *err, const cd_ratelimit_info *info)
{
    return cd_fail_reason(err, CD_EBUSY, "rate_limited", "",
                          "too many requests: %d per window; retry in %d seconds", info->limit,
                          info->retry_after_s);
}

void cd_ratelimit_add_headers(cd_req *req, int status, const char *prefix)
{
    const cd_ratelimit_info *info = cd_req_ratelimit(req);
    if (info == NULL || info->limit <= 0)
        return;
    char name[64], v[32];
    const struct {
        const char *suffix;
        long long value;
    } h[] = {{"Limit", info->limit}, {"Remaining", info->remaining}, {"Reset", info->reset_s}};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, h[i].suffix);
        snprintf(v, sizeof v, "%lld", h[i].value);
        cd_reply_header(req, name, v);
    }
    if (status == 429) {
        snprintf(v, sizeof v, "%d", info->retry_after_s ? info->retry_after_s : info->reset_s);
        cd_reply_header(req, "Retry-After", v);
    }
}
