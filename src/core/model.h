/* SPDX-License-Identifier: MIT */
/* The resource model: kinds as tables, resources, observations, changes and the pass that holds them. */
#ifndef DL_MODEL_H
#define DL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/diag.h"
#include "lib/fs.h"
#include "lib/hmap.h"

struct ynode;
struct pass;
struct resource;
struct change;
struct db;
struct gitsrc;

/* ---- the spec schema: data the core parses, so kinds never see YAML ---- */

enum field_type {
	FIELD_STR,	/* char *: any string without control characters */
	FIELD_TEXT,	/* struct text: any string, may hold newlines (file content) */
	FIELD_PATH,	/* char *: absolute host path, normalised by the core */
	FIELD_MODE,	/* struct optmode: quoted octal string */
	FIELD_BOOL,	/* int: true/false, -1 when absent */
	FIELD_ENUM,	/* int: index into field.enums; 0 (the first) when absent */
	FIELD_ID,	/* char *: user or group name, or a numeric id */
	FIELD_RELPATH,	/* char *: a path inside the repository, relative to the manifest */
	FIELD_TARGET,	/* char *: symlink target, absolute or relative */
	FIELD_LIST,	/* const char **: a list of FIELD_STR strings, NULL-terminated;
			 * NULL when absent, an empty list for [] */
	FIELD_MAP,	/* const char **: a mapping of names to strings or lists of
			 * strings (env, healthCheck), as name, value pairs, NULL-
			 * terminated; NULL when absent. A value is tagged: "=text"
			 * for a string, "[" then each item and '\n' for a list.
			 * Read it with fmap_str() and fmap_list() (core/pass.h) */
};

#define FIELD_REQUIRED 1u

struct field {
	const char *name;
	enum field_type type;
	size_t offset;
	unsigned flags;
	const char *const *enums;	/* NULL-terminated, FIELD_ENUM only */
};

struct text {
	const char *ptr;	/* NULL when absent */
	size_t len;
};

struct optmode {
	int set;
	mode_t mode;
};

/* Where a field of a document came from, for FILE:LINE:COL. */
struct srcpos {
	const char *file;
	int line, col;
};

/* The position of one spec field that was written (16 bytes; a resource
 * keeps only those, not a srcpos per field of its kind). */
struct fieldpos {
	const char *file;
	uint32_t line;		/* 0 ends a list */
	uint16_t col;		/* 65535 for any column past it */
	uint16_t field;		/* index in kind->fields */
};

static inline struct fieldpos fieldpos_make(size_t field, const char *file, int line, int col)
{
	return (struct fieldpos){ file, (uint32_t)line, (uint16_t)(col > 65535 ? 65535 : col),
				  (uint16_t)field };
}

/* ---- kinds ---- */

enum action { ACT_NONE, ACT_CREATE, ACT_UPDATE, ACT_DELETE };

enum outcome {
	OUT_UNCHANGED, OUT_CREATED, OUT_UPDATED, OUT_DELETED, OUT_FAILED, OUT_SKIPPED,
	OUT__COUNT
};

extern const char *const outcome_names[OUT__COUNT];
extern const char *const action_names[];

struct kind {
	const char *name;		/* manifest `kind:` */
	const struct field *fields;	/* schema of spec:, parsed by the core */
	size_t spec_size;
	size_t path_offset;		/* offset of the managed path in the spec, or SIZE_MAX */
	/* semantic checks after the schema: resolve sources, owners, expand children */
	int (*check)(struct resource *res, struct pass *p);
	/* read the host (no side effects) and decide the change */
	int (*observe)(struct resource *res, struct pass *p, struct change *chg);
	/* carry out chg (one atomic host operation per resource where possible) */
	int (*apply)(struct change *chg, struct pass *p);
	/* optional: append a unified diff of the content change to out */
	int (*diff)(struct change *chg, struct pass *p, struct buf *out);
	/* optional: carry out several changes of this kind at once (one apt
	 * transaction). pass_apply calls it when it reaches the first change of
	 * the kind, with every change of the kind whose dependencies are done by
	 * then (v[0] first); apply() is still called for each of them in order
	 * and reports its own outcome (it observes what the batch did). A -1
	 * (err_msg) is kept in each change's error for apply() to report. */
	int (*apply_batch)(struct change **v, size_t n, struct pass *p);
	/* kinds without a path (SIZE_MAX path_offset): the spec field that names
	 * the object on the host (an account, a package). Its value is kept in
	 * the inventory's content column, so a prune can name what to remove. */
	const char *key_field;
	/* taking over a pre-existing object loses nothing: no 'adopt' needed
	 * (it is still never pruned, because driftless did not create it) */
	int adopt_free;
};

