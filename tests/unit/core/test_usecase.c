/* tests/unit/core/test_usecase.c -- the use cases every surface shares (core/usecase.h,
 * issue 9 part 2), on a real SQLite store in a temp dir: recording a consent, checking a
 * phone, groups and types by name, settings patches and senders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/account.h"
#include "core/contact.h"
#include "core/usecase.h"
#include "store/store.h"

#include "../testutil.h"

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

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof *f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, "usecase.db");
    snprintf(f->acme.name, sizeof f->acme.name, "acme");
    snprintf(f->other.name, sizeof f->other.name, "other");
    assert_int_equal(cd_store_run(f->store, job_account, &f->acme, NULL), 0);
    assert_int_equal(cd_store_run(f->store, job_account, &f->other, NULL), 0);
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

/* ---- consents ---- */

typedef struct record_job {
    const cd_account *a;
    cd_consent_request rq;
    cd_consent out;
    cd_event ev;
} record_job;

static int job_record(cd_db *db, void *arg, cd_err *err)
{
    record_job *j = arg;
    return cd_consent_record(db, j->a->id, &j->rq, &j->out, &j->ev, err);
}

static int record(fixture *f, const cd_account *a, const char *scope, cd_state state, record_job *j,
                  cd_err *err)
{
    memset(j, 0, sizeof *j);
    j->a = a;
    j->rq.phone = "+16465550123";
    j->rq.state = state;
    j->rq.prov = (cd_provenance){.surface = "test", .channel = "api"};
    assert_int_equal(cd_scope_parse(scope, "scope", &j->rq.scope, NULL), 0);
    return cd_store_run(f->store, job_record, j, err);
}

static cd_check_result check(fixture *f, const cd_account *a, const char *raw, const char *scope)
{
    cd_check_result r;
    cd_scope sc;
    cd_err err = {0};
    assert_int_equal(cd_scope_parse(scope, "scope", &sc, NULL), 0);
    cd_db *db = cd_store_reader(f->store);
    int rc = cd_consent_check_phone(db, a, raw, sc, &r, &err);
    cd_store_release(f->store, db);
    assert_int_equal(rc, 0);
    return r;
}

// issue 9 part 2: recording checks the scope, upserts the contact, sets and ledgers.
static void test_record_consent(void **state)
{
    fixture *f = *state;
    record_job j;
    cd_err err = {0};
    assert_int_equal(record(f, &f->acme, "group:99", CD_STATE_OPTED_IN, &j, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    assert_string_equal(cd_err_reason(&err), "invalid_scope");
    assert_string_equal(check(f, &f->acme, "(646) 555-0123", "all").reason, "no_consent");

    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_IN, &j, &err), 0);
    assert_string_equal(j.out.state, "opted_in");
    assert_string_equal(j.ev.new_state, "opted_in");
    assert_string_equal(j.ev.surface, "test");
    assert_string_equal(j.ev.phone, "+16465550123");
    assert_true(check(f, &f->acme, "(646) 555-0123", "all").allowed);

    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_OUT, &j, &err), 0);
    assert_string_equal(check(f, &f->acme, "+16465550123", "all").reason, "opted_out");
    /* Asking again (pending) cannot weaken an opt-out; an explicit opt-in lifts it. */
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_PENDING, &j, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_IN, &j, &err), 0);
    assert_string_equal(check(f, &f->acme, "+16465550123", "all").reason, "opted_in");
}

// issue 9 part 2: the check answers every reason, invalid numbers included, per account.
static void test_check_phone(void **state)
{
    fixture *f = *state;
    record_job j;
    cd_check_result r;
    cd_scope all = {.kind = CD_SCOPE_ALL};
    /* An invalid number is an answer, and needs no reader. */
    assert_int_equal(cd_consent_check_phone(NULL, &f->acme, "not a number", all, &r, NULL), 0);
    assert_false(r.valid);
    assert_false(r.allowed);
    assert_string_equal(r.reason, "invalid_number");
    assert_string_equal(r.phone, "");
    r = check(f, &f->acme, "6465550123", "all");
    assert_true(r.valid);
    assert_string_equal(r.phone, "+16465550123");
    assert_string_equal(r.reason, "no_consent");
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_PENDING, &j, NULL), 0);
    assert_string_equal(check(f, &f->acme, "6465550123", "all").reason, "pending_confirmation");
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_IN, &j, NULL), 0);
    r = check(f, &f->acme, "6465550123", "all");
    assert_true(r.allowed);
    assert_string_equal(r.reason, "opted_in");
    /* Tenants are isolated: the other account has no consent for the number. */
    assert_string_equal(check(f, &f->other, "6465550123", "all").reason, "no_consent");
    assert_string_equal(check(f, &f->other, "+16465550123", "all").reason, "no_consent");
}

