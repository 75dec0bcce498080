/* tests/unit/core/test_batch.c -- issue 11: the batch contact use case (core/batch.h) on a
 * real SQLite store: statuses, keep_existing, in-batch duplicates, the blacklist (no group
 * opt-in for a contact opted out of all, drop_blacklisted), atomicity, and the ledger head
 * written once per batch (the chain and its signature verify, also after a failed batch).
 * Also the +1 fast path of the phone check, which must answer exactly as the full reading. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/account.h"
#include "core/batch.h"
#include "core/consent.h"
#include "core/ledger.h"
#include "core/phone.h"
#include "core/usecase.h"
#include "store/store.h"

#include "../testutil.h"

typedef struct fixture {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_account acme;
} fixture;

static const unsigned char test_key[CD_LEDGER_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    cd_account *a = arg;
    char key[CD_KEY_LEN];
    cd_account_in in = {.name = a->name};
    return cd_account_create(db, &in, a, key, err) != 0 ? -1 : cd_ledger_sign_account(db, a, err);
}

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof *f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, "batch.db");
    cd_store_set_ledger_key(f->store, test_key);
    snprintf(f->acme.name, sizeof f->acme.name, "acme");
    assert_int_equal(cd_store_run(f->store, job_account, &f->acme, NULL), 0);
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

/* ---- helpers ---- */

typedef struct batch_job {
    int64_t account_id;
    cd_batch *b;
} batch_job;

static int job_batch(cd_db *db, void *arg, cd_err *err)
{
    batch_job *j = arg;
    return cd_contact_batch(db, j->account_id, j->b, err);
}

static int run(fixture *f, cd_batch *b, cd_err *err)
{
    batch_job j = {f->acme.id, b};
    b->prov = (cd_provenance){.surface = "test", .channel = "api", .credential_id = "key_t"};
    return cd_store_run(f->store, job_batch, &j, err);
}

static void item(cd_batch_item *it, const char *phone, const char *first_name)
{
    memset(it, 0, sizeof *it);
    snprintf(it->phone, sizeof it->phone, "%s", phone);
    if (first_name) {
        it->has[CD_CF_FIRST_NAME] = true;
        it->value[CD_CF_FIRST_NAME] = first_name;
    }
}

typedef struct record_job {
    int64_t account_id;
    cd_consent_request rq;
} record_job;

static int job_record(cd_db *db, void *arg, cd_err *err)
{
    record_job *j = arg;
    return cd_consent_record(db, j->account_id, &j->rq, NULL, NULL, err);
}

static void record(fixture *f, const char *phone, const char *scope, cd_state state)
{
    record_job j = {.account_id = f->acme.id};
    j.rq.phone = phone;
    j.rq.state = state;
    j.rq.prov = (cd_provenance){.surface = "test", .channel = "sms"};
    assert_int_equal(cd_scope_parse(scope, "scope", &j.rq.scope, NULL), 0);
    cd_err err = {0};
    if (cd_store_run(f->store, job_record, &j, &err) != 0)
        fail_msg("record %s %s: %s", phone, scope, err.msg);
}

/* Reads a contact; false when it does not exist. The caller clears *c. */
static bool find(fixture *f, const char *phone, cd_contact *c)
{
    cd_db *db = cd_store_reader(f->store);
    bool ok = cd_store_contact_by_phone(db, f->acme.id, phone, c, NULL) == 0;
    cd_store_release(f->store, db);
    return ok;
}

static cd_state state_of(fixture *f, int64_t contact_id, cd_scope scope)
{
    cd_state s = CD_STATE_NONE;
    cd_db *db = cd_store_reader(f->store);
    assert_int_equal(cd_consent_state(db, f->acme.id, contact_id, scope, &s, NULL), 0);
    cd_store_release(f->store, db);
    return s;
}

static bool member(const cd_contact *c, int64_t gid)
{
    size_t i;
    json_t *g;
    json_array_foreach (c->groups, i, g)
        if (json_integer_value(g) == gid)
            return true;
    return false;
}

