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
#include <signal.h>
#include <time.h>
#include "cmd/cmd.h"
#include "lib/err.h"
#include "lib/redact.h"
#include "lib/semver.h"
#include "lib/trust.h"
#include "source/git.h"
#include "source/verify.h"
#include "state/db.h"

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
		case 'S': {
			struct semver_range sr;
			if (semver_range_parse(optarg, &sr) < 0) {
				fprintf(stderr, "error: '--semver': %s\nusage: %s\n", err_msg(), usage);
				return EXIT_USAGE;
			}
			o->semver = optarg;
			break;
		}
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
			/* 'H' in allowed: the command also writes csv and html; 'y': yaml */
			if (strcmp(optarg, "text") && strcmp(optarg, "json") &&
			    (!strchr(allowed, 'H') || (strcmp(optarg, "csv") && strcmp(optarg, "html"))) &&
			    (!strchr(allowed, 'y') || strcmp(optarg, "yaml"))) {
				fprintf(stderr, "error: '-o' must be %s, not '%s'\nusage: %s\n",
					strchr(allowed, 'H') ? "json, csv or html" :
					strchr(allowed, 'y') ? "text, json or yaml" : "text or json", optarg, usage);
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

/* ---- sources: credentials, caps, deadline, signatures ---- */

#define SECRET_MAX (64u << 10)

static void trim_end(struct buf *b)
{
	while (b->len && (b->ptr[b->len - 1] == '\n' || b->ptr[b->len - 1] == '\r' ||
			  b->ptr[b->len - 1] == ' ' || b->ptr[b->len - 1] == '\t'))
		b->ptr[--b->len] = '\0';
}

int source_opts_load(struct source_opts *so, const struct config *c, const char *url,
		     struct source_secrets *sec)
{
	const char *pw = c->auth.token_file ? c->auth.token_file : c->auth.password_file;
	struct timespec ts;

	memset(sec, 0, sizeof(*sec));
	so->url = url;
	so->branch = c->branch;
	so->tag = c->tag;
	so->commit = c->commit;
	so->semver = c->semver;
	so->ca_file = c->ca_file;
	so->max_bytes = c->max_fetch_size;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	so->deadline_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + c->fetch_timeout_ms;
	so->username = c->auth.username;
	if (pw) {
		if (trust_file_read(pw, c->auth.token_file ? "source.auth.tokenFile" :
				    "source.auth.passwordFile", TRUST_SECRET, SECRET_MAX,
				    &sec->password) < 0)
			goto fail;
		trim_end(&sec->password);
		if (!sec->password.len) {
			err_set("'%s' is empty", pw);
			goto fail;
		}
		so->password = sec->password.ptr;
	}
	if (c->auth.ssh_key) {
		if (trust_file_read(c->auth.ssh_key, "source.auth.sshKey", TRUST_SECRET, SECRET_MAX,
				    &sec->ssh_key) < 0)
			goto fail;
		if (!strstr(sec->ssh_key.ptr ? sec->ssh_key.ptr : "", "PRIVATE KEY-----")) {
			err_set("'source.auth.sshKey' ('%s') is not a private key in OpenSSH or PEM"
				" format", c->auth.ssh_key);
			goto fail;
		}
		so->ssh_key = sec->ssh_key.ptr;
	}
	if (c->auth.known_hosts) {
		if (trust_file_read(c->auth.known_hosts, "source.auth.knownHosts", TRUST_ANCHOR,
				    SECRET_MAX * 16, &sec->known_hosts) < 0)
			goto fail;
		so->known_hosts = sec->known_hosts.ptr ? sec->known_hosts.ptr : "";
		so->known_hosts_file = c->auth.known_hosts;
	}
	return 0;
fail:
	source_secrets_release(sec);
	return -1;
}

void source_secrets_release(struct source_secrets *sec)
{
	struct buf *v[] = { &sec->password, &sec->ssh_key, &sec->known_hosts };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i]->ptr)
			redact_wipe(v[i]->ptr, v[i]->cap);
		buf_release(v[i]);
	}
}

static char deadline_msg[512];
static size_t deadline_len;

static void on_deadline(int sig)
{
	(void)sig;
	if (write(STDERR_FILENO, deadline_msg, deadline_len) < 0)
		(void)0;
	_exit(EXIT_ERR);
}

void fetch_deadline_arm(const struct config *c, const char *url)
{
	char *safe = gitsrc_redact_url(url);
	int n = snprintf(deadline_msg, sizeof(deadline_msg),
			 "error: fetching from '%s' took longer than the deadline ('source.timeout');"
			 " stopped\n", safe);
	free(safe);
	deadline_len = n > 0 && (size_t)n < sizeof(deadline_msg) ? (size_t)n : 0;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_deadline;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	/* the transfer callbacks stop a fetch that still moves at the deadline;
	 * this is for one that hangs where no callback runs */
	alarm((unsigned)((c->fetch_timeout_ms + 999) / 1000) + 2);
}

void fetch_deadline_disarm(void)
{
	alarm(0);
	signal(SIGALRM, SIG_DFL);
}

int source_verify(struct pass *p, const struct config *c, const char *state, struct db *db)
{
	struct verify_opts v = { .mode = (enum verify_mode)c->verify.mode,
				 .allowed_signers = c->verify.allowed_signers,
				 .gpg_keyring = c->verify.gpg_keyring, .state_dir = state };
	if (v.mode == VERIFY_OFF) {
		p->rev.signature = "not verified (source.verify is off)";
		return 0;
	}
	struct arena tmp;
	arena_init(&tmp);
	const char *applied = db ? db_meta_get(db, "applied_revision", &tmp) : NULL;
	int r = verify_revision(p->git, &v, p->rev.oid, applied);
	arena_release(&tmp);
	p->rev.signature = r ? "refused" : v.mode == VERIFY_STRICT ?
			   "verified (strict: every commit since the last applied one)" :
			   "verified (head)";
	if (r > 0)
		diag_add(&p->diag, NULL, 0, 0, "%s", err_msg());
	return r;
}
