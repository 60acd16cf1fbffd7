/* SPDX-License-Identifier: MIT */
/* The flat encoding of the cache files (see flat.h). */
#include <string.h>
#include "lib/flat.h"

void flat_put_u32(struct buf *b, uint32_t v)
{
	buf_add(b, &v, sizeof(v));
}

void flat_put_u64(struct buf *b, uint64_t v)
{
	buf_add(b, &v, sizeof(v));
}

void flat_put_str(struct buf *b, const char *s, size_t len)
{
	if (!s) {
		flat_put_u32(b, UINT32_MAX);
		return;
	}
	flat_put_u32(b, (uint32_t)len);
	buf_add(b, s, len);
	buf_add(b, "", 1);
}

void flat_put_cstr(struct buf *b, const char *s)
{
	flat_put_str(b, s, s ? strlen(s) : 0);
}

static int take(struct flat *r, void *out, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		memset(out, 0, n);
		return -1;
	}
	memcpy(out, r->p, n);
	r->p += n;
	return 0;
}

uint32_t flat_u32(struct flat *r)
{
	uint32_t v;
	take(r, &v, sizeof(v));
	return v;
}

uint64_t flat_u64(struct flat *r)
{
	uint64_t v;
	take(r, &v, sizeof(v));
	return v;
}

const char *flat_str(struct flat *r, size_t *len)
{
	uint32_t n = flat_u32(r);
	if (r->bad || n == UINT32_MAX)
		return NULL;
	if ((size_t)(r->end - r->p) <= n || r->p[n] != '\0') {
		r->bad = 1;
		return NULL;
	}
	const char *s = r->p;
	r->p += (size_t)n + 1;
	if (len)
		*len = n;
	return s;
}
