/* core/pool.c -- issue 14: the number pool (core/pool.h). */
#include "core/pool.h"

#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/profile.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

int cd_pool_choose_type(const int weight[CD_POOL_TYPES], const bool available[CD_POOL_TYPES],
                        uint32_t r)
{
    for (int t = 0; t < CD_POOL_TYPES; t++) {
        uint32_t w = available[t] && weight[t] > 0 ? (uint32_t)weight[t] : 0;
        if (r < w)
            return t;
        r -= w;
    }
    return -1;
}

int cd_pool_choose_type_random(const int weight[CD_POOL_TYPES], const bool available[CD_POOL_TYPES])
{
    uint32_t total = 0;
    for (int t = 0; t < CD_POOL_TYPES; t++)
        total += available[t] && weight[t] > 0 ? (uint32_t)weight[t] : 0;
    if (total == 0)
        return -1;
    return cd_pool_choose_type(weight, available, randombytes_uniform(total));
}

bool cd_pool_healthy(const int counts[3])
{
    int total = counts[0], delivered = counts[1], blocked = counts[2];
    if (total < CD_POOL_MIN_RECEIPTS)
        return true;
    /* Integer forms of delivered/total < 25% and blocked/total > 75%. */
    return !(delivered * 4 < total || blocked * 4 > total * 3);
}

int cd_pool_sender_healthy(cd_db *db, int64_t account_id, const char *number, bool *healthy,
                           cd_err *err)
{
    int counts[3] = {0, 0, 0};
    if (cd_store_sender_health(db, account_id, number, cd_now_ms() - CD_POOL_WINDOW_MS, counts,
                               err) != 0)
        return -1;
    *healthy = cd_pool_healthy(counts);
    return 0;
}

int cd_pool_note_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                         cd_err *err)
{
    if (number == NULL || *number == '\0' || status == NULL || strcmp(status, "unknown") == 0)
        return 0;
    int64_t now = cd_now_ms();
    return cd_store_sender_receipt(db, account_id, number, status, now, now - CD_POOL_WINDOW_MS,
                                   err);
}

/* ---- picking ---- */

#define MAX_CANDIDATES 1000

typedef struct candidate {
    cd_sender s;
    int type;  /* CD_POOL_*, or -1 for a type the pool does not send from (short codes) */
    bool good; /* healthy */
} candidate;

typedef struct pool {
    int64_t account_id;
    candidate *c; /* owned: grown by collect() */
    size_t n, cap;
    int failed; /* a health read failed */
    cd_err *err;
    cd_db *db;
} pool;

static int collect(const cd_sender *s, void *arg)
{
    pool *p = arg;
    if (p->n == MAX_CANDIDATES)
        return 1;
    if (p->n == p->cap) { /* a pool holds a few numbers: grow by doubling */
        p->cap = p->cap ? p->cap * 2 : 8;
        p->c = cd_xrealloc(p->c, p->cap * sizeof *p->c);
    }
    candidate *c = &p->c[p->n];
    c->s = *s;
    const char *type = s->type[0] ? s->type : cd_sender_type_of(s->number);
    c->type = strcmp(type, "toll_free") == 0   ? CD_POOL_TOLL_FREE
              : strcmp(type, "long_code") == 0 ? CD_POOL_LONG_CODE
                                               : -1;
    if (cd_pool_sender_healthy(p->db, p->account_id, s->number, &c->good, p->err) != 0) {
        p->failed = 1;
        return -1;
    }
    p->n++;
    return 0;
}

static bool usable(const candidate *c, const cd_profile *pr)
{
    return c->type >= 0 && (c->good || !pr->skip_unhealthy_tns);
}

/* The recipient's sticky number, when it is still leased here and still healthy. */
static const candidate *sticky(cd_db *db, const pool *p, const cd_profile *pr, const char *to)
{
    char number[24];
    if (!pr->sticky_sender ||
        cd_store_sticky_get(db, p->account_id, pr->uuid, to, cd_now_ms(), number, NULL) != 0)
        return NULL;
    int weight[CD_POOL_TYPES] = {pr->long_code_weight, pr->toll_free_weight};
    for (size_t i = 0; i < p->n; i++) {
        const candidate *c = &p->c[i];
        if (strcmp(c->s.number, number) == 0)
            return usable(c, pr) && c->good && weight[c->type] > 0 ? c : NULL;
    }
    return NULL;
}

