/* LC <-> GM websocket client: connect/reconnect with backoff, feature negotiation, durable
 * upstream queue in sqlite (acked by a Tandem GM, deleted after the write for a Sedna GM), and
 * in-order downstream delivery on a dispatcher thread. See gmclient.h and docs/protocol.md. */
#include "lc/gmclient.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apis/message.h"
#include "base/http.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/timeutil.h"

#define POLL_MS 20           /* write-completion poll (Sedna mode) and send retry */
#define LIVED_RESET_MS 60000 /* a connection that lived this long resets the backoff */
#define FREE_WAIT_SECS 20

enum mode { MODE_UNKNOWN, MODE_SEDNA, MODE_TANDEM };
enum ditem_type { D_MSG, D_RESYNCED, D_LINK };

struct ditem {
    struct ditem *next;
    enum ditem_type type;
    int up;
    char *kind, *ns, *name, *op;
    json_t *obj;
};

struct inflight {
    long long id;
    uint64_t end; /* Sedna mode: queued_total after this message was queued */
};

struct tn_gmc {
    /* immutable after new */
    char *url, *node, *db_path, *ca_file;
    char *hdr_node, *hdr_auth;
    const char *headers[4];
    struct tn_http_server *loop;
    struct tn_gmc_opts o;
    int backoff_initial, backoff_max, features_wait;
    struct tn_metric *m_up, *m_pending, *m_sent, *m_acked, *m_reconnects;

    /* mu guards the database, the dispatcher queue and the fields below it */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;
    sqlite3_stmt *st_insert, *st_select, *st_delete;
    long npending;
    int connected, acked_mode;
    int kick_posted, stopping, detached;
    struct ditem *dq_head, *dq_tail;
    int d_stop;
    pthread_t dthread;
    int dthread_started;

    /* loop thread only */
    struct tn_ws_conn *conn;
    int opened, halting;
    int64_t opened_at;
    enum mode mode;
    int ack;
    int attempts;
    int backoff_ms;
    long long last_sent_id;
    struct inflight infl[TN_GMC_WINDOW];
    int ninfl;
    uint64_t queued_total;
    struct tn_http_timer *t_reconnect, *t_features, *t_poll;
};

static void connect_now(struct tn_gmc *g);
static void pump(struct tn_gmc *g);

/* ---- database (callers hold mu) ---- */

static int db_fail(struct tn_gmc *g, struct tn_err *err, const char *what)
{
    return tn_err_set(err, TN_EIO, "LC upstream queue in database %s: %s: %s", g->db_path, what,
                      sqlite3_errmsg(g->db));
}

static void set_pending_gauge(struct tn_gmc *g)
{
    tn_metric_set(g->m_pending, NULL, (double)g->npending);
}

