/* GM message layer (pkg/gm/messagelayer): a Sedna LC played by Python's websockets package,
 * Tandem LCs played by our own websocket client (features, acks, resync marker), coalescing of
 * pending messages for a disconnected node, node tokens, replaced connections and garbage. */
#include "apis/message.h"
#include "base/http.h"
#include "base/metrics.h"
#include "gm/messagelayer.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define NCLI 4
#define NMSG 32

struct cli {
    struct tn_ws_conn *conn;
    int open, closed, code, error;
    int nmsg;
    char msgs[NMSG][1024];
};

/* Everything the callbacks saw; written on the loop/dispatcher threads, read under mu. */
struct fx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tn_metrics *reg;
    struct tn_ml *ml;
    struct tn_http_server *srv, *cl;
    pthread_t srv_t, cl_t;
    int port;
    int nstatus;
    char status[8][512];
    int status_delay_ms;
    int status_returned;
    int ack_before_return; /* an ack arrived before on_status returned */
    int conn_events, disc_events;
    char last_node_event[64];
    struct cli cli[NCLI];
};

static struct fx F;

#define LOCK() pthread_mutex_lock(&F.mu)
#define UNLOCK()                                                                                   \
    do {                                                                                           \
        pthread_cond_broadcast(&F.cv);                                                             \
        pthread_mutex_unlock(&F.mu);                                                               \
    } while (0)

