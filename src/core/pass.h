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

/* A zeroed resource of kind k with its spec allocated (booleans unset). */
struct resource *pass_new_resource(struct pass *p, const struct kind *k);
/* Add res (id set) to the pass; its id must be new. */
void pass_register(struct pass *p, struct resource *res);
void res_add_dep(struct resource *res, struct resource *dep);

/* Resolve an owner or group (name or number) against the root's
 * /etc/passwd and /etc/group when present, else the host's NSS. */
int pass_uid(struct pass *p, const char *name, uid_t *out);
int pass_gid(struct pass *p, const char *name, gid_t *out);

/* Check a host path against the local policy; NULL when allowed. */
const char *policy_check_path(const struct policy *pol, const char *path);

/* Back up the current content of path (a regular file) into the state
 * directory by blob id; no-op when already backed up. */
int pass_backup(struct pass *p, const char *path, const char *oid);

/* Stat cache: blob id of the regular file at path with stat st; reads and
 * hashes it only when the cached identity does not match. */
int pass_file_oid(struct pass *p, const char *path, const struct stat *st, char oid[41]);
/* Record what the agent just wrote. */
void pass_stat_update(struct pass *p, const char *path, const char *oid);

/* ---- the stages ---- */

int manifest_load(struct pass *p);	/* parse + schema; diags in p->diag */
/* Parse one manifest file's text (repository path file) into resources. */
int manifest_parse(struct pass *p, const char *file, const char *data, size_t len);
int graph_build(struct pass *p);	/* deps, implicit parents, cycles, order */
int pass_validate(struct pass *p);	/* kind checks, policy, conflicts */
int pass_plan(struct pass *p, struct db *db);		/* observe + prune plan */
int pass_apply(struct pass *p);		/* carry out the plan */
/* Plan only the given resources of an already planned pass (drift repair):
 * earlier changes are dropped. */
int pass_plan_subset(struct pass *p, struct resource **list, size_t n);
/* Record the pass (inventory, stat cache, history, status) in one transaction;
 * a pass that changed nothing writes nothing. */
int pass_record(struct pass *p, const char *command);
/* Record that the revision of p was rejected (its diagnostics, shortened). */
void pass_record_rejection(struct pass *p, struct db *db, const char *command);
/* "applied", "partial" or "failed" from the outcome counts. */
const char *pass_result(const struct pass *p);

/* Free the parsed YAML once the revision is validated (positions are gone). */
void pass_drop_yaml(struct pass *p);
/* The git source, opened again (git_cache, git_url) if it was closed. */
struct gitsrc *pass_git(struct pass *p);

/* The validated desired state of p's revision, on disk (core/cache.c).
 * cache_load returns 0 when it filled p, 1 on a miss (nothing changed). */
int cache_store(struct pass *p, const char *state_dir);
int cache_load(struct pass *p, const char *state_dir);

void pass_init(struct pass *p);
void pass_release(struct pass *p);

#endif
