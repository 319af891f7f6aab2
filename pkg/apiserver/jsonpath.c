/* JSONPath subset for printer columns and kubectl wait; see jsonpath.h. A path compiles to a
 * flat list of steps, each mapping the current result set to the next one, the way client-go's
 * jsonpath walks its node list. */
#include "apiserver/jsonpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/timeutil.h"

enum step_type { ST_FIELD, ST_WILDCARD, ST_INDEX, ST_SLICE, ST_FILTER, ST_RECURSIVE };
enum filter_op { OP_EXISTS, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct steps {
    struct step *v;
    size_t n, cap;
};

struct step {
    enum step_type type;
    char *name;      /* ST_FIELD, ST_RECURSIVE */
    long idx;        /* ST_INDEX */
    long start, end; /* ST_SLICE */
    int has_start, has_end;
    struct steps left; /* ST_FILTER: path from @ */
    enum filter_op op; /* ST_FILTER */
    json_t *lit;       /* ST_FILTER literal, owned */
};

struct tn_jsonpath {
    struct steps steps;
};

static void steps_free(struct steps *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        steps_free(&s->v[i].left);
        json_decref(s->v[i].lit);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

void tn_jsonpath_free(struct tn_jsonpath *jp)
{
    if (!jp) return;
    steps_free(&jp->steps);
    free(jp);
}

static struct step *steps_add(struct steps *s, enum step_type t)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct step *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv) return NULL;
        s->v = nv;
        s->cap = nc;
    }
    struct step *st = &s->v[s->n++];
    memset(st, 0, sizeof(*st));
    st->type = t;
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------------------------- */

struct parser {
    const char *expr; /* whole expression, for messages */
    const char *s;    /* text being parsed */
    size_t len, pos;
    size_t base; /* offset of s inside expr */
    struct tn_err *err;
};

static int perr(struct parser *p, const char *what)
{
    return tn_err_set(p->err, TN_EINVAL, "invalid JSONPath \"%s\": %s at offset %zu", p->expr, what,
                      p->base + p->pos);
}

