/* api/shape.c -- Yii2-style XML from jansson values, and RFC 3339 timestamps.
 *
 * The XML is built as a libxml2 tree and dumped with xmlDocDumpMemoryEnc, because that is
 * what Yii's XmlResponseFormatter does underneath (PHP's DOMDocument is libxml2): the XML
 * declaration, the quoting and the escaping then come out byte for byte as ProTexting's. */
#include "api/shape.h"
#include "util/utf8.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "util/xalloc.h"

/* Yii's itemTag: the element for array items and for keys that cannot be element names. */
static const char item_tag[] = "item";

/* U+FFFD, the replacement character, in UTF-8. */
static const char replacement[] = "\xef\xbf\xbd";

/* XML 1.0's Char production. libxml2 would write a control character as "&#1;", which is
 * itself not well-formed, so a client's parser would reject the whole response. */
static bool xml_char(long cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/* True when s[0..n) is valid UTF-8 made only of XML characters (NUL included, which is
 * not one: jansson strings may hold it). */
static bool xml_clean(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len;
        long cp = cd_utf8_next(u + i, n - i, &len);
        if (cp < 0 || !xml_char(cp))
            return false;
        i += len;
    }
    return true;
}

/* Copies s[0..n) with each invalid byte or forbidden character replaced by U+FFFD, so that
 * one bad byte in a contact's name costs one character rather than the whole response.
 * The caller frees the result; *out_len gets its length. */
