/* OpenAPI v2/v3 documents for kubectl: schemas of the served kinds with the meta/v1 types they
 * reference, and paths whose operations carry the GVK and the query parameters kubectl probes.
 * See openapi.h. */
#include "apiserver/openapi.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META "io.k8s.apimachinery.pkg.apis.meta.v1."

static const char *const DESC_API_VERSION =
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#resources";
static const char *const DESC_KIND =
    "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#types-kinds";
static const char *const DESC_METADATA =
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata";
static const char *const DESC_LIST_METADATA =
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds";

struct desc {
    const char *group, *version, *kind, *list_kind, *resource;
    int namespaced, status, builtin;
    const json_t *schema;
};

static void read_desc(const json_t *d, struct desc *o)
{
    o->group = json_string_value(json_object_get(d, "group"));
    if (!o->group) o->group = "";
    o->version = json_string_value(json_object_get(d, "version"));
    o->kind = json_string_value(json_object_get(d, "kind"));
    o->list_kind = json_string_value(json_object_get(d, "listKind"));
    o->resource = json_string_value(json_object_get(d, "resource"));
    o->namespaced = json_is_true(json_object_get(d, "namespaced"));
    o->status = json_is_true(json_object_get(d, "status"));
    o->builtin = json_is_true(json_object_get(d, "builtin"));
    json_t *s = json_object_get(d, "schema");
    o->schema = json_is_object(s) ? s : NULL;
}

static int desc_ok(const struct desc *d)
{
    return d->version && d->kind && d->resource;
}

void tn_openapi_def_name(const char *group, const char *version, const char *kind, int builtin,
                         char *out, size_t n)
{
    if (!group || !*group) {
        snprintf(out, n, "io.k8s.api.core.v1.%s", kind);
        return;
    }
    if (builtin) {
        if (strcmp(group, "apiextensions.k8s.io") == 0) {
            snprintf(out, n, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.%s.%s", version,
                     kind);
            return;
        }
        /* rbac.authorization.k8s.io -> rbac, apps -> apps */
        size_t l = strcspn(group, ".");
        snprintf(out, n, "io.k8s.api.%.*s.%s.%s", (int)l, group, version, kind);
        return;
    }
    /* reversed group: sedna.io -> io.sedna */
    char rev[256];
    size_t rl = 0;
    const char *end = group + strlen(group);
    while (end > group && rl < sizeof(rev) - 1) {
        const char *dot = end;
        while (dot > group && dot[-1] != '.')
            dot--;
        int w =
            snprintf(rev + rl, sizeof(rev) - rl, "%s%.*s", rl ? "." : "", (int)(end - dot), dot);
        if (w < 0) break;
        rl += (size_t)w;
        if (rl >= sizeof(rev)) rl = sizeof(rev) - 1;
        end = dot > group ? dot - 1 : group;
    }
    rev[rl] = 0;
    snprintf(out, n, "%s.%s.%s", rev, version, kind);
}

int tn_openapi_hash(const json_t *doc, char *out, size_t n)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) return -1;
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    free(s);
    snprintf(out, n, "%016llX", (unsigned long long)h);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* meta/v1 schemas                                                                            */

static json_t *str_prop(const char *desc)
{
    return json_pack("{s:s, s:s}", "type", "string", "description", desc);
}

static json_t *ref(const char *prefix, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", prefix, name);
    return json_pack("{s:s}", "$ref", buf);
}

