/* SPDX-License-Identifier: MIT */
/* The life of one pass after the fetch: validate, order, observe, plan, apply, record. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/check.h"
#include "core/pass.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/flat.h"
#include "source/git.h"
#include "source/yaml.h"
#include "state/db.h"

const char *const outcome_names[OUT__COUNT] = {
	"unchanged", "created", "updated", "deleted", "failed", "skipped",
};
const char *const action_names[] = { "none", "create", "update", "delete" };
const char *const drift_names[] = { "repair", "report", "ignore", NULL };
const char *const node_type_names[] = { "none", "file", "directory", "symlink", "special file" };

/* Paths no policy can allow: kernel interfaces and device nodes. */
static const char *const denied_roots[] = { "/proc", "/sys", "/dev", NULL };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pass_init(struct pass *p)
{
	memset(p, 0, sizeof(*p));
	arena_init(&p->arena);
	arena_init(&p->yaml_arena);
	arena_init(&p->cfg_arena);
	arena_init(&p->index_arena);
	diag_init(&p->diag);
	p->root.fd = -1;
	p->prune = 1;
	p->started_ns = now_ns();
}

void pass_keep_map(struct pass *p, void *map, size_t len)
{
	p->maps = xrealloc(p->maps, (p->nmaps + 1) * sizeof(*p->maps));
	p->maps[p->nmaps].ptr = map;
	p->maps[p->nmaps++].len = len;
}

void pass_pcache_commit(struct pass *p)
{
	pcache_close(p->pcache, p);
	p->pcache = NULL;
}

void pass_release(struct pass *p)
{
	pass_pcache_commit(p);
	pass_preload_release(p);
	for (size_t i = 0; i < p->nchanges; i++) {
		buf_release(&p->changes[i].what);
		buf_release(&p->changes[i].diff);
		free(p->changes[i].error);
	}
	free(p->changes);
	for (size_t i = 0; i < p->nres; i++)
		if (p->res[i]->capdeps)
			free(p->res[i]->deps);
	free(p->res);
	hmap_release(&p->by_id);
	hmap_release(&p->by_path);
	hmap_release(&p->inv);
	hmap_release(&p->stats);
	hmap_release(&p->users);
	hmap_release(&p->groups);
	hmap_release(&p->memo);
	free(p->rev.author);
	free(p->rev.summary);
	diag_release(&p->diag);
	secret_pass_release(p);
	arena_release(&p->yaml_arena);
	arena_release(&p->arena);
	arena_release(&p->cfg_arena);
	arena_release(&p->index_arena);
	for (size_t i = 0; i < p->nmaps; i++)
		munmap(p->maps[i].ptr, p->maps[i].len);
	free(p->maps);
}

void pass_load_begin(struct pass *p)
{
	if (p->load_split)
		return;
	p->cfg_arena = p->arena;
	arena_init(&p->arena);
	p->load_split = 1;
}

size_t pass_compact_min(void)
{
	static long min = -1;
	if (min < 0) {
		const char *e = getenv("DRIFTLESS_COMPACT_MIN");
		char *end;
		long v = e && *e ? strtol(e, &end, 10) : -1;
		min = e && *e && !*end && v >= 0 ? v : PASS_COMPACT_MIN;
	}
	return (size_t)min;
}

