/* Structural schemas of CRDs: structural checks, pruning, defaulting and validation with the
 * messages of the real apiextensions-apiserver (kube-openapi's "<path> in body ..." texts wrapped
 * in field errors). See schema.h. */
#include "apiserver/schema.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/cel.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/timeutil.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

struct path {
    char buf[1024];
    size_t len;
};

static void path_init(struct path *p, const char *s)
{
    snprintf(p->buf, sizeof(p->buf), "%s", s ? s : "");
    p->len = strlen(p->buf);
}

static size_t path_add(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_add(struct path *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
    va_end(ap);
    if (n > 0) p->len += (size_t)n;
    if (p->len >= sizeof(p->buf)) p->len = sizeof(p->buf) - 1;
    return old;
}

/* Object key: "spec" at the root, ".spec" below. */
static size_t path_key(struct path *p, const char *k)
{
    return p->len ? path_add(p, ".%s", k) : path_add(p, "%s", k);
}

static size_t path_idx(struct path *p, size_t i)
{
    return path_add(p, "[%zu]", i);
}

static void path_pop(struct path *p, size_t old)
{
    p->len = old;
    p->buf[old] = 0;
}

static const char *s_type(const json_t *s)
{
    return json_string_value(json_object_get(s, "type"));
}

static int s_flag(const json_t *s, const char *key)
{
    return json_is_true(json_object_get(s, key));
}

static const json_t *s_props(const json_t *s)
{
    json_t *p = json_object_get(s, "properties");
    return json_is_object(p) ? p : NULL;
}

/* Schema of map values: the additionalProperties schema, or NULL. *any is set when
 * additionalProperties is true. */
static const json_t *s_addl(const json_t *s, int *any)
{
    json_t *a = json_object_get(s, "additionalProperties");
    if (any) *any = json_is_true(a);
    return json_is_object(a) ? a : NULL;
}

static const char *jkind(const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int is_integral(const json_t *x)
{
    if (json_is_integer(x)) return 1;
    if (!json_is_real(x)) return 0;
    double d = json_real_value(x);
    return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0;
}

static double num(const json_t *x)
{
    return json_number_value(x);
}

/* Go's %q for a string (printable UTF-8 kept, controls escaped). */
static void quote(struct tn_buf *b, const char *s, size_t n)
{
    tn_buf_go_quote(b, s, n);
}

static void fmt_num(const json_t *x, char *out, size_t n)
{
    if (json_is_integer(x))
        snprintf(out, n, "%lld", (long long)json_integer_value(x));
    else
        tn_cel_format_double(json_real_value(x), out, n);
}

/* Appends a bad value the way field.Error.ErrorBody prints it. */
static void fmt_value(struct tn_buf *b, const json_t *x)
{
    char nb[64];
    switch (json_typeof(x)) {
    case JSON_STRING:
        quote(b, json_string_value(x), json_string_length(x));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        fmt_num(x, nb, sizeof(nb));
        tn_buf_puts(b, nb);
        break;
    case JSON_TRUE:
        tn_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        tn_buf_puts(b, "false");
        break;
    case JSON_NULL:
        tn_buf_puts(b, "\"null\"");
        break;
    default: {
        char *s = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
        if (s && strlen(s) > 256) strcpy(s + 250, "...");
        tn_buf_puts(b, s ? s : "{}");
        free(s);
    }
    }
}

static void add_cause(struct tn_causes *c, const char *reason, const char *field,
                      struct tn_buf *msg)
{
    tn_causes_add(c, reason, field, "%s", msg->data ? msg->data : "");
    tn_buf_free(msg);
}

/* "Invalid value: <v>: <detail>" (and the same shape for other reasons with a value). */
static void cause_value(struct tn_causes *c, const char *reason, const char *field, const json_t *v,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void cause_value(struct tn_causes *c, const char *reason, const char *field, const json_t *v,
                        const char *fmt, ...)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    const char *head = strcmp(reason, TN_CAUSE_NOT_SUPPORTED) == 0 ? "Unsupported value"
                       : strcmp(reason, TN_CAUSE_DUPLICATE) == 0   ? "Duplicate value"
                       : strcmp(reason, TN_CAUSE_TOO_MANY) == 0    ? "Too many"
                                                                   : "Invalid value";
    tn_buf_printf(&b, "%s: ", head);
    fmt_value(&b, v);
    if (fmt) {
        tn_buf_puts(&b, ": ");
        va_list ap;
        va_start(ap, fmt);
        tn_buf_vprintf(&b, fmt, ap);
        va_end(ap);
    }
    add_cause(c, reason, field, &b);
}

/* Value-less errors: "Required value: d", "Forbidden: d", "Too long: d". */
static void cause_plain(struct tn_causes *c, const char *reason, const char *field,
                        const char *detail)
{
    const char *head = strcmp(reason, TN_CAUSE_REQUIRED) == 0    ? "Required value"
                       : strcmp(reason, TN_CAUSE_FORBIDDEN) == 0 ? "Forbidden"
                       : strcmp(reason, TN_CAUSE_TOO_LONG) == 0  ? "Too long"
                                                                 : "Invalid value";
    if (detail && *detail)
        tn_causes_add(c, reason, field, "%s: %s", head, detail);
    else
        tn_causes_add(c, reason, field, "%s", head);
}

static size_t utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Pruning                                                                                    */

struct prune_ctx {
    struct tn_causes *unknown;
    int oom;
};

static void prune_node(struct prune_ctx *c, const json_t *s, json_t *x, struct path *p, int root);

static void record_pruned(struct prune_ctx *c, struct path *p, const char *k)
{
    if (!c->unknown) return;
    size_t old = path_key(p, k);
    tn_causes_add(c->unknown, TN_CAUSE_UNKNOWN_FIELD, p->buf, "unknown field \"%s\"", p->buf);
    path_pop(p, old);
}

static int is_meta_field(const char *k)
{
    return strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0 || strcmp(k, "metadata") == 0;
}

/* Inside x-kubernetes-preserve-unknown-fields: unknown fields stay, known ones are pruned. */
static void skip_prune(struct prune_ctx *c, const json_t *s, json_t *x, struct path *p, int root)
{
    if (!s) return;
    if (json_is_object(x)) {
        const json_t *props = s_props(s);
        int any;
        const json_t *addl = s_addl(s, &any);
        const char *k;
        json_t *v;
        json_object_foreach(x, k, v)
        {
            if ((root || s_flag(s, "x-kubernetes-embedded-resource")) && is_meta_field(k)) continue;
            const json_t *ps = json_object_get(props, k);
            size_t old = path_key(p, k);
            if (ps)
                prune_node(c, ps, v, p, 0);
            else if (addl)
                prune_node(c, addl, v, p, 0);
            path_pop(p, old);
        }
    } else if (json_is_array(x)) {
        const json_t *items = json_object_get(s, "items");
        for (size_t i = 0; i < json_array_size(x); i++) {
            size_t old = path_idx(p, i);
            skip_prune(c, json_is_object(items) ? items : NULL, json_array_get(x, i), p, 0);
            path_pop(p, old);
        }
    }
}

static void prune_node(struct prune_ctx *c, const json_t *s, json_t *x, struct path *p, int root)
{
    if (s && s_flag(s, "x-kubernetes-preserve-unknown-fields")) {
        skip_prune(c, s, x, p, root);
        return;
    }
    if (json_is_object(x)) {
        int embedded = s && s_flag(s, "x-kubernetes-embedded-resource");
        const json_t *props = s ? s_props(s) : NULL;
        int any = 0;
        const json_t *addl = s ? s_addl(s, &any) : NULL;
        if (any) return;
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(x, tmp, k, v)
        {
            if ((root || embedded) && is_meta_field(k)) {
                /* root metadata is the caller's; embedded ones are kept as they are */
                const json_t *ps = json_object_get(props, k);
                if (!ps || strcmp(k, "metadata") == 0 || root) continue;
            }
            const json_t *ps = json_object_get(props, k);
            if (ps || addl) {
                size_t old = path_key(p, k);
                prune_node(c, ps ? ps : addl, v, p, 0);
                path_pop(p, old);
            } else {
                record_pruned(c, p, k);
                json_object_del(x, k);
            }
        }
    } else if (json_is_array(x)) {
        const json_t *items = s ? json_object_get(s, "items") : NULL;
        for (size_t i = 0; i < json_array_size(x); i++) {
            size_t old = path_idx(p, i);
            prune_node(c, json_is_object(items) ? items : NULL, json_array_get(x, i), p, 0);
            path_pop(p, old);
        }
    }
}

int tn_schema_prune(const json_t *schema, json_t *obj, struct tn_causes *unknown)
{
    struct prune_ctx c = {.unknown = unknown};
    struct path p;
    path_init(&p, "");
    prune_node(&c, schema, obj, &p, 1);
    return c.oom ? TN_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaulting                                                                                 */

static int default_node(const json_t *s, json_t *x, int root)
{
    if (!s) return 0;
    if (json_is_object(x)) {
        const json_t *props = s_props(s);
        const char *k;
        json_t *ps;
        json_object_foreach((json_t *)props, k, ps)
        {
            if (root && strcmp(k, "metadata") == 0) continue;
            json_t *def = json_object_get(ps, "default");
            if (!def) continue;
            json_t *cur = json_object_get(x, k);
            if (!cur || (json_is_null(cur) && !s_flag(ps, "nullable"))) {
                json_t *cp = json_deep_copy(def);
                if (!cp || json_object_set_new(x, k, cp) != 0) return TN_ENOMEM;
            }
        }
        const json_t *addl = s_addl(s, NULL);
        json_t *v;
        void *tmp;
        json_object_foreach_safe(x, tmp, k, v)
        {
            if (root && strcmp(k, "metadata") == 0) continue;
            ps = json_object_get(props, k);
            if (ps) {
                /* a null that is not allowed and has no default would fail validation for
                 * nothing: the real server drops it */
                if (json_is_null(v) && !s_flag(ps, "nullable") && !json_object_get(ps, "default")) {
                    json_object_del(x, k);
                    continue;
                }
                int rc = default_node(ps, v, 0);
                if (rc) return rc;
            } else if (addl) {
                int rc = default_node(addl, v, 0);
                if (rc) return rc;
            }
        }
    } else if (json_is_array(x)) {
        const json_t *items = json_object_get(s, "items");
        if (!json_is_object(items)) return 0;
        for (size_t i = 0; i < json_array_size(x); i++) {
            int rc = default_node(items, json_array_get(x, i), 0);
            if (rc) return rc;
        }
    }
    return 0;
}

int tn_schema_default(const json_t *schema, json_t *obj)
{
    return default_node(schema, obj, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation pass 1: OpenAPI value validation                                                */

struct vctx {
    struct tn_causes *causes;
    int blocking; /* type or enum errors: CEL rules are not run */
};

static void v_node(struct vctx *c, const json_t *s, const json_t *x, struct path *p, int root);

static const char *in_body(const struct path *p)
{
    return p->buf;
}

static int format_ok(const char *fmt, const json_t *x)
{
    if (json_is_string(x)) {
        const char *v = json_string_value(x);
        if (strcmp(fmt, "date-time") == 0 || strcmp(fmt, "datetime") == 0) {
            time_t t;
            return strlen(v) >= 20 && tn_time_parse_rfc3339(v, &t) == 0;
        }
        if (strcmp(fmt, "date") == 0) {
            struct tm tm = {0};
            const char *e = strptime(v, "%Y-%m-%d", &tm);
            return e && !*e && strlen(v) == 10;
        }
        if (strcmp(fmt, "byte") == 0) {
            unsigned char *out = NULL;
            size_t n;
            int ok = tn_base64_decode(v, &out, &n) == 0;
            free(out);
            return ok;
        }
        if (strcmp(fmt, "duration") == 0) {
            int64_t ms;
            return tn_duration_parse_ms(v[0] == '-' ? v + 1 : v, &ms) == 0;
        }
        if (strcmp(fmt, "uuid") == 0) {
            if (strlen(v) != 36) return 0;
            for (int i = 0; i < 36; i++) {
                int dash = i == 8 || i == 13 || i == 18 || i == 23;
                char ch = v[i];
                int hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                          (ch >= 'A' && ch <= 'F');
                if (dash ? ch != '-' : !hex) return 0;
            }
            return 1;
        }
        if (strcmp(fmt, "ipv4") == 0) {
            unsigned char buf[16];
            return inet_pton(AF_INET, v, buf) == 1;
        }
        if (strcmp(fmt, "ipv6") == 0) {
            unsigned char buf[16];
            return inet_pton(AF_INET6, v, buf) == 1;
        }
        return 1; /* unknown formats are ignored, as the real server strips them */
    }
    if (json_is_number(x) && is_integral(x)) {
        double d = num(x);
        if (strcmp(fmt, "int32") == 0) return d >= -2147483648.0 && d <= 2147483647.0;
    }
    return 1;
}

static void v_number(struct vctx *c, const json_t *s, const json_t *x, struct path *p)
{
    double v = num(x);
    char lim[64];
    json_t *mx = json_object_get(s, "maximum");
    if (json_is_number(mx)) {
        int excl = s_flag(s, "exclusiveMaximum");
        if (excl ? v >= num(mx) : v > num(mx)) {
            tn_cel_format_double(num(mx), lim, sizeof(lim));
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, x,
                        "%s in body should be less than %s%s", in_body(p),
                        excl ? "" : "or equal to ", lim);
        }
    }
    json_t *mn = json_object_get(s, "minimum");
    if (json_is_number(mn)) {
        int excl = s_flag(s, "exclusiveMinimum");
        if (excl ? v <= num(mn) : v < num(mn)) {
            tn_cel_format_double(num(mn), lim, sizeof(lim));
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, x,
                        "%s in body should be greater than %s%s", in_body(p),
                        excl ? "" : "or equal to ", lim);
        }
    }
    json_t *mo = json_object_get(s, "multipleOf");
    if (json_is_number(mo) && num(mo) > 0) {
        int ok;
        if (json_is_integer(x) && json_is_integer(mo))
            ok = json_integer_value(x) % json_integer_value(mo) == 0;
        else {
            double q = v / num(mo);
            ok = isfinite(q) && q == floor(q);
        }
        if (!ok) {
            tn_cel_format_double(num(mo), lim, sizeof(lim));
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, x,
                        "%s in body should be a multiple of %s", in_body(p), lim);
        }
    }
}

static void v_string(struct vctx *c, const json_t *s, const json_t *x, struct path *p)
{
    size_t n = utf8_count(json_string_value(x), json_string_length(x));
    json_t *mx = json_object_get(s, "maxLength");
    if (json_is_integer(mx) && (long long)n > json_integer_value(mx)) {
        char d[64];
        snprintf(d, sizeof(d), "may not be longer than %lld", (long long)json_integer_value(mx));
        cause_plain(c->causes, TN_CAUSE_TOO_LONG, p->buf, d);
    }
    json_t *mn = json_object_get(s, "minLength");
    if (json_is_integer(mn) && (long long)n < json_integer_value(mn))
        cause_value(c->causes, TN_CAUSE_INVALID, p->buf, x,
                    "%s in body should be at least %lld chars long", in_body(p),
                    (long long)json_integer_value(mn));
    const char *pat = json_string_value(json_object_get(s, "pattern"));
    if (pat) {
        regex_t re;
        if (tn_regex_compile(&re, pat, NULL) == 0) {
            int m = strlen(json_string_value(x)) == json_string_length(x) &&
                    regexec(&re, json_string_value(x), 0, NULL, 0) == 0;
            regfree(&re);
            if (!m)
                cause_value(c->causes, TN_CAUSE_INVALID, p->buf, x, "%s in body should match '%s'",
                            in_body(p), pat);
        }
    }
}

static void v_array(struct vctx *c, const json_t *s, const json_t *x, struct path *p)
{
    size_t n = json_array_size(x);
    json_t *mx = json_object_get(s, "maxItems");
    if (json_is_integer(mx) && (long long)n > json_integer_value(mx)) {
        json_t *cnt = json_integer((json_int_t)n);
        if (cnt)
            cause_value(c->causes, TN_CAUSE_TOO_MANY, p->buf, cnt, "must have at most %lld items",
                        (long long)json_integer_value(mx));
        json_decref(cnt);
    }
    json_t *mn = json_object_get(s, "minItems");
    if (json_is_integer(mn) && (long long)n < json_integer_value(mn)) {
        json_t *cnt = json_integer((json_int_t)n);
        if (cnt)
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, cnt,
                        "%s in body should have at least %lld items", in_body(p),
                        (long long)json_integer_value(mn));
        json_decref(cnt);
    }
    if (s_flag(s, "uniqueItems")) {
        int dup = 0;
        for (size_t i = 0; i < n && !dup; i++)
            for (size_t j = i + 1; j < n && !dup; j++)
                dup = tn_json_equal(json_array_get(x, i), json_array_get(x, j));
        if (dup)
            tn_causes_add(c->causes, TN_CAUSE_INVALID, p->buf,
                          "Invalid value: \"\": %s in body shouldn't contain duplicates",
                          in_body(p));
    }
    const json_t *items = json_object_get(s, "items");
    if (json_is_object(items)) {
        for (size_t i = 0; i < n; i++) {
            size_t old = path_idx(p, i);
            v_node(c, items, json_array_get(x, i), p, 0);
            path_pop(p, old);
        }
    }
}

static void v_object(struct vctx *c, const json_t *s, const json_t *x, struct path *p, int root)
{
    size_t n = json_object_size(x);
    json_t *mx = json_object_get(s, "maxProperties");
    if (json_is_integer(mx) && (long long)n > json_integer_value(mx)) {
        json_t *cnt = json_integer((json_int_t)n);
        if (cnt)
            cause_value(c->causes, TN_CAUSE_TOO_MANY, p->buf, cnt, "must have at most %lld items",
                        (long long)json_integer_value(mx));
        json_decref(cnt);
    }
    json_t *mn = json_object_get(s, "minProperties");
    if (json_is_integer(mn) && (long long)n < json_integer_value(mn)) {
        json_t *cnt = json_integer((json_int_t)n);
        if (cnt)
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, cnt,
                        "%s in body should have at least %lld properties", in_body(p),
                        (long long)json_integer_value(mn));
        json_decref(cnt);
    }
    json_t *req = json_object_get(s, "required");
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        const char *name = json_string_value(r);
        if (!name || json_object_get(x, name)) continue;
        if (root && strcmp(name, "metadata") == 0) continue;
        size_t old = path_key(p, name);
        cause_plain(c->causes, TN_CAUSE_REQUIRED, p->buf, NULL);
        path_pop(p, old);
    }
    if (s_flag(s, "x-kubernetes-embedded-resource")) {
        static const char *const need[] = {"apiVersion", "kind"};
        for (size_t k = 0; k < 2; k++) {
            if (json_object_get(x, need[k])) continue;
            size_t old = path_key(p, need[k]);
            cause_plain(c->causes, TN_CAUSE_REQUIRED, p->buf, "must not be empty");
            path_pop(p, old);
        }
    }
    const json_t *props = s_props(s);
    const json_t *addl = s_addl(s, NULL);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)x, k, v)
    {
        if (root && strcmp(k, "metadata") == 0) continue;
        const json_t *ps = json_object_get(props, k);
        if (!ps) ps = addl;
        if (!ps) continue;
        size_t old = path_key(p, k);
        v_node(c, ps, v, p, 0);
        path_pop(p, old);
    }
}

