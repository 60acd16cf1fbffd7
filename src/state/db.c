/* SPDX-License-Identifier: MIT */
/* SQLite state: schema migrations as an array, WAL with synchronous=FULL, prepared statements per call. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "lib/err.h"
#include "lib/flat.h"
#include "lib/fs.h"
#include "state/db.h"

/* the statements run once per resource, kept prepared (prep_hot) */
enum { HOT_INV_PUT, HOT_INV_DEL, HOT_STAT_PUT, HOT_STAT_DEL, HOT_OUTCOME, DB_HOT_N };

struct db {
	sqlite3 *h;
	char *path;
	int checked;	/* passed quick_check, or unchanged since it last did */
	int bumped;	/* this transaction changed the index generation already */
	sqlite3_stmt *hot[DB_HOT_N];	/* prepared once: statements a pass runs per resource */
	struct journal *journal;	/* db_index_track: what this connection wrote */
};

static void journal_free(struct db *db);
static int stat_query(struct db *db, const char *path, int exact, struct arena *a, struct hmap *out);

/* Append-only: each entry moves the schema one version forward. */
static const char *const migrations[] = {
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE inventory (id TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT,"
	" type INTEGER NOT NULL, created INTEGER NOT NULL, prune INTEGER NOT NULL,"
	" digest TEXT NOT NULL, content TEXT NOT NULL, ord INTEGER NOT NULL);"
	"CREATE TABLE statcache (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER,"
	" mtime_ns INTEGER, ctime_ns INTEGER, oid TEXT NOT NULL);"
	"CREATE TABLE passes (id INTEGER PRIMARY KEY, started_ms INTEGER, finished_ms INTEGER,"
	" command TEXT, commit_oid TEXT, ref TEXT, author TEXT, summary TEXT, result TEXT,"
	" created INTEGER, updated INTEGER, deleted INTEGER, unchanged INTEGER, failed INTEGER,"
	" skipped INTEGER, error TEXT);"
	"CREATE TABLE outcomes (pass_id INTEGER NOT NULL REFERENCES passes(id), res_id TEXT,"
	" outcome TEXT, detail TEXT);"
	"CREATE INDEX outcomes_pass ON outcomes(pass_id);"
	"CREATE TABLE backups (path TEXT, oid TEXT, when_ms INTEGER, commit_oid TEXT);",

	"CREATE TABLE drift_events (id INTEGER PRIMARY KEY, when_ms INTEGER NOT NULL,"
	" res_id TEXT NOT NULL, path TEXT, policy TEXT NOT NULL, action TEXT NOT NULL,"
	" what TEXT, before TEXT, after TEXT, commit_oid TEXT);"
	"CREATE INDEX drift_events_when ON drift_events(when_ms);",

	"CREATE TABLE suspensions (id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL,"
	" until_ms INTEGER NOT NULL, reason TEXT NOT NULL, by_user TEXT NOT NULL,"
	" ended_ms INTEGER, ended_by TEXT);",

	"ALTER TABLE passes ADD COLUMN signature TEXT;",

	"CREATE INDEX inventory_kind ON inventory(kind);",
};

static int db_fail(struct db *db, const char *what)
{
	return err_set("state database '%s': %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

static int db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set("state database '%s': %s", db->path, msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int db_migrate(struct db *db)
{
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "reading the schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	int n = (int)(sizeof(migrations) / sizeof(migrations[0]));
	if (version > n)
		return err_set("state database '%s' has schema %d, newer than this driftless (%d)",
			       db->path, version, n);
	for (int v = version; v < n; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d;", v + 1);
		if (db_exec(db, "BEGIN IMMEDIATE") < 0)
			return -1;
		if (db_exec(db, migrations[v]) < 0 || db_exec(db, pragma) < 0) {
			db_exec(db, "ROLLBACK");
			return -1;
		}
		if (db_exec(db, "COMMIT") < 0)
			return -1;
	}
	return 0;
}

static int db_open_once(struct db **out, const char *state_dir, int check, int *corrupt);

/* Move a corrupt database (and its -wal and -shm) aside with a timestamp. */
static int db_move_aside(const char *path, char **aside)
{
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	*aside = xasprintf("%s.corrupt-%s", path, ts);
	struct stat st;
	for (int n = 1; lstat(*aside, &st) == 0 && n < 1000; n++) {
		free(*aside);
		*aside = xasprintf("%s.corrupt-%s.%d", path, ts, n);
	}
	if (rename(path, *aside) < 0)
		return err_set_errno("cannot move the corrupt state database '%s' aside", path);
	static const char *const sfx[] = { "-wal", "-shm" };
	for (int i = 0; i < 2; i++) {
		char *from = xasprintf("%s%s", path, sfx[i]);
		char *to = xasprintf("%s%s", *aside, sfx[i]);
		rename(from, to);
		free(from);
		free(to);
	}
	return 0;
}

int db_open_recover(struct db **out, const char *state_dir, char **rebuilt)
{
	int corrupt = 0;
	*rebuilt = NULL;
	/* no database but a git cache: the database was lost, not never made */
	char *path0 = xasprintf("%s/driftless.db", state_dir);
	char *cache = xasprintf("%s/git", state_dir);
	struct stat st;
	int lost = lstat(path0, &st) < 0 && errno == ENOENT && stat(cache, &st) == 0;
	free(path0);
	free(cache);
	if (db_open_once(out, state_dir, 1, &corrupt) == 0) {
		if (!lost)
			return 0;
		*rebuilt = xasprintf("the state database was missing and has been created again;"
				     " pruning is off until a full pass completes");
		if (db_meta_set(*out, "rebuilt", *rebuilt) < 0) {
			db_close(*out);
			*out = NULL;
			free(*rebuilt);
			*rebuilt = NULL;
			return -1;
		}
		return 0;
	}
	if (!corrupt)
		return -1;
	char *path = xasprintf("%s/driftless.db", state_dir);
	char *aside = NULL;
	char *why = xstrdup(err_msg());
	int r = db_move_aside(path, &aside);
	free(path);
	if (r < 0) {
		free(why);
		free(aside);
		return -1;
	}
	if (db_open_once(out, state_dir, 0, &corrupt) < 0) {
		free(why);
		free(aside);
		return -1;
	}
	*rebuilt = xasprintf("the state database was unusable (%s); it was moved to '%s' and"
			     " rebuilt; pruning is off until a full pass completes", why, aside);
	free(why);
	free(aside);
	if (db_meta_set(*out, "rebuilt", *rebuilt) < 0) {
		db_close(*out);
		*out = NULL;
		free(*rebuilt);
		*rebuilt = NULL;
		return -1;
	}
	return 0;
}

int db_open(struct db **out, const char *state_dir)
{
	int corrupt;
	return db_open_once(out, state_dir, 0, &corrupt);
}

/*
 * quick_check reads every page, which costs more than a no-op pass's own
 * work once the database holds a large inventory. So, as git's index does
 * for files, the database file's stat is written beside it whenever this
 * process closes it checked and last (no WAL left); a start that finds the
 * same stat and no WAL knows that nothing but SQLite, under our lock, wrote
 * the file since it was checked. Any other write changes its ctime.
 */
static int stamp_line(const char *dbpath, char *out, size_t n)
{
	struct stat st, wal;
	char *walp = xasprintf("%s-wal", dbpath);
	int haswal = lstat(walp, &wal) == 0 && wal.st_size > 0;
	free(walp);
	if (haswal || lstat(dbpath, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	snprintf(out, n, "%llu %llu %lld %lld.%09ld %lld.%09ld\n", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return 0;
}

static int stamp_matches(const char *dbpath)
{
	char want[160], have[160] = "";
	if (stamp_line(dbpath, want, sizeof(want)) < 0)
		return 0;
	char *sp = xasprintf("%s.checked", dbpath);
	int fd = open(sp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(sp);
	if (fd < 0)
		return 0;
	ssize_t r = read(fd, have, sizeof(have) - 1);
	close(fd);
	return r > 0 && (size_t)r == strlen(want) && !memcmp(have, want, (size_t)r);
}

static void stamp_write(const char *dbpath)
{
	char line[160];
	char *sp = xasprintf("%s.checked", dbpath);
	if (stamp_line(dbpath, line, sizeof(line)) < 0) {
		unlink(sp);
		free(sp);
		return;
	}
	int fd = open(sp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			(void)ftruncate(fd, 0);
		close(fd);
	}
	free(sp);
}

static int db_open_once(struct db **out, const char *state_dir, int check, int *corrupt)
{
	struct db *db = xcalloc(1, sizeof(*db));
	*corrupt = 0;
	db->path = xasprintf("%s/driftless.db", state_dir);
	struct stat st;
	if (lstat(db->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		err_set("state database '%s' is not a regular file", db->path);
		*corrupt = 1;
		db_close(db);
		return -1;
	}
	if (sqlite3_open_v2(db->path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		err_set("cannot open state database '%s': %s", db->path,
			db->h ? sqlite3_errmsg(db->h) : "out of memory");
		db_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		    " PRAGMA foreign_keys=ON;") < 0 || db_migrate(db) < 0)
		goto bad;
	if (check && stamp_matches(db->path)) {
		db->checked = 1;
	} else if (check) {
		/* quick_check reads every page: corruption is found here, at
		 * start, not half way through a pass */
		sqlite3_stmt *q = NULL;
		int rc = sqlite3_prepare_v2(db->h, "PRAGMA quick_check", -1, &q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(q);
		if (rc != SQLITE_ROW) {
			db_fail(db, "integrity check");
			sqlite3_finalize(q);
			goto bad;	/* I/O errors are not corruption: see below */
		}
		const char *res = (const char *)sqlite3_column_text(q, 0);
		if (!res || strcmp(res, "ok")) {
			err_set("state database '%s' failed its integrity check: %s", db->path,
				res ? res : "?");
			sqlite3_finalize(q);
			*corrupt = 1;
			db_close(db);
			return -1;
		}
		sqlite3_finalize(q);
		db->checked = 1;
	}
	*out = db;
	return 0;
bad:;
	/* only damage counts as corruption: a full disk or an I/O error is
	 * reported and retried, and the database is left where it is */
	int code = sqlite3_extended_errcode(db->h) & 0xff;
	*corrupt = code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
	db_close(db);
	return -1;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < DB_HOT_N; i++)
		sqlite3_finalize(db->hot[i]);
	journal_free(db);
	/* the last connection checkpoints and removes the WAL on close */
	if (sqlite3_close(db->h) == SQLITE_OK && db->checked)
		stamp_write(db->path);
	free(db->path);
	free(db);
}

int db_cache_limit(struct db *db, int kib)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d;", kib);
	return db_exec(db, sql);
}

void db_release_memory(struct db *db)
{
	sqlite3_db_release_memory(db->h);
}

int db_begin(struct db *db)
{
	db->bumped = 0;
	return db_exec(db, "BEGIN IMMEDIATE");
}

int db_commit(struct db *db)
{
	db->bumped = 0;
	return db_exec(db, "COMMIT");
}

void db_rollback(struct db *db)
{
	db->bumped = 0;
	db_exec(db, "ROLLBACK");
}

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, "preparing a statement");
		return NULL;
	}
	return st;
}

static int step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, what);
	return 0;
}

/* A statement of the hot set, prepared on first use and reset after each
 * step (step_hot): preparing costs as much as running these small ones. */
static sqlite3_stmt *prep_hot(struct db *db, int which, const char *sql)
{
	if (db->hot[which])
		return db->hot[which];
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->hot[which], NULL) !=
	    SQLITE_OK) {
		db_fail(db, "preparing a statement");
		db->hot[which] = NULL;
	}
	return db->hot[which];
}

static int step_hot(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, what);
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i, struct arena *a)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? arena_strdup(a, (const char *)s) : NULL;
}

