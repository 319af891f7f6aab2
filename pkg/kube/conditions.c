/* metav1.Condition helpers; see conditions.h. Validation mirrors the OpenAPI patterns of
 * metav1.Condition so a bad reason fails here, in the controller, instead of as a 422 from the
 * apiserver on every status write. */
#include "kube/conditions.h"
#include "base/json.h"

#include <string.h>

#include "base/timeutil.h"

#define TYPE_MAX 316
#define REASON_MAX 1024
#define MESSAGE_MAX 32768

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* DNS-1123 subdomain: lowercase labels of [a-z0-9-] joined by dots, alnum at both label ends. */
static int valid_subdomain(const char *s, size_t n)
{
    if (n == 0 || n > 253) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) return 0;
            continue;
        }
        if (i == start || s[start] == '-' || s[i - 1] == '-') return 0;
        start = i + 1;
    }
    return 1;
}

/* Qualified-name "name" part: ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], max 63. */
static int valid_qname(const char *s, size_t n)
{
    if (n == 0 || n > 63) return 0;
    if (!(is_alpha(s[0]) || is_digit(s[0])) || !(is_alpha(s[n - 1]) || is_digit(s[n - 1])))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static int valid_type(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > TYPE_MAX) return 0;
    const char *slash = strchr(t, '/');
    if (!slash) return valid_qname(t, n);
    size_t p = (size_t)(slash - t);
    return valid_subdomain(t, p) && valid_qname(slash + 1, n - p - 1);
}

/* ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ */
static int valid_reason(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > REASON_MAX || !is_alpha(r[0])) return 0;
    for (size_t i = 1; i < n; i++) {
        char c = r[i];
        if (!(is_alpha(c) || is_digit(c) || c == '_' || ((c == ',' || c == ':') && i < n - 1)))
            return 0;
    }
    return 1;
}

int tn_cond_validate(const char *type, const char *cstatus, const char *reason, const char *message,
                     struct tn_err *err)
{
    if (!type || !valid_type(type))
        return tn_err_set(err, TN_EINVAL,
                          "condition type \"%s\": must be a qualified name such as Ready or "
                          "example.com/Ready (at most %d characters)",
                          type ? type : "", TYPE_MAX);
    if (!cstatus ||
        (strcmp(cstatus, "True") && strcmp(cstatus, "False") && strcmp(cstatus, "Unknown")))
        return tn_err_set(err, TN_EINVAL,
                          "condition %s: status \"%s\": must be True, False or Unknown", type,
                          cstatus ? cstatus : "");
    if (!reason || !valid_reason(reason))
        return tn_err_set(err, TN_EINVAL,
                          "condition %s: reason \"%.64s\": must be CamelCase, start with a letter "
                          "and hold only letters, digits, '_', ',' and ':' (1-%d characters)",
                          type, reason ? reason : "", REASON_MAX);
    if (message && strlen(message) > MESSAGE_MAX)
        return tn_err_set(err, TN_EINVAL, "condition %s: message: longer than %d bytes", type,
                          MESSAGE_MAX);
    return 0;
}

/* Index of the condition of this type in the list, or -1. */
static long find(const json_t *conds, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, type)) return (long)i;
    }
    return -1;
}

/* Sets key to a string when it differs; returns 1 if changed, 0 if not, TN_ENOMEM. */
static int set_str(json_t *obj, const char *key, const char *v)
{
    const char *cur = json_string_value(json_object_get(obj, key));
    if (cur && !strcmp(cur, v)) return 0;
    return json_object_set_new(obj, key, json_string(v)) ? TN_ENOMEM : 1;
}

int tn_cond_set(json_t *status, const char *type, const char *cstatus, const char *reason,
                const char *message, long long observed_generation, const char *now_rfc3339)
{
    if (!json_is_object(status) || tn_cond_validate(type, cstatus, reason, message, NULL))
        return TN_EINVAL;
    if (!message) message = "";
    char nowbuf[32];
    if (!now_rfc3339) {
        tn_time_now_rfc3339(nowbuf, sizeof(nowbuf));
        now_rfc3339 = nowbuf;
    }
    json_t *conds = json_object_get(status, "conditions");
    if (!conds || json_is_null(conds)) {
        conds = json_array();
        if (!conds || json_object_set_new(status, "conditions", conds)) return TN_ENOMEM;
    } else if (!json_is_array(conds)) {
        return TN_EINVAL;
    }

    long at = find(conds, type);
    json_t *c;
    int changed = 0, rc;
    if (at < 0) {
        c = json_object();
        if (!c || json_array_append_new(conds, c)) return TN_ENOMEM;
        changed = 1;
        if (json_object_set_new(c, "type", json_string(type))) return TN_ENOMEM;
    } else {
        c = json_array_get(conds, (size_t)at);
    }

    const char *old = json_string_value(json_object_get(c, "status"));
    int flipped = !old || strcmp(old, cstatus) != 0;
    if ((rc = set_str(c, "status", cstatus)) < 0) return rc;
    changed |= rc;

    json_t *og = json_object_get(c, "observedGeneration");
    if (observed_generation >= 0) {
        if (!json_is_integer(og) || json_integer_value(og) != observed_generation) {
            if (json_object_set_new(c, "observedGeneration", json_integer(observed_generation)))
                return TN_ENOMEM;
            changed = 1;
        }
    } else if (og) {
        json_object_del(c, "observedGeneration");
        changed = 1;
    }

    if (flipped || !json_is_string(json_object_get(c, "lastTransitionTime"))) {
        if ((rc = set_str(c, "lastTransitionTime", now_rfc3339)) < 0) return rc;
        changed |= rc;
    }
    if ((rc = set_str(c, "reason", reason)) < 0) return rc;
    changed |= rc;
    if ((rc = set_str(c, "message", message)) < 0) return rc;
    changed |= rc;
    return changed;
}

json_t *tn_cond_get(const json_t *status, const char *type)
{
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds) || !type) return NULL;
    long at = find(conds, type);
    return at < 0 ? NULL : json_array_get(conds, (size_t)at);
}

const char *tn_cond_status(const json_t *status, const char *type)
{
    return json_string_value(json_object_get(tn_cond_get(status, type), "status"));
}

int tn_cond_is_true(const json_t *status, const char *type)
{
    const char *s = tn_cond_status(status, type);
    return s && !strcmp(s, "True");
}

int tn_cond_remove(json_t *status, const char *type)
{
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds) || !type) return 0;
    long at = find(conds, type);
    if (at < 0) return 0;
    json_array_remove(conds, (size_t)at);
    return 1;
}

int tn_status_changed(const json_t *old_status, const json_t *new_status)
{
    int old_empty = !old_status || json_is_null(old_status) ||
                    (json_is_object(old_status) && json_object_size(old_status) == 0);
    int new_empty = !new_status || json_is_null(new_status) ||
                    (json_is_object(new_status) && json_object_size(new_status) == 0);
    if (old_empty || new_empty) return old_empty != new_empty;
    return !tn_json_equal(old_status, new_status);
}
