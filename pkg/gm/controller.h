/* The controller framework the GM controllers (Dataset, Model, JointInferenceService,
 * IncrementalLearningJob, FederatedLearningJob, LifelongLearningJob) plug into, after
 * controller-runtime: a manager owns the shared informers (one per resource and selector), an
 * event recorder, a metrics registry and the controllers; each controller has a rate-limited
 * workqueue of "namespace/name" keys fed by its primary resource, by the children it owns (through
 * their controller ownerReference) and by extra watches with a map function, and a pool of
 * workers calling its reconcile function.
 *
 * Result mapping (controller-runtime's): err != 0 -> add_rate_limited (backoff 5 ms x2 .. 1000 s)
 * and the error counted; requeue_after_ms > 0 -> forget + add_after; requeue -> add_rate_limited;
 * otherwise forget. One key is never reconciled by two workers at once (the workqueue's
 * guarantee), whatever the number of workers.
 *
 * Panics: controller-runtime recovers panics in Reconcile. C has nothing to recover: a crash in
 * a reconcile ends the process (the state it left is unknown, and a restart relists everything).
 * What is recovered is a reconcile that returns an error: it is logged, counted and retried.
 *
 * Threading: tn_mgr_new/add_controller/informer/start/stop/free are called from one thread (the
 * daemon's main thread); tn_mgr_informer may also be called after start (the new informer is
 * started and synced at once, but gets no controller handlers). Reconcile functions run on worker
 * threads, several at a time across keys and controllers; every tn_rctx_* and
 * tn_controller_enqueue* function is thread-safe. Reconciles must not call tn_mgr_stop/free.
 *
 * Ownership: the manager borrows the client (it must outlive the manager) and, when given, the
 * metrics registry and event recorder; it copies every string and struct of the specs. Objects
 * returned by tn_rctx_get are new references that must not be modified (json_deep_copy first). */
#ifndef TN_GM_CONTROLLER_H
#define TN_GM_CONTROLLER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/log.h"
#include "kube/client.h"
#include "kube/informer.h"

struct tn_metrics;
struct tn_event_recorder;
struct tn_mgr;
struct tn_controller;
struct tn_rctx;

struct tn_mgr_opts {
    /* Optional, borrowed: metrics are registered here; NULL = the manager creates its own
     * (tn_mgr_metrics returns it). */
    struct tn_metrics *metrics;
    /* Optional, borrowed: events are recorded here; NULL = the manager creates one writing as
     * `component` (unless no_events). */
    struct tn_event_recorder *recorder;
    const char *component; /* event source; default "tandem-gm" */
    int no_events;         /* no recorder at all: tn_rctx_event only logs */
    /* Namespace of the informers controllers create (NULL/"" = all namespaces). */
    const char *namespace_;
    int64_t cache_sync_timeout_ms; /* tn_mgr_start waits this long per start; default 120000 */
    int64_t drain_timeout_ms;      /* tn_mgr_stop waits this long for reconciles; default 30000 */
};

/* What a reconcile asks for next (controller-runtime's ctrl.Result plus the error). */
struct tn_result {
    int requeue;              /* run again, with rate-limited backoff */
    int64_t requeue_after_ms; /* > 0: run again after this delay (backoff forgotten) */
    int err;                  /* nonzero (a negative tn_code): failed, retried with backoff */
};

/* Reconciles the object ns/name (ns "" for cluster-scoped) towards its desired state. The object
 * may be gone (tn_rctx_get returns NULL): clean up and return success. Runs on a worker thread. */
typedef struct tn_result (*tn_reconcile_fn)(struct tn_rctx *ctx, const char *ns, const char *name,
                                            void *arg);
/* Maps an object of a watched resource to the keys of primaries to reconcile, by calling
 * tn_controller_enqueue(c, ...) for each. obj is borrowed; runs on an informer dispatch thread
 * and must be quick (it may read caches with tn_mgr_get). */
typedef void (*tn_map_fn)(struct tn_controller *c, const json_t *obj, void *arg);

struct tn_watch_spec {
    struct tn_kube_gvr gvr;
    const char *label_selector; /* optional, restricts the shared informer */
    tn_map_fn map;              /* required */
    void *arg;
};

struct tn_controller_spec {
    const char *name; /* required, unique: the `controller` label and log key */
    /* Primary resource: its add/update/delete events enqueue "namespace/name". */
    struct tn_kube_gvr primary;
    const char *primary_kind;           /* required with owns: ownerReferences[].kind to match */
    const char *primary_label_selector; /* optional */
    /* Owned resources: an event of a child enqueues its controller owner (the ownerReference
     * with controller: true, kind primary_kind and the primary's API group), in the child's
     * namespace. */
    const struct tn_kube_gvr *owns;
    size_t nowns;
    const struct tn_watch_spec *watches;
    size_t nwatches;
    tn_reconcile_fn reconcile; /* required */
    void *arg;
    int workers;           /* MaxConcurrentReconciles; default 1 */
    int64_t base_delay_ms; /* per-key backoff base; default 5 */
    int64_t max_delay_ms;  /* per-key backoff cap; default 1000000 */
};

