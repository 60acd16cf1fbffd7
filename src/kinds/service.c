/* SPDX-License-Identifier: MIT */
/*
 * Kind Service: a long-running process. Backend builtin: driftless starts
 * it in a session of its own (it outlives the agent and `apply`), keeps its
 * pid and start time in the state database and looks after it from the
 * agent (daemon/supervise.c: restarts, health checks, log rotation).
 * Backend systemd: a unit ROOT/etc/systemd/system/driftless-NAME.service,
 * written through the fs layer, then systemctl daemon-reload and enable
 * --now (only when the root is "/": for another root the unit is written
 * and systemctl is not run). auto: systemd when it is PID 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "core/check.h"
#include "daemon/supervise.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/proc.h"
#include "source/git.h"
#include "state/db.h"

#define SVC_STOP_DEFAULT_MS 10000
#define SVC_RESTART_DELAY_DEFAULT_MS 1000
#define SVC_CHECK_INTERVAL_DEFAULT_MS 10000
#define SVC_CHECK_TIMEOUT_DEFAULT_MS 2000
#define SVC_CHECK_RETRIES_DEFAULT 3
#define SYSTEMCTL_TIMEOUT_MS (2 * 60 * 1000)
#define UNIT_DIR "/etc/systemd/system"

enum { B_AUTO, B_BUILTIN, B_SYSTEMD };
enum { E_RUNNING, E_STOPPED, E_ABSENT };

static const char *const restart_values[] = { "always", "on-failure", "never", NULL };
static const char *const backend_values[] = { "auto", "builtin", "systemd", NULL };
static const char *const ensure_values[] = { "running", "stopped", "absent", NULL };

static const struct field svc_fields[] = {
	{ "name", FIELD_STR, offsetof(struct service_spec, name), 0, NULL },
	{ "exec", FIELD_LIST, offsetof(struct service_spec, exec), 0, NULL },
	{ "env", FIELD_MAP, offsetof(struct service_spec, env), 0, NULL },
	{ "user", FIELD_ID, offsetof(struct service_spec, user), 0, NULL },
	{ "workingDir", FIELD_PATH, offsetof(struct service_spec, working_dir), 0, NULL },
	{ "restart", FIELD_ENUM, offsetof(struct service_spec, restart), 0, restart_values },
	{ "restartDelay", FIELD_STR, offsetof(struct service_spec, restart_delay), 0, NULL },
	{ "stopTimeout", FIELD_STR, offsetof(struct service_spec, stop_timeout), 0, NULL },
	{ "restartOn", FIELD_LIST, offsetof(struct service_spec, restart_on), 0, NULL },
	{ "healthCheck", FIELD_MAP, offsetof(struct service_spec, health), 0, NULL },
	{ "log", FIELD_MAP, offsetof(struct service_spec, log), 0, NULL },
	{ "backend", FIELD_ENUM, offsetof(struct service_spec, backend), 0, backend_values },
	{ "ensure", FIELD_ENUM, offsetof(struct service_spec, ensure), 0, ensure_values },
	{ NULL, 0, 0, 0, NULL },
};

static const char *svc_name(const struct resource *res)
{
	const struct service_spec *s = res->spec;
	return s->name ? s->name : res->name;
}

/* "64k", "10M", "1G" or a number of bytes; 0 when bad. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || s[0] == '-')
		return 0;
	uint64_t mul = !*end ? 1 : (!strcmp(end, "k") || !strcmp(end, "K")) ? 1024 :
		       !strcmp(end, "M") ? 1024 * 1024 : !strcmp(end, "G") ? 1024ull * 1024 * 1024 : 0;
	if (!mul || v > (1ull << 40))
		return 0;
	return (uint64_t)v * mul;
}

static int map_known(struct pass *p, struct resource *res, const char *field,
		     const char *const *map, const char *const *known)
{
	int ret = 0;
	for (size_t i = 0; map && map[i] && map[i + 1]; i += 2) {
		size_t k = 0;
		while (known[k] && strcmp(known[k], map[i]))
			k++;
		if (!known[k]) {
			res_diag(p, res, field, "unknown field '%s.%s'", field, map[i]);
			ret = -1;
		}
	}
	return ret;
}

static int check_health(struct pass *p, struct resource *res, struct service_spec *s)
{
	static const char *const known[] = { "exec", "http", "tcp", "interval", "timeout", "retries",
		NULL };
	const char *const *h = s->health;
	int ret = map_known(p, res, "healthCheck", h, known);
	s->check = SVC_CHECK_NONE;
	if (!h)
		return ret;
	const char **argv = fmap_list(&p->arena, h, "exec", NULL);
	const char *http = fmap_str(h, "http"), *tcp = fmap_str(h, "tcp"), *e;
	int nkinds = !!argv + !!http + !!tcp;
	for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
		int list = h[i + 1][0] == '[';
		if (!strcmp(h[i], "exec") && !list) {
			res_diag(p, res, "healthCheck", "'healthCheck.exec' must be an argv list");
			ret = -1;
		} else if (strcmp(h[i], "exec") && list) {
			res_diag(p, res, "healthCheck", "'healthCheck.%s' must be a string", h[i]);
			ret = -1;
		}
	}
	if (nkinds != 1 && ret == 0) {
		res_diag(p, res, "healthCheck", "'healthCheck' needs exactly one of 'exec', 'http' and"
			 " 'tcp'");
		return -1;
	}
	if (argv) {
		s->check = SVC_CHECK_EXEC;
		if (run_check_argv(p, res, "healthCheck", argv, 1) < 0)
			ret = -1;
	} else if (http || tcp) {
		s->check = http ? SVC_CHECK_HTTP : SVC_CHECK_TCP;
		if ((e = svc_target_check(s->check, http ? http : tcp))) {
			res_diag(p, res, "healthCheck", "'healthCheck.%s' '%s' %s", http ? "http" : "tcp",
				 http ? http : tcp, e);
			ret = -1;
		}
	}
	if (run_check_duration(p, res, "healthCheck", fmap_str(h, "interval"),
			       SVC_CHECK_INTERVAL_DEFAULT_MS, &s->check_interval_ms) < 0 ||
	    run_check_duration(p, res, "healthCheck", fmap_str(h, "timeout"),
			       SVC_CHECK_TIMEOUT_DEFAULT_MS, &s->check_timeout_ms) < 0)
		ret = -1;
	s->check_retries = SVC_CHECK_RETRIES_DEFAULT;
	const char *r = fmap_str(h, "retries");
	if (r) {
		char *end;
		long v = strtol(r, &end, 10);
		if (*end || end == r || v < 1 || v > 100) {
			res_diag(p, res, "healthCheck", "'healthCheck.retries' must be a number from 1 to"
				 " 100, not '%s'", r);
			ret = -1;
		} else {
			s->check_retries = (int)v;
		}
	}
	return ret;
}

static int check_log(struct pass *p, struct resource *res, struct service_spec *s)
{
	static const char *const known[] = { "maxSize", "keep", NULL };
	int ret = map_known(p, res, "log", s->log, known);
	const char *m = fmap_str(s->log, "maxSize"), *k = fmap_str(s->log, "keep");
	s->log_max = SVC_LOG_MAX_DEFAULT;
	s->log_keep = SVC_LOG_KEEP_DEFAULT;
	if (m && (s->log_max = parse_size(m)) < 1024) {
		res_diag(p, res, "log", "'log.maxSize' must be a size of at least 1k like \"64k\" or"
			 " \"10M\", not '%s'", m);
		ret = -1;
	}
	if (k) {
		char *end;
		long v = strtol(k, &end, 10);
		if (*end || end == k || v < 0 || v > 100) {
			res_diag(p, res, "log", "'log.keep' must be a number from 0 to 100, not '%s'", k);
			ret = -1;
		} else {
			s->log_keep = (int)v;
		}
	}
	return ret;
}

static const char *unit_path(struct pass *p, const struct resource *res)
{
	return arena_printf(&p->arena, UNIT_DIR "/driftless-%s.service", svc_name(res));
}

static int svc_check(struct resource *res, struct pass *p)
{
	struct service_spec *s = res->spec;
	const char *name = svc_name(res), *e;
	int ret = 0;
	/* M11: a name that cannot be an option, a path or a unit specifier */
	if (!*name || strlen(name) > 200 || name[0] == '-' || name[0] == '.' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@:-") !=
		    strlen(name)) {
		res_diag(p, res, s->name ? "name" : NULL, "service name '%s' must match"
			 " [A-Za-z0-9_.@:-]+ and not start with '-' or '.'", name);
		ret = -1;
	}
	if (s->ensure == E_ABSENT)
		return ret;
	if (run_check_argv(p, res, "exec", s->exec, 1) < 0 || run_check_env(p, res, s->env) < 0 ||
	    run_check_user(p, res, s->user) < 0 || run_check_refs(p, res, "restartOn", s->restart_on) < 0)
		ret = -1;
	if (run_check_duration(p, res, "restartDelay", s->restart_delay, SVC_RESTART_DELAY_DEFAULT_MS,
			       &s->restart_delay_ms) < 0 ||
	    run_check_duration(p, res, "stopTimeout", s->stop_timeout, SVC_STOP_DEFAULT_MS,
			       &s->stop_timeout_ms) < 0)
		ret = -1;
	if (check_health(p, res, s) < 0 || check_log(p, res, s) < 0)
		ret = -1;
	if (s->backend == B_SYSTEMD && (e = policy_check_path(p->policy, unit_path(p, res)))) {
		res_diag(p, res, "backend", "the unit '%s' %s", unit_path(p, res), e);
		ret = -1;
	}
	return ret;
}

