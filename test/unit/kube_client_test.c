/* Tests of the kube REST client and watch (pkg/kube/client.c) against a real tandem-apiserver
 * started per test on a free loopback port: CRUD of configmaps and a CRD, errors decoded from
 * Status bodies, paging, patches, propagation, token auth, TLS, retries and watch streams. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/metrics.h"
#include "kube/client.h"
#include "kube_testutil.h"

static const struct tn_kube_gvr CM = {"", "v1", "configmaps"};
static const struct tn_kube_gvr WIDGETS = {"test.tandem.io", "v1", "widgets"};
static const struct tn_kube_gvr CRDS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions"};

static const char CRD_JSON[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.test.tandem.io\"},"
    "\"spec\":{\"group\":\"test.tandem.io\",\"scope\":\"Namespaced\","
    "\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\","
    "\"listKind\":\"WidgetList\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"required\":[\"mode\"],\"properties\":{"
    "\"mode\":{\"type\":\"string\",\"enum\":[\"fast\",\"slow\"]},"
    "\"size\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10}}},"
    "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}"
    "}}}}]}}";

static struct tsrv g_srv;

static struct tn_kube_client *start_plain(struct tsrv *s, struct tn_metrics *m)
{
    ck_assert_int_eq(tsrv_init(s, 0, 1), 0);
    ck_assert_int_eq(tsrv_start(s), 0);
    struct tn_kube_client_opts o = {.metrics = m, .qps = 1000, .burst = 1000};
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(s->base), &o, &err);
    ck_assert_msg(c != NULL, "client: %s", err.msg);
    return c;
}

static json_t *cm_new(const char *name, const char *k, const char *v)
{
    return json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "data", k, v);
}

static void install_crd(struct tn_kube_client *c)
{
    struct tn_err err = {0};
    json_t *crd = json_loads(CRD_JSON, 0, NULL);
    ck_assert_ptr_nonnull(crd);
    int rc = tn_kube_create(c, &CRDS, NULL, crd, NULL, NULL, &err);
    json_decref(crd);
    ck_assert_msg(rc == 0, "crd: %s", err.msg);
    int64_t dl = tn_mono_ms() + 10000;
    for (;;) {
        json_t *l = NULL;
        rc = tn_kube_list(c, &WIDGETS, "default", NULL, &l, NULL, &err);
        json_decref(l);
        if (rc == 0) break;
        ck_assert_msg(tn_mono_ms() < dl, "widgets not served: %s", err.msg);
        tsleep_ms(50);
    }
}

START_TEST(test_crud_configmap)
{
    struct tn_kube_client *c = start_plain(&g_srv, NULL);
    struct tn_err err = {0};
    struct tn_kube_status st;
    json_t *out = NULL;

    /* missing object */
    int rc = tn_kube_get(c, &CM, "default", "missing", &out, &st, &err);
    ck_assert_int_eq(rc, TN_ENOTFOUND);
    ck_assert_int_eq(err.code, TN_ENOTFOUND);
    ck_assert_int_eq(st.code, 404);
    ck_assert_str_eq(st.reason, "NotFound");
    ck_assert_ptr_nonnull(strstr(st.message, "not found"));
    ck_assert_msg(strncmp(err.msg, "get configmaps default/missing: 404 NotFound: ", 46) == 0, "%s",
                  err.msg);
    ck_assert_ptr_null(out);

    /* create, then create again */
    json_t *cm = cm_new("c1", "k", "v1");
    rc = tn_kube_create(c, &CM, "default", cm, &out, &st, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out, "data.k", ""), "v1");
    const char *rv1 = tn_json_str(out, "metadata.resourceVersion", "");
    ck_assert_str_ne(rv1, "");
    json_t *created = out;
    rc = tn_kube_create(c, &CM, "default", cm, NULL, &st, &err);
    ck_assert_int_eq(rc, TN_EEXIST);
    ck_assert_int_eq(st.code, 409);
    ck_assert_str_eq(st.reason, "AlreadyExists");
    ck_assert_ptr_nonnull(strstr(err.msg, "create configmaps default/c1: 409 AlreadyExists"));
    json_decref(cm);

    /* get, update */
    rc = tn_kube_get(c, &CM, "default", "c1", &out, &st, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out, "metadata.name", ""), "c1");
    json_object_set_new(json_object_get(out, "data"), "k", json_string("v2"));
    json_t *upd = NULL;
    rc = tn_kube_update(c, &CM, "default", out, NULL, &upd, &st, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(tn_json_str(upd, "data.k", ""), "v2");
    ck_assert_str_ne(tn_json_str(upd, "metadata.resourceVersion", ""), rv1);
    json_decref(out);
    json_decref(upd);

    /* stale update: the object as created carries the old resourceVersion */
    json_object_set_new(json_object_get(created, "data"), "k", json_string("stale"));
    rc = tn_kube_update(c, &CM, "default", created, NULL, NULL, &st, &err);
    ck_assert_int_eq(rc, TN_ECONFLICT);
    ck_assert_int_eq(st.code, 409);
    ck_assert_str_eq(st.reason, "Conflict");
    json_decref(created);

    /* names that need escaping travel intact in the path */
    ck_assert_int_eq(tn_kube_get(c, &CM, "default", "a b/../c?d", NULL, &st, &err), TN_ENOTFOUND);
    char *p = tn_kube_path(&WIDGETS, "ns 1", "n/x", "status");
    ck_assert_str_eq(p, "/apis/test.tandem.io/v1/namespaces/ns%201/widgets/n%2Fx/status");
    free(p);
    p = tn_kube_path(&CM, NULL, NULL, NULL);
    ck_assert_str_eq(p, "/api/v1/configmaps");
    free(p);

    /* delete */
    rc = tn_kube_delete(c, &CM, "default", "c1", NULL, &st, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(tn_kube_get(c, &CM, "default", "c1", NULL, &st, &err), TN_ENOTFOUND);
    ck_assert_int_eq(tn_kube_delete(c, &CM, "default", "c1", NULL, &st, &err), TN_ENOTFOUND);

    /* raw */
    char *body = NULL;
    size_t blen = 0;
    rc = tn_kube_raw(c, "GET", "/version", NULL, NULL, 0, &body, &blen, &err);
    ck_assert_int_eq(rc, 200);
    ck_assert_ptr_nonnull(strstr(body, "gitVersion"));
    free(body);

    tn_kube_client_free(c);
    tsrv_kill(&g_srv);
}
END_TEST

START_TEST(test_list_selector_limit)
{
    struct tn_metrics *m = tn_metrics_new();
    struct tn_kube_client *c = start_plain(&g_srv, m);
    struct tn_err err = {0};
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", i);
        json_t *cm = cm_new(name, "i", name);
        json_t *labels = tn_json_obj_ensure_path(cm, "metadata.labels");
        json_object_set_new(labels, "batch", json_string("x"));
        json_object_set_new(labels, "parity", json_string(i % 2 ? "odd" : "even"));
        ck_assert_int_eq(tn_kube_create(c, &CM, "default", cm, NULL, NULL, &err), 0);
        json_decref(cm);
    }
    json_t *other = cm_new("unlabelled", "a", "b");
    ck_assert_int_eq(tn_kube_create(c, &CM, "default", other, NULL, NULL, &err), 0);
    json_decref(other);

    json_t *l = NULL;
    struct tn_kube_list_opts lo = {.label_selector = "parity=even,batch=x"};
    ck_assert_int_eq(tn_kube_list(c, &CM, "default", &lo, &l, NULL, &err), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "items")), 5);
    json_decref(l);

    lo = (struct tn_kube_list_opts){.label_selector = "parity in (even,odd)"};
    ck_assert_int_eq(tn_kube_list(c, &CM, "default", &lo, &l, NULL, &err), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "items")), 10);
    json_decref(l);

    const char *lv[] = {"200", "GET", g_srv.base + 7, NULL};
    static const char *const names[] = {"code", "method", "host", NULL};
    struct tn_metric *reqs = tn_metrics_counter(m, "rest_client_requests_total", "", names);
    ck_assert_ptr_nonnull(reqs);
    double before = tn_metric_value(reqs, lv);
    lo = (struct tn_kube_list_opts){.label_selector = "batch=x", .limit = 3};
    ck_assert_int_eq(tn_kube_list(c, &CM, "default", &lo, &l, NULL, &err), 0);
    json_t *items = json_object_get(l, "items");
    ck_assert_int_eq(json_array_size(items), 10);
    int seen[10] = {0};
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        int k = atoi(tn_json_str(it, "metadata.name", "l-1") + 1);
        ck_assert(k >= 0 && k < 10);
        seen[k]++;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(seen[k], 1);
    ck_assert_ptr_null(tn_json_get(l, "metadata.continue"));
    ck_assert_str_ne(tn_json_str(l, "metadata.resourceVersion", ""), "");
    json_decref(l);
    /* 4 pages of 3 */
    double pages = tn_metric_value(reqs, lv) - before;
    ck_assert_double_eq_tol(pages, 4, 0.01);

    struct tn_buf out;
    tn_buf_init(&out, 0);
    tn_metrics_render(m, &out);
    ck_assert_ptr_nonnull(strstr(out.data, "rest_client_request_duration_seconds_bucket"));
    tn_buf_free(&out);

    tn_kube_client_free(c);
    tn_metrics_free(m);
    tsrv_kill(&g_srv);
}
END_TEST