char *db_meta_get(struct db *db, const char *key, struct arena *a)
{
	sqlite3_stmt *st = prep(db, "SELECT value FROM meta WHERE key = ?");
	char *v = NULL;
	if (!st)
		return NULL;
	bind_text(st, 1, key);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = col_text(st, 0, a);
	sqlite3_finalize(st);
	return v;
}

int db_meta_set(struct db *db, const char *key, const char *val)
{
	sqlite3_stmt *st;
	if (!val) {
		st = prep(db, "DELETE FROM meta WHERE key = ?");
		if (!st)
			return -1;
		bind_text(st, 1, key);
		return step_done(db, st, "deleting a status value");
	}
	st = prep(db, "INSERT INTO meta(key, value) VALUES (?, ?)"
		  " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (!st)
		return -1;
	bind_text(st, 1, key);
	bind_text(st, 2, val);
	return step_done(db, st, "writing a status value");
}

/* ---- the index snapshot ----
 *
 * A no-op pass reads the whole inventory and stat cache; from SQLite that
 * is a row at a time, as much work as the pass's own stats. So a copy of
 * both is kept beside the database in one flat file, like git's index, and
 * trusted only while it carries the database's current index generation:
 * every write to either table first stores a new random generation (once per
 * transaction, in it), so a copy taken before any later write, or a torn
 * one, never matches and the rows are read from SQLite again.
 */
#define SNAP_MAGIC "DLINDEX3"
#define GEN_LEN 32

/*
 * A pass that writes a few rows makes the snapshot stale, and the next
 * pass would read every row from SQLite again (at 100,000 files, 300 ms of
 * the 1 s a one-file commit takes). So a connection that tracks keeps the
 * keys it writes, and db_index_refresh makes the snapshot of the
 * generation before its first write current: the rows of those keys read
 * again from SQLite, the others as they were. Only while no one else
 * wrote in between (each generation it finds is the one it set last), and
 * not past JOURNAL_MAX keys.
 */
#define JOURNAL_MAX 20000

struct journal {
	char base[GEN_LEN + 1];	/* the generation before the first write */
	char last[GEN_LEN + 1];	/* the one set last */
	int bad;		/* too many keys, or another writer */
	struct hmap inv, stat;	/* keys written: inventory ids, stat paths */
	struct arena arena;
};

static void journal_free(struct db *db)
{
	struct journal *j = db->journal;
	if (!j)
		return;
	hmap_release(&j->inv);
	hmap_release(&j->stat);
	arena_release(&j->arena);
	free(j);
	db->journal = NULL;
}

void db_index_track(struct db *db)
{
	if (db->journal)
		return;
	struct journal *j = db->journal = xcalloc(1, sizeof(*j));
	hmap_init(&j->inv);
	hmap_init(&j->stat);
	arena_init(&j->arena);
}

/* the keys kept so far, gone */
static void journal_forget(struct journal *j)
{
	hmap_release(&j->inv);
	hmap_release(&j->stat);
	hmap_init(&j->inv);
	hmap_init(&j->stat);
	arena_release(&j->arena);
	arena_init(&j->arena);
}

static void journal_key(struct db *db, struct hmap *m, const char *key)
{
	struct journal *j = db->journal;
	if (j->bad || !key || hmap_get(m, key))
		return;
	if (j->inv.n + j->stat.n >= JOURNAL_MAX) {
		j->bad = 1;	/* and what it held is of no use now */
		journal_forget(j);
		return;
	}
	const char *k = arena_strdup(&j->arena, key);
	hmap_put(m, k, (void *)k);
}

static int index_bump(struct db *db)
{
	int in_txn = !sqlite3_get_autocommit(db->h);
	if (in_txn && db->bumped)
		return 0;
	struct journal *j = db->journal;
	if (j && !j->bad) {
		struct arena a;
		arena_init(&a);
		const char *now = db_meta_get(db, "index_gen", &a);
		if (!now || strlen(now) != GEN_LEN || (j->last[0] && strcmp(now, j->last)))
			j->bad = 1;
		else if (!j->base[0])
			memcpy(j->base, now, GEN_LEN + 1);
		arena_release(&a);
	}
	unsigned char rnd[GEN_LEN / 2];
	char gen[GEN_LEN + 1];
	randombytes_buf(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(gen + 2 * i, 3, "%02x", rnd[i]);
	if (db_meta_set(db, "index_gen", gen) < 0)
		return -1;
	if (j)
		memcpy(j->last, gen, GEN_LEN + 1);
	db->bumped = in_txn;
	return 0;
}

static int cmp_inv_path(const void *a, const void *b)
{
	const struct inv_entry *x = *(const struct inv_entry *const *)a;
	const struct inv_entry *y = *(const struct inv_entry *const *)b;
	if (!x->path || !y->path)
		return (x->path != NULL) - (y->path != NULL);
	return strcmp(x->path, y->path);
}

/* the inventory's entries in path order: neighbours share a directory */
static struct inv_entry **inv_sorted(const struct hmap *inv)
{
	struct inv_entry **l = xmalloc((inv->n + 1) * sizeof(*l));
	size_t it = 0, n = 0;
	void *v;
	while (hmap_next(inv, &it, NULL, &v))
		l[n++] = v;
	qsort(l, n, sizeof(*l), cmp_inv_path);
	return l;
}

/* The entry of sorted (by path) with this path, or -1. */
static long inv_by_path(struct inv_entry **sorted, size_t n, const char *path)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = sorted[mid]->path ? strcmp(sorted[mid]->path, path) : -1;
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * The snapshot is the entries themselves: the inventory's and then the stat
 * cache's, as the structs they load into, followed by the strings they
 * point to. A pointer is stored as its string's offset + 1 (0 for NULL) and
 * set when loaded, so a load is one read and a pass holds the file and
 * nothing decoded from it (at 100,000 files, 29 MB and not 40). A stat
 * entry points to the path of the inventory entry of the same path; kind
 * names are stored once. The header names the build and the structs'
 * sizes: a copy of another layout is not used.
 */
struct snap_head {
	char magic[8];
	char gen[GEN_LEN];
	uint32_t ninv, nstat;
	uint64_t strsize;	/* bytes of strings after the entries, the last a '\0' */
	uint64_t sum;		/* of what follows the header */
	char layout[40];	/* DRIFTLESS_VERSION and the entries' sizes */
};

static void snap_layout(char out[40])
{
	memset(out, 0, 40);
	snprintf(out, 40, "%.16s %u %u", DRIFTLESS_VERSION, (unsigned)sizeof(struct inv_entry),
		 (unsigned)sizeof(struct stat_entry));
}

/* a string's place: its offset + 1 in the strings, counted as they are laid
 * out (the second walk writes them in the same order) */
static uintptr_t snap_str(uint64_t *at, const char *s)
{
	if (!s)
		return 0;
	uintptr_t v = (uintptr_t)*at + 1;
	*at += strlen(s) + 1;
	return v;
}

static int snap_flush(int fd, struct buf *b, uint64_t *sum, int last)
{
	if (!last && b->len < (1u << 20))
		return 0;
	return flat_flush(fd, b, sum, last) < 0 ? -1 : 0;
}

/* Streamed a MiB at a time (its size is not a peak of the pass), its sum
 * put in place last. */
static void snap_store(const char *file, const char *gen, const struct hmap *inv,
		       struct inv_entry **sorted, const struct hmap *stats)
{
	struct buf b = BUF_INIT;
	struct hmap knames;
	size_t it = 0;
	void *v;
	uint64_t sum = FLAT_SUM_SEED, at = 0;
	uintptr_t *paths = xcalloc(inv->n + 1, sizeof(*paths));
	/* a stat entry's inventory entry of the same path (or -1), found once
	 * for both the entries and the strings: the search is most of a store */
	long *same = xcalloc(stats->n + 1, sizeof(*same));
	size_t si = 0;
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	hmap_init(&knames);
	if (fd < 0)
		goto out;
	struct snap_head h = { .ninv = (uint32_t)inv->n, .nstat = (uint32_t)stats->n };
	memcpy(h.magic, SNAP_MAGIC, 8);
	memcpy(h.gen, gen, GEN_LEN);
	snap_layout(h.layout);
	int bad = fs_write_all(fd, &h, sizeof(h)) < 0;
	for (size_t i = 0; i < inv->n && !bad; i++) {
		const struct inv_entry *e = sorted[i];
		struct inv_entry r;
		memset(&r, 0, sizeof(r));	/* the padding too: the file is the same bytes each time */
		r.order = e->order;
		r.type = e->type;
		r.created = e->created;
		r.prune = e->prune;
		r.id = (const char *)snap_str(&at, e->id);
		uintptr_t k = e->kind ? (uintptr_t)hmap_get(&knames, e->kind) : 0;
		if (e->kind && !k) {
			k = snap_str(&at, e->kind);
			hmap_put(&knames, e->kind, (void *)k);
		}
		r.kind = (const char *)k;
		r.path = (const char *)(paths[i] = snap_str(&at, e->path));
		r.digest = (const char *)snap_str(&at, e->digest);
		r.content = (const char *)snap_str(&at, e->content);
		buf_add(&b, &r, sizeof(r));
		bad = snap_flush(fd, &b, &sum, 0) < 0;
	}
	while (!bad && hmap_next(stats, &it, NULL, &v)) {
		const struct stat_entry *e = v;
		struct stat_entry r;
		memset(&r, 0, sizeof(r));
		r.dev = e->dev;
		r.ino = e->ino;
		r.size = e->size;
		r.mtime_ns = e->mtime_ns;
		r.ctime_ns = e->ctime_ns;
		memcpy(r.oid, e->oid, sizeof(r.oid));
		r.known = e->known;
		long k = same[si++] = inv_by_path(sorted, inv->n, e->path);
		r.path = (const char *)(k < 0 ? snap_str(&at, e->path) : paths[k]);
		buf_add(&b, &r, sizeof(r));
		bad = snap_flush(fd, &b, &sum, 0) < 0;
	}
	/* the strings, in the order they were counted */
	hmap_release(&knames);
	hmap_init(&knames);
	for (size_t i = 0; i < inv->n && !bad; i++) {
		const struct inv_entry *e = sorted[i];
		const char *s[5] = { e->id, e->kind, e->path, e->digest, e->content };
		for (int j = 0; j < 5; j++) {
			if (!s[j] || (j == 1 && hmap_get(&knames, s[j])))
				continue;
			if (j == 1)
				hmap_put(&knames, s[j], (void *)1);
			buf_add(&b, s[j], strlen(s[j]) + 1);
		}
		bad = snap_flush(fd, &b, &sum, 0) < 0;
	}
	it = 0;
	si = 0;
	while (!bad && hmap_next(stats, &it, NULL, &v)) {
		const struct stat_entry *e = v;
		if (same[si++] < 0)
			buf_add(&b, e->path, strlen(e->path) + 1);
		bad = snap_flush(fd, &b, &sum, 0) < 0;
	}
	buf_addch(&b, '\0');	/* so that no offset reads past the end */
	at++;
	/* written in place: a torn or interleaved copy fails its sum and only
	 * costs a read from SQLite, so neither fsync nor rename is needed */
	if (!bad && flat_flush(fd, &b, &sum, 1) >= 0) {
		h.strsize = at;
		h.sum = sum;
		(void)!pwrite(fd, &h, sizeof(h), 0);
	}
out:
	if (fd >= 0)
		close(fd);
	buf_release(&b);
	hmap_release(&knames);
	free(paths);
	free(same);
}

/* a stored offset + 1 back to a pointer into strs, or bad */
static const char *snap_ptr(const char *p, const char *strs, uint64_t strsize, int *bad)
{
	uintptr_t v = (uintptr_t)p;
	if (!v)
		return NULL;
	if (v - 1 >= strsize) {
		*bad = 1;
		return NULL;
	}
	return strs + (v - 1);
}

/* 0 loaded, 1 no usable copy (the maps are then left as they were) */
static int snap_load(const char *file, const char *gen, struct arena *a, struct hmap *inv,
		     struct hmap *stats, struct inv_entry ***list)
{
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	struct snap_head h;
	char layout[40];
	if (fd < 0)
		return 1;
	/* the header first: a copy a later write made stale costs a few bytes
	 * of reading, not its size in memory */
	snap_layout(layout);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(h) + 1 ||
	    st.st_size > (1 << 30) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, SNAP_MAGIC, 8) || memcmp(h.gen, gen, GEN_LEN) ||
	    memcmp(h.layout, layout, sizeof(layout))) {
		close(fd);
		return 1;
	}
	size_t size = (size_t)st.st_size - sizeof(h);
	size_t fixed = (size_t)h.ninv * sizeof(struct inv_entry) +
		       (size_t)h.nstat * sizeof(struct stat_entry);
	if (fixed > size || h.strsize != size - fixed || !h.strsize) {
		close(fd);
		return 1;
	}
	char *data = arena_alloc_raw(a, size);	/* aligned as the structs need */
	int rd = fs_pread_all(fd, data, size, (off_t)sizeof(h));
	close(fd);
	if (rd < 0 || flat_sum(FLAT_SUM_SEED, data, size) != h.sum || data[size - 1])
		return 1;
	struct inv_entry *ie = (struct inv_entry *)data;
	struct stat_entry *se = (struct stat_entry *)(data + (size_t)h.ninv * sizeof(*ie));
	const char *strs = data + fixed;
	int bad = 0;
	for (uint32_t i = 0; i < h.ninv && !bad; i++) {
		struct inv_entry *e = &ie[i];
		e->id = snap_ptr(e->id, strs, h.strsize, &bad);
		e->kind = snap_ptr(e->kind, strs, h.strsize, &bad);
		e->path = snap_ptr(e->path, strs, h.strsize, &bad);
		e->digest = snap_ptr(e->digest, strs, h.strsize, &bad);
		e->content = snap_ptr(e->content, strs, h.strsize, &bad);
		e->pre = NULL;
		e->seen = 0;
		if (!e->id)
			bad = 1;
	}
	for (uint32_t i = 0; i < h.nstat && !bad; i++) {
		struct stat_entry *e = &se[i];
		e->path = snap_ptr(e->path, strs, h.strsize, &bad);
		e->known = e->known != 0;
		e->dirty = 0;
		if (!e->path)
			bad = 1;
	}
	if (bad)
		return 1;
	hmap_reserve(inv, inv->n + h.ninv);
	hmap_reserve(stats, stats->n + h.nstat);
	*list = xmalloc(((size_t)h.ninv + 1) * sizeof(**list));
	for (uint32_t i = 0; i < h.ninv; i++) {
		hmap_put(inv, ie[i].id, &ie[i]);
		(*list)[i] = &ie[i];
	}
	for (uint32_t i = 0; i < h.nstat; i++)
		hmap_put(stats, se[i].path, &se[i]);
	return 0;
}

