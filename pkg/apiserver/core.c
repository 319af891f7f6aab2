/* Object semantics of tandem-apiserver shared by the HTTP handlers and the built-in controllers:
 * metadata rules (names, uid, resourceVersion, generation, deletionTimestamp, finalizers),
 * optimistic concurrency, status subresource rules, CRD schema pruning/defaulting/validation,
 * graceful and cascading deletion, and the single write path that persists, publishes the watch
 * event and tells the controllers. */
#include "apiserver/internal.h"
#include "apiserver/schema.h"
#include "base/json.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/timeutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tn_reply_init(struct tn_reply *r)
{
    memset(r, 0, sizeof(*r));
    tn_causes_init(&r->causes);
    r->code = 200;
}

void tn_reply_free(struct tn_reply *r)
{
    tn_causes_free(&r->causes);
    json_decref(r->obj);
    r->obj = NULL;
}

int tn_reply_err(struct tn_reply *r, int code, const char *reason, const char *fmt, ...)
{
    r->code = code;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return code;
}

json_t *tn_reply_status(const struct tn_reply *r, const struct tn_rtype *t)
{
    json_t *st = json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                           "metadata", "status", r->code < 400 ? "Success" : "Failure", "message",
                           r->msg, "reason", r->reason, "code", r->code);
    json_t *details = json_object();
    if (r->name[0]) json_object_set_new(details, "name", json_string(r->name));
    const char *group = r->group[0] ? r->group : (t ? t->group : "");
    if (*group) /* omitted for the core group, as omitempty does */
        json_object_set_new(details, "group", json_string(group));
    if (r->kind[0])
        json_object_set_new(details, "kind", json_string(r->kind));
    else if (t)
        json_object_set_new(details, "kind", json_string(t->resource));
    if (r->causes.n) {
        json_t *causes = json_array();
        for (size_t i = 0; i < r->causes.n; i++) {
            const struct tn_cause *c = &r->causes.v[i];
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", c->message);
            json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason", c->reason, "message",
                                                    msg, "field", c->field));
        }
        json_object_set_new(details, "causes", causes);
    }
    if (json_object_size(details))
        json_object_set_new(st, "details", details);
    else
        json_decref(details);
    return st;
}

/* "datasets.sedna.io" or "pods" as the real apiserver names resources in messages */
static void qualified(const struct tn_rtype *t, char *out, size_t n)
{
    if (t->group[0])
        snprintf(out, n, "%s.%s", t->resource, t->group);
    else
        snprintf(out, n, "%s", t->resource);
}

static void set_details(struct tn_reply *rep, const struct tn_rtype *t, const char *name)
{
    snprintf(rep->kind, sizeof(rep->kind), "%s", t->resource);
    snprintf(rep->name, sizeof(rep->name), "%s", name ? name : "");
    snprintf(rep->group, sizeof(rep->group), "%s", t->group);
}

static int not_found(struct tn_reply *rep, const struct tn_rtype *t, const char *name)
{
    char q[256];
    qualified(t, q, sizeof(q));
    set_details(rep, t, name);
    return tn_reply_err(rep, 404, "NotFound", "%s \"%s\" not found", q, name);
}

static int conflict(struct tn_reply *rep, const struct tn_rtype *t, const char *name)
{
    char q[256];
    qualified(t, q, sizeof(q));
    set_details(rep, t, name);
    return tn_reply_err(rep, 409, "Conflict",
                        "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                        "please apply your changes to the latest version and try again",
                        q, name);
}

static int invalid(struct tn_reply *rep, const struct tn_rtype *t, const char *name)
{
    set_details(rep, t, name);
    snprintf(rep->kind, sizeof(rep->kind), "%s", t->kind); /* invalid names the kind */
    rep->code = 422;
    snprintf(rep->reason, sizeof(rep->reason), "Invalid");
    int n = snprintf(rep->msg, sizeof(rep->msg), "%s \"%s\" is invalid: ", t->kind,
                     name && *name ? name : "");
    if (n < 0) n = 0;
    if (rep->causes.n > 1 && (size_t)n < sizeof(rep->msg))
        n += snprintf(rep->msg + n, sizeof(rep->msg) - (size_t)n, "[");
    for (size_t i = 0; i < rep->causes.n && (size_t)n < sizeof(rep->msg); i++) {
        const struct tn_cause *c = &rep->causes.v[i];
        n += snprintf(rep->msg + n, sizeof(rep->msg) - (size_t)n, "%s%s%s%s", i ? ", " : "",
                      c->field, c->field[0] ? ": " : "", c->message);
    }
    if (rep->causes.n > 1 && (size_t)n < sizeof(rep->msg))
        snprintf(rep->msg + n, sizeof(rep->msg) - (size_t)n, "]");
    return 422;
}

