/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/hmap: lookups, replacement, reservation and growth, iteration order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/hmap.h"

#define N 5000

static char keys[N][16];

static void fill(struct hmap *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
		assert_null(hmap_put(m, keys[i], (void *)(uintptr_t)(i + 1)));
	}
}

static void check(const struct hmap *m, size_t n)
{
	assert_int_equal(m->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal((uintptr_t)hmap_get(m, keys[i]), i + 1);
	assert_null(hmap_get(m, "absent"));
	assert_null(hmap_get(m, ""));
}

static void test_hmap__grow_from_empty(void **state)
{
	(void)state;
	struct hmap m;
	hmap_init(&m);
	assert_null(hmap_get(&m, "key-0"));
	fill(&m, N);
	check(&m, N);
	hmap_release(&m);
}

/* every reservation size, then more keys than reserved: the entries grow */
static void test_hmap__reserve_then_grow(void **state)
{
	(void)state;
	for (size_t r = 0; r < 70; r++) {
		struct hmap m;
		hmap_init(&m);
		hmap_reserve(&m, r);
		fill(&m, r + 100);
		check(&m, r + 100);
		hmap_release(&m);
	}
	struct hmap m;
	hmap_init(&m);
	hmap_reserve(&m, N);
	fill(&m, N);
	check(&m, N);
	hmap_reserve(&m, 2 * N);	/* rehash with entries in place */
	check(&m, N);
	hmap_release(&m);
}

static void test_hmap__replace_and_order(void **state)
{
	(void)state;
	struct hmap m;
	hmap_init(&m);
	fill(&m, 300);
	char other[16];
	strcpy(other, "key-7");	/* an equal key at another address */
	assert_int_equal((uintptr_t)hmap_put(&m, other, (void *)(uintptr_t)9999), 8);
	assert_int_equal((uintptr_t)hmap_get(&m, "key-7"), 9999);
	assert_int_equal(m.n, 300);
	/* iteration: every entry once, in insertion order */
	size_t it = 0, i = 0;
	const char *k;
	void *v;
	while (hmap_next(&m, &it, &k, &v)) {
		assert_string_equal(k, keys[i]);
		assert_int_equal((uintptr_t)v, i == 7 ? 9999 : i + 1);
		i++;
	}
	assert_int_equal(i, 300);
	hmap_release(&m);
}

#define T(x) cmocka_unit_test(x)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_hmap__grow_from_empty),
		T(test_hmap__reserve_then_grow),
		T(test_hmap__replace_and_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
