/* SPDX-License-Identifier: MIT */
/* The only seam to SQLite: inventory, stat cache, history and status of the agent. */
#ifndef DL_DB_H
#define DL_DB_H

#include <stdatomic.h>
#include <stdint.h>
#include "core/model.h"

struct db;

/* Open (creating and migrating) STATE/driftless.db in WAL mode, synchronous=FULL. */
int db_open(struct db **out, const char *state_dir);
void db_close(struct db *db);
/* A long-running holder (the agent): SQLite's page cache at most kib KiB,
 * and the pages it holds between transactions given back. */
int db_cache_limit(struct db *db, int kib);
void db_release_memory(struct db *db);
/* For the lock holder: the same, but a database that is corrupt, not a
 * database, or not a regular file is moved aside with a timestamp and
 * rebuilt; then *rebuilt says so (heap string) and meta 'rebuilt' is set. */
int db_open_recover(struct db **out, const char *state_dir, char **rebuilt);

int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* Meta values are strings; db_meta_get returns an arena copy or NULL. */
char *db_meta_get(struct db *db, const char *key, struct arena *a);
int db_meta_set(struct db *db, const char *key, const char *val);

/* Inventory rows (id -> struct inv_entry allocated in a). */
int db_inv_load(struct db *db, struct arena *a, struct hmap *out);
int db_inv_put(struct db *db, const struct inv_entry *e);
/* The same, only the rows of one kind. */
int db_inv_load_kind(struct db *db, const char *kind, struct arena *a, struct hmap *out);
/* How many inventory rows there are (-1 on error), without loading them. */
int64_t db_inv_count(struct db *db);
int db_inv_del(struct db *db, const char *id);

/* Stat cache rows (path -> struct stat_entry allocated in a). */
int db_stat_load(struct db *db, struct arena *a, struct hmap *out);
/* The inventory and the stat cache together, from the index snapshot beside
 * the database when it is current, else from SQLite (and the snapshot is
 * written again). With list, also the inventory's entries (inv->n of them)
 * in path order, in an array the caller frees. */
int db_index_load(struct db *db, struct arena *a, struct hmap *inv, struct hmap *stats,
		  struct inv_entry ***list);
/* The same in two steps, so that the second may run on another thread: the
 * snapshot's file and the generation it must carry (gen NULL: none); then
 * the snapshot alone, which touches neither db nor any global state:
 * 0 loaded, 1 no usable snapshot (nothing added to the maps). */
int db_index_prepare(struct db *db, struct arena *a, char **file, char **gen);
int db_index_snapshot(const char *file, const char *gen, struct arena *a, struct hmap *inv,
		      struct hmap *stats, struct inv_entry ***list);
/* The SQLite half of db_index_load on a read-only connection of its own,
 * for a thread other than the one using the db: file is the snapshot's
 * name from db_index_prepare (the database's name and ".index"). */
int db_index_load_apart(const char *file, struct arena *a, struct hmap *inv, struct hmap *stats,
			struct inv_entry ***list, const atomic_int *cancel);
/* Keep the keys this connection writes to the inventory and the stat
 * cache, so that db_index_refresh can bring the snapshot up to date: the
 * snapshot of the generation before the first write, those rows read
 * again. 0 done, 1 not possible (another writer, too many keys, no such
 * snapshot: the next load reads SQLite). Tracking goes on from there. */
void db_index_track(struct db *db);
int db_index_refresh(struct db *db);
/* How many inventory entries the snapshot file holds, stale or not (its
 * header alone is read): a size to plan with before loading; 0 without one. */
size_t db_index_size_hint(const char *file);
/* Add to inv and stats what the database holds for one resource: the
 * inventory row of id and the stat cache entries of path and below it
 * (a Directory's files); entries already in the maps are kept. For a
 * repair of a few resources, which need not read the whole index. */
int db_index_get(struct db *db, struct arena *a, struct hmap *inv, struct hmap *stats,
		 const char *id, const char *path);
int db_stat_put(struct db *db, const struct stat_entry *e);
int db_stat_del(struct db *db, const char *path);

struct pass_record {
	int64_t id;
	int64_t started_ms, finished_ms;
	const char *command;		/* apply, agent */
	const char *commit, *ref, *author, *summary;
	const char *result;		/* applied, partial, failed, rejected */
	int counts[OUT__COUNT];
	const char *error;
	const char *signature;		/* what source.verify found; NULL: not recorded */
};

int db_pass_add(struct db *db, struct pass_record *r);	/* sets r->id */
int db_outcome_add(struct db *db, int64_t pass_id, const char *res_id, const char *outcome,
		   const char *detail);
int db_backup_add(struct db *db, const char *path, const char *oid, int64_t when_ms,
		  const char *commit);

/* Newest first; at most n (0: all). cb returns non-zero to stop. */
typedef int (*db_pass_cb)(void *ctx, const struct pass_record *r);
int db_passes(struct db *db, int n, db_pass_cb cb, void *ctx);
/* Oldest first, started in [since_ms, until_ms). */
int db_passes_between(struct db *db, int64_t since_ms, int64_t until_ms, db_pass_cb cb, void *ctx);
typedef int (*db_outcome_cb)(void *ctx, const char *res_id, const char *outcome,
			     const char *detail);
int db_outcomes(struct db *db, int64_t pass_id, db_outcome_cb cb, void *ctx);

/* A change made outside Git, and what the agent did about it. */
struct drift_event {
	int64_t when_ms;
	const char *res_id, *path;
	const char *policy;	/* repair, report */
	const char *action;	/* repaired, reported, failed, backed-off */
	const char *what;	/* "content, mode 0644 -> 0600" */
	const char *before;	/* "file 0600 0:0 <blob>" as found */
	const char *after;	/* as left */
	const char *commit;	/* the applied revision it was held to */
};

int db_drift_add(struct db *db, const struct drift_event *e);
typedef int (*db_drift_cb)(void *ctx, const struct drift_event *e);
int db_drift_list(struct db *db, int n, db_drift_cb cb, void *ctx);
/* Oldest first, in [since_ms, until_ms). */
int db_drift_between(struct db *db, int64_t since_ms, int64_t until_ms, db_drift_cb cb, void *ctx);

/* When the current drift of res_id began (the first event since its last
 * repair), 0 when there is none, -1 on error. */
int64_t db_drift_since(struct db *db, const char *res_id);

/* A hold on repairs and new revisions (driftless suspend), with who and why. */
struct suspension {
	int64_t id;
	int64_t started_ms, until_ms;
	const char *reason, *by;
	int64_t ended_ms;		/* 0 while open */
	const char *ended_by;		/* "resume by alice", "deadline" */
};
int db_suspend_start(struct db *db, struct suspension *sp);	/* sets sp->id */
/* End every open suspension; returns how many there were, or -1. */
int db_suspend_end(struct db *db, int64_t now_ms, const char *by);
/* The suspension in force at now_ms (1, copied into a), or none (0), or -1. */
int db_suspend_active(struct db *db, int64_t now_ms, struct arena *a, struct suspension *out);
typedef int (*db_suspension_cb)(void *ctx, const struct suspension *sp);
/* Oldest first, every suspension that overlaps [since_ms, until_ms). */
int db_suspensions_between(struct db *db, int64_t since_ms, int64_t until_ms, db_suspension_cb cb,
			   void *ctx);

#endif