/* Runs sub against x collecting causes separately; returns the number of causes it produced. */
static size_t v_sub(const json_t *sub, const json_t *x, struct path *p, struct tn_causes *out)
{
    struct vctx sc = {.causes = out};
    v_node(&sc, sub, x, p, 0);
    return out->n;
}

static void v_combinators(struct vctx *c, const json_t *s, const json_t *x, struct path *p)
{
    json_t *all = json_object_get(s, "allOf");
    size_t i;
    json_t *sub;
    json_array_foreach(all, i, sub)
    {
        struct vctx sc = {.causes = c->causes};
        v_node(&sc, sub, x, p, 0);
    }
    json_t *any = json_object_get(s, "anyOf");
    if (json_array_size(any) > 0) {
        int ok = 0;
        json_array_foreach(any, i, sub)
        {
            struct tn_causes tmp;
            tn_causes_init(&tmp);
            if (v_sub(sub, x, p, &tmp) == 0) ok = 1;
            tn_causes_free(&tmp);
            if (ok) break;
        }
        if (!ok) {
            struct tn_buf b;
            tn_buf_init(&b, 0);
            tn_buf_printf(
                &b, "Invalid value: \"\": %s in body must validate at least one schema (anyOf)",
                in_body(p));
            add_cause(c->causes, TN_CAUSE_INVALID, p->buf, &b);
        }
    }
    json_t *one = json_object_get(s, "oneOf");
    if (json_array_size(one) > 0) {
        int okn = 0;
        json_array_foreach(one, i, sub)
        {
            struct tn_causes tmp;
            tn_causes_init(&tmp);
            if (v_sub(sub, x, p, &tmp) == 0) okn++;
            tn_causes_free(&tmp);
        }
        if (okn != 1) {
            struct tn_buf b;
            tn_buf_init(&b, 0);
            tn_buf_printf(&b,
                          "Invalid value: \"\": %s in body must validate one and only one schema "
                          "(oneOf)",
                          in_body(p));
            add_cause(c->causes, TN_CAUSE_INVALID, p->buf, &b);
        }
    }
    json_t *not = json_object_get(s, "not");
    if (json_is_object(not )) {
        struct tn_causes tmp;
        tn_causes_init(&tmp);
        size_t nerr = v_sub(not, x, p, &tmp);
        tn_causes_free(&tmp);
        if (nerr == 0) {
            struct tn_buf b;
            tn_buf_init(&b, 0);
            tn_buf_printf(&b, "Invalid value: \"\": %s in body must not validate the schema (not)",
                          in_body(p));
            add_cause(c->causes, TN_CAUSE_INVALID, p->buf, &b);
        }
    }
}

