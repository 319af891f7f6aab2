/* Label and field selectors; see selector.h. The label parser follows apimachinery's
 * labels/selector.go token by token so that error messages match what kubectl users know;
 * the field parser follows fields/selector.go. */
#include "apiserver/selector.h"
#include "apiserver/jsonpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"

/* ---------------------------------------------------------------------------------------
 * Validation messages (k8s.io/apimachinery/pkg/util/validation)
 * ------------------------------------------------------------------------------------- */

#define QNAME_MSG                                                                                  \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character"
#define QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define QNAME_EXAMPLES "(e.g. 'MyName',  or 'my.name',  or '123-abc', "
#define LVALUE_MSG                                                                                 \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character"
#define LVALUE_EXAMPLES "(e.g. 'MyValue',  or 'my_value',  or '12345', "
#define DNS_SUB_MSG                                                                                \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character"
#define DNS_SUB_FMT "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static int qname_ok(const char *s, size_t n)
{
    if (n == 0 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1])) return 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return 0;
    }
    return 1;
}

static int dns_subdomain_ok(const char *s, size_t n)
{
    size_t start = 0;
    if (n == 0) return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') continue;
        size_t len = i - start;
        if (len == 0) return 0;
        for (size_t j = start; j < i; j++) {
            int c = (unsigned char)s[j];
            int lower_alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
            if (!lower_alnum && !(c == '-' && j != start && j != i - 1)) return 0;
        }
        start = i + 1;
    }
    return 1;
}

static void add_msg(struct tn_buf *b, const char *msg)
{
    if (b->len) tn_buf_puts(b, "; ");
    tn_buf_puts(b, msg);
}

/* IsQualifiedName: appends the messages ("; "-joined) to b; returns their count. */
static int qualified_name_errs(const char *v, struct tn_buf *b)
{
    int n = 0;
    const char *slash = strchr(v, '/');
    const char *name = v;
    if (slash && strchr(slash + 1, '/')) {
        add_msg(b, "a qualified name " QNAME_MSG " " QNAME_EXAMPLES
                   "regex used for validation is '" QNAME_FMT
                   "') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
        return 1;
    }
    if (slash) {
        size_t plen = (size_t)(slash - v);
        name = slash + 1;
        if (plen == 0) {
            add_msg(b, "prefix part must be non-empty");
            n++;
        } else {
            if (plen > 253) {
                add_msg(b, "prefix part must be no more than 253 characters");
                n++;
            }
            if (!dns_subdomain_ok(v, plen)) {
                add_msg(b, "prefix part " DNS_SUB_MSG " (e.g. 'example.com', regex used for "
                           "validation is '" DNS_SUB_FMT "')");
                n++;
            }
        }
    }
    size_t nlen = strlen(name);
    if (nlen == 0) {
        add_msg(b, "name part must be non-empty");
        n++;
    } else if (nlen > 63) {
        add_msg(b, "name part must be no more than 63 characters");
        n++;
    }
    if (!qname_ok(name, nlen)) {
        add_msg(b, "name part " QNAME_MSG " " QNAME_EXAMPLES
                   "regex used for validation is '" QNAME_FMT "')");
        n++;
    }
    return n;
}

static int label_value_errs(const char *v, struct tn_buf *b)
{
    int n = 0;
    size_t len = strlen(v);
    if (len > 63) {
        add_msg(b, "must be no more than 63 characters");
        n++;
    }
    if (len > 0 && !qname_ok(v, len)) {
        add_msg(b,
                LVALUE_MSG " " LVALUE_EXAMPLES "regex used for validation is '(" QNAME_FMT ")?')");
        n++;
    }
    return n;
}

/* tn_buf_steal, but "" for an empty buffer (whose memory may not be allocated yet). */
static char *buf_steal(struct tn_buf *b)
{
    if (b->len == 0) {
        tn_buf_free(b);
        return strdup("");
    }
    return tn_buf_steal(b, NULL);
}

static int finish_validate(struct tn_buf *b, int nerr, struct tn_err *err)
{
    int rc = 0;
    if (nerr) rc = tn_err_set(err, TN_EINVAL, "%s", b->data ? b->data : "");
    tn_buf_free(b);
    return rc;
}

int tn_label_key_validate(const char *key, struct tn_err *err)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    return finish_validate(&b, qualified_name_errs(key, &b), err);
}

int tn_label_value_validate(const char *value, struct tn_err *err)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    return finish_validate(&b, label_value_errs(value, &b), err);
}

/* Go's %q for the strings we quote. */
static void go_quote(struct tn_buf *b, const char *s)
{
    tn_buf_go_quote(b, s, strlen(s));
}

