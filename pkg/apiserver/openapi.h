/* OpenAPI documents served by tandem-apiserver so that real kubectl works against it: the v3
 * index (/openapi/v3), one v3 document per group-version (/openapi/v3/apis/<g>/<v>), and a v2
 * document (/openapi/v2). kubectl uses them for `kubectl explain`, for deciding to use
 * server-side field validation (it looks for a `fieldValidation` query parameter on the PATCH
 * operation carrying the GVK), and for client-side apply patch metadata.
 *
 * Input everywhere is a JSON array of resource descriptors built by the caller:
 *   {"group":"sedna.io" ("" for core),"version":"v1alpha1","kind":"Dataset",
 *    "listKind":"DatasetList","resource":"datasets","namespaced":true,
 *    "schema":<openAPIV3Schema or null>,"status":true|false,"builtin":true|false}
 * Descriptors are borrowed and never modified. Results are new references with deterministic
 * content (dump them with JSON_SORT_KEYS). Thread-safe: no shared state. */
#ifndef TN_APISERVER_OPENAPI_H
#define TN_APISERVER_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

/* New: {"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=<HASH>"},
 * "apis/sedna.io/v1alpha1":{...}}}, one entry per group-version present in descs; HASH is the
 * hash of the group-version document (tn_openapi_hash), so it changes when the document does.
 * NULL on allocation failure. */
json_t *tn_openapi_v3_index(const json_t *descs);

/* New: the OpenAPI 3.0.0 document of one group-version ("" group for core), or NULL when no
 * descriptor has that group-version (serve 404) or on allocation failure. components.schemas
 * holds each kind (`io.sedna.v1alpha1.Dataset`, `io.k8s.api.core.v1.Pod`) with
 * x-kubernetes-group-version-kind, its list kind, and the meta/v1 types they reference; paths
 * hold collection, item and (when status) status paths with get/put/patch/delete/post
 * operations. */
json_t *tn_openapi_v3_gv(const json_t *descs, const char *group, const char *version);

/* New: a Swagger 2.0 document with the definitions of the custom (non-builtin) kinds, their
 * schemas converted to v2 rules as the real apiserver publishes them (no nullable, no
 * allOf/anyOf/oneOf/not, no x-kubernetes-validations, properties/items dropped under nullable and
 * x-kubernetes-preserve-unknown-fields). Builtin kinds are omitted so that kubectl's client-side
 * logic falls back to its compiled-in types. NULL on allocation failure. */
json_t *tn_openapi_v2(const json_t *descs);

/* Writes the component/definition name of a kind into out: "io.sedna.v1alpha1.Dataset" for a
 * custom group, "io.k8s.api.core.v1.Pod" / "io.k8s.api.apps.v1.Deployment" for builtin ones. */
void tn_openapi_def_name(const char *group, const char *version, const char *kind, int builtin,
                         char *out, size_t n);

/* Content hash of a document (FNV-1a 64 of its sorted compact dump) as 16 uppercase hex digits
 * into out (>= 17 bytes). Returns 0, or -1 on allocation failure. */
int tn_openapi_hash(const json_t *doc, char *out, size_t n);

#endif
