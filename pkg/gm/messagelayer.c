/* GM side of the GM<->LC websocket link: per-node stores of the newest downstream message per
 * object, written from the loop thread, and an upstream dispatcher thread feeding the GM's
 * status handler. See messagelayer.h for the contract and docs/protocol.md for the wire. */
#include "gm/messagelayer.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apis/message.h"
#include "base/http.h"
#include "base/log.h"
#include "base/metrics.h"

#define NODE_BUCKETS 256
#define PEND_BUCKETS 256
#define DEFAULT_QUEUE_CAP 1000
#define RETRY_MS 200

/* One stored downstream message. key NULL = a "resynced" marker (never replaced). */
struct pend {
    char *key;
    char *text;
    size_t len;
    char op[24];
    uint64_t marker_gen; /* marker: only for the connection of this generation */
    struct pend *prev, *next;
    struct pend *hnext;
};

/* Per node state, under ml->mu. Nodes live until tn_ml_free. */
struct node {
    char *name;
    struct node *hnext;
    struct ml_conn *cur; /* current connection, written on the loop thread */
    uint64_t gen;        /* cur's generation, 0 without one */
    int resync_feat;     /* cur announced resync */
    uint64_t resync_gen; /* gen at the last tn_ml_resync_begin */
    struct pend *head, *tail;
    struct pend *buckets[PEND_BUCKETS];
    size_t npend;
    int dirty, retry;
    struct node *dirty_next;
};

/* Per websocket connection; loop thread only. */
struct ml_conn {
    struct tn_ml *ml;
    struct tn_ws_conn *ws;
    char *node;
    uint64_t gen;
    int announced, ack, resync;
    int overloaded;
};

struct ack {
    char *node;
    uint64_t gen;
    long long id;
    struct ack *next;
};

enum { IT_STATUS, IT_NODE };

struct item {
    int type;
    char *node, *kind, *ns, *name;
    json_t *content;
    int has_id, connected;
    long long id;
    uint64_t gen;
    struct item *next;
};

struct tn_ml {
    pthread_mutex_t mu; /* nodes, acks, srv, work flags */
    struct node *nodes[NODE_BUCKETS];
    size_t nconnected, npending;
    struct node *dirty;
    struct ack *acks, *acks_tail;
    int work_posted, retry_armed;
    struct tn_http_server *srv;
    uint64_t next_gen;

    char **tokens; /* alternating node, token */
    size_t ntokens;
    char **features;
    size_t nfeatures;
    tn_ml_status_fn on_status;
    tn_ml_node_fn on_node;
    void *arg;
    struct tn_metric *m_connected, *m_msgs, *m_pending;

    pthread_mutex_t qmu; /* dispatcher queue; never held together with mu */
    pthread_cond_t qcv;
    struct item *qhead, *qtail;
    size_t qlen, qcap;
    int qstop, thr_started;
    pthread_t thr;
};

static const char ws_extra_headers_storage[] = "x-tandem-features";
static const char *const ws_extra_headers[] = {ws_extra_headers_storage, NULL};

/* ---- small helpers ---- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void count_msg(struct tn_ml *ml, const char *direction, const char *op)
{
    const char *v[] = {direction, op};
    tn_metric_inc(ml->m_msgs, v);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (d)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

/* Borrowed: the node, or NULL. mu held. */
static struct node *node_find(struct tn_ml *ml, const char *name)
{
    for (struct node *n = ml->nodes[hash_str(name) % NODE_BUCKETS]; n; n = n->hnext)
        if (strcmp(n->name, name) == 0) return n;
    return NULL;
}

/* Borrowed: the node, created when missing; NULL on OOM. mu held. */
static struct node *node_get(struct tn_ml *ml, const char *name)
{
    struct node *n = node_find(ml, name);
    if (n) return n;
    n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->name = strdup(name);
    if (!n->name) {
        free(n);
        return NULL;
    }
    uint32_t b = hash_str(name) % NODE_BUCKETS;
    n->hnext = ml->nodes[b];
    ml->nodes[b] = n;
    return n;
}

