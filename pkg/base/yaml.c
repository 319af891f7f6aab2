/* YAML -> JSON through libyaml's event API, and JSON -> block YAML for printing; see yaml.h.
 * The loader keeps its own explicit stack (libyaml 0.2.5 has no depth limit) and charges alias
 * expansion against a budget, so a hostile file fails with a message instead of eating memory. */
#include "base/yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/buf.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define TAG_PREFIX_LEN (sizeof(TAG_PREFIX) - 1)

#define DEFAULT_MAX_DEPTH 64
#define DEFAULT_MAX_ALIAS_NODES 10000
#define DEFAULT_MAX_NODES 1000000

/* libyaml refuses implicit (simple) keys longer than 1024 characters; longer keys are dumped
 * as explicit `? key` entries. */
#define SIMPLE_KEY_MAX 1000

/* What a scalar's text resolves to under the YAML 1.2 core schema. */
enum kind { K_STR, K_NULL, K_TRUE, K_FALSE, K_DEC, K_OCT, K_HEX, K_FLOAT, K_INF, K_NAN };

/* What a scalar's tag asks for; T_AUTO means "type it as an untagged plain scalar". */
enum want { T_AUTO, T_STR, T_INT, T_FLOAT, T_BOOL, T_NULL, T_BAD };

struct frame {
    json_t *val;  /* array or object under construction (owned) */
    char *anchor; /* registered when the collection ends, or NULL */
    int is_map;
    int have_key;     /* mapping: key read, its value not yet */
    int key_is_merge; /* the pending key is a plain `<<` */
    int seen_merge;   /* a `<<` already appeared in this mapping */
    char *key;        /* pending key (owned) */
    yaml_mark_t key_mark;
    json_t *merged; /* keys brought in by `<<`; explicit keys win at mapping end */
};

struct loader {
    struct tn_yaml_limits lim;
    struct frame *stack;
    size_t depth; /* frames in use = open collections */
    size_t cap;
    json_t *anchors; /* name -> value for the current document (holds references) */
    json_t *root;    /* current document's value once complete */
    int root_empty;  /* the document is an empty plain scalar (e.g. a trailing `---`) */
    size_t nodes;
    size_t alias_nodes;
    struct tn_err *err;
};

static int fail(struct loader *l, const yaml_mark_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct loader *l, const yaml_mark_t *m, int code, const char *fmt, ...)
{
    char msg[TN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tn_err_set(l->err, code, "line %zu column %zu: %s", m->line + 1, m->column + 1, msg);
}

/* Printable, bounded excerpt of user text for error messages. */
static const char *excerpt(const char *s, size_t n, char *out, size_t outsz)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (j + 5 >= outsz && n > 0) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = 0;
    return out;
}

static int parser_error(const yaml_parser_t *p, struct tn_err *err)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return tn_err_set(err, TN_ENOMEM, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        if (p->problem_value != -1)
            return tn_err_set(err, TN_EINVAL, "byte offset %zu: %s (#%X)", p->problem_offset,
                              problem, (unsigned)p->problem_value);
        return tn_err_set(err, TN_EINVAL, "byte offset %zu: %s", p->problem_offset, problem);
    default:
        break;
    }
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    if (p->context)
        return tn_err_set(err, TN_EINVAL, "line %zu column %zu: %s (%s at line %zu column %zu)",
                          line, col, problem, p->context, p->context_mark.line + 1,
                          p->context_mark.column + 1);
    return tn_err_set(err, TN_EINVAL, "line %zu column %zu: %s", line, col, problem);
}

/* ---- core-schema typing ---- */

static int all_in(const char *s, size_t n, const char *set)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i])) return 0;
    return 1;
}

static int is_any(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0) return 1;
    return 0;
}

static int is_float_text(const char *s, size_t n)
{
    size_t i = 0, d1 = 0, d2 = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d1++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, d2++;
    }
    if (d1 == 0 && d2 == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t de = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, de++;
        if (de == 0) return 0;
    }
    return i == n;
}

