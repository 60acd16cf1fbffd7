/* SPDX-License-Identifier: MIT */
/* What the file-like kinds share: ownership, mode and the observation of a path. */
#ifndef DL_KINDS_COMMON_H
#define DL_KINDS_COMMON_H

#include <sys/stat.h>
#include "core/pass.h"

struct owner {
	const char *owner, *group;	/* as written, or NULL */
	int has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	/* named after a User or Group of this pass that does not exist yet:
	 * resolved by owner_settle() once that account was applied */
	int defer_uid, defer_gid;
};

/* Resolve owner/group names of res (field names "owner" and "group"). An
 * account a User or Group of the pass declares makes that resource an
 * implicit dependency; its declared uid/gid wins, and one without an id
 * is resolved later (defer_uid, defer_gid). */
void owner_resolve(struct pass *p, struct resource *res, struct owner *o);
/* Resolve deferred names now; -1 (err_msg) when one still does not exist. */
int owner_settle(struct pass *p, struct owner *o);
/* Is name (a group when group, else a user) allowed by policy.groups
 * (policy.owners)? 1 when the list is not set. */
int owner_allowed(struct pass *p, const char *name, int group);

/* lstat res->path into chg (exists, type, mode, uid, gid, size). 0 or -1. */
int path_observe(struct pass *p, const char *path, struct change *chg, struct stat *st);

/* Compare mode (when set) and owner (when set) against chg; append the
 * differences to chg->what; returns 1 when something differs. */
int attrs_differ(struct change *chg, const struct optmode *mode, const struct owner *o);

/* Make the host's mode and owner of path what the spec says. */
int attrs_apply(struct pass *p, const char *path, const struct optmode *mode,
		const struct owner *o);

/* Remove path (file, link or, recursively, a directory), backing up regular
 * files that the agent did not write itself. */
int path_remove(struct pass *p, const char *path, const struct inv_entry *inv);

void what_add(struct change *chg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
