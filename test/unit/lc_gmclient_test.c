/* The LC's GM client (pkg/lc/gmclient) against scripted GMs: a Python "Sedna GM" (Debian's
 * websockets 10.4) that never negotiates, and a Tandem GM built on our own websocket server that
 * sends features, acks ids, can stop acking, drop the link or be down. Covers hello-first,
 * ordering, ack/delete rules, re-sends after reconnects, persistence across restarts, backoff,
 * the resynced marker and the bearer token. */
#include "apis/message.h"
#include "base/http.h"
#include "base/metrics.h"
#include "lc/gmclient.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define MAXID 512

struct st {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* LC side */
    char events[64][96];
    int nevents, resynced, link_up, link_down;
    /* Tandem GM side */
    int no_ack, send_resync;
    struct tn_ws_conn *conn;
    int opens, hellos, statuses, bad_order, missing_id;
    int idcount[MAXID];
    long long last_id;
    char auth[96], node[64], feat[64];
};

static struct st S;

static void st_reset(void)
{
    memset(&S, 0, sizeof(S));
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cv, NULL);
}

#define LOCK() pthread_mutex_lock(&S.mu)
#define UNLOCK()                                                                                   \
    do {                                                                                           \
        pthread_cond_broadcast(&S.cv);                                                             \
        pthread_mutex_unlock(&S.mu);                                                               \
    } while (0)

