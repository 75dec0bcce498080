/* api/native.h -- the native API under /api/v1 (DESIGN.md section 7), plus /healthz and
 * /metrics. Its error format, {"error":{"code","message","field"}}, also answers paths
 * that match no surface. */
#ifndef CD_API_NATIVE_H
#define CD_API_NATIVE_H

#include "http/router.h"

struct cd_server;
void cd_api_native_routes(cd_router *r, struct cd_server *srv);

#endif