#define WAIT_FOR(cond, secs)                                                                       \
    do {                                                                                           \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_REALTIME, &dl_);                                                       \
        dl_.tv_sec += (secs);                                                                      \
        pthread_mutex_lock(&F.mu);                                                                 \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&F.cv, &F.mu, &dl_) == ETIMEDOUT) break;                    \
        int ok_ = (cond);                                                                          \
        pthread_mutex_unlock(&F.mu);                                                               \
        ck_assert_msg(ok_, "timed out after %ds waiting for %s", (secs), #cond);                   \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- ml callbacks (dispatcher thread) ---- */

static int on_status(const char *node, const char *kind, const char *ns, const char *name,
                     json_t *content, void *arg)
{
    char *txt = content ? tn_json_dump(content) : NULL;
    LOCK();
    int delay = F.status_delay_ms;
    if (F.nstatus < 8)
        snprintf(F.status[F.nstatus], sizeof(F.status[0]), "%s %s %s/%s %s", node, kind, ns, name,
                 txt ? txt : "null");
    F.nstatus++;
    UNLOCK();
    free(txt);
    if (delay) sleep_ms(delay);
    LOCK();
    F.status_returned++;
    UNLOCK();
    return 0;
}

static void on_node(const char *node, int connected, void *arg)
{
    LOCK();
    if (connected)
        F.conn_events++;
    else
        F.disc_events++;
    snprintf(F.last_node_event, sizeof(F.last_node_event), "%s %d", node, connected);
    UNLOCK();
}

/* ---- client callbacks (client loop thread); user = struct cli ---- */

static void cli_open(struct tn_ws_conn *c, void *user)
{
    struct cli *k = user;
    LOCK();
    k->open++;
    UNLOCK();
}

static void cli_message(struct tn_ws_conn *c, const char *data, size_t len, int bin, void *user)
{
    struct cli *k = user;
    LOCK();
    if (strstr(data, "\"ack\"") && F.status_returned == 0) F.ack_before_return++;
    if (k->nmsg < NMSG) snprintf(k->msgs[k->nmsg], sizeof(k->msgs[0]), "%.*s", (int)len, data);
    k->nmsg++;
    UNLOCK();
}

static void cli_close(struct tn_ws_conn *c, int code, void *user)
{
    struct cli *k = user;
    LOCK();
    k->closed++;
    k->code = code;
    k->conn = NULL;
    UNLOCK();
}

static void cli_error(struct tn_ws_conn *c, const char *msg, void *user)
{
    struct cli *k = user;
    LOCK();
    k->error++;
    k->conn = NULL;
    UNLOCK();
}

/* ---- loops and client jobs ---- */

static void *loop_main(void *arg)
{
    tn_http_server_run(arg);
    return NULL;
}

static size_t fx_queue_cap; /* 0 = the default */

static void fx_start(const char *const *tokens)
{
    memset(&F, 0, sizeof(F));
    pthread_mutex_init(&F.mu, NULL);
    pthread_cond_init(&F.cv, NULL);
    F.reg = tn_metrics_new();
    struct tn_ml_opts o = {0};
    o.node_tokens = tokens;
    o.metrics = F.reg;
    o.on_status = on_status;
    o.on_node = on_node;
    o.queue_cap = fx_queue_cap;
    struct tn_err err = {0};
    F.ml = tn_ml_new(&o, &err);
    ck_assert_msg(F.ml != NULL, "%s", err.msg);

    struct tn_http_config cfg = {0};
    cfg.addr = "127.0.0.1";
    cfg.port = 0;
    cfg.name = "gm-test";
    tn_ml_configure(F.ml, &cfg);
    F.srv = tn_http_server_new(&cfg, &err);
    ck_assert_msg(F.srv != NULL, "%s", err.msg);
    tn_ml_attach(F.ml, F.srv);
    F.port = tn_http_server_port(F.srv);
    ck_assert_int_eq(pthread_create(&F.srv_t, NULL, loop_main, F.srv), 0);

    struct tn_http_config ccfg = {0};
    ccfg.port = -1;
    ccfg.name = "lc-test";
    F.cl = tn_http_server_new(&ccfg, &err);
    ck_assert_msg(F.cl != NULL, "%s", err.msg);
    ck_assert_int_eq(pthread_create(&F.cl_t, NULL, loop_main, F.cl), 0);
}

static void fx_stop(void)
{
    tn_http_server_stop(F.cl);
    pthread_join(F.cl_t, NULL);
    tn_http_server_free(F.cl);
    tn_http_server_stop(F.srv);
    pthread_join(F.srv_t, NULL);
    tn_ml_stop(F.ml);
    tn_http_server_free(F.srv);
    tn_ml_free(F.ml);
    tn_metrics_free(F.reg);
    pthread_mutex_destroy(&F.mu);
    pthread_cond_destroy(&F.cv);
}

enum { J_CONNECT, J_SEND, J_SEND_BIN, J_CLOSE };

struct job {
    int what, idx;
    char *text;
    char hdrs[3][128];
};

static void job_run(void *arg)
{
    struct job *j = arg;
    struct cli *k = &F.cli[j->idx];
    switch (j->what) {
    case J_CONNECT: {
        char url[64];
        snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", F.port);
        const char *h[4] = {NULL};
        for (int i = 0, n = 0; i < 3; i++)
            if (j->hdrs[i][0]) h[n++] = j->hdrs[i];
        struct tn_ws_connect_opts o = {0};
        o.url = url;
        o.headers = h;
        o.on_open = cli_open;
        o.on_message = cli_message;
        o.on_close = cli_close;
        o.on_connect_error = cli_error;
        o.user = k;
        struct tn_err err = {0};
        struct tn_ws_conn *c = tn_ws_connect(F.cl, &o, &err);
        LOCK();
        k->conn = c;
        if (!c) k->error++;
        UNLOCK();
        break;
    }
    case J_SEND:
    case J_SEND_BIN:
        if (k->conn) tn_ws_send(k->conn, j->text, strlen(j->text), j->what == J_SEND_BIN);
        break;
    case J_CLOSE:
        if (k->conn) tn_ws_close(k->conn, 1000, "bye");
        break;
    }
    free(j->text);
    free(j);
}

static void cli_connect(int idx, const char *h1, const char *h2, const char *h3)
{
    struct job *j = calloc(1, sizeof(*j));
    j->what = J_CONNECT;
    j->idx = idx;
    const char *h[3] = {h1, h2, h3};
    for (int i = 0; i < 3; i++)
        snprintf(j->hdrs[i], sizeof(j->hdrs[i]), "%s", h[i] ? h[i] : "");
    ck_assert_int_eq(tn_http_server_post(F.cl, job_run, j), 0);
}

static void cli_send(int idx, const char *text, int bin)
{
    struct job *j = calloc(1, sizeof(*j));
    j->what = bin ? J_SEND_BIN : J_SEND;
    j->idx = idx;
    j->text = strdup(text);
    ck_assert_int_eq(tn_http_server_post(F.cl, job_run, j), 0);
}

/* The status envelope for a dataset, with ",\"id\":id" when id >= 0 (malloc'd). */
static char *status_env(const char *name, const char *content, long id)
{
    struct tn_err err = {0};
    size_t n;
    char *e = tn_msg_encode("default", "Dataset", name, TN_MSG_OP_STATUS, content, strlen(content),
                            &n, &err);
    ck_assert_ptr_nonnull(e);
    if (id < 0) return e;
    char *r = malloc(n + 32);
    snprintf(r, n + 32, "%.*s,\"id\":%ld}", (int)n - 1, e, id);
    free(e);
    return r;
}

static double metric(const char *name, const char *dir, const char *op)
{
    static const char *const labels[] = {"direction", "operation", NULL};
    if (dir) {
        const char *v[] = {dir, op};
        return tn_metric_value(tn_metrics_counter(F.reg, name,
                                                  "Websocket messages exchanged with "
                                                  "LCs.",
                                                  labels),
                               v);
    }
    if (strstr(name, "connected"))
        return tn_metric_value(
            tn_metrics_gauge(F.reg, name, "Edge nodes with an open websocket to GM.", NULL), NULL);
    return tn_metric_value(
        tn_metrics_gauge(F.reg, name, "Downstream messages stored, not yet written.", NULL), NULL);
}

static json_t *dataset(const char *name, int v)
{
    return json_pack("{s:s,s:{s:s,s:s},s:{s:i}}", "kind", "Dataset", "metadata", "name", name,
                     "namespace", "default", "spec", "v", v);
}

static char *write_script(const char *text)
{
    char *path = strdup("/tmp/tandem-ml-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Sedna's LC: hello, one status, then records every frame until 1.5 s after the first insert
 * (or 10 s) and prints them as a JSON list. */
static const char py_sedna_lc[] =
    "import asyncio, base64, json, sys, time, websockets\n"
    "async def main(uri):\n"
    "    got = []\n"
    "    async with websockets.connect(uri, extra_headers={'Node-Name': 'py-edge'}) as ws:\n"
    "        await ws.send(json.dumps({'namespace': '', 'resourceKind': '', 'resourceName': '',\n"
    "                                  'operation': ''}, separators=(',', ':')))\n"
    "        content = base64.b64encode(b'{\"numberOfSamples\":120}').decode()\n"
    "        await ws.send(json.dumps({'header': {'namespace': 'default', 'resourceKind':\n"
    "            'Dataset', 'resourceName': 'incr-ds', 'operation': 'status'},\n"
    "            'content': content}))\n"
    "        deadline = time.monotonic() + 10\n"
    "        while time.monotonic() < deadline:\n"
    "            try:\n"
    "                m = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())\n"
    "            except asyncio.TimeoutError:\n"
    "                break\n"
    "            got.append(m)\n"
    "            if '\"insert\"' in m:\n"
    "                deadline = min(deadline, time.monotonic() + 1.5)\n"
    "    print(json.dumps(got), flush=True)\n"
    "asyncio.run(main(sys.argv[1]))\n";

START_TEST(sedna_lc_in_python)
{
    if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import websockets' 2>/dev/null") != 0)
        ck_abort_msg("python3-websockets is not installed (hack/install-deps.sh installs it)");
    fx_start(NULL);
    char *script = write_script(py_sedna_lc);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "timeout 20 " PYTHON " %s ws://127.0.0.1:%d/", script, F.port);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);

    WAIT_FOR(F.nstatus == 1, 10);
    ck_assert_str_eq(F.status[0], "py-edge dataset default/incr-ds {\"numberOfSamples\":120}");
    ck_assert_int_eq(tn_ml_connected(F.ml, "py-edge"), 1);
    ck_assert(metric("tandem_gm_ws_connected_nodes", NULL, NULL) == 1);
    json_t *obj = dataset("incr-ds", 1);
    ck_assert_int_eq(tn_ml_send(F.ml, "py-edge", "Dataset", "default", "incr-ds", "insert", obj),
                     0);

    char out[8192] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python LC failed: %s", out);
    struct tn_err err = {0};
    json_t *got = tn_json_parse(out, strlen(out), &err);
    ck_assert_msg(json_is_array(got), "python LC said: %s", out);
    ck_assert_msg(json_array_size(got) == 1, "python LC got: %s", out);
    size_t elen;
    char *want = tn_msg_encode_json("default", "dataset", "incr-ds", "insert", obj, &elen, &err);
    ck_assert_str_eq(json_string_value(json_array_get(got, 0)), want);
    ck_assert_ptr_null(strstr(out, "features"));
    ck_assert_ptr_null(strstr(out, "ack"));
    ck_assert(metric("tandem_gm_ws_messages_total", "upstream", "status") == 1);
    ck_assert(metric("tandem_gm_ws_messages_total", "upstream", "hello") == 1);
    ck_assert(metric("tandem_gm_ws_messages_total", "downstream", "insert") == 1);
    WAIT_FOR(F.disc_events == 1, 5);
    ck_assert_int_eq(tn_ml_connected(F.ml, "py-edge"), 0);
    free(want);
    json_decref(got);
    json_decref(obj);
    unlink(script);
    free(script);
    fx_stop();
}
END_TEST

START_TEST(tandem_lc_gets_features_and_acks)
{
    fx_start(NULL);
    F.status_delay_ms = 300;
    cli_connect(0, "Node-Name: edge-t", "X-Tandem-Features: ack,resync", NULL);
    WAIT_FOR(F.cli[0].nmsg >= 1, 5);
    struct tn_msg m;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_msg_decode(F.cli[0].msgs[0], strlen(F.cli[0].msgs[0]), &m, &err), 0);
    ck_assert_str_eq(m.op, "features");
    char *feat = tn_json_dump(m.json);
    ck_assert_str_eq(feat, "{\"features\":[\"ack\",\"resync\"]}");
    free(feat);
    tn_msg_free(&m);

    size_t hn;
    char *hello = tn_msg_hello(&hn);
    cli_send(0, hello, 0);
    free(hello);
    char *s1 = status_env("ds1", "{\"numberOfSamples\":1}", 7);
    char *s2 = status_env("ds2", "{\"numberOfSamples\":2}", 8);
    cli_send(0, s1, 0);
    cli_send(0, s2, 0);
    free(s1);
    free(s2);
    WAIT_FOR(F.cli[0].nmsg >= 3, 5);
    ck_assert_int_eq(F.ack_before_return, 0);
    ck_assert_str_eq(F.status[0], "edge-t dataset default/ds1 {\"numberOfSamples\":1}");
    ck_assert_str_eq(F.status[1], "edge-t dataset default/ds2 {\"numberOfSamples\":2}");
    ck_assert_str_eq(F.cli[0].msgs[1], "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\","
                                       "\"resourceName\":\"\",\"operation\":\"ack\"},\"ack\":7}");
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[2], "\"ack\":8}"));
    ck_assert(metric("tandem_gm_ws_messages_total", "downstream", "ack") == 2);
    ck_assert(metric("tandem_gm_ws_messages_total", "downstream", "features") == 1);
    fx_stop();
}
END_TEST

