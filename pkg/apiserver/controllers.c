/* The controllers one machine needs so that workloads behave as on a cluster: garbage collection
 * through ownerReferences (Background, Foreground, Orphan), namespace cleanup, CRD establishment
 * and cleanup, Deployments -> Pods (recreate on template change), and Endpoints for Services.
 * Work is keyed and de-duplicated, and runs on a short timer on the loop thread. */
#include "apiserver/internal.h"
#include "apiserver/selector.h"
#include "base/json.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void enqueue(struct tn_apiserver *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void schedule(struct tn_apiserver *a, int64_t ms)
{
    if (a->tick_scheduled || !a->http) return;
    a->tick_scheduled = 1;
    tn_http_timer_add(a->http, ms, tn_ctrl_tick, a);
}

static void enqueue(struct tn_apiserver *a, const char *fmt, ...)
{
    char key[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < a->ndirty; i++)
        if (strcmp(a->dirty[i], key) == 0) return;
    if (a->ndirty == a->capdirty) {
        size_t nc = a->capdirty ? a->capdirty * 2 : 64;
        char **nd = realloc(a->dirty, nc * sizeof(*nd));
        if (!nd) return;
        a->dirty = nd;
        a->capdirty = nc;
    }
    a->dirty[a->ndirty++] = strdup(key);
    schedule(a, 5);
}

static const struct tn_rtype *rt(struct tn_apiserver *a, const char *key)
{
    return tn_registry_find_key(&a->reg, key);
}

static int has_finalizer(const json_t *obj, const char *f)
{
    json_t *fs = tn_json_get(obj, "metadata.finalizers");
    size_t i;
    json_t *v;
    json_array_foreach(fs, i,
                       v) if (json_is_string(v) && strcmp(json_string_value(v), f) == 0) return 1;
    return 0;
}

static const char *controller_owner(const json_t *obj, const char *kind)
{
    json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) if (strcmp(tn_json_str(r, "kind", ""), kind) ==
                                       0) return tn_json_str(r, "name", NULL);
    return NULL;
}

void tn_ctrl_notify(struct tn_apiserver *a, const struct tn_rtype *t, const json_t *obj,
                    const json_t *old, const char *type)
{
    const char *ns = tn_json_str(obj, "metadata.namespace", "");
    const char *name = tn_json_str(obj, "metadata.name", "");
    const char *uid = tn_json_str(obj, "metadata.uid", "");
    int deleted = strcmp(type, "DELETED") == 0;
    if (deleted && *uid) enqueue(a, "gc|%s", uid);
    if (!deleted && tn_json_get(obj, "metadata.deletionTimestamp") &&
        (has_finalizer(obj, "orphan") || has_finalizer(obj, "foregroundDeletion")))
        enqueue(a, "fin|%s|%s|%s", t->key, ns, name);
    if (strcmp(t->key, "core/namespaces") == 0 && !deleted &&
        tn_json_get(obj, "metadata.deletionTimestamp"))
        enqueue(a, "ns|%s", name);
    if (strcmp(t->key, "apps/deployments") == 0) enqueue(a, "deploy|%s|%s", ns, name);
    if (strcmp(t->key, "core/pods") == 0) {
        const char *d = controller_owner(obj, "Deployment");
        if (d) enqueue(a, "deploy|%s|%s", ns, d);
        enqueue(a, "ep|%s", ns);
    }
    if (strcmp(t->key, "core/services") == 0) {
        enqueue(a, "ep|%s", ns);
        if (deleted) enqueue(a, "epdel|%s|%s", ns, name);
    }
    (void)old;
}

/* ---------------- garbage collection ---------------- */

static int owner_alive(struct tn_apiserver *a, const char *uid)
{
    return tn_store_uid_exists(a->store, uid);
}

/* Removes ownerReferences to uid from obj; returns how many remain. */
static size_t drop_ref(json_t *obj, const char *uid)
{
    json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    if (!json_is_array(refs)) return 0;
    for (size_t i = json_array_size(refs); i-- > 0;)
        if (strcmp(tn_json_str(json_array_get(refs, i), "uid", ""), uid) == 0)
            json_array_remove(refs, i);
    return json_array_size(refs);
}

struct gc_ctx {
    struct tn_apiserver *a;
    const char *owner_uid;
    int orphan;
    int count;
};

