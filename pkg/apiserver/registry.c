/* Served resource types; see registry.h. */
#include "apiserver/registry.h"
#include "apiserver/jsonpath.h"
#include "apiserver/schema.h"
#include "base/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builtin {
    const char *group, *version, *resource, *kind, *singular, *shorts, *cats;
    int namespaced, status;
};

static const struct builtin builtins[] = {
    {"", "v1", "namespaces", "Namespace", "namespace", "ns", "", 0, 1},
    {"", "v1", "nodes", "Node", "node", "no", "", 0, 1},
    {"", "v1", "pods", "Pod", "pod", "po", "all", 1, 1},
    {"", "v1", "services", "Service", "service", "svc", "all", 1, 1},
    {"", "v1", "endpoints", "Endpoints", "endpoints", "ep", "", 1, 0},
    {"", "v1", "configmaps", "ConfigMap", "configmap", "cm", "", 1, 0},
    {"", "v1", "secrets", "Secret", "secret", "", "", 1, 0},
    {"", "v1", "events", "Event", "event", "ev", "", 1, 0},
    {"", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", "sa", "", 1, 0},
    {"apps", "v1", "deployments", "Deployment", "deployment", "deploy", "all", 1, 1},
    {"coordination.k8s.io", "v1", "leases", "Lease", "lease", "", "", 1, 0},
    {"autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
     "horizontalpodautoscaler", "hpa", "all", 1, 1},
    {"rbac.authorization.k8s.io", "v1", "roles", "Role", "role", "", "", 1, 0},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "rolebinding", "", "", 1, 0},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", "", "", 0, 0},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
     "clusterrolebinding", "", "", 0, 0},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
     "customresourcedefinition", "crd,crds", "api-extensions", 0, 1},
};

static void set_key(struct tn_rtype *t)
{
    snprintf(t->key, sizeof(t->key), "%s/%s", t->group[0] ? t->group : "core", t->resource);
}

int tn_registry_init(struct tn_registry *r)
{
    r->head = NULL;
    struct tn_rtype **tail = &r->head;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const struct builtin *b = &builtins[i];
        struct tn_rtype *t = calloc(1, sizeof(*t));
        if (!t) return TN_ENOMEM;
        snprintf(t->group, sizeof(t->group), "%s", b->group);
        snprintf(t->version, sizeof(t->version), "%s", b->version);
        snprintf(t->resource, sizeof(t->resource), "%s", b->resource);
        snprintf(t->kind, sizeof(t->kind), "%s", b->kind);
        snprintf(t->list_kind, sizeof(t->list_kind), "%sList", b->kind);
        snprintf(t->singular, sizeof(t->singular), "%s", b->singular);
        snprintf(t->short_names, sizeof(t->short_names), "%s", b->shorts);
        snprintf(t->categories, sizeof(t->categories), "%s", b->cats);
        t->namespaced = b->namespaced;
        t->has_status = b->status;
        t->builtin = 1;
        t->storage = 1;
        set_key(t);
        *tail = t;
        tail = &t->next;
    }
    return 0;
}

static void rtype_free(struct tn_rtype *t)
{
    json_decref(t->schema);
    json_decref(t->columns);
    free(t);
}

void tn_registry_free(struct tn_registry *r)
{
    struct tn_rtype *t = r->head;
    while (t) {
        struct tn_rtype *n = t->next;
        rtype_free(t);
        t = n;
    }
    r->head = NULL;
}

const struct tn_rtype *tn_registry_find(const struct tn_registry *r, const char *group,
                                        const char *version, const char *resource)
{
    for (const struct tn_rtype *t = r->head; t; t = t->next)
        if (strcmp(t->group, group) == 0 && strcmp(t->version, version) == 0 &&
            strcmp(t->resource, resource) == 0)
            return t;
    return NULL;
}