int pass_compact(struct pass *p, const char *state_dir, struct db *db)
{
	if (!p->load_split || p->nres < pass_compact_min() || p->nchanges || p->diag.n)
		return 1;
	/* libgit2's cache of the trees it read, and the memo, first: the store
	 * below is the peak of the pass (pass_git opens the source again for
	 * the blobs an apply writes) */
	if (p->git && p->git_cache && p->git_url) {
		gitsrc_free(p->git);
		p->git = NULL;
	}
	if (cache_store(p, state_dir) < 0)
		return 1;
	char *key = xstrdup(p->cache_key);
	/* everything the load made: the resources and their maps, the parse
	 * cache and its mapping, the kinds' memo and account lookups */
	pass_pcache_commit(p);
	pass_preload_drop(p);
	for (size_t i = 0; i < p->nres; i++)
		if (p->res[i]->capdeps)
			free(p->res[i]->deps);
	free(p->res);
	p->res = NULL;
	p->nres = p->capres = 0;
	hmap_release(&p->by_id);
	hmap_release(&p->by_path);
	hmap_release(&p->users);
	hmap_release(&p->groups);
	hmap_release(&p->memo);
	hmap_init(&p->by_id);
	hmap_init(&p->by_path);
	hmap_init(&p->users);
	hmap_init(&p->groups);
	hmap_init(&p->memo);
	p->ids_loaded = 0;
	p->cache_key = NULL;
	arena_release(&p->yaml_arena);
	arena_init(&p->yaml_arena);
	arena_release(&p->arena);
	p->arena = p->cfg_arena;
	arena_init(&p->cfg_arena);
	p->load_split = 0;
	for (size_t i = 0; i < p->nmaps; i++)
		munmap(p->maps[i].ptr, p->maps[i].len);
	free(p->maps);
	p->maps = NULL;
	p->nmaps = 0;
	malloc_trim(0);
	/* the index is read and stat'ed while the revision loads again */
	if (db && pass_preload(p, db) < 0)
		err_clear();
	int r = cache_load_key(p, state_dir, key);
	free(key);
	if (r) {
		err_set("cannot load the desired state just stored in '%s/cache'", state_dir);
		return -1;
	}
	return 0;
}

void pass_drop_yaml(struct pass *p)
{
	arena_release(&p->yaml_arena);
	arena_init(&p->yaml_arena);
}

struct gitsrc *pass_git(struct pass *p)
{
	if (!p->git && p->git_cache && p->git_url && gitsrc_open(&p->git, p->git_cache, p->git_url) < 0)
		return NULL;
	if (!p->git)
		err_set("no git source is open");
	return p->git;
}

struct resource *pass_new_resource_at(struct pass *p, const struct kind *k, void *spec)
{
	struct resource *res = arena_alloc(&p->arena, sizeof(*res));
	res->kind = k;
	res->prune = 1;
	res->spec = spec;
	return res;
}

struct resource *pass_new_resource(struct pass *p, const struct kind *k)
{
	struct resource *res = pass_new_resource_at(p, k, arena_alloc(&p->arena, k->spec_size));
	for (const struct field *f = k->fields; f->name; f++)
		if (f->type == FIELD_BOOL)
			*(int *)((char *)res->spec + f->offset) = -1;
	return res;
}

void pass_register(struct pass *p, struct resource *res)
{
	if (p->nres == p->capres) {
		p->capres = p->capres ? p->capres * 2 : 64;
		p->res = xrealloc(p->res, p->capres * sizeof(*p->res));
	}
	p->res[p->nres++] = res;
	hmap_put(&p->by_id, res->id, res);
}

void res_add_dep(struct resource *res, struct resource *dep)
{
	for (size_t i = 0; i < res->ndeps; i++)
		if (res->deps[i] == dep)
			return;
	if (res->ndeps >= res->capdeps) {
		/* capdeps 0 with deps: an exact array in the arena (cache_load) */
		size_t cap = res->ndeps ? res->ndeps * 2 : 4;
		struct resource **d = xmalloc(cap * sizeof(*d));
		if (res->ndeps)
			memcpy(d, res->deps, res->ndeps * sizeof(*d));
		if (res->capdeps)
			free(res->deps);
		res->deps = d;
		res->capdeps = cap;
	}
	res->deps[res->ndeps++] = dep;
}

struct srcpos res_field_pos(const struct resource *res, const char *field)
{
	struct srcpos pos = res->pos;
	if (!field || !res->fpos)
		return pos;
	for (const struct fieldpos *fp = res->fpos; fp->line; fp++)
		if (!strcmp(res->kind->fields[fp->field].name, field))
			return (struct srcpos){ fp->file, (int)fp->line, fp->col };
	return pos;
}

static const char *fmap_get(const char *const *map, const char *name)
{
	for (size_t i = 0; map && map[i] && map[i + 1]; i += 2)
		if (!strcmp(map[i], name))
			return map[i + 1];
	return NULL;
}

const char *fmap_str(const char *const *map, const char *name)
{
	const char *v = fmap_get(map, name);
	return v && *v == '=' ? v + 1 : NULL;
}

