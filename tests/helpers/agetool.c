/* SPDX-License-Identifier: MIT */
/* Test helper: src/lib/age.c on the command line, for t/t0900-age-interop.sh. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lib/age.h"
#include "lib/buf.h"
#include "lib/err.h"

#define AGETOOL_MAX_RECIPIENTS 64

static int usage(void)
{
	fputs("usage: agetool keygen FILE\n"
	      "       agetool recipient FILE\n"
	      "       agetool seal [-a] -r RECIPIENT [-r RECIPIENT...] <in >out\n"
	      "       agetool open -i IDENTITY <in >out\n",
	      stderr);
	return 64;
}

static int fail(void)
{
	fprintf(stderr, "agetool: %s\n", err_msg());
	return 1;
}

/* Read fd to its end, at most max bytes (one more means "too large"). */
static int read_all(int fd, struct buf *b, size_t max)
{
	for (;;) {
		ssize_t n;

		buf_grow(b, 65536);
		n = read(fd, b->ptr + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno("cannot read");
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->ptr[b->len] = '\0';
		if (b->len > max)
			break;
	}
	return 0;
}

/* Read a whole secret file into b without growing (and so copying) it. */
static int read_secret(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return err_set_errno("cannot open '%s'", path);
	buf_grow(b, 1 << 20);
	ret = read_all(fd, b, (1 << 20) - 1);
	close(fd);
	if (!ret && b->len >= (1 << 20) - 1)
		ret = err_set("'%s' is too large for an identity file", path);
	return ret;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return err_set_errno("cannot write");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int cmd_keygen(const char *path)
{
	struct age_identity id;
	struct buf text = BUF_INIT;
	char rcpt[AGE_RECIPIENT_SIZE];
	int fd, ret = 1;

	if (age_identity_generate(&id) || age_identity_format(&id, &text))
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set_errno("cannot create '%s'", path);
		goto out;
	}
	if (write_all(fd, text.ptr, text.len) || fsync(fd)) {
		close(fd);
		goto out;
	}
	if (close(fd)) {
		err_set_errno("cannot write '%s'", path);
		goto out;
	}
	age_recipient_format(id.pk, rcpt);
	printf("%s\n", rcpt);
	ret = 0;
out:
	age_wipe(&id, sizeof(id));
	age_buf_wipe(&text);
	return ret ? fail() : 0;
}

static int cmd_recipient(const char *path)
{
	struct age_identity ids[AGE_MAX_IDENTITIES];
	struct buf text = BUF_INIT;
	char rcpt[AGE_RECIPIENT_SIZE];
	size_t n = 0;
	int ret = 1;

	if (read_secret(path, &text) ||
	    age_identity_parse(ids, AGE_MAX_IDENTITIES, &n, text.ptr, text.len))
		goto out;
	for (size_t i = 0; i < n; i++) {
		age_recipient_format(ids[i].pk, rcpt);
		printf("%s\n", rcpt);
	}
	ret = 0;
out:
	age_wipe(ids, sizeof(ids));
	age_buf_wipe(&text);
	return ret ? fail() : 0;
}

static int cmd_seal(int argc, char **argv)
{
	unsigned char pks[AGETOOL_MAX_RECIPIENTS][32];
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t npk = 0;
	int armor = 0, ret = 1, c;

	while ((c = getopt(argc, argv, "ar:")) != -1) {
		switch (c) {
		case 'a':
			armor = 1;
			break;
		case 'r':
			if (npk == AGETOOL_MAX_RECIPIENTS)
				return usage();
			if (age_recipient_parse(optarg, pks[npk]))
				return fail();
			npk++;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || !npk)
		return usage();
	if (read_all(0, &in, AGE_MAX_INPUT) ||
	    age_encrypt((const unsigned char(*)[32])pks, npk, in.ptr, in.len, armor, &out) ||
	    write_all(1, out.ptr, out.len))
		goto out;
	ret = 0;
out:
	age_buf_wipe(&in);
	buf_release(&out);
	return ret ? fail() : 0;
}

static int cmd_open(int argc, char **argv)
{
	struct age_identity ids[AGE_MAX_IDENTITIES];
	struct buf key = BUF_INIT, in = BUF_INIT, out = BUF_INIT;
	const char *idpath = NULL;
	size_t nid = 0;
	int ret = 1, c;

	while ((c = getopt(argc, argv, "i:")) != -1) {
		if (c != 'i')
			return usage();
		idpath = optarg;
	}
	if (optind != argc || !idpath)
		return usage();
	if (read_secret(idpath, &key) ||
	    age_identity_parse(ids, AGE_MAX_IDENTITIES, &nid, key.ptr, key.len) ||
	    read_all(0, &in, AGE_MAX_INPUT) ||
	    age_decrypt(ids, nid, in.ptr ? in.ptr : "", in.len, &out) ||
	    write_all(1, out.ptr, out.len))
		goto out;
	ret = 0;
out:
	age_wipe(ids, sizeof(ids));
	age_buf_wipe(&key);
	buf_release(&in);
	age_buf_wipe(&out);
	return ret ? fail() : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "keygen") && argc == 3)
		return cmd_keygen(argv[2]);
	if (!strcmp(argv[1], "recipient") && argc == 3)
		return cmd_recipient(argv[2]);
	if (!strcmp(argv[1], "seal"))
		return cmd_seal(argc - 1, argv + 1);
	if (!strcmp(argv[1], "open"))
		return cmd_open(argc - 1, argv + 1);
	return usage();
}
