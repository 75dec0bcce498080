/* tests/unit/api/test_kit.c -- api/kit.h (issue 9 part 1): the shared write path and body
 * helper, seen from outside through a real cd_http on a free port with two minimal
 * surfaces that are not the native API. Shows that a failed write is answered in the
 * surface's own format, that Idempotency-Key is a per-surface option, that "forms allowed:
 * no" refuses a body not labelled JSON, and that a write is durable once answered. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/guard.h"
#include "api/kit.h"
#include "store/store_int.h" /* cd_store__fail_after (issue 9 part 10) */
#include "core/account.h"
#include "core/usecase.h"
#include "http/http.h"
#include "http/router.h"
#include "util/buf.h"
#include "util/crypto.h"

#include "../testhttp.h"
#include "../testutil.h"

static struct {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_router *router;
    cd_http *http;
    cd_api_env env;
    int port;
    char key[CD_KEY_LEN];
    cd_account account;
} srv;

static atomic_int runs; /* how many times a counting job ran */

/* ---- a minimal surface: plain-text errors, always 418, Bearer keys ---- */

static int mini_error(cd_req *req, const cd_err *err)
{
    char text[200];
    int n = snprintf(text, sizeof text, "MINI %s", cd_err_reason(err));
    /* A storage failure is retryable: 503 (issue 9 part 10); anything else is 418. */
    int status = err->code == CD_ESTORE ? 503 : 418;
    return cd_reply_data(req, status, "text/plain", cd_req_strdup(req, text), (size_t)n);
}

static int mini_auth(cd_req *req, cd_err *err)
{
    return cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_BEARER, err);
}

static const cd_surface mini_http = {
    .name = "mini", .authenticate = mini_auth, .reply_error = mini_error};
static const cd_api_surface mini = {.http = &mini_http, .idempotency = false, .forms = false};
static const cd_api_surface mini_idem = {.http = &mini_http, .idempotency = true, .forms = true};

static int job_fail(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    (void)db;
    (void)w;
    return cd_fail_reason(err, CD_ECONFLICT, "already_there", "", "no");
}

static int job_count(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    cd_named g;
    char name[32];
    int n = atomic_fetch_add(&runs, 1) + 1;
    snprintf(name, sizeof name, "g%d", n);
    if (cd_named_ensure(db, "group", w->who.account.id, name, &g, NULL, err) != 0)
        return -1;
    w->status = 201;
    w->body = json_pack("{si sI}", "run", n, "group", (json_int_t)g.id);
    return 0;
}

static int h_fail(cd_req *req)
{
    return cd_api_write(req, &mini, job_fail, NULL);
}

static int h_count(cd_req *req)
{
    return cd_api_write(req, &mini, job_count, NULL);
}

static int h_count_idem(cd_req *req)
{
    return cd_api_write(req, &mini_idem, job_count, NULL);
}

static int body_on(cd_req *req, const cd_api_surface *s)
{
    json_t *o;
    cd_err err;
    if (cd_api_body(req, s, &o, &err) != 0)
        return cd_api_error(req, s, &err);
    return cd_reply_json(req, 200, json_incref(o));
}

static int h_body(cd_req *req)
{
    return body_on(req, &mini);
}

static int h_body_forms(cd_req *req)
{
    return body_on(req, &mini_idem);
}

/* issue 10 (perf): a rerunnable write. It leaves a malloc'd note in `in` (released by done),
 * writes a group named in the body, and, for a name starting "bad", fails after writing. */
typedef struct rerun_in {
    char name[32];
    char *note;
} rerun_in;

static atomic_int rerun_runs, rerun_dirty, rerun_dones, rerun_submitted;

static void rerun_done(cd_api_write_op *w)
{
    rerun_in *in = w->in;
    free(in->note);
    in->note = NULL;
    atomic_fetch_add(&rerun_dones, 1);
}

static int job_rerun(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    rerun_in *in = w->in;
    cd_named g;
    atomic_fetch_add(&rerun_runs, 1);
    if (in->note != NULL || w->body != NULL || w->status != 0)
        atomic_fetch_add(&rerun_dirty, 1); /* a second run would find the first's leftovers */
    in->note = strdup(in->name);
    w->done = rerun_done;
    if (cd_named_ensure(db, "group", w->who.account.id, in->name, &g, NULL, err) != 0)
        return -1;
    if (strncmp(in->name, "bad", 3) == 0)
        return cd_fail_reason(err, CD_ECONFLICT, "bad_name", "", "no");
    w->status = 201;
    w->body = json_pack("{ss}", "name", in->note);
    return 0;
}

