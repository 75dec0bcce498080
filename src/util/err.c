#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fill(cd_err *err, cd_errcode code, const char *reason, const char *field,
                 const char *fmt, va_list ap)
{
    err->code = code;
    snprintf(err->reason, sizeof err->reason, "%s", reason ? reason : "");
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int cd_fail(cd_err *err, cd_errcode code, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, code, NULL, field, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int cd_fail_reason(cd_err *err, cd_errcode code, const char *reason, const char *field,
                   const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, code, reason, field, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *cd_err_reason(const cd_err *err)
{
    if (err->reason[0] != '\0')
        return err->reason;
    switch (err->code) {
    case CD_OK:
        return "ok";
    case CD_EINVAL:
        return "invalid_request";
    case CD_EAUTH:
        return "unauthorized";
    case CD_ENOTFOUND:
        return "not_found";
    case CD_ECONFLICT:
        return "conflict";
    case CD_EMISMATCH:
        return "idempotency_mismatch";
    case CD_ELIMIT:
        return "too_large";
    case CD_EMETHOD:
        return "method_not_allowed";
    case CD_ESTORE:
        return "storage_error";
    case CD_EBUSY:
        return "overloaded";
    case CD_EINTERNAL:
        break;
    }
    return "internal_error";
}
