/* core/keyword.h -- the inbound keyword engine (DESIGN.md section 3): which action an SMS
 * asks for, and the reply texts. Pure: the account's settings come in as a JSON object.
 *
 * Settings (all optional): {"keywords": {"stop": [...], "start": [...], "help": [...]},
 *                          "replies":  {"stop": "...", "start": "...", "help": "..."}}
 * A configured list replaces the default list of that action. */
#ifndef CD_CORE_KEYWORD_H
#define CD_CORE_KEYWORD_H

#include <jansson.h>

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
/* The reply for an action: the account's text or the default, with "{brand}" replaced by
 * `brand`. Returns a malloc'd string (free()). */
char *cd_keyword_reply(cd_keyword_action a, const json_t *settings, const char *brand);
/* The call to action of a double opt-in by SMS, likewise. */
char *cd_keyword_cta(const json_t *settings, const char *brand);

#endif
