/* SPDX-License-Identifier: MIT */
/* Kind File: a regular file with content from the manifest or from a blob of the same commit. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "core/vars.h"
#include "kinds/common.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/redact.h"
#include "source/git.h"

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field file_fields[] = {
	{ "path", FIELD_PATH, offsetof(struct file_spec, path), FIELD_REQUIRED, NULL },
	{ "content", FIELD_TEXT, offsetof(struct file_spec, content), 0, NULL },
	{ "source", FIELD_RELPATH, offsetof(struct file_spec, source), 0, NULL },
	{ "mode", FIELD_MODE, offsetof(struct file_spec, mode), 0, NULL },
	{ "owner", FIELD_ID, offsetof(struct file_spec, own.owner), 0, NULL },
	{ "group", FIELD_ID, offsetof(struct file_spec, own.group), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct file_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct file_spec, adopt), 0, NULL },
	{ "template", FIELD_BOOL, offsetof(struct file_spec, tmpl), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

/* Resolve a repository file for a source: field (never a symlink or submodule). */
int file_resolve_source(struct pass *p, struct resource *res, const char *src, char oid[41],
			uint64_t *size)
{
	enum gitsrc_entry type;
	const char *msg = check_git_path(src);
	if (msg) {
		res_diag(p, res, "source", "'source' names '%s', which %s", src, msg);
		return -1;
	}
	struct gitsrc *g = pass_git(p);
	int r = g ? gitsrc_lookup(g, p->rev.oid, src, &type, oid, size) : -1;
	if (r < 0) {
		res_diag(p, res, "source", "%s", err_msg());
		return -1;
	}
	if (r == 1) {
		res_diag(p, res, "source", "'source' names '%s', which does not exist in the commit", src);
		return -1;
	}
	if (type == GITSRC_LINK) {
		res_diag(p, res, "source", "'source' names '%s', a symlink: symlink not allowed as source", src);
		return -1;
	}
	if (type != GITSRC_BLOB && type != GITSRC_EXEC) {
		res_diag(p, res, "source", "'source' names '%s', which is not a regular file", src);
		return -1;
	}
	if (*size > p->policy->max_file_size) {
		res_diag(p, res, "source", "'source' '%s' is %llu bytes, more than the limit of %llu",
			 src, (unsigned long long)*size, (unsigned long long)p->policy->max_file_size);
		return -1;
	}
	return 0;
}

/* A 'template: true' File with a source: the host variables of the source
 * file substituted into content (validate: only their syntax checked). */
static int file_render_source(struct pass *p, struct resource *res, struct file_spec *s)
{
	struct buf text = BUF_INIT, out = BUF_INIT;
	struct gitsrc *g = pass_git(p);
	const char *why;
	size_t at;
	int ret = -1;
	if (!g || gitsrc_read_blob(g, s->blob, (size_t)p->policy->max_file_size, &text) < 0) {
		res_diag(p, res, "source", "%s", err_msg());
		goto out;
	}
	if (!vars_has_ref(text.ptr ? text.ptr : "", text.len)) {
		ret = 0;
		goto out;
	}
	if (vars_expand(p->vars, &p->arena, text.ptr, text.len, (size_t)p->policy->max_file_size,
			p->vars ? &out : NULL, &why, &at) < 0) {
		int line, col;
		vars_line_col(text.ptr, at, &line, &col);
		diag_add(&p->diag, s->source, line, col, "%s: template %s", res->id, why);
		goto out;
	}
	if (p->vars) {
		s->content.ptr = arena_strndup(&p->arena, out.ptr ? out.ptr : "", out.len);
		s->content.len = out.len;
		gitsrc_hash_blob(s->content.ptr, s->content.len, s->blob);
	}
	ret = 0;
out:
	buf_release(&text);
	buf_release(&out);
	return ret;
}

static int file_check(struct resource *res, struct pass *p)
{
	struct file_spec *s = res->spec;
	int absent = s->ensure == 1;

	if (s->content.ptr && s->source) {
		res_diag(p, res, "source", "exactly one of 'content' and 'source' may be set");
		return -1;
	}
	if (!absent && !s->content.ptr && !s->source && !s->blob[0]) {
		res_diag(p, res, NULL, "one of 'spec.content' and 'spec.source' is required");
		return -1;
	}
	if (s->content.ptr) {
		if (s->content.len > p->policy->max_file_size) {
			res_diag(p, res, "content", "'content' is %zu bytes, more than the limit of %llu",
				 s->content.len, (unsigned long long)p->policy->max_file_size);
			return -1;
		}
		gitsrc_hash_blob(s->content.ptr, s->content.len, s->blob);
		res->digest_extra = s->blob;
	} else if (s->source) {
		uint64_t size;
		if (file_resolve_source(p, res, s->source, s->blob, &size) < 0)
			return -1;
		if (s->tmpl == 1 && file_render_source(p, res, s) < 0)
			return -1;
		res->digest_extra = s->blob;
	}
	if (s->blob[0])
		res->digest_extra = s->blob;
	owner_resolve(p, res, &s->own);
	if (s->adopt == 1)
		res->adopt = 1;
	return 0;
}

