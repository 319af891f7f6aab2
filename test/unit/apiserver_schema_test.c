/* Unit tests for pkg/apiserver/schema: pruning, defaulting, every validation keyword with the
 * exact message and field path of the real apiserver, and structural-schema rejections. */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/schema.h"
#include "base/err.h"

/* Parses JSON written with single quotes (none of the test documents need a literal one). */
static json_t *J(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", s, e.text);
    free(s);
    return j;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

#define ck_assert_json(j, expect)                                                                  \
    do {                                                                                           \
        json_t *want_ = J(expect);                                                                 \
        char *got_ = dump(j), *exp_ = dump(want_);                                                 \
        ck_assert_str_eq(got_, exp_);                                                              \
        free(got_);                                                                                \
        free(exp_);                                                                                \
        json_decref(want_);                                                                        \
    } while (0)

/* Validates obj against schema and expects exactly n causes: reason, field, message triples. */
static void expect_validate(const char *schema, const char *obj, int n, ...)
{
    json_t *s = J(schema), *o = J(obj);
    struct tn_causes c;
    tn_causes_init(&c);
    int rc = tn_schema_validate(s, o, &c);
    for (size_t i = 0; i < c.n && (int)c.n != n; i++)
        fprintf(stderr, "cause %zu: [%s] %s | %s\n", i, c.v[i].reason, c.v[i].field,
                c.v[i].message);
    ck_assert_int_eq((int)c.n, n);
    ck_assert_int_eq(rc, n ? TN_EINVAL : 0);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *reason = va_arg(ap, const char *);
        const char *field = va_arg(ap, const char *);
        const char *msg = va_arg(ap, const char *);
        ck_assert_str_eq(c.v[i].reason, reason);
        ck_assert_str_eq(c.v[i].field, field);
        ck_assert_str_eq(c.v[i].message, msg);
    }
    va_end(ap);
    tn_causes_free(&c);
    json_decref(s);
    json_decref(o);
}

static void expect_structural(const char *schema, int n, ...)
{
    json_t *s = J(schema);
    struct tn_causes c;
    tn_causes_init(&c);
    int rc = tn_schema_check_structural(s, "spec.versions[0].schema.openAPIV3Schema", &c);
    for (size_t i = 0; i < c.n && (int)c.n != n; i++)
        fprintf(stderr, "cause %zu: [%s] %s | %s\n", i, c.v[i].reason, c.v[i].field,
                c.v[i].message);
    ck_assert_int_eq((int)c.n, n);
    ck_assert_int_eq(rc, n ? TN_EINVAL : 0);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *reason = va_arg(ap, const char *);
        const char *field = va_arg(ap, const char *);
        const char *msg = va_arg(ap, const char *);
        ck_assert_str_eq(c.v[i].reason, reason);
        ck_assert_str_eq(c.v[i].field, field);
        ck_assert_str_eq(c.v[i].message, msg);
    }
    va_end(ap);
    tn_causes_free(&c);
    json_decref(s);
}

#define P "spec.versions[0].schema.openAPIV3Schema"

/* Builds a root schema whose spec has the given properties. */
static char *spec_schema(const char *props)
{
    char *out;
    if (asprintf(&out, "{'type':'object','properties':{'spec':{'type':'object','properties':%s}}}",
                 props) < 0)
        return NULL;
    return out;
}

/* ---- pruning ---- */

START_TEST(prune_unknown_fields)
{
    json_t *s = J("{'type':'object','properties':{'spec':{'type':'object','properties':{"
                  "'workers':{'type':'array','items':{'type':'object','properties':{'name':{'type':"
                  "'string'}}}},'empty':{'type':'object'}}}}}");
    json_t *o =
        J("{'apiVersion':'v','kind':'K','metadata':{'name':'n','junk':1},'status':{'a':1},"
          "'spec':{'foo':1,'workers':[{'name':'a'},{'name':'b','foo':2}],'empty':{'a':1}}}");
    struct tn_causes c;
    tn_causes_init(&c);
    ck_assert_int_eq(tn_schema_prune(s, o, &c), 0);
    ck_assert_json(o, "{'apiVersion':'v','kind':'K','metadata':{'name':'n','junk':1},"
                      "'spec':{'workers':[{'name':'a'},{'name':'b'}],'empty':{}}}");
    ck_assert_int_eq((int)c.n, 4);
    ck_assert_str_eq(c.v[0].reason, "FieldValueUnknownField");
    ck_assert_str_eq(c.v[0].field, "status");
    ck_assert_str_eq(c.v[0].message, "unknown field \"status\"");
    ck_assert_str_eq(c.v[1].field, "spec.foo");
    ck_assert_str_eq(c.v[1].message, "unknown field \"spec.foo\"");
    ck_assert_str_eq(c.v[2].field, "spec.workers[1].foo");
    ck_assert_str_eq(c.v[2].message, "unknown field \"spec.workers[1].foo\"");
    ck_assert_str_eq(c.v[3].field, "spec.empty.a");
    tn_causes_free(&c);
    /* without a cause list */
    json_t *o2 = J("{'spec':{'foo':1}}");
    ck_assert_int_eq(tn_schema_prune(s, o2, NULL), 0);
    ck_assert_json(o2, "{'spec':{}}");
    json_decref(o2);
    json_decref(s);
    json_decref(o);
}
END_TEST

