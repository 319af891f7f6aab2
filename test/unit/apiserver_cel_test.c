/* Unit tests for pkg/apiserver/cel: literals, operators and precedence, CEL error semantics
 * (short-circuit over errors, overflow, division by zero), macros, functions, the step limit
 * and positioned syntax errors. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/cel.h"
#include "base/err.h"

static const char *const SELF =
    "{\"a\":{\"b\":5},\"l\":[1,2,3],\"m\":{\"ab\":1,\"ac\":2},\"s\":\"héllo\","
    "\"foo-bar\":7,\"n\":null,\"prob\":1}";

/* Evaluates rule against SELF (with schema when given) and returns the compact JSON result or
 * "ERR: <message>" / "COMPILE: <message>" (malloc'd). */
static char *run_schema(const char *rule, const char *schema, uint64_t steps)
{
    json_error_t je;
    json_t *self = json_loads(SELF, 0, &je);
    json_t *sch = schema ? json_loads(schema, 0, &je) : NULL;
    ck_assert_ptr_nonnull(self);
    struct tn_cel_prog *p = NULL;
    struct tn_err err = {0};
    char *out = NULL;
    if (tn_cel_compile(rule, &p, &err) != 0) {
        ck_assert_int_eq(err.code, TN_EINVAL);
        if (asprintf(&out, "COMPILE: %s", err.msg) < 0) out = NULL;
    } else {
        struct tn_cel_env env = {.self = self, .schema = sch, .max_steps = steps};
        json_t *res = NULL;
        int rc = tn_cel_eval(p, &env, &res, &err);
        if (rc != 0) {
            if (asprintf(&out, "ERR%s: %s", rc == TN_ETOOBIG ? "(cost)" : "", err.msg) < 0)
                out = NULL;
        } else {
            out = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
            json_decref(res);
        }
    }
    tn_cel_free(p);
    json_decref(self);
    json_decref(sch);
    return out;
}

static void check(const char *rule, const char *expect)
{
    char *got = run_schema(rule, NULL, 0);
    ck_assert_msg(got && strcmp(got, expect) == 0, "rule %s: got %s, want %s", rule,
                  got ? got : "(null)", expect);
    free(got);
}

START_TEST(literals)
{
    check("1", "1");
    check("-9223372036854775808", "-9223372036854775808");
    check("0x1F", "31");
    check("3u", "3");
    check("1.5e3", "1500.0");
    check(".5", "0.5");
    check("'a\\tb\\u00e9\\x41\\101'", "\"a\\tbéAA\"");
    check("\"dq\" + '''tri'ple'''", "\"dqtri'ple\"");
    check("r'\\d+'", "\"\\\\d+\"");
    check("true", "true");
    check("null", "null");
    check("[1, 'a', [true],]", "[1,\"a\",[true]]");
    check("{'k': 1, 'j': [2]}", "{\"j\":[2],\"k\":1}");
}
END_TEST

START_TEST(arithmetic_and_precedence)
{
    check("1 + 2 * 3", "7");
    check("(1 + 2) * 3", "9");
    check("7 / 2", "3");
    check("-7 % 3", "-1");
    check("10 - 2 - 3", "5");
    check("1.0 / 4.0", "0.25");
    check("2u * 3u", "6");
    check("-(3)", "-3");
    check("!true || true", "true");
    check("!(true || true)", "false");
    check("1 < 2 == true", "true");
    check("true ? 1 : 2", "1");
    check("false ? 1 : true ? 2 : 3", "2");
    check("1 + 2 > 2 && 'a' + 'b' == 'ab'", "true");
    check("[1, 2] + [3]", "[1,2,3]");
}
END_TEST

