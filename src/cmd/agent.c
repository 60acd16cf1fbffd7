/* SPDX-License-Identifier: MIT */
/*
 * The agent: one event loop (signalfd, timerfds, inotify, a pipe from the
 * fetch child) that keeps the host equal to Git. Fetches run in a child
 * process so the loop never blocks on the network; passes and drift repairs
 * run in the loop, one at a time, so two never interleave.
 *
 * Between them the agent holds only what its watches need of the applied
 * revision (struct wres: id, path, two flags). The whole pass (cur) stays
 * for COOL_MS after a pass or a repair, so a burst of drift is repaired at
 * once, and is then freed; the next repair loads it again from the
 * desired-state cache the pass left (agent_warm).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "core/check.h"
#include "core/vars.h"
#include "daemon/loop.h"
#include "daemon/watch.h"
#include "daemon/supervise.h"
#include "kinds/kinds.h"
#include "fleet/fleet.h"
#include "http/http.h"
#include "lib/err.h"
#include "source/git.h"
#include "state/db.h"

#define AGENT_USAGE "driftless agent [-c FILE] [--repo URL [--branch NAME | --tag NAME | --semver RANGE | --commit SHA] [--path DIR]] [--root DIR] [--identity FILE] [--state DIR] [--interval DUR] [--listen ADDR]"

#define DEBOUNCE_MS 2		/* coalesce a burst of events on one file */
#define FLAP_WINDOW_MS 60000	/* more repairs than FLAP_MAX in this window... */
#define FLAP_MAX 5
#define FLAP_BACKOFF_MIN_MS 1000	/* ...back off, doubling up to the max */
#define FLAP_BACKOFF_MAX_MS (15 * 60 * 1000)
#define POISON_LIMIT 3		/* crashes on one revision before it is skipped */
#define TRIM_AFTER 256		/* a repair of more resources gives its memory back */
#define DB_CACHE_KIB 512	/* SQLite's page cache (2 MiB by default) */
#define COOL_MS 5000		/* the applied pass in full is kept this long after use
				 * (DRIFTLESS_AGENT_COOL_MS, for tests: 1 cools after each) */

/* What the watches need of a resource of the applied revision. */
struct wres {
	const char *id;
	const char *path;	/* NULL: not a path kind */
	unsigned char ignore;	/* drift: ignore */
	unsigned char purge_dir;	/* a Directory with purge: a new entry in it is drift */
};

struct flap {
	int64_t window_start;
	int count;
	int64_t backoff_ms;
	int64_t next_allowed;
	int reported;
};

struct agent {
	struct opts o;
	struct config *cfg;		/* in force (o.cfg, or a reloaded one) */
	struct config *cur_cfg;		/* the one cur was built with: after a reload whose
					 * pass failed, not cfg (cur's policy points into it) */
	struct loop loop;
	struct db *db;
	/* the applied revision: oid and ref ("" before the first), its
	 * desired-state cache key, what the watches need of its resources,
	 * and the pass itself while in use (NULL when cooled: agent_warm) */
	char cur_oid[41], cur_ref[256];
	char *cur_key;
	struct wres *idx;
	size_t nidx;
	struct hmap idx_path;		/* path -> wres */
	struct arena idx_arena;
	struct pass *cur;
	int cur_partial;		/* cur's inv and stats hold only what repairs read */
	int sigfd, poll_tfd, resync_tfd, debounce_tfd, cool_tfd;
	int64_t cool_ms;
	int debounce_armed;
	struct watch watch;
	struct hmap dirty;		/* id -> wres */
	struct hmap flaps;		/* id (heap) -> struct flap */
	pid_t fetch_pid;
	int fetch_fd;
	struct buf fetch_out;
	int fetch_again;
	int fetch_failures;
	char bad_rev[41];
	struct http *http;		/* http: status page, API, webhooks, notifications */
	struct fleet *fleet;		/* fleet: etcd registration, status, rollout gate (NULL: none) */
	struct supervisor *sup;		/* services: the builtin Service backend (daemon/supervise.c) */
	/* driftless suspend: drift is held (recorded, not repaired) and new
	 * revisions wait in held_rev until susp_until or a resume */
	int64_t susp_until;
	int susp_tfd;
	char held_rev[41], held_ref[256];
	int resume_pending;		/* resumed: fetch first, then apply and repair */
	const char *url;		/* absolute form of the source URL */
	char *url_buf;
	char *cache_dir;
	sigset_t sigs;
};

static void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void alog(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void meta_set(struct agent *a, const char *key, const char *val)
{
	if (db_meta_set(a->db, key, val) < 0)
		alog("agent: %s", err_msg());
}

static void meta_set_time(struct agent *a, const char *key)
{
	char ts[32];
	snprintf(ts, sizeof(ts), "%lld", (long long)wall_ms());
	meta_set(a, key, ts);
}

/* ---- passes ---- */

static int interrupted(void *ctx)
{
	struct agent *a = ctx;
	sigset_t pending;
	if (sigpending(&pending) < 0)
		return 0;
	(void)a;
	return sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT);
}

static void pass_free(struct pass *p)
{
	if (!p)
		return;
	gitsrc_free(p->git);
	fs_root_close(&p->root);
	pass_release(p);
	free(p);
}

static void log_outcomes(struct pass *p, const char *why)
{
	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *c = &p->changes[i];
		if (c->outcome == OUT_UNCHANGED && !(c->drifted && c->res->drift == DRIFT_REPORT))
			continue;
		if (c->outcome == OUT_FAILED || c->outcome == OUT_SKIPPED)
			alog("%s: %s %s: %s", c->res->id, outcome_names[c->outcome],
			     c->res->path ? c->res->path : "", c->error);
		else if (c->outcome == OUT_UNCHANGED)
			alog("%s: drift reported, not repaired (%s) %s", c->res->id, c->what.ptr,
			     c->res->path ? c->res->path : "");
		else
			alog("%s: %s %s%s%s%s (%s)", c->res->id, outcome_names[c->outcome],
			     c->res->path ? c->res->path : "", c->what.len ? " (" : "",
			     c->what.len ? c->what.ptr : "", c->what.len ? ")" : "", why);
	}
}

static void watch_cur(struct agent *a)
{
	if (a->cur && watch_sync(&a->watch, a->cur) < 0)
		alog("agent: %s", err_msg());
}

