/* HTTP/1.1 serving on libwebsockets: request assembly (path, query, headers, bounded body),
 * whole and streamed responses written one piece per WRITEABLE callback, timers and cross-thread
 * posts on the single loop thread. See http.h for the contract. */
#include "base/http.h"
#include "base/buf.h"
#include "base/log.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TN_HTTP_CHUNK 65536
#define TN_HTTP_STREAM_CAP ((size_t)64 << 20)

struct kv {
    char *name;
    char *value;
};

struct tn_http_req {
    struct tn_http_server *srv;
    struct lws *wsi;
    char method[12];
    char *path;
    struct kv *query;
    size_t nquery;
    char *ctype, *accept, *auth;
    char peer[64];
    struct tn_buf body;
    int body_too_big;
    /* response */
    int responding;
    int status;
    char *rctype;
    struct tn_buf rhdrs; /* "name\0value\0" pairs */
    struct tn_buf out;
    size_t out_off;
    int headers_sent;
    int streaming, stream_ended, finished;
    tn_http_fn on_close;
    void *close_arg;
    void *data;
};

struct post {
    tn_http_fn fn;
    void *arg;
    struct post *next;
};

struct tn_http_timer {
    lws_sorted_usec_list_t sul; /* first member: the callback gets &sul */
    struct tn_http_server *srv;
    tn_http_fn fn;
    void *arg;
    struct tn_http_timer *prev, *next; /* pending timers, freed with the server */
};

struct tn_ws_conn;
struct client_vh;

struct tn_http_server {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct tn_ws_conn *conns;     /* every live websocket connection */
    struct client_vh *client_vhs; /* client-only vhosts for wss, by CA file */
    int nclient_vhs;
    int destroyed; /* the lws context is gone */
    struct tn_http_config cfg;
    atomic_int stop; /* written by any thread or a signal handler */
    pthread_mutex_t mu;
    struct post *posts, *posts_tail;
    unsigned char *scratch;          /* LWS_PRE + TN_HTTP_CHUNK */
    struct lws_protocols *protocols; /* must outlive the vhost */
    struct tn_http_timer *timers;
};

struct pss {
    struct tn_http_req *req;
};

static void req_free(struct tn_http_req *r)
{
    if (!r) return;
    free(r->path);
    for (size_t i = 0; i < r->nquery; i++) {
        free(r->query[i].name);
        free(r->query[i].value);
    }
    free(r->query);
    free(r->ctype);
    free(r->accept);
    free(r->auth);
    free(r->rctype);
    tn_buf_free(&r->body);
    tn_buf_free(&r->rhdrs);
    tn_buf_free(&r->out);
    free(r);
}

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    if (lws_hdr_copy(wsi, s, n + 1, tok) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static const char *method_names[] = {"GET",   "POST",   "OPTIONS", "PUT",
                                     "PATCH", "DELETE", "CONNECT", "HEAD"};

static int add_query(struct tn_http_req *r, const char *frag)
{
    const char *eq = strchr(frag, '=');
    size_t nl = eq ? (size_t)(eq - frag) : strlen(frag);
    struct kv *nq = realloc(r->query, (r->nquery + 1) * sizeof(*nq));
    if (!nq) return TN_ENOMEM;
    r->query = nq;
    nq[r->nquery].name = strndup(frag, nl);
    nq[r->nquery].value = strdup(eq ? eq + 1 : "");
    r->nquery++;
    return 0;
}

static struct tn_http_req *req_new(struct tn_http_server *s, struct lws *wsi)
{
    struct tn_http_req *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->srv = s;
    r->wsi = wsi;
    tn_buf_init(&r->body, s->cfg.max_body + 1);
    tn_buf_init(&r->rhdrs, 64 << 10);
    tn_buf_init(&r->out, TN_HTTP_STREAM_CAP);
    char *uri = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    if (m >= 0 && m < (int)(sizeof(method_names) / sizeof(method_names[0])))
        snprintf(r->method, sizeof(r->method), "%s", method_names[m]);
    else
        snprintf(r->method, sizeof(r->method), "UNKNOWN");
    r->path = uri ? strndup(uri, (size_t)ulen) : strdup("/");
    char frag[8192];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;
        add_query(r, frag);
    }
    r->ctype = hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    r->accept = hdr_dup(wsi, WSI_TOKEN_HTTP_ACCEPT);
    r->auth = hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    lws_get_peer_simple(wsi, r->peer, sizeof(r->peer));
    return r;
}

const char *tn_http_method(const struct tn_http_req *r)
{
    return r->method;
}

const char *tn_http_path(const struct tn_http_req *r)
{
    return r->path;
}

const char *tn_http_query(const struct tn_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].name, name) == 0) return r->query[i].value;
    return NULL;
}

