/* SPDX-License-Identifier: MIT */
/*
 * etcd's v3 JSON gateway spoken by hand: every key and value is base64,
 * every int64 a decimal string. This file builds the few requests the fleet
 * needs and decodes their answers; it does no I/O, so the unit tests and
 * the fuzzer drive it directly.
 */
#include <stdlib.h>
#include <string.h>
#include "fleet/proto.h"
#include "lib/err.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void b64_encode(struct buf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	char o[4];
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		o[0] = b64chars[v >> 18 & 63];
		o[1] = b64chars[v >> 12 & 63];
		o[2] = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
		o[3] = i + 2 < n ? b64chars[v & 63] : '=';
		buf_add(b, o, 4);
	}
	if (!b->ptr)
		buf_adds(b, "");
}

static int b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

int b64_decode(struct arena *a, const char *s, size_t n, char **out, size_t *outlen)
{
	if (n % 4)
		return err_set("base64: length %zu is not a multiple of 4", n);
	char *o = arena_alloc(a, n / 4 * 3 + 1);
	size_t len = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64val(s[i + k])) < 0)
				return err_set("base64: bad character at %zu", i + (size_t)k);
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
		o[len++] = (char)(w >> 16);
		if (pad < 2)
			o[len++] = (char)(w >> 8 & 0xff);
		if (pad < 1)
			o[len++] = (char)(w & 0xff);
	}
	o[len] = '\0';
	*out = o;
	*outlen = len;
	return 0;
}

static void add_b64_field(struct buf *b, const char *name, const void *p, size_t n)
{
	buf_addf(b, "\"%s\":\"", name);
	b64_encode(b, p, n);
	buf_addch(b, '"');
}

void etcdreq_range(struct buf *b, const char *key, int prefix)
{
	size_t n = strlen(key);
	buf_addch(b, '{');
	add_b64_field(b, "key", key, n);
	if (prefix && n) {
		/* the range end of a prefix: its last byte plus one */
		char *end = xstrdup(key);
		end[n - 1]++;
		buf_addch(b, ',');
		add_b64_field(b, "range_end", end, n);
		free(end);
	}
	buf_addch(b, '}');
}

void etcdreq_put(struct buf *b, const char *key, const char *val, int64_t lease)
{
	buf_addch(b, '{');
	add_b64_field(b, "key", key, strlen(key));
	buf_addch(b, ',');
	add_b64_field(b, "value", val, strlen(val));
	if (lease)
		buf_addf(b, ",\"lease\":\"%lld\"", (long long)lease);
	buf_addch(b, '}');
}

void etcdreq_delete(struct buf *b, const char *key)
{
	buf_addch(b, '{');
	add_b64_field(b, "key", key, strlen(key));
	buf_addch(b, '}');
}

void etcdreq_grant(struct buf *b, int64_t ttl_s)
{
	buf_addf(b, "{\"TTL\":\"%lld\"}", (long long)ttl_s);
}

void etcdreq_lease(struct buf *b, int64_t lease)
{
	buf_addf(b, "{\"ID\":\"%lld\"}", (long long)lease);
}

void etcdreq_auth(struct buf *b, const char *user, const char *password)
{
	buf_adds(b, "{\"name\":");
	buf_add_json_str(b, user);
	buf_adds(b, ",\"password\":");
	buf_add_json_str(b, password);
	buf_addch(b, '}');
}