/* ---- backends ---- */

/* builtin or systemd: auto asks /proc/1/comm (the host's, whatever the root) */
static int backend_of(struct pass *p, const struct service_spec *s, const struct svc_record *rec)
{
	if (s->ensure == E_ABSENT && rec && rec->backend)
		return strcmp(rec->backend, "systemd") ? B_BUILTIN : B_SYSTEMD;
	if (s->backend != B_AUTO)
		return s->backend;
	const char *m = hmap_get(&p->memo, "service:pid1");
	if (!m) {
		char comm[64] = "";
		int fd = open("/proc/1/comm", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
		if (fd >= 0)
			close(fd);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		m = !strcmp(comm, "systemd") ? "systemd" : "builtin";
		hmap_put(&p->memo, "service:pid1", (void *)m);
	}
	return !strcmp(m, "systemd") ? B_SYSTEMD : B_BUILTIN;
}

/* What the builtin backend runs: a change restarts it. */
static void builtin_key(const struct service_spec *s, char key[41])
{
	struct buf b = BUF_INIT;
	const char *const *lists[2] = { s->exec, s->env };
	for (int l = 0; l < 2; l++) {
		buf_addf(&b, "%d:", l);
		for (size_t i = 0; lists[l] && lists[l][i]; i++)
			buf_addf(&b, "%zu:%s,", strlen(lists[l][i]), lists[l][i]);
		buf_addch(&b, '\n');
	}
	buf_addf(&b, "user=%s\ncwd=%s\n", s->user ? s->user : "", s->working_dir ? s->working_dir : "");
	gitsrc_hash_blob(b.ptr, b.len, key);
	buf_release(&b);
}

static int restart_due(int policy, const char *last_exit)
{
	if (policy == SVC_ALWAYS)
		return 1;
	if (policy == SVC_NEVER)
		return 0;
	return !last_exit || strcmp(last_exit, "exit status 0");
}

static int service_def(struct pass *p, struct resource *res, int backend, struct svc_def *d)
{
	struct service_spec *s = res->spec;
	memset(d, 0, sizeof(*d));
	d->id = res->id;
	d->name = svc_name(res);
	d->builtin = backend == B_BUILTIN;
	d->argv = s->exec;
	d->env = run_env(p, s->env);
	d->cwd = run_cwd(p, s->working_dir);
	if (run_ids(p, s->user, &d->set_ids, &d->uid, &d->gid) < 0)
		return -1;
	d->restart = s->restart;
	d->restart_delay_ms = s->restart_delay_ms > 0 ? s->restart_delay_ms : SVC_RESTART_DELAY_DEFAULT_MS;
	d->stop_timeout_ms = s->stop_timeout_ms > 0 ? s->stop_timeout_ms : SVC_STOP_DEFAULT_MS;
	d->log_max = s->log_max ? s->log_max : SVC_LOG_MAX_DEFAULT;
	d->log_keep = s->log_max ? s->log_keep : SVC_LOG_KEEP_DEFAULT;
	d->check = s->ensure == E_RUNNING ? s->check : SVC_CHECK_NONE;
	if (d->check == SVC_CHECK_EXEC)
		d->check_argv = fmap_list(&p->arena, s->health, "exec", NULL);
	else if (d->check)
		d->check_target = fmap_str(s->health, d->check == SVC_CHECK_HTTP ? "http" : "tcp");
	d->check_interval_ms = s->check_interval_ms > 0 ? s->check_interval_ms : SVC_CHECK_INTERVAL_DEFAULT_MS;
	d->check_timeout_ms = s->check_timeout_ms > 0 ? s->check_timeout_ms : SVC_CHECK_TIMEOUT_DEFAULT_MS;
	d->check_retries = s->check_retries > 0 ? s->check_retries : SVC_CHECK_RETRIES_DEFAULT;
	return 0;
}

/* ---- systemd ---- */

static void unit_quote(struct buf *b, const char *s, int dollar)
{
	buf_addch(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addch(b, '\\');
		if (*s == '%')
			buf_addch(b, '%');
		if (dollar && *s == '$')
			buf_addch(b, '$');
		buf_addch(b, *s);
	}
	buf_addch(b, '"');
}

static void unit_text(const struct resource *res, struct buf *b)
{
	const struct service_spec *s = res->spec;
	static const char *const restart[] = { "always", "on-failure", "no" };
	buf_addf(b, "# written by driftless for %s; changes here are overwritten\n[Unit]\n"
		 "Description=driftless %s\n\n[Service]\nExecStart=", res->id, res->id);
	for (size_t i = 0; s->exec && s->exec[i]; i++) {
		if (i)
			buf_addch(b, ' ');
		unit_quote(b, s->exec[i], 1);
	}
	buf_addch(b, '\n');
	for (size_t i = 0; s->env && s->env[i] && s->env[i + 1]; i += 2) {
		char *kv = xasprintf("%s=%s", s->env[i], s->env[i + 1] + 1);
		buf_adds(b, "Environment=");
		unit_quote(b, kv, 0);
		buf_addch(b, '\n');
		free(kv);
	}
	if (s->user)
		buf_addf(b, "User=%s\n", s->user);
	if (s->working_dir) {
		buf_adds(b, "WorkingDirectory=");
		for (const char *c = s->working_dir; *c; c++) {
			if (*c == '%')
				buf_addch(b, '%');
			buf_addch(b, *c);
		}
		buf_addch(b, '\n');
	}
	buf_addf(b, "Restart=%s\nRestartSec=%lldms\nTimeoutStopSec=%lldms\n\n[Install]\n"
		 "WantedBy=multi-user.target\n", restart[s->restart],
		 (long long)(s->restart_delay_ms > 0 ? s->restart_delay_ms : SVC_RESTART_DELAY_DEFAULT_MS),
		 (long long)(s->stop_timeout_ms > 0 ? s->stop_timeout_ms : SVC_STOP_DEFAULT_MS));
}

static const char *systemctl_path(void)
{
	return access("/usr/bin/systemctl", X_OK) == 0 ? "/usr/bin/systemctl" : "/bin/systemctl";
}

/* systemctl VERB [--now|--quiet] -- UNIT (no unit: daemon-reload). 0 on
 * success, 1 when it said no, -1 when it could not run. */
static int systemctl(struct pass *p, const char *verb, const char *opt, const char *unit)
{
	const char *argv[7];
	size_t n = 0;
	argv[n++] = systemctl_path();
	argv[n++] = verb;
	if (opt)
		argv[n++] = opt;
	if (unit) {
		argv[n++] = "--";
		argv[n++] = unit;
	}
	argv[n] = NULL;
	struct proc_opts o = { .argv = argv, .env = proc_default_env, .timeout_ms = SYSTEMCTL_TIMEOUT_MS,
			       .merge_stderr = 1, .out_max = 4096 };
	struct proc_result r;
	(void)p;
	if (proc_run(&o, &r) < 0) {
		proc_result_release(&r);
		return -1;
	}
	int ok = proc_ok(&r);
	if (!ok && strcmp(verb, "is-active") && strcmp(verb, "is-enabled")) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "systemctl %s failed (", verb);
		proc_describe(&r, &o, &m);
		buf_adds(&m, ")");
		if (r.out.len) {
			buf_adds(&m, ": ");
			proc_tail(&m, &r.out, 300);
		}
		err_set("%s", m.ptr);
		buf_release(&m);
		proc_result_release(&r);
		return -1;
	}
	proc_result_release(&r);
	return ok ? 0 : 1;
}

