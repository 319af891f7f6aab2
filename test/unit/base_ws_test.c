/* Websockets on the shared HTTP loop (pkg/base/http): our client against our server (headers,
 * both directions, 1 MiB fragmented and binary messages, ordering, close codes), refused upgrades,
 * connect failures, keepalive against a peer that stops answering, plain HTTP on the websocket
 * port, and Sedna-like peers written with Python's websockets package in both roles. */
#include "apis/message.h"
#include "base/http.h"
#include "base/tls.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* LeakSanitizer: a wss client context and a TLS server context in one process leave ~650 KiB of
 * OpenSSL objects (a CA store's X509s, reached only through each other) behind at teardown. The
 * amount is the same for 1 or 10 connections and nothing of ours is in it, so only allocations
 * made inside libcrypto/libssl are suppressed here; our own leaks are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcrypto.so\nleak:libssl.so\n";
}

#define BIG ((size_t)1 << 20)
#define NMSG 1000
#define PYTHON "/usr/bin/python3"

/* Everything the callbacks saw; written on the loop threads, read by the test under mu. */
struct ev {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int echo;   /* server echoes every message */
    int sedna;  /* server plays GM: answers a status report with an insert */
    int reject; /* ws_accept refuses with this status when node-name is "bad" */
    char accept_node[64], accept_auth[64], open_node[64], open_path[64], srv_peer[64];
    struct tn_ws_conn *srv_conn, *cli_conn;
    int srv_open, srv_closed, srv_code, srv_msgs, srv_next, srv_order_bad, srv_big_ok, srv_bin;
    int cli_open, cli_closed, cli_code, cli_msgs, cli_next, cli_order_bad, cli_big_ok, cli_bin;
    int cli_error;
    char cli_err[1200];
    int hello_seen, status_seen;
    char status_content[256], last_cli_msg[512];
    int cli_reply_status; /* client plays LC: answers an insert with a status report */
};

static void ev_init(struct ev *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
}

static void ev_done(struct ev *e)
{
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
}

#define LOCK(e) pthread_mutex_lock(&(e)->mu)
#define UNLOCK(e)                                                                                  \
    do {                                                                                           \
        pthread_cond_broadcast(&(e)->cv);                                                          \
        pthread_mutex_unlock(&(e)->mu);                                                            \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define WAIT_FOR(e, cond, secs)                                                                    \
    do {                                                                                           \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_REALTIME, &dl_);                                                       \
        dl_.tv_sec += (secs);                                                                      \
        pthread_mutex_lock(&(e)->mu);                                                              \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&(e)->cv, &(e)->mu, &dl_) == ETIMEDOUT) break;              \
        int ok_ = (cond);                                                                          \
        pthread_mutex_unlock(&(e)->mu);                                                            \
        ck_assert_msg(ok_, "timed out after %ds waiting for %s", (secs), #cond);                   \
    } while (0)

static int big_ok(const char *d, size_t len, int bin)
{
    if (len != BIG) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)d[i] != (bin ? (unsigned char)(i * 7) : (unsigned char)('a' + i % 26)))
            return 0;
    return 1;
}

/* ---- server callbacks ---- */

static int srv_accept(struct tn_ws_conn *c, void *user)
{
    struct ev *e = user;
    const char *node = tn_ws_header(c, "node-name");
    const char *auth = tn_ws_header(c, "authorization");
    LOCK(e);
    snprintf(e->accept_node, sizeof(e->accept_node), "%s", node ? node : "(none)");
    snprintf(e->accept_auth, sizeof(e->accept_auth), "%s", auth ? auth : "(none)");
    int status = e->reject && node && strcmp(node, "bad") == 0 ? e->reject : 0;
    UNLOCK(e);
    return status;
}

static void srv_open(struct tn_ws_conn *c, void *user)
{
    struct ev *e = user;
    const char *node = tn_ws_header(c, "node-name");
    LOCK(e);
    e->srv_open++;
    e->srv_conn = c;
    snprintf(e->open_node, sizeof(e->open_node), "%s", node ? node : "(none)");
    snprintf(e->open_path, sizeof(e->open_path), "%s", tn_ws_path(c));
    snprintf(e->srv_peer, sizeof(e->srv_peer), "%s", tn_ws_peer(c));
    UNLOCK(e);
}

