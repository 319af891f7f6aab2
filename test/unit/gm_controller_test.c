/* Tests of the GM controller framework (pkg/gm/controller.c) against a real tandem-apiserver: a toy
 * controller whose primary resource is ConfigMaps labelled app=toy and which owns Secrets (one per
 * ConfigMap, a copy of its data with a controller ownerReference); retries with backoff,
 * requeue_after, per-key exclusivity with 4 workers, status written only when it changed, a
 * clean stop, and a clear error when a cache cannot sync. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "gm/controller.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube_testutil.h"

static const struct tn_kube_gvr CM = {"", "v1", "configmaps"};
static const struct tn_kube_gvr SEC = {"", "v1", "secrets"};
static const struct tn_kube_gvr NSS = {"", "v1", "namespaces"};
static const struct tn_kube_gvr CRDS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
static const struct tn_kube_gvr WIDGETS = {"test.tandem.io", "v1", "widgets"};

static const char CRD_JSON[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.test.tandem.io\"},"
    "\"spec\":{\"group\":\"test.tandem.io\",\"scope\":\"Namespaced\","
    "\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\","
    "\"listKind\":\"WidgetList\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"properties\":{\"mode\":{\"type\":\"string\"}}},"
    "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}"
    "}}}}]}}";

static struct tsrv g_srv;

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t dl_ = tn_mono_ms() + (ms);                                                         \
        while (!(cond) && tn_mono_ms() < dl_)                                                      \
            tsleep_ms(10);                                                                         \
        ck_assert_msg((cond), "timed out waiting for " #cond);                                     \
    } while (0)

/* ---- the toy controller ------------------------------------------------------------------- */

#define MAXKEYS 64

struct kstate {
    char name[64];
    atomic_int inflight;
    atomic_int attempts;
    int64_t times[8]; /* tn_mono_ms of the first attempts */
};

struct toy {
    pthread_mutex_t mu;
    struct kstate keys[MAXKEYS];
    int nkeys;
    atomic_int total;  /* reconciles started */
    atomic_int global; /* reconciles running now */
    atomic_int max_global;
    atomic_int overlaps; /* a key reconciled by two workers at once */
    atomic_int after_stop;
    atomic_int stopped;
    int sleep_ms;
};

static struct kstate *kst(struct toy *t, const char *name)
{
    pthread_mutex_lock(&t->mu);
    struct kstate *k = NULL;
    for (int i = 0; i < t->nkeys; i++)
        if (strcmp(t->keys[i].name, name) == 0) k = &t->keys[i];
    if (!k && t->nkeys < MAXKEYS) {
        k = &t->keys[t->nkeys++];
        snprintf(k->name, sizeof(k->name), "%s", name);
    }
    pthread_mutex_unlock(&t->mu);
    ck_assert_ptr_nonnull(k);
    return k;
}

static void toy_init(struct toy *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
}

/* A Secret named like the ConfigMap, its data the ConfigMap's base64-encoded, owned by it. */
static json_t *secret_for(const json_t *cm)
{
    json_t *data = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tn_json_get(cm, "data"), k, v)
    {
        const char *s = json_string_value(v);
        char *b = tn_base64_encode((const unsigned char *)s, strlen(s));
        json_object_set_new(data, k, json_string(b));
        free(b);
    }
    return json_pack("{s:s,s:s,s:{s:s,s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:o}", "apiVersion", "v1",
                     "kind", "Secret", "metadata", "name", tn_json_str(cm, "metadata.name", ""),
                     "ownerReferences", "apiVersion", "v1", "kind", "ConfigMap", "name",
                     tn_json_str(cm, "metadata.name", ""), "uid",
                     tn_json_str(cm, "metadata.uid", ""), "controller", 1, "blockOwnerDeletion", 1,
                     "data", data);
}

