/* Leader election against a real tandem-apiserver (one per test), with short timings (lease 3 s,
 * renew deadline 2 s, retry 0.5 s): exactly one leader, takeover after expiry and after release,
 * a leader cut off from the API stops by the renew deadline, and never two leaders at once
 * (both candidates sampled every 50 ms). */
#include "kube_testutil.h"

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "kube/client.h"
#include "kube/leader.h"

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>

#define LEASE_MS 3000
#define RENEW_MS 2000
#define RETRY_MS 500
/* candidates wait retry * (1 + rand * 1.2) */
#define MAX_RETRY_WAIT_MS (RETRY_MS * 22 / 10)

static struct tsrv srv;
static const struct tn_kube_gvr LEASES = {"coordination.k8s.io", "v1", "leases"};

static void setup(void)
{
    ck_assert_int_eq(tsrv_init(&srv, 0, 1), 0);
    ck_assert_msg(tsrv_start(&srv) == 0, "tandem-apiserver did not start (%s)", tsrv_bin());
}

static void teardown(void)
{
    tsrv_kill(&srv);
}

static struct tn_kube_client *client_to(int port)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct tn_kube_client_opts o = {.max_retries = -1, .timeout_ms = 2000};
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(url), &o, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

/* ---- candidates ---- */

struct cand {
    const char *id;
    struct tn_kube_client *client;
    struct tn_leader *le;
    atomic_int started, stopped;
    pthread_mutex_t mu;
    char new_leader[128];
};

static void on_started(void *arg)
{
    struct cand *c = arg;
    atomic_fetch_add(&c->started, 1);
}

static void on_stopped(void *arg)
{
    struct cand *c = arg;
    atomic_fetch_add(&c->stopped, 1);
}

static void on_new_leader(const char *id, void *arg)
{
    struct cand *c = arg;
    pthread_mutex_lock(&c->mu);
    snprintf(c->new_leader, sizeof c->new_leader, "%s", id);
    pthread_mutex_unlock(&c->mu);
}

static void cand_start(struct cand *c, const char *id, int port, int release, struct tn_metrics *m)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->id = id;
    c->client = client_to(port);
    struct tn_leader_opts o = {
        .client = c->client,
        .identity = id,
        .lease_namespace = "default",
        .lease_name = "tandem-test",
        .lease_duration_ms = LEASE_MS,
        .renew_deadline_ms = RENEW_MS,
        .retry_period_ms = RETRY_MS,
        .release_on_cancel = release,
        .metrics = m,
        .cb = {on_started, on_stopped, on_new_leader, c},
    };
    struct tn_err err = {0};
    c->le = tn_leader_start(&o, &err);
    ck_assert_msg(c->le != NULL, "%s", err.msg);
}

/* ---- sampler: both is_leader flags every 50 ms ---- */

struct sampler {
    pthread_mutex_t mu;
    struct cand *c[2]; /* NULL once stopped */
    atomic_int stop;
    atomic_int overlaps;
    atomic_int samples;
    pthread_t th;
};

static struct sampler smp;

static void *sampler_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&smp.stop)) {
        pthread_mutex_lock(&smp.mu);
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (smp.c[i] && tn_leader_is_leader(smp.c[i]->le)) n++;
        pthread_mutex_unlock(&smp.mu);
        if (n > 1) atomic_fetch_add(&smp.overlaps, 1);
        atomic_fetch_add(&smp.samples, 1);
        tsleep_ms(50);
    }
    return NULL;
}

static void sampler_start(struct cand *a, struct cand *b)
{
    memset(&smp, 0, sizeof smp);
    pthread_mutex_init(&smp.mu, NULL);
    smp.c[0] = a;
    smp.c[1] = b;
    ck_assert_int_eq(pthread_create(&smp.th, NULL, sampler_main, NULL), 0);
}

static void sampler_add(int i, struct cand *c)
{
    pthread_mutex_lock(&smp.mu);
    smp.c[i] = c;
    pthread_mutex_unlock(&smp.mu);
}