static int is_dns1123_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '.')) return 0;
        if (c == '.' || c == '-') {
            if (i == 0 || i == n - 1) return 0;
            if (c == '.' && (s[i - 1] == '.' || s[i - 1] == '-' || s[i + 1] == '-')) return 0;
        }
    }
    return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]);
}

static int is_dns1123_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || strchr(s, '.')) return 0;
    return is_dns1123_subdomain(s);
}

static void validate_name(const struct tn_rtype *t, const char *name, struct tn_causes *c)
{
    int label = strcmp(t->key, "core/namespaces") == 0 || strcmp(t->key, "core/services") == 0;
    if (label ? !is_dns1123_label(name) : !is_dns1123_subdomain(name))
        tn_causes_add(c, TN_CAUSE_INVALID, "metadata.name",
                      label ? "Invalid value: \"%s\": a lowercase RFC 1123 label must consist of "
                              "lower case alphanumeric characters or '-', and must start and end "
                              "with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                              "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                            : "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must consist "
                              "of lower case alphanumeric characters, '-' or '.', and must start "
                              "and end with an alphanumeric character (e.g. 'example.com', regex "
                              "used for validation is "
                              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                      name);
}

static void validate_meta_maps(const json_t *obj, struct tn_causes *c)
{
    const char *fields[] = {"labels", "annotations"};
    json_t *meta = json_object_get(obj, "metadata");
    for (int i = 0; i < 2; i++) {
        json_t *m = json_object_get(meta, fields[i]);
        if (!m || json_is_null(m)) continue;
        char f[64];
        snprintf(f, sizeof(f), "metadata.%s", fields[i]);
        if (!json_is_object(m)) {
            tn_causes_add(c, TN_CAUSE_TYPE, f, "Invalid value: must be a map of strings");
            continue;
        }
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            if (!json_is_string(v)) {
                char ff[400];
                snprintf(ff, sizeof(ff), "%s.%s", f, k);
                tn_causes_add(c, TN_CAUSE_TYPE, ff, "Invalid value: must be a string");
            } else if (i == 0 && strlen(json_string_value(v)) > 63) {
                char ff[400];
                snprintf(ff, sizeof(ff), "%s.%s", f, k);
                tn_causes_add(c, TN_CAUSE_TOO_LONG, ff, "Too long: may not be longer than 63");
            }
        }
    }
}

static void api_version_of(const struct tn_rtype *t, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s", t->group, t->group[0] ? "/" : "", t->version);
}

/* apiVersion/kind of a request body must name t (or be absent). */
static int check_gvk(const struct tn_rtype *t, json_t *obj, struct tn_reply *rep)
{
    char av[160];
    api_version_of(t, av, sizeof(av));
    const char *oav = tn_json_str(obj, "apiVersion", NULL);
    const char *okind = tn_json_str(obj, "kind", NULL);
    if (okind && *okind && strcmp(okind, t->kind) != 0)
        return tn_reply_err(rep, 400, "BadRequest",
                            "the body of the request was in an unknown format: kind %s does not "
                            "match the expected kind %s",
                            okind, t->kind);
    if (oav && *oav && strcmp(oav, av) != 0) {
        /* another served version of the same kind is fine: versions share storage */
        if (!t->builtin && strncmp(oav, t->group, strlen(t->group)) == 0 &&
            oav[strlen(t->group)] == '/') {
            /* conversion strategy None: only apiVersion changes */
        } else {
            return tn_reply_err(rep, 400, "BadRequest",
                                "the API version in the data (%s) does not match the expected API "
                                "version (%s)",
                                oav, av);
        }
    }
    json_object_set_new(obj, "apiVersion", json_string(av));
    json_object_set_new(obj, "kind", json_string(t->kind));
    return 0;
}

json_t *tn_obj_load(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                    const char *name)
{
    char *data = NULL;
    if (tn_store_get(a->store, t->key, t->namespaced ? ns : "", name, &data, NULL, NULL))
        return NULL;
    json_t *obj = json_loads(data, 0, NULL);
    free(data);
    if (obj && !t->builtin) {
        char av[160];
        api_version_of(t, av, sizeof(av));
        json_object_set_new(obj, "apiVersion", json_string(av));
    }
    return obj;
}

struct each_ctx {
    const struct tn_rtype *t;
    tn_obj_fn fn;
    void *arg;
};

static int each_row(const char *ns, const char *name, const char *data, int64_t rv, void *arg)
{
    struct each_ctx *c = arg;
    json_t *obj = json_loads(data, 0, NULL);
    if (!obj) return 0;
    int stop = c->fn(obj, c->arg);
    json_decref(obj);
    return stop;
}

