#include "core/contact.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/phone.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

static const char *const names[CD_CF_COUNT] = {
    "first_name", "last_name", "email",  "birthday", "zip",    "city",
    "param1",     "param2",    "param3", "param4",   "param5",
};

const char *cd_contact_field_name(int f)
{
    return f >= 0 && f < CD_CF_COUNT ? names[f] : "";
}

char **cd_contact_field(cd_contact *c, int f)
{
    switch (f) {
    case CD_CF_FIRST_NAME:
        return &c->first_name;
    case CD_CF_LAST_NAME:
        return &c->last_name;
    case CD_CF_EMAIL:
        return &c->email;
    case CD_CF_BIRTHDAY:
        return &c->birthday;
    case CD_CF_ZIP:
        return &c->zip;
    case CD_CF_CITY:
        return &c->city;
    default:
        return &c->params[f - CD_CF_PARAM1];
    }
}

int cd_contact_field_check(int f, const char *v, cd_err *err)
{
    const char *name = names[f];
    size_t n = v ? strlen(v) : 0;
    if (n == 0)
        return 0;
    if (n > 255)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", name, "%s is too long", name);
    if (f == CD_CF_EMAIL) {
        const char *at = strchr(v, '@');
        if (at == NULL || at == v || strchr(at + 1, '.') == NULL || strchr(v, ' '))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", name,
                                  "email is not an e-mail address");
    }
    if (f == CD_CF_BIRTHDAY) {
        int64_t ms;
        if (n != 10 || cd_time_parse(v, &ms) != 0)
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", name,
                                  "birthday must be YYYY-MM-DD");
    }
    if (f == CD_CF_ZIP && n > 16)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", name, "zip is too long");
    return 0;
}

static bool array_has(const json_t *a, const json_t *v)
{
    size_t i;
    json_t *x;
    json_array_foreach (a, i, x)
        if (json_equal(x, v))
            return true;
    return false;
}

/* Returns a new array: `base` plus the items of `add` it does not have. */
static json_t *array_union(const json_t *base, const json_t *add)
{
    json_t *out = base ? json_deep_copy(base) : json_array();
    size_t i;
    json_t *x;
    json_array_foreach (add, i, x)
        if (!array_has(out, x))
            json_array_append(out, x);
    return out;
}

static int check_groups(cd_db *db, int64_t account_id, const json_t *groups, cd_err *err)
{
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        cd_named n;
        cd_err e;
        if (cd_store_named_get(db, "group", account_id, json_integer_value(g), &n, &e) != 0) {
            if (e.code != CD_ENOTFOUND) {
                if (err)
                    *err = e;
                return -1;
            }
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "groups",
                                  "no group with id %lld", (long long)json_integer_value(g));
        }
    }
    return 0;
}

static void apply(cd_contact *c, const cd_contact_patch *p)
{
    for (int f = 0; f < CD_CF_COUNT; f++) {
        if (!p->has[f])
            continue;
        char **slot = cd_contact_field(c, f);
        free(*slot);
        *slot = p->value[f] && *p->value[f] ? cd_xstrdup(p->value[f]) : NULL;
    }
    if (p->custom) {
        if (p->merge && c->custom) {
            json_object_update(c->custom, p->custom);
        } else {
            json_decref(c->custom);
            c->custom = json_deep_copy(p->custom);
        }
    }
    if (p->tags) {
        json_t *t = p->merge ? array_union(c->tags, p->tags) : json_deep_copy(p->tags);
        json_decref(c->tags);
        c->tags = t;
    }
    if (p->groups) {
        json_t *g = p->merge ? array_union(c->groups, p->groups) : json_deep_copy(p->groups);
        json_decref(c->groups);
        c->groups = g;
    } else if (c->id != 0) {
        /* Leave membership alone: a NULL groups array tells the store not to touch it. */
        json_decref(c->groups);
        c->groups = NULL;
    }
}

/* Checks the totals the patch touched; what it left alone may predate the caps and does
 * not block an unrelated update. */
static int check_totals(const cd_contact *c, const cd_contact_patch *p, cd_err *err)
{
    if (p->tags && json_array_size(c->tags) > CD_CONTACT_MAX_TAGS)
        return cd_fail_reason(err, CD_EINVAL, "too_many_tags", "tags",
                              "a contact has at most %d tags; this would make %zu",
                              CD_CONTACT_MAX_TAGS, json_array_size(c->tags));
    if (p->custom && json_object_size(c->custom) > CD_CONTACT_MAX_CUSTOM_KEYS)
        return cd_fail_reason(err, CD_EINVAL, "too_many_custom_fields", "custom",
                              "a contact has at most %d custom fields; this would make %zu",
                              CD_CONTACT_MAX_CUSTOM_KEYS, json_object_size(c->custom));
    if (p->custom && c->custom &&
        json_dumpb(c->custom, NULL, 0, JSON_COMPACT) > CD_CONTACT_MAX_CUSTOM_BYTES)
        return cd_fail_reason(err, CD_EINVAL, "custom_too_large", "custom",
                              "a contact's custom fields take at most %d bytes as JSON",
                              CD_CONTACT_MAX_CUSTOM_BYTES);
    return 0;
}

