/* REST client and watch streams for the Kubernetes API (see client.h). One libcurl multi handle
 * is driven by the client's own thread; callers queue transfers under a mutex and wait on a
 * condition variable, so retries, backoff and rate-limit waits never stall the client thread. */
#include "kube/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/timeutil.h"

#define KC_BODY_MAX ((size_t)256 << 20) /* cap on one response body kept in memory */
#define KC_ERRBODY_MAX ((size_t)64 << 10)
#define KC_POOL_MAX 8
#define KC_CONNECT_TIMEOUT_S 10L
#define KC_BACKOFF_BASE_MS 200
#define KC_BACKOFF_CAP_MS 5000
#define KC_RETRY_AFTER_CAP_S 30
#define KC_WATCH_MAX_LINE_DEFAULT ((size_t)16 << 20)
#define KC_WATCH_IDLE_DEFAULT_MS 120000

enum { KIND_REQ = 1, KIND_WATCH = 2 };

/* One plain transfer, owned by the calling thread, lent to the client thread while queued. */
struct kreq {
    int kind; /* KIND_REQ: first field, shared with struct tn_kube_watch for CURLINFO_PRIVATE */
    struct kreq *next; /* pending queue, then c->active */
    CURL *easy;
    struct curl_slist *hdrs;
    struct tn_buf body;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode cres;
    long http;
    int64_t retry_after_s;
    int done;
};

enum wstate { W_PENDING, W_ACTIVE, W_DONE };

struct tn_kube_watch {
    int kind; /* KIND_WATCH */
    struct tn_kube_client *c;
    struct tn_kube_watch *next; /* c->watches */
    CURL *easy;
    struct curl_slist *hdrs;
    char *desc; /* "configmaps default" for messages */
    tn_kube_watch_fn fn;
    tn_kube_watch_end_fn end;
    void *arg;
    struct tn_buf buf; /* undecoded bytes: at most one partial line after each chunk */
    size_t max_line;
    int idle_ms;
    int64_t last_byte_ms;
    enum wstate state;   /* guarded by c->mu for PENDING->ACTIVE; client thread after */
    atomic_int stop_req; /* set by tn_kube_watch_stop */
    int acked;           /* client thread has detached the handle (under c->mu) */
    int detached;        /* stopped from a callback: the client thread frees it */
    int end_set;
    int end_code;
    long http;
    struct tn_buf errbody;
    char errbuf[CURL_ERROR_SIZE];
};

struct tn_kube_client {
    struct tn_kube_config *cfg;
    struct tn_kube_client_opts o;
    char *user_agent;
    char host[256];
    CURLM *multi;
    pthread_t thr;
    int thr_started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a request finished or a watch was detached */
    struct kreq *pending_head, *pending_tail;
    struct kreq *active; /* in the multi handle (client thread only) */
    struct tn_kube_watch *watches;
    int shutdown;
    int thread_exited;
    CURL *pool[KC_POOL_MAX];
    int npool;
    /* token bucket */
    pthread_mutex_t rl_mu;
    double tokens;
    int64_t rl_last_ns;
    atomic_int token_force; /* a 401 was seen: re-read the token source once */
    struct tn_metric *m_req;
    struct tn_metric *m_dur;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static int g_curl_init_rc;

static void curl_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

/* ---- escaping and paths ----------------------------------------------------------------- */

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Appends s percent-encoded (everything but RFC 3986 unreserved characters). */
static int put_escaped(struct tn_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (is_unreserved(*p)) {
            rc = tn_buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = tn_buf_append(b, e, 3);
        }
        if (rc) return rc;
    }
    return 0;
}

static int put_path(struct tn_buf *b, const struct tn_kube_gvr *r, const char *ns, const char *name,
                    const char *sub)
{
    int rc = 0;
    if (!r->group || !*r->group) {
        rc |= tn_buf_puts(b, "/api/");
    } else {
        rc |= tn_buf_puts(b, "/apis/");
        rc |= put_escaped(b, r->group);
        rc |= tn_buf_putc(b, '/');
    }
    rc |= put_escaped(b, r->version ? r->version : "v1");
    if (ns && *ns) {
        rc |= tn_buf_puts(b, "/namespaces/");
        rc |= put_escaped(b, ns);
    }
    rc |= tn_buf_putc(b, '/');
    rc |= put_escaped(b, r->resource);
    if (name && *name) {
        rc |= tn_buf_putc(b, '/');
        rc |= put_escaped(b, name);
    }
    if (sub && *sub) {
        rc |= tn_buf_putc(b, '/');
        rc |= put_escaped(b, sub);
    }
    return rc ? TN_ENOMEM : 0;
}

char *tn_kube_path(const struct tn_kube_gvr *r, const char *ns, const char *name,
                   const char *subresource)
{
    struct tn_buf b;
    tn_buf_init(&b, 1 << 16);
    if (put_path(&b, r, ns, name, subresource)) {
        tn_buf_free(&b);
        return NULL;
    }
    return tn_buf_steal(&b, NULL);
}

/* Appends "?k=v" or "&k=v" with v escaped; skipped when v is NULL. */
static int put_query(struct tn_buf *b, const char *k, const char *v)
{
    if (!v) return 0;
    int rc = tn_buf_putc(b, memchr(b->data ? b->data : "", '?', b->len) ? '&' : '?');
    rc |= tn_buf_puts(b, k);
    rc |= tn_buf_putc(b, '=');
    rc |= put_escaped(b, v);
    return rc ? TN_ENOMEM : 0;
}

/* ---- status decoding -------------------------------------------------------------------- */

static int code_for_http(long http, const char *reason)
{
    switch (http) {
    case 404:
        return TN_ENOTFOUND;
    case 409:
        return reason && strcmp(reason, "AlreadyExists") == 0 ? TN_EEXIST : TN_ECONFLICT;
    case 410:
        return TN_EGONE;
    case 400:
    case 422:
        return TN_EINVAL;
    default:
        return TN_EIO;
    }
}