static int type_ok(const char *t, const json_t *x)
{
    if (strcmp(t, "string") == 0) return json_is_string(x);
    if (strcmp(t, "integer") == 0) return is_integral(x);
    if (strcmp(t, "number") == 0) return json_is_number(x);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(x);
    if (strcmp(t, "object") == 0) return json_is_object(x);
    if (strcmp(t, "array") == 0) return json_is_array(x);
    return 1;
}

static void v_node(struct vctx *c, const json_t *s, const json_t *x, struct path *p, int root)
{
    if (!json_is_object(s)) return;
    const char *t = s_type(s);
    int ios = s_flag(s, "x-kubernetes-int-or-string");
    if (json_is_null(x)) {
        if ((t || ios) && !s_flag(s, "nullable")) {
            tn_causes_add(c->causes, TN_CAUSE_TYPE, p->buf,
                          "Invalid value: \"null\": %s in body must be of type %s: \"null\"",
                          in_body(p), t ? t : "integer,string");
            c->blocking = 1;
        }
        return;
    }
    /* type */
    const char *want = t;
    int ok = 1;
    if (t)
        ok = type_ok(t, x);
    else if (ios) {
        want = "integer,string";
        ok = is_integral(x) || json_is_string(x);
    }
    if (!ok) {
        json_t *k = json_string(jkind(x));
        if (k)
            cause_value(c->causes, TN_CAUSE_TYPE, p->buf, k,
                        "%s in body must be of type %s: \"%s\"", in_body(p), want, jkind(x));
        json_decref(k);
        c->blocking = 1;
    }
    v_combinators(c, s, x, p);
    if (json_is_string(x)) v_string(c, s, x, p);
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt && ok && !format_ok(fmt, x)) {
        char sv[64];
        const char *shown = json_string_value(x);
        if (!shown) {
            fmt_num(x, sv, sizeof(sv));
            shown = sv;
        }
        struct tn_buf b;
        tn_buf_init(&b, 0);
        tn_buf_puts(&b, "Invalid value: ");
        fmt_value(&b, x);
        tn_buf_printf(&b, ": %s in body must be of type %s: ", in_body(p), fmt);
        quote(&b, shown, strlen(shown));
        add_cause(c->causes, TN_CAUSE_INVALID, p->buf, &b);
    }
    if (json_is_number(x)) v_number(c, s, x, p);
    if (json_is_array(x)) v_array(c, s, x, p);
    /* enum */
    json_t *en = json_object_get(s, "enum");
    if (json_array_size(en) > 0) {
        int found = 0;
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e) if (tn_json_equal(e, x)) found = 1;
        if (!found) {
            struct tn_buf b;
            tn_buf_init(&b, 0);
            tn_buf_puts(&b, "Unsupported value: ");
            fmt_value(&b, x);
            tn_buf_puts(&b, ": supported values: ");
            json_array_foreach(en, i, e)
            {
                if (i) tn_buf_puts(&b, ", ");
                if (json_is_string(e)) {
                    quote(&b, json_string_value(e), json_string_length(e));
                } else {
                    char *d = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
                    quote(&b, d ? d : "", d ? strlen(d) : 0);
                    free(d);
                }
            }
            add_cause(c->causes, TN_CAUSE_NOT_SUPPORTED, p->buf, &b);
            c->blocking = 1;
        }
    }
    if (json_is_object(x)) v_object(c, s, x, p, root);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation pass 2: x-kubernetes-list-type set and map                                      */

