/* Unit tests of Sedna's GM<->LC envelope codec (pkg/apis/message): the worked example of the
 * reference, round trips, the LC hello, and one rejection per malformed field. */
#include "apis/message.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(worked_example)
{
    const char *in = "{\"header\":{\"namespace\":\"default\",\"resourceKind\":\"Dataset\","
                     "\"resourceName\":\"incr-ds\",\"operation\":\"status\"},"
                     "\"content\":\"eyJudW1iZXJPZlNhbXBsZXMiOjEyMH0=\"}";
    struct tn_msg m;
    struct tn_err err;
    ck_assert_int_eq(tn_msg_decode(in, strlen(in), &m, &err), 0);
    ck_assert_str_eq(m.ns, "default");
    ck_assert_str_eq(m.kind, "Dataset");
    ck_assert_str_eq(m.name, "incr-ds");
    ck_assert_str_eq(m.op, TN_MSG_OP_STATUS);
    ck_assert_int_eq(m.is_hello, 0);
    ck_assert_str_eq((const char *)m.content, "{\"numberOfSamples\":120}");
    ck_assert_uint_eq(m.content_len, 23);
    ck_assert_ptr_nonnull(m.json);
    ck_assert_int_eq(json_integer_value(json_object_get(m.json, "numberOfSamples")), 120);
    /* re-encoding gives the very same bytes (Go's field order, std base64) */
    size_t n;
    char *out = tn_msg_encode(m.ns, m.kind, m.name, m.op, m.content, m.content_len, &n, &err);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, in);
    ck_assert_uint_eq(n, strlen(in));
    free(out);
    tn_msg_free(&m);
    ck_assert_ptr_null(m.ns);
}
END_TEST

START_TEST(round_trips)
{
    struct tn_err err;
    json_t *obj =
        json_pack("{s:s,s:{s:s,s:s},s:{s:i}}", "kind", "IncrementalLearningJob", "metadata", "name",
                  "il-demo", "namespace", "ns \"q\"\n", "status", "active", 0);
    size_t n;
    char *txt = tn_msg_encode_json("ns \"q\"\n", "incrementallearningjob", "il-demo",
                                   TN_MSG_OP_INSERT, obj, &n, &err);
    ck_assert_ptr_nonnull(txt);
    struct tn_msg m;
    ck_assert_int_eq(tn_msg_decode(txt, n, &m, &err), 0);
    ck_assert_str_eq(m.ns, "ns \"q\"\n");
    ck_assert_str_eq(m.kind, "incrementallearningjob");
    ck_assert_str_eq(m.op, "insert");
    ck_assert_int_eq(json_equal(m.json, obj), 1);
    tn_msg_free(&m);
    free(txt);
    json_decref(obj);

    /* empty content: encoded as null, decoded as empty */
    txt = tn_msg_encode("default", "model", "m1", TN_MSG_OP_DELETE, NULL, 0, &n, &err);
    ck_assert_ptr_nonnull(strstr(txt, "\"content\":null"));
    ck_assert_int_eq(tn_msg_decode(txt, n, &m, &err), 0);
    ck_assert_ptr_null(m.content);
    ck_assert_ptr_null(m.json);
    ck_assert_uint_eq(m.content_len, 0);
    ck_assert_str_eq(m.op, TN_MSG_OP_DELETE);
    tn_msg_free(&m);
    free(txt);

    /* absent and "" content are empty too; unknown top-level members are ignored (as Go) */
    const char *abs = "{\"header\":{\"namespace\":\"a\",\"resourceKind\":\"b\",\"resourceName\":"
                      "\"c\",\"operation\":\"update\"},\"extra\":1}";
    ck_assert_int_eq(tn_msg_decode(abs, strlen(abs), &m, &err), 0);
    ck_assert_ptr_null(m.content);
    ck_assert_str_eq(m.op, TN_MSG_OP_UPDATE);
    tn_msg_free(&m);
    const char *emp = "{\"header\":{},\"content\":\"\"}";
    ck_assert_int_eq(tn_msg_decode(emp, strlen(emp), &m, &err), 0);
    ck_assert_str_eq(m.ns, "");
    ck_assert_ptr_null(m.content);
    tn_msg_free(&m);
}
END_TEST

START_TEST(hello)
{
    size_t n;
    char *h = tn_msg_hello(&n);
    ck_assert_str_eq(h, "{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":\"\","
                        "\"operation\":\"\"}");
    struct tn_msg m;
    struct tn_err err;
    ck_assert_int_eq(tn_msg_decode(h, n, &m, &err), 0);
    ck_assert_int_eq(m.is_hello, 1);
    ck_assert_str_eq(m.op, "");
    ck_assert_str_eq(m.kind, "");
    ck_assert_ptr_null(m.content);
    tn_msg_free(&m);
    free(h);
    /* a wrapped message with empty header is not a hello */
    const char *w = "{\"header\":{\"namespace\":\"\",\"resourceKind\":\"\",\"resourceName\":\"\","
                    "\"operation\":\"\"},\"content\":null}";
    ck_assert_int_eq(tn_msg_decode(w, strlen(w), &m, &err), 0);
    ck_assert_int_eq(m.is_hello, 0);
    tn_msg_free(&m);
}
END_TEST

static void reject(const char *in, const char *want)
{
    struct tn_msg m;
    struct tn_err err = {0};
    int rc = tn_msg_decode(in, strlen(in), &m, &err);
    ck_assert_msg(rc == TN_EINVAL, "accepted %s", in);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: error \"%s\" does not mention \"%s\"", in,
                  err.msg, want);
    ck_assert_ptr_null(m.ns);
    ck_assert_ptr_null(m.content);
}

START_TEST(malformed)
{
    reject("", "not JSON");
    reject("{\"header\":", "not JSON");
    reject("[1,2]", "not a JSON object");
    reject("\"x\"", "not a JSON object");
    reject("{\"content\":\"e30=\"}", "no header");
    reject("{\"namespace\":\"\",\"other\":1}", "no header");
    reject("{\"header\":5}", "header must be an object");
    reject("{\"header\":{\"namespace\":1}}", "header.namespace must be a string");
    reject("{\"header\":{\"resourceKind\":{}}}", "header.resourceKind must be a string");
    reject("{\"header\":{\"resourceName\":[]}}", "header.resourceName must be a string");
    reject("{\"header\":{\"operation\":true}}", "header.operation must be a string");
    reject("{\"operation\":3}", "hello.operation must be a string");
    reject("{\"header\":{},\"content\":7}", "content must be a base64 string");
    reject("{\"header\":{},\"content\":\"e30\"}", "content is not valid base64");  /* no pad */
    reject("{\"header\":{},\"content\":\"e3-=\"}", "content is not valid base64"); /* URL alph */
    reject("{\"header\":{},\"content\":\"e3=0\"}", "content is not valid base64"); /* pad mid */
    reject("{\"header\":{},\"content\":\"bm90IGpzb24=\"}", "content is not JSON"); /* "not json" */

    /* size cap */
    size_t big = TN_MSG_MAX_SIZE + 1;
    char *b = malloc(big);
    memset(b, ' ', big);
    struct tn_msg m;
    struct tn_err err;
    ck_assert_int_eq(tn_msg_decode(b, big, &m, &err), TN_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "limit"));
    ck_assert_ptr_null(tn_msg_encode("a", "b", "c", "d", b, big, NULL, &err));
    ck_assert_int_eq(err.code, TN_ETOOBIG);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apis_message");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, worked_example);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, hello);
    tcase_add_test(tc, malformed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
