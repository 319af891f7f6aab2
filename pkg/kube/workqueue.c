/* Rate-limited work queue (client-go util/workqueue semantics); see workqueue.h.
 * One mutex guards everything. Delayed keys sit on a min-heap and are promoted lazily by whoever
 * holds the lock (get, len, add) and by the metrics thread, so no thread is needed without
 * metrics. */
#include "kube/workqueue.h"

#include "base/err.h"
#include "base/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* Longest a blocked getter sleeps before re-checking delayed keys (client-go's maxWait). */
#define HEARTBEAT_NS (10 * NS_PER_S)
/* With a fake clock, time moves without notice: blocked getters poll this often. */
#define FAKE_POLL_NS (2 * NS_PER_MS)
#define METRICS_PERIOD_MS 500

/* ---- clock ---- */

void tn_wq_clock_fake(struct tn_wq_clock *c, int64_t start_ns)
{
    c->fake = 1;
    atomic_store(&c->fake_ns, start_ns);
}

void tn_wq_clock_advance(struct tn_wq_clock *c, int64_t delta_ns)
{
    atomic_fetch_add(&c->fake_ns, delta_ns);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t tn_wq_clock_now(const struct tn_wq_clock *c)
{
    if (c && c->fake) return atomic_load(&((struct tn_wq_clock *)c)->fake_ns);
    return mono_ns();
}

/* ---- string-keyed hash map (chained; entries own their key) ---- */

struct sent {
    struct sent *next;
    uint64_t hash;
    int64_t val;
    char key[];
};

struct smap {
    struct sent **b;
    size_t nb; /* power of two */
    size_t n;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int smap_init(struct smap *m)
{
    m->nb = 16;
    m->n = 0;
    m->b = calloc(m->nb, sizeof(*m->b));
    return m->b ? 0 : TN_ENOMEM;
}

static void smap_free(struct smap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct sent *e = m->b[i];
        while (e) {
            struct sent *nx = e->next;
            free(e);
            e = nx;
        }
    }
    free(m->b);
    m->b = NULL;
}

static struct sent *smap_find(const struct smap *m, const char *key)
{
    uint64_t h = fnv1a(key);
    for (struct sent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static void smap_grow(struct smap *m)
{
    size_t nb = m->nb * 2;
    struct sent **b = calloc(nb, sizeof(*b));
    if (!b) return; /* stay at the current size: slower, still correct */
    for (size_t i = 0; i < m->nb; i++) {
        struct sent *e = m->b[i];
        while (e) {
            struct sent *nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = nx;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

/* Sets key's value, inserting it if absent. Returns the entry (stable until removed) or NULL. */
static struct sent *smap_put(struct smap *m, const char *key, int64_t val)
{
    struct sent *e = smap_find(m, key);
    if (e) {
        e->val = val;
        return e;
    }
    size_t len = strlen(key);
    e = malloc(sizeof(*e) + len + 1);
    if (!e) return NULL;
    memcpy(e->key, key, len + 1);
    e->hash = fnv1a(key);
    e->val = val;
    if (m->n >= m->nb) smap_grow(m);
    struct sent **slot = &m->b[e->hash & (m->nb - 1)];
    e->next = *slot;
    *slot = e;
    m->n++;
    return e;
}

/* Removes key; returns 1 and its value in *val (optional) if it was there. */
static int smap_del(struct smap *m, const char *key, int64_t *val)
{
    uint64_t h = fnv1a(key);
    for (struct sent **p = &m->b[h & (m->nb - 1)]; *p; p = &(*p)->next) {
        struct sent *e = *p;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            *p = e->next;
            if (val) *val = e->val;
            free(e);
            m->n--;
            return 1;
        }
    }
    return 0;
}

/* ---- the queue ---- */

struct delayed {
    char *key;
    int64_t ready_ns;
    uint64_t seq; /* FIFO among equal ready times */
};

enum { M_DEPTH, M_ADDS, M_QDUR, M_WDUR, M_RETRIES, M_UNFINISHED, M_LONGEST, M_COUNT };

struct tn_wq {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* queue became non-empty, or shutdown */
    pthread_cond_t idle; /* processing became empty (drain) */
    struct tn_wq_clock *clock;

    /* ready FIFO: ring of owned strings */
    char **ring;
    size_t cap, head, n;

    struct smap dirty;      /* val: time it was added (queue duration) */
    struct smap processing; /* val: time processing started */

    /* delayed adds */
    struct delayed *heap;
    size_t hn, hcap;
    uint64_t seq;
    struct smap waiting; /* key -> heap index */

    /* rate limiter */
    struct smap failures; /* key -> failure count */
    int64_t base_ns, max_ns;
    double qps;
    int burst;
    double tokens;
    int64_t bucket_last_ns;

    int shutting_down;

    struct tn_metric *m[M_COUNT];
    const char *labels[2]; /* {controller, name}; point into lname */
    char *lname, *lcontroller;
    pthread_t mthread;
    int mthread_on;
    pthread_cond_t mstop;
};

static void metric_inc(struct tn_wq *q, int which, double v)
{
    if (q->m[which]) tn_metric_add(q->m[which], q->labels, v);
}

static void metric_set(struct tn_wq *q, int which, double v)
{
    if (q->m[which]) tn_metric_set(q->m[which], q->labels, v);
}

static void metric_observe(struct tn_wq *q, int which, double v)
{
    if (q->m[which]) tn_metric_observe(q->m[which], q->labels, v);
}

static int ring_push(struct tn_wq *q, char *key)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        char **r = malloc(cap * sizeof(*r));
        if (!r) return TN_ENOMEM;
        for (size_t i = 0; i < q->n; i++)
            r[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = r;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->n) % q->cap] = key;
    q->n++;
    metric_set(q, M_DEPTH, (double)q->n);
    return 0;
}

static char *ring_pop(struct tn_wq *q)
{
    char *k = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    metric_set(q, M_DEPTH, (double)q->n);
    return k;
}

/* client-go Add under the lock. */
static int add_locked(struct tn_wq *q, const char *key, int64_t now)
{
    if (q->shutting_down) return 0;
    if (smap_find(&q->dirty, key)) return 0;
    metric_inc(q, M_ADDS, 1);
    if (!smap_put(&q->dirty, key, now)) return TN_ENOMEM;
    if (smap_find(&q->processing, key)) return 0; /* re-queued by done */
    char *dup = strdup(key);
    if (!dup || ring_push(q, dup) < 0) {
        free(dup);
        smap_del(&q->dirty, key, NULL);
        return TN_ENOMEM;
    }
    pthread_cond_signal(&q->cond);
    return 0;
}

/* ---- heap of delayed keys ---- */

static int heap_less(const struct delayed *a, const struct delayed *b)
{
    return a->ready_ns < b->ready_ns || (a->ready_ns == b->ready_ns && a->seq < b->seq);
}

static void heap_set(struct tn_wq *q, size_t i, struct delayed d)
{
    q->heap[i] = d;
    struct sent *e = smap_find(&q->waiting, d.key);
    if (e) e->val = (int64_t)i;
}

static void heap_up(struct tn_wq *q, size_t i)
{
    struct delayed d = q->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&d, &q->heap[p])) break;
        heap_set(q, i, q->heap[p]);
        i = p;
    }
    heap_set(q, i, d);
}