static void lt_node(struct tn_causes *c, const json_t *s, const json_t *x, struct path *p, int root)
{
    if (!json_is_object(s)) return;
    if (json_is_array(x)) {
        const char *lt = json_string_value(json_object_get(s, "x-kubernetes-list-type"));
        json_t *keys = json_object_get(s, "x-kubernetes-list-map-keys");
        size_t n = json_array_size(x);
        if (lt && strcmp(lt, "set") == 0) {
            for (size_t i = 1; i < n; i++) {
                for (size_t j = 0; j < i; j++) {
                    if (tn_json_equal(json_array_get(x, i), json_array_get(x, j))) {
                        size_t old = path_idx(p, i);
                        cause_value(c, TN_CAUSE_DUPLICATE, p->buf, json_array_get(x, i), NULL);
                        path_pop(p, old);
                        break;
                    }
                }
            }
        } else if (lt && strcmp(lt, "map") == 0 && json_array_size(keys) > 0) {
            for (size_t i = 1; i < n; i++) {
                const json_t *a = json_array_get(x, i);
                if (!json_is_object(a)) continue;
                for (size_t j = 0; j < i; j++) {
                    const json_t *b = json_array_get(x, j);
                    if (!json_is_object(b)) continue;
                    int same = 1;
                    size_t ki;
                    json_t *key;
                    json_array_foreach(keys, ki, key)
                    {
                        const char *kn = json_string_value(key);
                        json_t *va = kn ? json_object_get(a, kn) : NULL;
                        json_t *vb = kn ? json_object_get(b, kn) : NULL;
                        if (!(va == NULL && vb == NULL) && !(va && vb && tn_json_equal(va, vb)))
                            same = 0;
                    }
                    if (same) {
                        json_t *kv = json_object();
                        json_array_foreach(keys, ki, key)
                        {
                            const char *kn = json_string_value(key);
                            json_t *va = kn ? json_object_get(a, kn) : NULL;
                            if (kv && va) json_object_set(kv, kn, va);
                        }
                        size_t old = path_idx(p, i);
                        if (kv) cause_value(c, TN_CAUSE_DUPLICATE, p->buf, kv, NULL);
                        json_decref(kv);
                        path_pop(p, old);
                        break;
                    }
                }
            }
        }
        const json_t *items = json_object_get(s, "items");
        for (size_t i = 0; i < n; i++) {
            size_t old = path_idx(p, i);
            lt_node(c, items, json_array_get(x, i), p, 0);
            path_pop(p, old);
        }
    } else if (json_is_object(x)) {
        const json_t *props = s_props(s);
        const json_t *addl = s_addl(s, NULL);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)x, k, v)
        {
            if (root && strcmp(k, "metadata") == 0) continue;
            const json_t *ps = json_object_get(props, k);
            if (!ps) ps = addl;
            if (!ps) continue;
            size_t old = path_key(p, k);
            lt_node(c, ps, v, p, 0);
            path_pop(p, old);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Validation pass 3: x-kubernetes-validations                                                */

static const char *trim_dup(const char *s, char *buf, size_t n)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    snprintf(buf, n, "%s", s);
    size_t l = strlen(buf);
    while (l > 0 &&
           (buf[l - 1] == ' ' || buf[l - 1] == '\t' || buf[l - 1] == '\n' || buf[l - 1] == '\r'))
        buf[--l] = 0;
    return buf;
}

