/* The JSONPath subset of client-go's util/jsonpath that CRD additionalPrinterColumns and
 * `kubectl wait --for=jsonpath=...` use: .a.b, ['b.c'], [0], [-1], [1:3], [*], .*, ..name,
 * [?(@.type=="Ready")] (==, !=, <, <=, >, >= against string/number/bool literals, or bare
 * @.x for existence), optionally wrapped in {...} and prefixed by $. Missing keys yield no result
 * (allowMissingKeys), never an error.
 * Ownership: a compiled path is heap-allocated (tn_jsonpath_free). Evaluation borrows the
 * document and returns a new array whose items are references into it (treat as read-only).
 * Thread-safety: a compiled path is immutable and may be evaluated concurrently. */
#ifndef TN_APISERVER_JSONPATH_H
#define TN_APISERVER_JSONPATH_H

#include <jansson.h>
#include <time.h>

#include "base/err.h"

struct tn_jsonpath;

/* Compiles expr. TN_EINVAL with a message naming the expression and the offset, e.g.
 * "invalid JSONPath \".spec[\": unterminated '[' at offset 6". *out is new. */
int tn_jsonpath_compile(const char *expr, struct tn_jsonpath **out, struct tn_err *err);
void tn_jsonpath_free(struct tn_jsonpath *jp);

/* New array of the results, in document order (borrowed items inside, incref'd). NULL on OOM. */
json_t *tn_jsonpath_eval(const struct tn_jsonpath *jp, const json_t *root);

/* Compile + eval in one step. NULL with err on a bad expression or OOM. */
json_t *tn_jsonpath_query(const char *expr, const json_t *root, struct tn_err *err);

/* The column check apiextensions applies to additionalPrinterColumns[].jsonPath: non-empty,
 * starts with '.', and compiles. TN_EINVAL "must be a simple json path starting with ." etc. */
int tn_jsonpath_check_column(const char *path, struct tn_err *err);

/* Same check under the name registry.c uses for CRD column validation. */
int tn_jsonpath_check(const char *expr, struct tn_err *err);

/* New reference to the first result of expr on obj (borrowed), or NULL when there is none or
 * the expression does not compile. Compiles on every call: for hot loops compile once. */
json_t *tn_jsonpath_first(const char *expr, const json_t *obj);

/* A table cell as the apiserver computes it from results (the array from tn_jsonpath_eval;
 * only the first result counts) for a column type: "string" (or NULL): strings as is,
 * numbers/bools as JSON text, objects/arrays as compact JSON (sorted keys); "integer",
 * "number", "boolean": the typed value or null when the type differs; "date": the age of an
 * RFC 3339 timestamp relative to now ("5m", "<invalid>" when unparsable). No result or a null
 * result gives JSON null (kubectl prints <none>). New reference; NULL only on OOM. */
json_t *tn_jsonpath_cell(const json_t *results, const char *type, time_t now);

/* Text form of one value as the string cell prints it ("null" for JSON null). malloc'd; caller
 * frees; NULL on OOM. Used by `kubectl wait --for=jsonpath='{...}'=value` comparisons. */
char *tn_jsonpath_text(const json_t *value);

#endif
