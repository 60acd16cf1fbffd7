/* SPDX-License-Identifier: MIT */
/* A bump allocator: one per reconcile pass, freed in one go. */
#ifndef DL_ARENA_H
#define DL_ARENA_H

#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
	size_t total;
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);
/* Zeroed memory aligned for any type; aborts on out-of-memory. */
void *arena_alloc(struct arena *a, size_t n);
/* the same without zeroing: for memory the caller fills at once */
void *arena_alloc_raw(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* a, sep and b joined (no printf: ids are made once per resource) */
char *arena_join(struct arena *ar, const char *a, char sep, const char *b);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