START_TEST(prune_preserve_and_additional)
{
    json_t *s = J("{'type':'object','properties':{'spec':{'type':'object','properties':{"
                  "'free':{'type':'object','x-kubernetes-preserve-unknown-fields':true,"
                  "'properties':{'known':{'type':'object','properties':{'a':{'type':'string'}}}}},"
                  "'labels':{'type':'object','additionalProperties':{'type':'object','properties':"
                  "{'v':{'type':'string'}}}},"
                  "'any':{'type':'object','additionalProperties':true}}}}}");
    json_t *o = J("{'spec':{'free':{'anything':{'deep':1},'known':{'a':'x','b':'y'}},"
                  "'labels':{'k':{'v':'1','w':2}},'any':{'x':{'y':1}}}}");
    struct tn_causes c;
    tn_causes_init(&c);
    ck_assert_int_eq(tn_schema_prune(s, o, &c), 0);
    ck_assert_json(o, "{'spec':{'free':{'anything':{'deep':1},'known':{'a':'x'}},"
                      "'labels':{'k':{'v':'1'}},'any':{'x':{'y':1}}}}");
    ck_assert_int_eq((int)c.n, 2);
    ck_assert_str_eq(c.v[0].field, "spec.free.known.b");
    ck_assert_str_eq(c.v[1].field, "spec.labels.k.w");
    tn_causes_free(&c);
    json_decref(s);
    json_decref(o);
}
END_TEST

START_TEST(prune_embedded_resource)
{
    json_t *s = J("{'type':'object','properties':{'tmpl':{'type':'object',"
                  "'x-kubernetes-embedded-resource':true,'properties':{'spec':{'type':'object',"
                  "'properties':{'x':{'type':'string'}}}}}}}");
    json_t *o = J("{'tmpl':{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','x':1},"
                  "'spec':{'x':'1','y':2},'other':1}}");
    struct tn_causes c;
    tn_causes_init(&c);
    ck_assert_int_eq(tn_schema_prune(s, o, &c), 0);
    ck_assert_json(o, "{'tmpl':{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','x':1},"
                      "'spec':{'x':'1'}}}");
    ck_assert_int_eq((int)c.n, 2);
    ck_assert_str_eq(c.v[0].field, "tmpl.spec.y");
    ck_assert_str_eq(c.v[1].field, "tmpl.other");
    tn_causes_free(&c);
    json_decref(s);
    json_decref(o);
}
END_TEST

/* ---- defaulting ---- */

static const char *const DSCHEMA =
    "{'type':'object','properties':{'metadata':{'type':'object'},'spec':{'type':'object',"
    "'default':{},'properties':{'replicas':{'type':'integer','default':1},"
    "'nul':{'type':'string'},'nulok':{'type':'string','nullable':true},"
    "'dflt':{'type':'string','default':'d'},"
    "'res':{'type':'object','default':{'cpu':'1'},'properties':{'cpu':{'type':'string'},"
    "'mem':{'type':'string','default':'1Gi'}}},"
    "'workers':{'type':'array','items':{'type':'object','properties':{'port':{'type':'integer',"
    "'default':80}}}},"
    "'m':{'type':'object','additionalProperties':{'type':'object','properties':{'w':{'type':"
    "'integer','default':3}}}}}}}}";