static int nomem(struct parser *p)
{
    return tn_err_set(p->err, TN_ENOMEM, "out of memory compiling JSONPath");
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_term(int c)
{
    return c == 0 || is_space(c) || strchr(".[]{}()',\"=!<>@$", c) != NULL;
}

static int peek(struct parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : 0;
}

static void skip_ws(struct parser *p)
{
    while (is_space(peek(p)))
        p->pos++;
}

static int parse_name(struct parser *p, char **out)
{
    size_t st = p->pos;
    while (p->pos < p->len && !is_term(peek(p)))
        p->pos++;
    if (p->pos == st) return perr(p, "expected a field name");
    *out = strndup(p->s + st, p->pos - st);
    return *out ? 0 : nomem(p);
}

/* A quoted string at pos ('x' or "x", backslash escapes the next character). */
static int parse_quoted(struct parser *p, char **out)
{
    char q = p->s[p->pos++];
    struct tn_buf b;
    tn_buf_init(&b, 0);
    tn_buf_puts(&b, "");
    while (p->pos < p->len && p->s[p->pos] != q) {
        if (p->s[p->pos] == '\\' && p->pos + 1 < p->len) p->pos++;
        tn_buf_putc(&b, p->s[p->pos++]);
    }
    if (p->pos >= p->len) {
        tn_buf_free(&b);
        return perr(p, "unterminated quoted string");
    }
    p->pos++;
    if (b.len == 0) {
        tn_buf_free(&b);
        *out = strdup("");
    } else {
        *out = tn_buf_steal(&b, NULL);
    }
    return *out ? 0 : nomem(p);
}

static int parse_long(struct parser *p, long *out)
{
    const char *st = p->s + p->pos;
    char *end;
    if (!(*st == '-' || *st == '+' || (*st >= '0' && *st <= '9'))) return -1;
    long v = strtol(st, &end, 10);
    if (end == st || (end == st + 1 && (*st == '-' || *st == '+'))) return -1;
    p->pos += (size_t)(end - st);
    *out = v;
    return 0;
}

static int parse_steps(struct parser *p, struct steps *out, int in_filter);

/* Literal on the right of a filter comparison. */
static json_t *parse_literal(const char *s, size_t n)
{
    while (n && is_space((unsigned char)*s))
        s++, n--;
    while (n && is_space((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        char *t = strndup(s + 1, n - 2);
        json_t *v = t ? json_string(t) : NULL;
        free(t);
        return v;
    }
    if (n == 4 && strncmp(s, "true", 4) == 0) return json_true();
    if (n == 5 && strncmp(s, "false", 5) == 0) return json_false();
    char buf[64];
    if (n == 0 || n >= sizeof(buf)) return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    long long iv = strtoll(buf, &end, 10);
    if (*end == 0) return json_integer(iv);
    double dv = strtod(buf, &end);
    if (*end == 0) return json_real(dv);
    return NULL;
}

/* [?( ... )] with pos just after "?(". */
static int parse_filter(struct parser *p, struct step *st)
{
    size_t start = p->pos, depth = 1;
    char quote = 0;
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (quote) {
            if (c == '\\')
                p->pos++;
            else if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            break;
        }
        p->pos++;
    }
    if (p->pos >= p->len) return perr(p, "unterminated filter");
    size_t end = p->pos; /* at ')' */
    /* find the comparison operator outside quotes */
    size_t opat = 0, oplen = 0;
    quote = 0;
    for (size_t i = start; i < end && !oplen; i++) {
        char c = p->s[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            continue;
        }
        if (c == '=' || c == '!' || c == '<' || c == '>') {
            opat = i;
            oplen = (i + 1 < end && p->s[i + 1] == '=') ? 2 : 1;
        }
    }
    if (oplen) {
        const char *o = p->s + opat;
        if (oplen == 2 && o[0] == '=')
            st->op = OP_EQ;
        else if (oplen == 2 && o[0] == '!')
            st->op = OP_NE;
        else if (oplen == 2 && o[0] == '<')
            st->op = OP_LE;
        else if (oplen == 2 && o[0] == '>')
            st->op = OP_GE;
        else if (o[0] == '<')
            st->op = OP_LT;
        else if (o[0] == '>')
            st->op = OP_GT;
        else {
            p->pos = opat;
            return perr(p, "unrecognized filter operator");
        }
        st->lit = parse_literal(o + oplen, end - opat - oplen);
        if (!st->lit) {
            p->pos = opat + oplen;
            return perr(p, "expected a string, number or boolean literal in filter");
        }
    } else {
        st->op = OP_EXISTS;
        opat = end;
    }
    /* left side: @ followed by steps */
    struct parser lp = *p;
    lp.s = p->s + start;
    lp.len = opat - start;
    lp.base = p->base + start;
    lp.pos = 0;
    skip_ws(&lp);
    if (peek(&lp) != '@') return perr(&lp, "filter must start with @");
    lp.pos++;
    int rc = parse_steps(&lp, &st->left, 1);
    if (rc) return rc;
    skip_ws(&lp);
    if (lp.pos != lp.len) return perr(&lp, "unexpected text in filter");
    p->pos = end + 1;
    return 0;
}

static int parse_bracket(struct parser *p, struct steps *out)
{
    struct step *st;
    int rc;
    p->pos++; /* '[' */
    skip_ws(p);
    int c = peek(p);
    if (c == '*') {
        p->pos++;
        if (!(st = steps_add(out, ST_WILDCARD))) return nomem(p);
    } else if (c == '\'' || c == '"') {
        if (!(st = steps_add(out, ST_FIELD))) return nomem(p);
        if ((rc = parse_quoted(p, &st->name))) return rc;
    } else if (c == '?') {
        p->pos++;
        if (peek(p) != '(') return perr(p, "expected '(' after '?'");
        p->pos++;
        if (!(st = steps_add(out, ST_FILTER))) return nomem(p);
        if ((rc = parse_filter(p, st))) return rc;
    } else {
        long a = 0, b = 0;
        int has_a = parse_long(p, &a) == 0;
        skip_ws(p);
        if (peek(p) == ':') {
            p->pos++;
            skip_ws(p);
            int has_b = parse_long(p, &b) == 0;
            if (!(st = steps_add(out, ST_SLICE))) return nomem(p);
            st->start = a;
            st->end = b;
            st->has_start = has_a;
            st->has_end = has_b;
        } else if (has_a) {
            if (!(st = steps_add(out, ST_INDEX))) return nomem(p);
            st->idx = a;
        } else {
            return perr(p, c ? "unexpected character in '[...]'" : "unterminated '['");
        }
    }
    skip_ws(p);
    if (peek(p) != ']') return perr(p, peek(p) ? "expected ']'" : "unterminated '['");
    p->pos++;
    return 0;
}

static int parse_steps(struct parser *p, struct steps *out, int in_filter)
{
    int rc;
    while (p->pos < p->len) {
        int c = peek(p);
        struct step *st;
        if (c == '.') {
            p->pos++;
            if (peek(p) == '.') {
                p->pos++;
                if (!(st = steps_add(out, ST_RECURSIVE))) return nomem(p);
                if ((rc = parse_name(p, &st->name))) return rc;
            } else if (peek(p) == '*') {
                p->pos++;
                if (!steps_add(out, ST_WILDCARD)) return nomem(p);
            } else if (peek(p) == '[' || (p->pos == p->len && out->n == 0 && !in_filter)) {
                continue; /* ".[0]" and the bare "." (the whole object) */
            } else {
                if (!(st = steps_add(out, ST_FIELD))) return nomem(p);
                if ((rc = parse_name(p, &st->name))) return rc;
            }
        } else if (c == '[') {
            if ((rc = parse_bracket(p, out))) return rc;
        } else if (in_filter && is_space(c)) {
            return 0;
        } else {
            char what[64];
            snprintf(what, sizeof(what), "unexpected character '%c'", c);
            return perr(p, what);
        }
    }
    return 0;
}

int tn_jsonpath_compile(const char *expr, struct tn_jsonpath **out, struct tn_err *err)
{
    struct parser p = {.expr = expr ? expr : "", .err = err};
    struct tn_jsonpath *jp;
    size_t b = 0, e;
    *out = NULL;
    p.s = p.expr;
    e = strlen(p.expr);
    while (b < e && is_space((unsigned char)p.expr[b]))
        b++;
    while (e > b && is_space((unsigned char)p.expr[e - 1]))
        e--;
    if (b < e && p.expr[b] == '{') {
        if (p.expr[e - 1] != '}') {
            p.len = e;
            p.pos = e;
            return perr(&p, "unclosed '{'");
        }
        b++;
        e--;
        while (b < e && is_space((unsigned char)p.expr[b]))
            b++;
        while (e > b && is_space((unsigned char)p.expr[e - 1]))
            e--;
    }
    p.s = p.expr + b;
    p.base = b;
    p.len = e - b;
    if (p.len && p.s[0] == '$') p.pos++;
    if (p.len == 0) return perr(&p, "empty expression");
    if (p.pos < p.len && peek(&p) != '.' && peek(&p) != '[') return perr(&p, "expected '.' or '['");
    if (!(jp = calloc(1, sizeof(*jp)))) return nomem(&p);
    int rc = parse_steps(&p, &jp->steps, 0);
    if (rc) {
        tn_jsonpath_free(jp);
        return rc;
    }
    *out = jp;
    return 0;
}

int tn_jsonpath_check_column(const char *path, struct tn_err *err)
{
    struct tn_jsonpath *jp;
    if (!path || !*path) return tn_err_set(err, TN_EINVAL, "must not be empty");
    if (path[0] != '.')
        return tn_err_set(err, TN_EINVAL, "must be a simple json path starting with .");
    int rc = tn_jsonpath_compile(path, &jp, err);
    tn_jsonpath_free(jp);
    return rc;
}

int tn_jsonpath_check(const char *expr, struct tn_err *err)
{
    return tn_jsonpath_check_column(expr, err);
}

/* ---------------------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------------------- */

static json_t *eval_steps(const struct steps *steps, json_t *cur);

static int push(json_t *arr, json_t *v)
{
    return json_array_append(arr, v);
}

static int recurse(json_t *out, json_t *v, const char *name)
{
    if (json_is_object(v)) {
        json_t *hit = json_object_get(v, name);
        const char *k;
        json_t *x;
        if (hit && push(out, hit)) return -1;
        json_object_foreach(v, k, x)
        {
            if (recurse(out, x, name)) return -1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (recurse(out, x, name)) return -1;
        }
    }
    return 0;
}

static int compare(const json_t *v, enum filter_op op, const json_t *lit)
{
    int c;
    if (json_is_number(v) && json_is_number(lit)) {
        double a = json_number_value(v), b = json_number_value(lit);
        c = a < b ? -1 : a > b;
    } else if (json_is_string(v) && json_is_string(lit)) {
        c = strcmp(json_string_value(v), json_string_value(lit));
    } else if (json_is_boolean(v) && json_is_boolean(lit)) {
        c = json_is_true(v) != json_is_true(lit);
        if (op != OP_EQ && op != OP_NE) return 0;
    } else {
        return op == OP_NE;
    }
    switch (op) {
    case OP_EQ:
        return c == 0;
    case OP_NE:
        return c != 0;
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    case OP_GE:
        return c >= 0;
    default:
        return 0;
    }
}

static int filter_keep(const struct step *st, json_t *e)
{
    json_t *one = json_array();
    if (!one || json_array_append(one, e)) {
        json_decref(one);
        return -1;
    }
    json_t *res = eval_steps(&st->left, one);
    if (!res) return -1;
    int keep;
    if (st->op == OP_EXISTS)
        keep = json_array_size(res) > 0;
    else
        keep = json_array_size(res) > 0 && compare(json_array_get(res, 0), st->op, st->lit);
    json_decref(res);
    return keep;
}

static int apply_step(const struct step *st, json_t *node, json_t *next)
{
    size_t i, n;
    json_t *x;
    const char *k;
    switch (st->type) {
    case ST_FIELD:
        x = json_is_object(node) ? json_object_get(node, st->name) : NULL;
        return x ? push(next, x) : 0;
    case ST_RECURSIVE:
        return recurse(next, node, st->name);
    case ST_WILDCARD:
        if (json_is_array(node)) {
            json_array_foreach(node, i, x)
            {
                if (push(next, x)) return -1;
            }
        } else if (json_is_object(node)) {
            json_object_foreach(node, k, x)
            {
                if (push(next, x)) return -1;
            }
        }
        return 0;
    case ST_INDEX: {
        if (!json_is_array(node)) return 0;
        long len = (long)json_array_size(node), idx = st->idx;
        if (idx < 0) idx += len;
        return idx >= 0 && idx < len ? push(next, json_array_get(node, (size_t)idx)) : 0;
    }
    case ST_SLICE: {
        if (!json_is_array(node)) return 0;
        long len = (long)json_array_size(node);
        long a = st->has_start ? st->start : 0, b = st->has_end ? st->end : len;
        if (a < 0) a += len;
        if (b < 0) b += len;
        if (a < 0) a = 0;
        if (b > len) b = len;
        for (long j = a; j < b; j++)
            if (push(next, json_array_get(node, (size_t)j))) return -1;
        return 0;
    }
    case ST_FILTER:
        n = json_array_size(node);
        for (i = 0; json_is_array(node) && i < n; i++) {
            x = json_array_get(node, i);
            int keep = filter_keep(st, x);
            if (keep < 0 || (keep && push(next, x))) return -1;
        }
        return 0;
    }
    return 0;
}

/* cur is stolen; returns a new array or NULL on OOM. */
static json_t *eval_steps(const struct steps *steps, json_t *cur)
{
    for (size_t s = 0; cur && s < steps->n; s++) {
        json_t *next = json_array();
        size_t i;
        json_t *node;
        if (!next) {
            json_decref(cur);
            return NULL;
        }
        json_array_foreach(cur, i, node)
        {
            if (apply_step(&steps->v[s], node, next)) {
                json_decref(next);
                next = NULL;
                break;
            }
        }
        json_decref(cur);
        cur = next;
    }
    return cur;
}

json_t *tn_jsonpath_eval(const struct tn_jsonpath *jp, const json_t *root)
{
    json_t *cur = json_array();
    if (!cur) return NULL;
    if (root && json_array_append(cur, (json_t *)root)) {
        json_decref(cur);
        return NULL;
    }
    return eval_steps(&jp->steps, cur);
}

json_t *tn_jsonpath_query(const char *expr, const json_t *root, struct tn_err *err)
{
    struct tn_jsonpath *jp;
    if (tn_jsonpath_compile(expr, &jp, err)) return NULL;
    json_t *r = tn_jsonpath_eval(jp, root);
    tn_jsonpath_free(jp);
    if (!r) tn_err_set(err, TN_ENOMEM, "out of memory evaluating JSONPath");
    return r;
}

json_t *tn_jsonpath_first(const char *expr, const json_t *obj)
{
    json_t *res = tn_jsonpath_query(expr, obj, NULL);
    json_t *v = json_incref(json_array_get(res, 0));
    json_decref(res);
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Cells
 * ------------------------------------------------------------------------------------- */

char *tn_jsonpath_text(const json_t *v)
{
    char tmp[64];
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_real(v)) {
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
            if (strtod(tmp, NULL) == d) break;
        }
        return strdup(tmp);
    }
    if (!v) return strdup("null");
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

json_t *tn_jsonpath_cell(const json_t *results, const char *type, time_t now)
{
    const json_t *v = json_array_get(results, 0);
    if (!v || json_is_null(v)) return json_null();
    if (!type || strcmp(type, "string") == 0) {
        char *s = tn_jsonpath_text(v);
        json_t *r = s ? json_string(s) : NULL;
        free(s);
        return r;
    }
    if (strcmp(type, "integer") == 0) {
        if (json_is_integer(v)) return json_integer(json_integer_value(v));
        if (json_is_real(v)) return json_integer((json_int_t)json_real_value(v));
        return json_null();
    }
    if (strcmp(type, "number") == 0)
        return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v) ? json_boolean(json_is_true(v)) : json_null();
    if (strcmp(type, "date") == 0) {
        time_t t;
        char age[32];
        if (!json_is_string(v)) return json_null();
        if (tn_time_parse_rfc3339(json_string_value(v), &t)) return json_string("<invalid>");
        long long secs = (long long)(now - t);
        if (secs < -1) return json_string("<invalid>");
        tn_time_human_age(secs < 0 ? 0 : secs, age, sizeof(age));
        return json_string(age);
    }
    return json_null();
}
