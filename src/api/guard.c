#include "api/guard.h"

#include "api/kit.h"
#include "api/limits.h"

int cd_api_authenticate(cd_req *req, cd_store *store, unsigned styles, cd_err *err)
{
    return cd_api_authenticate_or(req, store, styles, 0, 0, err);
}

int cd_api_authenticate_or(cd_req *req, cd_store *store, unsigned styles, int def_limit,
                           int def_window_s, cd_err *err)
{
    cd_credentials cred;
    if (cd_auth_read(req, styles, &cred) != 0)
        return cd_fail_reason(err, CD_EAUTH, "unauthorized", "", "missing or invalid credentials");
    cd_principal *who = cd_req_alloc(req, sizeof *who);
    cd_db *db = cd_req_reader(req, store);
    if (db == NULL)
        return cd_fail(err, CD_ESTORE, "", "storage unavailable");
    int rc = cred.style == CD_AUTH_JWT ? cd_jwt_authenticate(db, cred.secret, who, err)
                                       : cd_key_authenticate(db, cred.secret, cred.login, who, err);
    if (rc != 0)
        return -1;
    cd_req_set_user(req, who);
    /* issue 9 part 5: every surface's authenticated routes count against the account's
     * rate_limit, keyed by credential; the surface answers a refusal 429 in its format. */
    return cd_api_limits_check_or(cd_api_env_of(req)->limits, req, db, who, def_limit, def_window_s,
                                  err);
}

const cd_principal *cd_api_principal(const cd_req *req)
{
    return cd_req_user(req);
}
