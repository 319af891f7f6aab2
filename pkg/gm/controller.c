/* The GM controller framework: a manager of shared informers, workqueues and worker pools that
 * turns watch events into "namespace/name" keys and keys into reconcile calls, with
 * controller-runtime's result mapping, metrics and log keys. See controller.h. */
#include "gm/controller.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/timeutil.h"
#include "kube/conditions.h"
#include "kube/events.h"
#include "kube/workqueue.h"

#define MAX_HANDLERS 16 /* tn_informer_add_handlers' limit */

struct inf_entry {
    struct tn_kube_gvr gvr; /* points at the strings below */
    char *group, *version, *resource, *ns, *lsel, *fsel;
    struct tn_informer *inf;
    int nhandlers;
    struct inf_entry *next;
};

enum harg_kind { H_PRIMARY, H_OWNED, H_MAPPED, H_INERT };

/* The arg of one handler set a controller installed on an informer. */
struct harg {
    struct tn_controller *c;
    enum harg_kind kind;
    tn_map_fn map;
    void *arg;
    struct harg *next;
};

struct tn_controller {
    struct tn_mgr *m;
    char *name;
    char *kind;  /* primary_kind, may be NULL */
    char *group; /* primary group */
    tn_reconcile_fn fn;
    void *arg;
    int workers;
    struct tn_wq *q;
    pthread_t *threads;
    int nthreads;
    struct harg *hargs;
    struct tn_controller *next;
};

struct tn_mgr {
    struct tn_kube_client *client;
    struct tn_metrics *metrics;
    int own_metrics;
    struct tn_event_recorder *recorder;
    int own_recorder;
    char *ns;
    int64_t sync_timeout_ms;
    int64_t drain_timeout_ms;
    pthread_mutex_t mu; /* informers list (tn_mgr_informer after start vs tn_mgr_get) */
    struct inf_entry *infs;
    struct tn_controller *ctrls;
    int started, stopped;
    struct tn_metric *m_total, *m_errors, *m_time, *m_max, *m_active;
};

struct tn_rctx {
    struct tn_controller *c;
    const char *ns, *name;
    char id[37];
};

static int str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* ---- manager ------------------------------------------------------------------------------ */

static const double k_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3,  0.35,
                                   0.4,   0.45, 0.5,   0.6,  0.7,  0.8,  0.9,  1.0,  1.25, 1.5,
                                   1.75,  2.0,  2.5,   3.0,  3.5,  4.0,  4.5,  5.0,  6.0,  7.0,
                                   8.0,   9.0,  10.0,  15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0};

struct tn_mgr *tn_mgr_new(struct tn_kube_client *client, const struct tn_mgr_opts *opts,
                          struct tn_err *err)
{
    static const struct tn_mgr_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!client) {
        tn_err_set(err, TN_EINVAL, "controller manager: a client is required");
        return NULL;
    }
    struct tn_mgr *m = calloc(1, sizeof(*m));
    if (!m) goto oom;
    pthread_mutex_init(&m->mu, NULL);
    m->client = client;
    m->sync_timeout_ms = opts->cache_sync_timeout_ms > 0 ? opts->cache_sync_timeout_ms : 120000;
    m->drain_timeout_ms = opts->drain_timeout_ms > 0 ? opts->drain_timeout_ms : 30000;
    if (opts->namespace_ && *opts->namespace_ && !(m->ns = strdup(opts->namespace_))) goto oom;
    m->metrics = opts->metrics;
    if (!m->metrics) {
        if (!(m->metrics = tn_metrics_new())) goto oom;
        m->own_metrics = 1;
    }
    static const char *const lc[] = {"controller", NULL};
    static const char *const lcr[] = {"controller", "result", NULL};
    m->m_total = tn_metrics_counter(m->metrics, "controller_runtime_reconcile_total",
                                    "Total number of reconciliations per controller", lcr);
    m->m_errors = tn_metrics_counter(m->metrics, "controller_runtime_reconcile_errors_total",
                                     "Total number of reconciliation errors per controller", lc);
    m->m_time = tn_metrics_histogram(m->metrics, "controller_runtime_reconcile_time_seconds",
                                     "Length of time per reconciliation per controller", lc,
                                     k_buckets, sizeof(k_buckets) / sizeof(k_buckets[0]));
    m->m_max = tn_metrics_gauge(m->metrics, "controller_runtime_max_concurrent_reconciles",
                                "Maximum number of concurrent reconciles per controller", lc);
    m->m_active = tn_metrics_gauge(m->metrics, "controller_runtime_active_workers",
                                   "Number of currently used workers per controller", lc);
    if (opts->recorder) {
        m->recorder = opts->recorder;
    } else if (!opts->no_events) {
        struct tn_event_recorder_opts eo = {
            .client = client,
            .component = opts->component && *opts->component ? opts->component : "tandem-gm",
            .metrics = m->metrics,
        };
        m->recorder = tn_event_recorder_new(&eo, err);
        if (!m->recorder) {
            tn_err_prefix(err, "controller manager");
            tn_mgr_free(m);
            return NULL;
        }
        m->own_recorder = 1;
    }
    return m;