const char **fmap_list(struct arena *a, const char *const *map, const char *name, size_t *n)
{
	const char *v = fmap_get(map, name);
	size_t cnt = 0;
	if (!v || *v != '[')
		return NULL;
	for (const char *c = v + 1; *c; c++)
		cnt += *c == '\n';
	const char **out = arena_alloc(a, (cnt + 1) * sizeof(*out));
	cnt = 0;
	for (const char *it = v + 1, *nl; (nl = strchr(it, '\n')); it = nl + 1)
		out[cnt++] = arena_strndup(a, it, (size_t)(nl - it));
	out[cnt] = NULL;
	if (n)
		*n = cnt;
	return out;
}

void res_diag(struct pass *p, const struct resource *res, const char *field, const char *fmt, ...)
{
	struct srcpos pos = res_field_pos(res, field);
	struct buf b = BUF_INIT;
	va_list ap;
	if (res->doc_index > 0)
		buf_addf(&b, "document %d: ", res->doc_index + 1);
	buf_addf(&b, "%s: ", res->id);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	diag_add(&p->diag, pos.file, pos.line, pos.col, "%s", b.ptr);
	buf_release(&b);
}

/* ---- accounts ---- */

static void load_ids(struct pass *p)
{
	static const char *const files[2] = { "/etc/passwd", "/etc/group" };
	struct hmap *maps[2] = { &p->users, &p->groups };
	p->ids_loaded = 1;
	for (int f = 0; f < 2; f++) {
		struct buf b = BUF_INIT;
		if (fs_read(&p->root, files[f], 16u << 20, &b) < 0) {
			buf_release(&b);
			p->ids_loaded = 2;	/* fall back to the host's NSS */
			continue;
		}
		char *save = NULL;
		for (char *line = strtok_r(b.ptr ? b.ptr : (char *)"", "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *c1 = strchr(line, ':');
			char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c1 || !c2)
				continue;
			*c1 = '\0';
			unsigned long id = strtoul(c2 + 1, NULL, 10);
			char *name = arena_strdup(&p->arena, line);
			hmap_put(maps[f], name, (void *)(uintptr_t)(id + 1));
		}
		buf_release(&b);
	}
}

static int lookup_id(struct pass *p, const char *name, int group, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (!*end && end != name && !errno && v < UINT_MAX) {
		*out = v;
		return 0;
	}
	if (!p->ids_loaded)
		load_ids(p);
	void *hit = hmap_get(group ? &p->groups : &p->users, name);
	if (hit) {
		*out = (unsigned long)(uintptr_t)hit - 1;
		return 0;
	}
	if (!strcmp(p->root.path, "/") || p->ids_loaded == 2) {
		if (group) {
			struct group *g = getgrnam(name);
			if (g) {
				*out = g->gr_gid;
				return 0;
			}
		} else {
			struct passwd *pw = getpwnam(name);
			if (pw) {
				*out = pw->pw_uid;
				return 0;
			}
		}
	}
	return err_set("unknown %s '%s'", group ? "group" : "user", name);
}

void pass_ids_forget(struct pass *p)
{
	hmap_release(&p->users);
	hmap_release(&p->groups);
	hmap_init(&p->users);
	hmap_init(&p->groups);
	p->ids_loaded = 0;
}

void pass_memo_reset(struct pass *p)
{
	hmap_release(&p->memo);
	hmap_init(&p->memo);
}

int pass_uid(struct pass *p, const char *name, uid_t *out)
{
	unsigned long v;
	if (lookup_id(p, name, 0, &v) < 0)
		return -1;
	*out = (uid_t)v;
	return 0;
}

int pass_gid(struct pass *p, const char *name, gid_t *out)
{
	unsigned long v;
	if (lookup_id(p, name, 1, &v) < 0)
		return -1;
	*out = (gid_t)v;
	return 0;
}

/* ---- policy ---- */