static void sedna_gm(struct ev *e, struct tn_ws_conn *c, const char *data, size_t len)
{
    struct tn_msg m;
    struct tn_err err;
    if (tn_msg_decode(data, len, &m, &err)) {
        fprintf(stderr, "server: bad message: %s\n", err.msg);
        return;
    }
    if (m.is_hello) {
        LOCK(e);
        e->hello_seen++;
        UNLOCK(e);
    } else if (strcmp(m.op, TN_MSG_OP_STATUS) == 0) {
        char *txt = tn_json_dump(m.json);
        LOCK(e);
        e->status_seen++;
        snprintf(e->status_content, sizeof(e->status_content), "%s/%s/%s %s", m.kind, m.ns, m.name,
                 txt ? txt : "");
        UNLOCK(e);
        free(txt);
        json_t *obj = json_pack("{s:s,s:{s:s,s:s}}", "kind", "Dataset", "metadata", "name",
                                "incr-ds", "namespace", "default");
        size_t n;
        char *out =
            tn_msg_encode_json("default", "dataset", "incr-ds", TN_MSG_OP_INSERT, obj, &n, &err);
        tn_ws_send(c, out, n, 0);
        free(out);
        json_decref(obj);
    }
    tn_msg_free(&m);
}

static void srv_message(struct tn_ws_conn *c, const char *data, size_t len, int bin, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->srv_msgs++;
    if (bin) e->srv_bin++;
    if (len == BIG) {
        e->srv_big_ok += big_ok(data, len, bin);
    } else if (len > 1 && data[0] == 'm') {
        if (atoi(data + 1) != e->srv_next) e->srv_order_bad++;
        e->srv_next = atoi(data + 1) + 1;
    }
    int echo = e->echo, sedna = e->sedna;
    UNLOCK(e);
    if (echo) ck_assert_int_eq(tn_ws_send(c, data, len, bin), 0);
    if (sedna) sedna_gm(e, c, data, len);
}

static void srv_close(struct tn_ws_conn *c, int code, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->srv_closed++;
    e->srv_code = code;
    if (e->srv_conn == c) e->srv_conn = NULL;
    UNLOCK(e);
}

static void http_handler(struct tn_http_req *r, void *user)
{
    if (strcmp(tn_http_path(r), "/healthz") == 0)
        tn_http_respond(r, 200, "text/plain", "ok\n", 3);
    else
        tn_http_respond(r, 404, "text/plain", "no\n", 3);
}

/* ---- client callbacks ---- */

static void cli_open(struct tn_ws_conn *c, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->cli_open++;
    UNLOCK(e);
}

static void cli_message(struct tn_ws_conn *c, const char *data, size_t len, int bin, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->cli_msgs++;
    if (bin) e->cli_bin++;
    if (len == BIG) {
        e->cli_big_ok += big_ok(data, len, bin);
    } else {
        if (len > 1 && data[0] == 'm') {
            if (atoi(data + 1) != e->cli_next) e->cli_order_bad++;
            e->cli_next = atoi(data + 1) + 1;
        }
        snprintf(e->last_cli_msg, sizeof(e->last_cli_msg), "%.*s", (int)len, data);
    }
    int reply = e->cli_reply_status;
    UNLOCK(e);
    if (reply) { /* the LC's answer to an insert: a status report for the same object */
        struct tn_msg m;
        struct tn_err err;
        if (tn_msg_decode(data, len, &m, &err) == 0 && strcmp(m.op, TN_MSG_OP_INSERT) == 0) {
            const char st[] = "{\"phase\":\"Running\"}";
            size_t n;
            char *out =
                tn_msg_encode(m.ns, m.kind, m.name, TN_MSG_OP_STATUS, st, sizeof(st) - 1, &n, &err);
            tn_ws_send(c, out, n, 0);
            free(out);
        }
        tn_msg_free(&m);
    }
}

