/* core/usecase.c -- the use cases every surface shares (see usecase.h). The rules that
 * were in api/native*.c live here now, so that a vendor surface gets them by calling the
 * same function (issue 9 part 2). */
#include "core/usecase.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/contact.h"
#include "core/flow.h"
#include "core/keyword.h"
#include "core/message.h"
#include "core/profile.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* ---- consents ---- */

int cd_consent_record(cd_db *db, int64_t account_id, const cd_consent_request *in, cd_consent *out,
                      cd_event *ev, cd_err *err)
{
    assert(in != NULL && in->phone != NULL && in->prov.surface != NULL);
    cd_contact_patch patch = {.phone = in->phone, .merge = true};
    cd_contact c;
    if (cd_scope_exists(db, account_id, in->scope, "scope", err) != 0 ||
        cd_contact_apply(db, account_id, 0, &patch, true, &c, NULL, err) != 0)
        return -1;
    /* An explicit opt-in is the override that may lift an opt-out. */
    int rc = cd_consent_set(db, account_id, &c, in->scope, in->state,
                            in->state == CD_STATE_OPTED_IN ? CD_CONSENT_OVERRIDE : 0, &in->prov,
                            out, ev, err);
    /* issue 13: an opt-out revokes the confirmed double opt-ins it covers */
    if (rc == 0 && in->state == CD_STATE_OPTED_OUT)
        rc = cd_flow_revoke_contact(db, account_id, c.id, in->scope, NULL, err);
    cd_contact_clear(&c);
    return rc;
}

int cd_consent_check_phone(cd_db *db, const cd_account *account, const char *raw, cd_scope scope,
                           cd_check_result *out, cd_err *err)
{
    assert(account != NULL && raw != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    out->reason = "invalid_number";
    int64_t id = 0;
    cd_err e;
    /* issue 16: a number in its stored form is looked up as it is, and a hit is a valid
     * number (validated when written): libphonenumber runs only when that misses. */
    int found = -1;
    bool canonical = db != NULL && cd_phone_is_canonical(raw);
    if (canonical && (found = cd_store_contact_id_by_phone(db, account->id, raw, &id, &e)) == 0) {
        out->valid = true;
        snprintf(out->phone, sizeof out->phone, "%s", raw);
    } else {
        out->valid = cd_phone_normalize(raw, account->region, "to", out->phone, NULL) == 0;
        if (!out->valid) {
            out->phone[0] = '\0';
            return 0;
        }
        /* the lookup above already answered for this very spelling */
        if (!canonical || strcmp(out->phone, raw) != 0)
            found = cd_store_contact_id_by_phone(db, account->id, out->phone, &id, &e);
    }
    if (found == 0) {
        if (cd_consent_check(db, account->id, id, scope, &out->reason, err) != 0)
            return -1;
    } else if (e.code == CD_ENOTFOUND) {
        out->reason = "no_consent";
    } else {
        if (err)
            *err = e;
        return -1;
    }
    out->allowed = cd_consent_reason_allows(out->reason);
    return 0;
}

/* ---- groups and message types ---- */

int cd_named_create(cd_db *db, const char *kind, int64_t account_id, cd_named *n, cd_err *err)
{
    cd_named existing;
    cd_err e;
    n->created_ms = cd_now_ms();
    if (cd_store_named_by_name(db, kind, account_id, n->name, &existing, &e) == 0)
        return cd_fail_reason(err, CD_ECONFLICT, "conflict", "name",
                              "a %s with that name exists (id %lld)", kind, (long long)existing.id);
    if (e.code != CD_ENOTFOUND) { /* a storage failure is not "no such name" */
        if (err)
            *err = e;
        return -1;
    }
    if (cd_store_named_insert(db, kind, account_id, n, err) != 0) {
        if (err && err->code == CD_ECONFLICT)
            cd_fail_reason(err, CD_ECONFLICT, "conflict", "id", "that id is taken");
        return -1;
    }
    return 0;
}

int cd_named_ensure(cd_db *db, const char *kind, int64_t account_id, const char *name,
                    cd_named *out, bool *created, cd_err *err)
{
    cd_err e;
    if (created)
        *created = false;
    if (name == NULL || *name == '\0' || strlen(name) >= sizeof out->name)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "name",
                              "a name is 1 to 255 characters");
    if (cd_store_named_by_name(db, kind, account_id, name, out, &e) == 0)
        return 0;
    if (e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (cd_named_create(db, kind, account_id, out, err) != 0)
        return -1;
    if (created)
        *created = true;
    return 0;
}

/* ---- settings ---- */

static int check_replies(json_t *v, cd_err *err)
{
    const char *k;
    json_t *text;
    if (!json_is_object(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "replies", "replies is an object");
    json_object_foreach (v, k, text) {
        if (strcmp(k, "stop") && strcmp(k, "start") && strcmp(k, "help"))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "replies",
                                  "replies has stop, start and help");
        if (!json_is_string(text) || json_string_length(text) == 0 ||
            json_string_length(text) > 640)
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "replies",
                                  "replies are texts of 1 to 640 characters");
    }
    return 0;
}