static void heap_down(struct tn_wq *q, size_t i)
{
    struct delayed d = q->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct delayed *best = &d;
        if (l < q->hn && heap_less(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->hn && heap_less(&q->heap[r], best)) m = r;
        if (m == i) break;
        heap_set(q, i, q->heap[m]);
        i = m;
    }
    heap_set(q, i, d);
}

static int delay_locked(struct tn_wq *q, const char *key, int64_t ready)
{
    struct sent *w = smap_find(&q->waiting, key);
    if (w) {
        size_t i = (size_t)w->val;
        if (ready < q->heap[i].ready_ns) {
            q->heap[i].ready_ns = ready;
            heap_up(q, i);
        }
        return 0;
    }
    if (q->hn == q->hcap) {
        size_t cap = q->hcap ? q->hcap * 2 : 16;
        struct delayed *h = realloc(q->heap, cap * sizeof(*h));
        if (!h) return TN_ENOMEM;
        q->heap = h;
        q->hcap = cap;
    }
    struct delayed d = {strdup(key), ready, q->seq++};
    if (!d.key || !smap_put(&q->waiting, key, (int64_t)q->hn)) {
        free(d.key);
        return TN_ENOMEM;
    }
    q->heap[q->hn++] = d;
    heap_up(q, q->hn - 1);
    /* A getter may be sleeping until a later ready time. */
    pthread_cond_broadcast(&q->cond);
    return 0;
}

