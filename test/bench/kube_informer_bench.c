/* kube_informer_bench: starts tandem-apiserver (:memory:) on loopback and prints, as
 * `name: value unit` lines, the informer's event throughput while writer threads create 10,000
 * configmaps, the initial-sync rate of a fresh informer, the cache's memory per object beyond the
 * JSON text (RSS delta, and malloc's bytes in use, which fragmentation from the transient parsed
 * list does not blur), for parsed-json_t and compact-text storage, and small GETs per second
 * over one kept-alive connection.
 * A benchmark, not a test: exits 0 unless it failed to run. Usage: kube_informer_bench [N]. */
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/kube_testutil.h"
#include "base/json.h"
#include "base/log.h"
#include "kube/client.h"
#include "kube/informer.h"

static const struct tn_kube_gvr CM = {"", "v1", "configmaps"};

static atomic_long g_adds;

static void on_add(const json_t *o, void *arg)
{
    atomic_fetch_add(&g_adds, 1);
}

struct writer {
    struct tn_kube_client *c;
    int id, nthreads, n;
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char name[32];
    struct tn_err err = {0};
    for (int i = w->id; i < w->n && !w->failed; i += w->nthreads) {
        snprintf(name, sizeof name, "bench-%05d", i);
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s}},s:{s:s,s:s}}", "apiVersion", "v1",
                              "kind", "ConfigMap", "metadata", "name", name, "labels", "app",
                              "bench", "shard", w->id % 2 ? "odd" : "even", "data", "mode", "fast",
                              "payload", "0123456789abcdef0123456789abcdef");
        if (tn_kube_create(w->c, &CM, "default", o, NULL, NULL, &err) != 0) {
            fprintf(stderr, "kube_informer_bench: create %s: %s\n", name, err.msg);
            w->failed = 1;
        }
        json_decref(o);
    }
    return NULL;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* Bytes malloc has handed out and not got back (all arenas, chunk overhead included). */
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int sum_json(const json_t *o, void *arg)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) {
        *(size_t *)arg += strlen(s);
        free(s);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n <= 0) n = 10000;
    curl_global_init(CURL_GLOBAL_ALL);
    tn_log_setup("kube_informer_bench", TN_LOG_WARN, 0, 2);
    static struct tsrv srv;
    if (tsrv_init(&srv, 0, 1) != 0 || tsrv_start(&srv) != 0) {
        fprintf(stderr, "kube_informer_bench: cannot start tandem-apiserver (%s)\n", tsrv_bin());
        return 1;
    }
    struct tn_err err = {0};
    struct tn_kube_client_opts co = {.qps = 1e6, .burst = 1000000};
    struct tn_kube_client *c = tn_kube_client_new(tcfg_new(srv.base), &co, &err);
    struct tn_kube_client *wc = tn_kube_client_new(tcfg_new(srv.base), &co, &err);
    if (!c || !wc) {
        fprintf(stderr, "kube_informer_bench: client: %s\n", err.msg);
        return 1;
    }
    int rc = 1;

    /* 1. watch throughput while writers create n objects */
    struct tn_informer_opts io = {.namespace_ = "default"};
    struct tn_informer *inf = tn_informer_new(c, &CM, &io, &err);
    struct tn_informer_handlers h = {.add = on_add};
    tn_informer_add_handlers(inf, &h);
    if (tn_informer_start(inf, &err) != 0 || !tn_informer_wait_synced(inf, 10000)) {
        fprintf(stderr, "kube_informer_bench: informer did not sync: %s\n", err.msg);
        goto out;
    }
    enum { NW = 8 };
    struct writer ws[NW];
    pthread_t th[NW];
    int64_t t0 = tn_mono_ns();
    for (int i = 0; i < NW; i++) {
        ws[i] = (struct writer){.c = wc, .id = i, .nthreads = NW, .n = n};
        pthread_create(&th[i], NULL, writer_main, &ws[i]);
    }
    int failed = 0;
    for (int i = 0; i < NW; i++) {
        pthread_join(th[i], NULL);
        failed |= ws[i].failed;
    }
    int64_t t_written = tn_mono_ns();
    if (failed) goto out;
    int64_t dl = tn_mono_ms() + 120000;
    while (atomic_load(&g_adds) < n && tn_mono_ms() < dl)
        tsleep_ms(1);
    int64_t t_seen = tn_mono_ns();
    if (atomic_load(&g_adds) < n) {
        fprintf(stderr, "kube_informer_bench: informer saw %ld of %d adds\n", atomic_load(&g_adds),
                n);
        goto out;
    }
    double wsec = (double)(t_written - t0) / 1e9, ssec = (double)(t_seen - t0) / 1e9;
    printf("writer_creates_per_s: %.0f creates/s\n", n / wsec);
    printf("informer_watch_events_per_s: %.0f events/s\n", n / ssec);
    printf("informer_lag_after_last_write: %.1f ms\n", (double)(t_seen - t_written) / 1e6);
    tn_informer_free(inf);
    inf = NULL;

    /* 2. a fresh informer over n objects: initial sync rate and memory per cached object, with
     * parsed json_t storage (default) and with compact-text storage */
    for (int mode = 0; mode < 2; mode++) {
        const char *m = mode ? "text" : "json";
        malloc_trim(0);
        long rss0 = rss_bytes();
        size_t heap0 = heap_bytes();
        t0 = tn_mono_ns();
        struct tn_informer_opts mo = {.namespace_ = "default", .store_text = mode};
        inf = tn_informer_new(c, &CM, &mo, &err);
        if (tn_informer_start(inf, &err) != 0 || !tn_informer_wait_synced(inf, 60000)) {
            fprintf(stderr, "kube_informer_bench: informer (%s) did not sync\n", m);
            goto out;
        }
        double sync_s = (double)(tn_mono_ns() - t0) / 1e9;
        malloc_trim(0);
        long rss1 = rss_bytes();
        size_t heap1 = heap_bytes();
        size_t cached = tn_informer_len(inf), text = 0;
        int64_t tl = tn_mono_ns();
        json_t *all = tn_informer_list(inf);
        double list_ms = (double)(tn_mono_ns() - tl) / 1e6;
        json_decref(all);
        tn_informer_foreach(inf, NULL, NULL, sum_json, &text);
        double per_obj = cached ? (double)(rss1 - rss0) / (double)cached : 0;
        double json_avg = cached ? (double)text / (double)cached : 0;
        printf("%s.informer_initial_sync_objects_per_s: %.0f objects/s\n", m,
               (double)cached / sync_s);
        printf("%s.cache_objects: %zu objects\n", m, cached);
        printf("%s.cache_list_all_from_cache: %.1f ms\n", m, list_ms);
        printf("%s.cache_rss_per_object: %.0f bytes\n", m, per_obj);
        printf("%s.cache_json_text_per_object: %.0f bytes\n", m, json_avg);
        printf("%s.cache_overhead_per_object: %.0f bytes (RSS; target < 2048)\n", m,
               per_obj - json_avg);
        double heap_obj = cached ? ((double)heap1 - (double)heap0) / (double)cached : 0;
        printf("%s.cache_heap_per_object: %.0f bytes\n", m, heap_obj);
        printf("%s.cache_heap_overhead_per_object: %.0f bytes (malloc in use; target < 2048)\n", m,
               heap_obj - json_avg);
        tn_informer_free(inf);
        inf = NULL;
    }

    /* 3. small GETs, one at a time from a fresh client: one kept-alive connection */
    tn_kube_client_free(wc);
    wc = tn_kube_client_new(tcfg_new(srv.base), &co, &err);
    if (!wc) goto out;
    int ngets = 5000;
    t0 = tn_mono_ns();
    for (int i = 0; i < ngets; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-%05d", i % n);
        json_t *o = NULL;
        if (tn_kube_get(wc, &CM, "default", name, &o, NULL, &err) != 0) {
            fprintf(stderr, "kube_informer_bench: get: %s\n", err.msg);
            goto out;
        }
        json_decref(o);
    }
    double gsec = (double)(tn_mono_ns() - t0) / 1e9;
    printf("get_requests_per_s_one_connection: %.0f requests/s\n", ngets / gsec);
    printf("get_latency_mean: %.3f ms\n", gsec * 1000 / ngets);
    rc = 0;
out:
    tn_informer_free(inf);
    tn_kube_client_free(c);
    tn_kube_client_free(wc);
    tsrv_kill(&srv);
    return rc;
}
