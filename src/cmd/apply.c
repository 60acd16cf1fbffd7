/* SPDX-License-Identifier: MIT */
/* The apply, plan and validate commands: fetch, load, validate, plan, and (for apply) carry out. */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "cmd/run.h"
#include "core/check.h"
#include "core/vars.h"
#include "lib/err.h"
#include "lib/redact.h"
#include "source/git.h"
#include "state/db.h"

#define APPLY_USAGE "driftless apply [--repo URL [--branch NAME | --tag NAME | --semver RANGE | --commit SHA] [--path DIR]] [-c FILE] [--root DIR] [--identity FILE] [--state DIR] [--dry-run] [-o text|json]"
#define PLAN_USAGE "driftless plan [--repo URL [--branch NAME | --tag NAME | --semver RANGE | --commit SHA] [--path DIR]] [-c FILE] [--root DIR] [--identity FILE] [--state DIR] [--exit-code] [-o text|json|yaml]"
#define VALIDATE_USAGE "driftless validate [--repo URL [--branch NAME | --tag NAME | --semver RANGE | --commit SHA] [--path DIR] | DIR] [-c FILE]"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static const char prefix[] = { '+', '~', '-' };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* DRIFTLESS_TIMING=1 prints how long each stage of a pass took (stderr). */
static int timing_on(void)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("DRIFTLESS_TIMING");
		on = e && *e == '1';
	}
	return on;
}

static void stage(const char *name)
{
	static int64_t last = -1;
	if (last < 0)
		last = now_ms();
	if (!timing_on())
		return;
	int64_t t = now_ms();
	/* resident and peak resident set so far, from /proc (kB) */
	long rss = -1, hwm = -1, file = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		char line[128];
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "VmRSS:", 6))
				rss = atol(line + 6);
			else if (!strncmp(line, "VmHWM:", 6))
				hwm = atol(line + 6);
			else if (!strncmp(line, "RssFile:", 8))
				file = atol(line + 8);
		}
		fclose(f);
	}
	fprintf(stderr, "timing: %-10s %5lld ms  rss %6ld KiB (files %6ld)  peak %6ld KiB\n",
		name, (long long)(t - last), rss, file, hwm);
	last = t;
}

/* the plan's stage, and where the index came from */
static void stage_plan(const struct pass *p)
{
	stage("plan");
	if (timing_on() && p->index_origin)
		fprintf(stderr, "timing: index read from the %s\n", p->index_origin);
}


static void print_diags(struct pass *p)
{
	diag_sort(&p->diag);
	diag_print(&p->diag, stderr);
	fprintf(stderr, "error: revision %.12s rejected: %zu problem%s; nothing was applied\n",
		p->rev.oid, p->diag.n, p->diag.n == 1 ? "" : "s");
}

static void json_change(struct buf *b, const struct change *c, int first, int with_outcome)
{
	buf_addf(b, "%s{\"id\":", first ? "" : ",");
	buf_add_json_str(b, c->res->id);
	buf_adds(b, ",\"kind\":");
	buf_add_json_str(b, c->res->kind->name);
	buf_adds(b, ",\"path\":");
	buf_add_json_str(b, c->res->path);
	buf_adds(b, ",\"action\":");
	buf_add_json_str(b, action_names[c->action]);
	if (with_outcome) {
		buf_adds(b, ",\"outcome\":");
		buf_add_json_str(b, outcome_names[c->outcome]);
	}
	buf_adds(b, ",\"changes\":");
	buf_add_json_str(b, c->what.ptr ? c->what.ptr : "");
	buf_addf(b, ",\"drifted\":%s", c->drifted ? "true" : "false");
	if (c->error) {
		buf_adds(b, ",\"error\":");
		buf_add_json_str(b, c->error);
	}
	if (c->diff.len && c->action == ACT_UPDATE && c->res->kind->diff) {
		buf_adds(b, ",\"diff\":");
		buf_add_json_str(b, c->diff.ptr);
	}
	buf_addch(b, '}');
}

static void json_head(struct buf *b, const struct pass *p)
{
	buf_adds(b, "{\"revision\":");
	buf_add_json_str(b, p->rev.oid);
	buf_adds(b, ",\"ref\":");
	buf_add_json_str(b, p->rev.ref);
	buf_adds(b, ",\"author\":");
	buf_add_json_str(b, p->rev.author);
	buf_adds(b, ",\"summary\":");
	buf_add_json_str(b, p->rev.summary);
}