const char *tn_http_header(const struct tn_http_req *r, const char *name)
{
    if (strcmp(name, "content-type") == 0) return r->ctype;
    if (strcmp(name, "accept") == 0) return r->accept;
    if (strcmp(name, "authorization") == 0) return r->auth;
    if (r->responding || !r->wsi) return NULL;
    /* other headers are read live; only valid while the request is being handled */
    static char buf[4096];
    char cname[128];
    snprintf(cname, sizeof(cname), "%s:", name);
    int n = lws_hdr_custom_length(r->wsi, cname, (int)strlen(cname));
    if (n <= 0 || n >= (int)sizeof(buf)) return NULL;
    if (lws_hdr_custom_copy(r->wsi, buf, sizeof(buf), cname, (int)strlen(cname)) < 0) return NULL;
    return buf;
}

const char *tn_http_body(const struct tn_http_req *r, size_t *len)
{
    if (len) *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

const char *tn_http_peer(const struct tn_http_req *r)
{
    return r->peer;
}

void tn_http_set_data(struct tn_http_req *r, void *data)
{
    r->data = data;
}

void *tn_http_get_data(const struct tn_http_req *r)
{
    return r->data;
}

int tn_http_add_header(struct tn_http_req *r, const char *name, const char *value)
{
    int rc = tn_buf_append(&r->rhdrs, name, strlen(name) + 1);
    return rc ? rc : tn_buf_append(&r->rhdrs, value, strlen(value) + 1);
}

static int begin(struct tn_http_req *r, int status, const char *ctype)
{
    if (r->responding) return TN_EINVAL;
    r->responding = 1;
    r->status = status;
    r->rctype = ctype ? strdup(ctype) : NULL;
    lws_callback_on_writable(r->wsi);
    return 0;
}

int tn_http_respond_take(struct tn_http_req *r, int status, const char *content_type, char *body,
                         size_t len)
{
    if (r->responding) {
        free(body);
        return TN_EINVAL;
    }
    tn_buf_free(&r->out);
    r->out.data = body;
    r->out.len = len;
    r->out.cap = len + (body ? 1 : 0);
    r->out.max = TN_HTTP_STREAM_CAP > len ? TN_HTTP_STREAM_CAP : len;
    r->finished = 1;
    return begin(r, status, content_type);
}

int tn_http_respond(struct tn_http_req *r, int status, const char *content_type, const char *body,
                    size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) return TN_ENOMEM;
    if (len) memcpy(copy, body, len);
    copy[len] = 0;
    return tn_http_respond_take(r, status, content_type, copy, len);
}

int tn_http_stream_begin(struct tn_http_req *r, int status, const char *content_type,
                         tn_http_fn on_close, void *arg)
{
    r->streaming = 1;
    r->on_close = on_close;
    r->close_arg = arg;
    return begin(r, status, content_type);
}

int tn_http_stream_write(struct tn_http_req *r, const char *data, size_t len)
{
    if (!len || r->stream_ended) return 0;
    if (r->out_off > 0 && r->out_off >= r->out.len / 2) {
        tn_buf_consume(&r->out, r->out_off);
        r->out_off = 0;
    }
    char head[32];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
    size_t before = r->out.len;
    int rc = tn_buf_append(&r->out, head, (size_t)hn);
    if (!rc) rc = tn_buf_append(&r->out, data, len);
    if (!rc) rc = tn_buf_append(&r->out, "\r\n", 2);
    if (rc) { /* all or nothing: never a partial chunk on the wire */
        r->out.len = before;
        return rc;
    }
    lws_callback_on_writable(r->wsi);
    return 0;
}

size_t tn_http_stream_pending(const struct tn_http_req *r)
{
    return r->out.len - r->out_off;
}

void tn_http_stream_end(struct tn_http_req *r)
{
    if (r->stream_ended) return;
    /* the terminating chunk; it may exceed the cap: a stream must always be ended properly */
    size_t max = r->out.max;
    r->out.max = r->out.len + 16;
    tn_buf_append(&r->out, "0\r\n\r\n", 5);
    r->out.max = max;
    r->stream_ended = 1;
    lws_callback_on_writable(r->wsi);
}

static int write_headers(struct tn_http_server *s, struct tn_http_req *r)
{
    unsigned char hb[LWS_PRE + 8192];
    unsigned char *start = hb + LWS_PRE, *p = start, *end = hb + sizeof(hb) - 1;
    if (r->streaming) {
        /* chunked, so that clients see each event as it comes (a close-delimited body is only
         * handed to some clients, urllib3 among them, when the connection ends) */
        if (lws_add_http_header_status(r->wsi, (unsigned)r->status, &p, end)) return -1;
        if (r->rctype && lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                                      (const unsigned char *)r->rctype,
                                                      (int)strlen(r->rctype), &p, end))
            return -1;
        if (lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                         (const unsigned char *)"chunked", 7, &p, end))
            return -1;
        /* watches are long-lived: no idle timeout while the stream is open */
        lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
    } else if (lws_add_http_common_headers(r->wsi, (unsigned)r->status, r->rctype,
                                           (lws_filepos_t)r->out.len, &p, end)) {
        return -1;
    }
    for (size_t off = 0; off < r->rhdrs.len;) {
        const char *name = r->rhdrs.data + off;
        const char *val = name + strlen(name) + 1;
        off = (size_t)(val - r->rhdrs.data) + strlen(val) + 1;
        char nm[128];
        snprintf(nm, sizeof(nm), "%s:", name);
        if (lws_add_http_header_by_name(r->wsi, (const unsigned char *)nm,
                                        (const unsigned char *)val, (int)strlen(val), &p, end))
            return -1;
    }
    (void)s;
    if (lws_finalize_write_http_header(r->wsi, start, &p, end)) return -1;
    r->headers_sent = 1;
    return 0;
}