oom:
    tn_err_set(err, TN_ENOMEM, "controller manager: out of memory");
    tn_mgr_free(m);
    return NULL;
}

static void gvr_str(const struct tn_kube_gvr *r, char *out, size_t n)
{
    if (r->group && *r->group)
        snprintf(out, n, "%s.%s.%s", r->resource, r->version, r->group);
    else
        snprintf(out, n, "%s.%s", r->resource, r->version);
}

static int gvr_eq(const struct tn_kube_gvr *a, const struct tn_kube_gvr *b)
{
    return str_eq(a->group, b->group) && str_eq(a->version, b->version) &&
           str_eq(a->resource, b->resource);
}

static void inf_entry_free(struct inf_entry *e)
{
    if (!e) return;
    if (e->inf) tn_informer_free(e->inf);
    free(e->group);
    free(e->version);
    free(e->resource);
    free(e->ns);
    free(e->lsel);
    free(e->fsel);
    free(e);
}

/* Caller holds m->mu. */
static struct inf_entry *find_entry(struct tn_mgr *m, const struct tn_kube_gvr *gvr, const char *ns,
                                    const char *lsel, const char *fsel)
{
    for (struct inf_entry *e = m->infs; e; e = e->next)
        if (gvr_eq(&e->gvr, gvr) && str_eq(e->ns, ns) && str_eq(e->lsel, lsel) &&
            str_eq(e->fsel, fsel))
            return e;
    return NULL;
}