START_TEST(newest_message_wins_while_disconnected)
{
    fx_start(NULL);
    for (int i = 0; i < 5; i++) {
        json_t *o = dataset("a", i);
        ck_assert_int_eq(tn_ml_send(F.ml, "edge-c", "dataset", "default", "a", "insert", o), 0);
        json_decref(o);
        if (i == 0) {
            o = dataset("b", 100);
            ck_assert_int_eq(tn_ml_send(F.ml, "edge-c", "dataset", "default", "b", "insert", o), 0);
            json_decref(o);
        }
    }
    ck_assert_uint_eq(tn_ml_pending(F.ml, "edge-c"), 2);
    ck_assert(metric("tandem_gm_ws_pending_messages", NULL, NULL) == 2);
    sleep_ms(100);
    cli_connect(0, "Node-Name: edge-c", NULL, NULL); /* a plain Sedna-style LC */
    WAIT_FOR(F.cli[0].nmsg >= 2, 5);
    sleep_ms(300);
    LOCK();
    int nmsg = F.cli[0].nmsg;
    UNLOCK();
    ck_assert_int_eq(nmsg, 2);
    struct tn_msg m;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_msg_decode(F.cli[0].msgs[0], strlen(F.cli[0].msgs[0]), &m, &err), 0);
    ck_assert_str_eq(m.name, "a");
    ck_assert_int_eq(tn_json_int(m.json, "spec.v", -1), 4);
    tn_msg_free(&m);
    ck_assert_int_eq(tn_msg_decode(F.cli[0].msgs[1], strlen(F.cli[0].msgs[1]), &m, &err), 0);
    ck_assert_str_eq(m.name, "b");
    tn_msg_free(&m);
    ck_assert_uint_eq(tn_ml_pending(F.ml, NULL), 0);
    ck_assert(metric("tandem_gm_ws_pending_messages", NULL, NULL) == 0);

    /* connected now: a delete goes straight out */
    ck_assert_int_eq(tn_ml_send(F.ml, "edge-c", "dataset", "default", "a", "delete", NULL), 0);
    WAIT_FOR(F.cli[0].nmsg >= 3, 5);
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[2], "\"delete\""));
    fx_stop();
}
END_TEST

