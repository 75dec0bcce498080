/* core/profile.h -- issue 14: messaging profiles (Opentact) and the sender numbers they
 * lease. The rules for the values (lengths, weights, callback URLs) live here; the field
 * names and the JSON belong to the surface (api/opentact.c). Every write runs in the
 * writer's transaction `db`; every call carries the account, so another account's profile
 * is CD_ENOTFOUND like an unknown one. */
#ifndef CD_CORE_PROFILE_H
#define CD_CORE_PROFILE_H

#include <jansson.h>
#include <stdbool.h>

#include "store/store.h"
#include "util/err.h"

#define CD_PROFILE_NAME_MAX   255 /* characters */
#define CD_PROFILE_URL_MIN    10
#define CD_PROFILE_URL_MAX    255
#define CD_PROFILE_WEIGHT_MAX 9
#define CD_PROFILE_UNSET      (-1)

/* What a create or an update sets. Strings are borrowed; a NULL string or an UNSET
 * number/flag leaves the value alone (an update) or takes the default (a create).
 * clear_url/clear_url2 remove a callback URL. */
typedef struct cd_profile_in {
    const char *name;
    const char *callback_url, *callback_url2;
    bool clear_url, clear_url2;
    int number_pool_enable; /* 0, 1 or CD_PROFILE_UNSET */
    int long_code_weight;   /* 0..9 or CD_PROFILE_UNSET */
    int toll_free_weight;
    int skip_unhealthy_tns;
    int sticky_sender;
} cd_profile_in;

/* An input with every member unset. */
void cd_profile_in_init(cd_profile_in *in);

/* Whether callback URLs may name loopback or private addresses (the operator's
 * --allow-private-webhooks). Set once before requests are served; false until then. */
void cd_profile_set_allow_private(bool allow);
bool cd_profile_allow_private(void);

/* A callback URL: 10..255 characters, http or https, a host, and unless private webhooks
 * are allowed, no loopback, private, link-local or unspecified address literal and no
 * "localhost". CD_EINVAL "invalid_field" with `field`. */
int cd_profile_url_check(const char *url, const char *field, cd_err *err);

/* Checks every member that is set (name 1..255 characters, URLs as above, weights 0..9);
 * a create also needs a name. CD_EINVAL "invalid_field" with the field named. */
int cd_profile_check(const cd_profile_in *in, bool create, cd_err *err);

/* Creates a profile: a fresh uuid and signing secret; the defaults are pool off, both
 * weights 1, skip_unhealthy_tns and sticky_sender off. out gets the stored profile (its
 * secret included: the caller shows it once). */
int cd_profile_create(cd_db *db, int64_t account_id, const cd_profile_in *in, cd_profile *out,
                      cd_err *err);
/* Applies the set members to the account's profile `uuid`; out gets the result. */
int cd_profile_update(cd_db *db, int64_t account_id, const char *uuid, const cd_profile_in *in,
                      cd_profile *out, cd_err *err);
/* Deletes it and releases its leases. */
int cd_profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err);

/* The profile that sends pick from when a request names none: the settings'
 * default_profile when it still exists, else the account's first profile. CD_ENOTFOUND
 * when the account has none. `settings` is borrowed and may be NULL. */
int cd_profile_default(cd_db *db, int64_t account_id, const json_t *settings, cd_profile *out,
                       cd_err *err);

/* Leases the account's sender `number` (stored form) to its profile `uuid` (CD_ENOTFOUND
 * for either unknown); out gets the leased sender. A number leased to another profile is
 * moved. */
int cd_sender_lease(cd_db *db, int64_t account_id, const char *number, const char *uuid,
                    cd_sender *out, cd_err *err);
/* Ends the lease of `number` (CD_ENOTFOUND for no such sender or no lease). */
int cd_sender_release(cd_db *db, int64_t account_id, const char *number, cd_err *err);

/* A sender's type from its stored number: short_code for 3 to 8 digits, toll_free when
 * libphonenumber says so, else long_code. Returns a static string. */
const char *cd_sender_type_of(const char *number);
/* Whether `type` names a sender type. */
bool cd_sender_type_valid(const char *type);

/* Formats a random (version 4) uuid into out[37]. */
void cd_profile_new_uuid(char out[37]);

/* The native shape of a sender (DESIGN section 7): {"number","type","transport","default",
 * "healthy","profile","created_at"}; a new reference. */
json_t *cd_sender_view(const cd_sender *s, bool is_default, bool healthy);
/* A lease's shape: {"uuid","number","type","profile","created_on"}; a new reference. */
json_t *cd_lease_view(const cd_sender *s);

#endif
