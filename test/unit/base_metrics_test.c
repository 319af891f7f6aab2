/* Unit tests for pkg/base/metrics: the exact Prometheus text exposition of counters, gauges and
 * histograms (ordering, HELP/TYPE lines, cumulative buckets), escaping, registration rules, and
 * exact totals under concurrent updates. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/metrics.h"

/* Renders r and compares with want exactly. */
static void expect_render_at(struct tn_metrics *r, const char *want, int line)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    tn_metrics_render(r, &b);
    const char *got = b.data ? b.data : "";
    ck_assert_msg(!strcmp(got, want), "line %d: exposition differs\n--- got:\n%s--- want:\n%s",
                  line, got, want);
    tn_buf_free(&b);
}
#define expect_render(r, w) expect_render_at((r), (w), __LINE__)

START_TEST(test_counter_with_labels)
{
    struct tn_metrics *r = tn_metrics_new();
    const char *labels[] = {"code", "method", NULL};
    struct tn_metric *c =
        tn_metrics_counter(r, "rest_client_requests_total", "Number of HTTP requests.", labels);
    ck_assert_ptr_nonnull(c);
    const char *get200[] = {"200", "GET"}, *post500[] = {"500", "POST"};
    const char *del200[] = {"200", "DELETE"};
    tn_metric_inc(c, post500);
    tn_metric_inc(c, get200);
    tn_metric_inc(c, get200);
    tn_metric_add(c, del200, 2.5);
    tn_metric_add(c, del200, -1); /* counters never go down */
    ck_assert_double_eq(tn_metric_value(c, get200), 2);
    ck_assert_double_eq(tn_metric_value(c, del200), 2.5);
    const char *none[] = {"404", "GET"};
    ck_assert_double_eq(tn_metric_value(c, none), 0);
    expect_render(r, "# HELP rest_client_requests_total Number of HTTP requests.\n"
                     "# TYPE rest_client_requests_total counter\n"
                     "rest_client_requests_total{code=\"200\",method=\"DELETE\"} 2.5\n"
                     "rest_client_requests_total{code=\"200\",method=\"GET\"} 2\n"
                     "rest_client_requests_total{code=\"500\",method=\"POST\"} 1\n");
    tn_metrics_free(r);
}
END_TEST

START_TEST(test_gauge)
{
    struct tn_metrics *r = tn_metrics_new();
    struct tn_metric *g = tn_metrics_gauge(r, "workqueue_depth", "Current depth.", NULL);
    /* an unlabelled family is exposed at 0 right away */
    expect_render(r, "# HELP workqueue_depth Current depth.\n"
                     "# TYPE workqueue_depth gauge\n"
                     "workqueue_depth 0\n");
    tn_metric_set(g, NULL, 7);
    tn_metric_add(g, NULL, -3.5);
    tn_metric_inc(g, NULL);
    ck_assert_double_eq(tn_metric_value(g, NULL), 4.5);
    expect_render(r, "# HELP workqueue_depth Current depth.\n"
                     "# TYPE workqueue_depth gauge\n"
                     "workqueue_depth 4.5\n");
    tn_metric_set(g, NULL, 1e-7);
    expect_render(r, "# HELP workqueue_depth Current depth.\n"
                     "# TYPE workqueue_depth gauge\n"
                     "workqueue_depth 1e-07\n");
    tn_metric_set(g, NULL, INFINITY);
    expect_render(r, "# HELP workqueue_depth Current depth.\n"
                     "# TYPE workqueue_depth gauge\n"
                     "workqueue_depth +Inf\n");
    tn_metrics_free(r);
}
END_TEST

