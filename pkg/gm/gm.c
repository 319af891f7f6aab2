/* tandem-gm wiring: client, manager and controllers, the LC message layer on its websocket
 * server, metrics and health servers, leader election, and the shutdown order (manager, lease,
 * websocket server + ml, metrics/health servers, client). */
#include "gm/gm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/http.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/yaml.h"
#include "gm/controller.h"
#include "gm/controllers.h"
#include "gm/messagelayer.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/leader.h"

#define GM_LEASE_NAME "tandem-gm"

/* ---- configuration ---- */

static int set_str(char **dst, const char *v)
{
    char *s = v ? strdup(v) : NULL;
    if (v && !s) return TN_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

int tn_gm_config_init(struct tn_gm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->leader_elect = 1;
    if (set_str(&c->namespace_, "") || set_str(&c->ws_listen, "0.0.0.0:9000") ||
        set_str(&c->metrics_listen, "127.0.0.1:8080") ||
        set_str(&c->health_listen, "127.0.0.1:8081") || set_str(&c->log_level, "info") ||
        set_str(&c->log_format, "text")) {
        tn_gm_config_free(c);
        return TN_ENOMEM;
    }
    return 0;
}

void tn_gm_config_free(struct tn_gm_config *c)
{
    free(c->kubeconfig);
    free(c->namespace_);
    free(c->ws_listen);
    free(c->metrics_listen);
    free(c->health_listen);
    free(c->node_tokens);
    free(c->leader_election_namespace);
    free(c->log_level);
    free(c->log_format);
    memset(c, 0, sizeof(*c));
}

int tn_gm_parse_listen(const char *s, char *addr, size_t n, int *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s) return TN_EINVAL;
    const char *a = s;
    size_t alen = (size_t)(colon - s);
    if (a[0] == '[') {
        if (alen < 3 || a[alen - 1] != ']') return TN_EINVAL;
        a++;
        alen -= 2;
    }
    if (alen + 1 > n) return TN_EINVAL;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535) return TN_EINVAL;
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    *port = (int)p;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) {
        *out = 0;
        return 0;
    }
    return TN_EINVAL;
}

int tn_gm_config_set(struct tn_gm_config *c, const char *key, const char *value, struct tn_err *err)
{
    char addr[256];
    int port, b;
    enum tn_log_level lvl;

    if (!value) return tn_err_set(err, TN_EINVAL, "%s: a value is required", key);
    if (!strcmp(key, "kubeconfig")) return set_str(&c->kubeconfig, *value ? value : NULL);
    if (!strcmp(key, "namespace")) return set_str(&c->namespace_, value);
    if (!strcmp(key, "ws-listen") || !strcmp(key, "metrics-listen") ||
        !strcmp(key, "health-listen")) {
        if (tn_gm_parse_listen(value, addr, sizeof(addr), &port) != 0)
            return tn_err_set(err, TN_EINVAL, "%s: %s: want ADDRESS:PORT with port 0-65535", key,
                              value);
        char **dst = key[0] == 'w'   ? &c->ws_listen
                     : key[0] == 'm' ? &c->metrics_listen
                                     : &c->health_listen;
        return set_str(dst, value);
    }
    if (!strcmp(key, "node-tokens")) return set_str(&c->node_tokens, *value ? value : NULL);
    if (!strcmp(key, "leader-elect")) {
        if (parse_bool(value, &b) != 0)
            return tn_err_set(err, TN_EINVAL, "%s: %s: want true or false", key, value);
        c->leader_elect = b;
        return 0;
    }
    if (!strcmp(key, "leader-election-namespace"))
        return set_str(&c->leader_election_namespace, *value ? value : NULL);
    if (!strcmp(key, "log-level")) {
        if (tn_log_parse_level(value, &lvl) != 0)
            return tn_err_set(err, TN_EINVAL, "%s: %s: want debug, info, warn or error", key,
                              value);
        return set_str(&c->log_level, value);
    }
    if (!strcmp(key, "log-format")) {
        if (tn_log_parse_format(value, &b) != 0)
            return tn_err_set(err, TN_EINVAL, "%s: %s: want text or json", key, value);
        return set_str(&c->log_format, value);
    }
    return tn_err_set(err, TN_EINVAL, "unknown key %s", key);
}

int tn_gm_config_load_file(struct tn_gm_config *c, const char *path, struct tn_err *err)
{
    json_t *docs = tn_yaml_load_file(path, NULL, err);
    if (!docs) return err ? err->code : TN_EINVAL;
    int rc = 0;
    json_t *doc = json_array_get(docs, 0);
    if (json_array_size(docs) > 1 || (doc && !json_is_object(doc))) {
        rc = tn_err_set(err, TN_EINVAL, "config %s: want one mapping of keys", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        char num[64];
        const char *text;
        if (json_is_string(v))
            text = json_string_value(v);
        else if (json_is_boolean(v))
            text = json_is_true(v) ? "true" : "false";
        else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            text = num;
        } else {
            rc = tn_err_set(err, TN_EINVAL, "config %s: %s: want a scalar value", path, key);
            goto out;
        }
        rc = tn_gm_config_set(c, key, text, err);
        if (rc != 0) {
            tn_err_prefix(err, "config %s", path);
            goto out;
        }
    }
out:
    json_decref(docs);
    return rc;
}

