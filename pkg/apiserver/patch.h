/* PATCH bodies as the apiserver applies them: JSON merge patch (RFC 7386), JSON patch
 * (RFC 6902) and Kubernetes strategic merge patch for built-in kinds, driven by a static table of
 * the Go struct tags (patchStrategy / patchMergeKey); plus creation of a merge patch from two
 * documents. Ownership: original and patch are borrowed and never modified; every apply function
 * returns a NEW reference (caller json_decref's it) or NULL with err filled. Results share no
 * structure with the inputs. Thread-safe: no global mutable state. */
#ifndef TN_APISERVER_PATCH_H
#define TN_APISERVER_PATCH_H

#include <jansson.h>

#include "base/err.h"

enum tn_patch_type {
    TN_PATCH_JSON,      /* application/json-patch+json */
    TN_PATCH_MERGE,     /* application/merge-patch+json */
    TN_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    TN_PATCH_APPLY,     /* application/apply-patch+yaml (server-side apply; not applied here) */
};

/* The apiserver's cap on the number of operations in one JSON patch. */
#define TN_PATCH_MAX_JSON_OPS 10000

/* Maps a Content-Type header (parameters such as "; charset=utf-8" ignored) to a patch type.
 * Returns the type (>= 0) or TN_EUNSUPPORTED with the apiserver's 415 message. */
int tn_patch_type_parse(const char *content_type, struct tn_err *err);

/* RFC 7386: null deletes a key, objects merge recursively, anything else replaces. A patch that
 * is not an object replaces the whole document (a JSON null patch yields JSON null, a new
 * reference, not NULL). NULL only on OOM (TN_ENOMEM). */
json_t *tn_patch_merge(const json_t *original, const json_t *patch, struct tn_err *err);

/* RFC 6902 operations add, remove, replace, move, copy, test, with JSON pointers (~0, ~1, "-"
 * to append). Atomic: on any failure nothing is returned and original is untouched. Errors are
 * TN_EINVAL naming the operation index, op and path, e.g.
 * "json patch operation 0 (test) on path \"/baz\": test failed"; more than
 * TN_PATCH_MAX_JSON_OPS operations give TN_ETOOBIG. */
json_t *tn_patch_json(const json_t *original, const json_t *patch, struct tn_err *err);

/* 1 if strategic merge patch is known for apiVersion/kind (built-in kinds of the table), else 0
 * (custom resources). */
int tn_patch_strategic_supported(const char *api_version, const char *kind);

/* Strategic merge patch with the patch metadata of original's apiVersion/kind. Lists merge by
 * key where the Go types say so (containers by name, env by name, ports by containerPort, ...),
 * primitive "merge" lists (finalizers) merge as sets; other lists replace; maps merge; null
 * deletes. Directives: $patch (replace/delete on maps and list elements, replace on lists),
 * $retainKeys, $deleteFromPrimitiveList/<f>, $setElementOrder/<f>. Unknown kinds:
 * TN_EUNSUPPORTED "strategic merge patch is not supported for custom resources; use --type
 * merge". Malformed directives or list elements without their merge key: TN_EINVAL. */
json_t *tn_patch_strategic(const json_t *original, const json_t *patch, struct tn_err *err);
/* Same with an explicit apiVersion and kind (the resource being patched). */
json_t *tn_patch_strategic_for(const char *api_version, const char *kind, const json_t *original,
                               const json_t *patch, struct tn_err *err);

/* Applies a patch of the given type (TN_PATCH_APPLY gives TN_EUNSUPPORTED). */
json_t *tn_patch_apply(int type, const json_t *original, const json_t *patch, struct tn_err *err);

/* The RFC 7386 merge patch that turns original into modified (both borrowed): changed keys with
 * their new values, removed keys as null, nested objects diffed recursively, arrays and scalars
 * replaced whole. Equal documents give {}. New reference; NULL only on OOM. */
json_t *tn_patch_create_merge(const json_t *original, const json_t *modified, struct tn_err *err);

#endif
