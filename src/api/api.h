/* api/api.h -- the one header the server includes from api/ (issue 9 part 7): what the
 * handlers of every surface need from the server, and the call that registers every
 * surface listed in api.c's table. No file in api/ includes server.h. */
#ifndef CD_API_API_H
#define CD_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "api/env.h"

/* Registers the routes of every surface in api.c's table, in its order. `env` is
 * borrowed and must outlive r. */
void cd_api_routes(cd_router *r, const cd_api_env *env);

/* cd_api_routes, then the n entries of `extra` (static storage), in their order: for tests
 * that add a surface beside the built-in ones (issue 9 part 10). */
void cd_api_routes_with(cd_router *r, const cd_api_env *env, const cd_api_surface_entry *extra,
                        size_t n);

#endif