START_TEST(default_nested)
{
    json_t *s = J(DSCHEMA);
    json_t *o = J("{'metadata':{'name':'x'}}");
    ck_assert_int_eq(tn_schema_default(s, o), 0);
    /* spec defaulted to {}, then its own properties defaulted, res default then defaulted */
    ck_assert_json(o, "{'metadata':{'name':'x'},'spec':{'dflt':'d','replicas':1,"
                      "'res':{'cpu':'1','mem':'1Gi'}}}");
    json_decref(o);
    o = J("{'spec':{'replicas':5,'nul':null,'nulok':null,'dflt':null,'workers':[{},{'port':8080}],"
          "'m':{'a':{},'b':{'w':1}}}}");
    ck_assert_int_eq(tn_schema_default(s, o), 0);
    ck_assert_json(o, "{'spec':{'dflt':'d','m':{'a':{'w':3},'b':{'w':1}},'nulok':null,'replicas':5,"
                      "'res':{'cpu':'1','mem':'1Gi'},'workers':[{'port':80},{'port':8080}]}}");
    json_decref(o);
    json_decref(s);
}
END_TEST

START_TEST(default_is_deep_copy)
{
    json_t *s = J("{'type':'object','properties':{'a':{'type':'object','default':{'x':[1]}}}}");
    json_t *o1 = J("{}"), *o2 = J("{}");
    ck_assert_int_eq(tn_schema_default(s, o1), 0);
    ck_assert_int_eq(tn_schema_default(s, o2), 0);
    json_array_append_new(json_object_get(json_object_get(o1, "a"), "x"), json_integer(2));
    ck_assert_json(o2, "{'a':{'x':[1]}}");
    ck_assert_json(json_object_get(s, "properties"), "{'a':{'type':'object','default':{'x':[1]}}}");
    json_decref(o1);
    json_decref(o2);
    json_decref(s);
}
END_TEST

/* ---- validation keywords ---- */

START_TEST(validate_types)
{
    char *s = spec_schema("{'trainProb':{'type':'number'},'n':{'type':'integer'},"
                          "'b':{'type':'boolean'},'s':{'type':'string'},'o':{'type':'object'},"
                          "'a':{'type':'array','items':{'type':'string'}},"
                          "'nul':{'type':'string','nullable':true}}");
    expect_validate(s, "{'spec':{'trainProb':1,'n':2.0,'b':true,'s':'x','o':{},'a':[],'nul':null}}",
                    0);
    expect_validate(
        s, "{'spec':{'trainProb':'string'}}", 2, "FieldValueTypeInvalid", "spec.trainProb",
        "Invalid value: \"string\": spec.trainProb in body must be of type number: \"string\"",
        "FieldValueInvalid", "<nil>",
        "Invalid value: \"null\": some validation rules were not checked because the object was "
        "invalid; correct the existing errors to complete validation");
    expect_validate(
        s, "{'spec':{'n':1.5,'b':'true','s':1,'o':[],'a':{}}}", 6, "FieldValueTypeInvalid",
        "spec.n", "Invalid value: \"number\": spec.n in body must be of type integer: \"number\"",
        "FieldValueTypeInvalid", "spec.b",
        "Invalid value: \"string\": spec.b in body must be of type boolean: \"string\"",
        "FieldValueTypeInvalid", "spec.s",
        "Invalid value: \"integer\": spec.s in body must be of type string: \"integer\"",
        "FieldValueTypeInvalid", "spec.o",
        "Invalid value: \"array\": spec.o in body must be of type object: \"array\"",
        "FieldValueTypeInvalid", "spec.a",
        "Invalid value: \"object\": spec.a in body must be of type array: \"object\"",
        "FieldValueInvalid", "<nil>",
        "Invalid value: \"null\": some validation rules were not checked because the "
        "object was invalid; correct the existing errors to complete validation");
    expect_validate(s, "{'spec':{'s':null}}", 2, "FieldValueTypeInvalid", "spec.s",
                    "Invalid value: \"null\": spec.s in body must be of type string: \"null\"",
                    "FieldValueInvalid", "<nil>",
                    "Invalid value: \"null\": some validation rules were not checked because the "
                    "object was invalid; correct the existing errors to complete validation");
    free(s);
}
END_TEST