/* Returns -1 to close the connection, 0 to keep it. */
static int on_writeable(struct tn_http_server *s, struct lws *wsi, struct pss *ps)
{
    struct tn_http_req *r = ps->req;
    if (!r || !r->responding) return 0;
    if (!r->headers_sent) {
        if (write_headers(s, r)) return -1;
        if (!r->streaming && r->out.len == 0) {
            req_free(r);
            ps->req = NULL;
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t left = r->out.len - r->out_off;
    if (left == 0) {
        if (r->streaming && r->stream_ended) return -1;
        return 0;
    }
    size_t n = left > TN_HTTP_CHUNK ? TN_HTTP_CHUNK : left;
    int final = !r->streaming && n == left;
    memcpy(s->scratch + LWS_PRE, r->out.data + r->out_off, n);
    int w = lws_write(wsi, s->scratch + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (w < 0) return -1;
    r->out_off += n;
    if (final) {
        req_free(r);
        ps->req = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (r->out_off < r->out.len || (r->streaming && r->stream_ended)) lws_callback_on_writable(wsi);
    return 0;
}

static void dispatch(struct tn_http_server *s, struct tn_http_req *r)
{
    if (r->body_too_big) {
        static const char msg[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                  "\"status\":\"Failure\",\"message\":\"request entity too large: "
                                  "limit is 3145728\",\"reason\":\"RequestEntityTooLarge\","
                                  "\"code\":413}";
        tn_http_respond(r, 413, "application/json", msg, sizeof(msg) - 1);
        return;
    }
    s->cfg.handler(r, s->cfg.user);
}

static void drain_posts(struct tn_http_server *s)
{
    pthread_mutex_lock(&s->mu);
    struct post *p = s->posts;
    s->posts = s->posts_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (p) {
        struct post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

/* ---- websockets ---- */

struct ws_msg {
    struct ws_msg *next;
    size_t len, off;
    int binary;
    char data[];
};

struct client_vh { /* client-only vhost per CA file, for wss */
    char *ca;
    struct lws_vhost *vh;
    struct client_vh *next;
};

struct tn_ws_conn {
    lws_sorted_usec_list_t sul; /* keepalive tick, or the deferred connect-error report */
    struct tn_http_server *srv;
    struct lws *wsi; /* NULL once lws has let go of the connection */
    struct tn_ws_conn *prev, *next;
    int is_client;
    int accepting, opened, done;
    int in_connect; /* inside lws_client_connect_via_info */
    int failed;     /* client: connect failed, report pending */
    int cancelled;  /* client: tn_ws_close before open */
    int close_pending, close_code, peer_code;
    char close_reason[120];
    int ping_pending, ping_sent;
    lws_usec_t last_rx;
    int ping_secs, hangup_secs;
    char *path;
    char peer[64];
    char *err_msg;
    struct kv *hdrs; /* server: captured request headers; client: headers to send */
    size_t nhdrs;
    struct tn_buf rx;
    int rx_binary;
    struct ws_msg *qh, *qt;
    size_t queued, max_queue;
    tn_ws_open_fn on_open;
    tn_ws_message_fn on_message;
    tn_ws_close_fn on_close;
    tn_ws_error_fn on_error;
    void *user;
    void *data;
};

static void conn_free(struct tn_ws_conn *c)
{
    struct tn_http_server *s = c->srv;
    if (!s->destroyed) lws_sul_cancel(&c->sul);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    while (c->qh) {
        struct ws_msg *m = c->qh;
        c->qh = m->next;
        free(m);
    }
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdrs[i].name);
        free(c->hdrs[i].value);
    }
    free(c->hdrs);
    tn_buf_free(&c->rx);
    free(c->path);
    free(c->err_msg);
    free(c);
}

static struct tn_ws_conn *conn_new(struct tn_http_server *s, size_t max_msg, size_t max_queue)
{
    struct tn_ws_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->srv = s;
    tn_buf_init(&c->rx, max_msg ? max_msg : TN_WS_MAX_MESSAGE);
    c->max_queue = max_queue ? max_queue : TN_WS_MAX_QUEUE;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    return c;
}

static int conn_add_hdr(struct tn_ws_conn *c, const char *name, size_t nlen, const char *value)
{
    struct kv *nh = realloc(c->hdrs, (c->nhdrs + 1) * sizeof(*nh));
    if (!nh) return TN_ENOMEM;
    c->hdrs = nh;
    nh[c->nhdrs].name = strndup(name, nlen);
    nh[c->nhdrs].value = strdup(value);
    if (!nh[c->nhdrs].name || !nh[c->nhdrs].value) {
        free(nh[c->nhdrs].name);
        free(nh[c->nhdrs].value);
        return TN_ENOMEM;
    }
    c->nhdrs++;
    return 0;
}

/* Reads a custom (non-standard) request header while the upgrade request is at hand. */
static char *custom_hdr_dup(struct lws *wsi, const char *name)
{
    char cname[128];
    int cl = snprintf(cname, sizeof(cname), "%s:", name);
    if (cl <= 1 || cl >= (int)sizeof(cname)) return NULL;
    int n = lws_hdr_custom_length(wsi, cname, cl);
    if (n < 0) return NULL;
    char *v = malloc((size_t)n + 1);
    if (!v) return NULL;
    if (lws_hdr_custom_copy(wsi, v, n + 1, cname, cl) < 0) {
        free(v);
        return NULL;
    }
    return v;
}

static void capture_headers(struct tn_ws_conn *c, struct lws *wsi)
{
    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const unsigned char *nm = lws_token_to_string((enum lws_token_indexes)t);
        if (!nm) continue;
        size_t nl = strlen((const char *)nm);
        if (nl < 2 || nm[nl - 1] != ':' || nm[0] == ':') continue;
        char *v = hdr_dup(wsi, (enum lws_token_indexes)t);
        if (v) conn_add_hdr(c, (const char *)nm, nl - 1, v);
        free(v);
    }
    const char *const *extra = c->srv->cfg.ws_headers;
    for (int i = -1; i < 0 || (extra && extra[i]); i++) {
        const char *name = i < 0 ? "node-name" : extra[i];
        char *v = custom_hdr_dup(wsi, name);
        if (v) conn_add_hdr(c, name, strlen(name), v);
        free(v);
    }
}

const char *tn_ws_header(struct tn_ws_conn *c, const char *name)
{
    if (c->is_client) return NULL;
    for (size_t i = 0; i < c->nhdrs; i++)
        if (strcasecmp(c->hdrs[i].name, name) == 0) return c->hdrs[i].value;
    if (!c->accepting || !c->wsi) return NULL;
    char *v = custom_hdr_dup(c->wsi, name); /* kept, so the pointer lives as long as c */
    if (!v) return NULL;
    int rc = conn_add_hdr(c, name, strlen(name), v);
    free(v);
    return rc ? NULL : c->hdrs[c->nhdrs - 1].value;
}

const char *tn_ws_path(const struct tn_ws_conn *c)
{
    return c->path ? c->path : "/";
}

const char *tn_ws_peer(const struct tn_ws_conn *c)
{
    return c->peer;
}

int tn_ws_is_client(const struct tn_ws_conn *c)
{
    return c->is_client;
}

size_t tn_ws_pending(const struct tn_ws_conn *c)
{
    return c->queued;
}

void tn_ws_set_data(struct tn_ws_conn *c, void *data)
{
    c->data = data;
}

void *tn_ws_get_data(const struct tn_ws_conn *c)
{
    return c->data;
}

/* Final report and free: close for an opened connection, connect error for a client that never
 * opened, nothing for a server upgrade that never completed. */
static void conn_finish(struct tn_ws_conn *c, const char *msg)
{
    if (c->done) return;
    c->done = 1;
    if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
    c->wsi = NULL;
    if (c->opened) {
        int code = c->peer_code ? c->peer_code : c->close_code ? c->close_code : 1006;
        if (c->on_close) c->on_close(c, code, c->user);
    } else if (c->is_client && c->on_error) {
        const char *m = c->cancelled ? "connection cancelled" : c->err_msg ? c->err_msg : msg;
        c->on_error(c, m ? m : "connection failed", c->user);
    }
    conn_free(c);
}

static void deferred_report_cb(lws_sorted_usec_list_t *sul)
{
    conn_finish((struct tn_ws_conn *)sul, NULL);
}

static void ka_cb(lws_sorted_usec_list_t *sul)
{
    struct tn_ws_conn *c = (struct tn_ws_conn *)sul;
    if (!c->wsi || c->done) return;
    lws_usec_t idle = lws_now_usecs() - c->last_rx;
    /* with pings on, hang up only once a ping went unanswered: the 1 s tick may reach the
     * hang-up time before it ever sent the ping, and a live peer must get the chance to answer */
    if (c->hangup_secs && idle >= (lws_usec_t)c->hangup_secs * LWS_US_PER_SEC &&
        (c->ping_sent || !c->ping_secs)) {
        TN_WARN("websocket peer silent, hanging up", "peer", c->peer, "path", tn_ws_path(c));
        c->close_code = 1006;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    if (c->ping_secs && !c->ping_sent && idle >= (lws_usec_t)c->ping_secs * LWS_US_PER_SEC) {
        c->ping_sent = 1;
        c->ping_pending = 1;
        lws_callback_on_writable(c->wsi);
    }
    lws_sul_schedule(c->srv->ctx, 0, &c->sul, ka_cb, LWS_US_PER_SEC);
}

static void conn_opened(struct tn_ws_conn *c, struct lws *wsi)
{
    c->opened = 1;
    c->accepting = 0;
    c->last_rx = lws_now_usecs();
    if (!c->peer[0]) lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
    if (c->ping_secs || c->hangup_secs)
        lws_sul_schedule(c->srv->ctx, 0, &c->sul, ka_cb, LWS_US_PER_SEC);
    if (c->on_open) c->on_open(c, c->user);
    if (!c->done && c->wsi && (c->qh || c->close_pending)) lws_callback_on_writable(c->wsi);
}

int tn_ws_send(struct tn_ws_conn *c, const void *data, size_t len, int is_binary)
{
    if (c->close_pending || c->done || c->failed || c->cancelled) return TN_EINVAL;
    if (len > c->max_queue - c->queued) return TN_ETOOBIG;
    struct ws_msg *m = malloc(sizeof(*m) + len + 1);
    if (!m) return TN_ENOMEM;
    m->next = NULL;
    m->len = len;
    m->off = 0;
    m->binary = is_binary;
    if (len) memcpy(m->data, data, len);
    if (c->qt)
        c->qt->next = m;
    else
        c->qh = m;
    c->qt = m;
    c->queued += len;
    if (c->opened && c->wsi) lws_callback_on_writable(c->wsi);
    return 0;
}

void tn_ws_close(struct tn_ws_conn *c, int code, const char *reason)
{
    if (c->done || c->close_pending) return;
    if (!c->opened) {
        if (!c->is_client || c->failed) return; /* the report is on its way */
        c->cancelled = 1;
        if (c->wsi) {
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else {
            c->failed = 1;
            lws_sul_schedule(c->srv->ctx, 0, &c->sul, deferred_report_cb, 1);
        }
        return;
    }
    c->close_pending = 1;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
    if (c->wsi) lws_callback_on_writable(c->wsi);
}

/* One lws_write per call: close, then a keepalive ping, then the next fragment of the queue. */
static int ws_writeable(struct tn_ws_conn *c, struct lws *wsi)
{
    unsigned char *buf = c->srv->scratch + LWS_PRE;
    if (c->ping_pending) {
        c->ping_pending = 0;
        memcpy(buf, "tandem", 6); /* a payload: some stacks mishandle empty control frames */
        if (lws_write(wsi, buf, 6, LWS_WRITE_PING) < 6) return -1;
        if (c->qh || c->close_pending) lws_callback_on_writable(wsi);
        return 0;
    }
    struct ws_msg *m = c->qh;
    if (!m) {
        if (!c->close_pending) return 0;
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    size_t left = m->len - m->off;
    size_t n = left > TN_HTTP_CHUNK ? TN_HTTP_CHUNK : left;
    int flags =
        lws_write_ws_flags(m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT, m->off == 0, n == left);
    memcpy(buf, m->data + m->off, n);
    if (lws_write(wsi, buf, n, (enum lws_write_protocol)flags) < (int)n) return -1;
    m->off += n;
    c->queued -= n;
    if (m->off == m->len) {
        c->qh = m->next;
        if (!c->qh) c->qt = NULL;
        free(m);
    }
    if (c->qh || c->close_pending) lws_callback_on_writable(wsi);
    return 0;
}

static int ws_receive(struct tn_ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
    c->last_rx = lws_now_usecs();
    c->ping_sent = 0;
    if (lws_is_first_fragment(wsi)) {
        c->rx_binary = lws_frame_is_binary(wsi);
        tn_buf_reset(&c->rx);
    }
    if (tn_buf_append(&c->rx, in, len)) {
        static const char why[] = "message too big";
        c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof(why) - 1);
        tn_buf_free(&c->rx);
        return -1;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    if (c->on_message && !c->close_pending)
        c->on_message(c, c->rx.data ? c->rx.data : "", c->rx.len, c->rx_binary, c->user);
    if (c->rx.cap > TN_HTTP_CHUNK)
        tn_buf_free(&c->rx); /* don't keep a big message's buffer around */
    else
        tn_buf_reset(&c->rx);
    return 0;
}

static void peer_close(struct tn_ws_conn *c, const unsigned char *in, size_t len)
{
    if (len >= 2)
        c->peer_code = (in[0] << 8) | in[1];
    else
        c->peer_code = LWS_CLOSE_STATUS_NO_STATUS;
}

/* CONFIRM_UPGRADE: >0 when refused (response written), -1 to hang up, 0 to proceed. */
static int ws_upgrade(struct tn_http_server *s, struct lws *wsi)
{
    char *path = hdr_dup(wsi, WSI_TOKEN_GET_URI);
    int status = 0;
    if (!path) {
        status = 400;
    } else if (s->cfg.ws_path && strcmp(path, s->cfg.ws_path) != 0) {
        status = 404;
    }
    struct tn_ws_conn *c = NULL;
    if (!status) {
        c = conn_new(s, s->cfg.ws_max_message, s->cfg.ws_max_queue);
        if (!c) {
            free(path);
            return -1;
        }
        c->path = path;
        path = NULL;
        c->wsi = wsi;
        c->accepting = 1;
        c->ping_secs = s->cfg.ws_ping_secs;
        c->hangup_secs = s->cfg.ws_hangup_secs;
        c->on_open = s->cfg.ws_open;
        c->on_message = s->cfg.ws_message;
        c->on_close = s->cfg.ws_close;
        c->user = s->cfg.user;
        lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
        capture_headers(c, wsi);
        if (s->cfg.ws_accept) status = s->cfg.ws_accept(c, s->cfg.user);
        if (status) {
            c->wsi = NULL;
            c->done = 1;
            conn_free(c);
            c = NULL;
        }
    }
    free(path);
    if (status) {
        if (status < 100 || status > 599) status = 403;
        if (lws_return_http_status(wsi, (unsigned)status, NULL)) return -1;
        return 1;
    }
    c->accepting = 0;
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

static int parse_ws_url(const char *url, int *tls, char **host, int *port, char **path)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        *tls = 0;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        *tls = 1;
        p = url + 6;
    } else {
        return TN_EINVAL;
    }
    size_t hl = strcspn(p, ":/?#");
    if (hl == 0 || hl > 253) return TN_EINVAL;
    *port = *tls ? 443 : 80;
    const char *q = p + hl;
    if (*q == ':') {
        char *end;
        long v = strtol(q + 1, &end, 10);
        if (end == q + 1 || v <= 0 || v > 65535) return TN_EINVAL;
        *port = (int)v;
        q = end;
    }
    if (*q && *q != '/' && *q != '?') return TN_EINVAL;
    *host = strndup(p, hl);
    if (*q == '/') {
        *path = strdup(q);
    } else if ((*path = malloc(strlen(q) + 2))) { /* "?x" or "": path "/" */
        (*path)[0] = '/';
        strcpy(*path + 1, q);
    }
    if (!*host || !*path) {
        free(*host);
        free(*path);
        return TN_ENOMEM;
    }
    return 0;
}

/* wss connections go through a client-only vhost per CA file: lws 4.1 keeps the client TLS
 * context per vhost, and the listening vhost may have none. */
static struct lws_vhost *client_vhost(struct tn_http_server *s, const char *ca, struct tn_err *err)
{
    for (struct client_vh *v = s->client_vhs; v; v = v->next)
        if ((!v->ca && !ca) || (v->ca && ca && strcmp(v->ca, ca) == 0)) return v->vh;
    struct client_vh *v = calloc(1, sizeof(*v));
    if (!v || (ca && !(v->ca = strdup(ca)))) {
        free(v);
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof(name), "tandem-client-%d", s->nclient_vhs++);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s->protocols;
    info.vhost_name = name;
    info.user = s;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = ca;
    if (ca) info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS; /* trust exactly that CA */
    v->vh = lws_create_vhost(s->ctx, &info);
    if (!v->vh) {
        tn_err_set(err, TN_EIO, "cannot set up TLS for websocket clients (CA file %s)",
                   ca ? ca : "system default");
        free(v->ca);
        free(v);
        return NULL;
    }
    v->next = s->client_vhs;
    s->client_vhs = v;
    return v->vh;
}

struct tn_ws_conn *tn_ws_connect(struct tn_http_server *s, const struct tn_ws_connect_opts *o,
                                 struct tn_err *err)
{
    int tls = 0, port = 0;
    char *host = NULL, *path = NULL;
    int rc = parse_ws_url(o->url ? o->url : "", &tls, &host, &port, &path);
    if (rc) {
        tn_err_set(err, rc,
                   rc == TN_ENOMEM ? "out of memory"
                                   : "invalid websocket URL \"%s\": want ws://host:port/path "
                                     "or wss://...",
                   o->url ? o->url : "");
        return NULL;
    }
    struct lws_vhost *vh = tls ? client_vhost(s, o->ca_file, err) : s->vh;
    struct tn_ws_conn *c = vh ? conn_new(s, o->max_message, o->max_queue) : NULL;
    if (!c) {
        if (vh) tn_err_set(err, TN_ENOMEM, "out of memory");
        free(host);
        free(path);
        return NULL;
    }
    c->is_client = 1;
    c->path = path;
    c->ping_secs = o->ping_secs;
    c->hangup_secs = o->hangup_secs;
    c->on_open = o->on_open;
    c->on_message = o->on_message;
    c->on_close = o->on_close;
    c->on_error = o->on_connect_error;
    c->user = o->user;
    for (size_t i = 0; o->headers && o->headers[i]; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon || colon == h) {
            tn_err_set(err, TN_EINVAL, "invalid websocket header \"%s\": want \"Name: value\"", h);
            c->done = 1;
            conn_free(c);
            free(host);
            return NULL;
        }
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (conn_add_hdr(c, h, (size_t)(colon - h), v)) {
            tn_err_set(err, TN_ENOMEM, "out of memory");
            c->done = 1;
            conn_free(c);
            free(host);
            return NULL;
        }
    }
    snprintf(c->peer, sizeof(c->peer), "%s", host);
    char hosthdr[300];
    snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = s->ctx;
    ci.vhost = vh;
    ci.address = host;
    ci.port = port;
    ci.path = c->path;
    ci.host = hosthdr;
    ci.local_protocol_name = s->protocols[0].name; /* no Sec-WebSocket-Protocol is sent */
    ci.alpn = "http/1.1";
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    if (tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (o->insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    c->in_connect = 1;
    struct lws *w = lws_client_connect_via_info(&ci);
    c->in_connect = 0;
    if (!w || c->failed) {
        /* synchronous failure (#2301): report it from the loop, never from inside this call */
        if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
        c->wsi = NULL;
        c->failed = 1;
        if (!c->err_msg) {
            char m[400];
            snprintf(m, sizeof(m), "cannot connect to %s:%d", host, port);
            c->err_msg = strdup(m);
        }
        lws_sul_schedule(s->ctx, 0, &c->sul, deferred_report_cb, 1);
    }
    free(host);
    return c;
}

/* Websocket events; returns 1 when handled (*ret is the callback's result). */
static int ws_event(struct tn_http_server *s, struct lws *wsi, enum lws_callback_reasons reason,
                    void *in, size_t len, int *ret)
{
    *ret = 0;
    switch (reason) { /* only these reasons come with a real wsi whose opaque data is ours */
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_RECEIVE:
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        break;
    default:
        return 0;
    }
    struct tn_ws_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!s || !s->cfg.ws_message || !in || strcmp(in, "websocket") != 0) return 0;
        *ret = ws_upgrade(s, wsi);
        return 1;
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c) conn_opened(c, wsi);
        return 1;
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c) *ret = ws_receive(c, wsi, in, len);
        return 1;
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (c) {
            c->last_rx = lws_now_usecs();
            c->ping_sent = 0;
        }
        return 1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c) *ret = ws_writeable(c, wsi);
        return 1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c) peer_close(c, in, len);
        return 1;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c) {
            unsigned char **p = in, *end = *p + len;
            for (size_t i = 0; i < c->nhdrs; i++) {
                char nm[160];
                snprintf(nm, sizeof(nm), "%s:", c->hdrs[i].name);
                if (lws_add_http_header_by_name(wsi, (const unsigned char *)nm,
                                                (const unsigned char *)c->hdrs[i].value,
                                                (int)strlen(c->hdrs[i].value), p, end)) {
                    *ret = -1;
                    break;
                }
            }
        }
        return 1;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            char m[400];
            if (in && len)
                snprintf(m, sizeof(m), "cannot connect to %s: %.*s", c->peer, (int)len,
                         (const char *)in);
            else
                snprintf(m, sizeof(m), "cannot connect to %s: connection failed", c->peer);
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            if (!c->err_msg) c->err_msg = strdup(m);
            if (c->in_connect)
                c->failed = 1; /* tn_ws_connect schedules the report */
            else
                conn_finish(c, m);
        }
        return 1;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) conn_finish(c, "connection closed");
        return 1;
    case LWS_CALLBACK_WSI_DESTROY:
        /* some close paths skip CLOSED / CONNECTION_ERROR (#2176, #3122): last chance */
        if (c) {
            if (c->in_connect) {
                c->failed = 1;
                c->wsi = NULL;
                lws_set_opaque_user_data(wsi, NULL);
            } else {
                conn_finish(c, "connection closed before the websocket handshake completed");
            }
        }
        return 0; /* the HTTP side may want it too */
    default:
        return 0;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct pss *ps = user;
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct tn_http_server *s = vh ? lws_get_vhost_user(vh) : NULL;
    if (!s) {
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        s = pr ? pr->user : NULL;
    }
    int wret;
    if (ws_event(s, wsi, reason, in, len, &wret)) return wret;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        if (ps->req) { /* keep-alive: a previous request on this connection */
            req_free(ps->req);
            ps->req = NULL;
        }
        struct tn_http_req *r = req_new(s, wsi);
        if (!r) return -1;
        ps->req = r;
        int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        int chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
        if (clen > 0) {
            char cl[32];
            lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
            if (strtoull(cl, NULL, 10) > 0) return 0; /* wait for the body */
        }
        if (chunked) {
            /* lws 4.1 does not decode chunked request bodies: say so instead of waiting */
            static const char msg[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                "\"Failure\",\"message\":\"chunked request bodies are not supported: send a "
                "Content-Length\",\"reason\":\"LengthRequired\",\"code\":411}";
            tn_http_respond(r, 411, "application/json", msg, sizeof(msg) - 1);
            return 0;
        }
        dispatch(s, r);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (ps->req && !ps->req->body_too_big) {
            if (ps->req->body.len + len > s->cfg.max_body ||
                tn_buf_append(&ps->req->body, in, len)) {
                ps->req->body_too_big = 1;
                tn_buf_free(&ps->req->body);
            }
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ps->req) dispatch(s, ps->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(s, wsi, ps);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ps && ps->req) {
            struct tn_http_req *r = ps->req;
            ps->req = NULL;
            if (r->on_close) {
                tn_http_fn fn = r->on_close;
                r->on_close = NULL;
                fn(r->close_arg);
            }
            req_free(r);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s) drain_posts(s);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols_tmpl[] = {
    {"http", callback, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_to_ours(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    tn_log(level == LLL_ERR ? TN_LOG_ERROR : TN_LOG_WARN, "libwebsockets", "detail", msg,
           (const char *)0);
}

struct tn_http_server *tn_http_server_new(const struct tn_http_config *cfg, struct tn_err *err)
{
    struct tn_http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!s->cfg.max_body) s->cfg.max_body = 3u << 20;
    if (!s->cfg.addr) s->cfg.addr = "127.0.0.1";
    pthread_mutex_init(&s->mu, NULL);
    s->scratch = malloc(LWS_PRE + TN_HTTP_CHUNK);
    struct lws_protocols *prot = malloc(sizeof(protocols_tmpl));
    if (!s->scratch || !prot) {
        free(prot);
        tn_http_server_free(s);
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(prot, protocols_tmpl, sizeof(protocols_tmpl));
    s->protocols = prot;
    prot[0].user = s;
    lws_set_log_level(LLL_ERR, lws_log_to_ours);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 65536;
    info.keepalive_timeout = 60;
    info.timeout_secs = 60;
    info.user = s;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        tn_http_server_free(s);
        tn_err_set(err, TN_EIO, "cannot create the HTTP event loop");
        return NULL;
    }
    memset(&info, 0, sizeof(info));
    info.port = cfg->port < 0 ? CONTEXT_PORT_NO_LISTEN : cfg->port;
    info.iface = strcmp(s->cfg.addr, "0.0.0.0") == 0 ? NULL : s->cfg.addr;
    info.protocols = prot;
    info.vhost_name = s->cfg.name ? s->cfg.name : "tandem";
    info.user = s;
    info.alpn = "http/1.1";
    info.keepalive_timeout = 60;
    info.timeout_secs = 60;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->tls_cert && cfg->tls_key) {
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    }
    s->vh = lws_create_vhost(s->ctx, &info);
    if (!s->vh && cfg->port < 0) {
        tn_err_set(err, TN_EIO, "cannot create the client-only event loop");
        tn_http_server_free(s);
        return NULL;
    }
    if (!s->vh) {
        tn_err_set(err, TN_EIO, "cannot listen on %s:%d (address in use, or TLS files unreadable)",
                   s->cfg.addr, cfg->port);
        tn_http_server_free(s);
        return NULL;
    }
    return s;
}

int tn_http_server_port(const struct tn_http_server *s)
{
    if (s->cfg.port < 0) return -1;
    return lws_get_vhost_listen_port(s->vh);
}

int tn_http_server_run(struct tn_http_server *s)
{
    while (!atomic_load(&s->stop)) {
        if (lws_service(s->ctx, 0) < 0) break;
    }
    return 0;
}

void tn_http_server_stop(struct tn_http_server *s)
{
    atomic_store(&s->stop, 1);
    if (s->ctx) lws_cancel_service(s->ctx);
}

int tn_http_server_post(struct tn_http_server *s, tn_http_fn fn, void *arg)
{
    struct post *p = malloc(sizeof(*p));
    if (!p) return TN_ENOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->posts_tail)
        s->posts_tail->next = p;
    else
        s->posts = p;
    s->posts_tail = p;
    pthread_mutex_unlock(&s->mu);
    lws_cancel_service(s->ctx);
    return 0;
}