static void pend_free(struct pend *p)
{
    free(p->key);
    free(p->text);
    free(p);
}

/* Unlinks p from n's FIFO and hash and frees it. mu held. */
static void pend_remove(struct tn_ml *ml, struct node *n, struct pend *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        n->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        n->tail = p->prev;
    if (p->key) {
        struct pend **pp = &n->buckets[hash_str(p->key) % PEND_BUCKETS];
        while (*pp && *pp != p)
            pp = &(*pp)->hnext;
        if (*pp) *pp = p->hnext;
    }
    n->npend--;
    ml->npending--;
    tn_metric_set(ml->m_pending, NULL, (double)ml->npending);
    pend_free(p);
}

/* Appends p (owned from now on) to n's FIFO. mu held. */
static void pend_append(struct tn_ml *ml, struct node *n, struct pend *p)
{
    p->prev = n->tail;
    p->next = NULL;
    if (n->tail)
        n->tail->next = p;
    else
        n->head = p;
    n->tail = p;
    if (p->key) {
        uint32_t b = hash_str(p->key) % PEND_BUCKETS;
        p->hnext = n->buckets[b];
        n->buckets[b] = p;
    }
    n->npend++;
    ml->npending++;
    tn_metric_set(ml->m_pending, NULL, (double)ml->npending);
}

static void ml_work(void *arg);

/* Has the loop run ml_work soon. mu held. */
static void schedule_work(struct tn_ml *ml)
{
    if (ml->work_posted || !ml->srv) return;
    if (tn_http_server_post(ml->srv, ml_work, ml) == 0) ml->work_posted = 1;
}

static void mark_dirty(struct tn_ml *ml, struct node *n)
{
    if (!n->dirty) {
        n->dirty = 1;
        n->dirty_next = ml->dirty;
        ml->dirty = n;
    }
    schedule_work(ml);
}

static void retry_timer(void *arg)
{
    struct tn_ml *ml = arg;
    pthread_mutex_lock(&ml->mu);
    ml->retry_armed = 0;
    for (size_t b = 0; b < NODE_BUCKETS; b++)
        for (struct node *n = ml->nodes[b]; n; n = n->hnext)
            if (n->retry) {
                n->retry = 0;
                mark_dirty(ml, n);
            }
    pthread_mutex_unlock(&ml->mu);
}

/* Writes n's stored messages to its connection. Loop thread, mu held. */
static void flush_node(struct tn_ml *ml, struct node *n)
{
    struct ml_conn *c = n->cur;
    if (!c) return;
    while (n->head) {
        struct pend *p = n->head;
        if (!p->key && p->marker_gen != n->gen) { /* marker of an older connection */
            pend_remove(ml, n, p);
            continue;
        }
        int rc = tn_ws_send(c->ws, p->text, p->len, 0);
        if (rc == TN_ETOOBIG) { /* the LC reads slowly: try again once its queue drained */
            n->retry = 1;
            if (!ml->retry_armed && ml->srv &&
                tn_http_timer_add(ml->srv, RETRY_MS, retry_timer, ml) != NULL)
                ml->retry_armed = 1;
            return;
        }
        if (rc) return; /* closing: kept for the next connection */
        count_msg(ml, "downstream", p->op);
        pend_remove(ml, n, p);
    }
}

static void send_ack(struct tn_ml *ml, struct ml_conn *c, long long id)
{
    char buf[160];
    int len = snprintf(buf, sizeof(buf),
                       "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":"
                       "\"\",\"operation\":\"ack\"},\"ack\":%lld}",
                       id);
    if (tn_ws_send(c->ws, buf, (size_t)len, 0) == 0) count_msg(ml, "downstream", "ack");
}

