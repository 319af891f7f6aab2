/* Shared informer in the image of client-go's: a reflector (paged list, then watch from the list's
 * resourceVersion with bookmarks; relist on 410 delivering only the differences; reconnect with
 * capped, jittered backoff) feeding a local indexed cache, and event handlers run in order on
 * one dedicated dispatch thread (never on the client's curl thread).
 *
 * Threading: every function is thread-safe. Handlers run on the informer's dispatch thread, one at
 * a time, in the order the changes were applied to the cache; they may read the cache (get/list)
 * and call blocking client functions, but must not call tn_informer_stop/free.
 *
 * Ownership: cached objects are shared, immutable json_t values: everything returned is a new
 * reference (json_decref it) that must not be modified (json_deep_copy first). Objects passed to
 * handlers and iteration callbacks are borrowed for the duration of the call. With store_text
 * every read returns a freshly parsed object instead of a shared one. */
#ifndef TN_KUBE_INFORMER_H
#define TN_KUBE_INFORMER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "kube/client.h"

struct tn_informer;

/* Built-in indexes (present unless opts.no_builtin_indexes): */
#define TN_INFORMER_INDEX_NAMESPACE "namespace" /* metadata.namespace */
#define TN_INFORMER_INDEX_LABEL "label"         /* "key=value" for every label */
#define TN_INFORMER_INDEX_OWNER "owner"         /* metadata.ownerReferences[].uid */
#define TN_INFORMER_INDEX_NODE "node"           /* spec.nodeName */

struct tn_informer_opts {
    const char *namespace_;     /* NULL or "" = all namespaces (or cluster-scoped) */
    const char *label_selector; /* restricts what is listed, watched and cached */
    const char *field_selector;
    long page_size;          /* list page size; default 500 */
    int64_t resync_ms;       /* re-deliver every cached object as update(obj, obj); 0 = never */
    int watch_timeout_s;     /* server-side timeoutSeconds; 0 = random 300..600 s */
    int idle_timeout_ms;     /* no byte on the watch for this long = dead; default 120000 */
    int keep_managed_fields; /* metadata.managedFields is dropped unless set (memory) */
    int no_builtin_indexes;
    /* Keep each cached object as compact JSON text instead of a parsed json_t: ~8x less
     * memory (jansson spends ~2.7 KiB on a 330-byte ConfigMap), paid with a parse on every
     * read (get/list/foreach, the old object of an update). Reads still return json_t. */
    int store_text;
};

/* Handlers (any may be NULL), called on the dispatch thread. For a relist, objects that were
 * gone from the new list are delivered to delete with their last known state; objects whose
 * resourceVersion did not change are not re-delivered. */
struct tn_informer_handlers {
    void (*add)(const json_t *obj, void *arg);
    void (*update)(const json_t *old_obj, const json_t *new_obj, void *arg);
    void (*del)(const json_t *obj, void *arg);
    void *arg;
};

/* Index values: an index function adds zero or more values for an object. */
struct tn_informer_index_values;
typedef void (*tn_informer_index_fn)(const json_t *obj, struct tn_informer_index_values *vals,
                                     void *arg);
/* Copies value. */
void tn_informer_index_values_add(struct tn_informer_index_values *vals, const char *value);

/* c and r are borrowed (r's strings too) and must outlive the informer. NULL with err on bad
 * options or OOM. */
struct tn_informer *tn_informer_new(struct tn_kube_client *c, const struct tn_kube_gvr *r,
                                    const struct tn_informer_opts *opts, struct tn_err *err);
/* Before start only (TN_EINVAL after). name is copied; TN_EEXIST when taken. */
int tn_informer_add_index(struct tn_informer *inf, const char *name, tn_informer_index_fn fn,
                          void *arg);
/* Before start only; up to 16 handler sets; h is copied. */
int tn_informer_add_handlers(struct tn_informer *inf, const struct tn_informer_handlers *h);
/* Starts the reflector and dispatch threads. */
int tn_informer_start(struct tn_informer *inf, struct tn_err *err);
/* Stops the watch and both threads; no handler runs after it returns. Idempotent. */
void tn_informer_stop(struct tn_informer *inf);
/* Stops if needed, then frees the cache. */
void tn_informer_free(struct tn_informer *inf);

/* True once the first list has been applied to the cache (and its adds delivered). */
int tn_informer_has_synced(struct tn_informer *inf);
/* Waits up to timeout_ms for has_synced; returns 1 when synced. */
int tn_informer_wait_synced(struct tn_informer *inf, int64_t timeout_ms);

/* ---- cache reads (read lock) ---- */
/* New reference, or NULL when absent. ns NULL/"" for cluster-scoped objects. */
json_t *tn_informer_get(struct tn_informer *inf, const char *ns, const char *name);
/* New array of every cached object (new reference). */
json_t *tn_informer_list(struct tn_informer *inf);
/* New array of the objects whose index `index` has `value`; NULL for an unknown index. */
json_t *tn_informer_by_index(struct tn_informer *inf, const char *index, const char *value);
/* Calls fn for each object (index NULL) or each object of index=value, under the read lock:
 * fn must be quick and must not call other informer functions; it returns nonzero to stop.
 * Returns the number of objects visited, or TN_ENOTFOUND for an unknown index. */
typedef int (*tn_informer_iter_fn)(const json_t *obj, void *arg);
int tn_informer_foreach(struct tn_informer *inf, const char *index, const char *value,
                        tn_informer_iter_fn fn, void *arg);
size_t tn_informer_len(struct tn_informer *inf);
/* resourceVersion of the last event or bookmark seen ("" before the first list). */
void tn_informer_resource_version(struct tn_informer *inf, char *out, size_t n);

struct tn_informer_stats {
    uint64_t adds, updates, deletes; /* handler deliveries (not counting resyncs) */
    uint64_t resyncs;                /* update(obj, obj) deliveries from resync */
    uint64_t lists;                  /* successful (re)lists */
    uint64_t watches;                /* watch streams started */
    uint64_t failures;               /* failed lists and failed/very short watches */
    uint64_t expired;                /* 410 Gone answers that forced a relist */
    uint64_t events;                 /* watch events received incl. bookmarks */
};
void tn_informer_stats(struct tn_informer *inf, struct tn_informer_stats *out);

#endif
