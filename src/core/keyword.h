/* core/keyword.h -- the inbound keyword engine (DESIGN.md section 3): which action an SMS
 * asks for, and the reply texts. Pure: the account's settings come in as a JSON object.
 *
 * Settings (all optional): {"keywords": {"stop": [...], "start": [...], "help": [...]},
 *                          "replies":  {"stop": "...", "start": "...", "help": "..."}}
 * A configured start or help list replaces the default list of that action; a configured
 * stop list adds to the default opt-out words, which always opt out (DESIGN.md section 3). */
#ifndef CD_CORE_KEYWORD_H
#define CD_CORE_KEYWORD_H

#include <jansson.h>

#include "util/err.h"

#define CD_KEYWORD_MAX_LEN 31 /* bytes of one keyword */

typedef enum cd_keyword_action {
    CD_KW_NONE = 0,
    CD_KW_STOP,  /* opt out of everything, one confirmation */
    CD_KW_START, /* opt back in, confirm pending double opt-ins */
    CD_KW_HELP,  /* answer with the help text */
} cd_keyword_action;

/* Classifies a whole message: trimmed, case-insensitive, nothing else in it. `matched`
 * (may be NULL) receives the keyword in upper case, for the ledger. */
cd_keyword_action cd_keyword_classify(const char *text, const json_t *settings, char matched[32]);
const char *
cd_keyword_action_name(cd_keyword_action a); /* "opted_out", "opted_in", "help", "none" */
/* Validates a "keywords" settings object before it is stored: lists of 1..20 single words
 * (CD_EINVAL "invalid_field", field "keywords"), and no word that would belong to two
 * actions once the defaults are counted in: an opt-out word in the start or help list, or
 * a word in both start and help (CD_EINVAL "keyword_conflict", field "keywords.start",
 * "keywords.help" or "keywords.stop", naming the list the account set). */
int cd_keyword_check(json_t *keywords, cd_err *err);
/* The reply for an action: the account's text or the default, with "{brand}" replaced by
 * `brand`. Returns a malloc'd string (free()). */
char *cd_keyword_reply(cd_keyword_action a, const json_t *settings, const char *brand);
/* The call to action of a double opt-in by SMS, likewise. */
char *cd_keyword_cta(const json_t *settings, const char *brand);

#endif