static int db_open(struct tn_gmc *g, struct tn_err *err)
{
    int rc =
        sqlite3_open_v2(g->db_path, &g->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        tn_err_set(err, TN_EIO, "LC upstream queue: cannot open database %s: %s", g->db_path,
                   g->db ? sqlite3_errmsg(g->db) : sqlite3_errstr(rc));
        return TN_EIO;
    }
    sqlite3_busy_timeout(g->db, 5000);
    if (sqlite3_exec(g->db,
                     "CREATE TABLE IF NOT EXISTS gm_upstream(id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, envelope TEXT NOT NULL, created INTEGER)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(g, err, "create table gm_upstream");
    if (sqlite3_prepare_v2(g->db, "INSERT INTO gm_upstream(envelope, created) VALUES(?, ?)", -1,
                           &g->st_insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g->db,
                           "SELECT id, envelope FROM gm_upstream WHERE id > ? ORDER BY id LIMIT ?",
                           -1, &g->st_select, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g->db, "DELETE FROM gm_upstream WHERE id = ?", -1, &g->st_delete,
                           NULL) != SQLITE_OK)
        return db_fail(g, err, "prepare statements");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(g->db, "SELECT count(*) FROM gm_upstream", -1, &st, NULL) != SQLITE_OK)
        return db_fail(g, err, "count rows");
    if (sqlite3_step(st) == SQLITE_ROW) g->npending = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Deletes one row; returns 1 when a row went away. */
static int db_delete(struct tn_gmc *g, long long id)
{
    sqlite3_reset(g->st_delete);
    sqlite3_bind_int64(g->st_delete, 1, id);
    int rc = sqlite3_step(g->st_delete);
    sqlite3_reset(g->st_delete);
    if (rc != SQLITE_DONE) {
        char ids[32];
        snprintf(ids, sizeof(ids), "%lld", id);
        TN_ERROR("LC upstream queue: delete failed", "db", g->db_path, "id", ids, "error",
                 sqlite3_errmsg(g->db));
        return 0;
    }
    int n = sqlite3_changes(g->db);
    if (n > 0) {
        g->npending -= n;
        set_pending_gauge(g);
    }
    return n > 0;
}

/* ---- dispatcher thread ---- */

static void ditem_free(struct ditem *d)
{
    free(d->kind);
    free(d->ns);
    free(d->name);
    free(d->op);
    if (d->obj) json_decref(d->obj);
    free(d);
}

static void dq_push(struct tn_gmc *g, struct ditem *d)
{
    pthread_mutex_lock(&g->mu);
    if (g->dq_tail)
        g->dq_tail->next = d;
    else
        g->dq_head = d;
    g->dq_tail = d;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void dq_simple(struct tn_gmc *g, enum ditem_type type, int up)
{
    struct ditem *d = calloc(1, sizeof(*d));
    if (!d) return;
    d->type = type;
    d->up = up;
    dq_push(g, d);
}

static void *dispatcher_main(void *arg)
{
    struct tn_gmc *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->dq_head && !g->d_stop)
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->d_stop) break;
        struct ditem *d = g->dq_head;
        g->dq_head = d->next;
        if (!g->dq_head) g->dq_tail = NULL;
        pthread_mutex_unlock(&g->mu);
        switch (d->type) {
        case D_MSG:
            if (g->o.on_message) g->o.on_message(d->kind, d->ns, d->name, d->op, d->obj, g->o.arg);
            break;
        case D_RESYNCED:
            if (g->o.on_resynced) g->o.on_resynced(g->o.arg);
            break;
        case D_LINK:
            if (g->o.on_link) g->o.on_link(d->up, g->o.arg);
            break;
        }
        ditem_free(d);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---- loop thread: sending ---- */

static void poll_cb(void *arg)
{
    struct tn_gmc *g = arg;
    g->t_poll = NULL;
    pump(g);
}

static void arm_poll(struct tn_gmc *g)
{
    if (g->t_poll || g->halting || !g->conn) return;
    g->t_poll = tn_http_timer_add(g->loop, POLL_MS, poll_cb, g);
}

static void cancel_timer(struct tn_http_timer **t)
{
    if (*t) tn_http_timer_cancel(*t);
    *t = NULL;
}

/* Sedna mode: rows whose bytes have all left the websocket queue are delivered. */
static void retire_written(struct tn_gmc *g)
{
    if (g->ack || !g->ninfl) return;
    uint64_t written = g->queued_total - tn_ws_pending(g->conn);
    int k = 0;
    pthread_mutex_lock(&g->mu);
    while (k < g->ninfl && g->infl[k].end <= written)
        db_delete(g, g->infl[k++].id);
    pthread_mutex_unlock(&g->mu);
    if (k) {
        memmove(g->infl, g->infl + k, (size_t)(g->ninfl - k) * sizeof(g->infl[0]));
        g->ninfl -= k;
    }
}

/* Sends stored rows after the last one sent on this connection, in id order, while the window
 * has room. With ack the frame carries "id" (spliced before the envelope's closing brace). */
static void pump(struct tn_gmc *g)
{
    if (!g->conn || !g->opened || g->mode == MODE_UNKNOWN || g->halting) return;
    retire_written(g);
    int room = TN_GMC_WINDOW - g->ninfl, retry = 0;
    if (room > 0) {
        pthread_mutex_lock(&g->mu);
        sqlite3_stmt *st = g->st_select;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, g->last_sent_id);
        sqlite3_bind_int(st, 2, room);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            long long id = sqlite3_column_int64(st, 0);
            const char *env = (const char *)sqlite3_column_text(st, 1);
            size_t len = (size_t)sqlite3_column_bytes(st, 1);
            char *frame = NULL;
            int n = 0;
            if (g->ack && env && len > 0 && env[len - 1] == '}') {
                frame = malloc(len + 32);
                if (!frame) {
                    retry = 1;
                    break;
                }
                n = snprintf(frame, len + 32, "%.*s,\"id\":%lld}", (int)(len - 1), env, id);
            }
            size_t flen = frame ? (size_t)n : len;
            int src = tn_ws_send(g->conn, frame ? frame : (env ? env : ""), flen, 0);
            free(frame);
            if (src != 0) {
                retry = src != TN_EINVAL; /* EINVAL: closing, the close callback follows */
                break;
            }
            g->queued_total += flen;
            g->infl[g->ninfl].id = id;
            g->infl[g->ninfl].end = g->queued_total;
            g->ninfl++;
            g->last_sent_id = id;
            tn_metric_inc(g->m_sent, NULL);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            TN_ERROR("LC upstream queue: read failed", "db", g->db_path, "error",
                     sqlite3_errmsg(g->db));
            retry = 1;
        }
        sqlite3_reset(st);
        pthread_mutex_unlock(&g->mu);
    }
    if (retry || (!g->ack && g->ninfl)) arm_poll(g);
}

