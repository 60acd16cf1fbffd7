/* SPDX-License-Identifier: MIT */
/* Credentials and trust anchors from local files: owner and mode are checked on the open
 * descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/err.h"
#include "lib/redact.h"
#include "lib/trust.h"

int trust_file_read(const char *path, const char *what, enum trust_kind kind, size_t max,
		    struct buf *out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set_errno("cannot read '%s' ('%s')", what, path);
	if (fstat(fd, &st) < 0) {
		err_set_errno("cannot read '%s' ('%s')", what, path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("'%s' ('%s') is not a regular file", what, path);
		goto fail;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		err_set("'%s' ('%s') must be owned by root, not uid %u", what, path,
			(unsigned)st.st_uid);
		goto fail;
	}
	if (kind == TRUST_SECRET && (st.st_mode & 077)) {
		err_set("'%s' ('%s') must not be accessible to group or others (mode %04o); chmod "
			"0600 it",
			what, path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (kind == TRUST_ANCHOR && (st.st_mode & 022)) {
		err_set("'%s' ('%s') must not be writable by group or others (mode %04o)", what,
			path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		err_set("'%s' ('%s') is larger than %zu bytes", what, path, max);
		goto fail;
	}
	size_t start = out->len;
	char tmp[4096];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set_errno("cannot read '%s' ('%s')", what, path);
			goto fail;
		}
		if (n == 0)
			break;
		if (out->len - start + (size_t)n > max) {
			err_set("'%s' ('%s') is larger than %zu bytes", what, path, max);
			goto fail;
		}
		buf_add(out, tmp, (size_t)n);
	}
	redact_wipe(tmp, sizeof(tmp));
	close(fd);
	if (kind == TRUST_SECRET)
		redact_add(out->ptr + start, out->len - start);
	return 0;
fail:
	close(fd);
	return -1;
}
