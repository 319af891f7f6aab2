/* CEL interpreter for x-kubernetes-validations rules: a recursive-descent parser producing an
 * AST in an arena, and a tree-walking evaluator whose values live in a per-evaluation arena with
 * a step budget and a memory cap. See cel.h for the supported subset. */
#include "apiserver/cel.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/timeutil.h"

/* ------------------------------------------------------------------------------------------ */
/* Arena                                                                                      */

struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
};

struct arena {
    struct chunk *head;
    size_t total, limit; /* limit 0: unlimited */
};

static void *ar_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && a->total + n > a->limit) return NULL;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        struct chunk *c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->cap = cap;
        c->used = 0;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    a->total += n;
    return p;
}

static void ar_free(struct arena *a)
{
    struct chunk *c = a->head;
    while (c) {
        struct chunk *nx = c->next;
        free(c);
        c = nx;
    }
    a->head = NULL;
    a->total = 0;
}

static char *ar_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = ar_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Values and AST                                                                             */

enum vk { V_ERR, V_NULL, V_BOOL, V_INT, V_UINT, V_DBL, V_STR, V_LIST, V_MAP, V_DUR, V_TS };

struct val {
    int k;
    union {
        int b;
        int64_t i; /* V_INT; V_DUR and V_TS in nanoseconds */
        uint64_t u;
        double d;
        struct {
            const char *p;
            size_t n;
        } s; /* V_STR; V_ERR message */
        struct {
            struct val *v;
            size_t n;
        } l;
        struct {
            struct val *key, *v;
            size_t n;
        } m;
    };
};

enum nk {
    N_LIT,
    N_IDENT,
    N_SELECT,
    N_HAS,
    N_INDEX,
    N_CALL,
    N_LIST,
    N_MAP,
    N_NEG,
    N_NOT,
    N_BIN,
    N_AND,
    N_OR,
    N_COND,
    N_COMP
};

enum macro { M_ALL, M_EXISTS, M_EXISTS_ONE, M_MAP, M_MAP3, M_FILTER };

enum tok {
    TK_EOF = 0,
    TK_INT = 256,
    TK_UINT,
    TK_DBL,
    TK_STR,
    TK_IDENT,
    TK_TRUE,
    TK_FALSE,
    TK_NULL,
    TK_IN,
    TK_LE,
    TK_GE,
    TK_EQ,
    TK_NE,
    TK_AND,
    TK_OR
};

struct node {
    int k, op;
    size_t pos;
    struct val lit;
    const char *name;       /* identifier, field, function, comprehension variable */
    struct node *a, *b, *c; /* target/left/condition, right/then/predicate, else/transform */
    struct node **args;     /* call arguments, list elements, map key,value pairs */
    size_t nargs;
    regex_t *re; /* precompiled literal pattern of matches() */
};

struct re_item {
    regex_t re;
    struct re_item *next;
};

struct tn_cel_prog {
    struct arena ar;
    struct node *root;
    int uses_old;
    struct re_item *res;
};

/* ------------------------------------------------------------------------------------------ */
/* Regex translation (RE2 syntax to POSIX ERE)                                                */

static int emit_class(struct tn_buf *o, char c, int in_bracket, int *negated_in_bracket)
{
    const char *pos = NULL, *neg = NULL;
    switch (c) {
    case 'd':
        pos = "0-9";
        break;
    case 'D':
        neg = "0-9";
        break;
    case 'w':
        pos = "A-Za-z0-9_";
        break;
    case 'W':
        neg = "A-Za-z0-9_";
        break;
    case 's':
        pos = "[:space:]";
        break;
    case 'S':
        neg = "[:space:]";
        break;
    default:
        return 0;
    }
    if (in_bracket) {
        if (neg) {
            *negated_in_bracket = 1;
            return 1;
        }
        tn_buf_puts(o, pos);
    } else {
        tn_buf_puts(o, neg ? "[^" : "[");
        tn_buf_puts(o, neg ? neg : pos);
        tn_buf_putc(o, ']');
    }
    return 1;
}