static struct tn_result toy_reconcile(struct tn_rctx *ctx, const char *ns, const char *name,
                                      void *arg)
{
    struct toy *t = arg;
    struct tn_result r = {0};
    struct kstate *k = kst(t, name);
    if (atomic_load(&t->stopped)) atomic_fetch_add(&t->after_stop, 1);
    atomic_fetch_add(&t->total, 1);
    if (atomic_fetch_add(&k->inflight, 1) > 0) atomic_fetch_add(&t->overlaps, 1);
    int g = atomic_fetch_add(&t->global, 1) + 1;
    int mg = atomic_load(&t->max_global);
    while (g > mg && !atomic_compare_exchange_weak(&t->max_global, &mg, g)) {
    }
    int attempt = atomic_fetch_add(&k->attempts, 1) + 1;
    if (attempt <= 8) k->times[attempt - 1] = tn_mono_ms();
    ck_assert_str_eq(tn_rctx_name(ctx), name);
    ck_assert_int_eq(strlen(tn_rctx_id(ctx)), 36);
    tn_rctx_log(ctx, TN_LOG_DEBUG, "toy reconcile", "attempt", "n", (const char *)0);
    if (t->sleep_ms) tsleep_ms(t->sleep_ms);

    if (strncmp(name, "flaky", 5) == 0 && attempt < 3) {
        r.err = TN_EIO;
        goto out;
    }
    if (strncmp(name, "later", 5) == 0 && attempt == 1) {
        r.requeue_after_ms = 300;
        goto out;
    }
    json_t *cm = tn_rctx_get(ctx, &CM, ns, name);
    if (!cm) goto out; /* deleted: the Secret goes with it (GC) */
    json_t *sec = tn_rctx_get(ctx, &SEC, ns, name);
    if (!sec) {
        json_t *want = secret_for(cm);
        struct tn_err err = {0};
        int rc = tn_kube_create(tn_rctx_client(ctx), &SEC, ns, want, NULL, NULL, &err);
        json_decref(want);
        if (rc == 0)
            tn_rctx_event(ctx, cm, TN_EVENT_NORMAL, "SecretCreated", "created secret %s", name);
        else if (rc != TN_EEXIST)
            r.err = rc;
    }
    json_decref(sec);
    json_decref(cm);
out:
    atomic_fetch_sub(&t->global, 1);
    atomic_fetch_sub(&k->inflight, 1);
    return r;
}

/* ---- helpers ------------------------------------------------------------------------------ */

struct env {
    struct tn_metrics *metrics;
    struct tn_kube_client *c;
    struct tn_mgr *m;
    struct toy toy;
    char ns[32];
};

/* One server per process: with check's fork mode every test child starts its own (a child's exit
 * runs the atexit handler that kills the server it inherited). */
static void srv_up(void)
{
    static pid_t owner;
    if (owner == getpid()) return;
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 1), 0);
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    owner = getpid();
}

static void env_init(struct env *e, const char *ns)
{
    srv_up();
    memset(e, 0, sizeof(*e));
    toy_init(&e->toy);
    snprintf(e->ns, sizeof(e->ns), "%s", ns);
    e->metrics = tn_metrics_new();
    struct tn_kube_client_opts o = {.metrics = e->metrics, .qps = 1e6, .burst = 1000000};
    struct tn_err err = {0};
    e->c = tn_kube_client_new(tcfg_new(g_srv.base), &o, &err);
    ck_assert_msg(e->c != NULL, "%s", err.msg);
    json_t *n = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                          "name", ns);
    int rc = tn_kube_create(e->c, &NSS, NULL, n, NULL, NULL, &err);
    json_decref(n);
    ck_assert_msg(rc == 0 || rc == TN_EEXIST, "%s", err.msg);
    struct tn_mgr_opts mo = {.metrics = e->metrics, .namespace_ = ns};
    e->m = tn_mgr_new(e->c, &mo, &err);
    ck_assert_msg(e->m != NULL, "%s", err.msg);
}

static void env_free(struct env *e)
{
    tn_mgr_free(e->m);
    tn_kube_client_free(e->c);
    tn_metrics_free(e->metrics);
    pthread_mutex_destroy(&e->toy.mu);
}

