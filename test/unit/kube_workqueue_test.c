/* Unit tests of the rate-limited work queue: FIFO order, de-duplication, per-key exclusivity
 * under concurrent workers, delayed adds and backoff on a fake clock (no sleeping), the overall
 * token bucket, shutdown and drain. */
#include "base/err.h"
#include "base/metrics.h"
#include "kube/workqueue.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define SEC 1000000000LL

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Gets a key that must be ready now (bounded wait). */
static const char *get_now(struct tn_wq *q)
{
    const char *k = tn_wq_get_timeout(q, 1000, NULL);
    ck_assert_ptr_nonnull(k);
    return k;
}

static void expect_next(struct tn_wq *q, const char *want)
{
    const char *k = get_now(q);
    ck_assert_str_eq(k, want);
    tn_wq_done(q, k);
}

START_TEST(test_fifo)
{
    struct tn_wq *q = tn_wq_new(NULL);
    ck_assert_ptr_nonnull(q);
    const char *keys[] = {"ns/c", "ns/a", "ns/b", "other/z"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(tn_wq_add(q, keys[i]), 0);
    ck_assert_uint_eq(tn_wq_len(q), 4);
    for (int i = 0; i < 4; i++)
        expect_next(q, keys[i]);
    ck_assert_uint_eq(tn_wq_len(q), 0);
    int shut = 1;
    ck_assert_ptr_null(tn_wq_get_timeout(q, 20, &shut));
    ck_assert_int_eq(shut, 0);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_dedup)
{
    struct tn_wq *q = tn_wq_new(NULL);
    tn_wq_add(q, "a");
    tn_wq_add(q, "a");
    tn_wq_add(q, "b");
    tn_wq_add(q, "a");
    ck_assert_uint_eq(tn_wq_len(q), 2);
    expect_next(q, "a");
    expect_next(q, "b");
    ck_assert_uint_eq(tn_wq_len(q), 0);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_add_while_processing)
{
    struct tn_wq *q = tn_wq_new(NULL);
    tn_wq_add(q, "a");
    const char *k = get_now(q);
    ck_assert_str_eq(k, "a");
    /* Not handed to anyone else while processing, and queued once however often it is added. */
    tn_wq_add(q, "a");
    tn_wq_add(q, "a");
    ck_assert_uint_eq(tn_wq_len(q), 0);
    ck_assert_ptr_null(tn_wq_get_timeout(q, 20, NULL));
    tn_wq_done(q, k);
    ck_assert_uint_eq(tn_wq_len(q), 1);
    expect_next(q, "a");
    ck_assert_uint_eq(tn_wq_len(q), 0);
    ck_assert_ptr_null(tn_wq_get_timeout(q, 20, NULL));
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

/* ---- exclusivity with 4 workers ---- */

#define NKEYS 8
#define NWORKERS 4
#define NADDS 20000

struct excl {
    struct tn_wq *q;
    atomic_int inflight[NKEYS];
    atomic_int added[NKEYS]; /* version bumped before each add */
    atomic_int seen[NKEYS];  /* version observed when processing started */
    atomic_int violations;
    atomic_int processed;
    atomic_int max_parallel;
    atomic_int parallel;
};

static void *excl_worker(void *arg)
{
    struct excl *x = arg;
    const char *k;
    while ((k = tn_wq_get(x->q)) != NULL) {
        int i = atoi(k + 4);
        atomic_store(&x->seen[i], atomic_load(&x->added[i]));
        if (atomic_fetch_add(&x->inflight[i], 1) != 0) atomic_fetch_add(&x->violations, 1);
        int p = atomic_fetch_add(&x->parallel, 1) + 1;
        int m = atomic_load(&x->max_parallel);
        while (p > m && !atomic_compare_exchange_weak(&x->max_parallel, &m, p))
            ;
        usleep(50);
        atomic_fetch_sub(&x->parallel, 1);
        atomic_fetch_sub(&x->inflight[i], 1);
        atomic_fetch_add(&x->processed, 1);
        tn_wq_done(x->q, k);
    }
    return NULL;
}

START_TEST(test_exclusivity)
{
    static struct excl x;
    memset(&x, 0, sizeof(x));
    x.q = tn_wq_new(NULL);
    pthread_t th[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, excl_worker, &x), 0);
    char key[16];
    for (int n = 0; n < NADDS; n++) {
        int i = n % NKEYS;
        snprintf(key, sizeof(key), "key/%d", i);
        atomic_fetch_add(&x.added[i], 1);
        ck_assert_int_eq(tn_wq_add(x.q, key), 0);
        if (n % 64 == 0) usleep(10);
    }
    /* Every key's last add must be processed after it was made (nothing lost). */
    int64_t until = real_ms() + 10000;
    int caught_up = 0;
    while (!caught_up && real_ms() < until) {
        caught_up = 1;
        for (int i = 0; i < NKEYS; i++)
            if (atomic_load(&x.seen[i]) != atomic_load(&x.added[i])) caught_up = 0;
        if (!caught_up) usleep(1000);
    }
    ck_assert_msg(caught_up, "some key's last add was never processed");
    ck_assert_int_eq(tn_wq_shutdown_with_drain(x.q, 5000), 0);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&x.violations), 0);
    ck_assert_int_gt(atomic_load(&x.processed), NKEYS);
    ck_assert_int_le(atomic_load(&x.processed), NADDS);
    /* The workers did run in parallel (on different keys). */
    ck_assert_int_gt(atomic_load(&x.max_parallel), 1);
    tn_wq_free(x.q);
}
END_TEST

