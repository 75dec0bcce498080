/* util/err.h -- error values that carry a client-safe message and the field at fault. */
#ifndef CD_UTIL_ERR_H
#define CD_UTIL_ERR_H

typedef enum cd_errcode {
    CD_OK = 0,
    CD_EINVAL,    /* the client sent something wrong (400/422) */
    CD_EAUTH,     /* missing or wrong credentials (401) */
    CD_ENOTFOUND, /* no such thing in this account (404) */
    CD_ECONFLICT, /* the request contradicts the current state (409) */
    CD_EMISMATCH, /* idempotency key reused with another body (422) */
    CD_ELIMIT,    /* too big (413) */
    CD_EMETHOD,   /* the path exists, the method does not (405) */
    CD_ESTORE,    /* storage failed; nothing was acknowledged (500/503) */
    CD_EINTERNAL, /* a bug or a resource failure (500) */
    CD_EBUSY,     /* overloaded or past a deadline; nothing was done: retry later (503) */
} cd_errcode;

typedef struct cd_err {
    cd_errcode code;
    char reason[48]; /* snake_case code for clients ("invalid_phone"); "" = derive from code */
    char field[48];  /* the request field at fault, "" if none */
    char msg[192];   /* safe to show a client: no SQL, no paths, no secrets */
} cd_err;

/* Fills *err (when it is not NULL) and returns -1, so a failing path reads:
 *     return cd_fail(err, CD_EINVAL, "phone", "not a number: %s", raw);   */
int cd_fail(cd_err *err, cd_errcode code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, with an explicit snake_case reason code. */
int cd_fail_reason(cd_err *err, cd_errcode code, const char *reason, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The snake_case code to show: err->reason when set, else one derived from err->code. */
const char *cd_err_reason(const cd_err *err);

#endif
