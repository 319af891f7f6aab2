/* Object storage of tandem-apiserver in sqlite (WAL): one row per object keyed by
 * (resource key, namespace, name) holding its JSON text, its resourceVersion and uid, plus an
 * index of owner references for garbage collection, and the global resourceVersion counter.
 * Ownership: returned strings are malloc'd, caller frees. Not thread-safe: the apiserver's loop
 * thread is the only user. */
#ifndef TN_APISERVER_STORE_H
#define TN_APISERVER_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "base/err.h"

struct tn_store;

/* path: a file, or ":memory:". */
struct tn_store *tn_store_open(const char *path, struct tn_err *err);
void tn_store_close(struct tn_store *s);

/* Highest resourceVersion handed out so far. */
int64_t tn_store_rv(const struct tn_store *s);
/* Reserves and returns the next resourceVersion (persisted with the next write). */
int64_t tn_store_next_rv(struct tn_store *s);

/* Returns 0 and the object's JSON text (malloc'd) and rv, TN_ENOTFOUND, or TN_EIO. */
int tn_store_get(struct tn_store *s, const char *res, const char *ns, const char *name, char **data,
                 int64_t *rv, struct tn_err *err);
/* Inserts or replaces. uid and owner uids (may be NULL/0) keep the owner index current. */
int tn_store_put(struct tn_store *s, const char *res, const char *ns, const char *name,
                 const char *data, int64_t rv, const char *uid, const char *const *owners,
                 size_t nowners, struct tn_err *err);
int tn_store_delete(struct tn_store *s, const char *res, const char *ns, const char *name,
                    struct tn_err *err);

/* Calls fn for each object of res (in namespace ns, or all when ns is NULL) in (ns, name) order,
 * starting after (after_ns, after_name) when given, at most limit rows (0 = all). fn returns
 * non-zero to stop. Returns the number of rows visited or a negative error. */
typedef int (*tn_store_row_fn)(const char *ns, const char *name, const char *data, int64_t rv,
                               void *arg);
int tn_store_list(struct tn_store *s, const char *res, const char *ns, const char *after_ns,
                  const char *after_name, long limit, tn_store_row_fn fn, void *arg);
/* Number of objects of res in ns (or all when NULL), only those after (after_ns, after_name)
 * in list order when after_ns is given. */
long tn_store_count(struct tn_store *s, const char *res, const char *ns);
long tn_store_count_after(struct tn_store *s, const char *res, const char *ns, const char *after_ns,
                          const char *after_name);

/* Dependents: objects whose ownerReferences name owner_uid. fn gets (res, ns, name). */
typedef int (*tn_store_ref_fn)(const char *res, const char *ns, const char *name, void *arg);
int tn_store_dependents(struct tn_store *s, const char *owner_uid, tn_store_ref_fn fn, void *arg);
/* Owner uids referenced by some object but belonging to no stored object. */
int tn_store_dangling_owners(struct tn_store *s, tn_store_ref_fn fn, void *arg);
/* 1 if an object with this uid exists. */
int tn_store_uid_exists(struct tn_store *s, const char *uid);

/* Groups several writes into one transaction (optional; each write is otherwise its own). */
int tn_store_begin(struct tn_store *s);
int tn_store_commit(struct tn_store *s);

#endif