const char *policy_check_path(const struct policy *pol, const char *path)
{
	if (!strcmp(path, "/"))
		return "is the root directory, which cannot be managed";
	for (int i = 0; denied_roots[i]; i++)
		if (path_under(path, denied_roots[i]))
			return "is denied by local policy: kernel and device file systems are never managed";
	for (size_t i = 0; i < pol->nroots; i++)
		if (path_under(path, pol->roots[i]))
			return NULL;
	return "is outside the allowed roots of the local policy ('policy.roots')";
}

/* ---- backups and the stat cache ---- */

int pass_backup(struct pass *p, const char *path, const char *oid)
{
	if (!oid[0] || !p->state_dir)
		return 0;
	char *dir = xasprintf("%s/backups/%.2s", p->state_dir, oid);
	char *file = xasprintf("%s/%s", dir, oid + 2);
	struct buf data = BUF_INIT;
	int fd = -1, ret = -1;
	struct stat st;

	if (stat(file, &st) == 0) {
		ret = 0;
		goto record;
	}
	char *top = xasprintf("%s/backups", p->state_dir);
	mkdir(top, 0700);
	free(top);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err_set_errno("cannot create backup directory '%s'", dir);
		goto out;
	}
	if (fs_read(&p->root, path, (size_t)p->policy->max_file_size * 4, &data) < 0) {
		err_wrap("cannot back up '%s'", path);
		goto out;
	}
	char *tmp = xasprintf("%s.tmp.%d", file, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set_errno("cannot write backup '%s'", tmp);
		free(tmp);
		goto out;
	}
	size_t off = 0;
	while (off < data.len) {
		ssize_t w = write(fd, data.ptr + off, data.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_set_errno("cannot write backup '%s'", tmp);
			unlink(tmp);
			free(tmp);
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || rename(tmp, file) < 0) {
		err_set_errno("cannot write backup '%s'", file);
		unlink(tmp);
		free(tmp);
		goto out;
	}
	free(tmp);
record:
	if (p->db && db_backup_add(p->db, path, oid, now_ns() / 1000000, p->rev.oid) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&data);
	free(dir);
	free(file);
	return ret;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int pass_file_oid(struct pass *p, const char *path, const struct stat *st, char oid[41])
{
	struct stat_entry *e = hmap_get(&p->stats, path);
	if (e && e->known && e->dev == (uint64_t)st->st_dev && e->ino == (uint64_t)st->st_ino &&
	    e->size == (uint64_t)st->st_size && e->mtime_ns == ts_ns(&st->st_mtim) &&
	    e->ctime_ns == ts_ns(&st->st_ctim)) {
		oid_to_hex(e->oid, oid);
		return 0;
	}
	struct buf data = BUF_INIT;
	if (fs_read(&p->root, path, (size_t)-1 / 2, &data) < 0) {
		buf_release(&data);
		return -1;
	}
	gitsrc_hash_blob(data.ptr ? data.ptr : "", data.len, oid);
	buf_release(&data);
	if (!e) {
		e = arena_alloc(&p->arena, sizeof(*e));
		e->path = arena_strdup(&p->arena, path);
		hmap_put(&p->stats, e->path, e);
	}
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = ts_ns(&st->st_mtim);
	e->ctime_ns = ts_ns(&st->st_ctim);
	/* racy: a change within the timestamp granularity could go unnoticed,
	 * so an entry this fresh is not trusted (git's "racily clean") */
	e->known = p->started_ns - e->ctime_ns >= 2000000000LL && oid_to_bin(oid, e->oid) == 0;
	e->dirty = 1;
	return 0;
}

void pass_stat_update(struct pass *p, const char *path, const char *oid)
{
	struct stat_entry *e = hmap_get(&p->stats, path);
	(void)oid;
	/* none yet: nothing known to forget (an entry made now would only say
	 * "not known", and a first apply of 100,000 files held 13 MB of them) */
	if (!e)
		return;
	e->known = 0;	/* just written: racily clean until the next pass */
	e->dirty = 1;
}

/* ---- validation ---- */

/* A digest of what the manifest says about res. Fields left out of the
 * manifest are left out of the digest, so a release that adds an optional
 * field does not change the digest of every resource (which would make
 * drift on a `report` resource look like a change of its spec once). */
/* decimal, as %d or %zu print it: the digest is made for every resource of
 * a revision, and printf is most of its cost */
static void add_num(struct buf *b, long long v)
{
	char t[24];
	size_t i = sizeof(t);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		t[--i] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		t[--i] = '-';
	buf_add(b, t + i, sizeof(t) - i);
}

/* b: scratch, reused from one resource to the next */
static void compute_digest(struct resource *res, struct buf *scratch)
{
	struct buf b = *scratch;
	buf_reset(&b);
	buf_adds(&b, res->id);
	buf_addch(&b, '\n');
	buf_adds(&b, res->path ? res->path : "");
	buf_addch(&b, '\n');
	for (const struct field *f = res->kind->fields; f->name; f++) {
		const char *slot = (const char *)res->spec + f->offset;
		size_t mark = b.len;
		buf_adds(&b, f->name);
		buf_addch(&b, '=');
		int set = 1;
		switch (f->type) {
		case FIELD_TEXT: {
			const struct text *t = (const struct text *)slot;
			char oid[41];
			set = t->ptr != NULL;
			if (t->ptr) {
				gitsrc_hash_blob(t->ptr, t->len, oid);
				buf_adds(&b, oid);
			}
			break;
		}
		case FIELD_MODE: {
			const struct optmode *m = (const struct optmode *)slot;
			set = m->set;
			if (m->set && (unsigned)m->mode > 07777) {
				buf_addf(&b, "%04o", (unsigned)m->mode);
			} else if (m->set) {
				unsigned v = (unsigned)m->mode;
				char o[4] = { (char)('0' + (v >> 9)), (char)('0' + ((v >> 6) & 7)),
					      (char)('0' + ((v >> 3) & 7)), (char)('0' + (v & 7)) };
				buf_add(&b, o, sizeof(o));
			}
			break;
		}
		case FIELD_BOOL:
			set = *(const int *)slot >= 0;
			add_num(&b, *(const int *)slot);
			break;
		case FIELD_ENUM:
			set = *(const int *)slot != 0;	/* the first value is the default */
			add_num(&b, *(const int *)slot);
			break;
		case FIELD_LIST:
		case FIELD_MAP: {
			const char *const *l = *(const char *const *const *)slot;
			set = l != NULL;
			for (size_t i = 0; l && l[i]; i++) {
				buf_addch(&b, i ? ',' : '[');
				add_num(&b, (long long)strlen(l[i]));
				buf_addch(&b, ':');
				buf_adds(&b, l[i]);
			}
			if (l)
				buf_adds(&b, l[0] ? "]" : "[]");
			break;
		}
		default: {
			const char *s = *(const char *const *)slot;
			set = s != NULL;
			if (s)
				buf_adds(&b, s);
		}
		}
		if (!set) {
			b.len = mark;
			b.ptr[mark] = '\0';
			continue;
		}
		buf_addch(&b, '\n');
	}
	buf_adds(&b, "extra=");
	buf_adds(&b, res->digest_extra ? res->digest_extra : "");
	buf_adds(&b, "\ndrift=");
	add_num(&b, res->drift);
	buf_adds(&b, "\nprune=");
	add_num(&b, res->prune);
	buf_addch(&b, '\n');
	gitsrc_hash_blob(b.ptr, b.len, res->digest);
	*scratch = b;
}

int pass_validate(struct pass *p)
{
	hmap_reserve(&p->by_path, p->nres);
	/* kind checks; a check may append children, which are checked in turn */
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		if (res->kind->check)
			res->kind->check(res, p);
	}
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		if (!res->path)
			continue;
		const char *msg = policy_check_path(p->policy, res->path);
		if (msg) {
			res_diag(p, res, "path", "'path' '%s' %s", res->path, msg);
			continue;
		}
		struct resource *other = hmap_put(&p->by_path, res->path, res);
		if (other) {
			hmap_put(&p->by_path, res->path, other);
			res_diag(p, res, "path", "'path' '%s' is also managed by %s (%s:%d:%d)",
				 res->path, other->id, other->pos.file, other->pos.line,
				 other->pos.col);
		}
	}
	/* paths equal under case folding collide on vfat, exfat, CIFS and
	 * casefolded ext4: one would silently overwrite the other */
	struct hmap folded;
	hmap_init(&folded);
	hmap_reserve(&folded, p->nres);
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		if (!res->path)
			continue;
		/* a path without capitals is its own folded key: no copy */
		const char *low = res->path;
		for (const char *c = res->path; *c; c++)
			if (*c >= 'A' && *c <= 'Z') {
				char *l = arena_strdup(&p->arena, res->path);
				for (char *d = l; *d; d++)
					if (*d >= 'A' && *d <= 'Z')
						*d = (char)(*d - 'A' + 'a');
				low = l;
				break;
			}
		struct resource *other = hmap_put(&folded, low, res);
		if (other && strcmp(other->path, res->path))
			res_diag(p, res, "path", "'path' '%s' and '%s' of %s differ only in case",
				 res->path, other->path, other->id);
	}
	hmap_release(&folded);
	struct buf scratch = BUF_INIT;
	for (size_t i = 0; i < p->nres; i++)
		compute_digest(p->res[i], &scratch);
	buf_release(&scratch);
	return graph_build(p);
}