const struct tn_rtype *tn_registry_find_kind(const struct tn_registry *r, const char *api_version,
                                             const char *kind)
{
    char group[96] = "", version[32];
    const char *slash = strchr(api_version, '/');
    if (slash) {
        snprintf(group, sizeof(group), "%.*s", (int)(slash - api_version), api_version);
        snprintf(version, sizeof(version), "%s", slash + 1);
    } else {
        snprintf(version, sizeof(version), "%s", api_version);
    }
    for (const struct tn_rtype *t = r->head; t; t = t->next)
        if (strcmp(t->group, group) == 0 && strcmp(t->version, version) == 0 &&
            strcmp(t->kind, kind) == 0)
            return t;
    return NULL;
}

const struct tn_rtype *tn_registry_find_key(const struct tn_registry *r, const char *key)
{
    const struct tn_rtype *any = NULL;
    for (const struct tn_rtype *t = r->head; t; t = t->next)
        if (strcmp(t->key, key) == 0) {
            if (t->storage) return t;
            if (!any) any = t;
        }
    return any;
}

static int is_dns_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-')) return 0;
    }
    return s[0] != '-' && s[n - 1] != '-';
}

static int is_kind_name(const char *s)
{
    if (!s || !*s || !isupper((unsigned char)s[0])) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s)) return 0;
    return 1;
}