static struct tn_controller *add_toy(struct env *e, int workers)
{
    struct tn_controller_spec s = {
        .name = "toy",
        .primary = CM,
        .primary_kind = "ConfigMap",
        .primary_label_selector = "app=toy",
        .owns = &SEC,
        .nowns = 1,
        .reconcile = toy_reconcile,
        .arg = &e->toy,
        .workers = workers,
    };
    struct tn_err err = {0};
    struct tn_controller *c = tn_mgr_add_controller(e->m, &s, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

static void start(struct env *e)
{
    struct tn_err err = {0};
    int rc = tn_mgr_start(e->m, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

static void make_cm(struct env *e, const char *name, const char *v)
{
    json_t *o =
        json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", name, "labels", "app", "toy", "data", "v", v);
    struct tn_err err = {0};
    int rc = tn_kube_create(e->c, &CM, e->ns, o, NULL, NULL, &err);
    json_decref(o);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

/* 1 when the Secret exists with the ConfigMap's data; *uid (optional) receives its uid. */
static int secret_ok(struct env *e, const char *name, const char *v, char *uid, size_t n)
{
    json_t *s = NULL;
    if (tn_kube_get(e->c, &SEC, e->ns, name, &s, NULL, NULL) != 0) return 0;
    char *b = tn_base64_encode((const unsigned char *)v, strlen(v));
    int ok = strcmp(tn_json_str(s, "data.v", ""), b) == 0;
    json_t *ref = json_array_get(tn_json_get(s, "metadata.ownerReferences"), 0);
    ok = ok && ref && tn_json_bool(ref, "controller", 0) &&
         strcmp(tn_json_str(ref, "name", ""), name) == 0;
    if (uid) snprintf(uid, n, "%s", tn_json_str(s, "metadata.uid", ""));
    free(b);
    json_decref(s);
    return ok;
}

static int count_secrets(struct env *e)
{
    json_t *l = NULL;
    if (tn_kube_list(e->c, &SEC, e->ns, NULL, &l, NULL, NULL) != 0) return -1;
    int n = (int)json_array_size(json_object_get(l, "items"));
    json_decref(l);
    return n;
}

static double metric(struct env *e, const char *name, const char *result)
{
    static const char *const lc[] = {"controller", NULL};
    static const char *const lcr[] = {"controller", "result", NULL};
    struct tn_metric *f = tn_metrics_counter(e->metrics, name, "", result ? lcr : lc);
    if (!f) f = tn_metrics_gauge(e->metrics, name, "", lc);
    ck_assert_ptr_nonnull(f);
    const char *v[] = {"toy", result};
    return tn_metric_value(f, v);
}

/* Waits until no reconcile started for quiet_ms (bounded by 10 s). */
static void settle(atomic_int *counter, int quiet_ms)
{
    int64_t dl = tn_mono_ms() + 10000;
    int last = atomic_load(counter);
    int64_t since = tn_mono_ms();
    while (tn_mono_ms() < dl) {
        tsleep_ms(20);
        int now = atomic_load(counter);
        if (now != last) {
            last = now;
            since = tn_mono_ms();
        } else if (tn_mono_ms() - since >= quiet_ms) {
            return;
        }
    }
    ck_abort_msg("reconciles never settled");
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(test_creates_and_recreates_owned)
{
    struct env e;
    env_init(&e, "t-create");
    add_toy(&e, 2);
    start(&e);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "cm-%d", i);
        make_cm(&e, name, name);
    }
    /* A ConfigMap without the label is not the toy's. */
    json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                          "metadata", "name", "other", "data", "v", "x");
    ck_assert_int_eq(tn_kube_create(e.c, &CM, e.ns, o, NULL, NULL, NULL), 0);
    json_decref(o);
    WAIT_FOR(count_secrets(&e) == 20, 15000);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "cm-%d", i);
        ck_assert_msg(secret_ok(&e, name, name, NULL, 0), "secret %s", name);
    }
    ck_assert_int_eq(kst(&e.toy, "other")->attempts, 0);
    ck_assert(metric(&e, "controller_runtime_reconcile_total", "success") >= 20);

    /* Deleting an owned Secret reconciles its owner, which recreates it. */
    char uid[64], uid2[64];
    ck_assert(secret_ok(&e, "cm-3", "cm-3", uid, sizeof(uid)));
    int before = atomic_load(&kst(&e.toy, "cm-3")->attempts);
    ck_assert_int_eq(tn_kube_delete(e.c, &SEC, e.ns, "cm-3", NULL, NULL, NULL), 0);
    WAIT_FOR(secret_ok(&e, "cm-3", "cm-3", uid2, sizeof(uid2)) && strcmp(uid, uid2) != 0, 10000);
    ck_assert_int_gt(atomic_load(&kst(&e.toy, "cm-3")->attempts), before);
    ck_assert_int_eq(atomic_load(&e.toy.overlaps), 0);
    env_free(&e);
}
END_TEST

START_TEST(test_error_retried_with_backoff)
{
    struct env e;
    env_init(&e, "t-retry");
    add_toy(&e, 1);
    start(&e);
    make_cm(&e, "flaky", "f");
    WAIT_FOR(secret_ok(&e, "flaky", "f", NULL, 0), 10000);
    struct kstate *k = kst(&e.toy, "flaky");
    ck_assert_int_ge(atomic_load(&k->attempts), 3);
    /* per-key backoff 5 ms then 10 ms */
    ck_assert_int_ge(k->times[1] - k->times[0], 4);
    ck_assert_int_ge(k->times[2] - k->times[1], 9);
    ck_assert(metric(&e, "controller_runtime_reconcile_errors_total", NULL) == 2);
    ck_assert(metric(&e, "controller_runtime_reconcile_total", "error") == 2);
    ck_assert(metric(&e, "controller_runtime_reconcile_total", "success") >= 1);
    env_free(&e);
}
END_TEST

START_TEST(test_requeue_after)
{
    struct env e;
    env_init(&e, "t-after");
    add_toy(&e, 1);
    start(&e);
    make_cm(&e, "later", "l");
    WAIT_FOR(secret_ok(&e, "later", "l", NULL, 0), 10000);
    struct kstate *k = kst(&e.toy, "later");
    ck_assert_int_ge(atomic_load(&k->attempts), 2);
    ck_assert_int_ge(k->times[1] - k->times[0], 299);
    ck_assert(metric(&e, "controller_runtime_reconcile_total", "requeue_after") == 1);
    ck_assert(metric(&e, "controller_runtime_reconcile_errors_total", NULL) == 0);
    env_free(&e);
}
END_TEST

START_TEST(test_one_key_one_worker)
{
    struct env e;
    env_init(&e, "t-workers");
    add_toy(&e, 4);
    e.toy.sleep_ms = 15;
    start(&e);
    ck_assert(metric(&e, "controller_runtime_max_concurrent_reconciles", NULL) == 4);
    char name[32], v[32];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "w-%d", i);
        make_cm(&e, name, "0");
    }
    /* A burst of changes to every key while they are being reconciled. */
    for (int round = 1; round <= 5; round++) {
        for (int i = 0; i < 12; i++) {
            snprintf(name, sizeof(name), "w-%d", i);
            snprintf(v, sizeof(v), "%d", round);
            json_t *p = json_pack("{s:{s:s}}", "data", "v", v);
            ck_assert_int_eq(tn_kube_patch(e.c, &CM, e.ns, name, TN_KUBE_PATCH_MERGE, p, NULL, NULL,
                                           NULL, NULL, NULL),
                             0);
            json_decref(p);
        }
    }
    WAIT_FOR(count_secrets(&e) == 12, 15000);
    settle(&e.toy.total, 300);
    ck_assert_int_eq(atomic_load(&e.toy.overlaps), 0);
    ck_assert_int_ge(atomic_load(&e.toy.max_global), 2); /* the workers did run in parallel */
    ck_assert_int_le(atomic_load(&e.toy.max_global), 4);
    ck_assert(metric(&e, "controller_runtime_active_workers", NULL) == 0);
    env_free(&e);
}
END_TEST

