/* Leader election on a coordination.k8s.io/v1 Lease, after client-go tools/leaderelection: the
 * holder renews every retry period with optimistic concurrency on the Lease's resourceVersion; a
 * candidate takes over only after seeing the record unchanged for a full lease duration on its
 * own monotonic clock (never by comparing timestamps across machines); a leader that has not
 * renewed within the renew deadline stops leading even when the API server is unreachable or a
 * request hangs; a clean stop can release the Lease so the next candidate takes over at once.
 *
 * Threading: tn_leader_start runs the election on a thread of its own (plus a watchdog thread
 * that enforces the renew deadline). Callbacks run on those threads, one at a time, and must
 * return quickly (start or stop the work on other threads); they must not call tn_leader_stop.
 * tn_leader_is_leader and tn_leader_holder are thread-safe.
 * Ownership: the client is borrowed and must outlive the elector; option strings are copied. */
#ifndef TN_KUBE_LEADER_H
#define TN_KUBE_LEADER_H

#include <stdint.h>

#include "base/err.h"

struct tn_kube_client;
struct tn_metrics;

struct tn_leader_callbacks {
    /* This process became the leader: start the work. May run again after a stop, if the
     * leadership is won back. */
    void (*on_started_leading)(void *arg);
    /* Leadership is lost (renew deadline passed, another holder seen) or the elector stops:
     * stop the work now. Only called after on_started_leading. */
    void (*on_stopped_leading)(void *arg);
    /* The observed holder changed (including to this process). identity is borrowed. */
    void (*on_new_leader)(const char *identity, void *arg);
    void *arg;
};

struct tn_leader_opts {
    struct tn_kube_client *client; /* required */
    const char *identity;          /* default "<hostname>_<uuid>" */
    const char *lease_namespace;   /* required */
    const char *lease_name;        /* required */
    int64_t lease_duration_ms;     /* default 15000 */
    int64_t renew_deadline_ms;     /* default 10000; must be < lease duration */
    int64_t retry_period_ms;       /* default 2000 */
    double jitter;                 /* candidates wait retry * (1 + rand * jitter); default 1.2,
                                      < 0 for none */
    int release_on_cancel;         /* clear holderIdentity in tn_leader_stop when leading */
    struct tn_metrics *metrics;    /* optional: leader_election_master_status{name} */
    const char *name;              /* metric label; default lease_name */
    struct tn_leader_callbacks cb;
};

struct tn_leader;

/* Validates opts and starts campaigning. Returns NULL with err set on bad options (naming the
 * field) or when threads cannot be created. */
struct tn_leader *tn_leader_start(const struct tn_leader_opts *opts, struct tn_err *err);
/* Stops campaigning: joins the threads (waiting for a request in flight), calls
 * on_stopped_leading if leading, then, with release_on_cancel, releases the Lease; frees l. */
void tn_leader_stop(struct tn_leader *l);

int tn_leader_is_leader(struct tn_leader *l);
/* Holder identity last observed on the Lease (malloc'd, caller frees), or NULL when none. */
char *tn_leader_holder(struct tn_leader *l);
/* This elector's identity (borrowed, valid until tn_leader_stop). */
const char *tn_leader_identity(const struct tn_leader *l);

#endif
