/* Event recorder against a real tandem-apiserver: the Event's fields, aggregation of repeats into
 * one Event with a count, distinct messages making distinct Events, listing by
 * involvedObject.name, and the non-blocking bounded queue. */
#include "kube_testutil.h"

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "kube/client.h"
#include "kube/events.h"

#include <check.h>
#include <regex.h>

static struct tsrv srv;
static struct tn_kube_client *cl;
static const struct tn_kube_gvr EVENTS = {"", "v1", "events"};
static const struct tn_kube_gvr CONFIGMAPS = {"", "v1", "configmaps"};

static struct tn_kube_client *client_to(int port)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct tn_kube_client_opts o = {.max_retries = -1, .timeout_ms = 2000};
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(url), &o, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

static void setup(void)
{
    ck_assert_int_eq(tsrv_init(&srv, 0, 1), 0);
    ck_assert_msg(tsrv_start(&srv) == 0, "tandem-apiserver did not start (%s)", tsrv_bin());
    cl = client_to(srv.port);
}

static void teardown(void)
{
    tn_kube_client_free(cl);
    cl = NULL;
    tsrv_kill(&srv);
}

static struct tn_event_recorder *recorder(struct tn_metrics *m)
{
    struct tn_event_recorder_opts o = {
        .client = cl, .component = "tandem-gm", .host = "node-1", .metrics = m};
    struct tn_err err = {0};
    struct tn_event_recorder *r = tn_event_recorder_new(&o, &err);
    ck_assert_msg(r != NULL, "%s", err.msg);
    return r;
}

static json_t *make_configmap(const char *name)
{
    json_t *cm =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", name, "namespace", "default", "data", "k", "v");
    json_t *out = NULL;
    struct tn_err err = {0};
    int rc = tn_kube_create(cl, &CONFIGMAPS, "default", cm, &out, NULL, &err);
    json_decref(cm);
    ck_assert_msg(rc == 0, "create configmap: %s", err.msg);
    return out;
}

/* Items (new reference) of the events in ns whose involvedObject.name is name. */
static json_t *events_for(const char *ns, const char *name)
{
    char sel[256];
    snprintf(sel, sizeof sel, "involvedObject.name=%s", name);
    struct tn_kube_list_opts lo = {.field_selector = sel};
    json_t *list = NULL;
    struct tn_err err = {0};
    int rc = tn_kube_list(cl, &EVENTS, ns, &lo, &list, NULL, &err);
    ck_assert_msg(rc == 0, "list events: %s", err.msg);
    json_t *items = json_incref(json_object_get(list, "items"));
    json_decref(list);
    ck_assert(json_is_array(items));
    return items;
}

static void flush(struct tn_event_recorder *r)
{
    ck_assert_int_eq(tn_event_recorder_flush(r, 10000), 0);
}

static int matches(const char *re_s, const char *s)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, re_s, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

#define RFC3339 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"

START_TEST(test_event_fields)
{
    json_t *cm = make_configmap("cm1");
    struct tn_event_recorder *r = recorder(NULL);
    tn_event_record(r, cm, TN_EVENT_NORMAL, "Created", "created config map %s with %d key", "cm1",
                    1);
    flush(r);
    json_t *items = events_for("default", "cm1");
    ck_assert_uint_eq(json_array_size(items), 1);
    json_t *ev = json_array_get(items, 0);
    const char *name = tn_json_str(ev, "metadata.name", "");
    ck_assert_msg(matches("^cm1\\.[0-9a-f]{12,16}$", name), "event name %s", name);
    ck_assert_str_eq(tn_json_str(ev, "metadata.namespace", ""), "default");
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.apiVersion", ""), "v1");
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.kind", ""), "ConfigMap");
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.name", ""), "cm1");
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.namespace", ""), "default");
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.uid", "x"),
                     tn_json_str(cm, "metadata.uid", "y"));
    ck_assert_str_eq(tn_json_str(ev, "involvedObject.resourceVersion", "x"),
                     tn_json_str(cm, "metadata.resourceVersion", "y"));
    ck_assert_str_eq(tn_json_str(ev, "reason", ""), "Created");
    ck_assert_str_eq(tn_json_str(ev, "message", ""), "created config map cm1 with 1 key");
    ck_assert_str_eq(tn_json_str(ev, "type", ""), "Normal");
    ck_assert_str_eq(tn_json_str(ev, "source.component", ""), "tandem-gm");
    ck_assert_str_eq(tn_json_str(ev, "source.host", ""), "node-1");
    ck_assert_str_eq(tn_json_str(ev, "reportingComponent", ""), "tandem-gm");
    ck_assert_str_eq(tn_json_str(ev, "reportingInstance", ""), "node-1");
    ck_assert(matches(RFC3339, tn_json_str(ev, "firstTimestamp", "")));
    ck_assert(matches(RFC3339, tn_json_str(ev, "lastTimestamp", "")));
    ck_assert_int_eq(tn_json_int(ev, "count", 0), 1);
    json_decref(items);
    json_decref(cm);
    tn_event_recorder_free(r);
}
END_TEST