static struct inf_entry *get_entry(struct tn_mgr *m, const struct tn_kube_gvr *gvr,
                                   const struct tn_informer_opts *opts, struct tn_err *err)
{
    struct tn_informer_opts o = {0};
    if (opts)
        o = *opts;
    else
        o.namespace_ = m->ns;
    o.store_text = 1;
    if (!gvr || !gvr->version || !gvr->resource) {
        tn_err_set(err, TN_EINVAL, "controller manager: informer needs a version and a resource");
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    struct inf_entry *e = find_entry(m, gvr, o.namespace_, o.label_selector, o.field_selector);
    if (e) {
        pthread_mutex_unlock(&m->mu);
        return e;
    }
    char what[256];
    gvr_str(gvr, what, sizeof(what));
    e = calloc(1, sizeof(*e));
    if (!e || !(e->group = strdup(gvr->group ? gvr->group : "")) ||
        !(e->version = strdup(gvr->version)) || !(e->resource = strdup(gvr->resource)) ||
        (o.namespace_ && *o.namespace_ && !(e->ns = strdup(o.namespace_))) ||
        (o.label_selector && *o.label_selector && !(e->lsel = strdup(o.label_selector))) ||
        (o.field_selector && *o.field_selector && !(e->fsel = strdup(o.field_selector)))) {
        tn_err_set(err, TN_ENOMEM, "controller manager: informer for %s: out of memory", what);
        goto fail;
    }
    e->gvr = (struct tn_kube_gvr){e->group, e->version, e->resource};
    o.namespace_ = e->ns;
    o.label_selector = e->lsel;
    o.field_selector = e->fsel;
    e->inf = tn_informer_new(m->client, &e->gvr, &o, err);
    if (!e->inf) {
        tn_err_prefix(err, "controller manager: informer for %s", what);
        goto fail;
    }
    if (m->started) {
        /* Late informer: start it now and wait for it like tn_mgr_start would. */
        if (tn_informer_start(e->inf, err) != 0) {
            tn_err_prefix(err, "controller manager: informer for %s", what);
            goto fail;
        }
        if (!tn_informer_wait_synced(e->inf, m->sync_timeout_ms)) {
            tn_err_set(err, TN_EIO,
                       "controller manager: timed out after %lld ms waiting for the cache of %s "
                       "to sync",
                       (long long)m->sync_timeout_ms, what);
            goto fail;
        }
    }
    e->next = m->infs;
    m->infs = e;
    pthread_mutex_unlock(&m->mu);
    return e;
fail:
    pthread_mutex_unlock(&m->mu);
    inf_entry_free(e);
    return NULL;
}

struct tn_informer *tn_mgr_informer(struct tn_mgr *m, const struct tn_kube_gvr *gvr,
                                    const struct tn_informer_opts *opts, struct tn_err *err)
{
    struct inf_entry *e = get_entry(m, gvr, opts, err);
    return e ? e->inf : NULL;
}

json_t *tn_mgr_get(struct tn_mgr *m, const struct tn_kube_gvr *gvr, const char *ns,
                   const char *name)
{
    /* The list only grows and entries live until tn_mgr_free: walk it without the lock, so
     * reads (which parse stored text) do not serialize the workers. */
    pthread_mutex_lock(&m->mu);
    struct inf_entry *head = m->infs;
    pthread_mutex_unlock(&m->mu);
    /* The unrestricted informer first; otherwise the object may be in any restricted one. */
    for (int pass = 0; pass < 2; pass++) {
        for (struct inf_entry *e = head; e; e = e->next) {
            if (!gvr_eq(&e->gvr, gvr) || (e->ns && !str_eq(e->ns, ns))) continue;
            int restricted = e->lsel || e->fsel;
            if (restricted != pass) continue;
            json_t *o = tn_informer_get(e->inf, ns, name);
            if (o || !restricted) return o;
        }
    }
    return NULL;
}

struct tn_kube_client *tn_mgr_client(struct tn_mgr *m)
{
    return m->client;
}

struct tn_metrics *tn_mgr_metrics(struct tn_mgr *m)
{
    return m->metrics;
}

struct tn_event_recorder *tn_mgr_recorder(struct tn_mgr *m)
{
    return m->recorder;
}

struct tn_controller *tn_mgr_controller(struct tn_mgr *m, const char *name)
{
    for (struct tn_controller *c = m->ctrls; c; c = c->next)
        if (c->fn && strcmp(c->name, name) == 0) return c; /* fn NULL: a failed, inert one */
    return NULL;
}

/* ---- event handlers: objects to keys ------------------------------------------------------ */

int tn_controller_enqueue(struct tn_controller *c, const char *ns, const char *name)
{
    return tn_controller_enqueue_after(c, ns, name, 0);
}

int tn_controller_enqueue_after(struct tn_controller *c, const char *ns, const char *name,
                                int64_t delay_ms)
{
    if (!name || !*name) return TN_EINVAL;
    char key[512];
    int n = ns && *ns ? snprintf(key, sizeof(key), "%s/%s", ns, name)
                      : snprintf(key, sizeof(key), "%s", name);
    if (n < 0 || (size_t)n >= sizeof(key)) return TN_ETOOBIG;
    if (delay_ms > 0) return tn_wq_add_after(c->q, key, delay_ms * 1000000LL);
    return tn_wq_add(c->q, key);
}

const char *tn_controller_name(const struct tn_controller *c)
{
    return c->name;
}

struct tn_mgr *tn_controller_mgr(struct tn_controller *c)
{
    return c->m;
}

/* The group of an apiVersion ("v1" -> "", "sedna.io/v1alpha1" -> "sedna.io"). */
static int api_group_is(const char *api_version, const char *group)
{
    const char *slash = strchr(api_version, '/');
    size_t gl = slash ? (size_t)(slash - api_version) : 0;
    size_t wl = group ? strlen(group) : 0;
    return gl == wl && (gl == 0 || strncmp(api_version, group, gl) == 0);
}

static void enqueue_owner(struct tn_controller *c, const json_t *obj)
{
    const json_t *refs = tn_json_get(obj, "metadata.ownerReferences");
    if (!json_is_array(refs)) return;
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        if (!tn_json_bool(ref, "controller", 0)) continue;
        if (!c->kind || strcmp(tn_json_str(ref, "kind", ""), c->kind) != 0) continue;
        if (!api_group_is(tn_json_str(ref, "apiVersion", ""), c->group)) continue;
        tn_controller_enqueue(c, tn_json_str(obj, "metadata.namespace", ""),
                              tn_json_str(ref, "name", ""));
        return; /* at most one controller owner */
    }
}

