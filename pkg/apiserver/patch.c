/* JSON merge patch, JSON patch and strategic merge patch; see patch.h. The strategic merge code
 * follows apimachinery's strategicpatch.mergeMap/mergeSlice (apply side, MergeParallelList and
 * IgnoreUnmatchedNulls on) including its list ordering rules, so results match a real apiserver. */
#include "apiserver/patch.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"

/* ---------------------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------------------- */

static int oom(struct tn_err *err)
{
    return tn_err_set(err, TN_ENOMEM, "out of memory applying a patch");
}

/* Compact JSON of v for messages, cut to fit. Writes into out. */
static const char *dump_short(const json_t *v, char *out, size_t n)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    snprintf(out, n, "%s", s ? s : "?");
    if (s && strlen(s) >= n && n > 4) memcpy(out + n - 4, "...", 4);
    free(s);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Content types
 * ------------------------------------------------------------------------------------- */

int tn_patch_type_parse(const char *ct, struct tn_err *err)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {
        {"application/json-patch+json", TN_PATCH_JSON},
        {"application/merge-patch+json", TN_PATCH_MERGE},
        {"application/strategic-merge-patch+json", TN_PATCH_STRATEGIC},
        {"application/apply-patch+yaml", TN_PATCH_APPLY},
    };
    char mt[128];
    size_t n = 0;
    if (ct) {
        while (*ct == ' ' || *ct == '\t')
            ct++;
        while (ct[n] && ct[n] != ';' && ct[n] != ' ' && n < sizeof(mt) - 1) {
            mt[n] = (char)tolower((unsigned char)ct[n]);
            n++;
        }
    }
    mt[n] = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(mt, types[i].name) == 0) return types[i].type;
    return tn_err_set(err, TN_EUNSUPPORTED,
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/strategic-merge-patch+json, application/apply-patch+yaml");
}

/* ---------------------------------------------------------------------------------------
 * RFC 7386 merge patch
 * ------------------------------------------------------------------------------------- */

/* target is stolen (may be NULL); returns a new reference or NULL on OOM. */
static json_t *merge_into(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target) return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(target, k);
            continue;
        }
        json_t *cur = json_incref(json_object_get(target, k));
        json_t *nv = merge_into(cur, v);
        if (!nv || json_object_set_new(target, k, nv)) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

json_t *tn_patch_merge(const json_t *original, const json_t *patch, struct tn_err *err)
{
    json_t *target = json_is_object(patch) ? json_deep_copy(original) : NULL;
    json_t *r = merge_into(target, patch);
    if (!r) oom(err);
    return r;
}

static json_t *diff_merge(const json_t *a, const json_t *b)
{
    if (!json_is_object(a) || !json_is_object(b)) return json_deep_copy(b);
    json_t *p = json_object();
    const char *k;
    json_t *v;
    if (!p) return NULL;
    json_object_foreach((json_t *)a, k, v)
    {
        if (!json_object_get(b, k) && json_object_set_new(p, k, json_null())) goto fail;
    }
    json_object_foreach((json_t *)b, k, v)
    {
        json_t *av = json_object_get(a, k);
        if (av && tn_json_equal(av, v)) continue;
        json_t *d = av ? diff_merge(av, v) : json_deep_copy(v);
        if (!d || json_object_set_new(p, k, d)) goto fail;
    }
    return p;
fail:
    json_decref(p);
    return NULL;
}

json_t *tn_patch_create_merge(const json_t *original, const json_t *modified, struct tn_err *err)
{
    json_t *r = diff_merge(original, modified);
    if (!r) oom(err);
    return r;
}

/* ---------------------------------------------------------------------------------------
 * RFC 6902 JSON patch
 * ------------------------------------------------------------------------------------- */

struct ptr {
    char **tok;
    size_t n;
};

static void ptr_free(struct ptr *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->tok[i]);
    free(p->tok);
    p->tok = NULL;
    p->n = 0;
}

