/* api/protexting.h -- the ProTexting surface (issue 10, seed 000): the contact opt-in flow,
 * opt-out and the undo of an opt-out, at ProTexting's paths and in its shapes (Yii2 JSON,
 * or XML with "Accept: application/xml"), authenticated by ?access_token=KEY. */
#ifndef CD_API_PROTEXTING_H
#define CD_API_PROTEXTING_H

#include "api/env.h"

/* The default request limit of this surface, per credential, when the account's settings
 * have no "rate_limit" (issue 10's Decisions). */
#define CD_PT_RATE_LIMIT    60
#define CD_PT_RATE_WINDOW_S 1

/* Registers POST /v1/contacts-opt-in/create, /v1/contacts-opt-in/create-custom and
 * /v1/contacts/opt-out, and the surface answering every other path under
 * /v1/contacts-opt-in/ and /v1/contacts/. `env` is borrowed and must outlive r. */
void cd_api_protexting_routes(cd_router *r, const cd_api_env *env);

#endif
