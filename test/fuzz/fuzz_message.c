/* libFuzzer target for pkg/apis/message: any input must either fail with a message or decode to
 * a header and content that re-encode and decode back to the same header and content (abort()
 * otherwise, so the fuzzer reports it).
 * Build: make build-fuzz/fuzz_message; run: bash test/fuzz/run.sh smoke build-fuzz/fuzz_message
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apis/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct tn_msg *a, const struct tn_msg *b)
{
    return strcmp(a->ns, b->ns) == 0 && strcmp(a->kind, b->kind) == 0 &&
           strcmp(a->name, b->name) == 0 && strcmp(a->op, b->op) == 0 &&
           a->content_len == b->content_len &&
           (a->content_len == 0 || memcmp(a->content, b->content, a->content_len) == 0) &&
           (!a->json) == (!b->json) && (!a->json || json_equal(a->json, b->json));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn_err err = {0};
    struct tn_msg m;
    if (tn_msg_decode((const char *)data, size, &m, &err)) {
        if (err.msg[0] == 0) abort(); /* every failure must explain itself */
        return 0;
    }
    size_t n;
    char *txt = tn_msg_encode(m.ns, m.kind, m.name, m.op, m.content, m.content_len, &n, &err);
    if (!txt) abort();
    struct tn_msg m2;
    struct tn_err err2 = {0};
    if (tn_msg_decode(txt, n, &m2, &err2)) {
        fprintf(stderr, "round trip failed: %s\n%s\n", err2.msg, txt);
        abort();
    }
    if (!same(&m, &m2) || m2.is_hello) {
        fprintf(stderr, "round trip failed: values differ\n%s\n", txt);
        abort();
    }
    tn_msg_free(&m2);
    tn_msg_free(&m);
    free(txt);
    return 0;
}
