/* metav1.Condition helpers on a jansson status object (status.conditions is a list keyed by
 * type), so controllers update conditions the way Kubernetes expects: lastTransitionTime moves
 * only when the status value flips, and callers learn whether anything changed so they write
 * the /status subresource only then.
 * Ownership: status objects are borrowed and modified in place; returned json_t are borrowed
 * from status. Thread-safety: none beyond jansson's (one owner per status object). */
#ifndef TN_KUBE_CONDITIONS_H
#define TN_KUBE_CONDITIONS_H

#include <jansson.h>

#include "base/err.h"

/* Checks a condition against the API validation of metav1.Condition: type a qualified name
 * (CamelCase or example.com/CamelCase, max 316), status True/False/Unknown, reason CamelCase
 * (1-1024, letters/digits/_/,/:, starts with a letter), message at most 32768 bytes.
 * Returns 0 or TN_EINVAL with err naming the field. message may be NULL. */
int tn_cond_validate(const char *type, const char *cstatus, const char *reason, const char *message,
                     struct tn_err *err);

/* Sets the condition of this type in status.conditions (creating the list and the entry as
 * needed). lastTransitionTime is set to now_rfc3339 (NULL = current time) for a new entry or
 * when the status value changes, and kept otherwise. observed_generation < 0 omits the field.
 * message NULL means "". Returns 1 if anything changed, 0 if the entry was already identical,
 * TN_EINVAL for invalid arguments (tn_cond_validate gives the message) or when status or
 * status.conditions has the wrong JSON type, TN_ENOMEM. */
int tn_cond_set(json_t *status, const char *type, const char *cstatus, const char *reason,
                const char *message, long long observed_generation, const char *now_rfc3339);

/* Borrowed: the condition object of this type, or NULL. */
json_t *tn_cond_get(const json_t *status, const char *type);
/* "True", "False", "Unknown" (borrowed), or NULL when the condition is absent. */
const char *tn_cond_status(const json_t *status, const char *type);
/* 1 when the condition exists with status "True", else 0. */
int tn_cond_is_true(const json_t *status, const char *type);
/* Removes the condition; returns 1 if it was there, 0 if not. */
int tn_cond_remove(json_t *status, const char *type);

/* 1 when the two status objects differ anywhere (conditions, their times and order included),
 * 0 when equal. Numbers compare by value (1 equals 1.0); NULL equals an empty object. */
int tn_status_changed(const json_t *old_status, const json_t *new_status);

#endif