static enum kind classify(const char *s, size_t n)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf",  ".Inf",  ".INF",  "-.inf", "-.Inf",
                                       "-.INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};

    if (n == 0 || is_any(s, n, nulls)) return K_NULL;
    if (is_any(s, n, trues)) return K_TRUE;
    if (is_any(s, n, falses)) return K_FALSE;
    size_t sign = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (all_in(s + sign, n - sign, "0123456789")) return K_DEC;
    if (n > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, n - 2, "01234567")) return K_OCT;
    if (n > 2 && s[0] == '0' && s[1] == 'x' && all_in(s + 2, n - 2, "0123456789abcdefABCDEF"))
        return K_HEX;
    if (is_float_text(s, n)) return K_FLOAT;
    if (is_any(s, n, infs)) return K_INF;
    if (is_any(s, n, nans)) return K_NAN;
    return K_STR;
}

static enum want want_of(const char *tag, int plain)
{
    if (!tag) return plain ? T_AUTO : T_STR;
    if (strcmp(tag, "!") == 0) /* the non-specific tag: a string */
        return T_STR;
    if (strncmp(tag, TAG_PREFIX, TAG_PREFIX_LEN) != 0)
        return plain ? T_AUTO : T_STR; /* unknown local tag: ignored */
    const char *t = tag + TAG_PREFIX_LEN;
    if (!strcmp(t, "str") || !strcmp(t, "binary")) return T_STR;
    if (!strcmp(t, "int")) return T_INT;
    if (!strcmp(t, "float")) return T_FLOAT;
    if (!strcmp(t, "bool")) return T_BOOL;
    if (!strcmp(t, "null")) return T_NULL;
    if (!strcmp(t, "map") || !strcmp(t, "seq")) return T_BAD;
    return plain ? T_AUTO : T_STR; /* e.g. !!timestamp: typed as if untagged */
}

/* Short form of a tag for messages ("!!int" rather than the full URI). */
static const char *short_tag(const char *tag, char *out, size_t outsz)
{
    if (tag && strncmp(tag, TAG_PREFIX, TAG_PREFIX_LEN) == 0)
        snprintf(out, outsz, "!!%s", tag + TAG_PREFIX_LEN);
    else
        snprintf(out, outsz, "%s", tag ? tag : "");
    return out;
}

/* Value of base-8/16 digits: an integer when it fits in long long, else a real. */
static json_t *radix_value(const char *d, size_t n, int base)
{
    unsigned long long acc = 0;
    double dacc = 0;
    int big = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        unsigned v = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                                              : (unsigned)(c - 'A' + 10);
        if (!big && acc > ((unsigned long long)LLONG_MAX - v) / (unsigned)base) {
            big = 1;
            dacc = (double)acc;
        }
        if (big)
            dacc = dacc * base + v;
        else
            acc = acc * (unsigned)base + v;
    }
    if (!big) return json_integer((json_int_t)acc);
    return isfinite(dacc) ? json_real(dacc) : NULL;
}

/* Builds the JSON value of a resolved number/bool/null. NULL with *range set when a number
 * does not fit in a double; NULL otherwise means out of memory. The text is NUL-terminated. */
static json_t *make_value(enum kind k, const char *s, size_t n, int as_real, int *range)
{
    *range = 0;
    json_t *v = NULL;
    switch (k) {
    case K_NULL:
        return json_null();
    case K_TRUE:
        return json_true();
    case K_FALSE:
        return json_false();
    case K_DEC:
        if (!as_real) {
            errno = 0;
            long long x = strtoll(s, NULL, 10);
            if (errno != ERANGE) return json_integer(x);
        }
        /* too big for long long: becomes a real */
        /* fall through */
    case K_FLOAT: {
        double d = strtod(s, NULL);
        if (!isfinite(d)) {
            *range = 1;
            return NULL;
        }
        return json_real(d);
    }
    case K_OCT:
    case K_HEX:
        v = radix_value(s + 2, n - 2, k == K_OCT ? 8 : 16);
        if (!v) {
            *range = 1;
            return NULL;
        }
        if (as_real && json_is_integer(v)) {
            json_t *r = json_real((double)json_integer_value(v));
            json_decref(v);
            return r;
        }
        return v;
    default:
        return NULL;
    }
}