static void dispatch(struct harg *h, const json_t *obj)
{
    switch (h->kind) {
    case H_PRIMARY:
        tn_controller_enqueue(h->c, tn_json_str(obj, "metadata.namespace", ""),
                              tn_json_str(obj, "metadata.name", ""));
        break;
    case H_OWNED:
        enqueue_owner(h->c, obj);
        break;
    case H_MAPPED:
        h->map(h->c, obj, h->arg);
        break;
    case H_INERT:
        break;
    }
}

static void on_add(const json_t *obj, void *arg)
{
    dispatch(arg, obj);
}

static void on_update(const json_t *old_obj, const json_t *new_obj, void *arg)
{
    struct harg *h = arg;
    /* A child may have changed owner (or a mapped object its targets): both sides. */
    if (h->kind != H_PRIMARY && old_obj != new_obj) dispatch(h, old_obj);
    dispatch(h, new_obj);
}

static void on_del(const json_t *obj, void *arg)
{
    dispatch(arg, obj);
}

static int install(struct tn_controller *c, const struct tn_kube_gvr *gvr, const char *lsel,
                   enum harg_kind kind, tn_map_fn map, void *arg, struct tn_err *err)
{
    struct tn_mgr *m = c->m;
    struct tn_informer_opts o = {.namespace_ = m->ns, .label_selector = lsel};
    struct inf_entry *e = get_entry(m, gvr, &o, err);
    if (!e) return err ? err->code : TN_EIO;
    char what[256];
    gvr_str(gvr, what, sizeof(what));
    if (e->nhandlers >= MAX_HANDLERS)
        return tn_err_set(err, TN_ENOMEM,
                          "controller %s: the informer of %s already has %d handler sets", c->name,
                          what, MAX_HANDLERS);
    struct harg *h = calloc(1, sizeof(*h));
    if (!h) return tn_err_set(err, TN_ENOMEM, "controller %s: out of memory", c->name);
    *h = (struct harg){.c = c, .kind = kind, .map = map, .arg = arg, .next = c->hargs};
    c->hargs = h;
    struct tn_informer_handlers hs = {on_add, on_update, on_del, h};
    int rc = tn_informer_add_handlers(e->inf, &hs);
    if (rc != 0)
        return tn_err_set(err, rc, "controller %s: cannot watch %s: %s", c->name, what,
                          tn_code_str(rc));
    e->nhandlers++;
    return 0;
}

static void controller_free(struct tn_controller *c)
{
    if (!c) return;
    if (c->q) tn_wq_free(c->q);
    while (c->hargs) {
        struct harg *n = c->hargs->next;
        free(c->hargs);
        c->hargs = n;
    }
    free(c->threads);
    free(c->name);
    free(c->kind);
    free(c->group);
    free(c);
}