static void cli_close(struct tn_ws_conn *c, int code, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->cli_closed++;
    e->cli_code = code;
    if (e->cli_conn == c) e->cli_conn = NULL;
    UNLOCK(e);
}

static void cli_error(struct tn_ws_conn *c, const char *msg, void *user)
{
    struct ev *e = user;
    LOCK(e);
    e->cli_error++;
    snprintf(e->cli_err, sizeof(e->cli_err), "%s", msg);
    if (e->cli_conn == c) e->cli_conn = NULL;
    UNLOCK(e);
}

/* ---- loops ---- */

struct loop {
    struct tn_http_server *s;
    pthread_t t;
};

static void *loop_main(void *arg)
{
    tn_http_server_run(arg);
    return NULL;
}

static void loop_start(struct loop *l, struct tn_http_config *cfg)
{
    struct tn_err err = {0};
    l->s = tn_http_server_new(cfg, &err);
    ck_assert_msg(l->s != NULL, "server: %s", err.msg);
    ck_assert_int_eq(pthread_create(&l->t, NULL, loop_main, l->s), 0);
}

static void loop_stop(struct loop *l)
{
    tn_http_server_stop(l->s);
    pthread_join(l->t, NULL);
    tn_http_server_free(l->s);
}

static void server_cfg(struct tn_http_config *cfg, struct ev *e)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addr = "127.0.0.1";
    cfg->name = "ws-test";
    cfg->handler = http_handler;
    cfg->user = e;
    cfg->ws_accept = srv_accept;
    cfg->ws_open = srv_open;
    cfg->ws_message = srv_message;
    cfg->ws_close = srv_close;
}

static void client_loop(struct loop *l)
{
    struct tn_http_config cfg = {0};
    cfg.port = -1;
    cfg.name = "ws-client";
    loop_start(l, &cfg);
    ck_assert_int_eq(tn_http_server_port(l->s), -1);
}

/* Jobs run on a loop thread through tn_http_server_post. */
struct job {
    struct ev *e;
    struct tn_http_server *s;
    int what;
    char url[256];
    const char *const *headers;
    int ping, hangup;
    int code;
    char ca[256];
    int insecure;
};

enum { J_CONNECT, J_SEND_SEQ, J_SEND_BIG, J_CLOSE_SRV, J_CLOSE_CLI, J_SEND_HELLO };

static void job_run(void *arg)
{
    struct job *j = arg;
    struct ev *e = j->e;
    switch (j->what) {
    case J_CONNECT: {
        struct tn_ws_connect_opts o = {0};
        o.url = j->url;
        o.headers = j->headers;
        o.ping_secs = j->ping;
        o.hangup_secs = j->hangup;
        o.ca_file = j->ca[0] ? j->ca : NULL;
        o.insecure = j->insecure;
        o.on_open = cli_open;
        o.on_message = cli_message;
        o.on_close = cli_close;
        o.on_connect_error = cli_error;
        o.user = e;
        struct tn_err err = {0};
        struct tn_ws_conn *c = tn_ws_connect(j->s, &o, &err);
        LOCK(e);
        e->cli_conn = c;
        if (!c) {
            e->cli_error++;
            snprintf(e->cli_err, sizeof(e->cli_err), "sync: %s", err.msg);
        }
        UNLOCK(e);
        break;
    }
    case J_SEND_SEQ:
        for (int i = 0; i < NMSG && e->cli_conn; i++) {
            char m[32];
            int n = snprintf(m, sizeof(m), "m%d", i);
            ck_assert_int_eq(tn_ws_send(e->cli_conn, m, (size_t)n, 0), 0);
        }
        break;
    case J_SEND_BIG: {
        char *b = malloc(BIG);
        for (size_t i = 0; i < BIG; i++)
            b[i] = j->code ? (char)(unsigned char)(i * 7) : (char)('a' + i % 26);
        if (e->cli_conn) ck_assert_int_eq(tn_ws_send(e->cli_conn, b, BIG, j->code), 0);
        free(b);
        break;
    }
    case J_CLOSE_SRV:
        if (e->srv_conn) tn_ws_close(e->srv_conn, j->code, "server says bye");
        break;
    case J_CLOSE_CLI:
        if (e->cli_conn) tn_ws_close(e->cli_conn, j->code, "client says bye");
        break;
    case J_SEND_HELLO: {
        size_t n;
        char *h = tn_msg_hello(&n);
        if (e->cli_conn) tn_ws_send(e->cli_conn, h, n, 0);
        free(h);
        break;
    }
    }
    free(j);
}