// issue 16: a number in its stored form is looked up without libphonenumber; a miss is
// still normalised, so a spelling that only looks canonical is still an invalid number.
static void test_check_phone_canonical(void **state)
{
    fixture *f = *state;
    record_job j;
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_IN, &j, NULL), 0);
    cd_check_result r = check(f, &f->acme, "+16465550123", "all");
    assert_true(r.valid);
    assert_true(r.allowed);
    assert_string_equal(r.phone, "+16465550123");
    assert_string_equal(r.reason, "opted_in");
    /* canonical, valid, not stored */
    r = check(f, &f->acme, "+16465550124", "all");
    assert_true(r.valid);
    assert_false(r.allowed);
    assert_string_equal(r.phone, "+16465550124");
    assert_string_equal(r.reason, "no_consent");
    /* canonical spelling, no valid number: too short, too long, no such area or country */
    static const char *bad[] = {"+1646555012", "+164655501234", "+15550000000", "+99912345",
                                "+123456789012345"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = check(f, &f->acme, bad[i], "all");
        assert_false(r.valid);
        assert_false(r.allowed);
        assert_string_equal(r.phone, "");
        assert_string_equal(r.reason, "invalid_number");
    }
}

typedef struct find_job {
    const cd_account *a;
    const char *ref;
    cd_contact c;
    cd_err err;
} find_job;

static int find(fixture *f, find_job *j)
{
    cd_db *db = cd_store_reader(f->store);
    int rc = cd_contact_find(db, j->a->id, j->a->region, j->ref, &j->c, &j->err);
    cd_store_release(f->store, db);
    if (rc == 0)
        cd_contact_clear(&j->c);
    return rc;
}

// issue 16: finding a contact by its stored spelling, by another spelling, and the misses.
static void test_find_contact_canonical(void **state)
{
    fixture *f = *state;
    record_job j;
    assert_int_equal(record(f, &f->acme, "all", CD_STATE_OPTED_IN, &j, NULL), 0);
    static const char *hits[] = {"+16465550123", "6465550123", "+1 646 555 0123"};
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        find_job fj = {.a = &f->acme, .ref = hits[i]};
        assert_int_equal(find(f, &fj), 0);
    }
    static const char *misses[] = {"+16465550124", "+1646555012", "+15550000000", "+99912345"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        find_job fj = {.a = &f->acme, .ref = misses[i]};
        assert_int_not_equal(find(f, &fj), 0);
        assert_int_equal(fj.err.code, CD_ENOTFOUND);
        assert_string_equal(cd_err_reason(&fj.err), "not_found");
    }
    /* tenants stay apart on the fast path too */
    find_job other = {.a = &f->other, .ref = "+16465550123"};
    assert_int_not_equal(find(f, &other), 0);
    assert_int_equal(other.err.code, CD_ENOTFOUND);
}

/* ---- groups and types ---- */

typedef struct named_job {
    const char *kind, *name;
    int64_t account_id, want_id;
    cd_named out;
    bool created, ensure;
} named_job;

static int job_named(cd_db *db, void *arg, cd_err *err)
{
    named_job *j = arg;
    if (j->ensure)
        return cd_named_ensure(db, j->kind, j->account_id, j->name, &j->out, &j->created, err);
    memset(&j->out, 0, sizeof j->out);
    snprintf(j->out.name, sizeof j->out.name, "%s", j->name);
    j->out.id = j->want_id;
    return cd_named_create(db, j->kind, j->account_id, &j->out, err);
}

