/* SPDX-License-Identifier: MIT */
/*
 * The JSON reader: a recursive descent over a length-bounded buffer that
 * never reads past len, refuses nesting deeper than JSON_MAX_DEPTH, and
 * validates UTF-8. It is small on purpose (it reads the few answers of
 * etcd's JSON gateway and the values the agents publish there) and is
 * fuzzed by fuzz/fuzz_etcd_json.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"

struct rd {
	struct arena *a;
	const char *s;
	size_t len, pos;
};

static int fail(struct rd *r, const char *what)
{
	return err_set("json: %s at byte %zu", what, r->pos);
}

static void ws(struct rd *r)
{
	while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' ||
				   r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
		r->pos++;
}

static int lit(struct rd *r, const char *word)
{
	size_t n = strlen(word);
	if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n))
		return fail(r, "unexpected character");
	r->pos += n;
	return 0;
}

static int hex4(struct rd *r, unsigned *out)
{
	unsigned v = 0;
	if (r->len - r->pos < 4)
		return fail(r, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = r->s[r->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(r, "bad \\u escape");
	}
	*out = v;
	return 0;
}

static void put_utf8(struct buf *b, unsigned cp)
{
	char o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		o[0] = (char)(0xf0 | cp >> 18);
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_add(b, o, n);
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need;
	unsigned cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static int string(struct rd *r, const char **out, size_t *outlen)
{
	struct buf b = BUF_INIT;
	r->pos++;	/* the opening quote */
	for (;;) {
		if (r->pos >= r->len) {
			buf_release(&b);
			return fail(r, "unterminated string");
		}
		unsigned char c = (unsigned char)r->s[r->pos];
		if (c == '"') {
			r->pos++;
			break;
		}
		if (c < 0x20) {
			buf_release(&b);
			return fail(r, "control character in a string");
		}
		if (c != '\\') {
			size_t n = utf8_len((const unsigned char *)r->s + r->pos, r->len - r->pos);
			if (!n) {
				buf_release(&b);
				return fail(r, "invalid UTF-8 in a string");
			}
			buf_add(&b, r->s + r->pos, n);
			r->pos += n;
			continue;
		}
		if (++r->pos >= r->len) {
			buf_release(&b);
			return fail(r, "unterminated string");
		}
		char e = r->s[r->pos++];
		unsigned cp, lo;
		switch (e) {
		case '"': buf_addch(&b, '"'); break;
		case '\\': buf_addch(&b, '\\'); break;
		case '/': buf_addch(&b, '/'); break;
		case 'b': buf_addch(&b, '\b'); break;
		case 'f': buf_addch(&b, '\f'); break;
		case 'n': buf_addch(&b, '\n'); break;
		case 'r': buf_addch(&b, '\r'); break;
		case 't': buf_addch(&b, '\t'); break;
		case 'u':
			if (hex4(r, &cp) < 0) {
				buf_release(&b);
				return -1;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				buf_release(&b);
				return fail(r, "unpaired surrogate");
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (r->len - r->pos < 2 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u') {
					buf_release(&b);
					return fail(r, "unpaired surrogate");
				}
				r->pos += 2;
				if (hex4(r, &lo) < 0) {
					buf_release(&b);
					return -1;
				}
				if (lo < 0xdc00 || lo > 0xdfff) {
					buf_release(&b);
					return fail(r, "unpaired surrogate");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(&b, cp);
			break;
		default:
			buf_release(&b);
			return fail(r, "bad escape");
		}
	}
	*outlen = b.len;
	*out = b.len ? arena_strndup(r->a, b.ptr, b.len) : "";
	if (b.len && memchr(b.ptr, '\0', b.len)) {
		/* arena_strndup stops at a NUL: copy the bytes themselves */
		char *p = arena_alloc(r->a, b.len + 1);
		memcpy(p, b.ptr, b.len);
		*out = p;
	}
	buf_release(&b);
	return 0;
}

static int number(struct rd *r, struct json *j)
{
	size_t start = r->pos;
	const char *s = r->s;
	if (r->pos < r->len && s[r->pos] == '-')
		r->pos++;
	if (r->pos >= r->len)
		return fail(r, "truncated number");
	if (s[r->pos] == '0') {
		r->pos++;
	} else if (s[r->pos] >= '1' && s[r->pos] <= '9') {
		while (r->pos < r->len && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
	} else {
		return fail(r, "bad number");
	}
	if (r->pos < r->len && s[r->pos] == '.') {
		r->pos++;
		if (r->pos >= r->len || s[r->pos] < '0' || s[r->pos] > '9')
			return fail(r, "bad number");
		while (r->pos < r->len && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
	}
	if (r->pos < r->len && (s[r->pos] == 'e' || s[r->pos] == 'E')) {
		r->pos++;
		if (r->pos < r->len && (s[r->pos] == '+' || s[r->pos] == '-'))
			r->pos++;
		if (r->pos >= r->len || s[r->pos] < '0' || s[r->pos] > '9')
			return fail(r, "bad number");
		while (r->pos < r->len && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
	}
	j->type = JSON_NUMBER;
	j->len = r->pos - start;
	j->str = arena_strndup(r->a, s + start, j->len);
	return 0;
}

static int value(struct rd *r, struct json **out, int depth);

/* Items (and keys) are collected on the heap, then copied into the arena. */
struct coll {
	struct json **v;
	const char **k;
	size_t n, cap;
};

static void coll_add(struct coll *c, const char *k, struct json *v)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
		c->k = xrealloc(c->k, c->cap * sizeof(*c->k));
	}
	c->k[c->n] = k;
	c->v[c->n++] = v;
}

static void coll_finish(struct rd *r, struct coll *c, struct json *j, int keys)
{
	j->n = c->n;
	if (c->n) {
		j->v = arena_alloc(r->a, c->n * sizeof(*j->v));
		memcpy(j->v, c->v, c->n * sizeof(*j->v));
		if (keys) {
			j->k = arena_alloc(r->a, c->n * sizeof(*j->k));
			memcpy(j->k, c->k, c->n * sizeof(*j->k));
		}
	}
	free(c->v);
	free(c->k);
}

static int container(struct rd *r, struct json *j, int depth)
{
	int obj = r->s[r->pos] == '{';
	char close = obj ? '}' : ']';
	struct coll c = { 0 };
	if (depth >= JSON_MAX_DEPTH)
		return fail(r, "nested too deeply");
	j->type = obj ? JSON_OBJECT : JSON_ARRAY;
	r->pos++;
	ws(r);
	if (r->pos < r->len && r->s[r->pos] == close) {
		r->pos++;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		struct json *item;
		ws(r);
		if (obj) {
			size_t klen;
			if (r->pos >= r->len || r->s[r->pos] != '"') {
				coll_finish(r, &c, j, obj);
				return fail(r, "expected a key");
			}
			if (string(r, &key, &klen) < 0) {
				coll_finish(r, &c, j, obj);
				return -1;
			}
			if (strlen(key) != klen) {
				coll_finish(r, &c, j, obj);
				return fail(r, "NUL in a key");
			}
			ws(r);
			if (r->pos >= r->len || r->s[r->pos] != ':') {
				coll_finish(r, &c, j, obj);
				return fail(r, "expected ':'");
			}
			r->pos++;
		}
		if (value(r, &item, depth + 1) < 0) {
			coll_finish(r, &c, j, obj);
			return -1;
		}
		coll_add(&c, key, item);
		ws(r);
		if (r->pos < r->len && r->s[r->pos] == ',') {
			r->pos++;
			continue;
		}
		if (r->pos < r->len && r->s[r->pos] == close) {
			r->pos++;
			break;
		}
		coll_finish(r, &c, j, obj);
		return fail(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	coll_finish(r, &c, j, obj);
	return 0;
}

static int value(struct rd *r, struct json **out, int depth)
{
	struct json *j = arena_alloc(r->a, sizeof(*j));
	ws(r);
	if (r->pos >= r->len)
		return fail(r, "expected a value");
	switch (r->s[r->pos]) {
	case '{':
	case '[':
		if (container(r, j, depth) < 0)
			return -1;
		break;
	case '"':
		j->type = JSON_STRING;
		if (string(r, &j->str, &j->len) < 0)
			return -1;
		break;
	case 't':
		j->type = JSON_TRUE;
		if (lit(r, "true") < 0)
			return -1;
		break;
	case 'f':
		j->type = JSON_FALSE;
		if (lit(r, "false") < 0)
			return -1;
		break;
	case 'n':
		j->type = JSON_NULL;
		if (lit(r, "null") < 0)
			return -1;
		break;
	default:
		if (r->s[r->pos] != '-' && (r->s[r->pos] < '0' || r->s[r->pos] > '9'))
			return fail(r, "expected a value");
		if (number(r, j) < 0)
			return -1;
	}
	*out = j;
	return 0;
}

int json_parse(struct arena *a, const char *s, size_t len, struct json **out)
{
	struct rd r = { a, s, len, 0 };
	struct json *j;
	if (len > JSON_MAX_INPUT)
		return err_set("json: document of %zu bytes is larger than %u", len, JSON_MAX_INPUT);
	if (value(&r, &j, 0) < 0)
		return -1;
	ws(&r);
	if (r.pos != len)
		return fail(&r, "trailing characters");
	*out = j;
	return 0;
}

struct json *json_get(const struct json *j, const char *key)
{
	if (!j || j->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->k[i], key))
			return j->v[i];
	return NULL;
}

const char *json_str(const struct json *j)
{
	return j && j->type == JSON_STRING ? j->str : NULL;
}

int json_int(const struct json *j, int64_t *out)
{
	if (!j || (j->type != JSON_STRING && j->type != JSON_NUMBER) || !j->len || j->len > 20)
		return -1;
	const char *s = j->str;
	if (strspn(s + (s[0] == '-'), "0123456789") != j->len - (s[0] == '-') || j->len == (size_t)(s[0] == '-'))
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int json_bool(const struct json *j)
{
	if (!j || j->type == JSON_FALSE)
		return 0;
	return j->type == JSON_TRUE ? 1 : -1;
}