/* ---- status: a Widget controller writing status.phase from spec.mode ---------------------- */

struct wstate {
    atomic_int total;
    atomic_int writes;
};

static struct tn_result widget_reconcile(struct tn_rctx *ctx, const char *ns, const char *name,
                                         void *arg)
{
    struct wstate *w = arg;
    struct tn_result r = {0};
    atomic_fetch_add(&w->total, 1);
    json_t *obj = tn_rctx_get(ctx, &WIDGETS, ns, name);
    if (!obj) return r;
    const char *mode = tn_json_str(obj, "spec.mode", "fast");
    json_t *st = json_pack("{s:s}", "phase", strcmp(mode, "fast") == 0 ? "Fast" : "Slow");
    int rc = tn_rctx_update_status(ctx, &WIDGETS, obj, st);
    if (rc < 0) r.err = rc;
    if (rc == 1) atomic_fetch_add(&w->writes, 1);
    json_decref(st);
    json_decref(obj);
    return r;
}

/* Sum of rest_client_requests_total over the series with method="PUT". */
static double puts_sent(struct env *e)
{
    struct tn_buf b;
    tn_buf_init(&b, 1 << 20);
    tn_metrics_render(e->metrics, &b);
    tn_buf_putc(&b, '\0');
    double sum = 0;
    for (char *line = b.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, "rest_client_requests_total{", 27) == 0 &&
            strstr(line, "method=\"PUT\"")) {
            char *sp = strrchr(line, ' ');
            if (sp) sum += atof(sp + 1);
        }
        line = nl ? nl + 1 : NULL;
    }
    tn_buf_free(&b);
    return sum;
}

