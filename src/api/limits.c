/* api/limits.c -- per-account limits with a small cache of their settings (limits.h). The
 * cache is direct-mapped by account id: a collision only costs a settings read. */
#include "api/limits.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/timeutil.h"
#include "util/xalloc.h"

#define SLOTS      1024 /* a power of two */
#define LOCKS      16
#define MAX_AGE_MS 1000

typedef struct slot {
    int64_t account_id; /* 0: empty */
    int limit, window_s;
    uint64_t gen;
    int64_t fetched_ms;
} slot;

struct cd_api_limits {
    cd_ratelimit *rl;
    int public_limit, public_window_s; /* per client address on public routes; 0: none */
    atomic_uint_fast64_t gen;
    pthread_mutex_t locks[LOCKS];
    slot slots[SLOTS];
};

cd_api_limits *cd_api_limits_new(void)
{
    cd_api_limits *l = cd_xcalloc(1, sizeof *l);
    l->rl = cd_ratelimit_new(0);
    atomic_init(&l->gen, 1);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&l->locks[i], NULL);
    return l;
}

void cd_api_limits_free(cd_api_limits *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&l->locks[i]);
    cd_ratelimit_free(l->rl);
    free(l);
}

void cd_api_limits_changed(cd_api_limits *l)
{
    if (l != NULL)
        atomic_fetch_add(&l->gen, 1);
}

/* The account's figures from its settings: 0 and fills limit/window (0/0: none set). */
static int read_figures(cd_db *db, int64_t account_id, int *limit, int *window_s)
{
    json_t *s = NULL;
    cd_err err;
    if (cd_store_settings_get(db, account_id, &s, &err) != 0)
        return -1;
    json_t *rl = json_object_get(s, "rate_limit");
    *limit = (int)json_integer_value(json_object_get(rl, "limit"));
    *window_s = (int)json_integer_value(json_object_get(rl, "window_seconds"));
    json_decref(s);
    return 0;
}

/* The account's figures, from the cache when fresh. */
static void figures(cd_api_limits *l, cd_db *db, int64_t account_id, int64_t now_ms, int *limit,
                    int *window_s)
{
    size_t i = (size_t)account_id & (SLOTS - 1);
    pthread_mutex_t *lock = &l->locks[i % LOCKS];
    uint64_t gen = atomic_load(&l->gen);
    pthread_mutex_lock(lock);
    slot c = l->slots[i];
    pthread_mutex_unlock(lock);
    bool mine = c.account_id == account_id;
    *limit = mine ? c.limit : 0;
    *window_s = mine ? c.window_s : 0;
    if (mine && c.gen == gen && now_ms - c.fetched_ms < MAX_AGE_MS)
        return;
    /* Read outside the lock; a failed read keeps what was known (fail open). */
    if (read_figures(db, account_id, limit, window_s) != 0)
        return;
    pthread_mutex_lock(lock);
    l->slots[i] = (slot){.account_id = account_id,
                         .limit = *limit,
                         .window_s = *window_s,
                         .gen = gen,
                         .fetched_ms = now_ms};
    pthread_mutex_unlock(lock);
}

int cd_api_limits_check(cd_api_limits *l, cd_req *req, cd_db *db, const cd_principal *who,
                        cd_err *err)
{
    if (l == NULL)
        return 0;
    int64_t now_ms = cd_monotonic_us() / 1000;
    int limit, window_s;
    figures(l, db, who->account.id, now_ms, &limit, &window_s);
    if (limit <= 0 || window_s <= 0)
        return 0;
    char key[64];
    cd_ratelimit_info info;
    snprintf(key, sizeof key, "key:%s", who->credential_id);
    int ok = cd_ratelimit_hit(l->rl, key, limit, window_s, now_ms, &info);
    cd_req_set_ratelimit(req, &info);
    return ok ? 0 : cd_ratelimit_fail(err, &info);
}

void cd_api_limits_set_public(cd_api_limits *l, int limit, int window_s)
{
    if (l == NULL)
        return;
    l->public_limit = limit;
    l->public_window_s = window_s;
}

int cd_api_limits_check_ip(cd_api_limits *l, cd_req *req, cd_err *err)
{
    if (l == NULL || l->public_limit <= 0 || l->public_window_s <= 0)
        return 0;
    char key[80];
    cd_ratelimit_info info;
    snprintf(key, sizeof key, "ip:%s", cd_req_client_ip(req));
    int ok = cd_ratelimit_hit(l->rl, key, l->public_limit, l->public_window_s,
                              cd_monotonic_us() / 1000, &info);
    cd_req_set_ratelimit(req, &info);
    return ok ? 0 : cd_ratelimit_fail(err, &info);
}