/* ---- graph ---- */

static int order_next;

static int visit(struct pass *p, struct resource *res, struct resource **stack, size_t depth)
{
	if (res->mark == 2)
		return 0;
	if (res->mark == 1) {
		struct buf b = BUF_INIT;
		size_t start = depth;
		while (start > 0 && stack[start - 1] != res)
			start--;
		if (start > 0)
			start--;
		for (size_t i = start; i < depth; i++)
			buf_addf(&b, "%s -> ", stack[i]->id);
		buf_adds(&b, res->id);
		res_diag(p, res, "dependsOn", "dependency cycle: %s", b.ptr);
		buf_release(&b);
		return -1;
	}
	if (depth >= 10000) {
		res_diag(p, res, "dependsOn", "dependency chain deeper than 10000 resources");
		return -1;
	}
	res->mark = 1;
	stack[depth] = res;
	for (size_t i = 0; i < res->ndeps; i++)
		if (visit(p, res->deps[i], stack, depth + 1) < 0) {
			res->mark = 2;
			return -1;
		}
	res->mark = 2;
	res->order = order_next++;
	return 0;
}

static int cmp_order(const void *a, const void *b)
{
	const struct resource *x = *(struct resource *const *)a;
	const struct resource *y = *(struct resource *const *)b;
	return (x->order > y->order) - (x->order < y->order);
}

