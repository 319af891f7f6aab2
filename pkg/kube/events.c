/* Event recorder; see events.h. Callers append to a bounded ring under a mutex; one sender thread
 * drains it. The aggregation cache (an LRU of recent events keyed by object and content, capped
 * like client-go's at 4096) belongs to the sender thread alone. */
#include "kube/events.h"

#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timeutil.h"
#include "kube/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
#define AGGREGATE_WINDOW_NS (600 * NS_PER_S)
#define CACHE_MAX 4096
#define MESSAGE_MAX 4096
#define REASON_MAX 128
#define SEND_TRIES 3
#define RETRY_SLEEP_MS 1000

static const struct tn_kube_gvr EVENTS = {"", "v1", "events"};

struct pending {
    char *api_version, *kind, *ns, *name, *uid, *rv, *field_path;
    char type[16];
    char reason[REASON_MAX + 1];
    char *message;
    struct timespec wall; /* when it was recorded */
    int64_t mono_ns;
};

struct centry {
    struct centry *hnext;       /* hash chain */
    struct centry *prev, *next; /* LRU, most recent at head */
    uint64_t hash;
    char *key;
    char *event_name, *event_ns;
    long count;
    int64_t last_mono_ns;
};

struct tn_event_recorder {
    struct tn_kube_client *client;
    char *component, *host;
    int64_t flush_timeout_ms;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct pending **ring;
    size_t cap, head, n;
    int busy;                 /* sender holds an event */
    int stopping;             /* no more records; drain */
    int abort;                /* stop retrying, drop the rest */
    uint64_t seq_in, seq_out; /* recorded / finished (for flush) */
    struct tn_event_stats stats;

    struct tn_metric *m_dropped, *m_failed;
    const char *mlabels[1];

    /* sender thread only */
    struct centry **buckets;
    size_t nbuckets, ncache;
    struct centry *lru_head, *lru_tail;