static int systemd_observe(struct resource *res, struct pass *p, struct change *chg,
			   const struct svc_record *rec, int have)
{
	struct service_spec *s = res->spec;
	const char *path = unit_path(p, res), *msg, *changed;
	const char *unit = path + sizeof(UNIT_DIR);
	struct buf cur = BUF_INIT, want = BUF_INIT;
	struct stat st;
	char trig[41];
	int local = root_prefix(p) == NULL;
	if ((msg = policy_check_path(p->policy, path)))
		return err_set("the unit '%s' %s", path, msg);
	int e = fs_lstat(&p->root, path, &st);
	if (e < 0)
		return -1;
	chg->exists = e == 0;
	if (e == 0 && fs_read(&p->root, path, 1u << 20, &cur) < 0) {
		buf_release(&cur);
		return -1;
	}
	if (s->ensure == E_ABSENT) {
		if (chg->exists) {
			chg->action = ACT_DELETE;
			what_add(chg, "unit %s", path);
		}
		buf_release(&cur);
		return 0;
	}
	unit_text(res, &want);
	int differs = !chg->exists || cur.len != want.len || memcmp(cur.ptr, want.ptr, want.len);
	buf_release(&cur);
	buf_release(&want);
	if (differs)
		what_add(chg, "unit %s", chg->exists ? "content" : path);
	if (local) {
		int active = systemctl(p, "is-active", "--quiet", unit);
		int enabled = systemctl(p, "is-enabled", "--quiet", unit);
		if (s->ensure == E_RUNNING && active != 0)
			what_add(chg, "start");
		if (s->ensure == E_RUNNING && enabled != 0)
			what_add(chg, "enable");
		if (s->ensure == E_STOPPED && active == 0)
			what_add(chg, "stop");
	}
	run_refs_key(p, res, s->restart_on, trig, &changed);
	if (s->ensure == E_RUNNING && !differs && ((have && rec->trig && strcmp(rec->trig, trig)) || changed))
		what_add(chg, "restart: %s changed", changed ? changed : "a restartOn resource");
	if (chg->what.len)
		chg->action = chg->exists || chg->inv ? ACT_UPDATE : ACT_CREATE;
	return 0;
}