static json_t *object_meta(const char *refp)
{
    json_t *props = json_object();
    json_t *s = json_pack("{s:s, s:s, s:o}", "type", "object", "description",
                          "ObjectMeta is metadata that all persisted resources must have, which "
                          "includes all objects users must create.",
                          "properties", props);
    if (!s) return NULL;
    json_object_set_new(
        props, "name",
        str_prop("Name must be unique within a namespace. Is required when creating "
                 "resources, although some resources may allow a client to request "
                 "the generation of an appropriate name automatically. Cannot be "
                 "updated."));
    json_object_set_new(props, "generateName",
                        str_prop("GenerateName is an optional prefix, used by the server, to "
                                 "generate a unique name ONLY IF the Name field has not been "
                                 "provided."));
    json_object_set_new(props, "namespace",
                        str_prop("Namespace defines the space within which each name must be "
                                 "unique. An empty namespace is equivalent to the \"default\" "
                                 "namespace. Cannot be updated."));
    json_object_set_new(props, "uid",
                        str_prop("UID is the unique in time and space value for this object. It "
                                 "is typically generated by the server on successful creation of "
                                 "a resource and is not allowed to change on PUT operations."));
    json_object_set_new(props, "resourceVersion",
                        str_prop("An opaque value that represents the internal version of this "
                                 "object that can be used by clients to determine when objects "
                                 "have changed. Read-only."));
    json_object_set_new(props, "selfLink",
                        str_prop("Deprecated: selfLink is a legacy read-only field "
                                 "that is no longer populated by the system."));
    json_object_set_new(props, "generation",
                        json_pack("{s:s, s:s, s:s}", "type", "integer", "format", "int64",
                                  "description",
                                  "A sequence number representing a specific generation of the "
                                  "desired state. Populated by the system. Read-only."));
    json_object_set_new(props, "creationTimestamp",
                        json_pack("{s:s, s:s, s:s}", "type", "string", "format", "date-time",
                                  "description",
                                  "CreationTimestamp is a timestamp representing the server time "
                                  "when this object was created. Populated by the system. "
                                  "Read-only."));
    json_object_set_new(props, "deletionTimestamp",
                        json_pack("{s:s, s:s, s:s}", "type", "string", "format", "date-time",
                                  "description",
                                  "DeletionTimestamp is RFC 3339 date and time at which this "
                                  "resource will be deleted. Set by the server when a graceful "
                                  "deletion is requested. Read-only."));
    json_object_set_new(props, "deletionGracePeriodSeconds",
                        json_pack("{s:s, s:s, s:s}", "type", "integer", "format", "int64",
                                  "description",
                                  "Number of seconds allowed for this object to gracefully "
                                  "terminate before it will be removed from the system. Only set "
                                  "when deletionTimestamp is also set. Read-only."));
    json_object_set_new(props, "labels",
                        json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "object",
                                  "additionalProperties", "type", "string", "default", "",
                                  "description",
                                  "Map of string keys and values that can be used to organize and "
                                  "categorize (scope and select) objects."));
    json_object_set_new(props, "annotations",
                        json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "object",
                                  "additionalProperties", "type", "string", "default", "",
                                  "description",
                                  "Annotations is an unstructured key value map stored with a "
                                  "resource that may be set by external tools to store and "
                                  "retrieve arbitrary metadata. They are not queryable and "
                                  "should be preserved when modifying objects."));
    json_object_set_new(props, "finalizers",
                        json_pack("{s:s, s:{s:s, s:s}, s:s, s:s}", "type", "array", "items", "type",
                                  "string", "default", "", "x-kubernetes-list-type", "set",
                                  "description",
                                  "Must be empty before the object is deleted from the registry. "
                                  "Each entry is an identifier for the responsible component that "
                                  "will remove the entry from the list."));
    json_object_set_new(props, "ownerReferences",
                        json_pack("{s:s, s:o, s:s, s:[s], s:s}", "type", "array", "items",
                                  ref(refp, META "OwnerReference"), "x-kubernetes-list-type", "map",
                                  "x-kubernetes-list-map-keys", "uid", "description",
                                  "List of objects depended by this object. If ALL objects in the "
                                  "list have been deleted, this object will be garbage "
                                  "collected."));
    json_object_set_new(props, "managedFields",
                        json_pack("{s:s, s:{s:s, s:b}, s:s}", "type", "array", "items", "type",
                                  "object", "x-kubernetes-preserve-unknown-fields", 1,
                                  "description",
                                  "ManagedFields maps workflow-id and version to the set of "
                                  "fields that are managed by that workflow. This is mostly for "
                                  "internal housekeeping, and users typically shouldn't need to "
                                  "set or understand this field."));
    return s;
}

static json_t *owner_reference(void)
{
    json_t *s = json_pack(
        "{s:s, s:s, s:[s,s,s,s], s:{s:o, s:o, s:o, s:o, s:{s:s, s:s}, s:{s:s, s:s}}, s:s}", "type",
        "object", "description",
        "OwnerReference contains enough information to let you identify an owning object. An "
        "owning object must be in the same namespace as the dependent, or be cluster-scoped, so "
        "there is no namespace field.",
        "required", "apiVersion", "kind", "name", "uid", "properties", "apiVersion",
        str_prop("API version of the referent."), "kind", str_prop("Kind of the referent."), "name",
        str_prop("Name of the referent."), "uid", str_prop("UID of the referent."), "controller",
        "type", "boolean", "description",
        "If true, this reference points to the managing controller.", "blockOwnerDeletion", "type",
        "boolean", "description",
        "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot "
        "be deleted from the key-value store until this reference is removed.",
        "x-kubernetes-map-type", "atomic");
    return s;
}

