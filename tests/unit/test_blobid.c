/* SPDX-License-Identifier: MIT */
/* Unit tests for gitsrc_hash_blob: the blob id git gives the same bytes,
 * for empty, small, block-boundary and large contents. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <git2.h>
#include "source/git.h"

static void test_blobid__same_as_libgit2(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 55, 56, 63, 64, 65, 250, 4096, 65536, 1000003 };
	unsigned char *data = malloc(1000003);
	assert_non_null(data);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < 1000003; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
	git_libgit2_init();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char got[41], want[41];
		git_oid oid;
		gitsrc_hash_blob(data, sizes[i], got);
		assert_int_equal(git_odb_hash(&oid, data, sizes[i], GIT_OBJECT_BLOB), 0);
		git_oid_tostr(want, sizeof(want), &oid);
		assert_string_equal(got, want);
	}
	char empty[41];
	gitsrc_hash_blob("", 0, empty);
	assert_string_equal(empty, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	git_libgit2_shutdown();
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blobid__same_as_libgit2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
