/* Errors shared by every module: functions return 0 or a negative code and, when the caller
 * passes one, fill a struct tn_err with a human message naming the object and the field.
 * Ownership: struct tn_err is caller-owned, fixed size, never allocated. Thread-safe (no state). */
#ifndef TN_BASE_ERR_H
#define TN_BASE_ERR_H

#include <stdarg.h>

enum tn_code {
    TN_OK = 0,
    TN_EINVAL = -1,    /* bad input from a user or peer */
    TN_ENOMEM = -2,    /* allocation failed or a cap was reached */
    TN_EIO = -3,       /* file, socket or database failure */
    TN_ENOTFOUND = -4, /* the named thing does not exist */
    TN_EEXIST = -5,    /* already exists */
    TN_ECONFLICT = -6, /* stale version or concurrent change */
    TN_ETOOBIG = -7,   /* input larger than the allowed limit */
    TN_EGONE = -8,     /* requested version no longer retained */
    TN_EUNSUPPORTED = -9,
    TN_EINTERNAL = -10,
};

#define TN_ERR_MSG_MAX 1024

struct tn_err {
    int code;                 /* one of enum tn_code */
    char msg[TN_ERR_MSG_MAX]; /* human message, NUL-terminated */
};

/* Fills err (if non-NULL) with code and a printf-style message; returns code so that callers
 * can write `return tn_err_set(err, TN_EINVAL, "...")`. */
int tn_err_set(struct tn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (for adding context while unwinding). */
void tn_err_prefix(struct tn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short name of a code ("invalid", "not found", ...). Static string. */
const char *tn_code_str(int code);

#endif