/* The JSON value of a scalar event (new reference) or an error. */
static int scalar_value(struct loader *l, const yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    const yaml_mark_t *m = &ev->start_mark;
    char ex[80], tb[80];

    *out = NULL;
    if (memchr(s, 0, n))
        return fail(l, m, TN_EINVAL, "string contains a NUL character, which is not supported");
    enum want w = want_of(tag, ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    if (w == T_BAD)
        return fail(l, m, TN_EINVAL, "tag %s cannot apply to a scalar (\"%s\")",
                    short_tag(tag, tb, sizeof(tb)), excerpt(s, n, ex, sizeof(ex)));
    if (w == T_STR) {
        *out = json_stringn(s, n);
        if (!*out) return fail(l, m, TN_EINVAL, "string is not valid UTF-8");
        return 0;
    }
    enum kind k = classify(s, n);
    int ok;
    switch (w) {
    case T_INT:
        ok = k == K_DEC || k == K_OCT || k == K_HEX;
        break;
    case T_FLOAT:
        ok = k == K_DEC || k == K_OCT || k == K_HEX || k == K_FLOAT || k == K_INF || k == K_NAN;
        break;
    case T_BOOL:
        ok = k == K_TRUE || k == K_FALSE;
        break;
    case T_NULL:
        ok = k == K_NULL;
        break;
    default:
        ok = 1;
        break;
    }
    if (!ok)
        return fail(l, m, TN_EINVAL, "\"%s\" is not a valid %s", excerpt(s, n, ex, sizeof(ex)),
                    short_tag(tag, tb, sizeof(tb)));
    if (k == K_INF || k == K_NAN)
        return fail(l, m, TN_EINVAL, "%s cannot be represented in JSON (no infinity or NaN)",
                    excerpt(s, n, ex, sizeof(ex)));
    if (k == K_STR) {
        *out = json_stringn(s, n);
        if (!*out) return fail(l, m, TN_EINVAL, "string is not valid UTF-8");
        return 0;
    }
    int range;
    *out = make_value(k, s, n, w == T_FLOAT, &range);
    if (!*out && range)
        return fail(l, m, TN_EINVAL, "number %s is out of range", excerpt(s, n, ex, sizeof(ex)));
    if (!*out) return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    return 0;
}

/* ---- the event loop's stack ---- */

static void frame_free(struct frame *f)
{
    json_decref(f->val);
    json_decref(f->merged);
    free(f->anchor);
    free(f->key);
    memset(f, 0, sizeof(*f));
}

static struct frame *top_frame(struct loader *l)
{
    return l->depth ? &l->stack[l->depth - 1] : NULL;
}

static int count_node(struct loader *l, const yaml_mark_t *m, size_t n)
{
    if (n > l->lim.max_nodes || l->nodes > l->lim.max_nodes - n)
        return fail(l, m, TN_ETOOBIG, "document has more than %zu nodes", l->lim.max_nodes);
    l->nodes += n;
    return 0;
}

static int merge_one(json_t *merged, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        if (!json_object_get(merged, k) && json_object_set(merged, k, v)) return TN_ENOMEM;
    }
    return 0;
}

/* Applies the value of a `<<` key (stolen): a mapping or a list of mappings, earlier wins. */
static int merge_into(struct loader *l, struct frame *f, json_t *v)
{
    int rc = 0;
    if (!f->merged && !(f->merged = json_object())) {
        json_decref(v);
        return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    }
    if (json_is_object(v)) {
        rc = merge_one(f->merged, v);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_object(e)) {
                json_decref(v);
                return fail(l, &f->key_mark, TN_EINVAL,
                            "merge key << expects a mapping or a list of mappings, but item %zu "
                            "is not a mapping",
                            i);
            }
            if ((rc = merge_one(f->merged, e))) break;
        }
    } else {
        json_decref(v);
        return fail(l, &f->key_mark, TN_EINVAL,
                    "merge key << expects a mapping or a list of mappings");
    }
    json_decref(v);
    return rc ? tn_err_set(l->err, rc, "out of memory") : 0;
}