int tn_obj_each(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, tn_obj_fn fn,
                void *arg)
{
    struct each_ctx c = {t, fn, arg};
    return tn_store_list(a->store, t->key, t->namespaced ? ns : NULL, NULL, NULL, 0, each_row, &c);
}

int tn_obj_get(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, const char *name,
               struct tn_reply *rep)
{
    json_t *obj = tn_obj_load(a, t, ns, name);
    if (!obj) return not_found(rep, t, name);
    rep->obj = obj;
    rep->code = 200;
    return 200;
}

/* Persists obj (which gets a new resourceVersion), publishes the watch event, notifies the
 * controllers. old may be NULL. type: ADDED/MODIFIED/DELETED. */
static int persist(struct tn_apiserver *a, const struct tn_rtype *t, json_t *obj, const json_t *old,
                   const char *type, struct tn_reply *rep)
{
    int64_t rv = tn_store_next_rv(a->store);
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_t *meta = tn_json_obj_ensure(obj, "metadata");
    json_object_set_new(meta, "resourceVersion", json_string(rvs));
    const char *ns = t->namespaced ? tn_json_str(obj, "metadata.namespace", "") : "";
    const char *name = tn_json_str(obj, "metadata.name", "");
    struct tn_err err = {0};
    int rc;
    if (strcmp(type, "DELETED") == 0) {
        rc = tn_store_delete(a->store, t->key, ns, name, &err);
    } else {
        const char *owners[64];
        size_t nown = 0;
        json_t *refs = json_object_get(meta, "ownerReferences");
        size_t i;
        json_t *r;
        json_array_foreach(refs, i, r)
        {
            const char *uid = tn_json_str(r, "uid", NULL);
            if (uid && nown < 64) owners[nown++] = uid;
        }
        char *text = tn_json_dump(obj);
        if (!text) return tn_reply_err(rep, 500, "InternalError", "out of memory");
        rc = tn_store_put(a->store, t->key, ns, name, text, rv,
                          tn_json_str(obj, "metadata.uid", NULL), owners, nown, &err);
        free(text);
    }
    if (rc) {
        TN_ERROR("storage write failed", "resource", t->key, "namespace", ns, "name", name, "error",
                 err.msg);
        return tn_reply_err(rep, 500, "InternalError", "storage error: %s", err.msg);
    }
    tn_watch_publish(a->hub, t, type, rv, obj, old);
    tn_ctrl_notify(a, t, obj, old, type);
    return 0;
}

/* Empty lists and maps in metadata are omitted, as Go's omitempty does on the real server. */
static void normalize_meta(json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *keys[] = {"finalizers", "ownerReferences", "labels", "annotations"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(meta, keys[i]);
        if (json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
            (json_is_object(v) && json_object_size(v) == 0))
            json_object_del(meta, keys[i]);
    }
}

