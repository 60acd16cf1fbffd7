/* SPDX-License-Identifier: MIT */
/* Helpers shared by File, Directory and Symlink. */
#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include "core/check.h"
#include "kinds/common.h"
#include "kinds/kinds.h"
#include "lib/err.h"

void what_add(struct change *chg, const char *fmt, ...)
{
	va_list ap;
	if (chg->what.len)
		buf_adds(&chg->what, ", ");
	va_start(ap, fmt);
	buf_vaddf(&chg->what, fmt, ap);
	va_end(ap);
}

/* Is name (or the id it resolves to) on the policy list? */
static int allowed(struct pass *p, const char *const *list, size_t n, const char *name,
		   unsigned long id, int group)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i], name))
			return 1;
		if (group) {
			gid_t g;
			if (id != (unsigned long)(gid_t)-1 && pass_gid(p, list[i], &g) == 0 && g == id)
				return 1;
		} else {
			uid_t u;
			if (id != (unsigned long)(uid_t)-1 && pass_uid(p, list[i], &u) == 0 && u == id)
				return 1;
		}
	}
	return 0;
}

int owner_allowed(struct pass *p, const char *name, int group)
{
	const struct policy *pol = p->policy;
	unsigned long id = group ? (unsigned long)(gid_t)-1 : (unsigned long)(uid_t)-1;
	if (group) {
		gid_t g;
		if (!pol->groups_set)
			return 1;
		if (pass_gid(p, name, &g) == 0)
			id = g;
		return allowed(p, pol->groups, pol->ngroups, name, id, 1);
	}
	uid_t u;
	if (!pol->owners_set)
		return 1;
	if (pass_uid(p, name, &u) == 0)
		id = u;
	return allowed(p, pol->owners, pol->nowners, name, id, 0);
}

/* The id an account of this pass declares ("uid"/"gid"), or -1. */
static long declared_id(struct resource *decl)
{
	unsigned long v;
	const char *id = account_declared_id(decl);
	return id && !check_numeric_id(id, &v) ? (long)v : -1;
}

void owner_resolve(struct pass *p, struct resource *res, struct owner *o)
{
	const struct policy *pol = p->policy;
	if (o->owner && pol->owners_set) {
		uid_t u = (uid_t)-1;
		pass_uid(p, o->owner, &u);
		if (!allowed(p, pol->owners, pol->nowners, o->owner, u, 0)) {
			res_diag(p, res, "owner", "'owner' '%s' is denied by local policy rule 'policy.owners'",
				 o->owner);
			return;
		}
	}
	if (o->group && pol->groups_set) {
		gid_t g = (gid_t)-1;
		pass_gid(p, o->group, &g);
		if (!allowed(p, pol->groups, pol->ngroups, o->group, g, 1)) {
			res_diag(p, res, "group", "'group' '%s' is denied by local policy rule 'policy.groups'",
				 o->group);
			return;
		}
	}
	if (o->owner) {
		struct resource *decl = account_declared(p, o->owner, 0);
		long id = decl ? declared_id(decl) : -1;
		if (decl)
			res_add_dep(res, decl);
		if (id >= 0) {
			o->uid = (uid_t)id;
			o->has_uid = 1;
		} else if (pass_uid(p, o->owner, &o->uid) == 0) {
			o->has_uid = 1;
		} else if (decl) {
			o->defer_uid = 1;
		} else {
			res_diag(p, res, "owner", "%s", err_msg());
		}
	}
	if (o->group) {
		struct resource *decl = account_declared(p, o->group, 1);
		long id = decl ? declared_id(decl) : -1;
		if (decl)
			res_add_dep(res, decl);
		if (id >= 0) {
			o->gid = (gid_t)id;
			o->has_gid = 1;
		} else if (pass_gid(p, o->group, &o->gid) == 0) {
			o->has_gid = 1;
		} else if (decl) {
			o->defer_gid = 1;
		} else {
			res_diag(p, res, "group", "%s", err_msg());
		}
	}
}