static int mkdirs(struct pass *p, const char *dir)
{
	struct stat st;
	char *d = xstrdup(dir);
	int ret = 0;
	for (char *c = d + 1;; c++) {
		if (*c != '/' && *c)
			continue;
		char save = *c;
		*c = '\0';
		int e = fs_lstat(&p->root, d, &st);
		if (e < 0 || (e == 1 && fs_mkdir(&p->root, d, 0755, 0, 0) < 0)) {
			ret = -1;
			break;
		}
		*c = save;
		if (!save)
			break;
	}
	free(d);
	return ret;
}

static int systemd_apply(struct change *chg, struct pass *p, struct svc_record *rec)
{
	struct resource *res = chg->res;
	struct service_spec *s = res->spec;
	const char *path = unit_path(p, res), *changed;
	const char *unit = path + sizeof(UNIT_DIR);
	int local = root_prefix(p) == NULL;
	struct buf want = BUF_INIT, cur = BUF_INIT;
	struct stat st;
	int ret = -1;

	if (s->ensure == E_ABSENT || chg->action == ACT_DELETE) {
		if (local && systemctl(p, "disable", "--now", unit) < 0)
			return -1;
		if (fs_lstat(&p->root, path, &st) == 0 && fs_unlink(&p->root, path) < 0)
			return -1;
		if (local && systemctl(p, "daemon-reload", NULL, NULL) < 0)
			return -1;
		svc_record_del(p->db, res->id);
		return 0;
	}
	unit_text(res, &want);
	int e = fs_lstat(&p->root, path, &st);
	if (e == 0 && fs_read(&p->root, path, 1u << 20, &cur) < 0)
		goto out;
	int differs = e != 0 || cur.len != want.len || memcmp(cur.ptr, want.ptr, want.len);
	if (differs && (mkdirs(p, UNIT_DIR) < 0 ||
			fs_write_atomic(&p->root, path, want.ptr, want.len, 0644, 0, 0) < 0))
		goto out;
	char trig[41];
	run_refs_key(p, res, s->restart_on, trig, &changed);
	int restart = s->ensure == E_RUNNING && (differs || changed ||
						 (rec->trig && strcmp(rec->trig, trig)));
	if (!local) {
		buf_reset(&chg->what);
		buf_addf(&chg->what, "unit %s written; systemctl not run: the root is not /", path);
	} else {
		if (differs && systemctl(p, "daemon-reload", NULL, NULL) < 0)
			goto out;
		if (s->ensure == E_RUNNING) {
			if (systemctl(p, "enable", "--now", unit) < 0 ||
			    (restart && systemctl(p, "restart", NULL, unit) < 0))
				goto out;
		} else if (systemctl(p, "disable", "--now", unit) < 0) {
			goto out;
		}
	}
	char key[41];
	gitsrc_hash_blob(want.ptr, want.len, key);
	rec->backend = "systemd";
	rec->want = s->ensure == E_RUNNING;
	rec->pid = 0;
	rec->key = key;
	rec->trig = trig;
	ret = p->db ? svc_record_save(p->db, rec) : 0;
out:
	buf_release(&want);
	buf_release(&cur);
	return ret;
}

