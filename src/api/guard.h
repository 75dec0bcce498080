/* api/guard.h -- authentication for every surface: reads the credentials of the styles a
 * surface accepts (http/auth), checks them (core/account) against `store` and sets the
 * request's principal. Every failure is the same CD_EAUTH "unauthorized", whatever was
 * wrong. */
#ifndef CD_API_GUARD_H
#define CD_API_GUARD_H

#include "core/account.h"
#include "http/auth.h"
#include "store/store.h"

/* Then counts the request against the account's rate_limit (api/limits.h, through the
 * request's cd_api_env): over it, -1 with CD_EBUSY "rate_limited" (answer 429). */
int cd_api_authenticate(cd_req *req, cd_store *store, unsigned styles, cd_err *err);
/* issue 10: the same, with the rate limit the surface applies when the account's settings
 * have none (def_limit requests per def_window_s seconds; 0: none). */
int cd_api_authenticate_or(cd_req *req, cd_store *store, unsigned styles, int def_limit,
                           int def_window_s, cd_err *err);
/* The principal set by cd_api_authenticate (borrowed, lives with the request). */
const cd_principal *cd_api_principal(const cd_req *req);

#endif
