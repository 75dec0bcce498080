/* tests/unit/http/test_ratelimit.c -- issue 9 part 5: the fixed-window rate limiter
 * (http/ratelimit.h): windows, figures, no-limit, eviction under a bounded table, and
 * exact counting under concurrent hits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "http/ratelimit.h"

static void test_window(void **state)
{
    (void)state;
    cd_ratelimit *rl = cd_ratelimit_new(0);
    cd_ratelimit_info in;
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cd_ratelimit_hit(rl, "key:1", 3, 60, t + i * 1000, &in), 1);
        assert_int_equal(in.limit, 3);
        assert_int_equal(in.remaining, 2 - i);
        assert_int_equal(in.retry_after_s, 0);
        assert_true(in.reset_ms == t + 60000);
    }
    /* the fourth within the window is denied, with the time left */
    assert_int_equal(cd_ratelimit_hit(rl, "key:1", 3, 60, t + 10500, &in), 0);
    assert_int_equal(in.remaining, 0);
    assert_int_equal(in.reset_s, 50); /* 49.5 s rounded up */
    assert_int_equal(in.retry_after_s, 50);
    cd_err err = {0};
    assert_int_equal(cd_ratelimit_fail(&err, &in), -1);
    assert_int_equal(err.code, CD_EBUSY);
    assert_string_equal(cd_err_reason(&err), "rate_limited");
    /* other keys are counted apart */
    assert_int_equal(cd_ratelimit_hit(rl, "key:2", 3, 60, t + 10500, &in), 1);
    assert_int_equal(in.remaining, 2);
    /* the window ends: a new one starts with the full allowance */
    assert_int_equal(cd_ratelimit_hit(rl, "key:1", 3, 60, t + 59999, &in), 0);
    assert_int_equal(cd_ratelimit_hit(rl, "key:1", 3, 60, t + 60000, &in), 1);
    assert_int_equal(in.remaining, 2);
    assert_true(in.reset_ms == t + 120000);
    /* a lower limit set meanwhile (PATCH /settings) applies at once */
    assert_int_equal(cd_ratelimit_hit(rl, "key:1", 1, 60, t + 60001, &in), 0);
    cd_ratelimit_free(rl);
}

/* limit or window <= 0: no limit, nothing tracked (the native API's default). */
static void test_no_limit(void **state)
{
    (void)state;
    cd_ratelimit *rl = cd_ratelimit_new(0);
    cd_ratelimit_info in = {.limit = 9};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cd_ratelimit_hit(rl, "ip:1.2.3.4", 0, 60, i, &in), 1);
    assert_int_equal(cd_ratelimit_hit(rl, "ip:1.2.3.4", 5, 0, 0, &in), 1);
    assert_int_equal(in.limit, 0);
    assert_int_equal(cd_ratelimit_size(rl), 0);
    cd_ratelimit_free(rl);
    cd_ratelimit_free(NULL);
}

/* A flood of distinct keys (one per spoofed client) keeps the table at its cap; the keys
 * evicted are the oldest windows, and a recent key keeps its count. */
static void test_eviction(void **state)
{
    (void)state;
    cd_ratelimit *rl = cd_ratelimit_new(160); /* 10 per shard */
    cd_ratelimit_info in;
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "ip:10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(cd_ratelimit_hit(rl, key, 2, 60, i, &in), 1);
        assert_true(cd_ratelimit_size(rl) <= 160);
    }
    assert_true(cd_ratelimit_size(rl) >= 150); /* the shards are filled, not emptied */
    /* the last key is still tracked: a third hit in its window is denied */
    assert_int_equal(cd_ratelimit_hit(rl, key, 2, 60, 100000, &in), 1);
    assert_int_equal(cd_ratelimit_hit(rl, key, 2, 60, 100001, &in), 0);
    /* the first key was evicted: it starts over */
    assert_int_equal(cd_ratelimit_hit(rl, "ip:10.0.0.0", 1, 60, 100002, &in), 1);
    assert_int_equal(in.remaining, 0);
    /* long keys are cut, not overflowed */
    char longkey[400];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(cd_ratelimit_hit(rl, longkey, 1, 60, 1, &in), 1);
    assert_int_equal(cd_ratelimit_hit(rl, longkey, 1, 60, 2, &in), 0);
    cd_ratelimit_free(rl);
}

/* Eight threads hit the same 4 keys: exactly `limit` hits per key are allowed. */
#define THREADS 8
#define HITS    20000
static cd_ratelimit *shared;
static atomic_int allowed[4];

static void *hammer(void *arg)
{
    (void)arg;
    char key[8];
    for (int i = 0; i < HITS; i++) {
        int k = i % 4;
        snprintf(key, sizeof key, "k%d", k);
        if (cd_ratelimit_hit(shared, key, 5000, 3600, 1000 + i / 1000, NULL))
            atomic_fetch_add(&allowed[k], 1);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    shared = cd_ratelimit_new(0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* 8 * 20000 / 4 = 40000 tries per key, 5000 allowed, not one more or less */
    for (int k = 0; k < 4; k++)
        assert_int_equal(atomic_load(&allowed[k]), 5000);
    assert_int_equal(cd_ratelimit_size(shared), 4);
    cd_ratelimit_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_no_limit),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