/* Loop thread: writes dirty nodes and queued acks. */
static void ml_work(void *arg)
{
    struct tn_ml *ml = arg;
    pthread_mutex_lock(&ml->mu);
    ml->work_posted = 0;
    struct ack *acks = ml->acks;
    ml->acks = ml->acks_tail = NULL;
    while (ml->dirty) {
        struct node *n = ml->dirty;
        ml->dirty = n->dirty_next;
        n->dirty = 0;
        flush_node(ml, n);
    }
    for (struct ack *a = acks; a; a = a->next) {
        struct node *n = node_find(ml, a->node);
        if (n && n->cur && n->gen == a->gen) send_ack(ml, n->cur, a->id);
    }
    pthread_mutex_unlock(&ml->mu);
    while (acks) {
        struct ack *next = acks->next;
        free(acks->node);
        free(acks);
        acks = next;
    }
}

/* ---- dispatcher ---- */

static void item_free(struct item *it)
{
    free(it->node);
    free(it->kind);
    free(it->ns);
    free(it->name);
    json_decref(it->content);
    free(it);
}

/* Takes it. Returns 0, or -1 when the queue is full (status items only) or stopped; it is freed
 * then. */
static int enqueue(struct tn_ml *ml, struct item *it)
{
    pthread_mutex_lock(&ml->qmu);
    if (ml->qstop || (it->type == IT_STATUS && ml->qlen >= ml->qcap)) {
        pthread_mutex_unlock(&ml->qmu);
        item_free(it);
        return -1;
    }
    if (it->type == IT_STATUS) ml->qlen++;
    it->next = NULL;
    if (ml->qtail)
        ml->qtail->next = it;
    else
        ml->qhead = it;
    ml->qtail = it;
    pthread_cond_signal(&ml->qcv);
    pthread_mutex_unlock(&ml->qmu);
    return 0;
}

static void *dispatcher(void *arg)
{
    struct tn_ml *ml = arg;
    for (;;) {
        pthread_mutex_lock(&ml->qmu);
        while (!ml->qhead && !ml->qstop)
            pthread_cond_wait(&ml->qcv, &ml->qmu);
        if (ml->qstop) {
            pthread_mutex_unlock(&ml->qmu);
            break;
        }
        struct item *it = ml->qhead;
        ml->qhead = it->next;
        if (!ml->qhead) ml->qtail = NULL;
        if (it->type == IT_STATUS) ml->qlen--;
        pthread_mutex_unlock(&ml->qmu);

        if (it->type == IT_NODE) {
            if (ml->on_node) ml->on_node(it->node, it->connected, ml->arg);
        } else {
            int rc = ml->on_status
                         ? ml->on_status(it->node, it->kind, it->ns, it->name, it->content, ml->arg)
                         : 0;
            if (rc != 0)
                TN_WARN("status not handled, left unacked", "node", it->node, "kind", it->kind,
                        "namespace", it->ns, "name", it->name);
            if (rc == 0 && it->has_id) {
                struct ack *a = calloc(1, sizeof(*a));
                if (a) a->node = strdup(it->node);
                if (a && a->node) {
                    a->gen = it->gen;
                    a->id = it->id;
                    pthread_mutex_lock(&ml->mu);
                    if (ml->acks_tail)
                        ml->acks_tail->next = a;
                    else
                        ml->acks = a;
                    ml->acks_tail = a;
                    schedule_work(ml);
                    pthread_mutex_unlock(&ml->mu);
                } else {
                    free(a);
                }
            }
        }
        item_free(it);
    }
    return NULL;
}

static void node_event(struct tn_ml *ml, const char *node, int connected)
{
    struct item *it = calloc(1, sizeof(*it));
    if (!it) return;
    it->type = IT_NODE;
    it->connected = connected;
    it->node = strdup(node);
    if (!it->node) {
        free(it);
        return;
    }
    enqueue(ml, it);
}

/* ---- websocket callbacks (loop thread) ---- */

