/* SPDX-License-Identifier: MIT */
/*
 * The builtin Service backend: long-running programs that driftless starts
 * in a session of their own, so that they outlive the agent and one-shot
 * `driftless apply` alike; their identity (pid plus the start time from
 * /proc/PID/stat and the boot id), kept in the state database so that a new
 * agent re-adopts them instead of starting them again; stopping with a
 * grace period, then SIGKILL; their output appended to
 * STATE/services/NAME/out.log, capped and rotated. In the agent, the
 * supervisor watches them on one file descriptor: restart policies with
 * exponential backoff, health checks (exec, http, tcp) and log rotation.
 */
#ifndef DL_SUPERVISE_H
#define DL_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/arena.h"
#include "lib/buf.h"

struct db;

enum svc_restart { SVC_ALWAYS, SVC_ON_FAILURE, SVC_NEVER };
enum svc_check { SVC_CHECK_NONE, SVC_CHECK_EXEC, SVC_CHECK_HTTP, SVC_CHECK_TCP };

#define SVC_LOG_MAX_DEFAULT (10u << 20)
#define SVC_LOG_KEEP_DEFAULT 3
#define SVC_RESTART_MAX_MS (5 * 60 * 1000)	/* the backoff never waits longer */
#define SVC_STABLE_MS 10000			/* up this long: the backoff starts over */

/* What a Service runs and how it is looked after (kinds/service.c fills it). */
struct svc_def {
	const char *id;			/* "Service/web" */
	const char *name;		/* its directory: STATE/services/NAME */
	int builtin;			/* 0: systemd runs it; only its health is checked here */
	const char *const *argv;	/* argv[0] an absolute path */
	const char *const *env;		/* "NAME=value", NULL-terminated */
	const char *cwd;
	int set_ids;
	uid_t uid;
	gid_t gid;
	int restart;			/* enum svc_restart */
	int64_t restart_delay_ms;	/* before the first restart; doubles each time */
	int64_t stop_timeout_ms;	/* SIGTERM, then SIGKILL after this */
	uint64_t log_max;		/* out.log is rotated when larger */
	int log_keep;			/* out.log.1 .. out.log.N are kept */
	int check;			/* enum svc_check */
	const char *const *check_argv;	/* SVC_CHECK_EXEC */
	const char *check_target;	/* SVC_CHECK_HTTP: a loopback http:// URL; TCP: HOST:PORT */
	int64_t check_interval_ms, check_timeout_ms;
	int check_retries;		/* failures in a row before it counts as not ready */
};

/* What the state database keeps about a Service (meta "service:ID"). */
struct svc_record {
	const char *id;
	const char *backend;	/* "builtin" or "systemd" */
	int want;		/* 1: running, 0: stopped */
	pid_t pid;		/* 0: not running */
	uint64_t start;		/* its start time: /proc/PID/stat field 22 */
	const char *boot;	/* /proc/sys/kernel/random/boot_id when it started */
	int64_t started_ms;	/* wall clock */
	const char *key;	/* what it runs with: a change restarts it */
	const char *trig;	/* the desired state of its restartOn resources */
	int restarts;		/* restarts by the supervisor since a pass started it */
	const char *last_exit;	/* how it ended last ("exit status 1"), or NULL */
	int ready;		/* health: 1 ready, 0 not ready, -1 not known (or no check) */
	const char *health;	/* what the last check found */
	int64_t checked_ms;
};

/* 0 with out filled (strings in a), 1 when there is no record, -1 on error. */
int svc_record_load(struct db *db, struct arena *a, const char *id, struct svc_record *out);
int svc_record_save(struct db *db, const struct svc_record *r);
int svc_record_del(struct db *db, const char *id);

/* 1 when the recorded process runs: the pid exists in this boot, is not a
 * zombie, and started when the record says (so a reused pid is not it). */
int svc_alive(const struct svc_record *r);

/* STATE/services/NAME/out.log (heap). */
char *svc_log_path(const char *state_dir, const char *name);

/* Start d in a session of its own with stdout and stderr appended to its
 * log, and fill r's pid, start, boot and started_ms (the other fields are
 * left alone). Returns 0 once the program runs, -1 with err_msg(). */
int svc_start(const char *state_dir, const struct svc_def *d, struct svc_record *r);

/* Stop r's process and its group: SIGTERM, then SIGKILL after timeout_ms;
 * reap it when it is our child. Appends what happened to how ("stopped
 * after 12 ms", "killed after the 2000 ms stop timeout"). 0 or -1. */
int svc_stop(const struct svc_record *r, int64_t timeout_ms, struct buf *how);

/* NULL when target suits a health check of type check (SVC_CHECK_HTTP: an
 * http:// URL, SVC_CHECK_TCP: HOST:PORT; loopback addresses only), else
 * why not. */
const char *svc_target_check(int check, const char *target);

/* ---- the agent's supervisor ---- */

struct supervisor;

struct svc_hooks {
	/* a health check changed a service's readiness (ready 1 or 0) */
	void (*health)(void *ctx, const char *id, int ready, const char *detail);
	void *ctx;
};

int supervise_new(struct supervisor **out, const char *state_dir, struct db *db,
		  const struct svc_hooks *hooks);
/* Forget everything; the services keep running (a new agent adopts them). */
void supervise_free(struct supervisor *s);
/* Readable when the supervisor has work: put it on the agent's loop and
 * call supervise_run() then. */
int supervise_fd(const struct supervisor *s);
/* The services of the applied revision (copied): each is looked after as
 * its record in the database says (pid, want); those not in defs are let go. */
void supervise_set(struct supervisor *s, const struct svc_def *defs, size_t n);
/* Reap, restart, check health, rotate logs: whatever is due. */
void supervise_run(struct supervisor *s);

/* Status lines (or, with json, ',"services":[...],"degraded":BOOL') for the
 * Services of the inventory, from their records; reads the database only. */
void svc_render_status(struct db *db, int json, struct buf *out);

#endif
