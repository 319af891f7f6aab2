/* Watch history and fan-out; see watch.h. Each event is serialised once; plain watchers get the
 * shared text, Table watchers get a row built by the caller's table function. */
#include "apiserver/watch.h"
#include "apiserver/registry.h"
#include "apiserver/selector.h"
#include "base/buf.h"
#include "base/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist_ev {
    int64_t rv;
    char type[12];
    char *key;
    char *ns;
    char *obj; /* JSON text */
};

struct tn_watcher {
    struct tn_watch_hub *h;
    struct tn_http_server *srv;
    struct tn_http_req *req;
    const struct tn_rtype *t;
    char key[200];
    char *ns;
    struct tn_labelsel *labels;
    struct tn_fieldsel *fields;
    int bookmarks, table, ending;
    char include_object[16];
    struct tn_http_timer *timer;
    struct tn_watcher *prev, *next;
};

struct tn_watch_hub {
    struct hist_ev *ring;
    size_t cap, start, n;
    int64_t oldest_rv;
    struct tn_watcher *watchers;
    size_t nwatchers;
    tn_watch_table_fn table_fn;
    void *table_arg;
};

struct tn_watch_hub *tn_watch_hub_new(size_t history, tn_watch_table_fn table_fn, void *arg)
{
    struct tn_watch_hub *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->cap = history ? history : 1;
    h->ring = calloc(h->cap, sizeof(*h->ring));
    if (!h->ring) {
        free(h);
        return NULL;
    }
    h->table_fn = table_fn;
    h->table_arg = arg;
    return h;
}

static void ev_clear(struct hist_ev *e)
{
    free(e->key);
    free(e->ns);
    free(e->obj);
    memset(e, 0, sizeof(*e));
}

static void watcher_unlink_free(struct tn_watcher *w)
{
    struct tn_watch_hub *h = w->h;
    if (w->prev)
        w->prev->next = w->next;
    else
        h->watchers = w->next;
    if (w->next) w->next->prev = w->prev;
    h->nwatchers--;
    if (w->timer) tn_http_timer_cancel(w->timer);
    tn_labelsel_free(w->labels);
    tn_fieldsel_free(w->fields);
    free(w->ns);
    free(w);
}

void tn_watch_hub_free(struct tn_watch_hub *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->cap; i++)
        ev_clear(&h->ring[i]);
    free(h->ring);
    /* watchers are freed by their streams' close callbacks, which run when the HTTP server is
     * destroyed; detach them from the hub first */
    for (struct tn_watcher *w = h->watchers; w; w = w->next)
        w->h = NULL;
    free(h);
}

void tn_watch_set_base_rv(struct tn_watch_hub *h, int64_t rv)
{
    h->oldest_rv = rv;
}

int64_t tn_watch_oldest_rv(const struct tn_watch_hub *h)
{
    return h->oldest_rv;
}

size_t tn_watch_count(const struct tn_watch_hub *h)
{
    return h->nwatchers;
}

static void end_stream(struct tn_watcher *w)
{
    if (w->ending) return;
    w->ending = 1;
    tn_http_stream_end(w->req);
}

static void write_line(struct tn_watcher *w, const char *line, size_t len)
{
    if (w->ending) return;
    if (tn_http_stream_write(w->req, line, len))
        end_stream(w); /* the client does not keep up: it will relist */
}

static int passes(const struct tn_watcher *w, const json_t *obj)
{
    if (w->labels && !tn_labelsel_matches(w->labels, obj)) return 0;
    if (w->fields &&
        !tn_fieldsel_matches_resource(w->fields, w->key + strcspn(w->key, "/") + 1, obj))
        return 0;
    return 1;
}

static void send_obj(struct tn_watcher *w, const char *type, const json_t *obj, const char *text)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "{\"type\":\"%s\",\"object\":", type);
    if (w->table && w->h && w->h->table_fn) {
        json_t *tb = w->h->table_fn(w->t, obj, w->include_object, w->h->table_arg);
        char *s = tn_json_dump(tb);
        tn_buf_puts(&b, s ? s : "null");
        free(s);
        json_decref(tb);
    } else if (text) {
        tn_buf_puts(&b, text);
    } else {
        char *s = tn_json_dump(obj);
        tn_buf_puts(&b, s ? s : "null");
        free(s);
    }
    tn_buf_puts(&b, "}\n");
    write_line(w, b.data, b.len);
    tn_buf_free(&b);
}

static const char *mapped_type(const struct tn_watcher *w, const char *type, const json_t *obj,
                               const json_t *old)
{
    int now = passes(w, obj);
    if (strcmp(type, "MODIFIED") != 0 || !old) return now ? type : NULL;
    int before = passes(w, old);
    if (now && before) return "MODIFIED";
    if (now) return "ADDED";
    if (before) return "DELETED";
    return NULL;
}

void tn_watch_send(struct tn_watcher *w, const char *type, const json_t *obj)
{
    if (passes(w, obj)) send_obj(w, type, obj, NULL);
}