/* ---- loop thread: connection ---- */

static void reconnect_cb(void *arg)
{
    struct tn_gmc *g = arg;
    g->t_reconnect = NULL;
    connect_now(g);
}

static void schedule_reconnect(struct tn_gmc *g)
{
    if (g->halting || g->t_reconnect) return;
    double delay = g->backoff_ms * (0.8 + 0.4 * tn_rand_unit());
    g->t_reconnect = tn_http_timer_add(g->loop, (int64_t)delay, reconnect_cb, g);
    char ms[32];
    snprintf(ms, sizeof(ms), "%.0f", delay);
    TN_DEBUG("GM reconnect scheduled", "gm", g->url, "in_ms", ms);
    g->backoff_ms = g->backoff_ms * 2 > g->backoff_max ? g->backoff_max : g->backoff_ms * 2;
}

static void set_link(struct tn_gmc *g, int up)
{
    pthread_mutex_lock(&g->mu);
    g->connected = up;
    if (!up) g->acked_mode = 0;
    pthread_mutex_unlock(&g->mu);
    tn_metric_set(g->m_up, NULL, up);
    dq_simple(g, D_LINK, up);
}

/* The connection is gone (closed, or never opened): reset per-connection state, then either
 * let tn_gmc_free go on or retry later. */
static void link_down(struct tn_gmc *g, const char *why)
{
    int was_open = g->opened;
    g->conn = NULL;
    g->opened = 0;
    g->mode = MODE_UNKNOWN;
    g->ack = 0;
    g->ninfl = 0;
    g->last_sent_id = 0;
    cancel_timer(&g->t_features);
    cancel_timer(&g->t_poll);
    if (was_open) {
        set_link(g, 0);
        if (tn_mono_ms() - g->opened_at >= LIVED_RESET_MS) g->backoff_ms = g->backoff_initial;
    }
    if (g->halting) {
        cancel_timer(&g->t_reconnect);
        pthread_mutex_lock(&g->mu);
        g->detached = 1;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (was_open)
        TN_WARN("GM connection lost", "gm", g->url, "node", g->node, "reason", why);
    else
        TN_WARN("GM connection failed", "gm", g->url, "node", g->node, "error", why);
    schedule_reconnect(g);
}

static void features_timeout_cb(void *arg)
{
    struct tn_gmc *g = arg;
    g->t_features = NULL;
    if (g->mode != MODE_UNKNOWN) return;
    g->mode = MODE_SEDNA;
    g->ack = 0;
    TN_INFO("GM sent no features: plain Sedna GM, reports are deleted once written", "gm", g->url);
    pump(g);
}

static void on_open(struct tn_ws_conn *c, void *user)
{
    struct tn_gmc *g = user;
    if (c != g->conn) return;
    g->opened = 1;
    g->opened_at = tn_mono_ms();
    g->mode = MODE_UNKNOWN;
    g->queued_total = 0;
    size_t hlen = 0;
    char *hello = tn_msg_hello(&hlen);
    if (hello && tn_ws_send(c, hello, hlen, 0) == 0) g->queued_total += hlen;
    free(hello);
    set_link(g, 1);
    TN_INFO("connected to GM", "gm", g->url, "node", g->node);
    g->t_features = tn_http_timer_add(g->loop, g->features_wait, features_timeout_cb, g);
}

static void handle_features(struct tn_gmc *g, const json_t *content)
{
    if (g->mode != MODE_UNKNOWN) {
        TN_WARN("GM sent features after the negotiation window; ignored", "gm", g->url);
        return;
    }
    cancel_timer(&g->t_features);
    int ack = 0;
    json_t *list = content ? json_object_get(content, "features") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "ack") == 0) ack = 1;
    }
    g->mode = MODE_TANDEM;
    g->ack = ack;
    pthread_mutex_lock(&g->mu);
    g->acked_mode = ack;
    pthread_mutex_unlock(&g->mu);
    TN_INFO("Tandem GM", "gm", g->url, "ack", ack ? "true" : "false");
    pump(g);
}

