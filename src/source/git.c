/* SPDX-License-Identifier: MIT */
/* libgit2: a bare object cache per remote, fetched by exact ref, read by object id; no worktree, hooks or filters. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <libssh2.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <pthread.h>
#include <zlib.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "core/model.h"
#include "lib/err.h"
#include "lib/flat.h"
#include "lib/fs.h"
#include "lib/thread.h"
#include "lib/sshsig.h"
#include "lib/semver.h"
#include "source/git.h"

struct gitsrc {
	git_repository *repo;
	git_odb *odb;
	git_oid root_commit;	/* the commit whose root tree is held below */
	git_tree *root;
	/* the folder of the last gitsrc_lookup in root: sources are listed
	 * folder by folder, so most lookups are one search by name */
	git_tree *dir;
	char *dir_path;
	char *url;
	char *safe_url;
	struct memo *memo;	/* loaded on first use */
};

/* Strip userinfo from every "scheme://user:pass@host" in s (in place). */
static void scrub(char *s)
{
	char *p = s;
	while ((p = strstr(p, "://"))) {
		char *host = p + 3;
		char *end = host + strcspn(host, "/ \t'\"");
		char *at = memchr(host, '@', (size_t)(end - host));
		if (at)
			memmove(host, at + 1, strlen(at + 1) + 1);
		p = host;
	}
}

/* Set when libgit2 reported damage in the cache itself (not the network). */
static int cache_damaged;

static int git_fail(const char *fmt, const char *arg)
{
	const git_error *e = git_error_last();
	if (e && (e->klass == GIT_ERROR_ODB || e->klass == GIT_ERROR_ZLIB ||
		  e->klass == GIT_ERROR_OBJECT || e->klass == GIT_ERROR_REPOSITORY ||
		  e->klass == GIT_ERROR_REFERENCE || e->klass == GIT_ERROR_INDEX ||
		  e->klass == GIT_ERROR_CONFIG))
		cache_damaged = 1;
	char *msg = xasprintf("%s", e && e->message ? e->message : "unknown libgit2 error");
	char *what = xasprintf(fmt, arg);
	scrub(msg);
	scrub(what);
	err_set("%s: %s", what, msg);
	free(msg);
	free(what);
	return -1;
}

char *gitsrc_redact_url(const char *url)
{
	char *s = xstrdup(url);
	scrub(s);
	return s;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_shutdown(void)
{
	git_libgit2_shutdown();
	libssh2_exit();
}

static void lib_init_once(void)
{
	/* libssh2 first, without its crypto init: libgit2's own libssh2_init
	 * then only counts, and OpenSSL is not set up (its configuration read,
	 * its engines loaded: 1.5 MB resident in every process) for the few
	 * runs that fetch over SSH, where it sets itself up on first use */
	libssh2_init(LIBSSH2_INIT_NO_CRYPTO);
	git_libgit2_init();
	atexit(lib_shutdown);
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 1);
	/* no single object of an infrastructure repository needs to be this big */
	git_libgit2_opts(GIT_OPT_SET_PACK_MAX_OBJECT_SIZE, (size_t)256 << 20);
	/* trees are looked up once per resource: keep big ones in libgit2's cache */
	git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)64 << 20);
	git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_COMMIT, (size_t)1 << 20);
	/* pack files are read through windows of this size, at most this much
	 * mapped at once: a walk of every blob's header in a big repository
	 * otherwise keeps the whole pack resident (12 MB of a one-file commit's
	 * peak at 100,000 files) */
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)1 << 20);
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)4 << 20);
	/* never read a user's or the system's git configuration */
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_PROGRAMDATA, "");
}

/* the warm-up thread, joined by the first user or by main() before it
 * returns: never running while exit handlers (ours, OpenSSL's) tear the
 * libraries down, and its thread locals are gone before the process is */
static pthread_t warm_thread;
static int warm_running;

void gitsrc_warmup_wait(void)
{
	if (!warm_running)
		return;
	warm_running = 0;
	pthread_join(warm_thread, NULL);
}

/* Called on the main thread only; the warm-up thread calls pthread_once. */
static void lib_init(void)
{
	gitsrc_warmup_wait();
	pthread_once(&lib_once, lib_init_once);
}

static void *warmup_thread(void *arg)
{
	(void)arg;
	pthread_once(&lib_once, lib_init_once);
	return NULL;
}

void gitsrc_warmup(void)
{
	if (warm_running)
		return;
	if (thread_start(&warm_thread, warmup_thread, NULL, 0) == 0)
		warm_running = 1;
}

const char *gitsrc_version(void)
{
	static char v[32];
	int a, b, c;
	git_libgit2_version(&a, &b, &c);
	snprintf(v, sizeof(v), "%d.%d.%d", a, b, c);
	return v;
}

/* SHA-1 from libcrypto: the same ids as libgit2's collision-detecting
 * SHA-1 at two to four times the speed (a pass hashes a digest of every
 * resource, and every file whose stat changed). The plain SHA1_* calls:
 * deprecated in OpenSSL 3 but kept, and unlike EVP they start no provider
 * machinery (which read openssl.cnf and held 2 MB more). */
void gitsrc_hash_blob(const void *data, size_t len, char out[41])
{
	char head[32];
	unsigned char md[SHA_DIGEST_LENGTH];
	int n = snprintf(head, sizeof(head), "blob %zu", len);
	SHA_CTX c;
	SHA1_Init(&c);
	SHA1_Update(&c, head, (size_t)n + 1);
	SHA1_Update(&c, data, len);
	SHA1_Final(md, &c);
	oid_to_hex(md, out);
}

/* Lock files in the cache can only be left by a killed process: the caller
 * holds the state directory's lock, so no one else is writing here. */
static void clear_stale_locks(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d || depth > 16) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "objects"))
			continue;
		char *sub = xasprintf("%s/%s", dir, de->d_name);
		size_t n = strlen(de->d_name);
		struct stat st;
		if (lstat(sub, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				clear_stale_locks(sub, depth + 1);
			else if (S_ISREG(st.st_mode) && n > 5 && !strcmp(de->d_name + n - 5, ".lock"))
				unlink(sub);
		}
		free(sub);
	}
	closedir(d);
}

/* ---- the memo: facts about objects, kept from one pass to the next ---- */

/*
 * A blob's size costs a read down its delta chain in the pack, and a tree
 * costs a read of every entry below it; at 100,000 sources both are most of
 * what a commit that changed one file costs. Objects never change, so their
 * facts are kept in the cache's 'driftless-memo': the size of each blob
 * looked up, and the trees in which a walk with a 'matters' test found
 * nothing that matters, at any depth (gitsrc_walk_pruned skips them). The
 * file holds what the last pass used: a blob or tree no longer in the
 * revision drops out. It is summed; a damaged one is ignored (and a wrong
 * size cannot let a big blob through: gitsrc_read_blob reads its header).
 */
#define MEMO_MAGIC "DLMEMO01"	/* also the version of manifest_matters() */
#define MEMO_MAX 4000000u

struct memo_size {
	unsigned char oid[20];
	uint32_t hi, lo;
};

struct memo {
	char *data;			/* the file as read: used in place */
	const unsigned char *sizes;	/* records of 28 bytes: id, size high, size low */
	const unsigned char *trees;	/* ids, 20 bytes each */
	uint32_t *slots;		/* sizes by id: index + 1, open addressing */
	size_t mask;
	size_t nsizes, ntrees;
	unsigned char *used_s, *used_t;	/* one byte each: looked up this time */
	struct memo_size *add;		/* new this time */
	unsigned char (*addt)[20];
	size_t nadd, capadd, naddt, capaddt;
	size_t unused;			/* entries from the file not used yet */
};

