/* api/ops.c -- the operator's routes: GET /healthz, GET /metrics and the OpenAPI
 * document (issue 9 part 7). Public, answered in the native error format. */
#include "api/ops.h"

#include <string.h>

#include "api/native.h"
#include "util/buf.h"

extern const char cd_openapi_json[];

static const cd_api_env *ENV(cd_req *req)
{
    return cd_req_ctx(req);
}

static int h_health(cd_req *req)
{
    cd_db *db = cd_req_reader(req, ENV(req)->store);
    bool ok = db != NULL;
    return cd_reply_json(req, ok ? 200 : 503,
                         json_pack("{ss}", "status", ok ? "ok" : "unavailable"));
}

static int h_metrics(cd_req *req)
{
    cd_buf b = {0};
    const cd_api_env *env = ENV(req);
    if (env->metrics)
        env->metrics(env->metrics_arg, &b);
    size_t n = b.len;
    return cd_reply_take(req, 200, "text/plain; version=0.0.4", cd_buf_take(&b), n);
}

static int h_openapi(cd_req *req)
{
    return cd_reply_data(req, 200, "application/json", cd_openapi_json, strlen(cd_openapi_json));
}

void cd_api_ops_routes(cd_router *r, const cd_api_env *env)
{
    const cd_surface *pub = cd_api_native_public();
    void *ctx = cd_api_ctx(env);
    cd_router_add(r, "GET", "/healthz", pub, h_health, ctx);
    cd_router_add(r, "GET", "/metrics", pub, h_metrics, ctx);
    cd_router_add(r, "GET", "/api/v1/openapi.json", pub, h_openapi, ctx);
}