/* Crash-loop protection: count the passes started on each revision and
 * not finished; a revision that took the agent down POISON_LIMIT times is
 * skipped until a new one arrives. The count is kept per revision, so a
 * pass on another revision in between does not reset it. */
static int poison_enter(struct agent *a, const char *oid)
{
	struct arena tmp;
	arena_init(&tmp);
	char key[64];
	snprintf(key, sizeof(key), "attempts:%s", oid);
	char *cnt = db_meta_get(a->db, key, &tmp);
	int n = cnt ? atoi(cnt) + 1 : 1;
	arena_release(&tmp);
	if (n > POISON_LIMIT) {
		snprintf(a->bad_rev, sizeof(a->bad_rev), "%s", oid);
		meta_set(a, "bad_revision", oid);
		alog("agent: revision %.12s stopped the agent %d times; it is skipped until a newer"
		     " revision arrives", oid, n - 1);
		return -1;
	}
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", n);
	meta_set(a, key, buf);
	return 0;
}

static void poison_leave(struct agent *a, const char *oid)
{
	char key[64];
	snprintf(key, sizeof(key), "attempts:%s", oid);
	meta_set(a, key, NULL);
}

/* Free a config that came from a reload once neither the agent (cfg) nor
 * the applied pass (cur_cfg) uses it. */
static void cfg_drop(struct agent *a, struct config *c)
{
	if (!c || c == &a->o.cfg || c == a->cfg || c == a->cur_cfg)
		return;
	config_release(c);
	free(c);
}

/* cur was just built with cfg: the config it used before may go. */
static void cfg_adopt(struct agent *a)
{
	struct config *prev = a->cur_cfg;
	a->cur_cfg = a->cfg;
	cfg_drop(a, prev);
}

/* A pass with the agent's settings from cfg, on nothing yet. */
static struct pass *pass_for(struct agent *a, const struct config *cfg)
{
	struct pass *p = xcalloc(1, sizeof(*p));
	pass_init(p);
	const char *entry = "";
	if (cfg->path && strcmp(cfg->path, ".") && strcmp(cfg->path, "/") &&
	    check_repo_path(&p->arena, "", cfg->path, strlen(cfg->path), &entry))
		entry = "";
	p->entry = entry;
	p->policy = &cfg->policy;
	p->identity_file = cfg->identity ? cfg->identity : DEFAULT_IDENTITY;
	p->allow_empty = cfg->allow_empty;
	p->prune = cfg->prune;
	p->state_dir = a->o.state;
	p->db = a->db;
	p->batching = 1;
	p->hold_drift = a->susp_until > 0;
	p->interrupt = interrupted;
	p->interrupt_ctx = a;
	p->git_cache = a->cache_dir;
	p->git_url = a->url;
	return p;
}

static void mark_all(struct agent *a);

/* Forget what the watches know of the applied revision: a pass at
 * 100,000 files does not hold it (10 MB) through its load. */
static void idx_drop(struct agent *a)
{
	hmap_release(&a->idx_path);
	hmap_init(&a->idx_path);
	arena_release(&a->idx_arena);
	arena_init(&a->idx_arena);
	free(a->idx);
	a->idx = NULL;
	a->nidx = 0;
}

/* What the watches need of the applied revision p, kept when p goes. */
static void idx_build(struct agent *a, const struct pass *p)
{
	const struct kind *dirk = kind_find("Directory");
	idx_drop(a);
	a->idx = xcalloc(p->nres + 1, sizeof(*a->idx));
	a->nidx = p->nres;
	hmap_reserve(&a->idx_path, p->nres);
	for (size_t i = 0; i < p->nres; i++) {
		const struct resource *res = p->res[i];
		struct wres *w = &a->idx[i];
		w->id = arena_strdup(&a->idx_arena, res->id);
		w->ignore = res->drift == DRIFT_IGNORE;
		if (!res->path)
			continue;
		w->path = arena_strdup(&a->idx_arena, res->path);
		if (res->kind == dirk) {
			const struct field *f;
			for (f = dirk->fields; f->name && strcmp(f->name, "purge"); f++)
				;
			w->purge_dir = f->name && *(const int *)((const char *)res->spec + f->offset) == 1;
		}
		hmap_put(&a->idx_path, w->path, w);
	}
}

/* The applied pass in full for a repair: kept from the last pass or
 * repair, or loaded again from the desired-state cache that pass read or
 * wrote (its key is remembered), or, when the cache is gone or was
 * replaced by another command, from Git and validated again. */
static struct pass *agent_warm(struct agent *a)
{
	if (a->cur || !a->cur_oid[0])
		return a->cur;
	struct config *cfg = a->cur_cfg ? a->cur_cfg : a->cfg;
	struct pass *p = pass_for(a, cfg);
	pass_set_vars(p, cfg->var_keys, cfg->var_vals, cfg->nvars);
	pass_set_selector(p, cfg->branch, cfg->tag, cfg->semver, cfg->commit);
	if (fs_root_open(&p->root, a->o.root) < 0 || gitsrc_open(&p->git, a->cache_dir, a->url) < 0 ||
	    gitsrc_resolve(p->git, a->cur_oid, a->cur_ref, &p->rev) < 0)
		goto fail;
	if (cache_load_key(p, a->o.state, a->cur_key) != 0) {
		if (manifest_load(p) < 0 || pass_validate(p) < 0 || p->diag.n) {
			if (p->diag.n) {
				diag_sort(&p->diag);
				err_set("revision %.12s no longer validates: %s", a->cur_oid,
					p->diag.v[0].msg);
			}
			goto fail;
		}
		/* the next warm-up reads it again */
		if (cache_store(p, a->o.state) < 0)
			alog("agent: %s", err_msg());
		free(a->cur_key);
		a->cur_key = p->cache_key ? xstrdup(p->cache_key) : NULL;
	}
	pass_drop_yaml(p);
	gitsrc_free(p->git);
	p->git = NULL;
	/* as pass_plan does: after a rebuilt database, what has no inventory
	 * row yet is taken over, not refused as someone else's */
	p->rebuilding = db_meta_get(a->db, "rebuilt", &p->arena) != NULL;
	a->cur = p;
	a->cur_partial = 1;	/* its inventory and stat cache: read as repairs need them */
	return p;
fail:
	alog("agent: cannot load the applied revision %.12s for drift repair: %s", a->cur_oid,
	     err_msg());
	pass_free(p);
	return NULL;
}