START_TEST(errors_and_overflow)
{
    check("9223372036854775807 + 1", "ERR: integer overflow");
    check("-9223372036854775807 - 2", "ERR: integer overflow");
    check("9223372036854775807 * 2", "ERR: integer overflow");
    check("-(-9223372036854775807 - 1)", "ERR: integer overflow");
    check("(-9223372036854775807 - 1) / -1", "ERR: integer overflow");
    check("0u - 1u", "ERR: unsigned integer overflow");
    check("1 / 0", "ERR: division by zero");
    check("1 % 0", "ERR: modulus by zero");
    check("1 + 1u", "ERR: no such overload");
    check("1 + 1.0", "ERR: no such overload");
    check("'a' < 1", "ERR: no such overload");
    check("!1", "ERR: no such overload");
    check("1 ? 2 : 3", "ERR: no such overload");
    check("self.zz", "ERR: no such key: zz");
    check("self.l[3]", "ERR: index '3' out of range in list size '3'");
    check("self.m['zz']", "ERR: no such key: zz");
    check("self.n.x", "ERR: no such overload");
    check("oldSelf", "ERR: no such attribute: oldSelf");
}
END_TEST

START_TEST(logic_absorbs_errors)
{
    check("false && 1 / 0 == 1", "false");
    check("1 / 0 == 1 && false", "false");
    check("true || 1 / 0 == 1", "true");
    check("1 / 0 == 1 || true", "true");
    check("true && 1 / 0 == 1", "ERR: division by zero");
    check("1 / 0 == 1 || false", "ERR: division by zero");
    check("self.zz == 1 || self.a.b == 5", "true");
    check("1 && true", "ERR: no such overload");
}
END_TEST

START_TEST(equality_and_comparison)
{
    check("1 == 1.0", "true");
    check("1u == 1", "true");
    check("-1 < 1u", "true");
    check("2.5 > 2", "true");
    check("'a' == 1", "false");
    check("null == null", "true");
    check("[1, [2]] == [1, [2]]", "true");
    check("{'a': 1} == {'a': 1.0}", "true");
    check("{'a': 1} != {'a': 2}", "true");
    check("'abc' < 'abd'", "true");
    check("'b' >= 'abc'", "true");
    check("false < true", "true");
    check("2 in self.l", "true");
    check("'ab' in self.m", "true");
    check("'zz' in self.m", "false");
}
END_TEST

START_TEST(selection_and_has)
{
    check("self.a.b", "5");
    check("self.l[1]", "2");
    check("self.m['ac']", "2");
    check("self.foo__dash__bar", "7");
    check("has(self.a)", "true");
    check("has(self.a.c)", "false");
    check("has(self.zz)", "false");
    check("has(self.zz.y)", "ERR: no such key: zz");
    check("has(self.n)", "true");
    check("self.n == null", "true");
}
END_TEST

START_TEST(functions)
{
    check("size(self.l) + self.m.size() + self.s.size()", "10");
    check("'héllo'.size()", "5");
    check("self.s.startsWith('hé') && self.s.endsWith('lo') && self.s.contains('éll')", "true");
    check("'abc123'.matches('^[a-z]+\\\\d+$')", "true");
    check("matches('abc', 'b')", "true");
    check("'ABC'.matches('^[a-z]+$')", "false");
    check("'x'.matches(self.s)", "false");
    check("int('42') + int(2.9) + int(3u)", "47");
    check("int('x')", "ERR: cannot convert 'x' to int");
    check("uint(5)", "5");
    check("uint(-1)", "ERR: unsigned integer overflow");
    check("double(1) / 2.0", "0.5");
    check("string(1.5) + string(12) + string(true) + string(1e6)", "\"1.512true1e+06\"");
    check("bool('true') && !bool('False')", "true");
    check("dyn(1) == 1", "true");
    check("'Hello'.lowerAscii() + 'x'.upperAscii()", "\"helloX\"");
    check("'  x '.trim()", "\"x\"");
    check("'hello'.substring(1, 3) + 'hello'.substring(3)", "\"ello\"");
    check("'hello'.indexOf('l') + 'hello'.lastIndexOf('l')", "5");
    check("'a-b-c'.replace('-', '+')", "\"a+b+c\"");
    check("'a,b,c'.split(',')", "[\"a\",\"b\",\"c\"]");
    check("['a', 'b'].join('-')", "\"a-b\"");
}
END_TEST

