/* api/webhooks.h -- the native webhook routes (issue 15): /api/v1/webhooks subscriptions,
 * GET /api/v1/webhooks/deliveries, single and bulk replay. */
#ifndef CD_API_WEBHOOKS_H
#define CD_API_WEBHOOKS_H

#include "api/env.h"

void cd_api_webhooks_routes(cd_router *r, const cd_api_env *env);

#endif
