/* SPDX-License-Identifier: MIT */
/* Plan (observe every resource, decide prunes) and apply (carry out changes in dependency order, then record). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "core/pass.h"
#include "lib/err.h"
#include "lib/semver.h"
#include "lib/thread.h"
#include "source/git.h"
#include "state/db.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Room for n more changes: pass_plan reserves what it will add, so a plan
 * of many resources has no doubling slack and no copy on the way. */
static void changes_reserve(struct pass *p, size_t n)
{
	if (p->capchanges - p->nchanges >= n)
		return;
	p->capchanges = p->nchanges + n;
	p->changes = xrealloc(p->changes, p->capchanges * sizeof(*p->changes));
}

static struct change *add_change(struct pass *p, struct resource *res)
{
	if (p->nchanges == p->capchanges) {
		/* doubled, but never past one a resource: prunes reserve their own */
		size_t more = p->capchanges ? p->capchanges : 64;
		if (p->capchanges < p->nres && p->capchanges + more > p->nres)
			more = p->nres - p->capchanges;
		changes_reserve(p, more);
	}
	struct change *c = &p->changes[p->nchanges++];
	memset(c, 0, sizeof(*c));
	c->res = res;
	return c;
}

static void fail(struct change *c, enum outcome o, const char *msg)
{
	c->outcome = o;
	free(c->error);
	c->error = xstrdup(msg);
	c->res->failed = 1;
}