/* record i of the file's sizes */
static struct memo_size memo_rec(const struct memo *m, size_t i)
{
	struct memo_size r;
	const unsigned char *at = m->sizes + 28 * i;
	memcpy(r.oid, at, 20);
	memcpy(&r.hi, at + 20, 4);
	memcpy(&r.lo, at + 24, 4);
	return r;
}

static char *memo_path(const struct gitsrc *g)
{
	return xasprintf("%sdriftless-memo", git_repository_path(g->repo));
}

static int oid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 20);
}

/* an object id is a hash already: its first bytes will do */
static size_t memo_hash(const unsigned char oid[20])
{
	uint64_t h;
	memcpy(&h, oid, sizeof(h));
	return (size_t)h;
}

static struct memo *memo_get(struct gitsrc *g)
{
	if (g->memo)
		return g->memo;
	struct memo *m = g->memo = xcalloc(1, sizeof(*m));
	char *path = memo_path(g);
	struct buf b = BUF_INIT;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	struct stat st;
	if (fd < 0)
		return m;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 32 &&
	    (uint64_t)st.st_size <= 32 + (uint64_t)MEMO_MAX * 44) {
		buf_grow(&b, (size_t)st.st_size);
		b.len = fs_pread_all(fd, b.ptr, (size_t)st.st_size, 0) == 0 ? (size_t)st.st_size : 0;
	}
	close(fd);
	uint64_t ns, nt, sum;
	if (b.len >= 32 && !memcmp(b.ptr, MEMO_MAGIC, 8)) {
		memcpy(&ns, b.ptr + 8, 8);
		memcpy(&nt, b.ptr + 16, 8);
		memcpy(&sum, b.ptr + b.len - 8, 8);
		if (ns <= MEMO_MAX && nt <= MEMO_MAX && 24 + ns * 28 + nt * 20 + 8 == b.len &&
		    flat_sum(FLAT_SUM_SEED, b.ptr, b.len - 8) == sum) {
			m->sizes = (const unsigned char *)b.ptr + 24;
			m->trees = m->sizes + 28 * ns;
			m->nsizes = ns;
			m->ntrees = nt;
			/* at most half full: a lookup is a probe or two, not 17 */
			size_t cap = 16;
			while (cap < 2 * ns)
				cap *= 2;
			m->slots = xcalloc(cap, sizeof(*m->slots));
			m->mask = cap - 1;
			for (size_t i = 0; i < ns; i++) {
				size_t h = memo_hash(m->sizes + 28 * i) & m->mask;
				while (m->slots[h])
					h = (h + 1) & m->mask;
				m->slots[h] = (uint32_t)i + 1;
			}
			m->used_s = xcalloc(ns + 1, 1);
			m->used_t = xcalloc(nt + 1, 1);
			m->unused = ns + nt;
			m->data = b.ptr;	/* kept: the records are read in place */
			return m;
		}
	}
	buf_release(&b);
	return m;
}

static int memo_size(struct gitsrc *g, const git_oid *id, uint64_t *size)
{
	struct memo *m = memo_get(g);
	if (!m->nsizes)
		return -1;
	size_t h = memo_hash(id->id) & m->mask, i;
	for (;; h = (h + 1) & m->mask) {
		if (!m->slots[h])
			return -1;
		i = m->slots[h] - 1;
		if (!memcmp(m->sizes + 28 * i, id->id, 20))
			break;
	}
	struct memo_size e = memo_rec(m, i);
	m->unused -= !m->used_s[i];
	m->used_s[i] = 1;
	*size = (uint64_t)e.hi << 32 | e.lo;
	return 0;
}

/* The size of blob id: from the memo, or its header (then kept). */
static int blob_size(struct gitsrc *g, const git_oid *id, uint64_t *size)
{
	if (memo_size(g, id, size) == 0)
		return 0;
	size_t sz;
	git_object_t ot;
	if (git_odb_read_header(&sz, &ot, g->odb, id) < 0)
		return -1;
	*size = sz;
	struct memo *m = g->memo;
	if (ot == GIT_OBJECT_BLOB && m->nadd < MEMO_MAX) {
		if (m->nadd == m->capadd) {
			m->capadd = m->capadd ? m->capadd * 2 : 1024;
			m->add = xrealloc(m->add, m->capadd * sizeof(*m->add));
		}
		memcpy(m->add[m->nadd].oid, id->id, 20);
		m->add[m->nadd].hi = (uint32_t)(sz >> 32);
		m->add[m->nadd].lo = (uint32_t)sz;
		m->nadd++;
	}
	return 0;
}

static int memo_has_tree(struct gitsrc *g, const git_oid *id)
{
	struct memo *m = memo_get(g);
	const unsigned char *e = m->ntrees ? bsearch(id->id, m->trees, m->ntrees, 20, oid_cmp) : NULL;
	if (!e)
		return 0;
	size_t i = (size_t)(e - m->trees) / 20;
	m->unused -= !m->used_t[i];
	m->used_t[i] = 1;
	return 1;
}

static void memo_add_tree(struct gitsrc *g, const git_oid *id)
{
	struct memo *m = memo_get(g);
	if (m->naddt >= MEMO_MAX)
		return;
	if (m->naddt == m->capaddt) {
		m->capaddt = m->capaddt ? m->capaddt * 2 : 64;
		m->addt = xrealloc(m->addt, m->capaddt * 20);
	}
	memcpy(m->addt[m->naddt++], id->id, 20);
}

/* The used sizes of the file and the new ones (sorted), merged in id
 * order without twins: each to b when b is set (flushed to fd a piece at a
 * time, summed), else only counted; the number of them. */
static uint64_t memo_merge(const struct memo *m, struct buf *b, int fd, uint64_t *sum, int *bad)
{
	uint64_t n = 0;
	struct memo_size last, cur;
	for (size_t i = 0, j = 0; i < m->nsizes || j < m->nadd;) {
		if (i < m->nsizes && !m->used_s[i]) {
			i++;
			continue;
		}
		if (j == m->nadd || (i < m->nsizes && memcmp(m->sizes + 28 * i, m->add[j].oid, 20) <= 0))
			cur = memo_rec(m, i++);
		else
			cur = m->add[j++];
		if (n && !memcmp(cur.oid, last.oid, 20))
			continue;
		last = cur;
		n++;
		if (!b)
			continue;
		buf_add(b, cur.oid, 20);
		buf_add(b, &cur.hi, 4);
		buf_add(b, &cur.lo, 4);
		if (b->len >= 65536 && flat_flush(fd, b, sum, 0) < 0)
			*bad = 1;
	}
	return n;
}

/* what this gitsrc used, written when something was added or dropped out;
 * streamed, since this runs while a whole load is held (the peak of a pass
 * at 100,000 files was here, with the memo built whole in memory) */
