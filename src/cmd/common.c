/* SPDX-License-Identifier: MIT */
/* Option parsing, configuration merge and the state directory lock shared by the commands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "lib/err.h"

#define DEFAULT_CONFIG "/etc/driftless/agent.yaml"
#define DEFAULT_STATE "/var/lib/driftless"

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "repo", required_argument, NULL, 'r' },
	{ "branch", required_argument, NULL, 'b' },
	{ "tag", required_argument, NULL, 't' },
	{ "semver", required_argument, NULL, 'S' },
	{ "commit", required_argument, NULL, 'C' },
	{ "path", required_argument, NULL, 'p' },
	{ "root", required_argument, NULL, 'R' },
	{ "state", required_argument, NULL, 's' },
	{ "dry-run", no_argument, NULL, 'd' },
	{ "exit-code", no_argument, NULL, 'e' },
	{ "output", required_argument, NULL, 'o' },
	{ "interval", required_argument, NULL, 'I' },
	{ "listen", required_argument, NULL, 'L' },
	{ "identity", required_argument, NULL, 'i' },
	{ "for", required_argument, NULL, 'F' },
	{ "reason", required_argument, NULL, 'W' },
	{ "since", required_argument, NULL, 'Y' },
	{ "until", required_argument, NULL, 'U' },
	{ "into", required_argument, NULL, 'T' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int opts_parse(struct opts *o, int argc, char **argv, const char *usage, const char *allowed)
{
	int c;
	memset(o, 0, sizeof(*o));
	config_init(&o->cfg);
	o->lock_fd = -1;
	o->n = 20;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:o:n:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: %s\n", usage);
			exit(EXIT_OK);
		}
		if (c == '?' || c == ':' || !strchr(allowed, c)) {
			const char *arg = argv[optind - 1];
			if (c == '?' && optopt)
				fprintf(stderr, "error: option '-%c' is not valid here or needs a value\n", optopt);
			else
				fprintf(stderr, "error: option '%s' is not valid here or needs a value\n", arg);
			fprintf(stderr, "usage: %s\n", usage);
			return EXIT_USAGE;
		}
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'r': o->repo = optarg; break;
		case 'b': o->branch = optarg; break;
		case 't': o->tag = optarg; break;
		case 'S': o->semver = optarg; break;
		case 'C': o->commit = optarg; break;
		case 'p': o->path = optarg; break;
		case 'R': o->root = optarg; o->root_given = 1; break;
		case 's': o->state = optarg; break;
		case 'd': o->dry_run = 1; break;
		case 'e': o->exit_code = 1; break;
		case 'L': o->listen = optarg; break;
		case 'i': o->identity = optarg; break;
		case 'W': o->reason = optarg; break;
		case 'Y': o->since = optarg; break;
		case 'U': o->until = optarg; break;
		case 'T': o->into = optarg; break;
		case 'F':
			o->for_ms = config_duration(optarg);
			if (o->for_ms <= 0) {
				fprintf(stderr, "error: '--for' must be a duration like 30m or 2h\nusage: %s\n", usage);
				return EXIT_USAGE;
			}
			break;
		case 'I':
			o->interval_ms = config_duration(optarg);
			if (o->interval_ms <= 0) {
				fprintf(stderr, "error: '--interval' must be a duration like 60s or 5m\nusage: %s\n", usage);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			/* 'H' in allowed: the command also writes csv and html */
			if (strcmp(optarg, "text") && strcmp(optarg, "json") &&
			    (!strchr(allowed, 'H') || (strcmp(optarg, "csv") && strcmp(optarg, "html")))) {
				fprintf(stderr, "error: '-o' must be %s, not '%s'\nusage: %s\n",
					strchr(allowed, 'H') ? "json, csv or html" : "text or json", optarg, usage);
				return EXIT_USAGE;
			}
			o->json = !strcmp(optarg, "json");
			o->output = optarg;
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 1000000) {
				fprintf(stderr, "error: '-n' must be a positive number\nusage: %s\n", usage);
				return EXIT_USAGE;
			}
			o->n = (int)v;
			break;
		}
		}
	}
	if (optind < argc && strchr(allowed, 'M')) {
		o->args = argv + optind;
		o->nargs = argc - optind;
	} else if (optind < argc) {
		if (!strchr(allowed, 'P') || optind + 1 < argc) {
			fprintf(stderr, "error: unexpected argument '%s'\nusage: %s\n", argv[optind], usage);
			return EXIT_USAGE;
		}
		o->positional = argv[optind];
	}
	int refs = !!o->branch + !!o->tag + !!o->semver + !!o->commit;
	if (refs > 1) {
		fprintf(stderr, "error: give at most one of '--branch', '--tag', '--semver' and '--commit'\nusage: %s\n", usage);
		return EXIT_USAGE;
	}
	return 0;
}

void opts_release(struct opts *o)
{
	if (o->lock_fd >= 0)
		close(o->lock_fd);
	config_release(&o->cfg);
}

void opts_merge(const struct opts *o, struct config *c)
{
	/* flags override the file; a ref flag replaces every ref from the file */
	if (o->repo)
		c->url = o->repo;
	if (o->branch || o->tag || o->semver || o->commit) {
		c->branch = o->branch;
		c->tag = o->tag;
		c->semver = o->semver;
		c->commit = o->commit;
	}
	if (o->path)
		c->path = o->path;
	if (o->interval_ms > 0)
		c->interval_ms = o->interval_ms;
	if (o->listen)
		c->listen = o->listen;
	if (o->identity)
		c->identity = o->identity;
}

const char *opts_config_file(const struct opts *o)
{
	if (o->config)
		return o->config;
	return access(DEFAULT_CONFIG, F_OK) == 0 ? DEFAULT_CONFIG : NULL;
}

int opts_config(struct opts *o)
{
	const char *file = opts_config_file(o);
	struct diag d;
	if (file) {
		diag_init(&d);
		if (config_load(&o->cfg, file, &d) < 0) {
			if (d.n)
				diag_print(&d, stderr);
			else
				fprintf(stderr, "error: %s\n", err_msg());
			diag_release(&d);
			return -1;
		}
		diag_release(&d);
	}
	opts_merge(o, &o->cfg);
	if (!o->root)
		o->root = "/";
	if (!o->state)
		o->state = DEFAULT_STATE;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *tmp = xstrdup(path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			err_set_errno("cannot create '%s'", tmp);
			free(tmp);
			return -1;
		}
		*p = '/';
	}
	free(tmp);
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return err_set_errno("cannot create state directory '%s'", path);
	return 0;
}

int state_open(struct opts *o, int lock)
{
	if (mkdir_p(o->state, 0700) < 0)
		return -1;
	if (!lock)
		return 0;
	char *path = xasprintf("%s/lock", o->state);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set_errno("cannot open lock '%s'", path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		err_set("another driftless (pid %s) holds '%s'", *pid ? pid : "?", path);
		close(fd);
		free(path);
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) < 0)
		(void)0;
	free(path);
	o->lock_fd = fd;
	return 0;
}
