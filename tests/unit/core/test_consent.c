/* tests/unit/core/test_consent.c -- core/consent.h pure rules: scopes, state names, the
 * precedence table of `check` and the transitions (DESIGN.md section 2: an opt-out at
 * any scope beats an opt-in below it; only an explicit override lifts an opt-out). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/consent.h"

/* ---- scopes ---- */

struct scope_case {
    const char *text;
    int kind;
    int64_t id;
};

static const struct scope_case valid_scopes[] = {
    {"all", CD_SCOPE_ALL, 0},
    {"group:1", CD_SCOPE_GROUP, 1},
    {"group:42", CD_SCOPE_GROUP, 42},
    {"group:9007199254740991", CD_SCOPE_GROUP, 9007199254740991LL}, /* 2^53 - 1 */
    {"type:1", CD_SCOPE_TYPE, 1},
    {"type:10", CD_SCOPE_TYPE, 10},
    {"type:9007199254740991", CD_SCOPE_TYPE, 9007199254740991LL},
};

static const char *const invalid_scopes[] = {
    "",
    "group:",
    "group:0",
    "group:-1",
    "group:+1",
    "group:01",
    "group:1x",
    "group:1 ",
    "group: 1",
    "group:1.0",
    "group:0x10",
    "group:9007199254740992", /* 2^53: no longer exact in every JSON client */
    "group:99999999999999999999",
    "type:",
    "type:0",
    "type:9007199254740992",
    "type:18446744073709551617", /* past int64: strtoll's ERANGE */
    "ALL",
    "All",
    " all",
    "all ",
    "all:1",
    "group",
    "type",
    "GROUP:1",
    "groups:1",
    "msgtype:1",
    "group:1:2",
};

static void test_scope_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_scopes / sizeof valid_scopes[0]; i++) {
        const struct scope_case *c = &valid_scopes[i];
        cd_scope sc = {.kind = CD_SCOPE_TYPE, .id = -7};
        cd_err err = {0};

        if (cd_scope_parse(c->text, "scope", &sc, &err) != 0 || (int)sc.kind != c->kind ||
            sc.id != c->id) {
            print_error("\"%s\": got kind %d id %lld (%s)\n", c->text, (int)sc.kind,
                        (long long)sc.id, err.msg);
            fail();
        }
    }
}

static void test_scope_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid_scopes / sizeof invalid_scopes[0]; i++) {
        cd_scope sc;
        cd_err err = {0};

        if (cd_scope_parse(invalid_scopes[i], "scope", &sc, &err) != -1 || err.code != CD_EINVAL ||
            strcmp(err.reason, "invalid_scope") != 0 || strcmp(err.field, "scope") != 0 ||
            err.msg[0] == '\0') {
            print_error("\"%s\" was accepted or failed wrongly: %d %s %s\n", invalid_scopes[i],
                        (int)err.code, err.reason, err.field);
            fail();
        }
    }
}

static void test_scope_parse_null(void **state)
{
    cd_scope sc;
    cd_err err = {0};
    (void)state;

    assert_int_equal(cd_scope_parse(NULL, "Scope", &sc, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    assert_string_equal(err.reason, "invalid_scope");
    assert_string_equal(err.field, "Scope"); /* the caller names its own field */
    /* A NULL err is allowed. */
    assert_int_equal(cd_scope_parse(NULL, "scope", &sc, NULL), -1);
    assert_int_equal(cd_scope_parse("group:0", "scope", &sc, NULL), -1);
}

static void test_scope_format_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_scopes / sizeof valid_scopes[0]; i++) {
        cd_scope sc;
        char out[CD_SCOPE_LEN];

        assert_int_equal(cd_scope_parse(valid_scopes[i].text, "scope", &sc, NULL), 0);
        cd_scope_format(sc, out);
        assert_string_equal(out, valid_scopes[i].text);
    }
}

static void test_scope_format_values(void **state)
{
    char out[CD_SCOPE_LEN];
    (void)state;

    cd_scope_format((cd_scope){.kind = CD_SCOPE_ALL, .id = 0}, out);
    assert_string_equal(out, "all");
    cd_scope_format((cd_scope){.kind = CD_SCOPE_GROUP, .id = 12}, out);
    assert_string_equal(out, "group:12");
    cd_scope_format((cd_scope){.kind = CD_SCOPE_TYPE, .id = 3}, out);
    assert_string_equal(out, "type:3");
    /* The widest value fits CD_SCOPE_LEN. */
    cd_scope_format((cd_scope){.kind = CD_SCOPE_GROUP, .id = INT64_MAX}, out);
    assert_string_equal(out, "group:9223372036854775807");
}

