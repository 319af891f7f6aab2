/* Tests of the informer (pkg/kube/informer.c) against a real tandem-apiserver: every change seen
 * exactly once and in order, recovery across server restarts, relist after an expired
 * resourceVersion (deletes during the gap delivered), a silently cut stream noticed by the idle
 * timer (through a TCP forwarder the test controls), indexes, selectors and resync. */
#include <check.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "kube_testutil.h"

static const struct tn_kube_gvr CM = {"", "v1", "configmaps"};
static const struct tn_kube_gvr PODS = {"", "v1", "pods"};
static const struct tn_kube_gvr NSS = {"", "v1", "namespaces"};

static struct tsrv g_srv;

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t dl_ = tn_mono_ms() + (ms);                                                         \
        while (!(cond) && tn_mono_ms() < dl_)                                                      \
            tsleep_ms(10);                                                                         \
        ck_assert_msg((cond), "timed out waiting for " #cond);                                     \
    } while (0)

static struct tn_kube_client *client_for(const char *base)
{
    struct tn_kube_client_opts o = {.qps = 1e6, .burst = 1000000};
    struct tn_err err = {0};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(base), &o, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

static json_t *cm_new(const char *name, const char *v)
{
    return json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "data", "v", v);
}

static void must_create(struct tn_kube_client *c, const char *ns, json_t *obj)
{
    struct tn_err err = {0};
    int rc = tn_kube_create(c, &CM, ns, obj, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    json_decref(obj);
}

static void must_set(struct tn_kube_client *c, const char *name, const char *v)
{
    struct tn_err err = {0};
    json_t *p = json_pack("{s:{s:s}}", "data", "v", v);
    int rc = tn_kube_patch(c, &CM, "default", name, TN_KUBE_PATCH_MERGE, p, NULL, NULL, NULL, NULL,
                           &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    json_decref(p);
}

static void must_delete(struct tn_kube_client *c, const char *name)
{
    struct tn_err err = {0};
    int rc = tn_kube_delete(c, &CM, "default", name, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

/* ---- recorder: what handlers saw, per object "t-<n>" ------------------------------------ */

#define NOBJ 1000

struct rec {
    pthread_mutex_t mu;
    int adds, updates, deletes, resyncs;
    int violations; /* out-of-order or duplicate deliveries */
    long long last_rv;
    int check_global_order;
    char state[NOBJ * 2]; /* 0 never seen, 1 live, 2 deleted */
    long long rv[NOBJ * 2];
    char first_violation[256];
};

static int rec_idx(const json_t *o)
{
    const char *n = tn_json_str(o, "metadata.name", "");
    if (strncmp(n, "t-", 2) != 0) return -1;
    int i = atoi(n + 2);
    return i >= 0 && i < NOBJ * 2 ? i : -1;
}

static long long rv_of(const json_t *o)
{
    return atoll(tn_json_str(o, "metadata.resourceVersion", "0"));
}

static void violation(struct rec *r, const char *what, const json_t *o)
{
    if (!r->violations++)
        snprintf(r->first_violation, sizeof r->first_violation, "%s %s rv %lld", what,
                 tn_json_str(o, "metadata.name", ""), rv_of(o));
}

static void global_order(struct rec *r, const json_t *o, const char *what)
{
    if (!r->check_global_order) return;
    if (rv_of(o) <= r->last_rv) violation(r, what, o);
    r->last_rv = rv_of(o);
}

static void rec_add(const json_t *o, void *arg)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->adds++;
    int i = rec_idx(o);
    if (i >= 0) {
        if (r->state[i] == 1) violation(r, "add of a live object", o);
        r->state[i] = 1;
        r->rv[i] = rv_of(o);
        global_order(r, o, "add");
    }
    pthread_mutex_unlock(&r->mu);
}

static void rec_update(const json_t *old, const json_t *o, void *arg)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    int i = rec_idx(o);
    if (old == o) {
        r->resyncs++;
    } else {
        r->updates++;
        if (i >= 0) {
            if (r->state[i] != 1) violation(r, "update of an unknown object", o);
            if (rv_of(o) <= r->rv[i] || rv_of(old) != r->rv[i]) violation(r, "update order", o);
            r->rv[i] = rv_of(o);
            global_order(r, o, "update");
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void rec_del(const json_t *o, void *arg)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->deletes++;
    int i = rec_idx(o);
    if (i >= 0) {
        if (r->state[i] != 1) violation(r, "delete of an unknown object", o);
        r->state[i] = 2;
        global_order(r, o, "delete");
    }
    pthread_mutex_unlock(&r->mu);
}

static int rget(struct rec *r, int *f)
{
    pthread_mutex_lock(&r->mu);
    int v = *f;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static struct tn_informer *informer_for(struct tn_kube_client *c, struct rec *r,
                                        const struct tn_informer_opts *o)
{
    struct tn_err err = {0};
    struct tn_informer *inf = tn_informer_new(c, &CM, o, &err);
    ck_assert_msg(inf != NULL, "%s", err.msg);
    struct tn_informer_handlers h = {rec_add, rec_update, rec_del, r};
    ck_assert_int_eq(tn_informer_add_handlers(inf, &h), 0);
    ck_assert_int_eq(tn_informer_start(inf, &err), 0);
    ck_assert_msg(tn_informer_wait_synced(inf, 10000), "informer did not sync");
    return inf;
}

/* The informer's cache equals the server's list (names and resourceVersions). */
static void assert_cache_matches(struct tn_informer *inf, struct tn_kube_client *c)
{
    struct tn_err err = {0};
    json_t *l = NULL;
    ck_assert_msg(tn_kube_list(c, &CM, "default", NULL, &l, NULL, &err) == 0, "%s", err.msg);
    json_t *items = json_object_get(l, "items");
    size_t i;
    json_t *it;
    int64_t dl = tn_mono_ms() + 10000; /* the last events may still be in flight */
    while (tn_informer_len(inf) != json_array_size(items) && tn_mono_ms() < dl)
        tsleep_ms(20);
    ck_assert_int_eq(tn_informer_len(inf), json_array_size(items));
    json_array_foreach(items, i, it)
    {
        const char *name = tn_json_str(it, "metadata.name", "");
        json_t *got = NULL;
        while (tn_mono_ms() < dl) {
            got = tn_informer_get(inf, "default", name);
            if (got && strcmp(tn_json_str(got, "metadata.resourceVersion", ""),
                              tn_json_str(it, "metadata.resourceVersion", "")) == 0)
                break;
            json_decref(got);
            got = NULL;
            tsleep_ms(20);
        }
        ck_assert_msg(got != NULL, "%s missing or stale in the cache", name);
        json_decref(got);
    }
    json_decref(l);
}

/* ---- exactly once, in order ------------------------------------------------------------- */

struct writer {
    struct tn_kube_client *c;
    int id, nthreads;
    int failed;
    char err[TN_ERR_MSG_MAX];
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct tn_err err = {0};
    char name[32];
    for (int phase = 0; phase < 3 && !w->failed; phase++) {
        for (int i = w->id; i < NOBJ && !w->failed; i += w->nthreads) {
            snprintf(name, sizeof name, "t-%d", i);
            int rc = 0;
            if (phase == 0) {
                json_t *o = cm_new(name, "1");
                rc = tn_kube_create(w->c, &CM, "default", o, NULL, NULL, &err);
                json_decref(o);
            } else if (phase == 1) {
                json_t *p = json_pack("{s:{s:s}}", "data", "v", "2");
                rc = tn_kube_patch(w->c, &CM, "default", name, TN_KUBE_PATCH_MERGE, p, NULL, NULL,
                                   NULL, NULL, &err);
                json_decref(p);
            } else if (i % 2) {
                rc = tn_kube_delete(w->c, &CM, "default", name, NULL, NULL, &err);
            }
            if (rc) {
                w->failed = 1;
                snprintf(w->err, sizeof w->err, "%s", err.msg);
            }
        }
    }
    return NULL;
}

START_TEST(test_exactly_once_in_order)
{
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 1), 0);
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    struct tn_kube_client *c = client_for(g_srv.base);
    struct tn_kube_client *wc = client_for(g_srv.base);
    struct rec *r = rec_new();
    r->check_global_order = 1;
    struct tn_informer_opts o = {.namespace_ = "default"};
    struct tn_informer *inf = informer_for(c, r, &o);

    enum { NW = 4 };
    struct writer ws[NW];
    pthread_t th[NW];
    for (int i = 0; i < NW; i++) {
        ws[i] = (struct writer){.c = wc, .id = i, .nthreads = NW};
        pthread_create(&th[i], NULL, writer_main, &ws[i]);
    }
    for (int i = 0; i < NW; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(!ws[i].failed, "writer %d: %s", i, ws[i].err);
    }
    WAIT_FOR(rget(r, &r->deletes) >= NOBJ / 2 && rget(r, &r->updates) >= NOBJ, 30000);
    tsleep_ms(300); /* nothing more may arrive */
    ck_assert_int_eq(rget(r, &r->adds), NOBJ);
    ck_assert_int_eq(rget(r, &r->updates), NOBJ);
    ck_assert_int_eq(rget(r, &r->deletes), NOBJ / 2);
    ck_assert_msg(rget(r, &r->violations) == 0, "%d violations, first: %s", r->violations,
                  r->first_violation);
    assert_cache_matches(inf, wc);
    struct tn_informer_stats st;
    tn_informer_stats(inf, &st);
    ck_assert_int_eq(st.lists, 1);
    ck_assert_int_eq(st.failures, 0);

    tn_informer_free(inf);
    tn_kube_client_free(c);
    tn_kube_client_free(wc);
    free(r);
    tsrv_kill(&g_srv);
}
END_TEST

/* ---- server restart ---------------------------------------------------------------------- */

START_TEST(test_server_restart)
{
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 0), 0); /* file database: survives the restart */
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    struct tn_kube_client *c = client_for(g_srv.base);
    struct tn_kube_client *wc = client_for(g_srv.base);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        must_create(wc, "default", cm_new(name, "1"));
    }
    struct rec *r = rec_new();
    struct tn_informer_opts o = {.namespace_ = "default"};
    struct tn_informer *inf = informer_for(c, r, &o);
    ck_assert_int_eq(rget(r, &r->adds), 20);

    tsrv_kill(&g_srv);
    tsleep_ms(300);
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    for (int i = 20; i < 30; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        must_create(wc, "default", cm_new(name, "1"));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        must_set(wc, name, "2");
    }
    for (int i = 5; i < 10; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        must_delete(wc, name);
    }
    WAIT_FOR(rget(r, &r->adds) == 30 && rget(r, &r->updates) == 5 && rget(r, &r->deletes) == 5,
             20000);
    ck_assert_msg(rget(r, &r->violations) == 0, "first violation: %s", r->first_violation);
    assert_cache_matches(inf, wc);
    struct tn_informer_stats st;
    tn_informer_stats(inf, &st);
    ck_assert_int_ge(st.watches, 2);

    tn_informer_free(inf);
    tn_kube_client_free(c);
    tn_kube_client_free(wc);
    free(r);
    tsrv_kill(&g_srv);
}
END_TEST

