/* SPDX-License-Identifier: MIT */
/*
 * driftless secret keygen | recipient | seal: everything a host and a
 * repository author need for Secrets, with no other tool installed.
 * keygen writes this host's age identity (0600, refusing to overwrite one);
 * recipient prints its public key again; seal encrypts a file or stdin for
 * one or more recipients, armored by default so it fits in a manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "lib/age.h"
#include "lib/err.h"

#define SECRET_USAGE \
	"driftless secret keygen [--identity FILE] | recipient [--identity FILE] | " \
	"seal -r RECIPIENT... [--binary] [FILE]"
#define SEAL_MAX_RECIPIENTS 64

static int read_fd(int fd, size_t max, struct buf *out, const char *what)
{
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno("cannot read %s", what);
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			age_wipe(tmp, sizeof(tmp));
			return err_set("%s is larger than %zu bytes", what, max);
		}
		buf_add(out, tmp, (size_t)n);
	}
	age_wipe(tmp, sizeof(tmp));
	return 0;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len) {
		ssize_t n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static int mkdir_parent(const char *file)
{
	char *dir = xstrdup(file);
	char *slash = strrchr(dir, '/');
	int ret = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *s = dir + 1; ; s++) {
			if (*s == '/' || !*s) {
				char c = *s;
				*s = '\0';
				if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
					ret = err_set_errno("cannot create directory '%s'", dir);
					break;
				}
				*s = c;
				if (!c)
					break;
			}
		}
	}
	free(dir);
	return ret;
}

static int keygen(const char *file)
{
	struct age_identity id;
	struct buf b = BUF_INIT;
	char rcpt[AGE_RECIPIENT_SIZE];
	int fd = -1, ret = EXIT_ERR;

	if (mkdir_parent(file) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	/* never replace a host's key by accident: rotation is a deliberate rm */
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			fprintf(stderr, "error: the identity '%s' already exists; 'driftless secret "
				"recipient' prints its recipient (remove it first to make a new one)\n", file);
		else
			fprintf(stderr, "error: cannot create '%s': %s\n", file, strerror(errno));
		return EXIT_ERR;
	}
	if (age_identity_generate(&id) < 0 || age_identity_format(&id, &b) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto fail;
	}
	if (fchmod(fd, 0600) < 0 || write_all(fd, b.ptr, b.len) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "error: cannot write '%s': %s\n", file, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "error: cannot write '%s': %s\n", file, strerror(errno));
		goto fail;
	}
	fd = -1;
	age_recipient_format(id.pk, rcpt);
	fprintf(stderr, "wrote the identity of this host to '%s' (mode 0600)\n", file);
	printf("%s\n", rcpt);
	ret = EXIT_OK;
	goto out;
fail:
	unlink(file);
out:
	if (fd >= 0)
		close(fd);
	age_wipe(&id, sizeof(id));
	age_buf_wipe(&b);
	return ret;
}

static int recipient(const char *file)
{
	struct age_identity ids[AGE_MAX_IDENTITIES];
	struct buf b = BUF_INIT;
	size_t n = 0;
	int fd, ret = EXIT_ERR;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "error: cannot read the identity '%s': %s\n", file, strerror(errno));
		return EXIT_ERR;
	}
	if (read_fd(fd, 64u << 10, &b, "the identity") < 0 ||
	    age_identity_parse(ids, AGE_MAX_IDENTITIES, &n, b.ptr ? b.ptr : "", b.len) < 0) {
		fprintf(stderr, "error: '%s': %s\n", file, err_msg());
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char rcpt[AGE_RECIPIENT_SIZE];
		age_recipient_format(ids[i].pk, rcpt);
		printf("%s\n", rcpt);
	}
	ret = EXIT_OK;
out:
	close(fd);
	age_wipe(ids, sizeof(ids));
	age_buf_wipe(&b);
	return ret;
}

