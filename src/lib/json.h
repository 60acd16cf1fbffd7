/* SPDX-License-Identifier: MIT */
/* A small, strict, bounded JSON reader (RFC 8259) into an arena-allocated tree. */
#ifndef DL_JSON_H
#define DL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "lib/arena.h"

#define JSON_MAX_DEPTH 64		/* arrays and objects nested deeper are refused */
#define JSON_MAX_INPUT (16u << 20)	/* larger documents are refused before parsing */

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	/* STRING: the unescaped value (NUL-terminated; len bytes, which may
	 * include NULs from \u0000); NUMBER: its text as written */
	const char *str;
	size_t len;
	/* ARRAY: n items in v; OBJECT: n members, keys in k (NUL-terminated,
	 * never holding a NUL), values in v, in document order */
	struct json **v;
	const char **k;
	size_t n;
};

/*
 * Parse exactly one JSON value from s[0..len) (white space around it is
 * allowed, anything else after it is not). Strings must be valid UTF-8
 * without raw control characters; surrogate escapes must pair. Everything
 * lives in a until it is released. Returns 0 with *out set, or -1 with
 * err_msg() ("json: ... at byte N"). Duplicate keys are kept; json_get
 * returns the first.
 */
int json_parse(struct arena *a, const char *s, size_t len, struct json **out);

/* The member key of an object, or NULL (also when j is NULL or not an object). */
struct json *json_get(const struct json *j, const char *key);
/* A string's value, or NULL when j is not a string. */
const char *json_str(const struct json *j);
/* An integer written as a number or as a string of digits (etcd's gateway
 * writes int64 as strings); -1 when j is neither or out of range. */
int json_int(const struct json *j, int64_t *out);
/* 1 for true, 0 for false or absent (NULL), -1 for anything else. */
int json_bool(const struct json *j);

#endif