/* Hands a complete value (stolen) to its parent, or makes it the document's root. */
static int add_value(struct loader *l, json_t *v)
{
    struct frame *f = top_frame(l);
    if (!f) {
        json_decref(l->root);
        l->root = v;
        return 0;
    }
    if (!f->is_map) {
        if (json_array_append_new(f->val, v)) return tn_err_set(l->err, TN_ENOMEM, "out of memory");
        return 0;
    }
    int rc = 0;
    if (f->key_is_merge)
        rc = merge_into(l, f, v);
    else if (json_object_set_new(f->val, f->key, v))
        rc = tn_err_set(l->err, TN_ENOMEM, "out of memory");
    free(f->key);
    f->key = NULL;
    f->have_key = 0;
    f->key_is_merge = 0;
    return rc;
}

static int register_anchor(struct loader *l, const char *anchor, json_t *v)
{
    if (anchor && json_object_set(l->anchors, anchor, v))
        return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    return 0;
}

/* Records a mapping key (copied) after the duplicate check. */
static int set_key(struct loader *l, struct frame *f, const char *key, int merge,
                   const yaml_mark_t *m)
{
    char ex[80];
    if (merge) {
        if (f->seen_merge) return fail(l, m, TN_EINVAL, "duplicate merge key \"<<\" in mapping");
        f->seen_merge = 1;
    } else if (json_object_get(f->val, key)) {
        return fail(l, m, TN_EINVAL, "duplicate key \"%s\" in mapping",
                    excerpt(key, strlen(key), ex, sizeof(ex)));
    }
    if (!(f->key = strdup(key))) return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    f->have_key = 1;
    f->key_is_merge = merge;
    f->key_mark = *m;
    return 0;
}

static int on_key_scalar(struct loader *l, struct frame *f, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    const char *anchor = (const char *)ev->data.scalar.anchor;

    if (memchr(s, 0, n))
        return fail(l, &ev->start_mark, TN_EINVAL,
                    "mapping key contains a NUL character, which is not supported");
    enum want w = want_of(tag, plain);
    const char *key = s;
    if ((w == T_AUTO || w == T_NULL) && classify(s, n) == K_NULL) key = "null";
    if (anchor) {
        /* The anchored value is the typed scalar; keys that cannot be typed (say `.inf`) are
         * remembered as their text. */
        json_t *v = NULL;
        if (scalar_value(l, ev, &v) && !(v = json_string(key)))
            return tn_err_set(l->err, TN_ENOMEM, "out of memory");
        int rc = register_anchor(l, anchor, v);
        json_decref(v);
        if (rc) return rc;
    }
    return set_key(l, f, key, plain && !tag && n == 2 && memcmp(s, "<<", 2) == 0, &ev->start_mark);
}

static int on_scalar(struct loader *l, const yaml_event_t *ev)
{
    int rc = count_node(l, &ev->start_mark, 1);
    if (rc) return rc;
    struct frame *f = top_frame(l);
    if (f && f->is_map && !f->have_key) return on_key_scalar(l, f, ev);
    json_t *v;
    if ((rc = scalar_value(l, ev, &v))) return rc;
    if ((rc = register_anchor(l, (const char *)ev->data.scalar.anchor, v))) {
        json_decref(v);
        return rc;
    }
    if (!f && ev->data.scalar.length == 0 && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        !ev->data.scalar.tag && !ev->data.scalar.anchor)
        l->root_empty = 1;
    return add_value(l, v);
}

/* Counts v's nodes, stopping once cap is reached; *depth gets its collection nesting. Recursion
 * is bounded by max_depth because anchored values were built under that limit. */
