/* SPDX-License-Identifier: MIT */
/*
 * The validated desired state of one revision, kept on disk so that a pass
 * on a revision already seen skips parsing and validation. The key covers
 * everything validation depends on: the commit, the entry directory, the
 * local policy, the account databases and the format; any difference is a
 * miss. The file is private to the state directory and written atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/pass.h"
#include "core/vars.h"
#include "lib/err.h"
#include "lib/flat.h"

#define CACHE_MAGIC "DLCACHE6"
#define CACHE_MAX (512u << 20)

static int is_string_field(enum field_type t)
{
	return t == FIELD_STR || t == FIELD_PATH || t == FIELD_ID || t == FIELD_RELPATH ||
	       t == FIELD_TARGET;
}

static void stat_key(struct buf *b, const struct fsroot *root, const char *path)
{
	struct stat st;
	if (fs_lstat(root, path, &st) == 0 || stat(path, &st) == 0)
		buf_addf(b, "%s %llu %lld.%09ld %lld\n", path, (unsigned long long)st.st_ino,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_size);
	else
		buf_addf(b, "%s -\n", path);
}

/* host variables are not in the commit: their values go into a cache key */
static void vars_key(const struct vars *v, struct buf *key)
{
	if (!v) {
		buf_adds(key, "vars -\n");
		return;
	}
	buf_addf(key, "host %zu:%s %zu:%s %zu:%s\n", strlen(v->host_name), v->host_name,
		 strlen(v->host_os), v->host_os, strlen(v->host_arch), v->host_arch);
	for (size_t i = 0; i < v->n; i++)
		buf_addf(key, "var %zu:%s %zu:%s\n", strlen(v->keys[i]), v->keys[i],
			 strlen(v->vals[i]), v->vals[i]);
}