static void memo_save(struct gitsrc *g)
{
	struct memo *m = g->memo;
	if (!m || (!m->nadd && !m->naddt && !m->unused))
		return;
	/* the file's sizes are sorted already: only the new ones are */
	if (m->nadd)
		qsort(m->add, m->nadd, sizeof(*m->add), oid_cmp);
	size_t nt = 0;
	unsigned char(*t)[20] = xcalloc(m->ntrees + m->naddt + 1, 20);
	for (size_t i = 0; i < m->ntrees; i++)
		if (m->used_t[i])
			memcpy(t[nt++], m->trees + 20 * i, 20);
	if (m->naddt)
		memcpy(t + nt, m->addt, m->naddt * 20);
	nt += m->naddt;
	if (nt)
		qsort(t, nt, 20, oid_cmp);
	uint64_t wt = 0;
	for (size_t i = 0; i < nt; i++)
		if (!i || memcmp(t[i], t[i - 1], 20))
			memmove(t[wt++], t[i], 20);
	/* a cache: renamed into place, not synced (a torn one fails its sum) */
	char *path = memo_path(g), *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		struct buf b = BUF_INIT;
		uint64_t sum = FLAT_SUM_SEED, ws = memo_merge(m, NULL, -1, NULL, NULL);
		int bad = 0;
		buf_add(&b, MEMO_MAGIC, 8);
		buf_add(&b, &ws, 8);
		buf_add(&b, &wt, 8);
		memo_merge(m, &b, fd, &sum, &bad);
		buf_add(&b, t, (size_t)wt * 20);
		if (flat_flush(fd, &b, &sum, 1) < 0)
			bad = 1;
		int ok = !bad && fs_write_all(fd, &sum, 8) == 0;
		if (close(fd) == 0 && ok)
			rename(tmp, path);
		else
			unlink(tmp);
		buf_release(&b);
	}
	free(t);
	free(tmp);
	free(path);
}

static void memo_free(struct memo *m)
{
	if (!m)
		return;
	free(m->data);
	free(m->slots);
	free(m->used_s);
	free(m->used_t);
	free(m->add);
	free(m->addt);
	free(m);
}

/* the folder of the last lookup, of a root no longer held */
static void forget_dir(struct gitsrc *g)
{
	git_tree_free(g->dir);
	g->dir = NULL;
	free(g->dir_path);
	g->dir_path = NULL;
}

int gitsrc_cache_damaged(void)
{
	int r = cache_damaged;
	cache_damaged = 0;
	return r;
}

int gitsrc_cache_reset(const char *cache_dir, const char *url, char **aside)
{
	char key[41];
	gitsrc_hash_blob(url, strlen(url), key);
	char *path = xasprintf("%s/%.16s.git", cache_dir, key);
	*aside = xasprintf("%s.corrupt-%lld", path, (long long)time(NULL));
	int r = rename(path, *aside);
	free(path);
	return r < 0 ? err_set_errno("cannot move the git cache aside") : 0;
}

int gitsrc_open(struct gitsrc **out, const char *cache_dir, const char *url)
{
	lib_init();
	struct gitsrc *g = xcalloc(1, sizeof(*g));
	char key[41];
	gitsrc_hash_blob(url, strlen(url), key);
	char *path = xasprintf("%s/%.16s.git", cache_dir, key);
	g->url = xstrdup(url);
	g->safe_url = gitsrc_redact_url(url);
	mkdir(cache_dir, 0700);
	clear_stale_locks(path, 0);
	if (git_repository_open_bare(&g->repo, path) < 0) {
		/* an unusable cache (garbage HEAD, broken config) is moved aside */
		struct stat st;
		if (stat(path, &st) == 0) {
			char *aside = xasprintf("%s.corrupt-%lld", path, (long long)time(NULL));
			rename(path, aside);
			free(aside);
		}
	}
	if (!g->repo && git_repository_init(&g->repo, path, 1) < 0) {
		git_fail("cannot open the git cache '%s'", path);
		free(path);
		gitsrc_free(g);
		return -1;
	}
	free(path);
	if (git_repository_odb(&g->odb, g->repo) < 0) {
		git_fail("cannot open the object database of '%s'", g->safe_url);
		gitsrc_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

void gitsrc_free(struct gitsrc *g)
{
	if (!g)
		return;
	if (g->memo && g->repo)
		memo_save(g);
	memo_free(g->memo);
	forget_dir(g);
	git_tree_free(g->root);
	git_odb_free(g->odb);
	git_repository_free(g->repo);
	free(g->url);
	free(g->safe_url);
	free(g);
}

/* ---- transports: host keys, credentials, the size cap and the deadline ---- */

struct xfer {
	const struct source_opts *o;
	const char *safe_url;
	char host[256];		/* of the URL, for known_hosts */
	int port;
	int cred_tries;		/* per connection: a second ask means the first was refused */
	char *why;		/* our reason for stopping, kept past libgit2's own message */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int xfer_stop(struct xfer *x, char *why)
{
	if (!x->why)
		x->why = why;
	else
		free(why);
	git_error_set_str(GIT_ERROR_NET, x->why);
	return -1;
}

static int xfer_late(struct xfer *x)
{
	if (!x->o->deadline_ms || mono_ms() < x->o->deadline_ms)
		return 0;
	return xfer_stop(x, xasprintf("fetching from '%s' took longer than the deadline"
				      " ('source.timeout'); stopped", x->safe_url));
}

/* 1 for ssh://, ssh+git://, git+ssh:// and scp-like "user@host:path". */
static int is_ssh_url(const char *url)
{
	if (!strncmp(url, "ssh://", 6) || !strncmp(url, "ssh+git://", 10) ||
	    !strncmp(url, "git+ssh://", 10))
		return 1;
	const char *colon = strchr(url, ':');
	return colon && !strstr(url, "://") && url[0] != '/' && colon > url &&
	       !memchr(url, '/', (size_t)(colon - url));
}

/* The host and port an ssh URL connects to. */
static void ssh_host_port(const char *url, char *host, size_t hostlen, int *port)
{
	const char *h = strstr(url, "://");
	int scp = !h;
	h = h ? h + 3 : url;
	size_t auth = strcspn(h, "/");
	const char *at = memchr(h, '@', scp ? strcspn(h, ":") : auth);
	if (at)
		h = at + 1;
	*port = 22;
	size_t n;
	if (*h == '[') {
		h++;
		n = strcspn(h, "]");
		if (!scp && h[n] == ']' && h[n + 1] == ':')
			*port = atoi(h + n + 2);
	} else {
		n = strcspn(h, scp ? ":" : ":/");
		if (!scp && h[n] == ':')
			*port = atoi(h + n + 1);
	}
	snprintf(host, hostlen, "%.*s", (int)n, h);
}

static int cert_check(git_cert *cert, int valid, const char *host, void *payload)
{
	struct xfer *x = payload;
	(void)host;
	if (xfer_late(x))
		return -1;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
		/* the CA bundle was installed with GIT_OPT_SET_SSL_CERT_LOCATIONS; trust the verdict */
		return valid ? 0 : -1;
	/* ssh: libgit2's verdict comes from ~/.ssh/known_hosts; ours from the config only */
	const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
	if (!x->o->known_hosts)
		return xfer_stop(x, xasprintf("'%s' is an ssh remote: set 'source.auth.knownHosts' to"
					      " pin its host key", x->safe_url));
	if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey || !hk->hostkey_len)
		return xfer_stop(x, xasprintf("the ssh server of '%s' sent no host key", x->safe_url));
	if (sshsig_known_host(x->o->known_hosts, strlen(x->o->known_hosts),
			      x->o->known_hosts_file ? x->o->known_hosts_file : "known_hosts",
			      x->host, x->port, hk->hostkey, hk->hostkey_len) < 0)
		return xfer_stop(x, xstrdup(err_msg()));
	return 0;
}

static int cred_cb(git_credential **out, const char *url, const char *user, unsigned int allowed,
		   void *payload)
{
	struct xfer *x = payload;
	const struct source_opts *o = x->o;
	(void)url;
	if (xfer_late(x))
		return -1;
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user && *user ? user : "git");
	if (allowed & (GIT_CREDENTIAL_SSH_MEMORY | GIT_CREDENTIAL_SSH_KEY)) {
		if (!o->ssh_key)
			return xfer_stop(x, xasprintf("'%s' asks for an ssh key: set"
						      " 'source.auth.sshKey'", x->safe_url));
		if (x->cred_tries++)
			return xfer_stop(x, xasprintf("'%s' refused the key of 'source.auth.sshKey'",
						      x->safe_url));
		return git_credential_ssh_key_memory_new(out, user && *user ? user : "git", NULL,
							 o->ssh_key, NULL);
	}
	if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		if (!o->password)
			return xfer_stop(x, xasprintf("'%s' requires authentication (HTTP 401): set"
						      " 'source.auth'", x->safe_url));
		if (x->cred_tries++)
			return xfer_stop(x, xasprintf("'%s' refused the credentials of 'source.auth'"
						      " (HTTP 401)", x->safe_url));
		return git_credential_userpass_plaintext_new(out, o->username ? o->username :
							     "x-access-token", o->password);
	}
	return xfer_stop(x, xasprintf("'%s' asks for a kind of authentication driftless does"
				      " not offer", x->safe_url));
}