/* ---------------------------------------------------------------------------------------
 * Requirements
 * ------------------------------------------------------------------------------------- */

static void req_clear(struct tn_label_req *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    memset(r, 0, sizeof(*r));
}

void tn_labelsel_free(struct tn_labelsel *sel)
{
    if (!sel) return;
    for (size_t i = 0; i < sel->n; i++)
        req_clear(&sel->reqs[i]);
    free(sel->reqs);
    free(sel);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_int64(const char *s, long long *out)
{
    char *end;
    if (!*s || *s == ' ') return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Collects field errors the way field.ErrorList.ToAggregate prints them. */
struct errlist {
    struct tn_buf b;
    int n;
};

static void errlist_begin(struct errlist *e)
{
    if (e->n++) tn_buf_puts(&e->b, ", ");
}

static void go_string_slice(struct tn_buf *b, char **vals, size_t n, int nil)
{
    if (nil && n == 0) {
        tn_buf_puts(b, "[]string(nil)");
        return;
    }
    tn_buf_puts(b, "[]string{");
    for (size_t i = 0; i < n; i++) {
        if (i) tn_buf_puts(b, ", ");
        go_quote(b, vals[i]);
    }
    tn_buf_putc(b, '}');
}

/* NewRequirement: validates and builds r (taking copies). Returns 0 or TN_EINVAL/TN_ENOMEM,
 * the message in err. */
static int new_requirement(const char *key, enum tn_label_op op, char **vals, size_t nvals,
                           struct tn_label_req *r, struct tn_err *err)
{
    struct errlist e = {.n = 0};
    tn_buf_init(&e.b, 0);
    struct tn_buf kb;
    tn_buf_init(&kb, 0);
    if (qualified_name_errs(key, &kb)) {
        errlist_begin(&e);
        tn_buf_puts(&e.b, "key: Invalid value: ");
        go_quote(&e.b, key);
        tn_buf_printf(&e.b, ": %s", kb.data);
    }
    tn_buf_free(&kb);
    switch (op) {
    case TN_LABEL_IN:
    case TN_LABEL_NOTIN:
        if (nvals == 0) {
            errlist_begin(&e);
            tn_buf_puts(&e.b, "values: Invalid value: ");
            go_string_slice(&e.b, vals, nvals, 1);
            tn_buf_puts(&e.b, ": for 'in', 'notin' operators, values set can't be empty");
        }
        break;
    case TN_LABEL_EQ:
    case TN_LABEL_DEQ:
    case TN_LABEL_NEQ:
        if (nvals != 1) {
            errlist_begin(&e);
            tn_buf_puts(&e.b, "values: Invalid value: ");
            go_string_slice(&e.b, vals, nvals, 0);
            tn_buf_puts(&e.b, ": exact-match compatible operators require a single value");
        }
        break;
    case TN_LABEL_EXISTS:
    case TN_LABEL_NOTEXISTS:
        if (nvals != 0) {
            errlist_begin(&e);
            tn_buf_puts(&e.b, "values: Invalid value: ");
            go_string_slice(&e.b, vals, nvals, 0);
            tn_buf_puts(&e.b, ": values set must be empty for exists and does not exist");
        }
        break;
    case TN_LABEL_GT:
    case TN_LABEL_LT:
        if (nvals != 1) {
            errlist_begin(&e);
            tn_buf_puts(&e.b, "values: Invalid value: ");
            go_string_slice(&e.b, vals, nvals, 0);
            tn_buf_puts(&e.b, ": for 'Gt', 'Lt' operators, exactly one value is required");
        }
        for (size_t i = 0; i < nvals; i++) {
            long long dummy;
            if (parse_int64(vals[i], &dummy)) {
                errlist_begin(&e);
                tn_buf_printf(&e.b, "values[%zu]: Invalid value: ", i);
                go_quote(&e.b, vals[i]);
                tn_buf_puts(&e.b, ": for 'Gt', 'Lt' operators, the value must be an integer");
            }
        }
        break;
    }
    for (size_t i = 0; i < nvals; i++) {
        struct tn_buf vb;
        tn_buf_init(&vb, 0);
        if (label_value_errs(vals[i], &vb)) {
            errlist_begin(&e);
            tn_buf_printf(&e.b, "values[%zu][%s]: Invalid value: ", i, key);
            go_quote(&e.b, vals[i]);
            tn_buf_printf(&e.b, ": %s", vb.data);
        }
        tn_buf_free(&vb);
    }
    if (e.n) {
        int rc = tn_err_set(err, TN_EINVAL, e.n > 1 ? "[%s]" : "%s", e.b.data);
        tn_buf_free(&e.b);
        return rc;
    }
    tn_buf_free(&e.b);

    memset(r, 0, sizeof(*r));
    r->op = op;
    r->key = strdup(key);
    r->values = nvals ? calloc(nvals, sizeof(char *)) : NULL;
    if (!r->key || (nvals && !r->values)) goto oom;
    for (size_t i = 0; i < nvals; i++) {
        r->values[r->nvalues] = strdup(vals[i]);
        if (!r->values[r->nvalues]) goto oom;
        r->nvalues++;
    }
    if (r->nvalues > 1) {
        qsort(r->values, r->nvalues, sizeof(char *), cmp_str);
        size_t w = 1;
        for (size_t i = 1; i < r->nvalues; i++) {
            if (strcmp(r->values[i], r->values[w - 1]) == 0)
                free(r->values[i]);
            else
                r->values[w++] = r->values[i];
        }
        r->nvalues = w;
    }
    return 0;
oom:
    req_clear(r);
    return tn_err_set(err, TN_ENOMEM, "out of memory building a label requirement");
}

static int sel_add(struct tn_labelsel *sel, struct tn_label_req *r, size_t *cap)
{
    if (sel->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct tn_label_req *nr = realloc(sel->reqs, nc * sizeof(*nr));
        if (!nr) return TN_ENOMEM;
        sel->reqs = nr;
        *cap = nc;
    }
    sel->reqs[sel->n++] = *r;
    return 0;
}

/* Stable insertion sort by key, as small as selectors are. */
static void sel_sort(struct tn_labelsel *sel)
{
    for (size_t i = 1; i < sel->n; i++) {
        struct tn_label_req cur = sel->reqs[i];
        size_t j = i;
        while (j > 0 && strcmp(sel->reqs[j - 1].key, cur.key) > 0) {
            sel->reqs[j] = sel->reqs[j - 1];
            j--;
        }
        sel->reqs[j] = cur;
    }
}

/* ---------------------------------------------------------------------------------------
 * Label selector string parser
 * ------------------------------------------------------------------------------------- */

enum tok {
    T_ERROR,
    T_EOS,
    T_CLOSE,
    T_COMMA,
    T_NOT,
    T_DEQ,
    T_EQ,
    T_GT,
    T_ID,
    T_IN,
    T_LT,
    T_NEQ,
    T_NOTIN,
    T_OPEN,
};

struct item {
    enum tok tok;
    char *lit;
};

struct parser {
    struct item *items;
    size_t n, cap, pos;
};

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_special(int c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static int push_item(struct parser *p, enum tok t, const char *s, size_t n)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        struct item *ni = realloc(p->items, nc * sizeof(*ni));
        if (!ni) return TN_ENOMEM;
        p->items = ni;
        p->cap = nc;
    }
    char *lit = strndup(s, n);
    if (!lit) return TN_ENOMEM;
    p->items[p->n].tok = t;
    p->items[p->n].lit = lit;
    p->n++;
    return 0;
}

static int lex(struct parser *p, const char *s)
{
    size_t i = 0;
    for (;;) {
        while (is_ws((unsigned char)s[i]))
            i++;
        int c = (unsigned char)s[i];
        int rc;
        if (c == 0) return push_item(p, T_EOS, "", 0);
        if (is_special(c)) {
            /* longest match; the only two-character symbols are "==" and "!=" */
            size_t n = 1;
            enum tok t;
            if ((c == '=' || c == '!') && s[i + 1] == '=') n = 2;
            switch (c) {
            case '=':
                t = n == 2 ? T_DEQ : T_EQ;
                break;
            case '!':
                t = n == 2 ? T_NEQ : T_NOT;
                break;
            case '(':
                t = T_OPEN;
                break;
            case ')':
                t = T_CLOSE;
                break;
            case ',':
                t = T_COMMA;
                break;
            case '>':
                t = T_GT;
                break;
            default:
                t = T_LT;
                break;
            }
            rc = push_item(p, t, s + i, n);
            i += n;
        } else {
            size_t st = i;
            while (s[i] && !is_ws((unsigned char)s[i]) && !is_special((unsigned char)s[i]))
                i++;
            size_t n = i - st;
            enum tok t = T_ID;
            if (n == 2 && memcmp(s + st, "in", 2) == 0)
                t = T_IN;
            else if (n == 5 && memcmp(s + st, "notin", 5) == 0)
                t = T_NOTIN;
            rc = push_item(p, t, s + st, n);
        }
        if (rc) return rc;
    }
}

/* Values context turns the keywords into identifiers ("in" may be a key or a value). */
static enum tok look(struct parser *p, int values, const char **lit)
{
    struct item *it = &p->items[p->pos < p->n ? p->pos : p->n - 1];
    if (lit) *lit = it->lit;
    if (values && (it->tok == T_IN || it->tok == T_NOTIN)) return T_ID;
    return it->tok;
}

static enum tok consume(struct parser *p, int values, const char **lit)
{
    enum tok t = look(p, values, lit);
    if (p->pos < p->n - 1) p->pos++;
    return t;
}

/* A small string set, kept as a growable array. */
struct strset {
    char **v;
    size_t n, cap;
};

static int strset_add(struct strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0) return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        char **nv = realloc(s->v, nc * sizeof(char *));
        if (!nv) return TN_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n] = strdup(x);
    if (!s->v[s->n]) return TN_ENOMEM;
    s->n++;
    return 0;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int oom(struct tn_err *err)
{
    return tn_err_set(err, TN_ENOMEM, "out of memory parsing a selector");
}