static json_t *list_meta(void)
{
    return json_pack(
        "{s:s, s:s, s:{s:o, s:o, s:o, s:{s:s, s:s, s:s}}}", "type", "object", "description",
        "ListMeta describes metadata that synthetic resources must have, including lists and "
        "various status objects.",
        "properties", "continue",
        str_prop("continue may be set if the user set a limit on the number of items returned, and "
                 "indicates that the server has more data available."),
        "resourceVersion",
        str_prop("String that identifies the server's internal version of this object that can be "
                 "used by clients to determine when objects have changed."),
        "selfLink",
        str_prop("Deprecated: selfLink is a legacy read-only field that is no longer "
                 "populated by the system."),
        "remainingItemCount", "type", "integer", "format", "int64", "description",
        "remainingItemCount is the number of subsequent items in the list which are not included "
        "in this list response.");
}

/* Status, DeleteOptions and Patch, referenced by operations. */
static int add_op_types(json_t *defs, const char *refp)
{
    json_t *status = json_pack(
        "{s:s, s:s, s:{s:o, s:o, s:o, s:o, s:o, s:{s:s, s:s, s:s}, s:{s:s, s:b}}, s:[{s:s, s:s, "
        "s:s}]}",
        "type", "object", "description",
        "Status is a return value for calls that don't return other objects.", "properties",
        "apiVersion", str_prop(DESC_API_VERSION), "kind", str_prop(DESC_KIND), "message",
        str_prop("A human-readable description of the status of this operation."), "reason",
        str_prop("A machine-readable description of why this operation is in the \"Failure\" "
                 "status."),
        "status", str_prop("Status of the operation. One of: \"Success\" or \"Failure\"."), "code",
        "type", "integer", "format", "int32", "description",
        "Suggested HTTP return code for this status, 0 if not set.", "details", "type", "object",
        "x-kubernetes-preserve-unknown-fields", 1, "x-kubernetes-group-version-kind", "group", "",
        "kind", "Status", "version", "v1");
    if (status) {
        json_t *md = ref(refp, META "ListMeta");
        json_object_set_new(json_object_get(status, "properties"), "metadata", md);
    }
    json_t *delopts = json_pack(
        "{s:s, s:s, s:{s:o, s:o, s:{s:s, s:{s:s}}, s:{s:s, s:s}, s:o}}", "type", "object",
        "description", "DeleteOptions may be provided when deleting an API object.", "properties",
        "apiVersion", str_prop(DESC_API_VERSION), "kind", str_prop(DESC_KIND), "dryRun", "type",
        "array", "items", "type", "string", "gracePeriodSeconds", "type", "integer", "format",
        "int64", "propagationPolicy",
        str_prop("Whether and how garbage collection will be performed. Acceptable values are: "
                 "'Orphan', 'Background', 'Foreground'."));
    json_t *patch = json_pack("{s:s, s:s}", "type", "object", "description",
                              "Patch is provided to give a concrete name and type to the "
                              "Kubernetes PATCH request body.");
    if (!status || !delopts || !patch) {
        json_decref(status);
        json_decref(delopts);
        json_decref(patch);
        return -1;
    }
    json_object_set_new(defs, META "Status", status);
    json_object_set_new(defs, META "DeleteOptions", delopts);
    json_object_set_new(defs, META "Patch", patch);
    return 0;
}