static int progress_cb(const git_indexer_progress *st, void *payload)
{
	struct xfer *x = payload;
	if (x->o->max_bytes && st->received_bytes > x->o->max_bytes)
		return xfer_stop(x, xasprintf("'%s' sent more than %llu bytes ('source.maxFetchSize');"
					      " stopped", x->safe_url,
					      (unsigned long long)x->o->max_bytes));
	return xfer_late(x);
}

static int sideband_cb(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return xfer_late(payload);
}

/* After a libgit2 failure: our reason when we stopped it, else libgit2's. */
static int xfer_fail(struct xfer *x, const char *fmt, const char *arg)
{
	if (!x->why)
		return git_fail(fmt, arg);
	char *what = xasprintf(fmt, arg);
	err_set("%s: %s", what, x->why);
	free(what);
	return -1;
}

static int fill_rev(struct gitsrc *g, const git_oid *id, const char *ref, struct revision *rev)
{
	git_commit *c = NULL;
	if (git_commit_lookup(&c, g->repo, id) < 0)
		return git_fail("cannot read commit of '%s'", g->safe_url);
	git_oid_tostr(rev->oid, sizeof(rev->oid), id);
	snprintf(rev->ref, sizeof(rev->ref), "%s", ref ? ref : "");
	const git_signature *a = git_commit_author(c);
	free(rev->author);
	free(rev->summary);
	rev->author = xasprintf("%s <%s>", a->name, a->email);
	const char *sum = git_commit_summary(c);
	rev->summary = xstrdup(sum ? sum : "");
	rev->time = (int64_t)git_commit_time(c);
	git_commit_free(c);
	return 0;
}

/* Peel oid (a commit or an annotated tag) to a commit id. */
static int peel_commit(struct gitsrc *g, const git_oid *in, git_oid *out)
{
	git_object *o = NULL, *peeled = NULL;
	if (git_object_lookup(&o, g->repo, in, GIT_OBJECT_ANY) < 0)
		return git_fail("cannot read object of '%s'", g->safe_url);
	int r = git_object_peel(&peeled, o, GIT_OBJECT_COMMIT);
	git_object_free(o);
	if (r < 0)
		return git_fail("ref of '%s' does not point at a commit", g->safe_url);
	git_oid_cpy(out, git_object_id(peeled));
	git_object_free(peeled);
	return 0;
}

/* ---- loose objects of a local source ---- */

/*
 * libgit2 1.5 reads a loose object by inflating its first 64 bytes, then
 * copies what follows the header there into a buffer of the size the
 * header states: a header that understates the size overflows the heap
 * with the object's own bytes. Over git://, ssh and https objects arrive in
 * a pack and are never read that way, but the local transport (a path, or
 * file://) reads the source's loose objects itself (every ref's, not only
 * the one fetched). So before connecting to a local source, every loose
 * object of it is checked here with the process's zlib (libgit2's own),
 * LOOSE_PEEK inflated bytes at most, and a lying one refuses the fetch.
 */
#define LOOSE_PEEK 64
#define LOOSE_IN_MAX 65536		/* compressed bytes read for the peek, at most */
#define LOOSE_MAX_FILES 1000000

/* Inflate the start of fd into out (LOOSE_PEEK bytes at most); the number
 * of bytes, or -1 when fd is not zlib data (libgit2 would take it for the
 * old pack-like format, which it inflates without a bound). */
