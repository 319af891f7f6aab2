/* Unit tests for pkg/base/yaml: core-schema typing, tags, multi-document streams, anchors and
 * merge keys, the hostile-input limits (billion laughs, depth bombs), positioned errors, and
 * the dump -> load round trip. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/yaml.h"

/* Loads one document and compares it with the JSON text want. */
static void expect_json_at(const char *yaml, const char *want, int line)
{
    struct tn_err err = {0};
    json_t *got = tn_yaml_load_one(yaml, strlen(yaml), NULL, &err);
    ck_assert_msg(got != NULL, "line %d: load failed: %s\n--- input:\n%s", line, err.msg, yaml);
    json_t *exp = json_loads(want, JSON_DECODE_ANY, NULL);
    ck_assert_msg(exp != NULL, "line %d: bad expected JSON %s", line, want);
    char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
    ck_assert_msg(json_equal(got, exp), "line %d: got %s, want %s\n--- input:\n%s", line, g, want,
                  yaml);
    free(g);
    json_decref(got);
    json_decref(exp);
}
#define expect_json(y, w) expect_json_at((y), (w), __LINE__)

/* Loads a stream that must fail with code and a message containing each of the substrings. */
static void expect_err_at(const char *yaml, size_t len, const struct tn_yaml_limits *lim, int code,
                          const char *sub1, const char *sub2, int line)
{
    struct tn_err err = {0};
    json_t *got = tn_yaml_load_stream(yaml, len, lim, &err);
    if (got) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        ck_abort_msg("line %d: expected an error, got %.200s", line, g);
    }
    ck_assert_msg(err.code == code, "line %d: code %d, want %d (%s)", line, err.code, code,
                  err.msg);
    ck_assert_msg(strstr(err.msg, sub1), "line %d: message \"%s\" lacks \"%s\"", line, err.msg,
                  sub1);
    if (sub2)
        ck_assert_msg(strstr(err.msg, sub2), "line %d: message \"%s\" lacks \"%s\"", line, err.msg,
                      sub2);
}
#define expect_err(y, code, s1, s2)                                                                \
    expect_err_at((y), strlen(y), NULL, (code), (s1), (s2), __LINE__)

/* Dumps v and loads the text back: must be equal. Returns the dumped text (caller frees). */
static char *roundtrip_at(const json_t *v, int line)
{
    char *text = tn_yaml_dump(v);
    ck_assert_msg(text != NULL, "line %d: dump failed", line);
    struct tn_err err = {0};
    json_t *back = tn_yaml_load_one(text, strlen(text), NULL, &err);
    ck_assert_msg(back != NULL, "line %d: reload failed: %s\n--- dumped:\n%s", line, err.msg, text);
    char *a = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char *b = json_dumps(back, JSON_ENCODE_ANY | JSON_COMPACT);
    ck_assert_msg(json_equal(v, back), "line %d: %s came back as %s\n--- dumped:\n%s", line, a, b,
                  text);
    free(a);
    free(b);
    json_decref(back);
    return text;
}
#define roundtrip(v) free(roundtrip_at((v), __LINE__))

static char *repeat(const char *s, size_t times)
{
    size_t n = strlen(s);
    char *out = malloc(n * times + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < times; i++)
        memcpy(out + i * n, s, n);
    out[n * times] = 0;
    return out;
}

/* ---- typing ---- */

START_TEST(test_nulls_and_bools)
{
    expect_json("[null, Null, NULL, ~]", "[null, null, null, null]");
    expect_json("a:\nb: ~\n", "{\"a\": null, \"b\": null}");
    expect_json("[true, True, TRUE, false, False, FALSE]",
                "[true, true, true, false, false, false]");
    /* YAML 1.1 booleans are plain strings under the 1.2 core schema */
    expect_json("[yes, no, on, off, y, n, Yes, OFF, tRUE, nULL]",
                "[\"yes\", \"no\", \"on\", \"off\", \"y\", \"n\", \"Yes\", \"OFF\", \"tRUE\","
                " \"nULL\"]");
}
END_TEST