static void timer_unlink(struct tn_http_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->srv->timers = t->next;
    if (t->next) t->next->prev = t->prev;
}

static void timer_cb(lws_sorted_usec_list_t *sul)
{
    struct tn_http_timer *t = (struct tn_http_timer *)sul;
    timer_unlink(t);
    tn_http_fn fn = t->fn;
    void *arg = t->arg;
    free(t);
    fn(arg);
}

struct tn_http_timer *tn_http_timer_add(struct tn_http_server *s, int64_t delay_ms, tn_http_fn fn,
                                        void *arg)
{
    struct tn_http_timer *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->srv = s;
    t->fn = fn;
    t->arg = arg;
    t->next = s->timers;
    if (s->timers) s->timers->prev = t;
    s->timers = t;
    lws_sul_schedule(s->ctx, 0, &t->sul, timer_cb, (lws_usec_t)delay_ms * LWS_US_PER_MS);
    return t;
}

void tn_http_timer_cancel(struct tn_http_timer *t)
{
    if (!t) return;
    lws_sul_cancel(&t->sul);
    timer_unlink(t);
    free(t);
}

void tn_http_server_free(struct tn_http_server *s)
{
    if (!s) return;
    if (s->ctx) {
        lws_context_destroy(s->ctx); /* closes connections: their callbacks run now */
        s->ctx = NULL;
    }
    s->destroyed = 1;
    while (s->conns) { /* e.g. a failed connect whose report was still pending */
        s->conns->wsi = NULL;
        conn_finish(s->conns, "event loop stopped");
    }
    while (s->client_vhs) {
        struct client_vh *v = s->client_vhs;
        s->client_vhs = v->next;
        free(v->ca);
        free(v);
    }
    while (s->timers) {
        struct tn_http_timer *t = s->timers;
        s->timers = t->next;
        free(t);
    }
    free(s->protocols);
    struct post *p = s->posts;
    while (p) {
        struct post *n = p->next;
        free(p);
        p = n;
    }
    free(s->scratch);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