/* Returns 0, TN_EINVAL (bad syntax, message in why) or TN_ENOMEM. */
static int ptr_parse(const char *s, struct ptr *p, char *why, size_t whyn)
{
    p->tok = NULL;
    p->n = 0;
    if (!*s) return 0;
    if (*s != '/') {
        snprintf(why, whyn, "JSON pointer must be empty or start with '/'");
        return TN_EINVAL;
    }
    size_t cap = 1;
    for (const char *q = s; *q; q++)
        cap += *q == '/';
    p->tok = calloc(cap, sizeof(char *));
    if (!p->tok) return TN_ENOMEM;
    const char *q = s + 1;
    for (;;) {
        const char *end = strchr(q, '/');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        char *t = malloc(len + 1);
        size_t o = 0;
        if (!t) {
            ptr_free(p);
            return TN_ENOMEM;
        }
        for (size_t i = 0; i < len; i++) {
            if (q[i] != '~') {
                t[o++] = q[i];
            } else if (i + 1 < len && (q[i + 1] == '0' || q[i + 1] == '1')) {
                t[o++] = q[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                free(t);
                ptr_free(p);
                snprintf(why, whyn,
                         "invalid escape in JSON pointer: '~' must be followed by 0 or 1");
                return TN_EINVAL;
            }
        }
        t[o] = 0;
        p->tok[p->n++] = t;
        if (!end) break;
        q = end + 1;
    }
    return 0;
}

/* Array index token: "-" (only when allow_end) means size; else decimal without leading
 * zeros. Returns 0 with *idx, or TN_EINVAL with why. */
static int arr_index(const char *tok, size_t size, int add, size_t *idx, char *why, size_t whyn)
{
    if (strcmp(tok, "-") == 0) {
        if (add) {
            *idx = size;
            return 0;
        }
        snprintf(why, whyn, "\"-\" is only valid as the last token of an add target");
        return TN_EINVAL;
    }
    size_t len = strlen(tok);
    if (len == 0 || len > 18 || (len > 1 && tok[0] == '0') || strspn(tok, "0123456789") != len) {
        snprintf(why, whyn, "invalid array index \"%s\"", tok);
        return TN_EINVAL;
    }
    size_t v = (size_t)strtoull(tok, NULL, 10);
    if (v > size || (!add && v == size)) {
        snprintf(why, whyn, "array index %zu out of bounds (length %zu)", v, size);
        return TN_EINVAL;
    }
    *idx = v;
    return 0;
}

/* Borrowed value at the first n tokens of p, or NULL (why says which part is missing). */
static json_t *ptr_get(json_t *doc, const struct ptr *p, size_t n, char *why, size_t whyn)
{
    json_t *cur = doc;
    for (size_t i = 0; i < n; i++) {
        if (json_is_object(cur)) {
            cur = json_object_get(cur, p->tok[i]);
        } else if (json_is_array(cur)) {
            size_t idx;
            if (arr_index(p->tok[i], json_array_size(cur), 0, &idx, why, whyn)) return NULL;
            cur = json_array_get(cur, idx);
        } else {
            cur = NULL;
        }
        if (!cur) {
            snprintf(why, whyn, "path does not exist");
            return NULL;
        }
    }
    return cur;
}

/* add: value is stolen. */
static int jp_add(json_t **doc, const struct ptr *p, json_t *value, char *why, size_t whyn)
{
    if (p->n == 0) {
        json_decref(*doc);
        *doc = value;
        return 0;
    }
    json_t *parent = ptr_get(*doc, p, p->n - 1, why, whyn);
    const char *last = p->tok[p->n - 1];
    int rc = TN_EINVAL;
    if (!parent) {
        snprintf(why, whyn, "parent of the target does not exist");
    } else if (json_is_object(parent)) {
        rc = json_object_set_new(parent, last, value) ? TN_ENOMEM : 0;
        value = NULL;
    } else if (json_is_array(parent)) {
        size_t idx;
        rc = arr_index(last, json_array_size(parent), 1, &idx, why, whyn);
        if (rc == 0) {
            rc = json_array_insert_new(parent, idx, value) ? TN_ENOMEM : 0;
            value = NULL;
        }
    } else {
        snprintf(why, whyn, "parent of the target is not an object or array");
    }
    json_decref(value);
    return rc;
}

/* remove: *removed (optional) receives a new reference to the removed value. */
static int jp_remove(json_t *doc, const struct ptr *p, json_t **removed, char *why, size_t whyn)
{
    if (p->n == 0) {
        snprintf(why, whyn, "cannot remove the whole document");
        return TN_EINVAL;
    }
    json_t *parent = ptr_get(doc, p, p->n - 1, why, whyn);
    const char *last = p->tok[p->n - 1];
    json_t *v = NULL;
    if (!parent) return TN_EINVAL;
    if (json_is_object(parent)) {
        v = json_incref(json_object_get(parent, last));
        if (v) json_object_del(parent, last);
    } else if (json_is_array(parent)) {
        size_t idx;
        if (arr_index(last, json_array_size(parent), 0, &idx, why, whyn)) return TN_EINVAL;
        v = json_incref(json_array_get(parent, idx));
        json_array_remove(parent, idx);
    }
    if (!v) {
        snprintf(why, whyn, "path does not exist");
        return TN_EINVAL;
    }
    if (removed)
        *removed = v;
    else
        json_decref(v);
    return 0;
}

static int jp_replace(json_t **doc, const struct ptr *p, json_t *value, char *why, size_t whyn)
{
    if (p->n == 0) {
        json_decref(*doc);
        *doc = value;
        return 0;
    }
    json_t *parent = ptr_get(*doc, p, p->n - 1, why, whyn);
    const char *last = p->tok[p->n - 1];
    int rc = TN_EINVAL;
    if (!parent) {
        /* why already set */
    } else if (json_is_object(parent)) {
        if (json_object_get(parent, last)) {
            rc = json_object_set_new(parent, last, value) ? TN_ENOMEM : 0;
            value = NULL;
        } else {
            snprintf(why, whyn, "path does not exist");
        }
    } else if (json_is_array(parent)) {
        size_t idx;
        rc = arr_index(last, json_array_size(parent), 0, &idx, why, whyn);
        if (rc == 0) {
            rc = json_array_set_new(parent, idx, value) ? TN_ENOMEM : 0;
            value = NULL;
        }
    } else {
        snprintf(why, whyn, "path does not exist");
    }
    json_decref(value);
    return rc;
}

static int is_prefix(const struct ptr *a, const struct ptr *b)
{
    if (a->n >= b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tok[i], b->tok[i])) return 0;
    return 1;
}

static int same_ptr(const struct ptr *a, const struct ptr *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tok[i], b->tok[i])) return 0;
    return 1;
}