START_TEST(test_integers)
{
    expect_json("[0, -12, +7, 007, 0o17, 0x1F, 0xff, 0o0]", "[0, -12, 7, 7, 15, 31, 255, 0]");
    expect_json("[0o8, 0x, 0xg, 1_000, 0b101, 1:20, 0O17, 0X1F, -0x1]",
                "[\"0o8\", \"0x\", \"0xg\", \"1_000\", \"0b101\", \"1:20\", \"0O17\", \"0X1F\","
                " \"-0x1\"]");

    struct tn_err err = {0};
    const char *big =
        "- 9223372036854775807\n- -9223372036854775808\n- 9223372036854775808\n"
        "- 0xFFFFFFFFFFFFFFFF\n- 0x7FFFFFFFFFFFFFFF\n- 123456789012345678901234567890\n";
    json_t *v = tn_yaml_load_one(big, strlen(big), NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert(json_is_integer(json_array_get(v, 0)));
    ck_assert(json_integer_value(json_array_get(v, 0)) == LLONG_MAX);
    ck_assert(json_is_integer(json_array_get(v, 1)));
    ck_assert(json_integer_value(json_array_get(v, 1)) == LLONG_MIN);
    /* overflowing long long: becomes a real rather than an error or a wrapped value */
    ck_assert(json_is_real(json_array_get(v, 2)));
    ck_assert_double_eq(json_real_value(json_array_get(v, 2)), 9223372036854775808.0);
    ck_assert(json_is_real(json_array_get(v, 3)));
    ck_assert_double_eq(json_real_value(json_array_get(v, 3)), 18446744073709551615.0);
    ck_assert(json_is_integer(json_array_get(v, 4)));
    ck_assert(json_integer_value(json_array_get(v, 4)) == LLONG_MAX);
    ck_assert(json_is_real(json_array_get(v, 5)));
    ck_assert_double_eq_tol(json_real_value(json_array_get(v, 5)), 1.2345678901234568e29, 1e15);
    json_decref(v);
}
END_TEST

START_TEST(test_floats)
{
    struct tn_err err = {0};
    const char *y = "[1.5, -.5, 1., 1e3, 2.5E-3, +1.0e+2, .5e1, -0.0]";
    json_t *v = tn_yaml_load_one(y, strlen(y), NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    const double want[] = {1.5, -0.5, 1.0, 1000.0, 0.0025, 100.0, 5.0, 0.0};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *e = json_array_get(v, i);
        ck_assert_msg(json_is_real(e), "item %zu is not a real", i);
        ck_assert_double_eq(json_real_value(e), want[i]);
    }
    json_decref(v);
    expect_json("[1e, ., 1.2.3, e3, 1e3.5, 1.5x, '1.5']",
                "[\"1e\", \".\", \"1.2.3\", \"e3\", \"1e3.5\", \"1.5x\", \"1.5\"]");
    /* JSON has no infinity or NaN */
    expect_err("a: .inf\n", TN_EINVAL, "line 1 column 4", "JSON");
    expect_err("- 1\n- -.Inf\n", TN_EINVAL, "line 2 column 3", "-.Inf");
    expect_err("x: .nan", TN_EINVAL, "line 1 column 4", "NaN");
    expect_err("x: 1e999", TN_EINVAL, "line 1 column 4", "out of range");
    expect_err("x: !!float .NaN", TN_EINVAL, "line 1 column 4", "JSON");
    /* quoted, they are ordinary strings */
    expect_json("['.inf', \".nan\"]", "[\".inf\", \".nan\"]");
}
END_TEST

START_TEST(test_quoted_are_strings)
{
    expect_json("['true', \"123\", '~', \"\", 'null', \"0x10\", '1.5', \"-\"]",
                "[\"true\", \"123\", \"~\", \"\", \"null\", \"0x10\", \"1.5\", \"-\"]");
    expect_json("a: |\n  line1\n  line2\nb: >\n  folded\n  text\n",
                "{\"a\": \"line1\\nline2\\n\", \"b\": \"folded text\\n\"}");
    expect_json("a: |\n  123\n", "{\"a\": \"123\\n\"}");
    expect_json("plain words here: with spaces", "{\"plain words here\": \"with spaces\"}");
}
END_TEST

START_TEST(test_tags)
{
    expect_json("[!!str 123, !!str true, !!str ~, !!str , !!str 1.5]",
                "[\"123\", \"true\", \"~\", \"\", \"1.5\"]");
    expect_json("[!!int \"42\", !!int 0x10, !!int -3, !!int 0o10]", "[42, 16, -3, 8]");
    expect_json("[!!bool \"true\", !!bool False, !!null \"\", !!null ~, !!null null]",
                "[true, false, null, null, null]");
    expect_json("[!!binary aGVsbG8=, ! 12, !!timestamp 2001-12-14]",
                "[\"aGVsbG8=\", \"12\", \"2001-12-14\"]");
    /* unknown local tags keep the untagged typing */
    expect_json("[!foo 12, !foo \"12\", !bar true, !baz {a: 1}, !q [1]]",
                "[12, \"12\", true, {\"a\": 1}, [1]]");
    expect_json("%TAG !e! tag:example.com,2000:\n---\n[!e!x 5, !!map {a: 1}, !!seq [2]]",
                "[5, {\"a\": 1}, [2]]");

    struct tn_err err = {0};
    const char *y = "[!!float 3, !!float \"2.5\", !!float 0x10]";
    json_t *v = tn_yaml_load_one(y, strlen(y), NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert(json_is_real(json_array_get(v, 0)));
    ck_assert_double_eq(json_real_value(json_array_get(v, 0)), 3.0);
    ck_assert_double_eq(json_real_value(json_array_get(v, 1)), 2.5);
    ck_assert_double_eq(json_real_value(json_array_get(v, 2)), 16.0);
    json_decref(v);

    expect_err("a: !!int abc", TN_EINVAL, "line 1 column 4", "\"abc\" is not a valid !!int");
    expect_err("a: !!bool yes", TN_EINVAL, "line 1 column 4", "!!bool");
    expect_err("a: !!null 0", TN_EINVAL, "line 1 column 4", "!!null");
    expect_err("a: !!float x1", TN_EINVAL, "line 1", "!!float");
    expect_err("a: !!map x", TN_EINVAL, "line 1 column 4", "!!map cannot apply to a scalar");
    expect_err("a: !!str {b: 1}", TN_EINVAL, "line 1 column 4", "!!str cannot apply to a mapping");
    expect_err("a: !!map [1]", TN_EINVAL, "line 1 column 4", "!!map cannot apply to a sequence");
}
END_TEST

START_TEST(test_keys)
{
    expect_json("{1: a, true: b, ~: c, 0x10: d, \"q\": e, 1.5: f, '': g}",
                "{\"1\": \"a\", \"true\": \"b\", \"null\": \"c\", \"0x10\": \"d\", \"q\": \"e\","
                " \"1.5\": \"f\", \"\": \"g\"}");
    expect_json("? plain\n: value\n? |\n  lit\n: 2\n", "{\"plain\": \"value\", \"lit\\n\": 2}");
    /* a quoted "null" and an explicit null key name the same JSON key */
    expect_err("~: 1\n\"null\": 2\n", TN_EINVAL, "line 2 column 1", "duplicate key \"null\"");

    expect_err("? [a, b]\n: 1\n", TN_EINVAL, "line 1 column 3",
               "mapping key must be a scalar, not a sequence");
    expect_err("{[a]: 1}", TN_EINVAL, "line 1 column 2", "not a sequence");
    expect_err("? {a: 1}\n: x\n", TN_EINVAL, "line 1 column 3", "not a mapping");
    expect_err("a: &m {x: 1}\n*m : 2\n", TN_EINVAL, "line 2 column 1", "alias *m is a mapping");
}
END_TEST

START_TEST(test_duplicate_keys)
{
    expect_err("a: 1\nb: 2\na: 3\n", TN_EINVAL, "line 3 column 1", "duplicate key \"a\"");
    expect_err("top:\n  x: 1\n  y:\n    z: 1\n  x: 2\n", TN_EINVAL, "line 5 column 3",
               "duplicate key \"x\"");
    expect_err("{a: 1, a: 1}", TN_EINVAL, "line 1 column 8", "duplicate key \"a\"");
    /* same key in different mappings is fine */
    expect_json("- a: 1\n- a: 2\n", "[{\"a\": 1}, {\"a\": 2}]");
}
END_TEST

START_TEST(test_unicode_and_nul)
{
    expect_json("name: \"caf\\u00e9 \\U0001F600\"\nplain: 日本語\n日本: \"\\x41\"\n",
                "{\"name\": \"caf\\u00e9 \\ud83d\\ude00\", \"plain\": \"\\u65e5\\u672c\\u8a9e\","
                " \"\\u65e5\\u672c\": \"A\"}");
    /* a UTF-8 byte order mark at the start is not content */
    expect_json("\xEF\xBB\xBF"
                "a: 1\n",
                "{\"a\": 1}");
    expect_err("a: \"x\\0y\"\n", TN_EINVAL, "line 1 column 4", "NUL");
    expect_err("\"x\\0\": 1\n", TN_EINVAL, "line 1 column 1", "NUL");
    /* invalid UTF-8 is reported by byte offset */
    expect_err("a: \xff\xfe\xfd\n", TN_EINVAL, "byte offset 3", "invalid leading UTF-8 octet");
}
END_TEST

/* ---- documents ---- */

START_TEST(test_multi_document)
{
    struct tn_err err = {0};
    const char *y = "---\n---\na: 1\n---\n# only a comment\n---\n- 2\n...\n--- ~\n---\n";
    json_t *docs = tn_yaml_load_stream(y, strlen(y), NULL, &err);
    ck_assert_msg(docs != NULL, "%s", err.msg);
    json_t *want = json_loads("[{\"a\": 1}, [2], null]", 0, NULL);
    ck_assert_msg(json_equal(docs, want), "got %s", json_dumps(docs, JSON_COMPACT));
    json_decref(want);
    json_decref(docs);

    docs = tn_yaml_load_stream("", 0, NULL, &err);
    ck_assert_ptr_nonnull(docs);
    ck_assert_uint_eq(json_array_size(docs), 0);
    json_decref(docs);
    docs = tn_yaml_load_stream(NULL, 0, NULL, &err);
    ck_assert_ptr_nonnull(docs);
    ck_assert_uint_eq(json_array_size(docs), 0);
    json_decref(docs);
    docs = tn_yaml_load_stream("# nothing\n\n", 11, NULL, &err);
    ck_assert_ptr_nonnull(docs);
    ck_assert_uint_eq(json_array_size(docs), 0);
    json_decref(docs);

    /* JSON is YAML */
    expect_json("{\"kind\": \"Pod\", \"n\": [1, 2.5, null, true, \"x\"]}",
                "{\"kind\": \"Pod\", \"n\": [1, 2.5, null, true, \"x\"]}");

    json_t *v = tn_yaml_load_one("a: 1\n---\nb: 2\n", 14, NULL, &err);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(err.code, TN_EINVAL);
    ck_assert_msg(strstr(err.msg, "expected one YAML document, found 2"), "%s", err.msg);
    v = tn_yaml_load_one("---\n", 4, NULL, &err);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(err.msg, "no YAML document"), "%s", err.msg);

    /* anchors do not cross documents */
    expect_err("a: &x 1\n---\nb: *x\n", TN_EINVAL, "line 3 column 4", "unknown alias *x");
}
END_TEST

/* ---- anchors, aliases, merge keys ---- */

START_TEST(test_anchors)
{
    struct tn_err err = {0};
    const char *y = "a: &x {p: [1, 2], q: s}\nb: *x\nc: &s hello\nd: *s\n";
    json_t *v = tn_yaml_load_one(y, strlen(y), NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    json_t *want = json_loads("{\"a\": {\"p\": [1, 2], \"q\": \"s\"}, \"b\": {\"p\": [1, 2], "
                              "\"q\": \"s\"}, \"c\": \"hello\", \"d\": \"hello\"}",
                              0, NULL);
    ck_assert(json_equal(v, want));
    /* expanded by copy: changing one does not change the other */
    json_t *a = json_object_get(v, "a"), *b = json_object_get(v, "b");
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(json_object_get(a, "p"), json_object_get(b, "p"));
    json_array_append_new(json_object_get(a, "p"), json_integer(3));
    ck_assert_uint_eq(json_array_size(json_object_get(b, "p")), 2);
    json_decref(want);
    json_decref(v);

    /* redefinition: an alias refers to the latest anchor of that name */
    expect_json("- &x 1\n- *x\n- &x 2\n- *x\n", "[1, 1, 2, 2]");
    /* an alias as a key */
    expect_json("x: &k foo\n*k : bar\n", "{\"x\": \"foo\", \"foo\": \"bar\"}");
    expect_json("- &n 12\n- {*n : v}\n", "[12, {\"12\": \"v\"}]");
    expect_err("a: *nope\n", TN_EINVAL, "line 1 column 4", "unknown alias *nope");
    /* an anchor cannot refer to itself */
    expect_err("a: &x [1, *x]\n", TN_EINVAL, "line 1 column 11", "unknown alias *x");
}
END_TEST

START_TEST(test_merge_keys)
{
    expect_json("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n  z: 4\n",
                "{\"base\": {\"x\": 1, \"y\": 2}, \"m\": {\"x\": 1, \"y\": 3, \"z\": 4}}");
    /* explicit keys win wherever they appear */
    expect_json("base: &b {x: 1, y: 2}\nm:\n  y: 3\n  <<: *b\n",
                "{\"base\": {\"x\": 1, \"y\": 2}, \"m\": {\"x\": 1, \"y\": 3}}");
    /* a list of mappings: earlier ones win */
    expect_json("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n  z: 0\n",
                "{\"a\": {\"x\": 1}, \"b\": {\"x\": 2, \"y\": 2}, \"c\": {\"x\": 1, \"y\": 2,"
                " \"z\": 0}}");
    expect_json("m: {<<: {k: v}, j: w}", "{\"m\": {\"k\": \"v\", \"j\": \"w\"}}");
    /* a quoted << is an ordinary key */
    expect_json("\"<<\": 1\n", "{\"<<\": 1}");
    expect_err("a: 1\nm:\n  <<: 5\n", TN_EINVAL, "line 3 column 3", "merge key <<");
    expect_err("a: &a 1\nm:\n  <<: [*a]\n", TN_EINVAL, "line 3 column 3", "item 0");
    expect_err("m:\n  <<: {a: 1}\n  <<: {b: 1}\n", TN_EINVAL, "line 3 column 3", "<<");
}
END_TEST

START_TEST(test_billion_laughs)
{
    const char *lol =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    expect_err(lol, TN_ETOOBIG, "alias *", "max_alias_nodes");

    /* the budget is configurable; 4 nodes do not fit in 3 */
    struct tn_yaml_limits lim = {.max_alias_nodes = 3};
    const char *y = "a: &x [1, 2, 3]\nb: *x\n";
    expect_err_at(y, strlen(y), &lim, TN_ETOOBIG, "line 2 column 4", "alias *x", __LINE__);
    lim.max_alias_nodes = 4;
    struct tn_err err = {0};
    json_t *v = tn_yaml_load_one(y, strlen(y), &lim, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert_uint_eq(json_array_size(json_object_get(v, "b")), 3);
    json_decref(v);

    /* merge keys are charged too */
    const char *m = "a: &a {k1: [1,2,3,4,5,6,7,8,9,10]}\nb: {<<: *a}\nc: {<<: *a}\n";
    lim.max_alias_nodes = 15;
    expect_err_at(m, strlen(m), &lim, TN_ETOOBIG, "line 3 column 9", "alias *a", __LINE__);
}
END_TEST

/* ---- limits ---- */

START_TEST(test_depth_bombs)
{
    char *open = repeat("[", 10000), *close = repeat("]", 10000);
    size_t n = strlen(open);
    char *bomb = malloc(2 * n + 1);
    memcpy(bomb, open, n);
    memcpy(bomb + n, close, n + 1);
    expect_err(bomb, TN_ETOOBIG, "line 1 column 65", "deeper than 64 levels");
    /* unterminated: still a clean error */
    expect_err(open, TN_ETOOBIG, "line 1 column 65", "deeper than 64 levels");
    free(bomb);
    free(open);
    free(close);

    char *maps = repeat("a: {", 10000);
    expect_err(maps, TN_ETOOBIG, "deeper than 64 levels", NULL);
    free(maps);

    /* block style nesting, built line by line */
    struct tn_err err = {0};
    size_t cap = 200 * 210, len = 0;
    char *blk = malloc(cap);
    for (int d = 0; d < 200; d++)
        len += (size_t)snprintf(blk + len, cap - len, "%*sa:\n", 2 * d, "");
    expect_err(blk, TN_ETOOBIG, "line 65 column", "deeper than 64 levels");
    free(blk);

    /* exactly 64 levels are allowed, 65 are not */
    char *o64 = repeat("[", 64), *c64 = repeat("]", 64);
    char ok[200];
    snprintf(ok, sizeof(ok), "%s%s", o64, c64);
    json_t *v = tn_yaml_load_one(ok, strlen(ok), NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    json_t *inner = v;
    for (int d = 1; d < 64; d++)
        inner = json_array_get(inner, 0);
    ck_assert(json_is_array(inner));
    ck_assert_uint_eq(json_array_size(inner), 0);
    free(roundtrip_at(v, __LINE__));
    json_decref(v);
    snprintf(ok, sizeof(ok), "[%s%s]", o64, c64);
    expect_err(ok, TN_ETOOBIG, "deeper than 64", NULL);
    free(o64);
    free(c64);

    /* a lower limit from the caller */
    struct tn_yaml_limits lim = {.max_depth = 2};
    expect_err_at("a: {b: {c: 1}}", 14, &lim, TN_ETOOBIG, "line 1 column 8", "deeper than 2",
                  __LINE__);
    /* aliases cannot be used to nest deeper than the limit */
    const char *al = "a: &x [1]\nb: [*x]\n";
    expect_err_at(al, strlen(al), &lim, TN_ETOOBIG, "line 2 column 5", "deeper than 2", __LINE__);
}
END_TEST

START_TEST(test_node_limit)
{
    struct tn_yaml_limits lim = {.max_nodes = 5};
    expect_err_at("[1, 2, 3, 4, 5, 6]", 18, &lim, TN_ETOOBIG, "line 1 column 14",
                  "more than 5 nodes", __LINE__);
    struct tn_err err = {0};
    json_t *v = tn_yaml_load_one("[1, 2, 3, 4]", 12, &lim, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert_uint_eq(json_array_size(v), 4);
    json_decref(v);
}
END_TEST

/* ---- syntax errors and files ---- */

START_TEST(test_syntax_errors)
{
    expect_err("a: \"abc\nb: 1\n", TN_EINVAL, "line 3 column 1: found unexpected end of stream",
               "while scanning a quoted scalar at line 1 column 4");
    expect_err("key: 'oops\n", TN_EINVAL, "line 2 column 1", "quoted scalar at line 1 column 6");
    expect_err("a:\n  b: 1\n c: 2\n", TN_EINVAL, "line 3 column 2", "while parsing");
    expect_err("a: [1, 2\n", TN_EINVAL, "line 2 column 1", "flow sequence");
    expect_err("a: b: c\n", TN_EINVAL, "line 1 column 5", "mapping values are not allowed");
    expect_err("\ta: 1\n", TN_EINVAL, "line 1 column 1", "cannot start any token");
}
END_TEST

START_TEST(test_files)
{
    char dir[] = "/tmp/tn_yaml_test.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], bad[256], missing[256];
    snprintf(path, sizeof(path), "%s/ok.yaml", dir);
    snprintf(bad, sizeof(bad), "%s/bad.yaml", dir);
    snprintf(missing, sizeof(missing), "%s/missing.yaml", dir);
    FILE *fp = fopen(path, "w");
    fputs("kind: A\n---\nkind: B\n", fp);
    fclose(fp);
    fp = fopen(bad, "w");
    fputs("kind: A\nspec: [\n", fp);
    fclose(fp);

    struct tn_err err = {0};
    json_t *docs = tn_yaml_load_file(path, NULL, &err);
    ck_assert_msg(docs != NULL, "%s", err.msg);
    ck_assert_uint_eq(json_array_size(docs), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(docs, 1), "kind")), "B");
    json_decref(docs);

    ck_assert_ptr_null(tn_yaml_load_file(missing, NULL, &err));
    ck_assert_int_eq(err.code, TN_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, missing) && strstr(err.msg, "No such file"), "%s", err.msg);

    ck_assert_ptr_null(tn_yaml_load_file(bad, NULL, &err));
    ck_assert_int_eq(err.code, TN_EINVAL);
    ck_assert_msg(strncmp(err.msg, bad, strlen(bad)) == 0 && strstr(err.msg, "line 3 column 1"),
                  "%s", err.msg);

    ck_assert_ptr_null(tn_yaml_load_file(dir, NULL, &err)); /* a directory */
    ck_assert_msg(strstr(err.msg, dir), "%s", err.msg);

    unlink(path);
    unlink(bad);
    rmdir(dir);
}
END_TEST

/* ---- dump ---- */

START_TEST(test_dump_format)
{
    json_t *v = json_loads("{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\":"
                           " \"web\", \"labels\": {\"app\": \"web\"}, \"annotations\": {}},"
                           " \"spec\": {\"containers\": [{\"name\": \"c\", \"image\":"
                           " \"nginx:1.25\", \"args\": [\"--port\", \"80\"], \"ports\":"
                           " [{\"containerPort\": 80}]}], \"replicas\": 2.5, \"on\": true,"
                           " \"nothing\": null, \"tags\": [], \"grid\": [[1, 2], [{\"a\": 1,"
                           " \"b\": [true]}]]}}",
                           0, NULL);
    ck_assert_ptr_nonnull(v);
    char *text = roundtrip_at(v, __LINE__);
    ck_assert_str_eq(text, "apiVersion: v1\n"
                           "kind: Pod\n"
                           "metadata:\n"
                           "  name: web\n"
                           "  labels:\n"
                           "    app: web\n"
                           "  annotations: {}\n"
                           "spec:\n"
                           "  containers:\n"
                           "  - name: c\n"
                           "    image: nginx:1.25\n"
                           "    args:\n"
                           "    - --port\n"
                           "    - \"80\"\n"
                           "    ports:\n"
                           "    - containerPort: 80\n"
                           "  replicas: 2.5\n"
                           "  \"on\": true\n"
                           "  nothing: null\n"
                           "  tags: []\n"
                           "  grid:\n"
                           "  - - 1\n"
                           "    - 2\n"
                           "  - - a: 1\n"
                           "      b:\n"
                           "      - true\n");
    free(text);
    json_decref(v);
}
END_TEST

START_TEST(test_dump_quoting)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"true", "\"true\"\n"},
        {"123", "\"123\"\n"},
        {"", "\"\"\n"},
        {"a: b", "\"a: b\"\n"},
        {" lead", "\" lead\"\n"},
        {"- x", "\"- x\"\n"},
        {"#", "\"#\"\n"},
        {"a\nb", "\"a\\nb\"\n"},
        {"hello world", "hello world\n"},
        {"http://x/y", "http://x/y\n"},
        {"yes", "\"yes\"\n"},
        {"~", "\"~\"\n"},
        {"say \"hi\"", "\"say \\\"hi\\\"\"\n"},
        {"a\\b", "\"a\\\\b\"\n"},
        {"caf\xc3\xa9", "caf\xc3\xa9\n"},
        {"\xc2\x85", "\"\\x85\"\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *s = json_string(cases[i].in);
        char *text = roundtrip_at(s, __LINE__);
        ck_assert_msg(strcmp(text, cases[i].out) == 0, "dump of \"%s\" is %s", cases[i].in, text);
        free(text);
        json_decref(s);
    }
    json_t *r = json_real(1.0);
    char *text = roundtrip_at(r, __LINE__);
    ck_assert_str_eq(text, "1.0\n");
    free(text);
    json_decref(r);
    r = json_real(0.1);
    text = roundtrip_at(r, __LINE__);
    ck_assert_str_eq(text, "0.1\n");
    free(text);
    json_decref(r);

    /* a string with NUL cannot be written as text the loader accepts */
    json_t *nul = json_stringn("a\0b", 3);
    ck_assert_ptr_null(tn_yaml_dump(nul));
    json_decref(nul);
}
END_TEST