/* Kind-specific defaulting and validation of built-in objects. */
static void builtin_prepare(struct tn_apiserver *a, const struct tn_rtype *t, json_t *obj,
                            const json_t *old, struct tn_causes *c)
{
    if (strcmp(t->key, "core/pods") == 0) {
        json_t *spec = tn_json_obj_ensure(obj, "spec");
        json_t *ctrs = json_object_get(spec, "containers");
        if (!json_is_array(ctrs) || json_array_size(ctrs) == 0)
            tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.containers", "Required value");
        size_t i;
        json_t *ct;
        json_array_foreach(ctrs, i, ct)
        {
            const char *cn = tn_json_str(ct, "name", NULL);
            if (!cn || !is_dns1123_label(cn)) {
                char f[64];
                snprintf(f, sizeof(f), "spec.containers[%zu].name", i);
                tn_causes_add(c, cn ? TN_CAUSE_INVALID : TN_CAUSE_REQUIRED, f,
                              cn ? "Invalid value: \"%s\": a lowercase RFC 1123 label"
                                 : "Required value%s",
                              cn ? cn : "");
            }
        }
        if (!json_object_get(spec, "restartPolicy"))
            json_object_set_new(spec, "restartPolicy", json_string("Always"));
        const char *rp = tn_json_str(spec, "restartPolicy", "");
        if (strcmp(rp, "Always") && strcmp(rp, "OnFailure") && strcmp(rp, "Never"))
            tn_causes_add(c, TN_CAUSE_NOT_SUPPORTED, "spec.restartPolicy",
                          "Unsupported value: \"%s\": supported values: \"Always\", "
                          "\"OnFailure\", \"Never\"",
                          rp);
        if (!json_object_get(spec, "terminationGracePeriodSeconds"))
            json_object_set_new(spec, "terminationGracePeriodSeconds", json_integer(30));
        if (!old) {
            char now[40];
            tn_time_now_rfc3339(now, sizeof(now));
            const char *node = tn_json_str(spec, "nodeName", "");
            json_t *st = json_pack("{s:s}", "phase", "Pending");
            if (!*node)
                json_object_set_new(
                    st, "conditions",
                    json_pack("[{s:s,s:s,s:s,s:s,s:s}]", "type", "PodScheduled", "status", "False",
                              "reason", "Unschedulable", "message",
                              "tandem-apiserver has no scheduler: set spec.nodeName to the node "
                              "that should run this pod",
                              "lastTransitionTime", now));
            else
                json_object_set_new(st, "conditions",
                                    json_pack("[{s:s,s:s,s:s}]", "type", "PodScheduled", "status",
                                              "True", "lastTransitionTime", now));
            json_object_set_new(obj, "status", st);
        }
    } else if (strcmp(t->key, "core/namespaces") == 0) {
        if (!old) {
            json_object_set_new(tn_json_obj_ensure(obj, "spec"), "finalizers",
                                json_pack("[s]", "kubernetes"));
            json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
        }
    } else if (strcmp(t->key, "core/services") == 0) {
        json_t *spec = tn_json_obj_ensure(obj, "spec");
        if (!json_object_get(spec, "type"))
            json_object_set_new(spec, "type", json_string("ClusterIP"));
        if (!old && !json_object_get(spec, "clusterIP")) {
            char ip[32];
            int64_t n = tn_store_rv(a->store);
            snprintf(ip, sizeof(ip), "10.96.%d.%d", (int)((n / 250) % 250), (int)(n % 250) + 2);
            json_object_set_new(spec, "clusterIP", json_string(ip));
            json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
        } else if (old && !json_object_get(spec, "clusterIP")) {
            json_t *oip = tn_json_get(old, "spec.clusterIP");
            if (oip) json_object_set(spec, "clusterIP", oip);
        }
        json_t *ports = json_object_get(spec, "ports");
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
        {
            if (!json_is_integer(json_object_get(p, "port"))) {
                char f[64];
                snprintf(f, sizeof(f), "spec.ports[%zu].port", i);
                tn_causes_add(c, TN_CAUSE_REQUIRED, f, "Required value");
                continue;
            }
            if (!json_object_get(p, "protocol"))
                json_object_set_new(p, "protocol", json_string("TCP"));
            if (!json_object_get(p, "targetPort"))
                json_object_set(p, "targetPort", json_object_get(p, "port"));
        }
    } else if (strcmp(t->key, "apps/deployments") == 0) {
        json_t *spec = tn_json_obj_ensure(obj, "spec");
        if (!json_object_get(spec, "replicas"))
            json_object_set_new(spec, "replicas", json_integer(1));
        if (json_integer_value(json_object_get(spec, "replicas")) < 0)
            tn_causes_add(c, TN_CAUSE_INVALID, "spec.replicas",
                          "Invalid value: %lld: must be greater than or equal to 0",
                          (long long)json_integer_value(json_object_get(spec, "replicas")));
        json_t *ml = tn_json_get(spec, "selector.matchLabels");
        json_t *me = tn_json_get(spec, "selector.matchExpressions");
        if (!ml && !me) tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.selector", "Required value");
        json_t *tl = tn_json_get(spec, "template.metadata.labels");
        const char *k;
        json_t *v;
        json_object_foreach(ml, k, v)
        {
            json_t *tv = json_object_get(tl, k);
            if (!tv || !json_equal(tv, v)) {
                tn_causes_add(c, TN_CAUSE_INVALID, "spec.template.metadata.labels",
                              "Invalid value: `selector` does not match template `labels`");
                break;
            }
        }
        json_t *ctrs = tn_json_get(spec, "template.spec.containers");
        if (!json_is_array(ctrs) || json_array_size(ctrs) == 0)
            tn_causes_add(c, TN_CAUSE_REQUIRED, "spec.template.spec.containers", "Required value");
        if (!old) json_object_set_new(obj, "status", json_object());
    } else if (strcmp(t->key, "core/secrets") == 0) {
        if (!json_object_get(obj, "type")) json_object_set_new(obj, "type", json_string("Opaque"));
        json_t *sd = json_object_get(obj, "stringData");
        if (json_is_object(sd)) {
            json_t *data = tn_json_obj_ensure(obj, "data");
            const char *k;
            json_t *v;
            json_object_foreach(sd, k, v)
            {
                if (!json_is_string(v)) continue;
                char *enc = tn_base64_encode((const unsigned char *)json_string_value(v),
                                             strlen(json_string_value(v)));
                if (enc) json_object_set_new(data, k, json_string(enc));
                free(enc);
            }
            json_object_del(obj, "stringData");
        }
    }
}