START_TEST(node_tokens_checked_at_upgrade)
{
    char *path = write_script("# node,token\n\nedge-z, zzz\n  edge-a , s3cret \n");
    struct tn_err err = {0};
    char **tokens = tn_ml_tokens_load(path, &err);
    ck_assert_msg(tokens != NULL, "%s", err.msg);
    ck_assert_str_eq(tokens[2], "edge-a");
    ck_assert_str_eq(tokens[3], "s3cret");
    ck_assert_ptr_null(tokens[4]);
    unlink(path);
    free(path);
    path = write_script("edge-a,x\nedge-b\n");
    ck_assert_ptr_null(tn_ml_tokens_load(path, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, ":2: want \"node,token\""));
    unlink(path);
    free(path);
    fx_start((const char *const *)tokens);
    tn_ml_strv_free(tokens); /* the ml keeps a copy */
    cli_connect(0, "Node-Name: edge-a", NULL, NULL);
    cli_connect(1, "Node-Name: edge-a", "Authorization: Bearer wrong", NULL);
    cli_connect(2, "Node-Name: edge-b", "Authorization: Bearer s3cret", NULL);
    WAIT_FOR(F.cli[0].error == 1 && F.cli[1].error == 1 && F.cli[2].error == 1, 5);
    cli_connect(3, "Node-Name: edge-a", "Authorization: Bearer s3cret", NULL);
    WAIT_FOR(F.cli[3].open == 1, 5);
    ck_assert_int_eq(F.cli[0].open + F.cli[1].open + F.cli[2].open, 0);
    WAIT_FOR(F.conn_events == 1, 5);
    size_t n = 0;
    char **v = tn_ml_connected_nodes(F.ml, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "edge-a");
    ck_assert_ptr_null(v[1]);
    tn_ml_strv_free(v);
    fx_stop();
}
END_TEST

