/* api/opentact.h -- issue 14: the Opentact surface (seed 004): messaging profiles under
 * /rest/profile/messaging with X-Auth-Token (JWT) authentication, and every answer in
 * Opentact's {"success","payload"} form. */
#ifndef CD_API_OPENTACT_H
#define CD_API_OPENTACT_H

#include "api/env.h"

void cd_api_opentact_routes(cd_router *r, const cd_api_env *env);

#endif