/* Stops candidate c (optionally releasing) and removes it from sampling first. */
static void cand_stop(struct cand *c)
{
    pthread_mutex_lock(&smp.mu);
    for (int i = 0; i < 2; i++)
        if (smp.c[i] == c) smp.c[i] = NULL;
    pthread_mutex_unlock(&smp.mu);
    if (c->le) tn_leader_stop(c->le);
    c->le = NULL;
    tn_kube_client_free(c->client);
    c->client = NULL;
}

static void sampler_finish(void)
{
    atomic_store(&smp.stop, 1);
    pthread_join(smp.th, NULL);
    ck_assert_int_gt(atomic_load(&smp.samples), 10);
    ck_assert_msg(atomic_load(&smp.overlaps) == 0, "two leaders at once in %d samples",
                  atomic_load(&smp.overlaps));
}

/* Waits until exactly one of a, b leads; returns it (NULL on timeout). */
static struct cand *wait_leader(struct cand *a, struct cand *b, long timeout_ms)
{
    int64_t dl = tn_mono_ms() + timeout_ms;
    while (tn_mono_ms() < dl) {
        int la = a && a->le && tn_leader_is_leader(a->le);
        int lb = b && b->le && tn_leader_is_leader(b->le);
        if (la && !lb) return a;
        if (lb && !la) return b;
        tsleep_ms(20);
    }
    return NULL;
}

static json_t *get_lease(void)
{
    struct tn_kube_client *c = client_to(srv.port);
    json_t *out = NULL;
    struct tn_err err = {0};
    int rc = tn_kube_get(c, &LEASES, "default", "tandem-test", &out, NULL, &err);
    tn_kube_client_free(c);
    ck_assert_msg(rc == 0, "get lease: %s", err.msg);
    return out;
}

static void assert_microtime(const char *s)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    ck_assert_msg(ok, "not a MicroTime: \"%s\"", s);
}

/* ---- tests ---- */

START_TEST(test_one_leader_then_takeover_after_expiry)
{
    static struct cand a, b;
    struct tn_metrics *m = tn_metrics_new();
    cand_start(&a, "cand-a", srv.port, 0, m);
    cand_start(&b, "cand-b", srv.port, 0, NULL);
    sampler_start(&a, &b);

    struct cand *lead = wait_leader(&a, &b, 5000);
    ck_assert_ptr_nonnull(lead);
    struct cand *other = lead == &a ? &b : &a;

    /* leadership is stable over several renewals and the record is complete */
    json_t *l1 = get_lease();
    tsleep_ms(1500);
    ck_assert_ptr_eq(wait_leader(&a, &b, 100), lead);
    json_t *l2 = get_lease();
    ck_assert_str_eq(tn_json_str(l2, "spec.holderIdentity", ""), lead->id);
    ck_assert_int_eq(tn_json_int(l2, "spec.leaseDurationSeconds", 0), 3);
    ck_assert_int_eq(tn_json_int(l2, "spec.leaseTransitions", -1), 0);
    assert_microtime(tn_json_str(l2, "spec.acquireTime", ""));
    assert_microtime(tn_json_str(l2, "spec.renewTime", ""));
    ck_assert_str_eq(tn_json_str(l1, "spec.acquireTime", "1"),
                     tn_json_str(l2, "spec.acquireTime", "2"));
    ck_assert_str_ne(tn_json_str(l1, "spec.renewTime", "1"),
                     tn_json_str(l2, "spec.renewTime", "1"));
    ck_assert_str_ne(tn_json_str(l1, "metadata.resourceVersion", "1"),
                     tn_json_str(l2, "metadata.resourceVersion", "1"));
    json_decref(l1);
    json_decref(l2);

    ck_assert_int_eq(atomic_load(&lead->started), 1);
    ck_assert_int_eq(atomic_load(&other->started), 0);
    pthread_mutex_lock(&other->mu);
    ck_assert_str_eq(other->new_leader, lead->id);
    pthread_mutex_unlock(&other->mu);
    char *h = tn_leader_holder(other->le);
    ck_assert_str_eq(h, lead->id);
    free(h);
    struct tn_metric *status =
        tn_metrics_gauge(m, "leader_election_master_status", "", (const char *[]){"name", NULL});
    const char *lv[] = {"tandem-test"};
    ck_assert_double_eq(tn_metric_value(status, lv), lead == &a ? 1 : 0);

    /* the leader goes away without releasing: the other waits out the lease */
    int64_t t0 = tn_mono_ms();
    cand_stop(lead);
    ck_assert_int_eq(atomic_load(&lead->stopped), 1);
    if (lead == &a) ck_assert_double_eq(tn_metric_value(status, lv), 0);
    ck_assert_ptr_eq(wait_leader(NULL, other, LEASE_MS + MAX_RETRY_WAIT_MS + 1500), other);
    int64_t dt = tn_mono_ms() - t0;
    ck_assert_msg(dt >= LEASE_MS - RETRY_MS - 300,
                  "took over after %lld ms, before the lease "
                  "expired",
                  (long long)dt);
    ck_assert_int_le(dt, LEASE_MS + MAX_RETRY_WAIT_MS + 1000);
    ck_assert_int_eq(atomic_load(&other->started), 1);
    json_t *l3 = get_lease();
    ck_assert_str_eq(tn_json_str(l3, "spec.holderIdentity", ""), other->id);
    ck_assert_int_eq(tn_json_int(l3, "spec.leaseTransitions", -1), 1);
    json_decref(l3);
    tsleep_ms(300);
    sampler_finish();
    cand_stop(other);
    ck_assert_int_eq(atomic_load(&other->stopped), 1);
    tn_metrics_free(m);
}
END_TEST