START_TEST(durations_and_timestamps)
{
    check("duration('1h') > duration('30m')", "true");
    check("duration('1h30m') == duration('90m')", "true");
    check("string(duration('1.5s'))", "\"1.5s\"");
    check("timestamp('2024-01-01T00:00:00Z') < timestamp('2024-01-02T00:00:00Z')", "true");
    check("timestamp('2024-01-02T00:00:00Z') - timestamp('2024-01-01T00:00:00Z') == "
          "duration('24h')",
          "true");
    check("string(timestamp('2024-01-01T00:00:00Z') + duration('1m'))", "\"2024-01-01T00:01:00Z\"");
    check("duration('soon')", "ERR: invalid duration: 'soon'");
}
END_TEST

START_TEST(macros)
{
    check("self.l.all(x, x > 0)", "true");
    check("self.l.all(x, x > 1)", "false");
    check("self.l.exists(x, x == 3)", "true");
    check("self.l.exists_one(x, x >= 2)", "false");
    check("self.l.exists_one(x, x == 2)", "true");
    check("self.l.map(x, x * 2)", "[2,4,6]");
    check("self.l.map(x, x > 1, x * 10)", "[20,30]");
    check("self.l.filter(x, x % 2 == 1)", "[1,3]");
    check("self.m.all(k, k.startsWith('a'))", "true");
    check("self.m.map(k, self.m[k])", "[1,2]");
    check("self.l.all(x, self.l.exists(y, y == x))", "true");
    /* all/exists absorb errors when another element decides */
    check("[0, 1].exists(x, 1 / x == 1)", "true");
    check("[0, 1].all(x, 1 / x == 5)", "false");
    check("[0, 1].all(x, 1 / x == 1)", "ERR: division by zero");
    check("[0, 1].exists_one(x, 1 / x == 1)", "ERR: division by zero");
    check("[1].map(x, x / 0)", "ERR: division by zero");
    check("self.a.all(k, k == 'b')", "true");
    check("1.all(x, true)", "ERR: no such overload");
}
END_TEST

START_TEST(schema_typed_values)
{
    const char *sch = "{\"type\":\"object\",\"properties\":{\"prob\":{\"type\":\"number\"}}}";
    char *got = run_schema("self.prob + 0.5", sch, 0);
    ck_assert_str_eq(got, "1.5");
    free(got);
    got = run_schema("self.prob + 0.5", NULL, 0);
    ck_assert_str_eq(got, "ERR: no such overload");
    free(got);
}
END_TEST

START_TEST(step_limit)
{
    /* 60^4 iterations would take far too long without a budget */
    const char *rule = "[" /* 60 elements */
                       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"
                       ".all(a, self.l.all(b, [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"
                       ".all(c, [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"
                       ".all(d, a + b + c + d > 0))))";
    char *got = run_schema(rule, NULL, 0);
    ck_assert_str_eq(got, "ERR(cost): operation cancelled: actual cost limit exceeded");
    free(got);
    /* the budget cannot be escaped through && absorbing the error */
    char *r2;
    ck_assert_int_ge(asprintf(&r2, "false || %s", rule), 0);
    got = run_schema(r2, NULL, 0);
    ck_assert_str_eq(got, "ERR(cost): operation cancelled: actual cost limit exceeded");
    free(got);
    free(r2);
    /* a small budget stops small rules too; the same rule passes with the default */
    got = run_schema("self.l.all(x, x > 0)", NULL, 5);
    ck_assert_str_eq(got, "ERR(cost): operation cancelled: actual cost limit exceeded");
    free(got);
    /* string doubling is charged by length */
    got = run_schema("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25].map(x, "
                     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa').join('')"
                     ".size() > 0",
                     NULL, 0);
    ck_assert_str_eq(got, "true");
    free(got);
}
END_TEST

