/* Patch tests: every example of RFC 7386's appendix and RFC 6902's appendix A (errors included),
 * JSON patch atomicity and pointer edge cases, strategic merge patch on built-in kinds (merge
 * keys, directives, list ordering as the real apiserver orders them), merge patch creation. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/patch.h"
#include "base/json.h"

static json_t *J(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "bad test JSON (%s): %s", je.text, s);
    return v;
}

static void assert_json(const json_t *got, const char *want_s)
{
    json_t *want = J(want_s);
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    ck_assert_msg(got && json_equal((json_t *)got, want), "got %s\nwant %s", g ? g : "NULL", w);
    free(g);
    free(w);
    json_decref(want);
}

typedef json_t *(*patch_fn)(const json_t *, const json_t *, struct tn_err *);

/* Applies and checks the result, and that the inputs were left untouched. */
static void check_patch(patch_fn fn, const char *orig_s, const char *patch_s, const char *want)
{
    json_t *orig = J(orig_s), *patch = J(patch_s);
    json_t *orig_copy = json_deep_copy(orig), *patch_copy = json_deep_copy(patch);
    struct tn_err err = {0};
    json_t *got = fn(orig, patch, &err);
    ck_assert_msg(got != NULL, "patch failed: %s", err.msg);
    assert_json(got, want);
    ck_assert(json_equal(orig, orig_copy));
    ck_assert(json_equal(patch, patch_copy));
    json_decref(got);
    json_decref(orig);
    json_decref(patch);
    json_decref(orig_copy);
    json_decref(patch_copy);
}

static void check_patch_fails(patch_fn fn, const char *orig_s, const char *patch_s, int code,
                              const char *want_msg)
{
    json_t *orig = J(orig_s), *patch = J(patch_s);
    json_t *orig_copy = json_deep_copy(orig);
    struct tn_err err = {0};
    json_t *got = fn(orig, patch, &err);
    ck_assert_msg(got == NULL, "patch unexpectedly succeeded");
    ck_assert_int_eq(err.code, code);
    if (want_msg) ck_assert_str_eq(err.msg, want_msg);
    ck_assert(json_equal(orig, orig_copy));
    json_decref(orig);
    json_decref(patch);
    json_decref(orig_copy);
}

/* ---- RFC 7386 ---- */

START_TEST(merge_rfc7386_appendix)
{
    static const char *cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_patch(tn_patch_merge, cases[i][0], cases[i][1], cases[i][2]);
}
END_TEST

START_TEST(merge_kubernetes_object)
{
    check_patch(tn_patch_merge,
                "{\"metadata\":{\"name\":\"m\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}},"
                "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
                "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}},"
                "\"spec\":{\"containers\":[{\"name\":\"d\"}]}}",
                "{\"metadata\":{\"name\":\"m\",\"labels\":{\"b\":\"2\",\"c\":\"3\"}},"
                "\"spec\":{\"containers\":[{\"name\":\"d\"}]}}");
}
END_TEST