static int gc_dependent(const char *res, const char *ns, const char *name, void *arg)
{
    struct gc_ctx *c = arg;
    const struct tn_rtype *t = rt(c->a, res);
    if (!t) return 0;
    json_t *obj = tn_obj_load(c->a, t, ns, name);
    if (!obj) return 0;
    c->count++;
    struct tn_reply rep;
    tn_reply_init(&rep);
    /* keep the dependent when it still has a living owner, or when orphaning */
    int alive_other = 0;
    json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        const char *u = tn_json_str(r, "uid", "");
        if (strcmp(u, c->owner_uid) != 0 && owner_alive(c->a, u)) alive_other = 1;
    }
    if (c->orphan || alive_other) {
        drop_ref(obj, c->owner_uid);
        tn_obj_update(c->a, t, ns, name, obj, NULL, &rep);
    } else if (!tn_json_get(obj, "metadata.deletionTimestamp")) {
        struct tn_write_opts o = {0};
        o.grace = -1;
        o.propagation = "Background";
        tn_obj_delete(c->a, t, ns, name, &o, &rep);
        TN_INFO("garbage collected", "resource", res, "namespace", ns, "name", name, "owner",
                c->owner_uid);
    }
    tn_reply_free(&rep);
    json_decref(obj);
    return 0;
}

static void gc_owner_gone(struct tn_apiserver *a, const char *uid)
{
    struct gc_ctx c = {a, uid, 0, 0};
    tn_store_dependents(a->store, uid, gc_dependent, &c);
}

static void remove_finalizer(struct tn_apiserver *a, const struct tn_rtype *t, json_t *obj,
                             const char *f)
{
    json_t *fs = tn_json_get(obj, "metadata.finalizers");
    for (size_t i = json_array_size(fs); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(fs, i)) ?: "", f) == 0)
            json_array_remove(fs, i);
    struct tn_reply rep;
    tn_reply_init(&rep);
    tn_obj_update(a, t, tn_json_str(obj, "metadata.namespace", ""),
                  tn_json_str(obj, "metadata.name", ""), obj, NULL, &rep);
    tn_reply_free(&rep);
}

static void handle_finalizers(struct tn_apiserver *a, const char *key, const char *ns,
                              const char *name)
{
    const struct tn_rtype *t = rt(a, key);
    if (!t) return;
    json_t *obj = tn_obj_load(a, t, ns, name);
    if (!obj) return;
    const char *uid = tn_json_str(obj, "metadata.uid", "");
    if (has_finalizer(obj, "orphan")) {
        struct gc_ctx c = {a, uid, 1, 0};
        tn_store_dependents(a->store, uid, gc_dependent, &c);
        remove_finalizer(a, t, obj, "orphan");
    } else if (has_finalizer(obj, "foregroundDeletion")) {
        struct gc_ctx c = {a, uid, 0, 0};
        tn_store_dependents(a->store, uid, gc_dependent, &c);
        if (c.count == 0)
            remove_finalizer(a, t, obj, "foregroundDeletion");
        else
            schedule(a, 200), enqueue(a, "fin|%s|%s|%s", key, ns, name);
    }
    json_decref(obj);
}

static int print_dangling(const char *res, const char *ns, const char *name, void *arg)
{
    struct tn_apiserver *a = arg;
    const struct tn_rtype *t = rt(a, res);
    if (!t) return 0;
    json_t *obj = tn_obj_load(a, t, ns, name);
    if (!obj) return 0;
    json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        const char *u = tn_json_str(r, "uid", "");
        if (!owner_alive(a, u)) {
            enqueue(a, "gc|%s", u);
        }
    }
    json_decref(obj);
    return 0;
}

static void gc_sweep(void *arg)
{
    struct tn_apiserver *a = arg;
    tn_store_dangling_owners(a->store, print_dangling, a);
    tn_http_timer_add(a->http, 30000, gc_sweep, a);
}

/* ---------------- namespaces ---------------- */