static bool hhmm_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '2' && s[1] >= '0' &&
           s[1] <= '9' && s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9' &&
           (s[0] - '0') * 10 + (s[1] - '0') < 24;
}

static bool transport_ok(const char *t)
{
    return t && (!strcmp(t, "sink") || !strcmp(t, "smpp") || !strcmp(t, "http"));
}

static bool int_in(const json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* issue 9 part 5: {"limit": 1..1000000, "window_seconds": 1..86400}, both required. */
static int check_rate_limit(json_t *v, cd_err *err)
{
    if (json_is_object(v) && json_object_size(v) == 2 &&
        int_in(json_object_get(v, "limit"), 1, 1000000) &&
        int_in(json_object_get(v, "window_seconds"), 1, 86400))
        return 0;
    return cd_fail_reason(err, CD_EINVAL, "invalid_field", "rate_limit",
                          "rate_limit is {\"limit\":1..1000000,\"window_seconds\":1..86400} "
                          "or null");
}

/* ---- issue 13: the "smtp" setting ---- */

static bool smtp_string(json_t *o, const char *k, bool required, size_t max)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_null(v))
        return !required;
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) && json_string_length(v) <= max &&
           (!required || *s) && strpbrk(s, "\r\n") == NULL;
}

/* {"url":"smtp[s]://host[:port]","from":"a@b","username"?,"password"?}: no other member,
 * no line break anywhere (they would end up in SMTP commands and mail headers). */
static int check_smtp(json_t *v, cd_err *err)
{
    const char *k, *url, *from;
    json_t *m;
    bool ok = json_is_object(v) && smtp_string(v, "url", true, 512) &&
              smtp_string(v, "from", true, 254) && smtp_string(v, "username", false, 256) &&
              smtp_string(v, "password", false, 256);
    json_object_foreach (ok ? v : NULL, k, m)
        ok = ok && (!strcmp(k, "url") || !strcmp(k, "from") || !strcmp(k, "username") ||
                    !strcmp(k, "password"));
    url = ok ? json_string_value(json_object_get(v, "url")) : NULL;
    from = ok ? json_string_value(json_object_get(v, "from")) : NULL;
    ok = ok && (!strncmp(url, "smtp://", 7) || !strncmp(url, "smtps://", 8)) &&
         strlen(url + strcspn(url, ":") + 3) > 0 && strpbrk(url, " \t") == NULL;
    const char *at = ok ? strchr(from, '@') : NULL;
    ok = ok && at && at != from && at[1] && !strchr(at + 1, '@') && !strpbrk(from, " \t<>\"");
    if (ok)
        return 0;
    return cd_fail_reason(err, CD_EINVAL, "invalid_field", "smtp",
                          "smtp is {\"url\":\"smtp://host:port\" or \"smtps://...\","
                          "\"from\":\"address\",\"username\"?,\"password\"?} or null");
}

