/* Unit tests of tandem-apiserver's object semantics through its internal operations (no HTTP):
 * resourceVersion and generation rules, optimistic concurrency, the status subresource, CRD
 * pruning/defaulting/validation, finalizers, graceful pod deletion and garbage collection. */
#include "apiserver/internal.h"
#include "base/json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct tn_apiserver *A;

static void setup(void)
{
    struct tn_apiserver_config cfg = {0};
    cfg.data = ":memory:";
    cfg.port = 0;
    struct tn_err err = {0};
    A = tn_apiserver_new(&cfg, &err);
    ck_assert_msg(A != NULL, "%s", err.msg);
}

static void teardown(void)
{
    tn_apiserver_free(A);
    A = NULL;
}

static const struct tn_rtype *R(const char *g, const char *v, const char *r)
{
    const struct tn_rtype *t = tn_registry_find(&A->reg, g, v, r);
    ck_assert_ptr_nonnull(t);
    return t;
}

static json_t *J(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
    return v;
}

/* Runs an operation and returns its HTTP code; *out gets the object (new ref) if asked. */
static int create(const struct tn_rtype *t, const char *ns, const char *js, json_t **out)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    json_t *o = J(js);
    int code = tn_obj_create(A, t, ns, o, NULL, &rep);
    if (out) *out = rep.obj ? json_incref(rep.obj) : NULL;
    tn_reply_free(&rep);
    json_decref(o);
    return code;
}

static void drain(void)
{
    for (int i = 0; i < 20 && A->ndirty; i++)
        tn_ctrl_tick(A);
}

static const char *CM =
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c1\"},"
    "\"data\":{\"a\":\"1\"}}";

START_TEST(rv_increases_and_noop_update_keeps_it)
{
    const struct tn_rtype *t = R("", "v1", "configmaps");
    json_t *o;
    ck_assert_int_eq(create(t, "default", CM, &o), 201);
    long long rv1 = atoll(tn_json_str(o, "metadata.resourceVersion", "0"));
    ck_assert_int_gt(rv1, 0);
    ck_assert_str_eq(tn_json_str(o, "metadata.namespace", ""), "default");
    ck_assert_int_eq(strlen(tn_json_str(o, "metadata.uid", "")), 36);
    /* no-op update: same resourceVersion, no new event */
    struct tn_reply rep;
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, t, "default", "c1", o, NULL, &rep), 200);
    ck_assert_str_eq(tn_json_str(rep.obj, "metadata.resourceVersion", ""),
                     tn_json_str(o, "metadata.resourceVersion", ""));
    tn_reply_free(&rep);
    /* real change: a higher resourceVersion */
    json_object_set_new(json_object_get(o, "data"), "a", json_string("2"));
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, t, "default", "c1", o, NULL, &rep), 200);
    long long rv2 = atoll(tn_json_str(rep.obj, "metadata.resourceVersion", "0"));
    ck_assert_int_gt(rv2, rv1);
    tn_reply_free(&rep);
    /* the old resourceVersion is now stale: 409 */
    tn_reply_init(&rep);
    json_object_set_new(json_object_get(o, "data"), "a", json_string("3"));
    ck_assert_int_eq(tn_obj_update(A, t, "default", "c1", o, NULL, &rep), 409);
    ck_assert_str_eq(rep.reason, "Conflict");
    ck_assert_ptr_nonnull(strstr(rep.msg, "the object has been modified"));
    tn_reply_free(&rep);
    /* duplicate create: 409 AlreadyExists */
    ck_assert_int_eq(create(t, "default", CM, NULL), 409);
    json_decref(o);
}
END_TEST

START_TEST(names_and_namespaces)
{
    const struct tn_rtype *t = R("", "v1", "configmaps");
    ck_assert_int_eq(create(t, "default",
                            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                            "\"Bad_Name\"}}",
                            NULL),
                     422);
    ck_assert_int_eq(create(t, "nope", CM, NULL), 404);
    json_t *o;
    ck_assert_int_eq(create(t, "default",
                            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                            "\"generateName\":\"gen-\"}}",
                            &o),
                     201);
    ck_assert_int_eq(strncmp(tn_json_str(o, "metadata.name", ""), "gen-", 4), 0);
    ck_assert_int_eq(strlen(tn_json_str(o, "metadata.name", "")), 9);
    json_decref(o);
    /* wrong kind for the resource */
    ck_assert_int_eq(
        create(t, "default",
               "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"}}", NULL),
        400);
}
END_TEST

static const char *CRD =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.example.tandem.io\"},\"spec\":{\"group\":\"example.tandem."
    "io\","
    "\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\",\"kind\":\"Widget\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,\"subresources\":{\"status\":{"
    "}},"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":"
    "\"object\",\"properties\":{\"size\":{\"type\":\"integer\",\"minimum\":1,\"default\":3}}},"
    "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}}}}}]}}";