/* Constant-time comparison so a token cannot be guessed byte by byte. */
static int token_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int ws_accept(struct tn_ws_conn *c, void *user)
{
    struct tn_ml *ml = user;
    if (!ml->ntokens) return 0;
    const char *node = tn_ws_header(c, "node-name");
    const char *auth = tn_ws_header(c, "authorization");
    const char *want = NULL;
    for (size_t i = 0; node && i < ml->ntokens; i++)
        if (strcmp(ml->tokens[2 * i], node) == 0) want = ml->tokens[2 * i + 1];
    const char *got = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
    if (want && got && token_eq(want, got)) return 0;
    TN_WARN("websocket refused: bad node token", "node", node ? node : "", "peer", tn_ws_peer(c),
            "reason",
            !node   ? "no Node-Name"
            : !want ? "unknown node"
            : !got  ? "no token"
                    : "wrong token");
    return 401;
}

static int offered(struct tn_ml *ml, const char *f, size_t len)
{
    for (size_t i = 0; i < ml->nfeatures; i++)
        if (strlen(ml->features[i]) == len && strncmp(ml->features[i], f, len) == 0) return 1;
    return 0;
}

/* Parses the LC's X-Tandem-Features and sends the features message with the agreed subset. */
static void negotiate(struct tn_ml *ml, struct ml_conn *mc, const char *hdr)
{
    json_t *list = json_array();
    const char *p = hdr;
    while (list && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - s);
        if (len == 0 || !offered(ml, s, len)) continue;
        int dup = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *x = json_string_value(json_array_get(list, i));
            if (strlen(x) == len && strncmp(x, s, len) == 0) dup = 1;
        }
        if (dup) continue;
        json_array_append_new(list, json_stringn(s, len));
        if (len == 3 && strncmp(s, "ack", 3) == 0) mc->ack = 1;
        if (len == 6 && strncmp(s, "resync", 6) == 0) mc->resync = 1;
    }
    json_t *content = json_pack("{s:o}", "features", list ? list : json_array());
    struct tn_err err = {0};
    size_t n = 0;
    char *text = content ? tn_msg_encode_json("", "", "", "features", content, &n, &err) : NULL;
    if (text && tn_ws_send(mc->ws, text, n, 0) == 0) count_msg(ml, "downstream", "features");
    free(text);
    json_decref(content);
}

static void ws_open(struct tn_ws_conn *c, void *user)
{
    struct tn_ml *ml = user;
    const char *node = tn_ws_header(c, "node-name");
    const char *feat = tn_ws_header(c, "x-tandem-features");
    struct ml_conn *mc = calloc(1, sizeof(*mc));
    if (mc) mc->node = strdup(node ? node : "");
    if (!mc || !mc->node) {
        free(mc);
        TN_ERROR("out of memory accepting websocket", "node", node ? node : "");
        tn_ws_close(c, 1011, "out of memory");
        return;
    }
    mc->ml = ml;
    mc->ws = c;
    tn_ws_set_data(c, mc);
    if (feat) {
        mc->announced = 1;
        negotiate(ml, mc, feat); /* first message on the connection */
    }

    struct ml_conn *old = NULL;
    pthread_mutex_lock(&ml->mu);
    struct node *n = node_get(ml, mc->node);
    if (n) {
        old = n->cur;
        mc->gen = ++ml->next_gen;
        n->cur = mc;
        n->gen = mc->gen;
        n->resync_feat = mc->resync;
        if (!old) {
            ml->nconnected++;
            tn_metric_set(ml->m_connected, NULL, (double)ml->nconnected);
        }
        flush_node(ml, n);
    }
    pthread_mutex_unlock(&ml->mu);
    if (!n) {
        tn_ws_close(c, 1011, "out of memory");
        return;
    }
    if (old) {
        TN_INFO("node reconnected, closing its previous connection", "node", mc->node, "peer",
                tn_ws_peer(c), "old_peer", tn_ws_peer(old->ws));
        tn_ws_close(old->ws, TN_ML_CLOSE_REPLACED, "replaced");
    } else {
        TN_INFO("node connected", "node", mc->node, "peer", tn_ws_peer(c), "features",
                feat ? feat : "");
    }
    node_event(ml, mc->node, 1);
}