START_TEST(test_dump_roundtrip)
{
    static const char *const strs[] = {
        "true",
        "False",
        "NULL",
        "null",
        "~",
        "",
        " ",
        "  x  ",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "0x1F",
        "0o7",
        "1e3",
        ".5",
        "1.",
        "-1",
        "+1",
        ".inf",
        "-.inf",
        ".nan",
        "<<",
        "*x",
        "&a",
        "!tag",
        "!!str",
        "%x",
        "@x",
        "`x",
        "'x'",
        "\"x\"",
        "a #b",
        "a:",
        "a: ",
        "x:y",
        "---",
        "...",
        "--- x",
        "-",
        "?",
        "? x",
        ": x",
        ":",
        "|",
        ">",
        "{a}",
        "[a]",
        ",",
        "a,b",
        "a\tb",
        "\t",
        "\r\n",
        "trailing ",
        "\x7f",
        "\x01",
        "\xc2\xa0",
        "\xe2\x80\xa8",
        "\xe2\x80\xa9",
        "\xef\xbb\xbf",
        "\xef\xbf\xbe",
        "\xf0\x9f\x98\x80",
        "日本語",
        "a\\n",
        "1_000",
        "1:20",
        "2001-12-14",
        "=",
        "0",
        "00",
        "-0",
        "1e",
        "nan",
        "inf",
        "Infinity",
        "a  b",
        "line1\nline2\n",
        "\n",
        "key: value\n- item",
        "# comment",
        "a # b",
        "x#y",
    };
    json_t *arr = json_array(), *obj = json_object();
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        json_t *s = json_string(strs[i]);
        ck_assert_msg(s != NULL, "bad test string %zu", i);
        roundtrip(s);
        json_array_append(arr, s);
        json_object_set(obj, strs[i], s); /* the same text as keys */
        json_decref(s);
    }
    roundtrip(arr);
    roundtrip(obj);

    json_t *nums =
        json_pack("[I, I, I, f, f, f, f, f, f, f, f]", (json_int_t)LLONG_MAX, (json_int_t)LLONG_MIN,
                  (json_int_t)0, 0.1, 1e300, -0.0, 5e-324, 1.0, 123456789.123, -2.5e-10, 1e20);
    roundtrip(nums);
    json_decref(nums);
    json_t *scalars = json_pack("[n, b, b, {}, [], [[]], [{}], {s: {}}, {s: []}]", 1, 0, "e", "f");
    roundtrip(scalars);
    json_decref(scalars);

    /* long keys need explicit `? key` entries (libyaml caps implicit keys at 1024 chars) */
    char *longk = repeat("k", 3000), *longq = repeat("\"", 600);
    json_t *lk = json_pack("{s: i, s: {s: [i, {s: s}]}, s: [i, [i]], s: {}}", longk, 1, longq,
                           longk, 2, "x", "y", "z", 3, 4, "w");
    ck_assert_ptr_nonnull(lk);
    roundtrip(lk);
    json_t *nested = json_pack("[{s: o}]", "a", json_incref(lk));
    roundtrip(nested);
    json_decref(nested);
    json_decref(lk);
    free(longk);
    free(longq);

    char *longv = repeat("abc def ", 2000);
    json_t *lv = json_pack("{s: s, s: [s]}", "v", longv, "l", longv);
    roundtrip(lv);
    json_decref(lv);
    free(longv);

    json_decref(arr);
    json_decref(obj);
}
END_TEST

static Suite *yaml_suite(void)
{
    Suite *s = suite_create("base_yaml");
    TCase *tc = tcase_create("typing");
    tcase_add_test(tc, test_nulls_and_bools);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_floats);
    tcase_add_test(tc, test_quoted_are_strings);
    tcase_add_test(tc, test_tags);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_unicode_and_nul);
    suite_add_tcase(s, tc);

    tc = tcase_create("documents");
    tcase_add_test(tc, test_multi_document);
    suite_add_tcase(s, tc);

    tc = tcase_create("aliases");
    tcase_add_test(tc, test_anchors);
    tcase_add_test(tc, test_merge_keys);
    tcase_add_test(tc, test_billion_laughs);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_depth_bombs);
    tcase_add_test(tc, test_node_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("dump");
    tcase_add_test(tc, test_dump_format);
    tcase_add_test(tc, test_dump_quoting);
    tcase_add_test(tc, test_dump_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(yaml_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