START_TEST(merge_create)
{
    static const char *pairs[][2] = {
        {"{\"a\":\"b\",\"c\":{\"d\":1,\"e\":[1,2]}}", "{\"a\":\"b\",\"c\":{\"d\":2,\"e\":[1,2]}}"},
        {"{\"a\":1,\"b\":2}", "{\"b\":2,\"c\":3}"},
        {"{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{}}}"},
        {"{\"a\":[1,2]}", "{\"a\":[2]}"},
        {"{\"a\":1}", "[1]"},
        {"{\"a\":\"x\"}", "{\"a\":{\"b\":\"y\"}}"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        json_t *o = J(pairs[i][0]), *m = J(pairs[i][1]);
        json_t *p = tn_patch_create_merge(o, m, NULL);
        ck_assert_ptr_nonnull(p);
        json_t *r = tn_patch_merge(o, p, NULL);
        char *ps = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        ck_assert_msg(json_equal(r, m), "case %zu: patch %s does not rebuild", i, ps);
        free(ps);
        json_decref(r);
        json_decref(p);
        json_decref(o);
        json_decref(m);
    }
    json_t *o = J("{\"a\":\"b\",\"c\":{\"d\":1,\"e\":\"f\"},\"g\":[1],\"h\":1}");
    json_t *m = J("{\"a\":\"b\",\"c\":{\"d\":2},\"g\":[1,2],\"i\":true,\"h\":1.0}");
    json_t *p = tn_patch_create_merge(o, m, NULL);
    assert_json(p, "{\"c\":{\"d\":2,\"e\":null},\"g\":[1,2],\"i\":true}");
    json_decref(p);
    p = tn_patch_create_merge(o, o, NULL);
    assert_json(p, "{}");
    json_decref(p);
    json_decref(o);
    json_decref(m);
}
END_TEST

/* ---- RFC 6902 ---- */

START_TEST(json_rfc6902_appendix_a)
{
    /* A.1 */
    check_patch(tn_patch_json, "{\"foo\":\"bar\"}",
                "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
                "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    /* A.2 */
    check_patch(tn_patch_json, "{\"foo\":[\"bar\",\"baz\"]}",
                "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
                "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    /* A.3 */
    check_patch(tn_patch_json, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
                "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
    /* A.4 */
    check_patch(tn_patch_json, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
                "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}");
    /* A.5 */
    check_patch(tn_patch_json, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
                "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
                "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    /* A.6 */
    check_patch(tn_patch_json,
                "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
                "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
                "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    /* A.7 */
    check_patch(tn_patch_json, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
                "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
                "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    /* A.8 */
    check_patch(tn_patch_json, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
                "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
                "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
                "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    /* A.9 */
    check_patch_fails(tn_patch_json, "{\"baz\":\"qux\"}",
                      "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", TN_EINVAL,
                      "json patch operation 0 (test) on path \"/baz\": test failed: value is "
                      "\"qux\", expected \"bar\"");
    /* A.10 */
    check_patch(tn_patch_json, "{\"foo\":\"bar\"}",
                "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
                "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    /* A.11 */
    check_patch(tn_patch_json, "{\"foo\":\"bar\"}",
                "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
                "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    /* A.12 */
    check_patch_fails(tn_patch_json, "{\"foo\":\"bar\"}",
                      "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", TN_EINVAL,
                      "json patch operation 0 (add) on path \"/baz/bat\": parent of the target "
                      "does not exist");
    /* A.13: duplicate "op" members. A strict parser rejects the document; a last-wins parser
     * (jansson, Go) sees a remove of a missing member, which fails as well. */
    const char *a13 = "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]";
    json_error_t je;
    ck_assert_ptr_null(json_loads(a13, JSON_REJECT_DUPLICATES, &je));
    check_patch_fails(tn_patch_json, "{\"foo\":\"bar\"}", a13, TN_EINVAL,
                      "json patch operation 0 (remove) on path \"/baz\": path does not exist");
    /* A.14 */
    check_patch(tn_patch_json, "{\"/\":9,\"~1\":10}",
                "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}");
    /* A.15 */
    check_patch_fails(tn_patch_json, "{\"/\":9,\"~1\":10}",
                      "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", TN_EINVAL,
                      "json patch operation 0 (test) on path \"/~01\": test failed: value is "
                      "10, expected \"10\"");
    /* A.16 */
    check_patch(tn_patch_json, "{\"foo\":[\"bar\"]}",
                "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
                "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}
END_TEST

START_TEST(json_edge_cases)
{
    /* atomic: the failing second op leaves no trace */
    check_patch_fails(tn_patch_json, "{\"a\":1}",
                      "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},"
                      "{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]",
                      TN_EINVAL, NULL);
    /* ~1 and ~0 escapes, whole-document replace, add at end index */
    check_patch(tn_patch_json, "{\"a/b\":1,\"m~n\":2}",
                "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},"
                "{\"op\":\"remove\",\"path\":\"/m~0n\"}]",
                "{\"a/b\":3}");
    check_patch(tn_patch_json, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]",
                "[1]");
    check_patch(tn_patch_json, "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":3}]",
                "{\"a\":[1,2,3]}");
    check_patch(tn_patch_json, "{\"a\":{\"b\":[1]}}",
                "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
                "{\"op\":\"add\",\"path\":\"/c/b/0\",\"value\":0}]",
                "{\"a\":{\"b\":[1]},\"c\":{\"b\":[0,1]}}");
    check_patch(tn_patch_json, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1.0}]",
                "{\"a\":1}");
    check_patch(tn_patch_json, "{\"a\":1}", "[]", "{\"a\":1}");
    check_patch(tn_patch_json, "{\"metadata\":{\"labels\":{\"app\":\"x\"}}}",
                "[{\"op\":\"add\",\"path\":\"/metadata/labels/app.kubernetes.io~1name\","
                "\"value\":\"y\"}]",
                "{\"metadata\":{\"labels\":{\"app\":\"x\",\"app.kubernetes.io/name\":\"y\"}}}");

    check_patch_fails(tn_patch_json, "{\"a\":[1,2]}",
                      "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":3}]", TN_EINVAL,
                      "json patch operation 0 (add) on path \"/a/3\": array index 3 out of "
                      "bounds (length 2)");
    check_patch_fails(tn_patch_json, "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/2\"}]",
                      TN_EINVAL,
                      "json patch operation 0 (remove) on path \"/a/2\": array index 2 out of "
                      "bounds (length 2)");
    check_patch_fails(tn_patch_json, "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]",
                      TN_EINVAL,
                      "json patch operation 0 (remove) on path \"/a/01\": invalid array index "
                      "\"01\"");
    check_patch_fails(tn_patch_json, "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/-\"}]",
                      TN_EINVAL, NULL);
    check_patch_fails(tn_patch_json, "{\"a\":1}",
                      "[{\"op\":\"replace\",\"path\":\"/b\","
                      "\"value\":1}]",
                      TN_EINVAL,
                      "json patch operation 0 (replace) on path \"/b\": path does not exist");
    check_patch_fails(tn_patch_json, "{\"a\":{\"b\":1}}",
                      "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", TN_EINVAL,
                      "json patch operation 0 (move) from \"/a\" to \"/a/b/c\": cannot move a "
                      "value into one of its children");
    check_patch_fails(tn_patch_json, "{\"a\":1}",
                      "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/y\"}]", TN_EINVAL,
                      "json patch operation 0 (copy) from \"/x\" to \"/y\": \"from\" path does "
                      "not exist");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
                      TN_EINVAL,
                      "json patch operation 0 (add) on path \"a\": JSON pointer must be empty or "
                      "start with '/'");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/~2\",\"value\":1}]",
                      TN_EINVAL, NULL);
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\"}]", TN_EINVAL,
                      "json patch operation 0 (add) on path \"/b\": missing \"value\"");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"op\":\"frob\",\"path\":\"/b\"}]", TN_EINVAL,
                      "json patch operation 0: unknown op \"frob\"");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"path\":\"/b\"}]", TN_EINVAL,
                      "json patch operation 0: missing \"op\"");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "{\"op\":\"add\"}", TN_EINVAL,
                      "json patch must be an array of operations");
    check_patch_fails(tn_patch_json, "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", TN_EINVAL,
                      NULL);
    check_patch_fails(tn_patch_json, "{\"a\":\"s\"}",
                      "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", TN_EINVAL, NULL);

    json_t *big = json_array();
    for (int i = 0; i <= TN_PATCH_MAX_JSON_OPS; i++)
        json_array_append_new(big,
                              json_pack("{s:s,s:s,s:i}", "op", "test", "path", "", "value", 1));
    json_t *doc = json_integer(1);
    struct tn_err err = {0};
    ck_assert_ptr_null(tn_patch_json(doc, big, &err));
    ck_assert_int_eq(err.code, TN_ETOOBIG);
    json_decref(doc);
    json_decref(big);
}
END_TEST