static size_t count_tree(const json_t *v, size_t cap, size_t *depth)
{
    size_t n = 1, d = 0;
    *depth = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            if (n >= cap) break;
            size_t cd;
            n += count_tree(c, cap - n, &cd);
            if (cd > d) d = cd;
        }
        *depth = d + 1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            if (n >= cap) break;
            size_t cd;
            n += count_tree(c, cap - n, &cd);
            if (cd > d) d = cd;
        }
        *depth = d + 1;
    }
    return n;
}

static int on_alias(struct loader *l, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const yaml_mark_t *m = &ev->start_mark;
    char ex[80];
    json_t *v = json_object_get(l->anchors, name);
    if (!v)
        return fail(l, m, TN_EINVAL, "unknown alias *%s",
                    excerpt(name, strlen(name), ex, sizeof(ex)));
    size_t left = l->lim.max_alias_nodes - l->alias_nodes, depth;
    size_t n = count_tree(v, left == SIZE_MAX ? left : left + 1, &depth);
    if (n > left)
        return fail(l, m, TN_ETOOBIG,
                    "alias *%s: expanding aliases would copy more than %zu nodes "
                    "(max_alias_nodes; recursive aliases such as a \"billion laughs\" document?)",
                    excerpt(name, strlen(name), ex, sizeof(ex)), l->lim.max_alias_nodes);
    if (l->depth + depth > l->lim.max_depth)
        return fail(l, m, TN_ETOOBIG, "alias *%s nests collections deeper than %zu levels",
                    excerpt(name, strlen(name), ex, sizeof(ex)), l->lim.max_depth);
    int rc = count_node(l, m, n);
    if (rc) return rc;
    l->alias_nodes += n;

    struct frame *f = top_frame(l);
    if (f && f->is_map && !f->have_key) {
        char num[64];
        const char *key;
        if (json_is_string(v))
            key = json_string_value(v);
        else if (json_is_null(v))
            key = "null";
        else if (json_is_true(v))
            key = "true";
        else if (json_is_false(v))
            key = "false";
        else if (json_is_integer(v))
            key = (snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)), num);
        else if (json_is_real(v))
            key = (snprintf(num, sizeof(num), "%.17g", json_real_value(v)), num);
        else
            return fail(l, m, TN_EINVAL, "mapping key must be a scalar, but alias *%s is a %s",
                        excerpt(name, strlen(name), ex, sizeof(ex)),
                        json_is_object(v) ? "mapping" : "sequence");
        return set_key(l, f, key, 0, m);
    }
    json_t *copy = json_deep_copy(v);
    if (!copy) return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    return add_value(l, copy);
}

