/* http/form.h -- application/x-www-form-urlencoded bodies as the JSON object handlers read
 * (issue 9 part 4). PHP clients send arrays as repeated "name[]=" fields:
 * "GroupIds[]=1&GroupIds[]=2&Name=A+B" -> {"GroupIds":["1","2"],"Name":"A B"}.
 *
 * Rules: fields are separated by '&' (empty fields, as in "a=1&&b=2", are skipped); names
 * and values are percent-decoded, with '+' as a space; every value is a JSON string (the
 * handlers convert, as they do for query strings); "name" without '=' has the value "".
 * Refused, with CD_EINVAL and reason "invalid_form": a bad escape ("%G1", "%4"), an
 * escaped NUL, a name or value that is not UTF-8 once decoded, an empty name, a name given
 * twice without "[]" (like duplicate JSON members), a name given both with and without
 * "[]", and more than max_fields fields. Brackets other than a trailing "[]" ("a[0]",
 * "a[x]") are kept as part of the name: nested PHP arrays are not supported. */
#ifndef CD_HTTP_FORM_H
#define CD_HTTP_FORM_H

#include <jansson.h>
#include <stddef.h>

#include "util/err.h"

#define CD_FORM_MAX_FIELDS 20000 /* two per contact of a 10,000-contact batch */

/* Parses body[0..len) into a new JSON object (*out, the caller's reference). 0, or -1
 * with *err filled and *out NULL. */
int cd_form_parse(const char *body, size_t len, size_t max_fields, json_t **out, cd_err *err);

#endif
