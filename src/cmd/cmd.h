/* SPDX-License-Identifier: MIT */
/* What the commands share: option parsing, configuration, the state directory and its lock. */
#ifndef DL_CMD_H
#define DL_CMD_H

#include "core/config.h"
#include "core/pass.h"

#define EXIT_OK 0
#define EXIT_ERR 1
#define EXIT_CHANGES 2
#define EXIT_USAGE 64

struct opts {
	const char *config;
	const char *repo, *branch, *tag, *semver, *commit, *path;
	const char *root, *state;
	int root_given;
	int dry_run, exit_code, json, n;
	const char *output;
	const char *listen;
	const char *identity;		/* --identity: the host's age identity */
	int64_t for_ms;			/* suspend --for */
	const char *reason, *since, *until, *into;
	int64_t interval_ms;
	const char *positional;
	char **args;			/* 'M': every operand */
	int nargs;
	struct config cfg;
	int lock_fd;
};

/* Parse argv (after the command name); prints usage errors itself and
 * returns EXIT_USAGE, or 0. `allowed` lists the long options the command takes. */
int opts_parse(struct opts *o, int argc, char **argv, const char *usage, const char *allowed);
void opts_release(struct opts *o);
/* Load the config (-c, or /etc/driftless/agent.yaml when present) and merge flags. */
int opts_config(struct opts *o);
/* Apply the command-line overrides of o to a configuration. */
void opts_merge(const struct opts *o, struct config *c);
/* The config file in force: -c, or the default one when it exists, or NULL. */
const char *opts_config_file(const struct opts *o);
/* mkdir -p the state directory and take its lock (flock, non-blocking). */
int state_open(struct opts *o, int lock);

struct source_opts;
/* Credentials and pins read for one fetch; wiped by source_secrets_release. */
struct source_secrets {
	struct buf password, ssh_key, known_hosts;
};
/* Fill so (url, refs, CA, credentials from their files, the size cap and
 * the deadline, counted from now) from c. Prints nothing; -1 with err_msg(). */
int source_opts_load(struct source_opts *so, const struct config *c, const char *url,
		     struct source_secrets *sec);
void source_secrets_release(struct source_secrets *sec);
/* A hard stop for a one-shot fetch that hangs where no callback runs: at
 * the deadline (plus a grace) print why and exit 1. disarm: cancel it. */
void fetch_deadline_arm(const struct config *c, const char *url);
void fetch_deadline_disarm(void);
/* source.verify on p's revision (strict: since the applied revision in db,
 * when db is not NULL). 0 verified or off; 1 refused: a diagnostic is in
 * p->diag; -1 error (err_msg()). */
int source_verify(struct pass *p, const struct config *c, const char *state, struct db *db);

int cmd_apply(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_secret(int argc, char **argv);
int cmd_suspend(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_ack(int argc, char **argv);

/* The user running the command: "alice", or "root (sudo from alice)". */
void invoking_user(char *out, size_t n);
/* Open STATE's database for reading next to a running agent (no lock);
 * prints the error. 0 or EXIT_ERR. */
int state_db_open(struct opts *o, struct db **db);

#endif