static void handle_ack(struct tn_gmc *g, const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    long long id = root ? tn_json_int(root, "ack", -1) : -1;
    if (root) json_decref(root);
    if (id < 0) {
        TN_WARN("GM sent an ack without a valid \"ack\" id; ignored", "gm", g->url);
        return;
    }
    pthread_mutex_lock(&g->mu);
    if (db_delete(g, id)) tn_metric_inc(g->m_acked, NULL);
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < g->ninfl; i++) {
        if (g->infl[i].id != id) continue;
        memmove(g->infl + i, g->infl + i + 1, (size_t)(g->ninfl - i - 1) * sizeof(g->infl[0]));
        g->ninfl--;
        break;
    }
    pump(g);
}

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

static void on_ws_message(struct tn_ws_conn *c, const char *data, size_t len, int is_binary,
                          void *user)
{
    struct tn_gmc *g = user;
    if (c != g->conn || g->halting) return;
    struct tn_msg m;
    struct tn_err err = {0};
    if (tn_msg_decode(data, len, &m, &err) != 0) {
        TN_WARN("bad message from GM; dropped", "gm", g->url, "error", err.msg);
        return;
    }
    if (m.is_hello) {
        /* nothing */
    } else if (strcmp(m.op, "features") == 0) {
        handle_features(g, m.json);
    } else if (strcmp(m.op, "ack") == 0) {
        handle_ack(g, data, len);
    } else if (strcmp(m.op, "resynced") == 0) {
        dq_simple(g, D_RESYNCED, 0);
    } else {
        struct ditem *d = calloc(1, sizeof(*d));
        if (d) {
            d->type = D_MSG;
            d->kind = xstrdup(m.kind);
            d->ns = xstrdup(m.ns);
            d->name = xstrdup(m.name);
            d->op = xstrdup(m.op);
            d->obj = m.json ? json_incref(m.json) : NULL;
            if (!d->kind || !d->ns || !d->name || !d->op) {
                ditem_free(d);
                d = NULL;
            }
        }
        if (d)
            dq_push(g, d);
        else
            TN_ERROR("out of memory: message from GM dropped", "gm", g->url);
    }
    tn_msg_free(&m);
}

static void on_ws_close(struct tn_ws_conn *c, int code, void *user)
{
    struct tn_gmc *g = user;
    if (c != g->conn) return;
    char why[32];
    snprintf(why, sizeof(why), "close code %d", code);
    link_down(g, why);
}

static void on_ws_error(struct tn_ws_conn *c, const char *msg, void *user)
{
    struct tn_gmc *g = user;
    if (c != g->conn) return;
    link_down(g, msg);
}

static void connect_now(struct tn_gmc *g)
{
    if (g->halting || g->conn) return;
    if (g->attempts++ > 0) tn_metric_inc(g->m_reconnects, NULL);
    struct tn_ws_connect_opts o = {
        .url = g->url,
        .headers = g->headers,
        .ca_file = g->ca_file,
        .ping_secs = TN_WS_PING_SECS,
        .hangup_secs = TN_WS_HANGUP_SECS,
        .on_open = on_open,
        .on_message = on_ws_message,
        .on_close = on_ws_close,
        .on_connect_error = on_ws_error,
        .user = g,
    };
    struct tn_err err = {0};
    g->opened = 0;
    g->conn = tn_ws_connect(g->loop, &o, &err);
    if (!g->conn) link_down(g, err.msg);
}

static void start_cb(void *arg)
{
    connect_now(arg);
}

static void kick_cb(void *arg)
{
    struct tn_gmc *g = arg;
    pthread_mutex_lock(&g->mu);
    g->kick_posted = 0;
    pthread_mutex_unlock(&g->mu);
    pump(g);
}