static void ws_close(struct tn_ws_conn *c, int code, void *user)
{
    struct tn_ml *ml = user;
    struct ml_conn *mc = tn_ws_get_data(c);
    if (!mc) return;
    int gone = 0;
    pthread_mutex_lock(&ml->mu);
    struct node *n = node_find(ml, mc->node);
    if (n && n->cur == mc) {
        n->cur = NULL;
        n->gen = 0;
        n->resync_feat = 0;
        ml->nconnected--;
        tn_metric_set(ml->m_connected, NULL, (double)ml->nconnected);
        gone = 1;
    }
    pthread_mutex_unlock(&ml->mu);
    if (gone) {
        char cs[16];
        snprintf(cs, sizeof(cs), "%d", code);
        TN_INFO("node disconnected", "node", mc->node, "code", cs);
        node_event(ml, mc->node, 0);
    }
    tn_ws_set_data(c, NULL);
    free(mc->node);
    free(mc);
}

/* The "id" of an acked upstream envelope; 0 when absent or not an integer. */
static int envelope_id(const char *data, size_t len, long long *id)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *v = json_object_get(root, "id");
    int ok = json_is_integer(v);
    if (ok) *id = json_integer_value(v);
    json_decref(root);
    return ok;
}

static void ws_message(struct tn_ws_conn *c, const char *data, size_t len, int is_binary,
                       void *user)
{
    struct tn_ml *ml = user;
    struct ml_conn *mc = tn_ws_get_data(c);
    if (!mc) return;
    if (mc->overloaded) {
        count_msg(ml, "upstream", "dropped");
        return;
    }
    struct tn_msg m;
    struct tn_err err = {0};
    if (is_binary || tn_msg_decode(data, len, &m, &err) != 0) {
        count_msg(ml, "upstream", "invalid");
        TN_WARN("dropping malformed message", "node", mc->node, "peer", tn_ws_peer(c), "error",
                is_binary ? "binary frame" : err.msg);
        return;
    }
    if (m.is_hello) {
        count_msg(ml, "upstream", "hello");
        tn_msg_free(&m);
        return;
    }
    long long id = 0;
    int has_id = mc->ack && envelope_id(data, len, &id);
    if (strcmp(m.op, TN_MSG_OP_STATUS) != 0) {
        count_msg(ml, "upstream", "other");
        TN_WARN("dropping message with unknown operation", "node", mc->node, "operation", m.op,
                "kind", m.kind, "namespace", m.ns, "name", m.name);
        if (has_id) send_ack(ml, mc, id); /* deliberately dropped: the LC must not re-send it */
        tn_msg_free(&m);
        return;
    }
    struct item *it = calloc(1, sizeof(*it));
    if (it) {
        it->type = IT_STATUS;
        it->node = strdup(mc->node);
        it->kind = lower_dup(m.kind);
        it->ns = strdup(m.ns);
        it->name = strdup(m.name);
        it->content = json_incref(m.json);
        it->has_id = has_id;
        it->id = id;
        it->gen = mc->gen;
    }
    tn_msg_free(&m);
    if (it && (!it->node || !it->kind || !it->ns || !it->name)) {
        item_free(it);
        it = NULL;
    }
    if (!it || enqueue(ml, it) != 0) {
        count_msg(ml, "upstream", "dropped");
        TN_WARN("upstream queue full, dropping status and closing the connection", "node", mc->node,
                "peer", tn_ws_peer(c));
        mc->overloaded = 1;
        tn_ws_close(c, TN_ML_CLOSE_OVERLOADED, "GM overloaded");
        return;
    }
    count_msg(ml, "upstream", "status");
}