/* Give the applied pass's memory back; the watches keep their index. */
static void agent_cool(struct agent *a)
{
	if (!a->cur)
		return;
	pass_free(a->cur);
	a->cur = NULL;
	a->cur_partial = 0;
	db_release_memory(a->db);
	malloc_trim(0);
}

static void on_cool(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	agent_cool(ctx);
}

/*
 * A whole pass on revision oid: load and validate it, plan (only what
 * changed in Git when incremental), apply, record. On success it becomes
 * cur; on rejection cur (the last good revision) stays in force.
 */
static int agent_pass(struct agent *a, const char *oid, const char *ref, int full)
{
	if (a->bad_rev[0] && !strcmp(a->bad_rev, oid))
		return -1;
	if (poison_enter(a, oid) < 0)
		return -1;
	int64_t t0 = mono_ms();	/* http: for the reconcile duration histogram */
	agent_cool(a);	/* the pass below reads what it needs itself */
	/* the watches' index is built again from the revision in force at the
	 * end; repairs pending on it are checked again if that is this one */
	int had_dirty = a->dirty.n > 0;
	hmap_release(&a->dirty);
	hmap_init(&a->dirty);
	idx_drop(a);
	struct pass *p = pass_for(a, a->cfg);
	int ret = -1;
	if (fs_root_open(&p->root, a->o.root) < 0 || gitsrc_open(&p->git, a->cache_dir, a->url) < 0 ||
	    gitsrc_resolve(p->git, oid, ref, &p->rev) < 0) {
		alog("agent: %s", err_msg());
		goto out;
	}
	/* signed commits (source.verify): a refused revision is rejected like a bad manifest */
	int vr = source_verify(p, a->cfg, a->o.state, a->db);
	if (vr < 0) {
		alog("agent: %s", err_msg());
		goto out;
	}
	/* a remote that went backwards (force-push, reset) is rejected the same way */
	pass_set_vars(p, a->cfg->var_keys, a->cfg->var_vals, a->cfg->nvars);
	pass_set_selector(p, a->cfg->branch, a->cfg->tag, a->cfg->semver, a->cfg->commit);
	int rw = vr ? 0 : pass_check_rewind(p, a->cfg->allow_rewind);
	if (rw > 0)
		alog("agent: %.12s does not descend from the applied revision; accepted because of"
		     " 'source.allowRewind'", oid);
	vr |= rw < 0;
	int cached = !vr && cache_load(p, a->o.state) == 0;
	if (!cached && !vr)
		pass_load_begin(p);
	int bad = !cached && !vr && manifest_load(p) < 0;
	if (!cached && (vr || pass_validate(p) < 0 || bad || p->diag.n)) {
		diag_sort(&p->diag);
		for (size_t i = 0; i < p->diag.n && i < 50; i++) {
			struct diag_item *d = &p->diag.v[i];
			if (d->file)
				alog("agent: revision %.12s rejected: %s:%d:%d: %s", oid, d->file, d->line,
				     d->col, d->msg);
			else
				alog("agent: revision %.12s rejected: %s", oid, d->msg);
		}
		pass_record_rejection(p, a->db, "agent");
		ret = 1;
		goto out;
	}
	pass_drop_yaml(p);
	/* a big revision is planned from the cache it is stored in, as the
	 * CLI's is: what the load left is not held through the pass */
	if (!cached) {
		int c = pass_compact(p, a->o.state, NULL);
		if (c < 0) {
			alog("agent: %s", err_msg());
			goto out;
		}
		cached = c == 0;
	}
	p->incremental = !full && a->cur_oid[0];
	p->elide_clean = 1;	/* the agent reports and logs only what differs */
	if (pass_plan(p, a->db) < 0) {
		if (p->diag.n) {
			for (size_t i = 0; i < p->diag.n; i++)
				alog("agent: revision %.12s rejected: %s", oid, p->diag.v[i].msg);
			pass_record_rejection(p, a->db, "agent");
			ret = 1;
		} else {
			alog("agent: %s", err_msg());
		}
		goto out;
	}
	if (p->interrupted)
		alog("agent: recovering from an interrupted apply of %.12s", p->interrupted);
	if (pass_apply(p) < 0 || pass_record(p, "agent") < 0) {
		alog("agent: %s", err_msg());
		goto out;
	}
	if (!cached && cache_store(p, a->o.state) < 0)
		alog("agent: %s", err_msg());
	pass_pcache_commit(p);
	log_outcomes(p, full ? "full pass" : "new revision");
	alog("agent: revision %.12s %s: %d created, %d updated, %d deleted, %d unchanged, %d failed,"
	     " %d skipped", oid, pass_result(p), p->counts[OUT_CREATED], p->counts[OUT_UPDATED],
	     p->counts[OUT_DELETED], p->counts[OUT_UNCHANGED], p->counts[OUT_FAILED],
	     p->counts[OUT_SKIPPED]);
	/* the new revision is the one to hold the host to; its git objects are
	 * read again only when a drift repair needs a file's content */
	pass_free(a->cur);
	a->cur = p;
	snprintf(a->cur_oid, sizeof(a->cur_oid), "%s", p->rev.oid);
	snprintf(a->cur_ref, sizeof(a->cur_ref), "%s", p->rev.ref);
	free(a->cur_key);
	a->cur_key = p->cache_key ? xstrdup(p->cache_key) : NULL;
	cfg_adopt(a);
	service_supervise(a->sup, a->cur);	/* services: look after those of this revision */
	gitsrc_free(p->git);
	p->git = NULL;
	p = NULL;
	watch_cur(a);
	timer_arm(a->cool_tfd, a->cool_ms);
	ret = 0;
out:
	/* http: count the pass, notify sync-succeeded or sync-failed */
	http_note_pass(a->http, p ? p : a->cur, ret == 1 ? "rejected" : ret < 0 ? "failed" : NULL,
		       mono_ms() - t0);
	/* fleet: publish this host's status */
	fleet_note_pass(a->fleet, p ? p : a->cur, ret == 1 ? "rejected" : ret < 0 ? "failed" : NULL);
	poison_leave(a, oid);
	pass_free(p);
	/* drift repair plans again from the resources: the changes can go, and
	 * the index with them (a repair reads the rows it needs, index_for();
	 * at 100,000 files the index is 30 MB of the 100 the pass held) */
	if (a->cur) {
		pass_drop_plan(a->cur);
		pass_index_drop(a->cur);
		a->cur_partial = 1;
	}
	/* the watches map paths to the revision in force: this one, or after a
	 * failure the one before (whose pending repairs are checked again) */
	if (!a->idx && a->cur_oid[0]) {
		struct pass *w = agent_warm(a);
		if (w) {
			idx_build(a, w);
			if (had_dirty && ret != 0)
				mark_all(a);
			timer_arm(a->cool_tfd, a->cool_ms);
		}
	}
	db_release_memory(a->db);
	malloc_trim(0);	/* give the previous revision's memory back */
	return ret;
}