static int escape_char(char c, char *out)
{
    switch (c) {
    case 'n':
        *out = '\n';
        return 1;
    case 't':
        *out = '\t';
        return 1;
    case 'r':
        *out = '\r';
        return 1;
    case 'f':
        *out = '\f';
        return 1;
    case 'v':
        *out = '\v';
        return 1;
    case 'a':
        *out = '\a';
        return 1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Translates a bracket expression starting after '['; *pp points after the closing ']'. */
static int translate_bracket(struct tn_buf *o, const char **pp, struct tn_err *err)
{
    const char *p = *pp;
    int neg = 0, has_close = 0, has_dash = 0, has_caret = 0, bad = 0;
    struct tn_buf body;
    tn_buf_init(&body, 0);
    if (*p == '^') {
        neg = 1;
        p++;
    }
    int first = 1;
    while (*p && (*p != ']' || first)) {
        char lit = 0;
        int is_lit = 0;
        if (*p == '[' && p[1] == ':') {
            const char *e = strstr(p + 2, ":]");
            if (!e) break;
            tn_buf_append(&body, p, (size_t)(e + 2 - p));
            p = e + 2;
            first = 0;
            continue;
        }
        if (*p == '\\' && p[1]) {
            char c = p[1];
            if (emit_class(&body, c, 1, &bad)) {
                p += 2;
                first = 0;
                continue;
            }
            if (c == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
                lit = (char)(hexval(p[2]) * 16 + hexval(p[3]));
                p += 4;
            } else if (escape_char(c, &lit)) {
                p += 2;
            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
                tn_buf_free(&body);
                return tn_err_set(err, TN_EINVAL, "invalid escape sequence: `\\%c`", c);
            } else {
                lit = c;
                p += 2;
            }
            is_lit = 1;
        } else {
            lit = *p++;
            is_lit = 1;
        }
        first = 0;
        if (is_lit) {
            /* a range a-z: copy verbatim when both ends are plain */
            if (*p == '-' && p[1] && p[1] != ']') {
                char hi = p[1];
                int adv = 2;
                if (hi == '\\' && p[2]) {
                    if (!escape_char(p[2], &hi)) hi = p[2];
                    adv = 3;
                }
                if (lit == ']' || lit == '^' || lit == '-') {
                    tn_buf_free(&body);
                    return tn_err_set(err, TN_EINVAL, "unsupported character range");
                }
                tn_buf_putc(&body, lit);
                tn_buf_putc(&body, '-');
                tn_buf_putc(&body, hi);
                p += adv;
                continue;
            }
            if (lit == ']')
                has_close = 1;
            else if (lit == '-')
                has_dash = 1;
            else if (lit == '^')
                has_caret = 1;
            else
                tn_buf_putc(&body, lit);
        }
    }
    if (*p != ']') {
        tn_buf_free(&body);
        return tn_err_set(err, TN_EINVAL, "missing closing ]");
    }
    if (bad) {
        tn_buf_free(&body);
        return tn_err_set(err, TN_EINVAL, "negated class inside a bracket expression");
    }
    *pp = p + 1;
    tn_buf_putc(o, '[');
    if (neg) tn_buf_putc(o, '^');
    if (has_close) tn_buf_putc(o, ']');
    tn_buf_append(o, body.data ? body.data : "", body.len);
    if (has_caret) {
        if (!has_close && body.len == 0 && !neg) {
            /* "[^]" would be a negation: emit the caret as an escaped literal instead */
            o->len--;
            tn_buf_puts(o, "\\^");
            tn_buf_free(&body);
            if (has_dash) return tn_err_set(err, TN_EINVAL, "unsupported bracket expression");
            return 0;
        }
        tn_buf_putc(o, '^');
    }
    if (has_dash) tn_buf_putc(o, '-');
    tn_buf_putc(o, ']');
    tn_buf_free(&body);
    return 0;
}

int tn_regex_compile(regex_t *re, const char *pattern, struct tn_err *err)
{
    struct tn_buf o;
    tn_buf_init(&o, 0);
    int flags = REG_EXTENDED | REG_NOSUB;
    const char *p = pattern;
    if (strncmp(p, "(?i)", 4) == 0) {
        flags |= REG_ICASE;
        p += 4;
    }
    int rc = 0;
    char prev = 0; /* last emitted syntactic char, to drop lazy '?' */
    while (*p && rc == 0) {
        char c = *p;
        if (c == '\\') {
            char n = p[1];
            char lit;
            if (!n) {
                rc = tn_err_set(err, TN_EINVAL, "trailing backslash at end of expression");
                break;
            }
            if (emit_class(&o, n, 0, NULL)) {
                p += 2;
            } else if (n == 'A') {
                tn_buf_putc(&o, '^');
                p += 2;
            } else if (n == 'z') {
                tn_buf_putc(&o, '$');
                p += 2;
            } else if (n == 'b' || n == 'B') {
                tn_buf_putc(&o, '\\');
                tn_buf_putc(&o, n);
                p += 2;
            } else if (n == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
                lit = (char)(hexval(p[2]) * 16 + hexval(p[3]));
                if (strchr(".[]()*+?{}|^$\\", lit)) tn_buf_putc(&o, '\\');
                tn_buf_putc(&o, lit);
                p += 4;
            } else if (escape_char(n, &lit)) {
                tn_buf_putc(&o, lit);
                p += 2;
            } else if ((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9')) {
                rc = tn_err_set(err, TN_EINVAL, "invalid escape sequence: `\\%c`", n);
            } else {
                tn_buf_putc(&o, '\\');
                tn_buf_putc(&o, n);
                p += 2;
            }
            prev = 'a';
            continue;
        }
        if (c == '[') {
            p++;
            rc = translate_bracket(&o, &p, err);
            prev = 'a';
            continue;
        }
        if (c == '(' && p[1] == '?') {
            if (p[2] == ':') {
                tn_buf_putc(&o, '(');
                p += 3;
                prev = '(';
                continue;
            }
            rc = tn_err_set(err, TN_EINVAL, "invalid or unsupported Perl syntax: `(?`");
            break;
        }
        if (c == '?' && (prev == '*' || prev == '+' || prev == '?' || prev == '}')) {
            p++; /* lazy quantifier: same answer for a boolean match */
            prev = 'a';
            continue;
        }
        tn_buf_putc(&o, c);
        prev = c;
        p++;
    }
    if (rc == 0) {
        int r = regcomp(re, o.data ? o.data : "", flags);
        if (r != 0) {
            char msg[256];
            regerror(r, re, msg, sizeof(msg));
            rc = tn_err_set(err, TN_EINVAL, "%s", msg);
        }
    }
    tn_buf_free(&o);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Number formatting as Go's strconv 'g' with shortest precision                             */

void tn_cel_format_double(double d, char *out, size_t n)
{
    if (isnan(d)) {
        snprintf(out, n, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, n, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (d == 0) {
        snprintf(out, n, signbit(d) ? "-0" : "0");
        return;
    }
    char e[64];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e = "-d.ddde+XX": split digits and exponent */
    char digits[32];
    size_t nd = 0;
    const char *q = e;
    int neg = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    digits[nd] = 0;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    char buf[64];
    size_t bl = 0;
    if (neg) buf[bl++] = '-';
    if (exp < -4 || exp >= 6) {
        /* %e form, as Go uses for shortest 'g' outside [-4, 6) */
        buf[bl++] = digits[0];
        if (nd > 1) {
            buf[bl++] = '.';
            for (size_t i = 1; i < nd; i++)
                buf[bl++] = digits[i];
        }
        bl += (size_t)snprintf(buf + bl, sizeof(buf) - bl, "e%c%02d", exp < 0 ? '-' : '+',
                               exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        buf[bl++] = '0';
        buf[bl++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            buf[bl++] = '0';
        for (size_t i = 0; i < nd; i++)
            buf[bl++] = digits[i];
        buf[bl] = 0;
    } else {
        for (int i = 0; i <= exp; i++)
            buf[bl++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp + 1) {
            buf[bl++] = '.';
            for (size_t i = (size_t)exp + 1; i < nd; i++)
                buf[bl++] = digits[i];
        }
        buf[bl] = 0;
    }
    snprintf(out, n, "%s", buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Lexer and parser                                                                           */

#define MAX_DEPTH 64
#define MAX_VARS 16

struct ps {
    const char *src;
    size_t pos;
    int tk;
    size_t tpos;
    uint64_t tu;
    double td;
    const char *ts;
    size_t tn;
    struct tn_cel_prog *prog;
    struct tn_err *err;
    int failed;
    int depth;
    const char *vars[MAX_VARS];
    int nvars;
};

static void perr(struct ps *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct ps *p, size_t pos, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = 1;
    int line = 1, col = 1;
    for (size_t i = 0; i < pos && p->src[i]; i++) {
        if (p->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tn_err_set(p->err, TN_EINVAL, "ERROR: <input>:%d:%d: %s", line, col, msg);
}

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void put_utf8(struct tn_buf *b, uint32_t cp)
{
    char o[4];
    if (cp < 0x80) {
        tn_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        tn_buf_append(b, o, 2);
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        tn_buf_append(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        tn_buf_append(b, o, 4);
    }
}

static void lex_string(struct ps *p, int raw)
{
    const char *s = p->src;
    char q = s[p->pos];
    int triple = s[p->pos + 1] == q && s[p->pos + 2] == q;
    p->pos += triple ? 3 : 1;
    struct tn_buf b;
    tn_buf_init(&b, 0);
    for (;;) {
        char c = s[p->pos];
        if (!c || (!triple && (c == '\n' || c == '\r'))) {
            perr(p, p->tpos, "Syntax error: token recognition error at: '%.*s'",
                 (int)(p->pos - p->tpos > 20 ? 20 : p->pos - p->tpos), s + p->tpos);
            tn_buf_free(&b);
            return;
        }
        if (c == q && (!triple || (s[p->pos + 1] == q && s[p->pos + 2] == q))) {
            p->pos += triple ? 3 : 1;
            break;
        }
        if (c == '\\' && !raw) {
            char e = s[p->pos + 1];
            char lit;
            size_t epos = p->pos;
            p->pos += 2;
            if (escape_char(e, &lit)) {
                tn_buf_putc(&b, lit);
            } else if (e == 'b') {
                tn_buf_putc(&b, '\b');
            } else if (e == '\\' || e == '\'' || e == '"' || e == '`' || e == '?') {
                tn_buf_putc(&b, e);
            } else if (e == 'x' || e == 'X' || e == 'u' || e == 'U') {
                int nd = (e == 'x' || e == 'X') ? 2 : e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int i = 0; i < nd; i++) {
                    int h = hexval(s[p->pos]);
                    if (h < 0) {
                        perr(p, epos, "Syntax error: invalid escape sequence");
                        tn_buf_free(&b);
                        return;
                    }
                    cp = cp * 16 + (uint32_t)h;
                    p->pos++;
                }
                if (nd == 2)
                    tn_buf_putc(&b, (char)cp);
                else if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
                    perr(p, epos, "Syntax error: invalid unicode code point");
                    tn_buf_free(&b);
                    return;
                } else
                    put_utf8(&b, cp);
            } else if (e >= '0' && e <= '3' && s[p->pos] >= '0' && s[p->pos] <= '7' &&
                       s[p->pos + 1] >= '0' && s[p->pos + 1] <= '7') {
                tn_buf_putc(&b,
                            (char)((e - '0') * 64 + (s[p->pos] - '0') * 8 + (s[p->pos + 1] - '0')));
                p->pos += 2;
            } else {
                perr(p, epos, "Syntax error: invalid escape sequence");
                tn_buf_free(&b);
                return;
            }
            continue;
        }
        tn_buf_putc(&b, c);
        p->pos++;
    }
    p->ts = ar_strndup(&p->prog->ar, b.data ? b.data : "", b.len);
    p->tn = b.len;
    tn_buf_free(&b);
    if (!p->ts) perr(p, p->tpos, "out of memory");
    p->tk = TK_STR;
}

static void lex_number(struct ps *p)
{
    const char *s = p->src;
    size_t st = p->pos;
    if (s[st] == '0' && (s[st + 1] == 'x' || s[st + 1] == 'X')) {
        size_t i = st + 2;
        while (hexval(s[i]) >= 0)
            i++;
        if (i == st + 2) {
            perr(p, st, "Syntax error: invalid hex literal");
            return;
        }
        errno = 0;
        p->tu = strtoull(s + st + 2, NULL, 16);
        int over = errno == ERANGE;
        p->pos = i;
        p->tk = TK_INT;
        if (s[i] == 'u' || s[i] == 'U') {
            p->pos++;
            p->tk = TK_UINT;
        }
        if (over) perr(p, st, "invalid %s literal", p->tk == TK_UINT ? "uint" : "int");
        return;
    }
    size_t i = st;
    while (is_digit(s[i]))
        i++;
    int dbl = 0;
    if (s[i] == '.' && is_digit(s[i + 1])) {
        dbl = 1;
        i++;
        while (is_digit(s[i]))
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (is_digit(s[j])) {
            dbl = 1;
            while (is_digit(s[j]))
                j++;
            i = j;
        }
    }
    if (dbl) {
        char tmp[128];
        size_t n = i - st < sizeof(tmp) - 1 ? i - st : sizeof(tmp) - 1;
        memcpy(tmp, s + st, n);
        tmp[n] = 0;
        p->td = strtod(tmp, NULL);
        p->tk = TK_DBL;
        p->pos = i;
        return;
    }
    errno = 0;
    p->tu = strtoull(s + st, NULL, 10);
    int over = errno == ERANGE;
    p->pos = i;
    p->tk = TK_INT;
    if (s[i] == 'u' || s[i] == 'U') {
        p->pos++;
        p->tk = TK_UINT;
    }
    if (over) perr(p, st, "invalid %s literal", p->tk == TK_UINT ? "uint" : "int");
}

static void lex(struct ps *p)
{
    const char *s = p->src;
    for (;;) {
        while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r' ||
               s[p->pos] == '\f')
            p->pos++;
        if (s[p->pos] == '/' && s[p->pos + 1] == '/') {
            while (s[p->pos] && s[p->pos] != '\n')
                p->pos++;
            continue;
        }
        break;
    }
    p->tpos = p->pos;
    char c = s[p->pos];
    if (p->failed) {
        p->tk = TK_EOF;
        return;
    }
    if (!c) {
        p->tk = TK_EOF;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(s[p->pos + 1]))) {
        lex_number(p);
        return;
    }
    if (c == '"' || c == '\'') {
        lex_string(p, 0);
        return;
    }
    if ((c == 'r' || c == 'R' || c == 'b' || c == 'B') &&
        (s[p->pos + 1] == '"' || s[p->pos + 1] == '\'')) {
        p->pos++;
        lex_string(p, c == 'r' || c == 'R');
        return;
    }
    if ((c == 'r' || c == 'R' || c == 'b' || c == 'B') &&
        (s[p->pos + 1] == 'r' || s[p->pos + 1] == 'R' || s[p->pos + 1] == 'b' ||
         s[p->pos + 1] == 'B') &&
        (s[p->pos + 2] == '"' || s[p->pos + 2] == '\'')) {
        int raw = c == 'r' || c == 'R' || s[p->pos + 1] == 'r' || s[p->pos + 1] == 'R';
        p->pos += 2;
        lex_string(p, raw);
        return;
    }
    if (is_ident_start(c)) {
        size_t i = p->pos;
        while (is_ident_start(s[i]) || is_digit(s[i]))
            i++;
        size_t n = i - p->pos;
        p->pos = i;
        const char *w = s + p->tpos;
#define KW(str) (n == sizeof(str) - 1 && memcmp(w, str, n) == 0)
        if (KW("true"))
            p->tk = TK_TRUE;
        else if (KW("false"))
            p->tk = TK_FALSE;
        else if (KW("null"))
            p->tk = TK_NULL;
        else if (KW("in"))
            p->tk = TK_IN;
        else if (KW("as") || KW("break") || KW("const") || KW("continue") || KW("else") ||
                 KW("for") || KW("function") || KW("if") || KW("import") || KW("let") ||
                 KW("loop") || KW("package") || KW("namespace") || KW("return") || KW("var") ||
                 KW("void") || KW("while")) {
            perr(p, p->tpos, "Syntax error: reserved identifier: %.*s", (int)n, w);
            p->tk = TK_EOF;
        } else {
            p->tk = TK_IDENT;
            p->ts = ar_strndup(&p->prog->ar, w, n);
            p->tn = n;
            if (!p->ts) perr(p, p->tpos, "out of memory");
        }
#undef KW
        return;
    }
    char d = s[p->pos + 1];
    p->pos++;
    if (c == '<' && d == '=')
        p->tk = TK_LE;
    else if (c == '>' && d == '=')
        p->tk = TK_GE;
    else if (c == '=' && d == '=')
        p->tk = TK_EQ;
    else if (c == '!' && d == '=')
        p->tk = TK_NE;
    else if (c == '&' && d == '&')
        p->tk = TK_AND;
    else if (c == '|' && d == '|')
        p->tk = TK_OR;
    else if (strchr("()[]{}.,:?+-*/%!<>", c)) {
        p->tk = c;
        return;
    } else {
        perr(p, p->tpos, "Syntax error: token recognition error at: '%c'", c);
        p->tk = TK_EOF;
        return;
    }
    p->pos++;
}

static const char *tok_text(struct ps *p, char *buf, size_t n)
{
    if (p->tk == TK_EOF) return "<EOF>";
    size_t len = p->pos - p->tpos;
    if (len > n - 1) len = n - 1;
    memcpy(buf, p->src + p->tpos, len);
    buf[len] = 0;
    return buf;
}

static void unexpected(struct ps *p, const char *expecting)
{
    char t[64];
    if (expecting)
        perr(p, p->tpos, "Syntax error: mismatched input '%s' expecting %s",
             tok_text(p, t, sizeof(t)), expecting);
    else
        perr(p, p->tpos, "Syntax error: extraneous input '%s'", tok_text(p, t, sizeof(t)));
}

static struct node *mknode(struct ps *p, int k, size_t pos)
{
    struct node *n = ar_alloc(&p->prog->ar, sizeof(*n));
    if (!n) {
        perr(p, pos, "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->k = k;
    n->pos = pos;
    return n;
}

static int expect(struct ps *p, int tk, const char *what)
{
    if (p->tk != tk) {
        unexpected(p, what);
        return -1;
    }
    lex(p);
    return 0;
}

static struct node *p_expr(struct ps *p);

/* Parses "a, b, c" up to the closing token; returns the count (arguments in *out). */
static int p_list(struct ps *p, int close, struct node ***out, size_t *n, int allow_trailing)
{
    struct node *tmp[256];
    size_t cnt = 0;
    if (p->tk != close) {
        for (;;) {
            if (cnt == 256) {
                perr(p, p->tpos, "too many elements");
                return -1;
            }
            tmp[cnt] = p_expr(p);
            if (!tmp[cnt]) return -1;
            cnt++;
            if (p->tk != ',') break;
            lex(p);
            if (allow_trailing && p->tk == close) break;
        }
    }
    if (p->tk != close) {
        unexpected(p, close == ')' ? "{')', ','}" : "{']', ','}");
        return -1;
    }
    lex(p);
    *out = ar_alloc(&p->prog->ar, (cnt ? cnt : 1) * sizeof(struct node *));
    if (!*out) {
        perr(p, p->tpos, "out of memory");
        return -1;
    }
    memcpy(*out, tmp, cnt * sizeof(struct node *));
    *n = cnt;
    return 0;
}

struct fninfo {
    const char *name;
    int recv;     /* 0: global only, 1: method only, 2: both */
    int min, max; /* arguments besides the receiver (for global: total arguments) */
};

static const struct fninfo fns[] = {
    {"size", 2, 0, 1},      {"startsWith", 1, 1, 1}, {"endsWith", 1, 1, 1},
    {"contains", 1, 1, 1},  {"matches", 2, 1, 2},    {"int", 0, 1, 1},
    {"uint", 0, 1, 1},      {"double", 0, 1, 1},     {"string", 0, 1, 1},
    {"bool", 0, 1, 1},      {"dyn", 0, 1, 1},        {"duration", 0, 1, 1},
    {"timestamp", 0, 1, 1}, {"lowerAscii", 1, 0, 0}, {"upperAscii", 1, 0, 0},
    {"trim", 1, 0, 0},      {"indexOf", 1, 1, 2},    {"lastIndexOf", 1, 1, 2},
    {"substring", 1, 1, 2}, {"replace", 1, 2, 3},    {"split", 1, 1, 2},
    {"join", 1, 0, 1},
};

static const struct fninfo *find_fn(const char *name)
{
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (strcmp(fns[i].name, name) == 0) return &fns[i];
    return NULL;
}

static struct node *finish_call(struct ps *p, struct node *n)
{
    const struct fninfo *f = find_fn(n->name);
    if (!f) {
        perr(p, n->pos, "undeclared reference to '%s' (in container '')", n->name);
        return NULL;
    }
    int nargs = (int)n->nargs;
    int ok;
    if (f->recv == 2) /* size, matches: method with min args, or global with max */
        ok = n->a ? nargs == f->min : nargs == f->max;
    else
        ok = (f->recv == 1) == (n->a != NULL) && nargs >= f->min && nargs <= f->max;
    if (!ok) {
        perr(p, n->pos, "found no matching overload for '%s' applied to %d argument(s)", n->name,
             nargs + (n->a ? 1 : 0));
        return NULL;
    }
    if (strcmp(n->name, "matches") == 0) {
        struct node *pat = n->args[nargs - 1];
        if (pat->k == N_LIT && pat->lit.k == V_STR) {
            struct re_item *ri = malloc(sizeof(*ri));
            struct tn_err rerr = {0};
            if (!ri) {
                perr(p, n->pos, "out of memory");
                return NULL;
            }
            if (tn_regex_compile(&ri->re, pat->lit.s.p, &rerr) != 0) {
                free(ri);
                perr(p, pat->pos, "invalid regular expression '%s': %s", pat->lit.s.p, rerr.msg);
                return NULL;
            }
            ri->next = p->prog->res;
            p->prog->res = ri;
            n->re = &ri->re;
        }
    }
    return n;
}

static int declared(struct ps *p, const char *name)
{
    if (strcmp(name, "self") == 0) return 1;
    if (strcmp(name, "oldSelf") == 0) {
        p->prog->uses_old = 1;
        return 1;
    }
    for (int i = 0; i < p->nvars; i++)
        if (strcmp(p->vars[i], name) == 0) return 1;
    return 0;
}

static struct node *p_macro(struct ps *p, struct node *target, const char *name, size_t pos)
{
    int m;
    if (strcmp(name, "all") == 0)
        m = M_ALL;
    else if (strcmp(name, "exists") == 0)
        m = M_EXISTS;
    else if (strcmp(name, "exists_one") == 0)
        m = M_EXISTS_ONE;
    else if (strcmp(name, "map") == 0)
        m = M_MAP;
    else if (strcmp(name, "filter") == 0)
        m = M_FILTER;
    else
        return NULL;
    /* current token is '(' */
    lex(p);
    if (p->tk != TK_IDENT) {
        perr(p, p->tpos, "argument must be a simple name");
        return NULL;
    }
    struct node *n = mknode(p, N_COMP, pos);
    if (!n) return NULL;
    n->op = m;
    n->a = target;
    n->name = p->ts;
    lex(p);
    if (expect(p, ',', "','") != 0) return NULL;
    if (p->nvars == MAX_VARS) {
        perr(p, pos, "comprehensions nested too deeply");
        return NULL;
    }
    p->vars[p->nvars++] = n->name;
    n->b = p_expr(p);
    if (n->b && m == M_MAP && p->tk == ',') {
        lex(p);
        n->op = M_MAP3;
        n->c = p_expr(p);
        if (!n->c) {
            p->nvars--;
            return NULL;
        }
    }
    p->nvars--;
    if (!n->b) return NULL;
    if (p->tk != ')') {
        unexpected(p, "')'");
        return NULL;
    }
    lex(p);
    return n;
}

static struct node *p_postfix(struct ps *p, struct node *e)
{
    while (e && !p->failed) {
        if (p->tk == '.') {
            lex(p);
            if (p->tk != TK_IDENT) {
                unexpected(p, "IDENTIFIER");
                return NULL;
            }
            const char *name = p->ts;
            size_t pos = p->tpos;
            lex(p);
            if (p->tk == '(') {
                struct node *mac = NULL;
                if (strcmp(name, "all") == 0 || strcmp(name, "exists") == 0 ||
                    strcmp(name, "exists_one") == 0 || strcmp(name, "map") == 0 ||
                    strcmp(name, "filter") == 0) {
                    mac = p_macro(p, e, name, pos);
                    if (!mac) return NULL;
                    e = mac;
                    continue;
                }
                struct node *n = mknode(p, N_CALL, pos);
                if (!n) return NULL;
                n->a = e;
                n->name = name;
                lex(p);
                if (p_list(p, ')', &n->args, &n->nargs, 0) != 0) return NULL;
                e = finish_call(p, n);
                continue;
            }
            struct node *n = mknode(p, N_SELECT, pos);
            if (!n) return NULL;
            n->a = e;
            n->name = name;
            e = n;
        } else if (p->tk == '[') {
            size_t pos = p->tpos;
            lex(p);
            struct node *n = mknode(p, N_INDEX, pos);
            if (!n) return NULL;
            n->a = e;
            n->b = p_expr(p);
            if (!n->b || expect(p, ']', "']'") != 0) return NULL;
            e = n;
        } else {
            break;
        }
    }
    return e;
}

static struct node *p_primary(struct ps *p)
{
    size_t pos = p->tpos;
    struct node *n;
    switch (p->tk) {
    case TK_INT:
        if (p->tu > (uint64_t)INT64_MAX) {
            perr(p, pos, "invalid int literal");
            return NULL;
        }
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_INT;
        n->lit.i = (int64_t)p->tu;
        lex(p);
        return n;
    case TK_UINT:
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_UINT;
        n->lit.u = p->tu;
        lex(p);
        return n;
    case TK_DBL:
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_DBL;
        n->lit.d = p->td;
        lex(p);
        return n;
    case TK_STR:
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_STR;
        n->lit.s.p = p->ts;
        n->lit.s.n = p->tn;
        lex(p);
        return n;
    case TK_TRUE:
    case TK_FALSE:
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_BOOL;
        n->lit.b = p->tk == TK_TRUE;
        lex(p);
        return n;
    case TK_NULL:
        n = mknode(p, N_LIT, pos);
        if (!n) return NULL;
        n->lit.k = V_NULL;
        lex(p);
        return n;
    case TK_IDENT: {
        const char *name = p->ts;
        lex(p);
        if (p->tk == '(') {
            lex(p);
            if (strcmp(name, "has") == 0) {
                struct node *arg = p_expr(p);
                if (!arg) return NULL;
                if (arg->k != N_SELECT) {
                    perr(p, arg->pos, "invalid argument to has() macro");
                    return NULL;
                }
                if (expect(p, ')', "')'") != 0) return NULL;
                arg->k = N_HAS;
                return arg;
            }
            n = mknode(p, N_CALL, pos);
            if (!n) return NULL;
            n->name = name;
            if (p_list(p, ')', &n->args, &n->nargs, 0) != 0) return NULL;
            return finish_call(p, n);
        }
        if (!declared(p, name)) {
            perr(p, pos, "undeclared reference to '%s' (in container '')", name);
            return NULL;
        }
        n = mknode(p, N_IDENT, pos);
        if (!n) return NULL;
        n->name = name;
        return n;
    }
    case '(':
        lex(p);
        n = p_expr(p);
        if (!n || expect(p, ')', "')'") != 0) return NULL;
        return n;
    case '[':
        lex(p);
        n = mknode(p, N_LIST, pos);
        if (!n || p_list(p, ']', &n->args, &n->nargs, 1) != 0) return NULL;
        return n;
    case '{': {
        lex(p);
        n = mknode(p, N_MAP, pos);
        if (!n) return NULL;
        struct node *tmp[256];
        size_t cnt = 0;
        while (p->tk != '}') {
            if (cnt >= 254) {
                perr(p, p->tpos, "too many map entries");
                return NULL;
            }
            tmp[cnt] = p_expr(p);
            if (!tmp[cnt] || expect(p, ':', "':'") != 0) return NULL;
            tmp[cnt + 1] = p_expr(p);
            if (!tmp[cnt + 1]) return NULL;
            cnt += 2;
            if (p->tk != ',') break;
            lex(p);
        }
        if (expect(p, '}', "'}'") != 0) return NULL;
        n->args = ar_alloc(&p->prog->ar, (cnt ? cnt : 1) * sizeof(struct node *));
        if (!n->args) {
            perr(p, pos, "out of memory");
            return NULL;
        }
        memcpy(n->args, tmp, cnt * sizeof(struct node *));
        n->nargs = cnt;
        return n;
    }
    default:
        unexpected(p, "an expression");
        return NULL;
    }
}

static struct node *p_unary1(struct ps *p);

/* Only '!' and '-' recurse here; they count towards the nesting limit like parentheses. */
static struct node *p_unary(struct ps *p)
{
    if (p->tk != '!' && p->tk != '-') return p_unary1(p);
    if (++p->depth > MAX_DEPTH) {
        perr(p, p->tpos, "expression nested too deeply (limit %d)", MAX_DEPTH);
        return NULL;
    }
    struct node *n = p_unary1(p);
    p->depth--;
    return n;
}

static struct node *p_unary1(struct ps *p)
{
    size_t pos = p->tpos;
    if (p->tk == '!') {
        lex(p);
        struct node *n = mknode(p, N_NOT, pos);
        if (!n) return NULL;
        n->a = p_unary(p);
        return n->a ? n : NULL;
    }
    if (p->tk == '-') {
        lex(p);
        if (p->tk == TK_INT || p->tk == TK_DBL) {
            /* fold into the literal so that -9223372036854775808 is representable */
            struct node *n = mknode(p, N_LIT, pos);
            if (!n) return NULL;
            if (p->tk == TK_INT) {
                if (p->tu > (uint64_t)INT64_MAX + 1) {
                    perr(p, pos, "invalid int literal");
                    return NULL;
                }
                n->lit.k = V_INT;
                n->lit.i = p->tu == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)p->tu;
            } else {
                n->lit.k = V_DBL;
                n->lit.d = -p->td;
            }
            lex(p);
            return p_postfix(p, n);
        }
        struct node *n = mknode(p, N_NEG, pos);
        if (!n) return NULL;
        n->a = p_unary(p);
        return n->a ? n : NULL;
    }
    return p_postfix(p, p_primary(p));
}

static struct node *binnode(struct ps *p, int k, int op, size_t pos, struct node *l, struct node *r)
{
    if (!l || !r) return NULL;
    struct node *n = mknode(p, k, pos);
    if (!n) return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static struct node *p_mul(struct ps *p)
{
    struct node *l = p_unary(p);
    while (l && (p->tk == '*' || p->tk == '/' || p->tk == '%')) {
        int op = p->tk;
        size_t pos = p->tpos;
        lex(p);
        l = binnode(p, N_BIN, op, pos, l, p_unary(p));
    }
    return l;
}

static struct node *p_add(struct ps *p)
{
    struct node *l = p_mul(p);
    while (l && (p->tk == '+' || p->tk == '-')) {
        int op = p->tk;
        size_t pos = p->tpos;
        lex(p);
        l = binnode(p, N_BIN, op, pos, l, p_mul(p));
    }
    return l;
}

static struct node *p_rel(struct ps *p)
{
    struct node *l = p_add(p);
    while (l && (p->tk == '<' || p->tk == '>' || p->tk == TK_LE || p->tk == TK_GE ||
                 p->tk == TK_EQ || p->tk == TK_NE || p->tk == TK_IN)) {
        int op = p->tk;
        size_t pos = p->tpos;
        lex(p);
        l = binnode(p, N_BIN, op, pos, l, p_add(p));
    }
    return l;
}

static struct node *p_and(struct ps *p)
{
    struct node *l = p_rel(p);
    while (l && p->tk == TK_AND) {
        size_t pos = p->tpos;
        lex(p);
        l = binnode(p, N_AND, 0, pos, l, p_rel(p));
    }
    return l;
}

static struct node *p_or(struct ps *p)
{
    struct node *l = p_and(p);
    while (l && p->tk == TK_OR) {
        size_t pos = p->tpos;
        lex(p);
        l = binnode(p, N_OR, 0, pos, l, p_and(p));
    }
    return l;
}

static struct node *p_expr(struct ps *p)
{
    if (p->failed) return NULL;
    if (++p->depth > MAX_DEPTH) {
        perr(p, p->tpos, "expression nested too deeply (limit %d)", MAX_DEPTH);
        return NULL;
    }
    struct node *c = p_or(p);
    if (c && p->tk == '?') {
        size_t pos = p->tpos;
        lex(p);
        struct node *t = p_or(p);
        if (!t || expect(p, ':', "':'") != 0) {
            p->depth--;
            return NULL;
        }
        struct node *e = p_expr(p);
        struct node *n = binnode(p, N_COND, 0, pos, c, t);
        if (!n || !e) {
            p->depth--;
            return NULL;
        }
        n->c = e;
        c = n;
    }
    p->depth--;
    return p->failed ? NULL : c;
}

/* Bounds the depth of the tree (binary chains are parsed by loops, not recursion), so that
 * evaluation recursion stays shallow. Never recurses deeper than MAX_TREE_DEPTH itself. */
#define MAX_TREE_DEPTH 200

static int check_depth(const struct node *n, int d)
{
    if (!n) return 0;
    if (d > MAX_TREE_DEPTH) return -1;
    if (check_depth(n->a, d + 1) || check_depth(n->b, d + 1) || check_depth(n->c, d + 1)) return -1;
    for (size_t i = 0; i < n->nargs; i++)
        if ((n->k == N_CALL || n->k == N_LIST || n->k == N_MAP) && check_depth(n->args[i], d + 1))
            return -1;
    return 0;
}

void tn_cel_free(struct tn_cel_prog *prog)
{
    if (!prog) return;
    struct re_item *r = prog->res;
    while (r) {
        struct re_item *nx = r->next;
        regfree(&r->re);
        free(r);
        r = nx;
    }
    ar_free(&prog->ar);
    free(prog);
}

int tn_cel_compile(const char *rule, struct tn_cel_prog **out, struct tn_err *err)
{
    *out = NULL;
    if (strlen(rule) > TN_CEL_MAX_RULE_LEN)
        return tn_err_set(err, TN_ETOOBIG, "rule longer than %d characters", TN_CEL_MAX_RULE_LEN);
    struct tn_cel_prog *prog = calloc(1, sizeof(*prog));
    if (!prog) return tn_err_set(err, TN_ENOMEM, "out of memory");
    struct ps p = {0};
    p.src = rule;
    p.prog = prog;
    p.err = err;
    lex(&p);
    struct node *root = p_expr(&p);
    if (root && !p.failed && p.tk != TK_EOF) unexpected(&p, "<EOF>");
    if (root && !p.failed && check_depth(root, 0) != 0)
        perr(&p, 0, "expression nested too deeply (limit %d)", MAX_TREE_DEPTH);
    if (p.failed || !root) {
        if (!p.failed) tn_err_set(err, TN_EINVAL, "ERROR: <input>:1:1: Syntax error");
        tn_cel_free(prog);
        return TN_EINVAL;
    }
    prog->root = root;
    *out = prog;
    return 0;
}

int tn_cel_uses_old_self(const struct tn_cel_prog *prog)
{
    return prog->uses_old;
}

/* ------------------------------------------------------------------------------------------ */
/* Evaluator                                                                                  */

#define MAX_SCOPE 64

struct ev {
    struct arena ar;
    uint64_t steps, max;
    struct val self, old;
    int have_old;
    const char *vname[MAX_SCOPE];
    struct val vval[MAX_SCOPE];
    int nv;
    int fatal; /* budget or memory exhausted: no error may be absorbed any more */
    int oom;
};

static const char *const ERR_OVERLOAD = "no such overload";

static struct val verr_static(const char *msg)
{
    struct val v = {.k = V_ERR};
    v.s.p = msg;
    v.s.n = strlen(msg);
    return v;
}

static struct val fatal_err(struct ev *e)
{
    e->fatal = 1;
    return verr_static(TN_CEL_COST_MSG);
}

static struct val verr(struct ev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static struct val verr(struct ev *e, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *s = ar_strndup(&e->ar, buf, strlen(buf));
    if (!s) {
        e->oom = 1;
        return fatal_err(e);
    }
    return verr_static(s);
}

static int charge(struct ev *e, uint64_t n)
{
    e->steps += n;
    if (e->steps > e->max) {
        e->fatal = 1;
        return -1;
    }
    return 0;
}

static struct val vbool(int b)
{
    struct val v = {.k = V_BOOL};
    v.b = b != 0;
    return v;
}

static struct val vint(int64_t i)
{
    struct val v = {.k = V_INT};
    v.i = i;
    return v;
}

static struct val vuint(uint64_t u)
{
    struct val v = {.k = V_UINT};
    v.u = u;
    return v;
}

static struct val vdbl(double d)
{
    struct val v = {.k = V_DBL};
    v.d = d;
    return v;
}

static struct val vstr(const char *p, size_t n)
{
    struct val v = {.k = V_STR};
    v.s.p = p;
    v.s.n = n;
    return v;
}

static struct val vstr_copy(struct ev *e, const char *p, size_t n)
{
    char *s = ar_strndup(&e->ar, p, n);
    if (!s) {
        e->oom = 1;
        return fatal_err(e);
    }
    return vstr(s, n);
}

static struct val *vals_alloc(struct ev *e, size_t n)
{
    struct val *v = ar_alloc(&e->ar, (n ? n : 1) * sizeof(struct val));
    if (!v) e->oom = 1;
    return v;
}

static const char *sch_type(const json_t *s)
{
    return s ? json_string_value(json_object_get(s, "type")) : NULL;
}

static const json_t *sch_child(const json_t *s, const char *key)
{
    if (!s) return NULL;
    json_t *pr = json_object_get(json_object_get(s, "properties"), key);
    if (pr) return pr;
    json_t *ap = json_object_get(s, "additionalProperties");
    return json_is_object(ap) ? ap : NULL;
}

static int parse_duration_ns(const char *s, int64_t *ns)
{
    int neg = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    int64_t ms;
    if (tn_duration_parse_ms(s, &ms) != 0) return -1;
    if (ms > INT64_MAX / 1000000) return -1;
    *ns = (neg ? -ms : ms) * 1000000;
    return 0;
}

static int parse_ts_ns(const char *s, int64_t *ns)
{
    time_t t;
    if (tn_time_parse_rfc3339(s, &t) != 0) return -1;
    if ((int64_t)t > INT64_MAX / 1000000000 || (int64_t)t < INT64_MIN / 1000000000) return -1;
    int64_t frac = 0;
    const char *dot = strchr(s, '.');
    if (dot) {
        int digits = 0;
        for (const char *q = dot + 1; is_digit(*q); q++) {
            if (digits < 9) {
                frac = frac * 10 + (*q - '0');
                digits++;
            }
        }
        while (digits++ < 9)
            frac *= 10;
    }
    *ns = (int64_t)t * 1000000000 + frac;
    return 0;
}

static struct val from_json(struct ev *e, const json_t *j, const json_t *schema)
{
    if (charge(e, 1) != 0) return fatal_err(e);
    const char *t = sch_type(schema);
    switch (json_typeof(j)) {
    case JSON_NULL:
        return (struct val){.k = V_NULL};
    case JSON_TRUE:
        return vbool(1);
    case JSON_FALSE:
        return vbool(0);
    case JSON_INTEGER:
        if (t && strcmp(t, "number") == 0) return vdbl((double)json_integer_value(j));
        return vint(json_integer_value(j));
    case JSON_REAL:
        return vdbl(json_real_value(j));
    case JSON_STRING: {
        const char *fmt = schema ? json_string_value(json_object_get(schema, "format")) : NULL;
        int64_t ns;
        if (fmt && strcmp(fmt, "date-time") == 0 && parse_ts_ns(json_string_value(j), &ns) == 0) {
            struct val v = {.k = V_TS};
            v.i = ns;
            return v;
        }
        if (fmt && strcmp(fmt, "duration") == 0 &&
            parse_duration_ns(json_string_value(j), &ns) == 0) {
            struct val v = {.k = V_DUR};
            v.i = ns;
            return v;
        }
        return vstr(json_string_value(j), json_string_length(j));
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        struct val v = {.k = V_LIST};
        v.l.v = vals_alloc(e, n);
        if (!v.l.v) return fatal_err(e);
        v.l.n = n;
        const json_t *items = schema ? json_object_get(schema, "items") : NULL;
        for (size_t i = 0; i < n; i++) {
            v.l.v[i] = from_json(e, json_array_get(j, i), items);
            if (e->fatal) return fatal_err(e);
        }
        return v;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        struct val v = {.k = V_MAP};
        v.m.key = vals_alloc(e, n);
        v.m.v = vals_alloc(e, n);
        if (!v.m.key || !v.m.v) return fatal_err(e);
        size_t i = 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)j, k, x)
        {
            v.m.key[i] = vstr(k, strlen(k));
            v.m.v[i] = from_json(e, x, sch_child(schema, k));
            if (e->fatal) return fatal_err(e);
            i++;
        }
        v.m.n = i;
        return v;
    }
    }
    return (struct val){.k = V_NULL};
}

static int is_num(const struct val *v)
{
    return v->k == V_INT || v->k == V_UINT || v->k == V_DBL;
}

/* -1, 0, 1, or 2 when unordered (NaN). Both must be numeric. */
static int num_cmp(const struct val *a, const struct val *b)
{
    if (a->k == V_DBL || b->k == V_DBL) {
        double x = a->k == V_DBL ? a->d : a->k == V_INT ? (double)a->i : (double)a->u;
        double y = b->k == V_DBL ? b->d : b->k == V_INT ? (double)b->i : (double)b->u;
        if (isnan(x) || isnan(y)) return 2;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->k == V_INT && b->k == V_INT) return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->k == V_UINT && b->k == V_UINT) return a->u < b->u ? -1 : a->u > b->u ? 1 : 0;
    if (a->k == V_INT) {
        if (a->i < 0) return -1;
        uint64_t x = (uint64_t)a->i;
        return x < b->u ? -1 : x > b->u ? 1 : 0;
    }
    if (b->i < 0) return 1;
    uint64_t y = (uint64_t)b->i;
    return a->u < y ? -1 : a->u > y ? 1 : 0;
}

static int str_cmp(const struct val *a, const struct val *b)
{
    size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
    int c = memcmp(a->s.p, b->s.p, n);
    if (c) return c < 0 ? -1 : 1;
    return a->s.n < b->s.n ? -1 : a->s.n > b->s.n ? 1 : 0;
}

static long map_find(struct ev *e, const struct val *m, const struct val *key);

/* Returns a bool value, or an error. */
static struct val eq(struct ev *e, const struct val *a, const struct val *b)
{
    if (charge(e, 1) != 0) return fatal_err(e);
    if (is_num(a) && is_num(b)) return vbool(num_cmp(a, b) == 0);
    if (a->k != b->k) return vbool(0);
    switch (a->k) {
    case V_NULL:
        return vbool(1);
    case V_BOOL:
        return vbool(a->b == b->b);
    case V_STR:
        if (charge(e, a->s.n / 16) != 0) return fatal_err(e);
        return vbool(a->s.n == b->s.n && memcmp(a->s.p, b->s.p, a->s.n) == 0);
    case V_DUR:
    case V_TS:
        return vbool(a->i == b->i);
    case V_LIST:
        if (a->l.n != b->l.n) return vbool(0);
        for (size_t i = 0; i < a->l.n; i++) {
            struct val r = eq(e, &a->l.v[i], &b->l.v[i]);
            if (r.k == V_ERR || !r.b) return r;
        }
        return vbool(1);
    case V_MAP:
        if (a->m.n != b->m.n) return vbool(0);
        for (size_t i = 0; i < a->m.n; i++) {
            long j = map_find(e, b, &a->m.key[i]);
            if (e->fatal) return fatal_err(e);
            if (j < 0) return vbool(0);
            struct val r = eq(e, &a->m.v[i], &b->m.v[j]);
            if (r.k == V_ERR || !r.b) return r;
        }
        return vbool(1);
    }
    return vbool(0);
}

static long map_find(struct ev *e, const struct val *m, const struct val *key)
{
    for (size_t i = 0; i < m->m.n; i++) {
        if (charge(e, 1) != 0) return -1;
        const struct val *k = &m->m.key[i];
        if (k->k == V_STR && key->k == V_STR) {
            if (k->s.n == key->s.n && memcmp(k->s.p, key->s.p, k->s.n) == 0) return (long)i;
            continue;
        }
        struct val r = eq(e, k, key);
        if (r.k == V_BOOL && r.b) return (long)i;
    }
    return -1;
}

/* Resolves escaped CEL property names (foo__dash__bar -> foo-bar) into buf. */
static const char *unescape_name(const char *name, char *buf, size_t n)
{
    if (!strstr(name, "__")) return NULL;
    static const struct {
        const char *from, *to;
    } subst[] = {
        {"__underscores__", "__"}, {"__dot__", "."}, {"__dash__", "-"}, {"__slash__", "/"}};
    size_t o = 0;
    const char *p = name;
    size_t len = strlen(name);
    /* reserved words are escaped whole: __namespace__ */
    if (len > 4 && strncmp(name, "__", 2) == 0 && strstr(name + 2, "__") == name + len - 2) {
        snprintf(buf, n, "%.*s", (int)(len - 4), name + 2);
        return buf;
    }
    while (*p && o + 1 < n) {
        int done = 0;
        for (size_t i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
            size_t fl = strlen(subst[i].from);
            if (strncmp(p, subst[i].from, fl) == 0) {
                size_t tl = strlen(subst[i].to);
                if (o + tl + 1 >= n) return NULL;
                memcpy(buf + o, subst[i].to, tl);
                o += tl;
                p += fl;
                done = 1;
                break;
            }
        }
        if (!done) buf[o++] = *p++;
    }
    buf[o] = 0;
    return buf;
}

static long select_key(struct ev *e, const struct val *m, const char *name)
{
    struct val key = vstr(name, strlen(name));
    long i = map_find(e, m, &key);
    if (i >= 0 || e->fatal) return i;
    char buf[256];
    const char *alt = unescape_name(name, buf, sizeof(buf));
    if (!alt) return -1;
    key = vstr(alt, strlen(alt));
    return map_find(e, m, &key);
}

static struct val eval(struct ev *e, const struct node *n);

static size_t utf8_len(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* Byte offset of code point index cp, or (size_t)-1 when past the end. */
static size_t utf8_off(const char *s, size_t n, int64_t cp)
{
    if (cp < 0) return (size_t)-1;
    size_t i = 0;
    int64_t c = 0;
    while (i < n && c < cp) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        c++;
    }
    return c == cp ? i : (size_t)-1;
}

static struct val to_string(struct ev *e, const struct val *v)
{
    char buf[64];
    switch (v->k) {
    case V_STR:
        return *v;
    case V_INT:
        snprintf(buf, sizeof(buf), "%lld", (long long)v->i);
        break;
    case V_UINT:
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v->u);
        break;
    case V_DBL:
        tn_cel_format_double(v->d, buf, sizeof(buf));
        break;
    case V_BOOL:
        snprintf(buf, sizeof(buf), "%s", v->b ? "true" : "false");
        break;
    case V_DUR: {
        int64_t s = v->i / 1000000000, f = v->i % 1000000000;
        if (f == 0) {
            snprintf(buf, sizeof(buf), "%llds", (long long)s);
        } else {
            char fr[16];
            snprintf(fr, sizeof(fr), "%09lld", (long long)(f < 0 ? -f : f));
            size_t l = strlen(fr);
            while (l > 0 && fr[l - 1] == '0')
                fr[--l] = 0;
            snprintf(buf, sizeof(buf), "%s%lld.%ss", v->i < 0 && s == 0 ? "-" : "", (long long)s,
                     fr);
        }
        break;
    }
    case V_TS: {
        int64_t sec = v->i / 1000000000, f = v->i % 1000000000;
        if (f < 0) {
            sec--;
            f += 1000000000;
        }
        char base[40];
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        if (f) {
            char fr[16];
            snprintf(fr, sizeof(fr), "%09lld", (long long)f);
            size_t l = strlen(fr);
            while (l > 0 && fr[l - 1] == '0')
                fr[--l] = 0;
            snprintf(buf, sizeof(buf), "%s.%sZ", base, fr);
        } else {
            snprintf(buf, sizeof(buf), "%sZ", base);
        }
        break;
    }
    default:
        return verr_static(ERR_OVERLOAD);
    }
    return vstr_copy(e, buf, strlen(buf));
}

static struct val do_matches(struct ev *e, const struct node *n, const struct val *s,
                             const struct val *pat)
{
    if (s->k != V_STR || pat->k != V_STR) return verr_static(ERR_OVERLOAD);
    if (charge(e, 1 + s->s.n + (n->re ? 0 : pat->s.n * 4)) != 0) return fatal_err(e);
    if (memchr(s->s.p, 0, s->s.n)) return verr(e, "string contains a NUL byte");
    regex_t tmp;
    const regex_t *re = n->re;
    if (!re) {
        struct tn_err rerr = {0};
        if (tn_regex_compile(&tmp, pat->s.p, &rerr) != 0)
            return verr(e, "invalid regular expression '%s': %s", pat->s.p, rerr.msg);
        re = &tmp;
    }
    int r = regexec(re, s->s.p, 0, NULL, 0);
    if (re == &tmp) regfree(&tmp);
    return vbool(r == 0);
}

static struct val call(struct ev *e, const struct node *n)
{
    struct val recv = {.k = V_NULL};
    struct val args[3];
    if (n->a) {
        recv = eval(e, n->a);
        if (recv.k == V_ERR) return recv;
    }
    for (size_t i = 0; i < n->nargs && i < 3; i++) {
        args[i] = eval(e, n->args[i]);
        if (args[i].k == V_ERR) return args[i];
    }
    const char *f = n->name;
    const struct val *x = n->a ? &recv : &args[0]; /* subject of single-argument functions */

    if (strcmp(f, "size") == 0) {
        if (x->k == V_STR) return vint((int64_t)utf8_len(x->s.p, x->s.n));
        if (x->k == V_LIST) return vint((int64_t)x->l.n);
        if (x->k == V_MAP) return vint((int64_t)x->m.n);
        return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "matches") == 0) return do_matches(e, n, x, n->a ? &args[0] : &args[1]);
    if (strcmp(f, "startsWith") == 0 || strcmp(f, "endsWith") == 0 || strcmp(f, "contains") == 0) {
        const struct val *a = &args[0];
        if (x->k != V_STR || a->k != V_STR) return verr_static(ERR_OVERLOAD);
        if (charge(e, 1 + x->s.n / 8) != 0) return fatal_err(e);
        if (a->s.n > x->s.n) return vbool(0);
        if (f[0] == 's') return vbool(memcmp(x->s.p, a->s.p, a->s.n) == 0);
        if (f[0] == 'e') return vbool(memcmp(x->s.p + x->s.n - a->s.n, a->s.p, a->s.n) == 0);
        return vbool(a->s.n == 0 || memmem(x->s.p, x->s.n, a->s.p, a->s.n) != NULL);
    }
    if (strcmp(f, "dyn") == 0) return *x;
    if (strcmp(f, "int") == 0) {
        switch (x->k) {
        case V_INT:
            return *x;
        case V_UINT:
            if (x->u > (uint64_t)INT64_MAX) return verr_static("integer overflow");
            return vint((int64_t)x->u);
        case V_DBL:
            if (isnan(x->d) || x->d >= 9223372036854775807.0 || x->d < -9223372036854775808.0)
                return verr_static("integer overflow");
            return vint((int64_t)x->d);
        case V_STR: {
            char buf[64];
            char *end;
            if (x->s.n == 0 || x->s.n >= sizeof(buf))
                return verr(e, "cannot convert '%.*s' to int", (int)(x->s.n > 40 ? 40 : x->s.n),
                            x->s.p);
            memcpy(buf, x->s.p, x->s.n);
            buf[x->s.n] = 0;
            errno = 0;
            long long v = strtoll(buf, &end, 10);
            if (*end || errno) return verr(e, "cannot convert '%s' to int", buf);
            return vint(v);
        }
        case V_TS:
            return vint(x->i >= 0 ? x->i / 1000000000 : -((-x->i + 999999999) / 1000000000));
        case V_DUR:
            return vint(x->i);
        }
        return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "uint") == 0) {
        switch (x->k) {
        case V_UINT:
            return *x;
        case V_INT:
            if (x->i < 0) return verr_static("unsigned integer overflow");
            return vuint((uint64_t)x->i);
        case V_DBL:
            if (isnan(x->d) || x->d < 0 || x->d >= 18446744073709551615.0)
                return verr_static("unsigned integer overflow");
            return vuint((uint64_t)x->d);
        case V_STR: {
            char buf[64];
            char *end;
            if (x->s.n == 0 || x->s.n >= sizeof(buf) || x->s.p[0] == '-')
                return verr(e, "cannot convert '%.*s' to uint", (int)(x->s.n > 40 ? 40 : x->s.n),
                            x->s.p);
            memcpy(buf, x->s.p, x->s.n);
            buf[x->s.n] = 0;
            errno = 0;
            unsigned long long v = strtoull(buf, &end, 10);
            if (*end || errno) return verr(e, "cannot convert '%s' to uint", buf);
            return vuint(v);
        }
        }
        return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "double") == 0) {
        switch (x->k) {
        case V_DBL:
            return *x;
        case V_INT:
            return vdbl((double)x->i);
        case V_UINT:
            return vdbl((double)x->u);
        case V_STR: {
            char buf[128];
            char *end;
            if (x->s.n == 0 || x->s.n >= sizeof(buf))
                return verr(e, "cannot convert string to double");
            memcpy(buf, x->s.p, x->s.n);
            buf[x->s.n] = 0;
            double d = strtod(buf, &end);
            if (*end) return verr(e, "cannot convert '%s' to double", buf);
            return vdbl(d);
        }
        }
        return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "string") == 0) return to_string(e, x);
    if (strcmp(f, "bool") == 0) {
        if (x->k == V_BOOL) return *x;
        if (x->k == V_STR) {
            static const char *const t[] = {"1", "t", "true", "TRUE", "True"};
            static const char *const fl[] = {"0", "f", "false", "FALSE", "False"};
            for (size_t i = 0; i < 5; i++) {
                if (x->s.n == strlen(t[i]) && memcmp(x->s.p, t[i], x->s.n) == 0) return vbool(1);
                if (x->s.n == strlen(fl[i]) && memcmp(x->s.p, fl[i], x->s.n) == 0) return vbool(0);
            }
            return verr(e, "type conversion error from 'string' to 'bool'");
        }
        return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "duration") == 0 || strcmp(f, "timestamp") == 0) {
        int is_dur = f[0] == 'd';
        if (x->k == (is_dur ? V_DUR : V_TS)) return *x;
        if (x->k != V_STR) return verr_static(ERR_OVERLOAD);
        struct val v = {.k = is_dur ? V_DUR : V_TS};
        int r = is_dur ? parse_duration_ns(x->s.p, &v.i) : parse_ts_ns(x->s.p, &v.i);
        if (r != 0)
            return verr(e, "invalid %s: '%.*s'", is_dur ? "duration" : "timestamp",
                        (int)(x->s.n > 64 ? 64 : x->s.n), x->s.p);
        return v;
    }
    /* string extension library: receiver is x */
    if (strcmp(f, "join") == 0) {
        if (x->k != V_LIST || (n->nargs == 1 && args[0].k != V_STR))
            return verr_static(ERR_OVERLOAD);
        struct tn_buf b;
        tn_buf_init(&b, TN_CEL_MAX_EVAL_BYTES);
        for (size_t i = 0; i < x->l.n; i++) {
            if (x->l.v[i].k != V_STR) {
                tn_buf_free(&b);
                return verr_static(ERR_OVERLOAD);
            }
            if (i && n->nargs == 1) tn_buf_append(&b, args[0].s.p, args[0].s.n);
            tn_buf_append(&b, x->l.v[i].s.p, x->l.v[i].s.n);
        }
        if (charge(e, 1 + b.len / 8) != 0) {
            tn_buf_free(&b);
            return fatal_err(e);
        }
        struct val r = vstr_copy(e, b.data ? b.data : "", b.len);
        tn_buf_free(&b);
        return r;
    }
    if (x->k != V_STR) return verr_static(ERR_OVERLOAD);
    if (charge(e, 1 + x->s.n / 8) != 0) return fatal_err(e);
    if (strcmp(f, "lowerAscii") == 0 || strcmp(f, "upperAscii") == 0) {
        struct val r = vstr_copy(e, x->s.p, x->s.n);
        if (r.k != V_STR) return r;
        char *q = (char *)r.s.p;
        for (size_t i = 0; i < r.s.n; i++) {
            if (f[0] == 'l' && q[i] >= 'A' && q[i] <= 'Z')
                q[i] = (char)(q[i] - 'A' + 'a');
            else if (f[0] == 'u' && q[i] >= 'a' && q[i] <= 'z')
                q[i] = (char)(q[i] - 'a' + 'A');
        }
        return r;
    }
    if (strcmp(f, "trim") == 0) {
        size_t a = 0, b = x->s.n;
        while (a < b && strchr(" \t\n\r\f\v", x->s.p[a]))
            a++;
        while (b > a && strchr(" \t\n\r\f\v", x->s.p[b - 1]))
            b--;
        return vstr(x->s.p + a, b - a);
    }
    for (size_t i = 0; i < n->nargs; i++) {
        int want_int = strcmp(f, "substring") == 0 || (i == 1 && f[0] != 'r') || i == 2;
        if (want_int ? args[i].k != V_INT : args[i].k != V_STR) return verr_static(ERR_OVERLOAD);
    }
    if (strcmp(f, "indexOf") == 0 || strcmp(f, "lastIndexOf") == 0) {
        const struct val *sub = &args[0];
        int last = f[0] == 'l';
        size_t start = 0, end = x->s.n;
        if (n->nargs == 2) {
            size_t off = utf8_off(x->s.p, x->s.n, args[1].i);
            if (off == (size_t)-1) return verr(e, "index out of range: %lld", (long long)args[1].i);
            if (last)
                end = off + sub->s.n < x->s.n ? off + sub->s.n : x->s.n;
            else
                start = off;
        }
        long found = -1;
        for (size_t i = start; i + sub->s.n <= end; i++) {
            if (memcmp(x->s.p + i, sub->s.p, sub->s.n) == 0) {
                found = (long)i;
                if (!last) break;
            }
        }
        return vint(found < 0 ? -1 : (int64_t)utf8_len(x->s.p, (size_t)found));
    }
    if (strcmp(f, "substring") == 0) {
        size_t a = utf8_off(x->s.p, x->s.n, args[0].i);
        size_t b = n->nargs == 2 ? utf8_off(x->s.p, x->s.n, args[1].i) : x->s.n;
        if (a == (size_t)-1 || b == (size_t)-1 || b < a)
            return verr(e, "index out of range: %lld",
                        (long long)(a == (size_t)-1 ? args[0].i : args[1].i));
        return vstr(x->s.p + a, b - a);
    }
    if (strcmp(f, "replace") == 0) {
        const struct val *from = &args[0], *to = &args[1];
        int64_t limit = n->nargs == 3 ? args[2].i : -1;
        struct tn_buf b;
        tn_buf_init(&b, TN_CEL_MAX_EVAL_BYTES);
        size_t i = 0;
        int64_t done = 0;
        while (i <= x->s.n) {
            if ((limit < 0 || done < limit) && i + from->s.n <= x->s.n &&
                memcmp(x->s.p + i, from->s.p, from->s.n) == 0) {
                tn_buf_append(&b, to->s.p, to->s.n);
                done++;
                if (from->s.n == 0) {
                    if (i < x->s.n) tn_buf_putc(&b, x->s.p[i]);
                    i++;
                } else {
                    i += from->s.n;
                }
                continue;
            }
            if (i < x->s.n) tn_buf_putc(&b, x->s.p[i]);
            i++;
        }
        if (charge(e, b.len / 8) != 0) {
            tn_buf_free(&b);
            return fatal_err(e);
        }
        struct val r = vstr_copy(e, b.data ? b.data : "", b.len);
        tn_buf_free(&b);
        return r;
    }
    if (strcmp(f, "split") == 0) {
        const struct val *sep = &args[0];
        int64_t limit = n->nargs == 2 ? args[1].i : -1;
        if (limit == 0) {
            struct val r = {.k = V_LIST};
            r.l.v = vals_alloc(e, 0);
            return r.l.v ? r : fatal_err(e);
        }
        size_t cap = x->s.n + 1;
        struct val r = {.k = V_LIST};
        r.l.v = vals_alloc(e, cap);
        if (!r.l.v) return fatal_err(e);
        size_t cnt = 0, i = 0, st = 0;
        if (sep->s.n == 0) {
            while (i < x->s.n && (limit < 0 || (int64_t)cnt < limit - 1)) {
                size_t j = i + 1;
                while (j < x->s.n && ((unsigned char)x->s.p[j] & 0xC0) == 0x80)
                    j++;
                r.l.v[cnt++] = vstr(x->s.p + i, j - i);
                i = j;
            }
            if (i < x->s.n) r.l.v[cnt++] = vstr(x->s.p + i, x->s.n - i);
        } else {
            while (i + sep->s.n <= x->s.n && (limit < 0 || (int64_t)cnt < limit - 1)) {
                if (memcmp(x->s.p + i, sep->s.p, sep->s.n) == 0) {
                    r.l.v[cnt++] = vstr(x->s.p + st, i - st);
                    i += sep->s.n;
                    st = i;
                } else {
                    i++;
                }
            }
            r.l.v[cnt++] = vstr(x->s.p + st, x->s.n - st);
        }
        r.l.n = cnt;
        return r;
    }
    return verr_static(ERR_OVERLOAD);
}

static struct val arith(struct ev *e, int op, const struct val *a, const struct val *b)
{
    if (a->k != b->k) {
        if (op == '+' && ((a->k == V_TS && b->k == V_DUR) || (a->k == V_DUR && b->k == V_TS))) {
            struct val r = {.k = V_TS};
            if (__builtin_add_overflow(a->i, b->i, &r.i)) return verr_static("timestamp overflow");
            return r;
        }
        if (op == '-' && a->k == V_TS && b->k == V_DUR) {
            struct val r = {.k = V_TS};
            if (__builtin_sub_overflow(a->i, b->i, &r.i)) return verr_static("timestamp overflow");
            return r;
        }
        return verr_static(ERR_OVERLOAD);
    }
    switch (a->k) {
    case V_INT: {
        int64_t r;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(a->i, b->i, &r)) return verr_static("integer overflow");
            return vint(r);
        case '-':
            if (__builtin_sub_overflow(a->i, b->i, &r)) return verr_static("integer overflow");
            return vint(r);
        case '*':
            if (__builtin_mul_overflow(a->i, b->i, &r)) return verr_static("integer overflow");
            return vint(r);
        case '/':
        case '%':
            if (b->i == 0) return verr_static(op == '/' ? "division by zero" : "modulus by zero");
            if (a->i == INT64_MIN && b->i == -1) return verr_static("integer overflow");
            return vint(op == '/' ? a->i / b->i : a->i % b->i);
        }
        break;
    }
    case V_UINT: {
        uint64_t r;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(a->u, b->u, &r))
                return verr_static("unsigned integer overflow");
            return vuint(r);
        case '-':
            if (__builtin_sub_overflow(a->u, b->u, &r))
                return verr_static("unsigned integer overflow");
            return vuint(r);
        case '*':
            if (__builtin_mul_overflow(a->u, b->u, &r))
                return verr_static("unsigned integer overflow");
            return vuint(r);
        case '/':
        case '%':
            if (b->u == 0) return verr_static(op == '/' ? "division by zero" : "modulus by zero");
            return vuint(op == '/' ? a->u / b->u : a->u % b->u);
        }
        break;
    }
    case V_DBL:
        switch (op) {
        case '+':
            return vdbl(a->d + b->d);
        case '-':
            return vdbl(a->d - b->d);
        case '*':
            return vdbl(a->d * b->d);
        case '/':
            return vdbl(a->d / b->d);
        }
        break;
    case V_STR:
        if (op == '+') {
            if (charge(e, (a->s.n + b->s.n) / 8) != 0) return fatal_err(e);
            char *s = ar_alloc(&e->ar, a->s.n + b->s.n + 1);
            if (!s) {
                e->oom = 1;
                return fatal_err(e);
            }
            memcpy(s, a->s.p, a->s.n);
            memcpy(s + a->s.n, b->s.p, b->s.n);
            s[a->s.n + b->s.n] = 0;
            return vstr(s, a->s.n + b->s.n);
        }
        break;
    case V_LIST:
        if (op == '+') {
            if (charge(e, a->l.n + b->l.n) != 0) return fatal_err(e);
            struct val r = {.k = V_LIST};
            r.l.v = vals_alloc(e, a->l.n + b->l.n);
            if (!r.l.v) return fatal_err(e);
            if (a->l.n) memcpy(r.l.v, a->l.v, a->l.n * sizeof(struct val));
            if (b->l.n) memcpy(r.l.v + a->l.n, b->l.v, b->l.n * sizeof(struct val));
            r.l.n = a->l.n + b->l.n;
            return r;
        }
        break;
    case V_DUR:
        if (op == '+' || op == '-') {
            struct val r = {.k = V_DUR};
            if (op == '+' ? __builtin_add_overflow(a->i, b->i, &r.i)
                          : __builtin_sub_overflow(a->i, b->i, &r.i))
                return verr_static("duration overflow");
            return r;
        }
        break;
    case V_TS:
        if (op == '-') {
            struct val r = {.k = V_DUR};
            if (__builtin_sub_overflow(a->i, b->i, &r.i)) return verr_static("duration overflow");
            return r;
        }
        break;
    }
    return verr_static(ERR_OVERLOAD);
}