/* ---- strategic merge patch ---- */

#define POD_HEAD "\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}"

static void smp(const char *orig, const char *patch, const char *want)
{
    check_patch(tn_patch_strategic, orig, patch, want);
}

START_TEST(smp_containers_by_name)
{
    const char *pod = "{" POD_HEAD ",\"spec\":{\"containers\":["
                      "{\"name\":\"a\",\"image\":\"a:1\"},{\"name\":\"b\",\"image\":\"b:1\"}]}}";
    /* change one container: the other keeps its place */
    smp(pod, "{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"b:2\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\"},"
        "{\"name\":\"b\",\"image\":\"b:2\"}]}}");
    /* a new container goes in front of the server-only ones, as the real apiserver does */
    smp(pod, "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c:1\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c:1\"},"
        "{\"name\":\"a\",\"image\":\"a:1\"},{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* $patch: delete of a container */
    smp(pod, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"delete\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* $patch: replace on the list */
    smp(pod,
        "{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},{\"name\":\"z\",\"image\":"
        "\"z:1\",\"args\":null}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"z\",\"image\":\"z:1\"}]}}");
    /* the list does not exist yet */
    smp("{" POD_HEAD "}", "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}");
    /* primitive lists of a container (args) replace */
    smp("{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"x\",\"y\"]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"z\"]}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"z\"]}]}}");
}
END_TEST

START_TEST(smp_env_and_ports)
{
    const char *pod = "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\","
                      "\"env\":[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"2\"}],"
                      "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]}]}}";
    smp(pod,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"Y\",\"value\":\"3\"},"
        "{\"name\":\"Z\",\"value\":\"4\"}],\"ports\":[{\"containerPort\":80,\"name\":\"http\"}]}]}"
        "}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\","
        "\"env\":[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"3\"},"
        "{\"name\":\"Z\",\"value\":\"4\"}],"
        "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\",\"name\":\"http\"}]}]}}");
    /* null inside a merged element deletes that key; $patch: delete removes an env var */
    smp(pod,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"value\":null},"
        "{\"name\":\"Y\",\"$patch\":\"delete\"}]}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\","
        "\"env\":[{\"name\":\"X\"}],\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]}]}}");
    /* tolerations have no merge key: replaced whole */
    smp("{" POD_HEAD ",\"spec\":{\"tolerations\":[{\"key\":\"a\"}]}}",
        "{\"spec\":{\"tolerations\":[{\"key\":\"b\",\"effect\":null}]}}",
        "{" POD_HEAD ",\"spec\":{\"tolerations\":[{\"key\":\"b\"}]}}");
    /* volumes by name, volumeMounts by mountPath */
    smp("{" POD_HEAD ",\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}],\"containers\":"
        "[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/d\",\"name\":\"v\"}]}]}}",
        "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"medium\":\"Memory\"}}],"
        "\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/d\",\"readOnly\":"
        "true}]}]}}",
        "{" POD_HEAD ",\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"medium\":"
        "\"Memory\"}}],\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/d\","
        "\"name\":\"v\",\"readOnly\":true}]}]}}");
}
END_TEST

START_TEST(smp_set_element_order)
{
    const char *pod = "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"},"
                      "{\"name\":\"c\"}]}}";
    smp(pod,
        "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c\"},{\"name\":\"a\"},"
        "{\"name\":\"b\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"c\"},{\"name\":\"a\"},"
        "{\"name\":\"b\"}]}}");
    /* with a new element placed by the order list */
    smp("{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
        "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":\"n\"},"
        "{\"name\":\"a\"}],\"containers\":[{\"name\":\"n\",\"image\":\"n\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"b\"},{\"name\":\"n\",\"image\":"
        "\"n\"},{\"name\":\"a\"}]}}");
    /* elements missing from the order list keep their place after the ordered ones */
    smp(pod, "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":\"a\"}]}}",
        "{" POD_HEAD ",\"spec\":{\"containers\":[{\"name\":\"b\"},{\"name\":\"a\"},"
        "{\"name\":\"c\"}]}}");
    /* primitive list */
    smp("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{},\"metadata\":{\"finalizers\":"
        "[\"x\",\"y\"]}}",
        "{\"metadata\":{\"$setElementOrder/finalizers\":[\"y\",\"z\",\"x\"],\"finalizers\":"
        "[\"z\"]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{},\"metadata\":{\"finalizers\":"
        "[\"y\",\"z\",\"x\"]}}");
    /* the patch list contradicts the order list */
    check_patch_fails(tn_patch_strategic, pod,
                      "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":"
                      "\"a\"}],\"containers\":[{\"name\":\"a\",\"image\":\"1\"},{\"name\":\"b\","
                      "\"image\":\"2\"}]}}",
                      TN_EINVAL,
                      "spec.containers: the order in patch list [{\"image\":\"1\",\"name\":\"a\"},"
                      "{\"image\":\"2\",\"name\":\"b\"}] doesn't match $setElementOrder/containers "
                      "list [{\"name\":\"b\"},{\"name\":\"a\"}]");
}
END_TEST

START_TEST(smp_finalizers)
{
    const char *pod = "{" POD_HEAD ",\"spec\":{}}";
    json_t *o = J(pod);
    json_object_set_new(json_object_get(o, "metadata"), "finalizers", J("[\"a\",\"b\",\"c\"]"));
    char *os = json_dumps(o, JSON_COMPACT);
    /* $deleteFromPrimitiveList */
    smp(os, "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\",\"zz\"]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"finalizers\":"
        "[\"a\",\"c\"]},\"spec\":{}}");
    /* merge as a set: existing members keep their place, new ones go first */
    smp(os, "{\"metadata\":{\"finalizers\":[\"b\",\"d\"]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"finalizers\":"
        "[\"a\",\"b\",\"d\",\"c\"]},\"spec\":{}}");
    smp(os, "{\"metadata\":{\"finalizers\":[\"d\"]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"finalizers\":"
        "[\"d\",\"a\",\"b\",\"c\"]},\"spec\":{}}");
    /* what kubectl sends for [a,b,c] -> [b,c,e] */
    smp(os,
        "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"],"
        "\"$setElementOrder/finalizers\":[\"b\",\"c\",\"e\"],\"finalizers\":[\"e\"]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"finalizers\":"
        "[\"b\",\"c\",\"e\"]},\"spec\":{}}");
    /* null removes the list */
    smp(os, "{\"metadata\":{\"finalizers\":null}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{}}");
    free(os);
    json_decref(o);
}
END_TEST

