/* The GM's resource controllers on the framework of controller.h: Dataset (downstream to the
 * dataset's node, upstream numberOfSamples) and Model (upstream status only), plus the store of
 * upstream status reports they share.
 *
 * Upstream reports arrive on the message layer's dispatcher thread; they are kept per object key
 * (merged, newest field wins) and the key is enqueued, so the status write itself happens in a
 * reconcile, through tn_rctx_update_status (written only when it changes).
 *
 * Threading: *_add before tn_mgr_start, *_free after tn_mgr_stop and tn_ml_stop; on_status and
 * on_node are thread-safe. Ownership: the controllers borrow the manager and the ml. */
#ifndef TN_GM_CONTROLLERS_H
#define TN_GM_CONTROLLERS_H

#include <jansson.h>

#include "base/err.h"
#include "gm/controller.h"

struct tn_ml;

extern const struct tn_kube_gvr tn_gm_gvr_datasets;
extern const struct tn_kube_gvr tn_gm_gvr_models;

/* ---- pending upstream status reports (one per object key) ---- */
struct tn_gm_reports;
struct tn_gm_reports *tn_gm_reports_new(void);
void tn_gm_reports_free(struct tn_gm_reports *r);
/* Merges report (borrowed; must be an object) into the pending report of ns/name. 0 or
 * TN_EINVAL (not an object) / TN_ENOMEM. Thread-safe. */
int tn_gm_reports_put(struct tn_gm_reports *r, const char *ns, const char *name,
                      const json_t *report);
/* Reconcile helper: applies the pending report of ns/name, if any, to obj (borrowed, the cached
 * object; NULL = gone, the report is dropped) as a merge into .status, with updateTime set to now
 * when the report has none and something changed. Returns 0 or the write's error (the report is
 * then kept for the retry). */
int tn_gm_reports_apply(struct tn_gm_reports *r, struct tn_rctx *ctx, const struct tn_kube_gvr *gvr,
                        const json_t *obj, const char *ns, const char *name);

/* ---- Dataset ---- */
struct tn_gm_dataset;
struct tn_gm_dataset *tn_gm_dataset_add(struct tn_mgr *m, struct tn_ml *ml, struct tn_err *err);
/* Upstream report for kind "dataset". Returns 0 (queued) or nonzero (retry later). */
int tn_gm_dataset_on_status(struct tn_gm_dataset *d, const char *node, const char *ns,
                            const char *name, json_t *content);
/* Node connected: full resync of the node's Datasets. Manager must be started. */
void tn_gm_dataset_on_node(struct tn_gm_dataset *d, const char *node, int connected);
void tn_gm_dataset_free(struct tn_gm_dataset *d);

/* ---- Model ---- */
struct tn_gm_model;
struct tn_gm_model *tn_gm_model_add(struct tn_mgr *m, struct tn_err *err);
int tn_gm_model_on_status(struct tn_gm_model *mo, const char *node, const char *ns,
                          const char *name, json_t *content);
void tn_gm_model_free(struct tn_gm_model *mo);

#endif
