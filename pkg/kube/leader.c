/* Lease-based leader election; see leader.h.
 * Two threads: the elector does the API calls (which may block for a client timeout), the
 * watchdog ends the leadership at the renew deadline whatever the elector is doing. Lock order:
 * cb_mu (serializes callbacks with the state change they report) before mu (state). */
#include "kube/leader.h"

#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/timeutil.h"
#include "kube/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

static const struct tn_kube_gvr LEASES = {"coordination.k8s.io", "v1", "leases"};

struct tn_leader {
    struct tn_kube_client *client;
    char *identity, *ns, *name, *metric_name;
    int64_t lease_ns, renew_ns, retry_ns;
    double jitter;
    int release_on_cancel;
    struct tn_leader_callbacks cb;
    struct tn_metric *status;

    pthread_mutex_t cb_mu;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; state changes and stop */
    int stopping;
    int leading;
    int64_t valid_until_ns; /* leadership ends here unless renewed */
    char *holder;           /* observed holder identity (under mu) */

    /* elector thread only */
    json_t *observed_spec; /* last observed Lease spec */
    int64_t observed_ns;   /* when it was first seen, on our clock */
    char *new_leader;      /* pending on_new_leader notification */

    pthread_t elector, watchdog;
    int elector_on, watchdog_on;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void abs_deadline(struct timespec *ts, int64_t mono_at)
{
    ts->tv_sec = mono_at / NS_PER_S;
    ts->tv_nsec = mono_at % NS_PER_S;
}

static void set_status_metric(struct tn_leader *l, int leading)
{
    const char *v[] = {l->metric_name};
    tn_metric_set(l->status, v, leading ? 1 : 0);
}

/* Called with cb_mu held and mu not held. */
static void emit_started(struct tn_leader *l)
{
    TN_INFO("successfully acquired lease", "lease", l->name, "namespace", l->ns, "identity",
            l->identity);
    set_status_metric(l, 1);
    if (l->cb.on_started_leading) l->cb.on_started_leading(l->cb.arg);
}

static void emit_stopped(struct tn_leader *l, const char *why)
{
    TN_INFO("stopped leading", "lease", l->name, "namespace", l->ns, "identity", l->identity,
            "reason", why);
    set_status_metric(l, 0);
    if (l->cb.on_stopped_leading) l->cb.on_stopped_leading(l->cb.arg);
}

/* ---- one attempt ---- */

enum attempt { A_FAILED, A_HELD_BY_OTHER, A_OK };

static long lease_seconds(const struct tn_leader *l)
{
    long s = (long)((l->lease_ns + NS_PER_S - 1) / NS_PER_S);
    return s < 1 ? 1 : s;
}

/* Records a freshly read spec (borrowed) as observed if it differs from the last one. */
static void observe(struct tn_leader *l, const json_t *spec, int64_t now)
{
    if (!json_is_object(spec)) return; /* a Lease without spec never counts as a change */
    if (l->observed_spec && json_equal(l->observed_spec, spec)) return;
    json_decref(l->observed_spec);
    l->observed_spec = json_deep_copy(spec);
    l->observed_ns = now;
    const char *h = tn_json_str(spec, "holderIdentity", "");
    pthread_mutex_lock(&l->mu);
    int changed = !(l->holder ? strcmp(l->holder, h) == 0 : *h == '\0');
    if (changed) {
        free(l->holder);
        l->holder = *h ? strdup(h) : NULL;
    }
    pthread_mutex_unlock(&l->mu);
    if (changed && *h) {
        free(l->new_leader);
        l->new_leader = strdup(h);
    }
}

static json_t *new_spec(const struct tn_leader *l, const char *holder, long duration_s,
                        const char *acquire, const char *renew, json_int_t transitions)
{
    json_t *s = json_object();
    if (holder) json_object_set_new(s, "holderIdentity", json_string(holder));
    json_object_set_new(s, "leaseDurationSeconds", json_integer(duration_s));
    json_object_set_new(s, "acquireTime", json_string(acquire));
    json_object_set_new(s, "renewTime", json_string(renew));
    json_object_set_new(s, "leaseTransitions", json_integer(transitions));
    return s;
}

/* client-go tryAcquireOrRenew. */
static enum attempt try_acquire_or_renew(struct tn_leader *l)
{
    enum attempt res = A_FAILED;
    json_t *lease = NULL, *out = NULL, *obj = NULL;
    struct tn_kube_status st = {0};
    struct tn_err err = {0};
    char now_s[40];
    tn_time_now_rfc3339_micro(now_s, sizeof(now_s));