static const char *widget_phase(struct env *e)
{
    static char phase[32];
    json_t *o = NULL;
    phase[0] = '\0';
    if (tn_kube_get(e->c, &WIDGETS, e->ns, "w1", &o, NULL, NULL) == 0)
        snprintf(phase, sizeof(phase), "%s", tn_json_str(o, "status.phase", ""));
    json_decref(o);
    return phase;
}

static void widget_patch(struct env *e, const char *patch)
{
    json_t *p = json_loads(patch, 0, NULL);
    ck_assert_ptr_nonnull(p);
    struct tn_err err = {0};
    int rc = tn_kube_patch(e->c, &WIDGETS, e->ns, "w1", TN_KUBE_PATCH_MERGE, p, NULL, NULL, NULL,
                           NULL, &err);
    json_decref(p);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

static int widgets_served(struct env *e)
{
    json_t *l = NULL;
    int rc = tn_kube_list(e->c, &WIDGETS, e->ns, NULL, &l, NULL, NULL);
    json_decref(l);
    return rc == 0;
}

START_TEST(test_status_written_only_when_changed)
{
    struct env e;
    env_init(&e, "t-status");
    struct tn_err err = {0};
    json_t *crd = json_loads(CRD_JSON, 0, NULL);
    int rc = tn_kube_create(e.c, &CRDS, NULL, crd, NULL, NULL, &err);
    json_decref(crd);
    ck_assert_msg(rc == 0 || rc == TN_EEXIST, "%s", err.msg);
    WAIT_FOR(widgets_served(&e), 10000);

    struct wstate w = {0};
    struct tn_controller_spec s = {
        .name = "widget", .primary = WIDGETS, .reconcile = widget_reconcile, .arg = &w};
    ck_assert_ptr_nonnull(tn_mgr_add_controller(e.m, &s, &err));
    start(&e);
    double p0 = puts_sent(&e);
    json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "test.tandem.io/v1", "kind",
                          "Widget", "metadata", "name", "w1", "spec", "mode", "fast");
    rc = tn_kube_create(e.c, &WIDGETS, e.ns, o, NULL, NULL, &err);
    json_decref(o);
    ck_assert_msg(rc == 0, "%s", err.msg);
    WAIT_FOR(strcmp(widget_phase(&e), "Fast") == 0, 10000);
    settle(&w.total, 300);
    /* The status write itself came back as a watch event and was reconciled without a write. */
    ck_assert_int_ge(atomic_load(&w.total), 2);
    ck_assert(puts_sent(&e) - p0 == 1);

    /* Changes that do not alter the status: reconciled, nothing written. */
    int before = atomic_load(&w.total);
    widget_patch(&e, "{\"metadata\":{\"labels\":{\"a\":\"1\"}}}");
    widget_patch(&e, "{\"metadata\":{\"labels\":{\"a\":\"2\"}}}");
    widget_patch(&e, "{\"metadata\":{\"labels\":{\"a\":\"3\"}}}");
    WAIT_FOR(atomic_load(&w.total) >= before + 1, 10000);
    settle(&w.total, 300);
    ck_assert(puts_sent(&e) - p0 == 1);
    ck_assert_int_eq(atomic_load(&w.writes), 1);

    /* A change that alters it: exactly one more write. */
    widget_patch(&e, "{\"spec\":{\"mode\":\"slow\"}}");
    WAIT_FOR(strcmp(widget_phase(&e), "Slow") == 0, 10000);
    settle(&w.total, 300);
    ck_assert(puts_sent(&e) - p0 == 2);
    ck_assert_int_eq(atomic_load(&w.writes), 2);
    env_free(&e);
}
END_TEST

START_TEST(test_stop_drains_and_joins)
{
    struct env e;
    env_init(&e, "t-stop");
    add_toy(&e, 2);
    e.toy.sleep_ms = 50;
    start(&e);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "s-%d", i);
        make_cm(&e, name, "x");
    }
    WAIT_FOR(atomic_load(&e.toy.total) >= 1, 10000);
    tn_mgr_stop(e.m);
    atomic_store(&e.toy.stopped, 1);
    /* Nothing runs once stop has returned. */
    ck_assert_int_eq(atomic_load(&e.toy.global), 0);
    int n = atomic_load(&e.toy.total);
    make_cm(&e, "s-late", "x");
    tsleep_ms(200);
    ck_assert_int_eq(atomic_load(&e.toy.total), n);
    ck_assert_int_eq(atomic_load(&e.toy.after_stop), 0);
    tn_mgr_stop(e.m); /* idempotent */
    struct tn_err err = {0};
    ck_assert_int_ne(tn_mgr_start(e.m, &err), 0); /* no restart */
    env_free(&e);
}
END_TEST

