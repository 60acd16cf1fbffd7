/* SPDX-License-Identifier: MIT */
/* The spec structs of the file-like kinds, shared where one kind expands into another. */
#ifndef DL_KINDS_H
#define DL_KINDS_H

#include <stdint.h>
#include "kinds/common.h"

struct file_spec {
	const char *path;
	struct text content;
	const char *source;
	struct optmode mode;
	struct owner own;
	int ensure;		/* 0 present, 1 absent */
	int adopt;		/* -1 unset */
	int tmpl;		/* File 'template: true': host variables in content and source */
	int secret;		/* kind Secret: content/source hold age ciphertext */
	char blob[41];		/* desired content's blob id */
};

/* A Secret's spec: a File's and what only a Secret needs (a File's spec is
 * 144 bytes, not 184, and 100,000 of them are kept by a pass) */
struct secret_spec {
	struct file_spec f;
	char cipher[41];	/* with source: the ciphertext's blob id */
};

struct dir_spec {
	const char *path;
	struct optmode mode;
	struct owner own;
	const char *source;	/* repository folder to mirror */
	int purge;
	int ensure;
	int adopt;
};

struct link_spec {
	const char *path;
	const char *target;
	struct owner own;
	int ensure;
	int adopt;
};

struct user_spec {
	const char *name;	/* the account; metadata.name when absent */
	const char *uid;	/* decimal, as written */
	const char *group;	/* primary group: a name or a gid */
	const char **groups;	/* supplementary groups, exactly; NULL: not managed */
	const char *comment;	/* GECOS */
	const char *home;
	const char *shell;
	int system;		/* -1 unset */
	int ensure;		/* 0 present, 1 absent */
	int adopt;
};

struct group_spec {
	const char *name;	/* the group; metadata.name when absent */
	const char *gid;	/* decimal, as written */
	int system;
	int ensure;		/* 0 present, 1 absent */
	int adopt;
};

struct package_spec {
	const char *name;	/* the Debian package; metadata.name when absent */
	const char *version;	/* a pin (ensure: present only) */
	int ensure;		/* 0 present, 1 absent, 2 latest */
};

struct exec_spec {
	const char **command;	/* argv, argv[0] an absolute path */
	const char **env;	/* FIELD_MAP: NAME -> value */
	const char *user;	/* run as; the agent's own user when absent */
	const char *working_dir;
	const char *creates;	/* a host path under the root: when it exists, no run */
	const char **unless;	/* argv: exit 0 means no run */
	const char **only_if;	/* argv: non-zero means no run */
	const char *timeout;	/* per attempt, default 5m */
	const char *retries;	/* attempts after the first, default 0 */
	const char *retry_delay;	/* before the first retry, doubling; default 1s */
	const char **triggers;	/* Kind/name: a change of one runs it again */
	int idempotent;		/* -1 unset: an unknown outcome may be run again */
	/* from check(); plain bytes, so the desired-state cache keeps them */
	int64_t timeout_ms, retry_delay_ms;
	int nretries;
};

struct service_spec {
	const char *name;	/* on the host: unit driftless-NAME, STATE/services/NAME */
	const char **exec;	/* argv */
	const char **env;	/* FIELD_MAP */
	const char *user;
	const char *working_dir;
	int restart;		/* enum svc_restart: always, on-failure, never */
	const char *restart_delay;
	const char *stop_timeout;
	const char **restart_on;	/* Kind/name */
	const char **health;	/* FIELD_MAP: exec | http | tcp, interval, timeout, retries */
	const char **log;	/* FIELD_MAP: maxSize, keep */
	int backend;		/* 0 auto, 1 builtin, 2 systemd */
	int ensure;		/* 0 running, 1 stopped, 2 absent */
	/* from check() */
	int64_t restart_delay_ms, stop_timeout_ms, check_interval_ms, check_timeout_ms;
	int check, check_retries, log_keep;
	uint64_t log_max;
};

extern const struct kind kind_file, kind_directory, kind_symlink, kind_secret;
extern const struct kind kind_user, kind_group, kind_package;
extern const struct kind kind_exec, kind_service;