static int parse_identifiers_list(struct parser *p, struct strset *s, struct tn_err *err)
{
    for (;;) {
        const char *lit, *lit2;
        enum tok t = consume(p, 1, &lit);
        if (t == T_ID) {
            if (strset_add(s, lit)) return oom(err);
            enum tok t2 = look(p, 1, &lit2);
            if (t2 == T_COMMA) continue;
            if (t2 == T_CLOSE) return 0;
            return tn_err_set(err, TN_EINVAL, "found '%s', expected: ',' or ')'", lit2);
        } else if (t == T_COMMA) {
            if (s->n == 0 && strset_add(s, "")) return oom(err);
            enum tok t2 = look(p, 1, NULL);
            if (t2 == T_CLOSE) {
                if (strset_add(s, "")) return oom(err);
                return 0;
            }
            if (t2 == T_COMMA) {
                consume(p, 1, NULL);
                if (strset_add(s, "")) return oom(err);
            }
        } else {
            return tn_err_set(err, TN_EINVAL, "found '%s', expected: ',', or identifier", lit);
        }
    }
}

static int parse_values(struct parser *p, struct strset *s, struct tn_err *err)
{
    const char *lit;
    enum tok t = consume(p, 1, &lit);
    if (t != T_OPEN) return tn_err_set(err, TN_EINVAL, "found '%s' expected: '('", lit);
    t = look(p, 1, &lit);
    if (t == T_ID || t == T_COMMA) {
        int rc = parse_identifiers_list(p, s, err);
        if (rc) return rc;
        if (consume(p, 1, NULL) != T_CLOSE)
            return tn_err_set(err, TN_EINVAL, "found '%s', expected: ')'", lit);
        return 0;
    }
    if (t == T_CLOSE) {
        consume(p, 1, NULL);
        return strset_add(s, "") ? oom(err) : 0;
    }
    return tn_err_set(err, TN_EINVAL, "found '%s', expected: ',', ')' or identifier", lit);
}

