/* SPDX-License-Identifier: MIT */
/* Open-addressing (linear probing) string map; no deletion, which the passes never need. */
#include <stdlib.h>
#include <string.h>
#include "lib/err.h"
#include "lib/hmap.h"

static unsigned long hmap_hash(const char *s)
{
	unsigned long h = 1469598103934665603UL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211UL;
	}
	return h ? h : 1;
}

void hmap_init(struct hmap *m)
{
	m->slots = NULL;
	m->n = m->cap = 0;
}

void hmap_release(struct hmap *m)
{
	free(m->slots);
	hmap_init(m);
}

static struct hmap_slot *hmap_find(const struct hmap *m, const char *key, unsigned long h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct hmap_slot *s = &m->slots[i];
		if (!s->key || (s->hash == h && !strcmp(s->key, key)))
			return s;
	}
}

void *hmap_get(const struct hmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	struct hmap_slot *s = hmap_find(m, key, hmap_hash(key));
	return s->key ? s->val : NULL;
}

static void hmap_resize(struct hmap *m, size_t cap)
{
	struct hmap old = *m;
	/* written, not calloc'd: a fresh calloc'd mapping reads as the shared
	 * zero page, and the first store into each page then faults again and
	 * flushes every other thread's TLB */
	m->slots = xmalloc(cap * sizeof(*m->slots));
	memset(m->slots, 0, cap * sizeof(*m->slots));
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		if (old.slots[i].key)
			*hmap_find(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
	}
	free(old.slots);
}

void hmap_reserve(struct hmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	while ((n + 1) * 4 >= cap * 3)
		cap *= 2;
	if (cap > m->cap)
		hmap_resize(m, cap);
}

void *hmap_put(struct hmap *m, const char *key, void *val)
{
	if ((m->n + 1) * 4 >= m->cap * 3)
		hmap_resize(m, m->cap ? m->cap * 2 : 64);
	unsigned long h = hmap_hash(key);
	struct hmap_slot *s = hmap_find(m, key, h);
	if (s->key) {
		void *prev = s->val;
		s->val = val;
		return prev;
	}
	s->key = key;
	s->hash = h;
	s->val = val;
	m->n++;
	return NULL;
}

int hmap_next(const struct hmap *m, size_t *iter, const char **key, void **val)
{
	for (; *iter < m->cap; (*iter)++) {
		struct hmap_slot *s = &m->slots[*iter];
		if (s->key) {
			if (key)
				*key = s->key;
			if (val)
				*val = s->val;
			(*iter)++;
			return 1;
		}
	}
	return 0;
}