/* One operation on *doc; fills why on failure. */
static int jp_op(json_t **doc, const char *op, const json_t *o, const struct ptr *path,
                 const struct ptr *from, char *why, size_t whyn)
{
    json_t *value = json_object_get(o, "value");
    if (strcmp(op, "add") == 0 || strcmp(op, "replace") == 0) {
        json_t *copy = json_deep_copy(value);
        if (!copy) return TN_ENOMEM;
        return op[0] == 'a' ? jp_add(doc, path, copy, why, whyn)
                            : jp_replace(doc, path, copy, why, whyn);
    }
    if (strcmp(op, "remove") == 0) return jp_remove(*doc, path, NULL, why, whyn);
    if (strcmp(op, "test") == 0) {
        json_t *cur = ptr_get(*doc, path, path->n, why, whyn);
        char a[160], b[160];
        if (!cur) return TN_EINVAL;
        if (!tn_json_equal(cur, value)) {
            snprintf(why, whyn, "test failed: value is %s, expected %s",
                     dump_short(cur, a, sizeof(a)), dump_short(value, b, sizeof(b)));
            return TN_EINVAL;
        }
        return 0;
    }
    /* move, copy */
    json_t *src = ptr_get(*doc, from, from->n, why, whyn);
    if (!src) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%.500s", why);
        snprintf(why, whyn, "\"from\" %.500s", tmp);
        return TN_EINVAL;
    }
    if (op[0] == 'c') {
        json_t *copy = json_deep_copy(src);
        return copy ? jp_add(doc, path, copy, why, whyn) : TN_ENOMEM;
    }
    if (same_ptr(from, path)) return 0;
    if (is_prefix(from, path)) {
        snprintf(why, whyn, "cannot move a value into one of its children");
        return TN_EINVAL;
    }
    json_t *moved;
    int rc = from->n ? jp_remove(*doc, from, &moved, why, whyn) : TN_EINVAL;
    if (rc) return rc;
    return jp_add(doc, path, moved, why, whyn);
}