/* Schema pruning/defaulting/validation of a custom resource. */
static void cr_prepare(const struct tn_rtype *t, json_t *obj, const json_t *old, int strict,
                       struct tn_causes *c)
{
    if (!t->schema) return;
    struct tn_causes unknown;
    tn_causes_init(&unknown);
    tn_schema_prune(t->schema, obj, &unknown);
    if (strict)
        for (size_t i = 0; i < unknown.n; i++)
            tn_causes_add(c, TN_CAUSE_UNKNOWN_FIELD, unknown.v[i].field,
                          "field not declared in "
                          "schema");
    tn_causes_free(&unknown);
    tn_schema_default(t->schema, obj);
    tn_schema_validate_update(t->schema, obj, old, c);
}

static int strict_unknown(const struct tn_reply *rep)
{
    for (size_t i = 0; i < rep->causes.n; i++)
        if (strcmp(rep->causes.v[i].reason, TN_CAUSE_UNKNOWN_FIELD) == 0) return 1;
    return 0;
}

static int bad_strict(struct tn_reply *rep, const struct tn_rtype *t)
{
    /* kubectl shows this for --validate=strict, the default */
    char buf[900] = "";
    size_t n = 0;
    for (size_t i = 0; i < rep->causes.n && n < sizeof(buf); i++) {
        if (strcmp(rep->causes.v[i].reason, TN_CAUSE_UNKNOWN_FIELD) != 0) continue;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sunknown field \"%s\"", n ? ", " : "",
                              rep->causes.v[i].field);
    }
    return tn_reply_err(rep, 400, "BadRequest",
                        "%s in version \"%s\" cannot be handled as a %s: strict decoding error: %s",
                        t->kind, t->version, t->kind, buf);
}

static int namespace_check(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                           struct tn_reply *rep, int creating)
{
    if (!t->namespaced) return 0;
    const struct tn_rtype *nst = tn_registry_find(&a->reg, "", "v1", "namespaces");
    json_t *nso = tn_obj_load(a, nst, "", ns);
    if (!nso) {
        snprintf(rep->kind, sizeof(rep->kind), "namespaces");
        snprintf(rep->name, sizeof(rep->name), "%s", ns);
        return tn_reply_err(rep, 404, "NotFound", "namespaces \"%s\" not found", ns);
    }
    int terminating = tn_json_get(nso, "metadata.deletionTimestamp") != NULL;
    json_decref(nso);
    if (creating && terminating) {
        char q[256];
        qualified(t, q, sizeof(q));
        return tn_reply_err(rep, 403, "Forbidden",
                            "unable to create new content in namespace %s because it is being "
                            "terminated",
                            ns);
    }
    return 0;
}

int tn_obj_create(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, json_t *obj,
                  const struct tn_write_opts *o, struct tn_reply *rep)
{
    if (!json_is_object(obj))
        return tn_reply_err(rep, 400, "BadRequest", "the body of the request must be an object");
    if (check_gvk(t, obj, rep)) return rep->code;
    json_t *meta = json_object_get(obj, "metadata");
    if (meta && !json_is_object(meta))
        return tn_reply_err(rep, 400, "BadRequest", "metadata must be an object");
    meta = tn_json_obj_ensure(obj, "metadata");
    const char *name = tn_json_str(meta, "name", NULL);
    const char *gen = tn_json_str(meta, "generateName", NULL);
    if ((!name || !*name) && gen && *gen) {
        char nm[300], sfx[6];
        tn_rand_suffix(sfx, 5);
        snprintf(nm, sizeof(nm), "%s%s", gen, sfx);
        json_object_set_new(meta, "name", json_string(nm));
        name = tn_json_str(meta, "name", "");
    }
    if (!name || !*name) {
        tn_causes_add(&rep->causes, TN_CAUSE_REQUIRED, "metadata.name",
                      "Required value: name or generateName is required");
        return invalid(rep, t, "");
    }
    if (t->namespaced) {
        const char *ons = tn_json_str(meta, "namespace", NULL);
        if (ons && *ons && ns && strcmp(ons, ns) != 0)
            return tn_reply_err(rep, 400, "BadRequest",
                                "the namespace of the provided object does not match the namespace "
                                "sent on the request");
        if (!ns) ns = ons && *ons ? ons : "default";
        json_object_set_new(meta, "namespace", json_string(ns));
    } else {
        json_object_del(meta, "namespace");
        ns = "";
    }
    validate_name(t, name, &rep->causes);
    validate_meta_maps(obj, &rep->causes);
    if (namespace_check(a, t, ns, rep, 1)) return rep->code;
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "managedFields");
    json_object_del(meta, "selfLink");
    char uid[37], now[40];
    tn_rand_uuid(uid);
    tn_time_now_rfc3339(now, sizeof(now));
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    json_object_set_new(meta, "generation", json_integer(1));
    normalize_meta(obj);
    if (t->builtin)
        builtin_prepare(a, t, obj, NULL, &rep->causes);
    else
        cr_prepare(t, obj, NULL, o && o->strict, &rep->causes);
    if (!t->builtin && t->has_status)
        json_object_del(obj, "status"); /* the status subresource owns it */
    if (strict_unknown(rep)) return bad_strict(rep, t);
    if (strcmp(t->key, "apiextensions.k8s.io/customresourcedefinitions") == 0)
        tn_registry_validate_crd(&a->reg, obj, &rep->causes);
    if (rep->causes.n) return invalid(rep, t, name);
    if (tn_store_get(a->store, t->key, ns, name, NULL, NULL, NULL) == 0) {
        char q[256];
        qualified(t, q, sizeof(q));
        set_details(rep, t, name);
        return tn_reply_err(rep, 409, "AlreadyExists", "%s \"%s\" already exists", q, name);
    }
    if (o && o->dry_run) {
        rep->obj = json_incref(obj);
        rep->code = 201;
        return 201;
    }
    if (strcmp(t->key, "apiextensions.k8s.io/customresourcedefinitions") == 0 &&
        tn_ctrl_crd_established(a, obj, rep))
        return rep->code;
    if (persist(a, t, obj, NULL, "ADDED", rep)) return rep->code;
    rep->obj = json_incref(obj);
    rep->code = 201;
    return 201;
}