/* Extra watch: ConfigMaps labelled trigger=yes name the toy ConfigMap to reconcile in data.target.
 */
static void map_trigger(struct tn_controller *c, const json_t *obj, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    tn_controller_enqueue(c, tn_json_str(obj, "metadata.namespace", ""),
                          tn_json_str(obj, "data.target", ""));
}

START_TEST(test_extra_watch_maps_keys)
{
    struct env e;
    env_init(&e, "t-map");
    atomic_int mapped = 0;
    struct tn_watch_spec w = {
        .gvr = CM, .label_selector = "trigger=yes", .map = map_trigger, .arg = &mapped};
    struct tn_controller_spec s = {
        .name = "toy",
        .primary = CM,
        .primary_kind = "ConfigMap",
        .primary_label_selector = "app=toy",
        .owns = &SEC,
        .nowns = 1,
        .watches = &w,
        .nwatches = 1,
        .reconcile = toy_reconcile,
        .arg = &e.toy,
    };
    struct tn_err err = {0};
    ck_assert_ptr_nonnull(tn_mgr_add_controller(e.m, &s, &err));
    start(&e);
    make_cm(&e, "m-1", "m");
    WAIT_FOR(secret_ok(&e, "m-1", "m", NULL, 0), 10000);
    settle(&e.toy.total, 200);
    int before = atomic_load(&kst(&e.toy, "m-1")->attempts);
    json_t *o =
        json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", "trig", "labels", "trigger", "yes", "data", "target", "m-1");
    ck_assert_int_eq(tn_kube_create(e.c, &CM, e.ns, o, NULL, NULL, NULL), 0);
    json_decref(o);
    WAIT_FOR(atomic_load(&kst(&e.toy, "m-1")->attempts) > before, 10000);
    ck_assert_int_ge(atomic_load(&mapped), 1);
    ck_assert_int_eq(kst(&e.toy, "trig")->attempts, 0); /* not a primary */
    env_free(&e);
}
END_TEST

START_TEST(test_sync_timeout_names_resource)
{
    struct env e;
    env_init(&e, "t-sync");
    tn_mgr_free(e.m);
    struct tn_mgr_opts mo = {.metrics = e.metrics, .no_events = 1, .cache_sync_timeout_ms = 500};
    struct tn_err err = {0};
    e.m = tn_mgr_new(e.c, &mo, &err);
    ck_assert_ptr_nonnull(e.m);
    struct tn_controller_spec s = {.name = "gizmo",
                                   .primary = {"nope.tandem.io", "v1", "gizmos"},
                                   .reconcile = widget_reconcile};
    ck_assert_ptr_nonnull(tn_mgr_add_controller(e.m, &s, &err));
    /* Same resource, same selector: one shared informer. */
    ck_assert_ptr_eq(tn_mgr_informer(e.m, &s.primary, NULL, &err),
                     tn_mgr_informer(e.m, &s.primary, NULL, &err));
    /* Duplicate names are refused. */
    ck_assert_ptr_null(tn_mgr_add_controller(e.m, &s, &err));
    ck_assert_int_eq(err.code, TN_EEXIST);
    int rc = tn_mgr_start(e.m, &err);
    ck_assert_int_eq(rc, TN_EIO);
    ck_assert_msg(strstr(err.msg, "gizmos") && strstr(err.msg, "sync"), "%s", err.msg);
    env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gm_controller");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_creates_and_recreates_owned);
    tcase_add_test(tc, test_error_retried_with_backoff);
    tcase_add_test(tc, test_requeue_after);
    tcase_add_test(tc, test_one_key_one_worker);
    tcase_add_test(tc, test_status_written_only_when_changed);
    tcase_add_test(tc, test_stop_drains_and_joins);
    tcase_add_test(tc, test_extra_watch_maps_keys);
    tcase_add_test(tc, test_sync_timeout_names_resource);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tn_log_setup("test", TN_LOG_WARN, 0, 2);
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tsrv_atexit();
    return failed ? 1 : 0;
}
