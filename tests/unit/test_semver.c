/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/semver: versions, precedence, ranges and the pre-release rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "lib/err.h"
#include "lib/semver.h"

static void test_semver__parse(void **state)
{
	(void)state;
	struct semver v;
	assert_int_equal(semver_parse("1.2.3", &v), 0);
	assert_true(v.major == 1 && v.minor == 2 && v.patch == 3 && !v.pre[0]);
	assert_int_equal(semver_parse("v10.20.30-rc.1+build.5", &v), 0);
	assert_true(v.major == 10 && v.minor == 20 && v.patch == 30);
	assert_string_equal(v.pre, "rc.1");
	assert_int_equal(semver_parse("0.0.0", &v), 0);
	static const char *const bad[] = { "", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-",
		"1.2.3-01", "1.2.3-a..b", "1.2.3+", "v", "vv1.2.3", "1.2.x", "1.2.3 ", " 1.2.3",
		"1.2.-3", "99999999999999999999.0.0", "1.2.3-rc_1", NULL };
	for (int i = 0; bad[i]; i++) {
		if (semver_parse(bad[i], &v) == 0)
			fail_msg("'%s' parsed as a version", bad[i]);
	}
}

static int cmp(const char *a, const char *b)
{
	struct semver x, y;
	assert_int_equal(semver_parse(a, &x), 0);
	assert_int_equal(semver_parse(b, &y), 0);
	return semver_cmp(&x, &y);
}

static void test_semver__precedence(void **state)
{
	(void)state;
	/* the example chain of semver 2.0.0 section 11 */
	static const char *const chain[] = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
		"1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0",
		"2.0.0", "10.0.0", NULL };
	for (int i = 0; chain[i + 1]; i++) {
		assert_true(cmp(chain[i], chain[i + 1]) < 0);
		assert_true(cmp(chain[i + 1], chain[i]) > 0);
	}
	assert_int_equal(cmp("1.2.3+a", "v1.2.3+b"), 0);
}

struct rcase {
	const char *range, *version;
	int want;
};

static const struct rcase cases[] = {
	{ "*", "1.2.3", 1 }, { "*", "0.0.0", 1 }, { "*", "1.2.3-rc.1", 0 },
	{ "x", "5.0.0", 1 },
	{ "1.x", "1.0.0", 1 }, { "1.x", "1.99.7", 1 }, { "1.x", "2.0.0", 0 }, { "1.x", "0.9.9", 0 },
	{ "1", "1.4.0", 1 }, { "1.2", "1.2.9", 1 }, { "1.2", "1.3.0", 0 }, { "1.2.*", "1.2.0", 1 },
	{ "1.2.3", "1.2.3", 1 }, { "1.2.3", "1.2.4", 0 }, { "=1.2.3", "1.2.3", 1 }, { "v1.2.3", "1.2.3", 1 },
	{ "^1.2", "1.2.0", 1 }, { "^1.2", "1.9.9", 1 }, { "^1.2", "2.0.0", 0 }, { "^1.2", "1.1.9", 0 },
	{ "^1.2.3", "1.2.3", 1 }, { "^1.2.3", "1.2.2", 0 }, { "^1.2.3", "1.3.0-rc.1", 0 },
	{ "^0.2.3", "0.2.9", 1 }, { "^0.2.3", "0.3.0", 0 }, { "^0.0.3", "0.0.3", 1 }, { "^0.0.3", "0.0.4", 0 },
	{ "^0.0", "0.0.9", 1 }, { "^0.0", "0.1.0", 0 }, { "^0", "0.9.0", 1 }, { "^0", "1.0.0", 0 },
	{ "^1.2.3-beta.2", "1.2.3-beta.3", 1 }, { "^1.2.3-beta.2", "1.2.3-beta.1", 0 },
	{ "^1.2.3-beta.2", "1.2.4-beta.3", 0 }, { "^1.2.3-beta.2", "1.2.4", 1 },
	{ "~1.2.3", "1.2.9", 1 }, { "~1.2.3", "1.3.0", 0 }, { "~1.2.3", "1.2.2", 0 }, { "~1.2", "1.2.0", 1 },
	{ "~1", "1.9.0", 1 }, { "~1", "2.0.0", 0 }, { "~>1.2", "1.2.5", 1 },
	{ ">=1.2.0 <2.0.0", "1.2.0", 1 }, { ">=1.2.0 <2.0.0", "1.99.0", 1 }, { ">=1.2.0 <2.0.0", "2.0.0", 0 },
	{ ">= 1.2.0 < 2.0.0", "1.5.0", 1 }, { ">=1.2.0 <2.0.0", "2.0.0-rc.1", 0 },
	{ ">1.2.3", "1.2.3", 0 }, { ">1.2.3", "1.2.4", 1 }, { ">1.2", "1.2.9", 0 }, { ">1.2", "1.3.0", 1 },
	{ ">1", "1.9.9", 0 }, { ">1", "2.0.0", 1 }, { "<1.2", "1.1.9", 1 }, { "<1.2", "1.2.0", 0 },
	{ "<=1.2", "1.2.9", 1 }, { "<=1.2", "1.3.0", 0 }, { "<=1.2.3", "1.2.3", 1 }, { "<*", "0.0.0", 0 },
	{ ">*", "1.0.0", 0 }, { ">=*", "1.0.0", 1 },
	{ "1.2.3 - 2.3.4", "2.3.4", 1 }, { "1.2.3 - 2.3.4", "2.3.5", 0 }, { "1.2 - 2.3", "2.3.9", 1 },
	{ "1.2 - 2.3", "1.1.9", 0 }, { "1.2 - 2", "2.9.0", 1 },
	{ "^1.0 || ^3.0", "3.1.0", 1 }, { "^1.0 || ^3.0", "2.1.0", 0 }, { "1.2.3||2.0.0", "2.0.0", 1 },
	{ ">=2.0.0-rc.1 <3", "2.0.0-rc.2", 1 }, { ">=2.0.0-rc.1 <3", "2.1.0-rc.1", 0 },
	{ "2.0.0-rc.1", "2.0.0-rc.1", 1 }, { "2.0.0-rc.1", "2.0.0", 0 },
};

static void test_semver__ranges(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct semver_range r;
		struct semver v;
		if (semver_range_parse(cases[i].range, &r) < 0)
			fail_msg("range '%s': %s", cases[i].range, err_msg());
		assert_int_equal(semver_parse(cases[i].version, &v), 0);
		if (semver_range_match(&r, &v) != cases[i].want)
			fail_msg("'%s' %s '%s'", cases[i].version,
				 cases[i].want ? "should match" : "should not match", cases[i].range);
	}
}

static void test_semver__bad_ranges(void **state)
{
	(void)state;
	static const char *const bad[] = { "", " ", "abc", "1.x.3", "^", ">=", "1.2.3 -", "1.2-rc.1",
		"1..2", "1.2.", "^01.2", "||", "1.0 ||", "1.2.3 - 2.0.0 - 3", ">=1\t<2\n", "1.2.3-",
		"~>", "=>1.2", NULL };
	for (int i = 0; bad[i]; i++) {
		struct semver_range r;
		if (semver_range_parse(bad[i], &r) == 0)
			fail_msg("'%s' parsed as a range", bad[i]);
		assert_non_null(strstr(err_msg(), "semver range"));
	}
	char longr[400];
	memset(longr, '1', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	struct semver_range r;
	assert_int_equal(semver_range_parse(longr, &r), -1);
}

#define T(x) cmocka_unit_test(x)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_semver__parse),
		T(test_semver__precedence),
		T(test_semver__ranges),
		T(test_semver__bad_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