/* kinds/exec.c: what Exec and Service share to run programs. */
/* An argv list: present (when required), not empty, argv[0] an absolute
 * normalised path. 0 or -1 after a diagnostic at field. */
int run_check_argv(struct pass *p, struct resource *res, const char *field,
		   const char *const *argv, int required);
/* env names [A-Za-z_][A-Za-z0-9_]*, string values. */
int run_check_env(struct pass *p, struct resource *res, const char *const *env);
/* The run-as user (NULL: root) against policy.owners and allowRootAccounts. */
int run_check_user(struct pass *p, struct resource *res, const char *user);
/* Kind/name references that must be declared; each becomes a dependency. */
int run_check_refs(struct pass *p, struct resource *res, const char *field,
		   const char *const *ids);
/* A duration field (NULL: def) into *out; -1 after a diagnostic. */
int run_check_duration(struct pass *p, struct resource *res, const char *field, const char *s,
		       int64_t def, int64_t *out);
/* PATH=/usr/sbin:/usr/bin:/sbin:/bin, then the NAME=value of env (arena). */
const char **run_env(struct pass *p, const char *const *env);
/* The uid and gid user runs as (ROOT/etc/passwd); *set 0 when user is NULL. */
int run_ids(struct pass *p, const char *user, int *set, uid_t *uid, gid_t *gid);
/* dir (NULL: "/") beneath the root, as a host path (arena). */
const char *run_cwd(struct pass *p, const char *dir);
/* The desired state of the resources ids (their digests) hashed into key;
 * *changed: the first of them that changes in this pass, or NULL. */
void run_refs_key(struct pass *p, const struct resource *res, const char *const *ids,
		  char key[41], const char **changed);
/* Status lines (json: ',"unknownOutcomes":[...]') for Execs whose last run
 * has an unknown outcome; reads the database only. */
void exec_render_status(struct db *db, int json, struct buf *out);
/* The state of Exec id in db (meta "exec:ID"): "started", "done", ... */
int exec_ack(struct db *db, const char *id, int rerun, char **started_at);

/* kinds/service.c: hand the Services of the applied pass p to the agent's
 * supervisor (daemon/supervise.h). */
struct supervisor;
void service_supervise(struct supervisor *s, struct pass *p);

/* kinds/account.c: what User and Group share. */
/* A line of ROOT/etc/passwd or ROOT/etc/group, split at ':' (arena). */
struct account {
	const char *f[7];
	int nf;
};
/* The account name of a User or Group resource. */
const char *account_name(const struct resource *res);
/* Find name in ROOT/etc/group (group) or ROOT/etc/passwd: 0, 1 when it
 * has no line, -1 when the file cannot be read. */
int account_find(struct pass *p, int group, const char *name, struct account *out);
/* The User (group 0) or Group of this pass that declares the account name
 * with ensure: present, or NULL. */
struct resource *account_declared(struct pass *p, const char *name, int group);
/* Its declared uid or gid as written, or NULL. */
const char *account_declared_id(const struct resource *decl);
/* Run /usr/sbin/TOOL [--prefix ROOT] ARGS -- NAME (no shell). 0 or -1. */
int account_tool(struct pass *p, const char *tool, const char *const *args, size_t nargs,
		 const char *name);
/* The root as an absolute path when it is not "/", else NULL (arena). */
const char *root_prefix(struct pass *p);

int file_resolve_source(struct pass *p, struct resource *res, const char *src, char oid[41],
			uint64_t *size);
int file_content(struct pass *p, struct file_spec *s, struct buf *out);
int file_observe(struct resource *res, struct pass *p, struct change *chg);
int file_apply(struct change *chg, struct pass *p);

/* kinds/secret.c: the plaintext of a Secret into out (registered with the
 * redactor); forget the pass's identity (wiped). */
int secret_content(struct pass *p, struct file_spec *s, struct buf *out);
void secret_pass_release(struct pass *p);

#endif