struct tn_controller *tn_mgr_add_controller(struct tn_mgr *m, const struct tn_controller_spec *s,
                                            struct tn_err *err)
{
    if (m->started || m->stopped) {
        tn_err_set(err, TN_EINVAL, "controller manager: controllers must be added before start");
        return NULL;
    }
    if (!s || !s->name || !*s->name || !s->reconcile || !s->primary.version ||
        !s->primary.resource) {
        tn_err_set(err, TN_EINVAL,
                   "controller %s: name, primary (version, resource) and reconcile are required",
                   s && s->name ? s->name : "(unnamed)");
        return NULL;
    }
    if (s->nowns > 0 && (!s->primary_kind || !*s->primary_kind)) {
        tn_err_set(err, TN_EINVAL, "controller %s: primary_kind is required to own resources",
                   s->name);
        return NULL;
    }
    if (tn_mgr_controller(m, s->name)) {
        tn_err_set(err, TN_EEXIST, "controller %s: a controller with this name already exists",
                   s->name);
        return NULL;
    }
    for (size_t i = 0; i < s->nwatches; i++)
        if (!s->watches[i].map) {
            tn_err_set(err, TN_EINVAL, "controller %s: watches[%zu].map is required", s->name, i);
            return NULL;
        }
    struct tn_controller *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(s->name)) ||
        !(c->group = strdup(s->primary.group ? s->primary.group : "")) ||
        (s->primary_kind && !(c->kind = strdup(s->primary_kind)))) {
        tn_err_set(err, TN_ENOMEM, "controller %s: out of memory", s->name);
        goto fail;
    }
    c->m = m;
    c->fn = s->reconcile;
    c->arg = s->arg;
    c->workers = s->workers > 0 ? s->workers : 1;
    struct tn_wq_opts qo = {
        .metrics = m->metrics,
        .name = c->name,
        .controller = c->name,
        .base_delay_ns = s->base_delay_ms > 0 ? s->base_delay_ms * 1000000LL : 0,
        .max_delay_ns = s->max_delay_ms > 0 ? s->max_delay_ms * 1000000LL : 0,
    };
    if (!(c->q = tn_wq_new(&qo))) {
        tn_err_set(err, TN_ENOMEM, "controller %s: out of memory", s->name);
        goto fail;
    }
    if (install(c, &s->primary, s->primary_label_selector, H_PRIMARY, NULL, NULL, err) != 0)
        goto fail;
    for (size_t i = 0; i < s->nowns; i++)
        if (install(c, &s->owns[i], NULL, H_OWNED, NULL, NULL, err) != 0) goto fail;
    for (size_t i = 0; i < s->nwatches; i++)
        if (install(c, &s->watches[i].gvr, s->watches[i].label_selector, H_MAPPED,
                    s->watches[i].map, s->watches[i].arg, err) != 0)
            goto fail;
    const char *lv[] = {c->name, NULL};
    static const char *const results[] = {"success", "error", "requeue", "requeue_after"};
    for (size_t i = 0; i < 4; i++) {
        const char *v[] = {c->name, results[i]};
        tn_metric_add(m->m_total, v, 0);
    }
    tn_metric_add(m->m_errors, lv, 0);
    tn_metric_set(m->m_max, lv, c->workers);
    tn_metric_set(m->m_active, lv, 0);
    c->next = m->ctrls;
    m->ctrls = c;
    return c;
fail:
    /* Handler sets already installed on shared informers point at c: informers cannot drop
     * handlers, so a failed controller is kept (inert, never started) until tn_mgr_free. */
    if (c && c->hargs) {
        for (struct harg *h = c->hargs; h; h = h->next)
            h->kind = H_INERT;
        c->fn = NULL;
        c->next = m->ctrls;
        m->ctrls = c;
        c->workers = 0;
        return NULL;
    }
    controller_free(c);
    return NULL;
}

/* ---- workers ------------------------------------------------------------------------------ */

static void process(struct tn_controller *c, const char *key)
{
    struct tn_mgr *m = c->m;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", key);
    char *slash = strchr(buf, '/');
    struct tn_rctx ctx = {.c = c, .ns = "", .name = buf};
    if (slash) {
        *slash = '\0';
        ctx.ns = buf;
        ctx.name = slash + 1;
    }
    tn_rand_uuid(ctx.id);
    const char *lv[] = {c->name, NULL};
    tn_metric_add(m->m_active, lv, 1);
    int64_t t0 = tn_mono_ns();
    struct tn_result r = c->fn(&ctx, ctx.ns, ctx.name, c->arg);
    tn_metric_observe(m->m_time, lv, (double)(tn_mono_ns() - t0) / 1e9);
    tn_metric_add(m->m_active, lv, -1);
    const char *result;
    if (r.err) {
        result = "error";
        tn_metric_inc(m->m_errors, lv);
        tn_rctx_log(&ctx, TN_LOG_ERROR, "Reconciler error", "error", tn_code_str(r.err),
                    (const char *)0);
        tn_wq_add_rate_limited(c->q, key);
    } else if (r.requeue_after_ms > 0) {
        result = "requeue_after";
        tn_wq_forget(c->q, key);
        tn_wq_add_after(c->q, key, r.requeue_after_ms * 1000000LL);
    } else if (r.requeue) {
        result = "requeue";
        tn_wq_add_rate_limited(c->q, key);
    } else {
        result = "success";
        tn_wq_forget(c->q, key);
    }
    const char *tv[] = {c->name, result};
    tn_metric_inc(m->m_total, tv);
}