START_TEST(test_release_hands_over_at_once)
{
    static struct cand a, b;
    cand_start(&a, "cand-a", srv.port, 1, NULL);
    cand_start(&b, "cand-b", srv.port, 1, NULL);
    sampler_start(&a, &b);
    struct cand *lead = wait_leader(&a, &b, 5000);
    ck_assert_ptr_nonnull(lead);
    struct cand *other = lead == &a ? &b : &a;
    tsleep_ms(600);

    int64_t t0 = tn_mono_ms();
    cand_stop(lead); /* releases */
    json_t *l = get_lease();
    ck_assert_int_eq(tn_json_int(l, "spec.leaseTransitions", -1), 0);
    const char *holder = tn_json_str(l, "spec.holderIdentity", "");
    /* released, or already taken by the other */
    ck_assert_msg(!strcmp(holder, "") || !strcmp(holder, other->id), "holder %s", holder);
    json_decref(l);
    ck_assert_ptr_eq(wait_leader(NULL, other, MAX_RETRY_WAIT_MS + 1000), other);
    int64_t dt = tn_mono_ms() - t0;
    ck_assert_msg(dt < MAX_RETRY_WAIT_MS + 500, "takeover after release took %lld ms",
                  (long long)dt);
    l = get_lease();
    ck_assert_str_eq(tn_json_str(l, "spec.holderIdentity", ""), other->id);
    ck_assert_int_eq(tn_json_int(l, "spec.leaseTransitions", -1), 1);
    json_decref(l);
    sampler_finish();
    cand_stop(other);
    l = get_lease();
    ck_assert_str_eq(tn_json_str(l, "spec.holderIdentity", ""), "");
    json_decref(l);
}
END_TEST

/* ---- a TCP proxy that can be cut (a network partition for one candidate) ---- */

struct proxy {
    int lfd, port, upstream;
    atomic_int stop;
    pthread_t th;
    pthread_mutex_t mu;
    int fds[64][2];
    pthread_t relays[64];
    int n;
};

struct relay_arg {
    int a, b;
};

static void *relay_main(void *arg)
{
    struct relay_arg r = *(struct relay_arg *)arg;
    free(arg);
    char buf[16384];
    struct pollfd p[2] = {{r.a, POLLIN, 0}, {r.b, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, 1000) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents) continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0) goto out;
            int to = i == 0 ? r.b : r.a;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w <= 0) goto out;
                off += w;
            }
        }
    }