/* Everything but metadata and status: a change here bumps metadata.generation. */
static int spec_changed(const json_t *a, const json_t *b)
{
    json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
    const char *drop[] = {"metadata", "status", "apiVersion", "kind"};
    for (int i = 0; i < 4; i++) {
        json_object_del(x, drop[i]);
        json_object_del(y, drop[i]);
    }
    int changed = !json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return changed;
}

static int has_finalizers(const json_t *obj)
{
    json_t *f = tn_json_get(obj, "metadata.finalizers");
    return json_is_array(f) && json_array_size(f) > 0;
}

static int finalize_delete(struct tn_apiserver *a, const struct tn_rtype *t, json_t *obj,
                           struct tn_reply *rep)
{
    json_t *old = json_deep_copy(obj);
    int rc = persist(a, t, obj, old, "DELETED", rep);
    json_decref(old);
    return rc;
}

int tn_obj_update(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                  const char *name, json_t *obj, const struct tn_write_opts *o,
                  struct tn_reply *rep)
{
    if (!json_is_object(obj))
        return tn_reply_err(rep, 400, "BadRequest", "the body of the request must be an object");
    if (check_gvk(t, obj, rep)) return rep->code;
    if (!t->namespaced) ns = "";
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) meta = tn_json_obj_ensure(obj, "metadata");
    const char *oname = tn_json_str(meta, "name", NULL);
    if (oname && *oname && strcmp(oname, name) != 0)
        return tn_reply_err(rep, 400, "BadRequest",
                            "the name of the object (%s) does not match the name on the URL (%s)",
                            oname, name);
    const char *ons = tn_json_str(meta, "namespace", NULL);
    if (t->namespaced && ons && *ons && strcmp(ons, ns) != 0)
        return tn_reply_err(rep, 400, "BadRequest",
                            "the namespace of the provided object does not match the namespace "
                            "sent on the request");
    json_t *old = tn_obj_load(a, t, ns, name);
    if (!old) return not_found(rep, t, name);
    int rc = 0;
    json_t *omd = json_object_get(old, "metadata");
    const char *cur_rv = tn_json_str(omd, "resourceVersion", "");
    const char *want_rv = tn_json_str(meta, "resourceVersion", NULL);
    if (want_rv && *want_rv && strcmp(want_rv, cur_rv) != 0) {
        rc = conflict(rep, t, name);
        goto out;
    }
    if (o && o->expect_rv > 0 && o->expect_rv != atoll(cur_rv)) {
        rc = conflict(rep, t, name);
        goto out;
    }
    const char *want_uid = tn_json_str(meta, "uid", NULL);
    if (want_uid && *want_uid && strcmp(want_uid, tn_json_str(omd, "uid", "")) != 0) {
        char q[256];
        qualified(t, q, sizeof(q));
        set_details(rep, t, name);
        rc = tn_reply_err(rep, 409, "Conflict",
                          "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                          want_uid, tn_json_str(omd, "uid", ""));
        goto out;
    }
    json_t *nobj;
    if (o && o->status_only) {
        /* /status: only status changes */
        nobj = json_deep_copy(old);
        json_t *st = json_object_get(obj, "status");
        if (st)
            json_object_set(nobj, "status", st);
        else
            json_object_del(nobj, "status");
    } else {
        nobj = json_deep_copy(obj); /* the caller's object is not the stored one */
        if (t->has_status) {
            json_t *ost = json_object_get(old, "status");
            if (ost)
                json_object_set(nobj, "status", ost);
            else
                json_object_del(nobj, "status");
        }
    }
    json_t *nmeta = tn_json_obj_ensure(nobj, "metadata");
    if (o && o->status_only) {
        /* keep old metadata */
    } else {
        const char *keep[] = {"uid",
                              "creationTimestamp",
                              "deletionTimestamp",
                              "deletionGracePeriodSeconds",
                              "generation",
                              "namespace",
                              "name"};
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
            json_t *v = json_object_get(omd, keep[i]);
            if (v)
                json_object_set(nmeta, keep[i], v);
            else
                json_object_del(nmeta, keep[i]);
        }
        json_object_del(nmeta, "managedFields");
        if (t->namespaced) json_object_set_new(nmeta, "namespace", json_string(ns));
        validate_meta_maps(nobj, &rep->causes);
        /* no new finalizers on an object that is being deleted */
        if (json_object_get(omd, "deletionTimestamp")) {
            json_t *nf = json_object_get(nmeta, "finalizers"),
                   *of = json_object_get(omd, "finalizers");
            size_t i;
            json_t *f;
            json_array_foreach(nf, i, f)
            {
                int found = 0;
                size_t j;
                json_t *g;
                json_array_foreach(of, j, g) if (json_equal(f, g)) found = 1;
                if (!found) {
                    tn_causes_add(&rep->causes, TN_CAUSE_FORBIDDEN, "metadata.finalizers",
                                  "Forbidden: no new finalizers can be added if the object is "
                                  "being deleted, found new finalizers [\"%s\"]",
                                  json_string_value(f) ? json_string_value(f) : "?");
                    break;
                }
            }
        }
    }
    normalize_meta(nobj);
    if (t->builtin)
        builtin_prepare(a, t, nobj, old, &rep->causes);
    else
        cr_prepare(t, nobj, old, o && o->strict, &rep->causes);
    if (strict_unknown(rep)) {
        rc = bad_strict(rep, t);
        json_decref(nobj);
        goto out;
    }
    if (strcmp(t->key, "apiextensions.k8s.io/customresourcedefinitions") == 0 &&
        !(o && o->status_only))
        tn_registry_validate_crd(&a->reg, nobj, &rep->causes);
    if (rep->causes.n) {
        rc = invalid(rep, t, name);
        json_decref(nobj);
        goto out;
    }
    if (spec_changed(old, nobj))
        json_object_set_new(nmeta, "generation",
                            json_integer(tn_json_int(omd, "generation", 1) + 1));
    json_object_set_new(nmeta, "resourceVersion", json_string(cur_rv));
    if (json_equal(old, nobj)) { /* no-op: no new resourceVersion, no event */
        rep->obj = nobj;
        rep->code = 200;
        goto out;
    }
    if (o && o->dry_run) {
        rep->obj = nobj;
        rep->code = 200;
        goto out;
    }
    if (strcmp(t->key, "apiextensions.k8s.io/customresourcedefinitions") == 0 &&
        !(o && o->status_only) && tn_ctrl_crd_established(a, nobj, rep)) {
        json_decref(nobj);
        rc = rep->code;
        goto out;
    }
    if (json_object_get(nmeta, "deletionTimestamp") && !has_finalizers(nobj) &&
        strcmp(t->key, "core/namespaces") != 0 &&
        !(strcmp(t->key, "core/pods") == 0 &&
          tn_json_get(nobj, "metadata.deletionGracePeriodSeconds") &&
          tn_json_int(nobj, "metadata.deletionGracePeriodSeconds", 0) > 0)) {
        /* the last finalizer is gone: the deletion completes */
        if (finalize_delete(a, t, nobj, rep)) {
            json_decref(nobj);
            rc = rep->code;
            goto out;
        }
    } else if (persist(a, t, nobj, old, "MODIFIED", rep)) {
        json_decref(nobj);
        rc = rep->code;
        goto out;
    }
    rep->obj = nobj;
    rep->code = 200;