START_TEST(test_crd_patch_status_invalid)
{
    struct tn_kube_client *c = start_plain(&g_srv, NULL);
    struct tn_err err = {0};
    struct tn_kube_status st;
    install_crd(c);

    json_t *w =
        json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:i}}", "apiVersion", "test.tandem.io/v1", "kind",
                  "Widget", "metadata", "name", "w1", "spec", "mode", "fast", "size", 2);
    json_t *out = NULL;
    ck_assert_msg(tn_kube_create(c, &WIDGETS, "default", w, &out, &st, &err) == 0, "%s", err.msg);
    json_decref(out);
    json_decref(w);

    /* 422 with causes */
    w = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:i}}", "apiVersion", "test.tandem.io/v1", "kind",
                  "Widget", "metadata", "name", "w2", "spec", "mode", "medium", "size", 20);
    int rc = tn_kube_create(c, &WIDGETS, "default", w, NULL, &st, &err);
    json_decref(w);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_int_eq(st.code, 422);
    ck_assert_str_eq(st.reason, "Invalid");
    ck_assert_msg(strstr(st.causes, "spec.mode") && strstr(st.causes, "spec.size"), "causes: %s",
                  st.causes);
    ck_assert_msg(strncmp(err.msg, "create widgets default/w2: 422 Invalid: ", 40) == 0, "%s",
                  err.msg);

    /* merge patch */
    json_t *p = json_pack("{s:{s:i}}", "spec", "size", 4);
    ck_assert_msg(tn_kube_patch(c, &WIDGETS, "default", "w1", TN_KUBE_PATCH_MERGE, p, NULL, NULL,
                                &out, &st, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(tn_json_int(out, "spec.size", 0), 4);
    json_decref(out);
    json_decref(p);

    /* json patch */
    p = json_pack("[{s:s,s:s,s:s}]", "op", "replace", "path", "/spec/mode", "value", "slow");
    ck_assert_msg(tn_kube_patch(c, &WIDGETS, "default", "w1", TN_KUBE_PATCH_JSON, p, NULL, NULL,
                                &out, &st, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out, "spec.mode", ""), "slow");
    json_decref(out);
    json_decref(p);

    /* status subresource: patch and update touch only status */
    p = json_pack("{s:{s:s},s:{s:s}}", "status", "phase", "Running", "spec", "mode", "fast");
    ck_assert_msg(tn_kube_patch(c, &WIDGETS, "default", "w1", TN_KUBE_PATCH_MERGE, p, "status",
                                NULL, &out, &st, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out, "status.phase", ""), "Running");
    ck_assert_str_eq(tn_json_str(out, "spec.mode", ""), "slow");
    json_decref(p);
    tn_json_set_str(out, "status.phase", "Done");
    json_t *out2 = NULL;
    ck_assert_msg(tn_kube_update(c, &WIDGETS, "default", out, "status", &out2, &st, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out2, "status.phase", ""), "Done");
    json_decref(out);
    json_decref(out2);

    /* patch of a missing object, bad patch */
    p = json_pack("{s:{s:i}}", "spec", "size", 1);
    ck_assert_int_eq(tn_kube_patch(c, &WIDGETS, "default", "nope", TN_KUBE_PATCH_MERGE, p, NULL,
                                   NULL, NULL, &st, &err),
                     TN_ENOTFOUND);
    json_decref(p);
    p = json_pack("[{s:s,s:s}]", "op", "remove", "path", "/spec/absent");
    rc = tn_kube_patch(c, &WIDGETS, "default", "w1", TN_KUBE_PATCH_JSON, p, NULL, NULL, NULL, &st,
                       &err);
    ck_assert_msg(rc == TN_EINVAL || rc == TN_ECONFLICT, "rc %d %s", rc, err.msg);
    json_decref(p);

    /* strategic merge patch on a built-in type, apply with a field manager */
    json_t *cm = cm_new("sp", "a", "1");
    ck_assert_int_eq(tn_kube_create(c, &CM, "default", cm, NULL, NULL, &err), 0);
    json_decref(cm);
    p = json_pack("{s:{s:s}}", "data", "b", "2");
    ck_assert_msg(tn_kube_patch(c, &CM, "default", "sp", TN_KUBE_PATCH_STRATEGIC, p, NULL, NULL,
                                &out, &st, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(tn_json_str(out, "data.a", ""), "1");
    ck_assert_str_eq(tn_json_str(out, "data.b", ""), "2");
    json_decref(out);
    json_decref(p);
    ck_assert_int_eq(
        tn_kube_patch(c, &CM, "default", "sp", TN_KUBE_PATCH_APPLY, p, NULL, NULL, NULL, &st, &err),
        TN_EINVAL);

    tn_kube_client_free(c);
    tsrv_kill(&g_srv);
}
END_TEST

static int wait_gone(struct tn_kube_client *c, const char *name, long ms)
{
    int64_t dl = tn_mono_ms() + ms;
    while (tn_mono_ms() < dl) {
        if (tn_kube_get(c, &CM, "default", name, NULL, NULL, NULL) == TN_ENOTFOUND) return 1;
        tsleep_ms(50);
    }
    return 0;
}

START_TEST(test_delete_propagation)
{
    struct tn_kube_client *c = start_plain(&g_srv, NULL);
    struct tn_err err = {0};
    const char *pols[] = {"Background", "Orphan", "Foreground"};
    for (int k = 0; k < 3; k++) {
        char pn[32], cn[32];
        snprintf(pn, sizeof pn, "parent-%d", k);
        snprintf(cn, sizeof cn, "child-%d", k);
        json_t *parent = cm_new(pn, "a", "b"), *out = NULL;
        ck_assert_int_eq(tn_kube_create(c, &CM, "default", parent, &out, NULL, &err), 0);
        json_t *child = cm_new(cn, "a", "b");
        json_t *ref = json_pack("{s:s,s:s,s:s,s:s}", "apiVersion", "v1", "kind", "ConfigMap",
                                "name", pn, "uid", tn_json_str(out, "metadata.uid", ""));
        json_object_set_new(json_object_get(child, "metadata"), "ownerReferences",
                            json_pack("[o]", ref));
        ck_assert_int_eq(tn_kube_create(c, &CM, "default", child, NULL, NULL, &err), 0);
        json_decref(parent);
        json_decref(child);
        json_decref(out);
        ck_assert_msg(tn_kube_delete(c, &CM, "default", pn, pols[k], NULL, &err) == 0, "%s",
                      err.msg);
        ck_assert_msg(wait_gone(c, pn, 5000), "%s parent not deleted", pols[k]);
        if (strcmp(pols[k], "Orphan") == 0) {
            tsleep_ms(300);
            json_t *got = NULL;
            ck_assert_int_eq(tn_kube_get(c, &CM, "default", cn, &got, NULL, &err), 0);
            ck_assert_ptr_null(tn_json_get(got, "metadata.ownerReferences") &&
                                       json_array_size(tn_json_get(got, "metadata.ownerReferences"))
                                   ? got
                                   : NULL);
            json_decref(got);
        } else {
            ck_assert_msg(wait_gone(c, cn, 5000), "%s child not collected", pols[k]);
        }
    }
    tn_kube_client_free(c);
    tsrv_kill(&g_srv);
}
END_TEST

START_TEST(test_token_auth)
{
    struct tsrv *s = &g_srv;
    ck_assert_int_eq(tsrv_init(s, 0, 1), 0);
    char csv[400], tokfile[400];
    TFMT(csv, "%s/tokens.csv", s->dir);
    TFMT(tokfile, "%s/token", s->dir);
    FILE *f = fopen(csv, "w");
    fprintf(f, "s3cret-token,alice,u1,system:masters\n");
    fclose(f);
    tsrv_arg(s, "--token-file");
    tsrv_arg(s, csv);
    ck_assert_int_eq(tsrv_start(s), 0);
    struct tn_err err = {0};
    struct tn_kube_status st;

    /* no token, wrong token: 401 with the Status decoded */
    struct tn_kube_config *cfg = tcfg_new(s->base);
    cfg->token = strdup("wrong");
    struct tn_kube_client *c = tn_kube_client_new(cfg, NULL, &err);
    ck_assert_ptr_nonnull(c);
    int rc = tn_kube_get(c, &CM, "default", "x", NULL, &st, &err);
    ck_assert_int_eq(rc, TN_EIO);
    ck_assert_int_eq(st.code, 401);
    ck_assert_msg(strstr(err.msg, "401 Unauthorized") != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(err.msg, "wrong"));
    tn_kube_client_free(c);

    /* right token */
    cfg = tcfg_new(s->base);
    cfg->token = strdup("s3cret-token");
    c = tn_kube_client_new(cfg, NULL, &err);
    rc = tn_kube_get(c, &CM, "default", "x", NULL, &st, &err);
    ck_assert_msg(rc == TN_ENOTFOUND, "rc %d: %s", rc, err.msg);
    tn_kube_client_free(c);

    /* token file: rotated after the first read; the 401 forces a re-read and one retry */
    f = fopen(tokfile, "w");
    fprintf(f, "old-token\n");
    fclose(f);
    cfg = tcfg_new(s->base);
    cfg->token_file = strdup(tokfile);
    c = tn_kube_client_new(cfg, NULL, &err);
    ck_assert_int_eq(tn_kube_get(c, &CM, "default", "x", NULL, &st, &err), TN_EIO);
    ck_assert_int_eq(st.code, 401);
    f = fopen(tokfile, "w");
    fprintf(f, "s3cret-token\n");
    fclose(f);
    rc = tn_kube_get(c, &CM, "default", "x", NULL, &st, &err);
    ck_assert_msg(rc == TN_ENOTFOUND, "after rotation: rc %d: %s", rc, err.msg);
    tn_kube_client_free(c);
    tsrv_kill(s);
}
END_TEST

START_TEST(test_tls)
{
    struct tsrv *s = &g_srv;
    ck_assert_int_eq(tsrv_init(s, 1, 1), 0);
    ck_assert_int_eq(tsrv_start(s), 0);
    struct tn_err err = {0};

    /* CA from the written kubeconfig verifies */
    struct tn_kube_config *cfg = tn_kube_config_load(s->kc, NULL, &err);
    ck_assert_msg(cfg != NULL, "kubeconfig: %s", err.msg);
    ck_assert_ptr_nonnull(cfg->ca_pem);
    ck_assert_int_eq(strncmp(cfg->server, "https://", 8), 0);
    struct tn_kube_client *c = tn_kube_client_new(cfg, NULL, &err);
    json_t *l = NULL;
    int rc = tn_kube_list(c, &CM, "default", NULL, &l, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    json_decref(l);
    tn_kube_client_free(c);

    /* no CA: the system trust store does not know the server's CA */
    cfg = tn_kube_config_load(s->kc, NULL, &err);
    free(cfg->ca_pem);
    cfg->ca_pem = NULL;
    c = tn_kube_client_new(cfg, NULL, &err);
    struct tn_kube_status st;
    rc = tn_kube_list(c, &CM, "default", NULL, &l, &st, &err);
    ck_assert_int_eq(rc, TN_EIO);
    ck_assert_int_eq(st.code, 0);
    ck_assert_msg(strstr(err.msg, "certificate") || strstr(err.msg, "SSL"), "%s", err.msg);
    tn_kube_client_free(c);
    tsrv_kill(s);
}
END_TEST

START_TEST(test_retry_connect_refused)
{
    struct tsrv *s = &g_srv;
    ck_assert_int_eq(tsrv_init(s, 0, 1), 0);
    ck_assert_int_eq(tsrv_spawn(s, 1200), 0); /* listens only after ~1.2 s */
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(s->base), NULL, &err);
    json_t *l = NULL;
    int64_t t0 = tn_mono_ms();
    int rc = tn_kube_list(c, &CM, "default", NULL, &l, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_ge(tn_mono_ms() - t0, 1000);
    json_decref(l);
    /* and a POST too: refused connections never reached the server */
    tsrv_kill(s);
    ck_assert_int_eq(tsrv_spawn(s, 800), 0);
    json_t *cm = cm_new("after-restart", "a", "b");
    rc = tn_kube_create(c, &CM, "default", cm, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    json_decref(cm);
    tn_kube_client_free(c);

    /* nobody ever listens: bounded failure with a transport error */
    struct tn_kube_client_opts o = {.max_retries = 1};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tfree_port());
    c = tn_kube_client_new(tcfg_new(url), &o, &err);
    struct tn_kube_status st;
    rc = tn_kube_get(c, &CM, "default", "x", NULL, &st, &err);
    ck_assert_int_eq(rc, TN_EIO);
    ck_assert_int_eq(st.code, 0);
    ck_assert_msg(strstr(err.msg, "get configmaps default/x: ") == err.msg, "%s", err.msg);
    tn_kube_client_free(c);
    tsrv_kill(s);
}
END_TEST

/* ---- a scripted HTTP server for 429/503 + Retry-After ----------------------------------- */

struct fake {
    int lfd;
    int port;
    atomic_int hits;
    int fail_first; /* answer this many requests with `fail_code` */
    int fail_code;
    pthread_t thr;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        char buf[8192];
        size_t len = 0;
        for (;;) { /* one request per connection, headers then Content-Length body */
            ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0) break;
            len += (size_t)n;
            buf[len] = 0;
            char *eoh = strstr(buf, "\r\n\r\n");
            if (!eoh) continue;
            char *cl = strcasestr(buf, "content-length:");
            size_t want = cl ? (size_t)atol(cl + 15) : 0;
            if (len >= (size_t)(eoh + 4 - buf) + want) break;
        }
        int k = atomic_fetch_add(&f->hits, 1);
        char resp[512];
        if (k < f->fail_first) {
            const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                               "\"message\":\"slow down\",\"reason\":\"TooManyRequests\"}";
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     f->fail_code, strlen(body), body);
        } else {
            const char *body = "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","
                               "\"metadata\":{\"name\":\"x\"}}";
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
        }
        ssize_t wr = write(fd, resp, strlen(resp));
        (void)wr;
        close(fd);
    }
}

static void fake_start(struct fake *f, int fail_first, int code)
{
    memset(f, 0, sizeof *f);
    f->fail_first = fail_first;
    f->fail_code = code;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    getsockname(f->lfd, (struct sockaddr *)&a, &l);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->thr, NULL, fake_main, f);
}