static int h_rerun(cd_req *req)
{
    json_t *o;
    cd_err err;
    rerun_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &mini, &o, &err) != 0)
        return cd_api_error(req, &mini, &err);
    snprintf(in->name, sizeof in->name, "%s", json_string_value(json_object_get(o, "name")));
    int rc = cd_api_write_rerunnable(req, &mini, job_rerun, in);
    atomic_fetch_add(&rerun_submitted, 1);
    return rc;
}

/* ---- the server ---- */

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    cd_account_in in = {.name = "kit"};
    return cd_account_create(db, &in, &srv.account, srv.key, err);
}

static int group_setup(void **state)
{
    cd_err err = {0};
    (void)state;
    if (cd_crypto_init() != 0)
        return -1;
    tu_mkdtemp(srv.dir);
    srv.store = tu_store_open(srv.dir, "kit.db");
    if (cd_store_run(srv.store, job_account, NULL, &err) != 0)
        return -1;
    srv.env = (cd_api_env){.store = srv.store, .public_url = "http://localhost"};
    srv.router = cd_router_new();
    void *ctx = cd_api_ctx(&srv.env);
    cd_router_add(srv.router, "POST", "/mini/fail", &mini_http, h_fail, ctx);
    cd_router_add(srv.router, "POST", "/mini/count", &mini_http, h_count, ctx);
    cd_router_add(srv.router, "POST", "/mini/count-idem", &mini_http, h_count_idem, ctx);
    cd_router_add(srv.router, "POST", "/mini/rerun", &mini_http, h_rerun, ctx);
    cd_router_add(srv.router, "POST", "/mini/body", &mini_http, h_body, ctx);
    cd_router_add(srv.router, "POST", "/mini/body-forms", &mini_http, h_body_forms, ctx);
    cd_router_set_fallback(srv.router, &mini_http);
    cd_http_config cfg = {.host = "127.0.0.1", .threads = 2, .max_body = 4096};
    srv.http = cd_http_start(&cfg, cd_router_dispatcher(srv.router), &err);
    if (srv.http == NULL)
        return -1;
    srv.port = cd_http_port(srv.http);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cd_http_stop(srv.http);
    cd_router_free(srv.router);
    cd_store_close(srv.store);
    tu_rmtree(srv.dir);
    return 0;
}

/* ---- the client ---- */

/* POSTs body to path with the key and up to two more headers. */
static void post(const char *path, const char *body, const char *h1, const char *h2, tu_resp *r)
{
    char auth[CD_KEY_LEN + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    tu_request(srv.port,
               &(tu_call){.method = "POST", .path = path, .body = body, .headers = {auth, h1, h2}},
               r);
}

static bool replayed(const tu_resp *r)
{
    return strcasestr(r->headers.data, "Idempotent-Replayed: true") != NULL;
}

#define JSON "Content-Type: application/json"

// issue 9 part 1: a failed write is answered by the surface's reply_error, not native JSON.
static void test_failed_write_in_surface_format(void **state)
{
    tu_resp r;
    (void)state;
    post("/mini/fail", "{}", JSON, NULL, &r);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body.data, "MINI already_there");
    tu_resp_free(&r);
    /* A refusal before the write (a malformed Idempotency-Key) too. */
    post("/mini/count-idem", "{}", JSON, "Idempotency-Key: \x01", &r);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body.data, "MINI invalid_field");
    tu_resp_free(&r);
}

