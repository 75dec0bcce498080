/* tests/unit/api/test_shape.c -- api/shape.h: Yii2-style XML (seed 000's XML example) and
 * RFC 3339 timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "api/shape.h"

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* Parses a JSON literal the test wrote; a typo in a test is a test failure. */
static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", text, e.text);
    return v;
}

/* Serialises `v` (taken: released here) under `root` and compares with DECL + body + "\n". */
static void expect_xml(json_t *v, const char *root, const char *body)
{
    char *xml = cd_shape_json_to_xml(v, root);
    size_t n = strlen(DECL) + strlen(body) + 2;
    char *want = malloc(n);

    assert_non_null(want);
    (void)snprintf(want, n, "%s%s\n", DECL, body);
    json_decref(v);
    assert_non_null(xml);
    assert_string_equal(xml, want);
    free(want);
    free(xml);
}

/* Parses `xml` strictly (no recovery, no network) and returns the root's text, which the
 * caller frees with xmlFree; fails the test when the document is not well-formed. */
static xmlChar *root_text(const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "shape.xml", "UTF-8", XML_PARSE_NONET);
    xmlChar *text;

    assert_non_null(doc);
    text = xmlNodeGetContent(xmlDocGetRootElement(doc));
    xmlFreeDoc(doc);
    assert_non_null(text);
    return text;
}

/* Seed 000: the created contact, as ProTexting documents it (a one-element list). */
static void test_seed_contact(void **state)
{
    (void)state;
    expect_xml(j("[{\"Id\": 1, \"Number\": \"16465550123\", \"OptedOut\": 0,"
                 " \"FirstName\": \"John\", \"LastName\": \"\", \"BirthDay\": \"0000-00-00\","
                 " \"Email\": \"\", \"Zip\": \"\", \"City\": \"\","
                 " \"DateCreated\": \"2015-01-20 10:21:29\","
                 " \"DateUpdated\": \"2015-01-20 10:41:29\","
                 " \"GroupIds\": [1], \"CustomFieldIds\": []}]"),
               NULL,
               "<response><item><Id>1</Id><Number>16465550123</Number><OptedOut>0</OptedOut>"
               "<FirstName>John</FirstName><LastName/><BirthDay>0000-00-00</BirthDay><Email/>"
               "<Zip/><City/><DateCreated>2015-01-20 10:21:29</DateCreated>"
               "<DateUpdated>2015-01-20 10:41:29</DateUpdated><GroupIds><item>1</item>"
               "</GroupIds><CustomFieldIds/></item></response>");
}

static void test_nested(void **state)
{
    (void)state;
    expect_xml(j("{\"a\": {\"b\": {\"c\": [1, [2, 3], {\"d\": null}, []]}}, \"e\": {}}"), NULL,
               "<response><a><b><c><item>1</item><item><item>2</item><item>3</item></item>"
               "<item><d/></item><item/></c></b></a><e/></response>");
    /* Keys keep the object's order, not an alphabetical one. */
    expect_xml(j("{\"z\": 1, \"a\": 2, \"m\": 3}"), NULL,
               "<response><z>1</z><a>2</a><m>3</m></response>");
    /* A list of lists at the top. */
    expect_xml(j("[[\"x\"], []]"), NULL, "<response><item><item>x</item></item><item/></response>");
}

static void test_scalars(void **state)
{
    (void)state;
    expect_xml(j("{\"n\": null, \"t\": true, \"f\": false, \"s\": \"\", \"i\": -42,"
                 " \"big\": 9223372036854775807, \"r\": 0.1, \"one\": 1.0, \"neg\": -2.5,"
                 " \"exp\": 1e25, \"third\": 0.3333333333333333}"),
               NULL,
               "<response><n/><t>1</t><f/><s/><i>-42</i><big>9223372036854775807</big>"
               "<r>0.1</r><one>1</one><neg>-2.5</neg><exp>1e+25</exp>"
               "<third>0.3333333333333333</third></response>");
    /* A scalar at the top is the root's text. */
    expect_xml(j("5"), NULL, "<response>5</response>");
    expect_xml(j("\"hi\""), NULL, "<response>hi</response>");
    expect_xml(j("true"), NULL, "<response>1</response>");
    expect_xml(j("false"), NULL, "<response/>");
    expect_xml(j("null"), NULL, "<response/>");
}

static void test_escaping(void **state)
{
    const char *nasty = "<a href=\"x\">Tom & Jerry's &amp; </a>]]>";
    json_t *v = json_pack("{s:s}", "s", nasty);
    char *xml = cd_shape_json_to_xml(v, NULL);
    xmlChar *text;
    (void)state;

    assert_non_null(xml);
    assert_string_equal(xml, DECL "<response><s>&lt;a href=\"x\"&gt;Tom &amp; Jerry's &amp;amp; "
                                  "&lt;/a&gt;]]&gt;</s></response>\n");
    /* Whatever the escaping, a parser must get the original text back. */
    text = root_text(xml);
    assert_string_equal((const char *)text, nasty);
    xmlFree(text);
    free(xml);
    json_decref(v);

    /* Tab and LF pass; CR is written as a reference so that parsers keep it. */
    v = json_string("a\tb\nc\rd");
    xml = cd_shape_json_to_xml(v, NULL);
    assert_non_null(xml);
    assert_string_equal(xml, DECL "<response>a\tb\nc&#13;d</response>\n");
    text = root_text(xml);
    assert_string_equal((const char *)text, "a\tb\nc\rd");
    xmlFree(text);
    free(xml);
    json_decref(v);
}