/* ---- delays and rate limiting on a fake clock ---- */

static struct tn_wq_clock fake;

static struct tn_wq *fake_queue(void)
{
    tn_wq_clock_fake(&fake, 1000 * SEC);
    struct tn_wq_opts o = {.clock = &fake};
    struct tn_wq *q = tn_wq_new(&o);
    ck_assert_ptr_nonnull(q);
    return q;
}

START_TEST(test_add_after)
{
    struct tn_wq *q = fake_queue();
    tn_wq_add_after(q, "a", 100 * MS);
    tn_wq_add_after(q, "b", 50 * MS);
    tn_wq_add_after(q, "c", 0); /* at once */
    ck_assert_uint_eq(tn_wq_len(q), 1);
    expect_next(q, "c");
    tn_wq_clock_advance(&fake, 49 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 0);
    tn_wq_clock_advance(&fake, 1 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 1);
    tn_wq_clock_advance(&fake, 50 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 2);
    expect_next(q, "b");
    expect_next(q, "a");

    /* A key already waiting keeps the earlier ready time. */
    tn_wq_add_after(q, "x", 10 * SEC);
    tn_wq_add_after(q, "x", 1 * SEC);
    tn_wq_add_after(q, "x", 5 * SEC);
    tn_wq_clock_advance(&fake, 1 * SEC);
    ck_assert_uint_eq(tn_wq_len(q), 1);
    expect_next(q, "x");
    tn_wq_clock_advance(&fake, 20 * SEC);
    ck_assert_uint_eq(tn_wq_len(q), 0);

    /* Many delayed keys come out in ready-time order. */
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02d", (i * 37) % 50);
        tn_wq_add_after(q, key, ((i * 37) % 50 + 1) * MS);
    }
    tn_wq_clock_advance(&fake, 100 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 50);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        expect_next(q, key);
    }
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

static void *blocked_get(void *arg)
{
    struct tn_wq *q = arg;
    const char *k = tn_wq_get(q);
    char *copy = k ? strdup(k) : NULL;
    if (k) tn_wq_done(q, k);
    return copy;
}