/* NULL-terminated registry (kinds/registry.c). */
extern const struct kind *const kinds[];
const struct kind *kind_find(const char *name);

/* ---- resources ---- */

enum drift_policy { DRIFT_REPAIR, DRIFT_REPORT, DRIFT_IGNORE };
extern const char *const drift_names[];

enum node_type { NODE_NONE, NODE_FILE, NODE_DIR, NODE_LINK, NODE_OTHER };
extern const char *const node_type_names[];

struct resource {
	const struct kind *kind;
	const char *name;
	const char *id;			/* "Kind/name" */
	struct srcpos pos;		/* the document */
	const char *manifest;		/* repository path of the manifest file */
	const char *manifest_dir;	/* its directory ("" for the root) */
	struct fieldpos *fpos;		/* the fields written, ended by line 0; NULL: none known */
	void *spec;			/* kind->spec_size bytes */
	const char *path;		/* normalised managed path or NULL */
	struct resource *parent;	/* for children expanded from a Directory source */

	const char **dep_ids;		/* as written in dependsOn */
	struct srcpos *dep_pos;
	struct resource **deps;		/* resolved, including implicit parents */
	const char *digest_extra;	/* set by check: e.g. the blob id of a source */
	uint32_t ndep_ids;
	uint32_t ndeps, capdeps;	/* capdeps 0 with deps: not malloc'd (core/cache.c) */
	int doc_index;
	int order;			/* position in the apply order */
	char digest[41];		/* hash of the desired state, to notice spec changes */
	/* small values, packed: a resource is 192 bytes, not 232 */
	signed char drift;		/* enum drift_policy */
	signed char prune;		/* 0: keep on the host when removed from Git */
	signed char adopt;		/* may take over a pre-existing path */
	signed char failed;		/* this pass: failed or skipped, so dependents skip */
	signed char staged;		/* this pass: written to a temporary, not yet renamed */
	signed char changed;		/* this pass: its spec or its host state changed */
	signed char mark;		/* graph walk scratch */
};

/* ---- inventory: what the agent manages, from the state database ---- */

struct inv_entry {
	const char *id;
	const char *kind;
	const char *path;
	const char *digest;	/* desired-state digest when last applied */
	const char *content;	/* blob id last written, for regular files */
	const struct prestat *pre;	/* its path's lstat taken ahead (pass_preload) */
	int order;
	/* small values, packed: an entry is 56 bytes, not 72 */
	signed char type;	/* enum node_type that was written */
	signed char created;	/* 1: the agent created it; 0: adopted, never pruned */
	signed char prune;	/* 0: driftless/prune "false" */
	signed char seen;	/* scratch: still declared this pass */
};

/* stat cache entry: git-index-like identity of a file and its blob id */
struct stat_entry {
	const char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	unsigned char oid[20];	/* the blob id, as bytes (72 bytes an entry, not 96) */
	signed char known;	/* oid is the content's: 0 racily clean or never hashed */
	signed char dirty;
};

/* ---- a change: what the plan says to do with one resource ---- */

struct change {
	struct resource *res;
	struct inv_entry *inv;		/* inventory row, when there is one */
	struct buf what;		/* "content, mode 0644 -> 0600" */
	struct buf diff;		/* unified diff of contents (plan) */
	char *error;			/* when failed or skipped: the reason */
	const char *key;		/* path-less kinds: the object's name on the host (key_field) */
	long long ms;
	off_t size;
	enum action action;
	enum outcome outcome;
	/* what the host had, filled by observe */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int staged;			/* 1 + index in pass.batch while staged */
	/* small values, packed: a change is 216 bytes, not 240 (a first apply
	 * of 100,000 files holds one each) */
	signed char exists;
	signed char type;		/* enum node_type */
	signed char drifted;		/* differs from what the agent last wrote */
	signed char foreign;		/* current content was not written by the agent */
	signed char hardlink;		/* a regular file with more than one link */
	signed char created;		/* for the inventory: agent created it */
	signed char batched;		/* handed to kind->apply_batch already */
	char oid[41];			/* blob id of the current content, "" if unknown */
	char new_oid[41];		/* blob id written */
};

/* ---- the pass ---- */

struct policy {
	const char **roots;		/* normalised absolute paths */
	size_t nroots;
	int allow_setid;
	uint64_t max_file_size;
	const char **kinds;		/* allowed kinds when kinds_set */
	size_t nkinds;
	int kinds_set;
	const char **owners, **groups;	/* allowed owner and group names or ids, when set */
	size_t nowners, ngroups;
	int owners_set, groups_set;
	int allow_root_accounts;	/* User/Group may name root, uid 0 or gid 0 */
};

