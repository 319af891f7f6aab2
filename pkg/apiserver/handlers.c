/* HTTP surface of tandem-apiserver: authentication, routing of Kubernetes API paths, the verbs
 * (get, list, watch, create, update, patch, delete, deletecollection, status and log
 * subresources), discovery, OpenAPI and health endpoints, and Status error bodies. */
#include "apiserver/internal.h"
#include "apiserver/openapi.h"
#include "apiserver/patch.h"
#include "apiserver/protobuf.h"
#include "apiserver/selector.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JSON_CT "application/json"

static void send_json(struct tn_http_req *req, int code, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s) {
        tn_http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    tn_http_respond_take(req, code, JSON_CT, s, strlen(s));
}

static void send_reply(struct tn_http_req *req, const struct tn_rtype *t, struct tn_reply *rep)
{
    if (rep->code >= 400 || !rep->obj) {
        if (rep->code < 400 && !rep->obj) rep->code = 200;
        send_json(req, rep->code, tn_reply_status(rep, t));
    } else {
        send_json(req, rep->code, json_incref(rep->obj));
    }
}

static void send_error(struct tn_http_req *req, int code, const char *reason, const char *msg)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    tn_reply_err(&rep, code, reason, "%s", msg);
    send_reply(req, NULL, &rep);
    tn_reply_free(&rep);
}

/* A boolean query parameter, parsed like Go's strconv.ParseBool. */
static int query_bool(struct tn_http_req *req, const char *name)
{
    const char *v = tn_http_query(req, name);
    if (!v) return 0;
    const char *yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcmp(v, yes[i]) == 0) return 1;
    return 0;
}

static int wants_table(struct tn_http_req *req)
{
    const char *acc = tn_http_header(req, "accept");
    return acc && strstr(acc, "as=Table") != NULL;
}

static int authorized(struct tn_apiserver *a, struct tn_http_req *req)
{
    if (!a->ntokens) return 1;
    const char *auth = tn_http_header(req, "authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    for (size_t i = 0; i < a->ntokens; i++)
        if (strcmp(a->tokens[i].token, tok) == 0) return 1;
    return 0;
}

/* Parses a request body as JSON (or YAML when the content type says so). New reference. */
static json_t *parse_body(struct tn_http_req *req, struct tn_reply *rep)
{
    size_t len;
    const char *body = tn_http_body(req, &len);
    const char *ct = tn_http_header(req, "content-type");
    struct tn_err err = {0};
    json_t *v;
    if (len == 0) {
        tn_reply_err(rep, 400, "BadRequest", "the request body is empty");
        return NULL;
    }
    if (ct && strstr(ct, "protobuf")) {
        /* kubectl's imperative generators (create namespace/configmap/deployment/...) send
         * Kubernetes protobuf; the kinds they create are decoded to JSON */
        v = tn_protobuf_decode(body, len, &err);
        if (!v)
            tn_reply_err(rep, err.code == TN_EUNSUPPORTED ? 415 : 400,
                         err.code == TN_EUNSUPPORTED ? "UnsupportedMediaType" : "BadRequest", "%s",
                         err.msg);
        return v;
    }
    if (ct && (strstr(ct, "yaml") != NULL))
        v = tn_yaml_load_one(body, len, NULL, &err);
    else
        v = tn_json_parse(body, len, &err);
    if (!v)
        tn_reply_err(rep, 400, "BadRequest", "the request body could not be decoded: %s", err.msg);
    return v;
}

/* ---------------- discovery ---------------- */

/* New: ["a","b"] from "a,b" (the registry keeps short names and categories as lists in text). */
static json_t *csv_array(const char *csv)
{
    json_t *arr = json_array();
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", csv);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, json_string(p));
    return arr;
}

static json_t *resource_list(struct tn_apiserver *a, const char *group, const char *version)
{
    json_t *res = json_array();
    for (const struct tn_rtype *t = a->reg.head; t; t = t->next) {
        if (strcmp(t->group, group) || strcmp(t->version, version)) continue;
        json_t *r =
            json_pack("{s:s,s:s,s:b,s:s,s:[ssssssss]}", "name", t->resource, "singularName",
                      t->singular, "namespaced", t->namespaced, "kind", t->kind, "verbs", "create",
                      "delete", "deletecollection", "get", "list", "patch", "update", "watch");
        if (t->short_names[0]) json_object_set_new(r, "shortNames", csv_array(t->short_names));
        if (t->categories[0]) json_object_set_new(r, "categories", csv_array(t->categories));
        json_array_append_new(res, r);
        char sub[200];
        if (t->has_status) {
            snprintf(sub, sizeof(sub), "%s/status", t->resource);
            json_array_append_new(res,
                                  json_pack("{s:s,s:s,s:b,s:s,s:[sss]}", "name", sub,
                                            "singularName", "", "namespaced", t->namespaced, "kind",
                                            t->kind, "verbs", "get", "patch", "update"));
        }
        if (strcmp(t->key, "apps/deployments") == 0)
            json_array_append_new(res,
                                  json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:[sss]}", "name",
                                            "deployments/scale", "singularName", "", "namespaced",
                                            1, "group", "autoscaling", "version", "v1", "kind",
                                            "Scale", "verbs", "get", "patch", "update"));
        if (strcmp(t->key, "core/pods") == 0)
            json_array_append_new(res, json_pack("{s:s,s:s,s:b,s:s,s:[s]}", "name", "pods/log",
                                                 "singularName", "", "namespaced", 1, "kind", "Pod",
                                                 "verbs", "get"));
    }
    char gv[160];
    snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
    return json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", res);
}

