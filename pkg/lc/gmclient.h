/* The LC side of the GM<->LC link (docs/protocol.md): one websocket client to GM that speaks
 * Sedna's message layer, announces Tandem's extensions (ack, resync), reconnects forever, and
 * keeps every upstream status report in sqlite until GM has it (acked, or written for a plain
 * Sedna GM), so neither a broken link nor an LC restart loses a report.
 *
 * Threading: the connection, its timers and the sending of reports live on the loop thread of
 * the tn_http_server given in the options. Downstream messages and the on_resynced / on_link
 * callbacks are delivered in arrival order on the client's own dispatcher thread (never the loop
 * thread), one at a time. tn_gmc_report, tn_gmc_connected and tn_gmc_pending are thread-safe.
 * tn_gmc_free must be called from a thread other than the loop thread while the loop still runs
 * (i.e. before tn_http_server_stop), and not concurrently with any other tn_gmc_* call.
 *
 * Ownership: the caller owns the tn_http_server and the metrics registry (both must outlive the
 * client); option strings are copied. Objects handed to on_message are borrowed (valid during the
 * call; json_incref to keep one). */
#ifndef TN_LC_GMCLIENT_H
#define TN_LC_GMCLIENT_H

#include <stddef.h>

#include "base/err.h"
#include "base/json.h"

struct tn_http_server;
struct tn_metrics;
struct tn_gmc;

/* Unacknowledged upstream messages on the wire at once. */
#define TN_GMC_WINDOW 256

struct tn_gmc_opts {
    /* "host:port" (Sedna's GM_ADDRESS; ws://, or wss:// when ca_file is set) or a ws:// or
     * wss:// URL. Required. Give an IP address when possible (names resolve blocking). */
    const char *gm_address;
    const char *node_name; /* sent as Node-Name; required */
    const char *token;     /* optional: sent as "Authorization: Bearer <token>" */
    const char *ca_file;   /* optional PEM CA bundle for wss:// */
    /* sqlite database file (shared with the rest of the LC) or ":memory:"; the client keeps its
     * rows in table gm_upstream. Required. */
    const char *db_path;
    struct tn_http_server *loop; /* loop to run on (a port -1 server is fine); required */

    /* Downstream message (insert, update, delete, ...); kind/ns/name/op are the header fields,
     * obj the decoded content (borrowed; NULL when the message had no content). */
    void (*on_message)(const char *kind, const char *ns, const char *name, const char *op,
                       json_t *obj, void *arg);
    /* GM finished a full resync (Tandem GM only): objects not re-sent since the link came up
     * were deleted while the LC was away. */
    void (*on_resynced)(void *arg);
    void (*on_link)(int up, void *arg); /* websocket opened (1) / lost (0) */
    void *arg;

    struct tn_metrics *metrics; /* optional */

    /* Tuning, 0 = default: reconnect backoff starts at 1000 ms and doubles up to 30000 ms
     * (+-20 % jitter, reset after a connection lived 60 s); a GM that sends no "features"
     * within 3000 ms is a plain Sedna GM. */
    int backoff_initial_ms, backoff_max_ms, features_wait_ms;
};

/* Opens the database (creating gm_upstream), then starts connecting on the loop (rows left by
 * an earlier run are sent once connected). Returns NULL with err set on a bad option or a
 * database error. Free with tn_gmc_free. */
struct tn_gmc *tn_gmc_new(const struct tn_gmc_opts *opts, struct tn_err *err);

/* Queues a status report for object kind/ns/name (status borrowed; NULL = empty content).
 * The envelope is committed to the database before this returns, so it survives a crash.
 * Returns 0, or TN_EIO (database error such as a full disk; err names the database),
 * TN_ETOOBIG (envelope over TN_MSG_MAX_SIZE), TN_ENOMEM, TN_EINVAL (client stopping). */
int tn_gmc_report(struct tn_gmc *c, const char *kind, const char *ns, const char *name,
                  const json_t *status, struct tn_err *err);

/* 1 while the websocket to GM is open. */
int tn_gmc_connected(struct tn_gmc *c);
/* Upstream messages stored and not yet delivered. */
long tn_gmc_pending(struct tn_gmc *c);
/* 1 once the peer was recognised as a Tandem GM with ack on the current connection. */
int tn_gmc_acked_mode(struct tn_gmc *c);

/* Closes the connection, waits for the loop to let go of the client, stops the dispatcher
 * (messages not yet delivered are dropped: GM re-sends on the next connection) and closes the
 * database. Stored rows stay for the next run. NULL is ignored. */
void tn_gmc_free(struct tn_gmc *c);

#endif