/* fleet: a new revision the rollout gate let through; the gate learns how
 * it went (a failure halts the group's rollout of it) */
static void apply_new(struct agent *a, const char *oid, const char *ref)
{
	int r = agent_pass(a, oid, ref, 0);
	fleet_rollout_done(a->fleet, oid, r == 1 ? "rejected" : r < 0 || !a->cur ? "failed" :
					  pass_result(a->cur));
}

/* fleet: the gate opened later, from the loop (a slot is held now) */
static void on_fleet_go(void *ctx, const char *oid, const char *ref)
{
	struct agent *a = ctx;
	if (a->susp_until || !strcmp(a->cur_oid, oid)) {
		if (a->susp_until && strcmp(a->held_rev, oid)) {
			alog("agent: new revision %.12s held: suspended", oid);
			snprintf(a->held_rev, sizeof(a->held_rev), "%s", oid);
			snprintf(a->held_ref, sizeof(a->held_ref), "%s", ref);
			meta_set(a, "held_revision", oid);
		}
		fleet_release(a->fleet);	/* not now: give the slot back */
		return;
	}
	alog("agent: new revision %.12s", oid);
	apply_new(a, oid, ref);
}

/* ---- drift ---- */

static void describe(struct buf *b, const struct change *c)
{
	if (!c->exists) {
		buf_adds(b, "missing");
		return;
	}
	buf_addf(b, "%s %04o %u:%u", node_type_names[c->type], (unsigned)c->mode, (unsigned)c->uid,
		 (unsigned)c->gid);
	if (c->oid[0])
		buf_addf(b, " %s", c->oid);
}

static struct flap *flap_of(struct agent *a, const char *id)
{
	struct flap *f = hmap_get(&a->flaps, id);
	if (!f) {
		f = xcalloc(1, sizeof(*f));
		hmap_put(&a->flaps, xstrdup(id), f);
	}
	return f;
}

static void mark_dirty(struct agent *a, struct wres *w)
{
	if (w->ignore)
		return;
	hmap_put(&a->dirty, w->id, w);
	if (!a->debounce_armed) {
		timer_arm(a->debounce_tfd, DEBOUNCE_MS);
		a->debounce_armed = 1;
	}
}

static void mark_all(struct agent *a)
{
	for (size_t i = 0; i < a->nidx; i++)
		mark_dirty(a, &a->idx[i]);
}

static void on_path(void *ctx, const char *path)
{
	struct agent *a = ctx;
	struct wres *w = hmap_get(&a->idx_path, path);
	if (w) {
		mark_dirty(a, w);
		return;
	}
	/* a new entry in a purged directory is drift of that directory */
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		struct wres *up = hmap_get(&a->idx_path, dir);
		if (up && up->purge_dir)
			mark_dirty(a, up);
	}
	free(dir);
	/* a watched directory went away: everything below it is suspect */
	size_t n = strlen(path);
	for (size_t i = 0; i < a->nidx; i++) {
		const char *rp = a->idx[i].path;
		if (rp && !strncmp(rp, path, n) && rp[n] == '/')
			mark_dirty(a, &a->idx[i]);
	}
}

static void on_inotify(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	int overflow = 0;
	(void)l;
	(void)fd;
	(void)events;
	if (watch_read(&a->watch, on_path, a, &overflow) < 0)
		alog("agent: %s", err_msg());
	if (overflow) {
		alog("agent: too many file events at once (inotify queue overflow): rescanning everything");
		mark_all(a);
	}
}

/* The inventory rows and stat cache entries a repair of list needs: there
 * already after a pass; read for these resources alone after a warm-up,
 * or all at once for a repair of many (a resume, an inotify overflow). */
