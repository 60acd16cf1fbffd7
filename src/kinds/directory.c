/* SPDX-License-Identifier: MIT */
/* Kind Directory: a directory, optionally mirroring a repository folder, optionally purging what is not managed. */
#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "core/check.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "source/git.h"

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field dir_fields[] = {
	{ "path", FIELD_PATH, offsetof(struct dir_spec, path), FIELD_REQUIRED, NULL },
	{ "mode", FIELD_MODE, offsetof(struct dir_spec, mode), 0, NULL },
	{ "owner", FIELD_ID, offsetof(struct dir_spec, own.owner), 0, NULL },
	{ "group", FIELD_ID, offsetof(struct dir_spec, own.group), 0, NULL },
	{ "source", FIELD_RELPATH, offsetof(struct dir_spec, source), 0, NULL },
	{ "purge", FIELD_BOOL, offsetof(struct dir_spec, purge), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct dir_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct dir_spec, adopt), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

struct expand {
	struct pass *p;
	struct resource *parent;
	size_t skip;		/* length of the source prefix plus '/' */
	int bad;
};

static int expand_entry(void *ctx, const char *path, enum gitsrc_entry type, const char *oid,
			uint64_t size)
{
	struct expand *e = ctx;
	struct pass *p = e->p;
	struct resource *par = e->parent;
	struct dir_spec *ps = par->spec;
	const char *rel = path + e->skip;
	const char *msg;

	if ((msg = check_text(&p->arena, rel, strlen(rel)))) {
		res_diag(p, par, "source", "'source' holds '%s', whose name %s", path, msg);
		e->bad = 1;
		return 0;
	}
	if ((msg = check_git_name(rel))) {
		res_diag(p, par, "source", "'source' holds '%s', which %s", path, msg);
		e->bad = 1;
		return 0;
	}
	if (type == GITSRC_LINK) {
		res_diag(p, par, "source", "'source' holds '%s', a symlink: symlink not allowed as source", path);
		e->bad = 1;
		return 0;
	}
	if (type == GITSRC_COMMIT) {
		res_diag(p, par, "source", "'source' holds '%s', a submodule, which is not supported", path);
		e->bad = 1;
		return 0;
	}
	if (size > p->policy->max_file_size) {
		res_diag(p, par, "source", "'source' holds '%s' of %llu bytes, more than the limit of %llu",
			 path, (unsigned long long)size, (unsigned long long)p->policy->max_file_size);
		e->bad = 1;
		return 0;
	}
	const struct kind *k = type == GITSRC_TREE ? &kind_directory : &kind_file;
	struct resource *r = pass_new_resource(p, k);
	r->name = arena_strdup(&p->arena, rel);
	r->id = arena_printf(&p->arena, "%s:%s", par->id, rel);
	r->pos = par->pos;
	r->doc_index = par->doc_index;
	r->manifest = par->manifest;
	r->manifest_dir = par->manifest_dir;
	r->fpos = NULL;	/* positions are the parent document's */
	r->drift = par->drift;
	r->prune = par->prune;
	r->adopt = par->adopt;
	r->parent = par;
	r->path = arena_printf(&p->arena, "%s/%s", strcmp(par->path, "/") ? par->path : "", rel);
	if (k == &kind_directory) {
		struct dir_spec *ds = r->spec;
		ds->path = r->path;
		ds->mode = ps->mode;
		ds->own = ps->own;
		ds->purge = ps->purge;
		ds->adopt = ps->adopt;
	} else {
		struct file_spec *fs = r->spec;
		fs->path = r->path;
		memcpy(fs->blob, oid, 41);
		fs->mode.set = 1;
		fs->mode.mode = type == GITSRC_EXEC ? 0755 : 0644;
		fs->own = ps->own;
		fs->adopt = ps->adopt;
	}
	if (hmap_get(&p->by_id, r->id))
		return 0;
	pass_register(p, r);
	return 0;
}

static int dir_check(struct resource *res, struct pass *p)
{
	struct dir_spec *s = res->spec;
	owner_resolve(p, res, &s->own);
	if (s->adopt == 1)
		res->adopt = 1;
	if (s->source && s->ensure == 0 && !res->parent && res->path) {
		enum gitsrc_entry type;
		char oid[41];
		uint64_t size;
		struct gitsrc *g = pass_git(p);
		int r = g ? gitsrc_lookup(g, p->rev.oid, s->source, &type, oid, &size) : -1;
		if (r < 0) {
			res_diag(p, res, "source", "%s", err_msg());
			return -1;
		}
		if (r != 0 || type != GITSRC_TREE) {
			res_diag(p, res, "source", "'source' names '%s', which is not a folder of the commit",
				 s->source);
			return -1;
		}
		struct expand e = { p, res, strlen(s->source) + 1, 0 };
		if (gitsrc_walk(p->git, p->rev.oid, s->source, expand_entry, &e) < 0) {
			res_diag(p, res, "source", "%s", err_msg());
			return -1;
		}
		return e.bad ? -1 : 0;
	}
	return 0;
}

/* Entries of the directory that no resource manages, into chg->diff (one per line). */
static int dir_purge_list(struct pass *p, struct resource *res, struct change *chg)
{
	int fd = fs_open(&p->root, res->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;	/* fs_open said why */
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set_errno("cannot read directory '%s'", res->path);
	}
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *sub = xasprintf("%s/%s", strcmp(res->path, "/") ? res->path : "", de->d_name);
		if (!hmap_get(&p->by_path, sub)) {
			buf_adds(&chg->diff, sub);
			buf_addch(&chg->diff, '\n');
			n++;
		}
		free(sub);
	}
	closedir(d);
	if (n)
		what_add(chg, "purge %d unmanaged entr%s", n, n == 1 ? "y" : "ies");
	return n;
}

