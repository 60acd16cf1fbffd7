/* SPDX-License-Identifier: MIT */
/* The status, history and version commands: read the state database, never the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "lib/err.h"
#include "source/git.h"
#include "state/db.h"

#define STATUS_USAGE "driftless status [--state DIR] [-o text|json]"
#define HISTORY_USAGE "driftless history [--state DIR] [-n N] [-o text|json]"

static int open_db(struct opts *o, struct db **db)
{
	if (opts_config(o) < 0)
		return EXIT_ERR;
	char *path = xasprintf("%s/driftless.db", o->state);
	int exists = access(path, F_OK) == 0;
	free(path);
	if (!exists) {
		fprintf(stderr, "error: no state in '%s': nothing has been applied yet\n", o->state);
		return EXIT_ERR;
	}
	if (db_open(db, o->state) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct buf b = BUF_INIT;
	int ret = opts_parse(&o, argc, argv, STATUS_USAGE, "csoh");
	if (ret || (ret = open_db(&o, &db)))
		goto out;
	render_status(db, o.json, &b);
	fputs(b.ptr ? b.ptr : "", stdout);
out:
	buf_release(&b);
	db_close(db);
	opts_release(&o);
	return ret;
}

int cmd_history(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct buf b = BUF_INIT;
	int ret = opts_parse(&o, argc, argv, HISTORY_USAGE, "csonh");
	if (ret || (ret = open_db(&o, &db)))
		goto out;
	if (render_history(db, o.n, o.json, &b) < 0) {
		if (!o.json)
			fputs(b.ptr ? b.ptr : "", stdout);
		fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
	} else {
		fputs(b.ptr ? b.ptr : "", stdout);
	}
out:
	buf_release(&b);
	db_close(db);
	opts_release(&o);
	return ret;
}

int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: driftless version\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "error: unexpected argument '%s'\nusage: driftless version\n", argv[1]);
		return EXIT_USAGE;
	}
	printf("driftless %s (libgit2 %s)\n", DRIFTLESS_VERSION, gitsrc_version());
	return EXIT_OK;
}
