/* libFuzzer target for pkg/base/yaml: any input must either fail cleanly or load into JSON that
 * dumps to YAML which loads back to the same JSON (abort() otherwise, so the fuzzer reports it).
 * Build: see the Makefile's build-fuzz rule; run: bash test/fuzz/run.sh smoke build-fuzz/fuzz_yaml
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn_err err = {0};
    json_t *docs = tn_yaml_load_stream((const char *)data, size, NULL, &err);
    if (!docs) {
        if (err.msg[0] == 0) /* every failure must explain itself */
            abort();
        return 0;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        char *text = tn_yaml_dump(doc);
        if (!text) abort();
        struct tn_err err2 = {0};
        json_t *back = tn_yaml_load_one(text, strlen(text), NULL, &err2);
        if (!back || !json_equal(back, doc)) {
            char *a = json_dumps(doc, JSON_ENCODE_ANY | JSON_COMPACT);
            fprintf(stderr, "round trip failed: %s\n--- dumped:\n%s--- error: %s\n", a ? a : "?",
                    text, back ? "(values differ)" : err2.msg);
            abort();
        }
        json_decref(back);
        free(text);
    }
    json_decref(docs);
    return 0;
}
