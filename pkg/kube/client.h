/* REST client for the Kubernetes API (tandem-apiserver or a real kube-apiserver), in the image of
 * client-go: one libcurl multi handle driven by the client's own thread (connection reuse, HTTP/2
 * where the server offers it), client-side rate limiting (QPS/burst), retries with backoff on
 * 429/5xx/connection errors honouring Retry-After, and the server's Status decoded into errors.
 *
 * Threading: every function here is thread-safe; calls block the calling thread until the
 * response (the transfer itself runs on the client thread). Watches deliver events on the client
 * thread through their callback: callbacks must be quick and must not call blocking client
 * functions (hand work to another thread, e.g. a workqueue).
 *
 * Ownership: json_t results are new references (caller decrefs); json_t arguments are borrowed. */
#ifndef TN_KUBE_CLIENT_H
#define TN_KUBE_CLIENT_H

#include <jansson.h>
#include <stdint.h>

#include "base/err.h"
#include "kube/config.h"

struct tn_kube_client;

struct tn_metrics;

struct tn_kube_client_opts {
    struct tn_metrics *metrics; /* optional: rest_client_* metrics are registered here */
    double qps;                 /* default 50 */
    int burst;                  /* default 100 */
    int max_retries;            /* for 429/5xx/connection errors on idempotent calls; default 5 */
    int timeout_ms;             /* per request (not watches); default 30000 */
    const char *user_agent;
};

/* Takes ownership of cfg. */
struct tn_kube_client *tn_kube_client_new(struct tn_kube_config *cfg,
                                          const struct tn_kube_client_opts *opts,
                                          struct tn_err *err);
/* Stops watches, joins the client thread, frees everything. */
void tn_kube_client_free(struct tn_kube_client *c);
const struct tn_kube_config *tn_kube_client_config(const struct tn_kube_client *c);

/* A resource: group "" is core. Namespaced-ness is the caller's knowledge (ns NULL or "" means
 * cluster-scoped or all namespaces for list/watch). */
struct tn_kube_gvr {
    const char *group;
    const char *version;
    const char *resource;
};

/* Error from the server: code is the HTTP status (0 for transport errors), reason/message from
 * the Status body, causes as "field: message" lines. Also filled into err->msg as
 * "<verb> <resource> <ns>/<name>: <message>". */
struct tn_kube_status {
    int code;
    char reason[64];
    char message[1024];
    char causes[1024];
    int64_t retry_after_s;
};

struct tn_kube_list_opts {
    const char *label_selector;
    const char *field_selector;
    long limit;       /* page size; 0 = one request for all */
    const char *cont; /* continue token */
    const char *resource_version;
};

/* Each returns 0 or a negative tn_code (TN_ENOTFOUND for 404, TN_ECONFLICT for 409,
 * TN_EEXIST for AlreadyExists, TN_EGONE for 410, TN_EINVAL for 400/422, TN_EIO otherwise)
 * and, on failure, st (optional) and err (optional). */
int tn_kube_get(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                const char *name, json_t **out, struct tn_kube_status *st, struct tn_err *err);
/* Lists all pages (following continue) into one List object (items merged) when opts->limit > 0. */
int tn_kube_list(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                 const struct tn_kube_list_opts *opts, json_t **out, struct tn_kube_status *st,
                 struct tn_err *err);
int tn_kube_create(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const json_t *obj, json_t **out, struct tn_kube_status *st, struct tn_err *err);
/* subresource NULL or "status". */
int tn_kube_update(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const json_t *obj, const char *subresource, json_t **out,
                   struct tn_kube_status *st, struct tn_err *err);
enum tn_kube_patch_type {
    TN_KUBE_PATCH_MERGE,     /* application/merge-patch+json */
    TN_KUBE_PATCH_JSON,      /* application/json-patch+json */
    TN_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    TN_KUBE_PATCH_APPLY,     /* application/apply-patch+yaml (field_manager required) */
};
int tn_kube_patch(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                  const char *name, enum tn_kube_patch_type type, const json_t *patch,
                  const char *subresource, const char *field_manager, json_t **out,
                  struct tn_kube_status *st, struct tn_err *err);
/* propagation NULL (server default), "Background", "Foreground", "Orphan". */
int tn_kube_delete(struct tn_kube_client *c, const struct tn_kube_gvr *r, const char *ns,
                   const char *name, const char *propagation, struct tn_kube_status *st,
                   struct tn_err *err);
/* Raw request (GET of a subresource such as pods/log, discovery, ...): body may be NULL;
 * *out_body malloc'd (caller frees). Returns the HTTP code, or a negative tn_code on a
 * transport error. */
int tn_kube_raw(struct tn_kube_client *c, const char *method, const char *path_and_query,
                const char *content_type, const char *body, size_t body_len, char **out_body,
                size_t *out_len, struct tn_err *err);

/* Path of a resource, escaped: "/apis/g/v/namespaces/ns/res/name/sub". malloc'd. */
char *tn_kube_path(const struct tn_kube_gvr *r, const char *ns, const char *name,
                   const char *subresource);

/* ---- watch ---- */
struct tn_kube_watch;
enum tn_kube_event {
    TN_KUBE_ADDED,
    TN_KUBE_MODIFIED,
    TN_KUBE_DELETED,
    TN_KUBE_BOOKMARK,
    TN_KUBE_ERROR
};
/* obj borrowed for the duration of the call. Runs on the client thread. */
typedef void (*tn_kube_watch_fn)(enum tn_kube_event type, json_t *obj, void *arg);
/* Called on the client thread when the stream ended (server closed, timeout, error, or 410):
 * code 0 for a normal end, 410 when the resourceVersion expired (the caller must relist),
 * a negative tn_code for transport errors. */
typedef void (*tn_kube_watch_end_fn)(int code, void *arg);

struct tn_kube_watch_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* "" = from now with synthetic ADDED of current objects */
    int bookmarks;                /* allowWatchBookmarks */
    int timeout_s;                /* server-side timeoutSeconds; 0 = random 300..600 */
    int idle_timeout_ms;          /* no byte for this long = dead stream; default 120000 */
    size_t max_line;              /* cap on one event; default 16 MiB */
};

/* Starts one watch stream (no reconnect: the informer does that). */
struct tn_kube_watch *tn_kube_watch_start(struct tn_kube_client *c, const struct tn_kube_gvr *r,
                                          const char *ns, const struct tn_kube_watch_opts *opts,
                                          tn_kube_watch_fn fn, tn_kube_watch_end_fn end, void *arg,
                                          struct tn_err *err);
/* Stops the stream; after it returns no callback runs. Thread-safe; not from a callback.
 * Also frees w: call it exactly once for every started watch, after its end callback too
 * (tn_kube_client_free frees the watches still left). Idle timer: idle_timeout_ms < 0 disables. */
void tn_kube_watch_stop(struct tn_kube_watch *w);

#endif