START_TEST(validate_int_or_string)
{
    char *s = spec_schema("{'port':{'x-kubernetes-int-or-string':true}}");
    expect_validate(s, "{'spec':{'port':80}}", 0);
    expect_validate(s, "{'spec':{'port':'http'}}", 0);
    expect_validate(s, "{'spec':{'port':true}}", 2, "FieldValueTypeInvalid", "spec.port",
                    "Invalid value: \"boolean\": spec.port in body must be of type integer,string: "
                    "\"boolean\"",
                    "FieldValueInvalid", "<nil>",
                    "Invalid value: \"null\": some validation rules were not checked because the "
                    "object was invalid; correct the existing errors to complete validation");
    free(s);
}
END_TEST

START_TEST(validate_enum)
{
    char *s = spec_schema("{'mode':{'type':'string','enum':['a','b']},"
                          "'n':{'type':'integer','enum':[1,2]}}");
    expect_validate(s, "{'spec':{'mode':'a','n':2}}", 0);
    expect_validate(s, "{'spec':{'mode':'x','n':3}}", 3, "FieldValueNotSupported", "spec.mode",
                    "Unsupported value: \"x\": supported values: \"a\", \"b\"",
                    "FieldValueNotSupported", "spec.n",
                    "Unsupported value: 3: supported values: \"1\", \"2\"", "FieldValueInvalid",
                    "<nil>",
                    "Invalid value: \"null\": some validation rules were not checked because the "
                    "object was invalid; correct the existing errors to complete validation");
    free(s);
}
END_TEST

START_TEST(validate_numbers)
{
    char *s = spec_schema("{'trainProb':{'type':'number','minimum':0,'maximum':1},"
                          "'ex':{'type':'number','minimum':0,'exclusiveMinimum':true,'maximum':10,"
                          "'exclusiveMaximum':true},"
                          "'n':{'type':'integer','multipleOf':2},"
                          "'f':{'type':'number','multipleOf':0.5},"
                          "'big':{'type':'number','maximum':1000000}}");
    expect_validate(s, "{'spec':{'trainProb':0.5,'ex':5,'n':4,'f':1.5,'big':10}}", 0);
    expect_validate(
        s, "{'spec':{'trainProb':1.5,'ex':10,'n':3,'f':1.2,'big':2000000}}", 5, "FieldValueInvalid",
        "spec.trainProb",
        "Invalid value: 1.5: spec.trainProb in body should be less than or equal to 1",
        "FieldValueInvalid", "spec.ex", "Invalid value: 10: spec.ex in body should be less than 10",
        "FieldValueInvalid", "spec.n", "Invalid value: 3: spec.n in body should be a multiple of 2",
        "FieldValueInvalid", "spec.f",
        "Invalid value: 1.2: spec.f in body should be a multiple of 0.5", "FieldValueInvalid",
        "spec.big",
        "Invalid value: 2000000: spec.big in body should be less than or equal to "
        "1e+06");
    expect_validate(s, "{'spec':{'trainProb':-0.1,'ex':0}}", 2, "FieldValueInvalid",
                    "spec.trainProb",
                    "Invalid value: -0.1: spec.trainProb in body should be greater than or equal "
                    "to 0",
                    "FieldValueInvalid", "spec.ex",
                    "Invalid value: 0: spec.ex in body should be greater than 0");
    free(s);
}
END_TEST

START_TEST(validate_strings)
{
    char *s = spec_schema("{'name':{'type':'string','maxLength':63,'minLength':2},"
                          "'u':{'type':'string','maxLength':3},"
                          "'p':{'type':'string','pattern':'^[a-z]+\\\\d*$'}}");
    expect_validate(s, "{'spec':{'name':'ok','u':'été','p':'abc12'}}", 0);
    expect_validate(
        s,
        "{'spec':{'name':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "','u':'éééé','p':'Abc'}}",
        3, "FieldValueTooLong", "spec.name", "Too long: may not be longer than 63",
        "FieldValueTooLong", "spec.u", "Too long: may not be longer than 3", "FieldValueInvalid",
        "spec.p", "Invalid value: \"Abc\": spec.p in body should match '^[a-z]+\\d*$'");
    expect_validate(s, "{'spec':{'name':'a'}}", 1, "FieldValueInvalid", "spec.name",
                    "Invalid value: \"a\": spec.name in body should be at least 2 chars long");
    free(s);
}
END_TEST