START_TEST(test_retry_after)
{
    struct fake f;
    fake_start(&f, 2, 429);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(url), NULL, &err);
    json_t *out = NULL;
    int64_t t0 = tn_mono_ms();
    int rc = tn_kube_get(c, &CM, "default", "x", &out, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(atomic_load(&f.hits), 3);
    ck_assert_int_ge(tn_mono_ms() - t0, 1900); /* Retry-After: 1, twice */
    json_decref(out);

    /* 503 on a POST is not retried (the server may have acted on it) */
    atomic_store(&f.hits, 0);
    f.fail_first = 5;
    f.fail_code = 503;
    struct tn_kube_status st;
    json_t *cm = cm_new("x", "a", "b");
    rc = tn_kube_create(c, &CM, "default", cm, NULL, &st, &err);
    json_decref(cm);
    ck_assert_int_eq(rc, TN_EIO);
    ck_assert_int_eq(st.code, 503);
    ck_assert_int_eq(st.retry_after_s, 1);
    ck_assert_int_eq(atomic_load(&f.hits), 1);
    tn_kube_client_free(c);
    shutdown(f.lfd, SHUT_RDWR);
    close(f.lfd);
    pthread_join(f.thr, NULL);
}
END_TEST

/* ---- watch ------------------------------------------------------------------------------ */