int db_index_prepare(struct db *db, struct arena *a, char **file, char **gen)
{
	*file = arena_printf(a, "%s.index", db->path);
	*gen = db_meta_get(db, "index_gen", a);
	/* a database from before snapshots has no generation yet */
	if (!*gen) {
		if (index_bump(db) < 0)
			err_clear();
		*gen = db_meta_get(db, "index_gen", a);
	}
	if (*gen && strlen(*gen) != GEN_LEN)
		*gen = NULL;
	return 0;
}

int db_index_snapshot(const char *file, const char *gen, struct arena *a, struct hmap *inv,
		      struct hmap *stats, struct inv_entry ***list)
{
	struct inv_entry **sorted = NULL;
	if (!gen || snap_load(file, gen, a, inv, stats, &sorted))
		return 1;
	if (list)
		*list = sorted;
	else
		free(sorted);
	return 0;
}

static int inv_query(struct db *db, const char *where, const char *arg, struct arena *a,
		     struct hmap *out, const struct hmap *paths);

/* the first column of the first row of sql, or 0 */
static long long count_rows(struct db *db, const char *sql)
{
	sqlite3_stmt *st = prep(db, sql);
	long long n = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n > 0 && n < 100000000 ? n : 0;
}

/* From SQLite, in one read transaction (the rows and the generation stored
 * with them are of the same moment), and the snapshot written again. */
