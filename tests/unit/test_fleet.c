/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the JSON reader and the etcd gateway protocol: strictness
 * and bounds of the reader, base64, request bodies, the decoding of real
 * answers of etcd 3.4's gateway (copied from curl sessions), and the
 * rollout's slot and halt reading.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fleet/proto.h"
#include "lib/err.h"
#include "lib/json.h"

static struct json *parse_ok(struct arena *a, const char *s)
{
	struct json *j = NULL;
	int r = json_parse(a, s, strlen(s), &j);
	if (r < 0)
		fprintf(stderr, "unexpected: %s for %s\n", err_msg(), s);
	assert_int_equal(r, 0);
	return j;
}

static void parse_bad(const char *s, const char *why)
{
	struct arena a;
	struct json *j = NULL;
	arena_init(&a);
	assert_int_equal(json_parse(&a, s, strlen(s), &j), -1);
	if (!strstr(err_msg(), why))
		fprintf(stderr, "'%s': got '%s', want '%s'\n", s, err_msg(), why);
	assert_non_null(strstr(err_msg(), why));
	arena_release(&a);
}

static void test_fleet__json_values(void **state)
{
	struct arena a;
	(void)state;
	arena_init(&a);
	struct json *j = parse_ok(&a, " {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": []} ");
	assert_int_equal(j->type, JSON_OBJECT);
	assert_int_equal(j->n, 3);
	struct json *arr = json_get(j, "a");
	assert_int_equal(arr->type, JSON_ARRAY);
	assert_int_equal(arr->n, 6);
	assert_string_equal(arr->v[1]->str, "-2.5e3");
	assert_int_equal(arr->v[2]->type, JSON_TRUE);
	assert_int_equal(json_bool(arr->v[2]), 1);
	assert_int_equal(json_bool(arr->v[3]), 0);
	assert_int_equal(json_bool(arr->v[5]), -1);
	assert_int_equal(arr->v[4]->type, JSON_NULL);
	assert_string_equal(json_str(arr->v[5]), "x");
	assert_null(json_str(arr->v[0]));
	assert_int_equal(json_get(j, "b")->n, 0);
	assert_null(json_get(j, "zz"));
	assert_null(json_get(arr, "a"));
	assert_null(json_get(NULL, "a"));
	/* the first of duplicate keys wins */
	j = parse_ok(&a, "{\"k\":1,\"k\":2}");
	assert_string_equal(json_get(j, "k")->str, "1");
	arena_release(&a);
}