START_TEST(second_connection_replaces_first)
{
    fx_start(NULL);
    cli_connect(0, "Node-Name: edge-r", NULL, NULL);
    WAIT_FOR(F.cli[0].open == 1 && F.conn_events == 1, 5);
    cli_connect(1, "Node-Name: edge-r", NULL, NULL);
    WAIT_FOR(F.cli[1].open == 1 && F.cli[0].closed == 1, 5);
    ck_assert_int_eq(F.cli[0].code, 4000);
    WAIT_FOR(F.conn_events == 2, 5);
    ck_assert_int_eq(F.disc_events, 0);
    ck_assert_int_eq(tn_ml_connected(F.ml, "edge-r"), 1);
    ck_assert(metric("tandem_gm_ws_connected_nodes", NULL, NULL) == 1);
    json_t *o = dataset("x", 1);
    ck_assert_int_eq(tn_ml_send(F.ml, "edge-r", "dataset", "default", "x", "insert", o), 0);
    json_decref(o);
    WAIT_FOR(F.cli[1].nmsg == 1, 5);
    ck_assert_int_eq(F.cli[0].nmsg, 0);
    fx_stop();
}
END_TEST

START_TEST(resync_marker_only_for_announcing_lcs)
{
    fx_start(NULL);
    cli_connect(0, "Node-Name: edge-x", "X-Tandem-Features: resync", NULL);
    cli_connect(1, "Node-Name: edge-y", NULL, NULL);
    WAIT_FOR(F.conn_events == 2, 5);
    const char *nodes[] = {"edge-x", "edge-y"};
    for (int i = 0; i < 2; i++) {
        tn_ml_resync_begin(F.ml, nodes[i]);
        json_t *o = dataset("r", i);
        ck_assert_int_eq(tn_ml_send(F.ml, nodes[i], "dataset", "default", "r", "insert", o), 0);
        json_decref(o);
        tn_ml_resynced(F.ml, nodes[i]);
    }
    WAIT_FOR(F.cli[0].nmsg >= 3 && F.cli[1].nmsg >= 1, 5);
    sleep_ms(300);
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[0], "\"features\""));
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[1], "\"insert\""));
    ck_assert_str_eq(F.cli[0].msgs[2], "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\","
                                       "\"resourceName\":\"\",\"operation\":\"resynced\"}}");
    ck_assert_int_eq(F.cli[0].nmsg, 3);
    ck_assert_int_eq(F.cli[1].nmsg, 1);
    ck_assert_ptr_nonnull(strstr(F.cli[1].msgs[0], "\"insert\""));

    /* the marker of a resync begun before a reconnect is not sent */
    tn_ml_resync_begin(F.ml, "edge-x");
    cli_connect(2, "Node-Name: edge-x", "X-Tandem-Features: ack,resync", NULL);
    WAIT_FOR(F.conn_events == 3 && F.cli[2].nmsg >= 1, 5);
    tn_ml_resynced(F.ml, "edge-x");
    sleep_ms(300);
    ck_assert_int_eq(F.cli[2].nmsg, 1); /* features only */
    fx_stop();
}
END_TEST

