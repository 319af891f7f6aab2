/* HTTP/1.1 serving on libwebsockets: request assembly (path, query, headers, bounded body),
 * whole and streamed responses written one piece per WRITEABLE callback, timers and cross-thread
 * posts on the single loop thread. See http.h for the contract. */
#include "base/http.h"
#include "base/buf.h"
#include "base/log.h"

#include <libwebsockets.h>
#include <pthread.h>
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

struct tn_http_server {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct tn_http_config cfg;
    volatile int stop;
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
    if (!len || r->stream_ended)
        return 0;
    if (r->out_off > 0 && r->out_off >= r->out.len / 2) {
        tn_buf_consume(&r->out, r->out_off);
        r->out_off = 0;
    }
    char head[32];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
    size_t before = r->out.len;
    int rc = tn_buf_append(&r->out, head, (size_t)hn);
    if (!rc)
        rc = tn_buf_append(&r->out, data, len);
    if (!rc)
        rc = tn_buf_append(&r->out, "\r\n", 2);
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
    if (r->stream_ended)
        return;
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
        if (lws_add_http_header_status(r->wsi, (unsigned)r->status, &p, end))
            return -1;
        if (r->rctype &&
            lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)r->rctype, (int)strlen(r->rctype),
                                         &p, end))
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
    if (lws_finalize_write_http_header(r->wsi, start, &p, end))
        return -1;
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
        if (chunked) return 0;
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
    info.port = cfg->port ? cfg->port : 0;
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
    return lws_get_vhost_listen_port(s->vh);
}

int tn_http_server_run(struct tn_http_server *s)
{
    while (!s->stop) {
        if (lws_service(s->ctx, 0) < 0) break;
    }
    return 0;
}

void tn_http_server_stop(struct tn_http_server *s)
{
    s->stop = 1;
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
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
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
