/* SPDX-License-Identifier: MIT */
/*
 * Kind Exec: a one-shot command (a migration and the like), run once per
 * change of what it runs or of a trigger, never on every pass. What it last
 * ran for is kept in the state database (meta "exec:ID": the state, the key
 * of its command and guards, the key of its triggers' desired state). A
 * "started" state is committed before the command is started, so a run the
 * agent did not see end (kill -9, a power cut) is an unknown outcome: it is
 * run again only when the resource says 'idempotent: true' or has a guard
 * to decide, and otherwise waits for `driftless ack`.
 *
 * Also what Exec and Service share to run programs: argv and env checks,
 * the run-as user, the working directory beneath the root, trigger keys.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/check.h"
#include "core/config.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/hmap.h"
#include "lib/proc.h"
#include "lib/redact.h"
#include "source/git.h"
#include "state/db.h"

#define EXEC_TIMEOUT_DEFAULT_MS (5 * 60 * 1000)
#define EXEC_RETRY_DELAY_DEFAULT_MS 1000
#define EXEC_RETRY_DELAY_MAX_MS (5 * 60 * 1000)
#define EXEC_RETRIES_MAX 100
#define EXEC_OUT_MAX 2048	/* output kept for history: its first and last KiB */

static const struct field exec_fields[] = {
	{ "command", FIELD_LIST, offsetof(struct exec_spec, command), FIELD_REQUIRED, NULL },
	{ "env", FIELD_MAP, offsetof(struct exec_spec, env), 0, NULL },
	{ "user", FIELD_ID, offsetof(struct exec_spec, user), 0, NULL },
	{ "workingDir", FIELD_PATH, offsetof(struct exec_spec, working_dir), 0, NULL },
	{ "creates", FIELD_PATH, offsetof(struct exec_spec, creates), 0, NULL },
	{ "unless", FIELD_LIST, offsetof(struct exec_spec, unless), 0, NULL },
	{ "onlyIf", FIELD_LIST, offsetof(struct exec_spec, only_if), 0, NULL },
	{ "timeout", FIELD_STR, offsetof(struct exec_spec, timeout), 0, NULL },
	{ "retries", FIELD_STR, offsetof(struct exec_spec, retries), 0, NULL },
	{ "retryDelay", FIELD_STR, offsetof(struct exec_spec, retry_delay), 0, NULL },
	{ "triggers", FIELD_LIST, offsetof(struct exec_spec, triggers), 0, NULL },
	{ "idempotent", FIELD_BOOL, offsetof(struct exec_spec, idempotent), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- shared with Service ---- */

int run_check_argv(struct pass *p, struct resource *res, const char *field,
		   const char *const *argv, int required)
{
	const char *norm, *e;
	if (!argv) {
		if (required)
			res_diag(p, res, field, "missing field 'spec.%s'", field);
		return required ? -1 : 0;
	}
	if (!argv[0]) {
		res_diag(p, res, field, "'%s' must name a program: an argv list like [/usr/bin/true]",
			 field);
		return -1;
	}
	if (argv[0][0] != '/') {
		res_diag(p, res, field, "'%s' must start with an absolute path, not '%s' (no shell and"
			 " no PATH lookup: the list is passed to execve as it is)", field, argv[0]);
		return -1;
	}
	if ((e = check_host_path(&p->arena, argv[0], strlen(argv[0]), &norm)) || strcmp(norm, argv[0])) {
		res_diag(p, res, field, "'%s' program '%s' %s", field, argv[0],
			 e ? e : "is not a normalised path");
		return -1;
	}
	size_t n = 0;
	while (argv[n])
		n++;
	if (n > 4096) {
		res_diag(p, res, field, "'%s' has more than 4096 arguments", field);
		return -1;
	}
	return 0;
}

int run_check_env(struct pass *p, struct resource *res, const char *const *env)
{
	int ret = 0;
	for (size_t i = 0; env && env[i] && env[i + 1]; i += 2) {
		const char *k = env[i];
		int ok = (k[0] == '_' || (k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z')) &&
			 strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
				 strlen(k);
		if (!ok) {
			res_diag(p, res, "env", "'env' name '%s' must match [A-Za-z_][A-Za-z0-9_]*", k);
			ret = -1;
		} else if (env[i + 1][0] != '=') {
			res_diag(p, res, "env", "'env.%s' must be a string", k);
			ret = -1;
		}
	}
	return ret;
}

int run_check_user(struct pass *p, struct resource *res, const char *user)
{
	/* no user: it runs as the agent, root; policy.owners must allow that too */
	if (owner_allowed(p, user ? user : "root", 0))
		return 0;
	if (user)
		res_diag(p, res, "user", "'user' '%s' is denied by local policy rule 'policy.owners'",
			 user);
	else
		res_diag(p, res, NULL, "it would run as root, which local policy rule 'policy.owners'"
			 " does not allow; set 'user'");
	return -1;
}

int run_check_refs(struct pass *p, struct resource *res, const char *field,
		   const char *const *ids)
{
	int ret = 0;
	for (size_t i = 0; ids && ids[i]; i++) {
		const char *slash = strchr(ids[i], '/');
		struct resource *r = slash ? hmap_get(&p->by_id, ids[i]) : NULL;
		if (!slash || slash == ids[i] || check_name(slash + 1)) {
			res_diag(p, res, field, "'%s' entries must look like Kind/name, not '%s'", field,
				 ids[i]);
			ret = -1;
		} else if (!r) {
			res_diag(p, res, field, "'%s' names %s, which is not declared", field, ids[i]);
			ret = -1;
		} else if (r == res) {
			res_diag(p, res, field, "'%s' cannot name the resource itself", field);
			ret = -1;
		} else {
			res_add_dep(res, r);
		}
	}
	return ret;
}

int run_check_duration(struct pass *p, struct resource *res, const char *field, const char *s,
		       int64_t def, int64_t *out)
{
	int64_t v = s ? config_duration(s) : def;
	if (v <= 0) {
		res_diag(p, res, field, "'%s' must be a duration like \"500ms\", \"30s\" or \"5m\", not"
			 " '%s'", field, s);
		return -1;
	}
	*out = v;
	return 0;
}

const char **run_env(struct pass *p, const char *const *env)
{
	size_t n = 0;
	while (env && env[n])
		n++;
	const char **out = arena_alloc(&p->arena, (n / 2 + 2) * sizeof(*out));
	size_t k = 0;
	int has_path = 0;
	for (size_t i = 0; env && env[i] && env[i + 1]; i += 2)
		has_path |= !strcmp(env[i], "PATH");
	if (!has_path)
		out[k++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; env && env[i] && env[i + 1]; i += 2)
		out[k++] = arena_printf(&p->arena, "%s=%s", env[i], env[i + 1] + 1);
	out[k] = NULL;
	return out;
}

int run_ids(struct pass *p, const char *user, int *set, uid_t *uid, gid_t *gid)
{
	struct account a;
	*set = 0;
	if (!user)
		return 0;
	int numeric = strspn(user, "0123456789") == strlen(user);
	if (pass_uid(p, user, uid) < 0)
		return err_wrap("cannot run as '%s'", user);
	/* the primary group from the root's passwd; a bare number with no
	 * entry runs with the gid of the same number */
	*gid = (gid_t)*uid;
	if (!numeric) {
		int r = account_find(p, 0, user, &a);
		if (r < 0)
			return -1;
		if (r == 0 && a.nf > 3)
			*gid = (gid_t)strtoul(a.f[3], NULL, 10);
	}
	*set = 1;
	return 0;
}

const char *run_cwd(struct pass *p, const char *dir)
{
	const char *root = root_prefix(p);
	if (!root)
		return dir ? dir : "/";
	return dir ? arena_printf(&p->arena, "%s%s", root, dir) : root;
}

void run_refs_key(struct pass *p, const struct resource *res, const char *const *ids,
		  char key[41], const char **changed)
{
	struct buf b = BUF_INIT;
	*changed = NULL;
	buf_adds(&b, "refs\n");
	for (size_t i = 0; ids && ids[i]; i++) {
		struct resource *r = hmap_get(&p->by_id, ids[i]);
		buf_addf(&b, "%s %s\n", ids[i], r ? r->digest : "-");
		/* a dependency planned before us in this pass, and changed there */
		for (size_t d = 0; r && !*changed && d < res->ndeps; d++)
			if (res->deps[d] == r && r->changed)
				*changed = ids[i];
	}
	gitsrc_hash_blob(b.ptr, b.len, key);
	buf_release(&b);
}

/* ---- the record of the last run ---- */

struct exec_rec {
	char state[16];		/* started, done, failed, acked, rerun */
	char key[41];		/* what it ran */
	char trig[41];		/* its triggers' desired state */
	long long at;		/* when the run started (wall ms) */
};

static int rec_load(struct db *db, const char *id, struct exec_rec *out)
{
	struct arena a;
	arena_init(&a);
	char *k = xasprintf("exec:%s", id);
	char *v = db_meta_get(db, k, &a);
	free(k);
	memset(out, 0, sizeof(*out));
	int r = v && sscanf(v, "%15s %40s %40s %lld", out->state, out->key, out->trig, &out->at) == 4;
	arena_release(&a);
	return r ? 0 : 1;
}

static int rec_save(struct db *db, const char *id, const struct exec_rec *r)
{
	char *k = xasprintf("exec:%s", id);
	char *v = xasprintf("%s %s %s %lld", r->state, r->key, r->trig, r->at);
	int ret = db_meta_set(db, k, v);
	free(k);
	free(v);
	return ret;
}

static void fmt_time(char *out, size_t n, long long ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int exec_ack(struct db *db, const char *id, int rerun, char **started_at)
{
	struct exec_rec r;
	*started_at = NULL;
	if (rec_load(db, id, &r) != 0 || strcmp(r.state, "started"))
		return 1;
	char when[32];
	fmt_time(when, sizeof(when), r.at);
	*started_at = xstrdup(when);
	snprintf(r.state, sizeof(r.state), "%s", rerun ? "rerun" : "acked");
	return rec_save(db, id, &r) < 0 ? -1 : 0;
}

void exec_render_status(struct db *db, int json, struct buf *out)
{
	struct arena a;
	struct hmap inv;
	arena_init(&a);
	hmap_init(&inv);
	if (db_inv_load_kind(db, "Exec", &a, &inv) < 0) {
		hmap_release(&inv);
		arena_release(&a);
		return;
	}
	struct buf text = BUF_INIT;
	int first = 1;
	size_t it = 0;
	void *val;
	if (json)
		buf_adds(out, ",\"unknownOutcomes\":[");
	while (hmap_next(&inv, &it, NULL, &val)) {
		const struct inv_entry *e = val;
		struct exec_rec r;
		if (strcmp(e->kind, "Exec") || rec_load(db, e->id, &r) != 0 || strcmp(r.state, "started"))
			continue;
		char when[32];
		fmt_time(when, sizeof(when), r.at);
		if (json) {
			buf_adds(out, first ? "{\"id\":" : ",{\"id\":");
			buf_add_json_str(out, e->id);
			buf_addf(out, ",\"startedAt\":\"%s\",\"remedy\":", when);
			char *remedy = xasprintf("driftless ack %s", e->id);
			buf_add_json_str(out, remedy);
			free(remedy);
			buf_addch(out, '}');
		} else {
			buf_addf(&text, "  %s: the run started at %s did not report back; check the"
				 " host, then 'driftless ack %s' (or 'driftless ack --rerun %s')\n", e->id,
				 when, e->id, e->id);
		}
		first = 0;
	}
	if (json)
		buf_addch(out, ']');
	else if (text.len)
		buf_addf(out, "unknown outcomes:\n%s", text.ptr);
	buf_release(&text);
	hmap_release(&inv);
	arena_release(&a);
}

/* ---- check, observe, apply ---- */

static int exec_check(struct resource *res, struct pass *p)
{
	struct exec_spec *s = res->spec;
	int ret = 0;
	if (run_check_argv(p, res, "command", s->command, 1) < 0 ||
	    run_check_argv(p, res, "unless", s->unless, 0) < 0 ||
	    run_check_argv(p, res, "onlyIf", s->only_if, 0) < 0)
		ret = -1;
	if (run_check_env(p, res, s->env) < 0 || run_check_user(p, res, s->user) < 0 ||
	    run_check_refs(p, res, "triggers", s->triggers) < 0)
		ret = -1;
	if (run_check_duration(p, res, "timeout", s->timeout, EXEC_TIMEOUT_DEFAULT_MS,
			       &s->timeout_ms) < 0 ||
	    run_check_duration(p, res, "retryDelay", s->retry_delay, EXEC_RETRY_DELAY_DEFAULT_MS,
			       &s->retry_delay_ms) < 0)
		ret = -1;
	s->nretries = 0;
	if (s->retries) {
		char *end;
		long v = strtol(s->retries, &end, 10);
		if (*end || end == s->retries || v < 0 || v > EXEC_RETRIES_MAX) {
			res_diag(p, res, "retries", "'retries' must be a number from 0 to %d, not '%s'",
				 EXEC_RETRIES_MAX, s->retries);
			ret = -1;
		} else {
			s->nretries = (int)v;
		}
	}
	return ret;
}

/* What runs: a change of it runs the command again (the run policy,
 * timeout, retries and idempotent, does not). */
static void run_key(const struct exec_spec *s, char key[41])
{
	struct buf b = BUF_INIT;
	const char *const *lists[4] = { s->command, s->env, s->unless, s->only_if };
	for (int l = 0; l < 4; l++) {
		buf_addf(&b, "%d:", l);
		for (size_t i = 0; lists[l] && lists[l][i]; i++)
			buf_addf(&b, "%zu:%s,", strlen(lists[l][i]), lists[l][i]);
		buf_addch(&b, '\n');
	}
	buf_addf(&b, "user=%s\ncwd=%s\ncreates=%s\n", s->user ? s->user : "",
		 s->working_dir ? s->working_dir : "", s->creates ? s->creates : "");
	gitsrc_hash_blob(b.ptr, b.len, key);
	buf_release(&b);
}

static int has_guard(const struct exec_spec *s)
{
	return s->creates || s->unless || s->only_if;
}

static const char *ack_remedy(struct pass *p, const struct resource *res)
{
	return arena_printf(&p->arena, "check the host, then run 'driftless ack %s' (it counts as"
			    " done) or 'driftless ack --rerun %s' (it runs on the next pass); or set"
			    " 'idempotent: true'", res->id, res->id);
}

static int exec_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct exec_spec *s = res->spec;
	struct exec_rec r;
	char key[41], trig[41];
	const char *changed;
	int have = p->db && rec_load(p->db, res->id, &r) == 0;

	run_key(s, key);
	run_refs_key(p, res, s->triggers, trig, &changed);
	if (have && !strcmp(r.state, "started")) {
		char when[32];
		fmt_time(when, sizeof(when), r.at);
		if (s->idempotent == 1) {
			chg->action = ACT_UPDATE;
			what_add(chg, "run again: the run started at %s did not report back (outcome"
				 " unknown), and it is idempotent", when);
			return 0;
		}
		if (has_guard(s)) {
			chg->action = ACT_UPDATE;
			what_add(chg, "the run started at %s did not report back (outcome unknown): its"
				 " guards decide whether it runs again", when);
			return 0;
		}
		return err_set("the run started at %s did not report back: its outcome is unknown"
			       " (the process running it was killed?), and it is not run again on its"
			       " own; %s", when, ack_remedy(p, res));
	}
	const char *why = NULL;
	if (have && !strcmp(r.state, "rerun"))
		why = "run again ('driftless ack --rerun')";
	else if (!chg->inv)
		why = "first run";
	else if (!have)
		why = "no run is recorded";
	else if (strcmp(r.key, key))
		why = "its command, environment, user or guards changed";
	else if (strcmp(r.trig, trig) || changed)
		why = changed ? arena_printf(&p->arena, "trigger %s changed", changed) :
				"a trigger changed";
	else if (!strcmp(r.state, "failed"))
		why = "the last run failed";
	if (!why)
		return 0;
	if (s->creates) {
		struct stat st;
		int e = fs_lstat(&p->root, s->creates, &st);
		if (e < 0)
			return -1;
		if (e == 0) {
			buf_addf(&chg->what, "not run: '%s' exists (creates)", s->creates);
			return 0;
		}
	}
	chg->action = chg->inv ? ACT_UPDATE : ACT_CREATE;
	what_add(chg, "run %s: %s", s->command[0], why);
	return 0;
}

/* Every Secret of the pass registered with the redactor, so their
 * plaintext never reaches the history through a command's output (a pass
 * that loaded its desired state from the cache has not decrypted them). */
static void register_secrets(struct pass *p)
{
	if (hmap_get(&p->memo, "exec:secrets") || !p->identity_file)
		return;
	hmap_put(&p->memo, "exec:secrets", p);
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *r = p->res[i];
		struct file_spec *fs = r->spec;
		if (r->kind != &kind_secret || fs->ensure != 0)
			continue;
		struct buf b = BUF_INIT;
		if (secret_content(p, fs, &b) == 0)
			redact_wipe(b.ptr, b.len);
		buf_release(&b);
	}
}

/* Run a guard: 1 when it says "run", 0 when "skip" (with why), -1. */
static int guard(struct pass *p, const struct exec_spec *s, const struct proc_opts *base,
		 const char **why)
{
	if (s->creates) {
		struct stat st;
		int e = fs_lstat(&p->root, s->creates, &st);
		if (e < 0)
			return -1;
		if (e == 0) {
			*why = arena_printf(&p->arena, "not run: '%s' exists (creates)", s->creates);
			return 0;
		}
	}
	const char *const *argvs[2] = { s->unless, s->only_if };
	for (int g = 0; g < 2; g++) {
		if (!argvs[g])
			continue;
		struct proc_opts o = *base;
		struct proc_result res;
		o.argv = argvs[g];
		o.out_max = 256;
		if (proc_run(&o, &res) < 0) {
			proc_result_release(&res);
			return err_wrap("'%s'", g ? "onlyIf" : "unless");
		}
		int ok = proc_ok(&res);
		struct buf d = BUF_INIT;
		proc_describe(&res, &o, &d);
		proc_result_release(&res);
		if (g == 0 && ok) {
			*why = arena_printf(&p->arena, "not run: 'unless' %s succeeded", argvs[g][0]);
			buf_release(&d);
			return 0;
		}
		if (g == 1 && !ok) {
			*why = arena_printf(&p->arena, "not run: 'onlyIf' %s: %s", argvs[g][0], d.ptr);
			buf_release(&d);
			return 0;
		}
		buf_release(&d);
	}
	return 1;
}

static int exec_apply(struct change *chg, struct pass *p)
{
	struct resource *res = chg->res;
	struct exec_spec *s = res->spec;
	struct exec_rec r;
	struct proc_opts o;
	const char *why = NULL;
	int set = 0, ret = -1;
	uid_t uid = 0;
	gid_t gid = 0;

	memset(&r, 0, sizeof(r));
	memset(&o, 0, sizeof(o));
	if (chg->action == ACT_DELETE)
		return 0;	/* nothing on the host to undo */
	if (run_ids(p, s->user, &set, &uid, &gid) < 0)
		return -1;
	register_secrets(p);
	o.env = run_env(p, s->env);
	o.cwd = run_cwd(p, s->working_dir);
	o.set_ids = set;
	o.uid = uid;
	o.gid = gid;
	o.groups = &gid;
	o.ngroups = set ? 1 : 0;
	o.timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : EXEC_TIMEOUT_DEFAULT_MS;
	o.merge_stderr = 1;
	const char *changed;
	run_key(s, r.key);
	run_refs_key(p, res, s->triggers, r.trig, &changed);

	int g = guard(p, s, &o, &why);
	if (g < 0)
		return -1;
	if (g == 0) {
		/* the guard says it is done: that counts as the run for this key */
		snprintf(r.state, sizeof(r.state), "done");
		r.at = now_ms();
		if (p->db && rec_save(p->db, res->id, &r) < 0)
			return -1;
		err_set("%s", why);
		return 1;
	}

	/* committed before the command starts: a run nobody saw end is known */
	snprintf(r.state, sizeof(r.state), "started");
	r.at = now_ms();
	if (p->db && rec_save(p->db, res->id, &r) < 0)
		return err_wrap("cannot record the start of %s", res->id);

	o.argv = s->command;
	o.out_max = EXEC_OUT_MAX;
	struct proc_result pr;
	struct buf how = BUF_INIT;
	int64_t delay = s->retry_delay_ms > 0 ? s->retry_delay_ms : EXEC_RETRY_DELAY_DEFAULT_MS;
	int attempts = 0, ok = 0, started = 1;
	memset(&pr, 0, sizeof(pr));
	for (;;) {
		attempts++;
		proc_result_release(&pr);
		if (proc_run(&o, &pr) < 0) {
			started = 0;
			buf_reset(&how);
			buf_adds(&how, err_msg());
		} else {
			ok = proc_ok(&pr);
			buf_reset(&how);
			proc_describe(&pr, &o, &how);
		}
		if (ok || attempts > s->nretries)
			break;
		if (p->interrupt && p->interrupt(p->interrupt_ctx))
			break;	/* the agent is stopping: no more attempts */
		struct timespec ts = { (time_t)(delay / 1000), (long)(delay % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		delay = delay * 2 > EXEC_RETRY_DELAY_MAX_MS ? EXEC_RETRY_DELAY_MAX_MS : delay * 2;
	}

	snprintf(r.state, sizeof(r.state), "%s", ok ? "done" : "failed");
	if (p->db && rec_save(p->db, res->id, &r) < 0) {
		buf_release(&how);
		proc_result_release(&pr);
		return err_wrap("cannot record the end of %s", res->id);
	}
	struct buf out = BUF_INIT;
	if (started && pr.out.len) {
		buf_adds(&out, "; output: ");
		proc_tail(&out, &pr.out, EXEC_OUT_MAX + 64);
	}
	buf_reset(&chg->what);
	if (ok) {
		buf_addf(&chg->what, "ran %s: %s in %lld ms%s%s", s->command[0], how.ptr,
			 (long long)pr.ms, attempts > 1 ? ", after retries" : "", out.ptr ? out.ptr : "");
		ret = 0;
	} else {
		err_set("%s failed: %s (%d attempt%s)%s", s->command[0], how.ptr, attempts,
			attempts == 1 ? "" : "s", out.ptr ? out.ptr : "");
	}
	buf_release(&out);
	buf_release(&how);
	proc_result_release(&pr);
	return ret;
}

const struct kind kind_exec = {
	.name = "Exec",
	.fields = exec_fields,
	.spec_size = sizeof(struct exec_spec),
	.path_offset = SIZE_MAX,
	.check = exec_check,
	.observe = exec_observe,
	.apply = exec_apply,
};
