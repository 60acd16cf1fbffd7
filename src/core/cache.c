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
#include "lib/fs.h"

#define CACHE_MAGIC "DLCACHE7"
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

/* The kinds' spec layouts: the cache holds specs as raw bytes, so a build
 * that lays one out otherwise must miss, whatever its version says. */
static void layout_key(struct buf *key)
{
	buf_adds(key, "layout");
	for (size_t i = 0; kinds[i]; i++) {
		buf_addf(key, " %s:%zu", kinds[i]->name, kinds[i]->spec_size);
		for (const struct field *f = kinds[i]->fields; f->name; f++)
			buf_addf(key, ",%zu", f->offset);
	}
	buf_addf(key, " res:%zu\n", sizeof(struct resource));
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
	layout_key(key);
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

/* r's spec as it is in memory, at a multiple of 8 in the file (written
 * bytes precede b), then the strings and lists it points to */
static void put_spec(struct buf *b, size_t written, const struct resource *r)
{
	const struct kind *k = r->kind;
	static const char zeros[8];
	buf_add(b, zeros, (size_t)(-(written + b->len)) & 7);
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

/*
 * A resource in two parts, in two regions of the file. What the pass keeps
 * (the id, the spec and its strings) is read into the pass's arena and used
 * in place; the rest (positions, flags, the digest, dependencies) is copied
 * into the resource and its buffer freed, so that a pass does not hold the
 * whole file.
 */
static void put_kept(struct buf *b, size_t written, const struct resource *r)
{
	const struct kind *k = r->kind;
	flat_put_cstr(b, r->id);
	size_t il = strlen(r->id), nl = r->name ? strlen(r->name) : 0;
	if (!(r->name && nl < il && !strcmp(r->id + il - nl, r->name)))
		flat_put_cstr(b, r->name);
	if (k->path_offset == SIZE_MAX)	/* else it is the spec's */
		flat_put_cstr(b, r->path);
	/* files of fields a layer's patch wrote (capture must not edit the
	 * manifest for those); the others are in the manifest */
	for (const struct fieldpos *fp = r->fpos; fp && fp->line; fp++)
		if (fp->file && r->manifest && strcmp(fp->file, r->manifest))
			flat_put_cstr(b, fp->file);
	/* the spec: raw bytes at an offset that is a multiple of 8 (the load
	 * uses them in place), then every pointer the field table knows */
	put_spec(b, written, r);
}

static uint32_t str_at(const struct hmap *strs, const char *s)
{
	return s ? (uint32_t)(uintptr_t)hmap_get(strs, s) - 1 : UINT32_MAX;
}

static void put_meta(struct buf *b, const struct resource *r, const struct hmap *strs,
		     const struct hmap *index)
{
	flat_put_u32(b, str_at(strs, r->kind->name));
	size_t il = strlen(r->id), nl = r->name ? strlen(r->name) : 0;
	/* the name is the end of the id ("Kind/name", "Directory/d:rel") */
	flat_put_u32(b, r->name && nl < il && !strcmp(r->id + il - nl, r->name) ? (uint32_t)nl :
										  UINT32_MAX);
	flat_put_u32(b, str_at(strs, r->pos.file));
	flat_put_u32(b, (uint32_t)r->pos.line);
	flat_put_u32(b, (uint32_t)r->pos.col);
	flat_put_u32(b, (uint32_t)r->doc_index);
	flat_put_u32(b, str_at(strs, r->manifest));
	flat_put_u32(b, str_at(strs, r->manifest_dir));
	flat_put_u32(b, (uint32_t)r->drift);
	flat_put_u32(b, (uint32_t)r->prune);
	flat_put_u32(b, (uint32_t)r->adopt);
	flat_put_u32(b, r->parent ? (uint32_t)(uintptr_t)hmap_get(index, r->parent->id) : 0);
	flat_put_oid(b, r->digest);
	flat_put_u32(b, (uint32_t)r->order);
	uint32_t nforeign = 0;
	for (const struct fieldpos *fp = r->fpos; fp && fp->line; fp++)
		nforeign += fp->file && r->manifest && strcmp(fp->file, r->manifest);
	flat_put_u32(b, nforeign);
	for (const struct fieldpos *fp = r->fpos; nforeign && fp->line; fp++) {
		if (!fp->file || !r->manifest || !strcmp(fp->file, r->manifest))
			continue;
		flat_put_u32(b, fp->field);
		flat_put_u32(b, fp->line);
		flat_put_u32(b, fp->col);
	}
	flat_put_u32(b, (uint32_t)r->ndeps);
	for (size_t d = 0; d < r->ndeps; d++)
		flat_put_u32(b, (uint32_t)(uintptr_t)hmap_get(index, r->deps[d]->id));
}

/* the header: magic, key, zeros to a multiple of 8, then the sum of the
 * body and the length of its first region; its length */
static size_t head_len(size_t keylen)
{
	size_t n = 8 + 4 + keylen + 1;
	return n + ((size_t)(-n) & 7) + 16;
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
	static const char zeros[8];

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
	buf_adds(&b, CACHE_MAGIC);
	flat_put_str(&b, key.ptr, key.len);
	buf_add(&b, zeros, (size_t)(-b.len) & 7);
	off_t sum_at = (off_t)b.len;
	flat_put_u64(&b, 0);	/* the sum of the body */
	flat_put_u64(&b, 0);	/* the length of its kept region */
	if (fs_write_all(fd, b.ptr, b.len) < 0)
		failed = 1;
	written = b.len;
	buf_reset(&b);
	uint64_t sum = FLAT_SUM_SEED;
	/* the kept region: the strings many resources share (kind names,
	 * manifest files and their folders), written once and named by their
	 * index, then each resource's kept part */
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
	size_t kept_at = written;
	for (size_t i = 0; i < p->nres && !failed; i++) {
		put_kept(&b, written, p->res[i]);
		if (b.len >= CACHE_FLUSH && flush_to(fd, &b, &sum, &written, 0) < 0)
			failed = 1;
	}
	buf_add(&b, zeros, (size_t)(-(written + b.len)) & 7);
	uint64_t tail[2] = { 0, written + b.len - kept_at };
	/* the other region, a record a resource, each after its length: the
	 * load reads it a piece at a time */
	struct buf rec = BUF_INIT;
	for (size_t i = 0; i < p->nres && !failed; i++) {
		buf_reset(&rec);
		put_meta(&rec, p->res[i], &strs, &index);
		flat_put_u32(&b, (uint32_t)rec.len);
		buf_add(&b, rec.ptr, rec.len);
		if (b.len >= CACHE_FLUSH && flush_to(fd, &b, &sum, &written, 0) < 0)
			failed = 1;
	}
	buf_release(&rec);
	/* a lost cache only costs a parse; no fsync needed for correctness,
	 * and a torn or damaged file fails its sum and is a miss */
	if (failed || flush_to(fd, &b, &sum, &written, 1) < 0 ||
	    (tail[0] = flat_sum(sum, (const char *)&tail[1], 8),
	     pwrite(fd, tail, sizeof(tail), sum_at) != (ssize_t)sizeof(tail))) {
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

/* The second region, a piece at a time: its records are copied out as they
 * are read, so a load never holds all of it. */
struct meta_reader {
	int fd;
	off_t off, end;		/* in the file: next to read, end of the region */
	char *buf;
	size_t pos, len, cap;
};

/* at least n bytes at buf + pos, or -1 */
static int meta_need(struct meta_reader *mr, size_t n)
{
	if (mr->len - mr->pos >= n)
		return 0;
	memmove(mr->buf, mr->buf + mr->pos, mr->len - mr->pos);
	mr->len -= mr->pos;
	mr->pos = 0;
	if (n > mr->cap) {
		if (n > (size_t)(mr->end - mr->off) + mr->len)
			return -1;
		mr->cap = n;
		mr->buf = xrealloc(mr->buf, mr->cap);
	}
	while (mr->len < n) {
		size_t want = mr->cap - mr->len;
		if ((off_t)want > mr->end - mr->off)
			want = (size_t)(mr->end - mr->off);
		if (!want)
			return -1;
		ssize_t got = pread(mr->fd, mr->buf + mr->len, want, mr->off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		mr->len += (size_t)got;
		mr->off += got;
	}
	return 0;
}

/*
 * The file, if it starts with magic and then key: its kept region read into
 * the arena (it lives as long as the pass), the other checked and left to
 * read a piece at a time (mr, whose fd the caller closes). The header is
 * read and compared first, so a cache of another revision (a new commit)
 * costs a few bytes of reading.
 */
static int read_regions(const char *file, struct arena *a, const struct buf *key, char **kept,
			size_t *kept_len, struct meta_reader *mr)
{
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int ret = -1;
	char *head = NULL;
	if (fd < 0)
		return -1;
	size_t hl = head_len(key->len);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > CACHE_MAX ||
	    (size_t)st.st_size < hl)
		goto out;
	head = xmalloc(hl);
	uint32_t klen;
	uint64_t tail[2];
	if (fs_pread_all(fd, head, hl, 0) < 0 || memcmp(head, CACHE_MAGIC, 8))
		goto out;
	memcpy(&klen, head + 8, 4);
	memcpy(tail, head + hl - 16, 16);
	if (klen != key->len || memcmp(head + 12, key->ptr ? key->ptr : "", key->len) ||
	    head[12 + key->len] != '\0')
		goto out;
	size_t body = (size_t)st.st_size - hl;
	if (tail[1] > body || tail[1] % 8)
		goto out;
	*kept_len = (size_t)tail[1];
	*kept = arena_alloc_raw(a, *kept_len + 1);
	if (fs_pread_all(fd, *kept, *kept_len, (off_t)hl) < 0)
		goto out;	/* the arena keeps it until the pass ends */
	/* the sum of both before anything is used: the second region is
	 * read twice, a MiB at a time */
	uint64_t sum = flat_sum(FLAT_SUM_SEED, *kept, *kept_len);
	mr->cap = CACHE_FLUSH;
	mr->buf = xmalloc(mr->cap);
	for (off_t at = (off_t)(hl + *kept_len); at < st.st_size;) {
		size_t n = (size_t)(st.st_size - at) < mr->cap ? (size_t)(st.st_size - at) : mr->cap;
		if (fs_pread_all(fd, mr->buf, n, at) < 0)
			goto out;
		sum = flat_sum(sum, mr->buf, n);	/* a MiB: a multiple of 8 but the last */
		at += (off_t)n;
	}
	if (flat_sum(sum, (const char *)&tail[1], 8) != tail[0])	/* and where the regions meet */
		goto out;
	mr->fd = fd;
	mr->off = (off_t)(hl + *kept_len);
	mr->end = st.st_size;
	fd = -1;
	ret = 0;
out:
	free(head);
	if (fd >= 0)
		close(fd);
	return ret;
}

int cache_load(struct pass *p, const char *state_dir)
{
	return cache_load_key(p, state_dir, NULL);
}

int cache_load_key(struct pass *p, const char *state_dir, const char *want)
{
	char *file = xasprintf("%s/cache/desired.bin", state_dir);
	struct buf key = BUF_INIT;
	char *kept = NULL;
	size_t kept_len = 0;
	struct meta_reader mr = { .fd = -1 };
	int ret = 1;
	if (want)
		buf_adds(&key, want);
	else
		cache_key(p, &key);
	/* trusted without validation, so it must be the bytes we wrote (the
	 * read checks the sum) */
	if (read_regions(file, &p->arena, &key, &kept, &kept_len, &mr) < 0)
		goto out;
	struct flat r = { kept, kept + kept_len, 0 };	/* used in place */
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
	uint32_t *dep_at = xcalloc(count + 1, sizeof(*dep_at));	/* into depidx */
	uint32_t *ndeps = xcalloc(count + 1, sizeof(*ndeps));
	uint32_t *depidx = NULL;
	size_t ndepidx = 0, capdepidx = 0;
	uint32_t *parents = xcalloc(count + 1, sizeof(*parents));
	for (uint32_t i = 0; i < count && !r.bad; i++) {
		/* this resource's record of the second region */
		uint32_t rl;
		if (meta_need(&mr, 4) < 0) {
			r.bad = 1;
			break;
		}
		memcpy(&rl, mr.buf + mr.pos, 4);
		mr.pos += 4;
		if (meta_need(&mr, rl) < 0) {
			r.bad = 1;
			break;
		}
		struct flat m = { mr.buf + mr.pos, mr.buf + mr.pos + rl, 0 };
		mr.pos += rl;
		uint32_t ki = flat_u32(&m);
		const char *kname = STR(ki);
		const struct kind *kk = kname ? kind_find(kname) : NULL;
		if (!kk) {
			r.bad = 1;
			break;
		}
		struct resource *res = pass_new_resource_at(p, kk, NULL);
		res->id = flat_str(&r, NULL);
		uint32_t nl = flat_u32(&m);
		if (nl == UINT32_MAX)
			res->name = flat_str(&r, NULL);
		else if (res->id && nl < strlen(res->id))
			res->name = res->id + strlen(res->id) - nl;
		else
			r.bad = 1;
		uint32_t fi = flat_u32(&m);
		res->pos.file = STR(fi);
		res->pos.line = (int)flat_u32(&m);
		res->pos.col = (int)flat_u32(&m);
		res->doc_index = (int)flat_u32(&m);
		uint32_t mi = flat_u32(&m), di = flat_u32(&m);
		res->manifest = STR(mi);
		res->manifest_dir = STR(di);
		if (kk->path_offset == SIZE_MAX)
			res->path = flat_str(&r, NULL);
		res->drift = (signed char)flat_u32(&m);
		res->prune = (signed char)flat_u32(&m);
		res->adopt = (signed char)flat_u32(&m);
		parents[i] = flat_u32(&m);
		if (flat_oid(&m, res->digest) < 0) {
			r.bad = 1;
			break;
		}
		res->order = (int)flat_u32(&m);
		uint32_t nforeign = flat_u32(&m), nfields = 0;
		while (kk->fields[nfields].name)
			nfields++;
		if (m.bad || nforeign > nfields) {
			r.bad = 1;
			break;
		}
		if (nforeign)
			res->fpos = arena_alloc(&p->arena, ((size_t)nforeign + 1) * sizeof(*res->fpos));
		for (uint32_t j = 0; j < nforeign && !r.bad; j++) {
			uint32_t f = flat_u32(&m);
			int line = (int)flat_u32(&m), col = (int)flat_u32(&m);
			const char *from = flat_str(&r, NULL);
			if (m.bad || f >= nfields || !from || line <= 0) {
				r.bad = 1;
				break;
			}
			res->fpos[j] = fieldpos_make(f, from, line, col);
		}
		uint32_t nd = flat_u32(&m);
		if (r.bad || m.bad || nd > count || (size_t)(m.end - m.p) / 4 < nd) {
			r.bad = 1;
			break;
		}
		if (ndepidx + nd > capdepidx) {
			capdepidx = (ndepidx + nd) * 2;
			depidx = xrealloc(depidx, capdepidx * sizeof(*depidx));
		}
		dep_at[i] = (uint32_t)ndepidx;
		ndeps[i] = nd;
		for (uint32_t d = 0; d < nd; d++)
			depidx[ndepidx++] = flat_u32(&m);
		if (m.bad || m.p != m.end) {
			r.bad = 1;
			break;
		}
		r.p += (size_t)(-(r.p - kept)) & 7;	/* kept is 8-aligned (arena) */
		if (r.p > r.end || (size_t)(r.end - r.p) < kk->spec_size) {
			r.bad = 1;
			break;
		}
		res->spec = kept + (r.p - kept);	/* in place: it lives as long as the pass */
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
	/* the kept region ends with zeros to a multiple of 8 */
	if (!r.bad && (size_t)(r.end - r.p) < 8 && !memcmp(r.p, "\0\0\0\0\0\0\0", (size_t)(r.end - r.p)))
		r.p = r.end;
	if (r.p != r.end || mr.pos != mr.len || mr.off != mr.end)
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
			uint32_t j = depidx[dep_at[i] + d];
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
	free(dep_at);
	free(depidx);
	free(ndeps);
	free(parents);
	free(all);
	free(strs);
#undef STR
out:
	free(mr.buf);
	if (mr.fd >= 0)
		close(mr.fd);
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
#define PCACHE_MAGIC "DLPARSE4"

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
	layout_key(key);
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
	put_spec(b, 0, r);
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