#define INDEX_ALL_AFTER 256
static int index_for(struct agent *a, struct pass *p, struct resource **list, size_t n)
{
	if (!a->cur_partial)
		return 0;
	if (n > INDEX_ALL_AFTER) {
		hmap_release(&p->inv);
		hmap_release(&p->stats);
		hmap_init(&p->inv);
		hmap_init(&p->stats);
		if (db_index_load(a->db, &p->arena, &p->inv, &p->stats, NULL) < 0)
			return -1;
		a->cur_partial = 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (db_index_get(a->db, &p->arena, &p->inv, &p->stats, list[i]->id, list[i]->path) < 0)
			return -1;
	return 0;
}

/* Repair (or report) what the watches flagged, resource by resource. */
static void repair_dirty(struct agent *a)
{
	int64_t t0 = mono_ms(), now = t0, next = 0;
	struct wres **due = xmalloc((a->dirty.n + 1) * sizeof(*due));
	size_t n = 0, it = 0;
	void *val;
	struct hmap later;
	hmap_init(&later);
	while (hmap_next(&a->dirty, &it, NULL, &val)) {
		struct wres *w = val;
		struct flap *f = hmap_get(&a->flaps, w->id);
		if (f && f->next_allowed > now) {
			hmap_put(&later, w->id, w);
			if (!next || f->next_allowed < next)
				next = f->next_allowed;
			continue;
		}
		due[n++] = w;
	}
	hmap_release(&a->dirty);
	a->dirty = later;
	if (next) {
		timer_arm(a->debounce_tfd, next - now > 0 ? next - now : 1);
		a->debounce_armed = 1;
	}
	/* only now the pass: one backed off is not worth loading it for;
	 * if it cannot be loaded, the next full pass checks everything */
	struct pass *p = n ? agent_warm(a) : NULL;
	if (!p) {
		free(due);
		return;
	}
	timer_arm(a->cool_tfd, a->cool_ms);
	struct resource **list = xmalloc((n + 1) * sizeof(*list));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		struct resource *res = hmap_get(&p->by_id, due[i]->id);
		if (res)
			list[m++] = res;
	}
	free(due);
	n = m;
	if (!n) {
		free(list);
		return;
	}
	/* keep the dependency order of the pass */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && list[j - 1]->order > list[j]->order; j--) {
			struct resource *t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	if (index_for(a, p, list, n) < 0) {
		alog("agent: %s", err_msg());
		free(list);
		return;
	}
	pass_plan_subset(p, list, n);
	free(list);
	int work = 0;
	for (size_t i = 0; i < p->nchanges; i++)
		work |= p->changes[i].action != ACT_NONE || p->changes[i].drifted ||
			p->changes[i].outcome == OUT_FAILED;
	if (!work) {
		pass_drop_plan(p);
		return;	/* our own writes, or a touch that changed nothing we manage */
	}
	struct buf *before = xcalloc(p->nchanges, sizeof(*before));
	for (size_t i = 0; i < p->nchanges; i++)
		describe(&before[i], &p->changes[i]);
	if (pass_apply(p) < 0 || pass_record(p, "drift") < 0)
		alog("agent: %s", err_msg());
	gitsrc_free(p->git);
	p->git = NULL;
	int64_t ms = mono_ms() - t0;
	http_note_repair(a->http, ms);	/* http */
	int rewatch = 0;
	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *c = &p->changes[i];
		if (c->action == ACT_NONE && !c->drifted && c->outcome != OUT_FAILED)
			continue;
		struct drift_event e = {
			.when_ms = wall_ms(), .res_id = c->res->id, .path = c->res->path,
			.policy = drift_names[c->res->drift],
			.what = c->what.len ? c->what.ptr : c->action == ACT_CREATE ? "missing" :
				c->action == ACT_DELETE ? "present" : "",
			.before = before[i].ptr, .commit = p->rev.oid,
		};
		struct buf after = BUF_INIT;
		if (c->outcome == OUT_FAILED || c->outcome == OUT_SKIPPED) {
			e.action = "failed";
			buf_adds(&after, c->error ? c->error : "");
		} else if (c->action == ACT_NONE) {
			e.action = p->hold_drift && c->res->drift == DRIFT_REPAIR ? "held" : "reported";
			describe(&after, c);
		} else {
			e.action = "repaired";
			struct change now_c = { 0 };
			now_c.res = c->res;
			struct stat st;
			int r = fs_lstat(&p->root, c->res->path, &st);
			now_c.exists = r == 0;
			if (r == 0) {
				now_c.type = S_ISREG(st.st_mode) ? NODE_FILE : S_ISDIR(st.st_mode) ? NODE_DIR :
					     S_ISLNK(st.st_mode) ? NODE_LINK : NODE_OTHER;
				now_c.mode = st.st_mode & 07777;
				now_c.uid = st.st_uid;
				now_c.gid = st.st_gid;
				if (c->new_oid[0])
					memcpy(now_c.oid, c->new_oid, sizeof(now_c.oid));
			}
			describe(&after, &now_c);
			rewatch |= c->res->kind == kind_find("Directory");
		}
		e.after = after.ptr;
		if (db_drift_add(a->db, &e) < 0)
			alog("agent: %s", err_msg());
		http_note_drift(a->http, &e);	/* http */
		fleet_note_drift(a->fleet, e.action);	/* fleet */
		if (!strcmp(e.action, "repaired"))
			alog("%s: drift repaired (%s) %s in %lld ms", c->res->id, e.what, c->res->path,
			     (long long)ms);
		else if (!strcmp(e.action, "reported"))
			alog("%s: drift reported, not repaired (%s) %s", c->res->id, e.what, c->res->path);
		else if (!strcmp(e.action, "held"))
			alog("%s: drift held, not repaired: suspended (%s) %s", c->res->id, e.what,
			     c->res->path);
		else
			alog("%s: drift repair failed %s: %s", c->res->id, c->res->path, after.ptr);
		buf_release(&after);

		/* someone keeps changing it: back off instead of fighting */
		struct flap *f = flap_of(a, c->res->id);
		int64_t t = mono_ms();
		if (t - f->window_start > FLAP_WINDOW_MS) {
			f->window_start = t;
			f->count = 0;
			if (f->backoff_ms && t > f->next_allowed + FLAP_WINDOW_MS) {
				f->backoff_ms = 0;
				f->reported = 0;
			}
		}
		if (++f->count > FLAP_MAX) {
			f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : FLAP_BACKOFF_MIN_MS;
			if (f->backoff_ms > FLAP_BACKOFF_MAX_MS)
				f->backoff_ms = FLAP_BACKOFF_MAX_MS;
			f->next_allowed = t + f->backoff_ms;
			if (!f->reported) {
				f->reported = 1;
				struct drift_event fe = e;
				fe.action = "backed-off";
				fe.what = "changed again and again by another writer; repairs are backed off";
				fe.after = NULL;
				db_drift_add(a->db, &fe);
				http_note_drift(a->http, &fe);	/* http */
				alog("%s: keeps being changed by someone else (%d times in %d s); repairs back off"
				     " exponentially", c->res->id, f->count, FLAP_WINDOW_MS / 1000);
			}
		}
	}
	for (size_t i = 0; i < p->nchanges; i++)
		buf_release(&before[i]);
	free(before);
	pass_drop_plan(p);
	if (n > TRIM_AFTER) {
		/* a large repair (everything, after a resume) */
		db_release_memory(a->db);
		malloc_trim(0);
	}
	if (rewatch)
		watch_cur(a);
}

static void on_debounce(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	a->debounce_armed = 0;
	if (a->cur_oid[0])
		repair_dirty(a);
}

/* ---- fetching ---- */

static void arm_poll(struct agent *a, int64_t base_ms)
{
	/* +-10% jitter so a fleet does not poll in step */
	int64_t jitter = base_ms / 10;
	int64_t ms = base_ms - jitter + (jitter > 0 ? (int64_t)(random() % (2 * jitter + 1)) : 0);
	timer_arm(a->poll_tfd, ms > 0 ? ms : 1);
}

static void on_fetch_data(struct loop *l, int fd, uint32_t events, void *ctx);
static void resume_finish(struct agent *a);

