/* api/api.c -- the table of surfaces (issue 9 part 7): adding a surface is one file in
 * api/ and one line here. The order is the order of registration (and of /metrics). */
#include "api/api.h"

#include "api/cursor.h"
#include "api/native.h"
#include "api/omeda.h"
#include "api/opentact.h"
#include "api/octopush.h"
#include "api/ops.h"
#include "api/protexting.h"
#include "api/webhooks.h"

static const cd_api_surface_entry surfaces[] = {
    {"ops", cd_api_ops_routes},               /* /healthz, /metrics, OpenAPI */
    {"native", cd_api_native_routes},         /* /api/v1, /c/{token} */
    {"webhooks", cd_api_webhooks_routes},     /* /api/v1/webhooks (issue 15) */
    {"omeda", cd_api_omeda_routes},           /* issue 12 */
    {"opentact", cd_api_opentact_routes},     /* issue 14 */
    {"octopush", cd_api_octopush_routes},     /* issue 11 */
    {"protexting", cd_api_protexting_routes}, /* issue 10 */
    {"cursor", cd_api_cursor_routes},         /* issue 13 */
};

void cd_api_routes(cd_router *r, const cd_api_env *env)
{
    cd_api_routes_with(r, env, NULL, 0);
}

void cd_api_routes_with(cd_router *r, const cd_api_env *env, const cd_api_surface_entry *extra,
                        size_t n)
{
    for (size_t i = 0; i < sizeof surfaces / sizeof surfaces[0]; i++)
        surfaces[i].routes(r, env);
    for (size_t i = 0; i < n; i++)
        extra[i].routes(r, env);
}