int owner_settle(struct pass *p, struct owner *o)
{
	if (o->defer_uid) {
		if (pass_uid(p, o->owner, &o->uid) < 0)
			return -1;
		o->has_uid = 1;
		o->defer_uid = 0;
	}
	if (o->defer_gid) {
		if (pass_gid(p, o->group, &o->gid) < 0)
			return -1;
		o->has_gid = 1;
		o->defer_gid = 0;
	}
	return 0;
}

static int node_type_of(mode_t m)
{
	if (S_ISREG(m))
		return NODE_FILE;
	if (S_ISDIR(m))
		return NODE_DIR;
	if (S_ISLNK(m))
		return NODE_LINK;
	return NODE_OTHER;
}

int path_observe(struct pass *p, const char *path, struct change *chg, struct stat *st)
{
	int r;
	if (p->pre && p->pre->r >= 0 && !strcmp(p->pre->path, path)) {
		r = p->pre->r;
		prestat_get(p->pre, st);
	} else {
		r = fs_lstat(&p->root, path, st);
	}
	p->pre = NULL;
	if (r < 0)
		return -1;
	chg->exists = r == 0;
	if (!chg->exists) {
		chg->type = NODE_NONE;
		return 0;
	}
	chg->type = node_type_of(st->st_mode);
	chg->mode = st->st_mode & 07777;
	chg->uid = st->st_uid;
	chg->gid = st->st_gid;
	chg->size = st->st_size;
	return 0;
}

int attrs_differ(struct change *chg, const struct optmode *mode, const struct owner *o)
{
	int d = 0;
	if (mode && mode->set && (chg->mode & 07777) != mode->mode) {
		what_add(chg, "mode %04o -> %04o", (unsigned)chg->mode, (unsigned)mode->mode);
		d = 1;
	}
	if (o->has_uid && chg->uid != o->uid) {
		what_add(chg, "owner %u -> %u", (unsigned)chg->uid, (unsigned)o->uid);
		d = 1;
	}
	if (o->has_gid && chg->gid != o->gid) {
		what_add(chg, "group %u -> %u", (unsigned)chg->gid, (unsigned)o->gid);
		d = 1;
	}
	if (o->defer_uid) {
		what_add(chg, "owner %u -> '%s' (created in this pass)", (unsigned)chg->uid, o->owner);
		d = 1;
	}
	if (o->defer_gid) {
		what_add(chg, "group %u -> '%s' (created in this pass)", (unsigned)chg->gid, o->group);
		d = 1;
	}
	return d;
}

int attrs_apply(struct pass *p, const char *path, const struct optmode *mode,
		const struct owner *o)
{
	if ((o->has_uid || o->has_gid) &&
	    fs_chown(&p->root, path, o->has_uid ? o->uid : (uid_t)-1,
		     o->has_gid ? o->gid : (gid_t)-1) < 0)
		return -1;
	/* after chown, which clears setuid/setgid bits */
	if (mode && mode->set && fs_chmod(&p->root, path, mode->mode) < 0)
		return -1;
	return 0;
}

static int remove_tree(struct pass *p, const char *path, int depth, const char *own_oid)
{
	struct stat st;
	int r = fs_lstat(&p->root, path, &st);
	if (r)
		return r < 0 ? -1 : 0;
	if (!S_ISDIR(st.st_mode)) {
		if (S_ISREG(st.st_mode)) {
			char oid[41];
			if (pass_file_oid(p, path, &st, oid) < 0)
				return -1;
			if ((!own_oid || strcmp(own_oid, oid)) && pass_backup(p, path, oid) < 0)
				return -1;
		}
		return fs_unlink(&p->root, path);
	}
	if (depth > 256)
		return err_set("'%s' is nested too deeply to remove", path);
	int fd = fs_open(&p->root, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;	/* fs_open said why */
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set_errno("cannot read directory '%s'", path);
	}
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *sub = xasprintf("%s/%s", strcmp(path, "/") ? path : "", de->d_name);
		ret = remove_tree(p, sub, depth + 1, NULL);
		free(sub);
		if (ret < 0)
			break;
	}
	closedir(d);
	if (ret < 0)
		return -1;
	return fs_rmdir(&p->root, path);
}

int path_remove(struct pass *p, const char *path, const struct inv_entry *inv)
{
	return remove_tree(p, path, 0, inv && inv->content && *inv->content ? inv->content : NULL);
}
