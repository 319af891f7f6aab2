/* A small, safe interpreter for the subset of CEL that CRD `x-kubernetes-validations` rules use:
 * a rule is parsed once (tn_cel_compile) and evaluated many times against JSON values with a
 * step budget, so a hostile rule cannot hang or exhaust the server. Also the RE2-to-POSIX regex
 * translation shared by CEL `matches()` and OpenAPI `pattern`.
 *
 * Supported: int (64-bit, overflow is an error), uint (`1u`), double, string (quotes, triple
 * quotes, raw r'..', escapes), bytes literals (treated as strings), bool, null, lists, maps;
 * `self`, `oldSelf`; field selection (escaped names like `foo__dash__bar` resolve to `foo-bar`),
 * indexing; has(); ! - * / % + - < <= > >= == != in && || ?: with CEL semantics (&& and || absorb
 * errors when the other side decides; heterogeneous numeric equality and ordering);
 * size, startsWith, endsWith, contains, matches, int, uint, double, string, bool, dyn,
 * duration, timestamp, lowerAscii, upperAscii, trim, indexOf, lastIndexOf, substring, replace,
 * split, join; macros all, exists, exists_one, map (2 and 3 args), filter over lists and maps.
 * Not supported: protobuf messages, type(), optional syntax, quantity/url/ip libraries.
 *
 * Thread-safety: a compiled program is immutable and may be evaluated by many threads at once;
 * each evaluation uses its own memory. */
#ifndef TN_APISERVER_CEL_H
#define TN_APISERVER_CEL_H

#include <jansson.h>
#include <regex.h>
#include <stdint.h>

#include "base/err.h"

/* Default step budget of one evaluation (each node evaluated, each comprehension iteration and
 * each element copied, compared or scanned costs a step). */
#define TN_CEL_DEFAULT_STEPS 1000000
/* Memory one evaluation may allocate before it is cancelled. */
#define TN_CEL_MAX_EVAL_BYTES ((size_t)64 << 20)
/* Longest rule accepted by tn_cel_compile. */
#define TN_CEL_MAX_RULE_LEN 65536

/* Text of the error returned when the budget runs out (same as cel-go). */
#define TN_CEL_COST_MSG "operation cancelled: actual cost limit exceeded"

struct tn_cel_prog;

/* Parses and checks a rule. On success *out is a new program (tn_cel_free). On a syntax error or
 * an undeclared identifier/function returns TN_EINVAL with err->msg like
 * "ERROR: <input>:1:5: Syntax error: mismatched input '<EOF>' expecting an expression"
 * (line:column, 1-based). */
int tn_cel_compile(const char *rule, struct tn_cel_prog **out, struct tn_err *err);
void tn_cel_free(struct tn_cel_prog *prog);
/* 1 when the rule references oldSelf (a transition rule), else 0. */
int tn_cel_uses_old_self(const struct tn_cel_prog *prog);

struct tn_cel_env {
    const json_t *self;     /* borrowed; NULL binds self to null */
    const json_t *schema;   /* borrowed structural schema of self, or NULL. It decides CEL
                               types: `type: number` ints become doubles, `format: date-time`
                               strings timestamps, `format: duration` strings durations */
    const json_t *old_self; /* borrowed; NULL when there is no old value (create) */
    uint64_t max_steps;     /* 0 means TN_CEL_DEFAULT_STEPS */
};

/* Evaluates prog. Returns 0 and *out (new reference: the result as JSON; durations as "3600s",
 * timestamps as RFC 3339), or:
 *   TN_EINVAL   evaluation error; err->msg holds the CEL error ("no such key: foo",
 *               "no such overload", "division by zero", "integer overflow", ...)
 *   TN_ETOOBIG  budget or memory exhausted; err->msg is TN_CEL_COST_MSG
 *   TN_ENOMEM   allocation failure. */
int tn_cel_eval(const struct tn_cel_prog *prog, const struct tn_cel_env *env, json_t **out,
                struct tn_err *err);
/* Same, for validation rules: *result is 0 or 1. A non-bool result is TN_EINVAL with
 * "rule did not evaluate to a bool". */
int tn_cel_eval_bool(const struct tn_cel_prog *prog, const struct tn_cel_env *env, int *result,
                     struct tn_err *err);

/* Compiles an RE2-style pattern (as used by OpenAPI `pattern` and CEL `matches`) into a POSIX
 * extended regex with REG_NOSUB: \d \D \w \W \s \S (also inside brackets), (?: ), a leading
 * (?i), lazy quantifiers (same match/no-match answer), \A \z, \n \t \r \f \v \xHH escapes.
 * Backreferences and \p classes are rejected. Returns 0 (caller regfree()s re) or TN_EINVAL
 * with a message in err. Thread-safe. */
int tn_regex_compile(regex_t *re, const char *pattern, struct tn_err *err);

/* Formats a double the way Go's %v / strconv 'g' -1 does ("1.5", "100000", "1e+06"), which is
 * how the real apiserver prints numbers in messages. */
void tn_cel_format_double(double d, char *out, size_t n);

#endif
