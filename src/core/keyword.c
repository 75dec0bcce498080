#include "core/keyword.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"

/* The FCC / CTIA keyword lists. */
static const char *const stop_words[] = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
                                         "QUIT", "REVOKE",  "OPTOUT",      NULL};
static const char *const start_words[] = {"START", "YES", "UNSTOP", NULL};
static const char *const help_words[] = {"HELP", "INFO", NULL};

static const char *const default_replies[] = {
    [CD_KW_STOP] = "{brand}: You are unsubscribed and will get no more messages. "
                   "Reply START to resubscribe.",
    [CD_KW_START] = "{brand}: You are subscribed. Msg&data rates may apply. "
                    "Reply HELP for help, STOP to cancel.",
    [CD_KW_HELP] = "{brand}: Reply STOP to unsubscribe, START to resubscribe. "
                   "Msg&data rates may apply.",
};
static const char *const default_cta =
    "{brand}: Reply YES to confirm you want to receive our text messages. "
    "Msg&data rates may apply. Reply STOP to cancel.";

static const char *const action_keys[] = {
    [CD_KW_STOP] = "stop", [CD_KW_START] = "start", [CD_KW_HELP] = "help"};

/* Compares the trimmed message with one keyword, ignoring case. */
static int same_word(const char *start, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(start, word, len) == 0;
}

static int in_list(const char *start, size_t len, const json_t *configured,
                   const char *const *defaults)
{
    if (json_is_array(configured)) {
        size_t i;
        json_t *w;
        json_array_foreach (configured, i, w)
            if (json_is_string(w) && same_word(start, len, json_string_value(w)))
                return 1;
        return 0;
    }
    for (int i = 0; defaults[i]; i++)
        if (same_word(start, len, defaults[i]))
            return 1;
    return 0;
}

cd_keyword_action cd_keyword_classify(const char *text, const json_t *settings, char matched[32])
{
    if (matched)
        matched[0] = '\0';
    if (text == NULL)
        return CD_KW_NONE;
    const char *start = text;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    if (len == 0 || len >= 32)
        return CD_KW_NONE;
    const json_t *kw = json_object_get(settings, "keywords");
    static const char *const *const lists[] = {
        [CD_KW_STOP] = stop_words, [CD_KW_START] = start_words, [CD_KW_HELP] = help_words};
    /* STOP is tried first: if an account lists a word twice, opting out wins. */
    for (int a = CD_KW_STOP; a <= CD_KW_HELP; a++) {
        if (in_list(start, len, json_object_get(kw, action_keys[a]), lists[a])) {
            if (matched) {
                for (size_t i = 0; i < len; i++)
                    matched[i] = (char)toupper((unsigned char)start[i]);
                matched[len] = '\0';
            }
            return (cd_keyword_action)a;
        }
    }
    return CD_KW_NONE;
}

const char *cd_keyword_action_name(cd_keyword_action a)
{
    switch (a) {
    case CD_KW_STOP:
        return "opted_out";
    case CD_KW_START:
        return "opted_in";
    case CD_KW_HELP:
        return "help";
    default:
        return "none";
    }
}

static char *fill(const char *tpl, const char *brand)
{
    cd_buf b = {0};
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "{brand}", 7) == 0) {
            cd_buf_puts(&b, brand ? brand : "");
            p += 7;
        } else {
            cd_buf_append(&b, p++, 1);
        }
    }
    return cd_buf_take(&b);
}

char *cd_keyword_reply(cd_keyword_action a, const json_t *settings, const char *brand)
{
    if (a < CD_KW_STOP || a > CD_KW_HELP)
        return NULL;
    const char *own =
        json_string_value(json_object_get(json_object_get(settings, "replies"), action_keys[a]));
    return fill(own && *own ? own : default_replies[a], brand);
}

char *cd_keyword_cta(const json_t *settings, const char *brand)
{
    const char *own = json_string_value(json_object_get(settings, "cta_text"));
    return fill(own && *own ? own : default_cta, brand);
}