static void post(struct loop *l, struct ev *e, int what, int code)
{
    struct job *j = calloc(1, sizeof(*j));
    j->e = e;
    j->s = l->s;
    j->what = what;
    j->code = code;
    ck_assert_int_eq(tn_http_server_post(l->s, job_run, j), 0);
}

static void connect_to(struct loop *l, struct ev *e, const char *url, const char *const *headers,
                       int ping, int hangup)
{
    struct job *j = calloc(1, sizeof(*j));
    j->e = e;
    j->s = l->s;
    j->what = J_CONNECT;
    snprintf(j->url, sizeof(j->url), "%s", url);
    j->headers = headers;
    j->ping = ping;
    j->hangup = hangup;
    ck_assert_int_eq(tn_http_server_post(l->s, job_run, j), 0);
}

static void connect_tls(struct loop *l, struct ev *e, const char *url, const char *ca, int insecure)
{
    struct job *j = calloc(1, sizeof(*j));
    j->e = e;
    j->s = l->s;
    j->what = J_CONNECT;
    snprintf(j->url, sizeof(j->url), "%s", url);
    snprintf(j->ca, sizeof(j->ca), "%s", ca ? ca : "");
    j->insecure = insecure;
    ck_assert_int_eq(tn_http_server_post(l->s, job_run, j), 0);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* Blocking HTTP/1.1 exchange on a fresh socket; returns the whole response (malloc'd). */
static char *raw_http(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
    char *buf = calloc(1, 65536);
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + n, 65535 - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
        if (strstr(buf, "\r\n\r\n") &&
            (strstr(buf, "ok\n") || strstr(buf, "</html>") || strstr(buf, "no\n") || n >= 65535))
            break;
    }
    close(fd);
    return buf;
}

START_TEST(ws_our_client_our_server)
{
    struct ev e;
    ev_init(&e);
    e.echo = 1;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    cfg.ws_path = "/ws";
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);
    int port = tn_http_server_port(srv.s);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", port);
    static const char *const hdrs[] = {"Node-Name: edge-1", "Authorization: Bearer x", NULL};

    connect_to(&cli, &e, url, hdrs, 0, 0);
    WAIT_FOR(&e, e.cli_open == 1 && e.srv_open == 1, 5);
    LOCK(&e);
    ck_assert_str_eq(e.accept_node, "edge-1");
    ck_assert_str_eq(e.accept_auth, "Bearer x");
    ck_assert_str_eq(e.open_node, "edge-1"); /* kept after the upgrade */
    ck_assert_str_eq(e.open_path, "/ws");
    ck_assert_str_eq(e.srv_peer, "127.0.0.1");
    UNLOCK(&e);

    /* 1000 small messages: order kept both ways (server echoes) */
    post(&cli, &e, J_SEND_SEQ, 0);
    WAIT_FOR(&e, e.cli_msgs == NMSG, 10);
    LOCK(&e);
    ck_assert_int_eq(e.srv_msgs, NMSG);
    ck_assert_int_eq(e.srv_order_bad, 0);
    ck_assert_int_eq(e.cli_order_bad, 0);
    ck_assert_int_eq(e.srv_next, NMSG);
    ck_assert_int_eq(e.cli_next, NMSG);
    UNLOCK(&e);

    /* 1 MiB text then 1 MiB binary: sent as 64 KiB fragments, reassembled */
    post(&cli, &e, J_SEND_BIG, 0);
    post(&cli, &e, J_SEND_BIG, 1);
    WAIT_FOR(&e, e.cli_msgs == NMSG + 2, 10);
    LOCK(&e);
    ck_assert_int_eq(e.srv_big_ok, 2);
    ck_assert_int_eq(e.cli_big_ok, 2);
    ck_assert_int_eq(e.srv_bin, 1);
    ck_assert_int_eq(e.cli_bin, 1);
    UNLOCK(&e);

    /* server closes with 4001: both sides report 4001 */
    post(&srv, &e, J_CLOSE_SRV, 4001);
    WAIT_FOR(&e, e.cli_closed == 1 && e.srv_closed == 1, 5);
    ck_assert_int_eq(e.cli_code, 4001);
    ck_assert_int_eq(e.srv_code, 4001);

    /* a second connection, closed by the client with 4002 */
    connect_to(&cli, &e, url, hdrs, 0, 0);
    WAIT_FOR(&e, e.cli_open == 2 && e.srv_open == 2, 5);
    post(&cli, &e, J_CLOSE_CLI, 4002);
    WAIT_FOR(&e, e.cli_closed == 2 && e.srv_closed == 2, 5);
    ck_assert_int_eq(e.cli_code, 4002);
    ck_assert_int_eq(e.srv_code, 4002);
    ck_assert_int_eq(e.cli_error, 0);

    /* a connection still open when the loops stop is reported closed (1006) */
    connect_to(&cli, &e, url, hdrs, 0, 0);
    WAIT_FOR(&e, e.cli_open == 3 && e.srv_open == 3, 5);
    loop_stop(&cli);
    WAIT_FOR(&e, e.cli_closed == 3 && e.srv_closed == 3, 5);
    ck_assert_int_eq(e.cli_code, 1006);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

START_TEST(ws_message_too_big)
{
    struct ev e;
    ev_init(&e);
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    cfg.ws_max_message = 512 << 10; /* the 1 MiB message is over the limit */
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", tn_http_server_port(srv.s));
    connect_to(&cli, &e, url, NULL, 0, 0);
    WAIT_FOR(&e, e.cli_open == 1 && e.srv_open == 1, 5);
    post(&cli, &e, J_SEND_BIG, 0);
    WAIT_FOR(&e, e.cli_closed == 1 && e.srv_closed == 1, 5);
    ck_assert_int_eq(e.srv_code, 1009);
    ck_assert_int_eq(e.cli_code, 1009);
    ck_assert_int_eq(e.srv_msgs, 0);
    ck_assert_str_eq(e.open_node, "(none)");
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

START_TEST(ws_rejected_upgrade)
{
    struct ev e;
    ev_init(&e);
    e.reject = 401;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    cfg.ws_path = "/ws";
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);
    int port = tn_http_server_port(srv.s);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", port);
    static const char *const bad[] = {"Node-Name: bad", NULL};
    connect_to(&cli, &e, url, bad, 0, 0);
    WAIT_FOR(&e, e.cli_error == 1, 5);
    ck_assert_int_eq(e.cli_open, 0);
    ck_assert_int_eq(e.srv_open, 0);
    ck_assert_str_eq(e.accept_node, "bad");
    ck_assert_ptr_nonnull(strstr(e.cli_err, "127.0.0.1"));

    /* wrong path: refused with 404 before ws_accept runs */
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/other", port);
    static const char *const good[] = {"Node-Name: good", NULL};
    connect_to(&cli, &e, url, good, 0, 0);
    WAIT_FOR(&e, e.cli_error == 2, 5);
    ck_assert_str_eq(e.accept_node, "bad");
    char req[512];
    snprintf(req, sizeof(req),
             "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    char *resp = raw_http(port, req);
    ck_assert_msg(strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 8, " 404", 4) == 0, "got %s",
                  resp);
    free(resp);
    snprintf(req, sizeof(req),
             "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Node-Name: bad\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n");
    resp = raw_http(port, req);
    ck_assert_msg(strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 8, " 401", 4) == 0, "got %s",
                  resp);
    free(resp);
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

START_TEST(ws_connect_failures)
{
    struct ev e;
    ev_init(&e);
    struct loop cli;
    client_loop(&cli);
    char url[128];
    /* nothing listens there: asynchronous failure */
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", free_port());
    double t0 = now_s();
    connect_to(&cli, &e, url, NULL, 0, 0);
    WAIT_FOR(&e, e.cli_error == 1, 5);
    ck_assert_double_lt(now_s() - t0, 5.0);
    ck_assert_ptr_nonnull(strstr(e.cli_err, "cannot connect to 127.0.0.1"));
    /* a name that cannot resolve fails inside lws_client_connect_via_info: still reported
     * through the callback, from the loop */
    connect_to(&cli, &e, "ws://nonexistent.invalid:9000/", NULL, 0, 0);
    WAIT_FOR(&e, e.cli_error == 2, 10);
    ck_assert_ptr_nonnull(strstr(e.cli_err, "nonexistent.invalid"));
    /* a bad URL is refused synchronously, with no callback */
    connect_to(&cli, &e, "http://127.0.0.1:1/", NULL, 0, 0);
    WAIT_FOR(&e, e.cli_error == 3, 5);
    ck_assert_ptr_nonnull(strstr(e.cli_err, "sync: invalid websocket URL"));
    ck_assert_int_eq(e.cli_open, 0);
    ck_assert_int_eq(e.cli_closed, 0);
    loop_stop(&cli);
    ev_done(&e);
}
END_TEST

/* A TCP forwarder between client and server that can stop forwarding (a peer gone silent). */
struct fwd {
    int lfd, port, target;
    volatile int freeze, stop;
    pthread_t t;
};

static void *fwd_main(void *arg)
{
    struct fwd *f = arg;
    int a = accept(f->lfd, NULL, NULL);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)f->target),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (a < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa)) != 0) return NULL;
    char buf[65536];
    while (!f->stop) {
        if (f->freeze) {
            usleep(20000);
            continue;
        }
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, 50) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = recv(p[i].fd, buf, sizeof(buf), 0);
            if (n <= 0) {
                f->stop = 1;
                break;
            }
            send(i ? a : b, buf, (size_t)n, MSG_NOSIGNAL);
        }
    }
    close(a);
    close(b);
    return NULL;
}

