/* api/cursor.h -- the CURSOR CRM opt-in module (issue 13, seed 003): opt-in records per
 * contact and flows by external reference under /rest/api/optin, authenticated by
 * Basic (login:key) or Bearer. One record is one native double opt-in flow with one
 * scope; errors are JSON {status, message} with CURSOR's 520/521/522/525. */
#ifndef CD_API_CURSOR_H
#define CD_API_CURSOR_H

#include "api/env.h"

/* Registers the routes and the /rest/api/optin/ fallback. `env` must outlive r. */
void cd_api_cursor_routes(cd_router *r, const cd_api_env *env);

#endif
