/* The Dataset controller (Sedna's controllers/dataset): every Dataset with spec.nodeName is sent
 * to that node's LC as "insert" (create or replace, the full object) and, once deleted, as
 * "delete" with the last known object; the LC's numberOfSamples reports update .status. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "gm/controllers.h"
#include "gm/messagelayer.h"

const struct tn_kube_gvr tn_gm_gvr_datasets = {"sedna.io", "v1alpha1", "datasets"};

struct tn_gm_dataset {
    struct tn_mgr *mgr;
    struct tn_controller *c;
    struct tn_informer *inf; /* the controller's Dataset informer (borrowed) */
    struct tn_ml *ml;
    struct tn_gm_reports *reports;
    pthread_mutex_t mu;
    json_t *last; /* "ns/name" -> last object sent (for the delete message) */
};

/* The object as Sedna sends it: a copy with kind set. New reference. */
static json_t *downstream_obj(const json_t *obj)
{
    json_t *o = json_deep_copy(obj);
    if (o) json_object_set_new(o, "kind", json_string("Dataset"));
    return o;
}

static struct tn_result dataset_reconcile(struct tn_rctx *ctx, const char *ns, const char *name,
                                          void *arg)
{
    struct tn_gm_dataset *d = arg;
    struct tn_result res = {0};
    char key[512];

    snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
    json_t *obj = tn_rctx_get(ctx, &tn_gm_gvr_datasets, ns, name);

    pthread_mutex_lock(&d->mu);
    json_t *prev = json_incref(json_object_get(d->last, key));
    pthread_mutex_unlock(&d->mu);
    const char *prev_node = prev ? tn_json_str(prev, "spec.nodeName", "") : "";

    if (!obj) {
        if (prev && *prev_node) {
            int rc = tn_ml_send(d->ml, prev_node, "dataset", ns, name, "delete", prev);
            if (rc != 0) {
                res.err = rc;
                goto out;
            }
            tn_rctx_log(ctx, TN_LOG_INFO, "sent delete to edge", "node", prev_node,
                        (const char *)0);
        }
        pthread_mutex_lock(&d->mu);
        json_object_del(d->last, key);
        pthread_mutex_unlock(&d->mu);
        tn_gm_reports_apply(d->reports, ctx, &tn_gm_gvr_datasets, NULL, ns, name);
        goto out;
    }

    res.err = tn_gm_reports_apply(d->reports, ctx, &tn_gm_gvr_datasets, obj, ns, name);
    if (res.err) goto out;

    const char *node = tn_json_str(obj, "spec.nodeName", "");
    json_t *down = downstream_obj(obj);
    if (!down) {
        res.err = TN_ENOMEM;
        goto out;
    }
    /* Moved to another node (Sedna does not handle it): the old node forgets it. */
    if (*prev_node && strcmp(prev_node, node) != 0)
        tn_ml_send(d->ml, prev_node, "dataset", ns, name, "delete", prev);
    if (*node) {
        int rc = tn_ml_send(d->ml, node, "dataset", ns, name, "insert", down);
        if (rc != 0) {
            json_decref(down);
            res.err = rc;
            goto out;
        }
        tn_rctx_log(ctx, TN_LOG_DEBUG, "sent insert to edge", "node", node, (const char *)0);
    }
    pthread_mutex_lock(&d->mu);
    json_object_set_new(d->last, key, down);
    pthread_mutex_unlock(&d->mu);
out:
    json_decref(prev);
    json_decref(obj);
    return res;
}

struct tn_gm_dataset *tn_gm_dataset_add(struct tn_mgr *m, struct tn_ml *ml, struct tn_err *err)
{
    struct tn_gm_dataset *d = calloc(1, sizeof(*d));
    if (!d || !(d->reports = tn_gm_reports_new()) || !(d->last = json_object())) {
        if (d) tn_gm_reports_free(d->reports);
        free(d);
        tn_err_set(err, TN_ENOMEM, "dataset controller: out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    d->mgr = m;
    d->ml = ml;
    struct tn_controller_spec s = {
        .name = "dataset",
        .primary = tn_gm_gvr_datasets,
        .primary_kind = "Dataset",
        .reconcile = dataset_reconcile,
        .arg = d,
    };
    d->c = tn_mgr_add_controller(m, &s, err);
    if (!d->c) {
        tn_gm_dataset_free(d);
        return NULL;
    }
    /* Taken now: tn_mgr_informer belongs to the main thread, on_node runs elsewhere. */
    d->inf = tn_mgr_informer(m, &tn_gm_gvr_datasets, NULL, err);
    if (!d->inf) {
        tn_gm_dataset_free(d);
        return NULL;
    }
    return d;
}

int tn_gm_dataset_on_status(struct tn_gm_dataset *d, const char *node, const char *ns,
                            const char *name, json_t *content)
{
    if (!json_is_object(content)) {
        TN_WARN("dropping dataset status report without an object", "node", node, "namespace", ns,
                "name", name);
        return 0;
    }
    /* Only DatasetStatus fields are taken from the LC. */
    json_t *rep = json_object();
    const char *fields[] = {"numberOfSamples", "updateTime"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(content, fields[i]);
        if (v) json_object_set(rep, fields[i], v);
    }
    int rc = json_object_size(rep) ? tn_gm_reports_put(d->reports, ns, name, rep) : 0;
    json_decref(rep);
    if (rc != 0) return 1;
    return tn_controller_enqueue(d->c, ns, name) == 0 ? 0 : 1;
}

void tn_gm_dataset_on_node(struct tn_gm_dataset *d, const char *node, int connected)
{
    if (!connected) return;
    json_t *all = d->inf ? tn_informer_list(d->inf) : NULL;
    size_t i, n = 0;
    json_t *obj;

    tn_ml_resync_begin(d->ml, node);
    json_array_foreach(all, i, obj)
    {
        if (strcmp(tn_json_str(obj, "spec.nodeName", ""), node) != 0) continue;
        const char *ns = tn_json_str(obj, "metadata.namespace", "");
        const char *name = tn_json_str(obj, "metadata.name", "");
        json_t *down = downstream_obj(obj);
        if (down && tn_ml_send(d->ml, node, "dataset", ns, name, "insert", down) == 0) n++;
        json_decref(down);
    }
    tn_ml_resynced(d->ml, node);
    json_decref(all);
    char cnt[32];
    snprintf(cnt, sizeof(cnt), "%zu", n);
    TN_INFO("resynced datasets to node", "controller", "dataset", "node", node, "count", cnt);
}

void tn_gm_dataset_free(struct tn_gm_dataset *d)
{
    if (!d) return;
    tn_gm_reports_free(d->reports);
    json_decref(d->last);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
