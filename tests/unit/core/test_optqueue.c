/* tests/unit/core/test_optqueue.c -- core/optqueue.h (issue 12): the DeleteOptOut rule as
 * a table (seed 002, "DeleteOptOut Rules"), and the queue applied all or nothing on a real
 * SQLite store: unknown types refuse everything, the rule holds across submissions, and a
 * storage fault at any point leaves nothing behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/account.h"
#include "core/optqueue.h"
#include "core/usecase.h"
#include "store/store.h"
#include "store/store_int.h" /* cd_store__fail_after */

#include "../testutil.h"

#define PHONE "+16465550123"

/* ---- the rule ---- */

#define N CD_STATE_NONE
#define P CD_STATE_PENDING
#define I CD_STATE_OPTED_IN
#define O CD_STATE_OPTED_OUT

static void test_decide_table(void **state)
{
    (void)state;
    static const struct {
        cd_state all, type, want;
        bool del;
        cd_opt_outcome expect;
    } rows[] = {
        /* seed 002: "DeleteOptOut not set to 1 or omitted: if an OUT exists, the IN is not
         * written; the OUT remains" */
        {N, O, I, false, CD_OPT_KEPT_OUT},
        {I, O, I, false, CD_OPT_KEPT_OUT},
        /* "DeleteOptOut = 1: if an OUT exists, it is overwritten with the IN" */
        {N, O, I, true, CD_OPT_REPLACED_OUT},
        {I, O, I, true, CD_OPT_REPLACED_OUT},
        /* no OUT: the IN is written, DeleteOptOut or not */
        {N, N, I, false, CD_OPT_WRITTEN},
        {N, N, I, true, CD_OPT_WRITTEN},
        {N, P, I, false, CD_OPT_WRITTEN},
        {N, I, I, false, CD_OPT_WRITTEN},
        {I, N, I, false, CD_OPT_WRITTEN},
        /* a STOP (all) is not lifted by one type's opt, even with DeleteOptOut */
        {O, N, I, false, CD_OPT_KEPT_OUT_ALL},
        {O, N, I, true, CD_OPT_KEPT_OUT_ALL},
        {O, O, I, true, CD_OPT_KEPT_OUT_ALL},
        /* an OUT is always written */
        {N, N, O, false, CD_OPT_WRITTEN},
        {N, I, O, true, CD_OPT_WRITTEN},
        {O, O, O, false, CD_OPT_WRITTEN},
        {I, I, O, false, CD_OPT_WRITTEN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cd_opt o = {.type_id = 6, .state = rows[i].want, .delete_opt_out = rows[i].del};
        cd_opt_outcome got = cd_opt_decide(rows[i].all, rows[i].type, &o);
        if (got != rows[i].expect)
            fail_msg("row %zu: got %s, want %s", i, cd_opt_outcome_name(got),
                     cd_opt_outcome_name(rows[i].expect));
    }
    assert_string_equal(cd_opt_outcome_name(CD_OPT_KEPT_OUT), "kept_opt_out");
    assert_string_equal(cd_opt_outcome_name(CD_OPT_UNKNOWN_TYPE), "unknown_type");
}

#undef N
#undef P
#undef I
#undef O

/* ---- on a store ---- */

typedef struct fixture {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_account acme, other;
} fixture;

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    cd_account *a = arg;
    char key[CD_KEY_LEN];
    cd_account_in in = {.name = a->name};
    return cd_account_create(db, &in, a, key, err);
}

typedef struct type_job {
    int64_t account_id, id;
} type_job;