static void test_fleet__json_strings(void **state)
{
	struct arena a;
	(void)state;
	arena_init(&a);
	struct json *j = parse_ok(&a, "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"");
	assert_string_equal(j->str, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	j = parse_ok(&a, "\"nul\\u0000inside\"");
	assert_int_equal(j->len, 10);
	assert_memory_equal(j->str, "nul\0inside", 10);
	j = parse_ok(&a, "\"caf\xc3\xa9\"");
	assert_string_equal(j->str, "caf\xc3\xa9");
	j = parse_ok(&a, "\"\"");
	assert_string_equal(j->str, "");
	arena_release(&a);
}

static void test_fleet__json_rejects(void **state)
{
	(void)state;
	parse_bad("", "expected a value");
	parse_bad("   ", "expected a value");
	parse_bad("{", "expected a key");
	parse_bad("{\"a\"}", "expected ':'");
	parse_bad("{\"a\":1,}", "expected a key");
	parse_bad("[1,]", "expected a value");
	parse_bad("[1 2]", "expected ',' or ']'");
	parse_bad("{\"a\":1 \"b\":2}", "expected ',' or '}'");
	parse_bad("tru", "unexpected character");
	parse_bad("x", "expected a value");
	parse_bad("nulls", "trailing characters");
	parse_bad("1 2", "trailing characters");
	parse_bad("01", "trailing characters");
	parse_bad("-", "truncated number");
	parse_bad("1.", "bad number");
	parse_bad("1e", "bad number");
	parse_bad("+1", "expected a value");
	parse_bad("-x", "bad number");
	parse_bad("\"abc", "unterminated string");
	parse_bad("\"a\\", "unterminated string");
	parse_bad("\"a\nb\"", "control character");
	parse_bad("\"\\x\"", "bad escape");
	parse_bad("\"\\u12g4\"", "bad \\u escape");
	parse_bad("\"\\u12", "truncated \\u escape");
	parse_bad("\"\\ud83d\"", "unpaired surrogate");
	parse_bad("\"\\ude00\"", "unpaired surrogate");
	parse_bad("\"\\ud83d\\u0041\"", "unpaired surrogate");
	parse_bad("\"\xc3\"", "invalid UTF-8");
	parse_bad("\"\xc0\xaf\"", "invalid UTF-8");		/* overlong '/' */
	parse_bad("\"\xed\xa0\x80\"", "invalid UTF-8");	/* a surrogate in UTF-8 */
	parse_bad("\"\xf4\x90\x80\x80\"", "invalid UTF-8");	/* above U+10FFFF */
	parse_bad("{\"a\\u0000b\":1}", "NUL in a key");
}

static void test_fleet__json_depth_and_length(void **state)
{
	struct arena a;
	struct json *j;
	char deep[2 * JSON_MAX_DEPTH + 3];
	(void)state;
	arena_init(&a);
	/* exactly JSON_MAX_DEPTH levels parse, one more does not */
	memset(deep, '[', JSON_MAX_DEPTH);
	memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	deep[2 * JSON_MAX_DEPTH] = '\0';
	assert_int_equal(json_parse(&a, deep, strlen(deep), &j), 0);
	memset(deep, '[', JSON_MAX_DEPTH + 1);
	memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	deep[2 * JSON_MAX_DEPTH + 2] = '\0';
	assert_int_equal(json_parse(&a, deep, strlen(deep), &j), -1);
	assert_non_null(strstr(err_msg(), "nested too deeply"));
	/* the length is what counts, not a NUL */
	assert_int_equal(json_parse(&a, "[1]xyz", 3, &j), 0);
	assert_int_equal(json_parse(&a, "\"a\0b\"", 5, &j), -1);
	assert_int_equal(json_parse(&a, "{}", JSON_MAX_INPUT + 1, &j), -1);
	arena_release(&a);
}

static void test_fleet__json_int(void **state)
{
	struct arena a;
	int64_t v = 0;
	(void)state;
	arena_init(&a);
	struct json *j = parse_ok(&a, "[\"4111120268196903173\", 15, \"-3\", \"\", \"1x\", 1.5, \"99999999999999999999\", true, \"-\"]");
	assert_int_equal(json_int(j->v[0], &v), 0);
	assert_true(v == 4111120268196903173LL);
	assert_int_equal(json_int(j->v[1], &v), 0);
	assert_int_equal(v, 15);
	assert_int_equal(json_int(j->v[2], &v), 0);
	assert_int_equal(v, -3);
	for (int i = 3; i < 9; i++)
		assert_int_equal(json_int(j->v[i], &v), -1);
	assert_int_equal(json_int(NULL, &v), -1);
	arena_release(&a);
}

static void test_fleet__base64(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	struct arena a;
	(void)state;
	arena_init(&a);
	for (int i = 0; i < 7; i++) {
		struct buf b = BUF_INIT;
		char *out;
		size_t n;
		b64_encode(&b, plain[i], strlen(plain[i]));
		assert_string_equal(b.ptr, coded[i]);
		assert_int_equal(b64_decode(&a, coded[i], strlen(coded[i]), &out, &n), 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_string_equal(out, plain[i]);
		buf_release(&b);
	}
	char *out;
	size_t n;
	assert_int_equal(b64_decode(&a, "Zg=", 3, &out, &n), -1);
	assert_int_equal(b64_decode(&a, "Z===", 4, &out, &n), -1);
	assert_int_equal(b64_decode(&a, "Zg==Zg==", 8, &out, &n), -1);	/* padding inside */
	assert_int_equal(b64_decode(&a, "Zm9!", 4, &out, &n), -1);
	assert_int_equal(b64_decode(&a, "Zm=v", 4, &out, &n), -1);
	arena_release(&a);
}

static void test_fleet__requests(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;
	/* /driftless/ -> L2RyaWZ0bGVzcy8=, its range end /driftless0 -> L2RyaWZ0bGVzczA= */
	etcdreq_range(&b, "/driftless/", 1);
	assert_string_equal(b.ptr, "{\"key\":\"L2RyaWZ0bGVzcy8=\",\"range_end\":\"L2RyaWZ0bGVzczA=\"}");
	buf_reset(&b);
	etcdreq_put(&b, "/a", "{\"x\":1}", 42);
	assert_string_equal(b.ptr, "{\"key\":\"L2E=\",\"value\":\"eyJ4IjoxfQ==\",\"lease\":\"42\"}");
	buf_reset(&b);
	etcdreq_put(&b, "/a", "", 0);
	assert_string_equal(b.ptr, "{\"key\":\"L2E=\",\"value\":\"\"}");
	buf_reset(&b);
	etcdreq_grant(&b, 15);
	assert_string_equal(b.ptr, "{\"TTL\":\"15\"}");
	buf_reset(&b);
	etcdreq_lease(&b, 4111120268196903173LL);
	assert_string_equal(b.ptr, "{\"ID\":\"4111120268196903173\"}");
	buf_reset(&b);
	etcdreq_auth(&b, "root", "p\"w");
	assert_string_equal(b.ptr, "{\"name\":\"root\",\"password\":\"p\\\"w\"}");
	buf_reset(&b);
	etcdreq_take_slot(&b, "/s", "/h", 7, "v", 9);
	assert_string_equal(b.ptr, "{\"compare\":[{\"key\":\"L3M=\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
			    "\"create_revision\":\"0\"},{\"key\":\"L2g=\",\"target\":\"MOD\",\"result\":\"EQUAL\","
			    "\"mod_revision\":\"7\"}],\"success\":[{\"request_put\":{\"key\":\"L3M=\","
			    "\"value\":\"dg==\",\"lease\":\"9\"}}]}");
	buf_reset(&b);
	etcdreq_release_slot(&b, "/s", 9);
	assert_string_equal(b.ptr, "{\"compare\":[{\"key\":\"L3M=\",\"target\":\"LEASE\",\"result\":\"EQUAL\","
			    "\"lease\":\"9\"}],\"success\":[{\"request_delete_range\":{\"key\":\"L3M=\"}}]}");
	/* every body is JSON our own reader accepts */
	struct arena a;
	struct json *j;
	arena_init(&a);
	assert_int_equal(json_parse(&a, b.ptr, b.len, &j), 0);
	arena_release(&a);
	buf_release(&b);
}

#define HDR "\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\"," \
	    "\"revision\":\"3\",\"raft_term\":\"2\"}"

static struct etcd_resp decode(struct arena *a, const char *body)
{
	struct etcd_resp r;
	int ret = etcdresp_parse(a, body, strlen(body), &r);
	if (ret < 0)
		fprintf(stderr, "unexpected: %s\n", err_msg());
	assert_int_equal(ret, 0);
	return r;
}

static void test_fleet__responses(void **state)
{
	struct arena a;
	struct etcd_resp r;
	(void)state;
	arena_init(&a);
	r = decode(&a, "{" HDR ",\"ID\":\"4111120268196903173\",\"TTL\":\"5\"}");
	assert_true(r.id == 4111120268196903173LL);
	assert_int_equal(r.ttl, 5);
	assert_int_equal(r.revision, 3);
	/* keepalive wraps its answer in "result"; an expired lease has no TTL */
	r = decode(&a, "{\"result\":{" HDR ",\"ID\":\"7\",\"TTL\":\"5\"}}");
	assert_int_equal(r.ttl, 5);
	r = decode(&a, "{\"result\":{" HDR ",\"ID\":\"12345\"}}");
	assert_int_equal(r.ttl, 0);
	assert_null(r.error);
	r = decode(&a, "{" HDR ",\"kvs\":[{\"key\":\"L2EvYg==\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		       "\"version\":\"1\",\"value\":\"aGk=\",\"lease\":\"4111120268196903175\"}],\"count\":\"1\"}");
	assert_int_equal(r.nkvs, 1);
	assert_string_equal(r.kvs[0].key, "/a/b");
	assert_string_equal(r.kvs[0].val, "hi");
	assert_int_equal(r.kvs[0].vlen, 2);
	assert_int_equal(r.kvs[0].create_rev, 2);
	assert_true(r.kvs[0].lease == 4111120268196903175LL);
	/* an empty range has no kvs at all */
	r = decode(&a, "{" HDR "}");
	assert_int_equal(r.nkvs, 0);
	assert_int_equal(r.succeeded, 0);
	r = decode(&a, "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}");
	assert_int_equal(r.succeeded, 1);
	r = decode(&a, "{" HDR ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"3\"},\"kvs\":"
		       "[{\"key\":\"L2EvYw==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\","
		       "\"value\":\"eA==\"}],\"count\":\"1\"}}]}");
	assert_int_equal(r.succeeded, 0);
	assert_int_equal(r.nkvs, 1);
	assert_string_equal(r.kvs[0].key, "/a/c");
	assert_int_equal(r.kvs[0].lease, 0);
	r = decode(&a, "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,"
		       "\"message\":\"etcdserver: requested lease not found\"}");
	assert_int_equal(r.code, 5);
	assert_string_equal(r.error, "etcdserver: requested lease not found");
	r = decode(&a, "{" HDR ",\"token\":\"abc.123\"}");
	assert_string_equal(r.token, "abc.123");
	/* shapes that are refused */
	static const char *const bad[] = {
		"Not Found", "[]", "{\"kvs\":{}}", "{\"kvs\":[1]}", "{\"kvs\":[{\"key\":\"L2E\"}]}",
		"{\"kvs\":[{\"key\":5}]}", "{\"ID\":\"x\"}", "{\"TTL\":true}", "{\"succeeded\":\"yes\"}",
		"{\"header\":{\"revision\":[]}}", "{\"responses\":{}}", "{\"token\":1}", NULL,
	};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(etcdresp_parse(&a, bad[i], strlen(bad[i]), &r), -1);
	arena_release(&a);
}

static void test_fleet__rollout(void **state)
{
	struct arena a;
	struct rollout ro;
	int mine = -1;
	(void)state;
	arena_init(&a);
	struct etcd_kv kvs[] = {
		{ .key = "/d/rollout/web/slot/1", .val = "{\"host\":\"h2\",\"revision\":\"bbb\",\"since\":5}",
		  .lease = 22 },
		{ .key = "/d/rollout/web/halt", .val = "{\"revision\":\"ccc\",\"host\":\"h3\",\"reason\":\"File/x: boom\","
		  "\"at\":9}", .mod_rev = 77 },
		{ .key = "/d/rollout/web/slot/0", .val = "garbage", .lease = 11 },
		{ .key = "/d/rollout/web/slot/x", .val = "{}" },
		{ .key = "/d/rollout/web/slot/", .val = "{}" },
		{ .key = "/d/rollout/webby/slot/2", .val = "{}" },
		{ .key = "/d/rollout/web/other", .val = "{}" },
	};
	for (size_t i = 0; i < sizeof(kvs) / sizeof(kvs[0]); i++) {
		kvs[i].klen = strlen(kvs[i].key);
		kvs[i].vlen = strlen(kvs[i].val);
	}
	rollout_read(&a, kvs, sizeof(kvs) / sizeof(kvs[0]), "/d/rollout/web/", &ro);
	assert_int_equal(ro.nslots, 2);
	assert_int_equal(ro.slots[0].index, 0);
	assert_string_equal(ro.slots[0].host, "");	/* unreadable, still taken */
	assert_int_equal(ro.slots[1].index, 1);
	assert_string_equal(ro.slots[1].host, "h2");
	assert_string_equal(ro.slots[1].revision, "bbb");
	assert_int_equal(ro.slots[1].since_ms, 5);
	assert_true(ro.halt.present);
	assert_string_equal(ro.halt.revision, "ccc");
	assert_string_equal(ro.halt.host, "h3");
	assert_string_equal(ro.halt.reason, "File/x: boom");
	assert_int_equal(ro.halt.at_ms, 9);
	assert_int_equal(ro.halt.mod_rev, 77);
	/* slots 0 and 1 taken: with 2 none is free, with 3 the next is 2 */
	assert_int_equal(rollout_pick(&ro, 2, "h1", 33, &mine), -1);
	assert_int_equal(rollout_pick(&ro, 3, "h1", 33, &mine), 2);
	assert_int_equal(rollout_pick(&ro, 1, "h1", 33, &mine), -1);
	/* a slot of ours (same host and lease) is found again */
	assert_int_equal(rollout_pick(&ro, 2, "h2", 22, &mine), -2);
	assert_int_equal(mine, 1);
	/* the same name under another lease is an older process: not ours */
	assert_int_equal(rollout_pick(&ro, 3, "h2", 23, &mine), 2);
	struct rollout empty;
	rollout_read(&a, NULL, 0, "/d/rollout/web/", &empty);
	assert_false(empty.halt.present);
	assert_int_equal(rollout_pick(&empty, 1, "h1", 1, &mine), 0);
	/* the values we write read back */
	struct buf b = BUF_INIT;
	rollout_halt_value(&b, "r\"1", "h\\1", "why\n", 3);
	struct etcd_kv h = { .key = "/p/halt", .klen = 7, .val = b.ptr, .vlen = b.len, .mod_rev = 4 };
	rollout_read(&a, &h, 1, "/p/", &ro);
	assert_string_equal(ro.halt.revision, "r\"1");
	assert_string_equal(ro.halt.host, "h\\1");
	assert_string_equal(ro.halt.reason, "why\n");
	buf_release(&b);
	arena_release(&a);
}

static void test_fleet__names(void **state)
{
	(void)state;
	assert_true(fleet_name_ok("web-01.example_a"));
	assert_false(fleet_name_ok(""));
	assert_false(fleet_name_ok("."));
	assert_false(fleet_name_ok(".."));
	assert_false(fleet_name_ok("a/b"));
	assert_false(fleet_name_ok("a b"));
	assert_false(fleet_name_ok(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet__json_values),
		cmocka_unit_test(test_fleet__json_strings),
		cmocka_unit_test(test_fleet__json_rejects),
		cmocka_unit_test(test_fleet__json_depth_and_length),
		cmocka_unit_test(test_fleet__json_int),
		cmocka_unit_test(test_fleet__base64),
		cmocka_unit_test(test_fleet__requests),
		cmocka_unit_test(test_fleet__responses),
		cmocka_unit_test(test_fleet__rollout),
		cmocka_unit_test(test_fleet__names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