START_TEST(test_repeats_aggregate)
{
    struct tn_metrics *m = tn_metrics_new();
    json_t *cm = make_configmap("cm2");
    struct tn_event_recorder *r = recorder(m);
    for (int i = 0; i < 5; i++)
        tn_event_record(r, cm, TN_EVENT_WARNING, "SyncFailed", "cannot reach %s", "edge-1");
    flush(r);
    json_t *items = events_for("default", "cm2");
    ck_assert_uint_eq(json_array_size(items), 1);
    json_t *ev = json_array_get(items, 0);
    ck_assert_int_eq(tn_json_int(ev, "count", 0), 5);
    ck_assert_str_eq(tn_json_str(ev, "type", ""), "Warning");
    ck_assert_str_ge(tn_json_str(ev, "lastTimestamp", ""), tn_json_str(ev, "firstTimestamp", ""));
    char *first_name = strdup(tn_json_str(ev, "metadata.name", ""));
    json_decref(items);

    struct tn_event_stats st;
    tn_event_recorder_stats(r, &st);
    ck_assert_uint_eq(st.created, 1);
    ck_assert_uint_eq(st.patched, 4);
    ck_assert_uint_eq(st.dropped, 0);
    ck_assert_uint_eq(st.failed, 0);

    /* another message is another Event; so is another type or reason */
    tn_event_record(r, cm, TN_EVENT_WARNING, "SyncFailed", "cannot reach %s", "edge-2");
    tn_event_record(r, cm, TN_EVENT_NORMAL, "SyncFailed", "cannot reach %s", "edge-1");
    tn_event_record(r, cm, TN_EVENT_WARNING, "Synced", "cannot reach %s", "edge-1");
    /* and the first keeps counting */
    tn_event_record(r, cm, TN_EVENT_WARNING, "SyncFailed", "cannot reach %s", "edge-1");
    flush(r);
    items = events_for("default", "cm2");
    ck_assert_uint_eq(json_array_size(items), 4);
    size_t i;
    json_t *it;
    int seen_first = 0;
    json_array_foreach(items, i, it)
    {
        if (!strcmp(tn_json_str(it, "metadata.name", ""), first_name)) {
            seen_first = 1;
            ck_assert_int_eq(tn_json_int(it, "count", 0), 6);
        } else {
            ck_assert_int_eq(tn_json_int(it, "count", 0), 1);
        }
    }
    ck_assert(seen_first);
    json_decref(items);
    free(first_name);
    tn_event_recorder_free(r);
    json_decref(cm);
    tn_metrics_free(m);
}
END_TEST

START_TEST(test_field_selector)
{
    struct tn_event_recorder *r = recorder(NULL);
    struct tn_event_ref a = {.api_version = "sedna.io/v1alpha1",
                             .kind = "JointInferenceService",
                             .namespace_ = "default",
                             .name = "svc-a",
                             .uid = "11111111-1111-4111-8111-111111111111"};
    struct tn_event_ref b = a;
    b.name = "svc-b";
    b.uid = "22222222-2222-4222-8222-222222222222";
    tn_event_record_ref(r, &a, TN_EVENT_NORMAL, "Scheduled", "worker %d placed", 1);
    tn_event_record_ref(r, &a, TN_EVENT_NORMAL, "Scheduled", "worker %d placed", 2);
    tn_event_record_ref(r, &b, TN_EVENT_NORMAL, "Scheduled", "worker %d placed", 1);
    flush(r);
    json_t *ia = events_for("default", "svc-a");
    json_t *ib = events_for("default", "svc-b");
    json_t *in = events_for("default", "svc-none");
    ck_assert_uint_eq(json_array_size(ia), 2);
    ck_assert_uint_eq(json_array_size(ib), 1);
    ck_assert_uint_eq(json_array_size(in), 0);
    size_t i;
    json_t *it;
    json_array_foreach(ia, i, it)
    {
        ck_assert_str_eq(tn_json_str(it, "involvedObject.name", ""), "svc-a");
        ck_assert_str_eq(tn_json_str(it, "involvedObject.kind", ""), "JointInferenceService");
    }
    ck_assert_str_eq(tn_json_str(json_array_get(ib, 0), "involvedObject.uid", ""), b.uid);
    json_decref(ia);
    json_decref(ib);
    json_decref(in);
    tn_event_recorder_free(r);
}
END_TEST