static char *xml_sanitise(const char *s, size_t n, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = cd_xmalloc(n * 3 + 1); /* n <= INT_MAX, checked by the caller */
    size_t o = 0;

    for (size_t i = 0; i < n;) {
        size_t len = 1;
        long cp = cd_utf8_next(u + i, n - i, &len);
        if (cp >= 0 && xml_char(cp)) {
            memcpy(out + o, s + i, len);
            o += len;
        } else {
            memcpy(out + o, replacement, 3);
            o += 3;
        }
        i += cp >= 0 ? len : 1;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Appends s[0..n) as a text node. An empty string adds nothing, so the element prints as
 * <x/>, the way ProTexting's documentation shows empty fields; Yii appends an empty text
 * node, which libxml2 prints as <x></x>, and a parser cannot tell the two apart. */
static int add_text(xmlNodePtr parent, const char *s, size_t n)
{
    char *copy = NULL;
    xmlNodePtr text;

    if (n == 0)
        return 0;
    if (n > INT_MAX / 3) /* libxml2 takes an int length, and sanitising may triple it */
        return -1;
    if (!xml_clean(s, n)) {
        copy = xml_sanitise(s, n, &n);
        s = copy;
    }
    text = xmlNewDocTextLen(parent->doc, (const xmlChar *)s, (int)n);
    free(copy);
    if (text == NULL)
        return -1;
    xmlAddChild(parent, text);
    return 0;
}

/* The shortest "%g" form that reads back as the same double: 0.1 gives "0.1" rather than
 * "0.10000000000000001". PHP's (string) cast rounds to 14 significant digits instead; no
 * ProTexting field is a float, and a longer number beats a rounded one.
 * Assumes the "C" numeric locale, which consentd never changes. */
static void format_real(double d, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(buf, n, "%.*g", prec, d); /* "%.17g" needs 24 bytes at most */
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A key becomes an element name only when it is a non-empty, NUL-free NCName. NCName
 * rather than Name: Yii lets "x:y" through, which yields a prefix bound to no namespace,
 * and namespace-aware parsers reject that document. */
static bool valid_name(const char *key, size_t len)
{
    return len > 0 && strlen(key) == len && xml_clean(key, len) &&
           xmlValidateNCName((const xmlChar *)key, 0) == 0;
}

/* jansson's object iterators take a json_t * although they only read; this keeps the
 * public const honest without a qualifier-dropping cast at every call. */
static json_t *readonly(const json_t *v)
{
    return (json_t *)(uintptr_t)v;
}

static int build(xmlNodePtr parent, const json_t *value, int depth);

static int add_child(xmlNodePtr parent, const char *name, const json_t *value, int depth)
{
    xmlNodePtr child = xmlNewDocNode(parent->doc, NULL, (const xmlChar *)name, NULL);
    if (child == NULL)
        return -1;
    xmlAddChild(parent, child);
    return build(child, value, depth + 1);
}

/* Fills `parent` with `value`, following Yii's buildXml() for arrays decoded from JSON.
 * `depth` counts the arrays and objects around `value`. */
static int build(xmlNodePtr parent, const json_t *value, int depth)
{
    char num[32];
    int len;

    if ((json_is_object(value) || json_is_array(value)) && depth >= CD_SHAPE_MAX_DEPTH)
        return -1;
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        json_t *obj = readonly(value);
        for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            const char *name = valid_name(key, json_object_iter_key_len(it)) ? key : item_tag;
            if (add_child(parent, name, json_object_iter_value(it), depth) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(value); i++) {
            if (add_child(parent, item_tag, json_array_get(value, i), depth) != 0)
                return -1;
        }
        return 0;
    case JSON_STRING:
        return add_text(parent, json_string_value(value), json_string_length(value));
    case JSON_INTEGER:
        len = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return add_text(parent, num, (size_t)len);
    case JSON_REAL:
        format_real(json_real_value(value), num, sizeof num);
        return add_text(parent, num, strlen(num));
    case JSON_TRUE:
        return add_text(parent, "1", 1);
    case JSON_FALSE:
    case JSON_NULL:
        return 0;
    }
    return -1;
}

char *cd_shape_json_to_xml(const json_t *value, const char *root_name)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr root;
    xmlChar *mem = NULL;
    int len = 0;
    char *out = NULL;

    if (root_name == NULL)
        root_name = "response";
    if (value == NULL || !valid_name(root_name, strlen(root_name)))
        return NULL;

    doc = xmlNewDoc((const xmlChar *)"1.0");
    if (doc == NULL)
        return NULL;
    root = xmlNewDocNode(doc, NULL, (const xmlChar *)root_name, NULL);
    if (root == NULL)
        goto done;
    xmlDocSetRootElement(doc, root);
    if (build(root, value, 0) != 0)
        goto done;

    /* Not the formatting variant: Yii sets no formatOutput, so elements follow each other
     * with no whitespace between them. */
    xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
    if (mem == NULL || len < 0)
        goto done;
    /* A copy, because the contract says free() and xmlFree may be another allocator. */
    out = cd_xmalloc((size_t)len + 1);
    memcpy(out, mem, (size_t)len);
    out[len] = '\0';

done:
    if (mem != NULL)
        xmlFree(mem);
    xmlFreeDoc(doc);
    return out;
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of a four-digit year. */
#define RFC3339_MIN (-62167219200LL)
#define RFC3339_MAX 253402300799LL

/* Writes v as exactly n decimal digits; v is known to fit. */
static void put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

int cd_shape_rfc3339(long long unix_seconds, char out[32])
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;

    out[0] = '\0';
    /* The range check also keeps the value inside a 64-bit time_t; the cast check catches
     * a 32-bit one. */
    if (unix_seconds < RFC3339_MIN || unix_seconds > RFC3339_MAX || (long long)t != unix_seconds)
        return -1;
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    /* Digits into a template rather than strftime, whose %Y does not pad years below 1000
     * in glibc; the range check above keeps every field to its width. */
    memcpy(out, "0000-00-00T00:00:00Z", sizeof "0000-00-00T00:00:00Z");
    put_digits(out, tm.tm_year + 1900, 4);
    put_digits(out + 5, tm.tm_mon + 1, 2);
    put_digits(out + 8, tm.tm_mday, 2);
    put_digits(out + 11, tm.tm_hour, 2);
    put_digits(out + 14, tm.tm_min, 2);
    put_digits(out + 17, tm.tm_sec, 2);
    return 0;
}
