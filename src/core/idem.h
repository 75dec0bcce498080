/* core/idem.h -- Idempotency-Key support: which keys are acceptable and what identifies
 * "the same request" (method, path and the canonical JSON of the body). */
#ifndef CD_CORE_IDEM_H
#define CD_CORE_IDEM_H

#include <jansson.h>
#include <stdbool.h>

/* 1..255 printable ASCII characters. */
bool cd_idem_key_valid(const char *key);
void cd_idem_request_hash(const char *method, const char *path, const json_t *body, char out[65]);

#endif