/* ---- a TCP forwarder the test controls ---------------------------------------------------- */

enum { FWD_PASS = 0, FWD_CUT = 1, FWD_BLOCK = 2 };

struct fwd {
    int lfd, port, target;
    atomic_int mode;
    atomic_int quit;
    atomic_int accepted;
    pthread_t thr;
};

static void *fwd_main(void *arg)
{
    struct fwd *f = arg;
    enum { MAXP = 64 };
    int a[MAXP], b[MAXP], np = 0;
    while (!atomic_load(&f->quit)) {
        int mode = atomic_load(&f->mode);
        if (mode == FWD_BLOCK) { /* drop every connection */
            for (int i = 0; i < np; i++) {
                close(a[i]);
                close(b[i]);
            }
            np = 0;
        }
        struct pollfd p[1 + 2 * MAXP];
        p[0] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        for (int i = 0; i < np; i++) {
            short ev = mode == FWD_PASS ? POLLIN : 0; /* cut: leave the bytes where they are */
            p[1 + 2 * i] = (struct pollfd){.fd = a[i], .events = ev};
            p[2 + 2 * i] = (struct pollfd){.fd = b[i], .events = ev};
        }
        if (poll(p, (nfds_t)(1 + 2 * np), 50) < 0) continue;
        mode = atomic_load(&f->mode); /* a cut ordered during poll applies now */
        int polled = np;              /* pairs accepted below were not polled yet */
        if (p[0].revents & POLLIN) {
            int cfd = accept(f->lfd, NULL, NULL);
            if (cfd >= 0) {
                atomic_fetch_add(&f->accepted, 1);
                int sfd = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons((uint16_t)f->target),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                if (mode == FWD_BLOCK || np >= MAXP || sfd < 0 ||
                    connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0) {
                    close(cfd);
                    if (sfd >= 0) close(sfd);
                } else {
                    a[np] = cfd;
                    b[np] = sfd;
                    np++;
                }
            }
        }
        if (mode != FWD_PASS) continue;
        for (int i = 0; i < polled; i++) {
            int dead = 0;
            for (int dir = 0; dir < 2 && !dead; dir++) {
                struct pollfd *pp = &p[1 + 2 * i + dir];
                if (pp->fd < 0 || !(pp->revents & (POLLIN | POLLHUP | POLLERR))) continue;
                char buf[16384];
                ssize_t n = read(dir ? b[i] : a[i], buf, sizeof buf);
                if (n <= 0) {
                    dead = 1;
                    break;
                }
                ssize_t off = 0;
                while (off < n) {
                    ssize_t w = write(dir ? a[i] : b[i], buf + off, (size_t)(n - off));
                    if (w <= 0) {
                        dead = 1;
                        break;
                    }
                    off += w;
                }
            }
            if (dead) {
                close(a[i]);
                close(b[i]);
                /* keep unpolled pairs (index >= polled) out of this pass */
                a[i] = a[polled - 1];
                b[i] = b[polled - 1];
                p[1 + 2 * i] = p[1 + 2 * (polled - 1)];
                p[2 + 2 * i] = p[2 + 2 * (polled - 1)];
                a[polled - 1] = a[np - 1];
                b[polled - 1] = b[np - 1];
                np--;
                polled--;
                i--;
            }
        }
    }
    for (int i = 0; i < np; i++) {
        close(a[i]);
        close(b[i]);
    }
    return NULL;
}