START_TEST(ws_keepalive_detects_silent_peer)
{
    struct ev e;
    ev_init(&e);
    e.echo = 1;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    cfg.ws_ping_secs = 1;
    cfg.ws_hangup_secs = 2;
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);

    struct fwd f = {0};
    f.target = tn_http_server_port(srv.s);
    f.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(f.lfd, (struct sockaddr *)&a, &al);
    listen(f.lfd, 4);
    f.port = ntohs(a.sin_port);
    pthread_create(&f.t, NULL, fwd_main, &f);

    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", f.port);
    connect_to(&cli, &e, url, NULL, 1, 2);
    WAIT_FOR(&e, e.cli_open == 1 && e.srv_open == 1, 5);
    /* idle but answering: pings and pongs keep the connection up past the hang-up time */
    sleep(4);
    LOCK(&e);
    ck_assert_int_eq(e.cli_closed + e.srv_closed, 0);
    UNLOCK(&e);
    post(&cli, &e, J_SEND_SEQ, 0);
    WAIT_FOR(&e, e.cli_msgs == NMSG, 5);

    /* the peer goes silent: both ends hang up within hang-up time + 1 s tick */
    f.freeze = 1;
    double t0 = now_s();
    WAIT_FOR(&e, e.cli_closed == 1 && e.srv_closed == 1, 6);
    double took = now_s() - t0;
    ck_assert_msg(took < 5.0, "detected after %.1fs", took);
    ck_assert_int_eq(e.cli_code, 1006);
    ck_assert_int_eq(e.srv_code, 1006);
    f.stop = 1;
    pthread_join(f.t, NULL);
    close(f.lfd);
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