/* The spec field of kind k called name, or NULL. */
static const struct field *kind_field(const struct kind *k, const char *name)
{
	for (const struct field *f = k->fields; name && f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

/* A resource the inventory holds but Git no longer declares. A path-less
 * one is named by its key (kind->key_field) and says 'ensure: absent', so
 * its kind's observe() tells whether there is anything to remove. */
static struct resource *prune_resource(struct pass *p, struct inv_entry *e)
{
	const struct kind *k = kind_find(e->kind);
	if (!k || (!e->path && k->path_offset != SIZE_MAX))
		return NULL;
	struct resource *r = pass_new_resource(p, k);
	r->id = e->id;
	r->name = strchr(e->id, '/') ? strchr(e->id, '/') + 1 : e->id;
	r->order = e->order;
	if (k->path_offset != SIZE_MAX) {
		r->path = e->path;
		*(const char **)((char *)r->spec + k->path_offset) = e->path;
		return r;
	}
	const struct field *key = kind_field(k, k->key_field);
	const struct field *ens = kind_field(k, "ensure");
	if (key && e->content && *e->content)
		*(const char **)((char *)r->spec + key->offset) = e->content;
	for (int i = 0; ens && ens->type == FIELD_ENUM && ens->enums[i]; i++)
		if (!strcmp(ens->enums[i], "absent"))
			*(int *)((char *)r->spec + ens->offset) = i;
	return r;
}

/* The key of a path-less inventory row, when its kind can prune by key. */
static const char *prune_key(const struct inv_entry *e)
{
	const struct kind *k = kind_find(e->kind);
	return k && k->path_offset == SIZE_MAX && kind_field(k, k->key_field) && e->content &&
			       *e->content ? e->content : NULL;
}

static int depth_of(const char *path)
{
	int d = 0;
	for (; *path; path++)
		d += *path == '/';
	return d;
}

static int cmp_prune(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	/* paths first; then path-less objects (accounts, packages) in the
	 * reverse of the order they were applied in: a User before its Group */
	if (!x->res->path || !y->res->path) {
		if (x->res->path || y->res->path)
			return x->res->path ? -1 : 1;
		return (y->res->order > x->res->order) - (y->res->order < x->res->order);
	}
	int dx = depth_of(x->res->path), dy = depth_of(y->res->path);
	if (dx != dy)
		return dy - dx;		/* deepest first: children before parents */
	return strcmp(y->res->path, x->res->path);
}

/*
 * A path the plan found missing, asked again through its parent directory
 * held open: 1 it is gone from a directory that is there, 0 the directory
 * itself is missing (or not a directory), -1 it is there again. One open
 * directory answers both questions, so a directory renamed away and back
 * between two lookups (F10) cannot make a file that still exists look
 * deleted and leave it behind, forgotten.
 */
static int gone_from_parent(struct pass *p, const char *path)
{
	const char *base;
	int dfd = fs_open_parent(&p->root, path, &base);
	if (dfd < 0)
		return 0;
	struct stat st;
	int r = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT ? 1 : -1;
	close(dfd);
	return r;
}

static void plan_prune(struct pass *p, struct inv_entry *e, int *nprune)
{
	if (!e->created || !e->prune || !p->prune) {
		/* adopted, or kept by request: forget it, never delete it */
		struct resource *r = prune_resource(p, e);
		if (!r)
			return;
		struct change *c = add_change(p, r);
		c->inv = e;
		c->action = ACT_NONE;
		buf_adds(&c->what, e->created ? "kept on the host (prune disabled), no longer managed"
					      : "adopted, left on the host, no longer managed");
		return;
	}
	struct resource *r = prune_resource(p, e);
	if (!r)
		return;
	struct change *c = add_change(p, r);
	c->inv = e;
	if (!e->path) {
		if (!prune_key(e)) {
			c->action = ACT_NONE;
			buf_adds(&c->what, "no longer managed");
			return;
		}
		if (r->kind->observe(r, p, c) < 0) {
			fail(c, OUT_FAILED, err_msg());
			return;
		}
		if (c->action != ACT_DELETE) {
			c->action = ACT_NONE;
			buf_reset(&c->what);
			buf_adds(&c->what, "already gone");
			return;
		}
		(*nprune)++;
		return;
	}
	struct stat st;
	int rc = fs_lstat(&p->root, e->path, &st);
	if (rc < 0) {
		fail(c, OUT_FAILED, err_msg());
		return;
	}
	/* gone; but if its directory is gone too (moved away for a moment?)
	 * we cannot tell, so it stays in the inventory for the next pass */
	int gone = rc == 1 ? gone_from_parent(p, e->path) : -1;
	if (gone == 0) {
		buf_adds(&c->what, "its directory is missing; kept in the inventory");
		c->inv = NULL;
		return;
	}
	if (gone == 1) {
		buf_adds(&c->what, "already gone");
		return;
	}
	c->exists = 1;
	c->action = ACT_DELETE;
	(*nprune)++;
}

/* After an interrupted apply, remove the temporaries it may have left in
 * the directories of managed paths (they carry FS_TMP_PREFIX). */
static void sweep_temps(struct pass *p)
{
	struct hmap dirs;
	hmap_init(&dirs);
	size_t it = 0;
	void *val;
	for (size_t i = 0; i < p->nres; i++) {
		const char *path = p->res[i]->path;
		if (!path || !strrchr(path, '/'))
			continue;
		size_t n = (size_t)(strrchr(path, '/') - path);
		char *dir = arena_strndup(&p->arena, path, n ? n : 1);
		hmap_put(&dirs, dir, dir);
	}
	while (hmap_next(&p->inv, &it, NULL, &val)) {
		const char *path = ((struct inv_entry *)val)->path;
		if (!path || !strrchr(path, '/'))
			continue;
		size_t n = (size_t)(strrchr(path, '/') - path);
		char *dir = arena_strndup(&p->arena, path, n ? n : 1);
		hmap_put(&dirs, dir, dir);
	}
	it = 0;
	const char *dir;
	while (hmap_next(&dirs, &it, &dir, NULL))
		fs_sweep_temps(&p->root, dir);
	hmap_release(&dirs);
}

/* Nothing for anyone after the plan: no action, no drift, no message, and
 * an inventory row that record_inventory() would leave as it is. */
static int change_clean(const struct change *c)
{
	const struct resource *res = c->res;
	const struct inv_entry *inv = c->inv;
	if (c->action != ACT_NONE || c->outcome != OUT_UNCHANGED || c->error || c->drifted ||
	    c->what.len || c->diff.len || c->staged || c->batched || res->failed || !inv ||
	    !res->digest[0] || !inv->digest || strcmp(inv->digest, res->digest) || !inv->path ||
	    !res->path || strcmp(inv->path, res->path))
		return 0;
	const char *content = c->key ? c->key : c->new_oid[0] ? c->new_oid : c->oid;
	return !strcmp(inv->content ? inv->content : "", content);
}

static void plan_one(struct pass *p, struct resource *res);

/* plan_one, then its change dropped again when it is clean (elide_clean) */
static void plan_one_elide(struct pass *p, struct resource *res)
{
	size_t before = p->nchanges;
	plan_one(p, res);
	if (p->elide_clean && p->nchanges == before + 1 && change_clean(&p->changes[before])) {
		struct change *c = &p->changes[before];
		buf_release(&c->what);
		buf_release(&c->diff);
		p->nchanges = before;
		p->nclean++;
	}
}

/* Observe one resource and decide its change (no side effects). */
static void plan_one(struct pass *p, struct resource *res)
{
	struct change *c = add_change(p, res);
	c->inv = hmap_get(&p->inv, res->id);
	if (c->inv)
		c->inv->seen = 1;
	if (res->kind->observe(res, p, c) < 0) {
		fail(c, OUT_FAILED, err_msg());
		return;
	}
	if (c->exists && c->type == NODE_FILE)
		c->foreign = !c->inv || !c->inv->content || strcmp(c->inv->content, c->oid);
	/* a path-less resource whose key changed (a renamed account) manages
	 * another object now: the old one is pruned, the new one is new */
	struct inv_entry *moved = NULL;
	if (c->inv && !res->path && c->key && prune_key(c->inv) && strcmp(c->inv->content, c->key)) {
		moved = c->inv;
		c->inv = NULL;
	}
	if (!c->inv && c->exists && c->action != ACT_NONE && c->action != ACT_DELETE &&
	    !res->adopt && !p->rebuilding && !res->kind->adopt_free) {
		char *m = res->path ?
			  xasprintf("'%s' already exists and was not created by driftless;"
				    " set 'adopt: true' to take it over (its content is backed up first)",
				    res->path) :
			  xasprintf("%s '%s' already exists and was not created by driftless;"
				    " set 'adopt: true' to take it over", res->kind->name,
				    c->key ? c->key : res->name);
		fail(c, OUT_FAILED, m);
		free(m);
		return;
	}
	if (moved) {
		size_t ci = (size_t)(c - p->changes), before = p->nchanges;
		struct inv_entry *old = arena_alloc(&p->arena, sizeof(*old));
		*old = *moved;
		int dummy = 0;
		if (old->created)
			plan_prune(p, old, &dummy);
		if (p->nchanges > before) {
			/* the old one goes first: the new one may reuse its uid */
			struct change t = p->changes[ci];
			p->changes[ci] = p->changes[ci + 1];
			p->changes[ci + 1] = t;
			p->changes[ci].inv = NULL;	/* the id stays in the inventory */
			ci++;
		}
		c = &p->changes[ci];
		c->inv = moved;	/* the row is rewritten with the new key */
		c->created = !c->exists;
		if (c->action != ACT_NONE)
			res->changed = 1;
		return;
	}
	c->created = c->inv ? c->inv->created : !c->exists;
	if (p->rebuilding && !c->inv && c->exists)
		c->created = 0;	/* ours or not, we cannot tell: never prune it */
	if (c->action != ACT_NONE || !c->inv || !c->inv->digest || strcmp(c->inv->digest, res->digest))
		res->changed = 1;
	/* drift: the host moved away from a spec that did not change */
	if (c->inv && c->action != ACT_NONE && c->inv->digest && !strcmp(c->inv->digest, res->digest)) {
		c->drifted = 1;
		if (res->drift != DRIFT_REPAIR || p->hold_drift)
			c->action = ACT_NONE;
	}
	/* the same id now manages another path: the old one is pruned */
	if (c->inv && c->inv->path && res->path && strcmp(c->inv->path, res->path) &&
	    c->inv->created && !hmap_get(&p->by_path, c->inv->path)) {
		struct inv_entry *old = arena_alloc(&p->arena, sizeof(*old));
		*old = *c->inv;
		int dummy = 0;
		plan_prune(p, old, &dummy);
		p->changes[p->nchanges - 1].inv = NULL;	/* the id stays in the inventory */
	}
}

static void changes_reset(struct pass *p)
{
	for (size_t i = 0; i < p->nchanges; i++) {
		buf_release(&p->changes[i].what);
		buf_release(&p->changes[i].diff);
		free(p->changes[i].error);
	}
	p->nchanges = 0;
	p->nclean = 0;
	memset(p->counts, 0, sizeof(p->counts));
	for (size_t i = 0; i < p->nres; i++) {
		p->res[i]->failed = 0;
		p->res[i]->staged = 0;
		p->res[i]->changed = 0;
	}
}

void pass_index_drop(struct pass *p)
{
	hmap_release(&p->inv);
	hmap_release(&p->stats);
	hmap_init(&p->inv);
	hmap_init(&p->stats);
	arena_release(&p->index_arena);
	arena_init(&p->index_arena);
}

void pass_drop_plan(struct pass *p)
{
	for (size_t i = 0; i < p->nchanges; i++) {
		buf_release(&p->changes[i].what);
		buf_release(&p->changes[i].diff);
		free(p->changes[i].error);
	}
	free(p->changes);
	p->changes = NULL;
	p->nchanges = p->capchanges = 0;
	p->nclean = 0;
	free(p->staged);
	p->staged = NULL;
	pass_memo_reset(p);
}

int pass_plan_subset(struct pass *p, struct resource **list, size_t n)
{
	changes_reset(p);
	fs_root_forget(&p->root);
	pass_memo_reset(p);
	p->started_ns = now_ms() * 1000000;
	for (size_t i = 0; i < n; i++)
		plan_one_elide(p, list[i]);
	return 0;
}

/*
 * The lstat of every File, Directory and Symlink, taken ahead of the plan
 * by a few threads, as git's preloaded index does: on a no-op pass of many
 * files those syscalls are most of the work and they do not depend on each
 * other. Only the stat is taken here; the plan itself stays in order on
 * this thread and uses each result once (path_observe), falling back to
 * its own lstat for anything a worker could not tell.
 */
#define PRESTAT_MIN 2048	/* below this, threads cost more than they save */
#define PRESTAT_CHUNK 128	/* neighbours share a directory: one walk each */

struct prestat_job {
	const struct fsroot *root;
	struct prestat *pre;
	size_t n;
	atomic_size_t next;
};

static void prestat_run(struct prestat_job *job)
{
	struct fsroot view;
	fs_root_view(job->root, &view);
	for (;;) {
		size_t i = atomic_fetch_add(&job->next, PRESTAT_CHUNK);
		if (i >= job->n)
			break;
		size_t end = i + PRESTAT_CHUNK < job->n ? i + PRESTAT_CHUNK : job->n;
		for (; i < end; i++) {
			struct stat st;
			job->pre[i].r = fs_lstat(&view, job->pre[i].path, &st);
			if (job->pre[i].r == 0)
				prestat_set(&job->pre[i], &st);
		}
	}
	fs_root_view_close(&view);
}

static void *prestat_thread(void *arg)
{
	prestat_run(arg);
	return NULL;
}

/* lstats are taken ahead this many resources at a time: 150 KB, not 7 MB
 * at 100,000 (t0130's 2,402 resources cross a batch) */
#define PRESTAT_BATCH 2048

static int prestat_worth(const struct pass *p)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return !p->incremental && p->nres >= PRESTAT_MIN && cpus > 1;
}

/* One entry per resource of p->res[from, from + n), path NULL for those
 * without a prestat */
static struct prestat *prestat(struct pass *p, size_t from, size_t n)
{
	static const struct kind *pk[3];
	if (!pk[0]) {
		pk[0] = kind_find("File");
		pk[1] = kind_find("Directory");
		pk[2] = kind_find("Symlink");
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nthreads = cpus > 1 ? (size_t)(cpus < 8 ? cpus : 8) - 1 : 0;
	/* the paths to stat, packed, then spread back by resource index */
	struct prestat *pre = xcalloc(n + 1, sizeof(*pre));
	struct prestat_job job = { .root = &p->root, .pre = pre };
	for (size_t i = 0; i < n; i++) {
		const struct resource *res = p->res[from + i];
		if (res->path && (res->kind == pk[0] || res->kind == pk[1] ||
				  res->kind == pk[2])) {
			pre[job.n].path = res->path;
			pre[job.n].r = (int)i;	/* its index, until the stat replaces it */
			job.n++;
		}
	}
	size_t *idx = xmalloc((job.n + 1) * sizeof(*idx));
	for (size_t k = 0; k < job.n; k++)
		idx[k] = (size_t)pre[k].r;
	atomic_init(&job.next, 0);
	fs_has_openat2();	/* decided once, before any thread asks */
	pthread_t *tids = xcalloc(nthreads, sizeof(*tids));
	size_t started = 0;
	for (; started < nthreads; started++)
		if (thread_start(&tids[started], prestat_thread, &job, 0))
			break;
	prestat_run(&job);
	for (size_t t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	free(tids);
	/* back to resource order, from the top so nothing is overwritten early */
	for (size_t k = job.n; k-- > 0;) {
		struct prestat e = pre[k];
		memset(&pre[k], 0, sizeof(pre[k]));
		pre[idx[k]] = e;
	}
	free(idx);
	return pre;
}

/*
 * The preload: one thread reads the index snapshot (the inventory and stat
 * cache the last pass left) and then stats the inventory's paths, while
 * this thread fetches Git and loads the desired state; the plan then waits
 * for it, helps with the stats that are left, and takes the maps over.
 * Without a usable snapshot the plan reads SQLite itself, as without a
 * preload.
 */
struct preload {
	struct prestat_job job;
	pthread_t tids[9];	/* [0] loads, then stats; the others only stat */
	size_t nthreads, want;
	char *file, *gen;	/* the snapshot and the generation it must carry */
	struct arena arena;	/* the loader's, kept until the pass ends */
	struct hmap inv, stats;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready;		/* 1 loaded and the stat list is up, -1 no snapshot */
	int done;
	size_t hint;		/* entries in the snapshot file, stale or not */
	int from_snapshot;	/* what the loader read: the snapshot, not SQLite */
	atomic_int cancel;	/* pass_preload_drop: stop reading SQLite */
};

static void *preload_thread(void *arg)
{
	struct preload *pl = arg;
	struct inv_entry **list = NULL;
	int ok = db_index_snapshot(pl->file, pl->gen, &pl->arena, &pl->inv, &pl->stats, &list) == 0;
	pl->from_snapshot = ok;
	/* a pass that wrote since: the rows from SQLite, on a connection of
	 * this thread's own (the snapshot is written again for the next pass) */
	if (!ok && !atomic_load(&pl->cancel))
		ok = db_index_load_apart(pl->file, &pl->arena, &pl->inv, &pl->stats, &list,
					 &pl->cancel) == 0;
	if (ok) {
		struct prestat *pre = arena_alloc(&pl->arena, (pl->inv.n + 1) * sizeof(*pre));
		size_t n = 0;
		for (size_t i = 0; i < pl->inv.n; i++) {
			struct inv_entry *e = list[i];
			if (!e->path || !e->kind || (strcmp(e->kind, "File") &&
			    strcmp(e->kind, "Directory") && strcmp(e->kind, "Symlink")))
				continue;
			pre[n].path = e->path;
			pre[n].r = -1;
			e->pre = &pre[n++];
		}
		pl->job.pre = pre;
		pl->job.n = n;
	}
	free(list);
	pthread_mutex_lock(&pl->mu);
	for (pl->nthreads = 1; ok && pl->nthreads < pl->want; pl->nthreads++)
		if (thread_start(&pl->tids[pl->nthreads], prestat_thread, &pl->job, 0))
			break;
	pl->ready = ok ? 1 : -1;
	pthread_cond_signal(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	if (ok)
		prestat_run(&pl->job);
	return NULL;
}

int pass_preload(struct pass *p, struct db *db)
{
	if (p->preload || p->index_loaded || p->inv.n || p->stats.n || p->root.fd < 0)
		return 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct preload *pl = xcalloc(1, sizeof(*pl));
	arena_init(&pl->arena);
	hmap_init(&pl->inv);
	hmap_init(&pl->stats);
	db_index_prepare(db, &pl->arena, &pl->file, &pl->gen);
	if (!pl->gen) {
		arena_release(&pl->arena);
		free(pl);
		return 0;
	}
	pl->want = cpus > 1 ? (size_t)(cpus < 9 ? cpus : 9) - 1 : 1;
	pl->hint = db_index_size_hint(pl->file);
	atomic_init(&pl->cancel, 0);
	pl->job.root = &p->root;
	atomic_init(&pl->job.next, 0);
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->cv, NULL);
	fs_has_openat2();	/* decided once, before any thread asks */
	if (thread_start(&pl->tids[0], preload_thread, pl, 0)) {
		pthread_mutex_destroy(&pl->mu);
		pthread_cond_destroy(&pl->cv);
		arena_release(&pl->arena);
		free(pl);
		return 0;
	}
	p->preload = pl;
	return 0;
}

/* wait for the loader, take the stats left, join, and take the maps over */
static void preload_finish(struct pass *p)
{
	struct preload *pl = p->preload;
	if (!pl || pl->done)
		return;
	pthread_mutex_lock(&pl->mu);
	while (!pl->ready)
		pthread_cond_wait(&pl->cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
	if (pl->ready > 0)
		prestat_run(&pl->job);
	for (size_t t = 0; t < pl->nthreads; t++)
		pthread_join(pl->tids[t], NULL);
	pl->done = 1;
	if (pl->ready > 0) {
		hmap_release(&p->inv);
		hmap_release(&p->stats);
		p->inv = pl->inv;
		p->stats = pl->stats;
		hmap_init(&pl->inv);
		hmap_init(&pl->stats);
		p->index_loaded = 1;
		p->index_origin = pl->from_snapshot ? "snapshot" : "SQLite";
	}
}

void pass_preload_drop(struct pass *p)
{
	struct preload *pl = p->preload;
	if (!pl)
		return;
	/* a load from SQLite not finished, and the stats not taken yet, are
	 * not worth waiting for */
	atomic_store(&pl->cancel, 1);
	pthread_mutex_lock(&pl->mu);
	while (!pl->ready)
		pthread_cond_wait(&pl->cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
	atomic_store(&pl->job.next, pl->job.n);
	pass_preload_release(p);
	if (p->index_loaded) {	/* the maps it handed over point into its arena, gone */
		hmap_release(&p->inv);
		hmap_release(&p->stats);
		hmap_init(&p->inv);
		hmap_init(&p->stats);
		p->index_loaded = 0;
	}
}

size_t pass_preload_hint(const struct pass *p)
{
	return p->preload ? p->preload->hint : 0;
}

static int preloaded(const struct pass *p)
{
	return p->preload && p->preload->done && p->preload->ready > 0;
}

void pass_preload_release(struct pass *p)
{
	struct preload *pl = p->preload;
	if (!pl)
		return;
	preload_finish(p);
	hmap_release(&pl->inv);
	hmap_release(&pl->stats);
	arena_release(&pl->arena);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->cv);
	free(pl);
	p->preload = NULL;
}

int pass_plan(struct pass *p, struct db *db)
{
	fs_root_forget(&p->root);
	pass_memo_reset(p);
	if (db) {
		preload_finish(p);
		if (!p->index_loaded && db_index_load(db, &p->index_arena, &p->inv, &p->stats, NULL) < 0)
			return -1;
		p->index_loaded = 0;	/* a later plan on this pass loads again */
		p->interrupted = db_meta_get(db, "in_progress", &p->arena);
		/* after a rebuilt database the inventory knows nothing: take what
		 * is there over (backed up), never prune, until a clean pass */
		p->rebuilding = db_meta_get(db, "rebuilt", &p->arena) != NULL;
		if (p->rebuilding)
			p->prune = 0;
		if (p->interrupted && !p->dry_run)
			sweep_temps(p);
	}
	int ahead = !preloaded(p) && prestat_worth(p);
	struct prestat *pre = NULL;
	size_t pre_from = 0, pre_n = 0;
	if (!p->incremental && !p->elide_clean)
		changes_reserve(p, p->nres);	/* one each; renames add a prune */
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		if (ahead && i == pre_from + pre_n) {
			free(pre);
			pre_from = i;
			pre_n = p->nres - i < PRESTAT_BATCH ? p->nres - i : PRESTAT_BATCH;
			pre = prestat(p, pre_from, pre_n);
		}
		struct inv_entry *inv = hmap_get(&p->inv, res->id);
		if (inv)
			inv->seen = 1;
		if (p->incremental && inv && inv->digest && !strcmp(inv->digest, res->digest)) {
			/* unchanged in Git and nothing it depends on changed: the
			 * watches and the periodic full pass look after its drift */
			int dep_changed = 0;
			for (size_t d = 0; d < res->ndeps; d++)
				dep_changed |= res->deps[d]->changed;
			if (!dep_changed)
				continue;
		}
		p->pre = pre && pre[i - pre_from].path ? &pre[i - pre_from] :
			 inv && preloaded(p) ? inv->pre : NULL;
		plan_one_elide(p, res);
		p->pre = NULL;
	}
	free(pre);
	/* prune: what the inventory holds that Git no longer declares */
	size_t first_prune = p->nchanges;
	int nprune = 0;
	size_t it = 0, unseen = 0;
	const char *key;
	void *val;
	while (hmap_next(&p->inv, &it, &key, &val))
		unseen += !((struct inv_entry *)val)->seen;
	changes_reserve(p, unseen);
	it = 0;
	while (hmap_next(&p->inv, &it, &key, &val)) {
		struct inv_entry *e = val;
		if (!e->seen)
			plan_prune(p, e, &nprune);
	}
	if (p->nchanges > first_prune + 1)
		qsort(p->changes + first_prune, p->nchanges - first_prune, sizeof(*p->changes),
		      cmp_prune);
	if (p->nres == 0 && nprune > 0 && !p->allow_empty) {
		diag_add(&p->diag, NULL, 0, 0,
			 "revision %.12s would remove every managed resource (%d); refusing"
			 " (set 'allowEmpty: true' in the agent config to allow it)", p->rev.oid, nprune);
		return -1;
	}
	/* what the plan freed goes back before the writes start: up to 10 MB at
	 * 100,000 resources, held through a first apply otherwise */
	if (p->nres >= PASS_COMPACT_MIN)
		malloc_trim(0);
	return 0;
}

static int record_inventory(struct pass *p, struct change *c)
{
	struct resource *res = c->res;
	if (c->outcome == OUT_FAILED || c->outcome == OUT_SKIPPED) {
		/* a create that did not happen must not leave its intent row behind,
		 * or a file someone else puts there later would count as ours */
		if (c->action == ACT_CREATE && !c->inv && !p->dry_run)
			return db_inv_del(p->db, res->id);
		return 0;
	}
	if (c->action == ACT_DELETE || (!res->digest[0] && c->inv)) {
		/* deleted, or forgotten */
		if (c->inv) {
			c->inv->path = NULL;	/* gone from memory too */
			return db_inv_del(p->db, res->id);
		}
		return 0;
	}
	if (!res->digest[0])
		return 0;
	const char *content = c->key ? c->key : c->new_oid[0] ? c->new_oid : c->oid;
	if (c->inv && c->action == ACT_NONE && c->inv->digest && !strcmp(c->inv->digest, res->digest) &&
	    c->inv->path && res->path && !strcmp(c->inv->path, res->path) &&
	    !strcmp(c->inv->content ? c->inv->content : "", content) && !c->drifted)
		return 0;	/* nothing new to remember: the no-op pass writes nothing */
	struct inv_entry e = {
		.id = res->id,
		.kind = res->kind->name,
		.path = res->path,
		.type = c->type,
		.created = c->created,
		.prune = res->prune,
		.digest = res->digest,
		.content = content,
		.order = res->order,
	};
	if (!res->path)
		e.type = NODE_NONE;
	else if (c->action == ACT_CREATE || c->action == ACT_UPDATE)
		e.type = res->kind == kind_find("Directory") ? NODE_DIR :
			 res->kind == kind_find("Symlink") ? NODE_LINK : NODE_FILE;
	if (c->drifted && c->action == ACT_NONE)
		e.digest = c->inv->digest;	/* still drifted: keep the applied digest */
	if (db_inv_put(p->db, &e) < 0)
		return -1;
	if (p->one_shot)
		return 0;
	/* keep the in-memory inventory true for later passes on this pass
	 * (the agent repairs drift on the pass it applied last) */
	struct inv_entry *m = c->inv ? c->inv : hmap_get(&p->inv, res->id);
	if (!m) {
		m = arena_alloc(&p->arena, sizeof(*m));
		m->id = res->id;
		hmap_put(&p->inv, m->id, m);
	}
	m->kind = res->kind->name;
	m->path = res->path;
	m->type = e.type;
	m->created = e.created;
	m->prune = e.prune;
	m->digest = e.digest == res->digest ? res->digest : arena_strdup(&p->arena, e.digest);
	m->content = arena_strdup(&p->arena, content);
	m->seen = 1;
	c->inv = m;
	return 0;
}

/* Make every staged file durable, rename each into place, and make the
 * renames durable; a failure fails the resources it concerns. */
static void flush_staged(struct pass *p)
{
	struct fs_batch *b = &p->batch;
	if (!b->n)
		return;
	int synced = fs_batch_sync(b) == 0;
	char *why = synced ? NULL : xstrdup(err_msg());
	for (size_t i = 0; i < b->n; i++) {
		struct change *c = &p->changes[p->staged[i]];
		c->res->staged = 0;
		c->staged = 0;
		if (!synced)
			fail(c, OUT_FAILED, why);
		else if (fs_batch_commit(&p->root, b, i) < 0)
			fail(c, OUT_FAILED, err_msg());
	}
	if (synced && fs_batch_finish(&p->root, b) < 0) {
		free(why);
		why = xstrdup(err_msg());
		for (size_t i = 0; i < b->n; i++)
			if (b->v[i].committed)
				fail(&p->changes[p->staged[i]], OUT_FAILED, why);
	}
	free(why);
	fs_batch_release(&p->root, b);
}

/* Hand the kind of changes[first] every change of its own that is ready
 * now: something to do, not failed, and each dependency either done before
 * this point or in the batch itself. The kind does them in one go (one apt
 * transaction); apply() then reports each one's outcome in order. */
static void run_batch(struct pass *p, size_t first)
{
	const struct kind *k = p->changes[first].res->kind;
	struct change **v = xmalloc((p->nchanges - first) * sizeof(*v));
	struct hmap pending;
	size_t n = 0;
	hmap_init(&pending);
	for (size_t j = first; j < p->nchanges; j++) {
		struct change *c = &p->changes[j];
		struct resource *res = c->res;
		if (c->action == ACT_NONE || c->outcome == OUT_FAILED || c->batched)
			continue;
		int ready = res->kind == k;
		for (size_t d = 0; ready && d < res->ndeps; d++)
			if (res->deps[d]->failed || hmap_get(&pending, res->deps[d]->id))
				ready = 0;
		if (ready) {
			c->batched = 1;
			v[n++] = c;
		} else {
			hmap_put(&pending, res->id, res);
		}
	}
	hmap_release(&pending);
	if (n && k->apply_batch(v, n, p) < 0) {
		char *why = xstrdup(err_msg());
		for (size_t j = 0; j < n; j++) {
			free(v[j]->error);
			v[j]->error = xstrdup(why);
		}
		free(why);
	}
	free(v);
}

int pass_apply(struct pass *p)
{
	fs_root_forget(&p->root);
	int nwork = 0;
	for (size_t i = 0; i < p->nchanges; i++)
		if (p->changes[i].action != ACT_NONE && p->changes[i].outcome != OUT_FAILED)
			nwork++;

	/* intent: before touching the host, remember what we are about to create,
	 * so a crash half way leaves an inventory that still owns it */
	if (nwork && !p->dry_run) {
		if (db_begin(p->db) < 0)
			return -1;
		int r = db_meta_set(p->db, "attempted_revision", p->rev.oid);
		for (size_t i = 0; !r && i < p->nchanges; i++) {
			struct change *c = &p->changes[i];
			if (c->action != ACT_CREATE || c->inv)
				continue;
			struct inv_entry e = { .id = c->res->id, .kind = c->res->kind->name,
					       .path = c->res->path, .type = NODE_NONE, .created = 1,
					       .prune = c->res->prune, .digest = "",
					       .content = c->key ? c->key : "", .order = c->res->order };
			r = db_inv_put(p->db, &e);
		}
		if (!r)
			r = db_meta_set(p->db, "in_progress", p->rev.oid);
		if (r < 0 || db_commit(p->db) < 0) {
			db_rollback(p->db);
			return -1;
		}
	}

	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *c = &p->changes[i];
		struct resource *res = c->res;
		if (c->outcome == OUT_FAILED)
			continue;
		if (c->action == ACT_NONE) {
			c->outcome = OUT_UNCHANGED;
			continue;
		}
		if (!p->dry_run && p->interrupt && p->interrupt(p->interrupt_ctx)) {
			fail(c, OUT_SKIPPED, "stopped before this resource: the agent is shutting down");
			continue;
		}
		/* a dependency still in the batch must land before this goes on */
		for (size_t d = 0; d < res->ndeps; d++)
			if (res->deps[d]->staged) {
				flush_staged(p);
				break;
			}
		struct resource *bad = NULL;
		for (size_t d = 0; d < res->ndeps; d++)
			if (res->deps[d]->failed)
				bad = res->deps[d];
		if (bad) {
			char *m = xasprintf("dependency %s failed", bad->id);
			fail(c, OUT_SKIPPED, m);
			free(m);
			continue;
		}
		if (p->dry_run) {
			c->outcome = c->action == ACT_CREATE ? OUT_CREATED :
				     c->action == ACT_UPDATE ? OUT_UPDATED : OUT_DELETED;
			continue;
		}
		int64_t t0 = now_ms();
		struct stat st;
		int r;
		int gone = c->action == ACT_DELETE && res->path &&
			   fs_lstat(&p->root, res->path, &st) == 1 ? gone_from_parent(p, res->path) : -1;
		if (gone == 0) {
			/* the directory itself is missing: keep it in the inventory */
			c->inv = NULL;
			c->action = ACT_NONE;
			c->outcome = OUT_UNCHANGED;
			continue;
		}
		if (gone == 1) {
			r = 0;	/* already gone, e.g. purged with its directory */
		} else {
			if (res->kind->apply_batch && !c->batched)
				run_batch(p, i);
			r = res->kind->apply(c, p);
		}
		c->ms = now_ms() - t0;
		if (r < 0) {
			fail(c, OUT_FAILED, err_msg());
		} else if (r > 0) {
			/* kept on purpose (a pruned directory that is not empty) */
			c->outcome = OUT_UNCHANGED;
			buf_reset(&c->what);
			buf_adds(&c->what, err_msg());
		} else {
			c->outcome = c->action == ACT_CREATE ? OUT_CREATED :
				     c->action == ACT_UPDATE ? OUT_UPDATED : OUT_DELETED;
			free(c->error);	/* a batch failure this change survived */
			c->error = NULL;
			if (c->staged) {
				res->staged = 1;
				p->staged = xrealloc(p->staged, p->batch.n * sizeof(*p->staged));
				p->staged[c->staged - 1] = i;
				if (p->batch.n >= 8192 || p->batch.bytes >= (256u << 20))
					flush_staged(p);
			}
		}
	}
	flush_staged(p);
	free(p->staged);
	p->staged = NULL;
	for (size_t i = 0; i < p->nchanges; i++)
		p->counts[p->changes[i].outcome]++;
	p->counts[OUT_UNCHANGED] += (int)p->nclean;
	return 0;
}

const char *pass_result(const struct pass *p)
{
	if (p->counts[OUT_FAILED] || p->counts[OUT_SKIPPED])
		return p->counts[OUT_CREATED] + p->counts[OUT_UPDATED] + p->counts[OUT_DELETED]
			       ? "partial" : "failed";
	return "applied";
}

int pass_record(struct pass *p, const char *command)
{
	int changed = p->counts[OUT_CREATED] + p->counts[OUT_UPDATED] + p->counts[OUT_DELETED] +
		      p->counts[OUT_FAILED] + p->counts[OUT_SKIPPED];
	int dirty_stats = 0;
	size_t it = 0;
	void *val;
	while (hmap_next(&p->stats, &it, NULL, &val))
		if (((struct stat_entry *)val)->dirty)
			dirty_stats = 1;
	int inv_work = 0;
	for (size_t i = 0; i < p->nchanges; i++)
		if (p->changes[i].action != ACT_NONE || !p->changes[i].inv ||
		    strcmp(p->changes[i].inv->digest ? p->changes[i].inv->digest : "",
			   p->changes[i].res->digest))
			inv_work = 1;
	int drift = 0;
	for (size_t i = 0; i < p->nchanges; i++)
		drift += !p->changes[i].res->digest[0] && p->changes[i].inv &&
			 p->changes[i].what.len;	/* forgotten, not deleted: worth a record */
	for (size_t i = 0; i < p->nchanges; i++)
		drift += p->changes[i].drifted && p->changes[i].outcome == OUT_UNCHANGED &&
			 (p->changes[i].res->drift == DRIFT_REPORT || p->hold_drift);
	char *applied = db_meta_get(p->db, "applied_revision", &p->arena);
	char *rejected = db_meta_get(p->db, "rejected_revision", &p->arena);
	/* the agent holding the host to the applied revision (a drift repair, a
	 * full pass) does not forget that a newer revision was rejected */
	int keep_rejection = rejected && applied && !strcmp(applied, p->rev.oid) &&
			     strcmp(rejected, p->rev.oid) &&
			     (!strcmp(command, "drift") || !strcmp(command, "agent"));
	int new_rev = !applied || strcmp(applied, p->rev.oid) || (rejected && !keep_rejection) ||
		      p->rebuilding;
	if (!changed && !drift && !dirty_stats && !inv_work && !new_rev)
		return 0;	/* a no-op pass costs no write */

	if (db_begin(p->db) < 0)
		return -1;
	int r = 0;
	for (size_t i = 0; !r && i < p->nchanges; i++)
		r = record_inventory(p, &p->changes[i]);
	it = 0;
	while (!r && hmap_next(&p->stats, &it, NULL, &val)) {
		struct stat_entry *e = val;
		if (e->dirty) {
			r = db_stat_put(p->db, e);
			e->dirty = 0;
		}
	}
	if (!r && (changed || new_rev || drift)) {
		struct pass_record rec = {
			.started_ms = p->started_ns / 1000000,
			.finished_ms = now_ms(),
			.command = command,
			.commit = p->rev.oid,
			.ref = p->rev.ref,
			.author = p->rev.author,
			.summary = p->rev.summary,
			.signature = p->rev.signature,
			.result = pass_result(p),
		};
		memcpy(rec.counts, p->counts, sizeof(rec.counts));
		r = db_pass_add(p->db, &rec);
		p->pass_id = rec.id;
		for (size_t i = 0; !r && i < p->nchanges; i++) {
			struct change *c = &p->changes[i];
			if (c->outcome == OUT_UNCHANGED && c->action == ACT_NONE &&
			    !(c->drifted && (c->res->drift == DRIFT_REPORT || p->hold_drift)) &&
			    !(!c->res->digest[0] && c->inv && c->what.len))
				continue;
			const char *detail = c->error ? c->error : c->what.ptr;
			if (c->drifted && c->outcome == OUT_UNCHANGED)
				detail = c->res->drift == DRIFT_REPORT ?
					 "drift reported, not repaired (driftless/drift)" :
					 "drift held, not repaired (driftless suspend)";
			r = db_outcome_add(p->db, rec.id, c->res->id, outcome_names[c->outcome], detail);
		}
	}
	char ts[32];
	snprintf(ts, sizeof(ts), "%lld", (long long)now_ms());
	if (!r)
		r = db_meta_set(p->db, "attempted_revision", p->rev.oid);
	if (!r)
		r = db_meta_set(p->db, "applied_revision", p->rev.oid);
	if (!r)
		r = db_meta_set(p->db, "applied_at", ts);
	/* where the applied revision came from, for drift and capture; never
	 * a URL that carries credentials */
	if (!r && p->git_url && !strchr(p->git_url, '@'))
		r = db_meta_set(p->db, "applied_source", p->git_url);
	if (!r)
		r = db_meta_set(p->db, "applied_entry", p->entry ? p->entry : "");
	/* how it was chosen, for pass_check_rewind; kept when the same revision
	 * is applied again (an agent start, a full pass) */
	if (!r && p->selector && (!applied || strcmp(applied, p->rev.oid)))
		r = db_meta_set(p->db, "applied_selector", p->selector);
	if (!r && p->selector && (!applied || strcmp(applied, p->rev.oid)))
		r = db_meta_set(p->db, "applied_ref", p->rev.ref);
	char *rootabs = p->root.path ? realpath(p->root.path, NULL) : NULL;
	if (!r && rootabs)
		r = db_meta_set(p->db, "applied_root", rootabs);
	free(rootabs);
	if (!r)
		r = db_meta_set(p->db, "last_result", pass_result(p));
	if (!r)
		r = db_meta_set(p->db, "in_progress", NULL);
	if (!r && !keep_rejection)
		r = db_meta_set(p->db, "rejected_revision", NULL);
	if (!r && !keep_rejection)
		r = db_meta_set(p->db, "rejected_reason", NULL);
	if (!r && p->rebuilding && !p->incremental && !p->counts[OUT_FAILED] && !p->counts[OUT_SKIPPED])
		r = db_meta_set(p->db, "rebuilt", NULL);
	if (r < 0 || db_commit(p->db) < 0) {
		db_rollback(p->db);
		return -1;
	}
	return 0;
}

/* Record a rejected revision: status shows it, the last good one stays. */
void pass_record_rejection(struct pass *p, struct db *db, const char *command)
{
	struct buf why = BUF_INIT;
	for (size_t i = 0; i < p->diag.n && i < 20; i++) {
		const struct diag_item *d = &p->diag.v[i];
		if (d->file)
			buf_addf(&why, "%s%s:%d:%d: %s", i ? "\n" : "", d->file, d->line, d->col, d->msg);
		else
			buf_addf(&why, "%s%s", i ? "\n" : "", d->msg);
	}
	if (p->diag.n > 20)
		buf_addf(&why, "\n(%zu more)", p->diag.n - 20);
	struct pass_record rec = {
		.started_ms = p->started_ns / 1000000, .finished_ms = now_ms(), .command = command,
		.commit = p->rev.oid, .ref = p->rev.ref, .author = p->rev.author,
		.summary = p->rev.summary, .result = "rejected", .error = why.ptr,
		.signature = p->rev.signature,
	};
	if (db_begin(db) == 0) {
		if (db_pass_add(db, &rec) < 0 || db_meta_set(db, "attempted_revision", p->rev.oid) < 0 ||
		    db_meta_set(db, "rejected_revision", p->rev.oid) < 0 ||
		    db_meta_set(db, "rejected_reason", why.ptr ? why.ptr : "") < 0 ||
		    db_meta_set(db, "last_result", "rejected") < 0 || db_commit(db) < 0)
			db_rollback(db);
	}
	buf_release(&why);
}


/* ---- a remote that went backwards ---- */

#define REWIND_MSG "the remote went backwards"

void pass_set_selector(struct pass *p, const char *branch, const char *tag, const char *semver,
		       const char *commit)
{
	char key[41];
	const char *url = p->git_url ? p->git_url : "";
	/* the source by a hash of its URL: a URL may carry credentials */
	gitsrc_hash_blob(url, strlen(url), key);
	p->selector = branch ? arena_printf(&p->arena, "branch %s %.16s", branch, key) :
		      tag ? arena_printf(&p->arena, "tag %s %.16s", tag, key) :
		      semver ? arena_printf(&p->arena, "semver %s %.16s", semver, key) :
		      commit ? arena_printf(&p->arena, "commit %s %.16s", commit, key) :
			       arena_printf(&p->arena, "default %.16s", key);
}

int pass_check_rewind(struct pass *p, int allow)
{
	/* tags and commits are pins: moving one is deliberate */
	if (!p->db || !p->selector || !p->git || !strncmp(p->selector, "tag ", 4) ||
	    !strncmp(p->selector, "commit ", 7))
		return 0;
	char *applied = db_meta_get(p->db, "applied_revision", &p->arena);
	char *sel = db_meta_get(p->db, "applied_selector", &p->arena);
	/* another branch, range or source than last time: deliberate too */
	if (!applied || !sel || strcmp(sel, p->selector))
		return 0;
	/* a range moves by version: a higher tag need not descend from the
	 * applied one (a release branch), a lower one is a step back */
	char *aref = db_meta_get(p->db, "applied_ref", &p->arena);
	struct semver now, was;
	if (!strncmp(p->selector, "semver ", 7) && aref && !strncmp(aref, "refs/tags/", 10) &&
	    !strncmp(p->rev.ref, "refs/tags/", 10) && semver_parse(aref + 10, &was) == 0 &&
	    semver_parse(p->rev.ref + 10, &now) == 0 && semver_cmp(&now, &was)) {
		if (semver_cmp(&now, &was) > 0)
			return 0;
		if (allow)
			return 1;
		diag_add(&p->diag, NULL, 0, 0, REWIND_MSG ": the highest matching tag is now '%s' (%.12s),"
			 " older than the applied '%s' (%.12s): a tag was deleted or moved; the applied"
			 " revision stays; set 'source.allowRewind: true' to accept it", p->rev.ref + 10,
			 p->rev.oid, aref + 10, applied);
		return -1;
	}
	int r = gitsrc_descendant(p->git, p->rev.oid, applied);
	if (r < 0) {
		diag_add(&p->diag, NULL, 0, 0, "cannot tell whether %.12s descends from the applied"
			 " revision %.12s: %s", p->rev.oid, applied, err_msg());
		return -1;
	}
	if (r != 0)
		return 0;	/* a descendant, or the applied commit is not cached: cannot tell */
	if (allow)
		return 1;
	diag_add(&p->diag, NULL, 0, 0, REWIND_MSG ": %.12s does not descend from the applied revision"
		 " %.12s (a force-push or a reset); the applied revision stays; set"
		 " 'source.allowRewind: true' to accept it", p->rev.oid, applied);
	return -1;
}

int pass_rewind_retry(struct db *db, const char *oid, int allow)
{
	struct arena a;
	int r = 0;
	if (!allow)
		return 0;
	arena_init(&a);
	char *rej = db_meta_get(db, "rejected_revision", &a);
	char *why = db_meta_get(db, "rejected_reason", &a);
	r = rej && why && !strcmp(rej, oid) && !strncmp(why, REWIND_MSG, strlen(REWIND_MSG));
	arena_release(&a);
	return r;
}