/* ---- public API ---- */

static char **strv_dup(const char *const *v, size_t *n)
{
    size_t k = 0;
    while (v[k])
        k++;
    char **d = calloc(k + 1, sizeof(*d));
    if (!d) return NULL;
    for (size_t i = 0; i < k; i++)
        if (!(d[i] = strdup(v[i]))) {
            tn_ml_strv_free(d);
            return NULL;
        }
    *n = k;
    return d;
}

void tn_ml_strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

char **tn_ml_tokens_load(const char *path, struct tn_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        tn_err_set(err, TN_EIO, "node tokens %s: %s", path, strerror(errno));
        return NULL;
    }
    char **v = calloc(1, sizeof(*v));
    size_t n = 0, cap = 0, lineno = 0;
    if (!v) {
        fclose(f);
        tn_err_set(err, TN_ENOMEM, "node tokens %s: out of memory", path);
        return NULL;
    }
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        char *comma = strchr(l, ',');
        if (comma) *comma = 0;
        char *node = trim(l), *tok = comma ? trim(comma + 1) : NULL;
        if (!tok || !*node || !*tok) {
            tn_err_set(err, TN_EINVAL, "node tokens %s:%zu: want \"node,token\"", path, lineno);
            goto fail;
        }
        for (size_t i = 0; i < n; i += 2)
            if (strcmp(v[i], node) == 0) {
                tn_err_set(err, TN_EINVAL, "node tokens %s:%zu: node %s listed twice", path, lineno,
                           node);
                goto fail;
            }
        if (n + 3 > cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof(*v));
            if (!nv) goto oom;
            v = nv;
        }
        v[n] = strdup(node);
        v[n + 1] = strdup(tok);
        v[n + 2] = NULL;
        n += 2;
        if (!v[n - 2] || !v[n - 1]) goto oom;
    }
    if (n == 0) {
        /* an empty file would refuse every node: more likely a mistake than the intent */
        tn_err_set(err, TN_EINVAL, "node tokens %s: no \"node,token\" lines", path);
        goto fail;
    }
    fclose(f);
    return v;
oom:
    tn_err_set(err, TN_ENOMEM, "node tokens %s: out of memory", path);
fail:
    fclose(f);
    if (v) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    return NULL;
}

struct tn_ml *tn_ml_new(const struct tn_ml_opts *opts, struct tn_err *err)
{
    static const char *const def_features[] = {"ack", "resync", NULL};
    struct tn_ml *ml = calloc(1, sizeof(*ml));
    if (!ml) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ml->mu, NULL);
    pthread_mutex_init(&ml->qmu, NULL);
    pthread_cond_init(&ml->qcv, NULL);
    ml->qcap = opts->queue_cap ? opts->queue_cap : DEFAULT_QUEUE_CAP;
    ml->on_status = opts->on_status;
    ml->on_node = opts->on_node;
    ml->arg = opts->arg;
    size_t nt = 0;
    if (opts->node_tokens) {
        ml->tokens = strv_dup(opts->node_tokens, &nt);
        if (!ml->tokens) goto oom;
        if (nt % 2) {
            tn_err_set(err, TN_EINVAL,
                       "node tokens: odd number of strings (want node, token pairs)");
            tn_ml_free(ml);
            return NULL;
        }
        ml->ntokens = nt / 2;
    }
    ml->features = strv_dup(opts->features ? opts->features : def_features, &ml->nfeatures);
    if (!ml->features) goto oom;
    if (opts->metrics) {
        static const char *const labels[] = {"direction", "operation", NULL};
        ml->m_connected = tn_metrics_gauge(opts->metrics, "tandem_gm_ws_connected_nodes",
                                           "Edge nodes with an open websocket to GM.", NULL);
        ml->m_msgs = tn_metrics_counter(opts->metrics, "tandem_gm_ws_messages_total",
                                        "Websocket messages exchanged with LCs.", labels);
        ml->m_pending = tn_metrics_gauge(opts->metrics, "tandem_gm_ws_pending_messages",
                                         "Downstream messages stored, not yet written.", NULL);
    }
    if (pthread_create(&ml->thr, NULL, dispatcher, ml) != 0) goto oom;
    ml->thr_started = 1;
    return ml;