START_TEST(test_cluster_scoped_goes_to_default)
{
    struct tn_event_recorder *r = recorder(NULL);
    struct tn_event_ref n = {.api_version = "v1", .kind = "Node", .name = "edge-node-1"};
    tn_event_record_ref(r, &n, TN_EVENT_WARNING, "NodeNotReady", "no heartbeat for %ds", 40);
    flush(r);
    json_t *items = events_for("default", "edge-node-1");
    ck_assert_uint_eq(json_array_size(items), 1);
    ck_assert_ptr_null(tn_json_get(json_array_get(items, 0), "involvedObject.namespace"));
    json_decref(items);
    tn_event_recorder_free(r);
}
END_TEST

START_TEST(test_deleted_event_is_recreated)
{
    struct tn_event_recorder *r = recorder(NULL);
    struct tn_event_ref a = {
        .api_version = "v1", .kind = "Pod", .namespace_ = "default", .name = "p1"};
    tn_event_record_ref(r, &a, TN_EVENT_NORMAL, "Pulled", "image pulled");
    flush(r);
    json_t *items = events_for("default", "p1");
    ck_assert_uint_eq(json_array_size(items), 1);
    const char *name = tn_json_str(json_array_get(items, 0), "metadata.name", "");
    struct tn_err err = {0};
    ck_assert_int_eq(tn_kube_delete(cl, &EVENTS, "default", name, NULL, NULL, &err), 0);
    json_decref(items);
    tn_event_record_ref(r, &a, TN_EVENT_NORMAL, "Pulled", "image pulled");
    flush(r);
    items = events_for("default", "p1");
    ck_assert_uint_eq(json_array_size(items), 1);
    ck_assert_int_eq(tn_json_int(json_array_get(items, 0), "count", 0), 1);
    json_decref(items);
    struct tn_event_stats st;
    tn_event_recorder_stats(r, &st);
    ck_assert_uint_eq(st.created, 2);
    ck_assert_uint_eq(st.failed, 0);
    tn_event_recorder_free(r);
}
END_TEST

/* A server that accepts connections and never answers: the sender is stuck in a request. */
START_TEST(test_full_queue_drops_without_blocking)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(lfd, 64), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &l), 0);
    struct tn_kube_client *silent = client_to(ntohs(a.sin_port));

    struct tn_metrics *m = tn_metrics_new();
    struct tn_event_recorder_opts o = {.client = silent,
                                       .component = "tandem-lc",
                                       .queue_size = 4,
                                       .flush_timeout_ms = 200,
                                       .metrics = m};
    struct tn_err err = {0};
    struct tn_event_recorder *r = tn_event_recorder_new(&o, &err);
    ck_assert_ptr_nonnull(r);
    struct tn_event_ref ref = {
        .api_version = "v1", .kind = "Pod", .namespace_ = "default", .name = "p"};
    int64_t t0 = tn_mono_ms();
    for (int i = 0; i < 200; i++)
        tn_event_record_ref(r, &ref, TN_EVENT_NORMAL, "Tick", "tick %d", i);
    int64_t dt = tn_mono_ms() - t0;
    ck_assert_int_lt(dt, 500);
    struct tn_event_stats st;
    tn_event_recorder_stats(r, &st);
    ck_assert_uint_ge(st.dropped, 200 - 5);
    ck_assert_uint_le(st.dropped, 200 - 4);
    static const char *const lbl[] = {"component", NULL};
    struct tn_metric *dm = tn_metrics_counter(m, "event_recorder_dropped_total", "", lbl);
    const char *lv[] = {"tandem-lc"};
    ck_assert_double_eq(tn_metric_value(dm, lv), (double)st.dropped);
    ck_assert_int_eq(tn_event_recorder_flush(r, 100), TN_EIO);
    /* free gives up after the flush timeout plus the request in flight */
    t0 = tn_mono_ms();
    tn_event_recorder_free(r);
    ck_assert_int_lt(tn_mono_ms() - t0, 200 + 2000 + 1000);
    tn_kube_client_free(silent);
    close(lfd);
    tn_metrics_free(m);
}
END_TEST

START_TEST(test_bad_options)
{
    struct tn_err err = {0};
    struct tn_event_recorder_opts o = {.client = cl};
    ck_assert_ptr_null(tn_event_recorder_new(&o, &err));
    ck_assert_int_eq(err.code, TN_EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_events");
    TCase *tc = tcase_create("recorder");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_event_fields);
    tcase_add_test(tc, test_repeats_aggregate);
    tcase_add_test(tc, test_field_selector);
    tcase_add_test(tc, test_cluster_scoped_goes_to_default);
    tcase_add_test(tc, test_deleted_event_is_recreated);
    tcase_add_test(tc, test_full_queue_drops_without_blocking);
    tcase_add_test(tc, test_bad_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tn_log_setup("kube_events_test", TN_LOG_ERROR, 0, 2);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
