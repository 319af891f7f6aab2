/* Unit tests of the small base modules: buffers (caps), JSON helpers, base64, time, errors. */
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/rand.h"
#include "base/timeutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(buf_cap_and_steal)
{
    struct tn_buf b;
    tn_buf_init(&b, 8);
    ck_assert_int_eq(tn_buf_puts(&b, "12345678"), 0);
    ck_assert_int_eq(tn_buf_putc(&b, '9'), TN_ETOOBIG);
    ck_assert_str_eq(b.data, "12345678"); /* unchanged on error */
    tn_buf_consume(&b, 3);
    ck_assert_str_eq(b.data, "45678");
    size_t len;
    char *s = tn_buf_steal(&b, &len);
    ck_assert_str_eq(s, "45678");
    ck_assert_uint_eq(len, 5);
    free(s);
    s = tn_buf_steal(&b, &len); /* never written: "" */
    ck_assert_str_eq(s, "");
    free(s);
    tn_buf_free(&b);
}
END_TEST

START_TEST(buf_json_escape)
{
    struct tn_buf b;
    tn_buf_init(&b, 0);
    tn_buf_json_str(&b, "a\"b\\c\n\x01");
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    tn_buf_free(&b);
}
END_TEST

START_TEST(json_paths)
{
    struct tn_err err;
    const char *doc = "{\"metadata\":{\"name\":\"x\",\"n\":3,\"b\":true}}";
    json_t *v = tn_json_parse(doc, strlen(doc), &err);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(tn_json_str(v, "metadata.name", "?"), "x");
    ck_assert_str_eq(tn_json_str(v, "metadata.missing", "def"), "def");
    ck_assert_int_eq(tn_json_int(v, "metadata.n", 0), 3);
    ck_assert_int_eq(tn_json_bool(v, "metadata.b", 0), 1);
    ck_assert_int_eq(tn_json_set_str(v, "status.phase", "Running"), 0);
    ck_assert_str_eq(tn_json_str(v, "status.phase", ""), "Running");
    json_decref(v);
    ck_assert_ptr_null(tn_json_parse("{\"a\":", 5, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
}
END_TEST

START_TEST(base64_roundtrip)
{
    const char *in = "any carnal pleas";
    for (size_t n = 0; n <= strlen(in); n++) {
        char *enc = tn_base64_encode((const unsigned char *)in, n);
        unsigned char *dec;
        size_t dl;
        ck_assert_int_eq(tn_base64_decode(enc, &dec, &dl), 0);
        ck_assert_uint_eq(dl, n);
        ck_assert_mem_eq(dec, in, n);
        free(enc);
        free(dec);
    }
    char *e = tn_base64_encode((const unsigned char *)"ab", 2);
    ck_assert_str_eq(e, "YWI=");
    free(e);
    unsigned char *d;
    ck_assert_int_eq(tn_base64_decode("Y*I=", &d, NULL), TN_EINVAL);
}
END_TEST

START_TEST(time_rfc3339)
{
    time_t t;
    ck_assert_int_eq(tn_time_parse_rfc3339("2026-11-22T04:59:07Z", &t), 0);
    char out[40];
    tn_time_rfc3339(t, out, sizeof(out));
    ck_assert_str_eq(out, "2026-11-22T04:59:07Z");
    time_t t2;
    ck_assert_int_eq(tn_time_parse_rfc3339("2026-11-22T06:59:07.123+02:00", &t2), 0);
    ck_assert_int_eq((long)t, (long)t2);
    ck_assert_int_eq(tn_time_parse_rfc3339("2026-11-22 04:59:07", &t2), TN_EINVAL);
    ck_assert_int_eq(tn_time_parse_rfc3339("2026-11-22T04:59:07Zjunk", &t2), TN_EINVAL);
}
END_TEST

START_TEST(time_human_age)
{
    char out[32];
    struct {
        int64_t s;
        const char *want;
    } cases[] = {
        {5, "5s"},          {119, "119s"},           {125, "2m5s"},    {600, "10m"},
        {3 * 3600, "3h"},   {7200 + 60 * 5, "125m"}, {3600 * 9, "9h"}, {86400 * 3 + 3600, "3d1h"},
        {86400 * 30, "30d"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tn_time_human_age(cases[i].s, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].want);
    }
}
END_TEST

START_TEST(duration_parse)
{
    int64_t ms;
    ck_assert_int_eq(tn_duration_parse_ms("1h30m", &ms), 0);
    ck_assert_int_eq(ms, 5400000);
    ck_assert_int_eq(tn_duration_parse_ms("250ms", &ms), 0);
    ck_assert_int_eq(ms, 250);
    ck_assert_int_eq(tn_duration_parse_ms("1.5s", &ms), 0);
    ck_assert_int_eq(ms, 1500);
    ck_assert_int_eq(tn_duration_parse_ms("5 minutes", &ms), TN_EINVAL);
    ck_assert_int_eq(tn_duration_parse_ms("", &ms), TN_EINVAL);
}
END_TEST

START_TEST(rand_names)
{
    char a[6], b[6];
    tn_rand_suffix(a, 5);
    tn_rand_suffix(b, 5);
    ck_assert_uint_eq(strlen(a), 5);
    ck_assert_uint_eq(strspn(a, "bcdfghjklmnpqrstvwxz2456789"), 5);
    char u[37];
    tn_rand_uuid(u);
    ck_assert_uint_eq(strlen(u), 36);
    ck_assert_int_eq(u[14], '4');
}
END_TEST

START_TEST(err_messages)
{
    struct tn_err e;
    ck_assert_int_eq(tn_err_set(&e, TN_EINVAL, "field %s", "spec.x"), TN_EINVAL);
    tn_err_prefix(&e, "widget %s", "w1");
    ck_assert_str_eq(e.msg, "widget w1: field spec.x");
    ck_assert_int_eq(tn_err_set(NULL, TN_EIO, "ignored"), TN_EIO);
    ck_assert_str_eq(tn_code_str(TN_ENOTFOUND), "not found");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base_core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buf_cap_and_steal);
    tcase_add_test(tc, buf_json_escape);
    tcase_add_test(tc, json_paths);
    tcase_add_test(tc, base64_roundtrip);
    tcase_add_test(tc, time_rfc3339);
    tcase_add_test(tc, time_human_age);
    tcase_add_test(tc, duration_parse);
    tcase_add_test(tc, rand_names);
    tcase_add_test(tc, err_messages);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