static ssize_t loose_peek(int fd, unsigned char *out)
{
	unsigned char in[4096];
	z_stream s;
	size_t total = 0;
	int zr = Z_OK;
	memset(&s, 0, sizeof(s));
	if (inflateInit(&s) != Z_OK)
		return -1;
	s.next_out = out;
	s.avail_out = LOOSE_PEEK;
	while (s.avail_out && zr == Z_OK && total < LOOSE_IN_MAX) {
		ssize_t n = read(fd, in, sizeof(in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!total && (n < 2 || (in[0] & 0x8f) != 0x08 || ((in[0] << 8) + in[1]) % 31)) {
			inflateEnd(&s);
			return -1;
		}
		total += (size_t)n;
		s.next_in = in;
		s.avail_in = (uInt)n;
		while (s.avail_in && s.avail_out && zr == Z_OK)
			zr = inflate(&s, Z_NO_FLUSH);
	}
	inflateEnd(&s);
	return (ssize_t)(LOOSE_PEEK - s.avail_out);
}

/* 1 when the loose object name in dirfd says a size that holds what its
 * first inflated bytes carry after the header; 0 when it lies or is not a
 * loose object libgit2 can read safely. */
static int loose_ok(int dirfd, const char *name)
{
	unsigned char out[LOOSE_PEEK];
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;	/* gone: libgit2 cannot read it either */
	ssize_t got = loose_peek(fd, out);
	close(fd);
	if (got < 0)
		return 0;
	const unsigned char *sp = memchr(out, ' ', (size_t)got);
	const unsigned char *nul = memchr(out, '\0', (size_t)got);
	if (!sp || !nul || sp > nul || nul - sp < 2 || nul - sp > 20)
		return 0;
	unsigned long long size = 0;
	for (const unsigned char *c = sp + 1; c < nul; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		size = size * 10 + (unsigned)(*c - '0');
	}
	return (unsigned long long)(got - (nul + 1 - out)) <= size;
}

/* Check the loose objects below objdir (objdir/xx/38 hex digits): one
 * directory read for the fan-out, then only the subdirectories there are. */
static int loose_scan(const char *objdir, const char *safe_url, size_t *n)
{
	DIR *top = opendir(objdir);
	struct dirent *te;
	int bad = 0;
	if (!top)
		return 0;
	while (!bad && (te = readdir(top))) {
		if (strlen(te->d_name) != 2 || strspn(te->d_name, "0123456789abcdef") != 2)
			continue;
		int fd = openat(dirfd(top), te->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		struct dirent *e;
		while (!bad && (e = readdir(d))) {
			if (strlen(e->d_name) != 38 || strspn(e->d_name, "0123456789abcdef") != 38)
				continue;
			if (++*n > LOOSE_MAX_FILES)
				bad = err_set("'%s' holds more than %d loose objects; refusing to read it",
					      safe_url, LOOSE_MAX_FILES);
			else if (!loose_ok(dirfd(d), e->d_name))
				bad = err_set("'%s' holds a malformed loose object %s%s (its header"
					      " understates its size, or it is not zlib data); refusing to"
					      " read it", safe_url, te->d_name, e->d_name);
		}
		closedir(d);
	}
	closedir(top);
	return bad ? -1 : 0;
}

/* The local path of a source URL (a path, or file://PATH), or NULL. */
static const char *local_path(const char *url)
{
	struct stat st;
	if (!strncmp(url, "file://", 7))
		return url + 7;
	if (strstr(url, "://") || stat(url, &st) < 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return url;
}

/* Every loose object a local source can make libgit2 read: its own (bare
 * or not) and those of its alternates (one level). */
static int local_source_check(const char *url, const char *safe_url)
{
	const char *path = local_path(url);
	size_t n = 0;
	if (!path)
		return 0;
	const char *subs[] = { "objects", ".git/objects" };
	for (size_t i = 0; i < 2; i++) {
		char dir[4096], alt[4200];
		struct stat st;
		snprintf(dir, sizeof(dir), "%s/%s", path, subs[i]);
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (loose_scan(dir, safe_url, &n) < 0)
			return -1;
		snprintf(alt, sizeof(alt), "%s/info/alternates", dir);
		FILE *f = fopen(alt, "re");
		if (!f)
			continue;
		char line[4096];
		int r = 0;
		while (!r && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (!line[0] || line[0] == '#')
				continue;
			char other[8200];
			snprintf(other, sizeof(other), "%s%s%s", line[0] == '/' ? "" : dir,
				 line[0] == '/' ? "" : "/", line);
			r = loose_scan(other, safe_url, &n);
		}
		fclose(f);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int fetch(struct gitsrc *g, const struct source_opts *o, struct revision *rev, int *fetched);
static int semver_pick(struct gitsrc *g, git_remote *remote, const char *range, char **want);

int gitsrc_fetch(struct gitsrc *g, const struct source_opts *o, struct revision *rev, int *fetched)
{
	/* a server that drops the connection is an error, not a SIGPIPE death
	 * (libgit2's TLS and ssh streams write with plain send()) */
	struct sigaction ign = { 0 }, old;
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old);
	int r = fetch(g, o, rev, fetched);
	sigaction(SIGPIPE, &old, NULL);
	return r;
}

static int fetch(struct gitsrc *g, const struct source_opts *o, struct revision *rev, int *fetched)
{
	git_remote *remote = NULL;
	git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
	git_buf defbranch = { 0 };
	char *want = NULL, *local = NULL;
	git_oid id;
	int have_id = 0, ret = -1;

	struct xfer x = { .o = o, .safe_url = g->safe_url };

	*fetched = 0;
	if (o->ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, o->ca_file, NULL) < 0)
		return git_fail("cannot load CA file '%s'", o->ca_file);
	if (o->password && !strncasecmp(g->url, "http://", 7))
		return err_set("'%s': credentials are never sent over plain http://; use https://",
			       g->safe_url);
	if (is_ssh_url(g->url)) {
		ssh_host_port(g->url, x.host, sizeof(x.host), &x.port);
		if (!o->offline && !o->known_hosts)
			return err_set("'%s' is an ssh remote: set 'source.auth.knownHosts' to pin its"
				       " host key", g->safe_url);
	}
	cbs.certificate_check = cert_check;
	cbs.credentials = cred_cb;
	cbs.transfer_progress = progress_cb;
	cbs.sideband_progress = sideband_cb;
	cbs.payload = &x;

	if (o->commit) {
		size_t n = strlen(o->commit);
		if (n < 7 || n > 40 || strspn(o->commit, "0123456789abcdef") != n)
			return err_set("'--commit' must be a hexadecimal commit id of 7 to 40 digits");
	}
	if (o->branch)
		want = xasprintf("refs/heads/%s", o->branch);
	else if (o->tag)
		want = xasprintf("refs/tags/%s", o->tag);
	if (want && !git_reference_is_valid_name(want)) {
		err_set("'%s' is not a valid ref name", want);
		goto out;
	}

	if (o->offline) {
		if (!want) {
			err_set("offline use needs an explicit --branch or --tag");
			goto out;
		}
		local = xasprintf("refs/driftless/%s", want + 5);
		if (git_reference_name_to_id(&id, g->repo, local) < 0) {
			git_fail("no cached copy of '%s'", want);
			goto out;
		}
		have_id = 1;
		goto resolved;
	}

	/* a local source is read by libgit2 itself: its loose objects first */
	if (local_source_check(g->url, g->safe_url) < 0)
		goto out;
	if (git_remote_create_anonymous(&remote, g->repo, g->url) < 0) {
		git_fail("invalid repository URL '%s'", g->safe_url);
		goto out;
	}
	git_remote_connect_options co = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	co.callbacks = cbs;
	co.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	if (git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &co) < 0) {
		xfer_fail(&x, "cannot reach '%s'", g->safe_url);
		goto out;
	}
	/* --semver: the highest matching tag of the advertisement (semver_pick) */
	if (o->semver && !want && semver_pick(g, remote, o->semver, &want) < 0)
		goto out;
	if (!want && !o->commit) {
		if (git_remote_default_branch(&defbranch, remote) < 0) {
			git_fail("cannot find the default branch of '%s'", g->safe_url);
			goto out;
		}
		want = xstrdup(defbranch.ptr);
	}
	const git_remote_head **heads;
	size_t nheads;
	if (git_remote_ls(&heads, &nheads, remote) < 0) {
		git_fail("cannot list refs of '%s'", g->safe_url);
		goto out;
	}
	if (want) {
		for (size_t i = 0; i < nheads; i++) {
			if (!strcmp(heads[i]->name, want)) {
				git_oid_cpy(&id, &heads[i]->oid);
				have_id = 1;
			}
		}
		if (!have_id) {
			err_set("'%s' not found on '%s'", want, g->safe_url);
			goto out;
		}
		local = xasprintf("refs/driftless/%s", want + 5);
	} else {
		/* a pinned commit: look for it locally first */
		git_object *obj = NULL;
		if (git_oid_fromstrn(&id, o->commit, strlen(o->commit)) == 0 &&
		    git_object_lookup_prefix(&obj, g->repo, &id, strlen(o->commit), GIT_OBJECT_COMMIT) == 0) {
			git_oid_cpy(&id, git_object_id(obj));
			git_object_free(obj);
			have_id = 1;
		}
	}
	git_remote_disconnect(remote);
	x.cred_tries = 0;	/* the fetch connects again */

	/* one ref advertisement is all an unchanged remote costs */
	if (!have_id || !git_odb_exists(g->odb, &id)) {
		git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
		char *spec;
		fo.callbacks = cbs;
		fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
		fo.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
		fo.prune = GIT_FETCH_NO_PRUNE;
		fo.update_fetchhead = 0;
		if (want)
			spec = xasprintf("+%s:%s", want, local);
		else
			spec = xstrdup("+refs/heads/*:refs/driftless/heads/*");
		char *specs[2] = { spec, (char *)"+refs/tags/*:refs/driftless/tags/*" };
		git_strarray arr = { specs, want ? 1 : 2 };
		int r = git_remote_fetch(remote, &arr, &fo, NULL);
		free(spec);
		if (r < 0) {
			xfer_fail(&x, "cannot fetch from '%s'", g->safe_url);
			goto out;
		}
		*fetched = 1;
		if (!want) {
			git_object *obj = NULL;
			git_oid_fromstrn(&id, o->commit, strlen(o->commit));
			if (git_object_lookup_prefix(&obj, g->repo, &id, strlen(o->commit),
						     GIT_OBJECT_COMMIT) < 0) {
				err_set("commit '%s' not found on '%s'", o->commit, g->safe_url);
				goto out;
			}
			git_oid_cpy(&id, git_object_id(obj));
			git_object_free(obj);
			have_id = 1;
		}
	} else if (want) {
		git_reference *ref = NULL;
		if (git_reference_create(&ref, g->repo, local, &id, 1, NULL) < 0) {
			git_fail("cannot update the cached ref '%s'", local);
			goto out;
		}
		git_reference_free(ref);
	}

resolved:;
	git_oid cid;
	if (peel_commit(g, &id, &cid) < 0)
		goto out;
	if (fill_rev(g, &cid, want, rev) < 0)
		goto out;
	ret = 0;
out:
	git_buf_dispose(&defbranch);
	git_remote_free(remote);
	free(want);
	free(local);
	free(x.why);
	return ret;
}

/* The root tree of commit, held in g until another commit is asked for. */
static int root_tree(struct gitsrc *g, const char *commit, git_tree **out)
{
	git_oid id;
	git_commit *c = NULL;
	if (git_oid_fromstr(&id, commit) < 0)
		return err_set("invalid commit id '%s'", commit);
	if (g->root && git_oid_equal(&id, &g->root_commit)) {
		*out = g->root;
		return 0;
	}
	if (git_commit_lookup(&c, g->repo, &id) < 0)
		return git_fail("cannot read commit '%s'", commit);
	git_tree_free(g->root);
	g->root = NULL;
	forget_dir(g);
	int r = git_commit_tree(&g->root, c);
	git_commit_free(c);
	if (r < 0)
		return git_fail("cannot read the tree of commit '%s'", commit);
	git_oid_cpy(&g->root_commit, &id);
	*out = g->root;
	return 0;
}

static int tree_of(struct gitsrc *g, const char *commit, const char *dir, git_tree **out)
{
	git_tree *root = NULL;
	int ret = -1;

	if (root_tree(g, commit, &root) < 0)
		return -1;
	if (!dir || !*dir) {
		ret = git_tree_dup(out, root) < 0 ? git_fail("cannot read '%s'", commit) : 0;
		goto out;
	}
	git_tree_entry *e = NULL;
	if (git_tree_entry_bypath(&e, root, dir) < 0) {
		ret = 1;
		goto out;
	}
	if (git_tree_entry_type(e) != GIT_OBJECT_TREE) {
		git_tree_entry_free(e);
		ret = 1;
		goto out;
	}
	ret = git_tree_lookup(out, g->repo, git_tree_entry_id(e)) < 0 ? git_fail("cannot read '%s'", dir) : 0;
	git_tree_entry_free(e);
out:
	return ret;
}

static enum gitsrc_entry entry_type(const git_tree_entry *e)
{
	switch (git_tree_entry_filemode(e)) {
	case GIT_FILEMODE_TREE: return GITSRC_TREE;
	case GIT_FILEMODE_BLOB_EXECUTABLE: return GITSRC_EXEC;
	case GIT_FILEMODE_LINK: return GITSRC_LINK;
	case GIT_FILEMODE_COMMIT: return GITSRC_COMMIT;
	default: return GITSRC_BLOB;
	}
}

struct walk {
	struct gitsrc *g;
	gitsrc_walk_cb cb;
	gitsrc_matters_fn matters;
	void *ctx;
	int ret;
	struct buf path;
	size_t entries;
	int sizes;
	int depth;
};

#define GITSRC_MAX_ENTRIES 1000000
/* a path this deep is longer than PATH_MAX: it could never be written */
#define GITSRC_MAX_DEPTH 2048

/* Every entry of t in path order, each folder's right after it; the path
 * so far is w->path[0, plen). *hit is set when an entry at or below t
 * passes w->matters (always, without a test). */
static int walk_tree(struct walk *w, git_tree *t, size_t plen, int *hit)
{
	size_t n = git_tree_entrycount(t);
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const git_oid *id = git_tree_entry_id(e);
		const char *name = git_tree_entry_name(e);
		if (++w->entries > GITSRC_MAX_ENTRIES) {
			w->path.len = plen ? plen - 1 : 0;
			w->path.ptr[w->path.len] = '\0';
			return w->ret = err_set("'%s' holds more than %d entries",
						w->path.len ? w->path.ptr : "/", GITSRC_MAX_ENTRIES);
		}
		enum gitsrc_entry type = entry_type(e);
		char oid[41];
		uint64_t size = 0;
		w->path.len = plen;
		buf_adds(&w->path, name);
		git_oid_tostr(oid, sizeof(oid), id);
		if (w->sizes && (type == GITSRC_BLOB || type == GITSRC_EXEC || type == GITSRC_LINK) &&
		    blob_size(w->g, id, &size) < 0)
			return w->ret = git_fail("cannot read '%s'", w->path.ptr);
		if (!w->matters || w->matters(name, type))
			*hit = 1;
		uint64_t report = w->sizes || type == GITSRC_TREE || type == GITSRC_COMMIT ? size : UINT64_MAX;
		int r = w->cb(w->ctx, w->path.ptr, type, oid, report);
		if (r)
			return w->ret = r;
		if (type != GITSRC_TREE || (w->matters && memo_has_tree(w->g, id)))
			continue;
		if (w->depth >= GITSRC_MAX_DEPTH)
			return w->ret = err_set("folders nested more than %d deep, at '%.200s...'",
						GITSRC_MAX_DEPTH, w->path.ptr);
		git_tree *sub = NULL;
		if (git_tree_lookup(&sub, w->g->repo, id) < 0)
			return w->ret = git_fail("cannot read '%s'", w->path.ptr);
		buf_addch(&w->path, '/');
		int below = 0;
		w->depth++;
		r = walk_tree(w, sub, w->path.len, &below);
		w->depth--;
		git_tree_free(sub);
		if (r)
			return r;
		if (w->matters && !below)
			memo_add_tree(w->g, id);
		*hit |= below;
	}
	return 0;
}

int gitsrc_walk(struct gitsrc *g, const char *commit, const char *dir, gitsrc_walk_cb cb, void *ctx)
{
	return gitsrc_walk_pruned(g, commit, dir, 1, NULL, cb, ctx);
}

int gitsrc_walk_pruned(struct gitsrc *g, const char *commit, const char *dir, int sizes,
		       gitsrc_matters_fn matters, gitsrc_walk_cb cb, void *ctx)
{
	git_tree *t = NULL;
	int r = tree_of(g, commit, dir, &t);
	if (r)
		return r;
	struct walk w = { g, cb, matters, ctx, 0, BUF_INIT, 0, sizes, 0 };
	if (dir && *dir)
		buf_addf(&w.path, "%s/", dir);
	else
		buf_grow(&w.path, 64);
	int hit = 0;
	r = walk_tree(&w, t, w.path.len, &hit);
	git_tree_free(t);
	buf_release(&w.path);
	return r;
}

/* The tree of folder dir (len bytes, "" for the root) in root, or NULL when
 * there is no such folder; borrowed (g->dir or root). */
static git_tree *folder(struct gitsrc *g, git_tree *root, const char *dir, size_t len)
{
	if (!len)
		return root;
	if (g->dir && strlen(g->dir_path) == len && !memcmp(g->dir_path, dir, len))
		return g->dir;
	char *d = xstrndup(dir, len);
	git_tree_entry *e = NULL;
	git_tree *t = NULL;
	if (git_tree_entry_bypath(&e, root, d) < 0 || git_tree_entry_type(e) != GIT_OBJECT_TREE ||
	    git_tree_lookup(&t, g->repo, git_tree_entry_id(e)) < 0) {
		git_tree_entry_free(e);
		free(d);
		return NULL;
	}
	git_tree_entry_free(e);
	forget_dir(g);
	g->dir = t;
	g->dir_path = d;
	return t;
}

int gitsrc_lookup(struct gitsrc *g, const char *commit, const char *path,
		  enum gitsrc_entry *type, char oid[41], uint64_t *size)
{
	git_tree *root = NULL;
	if (root_tree(g, commit, &root) < 0)
		return -1;
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	git_tree *dir = folder(g, root, path, dlen);
	const git_tree_entry *e = dir ? git_tree_entry_byname(dir, slash ? slash + 1 : path) : NULL;
	if (!e)
		return 1;
	*type = entry_type(e);
	git_oid_tostr(oid, 41, git_tree_entry_id(e));
	*size = 0;
	if (*type != GITSRC_TREE && *type != GITSRC_COMMIT && blob_size(g, git_tree_entry_id(e), size) < 0)
		return git_fail("cannot read '%s'", path);
	return 0;
}

int gitsrc_read_blob(struct gitsrc *g, const char *oid, size_t max, struct buf *out)
{
	git_oid id;
	git_odb_object *obj = NULL;
	size_t sz;
	git_object_t ot;

	if (git_oid_fromstr(&id, oid) < 0)
		return err_set("invalid object id '%s'", oid);
	if (git_odb_read_header(&sz, &ot, g->odb, &id) < 0)
		return git_fail("cannot read object '%s'", oid);
	if (ot != GIT_OBJECT_BLOB)
		return err_set("object '%s' is not a file", oid);
	if (sz > max)
		return err_set("object '%s' is %zu bytes, more than the limit of %zu", oid, sz, max);
	if (git_odb_read(&obj, g->odb, &id) < 0)
		return git_fail("cannot read object '%s'", oid);
	buf_add(out, git_odb_object_data(obj), git_odb_object_size(obj));
	git_odb_object_free(obj);
	return 0;
}

int gitsrc_diff_text(const char *path, const char *a, size_t alen, const char *b, size_t blen,
		     struct buf *out)
{
	git_patch *patch = NULL;
	git_buf gb = { 0 };
	git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
	lib_init();
	opts.context_lines = 3;
	if (git_patch_from_buffers(&patch, a, alen, path, b, blen, path, &opts) < 0)
		return git_fail("cannot diff '%s'", path);
	if (git_patch_to_buf(&gb, patch) < 0) {
		git_patch_free(patch);
		return git_fail("cannot diff '%s'", path);
	}
	/* skip libgit2's "diff --git" header line: the ---/+++ lines say it all */
	const char *s = gb.ptr;
	const char *hunk = strstr(s, "\n--- ");
	buf_adds(out, hunk ? hunk + 1 : s);
	git_buf_dispose(&gb);
	git_patch_free(patch);
	return 0;
}

/* Write the files below path (a host directory) into the object database as
 * a tree; symlinks become link entries, ".git" is skipped. */
static int import_tree(struct gitsrc *g, const char *path, int depth, git_oid *out)
{
	git_treebuilder *tb = NULL;
	DIR *d = NULL;
	struct dirent *de;
	int ret = -1;

	if (depth > 64)
		return err_set("'%s' is nested too deeply", path);
	if (git_treebuilder_new(&tb, g->repo, NULL) < 0)
		return git_fail("cannot build a tree for '%s'", path);
	if (!(d = opendir(path))) {
		err_set_errno("cannot read directory '%s'", path);
		goto out;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, ".git"))
			continue;
		char *sub = xasprintf("%s/%s", path, de->d_name);
		struct stat st;
		git_oid id;
		git_filemode_t mode;
		int r = lstat(sub, &st);
		if (r == 0 && S_ISDIR(st.st_mode)) {
			r = import_tree(g, sub, depth + 1, &id);
			mode = GIT_FILEMODE_TREE;
		} else if (r == 0 && S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlink(sub, target, sizeof(target));
			r = n < 0 ? -1 : git_blob_create_from_buffer(&id, g->repo, target, (size_t)n);
			mode = GIT_FILEMODE_LINK;
		} else if (r == 0 && S_ISREG(st.st_mode)) {
			r = git_blob_create_from_disk(&id, g->repo, sub);
			mode = st.st_mode & 0111 ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
		} else {
			free(sub);
			continue;
		}
		if (r < 0 || git_treebuilder_insert(NULL, tb, de->d_name, &id, mode) < 0) {
			if (!strstr(err_msg(), sub))
				git_fail("cannot read '%s'", sub);
			free(sub);
			goto out;
		}
		free(sub);
	}
	if (git_treebuilder_write(out, tb) < 0) {
		git_fail("cannot write the tree of '%s'", path);
		goto out;
	}
	ret = 0;