static void stop_cb(void *arg)
{
    struct tn_gmc *g = arg;
    g->halting = 1;
    cancel_timer(&g->t_reconnect);
    cancel_timer(&g->t_features);
    cancel_timer(&g->t_poll);
    if (g->conn) {
        tn_ws_close(g->conn, 1000, "LC stopping"); /* the close callback sets detached */
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->detached = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- public ---- */

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static void gmc_destroy(struct tn_gmc *g)
{
    if (g->dthread_started) {
        pthread_mutex_lock(&g->mu);
        g->d_stop = 1;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->dthread, NULL);
    }
    while (g->dq_head) {
        struct ditem *d = g->dq_head;
        g->dq_head = d->next;
        ditem_free(d);
    }
    sqlite3_finalize(g->st_insert);
    sqlite3_finalize(g->st_select);
    sqlite3_finalize(g->st_delete);
    if (g->db) sqlite3_close(g->db);
    free(g->url);
    free(g->node);
    free(g->db_path);
    free(g->ca_file);
    free(g->hdr_node);
    free(g->hdr_auth);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

struct tn_gmc *tn_gmc_new(const struct tn_gmc_opts *opts, struct tn_err *err)
{
    if (!opts || !opts->gm_address || !*opts->gm_address) {
        tn_err_set(err, TN_EINVAL, "GM client: GM address is required (GM_ADDRESS host:port)");
        return NULL;
    }
    if (!opts->node_name || !*opts->node_name || has_crlf(opts->node_name)) {
        tn_err_set(err, TN_EINVAL, "GM client: node name is required and must be one line");
        return NULL;
    }
    if (has_crlf(opts->token)) {
        tn_err_set(err, TN_EINVAL, "GM client: node token must be one line");
        return NULL;
    }
    if (!opts->db_path || !*opts->db_path || !opts->loop) {
        tn_err_set(err, TN_EINVAL, "GM client: database path and loop are required");
        return NULL;
    }
    const char *a = opts->gm_address;
    int has_scheme = strstr(a, "://") != NULL;
    if (has_scheme && strncmp(a, "ws://", 5) != 0 && strncmp(a, "wss://", 6) != 0) {
        tn_err_set(err, TN_EINVAL,
                   "GM client: GM address %s: scheme must be ws:// or wss:// (or none)", a);
        return NULL;
    }
    struct tn_gmc *g = calloc(1, sizeof(*g));
    if (!g) {
        tn_err_set(err, TN_ENOMEM, "GM client: out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->o = *opts;
    g->loop = opts->loop;
    g->backoff_initial = opts->backoff_initial_ms > 0 ? opts->backoff_initial_ms : 1000;
    g->backoff_max = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 30000;
    if (g->backoff_max < g->backoff_initial) g->backoff_max = g->backoff_initial;
    g->backoff_ms = g->backoff_initial;
    g->features_wait = opts->features_wait_ms > 0 ? opts->features_wait_ms : 3000;
    if (has_scheme) {
        g->url = strdup(a);
    } else if (asprintf(&g->url, "%s://%s/", opts->ca_file ? "wss" : "ws", a) < 0) {
        g->url = NULL;
    }
    g->node = strdup(opts->node_name);
    g->db_path = strdup(opts->db_path);
    g->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    if (asprintf(&g->hdr_node, "Node-Name: %s", opts->node_name) < 0) g->hdr_node = NULL;
    if (opts->token && asprintf(&g->hdr_auth, "Authorization: Bearer %s", opts->token) < 0)
        g->hdr_auth = NULL;
    if (!g->url || !g->node || !g->db_path || (opts->ca_file && !g->ca_file) || !g->hdr_node ||
        (opts->token && !g->hdr_auth)) {
        tn_err_set(err, TN_ENOMEM, "GM client: out of memory");
        goto fail;
    }
    int h = 0;
    g->headers[h++] = g->hdr_node;
    g->headers[h++] = "X-Tandem-Features: ack,resync";
    if (g->hdr_auth) g->headers[h++] = g->hdr_auth;
    g->headers[h] = NULL;

    if (opts->metrics) {
        g->m_up = tn_metrics_gauge(opts->metrics, "tandem_lc_gm_link_up",
                                   "1 while the websocket to GM is open.", NULL);
        g->m_pending =
            tn_metrics_gauge(opts->metrics, "tandem_lc_upstream_pending",
                             "Upstream messages stored and not yet delivered to GM.", NULL);
        g->m_sent = tn_metrics_counter(opts->metrics, "tandem_lc_upstream_sent_total",
                                       "Upstream messages written to the GM link (re-sends "
                                       "included).",
                                       NULL);
        g->m_acked = tn_metrics_counter(opts->metrics, "tandem_lc_upstream_acked_total",
                                        "Upstream messages acknowledged by GM.", NULL);
        g->m_reconnects = tn_metrics_counter(opts->metrics, "tandem_lc_gm_reconnects_total",
                                             "Connection attempts to GM after the first.", NULL);
    }
    if (db_open(g, err) != 0) goto fail;
    set_pending_gauge(g);
    tn_metric_set(g->m_up, NULL, 0);
    if (pthread_create(&g->dthread, NULL, dispatcher_main, g) != 0) {
        tn_err_set(err, TN_ENOMEM, "GM client: cannot start the dispatcher thread");
        goto fail;
    }
    g->dthread_started = 1;
    if (tn_http_server_post(g->loop, start_cb, g) != 0) {
        tn_err_set(err, TN_ENOMEM, "GM client: out of memory");
        goto fail;
    }
    return g;
fail:
    gmc_destroy(g);
    return NULL;
}

int tn_gmc_report(struct tn_gmc *g, const char *kind, const char *ns, const char *name,
                  const json_t *status, struct tn_err *err)
{
    if (!kind || !*kind || !name || !*name)
        return tn_err_set(err, TN_EINVAL, "GM client: status report needs a kind and a name");
    struct tn_err e2 = {0};
    size_t len = 0;
    char *env = tn_msg_encode_json(ns ? ns : "", kind, name, TN_MSG_OP_STATUS, status, &len, &e2);
    if (!env)
        return tn_err_set(err, e2.code ? e2.code : TN_ENOMEM, "status report for %s %s/%s: %s",
                          kind, ns ? ns : "", name, e2.msg);
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    if (g->stopping) {
        rc = tn_err_set(err, TN_EINVAL,
                        "GM client is stopping: status report for %s %s/%s "
                        "not stored",
                        kind, ns ? ns : "", name);
        goto out;
    }
    sqlite3_reset(g->st_insert);
    sqlite3_bind_text(g->st_insert, 1, env, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(g->st_insert, 2, (sqlite3_int64)time(NULL));
    int src = sqlite3_step(g->st_insert);
    if (src != SQLITE_DONE) {
        rc = tn_err_set(err, TN_EIO,
                        "LC upstream queue in database %s: storing status report "
                        "for %s %s/%s failed: %s",
                        g->db_path, kind, ns ? ns : "", name, sqlite3_errmsg(g->db));
        sqlite3_reset(g->st_insert);
        sqlite3_clear_bindings(g->st_insert);
        goto out;
    }
    sqlite3_reset(g->st_insert);
    sqlite3_clear_bindings(g->st_insert);
    g->npending++;
    set_pending_gauge(g);
    if (!g->kick_posted && tn_http_server_post(g->loop, kick_cb, g) == 0) g->kick_posted = 1;
out:
    pthread_mutex_unlock(&g->mu);
    free(env);
    return rc;
}

int tn_gmc_connected(struct tn_gmc *g)
{
    pthread_mutex_lock(&g->mu);
    int v = g->connected;
    pthread_mutex_unlock(&g->mu);
    return v;
}

int tn_gmc_acked_mode(struct tn_gmc *g)
{
    pthread_mutex_lock(&g->mu);
    int v = g->acked_mode;
    pthread_mutex_unlock(&g->mu);
    return v;
}

long tn_gmc_pending(struct tn_gmc *g)
{
    pthread_mutex_lock(&g->mu);
    long v = g->npending;
    pthread_mutex_unlock(&g->mu);
    return v;
}

void tn_gmc_free(struct tn_gmc *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < 100 && tn_http_server_post(g->loop, stop_cb, g) != 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += FREE_WAIT_SECS;
    pthread_mutex_lock(&g->mu);
    while (!g->detached)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0) break;
    int ok = g->detached;
    pthread_mutex_unlock(&g->mu);
    if (!ok) {
        /* The loop is not running: freeing now would leave its callbacks a dangling pointer. */
        TN_ERROR("GM client: loop did not release the client; leaking it", "gm", g->url);
        return;
    }
    gmc_destroy(g);
}