static void fetch_start(struct agent *a)
{
	if (a->fetch_pid > 0) {
		a->fetch_again = 1;	/* coalesce: one running, one pending */
		return;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		alog("agent: cannot start a fetch: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		alog("agent: cannot start a fetch: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		/* the callbacks stop a fetch that still moves at the deadline; this, one that hangs */
		alarm((unsigned)((a->cfg->fetch_timeout_ms + 999) / 1000) + 2);
		close(pfd[0]);
		struct gitsrc *g = NULL;
		struct revision rev = { 0 };
		struct source_opts so = { 0 };
		struct source_secrets sec;
		int fetched = 0;
		if (source_opts_load(&so, a->cfg, a->url, &sec) < 0 ||
		    gitsrc_open(&g, a->cache_dir, a->url) < 0 || gitsrc_fetch(g, &so, &rev, &fetched) < 0)
			dprintf(pfd[1], "error %s\n", err_msg());
		else
			dprintf(pfd[1], "ok %s %d %s\n", rev.oid, fetched, rev.ref);
		_exit(0);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	a->fetch_pid = pid;
	a->fetch_fd = pfd[0];
	buf_reset(&a->fetch_out);
	loop_add(&a->loop, pfd[0], EPOLLIN, on_fetch_data, a);
}

/* http: POST /api/v1/sync and webhooks ask for a fetch (src/http) */
static int on_http_sync(void *ctx)
{
	struct agent *a = ctx;
	int r = a->fetch_pid <= 0 ? HTTP_SYNC_STARTED : a->fetch_again ? HTTP_SYNC_BUSY : HTTP_SYNC_QUEUED;
	if (r != HTTP_SYNC_BUSY)
		fetch_start(a);
	return r;
}

static void fetch_done(struct agent *a)
{
	loop_del(&a->loop, a->fetch_fd);
	close(a->fetch_fd);
	a->fetch_fd = -1;
	int st = 0;
	waitpid(a->fetch_pid, &st, 0);
	a->fetch_pid = 0;
	char *line = a->fetch_out.ptr ? a->fetch_out.ptr : (char *)"";
	line[strcspn(line, "\n")] = '\0';
	meta_set_time(a, "last_fetch_at");
	if (strncmp(line, "ok ", 3)) {
		const char *why = !strncmp(line, "error ", 6) ? line + 6 :
				  WIFSIGNALED(st) ? "the fetch took too long and was stopped" :
						    "the fetch stopped without an answer";
		a->fetch_failures++;
		struct arena tmp;
		arena_init(&tmp);
		if (!db_meta_get(a->db, "source_stale_since", &tmp))
			meta_set_time(a, "source_stale_since");
		arena_release(&tmp);
		meta_set(a, "source_error", why);
		http_note_fetch(a->http, 0, why);	/* http */
		alog("agent: fetch failed (%d in a row): %s; holding the host to the last good revision",
		     a->fetch_failures, why);
		/* exponential backoff with jitter, never longer than the interval */
		int64_t back = 5000;
		for (int i = 1; i < a->fetch_failures && back < a->cfg->interval_ms; i++)
			back *= 2;
		arm_poll(a, back < a->cfg->interval_ms ? back : a->cfg->interval_ms);
	} else {
		char oid[41] = "", ref[256] = "";
		int fetched = 0;
		sscanf(line + 3, "%40s %d %255s", oid, &fetched, ref);
		if (a->fetch_failures)
			alog("agent: source reachable again");
		a->fetch_failures = 0;
		meta_set(a, "source_stale_since", NULL);
		meta_set(a, "source_error", NULL);
		meta_set_time(a, "last_fetch_ok_at");
		http_note_fetch(a->http, 1, NULL);	/* http */
		fleet_fetched(a->fleet, oid);	/* fleet: a revision still waiting may be superseded */
		if (strcmp(a->cur_oid, oid)) {
			struct arena tmp;
			arena_init(&tmp);
			char *rejected = db_meta_get(a->db, "rejected_revision", &tmp);
			int same_rejected = rejected && !strcmp(rejected, oid) &&
					    !pass_rewind_retry(a->db, oid, a->cfg->allow_rewind);
			arena_release(&tmp);
			if (!same_rejected && a->susp_until) {
				if (strcmp(a->held_rev, oid)) {
					alog("agent: new revision %.12s held: suspended", oid);
					snprintf(a->held_rev, sizeof(a->held_rev), "%s", oid);
					snprintf(a->held_ref, sizeof(a->held_ref), "%s", ref);
					meta_set(a, "held_revision", oid);
				}
			} else if (!same_rejected && fleet_gate(a->fleet, oid, ref) == FLEET_GO) {
				/* fleet: without a slot it waits, held to cur (drift repair goes on) */
				alog("agent: new revision %.12s", oid);
				apply_new(a, oid, ref);
			}
		}
		if (!a->susp_until)
			a->held_rev[0] = '\0';	/* what the remote has now supersedes it */
		arm_poll(a, a->cfg->interval_ms);
	}
	if (a->resume_pending && !a->fetch_again && !a->susp_until)
		resume_finish(a);
	if (a->fetch_again) {
		a->fetch_again = 0;
		fetch_start(a);
	}
}

static void on_fetch_data(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	char tmp[4096];
	(void)l;
	(void)events;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n > 0) {
			if (a->fetch_out.len < 65536)
				buf_add(&a->fetch_out, tmp, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		fetch_done(a);
		return;
	}
}

static void on_poll(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	fetch_start(ctx);
}

static void on_resync(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	if (a->cur_oid[0] && !a->susp_until) {
		char oid[41], ref[256];
		memcpy(oid, a->cur_oid, sizeof(oid));
		memcpy(ref, a->cur_ref, sizeof(ref));
		agent_pass(a, oid, ref, 1);
	}
	timer_arm(a->resync_tfd, a->cfg->full_resync_ms);
}

/* ---- suspension (driftless suspend / resume) ---- */

/* After the first fetch that follows a resume: apply the held revision when
 * the fetch found nothing newer (or failed), then re-check every resource
 * through the drift-repair path, so each repair is recorded as one. */
static void resume_finish(struct agent *a)
{
	a->resume_pending = 0;
	if (a->held_rev[0] && strcmp(a->cur_oid, a->held_rev)) {
		char oid[41], ref[256];
		memcpy(oid, a->held_rev, sizeof(oid));
		memcpy(ref, a->held_ref, sizeof(ref));
		a->held_rev[0] = '\0';
		if (fleet_gate(a->fleet, oid, ref) == FLEET_GO) {	/* fleet */
			alog("agent: new revision %.12s", oid);
			apply_new(a, oid, ref);
		}
	}
	a->held_rev[0] = '\0';
	if (a->cur_oid[0]) {
		mark_all(a);
		repair_dirty(a);
	}
}

/* Read the suspension in force from the database: on SIGUSR2 (suspend and
 * resume tell us), at start and at the deadline. Leaving a suspension
 * applies a held revision, or re-checks everything with repair. */
static void suspend_refresh(struct agent *a)
{
	struct arena tmp;
	struct suspension sp;
	arena_init(&tmp);
	int64_t now = wall_ms();
	int active = db_suspend_active(a->db, now, &tmp, &sp);
	if (active < 0) {
		alog("agent: %s", err_msg());
		arena_release(&tmp);
		return;
	}
	if (!active) {
		/* a deadline that passed while nobody looked: end it on the record */
		struct pass_record r = { .started_ms = now, .finished_ms = now, .command = "resume",
					 .result = "resumed", .author = "driftless agent (deadline)",
					 .commit = a->cur_oid[0] ? a->cur_oid : NULL, .ref = "",
					 .summary = "the suspension reached its deadline" };
		if (db_suspend_end(a->db, now, "deadline") > 0)
			db_pass_add(a->db, &r);
	}
	if (active) {
		int was = a->susp_until > 0;
		a->susp_until = sp.until_ms;
		if (a->cur)
			a->cur->hold_drift = 1;
		timer_arm(a->susp_tfd, sp.until_ms - now > 0 ? sp.until_ms - now : 1);
		char until[32];
		render_time(until, sizeof(until), sp.until_ms);
		alog("agent: %s until %s by %s: %s; drift is held, not repaired, and new revisions wait",
		     was ? "suspension changed:" : "suspended", until, sp.by, sp.reason);
		arena_release(&tmp);
		return;
	}
	arena_release(&tmp);
	if (!a->susp_until)
		return;
	a->susp_until = 0;
	timer_arm(a->susp_tfd, 0);
	if (a->cur)
		a->cur->hold_drift = 0;
	alog("agent: resumed: repairing drift and applying new revisions again");
	meta_set(a, "held_revision", NULL);
	/* the fix may have been pushed just before the resume: fetch first,
	 * so the newest revision is applied before anything is repaired */
	a->resume_pending = 1;
	fetch_start(a);
}

static void on_suspend_deadline(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	suspend_refresh(ctx);
}

/* ---- signals ---- */

static void reload(struct agent *a)
{
	const char *file = opts_config_file(&a->o);
	struct config *c = xcalloc(1, sizeof(*c));
	config_init(c);
	if (file) {
		struct diag d;
		diag_init(&d);
		if (config_load(c, file, &d) < 0) {
			for (size_t i = 0; i < d.n; i++)
				alog("agent: config not reloaded: %s:%d:%d: %s", d.v[i].file ? d.v[i].file : "",
				     d.v[i].line, d.v[i].col, d.v[i].msg);
			if (!d.n)
				alog("agent: config not reloaded: %s", err_msg());
			diag_release(&d);
			config_release(c);
			free(c);
			return;
		}
		diag_release(&d);
	}
	opts_merge(&a->o, c);
	if (!c->url || strcmp(c->url, a->cfg->url))
		alog("agent: the source URL cannot change on reload; restart the agent");
	c->url = a->cfg->url;
	/* the config in force until now stays while cur uses it: a pass that
	 * fails below (or failed after an earlier reload) keeps cur */
	struct config *prev = a->cfg;
	a->cfg = c;
	cfg_drop(a, prev);
	/* http: rotated webhook secrets and API token take effect now; on an
	 * error the ones in force stay, so a bad file never locks anyone out */
	if (http_reload(a->http, c) < 0)
		alog("agent: webhook secrets and API token not read again: %s", err_msg());
	alog("agent: configuration reloaded");
	if (a->cur_oid[0]) {
		char oid[41], ref[256];
		memcpy(oid, a->cur_oid, sizeof(oid));
		memcpy(ref, a->cur_ref, sizeof(ref));
		agent_pass(a, oid, ref, 1);
	}
	fetch_start(a);
}

static void on_signal(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	struct signalfd_siginfo si;
	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			alog("agent: stopping");
			l->stop = 1;
			break;
		case SIGHUP:
			reload(a);
			break;
		case SIGUSR1:
			fetch_start(a);
			break;
		case SIGUSR2:
			suspend_refresh(a);
			break;
		case SIGCHLD:
			break;	/* the fetch child is reaped when its pipe closes */
		}
	}
}

