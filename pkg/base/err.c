/* Error values with human messages; see err.h. */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

int tn_err_set(struct tn_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void tn_err_prefix(struct tn_err *err, const char *fmt, ...)
{
    if (!err) return;
    char pre[TN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    char old[TN_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    size_t n = strlen(pre);
    if (n > sizeof(err->msg) - 3) n = sizeof(err->msg) - 3;
    memcpy(err->msg, pre, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof(err->msg) - n - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = 0;
}

const char *tn_code_str(int code)
{
    switch (code) {
    case TN_OK:
        return "ok";
    case TN_EINVAL:
        return "invalid";
    case TN_ENOMEM:
        return "out of memory";
    case TN_EIO:
        return "i/o error";
    case TN_ENOTFOUND:
        return "not found";
    case TN_EEXIST:
        return "already exists";
    case TN_ECONFLICT:
        return "conflict";
    case TN_ETOOBIG:
        return "too large";
    case TN_EGONE:
        return "gone";
    case TN_EUNSUPPORTED:
        return "unsupported";
    default:
        return "internal error";
    }
}