    int rc = tn_kube_get(l->client, &LEASES, l->ns, l->name, &lease, &st, &err);
    if (rc == TN_ENOTFOUND) {
        obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "coordination.k8s.io/v1",
                        "kind", "Lease", "metadata", "name", l->name, "namespace", l->ns, "spec",
                        new_spec(l, l->identity, lease_seconds(l), now_s, now_s, 0));
        if (!obj) goto out;
        rc = tn_kube_create(l->client, &LEASES, l->ns, obj, &out, &st, &err);
        if (rc < 0) {
            TN_DEBUG("creating lease failed", "lease", l->name, "err", err.msg);
            goto out;
        }
        observe(l, json_object_get(out, "spec"), mono_ns());
        res = A_OK;
        goto out;
    }
    if (rc < 0) {
        TN_DEBUG("getting lease failed", "lease", l->name, "err", err.msg);
        goto out;
    }
    /* Observed after the response came back, so never before the write that produced it. */
    int64_t now = mono_ns();
    json_t *spec = json_object_get(lease, "spec");
    json_t *empty = NULL;
    if (!json_is_object(spec)) spec = empty = json_object();
    observe(l, spec, now);
    const char *holder = tn_json_str(spec, "holderIdentity", "");
    int mine = strcmp(holder, l->identity) == 0;
    if (*holder && !mine && l->observed_ns + l->lease_ns > now) {
        json_decref(empty);
        res = A_HELD_BY_OTHER;
        goto out;
    }
    json_int_t transitions = tn_json_int(spec, "leaseTransitions", 0);
    const char *acquire = now_s;
    if (mine)
        acquire = tn_json_str(spec, "acquireTime", now_s);
    else
        transitions++;
    json_t *want = new_spec(l, l->identity, lease_seconds(l), acquire, now_s, transitions);
    json_decref(empty);
    obj = json_deep_copy(lease);
    if (!obj || !want) {
        json_decref(want);
        goto out;
    }
    json_object_set_new(obj, "spec", want);
    /* obj keeps metadata.resourceVersion: the update fails with a conflict if anyone wrote in
     * between. */
    rc = tn_kube_update(l->client, &LEASES, l->ns, obj, NULL, &out, &st, &err);
    if (rc < 0) {
        TN_DEBUG("updating lease failed", "lease", l->name, "err", err.msg);
        goto out;
    }
    if (!mine)
        TN_INFO("lease expired or released, taking over", "lease", l->name, "previous", holder);
    observe(l, json_object_get(out, "spec"), mono_ns());
    res = A_OK;
out:
    json_decref(lease);
    json_decref(out);
    json_decref(obj);
    return res;
}

/* ---- threads ---- */

static void *elector_main(void *arg)
{
    struct tn_leader *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        int stop = l->stopping;
        pthread_mutex_unlock(&l->mu);
        if (stop) break;

        int64_t t_start = mono_ns();
        enum attempt r = try_acquire_or_renew(l);

        pthread_mutex_lock(&l->cb_mu);
        if (l->new_leader) {
            if (l->cb.on_new_leader) l->cb.on_new_leader(l->new_leader, l->cb.arg);
            free(l->new_leader);
            l->new_leader = NULL;
        }
        int started = 0, lost = 0;
        pthread_mutex_lock(&l->mu);
        if (r == A_OK) {
            /* The server wrote our record no earlier than t_start; others wait a full lease
             * duration after seeing it, and we stop renew_deadline after t_start. */
            l->valid_until_ns = t_start + l->renew_ns;
            if (!l->leading && !l->stopping && mono_ns() < l->valid_until_ns) {
                l->leading = 1;
                started = 1;
            }
            pthread_cond_broadcast(&l->cond);
        } else if (r == A_HELD_BY_OTHER && l->leading) {
            l->leading = 0;
            lost = 1;
        }
        int leading = l->leading;
        pthread_mutex_unlock(&l->mu);
        if (started) emit_started(l);
        if (lost) emit_stopped(l, "lease held by another candidate");
        pthread_mutex_unlock(&l->cb_mu);

        /* The leader renews every retry period; candidates add jitter so they do not all
         * hit the server at once. */
        int64_t wait = l->retry_ns;
        if (!leading && l->jitter > 0)
            wait += (int64_t)((double)l->retry_ns * tn_rand_unit() * l->jitter);
        struct timespec ts;
        abs_deadline(&ts, mono_ns() + wait);
        pthread_mutex_lock(&l->mu);
        while (!l->stopping && pthread_cond_timedwait(&l->cond, &l->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&l->mu);
    }
    return NULL;
}

