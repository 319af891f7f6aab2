/* Unit tests for pkg/kube/conditions: lastTransitionTime moves only on a status flip, the
 * changed/unchanged result that gates status writes, observedGeneration, removal, validation
 * messages, and status comparison. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "kube/conditions.h"

#define T0 "2026-01-01T00:00:00Z"
#define T1 "2026-01-01T00:05:00Z"
#define T2 "2026-01-01T00:10:00Z"

static const char *ltt(const json_t *status, const char *type)
{
    return json_string_value(json_object_get(tn_cond_get(status, type), "lastTransitionTime"));
}

START_TEST(test_set_new_and_idempotent)
{
    json_t *st = json_object();
    ck_assert_int_eq(tn_cond_set(st, "Ready", "False", "Pending", "waiting for pods", 1, T0), 1);
    json_t *c = tn_cond_get(st, "Ready");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(json_string_value(json_object_get(c, "type")), "Ready");
    ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "False");
    ck_assert_str_eq(json_string_value(json_object_get(c, "reason")), "Pending");
    ck_assert_str_eq(json_string_value(json_object_get(c, "message")), "waiting for pods");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "observedGeneration")), 1);
    ck_assert_str_eq(ltt(st, "Ready"), T0);
    ck_assert_int_eq(tn_cond_is_true(st, "Ready"), 0);
    ck_assert_str_eq(tn_cond_status(st, "Ready"), "False");

    /* same values later: nothing changes, the caller skips the status write */
    json_t *before = json_deep_copy(st);
    ck_assert_int_eq(tn_cond_set(st, "Ready", "False", "Pending", "waiting for pods", 1, T1), 0);
    ck_assert_int_eq(tn_status_changed(before, st), 0);
    ck_assert_str_eq(ltt(st, "Ready"), T0);
    json_decref(before);
    json_decref(st);
}
END_TEST

START_TEST(test_transition_time)
{
    json_t *st = json_object();
    ck_assert_int_eq(tn_cond_set(st, "Ready", "False", "Pending", "", 1, T0), 1);
    /* reason/message change without a status flip: updated, time kept */
    ck_assert_int_eq(tn_cond_set(st, "Ready", "False", "ImagePull", "pulling", 1, T1), 1);
    ck_assert_str_eq(ltt(st, "Ready"), T0);
    ck_assert_str_eq(json_string_value(json_object_get(tn_cond_get(st, "Ready"), "reason")),
                     "ImagePull");
    /* flip: time moves */
    ck_assert_int_eq(tn_cond_set(st, "Ready", "True", "Running", "all pods ready", 1, T2), 1);
    ck_assert_str_eq(ltt(st, "Ready"), T2);
    ck_assert_int_eq(tn_cond_is_true(st, "Ready"), 1);
    /* flip to Unknown */
    ck_assert_int_eq(tn_cond_set(st, "Ready", "Unknown", "NodeLost", NULL, 1, T0), 1);
    ck_assert_str_eq(ltt(st, "Ready"), T0);
    ck_assert_str_eq(json_string_value(json_object_get(tn_cond_get(st, "Ready"), "message")), "");
    json_decref(st);
}
END_TEST

START_TEST(test_observed_generation)
{
    json_t *st = json_object();
    ck_assert_int_eq(tn_cond_set(st, "Available", "True", "Ok", "", 3, T0), 1);
    /* only the generation moves: a change, but no transition */
    ck_assert_int_eq(tn_cond_set(st, "Available", "True", "Ok", "", 4, T1), 1);
    json_t *c = tn_cond_get(st, "Available");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "observedGeneration")), 4);
    ck_assert_str_eq(ltt(st, "Available"), T0);
    ck_assert_int_eq(tn_cond_set(st, "Available", "True", "Ok", "", 4, T2), 0);
    /* negative omits the field */
    ck_assert_int_eq(tn_cond_set(st, "Available", "True", "Ok", "", -1, T2), 1);
    ck_assert_ptr_null(json_object_get(tn_cond_get(st, "Available"), "observedGeneration"));
    ck_assert_int_eq(tn_cond_set(st, "Available", "True", "Ok", "", -1, T2), 0);
    json_decref(st);
}
END_TEST