/* ---- states ---- */

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(cd_state_name(CD_STATE_NONE), "");
    assert_string_equal(cd_state_name(CD_STATE_PENDING), "pending");
    assert_string_equal(cd_state_name(CD_STATE_OPTED_IN), "opted_in");
    assert_string_equal(cd_state_name(CD_STATE_OPTED_OUT), "opted_out");
    assert_string_equal(cd_state_name((cd_state)42), "");
    assert_string_equal(cd_state_name((cd_state)-1), "");
}

static void test_state_parse_round_trip(void **state)
{
    (void)state;
    for (int s = CD_STATE_NONE; s <= CD_STATE_OPTED_OUT; s++)
        assert_int_equal(cd_state_parse(cd_state_name((cd_state)s)), s);
}

static void test_state_parse_unknown(void **state)
{
    static const char *const unknown[] = {"",        "none",      "OPTED_IN", "opted-in",
                                          "optedin", "opted_in ", " pending", "opted",
                                          "opt_out", "unknown"};
    (void)state;
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(cd_state_parse(unknown[i]), CD_STATE_NONE);
    assert_int_equal(cd_state_parse(NULL), CD_STATE_NONE);
}

/* ---- the precedence table ---- */

struct decide_case {
    cd_state all, scoped;
    bool scope_is_all;
    const char *want;
};

#define N CD_STATE_NONE
#define P CD_STATE_PENDING
#define I CD_STATE_OPTED_IN
#define O CD_STATE_OPTED_OUT

/* Every combination. For "all" itself only the account-wide state counts, whatever is
 * passed as `scoped` (callers pass the same state twice). */
static const struct decide_case decide_cases[] = {
    {N, N, true, "no_consent"},
    {N, P, true, "no_consent"},
    {N, I, true, "no_consent"},
    {N, O, true, "no_consent"},
    {P, N, true, "pending_confirmation"},
    {P, P, true, "pending_confirmation"},
    {P, I, true, "pending_confirmation"},
    {P, O, true, "pending_confirmation"},
    {I, N, true, "opted_in"},
    {I, P, true, "opted_in"},
    {I, I, true, "opted_in"},
    {I, O, true, "opted_in"},
    {O, N, true, "opted_out"},
    {O, P, true, "opted_out"},
    {O, I, true, "opted_out"},
    {O, O, true, "opted_out"},

    /* A group or type scope. */
    {N, N, false, "no_consent"},
    {N, P, false, "pending_confirmation"},
    {N, I, false, "opted_in"},
    {N, O, false, "opted_out"},
    {P, N, false, "pending_confirmation"},
    {P, P, false, "pending_confirmation"},
    {P, I, false, "opted_in"}, /* a confirmed scope opt-in stands on its own */
    {P, O, false, "opted_out"},
    {I, N, false, "opted_in"}, /* an all opt-in allows every scope not opted out */
    {I, P, false, "opted_in"},
    {I, I, false, "opted_in"},
    {I, O, false, "opted_out"}, /* a scope opt-out beats an all opt-in */
    {O, N, false, "opted_out"}, /* an opt-out of all beats every opt-in */
    {O, P, false, "opted_out"},
    {O, I, false, "opted_out"},
    {O, O, false, "opted_out"},
};

static void test_decide_table(void **state)
{
    (void)state;
    assert_int_equal(sizeof decide_cases / sizeof decide_cases[0], 32);
    for (size_t i = 0; i < sizeof decide_cases / sizeof decide_cases[0]; i++) {
        const struct decide_case *c = &decide_cases[i];
        const char *got = cd_consent_decide(c->all, c->scoped, c->scope_is_all);

        if (got == NULL || strcmp(got, c->want) != 0) {
            print_error("case %zu: all=%s scoped=%s scope_is_all=%d: want %s, got %s\n", i,
                        cd_state_name(c->all), cd_state_name(c->scoped), c->scope_is_all, c->want,
                        got ? got : "(null)");
            fail();
        }
        /* Only "opted_in" lets a message through. */
        assert_int_equal(cd_consent_reason_allows(got), strcmp(c->want, "opted_in") == 0);
    }
}

