/* apiserver_bench: starts tandem-apiserver on 127.0.0.1 (sqlite file, then :memory:), installs a
 * small CRD and prints write throughput, watch delivery latency, list time and resident memory as
 * `name: value unit` lines, then a summary against the targets. A benchmark, not a test: a missed
 * target still exits 0; only a failure to run (server, CRD, transport) exits non-zero. */

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ITEMS_PATH "/apis/bench.tandem.io/v1/namespaces/default/items"
#define BODY_MAX ((size_t)512 << 20) /* cap on any response we keep in memory */
#define LINE_MAX_BYTES ((size_t)4 << 20)
#define REQ_TIMEOUT_S 60L
#define MAX_FIGS 128

struct opts {
    const char *server;
    long objects;
    long conns;
    long watchers;
    long events;
    long interval_us;
    long runs;
    long page_limit;
    int do_file;
    int do_memory;
};

/* Set by SIGINT/SIGTERM; every loop checks it so cleanup always runs. */
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_interrupted) {
    }
}

/* ---- figures ---------------------------------------------------------------------------- */

enum target_kind { T_NONE, T_GE, T_LT, T_EQ };

struct fig {
    char name[96];
    char unit[16];
    double value;
    int prec;
    enum target_kind kind;
    double target;
};

static struct fig g_figs[MAX_FIGS];
static int g_nfigs;

/* Prints one `mode.name: value unit` line at once (so partial runs still show figures) and keeps
 * it for the summary when it has a target. */
static void fig(const char *mode, const char *name, double v, int prec, const char *unit,
                enum target_kind kind, double target)
{
    printf("%s.%s: %.*f %s\n", mode, name, prec, v, unit);
    fflush(stdout);
    if (kind == T_NONE || g_nfigs >= MAX_FIGS) return;
    struct fig *f = &g_figs[g_nfigs++];
    snprintf(f->name, sizeof f->name, "%s.%s", mode, name);
    snprintf(f->unit, sizeof f->unit, "%s", unit);
    f->value = v;
    f->prec = prec;
    f->kind = kind;
    f->target = target;
}

