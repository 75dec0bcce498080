/* api/omeda.h -- the Omeda surface (issue 12, seed 002): the SMS opt in/out queue
 * POST /webservices/rest/brand/{brandAbbreviation}/messageoptqueue, authenticated by
 * x-omeda-appid, answered in Omeda's own shapes; every error under /webservices/ too. */
#ifndef CD_API_OMEDA_H
#define CD_API_OMEDA_H

#include "api/env.h"

void cd_api_omeda_routes(cd_router *r, const cd_api_env *env);

#endif