static void fwd_start(struct fwd *f, int target)
{
    memset(f, 0, sizeof *f);
    f->target = target;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(f->lfd, 64), 0);
    getsockname(f->lfd, (struct sockaddr *)&a, &l);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->thr, NULL, fwd_main, f);
}

static void fwd_stop(struct fwd *f)
{
    atomic_store(&f->quit, 1);
    pthread_join(f->thr, NULL);
    close(f->lfd);
}

/* ---- expired resourceVersion -> relist ---------------------------------------------------- */

/* _i: 0 = parsed json_t storage, 1 = compact-text storage */
START_TEST(test_expired_relist)
{
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 0), 0);
    tsrv_arg(&g_srv, "--watch-history");
    tsrv_arg(&g_srv, "10");
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    struct fwd f;
    fwd_start(&f, g_srv.port);
    char via[64];
    snprintf(via, sizeof via, "http://127.0.0.1:%d", f.port);
    struct tn_kube_client *c = client_for(via);
    struct tn_kube_client *wc = client_for(g_srv.base);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        must_create(wc, "default", cm_new(name, "1"));
    }
    struct rec *r = rec_new();
    struct tn_informer_opts o = {.namespace_ = "default", .store_text = _i};
    struct tn_informer *inf = informer_for(c, r, &o);
    ck_assert_int_eq(rget(r, &r->adds), 20);

    /* the informer cannot reach the server while it restarts and 50 writes happen */
    atomic_store(&f.mode, FWD_BLOCK);
    TN_DEBUG("test: blocked");
    tsrv_kill(&g_srv);
    TN_DEBUG("test: killed");
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    TN_DEBUG("test: restarted");
    for (int i = 20; i < 40; i++) { /* 20 creates */
        snprintf(name, sizeof name, "t-%d", i);
        must_create(wc, "default", cm_new(name, "1"));
    }
    for (int i = 0; i < 10; i++) { /* 10 updates */
        snprintf(name, sizeof name, "t-%d", i);
        must_set(wc, name, "2");
    }
    for (int i = 10; i < 30; i++) { /* 20 deletes, 10 of objects the informer never saw */
        snprintf(name, sizeof name, "t-%d", i);
        must_delete(wc, name);
    }
    atomic_store(&f.mode, FWD_PASS);
    TN_DEBUG("test: unblocked");
    /* adds: 20 + the 10 survivors of t-30..39; deletes: t-10..19 only */
    int64_t dl = tn_mono_ms() + 25000;
    while (!(rget(r, &r->adds) == 30 && rget(r, &r->updates) == 10 && rget(r, &r->deletes) == 10) &&
           tn_mono_ms() < dl)
        tsleep_ms(20);
    struct tn_informer_stats st;
    tn_informer_stats(inf, &st);
    ck_assert_msg(
        rget(r, &r->adds) == 30 && rget(r, &r->updates) == 10 && rget(r, &r->deletes) == 10,
        "adds %d updates %d deletes %d; lists %d watches %d failures %d expired %d", r->adds,
        r->updates, r->deletes, (int)st.lists, (int)st.watches, (int)st.failures, (int)st.expired);
    ck_assert_msg(rget(r, &r->violations) == 0, "first violation: %s", r->first_violation);
    assert_cache_matches(inf, wc);
    ck_assert_int_ge(st.expired, 1);
    ck_assert_int_ge(st.lists, 2);

    /* and the watch after the relist works */
    must_create(wc, "default", cm_new("t-100", "1"));
    WAIT_FOR(rget(r, &r->adds) == 31, 10000);

    tn_informer_free(inf);
    tn_kube_client_free(c);
    tn_kube_client_free(wc);
    fwd_stop(&f);
    free(r);
    tsrv_kill(&g_srv);
}
END_TEST

