/* core/phone.h -- phone number normalisation (libphonenumber behind a C shim).
 * Thread-safe: libphonenumber's PhoneNumberUtil is a read-only singleton once built;
 * cd_phone_init() builds it and should run in main before any thread starts. */
#ifndef CD_CORE_PHONE_H
#define CD_CORE_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CD_PHONE_MAX 24 /* "+" + up to 15 digits + NUL, with room to spare */

/* Builds the libphonenumber singleton and silences its logger. Idempotent; call it in main
 * before any thread starts (the functions below would build it on first use, but that
 * first use then pays for loading all the metadata). */
void cd_phone_init(void);

/* Normalises `raw` to E.164 ("+16465550123") into out[CD_PHONE_MAX], a buffer the caller
 * owns; on failure out[0] is '\0'. Any thread may call this.
 * `region` is an ISO 3166 alpha-2 code ("US", case-insensitive) used when `raw` has no
 * country code; NULL means "US". It also sets the international prefix: "0033 ..." reads
 * as +33 with region FR or DE, "011 33 ..." with region US.
 * Digits-only input that starts with the region's country code ("16465550123") is read as
 * international when the national reading is invalid.
 * Accepts "+1 (646) 555-0123", "(646) 555-0123", "16465550123", "+16465550123", "646.555.0123".
 * `raw` may hold only digits, spaces, + ( ) [ ] - . / and their Unicode look-alikes, at
 * most 64 bytes of UTF-8: letters (vanity numbers, "ext 12") are refused.
 * Fails with CD_EINVAL, reason "invalid_phone", field `field` (may be NULL) when `raw` is
 * NULL, empty, too long or not a number, when the number is not valid (isValidNumber, not
 * merely possible), or when its type cannot receive SMS: landline, premium-rate,
 * shared-cost, UAN, pager and voicemail numbers (the full list is in phone_shim.cc).
 * Fails with CD_EINVAL, reason "invalid_region", field "region" when `region` is not a
 * region libphonenumber knows; with CD_EINTERNAL only if libphonenumber throws. */
int cd_phone_normalize(const char *raw, const char *region, const char *field,
                       char out[CD_PHONE_MAX], cd_err *err);

/* issue 16: true when `s` is spelled exactly as cd_phone_normalize() writes a number: "+",
 * a digit 1-9, then digits, 15 digits at most, nothing else. A syntax check only: it says
 * nothing about validity ("+15550000000" passes). Readers use it to look a number up by
 * its stored form first: every stored number was validated when it was written, so a hit
 * on this exact spelling is a valid number, and only a miss needs cd_phone_normalize(). */
bool cd_phone_is_canonical(const char *s);

/* Builds an E.164 number from a country calling code and a national number (Omeda's
 * CountryCallingCode + PhoneNumber), validated like cd_phone_normalize(); `national` may
 * not hold a "+". A trunk prefix ("06 12 34 56 78" with 33) is dropped, and a national
 * part that repeats the country code ("33612345678" with 33) is accepted. An unknown
 * country code fails with reason "invalid_phone" too. */
int cd_phone_from_parts(int country_code, const char *national, const char *field,
                        char out[CD_PHONE_MAX], cd_err *err);

/* True when `region` is a two-letter region libphonenumber knows ("US", "fr"); false for
 * NULL, "ZZ" and the non-geographical "001". Any thread may call this. */
bool cd_phone_region_valid(const char *region);

/* issue 14: true when the E.164 number `e164` is a toll-free number (libphonenumber's number
 * type TOLL_FREE, e.g. +1 800/833/844/855/866/877/888); false for anything else, also for
 * input that does not parse. Any thread may call this. */
bool cd_phone_is_toll_free(const char *e164);

#endif
