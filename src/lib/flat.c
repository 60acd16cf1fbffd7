/* SPDX-License-Identifier: MIT */
/* The flat encoding of the cache files (see flat.h). */
#include <string.h>
#include "lib/flat.h"
#include "lib/fs.h"

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

uint64_t flat_sum(uint64_t h, const char *p, size_t n)
{
	uint64_t w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

long flat_flush(int fd, struct buf *b, uint64_t *sum, int last)
{
	size_t n = last ? b->len : b->len & ~(size_t)7;
	const char *p = b->ptr ? b->ptr : "";
	*sum = flat_sum(*sum, p, n);
	if (fs_write_all(fd, p, n) < 0)
		return -1;
	if (n) {
		memmove(b->ptr, b->ptr + n, b->len - n);
		b->len -= n;
	}
	return (long)n;
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

/* lower-case hex digits (as object ids are written) to their values, the
 * rest to 16: a table, since a pass converts an id or two per resource */
static const unsigned char hexv[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static int hexval(char c)
{
	return (int)hexv[(unsigned char)c] - 1;
}

int oid_to_bin(const char *d, unsigned char bin[20])
{
	for (size_t i = 0; i < 20; i++) {
		int hi = hexval(d[2 * i]), lo = hi < 0 ? -1 : hexval(d[2 * i + 1]);
		if (lo < 0)
			return -1;
		bin[i] = (unsigned char)(hi << 4 | lo);
	}
	return d[40] ? -1 : 0;
}

void flat_put_oid(struct buf *b, const char *d)
{
	unsigned char bin[20];
	if (oid_to_bin(d, bin) == 0) {
		buf_addch(b, 1);
		buf_add(b, bin, sizeof(bin));
	} else {
		buf_addch(b, 0);
		flat_put_cstr(b, d);
	}
}

void oid_to_hex(const unsigned char bin[20], char out[41])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 20; i++) {
		out[2 * i] = hex[bin[i] >> 4];
		out[2 * i + 1] = hex[bin[i] & 15];
	}
	out[40] = '\0';
}

int flat_oid(struct flat *r, char out[41])
{
	if (r->bad || r->p >= r->end)
		return r->bad = 1, -1;
	char tag = *r->p++;
	if (tag == 1) {
		if (r->end - r->p < 20)
			return r->bad = 1, -1;
		oid_to_hex((const unsigned char *)r->p, out);
		r->p += 20;
		return 0;
	}
	size_t len = 0;
	const char *s = tag == 0 ? flat_str(r, &len) : NULL;
	if (!s || len > 40)
		return r->bad = 1, -1;
	memcpy(out, s, len + 1);
	return 0;
}