/* Polls cond (which may call the client) every 20 ms for at most secs. */
#define WAIT_FOR(cond, secs)                                                                       \
    do {                                                                                           \
        int ok_ = 0;                                                                               \
        for (int i_ = 0; i_ < (secs)*50; i_++) {                                                   \
            LOCK();                                                                                \
            ok_ = (cond);                                                                          \
            pthread_mutex_unlock(&S.mu);                                                           \
            if (ok_) break;                                                                        \
            usleep(20000);                                                                         \
        }                                                                                          \
        ck_assert_msg(ok_, "timed out after %ds waiting for %s", (secs), #cond);                   \
    } while (0)

/* ---- LC callbacks (dispatcher thread) ---- */

static void lc_message(const char *kind, const char *ns, const char *name, const char *op,
                       json_t *obj, void *arg)
{
    ck_assert_ptr_nonnull(obj);
    LOCK();
    if (S.nevents < 64)
        snprintf(S.events[S.nevents++], 96, "%s %s %s/%s %s", op, kind, ns, name,
                 json_string_value(json_object_get(obj, "kind")));
    UNLOCK();
}

static void lc_resynced(void *arg)
{
    LOCK();
    S.resynced++;
    if (S.nevents < 64) snprintf(S.events[S.nevents++], 96, "resynced");
    UNLOCK();
}

static void lc_link(int up, void *arg)
{
    LOCK();
    if (up)
        S.link_up++;
    else
        S.link_down++;
    UNLOCK();
}

/* ---- loops ---- */

struct loop {
    struct tn_http_server *s;
    pthread_t t;
};

static void *loop_main(void *arg)
{
    tn_http_server_run(arg);
    return NULL;
}

static void loop_start(struct loop *l, struct tn_http_config *cfg)
{
    struct tn_err err = {0};
    l->s = tn_http_server_new(cfg, &err);
    ck_assert_msg(l->s != NULL, "server: %s", err.msg);
    ck_assert_int_eq(pthread_create(&l->t, NULL, loop_main, l->s), 0);
}

static void loop_stop(struct loop *l)
{
    tn_http_server_stop(l->s);
    pthread_join(l->t, NULL);
    tn_http_server_free(l->s);
}

static void client_loop(struct loop *l)
{
    struct tn_http_config cfg = {0};
    cfg.port = -1;
    cfg.name = "lc-test";
    loop_start(l, &cfg);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the Tandem GM (our server, its loop thread) ---- */

static int gm_accept(struct tn_ws_conn *c, void *user)
{
    const char *a = tn_ws_header(c, "authorization");
    const char *n = tn_ws_header(c, "node-name");
    const char *f = tn_ws_header(c, "x-tandem-features");
    LOCK();
    snprintf(S.auth, sizeof(S.auth), "%s", a ? a : "(none)");
    snprintf(S.node, sizeof(S.node), "%s", n ? n : "(none)");
    snprintf(S.feat, sizeof(S.feat), "%s", f ? f : "(none)");
    UNLOCK();
    return 0;
}

static void gm_send_json(struct tn_ws_conn *c, const char *kind, const char *ns, const char *name,
                         const char *op, json_t *content)
{
    size_t len;
    char *m = tn_msg_encode_json(ns, kind, name, op, content, &len, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tn_ws_send(c, m, len, 0), 0);
    free(m);
    if (content) json_decref(content);
}

static void gm_open(struct tn_ws_conn *c, void *user)
{
    LOCK();
    S.conn = c;
    S.opens++;
    int announce = strstr(S.feat, "ack") != NULL, resync = S.send_resync;
    UNLOCK();
    if (announce)
        gm_send_json(c, "", "", "", "features",
                     json_pack("{s:[s,s]}", "features", "ack", "resync"));
    if (resync) {
        gm_send_json(c, "dataset", "default", "ds1", "insert",
                     json_pack("{s:s,s:{s:s}}", "kind", "Dataset", "metadata", "name", "ds1"));
        gm_send_json(c, "", "", "", "resynced", NULL);
    }
}

static void gm_message(struct tn_ws_conn *c, const char *data, size_t len, int bin, void *user)
{
    struct tn_msg m;
    ck_assert_int_eq(tn_msg_decode(data, len, &m, NULL), 0);
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *idv = json_object_get(root, "id");
    long long id = json_is_integer(idv) ? json_integer_value(idv) : -1;
    json_decref(root);
    LOCK();
    if (m.is_hello) {
        S.hellos++;
    } else if (strcmp(m.op, "status") == 0) {
        S.statuses++;
        if (id < 0) S.missing_id++;
        if (id >= 0 && id < MAXID) S.idcount[id]++;
        /* within a connection ids rise */
        if (id <= S.last_id) S.bad_order++;
        S.last_id = id;
    }
    int ack = !S.no_ack && id > 0;
    UNLOCK();
    if (ack) {
        char buf[160];
        int n = snprintf(buf, sizeof(buf),
                         "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":"
                         "\"\",\"operation\":\"ack\"},\"ack\":%lld}",
                         id);
        tn_ws_send(c, buf, (size_t)n, 0);
    }
    tn_msg_free(&m);
}

static void gm_close(struct tn_ws_conn *c, int code, void *user)
{
    LOCK();
    if (S.conn == c) S.conn = NULL;
    S.last_id = 0;
    UNLOCK();
}

static void gm_start(struct loop *l, int port)
{
    struct tn_http_config cfg = {0};
    cfg.addr = "127.0.0.1";
    cfg.port = port;
    cfg.name = "tandem-gm";
    cfg.ws_accept = gm_accept;
    cfg.ws_open = gm_open;
    cfg.ws_message = gm_message;
    cfg.ws_close = gm_close;
    loop_start(l, &cfg);
}

static void gm_drop_cb(void *arg)
{
    LOCK();
    struct tn_ws_conn *c = S.conn;
    UNLOCK();
    if (c) tn_ws_close(c, 4000, "dropped by test");
}

/* ---- client helpers ---- */

static struct tn_gmc *gmc(struct loop *l, struct tn_metrics *reg, const char *addr, const char *db,
                          const char *token, int fast)
{
    struct tn_gmc_opts o = {0};
    o.gm_address = addr;
    o.node_name = "edge-1";
    o.token = token;
    o.db_path = db;
    o.loop = l->s;
    o.on_message = lc_message;
    o.on_resynced = lc_resynced;
    o.on_link = lc_link;
    o.metrics = reg;
    if (fast) {
        o.backoff_initial_ms = 100;
        o.backoff_max_ms = 300;
    }
    struct tn_err err = {0};
    struct tn_gmc *c = tn_gmc_new(&o, &err);
    ck_assert_msg(c != NULL, "gmc: %s", err.msg);
    return c;
}

static void report(struct tn_gmc *c, int i)
{
    char name[32];
    snprintf(name, sizeof(name), "ds%d", i);
    json_t *st = json_pack("{s:i}", "numberOfSamples", i);
    struct tn_err err = {0};
    ck_assert_msg(tn_gmc_report(c, "Dataset", "default", name, st, &err) == 0, "%s", err.msg);
    json_decref(st);
}

static double metric(struct tn_metrics *r, const char *name)
{
    return tn_metric_value(tn_metrics_counter(r, name, "", NULL), NULL);
}

/* ---- (1) plain Sedna GM in Python ---- */

static const char py_gm[] =
    "import asyncio, base64, json, sys, websockets\n"
    "done = None\n"
    "def env(op, name, obj):\n"
    "    return json.dumps({'header': {'namespace': 'default', 'resourceKind': 'dataset',\n"
    "        'resourceName': name, 'operation': op},\n"
    "        'content': base64.b64encode(json.dumps(obj).encode()).decode()})\n"
    "async def handler(ws, path=None):\n"
    "    print('NODE', ws.request_headers.get('Node-Name'), flush=True)\n"
    "    n = 0\n"
    "    while n < 3:\n"
    "        raw = await asyncio.wait_for(ws.recv(), 15)\n"
    "        print('MSG', raw, flush=True)\n"
    "        if 'header' in json.loads(raw): n += 1\n"
    "    for op, name in (('insert', 'a'), ('insert', 'b'), ('delete', 'a')):\n"
    "        await ws.send(env(op, name, {'kind': 'Dataset', 'metadata': {'name': name}}))\n"
    "    await asyncio.sleep(1.5)\n"
    "    print('DONE', flush=True)\n"
    "    done.set_result(True)\n"
    "    await ws.close()\n"
    "async def main():\n"
    "    global done\n"
    "    done = asyncio.get_running_loop().create_future()\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0) as srv:\n"
    "        print('PORT', srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.wait_for(done, 25)\n"
    "asyncio.run(main())\n";

START_TEST(sedna_gm_plain_protocol)
{
    st_reset();
    ck_assert_msg(system(PYTHON " -c 'import websockets' 2>/dev/null") == 0,
                  "python3-websockets is not installed");
    char path[] = "/tmp/tandem-gmc-py-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, py_gm, strlen(py_gm)), (ssize_t)strlen(py_gm));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 30 " PYTHON " %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    char line[4096];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
    int port = 0;
    ck_assert_msg(sscanf(line, "PORT %d", &port) == 1, "python GM said: %s", line);

    struct loop l;
    client_loop(&l);
    struct tn_metrics *reg = tn_metrics_new();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port); /* Sedna's GM_ADDRESS form */
    struct tn_gmc *c = gmc(&l, reg, addr, ":memory:", NULL, 1);
    for (int i = 1; i <= 3; i++)
        report(c, i);
    ck_assert_int_eq(tn_gmc_pending(c), 3);

    char msgs[8][512];
    int nmsg = 0, done = 0;
    char node[64] = "";
    while (fgets(line, sizeof(line), p)) {
        if (strncmp(line, "NODE ", 5) == 0) snprintf(node, sizeof(node), "%.60s", line + 5);
        if (strncmp(line, "MSG ", 4) == 0 && nmsg < 8)
            snprintf(msgs[nmsg++], sizeof(msgs[0]), "%.500s", line + 4);
        if (strncmp(line, "DONE", 4) == 0) done = 1;
    }
    int st = pclose(p);
    unlink(path);
    ck_assert_msg(done && WIFEXITED(st) && WEXITSTATUS(st) == 0, "python GM failed (%d)", st);
    ck_assert_str_eq(node, "edge-1\n");
    ck_assert_int_eq(nmsg, 4);
    ck_assert_str_eq(
        msgs[0], "{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":\"\",\"operation\":"
                 "\"\"}\n");
    for (int i = 1; i <= 3; i++) {
        struct tn_msg m;
        ck_assert_int_eq(tn_msg_decode(msgs[i], strlen(msgs[i]), &m, NULL), 0);
        char want[16];
        snprintf(want, sizeof(want), "ds%d", i);
        ck_assert_str_eq(m.name, want);
        ck_assert_str_eq(m.op, "status");
        ck_assert_str_eq(m.kind, "Dataset");
        ck_assert_int_eq(tn_json_int(m.json, "numberOfSamples", 0), i);
        tn_msg_free(&m);
        ck_assert_msg(strstr(msgs[i], "\"id\"") == NULL, "id sent to a Sedna GM: %s", msgs[i]);
    }
    ck_assert_int_eq(tn_gmc_pending(c), 0);
    ck_assert_int_eq(tn_gmc_acked_mode(c), 0);
    WAIT_FOR(S.nevents >= 3, 5);
    ck_assert_str_eq(S.events[0], "insert dataset default/a Dataset");
    ck_assert_str_eq(S.events[1], "insert dataset default/b Dataset");
    ck_assert_str_eq(S.events[2], "delete dataset default/a Dataset");
    ck_assert_int_ge(S.link_up, 1);
    ck_assert_int_eq(metric(reg, "tandem_lc_upstream_sent_total"), 3);
    ck_assert_int_eq(metric(reg, "tandem_lc_upstream_acked_total"), 0);
    tn_gmc_free(c);
    loop_stop(&l);
    tn_metrics_free(reg);
}
END_TEST

/* ---- (2) Tandem GM: ids, acks, re-sends, GM down ---- */

START_TEST(tandem_gm_acks_and_resends)
{
    st_reset();
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "ws://127.0.0.1:%d/", port);
    struct loop l, gm;
    client_loop(&l);
    struct tn_metrics *reg = tn_metrics_new();
    struct tn_gmc *c = gmc(&l, reg, addr, ":memory:", NULL, 1);

    /* reports made before GM exists */
    for (int i = 1; i <= 5; i++)
        report(c, i);
    usleep(300000);
    ck_assert_int_eq(tn_gmc_connected(c), 0);
    gm_start(&gm, port);
    WAIT_FOR(S.idcount[5] == 1, 10);
    WAIT_FOR(tn_gmc_pending(c) == 0, 5);
    ck_assert_int_eq(tn_gmc_acked_mode(c), 1);
    ck_assert_int_eq(S.hellos, 1);

    /* GM stops acking: rows stay */
    LOCK();
    S.no_ack = 1;
    UNLOCK();
    for (int i = 6; i <= 10; i++)
        report(c, i);
    WAIT_FOR(S.idcount[10] >= 1, 5);
    usleep(200000);
    ck_assert_int_eq(tn_gmc_pending(c), 5);

    /* the link drops: every unacked row is re-sent and acked */
    LOCK();
    S.no_ack = 0;
    UNLOCK();
    ck_assert_int_eq(tn_http_server_post(gm.s, gm_drop_cb, NULL), 0);
    WAIT_FOR(S.idcount[10] >= 2, 10);
    WAIT_FOR(tn_gmc_pending(c) == 0, 5);

    /* GM goes away entirely; reports made meanwhile arrive when it is back */
    loop_stop(&gm);
    WAIT_FOR(!tn_gmc_connected(c), 5);
    for (int i = 11; i <= 15; i++)
        report(c, i);
    ck_assert_int_eq(tn_gmc_pending(c), 5);
    gm_start(&gm, port);
    WAIT_FOR(tn_gmc_pending(c) == 0, 10);

    LOCK();
    for (int i = 1; i <= 15; i++) {
        if (i >= 6 && i <= 10)
            ck_assert_msg(S.idcount[i] >= 1, "id %d count %d", i, S.idcount[i]);
        else
            ck_assert_msg(S.idcount[i] == 1, "id %d count %d", i, S.idcount[i]);
    }
    for (int i = 16; i < MAXID; i++)
        ck_assert_int_eq(S.idcount[i], 0);
    ck_assert_int_eq(S.idcount[0], 0);
    ck_assert_int_eq(S.missing_id, 0);
    ck_assert_int_eq(S.bad_order, 0);
    ck_assert_str_eq(S.feat, "ack,resync");
    ck_assert_str_eq(S.node, "edge-1");
    ck_assert_str_eq(S.auth, "(none)");
    UNLOCK();
    ck_assert_int_eq(metric(reg, "tandem_lc_upstream_acked_total"), 15);
    ck_assert_int_ge(metric(reg, "tandem_lc_upstream_sent_total"), 20);
    ck_assert_int_ge(metric(reg, "tandem_lc_gm_reconnects_total"), 2);
    ck_assert_int_eq(tn_metric_value(tn_metrics_gauge(reg, "tandem_lc_gm_link_up", "", NULL), NULL),
                     1);
    ck_assert_int_eq(
        tn_metric_value(tn_metrics_gauge(reg, "tandem_lc_upstream_pending", "", NULL), NULL), 0);
    tn_gmc_free(c);
    loop_stop(&gm);
    loop_stop(&l);
    tn_metrics_free(reg);
}
END_TEST

