/* SPDX-License-Identifier: MIT */
/* libFuzzer target: every identifier and path check on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/check.h"
#include "lib/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	const char *out;
	unsigned mode;
	char *s = xstrndup((const char *)data, size);	/* stops at a NUL, like C strings do */
	arena_init(&a);
	check_text(&a, (const char *)data, size);
	if (!check_host_path(&a, (const char *)data, size, &out)) {
		/* a normalised path is a fixed point and never holds ".." */
		const char *again;
		if (check_host_path(&a, out, strlen(out), &again) || strcmp(out, again) ||
		    strstr(out, "/../") || strstr(out, "//"))
			__builtin_trap();
	}
	if (!check_repo_path(&a, "hosts/web", (const char *)data, size, &out) &&
	    (out[0] == '/' || !strncmp(out, "../", 3) || strstr(out, "/../")))
		__builtin_trap();
	check_name(s);
	check_account(s);
	check_mode(s, &mode);
	check_git_path(s);
	check_git_name(s);
	path_under(s, "/etc/app");
	arena_release(&a);
	free(s);
	return 0;
}