// issue 9 part 1: Idempotency-Key is honoured only by surfaces that say so.
static void test_idempotency_per_surface(void **state)
{
    tu_resp a, b;
    (void)state;
    int before = atomic_load(&runs);
    post("/mini/count-idem", "{\"x\":1}", JSON, "Idempotency-Key: k-1", &a);
    post("/mini/count-idem", "{\"x\":1}", JSON, "Idempotency-Key: k-1", &b);
    assert_int_equal(a.status, 201);
    assert_int_equal(b.status, 201);
    assert_false(replayed(&a));
    assert_true(replayed(&b));
    assert_string_equal(a.body.data, b.body.data);
    assert_int_equal(atomic_load(&runs), before + 1);
    tu_resp_free(&a);
    tu_resp_free(&b);
    /* The surface without the option runs the write twice and never replays. */
    post("/mini/count", "{\"x\":1}", JSON, "Idempotency-Key: k-2", &a);
    post("/mini/count", "{\"x\":1}", JSON, "Idempotency-Key: k-2", &b);
    assert_int_equal(a.status, 201);
    assert_int_equal(b.status, 201);
    assert_false(replayed(&b));
    assert_string_not_equal(a.body.data, b.body.data);
    assert_int_equal(atomic_load(&runs), before + 3);
    tu_resp_free(&a);
    tu_resp_free(&b);
    /* Nor does it look at a malformed key. */
    post("/mini/count", "{}", JSON, "Idempotency-Key: \x01", &a);
    assert_int_equal(a.status, 201);
    tu_resp_free(&a);
}

// issue 9 part 1: a write is durable once answered: a new reader sees it.
static void test_write_durable(void **state)
{
    tu_resp r;
    cd_named g;
    char name[32];
    (void)state;
    post("/mini/count", "{}", JSON, NULL, &r);
    assert_int_equal(r.status, 201);
    tu_resp_free(&r);
    snprintf(name, sizeof name, "g%d", atomic_load(&runs));
    cd_db *db = cd_store_reader(srv.store);
    int rc = cd_store_named_by_name(db, "group", srv.account.id, name, &g, NULL);
    cd_store_release(srv.store, db);
    assert_int_equal(rc, 0);
}

// issue 9 part 1 (and issue 8 item 13): "forms allowed: no" answers 415 for a body not
// labelled JSON, in the surface's format; a surface that allows forms reads it.
static void test_body_label_per_surface(void **state)
{
    tu_resp r;
    (void)state;
    post("/mini/body", "{\"a\":\"b\"}", "Content-Type: text/plain", NULL, &r);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body.data, "MINI unsupported_media_type");
    tu_resp_free(&r);
    post("/mini/body", "{\"a\":\"b\"}", JSON, NULL, &r);
    assert_int_equal(r.status, 200);
    tu_resp_free(&r);
    post("/mini/body-forms", "{\"a\":\"b\"}", "Content-Type: text/plain", NULL, &r);
    assert_int_equal(r.status, 200);
    tu_resp_free(&r);
    post("/mini/body", "[1]", JSON, NULL, &r);
    assert_string_equal(r.body.data, "MINI invalid_field");
    tu_resp_free(&r);
}

static bool group_exists(const char *name)
{
    cd_named g;
    cd_db *db = cd_store_reader(srv.store);
    assert_non_null(db);
    int rc = cd_store_named_by_name(db, "group", srv.account.id, name, &g, NULL);
    cd_store_release(srv.store, db);
    return rc == 0;
}

// issue 9 part 10: a fault injected at each store call of an idempotent write in turn.
// Every failure is answered in the surface's format (never native JSON), one that hits the
// write job is a 503, nothing of a failed attempt is written, and a retry with the same
// Idempotency-Key runs the write (the failed attempt stored no idempotency record).
static void test_store_fault_each_call(void **state)
{
    (void)state;
    int n = 1, in_job = 0;
    for (;; n++) {
        tu_resp r, again;
        char key[48], name[32];
        snprintf(key, sizeof key, "Idempotency-Key: fault-%d", n);
        int before = atomic_load(&runs);
        cd_store__fail_after(srv.store, n, false, 0);
        post("/mini/count-idem", "{\"x\":1}", JSON, key, &r);
        int fired = cd_store__faults_fired(srv.store);
        cd_store__fail_after(srv.store, 0, false, 0);
        int after = atomic_load(&runs);
        if (fired == 0) { /* past the last call: the write went through */
            assert_int_equal(r.status, 201);
            tu_resp_free(&r);
            break;
        }
        if (r.status == 201) {
            /* A call whose failure the code tolerates (a redundant lookup): then the
             * write is whole and durable, and the retry replays it. */
            snprintf(name, sizeof name, "g%d", after);
            assert_true(group_exists(name));
            tu_resp_free(&r);
            post("/mini/count-idem", "{\"x\":1}", JSON, key, &again);
            assert_int_equal(again.status, 201);
            assert_true(replayed(&again));
            tu_resp_free(&again);
            continue;
        }
        assert_memory_equal(r.body.data, "MINI ", 5); /* never native JSON */
        if (after > before) { /* the job ran and hit the fault (or its idem record did) */
            in_job++;
            assert_int_equal(r.status, 503);
            assert_string_equal(r.body.data, "MINI storage_error");
            snprintf(name, sizeof name, "g%d", after);
            assert_false(group_exists(name));
        }
        tu_resp_free(&r);
        /* The retry is not a replay of a stored failure: it writes, once. */
        post("/mini/count-idem", "{\"x\":1}", JSON, key, &again);
        assert_int_equal(again.status, 201);
        assert_false(replayed(&again));
        assert_int_equal(atomic_load(&runs), after + 1);
        snprintf(name, sizeof name, "g%d", atomic_load(&runs));
        assert_true(group_exists(name));
        tu_resp_free(&again);
    }
    /* The job's own calls (the group lookup and insert, the idempotency record) failed. */
    assert_true(in_job >= 3);
}