START_TEST(crd_schema_status_and_generation)
{
    ck_assert_int_eq(
        create(R("apiextensions.k8s.io", "v1", "customresourcedefinitions"), NULL, CRD, NULL), 201);
    const struct tn_rtype *w = R("example.tandem.io", "v1", "widgets");
    json_t *o;
    ck_assert_int_eq(create(w, "default",
                            "{\"apiVersion\":\"example.tandem.io/v1\",\"kind\":\"Widget\","
                            "\"metadata\":{\"name\":\"w\"},\"spec\":{\"junk\":1},\"status\":{"
                            "\"phase\":\"x\"}}",
                            &o),
                     201);
    ck_assert_int_eq(tn_json_int(o, "spec.size", 0), 3); /* defaulted */
    ck_assert_ptr_null(tn_json_get(o, "spec.junk"));     /* pruned */
    ck_assert_ptr_null(tn_json_get(o, "status"));        /* status subresource owns it */
    ck_assert_int_eq(tn_json_int(o, "metadata.generation", 0), 1);
    /* status update: only status changes, generation stays */
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts so = {0};
    so.status_only = 1;
    json_t *s = json_deep_copy(o);
    json_object_set_new(s, "status", J("{\"phase\":\"Running\"}"));
    json_object_set_new(json_object_get(s, "spec"), "size", json_integer(9));
    ck_assert_int_eq(tn_obj_update(A, w, "default", "w", s, &so, &rep), 200);
    ck_assert_str_eq(tn_json_str(rep.obj, "status.phase", ""), "Running");
    ck_assert_int_eq(tn_json_int(rep.obj, "spec.size", 0), 3);
    ck_assert_int_eq(tn_json_int(rep.obj, "metadata.generation", 0), 1);
    tn_reply_free(&rep);
    json_decref(s);
    /* main resource update: spec changes (generation bumps), status is ignored */
    json_t *cur = tn_obj_load(A, w, "default", "w");
    json_object_set_new(json_object_get(cur, "spec"), "size", json_integer(5));
    json_object_set_new(cur, "status", J("{\"phase\":\"Hacked\"}"));
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, w, "default", "w", cur, NULL, &rep), 200);
    ck_assert_int_eq(tn_json_int(rep.obj, "metadata.generation", 0), 2);
    ck_assert_str_eq(tn_json_str(rep.obj, "status.phase", ""), "Running");
    tn_reply_free(&rep);
    /* schema violation: 422 naming the field */
    json_object_set_new(json_object_get(cur, "spec"), "size", json_integer(0));
    json_object_del(json_object_get(cur, "metadata"), "resourceVersion");
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, w, "default", "w", cur, NULL, &rep), 422);
    ck_assert_uint_ge(rep.causes.n, 1);
    ck_assert_str_eq(rep.causes.v[0].field, "spec.size");
    tn_reply_free(&rep);
    json_decref(cur);
    json_decref(o);
    /* deleting the CRD deletes its objects and stops serving it */
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, R("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
                                   "", "widgets.example.tandem.io", NULL, &rep),
                     200);
    tn_reply_free(&rep);
    ck_assert_ptr_null(tn_registry_find(&A->reg, "example.tandem.io", "v1", "widgets"));
    ck_assert_int_eq(tn_store_count(A->store, "example.tandem.io/widgets", NULL), 0);
}
END_TEST

START_TEST(finalizers_hold_deletion)
{
    const struct tn_rtype *t = R("", "v1", "configmaps");
    ck_assert_int_eq(create(t, "default",
                            "{\"metadata\":{\"name\":\"f\",\"finalizers\":[\"example.io/x\"]}}",
                            NULL),
                     201);
    struct tn_reply rep;
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, t, "default", "f", NULL, &rep), 200);
    tn_reply_free(&rep);
    json_t *o = tn_obj_load(A, t, "default", "f");
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(tn_json_get(o, "metadata.deletionTimestamp"));
    /* a new finalizer cannot be added now */
    json_array_append_new(tn_json_get(o, "metadata.finalizers"), json_string("other/y"));
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, t, "default", "f", o, NULL, &rep), 422);
    tn_reply_free(&rep);
    json_decref(o);
    /* removing the last finalizer completes the deletion */
    o = tn_obj_load(A, t, "default", "f");
    json_array_clear(tn_json_get(o, "metadata.finalizers"));
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_update(A, t, "default", "f", o, NULL, &rep), 200);
    tn_reply_free(&rep);
    json_decref(o);
    ck_assert_ptr_null(tn_obj_load(A, t, "default", "f"));
}
END_TEST

static char *owner_json(const char *uid)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"dep\",\"ownerReferences\":[{\"apiVersion\":\"v1\","
             "\"kind\":\"ConfigMap\",\"name\":\"owner\",\"uid\":\"%s\"}]}}",
             uid);
    return buf;
}