/* ---- silently cut stream ------------------------------------------------------------------ */

START_TEST(test_cut_stream)
{
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 1), 0);
    tsrv_arg(&g_srv, "--bookmark-interval");
    tsrv_arg(&g_srv, "1");
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    struct fwd f;
    fwd_start(&f, g_srv.port);
    char via[64];
    snprintf(via, sizeof via, "http://127.0.0.1:%d", f.port);
    struct tn_kube_client *c = client_for(via);
    struct tn_kube_client *wc = client_for(g_srv.base);
    struct rec *r = rec_new();
    struct tn_informer_opts o = {.namespace_ = "default", .idle_timeout_ms = 2000};
    struct tn_informer *inf = informer_for(c, r, &o);
    must_create(wc, "default", cm_new("t-0", "1"));
    WAIT_FOR(rget(r, &r->adds) == 1, 5000);

    /* healthy stream with bookmarks every second: no idle end */
    tsleep_ms(2500);
    struct tn_informer_stats st;
    tn_informer_stats(inf, &st);
    ck_assert_int_eq(st.watches, 1);
    ck_assert_int_eq(st.failures, 0);

    atomic_store(&f.mode, FWD_CUT);
    tsleep_ms(100); /* the forwarder's loop has seen it */
    must_create(wc, "default", cm_new("t-1", "1"));
    int64_t t0 = tn_mono_ms();
    for (;;) {
        tn_informer_stats(inf, &st);
        if (st.failures >= 1) break;
        ck_assert_msg(tn_mono_ms() - t0 < 6000, "the dead stream went unnoticed");
        tsleep_ms(20);
    }
    /* the idle timer (2 s since the last bookmark, <= 1 s before the cut), not an error */
    ck_assert_int_ge(tn_mono_ms() - t0, 900);
    ck_assert_int_eq(rget(r, &r->adds), 1);
    atomic_store(&f.mode, FWD_PASS);
    WAIT_FOR(rget(r, &r->adds) == 2, 15000); /* the change made during the cut */
    must_create(wc, "default", cm_new("t-2", "1"));
    WAIT_FOR(rget(r, &r->adds) == 3, 10000);
    ck_assert_int_ge(atomic_load(&f.accepted), 2);
    ck_assert_int_eq(rget(r, &r->violations), 0);

    tn_informer_free(inf);
    tn_kube_client_free(c);
    tn_kube_client_free(wc);
    fwd_stop(&f);
    free(r);
    tsrv_kill(&g_srv);
}
END_TEST

