/* SPDX-License-Identifier: MIT */
/* Unit tests for the index snapshot (state/db.c): a snapshot brought up to
 * date by db_index_refresh holds exactly what SQLite holds, and is not
 * written when another connection wrote in between. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/arena.h"
#include "lib/hmap.h"
#include "state/db.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/dl-index-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void put_inv(struct db *db, const char *id, const char *path, const char *digest)
{
	struct inv_entry e = { .id = id, .kind = "File", .path = path, .digest = digest,
			       .content = "", .type = 1, .created = 1, .prune = 1 };
	assert_int_equal(db_inv_put(db, &e), 0);
}

static void put_stat(struct db *db, const char *path, uint64_t size)
{
	struct stat_entry e = { .path = path, .dev = 1, .ino = size, .size = size,
				.mtime_ns = 5, .ctime_ns = 6, .known = 1 };
	memset(e.oid, (int)size, sizeof(e.oid));
	assert_int_equal(db_stat_put(db, &e), 0);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* one line per entry, sorted: what a map pair says, to compare two */
static char *dump(const struct hmap *inv, const struct hmap *stats)
{
	size_t n = inv->n + stats->n, k = 0, it = 0;
	char **lines = calloc(n + 1, sizeof(*lines));
	void *v;
	while (hmap_next(inv, &it, NULL, &v)) {
		const struct inv_entry *e = v;
		assert_true(asprintf(&lines[k++], "inv %s %s %s %s %s %d %d %d %d", e->id, e->kind,
				     e->path ? e->path : "-", e->digest, e->content, e->order, e->type,
				     e->created, e->prune) > 0);
	}
	it = 0;
	while (hmap_next(stats, &it, NULL, &v)) {
		const struct stat_entry *e = v;
		assert_true(asprintf(&lines[k++], "stat %s %llu %llu %llu %lld %lld %d %d", e->path,
				     (unsigned long long)e->dev, (unsigned long long)e->ino,
				     (unsigned long long)e->size, (long long)e->mtime_ns,
				     (long long)e->ctime_ns, e->oid[0], e->known) > 0);
	}
	qsort(lines, k, sizeof(*lines), cmp_line);
	size_t len = 1;
	for (size_t i = 0; i < k; i++)
		len += strlen(lines[i]) + 1;
	char *out = calloc(1, len);
	for (size_t i = 0; i < k; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	free(lines);
	return out;
}

/* the snapshot of the current generation, or NULL when there is none */
static char *from_snapshot(struct db *db)
{
	struct arena a;
	struct hmap inv, stats;
	char *file, *gen, *out = NULL;
	arena_init(&a);
	hmap_init(&inv);
	hmap_init(&stats);
	db_index_prepare(db, &a, &file, &gen);
	if (db_index_snapshot(file, gen, &a, &inv, &stats, NULL) == 0)
		out = dump(&inv, &stats);
	hmap_release(&inv);
	hmap_release(&stats);
	arena_release(&a);
	return out;
}

/* what SQLite holds (db_index_load reads it when the snapshot is removed) */
static char *from_sqlite(struct db *db)
{
	struct arena a;
	struct hmap inv, stats;
	char *file, *gen;
	arena_init(&a);
	hmap_init(&inv);
	hmap_init(&stats);
	db_index_prepare(db, &a, &file, &gen);
	char *save = strdup(file);
	unlink(save);
	assert_int_equal(db_index_load(db, &a, &inv, &stats, NULL), 0);
	char *out = dump(&inv, &stats);
	hmap_release(&inv);
	hmap_release(&stats);
	arena_release(&a);
	free(save);
	return out;
}

static void test_index__refresh_matches_sqlite(void **state)
{
	(void)state;
	struct db *db;
	assert_int_equal(db_open(&db, dir), 0);
	char id[32], path[32];
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "File/f%d", i);
		snprintf(path, sizeof(path), "/srv/f%d", i);
		put_inv(db, id, path, "d0");
		put_stat(db, path, (uint64_t)i);
	}
	put_stat(db, "/srv/only-stat", 7);
	char *want = from_sqlite(db);	/* and a snapshot of this generation */
	char *got = from_snapshot(db);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* a pass: changes, new rows, deletions, in and out of a transaction */
	db_index_track(db);
	assert_int_equal(db_begin(db), 0);
	put_inv(db, "File/f3", "/srv/f3", "d1");
	put_stat(db, "/srv/f3", 33);
	put_inv(db, "File/new", "/srv/new", "d2");
	put_stat(db, "/srv/new", 44);
	assert_int_equal(db_inv_del(db, "File/f5"), 0);
	assert_int_equal(db_stat_del(db, "/srv/f5"), 0);
	assert_int_equal(db_commit(db), 0);
	put_stat(db, "/srv/f7", 77);
	assert_int_equal(db_stat_del(db, "/srv/only-stat"), 0);
	assert_null(from_snapshot(db));	/* stale now */
	assert_int_equal(db_index_refresh(db), 0);
	got = from_snapshot(db);
	assert_non_null(got);
	assert_non_null(strstr(got, "inv File/new File /srv/new d2"));
	assert_null(strstr(got, "File/f5 "));
	assert_null(strstr(got, "only-stat"));
	want = from_sqlite(db);
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* and again from there: a second pass of the same connection */
	put_inv(db, "File/f9", "/srv/f9", "d9");
	assert_int_equal(db_index_refresh(db), 0);
	got = from_snapshot(db);
	want = from_sqlite(db);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);
	db_close(db);
}

static void test_index__another_writer_means_no_refresh(void **state)
{
	(void)state;
	struct db *db, *other;
	assert_int_equal(db_open(&db, dir), 0);
	put_inv(db, "File/a", "/srv/a", "d0");
	char *s = from_sqlite(db);
	free(s);
	db_index_track(db);
	put_inv(db, "File/b", "/srv/b", "d0");
	assert_int_equal(db_open(&other, dir), 0);
	put_inv(other, "File/c", "/srv/c", "d0");
	db_close(other);
	assert_int_equal(db_index_refresh(db), 1);
	assert_null(from_snapshot(db));
	/* nor when the last write was someone else's */
	s = from_sqlite(db);
	free(s);
	put_inv(db, "File/d", "/srv/d", "d0");
	assert_int_equal(db_open(&other, dir), 0);
	put_inv(other, "File/e", "/srv/e", "d0");
	db_close(other);
	assert_int_equal(db_index_refresh(db), 1);
	assert_null(from_snapshot(db));
	db_close(db);
}

static void test_index__too_many_keys_means_no_refresh(void **state)
{
	(void)state;
	struct db *db;
	assert_int_equal(db_open(&db, dir), 0);
	put_inv(db, "File/a", "/srv/a", "d0");
	char *s = from_sqlite(db);
	free(s);
	db_index_track(db);
	char id[32];
	assert_int_equal(db_begin(db), 0);
	for (int i = 0; i < 20001; i++) {
		snprintf(id, sizeof(id), "File/m%d", i);
		put_inv(db, id, NULL, "d0");
	}
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(db_index_refresh(db), 1);
	assert_null(from_snapshot(db));
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index__refresh_matches_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__another_writer_means_no_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__too_many_keys_means_no_refresh, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
