/* SPDX-License-Identifier: MIT */
/* A string-keyed open-addressing hash map holding borrowed keys and values. */
#ifndef DL_HMAP_H
#define DL_HMAP_H

#include <stddef.h>

#include <stdint.h>

/* The entries in insertion order; slots index them. A slot is 8 bytes: the
 * entry's index + 1 in its low half (0: empty), 32 bits of the key's hash in
 * its high half, so a probe compares strings only when those bits match.
 * The slots are at most 7/8 full: 100,000 keys take 2.6 MB (slots 1 MiB,
 * entries 1.6 MB), not the 6.3 MB of 24-byte slots at 3/4. */
struct hmap_entry {
	const char *key;	/* borrowed: must outlive the map entry */
	void *val;
};

struct hmap {
	uint64_t *slots;
	struct hmap_entry *entries;
	size_t n, cap;		/* entries used; slots (a power of two) */
	size_t nalloc;		/* entries allocated */
};

void hmap_init(struct hmap *m);
void hmap_release(struct hmap *m);
void *hmap_get(const struct hmap *m, const char *key);
/* Insert or replace; returns the previous value or NULL. */
void *hmap_put(struct hmap *m, const char *key, void *val);
/* room for n entries in all, so that loading n keys never rehashes */
void hmap_reserve(struct hmap *m, size_t n);
/* Iterate: for (size_t i = 0; hmap_next(m, &i, &k, &v);) */
int hmap_next(const struct hmap *m, size_t *iter, const char **key, void **val);

#endif
