/* api/env.h -- what every surface's handlers get from the server (issue 9 part 7): the
 * route context, and the shape of one line of api.c's surface table. A leaf of api/, so
 * that the table (api.c) can include the surfaces and the surfaces this without a circle. */
#ifndef CD_API_ENV_H
#define CD_API_ENV_H

#include <stdint.h>

#include "delivery/jobs.h"
#include "http/router.h"
#include "store/store.h"
#include "util/buf.h"

/* issue 9 part 5: the per-account request limits (api/limits.h), one per server. */
typedef struct cd_api_limits cd_api_limits;
cd_api_limits *cd_api_limits_new(void);
void cd_api_limits_free(cd_api_limits *l); /* NULL is a no-op */

/* What handlers need, instead of the whole server. Every route of every surface gets a
 * pointer to it as its context (cd_req_ctx), so it must outlive the router; the server
 * keeps it beside the router. Read-only once serving starts. */
typedef struct cd_api_env {
    cd_store *store; /* borrowed */
    /* The base of links the server hands out (no trailing slash). Borrowed: it may be
     * filled in after the routes are registered, but before the first request. */
    const char *public_url;
    /* Appends the Prometheus text of everything the server measures (GET /metrics). */
    void (*metrics)(void *arg, cd_buf *out);
    void *metrics_arg;
    /* issue 9 part 5: the per-account request limits (borrowed); NULL: no limits. */
    cd_api_limits *limits;
    /* issue 15: the job queue (borrowed), for a surface that waits for a job's first
     * attempt (cd_jobs_watch); NULL in tests that build no server. */
    cd_jobs *jobs;
} cd_api_env;

/* The route context for `env` (cd_router_add takes a void *): handlers read it back
 * through cd_api_env_of() as const only. */
static inline void *cd_api_ctx(const cd_api_env *env)
{
    return (void *)(uintptr_t)env;
}

/* One line of the table: a surface's name and the call that registers its routes. */
typedef struct cd_api_surface_entry {
    const char *name;
    void (*routes)(cd_router *r, const cd_api_env *env);
} cd_api_surface_entry;

#endif
