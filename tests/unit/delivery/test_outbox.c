/* tests/unit/delivery/test_outbox.c -- the delivery worker against a real SQLite store and
 * the sink transport. Fault injection through the store's commit hook: it holds the writer
 * at a chosen moment so that a stop lands exactly where the test wants it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/message.h"
#include "delivery/outbox.h"
#include "store/store.h"
#include "util/timeutil.h"

#include "../testutil.h"

#define MSG_ID "msg_00000000000000000000000000000001"

typedef struct hold {
    cd_store *store;
    sem_t claimed; /* posted once, when the commit that claimed the message is durable */
    bool fired;
} hold;

static int job_insert(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    /* A keyword reply: consent-exempt, so the claim does not need a contact or a consent. */
    cd_message m = {.account_id = 1, .parts = 1, .next_attempt_ms = 1};
    snprintf(m.id, sizeof m.id, MSG_ID);
    snprintf(m.to, sizeof m.to, "+16465550100");
    m.text = "You are unsubscribed.";
    snprintf(m.kind, sizeof m.kind, "keyword_reply");
    snprintf(m.scope, sizeof m.scope, "all");
    snprintf(m.status, sizeof m.status, "queued");
    snprintf(m.direction, sizeof m.direction, "out");
    snprintf(m.category, sizeof m.category, "transactional");
    m.created_ms = m.updated_ms = cd_now_ms();
    return cd_store_message_insert(db, &m, err);
}

static bool status_is(cd_store *s, const char *want)
{
    cd_message m;
    cd_err err = {0};
    cd_db *db = cd_store_reader(s);
    bool is = false;
    if (db && cd_store_message_get(db, 1, MSG_ID, &m, &err) == 0) {
        is = strcmp(m.status, want) == 0;
        cd_message_clear(&m);
    }
    cd_store_release(s, db);
    return is;
}

/* Runs on the writer after each commit, before the jobs hear they are done: once the claim
 * is durable, the worker is held there (its claim job is not done yet) while the test asks
 * for the stop. The worker then submits to the sink, which reports at once, and finds the
 * stop before its next round: the report is pending exactly when the outbox stops. */
static void on_commit(void *arg, int batch, double seconds, unsigned wrote)
{
    hold *h = arg;
    (void)batch;
    (void)seconds;
    (void)wrote;
    if (h->fired || !status_is(h->store, "sending"))
        return;
    h->fired = true;
    sem_post(&h->claimed);
    usleep(300 * 1000); /* the stop is asked for meanwhile */
}

/* issue 8 item 13: "a graceful stop keeps pending delivery reports". */
static void test_stop_writes_pending_reports(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX], url[TU_PATH_MAX + 32];
    cd_err err = {0};
    tu_mkdtemp(dir);
    tu_sqlite_url(url, sizeof url, dir, "outbox.db");
    hold h = {0};
    sem_init(&h.claimed, 0, 0);
    h.store = cd_store_open(url, &err);
    assert_non_null(h.store);
    assert_int_equal(cd_store_run(h.store, job_insert, NULL, &err), 0);
    cd_store_on_commit(h.store, on_commit, &h);
    cd_outbox_config cfg = {.default_transport = "sink"};
    cd_outbox *o = cd_outbox_start(h.store, &cfg, &err);
    assert_non_null(o);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    assert_int_equal(sem_timedwait(&h.claimed, &until), 0);
    cd_outbox_halt(o); /* as cd_server_stop does: the store is still open */
    assert_true(status_is(h.store, "sent"));
    cd_store_close(h.store);
    cd_outbox_stop(o);
    sem_destroy(&h.claimed);
    tu_rmtree(dir);
}

/* ---- the opt-out's refusal of queued messages (store level) ---- */

static void put(cd_db *db, int64_t account, const char *id, const char *kind, const char *scope,
                const char *status)
{
    cd_err err = {0};
    cd_message m = {.account_id = account, .contact_id = 7, .parts = 1};
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.to, sizeof m.to, "+16465550107");
    m.text = "hello";
    snprintf(m.kind, sizeof m.kind, "%s", kind);
    snprintf(m.scope, sizeof m.scope, "%s", scope);
    snprintf(m.status, sizeof m.status, "%s", status);
    snprintf(m.direction, sizeof m.direction, "out");
    assert_int_equal(cd_store_message_insert(db, &m, &err), 0);
}

typedef struct refuse_case {
    int group_count, all_count;
} refuse_case;

static int job_refuse(cd_db *db, void *arg, cd_err *err)
{
    refuse_case *c = arg;
    put(db, 1, "m_all", "send", "all", "queued");
    put(db, 1, "m_group", "send", "group:3", "queued");
    put(db, 1, "m_cta", "cta", "group:4", "queued");
    put(db, 1, "m_reply", "keyword_reply", "all", "queued");
    put(db, 1, "m_sent", "send", "all", "sent");
    put(db, 2, "m_other", "send", "all", "queued"); /* another tenant, same contact id */
    if (cd_store_message_refuse_queued(db, 1, 7, "group:3", 1000, "opted_out", &c->group_count,
                                       err) != 0)
        return -1;
    return cd_store_message_refuse_queued(db, 1, 7, NULL, 2000, "opted_out", &c->all_count, err);
}

static void assert_status(cd_db *db, int64_t account, const char *id, const char *status)
{
    cd_message m;
    cd_err err = {0};
    assert_int_equal(cd_store_message_get(db, account, id, &m, &err), 0);
    assert_string_equal(m.status, status);
    if (strcmp(status, "refused") == 0) {
        assert_string_equal(m.reason, "opted_out");
        json_t *last = json_array_get(m.history, json_array_size(m.history) - 1);
        assert_string_equal(json_string_value(json_object_get(last, "status")), "refused");
        assert_string_equal(json_string_value(json_object_get(last, "detail")), "opted_out");
    }
    cd_message_clear(&m);
}

/* issue 8 item 1: an opt-out refuses the contact's queued messages for the scopes it covers,
 * never a keyword reply, never another account's. */
static void test_refuse_queued(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    cd_err err = {0};
    refuse_case c = {0};
    tu_mkdtemp(dir);
    cd_store *s = tu_store_open(dir, "refuse.db");
    assert_int_equal(cd_store_run(s, job_refuse, &c, &err), 0);
    assert_int_equal(c.group_count, 1); /* only group:3 */
    assert_int_equal(c.all_count, 2);   /* then "all" and the CTA */
    cd_db *db = cd_store_reader(s);
    assert_status(db, 1, "m_group", "refused");
    assert_status(db, 1, "m_all", "refused");
    assert_status(db, 1, "m_cta", "refused");
    assert_status(db, 1, "m_reply", "queued");
    assert_status(db, 1, "m_sent", "sent");
    assert_status(db, 2, "m_other", "queued");
    cd_store_release(s, db);
    cd_store_close(s);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_writes_pending_reports),
        cmocka_unit_test(test_refuse_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