static int ns_delete_each(json_t *obj, void *arg)
{
    void **args = arg;
    struct tn_apiserver *a = args[0];
    const struct tn_rtype *t = args[1];
    int *left = args[2];
    (*left)++;
    if (tn_json_get(obj, "metadata.deletionTimestamp")) return 0;
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts o = {0};
    o.grace = -1;
    tn_obj_delete(a, t, tn_json_str(obj, "metadata.namespace", ""),
                  tn_json_str(obj, "metadata.name", ""), &o, &rep);
    tn_reply_free(&rep);
    return 0;
}

static void sync_namespace(struct tn_apiserver *a, const char *name)
{
    const struct tn_rtype *nst = rt(a, "core/namespaces");
    json_t *ns = tn_obj_load(a, nst, "", name);
    if (!ns || !tn_json_get(ns, "metadata.deletionTimestamp")) {
        json_decref(ns);
        return;
    }
    int left = 0;
    char seen[64][200];
    int nseen = 0;
    for (const struct tn_rtype *t = a->reg.head; t; t = t->next) {
        if (!t->namespaced) continue;
        int dup = 0;
        for (int i = 0; i < nseen; i++)
            if (strcmp(seen[i], t->key) == 0) dup = 1;
        if (dup || nseen >= 64) continue;
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", t->key);
        void *args[3] = {a, (void *)t, &left};
        tn_obj_each(a, t, name, ns_delete_each, args);
    }
    if (left == 0) {
        json_t *spec = json_object_get(ns, "spec");
        json_object_del(spec, "finalizers");
        json_t *meta = json_object_get(ns, "metadata");
        json_object_del(meta, "finalizers");
        struct tn_reply rep;
        tn_reply_init(&rep);
        struct tn_write_opts o = {0};
        o.grace = 0;
        /* the namespace itself: remove without going through Terminating again */
        json_t *old = json_deep_copy(ns);
        int64_t rv = tn_store_next_rv(a->store);
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
        json_object_set_new(meta, "resourceVersion", json_string(rvs));
        tn_store_delete(a->store, nst->key, "", name, NULL);
        tn_watch_publish(a->hub, nst, "DELETED", rv, ns, old);
        json_decref(old);
        tn_reply_free(&rep);
        (void)o;
        TN_INFO("namespace deleted", "namespace", name);
    } else {
        enqueue(a, "ns|%s", name);
    }
    json_decref(ns);
}

/* ---------------- CRDs ---------------- */

int tn_ctrl_crd_established(struct tn_apiserver *a, json_t *crd, struct tn_reply *rep)
{
    struct tn_err err = {0};
    const char *name = tn_json_str(crd, "metadata.name", "");
    /* an updated CRD replaces its types: end the watches on the old ones */
    for (const struct tn_rtype *t = a->reg.head; t; t = t->next)
        if (!t->builtin && strcmp(t->crd_name, name) == 0) {
            tn_watch_close_key(a->hub, t->key);
            break;
        }
    if (tn_registry_add_crd(&a->reg, crd, &err))
        return tn_reply_err(rep, 500, "InternalError", "cannot register %s: %s", name, err.msg);
    char now[40];
    tn_time_now_rfc3339(now, sizeof(now));
    json_t *st = tn_json_obj_ensure(crd, "status");
    json_t *names = json_deep_copy(tn_json_get(crd, "spec.names"));
    if (!json_object_get(names, "singular")) {
        const struct tn_rtype *t = NULL;
        for (t = a->reg.head; t && strcmp(t->crd_name, name); t = t->next)
            ;
        if (t) json_object_set_new(names, "singular", json_string(t->singular));
    }
    if (!json_object_get(names, "listKind"))
        json_object_set_new(names, "listKind",
                            json_pack("s++", tn_json_str(crd, "spec.names.kind", ""), "List", ""));
    json_object_set_new(st, "acceptedNames", names ? names : json_object());
    json_t *versions = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(tn_json_get(crd, "spec.versions"), i, v) if (tn_json_bool(v, "storage", 0))
        json_array_append_new(versions, json_string(tn_json_str(v, "name", "")));
    json_object_set_new(st, "storedVersions", versions);
    json_object_set_new(
        st, "conditions",
        json_pack("[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s}]", "type", "NamesAccepted",
                  "status", "True", "reason", "NoConflicts", "message", "no conflicts found",
                  "lastTransitionTime", now, "type", "Established", "status", "True", "reason",
                  "InitialNamesAccepted", "message", "the initial names have been accepted",
                  "lastTransitionTime", now));
    return 0;
}

