/* jansson helpers; see json.h. */
#include "base/json.h"

#include <stdlib.h>
#include <string.h>

json_t *tn_json_get(const json_t *root, const char *dotted)
{
    const json_t *cur = root;
    const char *p = dotted;
    char key[256];
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(key) || !json_is_object(cur)) return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        cur = json_object_get(cur, key);
        p = dot ? dot + 1 : p + n;
    }
    return (json_t *)cur;
}

const char *tn_json_str(const json_t *root, const char *dotted, const char *def)
{
    json_t *v = tn_json_get(root, dotted);
    return json_is_string(v) ? json_string_value(v) : def;
}

long long tn_json_int(const json_t *root, const char *dotted, long long def)
{
    json_t *v = tn_json_get(root, dotted);
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(long long)d) return (long long)d;
    }
    return def;
}

int tn_json_bool(const json_t *root, const char *dotted, int def)
{
    json_t *v = tn_json_get(root, dotted);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *tn_json_obj_ensure(json_t *parent, const char *key)
{
    json_t *v = json_object_get(parent, key);
    if (json_is_object(v)) return v;
    v = json_object();
    if (!v || json_object_set_new(parent, key, v)) return NULL;
    return v;
}

json_t *tn_json_obj_ensure_path(json_t *root, const char *dotted)
{
    json_t *cur = root;
    const char *p = dotted;
    char key[256];
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(key)) return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        cur = tn_json_obj_ensure(cur, key);
        p = dot ? dot + 1 : p + n;
    }
    return cur;
}

int tn_json_set_str(json_t *root, const char *dotted, const char *value)
{
    const char *last = strrchr(dotted, '.');
    json_t *parent = root;
    if (last) {
        char path[512];
        size_t n = (size_t)(last - dotted);
        if (n >= sizeof(path)) return TN_EINVAL;
        memcpy(path, dotted, n);
        path[n] = 0;
        parent = tn_json_obj_ensure_path(root, path);
        if (!parent) return TN_ENOMEM;
    }
    return json_object_set_new(parent, last ? last + 1 : dotted, json_string(value)) ? TN_ENOMEM
                                                                                     : 0;
}

int tn_json_equal(const json_t *a, const json_t *b)
{
    if (a == b) return 1;
    if (!a || !b) return 0;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            if (!tn_json_equal(v, json_object_get(b, k))) return 0;
        }
        return 1;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b)) return 0;
        for (size_t i = 0; i < n; i++)
            if (!tn_json_equal(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    default:
        return 1; /* true, false, null: the same type is the same value */
    }
}

json_t *tn_json_parse(const char *data, size_t len, struct tn_err *err)
{
    json_error_t je;
    json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &je);
    if (!v)
        tn_err_set(err, TN_EINVAL, "invalid JSON at line %d column %d: %s", je.line, je.column,
                   je.text);
    return v;
}

char *tn_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *tn_base64_encode(const unsigned char *data, size_t len)
{
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < len) v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < len) v |= data[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int tn_base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
    size_t len = strlen(s);
    unsigned char *o = malloc(len / 4 * 3 + 4);
    if (!o) return TN_ENOMEM;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '=') break;
        if (c == '\n' || c == '\r' || c == ' ') continue;
        int v = b64val(c);
        if (v < 0) {
            free(o);
            return TN_EINVAL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    o[n] = 0;
    *out = o;
    if (outlen) *outlen = n;
    return 0;
}