START_TEST(smp_maps_and_directives)
{
    const char *pod = "{" POD_HEAD ",\"spec\":{\"nodeSelector\":{\"a\":\"1\",\"b\":\"2\"}}}";
    /* maps merge; null deletes; a new map drops its nulls */
    smp(pod,
        "{\"metadata\":{\"labels\":{\"x\":\"1\",\"y\":null}},\"spec\":{\"nodeSelector\":"
        "{\"a\":null,\"c\":\"3\"}}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":"
        "{\"x\":\"1\"}},\"spec\":{\"nodeSelector\":{\"b\":\"2\",\"c\":\"3\"}}}");
    /* $patch: replace on a map */
    smp(pod, "{\"spec\":{\"nodeSelector\":{\"$patch\":\"replace\",\"z\":\"9\"}}}",
        "{" POD_HEAD ",\"spec\":{\"nodeSelector\":{\"z\":\"9\"}}}");
    /* $patch: delete on a map empties it (apimachinery's mergeMap) */
    smp(pod, "{\"spec\":{\"nodeSelector\":{\"$patch\":\"delete\"}}}",
        "{" POD_HEAD ",\"spec\":{\"nodeSelector\":{}}}");
    /* ... and is a no-op when the map does not exist */
    smp(pod, "{\"spec\":{\"affinity\":{\"$patch\":\"delete\"}}}", pod);
    check_patch_fails(tn_patch_strategic, pod,
                      "{\"spec\":{\"nodeSelector\":{\"$patch\":\"frob\"}}}", TN_EINVAL,
                      "spec.nodeSelector: unknown patch type: frob in map: {\"$patch\":\"frob\"}");
    check_patch_fails(tn_patch_strategic, pod, "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
                      TN_EINVAL,
                      "spec.containers: map: {\"image\":\"x\"} does not contain declared merge "
                      "key: name");
    check_patch_fails(tn_patch_strategic, pod,
                      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"merge\"}]}}",
                      TN_EINVAL,
                      "spec.containers: merging lists cannot yet be specified in the patch");
    check_patch_fails(tn_patch_strategic, pod, "[]", TN_EINVAL,
                      "strategic merge patch must be a JSON object");
}
END_TEST