    pthread_t th;
    int th_on;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void pending_free(struct pending *p)
{
    if (!p) return;
    free(p->api_version);
    free(p->kind);
    free(p->ns);
    free(p->name);
    free(p->uid);
    free(p->rv);
    free(p->field_path);
    free(p->message);
    free(p);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- aggregation cache ---- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The identity of "the same event": object, source, type, reason, message. malloc'd. */
static char *event_key(const struct tn_event_recorder *r, const struct pending *p)
{
    const char *parts[] = {r->component, r->host,   p->api_version, p->kind,
                           p->ns,        p->name,   p->uid,         p->field_path,
                           p->type,      p->reason, p->message};
    size_t n = 0, np = sizeof(parts) / sizeof(parts[0]);
    for (size_t i = 0; i < np; i++)
        n += strlen(parts[i]) + 1;
    char *k = malloc(n);
    if (!k) return NULL;
    char *w = k;
    for (size_t i = 0; i < np; i++) {
        size_t l = strlen(parts[i]);
        memcpy(w, parts[i], l);
        w += l;
        *w++ = i + 1 < np ? '\x1f' : '\0';
    }
    return k;
}

static struct centry *cache_find(struct tn_event_recorder *r, const char *key, uint64_t h)
{
    for (struct centry *e = r->buckets[h % r->nbuckets]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static void lru_unlink(struct tn_event_recorder *r, struct centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        r->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        r->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct tn_event_recorder *r, struct centry *e)
{
    e->prev = NULL;
    e->next = r->lru_head;
    if (r->lru_head) r->lru_head->prev = e;
    r->lru_head = e;
    if (!r->lru_tail) r->lru_tail = e;
}

static void centry_free(struct centry *e)
{
    free(e->key);
    free(e->event_name);
    free(e->event_ns);
    free(e);
}

static void cache_remove(struct tn_event_recorder *r, struct centry *e)
{
    for (struct centry **p = &r->buckets[e->hash % r->nbuckets]; *p; p = &(*p)->hnext)
        if (*p == e) {
            *p = e->hnext;
            break;
        }
    lru_unlink(r, e);
    r->ncache--;
    centry_free(e);
}

/* Takes ownership of key. */
static void cache_put(struct tn_event_recorder *r, char *key, uint64_t h, const char *name,
                      const char *ns, long count, int64_t now)
{
    struct centry *e = cache_find(r, key, h);
    if (e) {
        free(key);
        lru_unlink(r, e);
    } else {
        if (r->ncache >= CACHE_MAX && r->lru_tail) cache_remove(r, r->lru_tail);
        e = calloc(1, sizeof(*e));
        if (!e) {
            free(key);
            return;
        }
        e->key = key;
        e->hash = h;
        e->hnext = r->buckets[h % r->nbuckets];
        r->buckets[h % r->nbuckets] = e;
        r->ncache++;
    }
    if (!e->event_name || strcmp(e->event_name, name) != 0) {
        free(e->event_name);
        free(e->event_ns);
        e->event_name = strdup(name);
        e->event_ns = strdup(ns);
    }
    e->count = count;
    e->last_mono_ns = now;
    lru_push_front(r, e);
    if (!e->event_name || !e->event_ns) cache_remove(r, e);
}

/* ---- sending ---- */

static json_t *event_object(const struct tn_event_recorder *r, const struct pending *p,
                            const char *name, const char *ns, const char *ts)
{
    json_t *io = json_object();
    json_t *ev = json_object();
    if (!io || !ev) {
        json_decref(io);
        json_decref(ev);
        return NULL;
    }
    const struct {
        const char *k, *v;
    } fields[] = {{"apiVersion", p->api_version},
                  {"kind", p->kind},
                  {"namespace", p->ns},
                  {"name", p->name},
                  {"uid", p->uid},
                  {"resourceVersion", p->rv},
                  {"fieldPath", p->field_path}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (*fields[i].v) json_object_set_new(io, fields[i].k, json_string(fields[i].v));
    json_object_set_new(ev, "apiVersion", json_string("v1"));
    json_object_set_new(ev, "kind", json_string("Event"));
    json_object_set_new(ev, "metadata", json_pack("{s:s, s:s}", "name", name, "namespace", ns));
    json_object_set_new(ev, "involvedObject", io);
    json_object_set_new(ev, "reason", json_string(p->reason));
    json_object_set_new(ev, "message", json_string(p->message));
    json_object_set_new(ev, "type", json_string(p->type));
    json_object_set_new(ev, "source",
                        json_pack("{s:s, s:s}", "component", r->component, "host", r->host));
    json_object_set_new(ev, "reportingComponent", json_string(r->component));
    json_object_set_new(ev, "reportingInstance", json_string(r->host));
    json_object_set_new(ev, "firstTimestamp", json_string(ts));
    json_object_set_new(ev, "lastTimestamp", json_string(ts));
    json_object_set_new(ev, "count", json_integer(1));
    return ev;
}

/* Sleeps ms unless the recorder is told to abort. Returns 1 if aborting. */
static int backoff(struct tn_event_recorder *r, int64_t ms)
{
    struct timespec ts;
    int64_t at = mono_ns() + ms * NS_PER_MS;
    ts.tv_sec = at / NS_PER_S;
    ts.tv_nsec = at % NS_PER_S;
    pthread_mutex_lock(&r->mu);
    while (!r->abort && pthread_cond_timedwait(&r->cond, &r->mu, &ts) != ETIMEDOUT)
        ;
    int a = r->abort;
    pthread_mutex_unlock(&r->mu);
    return a;
}

/* Creates a new Event for p. Returns 0 or a negative tn_code; *name_out malloc'd on success. */
static int create_event(struct tn_event_recorder *r, const struct pending *p, const char *ns,
                        const char *ts, char **name_out, struct tn_err *err)
{
    /* client-go: "<object name>.<hex unix nanoseconds>" */
    int64_t t = (int64_t)p->wall.tv_sec * NS_PER_S + p->wall.tv_nsec;
    char name[320];
    int rc = TN_EIO;
    for (int i = 0; i < 3; i++, t++) {
        snprintf(name, sizeof(name), "%s.%llx", *p->name ? p->name : "unknown",
                 (unsigned long long)t);
        json_t *ev = event_object(r, p, name, ns, ts);
        if (!ev) return TN_ENOMEM;
        struct tn_kube_status st = {0};
        json_t *out = NULL;
        rc = tn_kube_create(r->client, &EVENTS, ns, ev, &out, &st, err);
        json_decref(ev);
        json_decref(out);
        if (rc != TN_EEXIST) break;
    }
    if (rc == 0) {
        *name_out = strdup(name);
        if (!*name_out) rc = TN_ENOMEM;
    }
    return rc;
}

static void send_one(struct tn_event_recorder *r, struct pending *p)
{
    const char *ns = *p->ns ? p->ns : "default";
    char ts[32];
    tn_time_rfc3339(p->wall.tv_sec, ts, sizeof(ts));
    char *key = event_key(r, p);
    if (!key) goto failed;
    uint64_t h = fnv1a(key);
    struct centry *e = cache_find(r, key, h);
    if (e && p->mono_ns - e->last_mono_ns > AGGREGATE_WINDOW_NS) {
        cache_remove(r, e);
        e = NULL;
    }
    struct tn_err err = {0};
    int rc = TN_EIO;
    for (int attempt = 0; attempt < SEND_TRIES; attempt++) {
        if (attempt > 0 && backoff(r, RETRY_SLEEP_MS)) break;
        if (e) {
            long count = e->count + 1;
            json_t *patch =
                json_pack("{s:I, s:s}", "count", (json_int_t)count, "lastTimestamp", ts);
            struct tn_kube_status st = {0};
            json_t *out = NULL;
            rc = patch ? tn_kube_patch(r->client, &EVENTS, e->event_ns, e->event_name,
                                       TN_KUBE_PATCH_MERGE, patch, NULL, NULL, &out, &st, &err)
                       : TN_ENOMEM;
            json_decref(patch);
            json_decref(out);
            if (rc == 0) {
                e->count = count;
                e->last_mono_ns = p->mono_ns;
                lru_unlink(r, e);
                lru_push_front(r, e);
                free(key);
                pthread_mutex_lock(&r->mu);
                r->stats.patched++;
                pthread_mutex_unlock(&r->mu);
                return;
            }
            if (rc == TN_ENOTFOUND) {
                /* The Event expired (or was deleted): start a new one. */
                cache_remove(r, e);
                e = NULL;
                attempt--;
                continue;
            }
        } else {
            char *name = NULL;
            rc = create_event(r, p, ns, ts, &name, &err);
            if (rc == 0) {
                cache_put(r, key, h, name, ns, 1, p->mono_ns);
                free(name);
                pthread_mutex_lock(&r->mu);
                r->stats.created++;
                pthread_mutex_unlock(&r->mu);
                return;
            }
        }
        if (rc != TN_EIO) break; /* refused: retrying will not help */
    }
    TN_WARN("event not written", "component", r->component, "object", p->name, "reason", p->reason,
            "err", err.msg);
failed:
    free(key);
    pthread_mutex_lock(&r->mu);
    r->stats.failed++;
    pthread_mutex_unlock(&r->mu);
    tn_metric_inc(r->m_failed, r->mlabels);
}

static void *sender_main(void *arg)
{
    struct tn_event_recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->n == 0 && !r->stopping)
            pthread_cond_wait(&r->cond, &r->mu);
        if (r->n == 0 || r->abort) break;
        struct pending *p = r->ring[r->head];
        r->head = (r->head + 1) % r->cap;
        r->n--;
        r->busy = 1;
        pthread_mutex_unlock(&r->mu);
        send_one(r, p);
        pending_free(p);
        pthread_mutex_lock(&r->mu);
        r->busy = 0;
        r->seq_out++;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- public ---- */

static void recorder_free_mem(struct tn_event_recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        pending_free(r->ring[(r->head + i) % r->cap]);
    free(r->ring);
    while (r->lru_head)
        cache_remove(r, r->lru_head);
    free(r->buckets);
    free(r->component);
    free(r->host);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

struct tn_event_recorder *tn_event_recorder_new(const struct tn_event_recorder_opts *o,
                                                struct tn_err *err)
{
    if (!o || !o->client || !o->component || !*o->component) {
        tn_err_set(err, TN_EINVAL, "event recorder: client and component are required");
        return NULL;
    }
    struct tn_event_recorder *r = calloc(1, sizeof(*r));
    if (!r) {
        tn_err_set(err, TN_ENOMEM, "event recorder: out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    r->client = o->client;
    r->cap = o->queue_size > 0 ? o->queue_size : 1000;
    r->flush_timeout_ms = o->flush_timeout_ms > 0 ? o->flush_timeout_ms : 2000;
    r->component = strdup(o->component);
    if (o->host && *o->host) {
        r->host = strdup(o->host);
    } else {
        char h[256] = "";
        gethostname(h, sizeof(h) - 1);
        h[sizeof(h) - 1] = '\0';
        r->host = strdup(h);
    }
    r->ring = calloc(r->cap, sizeof(*r->ring));
    r->nbuckets = 1024;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (!r->component || !r->host || !r->ring || !r->buckets) {
        tn_err_set(err, TN_ENOMEM, "event recorder: out of memory");
        recorder_free_mem(r);
        return NULL;
    }
    static const char *const lbl[] = {"component", NULL};
    r->mlabels[0] = r->component;
    r->m_dropped = tn_metrics_counter(o->metrics, "event_recorder_dropped_total",
                                      "Events dropped because the recorder's queue was full.", lbl);
    r->m_failed =
        tn_metrics_counter(o->metrics, "event_recorder_failed_total",
                           "Events the API server refused or could not be reached for.", lbl);
    tn_metric_add(r->m_dropped, r->mlabels, 0);
    tn_metric_add(r->m_failed, r->mlabels, 0);
    if (pthread_create(&r->th, NULL, sender_main, r) != 0) {
        tn_err_set(err, TN_EIO, "event recorder: cannot start its thread");
        recorder_free_mem(r);
        return NULL;
    }
    r->th_on = 1;
    return r;
}

void tn_event_recorder_free(struct tn_event_recorder *r)
{
    if (!r) return;
    if (r->th_on) {
        pthread_mutex_lock(&r->mu);
        r->stopping = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
        if (tn_event_recorder_flush(r, r->flush_timeout_ms) != 0) {
            pthread_mutex_lock(&r->mu);
            TN_WARN("event recorder stopping with events unsent", "component", r->component);
            r->abort = 1;
            pthread_cond_broadcast(&r->cond);
            pthread_mutex_unlock(&r->mu);
        }
        /* Waits for a request in flight (bounded by the client's timeout). */
        pthread_join(r->th, NULL);
    }
    recorder_free_mem(r);
}

int tn_event_recorder_flush(struct tn_event_recorder *r, int64_t timeout_ms)
{
    struct timespec ts;
    int64_t at = mono_ns() + timeout_ms * NS_PER_MS;
    ts.tv_sec = at / NS_PER_S;
    ts.tv_nsec = at % NS_PER_S;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->seq_in;
    while (r->seq_out < target && !r->abort) {
        if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT) {
            rc = r->seq_out < target ? TN_EIO : 0;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void tn_event_recorder_stats(struct tn_event_recorder *r, struct tn_event_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

static void truncate_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return;
    /* do not cut a multi-byte character in half */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

static void enqueue(struct tn_event_recorder *r, const struct tn_event_ref *ref, const char *type,
                    const char *reason, const char *fmt, va_list ap)
{
    struct pending *p = calloc(1, sizeof(*p));
    char *msg = malloc(MESSAGE_MAX + 1);
    if (!p || !msg) {
        free(p);
        free(msg);
        goto drop;
    }
    vsnprintf(msg, MESSAGE_MAX + 1, fmt, ap);
    truncate_utf8(msg, MESSAGE_MAX);
    p->message = msg;
    snprintf(p->type, sizeof(p->type), "%s", type ? type : TN_EVENT_NORMAL);
    snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
    truncate_utf8(p->reason, REASON_MAX);
    p->api_version = dup_or_empty(ref->api_version);
    p->kind = dup_or_empty(ref->kind);
    p->ns = dup_or_empty(ref->namespace_);
    p->name = dup_or_empty(ref->name);
    p->uid = dup_or_empty(ref->uid);
    p->rv = dup_or_empty(ref->resource_version);
    p->field_path = dup_or_empty(ref->field_path);
    if (!p->api_version || !p->kind || !p->ns || !p->name || !p->uid || !p->rv || !p->field_path) {
        pending_free(p);
        goto drop;
    }
    clock_gettime(CLOCK_REALTIME, &p->wall);
    p->mono_ns = mono_ns();

    pthread_mutex_lock(&r->mu);
    if (r->n == r->cap || r->stopping) {
        pthread_mutex_unlock(&r->mu);
        pending_free(p);
        goto drop;
    }
    r->ring[(r->head + r->n) % r->cap] = p;
    r->n++;
    r->seq_in++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    return;
drop:
    pthread_mutex_lock(&r->mu);
    r->stats.dropped++;
    pthread_mutex_unlock(&r->mu);
    tn_metric_inc(r->m_dropped, r->mlabels);
}

void tn_event_record_ref(struct tn_event_recorder *r, const struct tn_event_ref *ref,
                         const char *type, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enqueue(r, ref, type, reason, fmt, ap);
    va_end(ap);
}

void tn_event_record(struct tn_event_recorder *r, const json_t *obj, const char *type,
                     const char *reason, const char *fmt, ...)
{
    struct tn_event_ref ref = {
        .api_version = tn_json_str(obj, "apiVersion", NULL),
        .kind = tn_json_str(obj, "kind", NULL),
        .namespace_ = tn_json_str(obj, "metadata.namespace", NULL),
        .name = tn_json_str(obj, "metadata.name", NULL),
        .uid = tn_json_str(obj, "metadata.uid", NULL),
        .resource_version = tn_json_str(obj, "metadata.resourceVersion", NULL),
    };
    va_list ap;
    va_start(ap, fmt);
    enqueue(r, &ref, type, reason, fmt, ap);
    va_end(ap);
}