static int parse_requirement(struct parser *p, struct tn_label_req *r, struct tn_err *err)
{
    const char *lit;
    int has_op = 0;
    enum tn_label_op op = TN_LABEL_EXISTS;
    enum tok t = consume(p, 1, &lit);
    if (t == T_NOT) {
        op = TN_LABEL_NOTEXISTS;
        has_op = 1;
        t = consume(p, 1, &lit);
    }
    if (t != T_ID) return tn_err_set(err, TN_EINVAL, "found '%s', expected: identifier", lit);
    const char *key = lit;
    struct tn_buf kb;
    tn_buf_init(&kb, 0);
    if (qualified_name_errs(key, &kb)) {
        struct tn_buf m;
        tn_buf_init(&m, 0);
        tn_buf_puts(&m, "<nil>: Invalid value: ");
        go_quote(&m, key);
        tn_buf_printf(&m, ": %s", kb.data);
        int rc = tn_err_set(err, TN_EINVAL, "%s", m.data);
        tn_buf_free(&m);
        tn_buf_free(&kb);
        return rc;
    }
    tn_buf_free(&kb);
    enum tok next = look(p, 1, NULL);
    if (next == T_EOS || next == T_COMMA) has_op = 1; /* Exists unless "!" came first */
    if (has_op) return new_requirement(key, op, NULL, 0, r, err);

    t = consume(p, 0, &lit);
    switch (t) {
    case T_IN:
        op = TN_LABEL_IN;
        break;
    case T_EQ:
        op = TN_LABEL_EQ;
        break;
    case T_DEQ:
        op = TN_LABEL_DEQ;
        break;
    case T_GT:
        op = TN_LABEL_GT;
        break;
    case T_LT:
        op = TN_LABEL_LT;
        break;
    case T_NOTIN:
        op = TN_LABEL_NOTIN;
        break;
    case T_NEQ:
        op = TN_LABEL_NEQ;
        break;
    default:
        return tn_err_set(err, TN_EINVAL, "found '%s', expected: in, notin, =, ==, !=, gt, lt",
                          lit);
    }
    struct strset vals = {0};
    int rc;
    if (op == TN_LABEL_IN || op == TN_LABEL_NOTIN) {
        rc = parse_values(p, &vals, err);
    } else {
        enum tok vt = look(p, 1, NULL);
        if (vt == T_EOS || vt == T_COMMA) {
            rc = strset_add(&vals, "") ? oom(err) : 0;
        } else {
            vt = consume(p, 1, &lit);
            if (vt == T_ID)
                rc = strset_add(&vals, lit) ? oom(err) : 0;
            else
                rc = tn_err_set(err, TN_EINVAL, "found '%s', expected: identifier", lit);
        }
    }
    if (rc == 0) {
        qsort(vals.v, vals.n, sizeof(char *), cmp_str);
        rc = new_requirement(key, op, vals.v, vals.n, r, err);
    }
    strset_free(&vals);
    return rc;
}