static json_t *api_group(struct tn_apiserver *a, const char *group)
{
    json_t *versions = json_array();
    json_t *preferred = NULL;
    for (const struct tn_rtype *t = a->reg.head; t; t = t->next) {
        if (strcmp(t->group, group) != 0) continue;
        int seen = 0;
        size_t i;
        json_t *v;
        json_array_foreach(versions, i,
                           v) if (strcmp(tn_json_str(v, "version", ""), t->version) == 0) seen = 1;
        if (seen) continue;
        char gv[160];
        snprintf(gv, sizeof(gv), "%s/%s", group, t->version);
        json_t *ver = json_pack("{s:s,s:s}", "groupVersion", gv, "version", t->version);
        json_array_append(versions, ver);
        if (!preferred || t->storage) {
            json_decref(preferred);
            preferred = ver;
        } else {
            json_decref(ver);
        }
    }
    if (!json_array_size(versions)) {
        json_decref(versions);
        json_decref(preferred);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:o,s:o}", "kind", "APIGroup", "apiVersion", "v1", "name", group,
                     "versions", versions, "preferredVersion", preferred);
}

static json_t *group_list(struct tn_apiserver *a)
{
    json_t *groups = json_array();
    for (const struct tn_rtype *t = a->reg.head; t; t = t->next) {
        if (!t->group[0]) continue;
        int seen = 0;
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g) if (strcmp(tn_json_str(g, "name", ""), t->group) == 0)
            seen = 1;
        if (seen) continue;
        json_t *ag = api_group(a, t->group);
        if (ag) {
            json_object_del(ag, "kind");
            json_object_del(ag, "apiVersion");
            json_array_append_new(groups, ag);
        }
    }
    return json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups", groups);
}