void tn_watch_publish(struct tn_watch_hub *h, const struct tn_rtype *t, const char *type,
                      int64_t rv, const json_t *obj, const json_t *old)
{
    char *text = tn_json_dump(obj);
    const char *ns = tn_json_str(obj, "metadata.namespace", "");
    /* record */
    struct hist_ev *e;
    if (h->n == h->cap) {
        e = &h->ring[h->start];
        h->oldest_rv = e->rv;
        ev_clear(e);
        h->start = (h->start + 1) % h->cap;
        h->n--;
    }
    e = &h->ring[(h->start + h->n) % h->cap];
    h->n++;
    e->rv = rv;
    snprintf(e->type, sizeof(e->type), "%s", type);
    e->key = strdup(t->key);
    e->ns = strdup(ns);
    e->obj = text ? strdup(text) : NULL;
    /* deliver */
    for (struct tn_watcher *w = h->watchers; w; w = w->next) {
        if (w->ending || strcmp(w->key, t->key) != 0) continue;
        if (w->ns && strcmp(w->ns, ns) != 0) continue;
        const char *mt = mapped_type(w, type, obj, old);
        if (!mt) continue;
        if (strcmp(w->t->version, t->version) == 0) {
            send_obj(w, mt, obj, text);
        } else { /* another served version of the CRD: conversion None rewrites apiVersion */
            json_t *copy = json_copy((json_t *)obj);
            char av[200];
            snprintf(av, sizeof(av), "%s/%s", w->t->group, w->t->version);
            json_object_set_new(copy, "apiVersion", json_string(av));
            send_obj(w, mt, copy, NULL);
            json_decref(copy);
        }
    }
    free(text);
}

static void on_stream_close(void *arg)
{
    struct tn_watcher *w = arg;
    if (w->h) {
        watcher_unlink_free(w);
    } else {
        tn_labelsel_free(w->labels);
        tn_fieldsel_free(w->fields);
        free(w->ns);
        free(w);
    }
}

static void on_timeout(void *arg)
{
    struct tn_watcher *w = arg;
    w->timer = NULL;
    end_stream(w);
}

struct tn_watcher *tn_watch_start(struct tn_watch_hub *h, struct tn_http_server *srv,
                                  struct tn_http_req *req, const struct tn_rtype *t,
                                  struct tn_watch_opts *opts)
{
    struct tn_watcher *w = calloc(1, sizeof(*w));
    if (!w) {
        tn_labelsel_free(opts->labels);
        tn_fieldsel_free(opts->fields);
        tn_http_respond(req, 500, "text/plain", "out of memory", 13);
        return NULL;
    }
    w->h = h;
    w->srv = srv;
    w->req = req;
    w->t = t;
    snprintf(w->key, sizeof(w->key), "%s", t->key);
    w->ns = opts->ns ? strdup(opts->ns) : NULL;
    w->labels = opts->labels;
    w->fields = opts->fields;
    w->bookmarks = opts->bookmarks;
    w->table = opts->table;
    snprintf(w->include_object, sizeof(w->include_object), "%s",
             opts->include_object[0] ? opts->include_object : "Metadata");
    w->next = h->watchers;
    if (h->watchers) h->watchers->prev = w;
    h->watchers = w;
    h->nwatchers++;
    tn_http_stream_begin(req, 200, "application/json", on_stream_close, w);
    if (opts->timeout_ms > 0) w->timer = tn_http_timer_add(srv, opts->timeout_ms, on_timeout, w);
    return w;
}

int tn_watch_replay(struct tn_watcher *w, int64_t from_rv)
{
    struct tn_watch_hub *h = w->h;
    if (from_rv < h->oldest_rv) {
        char line[512];
        int n =
            snprintf(line, sizeof(line),
                     "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                     "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource "
                     "version: %lld (%lld)\",\"reason\":\"Expired\",\"code\":410}}\n",
                     (long long)from_rv, (long long)h->oldest_rv + 1);
        write_line(w, line, (size_t)n);
        end_stream(w);
        return TN_EGONE;
    }
    for (size_t i = 0; i < h->n; i++) {
        struct hist_ev *e = &h->ring[(h->start + i) % h->cap];
        if (e->rv <= from_rv || strcmp(e->key, w->key) != 0) continue;
        if (w->ns && strcmp(w->ns, e->ns) != 0) continue;
        json_t *obj = e->obj ? json_loads(e->obj, 0, NULL) : NULL;
        if (!obj) continue;
        if (w->t && strcmp(tn_json_str(obj, "apiVersion", ""), "") != 0) {
            char gv[140];
            snprintf(gv, sizeof(gv), "%s%s%s", w->t->group, w->t->group[0] ? "/" : "",
                     w->t->version);
            json_object_set_new(obj, "apiVersion", json_string(gv));
        }
        if (passes(w, obj)) send_obj(w, e->type, obj, NULL);
        json_decref(obj);
    }
    return 0;
}

void tn_watch_close_key(struct tn_watch_hub *h, const char *key)
{
    for (struct tn_watcher *w = h->watchers; w; w = w->next)
        if (!key || strcmp(w->key, key) == 0) end_stream(w);
}

void tn_watch_bookmarks(struct tn_watch_hub *h, int64_t rv)
{
    for (struct tn_watcher *w = h->watchers; w; w = w->next) {
        if (!w->bookmarks || w->ending) continue;
        char line[512];
        int n = snprintf(
            line, sizeof(line),
            "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s%s%s\","
            "\"metadata\":{\"resourceVersion\":\"%lld\"}}}\n",
            w->t->kind, w->t->group, w->t->group[0] ? "/" : "", w->t->version, (long long)rv);
        write_line(w, line, (size_t)n);
    }
}