static void cel_rule(struct tn_causes *c, const json_t *s, const json_t *rule, const json_t *x,
                     const json_t *old, struct path *p)
{
    const char *src = json_string_value(json_object_get(rule, "rule"));
    if (!src) return;
    char rs[512];
    trim_dup(src, rs, sizeof(rs));
    struct tn_cel_prog *prog = NULL;
    struct tn_err err = {0};
    if (tn_cel_compile(src, &prog, &err) != 0) {
        /* the CRD was checked when written; a rule that no longer compiles is an error */
        tn_causes_add(c, TN_CAUSE_INVALID, p->buf, "Internal error: rule compile error: %s",
                      err.msg);
        return;
    }
    if (tn_cel_uses_old_self(prog) && !old) {
        tn_cel_free(prog);
        return;
    }
    struct tn_cel_env env = {.self = x, .schema = s, .old_self = old};
    int ok = 0;
    int rc = tn_cel_eval_bool(prog, &env, &ok, &err);
    tn_cel_free(prog);
    const char *stype = s_type(s) ? s_type(s) : "";
    /* field: node path plus the rule's fieldPath */
    struct path fp = *p;
    const char *rel = json_string_value(json_object_get(rule, "fieldPath"));
    if (rel && *rel) {
        if (fp.len == 0 && rel[0] == '.') rel++;
        path_add(&fp, "%s", rel);
    }
    json_t *tv = json_string(stype);
    if (!tv) return;
    if (rc != 0) {
        if (rc == TN_ETOOBIG)
            cause_value(c, TN_CAUSE_INVALID, p->buf, tv, "call cost exceeds limit for rule: %s",
                        rs);
        else if (strncmp(err.msg, "no such overload", 16) == 0)
            cause_value(c, TN_CAUSE_INVALID, p->buf, tv,
                        "'%s': call arguments did not match a supported operator, function or "
                        "macro signature for rule: %s",
                        err.msg, rs);
        else
            cause_value(c, TN_CAUSE_INVALID, p->buf, tv, "%s evaluating rule: %s", err.msg, rs);
        json_decref(tv);
        return;
    }
    if (ok) {
        json_decref(tv);
        return;
    }
    char msg[512];
    const char *m = json_string_value(json_object_get(rule, "message"));
    const char *mexpr = json_string_value(json_object_get(rule, "messageExpression"));
    msg[0] = 0;
    if (mexpr) {
        struct tn_cel_prog *mp = NULL;
        json_t *out = NULL;
        if (tn_cel_compile(mexpr, &mp, &err) == 0 && tn_cel_eval(mp, &env, &out, &err) == 0 &&
            json_is_string(out) && json_string_length(out) > 0 &&
            !strchr(json_string_value(out), '\n'))
            trim_dup(json_string_value(out), msg, sizeof(msg));
        json_decref(out);
        tn_cel_free(mp);
    }
    if (!msg[0] && m && *m) trim_dup(m, msg, sizeof(msg));
    if (!msg[0]) snprintf(msg, sizeof(msg), "failed rule: %.490s", rs);
    const char *reason = json_string_value(json_object_get(rule, "reason"));
    if (reason && strcmp(reason, TN_CAUSE_FORBIDDEN) == 0)
        cause_plain(c, TN_CAUSE_FORBIDDEN, fp.buf, msg);
    else if (reason && strcmp(reason, TN_CAUSE_REQUIRED) == 0)
        cause_plain(c, TN_CAUSE_REQUIRED, fp.buf, msg);
    else if (reason && strcmp(reason, TN_CAUSE_DUPLICATE) == 0)
        cause_value(c, TN_CAUSE_DUPLICATE, fp.buf, tv, NULL);
    else
        cause_value(c, TN_CAUSE_INVALID, fp.buf, tv, "%s", msg);
    json_decref(tv);
}

/* Old element of a list-type=map list with the same keys as x, or NULL. */
static const json_t *old_map_item(const json_t *s, const json_t *x, const json_t *oldlist)
{
    json_t *keys = json_object_get(s, "x-kubernetes-list-map-keys");
    if (!json_is_object(x) || !json_is_array(oldlist) || json_array_size(keys) == 0) return NULL;
    size_t i;
    json_t *o;
    json_array_foreach(oldlist, i, o)
    {
        if (!json_is_object(o)) continue;
        int same = 1;
        size_t ki;
        json_t *key;
        json_array_foreach(keys, ki, key)
        {
            const char *kn = json_string_value(key);
            json_t *a = kn ? json_object_get(x, kn) : NULL, *b = kn ? json_object_get(o, kn) : NULL;
            if (!(a == NULL && b == NULL) && !(a && b && tn_json_equal(a, b))) same = 0;
        }
        if (same) return o;
    }
    return NULL;
}

static void cel_node(struct tn_causes *c, const json_t *s, const json_t *x, const json_t *old,
                     struct path *p, int root)
{
    if (!json_is_object(s)) return;
    json_t *rules = json_object_get(s, "x-kubernetes-validations");
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule) cel_rule(c, s, rule, x, old, p);
    if (json_is_object(x)) {
        const json_t *props = s_props(s);
        const json_t *addl = s_addl(s, NULL);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)x, k, v)
        {
            if (root && strcmp(k, "metadata") == 0) continue;
            const json_t *ps = json_object_get(props, k);
            if (!ps) ps = addl;
            if (!ps) continue;
            size_t o = path_key(p, k);
            cel_node(c, ps, v, json_is_object(old) ? json_object_get(old, k) : NULL, p, 0);
            path_pop(p, o);
        }
    } else if (json_is_array(x)) {
        const json_t *items = json_object_get(s, "items");
        const char *lt = json_string_value(json_object_get(s, "x-kubernetes-list-type"));
        int is_map = lt && strcmp(lt, "map") == 0;
        int is_set = lt && strcmp(lt, "set") == 0;
        for (size_t j = 0; j < json_array_size(x); j++) {
            const json_t *e = json_array_get(x, j);
            const json_t *oe = NULL;
            if (is_map) {
                oe = old_map_item(s, e, old);
            } else if (is_set && json_is_array(old)) {
                size_t k;
                json_t *ov;
                json_array_foreach(old, k, ov) if (!oe && tn_json_equal(ov, e)) oe = ov;
            }
            size_t o = path_idx(p, j);
            cel_node(c, items, e, oe, p, 0);
            path_pop(p, o);
        }
    }
}

int tn_schema_validate_update(const json_t *schema, const json_t *obj, const json_t *old,
                              struct tn_causes *causes)
{
    size_t before = causes->n;
    struct vctx c = {.causes = causes};
    struct path p;
    path_init(&p, "");
    v_node(&c, schema, obj, &p, 1);
    lt_node(causes, schema, obj, &p, 1);
    if (c.blocking) {
        /* the real apiserver reports this one on the nil path */
        tn_causes_add(causes, TN_CAUSE_INVALID, "<nil>",
                      "Invalid value: \"null\": some validation rules were not checked because the "
                      "object was invalid; correct the existing errors to complete validation");
    } else {
        cel_node(causes, schema, obj, old, &p, 1);
    }
    return causes->n > before ? TN_EINVAL : 0;
}