static void handle_openapi(struct tn_apiserver *a, struct tn_http_req *req, const char *path)
{
    const char *acc = tn_http_header(req, "accept");
    if (strcmp(path, "/openapi/v2") == 0 && acc && strstr(acc, "protobuf") &&
        !strstr(acc, "json")) {
        /* client-go asks for v2 only as protobuf; 406 makes kubectl use v3 and its own types */
        send_error(req, 406, "NotAcceptable", "only application/json is served for /openapi/v2");
        return;
    }
    json_t *descs = tn_registry_descriptors(&a->reg);
    json_t *doc = NULL;
    if (strcmp(path, "/openapi/v2") == 0) {
        doc = tn_openapi_v2(descs);
    } else if (strcmp(path, "/openapi/v3") == 0) {
        doc = tn_openapi_v3_index(descs);
    } else if (strncmp(path, "/openapi/v3/api/", 16) == 0) {
        doc = tn_openapi_v3_gv(descs, "", path + 16);
    } else if (strncmp(path, "/openapi/v3/apis/", 17) == 0) {
        char group[128];
        const char *gv = path + 17;
        const char *slash = strchr(gv, '/');
        if (slash && (size_t)(slash - gv) < sizeof(group)) {
            snprintf(group, sizeof(group), "%.*s", (int)(slash - gv), gv);
            doc = tn_openapi_v3_gv(descs, group, slash + 1);
        }
    }
    json_decref(descs);
    if (!doc) {
        send_error(req, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    tn_http_respond_take(req, 200, JSON_CT, s, strlen(s));
}

/* ---------------- list / watch ---------------- */

struct list_ctx {
    struct tn_apiserver *a;
    const struct tn_rtype *t;
    struct tn_labelsel *ls;
    struct tn_fieldsel *fs;
    struct tn_buf out; /* fast path: stored texts spliced */
    json_t *items;     /* slow path: parsed objects */
    long limit, matched;
    char last_ns[256], last_name[256];
    int more;
};

static int list_row(const char *ns, const char *name, const char *data, int64_t rv, void *arg)
{
    struct list_ctx *c = arg;
    if (c->limit > 0 && c->matched >= c->limit) {
        c->more = 1;
        return 1;
    }
    snprintf(c->last_ns, sizeof(c->last_ns), "%s", ns);
    snprintf(c->last_name, sizeof(c->last_name), "%s", name);
    if (!c->items) {
        if (c->matched) tn_buf_putc(&c->out, ',');
        tn_buf_puts(&c->out, data);
        c->matched++;
        return 0;
    }
    json_t *obj = json_loads(data, 0, NULL);
    if (!obj) return 0;
    if ((!c->ls || tn_labelsel_matches(c->ls, obj)) &&
        (!c->fs || tn_fieldsel_matches_resource(c->fs, c->t->resource, obj))) {
        if (!c->t->builtin) {
            char av[160];
            snprintf(av, sizeof(av), "%s/%s", c->t->group, c->t->version);
            json_object_set_new(obj, "apiVersion", json_string(av));
        }
        json_array_append(c->items, obj);
        c->matched++;
    }
    json_decref(obj);
    return 0;
}

static char *make_continue(const char *ns, const char *name, int64_t rv)
{
    json_t *v = json_pack("{s:s,s:s,s:I}", "ns", ns, "name", name, "rv", (json_int_t)rv);
    char *s = tn_json_dump(v);
    json_decref(v);
    char *enc = tn_base64_encode((const unsigned char *)s, strlen(s));
    free(s);
    return enc;
}

static int parse_selectors(struct tn_http_req *req, const struct tn_rtype *t,
                           struct tn_labelsel **ls, struct tn_fieldsel **fs)
{
    struct tn_err err = {0};
    const char *l = tn_http_query(req, "labelSelector");
    const char *f = tn_http_query(req, "fieldSelector");
    *ls = NULL;
    *fs = NULL;
    if (l && *l && tn_labelsel_parse(l, ls, &err)) {
        send_error(req, 400, "BadRequest", err.msg);
        return -1;
    }
    if (f && *f) {
        if (tn_fieldsel_parse(f, fs, &err) ||
            tn_fieldsel_validate(*fs, t->resource, t->namespaced, &err)) {
            tn_labelsel_free(*ls);
            tn_fieldsel_free(*fs);
            *ls = NULL;
            *fs = NULL;
            send_error(req, 400, "BadRequest", err.msg);
            return -1;
        }
    }
    return 0;
}

static void handle_list(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                        const char *ns)
{
    struct list_ctx c;
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.t = t;
    if (parse_selectors(req, t, &c.ls, &c.fs)) return;
    int table = wants_table(req);
    const char *lim = tn_http_query(req, "limit");
    c.limit = lim ? atol(lim) : 0;
    const char *after_ns = NULL, *after_name = NULL;
    json_t *cont = NULL;
    const char *cs = tn_http_query(req, "continue");
    if (cs && *cs) {
        unsigned char *dec = NULL;
        size_t dl;
        if (tn_base64_decode(cs, &dec, &dl) == 0) cont = json_loads((const char *)dec, 0, NULL);
        free(dec);
        if (!cont) {
            tn_labelsel_free(c.ls);
            tn_fieldsel_free(c.fs);
            send_error(req, 400, "BadRequest", "continue key is not valid");
            return;
        }
        after_ns = tn_json_str(cont, "ns", "");
        after_name = tn_json_str(cont, "name", "");
    }
    int slow = c.ls || c.fs || table || (!t->builtin && !t->storage);
    tn_buf_init(&c.out, 0);
    if (slow) c.items = json_array();
    int64_t rv = tn_store_rv(a->store);
    /* with selectors the limit counts matches: read in pages until enough matched */
    for (;;) {
        long page = c.limit > 0 ? (slow ? 500 : c.limit + 1) : 0;
        long before = c.matched;
        int n = tn_store_list(a->store, t->key, t->namespaced ? ns : NULL, after_ns, after_name,
                              page, list_row, &c);
        (void)before;
        if (n < 0) {
            tn_buf_free(&c.out);
            json_decref(c.items);
            json_decref(cont);
            tn_labelsel_free(c.ls);
            tn_fieldsel_free(c.fs);
            send_error(req, 500, "InternalError", "storage error while listing");
            return;
        }
        if (c.more || page == 0 || n < page) break;
        after_ns = c.last_ns;
        after_name = c.last_name;
    }
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    char *cont_tok = c.more ? make_continue(c.last_ns, c.last_name, rv) : NULL;
    /* like the real server: how many are left, when no selector makes that unknowable */
    long remaining = c.more && !c.ls && !c.fs
                         ? tn_store_count_after(a->store, t->key, t->namespaced ? ns : NULL,
                                                c.last_ns, c.last_name)
                         : -1;
    if (table) {
        json_t *tb = tn_table_for(t, c.items, tn_http_query(req, "includeObject"), 1);
        json_t *md = tn_json_obj_ensure(tb, "metadata");
        json_object_set_new(md, "resourceVersion", json_string(rvs));
        if (cont_tok) json_object_set_new(md, "continue", json_string(cont_tok));
        if (remaining >= 0) json_object_set_new(md, "remainingItemCount", json_integer(remaining));
        send_json(req, 200, tb);
    } else if (slow) {
        char av[160];
        snprintf(av, sizeof(av), "%s%s%s", t->group, t->group[0] ? "/" : "", t->version);
        json_t *list = json_pack("{s:s,s:s,s:{s:s},s:O}", "kind", t->list_kind, "apiVersion", av,
                                 "metadata", "resourceVersion", rvs, "items", c.items);
        if (cont_tok)
            json_object_set_new(json_object_get(list, "metadata"), "continue",
                                json_string(cont_tok));
        if (remaining >= 0)
            json_object_set_new(json_object_get(list, "metadata"), "remainingItemCount",
                                json_integer(remaining));
        send_json(req, 200, list);
    } else {
        struct tn_buf b;
        tn_buf_init(&b, 0);
        tn_buf_printf(&b,
                      "{\"kind\":\"%s\",\"apiVersion\":\"%s%s%s\",\"metadata\":{"
                      "\"resourceVersion\":\"%s\"",
                      t->list_kind, t->group, t->group[0] ? "/" : "", t->version, rvs);
        if (cont_tok) tn_buf_printf(&b, ",\"continue\":\"%s\"", cont_tok);
        if (remaining >= 0) tn_buf_printf(&b, ",\"remainingItemCount\":%ld", remaining);
        tn_buf_puts(&b, "},\"items\":[");
        tn_buf_append(&b, c.out.data ? c.out.data : "", c.out.len);
        tn_buf_puts(&b, "]}");
        size_t len;
        char *s = tn_buf_steal(&b, &len);
        tn_http_respond_take(req, 200, JSON_CT, s, len);
    }
    free(cont_tok);
    tn_buf_free(&c.out);
    json_decref(c.items);
    json_decref(cont);
    tn_labelsel_free(c.ls);
    tn_fieldsel_free(c.fs);
}

struct init_ctx {
    struct tn_watcher *w;
    const struct tn_rtype *t;
};

static int initial_event(json_t *obj, void *arg)
{
    struct init_ctx *c = arg;
    if (!c->t->builtin) {
        char av[160];
        snprintf(av, sizeof(av), "%s/%s", c->t->group, c->t->version);
        json_object_set_new(obj, "apiVersion", json_string(av));
    }
    tn_watch_send(c->w, "ADDED", obj);
    return 0;
}

static void handle_watch(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                         const char *ns, const char *name)
{
    struct tn_watch_opts o;
    memset(&o, 0, sizeof(o));
    if (parse_selectors(req, t, &o.labels, &o.fields)) return;
    if (name) { /* watch on a single object: GET .../name?watch=1 */
        char sel[300];
        snprintf(sel, sizeof(sel), "metadata.name=%s", name);
        tn_fieldsel_free(o.fields);
        o.fields = NULL;
        struct tn_err err;
        tn_fieldsel_parse(sel, &o.fields, &err);
    }
    o.ns = t->namespaced ? ns : NULL;
    o.bookmarks = query_bool(req, "allowWatchBookmarks");
    o.table = wants_table(req);
    const char *io = tn_http_query(req, "includeObject");
    snprintf(o.include_object, sizeof(o.include_object), "%s", io ? io : "");
    const char *ts = tn_http_query(req, "timeoutSeconds");
    o.timeout_ms = ts ? atoll(ts) * 1000 : 1800 * 1000;
    const char *rvq = tn_http_query(req, "resourceVersion");
    struct tn_watcher *w = tn_watch_start(a->hub, a->http, req, t, &o);
    if (!w) return;
    if (!rvq || !*rvq || strcmp(rvq, "0") == 0) {
        struct init_ctx c = {w, t};
        tn_obj_each(a, t, t->namespaced ? ns : NULL, initial_event, &c);
    } else {
        char *end;
        long long from = strtoll(rvq, &end, 10);
        if (*end || from < 0) {
            /* an invalid version: the same answer as one that is too old */
            from = -1;
        }
        tn_watch_replay(w, from);
    }
}

/* ---------------- write verbs ---------------- */

static void write_opts(struct tn_http_req *req, struct tn_write_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->grace = -1;
    const char *dr = tn_http_query(req, "dryRun");
    o->dry_run = dr && strcmp(dr, "All") == 0;
    const char *fv = tn_http_query(req, "fieldValidation");
    o->strict = fv && strcmp(fv, "Strict") == 0;
    const char *pp = tn_http_query(req, "propagationPolicy");
    o->propagation = pp;
    const char *gp = tn_http_query(req, "gracePeriodSeconds");
    if (gp) o->grace = atoll(gp);
}

/* POST (name NULL) or PUT of a whole object. */
static void handle_write(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                         const char *ns, const char *name, int status)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts o;
    write_opts(req, &o);
    o.status_only = status;
    json_t *obj = parse_body(req, &rep);
    if (obj && !name)
        tn_obj_create(a, t, t->namespaced ? ns : NULL, obj, &o, &rep);
    else if (obj)
        tn_obj_update(a, t, ns, name, obj, &o, &rep);
    send_reply(req, t, &rep);
    json_decref(obj);
    tn_reply_free(&rep);
}

static void handle_patch(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                         const char *ns, const char *name, int status)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts o;
    write_opts(req, &o);
    o.status_only = status;
    const char *ct = tn_http_header(req, "content-type");
    if (!ct) ct = "";
    int kind;
    if (strncmp(ct, "application/merge-patch+json", 28) == 0)
        kind = 1;
    else if (strncmp(ct, "application/json-patch+json", 27) == 0)
        kind = 2;
    else if (strncmp(ct, "application/strategic-merge-patch+json", 38) == 0)
        kind = 3;
    else if (strncmp(ct, "application/apply-patch+yaml", 28) == 0)
        kind = 4;
    else {
        tn_reply_err(&rep, 415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml%s",
                     t->builtin ? ", application/strategic-merge-patch+json" : "");
        send_reply(req, t, &rep);
        tn_reply_free(&rep);
        return;
    }
    if (kind == 3 && !t->builtin) {
        tn_reply_err(&rep, 415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml");
        send_reply(req, t, &rep);
        tn_reply_free(&rep);
        return;
    }
    if (kind == 4) { /* the apply body is YAML or JSON */
        size_t len;
        const char *body = tn_http_body(req, &len);
        struct tn_err err = {0};
        json_t *applied = tn_yaml_load_one(body, len, NULL, &err);
        if (!applied) {
            tn_reply_err(&rep, 400, "BadRequest", "error decoding YAML: %s", err.msg);
        } else if (!tn_http_query(req, "fieldManager")) {
            tn_reply_err(&rep, 400, "BadRequest",
                         "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                         "is required for apply patch");
        } else {
            json_t *cur = tn_obj_load(a, t, ns, name);
            if (!cur) {
                tn_obj_create(a, t, t->namespaced ? ns : NULL, applied, &o, &rep);
            } else {
                struct tn_err perr = {0};
                json_t *merged = t->builtin ? tn_patch_strategic(cur, applied, &perr)
                                            : tn_patch_merge(cur, applied, &perr);
                if (!merged)
                    tn_reply_err(&rep, 422, "Invalid", "%s", perr.msg);
                else
                    tn_obj_update(a, t, ns, name, merged, &o, &rep);
                json_decref(merged);
                json_decref(cur);
            }
        }
        json_decref(applied);
        send_reply(req, t, &rep);
        tn_reply_free(&rep);
        return;
    }
    json_t *patch = NULL;
    {
        size_t len;
        const char *body = tn_http_body(req, &len);
        struct tn_err err = {0};
        patch = tn_json_parse(body, len, &err);
        if (!patch) {
            tn_reply_err(&rep, 400, "BadRequest", "the patch could not be decoded: %s", err.msg);
            send_reply(req, t, &rep);
            tn_reply_free(&rep);
            return;
        }
    }
    json_t *cur = tn_obj_load(a, t, ns, name);
    if (!cur) {
        tn_obj_get(a, t, ns, name, &rep); /* fills the 404 */
    } else {
        struct tn_err perr = {0};
        json_t *res = kind == 1   ? tn_patch_merge(cur, patch, &perr)
                      : kind == 2 ? tn_patch_json(cur, patch, &perr)
                                  : tn_patch_strategic(cur, patch, &perr);
        if (!res) {
            if (perr.code == TN_EUNSUPPORTED)
                tn_reply_err(&rep, 415, "UnsupportedMediaType", "%s", perr.msg);
            else
                tn_reply_err(&rep, kind == 2 ? 422 : 400, kind == 2 ? "Invalid" : "BadRequest",
                             "%s", perr.msg);
        } else {
            tn_obj_update(a, t, ns, name, res, &o, &rep);
            json_decref(res);
        }
        json_decref(cur);
    }
    json_decref(patch);
    send_reply(req, t, &rep);
    tn_reply_free(&rep);
}

static void delete_opts_from_body(struct tn_http_req *req, struct tn_write_opts *o, json_t **keep)
{
    size_t len;
    const char *body = tn_http_body(req, &len);
    *keep = NULL;
    if (!len) return;
    json_t *d = json_loadb(body, len, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return;
    }
    *keep = d;
    const char *pp = tn_json_str(d, "propagationPolicy", NULL);
    if (pp) o->propagation = pp;
    json_t *gp = json_object_get(d, "gracePeriodSeconds");
    if (json_is_integer(gp)) o->grace = json_integer_value(gp);
    const char *uid = tn_json_str(d, "preconditions.uid", NULL);
    if (uid) o->precond_uid = uid;
    const char *rv = tn_json_str(d, "preconditions.resourceVersion", NULL);
    if (rv) o->expect_rv = atoll(rv);
    json_t *dr = json_object_get(d, "dryRun");
    if (json_is_array(dr) && json_array_size(dr)) o->dry_run = 1;
    if (json_is_true(json_object_get(d, "orphanDependents"))) o->propagation = "Orphan";
}

static void handle_delete(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                          const char *ns, const char *name)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts o;
    write_opts(req, &o);
    json_t *keep;
    delete_opts_from_body(req, &o, &keep);
    if (o.propagation && strcmp(o.propagation, "Orphan") && strcmp(o.propagation, "Background") &&
        strcmp(o.propagation, "Foreground"))
        tn_reply_err(&rep, 422, "Invalid",
                     "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported "
                     "value: \"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                     o.propagation);
    else
        tn_obj_delete(a, t, ns, name, &o, &rep);
    send_reply(req, t, &rep);
    json_decref(keep);
    tn_reply_free(&rep);
}

struct delcoll_ctx {
    struct tn_labelsel *ls;
    struct tn_fieldsel *fs;
    const struct tn_rtype *t;
    json_t *names; /* [[ns, name]] */
};

static int delcoll_row(json_t *obj, void *arg)
{
    struct delcoll_ctx *c = arg;
    if ((!c->ls || tn_labelsel_matches(c->ls, obj)) &&
        (!c->fs || tn_fieldsel_matches_resource(c->fs, c->t->resource, obj)))
        json_array_append_new(c->names,
                              json_pack("[ss]", tn_json_str(obj, "metadata.namespace", ""),
                                        tn_json_str(obj, "metadata.name", "")));
    return 0;
}

static void handle_deletecollection(struct tn_apiserver *a, struct tn_http_req *req,
                                    const struct tn_rtype *t, const char *ns)
{
    struct delcoll_ctx c = {NULL, NULL, t, json_array()};
    if (parse_selectors(req, t, &c.ls, &c.fs)) {
        json_decref(c.names);
        return;
    }
    struct tn_write_opts o;
    write_opts(req, &o);
    json_t *keep;
    delete_opts_from_body(req, &o, &keep);
    tn_obj_each(a, t, t->namespaced ? ns : NULL, delcoll_row, &c);
    json_t *items = json_array();
    size_t i;
    json_t *nn;
    json_array_foreach(c.names, i, nn)
    {
        struct tn_reply rep;
        tn_reply_init(&rep);
        tn_obj_delete(a, t, json_string_value(json_array_get(nn, 0)),
                      json_string_value(json_array_get(nn, 1)), &o, &rep);
        if (rep.obj) json_array_append(items, rep.obj);
        tn_reply_free(&rep);
    }
    char av[160];
    snprintf(av, sizeof(av), "%s%s%s", t->group, t->group[0] ? "/" : "", t->version);
    send_json(req, 200,
              json_pack("{s:s,s:s,s:{},s:o}", "kind", t->list_kind, "apiVersion", av, "metadata",
                        "items", items));
    json_decref(c.names);
    json_decref(keep);
    tn_labelsel_free(c.ls);
    tn_fieldsel_free(c.fs);
}

static void handle_pod_log(struct tn_apiserver *a, struct tn_http_req *req, const char *ns,
                           const char *name)
{
    const struct tn_rtype *pt = tn_registry_find(&a->reg, "", "v1", "pods");
    struct tn_reply rep;
    tn_reply_init(&rep);
    json_t *pod = tn_obj_load(a, pt, ns, name);
    if (!pod) {
        tn_obj_get(a, pt, ns, name, &rep);
        send_reply(req, pt, &rep);
        tn_reply_free(&rep);
        return;
    }
    const char *node = tn_json_str(pod, "spec.nodeName", "");
    char msg[512];
    if (!*node)
        snprintf(msg, sizeof(msg), "pod %s/%s is not bound to a node: no logs to show", ns, name);
    else
        snprintf(msg, sizeof(msg),
                 "no log endpoint is registered for node %s (its LocalController does not serve "
                 "container logs)",
                 node);
    json_decref(pod);
    tn_reply_err(&rep, 503, "ServiceUnavailable", "%s", msg);
    send_reply(req, pt, &rep);
    tn_reply_free(&rep);
}

/* The autoscaling/v1 Scale view of a Deployment. New reference. */
static json_t *scale_of(const json_t *d)
{
    json_t *md = json_object_get(d, "metadata");
    json_t *scale =
        json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s},s:{s:I},s:{s:I}}", "kind", "Scale",
                  "apiVersion", "autoscaling/v1", "metadata", "name", tn_json_str(md, "name", ""),
                  "namespace", tn_json_str(md, "namespace", ""), "uid", tn_json_str(md, "uid", ""),
                  "resourceVersion", tn_json_str(md, "resourceVersion", ""), "creationTimestamp",
                  tn_json_str(md, "creationTimestamp", ""), "spec", "replicas",
                  (json_int_t)tn_json_int(d, "spec.replicas", 1), "status", "replicas",
                  (json_int_t)tn_json_int(d, "status.replicas", 0));
    struct tn_labelsel *ls = NULL;
    struct tn_err err;
    if (tn_labelsel_from_json(tn_json_get(d, "spec.selector"), &ls, &err) == 0) {
        char *sel = tn_labelsel_to_string(ls);
        if (sel)
            json_object_set_new(json_object_get(scale, "status"), "selector", json_string(sel));
        free(sel);
        tn_labelsel_free(ls);
    }
    return scale;
}

