/* Test helpers shared by the kube client and informer suites: start/stop a real tandem-apiserver
 * on a free 127.0.0.1 port with its own temporary directory (killed with the test process via
 * PR_SET_PDEATHSIG and removed at exit), and a hand-made struct tn_kube_config. Header-only:
 * every function is static. */
#ifndef TN_TEST_KUBE_TESTUTIL_H
#define TN_TEST_KUBE_TESTUTIL_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/timeutil.h"
#include "kube/config.h"

struct tsrv {
    pid_t pid;
    int port;
    int tls;
    char dir[256];
    char data[320];
    char kc[320];
    char log[320];
    char certdir[320];
    char base[64];
    char extra[8][256]; /* extra arguments, e.g. "--token-file", path */
    int nextra;
};

static struct tsrv *g_tsrv_all[16];

/* snprintf that aborts instead of truncating (test paths only). */
#define TFMT(buf, ...)                                                                             \
    do {                                                                                           \
        if (snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf)) abort();                \
    } while (0)
static int g_tsrv_n;

static inline void tsleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline int trm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A port nobody listens on right now (the kernel's pick for an ephemeral bind). */
static inline int tfree_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline const char *tsrv_bin(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("TANDEM_APISERVER");
    if (env && *env) return env;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *s = strrchr(self, '/');
        if (s) {
            *s = '\0'; /* build/test */
            TFMT(path, "%s/../bin/tandem-apiserver", self);
            if (access(path, X_OK) == 0) return path;
        }
    }
    return "build/bin/tandem-apiserver";
}

static inline void tsrv_kill(struct tsrv *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    int64_t dl = tn_mono_ms() + 5000;
    int st;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (tn_mono_ms() > dl) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        tsleep_ms(10);
    }
    s->pid = 0;
}

static inline void tsrv_atexit(void)
{
    for (int i = 0; i < g_tsrv_n; i++) {
        tsrv_kill(g_tsrv_all[i]);
        if (g_tsrv_all[i]->dir[0]) nftw(g_tsrv_all[i]->dir, trm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    g_tsrv_n = 0;
}

static inline void tsrv_dump_log(const struct tsrv *s)
{
    FILE *f = fopen(s->log, "r");
    if (!f) return;
    char line[1024];
    fprintf(stderr, "--- server log %s\n", s->log);
    int n = 0;
    while (fgets(line, sizeof line, f) && n++ < 40)
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

static inline size_t tsrv_sink(char *d, size_t sz, size_t n, void *u)
{
    (void)d;
    (void)u;
    return sz * n;
}

/* GET base+path with plain libcurl (no auth, no TLS verification); HTTP status or 0. */
static inline long tsrv_probe(const struct tsrv *s, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    CURL *e = curl_easy_init();
    long code = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, tsrv_sink);
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    return code;
}

/* Forks the server (optionally delayed by delay_ms before exec) on s->port; no wait. */
static inline int tsrv_spawn(struct tsrv *s, long delay_ms)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    const char *argv[32];
    int a = 0;
    argv[a++] = tsrv_bin();
    argv[a++] = "--listen";
    argv[a++] = listen;
    argv[a++] = "--data";
    argv[a++] = s->data;
    argv[a++] = "--write-kubeconfig";
    argv[a++] = s->kc;
    argv[a++] = "--log-level";
    argv[a++] = "warn";
    if (s->tls) {
        argv[a++] = "--tls";
        argv[a++] = "--cert-dir";
        argv[a++] = s->certdir;
    }
    for (int i = 0; i < s->nextra && a < 30; i++)
        argv[a++] = s->extra[i];
    argv[a] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != parent) _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (delay_ms > 0) tsleep_ms(delay_ms);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    return 0;
}

/* Waits (bounded) until /readyz answers 200. */
static inline int tsrv_wait_ready(struct tsrv *s, long timeout_ms)
{
    int64_t dl = tn_mono_ms() + timeout_ms;
    while (tn_mono_ms() < dl) {
        int st;
        if (s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            tsrv_dump_log(s);
            return -1;
        }
        if (tsrv_probe(s, "/readyz") == 200) return 0;
        tsleep_ms(30);
    }
    tsrv_dump_log(s);
    return -1;
}

/* Prepares s (temp dir, port, file database unless memory) without starting it. */
static inline int tsrv_init(struct tsrv *s, int tls, int memory)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/tandem-kube-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) return -1;
    if (g_tsrv_n == 0) atexit(tsrv_atexit);
    if (g_tsrv_n < 16) g_tsrv_all[g_tsrv_n++] = s;
    s->tls = tls;
    s->port = tfree_port();
    if (memory)
        snprintf(s->data, sizeof s->data, ":memory:");
    else
        snprintf(s->data, sizeof s->data, "%s/db", s->dir);
    snprintf(s->kc, sizeof s->kc, "%s/kubeconfig", s->dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    snprintf(s->certdir, sizeof s->certdir, "%s/pki", s->dir);
    snprintf(s->base, sizeof s->base, "%s://127.0.0.1:%d", tls ? "https" : "http", s->port);
    return s->port > 0 ? 0 : -1;
}

static inline void tsrv_arg(struct tsrv *s, const char *a)
{
    if (s->nextra < 8) TFMT(s->extra[s->nextra++], "%s", a);
}

static inline int tsrv_start(struct tsrv *s)
{
    if (tsrv_spawn(s, 0) != 0) return -1;
    return tsrv_wait_ready(s, 15000);
}

/* A config by hand (no kubeconfig parsing): server URL only. */
static inline struct tn_kube_config *tcfg_new(const char *server)
{
    struct tn_kube_config *c = calloc(1, sizeof *c);
    c->server = strdup(server);
    c->namespace_ = strdup("default");
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

#endif