/* Draws the type, then the number of that type picked longest ago. */
static const candidate *draw(const pool *p, const cd_profile *pr, bool *any_unhealthy)
{
    int weight[CD_POOL_TYPES] = {pr->long_code_weight, pr->toll_free_weight};
    bool available[CD_POOL_TYPES] = {false, false};
    *any_unhealthy = false;
    for (size_t i = 0; i < p->n; i++) {
        const candidate *c = &p->c[i];
        if (c->type >= 0 && weight[c->type] > 0 && !usable(c, pr))
            *any_unhealthy = true;
        if (usable(c, pr))
            available[c->type] = true;
    }
    int t = cd_pool_choose_type_random(weight, available);
    const candidate *best = NULL;
    for (size_t i = 0; t >= 0 && i < p->n; i++) {
        const candidate *c = &p->c[i];
        if (c->type == t && usable(c, pr) && (!best || c->s.last_used_ms < best->s.last_used_ms))
            best = c;
    }
    return best;
}

static int resolve_profile(cd_db *db, int64_t account_id, const json_t *settings, const char *uuid,
                           cd_profile *pr, cd_err *err)
{
    if (uuid == NULL) {
        cd_err e;
        if (cd_profile_default(db, account_id, settings, pr, &e) == 0)
            return 1;
        if (e.code == CD_ENOTFOUND)
            return 0;
        if (err)
            *err = e;
        return -1;
    }
    if (cd_store_profile_get(db, account_id, uuid, pr, NULL) == 0)
        return 1;
    return cd_fail_reason(err, CD_EINVAL, "unknown_profile", "profile",
                          "%s is not one of this account's messaging profiles", uuid);
}

int cd_pool_pick(cd_db *db, int64_t account_id, const json_t *settings, const char *profile_uuid,
                 const char *to, cd_sender *out, cd_err *err)
{
    cd_profile *pr = cd_xcalloc(1, sizeof *pr);
    pool p = {.account_id = account_id, .err = err, .db = db};
    int rc = resolve_profile(db, account_id, settings, profile_uuid, pr, err);
    if (rc <= 0 || !pr->number_pool_enable) {
        free(pr);
        return rc < 0 ? -1 : 0;
    }
    rc = cd_store_sender_leases(db, account_id, pr->uuid, collect, &p, err);
    const candidate *c = NULL;
    bool unhealthy = false;
    if (rc == 0 && !p.failed && (c = sticky(db, &p, pr, to)) == NULL)
        c = draw(&p, pr, &unhealthy);
    if (rc != 0 || p.failed) {
        rc = -1;
    } else if (c == NULL && unhealthy && pr->skip_unhealthy_tns) {
        rc = cd_fail_reason(err, CD_EINVAL, "no_healthy_sender", "from",
                            "every number of the profile's pool is unhealthy");
    } else if (c == NULL) {
        rc = cd_fail_reason(err, CD_EINVAL, "no_sender", "from",
                            "the profile leases no number of a type with a weight above 0");
    } else {
        int64_t now = cd_now_ms(), used = now;
        /* Strictly later than every other pick of this pool, so that picks within one
         * millisecond still go round the numbers instead of repeating the first. */
        for (size_t i = 0; i < p.n; i++)
            if (p.c[i].s.last_used_ms >= used)
                used = p.c[i].s.last_used_ms + 1;
        *out = c->s;
        rc = cd_store_sender_used(db, account_id, c->s.number, used, err);
        if (rc == 0 && pr->sticky_sender)
            rc = cd_store_sticky_put(db, account_id, pr->uuid, to, c->s.number,
                                     now + CD_POOL_STICKY_MS, err);
        rc = rc == 0 ? 1 : -1;
    }
    free(p.c);
    free(pr);
    return rc;
}
