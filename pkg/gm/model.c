/* The Model controller (upstream status: metrics, updateTime... merged into .status) and the
 * store of pending upstream status reports that it shares with the Dataset controller. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/timeutil.h"
#include "gm/controllers.h"
#include "kube/conditions.h"

const struct tn_kube_gvr tn_gm_gvr_models = {"sedna.io", "v1alpha1", "models"};

struct tn_gm_reports {
    pthread_mutex_t mu;
    json_t *pending; /* "ns/name" -> merged report object */
};

struct tn_gm_reports *tn_gm_reports_new(void)
{
    struct tn_gm_reports *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->pending = json_object();
    if (!r->pending) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void tn_gm_reports_free(struct tn_gm_reports *r)
{
    if (!r) return;
    json_decref(r->pending);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void report_key(char *out, size_t n, const char *ns, const char *name)
{
    snprintf(out, n, "%s/%s", ns ? ns : "", name ? name : "");
}

int tn_gm_reports_put(struct tn_gm_reports *r, const char *ns, const char *name,
                      const json_t *report)
{
    char key[512];
    int rc = 0;

    if (!json_is_object(report)) return TN_EINVAL;
    report_key(key, sizeof(key), ns, name);
    pthread_mutex_lock(&r->mu);
    json_t *cur = json_object_get(r->pending, key);
    if (cur) {
        if (json_object_update(cur, (json_t *)report) != 0) rc = TN_ENOMEM;
    } else if (json_object_set_new(r->pending, key, json_deep_copy(report)) != 0) {
        rc = TN_ENOMEM;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Takes the pending report of key (new reference) or NULL. */
static json_t *reports_take(struct tn_gm_reports *r, const char *key)
{
    pthread_mutex_lock(&r->mu);
    json_t *rep = json_incref(json_object_get(r->pending, key));
    if (rep) json_object_del(r->pending, key);
    pthread_mutex_unlock(&r->mu);
    return rep;
}

/* Puts rep (stolen) back under key, a newer pending report winning field by field. */
static void reports_restore(struct tn_gm_reports *r, const char *key, json_t *rep)
{
    pthread_mutex_lock(&r->mu);
    json_t *cur = json_object_get(r->pending, key);
    if (cur)
        json_object_update_missing(cur, rep);
    else
        json_object_set(r->pending, key, rep);
    pthread_mutex_unlock(&r->mu);
    json_decref(rep);
}

int tn_gm_reports_apply(struct tn_gm_reports *r, struct tn_rctx *ctx, const struct tn_kube_gvr *gvr,
                        const json_t *obj, const char *ns, const char *name)
{
    char key[512], now[64];
    int rc = 0;

    report_key(key, sizeof(key), ns, name);
    json_t *rep = reports_take(r, key);
    if (!rep) return 0;
    if (!obj) {
        json_decref(rep);
        return 0;
    }
    const json_t *old = json_object_get(obj, "status");
    json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
    json_object_update(st, rep);
    /* Compare without updateTime: a report that repeats what is stored changes nothing. */
    json_t *a = json_is_object(old) ? json_deep_copy(old) : json_object();
    json_t *b = json_deep_copy(st);
    if (!json_object_get(rep, "updateTime")) {
        json_object_del(a, "updateTime");
        json_object_del(b, "updateTime");
    }
    int changed = tn_status_changed(a, b);
    json_decref(a);
    json_decref(b);
    if (changed) {
        if (!json_object_get(rep, "updateTime")) {
            tn_time_now_rfc3339(now, sizeof(now));
            json_object_set_new(st, "updateTime", json_string(now));
        }
        rc = tn_rctx_update_status(ctx, gvr, obj, st);
    }
    json_decref(st);
    if (rc < 0) {
        reports_restore(r, key, rep);
        return rc;
    }
    json_decref(rep);
    return 0;
}

/* ---- Model controller ---- */

struct tn_gm_model {
    struct tn_controller *c;
    struct tn_gm_reports *reports;
};

static struct tn_result model_reconcile(struct tn_rctx *ctx, const char *ns, const char *name,
                                        void *arg)
{
    struct tn_gm_model *mo = arg;
    struct tn_result res = {0};
    json_t *obj = tn_rctx_get(ctx, &tn_gm_gvr_models, ns, name);
    res.err = tn_gm_reports_apply(mo->reports, ctx, &tn_gm_gvr_models, obj, ns, name);
    json_decref(obj);
    return res;
}

struct tn_gm_model *tn_gm_model_add(struct tn_mgr *m, struct tn_err *err)
{
    struct tn_gm_model *mo = calloc(1, sizeof(*mo));
    if (!mo || !(mo->reports = tn_gm_reports_new())) {
        free(mo);
        tn_err_set(err, TN_ENOMEM, "model controller: out of memory");
        return NULL;
    }
    struct tn_controller_spec s = {
        .name = "model",
        .primary = tn_gm_gvr_models,
        .primary_kind = "Model",
        .reconcile = model_reconcile,
        .arg = mo,
    };
    mo->c = tn_mgr_add_controller(m, &s, err);
    if (!mo->c) {
        tn_gm_model_free(mo);
        return NULL;
    }
    return mo;
}

int tn_gm_model_on_status(struct tn_gm_model *mo, const char *node, const char *ns,
                          const char *name, json_t *content)
{
    if (!json_is_object(content)) {
        TN_WARN("dropping model status report without an object", "node", node, "namespace", ns,
                "name", name);
        return 0;
    }
    if (tn_gm_reports_put(mo->reports, ns, name, content) != 0) return 1;
    return tn_controller_enqueue(mo->c, ns, name) == 0 ? 0 : 1;
}

void tn_gm_model_free(struct tn_gm_model *mo)
{
    if (!mo) return;
    tn_gm_reports_free(mo->reports);
    free(mo);
}