out:
    shutdown(r.a, SHUT_RDWR);
    shutdown(r.b, SHUT_RDWR);
    return NULL;
}

static void *proxy_main(void *arg)
{
    struct proxy *px = arg;
    while (!atomic_load(&px->stop)) {
        struct pollfd p = {px->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(px->lfd, NULL, NULL);
        if (c < 0) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)px->upstream),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        pthread_mutex_lock(&px->mu);
        if (u < 0 || px->n >= 64 || connect(u, (struct sockaddr *)&a, sizeof a) != 0) {
            pthread_mutex_unlock(&px->mu);
            close(c);
            if (u >= 0) close(u);
            continue;
        }
        struct relay_arg *ra = malloc(sizeof *ra);
        ra->a = c;
        ra->b = u;
        px->fds[px->n][0] = c;
        px->fds[px->n][1] = u;
        pthread_create(&px->relays[px->n], NULL, relay_main, ra);
        px->n++;
        pthread_mutex_unlock(&px->mu);
    }
    return NULL;
}

static void proxy_start(struct proxy *px, int upstream)
{
    memset(px, 0, sizeof *px);
    pthread_mutex_init(&px->mu, NULL);
    px->upstream = upstream;
    px->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    ck_assert_int_eq(bind(px->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(px->lfd, 16), 0);
    ck_assert_int_eq(getsockname(px->lfd, (struct sockaddr *)&a, &l), 0);
    px->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&px->th, NULL, proxy_main, px), 0);
}

/* Afterwards nothing listens on px->port and every proxied connection is reset. */
static void proxy_cut(struct proxy *px)
{
    atomic_store(&px->stop, 1);
    pthread_join(px->th, NULL);
    close(px->lfd);
    for (int i = 0; i < px->n; i++) {
        shutdown(px->fds[i][0], SHUT_RDWR);
        shutdown(px->fds[i][1], SHUT_RDWR);
    }
    for (int i = 0; i < px->n; i++) {
        pthread_join(px->relays[i], NULL);
        close(px->fds[i][0]);
        close(px->fds[i][1]);
    }
    px->n = 0;
}

START_TEST(test_partitioned_leader_steps_down_before_takeover)
{
    static struct cand a, b;
    static struct proxy px;
    proxy_start(&px, srv.port);
    cand_start(&a, "cand-a", px.port, 0, NULL);
    sampler_start(&a, NULL);
    ck_assert_ptr_eq(wait_leader(&a, NULL, 5000), &a);
    cand_start(&b, "cand-b", srv.port, 0, NULL);
    sampler_add(1, &b);
    tsleep_ms(1200);
    ck_assert_ptr_eq(wait_leader(&a, &b, 100), &a);

    int64_t t_cut = tn_mono_ms();
    proxy_cut(&px);
    /* still leading right after the first failures: the renew deadline has not passed */
    tsleep_ms(800);
    ck_assert_int_eq(tn_leader_is_leader(a.le), 1);
    /* but no longer once it has (its last renewal began before the cut) */
    int64_t dl = t_cut + RENEW_MS + 1000;
    while (tn_leader_is_leader(a.le) && tn_mono_ms() < dl)
        tsleep_ms(10);
    int64_t stepped = tn_mono_ms() - t_cut;
    ck_assert_int_eq(tn_leader_is_leader(a.le), 0);
    ck_assert_int_le(stepped, RENEW_MS + 300);
    /* the callback follows promptly (from the watchdog) */
    for (int i = 0; i < 50 && atomic_load(&a.stopped) == 0; i++)
        tsleep_ms(10);
    ck_assert_int_eq(atomic_load(&a.stopped), 1);

    /* b takes over only once the lease has expired on its clock */
    ck_assert_ptr_eq(wait_leader(&a, &b, LEASE_MS + MAX_RETRY_WAIT_MS + 1500), &b);
    int64_t dt = tn_mono_ms() - t_cut;
    ck_assert_int_ge(dt, LEASE_MS - RETRY_MS - 300);
    tsleep_ms(1000);
    ck_assert_int_eq(tn_leader_is_leader(a.le), 0);
    ck_assert_int_eq(atomic_load(&a.started), 1);
    sampler_finish();
    int64_t t_stop = tn_mono_ms();
    cand_stop(&a);
    ck_assert_int_lt(tn_mono_ms() - t_stop, 3000);
    ck_assert_int_eq(atomic_load(&a.stopped), 1); /* not called twice */
    cand_stop(&b);
}
END_TEST