static void test_reason_allows(void **state)
{
    (void)state;
    assert_true(cd_consent_reason_allows("opted_in"));
    assert_false(cd_consent_reason_allows("opted_out"));
    assert_false(cd_consent_reason_allows("pending_confirmation"));
    assert_false(cd_consent_reason_allows("no_consent"));
    assert_false(cd_consent_reason_allows("invalid_number"));
    assert_false(cd_consent_reason_allows(""));
}

/* ---- transitions ---- */

struct transition_case {
    cd_state old, new_state;
    unsigned flags;
    int code; /* CD_OK when allowed */
    const char *reason;
};

#define OVR CD_CONSENT_OVERRIDE

static const struct transition_case transition_cases[] = {
    /* From nothing, anything but NONE. */
    {N, P, 0, CD_OK, NULL},
    {N, I, 0, CD_OK, NULL},
    {N, O, 0, CD_OK, NULL},
    {N, I, OVR, CD_OK, NULL},
    /* Pending: confirm, refuse, or ask again. */
    {P, P, 0, CD_OK, NULL},
    {P, I, 0, CD_OK, NULL},
    {P, O, 0, CD_OK, NULL},
    /* Opted in: asking again would weaken a real consent. */
    {I, I, 0, CD_OK, NULL},
    {I, O, 0, CD_OK, NULL},
    {I, P, 0, CD_ECONFLICT, "already_opted_in"},
    {I, P, OVR, CD_ECONFLICT, "already_opted_in"},
    /* Opted out: only an explicit override lifts it; repeating it is fine. */
    {O, O, 0, CD_OK, NULL},
    {O, O, OVR, CD_OK, NULL},
    {O, I, 0, CD_ECONFLICT, "opted_out"},
    {O, P, 0, CD_ECONFLICT, "opted_out"},
    {O, I, OVR, CD_OK, NULL},
    {O, P, OVR, CD_OK, NULL},
    /* Flags other than the override do not count as one. */
    {O, I, 2u, CD_ECONFLICT, "opted_out"},
    /* NONE is never a target. */
    {N, N, 0, CD_EINVAL, NULL},
    {P, N, 0, CD_EINVAL, NULL},
    {I, N, 0, CD_EINVAL, NULL},
    {O, N, 0, CD_EINVAL, NULL},
    {O, N, OVR, CD_EINVAL, NULL},
};

static void test_transition_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof transition_cases / sizeof transition_cases[0]; i++) {
        const struct transition_case *c = &transition_cases[i];
        cd_err err = {0};
        int rc = cd_consent_transition(c->old, c->new_state, c->flags, &err);
        bool ok = c->code == CD_OK ? rc == 0 && err.code == CD_OK
                                   : rc == -1 && (int)err.code == c->code && err.msg[0] != '\0' &&
                                         (c->reason == NULL || strcmp(err.reason, c->reason) == 0);

        if (!ok) {
            print_error("case %zu: %s -> %s flags %u: want code %d %s, got rc %d code %d %s\n", i,
                        cd_state_name(c->old), cd_state_name(c->new_state), c->flags, c->code,
                        c->reason ? c->reason : "", rc, (int)err.code, err.reason);
            fail();
        }
        /* The verdict does not depend on whether the caller wants the error. */
        assert_int_equal(cd_consent_transition(c->old, c->new_state, c->flags, NULL), rc);
    }
}

static void test_transition_error_field(void **state)
{
    cd_err err = {0};
    (void)state;

    assert_int_equal(cd_consent_transition(O, I, 0, &err), -1);
    assert_string_equal(err.field, "state");
    assert_string_equal(cd_err_reason(&err), "opted_out");
    memset(&err, 0, sizeof err);
    assert_int_equal(cd_consent_transition(I, P, 0, &err), -1);
    assert_string_equal(cd_err_reason(&err), "already_opted_in");
}

#undef N
#undef P
#undef I
#undef O

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_parse_valid),
        cmocka_unit_test(test_scope_parse_invalid),
        cmocka_unit_test(test_scope_parse_null),
        cmocka_unit_test(test_scope_format_round_trip),
        cmocka_unit_test(test_scope_format_values),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_state_parse_round_trip),
        cmocka_unit_test(test_state_parse_unknown),
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_reason_allows),
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_transition_error_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