json_t *tn_patch_json(const json_t *original, const json_t *patch, struct tn_err *err)
{
    if (!json_is_array(patch)) {
        tn_err_set(err, TN_EINVAL, "json patch must be an array of operations");
        return NULL;
    }
    size_t nops = json_array_size(patch);
    if (nops > TN_PATCH_MAX_JSON_OPS) {
        tn_err_set(err, TN_ETOOBIG, "the allowed maximum operations in a JSON patch is %d, got %zu",
                   TN_PATCH_MAX_JSON_OPS, nops);
        return NULL;
    }
    json_t *doc = json_deep_copy(original);
    if (!doc && original) {
        oom(err);
        return NULL;
    }
    for (size_t i = 0; i < nops; i++) {
        json_t *o = json_array_get(patch, i);
        struct ptr path = {0}, from = {0};
        char why[512] = "";
        const char *op = tn_json_str(o, "op", NULL);
        const char *ps = tn_json_str(o, "path", NULL);
        const char *fs = tn_json_str(o, "from", NULL);
        int rc;
        if (!json_is_object(o)) {
            tn_err_set(err, TN_EINVAL, "json patch operation %zu: must be an object", i);
            goto fail;
        }
        if (!op) {
            tn_err_set(err, TN_EINVAL, "json patch operation %zu: missing \"op\"", i);
            goto fail;
        }
        int needs_value = !strcmp(op, "add") || !strcmp(op, "replace") || !strcmp(op, "test");
        int needs_from = !strcmp(op, "move") || !strcmp(op, "copy");
        if (!needs_value && !needs_from && strcmp(op, "remove")) {
            tn_err_set(err, TN_EINVAL, "json patch operation %zu: unknown op \"%s\"", i, op);
            goto fail;
        }
        if (!ps) {
            tn_err_set(err, TN_EINVAL, "json patch operation %zu (%s): missing \"path\"", i, op);
            goto fail;
        }
        if (needs_value && !json_object_get(o, "value")) {
            tn_err_set(err, TN_EINVAL,
                       "json patch operation %zu (%s) on path \"%s\": missing "
                       "\"value\"",
                       i, op, ps);
            goto fail;
        }
        if (needs_from && !fs) {
            tn_err_set(err, TN_EINVAL,
                       "json patch operation %zu (%s) on path \"%s\": missing "
                       "\"from\"",
                       i, op, ps);
            goto fail;
        }
        rc = ptr_parse(ps, &path, why, sizeof(why));
        if (rc == 0 && needs_from) rc = ptr_parse(fs, &from, why, sizeof(why));
        if (rc == 0) rc = jp_op(&doc, op, o, &path, &from, why, sizeof(why));
        ptr_free(&path);
        ptr_free(&from);
        if (rc == TN_ENOMEM) {
            oom(err);
            goto fail;
        }
        if (rc) {
            if (needs_from)
                tn_err_set(err, TN_EINVAL,
                           "json patch operation %zu (%s) from \"%s\" to \"%s\": %s", i, op, fs, ps,
                           why);
            else
                tn_err_set(err, TN_EINVAL, "json patch operation %zu (%s) on path \"%s\": %s", i,
                           op, ps, why);
            goto fail;
        }
    }
    if (!doc) oom(err);
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Strategic merge patch: patch metadata
 * ------------------------------------------------------------------------------------- */

enum { S_DEFAULT = 0, S_MERGE = 1 };

/* One field of a Go type with its struct tags. sub is the field type's own fields (for a list:
 * the element type). Arrays end with a zero entry. Unlisted fields: maps merge, lists replace. */
struct smp_field {
    const char *name;
    int strategy;
    const char *key; /* patchMergeKey; NULL for primitive lists */
    const struct smp_field *sub;
};

static const struct smp_field f_meta[] = {
    {"ownerReferences", S_MERGE, "uid", NULL},
    {"finalizers", S_MERGE, NULL, NULL},
    {0},
};
static const struct smp_field f_container[] = {
    {"ports", S_MERGE, "containerPort", NULL},
    {"env", S_MERGE, "name", NULL},
    {"volumeMounts", S_MERGE, "mountPath", NULL},
    {"volumeDevices", S_MERGE, "devicePath", NULL},
    {0},
};
static const struct smp_field f_podspec[] = {
    {"volumes", S_MERGE, "name", NULL}, /* merge,retainKeys */
    {"initContainers", S_MERGE, "name", f_container},
    {"containers", S_MERGE, "name", f_container},
    {"ephemeralContainers", S_MERGE, "name", f_container},
    {"imagePullSecrets", S_MERGE, "name", NULL},
    {"hostAliases", S_MERGE, "ip", NULL},
    {"topologySpreadConstraints", S_MERGE, "topologyKey", NULL},
    {"schedulingGates", S_MERGE, "name", NULL},
    {"resourceClaims", S_MERGE, "name", NULL},
    {0},
};
static const struct smp_field f_podstatus[] = {
    {"conditions", S_MERGE, "type", NULL},
    {"podIPs", S_MERGE, "ip", NULL},
    {"hostIPs", S_MERGE, "ip", NULL},
    {0},
};
static const struct smp_field f_conditions[] = {
    {"conditions", S_MERGE, "type", NULL},
    {0},
};
static const struct smp_field f_podtemplatespec[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_podspec},
    {0},
};
static const struct smp_field f_pod[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_podspec},
    {"status", S_DEFAULT, NULL, f_podstatus},
    {0},
};
static const struct smp_field f_podtemplate[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"template", S_DEFAULT, NULL, f_podtemplatespec},
    {0},
};
/* Deployment, ReplicaSet, StatefulSet, DaemonSet, Job: spec.template is a PodTemplateSpec. */
static const struct smp_field f_workloadspec[] = {
    {"template", S_DEFAULT, NULL, f_podtemplatespec},
    {0},
};
static const struct smp_field f_workload[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_workloadspec},
    {"status", S_DEFAULT, NULL, f_conditions},
    {0},
};
static const struct smp_field f_jobtemplate[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_workloadspec},
    {0},
};
static const struct smp_field f_cronjobspec[] = {
    {"jobTemplate", S_DEFAULT, NULL, f_jobtemplate},
    {0},
};
static const struct smp_field f_cronjob[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_cronjobspec},
    {0},
};
static const struct smp_field f_servicespec[] = {
    {"ports", S_MERGE, "port", NULL},
    {0},
};
static const struct smp_field f_service[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_servicespec},
    {"status", S_DEFAULT, NULL, f_conditions},
    {0},
};
static const struct smp_field f_nodespec[] = {
    {"podCIDRs", S_MERGE, NULL, NULL},
    {0},
};
static const struct smp_field f_nodestatus[] = {
    {"conditions", S_MERGE, "type", NULL},
    {"addresses", S_MERGE, "type", NULL},
    {0},
};
static const struct smp_field f_node[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"spec", S_DEFAULT, NULL, f_nodespec},
    {"status", S_DEFAULT, NULL, f_nodestatus},
    {0},
};
static const struct smp_field f_with_conditions[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"status", S_DEFAULT, NULL, f_conditions},
    {0},
};
static const struct smp_field f_serviceaccount[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {"secrets", S_MERGE, "name", NULL},
    {0},
};
static const struct smp_field f_metaonly[] = {
    {"metadata", S_DEFAULT, NULL, f_meta},
    {0},
};

static const struct {
    const char *group;
    const char *kind;
    const struct smp_field *type;
} smp_kinds[] = {
    {"", "Pod", f_pod},
    {"", "PodTemplate", f_podtemplate},
    {"", "Service", f_service},
    {"", "Endpoints", f_metaonly},
    {"", "Node", f_node},
    {"", "Namespace", f_with_conditions},
    {"", "ConfigMap", f_metaonly},
    {"", "Secret", f_metaonly},
    {"", "ServiceAccount", f_serviceaccount},
    {"", "Event", f_metaonly},
    {"events.k8s.io", "Event", f_metaonly},
    {"coordination.k8s.io", "Lease", f_metaonly},
    {"autoscaling", "HorizontalPodAutoscaler", f_with_conditions},
    {"rbac.authorization.k8s.io", "Role", f_metaonly},
    {"rbac.authorization.k8s.io", "RoleBinding", f_metaonly},
    {"rbac.authorization.k8s.io", "ClusterRole", f_metaonly},
    {"rbac.authorization.k8s.io", "ClusterRoleBinding", f_metaonly},
    {"apps", "Deployment", f_workload},
    {"apps", "ReplicaSet", f_workload},
    {"apps", "StatefulSet", f_workload},
    {"apps", "DaemonSet", f_workload},
    {"batch", "Job", f_workload},
    {"batch", "CronJob", f_cronjob},
};