int file_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct file_spec *s = res->spec;
	struct stat st;

	(void)owner_settle(p, &s->own);	/* an owner created since validation */
	if (path_observe(p, res->path, chg, &st) < 0)
		return -1;
	if (s->ensure == 1) {
		if (chg->exists) {
			if (chg->type == NODE_DIR)
				return err_set("'%s' is a directory, not a file", res->path);
			chg->action = ACT_DELETE;
		}
		return 0;
	}
	if (!chg->exists) {
		chg->action = ACT_CREATE;
		return 0;
	}
	if (chg->type == NODE_DIR)
		return err_set("'%s' is a directory; a File cannot replace it", res->path);
	if (chg->type == NODE_OTHER)
		return err_set("'%s' is a special file; a File cannot replace it", res->path);
	if (chg->type == NODE_LINK) {
		chg->action = ACT_UPDATE;
		what_add(chg, "symlink -> file");
		return 0;
	}
	if (pass_file_oid(p, res->path, &st, chg->oid) < 0)
		return -1;
	if (strcmp(chg->oid, s->blob))
		what_add(chg, "content");
	attrs_differ(chg, &s->mode, &s->own);
	/* a hard link shares its inode with a path we do not manage: never
	 * chmod or chown it in place, replace the entry instead */
	if (st.st_nlink > 1) {
		what_add(chg, "hard link replaced");
		chg->hardlink = 1;
	}
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

/* The desired content: inline, or the blob of the commit. */
int file_content(struct pass *p, struct file_spec *s, struct buf *out)
{
	if (s->secret)
		return secret_content(p, s, out);
	if (s->content.ptr) {
		buf_add(out, s->content.ptr, s->content.len);
		return 0;
	}
	struct gitsrc *g = pass_git(p);
	return g ? gitsrc_read_blob(g, s->blob, (size_t)p->policy->max_file_size, out) : -1;
}

int file_apply(struct change *chg, struct pass *p)
{
	struct resource *res = chg->res;
	struct file_spec *s = res->spec;
	int ret = -1;

	if (chg->action != ACT_DELETE && owner_settle(p, &s->own) < 0)
		return -1;
	if (chg->action == ACT_DELETE)
		return path_remove(p, res->path, chg->inv);

	/* only the attributes differ: change them in place */
	if (chg->action == ACT_UPDATE && chg->type == NODE_FILE && !strcmp(chg->oid, s->blob) &&
	    !chg->hardlink)
		return attrs_apply(p, res->path, &s->mode, &s->own);

	struct buf data = BUF_INIT;
	if (file_content(p, s, &data) < 0)
		goto out;
	if (chg->exists && chg->type == NODE_FILE && chg->foreign &&
	    pass_backup(p, res->path, chg->oid) < 0)
		goto out;
	mode_t mode = s->mode.set ? s->mode.mode : (chg->type == NODE_FILE ? chg->mode : 0644);
	uid_t uid = s->own.has_uid ? s->own.uid : (chg->type == NODE_FILE ? chg->uid : (uid_t)-1);
	gid_t gid = s->own.has_gid ? s->own.gid : (chg->type == NODE_FILE ? chg->gid : (gid_t)-1);
	if (p->batching) {
		int idx = fs_stage_write(&p->root, &p->batch, res->path, data.ptr ? data.ptr : "",
					 data.len, mode, uid, gid);
		if (idx < 0)
			goto out;
		chg->staged = idx + 1;
	} else if (fs_write_atomic(&p->root, res->path, data.ptr ? data.ptr : "", data.len, mode,
				   uid, gid) < 0) {
		goto out;
	}
	memcpy(chg->new_oid, s->blob, sizeof(chg->new_oid));
	pass_stat_update(p, res->path, s->blob);
	ret = 0;
out:
	if (s->secret)
		redact_wipe(data.ptr, data.cap);
	buf_release(&data);
	return ret;
}

static int file_diff(struct change *chg, struct pass *p, struct buf *out)
{
	struct file_spec *s = chg->res->spec;
	struct buf cur = BUF_INIT, want = BUF_INIT;
	int ret = 0;

	if (chg->type != NODE_FILE || !strcmp(chg->oid, s->blob))
		return 0;
	if (fs_read(&p->root, chg->res->path, (size_t)p->policy->max_file_size, &cur) < 0 ||
	    file_content(p, s, &want) < 0) {
		buf_addf(out, "(content differs: %s)\n", err_msg());
		goto out;
	}
	if (memchr(cur.ptr ? cur.ptr : "", 0, cur.len) || memchr(want.ptr ? want.ptr : "", 0, want.len)) {
		buf_addf(out, "Binary content differs (%zu -> %zu bytes)\n", cur.len, want.len);
		goto out;
	}
	ret = gitsrc_diff_text(chg->res->path, cur.ptr ? cur.ptr : "", cur.len,
			       want.ptr ? want.ptr : "", want.len, out);
out:
	buf_release(&cur);
	buf_release(&want);
	return ret;
}

const struct kind kind_file = {
	.name = "File",
	.fields = file_fields,
	.spec_size = sizeof(struct file_spec),
	.path_offset = offsetof(struct file_spec, path),
	.check = file_check,
	.observe = file_observe,
	.apply = file_apply,
	.diff = file_diff,
};