/* ---- bounded window: at most TN_GMC_WINDOW unacked on the wire ---- */

START_TEST(inflight_window_bounded)
{
    st_reset();
    S.no_ack = 1;
    struct loop l, gm;
    gm_start(&gm, 0);
    client_loop(&l);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tn_http_server_port(gm.s));
    struct tn_gmc *c = gmc(&l, NULL, addr, ":memory:", NULL, 1);
    for (int i = 1; i <= 300; i++)
        report(c, i);
    WAIT_FOR(S.statuses == TN_GMC_WINDOW, 10);
    usleep(300000);
    LOCK();
    ck_assert_int_eq(S.statuses, TN_GMC_WINDOW);
    S.no_ack = 0;
    UNLOCK();
    ck_assert_int_eq(tn_gmc_pending(c), 300);
    ck_assert_int_eq(tn_http_server_post(gm.s, gm_drop_cb, NULL), 0);
    WAIT_FOR(tn_gmc_pending(c) == 0, 10);
    LOCK();
    for (int i = 1; i <= 300; i++)
        ck_assert_msg(S.idcount[i] >= 1 && S.idcount[i] <= 2, "id %d count %d", i, S.idcount[i]);
    ck_assert_int_eq(S.bad_order, 0);
    UNLOCK();
    tn_gmc_free(c);
    loop_stop(&gm);
    loop_stop(&l);
}
END_TEST