static void handle_scale(struct tn_apiserver *a, struct tn_http_req *req, const struct tn_rtype *t,
                         const char *ns, const char *name)
{
    struct tn_reply rep;
    tn_reply_init(&rep);
    const char *method = tn_http_method(req);
    json_t *d = tn_obj_load(a, t, ns, name);
    json_t *want = NULL;
    if (!d) {
        tn_obj_get(a, t, ns, name, &rep);
        goto out;
    }
    json_t *scale = scale_of(d);
    if (strcmp(method, "GET") == 0) {
        rep.obj = scale;
        goto out;
    }
    if (strcmp(method, "PUT") == 0) {
        want = parse_body(req, &rep);
    } else if (strcmp(method, "PATCH") == 0) {
        size_t len;
        const char *body = tn_http_body(req, &len);
        struct tn_err err = {0};
        json_t *patch = tn_json_parse(body, len, &err);
        const char *ct = tn_http_header(req, "content-type");
        if (!patch)
            tn_reply_err(&rep, 400, "BadRequest", "the patch could not be decoded: %s", err.msg);
        else if (ct && strncmp(ct, "application/json-patch+json", 27) == 0)
            want = tn_patch_json(scale, patch, &err);
        else
            want = tn_patch_merge(scale, patch, &err); /* a Scale has no lists to merge */
        if (patch && !want && rep.code < 400) tn_reply_err(&rep, 422, "Invalid", "%s", err.msg);
        json_decref(patch);
    } else {
        tn_reply_err(&rep, 405, "MethodNotAllowed",
                     "the server does not allow this method on the requested resource");
    }
    json_decref(scale);
    if (!want) goto out;
    json_t *r = tn_json_get(want, "spec.replicas");
    if (!json_is_integer(r) || json_integer_value(r) < 0) {
        tn_causes_add(&rep.causes, TN_CAUSE_INVALID, "spec.replicas",
                      "Invalid value: must be a non-negative integer");
        tn_reply_err(&rep, 422, "Invalid",
                     "Scale.autoscaling \"%s\" is invalid: spec.replicas: "
                     "Invalid value: must be a non-negative integer",
                     name);
        goto out;
    }
    const char *rv = tn_json_str(want, "metadata.resourceVersion", "");
    json_object_set(json_object_get(d, "spec"), "replicas", r);
    json_object_set_new(json_object_get(d, "metadata"), "resourceVersion", json_string(rv));
    struct tn_write_opts o;
    write_opts(req, &o);
    if (tn_obj_update(a, t, ns, name, d, &o, &rep) == 200) {
        json_t *nd = rep.obj;
        rep.obj = scale_of(nd);
        json_decref(nd);
    }
out:
    json_decref(want);
    json_decref(d);
    send_reply(req, t, &rep);
    tn_reply_free(&rep);
}

