/* SPDX-License-Identifier: MIT */
/* Unit tests for the redactor: registered values, their lines, URL userinfo, and the sinks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/diag.h"
#include "lib/err.h"
#include "lib/redact.h"

static char *redacted(const char *s)
{
	struct buf b = BUF_INIT;
	redact_buf(&b, s, strlen(s));
	return buf_detach(&b);
}

static int teardown(void **state)
{
	(void)state;
	redact_clear();
	return 0;
}

static void test_redact__nothing_registered(void **state)
{
	(void)state;
	char *s = redacted("plain text, nothing to hide");
	assert_string_equal(s, "plain text, nothing to hide");
	free(s);
	assert_int_equal(redact_count(), 0);
}

static void test_redact__value_and_tag(void **state)
{
	char tag[REDACT_TAG_MAX];
	(void)state;
	redact_add("hunter2-password\n", 17);
	redact_tag("hunter2-password\n", 17, tag);
	assert_int_equal(strlen(tag), strlen("<redacted sha256:") + 12 + 1);
	char *s = redacted("error: got hunter2-password where 'x' was expected");
	assert_null(strstr(s, "hunter2"));
	assert_non_null(strstr(s, tag));
	free(s);
}

static void test_redact__lines_of_a_multiline_secret(void **state)
{
	(void)state;
	const char *pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----\n";
	redact_add(pem, strlen(pem));
	char *s = redacted("line 2 was MIIEvQIBADANBgkqhkiG9w0B, line 3 AQEFAASCBKcwggSjAgEAAoIB.");
	assert_null(strstr(s, "MIIEvQ"));
	assert_null(strstr(s, "AQEFAA"));
	free(s);
	/* the whole value beats its lines */
	s = redacted(pem);
	assert_int_equal(strncmp(s, "<redacted sha256:", 17), 0);
	assert_int_equal(strlen(s), strlen("<redacted sha256:") + 12 + 1);
	free(s);
}

static void test_redact__short_values_are_not_searched(void **state)
{
	(void)state;
	redact_add("ab", 2);
	assert_int_equal(redact_count(), 0);
	char *s = redacted("abab");
	assert_string_equal(s, "abab");
	free(s);
}

static void test_redact__url_userinfo(void **state)
{
	(void)state;
	char *s = redacted("cannot reach 'https://user:ghp_TOKEN@git.example/repo.git': 401");
	assert_string_equal(s, "cannot reach 'https://git.example/repo.git': 401");
	free(s);
	s = redacted("ssh://git@host:22/x and http://a.b/c@d");
	assert_string_equal(s, "ssh://host:22/x and http://a.b/c@d");
	free(s);
}

static void test_redact__sinks(void **state)
{
	(void)state;
	redact_add("s3cr3t-canary", 13);
	err_set("cannot parse '%s' near line 3", "s3cr3t-canary");
	assert_null(strstr(err_msg(), "s3cr3t"));
	err_wrap("while reading %s", "x");
	assert_null(strstr(err_msg(), "s3cr3t"));
	struct diag d;
	diag_init(&d);
	diag_add(&d, "f.yaml", 1, 2, "value '%s' is wrong", "s3cr3t-canary");
	assert_null(strstr(d.v[0].msg, "s3cr3t"));
	assert_non_null(strstr(d.v[0].msg, "<redacted sha256:"));
	diag_release(&d);
}

static void test_redact__inplace_truncates(void **state)
{
	(void)state;
	redact_add("abcd", 4);
	char s[16] = "abcdabcd";
	redact_inplace(s, sizeof(s));
	assert_int_equal(strlen(s), 15);
	assert_null(strstr(s, "abcd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_redact__nothing_registered, teardown),
		cmocka_unit_test_teardown(test_redact__value_and_tag, teardown),
		cmocka_unit_test_teardown(test_redact__lines_of_a_multiline_secret, teardown),
		cmocka_unit_test_teardown(test_redact__short_values_are_not_searched, teardown),
		cmocka_unit_test_teardown(test_redact__url_userinfo, teardown),
		cmocka_unit_test_teardown(test_redact__sinks, teardown),
		cmocka_unit_test_teardown(test_redact__inplace_truncates, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
