/* api/shape.h -- vendor wire shapes shared by the surfaces: Yii2-style XML (ProTexting
 * answers in XML when asked with "Accept: application/xml") and RFC 3339 timestamps.
 * No globals and no state: any thread may call these, provided main has run
 * xmlInitParser() before starting threads, as libxml2 asks of threaded programs. */
#ifndef CD_API_SHAPE_H
#define CD_API_SHAPE_H

#include <jansson.h>

/* More arrays and objects nested than this are refused rather than recursed into, which
 * also stops a cycle. */
#define CD_SHAPE_MAX_DEPTH 64

/* Serialises `value` as Yii2's XmlResponseFormatter does, with `root_name` (NULL means
 * "response") as the root element:
 *     <?xml version="1.0" encoding="UTF-8"?>\n<response>...</response>\n
 * - An object's keys become child elements, in the object's order.
 * - An array's elements become <item> children; nested arrays nest <item>s.
 * - A key that is not a valid XML name (empty, "0", "12", "a b", "x:y", not UTF-8) becomes
 *   <item>, as Yii does for numeric and invalid keys; its value is kept.
 * - Strings are text, escaped; invalid UTF-8 and characters XML 1.0 forbids (controls other
 *   than tab, LF and CR) become U+FFFD. Integers print in decimal, reals in the shortest
 *   form that reads back to the same double ("0.1", "1", "1e+25"; PHP would round to 14
 *   significant digits).
 * - true is "1"; false, null and "" give an empty element, written <x/> as ProTexting's
 *   documentation shows it (Yii's DOM writes <x></x>, which every parser reads the same).
 *   "1" and "" are PHP's (string) casts, which Yii used before 2.0.11; ProTexting's docs
 *   show PHP 5.6 in 2015. Later Yii writes "true" and "false".
 * - A scalar or null at the top becomes the root's text ("<response>5</response>").
 *   Seed 000 shows a created contact as <response><item><Id>1</Id>...</item></response>:
 *   that is a one-element array, so pass [contact] to match it.
 * Returns a NUL-terminated string that the caller owns and releases with free(), or NULL
 * when `value` is NULL, `root_name` is not a valid element name, more than
 * CD_SHAPE_MAX_DEPTH arrays and objects nest, or libxml2 runs out of memory. `value` is only read.
 */
char *cd_shape_json_to_xml(const json_t *value, const char *root_name);

/* Formats `unix_seconds` as RFC 3339 UTC, "2026-11-23T18:12:54Z", into out[32], which the
 * caller owns. Returns 0, or -1 with out[0] == '\0' when the time falls outside years
 * 0000..9999 (RFC 3339 has four-digit years). */
int cd_shape_rfc3339(long long unix_seconds, char out[32]);

#endif