static const struct smp_field *smp_kind(const char *api_version, const char *kind)
{
    if (!api_version || !kind) return NULL;
    const char *slash = strchr(api_version, '/');
    size_t glen = slash ? (size_t)(slash - api_version) : 0;
    for (size_t i = 0; i < sizeof(smp_kinds) / sizeof(smp_kinds[0]); i++) {
        if (strcmp(smp_kinds[i].kind, kind) == 0 && strlen(smp_kinds[i].group) == glen &&
            strncmp(smp_kinds[i].group, api_version, glen) == 0)
            return smp_kinds[i].type;
    }
    return NULL;
}

int tn_patch_strategic_supported(const char *api_version, const char *kind)
{
    return smp_kind(api_version, kind) != NULL;
}

static const struct smp_field *smp_lookup(const struct smp_field *type, const char *name)
{
    for (; type && type->name; type++)
        if (strcmp(type->name, name) == 0) return type;
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Strategic merge patch: application
 *
 * Internals build results from shallow copies (children may still be shared with the
 * original or the patch, and are never modified); the public entry deep-copies the result.
 * ------------------------------------------------------------------------------------- */

#define DIRECTIVE "$patch"
#define RETAIN_KEYS "$retainKeys"
#define DELETE_PRIMITIVE "$deleteFromPrimitiveList/"
#define SET_ORDER "$setElementOrder/"

struct smp {
    struct tn_err *err;
    char path[512];
    int failed;
};

static void smp_fail(struct smp *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void smp_fail(struct smp *c, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path[0])
        tn_err_set(c->err, code, "%s: %s", c->path, msg);
    else
        tn_err_set(c->err, code, "%s", msg);
    c->failed = 1;
}

static size_t path_push(struct smp *c, const char *key)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof(c->path) - len, "%s%s", len ? "." : "", key);
    return len;
}

static void no_merge_key(struct smp *c, const json_t *m, const char *key)
{
    char s[200];
    smp_fail(c, TN_EINVAL, "map: %s does not contain declared merge key: %s",
             dump_short(m, s, sizeof(s)), key);
}

/* Go's == on decoded JSON scalars. */
static int scalar_eq(const json_t *a, const json_t *b)
{
    if (!a || !b || json_is_object(a) || json_is_array(a) || json_is_object(b) || json_is_array(b))
        return 0;
    return tn_json_equal(a, b);
}

/* Deep copy dropping null-valued object keys (discardNullValuesFromPatch). New reference. */
static json_t *strip_nulls(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (json_is_null(x)) continue;
            if (!o || json_object_set_new(o, k, strip_nulls(x))) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!a || json_array_append_new(a, strip_nulls(x))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    return json_deep_copy(v);
}

static json_t *smp_map(struct smp *c, const json_t *orig, const json_t *patch,
                       const struct smp_field *type);
static json_t *smp_list(struct smp *c, const json_t *orig, const json_t *patch,
                        const struct smp_field *f);

/* The new value of one key: orig (borrowed, may be NULL) patched by pv under field meta f. */
static json_t *smp_value(struct smp *c, const json_t *orig, const json_t *pv,
                         const struct smp_field *f)
{
    if (json_is_object(pv))
        return smp_map(c, json_is_object(orig) ? orig : NULL, pv, f ? f->sub : NULL);
    if (json_is_array(pv)) {
        if (f && f->strategy == S_MERGE)
            return smp_list(c, json_is_array(orig) ? orig : NULL, pv, f);
        return strip_nulls(pv);
    }
    return json_deep_copy(pv);
}

enum elem_kind { K_NONE, K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_BOOL, K_NULL };

static enum elem_kind kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return K_OBJECT;
    case JSON_ARRAY:
        return K_ARRAY;
    case JSON_STRING:
        return K_STRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return K_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE:
        return K_BOOL;
    default:
        return K_NULL;
    }
}

/* sliceElementType: the common element kind of both lists, or K_NONE with an error. */
static enum elem_kind list_kind(struct smp *c, const json_t *a, const json_t *b)
{
    enum elem_kind k = K_NONE;
    const json_t *lists[2] = {a, b};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(lists[l], i, v)
        {
            enum elem_kind vk = kind_of(v);
            if (vk == K_ARRAY) {
                smp_fail(c, TN_EINVAL, "lists of lists are not supported");
                return K_NONE;
            }
            if (k != K_NONE && vk != k) {
                smp_fail(c, TN_EINVAL, "list element types are not identical");
                return K_NONE;
            }
            k = vk;
        }
    }
    return k;
}

/* Index of item in list, matching maps by merge key and scalars by value; -1 if absent. */
static long list_index(const json_t *list, const json_t *item, const char *key)
{
    size_t i;
    json_t *v;
    const json_t *want = key ? json_object_get(item, key) : item;
    if (!list || !want) return -1;
    json_array_foreach(list, i, v)
    {
        const json_t *have = key ? json_object_get(v, key) : v;
        if (have &&
            (key || !json_is_object(want) ? scalar_eq(have, want) : tn_json_equal(have, want)))
            return (long)i;
    }
    return -1;
}

/* Stable sort of the items of arr (ours, in place) by their index in order; items missing from
 * order keep their relative place after the others. Returns 0 or TN_ENOMEM. */