START_TEST(ws_and_http_share_the_port)
{
    struct ev e;
    ev_init(&e);
    e.echo = 1;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);
    int port = tn_http_server_port(srv.s);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", port);
    connect_to(&cli, &e, url, NULL, 0, 0);
    WAIT_FOR(&e, e.cli_open == 1 && e.srv_open == 1, 5);
    for (int i = 0; i < 3; i++) {
        char *resp = raw_http(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "got %s", resp);
        ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\nok\n"));
        free(resp);
    }
    char *resp = raw_http(port, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 404", 12) == 0, "got %s", resp);
    free(resp);
    /* the websocket is unaffected */
    post(&cli, &e, J_SEND_SEQ, 0);
    WAIT_FOR(&e, e.cli_msgs == NMSG, 5);
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

START_TEST(wss_with_ca_file_and_insecure)
{
    char dir[] = "/tmp/tandem-wss-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char certs[300], ca[320], crt[320], key[320];
    snprintf(certs, sizeof(certs), "%s/pki", dir);
    struct tn_err err = {0};
    ck_assert_msg(tn_tls_ensure_certs(certs, NULL, 0, &err) == 0, "%s", err.msg);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/server.crt", certs);
    snprintf(key, sizeof(key), "%s/server.key", certs);
    struct ev e;
    ev_init(&e);
    e.echo = 1;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    cfg.tls_cert = crt;
    cfg.tls_key = key;
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);
    char url[128];
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/", tn_http_server_port(srv.s));

    connect_tls(&cli, &e, url, ca, 0); /* verified against the CA */
    WAIT_FOR(&e, (e.cli_open == 1 && e.srv_open == 1) || e.cli_error, 5);
    ck_assert_msg(e.cli_error == 0, "%s", e.cli_err);
    post(&cli, &e, J_SEND_SEQ, 0);
    WAIT_FOR(&e, e.cli_msgs == NMSG, 10);
    post(&cli, &e, J_CLOSE_CLI, 1000);
    WAIT_FOR(&e, e.cli_closed == 1 && e.srv_closed == 1, 5);

    connect_tls(&cli, &e, url, NULL, 1); /* self-signed accepted on request */
    WAIT_FOR(&e, (e.cli_open == 2 && e.srv_open == 2) || e.cli_error, 5);
    ck_assert_msg(e.cli_error == 0, "%s", e.cli_err);
    post(&cli, &e, J_CLOSE_CLI, 1000);
    WAIT_FOR(&e, e.cli_closed == 2 && e.srv_closed == 2, 5);

    connect_tls(&cli, &e, url, NULL, 0); /* unknown CA: refused */
    WAIT_FOR(&e, e.cli_error == 1, 5);
    ck_assert_int_eq(e.cli_open, 2);
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- Python websockets peers (Debian's python3-websockets 10.4) ---- */

static const char py_lc[] =
    "import asyncio, base64, json, sys, websockets\n"
    "async def main(uri):\n"
    "    async with websockets.connect(uri, extra_headers={'Node-Name': 'py-edge'}) as ws:\n"
    "        await ws.send(json.dumps({'namespace': '', 'resourceKind': '', 'resourceName': '',\n"
    "                                  'operation': ''}, separators=(',', ':')))\n"
    "        content = base64.b64encode(b'{\"numberOfSamples\":120}').decode()\n"
    "        await ws.send(json.dumps({'header': {'namespace': 'default', 'resourceKind':\n"
    "            'Dataset', 'resourceName': 'incr-ds', 'operation': 'status'},\n"
    "            'content': content}))\n"
    "        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))\n"
    "        obj = json.loads(base64.b64decode(msg['content']))\n"
    "        assert msg['header']['operation'] == 'insert', msg\n"
    "        assert obj['metadata']['name'] == 'incr-ds', obj\n"
    "        print('GOT', msg['header']['resourceKind'], obj['kind'], flush=True)\n"
    "asyncio.run(main(sys.argv[1]))\n";

static const char py_gm[] =
    "import asyncio, base64, json, sys, websockets\n"
    "done = None\n"
    "async def handler(ws, path=None):\n"
    "    node = ws.request_headers.get('Node-Name')\n"
    "    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))\n"
    "    assert 'header' not in hello and hello['operation'] == '', hello\n"
    "    obj = {'kind': 'Model', 'metadata': {'name': 'm1', 'namespace': 'default'}}\n"
    "    await ws.send(json.dumps({'header': {'namespace': 'default', 'resourceKind': 'model',\n"
    "        'resourceName': 'm1', 'operation': 'insert'},\n"
    "        'content': base64.b64encode(json.dumps(obj).encode()).decode()}))\n"
    "    st = json.loads(await asyncio.wait_for(ws.recv(), 10))\n"
    "    status = json.loads(base64.b64decode(st['content']))\n"
    "    print('STATUS', node, st['header']['operation'], st['header']['resourceName'],\n"
    "          status['phase'], flush=True)\n"
    "    await ws.close(4000, 'done')\n"
    "    done.set_result(True)\n"
    "async def main():\n"
    "    global done\n"
    "    done = asyncio.get_running_loop().create_future()\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0) as srv:\n"
    "        print('PORT', srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.wait_for(done, 20)\n"
    "asyncio.run(main())\n";

static char *write_script(const char *text)
{
    char *path = strdup("/tmp/tandem-ws-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

START_TEST(ws_python_peers)
{
    if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import websockets' 2>/dev/null") != 0) {
        fprintf(stderr, "python3-websockets missing (hack/install-deps.sh installs it)\n");
        ck_abort_msg("python3-websockets is not installed");
    }
    struct ev e;
    ev_init(&e);
    e.sedna = 1;
    struct tn_http_config cfg;
    server_cfg(&cfg, &e);
    struct loop srv, cli;
    loop_start(&srv, &cfg);
    client_loop(&cli);

    /* Python plays Sedna's LC against our server (GM role) */
    char *lc = write_script(py_lc);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "timeout 20 " PYTHON " %s ws://127.0.0.1:%d/ 2>&1", lc,
             tn_http_server_port(srv.s));
    FILE *p = popen(cmd, "r");
    char out[2048] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python LC failed: %s", out);
    ck_assert_msg(strstr(out, "GOT dataset Dataset") != NULL, "python LC said: %s", out);
    WAIT_FOR(&e, e.srv_closed == 1, 5);
    ck_assert_int_eq(e.hello_seen, 1);
    ck_assert_int_eq(e.status_seen, 1);
    ck_assert_str_eq(e.status_content, "Dataset/default/incr-ds {\"numberOfSamples\":120}");
    ck_assert_str_eq(e.accept_node, "py-edge");
    ck_assert_int_eq(e.srv_code, 1000);
    unlink(lc);
    free(lc);

    /* Python plays Sedna's GM; our client plays the LC (hello, then status for each insert) */
    char *gm = write_script(py_gm);
    snprintf(cmd, sizeof(cmd), "timeout 30 " PYTHON " %s 2>&1", gm);
    p = popen(cmd, "r");
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
    int pyport = 0;
    ck_assert_msg(sscanf(line, "PORT %d", &pyport) == 1, "python GM said: %s", line);
    LOCK(&e);
    e.cli_reply_status = 1;
    UNLOCK(&e);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", pyport);
    static const char *const hdrs[] = {"Node-Name: edge-7", NULL};
    connect_to(&cli, &e, url, hdrs, 0, 0);
    WAIT_FOR(&e, e.cli_open == 1, 5);
    post(&cli, &e, J_SEND_HELLO, 0);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python GM failed: %s", out);
    ck_assert_msg(strstr(out, "STATUS edge-7 status m1 Running") != NULL, "python GM said: %s",
                  out);
    WAIT_FOR(&e, e.cli_closed == 1, 5);
    ck_assert_int_eq(e.cli_code, 4000);
    ck_assert_ptr_nonnull(strstr(e.last_cli_msg, "\"insert\""));
    unlink(gm);
    free(gm);
    loop_stop(&cli);
    loop_stop(&srv);
    ev_done(&e);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("base_ws");
    TCase *tc = tcase_create("ws");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ws_our_client_our_server);
    tcase_add_test(tc, ws_message_too_big);
    tcase_add_test(tc, ws_rejected_upgrade);
    tcase_add_test(tc, ws_connect_failures);
    tcase_add_test(tc, ws_keepalive_detects_silent_peer);
    tcase_add_test(tc, ws_and_http_share_the_port);
    tcase_add_test(tc, wss_with_ca_file_and_insecure);
    tcase_add_test(tc, ws_python_peers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
