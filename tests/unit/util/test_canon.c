/* tests/unit/util/test_canon.c -- util/canon.h: canonical JSON, the bytes the ledger hashes
 * and the idempotency check compares. Two equal values must give the same bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/canon.h"
#include "util/crypto.h"

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Parses a JSON literal the test wrote; a typo in a test is a test failure. */
static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", text, e.text);
    return v;
}

/* Canonicalises `v` (taken: released here) and compares with `want`. */
static void expect_canon(json_t *v, const char *want)
{
    char *got = cd_canon_json(v);
    json_decref(v);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_key_order_independent(void **state)
{
    json_t *a = json_object();
    json_t *b = json_object();
    (void)state;

    /* The same members inserted in opposite orders. */
    json_object_set_new(a, "zeta", json_integer(1));
    json_object_set_new(a, "alpha", json_integer(2));
    json_object_set_new(a, "mid", json_string("x"));
    json_object_set_new(b, "mid", json_string("x"));
    json_object_set_new(b, "alpha", json_integer(2));
    json_object_set_new(b, "zeta", json_integer(1));

    char *ca = cd_canon_json(a), *cb = cd_canon_json(b);
    assert_non_null(ca);
    assert_non_null(cb);
    assert_string_equal(ca, cb);
    assert_string_equal(ca, "{\"alpha\":2,\"mid\":\"x\",\"zeta\":1}");
    free(ca);
    free(cb);
    json_decref(a);
    json_decref(b);
}

static void test_no_whitespace(void **state)
{
    (void)state;
    expect_canon(j("{ \"b\" : [ 1 , 2 , { \"c\" : \"d e\" } ] ,\n\t\"a\" : null }"),
                 "{\"a\":null,\"b\":[1,2,{\"c\":\"d e\"}]}");
    expect_canon(j("[ ]"), "[]");
    expect_canon(j("{ }"), "{}");
    expect_canon(j(" [ true , false , null ] "), "[true,false,null]");
}

static void test_nested_sorted_at_every_level(void **state)
{
    (void)state;
    expect_canon(j("{\"b\":{\"y\":1,\"x\":{\"q\":[{\"n\":2,\"m\":1}],\"p\":0}},\"a\":[]}"),
                 "{\"a\":[],\"b\":{\"x\":{\"p\":0,\"q\":[{\"m\":1,\"n\":2}]},\"y\":1}}");
    /* Arrays keep their order: it is part of the value. */
    expect_canon(j("[3,1,2]"), "[3,1,2]");
}

/* ENSURE_ASCII: non-ASCII leaves as \u escapes (upper-case hex, surrogate pairs above the
 * BMP), so the bytes do not depend on how a client normalised its UTF-8 output. */
static void test_unicode_escaped(void **state)
{
    (void)state;
    expect_canon(json_pack("{s:s}", "name", "Jos\xc3\xa9"), "{\"name\":\"Jos\\u00E9\"}");
    expect_canon(json_pack("{s:s}", "e", "\xf0\x9f\x98\x80"), "{\"e\":\"\\uD83D\\uDE00\"}");
    expect_canon(json_pack("{s:s}", "\xc3\xa9", "k"), "{\"\\u00E9\":\"k\"}"); /* keys too */
    /* Control characters are escaped; '/' is not. */
    expect_canon(json_string("a/b\n\t\x01\"\\"), "\"a/b\\n\\t\\u0001\\\"\\\\\"");
    expect_canon(json_string("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\\u00E9 \\u20AC\"");
}

static void test_integers(void **state)
{
    (void)state;
    expect_canon(json_pack("{s:I,s:I,s:I,s:I}", "zero", (json_int_t)0, "neg", (json_int_t)-1, "big",
                           (json_int_t)9007199254740993LL, "max", (json_int_t)INT64_MAX),
                 "{\"big\":9007199254740993,\"max\":9223372036854775807,\"neg\":-1,\"zero\":0}");
    expect_canon(json_integer(INT64_MIN), "-9223372036854775808");
    /* An integer and the equal real are different values, and look different. */
    expect_canon(json_real(1.5), "1.5");
    expect_canon(json_real(0.1), "0.10000000000000001"); /* 17 digits: round-trips */
}

// cd_fmt_int and cd_buf_put_int write what snprintf("%lld") / ("%0*lld") would, edges
// included: the ledger hashes these digits, and answers and log lines carry them.
static void test_int_writers_match_printf(void **state)
{
    (void)state;
    const int64_t v[] = {0,   1,    -1,        9,          10,        -10,       99,           100,
                         999, 1000, 123456789, -987654321, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char want[48], got[CD_INT_DIGITS + 1];
        snprintf(want, sizeof want, "%lld", (long long)v[i]);
        got[cd_fmt_int(got, v[i])] = '\0';
        assert_string_equal(got, want);
        for (int width = 0; width <= 4; width++) {
            cd_buf b = {0};
            cd_buf_put_int(&b, v[i], width);
            /* the width counts digits, not the sign */
            snprintf(want, sizeof want, "%0*lld", width + (v[i] < 0), (long long)v[i]);
            assert_string_equal(b.data, want);
            cd_buf_free(&b);
        }
    }
}

static void test_scalars_at_top_level(void **state)
{
    (void)state;
    expect_canon(json_integer(5), "5");
    expect_canon(json_string("x"), "\"x\"");
    expect_canon(json_true(), "true");
    expect_canon(json_null(), "null");
}

static void test_null_input(void **state)
{
    char out[CD_SHA256_HEX];
    (void)state;

    assert_null(cd_canon_json(NULL));
    /* NULL hashes as the empty string. */
    memset(out, 'x', sizeof out);
    cd_canon_sha256(NULL, out);
    assert_string_equal(out, SHA256_EMPTY);
}

static void test_sha256_of_canonical_bytes(void **state)
{
    char got[CD_SHA256_HEX], want[CD_SHA256_HEX], other[CD_SHA256_HEX];
    const char *canon = "{\"a\":1,\"b\":[true,\"\\u00E9\"]}";
    json_t *v = j("{ \"b\" : [true, \"\\u00e9\"], \"a\" : 1 }");
    json_t *w = j("{\"a\":1,\"b\":[true,\"\xc3\xa9\"]}");
    json_t *x = j("{\"a\":2,\"b\":[true,\"\xc3\xa9\"]}");
    (void)state;

    cd_canon_sha256(v, got);
    cd_sha256_hex(canon, strlen(canon), want);
    assert_string_equal(got, want);
    /* The same value written another way hashes the same... */
    cd_canon_sha256(w, other);
    assert_string_equal(other, want);
    /* ...and another value does not. */
    cd_canon_sha256(x, other);
    assert_string_not_equal(other, want);
    assert_int_equal(strlen(got), 64);
    json_decref(v);
    json_decref(w);
    json_decref(x);
}

static void test_deterministic(void **state)
{
    json_t *v = j("{\"k\":[1,{\"z\":null,\"a\":\"\xe2\x82\xac\"}],\"a\":-0}");
    char *first = cd_canon_json(v);
    (void)state;

    assert_non_null(first);
    for (int i = 0; i < 50; i++) {
        json_t *copy = json_deep_copy(v);
        char *again = cd_canon_json(copy);
        assert_string_equal(again, first);
        free(again);
        json_decref(copy);
    }
    free(first);
    json_decref(v);
}

/* cd_canon_string() writes strings byte for byte as cd_canon_json() does (the ledger's
 * hand-written canonical form depends on it). */
static void test_string_matches_jansson(void **state)
{
    (void)state;
    static const char *const samples[] = {"",
                                          "plain",
                                          "quote \" and back\\slash",
                                          "slash / stays",
                                          "\b\f\n\r\t",
                                          "\x01\x1f control",
                                          "\x7f del",
                                          "caf\xc3\xa9",
                                          "\xe2\x82\xac euro",
                                          "\xf0\x9f\x98\x80 emoji",
                                          "Mozilla/5.0 (X11; Linux x86_64) \"quoted\"",
                                          "\xe4\xbd\xa0\xe5\xa5\xbd \xd0\x9f\xd1\x80\xd0\xb8"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        json_t *j = json_string(samples[i]);
        assert_non_null(j);
        char *want = cd_canon_json(j);
        cd_buf got = {0};
        cd_canon_string(&got, samples[i]);
        assert_string_equal(got.data, want);
        cd_buf_free(&got);
        free(want);
        json_decref(j);
    }
}

/* issue 8 item 12: a raw User-Agent that is not UTF-8 is stored with its bad bytes as \xHH,
 * so that it is valid UTF-8 everywhere it goes (the hash, the export) and nothing drops it. */
static void test_text_copy_escapes_bad_bytes(void **state)
{
    char out[64];
    (void)state;
    assert_false(cd_canon_text_copy(out, sizeof out, "Mozilla\xff/5.0 \xc3\xa9t\xc3"));
    assert_string_equal(out, "Mozilla\\xFF/5.0 \xc3\xa9t\\xC3");
    /* A lone continuation byte, an overlong NUL and a surrogate are bytes, not text. */
    assert_false(cd_canon_text_copy(out, sizeof out, "\x80\xc0\x80\xed\xa0\x80ok"));
    assert_string_equal(out, "\\x80\\xC0\\x80\\xED\\xA0\\x80ok");
    assert_false(cd_canon_text_copy(out, sizeof out, NULL));
    assert_string_equal(out, "");
}

/* issue 8 item 12: text longer than the column is cut at a character boundary, never in
 * the middle of a UTF-8 sequence or of an escape. */
static void test_text_copy_cuts_at_boundary(void **state)
{
    char out[6];
    (void)state;
    /* "a" + two 3-byte characters = 7 bytes: only "a" and the first character fit in 5. */
    assert_true(cd_canon_text_copy(out, sizeof out, "a\xe2\x82\xac\xe2\x82\xac"));
    assert_string_equal(out, "a\xe2\x82\xac");
    /* "ab" + an escape of 4 characters does not fit in 5: the escape is left out whole. */
    assert_true(cd_canon_text_copy(out, sizeof out,
                                   "ab\xff"
                                   "c"));
    assert_string_equal(out, "ab");
    assert_false(cd_canon_text_copy(out, sizeof out, "abcde"));
    assert_string_equal(out, "abcde");
    assert_true(cd_canon_text_copy(out, sizeof out, "abcdef"));
    assert_string_equal(out, "abcde");
    /* 4-byte characters (emoji) at the edge. */
    char big[512];
    char in[1200] = "";
    for (int i = 0; i < 200; i++)
        strcat(in, "\xf0\x9f\x98\x80");
    assert_true(cd_canon_text_copy(big, sizeof big, in));
    assert_int_equal(strlen(big), 508); /* 127 whole characters; 511 would split one */
    json_t *v = json_string(big);       /* NULL if it were not valid UTF-8 */
    assert_non_null(v);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order_independent),
        cmocka_unit_test(test_string_matches_jansson),
        cmocka_unit_test(test_no_whitespace),
        cmocka_unit_test(test_nested_sorted_at_every_level),
        cmocka_unit_test(test_unicode_escaped),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_int_writers_match_printf),
        cmocka_unit_test(test_scalars_at_top_level),
        cmocka_unit_test(test_null_input),
        cmocka_unit_test(test_sha256_of_canonical_bytes),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_text_copy_escapes_bad_bytes),
        cmocka_unit_test(test_text_copy_cuts_at_boundary),
    };

    if (cd_crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