static int sort_by_order(json_t *arr, const json_t *order, const char *key)
{
    size_t n = json_array_size(arr);
    if (n < 2) return 0;
    long *rank = malloc(n * sizeof(long));
    json_t **items = malloc(n * sizeof(json_t *));
    int rc = 0;
    if (!rank || !items) {
        rc = TN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = json_incref(json_array_get(arr, i));
        long r = list_index(order, items[i], key);
        rank[i] = r < 0 ? LONG_MAX : r;
        for (size_t j = i; j > 0 && rank[j - 1] > rank[j]; j--) {
            long tr = rank[j];
            json_t *ti = items[j];
            rank[j] = rank[j - 1];
            items[j] = items[j - 1];
            rank[j - 1] = tr;
            items[j - 1] = ti;
        }
    }
    for (size_t i = 0; i < n; i++)
        json_array_set_new(arr, i, items[i]);
out:
    free(rank);
    free(items);
    return rc;
}

/* normalizeElementOrder + mergeSortedSlice: patch items ordered by patch_order, server-only
 * items by server_order, then interleaved by server_order. Takes ownership of both arrays;
 * returns a new array or NULL. */
static json_t *order_merge(json_t *patch_items, json_t *server_only, const json_t *patch_order,
                           const json_t *server_order, const char *key)
{
    json_t *out = json_array();
    if (!out) goto done;
    if (sort_by_order(patch_items, patch_order, key) ||
        sort_by_order(server_only, server_order, key)) {
        json_decref(out);
        out = NULL;
        goto done;
    }
    size_t i = 0, j = 0, nl = json_array_size(server_only), nr = json_array_size(patch_items);
    while (i < nl || j < nr) {
        json_t *pick;
        if (i >= nl) {
            pick = json_array_get(patch_items, j++);
        } else if (j >= nr) {
            pick = json_array_get(server_only, i++);
        } else {
            long li = list_index(server_order, json_array_get(server_only, i), key);
            long ri = list_index(server_order, json_array_get(patch_items, j), key);
            if (li >= 0 && ri >= 0 && li < ri)
                pick = json_array_get(server_only, i++);
            else
                pick = json_array_get(patch_items, j++);
        }
        if (json_array_append(out, pick)) {
            json_decref(out);
            out = NULL;
            break;
        }
    }
done:
    json_decref(patch_items);
    json_decref(server_only);
    return out;
}

/* Splits merged into items present in `by` and the rest. */
static int partition(const json_t *merged, const json_t *by, const char *key, json_t **in,
                     json_t **rest)
{
    *in = json_array();
    *rest = json_array();
    if (!*in || !*rest) return TN_ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(merged, i, v)
    {
        if (json_array_append(list_index(by, v, key) >= 0 ? *in : *rest, v)) return TN_ENOMEM;
    }
    return 0;
}