START_TEST(validate_formats)
{
    char *s = spec_schema("{'ts':{'type':'string','format':'date-time'},"
                          "'d':{'type':'string','format':'date'},"
                          "'b':{'type':'string','format':'byte'},"
                          "'i32':{'type':'integer','format':'int32'},"
                          "'i64':{'type':'integer','format':'int64'},"
                          "'x':{'type':'string','format':'no-such-format'}}");
    expect_validate(s,
                    "{'spec':{'ts':'2026-01-02T03:04:05Z','d':'2026-01-02','b':'aGVsbG8=',"
                    "'i32':2147483647,'i64':9223372036854775807,'x':'whatever'}}",
                    0);
    expect_validate(s, "{'spec':{'ts':'yesterday','d':'2026-13','b':'!!','i32':2147483648}}", 4,
                    "FieldValueInvalid", "spec.ts",
                    "Invalid value: \"yesterday\": spec.ts in body must be of type date-time: "
                    "\"yesterday\"",
                    "FieldValueInvalid", "spec.d",
                    "Invalid value: \"2026-13\": spec.d in body must be of type date: \"2026-13\"",
                    "FieldValueInvalid", "spec.b",
                    "Invalid value: \"!!\": spec.b in body must be of type byte: \"!!\"",
                    "FieldValueInvalid", "spec.i32",
                    "Invalid value: 2147483648: spec.i32 in body must be of type int32: "
                    "\"2147483648\"");
    free(s);
}
END_TEST

START_TEST(validate_arrays_and_objects)
{
    char *s = spec_schema("{'l':{'type':'array','items':{'type':'string','maxLength':1},"
                          "'maxItems':2,'minItems':1},"
                          "'m':{'type':'object','additionalProperties':{'type':'integer',"
                          "'maximum':10},'maxProperties':2,'minProperties':1},"
                          "'u':{'type':'array','items':{'type':'integer'},'uniqueItems':true}}");
    expect_validate(s, "{'spec':{'l':['a'],'m':{'a':1},'u':[1,2]}}", 0);
    expect_validate(s, "{'spec':{'l':['a','bb','c'],'m':{'a':11,'b':1,'c':2},'u':[1,1]}}", 5,
                    "FieldValueTooMany", "spec.l", "Too many: 3: must have at most 2 items",
                    "FieldValueTooLong", "spec.l[1]", "Too long: may not be longer than 1",
                    "FieldValueTooMany", "spec.m", "Too many: 3: must have at most 2 items",
                    "FieldValueInvalid", "spec.m.a",
                    "Invalid value: 11: spec.m.a in body should be less than or equal to 10",
                    "FieldValueInvalid", "spec.u",
                    "Invalid value: \"\": spec.u in body shouldn't contain duplicates");
    expect_validate(s, "{'spec':{'l':[],'m':{}}}", 2, "FieldValueInvalid", "spec.l",
                    "Invalid value: 0: spec.l in body should have at least 1 items",
                    "FieldValueInvalid", "spec.m",
                    "Invalid value: 0: spec.m in body should have at least 1 properties");
    free(s);
}
END_TEST

START_TEST(validate_required)
{
    const char *s = "{'type':'object','required':['spec','metadata'],'properties':{'spec':{"
                    "'type':'object','required':['name'],'properties':{'name':{'type':'string'},"
                    "'workers':{'type':'array','items':{'type':'object','required':['port'],"
                    "'properties':{'port':{'type':'integer'}}}}}}}}";
    expect_validate(s, "{'metadata':{},'spec':{'name':'x','workers':[{'port':1}]}}", 0);
    expect_validate(s, "{}", 1, "FieldValueRequired", "spec", "Required value");
    expect_validate(s, "{'spec':{'workers':[{'port':1},{}]}}", 2, "FieldValueRequired", "spec.name",
                    "Required value", "FieldValueRequired", "spec.workers[1].port",
                    "Required value");
}
END_TEST

START_TEST(validate_combinators)
{
    char *s = spec_schema("{'a':{'type':'string','allOf':[{'minLength':2},{'maxLength':3}]},"
                          "'b':{'type':'integer','anyOf':[{'minimum':10},{'maximum':0}]},"
                          "'c':{'type':'integer','oneOf':[{'minimum':0},{'maximum':10}]},"
                          "'d':{'type':'string','not':{'enum':['x']}}}");
    expect_validate(s, "{'spec':{'a':'ab','b':11,'c':-1,'d':'y'}}", 0);
    expect_validate(s, "{'spec':{'a':'abcd','b':5,'c':5,'d':'x'}}", 4, "FieldValueTooLong",
                    "spec.a", "Too long: may not be longer than 3", "FieldValueInvalid", "spec.b",
                    "Invalid value: \"\": spec.b in body must validate at least one schema (anyOf)",
                    "FieldValueInvalid", "spec.c",
                    "Invalid value: \"\": spec.c in body must validate one and only one schema "
                    "(oneOf)",
                    "FieldValueInvalid", "spec.d",
                    "Invalid value: \"\": spec.d in body must not validate the schema (not)");
    free(s);
}
END_TEST

