/* Internal contract between the parts of tandem-apiserver (core object semantics, HTTP handlers,
 * tables, controllers). Not a public API. Loop thread only. */
#ifndef TN_APISERVER_INTERNAL_H
#define TN_APISERVER_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "apiserver/apiserver.h"
#include "apiserver/causes.h"
#include "apiserver/registry.h"
#include "apiserver/store.h"
#include "apiserver/watch.h"
#include "base/http.h"

struct tn_token {
    char *token, *user;
};

struct tn_apiserver {
    struct tn_apiserver_config cfg;
    struct tn_store *store;
    struct tn_http_server *http;
    struct tn_registry reg;
    struct tn_watch_hub *hub;
    struct tn_token *tokens;
    size_t ntokens;
    /* controller work: keys "res|ns|name" to look at on the next tick */
    char **dirty;
    size_t ndirty, capdirty;
    int tick_scheduled;
    char *cert_dir_owned; /* default cert dir when --cert-dir was not given */
};

/* Result of an operation, turned into an HTTP response by the handlers. */
struct tn_reply {
    int code;        /* HTTP status */
    char reason[40]; /* Status reason when code >= 400 */
    char msg[1024];
    struct tn_causes causes;
    json_t *obj;   /* new reference: resulting object (2xx) */
    char kind[96]; /* for Status details */
    char name[256];
    char group[96];
};

void tn_reply_init(struct tn_reply *r);
void tn_reply_free(struct tn_reply *r);
/* Fills an error reply; returns code. */
int tn_reply_err(struct tn_reply *r, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* New: the Status object for an error reply. */
json_t *tn_reply_status(const struct tn_reply *r, const struct tn_rtype *t);

/* Core operations (core.c). obj is borrowed and may be modified. */
struct tn_write_opts {
    int dry_run;
    int status_only;         /* /status subresource */
    int strict;              /* fieldValidation=Strict */
    int64_t expect_rv;       /* 0 = unconditional */
    const char *propagation; /* delete: Orphan|Background|Foreground; NULL = default */
    int64_t grace;           /* delete: gracePeriodSeconds, -1 = default */
    const char *precond_uid;
};
int tn_obj_get(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, const char *name,
               struct tn_reply *rep);
int tn_obj_create(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, json_t *obj,
                  const struct tn_write_opts *o, struct tn_reply *rep);
int tn_obj_update(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                  const char *name, json_t *obj, const struct tn_write_opts *o,
                  struct tn_reply *rep);
int tn_obj_delete(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                  const char *name, const struct tn_write_opts *o, struct tn_reply *rep);
/* Loads an object (new reference) or NULL. */
json_t *tn_obj_load(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns,
                    const char *name);
/* Calls fn for each stored object of t (parsed, borrowed) in ns (NULL = all). */
typedef int (*tn_obj_fn)(json_t *obj, void *arg);
int tn_obj_each(struct tn_apiserver *a, const struct tn_rtype *t, const char *ns, tn_obj_fn fn,
                void *arg);

/* Controllers (controllers.c). */
void tn_ctrl_notify(struct tn_apiserver *a, const struct tn_rtype *t, const json_t *obj,
                    const json_t *old, const char *type);
void tn_ctrl_tick(void *arg);
void tn_ctrl_start(struct tn_apiserver *a);
/* Deletes all objects of a CRD's resource and unregisters it. */
void tn_ctrl_crd_cleanup(struct tn_apiserver *a, const json_t *crd);
/* Applies a stored/created CRD to the registry and marks it Established. */
int tn_ctrl_crd_established(struct tn_apiserver *a, json_t *crd, struct tn_reply *rep);

/* Tables (table.c). New reference: a meta.k8s.io/v1 Table for a list (items array) or one
 * object. */
json_t *tn_table_for(const struct tn_rtype *t, json_t *items, const char *include_object,
                     int with_columns);
json_t *tn_table_row_event(const struct tn_rtype *t, const json_t *obj, const char *include_object,
                           void *arg);

/* HTTP handlers (handlers.c). */
void tn_handle(struct tn_http_req *req, void *arg);

#endif