static json_t *finish_order(struct smp *c, const json_t *merged, const json_t *by,
                            const json_t *server_order, const char *key)
{
    json_t *in, *rest;
    if (partition(merged, by, key, &in, &rest)) {
        json_decref(in);
        json_decref(rest);
        smp_fail(c, TN_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *r = order_merge(in, rest, by, server_order, key);
    if (!r) smp_fail(c, TN_ENOMEM, "out of memory");
    return r;
}

static const char *directive_of(const json_t *m)
{
    json_t *d = json_object_get(m, DIRECTIVE);
    return d ? (json_is_string(d) ? json_string_value(d) : "") : NULL;
}

/* mergeSlice for a list field with strategy merge. orig may be NULL. New reference. */
static json_t *smp_list(struct smp *c, const json_t *orig, const json_t *patch,
                        const struct smp_field *f)
{
    json_t *empty = NULL, *work = NULL, *plist = NULL, *r = NULL;
    if (!orig) orig = empty = json_array();
    if (!orig) goto oom;
    if (json_array_size(orig) == 0 && json_array_size(patch) == 0) {
        r = json_array();
        goto out;
    }
    enum elem_kind k = list_kind(c, orig, patch);
    if (k == K_NONE) goto out;
    size_t i;
    json_t *v;
    if (k != K_OBJECT) {
        work = json_array();
        if (!work) goto oom;
        const json_t *both[2] = {orig, patch};
        for (int l = 0; l < 2; l++) {
            json_array_foreach(both[l], i, v)
            {
                if (list_index(work, v, NULL) < 0 && json_array_append(work, v)) goto oom;
            }
        }
        r = finish_order(c, work, patch, orig, NULL);
        goto out;
    }
    if (!f->key) {
        smp_fail(c, TN_EINVAL, "cannot merge lists without merge key");
        goto out;
    }
    work = json_array();
    plist = json_array();
    if (!work || !plist || json_array_extend(work, (json_t *)orig)) goto oom;
    int replace = 0;
    json_array_foreach(patch, i, v)
    {
        const char *d = directive_of(v);
        if (!d) {
            if (json_array_append(plist, v)) goto oom;
        } else if (strcmp(d, "delete") == 0) {
            json_t *kv = json_object_get(v, f->key);
            if (!kv) {
                no_merge_key(c, v, f->key);
                goto out;
            }
            for (size_t j = 0; j < json_array_size(work);) {
                if (scalar_eq(json_object_get(json_array_get(work, j), f->key), kv))
                    json_array_remove(work, j);
                else
                    j++;
            }
        } else if (strcmp(d, "replace") == 0) {
            replace = 1;
        } else if (strcmp(d, "merge") == 0) {
            smp_fail(c, TN_EINVAL, "merging lists cannot yet be specified in the patch");
            goto out;
        } else {
            char s[200];
            smp_fail(c, TN_EINVAL, "unknown patch type: %s in map: %s", d,
                     dump_short(v, s, sizeof(s)));
            goto out;
        }
    }
    if (replace) {
        r = json_array();
        if (!r) goto oom;
        json_array_foreach(plist, i, v)
        {
            json_t *e = smp_map(c, NULL, v, f->sub);
            if (!e || json_array_append_new(r, e)) goto fail_r;
        }
        goto out;
    }
    json_array_foreach(plist, i, v)
    {
        json_t *kv = json_object_get(v, f->key);
        if (!kv) {
            no_merge_key(c, v, f->key);
            goto out;
        }
        long at = list_index(work, v, f->key);
        json_t *e = smp_map(c, at >= 0 ? json_array_get(work, (size_t)at) : NULL, v, f->sub);
        if (!e) goto out;
        if (at >= 0 ? json_array_set_new(work, (size_t)at, e) : json_array_append_new(work, e))
            goto oom;
    }
    r = finish_order(c, work, plist, orig, f->key);
    goto out;
fail_r:
    json_decref(r);
    r = NULL;
    if (!c->failed) smp_fail(c, TN_ENOMEM, "out of memory");
    goto out;
oom:
    smp_fail(c, TN_ENOMEM, "out of memory");
out:
    json_decref(empty);
    json_decref(work);
    json_decref(plist);
    return r;
}

/* validatePatchWithSetOrderList: the patch list must follow the $setElementOrder order. */
static int check_set_order(struct smp *c, const json_t *plist, const json_t *order, const char *key,
                           const char *field)
{
    size_t pi = 0, si = 0, np = json_array_size(plist), ns = json_array_size(order);
    if (!np || !ns) return 0;
    while (pi < np && si < ns) {
        const json_t *p = json_array_get(plist, pi);
        const char *d = key ? directive_of(p) : NULL;
        if (d) {
            pi++;
            continue;
        }
        const json_t *o = json_array_get(order, si);
        int eq;
        if (key) {
            if (!json_object_get(p, key) || !json_object_get(o, key)) {
                no_merge_key(c, json_object_get(p, key) ? o : p, key);
                return -1;
            }
            eq = scalar_eq(json_object_get(p, key), json_object_get(o, key));
        } else {
            eq = scalar_eq(p, o);
        }
        if (eq) pi++;
        si++;
    }
    while (pi < np && key && directive_of(json_array_get(plist, pi)))
        pi++;
    if (pi < np) {
        char a[200], b[200];
        smp_fail(c, TN_EINVAL,
                 "the order in patch list %s doesn't match $setElementOrder/%s "
                 "list %s",
                 dump_short(plist, a, sizeof(a)), field, dump_short(order, b, sizeof(b)));
        return -1;
    }
    return 0;
}

/* Applies "$setElementOrder/<field>" of patch to res (ours). Returns 0 or -1 (c->failed). */
static int apply_set_order(struct smp *c, json_t *res, const json_t *patch, const char *field,
                           const json_t *order, const struct smp_field *type)
{
    const struct smp_field *f = smp_lookup(type, field);
    const char *key = f ? f->key : NULL;
    json_t *ol = json_object_get(res, field);
    json_t *pl = json_object_get(patch, field);
    json_t *merged = NULL;
    if (!json_is_array(order) || (ol && !json_is_array(ol)) || (pl && !json_is_array(pl))) {
        smp_fail(c, TN_EINVAL, "invalid patch format of setElementOrder list");
        return -1;
    }
    if (pl && check_set_order(c, pl, order, key, field)) return -1;
    if (ol && !pl)
        merged = json_incref(ol);
    else if (pl)
        merged = smp_value(c, ol, pl, f);
    else
        return 0;
    if (!merged) return -1;
    if (key) {
        size_t i;
        json_t *v;
        json_array_foreach(order, i, v)
        {
            if (!json_object_get(v, key)) {
                no_merge_key(c, v, key);
                json_decref(merged);
                return -1;
            }
        }
    }
    json_t *r = finish_order(
        c, merged, order, ol,
        json_array_size(merged) && json_is_object(json_array_get(merged, 0)) ? key : NULL);
    json_decref(merged);
    if (!r) return -1;
    if (json_object_set_new(res, field, r)) {
        smp_fail(c, TN_ENOMEM, "out of memory");
        return -1;
    }
    return 0;
}

static int apply_retain_keys(struct smp *c, json_t *res, const json_t *patch, const json_t *rk)
{
    const char *k;
    json_t *v;
    void *tmp;
    if (!json_is_array(rk)) {
        smp_fail(c, TN_EINVAL, "invalid patch format of retainKeys");
        return -1;
    }
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v) || k[0] == '$') continue;
        int found = 0;
        size_t i;
        json_t *x;
        json_array_foreach(rk, i, x)
        {
            found |= json_is_string(x) && strcmp(json_string_value(x), k) == 0;
        }
        if (!found) {
            smp_fail(c, TN_EINVAL,
                     "invalid patch format of retainKeys: %s is not in the "
                     "$retainKeys list",
                     k);
            return -1;
        }
    }
    json_object_foreach_safe(res, tmp, k, v)
    {
        int found = 0;
        size_t i;
        json_t *x;
        json_array_foreach(rk, i, x)
        {
            found |= json_is_string(x) && strcmp(json_string_value(x), k) == 0;
        }
        if (!found) json_object_del(res, k);
    }
    return 0;
}