START_TEST(gc_background_and_orphan)
{
    const struct tn_rtype *t = R("", "v1", "configmaps");
    json_t *own;
    ck_assert_int_eq(create(t, "default", "{\"metadata\":{\"name\":\"owner\"}}", &own), 201);
    ck_assert_int_eq(create(t, "default", owner_json(tn_json_str(own, "metadata.uid", "")), NULL),
                     201);
    struct tn_reply rep;
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, t, "default", "owner", NULL, &rep), 200);
    tn_reply_free(&rep);
    drain();
    ck_assert_ptr_null(tn_obj_load(A, t, "default", "dep")); /* background: collected */
    json_decref(own);
    /* orphan: the dependent stays, without the reference */
    ck_assert_int_eq(create(t, "default", "{\"metadata\":{\"name\":\"owner\"}}", &own), 201);
    ck_assert_int_eq(create(t, "default", owner_json(tn_json_str(own, "metadata.uid", "")), NULL),
                     201);
    struct tn_write_opts o = {0};
    o.grace = -1;
    o.propagation = "Orphan";
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, t, "default", "owner", &o, &rep), 200);
    tn_reply_free(&rep);
    drain();
    ck_assert_ptr_null(tn_obj_load(A, t, "default", "owner"));
    json_t *dep = tn_obj_load(A, t, "default", "dep");
    ck_assert_ptr_nonnull(dep);
    ck_assert_uint_eq(json_array_size(tn_json_get(dep, "metadata.ownerReferences")), 0);
    json_decref(dep);
    json_decref(own);
}
END_TEST

START_TEST(pod_graceful_delete_on_ready_node)
{
    const struct tn_rtype *pods = R("", "v1", "pods"), *nodes = R("", "v1", "nodes");
    ck_assert_int_eq(create(nodes, NULL,
                            "{\"metadata\":{\"name\":\"edge-1\"},\"status\":{\"conditions\":[{"
                            "\"type\":\"Ready\",\"status\":\"True\"}]}}",
                            NULL),
                     201);
    json_t *p;
    ck_assert_int_eq(create(pods, "default",
                            "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":\"edge-1\","
                            "\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
                            &p),
                     201);
    ck_assert_str_eq(tn_json_str(p, "status.phase", ""), "Pending");
    ck_assert_str_eq(tn_json_str(p, "spec.restartPolicy", ""), "Always");
    json_decref(p);
    struct tn_reply rep;
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, pods, "default", "p", NULL, &rep), 200);
    tn_reply_free(&rep);
    p = tn_obj_load(A, pods, "default", "p");
    ck_assert_ptr_nonnull(p); /* the node agent stops it first */
    ck_assert_int_eq(tn_json_int(p, "metadata.deletionGracePeriodSeconds", 0), 30);
    json_decref(p);
    struct tn_write_opts o = {0};
    o.grace = 0;
    tn_reply_init(&rep);
    ck_assert_int_eq(tn_obj_delete(A, pods, "default", "p", &o, &rep), 200);
    tn_reply_free(&rep);
    ck_assert_ptr_null(tn_obj_load(A, pods, "default", "p"));
    /* a pod without a node is not scheduled, and says why */
    ck_assert_int_eq(create(pods, "default",
                            "{\"metadata\":{\"name\":\"q\"},\"spec\":{\"containers\":[{\"name\":"
                            "\"c\"}]}}",
                            &p),
                     201);
    json_t *cond = json_array_get(tn_json_get(p, "status.conditions"), 0);
    ck_assert_str_eq(tn_json_str(cond, "reason", ""), "Unschedulable");
    json_decref(p);
}
END_TEST

START_TEST(deployment_keeps_replicas)
{
    const struct tn_rtype *d = R("apps", "v1", "deployments"), *pods = R("", "v1", "pods");
    ck_assert_int_eq(
        create(d, "default",
               "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":3,\"selector\":"
               "{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{"
               "\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":\"n\","
               "\"containers\":[{\"name\":\"c\"}]}}}}",
               NULL),
        201);
    drain();
    ck_assert_int_eq(tn_store_count(A->store, "core/pods", "default"), 3);
    json_t *dep = tn_obj_load(A, d, "default", "web");
    ck_assert_int_eq(tn_json_int(dep, "status.replicas", -1), 3);
    ck_assert_int_eq(tn_json_int(dep, "status.readyReplicas", -1), 0);
    json_decref(dep);
    /* a selector that does not match the template is invalid */
    ck_assert_int_eq(create(d, "default",
                            "{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"selector\":{"
                            "\"matchLabels\":{\"app\":\"x\"}},\"template\":{\"metadata\":{"
                            "\"labels\":{\"app\":\"y\"}},\"spec\":{\"containers\":[{\"name\":"
                            "\"c\"}]}}}}",
                            NULL),
                     422);
    (void)pods;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apiserver_core");
    TCase *tc = tcase_create("objects");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rv_increases_and_noop_update_keeps_it);
    tcase_add_test(tc, names_and_namespaces);
    tcase_add_test(tc, crd_schema_status_and_generation);
    tcase_add_test(tc, finalizers_hold_deletion);
    tcase_add_test(tc, gc_background_and_orphan);
    tcase_add_test(tc, pod_graceful_delete_on_ready_node);
    tcase_add_test(tc, deployment_keeps_replicas);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