START_TEST(test_add_after_wakes_blocked_getter)
{
    struct tn_wq *q = fake_queue();
    pthread_t th;
    pthread_create(&th, NULL, blocked_get, q);
    tn_wq_add_after(q, "late", 30 * SEC);
    usleep(50 * 1000);
    tn_wq_clock_advance(&fake, 30 * SEC);
    char *got = NULL;
    pthread_join(th, (void **)&got);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "late");
    free(got);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_add_after_real_clock)
{
    struct tn_wq *q = tn_wq_new(NULL);
    int64_t t0 = real_ms();
    tn_wq_add_after(q, "a", 100 * MS);
    const char *k = tn_wq_get_timeout(q, 3000, NULL);
    int64_t dt = real_ms() - t0;
    ck_assert_ptr_nonnull(k);
    ck_assert_int_ge(dt, 100);
    tn_wq_done(q, k);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_backoff_sequence)
{
    struct tn_wq *q = fake_queue();
    int64_t want = 5 * MS;
    for (int i = 0; i < 30; i++) {
        int64_t d = tn_wq_when(q, "a");
        ck_assert_int_eq(d, want);
        want = want * 2 > 1000 * SEC ? 1000 * SEC : want * 2;
    }
    ck_assert_int_eq(tn_wq_num_requeues(q, "a"), 30);
    /* Other keys have their own count. */
    ck_assert_int_eq(tn_wq_num_requeues(q, "b"), 0);
    ck_assert_int_eq(tn_wq_when(q, "b"), 5 * MS);
    /* forget resets */
    tn_wq_forget(q, "a");
    ck_assert_int_eq(tn_wq_num_requeues(q, "a"), 0);
    ck_assert_int_eq(tn_wq_when(q, "a"), 5 * MS);
    ck_assert_int_eq(tn_wq_when(q, "a"), 10 * MS);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_add_rate_limited)
{
    struct tn_wq *q = fake_queue();
    tn_wq_add_rate_limited(q, "a");
    ck_assert_uint_eq(tn_wq_len(q), 0);
    tn_wq_clock_advance(&fake, 4 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 0);
    tn_wq_clock_advance(&fake, 1 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 1);
    const char *k = get_now(q);
    /* reconcile failed again: 10 ms this time */
    tn_wq_add_rate_limited(q, k);
    tn_wq_done(q, k);
    tn_wq_clock_advance(&fake, 9 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 0);
    tn_wq_clock_advance(&fake, 1 * MS);
    ck_assert_uint_eq(tn_wq_len(q), 1);
    k = get_now(q);
    ck_assert_int_eq(tn_wq_num_requeues(q, k), 2);
    tn_wq_forget(q, k); /* success */
    tn_wq_done(q, k);
    ck_assert_int_eq(tn_wq_num_requeues(q, "a"), 0);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_bucket)
{
    struct tn_wq *q = fake_queue();
    char key[16];
    /* burst 100: the first 100 retries (of distinct keys) only pay the per-key 5 ms */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(tn_wq_when(q, key), 5 * MS);
    }
    /* then 10 qps: 100 ms, 200 ms, ... */
    ck_assert_int_eq(tn_wq_when(q, "x1"), 100 * MS);
    ck_assert_int_eq(tn_wq_when(q, "x2"), 200 * MS);
    ck_assert_int_eq(tn_wq_when(q, "x3"), 300 * MS);
    /* one second refills 10 tokens (the 3 borrowed ones first) */
    tn_wq_clock_advance(&fake, 1 * SEC);
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "y%d", i);
        ck_assert_int_eq(tn_wq_when(q, key), 5 * MS);
    }
    ck_assert_int_eq(tn_wq_when(q, "z"), 100 * MS);
    /* the bucket never holds more than the burst */
    tn_wq_clock_advance(&fake, 3600 * SEC);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "w%d", i);
        ck_assert_int_eq(tn_wq_when(q, key), 5 * MS);
    }
    ck_assert_int_eq(tn_wq_when(q, "w-last"), 100 * MS);
    tn_wq_shutdown(q);
    tn_wq_free(q);
}
END_TEST

/* ---- shutdown ---- */

START_TEST(test_shutdown_wakes_getters)
{
    struct tn_wq *q = tn_wq_new(NULL);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, blocked_get, q);
    usleep(50 * 1000);
    int64_t t0 = real_ms();
    tn_wq_shutdown(q);
    for (int i = 0; i < 3; i++) {
        void *got = (void *)1;
        pthread_join(th[i], &got);
        ck_assert_ptr_null(got);
    }
    ck_assert_int_lt(real_ms() - t0, 2000);
    ck_assert_int_eq(tn_wq_shutting_down(q), 1);
    /* adds after shutdown are ignored */
    tn_wq_add(q, "late");
    tn_wq_add_after(q, "later", 1);
    ck_assert_uint_eq(tn_wq_len(q), 0);
    int shut = 0;
    ck_assert_ptr_null(tn_wq_get_timeout(q, 100, &shut));
    ck_assert_int_eq(shut, 1);
    tn_wq_free(q);
}
END_TEST

START_TEST(test_shutdown_hands_out_queued)
{
    struct tn_wq *q = tn_wq_new(NULL);
    tn_wq_add(q, "a");
    tn_wq_add(q, "b");
    tn_wq_shutdown(q);
    expect_next(q, "a");
    expect_next(q, "b");
    ck_assert_ptr_null(tn_wq_get(q));
    tn_wq_free(q);
}
END_TEST

struct slow {
    struct tn_wq *q;
    int hold_ms;
    atomic_int done_called;
    atomic_int got;
};

static void *slow_worker(void *arg)
{
    struct slow *s = arg;
    const char *k = tn_wq_get(s->q);
    if (!k) return NULL;
    atomic_store(&s->got, 1);
    usleep(s->hold_ms * 1000);
    atomic_store(&s->done_called, 1);
    tn_wq_done(s->q, k);
    return NULL;
}

