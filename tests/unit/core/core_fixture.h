/* tests/unit/core/core_fixture.h -- a real SQLite store in a private temp dir with two
 * accounts, for the tests of core/flow, core/message and core/inbound (issue 9 part 10).
 * Core functions run in the writer's transaction, so each test hands its writes to the
 * writer as jobs (cf_run) and asserts afterwards, on the test's own thread, through a
 * reader. Header-only: meson builds each test from its one .c file. Include it after
 * <cmocka.h>. */
#ifndef CD_TESTS_UNIT_CORE_FIXTURE_H
#define CD_TESTS_UNIT_CORE_FIXTURE_H

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/account.h"
#include "core/consent.h"
#include "core/contact.h"
#include "store/store.h"

#include "../testutil.h"

#define CF_MAX_MSGS 32

typedef struct cf_fx {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_account acme; /* brand ACME (the default: the name upper-cased) */
    cd_account beta; /* brand BETACO, unlike its name */
} cf_fx;

static inline int cf_job_accounts(cd_db *db, void *arg, cd_err *err)
{
    cf_fx *fx = arg;
    char key[CD_KEY_LEN];
    if (cd_account_create(db, &(cd_account_in){.name = "acme"}, &fx->acme, key, err) != 0)
        return -1;
    return cd_account_create(db, &(cd_account_in){.name = "beta", .brand = "BETACO"}, &fx->beta,
                             key, err);
}

static inline int cf_setup(void **state)
{
    cf_fx *fx = calloc(1, sizeof *fx);
    cd_err err = {0};
    assert_non_null(fx);
    tu_mkdtemp(fx->dir);
    fx->store = tu_store_open(fx->dir, "core.db");
    if (cd_store_run(fx->store, cf_job_accounts, fx, &err) != 0)
        fail_msg("accounts: %s", err.msg);
    *state = fx;
    return 0;
}

static inline int cf_teardown(void **state)
{
    cf_fx *fx = *state;
    cd_store_close(fx->store);
    tu_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* Runs fn(db, arg, err) in the writer's transaction; a failing job leaves no trace. */
static inline int cf_run(cf_fx *fx, cd_job_fn fn, void *arg, cd_err *err)
{
    return cd_store_run(fx->store, fn, arg, err);
}

/* A settings object for an account, as PATCH /settings would store it. */
typedef struct cf_settings {
    int64_t account_id;
    const char *json;
} cf_settings;

static inline int cf_job_settings(cd_db *db, void *arg, cd_err *err)
{
    cf_settings *s = arg;
    json_t *v = json_loads(s->json, 0, NULL);
    int rc = v ? cd_store_settings_put(db, s->account_id, v, err)
               : cd_fail(err, CD_EINVAL, "", "bad settings JSON in the test");
    json_decref(v);
    return rc;
}

static inline void cf_put_settings(cf_fx *fx, int64_t account_id, const char *json)
{
    cf_settings s = {account_id, json};
    cd_err err = {0};
    if (cf_run(fx, cf_job_settings, &s, &err) != 0)
        fail_msg("settings: %s", err.msg);
}

/* A sender number of an account. */
static inline int cf_job_sender(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_sender_put(db, arg, err);
}

static inline void cf_add_sender(cf_fx *fx, int64_t account_id, const char *number)
{
    cd_sender s = {.account_id = account_id, .created_ms = 1};
    cd_err err = {0};
    snprintf(s.number, sizeof s.number, "%s", number);
    if (cf_run(fx, cf_job_sender, &s, &err) != 0)
        fail_msg("sender: %s", err.msg);
}

/* Sets the consent of a phone (creating the contact) to `state` for `scope`. */
typedef struct cf_consent {
    int64_t account_id;
    const char *phone, *scope;
    cd_state state;
} cf_consent;

static inline int cf_job_consent(cd_db *db, void *arg, cd_err *err)
{
    cf_consent *c = arg;
    cd_contact ct;
    cd_scope sc;
    cd_provenance p = {.surface = "native", .channel = "api"};
    if (cd_scope_parse(c->scope, "scope", &sc, err) != 0 ||
        cd_contact_apply(db, c->account_id, 0,
                         &(cd_contact_patch){.phone = c->phone, .merge = true}, true, &ct, NULL,
                         err) != 0)
        return -1;
    int rc = cd_consent_set(db, c->account_id, &ct, sc, c->state, CD_CONSENT_OVERRIDE, &p, NULL,
                            NULL, err);
    cd_contact_clear(&ct);
    return rc;
}

static inline void cf_set_consent(cf_fx *fx, int64_t account_id, const char *phone,
                                  const char *scope, cd_state state)
{
    cf_consent c = {account_id, phone, scope, state};
    cd_err err = {0};
    if (cf_run(fx, cf_job_consent, &c, &err) != 0)
        fail_msg("consent %s %s: %s", phone, scope, err.msg);
}

/* The state of (phone, scope) as committed; NONE when the contact does not exist. */
static inline cd_state cf_state(cf_fx *fx, int64_t account_id, const char *phone, const char *scope)
{
    cd_db *db = cd_store_reader(fx->store);
    cd_contact c;
    cd_scope sc;
    cd_state st = CD_STATE_NONE;
    assert_int_equal(cd_scope_parse(scope, "scope", &sc, NULL), 0);
    if (cd_store_contact_by_phone(db, account_id, phone, &c, NULL) == 0) {
        assert_int_equal(cd_consent_state(db, account_id, c.id, sc, &st, NULL), 0);
        cd_contact_clear(&c);
    }
    cd_store_release(fx->store, db);
    return st;
}

/* The committed messages of an account (newest first), filtered like GET /messages. */
typedef struct cf_msgs {
    int n;
    cd_message m[CF_MAX_MSGS];
} cf_msgs;

static inline int cf_collect_msg(const cd_message *m, int64_t rowid, void *arg)
{
    cf_msgs *l = arg;
    (void)rowid;
    if (l->n == CF_MAX_MSGS)
        return 1;
    l->m[l->n] = *m;
    l->m[l->n].text = strdup(m->text ? m->text : "");
    l->m[l->n].history = NULL;
    l->n++;
    return 0;
}

static inline void cf_messages(cf_fx *fx, int64_t account_id, const char *to, const char *kind,
                               cf_msgs *out)
{
    cd_db *db = cd_store_reader(fx->store);
    cd_message_filter f = {.to = to, .kind = kind, .limit = CF_MAX_MSGS};
    memset(out, 0, sizeof *out);
    assert_int_equal(cd_store_message_list(db, account_id, &f, cf_collect_msg, out, NULL), 0);
    cd_store_release(fx->store, db);
}

static inline void cf_msgs_clear(cf_msgs *l)
{
    for (int i = 0; i < l->n; i++)
        cd_message_clear(&l->m[i]);
    l->n = 0;
}

/* Death test for a precondition: fn(arg) must abort (a failed assert()) in a child. */
static inline void cf_expect_abort(void (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* No core file and no sanitizer report for the abort we expect. */
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0); /* the precondition was not checked */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

#endif