/* ---- (3) persistence across a restart ---- */

START_TEST(pending_rows_survive_restart)
{
    st_reset();
    char dir[] = "/tmp/tandem-gmc-db-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char db[128];
    snprintf(db, sizeof(db), "%s/database.db", dir);
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct loop l, gm;
    client_loop(&l);
    struct tn_gmc *c = gmc(&l, NULL, addr, db, NULL, 1);
    for (int i = 1; i <= 10; i++)
        report(c, i);
    ck_assert_int_eq(tn_gmc_pending(c), 10);
    tn_gmc_free(c);

    c = gmc(&l, NULL, addr, db, NULL, 1);
    ck_assert_int_eq(tn_gmc_pending(c), 10);
    gm_start(&gm, port);
    WAIT_FOR(tn_gmc_pending(c) == 0, 10);
    LOCK();
    for (int i = 1; i <= 10; i++)
        ck_assert_int_eq(S.idcount[i], 1);
    ck_assert_int_eq(S.statuses, 10);
    UNLOCK();
    tn_gmc_free(c);
    loop_stop(&gm);

    /* a database error (here: locked by another writer past the busy timeout) reaches the
     * caller naming the database, and nothing is stored */
    c = gmc(&l, NULL, addr, db, NULL, 1);
    sqlite3 *other = NULL;
    ck_assert_int_eq(sqlite3_open(db, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    json_t *stj = json_pack("{s:i}", "numberOfSamples", 1);
    struct tn_err e1 = {0};
    ck_assert_int_eq(tn_gmc_report(c, "Dataset", "default", "x", stj, &e1), TN_EIO);
    json_decref(stj);
    ck_assert_msg(strstr(e1.msg, db) != NULL, "%s", e1.msg);
    ck_assert_msg(strstr(e1.msg, "Dataset default/x") != NULL, "%s", e1.msg);
    ck_assert_int_eq(tn_gmc_pending(c), 0);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    tn_gmc_free(c);
    loop_stop(&l);

    /* an unwritable database is a clear error naming it */
    struct tn_gmc_opts o = {0};
    o.gm_address = addr;
    o.node_name = "edge-1";
    o.db_path = "/nonexistent-dir/x.db";
    client_loop(&l);
    o.loop = l.s;
    struct tn_err err = {0};
    ck_assert_ptr_null(tn_gmc_new(&o, &err));
    ck_assert_int_eq(err.code, TN_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-dir/x.db"));
    loop_stop(&l);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- (4) default backoff keeps trying and stays bounded ---- */

START_TEST(reconnect_backoff_bounded)
{
    st_reset();
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct loop l, gm;
    client_loop(&l);
    struct tn_metrics *reg = tn_metrics_new();
    struct tn_gmc *c = gmc(&l, reg, addr, ":memory:", NULL, 0);
    sleep(3);
    gm_start(&gm, port);
    /* attempts near 0, 1, 3, 7 s (+-20 %): connected well before 10 s */
    WAIT_FOR(tn_gmc_connected(c), 8);
    ck_assert_int_ge(metric(reg, "tandem_lc_gm_reconnects_total"), 2);
    ck_assert_int_le(metric(reg, "tandem_lc_gm_reconnects_total"), 4);
    WAIT_FOR(S.link_up == 1, 2);
    tn_gmc_free(c);
    loop_stop(&gm);
    loop_stop(&l);
    tn_metrics_free(reg);
}
END_TEST

/* ---- (5) resynced marker, (6) token ---- */

START_TEST(resynced_marker_and_token)
{
    st_reset();
    S.send_resync = 1;
    struct loop l, gm;
    gm_start(&gm, 0);
    client_loop(&l);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tn_http_server_port(gm.s));
    struct tn_gmc *c = gmc(&l, NULL, addr, ":memory:", "s3cret-token", 1);
    WAIT_FOR(S.resynced == 1, 5);
    LOCK();
    ck_assert_int_eq(S.nevents, 2);
    ck_assert_str_eq(S.events[0], "insert dataset default/ds1 Dataset");
    ck_assert_str_eq(S.events[1], "resynced");
    ck_assert_str_eq(S.auth, "Bearer s3cret-token");
    ck_assert_str_eq(S.node, "edge-1");
    UNLOCK();
    tn_gmc_free(c);
    loop_stop(&gm);
    loop_stop(&l);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("lc_gmclient");
    TCase *tc = tcase_create("gmclient");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sedna_gm_plain_protocol);
    tcase_add_test(tc, tandem_gm_acks_and_resends);
    tcase_add_test(tc, inflight_window_bounded);
    tcase_add_test(tc, pending_rows_survive_restart);
    tcase_add_test(tc, reconnect_backoff_bounded);
    tcase_add_test(tc, resynced_marker_and_token);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