static int index_from_sqlite(struct db *db, const char *file, struct arena *a, struct hmap *inv,
			     struct hmap *stats, struct inv_entry ***list)
{
	if (db_exec(db, "BEGIN") < 0)
		return -1;
	char *gen = db_meta_get(db, "index_gen", a);
	/* the maps at their size at once, not grown (and copied) as they fill */
	hmap_reserve(stats, stats->n + (size_t)count_rows(db, "SELECT count(*) FROM statcache"));
	hmap_reserve(inv, inv->n + (size_t)count_rows(db, "SELECT count(*) FROM inventory"));
	/* the stat cache first: an inventory entry of the same path shares its
	 * copy of the path, as in the snapshot */
	if (db_stat_load(db, a, stats) < 0 || inv_query(db, NULL, NULL, a, inv, stats) < 0) {
		db_exec(db, "ROLLBACK");
		return -1;
	}
	if (db_exec(db, "COMMIT") < 0)
		return -1;
	struct inv_entry **sorted = inv_sorted(inv);
	if (gen && strlen(gen) == GEN_LEN)
		snap_store(file, gen, inv, sorted, stats);
	else
		unlink(file);
	if (list)
		*list = sorted;
	else
		free(sorted);
	return 0;
}

int db_index_load(struct db *db, struct arena *a, struct hmap *inv, struct hmap *stats,
		  struct inv_entry ***list)
{
	char *file, *gen;
	db_index_prepare(db, a, &file, &gen);
	if (db_index_snapshot(file, gen, a, inv, stats, list) == 0)
		return 0;
	return index_from_sqlite(db, file, a, inv, stats, list);
}

