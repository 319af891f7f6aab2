/* Label and field selector tests: the apiserver's grammar, its error messages word for word,
 * matching (including missing labels and fields) and field-name validation per resource. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/selector.h"

static json_t *J(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "bad test JSON: %s", je.text);
    return v;
}

/* Parses s and checks its canonical rendering. */
static void roundtrip(const char *s, const char *want)
{
    struct tn_labelsel *sel;
    struct tn_err err = {0};
    int rc = tn_labelsel_parse(s, &sel, &err);
    ck_assert_msg(rc == 0, "parse %s: %s", s, err.msg);
    char *got = tn_labelsel_to_string(sel);
    ck_assert_str_eq(got, want);
    free(got);
    tn_labelsel_free(sel);
}

static void parse_fails(const char *s, const char *want)
{
    struct tn_labelsel *sel = (void *)1;
    struct tn_err err = {0};
    int rc = tn_labelsel_parse(s, &sel, &err);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_ptr_null(sel);
    ck_assert_str_eq(err.msg, want);
}

#define QNAME_DETAIL                                                                               \
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "      \
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "      \
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALUE_DETAIL                                                                               \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "             \
    "'my_value',  or '12345', regex used for validation is "                                       \
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

START_TEST(label_parse_valid)
{
    roundtrip("x=a,y=b,z=c", "x=a,y=b,z=c");
    roundtrip("z=c,x=a", "x=a,z=c");
    roundtrip("  b in (y, x, y),  a!=z ", "a!=z,b in (x,y)");
    roundtrip("!canary,app", "app,!canary");
    roundtrip("a==b", "a==b");
    roundtrip("a notin (c,b)", "a notin (b,c)");
    roundtrip("in=notin", "in=notin");
    roundtrip("a in (in,notin)", "a in (in,notin)");
    roundtrip("a in ()", "a in ()");
    roundtrip("a in (,b)", "a in (,b)");
    roundtrip("x=", "x=");
    roundtrip("x=,y", "x=,y");
    roundtrip("", "");
    roundtrip("   ", "");
    roundtrip("a>1,b<2", "a>1,b<2");
    roundtrip("example.com/app=web", "example.com/app=web");
    roundtrip("a.b-c_d=E.f-9", "a.b-c_d=E.f-9");
    roundtrip("\tenv\n!=\rprod", "env!=prod");
}
END_TEST

START_TEST(label_parse_errors)
{
    parse_fails("x=a,", "found '', expected: identifier after ','");
    parse_fails("x=a,,y", "found ',', expected: identifier after ','");
    parse_fails("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, "
                       "gt, lt");
    parse_fails("x in a", "unable to parse requirement: found 'a' expected: '('");
    parse_fails("x in (a", "unable to parse requirement: found '', expected: ',' or ')'");
    parse_fails("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'");
    parse_fails("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or "
                            "identifier");
    parse_fails("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or "
                              "identifier");
    parse_fails("=a", "found '=', expected: !, identifier, or 'end of string'");
    parse_fails("a=b c", "found 'c', expected: ',' or 'end of string'");
    parse_fails("!a=b", "found '=', expected: ',' or 'end of string'");
    parse_fails("!", "unable to parse requirement: found '', expected: identifier");
    parse_fails("a=(", "unable to parse requirement: found '(', expected: identifier");
    parse_fails("a@b=c",
                "unable to parse requirement: <nil>: Invalid value: \"a@b\": " QNAME_DETAIL);
    parse_fails("a=b@c",
                "unable to parse requirement: values[0][a]: Invalid value: \"b@c\": " VALUE_DETAIL);
    parse_fails("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', "
                       "'Lt' operators, the value must be an integer");
    parse_fails("/a", "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part "
                      "must be non-empty");
    parse_fails("Example.com/a",
                "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part "
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");

    char key[80];
    memset(key, 'k', 64);
    key[64] = 0;
    struct tn_labelsel *sel;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_labelsel_parse(key, &sel, &err), TN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "name part must be no more than 63 characters"));
    key[63] = 0;
    ck_assert_int_eq(tn_labelsel_parse(key, &sel, &err), 0);
    tn_labelsel_free(sel);
}
END_TEST