static int parse_all(struct parser *p, struct tn_labelsel *sel, struct tn_err *err)
{
    size_t cap = 0;
    for (;;) {
        const char *lit;
        enum tok t = look(p, 1, &lit);
        if (t == T_EOS) return 0;
        if (t != T_ID && t != T_NOT)
            return tn_err_set(err, TN_EINVAL,
                              "found '%s', expected: !, identifier, or 'end of string'", lit);
        struct tn_label_req r;
        int rc = parse_requirement(p, &r, err);
        if (rc) {
            if (rc == TN_EINVAL) tn_err_prefix(err, "unable to parse requirement");
            return rc;
        }
        if (sel_add(sel, &r, &cap)) {
            req_clear(&r);
            return oom(err);
        }
        t = consume(p, 1, &lit);
        if (t == T_EOS) return 0;
        if (t != T_COMMA)
            return tn_err_set(err, TN_EINVAL, "found '%s', expected: ',' or 'end of string'", lit);
        t = look(p, 1, &lit);
        if (t != T_ID && t != T_NOT)
            return tn_err_set(err, TN_EINVAL, "found '%s', expected: identifier after ','", lit);
    }
}

int tn_labelsel_parse(const char *s, struct tn_labelsel **out, struct tn_err *err)
{
    struct parser p = {0};
    struct tn_labelsel *sel = calloc(1, sizeof(*sel));
    int rc;
    *out = NULL;
    if (!sel) return oom(err);
    rc = lex(&p, s ? s : "");
    if (rc)
        rc = oom(err);
    else
        rc = parse_all(&p, sel, err);
    for (size_t i = 0; i < p.n; i++)
        free(p.items[i].lit);
    free(p.items);
    if (rc) {
        tn_labelsel_free(sel);
        return rc;
    }
    sel_sort(sel);
    *out = sel;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * metav1.LabelSelector and plain maps
 * ------------------------------------------------------------------------------------- */

static int add_map_reqs(struct tn_labelsel *sel, const json_t *map, size_t *cap, const char *what,
                        struct tn_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        if (!json_is_string(v))
            return tn_err_set(err, TN_EINVAL, "%s: value of %s must be a string", what, k);
        char *val = (char *)json_string_value(v);
        struct tn_label_req r;
        int rc = new_requirement(k, TN_LABEL_EQ, &val, 1, &r, err);
        if (rc) return rc;
        if (sel_add(sel, &r, cap)) {
            req_clear(&r);
            return oom(err);
        }
    }
    return 0;
}

