// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * common/json.c: the text Ferry writes is json-glib's byte for byte (the
 * wire and the golden files did not change with the library), parsing is
 * strict with errors that say where, and text that is not UTF-8 still
 * gives a valid document.
 */
#include "common/json.h"
#include "tests/check-main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void check_dump(const char *in, const char *compact, const char *pretty)
{
    char err[160];
    json_t *v = ferry_json_parse(in, strlen(in), err, sizeof(err));
    char *s;

    ck_assert_msg(v, "%s: %s", in, err);
    s = ferry_json_dumps(v, false);
    ck_assert_str_eq(s, compact);
    free(s);
    if (pretty) {
        s = ferry_json_dumps(v, true);
        ck_assert_str_eq(s, pretty);
        free(s);
    }
    json_decref(v);
}

START_TEST(test_dump_format)
{
    check_dump("{\"b\": 1, \"a\": [1, {\"c\": true}], \"e\": [], \"o\": {}, \"n\": null}",
               "{\"b\":1,\"a\":[1,{\"c\":true}],\"e\":[],\"o\":{},\"n\":null}",
               "{\n  \"b\" : 1,\n  \"a\" : [\n    1,\n    {\n      \"c\" : true\n    }\n  ],\n"
               "  \"e\" : [],\n  \"o\" : {  },\n  \"n\" : null\n}");
    check_dump("[{}, [], {\"x\": {}}]", "[{},[],{\"x\":{}}]",
               "[\n  {  },\n  [],\n  {\n    \"x\" : {    }\n  }\n]");
    check_dump("{}", "{}", "{}");
    check_dump("[]", "[]", "[]");
    check_dump("\"x\"", "\"x\"", "\"x\"");
    /* '/' and non-ASCII stay, control characters and DEL are escaped */
    check_dump("\"a/b\\u00e9\\u2028\\u0001\\u001f\\u007f\\t\\n\\r\\b\\f\\\"\\\\\"",
               "\"a/b\xc3\xa9\xe2\x80\xa8\\u0001\\u001f\\u007f\\t\\n\\r\\b\\f\\\"\\\\\"", NULL);
    check_dump("[-9223372036854775808, 9223372036854775807, 0, -1]",
               "[-9223372036854775808,9223372036854775807,0,-1]", NULL);
    check_dump("[1.5, 2.0, false]", "[1.5,2.0,false]", NULL);
}
END_TEST

START_TEST(test_uint64_address)
{
    /* an address above INT64_MAX is written as json-glib wrote it */
    json_t *v = json_integer((json_int_t)UINT64_C(0xfffffffffee00000));
    char *s = ferry_json_dumps(v, false);

    ck_assert_str_eq(s, "-18874368");
    free(s);
    json_decref(v);
}
END_TEST

START_TEST(test_parse_strict)
{
    static const char *const bad[] = {
        "", " ", "[1,]", "{\"a\":1,}", "{'a':1}", "{\"a\":1}{}", "{\"a\":1} x", "/* c */{}",
        "{\"a\":01}", "{\"a\":1e400}", "{\"a\":99999999999999999999}", "{\"a\":\"\\ud800\"}",
        "{\"a\":NaN}", "{\"a\":1,\"a\":2}", "{a:1}", "{\"a\":\"\xff\"}", "{\"a\":\"\\u0000\"}",
        "{\"a\":\"x\ny\"}",
    };
    char err[160];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(!ferry_json_parse(bad[i], strlen(bad[i]), err, sizeof(err)),
                      "'%s' taken", bad[i]);
        ck_assert_msg(strstr(err, "column "), "'%s': no position in '%s'", bad[i], err);
    }
    ck_assert_ptr_null(ferry_json_parse("{\"a\":1,\n\"a\":2}", 14, err, sizeof(err)));
    ck_assert_msg(strstr(err, "duplicate") && strstr(err, "line 2"), "%s", err);
    ck_assert_ptr_null(ferry_json_parse_object("[1]", 3, err, sizeof(err)));
    ck_assert_str_eq(err, "not a JSON object");
    /* a length, not a C string: what follows it is not read */
    json_t *v = ferry_json_parse("{\"a\":1}garbage", 7, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ferry_json_int(v, "a", 0), 1);
    ck_assert_int_eq(ferry_json_int(v, "b", 7), 7);
    ck_assert_str_eq(ferry_json_string(v, "a", "def"), "def");
    ck_assert_ptr_null(ferry_json_object(v, "a"));
    ck_assert_ptr_null(ferry_json_array(NULL, "a"));
    json_decref(v);
}
END_TEST

START_TEST(test_str_not_utf8)
{
    json_t *v = ferry_json_str("a\xff\xc3z\xed\xa0\x80\xc3\xa9");
    char *s = ferry_json_dumps(v, false);

    ck_assert_str_eq(s, "\"a\xef\xbf\xbd\xef\xbf\xbdz"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\"");
    free(s);
    json_decref(v);
    v = ferry_json_str(NULL);
    ck_assert(json_is_null(v));
    json_decref(v);
}
END_TEST

static TCase *json_tcase(void)
{
    return FERRY_CHECK_TCASE("json", 30, test_dump_format, test_uint64_address,
                             test_parse_strict, test_str_not_utf8);
}

FERRY_CHECK_MAIN("json", json_tcase);
