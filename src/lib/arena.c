/* SPDX-License-Identifier: MIT */
/* Bump allocator in large blocks; one per pass so a long-running agent cannot leak per pass. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/arena.h"
#include "lib/err.h"

/* large enough that malloc maps each block, so a released arena goes back
 * to the kernel instead of fragmenting the heap of a long-running agent */
#define ARENA_BLOCK (256 * 1024)
#define ARENA_ALIGN 16

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->total = 0;
}

void arena_release(struct arena *a)
{
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	arena_init(a);
}

/* n bytes at a multiple of align (a power of two, at most ARENA_ALIGN):
 * strings take 1, so 100,000 short ones are not rounded up to 16 bytes each */
static void *arena_take(struct arena *a, size_t n, size_t align)
{
	struct arena_block *b = a->head;
	size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;
	if (!n)
		n = 1;
	if (!b || at > b->cap || b->cap - at < n) {
		size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
		size_t cap = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		if (need > ARENA_BLOCK / 4 && a->head) {
			/* big allocation: keep the current block at the head */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
		a->total += cap;
		at = 0;
	}
	void *p = b->data + at;
	b->used = at + n;
	return p;
}

void *arena_alloc_raw(struct arena *a, size_t n)
{
	return arena_take(a, n, ARENA_ALIGN);
}

void *arena_alloc(struct arena *a, size_t n)
{
	void *p = arena_alloc_raw(a, n);
	memset(p, 0, n);
	return p;
}

char *arena_join(struct arena *ar, const char *a, char sep, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = arena_take(ar, la + lb + 2, 1);
	memcpy(p, a, la);
	p[la] = sep;
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_take(a, n + 1, 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap, cp;
	int n;

	va_start(ap, fmt);
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	BUG_ON(n < 0);
	char *p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