oom:
    tn_err_set(err, TN_ENOMEM, "out of memory");
    tn_ml_free(ml);
    return NULL;
}

void tn_ml_configure(struct tn_ml *ml, struct tn_http_config *cfg)
{
    cfg->user = ml;
    cfg->ws_accept = ws_accept;
    cfg->ws_open = ws_open;
    cfg->ws_message = ws_message;
    cfg->ws_close = ws_close;
    cfg->ws_headers = ws_extra_headers;
    if (!cfg->ws_ping_secs) cfg->ws_ping_secs = TN_WS_PING_SECS;
    if (!cfg->ws_hangup_secs) cfg->ws_hangup_secs = TN_WS_HANGUP_SECS;
}

void tn_ml_attach(struct tn_ml *ml, struct tn_http_server *srv)
{
    pthread_mutex_lock(&ml->mu);
    ml->srv = srv;
    if (ml->dirty || ml->acks) schedule_work(ml);
    pthread_mutex_unlock(&ml->mu);
}

void tn_ml_stop(struct tn_ml *ml)
{
    pthread_mutex_lock(&ml->qmu);
    ml->qstop = 1;
    pthread_cond_broadcast(&ml->qcv);
    pthread_mutex_unlock(&ml->qmu);
    if (ml->thr_started) {
        pthread_join(ml->thr, NULL);
        ml->thr_started = 0;
    }
    pthread_mutex_lock(&ml->qmu);
    while (ml->qhead) {
        struct item *it = ml->qhead;
        ml->qhead = it->next;
        item_free(it);
    }
    ml->qtail = NULL;
    ml->qlen = 0;
    pthread_mutex_unlock(&ml->qmu);
    pthread_mutex_lock(&ml->mu);
    ml->srv = NULL;
    pthread_mutex_unlock(&ml->mu);
}

void tn_ml_free(struct tn_ml *ml)
{
    if (!ml) return;
    tn_ml_stop(ml);
    for (size_t b = 0; b < NODE_BUCKETS; b++) {
        while (ml->nodes[b]) {
            struct node *n = ml->nodes[b];
            ml->nodes[b] = n->hnext;
            while (n->head) {
                struct pend *p = n->head;
                n->head = p->next;
                pend_free(p);
            }
            free(n->name);
            free(n);
        }
    }
    while (ml->acks) {
        struct ack *a = ml->acks;
        ml->acks = a->next;
        free(a->node);
        free(a);
    }
    tn_ml_strv_free(ml->tokens);
    tn_ml_strv_free(ml->features);
    pthread_mutex_destroy(&ml->mu);
    pthread_mutex_destroy(&ml->qmu);
    pthread_cond_destroy(&ml->qcv);
    free(ml);
}