static void print_summary(void)
{
    printf("\nsummary:\n");
    for (int i = 0; i < g_nfigs; i++) {
        const struct fig *f = &g_figs[i];
        int ok = 0;
        const char *op = "";
        switch (f->kind) {
        case T_GE:
            ok = f->value >= f->target;
            op = ">=";
            break;
        case T_LT:
            ok = f->value < f->target;
            op = "<";
            break;
        case T_EQ:
            ok = f->value == f->target;
            op = "==";
            break;
        case T_NONE:
            break;
        }
        char val[64], tgt[64];
        snprintf(val, sizeof val, "%.*f %s", f->prec, f->value, f->unit);
        snprintf(tgt, sizeof tgt, "%s %.*f", op, f->prec, f->target);
        printf("  %-36s %-20s target %-12s %s\n", f->name, val, tgt, ok ? "ok" : "MISS");
    }
    fflush(stdout);
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* Growable response buffer with a hard cap; curl write callback target. */
struct gbuf {
    char *p;
    size_t len, cap;
};

static size_t gbuf_write(char *data, size_t sz, size_t n, void *ud)
{
    struct gbuf *b = ud;
    size_t add = sz * n;
    if (b->len + add + 1 > BODY_MAX) return 0; /* aborts the transfer */
    if (b->len + add + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + add + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t pct(const int64_t *v, size_t n, double p)
{
    if (n == 0) return 0;
    size_t idx = (size_t)ceil(p / 100.0 * (double)n);
    if (idx == 0) idx = 1;
    if (idx > n) idx = n;
    return v[idx - 1];
}

static double median(double *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* VmRSS of pid in KiB, -1 if unreadable. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* utime+stime of pid in milliseconds, -1 if unreadable. */
static double cpu_ms(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* fields after comm: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* One keep-alive client: an easy handle reused for every request of one thread. */
struct client {
    CURL *h;
    struct curl_slist *hdr_json, *hdr_merge;
    struct gbuf body;
    char errbuf[CURL_ERROR_SIZE];
};

static int client_init(struct client *c)
{
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    if (!c->h) return -1;
    c->hdr_json = curl_slist_append(NULL, "Content-Type: application/json");
    c->hdr_json = curl_slist_append(c->hdr_json, "Expect:");
    c->hdr_merge = curl_slist_append(NULL, "Content-Type: application/merge-patch+json");
    c->hdr_merge = curl_slist_append(c->hdr_merge, "Expect:");
    if (!c->hdr_json || !c->hdr_merge) return -1;
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, REQ_TIMEOUT_S);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, gbuf_write);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->h, CURLOPT_PROXY, "");
    return 0;
}

static void client_free(struct client *c)
{
    if (c->h) curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdr_json);
    curl_slist_free_all(c->hdr_merge);
    free(c->body.p);
    memset(c, 0, sizeof *c);
}

/* Performs one request; the response body is in c->body. Returns the HTTP status, or -1 with
 * c->errbuf set on a transport error. method is "GET", "POST" or "PATCH" (merge patch). */
static long client_do(struct client *c, const char *method, const char *url, const char *body)
{
    long status = 0;
    c->body.len = 0;
    c->errbuf[0] = '\0';
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    } else {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER,
                         strcmp(method, "PATCH") == 0 ? c->hdr_merge : c->hdr_json);
    }
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK) {
        if (!c->errbuf[0]) snprintf(c->errbuf, sizeof c->errbuf, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* ---- server process ------------------------------------------------------------------------ */

struct server {
    pid_t pid;
    char dir[PATH_MAX];
    char data[PATH_MAX + 16];
    char log[PATH_MAX + 16];
    char base[128]; /* http://127.0.0.1:PORT */
};

static void server_stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st, reaped = 0;
        for (int i = 0; i < 100 && !reaped; i++) { /* up to 5 s for a clean stop */
            if (waitpid(s->pid, &st, WNOHANG) == s->pid)
                reaped = 1;
            else
                sleep_ms(50);
        }
        if (!reaped) {
            fprintf(stderr, "apiserver_bench: server %d ignored SIGTERM for 5 s; killing\n",
                    (int)s->pid);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
        }
        s->pid = 0;
    }
    if (s->dir[0]) {
        nftw(s->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
}

static void dump_log_tail(const struct server *s)
{
    FILE *f = fopen(s->log, "r");
    if (!f) return;
    char line[1024];
    fprintf(stderr, "apiserver_bench: server log %s:\n", s->log);
    int n = 0;
    while (fgets(line, sizeof line, f) && n++ < 40)
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* Starts the server with port 0 and learns the port from the kubeconfig it writes. data_mode
 * is "file" or "memory". Returns 0 once /readyz answers 200. */
static int server_start(struct server *s, const char *bin, const char *data_mode)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/tandem-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "apiserver_bench: mkdtemp %s: %s\n", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    if (strcmp(data_mode, "memory") == 0)
        snprintf(s->data, sizeof s->data, ":memory:");
    else
        snprintf(s->data, sizeof s->data, "%s/apiserver.db", s->dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    char kc[PATH_MAX + 16];
    snprintf(kc, sizeof kc, "%s/kubeconfig", s->dir);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "apiserver_bench: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */
        if (getppid() != parent) _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execl(bin, bin, "--listen", "127.0.0.1:0", "--data", s->data, "--write-kubeconfig", kc,
              "--log-level", "warn", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    s->pid = pid;

    int port = 0;
    for (int i = 0; i < 200 && !port && !g_interrupted; i++) { /* up to 10 s */
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "apiserver_bench: server exited during start (status %d)\n", st);
            s->pid = 0;
            dump_log_tail(s);
            return -1;
        }
        FILE *f = fopen(kc, "r");
        if (f) {
            char line[512];
            while (fgets(line, sizeof line, f))
                if (sscanf(line, " server: http://127.0.0.1:%d", &port) == 1) break;
            fclose(f);
        }
        if (!port) sleep_ms(50);
    }
    if (!port) {
        fprintf(stderr, "apiserver_bench: no port in %s after 10 s\n", kc);
        dump_log_tail(s);
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", port);

    struct client c;
    if (client_init(&c) != 0) return -1;
    char url[256];
    snprintf(url, sizeof url, "%s/readyz", s->base);
    long st = 0;
    for (int i = 0; i < 100 && st != 200 && !g_interrupted; i++) {
        st = client_do(&c, "GET", url, NULL);
        if (st != 200) sleep_ms(100);
    }
    client_free(&c);
    if (st != 200) {
        fprintf(stderr, "apiserver_bench: %s not ready after 10 s (last status %ld)\n", url, st);
        dump_log_tail(s);
        return -1;
    }
    return 0;
}

/* ---- phases -------------------------------------------------------------------------------- */

static const char CRD_JSON[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"items.bench.tandem.io\"},"
    "\"spec\":{\"group\":\"bench.tandem.io\",\"scope\":\"Namespaced\","
    "\"names\":{\"plural\":\"items\",\"singular\":\"item\",\"kind\":\"Item\","
    "\"listKind\":\"ItemList\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}}}]}}";

static int install_crd(const struct server *s)
{
    struct client c;
    int rc = -1;
    if (client_init(&c) != 0) goto out;
    char url[256];
    snprintf(url, sizeof url, "%s/apis/apiextensions.k8s.io/v1/customresourcedefinitions", s->base);
    long st = client_do(&c, "POST", url, CRD_JSON);
    if (st != 201 && st != 200) {
        fprintf(stderr, "apiserver_bench: creating the CRD: status %ld %s %.300s\n", st, c.errbuf,
                c.body.p ? c.body.p : "");
        goto out;
    }
    snprintf(url, sizeof url, "%s" ITEMS_PATH "?limit=1", s->base);
    for (int i = 0; i < 100 && !g_interrupted; i++) { /* up to 10 s until served */
        if ((st = client_do(&c, "GET", url, NULL)) == 200) {
            rc = 0;
            goto out;
        }
        sleep_ms(100);
    }
    fprintf(stderr, "apiserver_bench: items not served 10 s after the CRD (status %ld)\n", st);
out:
    client_free(&c);
    return rc;
}

/* Builds the ~300-byte create body of Item number i into buf. */
static void item_body(char *buf, size_t cap, long i)
{
    static const char pad[] = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123"
                              "456789abcdefghijklmnopqrstuv";
    snprintf(buf, cap,
             "{\"apiVersion\":\"bench.tandem.io/v1\",\"kind\":\"Item\",\"metadata\":{"
             "\"name\":\"item-%06ld\",\"labels\":{\"app\":\"bench\",\"shard\":\"s%ld\"}},"
             "\"spec\":{\"sentNs\":0,\"seq\":%ld,\"replicas\":3,"
             "\"image\":\"registry.example/bench/item:1.0\",\"payload\":\"%s\"}}",
             i, i % 16, i, pad);
}

struct writer_ctx {
    const struct server *s;
    long total;
    atomic_long *next;
    long ok, errors;
    int64_t *lat; /* per-request latency, ns; capacity total */
    size_t nlat;
    char firsterr[640];
};

static void *writer_main(void *arg)
{
    struct writer_ctx *w = arg;
    struct client c;
    char url[256], body[512];
    if (client_init(&c) != 0) {
        w->errors++;
        return NULL;
    }
    snprintf(url, sizeof url, "%s" ITEMS_PATH, w->s->base);
    for (;;) {
        long i = atomic_fetch_add(w->next, 1);
        if (i >= w->total || g_interrupted) break;
        item_body(body, sizeof body, i);
        int64_t t0 = now_ns();
        long st = client_do(&c, "POST", url, body);
        int64_t t1 = now_ns();
        if (st == 201) {
            w->ok++;
            w->lat[w->nlat++] = t1 - t0;
        } else {
            if (!w->firsterr[0])
                snprintf(w->firsterr, sizeof w->firsterr, "item %ld: status %ld %s %.150s", i, st,
                         c.errbuf, c.body.p ? c.body.p : "");
            w->errors++;
        }
    }
    client_free(&c);
    return NULL;
}

/* Phase 1: create o->objects Items over o->conns keep-alive connections. */
static int phase_writes(const struct opts *o, const struct server *s, const char *mode)
{
    int nt = (int)o->conns;
    struct writer_ctx *ws = calloc((size_t)nt, sizeof *ws);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    int64_t *all = calloc((size_t)o->objects + 1, sizeof *all);
    atomic_long next = 0;
    int rc = -1, started = 0;
    if (!ws || !th || !all) goto out;
    for (int i = 0; i < nt; i++) {
        ws[i].s = s;
        ws[i].total = o->objects;
        ws[i].next = &next;
        ws[i].lat = calloc((size_t)o->objects + 1, sizeof(int64_t));
        if (!ws[i].lat) goto out;
    }
    double cpu0 = cpu_ms(s->pid);
    int64_t t0 = now_ns();
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, writer_main, &ws[started]) != 0) break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    int64_t t1 = now_ns();
    double cpu1 = cpu_ms(s->pid);
    if (started < nt) goto out;

    long ok = 0, errors = 0;
    size_t n = 0;
    for (int i = 0; i < nt; i++) {
        ok += ws[i].ok;
        errors += ws[i].errors;
        memcpy(all + n, ws[i].lat, ws[i].nlat * sizeof *all);
        n += ws[i].nlat;
        if (ws[i].firsterr[0] && errors == ws[i].errors)
            fprintf(stderr, "apiserver_bench: %s create failed: %s\n", mode, ws[i].firsterr);
    }
    qsort(all, n, sizeof *all, cmp_i64);
    double secs = (double)(t1 - t0) / 1e9;
    fig(mode, "writes_per_sec", (double)ok / secs, 0, "writes/s", T_GE, 3000);
    fig(mode, "writes_total_time", secs * 1000, 0, "ms", T_NONE, 0);
    fig(mode, "write_latency_p50", (double)pct(all, n, 50) / 1e6, 2, "ms", T_NONE, 0);
    fig(mode, "write_latency_p99", (double)pct(all, n, 99) / 1e6, 2, "ms", T_NONE, 0);
    fig(mode, "write_errors", (double)errors, 0, "count", T_EQ, 0);
    if (cpu0 >= 0 && cpu1 >= 0)
        fig(mode, "server_cpu_per_write", (cpu1 - cpu0) * 1000 / (ok ? (double)ok : 1), 1, "us",
            T_NONE, 0);
    rc = ok > 0 && !g_interrupted ? 0 : -1;
out:
    if (ws)
        for (int i = 0; i < nt; i++)
            free(ws[i].lat);
    free(ws);
    free(th);
    free(all);
    return rc;
}

/* Phase 3: whole list (median of o->runs) and the same in pages of o->page_limit. */
static int phase_list(const struct opts *o, const struct server *s, const char *mode)
{
    struct client c;
    int rc = -1;
    double *t = calloc((size_t)o->runs, sizeof *t);
    char url[4096];
    if (!t || client_init(&c) != 0) {
        free(t);
        return -1;
    }
    size_t bytes = 0;
    long items = -1;
    snprintf(url, sizeof url, "%s" ITEMS_PATH, s->base);
    for (long r = 0; r < o->runs && !g_interrupted; r++) {
        int64_t t0 = now_ns();
        long st = client_do(&c, "GET", url, NULL);
        t[r] = (double)(now_ns() - t0) / 1e6;
        if (st != 200) {
            fprintf(stderr, "apiserver_bench: %s list: status %ld %s\n", mode, st, c.errbuf);
            goto out;
        }
        bytes = c.body.len;
        if (r == 0) {
            json_t *doc = json_loadb(c.body.p, c.body.len, 0, NULL);
            items = (long)json_array_size(json_object_get(doc, "items"));
            json_decref(doc);
        }
    }
    if (g_interrupted) goto out;
    fig(mode, "list_all_time_median", median(t, (size_t)o->runs), 1, "ms", T_NONE, 0);
    fig(mode, "list_all_bytes", (double)bytes, 0, "bytes", T_NONE, 0);
    fig(mode, "list_all_items", (double)items, 0, "items", T_EQ, (double)o->objects);

    /* Paged: time only the requests, not our own JSON parsing of each page. */
    long pages = 0, pitems = 0;
    size_t pbytes = 0;
    long max_pages = o->objects / o->page_limit + 10;
    for (long r = 0; r < o->runs && !g_interrupted; r++) {
        char *cont = NULL;
        double total = 0;
        pages = 0;
        pitems = 0;
        pbytes = 0;
        do {
            if (cont) {
                char *esc = curl_easy_escape(c.h, cont, 0);
                snprintf(url, sizeof url, "%s" ITEMS_PATH "?limit=%ld&continue=%s", s->base,
                         o->page_limit, esc ? esc : "");
                curl_free(esc);
                free(cont);
                cont = NULL;
            } else {
                snprintf(url, sizeof url, "%s" ITEMS_PATH "?limit=%ld", s->base, o->page_limit);
            }
            int64_t t0 = now_ns();
            long st = client_do(&c, "GET", url, NULL);
            total += (double)(now_ns() - t0) / 1e6;
            if (st != 200) {
                fprintf(stderr, "apiserver_bench: %s paged list: status %ld %s\n", mode, st,
                        c.errbuf);
                goto out;
            }
            pages++;
            pbytes += c.body.len;
            json_t *doc = json_loadb(c.body.p, c.body.len, 0, NULL);
            pitems += (long)json_array_size(json_object_get(doc, "items"));
            const char *ct =
                json_string_value(json_object_get(json_object_get(doc, "metadata"), "continue"));
            if (ct && *ct) cont = strdup(ct);
            json_decref(doc);
        } while (cont && pages < max_pages && !g_interrupted);
        free(cont);
        t[r] = total;
    }
    if (g_interrupted) goto out;
    char name[64];
    snprintf(name, sizeof name, "list_paged%ld_time_median", o->page_limit);
    fig(mode, name, median(t, (size_t)o->runs), 1, "ms", T_NONE, 0);
    snprintf(name, sizeof name, "list_paged%ld_pages", o->page_limit);
    fig(mode, name, (double)pages, 0, "pages", T_NONE, 0);
    snprintf(name, sizeof name, "list_paged%ld_bytes", o->page_limit);
    fig(mode, name, (double)pbytes, 0, "bytes", T_NONE, 0);
    snprintf(name, sizeof name, "list_paged%ld_items", o->page_limit);
    fig(mode, name, (double)pitems, 0, "items", T_EQ, (double)o->objects);
    rc = 0;
out:
    client_free(&c);
    free(t);
    return rc;
}

/* One watch stream: splits the body into lines, parses each event with jansson and records the
 * delivery latency now - spec.sentNs. Events with sentNs == 0 are warm-up events. */
struct watcher {
    CURL *h;
    char url[512];
    char *line;
    size_t len, cap;
    int64_t *lat;
    long cap_lat;
    atomic_long measured;
    atomic_long warm;
    atomic_int headers;
    long bad; /* unparseable lines or ERROR events */
    char badmsg[200];
    CURLcode result;
};

static atomic_int g_watch_stop;

static size_t watch_header(char *data, size_t sz, size_t n, void *ud)
{
    struct watcher *w = ud;
    if (sz * n <= 2 && (data[0] == '\r' || data[0] == '\n')) atomic_store(&w->headers, 1);
    return sz * n;
}

static int watch_xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud;
    return atomic_load(&g_watch_stop) || g_interrupted; /* non-zero aborts the stream */
}

static void watch_line(struct watcher *w, const char *p, size_t n, int64_t t)
{
    json_error_t err;
    json_t *ev = json_loadb(p, n, 0, &err);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!ev || !type || strcmp(type, "ERROR") == 0) {
        if (!w->badmsg[0])
            snprintf(w->badmsg, sizeof w->badmsg, "%.*s", (int)(n > 150 ? 150 : n), p);
        w->bad++;
        json_decref(ev);
        return;
    }
    json_t *spec = json_object_get(json_object_get(ev, "object"), "spec");
    json_t *sent = json_object_get(spec, "sentNs");
    if (strcmp(type, "BOOKMARK") != 0 && json_is_integer(sent)) {
        int64_t s = json_integer_value(sent);
        if (s == 0) {
            atomic_fetch_add(&w->warm, 1);
        } else {
            long k = atomic_load(&w->measured);
            if (k < w->cap_lat) w->lat[k] = t - s;
            atomic_store(&w->measured, k + 1);
        }
    }
    json_decref(ev);
}

