/* Kubernetes label and field selectors: parsing with the apiserver's exact grammar and error
 * messages (apimachinery labels.Parse, metav1.LabelSelectorAsSelector, fields.ParseSelector),
 * matching against json_t objects, field-name validation per resource, rendering back to strings.
 * Ownership: parse/build functions return a heap selector the caller frees with the matching
 * _free. Objects passed to match functions are borrowed. Thread-safety: a built selector is
 * immutable, so it can be matched from several threads at once; no global state. */
#ifndef TN_APISERVER_SELECTOR_H
#define TN_APISERVER_SELECTOR_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

/* ---- labels ---- */

enum tn_label_op {
    TN_LABEL_IN,        /* key in (a,b) */
    TN_LABEL_NOTIN,     /* key notin (a,b) */
    TN_LABEL_EQ,        /* key=a */
    TN_LABEL_DEQ,       /* key==a */
    TN_LABEL_NEQ,       /* key!=a */
    TN_LABEL_EXISTS,    /* key */
    TN_LABEL_NOTEXISTS, /* !key */
    TN_LABEL_GT,        /* key>1 (integer compare) */
    TN_LABEL_LT,        /* key<1 */
};

struct tn_label_req {
    char *key;
    enum tn_label_op op;
    char **values; /* sorted, unique; empty for EXISTS/NOTEXISTS */
    size_t nvalues;
};

/* Read-only for callers. Requirements are sorted by key (stable), as apimachinery does. */
struct tn_labelsel {
    struct tn_label_req *reqs;
    size_t n;
    int nothing; /* built from a nil metav1.LabelSelector: matches no object */
};

/* Parses a label selector string ("app=web,tier in (a,b),!canary"). An empty or all-blank
 * string gives the empty selector (matches everything). On error returns TN_EINVAL with the
 * apiserver's message, e.g. "unable to parse requirement: found '', expected: identifier".
 * *out is a new selector (free with tn_labelsel_free). */
int tn_labelsel_parse(const char *s, struct tn_labelsel **out, struct tn_err *err);

/* Builds a selector from a metav1.LabelSelector object (borrowed): matchLabels and
 * matchExpressions (In, NotIn, Exists, DoesNotExist). NULL or JSON null gives a selector that
 * matches nothing; {} matches everything. Errors (TN_EINVAL) read like the apiserver's, e.g.
 * "\"Gt\" is not a valid label selector operator". */
int tn_labelsel_from_json(const json_t *label_selector, struct tn_labelsel **out,
                          struct tn_err *err);

/* Builds an equality selector from a plain string map (a Service's spec.selector), borrowed.
 * NULL, null or {} matches everything. Keys and values are validated. */
int tn_labelsel_from_map(const json_t *map, struct tn_labelsel **out, struct tn_err *err);

/* 1 if the labels map (borrowed; NULL means no labels) satisfies every requirement. */
int tn_labelsel_matches_labels(const struct tn_labelsel *sel, const json_t *labels);
/* 1 if obj's metadata.labels satisfy the selector. */
int tn_labelsel_matches(const struct tn_labelsel *sel, const json_t *obj);
/* 1 if the selector has no requirement and is not "nothing" (matches everything). */
int tn_labelsel_is_empty(const struct tn_labelsel *sel);

/* Renders the selector as apimachinery's String() does ("a in (x,y),b!=c,!d"); the nothing
 * selector and the empty selector render as "". malloc'd, caller frees; NULL on OOM. */
char *tn_labelsel_to_string(const struct tn_labelsel *sel);

void tn_labelsel_free(struct tn_labelsel *sel);

/* Validation of metadata.labels keys and values with the apiserver's detail messages
 * ("name part must consist of alphanumeric characters, ..."), several joined by "; ".
 * Return 0 or TN_EINVAL with err->msg holding only the detail text (no field prefix). */
int tn_label_key_validate(const char *key, struct tn_err *err);
int tn_label_value_validate(const char *value, struct tn_err *err);

/* ---- fields ---- */

struct tn_field_req {
    char *field;
    char *value; /* unescaped */
    int neq;     /* 1 for "!=", 0 for "=" and "==" */
};

/* Read-only for callers. Terms are sorted as fields.ParseSelector sorts them. */
struct tn_fieldsel {
    struct tn_field_req *reqs;
    size_t n;
};

/* Parses "metadata.name=foo,spec.nodeName!=", with "\" escaping "\", "," and "=" in values.
 * Empty string: empty selector. Errors (TN_EINVAL) as the apiserver words them:
 * "invalid selector: 'x'; can't understand 'x'",
 * "invalid field selector: invalid escape sequence: \\q". */
int tn_fieldsel_parse(const char *s, struct tn_fieldsel **out, struct tn_err *err);

/* Checks that every field of sel is selectable for resource ("pods", "events", "nodes",
 * "namespaces", "secrets", anything else), as the apiserver's field label conversion does.
 * namespaced says whether metadata.namespace is allowed (ignored for the known cluster-scoped
 * "nodes" and "namespaces"). TN_EINVAL: "field label not supported: spec.foo". */
int tn_fieldsel_validate(const struct tn_fieldsel *sel, const char *resource, int namespaced,
                         struct tn_err *err);

/* The string form of a selectable field of obj: strings as is, booleans "true"/"false",
 * integers in decimal, missing or null "". With a resource, the apiserver's field sets apply
 * (pods spec.hostNetwork and nodes spec.unschedulable default to "false"; events "source" is
 * source.component or else reportingComponent). resource may be NULL (plain dotted path).
 * malloc'd, caller frees; NULL on OOM. */
char *tn_fieldsel_value(const json_t *obj, const char *resource, const char *field);

/* 1 if obj (borrowed) satisfies every term; the field is read by dotted path. */
int tn_fieldsel_matches(const struct tn_fieldsel *sel, const json_t *obj);
/* Same with the resource-specific field semantics of tn_fieldsel_value. */
int tn_fieldsel_matches_resource(const struct tn_fieldsel *sel, const char *resource,
                                 const json_t *obj);

/* Value required by a "field=value" term (RequiresExactMatch), or NULL. Borrowed from sel. */
const char *tn_fieldsel_exact(const struct tn_fieldsel *sel, const char *field);

/* "a=b,c!=d" with values escaped; malloc'd, caller frees; NULL on OOM. */
char *tn_fieldsel_to_string(const struct tn_fieldsel *sel);

void tn_fieldsel_free(struct tn_fieldsel *sel);

#endif