int tn_schema_validate(const json_t *schema, const json_t *obj, struct tn_causes *causes)
{
    return tn_schema_validate_update(schema, obj, NULL, causes);
}

/* ------------------------------------------------------------------------------------------ */
/* Structural checks                                                                          */

enum level { LV_ROOT, LV_ITEM, LV_FIELD };

struct sctx {
    struct tn_causes *causes;
};

static int known_type(const char *t)
{
    static const char *const ok[] = {"array", "boolean", "integer", "number", "object", "string"};
    for (size_t i = 0; i < 6; i++)
        if (strcmp(t, ok[i]) == 0) return 1;
    return 0;
}

static void sc_sub(struct sctx *c, struct path *p, const char *fmt, const char *reason,
                   const char *detail)
{
    size_t old = path_add(p, "%s", fmt);
    cause_plain(c->causes, reason, p->buf, detail);
    path_pop(p, old);
}

static void sc_subval(struct sctx *c, struct path *p, const char *child, const char *reason,
                      const json_t *v, const char *detail)
{
    size_t old = path_add(p, "%s", child);
    cause_value(c->causes, reason, p->buf, v, "%s", detail);
    path_pop(p, old);
}

static int is_ios_anyof(const json_t *anyof)
{
    if (json_array_size(anyof) != 2) return 0;
    const json_t *a = json_array_get(anyof, 0), *b = json_array_get(anyof, 1);
    const char *ta = s_type(a), *tb = s_type(b);
    return json_object_size(a) == 1 && json_object_size(b) == 1 && ta && tb &&
           strcmp(ta, "integer") == 0 && strcmp(tb, "string") == 0;
}

static void sc_node(struct sctx *c, const json_t *s, struct path *p, enum level lv, int nested);

static void sc_nested_list(struct sctx *c, const json_t *s, struct path *p, const char *key,
                           int skip_first_ios)
{
    json_t *l = json_object_get(s, key);
    if (!l) return;
    if (!json_is_array(l)) {
        size_t old = path_add(p, ".%s", key);
        cause_plain(c->causes, TN_CAUSE_INVALID, p->buf, "must be a list of schemas");
        path_pop(p, old);
        return;
    }
    if (skip_first_ios && strcmp(key, "anyOf") == 0 && is_ios_anyof(l)) return;
    size_t i;
    json_t *sub;
    json_array_foreach(l, i, sub)
    {
        size_t old = path_add(p, ".%s[%zu]", key, i);
        if (skip_first_ios && strcmp(key, "allOf") == 0 && i == 0 &&
            is_ios_anyof(json_object_get(sub, "anyOf")) && json_object_size(sub) == 1) {
            path_pop(p, old);
            continue;
        }
        sc_node(c, sub, p, LV_FIELD, 1);
        path_pop(p, old);
    }
}

static void sc_check_default(struct sctx *c, const json_t *s, struct path *p)
{
    json_t *def = json_object_get(s, "default");
    if (!def) return;
    struct tn_causes tmp;
    tn_causes_init(&tmp);
    /* unknown fields in a default are an error: it must survive pruning unchanged */
    json_t *cp = json_deep_copy(def);
    if (cp) {
        struct tn_causes unk;
        tn_causes_init(&unk);
        tn_schema_prune(s, cp, &unk);
        for (size_t i = 0; i < unk.n; i++) {
            size_t old = path_add(p, ".default");
            cause_value(c->causes, TN_CAUSE_INVALID, p->buf, def,
                        "must not have unknown fields: %s", unk.v[i].field);
            path_pop(p, old);
        }
        tn_causes_free(&unk);
        json_decref(cp);
    }
    struct vctx vc = {.causes = &tmp};
    struct path dp;
    path_init(&dp, "default");
    v_node(&vc, s, def, &dp, 0);
    lt_node(&tmp, s, def, &dp, 0);
    if (!vc.blocking) cel_node(&tmp, s, def, NULL, &dp, 0);
    for (size_t i = 0; i < tmp.n; i++) {
        size_t old = path_add(p, ".%s", tmp.v[i].field);
        tn_causes_add(c->causes, tmp.v[i].reason, p->buf, "%s", tmp.v[i].message);
        path_pop(p, old);
    }
    tn_causes_free(&tmp);
}