/* NULL with err on OOM or when the event recorder cannot start. */
struct tn_mgr *tn_mgr_new(struct tn_kube_client *client, const struct tn_mgr_opts *opts,
                          struct tn_err *err);
/* Before tn_mgr_start only. Creates (or shares) the informers it needs and its workqueue.
 * Returns the controller (owned by the manager) or NULL with err (missing field, duplicate
 * name, too many handlers on one informer, OOM). */
struct tn_controller *tn_mgr_add_controller(struct tn_mgr *m, const struct tn_controller_spec *s,
                                            struct tn_err *err);
/* The shared informer for gvr with opts' namespace and selectors (other opts fields apply only
 * when it is created; store_text is always on). Borrowed; lives as long as the manager. NULL with
 * err on failure. opts NULL = the manager's namespace, no selector. After start, creating one
 * waits for its first list while holding the manager's lock (tn_mgr_get waits meanwhile): create
 * informers up front where possible. */
struct tn_informer *tn_mgr_informer(struct tn_mgr *m, const struct tn_kube_gvr *gvr,
                                    const struct tn_informer_opts *opts, struct tn_err *err);
/* Starts every informer, waits until all caches have synced (cache_sync_timeout_ms; the error
 * names the resource that did not sync), then starts the workers. Returns 0 or a tn_code; on
 * failure the manager is left stopped. */
int tn_mgr_start(struct tn_mgr *m, struct tn_err *err);
/* Shuts the workqueues down, lets the workers finish the keys already queued (bounded by
 * drain_timeout_ms, after which delayed keys are dropped and running reconciles are still
 * waited for), joins them, then stops the informers. No reconcile runs after it returns.
 * Idempotent. */
void tn_mgr_stop(struct tn_mgr *m);
/* Stops if needed and frees everything the manager owns. */
void tn_mgr_free(struct tn_mgr *m);

struct tn_kube_client *tn_mgr_client(struct tn_mgr *m);
struct tn_metrics *tn_mgr_metrics(struct tn_mgr *m);
struct tn_event_recorder *tn_mgr_recorder(struct tn_mgr *m); /* NULL with no_events */
/* Borrowed, NULL when no controller has that name. */
struct tn_controller *tn_mgr_controller(struct tn_mgr *m, const char *name);
/* New reference from the caches of gvr: the informer without selectors when there is one (its
 * answer is final), else the first of the selector-restricted ones that has the object. NULL
 * when absent or when no informer watches gvr. */
json_t *tn_mgr_get(struct tn_mgr *m, const struct tn_kube_gvr *gvr, const char *ns,
                   const char *name);

/* Enqueues ns/name (ns NULL or "" for cluster-scoped) now or after delay_ms. Thread-safe. */
int tn_controller_enqueue(struct tn_controller *c, const char *ns, const char *name);
int tn_controller_enqueue_after(struct tn_controller *c, const char *ns, const char *name,
                                int64_t delay_ms);
const char *tn_controller_name(const struct tn_controller *c);
struct tn_mgr *tn_controller_mgr(struct tn_controller *c);

/* ---- reconcile context: valid for the duration of one reconcile call ---- */
const char *tn_rctx_namespace(const struct tn_rctx *ctx);
const char *tn_rctx_name(const struct tn_rctx *ctx);
const char *tn_rctx_id(const struct tn_rctx *ctx); /* reconcileID, a UUID */
struct tn_controller *tn_rctx_controller(struct tn_rctx *ctx);
/* The client for writes (reads come from the caches). */
struct tn_kube_client *tn_rctx_client(struct tn_rctx *ctx);
/* tn_mgr_get: a new reference, or NULL. */
json_t *tn_rctx_get(struct tn_rctx *ctx, const struct tn_kube_gvr *gvr, const char *ns,
                    const char *name);
/* Logs msg with controller, namespace, name and reconcileID followed by the NULL-terminated
 * key/value pairs (at most 16 pairs are kept). */
void tn_rctx_log(struct tn_rctx *ctx, enum tn_log_level lvl, const char *msg, ...)
    __attribute__((sentinel));
/* Records a core/v1 Event about obj (borrowed) and logs it; best-effort, never blocks. */
void tn_rctx_event(struct tn_rctx *ctx, const json_t *obj, const char *type, const char *reason,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Writes new_status (borrowed) to obj's /status subresource (obj borrowed: the cached object,
 * whose resourceVersion makes the write conditional) only when tn_status_changed says it
 * differs from obj's status. Returns 1 when written, 0 when unchanged, a negative tn_code on
 * failure (TN_ECONFLICT when obj was stale: return it as the reconcile error to retry); failures
 * are logged. */
int tn_rctx_update_status(struct tn_rctx *ctx, const struct tn_kube_gvr *gvr, const json_t *obj,
                          const json_t *new_status);

#endif