int tn_gm_config_validate(const struct tn_gm_config *c, struct tn_err *err)
{
    char addr[256];
    int port;
    const char *keys[] = {"ws-listen", "metrics-listen", "health-listen"};
    const char *vals[] = {c->ws_listen, c->metrics_listen, c->health_listen};
    for (int i = 0; i < 3; i++)
        if (tn_gm_parse_listen(vals[i], addr, sizeof(addr), &port) != 0)
            return tn_err_set(err, TN_EINVAL, "%s: %s: want ADDRESS:PORT", keys[i],
                              vals[i] ? vals[i] : "");
    tn_gm_parse_listen(c->ws_listen, addr, sizeof(addr), &port);
    if (port != 0 &&
        (!strcmp(c->ws_listen, c->metrics_listen) || !strcmp(c->ws_listen, c->health_listen)))
        return tn_err_set(err, TN_EINVAL, "ws-listen: %s is also the metrics or health address",
                          c->ws_listen);
    return 0;
}

/* ---- the daemon ---- */

struct gm {
    const struct tn_gm_config *cfg;
    int leader_elect;
    struct tn_metrics *metrics;
    struct tn_kube_client *client;
    struct tn_mgr *mgr;
    struct tn_gm_dataset *dataset;
    struct tn_gm_model *model;
    struct tn_ml *ml;
    struct tn_leader *leader;
    struct tn_http_server *ws, *mon, *health; /* health NULL when it shares mon */
    pthread_t ws_thr, mon_thr, health_thr;
    int ws_running, mon_running, health_running;
    atomic_int mgr_running;
    atomic_int leading;
    atomic_int shutting_down;
};

/* Self-pipe: signal handlers and leader callbacks wake the main thread with one byte. */
static int g_pipe[2] = {-1, -1};

static void wake(char c)
{
    if (g_pipe[1] >= 0) {
        ssize_t r = write(g_pipe[1], &c, 1);
        (void)r;
    }
}

static void on_signal(int sig)
{
    int saved = errno;
    wake(sig == SIGINT ? 'I' : 'T');
    errno = saved;
}

static void on_started_leading(void *arg)
{
    struct gm *g = arg;
    atomic_store(&g->leading, 1);
    wake('S');
}

static void on_stopped_leading(void *arg)
{
    struct gm *g = arg;
    atomic_store(&g->leading, 0);
    wake('L');
}

static void on_new_leader(const char *identity, void *arg)
{
    TN_INFO("new leader observed", "identity", identity);
}

static int on_status(const char *node, const char *kind, const char *ns, const char *name,
                     json_t *content, void *arg)
{
    struct gm *g = arg;
    if (!atomic_load(&g->mgr_running)) return 1; /* not leading yet: the LC re-sends */
    if (!strcmp(kind, "dataset"))
        return tn_gm_dataset_on_status(g->dataset, node, ns, name, content);
    if (!strcmp(kind, "model")) return tn_gm_model_on_status(g->model, node, ns, name, content);
    TN_DEBUG("dropping status report of an unhandled kind", "node", node, "kind", kind, "namespace",
             ns, "name", name);
    return 0;
}

static void on_node(const char *node, int connected, void *arg)
{
    struct gm *g = arg;
    TN_INFO(connected ? "edge node connected" : "edge node disconnected", "node", node);
    if (atomic_load(&g->mgr_running)) tn_gm_dataset_on_node(g->dataset, node, connected);
}

static void ws_http_handler(struct tn_http_req *req, void *user)
{
    static const char msg[] = "websocket endpoint for LocalControllers\n";
    tn_http_respond(req, 404, "text/plain", msg, sizeof(msg) - 1);
}

static int gm_ready(struct gm *g)
{
    if (atomic_load(&g->mgr_running)) return 1;
    /* With leader election a standby is ready too (it serves health and waits). */
    return g->leader_elect && !atomic_load(&g->leading);
}