START_TEST(smp_retain_keys)
{
    const char *dep = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"strategy\":"
                      "{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}}}}";
    smp(dep, "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"strategy\":"
        "{\"type\":\"Recreate\"}}}");
    check_patch_fails(tn_patch_strategic, dep,
                      "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"rollingUpdate\":"
                      "{}}}}",
                      TN_EINVAL,
                      "spec.strategy: invalid patch format of retainKeys: rollingUpdate is not in "
                      "the $retainKeys list");
}
END_TEST

START_TEST(smp_other_kinds)
{
    /* Deployment: the PodSpec rules apply under spec.template.spec */
    smp("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":1,\"template\":"
        "{\"metadata\":{\"labels\":{\"app\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"a\","
        "\"image\":\"a:1\",\"env\":[{\"name\":\"E\",\"value\":\"1\"}]},{\"name\":\"b\"}]}}},"
        "\"status\":{\"conditions\":[{\"type\":\"Available\",\"status\":\"False\"},"
        "{\"type\":\"Progressing\",\"status\":\"True\"}]}}",
        "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\","
        "\"image\":\"a:2\",\"env\":[{\"name\":\"F\",\"value\":\"2\"}]}]}}},"
        "\"status\":{\"conditions\":[{\"type\":\"Available\",\"status\":\"True\"}]}}",
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":3,\"template\":"
        "{\"metadata\":{\"labels\":{\"app\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"a\","
        "\"image\":\"a:2\",\"env\":[{\"name\":\"F\",\"value\":\"2\"},{\"name\":\"E\",\"value\":"
        "\"1\"}]},{\"name\":\"b\"}]}}},"
        "\"status\":{\"conditions\":[{\"type\":\"Available\",\"status\":\"True\"},"
        "{\"type\":\"Progressing\",\"status\":\"True\"}]}}");
    /* Service ports by port */
    smp("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"x\"},"
        "\"ports\":[{\"port\":80,\"targetPort\":8080},{\"port\":443}]}}",
        "{\"spec\":{\"selector\":{\"tier\":\"fe\"},\"ports\":[{\"port\":443,\"name\":\"https\"}]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"x\","
        "\"tier\":\"fe\"},\"ports\":[{\"port\":80,\"targetPort\":8080},{\"port\":443,\"name\":"
        "\"https\"}]}}");
    /* Node status conditions and addresses by type */
    smp("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"status\":{\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"False\"},{\"type\":\"DiskPressure\",\"status\":\"False\"}],\"addresses\":"
        "[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}]}}",
        "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":"
        "[{\"type\":\"Hostname\",\"address\":\"edge-1\"}]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"status\":{\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"},{\"type\":\"DiskPressure\",\"status\":\"False\"}],\"addresses\":"
        "[{\"type\":\"Hostname\",\"address\":\"edge-1\"},{\"type\":\"InternalIP\",\"address\":"
        "\"10.0.0.1\"}]}}");
    /* ownerReferences by uid; ConfigMap data merges as a map */
    smp("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"ownerReferences\":"
        "[{\"uid\":\"u1\",\"name\":\"a\"}]},\"data\":{\"k\":\"v\"}}",
        "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u1\",\"controller\":true}]},\"data\":"
        "{\"k2\":\"v2\"}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"ownerReferences\":"
        "[{\"uid\":\"u1\",\"name\":\"a\",\"controller\":true}]},\"data\":{\"k\":\"v\",\"k2\":"
        "\"v2\"}}");
    /* Role rules have no merge key: replaced */
    smp("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\",\"rules\":"
        "[{\"verbs\":[\"get\"]}]}",
        "{\"rules\":[{\"verbs\":[\"list\"]}]}",
        "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\",\"rules\":"
        "[{\"verbs\":[\"list\"]}]}");
}
END_TEST