out:
    json_decref(old);
    return rc ? rc : rep->code;
}

static int add_finalizer(json_t *obj, const char *f)
{
    json_t *meta = tn_json_obj_ensure(obj, "metadata");
    json_t *fs = json_object_get(meta, "finalizers");
    if (!json_is_array(fs)) {
        fs = json_array();
        json_object_set_new(meta, "finalizers", fs);
    }
    size_t i;
    json_t *v;
    json_array_foreach(fs, i,
                       v) if (json_is_string(v) && strcmp(json_string_value(v), f) == 0) return 0;
    json_array_append_new(fs, json_string(f));
    return 1;
}

static int node_ready(struct tn_apiserver *a, const char *node)
{
    const struct tn_rtype *nt = tn_registry_find(&a->reg, "", "v1", "nodes");
    json_t *n = tn_obj_load(a, nt, "", node);
    if (!n) return 0;
    int ready = 0;
    json_t *conds = tn_json_get(n, "status.conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) if (strcmp(tn_json_str(c, "type", ""), "Ready") == 0 &&
                                        strcmp(tn_json_str(c, "status", ""), "True") == 0) ready =
        1;
    json_decref(n);
    return ready;
}

int tn_obj_delete(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                  const char *name, const struct tn_write_opts *o, struct tn_reply *rep)
{
    if (!t->namespaced) ns = "";
    json_t *obj = tn_obj_load(a, t, ns, name);
    if (!obj) return not_found(rep, t, name);
    json_t *old = json_deep_copy(obj);
    json_t *meta = tn_json_obj_ensure(obj, "metadata");
    int rc = 200;
    if (o && o->precond_uid && *o->precond_uid &&
        strcmp(o->precond_uid, tn_json_str(meta, "uid", "")) != 0) {
        set_details(rep, t, name);
        rc = tn_reply_err(rep, 409, "Conflict",
                          "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                          o->precond_uid, tn_json_str(meta, "uid", ""));
        goto out;
    }
    if (o && o->expect_rv > 0 && o->expect_rv != atoll(tn_json_str(meta, "resourceVersion", "0"))) {
        rc = conflict(rep, t, name);
        goto out;
    }
    if (o && o->dry_run) {
        rep->obj = json_incref(obj);
        goto out;
    }
    char now[40];
    tn_time_now_rfc3339(now, sizeof(now));
    int changed = 0;
    const char *prop = o ? o->propagation : NULL;
    if (strcmp(t->key, "apiextensions.k8s.io/customresourcedefinitions") == 0) {
        tn_ctrl_crd_cleanup(a, obj);
    } else if (strcmp(t->key, "core/namespaces") == 0) {
        if (!json_object_get(meta, "deletionTimestamp")) {
            json_object_set_new(meta, "deletionTimestamp", json_string(now));
            json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0));
            json_object_set_new(tn_json_obj_ensure(obj, "status"), "phase",
                                json_string("Terminating"));
            if (persist(a, t, obj, old, "MODIFIED", rep)) {
                rc = rep->code;
                goto out;
            }
        }
        rep->obj = json_incref(obj);
        goto out;
    }
    if (prop && strcmp(prop, "Orphan") == 0)
        changed |= add_finalizer(obj, "orphan");
    else if (prop && strcmp(prop, "Foreground") == 0)
        changed |= add_finalizer(obj, "foregroundDeletion");
    int64_t grace = o ? o->grace : -1;
    int graceful = 0;
    if (strcmp(t->key, "core/pods") == 0 && grace != 0) {
        const char *node = tn_json_str(obj, "spec.nodeName", "");
        const char *phase = tn_json_str(obj, "status.phase", "");
        if (*node && strcmp(phase, "Succeeded") && strcmp(phase, "Failed") && node_ready(a, node)) {
            if (grace < 0) grace = tn_json_int(obj, "spec.terminationGracePeriodSeconds", 30);
            graceful = grace > 0;
        }
    }
    if (json_object_get(meta, "deletionTimestamp")) {
        /* already being deleted: a second delete with grace 0 forces pods out */
        if (!has_finalizers(obj) && (!graceful || grace == 0)) {
            if (finalize_delete(a, t, obj, rep)) {
                rc = rep->code;
                goto out;
            }
        } else if (changed && persist(a, t, obj, old, "MODIFIED", rep)) {
            rc = rep->code;
            goto out;
        }
        rep->obj = json_incref(obj);
        goto out;
    }
    if (has_finalizers(obj) || graceful) {
        char when[40];
        tn_time_rfc3339(time(NULL) + (graceful ? grace : 0), when, sizeof(when));
        json_object_set_new(meta, "deletionTimestamp", json_string(when));
        json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(graceful ? grace : 0));
        if (persist(a, t, obj, old, "MODIFIED", rep)) {
            rc = rep->code;
            goto out;
        }
        rep->obj = json_incref(obj);
        rep->code = 200;
        goto out;
    }
    if (finalize_delete(a, t, obj, rep)) {
        rc = rep->code;
        goto out;
    }
    rep->obj = json_incref(obj);
out:
    json_decref(old);
    json_decref(obj);
    if (rc >= 400) return rc;
    rep->code = 200;
    return 200;
}