START_TEST(test_several_and_remove)
{
    json_t *st = json_object();
    json_object_set_new(st, "observedGeneration", json_integer(2));
    ck_assert_int_eq(tn_cond_set(st, "Ready", "True", "Ok", "", 2, T0), 1);
    ck_assert_int_eq(tn_cond_set(st, "example.com/Degraded", "False", "AsExpected", "", 2, T0), 1);
    ck_assert_int_eq(tn_cond_set(st, "Progressing", "True", "Rolling", "", 2, T0), 1);
    json_t *conds = json_object_get(st, "conditions");
    ck_assert_int_eq(json_array_size(conds), 3);
    /* updating one keeps the others and the list order */
    ck_assert_int_eq(tn_cond_set(st, "example.com/Degraded", "True", "Broken", "x", 2, T1), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conds, 1), "type")),
                     "example.com/Degraded");
    ck_assert_str_eq(ltt(st, "Ready"), T0);
    ck_assert_str_eq(ltt(st, "example.com/Degraded"), T1);

    ck_assert_int_eq(tn_cond_remove(st, "Progressing"), 1);
    ck_assert_int_eq(tn_cond_remove(st, "Progressing"), 0);
    ck_assert_ptr_null(tn_cond_get(st, "Progressing"));
    ck_assert_ptr_null(tn_cond_status(st, "Progressing"));
    ck_assert_int_eq(tn_cond_is_true(st, "Progressing"), 0);
    ck_assert_int_eq(json_array_size(conds), 2);
    json_t *bare = json_object();
    ck_assert_int_eq(tn_cond_remove(bare, "Ready"), 0);
    json_decref(bare);
    json_decref(st);
}
END_TEST

START_TEST(test_existing_status_from_server)
{
    /* a status as read back from the apiserver */
    struct tn_err err = {0};
    const char *text =
        "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":5,"
        "\"lastTransitionTime\":\"2025-12-31T23:00:00Z\",\"reason\":\"Ok\",\"message\":\"\"}]}";
    json_t *st = tn_json_parse(text, strlen(text), &err);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(tn_cond_set(st, "Ready", "True", "Ok", "", 5, T0), 0);
    ck_assert_str_eq(ltt(st, "Ready"), "2025-12-31T23:00:00Z");
    ck_assert_int_eq(tn_cond_set(st, "Ready", "False", "Lost", "", 5, NULL), 1);
    ck_assert_str_ne(ltt(st, "Ready"), "2025-12-31T23:00:00Z");
    ck_assert_int_eq(strlen(ltt(st, "Ready")), 20); /* RFC 3339 "...Z" */
    json_decref(st);
}
END_TEST

static void expect_invalid_at(const char *type, const char *status, const char *reason,
                              const char *message, const char *sub, int line)
{
    struct tn_err err = {0};
    ck_assert_msg(tn_cond_validate(type, status, reason, message, &err) == TN_EINVAL,
                  "line %d: accepted", line);
    ck_assert_msg(strstr(err.msg, sub), "line %d: message \"%s\" lacks \"%s\"", line, err.msg, sub);
    json_t *st = json_object();
    ck_assert_msg(tn_cond_set(st, type, status, reason, message, 1, T0) == TN_EINVAL,
                  "line %d: set accepted", line);
    ck_assert_msg(json_object_size(st) == 0, "line %d: status modified", line);
    json_decref(st);
}
#define expect_invalid(t, s, r, m, sub) expect_invalid_at((t), (s), (r), (m), (sub), __LINE__)