// issue 9 part 2: a group or type by name: create refuses a duplicate, ensure reuses it.
static void test_named(void **state)
{
    fixture *f = *state;
    cd_err err = {0};
    named_job j = {.kind = "group", .name = "VIP", .account_id = f->acme.id, .ensure = true};
    assert_int_equal(cd_store_run(f->store, job_named, &j, &err), 0);
    assert_true(j.created);
    int64_t id = j.out.id;
    assert_true(id > 0);
    assert_int_equal(cd_store_run(f->store, job_named, &j, &err), 0);
    assert_false(j.created);
    assert_int_equal(j.out.id, id);
    j.ensure = false;
    assert_int_equal(cd_store_run(f->store, job_named, &j, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.field, "name");
    /* The other account has its own "VIP". */
    named_job o = {.kind = "group", .name = "VIP", .account_id = f->other.id, .ensure = true};
    assert_int_equal(cd_store_run(f->store, job_named, &o, &err), 0);
    assert_true(o.created);
    /* A type may ask for its id; a taken id is a conflict on "id". */
    named_job t = {.kind = "type", .name = "promo", .account_id = f->acme.id, .want_id = 7};
    assert_int_equal(cd_store_run(f->store, job_named, &t, &err), 0);
    assert_int_equal(t.out.id, 7);
    t.name = "alerts";
    assert_int_equal(cd_store_run(f->store, job_named, &t, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.field, "id");
    named_job e = {.kind = "group", .name = "", .account_id = f->acme.id, .ensure = true};
    assert_int_equal(cd_store_run(f->store, job_named, &e, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
}

/* ---- settings and senders ---- */

typedef struct settings_job {
    const cd_account *a;
    json_t *patch;
    json_t *out;
} settings_job;

static int job_settings(cd_db *db, void *arg, cd_err *err)
{
    settings_job *j = arg;
    return cd_settings_patch(db, j->a, j->patch, &j->out, err);
}

static int patch(fixture *f, const char *json, json_t **out, cd_err *err)
{
    settings_job j = {.a = &f->acme, .patch = json_loads(json, 0, NULL)};
    assert_non_null(j.patch);
    int rc = cd_store_run(f->store, job_settings, &j, err);
    json_decref(j.patch);
    *out = j.out;
    return rc;
}

typedef struct sender_job {
    const cd_account *a;
    cd_sender_in in;
    cd_sender out;
    bool is_default;
} sender_job;

static int job_sender(cd_db *db, void *arg, cd_err *err)
{
    sender_job *j = arg;
    return cd_sender_add(db, j->a, &j->in, &j->out, &j->is_default, err);
}

// issue 9 part 2: the settings rules live in core: every member checked, nothing half-applied.
static void test_settings_patch(void **state)
{
    fixture *f = *state;
    cd_err err = {0};
    json_t *out = NULL;
    assert_int_equal(
        patch(f, "{\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"07:00\"}}", &out, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "quiet_hours"), "start")), "22:00");
    assert_non_null(json_object_get(out, "exempt_caps")); /* the view adds the caps */
    json_decref(out);
    /* One bad member refuses the whole patch, and the good one beside it is not stored. */
    assert_int_equal(patch(f,
                           "{\"flow_ttl_days\":3,\"quiet_hours\":{\"start\":\"25:00\","
                           "\"end\":\"07:00\"}}",
                           &out, &err),
                     -1);
    assert_null(out);
    assert_string_equal(err.field, "quiet_hours");
    assert_int_equal(patch(f, "{\"keywords\":{\"start\":[\"STOP\"]}}", &out, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    assert_int_equal(patch(f, "{\"nonsense\":1}", &out, &err), -1);
    assert_string_equal(err.field, "nonsense");
    assert_int_equal(patch(f, "{\"default_sender\":\"+16465550100\"}", &out, &err), -1);
    assert_string_equal(cd_err_reason(&err), "unknown_sender");
    sender_job s = {.a = &f->acme, .in = {.number = "(646) 555-0100"}};
    assert_int_equal(cd_store_run(f->store, job_sender, &s, &err), 0);
    assert_int_equal(
        patch(f, "{\"default_sender\":\"6465550100\",\"quiet_hours\":null}", &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "default_sender")), "+16465550100");
    assert_null(json_object_get(out, "quiet_hours")); /* null removes */
    assert_null(json_object_get(out, "flow_ttl_days"));
    json_decref(out);
}

// issue 9 part 2: adding a sender: short codes, E.164, default, re-adding keeps created_at.
static void test_sender_add(void **state)
{
    fixture *f = *state;
    cd_err err = {0};
    sender_job s = {.a = &f->acme, .in = {.number = "12345", .transport = "smpp"}};
    assert_int_equal(cd_store_run(f->store, job_sender, &s, &err), 0);
    assert_string_equal(s.out.number, "12345");
    assert_string_equal(s.out.transport, "smpp");
    assert_false(s.is_default);
    int64_t created = s.out.created_ms;
    s.in.make_default = true;
    assert_int_equal(cd_store_run(f->store, job_sender, &s, &err), 0);
    assert_true(s.is_default);
    assert_int_equal(s.out.created_ms, created);
    assert_int_equal(s.out.account_id, f->acme.id);
    sender_job bad = {.a = &f->acme, .in = {.number = "12345", .transport = "pigeon"}};
    assert_int_equal(cd_store_run(f->store, job_sender, &bad, &err), -1);
    assert_string_equal(err.field, "transport");
    bad.in = (cd_sender_in){.number = "12"};
    assert_int_equal(cd_store_run(f->store, job_sender, &bad, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    char num[CD_PHONE_MAX];
    cd_sender_in in = {.number = "646 555 0199"};
    assert_int_equal(cd_sender_parse(&in, "US", num, NULL), 0);
    assert_string_equal(num, "+16465550199");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_phone_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_contact_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_add, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