/* ---- services (daemon/supervise.c) ---- */

static void on_services(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	(void)l;
	(void)fd;
	(void)events;
	supervise_run(a->sup);
}

/* A Service's health check changed its readiness; the supervisor has
 * logged it and recorded it in the history. http: a 'health-degraded'
 * notification goes here once src/http offers a hook for it. */
static void on_service_health(void *ctx, const char *id, int ready, const char *detail)
{
	struct agent *a = ctx;
	http_note_health(a->http, id, ready, detail);		/* http: health-degraded */
	fleet_note_health(a->fleet, id, ready, detail);		/* fleet: halts a settling rollout */
}

/* ---- main ---- */

int cmd_agent(int argc, char **argv)
{
	struct agent a;
	memset(&a, 0, sizeof(a));
	a.sigfd = a.poll_tfd = a.resync_tfd = a.debounce_tfd = a.susp_tfd = a.cool_tfd = a.fetch_fd = -1;
	a.watch.fd = -1;
	int ret = opts_parse(&a.o, argc, argv, AGENT_USAGE, "crbtSCpRsILih");
	if (ret)
		return ret;
	ret = EXIT_ERR;
	a.loop.epfd = -1;
	if (opts_config(&a.o) < 0)
		goto out;
	a.cfg = &a.o.cfg;
	if (!a.cfg->url) {
		fprintf(stderr, "error: no source: give '--repo URL' or 'source.url' in the config\n");
		ret = EXIT_USAGE;
		goto out;
	}
	const char *url = a.cfg->url;
	if (url[0] != '/' && !strstr(url, "://") && !strchr(url, '@')) {
		char *cwd = getcwd(NULL, 0);
		a.url_buf = xasprintf("%s/%s", cwd ? cwd : ".", url);
		free(cwd);
		url = a.url_buf;
	}
	a.url = url;
	a.cfg->url = url;
	char *rebuilt = NULL;
	if (state_open(&a.o, 1) < 0 || db_open_recover(&a.db, a.o.state, &rebuilt) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	if (rebuilt) {
		alog("agent: %s", rebuilt);
		free(rebuilt);
	}
	if (db_cache_limit(a.db, DB_CACHE_KIB) < 0)
		alog("agent: %s", err_msg());
	a.cache_dir = xasprintf("%s/git", a.o.state);
	srandom((unsigned)(getpid() ^ wall_ms()));

	sigemptyset(&a.sigs);
	sigaddset(&a.sigs, SIGTERM);
	sigaddset(&a.sigs, SIGINT);
	sigaddset(&a.sigs, SIGHUP);
	sigaddset(&a.sigs, SIGUSR1);
	sigaddset(&a.sigs, SIGUSR2);
	sigaddset(&a.sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &a.sigs, NULL);
	a.sigfd = signalfd(-1, &a.sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	a.poll_tfd = timer_new();
	a.resync_tfd = timer_new();
	a.debounce_tfd = timer_new();
	a.susp_tfd = timer_new();
	a.cool_tfd = timer_new();
	a.cool_ms = COOL_MS;
	const char *cool = getenv("DRIFTLESS_AGENT_COOL_MS");
	if (cool && *cool) {
		long long v = atoll(cool);
		a.cool_ms = v < 1 ? 1 : v > 3600000 ? 3600000 : v;
	}
	hmap_init(&a.dirty);
	hmap_init(&a.idx_path);
	arena_init(&a.idx_arena);
	hmap_init(&a.flaps);
	if (a.sigfd < 0 || a.poll_tfd < 0 || a.resync_tfd < 0 || a.debounce_tfd < 0 || a.cool_tfd < 0 ||
	    loop_init(&a.loop) < 0 || watch_init(&a.watch) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	loop_add(&a.loop, a.sigfd, EPOLLIN, on_signal, &a);
	loop_add(&a.loop, a.poll_tfd, EPOLLIN, on_poll, &a);
	loop_add(&a.loop, a.resync_tfd, EPOLLIN, on_resync, &a);
	loop_add(&a.loop, a.debounce_tfd, EPOLLIN, on_debounce, &a);
	loop_add(&a.loop, a.susp_tfd, EPOLLIN, on_suspend_deadline, &a);
	loop_add(&a.loop, a.cool_tfd, EPOLLIN, on_cool, &a);
	loop_add(&a.loop, a.watch.fd, EPOLLIN, on_inotify, &a);
	/* http: the HTTP surface and notifications (src/http) */
	struct http_hooks hooks = { on_http_sync, &a };
	if (http_new(&a.http, &a.loop, a.cfg, a.db, &hooks) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	/* fleet: registration, status and the rollout gate in etcd (src/fleet) */
	struct fleet_hooks fhooks = { on_fleet_go, &a };
	if (fleet_new(&a.fleet, &a.loop, a.cfg, a.db, &fhooks) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	/* services: restarts, health checks and logs of builtin Services; the
	 * services themselves outlive the agent and are adopted again */
	struct svc_hooks shooks = { on_service_health, &a };
	if (supervise_new(&a.sup, a.o.state, a.db, &shooks) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	loop_add(&a.loop, supervise_fd(a.sup), EPOLLIN, on_services, &a);

	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	meta_set(&a, "agent_pid", pid);
	meta_set_time(&a, "agent_started_at");
	char *shown = gitsrc_redact_url(a.url);
	alog("agent: started (pid %d), source '%s', every %lld s", (int)getpid(), shown,
	     (long long)(a.cfg->interval_ms / 1000));
	free(shown);

	struct arena tmp;
	arena_init(&tmp);
	suspend_refresh(&a);
	char *bad = db_meta_get(a.db, "bad_revision", &tmp);
	if (bad)
		snprintf(a.bad_rev, sizeof(a.bad_rev), "%s", bad);
	/* hold the host to the last applied revision at once, before (and
	 * whether or not) the source answers */
	char *applied = db_meta_get(a.db, "applied_revision", &tmp);
	if (applied) {
		char oid[41];
		snprintf(oid, sizeof(oid), "%s", applied);
		agent_pass(&a, oid, "", 1);
	}
	arena_release(&tmp);
	fetch_start(&a);
	timer_arm(a.resync_tfd, a.cfg->full_resync_ms);

	if (loop_run(&a.loop) < 0)
		alog("agent: %s", err_msg());
	if (a.fetch_pid > 0) {
		kill(a.fetch_pid, SIGTERM);
		waitpid(a.fetch_pid, NULL, 0);
	}
	meta_set(&a, "agent_pid", NULL);
	ret = EXIT_OK;
out:
	fleet_free(a.fleet);	/* fleet */
	supervise_free(a.sup);	/* services: left running */
	http_free(a.http);	/* http */
	pass_free(a.cur);
	if (a.sigfd >= 0)
		close(a.sigfd);
	if (a.poll_tfd >= 0)
		close(a.poll_tfd);
	if (a.resync_tfd >= 0)
		close(a.resync_tfd);
	if (a.debounce_tfd >= 0)
		close(a.debounce_tfd);
	if (a.susp_tfd >= 0)
		close(a.susp_tfd);
	if (a.cool_tfd >= 0)
		close(a.cool_tfd);
	if (a.fetch_fd >= 0)
		close(a.fetch_fd);
	if (a.watch.fd >= 0)
		watch_release(&a.watch);
	if (a.loop.epfd >= 0)
		loop_release(&a.loop);
	size_t it = 0;
	const char *key;
	void *val;
	while (hmap_next(&a.flaps, &it, &key, &val)) {
		free((char *)key);
		free(val);
	}
	hmap_release(&a.flaps);
	hmap_release(&a.dirty);
	hmap_release(&a.idx_path);
	arena_release(&a.idx_arena);
	free(a.idx);
	free(a.cur_key);
	buf_release(&a.fetch_out);
	struct config *cfg = a.cfg, *cur_cfg = a.cur_cfg;
	a.cfg = a.cur_cfg = NULL;
	cfg_drop(&a, cfg);
	if (cur_cfg != cfg)
		cfg_drop(&a, cur_cfg);
	db_close(a.db);
	free(a.cache_dir);
	free(a.url_buf);
	opts_release(&a.o);
	return ret;
}