struct wrec {
    pthread_mutex_t mu;
    int added, modified, deleted, bookmarks, errors;
    int ended;
    int end_code;
    char last_rv[32];
    atomic_int in_cb;
};

static void wrec_fn(enum tn_kube_event t, json_t *obj, void *arg)
{
    struct wrec *r = arg;
    atomic_fetch_add(&r->in_cb, 1);
    pthread_mutex_lock(&r->mu);
    switch (t) {
    case TN_KUBE_ADDED:
        r->added++;
        break;
    case TN_KUBE_MODIFIED:
        r->modified++;
        break;
    case TN_KUBE_DELETED:
        r->deleted++;
        break;
    case TN_KUBE_BOOKMARK:
        r->bookmarks++;
        break;
    case TN_KUBE_ERROR:
        r->errors++;
        break;
    }
    snprintf(r->last_rv, sizeof r->last_rv, "%s", tn_json_str(obj, "metadata.resourceVersion", ""));
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_sub(&r->in_cb, 1);
}

static void wrec_end(int code, void *arg)
{
    struct wrec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->ended++;
    r->end_code = code;
    pthread_mutex_unlock(&r->mu);
}

static int wrec_get(struct wrec *r, int *field)
{
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t dl_ = tn_mono_ms() + (ms);                                                         \
        while (!(cond) && tn_mono_ms() < dl_)                                                      \
            tsleep_ms(10);                                                                         \
        ck_assert_msg((cond), "timed out waiting for " #cond);                                     \
    } while (0)

START_TEST(test_watch_events)
{
    struct tsrv *s = &g_srv;
    ck_assert_int_eq(tsrv_init(s, 0, 1), 0);
    tsrv_arg(s, "--bookmark-interval");
    tsrv_arg(s, "1");
    ck_assert_int_eq(tsrv_start(s), 0);
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(s->base), NULL, &err);
    json_t *l = NULL;
    ck_assert_int_eq(tn_kube_list(c, &CM, "default", NULL, &l, NULL, &err), 0);
    char rv[32];
    snprintf(rv, sizeof rv, "%s", tn_json_str(l, "metadata.resourceVersion", ""));
    json_decref(l);

    struct wrec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct tn_kube_watch_opts wo = {.resource_version = rv, .bookmarks = 1};
    struct tn_kube_watch *w =
        tn_kube_watch_start(c, &CM, "default", &wo, wrec_fn, wrec_end, &r, &err);
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        json_t *cm = cm_new(name, "k", "v"), *out = NULL;
        ck_assert_int_eq(tn_kube_create(c, &CM, "default", cm, &out, NULL, &err), 0);
        json_object_set_new(json_object_get(out, "data"), "k", json_string("v2"));
        ck_assert_int_eq(tn_kube_update(c, &CM, "default", out, NULL, NULL, NULL, &err), 0);
        if (i % 2) ck_assert_int_eq(tn_kube_delete(c, &CM, "default", name, NULL, NULL, &err), 0);
        json_decref(cm);
        json_decref(out);
    }
    WAIT_FOR(wrec_get(&r, &r.deleted) == 10, 5000);
    WAIT_FOR(wrec_get(&r, &r.bookmarks) >= 1, 3000);
    ck_assert_int_eq(wrec_get(&r, &r.added), 20);
    ck_assert_int_eq(wrec_get(&r, &r.modified), 20);
    ck_assert_int_eq(wrec_get(&r, &r.ended), 0);
    tn_kube_watch_stop(w);

    /* stop while events flow: no callback after stop returns */
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    wo = (struct tn_kube_watch_opts){.resource_version = rv};
    w = tn_kube_watch_start(c, &CM, "default", &wo, wrec_fn, wrec_end, &r, &err);
    WAIT_FOR(wrec_get(&r, &r.added) >= 1, 5000);
    tn_kube_watch_stop(w);
    int a = wrec_get(&r, &r.added), m = wrec_get(&r, &r.modified);
    ck_assert_int_eq(atomic_load(&r.in_cb), 0);
    json_t *cm = cm_new("after-stop", "k", "v");
    ck_assert_int_eq(tn_kube_create(c, &CM, "default", cm, NULL, NULL, &err), 0);
    json_decref(cm);
    tsleep_ms(300);
    ck_assert_int_eq(wrec_get(&r, &r.added), a);
    ck_assert_int_eq(wrec_get(&r, &r.modified), m);
    ck_assert_int_eq(wrec_get(&r, &r.ended), 0);

    /* server-side timeout: a normal end with code 0 */
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    wo = (struct tn_kube_watch_opts){.timeout_s = 1};
    w = tn_kube_watch_start(c, &CM, "default", &wo, wrec_fn, wrec_end, &r, &err);
    WAIT_FOR(wrec_get(&r, &r.ended) == 1, 5000);
    ck_assert_int_eq(r.end_code, 0);
    ck_assert_int_eq(wrec_get(&r, &r.added), 11); /* synthetic ADDED of current objects */
    tn_kube_watch_stop(w);

    /* line cap: an event longer than max_line ends the stream with TN_ETOOBIG */
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    wo = (struct tn_kube_watch_opts){.max_line = 64};
    w = tn_kube_watch_start(c, &CM, "default", &wo, wrec_fn, wrec_end, &r, &err);
    WAIT_FOR(wrec_get(&r, &r.ended) == 1, 5000);
    ck_assert_int_eq(r.end_code, TN_ETOOBIG);
    ck_assert_int_eq(wrec_get(&r, &r.added), 0);
    tn_kube_watch_stop(w);

    /* watch of a resource that does not exist: HTTP 404 ends it */
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    const struct tn_kube_gvr bogus = {"nope.tandem.io", "v1", "things"};
    w = tn_kube_watch_start(c, &bogus, "default", NULL, wrec_fn, wrec_end, &r, &err);
    WAIT_FOR(wrec_get(&r, &r.ended) == 1, 5000);
    ck_assert_int_eq(r.end_code, TN_ENOTFOUND);
    tn_kube_watch_stop(w);

    tn_kube_client_free(c);
    tsrv_kill(s);
}
END_TEST