static bool patch_empty(const cd_contact_patch *p)
{
    for (int f = 0; f < CD_CF_COUNT; f++)
        if (p->has[f])
            return false;
    return !p->custom && !p->tags && !p->groups;
}

int cd_contact_apply(cd_db *db, int64_t account_id, int64_t id, const cd_contact_patch *p,
                     bool create, cd_contact *out, bool *created, cd_err *err)
{
    cd_contact c;
    cd_err e;
    int rc = id ? cd_store_contact_get(db, account_id, id, &c, &e)
                : cd_store_contact_by_phone(db, account_id, p->phone, &c, &e);
    bool fresh = false;
    if (rc != 0) {
        if (e.code != CD_ENOTFOUND || !create || id != 0) {
            if (err)
                *err = e;
            if (e.code == CD_ENOTFOUND)
                cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such contact");
            return -1;
        }
        memset(&c, 0, sizeof c);
        c.account_id = account_id;
        snprintf(c.phone, sizeof c.phone, "%s", p->phone);
        c.created_ms = cd_now_ms();
        fresh = true;
    } else if (patch_empty(p)) {
        /* Nothing to change (a consent for a known number): no write, no new updated_at. */
        if (created)
            *created = false;
        *out = c;
        return 0;
    }
    if (p->groups && check_groups(db, account_id, p->groups, err) != 0) {
        cd_contact_clear(&c);
        return -1;
    }
    json_t *groups_before = c.groups ? json_incref(c.groups) : NULL;
    apply(&c, p);
    if (check_totals(&c, p, err) != 0) {
        json_decref(groups_before);
        cd_contact_clear(&c);
        return -1;
    }
    c.updated_ms = cd_now_ms();
    rc = cd_store_contact_put(db, &c, err);
    if (rc == 0 && c.groups == NULL)
        c.groups = groups_before ? json_incref(groups_before) : json_array();
    json_decref(groups_before);
    if (rc != 0) {
        cd_contact_clear(&c);
        return -1;
    }
    if (created)
        *created = fresh;
    *out = c;
    return 0;
}

int cd_contact_upsert(cd_db *db, int64_t account_id, const cd_contact_patch *p, cd_contact *out,
                      bool *created, cd_err *err)
{
    if (p->groups) /* checked against the store: cd_contact_apply does it */
        return cd_contact_apply(db, account_id, 0, p, true, out, created, err);
    cd_contact c;
    cd_err e;
    memset(&c, 0, sizeof c);
    c.account_id = account_id;
    snprintf(c.phone, sizeof c.phone, "%s", p->phone);
    c.created_ms = cd_now_ms();
    apply(&c, p);
    c.updated_ms = cd_now_ms();
    /* Over a cap, or a number that is taken (the UNIQUE (account_id, phone) refuses the
     * insert, and only that statement is undone): the general path, which merges with the
     * stored contact and words the error. */
    if (check_totals(&c, p, &e) != 0 || cd_store_contact_put(db, &c, &e) != 0) {
        cd_contact_clear(&c);
        if (e.code != CD_ECONFLICT && e.code != CD_EINVAL) {
            if (err)
                *err = e;
            return -1;
        }
        return cd_contact_apply(db, account_id, 0, p, true, out, created, err);
    }
    c.groups = json_array();
    if (created)
        *created = true;
    *out = c;
    return 0;
}

int cd_contact_find(cd_db *db, int64_t account_id, const char *region, const char *ref,
                    cd_contact *out, cd_err *err)
{
    size_t n = strlen(ref), digits = 0;
    for (size_t i = 0; i < n; i++)
        digits += isdigit((unsigned char)ref[i]) != 0;
    if (n > 0 && digits == n && n < 8 && ref[0] != '0') {
        if (cd_store_contact_get(db, account_id, strtoll(ref, NULL, 10), out, err) == 0)
            return 0;
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such contact");
    }
    /* issue 16: a number already in its stored form is looked up as it is; a hit is a valid
     * number (it was validated when written), so libphonenumber runs only on a miss. */
    bool canonical = cd_phone_is_canonical(ref);
    if (canonical && cd_store_contact_by_phone(db, account_id, ref, out, NULL) == 0)
        return 0;
    char e164[CD_PHONE_MAX];
    if (cd_phone_normalize(ref, region, "phone", e164, err) != 0)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such contact");
    if ((canonical && strcmp(e164, ref) == 0) ||
        cd_store_contact_by_phone(db, account_id, e164, out, err) != 0)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such contact");
    return 0;
}