START_TEST(validate_list_types)
{
    char *s = spec_schema("{'tags':{'type':'array','x-kubernetes-list-type':'set','items':{'type':"
                          "'string'}},"
                          "'ports':{'type':'array','x-kubernetes-list-type':'map',"
                          "'x-kubernetes-list-map-keys':['name','proto'],'items':{'type':'object',"
                          "'properties':{'name':{'type':'string'},'proto':{'type':'string'}}}}}");
    expect_validate(s,
                    "{'spec':{'tags':['a','b'],'ports':[{'name':'a','proto':'TCP'},{'name':'a',"
                    "'proto':'UDP'}]}}",
                    0);
    expect_validate(s,
                    "{'spec':{'tags':['a','b','a'],'ports':[{'name':'a','proto':'TCP'},{'name':'a',"
                    "'proto':'TCP'}]}}",
                    2, "FieldValueDuplicate", "spec.tags[2]", "Duplicate value: \"a\"",
                    "FieldValueDuplicate", "spec.ports[1]",
                    "Duplicate value: {\"name\":\"a\",\"proto\":\"TCP\"}");
    free(s);
}
END_TEST

START_TEST(validate_cel_rules)
{
    const char *s =
        "{'type':'object','properties':{'spec':{'type':'object','x-kubernetes-validations':["
        "{'rule':'self.minReplicas <= self.maxReplicas','message':'minReplicas must not exceed "
        "maxReplicas'},"
        "{'rule':' self.name.startsWith(\\'edge-\\') '},"
        "{'rule':'self.name.size() < 10','messageExpression':'\\'name \\' + self.name + \\' is too "
        "long\\''},"
        "{'rule':'self.minReplicas != 7','reason':'FieldValueForbidden','fieldPath':"
        "'.minReplicas','message':'seven is forbidden'},"
        "{'rule':'oldSelf == self'}],"
        "'properties':{'name':{'type':'string'},'minReplicas':{'type':'integer'},'maxReplicas':{"
        "'type':'integer'},'items':{'type':'array','items':{'type':'integer',"
        "'x-kubernetes-validations':[{'rule':'self >= 0','message':'must be positive'}]}}}}}}";
    expect_validate(s, "{'spec':{'name':'edge-a','minReplicas':1,'maxReplicas':2,'items':[0,1]}}",
                    0);
    expect_validate(
        s,
        "{'spec':{'name':'cloud-abcdefgh','minReplicas':7,'maxReplicas':2,'items':[1,"
        "-1]}}",
        5, "FieldValueInvalid", "spec",
        "Invalid value: \"object\": minReplicas must not exceed maxReplicas", "FieldValueInvalid",
        "spec", "Invalid value: \"object\": failed rule: self.name.startsWith(\"edge-\")",
        "FieldValueInvalid", "spec", "Invalid value: \"object\": name cloud-abcdefgh is too long",
        "FieldValueForbidden", "spec.minReplicas", "Forbidden: seven is forbidden",
        "FieldValueInvalid", "spec.items[1]", "Invalid value: \"integer\": must be positive");
    /* evaluation errors name the rule */
    expect_validate(s, "{'spec':{'name':'edge-a','minReplicas':1}}", 1, "FieldValueInvalid", "spec",
                    "Invalid value: \"object\": no such key: maxReplicas evaluating rule: "
                    "self.minReplicas <= self.maxReplicas");
}
END_TEST