START_TEST(test_watch_expired)
{
    struct tsrv *s = &g_srv;
    ck_assert_int_eq(tsrv_init(s, 0, 1), 0);
    tsrv_arg(s, "--watch-history");
    tsrv_arg(s, "10");
    ck_assert_int_eq(tsrv_start(s), 0);
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(s->base), NULL, &err);
    json_t *l = NULL;
    ck_assert_int_eq(tn_kube_list(c, &CM, "default", NULL, &l, NULL, &err), 0);
    char rv[32];
    snprintf(rv, sizeof rv, "%s", tn_json_str(l, "metadata.resourceVersion", ""));
    json_decref(l);
    for (int i = 0; i < 30; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", i);
        json_t *cm = cm_new(name, "k", "v");
        ck_assert_int_eq(tn_kube_create(c, &CM, "default", cm, NULL, NULL, &err), 0);
        json_decref(cm);
    }
    struct wrec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct tn_kube_watch_opts wo = {.resource_version = rv, .bookmarks = 1};
    struct tn_kube_watch *w =
        tn_kube_watch_start(c, &CM, "default", &wo, wrec_fn, wrec_end, &r, &err);
    WAIT_FOR(wrec_get(&r, &r.ended) == 1, 5000);
    ck_assert_int_eq(r.end_code, 410);
    ck_assert_int_eq(wrec_get(&r, &r.errors), 1);
    tn_kube_watch_stop(w);
    tn_kube_client_free(c);
    tsrv_kill(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_crud_configmap);
    tcase_add_test(tc, test_list_selector_limit);
    tcase_add_test(tc, test_crd_patch_status_invalid);
    tcase_add_test(tc, test_delete_propagation);
    tcase_add_test(tc, test_token_auth);
    tcase_add_test(tc, test_tls);
    tcase_add_test(tc, test_retry_connect_refused);
    tcase_add_test(tc, test_retry_after);
    tcase_add_test(tc, test_watch_events);
    tcase_add_test(tc, test_watch_expired);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