static int crd_delete_each(json_t *obj, void *arg)
{
    void **args = arg;
    struct tn_apiserver *a = args[0];
    const struct tn_rtype *t = args[1];
    int64_t rv = tn_store_next_rv(a->store);
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_object_set_new(tn_json_obj_ensure(obj, "metadata"), "resourceVersion", json_string(rvs));
    tn_store_delete(a->store, t->key, tn_json_str(obj, "metadata.namespace", ""),
                    tn_json_str(obj, "metadata.name", ""), NULL);
    tn_watch_publish(a->hub, t, "DELETED", rv, obj, NULL);
    tn_ctrl_notify(a, t, obj, NULL, "DELETED");
    return 0;
}

void tn_ctrl_crd_cleanup(struct tn_apiserver *a, const json_t *crd)
{
    const char *name = tn_json_str(crd, "metadata.name", "");
    const struct tn_rtype *t = NULL;
    for (const struct tn_rtype *x = a->reg.head; x; x = x->next)
        if (!x->builtin && strcmp(x->crd_name, name) == 0 && (!t || x->storage)) t = x;
    if (t) {
        void *args[2] = {a, (void *)t};
        tn_store_begin(a->store);
        tn_obj_each(a, t, NULL, crd_delete_each, args);
        tn_store_commit(a->store);
        tn_watch_close_key(a->hub, t->key);
    }
    tn_registry_remove_crd(&a->reg, name);
    TN_INFO("custom resource definition removed with its objects", "crd", name);
}

/* ---------------- deployments ---------------- */

static unsigned long long fnv64(const char *s)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct pods_ctx {
    const char *uid;
    json_t *pods;
};

static int collect_owned(json_t *obj, void *arg)
{
    struct pods_ctx *c = arg;
    json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) if (strcmp(tn_json_str(r, "uid", ""), c->uid) == 0)
    {
        json_array_append(c->pods, obj);
        break;
    }
    return 0;
}

static int pod_ready(const json_t *pod)
{
    json_t *conds = tn_json_get(pod, "status.conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) if (strcmp(tn_json_str(c, "type", ""), "Ready") ==
                                        0) return strcmp(tn_json_str(c, "status", ""), "True") == 0;
    return 0;
}

static void set_condition(json_t *conds, const char *type, const char *status, const char *reason,
                          const char *msg, const json_t *old_conds)
{
    char now[40];
    tn_time_now_rfc3339(now, sizeof(now));
    const char *ltt = now;
    size_t i;
    json_t *c;
    json_array_foreach(old_conds, i, c) if (strcmp(tn_json_str(c, "type", ""), type) == 0 &&
                                            strcmp(tn_json_str(c, "status", ""), status) == 0) ltt =
        tn_json_str(c, "lastTransitionTime", now);
    json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status",
                                           status, "reason", reason, "message", msg,
                                           "lastTransitionTime", ltt, "lastUpdateTime", ltt));
}