int tn_labelsel_from_json(const json_t *ls, struct tn_labelsel **out, struct tn_err *err)
{
    struct tn_labelsel *sel = calloc(1, sizeof(*sel));
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    if (!sel) return oom(err);
    if (!ls || json_is_null(ls)) {
        sel->nothing = 1;
        *out = sel;
        return 0;
    }
    if (!json_is_object(ls)) {
        rc = tn_err_set(err, TN_EINVAL, "label selector must be an object");
        goto out;
    }
    json_t *ml = json_object_get(ls, "matchLabels");
    json_t *me = json_object_get(ls, "matchExpressions");
    if (ml && !json_is_null(ml)) {
        if (!json_is_object(ml)) {
            rc = tn_err_set(err, TN_EINVAL, "matchLabels must be an object");
            goto out;
        }
        if ((rc = add_map_reqs(sel, ml, &cap, "matchLabels", err))) goto out;
    }
    if (me && !json_is_null(me)) {
        if (!json_is_array(me)) {
            rc = tn_err_set(err, TN_EINVAL, "matchExpressions must be an array");
            goto out;
        }
        size_t i;
        json_t *ex;
        json_array_foreach(me, i, ex)
        {
            const char *key = tn_json_str(ex, "key", "");
            const char *ops = tn_json_str(ex, "operator", "");
            enum tn_label_op op;
            if (strcmp(ops, "In") == 0)
                op = TN_LABEL_IN;
            else if (strcmp(ops, "NotIn") == 0)
                op = TN_LABEL_NOTIN;
            else if (strcmp(ops, "Exists") == 0)
                op = TN_LABEL_EXISTS;
            else if (strcmp(ops, "DoesNotExist") == 0)
                op = TN_LABEL_NOTEXISTS;
            else {
                struct tn_buf m;
                tn_buf_init(&m, 0);
                go_quote(&m, ops);
                rc =
                    tn_err_set(err, TN_EINVAL, "%s is not a valid label selector operator", m.data);
                tn_buf_free(&m);
                goto out;
            }
            json_t *jv = json_object_get(ex, "values");
            size_t nv = json_is_array(jv) ? json_array_size(jv) : 0;
            char **vals = nv ? calloc(nv, sizeof(char *)) : NULL;
            if (nv && !vals) {
                rc = oom(err);
                goto out;
            }
            for (size_t j = 0; j < nv; j++) {
                json_t *s = json_array_get(jv, j);
                vals[j] = (char *)(json_is_string(s) ? json_string_value(s) : "");
            }
            struct tn_label_req r;
            rc = new_requirement(key, op, vals, nv, &r, err);
            free(vals);
            if (rc) goto out;
            if (sel_add(sel, &r, &cap)) {
                req_clear(&r);
                rc = oom(err);
                goto out;
            }
        }
    }
    sel_sort(sel);
out:
    if (rc) {
        tn_labelsel_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

int tn_labelsel_from_map(const json_t *map, struct tn_labelsel **out, struct tn_err *err)
{
    struct tn_labelsel *sel = calloc(1, sizeof(*sel));
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    if (!sel) return oom(err);
    if (map && !json_is_null(map)) {
        if (!json_is_object(map))
            rc = tn_err_set(err, TN_EINVAL, "selector must be a map of strings");
        else
            rc = add_map_reqs(sel, map, &cap, "selector", err);
    }
    if (rc) {
        tn_labelsel_free(sel);
        return rc;
    }
    sel_sort(sel);
    *out = sel;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Matching and rendering
 * ------------------------------------------------------------------------------------- */

static int has_value(const struct tn_label_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0) return 1;
    return 0;
}

static int req_matches(const struct tn_label_req *r, const json_t *labels)
{
    json_t *jv = labels ? json_object_get(labels, r->key) : NULL;
    const char *v = json_is_string(jv) ? json_string_value(jv) : NULL;
    long long lv, rv;
    switch (r->op) {
    case TN_LABEL_IN:
    case TN_LABEL_EQ:
    case TN_LABEL_DEQ:
        return v && has_value(r, v);
    case TN_LABEL_NOTIN:
    case TN_LABEL_NEQ:
        return !v || !has_value(r, v);
    case TN_LABEL_EXISTS:
        return v != NULL;
    case TN_LABEL_NOTEXISTS:
        return v == NULL;
    case TN_LABEL_GT:
    case TN_LABEL_LT:
        if (!v || r->nvalues != 1 || parse_int64(v, &lv) || parse_int64(r->values[0], &rv))
            return 0;
        return r->op == TN_LABEL_GT ? lv > rv : lv < rv;
    }
    return 0;
}

int tn_labelsel_matches_labels(const struct tn_labelsel *sel, const json_t *labels)
{
    if (sel->nothing) return 0;
    if (labels && !json_is_object(labels)) labels = NULL;
    for (size_t i = 0; i < sel->n; i++)
        if (!req_matches(&sel->reqs[i], labels)) return 0;
    return 1;
}

int tn_labelsel_matches(const struct tn_labelsel *sel, const json_t *obj)
{
    return tn_labelsel_matches_labels(sel, tn_json_get(obj, "metadata.labels"));
}

int tn_labelsel_is_empty(const struct tn_labelsel *sel)
{
    return !sel->nothing && sel->n == 0;
}

char *tn_labelsel_to_string(const struct tn_labelsel *sel)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    for (size_t i = 0; !sel->nothing && i < sel->n; i++) {
        const struct tn_label_req *r = &sel->reqs[i];
        if (i) tn_buf_putc(&b, ',');
        if (r->op == TN_LABEL_NOTEXISTS) tn_buf_putc(&b, '!');
        tn_buf_puts(&b, r->key);
        const char *op = NULL;
        switch (r->op) {
        case TN_LABEL_EQ:
            op = "=";
            break;
        case TN_LABEL_DEQ:
            op = "==";
            break;
        case TN_LABEL_NEQ:
            op = "!=";
            break;
        case TN_LABEL_GT:
            op = ">";
            break;
        case TN_LABEL_LT:
            op = "<";
            break;
        case TN_LABEL_IN:
            op = " in ";
            break;
        case TN_LABEL_NOTIN:
            op = " notin ";
            break;
        default:
            break;
        }
        if (!op) continue;
        tn_buf_puts(&b, op);
        int set = r->op == TN_LABEL_IN || r->op == TN_LABEL_NOTIN;
        if (set) tn_buf_putc(&b, '(');
        for (size_t j = 0; j < r->nvalues; j++) {
            if (j) tn_buf_putc(&b, ',');
            tn_buf_puts(&b, r->values[j]);
        }
        if (set) tn_buf_putc(&b, ')');
    }
    return buf_steal(&b);
}

/* ---------------------------------------------------------------------------------------
 * Field selectors
 * ------------------------------------------------------------------------------------- */

void tn_fieldsel_free(struct tn_fieldsel *sel)
{
    if (!sel) return;
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->reqs[i].field);
        free(sel->reqs[i].value);
    }
    free(sel->reqs);
    free(sel);
}

