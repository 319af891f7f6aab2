/* Unit tests for pkg/apiserver/openapi: the v3 index and group-version documents kubectl reads
 * (schema names, GVK extensions, the fieldValidation parameter on PATCH, patch content types),
 * and the v2 document (no builtins, v2-compatible schemas). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/openapi.h"

static const char *const DESCS =
    "[{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\",\"listKind\":\"PodList\",\"resource\":"
    "\"pods\",\"namespaced\":true,\"schema\":null,\"status\":true,\"builtin\":true},"
    "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Node\",\"listKind\":\"NodeList\",\"resource\":"
    "\"nodes\",\"namespaced\":false,\"schema\":null,\"status\":true,\"builtin\":true},"
    "{\"group\":\"sedna.io\",\"version\":\"v1alpha1\",\"kind\":\"Dataset\",\"listKind\":"
    "\"DatasetList\",\"resource\":\"datasets\",\"namespaced\":true,\"status\":true,\"builtin\":"
    "false,"
    "\"schema\":{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"required\":["
    "\"url\",\"note\"],\"description\":\"DatasetSpec is the spec\",\"x-kubernetes-validations\":[{"
    "\"rule\":\"self.url != ''\"}],\"properties\":{\"url\":{\"type\":\"string\",\"description\":"
    "\"URL of the dataset\"},\"note\":{\"type\":\"string\",\"nullable\":true},\"port\":{"
    "\"x-kubernetes-int-or-string\":true,\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]},"
    "\"extra\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true,\"properties\":{"
    "\"a\":{\"type\":\"string\"}}},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
    "\"nullable\":true}}}},\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":"
    "\"string\"}}}}}},"
    "{\"group\":\"sedna.io\",\"version\":\"v1alpha1\",\"kind\":\"Model\",\"listKind\":"
    "\"ModelList\","
    "\"resource\":\"models\",\"namespaced\":false,\"status\":false,\"builtin\":false,\"schema\":"
    "null}]";

static json_t *descs(void)
{
    json_error_t e;
    json_t *d = json_loads(DESCS, 0, &e);
    ck_assert_msg(d != NULL, "%s", e.text);
    return d;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

#define ck_assert_json_str(j, expect)                                                              \
    do {                                                                                           \
        char *got_ = dump(j);                                                                      \
        ck_assert_str_eq(got_, expect);                                                            \
        free(got_);                                                                                \
    } while (0)

/* Every "$ref" under v must name an existing entry of defs (prefix stripped). */
static void check_refs(const json_t *v, const json_t *defs, const char *prefix)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (strcmp(k, "$ref") == 0) {
                const char *r = json_string_value(x);
                ck_assert_ptr_nonnull(r);
                ck_assert_msg(strncmp(r, prefix, strlen(prefix)) == 0, "bad ref %s", r);
                ck_assert_msg(json_object_get(defs, r + strlen(prefix)) != NULL,
                              "unresolved ref %s", r);
            } else {
                check_refs(x, defs, prefix);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)v, i, x) check_refs(x, defs, prefix);
    }
}

static int contains_key(const json_t *v, const char *key)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (strcmp(k, key) == 0 || contains_key(x, key)) return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)v, i, x) if (contains_key(x, key)) return 1;
    }
    return 0;
}

static const json_t *find_param(const json_t *op, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(op, "parameters"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0) return p;
    }
    return NULL;
}

START_TEST(def_names)
{
    char b[256];
    tn_openapi_def_name("sedna.io", "v1alpha1", "Dataset", 0, b, sizeof(b));
    ck_assert_str_eq(b, "io.sedna.v1alpha1.Dataset");
    tn_openapi_def_name("", "v1", "Pod", 1, b, sizeof(b));
    ck_assert_str_eq(b, "io.k8s.api.core.v1.Pod");
    tn_openapi_def_name("apps", "v1", "Deployment", 1, b, sizeof(b));
    ck_assert_str_eq(b, "io.k8s.api.apps.v1.Deployment");
    tn_openapi_def_name("rbac.authorization.k8s.io", "v1", "Role", 1, b, sizeof(b));
    ck_assert_str_eq(b, "io.k8s.api.rbac.v1.Role");
    tn_openapi_def_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition", 1, b, sizeof(b));
    ck_assert_str_eq(b, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                        "CustomResourceDefinition");
    tn_openapi_def_name("edge.example.com", "v2", "Thing", 0, b, sizeof(b));
    ck_assert_str_eq(b, "com.example.edge.v2.Thing");
}
END_TEST