static int on_start(struct loader *l, const yaml_event_t *ev)
{
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    const yaml_mark_t *m = &ev->start_mark;
    const char *what = is_map ? "mapping" : "sequence";
    const char *tag =
        (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    const char *anchor =
        (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    char tb[80];
    int rc = count_node(l, m, 1);
    if (rc) return rc;
    struct frame *f = top_frame(l);
    if (f && f->is_map && !f->have_key)
        return fail(l, m, TN_EINVAL, "mapping key must be a scalar, not a %s", what);
    if (l->depth >= l->lim.max_depth)
        return fail(l, m, TN_ETOOBIG, "collections nest deeper than %zu levels", l->lim.max_depth);
    if (tag && strncmp(tag, TAG_PREFIX, TAG_PREFIX_LEN) == 0) {
        const char *t = tag + TAG_PREFIX_LEN;
        int core = !strcmp(t, "str") || !strcmp(t, "int") || !strcmp(t, "float") ||
                   !strcmp(t, "bool") || !strcmp(t, "null") || !strcmp(t, "binary") ||
                   !strcmp(t, "map") || !strcmp(t, "seq");
        if (core && strcmp(t, is_map ? "map" : "seq") != 0)
            return fail(l, m, TN_EINVAL, "tag %s cannot apply to a %s",
                        short_tag(tag, tb, sizeof(tb)), what);
    }
    if (l->depth == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct frame *ns = realloc(l->stack, ncap * sizeof(*ns));
        if (!ns) return tn_err_set(l->err, TN_ENOMEM, "out of memory");
        l->stack = ns;
        l->cap = ncap;
    }
    f = &l->stack[l->depth];
    memset(f, 0, sizeof(*f));
    f->is_map = is_map;
    f->val = is_map ? json_object() : json_array();
    if (!f->val || (anchor && !(f->anchor = strdup(anchor)))) {
        frame_free(f);
        return tn_err_set(l->err, TN_ENOMEM, "out of memory");
    }
    l->depth++;
    return 0;
}

static int on_end(struct loader *l)
{
    struct frame f = l->stack[--l->depth];
    int rc = 0;
    if (f.merged) {
        const char *k;
        json_t *v;
        json_object_foreach(f.merged, k, v)
        {
            if (!json_object_get(f.val, k) && json_object_set(f.val, k, v)) {
                rc = tn_err_set(l->err, TN_ENOMEM, "out of memory");
                break;
            }
        }
    }
    if (!rc) rc = register_anchor(l, f.anchor, f.val);
    json_t *v = f.val;
    f.val = NULL;
    frame_free(&f);
    if (rc) {
        json_decref(v);
        return rc;
    }
    return add_value(l, v);
}

static void reset_document(struct loader *l)
{
    while (l->depth)
        frame_free(&l->stack[--l->depth]);
    json_object_clear(l->anchors);
    json_decref(l->root);
    l->root = NULL;
    l->root_empty = 0;
}

json_t *tn_yaml_load_stream(const char *data, size_t len, const struct tn_yaml_limits *lim,
                            struct tn_err *err)
{
    struct loader l = {.err = err};
    l.lim.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
    l.lim.max_alias_nodes =
        lim && lim->max_alias_nodes ? lim->max_alias_nodes : DEFAULT_MAX_ALIAS_NODES;
    l.lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : DEFAULT_MAX_NODES;

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)(data ? data : ""), data ? len : 0);
    json_t *docs = json_array();
    l.anchors = json_object();
    int rc = (!docs || !l.anchors) ? tn_err_set(err, TN_ENOMEM, "out of memory") : 0;
    int done = 0;
    while (!rc && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parser_error(&p, err);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            reset_document(&l);
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (l.root && !l.root_empty) {
                if (json_array_append_new(docs, l.root))
                    rc = tn_err_set(err, TN_ENOMEM, "out of memory");
                l.root = NULL;
            }
            reset_document(&l);
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&l, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(&l, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&l, &ev);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(&l);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    reset_document(&l);
    free(l.stack);
    json_decref(l.anchors);
    yaml_parser_delete(&p);
    if (rc) {
        json_decref(docs);
        return NULL;
    }
    return docs;
}

json_t *tn_yaml_load_one(const char *data, size_t len, const struct tn_yaml_limits *lim,
                         struct tn_err *err)
{
    json_t *docs = tn_yaml_load_stream(data, len, lim, err);
    if (!docs) return NULL;
    size_t n = json_array_size(docs);
    if (n != 1) {
        if (n == 0)
            tn_err_set(err, TN_EINVAL, "no YAML document found (empty input)");
        else
            tn_err_set(err, TN_EINVAL, "expected one YAML document, found %zu", n);
        json_decref(docs);
        return NULL;
    }
    json_t *v = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return v;
}

json_t *tn_yaml_load_file(const char *path, const struct tn_yaml_limits *lim, struct tn_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        tn_err_set(err, e == ENOENT ? TN_ENOTFOUND : TN_EIO, "%s: %s", path, strerror(e));
        return NULL;
    }
    struct tn_buf b;
    tn_buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        rc = tn_buf_append(&b, chunk, n);
    if (!rc && ferror(fp)) rc = TN_EIO;
    int e = errno;
    fclose(fp);
    if (rc) {
        tn_err_set(err, rc, "%s: %s", path,
                   rc == TN_EIO       ? strerror(e)
                   : rc == TN_ETOOBIG ? "file too large"
                                      : "out of memory");
        tn_buf_free(&b);
        return NULL;
    }
    json_t *docs = tn_yaml_load_stream(b.data, b.len, lim, err);
    tn_buf_free(&b);
    if (!docs) tn_err_prefix(err, "%s", path);
    return docs;
}

