/* Sedna's GM<->LC envelope (sedna-reference §3.2): one JSON object per websocket text frame,
 *   {"header":{"namespace","resourceKind","resourceName","operation"},"content":"<base64>"}
 * where content is the standard, padded base64 of a JSON document (null or absent = empty).
 * Right after connecting the LC sends a "hello": the bare header object with empty strings and
 * no wrapper; tn_msg_decode recognises it (is_hello) so receivers can ignore it.
 *
 * Ownership: a decoded struct tn_msg owns its strings, content bytes and parsed JSON; release
 * with tn_msg_free. Encoders return malloc'd text the caller frees. Thread-safe (no state). */
#ifndef TN_APIS_MESSAGE_H
#define TN_APIS_MESSAGE_H

#include <stddef.h>

#include "base/err.h"
#include "base/json.h"

#define TN_MSG_OP_INSERT "insert" /* GM->LC: create or replace the object (full JSON) */
#define TN_MSG_OP_UPDATE "update" /* GM->LC: JointInferenceService updates only */
#define TN_MSG_OP_DELETE "delete" /* GM->LC: forget the object */
#define TN_MSG_OP_STATUS "status" /* LC->GM: status report */

/* Largest envelope accepted or produced (the websocket message limit). */
#define TN_MSG_MAX_SIZE ((size_t)16 << 20)

struct tn_msg {
    /* header fields, never NULL after a successful decode ("" when absent or null) */
    char *ns;   /* header.namespace */
    char *kind; /* header.resourceKind, as sent: "dataset", or CamelCase "Dataset" from the LC */
    char *name; /* header.resourceName */
    char *op;   /* header.operation */
    unsigned char *content; /* decoded bytes, NUL-terminated; NULL when empty */
    size_t content_len;
    json_t *json; /* content parsed (owned by the message); NULL when content is empty */
    int is_hello; /* the LC's bare-header hello */
};

/* Decodes one envelope. On success fills *m (caller calls tn_msg_free) and returns 0; on error
 * returns TN_EINVAL (TN_ETOOBIG past TN_MSG_MAX_SIZE, TN_ENOMEM) with err naming the field:
 * "message is not a JSON object", "message has no header", "header.operation must be a
 * string", "content is not valid base64", "content is not JSON: ...". *m is left empty on
 * error. */
int tn_msg_decode(const char *data, size_t len, struct tn_msg *m, struct tn_err *err);
void tn_msg_free(struct tn_msg *m);

/* Encodes an envelope with Go's field order. NULL header fields encode as "". content may be
 * NULL/0 (encoded as null). Returns malloc'd NUL-terminated text (length in *out_len when
 * non-NULL), or NULL with err set (TN_ETOOBIG past TN_MSG_MAX_SIZE, TN_ENOMEM). */
char *tn_msg_encode(const char *ns, const char *kind, const char *name, const char *op,
                    const void *content, size_t content_len, size_t *out_len, struct tn_err *err);
/* Same with content = compact JSON of a value (borrowed; NULL = empty). */
char *tn_msg_encode_json(const char *ns, const char *kind, const char *name, const char *op,
                         const json_t *content, size_t *out_len, struct tn_err *err);
/* The LC hello, exactly as Sedna's LC sends it. malloc'd. */
char *tn_msg_hello(size_t *out_len);

#endif