static int sel_match(const char *s, const char *labels)
{
    struct tn_labelsel *sel;
    struct tn_err err = {0};
    ck_assert_msg(tn_labelsel_parse(s, &sel, &err) == 0, "%s", err.msg);
    json_t *obj = json_pack("{s:{s:o}}", "metadata", "labels", J(labels));
    int m = tn_labelsel_matches(sel, obj);
    json_decref(obj);
    tn_labelsel_free(sel);
    return m;
}

START_TEST(label_match)
{
    const char *l = "{\"app\":\"web\",\"tier\":\"fe\",\"n\":\"5\",\"empty\":\"\"}";
    ck_assert(sel_match("", l));
    ck_assert(sel_match("app=web", l));
    ck_assert(sel_match("app==web,tier=fe", l));
    ck_assert(!sel_match("app=web,tier=be", l));
    ck_assert(sel_match("app!=db", l));
    ck_assert(sel_match("missing!=x", l)); /* != matches when the label is absent */
    ck_assert(!sel_match("missing=x", l));
    ck_assert(sel_match("tier in (be,fe)", l));
    ck_assert(!sel_match("tier notin (be,fe)", l));
    ck_assert(sel_match("missing notin (a)", l));
    ck_assert(!sel_match("missing in (a)", l));
    ck_assert(sel_match("app", l));
    ck_assert(!sel_match("missing", l));
    ck_assert(sel_match("!missing", l));
    ck_assert(!sel_match("!app", l));
    ck_assert(sel_match("empty=", l));
    ck_assert(sel_match("empty in (,x)", l));
    ck_assert(!sel_match("missing=", l));
    ck_assert(sel_match("n>4,n<6", l));
    ck_assert(!sel_match("n>5", l));
    ck_assert(!sel_match("app>1", l)); /* not an integer */
    ck_assert(!sel_match("missing<10", l));

    /* object without labels */
    struct tn_labelsel *sel;
    ck_assert_int_eq(tn_labelsel_parse("!x", &sel, NULL), 0);
    json_t *bare = J("{\"metadata\":{\"name\":\"a\"}}");
    ck_assert(tn_labelsel_matches(sel, bare));
    tn_labelsel_free(sel);
    ck_assert_int_eq(tn_labelsel_parse("x", &sel, NULL), 0);
    ck_assert(!tn_labelsel_matches(sel, bare));
    tn_labelsel_free(sel);
    json_decref(bare);
}
END_TEST

static char *from_json_str(const char *js, struct tn_err *err, int *rc)
{
    struct tn_labelsel *sel;
    json_t *v = js ? J(js) : NULL;
    *rc = tn_labelsel_from_json(v, &sel, err);
    json_decref(v);
    if (*rc) return NULL;
    char *s = tn_labelsel_to_string(sel);
    tn_labelsel_free(sel);
    return s;
}

