/* Rate-limited work queue for controllers, after client-go's util/workqueue: string keys
 * ("namespace/name"), de-duplication of pending keys, per-key exclusivity (a key is never handed
 * to two workers at once; one added while processing is re-queued by tn_wq_done), delayed adds
 * on a heap, and the default controller rate limiter: max(per-key exponential backoff 5 ms x2
 * capped at 1000 s, overall token bucket 10 qps burst 100).
 *
 * Threading: every function is thread-safe. tn_wq_get blocks; any number of workers may call it.
 * Ownership: keys passed in are copied. The key returned by tn_wq_get is owned by the queue and
 * stays valid until tn_wq_done is called with it. The clock is borrowed and must outlive the
 * queue. tn_wq_free may only be called once no thread is inside a tn_wq_* call. */
#ifndef TN_KUBE_WORKQUEUE_H
#define TN_KUBE_WORKQUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct tn_metrics;

/* A monotonic clock in nanoseconds. The zero value (or a NULL pointer) means CLOCK_MONOTONIC.
 * A fake clock (tn_wq_clock_fake) only moves when tn_wq_clock_advance is called, so tests can
 * check backoff and delays without sleeping. Thread-safe. */
struct tn_wq_clock {
    int fake;
    _Atomic int64_t fake_ns;
};

void tn_wq_clock_fake(struct tn_wq_clock *c, int64_t start_ns);
void tn_wq_clock_advance(struct tn_wq_clock *c, int64_t delta_ns);
int64_t tn_wq_clock_now(const struct tn_wq_clock *c);

struct tn_wq_opts {
    /* Metrics are registered only when both metrics and name are set; name is the `name` label,
     * controller the `controller` label (defaults to name). Both strings are copied. */
    struct tn_metrics *metrics;
    const char *name;
    const char *controller;
    struct tn_wq_clock *clock; /* NULL: CLOCK_MONOTONIC */
    int64_t base_delay_ns;     /* per-key backoff base, default 5 ms */
    int64_t max_delay_ns;      /* per-key backoff cap, default 1000 s */
    double qps;                /* overall bucket refill, default 10; < 0 disables the bucket */
    int burst;                 /* overall bucket size, default 100 */
};

struct tn_wq;

/* opts may be NULL (all defaults, no metrics). Returns NULL on allocation failure. */
struct tn_wq *tn_wq_new(const struct tn_wq_opts *opts);
/* Frees the queue and every key still in it. Call tn_wq_shutdown first and join the workers. */
void tn_wq_free(struct tn_wq *q);

/* Marks key as needing work. No-op if it is already pending, or after shutdown. If the key is
 * being processed it is queued again when that worker calls tn_wq_done. Returns 0 or
 * TN_ENOMEM. */
int tn_wq_add(struct tn_wq *q, const char *key);
/* Adds key once delay_ns has passed on the queue's clock (delay <= 0: at once). A key already
 * waiting keeps the earlier of its two ready times. Ignored after shutdown. */
int tn_wq_add_after(struct tn_wq *q, const char *key, int64_t delay_ns);
/* tn_wq_add_after(key, tn_wq_when(key)): use after a failed reconcile. */
int tn_wq_add_rate_limited(struct tn_wq *q, const char *key);
/* The rate limiter alone: returns the delay for key's next retry and counts one failure (and
 * takes one token from the overall bucket). Exposed for callers that schedule themselves. */
int64_t tn_wq_when(struct tn_wq *q, const char *key);
/* Clears key's failure count (call after a successful reconcile). */
void tn_wq_forget(struct tn_wq *q, const char *key);
/* Failures counted for key since the last forget. */
int tn_wq_num_requeues(struct tn_wq *q, const char *key);

/* Blocks until a key is ready and returns it, marking it as processing; returns NULL once the
 * queue is shut down and no ready key is left (keys already queued at shutdown are still handed
 * out, as in client-go). The caller must call tn_wq_done(q, key) when finished. */
const char *tn_wq_get(struct tn_wq *q);
/* Like tn_wq_get but gives up after timeout_ms (real time) and returns NULL; *shutdown (optional)
 * tells whether NULL means shut down. */
const char *tn_wq_get_timeout(struct tn_wq *q, int64_t timeout_ms, int *shutdown);
/* Ends processing of key (the pointer from tn_wq_get, or an equal string). */
void tn_wq_done(struct tn_wq *q, const char *key);

/* Number of keys ready to be handed out (not counting delayed or processing ones). */
size_t tn_wq_len(struct tn_wq *q);
/* Stops accepting adds and wakes every blocked tn_wq_get. */
void tn_wq_shutdown(struct tn_wq *q);
/* tn_wq_shutdown, then waits until no key is being processed, at most timeout_ms of real time
 * (< 0: no limit). Returns 0 when drained, TN_EIO on timeout. */
int tn_wq_shutdown_with_drain(struct tn_wq *q, int64_t timeout_ms);
int tn_wq_shutting_down(struct tn_wq *q);

#endif