static void *worker_main(void *arg)
{
    struct tn_controller *c = arg;
    const char *key;
    while ((key = tn_wq_get(c->q)) != NULL) {
        process(c, key);
        tn_wq_done(c->q, key);
    }
    return NULL;
}

int tn_mgr_start(struct tn_mgr *m, struct tn_err *err)
{
    if (m->stopped)
        return tn_err_set(err, TN_EINVAL, "controller manager: cannot start again after stop");
    if (m->started) return 0;
    /* Entries are only ever prepended and live until tn_mgr_free, so the list from this head is
     * walked without the lock: an informer's map function may call tn_mgr_get (which takes it)
     * on the dispatch thread whose first list we are waiting for. */
    pthread_mutex_lock(&m->mu);
    m->started = 1; /* from here on tn_mgr_informer starts what it creates */
    struct inf_entry *head = m->infs;
    pthread_mutex_unlock(&m->mu);
    int rc = 0;
    for (struct inf_entry *e = head; e && rc == 0; e = e->next) {
        rc = tn_informer_start(e->inf, err);
        if (rc != 0) {
            char what[256];
            gvr_str(&e->gvr, what, sizeof(what));
            tn_err_prefix(err, "controller manager: informer for %s", what);
        }
    }
    int64_t deadline = tn_mono_ms() + m->sync_timeout_ms;
    for (struct inf_entry *e = head; e && rc == 0; e = e->next) {
        int64_t left = deadline - tn_mono_ms();
        if (!tn_informer_wait_synced(e->inf, left > 0 ? left : 0)) {
            char what[256];
            gvr_str(&e->gvr, what, sizeof(what));
            rc = tn_err_set(err, TN_EIO,
                            "controller manager: timed out after %lld ms waiting for the cache "
                            "of %s%s%s to sync",
                            (long long)m->sync_timeout_ms, what, e->ns ? " in namespace " : "",
                            e->ns ? e->ns : "");
        }
    }
    for (struct tn_controller *c = m->ctrls; c && rc == 0; c = c->next) {
        if (!c->fn || c->workers <= 0) continue;
        if (!(c->threads = calloc((size_t)c->workers, sizeof(pthread_t)))) {
            rc = tn_err_set(err, TN_ENOMEM, "controller %s: out of memory", c->name);
            break;
        }
        for (int i = 0; i < c->workers; i++) {
            if (pthread_create(&c->threads[i], NULL, worker_main, c) != 0) {
                rc = tn_err_set(err, TN_EIO, "controller %s: cannot start worker %d", c->name, i);
                break;
            }
            c->nthreads++;
        }
    }
    if (rc != 0) {
        tn_mgr_stop(m);
        return rc;
    }
    for (struct tn_controller *c = m->ctrls; c; c = c->next)
        if (c->fn)
            TN_INFO("Starting workers", "controller", c->name, "worker count",
                    c->workers == 1 ? "1" : (c->workers < 10 ? "<10" : ">=10"));
    return 0;
}

void tn_mgr_stop(struct tn_mgr *m)
{
    if (!m->started || m->stopped) {
        m->stopped = 1;
        return;
    }
    m->stopped = 1;
    for (struct tn_controller *c = m->ctrls; c; c = c->next)
        tn_wq_shutdown(c->q);
    int64_t deadline = tn_mono_ms() + m->drain_timeout_ms;
    for (struct tn_controller *c = m->ctrls; c; c = c->next) {
        int64_t left = deadline - tn_mono_ms();
        if (tn_wq_shutdown_with_drain(c->q, left > 0 ? left : 0) != 0)
            TN_WARN("Reconciles still running after the drain timeout; waiting for them",
                    "controller", c->name);
    }
    for (struct tn_controller *c = m->ctrls; c; c = c->next) {
        for (int i = 0; i < c->nthreads; i++)
            pthread_join(c->threads[i], NULL);
        c->nthreads = 0;
    }
    /* Without the lock: stopping joins dispatch threads that may be waiting for it in tn_mgr_get.
     * The list only grows, and nobody adds to it concurrently with stop (see the header). */
    pthread_mutex_lock(&m->mu);
    struct inf_entry *head = m->infs;
    pthread_mutex_unlock(&m->mu);
    for (struct inf_entry *e = head; e; e = e->next)
        tn_informer_stop(e->inf);
}