START_TEST(label_from_json)
{
    struct tn_err err = {0};
    int rc;
    char *s =
        from_json_str("{\"matchLabels\":{\"tier\":\"fe\",\"app\":\"web\"},\"matchExpressions\":["
                      "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\",\"dev\"]},"
                      "{\"key\":\"canary\",\"operator\":\"DoesNotExist\"},"
                      "{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"b\"]},"
                      "{\"key\":\"gpu\",\"operator\":\"Exists\"}]}",
                      &err, &rc);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(s, "app=web,!canary,env in (dev,prod),gpu,tier=fe,zone notin (b)");
    free(s);

    s = from_json_str("{}", &err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(s, "");
    free(s);

    s = from_json_str("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":"
                      "[\"1\"]}]}",
                      &err, &rc);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_str_eq(err.msg, "\"Gt\" is not a valid label selector operator");

    s = from_json_str("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", &err, &rc);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_str_eq(err.msg, "values: Invalid value: []string(nil): for 'in', 'notin' "
                              "operators, values set can't be empty");

    s = from_json_str("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
                      "\"values\":[\"x\"]}]}",
                      &err, &rc);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_str_eq(err.msg, "values: Invalid value: []string{\"x\"}: values set must be empty "
                              "for exists and does not exist");

    s = from_json_str("{\"matchLabels\":{\"a b\":\"c\"}}", &err, &rc);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_str_eq(err.msg, "key: Invalid value: \"a b\": " QNAME_DETAIL);

    s = from_json_str("{\"matchLabels\":{\"a\":\"-x\"}}", &err, &rc);
    ck_assert_int_eq(rc, TN_EINVAL);
    ck_assert_str_eq(err.msg, "values[0][a]: Invalid value: \"-x\": " VALUE_DETAIL);

    /* nil selector matches nothing, {} everything */
    struct tn_labelsel *sel;
    json_t *obj = J("{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");
    ck_assert_int_eq(tn_labelsel_from_json(NULL, &sel, NULL), 0);
    ck_assert(!tn_labelsel_matches(sel, obj));
    ck_assert(!tn_labelsel_is_empty(sel));
    tn_labelsel_free(sel);
    json_t *e = J("{}");
    ck_assert_int_eq(tn_labelsel_from_json(e, &sel, NULL), 0);
    ck_assert(tn_labelsel_matches(sel, obj));
    ck_assert(tn_labelsel_is_empty(sel));
    tn_labelsel_free(sel);
    json_decref(e);

    json_t *ls = J("{\"matchLabels\":{\"a\":\"b\"},\"matchExpressions\":[{\"key\":\"c\","
                   "\"operator\":\"DoesNotExist\"}]}");
    ck_assert_int_eq(tn_labelsel_from_json(ls, &sel, NULL), 0);
    ck_assert(tn_labelsel_matches(sel, obj));
    tn_labelsel_free(sel);
    json_decref(ls);
    json_decref(obj);
}
END_TEST

START_TEST(label_from_map)
{
    struct tn_labelsel *sel;
    struct tn_err err = {0};
    json_t *m = J("{\"app\":\"web\",\"tier\":\"fe\"}");
    ck_assert_int_eq(tn_labelsel_from_map(m, &sel, &err), 0);
    char *s = tn_labelsel_to_string(sel);
    ck_assert_str_eq(s, "app=web,tier=fe");
    free(s);
    json_t *yes = J("{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\",\"x\":\"y\"}}}");
    json_t *no = J("{\"metadata\":{\"labels\":{\"app\":\"web\"}}}");
    ck_assert(tn_labelsel_matches(sel, yes));
    ck_assert(!tn_labelsel_matches(sel, no));
    tn_labelsel_free(sel);
    json_decref(m);

    ck_assert_int_eq(tn_labelsel_from_map(NULL, &sel, &err), 0);
    ck_assert(tn_labelsel_matches(sel, no));
    tn_labelsel_free(sel);

    m = J("{\"app\":1}");
    ck_assert_int_eq(tn_labelsel_from_map(m, &sel, &err), TN_EINVAL);
    json_decref(m);
    json_decref(yes);
    json_decref(no);
}
END_TEST

START_TEST(label_validate)
{
    struct tn_err err = {0};
    ck_assert_int_eq(tn_label_key_validate("app.kubernetes.io/name", &err), 0);
    ck_assert_int_eq(tn_label_key_validate("a/b/c", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg,
                     "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                     "'my.name',  or '123-abc', regex used for validation is "
                     "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                     "prefix and '/' (e.g. 'example.com/MyName')");
    ck_assert_int_eq(tn_label_key_validate("", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "name part must be non-empty; " QNAME_DETAIL);
    ck_assert_int_eq(tn_label_value_validate("", &err), 0);
    ck_assert_int_eq(tn_label_value_validate("v1.2_3-x", &err), 0);
    ck_assert_int_eq(tn_label_value_validate("x_", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, VALUE_DETAIL);
}
END_TEST

/* ---- fields ---- */

static void field_roundtrip(const char *s, const char *want)
{
    struct tn_fieldsel *sel;
    struct tn_err err = {0};
    ck_assert_msg(tn_fieldsel_parse(s, &sel, &err) == 0, "%s: %s", s, err.msg);
    char *got = tn_fieldsel_to_string(sel);
    ck_assert_str_eq(got, want);
    free(got);
    tn_fieldsel_free(sel);
}

static void field_fails(const char *s, const char *want)
{
    struct tn_fieldsel *sel = (void *)1;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_fieldsel_parse(s, &sel, &err), TN_EINVAL);
    ck_assert_ptr_null(sel);
    ck_assert_str_eq(err.msg, want);
}

START_TEST(field_parse)
{
    field_roundtrip("", "");
    field_roundtrip("metadata.name=foo", "metadata.name=foo");
    field_roundtrip("spec.nodeName==n1,metadata.name!=x", "metadata.name!=x,spec.nodeName=n1");
    field_roundtrip("spec.nodeName=", "spec.nodeName=");
    field_roundtrip("a=b,,c=d", "a=b,c=d");
    field_roundtrip("a=x\\,y\\=z\\\\w", "a=x\\,y\\=z\\\\w");
    field_roundtrip("a!b=c", "a!b=c");

    struct tn_fieldsel *sel;
    ck_assert_int_eq(tn_fieldsel_parse("a=x\\,y\\=z\\\\w,b!=q", &sel, NULL), 0);
    ck_assert_uint_eq(sel->n, 2);
    ck_assert_str_eq(sel->reqs[0].field, "a");
    ck_assert_str_eq(sel->reqs[0].value, "x,y=z\\w");
    ck_assert_int_eq(sel->reqs[0].neq, 0);
    ck_assert_int_eq(sel->reqs[1].neq, 1);
    ck_assert_str_eq(tn_fieldsel_exact(sel, "a"), "x,y=z\\w");
    ck_assert_ptr_null(tn_fieldsel_exact(sel, "b"));
    tn_fieldsel_free(sel);

    field_fails("foo", "invalid selector: 'foo'; can't understand 'foo'");
    field_fails("a=b,foo", "invalid selector: 'a=b,foo'; can't understand 'foo'");
    field_fails("a=b\\q", "invalid field selector: invalid escape sequence: \\q");
    field_fails("a=b\\", "invalid field selector: invalid escape sequence: \\");
    field_fails("a=b=c", "invalid field selector: unescaped character in value: =");
}
END_TEST

static int fmatch(const char *s, const char *resource, const char *obj)
{
    struct tn_fieldsel *sel;
    struct tn_err err = {0};
    ck_assert_msg(tn_fieldsel_parse(s, &sel, &err) == 0, "%s", err.msg);
    json_t *o = J(obj);
    int m = resource ? tn_fieldsel_matches_resource(sel, resource, o) : tn_fieldsel_matches(sel, o);
    json_decref(o);
    tn_fieldsel_free(sel);
    return m;
}

START_TEST(field_match)
{
    const char *pod = "{\"metadata\":{\"name\":\"p1\",\"namespace\":\"default\"},"
                      "\"spec\":{\"restartPolicy\":\"Always\",\"priority\":7},"
                      "\"status\":{\"phase\":\"Pending\"}}";
    const char *bound = "{\"metadata\":{\"name\":\"p2\"},\"spec\":{\"nodeName\":\"edge-1\","
                        "\"hostNetwork\":true}}";
    ck_assert(fmatch("metadata.name=p1", NULL, pod));
    ck_assert(!fmatch("metadata.name=p2", NULL, pod));
    ck_assert(fmatch("metadata.name!=p2,metadata.namespace=default", NULL, pod));
    ck_assert(fmatch("spec.nodeName=", NULL, pod)); /* unscheduled */
    ck_assert(!fmatch("spec.nodeName=", NULL, bound));
    ck_assert(fmatch("spec.nodeName!=", NULL, bound));
    ck_assert(fmatch("spec.nodeName=edge-1", NULL, bound));
    ck_assert(fmatch("status.phase!=Running,status.phase!=Succeeded", NULL, pod));
    ck_assert(fmatch("spec.priority=7", NULL, pod));
    ck_assert(fmatch("spec.hostNetwork=true", NULL, bound));
    ck_assert(fmatch("spec.hostNetwork=", NULL, pod));
    ck_assert(fmatch("spec.hostNetwork=false", "pods", pod)); /* the pod field set defaults it */
    ck_assert(!fmatch("spec.hostNetwork=false", NULL, pod));
    ck_assert(fmatch("", NULL, pod));

    const char *ev = "{\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p1\"},\"reason\":"
                     "\"Scheduled\",\"reportingComponent\":\"sched\",\"type\":\"Normal\"}";
    ck_assert(fmatch("involvedObject.kind=Pod,involvedObject.name=p1,type=Normal", "events", ev));
    ck_assert(fmatch("source=sched", "events", ev));
    ck_assert(fmatch("involvedObject.uid=", "events", ev));
    const char *ev2 = "{\"source\":{\"component\":\"kubelet\"},\"reportingComponent\":\"x\"}";
    ck_assert(fmatch("source=kubelet", "events", ev2));

    ck_assert(fmatch("spec.unschedulable=false", "nodes", "{\"spec\":{}}"));
    ck_assert(fmatch("spec.unschedulable=true", "nodes", "{\"spec\":{\"unschedulable\":true}}"));
}
END_TEST

static void fvalidate(const char *s, const char *resource, int namespaced, const char *want)
{
    struct tn_fieldsel *sel;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_fieldsel_parse(s, &sel, &err), 0);
    int rc = tn_fieldsel_validate(sel, resource, namespaced, &err);
    if (want) {
        ck_assert_int_eq(rc, TN_EINVAL);
        ck_assert_str_eq(err.msg, want);
    } else {
        ck_assert_msg(rc == 0, "%s %s: %s", resource, s, err.msg);
    }
    tn_fieldsel_free(sel);
}

START_TEST(field_validate)
{
    fvalidate("metadata.name=a,metadata.namespace=b", "configmaps", 1, NULL);
    fvalidate("metadata.namespace=b", "persistentvolumes", 0,
              "field label not supported: metadata.namespace");
    fvalidate("spec.nodeName=,status.phase=Running,spec.restartPolicy=Always,spec.schedulerName="
              "x,spec.serviceAccountName=y,spec.hostNetwork=false,status.podIP=1.2.3.4,"
              "status.nominatedNodeName=z",
              "pods", 1, NULL);
    fvalidate("spec.foo=x", "pods", 1, "field label not supported: spec.foo");
    fvalidate("involvedObject.kind=Pod,involvedObject.namespace=a,involvedObject.name=b,"
              "involvedObject.uid=c,involvedObject.apiVersion=v1,involvedObject.resourceVersion="
              "1,involvedObject.fieldPath=f,reason=r,reportingComponent=c,source=s,type=Normal",
              "events", 1, NULL);
    fvalidate("spec.nodeName=a", "events", 1, "field label not supported: spec.nodeName");
    fvalidate("type=Opaque", "secrets", 1, NULL);
    fvalidate("type=Opaque", "configmaps", 1, "field label not supported: type");
    fvalidate("spec.unschedulable=true,metadata.name=n", "nodes", 1, NULL);
    fvalidate("metadata.namespace=x", "nodes", 1, "field label not supported: metadata.namespace");
    fvalidate("status.phase=Active", "namespaces", 0, NULL);
    fvalidate("status.phase=Active", "models", 1, "field label not supported: status.phase");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apiserver_selector");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, label_parse_valid);
    tcase_add_test(tc, label_parse_errors);
    tcase_add_test(tc, label_match);
    tcase_add_test(tc, label_from_json);
    tcase_add_test(tc, label_from_map);
    tcase_add_test(tc, label_validate);
    tcase_add_test(tc, field_parse);
    tcase_add_test(tc, field_match);
    tcase_add_test(tc, field_validate);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
