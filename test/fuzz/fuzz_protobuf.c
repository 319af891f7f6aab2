/* libFuzzer target for pkg/apiserver/protobuf: any body must either fail with a "protobuf: "
 * message or decode to an object carrying kind and apiVersion that dumps as JSON (abort()
 * otherwise, so the fuzzer reports it). Seeds: bodies captured from kubectl v1.32.
 * Build: see the Makefile's build-fuzz rule; run: bash test/fuzz/run.sh smoke
 * build-fuzz/fuzz_protobuf
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/protobuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn_err err = {0};
    json_t *obj = tn_protobuf_decode((const char *)data, size, &err);
    if (!obj) {
        if (err.code >= 0 || strncmp(err.msg, "protobuf: ", 10) != 0) {
            fprintf(stderr, "failure without a message: code %d msg '%s'\n", err.code, err.msg);
            abort();
        }
        return 0;
    }
    if (!json_is_object(obj) || !json_is_string(json_object_get(obj, "kind")) ||
        !json_is_string(json_object_get(obj, "apiVersion")))
        abort();
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text) abort();
    json_error_t je;
    json_t *back = json_loads(text, 0, &je);
    if (!back || !json_equal(back, obj)) {
        fprintf(stderr, "decoded JSON does not round-trip: %s\n", text);
        abort();
    }
    json_decref(back);
    free(text);
    json_decref(obj);
    return 0;
}