START_TEST(garbage_is_counted_and_dropped)
{
    fx_start(NULL);
    cli_connect(0, "Node-Name: edge-g", "X-Tandem-Features: ack", NULL);
    WAIT_FOR(F.cli[0].open == 1 && F.cli[0].nmsg == 1, 5);
    static const char *const bad[] = {
        "not json",
        "{\"foo\":1}",
        "[1,2,3]",
        "{\"header\":5}",
        "{\"header\":{\"operation\":7}}",
        "{\"header\":{\"operation\":\"status\"},\"content\":\"!!\"}",
        "\"just a string\"",
        "{\"header\":{\"operation\":\"status\"},\"content\":\"bm9w\"}"};
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    for (size_t i = 0; i < nbad; i++)
        cli_send(0, bad[i], 0);
    cli_send(0, "\x01\x02garbage", 1);
    /* an unknown operation with an id: dropped, but acked so the LC does not re-send it */
    cli_send(0,
             "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"x\",\"resourceName\":\"y\","
             "\"operation\":\"frobnicate\"},\"content\":null,\"id\":3}",
             0);
    char *ok = status_env("after", "{\"numberOfSamples\":5}", 4);
    cli_send(0, ok, 0);
    free(ok);
    WAIT_FOR(F.nstatus == 1 && F.cli[0].nmsg >= 3, 5);
    ck_assert_str_eq(F.status[0], "edge-g dataset default/after {\"numberOfSamples\":5}");
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[1], "\"ack\":3}"));
    ck_assert_ptr_nonnull(strstr(F.cli[0].msgs[2], "\"ack\":4}"));
    /* every bad text frame, plus the binary one */
    ck_assert(metric("tandem_gm_ws_messages_total", "upstream", "invalid") == (double)nbad + 1);
    ck_assert(metric("tandem_gm_ws_messages_total", "upstream", "other") == 1);
    ck_assert_int_eq(F.cli[0].closed, 0);
    ck_assert_int_eq(tn_ml_connected(F.ml, "edge-g"), 1);
    fx_stop();
}
END_TEST