void etcdreq_take_slot(struct buf *b, const char *slot_key, const char *halt_key, int64_t halt_mod,
		       const char *val, int64_t lease)
{
	buf_adds(b, "{\"compare\":[{");
	add_b64_field(b, "key", slot_key, strlen(slot_key));
	buf_adds(b, ",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"},{");
	add_b64_field(b, "key", halt_key, strlen(halt_key));
	buf_addf(b, ",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"%lld\"}],"
		 "\"success\":[{\"request_put\":", (long long)halt_mod);
	etcdreq_put(b, slot_key, val, lease);
	buf_adds(b, "}]}");
}

void etcdreq_release_slot(struct buf *b, const char *slot_key, int64_t lease)
{
	buf_adds(b, "{\"compare\":[{");
	add_b64_field(b, "key", slot_key, strlen(slot_key));
	buf_addf(b, ",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":\"%lld\"}],"
		 "\"success\":[{\"request_delete_range\":", (long long)lease);
	etcdreq_delete(b, slot_key);
	buf_adds(b, "}]}");
}

static int int_field(const struct json *obj, const char *name, int64_t *out)
{
	struct json *v = json_get(obj, name);
	*out = 0;
	if (!v)
		return 0;	/* the gateway leaves out zero values */
	if (json_int(v, out) < 0)
		return err_set("etcd: '%s' is not an integer", name);
	return 0;
}

static int b64_field(struct arena *a, const struct json *obj, const char *name, const char **out,
		     size_t *len)
{
	struct json *v = json_get(obj, name);
	char *s;
	*out = "";
	*len = 0;
	if (!v)
		return 0;
	if (v->type != JSON_STRING)
		return err_set("etcd: '%s' is not a string", name);
	if (b64_decode(a, v->str, v->len, &s, len) < 0)
		return err_wrap("etcd: '%s': ", name);
	*out = s;
	return 0;
}

static int read_kvs(struct arena *a, const struct json *arr, struct etcd_resp *out)
{
	if (!arr)
		return 0;
	if (arr->type != JSON_ARRAY)
		return err_set("etcd: 'kvs' is not a list");
	out->kvs = arr->n ? arena_alloc(a, arr->n * sizeof(*out->kvs)) : NULL;
	for (size_t i = 0; i < arr->n; i++) {
		struct json *o = arr->v[i];
		struct etcd_kv *kv = &out->kvs[i];
		if (o->type != JSON_OBJECT)
			return err_set("etcd: an entry of 'kvs' is not an object");
		if (b64_field(a, o, "key", &kv->key, &kv->klen) < 0 ||
		    b64_field(a, o, "value", &kv->val, &kv->vlen) < 0 ||
		    int_field(o, "create_revision", &kv->create_rev) < 0 ||
		    int_field(o, "mod_revision", &kv->mod_rev) < 0 ||
		    int_field(o, "version", &kv->version) < 0 || int_field(o, "lease", &kv->lease) < 0)
			return -1;
	}
	out->nkvs = arr->n;
	return 0;
}

int etcdresp_parse(struct arena *a, const char *body, size_t len, struct etcd_resp *out)
{
	struct json *root;
	memset(out, 0, sizeof(*out));
	if (json_parse(a, body, len, &root) < 0)
		return err_wrap("etcd: the answer is not JSON: ");
	if (root->type != JSON_OBJECT)
		return err_set("etcd: the answer is not a JSON object");
	out->root = root;
	struct json *r = json_get(root, "result");	/* streaming endpoints wrap it */
	if (r && r->type == JSON_OBJECT)
		root = r;
	struct json *e = json_get(root, "error");
	if (e) {
		int64_t code = 0;
		struct json *m = json_get(root, "message");
		out->error = json_str(m) ? json_str(m) : json_str(e) ? json_str(e) : "unknown error";
		if (int_field(root, "code", &code) < 0)
			return -1;
		out->code = code > 0 && code < 100 ? (int)code : 2;
		return 0;
	}
	int64_t ok;
	if (int_field(json_get(root, "header"), "revision", &out->revision) < 0 ||
	    int_field(root, "ID", &out->id) < 0 || int_field(root, "TTL", &out->ttl) < 0)
		return -1;
	if ((ok = json_bool(json_get(root, "succeeded"))) < 0)
		return err_set("etcd: 'succeeded' is not true or false");
	out->succeeded = (int)ok;
	struct json *t = json_get(root, "token");
	if (t && !(out->token = json_str(t)))
		return err_set("etcd: 'token' is not a string");
	if (json_get(root, "kvs"))
		return read_kvs(a, json_get(root, "kvs"), out);
	struct json *rs = json_get(root, "responses");
	if (rs && rs->type != JSON_ARRAY)
		return err_set("etcd: 'responses' is not a list");
	for (size_t i = 0; rs && i < rs->n; i++) {
		struct json *rr = json_get(rs->v[i], "response_range");
		if (rr)
			return read_kvs(a, json_get(rr, "kvs"), out);
	}
	return 0;
}

/* ---- the rollout ---- */

void rollout_slot_value(struct buf *b, const char *host, const char *revision, int64_t since_ms)
{
	buf_adds(b, "{\"host\":");
	buf_add_json_str(b, host);
	buf_adds(b, ",\"revision\":");
	buf_add_json_str(b, revision);
	buf_addf(b, ",\"since\":%lld}", (long long)since_ms);
}

void rollout_halt_value(struct buf *b, const char *revision, const char *host, const char *reason,
			int64_t at_ms)
{
	buf_adds(b, "{\"revision\":");
	buf_add_json_str(b, revision);
	buf_adds(b, ",\"host\":");
	buf_add_json_str(b, host);
	buf_adds(b, ",\"reason\":");
	buf_add_json_str(b, reason);
	buf_addf(b, ",\"at\":%lld}", (long long)at_ms);
}

static const char *str_or_empty(const struct json *o, const char *name)
{
	const char *s = json_str(json_get(o, name));
	return s ? s : "";
}

void rollout_read(struct arena *a, const struct etcd_kv *kvs, size_t n, const char *prefix,
		  struct rollout *out)
{
	size_t pl = strlen(prefix);
	memset(out, 0, sizeof(*out));
	out->slots = n ? arena_alloc(a, n * sizeof(*out->slots)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct etcd_kv *kv = &kvs[i];
		if (kv->klen <= pl || strncmp(kv->key, prefix, pl))
			continue;
		const char *rest = kv->key + pl;
		struct json *v = NULL;
		if (json_parse(a, kv->val, kv->vlen, &v) < 0 || v->type != JSON_OBJECT)
			v = NULL;
		if (!strcmp(rest, "halt")) {
			struct fleet_halt *h = &out->halt;
			h->present = 1;
			h->mod_rev = kv->mod_rev;
			h->revision = str_or_empty(v, "revision");
			h->host = str_or_empty(v, "host");
			h->reason = str_or_empty(v, "reason");
			if (json_int(json_get(v, "at"), &h->at_ms) < 0)
				h->at_ms = 0;
			continue;
		}
		if (strncmp(rest, "slot/", 5) || !rest[5] || strlen(rest + 5) > 4 ||
		    strspn(rest + 5, "0123456789") != strlen(rest + 5))
			continue;
		struct fleet_slot *s = &out->slots[out->nslots++];
		s->index = atoi(rest + 5);
		s->host = str_or_empty(v, "host");
		s->revision = str_or_empty(v, "revision");
		s->lease = kv->lease;
		if (json_int(json_get(v, "since"), &s->since_ms) < 0)
			s->since_ms = 0;
	}
	/* keep them in index order (a handful: insertion sort) */
	for (size_t i = 1; i < out->nslots; i++)
		for (size_t j = i; j > 0 && out->slots[j - 1].index > out->slots[j].index; j--) {
			struct fleet_slot t = out->slots[j];
			out->slots[j] = out->slots[j - 1];
			out->slots[j - 1] = t;
		}
}

int rollout_pick(const struct rollout *r, int max, const char *host, int64_t lease, int *mine)
{
	for (size_t i = 0; i < r->nslots; i++)
		if (r->slots[i].lease == lease && lease && !strcmp(r->slots[i].host, host)) {
			*mine = r->slots[i].index;
			return -2;
		}
	for (int k = 0; k < max; k++) {
		int taken = 0;
		for (size_t i = 0; i < r->nslots && !taken; i++)
			taken = r->slots[i].index == k;
		if (!taken)
			return k;
	}
	return -1;
}

int fleet_name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return strcmp(s, ".") && strcmp(s, "..");
}