START_TEST(syntax_errors)
{
    check("1 +", "COMPILE: ERROR: <input>:1:4: Syntax error: mismatched input '<EOF>' expecting an "
                 "expression");
    check("self.a.", "COMPILE: ERROR: <input>:1:8: Syntax error: mismatched input '<EOF>' "
                     "expecting IDENTIFIER");
    check("1 2", "COMPILE: ERROR: <input>:1:3: Syntax error: mismatched input '2' expecting <EOF>");
    check("(1 + 2", "COMPILE: ERROR: <input>:1:7: Syntax error: mismatched input '<EOF>' "
                    "expecting ')'");
    check("self.x &&\n  self.y ==", "COMPILE: ERROR: <input>:2:12: Syntax error: mismatched input "
                                    "'<EOF>' expecting an expression");
    check("'abc", "COMPILE: ERROR: <input>:1:1: Syntax error: token recognition error at: ''abc'");
    check("1 # 2", "COMPILE: ERROR: <input>:1:3: Syntax error: token recognition error at: '#'");
    check("foo(1)", "COMPILE: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')");
    check("x > 1", "COMPILE: ERROR: <input>:1:1: undeclared reference to 'x' (in container '')");
    check("self.l.all(x, y)",
          "COMPILE: ERROR: <input>:1:15: undeclared reference to 'y' (in container '')");
    check("self.l.all(1, true)", "COMPILE: ERROR: <input>:1:12: argument must be a simple name");
    check("has(self)", "COMPILE: ERROR: <input>:1:5: invalid argument to has() macro");
    check("'a'.matches('(')",
          "COMPILE: ERROR: <input>:1:13: invalid regular expression '(': Unmatched ( or \\(");
    check("9223372036854775808", "COMPILE: ERROR: <input>:1:1: invalid int literal");
    check("self.size(1)", "COMPILE: ERROR: <input>:1:6: found no matching overload for 'size' "
                          "applied to 2 argument(s)");
    check("if", "COMPILE: ERROR: <input>:1:1: Syntax error: reserved identifier: if");
}
END_TEST

START_TEST(nesting_limits)
{
    char rule[2100];
    memset(rule, '(', 1000);
    rule[1000] = '1';
    memset(rule + 1001, ')', 1000);
    rule[2001] = 0;
    char *got = run_schema(rule, NULL, 0);
    ck_assert_str_eq(got, "COMPILE: ERROR: <input>:1:65: expression nested too deeply (limit 64)");
    free(got);
    memset(rule, '!', 2000);
    strcpy(rule + 2000, "true");
    got = run_schema(rule, NULL, 0);
    ck_assert_str_eq(got, "COMPILE: ERROR: <input>:1:64: expression nested too deeply (limit 64)");
    free(got);
    /* long flat chains are parsed iteratively but still bounded */
    char *chain = malloc(20000);
    strcpy(chain, "1");
    for (int i = 0; i < 3000; i++)
        strcat(chain, "+1");
    got = run_schema(chain, NULL, 0);
    ck_assert_str_eq(got, "COMPILE: ERROR: <input>:1:1: expression nested too deeply (limit 200)");
    free(got);
    free(chain);
}
END_TEST

START_TEST(eval_bool_and_old_self)
{
    struct tn_cel_prog *p = NULL;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_cel_compile("self == oldSelf", &p, &err), 0);
    ck_assert_int_eq(tn_cel_uses_old_self(p), 1);
    json_t *a = json_string("a"), *b = json_string("b");
    struct tn_cel_env env = {.self = a, .old_self = b};
    int ok = -1;
    ck_assert_int_eq(tn_cel_eval_bool(p, &env, &ok, &err), 0);
    ck_assert_int_eq(ok, 0);
    env.old_self = a;
    ck_assert_int_eq(tn_cel_eval_bool(p, &env, &ok, &err), 0);
    ck_assert_int_eq(ok, 1);
    tn_cel_free(p);
    ck_assert_int_eq(tn_cel_compile("self + 'x'", &p, &err), 0);
    ck_assert_int_eq(tn_cel_uses_old_self(p), 0);
    ck_assert_int_eq(tn_cel_eval_bool(p, &env, &ok, &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "rule did not evaluate to a bool");
    tn_cel_free(p);
    json_decref(a);
    json_decref(b);
}
END_TEST