START_TEST(validate_cel_transition_rules)
{
    json_t *s = J("{'type':'object','properties':{'spec':{'type':'object','properties':{"
                  "'mode':{'type':'string','x-kubernetes-validations':[{'rule':'self == oldSelf',"
                  "'message':'mode is immutable'}]}}}}}");
    json_t *n = J("{'spec':{'mode':'b'}}"), *o = J("{'spec':{'mode':'a'}}");
    struct tn_causes c;
    tn_causes_init(&c);
    ck_assert_int_eq(tn_schema_validate(s, n, &c), 0); /* create: skipped */
    ck_assert_int_eq(tn_schema_validate_update(s, n, n, &c), 0);
    ck_assert_int_eq(tn_schema_validate_update(s, n, o, &c), TN_EINVAL);
    ck_assert_int_eq((int)c.n, 1);
    ck_assert_str_eq(c.v[0].field, "spec.mode");
    ck_assert_str_eq(c.v[0].message, "Invalid value: \"string\": mode is immutable");
    tn_causes_free(&c);
    json_decref(s);
    json_decref(n);
    json_decref(o);
}
END_TEST

START_TEST(validate_cel_cost_limit)
{
    const char *s = "{'type':'object','properties':{'l':{'type':'array','items':{'type':'integer'"
                    "},'x-kubernetes-validations':[{'rule':'self.all(a, self.all(b, self.all(c, "
                    "self.all(d, a + b + c + d >= 0))))'}]}}}";
    char obj[4096] = "{'l':[";
    for (int i = 0; i < 60; i++)
        strcat(obj, i ? ",1" : "1");
    strcat(obj, "]}");
    expect_validate(s, obj, 1, "FieldValueInvalid", "l",
                    "Invalid value: \"array\": call cost exceeds limit for rule: self.all(a, "
                    "self.all(b, self.all(c, self.all(d, a + b + c + d >= 0))))");
}
END_TEST

START_TEST(validate_skips_root_metadata_and_embedded)
{
    const char *s = "{'type':'object','properties':{'metadata':{'type':'object','properties':{"
                    "'name':{'type':'string','maxLength':3}}},'tmpl':{'type':'object',"
                    "'x-kubernetes-embedded-resource':true,'x-kubernetes-preserve-unknown-fields':"
                    "true}}}";
    expect_validate(
        s, "{'metadata':{'name':'much-too-long'},'tmpl':{'apiVersion':'v1','kind':'Pod'}}", 0);
    expect_validate(s, "{'tmpl':{'metadata':{}}}", 2, "FieldValueRequired", "tmpl.apiVersion",
                    "Required value: must not be empty", "FieldValueRequired", "tmpl.kind",
                    "Required value: must not be empty");
}
END_TEST

/* ---- structural checks ---- */

START_TEST(structural_ok)
{
    expect_structural("{'type':'object','properties':{'metadata':{'type':'object','properties':{"
                      "'name':{'type':'string','maxLength':20}}},'spec':{'type':'object',"
                      "'properties':{'port':{'x-kubernetes-int-or-string':true,'anyOf':[{'type':"
                      "'integer'},{'type':'string'}]},'free':{'x-kubernetes-preserve-unknown-"
                      "fields':true},'s':{'type':'string','pattern':'^\\\\w+$','default':'x',"
                      "'allOf':[{'minLength':1}]},'m':{'type':'object','additionalProperties':{"
                      "'type':'string'}},'l':{'type':'array','items':{'type':'object',"
                      "'properties':{'name':{'type':'string'}}},'x-kubernetes-list-type':'map',"
                      "'x-kubernetes-list-map-keys':['name']}},'x-kubernetes-validations':[{"
                      "'rule':'has(self.s)'}]}}}",
                      0);
}
END_TEST

START_TEST(structural_rejections)
{
    expect_structural("{'properties':{}}", 1, "FieldValueRequired", P ".type",
                      "Required value: must not be empty at the root");
    expect_structural("{'type':'string'}", 1, "FieldValueInvalid", P ".type",
                      "Invalid value: \"string\": must be object at the root");
    expect_structural(
        "{'type':'object','properties':{'spec':{'properties':{'a':{'type':'foo'},"
        "'b':{'type':'array'},'c':{'type':'string','properties':{'x':{'type':'string'}}},"
        "'d':{'type':'object','properties':{'x':{'type':'string'}},'additionalProperties':{'type':"
        "'string'}},'e':{'type':'string','pattern':'(abc'},"
        "'f':{'type':'array','items':{'type':'string'},'uniqueItems':true},"
        "'g':{'type':'string','allOf':[{'type':'string'}]},'h':{'$ref':'#/x','type':'object'}}}}}",
        9, "FieldValueRequired", P ".properties[spec].type",
        "Required value: must not be empty for specified object fields", "FieldValueNotSupported",
        P ".properties[spec].properties[a].type",
        "Unsupported value: \"foo\": supported values: \"array\", \"boolean\", \"integer\", "
        "\"number\", \"object\", \"string\"",
        "FieldValueRequired", P ".properties[spec].properties[b].items",
        "Required value: must be specified", "FieldValueForbidden",
        P ".properties[spec].properties[c].properties",
        "Forbidden: must only be used with type object", "FieldValueForbidden",
        P ".properties[spec].properties[d].additionalProperties",
        "Forbidden: additionalProperties and properties are mutual exclusive", "FieldValueInvalid",
        P ".properties[spec].properties[e].pattern",
        "Invalid value: \"(abc\": must be a valid regular expression, but isn't: Unmatched ( or "
        "\\(",
        "FieldValueForbidden", P ".properties[spec].properties[f].uniqueItems",
        "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes "
        "quadratic",
        "FieldValueForbidden", P ".properties[spec].properties[g].allOf[0].type",
        "Forbidden: must be empty to be structural", "FieldValueForbidden",
        P ".properties[spec].properties[h].$ref", "Forbidden: $ref is not supported");
}
END_TEST