static void *watchdog_main(void *arg)
{
    struct tn_leader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stopping) {
        if (!l->leading) {
            pthread_cond_wait(&l->cond, &l->mu);
            continue;
        }
        if (mono_ns() < l->valid_until_ns) {
            struct timespec ts;
            abs_deadline(&ts, l->valid_until_ns);
            pthread_cond_timedwait(&l->cond, &l->mu, &ts);
            continue;
        }
        /* Deadline passed: retake the locks in order and re-check. */
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_lock(&l->cb_mu);
        pthread_mutex_lock(&l->mu);
        int lost = 0;
        if (!l->stopping && l->leading && mono_ns() >= l->valid_until_ns) {
            l->leading = 0;
            lost = 1;
        }
        pthread_mutex_unlock(&l->mu);
        if (lost) {
            TN_WARN("failed to renew lease within the renew deadline", "lease", l->name, "identity",
                    l->identity);
            emit_stopped(l, "renew deadline exceeded");
        }
        pthread_mutex_unlock(&l->cb_mu);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- release ---- */

/* client-go release(): clears the holder with a resourceVersion precondition, so only the Lease
 * we still hold is touched. */
static void release(struct tn_leader *l)
{
    json_t *lease = NULL, *obj = NULL, *out = NULL;
    struct tn_err err = {0};
    struct tn_kube_status st = {0};
    if (tn_kube_get(l->client, &LEASES, l->ns, l->name, &lease, &st, &err) < 0) {
        TN_WARN("releasing lease: get failed", "lease", l->name, "err", err.msg);
        return;
    }
    json_t *spec = json_object_get(lease, "spec");
    if (strcmp(tn_json_str(spec, "holderIdentity", ""), l->identity) != 0) goto out;
    char now_s[40];
    tn_time_now_rfc3339_micro(now_s, sizeof(now_s));
    obj = json_deep_copy(lease);
    json_t *want = new_spec(l, NULL, 1, now_s, now_s, tn_json_int(spec, "leaseTransitions", 0));
    if (!obj || !want) {
        json_decref(want);
        goto out;
    }
    json_object_set_new(obj, "spec", want);
    if (tn_kube_update(l->client, &LEASES, l->ns, obj, NULL, &out, &st, &err) < 0)
        TN_WARN("releasing lease failed", "lease", l->name, "err", err.msg);
    else
        TN_INFO("released lease", "lease", l->name, "namespace", l->ns);
out:
    json_decref(lease);
    json_decref(obj);
    json_decref(out);
}

/* ---- public ---- */

static void leader_free(struct tn_leader *l)
{
    free(l->identity);
    free(l->ns);
    free(l->name);
    free(l->metric_name);
    free(l->holder);
    free(l->new_leader);
    json_decref(l->observed_spec);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->cb_mu);
    free(l);
}

static void join_threads(struct tn_leader *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->elector_on) pthread_join(l->elector, NULL);
    if (l->watchdog_on) pthread_join(l->watchdog, NULL);
    l->elector_on = l->watchdog_on = 0;
}