static cd_ledger_report verify(fixture *f)
{
    cd_ledger_report r;
    cd_err err = {0};
    cd_db *db = cd_store_reader(f->store);
    if (cd_ledger_verify(db, f->acme.id, &r, &err) != 0)
        fail_msg("cd_ledger_verify: %s", err.msg);
    cd_store_release(f->store, db);
    assert_true(r.signature_checked);
    if (!r.ok)
        fail_msg("ledger: %s at seq %lld", r.problem, (long long)r.seq);
    return r;
}

/* ---- the rules ---- */

static void test_statuses_and_keep_existing(void **state)
{
    fixture *f = *state;
    cd_batch_item it[2];
    item(&it[0], "+16465550101", "Ann");
    item(&it[1], "+16465550102", "Bob");
    cd_batch b = {.list = "L1", .tag = "vip", .items = it, .n = 2};
    cd_err err = {0};
    assert_int_equal(run(f, &b, &err), 0);
    assert_int_equal(it[0].status, CD_BATCH_ADDED);
    assert_int_equal(it[1].status, CD_BATCH_ADDED);
    assert_true(b.group_created);
    assert_int_equal(b.opted_in, 2);
    cd_contact c;
    assert_true(find(f, "+16465550101", &c));
    assert_true(member(&c, b.group_id));
    assert_string_equal(json_string_value(json_array_get(c.tags, 0)), "vip");
    cd_scope g = {.kind = CD_SCOPE_GROUP, .id = b.group_id};
    assert_int_equal(state_of(f, c.id, g), CD_STATE_OPTED_IN);
    cd_contact_clear(&c);

    /* again: updated, the same group, no second opt-in */
    item(&it[0], "+16465550101", "Anna");
    item(&it[1], "+16465550103", NULL);
    int64_t gid = b.group_id;
    assert_int_equal(run(f, &b, &err), 0);
    assert_int_equal(it[0].status, CD_BATCH_UPDATED);
    assert_int_equal(it[1].status, CD_BATCH_ADDED);
    assert_int_equal(b.group_id, gid);
    assert_false(b.group_created);
    assert_int_equal(b.opted_in, 1);
    assert_true(find(f, "+16465550101", &c));
    assert_string_equal(c.first_name, "Anna");
    cd_contact_clear(&c);

    /* keep_existing: skipped, untouched; a new number is still added */
    item(&it[0], "+16465550101", "Nope");
    item(&it[1], "+16465550104", NULL);
    b.keep_existing = true;
    b.list = "L2";
    assert_int_equal(run(f, &b, &err), 0);
    assert_int_equal(it[0].status, CD_BATCH_SKIPPED);
    assert_int_equal(it[1].status, CD_BATCH_ADDED);
    assert_true(find(f, "+16465550101", &c));
    assert_string_equal(c.first_name, "Anna");
    assert_false(member(&c, b.group_id));
    assert_int_equal(state_of(f, c.id, (cd_scope){.kind = CD_SCOPE_GROUP, .id = b.group_id}),
                     CD_STATE_NONE);
    cd_contact_clear(&c);
    verify(f);
}