static void sync_deployment(struct tn_apiserver *a, const char *ns, const char *name)
{
    const struct tn_rtype *dt = rt(a, "apps/deployments"), *pt = rt(a, "core/pods");
    json_t *d = tn_obj_load(a, dt, ns, name);
    if (!d || tn_json_get(d, "metadata.deletionTimestamp")) {
        json_decref(d);
        return;
    }
    const char *uid = tn_json_str(d, "metadata.uid", "");
    json_t *tmpl = tn_json_get(d, "spec.template");
    char *tt = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS);
    char hash[24];
    snprintf(hash, sizeof(hash), "%010llx", fnv64(tt ? tt : "") & 0xffffffffffULL);
    free(tt);
    long replicas = (long)tn_json_int(d, "spec.replicas", 1);
    struct pods_ctx pc = {uid, json_array()};
    tn_obj_each(a, pt, ns, collect_owned, &pc);
    long current = 0, ready = 0, terminating = 0;
    json_t *keep = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pc.pods, i, p)
    {
        if (tn_json_get(p, "metadata.deletionTimestamp")) {
            terminating++;
            continue;
        }
        const char *ph = tn_json_str(p, "metadata.labels.pod-template-hash", "");
        const char *phase = tn_json_str(p, "status.phase", "");
        struct tn_reply rep;
        tn_reply_init(&rep);
        if (strcmp(ph, hash) != 0 || strcmp(phase, "Failed") == 0 ||
            strcmp(phase, "Succeeded") == 0) {
            /* template changed (recreate) or the pod ended: replace it */
            struct tn_write_opts o = {0};
            o.grace = -1;
            tn_obj_delete(a, pt, ns, tn_json_str(p, "metadata.name", ""), &o, &rep);
            terminating++;
        } else if (current >= replicas) {
            struct tn_write_opts o = {0};
            o.grace = -1;
            tn_obj_delete(a, pt, ns, tn_json_str(p, "metadata.name", ""), &o, &rep);
            terminating++;
        } else {
            current++;
            if (pod_ready(p)) ready++;
            json_array_append(keep, p);
        }
        tn_reply_free(&rep);
    }
    for (long k = current; k < replicas; k++) {
        char pname[300], sfx[6];
        tn_rand_suffix(sfx, 5);
        snprintf(pname, sizeof(pname), "%s-%s-%s", name, hash, sfx);
        json_t *pod =
            json_pack("{s:s,s:s,s:{s:s,s:s},s:O}", "apiVersion", "v1", "kind", "Pod", "metadata",
                      "name", pname, "namespace", ns, "spec",
                      tn_json_get(tmpl, "spec") ? tn_json_get(tmpl, "spec") : json_object());
        json_t *meta = json_object_get(pod, "metadata");
        json_t *labels = json_deep_copy(tn_json_get(tmpl, "metadata.labels"));
        if (!labels) labels = json_object();
        json_object_set_new(labels, "pod-template-hash", json_string(hash));
        json_object_set_new(meta, "labels", labels);
        json_t *ann = tn_json_get(tmpl, "metadata.annotations");
        if (ann) json_object_set(meta, "annotations", ann);
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "apps/v1",
                                      "kind", "Deployment", "name", name, "uid", uid, "controller",
                                      1, "blockOwnerDeletion", 1));
        struct tn_reply rep;
        tn_reply_init(&rep);
        if (tn_obj_create(a, pt, ns, pod, NULL, &rep) >= 400)
            TN_WARN("deployment cannot create pod", "namespace", ns, "deployment", name, "error",
                    rep.msg);
        tn_reply_free(&rep);
        json_decref(pod);
    }
    /* status */
    json_t *nd = json_deep_copy(d);
    json_t *old_conds = tn_json_get(d, "status.conditions");
    json_t *st = json_object();
    long updated = replicas > current ? current : replicas;
    json_object_set_new(st, "observedGeneration",
                        json_integer(tn_json_int(d, "metadata.generation", 1)));
    json_object_set_new(st, "replicas", json_integer(current + terminating));
    json_object_set_new(st, "updatedReplicas", json_integer(updated));
    json_object_set_new(st, "readyReplicas", json_integer(ready));
    json_object_set_new(st, "availableReplicas", json_integer(ready));
    if (replicas - ready > 0)
        json_object_set_new(st, "unavailableReplicas", json_integer(replicas - ready));
    json_t *conds = json_array();
    if (ready >= replicas)
        set_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                      "Deployment has minimum availability.", old_conds);
    else
        set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", old_conds);
    char msg[512];
    if (ready >= replicas && current == replicas) {
        snprintf(msg, sizeof(msg), "Deployment \"%s\" has successfully progressed.", name);
        set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable", msg, old_conds);
    } else {
        snprintf(msg, sizeof(msg), "Deployment \"%s\" is progressing: %ld of %ld pods ready.", name,
                 ready, replicas);
        set_condition(conds, "Progressing", "True", "ReplicaSetUpdated", msg, old_conds);
    }
    json_object_set_new(st, "conditions", conds);
    json_object_set_new(nd, "status", st);
    struct tn_reply rep;
    tn_reply_init(&rep);
    struct tn_write_opts o = {0};
    o.status_only = 1;
    tn_obj_update(a, dt, ns, name, nd, &o, &rep);
    tn_reply_free(&rep);
    json_decref(nd);
    json_decref(keep);
    json_decref(pc.pods);
    json_decref(d);
}

/* ---------------- endpoints ---------------- */

struct ep_ctx {
    struct tn_apiserver *a;
    const char *ns;
    json_t *pods;
};