static void cache_key(struct pass *p, struct buf *key)
{
	const struct policy *pol = p->policy;
	buf_addf(key, "%s\n%s\n%s\n", DRIFTLESS_VERSION, p->rev.oid, p->entry ? p->entry : "");
	for (size_t i = 0; i < pol->nroots; i++)
		buf_addf(key, "root %s\n", pol->roots[i]);
	for (size_t i = 0; pol->kinds_set && i < pol->nkinds; i++)
		buf_addf(key, "kind %s\n", pol->kinds[i]);
	buf_addf(key, "setid %d max %llu rootacct %d\n", pol->allow_setid,
		 (unsigned long long)pol->max_file_size, pol->allow_root_accounts);
	for (size_t i = 0; pol->owners_set && i < pol->nowners; i++)
		buf_addf(key, "owner %s\n", pol->owners[i]);
	for (size_t i = 0; pol->groups_set && i < pol->ngroups; i++)
		buf_addf(key, "group %s\n", pol->groups[i]);
	buf_addf(key, "lists %d %d\n", pol->owners_set, pol->groups_set);
	fs_root_forget(&p->root);
	stat_key(key, &p->root, "/etc/passwd");
	stat_key(key, &p->root, "/etc/group");
	fs_root_forget(&p->root);
	/* a Secret's validation depends on the identity that decrypts it */
	struct stat st;
	if (p->identity_file && stat(p->identity_file, &st) == 0)
		buf_addf(key, "identity %s %llu %lld.%09ld %lld\n", p->identity_file,
			 (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec,
			 st.st_mtim.tv_nsec, (long long)st.st_size);
	else
		buf_addf(key, "identity %s -\n", p->identity_file ? p->identity_file : "");
	vars_key(p->vars, key);
}

/* flat_flush, counting what is in the file so far */
static int flush_to(int fd, struct buf *b, uint64_t *sum, size_t *written, int last)
{
	long n = flat_flush(fd, b, sum, last);
	if (n < 0)
		return -1;
	*written += (size_t)n;
	return 0;
}

#define CACHE_FLUSH (1u << 20)	/* written a MiB at a time: peak memory is not the file */

/* The strings many resources share (kind names, manifest files and their
 * folders) are written once, in a table, and named by their index. */
static uint32_t str_index(struct hmap *m, struct buf *tab, uint32_t *n, const char *s)
{
	if (!s)
		return UINT32_MAX;
	void *v = hmap_get(m, s);
	if (v)
		return (uint32_t)(uintptr_t)v - 1;
	flat_put_cstr(tab, s);
	hmap_put(m, s, (void *)(uintptr_t)++*n);
	return *n - 1;
}

int cache_store(struct pass *p, const char *state_dir)
{
	struct buf b = BUF_INIT, key = BUF_INIT;
	struct hmap index, strs;
	int ret = -1, failed = 0;
	size_t written = 0;	/* bytes flushed before b */
	char *dir = xasprintf("%s/cache", state_dir);
	char *tmp = xasprintf("%s/desired.bin.tmp", dir);
	char *file = xasprintf("%s/desired.bin", dir);

	hmap_init(&index);
	hmap_init(&strs);
	mkdir(dir, 0700);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set_errno("cannot write '%s'", tmp);
		goto out;
	}
	hmap_reserve(&index, p->nres);
	for (size_t i = 0; i < p->nres; i++)
		hmap_put(&index, p->res[i]->id, (void *)(uintptr_t)(i + 1));
	cache_key(p, &key);
	/* magic, key and the sum of the body, which follows */
	buf_adds(&b, CACHE_MAGIC);
	flat_put_str(&b, key.ptr, key.len);
	off_t sum_at = (off_t)b.len;
	flat_put_u64(&b, 0);
	uint64_t sum = FLAT_SUM_SEED;
	if (fs_write_all(fd, b.ptr, b.len) < 0)
		failed = 1;
	written = b.len;
	buf_reset(&b);
	{
		struct buf tab = BUF_INIT;
		uint32_t nstr = 0;
		for (size_t i = 0; i < p->nres; i++) {
			const struct resource *r = p->res[i];
			str_index(&strs, &tab, &nstr, r->kind->name);
			str_index(&strs, &tab, &nstr, r->pos.file);
			str_index(&strs, &tab, &nstr, r->manifest);
			str_index(&strs, &tab, &nstr, r->manifest_dir);
		}
		flat_put_u32(&b, nstr);
		buf_add(&b, tab.ptr ? tab.ptr : "", tab.len);
		buf_release(&tab);
	}
	flat_put_u32(&b, (uint32_t)p->nres);
	for (size_t i = 0; i < p->nres && !failed; i++) {
		struct resource *r = p->res[i];
		const struct kind *k = r->kind;
		flat_put_u32(&b, (uint32_t)(uintptr_t)hmap_get(&strs, k->name) - 1);
		flat_put_cstr(&b, r->id);
		/* the name is the end of the id ("Kind/name", "Directory/d:rel") */
		size_t il = strlen(r->id), nl = r->name ? strlen(r->name) : 0;
		if (r->name && nl < il && !strcmp(r->id + il - nl, r->name)) {
			flat_put_u32(&b, (uint32_t)nl);
		} else {
			flat_put_u32(&b, UINT32_MAX);
			flat_put_cstr(&b, r->name);
		}
		flat_put_u32(&b, r->pos.file ? (uint32_t)(uintptr_t)hmap_get(&strs, r->pos.file) - 1 :
					       UINT32_MAX);
		flat_put_u32(&b, (uint32_t)r->pos.line);
		flat_put_u32(&b, (uint32_t)r->pos.col);
		flat_put_u32(&b, (uint32_t)r->doc_index);
		flat_put_u32(&b, r->manifest ? (uint32_t)(uintptr_t)hmap_get(&strs, r->manifest) - 1 : UINT32_MAX);
		flat_put_u32(&b, r->manifest_dir ? (uint32_t)(uintptr_t)hmap_get(&strs, r->manifest_dir) - 1 :
						   UINT32_MAX);
		if (k->path_offset == SIZE_MAX)	/* else it is the spec's */
			flat_put_cstr(&b, r->path);
		flat_put_u32(&b, (uint32_t)r->drift);
		flat_put_u32(&b, (uint32_t)r->prune);
		flat_put_u32(&b, (uint32_t)r->adopt);
		flat_put_u32(&b, r->parent ? (uint32_t)(uintptr_t)hmap_get(&index, r->parent->id) : 0);
		flat_put_oid(&b, r->digest);
		flat_put_u32(&b, (uint32_t)r->order);
		/* positions of fields a layer's patch wrote (capture must not edit
		 * the manifest for those); the others are in the manifest */
		uint32_t nforeign = 0;
		for (const struct fieldpos *fp = r->fpos; fp && fp->line; fp++)
			nforeign += fp->file && r->manifest && strcmp(fp->file, r->manifest);
		flat_put_u32(&b, nforeign);
		for (const struct fieldpos *fp = r->fpos; nforeign && fp->line; fp++) {
			if (!fp->file || !r->manifest || !strcmp(fp->file, r->manifest))
				continue;
			flat_put_u32(&b, fp->field);
			flat_put_cstr(&b, fp->file);
			flat_put_u32(&b, fp->line);
			flat_put_u32(&b, fp->col);
		}
		flat_put_u32(&b, (uint32_t)r->ndeps);
		for (size_t d = 0; d < r->ndeps; d++)
			flat_put_u32(&b, (uint32_t)(uintptr_t)hmap_get(&index, r->deps[d]->id));
		/* the spec: raw bytes at an offset that is a multiple of 8 (the
		 * load uses them in place), then every pointer the field table
		 * knows */
		static const char zeros[8];
		buf_add(&b, zeros, (size_t)(-(written + b.len)) & 7);
		buf_add(&b, r->spec, k->spec_size);
		for (const struct field *f = k->fields; f->name; f++) {
			const char *slot = (const char *)r->spec + f->offset;
			if (is_string_field(f->type))
				flat_put_cstr(&b, *(const char *const *)slot);
			else if (f->type == FIELD_TEXT)
				flat_put_str(&b, ((const struct text *)slot)->ptr, ((const struct text *)slot)->len);
			else if (f->type == FIELD_LIST || f->type == FIELD_MAP) {
				const char *const *l = *(const char *const *const *)slot;
				size_t n = 0;
				while (l && l[n])
					n++;
				flat_put_u32(&b, l ? (uint32_t)n : UINT32_MAX);
				for (size_t j = 0; j < n; j++)
					flat_put_cstr(&b, l[j]);
			}
		}
		if (b.len >= CACHE_FLUSH && flush_to(fd, &b, &sum, &written, 0) < 0)
			failed = 1;
	}
	/* a lost cache only costs a parse; no fsync needed for correctness,
	 * and a torn or damaged file fails its sum and is a miss */
	if (failed || flush_to(fd, &b, &sum, &written, 1) < 0 ||
	    pwrite(fd, &sum, sizeof(sum), sum_at) != (ssize_t)sizeof(sum)) {
		err_set_errno("cannot write '%s'", file);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, file) < 0) {
		err_set_errno("cannot write '%s'", file);
		unlink(tmp);
		goto out;
	}
	ret = 0;
	p->cache_key = arena_strndup(&p->arena, key.ptr, key.len);