START_TEST(regex_translation)
{
    static const struct {
        const char *re, *s;
        int match;
    } cases[] = {
        {"^\\d{3}$", "123", 1},
        {"^\\d{3}$", "12a", 0},
        {"^\\w+$", "a_B9", 1},
        {"^\\w+$", "a-b", 0},
        {"^a\\sb$", "a b", 1},
        {"^[\\d.]+$", "1.2.3", 1},
        {"^[\\w-]+$", "a-b_c", 1},
        {"^[^\\s]+$", "ab c", 0},
        {"(?:ab)+", "abab", 1},
        {"(?i)^abc$", "ABC", 1},
        {"^a.*?b$", "axxb", 1},
        {"^[a\\]]+$", "a]a", 1},
        {"^\\.\\*$", ".*", 1},
        {"\\Aab\\z", "ab", 1},
        {"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "edge-node-1", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        regex_t re;
        struct tn_err err = {0};
        ck_assert_msg(tn_regex_compile(&re, cases[i].re, &err) == 0, "%s: %s", cases[i].re,
                      err.msg);
        ck_assert_msg((regexec(&re, cases[i].s, 0, NULL, 0) == 0) == cases[i].match, "%s ~ %s",
                      cases[i].re, cases[i].s);
        regfree(&re);
    }
    regex_t re;
    struct tn_err err = {0};
    ck_assert_int_eq(tn_regex_compile(&re, "(a)\\1", &err), TN_EINVAL);
    ck_assert_str_eq(err.msg, "invalid escape sequence: `\\1`");
    ck_assert_int_eq(tn_regex_compile(&re, "\\pL", &err), TN_EINVAL);
    ck_assert_int_eq(tn_regex_compile(&re, "[a", &err), TN_EINVAL);
}
END_TEST

START_TEST(format_double)
{
    char b[64];
    tn_cel_format_double(1.5, b, sizeof(b));
    ck_assert_str_eq(b, "1.5");
    tn_cel_format_double(100000, b, sizeof(b));
    ck_assert_str_eq(b, "100000");
    tn_cel_format_double(1e6, b, sizeof(b));
    ck_assert_str_eq(b, "1e+06");
    tn_cel_format_double(1234567, b, sizeof(b));
    ck_assert_str_eq(b, "1.234567e+06");
    tn_cel_format_double(0.0001, b, sizeof(b));
    ck_assert_str_eq(b, "0.0001");
    tn_cel_format_double(0.00001, b, sizeof(b));
    ck_assert_str_eq(b, "1e-05");
    tn_cel_format_double(-0.1, b, sizeof(b));
    ck_assert_str_eq(b, "-0.1");
    tn_cel_format_double(1, b, sizeof(b));
    ck_assert_str_eq(b, "1");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apiserver_cel");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, literals);
    tcase_add_test(tc, arithmetic_and_precedence);
    tcase_add_test(tc, errors_and_overflow);
    tcase_add_test(tc, logic_absorbs_errors);
    tcase_add_test(tc, equality_and_comparison);
    tcase_add_test(tc, selection_and_has);
    tcase_add_test(tc, functions);
    tcase_add_test(tc, durations_and_timestamps);
    tcase_add_test(tc, macros);
    tcase_add_test(tc, schema_typed_values);
    tcase_add_test(tc, step_limit);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, nesting_limits);
    tcase_add_test(tc, eval_bool_and_old_self);
    tcase_add_test(tc, regex_translation);
    tcase_add_test(tc, format_double);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