static int collect_all(json_t *obj, void *arg)
{
    json_array_append((json_t *)arg, obj);
    return 0;
}

static json_int_t resolve_port(const json_t *pod, const json_t *target)
{
    if (json_is_integer(target)) return json_integer_value(target);
    if (!json_is_string(target)) return 0;
    json_t *ctrs = tn_json_get(pod, "spec.containers");
    size_t i, j;
    json_t *c, *p;
    json_array_foreach(ctrs, i, c)
        json_array_foreach(json_object_get(c, "ports"), j,
                           p) if (strcmp(tn_json_str(p, "name", ""), json_string_value(target)) ==
                                  0) return json_integer_value(json_object_get(p, "containerPort"));
    return 0;
}

static int sync_service_endpoints(json_t *svc, void *arg)
{
    struct ep_ctx *c = arg;
    const struct tn_rtype *et = rt(c->a, "core/endpoints");
    const char *name = tn_json_str(svc, "metadata.name", "");
    json_t *sel = tn_json_get(svc, "spec.selector");
    if (!json_is_object(sel) || json_object_size(sel) == 0)
        return 0; /* endpoints of selector-less services are managed by their users */
    struct tn_labelsel *ls = NULL;
    struct tn_err err;
    if (tn_labelsel_from_map(sel, &ls, &err)) return 0;
    json_t *ready = json_array(), *notready = json_array(), *ports = json_array();
    json_t *first = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(c->pods, i, p)
    {
        if (!tn_labelsel_matches(ls, p) || tn_json_get(p, "metadata.deletionTimestamp")) continue;
        const char *ip = tn_json_str(p, "status.podIP", NULL);
        if (!ip || !*ip) continue;
        json_t *addr = json_pack("{s:s,s:{s:s,s:s,s:s,s:s}}", "ip", ip, "targetRef", "kind", "Pod",
                                 "namespace", c->ns, "name", tn_json_str(p, "metadata.name", ""),
                                 "uid", tn_json_str(p, "metadata.uid", ""));
        const char *node = tn_json_str(p, "spec.nodeName", NULL);
        if (node && *node) json_object_set_new(addr, "nodeName", json_string(node));
        json_array_append_new(pod_ready(p) ? ready : notready, addr);
        if (!first) first = p;
    }
    json_t *sports = tn_json_get(svc, "spec.ports");
    json_array_foreach(sports, i, p)
    {
        json_t *tp = json_object_get(p, "targetPort");
        json_int_t port = first ? resolve_port(first, tp) : 0;
        if (!port)
            port = json_is_integer(tp) ? json_integer_value(tp)
                                       : json_integer_value(json_object_get(p, "port"));
        json_t *ep =
            json_pack("{s:I,s:s}", "port", port, "protocol", tn_json_str(p, "protocol", "TCP"));
        if (tn_json_str(p, "name", NULL))
            json_object_set_new(ep, "name", json_string(tn_json_str(p, "name", "")));
        json_array_append_new(ports, ep);
    }
    json_t *subsets = json_array();
    if (json_array_size(ready) || json_array_size(notready)) {
        json_t *s = json_pack("{s:O}", "ports", ports);
        if (json_array_size(ready)) json_object_set(s, "addresses", ready);
        if (json_array_size(notready)) json_object_set(s, "notReadyAddresses", notready);
        json_array_append_new(subsets, s);
    }
    json_t *cur = tn_obj_load(c->a, et, c->ns, name);
    struct tn_reply rep;
    tn_reply_init(&rep);
    if (!cur) {
        json_t *ep = json_pack("{s:s,s:s,s:{s:s,s:s},s:O}", "apiVersion", "v1", "kind", "Endpoints",
                               "metadata", "name", name, "namespace", c->ns, "subsets", subsets);
        json_t *labels = tn_json_get(svc, "metadata.labels");
        if (labels) json_object_set(json_object_get(ep, "metadata"), "labels", labels);
        tn_obj_create(c->a, et, c->ns, ep, NULL, &rep);
        json_decref(ep);
    } else if (!json_equal(json_object_get(cur, "subsets") ? json_object_get(cur, "subsets")
                                                           : json_array(),
                           subsets)) {
        json_object_set(cur, "subsets", subsets);
        tn_obj_update(c->a, et, c->ns, name, cur, NULL, &rep);
    }
    tn_reply_free(&rep);
    json_decref(cur);
    json_decref(subsets);
    json_decref(ready);
    json_decref(notready);
    json_decref(ports);
    tn_labelsel_free(ls);
    return 0;
}