out:
	if (d)
		closedir(d);
	git_treebuilder_free(tb);
	return ret;
}

int gitsrc_import_dir(struct gitsrc *g, const char *dir, struct revision *rev)
{
	git_oid tree_id, commit_id;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	int ret = -1;

	if (import_tree(g, dir, 0, &tree_id) < 0)
		return -1;
	if (git_tree_lookup(&tree, g->repo, &tree_id) < 0 ||
	    git_signature_new(&sig, "driftless validate", "validate@localhost", 0, 0) < 0 ||
	    git_commit_create(&commit_id, g->repo, NULL, sig, sig, NULL, "working tree", tree, 0,
			      NULL) < 0) {
		git_fail("cannot snapshot '%s'", dir);
		goto out;
	}
	ret = fill_rev(g, &commit_id, "", rev);
out:
	git_signature_free(sig);
	git_tree_free(tree);
	return ret;
}

int gitsrc_resolve(struct gitsrc *g, const char *oid, const char *ref, struct revision *rev)
{
	git_oid id;
	if (git_oid_fromstr(&id, oid) < 0)
		return err_set("invalid commit id '%s'", oid);
	return fill_rev(g, &id, ref, rev);
}

int gitsrc_blob_size(struct gitsrc *g, const char *oid, uint64_t *out)
{
	git_oid id;
	if (git_oid_fromstr(&id, oid) < 0)
		return err_set("invalid object id '%s'", oid);
	if (blob_size(g, &id, out) < 0)
		return git_fail("cannot read object '%s'", oid);
	return 0;
}

