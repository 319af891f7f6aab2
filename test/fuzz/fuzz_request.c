/* libFuzzer target for what tandem-apiserver does with a request before it touches storage:
 * the first line is parsed as a label selector and as a field selector, the rest as a body
 * (YAML and JSON decoders), which is then used as a merge, JSON and strategic patch of a Pod and
 * as a custom resource pruned, defaulted and validated (incl. CEL) against a fixed schema. */
#include "apiserver/causes.h"
#include "apiserver/patch.h"
#include "apiserver/schema.h"
#include "apiserver/selector.h"
#include "base/json.h"
#include "base/yaml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *POD =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":"
    "\"a\"},"
    "\"finalizers\":[\"x\"]},\"spec\":{\"nodeName\":\"n\",\"containers\":[{\"name\":\"c\","
    "\"env\":[{\"name\":\"A\",\"value\":\"1\"}],\"ports\":[{\"containerPort\":80}]}]},"
    "\"status\":{\"phase\":\"Running\"}}";

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"required\":[\"mode\"],"
    "\"x-kubernetes-validations\":[{\"rule\":\"self.size <= 5 || self.mode == 'slow'\"}],"
    "\"properties\":{\"size\":{\"type\":\"integer\",\"minimum\":1,\"default\":3},\"mode\":{"
    "\"type\":\"string\",\"enum\":[\"fast\",\"slow\"]},\"name\":{\"type\":\"string\","
    "\"maxLength\":20,\"pattern\":\"^[a-z]+$\"},\"items\":{\"type\":\"array\",\"items\":{"
    "\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}}}}";

static json_t *pod, *schema;

static void init(void)
{
    pod = json_loads(POD, 0, NULL);
    schema = json_loads(SCHEMA, 0, NULL);
    if (!pod || !schema) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pod) init();
    const char *d = (const char *)data;
    const char *nl = memchr(d, '\n', size);
    size_t l1 = nl ? (size_t)(nl - d) : size;
    char *line = strndup(d, l1);
    struct tn_err err;
    struct tn_labelsel *ls = NULL;
    struct tn_fieldsel *fs = NULL;
    if (line && tn_labelsel_parse(line, &ls, &err) == 0) {
        tn_labelsel_matches(ls, pod);
        free(tn_labelsel_to_string(ls));
        tn_labelsel_free(ls);
    }
    if (line && tn_fieldsel_parse(line, &fs, &err) == 0) {
        tn_fieldsel_validate(fs, "pods", 1, &err);
        tn_fieldsel_matches_resource(fs, "pods", pod);
        tn_fieldsel_free(fs);
    }
    free(line);
    if (!nl) return 0;
    const char *body = nl + 1;
    size_t blen = size - l1 - 1;
    json_t *bodies[2] = {tn_yaml_load_one(body, blen, NULL, &err), tn_json_parse(body, blen, &err)};
    for (int i = 0; i < 2; i++) {
        json_t *b = bodies[i];
        if (!b) continue;
        json_t *r = tn_patch_merge(pod, b, &err);
        json_decref(r);
        r = tn_patch_json(pod, b, &err);
        json_decref(r);
        r = tn_patch_strategic(pod, b, &err);
        json_decref(r);
        if (json_is_object(b)) {
            json_t *obj = json_deep_copy(b);
            struct tn_causes c;
            tn_causes_init(&c);
            tn_schema_prune(schema, obj, &c);
            tn_schema_default(schema, obj);
            tn_schema_validate(schema, obj, &c);
            tn_causes_free(&c);
            json_decref(obj);
        }
        json_decref(b);
    }
    return 0;
}