/* Fills st from a response body: a metav1.Status when it is one, else the first bytes of the
 * body (sanitised) as the message. */
static void decode_status(const char *body, size_t len, long http, struct tn_kube_status *st)
{
    memset(st, 0, sizeof *st);
    st->code = (int)http;
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (j && json_is_object(j) && strcmp(tn_json_str(j, "kind", ""), "Status") == 0) {
        snprintf(st->reason, sizeof st->reason, "%s", tn_json_str(j, "reason", ""));
        snprintf(st->message, sizeof st->message, "%s", tn_json_str(j, "message", ""));
        long long code = tn_json_int(j, "code", 0);
        if (code > 0 && !http) st->code = (int)code;
        st->retry_after_s = tn_json_int(j, "details.retryAfterSeconds", 0);
        json_t *causes = tn_json_get(j, "details.causes");
        size_t i, off = 0;
        json_t *cause;
        json_array_foreach(causes, i, cause)
        {
            const char *f = tn_json_str(cause, "field", "");
            const char *m = tn_json_str(cause, "message", "");
            int n = snprintf(st->causes + off, sizeof st->causes - off, "%s%s%s%s", off ? "\n" : "",
                             f, *f ? ": " : "", m);
            if (n < 0 || (size_t)n >= sizeof st->causes - off) break;
            off += (size_t)n;
        }
    } else if (len) {
        size_t n = len < sizeof st->message - 1 ? len : sizeof st->message - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)body[i];
            st->message[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        }
        st->message[n] = '\0';
    }
    if (!st->reason[0]) {
        const char *r = http == 401   ? "Unauthorized"
                        : http == 403 ? "Forbidden"
                        : http == 404 ? "NotFound"
                        : http == 409 ? "Conflict"
                        : http == 410 ? "Gone"
                        : http == 429 ? "TooManyRequests"
                        : http >= 500 ? "InternalError"
                                      : "Unknown";
        snprintf(st->reason, sizeof st->reason, "%s", r);
    }
    json_decref(j);
}

/* ---- rate limiting ---------------------------------------------------------------------- */

/* Token bucket with reservations (client-go's flowcontrol): a caller takes a token, possibly
 * into debt, and sleeps until its reservation matures. Runs on the calling thread. */
