/* SPDX-License-Identifier: MIT */
/* Unit tests for collected diagnostics: formatting, stable sorting, release. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/diag.h"

/* Print d into a string the caller frees. */
static char *print(const struct diag *d)
{
	char *s = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&s, &len);

	assert_non_null(fp);
	diag_print(d, fp);
	assert_int_equal(fclose(fp), 0);
	return s;
}

static void test_diag__empty(void **state)
{
	struct diag d;
	char *s;

	(void)state;
	diag_init(&d);
	diag_sort(&d);
	s = print(&d);
	assert_string_equal(s, "");
	free(s);
	diag_release(&d);
	diag_release(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.v);
}

static void test_diag__print(void **state)
{
	struct diag d;
	char *s;

	(void)state;
	diag_init(&d);
	diag_add(&d, "a.yaml", 3, 7, "unknown key '%s'", "mdoe");
	diag_add(&d, "b.yaml", 0, 0, "cannot read: %d", 5);
	diag_add(&d, NULL, 0, 0, "no manifests found");
	diag_add(&d, "c.yaml", 4, 0, "line only");
	assert_int_equal(d.n, 4);
	assert_string_equal(d.v[0].file, "a.yaml");
	assert_int_equal(d.v[0].line, 3);
	assert_int_equal(d.v[0].col, 7);
	assert_string_equal(d.v[0].msg, "unknown key 'mdoe'");
	assert_null(d.v[2].file);

	s = print(&d);
	assert_string_equal(s,
			    "error: a.yaml:3:7: unknown key 'mdoe'\n"
			    "error: b.yaml: cannot read: 5\n"
			    "error: no manifests found\n"
			    "error: c.yaml:4: line only\n");
	free(s);
	diag_release(&d);
}

static void test_diag__copies_file(void **state)
{
	struct diag d;
	char file[] = "x.yaml";

	(void)state;
	diag_init(&d);
	diag_add(&d, file, 1, 1, "m");
	file[0] = 'y';
	assert_string_equal(d.v[0].file, "x.yaml");
	diag_release(&d);
}

static void test_diag__sort(void **state)
{
	struct diag d;
	char *s;

	(void)state;
	diag_init(&d);
	diag_add(&d, "b.yaml", 2, 1, "b2");
	diag_add(&d, "a.yaml", 10, 1, "a10");
	diag_add(&d, NULL, 0, 0, "global1");
	diag_add(&d, "a.yaml", 2, 5, "a2.5");
	diag_add(&d, "a.yaml", 2, 3, "a2.3 first");
	diag_add(&d, "a.yaml", 0, 0, "a whole file");
	diag_add(&d, "a.yaml", 2, 3, "a2.3 second");
	diag_add(&d, NULL, 0, 0, "global2");
	diag_add(&d, "a.yaml", 2, 3, "a2.3 third");
	diag_sort(&d);

	s = print(&d);
	assert_string_equal(s,
			    "error: global1\n"
			    "error: global2\n"
			    "error: a.yaml: a whole file\n"
			    "error: a.yaml:2:3: a2.3 first\n"
			    "error: a.yaml:2:3: a2.3 second\n"
			    "error: a.yaml:2:3: a2.3 third\n"
			    "error: a.yaml:2:5: a2.5\n"
			    "error: a.yaml:10:1: a10\n"
			    "error: b.yaml:2:1: b2\n");
	free(s);
	diag_release(&d);
}

/* Many equal keys across several merge passes must keep insertion order. */
static void test_diag__sort_stable_large(void **state)
{
	struct diag d;
	size_t n = 1000;

	(void)state;
	diag_init(&d);
	for (size_t i = 0; i < n; i++)
		diag_add(&d, i % 2 ? "b" : "a", (int)(i % 3), 1, "%zu", i);
	diag_sort(&d);
	assert_int_equal(d.n, n);
	for (size_t i = 1; i < n; i++) {
		const struct diag_item *p = &d.v[i - 1], *q = &d.v[i];
		int c = strcmp(p->file, q->file);

		assert_true(c <= 0);
		if (c)
			continue;
		assert_true(p->line <= q->line);
		if (p->line == q->line)
			assert_true(atoi(p->msg) < atoi(q->msg));
	}
	diag_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diag__empty),
		cmocka_unit_test(test_diag__print),
		cmocka_unit_test(test_diag__copies_file),
		cmocka_unit_test(test_diag__sort),
		cmocka_unit_test(test_diag__sort_stable_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