out:
	free(dir);
	free(tmp);
	free(file);
	buf_release(&b);
	buf_release(&key);
	hmap_release(&index);
	hmap_release(&strs);
	return ret;
}

static int read_full(int fd, char *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		ssize_t n = read(fd, data + off, size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/*
 * The whole file, read with one read into the arena, or NULL. With a key,
 * the file must start with magic and then that key (flat_put_str): that is
 * read and compared first, so a cache of another revision (a new commit)
 * costs a few bytes of reading, not the whole file in memory.
 */
static char *slurp(const char *file, struct arena *a, size_t *len, const char *magic,
		   const struct buf *key)
{
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *data = NULL;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 8 ||
	    (uint64_t)st.st_size > CACHE_MAX)
		goto out;
	size_t size = (size_t)st.st_size;
	if (key) {
		char head[12];
		uint32_t klen;
		if (size < 12 + key->len + 1 || read_full(fd, head, sizeof(head)) < 0 ||
		    memcmp(head, magic, 8))
			goto out;
		memcpy(&klen, head + 8, 4);
		if (klen != key->len)
			goto out;
		char *k = xmalloc(key->len + 1);
		int same = read_full(fd, k, key->len + 1) == 0 &&
			   !memcmp(k, key->ptr ? key->ptr : "", key->len) && k[key->len] == '\0';
		free(k);
		if (!same || lseek(fd, 0, SEEK_SET) != 0)
			goto out;
	}
	data = arena_alloc_raw(a, size + 1);
	if (read_full(fd, data, size) < 0)
		data = NULL;	/* the arena keeps it until the pass ends */
	*len = size;
out:
	close(fd);
	return data;
}

int cache_load(struct pass *p, const char *state_dir)
{
	return cache_load_key(p, state_dir, NULL);
}

int cache_load_key(struct pass *p, const char *state_dir, const char *want)
{
	char *file = xasprintf("%s/cache/desired.bin", state_dir);
	struct buf key = BUF_INIT;
	size_t size = 0;
	int ret = 1;
	if (want)
		buf_adds(&key, want);
	else
		cache_key(p, &key);
	char *data = slurp(file, &p->arena, &size, CACHE_MAGIC, &key);
	if (!data || memcmp(data, CACHE_MAGIC, 8))
		goto out;
	struct flat r = { data + 8, data + size, 0 };
	size_t klen = 0;
	const char *k = flat_str(&r, &klen);
	if (!k || klen != key.len || memcmp(k, key.ptr, klen))
		goto out;
	/* trusted without validation, so it must be the bytes we wrote */
	uint64_t sum = flat_u64(&r);
	if (r.bad || flat_sum(FLAT_SUM_SEED, r.p, (size_t)(r.end - r.p)) != sum)
		goto out;
	uint32_t nstr = flat_u32(&r);
	if (r.bad || nstr > (size_t)(r.end - r.p) / 5)
		goto out;
	const char **strs = xmalloc(((size_t)nstr + 1) * sizeof(*strs));
	for (uint32_t i = 0; i < nstr; i++)
		if (!(strs[i] = flat_str(&r, NULL)))
			r.bad = 1;
	/* a string of the table by index, UINT32_MAX for none */
#define STR(v) ((v) == UINT32_MAX ? NULL : (v) < nstr ? strs[(v)] : (r.bad = 1, (const char *)NULL))
	uint32_t count = flat_u32(&r);
	if (r.bad || count > 10000000) {
		free(strs);
		goto out;
	}
	hmap_reserve(&p->by_id, count);
	hmap_reserve(&p->by_path, count);
	struct resource **all = xcalloc(count + 1, sizeof(*all));
	const char **deps = xcalloc(count + 1, sizeof(*deps));	/* into the file */
	uint32_t *ndeps = xcalloc(count + 1, sizeof(*ndeps));
	uint32_t *parents = xcalloc(count + 1, sizeof(*parents));
	for (uint32_t i = 0; i < count && !r.bad; i++) {
		uint32_t ki = flat_u32(&r);
		const char *kname = STR(ki);
		const struct kind *kk = kname ? kind_find(kname) : NULL;
		if (!kk) {
			r.bad = 1;
			break;
		}
		struct resource *res = pass_new_resource_at(p, kk, NULL);
		res->id = flat_str(&r, NULL);
		uint32_t nl = flat_u32(&r);
		if (nl == UINT32_MAX)
			res->name = flat_str(&r, NULL);
		else if (res->id && nl < strlen(res->id))
			res->name = res->id + strlen(res->id) - nl;
		else
			r.bad = 1;
		uint32_t fi = flat_u32(&r);
		res->pos.file = STR(fi);
		res->pos.line = (int)flat_u32(&r);
		res->pos.col = (int)flat_u32(&r);
		res->doc_index = (int)flat_u32(&r);
		uint32_t mi = flat_u32(&r), di = flat_u32(&r);
		res->manifest = STR(mi);
		res->manifest_dir = STR(di);
		if (kk->path_offset == SIZE_MAX)
			res->path = flat_str(&r, NULL);
		res->drift = (int)flat_u32(&r);
		res->prune = (int)flat_u32(&r);
		res->adopt = (int)flat_u32(&r);
		parents[i] = flat_u32(&r);
		if (flat_oid(&r, res->digest) < 0)
			break;
		res->order = (int)flat_u32(&r);
		uint32_t nforeign = flat_u32(&r), nfields = 0;
		while (kk->fields[nfields].name)
			nfields++;
		if (r.bad || nforeign > nfields) {
			r.bad = 1;
			break;
		}
		if (nforeign)
			res->fpos = arena_alloc(&p->arena, ((size_t)nforeign + 1) * sizeof(*res->fpos));
		for (uint32_t j = 0; j < nforeign && !r.bad; j++) {
			uint32_t f = flat_u32(&r);
			const char *from = flat_str(&r, NULL);
			int line = (int)flat_u32(&r), col = (int)flat_u32(&r);
			if (f >= nfields || !from || line <= 0) {
				r.bad = 1;
				break;
			}
			res->fpos[j] = fieldpos_make(f, from, line, col);
		}
		uint32_t nd = flat_u32(&r);
		if (r.bad || nd > count) {
			r.bad = 1;
			break;
		}
		if ((size_t)(r.end - r.p) / 4 < nd) {
			r.bad = 1;
			break;
		}
		deps[i] = r.p;
		ndeps[i] = nd;
		r.p += (size_t)nd * 4;
		r.p += (size_t)(-(r.p - data)) & 7;	/* data is 8-aligned (arena) */
		if (r.p > r.end || (size_t)(r.end - r.p) < kk->spec_size) {
			r.bad = 1;
			break;
		}
		res->spec = data + (r.p - data);	/* in place: the image lives as long as the pass */
		r.p += kk->spec_size;
		for (const struct field *f = kk->fields; f->name; f++) {
			char *slot = (char *)res->spec + f->offset;
			if (is_string_field(f->type)) {
				*(const char **)slot = flat_str(&r, NULL);
			} else if (f->type == FIELD_TEXT) {
				struct text *t = (struct text *)slot;
				size_t len = 0;
				t->ptr = flat_str(&r, &len);
				t->len = len;
			} else if (f->type == FIELD_LIST || f->type == FIELD_MAP) {
				uint32_t cnt = flat_u32(&r);
				const char **l = NULL;
				if (cnt != UINT32_MAX && !r.bad) {
					if (cnt > (uint32_t)(r.end - r.p) / 4) {
						r.bad = 1;
						break;
					}
					l = arena_alloc(&p->arena, ((size_t)cnt + 1) * sizeof(*l));
					for (uint32_t j = 0; j < cnt && !r.bad; j++)
						if (!(l[j] = flat_str(&r, NULL)))
							r.bad = 1;
				}
				*(const char ***)slot = l;
			}
		}
		if (kk->path_offset != SIZE_MAX)
			res->path = *(const char **)((char *)res->spec + kk->path_offset);
		if (!res->id || !res->name) {
			r.bad = 1;
			break;
		}
		all[i] = res;
	}
	if (!r.bad && r.p != r.end)
		r.bad = 1;
	for (uint32_t i = 0; !r.bad && i < count; i++) {
		if (parents[i] > count) {
			r.bad = 1;
			break;
		}
		if (parents[i])
			all[i]->parent = all[parents[i] - 1];
		/* exactly as many as there are, in the arena (capdeps 0: not
		 * malloc'd; res_add_dep copies them out before adding one) */
		if (ndeps[i])
			all[i]->deps = arena_alloc_raw(&p->arena, ndeps[i] * sizeof(*all[i]->deps));
		for (uint32_t d = 0; d < ndeps[i]; d++) {
			uint32_t j;
			memcpy(&j, deps[i] + (size_t)d * 4, 4);
			if (!j || j > count) {
				r.bad = 1;
				break;
			}
			all[i]->deps[all[i]->ndeps++] = all[j - 1];
		}
	}
	if (!r.bad) {
		for (uint32_t i = 0; i < count; i++) {
			pass_register(p, all[i]);
			if (all[i]->path)
				hmap_put(&p->by_path, all[i]->path, all[i]);
		}
		p->cache_key = arena_strndup(&p->arena, key.ptr, key.len);
		ret = 0;
	} else {
		for (uint32_t i = 0; i < count; i++)
			if (all[i] && all[i]->capdeps)
				free(all[i]->deps);
	}
	free(deps);
	free(ndeps);
	free(parents);
	free(all);
	free(strs);
#undef STR
out:
	free(file);
	buf_release(&key);
	return ret;
}

/* ---- the parse cache ----
 *
 * A new commit misses the desired-state cache above, yet usually changes a
 * manifest or two: the others parse to the same resources as before. So
 * what each manifest file parsed to (before validation, which depends on
 * the whole revision and is always done again) is kept by path and blob id
 * in cache/parsed.bin, written afresh by every load that parses: hits are
 * copied over as they are, new parses are added, files gone from the
 * revision drop out. Only top-level manifests with no diagnostic are kept
 * (a layer's patches make a file parse differently per layer). The key
 * holds what parsing depends on besides the file: the format, the local
 * policy and the host variables.
 */
#define PCACHE_MAGIC "DLPARSE3"

struct pcache_entry {
	uint32_t ndocs;		/* documents in the file, for messages */
	const char *oid;	/* 40 hex digits, in the mapping */
	const char *data;	/* the file's resources, in the mapping */
	size_t len;
	uint64_t sum;		/* flat_sum of data: checked when it is taken */
	uint32_t nres;
};

struct pcache {
	char *file, *tmp;
	char *map;		/* the old cache, mapped until the pass ends */
	size_t maplen;
	struct hmap old;	/* path -> pcache_entry */
	struct arena arena;
	FILE *out;		/* the new cache, NULL when it cannot be written */
	uint32_t nout;
	long count_at;		/* where the file count goes in out */
	int bad;
	int hits;		/* resources of some point into map */
	int asked;		/* pcache_take calls */
};

static void parse_key(const struct pass *p, struct buf *key)
{
	const struct policy *pol = p->policy;
	buf_addf(key, "%s parse\n", DRIFTLESS_VERSION);
	for (size_t i = 0; pol->kinds_set && i < pol->nkinds; i++)
		buf_addf(key, "kind %s\n", pol->kinds[i]);
	buf_addf(key, "kinds %d setid %d max %llu\n", pol->kinds_set, pol->allow_setid,
		 (unsigned long long)pol->max_file_size);
	vars_key(p->vars, key);
}

/* One resource as the parser left it: no digest, dependencies by name. */
static void put_parsed(struct buf *b, const struct resource *r, const struct srcpos *name_pos)
{
	const struct kind *k = r->kind;
	size_t nf = 0, present = 0;
	while (k->fields[nf].name)
		nf++;
	flat_put_cstr(b, k->name);
	flat_put_cstr(b, r->name);
	flat_put_u32(b, (uint32_t)r->pos.line);
	flat_put_u32(b, (uint32_t)r->pos.col);
	flat_put_u32(b, (uint32_t)name_pos->line);
	flat_put_u32(b, (uint32_t)name_pos->col);
	flat_put_u32(b, (uint32_t)r->doc_index);
	flat_put_u32(b, (uint32_t)r->drift);
	flat_put_u32(b, (uint32_t)r->prune);
	flat_put_u32(b, (uint32_t)r->adopt);
	for (const struct fieldpos *fp = r->fpos; fp && fp->line; fp++)
		present++;
	flat_put_u32(b, (uint32_t)present);
	for (const struct fieldpos *fp = r->fpos; fp && fp->line; fp++) {
		flat_put_u32(b, fp->field);
		flat_put_u32(b, fp->line);
		flat_put_u32(b, fp->col);
	}
	flat_put_u32(b, (uint32_t)r->ndep_ids);
	for (size_t d = 0; d < r->ndep_ids; d++) {
		flat_put_cstr(b, r->dep_ids[d]);
		flat_put_u32(b, (uint32_t)r->dep_pos[d].line);
		flat_put_u32(b, (uint32_t)r->dep_pos[d].col);
	}
	/* at a multiple of 8 from the entry's start, which is one in the
	 * file: a hit uses the spec in place */
	static const char zeros[8];
	buf_add(b, zeros, (size_t)(-b->len) & 7);
	buf_add(b, r->spec, k->spec_size);
	for (const struct field *f = k->fields; f->name; f++) {
		const char *slot = (const char *)r->spec + f->offset;
		if (is_string_field(f->type))
			flat_put_cstr(b, *(const char *const *)slot);
		else if (f->type == FIELD_TEXT)
			flat_put_str(b, ((const struct text *)slot)->ptr, ((const struct text *)slot)->len);
		else if (f->type == FIELD_LIST || f->type == FIELD_MAP) {
			const char *const *l = *(const char *const *const *)slot;
			size_t n = 0;
			while (l && l[n])
				n++;
			flat_put_u32(b, l ? (uint32_t)n : UINT32_MAX);
			for (size_t j = 0; j < n; j++)
				flat_put_cstr(b, l[j]);
		}
	}
}

/* The spec in place, in the entry that starts at base (the private, writable
 * mapping of the old cache), its pointers set to the strings after it. */
static int get_fields(struct flat *r, struct pass *p, const struct kind *kk, const char *base,
		      void **specp)
{
	r->p += (size_t)(-(r->p - base)) & 7;
	if (r->p > r->end || (size_t)(r->end - r->p) < kk->spec_size)
		return r->bad = 1, -1;
	void *spec = (char *)base + (r->p - base);
	*specp = spec;
	r->p += kk->spec_size;
	for (const struct field *f = kk->fields; f->name && !r->bad; f++) {
		char *slot = (char *)spec + f->offset;
		if (is_string_field(f->type)) {
			*(const char **)slot = flat_str(r, NULL);
		} else if (f->type == FIELD_TEXT) {
			struct text *t = (struct text *)slot;
			size_t len = 0;
			t->ptr = flat_str(r, &len);
			t->len = len;
		} else if (f->type == FIELD_LIST || f->type == FIELD_MAP) {
			uint32_t cnt = flat_u32(r);
			const char **l = NULL;
			if (cnt != UINT32_MAX && !r->bad) {
				if (cnt > (uint32_t)(r->end - r->p) / 4)
					return r->bad = 1, -1;
				l = arena_alloc(&p->arena, ((size_t)cnt + 1) * sizeof(*l));
				for (uint32_t j = 0; j < cnt && !r->bad; j++)
					if (!(l[j] = flat_str(r, NULL)))
						r->bad = 1;
			}
			*(const char ***)slot = l;
		}
	}
	return r->bad ? -1 : 0;
}

static struct resource *get_parsed(struct flat *r, struct pass *p, const char *file,
				   const char *dir, struct srcpos *name_pos, const char *base)
{
	const char *kname = flat_str(r, NULL);
	const struct kind *kk = kname ? kind_find(kname) : NULL;
	if (!kk) {
		r->bad = 1;
		return NULL;
	}
	struct resource *res = pass_new_resource_at(p, kk, NULL);
	size_t nf = 0;
	while (kk->fields[nf].name)
		nf++;
	res->name = flat_str(r, NULL);
	res->pos.file = file;
	res->pos.line = (int)flat_u32(r);
	res->pos.col = (int)flat_u32(r);
	*name_pos = (struct srcpos){ file, (int)flat_u32(r), (int)flat_u32(r) };
	res->doc_index = (int)flat_u32(r);
	res->manifest = file;
	res->manifest_dir = dir;
	res->drift = (int)flat_u32(r);
	res->prune = (int)flat_u32(r);
	res->adopt = (int)flat_u32(r);
	uint32_t present = flat_u32(r);
	if (r->bad || present > nf || !res->name) {
		r->bad = 1;
		return NULL;
	}
	res->fpos = arena_alloc(&p->arena, (present + 1) * sizeof(*res->fpos));
	for (uint32_t j = 0; j < present && !r->bad; j++) {
		uint32_t f = flat_u32(r);
		int line = (int)flat_u32(r), col = (int)flat_u32(r);
		if (f >= nf || line <= 0)
			r->bad = 1;
		else
			res->fpos[j] = fieldpos_make(f, file, line, col);
	}
	uint32_t nd = flat_u32(r);
	if (r->bad || nd > (uint32_t)(r->end - r->p) / 4) {
		r->bad = 1;
		return NULL;
	}
	if (nd) {
		res->dep_ids = arena_alloc(&p->arena, ((size_t)nd + 1) * sizeof(*res->dep_ids));
		res->dep_pos = arena_alloc(&p->arena, ((size_t)nd + 1) * sizeof(*res->dep_pos));
	}
	for (uint32_t d = 0; d < nd && !r->bad; d++) {
		res->dep_ids[d] = flat_str(r, NULL);
		res->dep_pos[d] = (struct srcpos){ file, (int)flat_u32(r), (int)flat_u32(r) };
		if (!res->dep_ids[d])
			r->bad = 1;
	}
	res->ndep_ids = nd;
	if (r->bad || get_fields(r, p, kk, base, &res->spec) < 0)
		return NULL;
	res->id = arena_join(&p->arena, kk->name, '/', res->name);
	if (kk->path_offset != SIZE_MAX)
		res->path = *(const char **)((char *)res->spec + kk->path_offset);
	return res;
}

struct pcache *pcache_open(struct pass *p, const char *state_dir)
{
	struct pcache *pc = xcalloc(1, sizeof(*pc));
	struct buf key = BUF_INIT;
	arena_init(&pc->arena);
	hmap_init(&pc->old);
	char *dir = xasprintf("%s/cache", state_dir);
	mkdir(dir, 0700);
	pc->file = xasprintf("%s/parsed.bin", dir);
	pc->tmp = xasprintf("%s/parsed.bin.%d", dir, (int)getpid());
	free(dir);
	parse_key(p, &key);
	/* the old one, if it is of the same key */
	int fd = open(pc->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 8 &&
	    (uint64_t)st.st_size <= CACHE_MAX) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (m != MAP_FAILED) {
			pc->map = m;
			pc->maplen = (size_t)st.st_size;
		}
	}
	if (fd >= 0)
		close(fd);
	if (pc->map && !memcmp(pc->map, PCACHE_MAGIC, 8)) {
		struct flat r = { pc->map + 8, pc->map + pc->maplen, 0 };
		size_t klen = 0;
		const char *k = flat_str(&r, &klen);
		uint32_t n = flat_u32(&r);
		for (uint32_t i = 0; k && klen == key.len && !memcmp(k, key.ptr, klen) && !r.bad &&
		     i < n; i++) {
			const char *path = flat_str(&r, NULL);
			const char *oid = flat_str(&r, NULL);
			uint32_t ndocs = flat_u32(&r), nres = flat_u32(&r), len = flat_u32(&r);
			uint64_t sum = flat_u64(&r);
			uint32_t pad = flat_u32(&r);
			if (!r.bad && pad < 8 && (size_t)(r.end - r.p) >= pad)
				r.p += pad;
			else
				r.bad = 1;
			if (r.bad || !path || !oid || strlen(oid) != 40 ||
			    (size_t)(r.end - r.p) < len) {
				r.bad = 1;
				break;
			}
			struct pcache_entry *e = arena_alloc(&pc->arena, sizeof(*e));
			*e = (struct pcache_entry){ ndocs, oid, r.p, len, sum, nres };
			hmap_put(&pc->old, path, e);
			r.p += len;
		}
		if (r.bad) {
			hmap_release(&pc->old);
			hmap_init(&pc->old);
		}
	}
	/* the new one */
	int ofd = open(pc->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	pc->out = ofd >= 0 ? fdopen(ofd, "w") : NULL;
	if (ofd >= 0 && !pc->out)
		close(ofd);
	if (pc->out) {
		struct buf h = BUF_INIT;
		buf_add(&h, PCACHE_MAGIC, 8);
		flat_put_str(&h, key.ptr, key.len);
		fwrite(h.ptr, 1, h.len, pc->out);
		pc->count_at = (long)h.len;
		uint32_t zero = 0;
		fwrite(&zero, 4, 1, pc->out);
		buf_release(&h);
	}
	buf_release(&key);
	return pc;
}

static void pcache_write_entry(struct pcache *pc, const char *path, const char *oid, uint32_t ndocs,
			       uint32_t nres, const char *data, size_t len)
{
	struct buf h = BUF_INIT;
	if (!pc->out || len > UINT32_MAX)
		return;
	flat_put_cstr(&h, path);
	flat_put_cstr(&h, oid);
	flat_put_u32(&h, ndocs);
	flat_put_u32(&h, nres);
	flat_put_u32(&h, (uint32_t)len);
	flat_put_u64(&h, flat_sum(FLAT_SUM_SEED, data, len));
	/* the data at a multiple of 8 in the file (specs are used in place) */
	long at = ftell(pc->out);
	size_t pad = at < 0 ? 0 : (size_t)(-((size_t)at + h.len + 4)) & 7;
	flat_put_u32(&h, (uint32_t)pad);
	static const char zeros[8];
	buf_add(&h, zeros, pad);
	if (at < 0 || fwrite(h.ptr, 1, h.len, pc->out) != h.len || fwrite(data, 1, len, pc->out) != len)
		pc->bad = 1;
	pc->nout++;
	buf_release(&h);
}

int pcache_take(struct pcache *pc, struct pass *p, const char *file, const char *dir,
		const char *oid, struct resource ***out, struct srcpos **name_pos, size_t *n,
		int *ndocs)
{
	if (pc)
		pc->asked++;
	struct pcache_entry *e = pc ? hmap_get(&pc->old, file) : NULL;
	/* a damaged entry would still be validated, but could name another
	 * path inside the roots: it must be the bytes that were written */
	if (!e || strcmp(e->oid, oid) || flat_sum(FLAT_SUM_SEED, e->data, e->len) != e->sum)
		return 1;
	struct flat r = { e->data, e->data + e->len, 0 };
	struct resource **v = xcalloc((size_t)e->nres + 1, sizeof(*v));
	struct srcpos *np = xcalloc((size_t)e->nres + 1, sizeof(*np));
	for (uint32_t i = 0; i < e->nres && !r.bad; i++)
		v[i] = get_parsed(&r, p, file, dir, &np[i], e->data);
	if (r.bad || r.p != r.end) {
		free(v);
		free(np);
		return 1;	/* whatever was allocated stays in the arena, unused */
	}
	pcache_write_entry(pc, file, oid, e->ndocs, e->nres, e->data, e->len);
	pc->hits++;
	*ndocs = (int)e->ndocs;
	*out = v;
	*name_pos = np;
	*n = e->nres;
	return 0;
}

void pcache_keep(struct pcache *pc, const char *file, const char *oid, int ndocs,
		 struct resource **v, const struct srcpos *name_pos, size_t n)
{
	struct buf b = BUF_INIT;
	if (!pc || !pc->out)
		return;
	for (size_t i = 0; i < n; i++)
		put_parsed(&b, v[i], &name_pos[i]);
	pcache_write_entry(pc, file, oid, (uint32_t)ndocs, (uint32_t)n, b.ptr ? b.ptr : "", b.len);
	buf_release(&b);
}

void pcache_counts(const struct pcache *pc, int *hits, int *asked)
{
	*hits = pc ? pc->hits : 0;
	*asked = pc ? pc->asked : 0;
}

void pcache_close(struct pcache *pc, struct pass *p)
{
	if (!pc)
		return;
	if (pc->out) {
		int ok = !pc->bad && fseek(pc->out, pc->count_at, SEEK_SET) == 0 &&
			 fwrite(&pc->nout, 4, 1, pc->out) == 1;
		/* a lost cache only costs a parse: no fsync, a torn one fails its checks */
		if (fclose(pc->out) || !ok || rename(pc->tmp, pc->file) < 0)
			unlink(pc->tmp);
	}
	/* resources loaded from the old map point into it: it goes with the pass */
	if (pc->map && pc->hits)
		pass_keep_map(p, pc->map, pc->maplen);
	else if (pc->map)
		munmap(pc->map, pc->maplen);
	hmap_release(&pc->old);
	arena_release(&pc->arena);
	free(pc->file);
	free(pc->tmp);
	free(pc);
}
