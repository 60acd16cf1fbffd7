/* SPDX-License-Identifier: MIT */
/* A typed growable array of pointers-or-values, by macro on a plain struct. */
#ifndef DL_VEC_H
#define DL_VEC_H

#include <stddef.h>
#include "lib/err.h"

#define VEC(type) struct { type *v; size_t n, cap; }
#define VEC_PUSH(vec, val) do { \
	if ((vec).n == (vec).cap) { \
		(vec).cap = (vec).cap ? (vec).cap * 2 : 8; \
		(vec).v = xrealloc((vec).v, (vec).cap * sizeof(*(vec).v)); \
	} \
	(vec).v[(vec).n++] = (val); \
} while (0)
#define VEC_FREE(vec) do { free((vec).v); (vec).v = NULL; (vec).n = (vec).cap = 0; } while (0)

#endif