static int dir_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct dir_spec *s = res->spec;
	struct stat st;

	(void)owner_settle(p, &s->own);	/* an owner created since validation */
	if (path_observe(p, res->path, chg, &st) < 0)
		return -1;
	if (s->ensure == 1) {
		if (chg->exists) {
			if (chg->type != NODE_DIR)
				return err_set("'%s' exists and is not a directory", res->path);
			chg->action = ACT_DELETE;
		}
		return 0;
	}
	if (!chg->exists) {
		chg->action = ACT_CREATE;
		return 0;
	}
	if (chg->type != NODE_DIR)
		return err_set("'%s' exists and is not a directory", res->path);
	attrs_differ(chg, &s->mode, &s->own);
	if (s->purge == 1 && dir_purge_list(p, res, chg) < 0)
		return -1;
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

static int dir_apply(struct change *chg, struct pass *p)
{
	struct resource *res = chg->res;
	struct dir_spec *s = res->spec;

	if (chg->action != ACT_DELETE && owner_settle(p, &s->own) < 0)
		return -1;
	switch (chg->action) {
	case ACT_DELETE:
		if (!s || s->ensure == 1)
			return path_remove(p, res->path, chg->inv);
		/* pruned: remove only when empty, never someone else's files */
		if (fs_rmdir(&p->root, res->path) < 0) {
			if (errno != ENOTEMPTY && errno != EEXIST)
				return -1;
			err_set("directory '%s' is not empty; left in place", res->path);
			return 1;
		}
		return 0;
	case ACT_CREATE:
		return fs_mkdir(&p->root, res->path, s->mode.set ? s->mode.mode : 0755,
				s->own.has_uid ? s->own.uid : (uid_t)-1,
				s->own.has_gid ? s->own.gid : (gid_t)-1);
	case ACT_UPDATE:
		if (attrs_apply(p, res->path, &s->mode, &s->own) < 0)
			return -1;
		if (chg->diff.len) {
			char *save = NULL;
			for (char *line = strtok_r(chg->diff.ptr, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				if (path_remove(p, line, NULL) < 0)
					return -1;
		}
		return 0;
	default:
		return 0;
	}
}

const struct kind kind_directory = {
	.name = "Directory",
	.fields = dir_fields,
	.spec_size = sizeof(struct dir_spec),
	.path_offset = offsetof(struct dir_spec, path),
	.check = dir_check,
	.observe = dir_observe,
	.apply = dir_apply,
	.adopt_free = 1,	/* taking a directory over loses no content */
};