/* ---- indexes, selectors, resync ---------------------------------------------------------- */

static void idx_color(const json_t *obj, struct tn_informer_index_values *v, void *arg)
{
    const char *c = tn_json_str(obj, "data.color", NULL);
    if (c) tn_informer_index_values_add(v, c);
}

static int count_cb(const json_t *o, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int names_in(json_t *arr, const char *want)
{
    /* want: space-separated names, all and only these */
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        size_t i;
        json_t *it;
        int found = 0;
        json_array_foreach(arr, i, it)
        {
            if (strcmp(tn_json_str(it, "metadata.name", ""), t) == 0) found = 1;
        }
        if (!found) return 0;
        n++;
    }
    return json_array_size(arr) == n;
}

static json_t *labelled(const char *name, const char *app, const char *color, const char *owner)
{
    json_t *o = cm_new(name, "1");
    json_object_set_new(json_object_get(o, "metadata"), "labels", json_pack("{s:s}", "app", app));
    json_object_set_new(json_object_get(o, "data"), "color", json_string(color));
    if (owner)
        json_object_set_new(json_object_get(o, "metadata"), "ownerReferences",
                            json_pack("[{s:s,s:s,s:s,s:s}]", "apiVersion", "v1", "kind",
                                      "ConfigMap", "name", "owner", "uid", owner));
    return o;
}

