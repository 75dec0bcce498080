/* api/octopush.h -- the Octopush surface (issue 11, seed 001): POST
 * /v1/public/contact/create, authenticated by the headers api-login and api-key, answered
 * in Octopush's shapes (201 {"items":[...]}, errors {"code":<int>,"message":"..."}) on
 * every path under /v1/public/. */
#ifndef CD_API_OCTOPUSH_H
#define CD_API_OCTOPUSH_H

#include "api/env.h"

/* The documented limits of one call. */
#define CD_OCTOPUSH_MAX_CONTACTS 10000              /* more is 413 */
#define CD_OCTOPUSH_MAX_BODY     (8u * 1024 * 1024) /* bytes; more is 413 */
#define CD_OCTOPUSH_LIST_MAX     30                 /* characters of list_name */
#define CD_OCTOPUSH_TAG_MAX      20                 /* characters of tag_name */

void cd_api_octopush_routes(cd_router *r, const cd_api_env *env);

#endif