static struct val binop(struct ev *e, int op, const struct val *a, const struct val *b)
{
    switch (op) {
    case TK_EQ:
    case TK_NE: {
        struct val r = eq(e, a, b);
        if (r.k == V_BOOL && op == TK_NE) r.b = !r.b;
        return r;
    }
    case '<':
    case '>':
    case TK_LE:
    case TK_GE: {
        int c;
        if (is_num(a) && is_num(b))
            c = num_cmp(a, b);
        else if (a->k != b->k)
            return verr_static(ERR_OVERLOAD);
        else if (a->k == V_STR)
            c = str_cmp(a, b);
        else if (a->k == V_BOOL)
            c = a->b - b->b;
        else if (a->k == V_DUR || a->k == V_TS)
            c = a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
        else
            return verr_static(ERR_OVERLOAD);
        if (c == 2) return vbool(0);
        switch (op) {
        case '<':
            return vbool(c < 0);
        case '>':
            return vbool(c > 0);
        case TK_LE:
            return vbool(c <= 0);
        default:
            return vbool(c >= 0);
        }
    }
    case TK_IN:
        if (b->k == V_LIST) {
            for (size_t i = 0; i < b->l.n; i++) {
                struct val r = eq(e, a, &b->l.v[i]);
                if (r.k == V_ERR || r.b) return r;
            }
            return vbool(0);
        }
        if (b->k == V_MAP) {
            long i = map_find(e, b, a);
            if (e->fatal) return fatal_err(e);
            return vbool(i >= 0);
        }
        return verr_static(ERR_OVERLOAD);
    }
    return arith(e, op, a, b);
}