static int seal(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recipient", required_argument, NULL, 'r' },
		{ "binary", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned char (*pks)[32] = xcalloc(SEAL_MAX_RECIPIENTS, 32);
	size_t npk = 0;
	int armor = 1, c, ret = EXIT_USAGE, fd = 0;
	struct buf in = BUF_INIT, out = BUF_INIT;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "r:bh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (npk == SEAL_MAX_RECIPIENTS) {
				fprintf(stderr, "error: at most %d recipients\n", SEAL_MAX_RECIPIENTS);
				goto out;
			}
			if (age_recipient_parse(optarg, pks[npk]) < 0) {
				fprintf(stderr, "error: '%s' is not an age recipient (age1...): %s\n",
					optarg, err_msg());
				goto out;
			}
			npk++;
			break;
		case 'b':
			armor = 0;
			break;
		case 'h':
			printf("usage: %s\n", SECRET_USAGE);
			ret = EXIT_OK;
			goto out;
		default:
			fprintf(stderr, "error: option '%s' is not valid here or needs a value\nusage: %s\n",
				argv[optind - 1], SECRET_USAGE);
			goto out;
		}
	}
	if (!npk || argc - optind > 1) {
		fprintf(stderr, "error: give one or more '-r RECIPIENT' and at most one FILE\nusage: %s\n",
			SECRET_USAGE);
		goto out;
	}
	ret = EXIT_ERR;
	const char *file = optind < argc ? argv[optind] : NULL;
	if (file && (fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		fprintf(stderr, "error: cannot read '%s': %s\n", file, strerror(errno));
		fd = 0;
		goto out;
	}
	if (read_fd(fd, AGE_MAX_INPUT - (1u << 20), &in, file ? "the file" : "standard input") < 0 ||
	    age_encrypt((const unsigned char (*)[32])pks, npk, in.ptr ? in.ptr : "", in.len, armor,
			&out) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	if (write_all(1, out.ptr, out.len) < 0) {
		fprintf(stderr, "error: cannot write the sealed secret: %s\n", strerror(errno));
		goto out;
	}
	ret = EXIT_OK;
out:
	if (fd > 0)
		close(fd);
	age_buf_wipe(&in);
	buf_release(&out);
	free(pks);
	return ret;
}

static const char *identity_opt(int argc, char **argv, int *bad)
{
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *cfgfile = NULL;
	int c;
	optind = 1;
	opterr = 0;
	*bad = 0;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		if (c == 'i') {
			id = optarg;
		} else if (c == 'c') {
			cfgfile = optarg;
		} else if (c == 'h') {
			printf("usage: %s\n", SECRET_USAGE);
			*bad = -1;
			return NULL;
		} else {
			fprintf(stderr, "error: option '%s' is not valid here or needs a value\nusage: %s\n",
				argv[optind - 1], SECRET_USAGE);
			*bad = 1;
			return NULL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s'\nusage: %s\n", argv[optind], SECRET_USAGE);
		*bad = 1;
		return NULL;
	}
	if (id)
		return id;
	/* secrets.identity of the config, when there is one */
	static struct config cfg;
	struct opts o;
	memset(&o, 0, sizeof(o));
	o.config = cfgfile;
	if (opts_config_file(&o)) {
		struct diag d;
		diag_init(&d);
		config_init(&cfg);
		if (config_load(&cfg, opts_config_file(&o), &d) < 0) {
			if (d.n)
				diag_print(&d, stderr);
			else
				fprintf(stderr, "error: %s\n", err_msg());
			diag_release(&d);
			*bad = 2;
			return NULL;
		}
		diag_release(&d);
		if (cfg.identity)
			return cfg.identity;
	}
	return DEFAULT_IDENTITY;
}

int cmd_secret(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s\n", SECRET_USAGE);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		printf("usage: %s\n", SECRET_USAGE);
		return EXIT_OK;
	}
	if (!strcmp(sub, "seal"))
		return seal(argc - 1, argv + 1);
	if (strcmp(sub, "keygen") && strcmp(sub, "recipient")) {
		fprintf(stderr, "error: unknown secret command '%s'\nusage: %s\n", sub, SECRET_USAGE);
		return EXIT_USAGE;
	}
	int bad;
	const char *file = identity_opt(argc - 1, argv + 1, &bad);
	if (bad)
		return bad < 0 ? EXIT_OK : bad == 2 ? EXIT_ERR : EXIT_USAGE;
	return !strcmp(sub, "keygen") ? keygen(file) : recipient(file);
}