int graph_build(struct pass *p)
{
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		for (size_t d = 0; d < res->ndep_ids; d++) {
			struct resource *dep = hmap_get(&p->by_id, res->dep_ids[d]);
			if (!dep) {
				struct srcpos pos = res->dep_pos[d];
				diag_add(&p->diag, pos.file, pos.line, pos.col,
					 "%s: 'dependsOn' names %s, which is not declared",
					 res->id, res->dep_ids[d]);
				continue;
			}
			if (dep == res) {
				struct srcpos pos = res->dep_pos[d];
				diag_add(&p->diag, pos.file, pos.line, pos.col,
					 "%s: a resource cannot depend on itself", res->id);
				continue;
			}
			res_add_dep(res, dep);
		}
		if (res->parent)
			res_add_dep(res, res->parent);
		if (!res->path)
			continue;
		/* the nearest managed ancestor directory is an implicit dependency */
		char *tmp = xstrdup(res->path);
		for (char *slash = strrchr(tmp, '/'); slash && slash != tmp; slash = strrchr(tmp, '/')) {
			*slash = '\0';
			struct resource *up = hmap_get(&p->by_path, tmp);
			if (up) {
				res_add_dep(res, up);
				break;
			}
		}
		free(tmp);
	}
	/* cycles are looked for even when references are missing, so one run
	 * reports both */
	struct resource **stack = xmalloc((p->nres + 10001) * sizeof(*stack));
	order_next = 0;
	for (size_t i = 0; i < p->nres; i++)
		if (visit(p, p->res[i], stack, 0) < 0)
			break;
	free(stack);
	if (p->diag.n)
		return -1;
	if (p->nres > 1)
		qsort(p->res, p->nres, sizeof(*p->res), cmp_order);
	return 0;
}