START_TEST(smp_custom_resources)
{
    const char *msg = "strategic merge patch is not supported for custom resources; use --type "
                      "merge";
    check_patch_fails(tn_patch_strategic,
                      "{\"apiVersion\":\"tandem.io/v1alpha1\",\"kind\":\"Model\",\"spec\":{}}",
                      "{\"spec\":{\"x\":1}}", TN_EUNSUPPORTED, msg);
    /* a CRD that happens to be called Deployment is still a custom resource */
    check_patch_fails(tn_patch_strategic,
                      "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Deployment\"}",
                      "{\"spec\":{}}", TN_EUNSUPPORTED, msg);
    ck_assert(tn_patch_strategic_supported("apps/v1", "Deployment"));
    ck_assert(tn_patch_strategic_supported("v1", "Pod"));
    ck_assert(!tn_patch_strategic_supported("apps/v1", "Pod"));
    ck_assert(!tn_patch_strategic_supported("tandem.io/v1", "Model"));
}
END_TEST

START_TEST(patch_types)
{
    struct tn_err err = {0};
    ck_assert_int_eq(tn_patch_type_parse("application/json-patch+json", &err), TN_PATCH_JSON);
    ck_assert_int_eq(tn_patch_type_parse("application/merge-patch+json; charset=utf-8", &err),
                     TN_PATCH_MERGE);
    ck_assert_int_eq(tn_patch_type_parse("Application/Strategic-Merge-Patch+JSON", &err),
                     TN_PATCH_STRATEGIC);
    ck_assert_int_eq(tn_patch_type_parse("application/apply-patch+yaml", &err), TN_PATCH_APPLY);
    ck_assert_int_eq(tn_patch_type_parse("application/json", &err), TN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown format"));
    ck_assert_int_eq(tn_patch_type_parse(NULL, &err), TN_EUNSUPPORTED);

    json_t *o = J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"a\":1}");
    json_t *p = J("{\"a\":2}");
    json_t *r = tn_patch_apply(TN_PATCH_MERGE, o, p, &err);
    assert_json(r, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"a\":2}");
    json_decref(r);
    r = tn_patch_apply(TN_PATCH_STRATEGIC, o, p, &err);
    assert_json(r, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"a\":2}");
    json_decref(r);
    ck_assert_ptr_null(tn_patch_apply(TN_PATCH_APPLY, o, p, &err));
    ck_assert_int_eq(err.code, TN_EUNSUPPORTED);
    json_decref(o);
    json_decref(p);

    json_t *a = J("{\"x\":[1,{\"y\":2.0}]}"), *b = J("{\"x\":[1.0,{\"y\":2}]}");
    ck_assert(tn_json_equal(a, b));
    json_decref(b);
    b = J("{\"x\":[1,{\"y\":\"2\"}]}");
    ck_assert(!tn_json_equal(a, b));
    json_decref(a);
    json_decref(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apiserver_patch");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, merge_rfc7386_appendix);
    tcase_add_test(tc, merge_kubernetes_object);
    tcase_add_test(tc, merge_create);
    tcase_add_test(tc, json_rfc6902_appendix_a);
    tcase_add_test(tc, json_edge_cases);
    tcase_add_test(tc, smp_containers_by_name);
    tcase_add_test(tc, smp_env_and_ports);
    tcase_add_test(tc, smp_set_element_order);
    tcase_add_test(tc, smp_finalizers);
    tcase_add_test(tc, smp_maps_and_directives);
    tcase_add_test(tc, smp_retain_keys);
    tcase_add_test(tc, smp_other_kinds);
    tcase_add_test(tc, smp_custom_resources);
    tcase_add_test(tc, patch_types);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
