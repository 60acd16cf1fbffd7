/* SPDX-License-Identifier: MIT */
/* One reconcile pass: load and validate a revision, plan it, apply it, record it. */
#ifndef DL_PASS_H
#define DL_PASS_H

#include <stdio.h>
#include "core/model.h"

struct db;

/* ---- helpers for kinds and the core ---- */

/* Add a diagnostic at the position of spec field `field` of res (or of the
 * document when field is NULL or absent). */
void res_diag(struct pass *p, const struct resource *res, const char *field,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Position of spec.field (or the document). */
struct srcpos res_field_pos(const struct resource *res, const char *field);

/* A FIELD_MAP (core/model.h): the string value of name, or NULL when it is
 * absent or a list; the list value of name as a NULL-terminated array in a
 * (*n items), or NULL when it is absent or a string. */
const char *fmap_str(const char *const *map, const char *name);
const char **fmap_list(struct arena *a, const char *const *map, const char *name, size_t *n);

/* A zeroed resource of kind k with its spec allocated (booleans unset). */
struct resource *pass_new_resource(struct pass *p, const struct kind *k);
/* the same with the spec already in place (kind->spec_size bytes that live
 * as long as the pass: the desired-state cache's image) */
struct resource *pass_new_resource_at(struct pass *p, const struct kind *k, void *spec);
/* Add res (id set) to the pass; its id must be new. */
void pass_register(struct pass *p, struct resource *res);
void res_add_dep(struct resource *res, struct resource *dep);

/* Resolve an owner or group (name or number) against the root's
 * /etc/passwd and /etc/group when present, else the host's NSS. */
int pass_uid(struct pass *p, const char *name, uid_t *out);
int pass_gid(struct pass *p, const char *name, gid_t *out);
/* Read the account files again on the next lookup (an account changed). */
void pass_ids_forget(struct pass *p);
/* Empty p->memo (pass_plan and pass_plan_subset do, before observing). */
void pass_memo_reset(struct pass *p);

/* Check a host path against the local policy; NULL when allowed. */
const char *policy_check_path(const struct policy *pol, const char *path);

/* Back up the current content of path (a regular file) into the state
 * directory by blob id; no-op when already backed up. */
int pass_backup(struct pass *p, const char *path, const char *oid);

/* Stat cache: blob id of the regular file at path with stat st; reads and
 * hashes it only when the cached identity does not match. */
int pass_file_oid(struct pass *p, const char *path, const struct stat *st, char oid[41]);
/* Record that the agent just wrote path: a stat entry for it is no longer
 * trusted (racily clean) until a later pass hashes the file again. */
void pass_stat_update(struct pass *p, const char *path, const char *oid);

/* ---- the stages ---- */

int manifest_load(struct pass *p);	/* parse + schema; diags in p->diag */
/* Parse one manifest file's text (repository path file) into resources. */
int manifest_parse(struct pass *p, const char *file, const char *data, size_t len);
/* The same through a layer (the text of DIR/layer.yaml) whose patches apply
 * to the documents of file; its resources are not loaded (tests, fuzzing). */
int manifest_parse_layered(struct pass *p, const char *dir, const char *layer, size_t layer_len,
			   const char *file, const char *data, size_t len);
/* The resources of p as YAML documents (plan -o yaml), in load order. */
void manifest_emit(const struct pass *p, struct buf *out);
int graph_build(struct pass *p);	/* deps, implicit parents, cycles, order */
int pass_validate(struct pass *p);	/* kind checks, policy, conflicts */
int pass_plan(struct pass *p, struct db *db);		/* observe + prune plan */
/*
 * Before the revision is known: load the inventory and stat cache from db
 * and start stat workers on the paths it holds, so that they run while Git
 * is fetched and the desired state loaded. pass_plan uses what they found;
 * pass_release waits for them. Optional: without it pass_plan does it all.
 */
int pass_preload(struct pass *p, struct db *db);
void pass_preload_release(struct pass *p);
/* Stop the preload and forget what it read (pass_plan reads the index
 * itself unless pass_preload starts again). */
void pass_preload_drop(struct pass *p);
/* How many entries the index about to be read holds, from its snapshot's
 * header, stale or not (0 without a preload or a snapshot); no waiting. */
size_t pass_preload_hint(const struct pass *p);
int pass_apply(struct pass *p);		/* carry out the plan */
/* Plan only the given resources of an already planned pass (drift repair):
 * earlier changes are dropped. */
int pass_plan_subset(struct pass *p, struct resource **list, size_t n);
/* Free the changes of the last plan and the per-plan memo (the counts stay):
 * a pass kept for drift repair needs neither until it plans again. */
void pass_drop_plan(struct pass *p);
/* Free the inventory and stat cache pass_plan read (after pass_drop_plan:
 * the changes point into them); the caller reads rows again as it needs
 * them (db_index_get), as for a pass loaded from the cache. */
void pass_index_drop(struct pass *p);
/* Record the pass (inventory, stat cache, history, status) in one transaction;
 * a pass that changed nothing writes nothing. */
int pass_record(struct pass *p, const char *command);
/* Record that the revision of p was rejected (its diagnostics, shortened). */
void pass_record_rejection(struct pass *p, struct db *db, const char *command);
/* How the revision of p was chosen, from the source settings in force
 * (p->git_url must be set): p->selector, kept as applied_selector. */
void pass_set_selector(struct pass *p, const char *branch, const char *tag, const char *semver,
		       const char *commit);
/* A remote that went backwards: when p's commit does not descend from the
 * applied one and both came from the same branch (or default branch) of
 * the same source, or the same semver range picked a lower version, add a
 * diagnostic and return -1 (the revision is rejected), or return 1 when
 * allow (source.allowRewind) lets it through. Tags, commits and a changed
 * source or selector are deliberate: 0. */
int pass_check_rewind(struct pass *p, int allow);
/* 1 when the rejection recorded for oid was a rewind that allow now accepts. */
int pass_rewind_retry(struct db *db, const char *oid, int allow);
/* "applied", "partial" or "failed" from the outcome counts. */
const char *pass_result(const struct pass *p);

/*
 * A big revision parsed and validated is held in the shape the parse left
 * (positions, dependency names, the parse cache's mapping): a third more
 * than the same revision loaded from the desired-state cache. So a pass
 * that parses calls pass_load_begin first; once validated, pass_compact
 * stores the cache, frees all the load made and loads the revision again
 * from the cache, starting db's preload (pass_preload) first. 0 when done;
 * 1 not done (the pass is as it was); -1 the revision is gone from p
 * (err_msg). PASS_COMPACT_MIN: below this many resources it is not worth
 * it.
 */
#define PASS_COMPACT_MIN 20000
void pass_load_begin(struct pass *p);
/* PASS_COMPACT_MIN, or DRIFTLESS_COMPACT_MIN from the environment (tests
 * compact small revisions with it) */
size_t pass_compact_min(void);
int pass_compact(struct pass *p, const char *state_dir, struct db *db);
/* Free the parsed YAML once the revision is validated (positions are gone). */
void pass_drop_yaml(struct pass *p);
/* The git source, opened again (git_cache, git_url) if it was closed. */
struct gitsrc *pass_git(struct pass *p);

/* The validated desired state of p's revision, on disk (core/cache.c).
 * cache_load returns 0 when it filled p, 1 on a miss (nothing changed). */
int cache_store(struct pass *p, const char *state_dir);
int cache_load(struct pass *p, const char *state_dir);
/* cache_load against the key a hit or a store of an earlier pass left in
 * its cache_key (the agent reloads its applied revision with it): what
 * changed on the host since (a user added to /etc/passwd by a repair) does
 * not make the file it wrote itself a miss. */
int cache_load_key(struct pass *p, const char *state_dir, const char *key);

/* The parse cache (core/cache.c): what each top-level manifest file parsed
 * to, by path and blob id. pcache_take gives a hit's resources (not yet
 * registered; the arrays are the caller's to free), pcache_keep remembers
 * a fresh parse, pcache_close writes the new cache (hits and new parses of
 * this load only). */
struct pcache;
struct pcache *pcache_open(struct pass *p, const char *state_dir);
int pcache_take(struct pcache *pc, struct pass *p, const char *file, const char *dir,
		const char *oid, struct resource ***out, struct srcpos **name_pos, size_t *n,
		int *ndocs);
void pcache_keep(struct pcache *pc, const char *file, const char *oid, int ndocs,
		 struct resource **v, const struct srcpos *name_pos, size_t n);
void pcache_close(struct pcache *pc, struct pass *p);
/* manifest files taken from the cache so far, and all those asked for */
void pcache_counts(const struct pcache *pc, int *hits, int *asked);
/* Put the parse cache written by manifest_load in place: after the apply,
 * so that its rename is not among the pass's own; pass_release does it
 * if nobody did. */
void pass_pcache_commit(struct pass *p);
/* munmap'd when the pass is released: resources point into it */
void pass_keep_map(struct pass *p, void *map, size_t len);

void pass_init(struct pass *p);
void pass_release(struct pass *p);

#endif