/* ---- issue 10 (perf): rerunnable writes sharing a savepoint ---- */

typedef struct gate {
    tu_gate g;
    atomic_bool done;
} gate;

static int job_gate(cd_db *db, void *arg, cd_err *err)
{
    (void)db;
    (void)err;
    tu_gate_hold(&((gate *)arg)->g);
    return 0;
}

static void gate_done(void *arg, int rc, const cd_err *err)
{
    (void)rc;
    (void)err;
    atomic_store(&((gate *)arg)->done, true);
}

typedef struct poster {
    pthread_t t;
    char body[64];
    tu_resp r;
} poster;

static void *post_one(void *arg)
{
    poster *p = arg;
    post("/mini/rerun", p->body, JSON, NULL, &p->r);
    return NULL;
}

// issue 10 (perf): rerunnable writes of one batch share a savepoint. One of them fails after
// writing: the shared savepoint is rolled back and the writes before it run again, each
// after `done` released what its first run left. Every request is answered as stored, the
// failing one's write is gone, done runs once per request more than the reruns.
static void test_rerunnable_batch(void **state)
{
    (void)state;
    static const char *const names[] = {"rr-a", "rr-b", "bad-c", "rr-d", "rr-e"};
    enum { N = 5 };
    gate g = {.g = TU_GATE_INIT};
    poster p[N] = {0};
    assert_int_equal(cd_store_submit(srv.store, job_gate, gate_done, &g, NULL), 0);
    tu_gate_wait_entered(&g.g);
    for (int i = 0; i < N; i++) {
        snprintf(p[i].body, sizeof p[i].body, "{\"name\":\"%s\"}", names[i]);
        assert_int_equal(pthread_create(&p[i].t, NULL, post_one, &p[i]), 0);
    }
    for (int i = 0; i < 5000 && atomic_load(&rerun_submitted) < N; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(atomic_load(&rerun_submitted), N); /* all five wait behind the gate */
    tu_gate_open(&g.g);
    for (int i = 0; i < N; i++)
        pthread_join(p[i].t, NULL);
    for (int i = 0; i < N; i++) {
        bool bad = i == 2;
        assert_int_equal(p[i].r.status, bad ? 418 : 201);
        if (!bad)
            assert_string_equal(json_string_value(json_object_get(p[i].r.json, "name")), names[i]);
        assert_int_equal(group_exists(names[i]), !bad);
        tu_resp_free(&p[i].r);
    }
    /* The failing job ran in the group and again alone: one batch ran them all. */
    int runs_total = atomic_load(&rerun_runs);
    assert_true(runs_total >= N + 1);
    assert_int_equal(atomic_load(&rerun_dirty), 0);
    assert_int_equal(atomic_load(&rerun_dones), runs_total); /* once per run */
    while (!atomic_load(&g.done))
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_write_in_surface_format),
        cmocka_unit_test(test_idempotency_per_surface),
        cmocka_unit_test(test_write_durable),
        cmocka_unit_test(test_body_label_per_surface),
        cmocka_unit_test(test_store_fault_each_call),
        cmocka_unit_test(test_rerunnable_batch),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