static int job_type(cd_db *db, void *arg, cd_err *err)
{
    type_job *t = arg;
    cd_named n = {.id = t->id};
    snprintf(n.name, sizeof n.name, "type %lld", (long long)t->id);
    return cd_named_create(db, "type", t->account_id, &n, err);
}

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof *f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, "optqueue.db");
    snprintf(f->acme.name, sizeof f->acme.name, "acme");
    snprintf(f->other.name, sizeof f->other.name, "other");
    assert_int_equal(cd_store_run(f->store, job_account, &f->acme, NULL), 0);
    assert_int_equal(cd_store_run(f->store, job_account, &f->other, NULL), 0);
    type_job t[] = {{f->acme.id, 6}, {f->acme.id, 7}, {f->other.id, 4194}};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(cd_store_run(f->store, job_type, &t[i], NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cd_store_close(f->store);
    tu_rmtree(f->dir);
    test_free(f);
    return 0;
}

typedef struct apply_job {
    int64_t account_id;
    cd_opt opts[4];
    size_t n;
    bool applied;
} apply_job;

/* What api/omeda.c does, in one job here: check, then apply when every type is known. */
static int job_apply(cd_db *db, void *arg, cd_err *err)
{
    apply_job *j = arg;
    size_t bad;
    cd_provenance p = {.surface = "test", .channel = "api", .ext_ref = "sub-1"};
    if (cd_optqueue_check(db, j->account_id, j->opts, j->n, &bad, err) != 0)
        return -1;
    j->applied = bad == 0;
    return bad ? 0 : cd_optqueue_apply(db, j->account_id, PHONE, j->opts, j->n, &p, err);
}

static int job_apply_unchecked(cd_db *db, void *arg, cd_err *err)
{
    apply_job *j = arg;
    cd_provenance p = {.surface = "test", .channel = "api"};
    return cd_optqueue_apply(db, j->account_id, PHONE, j->opts, j->n, &p, err);
}

static cd_opt opt(int64_t type, cd_state s, bool del)
{
    return (cd_opt){.type_id = type, .state = s, .delete_opt_out = del};
}

/* The committed state of PHONE's type scope in acme ("" when none, "-" without a contact). */
static const char *state_of(fixture *f, int64_t account_id, int64_t type)
{
    static char out[16];
    char scope[CD_SCOPE_LEN];
    cd_contact c;
    cd_consent k;
    cd_db *db = cd_store_reader(f->store);
    assert_non_null(db);
    snprintf(out, sizeof out, "-");
    if (cd_store_contact_by_phone(db, account_id, PHONE, &c, NULL) == 0) {
        cd_scope_format((cd_scope){.kind = CD_SCOPE_TYPE, .id = type}, scope);
        out[0] = '\0';
        if (cd_store_consent_get(db, account_id, c.id, scope, &k, NULL) == 0)
            snprintf(out, sizeof out, "%s", k.state);
        cd_contact_clear(&c);
    }
    cd_store_release(f->store, db);
    return out;
}

static void test_unknown_type_refuses_all(void **state)
{
    fixture *f = *state;
    /* 4194 exists, but in the other account: not one of acme's types. */
    apply_job j = {.account_id = f->acme.id,
                   .opts = {opt(6, CD_STATE_OPTED_IN, false), opt(4194, CD_STATE_OPTED_IN, false)},
                   .n = 2};
    assert_int_equal(cd_store_run(f->store, job_apply, &j, NULL), 0);
    assert_false(j.applied);
    assert_int_equal(j.opts[0].outcome, CD_OPT_KNOWN);
    assert_string_equal(cd_opt_outcome_name(j.opts[0].outcome), "not_applied");
    assert_int_equal(j.opts[1].outcome, CD_OPT_UNKNOWN_TYPE);
    assert_int_equal(j.opts[0].event_seq, 0);
    assert_string_equal(state_of(f, f->acme.id, 6), "-"); /* not even the contact */

    /* Opts that were never checked are refused whole: apply writes nothing unchecked. */
    cd_err err = {0};
    j = (apply_job){.account_id = f->acme.id,
                    .opts = {opt(6, CD_STATE_OPTED_IN, false), opt(99, CD_STATE_OPTED_IN, false)},
                    .n = 2};
    assert_int_equal(cd_store_run(f->store, job_apply_unchecked, &j, &err), -1);
    assert_int_equal(err.code, CD_EINTERNAL);
    assert_string_equal(state_of(f, f->acme.id, 6), "-");
}

typedef struct check_job {
    int64_t account_id;
    cd_opt opts[4];
    size_t n, bad;
} check_job;

static int job_check(cd_db *db, void *arg, cd_err *err)
{
    check_job *j = arg;
    return cd_optqueue_check(db, j->account_id, j->opts, j->n, &j->bad, err);
}

/* issue 12: ids close together are checked by one range read; the answer is the same. */
static void test_check_ranged(void **state)
{
    fixture *f = *state;
    check_job j = {.account_id = f->acme.id,
                   .opts = {opt(7, CD_STATE_OPTED_IN, false), opt(8, CD_STATE_OPTED_IN, false),
                            opt(6, CD_STATE_OPTED_OUT, false), opt(5, CD_STATE_OPTED_IN, false)},
                   .n = 4};
    assert_int_equal(cd_store_run(f->store, job_check, &j, NULL), 0);
    assert_int_equal(j.bad, 2);
    assert_int_equal(j.opts[0].outcome, CD_OPT_KNOWN);
    assert_int_equal(j.opts[1].outcome, CD_OPT_UNKNOWN_TYPE);
    assert_int_equal(j.opts[2].outcome, CD_OPT_KNOWN);
    assert_int_equal(j.opts[3].outcome, CD_OPT_UNKNOWN_TYPE);

    /* Another account's types in the window are not this account's. */
    j = (check_job){.account_id = f->other.id,
                    .opts = {opt(4194, CD_STATE_OPTED_IN, false),
                             opt(4195, CD_STATE_OPTED_IN, false), opt(7, CD_STATE_OPTED_IN, false)},
                    .n = 2};
    assert_int_equal(cd_store_run(f->store, job_check, &j, NULL), 0);
    assert_int_equal(j.bad, 1);
    assert_int_equal(j.opts[0].outcome, CD_OPT_KNOWN);
    assert_int_equal(j.opts[1].outcome, CD_OPT_UNKNOWN_TYPE);
    j.n = 3; /* 7 is acme's; the window 7..4195 is too wide for one read */
    assert_int_equal(cd_store_run(f->store, job_check, &j, NULL), 0);
    assert_int_equal(j.bad, 2);
    assert_int_equal(j.opts[2].outcome, CD_OPT_UNKNOWN_TYPE);
}

/* issue 12: a type once checked is remembered by the store (types are never deleted), for
 * its own account only; a type that was not found is never remembered. */
static void test_check_remembers_types(void **state)
{
    fixture *f = *state;
    cd_db *db = cd_store_reader(f->store);
    assert_false(cd_store_type_known(db, f->acme.id, 6));
    check_job j = {.account_id = f->acme.id,
                   .opts = {opt(6, CD_STATE_OPTED_IN, false), opt(9, CD_STATE_OPTED_IN, false)},
                   .n = 2};
    assert_int_equal(cd_store_run(f->store, job_check, &j, NULL), 0);
    assert_int_equal(j.bad, 1);
    assert_true(cd_store_type_known(db, f->acme.id, 6));
    assert_false(cd_store_type_known(db, f->acme.id, 9));
    assert_false(cd_store_type_known(db, f->other.id, 6));

    /* Remembered types answer without a read: with every read failing, 6 is still known
     * and an unknown type still needs (and fails) its read. */
    cd_store__fail_after(f->store, 1, true, CD_ESTORE);
    j = (check_job){.account_id = f->acme.id, .opts = {opt(6, CD_STATE_OPTED_OUT, false)}, .n = 1};
    assert_int_equal(job_check(db, &j, NULL), 0);
    assert_int_equal(j.bad, 0);
    assert_int_equal(j.opts[0].outcome, CD_OPT_KNOWN);
    j = (check_job){.account_id = f->acme.id, .opts = {opt(7, CD_STATE_OPTED_IN, false)}, .n = 1};
    cd_err err = {0};
    assert_int_equal(job_check(db, &j, &err), -1);
    assert_int_equal(err.code, CD_ESTORE);
    cd_store__fail_after(f->store, 0, false, CD_ESTORE);
    cd_store_release(f->store, db);
}

static void test_rule_across_submissions(void **state)
{
    fixture *f = *state;
    apply_job j = {.account_id = f->acme.id, .opts = {opt(6, CD_STATE_OPTED_OUT, false)}, .n = 1};
    assert_int_equal(cd_store_run(f->store, job_apply, &j, NULL), 0);
    assert_true(j.applied);
    assert_int_equal(j.opts[0].outcome, CD_OPT_WRITTEN);
    assert_int_equal(j.opts[0].event_seq, 1);
    assert_string_equal(state_of(f, f->acme.id, 6), "opted_out");

    /* IN without DeleteOptOut: applied (a success), but not written. Type 7 is. */
    j = (apply_job){.account_id = f->acme.id,
                    .opts = {opt(6, CD_STATE_OPTED_IN, false), opt(7, CD_STATE_OPTED_IN, false)},
                    .n = 2};
    assert_int_equal(cd_store_run(f->store, job_apply, &j, NULL), 0);
    assert_true(j.applied);
    assert_int_equal(j.opts[0].outcome, CD_OPT_KEPT_OUT);
    assert_int_equal(j.opts[0].event_seq, 0);
    assert_int_equal(j.opts[1].outcome, CD_OPT_WRITTEN);
    assert_int_equal(j.opts[1].event_seq, 2);
    assert_string_equal(state_of(f, f->acme.id, 6), "opted_out");
    assert_string_equal(state_of(f, f->acme.id, 7), "opted_in");

    /* With DeleteOptOut: the OUT is replaced. */
    j = (apply_job){.account_id = f->acme.id, .opts = {opt(6, CD_STATE_OPTED_IN, true)}, .n = 1};
    assert_int_equal(cd_store_run(f->store, job_apply, &j, NULL), 0);
    assert_int_equal(j.opts[0].outcome, CD_OPT_REPLACED_OUT);
    assert_int_equal(j.opts[0].event_seq, 3);
    assert_string_equal(state_of(f, f->acme.id, 6), "opted_in");

    /* In one queue, OUT then IN of the same type: the IN sees the OUT just written. */
    j = (apply_job){.account_id = f->acme.id,
                    .opts = {opt(7, CD_STATE_OPTED_OUT, false), opt(7, CD_STATE_OPTED_IN, false)},
                    .n = 2};
    assert_int_equal(cd_store_run(f->store, job_apply, &j, NULL), 0);
    assert_int_equal(j.opts[1].outcome, CD_OPT_KEPT_OUT);
    assert_string_equal(state_of(f, f->acme.id, 7), "opted_out");
    /* The other account sees none of it. */
    assert_string_equal(state_of(f, f->other.id, 6), "-");
}

/* A storage fault anywhere in the queue: the job fails and nothing of it is committed. */
static void test_fault_anywhere_leaves_nothing(void **state)
{
    fixture *f = *state;
    int n = 1;
    for (;; n++) {
        apply_job j = {
            .account_id = f->acme.id,
            .opts = {opt(6, CD_STATE_OPTED_IN, false), opt(7, CD_STATE_OPTED_OUT, false)},
            .n = 2};
        cd_err err = {0};
        cd_store__fail_after(f->store, n, false, 0);
        int rc = cd_store_run(f->store, job_apply, &j, &err);
        int fired = cd_store__faults_fired(f->store);
        cd_store__fail_after(f->store, 0, false, 0);
        if (fired == 0) {
            assert_int_equal(rc, 0); /* every call position has failed once */
            break;
        }
        assert_int_equal(rc, -1);
        assert_string_equal(state_of(f, f->acme.id, 6), "-");
        assert_string_equal(state_of(f, f->acme.id, 7), "-");
    }
    assert_true(n > 5);
    assert_string_equal(state_of(f, f->acme.id, 6), "opted_in");
    assert_string_equal(state_of(f, f->acme.id, 7), "opted_out");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test_setup_teardown(test_unknown_type_refuses_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_ranged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_remembers_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_across_submissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_anywhere_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