static void mon_handler(struct tn_http_req *req, void *user)
{
    struct gm *g = user;
    const char *p = tn_http_path(req);
    if (!strcmp(p, "/metrics")) {
        struct tn_buf b;
        tn_buf_init(&b, 0);
        tn_metrics_render(g->metrics, &b);
        size_t len;
        char *body = tn_buf_steal(&b, &len);
        tn_http_respond_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
        return;
    }
    if (!strcmp(p, "/healthz") || !strcmp(p, "/livez")) {
        tn_http_respond(req, 200, "text/plain", "ok", 2);
        return;
    }
    if (!strcmp(p, "/readyz")) {
        if (gm_ready(g))
            tn_http_respond(req, 200, "text/plain", "ok", 2);
        else
            tn_http_respond(req, 503, "text/plain", "caches not synced", 17);
        return;
    }
    tn_http_respond(req, 404, "text/plain", "not found\n", 10);
}

static void *server_thread(void *arg)
{
    tn_http_server_run(arg);
    return NULL;
}

static int start_server(struct tn_http_config *hc, const char *listen, const char *what,
                        struct tn_http_server **out, pthread_t *thr, int *running,
                        struct tn_err *err)
{
    char addr[256];
    int port;
    if (tn_gm_parse_listen(listen, addr, sizeof(addr), &port) != 0)
        return tn_err_set(err, TN_EINVAL, "%s: %s: want ADDRESS:PORT", what, listen);
    hc->addr = addr;
    hc->port = port;
    *out = tn_http_server_new(hc, err);
    if (!*out) {
        tn_err_prefix(err, "%s %s", what, listen);
        return err ? err->code : TN_EIO;
    }
    if (pthread_create(thr, NULL, server_thread, *out) != 0)
        return tn_err_set(err, TN_EIO, "%s: cannot start a thread", what);
    *running = 1;
    char p[16];
    snprintf(p, sizeof(p), "%d", tn_http_server_port(*out));
    TN_INFO("listening", "server", what, "address", addr, "port", p);
    return 0;
}

static void stop_server(struct tn_http_server **s, pthread_t thr, int *running)
{
    if (!*s) return;
    if (*running) {
        tn_http_server_stop(*s);
        pthread_join(thr, NULL);
        *running = 0;
    }
}

static const char *lease_namespace(const struct gm *g)
{
    const char *ns = g->cfg->leader_election_namespace;
    if (ns && *ns) return ns;
    ns = getenv("POD_NAMESPACE");
    if (ns && *ns) return ns;
    const struct tn_kube_config *kc = tn_kube_client_config(g->client);
    if (kc && kc->namespace_ && *kc->namespace_) return kc->namespace_;
    return "default";
}

/* Starts the manager (main thread) and resyncs nodes connected meanwhile. */
static int start_manager(struct gm *g, struct tn_err *err)
{
    int rc = tn_mgr_start(g->mgr, err);
    if (rc != 0) return rc;
    atomic_store(&g->mgr_running, 1);
    TN_INFO("controllers started");
    size_t n = 0;
    char **nodes = tn_ml_connected_nodes(g->ml, &n);
    for (size_t i = 0; nodes && i < n; i++)
        tn_gm_dataset_on_node(g->dataset, nodes[i], 1);
    tn_ml_strv_free(nodes);
    return 0;
}

static int setup(struct gm *g, struct tn_err *err)
{
    const struct tn_gm_config *c = g->cfg;
    struct tn_kube_config *kc = c->kubeconfig ? tn_kube_config_load(c->kubeconfig, NULL, err)
                                              : tn_kube_config_auto(NULL, err);
    if (!kc) return err ? err->code : TN_EINVAL;
    struct tn_kube_client_opts co = {.metrics = g->metrics, .user_agent = "tandem-gm"};
    g->client = tn_kube_client_new(kc, &co, err);
    if (!g->client) return err ? err->code : TN_EIO;

    struct tn_mgr_opts mo = {
        .metrics = g->metrics,
        .component = "tandem-gm",
        .namespace_ = c->namespace_,
    };
    g->mgr = tn_mgr_new(g->client, &mo, err);
    if (!g->mgr) return err ? err->code : TN_ENOMEM;

    char **tokens = NULL;
    if (c->node_tokens) {
        tokens = tn_ml_tokens_load(c->node_tokens, err);
        if (!tokens) {
            tn_err_prefix(err, "node-tokens");
            return err ? err->code : TN_EINVAL;
        }
    }
    struct tn_ml_opts mlo = {
        .node_tokens = (const char *const *)tokens,
        .metrics = g->metrics,
        .on_status = on_status,
        .on_node = on_node,
        .arg = g,
    };
    g->ml = tn_ml_new(&mlo, err);
    tn_ml_strv_free(tokens);
    if (!g->ml) return err ? err->code : TN_ENOMEM;

    g->dataset = tn_gm_dataset_add(g->mgr, g->ml, err);
    if (!g->dataset) return err ? err->code : TN_EINVAL;
    g->model = tn_gm_model_add(g->mgr, err);
    if (!g->model) return err ? err->code : TN_EINVAL;

    struct tn_http_config wc = {.name = "tandem-gm-ws", .handler = ws_http_handler};
    tn_ml_configure(g->ml, &wc);
    int rc = start_server(&wc, c->ws_listen, "ws-listen", &g->ws, &g->ws_thr, &g->ws_running, err);
    if (rc != 0) return rc;
    tn_ml_attach(g->ml, g->ws);

    struct tn_http_config hc = {.name = "tandem-gm", .handler = mon_handler, .user = g};
    rc = start_server(&hc, c->metrics_listen, "metrics-listen", &g->mon, &g->mon_thr,
                      &g->mon_running, err);
    if (rc != 0) return rc;
    if (strcmp(c->metrics_listen, c->health_listen) != 0) {
        struct tn_http_config hc2 = {.name = "tandem-gm", .handler = mon_handler, .user = g};
        rc = start_server(&hc2, c->health_listen, "health-listen", &g->health, &g->health_thr,
                          &g->health_running, err);
        if (rc != 0) return rc;
    }
    return 0;
}