static void sync_endpoints(struct tn_apiserver *a, const char *ns)
{
    struct ep_ctx c = {a, ns, json_array()};
    tn_obj_each(a, rt(a, "core/pods"), ns, collect_all, c.pods);
    tn_obj_each(a, rt(a, "core/services"), ns, sync_service_endpoints, &c);
    json_decref(c.pods);
}

/* ---------------- the loop ---------------- */

void tn_ctrl_tick(void *arg)
{
    struct tn_apiserver *a = arg;
    a->tick_scheduled = 0;
    /* take the current batch; work done now may enqueue more for the next tick */
    char **batch = a->dirty;
    size_t n = a->ndirty;
    a->dirty = NULL;
    a->ndirty = a->capdirty = 0;
    for (size_t i = 0; i < n; i++) {
        char *k = batch[i];
        char *parts[4] = {0};
        int np = 0;
        for (char *save = NULL, *p = strtok_r(k, "|", &save); p && np < 4;
             p = strtok_r(NULL, "|", &save))
            parts[np++] = p;
        /* empty fields (cluster-scoped namespace) collapse in strtok: handle by count */
        if (strcmp(parts[0], "gc") == 0 && np >= 2)
            gc_owner_gone(a, parts[1]);
        else if (strcmp(parts[0], "fin") == 0 && np == 4)
            handle_finalizers(a, parts[1], parts[2], parts[3]);
        else if (strcmp(parts[0], "fin") == 0 && np == 3)
            handle_finalizers(a, parts[1], "", parts[2]);
        else if (strcmp(parts[0], "ns") == 0 && np >= 2)
            sync_namespace(a, parts[1]);
        else if (strcmp(parts[0], "deploy") == 0 && np >= 3)
            sync_deployment(a, parts[1], parts[2]);
        else if (strcmp(parts[0], "ep") == 0 && np >= 2)
            sync_endpoints(a, parts[1]);
        else if (strcmp(parts[0], "epdel") == 0 && np >= 3) {
            struct tn_reply rep;
            tn_reply_init(&rep);
            struct tn_write_opts o = {0};
            o.grace = -1;
            if (tn_store_get(a->store, "core/endpoints", parts[1], parts[2], NULL, NULL, NULL) == 0)
                tn_obj_delete(a, rt(a, "core/endpoints"), parts[1], parts[2], &o, &rep);
            tn_reply_free(&rep);
        }
        free(k);
    }
    free(batch);
    if (a->ndirty) schedule(a, 20);
}

static void bookmarks(void *arg)
{
    struct tn_apiserver *a = arg;
    tn_watch_bookmarks(a->hub, tn_store_rv(a->store));
    tn_http_timer_add(a->http, a->cfg.bookmark_ms, bookmarks, a);
}

void tn_ctrl_start(struct tn_apiserver *a)
{
    tn_http_timer_add(a->http, 1000, gc_sweep, a);
    tn_http_timer_add(a->http, a->cfg.bookmark_ms, bookmarks, a);
    /* resume work that was pending when the server stopped */
    const struct tn_rtype *nst = rt(a, "core/namespaces");
    json_t *all = json_array();
    tn_obj_each(a, nst, NULL, collect_all, all);
    size_t i;
    json_t *ns;
    json_array_foreach(all, i, ns)
    {
        if (tn_json_get(ns, "metadata.deletionTimestamp"))
            enqueue(a, "ns|%s", tn_json_str(ns, "metadata.name", ""));
        enqueue(a, "ep|%s", tn_json_str(ns, "metadata.name", ""));
    }
    json_decref(all);
    json_t *deps = json_array();
    tn_obj_each(a, rt(a, "apps/deployments"), NULL, collect_all, deps);
    json_t *d;
    json_array_foreach(deps, i, d)
        enqueue(a, "deploy|%s|%s", tn_json_str(d, "metadata.namespace", ""),
                tn_json_str(d, "metadata.name", ""));
    json_decref(deps);
}