/* ---- signed commits (source/verify.c): raw commits, history between two ---- */

int gitsrc_read_commit(struct gitsrc *g, const char *oid, size_t max, struct buf *out)
{
	git_oid id;
	git_odb_object *obj = NULL;
	if (git_oid_fromstr(&id, oid) < 0)
		return err_set("invalid commit id '%s'", oid);
	if (git_odb_read(&obj, g->odb, &id) < 0)
		return git_fail("cannot read commit '%s'", oid);
	int ret = 0;
	if (git_odb_object_type(obj) != GIT_OBJECT_COMMIT)
		ret = err_set("object '%s' is not a commit", oid);
	else if (git_odb_object_size(obj) > max)
		ret = err_set("commit '%s' is larger than %zu bytes", oid, max);
	else
		buf_add(out, git_odb_object_data(obj), git_odb_object_size(obj));
	git_odb_object_free(obj);
	return ret;
}

int gitsrc_commits_since(struct gitsrc *g, const char *head, const char *base, size_t max,
			 char **out, size_t *n)
{
	git_revwalk *w = NULL;
	git_oid h, b, id;
	struct buf list = BUF_INIT;
	size_t cnt = 0;
	int ret = -1, r;

	*out = NULL;
	*n = 0;
	if (git_oid_fromstr(&h, head) < 0 || git_oid_fromstr(&b, base) < 0)
		return err_set("invalid commit id '%s' or '%s'", head, base);
	if (!git_odb_exists(g->odb, &b))
		return err_set("the last applied revision %.12s is not in the git cache, so the commits"
			       " since it cannot be listed", base);
	if (git_revwalk_new(&w, g->repo) < 0 ||
	    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) < 0 ||
	    git_revwalk_push(w, &h) < 0 || git_revwalk_hide(w, &b) < 0) {
		git_fail("cannot walk the history of '%s'", head);
		goto out;
	}
	while ((r = git_revwalk_next(&id, w)) == 0) {
		char hex[41];
		if (++cnt > max) {
			err_set("more than %zu commits since the last applied revision %.12s", max, base);
			goto out;
		}
		git_oid_tostr(hex, sizeof(hex), &id);
		buf_add(&list, hex, sizeof(hex));
	}
	if (r != GIT_ITEROVER) {
		git_fail("cannot walk the history of '%s'", head);
		goto out;
	}
	*n = cnt;
	*out = cnt ? buf_detach(&list) : NULL;
	ret = 0;
