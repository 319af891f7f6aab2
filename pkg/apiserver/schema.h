/* apiextensions.k8s.io/v1 structural schemas (the `openAPIV3Schema` of a CRD version), applied
 * the way the real apiextensions-apiserver applies them: structural checks when a CRD is
 * written, then pruning, defaulting and validation (OpenAPI keywords, list-type invariants and
 * x-kubernetes-validations CEL rules) of every custom object.
 *
 * Schemas and objects are jansson values. Schemas are always borrowed and never modified.
 * Messages and field paths follow the real apiserver, e.g. field "spec.trainProb" with message
 * `Invalid value: 1.5: spec.trainProb in body should be less than or equal to 1`. The root
 * `metadata` of an object is the caller's job (ObjectMeta rules) and is skipped here.
 *
 * Thread-safety: no shared state; concurrent calls on different objects are safe, and a schema
 * may be shared by readers. */
#ifndef TN_APISERVER_SCHEMA_H
#define TN_APISERVER_SCHEMA_H

#include <jansson.h>

#include "apiserver/causes.h"

/* Checks that schema (borrowed) is a structural schema the server can serve: a known `type` on
 * every node (except nodes with x-kubernetes-int-or-string or
 * x-kubernetes-preserve-unknown-fields), `items` for arrays, `properties` only on objects and never
 * with `additionalProperties`, no unsupported keywords ($ref, definitions, patternProperties,
 * uniqueItems: true, ...), only value validations inside allOf/anyOf/oneOf/not, compilable
 * `pattern`s and CEL rules, list-type settings, root metadata limited to name/generateName, and
 * `default`s that are valid against their own schema. path is the field path of the schema itself,
 * used as prefix of every cause
 * ("spec.versions[0].schema.openAPIV3Schema"). Returns 0 when valid, else TN_EINVAL with causes
 * appended, e.g. field "spec.versions[0].schema.openAPIV3Schema.properties[spec].type", message
 * "Required value: must not be empty for specified object fields". */
int tn_schema_check_structural(const json_t *schema, const char *path, struct tn_causes *causes);

/* Removes, in place, fields of obj not declared by schema. At the root apiVersion, kind and
 * metadata are always kept; under x-kubernetes-embedded-resource apiVersion, kind and metadata
 * are kept as they are. x-kubernetes-preserve-unknown-fields keeps unknown fields (known ones are
 * still pruned by their schema); additionalProperties (a schema, or true for anything) declares
 * map values. When unknown is non-NULL one cause per removed field is appended: reason
 * FieldValueUnknownField, field "spec.workers[1].foo", message `unknown field
 * "spec.workers[1].foo"` (what fieldValidation=Strict reports, and Warn turns into warnings).
 * Returns 0 or TN_ENOMEM. */
int tn_schema_prune(const json_t *schema, json_t *obj, struct tn_causes *unknown);

/* Applies `default`s in place: a missing property (or a null one that is not nullable) of a
 * present object gets a deep copy of its default, recursively (a defaulted object is itself
 * defaulted; defaults under items apply per element, under additionalProperties per value). Then,
 * like the real apiserver, drops null values of non-nullable properties that have no default.
 * The root metadata is left alone. Returns 0 or TN_ENOMEM. */
int tn_schema_default(const json_t *schema, json_t *obj);

/* Validates obj (borrowed) against schema in three passes like the real server: OpenAPI value
 * validation (type, nullable, int-or-string, enum, bounds, multipleOf, lengths in code points,
 * pattern, format date-time/date/byte/duration/uuid/ipv4/ipv6/int32/int64, items and property
 * counts, required, additionalProperties, allOf/anyOf/oneOf/not), x-kubernetes-list-type set/map
 * uniqueness, then x-kubernetes-validations CEL rules with self bound to each node (skipped, with
 * one cause saying so, when the first pass found type or enum errors). Rules that reference
 * oldSelf are skipped. Returns 0 when valid, TN_EINVAL with causes appended, or TN_ENOMEM. */
int tn_schema_validate(const json_t *schema, const json_t *obj, struct tn_causes *causes);

/* Same, for an update: transition rules (those using oldSelf) run where the old value can be
 * correlated with the new one (same property path, same map key, same list-type=map keys).
 * old may be NULL, which is tn_schema_validate. */
int tn_schema_validate_update(const json_t *schema, const json_t *obj, const json_t *old,
                              struct tn_causes *causes);

#endif