static void test_duplicates(void **state)
{
    fixture *f = *state;
    cd_batch_item it[4];
    item(&it[0], "+16465550111", "First");
    item(&it[1], "+16465550112", NULL);
    item(&it[2], "+16465550111", "Second");
    item(&it[3], "+16465550111", "Third");
    cd_batch b = {.list = "dups", .items = it, .n = 4};
    assert_int_equal(run(f, &b, NULL), 0);
    assert_int_equal(it[0].first, 0);
    assert_int_equal(it[1].first, 1);
    assert_int_equal(it[2].first, 0);
    assert_int_equal(it[3].first, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(it[i].status, CD_BATCH_ADDED);
    assert_int_equal(it[2].contact_id, it[0].contact_id);
    assert_int_equal(b.opted_in, 2);
    cd_contact c;
    assert_true(find(f, "+16465550111", &c));
    assert_string_equal(c.first_name, "First");
    cd_contact_clear(&c);
}

static void test_blacklist(void **state)
{
    fixture *f = *state;
    record(f, "+16465550121", "all", CD_STATE_OPTED_OUT); /* a STOP, say */
    cd_batch_item it[2];
    item(&it[0], "+16465550121", "Stopped");
    item(&it[1], "+16465550122", NULL);
    cd_batch b = {.list = "bl", .items = it, .n = 2};
    assert_int_equal(run(f, &b, NULL), 0);
    /* without drop_blacklisted: updated and a member, but never a group opt-in */
    assert_int_equal(it[0].status, CD_BATCH_UPDATED);
    assert_int_equal(b.opted_in, 1);
    cd_contact c;
    assert_true(find(f, "+16465550121", &c));
    assert_true(member(&c, b.group_id));
    cd_scope g = {.kind = CD_SCOPE_GROUP, .id = b.group_id};
    assert_int_equal(state_of(f, c.id, g), CD_STATE_NONE);
    assert_int_equal(state_of(f, c.id, (cd_scope){.kind = CD_SCOPE_ALL}), CD_STATE_OPTED_OUT);
    cd_contact_clear(&c);

    /* with it: skipped and taken out of the list it is in */
    item(&it[0], "+16465550121", "Changed");
    item(&it[1], "+16465550123", NULL);
    b.drop_blacklisted = true;
    assert_int_equal(run(f, &b, NULL), 0);
    assert_int_equal(it[0].status, CD_BATCH_SKIPPED);
    assert_int_equal(it[1].status, CD_BATCH_ADDED);
    assert_int_equal(b.removed, 1);
    assert_true(find(f, "+16465550121", &c));
    assert_false(member(&c, b.group_id));
    assert_string_equal(c.first_name, "Stopped");
    cd_contact_clear(&c);

    /* a group opt-out is not lifted either */
    record(f, "+16465550122", "all", CD_STATE_OPTED_IN);
    char scope[CD_SCOPE_LEN];
    cd_scope_format(g, scope);
    record(f, "+16465550122", scope, CD_STATE_OPTED_OUT);
    item(&it[0], "+16465550122", NULL);
    b.n = 1;
    b.drop_blacklisted = false;
    assert_int_equal(run(f, &b, NULL), 0);
    assert_int_equal(it[0].status, CD_BATCH_UPDATED);
    assert_int_equal(b.opted_in, 0);
    assert_int_equal(state_of(f, it[0].contact_id, g), CD_STATE_OPTED_OUT);
    verify(f);
}

/* A contact that holds the most tags it may, so that a batch's tag is one too many for it;
 * the ledger as it stands then. */
static cd_ledger_report contact_with_every_tag(fixture *f, const char *phone)
{
    cd_batch_item full;
    item(&full, phone, NULL);
    cd_batch b = {.items = &full, .n = 1};
    char names[CD_CONTACT_MAX_TAGS][8];
    for (int i = 0; i < CD_CONTACT_MAX_TAGS; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        b.tag = names[i];
        assert_int_equal(run(f, &b, NULL), 0);
    }
    return verify(f);
}

static void test_failure_takes_everything_back(void **state)
{
    fixture *f = *state;
    cd_ledger_report before = contact_with_every_tag(f, "+16465550131");

    cd_batch_item it[3];
    item(&it[0], "+16465550132", "Applied first");
    item(&it[1], "+16465550131", NULL);
    item(&it[2], "+16465550133", NULL);
    cd_batch bad = {.list = "tx", .tag = "one_more", .items = it, .n = 3};
    cd_err err = {0};
    assert_int_equal(run(f, &bad, &err), -1);
    assert_int_equal(bad.failed, 1);
    assert_string_equal(err.reason, "too_many_tags");
    cd_contact c;
    assert_false(find(f, "+16465550132", &c));
    assert_false(find(f, "+16465550133", &c));

    /* the batch's head was dropped with it: the next event chains to the last durable one */
    assert_int_equal(verify(f).events, before.events);
    record(f, "+16465550134", "all", CD_STATE_OPTED_IN);
    assert_int_equal(verify(f).events, before.events + 1);
}

static void test_ledger_head_once_per_batch(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    cd_batch_item *it = test_calloc(N, sizeof *it);
    for (int i = 0; i < N; i++) {
        char p[CD_PHONE_MAX];
        snprintf(p, sizeof p, "+1917200%04d", i);
        item(&it[i], p, NULL);
    }
    cd_batch b = {.list = "many", .items = it, .n = N};
    assert_int_equal(run(f, &b, NULL), 0);
    assert_int_equal(b.opted_in, N);
    cd_ledger_report r = verify(f); /* every link and the signed head */
    assert_int_equal(r.events, N);
    /* a batch without a list writes no event and leaves the head as it was */
    b.list = NULL;
    assert_int_equal(run(f, &b, NULL), 0);
    assert_int_equal(verify(f).events, N);
    record(f, "+16465550141", "all", CD_STATE_OPTED_IN);
    assert_int_equal(verify(f).events, N + 1);
    test_free(it);
}

/* ---- issue 11: rows kept and written many to a statement (store/sqlite_rows.c) ---- */

/* A failing item after more than one chunk of new rows has been written: all of it goes. */
static void test_failure_after_flushed_chunks(void **state)
{
    fixture *f = *state;
    cd_ledger_report before = contact_with_every_tag(f, "+16465550151");
    enum { N = 301 };
    cd_batch_item *it = test_calloc(N, sizeof *it);
    for (int i = 0; i < N - 1; i++) {
        char p[CD_PHONE_MAX];
        snprintf(p, sizeof p, "+1917300%04d", i);
        item(&it[i], p, "New");
    }
    item(&it[N - 1], "+16465550151", NULL); /* one tag too many: fails */
    cd_batch bad = {.list = "chunks", .tag = "one_more", .items = it, .n = N};
    cd_err err = {0};
    assert_int_equal(run(f, &bad, &err), -1);
    assert_int_equal(bad.failed, N - 1);
    cd_contact c;
    assert_false(find(f, "+19173000000", &c));
    assert_false(find(f, "+19173000299", &c));
    assert_int_equal(verify(f).events, before.events);
    /* the same numbers again, without the bad one: all applied, ids in order */
    bad.n = N - 1;
    assert_int_equal(run(f, &bad, &err), 0);
    int64_t prev = 0;
    for (int i = 0; i < N - 1; i++) {
        assert_int_equal(it[i].status, CD_BATCH_ADDED);
        if (prev)
            assert_int_equal(it[i].contact_id, prev + 1);
        prev = it[i].contact_id;
    }
    assert_true(find(f, "+19173000299", &c));
    assert_int_equal(c.id, prev);
    assert_string_equal(c.first_name, "New");
    assert_true(member(&c, bad.group_id));
    cd_contact_clear(&c);
    assert_int_equal(verify(f).events, before.events + N - 1);
    test_free(it);
}

typedef struct rows_job {
    int64_t account_id;
    bool write;
    int64_t id;
    bool read_ok; /* what job_rows read back was what it kept */
} rows_job;

/* Keeps a new contact and a consent, reads both back through the same connection, then ends
 * with j->write. Runs on the writer's thread: no cmocka assertions here. */
static int job_rows(cd_db *db, void *arg, cd_err *err)
{
    rows_job *j = arg;
    if (cd_store_rows_defer(db, err) != 0)
        return -1;
    cd_contact c = {.account_id = j->account_id, .created_ms = 1, .updated_ms = 2};
    snprintf(c.phone, sizeof c.phone, "+16465550161");
    c.first_name = "Kept";
    c.tags = json_pack("[s]", "t");
    int rc = cd_store_contact_put(db, &c, err);
    json_decref(c.tags);
    j->id = c.id;
    cd_consent k = {.scope = "all", .state = "opted_in", .updated_ms = 3}, got;
    cd_contact back = {0};
    if (rc == 0)
        rc = cd_store_consent_put(db, j->account_id, c.id, &k, err);
    if (rc == 0)
        rc = cd_store_consent_get(db, j->account_id, c.id, "all", &got, err);
    if (rc == 0)
        rc = cd_store_contact_by_phone(db, j->account_id, c.phone, &back, err);
    j->read_ok = rc == 0 && strcmp(got.state, "opted_in") == 0 && back.id == c.id &&
                 back.first_name && strcmp(back.first_name, "Kept") == 0 &&
                 strcmp(json_string_value(json_array_get(back.tags, 0)), "t") == 0;
    cd_contact_clear(&back);
    if (rc != 0) {
        cd_store_rows_end(db, false, NULL);
        return -1;
    }
    return cd_store_rows_end(db, j->write, err);
}

/* Keeps a new contact and ends without writing it (what a failing job does). */
static int job_rows_drop(cd_db *db, void *arg, cd_err *err)
{
    rows_job *j = arg;
    if (cd_store_rows_defer(db, err) != 0)
        return -1;
    cd_contact c = {.account_id = j->account_id, .created_ms = 1, .updated_ms = 2};
    snprintf(c.phone, sizeof c.phone, "+16465550162");
    int rc = cd_store_contact_put(db, &c, err);
    j->id = c.id;
    cd_store_rows_end(db, false, NULL);
    return rc;
}

static void test_rows_read_back_and_drop(void **state)
{
    fixture *f = *state;
    rows_job j = {.account_id = f->acme.id, .write = true};
    cd_err err = {0};
    assert_int_equal(cd_store_run(f->store, job_rows, &j, &err), 0);
    assert_true(j.read_ok);
    cd_contact c;
    assert_true(find(f, "+16465550161", &c));
    assert_int_equal(c.id, j.id);
    assert_int_equal(c.created_ms, 1);
    assert_string_equal(c.first_name, "Kept");
    cd_contact_clear(&c);
    cd_scope all = {.kind = CD_SCOPE_ALL};
    assert_int_equal(state_of(f, j.id, all), CD_STATE_OPTED_IN);

    /* dropped: not stored, and its id is the next contact's again */
    rows_job d = {.account_id = f->acme.id};
    assert_int_equal(cd_store_run(f->store, job_rows_drop, &d, &err), 0);
    assert_int_equal(d.id, j.id + 1);
    assert_false(find(f, "+16465550162", &c));
    d.id = 0;
    assert_int_equal(cd_store_run(f->store, job_rows_drop, &d, &err), 0);
    assert_int_equal(d.id, j.id + 1);

    /* a number that is taken is refused when the kept row is written */
    j.write = true;
    assert_int_equal(cd_store_run(f->store, job_rows, &j, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
}

/* ---- the +1 fast path of the phone check ---- */

/* "+1NXXNXXXXXX" skips Parse(); "+1 NXX NXX XXXX" (with spaces) does not. Both readings
 * must give the same answer, failures included. */
static void test_phone_fast_path_same_answer(void **state)
{
    (void)state;
    static const char *const exchanges[] = {"555", "100", "911", "234", "876", "020"};
    int ok = 0;
    for (int area = 200; area <= 999; area += 3) {
        for (size_t e = 0; e < sizeof exchanges / sizeof exchanges[0]; e++) {
            char fast[32], slow[40], a[CD_PHONE_MAX], b[CD_PHONE_MAX];
            snprintf(fast, sizeof fast, "+1%d%s0123", area, exchanges[e]);
            snprintf(slow, sizeof slow, "+1 %d %s 0123", area, exchanges[e]);
            cd_err ea = {0}, eb = {0};
            int ra = cd_phone_normalize(fast, "US", "p", a, &ea);
            int rb = cd_phone_normalize(slow, "US", "p", b, &eb);
            assert_int_equal(ra, rb);
            if (ra == 0) {
                assert_string_equal(a, b);
                assert_string_equal(a, fast);
                ok++;
            } else {
                assert_string_equal(ea.msg, eb.msg);
                assert_string_equal(ea.reason, eb.reason);
            }
        }
    }
    assert_true(ok > 100); /* the loop did test valid numbers */
}

int main(void)
{
    cd_phone_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_statuses_and_keep_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blacklist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_takes_everything_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_head_once_per_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_after_flushed_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows_read_back_and_drop, setup, teardown),
        cmocka_unit_test(test_phone_fast_path_same_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