out:
	buf_release(&list);
	git_revwalk_free(w);
	return ret;
}

/* ---- refs by semver, and history checks ---- */

/*
 * The highest tag (refs/tags/vX.Y.Z or X.Y.Z) of a connected remote that
 * satisfies range, as a full ref name into *want. Pre-releases count only
 * when the range names one (lib/semver.h). Of equal versions ("v1.2.3" and
 * "1.2.3", or build metadata) the smallest name wins, so the pick never
 * depends on the order of the advertisement.
 */
static int semver_pick(struct gitsrc *g, git_remote *remote, const char *range, char **want)
{
	struct semver_range r;
	struct semver best, v;
	const char *best_name = NULL, *top_name = NULL;
	struct semver top;
	const git_remote_head **heads;
	size_t nheads, ntags = 0;

	if (semver_range_parse(range, &r) < 0)
		return err_wrap("'--semver'");
	if (git_remote_ls(&heads, &nheads, remote) < 0)
		return git_fail("cannot list refs of '%s'", g->safe_url);
	for (size_t i = 0; i < nheads; i++) {
		const char *name = heads[i]->name;
		size_t n = strlen(name);
		if (strncmp(name, "refs/tags/", 10) || (n > 3 && !strcmp(name + n - 3, "^{}")))
			continue;
		if (semver_parse(name + 10, &v) < 0)
			continue;
		ntags++;
		if (!top_name || semver_cmp(&v, &top) > 0) {
			top = v;
			top_name = name;
		}
		if (!semver_range_match(&r, &v))
			continue;
		int c = best_name ? semver_cmp(&v, &best) : 1;
		if (c > 0 || (c == 0 && strcmp(name, best_name) < 0)) {
			best = v;
			best_name = name;
		}
	}
	if (!best_name) {
		if (!ntags)
			return err_set("no tag of '%s' matches semver range '%s': it has no version tags"
				       " (vX.Y.Z or X.Y.Z)", g->safe_url, range);
		return err_set("no tag of '%s' matches semver range '%s' (%zu version tag%s, the highest"
			       " '%s')", g->safe_url, range, ntags, ntags == 1 ? "" : "s", top_name + 10);
	}
	if (!git_reference_is_valid_name(best_name))
		return err_set("'%s' is not a valid ref name", best_name);
	*want = xstrdup(best_name);
	return 0;
}

int gitsrc_descendant(struct gitsrc *g, const char *commit, const char *ancestor)
{
	git_oid c, a;
	if (git_oid_fromstr(&c, commit) < 0 || git_oid_fromstr(&a, ancestor) < 0)
		return err_set("invalid commit id '%s' or '%s'", commit, ancestor);
	if (git_oid_equal(&c, &a))
		return 1;
	if (!git_odb_exists(g->odb, &a))
		return 2;
	int r = git_graph_descendant_of(g->repo, &c, &a);
	if (r < 0)
		return git_fail("cannot compare the history of '%s'", commit);
	return r;
}

/* ---- a working clone (driftless capture): check HEAD, commit files ---- */

static int open_clone(const char *dir, git_repository **repo)
{
	lib_init();
	if (git_repository_open_ext(repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return git_fail("cannot open the clone '%s'", dir);
	if (git_repository_is_bare(*repo)) {
		git_repository_free(*repo);
		*repo = NULL;
		return err_set("'%s' is a bare repository; capture needs a clone with a work tree", dir);
	}
	return 0;
}

int gitsrc_clone_check(const char *dir, const char *commit, char head[41])
{
	git_repository *repo = NULL;
	git_oid want, have;
	int ret = -1;

	head[0] = '\0';
	if (open_clone(dir, &repo) < 0)
		return -1;
	if (git_reference_name_to_id(&have, repo, "HEAD") < 0) {
		git_fail("the clone '%s' has no HEAD commit", dir);
		goto out;
	}
	git_oid_tostr(head, 41, &have);
	if (git_oid_fromstr(&want, commit) < 0) {
		err_set("'%s' is not a commit id", commit);
		goto out;
	}
	if (git_oid_equal(&want, &have)) {
		ret = 0;
		goto out;
	}
	int r = git_graph_descendant_of(repo, &have, &want);
	ret = r == 1 ? 0 : 1;	/* unknown there, or not an ancestor: refuse */
out:
	git_repository_free(repo);
	return ret;
}

int gitsrc_clone_commit(const char *dir, const char *const *paths, size_t n, const char *msg,
			const char *name, const char *email, char out[41])
{
	git_repository *repo = NULL;
	git_index *idx = NULL;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	git_oid tree_id, head_id, id;
	int ret = -1;

	if (open_clone(dir, &repo) < 0)
		return -1;
	if (git_repository_index(&idx, repo) < 0) {
		git_fail("cannot read the index of '%s'", dir);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (git_index_add_bypath(idx, paths[i]) < 0) {
			git_fail("cannot stage '%s'", paths[i]);
			goto out;
		}
	if (git_index_write(idx) < 0 || git_index_write_tree(&tree_id, idx) < 0) {
		git_fail("cannot write the index of '%s'", dir);
		goto out;
	}
	if (git_reference_name_to_id(&head_id, repo, "HEAD") < 0 ||
	    git_commit_lookup(&parent, repo, &head_id) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0) {
		git_fail("cannot read HEAD of '%s'", dir);
		goto out;
	}
	/* the clone's own user.name and user.email (its .git/config), else ours */
	if (git_signature_default(&sig, repo) < 0 && git_signature_now(&sig, name, email) < 0) {
		git_fail("cannot make a signature for '%s'", name);
		goto out;
	}
	const git_commit *parents[1] = { parent };
	if (git_commit_create(&id, repo, "HEAD", sig, sig, NULL, msg, tree, 1, parents) < 0) {
		git_fail("cannot commit in '%s'", dir);
		goto out;
	}
	git_oid_tostr(out, 41, &id);
	ret = 0;
out:
	git_signature_free(sig);
	git_tree_free(tree);
	git_commit_free(parent);
	git_index_free(idx);
	git_repository_free(repo);
	return ret;
}