START_TEST(v3_index)
{
    json_t *d = descs();
    json_t *idx = tn_openapi_v3_index(d);
    ck_assert_ptr_nonnull(idx);
    json_t *paths = json_object_get(idx, "paths");
    ck_assert_int_eq((int)json_object_size(paths), 2);
    json_t *gv = tn_openapi_v3_gv(d, "sedna.io", "v1alpha1");
    char hash[32], url[256];
    ck_assert_int_eq(tn_openapi_hash(gv, hash, sizeof(hash)), 0);
    ck_assert_int_eq((int)strlen(hash), 16);
    snprintf(url, sizeof(url), "/openapi/v3/apis/sedna.io/v1alpha1?hash=%s", hash);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(paths, "apis/sedna.io/v1alpha1"), "serverRelativeURL")),
                     url);
    json_t *core = tn_openapi_v3_gv(d, "", "v1");
    ck_assert_int_eq(tn_openapi_hash(core, hash, sizeof(hash)), 0);
    snprintf(url, sizeof(url), "/openapi/v3/api/v1?hash=%s", hash);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(paths, "api/v1"), "serverRelativeURL")),
        url);
    /* stable across calls */
    json_t *idx2 = tn_openapi_v3_index(d);
    ck_assert(json_equal(idx, idx2));
    json_decref(idx2);
    json_decref(core);
    json_decref(gv);
    json_decref(idx);
    /* unknown group-version */
    ck_assert_ptr_null(tn_openapi_v3_gv(d, "sedna.io", "v9"));
    json_decref(d);
}
END_TEST

START_TEST(v3_crd_document)
{
    json_t *d = descs();
    json_t *doc = tn_openapi_v3_gv(d, "sedna.io", "v1alpha1");
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.0.0");
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *ds = json_object_get(schemas, "io.sedna.v1alpha1.Dataset");
    ck_assert_ptr_nonnull(ds);
    ck_assert_json_str(json_object_get(ds, "x-kubernetes-group-version-kind"),
                       "[{\"group\":\"sedna.io\",\"kind\":\"Dataset\",\"version\":\"v1alpha1\"}]");
    ck_assert_str_eq(json_string_value(json_object_get(ds, "type")), "object");
    json_t *props = json_object_get(ds, "properties");
    ck_assert_json_str(json_object_get(json_object_get(props, "metadata"), "allOf"),
                       "[{\"$ref\":\"#/components/schemas/"
                       "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta\"}]");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(props, "apiVersion"), "type")), "string");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(props, "kind"), "type")),
                     "string");
    /* the CRD schema itself is published as is in v3 */
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(props, "spec"), "properties"), "url"),
            "description")),
        "URL of the dataset");
    ck_assert(json_is_true(json_object_get(
        json_object_get(json_object_get(json_object_get(props, "spec"), "properties"), "note"),
        "nullable")));
    json_t *list = json_object_get(schemas, "io.sedna.v1alpha1.DatasetList");
    ck_assert_json_str(json_object_get(list, "x-kubernetes-group-version-kind"),
                       "[{\"group\":\"sedna.io\",\"kind\":\"DatasetList\",\"version\":"
                       "\"v1alpha1\"}]");
    ck_assert_ptr_nonnull(
        json_object_get(schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    /* schemaless CRD: permissive */
    json_t *model = json_object_get(schemas, "io.sedna.v1alpha1.Model");
    ck_assert(json_is_true(json_object_get(model, "x-kubernetes-preserve-unknown-fields")));

    /* paths */
    json_t *paths = json_object_get(doc, "paths");
    ck_assert_ptr_nonnull(json_object_get(paths, "/apis/sedna.io/v1alpha1/namespaces/{namespace}/"
                                                 "datasets"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/apis/sedna.io/v1alpha1/datasets"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/apis/sedna.io/v1alpha1/namespaces/{namespace}/"
                                                 "datasets/{name}/status"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/apis/sedna.io/v1alpha1/models/{name}"));
    ck_assert_ptr_null(json_object_get(paths, "/apis/sedna.io/v1alpha1/models/{name}/status"));
    json_t *item =
        json_object_get(paths, "/apis/sedna.io/v1alpha1/namespaces/{namespace}/datasets/{name}");
    json_t *patch = json_object_get(item, "patch");
    ck_assert_ptr_nonnull(patch);
    ck_assert_json_str(json_object_get(patch, "x-kubernetes-group-version-kind"),
                       "{\"group\":\"sedna.io\",\"kind\":\"Dataset\",\"version\":\"v1alpha1\"}");
    ck_assert_str_eq(json_string_value(json_object_get(patch, "x-kubernetes-action")), "patch");
    ck_assert_str_eq(json_string_value(json_object_get(patch, "operationId")),
                     "patchSednaIoV1alpha1NamespacedDataset");
    const json_t *fv = find_param(patch, "fieldValidation");
    ck_assert_ptr_nonnull(fv);
    ck_assert_str_eq(json_string_value(json_object_get(fv, "in")), "query");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(fv, "schema"), "type")),
                     "string");
    ck_assert_ptr_nonnull(find_param(patch, "dryRun"));
    ck_assert_ptr_nonnull(find_param(patch, "fieldManager"));
    ck_assert_ptr_nonnull(find_param(patch, "force"));
    json_t *pc = json_object_get(json_object_get(patch, "requestBody"), "content");
    ck_assert_int_eq((int)json_object_size(pc), 3);
    ck_assert_ptr_nonnull(json_object_get(pc, "application/json-patch+json"));
    ck_assert_ptr_nonnull(json_object_get(pc, "application/merge-patch+json"));
    ck_assert_ptr_nonnull(json_object_get(pc, "application/apply-patch+yaml"));
    /* post and put carry the write parameters too */
    ck_assert_ptr_nonnull(find_param(json_object_get(item, "put"), "fieldValidation"));
    json_t *coll =
        json_object_get(paths, "/apis/sedna.io/v1alpha1/namespaces/{namespace}/datasets");
    ck_assert_ptr_nonnull(find_param(json_object_get(coll, "post"), "fieldValidation"));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(coll, "get"), "x-kubernetes-action")),
        "list");
    ck_assert_ptr_nonnull(
        find_param(json_object_get(json_object_get(paths, "/apis/sedna.io/v1alpha1/"
                                                          "namespaces/{namespace}/datasets/"
                                                          "{name}/status"),
                                   "patch"),
                   "fieldValidation"));
    check_refs(doc, schemas, "#/components/schemas/");
    json_decref(doc);
    json_decref(d);
}
END_TEST