/* ---- JSON -> YAML ---- */

/* Decodes one UTF-8 sequence (jansson strings are valid UTF-8); returns its length. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > n) len = n;
    unsigned v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t i = 1; i < len; i++)
        v = (v << 6) | (s[i] & 0x3F);
    *cp = v;
    return len;
}

/* Code points libyaml rejects or treats as line breaks/BOM: always escaped. */
static int cp_needs_escape(unsigned cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

/* Whether s can be written as a plain scalar and read back as the same string. Deliberately
 * conservative: anything unusual is double-quoted, and so are YAML 1.1 booleans (yes/no/on/off)
 * and strings starting with a digit so that YAML 1.1 readers (kubectl) agree too. */
static int plain_ok(const char *s, size_t n)
{
    static const char *const yaml11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no", "No",
                                         "NO", "on", "On",  "ON",  "off", "Off", "OFF", NULL};
    if (n == 0 || classify(s, n) != K_STR || is_any(s, n, yaml11)) return 0;
    unsigned char c0 = (unsigned char)s[0], c1 = n > 1 ? (unsigned char)s[1] : 0;
    int alpha0 = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z');
    /* "-x" and "--flag" are plain (kubectl prints args that way); "- x" and "---" are not */
    int dash_ok = c0 == '-' && ((c1 >= 'a' && c1 <= 'z') || (c1 >= 'A' && c1 <= 'Z') ||
                                (c1 == '-' && n > 2 && s[2] != '-'));
    if (!(alpha0 || c0 == '_' || c0 == '/' || c0 >= 0x80 || dash_ok)) return 0;
    if (s[n - 1] == ' ' || s[n - 1] == ':') return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            unsigned cp;
            size_t k = utf8_next((const unsigned char *)s + i, n - i, &cp);
            if (cp_needs_escape(cp) || cp == 0xA0) return 0;
            i += k;
            continue;
        }
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr("_-./:+@=,~%$() ", c)) return 0;
        if (c == ':' && s[i + 1] == ' ') return 0;
        i++;
    }
    return 1;
}

static int emit_quoted(struct tn_buf *b, const char *s, size_t n)
{
    int rc = tn_buf_putc(b, '"');
    for (size_t i = 0; !rc && i < n;) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp;
        size_t k = c < 0x80 ? (cp = c, 1) : utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (c == '"')
            rc = tn_buf_puts(b, "\\\"");
        else if (c == '\\')
            rc = tn_buf_puts(b, "\\\\");
        else if (c == '\n')
            rc = tn_buf_puts(b, "\\n");
        else if (c == '\t')
            rc = tn_buf_puts(b, "\\t");
        else if (c == '\r')
            rc = tn_buf_puts(b, "\\r");
        else if (cp_needs_escape(cp))
            rc = cp < 0x100     ? tn_buf_printf(b, "\\x%02X", cp)
                 : cp < 0x10000 ? tn_buf_printf(b, "\\u%04X", cp)
                                : tn_buf_printf(b, "\\U%08X", cp);
        else
            rc = tn_buf_append(b, s + i, k);
        i += k;
    }
    return rc ? rc : tn_buf_putc(b, '"');
}

static int emit_string(struct tn_buf *b, const char *s, size_t n)
{
    if (memchr(s, 0, n)) return TN_EINVAL; /* the loader rejects NUL, so no text could round-trip */
    return plain_ok(s, n) ? tn_buf_append(b, s, n) : emit_quoted(b, s, n);
}