int tn_ml_send(struct tn_ml *ml, const char *node, const char *kind, const char *ns,
               const char *name, const char *op, const json_t *obj)
{
    struct tn_err err = {0};
    char *lkind = lower_dup(kind);
    if (!lkind) return TN_ENOMEM;
    size_t len = 0;
    char *text = tn_msg_encode_json(ns, lkind, name, op, obj, &len, &err);
    size_t klen = strlen(lkind) + strlen(ns ? ns : "") + strlen(name ? name : "") + 3;
    char *key = text ? malloc(klen) : NULL;
    if (!key) {
        free(lkind);
        free(text);
        if (!text)
            TN_ERROR("cannot encode message for edge", "node", node, "kind", kind, "namespace", ns,
                     "name", name, "error", err.msg);
        return text ? TN_ENOMEM : err.code ? err.code : TN_ENOMEM;
    }
    snprintf(key, klen, "%s/%s/%s", lkind, ns ? ns : "", name ? name : "");
    free(lkind);

    pthread_mutex_lock(&ml->mu);
    struct node *n = node_get(ml, node ? node : "");
    struct pend *p = NULL;
    if (n)
        for (p = n->buckets[hash_str(key) % PEND_BUCKETS]; p; p = p->hnext)
            if (strcmp(p->key, key) == 0) break;
    int rc = 0;
    if (!n) {
        rc = TN_ENOMEM;
    } else if (p) { /* newer state of a pending object: replaced in place, keeps its turn */
        free(p->text);
        p->text = text;
        p->len = len;
        snprintf(p->op, sizeof(p->op), "%s", op ? op : "");
        free(key);
        text = key = NULL;
    } else if ((p = calloc(1, sizeof(*p))) != NULL) {
        p->key = key;
        p->text = text;
        p->len = len;
        snprintf(p->op, sizeof(p->op), "%s", op ? op : "");
        pend_append(ml, n, p);
        text = key = NULL;
    } else {
        rc = TN_ENOMEM;
    }
    if (rc == 0 && n->cur) mark_dirty(ml, n);
    pthread_mutex_unlock(&ml->mu);
    free(text);
    free(key);
    return rc;
}

void tn_ml_resync_begin(struct tn_ml *ml, const char *node)
{
    pthread_mutex_lock(&ml->mu);
    struct node *n = node_get(ml, node ? node : "");
    if (n) n->resync_gen = n->gen;
    pthread_mutex_unlock(&ml->mu);
}

void tn_ml_resynced(struct tn_ml *ml, const char *node)
{
    static const char marker[] = "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\","
                                 "\"resourceName\":\"\",\"operation\":\"resynced\"}}";
    pthread_mutex_lock(&ml->mu);
    struct node *n = node_find(ml, node ? node : "");
    if (n && n->cur && n->gen && n->resync_gen == n->gen && n->resync_feat) {
        struct pend *p = calloc(1, sizeof(*p));
        if (p) p->text = strdup(marker);
        if (p && p->text) {
            p->len = sizeof(marker) - 1;
            p->marker_gen = n->gen;
            snprintf(p->op, sizeof(p->op), "resynced");
            pend_append(ml, n, p);
            mark_dirty(ml, n);
        } else {
            free(p);
        }
    }
    pthread_mutex_unlock(&ml->mu);
}

int tn_ml_connected(struct tn_ml *ml, const char *node)
{
    pthread_mutex_lock(&ml->mu);
    struct node *n = node_find(ml, node ? node : "");
    int c = n && n->cur;
    pthread_mutex_unlock(&ml->mu);
    return c;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **tn_ml_connected_nodes(struct tn_ml *ml, size_t *np)
{
    pthread_mutex_lock(&ml->mu);
    char **v = calloc(ml->nconnected + 1, sizeof(*v));
    size_t k = 0;
    for (size_t b = 0; v && b < NODE_BUCKETS; b++)
        for (struct node *n = ml->nodes[b]; n; n = n->hnext) {
            if (!n->cur || k >= ml->nconnected) continue;
            if (!(v[k] = strdup(n->name))) {
                pthread_mutex_unlock(&ml->mu);
                tn_ml_strv_free(v);
                return NULL;
            }
            k++;
        }
    pthread_mutex_unlock(&ml->mu);
    if (!v) return NULL;
    qsort(v, k, sizeof(*v), cmp_str);
    if (np) *np = k;
    return v;
}

size_t tn_ml_pending(struct tn_ml *ml, const char *node)
{
    pthread_mutex_lock(&ml->mu);
    size_t r = ml->npending;
    if (node) {
        struct node *n = node_find(ml, node);
        r = n ? n->npend : 0;
    }
    pthread_mutex_unlock(&ml->mu);
    return r;
}