/* fields.UnescapeValue: *res is a malloc'd string; returns 0, TN_EINVAL or TN_ENOMEM. */
static int unescape_value(const char *s, size_t n, char **res, struct tn_err *err)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    int in_slash = 0;
    *res = NULL;
    if (!out) return oom(err);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_slash) {
            if (c != '\\' && c != ',' && c != '=') {
                free(out);
                return tn_err_set(err, TN_EINVAL,
                                  "invalid field selector: invalid escape sequence: \\%c", c);
            }
            out[o++] = c;
            in_slash = 0;
        } else if (c == '\\') {
            in_slash = 1;
        } else if (c == ',' || c == '=') {
            free(out);
            return tn_err_set(err, TN_EINVAL,
                              "invalid field selector: unescaped character in value: %c", c);
        } else {
            out[o++] = c;
        }
    }
    if (in_slash) {
        free(out);
        return tn_err_set(err, TN_EINVAL, "invalid field selector: invalid escape sequence: \\");
    }
    out[o] = 0;
    *res = out;
    return 0;
}

int tn_fieldsel_parse(const char *s, struct tn_fieldsel **out, struct tn_err *err)
{
    struct tn_fieldsel *sel = calloc(1, sizeof(*sel));
    char **terms = NULL;
    size_t nterms = 0, len;
    int rc = 0;
    *out = NULL;
    if (!s) s = "";
    len = strlen(s);
    if (!sel) return oom(err);
    if (len) {
        /* splitTerms: split on unescaped ',' */
        size_t cap = 1;
        for (size_t i = 0; i < len; i++)
            cap += s[i] == ',';
        terms = calloc(cap, sizeof(char *));
        sel->reqs = calloc(cap, sizeof(*sel->reqs));
        if (!terms || !sel->reqs) {
            rc = oom(err);
            goto out;
        }
        size_t start = 0;
        int in_slash = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i < len) {
                if (in_slash) {
                    in_slash = 0;
                    continue;
                }
                if (s[i] == '\\') {
                    in_slash = 1;
                    continue;
                }
                if (s[i] != ',') continue;
            }
            terms[nterms] = strndup(s + start, i - start);
            if (!terms[nterms]) {
                rc = oom(err);
                goto out;
            }
            nterms++;
            start = i + 1;
        }
        qsort(terms, nterms, sizeof(char *), cmp_str);
    }
    for (size_t t = 0; t < nterms; t++) {
        const char *term = terms[t];
        if (!*term) continue;
        size_t i, oplen = 0;
        int neq = 0;
        for (i = 0; term[i]; i++) {
            if (strncmp(term + i, "!=", 2) == 0) {
                oplen = 2;
                neq = 1;
            } else if (strncmp(term + i, "==", 2) == 0) {
                oplen = 2;
            } else if (term[i] == '=') {
                oplen = 1;
            }
            if (oplen) break;
        }
        if (!oplen) {
            rc = tn_err_set(err, TN_EINVAL, "invalid selector: '%s'; can't understand '%s'", s,
                            term);
            goto out;
        }
        const char *rhs = term + i + oplen;
        char *value;
        if ((rc = unescape_value(rhs, strlen(rhs), &value, err))) goto out;
        struct tn_field_req *r = &sel->reqs[sel->n];
        r->field = strndup(term, i);
        r->value = value;
        r->neq = neq;
        sel->n++;
        if (!r->field) {
            rc = oom(err);
            goto out;
        }
    }