static struct val comprehension(struct ev *e, const struct node *n)
{
    struct val range = eval(e, n->a);
    if (range.k == V_ERR) return range;
    const struct val *items;
    size_t cnt;
    if (range.k == V_LIST) {
        items = range.l.v;
        cnt = range.l.n;
    } else if (range.k == V_MAP) {
        items = range.m.key;
        cnt = range.m.n;
    } else {
        return verr_static(ERR_OVERLOAD);
    }
    if (e->nv >= MAX_SCOPE) return verr(e, "comprehensions nested too deeply");
    int slot = e->nv++;
    e->vname[slot] = n->name;
    struct val result = vbool(n->op == M_ALL);
    struct val pending = {.k = V_NULL}; /* first absorbed error */
    int have_pending = 0;
    int64_t count = 0;
    struct val out = {.k = V_LIST};
    size_t nout = 0;
    if (n->op == M_MAP || n->op == M_MAP3 || n->op == M_FILTER) {
        out.l.v = vals_alloc(e, cnt);
        if (!out.l.v) {
            e->nv--;
            return fatal_err(e);
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        if (charge(e, 1) != 0) {
            e->nv--;
            return fatal_err(e);
        }
        e->vval[slot] = items[i];
        struct val r = eval(e, n->b);
        if (e->fatal) {
            e->nv--;
            return fatal_err(e);
        }
        switch (n->op) {
        case M_ALL:
        case M_EXISTS: {
            int decisive = n->op == M_EXISTS; /* value that ends the loop */
            if (r.k == V_ERR || r.k != V_BOOL) {
                if (!have_pending) {
                    pending = r.k == V_ERR ? r : verr_static(ERR_OVERLOAD);
                    have_pending = 1;
                }
                continue;
            }
            if (r.b == decisive) {
                e->nv--;
                return vbool(decisive);
            }
            break;
        }
        case M_EXISTS_ONE:
            if (r.k == V_ERR) {
                e->nv--;
                return r;
            }
            if (r.k != V_BOOL) {
                e->nv--;
                return verr_static(ERR_OVERLOAD);
            }
            count += r.b;
            break;
        case M_MAP:
            if (r.k == V_ERR) {
                e->nv--;
                return r;
            }
            out.l.v[nout++] = r;
            break;
        case M_MAP3:
        case M_FILTER:
            if (r.k == V_ERR) {
                e->nv--;
                return r;
            }
            if (r.k != V_BOOL) {
                e->nv--;
                return verr_static(ERR_OVERLOAD);
            }
            if (!r.b) break;
            if (n->op == M_MAP3) {
                r = eval(e, n->c);
                if (r.k == V_ERR) {
                    e->nv--;
                    return r;
                }
                out.l.v[nout++] = r;
            } else {
                out.l.v[nout++] = items[i];
            }
            break;
        }
    }
    e->nv--;
    switch (n->op) {
    case M_ALL:
    case M_EXISTS:
        return have_pending ? pending : result;
    case M_EXISTS_ONE:
        return vbool(count == 1);
    default:
        out.l.n = nout;
        return out;
    }
}

static struct val eval(struct ev *e, const struct node *n)
{
    if (e->fatal || charge(e, 1) != 0) return fatal_err(e);
    switch (n->k) {
    case N_LIT:
        return n->lit;
    case N_IDENT:
        for (int i = e->nv - 1; i >= 0; i--)
            if (strcmp(e->vname[i], n->name) == 0) return e->vval[i];
        if (strcmp(n->name, "self") == 0) return e->self;
        if (strcmp(n->name, "oldSelf") == 0) {
            if (!e->have_old) return verr_static("no such attribute: oldSelf");
            return e->old;
        }
        return verr(e, "no such attribute: %s", n->name);
    case N_SELECT:
    case N_HAS: {
        struct val t = eval(e, n->a);
        if (t.k == V_ERR) return t;
        if (t.k != V_MAP) return verr_static(ERR_OVERLOAD);
        long i = select_key(e, &t, n->name);
        if (e->fatal) return fatal_err(e);
        if (n->k == N_HAS) return vbool(i >= 0);
        if (i < 0) return verr(e, "no such key: %s", n->name);
        return t.m.v[i];
    }
    case N_INDEX: {
        struct val t = eval(e, n->a);
        if (t.k == V_ERR) return t;
        struct val k = eval(e, n->b);
        if (k.k == V_ERR) return k;
        if (t.k == V_LIST) {
            int64_t idx;
            if (k.k == V_INT)
                idx = k.i;
            else if (k.k == V_UINT)
                idx = k.u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)k.u;
            else if (k.k == V_DBL && k.d == floor(k.d) && fabs(k.d) < 9e18)
                idx = (int64_t)k.d;
            else
                return verr_static(ERR_OVERLOAD);
            if (idx < 0 || (uint64_t)idx >= t.l.n)
                return verr(e, "index '%lld' out of range in list size '%zu'", (long long)idx,
                            t.l.n);
            return t.l.v[idx];
        }
        if (t.k == V_MAP) {
            long i = map_find(e, &t, &k);
            if (e->fatal) return fatal_err(e);
            if (i < 0) {
                if (k.k == V_STR)
                    return verr(e, "no such key: %.*s", (int)(k.s.n > 100 ? 100 : k.s.n), k.s.p);
                return verr(e, "no such key");
            }
            return t.m.v[i];
        }
        return verr_static(ERR_OVERLOAD);
    }
    case N_CALL:
        return call(e, n);
    case N_LIST: {
        struct val r = {.k = V_LIST};
        r.l.v = vals_alloc(e, n->nargs);
        if (!r.l.v) return fatal_err(e);
        for (size_t i = 0; i < n->nargs; i++) {
            r.l.v[i] = eval(e, n->args[i]);
            if (r.l.v[i].k == V_ERR) return r.l.v[i];
        }
        r.l.n = n->nargs;
        return r;
    }
    case N_MAP: {
        size_t cnt = n->nargs / 2;
        struct val r = {.k = V_MAP};
        r.m.key = vals_alloc(e, cnt);
        r.m.v = vals_alloc(e, cnt);
        if (!r.m.key || !r.m.v) return fatal_err(e);
        for (size_t i = 0; i < cnt; i++) {
            struct val k = eval(e, n->args[2 * i]);
            if (k.k == V_ERR) return k;
            if (k.k != V_STR && k.k != V_INT && k.k != V_UINT && k.k != V_BOOL)
                return verr(e, "unsupported key type");
            r.m.n = i;
            if (map_find(e, &r, &k) >= 0) return verr(e, "Failed with repeated key");
            struct val v = eval(e, n->args[2 * i + 1]);
            if (v.k == V_ERR) return v;
            r.m.key[i] = k;
            r.m.v[i] = v;
        }
        r.m.n = cnt;
        return r;
    }
    case N_NEG: {
        struct val v = eval(e, n->a);
        if (v.k == V_ERR) return v;
        if (v.k == V_INT) {
            if (v.i == INT64_MIN) return verr_static("integer overflow");
            return vint(-v.i);
        }
        if (v.k == V_DBL) return vdbl(-v.d);
        if (v.k == V_DUR) {
            v.i = -v.i;
            return v;
        }
        return verr_static(ERR_OVERLOAD);
    }
    case N_NOT: {
        struct val v = eval(e, n->a);
        if (v.k == V_ERR) return v;
        if (v.k != V_BOOL) return verr_static(ERR_OVERLOAD);
        return vbool(!v.b);
    }
    case N_BIN: {
        struct val a = eval(e, n->a);
        if (a.k == V_ERR) return a;
        struct val b = eval(e, n->b);
        if (b.k == V_ERR) return b;
        return binop(e, n->op, &a, &b);
    }
    case N_AND:
    case N_OR: {
        int decisive = n->k == N_OR; /* || is decided by true, && by false */
        struct val a = eval(e, n->a);
        if (e->fatal) return fatal_err(e);
        if (a.k == V_BOOL && a.b == decisive) return a;
        struct val b = eval(e, n->b);
        if (e->fatal) return fatal_err(e);
        if (b.k == V_BOOL && b.b == decisive) return b;
        if (a.k == V_ERR) return a;
        if (b.k == V_ERR) return b;
        if (a.k != V_BOOL || b.k != V_BOOL) return verr_static(ERR_OVERLOAD);
        return vbool(!decisive);
    }
    case N_COND: {
        struct val c = eval(e, n->a);
        if (c.k == V_ERR) return c;
        if (c.k != V_BOOL) return verr_static(ERR_OVERLOAD);
        return eval(e, c.b ? n->b : n->c);
    }
    case N_COMP:
        return comprehension(e, n);
    }
    return verr_static("internal error: unknown node");
}

