/* SPDX-License-Identifier: MIT */
/* The ack command: an operator settles the unknown outcome of an Exec whose run was interrupted. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd/cmd.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "state/db.h"

#define ACK_USAGE "driftless ack [--state DIR] [--rerun] Exec/NAME"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_ack(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct arena a;
	char by[160];
	int rerun = 0;
	arena_init(&a);
	/* --rerun is this command's own option: take it out before the common parser */
	char **args = xcalloc((size_t)argc + 1, sizeof(*args));
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && !strcmp(argv[i], "--rerun"))
			rerun = 1;
		else
			args[n++] = argv[i];
	}
	int ret = opts_parse(&o, n, args, ACK_USAGE, "csPh");
	if (ret)
		goto out;
	ret = EXIT_USAGE;
	if (!o.positional || strncmp(o.positional, "Exec/", 5) || !o.positional[5]) {
		fprintf(stderr, "error: name the Exec, like 'Exec/migrate'\nusage: %s\n", ACK_USAGE);
		goto out;
	}
	if ((ret = state_db_open(&o, &db)))
		goto out;
	ret = EXIT_ERR;
	char *started = NULL;
	if (db_begin(db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	int r = exec_ack(db, o.positional, rerun, &started);
	if (r != 0) {
		db_rollback(db);
		if (r > 0)
			fprintf(stderr, "error: %s has no run with an unknown outcome\n", o.positional);
		else
			fprintf(stderr, "error: %s\n", err_msg());
		free(started);
		goto out;
	}
	invoking_user(by, sizeof(by));
	char *summary = xasprintf("%s: the run started at %s %s", o.positional, started,
				  rerun ? "is to run again" : "counts as done");
	struct pass_record rec = {
		.started_ms = now_ms(), .finished_ms = now_ms(), .command = "ack",
		.commit = db_meta_get(db, "applied_revision", &a), .ref = "", .author = by,
		.summary = summary, .result = rerun ? "rerun" : "acknowledged",
	};
	int ok = db_pass_add(db, &rec) == 0 &&
		 db_outcome_add(db, rec.id, o.positional, "unchanged",
				rerun ? "outcome unknown: acknowledged, to run again on the next pass" :
					"outcome unknown: acknowledged as done") == 0 &&
		 db_commit(db) == 0;
	free(summary);
	if (!ok) {
		fprintf(stderr, "error: %s\n", err_msg());
		db_rollback(db);
		free(started);
		goto out;
	}
	printf("%s: the run started at %s %s\n", o.positional, started,
	       rerun ? "runs again on the next pass" : "counts as done");
	free(started);
	/* a running agent makes a full pass now (SIGHUP: reload, then a full pass) */
	char *pid = db_meta_get(db, "agent_pid", &a);
	if (pid && kill((pid_t)atoi(pid), SIGHUP) == 0)
		fprintf(stderr, "told the running agent (pid %s)\n", pid);
	ret = EXIT_OK;
out:
	db_close(db);
	arena_release(&a);
	opts_release(&o);
	free(args);
	return ret;
}