/* ---- builtin ---- */

static int builtin_observe(struct resource *res, struct pass *p, struct change *chg,
			   const struct svc_record *rec, int have)
{
	struct service_spec *s = res->spec;
	int alive = have && (!rec->backend || !strcmp(rec->backend, "builtin")) && svc_alive(rec);
	char key[41], trig[41];
	const char *changed;
	chg->exists = alive;
	if (s->ensure == E_ABSENT) {
		if (have) {
			chg->action = ACT_DELETE;
			if (alive)
				what_add(chg, "stop pid %d", (int)rec->pid);
			else
				what_add(chg, "forget its record (not running)");
		}
		return 0;
	}
	if (s->ensure == E_STOPPED) {
		if (alive) {
			chg->action = ACT_UPDATE;
			what_add(chg, "stop pid %d", (int)rec->pid);
		}
		return 0;
	}
	builtin_key(s, key);
	run_refs_key(p, res, s->restart_on, trig, &changed);
	int same = have && rec->key && !strcmp(rec->key, key) && rec->trig && !strcmp(rec->trig, trig);
	if (!alive) {
		if (same && rec->want && !changed && !restart_due(s->restart, rec->last_exit)) {
			buf_addf(&chg->what, "ended (%s); not started again (restart: %s)",
				 rec->last_exit ? rec->last_exit : "while nobody watched",
				 restart_values[s->restart]);
			return 0;
		}
		chg->action = chg->inv ? ACT_UPDATE : ACT_CREATE;
		if (have && rec->want && rec->last_exit)
			what_add(chg, "start (it ended: %s)", rec->last_exit);
		else if (have && rec->want && rec->pid)
			what_add(chg, "start (pid %d is gone)", (int)rec->pid);
		else
			what_add(chg, "start");
		return 0;
	}
	if (!rec->key || strcmp(rec->key, key))
		what_add(chg, "restart: its command, environment, user or workingDir changed");
	else if (changed || !rec->trig || strcmp(rec->trig, trig))
		what_add(chg, "restart: %s changed", changed ? changed : "a restartOn resource");
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

static int builtin_apply(struct change *chg, struct pass *p, struct svc_record *rec, int have)
{
	struct resource *res = chg->res;
	struct service_spec *s = res->spec;
	struct buf how = BUF_INIT;
	pid_t old = have && svc_alive(rec) ? rec->pid : 0;
	int ret = -1;
	if (old && svc_stop(rec, s->stop_timeout_ms > 0 ? s->stop_timeout_ms : SVC_STOP_DEFAULT_MS,
			    &how) < 0)
		goto out;
	/* what observe said, then what happened */
	if (chg->what.len)
		buf_adds(&chg->what, ": ");
	if (s->ensure == E_ABSENT || chg->action == ACT_DELETE) {
		buf_adds(&chg->what, old ? how.ptr : "not running");
		ret = p->db ? svc_record_del(p->db, res->id) : 0;
		goto out;
	}
	if (s->ensure == E_STOPPED) {
		buf_adds(&chg->what, old ? how.ptr : "not running");
		rec->want = 0;
		rec->pid = 0;
		rec->ready = -1;
		rec->health = NULL;
		ret = p->db ? svc_record_save(p->db, rec) : 0;
		goto out;
	}
	struct svc_def d;
	char key[41], trig[41];
	const char *changed;
	if (service_def(p, res, B_BUILTIN, &d) < 0)
		goto out;
	builtin_key(s, key);
	run_refs_key(p, res, s->restart_on, trig, &changed);
	if (svc_start(p->state_dir ? p->state_dir : "/var/lib/driftless", &d, rec) < 0)
		goto out;
	rec->backend = "builtin";
	rec->want = 1;
	rec->key = key;
	rec->trig = trig;
	rec->restarts = 0;
	rec->last_exit = NULL;
	rec->ready = -1;
	rec->health = NULL;
	rec->checked_ms = 0;
	if (p->db && svc_record_save(p->db, rec) < 0)
		goto out;
	if (old)
		buf_addf(&chg->what, "pid %d %s, pid %d started", (int)old, how.ptr, (int)rec->pid);
	else
		buf_addf(&chg->what, "pid %d started", (int)rec->pid);
	ret = 0;
out:
	buf_release(&how);
	return ret;
}

/* ---- the kind ---- */

static int svc_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct svc_record rec;
	int have = 0;
	memset(&rec, 0, sizeof(rec));
	chg->key = svc_name(res);
	if (p->db) {
		int r = svc_record_load(p->db, &p->arena, res->id, &rec);
		if (r < 0)
			return -1;
		have = r == 0;
	}
	int b = backend_of(p, res->spec, have ? &rec : NULL);
	return b == B_SYSTEMD ? systemd_observe(res, p, chg, &rec, have) :
				builtin_observe(res, p, chg, &rec, have);
}