static size_t watch_write(char *data, size_t sz, size_t n, void *ud)
{
    int64_t t = now_ns(); /* delivery time: when the bytes reached us, before parsing */
    struct watcher *w = ud;
    size_t add = sz * n;
    if (w->len + add > LINE_MAX_BYTES) return 0;
    if (w->len + add > w->cap) {
        size_t nc = w->cap ? w->cap : 8192;
        while (nc < w->len + add)
            nc *= 2;
        char *np = realloc(w->line, nc);
        if (!np) return 0;
        w->line = np;
        w->cap = nc;
    }
    memcpy(w->line + w->len, data, add);
    w->len += add;
    size_t start = 0;
    for (size_t i = 0; i < w->len; i++) {
        if (w->line[i] != '\n') continue;
        if (i > start) watch_line(w, w->line + start, i - start, t);
        start = i + 1;
    }
    memmove(w->line, w->line + start, w->len - start);
    w->len -= start;
    return add;
}

static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    w->result = curl_easy_perform(w->h);
    return NULL;
}

static int get_list_rv(const struct server *s, char *rv, size_t cap)
{
    struct client c;
    char url[256];
    int rc = -1;
    if (client_init(&c) != 0) return -1;
    snprintf(url, sizeof url, "%s" ITEMS_PATH "?limit=1", s->base);
    if (client_do(&c, "GET", url, NULL) == 200) {
        json_t *doc = json_loadb(c.body.p, c.body.len, 0, NULL);
        const char *v =
            json_string_value(json_object_get(json_object_get(doc, "metadata"), "resourceVersion"));
        if (v) {
            snprintf(rv, cap, "%s", v);
            rc = 0;
        }
        json_decref(doc);
    }
    client_free(&c);
    return rc;
}

