/* api/native.h -- the native API under /api/v1 (DESIGN.md section 7) and the
 * confirmation page. Its error format, {"error":{"code","message","field"}}, also answers
 * paths that match no surface and the operator's routes (api/ops.c). */
#ifndef CD_API_NATIVE_H
#define CD_API_NATIVE_H

#include "api/env.h"

void cd_api_native_routes(cd_router *r, const cd_api_env *env);
/* The surface of public routes answered in the native format (static storage). */
const cd_surface *cd_api_native_public(void);

#endif