START_TEST(test_indexes_selectors_resync)
{
    ck_assert_int_eq(tsrv_init(&g_srv, 0, 1), 0);
    ck_assert_int_eq(tsrv_start(&g_srv), 0);
    struct tn_kube_client *c = client_for(g_srv.base);
    struct tn_err err = {0};
    json_t *ns = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                           "name", "other");
    ck_assert_int_eq(tn_kube_create(c, &NSS, NULL, ns, NULL, NULL, &err), 0);
    json_decref(ns);
    json_t *owner = NULL;
    json_t *oo = cm_new("owner", "1");
    ck_assert_int_eq(tn_kube_create(c, &CM, "default", oo, &owner, NULL, &err), 0);
    json_decref(oo);
    const char *uid = tn_json_str(owner, "metadata.uid", "");
    must_create(c, "default", labelled("a1", "a", "red", uid));
    must_create(c, "default", labelled("a2", "a", "blue", NULL));
    must_create(c, "default", labelled("b1", "b", "red", uid));
    must_create(c, "other", labelled("a3", "a", "red", NULL));

    /* all namespaces, custom index, resync */
    struct tn_informer_opts o = {.resync_ms = 300};
    struct tn_informer *inf = tn_informer_new(c, &CM, &o, &err);
    ck_assert_ptr_nonnull(inf);
    ck_assert_int_eq(tn_informer_add_index(inf, "color", idx_color, NULL), 0);
    ck_assert_int_eq(tn_informer_add_index(inf, "color", idx_color, NULL), TN_EEXIST);
    struct rec *r = rec_new();
    struct tn_informer_handlers h = {rec_add, rec_update, rec_del, r};
    tn_informer_add_handlers(inf, &h);
    ck_assert_int_eq(tn_informer_has_synced(inf), 0);
    ck_assert_int_eq(tn_informer_start(inf, &err), 0);
    ck_assert_int_eq(tn_informer_add_index(inf, "late", idx_color, NULL), TN_EINVAL);
    ck_assert(tn_informer_wait_synced(inf, 10000));
    ck_assert_int_eq(tn_informer_len(inf), 5);

    json_t *a;
    a = tn_informer_by_index(inf, TN_INFORMER_INDEX_NAMESPACE, "other");
    ck_assert(names_in(a, "a3"));
    json_decref(a);
    a = tn_informer_by_index(inf, TN_INFORMER_INDEX_LABEL, "app=a");
    ck_assert(names_in(a, "a1 a2 a3"));
    json_decref(a);
    a = tn_informer_by_index(inf, TN_INFORMER_INDEX_OWNER, uid);
    ck_assert(names_in(a, "a1 b1"));
    json_decref(a);
    a = tn_informer_by_index(inf, "color", "red");
    ck_assert(names_in(a, "a1 b1 a3"));
    json_decref(a);
    a = tn_informer_by_index(inf, "color", "green");
    ck_assert_int_eq(json_array_size(a), 0);
    json_decref(a);
    ck_assert_ptr_null(tn_informer_by_index(inf, "nope", "x"));
    int n = 0;
    ck_assert_int_eq(tn_informer_foreach(inf, TN_INFORMER_INDEX_LABEL, "app=b", count_cb, &n), 1);
    ck_assert_int_eq(n, 1);
    n = 0;
    ck_assert_int_eq(tn_informer_foreach(inf, NULL, NULL, count_cb, &n), 5);
    json_t *g = tn_informer_get(inf, "other", "a3");
    ck_assert_str_eq(tn_json_str(g, "data.color", ""), "red");
    json_decref(g);
    ck_assert_ptr_null(tn_informer_get(inf, "default", "a3"));

    /* an update moves the object between index buckets; a delete removes it */
    json_t *p = json_pack("{s:{s:{s:s}},s:{s:s}}", "metadata", "labels", "app", "b", "data",
                          "color", "green");
    ck_assert_int_eq(tn_kube_patch(c, &CM, "default", "a2", TN_KUBE_PATCH_MERGE, p, NULL, NULL,
                                   NULL, NULL, &err),
                     0);
    json_decref(p);
    must_delete(c, "b1");
    int64_t dl = tn_mono_ms() + 5000;
    for (;;) {
        json_t *x = tn_informer_by_index(inf, TN_INFORMER_INDEX_LABEL, "app=b");
        int ok = names_in(x, "a2");
        json_decref(x);
        if (ok || tn_mono_ms() > dl) break;
        tsleep_ms(20);
    }
    a = tn_informer_by_index(inf, TN_INFORMER_INDEX_LABEL, "app=b");
    ck_assert(names_in(a, "a2"));
    json_decref(a);
    a = tn_informer_by_index(inf, "color", "red");
    ck_assert(names_in(a, "a1 a3"));
    json_decref(a);
    a = tn_informer_by_index(inf, "color", "green");
    ck_assert(names_in(a, "a2"));
    json_decref(a);
    a = tn_informer_by_index(inf, TN_INFORMER_INDEX_OWNER, uid);
    ck_assert(names_in(a, "a1"));
    json_decref(a);

    /* resync re-delivers cached objects as update(obj, obj) */
    WAIT_FOR(rget(r, &r->resyncs) >= 8, 3000);
    struct tn_informer_stats st;
    tn_informer_stats(inf, &st);
    ck_assert_int_ge(st.resyncs, 8);
    tn_informer_free(inf);

    /* a label selector restricts the cache; field selector too */
    struct tn_informer_opts so = {.label_selector = "app=a", .namespace_ = "default"};
    struct rec *r2 = rec_new();
    inf = informer_for(c, r2, &so);
    a = tn_informer_list(inf);
    ck_assert(names_in(a, "a1"));
    json_decref(a);
    tn_informer_free(inf);
    struct tn_informer_opts fo = {.field_selector = "metadata.name=a3"};
    inf = informer_for(c, r2, &fo);
    a = tn_informer_list(inf);
    ck_assert(names_in(a, "a3"));
    json_decref(a);
    tn_informer_free(inf);

    /* node index on pods */
    json_t *pod = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:[{s:s,s:s}]}}", "apiVersion", "v1", "kind",
                            "Pod", "metadata", "name", "p1", "spec", "nodeName", "node-1",
                            "containers", "name", "c", "image", "busybox");
    int rc = tn_kube_create(c, &PODS, "default", pod, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    json_decref(pod);
    struct tn_informer *pinf = tn_informer_new(c, &PODS, NULL, &err);
    ck_assert_int_eq(tn_informer_start(pinf, &err), 0);
    ck_assert(tn_informer_wait_synced(pinf, 10000));
    a = tn_informer_by_index(pinf, TN_INFORMER_INDEX_NODE, "node-1");
    ck_assert(names_in(a, "p1"));
    json_decref(a);
    tn_informer_free(pinf);

    json_decref(owner);
    tn_kube_client_free(c);
    free(r);
    free(r2);
    tsrv_kill(&g_srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_informer");
    TCase *tc = tcase_create("informer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exactly_once_in_order);
    tcase_add_test(tc, test_server_restart);
    tcase_add_loop_test(tc, test_expired_relist, 0, 2);
    tcase_add_test(tc, test_cut_stream);
    tcase_add_test(tc, test_indexes_selectors_resync);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    tn_log_setup("kube_informer_test", getenv("TN_TEST_DEBUG") ? TN_LOG_DEBUG : TN_LOG_WARN, 0, 2);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