START_TEST(structural_items_and_metadata)
{
    expect_structural("{'type':'object','properties':{'metadata':{'type':'object','properties':{"
                      "'labels':{'type':'object'}}},'l':{'type':'array','items':{}}}}",
                      2, "FieldValueForbidden", P ".properties[metadata]",
                      "Forbidden: must not specify anything other than name and generateName, but "
                      "metadata is implicitly specified",
                      "FieldValueRequired", P ".properties[l].items.type",
                      "Required value: must not be empty for specified array items");
    expect_structural("{'type':'object','properties':{'l':{'type':'array','items':{'type':'string'"
                      "},'x-kubernetes-list-type':'map'},'k':{'type':'array','items':{'type':"
                      "'string'},'x-kubernetes-list-type':'bag'}}}",
                      2, "FieldValueRequired", P ".properties[l].x-kubernetes-list-map-keys",
                      "Required value: must not be empty if x-kubernetes-list-type is map",
                      "FieldValueNotSupported", P ".properties[k].x-kubernetes-list-type",
                      "Unsupported value: \"bag\": supported values: \"atomic\", \"map\", \"set\"");
}
END_TEST

START_TEST(structural_defaults_and_rules)
{
    expect_structural(
        "{'type':'object','properties':{'f':{'type':'string','default':5},"
        "'g':{'type':'object','properties':{'h':{'type':'integer','maximum':3}},'default':{'h':4}},"
        "'r':{'type':'string','x-kubernetes-validations':[{'rule':'self.size() > '}]}}}",
        3, "FieldValueTypeInvalid", P ".properties[f].default",
        "Invalid value: \"integer\": default in body must be of type string: \"integer\"",
        "FieldValueInvalid", P ".properties[g].default.h",
        "Invalid value: 4: default.h in body should be less than or equal to 3",
        "FieldValueInvalid", P ".properties[r].x-kubernetes-validations[0].rule",
        "Invalid value: \"self.size() > \": compilation failed: ERROR: <input>:1:15: Syntax error: "
        "mismatched input '<EOF>' expecting an expression");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apiserver_schema");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, prune_unknown_fields);
    tcase_add_test(tc, prune_preserve_and_additional);
    tcase_add_test(tc, prune_embedded_resource);
    tcase_add_test(tc, default_nested);
    tcase_add_test(tc, default_is_deep_copy);
    tcase_add_test(tc, validate_types);
    tcase_add_test(tc, validate_int_or_string);
    tcase_add_test(tc, validate_enum);
    tcase_add_test(tc, validate_numbers);
    tcase_add_test(tc, validate_strings);
    tcase_add_test(tc, validate_formats);
    tcase_add_test(tc, validate_arrays_and_objects);
    tcase_add_test(tc, validate_required);
    tcase_add_test(tc, validate_combinators);
    tcase_add_test(tc, validate_list_types);
    tcase_add_test(tc, validate_cel_rules);
    tcase_add_test(tc, validate_cel_transition_rules);
    tcase_add_test(tc, validate_cel_cost_limit);
    tcase_add_test(tc, validate_skips_root_metadata_and_embedded);
    tcase_add_test(tc, structural_ok);
    tcase_add_test(tc, structural_rejections);
    tcase_add_test(tc, structural_items_and_metadata);
    tcase_add_test(tc, structural_defaults_and_rules);
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