size_t db_index_size_hint(const char *file)
{
	struct snap_head h;
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	close(fd);
	return n == (ssize_t)sizeof(h) && !memcmp(h.magic, SNAP_MAGIC, 8) ? h.ninv : 0;
}

/* sqlite3_progress_handler: a non-zero return interrupts the statement */
static int load_cancelled(void *arg)
{
	return atomic_load((const atomic_int *)arg);
}

int db_index_load_apart(const char *file, struct arena *a, struct hmap *inv, struct hmap *stats,
			struct inv_entry ***list, const atomic_int *cancel)
{
	struct db tmp = { 0 };
	size_t n = strlen(file);
	if (n < 6 || strcmp(file + n - 6, ".index"))
		return err_set("'%s' is not an index snapshot's name", file);
	tmp.path = arena_strndup(a, file, n - 6);
	if (sqlite3_open_v2(tmp.path, &tmp.h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		err_set("cannot open state database '%s': %s", tmp.path,
			tmp.h ? sqlite3_errmsg(tmp.h) : "out of memory");
		sqlite3_close(tmp.h);
		return -1;
	}
	sqlite3_busy_timeout(tmp.h, 5000);
	/* two table scans: a page is read once, a cache would only be held */
	sqlite3_exec(tmp.h, "PRAGMA cache_size = -256;", NULL, NULL, NULL);
	if (cancel)
		sqlite3_progress_handler(tmp.h, 4096, load_cancelled, (void *)(uintptr_t)cancel);
	int r = index_from_sqlite(&tmp, file, a, inv, stats, list);
	sqlite3_close(tmp.h);
	return r;
}

int db_index_refresh(struct db *db)
{
	struct journal *j = db->journal;
	if (!j || !j->last[0])
		return 0;	/* nothing written */
	int ret = 1;
	char *file = xasprintf("%s.index", db->path);
	struct arena a;
	struct hmap inv, stats, keep_inv, keep_stats;
	struct inv_entry **list = NULL, **sorted = NULL;
	arena_init(&a);
	hmap_init(&inv);
	hmap_init(&stats);
	hmap_init(&keep_inv);
	hmap_init(&keep_stats);
	if (j->bad || snap_load(file, j->base, &a, &inv, &stats, &list))
		goto out;
	/* the rows not written, as they were; those written, as SQLite has them */
	hmap_reserve(&keep_inv, inv.n + j->inv.n);
	hmap_reserve(&keep_stats, stats.n + j->stat.n);
	const char *k;
	void *v;
	size_t it = 0;
	while (hmap_next(&inv, &it, &k, &v))
		if (!hmap_get(&j->inv, k))
			hmap_put(&keep_inv, k, v);
	it = 0;
	while (hmap_next(&stats, &it, &k, &v))
		if (!hmap_get(&j->stat, k))
			hmap_put(&keep_stats, k, v);
	if (db_exec(db, "BEGIN") < 0)
		goto out;
	const char *now = db_meta_get(db, "index_gen", &a);
	int bad = !now || strcmp(now, j->last);
	it = 0;
	while (!bad && hmap_next(&j->inv, &it, &k, NULL))
		bad = inv_query(db, "id = ?", k, &a, &keep_inv, NULL) < 0;
	it = 0;
	while (!bad && hmap_next(&j->stat, &it, &k, NULL))
		bad = stat_query(db, k, 1, &a, &keep_stats) < 0;
	db_exec(db, "COMMIT");
	if (bad)
		goto out;
	sorted = inv_sorted(&keep_inv);
	snap_store(file, j->last, &keep_inv, sorted, &keep_stats);
	ret = 0;
out:
	if (ret)
		err_clear();
	/* from here on, what is written is relative to this generation */
	journal_forget(j);
	if (ret == 0)
		memcpy(j->base, j->last, sizeof(j->base));
	else
		j->base[0] = j->last[0] = '\0';
	j->bad = 0;
	free(list);
	free(sorted);
	hmap_release(&inv);
	hmap_release(&stats);
	hmap_release(&keep_inv);
	hmap_release(&keep_stats);
	arena_release(&a);
	free(file);
	return ret;
}

int db_inv_load(struct db *db, struct arena *a, struct hmap *out)
{
	return db_inv_load_kind(db, NULL, a, out);
}

/* Inventory rows into out: all of them, or those where column (a
 * literal) equals arg. */
static int inv_query(struct db *db, const char *where, const char *arg, struct arena *a,
		     struct hmap *out, const struct hmap *paths)
{
	struct hmap knames;	/* a kind's name once, not once a row */
	hmap_init(&knames);
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT id, kind, path, type, created, prune, digest, content,"
		 " ord FROM inventory%s%s", where ? " WHERE " : "", where ? where : "");
	sqlite3_stmt *st = prep(db, sql);
	int rc;
	if (!st)
		return -1;
	if (arg)
		bind_text(st, 1, arg);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct inv_entry *e = arena_alloc(a, sizeof(*e));
		e->id = col_text(st, 0, a);
		const char *k = (const char *)sqlite3_column_text(st, 1);
		if (k && !(e->kind = hmap_get(&knames, k))) {
			e->kind = arena_strdup(a, k);
			hmap_put(&knames, e->kind, (void *)e->kind);
		}
		/* the stat cache's copy of the path, when it has one */
		const char *path = (const char *)sqlite3_column_text(st, 2);
		const struct stat_entry *se = path && paths ? hmap_get(paths, path) : NULL;
		e->path = se ? se->path : col_text(st, 2, a);
		int type = sqlite3_column_int(st, 3);
		e->type = (signed char)(type >= NODE_NONE && type <= NODE_OTHER ? type : NODE_OTHER);
		e->created = sqlite3_column_int(st, 4) != 0;
		e->prune = sqlite3_column_int(st, 5) != 0;
		e->digest = col_text(st, 6, a);
		e->content = col_text(st, 7, a);
		e->order = sqlite3_column_int(st, 8);
		hmap_put(out, e->id, e);
	}
	sqlite3_finalize(st);
	hmap_release(&knames);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "reading the inventory");
}