START_TEST(test_validation)
{
    struct tn_err err = {0};
    ck_assert_int_eq(tn_cond_validate("Ready", "True", "Ok", NULL, &err), 0);
    ck_assert_int_eq(tn_cond_validate("example.com/Ready", "False", "A_b,c:d9", "m", &err), 0);
    ck_assert_int_eq(tn_cond_validate("a.b-c.io/My.Type-1", "Unknown", "X", "", &err), 0);

    expect_invalid("", "True", "Ok", NULL, "condition type \"\"");
    expect_invalid("Not Ready", "True", "Ok", NULL, "condition type \"Not Ready\"");
    expect_invalid("Example.com/Ready", "True", "Ok", NULL, "qualified name");
    expect_invalid("example.com/", "True", "Ok", NULL, "condition type");
    expect_invalid("-Ready", "True", "Ok", NULL, "condition type");
    expect_invalid("Ready", "true", "Ok", NULL, "status \"true\": must be True, False or Unknown");
    expect_invalid("Ready", NULL, "Ok", NULL, "status");
    expect_invalid("Ready", "True", "", NULL, "reason \"\"");
    expect_invalid("Ready", "True", "9Lives", NULL, "reason \"9Lives\"");
    expect_invalid("Ready", "True", "Bad Reason", NULL, "must be CamelCase");
    expect_invalid("Ready", "True", "Trailing:", NULL, "reason");
    expect_invalid("Ready", "True", NULL, NULL, "reason");

    char *big = malloc(32770);
    memset(big, 'x', 32769);
    big[32769] = 0;
    expect_invalid("Ready", "True", "Ok", big, "message: longer than 32768");
    big[32768] = 0;
    ck_assert_int_eq(tn_cond_validate("Ready", "True", "Ok", big, &err), 0);
    free(big);

    char longtype[400];
    memset(longtype, 'A', 64);
    longtype[64] = 0; /* name part max 63 */
    expect_invalid(longtype, "True", "Ok", NULL, "condition type");

    /* wrong shapes */
    json_t *arr = json_array();
    ck_assert_int_eq(tn_cond_set(arr, "Ready", "True", "Ok", "", 1, T0), TN_EINVAL);
    json_decref(arr);
    json_t *st = json_object();
    json_object_set_new(st, "conditions", json_string("oops"));
    ck_assert_int_eq(tn_cond_set(st, "Ready", "True", "Ok", "", 1, T0), TN_EINVAL);
    ck_assert_ptr_null(tn_cond_get(st, "Ready"));
    json_decref(st);
}
END_TEST

START_TEST(test_status_changed)
{
    struct tn_err err = {0};
    const char *a = "{\"observedGeneration\":1,\"conditions\":[{\"type\":\"Ready\"}],\"x\":1.0}";
    const char *b = "{\"conditions\":[{\"type\":\"Ready\"}],\"x\":1,\"observedGeneration\":1}";
    json_t *ja = tn_json_parse(a, strlen(a), &err), *jb = tn_json_parse(b, strlen(b), &err);
    ck_assert_int_eq(tn_status_changed(ja, jb), 0); /* key order and 1 vs 1.0 do not matter */
    json_object_set_new(jb, "observedGeneration", json_integer(2));
    ck_assert_int_eq(tn_status_changed(ja, jb), 1);
    json_object_set_new(jb, "observedGeneration", json_integer(1));
    tn_cond_set(jb, "Ready", "True", "Ok", "", 1, T0);
    ck_assert_int_eq(tn_status_changed(ja, jb), 1);

    json_t *empty = json_object();
    ck_assert_int_eq(tn_status_changed(NULL, NULL), 0);
    ck_assert_int_eq(tn_status_changed(NULL, empty), 0);
    ck_assert_int_eq(tn_status_changed(empty, NULL), 0);
    ck_assert_int_eq(tn_status_changed(NULL, ja), 1);
    ck_assert_int_eq(tn_status_changed(ja, empty), 1);

    /* a copy changed only in a condition's lastTransitionTime is a change */
    json_t *c = json_deep_copy(jb);
    ck_assert_int_eq(tn_status_changed(jb, c), 0);
    json_object_set_new(tn_cond_get(c, "Ready"), "lastTransitionTime", json_string(T1));
    ck_assert_int_eq(tn_status_changed(jb, c), 1);
    json_decref(c);
    json_decref(empty);
    json_decref(ja);
    json_decref(jb);
}
END_TEST

static Suite *conditions_suite(void)
{
    Suite *s = suite_create("kube_conditions");
    TCase *tc = tcase_create("set");
    tcase_add_test(tc, test_set_new_and_idempotent);
    tcase_add_test(tc, test_transition_time);
    tcase_add_test(tc, test_observed_generation);
    tcase_add_test(tc, test_several_and_remove);
    tcase_add_test(tc, test_existing_status_from_server);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, test_validation);
    tcase_add_test(tc, test_status_changed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conditions_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