int tn_registry_validate_crd(const struct tn_registry *r, const json_t *crd, struct tn_causes *c)
{
    size_t before = c->n;
    const char *group = tn_json_str(crd, "spec.group", NULL);
    const char *plural = tn_json_str(crd, "spec.names.plural", NULL);
    const char *kind = tn_json_str(crd, "spec.names.kind", NULL);
    const char *scope = tn_json_str(crd, "spec.scope", NULL);
    const char *name = tn_json_str(crd, "metadata.name", "");
    if (!group || !*group)
        tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.group", "Required value");
    else if (!strchr(group, '.'))
        tn_causes_add(c, TN_CAUSE_INVALID, "spec.group",
                      "Invalid value: \"%s\": should be a domain with at least one dot", group);
    if (!plural || !*plural)
        tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.names.plural", "Required value");
    else if (!is_dns_label(plural, 63))
        tn_causes_add(c, TN_CAUSE_INVALID, "spec.names.plural",
                      "Invalid value: \"%s\": a lowercase RFC 1123 label must consist of lower "
                      "case alphanumeric characters or '-'",
                      plural);
    if (!kind || !*kind)
        tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.names.kind", "Required value");
    else if (!is_kind_name(kind))
        tn_causes_add(c, TN_CAUSE_INVALID, "spec.names.kind",
                      "Invalid value: \"%s\": may have mixed case, but should otherwise match: "
                      "[a-z]([-a-z0-9]*[a-z0-9])?",
                      kind);
    const char *singular = tn_json_str(crd, "spec.names.singular", NULL);
    if (singular && *singular && !is_dns_label(singular, 63))
        tn_causes_add(c, TN_CAUSE_INVALID, "spec.names.singular",
                      "Invalid value: \"%s\": a lowercase RFC 1123 label", singular);
    json_t *shorts = tn_json_get(crd, "spec.names.shortNames");
    if (shorts && !json_is_array(shorts))
        tn_causes_add(c, TN_CAUSE_TYPE, "spec.names.shortNames", "must be a list of strings");
    size_t i;
    json_t *v;
    json_array_foreach(shorts, i, v)
    {
        if (!json_is_string(v) || !is_dns_label(json_string_value(v), 63)) {
            char f[64];
            snprintf(f, sizeof(f), "spec.names.shortNames[%zu]", i);
            tn_causes_add(c, TN_CAUSE_INVALID, f, "must be a lowercase RFC 1123 label");
        }
    }
    if (!scope || (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0))
        tn_causes_add(c, scope ? TN_CAUSE_NOT_SUPPORTED : TN_CAUSE_REQUIRED, "spec.scope",
                      scope ? "Unsupported value: \"%s\": supported values: \"Cluster\", "
                              "\"Namespaced\""
                            : "Required value%s",
                      scope ? scope : "");
    if (group && plural) {
        char want[300];
        snprintf(want, sizeof(want), "%s.%s", plural, group);
        if (strcmp(name, want) != 0)
            tn_causes_add(c, TN_CAUSE_INVALID, "metadata.name",
                          "Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group (%s)",
                          name, want);
        /* built-in names cannot be taken over */
        for (const struct tn_rtype *t = r->head; t; t = t->next)
            if (t->builtin && strcmp(t->group, group) == 0 && strcmp(t->resource, plural) == 0)
                tn_causes_add(c, TN_CAUSE_INVALID, "spec.group", "group %s is reserved", group);
    }
    json_t *versions = tn_json_get(crd, "spec.versions");
    if (!json_is_array(versions) || json_array_size(versions) == 0) {
        tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.versions",
                      "Required value: must have exactly "
                      "one version marked as storage");
        return c->n > before ? TN_EINVAL : 0;
    }
    int nstorage = 0;
    json_array_foreach(versions, i, v)
    {
        char f[256];
        const char *vn = tn_json_str(v, "name", NULL);
        snprintf(f, sizeof(f), "spec.versions[%zu].name", i);
        if (!vn || !is_dns_label(vn, 63))
            tn_causes_add(c, vn ? TN_CAUSE_INVALID : TN_CAUSE_REQUIRED, f,
                          vn ? "Invalid value: \"%s\": must be a DNS-1035 label"
                             : "Required value%s",
                          vn ? vn : "");
        if (!json_is_boolean(json_object_get(v, "served"))) {
            snprintf(f, sizeof(f), "spec.versions[%zu].served", i);
            tn_causes_add(c, TN_CAUSE_REQUIRED, f, "Required value");
        }
        if (tn_json_bool(v, "storage", 0)) nstorage++;
        json_t *schema = tn_json_get(v, "schema.openAPIV3Schema");
        if (!schema) {
            snprintf(f, sizeof(f), "spec.versions[%zu].schema.openAPIV3Schema", i);
            tn_causes_add(c, TN_CAUSE_REQUIRED, f, "Required value: schemas are required");
        } else {
            snprintf(f, sizeof(f), "spec.versions[%zu].schema.openAPIV3Schema", i);
            tn_schema_check_structural(schema, f, c);
        }
        json_t *cols = json_object_get(v, "additionalPrinterColumns");
        size_t j;
        json_t *col;
        json_array_foreach(cols, j, col)
        {
            const char *jp = tn_json_str(col, "jsonPath", NULL);
            const char *cn = tn_json_str(col, "name", NULL);
            const char *ct = tn_json_str(col, "type", NULL);
            snprintf(f, sizeof(f), "spec.versions[%zu].additionalPrinterColumns[%zu]", i, j);
            if (!cn || !*cn) tn_causes_add(c, TN_CAUSE_REQUIRED, f, "name: Required value");
            if (!ct || (strcmp(ct, "integer") && strcmp(ct, "number") && strcmp(ct, "string") &&
                        strcmp(ct, "boolean") && strcmp(ct, "date")))
                tn_causes_add(c, TN_CAUSE_NOT_SUPPORTED, f,
                              "type: Unsupported value: \"%s\": supported values: \"boolean\", "
                              "\"date\", \"integer\", \"number\", \"string\"",
                              ct ? ct : "");
            struct tn_err e;
            if (!jp)
                tn_causes_add(c, TN_CAUSE_REQUIRED, f, "jsonPath: Required value");
            else if (tn_jsonpath_check(jp, &e))
                tn_causes_add(c, TN_CAUSE_INVALID, f, "jsonPath: Invalid value: \"%s\": %s", jp,
                              e.msg);
        }
    }
    if (nstorage != 1)
        tn_causes_add(c, TN_CAUSE_INVALID, "spec.versions",
                      "Invalid value: must have exactly one version marked as storage version");
    return c->n > before ? TN_EINVAL : 0;
}

