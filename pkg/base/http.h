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
 * has been fully written, or, for streams, until the on_close callback has run. */
#ifndef TN_BASE_HTTP_H
#define TN_BASE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tn_http_server;
struct tn_http_req;

/* Called once per request after the whole body has arrived. The handler must eventually call
 * tn_http_respond* or tn_http_stream_begin on req (now, or later from the loop thread). */
typedef void (*tn_http_handler)(struct tn_http_req *req, void *user);
typedef void (*tn_http_fn)(void *arg);

struct tn_http_config {
    const char *addr;     /* bind address, default "127.0.0.1"; "0.0.0.0" for all */
    int port;             /* 0 = pick a free port (see tn_http_server_port) */
    const char *tls_cert; /* PEM file paths; both set = HTTPS */
    const char *tls_key;
    size_t max_body;  /* request body limit, default 3 MiB */
    const char *name; /* Server header and log component */
    tn_http_handler handler;
    void *user;
};

struct tn_http_server *tn_http_server_new(const struct tn_http_config *cfg, struct tn_err *err);
/* Runs the loop until tn_http_server_stop. Returns 0. */
int tn_http_server_run(struct tn_http_server *s);
/* Thread-safe and async-signal-unsafe: asks the loop to return. */
void tn_http_server_stop(struct tn_http_server *s);
void tn_http_server_free(struct tn_http_server *s);
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

#endif
