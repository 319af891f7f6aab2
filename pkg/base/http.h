/* The one HTTP serving layer the daemons share (tandem-apiserver, GM metrics/health, the LC
 * worker REST API, libtandem's inference service). Built on libwebsockets 4.1, which the GM<->LC
 * link needs anyway, so a daemon has one event loop for HTTP, websockets and timers.
 *
 * Threading: everything here runs on the server's loop thread (the one inside
 * tn_http_server_run) except tn_http_server_post and tn_http_server_stop, which any thread may
 * call. Handlers, timers and posted functions run on the loop thread, one at a time, so code they
 * share needs no locks.
 *
 * Ownership: the server owns every struct tn_http_req. A request stays valid until its response
 * has been fully written, or, for streams, until the on_close callback has run.
 *
 * Websockets (RFC 6455) live on the same loop: server connections are upgrades of requests on
 * the listening port (config ws_*), client connections come from tn_ws_connect. A port of -1
 * makes a server that listens nowhere, just a loop for clients and timers. The server owns every
 * struct tn_ws_conn too; see "websockets" below for its lifetime. */
#ifndef TN_BASE_HTTP_H
#define TN_BASE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tn_http_server;
struct tn_http_req;
struct tn_ws_conn;

/* Called once per request after the whole body has arrived. The handler must eventually call
 * tn_http_respond* or tn_http_stream_begin on req (now, or later from the loop thread). */
typedef void (*tn_http_handler)(struct tn_http_req *req, void *user);
typedef void (*tn_http_fn)(void *arg);

/* Websocket callbacks (loop thread). user is tn_http_config.user for server connections and
 * tn_ws_connect_opts.user for client ones. data of a message is NUL-terminated for convenience
 * and valid only during the call. */
typedef int (*tn_ws_accept_fn)(struct tn_ws_conn *c, void *user);
typedef void (*tn_ws_open_fn)(struct tn_ws_conn *c, void *user);
typedef void (*tn_ws_message_fn)(struct tn_ws_conn *c, const char *data, size_t len, int is_binary,
                                 void *user);
typedef void (*tn_ws_close_fn)(struct tn_ws_conn *c, int code, void *user);
typedef void (*tn_ws_error_fn)(struct tn_ws_conn *c, const char *msg, void *user);

/* Keepalive numbers the daemons use (seconds): a PING after this much silence from the peer, a
 * hang-up after that much. Any frame from the peer (data, PONG) counts as a sign of life. */
#define TN_WS_PING_SECS 30
#define TN_WS_HANGUP_SECS 75
#define TN_WS_MAX_MESSAGE ((size_t)16 << 20)
#define TN_WS_MAX_QUEUE ((size_t)64 << 20)

struct tn_http_config {
    const char *addr;     /* bind address, default "127.0.0.1"; "0.0.0.0" for all */
    int port;             /* 0 = pick a free port (see tn_http_server_port); -1 = listen nowhere */
    const char *tls_cert; /* PEM file paths; both set = HTTPS */
    const char *tls_key;
    size_t max_body;  /* request body limit, default 3 MiB */
    const char *name; /* Server header and log component */
    tn_http_handler handler;
    void *user;

    /* Websocket server side: upgrades are served when ws_message is set. */
    const char *ws_path; /* only this path upgrades (others get 404); NULL = any path */
    /* Optional: 0 accepts, anything else is the HTTP status of the refusal (401, 403...). Runs
     * while the upgrade request is at hand: tn_ws_header reads any request header then. */
    tn_ws_accept_fn ws_accept;
    tn_ws_open_fn ws_open; /* optional */
    tn_ws_message_fn ws_message;
    tn_ws_close_fn ws_close;          /* optional; runs once for every connection that opened */
    const char *const *ws_headers;    /* extra custom request headers (lower-case names, NULL-
                                       * terminated) kept for tn_ws_header after the upgrade; the
                                       * standard ones and "node-name" are always kept */
    size_t ws_max_message;            /* complete message limit, default TN_WS_MAX_MESSAGE; a larger
                                       * message closes the connection with 1009 */
    size_t ws_max_queue;              /* bytes queued for sending per connection, default
                                       * TN_WS_MAX_QUEUE */
    int ws_ping_secs, ws_hangup_secs; /* keepalive, 0 = off (see TN_WS_PING_SECS) */
};

struct tn_http_server *tn_http_server_new(const struct tn_http_config *cfg, struct tn_err *err);
/* Runs the loop until tn_http_server_stop. Returns 0. */
int tn_http_server_run(struct tn_http_server *s);
/* Thread-safe and async-signal-unsafe: asks the loop to return. */
void tn_http_server_stop(struct tn_http_server *s);
void tn_http_server_free(struct tn_http_server *s);
/* The listening port, or -1 for a server made with port -1. */
int tn_http_server_port(const struct tn_http_server *s);
/* Thread-safe: runs fn(arg) on the loop thread soon. Return 0 or TN_ENOMEM. */
int tn_http_server_post(struct tn_http_server *s, tn_http_fn fn, void *arg);

/* One-shot timer on the loop thread. The returned handle is owned by the server and freed after
 * the callback runs or when cancelled. */
struct tn_http_timer;
struct tn_http_timer *tn_http_timer_add(struct tn_http_server *s, int64_t delay_ms, tn_http_fn fn,
                                        void *arg);
void tn_http_timer_cancel(struct tn_http_timer *t);

