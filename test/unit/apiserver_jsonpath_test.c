/* JSONPath tests: the expressions printer columns and kubectl wait use, filters, missing keys,
 * compile errors that name the expression, and table cells per column type. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/jsonpath.h"

static json_t *J(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "bad test JSON (%s): %s", je.text, s);
    return v;
}

static const char *DOC =
    "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app.kubernetes.io/name\":\"web\",\"tier\":"
    "\"fe\"},\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},"
    "\"spec\":{\"replicas\":3,\"ratio\":0.5,\"paused\":false,\"selector\":{\"matchLabels\":"
    "{\"x\":\"y\"}},\"containers\":[{\"name\":\"a\",\"image\":\"a:1\",\"ports\":"
    "[{\"containerPort\":80}]},{\"name\":\"b\",\"image\":\"b:1\"}]},"
    "\"status\":{\"phase\":\"Running\",\"nullable\":null,\"conditions\":["
    "{\"type\":\"Ready\",\"status\":\"True\",\"count\":2},"
    "{\"type\":\"Scheduled\",\"status\":\"False\",\"count\":5,\"ok\":true}]}}";

static void q(const char *expr, const char *want)
{
    json_t *doc = J(DOC);
    struct tn_err err = {0};
    json_t *got = tn_jsonpath_query(expr, doc, &err);
    ck_assert_msg(got != NULL, "%s: %s", expr, err.msg);
    json_t *w = J(want);
    char *gs = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(json_equal(got, w), "%s: got %s want %s", expr, gs, want);
    free(gs);
    json_decref(w);
    json_decref(got);
    json_decref(doc);
}

static void bad(const char *expr, const char *want)
{
    struct tn_jsonpath *jp = (void *)1;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_jsonpath_compile(expr, &jp, &err), TN_EINVAL);
    ck_assert_ptr_null(jp);
    ck_assert_str_eq(err.msg, want);
}

START_TEST(paths)
{
    q(".metadata.name", "[\"p\"]");
    q("{.metadata.name}", "[\"p\"]");
    q("$.metadata.name", "[\"p\"]");
    q("  { $.metadata.name }  ", "[\"p\"]");
    q(".metadata.labels['app.kubernetes.io/name']", "[\"web\"]");
    q(".metadata.labels[\"tier\"]", "[\"fe\"]");
    q(".spec.replicas", "[3]");
    q(".spec.containers[0].name", "[\"a\"]");
    q(".spec.containers[-1].name", "[\"b\"]");
    q(".spec.containers[5].name", "[]");
    q(".spec.containers[-3].name", "[]");
    q(".spec.containers[*].name", "[\"a\",\"b\"]");
    q(".spec.containers[*].image", "[\"a:1\",\"b:1\"]");
    q(".spec.containers[*].ports[*].containerPort", "[80]");
    q(".spec.containers[0:1].name", "[\"a\"]");
    q(".spec.containers[1:].name", "[\"b\"]");
    q(".spec.containers[:].name", "[\"a\",\"b\"]");
    q(".spec.containers.*.name", "[\"a\",\"b\"]");
    q(".spec.missing", "[]");
    q(".spec.replicas.foo", "[]");
    q(".missing[0].x", "[]");
    q(".status.nullable", "[null]");
}
END_TEST

START_TEST(root_and_recursive)
{
    json_t *doc = J("{\"a\":{\"name\":\"x\",\"b\":[{\"name\":\"y\"},{\"c\":{\"name\":\"z\"}}]}}");
    json_t *got = tn_jsonpath_query(".", doc, NULL);
    ck_assert_uint_eq(json_array_size(got), 1);
    ck_assert_ptr_eq(json_array_get(got, 0), doc);
    json_decref(got);
    got = tn_jsonpath_query("{$}", doc, NULL);
    ck_assert_ptr_eq(json_array_get(got, 0), doc);
    json_decref(got);
    got = tn_jsonpath_query("..name", doc, NULL);
    json_t *want = J("[\"x\",\"y\",\"z\"]");
    ck_assert(json_equal(got, want));
    json_decref(want);
    json_decref(got);
    json_decref(doc);
}
END_TEST

START_TEST(filters)
{
    q(".status.conditions[?(@.type==\"Ready\")].status", "[\"True\"]");
    q("{.status.conditions[?(@.type==\"Ready\")].status}", "[\"True\"]");
    q(".status.conditions[?(@.type!=\"Ready\")].type", "[\"Scheduled\"]");
    q(".status.conditions[?( @.type == 'Scheduled' )].status", "[\"False\"]");
    q(".status.conditions[?(@.count>2)].type", "[\"Scheduled\"]");
    q(".status.conditions[?(@.count<=2)].type", "[\"Ready\"]");
    q(".status.conditions[?(@.count>=2)].type", "[\"Ready\",\"Scheduled\"]");
    q(".status.conditions[?(@.count<2)].type", "[]");
    q(".status.conditions[?(@.count==5.0)].type", "[\"Scheduled\"]");
    q(".status.conditions[?(@.ok==true)].type", "[\"Scheduled\"]");
    q(".status.conditions[?(@.ok==false)].type", "[]");
    q(".status.conditions[?(@.ok)].type", "[\"Scheduled\"]");
    q(".status.conditions[?(@.type==\"Nope\")].status", "[]");
    q(".status.conditions[?(@.type==\"Ready\")]", "[{\"type\":\"Ready\",\"status\":\"True\","
                                                  "\"count\":2}]");
    q(".status.conditions[?(@.count==\"2\")].type", "[]"); /* a string never equals a number */
    q(".spec.containers[?(@.ports[0].containerPort==80)].name", "[\"a\"]");
    q(".spec.containers[?(@.name==\"b\")].image", "[\"b:1\"]");
    q(".spec[?(@.x==1)]", "[]"); /* filters apply to arrays only */
}
END_TEST