/* A full upstream queue: the status is dropped unacked and the connection closed with 4001, so
 * the LC reconnects and re-sends what was not acked. */
START_TEST(full_queue_closes_the_connection)
{
    fx_queue_cap = 2;
    fx_start(NULL);
    fx_queue_cap = 0;
    F.status_delay_ms = 500;
    cli_connect(0, "Node-Name: edge-o", "X-Tandem-Features: ack", NULL);
    WAIT_FOR(F.cli[0].nmsg == 1, 5);
    for (long i = 1; i <= 6; i++) {
        char *st = status_env("o", "{\"numberOfSamples\":1}", i);
        cli_send(0, st, 0);
        free(st);
    }
    WAIT_FOR(F.cli[0].closed == 1, 5);
    ck_assert_int_eq(F.cli[0].code, TN_ML_CLOSE_OVERLOADED);
    ck_assert(metric("tandem_gm_ws_messages_total", "upstream", "dropped") >= 1);
    double queued = metric("tandem_gm_ws_messages_total", "upstream", "status");
    ck_assert(queued >= 2 && queued <= 3);
    WAIT_FOR(F.status_returned == (int)queued, 5);
    sleep_ms(100);
    ck_assert_int_eq(F.nstatus, (int)queued);
    fx_stop();
}
END_TEST

/* Controllers send from several worker threads at once while the loop writes. */
static void *sender(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%ld-%d", t, i);
        json_t *o = dataset(name, i);
        ck_assert_int_eq(tn_ml_send(F.ml, "edge-m", "dataset", "default", name, "insert", o), 0);
        json_decref(o);
    }
    return NULL;
}

START_TEST(concurrent_senders)
{
    fx_start(NULL);
    cli_connect(0, "Node-Name: edge-m", NULL, NULL);
    WAIT_FOR(F.conn_events == 1, 5);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, sender, (void *)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    WAIT_FOR(F.cli[0].nmsg == 800, 10);
    ck_assert(metric("tandem_gm_ws_messages_total", "downstream", "insert") == 800);
    ck_assert_uint_eq(tn_ml_pending(F.ml, NULL), 0);
    fx_stop();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("gm_messagelayer");
    TCase *tc = tcase_create("ml");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sedna_lc_in_python);
    tcase_add_test(tc, tandem_lc_gets_features_and_acks);
    tcase_add_test(tc, newest_message_wins_while_disconnected);
    tcase_add_test(tc, node_tokens_checked_at_upgrade);
    tcase_add_test(tc, second_connection_replaces_first);
    tcase_add_test(tc, resync_marker_only_for_announcing_lcs);
    tcase_add_test(tc, garbage_is_counted_and_dropped);
    tcase_add_test(tc, full_queue_closes_the_connection);
    tcase_add_test(tc, concurrent_senders);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