/* ---- requests ---- */
const char *tn_http_method(const struct tn_http_req *r); /* "GET", "POST", ... */
const char *tn_http_path(const struct tn_http_req *r);   /* decoded path, no query */
/* Decoded query parameter value (first occurrence), or NULL. */
const char *tn_http_query(const struct tn_http_req *r, const char *name);
/* Request header by lower-case name ("content-type", "accept", "authorization", any other);
 * NULL when absent. */
const char *tn_http_header(const struct tn_http_req *r, const char *name);
const char *tn_http_body(const struct tn_http_req *r, size_t *len);
const char *tn_http_peer(const struct tn_http_req *r);
/* Per-request user slot (for handlers that answer later). */
void tn_http_set_data(struct tn_http_req *r, void *data);
void *tn_http_get_data(const struct tn_http_req *r);

/* ---- responses (loop thread only) ---- */
/* Adds a response header for the coming response ("Retry-After", "5"). */
int tn_http_add_header(struct tn_http_req *r, const char *name, const char *value);
/* Whole response; body is copied. */
int tn_http_respond(struct tn_http_req *r, int status, const char *content_type, const char *body,
                    size_t len);
/* Whole response; takes ownership of body (malloc'd). */
int tn_http_respond_take(struct tn_http_req *r, int status, const char *content_type, char *body,
                         size_t len);

/* Streaming response of unknown length (watch). on_close(arg) runs exactly once when the
 * connection goes away, whoever closes it; after it, r is invalid. */
int tn_http_stream_begin(struct tn_http_req *r, int status, const char *content_type,
                         tn_http_fn on_close, void *arg);
/* Queues bytes on the stream; returns TN_ETOOBIG when the client is too slow and more than the
 * per-stream cap is queued (the caller should then end the stream). */
int tn_http_stream_write(struct tn_http_req *r, const char *data, size_t len);
/* Bytes queued but not yet written. */
size_t tn_http_stream_pending(const struct tn_http_req *r);
/* Ends the stream after the queued bytes are written. */
void tn_http_stream_end(struct tn_http_req *r);

/* ---- websockets (loop thread only) ----
 *
 * Lifetime of a struct tn_ws_conn (owned by the server, never freed by the caller):
 *   server: created when an upgrade request arrives (ws_accept sees it); if refused, or if the
 *           handshake fails, it vanishes silently. Once ws_open has run, ws_close runs exactly
 *           once, and the handle is invalid after ws_close returns.
 *   client: tn_ws_connect returns it; then exactly one of: on_connect_error (never from inside
 *           tn_ws_connect: a synchronous failure is reported from the loop right after), or
 *           on_open followed later by on_close. The handle is invalid after the last callback.
 * Close codes given to the close callbacks: the peer's close code when it sent one, else the
 * code we closed with, else 1006 (connection lost, keepalive hang-up included).
 * tn_http_server_free reports every connection still alive (close 1006 or connect error). */

/* Client connection options; every string is copied. */
struct tn_ws_connect_opts {
    const char *url;            /* "ws://host:port/path" or "wss://..."; give an IP address
                                 * when possible: names resolve with a blocking lookup */
    const char *const *headers; /* NULL-terminated "Name: value" lines ("Node-Name: edge-1") */
    const char *ca_file;        /* wss: PEM CA bundle to trust; NULL = system store */
    int insecure;               /* wss: no certificate verification at all (tests only) */
    size_t max_message;         /* default TN_WS_MAX_MESSAGE */
    size_t max_queue;           /* default TN_WS_MAX_QUEUE */
    int ping_secs, hangup_secs; /* keepalive, 0 = off */
    tn_ws_open_fn on_open;
    tn_ws_message_fn on_message;
    tn_ws_close_fn on_close;
    tn_ws_error_fn on_connect_error;
    void *user;
};

/* Starts a client connection on the server's loop. Returns the handle, or NULL with err set for
 * a bad URL or out of memory (no callback then). No automatic reconnect: the caller retries. */
struct tn_ws_conn *tn_ws_connect(struct tn_http_server *s, const struct tn_ws_connect_opts *o,
                                 struct tn_err *err);
/* Queues one message (copied). Large messages go out as 64 KiB fragments, one lws_write per
 * WRITEABLE. A client may queue before on_open. Returns 0, TN_ETOOBIG when the queue would
 * exceed its cap (the message is not queued), TN_EINVAL when the connection is closing,
 * TN_ENOMEM. */
int tn_ws_send(struct tn_ws_conn *c, const void *data, size_t len, int is_binary);
/* Closes with code (1000 normal, 4000-4999 private) and a short reason after the queued messages
 * are written. Before a client has opened, cancels the connect (on_connect_error follows). */
void tn_ws_close(struct tn_ws_conn *c, int code, const char *reason);
/* Request header by lower-case name, captured at upgrade time ("node-name", "authorization");
 * NULL when absent or, after ws_accept, not kept (see ws_headers). Server connections only. */
const char *tn_ws_header(struct tn_ws_conn *c, const char *name);
const char *tn_ws_path(const struct tn_ws_conn *c); /* request path (server) or URL path (client) */
const char *tn_ws_peer(const struct tn_ws_conn *c); /* peer IP address */
int tn_ws_is_client(const struct tn_ws_conn *c);
size_t tn_ws_pending(const struct tn_ws_conn *c); /* bytes queued, not yet written */
/* Per-connection user slot. */
void tn_ws_set_data(struct tn_ws_conn *c, void *data);
void *tn_ws_get_data(const struct tn_ws_conn *c);

#endif
