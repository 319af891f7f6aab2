/* Informer: reflector thread (list + watch + relist/backoff), dispatch thread (applies changes to
 * the indexed cache, then runs handlers in order), and the cache itself (string hash maps under a
 * rwlock). See informer.h. */
#include "kube/informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/timeutil.h"

#define INF_MAX_INDEXES 16
#define INF_MAX_HANDLERS 16
#define INF_BACKOFF_START_MS 800
#define INF_BACKOFF_CAP_MS 30000
#define INF_BACKOFF_RESET_MS 120000
#define INF_SHORT_WATCH_MS 1000

/* ---- string hash map (keys are borrowed: the values own them) ---------------------------- */

struct hent {
    const char *key;
    void *val;
    struct hent *next;
    uint32_t h;
};

struct hmap {
    struct hent **b;
    size_t nb; /* power of two, 0 when empty */
    size_t n;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static struct hent *hmap_find(const struct hmap *m, const char *key, uint32_t h)
{
    if (!m->nb) return NULL;
    for (struct hent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->h == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static void *hmap_get(const struct hmap *m, const char *key)
{
    struct hent *e = hmap_find(m, key, hash_str(key));
    return e ? e->val : NULL;
}

static int hmap_grow(struct hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 8;
    struct hent **b = calloc(nb, sizeof *b);
    if (!b) return TN_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Inserts or replaces; *old gets the replaced value (or NULL). key must live as long as the
 * entry (it is replaced along with the value). */
static int hmap_put(struct hmap *m, const char *key, void *val, void **old)
{
    uint32_t h = hash_str(key);
    struct hent *e = hmap_find(m, key, h);
    if (old) *old = NULL;
    if (e) {
        if (old) *old = e->val;
        e->key = key;
        e->val = val;
        return 0;
    }
    if (m->n + 1 > m->nb - m->nb / 4 || !m->nb) {
        if (hmap_grow(m)) return TN_ENOMEM;
    }
    e = malloc(sizeof *e);
    if (!e) return TN_ENOMEM;
    e->key = key;
    e->val = val;
    e->h = h;
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    m->n++;
    return 0;
}

static void *hmap_del(struct hmap *m, const char *key)
{
    if (!m->nb) return NULL;
    uint32_t h = hash_str(key);
    for (struct hent **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
        struct hent *e = *pp;
        if (e->h == h && strcmp(e->key, key) == 0) {
            void *v = e->val;
            *pp = e->next;
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

static void hmap_free(struct hmap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

#define HMAP_FOREACH(m, e)                                                                         \
    for (size_t hi_ = 0; hi_ < (m)->nb; hi_++)                                                     \
        for (struct hent *e = (m)->b[hi_]; e; e = e->next)

/* ---- cache entries and indexes ---------------------------------------------------------- */

struct tn_informer_index_values {
    char **v;
    size_t n, cap;
};

void tn_informer_index_values_add(struct tn_informer_index_values *vals, const char *value)
{
    if (!value) return;
    for (size_t i = 0; i < vals->n; i++) /* an object is in a bucket at most once */
        if (strcmp(vals->v[i], value) == 0) return;
    if (vals->n + 2 > vals->cap) {
        size_t cap = vals->cap ? vals->cap * 2 : 4;
        char **v = realloc(vals->v, cap * sizeof *v);
        if (!v) return;
        vals->v = v;
        vals->cap = cap;
    }
    char *d = strdup(value);
    if (!d) return;
    vals->v[vals->n++] = d;
    vals->v[vals->n] = NULL;
}

struct index {
    char *name;
    tn_informer_index_fn fn;
    void *arg;
    struct hmap buckets; /* value -> struct bucket */
};

struct bucket {
    char *value;
    struct hmap keys; /* entry key -> struct centry */
};

struct centry {
    json_t *obj;                  /* parsed object, or NULL with store_text */
    char *text;                   /* compact JSON with store_text */
    char **vals[INF_MAX_INDEXES]; /* NULL-terminated values per index (NULL when none) */
    char key[];                   /* "ns/name" or "name" */
};

/* ---- the informer ----------------------------------------------------------------------- */

enum qkind { Q_ADD, Q_MODIFY, Q_DELETE, Q_REPLACE };

struct qitem {
    struct qitem *next;
    enum qkind kind;
    json_t *obj; /* an object, or the items array of a list (Q_REPLACE) */
};

struct tn_informer {
    struct tn_kube_client *c;
    struct tn_kube_gvr r;
    struct tn_informer_opts o;
    char *ns, *lsel, *fsel;

    struct index idx[INF_MAX_INDEXES];
    int nidx;
    struct tn_informer_handlers h[INF_MAX_HANDLERS];
    int nh;

    pthread_rwlock_t lock; /* cache + indexes */
    struct hmap cache;     /* key -> struct centry */

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;  /* watch ended, stop, queue, synced */
    int started, stopping, synced;
    char rv[64];
    int watch_ended, end_code;
    uint64_t watch_events;
    struct qitem *qhead, *qtail;
    struct tn_informer_stats st;
    pthread_t reflector, dispatcher;
};

static void key_of(const json_t *obj, char *out, size_t n)
{
    const char *ns = tn_json_str(obj, "metadata.namespace", "");
    const char *name = tn_json_str(obj, "metadata.name", "");
    if (*ns)
        snprintf(out, n, "%s/%s", ns, name);
    else
        snprintf(out, n, "%s", name);
}

static void idx_namespace(const json_t *obj, struct tn_informer_index_values *v, void *arg)
{
    const char *ns = tn_json_str(obj, "metadata.namespace", NULL);
    if (ns) tn_informer_index_values_add(v, ns);
}

static void idx_label(const json_t *obj, struct tn_informer_index_values *v, void *arg)
{
    json_t *labels = tn_json_get(obj, "metadata.labels");
    const char *k;
    json_t *val;
    char buf[512];
    json_object_foreach(labels, k, val)
    {
        if (!json_is_string(val)) continue;
        snprintf(buf, sizeof buf, "%s=%s", k, json_string_value(val));
        tn_informer_index_values_add(v, buf);
    }
}

static void idx_owner(const json_t *obj, struct tn_informer_index_values *v, void *arg)
{
    size_t i;
    json_t *ref;
    json_array_foreach(tn_json_get(obj, "metadata.ownerReferences"), i, ref)
    {
        tn_informer_index_values_add(v, tn_json_str(ref, "uid", NULL));
    }
}

static void idx_node(const json_t *obj, struct tn_informer_index_values *v, void *arg)
{
    const char *n = tn_json_str(obj, "spec.nodeName", NULL);
    if (n && *n) tn_informer_index_values_add(v, n);
}

static void free_vals(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* Write lock held: removes e from every index bucket. */
static void unindex(struct tn_informer *inf, struct centry *e)
{
    for (int i = 0; i < inf->nidx; i++) {
        for (char **p = e->vals[i]; p && *p; p++) {
            struct bucket *b = hmap_get(&inf->idx[i].buckets, *p);
            if (!b) continue;
            hmap_del(&b->keys, e->key);
            if (b->keys.n == 0) {
                hmap_del(&inf->idx[i].buckets, b->value);
                hmap_free(&b->keys);
                free(b->value);
                free(b);
            }
        }
        free_vals(e->vals[i]);
        e->vals[i] = NULL;
    }
}

/* Computes the index values of e->obj (outside the lock is fine: obj is immutable). */
static void compute_vals(struct tn_informer *inf, struct centry *e)
{
    for (int i = 0; i < inf->nidx; i++) {
        struct tn_informer_index_values v = {0};
        inf->idx[i].fn(e->obj, &v, inf->idx[i].arg);
        e->vals[i] = v.v;
    }
}

/* Write lock held: adds e to the buckets of its computed values. */
static void index_entry(struct tn_informer *inf, struct centry *e)
{
    for (int i = 0; i < inf->nidx; i++) {
        for (char **p = e->vals[i]; p && *p; p++) {
            struct bucket *b = hmap_get(&inf->idx[i].buckets, *p);
            if (!b) {
                b = calloc(1, sizeof *b);
                if (!b || !(b->value = strdup(*p)) ||
                    hmap_put(&inf->idx[i].buckets, b->value, b, NULL)) {
                    if (b) free(b->value);
                    free(b);
                    TN_ERROR("informer: out of memory while indexing", "key", e->key);
                    continue;
                }
            }
            if (hmap_put(&b->keys, e->key, e, NULL))
                TN_ERROR("informer: out of memory while indexing", "key", e->key);
        }
    }
}

static struct centry *entry_new(struct tn_informer *inf, json_t *obj)
{
    char key[640];
    key_of(obj, key, sizeof key);
    size_t kl = strlen(key);
    struct centry *e = calloc(1, sizeof *e + kl + 1);
    if (!e) return NULL;
    memcpy(e->key, key, kl + 1);
    e->obj = json_incref(obj);
    compute_vals(inf, e);
    if (inf->o.store_text) {
        e->text = json_dumps(obj, JSON_COMPACT);
        json_decref(e->obj);
        e->obj = NULL;
        if (!e->text) {
            for (int i = 0; i < inf->nidx; i++)
                free_vals(e->vals[i]);
            free(e);
            return NULL;
        }
    }
    return e;
}

/* New reference to the entry's object (parsed from its text with store_text). */
static json_t *entry_obj(const struct centry *e)
{
    if (e->obj) return json_incref(e->obj);
    json_t *o = json_loads(e->text, 0, NULL);
    if (!o) TN_ERROR("informer: cannot parse a cached object", "key", e->key);
    return o;
}

/* Whether two entries hold the same version of an object. */
static int entry_same(const struct centry *a, const struct centry *b)
{
    if (a->text && b->text) return strcmp(a->text, b->text) == 0;
    if (!a->obj || !b->obj) return 0;
    return strcmp(tn_json_str(a->obj, "metadata.resourceVersion", ""),
                  tn_json_str(b->obj, "metadata.resourceVersion", "")) == 0;
}

static void entry_free(struct centry *e)
{
    if (!e) return;
    for (int i = 0; i < INF_MAX_INDEXES; i++)
        free_vals(e->vals[i]);
    json_decref(e->obj);
    free(e->text);
    free(e);
}

/* Write lock held: stores e, returning the entry it replaced (unindexed, caller frees). */
static struct centry *cache_put(struct tn_informer *inf, struct centry *e)
{
    struct centry *old = hmap_get(&inf->cache, e->key);
    if (old) unindex(inf, old);
    void *prev = NULL;
    if (hmap_put(&inf->cache, e->key, e, &prev)) {
        TN_ERROR("informer: out of memory, object not cached", "key", e->key);
        if (old) index_entry(inf, old); /* keep the old state consistent */
        entry_free(e);
        return NULL;
    }
    index_entry(inf, e);
    return old;
}

/* Write lock held: removes key, returning the entry (unindexed, caller frees) or NULL. */
static struct centry *cache_del(struct tn_informer *inf, const char *key)
{
    struct centry *old = hmap_get(&inf->cache, key);
    if (!old) return NULL;
    unindex(inf, old);
    hmap_del(&inf->cache, key);
    return old;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void call_add(struct tn_informer *inf, const json_t *o)
{
    for (int i = 0; i < inf->nh; i++)
        if (inf->h[i].add) inf->h[i].add(o, inf->h[i].arg);
}

static void call_update(struct tn_informer *inf, const json_t *a, const json_t *b)
{
    for (int i = 0; i < inf->nh; i++)
        if (inf->h[i].update) inf->h[i].update(a, b, inf->h[i].arg);
}

static void call_del(struct tn_informer *inf, const json_t *o)
{
    for (int i = 0; i < inf->nh; i++)
        if (inf->h[i].del) inf->h[i].del(o, inf->h[i].arg);
}

static void count(struct tn_informer *inf, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&inf->mu);
    *field += n;
    pthread_mutex_unlock(&inf->mu);
}

/* ---- dispatch thread -------------------------------------------------------------------- */

static void apply_upsert(struct tn_informer *inf, json_t *obj)
{
    struct centry *e = entry_new(inf, obj);
    if (!e) {
        TN_ERROR("informer: out of memory, event dropped", "resource", inf->r.resource);
        return;
    }
    json_t *nobj = json_incref(obj);
    pthread_rwlock_wrlock(&inf->lock);
    struct centry *old = cache_put(inf, e);
    pthread_rwlock_unlock(&inf->lock);
    if (old) {
        json_t *oobj = entry_obj(old);
        call_update(inf, oobj, nobj);
        json_decref(oobj);
        count(inf, &inf->st.updates, 1);
    } else {
        call_add(inf, nobj);
        count(inf, &inf->st.adds, 1);
    }
    entry_free(old);
    json_decref(nobj);
}

static void apply_delete(struct tn_informer *inf, json_t *obj)
{
    char key[640];
    key_of(obj, key, sizeof key);
    pthread_rwlock_wrlock(&inf->lock);
    struct centry *old = cache_del(inf, key);
    pthread_rwlock_unlock(&inf->lock);
    if (!old) return; /* never seen: nothing to tell */
    call_del(inf, obj);
    count(inf, &inf->st.deletes, 1);
    entry_free(old);
}

struct change {
    json_t *old, *cur; /* new references; old NULL = add, cur NULL = delete */
};

/* A fresh list replaces the cache; the differences are delivered (client-go's Replace). */
static void apply_replace(struct tn_informer *inf, json_t *items)
{
    size_t n = json_array_size(items);
    struct centry **fresh = calloc(n ? n : 1, sizeof *fresh);
    struct hmap seen = {0};
    struct change *ch = NULL;
    size_t nch = 0, cap = 0;
    if (!fresh) goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!(fresh[i] = entry_new(inf, json_array_get(items, i)))) goto oom;
        if (hmap_put(&seen, fresh[i]->key, fresh[i], NULL)) goto oom;
    }
    cap = n + 16;
    if (!(ch = malloc(cap * sizeof *ch))) goto oom;

    pthread_rwlock_wrlock(&inf->lock);
    /* deletions first: cached keys missing from the list */
    struct centry **gone = NULL;
    size_t ngone = 0;
    if (inf->cache.n) {
        gone = malloc(inf->cache.n * sizeof *gone);
        if (gone) {
            HMAP_FOREACH(&inf->cache, he)
            {
                if (!hmap_get(&seen, he->key)) gone[ngone++] = he->val;
            }
        }
    }
    for (size_t i = 0; i < ngone; i++) {
        struct centry *e = cache_del(inf, gone[i]->key);
        if (nch == cap) { /* grow: deletions add to the worst case */
            struct change *nc = realloc(ch, (cap *= 2) * sizeof *ch);
            if (!nc) {
                entry_free(e);
                continue;
            }
            ch = nc;
        }
        ch[nch++] = (struct change){entry_obj(e), NULL};
        entry_free(e);
    }
    free(gone);
    for (size_t i = 0; i < n; i++) {
        struct centry *e = fresh[i];
        fresh[i] = NULL;
        json_t *cur = json_incref(json_array_get(items, i));
        struct centry *old = cache_put(inf, e);
        if (old && entry_same(old, e)) {
            entry_free(old); /* unchanged */
            json_decref(cur);
            continue;
        }
        if (nch == cap) {
            struct change *nc = realloc(ch, (cap *= 2) * sizeof *ch);
            if (!nc) {
                entry_free(old);
                json_decref(cur);
                continue;
            }
            ch = nc;
        }
        ch[nch++] = (struct change){old ? entry_obj(old) : NULL, cur};
        entry_free(old);
    }
    pthread_rwlock_unlock(&inf->lock);

    uint64_t a = 0, u = 0, d = 0;
    for (size_t i = 0; i < nch; i++) {
        if (!ch[i].cur) {
            call_del(inf, ch[i].old);
            d++;
        } else if (!ch[i].old) {
            call_add(inf, ch[i].cur);
            a++;
        } else {
            call_update(inf, ch[i].old, ch[i].cur);
            u++;
        }
        json_decref(ch[i].old);
        json_decref(ch[i].cur);
    }
    pthread_mutex_lock(&inf->mu);
    inf->st.adds += a;
    inf->st.updates += u;
    inf->st.deletes += d;
    pthread_mutex_unlock(&inf->mu);
    free(ch);
    free(fresh);
    hmap_free(&seen);
    return;
oom:
    TN_ERROR("informer: out of memory applying a list", "resource", inf->r.resource);
    for (size_t i = 0; fresh && i < n; i++)
        entry_free(fresh[i]);
    free(fresh);
    free(ch);
    hmap_free(&seen);
}

static void resync(struct tn_informer *inf)
{
    pthread_rwlock_rdlock(&inf->lock);
    size_t n = inf->cache.n, k = 0;
    json_t **objs = malloc((n ? n : 1) * sizeof *objs);
    if (objs) {
        HMAP_FOREACH(&inf->cache, he)
        {
            json_t *o = entry_obj(he->val);
            if (o) objs[k++] = o;
        }
    }
    pthread_rwlock_unlock(&inf->lock);
    for (size_t i = 0; i < k; i++) {
        call_update(inf, objs[i], objs[i]);
        json_decref(objs[i]);
    }
    free(objs);
    count(inf, &inf->st.resyncs, k);
}

static void timespec_in_ms(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *dispatch_main(void *arg)
{
    struct tn_informer *inf = arg;
    int64_t next_resync = inf->o.resync_ms > 0 ? tn_mono_ms() + inf->o.resync_ms : 0;
    pthread_mutex_lock(&inf->mu);
    for (;;) {
        while (!inf->qhead && !inf->stopping) {
            if (next_resync && inf->synced) {
                int64_t left = next_resync - tn_mono_ms();
                if (left <= 0) break;
                struct timespec ts;
                timespec_in_ms(&ts, left);
                pthread_cond_timedwait(&inf->cv, &inf->mu, &ts);
            } else {
                pthread_cond_wait(&inf->cv, &inf->mu);
            }
        }
        if (inf->stopping) break;
        struct qitem *q = inf->qhead;
        if (q) {
            inf->qhead = q->next;
            if (!inf->qhead) inf->qtail = NULL;
        }
        pthread_mutex_unlock(&inf->mu);
        if (!q) {
            resync(inf);
            next_resync = tn_mono_ms() + inf->o.resync_ms;
        } else {
            switch (q->kind) {
            case Q_ADD:
            case Q_MODIFY:
                apply_upsert(inf, q->obj);
                break;
            case Q_DELETE:
                apply_delete(inf, q->obj);
                break;
            case Q_REPLACE:
                apply_replace(inf, q->obj);
                json_decref(q->obj); /* the list is gone before anyone sees has_synced */
                q->obj = NULL;
                pthread_mutex_lock(&inf->mu);
                if (!inf->synced) {
                    inf->synced = 1;
                    pthread_cond_broadcast(&inf->cv);
                }
                pthread_mutex_unlock(&inf->mu);
                break;
            }
            json_decref(q->obj);
            free(q);
        }
        pthread_mutex_lock(&inf->mu);
    }
    pthread_mutex_unlock(&inf->mu);
    return NULL;
}

/* Queues obj (stolen). */
static void enqueue(struct tn_informer *inf, enum qkind k, json_t *obj)
{
    struct qitem *q = malloc(sizeof *q);
    if (!q) {
        TN_ERROR("informer: out of memory, event dropped", "resource", inf->r.resource);
        json_decref(obj);
        return;
    }
    q->next = NULL;
    q->kind = k;
    q->obj = obj;
    pthread_mutex_lock(&inf->mu);
    if (inf->qtail)
        inf->qtail->next = q;
    else
        inf->qhead = q;
    inf->qtail = q;
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
}

static void strip(struct tn_informer *inf, json_t *obj)
{
    if (inf->o.keep_managed_fields) return;
    json_t *md = json_object_get(obj, "metadata");
    if (json_is_object(md)) json_object_del(md, "managedFields");
}

/* ---- reflector thread ------------------------------------------------------------------- */

/* Client thread: must be quick. */
static void on_event(enum tn_kube_event t, json_t *obj, void *arg)
{
    struct tn_informer *inf = arg;
    const char *rv = tn_json_str(obj, "metadata.resourceVersion", "");
    pthread_mutex_lock(&inf->mu);
    inf->watch_events++;
    inf->st.events++;
    if (*rv && t != TN_KUBE_ERROR) snprintf(inf->rv, sizeof inf->rv, "%s", rv);
    pthread_mutex_unlock(&inf->mu);
    switch (t) {
    case TN_KUBE_ADDED:
        strip(inf, obj);
        enqueue(inf, Q_ADD, json_incref(obj));
        break;
    case TN_KUBE_MODIFIED:
        strip(inf, obj);
        enqueue(inf, Q_MODIFY, json_incref(obj));
        break;
    case TN_KUBE_DELETED:
        strip(inf, obj);
        enqueue(inf, Q_DELETE, json_incref(obj));
        break;
    case TN_KUBE_BOOKMARK:
    case TN_KUBE_ERROR:
        break;
    }
}

static void on_end(int code, void *arg)
{
    struct tn_informer *inf = arg;
    pthread_mutex_lock(&inf->mu);
    inf->watch_ended = 1;
    inf->end_code = code;
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
}

/* Sleeps up to ms unless stopping; returns nonzero when stopping. */
static int pause_ms(struct tn_informer *inf, int64_t ms)
{
    struct timespec ts;
    timespec_in_ms(&ts, ms);
    pthread_mutex_lock(&inf->mu);
    while (!inf->stopping) {
        if (pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) == ETIMEDOUT) break;
    }
    int s = inf->stopping;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

struct backoff {
    int64_t cur_ms;
    int64_t last_failure_ms;
};

/* client-go's reflector backoff: 0.8 s doubling to 30 s, jitter 1.0, reset after 2 min without
 * failures. Returns nonzero when stopping. */
static int backoff_wait(struct tn_informer *inf, struct backoff *b)
{
    int64_t now = tn_mono_ms();
    if (!b->cur_ms || now - b->last_failure_ms > INF_BACKOFF_RESET_MS)
        b->cur_ms = INF_BACKOFF_START_MS;
    int64_t d = b->cur_ms + (int64_t)(tn_rand_unit() * (double)b->cur_ms);
    if (d > INF_BACKOFF_CAP_MS) d = INF_BACKOFF_CAP_MS;
    b->cur_ms = b->cur_ms * 2 > INF_BACKOFF_CAP_MS ? INF_BACKOFF_CAP_MS : b->cur_ms * 2;
    b->last_failure_ms = now;
    count(inf, &inf->st.failures, 1);
    return pause_ms(inf, d);
}

static int stopping(struct tn_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    int s = inf->stopping;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

/* Paged list (resourceVersion "" = a consistent read) queued as one Q_REPLACE. */
static int relist(struct tn_informer *inf)
{
    struct tn_kube_list_opts lo = {
        .label_selector = inf->lsel,
        .field_selector = inf->fsel,
        .limit = inf->o.page_size,
    };
    json_t *l = NULL;
    struct tn_err err = {0};
    int rc = tn_kube_list(inf->c, &inf->r, inf->ns, &lo, &l, NULL, &err);
    if (rc) {
        TN_WARN("informer: list failed", "resource", inf->r.resource, "error", err.msg);
        return rc;
    }
    json_t *items = json_incref(json_object_get(l, "items"));
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        strip(inf, it);
    }
    pthread_mutex_lock(&inf->mu);
    snprintf(inf->rv, sizeof inf->rv, "%s", tn_json_str(l, "metadata.resourceVersion", ""));
    inf->st.lists++;
    pthread_mutex_unlock(&inf->mu);
    json_decref(l);
    enqueue(inf, Q_REPLACE, items);
    return 0;
}

static void *reflector_main(void *arg)
{
    struct tn_informer *inf = arg;
    struct backoff b = {0};
    int need_list = 1;
    int64_t listed_at = 0;
    while (!stopping(inf)) {
        if (need_list) {
            if (relist(inf) != 0) {
                if (backoff_wait(inf, &b)) break;
                continue;
            }
            need_list = 0;
            listed_at = tn_mono_ms();
        }
        struct tn_kube_watch_opts wo = {
            .label_selector = inf->lsel,
            .field_selector = inf->fsel,
            .bookmarks = 1,
            .timeout_s = inf->o.watch_timeout_s,
            .idle_timeout_ms = inf->o.idle_timeout_ms,
        };
        char rv[64];
        pthread_mutex_lock(&inf->mu);
        snprintf(rv, sizeof rv, "%s", inf->rv);
        inf->watch_ended = 0;
        inf->watch_events = 0;
        inf->st.watches++;
        pthread_mutex_unlock(&inf->mu);
        wo.resource_version = rv;
        struct tn_err err = {0};
        int64_t t0 = tn_mono_ms();
        struct tn_kube_watch *w =
            tn_kube_watch_start(inf->c, &inf->r, inf->ns, &wo, on_event, on_end, inf, &err);
        if (!w) {
            TN_WARN("informer: cannot start watch", "resource", inf->r.resource, "error", err.msg);
            if (backoff_wait(inf, &b)) break;
            continue;
        }
        pthread_mutex_lock(&inf->mu);
        while (!inf->watch_ended && !inf->stopping)
            pthread_cond_wait(&inf->cv, &inf->mu);
        int code = inf->end_code, ended = inf->watch_ended;
        uint64_t events = inf->watch_events;
        pthread_mutex_unlock(&inf->mu);
        tn_kube_watch_stop(w); /* after this no callback runs: the queue order is final */
        if (!ended) break;     /* stopping */
        int64_t dur = tn_mono_ms() - t0;
        char cs[16];
        snprintf(cs, sizeof cs, "%d", code);
        if (code == 410) {
            count(inf, &inf->st.expired, 1);
            TN_INFO("informer: resourceVersion expired, relisting", "resource", inf->r.resource,
                    "resourceVersion", rv);
            need_list = 1;
            /* an expiry right after a fresh list would loop: back off then */
            if (tn_mono_ms() - listed_at < INF_SHORT_WATCH_MS && backoff_wait(inf, &b)) break;
            continue;
        }
        if (code < 0 || (dur < INF_SHORT_WATCH_MS && events == 0)) {
            TN_INFO("informer: watch failed, backing off", "resource", inf->r.resource, "code", cs);
            if (backoff_wait(inf, &b)) break;
        }
    }
    return NULL;
}

/* ---- public API ----------------------------------------------------------------------- */

struct tn_informer *tn_informer_new(struct tn_kube_client *c, const struct tn_kube_gvr *r,
                                    const struct tn_informer_opts *opts, struct tn_err *err)
{
    if (!c || !r || !r->resource || !*r->resource) {
        tn_err_set(err, TN_EINVAL, "informer: client and resource are required");
        return NULL;
    }
    struct tn_informer *inf = calloc(1, sizeof *inf);
    if (!inf) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    inf->c = c;
    inf->r = *r;
    if (opts) inf->o = *opts;
    if (inf->o.page_size <= 0) inf->o.page_size = 500;
    inf->ns = inf->o.namespace_ && *inf->o.namespace_ ? strdup(inf->o.namespace_) : NULL;
    inf->lsel =
        inf->o.label_selector && *inf->o.label_selector ? strdup(inf->o.label_selector) : NULL;
    inf->fsel =
        inf->o.field_selector && *inf->o.field_selector ? strdup(inf->o.field_selector) : NULL;
    inf->o.namespace_ = inf->o.label_selector = inf->o.field_selector = NULL;
    pthread_rwlock_init(&inf->lock, NULL);
    pthread_mutex_init(&inf->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!inf->o.no_builtin_indexes) {
        tn_informer_add_index(inf, TN_INFORMER_INDEX_NAMESPACE, idx_namespace, NULL);
        tn_informer_add_index(inf, TN_INFORMER_INDEX_LABEL, idx_label, NULL);
        tn_informer_add_index(inf, TN_INFORMER_INDEX_OWNER, idx_owner, NULL);
        tn_informer_add_index(inf, TN_INFORMER_INDEX_NODE, idx_node, NULL);
    }
    return inf;
}

int tn_informer_add_index(struct tn_informer *inf, const char *name, tn_informer_index_fn fn,
                          void *arg)
{
    if (!name || !fn || inf->started) return TN_EINVAL;
    for (int i = 0; i < inf->nidx; i++)
        if (strcmp(inf->idx[i].name, name) == 0) return TN_EEXIST;
    if (inf->nidx >= INF_MAX_INDEXES) return TN_ENOMEM;
    char *n = strdup(name);
    if (!n) return TN_ENOMEM;
    inf->idx[inf->nidx++] = (struct index){.name = n, .fn = fn, .arg = arg};
    return 0;
}

int tn_informer_add_handlers(struct tn_informer *inf, const struct tn_informer_handlers *h)
{
    if (!h || inf->started) return TN_EINVAL;
    if (inf->nh >= INF_MAX_HANDLERS) return TN_ENOMEM;
    inf->h[inf->nh++] = *h;
    return 0;
}

int tn_informer_start(struct tn_informer *inf, struct tn_err *err)
{
    if (inf->started) return tn_err_set(err, TN_EINVAL, "informer already started");
    inf->started = 1;
    if (pthread_create(&inf->dispatcher, NULL, dispatch_main, inf) != 0) {
        inf->started = 0;
        return tn_err_set(err, TN_EIO, "informer: cannot start the dispatch thread");
    }
    if (pthread_create(&inf->reflector, NULL, reflector_main, inf) != 0) {
        pthread_mutex_lock(&inf->mu);
        inf->stopping = 1;
        pthread_cond_broadcast(&inf->cv);
        pthread_mutex_unlock(&inf->mu);
        pthread_join(inf->dispatcher, NULL);
        inf->started = 0;
        return tn_err_set(err, TN_EIO, "informer: cannot start the reflector thread");
    }
    return 0;
}

void tn_informer_stop(struct tn_informer *inf)
{
    if (!inf || inf->started != 1) return;
    pthread_mutex_lock(&inf->mu);
    inf->stopping = 1;
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
    pthread_join(inf->reflector, NULL); /* stops its watch: no more events are queued */
    pthread_join(inf->dispatcher, NULL);
    inf->started = 2;
    struct qitem *q = inf->qhead, *next;
    for (; q; q = next) {
        next = q->next;
        json_decref(q->obj);
        free(q);
    }
    inf->qhead = inf->qtail = NULL;
}

void tn_informer_free(struct tn_informer *inf)
{
    if (!inf) return;
    tn_informer_stop(inf);
    HMAP_FOREACH(&inf->cache, he)
    {
        struct centry *e = he->val;
        unindex(inf, e);
        entry_free(e);
    }
    hmap_free(&inf->cache);
    for (int i = 0; i < inf->nidx; i++) {
        hmap_free(&inf->idx[i].buckets);
        free(inf->idx[i].name);
    }
    pthread_rwlock_destroy(&inf->lock);
    pthread_mutex_destroy(&inf->mu);
    pthread_cond_destroy(&inf->cv);
    free(inf->ns);
    free(inf->lsel);
    free(inf->fsel);
    free(inf);
}

int tn_informer_has_synced(struct tn_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    int s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

int tn_informer_wait_synced(struct tn_informer *inf, int64_t timeout_ms)
{
    struct timespec ts;
    timespec_in_ms(&ts, timeout_ms);
    pthread_mutex_lock(&inf->mu);
    while (!inf->synced && !inf->stopping) {
        if (pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) == ETIMEDOUT) break;
    }
    int s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

json_t *tn_informer_get(struct tn_informer *inf, const char *ns, const char *name)
{
    char key[640];
    if (ns && *ns)
        snprintf(key, sizeof key, "%s/%s", ns, name);
    else
        snprintf(key, sizeof key, "%s", name);
    pthread_rwlock_rdlock(&inf->lock);
    struct centry *e = hmap_get(&inf->cache, key);
    json_t *o = e ? entry_obj(e) : NULL;
    pthread_rwlock_unlock(&inf->lock);
    return o;
}

static int append_obj(const json_t *obj, void *arg)
{
    json_array_append((json_t *)arg, (json_t *)obj);
    return 0;
}

json_t *tn_informer_list(struct tn_informer *inf)
{
    json_t *a = json_array();
    if (a) tn_informer_foreach(inf, NULL, NULL, append_obj, a);
    return a;
}

json_t *tn_informer_by_index(struct tn_informer *inf, const char *index, const char *value)
{
    json_t *a = json_array();
    if (a && tn_informer_foreach(inf, index, value, append_obj, a) < 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

int tn_informer_foreach(struct tn_informer *inf, const char *index, const char *value,
                        tn_informer_iter_fn fn, void *arg)
{
    int n = 0;
    pthread_rwlock_rdlock(&inf->lock);
    const struct hmap *m = &inf->cache;
    if (index) {
        int i = 0;
        while (i < inf->nidx && strcmp(inf->idx[i].name, index) != 0)
            i++;
        if (i == inf->nidx) {
            pthread_rwlock_unlock(&inf->lock);
            return TN_ENOTFOUND;
        }
        struct bucket *b = value ? hmap_get(&inf->idx[i].buckets, value) : NULL;
        m = b ? &b->keys : NULL;
    }
    if (m) {
        HMAP_FOREACH(m, he)
        {
            n++;
            json_t *o = entry_obj(he->val);
            int stop = o ? fn(o, arg) : 0;
            json_decref(o);
            if (stop) goto out;
        }
    }
out:
    pthread_rwlock_unlock(&inf->lock);
    return n;
}

size_t tn_informer_len(struct tn_informer *inf)
{
    pthread_rwlock_rdlock(&inf->lock);
    size_t n = inf->cache.n;
    pthread_rwlock_unlock(&inf->lock);
    return n;
}

void tn_informer_resource_version(struct tn_informer *inf, char *out, size_t n)
{
    pthread_mutex_lock(&inf->mu);
    snprintf(out, n, "%s", inf->rv);
    pthread_mutex_unlock(&inf->mu);
}

void tn_informer_stats(struct tn_informer *inf, struct tn_informer_stats *out)
{
    pthread_mutex_lock(&inf->mu);
    *out = inf->st;
    pthread_mutex_unlock(&inf->mu);
}