static int add_meta_types(json_t *defs, const char *refp, int with_ops)
{
    json_t *om = object_meta(refp), * or = owner_reference(), *lm = list_meta();
    if (!om || ! or || !lm) {
        json_decref(om);
        json_decref(or);
        json_decref(lm);
        return -1;
    }
    json_object_set_new(defs, META "ObjectMeta", om);
    json_object_set_new(defs, META "OwnerReference", or);
    json_object_set_new(defs, META "ListMeta", lm);
    return with_ops ? add_op_types(defs, refp) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Kind schemas                                                                               */

static json_t *gvk_list(const char *group, const char *version, const char *kind)
{
    return json_pack("[{s:s, s:s, s:s}]", "group", group, "kind", kind, "version", version);
}

/* v2 conversion as apiextensions' ToStructuralOpenAPIV2 does it, in place. */
static void to_v2(json_t *s)
{
    if (!json_is_object(s)) return;
    static const char *const drop[] = {"allOf", "anyOf", "oneOf", "not",
                                       "x-kubernetes-validations"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(s, drop[i]);
    if (json_is_true(json_object_get(s, "nullable"))) {
        /* kubectl cannot cope with nullable: untyped, and untyped values break with items or
         * properties */
        json_object_del(s, "type");
        json_object_del(s, "items");
        json_object_del(s, "properties");
    }
    json_object_del(s, "nullable");
    if (json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"))) {
        json_object_del(s, "items");
        json_object_del(s, "properties");
    }
    if (json_is_true(json_object_get(s, "x-kubernetes-int-or-string"))) json_object_del(s, "type");
    const char *t = json_string_value(json_object_get(s, "type"));
    if (t && strcmp(t, "array") == 0 && !json_object_get(s, "items")) json_object_del(s, "type");
    json_t *props = json_object_get(s, "properties");
    json_t *req = json_object_get(s, "required");
    if (json_is_object(props)) {
        const char *k;
        json_t *ps;
        json_object_foreach(props, k, ps)
        {
            if (json_is_true(json_object_get(ps, "nullable")) && json_is_array(req)) {
                for (size_t i = json_array_size(req); i-- > 0;) {
                    const char *r = json_string_value(json_array_get(req, i));
                    if (r && strcmp(r, k) == 0) json_array_remove(req, i);
                }
            }
            to_v2(ps);
        }
        if (json_is_array(req) && json_array_size(req) == 0) json_object_del(s, "required");
    }
    json_t *addl = json_object_get(s, "additionalProperties");
    if (json_is_object(addl)) {
        /* the value schema keeps its type: only nullable is dropped */
        if (json_is_true(json_object_get(addl, "nullable"))) {
            json_object_del(addl, "nullable");
        }
        to_v2(addl);
    }
    to_v2(json_object_get(s, "items"));
}

static json_t *meta_ref_prop(const char *refp, int v3)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s" META "ObjectMeta", refp);
    /* v3 cannot have siblings next to $ref, hence the allOf wrapper (as the real server does) */
    if (v3)
        return json_pack("{s:[{s:s}], s:s}", "allOf", "$ref", buf, "description", DESC_METADATA);
    return json_pack("{s:s}", "$ref", buf);
}

static json_t *kind_schema(const struct desc *d, const char *refp, int v3)
{
    json_t *s;
    if (d->builtin || !d->schema) {
        char desc[512];
        if (d->builtin)
            snprintf(desc, sizeof(desc),
                     "%s is a built-in Kubernetes kind served by tandem-apiserver; only its "
                     "apiVersion, kind and metadata are described here.",
                     d->kind);
        else
            snprintf(desc, sizeof(desc), "%s is a custom resource without a published schema.",
                     d->kind);
        s = json_pack("{s:s, s:s, s:b}", "type", "object", "description", desc,
                      "x-kubernetes-preserve-unknown-fields", 1);
    } else {
        s = json_deep_copy(d->schema);
        if (s && !v3) to_v2(s);
    }
    if (!s) return NULL;
    if (!json_object_get(s, "type") &&
        (v3 || !json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"))))
        json_object_set_new(s, "type", json_string("object"));
    int keep_props =
        v3 || !json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"));
    if (keep_props) {
        json_t *props = json_object_get(s, "properties");
        if (!json_is_object(props)) {
            props = json_object();
            json_object_set_new(s, "properties", props);
        }
        json_object_set_new(props, "apiVersion", str_prop(DESC_API_VERSION));
        json_object_set_new(props, "kind", str_prop(DESC_KIND));
        json_object_set_new(props, "metadata", meta_ref_prop(refp, v3));
    }
    json_object_set_new(s, "x-kubernetes-group-version-kind",
                        gvk_list(d->group, d->version, d->kind));
    return s;
}

static json_t *list_schema(const struct desc *d, const char *refp, const char *item_name)
{
    char desc[256], iref[512], lref[256];
    snprintf(desc, sizeof(desc), "%s is a list of %s", d->list_kind, d->kind);
    snprintf(iref, sizeof(iref), "%s%s", refp, item_name);
    snprintf(lref, sizeof(lref), "%s" META "ListMeta", refp);
    json_t *s =
        json_pack("{s:s, s:s, s:[s], s:{s:o, s:o, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:s}}}", "type",
                  "object", "description", desc, "required", "items", "properties", "apiVersion",
                  str_prop(DESC_API_VERSION), "kind", str_prop(DESC_KIND), "items", "type", "array",
                  "description", "List of objects.", "items", "$ref", iref, "metadata", "$ref",
                  lref, "description", DESC_LIST_METADATA);
    if (s)
        json_object_set_new(s, "x-kubernetes-group-version-kind",
                            gvk_list(d->group, d->version, d->list_kind));
    return s;
}

static int add_kind(json_t *defs, const struct desc *d, const char *refp, int v3)
{
    char name[512];
    tn_openapi_def_name(d->group, d->version, d->kind, d->builtin, name, sizeof(name));
    json_t *s = kind_schema(d, refp, v3);
    if (!s || json_object_set_new(defs, name, s) != 0) return -1;
    if (d->list_kind && *d->list_kind) {
        char lname[512];
        tn_openapi_def_name(d->group, d->version, d->list_kind, d->builtin, lname, sizeof(lname));
        json_t *l = list_schema(d, refp, name);
        if (!l || json_object_set_new(defs, lname, l) != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* v3 paths                                                                                   */

static json_t *qparam(const char *name, const char *type, const char *desc)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s}, s:b}", "name", name, "in", "query", "description",
                     desc, "schema", "type", type, "uniqueItems", 1);
}

static const char *const P_DRYRUN =
    "When present, indicates that modifications should not be persisted. An invalid or "
    "unrecognized dryRun directive will result in an error response and no further processing of "
    "the request. Valid values are: - All: all dry run stages will be processed";
static const char *const P_FIELDMANAGER =
    "fieldManager is a name associated with the actor or entity that is making these changes. "
    "The value must be less than or 128 characters long, and only contain printable characters, "
    "as defined by https://golang.org/pkg/unicode/#IsPrint.";
static const char *const P_FIELDVALIDATION =
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any "
    "unknown fields that are silently dropped from the object, and will ignore all but the last "
    "duplicate field that the decoder encounters. - Warn: This will send a warning via the "
    "standard warning response header for each unknown field that is dropped from the object, and "
    "for each duplicate field that is encountered. - Strict: This will fail the request with a "
    "BadRequest error if any unknown fields would be dropped from the object, or if any duplicate "
    "fields are present. The error returned from the server will contain all unknown and "
    "duplicate fields encountered.";

/* Query parameters of write operations; kubectl looks for fieldValidation on PATCH. */
static json_t *write_params(int is_patch)
{
    json_t *a = json_array();
    if (!a) return NULL;
    json_array_append_new(a, qparam("dryRun", "string", P_DRYRUN));
    json_array_append_new(a, qparam("fieldManager", "string", P_FIELDMANAGER));
    json_array_append_new(a, qparam("fieldValidation", "string", P_FIELDVALIDATION));
    if (is_patch)
        json_array_append_new(
            a, qparam("force", "boolean",
                      "Force is going to \"force\" Apply requests. It means user will re-acquire "
                      "conflicting fields owned by other people. Force flag must be unset for "
                      "non-apply patch requests."));
    return a;
}

static json_t *list_params(void)
{
    json_t *a = json_array();
    if (!a) return NULL;
    json_array_append_new(a, qparam("allowWatchBookmarks", "boolean",
                                    "allowWatchBookmarks requests watch events with type "
                                    "\"BOOKMARK\"."));
    json_array_append_new(a, qparam("continue", "string",
                                    "The continue option should be set when retrieving more "
                                    "results from the server."));
    json_array_append_new(a, qparam("fieldSelector", "string",
                                    "A selector to restrict the list of returned objects by their "
                                    "fields. Defaults to everything."));
    json_array_append_new(a, qparam("labelSelector", "string",
                                    "A selector to restrict the list of returned objects by their "
                                    "labels. Defaults to everything."));
    json_array_append_new(a, qparam("limit", "integer",
                                    "limit is a maximum number of responses to return for a list "
                                    "call."));
    json_array_append_new(a, qparam("resourceVersion", "string",
                                    "resourceVersion sets a constraint on what resource versions "
                                    "a request may be served from."));
    json_array_append_new(a, qparam("resourceVersionMatch", "string",
                                    "resourceVersionMatch determines how resourceVersion is "
                                    "applied to list calls."));
    json_array_append_new(a,
                          qparam("timeoutSeconds", "integer", "Timeout for the list/watch call."));
    json_array_append_new(a, qparam("watch", "boolean",
                                    "Watch for changes to the described resources and return them "
                                    "as a stream of add, update, and remove notifications."));
    return a;
}

static json_t *delete_params(void)
{
    json_t *a = json_array();
    if (!a) return NULL;
    json_array_append_new(a, qparam("dryRun", "string", P_DRYRUN));
    json_array_append_new(a, qparam("gracePeriodSeconds", "integer",
                                    "The duration in seconds before the object should be "
                                    "deleted."));
    json_array_append_new(a, qparam("propagationPolicy", "string",
                                    "Whether and how garbage collection will be performed. "
                                    "Acceptable values are: 'Orphan', 'Background', "
                                    "'Foreground'."));
    return a;
}

static json_t *content(const char *const *types, size_t n, const char *schema_ref)
{
    json_t *c = json_object();
    for (size_t i = 0; c && i < n; i++)
        json_object_set_new(c, types[i], json_pack("{s:{s:s}}", "schema", "$ref", schema_ref));
    return c;
}

static const char *const RESP_TYPES[] = {"application/json", "application/yaml",
                                         "application/vnd.kubernetes.protobuf"};

static json_t *responses(const char *schema_ref, int created)
{
    json_t *r = json_object();
    if (!r) return NULL;
    json_object_set_new(r, "200",
                        json_pack("{s:s, s:o}", "description", "OK", "content",
                                  content(RESP_TYPES, 3, schema_ref)));
    if (created) {
        json_object_set_new(r, "201",
                            json_pack("{s:s, s:o}", "description", "Created", "content",
                                      content(RESP_TYPES, 3, schema_ref)));
        json_object_set_new(r, "202",
                            json_pack("{s:s, s:o}", "description", "Accepted", "content",
                                      content(RESP_TYPES, 3, schema_ref)));
    }
    json_object_set_new(r, "401", json_pack("{s:s}", "description", "Unauthorized"));
    return r;
}

/* "sedna.io" "v1alpha1" -> "SednaIoV1alpha1"; core -> "CoreV1". */
static void op_prefix(const struct desc *d, char *out, size_t n)
{
    size_t o = 0;
    const char *g = *d->group ? d->group : "core";
    int up = 1;
    for (const char *p = g; *p && o + 1 < n; p++) {
        if (*p == '.' || *p == '-') {
            up = 1;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = 0;
    }
    up = 1;
    for (const char *p = d->version; *p && o + 1 < n; p++) {
        out[o++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = 0;
    }
    out[o] = 0;
}

static json_t *operation(const struct desc *d, const char *verb, const char *action,
                         const char *what, const char *kind_suffix, json_t *params, json_t *body,
                         json_t *resp)
{
    char opid[512], prefix[256], desc[512], tag[256];
    op_prefix(d, prefix, sizeof(prefix));
    snprintf(opid, sizeof(opid), "%s%s%s%s%s", verb, prefix, d->namespaced ? "Namespaced" : "",
             d->kind, kind_suffix);
    snprintf(desc, sizeof(desc), "%s %s", what, d->kind);
    snprintf(tag, sizeof(tag), "%s", prefix);
    tag[0] = (char)tolower((unsigned char)tag[0]);
    json_t *op = json_pack("{s:s, s:s, s:[s], s:s, s:{s:s, s:s, s:s}}", "operationId", opid,
                           "description", desc, "tags", tag, "x-kubernetes-action", action,
                           "x-kubernetes-group-version-kind", "group", d->group, "version",
                           d->version, "kind", d->kind);
    if (!op) {
        json_decref(params);
        json_decref(body);
        json_decref(resp);
        return NULL;
    }
    if (params) json_object_set_new(op, "parameters", params);
    if (body) json_object_set_new(op, "requestBody", body);
    if (resp) json_object_set_new(op, "responses", resp);
    return op;
}

static json_t *body(const char *const *types, size_t n, const char *schema_ref)
{
    return json_pack("{s:o, s:b}", "content", content(types, n, schema_ref), "required", 1);
}

static json_t *path_params(int namespaced, int named)
{
    json_t *a = json_array();
    if (!a) return NULL;
    if (named)
        json_array_append_new(a,
                              json_pack("{s:s, s:s, s:s, s:b, s:{s:s}, s:b}", "name", "name", "in",
                                        "path", "description", "name of the object", "required", 1,
                                        "schema", "type", "string", "uniqueItems", 1));
    if (namespaced)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:{s:s}, s:b}", "name",
                                           "namespace", "in", "path", "description",
                                           "object name and auth scope, such as for teams and "
                                           "projects",
                                           "required", 1, "schema", "type", "string", "uniqueItems",
                                           1));
    json_array_append_new(
        a, qparam("pretty", "string", "If 'true', then the output is pretty printed."));
    return a;
}

/* PATCH bodies. strategic-merge-patch+json is deliberately left out even for builtin kinds: when
 * it is listed, kubectl (client-side apply, kubectl patch) takes the patch merge keys from this
 * document, and our builtin schemas are permissive objects without x-kubernetes-patch-merge-key,
 * so lists like containers would be replaced instead of merged. Without it kubectl falls back to
 * the patch metadata of its compiled-in Go types. */
static const char *const PATCH_TYPES[] = {
    "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"};
static const char *const WRITE_TYPES[] = {"application/json", "application/yaml",
                                          "application/vnd.kubernetes.protobuf"};

static int add_paths(json_t *paths, const struct desc *d)
{
    char base[512], coll[768], item[800], status[840];
    char kref[512], lref[512], name[256];
    if (*d->group)
        snprintf(base, sizeof(base), "/apis/%s/%s", d->group, d->version);
    else
        snprintf(base, sizeof(base), "/api/%s", d->version);
    if (d->namespaced)
        snprintf(coll, sizeof(coll), "%s/namespaces/{namespace}/%s", base, d->resource);
    else
        snprintf(coll, sizeof(coll), "%s/%s", base, d->resource);
    snprintf(item, sizeof(item), "%s/{name}", coll);
    snprintf(status, sizeof(status), "%s/status", item);
    tn_openapi_def_name(d->group, d->version, d->kind, d->builtin, name, sizeof(name));
    snprintf(kref, sizeof(kref), "#/components/schemas/%s", name);
    if (d->list_kind && *d->list_kind) {
        tn_openapi_def_name(d->group, d->version, d->list_kind, d->builtin, name, sizeof(name));
        snprintf(lref, sizeof(lref), "#/components/schemas/%s", name);
    } else {
        snprintf(lref, sizeof(lref), "%s", kref);
    }
    const char *sref = "#/components/schemas/" META "Status";
    const char *dref = "#/components/schemas/" META "DeleteOptions";
    const char *pref = "#/components/schemas/" META "Patch";

    json_t *c = json_object(), *it = json_object();
    if (!c || !it) {
        json_decref(c);
        json_decref(it);
        return -1;
    }
    json_object_set_new(c, "parameters", path_params(d->namespaced, 0));
    json_object_set_new(c, "get",
                        operation(d, "list", "list", "list or watch objects of kind", "",
                                  list_params(), NULL, responses(lref, 0)));
    json_object_set_new(c, "post",
                        operation(d, "create", "post", "create a", "", write_params(0),
                                  body(WRITE_TYPES, 3, kref), responses(kref, 1)));
    json_object_set_new(c, "delete",
                        operation(d, "deletecollection", "deletecollection", "delete collection of",
                                  "", list_params(), body(WRITE_TYPES, 3, dref),
                                  responses(sref, 0)));
    json_object_set_new(it, "parameters", path_params(d->namespaced, 1));
    json_object_set_new(
        it, "get",
        operation(d, "read", "get", "read the specified", "", NULL, NULL, responses(kref, 0)));
    json_object_set_new(it, "put",
                        operation(d, "replace", "put", "replace the specified", "", write_params(0),
                                  body(WRITE_TYPES, 3, kref), responses(kref, 1)));
    json_object_set_new(it, "patch",
                        operation(d, "patch", "patch", "partially update the specified", "",
                                  write_params(1), body(PATCH_TYPES, 3, pref), responses(kref, 1)));
    json_object_set_new(it, "delete",
                        operation(d, "delete", "delete", "delete a", "", delete_params(),
                                  body(WRITE_TYPES, 3, dref), responses(sref, 1)));
    json_object_set_new(paths, coll, c);
    json_object_set_new(paths, item, it);
    if (d->namespaced) {
        /* list across all namespaces */
        char all[768];
        snprintf(all, sizeof(all), "%s/%s", base, d->resource);
        json_t *a = json_object();
        if (!a) return -1;
        json_object_set_new(a, "parameters", path_params(0, 0));
        json_object_set_new(a, "get",
                            operation(d, "list", "list", "list or watch objects of kind",
                                      "ForAllNamespaces", list_params(), NULL, responses(lref, 0)));
        /* the operationId must not claim "Namespaced" here */
        json_t *get = json_object_get(a, "get");
        char opid[512], prefix[256];
        op_prefix(d, prefix, sizeof(prefix));
        snprintf(opid, sizeof(opid), "list%s%sForAllNamespaces", prefix, d->kind);
        json_object_set_new(get, "operationId", json_string(opid));
        json_object_set_new(paths, all, a);
    }
    if (d->status) {
        json_t *st = json_object();
        if (!st) return -1;
        json_object_set_new(st, "parameters", path_params(d->namespaced, 1));
        json_object_set_new(st, "get",
                            operation(d, "read", "get", "read status of the specified", "Status",
                                      NULL, NULL, responses(kref, 0)));
        json_object_set_new(st, "put",
                            operation(d, "replace", "put", "replace status of the specified",
                                      "Status", write_params(0), body(WRITE_TYPES, 3, kref),
                                      responses(kref, 1)));
        json_object_set_new(
            st, "patch",
            operation(d, "patch", "patch", "partially update status of the specified", "Status",
                      write_params(1), body(PATCH_TYPES, 3, pref), responses(kref, 1)));
        json_object_set_new(paths, status, st);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Documents                                                                                  */

static int same_gv(const struct desc *d, const char *group, const char *version)
{
    return strcmp(d->group, group ? group : "") == 0 && strcmp(d->version, version) == 0;
}

json_t *tn_openapi_v3_gv(const json_t *descs, const char *group, const char *version)
{
    const char *refp = "#/components/schemas/";
    json_t *doc = NULL, *schemas = json_object(), *paths = json_object();
    int found = 0;
    if (!schemas || !paths || !version) goto fail;
    size_t i;
    json_t *dj;
    json_array_foreach(descs, i, dj)
    {
        struct desc d;
        read_desc(dj, &d);
        if (!desc_ok(&d) || !same_gv(&d, group, version)) continue;
        found = 1;
        if (add_kind(schemas, &d, refp, 1) != 0 || add_paths(paths, &d) != 0) goto fail;
    }
    if (!found) goto fail;
    if (add_meta_types(schemas, refp, 1) != 0) goto fail;
    doc = json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                    "Kubernetes", "version", "v1.32.0", "paths", paths, "components", "schemas",
                    schemas);
    return doc;
fail:
    json_decref(schemas);
    json_decref(paths);
    return NULL;
}

json_t *tn_openapi_v3_index(const json_t *descs)
{
    json_t *idx = json_object(), *paths = json_object();
    if (!idx || !paths || json_object_set_new(idx, "paths", paths) != 0) {
        json_decref(idx);
        if (!idx) json_decref(paths);
        return NULL;
    }
    size_t i;
    json_t *dj;
    json_array_foreach(descs, i, dj)
    {
        struct desc d;
        read_desc(dj, &d);
        if (!desc_ok(&d)) continue;
        char key[512];
        if (*d.group)
            snprintf(key, sizeof(key), "apis/%s/%s", d.group, d.version);
        else
            snprintf(key, sizeof(key), "api/%s", d.version);
        if (json_object_get(paths, key)) continue;
        json_t *doc = tn_openapi_v3_gv(descs, d.group, d.version);
        char hash[32], url[600];
        int rc = doc ? tn_openapi_hash(doc, hash, sizeof(hash)) : -1;
        json_decref(doc);
        if (rc != 0) {
            json_decref(idx);
            return NULL;
        }
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%s", key, hash);
        if (json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url)) != 0) {
            json_decref(idx);
            return NULL;
        }
    }
    return idx;
}

json_t *tn_openapi_v2(const json_t *descs)
{
    const char *refp = "#/definitions/";
    json_t *defs = json_object();
    if (!defs) return NULL;
    size_t i;
    json_t *dj;
    json_array_foreach(descs, i, dj)
    {
        struct desc d;
        read_desc(dj, &d);
        if (!desc_ok(&d) || d.builtin) continue;
        if (add_kind(defs, &d, refp, 0) != 0) {
            json_decref(defs);
            return NULL;
        }
    }
    if (add_meta_types(defs, refp, 0) != 0) {
        json_decref(defs);
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:{}, s:o}", "swagger", "2.0", "info", "title",
                     "Kubernetes", "version", "v1.32.0", "paths", "definitions", defs);
}