int db_inv_load_kind(struct db *db, const char *kind, struct arena *a, struct hmap *out)
{
	return inv_query(db, kind ? "kind = ?" : NULL, kind, a, out, NULL);
}

int db_inv_put(struct db *db, const struct inv_entry *e)
{
	if (index_bump(db) < 0)
		return -1;
	if (db->journal)
		journal_key(db, &db->journal->inv, e->id);
	sqlite3_stmt *st = prep_hot(db, HOT_INV_PUT,
				    "INSERT OR REPLACE INTO inventory(id, kind, path, type, created,"
				    " prune, digest, content, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return -1;
	bind_text(st, 1, e->id);
	bind_text(st, 2, e->kind);
	bind_text(st, 3, e->path);
	sqlite3_bind_int(st, 4, e->type);
	sqlite3_bind_int(st, 5, e->created);
	sqlite3_bind_int(st, 6, e->prune);
	bind_text(st, 7, e->digest ? e->digest : "");
	bind_text(st, 8, e->content ? e->content : "");
	sqlite3_bind_int(st, 9, e->order);
	return step_hot(db, st, "writing the inventory");
}

int db_inv_del(struct db *db, const char *id)
{
	if (index_bump(db) < 0)
		return -1;
	if (db->journal)
		journal_key(db, &db->journal->inv, id);
	sqlite3_stmt *st = prep_hot(db, HOT_INV_DEL, "DELETE FROM inventory WHERE id = ?");
	if (!st)
		return -1;
	bind_text(st, 1, id);
	return step_hot(db, st, "writing the inventory");
}

/* Stat cache entries into out: all, or those of path and below it. */
static int stat_query(struct db *db, const char *path, int exact, struct arena *a, struct hmap *out)
{
	sqlite3_stmt *st = prep(db, !path ? "SELECT path, dev, ino, size, mtime_ns, ctime_ns, oid FROM statcache" :
				    exact ? "SELECT path, dev, ino, size, mtime_ns, ctime_ns, oid"
					    " FROM statcache WHERE path = ?1" :
					    "SELECT path, dev, ino, size, mtime_ns, ctime_ns, oid"
					    " FROM statcache WHERE path = ?1 OR (path > ?2 AND path < ?3)");
	int rc;
	if (!st)
		return -1;
	char *lo = NULL, *hi = NULL;
	if (path)
		bind_text(st, 1, path);
	if (path && !exact) {
		/* what is below "P" sorts between "P/" and "P0" ('0' follows '/') */
		lo = xasprintf("%s/", path);
		hi = xasprintf("%s0", path);
		bind_text(st, 2, lo);
		bind_text(st, 3, hi);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *pp = sqlite3_column_text(st, 0);
		if (path && pp && hmap_get(out, (const char *)pp))
			continue;	/* in memory already, maybe newer */
		struct stat_entry *e = arena_alloc(a, sizeof(*e));
		e->path = col_text(st, 0, a);
		e->dev = (uint64_t)sqlite3_column_int64(st, 1);
		e->ino = (uint64_t)sqlite3_column_int64(st, 2);
		e->size = (uint64_t)sqlite3_column_int64(st, 3);
		e->mtime_ns = sqlite3_column_int64(st, 4);
		e->ctime_ns = sqlite3_column_int64(st, 5);
		const unsigned char *o = sqlite3_column_text(st, 6);
		e->known = o && oid_to_bin((const char *)o, e->oid) == 0;
		hmap_put(out, e->path, e);
	}
	sqlite3_finalize(st);
	free(lo);
	free(hi);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "reading the stat cache");
}