START_TEST(test_histogram)
{
    struct tn_metrics *r = tn_metrics_new();
    const char *labels[] = {"controller", NULL};
    const double buckets[] = {0.1, 0.5, 1};
    struct tn_metric *h = tn_metrics_histogram(r, "controller_runtime_reconcile_time_seconds",
                                               "Reconcile time.", labels, buckets, 3);
    ck_assert_ptr_nonnull(h);
    const char *w[] = {"widgets"}, *a[] = {"apps"};
    tn_metric_observe(h, w, 0.25);
    tn_metric_observe(h, w, 0.5); /* le is inclusive */
    tn_metric_observe(h, w, 2);
    tn_metric_observe(h, a, 0.0625);
    ck_assert_double_eq(tn_metric_value(h, w), 3);
    expect_render(
        r, "# HELP controller_runtime_reconcile_time_seconds Reconcile time.\n"
           "# TYPE controller_runtime_reconcile_time_seconds histogram\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"apps\",le=\"0.1\"} 1\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"apps\",le=\"0.5\"} 1\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"apps\",le=\"1\"} 1\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"apps\",le=\"+Inf\"} 1\n"
           "controller_runtime_reconcile_time_seconds_sum{controller=\"apps\"} 0.0625\n"
           "controller_runtime_reconcile_time_seconds_count{controller=\"apps\"} 1\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"widgets\",le=\"0.1\"} 0\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"widgets\",le=\"0.5\"} 2\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"widgets\",le=\"1\"} 2\n"
           "controller_runtime_reconcile_time_seconds_bucket{controller=\"widgets\",le=\"+Inf\"} "
           "3\n"
           "controller_runtime_reconcile_time_seconds_sum{controller=\"widgets\"} 2.75\n"
           "controller_runtime_reconcile_time_seconds_count{controller=\"widgets\"} 3\n");
    tn_metrics_free(r);
}
END_TEST

START_TEST(test_histogram_unlabelled)
{
    struct tn_metrics *r = tn_metrics_new();
    const double buckets[] = {1, INFINITY}; /* an explicit +Inf is not repeated */
    struct tn_metric *h = tn_metrics_histogram(r, "h_seconds", "H.", NULL, buckets, 2);
    ck_assert_ptr_nonnull(h);
    tn_metric_observe(h, NULL, 0.5);
    expect_render(r, "# HELP h_seconds H.\n"
                     "# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{le=\"1\"} 1\n"
                     "h_seconds_bucket{le=\"+Inf\"} 1\n"
                     "h_seconds_sum 0.5\n"
                     "h_seconds_count 1\n");
    tn_metrics_free(r);
}
END_TEST

START_TEST(test_escaping_and_order)
{
    struct tn_metrics *r = tn_metrics_new();
    const char *labels[] = {"path", NULL};
    /* registered out of order: rendering sorts families by name */
    struct tn_metric *z =
        tn_metrics_counter(r, "zz_total", "Back\\slash and\nnewline \"q\".", labels);
    struct tn_metric *a = tn_metrics_counter(r, "aa_total", "First.", labels);
    const char *v1[] = {"a\"b\\c\nd"}, *v2[] = {""};
    tn_metric_inc(z, v1);
    tn_metric_inc(a, v2);
    expect_render(r, "# HELP aa_total First.\n"
                     "# TYPE aa_total counter\n"
                     "aa_total{path=\"\"} 1\n"
                     "# HELP zz_total Back\\\\slash and\\nnewline \"q\".\n"
                     "# TYPE zz_total counter\n"
                     "zz_total{path=\"a\\\"b\\\\c\\nd\"} 1\n");
    tn_metrics_free(r);
}
END_TEST

