/* Watch fan-out of tandem-apiserver: a bounded history of recent events (for resuming a watch
 * at a resourceVersion, and 410 Gone when it is older than the window) and the open watch
 * streams, each with its filter (resource, namespace, label and field selectors) and format
 * (plain objects or meta.k8s.io Tables). Not thread-safe: loop thread only.
 * Ownership: the hub owns the history and the watcher records; event objects passed to
 * tn_watch_publish are borrowed. */
#ifndef TN_APISERVER_WATCH_H
#define TN_APISERVER_WATCH_H

#include <jansson.h>
#include <stdint.h>

#include "base/http.h"

struct tn_watch_hub;
struct tn_watcher;
struct tn_labelsel;
struct tn_fieldsel;
struct tn_rtype;

/* Encodes one event object for a watcher in Table mode (new reference). */
typedef json_t *(*tn_watch_table_fn)(const struct tn_rtype *t, const json_t *obj,
                                     const char *include_object, void *arg);

struct tn_watch_hub *tn_watch_hub_new(size_t history, tn_watch_table_fn table_fn, void *arg);
void tn_watch_hub_free(struct tn_watch_hub *h);

/* Sets the resourceVersion the history starts after (the store's rv at start-up). */
void tn_watch_set_base_rv(struct tn_watch_hub *h, int64_t rv);
/* Oldest resourceVersion from which a watch can resume (events after it are all retained). */
int64_t tn_watch_oldest_rv(const struct tn_watch_hub *h);

/* Records and delivers an event. type: "ADDED", "MODIFIED", "DELETED". old may be NULL; with it,
 * watchers whose selectors matched old but not obj get DELETED, and the reverse ADDED. */
void tn_watch_publish(struct tn_watch_hub *h, const struct tn_rtype *t, const char *type,
                      int64_t rv, const json_t *obj, const json_t *old);

struct tn_watch_opts {
    const char *ns;             /* NULL = all namespaces */
    struct tn_labelsel *labels; /* owned by the watcher from here on; may be NULL */
    struct tn_fieldsel *fields; /* owned by the watcher from here on; may be NULL */
    int bookmarks;              /* allowWatchBookmarks */
    int table;                  /* send meta.k8s.io Tables */
    char include_object[16];    /* Table includeObject: None|Metadata|Object */
    int64_t timeout_ms;         /* end the stream after this long */
};

/* Starts a stream on req (which must not have answered yet) for resource t. The caller first
 * sends the initial events (tn_watch_send) when resourceVersion is unset or "0", or replays from
 * rv with tn_watch_replay. Returns the watcher, or NULL (then req has been answered). */
struct tn_watcher *tn_watch_start(struct tn_watch_hub *h, struct tn_http_server *srv,
                                  struct tn_http_req *req, const struct tn_rtype *t,
                                  struct tn_watch_opts *opts);
/* Sends one event to one watcher if it passes the watcher's filter. */
void tn_watch_send(struct tn_watcher *w, const char *type, const json_t *obj);
/* Replays retained events with rv > from_rv for this watcher; returns TN_EGONE (and sends the
 * 410 ERROR event and ends the stream) when from_rv is older than the retained window. */
int tn_watch_replay(struct tn_watcher *w, int64_t from_rv);
/* Ends every watch on resource key (a CRD was deleted) or all watches (key NULL). */
void tn_watch_close_key(struct tn_watch_hub *h, const char *key);
/* Sends BOOKMARK events (at the current rv) to watchers that asked for them. */
void tn_watch_bookmarks(struct tn_watch_hub *h, int64_t rv);
size_t tn_watch_count(const struct tn_watch_hub *h);

#endif