static int emit_real(struct tn_buf *b, double d)
{
    char num[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof(num), "%.*g", prec, d);
        if (strtod(num, NULL) == d) break;
    }
    /* "1" would read back as an integer */
    if (!strpbrk(num, ".eE")) strcat(num, ".0");
    return tn_buf_puts(b, num);
}

static int is_empty_or_scalar(const json_t *v)
{
    return json_is_object(v)  ? json_object_size(v) == 0
           : json_is_array(v) ? json_array_size(v) == 0
                              : 1;
}

static int emit_scalar(struct tn_buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return tn_buf_puts(b, "{}");
    case JSON_ARRAY:
        return tn_buf_puts(b, "[]");
    case JSON_STRING:
        return emit_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return tn_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return emit_real(b, json_real_value(v));
    case JSON_TRUE:
        return tn_buf_puts(b, "true");
    case JSON_FALSE:
        return tn_buf_puts(b, "false");
    default:
        return tn_buf_puts(b, "null");
    }
}

static int indent_to(struct tn_buf *b, size_t indent)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < indent; i++)
        rc = tn_buf_putc(b, ' ');
    return rc;
}

/* Writes a non-empty collection whose lines start at column indent; when inline_first, the
 * cursor is already there (after "- ") so the first line gets no indentation. */
static int emit_node(struct tn_buf *b, const json_t *v, size_t indent, int inline_first);

static int emit_value_after_key(struct tn_buf *b, const json_t *v, size_t indent, int explicit)
{
    int rc;
    if (is_empty_or_scalar(v)) {
        if ((rc = tn_buf_putc(b, ' ')) || (rc = emit_scalar(b, v))) return rc;
        return tn_buf_putc(b, '\n');
    }
    if ((rc = tn_buf_putc(b, '\n'))) return rc;
    /* kubectl style: a list under a key starts at the key's own column */
    size_t child = json_is_array(v) && !explicit ? indent : indent + 2;
    return emit_node(b, v, child, 0);
}

static int emit_node(struct tn_buf *b, const json_t *v, size_t indent, int inline_first)
{
    int rc = 0, first = 1;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!(first && inline_first) && (rc = indent_to(b, indent))) return rc;
            first = 0;
            if ((rc = tn_buf_puts(b, "- "))) return rc;
            if (is_empty_or_scalar(e)) {
                if ((rc = emit_scalar(b, e)) || (rc = tn_buf_putc(b, '\n'))) return rc;
            } else if ((rc = emit_node(b, e, indent + 2, 1))) {
                return rc;
            }
        }
        return 0;
    }
    struct tn_buf kb;
    tn_buf_init(&kb, 0);
    void *it;
    for (it = json_object_iter((json_t *)v); it && !rc;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *e = json_object_iter_value(it);
        if (!(first && inline_first) && (rc = indent_to(b, indent))) break;
        first = 0;
        tn_buf_reset(&kb);
        if ((rc = emit_string(&kb, k, klen))) break;
        int explicit = kb.len > SIMPLE_KEY_MAX;
        if (explicit) {
            if ((rc = tn_buf_puts(b, "? ")) || (rc = tn_buf_append(b, kb.data, kb.len)) ||
                (rc = tn_buf_putc(b, '\n')) || (rc = indent_to(b, indent)) ||
                (rc = tn_buf_putc(b, ':')))
                break;
        } else if ((rc = tn_buf_append(b, kb.data, kb.len)) || (rc = tn_buf_putc(b, ':'))) {
            break;
        }
        rc = emit_value_after_key(b, e, indent, explicit);
    }
    tn_buf_free(&kb);
    return rc;
}

char *tn_yaml_dump(const json_t *v)
{
    struct tn_buf b;
    tn_buf_init(&b, (size_t)1 << 30);
    int rc;
    if (!v) return NULL;
    if (is_empty_or_scalar(v))
        rc = emit_scalar(&b, v) || tn_buf_putc(&b, '\n');
    else
        rc = emit_node(&b, v, 0, 0);
    if (rc) {
        tn_buf_free(&b);
        return NULL;
    }
    return tn_buf_steal(&b, NULL);
}