static int svc_apply(struct change *chg, struct pass *p)
{
	struct resource *res = chg->res;
	struct svc_record rec;
	int have = 0;
	if (p->db) {
		int r = svc_record_load(p->db, &p->arena, res->id, &rec);
		if (r < 0)
			return -1;
		have = r == 0;
	}
	if (!have) {
		memset(&rec, 0, sizeof(rec));
		rec.id = res->id;
		rec.ready = -1;
	}
	int b = backend_of(p, res->spec, have ? &rec : NULL);
	return b == B_SYSTEMD ? systemd_apply(chg, p, &rec) : builtin_apply(chg, p, &rec, have);
}

void service_supervise(struct supervisor *sup, struct pass *p)
{
	struct svc_def *defs = xcalloc(p->nres + 1, sizeof(*defs));
	size_t n = 0;
	for (size_t i = 0; sup && i < p->nres; i++) {
		struct resource *res = p->res[i];
		struct service_spec *s = res->spec;
		if (res->kind != &kind_service || s->ensure == E_ABSENT)
			continue;
		int b = backend_of(p, s, NULL);
		if (service_def(p, res, b, &defs[n]) < 0) {
			fprintf(stderr, "%s: %s\n", res->id, err_msg());
			continue;
		}
		if (b == B_SYSTEMD && !defs[n].check)
			continue;	/* systemd looks after it; nothing to check */
		n++;
	}
	if (sup)
		supervise_set(sup, defs, n);
	free(defs);
}

const struct kind kind_service = {
	.name = "Service",
	.fields = svc_fields,
	.spec_size = sizeof(struct service_spec),
	.path_offset = SIZE_MAX,
	.check = svc_check,
	.observe = svc_observe,
	.apply = svc_apply,
	.key_field = "name",
	.adopt_free = 1,	/* a service of ours by its record, a unit by its driftless- name */
};