static void teardown(struct gm *g)
{
    atomic_store(&g->shutting_down, 1);
    if (g->mgr) {
        tn_mgr_stop(g->mgr); /* no reconcile after this */
        atomic_store(&g->mgr_running, 0);
    }
    if (g->leader) {
        tn_leader_stop(g->leader); /* releases the Lease when leading */
        g->leader = NULL;
    }
    /* messagelayer.h's order: stop the loop, tn_ml_stop, tn_http_server_free, tn_ml_free. */
    stop_server(&g->ws, g->ws_thr, &g->ws_running);
    if (g->ml) tn_ml_stop(g->ml);
    tn_http_server_free(g->ws);
    g->ws = NULL;
    tn_ml_free(g->ml);
    g->ml = NULL;
    stop_server(&g->health, g->health_thr, &g->health_running);
    tn_http_server_free(g->health);
    stop_server(&g->mon, g->mon_thr, &g->mon_running);
    tn_http_server_free(g->mon);
    tn_mgr_free(g->mgr);
    tn_gm_dataset_free(g->dataset);
    tn_gm_model_free(g->model);
    tn_kube_client_free(g->client);
    tn_metrics_free(g->metrics);
}

int tn_gm_run(const struct tn_gm_config *c, struct tn_err *err)
{
    struct gm g = {.cfg = c, .leader_elect = c->leader_elect};
    enum tn_log_level lvl = TN_LOG_INFO;
    int json = 0, rc = 0;
    struct sigaction sa, old_term, old_int;

    tn_log_parse_level(c->log_level ? c->log_level : "info", &lvl);
    tn_log_parse_format(c->log_format ? c->log_format : "text", &json);
    tn_log_setup("gm", lvl, json, 2);
    rc = tn_gm_config_validate(c, err);
    if (rc != 0) return rc;

    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return tn_err_set(err, TN_EIO, "pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    signal(SIGPIPE, SIG_IGN);

    g.metrics = tn_metrics_new();
    if (!g.metrics) {
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
        goto out;
    }
    rc = setup(&g, err);
    if (rc != 0) goto out;

    if (c->leader_elect) {
        struct tn_leader_opts lo = {
            .client = g.client,
            .lease_namespace = lease_namespace(&g),
            .lease_name = GM_LEASE_NAME,
            .release_on_cancel = 1,
            .metrics = g.metrics,
            .cb = {on_started_leading, on_stopped_leading, on_new_leader, &g},
        };
        TN_INFO("campaigning for leadership", "lease", GM_LEASE_NAME, "namespace",
                lo.lease_namespace);
        g.leader = tn_leader_start(&lo, err);
        if (!g.leader) {
            rc = err ? err->code : TN_EINVAL;
            goto out;
        }
    } else {
        rc = start_manager(&g, err);
        if (rc != 0) goto out;
    }

    for (;;) {
        struct pollfd pfd = {.fd = g_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR) continue;
            rc = tn_err_set(err, TN_EIO, "poll: %s", strerror(errno));
            goto out;
        }
        char ev;
        while (read(g_pipe[0], &ev, 1) == 1) {
            if (ev == 'T' || ev == 'I') {
                TN_INFO("shutting down", "signal", ev == 'T' ? "SIGTERM" : "SIGINT");
                rc = 0;
                goto out;
            }
            if (ev == 'S' && !atomic_load(&g.mgr_running)) {
                TN_INFO("started leading");
                rc = start_manager(&g, err);
                if (rc != 0) goto out;
            } else if (ev == 'L' && !atomic_load(&g.shutting_down)) {
                rc = tn_err_set(err, TN_EIO, "leader election lost (lease %s)", GM_LEASE_NAME);
                goto out;
            }
        }
    }
out:
    teardown(&g);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    close(g_pipe[0]);
    close(g_pipe[1]);
    g_pipe[0] = g_pipe[1] = -1;
    if (rc == 0) TN_INFO("stopped");
    return rc;
}