/* fetch -> resolve -> read tree -> parse -> validate -> observe -> diff */
int run_prepare(struct run *r, int need_db)
{
	struct opts *o = &r->o;
	struct pass *p = &r->p;
	struct source_opts so = { 0 };
	int fetched;

	gitsrc_warmup();
	if (!r->readonly && opts_config(o) < 0)
		return EXIT_ERR;
	if (!o->cfg.url) {
		fprintf(stderr, "error: no source: give '--repo URL' or 'source.url' in the config\n");
		return EXIT_USAGE;
	}
	const char *entry = "";
	if (o->cfg.path) {
		const char *e = check_repo_path(&p->arena, "", o->cfg.path, strlen(o->cfg.path), &entry);
		if (e && strcmp(o->cfg.path, ".") && strcmp(o->cfg.path, "/")) {
			fprintf(stderr, "error: '--path' %s\n", e);
			return EXIT_USAGE;
		}
		if (e)
			entry = "";
	}
	p->entry = entry;
	p->policy = &o->cfg.policy;
	/* validate has no identity: it checks that Secrets are encrypted, not for whom */
	if (need_db)
		p->identity_file = o->cfg.identity ? o->cfg.identity : DEFAULT_IDENTITY;
	p->allow_empty = o->cfg.allow_empty;
	p->prune = o->cfg.prune;
	p->state_dir = o->state;
	if (state_open(o, need_db && !r->readonly) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	char *rebuilt = NULL;
	if (need_db && !r->db && db_open_recover(&r->db, o->state, &rebuilt) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	if (rebuilt) {
		fprintf(stderr, "warning: %s\n", rebuilt);
		free(rebuilt);
	}
	p->db = r->db;
	/* what this pass writes brings the index snapshot up to date at the end */
	if (r->db)
		db_index_track(r->db);
	if (fs_root_open(&p->root, o->root) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	/* the paths the last pass left are stat'ed while Git is fetched and the
	 * desired state loaded; on any trouble pass_plan loads them itself */
	if (need_db && r->db && !r->import_dir && pass_preload(p, r->db) < 0)
		err_clear();
	/* a local path is a URL too; make it absolute so the cache key is stable */
	const char *url = o->cfg.url;
	char *abs = NULL;
	if (url[0] != '/' && !strstr(url, "://") && !strchr(url, '@')) {
		char *cwd = getcwd(NULL, 0);
		abs = xasprintf("%s/%s", cwd ? cwd : ".", url);
		free(cwd);
		url = abs;
	}
	char *cache = xasprintf("%s/git", o->state);
	int rc = gitsrc_open(&p->git, cache, url);
	p->git_cache = arena_strdup(&p->arena, cache);	/* pass_git opens it again */
	free(cache);
	if (rc < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		free(abs);
		return EXIT_ERR;
	}
	struct source_secrets sec;
	if (!r->import_dir && !r->readonly && source_opts_load(&so, &o->cfg, url, &sec) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		free(abs);
		return EXIT_ERR;
	}
	if (r->import_dir || r->readonly)
		memset(&sec, 0, sizeof(sec));
	else
		fetch_deadline_arm(&o->cfg, url);
	stage("start");
	rc = r->import_dir ? gitsrc_import_dir(p->git, url, &p->rev) :
	     r->readonly ? gitsrc_resolve(p->git, o->cfg.commit, "", &p->rev) :
			   gitsrc_fetch(p->git, &so, &p->rev, &fetched);
	if (rc < 0 && !r->import_dir && !r->readonly && gitsrc_cache_damaged()) {
		/* a damaged cache is moved aside and fetched again, once */
		char *aside = NULL;
		char *cdir = xasprintf("%s/git", o->state);
		fprintf(stderr, "warning: the git cache is damaged (%s); fetching it again\n", err_msg());
		gitsrc_free(p->git);
		p->git = NULL;
		rc = gitsrc_cache_reset(cdir, url, &aside);
		if (!rc)
			rc = gitsrc_open(&p->git, cdir, url);
		if (!rc)
			rc = gitsrc_fetch(p->git, &so, &p->rev, &fetched);
		free(aside);
		free(cdir);
	}
	fetch_deadline_disarm();
	source_secrets_release(&sec);
	if (!r->import_dir)
		p->git_url = arena_strdup(&p->arena, url);
	free(abs);
	if (rc < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	/* signed commits (source.verify): a refusal is a rejection, like a bad manifest */
	if (!r->import_dir && !r->readonly) {
		int vr = source_verify(p, &o->cfg, o->state, r->db);
		if (vr < 0) {
			fprintf(stderr, "error: %s\n", err_msg());
			return EXIT_ERR;
		}
		if (vr > 0) {
			r->rejected = 1;
			return EXIT_ERR;
		}
	}
	/* a remote that went backwards (force-push, reset): rejected unless allowed */
	if (!r->import_dir && !r->readonly) {
		pass_set_selector(p, o->cfg.branch, o->cfg.tag, o->cfg.semver, o->cfg.commit);
		int rw = pass_check_rewind(p, o->cfg.allow_rewind);
		if (rw < 0) {
			r->rejected = 1;
			return EXIT_ERR;
		}
		if (rw > 0)
			fprintf(stderr, "warning: %.12s does not descend from the applied revision; accepted"
				" because of 'source.allowRewind'\n", p->rev.oid);
	}
	/* host variables; validate has no host and checks only their syntax */
	if (need_db)
		pass_set_vars(p, o->cfg.var_keys, o->cfg.var_vals, o->cfg.nvars);
	stage("fetch");
	/* a revision validated before under the same policy: no parse at all */
	if (need_db && !r->import_dir && !r->nocache && cache_load(p, o->state) == 0) {
		stage("cached");
		return 0;
	}
	/* a big revision to parse: what the last pass left is read again after
	 * pass_compact, not held through the parse (nor waited for) */
	if (need_db && pass_preload_hint(p) >= pass_compact_min())
		pass_preload_drop(p);
	pass_load_begin(p);
	/* validate even after load errors, so one run reports every problem */
	int bad = manifest_load(p) < 0;
	stage("parse");
	if (timing_on() && p->pcache) {
		int hits, asked;
		pcache_counts(p->pcache, &hits, &asked);
		fprintf(stderr, "timing: parse cache: %d of %d manifest files kept\n", hits, asked);
	}
	if (pass_validate(p) < 0 || bad || p->diag.n) {
		r->rejected = 1;
		return EXIT_ERR;
	}
	stage("validate");
	pass_drop_yaml(p);
	r->fresh = need_db && !r->import_dir;
	/* plan -o yaml shows the revision as parsed, never the cache's */
	if (r->fresh && !r->nocache) {
		int c = pass_compact(p, o->state, r->db);
		if (c < 0) {
			fprintf(stderr, "error: %s\n", err_msg());
			return EXIT_ERR;
		}
		if (c == 0) {
			r->fresh = 0;	/* stored already */
			stage("compact");
		}
	}
	return 0;
}

void run_release(struct run *r)
{
	/* last, so a kill during the pass never finds the cache newer than it */
	if (r->fresh && cache_store(&r->p, r->o.state) < 0)
		fprintf(stderr, "warning: %s\n", err_msg());
	pass_pcache_commit(&r->p);
	gitsrc_free(r->p.git);
	fs_root_close(&r->p.root);
	pass_release(&r->p);
	if (r->db)
		db_index_refresh(r->db);
	db_close(r->db);
	opts_release(&r->o);
}

void fill_diffs(struct pass *p)
{
	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *c = &p->changes[i];
		if (c->action == ACT_UPDATE && c->res->kind->diff)
			c->res->kind->diff(c, p, &c->diff);
	}
}

static void print_plan_text(struct pass *p)
{
	int n[4] = { 0 };
	printf("plan: revision %.12s%s%s \"%s\"\n", p->rev.oid, p->rev.ref[0] ? " " : "",
	       p->rev.ref, p->rev.summary ? p->rev.summary : "");
	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *c = &p->changes[i];
		if (c->outcome == OUT_FAILED) {
			printf("! %s%s%s: %s\n", c->res->id, c->res->path ? " " : "",
			       c->res->path ? c->res->path : "", c->error);
			continue;
		}
		if (c->action == ACT_NONE) {
			if (c->drifted && c->res->drift == DRIFT_REPORT)
				printf("? %s%s%s drifted (%s), policy '%s': not repaired\n", c->res->id,
				       c->res->path ? " " : "", c->res->path ? c->res->path : "",
				       c->what.ptr, drift_names[c->res->drift]);
			n[0]++;
			continue;
		}
		n[c->action]++;
		printf("%c %s %s%s%s%s%s%s\n", prefix[c->action - 1], action_names[c->action], c->res->id,
		       c->res->path ? " " : "", c->res->path ? c->res->path : "", c->what.len ? " (" : "",
		       c->what.len ? c->what.ptr : "", c->what.len ? ")" : "");
		if (c->diff.len && c->action == ACT_UPDATE && c->res->kind->diff) {
			fputs(c->diff.ptr, stdout);
			if (c->diff.ptr[c->diff.len - 1] != '\n')
				putchar('\n');
		}
	}
	printf("plan: %d to create, %d to update, %d to delete, %d unchanged\n", n[ACT_CREATE],
	       n[ACT_UPDATE], n[ACT_DELETE], n[0] + (int)p->nclean);
}

int cmd_plan(int argc, char **argv)
{
	struct run r = { 0 };
	pass_init(&r.p);
	int ret = opts_parse(&r.o, argc, argv, PLAN_USAGE, "crbtSCpRseoihy");
	if (ret)
		goto out;
	/* -o yaml: the composed manifests (dependsOn as written: not from the cache) */
	int yaml = r.o.output && !strcmp(r.o.output, "yaml");
	r.nocache = yaml;
	ret = run_prepare(&r, 1);
	if (ret) {
		if (r.rejected)
			print_diags(&r.p);
		goto out;
	}
	if (yaml) {
		struct buf b = BUF_INIT;
		manifest_emit(&r.p, &b);
		fwrite(b.ptr ? b.ptr : "", 1, b.len, stdout);
		buf_release(&b);
		goto out;
	}
	r.p.dry_run = 1;
	r.p.elide_clean = !r.o.json;	/* JSON lists every resource, text only what differs */
	if (pass_plan(&r.p, r.db) < 0) {
		if (r.p.diag.n)
			print_diags(&r.p);
		else
			fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
		goto out;
	}
	stage_plan(&r.p);
	fill_diffs(&r.p);
	int changes = 0, failed = 0;
	for (size_t i = 0; i < r.p.nchanges; i++) {
		changes += r.p.changes[i].action != ACT_NONE;
		failed += r.p.changes[i].outcome == OUT_FAILED;
	}
	if (r.o.json) {
		struct buf b = BUF_INIT;
		json_head(&b, &r.p);
		buf_adds(&b, ",\"changes\":[");
		int first = 1;
		for (size_t i = 0; i < r.p.nchanges; i++) {
			json_change(&b, &r.p.changes[i], first, 0);
			first = 0;
		}
		buf_addf(&b, "],\"pending\":%d,\"failed\":%d}\n", changes, failed);
		fputs(b.ptr, stdout);
		buf_release(&b);
	} else {
		print_plan_text(&r.p);
	}
	ret = failed ? EXIT_ERR : (r.o.exit_code && changes) ? EXIT_CHANGES : EXIT_OK;
out:
	run_release(&r);
	return ret;
}

/* ---- drift: what differs from the applied revision, and why it stays ---- */

#define DRIFT_USAGE "driftless drift [--state DIR] [--root DIR] [-c FILE] [--identity FILE] [--exit-code] [-o text|json]"

/*
 * Set r up to plan the applied revision from the git cache, offline, next to
 * a running agent: the source, entry and root recorded with that revision
 * (flags and the config may override the root and identity).
 */
int drift_prepare(struct run *r, struct arena *a, const char *usage)
{
	struct opts *o = &r->o;
	if (state_db_open(o, &r->db))	/* reads the config too */
		return EXIT_ERR;
	char *applied = db_meta_get(r->db, "applied_revision", a);
	char *src = db_meta_get(r->db, "applied_source", a);
	char *entry = db_meta_get(r->db, "applied_entry", a);
	char *root = db_meta_get(r->db, "applied_root", a);
	if (!applied) {
		fprintf(stderr, "error: no revision has been applied from '%s' yet\n", o->state);
		return EXIT_ERR;
	}
	if (src)
		o->cfg.url = src;
	if (!o->cfg.url) {
		fprintf(stderr, "error: the source of revision %.12s is not recorded; give '-c FILE'"
			" with 'source.url'\nusage: %s\n", applied, usage);
		return EXIT_USAGE;
	}
	o->cfg.commit = applied;
	o->cfg.branch = o->cfg.tag = o->cfg.semver = NULL;
	o->cfg.path = entry && *entry ? entry : NULL;
	if (root && !o->root_given)
		o->root = root;
	r->readonly = 1;
	return run_prepare(r, 1);
}

struct drift_row {
	struct change *c;
	int64_t since;
};

static const char *drift_state(const struct change *c, int64_t susp_until, int agent, char *buf,
			       size_t n)
{
	if (c->res->drift == DRIFT_IGNORE)
		return "ignored (driftless/drift: ignore)";
	if (c->res->drift == DRIFT_REPORT)
		return "held by its report policy (driftless/drift: report)";
	if (susp_until) {
		char t[32];
		render_time(t, sizeof(t), susp_until);
		snprintf(buf, n, "held by a suspension until %s", t);
		return buf;
	}
	if (c->outcome == OUT_FAILED)
		return "cannot be observed";
	return agent ? "being repaired by the agent" : "not repaired: no agent is running ('driftless apply' repairs it)";
}

int cmd_drift(int argc, char **argv)
{
	struct run r = { 0 };
	struct arena a;
	arena_init(&a);
	pass_init(&r.p);
	int ret = opts_parse(&r.o, argc, argv, DRIFT_USAGE, "csRieoh");
	if (ret)
		goto out;
	ret = drift_prepare(&r, &a, DRIFT_USAGE);
	if (ret) {
		if (r.rejected)
			print_diags(&r.p);
		goto out;
	}
	r.p.dry_run = 1;
	if (pass_plan(&r.p, r.db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
		goto out;
	}
	fill_diffs(&r.p);
	struct suspension sp;
	int64_t susp = db_suspend_active(r.db, now_ms(), &a, &sp) == 1 ? sp.until_ms : 0;
	char *pid = db_meta_get(r.db, "agent_pid", &a);
	int agent = pid && kill((pid_t)atoi(pid), 0) == 0;
	struct buf b = BUF_INIT;
	int n = 0;
	if (r.o.json) {
		buf_adds(&b, "{\"revision\":");
		buf_add_json_str(&b, r.p.rev.oid);
		buf_adds(&b, ",\"suspended\":");
		if (susp) {
			char t[32];
			render_time(t, sizeof(t), susp);
			buf_adds(&b, "{\"until\":");
			buf_add_json_str(&b, t);
			buf_adds(&b, ",\"by\":");
			buf_add_json_str(&b, sp.by);
			buf_adds(&b, ",\"reason\":");
			buf_add_json_str(&b, sp.reason);
			buf_addch(&b, '}');
		} else {
			buf_adds(&b, "null");
		}
		buf_adds(&b, ",\"resources\":[");
	}
	for (size_t i = 0; i < r.p.nchanges; i++) {
		struct change *c = &r.p.changes[i];
		if (c->action == ACT_NONE && !c->drifted && c->outcome != OUT_FAILED)
			continue;
		if (c->inv == NULL && c->action == ACT_DELETE)
			continue;
		char sbuf[96], since[32] = "";
		const char *state = drift_state(c, susp, agent, sbuf, sizeof(sbuf));
		int64_t when = db_drift_since(r.db, c->res->id);
		if (when > 0)
			render_time(since, sizeof(since), when);
		const char *what = c->what.len ? c->what.ptr : c->action == ACT_CREATE ? "missing" :
				   c->action == ACT_DELETE ? "present" : c->error ? c->error : "";
		if (r.o.json) {
			buf_adds(&b, n ? ",{\"id\":" : "{\"id\":");
			buf_add_json_str(&b, c->res->id);
			buf_adds(&b, ",\"kind\":");
			buf_add_json_str(&b, c->res->kind->name);
			buf_adds(&b, ",\"path\":");
			buf_add_json_str(&b, c->res->path);
			buf_adds(&b, ",\"changes\":");
			buf_add_json_str(&b, what);
			buf_adds(&b, ",\"since\":");
			buf_add_json_str(&b, since[0] ? since : NULL);
			buf_adds(&b, ",\"policy\":");
			buf_add_json_str(&b, drift_names[c->res->drift]);
			buf_adds(&b, ",\"state\":");
			buf_add_json_str(&b, state);
			buf_adds(&b, ",\"diff\":");
			buf_add_json_str(&b, c->diff.len ? c->diff.ptr : NULL);
			buf_addch(&b, '}');
		} else {
			buf_addf(&b, "~ %s %s (%s)\n    since %s; %s\n", c->res->id,
				 c->res->path ? c->res->path : "", what,
				 since[0] ? since : "(not seen by the agent)", state);
			if (c->diff.len)
				buf_add(&b, c->diff.ptr, c->diff.len);
		}
		n++;
	}
	if (r.o.json)
		buf_adds(&b, "]}\n");
	else if (n)
		buf_addf(&b, "drift: %d resource%s differ%s from revision %.12s\n", n, n == 1 ? "" : "s",
			 n == 1 ? "s" : "", r.p.rev.oid);
	else
		buf_addf(&b, "drift: none; the host matches revision %.12s\n", r.p.rev.oid);
	struct buf shown = BUF_INIT;
	redact_buf(&shown, b.ptr ? b.ptr : "", b.len);
	fwrite(shown.ptr ? shown.ptr : "", 1, shown.len, stdout);
	buf_release(&shown);
	buf_release(&b);
	ret = r.o.exit_code && n ? EXIT_CHANGES : EXIT_OK;
out:
	run_release(&r);
	arena_release(&a);
	return ret;
}

int cmd_apply(int argc, char **argv)
{
	struct run r = { 0 };
	pass_init(&r.p);
	int ret = opts_parse(&r.o, argc, argv, APPLY_USAGE, "crbtSCpRsdoih");
	if (ret)
		goto out;
	ret = run_prepare(&r, 1);
	if (ret) {
		if (r.rejected) {
			print_diags(&r.p);
			if (!r.o.dry_run)
				pass_record_rejection(&r.p, r.db, "apply");
		}
		goto out;
	}
	r.p.dry_run = r.o.dry_run;
	r.p.elide_clean = !r.o.json;	/* JSON lists every resource, text only what differs */
	if (pass_plan(&r.p, r.db) < 0) {
		if (r.p.diag.n) {
			print_diags(&r.p);
			if (!r.o.dry_run)
				pass_record_rejection(&r.p, r.db, "apply");
		} else {
			fprintf(stderr, "error: %s\n", err_msg());
		}
		ret = EXIT_ERR;
		goto out;
	}
	stage_plan(&r.p);
	if (r.p.interrupted && !r.o.dry_run)
		fprintf(stderr, "warning: recovering from an interrupted apply of %.12s\n", r.p.interrupted);
	r.p.batching = 1;
	if (pass_apply(&r.p) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
		goto out;
	}
	stage("apply");
	r.p.one_shot = 1;	/* the process ends after this pass */
	if (!r.o.dry_run && pass_record(&r.p, "apply") < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
		goto out;
	}
	stage("record");
	struct pass *p = &r.p;
	int64_t ms = (now_ms() - p->started_ns / 1000000);
	if (r.o.json) {
		struct buf b = BUF_INIT;
		json_head(&b, p);
		buf_addf(&b, ",\"dryRun\":%s,\"result\":", r.o.dry_run ? "true" : "false");
		buf_add_json_str(&b, pass_result(p));
		buf_adds(&b, ",\"counts\":{");
		for (int i = 0; i < OUT__COUNT; i++)
			buf_addf(&b, "%s\"%s\":%d", i ? "," : "", outcome_names[i], p->counts[i]);
		buf_addf(&b, "},\"durationMs\":%lld,\"resources\":[", (long long)ms);
		int first = 1;
		for (size_t i = 0; i < p->nchanges; i++) {
			json_change(&b, &p->changes[i], first, 1);
			first = 0;
		}
		buf_adds(&b, "]}\n");
		fputs(b.ptr, stdout);
		buf_release(&b);
	} else {
		for (size_t i = 0; i < p->nchanges; i++) {
			struct change *c = &p->changes[i];
			if (c->outcome == OUT_UNCHANGED) {
				if (c->action == ACT_DELETE)
					printf("= %s kept%s%s: %s\n", c->res->id, c->res->path ? " " : "",
					       c->res->path ? c->res->path : "", c->what.ptr);
				if (c->drifted && c->res->drift == DRIFT_REPORT)
					printf("? %s%s%s drifted (%s), policy '%s': not repaired\n", c->res->id,
					       c->res->path ? " " : "", c->res->path ? c->res->path : "",
					       c->what.ptr, drift_names[c->res->drift]);
				continue;
			}
			if (c->outcome == OUT_FAILED || c->outcome == OUT_SKIPPED) {
				printf("! %s %s%s%s: %s\n", c->res->id, outcome_names[c->outcome],
				       c->res->path ? " " : "", c->res->path ? c->res->path : "", c->error);
				continue;
			}
			printf("%c %s %s%s%s%s%s%s\n", prefix[c->action - 1], c->res->id,
			       outcome_names[c->outcome], c->res->path ? " " : "",
			       c->res->path ? c->res->path : "",
			       c->what.len ? " (" : "", c->what.len ? c->what.ptr : "",
			       c->what.len ? ")" : "");
		}
		printf("%s: revision %.12s %s: %d created, %d updated, %d deleted, %d unchanged,"
		       " %d failed, %d skipped in %lld ms\n", r.o.dry_run ? "apply (dry run)" : "apply",
		       p->rev.oid, pass_result(p), p->counts[OUT_CREATED], p->counts[OUT_UPDATED],
		       p->counts[OUT_DELETED], p->counts[OUT_UNCHANGED], p->counts[OUT_FAILED],
		       p->counts[OUT_SKIPPED], (long long)ms);
	}
	ret = p->counts[OUT_FAILED] || p->counts[OUT_SKIPPED] ? EXIT_ERR : EXIT_OK;
	pass_drop_plan(p);	/* before the cache is written: peak memory is one of them */
out:
	run_release(&r);
	return ret;
}

int cmd_validate(int argc, char **argv)
{
	struct run r = { 0 };
	pass_init(&r.p);
	int ret = opts_parse(&r.o, argc, argv, VALIDATE_USAGE, "crbtSCpPh");
	if (ret)
		goto out;
	if (r.o.positional) {
		if (r.o.repo) {
			fprintf(stderr, "error: give either DIR or '--repo', not both\nusage: %s\n", VALIDATE_USAGE);
			ret = EXIT_USAGE;
			goto out;
		}
		struct stat st;
		if (stat(r.o.positional, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "error: '%s' is not a directory\nusage: %s\n", r.o.positional,
				VALIDATE_USAGE);
			ret = EXIT_USAGE;
			goto out;
		}
		if (r.o.branch || r.o.tag || r.o.commit || r.o.semver) {
			fprintf(stderr, "error: a ref flag goes with '--repo', not with DIR\nusage: %s\n",
				VALIDATE_USAGE);
			ret = EXIT_USAGE;
			goto out;
		}
		r.o.repo = r.o.positional;
		r.import_dir = 1;
	}
	/* validate never touches the host: a private state directory and root */
	char tmpl[] = "/tmp/driftless-validate.XXXXXX";
	char *tmp = mkdtemp(tmpl);
	if (!tmp) {
		fprintf(stderr, "error: cannot create a scratch directory\n");
		ret = EXIT_ERR;
		goto out;
	}
	r.o.state = tmp;
	r.o.root = tmp;
	ret = run_prepare(&r, 0);
	if (r.rejected) {
		diag_sort(&r.p.diag);
		diag_print(&r.p.diag, stderr);
		fprintf(stderr, "error: %zu problem%s found\n", r.p.diag.n, r.p.diag.n == 1 ? "" : "s");
	} else if (!ret) {
		printf("manifests OK (%zu resource%s at %.12s)\n", r.p.nres, r.p.nres == 1 ? "" : "s",
		       r.p.rev.oid);
	}
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
out:
	run_release(&r);
	return ret;
}