int db_stat_load(struct db *db, struct arena *a, struct hmap *out)
{
	return stat_query(db, NULL, 0, a, out);
}

int db_index_get(struct db *db, struct arena *a, struct hmap *inv, struct hmap *stats,
		 const char *id, const char *path)
{
	if (id && !hmap_get(inv, id) && inv_query(db, "id = ?", id, a, inv, NULL) < 0)
		return -1;
	return path ? stat_query(db, path, 0, a, stats) : 0;
}

int db_stat_put(struct db *db, const struct stat_entry *e)
{
	if (index_bump(db) < 0)
		return -1;
	if (db->journal)
		journal_key(db, &db->journal->stat, e->path);
	sqlite3_stmt *st = prep_hot(db, HOT_STAT_PUT,
				    "INSERT OR REPLACE INTO statcache(path, dev, ino, size, mtime_ns,"
				    " ctime_ns, oid) VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return -1;
	bind_text(st, 1, e->path);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)e->dev);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->ino);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)e->size);
	sqlite3_bind_int64(st, 5, e->mtime_ns);
	sqlite3_bind_int64(st, 6, e->ctime_ns);
	char oid[41] = "";
	if (e->known)
		oid_to_hex(e->oid, oid);
	bind_text(st, 7, oid);
	return step_hot(db, st, "writing the stat cache");
}

int db_stat_del(struct db *db, const char *path)
{
	if (index_bump(db) < 0)
		return -1;
	if (db->journal)
		journal_key(db, &db->journal->stat, path);
	sqlite3_stmt *st = prep_hot(db, HOT_STAT_DEL, "DELETE FROM statcache WHERE path = ?");
	if (!st)
		return -1;
	bind_text(st, 1, path);
	return step_hot(db, st, "writing the stat cache");
}

int db_pass_add(struct db *db, struct pass_record *r)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO passes(started_ms, finished_ms, command, commit_oid,"
				" ref, author, summary, result, created, updated, deleted, unchanged,"
				" failed, skipped, error, signature) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, r->started_ms);
	sqlite3_bind_int64(st, 2, r->finished_ms);
	bind_text(st, 3, r->command);
	bind_text(st, 4, r->commit);
	bind_text(st, 5, r->ref);
	bind_text(st, 6, r->author);
	bind_text(st, 7, r->summary);
	bind_text(st, 8, r->result);
	sqlite3_bind_int(st, 9, r->counts[OUT_CREATED]);
	sqlite3_bind_int(st, 10, r->counts[OUT_UPDATED]);
	sqlite3_bind_int(st, 11, r->counts[OUT_DELETED]);
	sqlite3_bind_int(st, 12, r->counts[OUT_UNCHANGED]);
	sqlite3_bind_int(st, 13, r->counts[OUT_FAILED]);
	sqlite3_bind_int(st, 14, r->counts[OUT_SKIPPED]);
	bind_text(st, 15, r->error);
	bind_text(st, 16, r->signature);
	if (step_done(db, st, "recording history") < 0)
		return -1;
	r->id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_outcome_add(struct db *db, int64_t pass_id, const char *res_id, const char *outcome,
		   const char *detail)
{
	sqlite3_stmt *st = prep_hot(db, HOT_OUTCOME,
				    "INSERT INTO outcomes(pass_id, res_id, outcome, detail)"
				    " VALUES (?, ?, ?, ?)");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, pass_id);
	bind_text(st, 2, res_id);
	bind_text(st, 3, outcome);
	bind_text(st, 4, detail);
	return step_hot(db, st, "recording history");
}

int db_backup_add(struct db *db, const char *path, const char *oid, int64_t when_ms,
		  const char *commit)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO backups(path, oid, when_ms, commit_oid) VALUES (?,?,?,?)");
	if (!st)
		return -1;
	bind_text(st, 1, path);
	bind_text(st, 2, oid);
	sqlite3_bind_int64(st, 3, when_ms);
	bind_text(st, 4, commit);
	return step_done(db, st, "recording a backup");
}

static int passes_query(struct db *db, sqlite3_stmt *st, db_pass_cb cb, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pass_record r = { 0 };
		r.id = sqlite3_column_int64(st, 0);
		r.started_ms = sqlite3_column_int64(st, 1);
		r.finished_ms = sqlite3_column_int64(st, 2);
		r.command = (const char *)sqlite3_column_text(st, 3);
		r.commit = (const char *)sqlite3_column_text(st, 4);
		r.ref = (const char *)sqlite3_column_text(st, 5);
		r.author = (const char *)sqlite3_column_text(st, 6);
		r.summary = (const char *)sqlite3_column_text(st, 7);
		r.result = (const char *)sqlite3_column_text(st, 8);
		r.counts[OUT_CREATED] = sqlite3_column_int(st, 9);
		r.counts[OUT_UPDATED] = sqlite3_column_int(st, 10);
		r.counts[OUT_DELETED] = sqlite3_column_int(st, 11);
		r.counts[OUT_UNCHANGED] = sqlite3_column_int(st, 12);
		r.counts[OUT_FAILED] = sqlite3_column_int(st, 13);
		r.counts[OUT_SKIPPED] = sqlite3_column_int(st, 14);
		r.error = (const char *)sqlite3_column_text(st, 15);
		r.signature = (const char *)sqlite3_column_text(st, 16);
		if (cb(ctx, &r))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "reading history");
}

#define PASS_COLUMNS "SELECT id, started_ms, finished_ms, command, commit_oid, ref," \
	" author, summary, result, created, updated, deleted, unchanged, failed," \
	" skipped, error, signature FROM passes"

int db_passes(struct db *db, int n, db_pass_cb cb, void *ctx)
{
	sqlite3_stmt *st = prep(db, PASS_COLUMNS " ORDER BY id DESC LIMIT ?");
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, n > 0 ? n : -1);
	return passes_query(db, st, cb, ctx);
}