/* U+FFFD in UTF-8. */
#define FFFD "\xef\xbf\xbd"

static void test_invalid_text(void **state)
{
    json_t *v = json_object();
    char *xml;
    xmlChar *text;
    (void)state;

    /* jansson's _nocheck setters and json_stringn let such bytes in; each becomes U+FFFD
     * rather than making the whole document unreadable. */
    json_object_set_new(v, "bad",
                        json_stringn_nocheck("a\xff"
                                             "b\xc3(\xed\xa0\x80z",
                                             9));
    json_object_set_new(v, "ctl", json_string("x\x01y\x1fz"));
    json_object_set_new(v, "nul", json_stringn("a\0b", 3));
    json_object_set_new(v, "ok", json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    xml = cd_shape_json_to_xml(v, NULL);
    assert_non_null(xml);
    assert_string_equal(xml, DECL "<response><bad>a" FFFD "b" FFFD "(" FFFD FFFD FFFD "z</bad>"
                                  "<ctl>x" FFFD "y" FFFD "z</ctl><nul>a" FFFD "b</nul>"
                                  "<ok>caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80</ok>"
                                  "</response>\n");
    text = root_text(xml); /* asserts that the result is well-formed */
    xmlFree(text);
    free(xml);
    json_decref(v);
}

/* Keys that cannot be element names become <item>, as Yii's getValidXmlElementName()
 * does; names that can, stay. */
static void test_keys(void **state)
{
    json_t *v = json_object();
    char *xml;
    (void)state;

    json_object_set_new(v, "", json_integer(1));
    json_object_set_new(v, "0", json_integer(2));
    json_object_set_new(v, "12", json_integer(3));
    json_object_set_new(v, "a b", json_integer(4));
    json_object_set_new(v, "x:y", json_integer(5));
    json_object_set_new(v, "-a", json_integer(6));
    json_object_set_new(v, "<a>", json_integer(7));
    json_object_setn_new_nocheck(v, "k\xff", 2, json_integer(8));
    json_object_setn_new(v, "a\0b", 3, json_integer(9));
    json_object_set_new(v, "_ok", json_integer(10));
    json_object_set_new(v, "a-b.c9", json_integer(11));
    json_object_set_new(v, "caf\xc3\xa9", json_integer(12));
    xml = cd_shape_json_to_xml(v, NULL);
    assert_non_null(xml);
    assert_string_equal(xml, DECL "<response><item>1</item><item>2</item><item>3</item>"
                                  "<item>4</item><item>5</item><item>6</item><item>7</item>"
                                  "<item>8</item><item>9</item><_ok>10</_ok>"
                                  "<a-b.c9>11</a-b.c9><caf\xc3\xa9>12</caf\xc3\xa9></response>\n");
    free(xml);
    json_decref(v);
}

static void test_root_and_arguments(void **state)
{
    json_t *v = j("{\"a\": 1}");
    char *xml;
    (void)state;

    expect_xml(json_incref(v), "contacts", "<contacts><a>1</a></contacts>");
    assert_null(cd_shape_json_to_xml(v, "1x"));
    assert_null(cd_shape_json_to_xml(v, ""));
    assert_null(cd_shape_json_to_xml(v, "a b"));
    assert_null(cd_shape_json_to_xml(NULL, NULL));
    /* The value is only read: still one reference, still the same content. */
    xml = cd_shape_json_to_xml(v, NULL);
    assert_non_null(xml);
    free(xml);
    assert_int_equal(json_object_size(v), 1);
    json_decref(v);
}

/* Builds `n` arrays nested in one another, the innermost empty. */
static json_t *nest(int n)
{
    json_t *v = json_array();
    for (int i = 1; i < n; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    return v;
}

static void test_depth(void **state)
{
    json_t *ok = nest(CD_SHAPE_MAX_DEPTH);
    json_t *deep = nest(CD_SHAPE_MAX_DEPTH + 1);
    char *xml = cd_shape_json_to_xml(ok, NULL);
    (void)state;

    assert_non_null(xml);
    free(xml);
    assert_null(cd_shape_json_to_xml(deep, NULL));
    json_decref(ok);
    json_decref(deep);
}

static void test_rfc3339(void **state)
{
    static const struct {
        long long t;
        const char *want; /* NULL = out of range */
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1795457574LL, "2026-11-23T18:12:54Z"},
        {1421749289LL, "2015-01-20T10:21:29Z"},
        {951782400LL, "2000-02-29T00:00:00Z"},
        {-1, "1969-12-31T23:59:59Z"},
        {-62135596800LL, "0001-01-01T00:00:00Z"},
        {-62167219200LL, "0000-01-01T00:00:00Z"},
        {253402300799LL, "9999-12-31T23:59:59Z"},
        {-62167219201LL, NULL},
        {253402300800LL, NULL},
        {LLONG_MAX, NULL},
        {LLONG_MIN, NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32] = "garbage";
        int rc = cd_shape_rfc3339(cases[i].t, out);
        if (cases[i].want != NULL) {
            assert_int_equal(rc, 0);
            assert_string_equal(out, cases[i].want);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(out, "");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_contact),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_invalid_text),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_root_and_arguments),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_rfc3339),
    };
    int rc;

    xmlInitParser(); /* as shape.h asks of main */
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser(); /* so that LeakSanitizer sees only our own leaks */
    return rc;
}
