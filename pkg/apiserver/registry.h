/* The resource types tandem-apiserver serves: the built-in kinds the system needs and the kinds
 * defined by CustomResourceDefinitions (one entry per served version). Entries are immutable once
 * added; a CRD update replaces its entries. Ownership: the registry owns every tn_rtype and the
 * json_t schemas/columns inside. Not thread-safe (loop thread only). */
#ifndef TN_APISERVER_REGISTRY_H
#define TN_APISERVER_REGISTRY_H

#include <jansson.h>

#include "apiserver/causes.h"
#include "base/err.h"

struct tn_rtype {
    char group[96];
    char version[32];
    char resource[96];
    char kind[96];
    char list_kind[104];
    char singular[96];
    char short_names[128]; /* comma-separated */
    char categories[128];  /* comma-separated */
    char key[200];         /* storage key: "<group>/<resource>" ("core/pods") */
    char crd_name[200];    /* owning CRD, "" for built-ins */
    int namespaced;
    int has_status; /* status subresource */
    int builtin;
    int storage;     /* this version is the storage version */
    json_t *schema;  /* CRD openAPIV3Schema of this version, or NULL */
    json_t *columns; /* CRD additionalPrinterColumns of this version, or NULL */
    struct tn_rtype *next;
};

struct tn_registry {
    struct tn_rtype *head;
};

/* Adds the built-in kinds. */
int tn_registry_init(struct tn_registry *r);
void tn_registry_free(struct tn_registry *r);

/* Borrowed lookups; NULL when not served. group "" is the core group. */
const struct tn_rtype *tn_registry_find(const struct tn_registry *r, const char *group,
                                        const char *version, const char *resource);
/* By apiVersion ("v1", "sedna.io/v1alpha1") and kind. */
const struct tn_rtype *tn_registry_find_kind(const struct tn_registry *r, const char *api_version,
                                             const char *kind);
/* Any served version of group/resource (for storage-level operations such as GC). */
const struct tn_rtype *tn_registry_find_key(const struct tn_registry *r, const char *key);

/* Validates a CustomResourceDefinition object (names, scope, versions, schemas, printer columns)
 * without registering it. Causes use field paths relative to the CRD ("spec.names.plural"). */
int tn_registry_validate_crd(const struct tn_registry *r, const json_t *crd, struct tn_causes *c);
/* Registers (or re-registers) the CRD's served versions. The CRD must be valid. */
int tn_registry_add_crd(struct tn_registry *r, const json_t *crd, struct tn_err *err);
/* Removes the entries of the CRD named name ("datasets.sedna.io"). */
void tn_registry_remove_crd(struct tn_registry *r, const char *name);

/* New: array of descriptors for the OpenAPI builder (see openapi.h). */
json_t *tn_registry_descriptors(const struct tn_registry *r);

#endif
