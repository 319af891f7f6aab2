/* The GM side of the GM<->LC link (docs/protocol.md): Sedna's websocket message layer plus
 * Tandem's negotiated extensions (features, ack, resync, node tokens), as a library the GM daemon
 * embeds in its tn_http_server.
 *
 * Usage: tn_ml_new; tn_ml_configure(cfg) before tn_http_server_new(cfg); tn_ml_attach(srv);
 * run the loop. Shutdown: stop the loop, tn_ml_stop, tn_http_server_free, tn_ml_free.
 *
 * Threads:
 *  - the websocket callbacks installed by tn_ml_configure run on the server's loop thread;
 *  - tn_ml_send, tn_ml_resync_begin, tn_ml_resynced, tn_ml_connected, tn_ml_connected_nodes,
 *    tn_ml_pending are thread-safe (controllers call them from their workers, and from
 *    on_status/on_node); tn_ml_new/configure/attach/stop/free belong to the owner's thread;
 *  - on_status and on_node run on the ml's own dispatcher thread, one at a time, in arrival
 *    order (so per node in order). They may block (API calls) but then delay everything behind.
 *
 * Downstream: the ml keeps, per node, only the newest message per object key
 * (<kind>/<namespace>/<name>, Sedna semantics: a pending insert can be replaced by a delete) in
 * send order; messages for a disconnected node wait for it. A message is dropped from the store
 * once handed to the websocket layer; if the connection then dies before the bytes are written it
 * is lost, which the full resync after every connection (on_node -> GM controllers) repairs.
 *
 * Upstream: statuses go through a bounded queue (opts.queue_cap, default 1000) to the dispatcher.
 * The HTTP layer cannot pause reading a connection, so on overflow the ml drops the message
 * (unacked, counted as operation="dropped") and closes that connection with 4001 "GM overloaded"
 * (1013 would suit, but libwebsockets peers reject it as a protocol error):
 * a Tandem LC re-sends its unacked messages after reconnecting, a Sedna LC reports again
 * periodically. With `ack` agreed, a status whose handler returned 0 is acked; a non-zero return
 * (transient failure) leaves it unacked, so the LC re-sends it after its next reconnect.
 *
 * Ownership: the caller owns the ml (tn_ml_free); every string and JSON value passed in is copied
 * or borrowed for the call only; string arrays returned are the caller's (tn_ml_strv_free). */
#ifndef TN_GM_MESSAGELAYER_H
#define TN_GM_MESSAGELAYER_H

#include <stddef.h>

#include "base/err.h"
#include "base/json.h"

/* Close codes the ml uses. */
#define TN_ML_CLOSE_REPLACED 4000   /* "replaced": the node opened a newer connection */
#define TN_ML_CLOSE_OVERLOADED 4001 /* "GM overloaded": the upstream queue was full */

struct tn_http_config;
struct tn_http_server;
struct tn_metrics;
struct tn_ml;

/* Upstream status report. kind_lower is the header's resourceKind lower-cased; content is the
 * decoded report (borrowed, valid during the call; NULL when the envelope had no content).
 * Return 0 when handled (written, or deliberately dropped), anything else when it should be
 * retried (no ack then). Dispatcher thread. */
typedef int (*tn_ml_status_fn)(const char *node, const char *kind_lower, const char *ns,
                               const char *name, json_t *content, void *arg);
/* A node connected (1: every connection, replacements included -> send it the full set between
 * tn_ml_resync_begin and tn_ml_resynced) or disconnected (0). Dispatcher thread. */
typedef void (*tn_ml_node_fn)(const char *node, int connected, void *arg);

struct tn_ml_opts {
    /* NULL-terminated alternating node, token strings ({"edge-1", "s3cret", NULL}); NULL = any
     * node is accepted without a token (Sedna). Copied. */
    const char *const *node_tokens;
    /* NULL-terminated features to offer to announcing LCs; NULL = {"ack", "resync"}. Names
     * other than "ack" and "resync" are offered as given but have no effect here. Copied. */
    const char *const *features;
    struct tn_metrics *metrics; /* optional; borrowed, must outlive the ml */
    tn_ml_status_fn on_status;  /* optional: statuses are dropped (and acked) without one */
    tn_ml_node_fn on_node;      /* optional */
    void *arg;
    size_t queue_cap; /* upstream statuses waiting for the dispatcher, all nodes; 0 = 1000 */
};

/* Reads a node token file (--node-tokens): lines "node,token", blanks and '#' comments
 * skipped, spaces around both fields trimmed. Returns a new NULL-terminated alternating
 * node, token array for tn_ml_opts.node_tokens (free with tn_ml_strv_free), or NULL with err
 * naming the file and line (TN_EIO unreadable, TN_EINVAL bad line or duplicate node). */
char **tn_ml_tokens_load(const char *path, struct tn_err *err);

/* Returns a new ml (free with tn_ml_free) with its dispatcher thread running, or NULL with err
 * set (TN_ENOMEM, TN_EINVAL for an odd token list). */
struct tn_ml *tn_ml_new(const struct tn_ml_opts *opts, struct tn_err *err);
/* Fills cfg's ws_* callbacks, ws_headers and user (= the ml: an HTTP handler on the same server
 * receives the ml as its user argument), and the keepalive (TN_WS_PING_SECS/TN_WS_HANGUP_SECS)
 * when unset. Call before tn_http_server_new(cfg). */
void tn_ml_configure(struct tn_ml *ml, struct tn_http_config *cfg);
/* Tells the ml its server (created from the configured cfg), for posting writes to its loop. */
void tn_ml_attach(struct tn_ml *ml, struct tn_http_server *srv);
/* Stops and joins the dispatcher (statuses still queued are dropped, unacked) and stops posting
 * to the server. Call after the loop has stopped and before tn_http_server_free (the ws close
 * callbacks that runs still use the ml). Idempotent; tn_ml_free calls it too. */
void tn_ml_stop(struct tn_ml *ml);
/* Frees everything, pending messages included. After tn_http_server_free. */
void tn_ml_free(struct tn_ml *ml);

/* Thread-safe. Stores the envelope (op "insert", "update" or "delete"; obj borrowed, encoded as
 * content, NULL = empty) as the newest message for (node, kind/ns/name), replacing a pending one
 * in place, and has the loop write it when the node is connected. kind is lower-cased. Returns 0,
 * TN_ETOOBIG (object past TN_MSG_MAX_SIZE) or TN_ENOMEM. */
int tn_ml_send(struct tn_ml *ml, const char *node, const char *kind, const char *ns,
               const char *name, const char *op, const json_t *obj);
/* Thread-safe. Brackets a full resync of a node: call begin, tn_ml_send every object the node
 * needs, then resynced, which queues the "resynced" marker behind them when the connection that
 * was current at begin is still current and its LC announced "resync". Otherwise (Sedna LC,
 * node gone or reconnected meanwhile: a new on_node will follow) the marker is not sent. */
void tn_ml_resync_begin(struct tn_ml *ml, const char *node);
void tn_ml_resynced(struct tn_ml *ml, const char *node);

/* Thread-safe: 1 when node has an open connection. */
int tn_ml_connected(struct tn_ml *ml, const char *node);
/* Thread-safe: new NULL-terminated, sorted array of connected node names (free with
 * tn_ml_strv_free), or NULL on OOM. *n (optional) gets the count. */
char **tn_ml_connected_nodes(struct tn_ml *ml, size_t *n);
void tn_ml_strv_free(char **v);
/* Thread-safe: messages stored for node and not yet written (all nodes when node is NULL). */
size_t tn_ml_pending(struct tn_ml *ml, const char *node);

#endif