static void csv_from_array(char *out, size_t n, const json_t *arr)
{
    out[0] = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) continue;
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", l ? "," : "", json_string_value(v));
    }
}

int tn_registry_add_crd(struct tn_registry *r, const json_t *crd, struct tn_err *err)
{
    const char *name = tn_json_str(crd, "metadata.name", "");
    tn_registry_remove_crd(r, name);
    struct tn_rtype **tail = &r->head;
    while (*tail)
        tail = &(*tail)->next;
    json_t *versions = tn_json_get(crd, "spec.versions");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        if (!tn_json_bool(v, "served", 0)) continue;
        struct tn_rtype *t = calloc(1, sizeof(*t));
        if (!t) return tn_err_set(err, TN_ENOMEM, "out of memory");
        snprintf(t->group, sizeof(t->group), "%s", tn_json_str(crd, "spec.group", ""));
        snprintf(t->version, sizeof(t->version), "%s", tn_json_str(v, "name", ""));
        snprintf(t->resource, sizeof(t->resource), "%s", tn_json_str(crd, "spec.names.plural", ""));
        snprintf(t->kind, sizeof(t->kind), "%s", tn_json_str(crd, "spec.names.kind", ""));
        const char *lk = tn_json_str(crd, "spec.names.listKind", NULL);
        if (lk && *lk)
            snprintf(t->list_kind, sizeof(t->list_kind), "%s", lk);
        else
            snprintf(t->list_kind, sizeof(t->list_kind), "%sList", t->kind);
        const char *sg = tn_json_str(crd, "spec.names.singular", NULL);
        if (sg && *sg) {
            snprintf(t->singular, sizeof(t->singular), "%s", sg);
        } else {
            for (size_t k = 0; k < sizeof(t->singular) - 1 && t->kind[k]; k++)
                t->singular[k] = (char)tolower((unsigned char)t->kind[k]);
        }
        csv_from_array(t->short_names, sizeof(t->short_names),
                       tn_json_get(crd, "spec.names.shortNames"));
        csv_from_array(t->categories, sizeof(t->categories),
                       tn_json_get(crd, "spec.names.categories"));
        snprintf(t->crd_name, sizeof(t->crd_name), "%s", name);
        t->namespaced = strcmp(tn_json_str(crd, "spec.scope", ""), "Namespaced") == 0;
        t->has_status = tn_json_get(v, "subresources.status") != NULL;
        t->storage = tn_json_bool(v, "storage", 0);
        json_t *schema = tn_json_get(v, "schema.openAPIV3Schema");
        t->schema = schema ? json_deep_copy(schema) : NULL;
        json_t *cols = json_object_get(v, "additionalPrinterColumns");
        t->columns = json_is_array(cols) && json_array_size(cols) ? json_deep_copy(cols) : NULL;
        set_key(t);
        *tail = t;
        tail = &t->next;
    }
    return 0;
}

void tn_registry_remove_crd(struct tn_registry *r, const char *name)
{
    struct tn_rtype **pp = &r->head;
    while (*pp) {
        struct tn_rtype *t = *pp;
        if (!t->builtin && strcmp(t->crd_name, name) == 0) {
            *pp = t->next;
            rtype_free(t);
        } else {
            pp = &t->next;
        }
    }
}

json_t *tn_registry_descriptors(const struct tn_registry *r)
{
    json_t *arr = json_array();
    for (const struct tn_rtype *t = r->head; t; t = t->next) {
        json_t *d =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:b}", "group", t->group, "version", t->version,
                      "kind", t->kind, "listKind", t->list_kind, "resource", t->resource,
                      "namespaced", t->namespaced, "status", t->has_status, "builtin", t->builtin);
        json_object_set(d, "schema", t->schema ? t->schema : json_null());
        json_array_append_new(arr, d);
    }
    return arr;
}