START_TEST(v3_builtin_document)
{
    json_t *d = descs();
    json_t *doc = tn_openapi_v3_gv(d, "", "v1");
    ck_assert_ptr_nonnull(doc);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *pod = json_object_get(schemas, "io.k8s.api.core.v1.Pod");
    ck_assert_ptr_nonnull(pod);
    ck_assert_str_eq(json_string_value(json_object_get(pod, "type")), "object");
    ck_assert(json_is_true(json_object_get(pod, "x-kubernetes-preserve-unknown-fields")));
    ck_assert_ptr_nonnull(json_object_get(pod, "description"));
    ck_assert_json_str(json_object_get(pod, "x-kubernetes-group-version-kind"),
                       "[{\"group\":\"\",\"kind\":\"Pod\",\"version\":\"v1\"}]");
    ck_assert_ptr_null(json_object_get(schemas, "io.sedna.v1alpha1.Dataset"));
    json_t *paths = json_object_get(doc, "paths");
    json_t *patch = json_object_get(
        json_object_get(paths, "/api/v1/namespaces/{namespace}/pods/{name}"), "patch");
    ck_assert_ptr_nonnull(find_param(patch, "fieldValidation"));
    ck_assert_ptr_null(
        json_object_get(json_object_get(json_object_get(patch, "requestBody"), "content"),
                        "application/strategic-merge-patch+json"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/api/v1/nodes/{name}/status"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/api/v1/pods"));
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(paths, "/api/v1/nodes/{name}"), "get"), "operationId")),
        "readCoreV1Node");
    check_refs(doc, schemas, "#/components/schemas/");
    json_decref(doc);
    json_decref(d);
}
END_TEST

START_TEST(v2_document)
{
    json_t *d = descs();
    json_t *doc = tn_openapi_v2(d);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "swagger")), "2.0");
    ck_assert(json_is_object(json_object_get(doc, "paths")));
    ck_assert_ptr_nonnull(json_object_get(json_object_get(doc, "info"), "title"));
    json_t *defs = json_object_get(doc, "definitions");
    ck_assert_ptr_null(json_object_get(defs, "io.k8s.api.core.v1.Pod"));
    ck_assert_ptr_null(json_object_get(defs, "io.k8s.api.core.v1.Node"));
    json_t *ds = json_object_get(defs, "io.sedna.v1alpha1.Dataset");
    ck_assert_ptr_nonnull(ds);
    ck_assert_json_str(json_object_get(ds, "x-kubernetes-group-version-kind"),
                       "[{\"group\":\"sedna.io\",\"kind\":\"Dataset\",\"version\":\"v1alpha1\"}]");
    ck_assert(!contains_key(doc, "nullable"));
    ck_assert(!contains_key(doc, "x-kubernetes-validations"));
    ck_assert(!contains_key(doc, "anyOf"));
    json_t *props = json_object_get(ds, "properties");
    ck_assert_json_str(
        json_object_get(props, "metadata"),
        "{\"$ref\":\"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta\"}");
    json_t *spec = json_object_get(props, "spec");
    json_t *sp = json_object_get(spec, "properties");
    /* nullable note: untyped and no longer required; int-or-string: untyped */
    ck_assert_json_str(json_object_get(spec, "required"), "[\"url\"]");
    ck_assert_json_str(json_object_get(sp, "note"), "{}");
    ck_assert_json_str(json_object_get(sp, "port"), "{\"x-kubernetes-int-or-string\":true}");
    ck_assert_json_str(json_object_get(sp, "extra"),
                       "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}");
    ck_assert_json_str(json_object_get(sp, "tags"), "{\"items\":{},\"type\":\"array\"}");
    /* the input descriptors are untouched */
    ck_assert_ptr_nonnull(json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_array_get(d, 2), "schema"), "properties"), "spec"),
        "x-kubernetes-validations"));
    check_refs(doc, defs, "#/definitions/");
    json_t *doc2 = tn_openapi_v2(d);
    ck_assert(json_equal(doc, doc2));
    json_decref(doc2);
    json_decref(doc);
    json_decref(d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apiserver_openapi");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, def_names);
    tcase_add_test(tc, v3_index);
    tcase_add_test(tc, v3_crd_document);
    tcase_add_test(tc, v3_builtin_document);
    tcase_add_test(tc, v2_document);
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
