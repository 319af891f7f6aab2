/* Field-level error causes, as the `details.causes` of a Kubernetes 422 Status
 * ({"reason":"FieldValueInvalid","message":"...","field":"spec.trainProb"}).
 * Ownership: struct tn_causes owns its array; tn_causes_free releases it. Not thread-safe. */
#ifndef TN_APISERVER_CAUSES_H
#define TN_APISERVER_CAUSES_H

#include <stddef.h>

/* Reasons used by the real apiserver (metav1.CauseType). */
#define TN_CAUSE_INVALID "FieldValueInvalid"
#define TN_CAUSE_REQUIRED "FieldValueRequired"
#define TN_CAUSE_NOT_SUPPORTED "FieldValueNotSupported"
#define TN_CAUSE_TYPE "FieldValueTypeInvalid"
#define TN_CAUSE_TOO_LONG "FieldValueTooLong"
#define TN_CAUSE_TOO_MANY "FieldValueTooMany"
#define TN_CAUSE_FORBIDDEN "FieldValueForbidden"
#define TN_CAUSE_DUPLICATE "FieldValueDuplicate"
#define TN_CAUSE_UNKNOWN_FIELD "FieldValueUnknownField"

struct tn_cause {
    char reason[32];
    char field[256];   /* "spec.template.spec.containers[0].name" */
    char message[512]; /* human text; by convention "<field>: <what is wrong>" is built by the
                          Status encoder, so message holds only the second part */
};

struct tn_causes {
    struct tn_cause *v;
    size_t n, cap;
};

void tn_causes_init(struct tn_causes *c);
void tn_causes_free(struct tn_causes *c);
/* Appends a cause (fields truncated to fit). On allocation failure the cause is dropped. */
void tn_causes_add(struct tn_causes *c, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
