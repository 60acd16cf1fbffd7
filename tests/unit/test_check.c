/* SPDX-License-Identifier: MIT */
/* Unit tests for identifier and path hygiene (core/check.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "core/check.h"

static struct arena a;

static const char *host(const char *s, const char **out)
{
	return check_host_path(&a, s, strlen(s), out);
}

static void test_check__host_path_normalised(void **state)
{
	const char *out;
	(void)state;
	assert_null(host("/etc//motd", &out));
	assert_string_equal(out, "/etc/motd");
	assert_null(host("/etc/./motd/", &out));
	assert_string_equal(out, "/etc/motd");
	assert_null(host("/", &out));
	assert_string_equal(out, "/");
}

static void test_check__host_path_rejects(void **state)
{
	const char *out;
	(void)state;
	assert_non_null(host("../../etc/shadow", &out));
	assert_non_null(host("/srv/app/../../etc/cron.d/x", &out));
	assert_non_null(host("etc/motd", &out));
	assert_non_null(host("/etc/motd\r", &out));
	assert_non_null(host("/etc/sudoers.d/\xe2\x80\x8bops", &out));	/* U+200B */
	assert_non_null(host("/etc/cafe\xcc\x81", &out));			/* combining acute */
	assert_non_null(host("/etc/\xff", &out));				/* invalid UTF-8 */
	assert_non_null(check_host_path(&a, "/etc/app.conf\0.bak", 18, &out));
	assert_null(host("/etc/caf\xc3\xa9", &out));				/* NFC é is fine */
}

static void test_check__repo_path(void **state)
{
	const char *out;
	(void)state;
	assert_null(check_repo_path(&a, "hosts/web", "files/motd", 10, &out));
	assert_string_equal(out, "hosts/web/files/motd");
	assert_null(check_repo_path(&a, "hosts/web", "../../base/x", 12, &out));
	assert_string_equal(out, "base/x");
	assert_non_null(check_repo_path(&a, "hosts/web", "../../../x", 10, &out));
	assert_non_null(check_repo_path(&a, "", "/etc/shadow", 11, &out));
	assert_non_null(check_repo_path(&a, "a", "..", 2, &out));
}

static void test_check__names(void **state)
{
	(void)state;
	assert_null(check_name("motd"));
	assert_null(check_name("web-01.conf"));
	assert_non_null(check_name("Motd"));
	assert_non_null(check_name("-motd"));
	assert_non_null(check_name("motd-"));
	assert_non_null(check_name(""));
	assert_null(check_account("root"));
	assert_null(check_account("www-data"));
	assert_null(check_account("0"));
	assert_non_null(check_account("-o"));
	assert_non_null(check_account("deploy\n"));
	assert_non_null(check_account("r\xd0\xbe\xd0\xbet"));	/* Cyrillic o */
}

static void test_check__accounts_and_packages(void **state)
{
	unsigned long id = 7;
	(void)state;
	assert_null(check_account_name("svc_app"));
	assert_null(check_account_name("machine$"));
	assert_non_null(check_account_name("1000"));
	assert_non_null(check_account_name("-oNonUnique"));
	assert_non_null(check_account_name("a:b"));
	assert_non_null(check_account_name("a,b"));
	assert_non_null(check_account_name("a b"));
	assert_null(check_numeric_id("0", &id));
	assert_int_equal(id, 0);
	assert_null(check_numeric_id("4294967294", &id));
	assert_non_null(check_numeric_id("4294967295", &id));
	assert_non_null(check_numeric_id("-1", &id));
	assert_non_null(check_numeric_id("01", &id));
	assert_non_null(check_numeric_id("", &id));
	assert_null(check_package_name("libstdc++6"));
	assert_null(check_package_name("0ad"));
	assert_non_null(check_package_name("--allow-unauthenticated"));
	assert_non_null(check_package_name("Foo"));
	assert_non_null(check_package_name("a"));
	assert_non_null(check_package_name("nginx:amd64"));
	assert_null(check_package_version("1.0"));
	assert_null(check_package_version("1:2.3~rc1+dfsg-4"));
	assert_non_null(check_package_version("-1"));
	assert_non_null(check_package_version("v1"));
	assert_non_null(check_package_version("1:"));
	assert_non_null(check_package_version("a:1"));
	assert_non_null(check_package_version("1.0 x"));
	assert_non_null(check_package_version("1.0-"));
}

static void test_check__mode(void **state)
{
	unsigned m;
	(void)state;
	assert_null(check_mode("0644", &m));
	assert_int_equal(m, 0644);
	assert_null(check_mode("644", &m));
	assert_int_equal(m, 0644);
	assert_null(check_mode("4755", &m));
	assert_int_equal(m, 04755);
	assert_null(check_mode("07777", &m));
	assert_int_equal(m, 07777);
	assert_non_null(check_mode("0o644", &m));
	assert_non_null(check_mode("0648", &m));
	assert_non_null(check_mode("64", &m));
	assert_non_null(check_mode("17777", &m));
}

static void test_check__under(void **state)
{
	(void)state;
	assert_true(path_under("/etc/app/x", "/etc/app"));
	assert_true(path_under("/etc/app", "/etc/app"));
	assert_false(path_under("/etc/application", "/etc/app"));
	assert_true(path_under("/anything", "/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check__host_path_normalised),
		cmocka_unit_test(test_check__host_path_rejects),
		cmocka_unit_test(test_check__repo_path),
		cmocka_unit_test(test_check__names),
		cmocka_unit_test(test_check__accounts_and_packages),
		cmocka_unit_test(test_check__mode),
		cmocka_unit_test(test_check__under),
	};
	arena_init(&a);
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	arena_release(&a);
	return r;
}