static void rate_wait(struct tn_kube_client *c)
{
    if (c->o.qps <= 0) return;
    pthread_mutex_lock(&c->rl_mu);
    int64_t now = tn_mono_ns();
    c->tokens += (double)(now - c->rl_last_ns) / 1e9 * c->o.qps;
    if (c->tokens > c->o.burst) c->tokens = c->o.burst;
    c->rl_last_ns = now;
    c->tokens -= 1.0;
    double wait_s = c->tokens < 0 ? -c->tokens / c->o.qps : 0;
    pthread_mutex_unlock(&c->rl_mu);
    if (wait_s > 0) {
        struct timespec ts = {(time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- easy handle setup -------------------------------------------------------------------- */

static size_t req_write(char *data, size_t sz, size_t n, void *ud)
{
    struct kreq *r = ud;
    if (tn_buf_append(&r->body, data, sz * n)) return 0; /* over the cap: abort */
    return sz * n;
}

static size_t req_header(char *data, size_t sz, size_t n, void *ud)
{
    struct kreq *r = ud;
    size_t len = sz * n;
    static const char k[] = "retry-after:";
    if (len > sizeof k - 1 && strncasecmp(data, k, sizeof k - 1) == 0) {
        char tmp[32];
        size_t m = len - (sizeof k - 1);
        if (m >= sizeof tmp) m = sizeof tmp - 1;
        memcpy(tmp, data + sizeof k - 1, m);
        tmp[m] = '\0';
        long v = strtol(tmp, NULL, 10); /* seconds form; HTTP dates are not used by apiservers */
        if (v > 0) r->retry_after_s = v;
    }
    return len;
}

/* Options common to every transfer: TLS material as blobs, timeouts, keepalive, headers.
 * Returns the header list (caller frees after the transfer) or NULL on OOM. */
static struct curl_slist *setup_easy(struct tn_kube_client *c, CURL *e, const char *url,
                                     const char *ctype, int watch, char *errbuf)
{
    struct tn_kube_config *cfg = c->cfg;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, KC_CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, watch ? 0L : (long)c->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    errbuf[0] = '\0';
    if (cfg->ca_pem) {
        struct curl_blob b = {cfg->ca_pem, strlen(cfg->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    }
    if (cfg->cert_pem) {
        struct curl_blob b = {cfg->cert_pem, strlen(cfg->cert_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
    }
    if (cfg->key_pem) {
        struct curl_blob b = {cfg->key_pem, strlen(cfg->key_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
    }
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);

    struct curl_slist *h = NULL, *t;
    if (!(t = curl_slist_append(h, "Accept: application/json"))) goto oom;
    h = t;
    if (!(t = curl_slist_append(h, "Expect:"))) goto oom; /* no 100-continue round trip */
    h = t;
    if (ctype) {
        char line[128];
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        if (!(t = curl_slist_append(h, line))) goto oom;
        h = t;
    }
    int force = atomic_exchange(&c->token_force, 0);
    char *tok = tn_kube_config_token(cfg, force);
    if (tok) {
        size_t n = strlen(tok) + 32;
        char *line = malloc(n);
        if (!line) {
            free(tok);
            goto oom;
        }
        snprintf(line, n, "Authorization: Bearer %s", tok);
        t = curl_slist_append(h, line);
        explicit_bzero(line, n);
        explicit_bzero(tok, strlen(tok));
        free(line);
        free(tok);
        if (!t) goto oom;
        h = t;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    return h;
oom:
    curl_slist_free_all(h);
    return NULL;
}

static void set_method(CURL *e, const char *method, const char *body, size_t len)
{
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
}

static CURL *pool_get(struct tn_kube_client *c)
{
    CURL *e = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->npool > 0) e = c->pool[--c->npool];
    pthread_mutex_unlock(&c->mu);
    return e ? e : curl_easy_init();
}

static void pool_put(struct tn_kube_client *c, CURL *e)
{
    curl_easy_reset(e);
    pthread_mutex_lock(&c->mu);
    if (c->npool < KC_POOL_MAX) {
        c->pool[c->npool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (e) curl_easy_cleanup(e);
}

/* ---- one attempt: hand the transfer to the client thread and wait ----------------------- */

/* Returns 0 when the transfer was handed over and finished (see r->cres/r->http), or TN_EIO
 * when the client is shutting down. */
static int submit_and_wait(struct tn_kube_client *c, struct kreq *r)
{
    pthread_mutex_lock(&c->mu);
    if (c->shutdown || c->thread_exited) {
        pthread_mutex_unlock(&c->mu);
        return TN_EIO;
    }
    r->next = NULL;
    if (c->pending_tail)
        c->pending_tail->next = r;
    else
        c->pending_head = r;
    c->pending_tail = r;
    curl_multi_wakeup(c->multi);
    while (!r->done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* Response of a request after retries: http (0 on transport error) and body (malloc'd). */
struct kresp {
    long http;
    char *body;
    size_t len;
    int64_t retry_after_s;
};

enum retry_class { RETRY_IDEMPOTENT, RETRY_CONNECT_ONLY };

static int retriable_transport(CURLcode cr, enum retry_class rc)
{
    if (cr == CURLE_COULDNT_CONNECT) return 1; /* nothing was sent */
    if (rc != RETRY_IDEMPOTENT) return 0;
    return cr == CURLE_SEND_ERROR || cr == CURLE_RECV_ERROR || cr == CURLE_GOT_NOTHING ||
           cr == CURLE_PARTIAL_FILE || cr == CURLE_COULDNT_RESOLVE_HOST;
}

static void observe(struct tn_kube_client *c, const char *method, long http, int64_t t0_ns)
{
    if (!c->m_req && !c->m_dur) return;
    char code[24];
    if (http > 0)
        snprintf(code, sizeof code, "%ld", http);
    else
        snprintf(code, sizeof code, "<error>");
    const char *lv[] = {code, method, c->host};
    tn_metric_inc(c->m_req, lv);
    const char *dv[] = {method, c->host};
    tn_metric_observe(c->m_dur, dv, (double)(tn_mono_ns() - t0_ns) / 1e9);
}

/* Runs method on path_query with rate limiting, 401 token refresh (once), and retries with
 * exponential backoff + jitter on 429/5xx/connection errors (per rc). On success fills out (body
 * malloc'd, caller frees) and returns 0; on a transport error returns TN_EIO with err set to
 * "<curl error>". */
static int do_request(struct tn_kube_client *c, const char *method, const char *path_query,
                      const char *ctype, const char *body, size_t blen, enum retry_class rc,
                      struct kresp *out, struct tn_err *err)
{
    memset(out, 0, sizeof *out);
    size_t ulen = strlen(c->cfg->server) + strlen(path_query) + 1;
    char *url = malloc(ulen);
    if (!url) return tn_err_set(err, TN_ENOMEM, "out of memory");
    snprintf(url, ulen, "%s%s", c->cfg->server, path_query);
    int auth_retried = 0, ret = 0;
    for (int attempt = 0;; attempt++) {
        rate_wait(c);
        struct kreq r;
        memset(&r, 0, sizeof r);
        r.kind = KIND_REQ;
        tn_buf_init(&r.body, KC_BODY_MAX);
        r.easy = pool_get(c);
        if (!r.easy) {
            ret = tn_err_set(err, TN_ENOMEM, "curl_easy_init failed");
            break;
        }
        r.hdrs = setup_easy(c, r.easy, url, ctype, 0, r.errbuf);
        if (!r.hdrs) {
            pool_put(c, r.easy);
            ret = tn_err_set(err, TN_ENOMEM, "out of memory");
            break;
        }
        set_method(r.easy, method, body, blen);
        curl_easy_setopt(r.easy, CURLOPT_WRITEFUNCTION, req_write);
        curl_easy_setopt(r.easy, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(r.easy, CURLOPT_HEADERFUNCTION, req_header);
        curl_easy_setopt(r.easy, CURLOPT_HEADERDATA, &r);
        curl_easy_setopt(r.easy, CURLOPT_PRIVATE, &r);
        int64_t t0 = tn_mono_ns();
        if (submit_and_wait(c, &r) != 0) {
            curl_slist_free_all(r.hdrs);
            pool_put(c, r.easy);
            tn_buf_free(&r.body);
            ret = tn_err_set(err, TN_EIO, "client is shutting down");
            break;
        }
        curl_slist_free_all(r.hdrs);
        pool_put(c, r.easy);
        observe(c, method, r.cres == CURLE_OK ? r.http : 0, t0);

        int64_t delay_ms = -1;
        if (r.cres != CURLE_OK) {
            if (attempt < c->o.max_retries && retriable_transport(r.cres, rc)) delay_ms = 0;
        } else if (r.http == 401 && !auth_retried) {
            auth_retried = 1;
            atomic_store(&c->token_force, 1);
            attempt--; /* a token refresh is not a retry */
            tn_buf_free(&r.body);
            continue;
        } else if ((r.http == 429 || (r.http >= 500 && rc == RETRY_IDEMPOTENT)) &&
                   attempt < c->o.max_retries) {
            /* 429 means the request was refused before any processing: safe even for POST. */
            delay_ms = r.retry_after_s > 0
                           ? (r.retry_after_s > KC_RETRY_AFTER_CAP_S ? KC_RETRY_AFTER_CAP_S
                                                                     : r.retry_after_s) *
                                 1000
                           : 0;
        }
        if (delay_ms >= 0) {
            if (delay_ms == 0) {
                int64_t base = (int64_t)KC_BACKOFF_BASE_MS << (attempt < 10 ? attempt : 10);
                if (base > KC_BACKOFF_CAP_MS) base = KC_BACKOFF_CAP_MS;
                delay_ms = base + (int64_t)(tn_rand_unit() * (double)base * 0.5);
            }
            char code[24], att[16], dl[24];
            snprintf(code, sizeof code, "%ld", r.cres == CURLE_OK ? r.http : 0L);
            snprintf(att, sizeof att, "%d", attempt + 1);
            snprintf(dl, sizeof dl, "%lld", (long long)delay_ms);
            TN_DEBUG("kube client: retrying request", "method", method, "path", path_query, "code",
                     code, "error", r.cres == CURLE_OK ? "" : curl_easy_strerror(r.cres), "attempt",
                     att, "delay_ms", dl);
            tn_buf_free(&r.body);
            sleep_ms(delay_ms);
            continue;
        }
        if (r.cres != CURLE_OK) {
            ret = tn_err_set(err, r.cres == CURLE_WRITE_ERROR ? TN_ETOOBIG : TN_EIO, "%s %s: %s",
                             method, c->cfg->server,
                             r.errbuf[0] ? r.errbuf : curl_easy_strerror(r.cres));
            tn_buf_free(&r.body);
            break;
        }
        out->http = r.http;
        out->retry_after_s = r.retry_after_s;
        out->body = tn_buf_steal(&r.body, &out->len);
        if (!out->body) ret = tn_err_set(err, TN_ENOMEM, "out of memory");
        break;
    }
    free(url);
    return ret;
}

/* ---- typed calls ------------------------------------------------------------------------ */

/* "ns/name", "name", "ns" or "(all namespaces)" for messages. */
static void obj_desc(char *out, size_t n, const char *ns, const char *name)
{
    if (ns && *ns && name && *name)
        snprintf(out, n, "%s/%s", ns, name);
    else if (name && *name)
        snprintf(out, n, "%s", name);
    else if (ns && *ns)
        snprintf(out, n, "%s", ns);
    else
        snprintf(out, n, "(all namespaces)");
}

/* Performs one API call and turns the answer into 0 + *out (parsed JSON, when out) or a
 * negative code with st/err filled. */
static int api_call(struct tn_kube_client *c, const char *verb, const struct tn_kube_gvr *r,
                    const char *ns, const char *name, const char *method, const char *pq,
                    const char *ctype, const char *body, size_t blen, json_t **out,
                    struct tn_kube_status *st, struct tn_err *err)
{
    char desc[600];
    obj_desc(desc, sizeof desc, ns, name);
    if (out) *out = NULL;
    struct kresp resp;
    int rc =
        do_request(c, method, pq, ctype, body, blen,
                   strcmp(method, "POST") == 0 ? RETRY_CONNECT_ONLY : RETRY_IDEMPOTENT, &resp, err);
    if (rc) {
        if (st) {
            memset(st, 0, sizeof *st);
            snprintf(st->message, sizeof st->message, "%s", err ? err->msg : "transport error");
        }
        tn_err_prefix(err, "%s %s %s", verb, r->resource, desc);
        return rc;
    }
    if (resp.http >= 200 && resp.http < 300) {
        if (out) {
            json_error_t je;
            *out = json_loadb(resp.body, resp.len, 0, &je);
            if (!*out) {
                rc = tn_err_set(err, TN_EIO, "%s %s %s: bad JSON in response: %s", verb,
                                r->resource, desc, je.text);
            }
        }
        free(resp.body);
        return rc;
    }
    struct tn_kube_status s;
    decode_status(resp.body, resp.len, resp.http, &s);
    if (!s.retry_after_s) s.retry_after_s = resp.retry_after_s;
    free(resp.body);
    rc = code_for_http(resp.http, s.reason);
    if (st) *st = s;
    if (s.causes[0] && !strstr(s.message, s.causes))
        tn_err_set(err, rc, "%s %s %s: %ld %s: %s (%s)", verb, r->resource, desc, resp.http,
                   s.reason, s.message, s.causes);
    else
        tn_err_set(err, rc, "%s %s %s: %ld %s: %s", verb, r->resource, desc, resp.http, s.reason,
                   s.message);
    return rc;
}

int tn_kube_get(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                const char *name, json_t **out, struct tn_kube_status *st, struct tn_err *err)
{
    char *p = tn_kube_path(r, ns, name, NULL);
    if (!p) return tn_err_set(err, TN_ENOMEM, "out of memory");
    int rc = api_call(c, "get", r, ns, name, "GET", p, NULL, NULL, 0, out, st, err);
    free(p);
    return rc;
}

/* One list request (a page when opts->limit > 0). */
static int list_page(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                     const struct tn_kube_list_opts *o, long limit, const char *cont, json_t **out,
                     struct tn_kube_status *st, struct tn_err *err)
{
    struct tn_buf b;
    tn_buf_init(&b, 1 << 20);
    int rc = put_path(&b, r, ns, NULL, NULL);
    if (o) {
        rc |= put_query(&b, "labelSelector",
                        o->label_selector && *o->label_selector ? o->label_selector : NULL);
        rc |= put_query(&b, "fieldSelector",
                        o->field_selector && *o->field_selector ? o->field_selector : NULL);
        /* a continue token carries its own snapshot version */
        if (!cont && o->resource_version && *o->resource_version)
            rc |= put_query(&b, "resourceVersion", o->resource_version);
    }
    if (limit > 0) {
        char l[32];
        snprintf(l, sizeof l, "%ld", limit);
        rc |= put_query(&b, "limit", l);
    }
    rc |= put_query(&b, "continue", cont && *cont ? cont : NULL);
    if (rc) {
        tn_buf_free(&b);
        return tn_err_set(err, TN_ENOMEM, "out of memory");
    }
    rc = api_call(c, "list", r, ns, NULL, "GET", b.data, NULL, NULL, 0, out, st, err);
    tn_buf_free(&b);
    if (rc == 0 && !json_is_array(json_object_get(*out, "items"))) {
        json_decref(*out);
        *out = NULL;
        char desc[300];
        obj_desc(desc, sizeof desc, ns, NULL);
        return tn_err_set(err, TN_EIO, "list %s %s: response has no items array", r->resource,
                          desc);
    }
    return rc;
}

int tn_kube_list(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                 const struct tn_kube_list_opts *opts, json_t **out, struct tn_kube_status *st,
                 struct tn_err *err)
{
    *out = NULL;
    long limit = opts ? opts->limit : 0;
    const char *cont0 = opts ? opts->cont : NULL;
    json_t *all = NULL;
    int rc = list_page(c, r, ns, opts, limit, cont0, &all, st, err);
    if (rc) return rc;
    if (limit <= 0) {
        *out = all;
        return 0;
    }
    json_t *items = json_object_get(all, "items");
    for (;;) {
        const char *cont = tn_json_str(all, "metadata.continue", "");
        if (!*cont) break;
        char *tok = strdup(cont);
        if (!tok) {
            json_decref(all);
            return tn_err_set(err, TN_ENOMEM, "out of memory");
        }
        json_t *page = NULL;
        rc = list_page(c, r, ns, opts, limit, tok, &page, st, err);
        free(tok);
        if (rc == TN_EGONE) {
            /* the continue token expired (compaction): fall back to one full list, as
             * client-go's pager does */
            json_decref(all);
            return list_page(c, r, ns, opts, 0, NULL, out, st, err);
        }
        if (rc) {
            json_decref(all);
            return rc;
        }
        if (json_array_extend(items, json_object_get(page, "items"))) {
            json_decref(page);
            json_decref(all);
            return tn_err_set(err, TN_ENOMEM, "out of memory");
        }
        json_t *md = tn_json_obj_ensure(all, "metadata");
        const char *nc = tn_json_str(page, "metadata.continue", "");
        if (md) json_object_set_new(md, "continue", json_string(nc));
        json_decref(page);
    }
    json_t *md = json_object_get(all, "metadata");
    if (json_is_object(md)) {
        json_object_del(md, "continue");
        json_object_del(md, "remainingItemCount");
    }
    *out = all;
    return 0;
}

int tn_kube_create(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const json_t *obj, json_t **out, struct tn_kube_status *st, struct tn_err *err)
{
    char *p = tn_kube_path(r, ns, NULL, NULL);
    char *body = json_dumps(obj, JSON_COMPACT);
    int rc;
    if (!p || !body) {
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    } else {
        const char *name = tn_json_str(obj, "metadata.name", NULL);
        if (!name) name = tn_json_str(obj, "metadata.generateName", "");
        rc = api_call(c, "create", r, ns, name, "POST", p, "application/json", body, strlen(body),
                      out, st, err);
    }
    free(p);
    free(body);
    return rc;
}

int tn_kube_update(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const json_t *obj, const char *subresource, json_t **out,
                   struct tn_kube_status *st, struct tn_err *err)
{
    const char *name = tn_json_str(obj, "metadata.name", NULL);
    if (!name || !*name)
        return tn_err_set(err, TN_EINVAL, "update %s: metadata.name is required", r->resource);
    char *p = tn_kube_path(r, ns, name, subresource);
    char *body = json_dumps(obj, JSON_COMPACT);
    int rc;
    if (!p || !body)
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    else
        rc = api_call(c, "update", r, ns, name, "PUT", p, "application/json", body, strlen(body),
                      out, st, err);
    free(p);
    free(body);
    return rc;
}

int tn_kube_patch(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                  const char *name, enum tn_kube_patch_type type, const json_t *patch,
                  const char *subresource, const char *field_manager, json_t **out,
                  struct tn_kube_status *st, struct tn_err *err)
{
    const char *ct;
    switch (type) {
    case TN_KUBE_PATCH_MERGE:
        ct = "application/merge-patch+json";
        break;
    case TN_KUBE_PATCH_JSON:
        ct = "application/json-patch+json";
        break;
    case TN_KUBE_PATCH_STRATEGIC:
        ct = "application/strategic-merge-patch+json";
        break;
    case TN_KUBE_PATCH_APPLY:
        ct = "application/apply-patch+yaml";
        if (!field_manager || !*field_manager)
            return tn_err_set(err, TN_EINVAL,
                              "patch %s %s: server-side apply needs a field manager", r->resource,
                              name ? name : "");
        break;
    default:
        return tn_err_set(err, TN_EINVAL, "patch %s: unknown patch type %d", r->resource,
                          (int)type);
    }
    struct tn_buf b;
    tn_buf_init(&b, 1 << 16);
    int rc = put_path(&b, r, ns, name, subresource);
    rc |= put_query(&b, "fieldManager", field_manager && *field_manager ? field_manager : NULL);
    char *body = json_dumps(patch, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rc || !body)
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    else
        rc = api_call(c, "patch", r, ns, name, "PATCH", b.data, ct, body, strlen(body), out, st,
                      err);
    tn_buf_free(&b);
    free(body);
    return rc;
}

int tn_kube_delete(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const char *name, const char *propagation, struct tn_kube_status *st,
                   struct tn_err *err)
{
    char *p = tn_kube_path(r, ns, name, NULL);
    if (!p) return tn_err_set(err, TN_ENOMEM, "out of memory");
    char body[160];
    int blen = 0;
    if (propagation && *propagation)
        blen = snprintf(body, sizeof body,
                        "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                        "\"propagationPolicy\":\"%.40s\"}",
                        propagation);
    int rc = api_call(c, "delete", r, ns, name, "DELETE", p, blen ? "application/json" : NULL,
                      blen ? body : NULL, (size_t)blen, NULL, st, err);
    free(p);
    return rc;
}

int tn_kube_raw(struct tn_kube_client *c, const char *method, const char *path_and_query,
                const char *content_type, const char *body, size_t body_len, char **out_body,
                size_t *out_len, struct tn_err *err)
{
    struct kresp resp;
    if (out_body) *out_body = NULL;
    if (out_len) *out_len = 0;
    int rc =
        do_request(c, method, path_and_query, content_type, body, body_len,
                   strcmp(method, "POST") == 0 ? RETRY_CONNECT_ONLY : RETRY_IDEMPOTENT, &resp, err);
    if (rc) {
        tn_err_prefix(err, "%s %s", method, path_and_query);
        return rc;
    }
    if (out_body)
        *out_body = resp.body;
    else
        free(resp.body);
    if (out_len) *out_len = resp.len;
    return (int)resp.http;
}

/* ---- watch ------------------------------------------------------------------------------ */

static enum tn_kube_event event_type(const char *t, int *ok)
{
    *ok = 1;
    if (strcmp(t, "ADDED") == 0) return TN_KUBE_ADDED;
    if (strcmp(t, "MODIFIED") == 0) return TN_KUBE_MODIFIED;
    if (strcmp(t, "DELETED") == 0) return TN_KUBE_DELETED;
    if (strcmp(t, "BOOKMARK") == 0) return TN_KUBE_BOOKMARK;
    if (strcmp(t, "ERROR") == 0) return TN_KUBE_ERROR;
    *ok = 0;
    return TN_KUBE_ERROR;
}

static void watch_fail(struct tn_kube_watch *w, int code)
{
    if (!w->end_set) {
        w->end_set = 1;
        w->end_code = code;
    }
}

/* Decodes one complete line; returns 0 to go on, -1 to end the stream (w->end_code set). */
static int watch_line(struct tn_kube_watch *w, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len) return 0;
    if (len > w->max_line) {
        TN_WARN("kube watch: event larger than the cap", "watch", w->desc);
        watch_fail(w, TN_ETOOBIG);
        return -1;
    }
    json_error_t je;
    json_t *ev = json_loadb(line, len, 0, &je);
    if (!ev) {
        TN_WARN("kube watch: undecodable event", "watch", w->desc, "error", je.text);
        watch_fail(w, TN_EINVAL);
        return -1;
    }
    int ok;
    enum tn_kube_event t = event_type(tn_json_str(ev, "type", ""), &ok);
    json_t *obj = json_object_get(ev, "object");
    if (!ok || !json_is_object(obj)) {
        TN_WARN("kube watch: event without type or object", "watch", w->desc);
        json_decref(ev);
        watch_fail(w, TN_EINVAL);
        return -1;
    }
    if (!atomic_load(&w->stop_req) && w->fn) w->fn(t, obj, w->arg);
    int ret = 0;
    if (t == TN_KUBE_ERROR) {
        long long code = tn_json_int(obj, "code", 0);
        watch_fail(w,
                   code == 410 ? 410 : code_for_http((long)code, tn_json_str(obj, "reason", "")));
        ret = -1;
    }
    json_decref(ev);
    return atomic_load(&w->stop_req) ? -1 : ret;
}

/* Client thread: scans only the new bytes for '\n', decodes each complete line once and keeps
 * the partial tail. */
static size_t watch_write(char *data, size_t sz, size_t n, void *ud)
{
    struct tn_kube_watch *w = ud;
    size_t len = sz * n;
    w->last_byte_ms = tn_mono_ms();
    if (atomic_load(&w->stop_req)) return CURL_WRITEFUNC_ERROR;
    if (!w->http) curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->http);
    if (w->http != 200) {
        (void)tn_buf_append(&w->errbody, data, len); /* keep what fits: it is a Status */
        return len;
    }
    size_t scanned = w->buf.len; /* bytes already known to hold no '\n' */
    if (tn_buf_append(&w->buf, data, len)) {
        watch_fail(w, TN_ETOOBIG);
        return CURL_WRITEFUNC_ERROR;
    }
    size_t start = 0;
    const char *nl;
    while ((nl = memchr(w->buf.data + scanned, '\n', w->buf.len - scanned))) {
        size_t end = (size_t)(nl - w->buf.data);
        if (watch_line(w, w->buf.data + start, end - start) != 0) return CURL_WRITEFUNC_ERROR;
        start = end + 1;
        scanned = start;
    }
    tn_buf_consume(&w->buf, start);
    if (w->buf.len > w->max_line) {
        TN_WARN("kube watch: event larger than the cap", "watch", w->desc);
        watch_fail(w, TN_ETOOBIG);
        return CURL_WRITEFUNC_ERROR;
    }
    return len;
}

static void watch_free(struct tn_kube_watch *w)
{
    if (!w) return;
    if (w->easy) curl_easy_cleanup(w->easy);
    curl_slist_free_all(w->hdrs);
    tn_buf_free(&w->buf);
    tn_buf_free(&w->errbody);
    free(w->desc);
    free(w);
}

/* Client thread: the transfer ended (cres) or was ended by us (end_set). Detaches the handle
 * and runs the end callback unless the watch is being stopped. */
static void watch_finish(struct tn_kube_client *c, struct tn_kube_watch *w, CURLcode cres)
{
    if (w->state != W_ACTIVE) return;
    curl_multi_remove_handle(c->multi, w->easy);
    w->state = W_DONE;
    int code;
    if (w->end_set) {
        code = w->end_code;
    } else if (cres != CURLE_OK) {
        code = TN_EIO;
        TN_INFO("kube watch: stream failed", "watch", w->desc, "error",
                w->errbuf[0] ? w->errbuf : curl_easy_strerror(cres));
    } else {
        if (!w->http) curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->http);
        if (w->http == 200) {
            code = 0;
        } else {
            struct tn_kube_status st;
            decode_status(w->errbody.data, w->errbody.len, w->http, &st);
            code = w->http == 410 ? 410 : code_for_http(w->http, st.reason);
            if (w->http == 401) atomic_store(&c->token_force, 1);
            char hc[24];
            snprintf(hc, sizeof hc, "%ld", w->http);
            TN_INFO("kube watch: refused", "watch", w->desc, "code", hc, "reason", st.reason,
                    "message", st.message);
        }
    }
    if (!atomic_load(&w->stop_req) && w->end) w->end(code, w->arg);
}

struct tn_kube_watch *tn_kube_watch_start(struct tn_kube_client *c, const struct tn_kube_gvr *r,
                                          const char *ns, const struct tn_kube_watch_opts *opts,
                                          tn_kube_watch_fn fn, tn_kube_watch_end_fn end, void *arg,
                                          struct tn_err *err)
{
    struct tn_kube_watch_opts o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    struct tn_kube_watch *w = calloc(1, sizeof *w);
    struct tn_buf url;
    tn_buf_init(&url, 1 << 20);
    if (!w) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    w->kind = KIND_WATCH;
    w->c = c;
    w->fn = fn;
    w->end = end;
    w->arg = arg;
    w->max_line = o.max_line ? o.max_line : KC_WATCH_MAX_LINE_DEFAULT;
    w->idle_ms = o.idle_timeout_ms ? o.idle_timeout_ms : KC_WATCH_IDLE_DEFAULT_MS;
    tn_buf_init(&w->buf, w->max_line + CURL_MAX_WRITE_SIZE + 1);
    tn_buf_init(&w->errbody, KC_ERRBODY_MAX);
    char d[600];
    obj_desc(d, sizeof d, ns, NULL);
    size_t dl = strlen(r->resource) + strlen(d) + 2;
    w->desc = malloc(dl);
    if (w->desc) snprintf(w->desc, dl, "%s %s", r->resource, d);

    int timeout_s = o.timeout_s > 0 ? o.timeout_s : 300 + (int)(tn_rand_unit() * 301.0);
    char ts[16];
    snprintf(ts, sizeof ts, "%d", timeout_s);
    int rc = tn_buf_puts(&url, c->cfg->server);
    rc |= put_path(&url, r, ns, NULL, NULL);
    rc |= put_query(&url, "watch", "1");
    if (o.bookmarks) rc |= put_query(&url, "allowWatchBookmarks", "true");
    rc |= put_query(&url, "resourceVersion",
                    o.resource_version && *o.resource_version ? o.resource_version : NULL);
    rc |= put_query(&url, "timeoutSeconds", ts);
    rc |= put_query(&url, "labelSelector",
                    o.label_selector && *o.label_selector ? o.label_selector : NULL);
    rc |= put_query(&url, "fieldSelector",
                    o.field_selector && *o.field_selector ? o.field_selector : NULL);
    if (rc || !w->desc || !(w->easy = curl_easy_init())) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        goto fail;
    }
    rate_wait(c);
    w->hdrs = setup_easy(c, w->easy, url.data, NULL, 1, w->errbuf);
    if (!w->hdrs) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        goto fail;
    }
    curl_easy_setopt(w->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
    tn_buf_free(&url);

    pthread_mutex_lock(&c->mu);
    if (c->shutdown || c->thread_exited) {
        pthread_mutex_unlock(&c->mu);
        tn_err_set(err, TN_EIO, "watch %s: client is shutting down", w->desc);
        watch_free(w);
        return NULL;
    }
    w->state = W_PENDING;
    w->next = c->watches;
    c->watches = w;
    curl_multi_wakeup(c->multi);
    pthread_mutex_unlock(&c->mu);
    return w;
fail:
    tn_buf_free(&url);
    watch_free(w);
    return NULL;
}

static void unlink_watch(struct tn_kube_client *c, struct tn_kube_watch *w)
{
    for (struct tn_kube_watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

void tn_kube_watch_stop(struct tn_kube_watch *w)
{
    if (!w) return;
    struct tn_kube_client *c = w->c;
    pthread_mutex_lock(&c->mu);
    atomic_store(&w->stop_req, 1);
    if (c->thr_started && !c->thread_exited && pthread_equal(pthread_self(), c->thr)) {
        /* from a callback: the handle cannot be detached here; the loop frees it */
        w->detached = 1;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (!c->thread_exited) {
        curl_multi_wakeup(c->multi);
        while (!w->acked && !c->thread_exited)
            pthread_cond_wait(&c->cv, &c->mu);
    }
    unlink_watch(c, w);
    pthread_mutex_unlock(&c->mu);
    watch_free(w);
}

/* ---- client thread ---------------------------------------------------------------------- */

/* Under c->mu: hands queued requests and watches to the multi handle, detaches stopped
 * watches (freeing those stopped from a callback) and wakes their stoppers. */
static void adopt_locked(struct tn_kube_client *c)
{
    struct kreq *r;
    while ((r = c->pending_head)) {
        c->pending_head = r->next;
        if (!c->pending_head) c->pending_tail = NULL;
        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
            r->cres = CURLE_FAILED_INIT;
            r->done = 1;
            pthread_cond_broadcast(&c->cv);
        } else {
            r->next = c->active;
            c->active = r;
        }
    }
    int acked = 0;
    for (struct tn_kube_watch **pp = &c->watches; *pp;) {
        struct tn_kube_watch *w = *pp;
        if (atomic_load(&w->stop_req)) {
            if (w->state == W_ACTIVE) curl_multi_remove_handle(c->multi, w->easy);
            w->state = W_DONE;
            if (w->detached) {
                *pp = w->next;
                watch_free(w);
                continue;
            }
            if (!w->acked) {
                w->acked = 1;
                acked = 1;
            }
        } else if (w->state == W_PENDING) {
            w->last_byte_ms = tn_mono_ms();
            if (curl_multi_add_handle(c->multi, w->easy) == CURLM_OK) {
                w->state = W_ACTIVE;
            } else {
                w->state = W_ACTIVE; /* watch_finish reports the failure */
                watch_fail(w, TN_EIO);
            }
        }
        pp = &w->next;
    }
    if (acked) pthread_cond_broadcast(&c->cv);
}

static void *client_main(void *arg)
{
    struct tn_kube_client *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        adopt_locked(c);
        if (c->shutdown) break;
        pthread_mutex_unlock(&c->mu);

        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int q;
        while ((m = curl_multi_info_read(c->multi, &q))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode cres = m->data.result;
            int *kind = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&kind);
            if (!kind) continue;
            if (*kind == KIND_REQ) {
                struct kreq *r = (struct kreq *)kind;
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->http);
                curl_multi_remove_handle(c->multi, e);
                pthread_mutex_lock(&c->mu);
                for (struct kreq **pp = &c->active; *pp; pp = &(*pp)->next) {
                    if (*pp == r) {
                        *pp = r->next;
                        break;
                    }
                }
                r->cres = cres;
                r->done = 1;
                pthread_cond_broadcast(&c->cv);
                pthread_mutex_unlock(&c->mu);
            } else {
                watch_finish(c, (struct tn_kube_watch *)kind, cres);
            }
        }

        /* idle detection, and the poll timeout up to the next idle deadline */
        int64_t now = tn_mono_ms();
        int64_t wait = 1000;
        pthread_mutex_lock(&c->mu);
        struct tn_kube_watch *active[64];
        int na = 0;
        for (struct tn_kube_watch *w = c->watches; w; w = w->next) {
            if (w->state != W_ACTIVE || w->idle_ms <= 0 || atomic_load(&w->stop_req)) continue;
            int64_t left = w->last_byte_ms + w->idle_ms - now;
            if (left <= 0 && na < 64)
                active[na++] = w;
            else if (left < wait)
                wait = left;
        }
        pthread_mutex_unlock(&c->mu);
        for (int i = 0; i < na; i++) {
            char ms[24];
            snprintf(ms, sizeof ms, "%d", active[i]->idle_ms);
            TN_WARN("kube watch: no data, assuming a dead stream", "watch", active[i]->desc,
                    "idle_ms", ms);
            watch_fail(active[i], TN_EIO);
            watch_finish(c, active[i], CURLE_OK);
        }
        if (na) wait = 0;
        curl_multi_poll(c->multi, NULL, 0, (int)(wait < 1 ? 1 : wait), NULL);
        pthread_mutex_lock(&c->mu);
    }
    /* shutting down (under c->mu): fail requests in flight, detach every watch silently */
    for (struct kreq *r = c->active; r; r = r->next) {
        curl_multi_remove_handle(c->multi, r->easy);
        r->cres = CURLE_ABORTED_BY_CALLBACK;
        r->done = 1;
    }
    c->active = NULL;
    for (struct tn_kube_watch *w = c->watches; w; w = w->next) {
        atomic_store(&w->stop_req, 1);
        if (w->state == W_ACTIVE) curl_multi_remove_handle(c->multi, w->easy);
        w->state = W_DONE;
        w->acked = 1;
    }
    c->thread_exited = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct tn_kube_client *tn_kube_client_new(struct tn_kube_config *cfg,
                                          const struct tn_kube_client_opts *opts,
                                          struct tn_err *err)
{
    if (!cfg || !cfg->server || !*cfg->server) {
        tn_err_set(err, TN_EINVAL, "kube client: config has no server");
        if (cfg) tn_kube_config_free(cfg);
        return NULL;
    }
    pthread_once(&g_curl_once, curl_once);
    if (g_curl_init_rc) {
        tn_err_set(err, TN_EIO, "kube client: curl_global_init failed");
        tn_kube_config_free(cfg);
        return NULL;
    }
    struct tn_kube_client *c = calloc(1, sizeof *c);
    if (!c) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        tn_kube_config_free(cfg);
        return NULL;
    }
    c->cfg = cfg;
    if (opts) c->o = *opts;
    if (c->o.qps == 0) c->o.qps = 50;
    if (c->o.burst <= 0) c->o.burst = 100;
    if (c->o.max_retries == 0) c->o.max_retries = 5;
    if (c->o.max_retries < 0) c->o.max_retries = 0;
    if (c->o.timeout_ms <= 0) c->o.timeout_ms = 30000;
    c->user_agent = strdup(c->o.user_agent ? c->o.user_agent : "tandem/0.1");
    c->o.user_agent = c->user_agent;
    c->o.metrics = NULL; /* not kept: the family pointers are */
    c->tokens = c->o.burst;
    c->rl_last_ns = tn_mono_ns();
    /* strip trailing slashes so paths can be appended */
    size_t sl = strlen(cfg->server);
    while (sl > 1 && cfg->server[sl - 1] == '/')
        cfg->server[--sl] = '\0';
    const char *h = strstr(cfg->server, "://");
    h = h ? h + 3 : cfg->server;
    snprintf(c->host, sizeof c->host, "%.*s", (int)strcspn(h, "/"), h);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->rl_mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (opts && opts->metrics) {
        static const char *const req_labels[] = {"code", "method", "host", NULL};
        static const char *const dur_labels[] = {"verb", "host", NULL};
        static const double buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};
        c->m_req = tn_metrics_counter(opts->metrics, "rest_client_requests_total",
                                      "Number of HTTP requests, partitioned by status code, "
                                      "method, and host.",
                                      req_labels);
        c->m_dur = tn_metrics_histogram(opts->metrics, "rest_client_request_duration_seconds",
                                        "Request latency in seconds. Broken down by verb, and "
                                        "host.",
                                        dur_labels, buckets, sizeof buckets / sizeof *buckets);
    }
    c->multi = curl_multi_init();
    if (!c->user_agent || !c->multi) {
        tn_err_set(err, TN_ENOMEM, "kube client: out of memory");
        goto fail;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
    if (pthread_create(&c->thr, NULL, client_main, c) != 0) {
        tn_err_set(err, TN_EIO, "kube client: cannot start its thread");
        goto fail;
    }
    c->thr_started = 1;
    return c;
fail:
    tn_kube_client_free(c);
    return NULL;
}

void tn_kube_client_free(struct tn_kube_client *c)
{
    if (!c) return;
    if (c->thr_started) {
        pthread_mutex_lock(&c->mu);
        c->shutdown = 1;
        curl_multi_wakeup(c->multi);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thr, NULL);
    }
    while (c->watches) {
        struct tn_kube_watch *w = c->watches;
        c->watches = w->next;
        watch_free(w);
    }
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    if (c->multi) curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->rl_mu);
    pthread_cond_destroy(&c->cv);
    tn_kube_config_free(c->cfg);
    free(c->user_agent);
    free(c);
}

const struct tn_kube_config *tn_kube_client_config(const struct tn_kube_client *c)
{
    return c->cfg;
}