int db_passes_between(struct db *db, int64_t since_ms, int64_t until_ms, db_pass_cb cb, void *ctx)
{
	sqlite3_stmt *st = prep(db, PASS_COLUMNS " WHERE started_ms >= ? AND started_ms < ? ORDER BY id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	return passes_query(db, st, cb, ctx);
}

int db_outcomes(struct db *db, int64_t pass_id, db_outcome_cb cb, void *ctx)
{
	sqlite3_stmt *st = prep(db, "SELECT res_id, outcome, detail FROM outcomes WHERE pass_id = ?"
				" ORDER BY rowid");
	int rc;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, pass_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cb(ctx, (const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2)))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "reading history");
}

int db_drift_add(struct db *db, const struct drift_event *e)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO drift_events(when_ms, res_id, path, policy, action,"
				" what, before, after, commit_oid) VALUES (?,?,?,?,?,?,?,?,?)");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, e->when_ms);
	bind_text(st, 2, e->res_id);
	bind_text(st, 3, e->path);
	bind_text(st, 4, e->policy);
	bind_text(st, 5, e->action);
	bind_text(st, 6, e->what);
	bind_text(st, 7, e->before);
	bind_text(st, 8, e->after);
	bind_text(st, 9, e->commit);
	return step_done(db, st, "recording a drift event");
}

static int drift_query(struct db *db, sqlite3_stmt *st, db_drift_cb cb, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct drift_event e = {
			.when_ms = sqlite3_column_int64(st, 0),
			.res_id = (const char *)sqlite3_column_text(st, 1),
			.path = (const char *)sqlite3_column_text(st, 2),
			.policy = (const char *)sqlite3_column_text(st, 3),
			.action = (const char *)sqlite3_column_text(st, 4),
			.what = (const char *)sqlite3_column_text(st, 5),
			.before = (const char *)sqlite3_column_text(st, 6),
			.after = (const char *)sqlite3_column_text(st, 7),
			.commit = (const char *)sqlite3_column_text(st, 8),
		};
		if (cb(ctx, &e))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "reading drift events");
}

#define DRIFT_COLUMNS "SELECT when_ms, res_id, path, policy, action, what, before, after," \
	" commit_oid FROM drift_events"

int db_drift_list(struct db *db, int n, db_drift_cb cb, void *ctx)
{
	sqlite3_stmt *st = prep(db, DRIFT_COLUMNS " ORDER BY id DESC LIMIT ?");
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, n > 0 ? n : -1);
	return drift_query(db, st, cb, ctx);
}

int db_drift_between(struct db *db, int64_t since_ms, int64_t until_ms, db_drift_cb cb, void *ctx)
{
	sqlite3_stmt *st = prep(db, DRIFT_COLUMNS " WHERE when_ms >= ? AND when_ms < ? ORDER BY id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	return drift_query(db, st, cb, ctx);
}

int db_suspend_start(struct db *db, struct suspension *sp)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO suspensions(started_ms, until_ms, reason, by_user)"
				" VALUES (?, ?, ?, ?)");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, sp->started_ms);
	sqlite3_bind_int64(st, 2, sp->until_ms);
	bind_text(st, 3, sp->reason);
	bind_text(st, 4, sp->by);
	if (step_done(db, st, "recording a suspension") < 0)
		return -1;
	sp->id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_suspend_end(struct db *db, int64_t now_ms, const char *by)
{
	/* every open one: ended now, or at its deadline when that has passed */
	sqlite3_stmt *st = prep(db, "UPDATE suspensions SET ended_ms = min(?, until_ms), ended_by = ?"
				" WHERE ended_ms IS NULL");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now_ms);
	bind_text(st, 2, by);
	if (step_done(db, st, "ending a suspension") < 0)
		return -1;
	return sqlite3_changes(db->h);
}

static int suspensions_query(struct db *db, sqlite3_stmt *st, db_suspension_cb cb, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct suspension sp = {
			.id = sqlite3_column_int64(st, 0),
			.started_ms = sqlite3_column_int64(st, 1),
			.until_ms = sqlite3_column_int64(st, 2),
			.reason = (const char *)sqlite3_column_text(st, 3),
			.by = (const char *)sqlite3_column_text(st, 4),
			.ended_ms = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 :
				    sqlite3_column_int64(st, 5),
			.ended_by = (const char *)sqlite3_column_text(st, 6),
		};
		if (cb(ctx, &sp))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "reading suspensions");
}

#define SUSPENSION_COLUMNS "SELECT id, started_ms, until_ms, reason, by_user, ended_ms, ended_by" \
	" FROM suspensions"

struct active_ctx {
	struct arena *a;
	struct suspension *out;
	int found;
};

static int take_active(void *ctx, const struct suspension *sp)
{
	struct active_ctx *c = ctx;
	*c->out = *sp;
	c->out->reason = arena_strdup(c->a, sp->reason ? sp->reason : "");
	c->out->by = arena_strdup(c->a, sp->by ? sp->by : "");
	c->out->ended_by = NULL;
	c->found = 1;
	return 1;
}

int db_suspend_active(struct db *db, int64_t now_ms, struct arena *a, struct suspension *out)
{
	struct active_ctx c = { a, out, 0 };
	sqlite3_stmt *st = prep(db, SUSPENSION_COLUMNS " WHERE ended_ms IS NULL AND until_ms > ?"
				" ORDER BY id DESC LIMIT 1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, now_ms);
	if (suspensions_query(db, st, take_active, &c) < 0)
		return -1;
	return c.found;
}

int db_suspensions_between(struct db *db, int64_t since_ms, int64_t until_ms, db_suspension_cb cb,
			   void *ctx)
{
	sqlite3_stmt *st = prep(db, SUSPENSION_COLUMNS " WHERE started_ms < ? AND"
				" coalesce(ended_ms, until_ms) >= ? ORDER BY id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, until_ms);
	sqlite3_bind_int64(st, 2, since_ms);
	return suspensions_query(db, st, cb, ctx);
}

int64_t db_drift_since(struct db *db, const char *res_id)
{
	/* the first event after the last repair: when this drift began */
	sqlite3_stmt *st = prep(db, "SELECT min(when_ms) FROM drift_events WHERE res_id = ?1 AND"
				" id > coalesce((SELECT max(id) FROM drift_events WHERE res_id = ?1"
				" AND action = 'repaired'), 0)");
	int64_t v = 0;
	if (!st)
		return -1;
	bind_text(st, 1, res_id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int64_t db_inv_count(struct db *db)
{
	sqlite3_stmt *st = prep(db, "SELECT count(*) FROM inventory");
	int64_t n = -1;
	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