static void sc_node(struct sctx *c, const json_t *s, struct path *p, enum level lv, int nested)
{
    if (!json_is_object(s)) {
        cause_plain(c->causes, TN_CAUSE_INVALID, p->buf, "must be a schema object");
        return;
    }
    const char *t = s_type(s);
    json_t *tj = json_object_get(s, "type");
    int ios = s_flag(s, "x-kubernetes-int-or-string");
    int pres = s_flag(s, "x-kubernetes-preserve-unknown-fields");
    int emb = s_flag(s, "x-kubernetes-embedded-resource");
    const json_t *props = json_object_get(s, "properties");
    json_t *addl = json_object_get(s, "additionalProperties");

    static const char *const unsupported[] = {"$ref",           "$schema",      "id",
                                              "definitions",    "dependencies", "patternProperties",
                                              "additionalItems"};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (!json_object_get(s, unsupported[i])) continue;
        char d[64], child[64];
        snprintf(d, sizeof(d), "%s is not supported", unsupported[i]);
        snprintf(child, sizeof(child), ".%s", unsupported[i]);
        sc_sub(c, p, child, TN_CAUSE_FORBIDDEN, d);
    }
    if (tj && !t) {
        sc_sub(c, p, ".type", TN_CAUSE_INVALID, "must be a string");
    } else if (t && strcmp(t, "null") == 0) {
        sc_sub(c, p, ".type", TN_CAUSE_FORBIDDEN,
               "type cannot be set to null, use nullable as an alternative");
    } else if (t && !known_type(t)) {
        size_t old = path_add(p, ".type");
        struct tn_buf b;
        tn_buf_init(&b, 0);
        tn_buf_puts(&b, "Unsupported value: ");
        quote(&b, t, strlen(t));
        tn_buf_puts(&b, ": supported values: \"array\", \"boolean\", \"integer\", \"number\", "
                        "\"object\", \"string\"");
        add_cause(c->causes, TN_CAUSE_NOT_SUPPORTED, p->buf, &b);
        path_pop(p, old);
    }

    if (nested) {
        /* inside allOf/anyOf/oneOf/not only value validations are allowed */
        if (t) sc_sub(c, p, ".type", TN_CAUSE_FORBIDDEN, "must be empty to be structural");
        if (addl)
            sc_sub(c, p, ".additionalProperties", TN_CAUSE_FORBIDDEN,
                   "must be undefined to be structural");
        if (json_object_get(s, "default"))
            sc_sub(c, p, ".default", TN_CAUSE_FORBIDDEN, "must be undefined to be structural");
        if (json_object_get(s, "description"))
            sc_sub(c, p, ".description", TN_CAUSE_FORBIDDEN, "must be empty to be structural");
        if (json_object_get(s, "title"))
            sc_sub(c, p, ".title", TN_CAUSE_FORBIDDEN, "must be empty to be structural");
        if (s_flag(s, "nullable"))
            sc_sub(c, p, ".nullable", TN_CAUSE_FORBIDDEN, "must be false to be structural");
        static const char *const xs[] = {"x-kubernetes-preserve-unknown-fields",
                                         "x-kubernetes-embedded-resource",
                                         "x-kubernetes-int-or-string",
                                         "x-kubernetes-list-type",
                                         "x-kubernetes-list-map-keys",
                                         "x-kubernetes-map-type",
                                         "x-kubernetes-validations"};
        for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
            if (!json_object_get(s, xs[i])) continue;
            char child[64];
            snprintf(child, sizeof(child), ".%s", xs[i]);
            sc_sub(c, p, child, TN_CAUSE_FORBIDDEN,
                   strncmp(xs[i] + 13, "preserve", 8) == 0 ||
                           strncmp(xs[i] + 13, "embedded", 8) == 0 ||
                           strncmp(xs[i] + 13, "int-or", 6) == 0
                       ? "must be false to be structural"
                       : "must be undefined to be structural");
        }
    } else {
        if (!t && !ios && !pres && !emb) {
            sc_sub(c, p, ".type", TN_CAUSE_REQUIRED,
                   lv == LV_ROOT   ? "must not be empty at the root"
                   : lv == LV_ITEM ? "must not be empty for specified array items"
                                   : "must not be empty for specified object fields");
        }
        if (lv == LV_ROOT && t && strcmp(t, "object") != 0 && known_type(t))
            sc_subval(c, p, ".type", TN_CAUSE_INVALID, tj, "must be object at the root");
        if (emb && (!t || strcmp(t, "object") != 0)) {
            if (!t)
                sc_sub(c, p, ".type", TN_CAUSE_REQUIRED,
                       "must be object if x-kubernetes-embedded-resource is true");
            else
                sc_subval(c, p, ".type", TN_CAUSE_INVALID, tj,
                          "must be object if x-kubernetes-embedded-resource is true");
        }
        if (emb && addl)
            sc_sub(c, p, ".additionalProperties", TN_CAUSE_FORBIDDEN,
                   "must not be used if x-kubernetes-embedded-resource is set");
        if (emb && !pres && json_object_size(props) == 0)
            sc_sub(c, p, ".properties", TN_CAUSE_REQUIRED,
                   "must not be empty if x-kubernetes-embedded-resource is true without "
                   "x-kubernetes-preserve-unknown-fields");
        if (ios && pres)
            sc_subval(c, p, ".x-kubernetes-preserve-unknown-fields", TN_CAUSE_INVALID, json_true(),
                      "must be false if x-kubernetes-int-or-string is true");
        if (ios && emb)
            sc_subval(c, p, ".x-kubernetes-embedded-resource", TN_CAUSE_INVALID, json_true(),
                      "must be false if x-kubernetes-int-or-string is true");
        if (ios && t)
            sc_subval(c, p, ".type", TN_CAUSE_INVALID, tj,
                      "must be empty if x-kubernetes-int-or-string is true");
    }

    if (props && t && strcmp(t, "object") != 0)
        sc_sub(c, p, ".properties", TN_CAUSE_FORBIDDEN, "must only be used with type object");
    if (props && addl)
        sc_sub(c, p, ".additionalProperties", TN_CAUSE_FORBIDDEN,
               "additionalProperties and properties are mutual exclusive");
    if (json_is_false(addl))
        sc_sub(c, p, ".additionalProperties", TN_CAUSE_FORBIDDEN,
               "additionalProperties cannot be set to false");
    if (addl && t && strcmp(t, "object") != 0)
        sc_sub(c, p, ".additionalProperties", TN_CAUSE_FORBIDDEN,
               "must only be used with type object");
    if (s_flag(s, "uniqueItems"))
        sc_sub(c, p, ".uniqueItems", TN_CAUSE_FORBIDDEN,
               "uniqueItems cannot be set to true since the runtime complexity becomes quadratic");

    json_t *items = json_object_get(s, "items");
    if (json_is_array(items))
        sc_sub(c, p, ".items", TN_CAUSE_FORBIDDEN,
               "items must be a schema object and not an array");
    else if (!nested && t && strcmp(t, "array") == 0 && !items)
        sc_sub(c, p, ".items", TN_CAUSE_REQUIRED, "must be specified");

    const char *pat = json_string_value(json_object_get(s, "pattern"));
    if (pat) {
        regex_t re;
        struct tn_err err = {0};
        if (tn_regex_compile(&re, pat, &err) == 0) {
            regfree(&re);
        } else {
            char d[TN_ERR_MSG_MAX + 64];
            snprintf(d, sizeof(d), "must be a valid regular expression, but isn't: %s", err.msg);
            sc_subval(c, p, ".pattern", TN_CAUSE_INVALID, json_object_get(s, "pattern"), d);
        }
    }

    /* list types */
    json_t *ltj = json_object_get(s, "x-kubernetes-list-type");
    const char *lt = json_string_value(ltj);
    json_t *mkeys = json_object_get(s, "x-kubernetes-list-map-keys");
    if (ltj && !nested) {
        if (!lt ||
            (strcmp(lt, "atomic") != 0 && strcmp(lt, "set") != 0 && strcmp(lt, "map") != 0)) {
            size_t old = path_add(p, ".x-kubernetes-list-type");
            struct tn_buf b;
            tn_buf_init(&b, 0);
            tn_buf_puts(&b, "Unsupported value: ");
            fmt_value(&b, ltj);
            tn_buf_puts(&b, ": supported values: \"atomic\", \"map\", \"set\"");
            add_cause(c->causes, TN_CAUSE_NOT_SUPPORTED, p->buf, &b);
            path_pop(p, old);
        } else if (t && strcmp(t, "array") != 0) {
            sc_sub(c, p, ".x-kubernetes-list-type", TN_CAUSE_INVALID,
                   "must only be used with type array");
        }
        if (lt && strcmp(lt, "map") == 0) {
            if (json_array_size(mkeys) == 0) {
                sc_sub(c, p, ".x-kubernetes-list-map-keys", TN_CAUSE_REQUIRED,
                       "must not be empty if x-kubernetes-list-type is map");
            } else if (json_is_object(items)) {
                const char *it = s_type(items);
                if (!it || strcmp(it, "object") != 0) {
                    sc_sub(c, p, ".items.type", TN_CAUSE_INVALID,
                           "must be object if parent array's x-kubernetes-list-type is map");
                } else {
                    size_t i;
                    json_t *k;
                    json_array_foreach(mkeys, i, k)
                    {
                        const json_t *kp = json_object_get(
                            s_props(items), json_string_value(k) ? json_string_value(k) : "");
                        const char *kt = kp ? s_type(kp) : NULL;
                        char child[96];
                        snprintf(child, sizeof(child), ".x-kubernetes-list-map-keys[%zu]", i);
                        if (!kp)
                            sc_sub(c, p, child, TN_CAUSE_INVALID,
                                   "entries must all be names of item properties");
                        else if (kt && (strcmp(kt, "object") == 0 || strcmp(kt, "array") == 0))
                            sc_sub(c, p, child, TN_CAUSE_INVALID,
                                   "must be a scalar-typed property of the items");
                    }
                }
            }
        } else if (lt && strcmp(lt, "set") == 0 && json_is_object(items)) {
            const char *it = s_type(items);
            if (it && (strcmp(it, "object") == 0 || strcmp(it, "array") == 0))
                sc_sub(c, p, ".items.type", TN_CAUSE_INVALID,
                       "must be a scalar type if parent array's x-kubernetes-list-type is set");
        }
    }
    if (mkeys && !nested && (!lt || strcmp(lt, "map") != 0))
        sc_sub(c, p, ".x-kubernetes-list-map-keys", TN_CAUSE_FORBIDDEN,
               "must be empty if x-kubernetes-list-type is not map");

    /* CEL rules must compile */
    json_t *rules = json_object_get(s, "x-kubernetes-validations");
    if (rules && !nested) {
        size_t i;
        json_t *r;
        json_array_foreach(rules, i, r)
        {
            const char *src = json_string_value(json_object_get(r, "rule"));
            char child[96];
            if (!src) {
                snprintf(child, sizeof(child), ".x-kubernetes-validations[%zu].rule", i);
                sc_sub(c, p, child, TN_CAUSE_REQUIRED, "");
                continue;
            }
            struct tn_cel_prog *prog = NULL;
            struct tn_err err = {0};
            if (tn_cel_compile(src, &prog, &err) != 0) {
                char d[TN_ERR_MSG_MAX + 32];
                snprintf(d, sizeof(d), "compilation failed: %s", err.msg);
                snprintf(child, sizeof(child), ".x-kubernetes-validations[%zu].rule", i);
                sc_subval(c, p, child, TN_CAUSE_INVALID, json_object_get(r, "rule"), d);
            }
            tn_cel_free(prog);
            const char *mexpr = json_string_value(json_object_get(r, "messageExpression"));
            if (mexpr && tn_cel_compile(mexpr, &prog, &err) != 0) {
                char d[TN_ERR_MSG_MAX + 64];
                snprintf(d, sizeof(d), "messageExpression compilation failed: %s", err.msg);
                snprintf(child, sizeof(child), ".x-kubernetes-validations[%zu].messageExpression",
                         i);
                sc_subval(c, p, child, TN_CAUSE_INVALID, json_object_get(r, "messageExpression"),
                          d);
            } else if (mexpr) {
                tn_cel_free(prog);
            }
            const char *reason = json_string_value(json_object_get(r, "reason"));
            if (reason && strcmp(reason, TN_CAUSE_INVALID) != 0 &&
                strcmp(reason, TN_CAUSE_FORBIDDEN) != 0 && strcmp(reason, TN_CAUSE_REQUIRED) != 0 &&
                strcmp(reason, TN_CAUSE_DUPLICATE) != 0) {
                snprintf(child, sizeof(child), ".x-kubernetes-validations[%zu].reason", i);
                size_t old = path_add(p, "%s", child);
                struct tn_buf b;
                tn_buf_init(&b, 0);
                tn_buf_puts(&b, "Unsupported value: ");
                quote(&b, reason, strlen(reason));
                tn_buf_puts(&b,
                            ": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", "
                            "\"FieldValueInvalid\", \"FieldValueRequired\"");
                add_cause(c->causes, TN_CAUSE_NOT_SUPPORTED, p->buf, &b);
                path_pop(p, old);
            }
        }
    }

    /* root: kind/apiVersion/metadata */
    if (!nested && (lv == LV_ROOT || emb) && props) {
        static const char *const strs[] = {"kind", "apiVersion"};
        for (size_t i = 0; i < 2; i++) {
            const json_t *ps = json_object_get(props, strs[i]);
            const char *pt = ps ? s_type(ps) : NULL;
            if (ps && (!pt || strcmp(pt, "string") != 0)) {
                char child[64];
                snprintf(child, sizeof(child), ".properties[%s].type", strs[i]);
                json_t *v = json_string(pt ? pt : "");
                if (v) sc_subval(c, p, child, TN_CAUSE_INVALID, v, "must be string");
                json_decref(v);
            }
        }
        const json_t *md = json_object_get(props, "metadata");
        if (md) {
            const char *mt = s_type(md);
            if (!mt || strcmp(mt, "object") != 0) {
                json_t *v = json_string(mt ? mt : "");
                if (v)
                    sc_subval(c, p, ".properties[metadata].type", TN_CAUSE_INVALID, v,
                              "must be object");
                json_decref(v);
            }
            if (lv == LV_ROOT) {
                int bad = 0;
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)md, k, v)
                {
                    if (strcmp(k, "type") == 0 || strcmp(k, "description") == 0) continue;
                    if (strcmp(k, "properties") == 0 && json_is_object(v)) {
                        const char *pk;
                        json_t *pv;
                        json_object_foreach(v, pk, pv)
                        {
                            if (strcmp(pk, "name") != 0 && strcmp(pk, "generateName") != 0) bad = 1;
                        }
                        continue;
                    }
                    bad = 1;
                }
                if (bad)
                    sc_sub(c, p, ".properties[metadata]", TN_CAUSE_FORBIDDEN,
                           "must not specify anything other than name and generateName, but "
                           "metadata is implicitly specified");
            }
        }
    }

    /* defaults must be valid against their own schema */
    if (!nested && json_object_get(s, "default")) sc_check_default(c, s, p);

    /* children */
    if (json_is_object(props)) {
        const char *k;
        json_t *ps;
        json_object_foreach((json_t *)props, k, ps)
        {
            size_t old = path_add(p, ".properties[%s]", k);
            if (!(lv == LV_ROOT && strcmp(k, "metadata") == 0)) sc_node(c, ps, p, LV_FIELD, nested);
            path_pop(p, old);
        }
    } else if (props) {
        sc_sub(c, p, ".properties", TN_CAUSE_INVALID, "must be an object");
    }
    if (json_is_object(addl)) {
        size_t old = path_add(p, ".additionalProperties");
        sc_node(c, addl, p, LV_FIELD, nested);
        path_pop(p, old);
    }
    if (json_is_object(items)) {
        size_t old = path_add(p, ".items");
        sc_node(c, items, p, LV_ITEM, nested);
        path_pop(p, old);
    }
    sc_nested_list(c, s, p, "allOf", ios);
    sc_nested_list(c, s, p, "anyOf", ios);
    sc_nested_list(c, s, p, "oneOf", 0);
    json_t *not = json_object_get(s, "not");
    if (not ) {
        size_t old = path_add(p, ".not");
        sc_node(c, not, p, LV_FIELD, 1);
        path_pop(p, old);
    }
}

int tn_schema_check_structural(const json_t *schema, const char *path, struct tn_causes *causes)
{
    size_t before = causes->n;
    struct sctx c = {.causes = causes};
    struct path p;
    path_init(&p, path);
    if (!schema) {
        cause_plain(causes, TN_CAUSE_REQUIRED, p.buf, "");
        return TN_EINVAL;
    }
    sc_node(&c, schema, &p, LV_ROOT, 0);
    return causes->n > before ? TN_EINVAL : 0;
}
