/* SPDX-License-Identifier: MIT */
#ifndef DL_FLAT_H
#define DL_FLAT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

/*
 * The flat encoding of the state directory's cache files: native-endian
 * integers, and strings as a 32-bit length, the bytes and a terminator
 * (UINT32_MAX for NULL), so that a reader keeping the file in memory can
 * use them in place. A reader never reads past end; any short or
 * malformed field sets bad and returns 0 or NULL.
 */
struct flat {
	const char *p, *end;
	int bad;
};

void flat_put_u32(struct buf *b, uint32_t v);
void flat_put_u64(struct buf *b, uint64_t v);
void flat_put_str(struct buf *b, const char *s, size_t len);
void flat_put_cstr(struct buf *b, const char *s);

/* an object id or digest (40 hex digits) as a 1 and 20 bytes; anything
 * else (empty, not hex) as a 0 and the string */
void flat_put_oid(struct buf *b, const char *oid);

/* A 64-bit check sum of a file's body, fed in pieces: start from
 * FLAT_SUM_SEED; every piece but the last must have a length that is a
 * multiple of 8. Catches torn and flipped bytes, not an adversary. */
#define FLAT_SUM_SEED 0x9e3779b97f4a7c15ULL
uint64_t flat_sum(uint64_t h, const char *p, size_t n);
/* b written to fd and summed into *sum, all of it when last, else but for
 * its last len % 8 bytes (kept in b for the next piece): the number of
 * bytes written, or -1 with errno */
long flat_flush(int fd, struct buf *b, uint64_t *sum, int last);

/* An object id between 40 hex digits and 20 bytes: -1 when hex is not one. */
int oid_to_bin(const char *hex, unsigned char bin[20]);
void oid_to_hex(const unsigned char bin[20], char out[41]);

uint32_t flat_u32(struct flat *r);
uint64_t flat_u64(struct flat *r);
/* the string in place, or NULL (for NULL, or when bad); len may be NULL */
const char *flat_str(struct flat *r, size_t *len);
/* an id written by flat_put_oid, as text (at most 40 characters) into out */
int flat_oid(struct flat *r, char out[41]);

#endif
