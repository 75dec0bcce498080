#include "core/keyword.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/err.h"

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

static int in_array(const char *start, size_t len, const json_t *configured)
{
    size_t i;
    json_t *w;
    json_array_foreach (configured, i, w)
        if (json_is_string(w) && same_word(start, len, json_string_value(w)))
            return 1;
    return 0;
}

static int in_defaults(const char *start, size_t len, const char *const *defaults)
{
    for (int i = 0; defaults[i]; i++)
        if (same_word(start, len, defaults[i]))
            return 1;
    return 0;
}

static const char *const *const default_lists[] = {
    [CD_KW_STOP] = stop_words, [CD_KW_START] = start_words, [CD_KW_HELP] = help_words};

/* Is the word one of action `a`'s words for an account with keyword settings `kw`? The
 * default opt-out words always opt out, whatever the account configured (DESIGN.md
 * section 3, issue 8 item 3): an account's stop list only adds words. Its start and help
 * lists replace the defaults. */
static int is_word_of(const char *start, size_t len, const json_t *kw, cd_keyword_action a)
{
    const json_t *conf = json_object_get(kw, action_keys[a]);
    if (a == CD_KW_STOP)
        return in_defaults(start, len, stop_words) || in_array(start, len, conf);
    return json_is_array(conf) ? in_array(start, len, conf)
                               : in_defaults(start, len, default_lists[a]);
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
    /* STOP is tried first: settings stored before conflicts were refused may still list a
     * word twice, and then opting out wins. */
    for (int a = CD_KW_STOP; a <= CD_KW_HELP; a++) {
        if (is_word_of(start, len, kw, (cd_keyword_action)a)) {
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

/* A keyword is one word: 1..31 bytes, no spaces or control characters (the classifier
 * trims the message, so a word with spaces at its ends could never match). */
static bool word_ok(const json_t *w)
{
    if (!json_is_string(w) || json_string_length(w) == 0 ||
        json_string_length(w) > CD_KEYWORD_MAX_LEN)
        return false;
    for (const char *p = json_string_value(w); *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int check_list(const char *k, const json_t *list, cd_err *err)
{
    size_t i;
    json_t *w;
    if (strcmp(k, "stop") && strcmp(k, "start") && strcmp(k, "help"))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "keywords",
                              "keywords has stop, start and help");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 20)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "keywords",
                              "each keyword list has 1 to 20 words");
    json_array_foreach (list, i, w)
        if (!word_ok(w))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "keywords",
                                  "keywords are single words of 1 to %d characters",
                                  CD_KEYWORD_MAX_LEN);
    return 0;
}

/* The i-th word of action `a`'s own list (configured, else default), NULL past its end. */
static const char *nth_word(const json_t *kw, cd_keyword_action a, size_t i)
{
    const json_t *conf = json_object_get(kw, action_keys[a]);
    if (json_is_array(conf))
        return json_string_value(json_array_get(conf, i));
    for (size_t j = 0; j < i; j++)
        if (default_lists[a][j] == NULL)
            return NULL;
    return default_lists[a][i];
}

/* Fails when a word of action `a`'s list is also a word of `other`. The field named is the
 * list the account set: `a`'s when it set one, else `other`'s. */
static int check_clash(const json_t *kw, cd_keyword_action a, cd_keyword_action other, cd_err *err)
{
    const char *w;
    for (size_t i = 0; (w = nth_word(kw, a, i)) != NULL; i++) {
        if (!is_word_of(w, strlen(w), kw, other))
            continue;
        bool own = json_is_array(json_object_get(kw, action_keys[a]));
        char field[32];
        snprintf(field, sizeof field, "keywords.%s", action_keys[own ? a : other]);
        if (other == CD_KW_STOP)
            return cd_fail_reason(err, CD_EINVAL, "keyword_conflict", field,
                                  "%s is an opt-out word: it always opts out", w);
        return cd_fail_reason(err, CD_EINVAL, "keyword_conflict", field,
                              "%s cannot be both a %s and a %s word", w, action_keys[a],
                              action_keys[other]);
    }
    return 0;
}

int cd_keyword_check(json_t *keywords, cd_err *err)
{
    const char *k;
    json_t *list;
    if (!json_is_object(keywords))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "keywords", "keywords is an object");
    json_object_foreach (keywords, k, list)
        if (check_list(k, list, err) != 0)
            return -1;
    if (check_clash(keywords, CD_KW_START, CD_KW_STOP, err) != 0 ||
        check_clash(keywords, CD_KW_HELP, CD_KW_STOP, err) != 0 ||
        check_clash(keywords, CD_KW_HELP, CD_KW_START, err) != 0)
        return -1;
    return 0;
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