/* Moves every delayed key whose time has come to the ready queue. */
static void promote_locked(struct tn_wq *q, int64_t now)
{
    while (q->hn > 0 && q->heap[0].ready_ns <= now) {
        struct delayed d = q->heap[0];
        smap_del(&q->waiting, d.key, NULL);
        q->hn--;
        if (q->hn > 0) {
            q->heap[0] = q->heap[q->hn];
            heap_down(q, 0);
        }
        add_locked(q, d.key, now);
        free(d.key);
    }
}

/* ---- metrics ---- */

static void update_processing_metrics(struct tn_wq *q, int64_t now)
{
    double total = 0, longest = 0;
    for (size_t i = 0; i < q->processing.nb; i++)
        for (struct sent *e = q->processing.b[i]; e; e = e->next) {
            double s = (double)(now - e->val) / 1e9;
            total += s;
            if (s > longest) longest = s;
        }
    metric_set(q, M_UNFINISHED, total);
    metric_set(q, M_LONGEST, longest);
}

static void *metrics_loop(void *arg)
{
    struct tn_wq *q = arg;
    pthread_mutex_lock(&q->mu);
    while (q->mthread_on) {
        int64_t now = tn_wq_clock_now(q->clock);
        promote_locked(q, now);
        update_processing_metrics(q, now);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += METRICS_PERIOD_MS * NS_PER_MS;
        ts.tv_sec += ts.tv_nsec / NS_PER_S;
        ts.tv_nsec %= NS_PER_S;
        pthread_cond_timedwait(&q->mstop, &q->mu, &ts);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void register_metrics(struct tn_wq *q, struct tn_metrics *r)
{
    static const char *const lbl[] = {"controller", "name", NULL};
    static const double buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3,
                                     1e-2, 1e-1, 1,    10,   100,  1000};
    size_t nb = sizeof(buckets) / sizeof(buckets[0]);
    q->m[M_DEPTH] = tn_metrics_gauge(r, "workqueue_depth", "Current depth of workqueue", lbl);
    q->m[M_ADDS] = tn_metrics_counter(r, "workqueue_adds_total",
                                      "Total number of adds handled by workqueue", lbl);
    q->m[M_QDUR] = tn_metrics_histogram(
        r, "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested", lbl, buckets, nb);
    q->m[M_WDUR] = tn_metrics_histogram(r, "workqueue_work_duration_seconds",
                                        "How long in seconds processing an item from workqueue "
                                        "takes.",
                                        lbl, buckets, nb);
    q->m[M_RETRIES] = tn_metrics_counter(r, "workqueue_retries_total",
                                         "Total number of retries handled by workqueue", lbl);
    q->m[M_UNFINISHED] = tn_metrics_gauge(
        r, "workqueue_unfinished_work_seconds",
        "How many seconds of work has been done that is in progress and hasn't been observed by "
        "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
        "threads by observing the rate at which this increases.",
        lbl);
    q->m[M_LONGEST] = tn_metrics_gauge(r, "workqueue_longest_running_processor_seconds",
                                       "How many seconds has the longest running processor for "
                                       "workqueue been running.",
                                       lbl);
    /* Pre-create the series so dashboards see zeros. */
    metric_set(q, M_DEPTH, 0);
    metric_inc(q, M_ADDS, 0);
    metric_inc(q, M_RETRIES, 0);
    metric_set(q, M_UNFINISHED, 0);
    metric_set(q, M_LONGEST, 0);
}

/* ---- public API ---- */

struct tn_wq *tn_wq_new(const struct tn_wq_opts *opts)
{
    struct tn_wq_opts o = {0};
    if (opts) o = *opts;
    struct tn_wq *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_cond_init(&q->idle, &ca);
    pthread_cond_init(&q->mstop, &ca);
    pthread_condattr_destroy(&ca);
    q->clock = o.clock;
    q->base_ns = o.base_delay_ns > 0 ? o.base_delay_ns : 5 * NS_PER_MS;
    q->max_ns = o.max_delay_ns > 0 ? o.max_delay_ns : 1000 * NS_PER_S;
    q->qps = o.qps != 0 ? o.qps : 10;
    q->burst = o.burst > 0 ? o.burst : 100;
    q->tokens = q->burst;
    q->bucket_last_ns = tn_wq_clock_now(q->clock);
    if (smap_init(&q->dirty) < 0 || smap_init(&q->processing) < 0 || smap_init(&q->waiting) < 0 ||
        smap_init(&q->failures) < 0)
        goto fail;
    if (o.metrics && o.name && *o.name) {
        q->lname = strdup(o.name);
        q->lcontroller = strdup(o.controller && *o.controller ? o.controller : o.name);
        if (!q->lname || !q->lcontroller) goto fail;
        q->labels[0] = q->lcontroller;
        q->labels[1] = q->lname;
        register_metrics(q, o.metrics);
        q->mthread_on = 1;
        if (pthread_create(&q->mthread, NULL, metrics_loop, q) != 0) {
            q->mthread_on = 0;
            goto fail;
        }
    }
    return q;
fail:
    tn_wq_free(q);
    return NULL;
}

void tn_wq_free(struct tn_wq *q)
{
    if (!q) return;
    if (q->mthread_on) {
        pthread_mutex_lock(&q->mu);
        q->mthread_on = 0;
        pthread_cond_signal(&q->mstop);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->mthread, NULL);
    }
    for (size_t i = 0; i < q->n; i++)
        free(q->ring[(q->head + i) % q->cap]);
    free(q->ring);
    for (size_t i = 0; i < q->hn; i++)
        free(q->heap[i].key);
    free(q->heap);
    if (q->dirty.b) smap_free(&q->dirty);
    if (q->processing.b) smap_free(&q->processing);
    if (q->waiting.b) smap_free(&q->waiting);
    if (q->failures.b) smap_free(&q->failures);
    free(q->lname);
    free(q->lcontroller);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->idle);
    pthread_cond_destroy(&q->mstop);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int tn_wq_add(struct tn_wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    int rc = add_locked(q, key, tn_wq_clock_now(q->clock));
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int tn_wq_add_after(struct tn_wq *q, const char *key, int64_t delay_ns)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (!q->shutting_down) {
        int64_t now = tn_wq_clock_now(q->clock);
        metric_inc(q, M_RETRIES, 1);
        if (delay_ns <= 0)
            rc = add_locked(q, key, now);
        else
            rc = delay_locked(q, key, now + delay_ns);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int64_t tn_wq_when(struct tn_wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    /* per-key exponential: base * 2^failures, capped */
    struct sent *e = smap_find(&q->failures, key);
    int64_t exp = e ? e->val : 0;
    if (!e) e = smap_put(&q->failures, key, 0);
    if (e) e->val = exp + 1;
    int64_t item = q->max_ns;
    if (exp < 62) {
        double d = (double)q->base_ns * (double)(1ULL << exp);
        if (d < (double)q->max_ns) item = (int64_t)d;
    }
    /* overall token bucket (golang.org/x/time/rate Reserve: a token is always taken; the delay
     * is how long until the bucket has paid it back) */
    int64_t bucket = 0;
    if (q->qps > 0) {
        int64_t now = tn_wq_clock_now(q->clock);
        if (now > q->bucket_last_ns) {
            q->tokens += (double)(now - q->bucket_last_ns) / 1e9 * q->qps;
            if (q->tokens > q->burst) q->tokens = q->burst;
            q->bucket_last_ns = now;
        }
        q->tokens -= 1;
        if (q->tokens < 0) bucket = (int64_t)(-q->tokens / q->qps * 1e9);
    }
    pthread_mutex_unlock(&q->mu);
    return item > bucket ? item : bucket;
}

int tn_wq_add_rate_limited(struct tn_wq *q, const char *key)
{
    return tn_wq_add_after(q, key, tn_wq_when(q, key));
}

void tn_wq_forget(struct tn_wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    smap_del(&q->failures, key, NULL);
    pthread_mutex_unlock(&q->mu);
}

int tn_wq_num_requeues(struct tn_wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    struct sent *e = smap_find(&q->failures, key);
    int n = e ? (int)e->val : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void deadline_after(struct timespec *ts, int64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t t = (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec + ns;
    ts->tv_sec = t / NS_PER_S;
    ts->tv_nsec = t % NS_PER_S;
}

const char *tn_wq_get_timeout(struct tn_wq *q, int64_t timeout_ms, int *shutdown)
{
    const char *key = NULL;
    int64_t give_up = timeout_ms >= 0 ? mono_ns() + timeout_ms * NS_PER_MS : INT64_MAX;
    if (shutdown) *shutdown = 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int64_t now = tn_wq_clock_now(q->clock);
        if (!q->shutting_down) promote_locked(q, now);
        if (q->n > 0) break;
        if (q->shutting_down) {
            if (shutdown) *shutdown = 1;
            goto out;
        }
        int64_t real = mono_ns();
        if (real >= give_up) goto out;
        int64_t wait = HEARTBEAT_NS;
        if (q->hn > 0) {
            int64_t until = q->heap[0].ready_ns - now;
            if (q->clock && q->clock->fake) until = FAKE_POLL_NS;
            if (until < wait) wait = until;
        }
        if (give_up - real < wait) wait = give_up - real;
        struct timespec ts;
        deadline_after(&ts, wait);
        pthread_cond_timedwait(&q->cond, &q->mu, &ts);
    }
    char *k = ring_pop(q);
    int64_t now = tn_wq_clock_now(q->clock);
    int64_t added = now;
    smap_del(&q->dirty, k, &added);
    metric_observe(q, M_QDUR, (double)(now - added) / 1e9);
    struct sent *e = smap_put(&q->processing, k, now);
    if (e) {
        key = e->key;
    } else {
        /* Out of memory: hand the key back to the queue rather than lose it. */
        smap_put(&q->dirty, k, added);
        if (ring_push(q, k) == 0) k = NULL;
    }
    free(k);
out:
    pthread_mutex_unlock(&q->mu);
    return key;
}

const char *tn_wq_get(struct tn_wq *q)
{
    return tn_wq_get_timeout(q, -1, NULL);
}

void tn_wq_done(struct tn_wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    int64_t now = tn_wq_clock_now(q->clock);
    struct sent *e = smap_find(&q->processing, key);
    if (e) {
        metric_observe(q, M_WDUR, (double)(now - e->val) / 1e9);
        /* key may point into e: copy before freeing */
        if (smap_find(&q->dirty, key)) {
            char *dup = strdup(key);
            if (dup && ring_push(q, dup) == 0) {
                pthread_cond_signal(&q->cond);
            } else {
                free(dup);
                smap_del(&q->dirty, key, NULL); /* out of memory: lose the re-add, not the key */
            }
        }
        smap_del(&q->processing, e->key, NULL);
        if (q->processing.n == 0) pthread_cond_broadcast(&q->idle);
    }
    pthread_mutex_unlock(&q->mu);
}

size_t tn_wq_len(struct tn_wq *q)
{
    pthread_mutex_lock(&q->mu);
    if (!q->shutting_down) promote_locked(q, tn_wq_clock_now(q->clock));
    size_t n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void tn_wq_shutdown(struct tn_wq *q)
{
    pthread_mutex_lock(&q->mu);
    q->shutting_down = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

int tn_wq_shutdown_with_drain(struct tn_wq *q, int64_t timeout_ms)
{
    int rc = 0;
    struct timespec ts;
    if (timeout_ms >= 0) deadline_after(&ts, timeout_ms * NS_PER_MS);
    pthread_mutex_lock(&q->mu);
    q->shutting_down = 1;
    pthread_cond_broadcast(&q->cond);
    while (q->processing.n > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->idle, &q->mu);
        } else if (pthread_cond_timedwait(&q->idle, &q->mu, &ts) == ETIMEDOUT) {
            rc = q->processing.n > 0 ? TN_EIO : 0;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int tn_wq_shutting_down(struct tn_wq *q)
{
    pthread_mutex_lock(&q->mu);
    int s = q->shutting_down;
    pthread_mutex_unlock(&q->mu);
    return s;
}