struct revision {
	char oid[41];
	char ref[256];		/* fully qualified ref or "" for a pinned commit */
	char *author;		/* "Name <email>" */
	char *summary;		/* first line of the message */
	int64_t time;
	const char *signature;	/* what source.verify found (a static string), or NULL */
};

struct age_keys;
struct vars;

/* An lstat taken ahead, with only the fields the kinds read (72 bytes, not
 * the 144 of a struct stat: 100,000 of them are 7 MB). */
struct prestat {
	const char *path;	/* the path it is the lstat of */
	int r;			/* fs_lstat's: 0 there, 1 missing, -1 not known */
	uint32_t mode, nlink, uid, gid;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

static inline void prestat_set(struct prestat *e, const struct stat *st)
{
	e->mode = st->st_mode;
	e->nlink = (uint32_t)st->st_nlink;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	e->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

static inline void prestat_get(const struct prestat *e, struct stat *st)
{
	*st = (struct stat){ 0 };
	st->st_mode = e->mode;
	st->st_nlink = e->nlink;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_dev = e->dev;
	st->st_ino = e->ino;
	st->st_size = (off_t)e->size;
	st->st_mtim.tv_sec = e->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = e->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = e->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = e->ctime_ns % 1000000000;
}

struct pass {
	struct arena arena;
	/* what was in arena before pass_load_begin (the options, the source):
	 * arena then holds only the loaded revision, for pass_compact to free */
	struct arena cfg_arena;
	int load_split;
	struct arena yaml_arena;	/* parsed documents, until validation is done */
	struct arena index_arena;	/* the index pass_plan read (pass_index_drop) */
	struct diag diag;
	struct fsroot root;
	const char *state_dir;
	struct pcache *pcache;		/* the parse cache being written (pass_pcache_commit) */
	struct { void *ptr; size_t len; } *maps;	/* mapped files resources point into */
	size_t nmaps;
	const struct policy *policy;
	struct gitsrc *git;		/* source of manifests and source: blobs (see pass_git) */
	const char *git_cache, *git_url;	/* to open git again when it was closed */
	const char *identity_file;	/* the host's age identity; NULL: do not decrypt (validate) */
	struct age_keys *keys;		/* loaded from identity_file on first use (kinds/secret.c) */
	struct db *db;			/* state database, or NULL for validate */
	struct revision rev;
	const char *cache_key;		/* of the desired-state cache it was loaded from or stored in */
	const char *entry;		/* --path inside the repository, normalised, "" for the root */
	const struct vars *vars;	/* host variables (core/vars.h); NULL: syntax checks only (validate) */
	const char *selector;		/* how rev was chosen ("branch main", "semver ^1.2"), for rewinds */

	struct resource **res;
	size_t nres, capres;
	struct hmap by_id;		/* id -> resource */
	struct hmap by_path;		/* path -> resource */
	struct hmap inv;		/* id -> inv_entry */
	struct hmap stats;		/* path -> stat_entry */
	struct hmap users, groups;	/* name -> (uintptr_t id + 1) */
	int ids_loaded;
	struct hmap memo;		/* kinds' per-plan memo (arena values); emptied when a plan starts */
	/* the lstat of the resource being planned, taken ahead by the plan's
	 * stat workers (core/apply.c); used once, for the same path */
	const struct prestat *pre;
	struct preload *preload;	/* stat workers started by pass_preload */
	int index_loaded;		/* inv and stats are loaded already (pass_preload) */
	const char *index_origin;	/* "snapshot" or "SQLite" when the preload read it */

	struct change *changes;		/* in apply order, prunes last */
	size_t nchanges, capchanges;
	int64_t pass_id;
	struct fs_batch batch;		/* staged file writes, synced together */
	size_t *staged;			/* change index of each staged write */
	int batching;
	int incremental;		/* observe only what changed in Git (and dependents) */
	/* drop the changes of resources that are clean (nothing to do, to
	 * report or to record) as they are planned, counting them in nclean:
	 * for callers that list only what differs (a no-op pass of 100,000
	 * files then holds no 24 MB of changes) */
	int elide_clean;
	size_t nclean;
	/* nothing plans on this pass after pass_record (the CLI's apply): the
	 * in-memory inventory is not kept up to date by the record (100,000
	 * new rows are 14 MB of a first apply's peak) */
	int one_shot;
	/* asked between resources; non-zero stops the apply (agent shutdown) */
	int (*interrupt)(void *ctx);
	void *interrupt_ctx;

	int dry_run;
	int hold_drift;			/* suspended: drift is recorded, never repaired */
	const char *interrupted;	/* revision whose apply did not finish, or NULL */
	int rebuilding;			/* the state database was rebuilt: adopt, never prune */
	int allow_empty;
	int prune;
	int counts[OUT__COUNT];
	int64_t started_ns;
};

#endif