START_TEST(test_registration)
{
    struct tn_metrics *r = tn_metrics_new();
    const char *labels[] = {"name", NULL}, *other[] = {"queue", NULL};
    struct tn_metric *c = tn_metrics_counter(r, "workqueue_adds_total", "Adds.", labels);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(tn_metrics_counter(r, "workqueue_adds_total", "Adds.", labels), c);
    ck_assert_ptr_null(tn_metrics_gauge(r, "workqueue_adds_total", "Adds.", labels));
    ck_assert_ptr_null(tn_metrics_counter(r, "workqueue_adds_total", "Adds.", other));
    ck_assert_ptr_null(tn_metrics_counter(r, "bad-name", "x", NULL));
    ck_assert_ptr_null(tn_metrics_counter(r, "9lives", "x", NULL));
    const char *bad_label[] = {"__reserved", NULL}, *le[] = {"le", NULL};
    ck_assert_ptr_null(tn_metrics_counter(r, "x_total", "x", bad_label));
    const double b[] = {1, 2}, unsorted[] = {2, 1};
    ck_assert_ptr_null(tn_metrics_histogram(r, "h", "x", le, b, 2));
    ck_assert_ptr_null(tn_metrics_histogram(r, "h", "x", NULL, unsorted, 2));
    struct tn_metric *h = tn_metrics_histogram(r, "h", "x", NULL, b, 2);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_null(tn_metrics_histogram(r, "h", "x", NULL, b, 1));
    /* wrong-kind updates and a NULL family are ignored */
    tn_metric_set(c, (const char *[]){"q"}, 5);
    tn_metric_observe(c, (const char *[]){"q"}, 5);
    tn_metric_inc(NULL, NULL);
    tn_metric_observe(NULL, NULL, 1);
    ck_assert_double_eq(tn_metric_value(NULL, NULL), 0);
    /* the labelled counter was never updated validly: not rendered */
    expect_render(r, "# HELP h x\n"
                     "# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 0\n"
                     "h_bucket{le=\"2\"} 0\n"
                     "h_bucket{le=\"+Inf\"} 0\n"
                     "h_sum 0\n"
                     "h_count 0\n");
    tn_metrics_free(r);
}
END_TEST

#define THREADS 4
#define ITERS 100000

struct worker {
    struct tn_metric *c, *h;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    const char *shared[] = {"shared"};
    const char *own[] = {w->id % 2 ? "odd" : "even"};
    for (int i = 0; i < ITERS; i++) {
        tn_metric_inc(w->c, shared);
        tn_metric_inc(w->c, own);
        tn_metric_observe(w->h, NULL, (double)(i % 3));
    }
    return NULL;
}

START_TEST(test_concurrency)
{
    struct tn_metrics *r = tn_metrics_new();
    const char *labels[] = {"kind", NULL};
    const double b[] = {0.5, 1.5};
    struct worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        /* every thread registers too: registration is idempotent and thread-safe */
        w[i].c = tn_metrics_counter(r, "ops_total", "Ops.", labels);
        w[i].h = tn_metrics_histogram(r, "op_value", "Values.", NULL, b, 2);
        w[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_double_eq(tn_metric_value(w[0].c, (const char *[]){"shared"}), THREADS * ITERS);
    ck_assert_double_eq(tn_metric_value(w[0].c, (const char *[]){"odd"}), THREADS / 2 * ITERS);
    ck_assert_double_eq(tn_metric_value(w[0].c, (const char *[]){"even"}), THREADS / 2 * ITERS);
    ck_assert_double_eq(tn_metric_value(w[0].h, NULL), THREADS * ITERS);
    struct tn_buf out;
    tn_buf_init(&out, 0);
    tn_metrics_render(r, &out);
    ck_assert_ptr_nonnull(strstr(out.data, "ops_total{kind=\"shared\"} 400000\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "op_value_count 400000\n"));
    /* i % 3 over 100000: 33334 zeros, 33333 ones, 33333 twos per thread */
    ck_assert_ptr_nonnull(strstr(out.data, "op_value_bucket{le=\"0.5\"} 133336\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "op_value_bucket{le=\"1.5\"} 266668\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "op_value_sum 399996\n"));
    tn_buf_free(&out);
    tn_metrics_free(r);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("base_metrics");
    TCase *tc = tcase_create("exposition");
    tcase_add_test(tc, test_counter_with_labels);
    tcase_add_test(tc, test_gauge);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_histogram_unlabelled);
    tcase_add_test(tc, test_escaping_and_order);
    tcase_add_test(tc, test_registration);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrency);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