/* ---------------- routing ---------------- */

#define MAXSEG 12

static int split(char *path, char **seg)
{
    int n = 0;
    for (char *save = NULL, *p = strtok_r(path, "/", &save); p && n < MAXSEG;
         p = strtok_r(NULL, "/", &save))
        seg[n++] = p;
    return n;
}

static void handle_resource(struct tn_apiserver *a, struct tn_http_req *req, const char *group,
                            const char *version, char **seg, int n)
{
    const char *method = tn_http_method(req);
    const char *ns = NULL, *resname = NULL, *name = NULL, *sub = NULL;
    /* namespaces/<ns>/<resource>[/<name>[/<sub>]] or <resource>[/<name>[/<sub>]] */
    if (n >= 3 && strcmp(seg[0], "namespaces") == 0) {
        const struct tn_rtype *maybe = tn_registry_find(&a->reg, group, version, seg[2]);
        if (maybe && maybe->namespaced) {
            ns = seg[1];
            resname = seg[2];
            name = n > 3 ? seg[3] : NULL;
            sub = n > 4 ? seg[4] : NULL;
            if (n > 5) resname = NULL;
        }
    }
    if (!resname && !ns) {
        resname = n > 0 ? seg[0] : NULL;
        name = n > 1 ? seg[1] : NULL;
        sub = n > 2 ? seg[2] : NULL;
        if (n > 3) resname = NULL;
    }
    const struct tn_rtype *t = resname ? tn_registry_find(&a->reg, group, version, resname) : NULL;
    if (!t) {
        send_error(req, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    if (!t->namespaced && ns) {
        send_error(req, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    if (sub && !((strcmp(sub, "status") == 0 && t->has_status) ||
                 (strcmp(sub, "log") == 0 && strcmp(t->key, "core/pods") == 0) ||
                 (strcmp(sub, "scale") == 0 && strcmp(t->key, "apps/deployments") == 0) ||
                 (strcmp(sub, "finalize") == 0 && strcmp(t->key, "core/namespaces") == 0))) {
        send_error(req, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    if (!ns) ns = t->namespaced ? NULL : "";
    int is_watch = query_bool(req, "watch");
    if (!name) {
        if (strcmp(method, "GET") == 0) {
            if (is_watch)
                handle_watch(a, req, t, ns, NULL);
            else
                handle_list(a, req, t, ns);
        } else if (strcmp(method, "POST") == 0) {
            handle_write(a, req, t, ns ? ns : "default", NULL, 0);
        } else if (strcmp(method, "DELETE") == 0) {
            handle_deletecollection(a, req, t, ns);
        } else {
            send_error(req, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
        }
        return;
    }
    if (t->namespaced && !ns) {
        send_error(req, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    int status = sub && (strcmp(sub, "status") == 0 || strcmp(sub, "finalize") == 0);
    if (sub && strcmp(sub, "scale") == 0) {
        handle_scale(a, req, t, ns, name);
        return;
    }
    if (sub && strcmp(sub, "log") == 0) {
        if (strcmp(method, "GET") == 0)
            handle_pod_log(a, req, ns, name);
        else
            send_error(req, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
        return;
    }
    if (strcmp(method, "GET") == 0) {
        if (is_watch) {
            handle_watch(a, req, t, ns, name);
            return;
        }
        struct tn_reply rep;
        tn_reply_init(&rep);
        tn_obj_get(a, t, ns, name, &rep);
        if (rep.code == 200 && wants_table(req)) {
            json_t *items = json_pack("[O]", rep.obj);
            json_t *tb = tn_table_for(t, items, tn_http_query(req, "includeObject"), 1);
            json_decref(items);
            char rvs[32];
            snprintf(rvs, sizeof(rvs), "%lld", (long long)tn_store_rv(a->store));
            json_object_set_new(tn_json_obj_ensure(tb, "metadata"), "resourceVersion",
                                json_string(rvs));
            send_json(req, 200, tb);
        } else {
            send_reply(req, t, &rep);
        }
        tn_reply_free(&rep);
    } else if (strcmp(method, "PUT") == 0) {
        handle_write(a, req, t, ns, name, status);
    } else if (strcmp(method, "PATCH") == 0) {
        handle_patch(a, req, t, ns, name, status);
    } else if (strcmp(method, "DELETE") == 0 && !sub) {
        handle_delete(a, req, t, ns, name);
    } else {
        send_error(req, 405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
    }
}

void tn_handle(struct tn_http_req *req, void *arg)
{
    struct tn_apiserver *a = arg;
    const char *path = tn_http_path(req);
    const char *method = tn_http_method(req);
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/livez") == 0) {
        tn_http_respond(req, 200, "text/plain", "ok", 2);
        return;
    }
    if (!authorized(a, req)) {
        send_error(req, 401, "Unauthorized", "Unauthorized");
        return;
    }
    TN_DEBUG("request", "method", method, "path", path);
    if (strcmp(path, "/version") == 0) {
        send_json(req, 200,
                  json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", "1", "minor", "32",
                            "gitVersion", "v1.32.0-tandem", "gitCommit", "tandem", "gitTreeState",
                            "clean", "buildDate", "2026-11-22T00:00:00Z", "goVersion", "none",
                            "compiler", "gcc", "platform", "linux/amd64"));
        return;
    }
    if (strncmp(path, "/openapi/", 9) == 0) {
        handle_openapi(a, req, path);
        return;
    }
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", path);
    char *seg[MAXSEG];
    int n = split(buf, seg);
    if (n >= 1 && strcmp(seg[0], "api") == 0) {
        if (n == 1) {
            send_json(req, 200,
                      json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions",
                                "v1", "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                                "serverAddress", "127.0.0.1")); /* informational only */
            return;
        }
        if (strcmp(seg[1], "v1") == 0) {
            if (n == 2)
                send_json(req, 200, resource_list(a, "", "v1"));
            else
                handle_resource(a, req, "", "v1", seg + 2, n - 2);
            return;
        }
    } else if (n >= 1 && strcmp(seg[0], "apis") == 0) {
        if (n == 1) {
            send_json(req, 200, group_list(a));
            return;
        }
        if (n == 2) {
            json_t *g = api_group(a, seg[1]);
            if (g) {
                send_json(req, 200, g);
                return;
            }
        } else if (n == 3) {
            json_t *rl = resource_list(a, seg[1], seg[2]);
            if (json_array_size(json_object_get(rl, "resources"))) {
                send_json(req, 200, rl);
                return;
            }
            json_decref(rl);
        } else {
            handle_resource(a, req, seg[1], seg[2], seg + 3, n - 3);
            return;
        }
    }
    send_error(req, 404, "NotFound", "the server could not find the requested resource");
}