/* Phase 2: o->watchers watch streams; o->events paced merge patches, each carrying its send time
 * in spec.sentNs; latency = watcher receive time - sentNs over all deliveries. */
static int phase_watch(const struct opts *o, const struct server *s, const char *mode)
{
    int nw = (int)o->watchers, started = 0, rc = -1;
    struct watcher *ws = calloc((size_t)nw, sizeof *ws);
    pthread_t *th = calloc((size_t)nw, sizeof *th);
    int64_t *all = NULL;
    struct client c;
    char rv[64], url[512], body[256];
    memset(&c, 0, sizeof c);
    if (!ws || !th || client_init(&c) != 0) goto out;
    if (get_list_rv(s, rv, sizeof rv) != 0) {
        fprintf(stderr, "apiserver_bench: %s: no list resourceVersion\n", mode);
        goto out;
    }
    atomic_store(&g_watch_stop, 0);
    long bound_s = (long)((double)o->events * (double)o->interval_us / 1e6) + 120;
    for (int i = 0; i < nw; i++) {
        struct watcher *w = &ws[i];
        w->cap_lat = o->events;
        w->lat = calloc((size_t)o->events + 1, sizeof *w->lat);
        w->h = curl_easy_init();
        if (!w->lat || !w->h) goto out;
        snprintf(w->url, sizeof w->url,
                 "%s" ITEMS_PATH "?watch=1&resourceVersion=%s"
                 "&timeoutSeconds=%ld",
                 s->base, rv, bound_s);
        curl_easy_setopt(w->h, CURLOPT_URL, w->url);
        curl_easy_setopt(w->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(w->h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(w->h, CURLOPT_PROXY, "");
        curl_easy_setopt(w->h, CURLOPT_TIMEOUT, bound_s);
        curl_easy_setopt(w->h, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, watch_write);
        curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
        curl_easy_setopt(w->h, CURLOPT_HEADERFUNCTION, watch_header);
        curl_easy_setopt(w->h, CURLOPT_HEADERDATA, w);
        curl_easy_setopt(w->h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(w->h, CURLOPT_XFERINFOFUNCTION, watch_xfer);
    }
    for (; started < nw; started++)
        if (pthread_create(&th[started], NULL, watcher_main, &ws[started]) != 0) break;
    if (started < nw) {
        fprintf(stderr, "apiserver_bench: starting watcher %d failed\n", started);
        goto out;
    }

    /* Warm-up: every stream must have its headers and one event before measuring. */
    int ready = 0;
    for (int attempt = 0; attempt < 10 && !ready && !g_interrupted; attempt++) {
        snprintf(url, sizeof url, "%s" ITEMS_PATH "/item-%06d", s->base, 0);
        snprintf(body, sizeof body, "{\"spec\":{\"sentNs\":0,\"warm\":%d}}", attempt + 1);
        long st = client_do(&c, "PATCH", url, body);
        if (st != 200) {
            fprintf(stderr, "apiserver_bench: %s warm-up patch: status %ld %s %.200s\n", mode, st,
                    c.errbuf, c.body.p ? c.body.p : "");
            goto out;
        }
        for (int k = 0; k < 20 && !ready; k++) { /* 1 s */
            ready = 1;
            for (int i = 0; i < nw; i++)
                if (!atomic_load(&ws[i].headers) || atomic_load(&ws[i].warm) == 0) ready = 0;
            if (!ready) sleep_ms(50);
        }
    }
    if (!ready) {
        int nh = 0, nwarm = 0;
        for (int i = 0; i < nw; i++) {
            nh += atomic_load(&ws[i].headers) != 0;
            nwarm += atomic_load(&ws[i].warm) != 0;
        }
        fprintf(stderr,
                "apiserver_bench: %s: after 10 s only %d/%d watches have headers, %d/%d an "
                "event\n",
                mode, nh, nw, nwarm, nw);
        goto out;
    }

    int64_t *plat = calloc((size_t)o->events + 1, sizeof *plat);
    if (!plat) goto out;
    long perr = 0, np = 0;
    double cpu0 = cpu_ms(s->pid);
    int64_t start = now_ns();
    for (long i = 0; i < o->events && !g_interrupted; i++) {
        int64_t slot = start + i * o->interval_us * 1000;
        struct timespec ts = {(time_t)(slot / 1000000000), (long)(slot % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
               !g_interrupted) {
        }
        snprintf(url, sizeof url, "%s" ITEMS_PATH "/item-%06ld", s->base, i % o->objects);
        int64_t sent = now_ns();
        snprintf(body, sizeof body, "{\"spec\":{\"sentNs\":%lld,\"seq\":%ld}}", (long long)sent, i);
        long st = client_do(&c, "PATCH", url, body);
        if (st == 200)
            plat[np++] = now_ns() - sent;
        else if (perr++ == 0)
            fprintf(stderr, "apiserver_bench: %s patch %ld: status %ld %s %.200s\n", mode, i, st,
                    c.errbuf, c.body.p ? c.body.p : "");
    }
    int64_t wend = now_ns();
    /* Deliveries still in flight: wait up to 10 s for every watcher to see every event. */
    for (int k = 0; k < 200 && !g_interrupted; k++) {
        int done = 1;
        for (int i = 0; i < nw; i++)
            if (atomic_load(&ws[i].measured) < np) done = 0;
        if (done) break;
        sleep_ms(50);
    }
    double cpu1 = cpu_ms(s->pid);
    atomic_store(&g_watch_stop, 1);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    started = 0;

    size_t total = 0;
    long bad = 0, dropped = 0;
    for (int i = 0; i < nw; i++) {
        long m = atomic_load(&ws[i].measured);
        total += (size_t)(m < ws[i].cap_lat ? m : ws[i].cap_lat);
        if (m < np) dropped += np - m;
        bad += ws[i].bad;
        if (ws[i].bad && bad == ws[i].bad)
            fprintf(stderr, "apiserver_bench: %s watcher %d bad line: %s\n", mode, i, ws[i].badmsg);
        if (ws[i].result != CURLE_OK && ws[i].result != CURLE_ABORTED_BY_CALLBACK && m < np)
            fprintf(stderr, "apiserver_bench: %s watcher %d ended early: %s\n", mode, i,
                    curl_easy_strerror(ws[i].result));
    }
    all = calloc(total + 1, sizeof *all);
    if (!all) {
        free(plat);
        goto out;
    }
    size_t n = 0;
    for (int i = 0; i < nw; i++) {
        long m = atomic_load(&ws[i].measured);
        if (m > ws[i].cap_lat) m = ws[i].cap_lat;
        memcpy(all + n, ws[i].lat, (size_t)m * sizeof *all);
        n += (size_t)m;
    }
    qsort(all, n, sizeof *all, cmp_i64);
    qsort(plat, (size_t)np, sizeof *plat, cmp_i64);
    double secs = (double)(wend - start) / 1e9;
    fig(mode, "watch_streams", (double)nw, 0, "streams", T_NONE, 0);
    fig(mode, "watch_updates_sent", (double)np, 0, "updates", T_NONE, 0);
    fig(mode, "watch_update_rate", (double)np / secs, 0, "updates/s", T_NONE, 0);
    fig(mode, "watch_update_latency_p50", (double)pct(plat, (size_t)np, 50) / 1e6, 2, "ms", T_NONE,
        0);
    fig(mode, "watch_deliveries", (double)n, 0, "events", T_NONE, 0);
    fig(mode, "watch_latency_p50", (double)pct(all, n, 50) / 1e6, 2, "ms", T_NONE, 0);
    fig(mode, "watch_latency_p90", (double)pct(all, n, 90) / 1e6, 2, "ms", T_NONE, 0);
    fig(mode, "watch_latency_p99", (double)pct(all, n, 99) / 1e6, 2, "ms", T_LT, 10);
    fig(mode, "watch_latency_max", (double)pct(all, n, 100) / 1e6, 2, "ms", T_NONE, 0);
    fig(mode, "watch_missed_deliveries", (double)dropped, 0, "events", T_EQ, 0);
    fig(mode, "watch_errors", (double)(bad + perr), 0, "count", T_EQ, 0);
    if (cpu0 >= 0 && cpu1 >= 0)
        fig(mode, "server_cpu_per_update", (cpu1 - cpu0) * 1000 / (np ? (double)np : 1), 1, "us",
            T_NONE, 0);
    free(plat);
    rc = np > 0 && n > 0 && !g_interrupted ? 0 : -1;
out:
    atomic_store(&g_watch_stop, 1);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (ws)
        for (int i = 0; i < nw; i++) {
            if (ws[i].h) curl_easy_cleanup(ws[i].h);
            free(ws[i].lat);
            free(ws[i].line);
        }
    free(ws);
    free(th);
    free(all);
    client_free(&c);
    return rc;
}

static void rss_fig(const struct server *s, const char *mode, const char *name)
{
    sleep_ms(300); /* let allocator activity of the previous phase settle */
    long kib = rss_kib(s->pid);
    if (kib >= 0) fig(mode, name, (double)kib / 1024.0, 1, "MiB", T_LT, 60);
}

/* Runs every phase against one fresh server. Returns 0, or -1 if a phase could not run. */
static int run_mode(const struct opts *o, const char *mode)
{
    struct server s;
    int rc = -1;
    printf("# %s: %s --data %s, %ld objects, %ld connections, %ld watchers, %ld updates\n", mode,
           o->server, strcmp(mode, "memory") ? "<tmpdir>/apiserver.db" : ":memory:", o->objects,
           o->conns, o->watchers, o->events);
    fflush(stdout);
    if (server_start(&s, o->server, mode) != 0) goto out;
    sleep_ms(700);
    {
        long kib = rss_kib(s.pid);
        if (kib >= 0) fig(mode, "rss_idle", (double)kib / 1024.0, 1, "MiB", T_NONE, 0);
    }
    if (install_crd(&s) != 0) goto out;
    if (phase_writes(o, &s, mode) != 0) goto out;
    if (strcmp(mode, "file") == 0) {
        struct stat st;
        if (stat(s.data, &st) == 0)
            fig(mode, "db_file_bytes", (double)st.st_size, 0, "bytes", T_NONE, 0);
    }
    rss_fig(&s, mode, "rss_with_objects");
    if (phase_list(o, &s, mode) != 0) goto out;
    rss_fig(&s, mode, "rss_after_list");
    if (phase_watch(o, &s, mode) != 0) goto out;
    rss_fig(&s, mode, "rss_after_watch");
    rc = 0;
out:
    if (rc != 0 && s.pid > 0 && !g_interrupted) dump_log_tail(&s);
    server_stop(&s);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: apiserver_bench [options]\n"
               "Starts tandem-apiserver on 127.0.0.1 and prints write, watch, list and memory "
               "figures.\n\n"
               "  --server PATH      tandem-apiserver binary (default: <dir of this>/../bin/"
               "tandem-apiserver)\n"
               "  --mode M           file|memory|both (default both)\n"
               "  --objects N        Items to create and list (default 10000)\n"
               "  --conns N          keep-alive connections for creates (default 4)\n"
               "  --watchers N       concurrent watch streams (default 50)\n"
               "  --events N         updates sent while watching (default 2000)\n"
               "  --interval-us N    spacing of those updates (default 1000)\n"
               "  --runs N           list repetitions, median reported (default 5)\n"
               "  --page-limit N     page size of the paged list (default 500)\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static char defbin[PATH_MAX + 64];
    struct opts o = {NULL, 10000, 4, 50, 2000, 1000, 5, 500, 1, 1};
    static const struct option lo[] = {{"server", required_argument, 0, 's'},
                                       {"mode", required_argument, 0, 'm'},
                                       {"objects", required_argument, 0, 'n'},
                                       {"conns", required_argument, 0, 'c'},
                                       {"watchers", required_argument, 0, 'w'},
                                       {"events", required_argument, 0, 'e'},
                                       {"interval-us", required_argument, 0, 'i'},
                                       {"runs", required_argument, 0, 'r'},
                                       {"page-limit", required_argument, 0, 'p'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 's':
            o.server = optarg;
            break;
        case 'm':
            o.do_file = strcmp(optarg, "file") == 0 || strcmp(optarg, "both") == 0;
            o.do_memory = strcmp(optarg, "memory") == 0 || strcmp(optarg, "both") == 0;
            bad = !o.do_file && !o.do_memory;
            break;
        case 'n':
            bad = parse_long(optarg, 1, 1000000, &o.objects);
            break;
        case 'c':
            bad = parse_long(optarg, 1, 64, &o.conns);
            break;
        case 'w':
            bad = parse_long(optarg, 1, 1000, &o.watchers);
            break;
        case 'e':
            bad = parse_long(optarg, 1, 1000000, &o.events);
            break;
        case 'i':
            bad = parse_long(optarg, 0, 1000000, &o.interval_us);
            break;
        case 'r':
            bad = parse_long(optarg, 1, 100, &o.runs);
            break;
        case 'p':
            bad = parse_long(optarg, 1, 100000, &o.page_limit);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "apiserver_bench: bad option value: %s\n", optarg);
            usage(stderr);
            return 2;
        }
    }
    if (!o.server) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) *slash = '\0';
            snprintf(defbin, sizeof defbin, "%s/../bin/tandem-apiserver", self);
        } else {
            snprintf(defbin, sizeof defbin, "build/bin/tandem-apiserver");
        }
        o.server = defbin;
    }
    if (access(o.server, X_OK) != 0) {
        fprintf(stderr, "apiserver_bench: %s: %s (build it with make all, or pass --server)\n",
                o.server, strerror(errno));
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "apiserver_bench: curl_global_init failed\n");
        return 1;
    }

    int failed = 0;
    if (o.do_file && !g_interrupted) failed |= run_mode(&o, "file") != 0;
    if (o.do_memory && !g_interrupted) failed |= run_mode(&o, "memory") != 0;
    print_summary();
    curl_global_cleanup();
    if (g_interrupted) {
        fprintf(stderr, "apiserver_bench: interrupted\n");
        return 130;
    }
    if (failed) fprintf(stderr, "apiserver_bench: a phase failed to run (see above)\n");
    return failed ? 1 : 0;
}