void tn_mgr_free(struct tn_mgr *m)
{
    if (!m) return;
    tn_mgr_stop(m);
    /* Informers first: their handlers point at the controllers. */
    while (m->infs) {
        struct inf_entry *n = m->infs->next;
        inf_entry_free(m->infs);
        m->infs = n;
    }
    while (m->ctrls) {
        struct tn_controller *n = m->ctrls->next;
        controller_free(m->ctrls);
        m->ctrls = n;
    }
    if (m->own_recorder) tn_event_recorder_free(m->recorder);
    if (m->own_metrics) tn_metrics_free(m->metrics);
    free(m->ns);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- reconcile context -------------------------------------------------------------------- */

const char *tn_rctx_namespace(const struct tn_rctx *ctx)
{
    return ctx->ns;
}

const char *tn_rctx_name(const struct tn_rctx *ctx)
{
    return ctx->name;
}

const char *tn_rctx_id(const struct tn_rctx *ctx)
{
    return ctx->id;
}

struct tn_controller *tn_rctx_controller(struct tn_rctx *ctx)
{
    return ctx->c;
}

struct tn_kube_client *tn_rctx_client(struct tn_rctx *ctx)
{
    return ctx->c->m->client;
}

json_t *tn_rctx_get(struct tn_rctx *ctx, const struct tn_kube_gvr *gvr, const char *ns,
                    const char *name)
{
    return tn_mgr_get(ctx->c->m, gvr, ns, name);
}

#define MAX_KV 32 /* 16 pairs */

void tn_rctx_log(struct tn_rctx *ctx, enum tn_log_level lvl, const char *msg, ...)
{
    if (!tn_log_enabled(lvl)) return;
    const char *kv[MAX_KV + 1] = {0};
    int n = 0;
    va_list ap;
    va_start(ap, msg);
    while (n < MAX_KV) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    /* tn_log stops at the first NULL key, so unused slots end the list. */
    tn_log(lvl, msg, "controller", ctx->c->name, "namespace", ctx->ns, "name", ctx->name,
           "reconcileID", ctx->id, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7], kv[8],
           kv[9], kv[10], kv[11], kv[12], kv[13], kv[14], kv[15], kv[16], kv[17], kv[18], kv[19],
           kv[20], kv[21], kv[22], kv[23], kv[24], kv[25], kv[26], kv[27], kv[28], kv[29], kv[30],
           kv[31], (const char *)0);
}

void tn_rctx_event(struct tn_rctx *ctx, const json_t *obj, const char *type, const char *reason,
                   const char *fmt, ...)
{
    char msg[4097];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tn_rctx_log(ctx, strcmp(type, TN_EVENT_WARNING) == 0 ? TN_LOG_WARN : TN_LOG_INFO, msg, "event",
                reason, (const char *)0);
    if (ctx->c->m->recorder) tn_event_record(ctx->c->m->recorder, obj, type, reason, "%s", msg);
}

int tn_rctx_update_status(struct tn_rctx *ctx, const struct tn_kube_gvr *gvr, const json_t *obj,
                          const json_t *new_status)
{
    if (!obj || !new_status) return TN_EINVAL;
    if (!tn_status_changed(json_object_get(obj, "status"), new_status)) return 0;
    json_t *copy = json_copy((json_t *)obj); /* shallow: only the status member is replaced */
    if (!copy || json_object_set(copy, "status", (json_t *)new_status) != 0) {
        json_decref(copy);
        return TN_ENOMEM;
    }
    struct tn_err err = {0};
    int rc = tn_kube_update(ctx->c->m->client, gvr, tn_json_str(obj, "metadata.namespace", ""),
                            copy, "status", NULL, NULL, &err);
    json_decref(copy);
    if (rc != 0) {
        tn_rctx_log(ctx, rc == TN_ECONFLICT ? TN_LOG_INFO : TN_LOG_WARN, "status update failed",
                    "error", err.msg, (const char *)0);
        return rc;
    }
    return 1;
}
