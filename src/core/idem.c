#include "core/idem.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/canon.h"

bool cd_idem_key_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

void cd_idem_request_hash(const char *method, const char *path, const json_t *body, char out[65])
{
    /* Canonical JSON makes key order and whitespace irrelevant: a client that rebuilds
     * the same object for its retry is still sending the same request. */
    char *canon = cd_canon_json(body);
    cd_buf b = {0};
    cd_buf_printf(&b, "%s %s\n%s", method, path, canon ? canon : "");
    cd_sha256_hex(b.data, b.len, out);
    cd_buf_free(&b);
    free(canon);
}
