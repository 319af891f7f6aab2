/* Growable, capped byte buffer; see buf.h. */
#include "base/buf.h"
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tn_buf_init(struct tn_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : TN_BUF_DEFAULT_MAX;
}

void tn_buf_free(struct tn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void tn_buf_reset(struct tn_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

static int grow(struct tn_buf *b, size_t extra)
{
    size_t max = b->max ? b->max : TN_BUF_DEFAULT_MAX;
    if (extra > max || b->len > max - extra) return TN_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > max + 1) ncap = max + 1;
    char *p = realloc(b->data, ncap);
    if (!p) return TN_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int tn_buf_append(struct tn_buf *b, const void *data, size_t len)
{
    int rc = grow(b, len);
    if (rc) return rc;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
    return 0;
}

int tn_buf_puts(struct tn_buf *b, const char *s)
{
    return tn_buf_append(b, s, strlen(s));
}

int tn_buf_putc(struct tn_buf *b, char c)
{
    return tn_buf_append(b, &c, 1);
}

int tn_buf_vprintf(struct tn_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return TN_EINVAL;
    int rc = grow(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int tn_buf_printf(struct tn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int tn_buf_json_str(struct tn_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = tn_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        switch (*p) {
        case '"':
            rc = tn_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = tn_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = tn_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = tn_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = tn_buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
                rc = tn_buf_append(b, e, 6);
            } else {
                rc = tn_buf_putc(b, (char)*p);
            }
        }
    }
    return rc ? rc : tn_buf_putc(b, '"');
}

int tn_buf_go_quote(struct tn_buf *b, const char *s, size_t n)
{
    int rc = tn_buf_putc(b, '"');
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            rc = tn_buf_puts(b, "\\\"");
            break;
        case '\\':
            rc = tn_buf_puts(b, "\\\\");
            break;
        case '\n':
            rc = tn_buf_puts(b, "\\n");
            break;
        case '\t':
            rc = tn_buf_puts(b, "\\t");
            break;
        case '\r':
            rc = tn_buf_puts(b, "\\r");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                rc = tn_buf_printf(b, "\\x%02x", c);
            else
                rc = tn_buf_putc(b, (char)c);
        }
    }
    return rc ? rc : tn_buf_putc(b, '"');
}

char *tn_buf_steal(struct tn_buf *b, size_t *len)
{
    if (!b->data) {
        if (grow(b, 0)) return NULL;
        b->data[0] = 0;
    }
    char *d = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void tn_buf_consume(struct tn_buf *b, size_t n)
{
    if (n >= b->len) {
        tn_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}