struct tn_leader *tn_leader_start(const struct tn_leader_opts *o, struct tn_err *err)
{
    if (!o || !o->client) {
        tn_err_set(err, TN_EINVAL, "leader election: client is required");
        return NULL;
    }
    if (!o->lease_namespace || !*o->lease_namespace || !o->lease_name || !*o->lease_name) {
        tn_err_set(err, TN_EINVAL, "leader election: lease namespace and name are required");
        return NULL;
    }
    int64_t lease = o->lease_duration_ms > 0 ? o->lease_duration_ms : 15000;
    int64_t renew = o->renew_deadline_ms > 0 ? o->renew_deadline_ms : 10000;
    int64_t retry = o->retry_period_ms > 0 ? o->retry_period_ms : 2000;
    double jitter = o->jitter == 0 ? 1.2 : o->jitter < 0 ? 0 : o->jitter;
    if (lease <= renew) {
        tn_err_set(err, TN_EINVAL,
                   "leader election: leaseDuration (%lld ms) must be greater than renewDeadline "
                   "(%lld ms)",
                   (long long)lease, (long long)renew);
        return NULL;
    }
    if ((double)renew <= (double)retry * 1.2) {
        tn_err_set(err, TN_EINVAL,
                   "leader election: renewDeadline (%lld ms) must be greater than 1.2 x "
                   "retryPeriod (%lld ms)",
                   (long long)renew, (long long)retry);
        return NULL;
    }

    struct tn_leader *l = calloc(1, sizeof(*l));
    if (!l) {
        tn_err_set(err, TN_ENOMEM, "leader election: out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->cb_mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->client = o->client;
    l->lease_ns = lease * NS_PER_MS;
    l->renew_ns = renew * NS_PER_MS;
    l->retry_ns = retry * NS_PER_MS;
    l->jitter = jitter;
    l->release_on_cancel = o->release_on_cancel;
    l->cb = o->cb;
    if (o->identity && *o->identity) {
        l->identity = strdup(o->identity);
    } else {
        char host[256] = "unknown", uuid[37];
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        tn_rand_uuid(uuid);
        size_t n = strlen(host) + 1 + sizeof(uuid);
        l->identity = malloc(n);
        if (l->identity) snprintf(l->identity, n, "%s_%s", host, uuid);
    }
    l->ns = strdup(o->lease_namespace);
    l->name = strdup(o->lease_name);
    l->metric_name = strdup(o->name && *o->name ? o->name : o->lease_name);
    if (!l->identity || !l->ns || !l->name || !l->metric_name) {
        tn_err_set(err, TN_ENOMEM, "leader election: out of memory");
        leader_free(l);
        return NULL;
    }
    static const char *const lbl[] = {"name", NULL};
    l->status = tn_metrics_gauge(o->metrics, "leader_election_master_status",
                                 "Gauge of if the reporting system is master of the relevant "
                                 "lease, 0 indicates backup, 1 indicates master. 'name' is the "
                                 "string used to identify the lease. Please make sure to group "
                                 "by name.",
                                 lbl);
    set_status_metric(l, 0);

    if (pthread_create(&l->watchdog, NULL, watchdog_main, l) == 0) l->watchdog_on = 1;
    if (l->watchdog_on && pthread_create(&l->elector, NULL, elector_main, l) == 0)
        l->elector_on = 1;
    if (!l->elector_on) {
        join_threads(l);
        tn_err_set(err, TN_EIO, "leader election: cannot start thread");
        leader_free(l);
        return NULL;
    }
    TN_INFO("attempting to acquire leader lease", "lease", l->name, "namespace", l->ns, "identity",
            l->identity);
    return l;
}

void tn_leader_stop(struct tn_leader *l)
{
    if (!l) return;
    join_threads(l);
    pthread_mutex_lock(&l->cb_mu);
    pthread_mutex_lock(&l->mu);
    int was = l->leading;
    l->leading = 0;
    int holds = l->holder && strcmp(l->holder, l->identity) == 0;
    pthread_mutex_unlock(&l->mu);
    if (was) emit_stopped(l, "elector stopped");
    pthread_mutex_unlock(&l->cb_mu);
    /* After the work has stopped, so the next leader never overlaps with us. */
    if (l->release_on_cancel && holds) release(l);
    leader_free(l);
}

int tn_leader_is_leader(struct tn_leader *l)
{
    pthread_mutex_lock(&l->mu);
    /* Exact even if the watchdog has not run yet. */
    int r = l->leading && mono_ns() < l->valid_until_ns;
    pthread_mutex_unlock(&l->mu);
    return r;
}

char *tn_leader_holder(struct tn_leader *l)
{
    pthread_mutex_lock(&l->mu);
    char *h = l->holder ? strdup(l->holder) : NULL;
    pthread_mutex_unlock(&l->mu);
    return h;
}

const char *tn_leader_identity(const struct tn_leader *l)
{
    return l->identity;
}
