/* api/api.h -- the one header the server includes from api/ (issue 9 part 7): what the
 * handlers of every surface need from the server, and the call that registers every
 * surface listed in api.c's table. No file in api/ includes server.h. */
#ifndef CD_API_API_H
#define CD_API_API_H

#include <stdint.h>

#include "http/router.h"
#include "store/store.h"
#include "util/buf.h"

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
} cd_api_env;

/* The route context for `env` (cd_router_add takes a void *): handlers read it back
 * through cd_api_env_of() as const only. */
static inline void *cd_api_ctx(const cd_api_env *env)
{
    return (void *)(uintptr_t)env;
}

/* Registers the routes of every surface in api.c's table, in its order. `env` is
 * borrowed and must outlive r. */
void cd_api_routes(cd_router *r, const cd_api_env *env);

#endif
