/* SPDX-License-Identifier: MIT */
/* Open-addressing (linear probing) string map; no deletion, which the passes never need. */
#include <stdlib.h>
#include <string.h>
#include "lib/err.h"
#include "lib/hmap.h"

static uint32_t hmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (uint32_t)(h ^ (h >> 32));
}

void hmap_init(struct hmap *m)
{
	m->slots = NULL;
	m->entries = NULL;
	m->n = m->cap = m->nalloc = 0;
}

void hmap_release(struct hmap *m)
{
	free(m->slots);
	free(m->entries);
	hmap_init(m);
}

/* The slot holding key, or the empty slot where it goes. */
static uint64_t *hmap_find(const struct hmap *m, const char *key, uint32_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint64_t s = m->slots[i];
		if (!s || ((uint32_t)(s >> 32) == h &&
			   !strcmp(m->entries[(uint32_t)s - 1].key, key)))
			return &m->slots[i];
	}
}

void *hmap_get(const struct hmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	uint64_t s = *hmap_find(m, key, hmap_hash(key));
	return s ? m->entries[(uint32_t)s - 1].val : NULL;
}

static void hmap_resize(struct hmap *m, size_t cap)
{
	/* written, not calloc'd: a fresh calloc'd mapping reads as the shared
	 * zero page, and the first store into each page then faults again and
	 * flushes every other thread's TLB */
	free(m->slots);
	m->slots = xmalloc(cap * sizeof(*m->slots));
	memset(m->slots, 0, cap * sizeof(*m->slots));
	m->cap = cap;
	size_t mask = cap - 1;
	for (size_t e = 0; e < m->n; e++) {
		uint32_t h = hmap_hash(m->entries[e].key);
		size_t i = h & mask;
		while (m->slots[i])
			i = (i + 1) & mask;
		m->slots[i] = (uint64_t)h << 32 | (uint64_t)(e + 1);
	}
}

static void hmap_grow_entries(struct hmap *m, size_t n)
{
	if (n <= m->nalloc)
		return;
	BUG_ON(n > UINT32_MAX - 1);	/* the slots hold 32-bit indexes */
	m->entries = xrealloc(m->entries, n * sizeof(*m->entries));
	m->nalloc = n;
}

void hmap_reserve(struct hmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	while ((n + 1) * 8 >= cap * 7)
		cap *= 2;
	if (cap > m->cap)
		hmap_resize(m, cap);
	hmap_grow_entries(m, n);
}

void *hmap_put(struct hmap *m, const char *key, void *val)
{
	if ((m->n + 1) * 8 >= m->cap * 7)
		hmap_resize(m, m->cap ? m->cap * 2 : 64);
	uint32_t h = hmap_hash(key);
	uint64_t *s = hmap_find(m, key, h);
	if (*s) {
		struct hmap_entry *e = &m->entries[(uint32_t)*s - 1];
		void *prev = e->val;
		e->val = val;
		return prev;
	}
	if (m->n == m->nalloc)
		hmap_grow_entries(m, m->nalloc < 32 ? 32 : m->nalloc + m->nalloc / 2);
	m->entries[m->n] = (struct hmap_entry){ key, val };
	m->n++;
	*s = (uint64_t)h << 32 | (uint64_t)m->n;
	return NULL;
}

int hmap_next(const struct hmap *m, size_t *iter, const char **key, void **val)
{
	if (*iter >= m->n)
		return 0;
	const struct hmap_entry *e = &m->entries[(*iter)++];
	if (key)
		*key = e->key;
	if (val)
		*val = e->val;
	return 1;
}