START_TEST(test_drain_waits)
{
    static struct slow s;
    memset(&s, 0, sizeof(s));
    s.q = tn_wq_new(NULL);
    s.hold_ms = 300;
    tn_wq_add(s.q, "a");
    pthread_t th;
    pthread_create(&th, NULL, slow_worker, &s);
    while (!atomic_load(&s.got))
        usleep(1000);
    int64_t t0 = real_ms();
    ck_assert_int_eq(tn_wq_shutdown_with_drain(s.q, 5000), 0);
    ck_assert_int_eq(atomic_load(&s.done_called), 1);
    ck_assert_int_ge(real_ms() - t0, 200);
    pthread_join(th, NULL);
    tn_wq_free(s.q);
}
END_TEST

START_TEST(test_drain_timeout)
{
    static struct slow s;
    memset(&s, 0, sizeof(s));
    s.q = tn_wq_new(NULL);
    s.hold_ms = 1000;
    tn_wq_add(s.q, "a");
    pthread_t th;
    pthread_create(&th, NULL, slow_worker, &s);
    while (!atomic_load(&s.got))
        usleep(1000);
    ck_assert_int_eq(tn_wq_shutdown_with_drain(s.q, 100), TN_EIO);
    ck_assert_int_eq(atomic_load(&s.done_called), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(tn_wq_shutdown_with_drain(s.q, 0), 0);
    tn_wq_free(s.q);
}
END_TEST

START_TEST(test_drain_idle)
{
    struct tn_wq *q = tn_wq_new(NULL);
    ck_assert_int_eq(tn_wq_shutdown_with_drain(q, -1), 0);
    tn_wq_free(q);
}
END_TEST

/* ---- metrics ---- */

START_TEST(test_metrics)
{
    struct tn_metrics *r = tn_metrics_new();
    tn_wq_clock_fake(&fake, 0);
    struct tn_wq_opts o = {.clock = &fake, .metrics = r, .name = "jobs", .controller = "job"};
    struct tn_wq *q = tn_wq_new(&o);
    ck_assert_ptr_nonnull(q);
    const char *lv[] = {"job", "jobs"};
    static const char *const ln[] = {"controller", "name", NULL};
    tn_wq_add(q, "a");
    tn_wq_add(q, "a");
    tn_wq_add(q, "b");
    struct tn_metric *adds = tn_metrics_counter(r, "workqueue_adds_total", "", ln);
    struct tn_metric *depth = tn_metrics_gauge(r, "workqueue_depth", "", ln);
    struct tn_metric *retries = tn_metrics_counter(r, "workqueue_retries_total", "", ln);
    ck_assert_ptr_nonnull(adds);
    ck_assert_double_eq(tn_metric_value(adds, lv), 2);
    ck_assert_double_eq(tn_metric_value(depth, lv), 2);
    const char *k = get_now(q);
    ck_assert_double_eq(tn_metric_value(depth, lv), 1);
    tn_wq_add_rate_limited(q, k);
    tn_wq_done(q, k);
    ck_assert_double_eq(tn_metric_value(retries, lv), 1);

    struct tn_metric *longest =
        tn_metrics_gauge(r, "workqueue_longest_running_processor_seconds", "", ln);
    k = get_now(q); /* "b" */
    tn_wq_clock_advance(&fake, 3 * SEC);
    /* updated by the queue's metrics thread every 500 ms */
    int64_t until = real_ms() + 3000;
    while (tn_metric_value(longest, lv) < 3 && real_ms() < until)
        usleep(10 * 1000);
    ck_assert_double_eq_tol(tn_metric_value(longest, lv), 3, 1e-6);
    tn_wq_done(q, k);
    tn_wq_shutdown(q);
    tn_wq_free(q);
    tn_metrics_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_workqueue");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fifo);
    tcase_add_test(tc, test_dedup);
    tcase_add_test(tc, test_add_while_processing);
    tcase_add_test(tc, test_exclusivity);
    tcase_add_test(tc, test_add_after);
    tcase_add_test(tc, test_add_after_wakes_blocked_getter);
    tcase_add_test(tc, test_add_after_real_clock);
    tcase_add_test(tc, test_backoff_sequence);
    tcase_add_test(tc, test_add_rate_limited);
    tcase_add_test(tc, test_bucket);
    tcase_add_test(tc, test_shutdown_wakes_getters);
    tcase_add_test(tc, test_shutdown_hands_out_queued);
    tcase_add_test(tc, test_drain_waits);
    tcase_add_test(tc, test_drain_timeout);
    tcase_add_test(tc, test_drain_idle);
    tcase_add_test(tc, test_metrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
