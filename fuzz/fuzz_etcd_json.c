/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the JSON reader and everything built on it that reads
 * what etcd (or another agent) sends: gateway answers and rollout values.
 * Invariants: a parsed document never has more depth than the limit, and
 * a string re-encoded by buf_add_json_strn parses back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fleet/proto.h"
#include "lib/err.h"
#include "lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t depth(const struct json *j)
{
	size_t d = 0;
	for (size_t i = 0; (j->type == JSON_ARRAY || j->type == JSON_OBJECT) && i < j->n; i++) {
		size_t c = depth(j->v[i]);
		if (c > d)
			d = c;
	}
	return d + (j->type == JSON_ARRAY || j->type == JSON_OBJECT);
}

static void roundtrip(struct arena *a, const struct json *j)
{
	if (j->type == JSON_STRING) {
		struct buf b = BUF_INIT;
		struct json *back;
		buf_add_json_strn(&b, j->str, j->len);
		if (json_parse(a, b.ptr, b.len, &back) < 0 || back->type != JSON_STRING ||
		    back->len != j->len || memcmp(back->str, j->str, j->len))
			__builtin_trap();
		buf_release(&b);
	}
	for (size_t i = 0; (j->type == JSON_ARRAY || j->type == JSON_OBJECT) && i < j->n; i++)
		roundtrip(a, j->v[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct json *j;
	struct etcd_resp r;
	struct rollout ro;
	int mine;
	arena_init(&a);
	if (json_parse(&a, (const char *)data, size, &j) == 0) {
		if (depth(j) > JSON_MAX_DEPTH)
			__builtin_trap();
		roundtrip(&a, j);
		int64_t v;
		json_int(j, &v);
		json_bool(j);
	}
	if (etcdresp_parse(&a, (const char *)data, size, &r) == 0) {
		rollout_read(&a, r.kvs, r.nkvs, "/driftless/rollout/web/", &ro);
		if (ro.nslots > r.nkvs || rollout_pick(&ro, 3, "h1", 7, &mine) >= 3)
			__builtin_trap();
	}
	/* the bytes as one stored value */
	struct etcd_kv kv = { .key = "/p/halt", .klen = 7, .val = (const char *)data, .vlen = size };
	rollout_read(&a, &kv, 1, "/p/", &ro);
	arena_release(&a);
	return 0;
}
