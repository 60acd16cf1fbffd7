/* SPDX-License-Identifier: MIT */
/*
 * The one place that starts programs. A program is an argv array whose first
 * element is an absolute path: it is passed to execve as it is, never to a
 * shell and never looked up in PATH. The child gets exactly the environment
 * it is given, stdin from /dev/null, no other inherited file descriptor, the
 * default signal mask and dispositions, umask 022, its own process group,
 * and optionally another uid/gid and working directory. Its output is
 * captured into bounded buffers and redacted (lib/redact.h) before the
 * caller sees it, so any sink it reaches is already clean.
 */
#ifndef DL_PROC_H
#define DL_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/buf.h"

/* Capture limit per stream when proc_opts.out_max is 0. */
#define PROC_OUT_MAX (64u << 10)
/* SIGTERM -> SIGKILL grace period when proc_opts.grace_ms is 0. */
#define PROC_GRACE_MS 5000

/* PATH=/usr/sbin:/usr/bin:/sbin:/bin and LC_ALL=C: a starting point for
 * callers that need a PATH for the program's own children. */
extern const char *const proc_default_env[];

struct proc_opts {
	const char *const *argv;	/* NULL-terminated; argv[0] an absolute path */
	const char *const *env;		/* NULL-terminated "NAME=value"; NULL: empty */
	const char *cwd;		/* working directory; NULL: "/" */
	int set_ids;			/* 1: run as uid/gid, supplementary groups below */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;		/* supplementary groups with set_ids (may be NULL) */
	size_t ngroups;
	int64_t timeout_ms;		/* > 0: SIGTERM the group after this, then SIGKILL */
	int64_t grace_ms;		/* between SIGTERM and SIGKILL; 0: PROC_GRACE_MS */
	size_t out_max;			/* bytes kept per stream; 0: PROC_OUT_MAX */
	int merge_stderr;		/* 1: stderr goes into out, interleaved as written */
	int new_session;		/* 1: setsid() instead of a process group: a daemon
					 * that outlives us (proc_spawn of a Service) */
};

struct proc_result {
	int exited;		/* 1: exited normally with status */
	int status;		/* exit status when exited */
	int signal;		/* the terminating signal when it did not exit */
	int timed_out;		/* 1: the timeout expired and the group was killed */
	struct buf out;		/* stdout (and stderr with merge_stderr), redacted */
	struct buf err;		/* stderr, redacted */
	size_t out_dropped;	/* bytes left out of the middle of out */
	size_t err_dropped;
	int64_t ms;		/* wall time */
};

/* A program started by proc_spawn and not waited for. */
struct proc_child {
	pid_t pid;	/* also its process group id: kill(-pid, sig) reaches the group */
	int pidfd;	/* pollable, readable when it exits; -1 without pidfd_open */
};

/*
 * Start the program as proc_run() would, but with its stdout on out_fd and
 * its stderr on err_fd (-1: /dev/null; with merge_stderr, both on out_fd)
 * and without waiting: for supervisors (the Service kind), which reap it
 * themselves (waitpid) and close pidfd. timeout_ms and out_max are not
 * used. Returns 0 once the program runs (execve succeeded), or -1 with
 * err_msg().
 */
int proc_spawn(const struct proc_opts *o, int out_fd, int err_fd, struct proc_child *out);

/*
 * Run the program and wait for it. When the output of a stream exceeds
 * out_max, its first and last halves are kept and a line
 * "[... N bytes dropped ...]" stands for the middle. When the program exits,
 * whatever it left running in its process group is killed. Returns 0 when
 * the program ran (whatever its exit status; see res), -1 with err_msg()
 * when it could not be started (not absolute, not executable, a uid or
 * directory that cannot be used). res is initialised in either case;
 * release it with proc_result_release().
 */
int proc_run(const struct proc_opts *o, struct proc_result *res);
void proc_result_release(struct proc_result *res);

/* 1 when the program exited with status 0. */
int proc_ok(const struct proc_result *res);

/* "exit status 3", "killed by signal 9", "timed out after N ms" into out. */
void proc_describe(const struct proc_result *res, const struct proc_opts *o, struct buf *out);

/* Append at most max bytes of the end of text (whole lines where possible,
 * trailing newlines trimmed, lines joined with "; ") to out: a short reason
 * for error messages. */
void proc_tail(struct buf *out, const struct buf *text, size_t max);

#endif
