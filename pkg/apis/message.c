/* Sedna's GM<->LC envelope: strict decoding with field-naming errors, encoding in Go's field
 * order, recognition of the LC hello. See message.h. */
#include "apis/message.h"
#include "base/buf.h"

#include <stdlib.h>
#include <string.h>

static const char *const hdr_keys[4] = {"namespace", "resourceKind", "resourceName", "operation"};

void tn_msg_free(struct tn_msg *m)
{
    if (!m) return;
    free(m->ns);
    free(m->kind);
    free(m->name);
    free(m->op);
    free(m->content);
    if (m->json) json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

/* Standard alphabet with padding, as Go's base64.StdEncoding wants (it skips CR and LF). */
static int b64_valid(const char *s)
{
    size_t n = 0, pad = 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (ch == '\r' || ch == '\n') continue;
        if (ch == '=') {
            pad++;
        } else if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                            (ch >= '0' && ch <= '9') || ch == '+' || ch == '/')) {
            return 0;
        }
        n++;
    }
    return n % 4 == 0 && pad <= 2;
}

/* Fills the header fields of m from obj (the header object, or the bare hello). */
static int take_header(struct tn_msg *m, json_t *obj, const char *prefix, struct tn_err *err)
{
    char **dst[4] = {&m->ns, &m->kind, &m->name, &m->op};
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(obj, hdr_keys[i]);
        if (v && !json_is_string(v) && !json_is_null(v))
            return tn_err_set(err, TN_EINVAL, "%s%s must be a string, not %s", prefix, hdr_keys[i],
                              json_is_object(v) ? "an object" : "another type");
        *dst[i] = strdup(json_is_string(v) ? json_string_value(v) : "");
        if (!*dst[i]) return tn_err_set(err, TN_ENOMEM, "out of memory");
    }
    return 0;
}

static int is_hello_shape(json_t *root)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int known = 0;
        for (int i = 0; i < 4; i++)
            known |= strcmp(key, hdr_keys[i]) == 0;
        if (!known) return 0;
    }
    return 1;
}

int tn_msg_decode(const char *data, size_t len, struct tn_msg *m, struct tn_err *err)
{
    memset(m, 0, sizeof(*m));
    if (len > TN_MSG_MAX_SIZE)
        return tn_err_set(err, TN_ETOOBIG, "message of %zu bytes exceeds the limit of %zu", len,
                          TN_MSG_MAX_SIZE);
    struct tn_err perr;
    json_t *root = tn_json_parse(data, len, &perr);
    int rc = 0;
    if (!root) return tn_err_set(err, TN_EINVAL, "message is not JSON: %s", perr.msg);
    if (!json_is_object(root)) {
        rc = tn_err_set(err, TN_EINVAL, "message is not a JSON object");
        goto out;
    }
    json_t *hdr = json_object_get(root, "header");
    if (!hdr) {
        if (!is_hello_shape(root)) {
            rc = tn_err_set(err, TN_EINVAL, "message has no header");
            goto out;
        }
        m->is_hello = 1; /* the LC's bare header object */
        rc = take_header(m, root, "hello.", err);
        goto out;
    }
    if (!json_is_object(hdr)) {
        rc = tn_err_set(err, TN_EINVAL, "header must be an object");
        goto out;
    }
    if ((rc = take_header(m, hdr, "header.", err))) goto out;
    json_t *content = json_object_get(root, "content");
    if (!content || json_is_null(content)) goto out;
    if (!json_is_string(content)) {
        rc = tn_err_set(err, TN_EINVAL, "content must be a base64 string or null");
        goto out;
    }
    const char *b64 = json_string_value(content);
    if (!*b64) goto out;
    if (!b64_valid(b64) || tn_base64_decode(b64, &m->content, &m->content_len)) {
        rc = tn_err_set(err, TN_EINVAL, "content is not valid base64");
        goto out;
    }
    if (m->content_len == 0) {
        free(m->content);
        m->content = NULL;
        goto out;
    }
    m->json = tn_json_parse((const char *)m->content, m->content_len, &perr);
    if (!m->json) rc = tn_err_set(err, TN_EINVAL, "content is not JSON: %s", perr.msg);
out:
    json_decref(root);
    if (rc) tn_msg_free(m);
    return rc;
}

char *tn_msg_encode(const char *ns, const char *kind, const char *name, const char *op,
                    const void *content, size_t content_len, size_t *out_len, struct tn_err *err)
{
    if (content_len > TN_MSG_MAX_SIZE / 4 * 3) {
        tn_err_set(err, TN_ETOOBIG, "content of %zu bytes exceeds the message limit of %zu",
                   content_len, TN_MSG_MAX_SIZE);
        return NULL;
    }
    const char *vals[4] = {ns, kind, name, op};
    struct tn_buf b;
    tn_buf_init(&b, TN_MSG_MAX_SIZE);
    int rc = tn_buf_puts(&b, "{\"header\":{");
    for (int i = 0; i < 4 && !rc; i++) {
        rc = tn_buf_printf(&b, "%s\"%s\":", i ? "," : "", hdr_keys[i]);
        if (!rc) rc = tn_buf_json_str(&b, vals[i] ? vals[i] : "");
    }
    if (!rc) rc = tn_buf_puts(&b, "},\"content\":");
    if (!rc && content_len) {
        char *enc = tn_base64_encode(content, content_len);
        if (!enc) {
            rc = TN_ENOMEM;
        } else {
            rc = tn_buf_putc(&b, '"');
            if (!rc) rc = tn_buf_puts(&b, enc);
            if (!rc) rc = tn_buf_putc(&b, '"');
            free(enc);
        }
    } else if (!rc) {
        rc = tn_buf_puts(&b, "null");
    }
    if (!rc) rc = tn_buf_putc(&b, '}');
    if (rc) {
        tn_buf_free(&b);
        tn_err_set(err, rc,
                   rc == TN_ETOOBIG ? "message exceeds the limit of %zu bytes"
                                    : "out of memory (message of up to %zu bytes)",
                   TN_MSG_MAX_SIZE);
        return NULL;
    }
    char *out = tn_buf_steal(&b, out_len);
    if (!out) tn_err_set(err, TN_ENOMEM, "out of memory");
    return out;
}

char *tn_msg_encode_json(const char *ns, const char *kind, const char *name, const char *op,
                         const json_t *content, size_t *out_len, struct tn_err *err)
{
    char *txt = NULL;
    if (content && !(txt = tn_json_dump(content))) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    char *out = tn_msg_encode(ns, kind, name, op, txt, txt ? strlen(txt) : 0, out_len, err);
    free(txt);
    return out;
}

char *tn_msg_hello(size_t *out_len)
{
    static const char hello[] =
        "{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":\"\",\"operation\":\"\"}";
    char *s = strdup(hello);
    if (s && out_len) *out_len = sizeof(hello) - 1;
    return s;
}
