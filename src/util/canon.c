#include "util/canon.h"

#include <stdlib.h>
#include <string.h>

char *cd_canon_json(const json_t *v)
{
    if (v == NULL)
        return NULL;
    /* Reals are printed with 17 significant digits so that a value round-trips. */
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY |
                             JSON_REAL_PRECISION(17));
}

void cd_canon_sha256(const json_t *v, char out[CD_SHA256_HEX])
{
    char *s = cd_canon_json(v);
    cd_sha256_hex(s ? s : "", s ? strlen(s) : 0, out);
    free(s);
}
