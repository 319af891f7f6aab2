/* jansson helpers used everywhere: dotted-path access, typed getters with defaults, compact
 * dumping and parsing with positioned error messages. Reference rules follow jansson: functions
 * documented "borrowed" return references owned by the container; "new" means the caller must
 * json_decref. Thread-safe as far as the values passed are not shared across threads. */
#ifndef TN_BASE_JSON_H
#define TN_BASE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

/* Borrowed: value at a dotted path ("metadata.labels"), or NULL. Keys cannot contain dots. */
json_t *tn_json_get(const json_t *root, const char *dotted);
/* Borrowed string at path, or def when missing or not a string. */
const char *tn_json_str(const json_t *root, const char *dotted, const char *def);
/* Integer at path, or def. Accepts integers and integral reals. */
long long tn_json_int(const json_t *root, const char *dotted, long long def);
/* Boolean at path, or def. */
int tn_json_bool(const json_t *root, const char *dotted, int def);
/* Borrowed: object at key of parent, created (as {}) when missing or not an object. NULL on OOM. */
json_t *tn_json_obj_ensure(json_t *parent, const char *key);
/* Borrowed: object at dotted path, creating intermediate objects. */
json_t *tn_json_obj_ensure_path(json_t *root, const char *dotted);
/* Sets a string at a dotted path, creating intermediate objects. Return 0 or TN_ENOMEM. */
int tn_json_set_str(json_t *root, const char *dotted, const char *value);

/* Deep equality where numbers compare by value (1 and 1.0 are equal), as Kubernetes compares
 * decoded JSON. NULL equals only NULL. */
int tn_json_equal(const json_t *a, const json_t *b);

/* New: parses a JSON document; on failure fills err with "line L column C: reason". */
json_t *tn_json_parse(const char *data, size_t len, struct tn_err *err);
/* malloc'd compact JSON text (caller frees), or NULL on OOM. */
char *tn_json_dump(const json_t *v);

/* Base64 (standard alphabet, padded). Returns malloc'd, NUL-terminated output or NULL. */
char *tn_base64_encode(const unsigned char *data, size_t len);
/* Returns 0 and a malloc'd buffer (NUL-terminated, *outlen bytes), or TN_EINVAL. */
int tn_base64_decode(const char *s, unsigned char **out, size_t *outlen);

#endif