out:
    for (size_t t = 0; t < nterms; t++)
        free(terms[t]);
    free(terms);
    if (rc) {
        tn_fieldsel_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

static const char *const pod_fields[] = {
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
    NULL,
};
static const char *const event_fields[] = {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    NULL,
};
static const char *const secret_fields[] = {"type", NULL};
static const char *const node_fields[] = {"spec.unschedulable", NULL};
static const char *const namespace_fields[] = {"status.phase", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

int tn_fieldsel_validate(const struct tn_fieldsel *sel, const char *resource, int namespaced,
                         struct tn_err *err)
{
    const char *const *extra = NULL;
    if (!resource) resource = "";
    if (strcmp(resource, "pods") == 0)
        extra = pod_fields;
    else if (strcmp(resource, "events") == 0)
        extra = event_fields;
    else if (strcmp(resource, "secrets") == 0)
        extra = secret_fields;
    else if (strcmp(resource, "nodes") == 0)
        extra = node_fields, namespaced = 0;
    else if (strcmp(resource, "namespaces") == 0)
        extra = namespace_fields, namespaced = 0;
    for (size_t i = 0; i < sel->n; i++) {
        const char *f = sel->reqs[i].field;
        if (strcmp(f, "metadata.name") == 0 ||
            (namespaced && strcmp(f, "metadata.namespace") == 0) || in_list(extra, f))
            continue;
        return tn_err_set(err, TN_EINVAL, "field label not supported: %s", f);
    }
    return 0;
}

/* The string form of a scalar (def for missing, null, objects and arrays). */
static char *scalar_string(const json_t *v, const char *def)
{
    if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v)) return strdup(def);
    return tn_jsonpath_text(v);
}

char *tn_fieldsel_value(const json_t *obj, const char *resource, const char *field)
{
    if (resource) {
        if (strcmp(resource, "pods") == 0 && strcmp(field, "spec.hostNetwork") == 0)
            return scalar_string(tn_json_get(obj, field), "false");
        if (strcmp(resource, "nodes") == 0 && strcmp(field, "spec.unschedulable") == 0)
            return scalar_string(tn_json_get(obj, field), "false");
        if (strcmp(resource, "events") == 0 && strcmp(field, "source") == 0) {
            const char *src = tn_json_str(obj, "source.component", "");
            if (!*src) src = tn_json_str(obj, "reportingComponent", "");
            return strdup(src);
        }
    }
    return scalar_string(tn_json_get(obj, field), "");
}

int tn_fieldsel_matches_resource(const struct tn_fieldsel *sel, const char *resource,
                                 const json_t *obj)
{
    for (size_t i = 0; i < sel->n; i++) {
        char *v = tn_fieldsel_value(obj, resource, sel->reqs[i].field);
        if (!v) return 0;
        int eq = strcmp(v, sel->reqs[i].value) == 0;
        free(v);
        if (eq == sel->reqs[i].neq) return 0;
    }
    return 1;
}

int tn_fieldsel_matches(const struct tn_fieldsel *sel, const json_t *obj)
{
    return tn_fieldsel_matches_resource(sel, NULL, obj);
}

const char *tn_fieldsel_exact(const struct tn_fieldsel *sel, const char *field)
{
    for (size_t i = 0; i < sel->n; i++)
        if (!sel->reqs[i].neq && strcmp(sel->reqs[i].field, field) == 0) return sel->reqs[i].value;
    return NULL;
}

char *tn_fieldsel_to_string(const struct tn_fieldsel *sel)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    for (size_t i = 0; i < sel->n; i++) {
        if (i) tn_buf_putc(&b, ',');
        tn_buf_puts(&b, sel->reqs[i].field);
        tn_buf_puts(&b, sel->reqs[i].neq ? "!=" : "=");
        for (const char *p = sel->reqs[i].value; *p; p++) {
            if (*p == '\\' || *p == ',' || *p == '=') tn_buf_putc(&b, '\\');
            tn_buf_putc(&b, *p);
        }
    }
    return buf_steal(&b);
}
