/* api/ops.h -- GET /healthz, GET /metrics and GET /api/v1/openapi.json. */
#ifndef CD_API_OPS_H
#define CD_API_OPS_H

#include "api/env.h"

void cd_api_ops_routes(cd_router *r, const cd_api_env *env);

#endif
