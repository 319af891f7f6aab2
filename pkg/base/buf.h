/* Growable byte buffer with a hard cap (in the image of curl's dynbuf). The buffer always keeps
 * a NUL after the data so it can be used as a C string. Ownership: the struct is caller-owned;
 * tn_buf_free releases the heap memory; tn_buf_steal hands it to the caller (free() it).
 * Not thread-safe: one owner at a time. */
#ifndef TN_BASE_BUF_H
#define TN_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct tn_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated bytes */
    size_t max; /* hard cap on len; 0 means the default (64 MiB) */
};

#define TN_BUF_DEFAULT_MAX ((size_t)64 << 20)

void tn_buf_init(struct tn_buf *b, size_t max);
void tn_buf_free(struct tn_buf *b);
void tn_buf_reset(struct tn_buf *b); /* len = 0, keeps memory */

/* Append; return 0, or TN_ETOOBIG past the cap, TN_ENOMEM when allocation fails. On error the
 * buffer is unchanged. */
int tn_buf_append(struct tn_buf *b, const void *data, size_t len);
int tn_buf_puts(struct tn_buf *b, const char *s);
int tn_buf_putc(struct tn_buf *b, char c);
int tn_buf_printf(struct tn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tn_buf_vprintf(struct tn_buf *b, const char *fmt, va_list ap);
/* Append s as a JSON string literal (with quotes and escapes). */
int tn_buf_json_str(struct tn_buf *b, const char *s);
/* Append the n bytes of s quoted like Go's %q as Kubernetes messages print values: printable
 * bytes kept, \" \\ \n \t \r escaped, other control bytes as \xNN. */
int tn_buf_go_quote(struct tn_buf *b, const char *s, size_t n);

/* Returns the data (NUL-terminated, malloc'd, caller frees) and resets b to empty. Never NULL:
 * an empty buffer yields "". Returns NULL only when allocation fails. */
char *tn_buf_steal(struct tn_buf *b, size_t *len);

/* Removes the first n bytes. */
void tn_buf_consume(struct tn_buf *b, size_t n);

#endif