/* A PATCH of smtp without a password (or with the redacted "***" a GET showed) keeps the
 * stored one, so that settings read and written back do not lose it. */
static void smtp_keep_password(json_t *cur, json_t *next)
{
    json_t *pw = json_object_get(next, "password");
    json_t *old = json_object_get(json_object_get(cur, "smtp"), "password");
    if ((pw == NULL || (json_is_string(pw) && !strcmp(json_string_value(pw), "***"))) && old)
        json_object_set(next, "password", old);
}

/* The settings whose check is a simple shape test. */
static int check_simple(const char *k, json_t *v, cd_err *err)
{
    if (strcmp(k, "quiet_hours") == 0) {
        if (json_is_object(v) && hhmm_ok(json_object_get(v, "start")) &&
            hhmm_ok(json_object_get(v, "end")) && json_object_size(v) == 2)
            return 0;
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k,
                              "quiet_hours is {\"start\":\"HH:MM\",\"end\":\"HH:MM\"} or null");
    }
    if (strcmp(k, "flow_ttl_days") == 0) {
        if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 366)
            return 0;
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k, "flow_ttl_days is 1 to 366");
    }
    if (strcmp(k, "cta_text") == 0) {
        if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 640)
            return 0;
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k,
                              "cta_text is 1 to 640 characters");
    }
    if (strcmp(k, "default_profile") == 0) { /* issue 14: checked by cd_settings_patch */
        if (json_is_string(v))
            return 0;
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k, "default_profile is a uuid");
    }
    if (strcmp(k, "default_sender") == 0) {
        if (json_is_string(v))
            return 0; /* checked against the account's senders by cd_settings_patch */
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k, "default_sender is a number");
    }
    return cd_fail_reason(err, CD_EINVAL, "invalid_field", k, "unknown setting %s", k);
}

int cd_settings_check(const char *k, json_t *v, cd_err *err)
{
    if (json_is_null(v))
        return 0; /* null removes the setting */
    if (strcmp(k, "transport") == 0) {
        if (transport_ok(json_string_value(v)))
            return 0;
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k,
                              "transport is sink, smpp or http");
    }
    if (strcmp(k, "keywords") == 0) /* issue 8 item 3: no word that is also an opt-out word */
        return cd_keyword_check(v, err);
    if (strcmp(k, "replies") == 0)
        return check_replies(v, err);
    if (strcmp(k, "rate_limit") == 0)
        return check_rate_limit(v, err);
    if (strcmp(k, "smtp") == 0) /* issue 13 */
        return check_smtp(v, err);
    if (strcmp(k, "exempt_caps") == 0) /* issue 8 item 5 */
        return cd_message_exempt_caps_check(v, err);
    return check_simple(k, v, err);
}

json_t *cd_settings_view(json_t *s)
{
    json_object_set_new(s, "exempt_caps", cd_message_exempt_caps(s));
    /* issue 13: the SMTP password is never shown (nor kept in an Idempotency-Key answer) */
    json_t *smtp = json_object_get(s, "smtp");
    if (json_is_object(smtp)) {
        json_t *copy = json_copy(smtp);
        json_t *pw = json_object_get(copy, "password");
        json_object_set_new(copy, "password",
                            json_is_string(pw) && json_string_length(pw) ? json_string("***")
                                                                         : json_null());
        json_object_set_new(s, "smtp", copy);
    }
    return s;
}

/* Sets default_sender to `raw` in cur, once it is known to be one of the account's. */
static int set_default_sender(cd_db *db, const cd_account *a, json_t *cur, const char *raw,
                              cd_err *err)
{
    char e164[CD_PHONE_MAX];
    cd_sender s;
    const char *num = raw;
    if (cd_phone_normalize(raw, a->region, "default_sender", e164, NULL) == 0)
        num = e164;
    if (cd_store_sender_get(db, num, &s, NULL) != 0 || s.account_id != a->id)
        return cd_fail_reason(err, CD_EINVAL, "unknown_sender", "default_sender",
                              "add the number with POST /api/v1/senders first");
    json_object_set_new(cur, "default_sender", json_string(num));
    return 0;
}