START_TEST(test_hung_api_steps_down_at_deadline)
{
    static struct cand a;
    cand_start(&a, "cand-a", srv.port, 0, NULL);
    ck_assert_ptr_eq(wait_leader(&a, NULL, 5000), &a);
    tsleep_ms(700);
    /* The server freezes: requests hang rather than fail. */
    int64_t t0 = tn_mono_ms();
    kill(srv.pid, SIGSTOP);
    int64_t dl = t0 + RENEW_MS + 1000;
    while (tn_leader_is_leader(a.le) && tn_mono_ms() < dl)
        tsleep_ms(10);
    ck_assert_int_eq(tn_leader_is_leader(a.le), 0);
    ck_assert_int_le(tn_mono_ms() - t0, RENEW_MS + 300);
    for (int i = 0; i < 50 && atomic_load(&a.stopped) == 0; i++)
        tsleep_ms(10);
    ck_assert_int_eq(atomic_load(&a.stopped), 1);
    /* then it dies: nothing listens on its port any more */
    kill(srv.pid, SIGKILL);
    int st;
    waitpid(srv.pid, &st, 0);
    srv.pid = 0;
    tsleep_ms(RETRY_MS * 2);
    ck_assert_int_eq(tn_leader_is_leader(a.le), 0);
    ck_assert_int_eq(atomic_load(&a.started), 1);
    cand_stop(&a);
    ck_assert_int_eq(atomic_load(&a.stopped), 1);
}
END_TEST

START_TEST(test_unreachable_never_leads)
{
    static struct cand a;
    int port = tfree_port();
    cand_start(&a, "cand-a", port, 1, NULL);
    tsleep_ms(RENEW_MS);
    ck_assert_int_eq(tn_leader_is_leader(a.le), 0);
    ck_assert_int_eq(atomic_load(&a.started), 0);
    char *h = tn_leader_holder(a.le);
    ck_assert_ptr_null(h);
    int64_t t0 = tn_mono_ms();
    cand_stop(&a);
    ck_assert_int_lt(tn_mono_ms() - t0, 3000);
    ck_assert_int_eq(atomic_load(&a.stopped), 0);
}
END_TEST

START_TEST(test_bad_options)
{
    struct tn_err err = {0};
    struct tn_leader_opts o = {.client = (struct tn_kube_client *)1,
                               .lease_namespace = "default",
                               .lease_name = "x",
                               .lease_duration_ms = 1000,
                               .renew_deadline_ms = 2000};
    ck_assert_ptr_null(tn_leader_start(&o, &err));
    ck_assert_int_eq(err.code, TN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "renewDeadline"));
    o.lease_name = NULL;
    ck_assert_ptr_null(tn_leader_start(&o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "lease namespace and name"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_leader");
    TCase *tc = tcase_create("election");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_one_leader_then_takeover_after_expiry);
    tcase_add_test(tc, test_release_hands_over_at_once);
    tcase_add_test(tc, test_partitioned_leader_steps_down_before_takeover);
    tcase_add_test(tc, test_hung_api_steps_down_at_deadline);
    tcase_add_test(tc, test_unreachable_never_leads);
    suite_add_tcase(s, tc);
    TCase *to = tcase_create("options");
    tcase_add_test(to, test_bad_options);
    suite_add_tcase(s, to);
    return s;
}

int main(void)
{
    tn_log_setup("kube_leader_test", TN_LOG_WARN, 0, 2);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