START_TEST(compile_errors)
{
    bad(".spec[", "invalid JSONPath \".spec[\": unterminated '[' at offset 6");
    bad("spec.replicas", "invalid JSONPath \"spec.replicas\": expected '.' or '[' at offset 0");
    bad("", "invalid JSONPath \"\": empty expression at offset 0");
    bad("{}", "invalid JSONPath \"{}\": empty expression at offset 1");
    bad("{.a", "invalid JSONPath \"{.a\": unclosed '{' at offset 3");
    bad(".a.", "invalid JSONPath \".a.\": expected a field name at offset 3");
    bad(".a..", "invalid JSONPath \".a..\": expected a field name at offset 4");
    bad(".a b", "invalid JSONPath \".a b\": unexpected character ' ' at offset 2");
    bad(".a[x]", "invalid JSONPath \".a[x]\": unexpected character in '[...]' at offset 3");
    bad(".a[0", "invalid JSONPath \".a[0\": unterminated '[' at offset 4");
    bad(".a['x]", "invalid JSONPath \".a['x]\": unterminated quoted string at offset 6");
    bad(".a[?(@.x=1)]", "invalid JSONPath \".a[?(@.x=1)]\": unrecognized filter operator at "
                        "offset 8");
    bad(".a[?(@.x==)]", "invalid JSONPath \".a[?(@.x==)]\": expected a string, number or boolean "
                        "literal in filter at offset 10");
    bad(".a[?(@.x==1]", "invalid JSONPath \".a[?(@.x==1]\": unterminated filter at offset 12");
    bad(".a[?(x==1)]", "invalid JSONPath \".a[?(x==1)]\": filter must start with @ at offset 5");
    bad(".a[?@.x]", "invalid JSONPath \".a[?@.x]\": expected '(' after '?' at offset 4");

    struct tn_err err = {0};
    ck_assert_int_eq(tn_jsonpath_check_column(".spec.replicas", &err), 0);
    ck_assert_int_eq(
        tn_jsonpath_check_column(".status.conditions[?(@.type==\"Ready\")].status", &err), 0);
    ck_assert_int_eq(tn_jsonpath_check_column("", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "must not be empty");
    ck_assert_int_eq(tn_jsonpath_check_column("spec.replicas", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "must be a simple json path starting with .");
    ck_assert_int_eq(tn_jsonpath_check_column(".spec[", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "invalid JSONPath \".spec[\": unterminated '[' at offset 6");
}
END_TEST

static void cell(const char *expr, const char *type, const char *want)
{
    json_t *doc = J(DOC);
    json_t *res = tn_jsonpath_query(expr, doc, NULL);
    ck_assert_ptr_nonnull(res);
    time_t t0 = 1704067200; /* 2024-01-01T00:00:00Z */
    json_t *c = tn_jsonpath_cell(res, type, t0 + 300);
    json_t *w = J(want);
    char *cs = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_msg(json_equal(c, w), "%s as %s: got %s want %s", expr, type ? type : "NULL", cs,
                  want);
    free(cs);
    json_decref(w);
    json_decref(c);
    json_decref(res);
    json_decref(doc);
}

START_TEST(cells)
{
    cell(".metadata.name", "string", "\"p\"");
    cell(".metadata.name", NULL, "\"p\"");
    cell(".spec.replicas", "string", "\"3\"");
    cell(".spec.ratio", "string", "\"0.5\"");
    cell(".spec.paused", "string", "\"false\"");
    cell(".spec.selector", "string", "\"{\\\"matchLabels\\\":{\\\"x\\\":\\\"y\\\"}}\"");
    cell(".spec.containers[*].name", "string", "\"a\""); /* first result only */
    cell(".spec.containers[0].ports", "string", "\"[{\\\"containerPort\\\":80}]\"");
    cell(".spec.missing", "string", "null");
    cell(".status.nullable", "string", "null");
    cell(".status.conditions[?(@.type==\"Ready\")].status", "string", "\"True\"");
    cell(".spec.replicas", "integer", "3");
    cell(".spec.ratio", "integer", "0");
    cell(".metadata.name", "integer", "null");
    cell(".spec.replicas", "number", "3.0");
    cell(".spec.ratio", "number", "0.5");
    cell(".spec.paused", "boolean", "false");
    cell(".spec.replicas", "boolean", "null");
    cell(".metadata.creationTimestamp", "date", "\"5m\"");
    cell(".metadata.name", "date", "\"<invalid>\"");
    cell(".spec.replicas", "date", "null");

    json_t *doc = J(DOC);
    json_t *first = tn_jsonpath_first(".spec.containers[*].name", doc);
    ck_assert_str_eq(json_string_value(first), "a");
    json_decref(first);
    ck_assert_ptr_null(tn_jsonpath_first(".spec.nope", doc));
    ck_assert_ptr_null(tn_jsonpath_first(".spec[", doc));
    json_decref(doc);
    struct tn_err err = {0};
    ck_assert_int_eq(tn_jsonpath_check("spec", &err), TN_EINVAL);
    ck_assert_int_eq(tn_jsonpath_check(".spec", &err), 0);

    json_t *v = json_real(1.25);
    char *s = tn_jsonpath_text(v);
    ck_assert_str_eq(s, "1.25");
    free(s);
    json_decref(v);
    s = tn_jsonpath_text(json_null());
    ck_assert_str_eq(s, "null");
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apiserver_jsonpath");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, paths);
    tcase_add_test(tc, root_and_recursive);
    tcase_add_test(tc, filters);
    tcase_add_test(tc, compile_errors);
    tcase_add_test(tc, cells);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