/* issue 14: default_profile must name one of the account's messaging profiles. */
static int known_profile(cd_db *db, int64_t account_id, const char *uuid, cd_err *err)
{
    cd_profile *p = cd_xmalloc(sizeof *p);
    int rc = cd_store_profile_get(db, account_id, uuid, p, NULL);
    free(p);
    if (rc != 0)
        return cd_fail_reason(err, CD_EINVAL, "unknown_profile", "default_profile",
                              "create the profile with POST /rest/profile/messaging first");
    return 0;
}

int cd_settings_patch(cd_db *db, const cd_account *account, json_t *patch, json_t **out,
                      cd_err *err)
{
    json_t *cur = NULL, *v;
    const char *k;
    assert(json_is_object(patch) && out != NULL);
    *out = NULL;
    json_object_foreach (patch, k, v)
        if (cd_settings_check(k, v, err) != 0)
            return -1;
    if (cd_store_settings_get(db, account->id, &cur, err) != 0)
        return -1;
    json_object_foreach (patch, k, v) {
        if (strcmp(k, "default_sender") == 0 && json_is_string(v)) {
            if (set_default_sender(db, account, cur, json_string_value(v), err) != 0) {
                json_decref(cur);
                return -1;
            }
        } else if (strcmp(k, "default_profile") == 0 && json_is_string(v) &&
                   known_profile(db, account->id, json_string_value(v), err) != 0) {
            json_decref(cur);
            return -1;
        } else if (json_is_null(v)) {
            json_object_del(cur, k);
        } else if (strcmp(k, "smtp") == 0) { /* issue 13 */
            json_t *next = json_deep_copy(v);
            smtp_keep_password(cur, next);
            json_object_set_new(cur, k, next);
        } else {
            json_object_set(cur, k, v);
        }
    }
    if (cd_store_settings_put(db, account->id, cur, err) != 0) {
        json_decref(cur);
        return -1;
    }
    *out = cd_settings_view(cur);
    return 0;
}

/* ---- senders ---- */

int cd_sender_parse(const cd_sender_in *in, const char *region, char number[CD_PHONE_MAX],
                    cd_err *err)
{
    if (in->transport && !transport_ok(in->transport))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "transport",
                              "transport is sink, smpp or http");
    /* Short codes (3 to 8 digits) are senders too; anything else must be a valid number. */
    size_t n = strlen(in->number), digits = strspn(in->number, "0123456789");
    if (n >= 3 && n <= 8 && digits == n) {
        snprintf(number, CD_PHONE_MAX, "%s", in->number);
        return 0;
    }
    return cd_phone_normalize(in->number, region, "number", number, err);
}

int cd_sender_add(cd_db *db, const cd_account *account, const cd_sender_in *in, cd_sender *out,
                  bool *is_default, cd_err *err)
{
    json_t *settings = NULL;
    memset(out, 0, sizeof *out);
    if (cd_sender_parse(in, account->region, out->number, err) != 0)
        return -1;
    snprintf(out->transport, sizeof out->transport, "%s", in->transport ? in->transport : "");
    snprintf(out->type, sizeof out->type, "%s", /* issue 14 */
             in->type ? in->type : cd_sender_type_of(out->number));
    out->account_id = account->id;
    out->created_ms = cd_now_ms();
    /* Re-read: adding a number twice updates it and keeps its first created_at. */
    if (cd_store_sender_put(db, out, err) != 0 ||
        cd_store_sender_get(db, out->number, out, err) != 0 ||
        cd_store_settings_get(db, account->id, &settings, err) != 0)
        return -1;
    if (in->make_default) {
        json_object_set_new(settings, "default_sender", json_string(out->number));
        if (cd_store_settings_put(db, account->id, settings, err) != 0) {
            json_decref(settings);
            return -1;
        }
    }
    const char *def = json_string_value(json_object_get(settings, "default_sender"));
    if (is_default)
        *is_default = def && strcmp(def, out->number) == 0;
    json_decref(settings);
    return 0;
}