static json_t *to_json(struct ev *e, const struct val *v)
{
    switch (v->k) {
    case V_NULL:
        return json_null();
    case V_BOOL:
        return json_boolean(v->b);
    case V_INT:
        return json_integer(v->i);
    case V_UINT:
        return v->u > (uint64_t)INT64_MAX ? json_real((double)v->u)
                                          : json_integer((json_int_t)v->u);
    case V_DBL:
        return json_real(v->d);
    case V_STR:
        return json_stringn(v->s.p, v->s.n);
    case V_DUR:
    case V_TS: {
        struct val s = to_string(e, v);
        return s.k == V_STR ? json_stringn(s.s.p, s.s.n) : NULL;
    }
    case V_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v->l.n; i++) {
            if (json_array_append_new(a, to_json(e, &v->l.v[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case V_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < v->m.n; i++) {
            struct val k = to_string(e, &v->m.key[i]);
            char *ks = k.k == V_STR ? strndup(k.s.p, k.s.n) : NULL;
            if (!ks || json_object_set_new(o, ks, to_json(e, &v->m.v[i])) != 0) {
                free(ks);
                json_decref(o);
                return NULL;
            }
            free(ks);
        }
        return o;
    }
    }
    return NULL;
}

static int run(const struct tn_cel_prog *prog, const struct tn_cel_env *env, struct ev *e,
               struct val *out, struct tn_err *err)
{
    memset(e, 0, sizeof(*e));
    e->ar.limit = TN_CEL_MAX_EVAL_BYTES;
    e->max = env && env->max_steps ? env->max_steps : TN_CEL_DEFAULT_STEPS;
    e->self.k = V_NULL;
    if (env && env->self) e->self = from_json(e, env->self, env->schema);
    if (env && env->old_self && !e->fatal) {
        e->old = from_json(e, env->old_self, env->schema);
        e->have_old = 1;
    }
    struct val r = e->fatal ? fatal_err(e) : eval(e, prog->root);
    if (e->oom || e->fatal) {
        if (e->oom) return tn_err_set(err, TN_ETOOBIG, "%s (memory)", TN_CEL_COST_MSG);
        return tn_err_set(err, TN_ETOOBIG, "%s", TN_CEL_COST_MSG);
    }
    if (r.k == V_ERR) return tn_err_set(err, TN_EINVAL, "%.*s", (int)r.s.n, r.s.p);
    *out = r;
    return 0;
}

int tn_cel_eval(const struct tn_cel_prog *prog, const struct tn_cel_env *env, json_t **out,
                struct tn_err *err)
{
    struct ev e;
    struct val r;
    *out = NULL;
    int rc = run(prog, env, &e, &r, err);
    if (rc == 0) {
        *out = to_json(&e, &r);
        if (!*out) rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    }
    ar_free(&e.ar);
    return rc;
}

int tn_cel_eval_bool(const struct tn_cel_prog *prog, const struct tn_cel_env *env, int *result,
                     struct tn_err *err)
{
    struct ev e;
    struct val r;
    int rc = run(prog, env, &e, &r, err);
    if (rc == 0) {
        if (r.k != V_BOOL)
            rc = tn_err_set(err, TN_EINVAL, "rule did not evaluate to a bool");
        else
            *result = r.b;
    }
    ar_free(&e.ar);
    return rc;
}
