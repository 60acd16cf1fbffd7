/* SPDX-License-Identifier: MIT */
/* A string-keyed open-addressing hash map holding borrowed keys and values. */
#ifndef DL_HMAP_H
#define DL_HMAP_H

#include <stddef.h>

struct hmap_slot {
	const char *key;	/* borrowed: must outlive the map entry */
	void *val;
	unsigned long hash;
};

struct hmap {
	struct hmap_slot *slots;
	size_t n, cap;
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
