/* tandem-gm configuration: defaults, per-key validation with errors naming the key, the YAML
 * file of the same keys, listen address parsing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gm/gm.h"

START_TEST(test_defaults)
{
    struct tn_gm_config c;
    ck_assert_int_eq(tn_gm_config_init(&c), 0);
    ck_assert_str_eq(c.ws_listen, "0.0.0.0:9000");
    ck_assert_str_eq(c.metrics_listen, "127.0.0.1:8080");
    ck_assert_str_eq(c.health_listen, "127.0.0.1:8081");
    ck_assert_str_eq(c.namespace_, "");
    ck_assert_int_eq(c.leader_elect, 1);
    ck_assert_ptr_null(c.kubeconfig);
    ck_assert_ptr_null(c.node_tokens);
    ck_assert_int_eq(tn_gm_config_validate(&c, NULL), 0);
    tn_gm_config_free(&c);
}
END_TEST

START_TEST(test_set_errors_name_key)
{
    struct tn_gm_config c;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_gm_config_init(&c), 0);
    ck_assert_int_eq(tn_gm_config_set(&c, "ws-listen", "nope", &err), TN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "ws-listen: nope"));
    ck_assert_int_eq(tn_gm_config_set(&c, "metrics-listen", "1.2.3.4:70000", &err), TN_EINVAL);
    ck_assert_int_eq(tn_gm_config_set(&c, "leader-elect", "yes", &err), TN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "leader-elect"));
    ck_assert_int_eq(tn_gm_config_set(&c, "log-level", "loud", &err), TN_EINVAL);
    ck_assert_int_eq(tn_gm_config_set(&c, "log-format", "xml", &err), TN_EINVAL);
    ck_assert_int_eq(tn_gm_config_set(&c, "colour", "red", &err), TN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "colour"));
    ck_assert_int_eq(tn_gm_config_set(&c, "leader-elect", "false", &err), 0);
    ck_assert_int_eq(c.leader_elect, 0);
    ck_assert_int_eq(tn_gm_config_set(&c, "ws-listen", "[::1]:9001", &err), 0);
    ck_assert_str_eq(c.ws_listen, "[::1]:9001");
    tn_gm_config_free(&c);
}
END_TEST

START_TEST(test_parse_listen)
{
    char a[64];
    int p;
    ck_assert_int_eq(tn_gm_parse_listen("0.0.0.0:9000", a, sizeof(a), &p), 0);
    ck_assert_str_eq(a, "0.0.0.0");
    ck_assert_int_eq(p, 9000);
    ck_assert_int_eq(tn_gm_parse_listen("[::1]:0", a, sizeof(a), &p), 0);
    ck_assert_str_eq(a, "::1");
    ck_assert_int_eq(p, 0);
    ck_assert_int_ne(tn_gm_parse_listen(":80", a, sizeof(a), &p), 0);
    ck_assert_int_ne(tn_gm_parse_listen("host", a, sizeof(a), &p), 0);
    ck_assert_int_ne(tn_gm_parse_listen("host:8x", a, sizeof(a), &p), 0);
}
END_TEST

START_TEST(test_file)
{
    char path[] = "/tmp/gm_gm_test.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *y = "namespace: sedna\nws-listen: 127.0.0.1:9100\nleader-elect: false\n"
                    "log-format: json\n";
    ck_assert_int_eq(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    struct tn_gm_config c;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_gm_config_init(&c), 0);
    ck_assert_int_eq(tn_gm_config_load_file(&c, path, &err), 0);
    ck_assert_str_eq(c.namespace_, "sedna");
    ck_assert_str_eq(c.ws_listen, "127.0.0.1:9100");
    ck_assert_int_eq(c.leader_elect, 0);
    ck_assert_str_eq(c.log_format, "json");

    FILE *f = fopen(path, "w");
    fputs("websocket:\n  port: 9000\n", f);
    fclose(f);
    ck_assert_int_ne(tn_gm_config_load_file(&c, path, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "websocket"));
    unlink(path);
    tn_gm_config_free(&c);
}
END_TEST

static Suite *gm_suite(void)
{
    Suite *s = suite_create("gm_gm");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_set_errors_name_key);
    tcase_add_test(tc, test_parse_listen);
    tcase_add_test(tc, test_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