/* mergeMap: orig (borrowed, NULL = {}) patched by the object patch. New reference or NULL. */
static json_t *smp_map(struct smp *c, const json_t *orig, const json_t *patch,
                       const struct smp_field *type)
{
    const char *d = directive_of(patch);
    if (d) {
        if (strcmp(d, "replace") == 0) {
            json_t *p2 = json_copy((json_t *)patch);
            if (!p2) {
                smp_fail(c, TN_ENOMEM, "out of memory");
                return NULL;
            }
            json_object_del(p2, DIRECTIVE);
            json_t *r = smp_map(c, NULL, p2, type);
            json_decref(p2);
            return r;
        }
        if (strcmp(d, "delete") == 0) return json_object();
        char s[200];
        smp_fail(c, TN_EINVAL, "unknown patch type: %s in map: %s", d,
                 dump_short(patch, s, sizeof(s)));
        return NULL;
    }
    json_t *res = json_is_object(orig) ? json_copy((json_t *)orig) : json_object();
    const char *k;
    json_t *v;
    if (!res) {
        smp_fail(c, TN_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *rk = json_object_get(patch, RETAIN_KEYS);
    if (rk && apply_retain_keys(c, res, patch, rk)) goto fail;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (strncmp(k, SET_ORDER, strlen(SET_ORDER)) == 0) {
            const char *field = k + strlen(SET_ORDER);
            size_t saved = path_push(c, field);
            int rc = apply_set_order(c, res, patch, field, v, type);
            c->path[saved] = 0;
            if (rc) goto fail;
        }
    }
    /* Deletions from primitive lists first, so that a list and its parallel deletion list
     * give the same result whatever the key order of the patch. */
    json_object_foreach((json_t *)patch, k, v)
    {
        if (strncmp(k, DELETE_PRIMITIVE, strlen(DELETE_PRIMITIVE)) != 0) continue;
        const char *field = k + strlen(DELETE_PRIMITIVE);
        json_t *cur = json_object_get(res, field);
        if (!json_is_array(v)) {
            smp_fail(c, TN_EINVAL, "invalid patch format of primitive list");
            goto fail;
        }
        if (!json_is_array(cur)) continue;
        json_t *kept = json_array();
        size_t i;
        json_t *x;
        if (!kept) goto oom;
        json_array_foreach(cur, i, x)
        {
            if (list_index(v, x, NULL) >= 0 && !json_is_object(x)) continue;
            if (json_array_append(kept, x)) {
                json_decref(kept);
                goto oom;
            }
        }
        if (json_object_set_new(res, field, kept)) goto oom;
    }
    json_object_foreach((json_t *)patch, k, v)
    {
        if (strcmp(k, DIRECTIVE) == 0 || strcmp(k, RETAIN_KEYS) == 0 ||
            strncmp(k, SET_ORDER, strlen(SET_ORDER)) == 0 ||
            strncmp(k, DELETE_PRIMITIVE, strlen(DELETE_PRIMITIVE)) == 0)
            continue;
        char twin[300];
        snprintf(twin, sizeof(twin), SET_ORDER "%s", k);
        if (json_object_get(patch, twin)) continue; /* already merged with its order list */
        if (json_is_null(v)) {
            json_object_del(res, k);
            continue;
        }
        json_t *cur = json_object_get(res, k);
        const char *pd = json_is_object(v) ? directive_of(v) : NULL;
        if (!cur && pd && strcmp(pd, "delete") == 0) continue;
        size_t saved = path_push(c, k);
        json_t *nv = smp_value(c, cur, v, smp_lookup(type, k));
        c->path[saved] = 0;
        if (!nv) {
            if (!c->failed) goto oom;
            goto fail;
        }
        if (json_object_set_new(res, k, nv)) goto oom;
    }
    return res;
oom:
    smp_fail(c, TN_ENOMEM, "out of memory");
fail:
    json_decref(res);
    return NULL;
}

json_t *tn_patch_strategic_for(const char *api_version, const char *kind, const json_t *original,
                               const json_t *patch, struct tn_err *err)
{
    const struct smp_field *type = smp_kind(api_version, kind);
    if (!type) {
        tn_err_set(err, TN_EUNSUPPORTED,
                   "strategic merge patch is not supported for custom resources; use --type "
                   "merge");
        return NULL;
    }
    if (!json_is_object(patch)) {
        tn_err_set(err, TN_EINVAL, "strategic merge patch must be a JSON object");
        return NULL;
    }
    struct smp c = {.err = err};
    json_t *r = smp_map(&c, json_is_object(original) ? original : NULL, patch, type);
    if (!r) {
        if (!c.failed) oom(err);
        return NULL;
    }
    json_t *out = json_deep_copy(r);
    json_decref(r);
    if (!out) oom(err);
    return out;
}

json_t *tn_patch_strategic(const json_t *original, const json_t *patch, struct tn_err *err)
{
    return tn_patch_strategic_for(tn_json_str(original, "apiVersion", NULL),
                                  tn_json_str(original, "kind", NULL), original, patch, err);
}

json_t *tn_patch_apply(int type, const json_t *original, const json_t *patch, struct tn_err *err)
{
    switch (type) {
    case TN_PATCH_JSON:
        return tn_patch_json(original, patch, err);
    case TN_PATCH_MERGE:
        return tn_patch_merge(original, patch, err);
    case TN_PATCH_STRATEGIC:
        return tn_patch_strategic(original, patch, err);
    default:
        tn_err_set(err, TN_EUNSUPPORTED, "server-side apply patches are not supported");
        return NULL;
    }
}
