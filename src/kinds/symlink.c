/* SPDX-License-Identifier: MIT */
/* Kind Symlink: a symbolic link whose target the local policy confines like any path. */
#include <stddef.h>
#include <string.h>
#include "core/check.h"
#include "kinds/kinds.h"
#include "lib/err.h"

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field link_fields[] = {
	{ "path", FIELD_PATH, offsetof(struct link_spec, path), FIELD_REQUIRED, NULL },
	{ "target", FIELD_TARGET, offsetof(struct link_spec, target), 0, NULL },
	{ "owner", FIELD_ID, offsetof(struct link_spec, own.owner), 0, NULL },
	{ "group", FIELD_ID, offsetof(struct link_spec, own.group), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct link_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct link_spec, adopt), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static int link_check(struct resource *res, struct pass *p)
{
	struct link_spec *s = res->spec;
	owner_resolve(p, res, &s->own);
	if (s->adopt == 1)
		res->adopt = 1;
	if (s->ensure == 1 || !res->path)
		return 0;	/* a bad path was reported already */
	if (!s->target) {
		res_diag(p, res, NULL, "missing field 'spec.target'");
		return -1;
	}
	/* where the link points, resolved lexically from the link's directory */
	const char *abs, *msg;
	const char *t = s->target;
	if (t[0] != '/') {
		const char *slash = strrchr(res->path, '/');
		t = arena_printf(&p->arena, "%.*s/%s", (int)(slash - res->path), res->path, t);
	}
	/* ".." is fine in a target, but it must stay inside the allowed roots */
	struct arena *a = &p->arena;
	size_t n = strlen(t);
	char *o = arena_alloc(a, n + 2);
	size_t olen = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && t[i] == '/')
			i++;
		size_t st = i;
		while (i < n && t[i] != '/')
			i++;
		size_t cl = i - st;
		if (!cl || (cl == 1 && t[st] == '.'))
			continue;
		if (cl == 2 && t[st] == '.' && t[st + 1] == '.') {
			while (olen > 0 && o[olen - 1] != '/')
				olen--;
			if (olen > 0)
				olen--;
			continue;
		}
		o[olen++] = '/';
		memcpy(o + olen, t + st, cl);
		olen += cl;
	}
	if (!olen)
		o[olen++] = '/';
	o[olen] = '\0';
	abs = o;
	if ((msg = policy_check_path(p->policy, abs))) {
		res_diag(p, res, "target", "'target' points at '%s', which %s", abs, msg);
		return -1;
	}
	return 0;
}

static int link_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct link_spec *s = res->spec;
	struct stat st;

	(void)owner_settle(p, &s->own);	/* an owner created since validation */
	if (path_observe(p, res->path, chg, &st) < 0)
		return -1;
	if (s->ensure == 1) {
		if (chg->exists) {
			if (chg->type == NODE_DIR)
				return err_set("'%s' is a directory, not a symlink", res->path);
			chg->action = ACT_DELETE;
		}
		return 0;
	}
	if (!chg->exists) {
		chg->action = ACT_CREATE;
		return 0;
	}
	if (chg->type == NODE_DIR)
		return err_set("'%s' is a directory; a Symlink cannot replace it", res->path);
	if (chg->type != NODE_LINK) {
		if (chg->type == NODE_FILE && pass_file_oid(p, res->path, &st, chg->oid) < 0)
			return -1;
		what_add(chg, "%s -> symlink", node_type_names[chg->type]);
		chg->action = ACT_UPDATE;
		return 0;
	}
	struct buf cur = BUF_INIT;
	if (fs_readlink(&p->root, res->path, &cur) < 0) {
		buf_release(&cur);
		return -1;
	}
	if (strcmp(cur.ptr ? cur.ptr : "", s->target))
		what_add(chg, "target '%s' -> '%s'", cur.ptr ? cur.ptr : "", s->target);
	buf_release(&cur);
	attrs_differ(chg, NULL, &s->own);
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

static int link_apply(struct change *chg, struct pass *p)
{
	struct resource *res = chg->res;
	struct link_spec *s = res->spec;

	if (chg->action != ACT_DELETE && owner_settle(p, &s->own) < 0)
		return -1;
	if (chg->action == ACT_DELETE)
		return path_remove(p, res->path, chg->inv);
	if (chg->exists && chg->type == NODE_FILE && chg->foreign &&
	    pass_backup(p, res->path, chg->oid) < 0)
		return -1;
	return fs_symlink_atomic(&p->root, res->path, s->target,
				 s->own.has_uid ? s->own.uid : (uid_t)-1,
				 s->own.has_gid ? s->own.gid : (gid_t)-1);
}

const struct kind kind_symlink = {
	.name = "Symlink",
	.fields = link_fields,
	.spec_size = sizeof(struct link_spec),
	.path_offset = offsetof(struct link_spec, path),
	.check = link_check,
	.observe = link_observe,
	.apply = link_apply,
};
