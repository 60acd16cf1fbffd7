/* SPDX-License-Identifier: MIT */
/* Manifest loading: every YAML file below the entry directory of a commit, parsed into resources by the kinds' field tables. */
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "core/pass.h"
#include "lib/err.h"
#include "source/git.h"
#include "source/yaml.h"

/* Caps checked on blob sizes before anything is parsed (HARDENING M03). */
#define MANIFEST_MAX_FILE	(8u << 20)
#define MANIFEST_MAX_TOTAL	(64u << 20)
#define MANIFEST_MAX_FILES	100000u
#define MANIFEST_MAX_RESOURCES	500000u

static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
static const char *const meta_keys[] = { "name", "labels", "annotations", NULL };

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

struct load {
	struct pass *p;
	struct buf blob;
	uint64_t total;
	size_t nfiles;
	int ndocs_file;		/* documents in the current file */
	const char *file;
	const char *cur_id;	/* Kind/name of the document being read, once known */
};

static void ldiag(struct load *l, const struct ynode *n, int doc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void ldiag(struct load *l, const struct ynode *n, int doc, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	if (l->ndocs_file > 1)
		buf_addf(&b, "document %d: ", doc + 1);
	if (l->cur_id)
		buf_addf(&b, "%s: ", l->cur_id);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	diag_add(&l->p->diag, l->file, n ? n->line : 0, n ? n->col : 0, "%s", b.ptr);
	buf_release(&b);
}

static const char *scalar_str(const struct ynode *n)
{
	return n && n->type == YNODE_SCALAR ? n->str : NULL;
}

/* Parse one spec field into spec + f->offset. */
static void parse_field(struct load *l, struct resource *res, const struct field *f,
			const struct ynode *v, int doc)
{
	struct pass *p = l->p;
	char *slot = (char *)res->spec + f->offset;
	const char *e;

	if (v->type != YNODE_SCALAR) {
		ldiag(l, v, doc, "'%s' must be a %s", f->name,
		      f->type == FIELD_BOOL ? "boolean" : "string");
		return;
	}
	switch (f->type) {
	case FIELD_TEXT: {
		struct text *t = (struct text *)slot;
		t->ptr = arena_strndup(&p->arena, v->str, v->len);
		t->len = v->len;
		return;
	}
	case FIELD_BOOL:
		if (!v->quoted && (!strcmp(v->str, "true") || !strcmp(v->str, "True") ||
				   !strcmp(v->str, "TRUE")))
			*(int *)slot = 1;
		else if (!v->quoted && (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
					!strcmp(v->str, "FALSE")))
			*(int *)slot = 0;
		else
			ldiag(l, v, doc, "'%s' must be true or false", f->name);
		return;
	case FIELD_MODE: {
		unsigned m;
		struct optmode *om = (struct optmode *)slot;
		if (!v->quoted) {
			ldiag(l, v, doc, "'%s' must be a quoted octal string like \"0644\" (quote the mode: \"%s%s\")",
			      f->name, v->str[0] == '0' ? "" : "0", v->str);
			return;
		}
		if ((e = check_mode(v->str, &m))) {
			ldiag(l, v, doc, "'%s' %s", f->name, e);
			return;
		}
		if ((m & 07000) && !p->policy->allow_setid) {
			ldiag(l, v, doc, "'%s' %s sets setuid, setgid or sticky bits: denied by local policy rule 'allowSetid'",
			      f->name, v->str);
			return;
		}
		om->set = 1;
		om->mode = (mode_t)m;
		return;
	}
	default:
		break;
	}
	if ((e = check_text(&p->arena, v->str, v->len))) {
		ldiag(l, v, doc, "'%s' %s", f->name, e);
		return;
	}
	const char **out = (const char **)slot;
	switch (f->type) {
	case FIELD_STR:
	case FIELD_TARGET:
		if (!v->len) {
			ldiag(l, v, doc, "'%s' must not be empty", f->name);
			return;
		}
		if (v->len > 4096) {
			ldiag(l, v, doc, "'%s' must be at most 4096 bytes", f->name);
			return;
		}
		*out = arena_strndup(&p->arena, v->str, v->len);
		return;
	case FIELD_ENUM:
		for (int i = 0; f->enums[i]; i++) {
			if (!strcmp(f->enums[i], v->str)) {
				*(int *)slot = i;
				return;
			}
		}
		{
			struct buf b = BUF_INIT;
			for (int i = 0; f->enums[i]; i++)
				buf_addf(&b, "%s%s", i ? ", " : "", f->enums[i]);
			ldiag(l, v, doc, "'%s' must be one of %s, not '%s'", f->name, b.ptr, v->str);
			buf_release(&b);
		}
		return;
	case FIELD_ID:
		if ((e = check_account(v->str))) {
			ldiag(l, v, doc, "'%s' %s", f->name, e);
			return;
		}
		*out = arena_strndup(&p->arena, v->str, v->len);
		return;
	case FIELD_PATH:
		if ((e = check_host_path(&p->arena, v->str, v->len, out)))
			ldiag(l, v, doc, "'%s' %s", f->name, e);
		return;
	case FIELD_RELPATH:
		if ((e = check_repo_path(&p->arena, res->manifest_dir, v->str, v->len, out)))
			ldiag(l, v, doc, "'%s' %s", f->name, e);
		return;
	default:
		BUG_ON(1);
	}
}

static void parse_depends(struct load *l, struct resource *res, const struct ynode *v, int doc)
{
	struct pass *p = l->p;
	if (v->type != YNODE_SEQ) {
		ldiag(l, v, doc, "'dependsOn' must be a list of Kind/name");
		return;
	}
	res->dep_ids = arena_alloc(&p->arena, (v->n + 1) * sizeof(*res->dep_ids));
	res->dep_pos = arena_alloc(&p->arena, (v->n + 1) * sizeof(*res->dep_pos));
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *it = v->vals[i];
		const char *s = scalar_str(it);
		const char *slash = s ? strchr(s, '/') : NULL;
		if (!s || !slash || slash == s || check_text(&p->arena, s, it->len) ||
		    check_name(slash + 1)) {
			ldiag(l, it, doc, "'dependsOn' entries must look like Kind/name");
			continue;
		}
		res->dep_ids[res->ndep_ids] = arena_strndup(&p->arena, s, it->len);
		res->dep_pos[res->ndep_ids] = (struct srcpos){ l->file, it->line, it->col };
		res->ndep_ids++;
	}
}

static void parse_annotations(struct load *l, struct resource *res, const struct ynode *m, int doc)
{
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i]->str;
		const struct ynode *v = m->vals[i];
		const char *s = scalar_str(v);
		if (!s) {
			ldiag(l, v, doc, "annotation '%s' must be a string", k);
			continue;
		}
		if (!strcmp(k, "driftless/drift")) {
			int j;
			for (j = 0; drift_names[j]; j++)
				if (!strcmp(drift_names[j], s))
					break;
			if (!drift_names[j])
				ldiag(l, v, doc, "annotation 'driftless/drift' must be repair, report or ignore, not '%s'", s);
			else
				res->drift = j;
		} else if (!strcmp(k, "driftless/prune")) {
			if (!strcmp(s, "true"))
				res->prune = 1;
			else if (!strcmp(s, "false"))
				res->prune = 0;
			else
				ldiag(l, v, doc, "annotation 'driftless/prune' must be \"true\" or \"false\"");
		} else if (!strncmp(k, "driftless/", 10)) {
			ldiag(l, m->keys[i], doc, "unknown annotation '%s'", k);
		}
	}
}

static int check_string_map(struct load *l, const struct ynode *m, const char *what, int doc)
{
	if (m->type != YNODE_MAP) {
		ldiag(l, m, doc, "'%s' must be a mapping of strings", what);
		return -1;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (m->vals[i]->type != YNODE_SCALAR) {
			ldiag(l, m->vals[i], doc, "'%s.%s' must be a string", what, m->keys[i]->str);
			return -1;
		}
		if (check_text(&l->p->arena, m->keys[i]->str, m->keys[i]->len)) {
			ldiag(l, m->keys[i], doc, "'%s' keys must be printable text", what);
			return -1;
		}
	}
	return 0;
}

static void load_doc(struct load *l, const char *file, const char *dir, struct ydoc *d)
{
	struct pass *p = l->p;
	struct ynode *root = d->root;
	int doc = d->index;
	const struct kind *k;

	l->cur_id = NULL;
	if (root->type != YNODE_MAP) {
		ldiag(l, root, doc, "a manifest document must be a mapping with apiVersion, kind, metadata and spec");
		return;
	}
	for (size_t i = 0; i < root->n; i++)
		if (!in_list(top_keys, root->keys[i]->str))
			ldiag(l, root->keys[i], doc, "unknown field '%s'", root->keys[i]->str);

	struct ynode *api = yaml_map_get(root, "apiVersion");
	struct ynode *kn = yaml_map_get(root, "kind");
	struct ynode *meta = yaml_map_get(root, "metadata");
	struct ynode *spec = yaml_map_get(root, "spec");
	if (!api)
		ldiag(l, root, doc, "missing field 'apiVersion'");
	else if (!scalar_str(api) || strcmp(api->str, "driftless/v1"))
		ldiag(l, api, doc, "'apiVersion' must be 'driftless/v1'");
	if (!kn) {
		ldiag(l, root, doc, "missing field 'kind'");
		return;
	}
	if (!scalar_str(kn) || !(k = kind_find(kn->str))) {
		struct buf b = BUF_INIT;
		for (int i = 0; kinds[i]; i++)
			buf_addf(&b, "%s%s", i ? ", " : "", kinds[i]->name);
		ldiag(l, kn, doc, "unknown kind '%s' (known kinds: %s)",
		      scalar_str(kn) ? kn->str : "?", b.ptr);
		buf_release(&b);
		return;
	}
	if (p->policy->kinds_set) {
		size_t i;
		for (i = 0; i < p->policy->nkinds; i++)
			if (!strcmp(p->policy->kinds[i], k->name))
				break;
		if (i == p->policy->nkinds) {
			ldiag(l, kn, doc, "kind %s is denied by local policy rule 'policy.kinds'", k->name);
			return;
		}
	}
	if (!meta || meta->type != YNODE_MAP) {
		ldiag(l, meta ? meta : root, doc, "'metadata' must be a mapping with a 'name'");
		return;
	}
	for (size_t i = 0; i < meta->n; i++)
		if (!in_list(meta_keys, meta->keys[i]->str))
			ldiag(l, meta->keys[i], doc, "unknown field 'metadata.%s'", meta->keys[i]->str);
	struct ynode *nm = yaml_map_get(meta, "name");
	const char *e;
	if (!nm || !scalar_str(nm)) {
		ldiag(l, nm ? nm : meta, doc, "'metadata.name' is required");
		return;
	}
	if ((e = check_text(&p->arena, nm->str, nm->len)) || (e = check_name(nm->str))) {
		ldiag(l, nm, doc, "'metadata.name' %s", e);
		return;
	}

	struct resource *res = pass_new_resource(p, k);
	res->name = arena_strndup(&p->arena, nm->str, nm->len);
	res->id = arena_printf(&p->arena, "%s/%s", k->name, nm->str);
	l->cur_id = res->id;
	res->pos = (struct srcpos){ file, root->line, root->col };
	res->doc_index = doc;
	res->manifest = file;
	res->manifest_dir = dir;
	{
		size_t nf = 0;
		while (k->fields[nf].name)
			nf++;
		res->fpos = arena_alloc(&p->arena, (nf + 1) * sizeof(*res->fpos));
	}
	res->prune = 1;

	struct ynode *labels = yaml_map_get(meta, "labels");
	if (labels)
		check_string_map(l, labels, "metadata.labels", doc);
	struct ynode *ann = yaml_map_get(meta, "annotations");
	if (ann && !check_string_map(l, ann, "metadata.annotations", doc))
		parse_annotations(l, res, ann, doc);

	if (!spec || spec->type != YNODE_MAP) {
		ldiag(l, spec ? spec : root, doc, "'spec' must be a mapping");
		return;
	}
	for (size_t i = 0; i < spec->n; i++) {
		const char *key = spec->keys[i]->str;
		const struct field *f;
		if (!strcmp(key, "dependsOn")) {
			parse_depends(l, res, spec->vals[i], doc);
			continue;
		}
		for (f = k->fields; f->name; f++)
			if (!strcmp(f->name, key))
				break;
		if (!f->name) {
			ldiag(l, spec->keys[i], doc, "unknown field 'spec.%s' for kind %s", key, k->name);
			continue;
		}
		res->fpos[f - k->fields] = (struct srcpos){ file, spec->vals[i]->line, spec->vals[i]->col };
		parse_field(l, res, f, spec->vals[i], doc);
	}
	for (const struct field *f = k->fields; f->name; f++) {
		if (!(f->flags & FIELD_REQUIRED))
			continue;
		if (!yaml_map_get(spec, f->name))
			ldiag(l, spec, doc, "missing field 'spec.%s'", f->name);
	}
	if (k->path_offset != SIZE_MAX)
		res->path = *(const char **)((char *)res->spec + k->path_offset);

	struct resource *prev = hmap_get(&p->by_id, res->id);
	l->cur_id = NULL;
	if (prev) {
		ldiag(l, nm, doc, "duplicate resource %s (first declared at %s:%d:%d)", res->id,
		      prev->pos.file, prev->pos.line, prev->pos.col);
		return;
	}
	pass_register(p, res);
}

static int is_manifest(const char *path)
{
	size_t n = strlen(path);
	return (n > 5 && !strcmp(path + n - 5, ".yaml")) || (n > 4 && !strcmp(path + n - 4, ".yml"));
}

static int parse_file(struct load *l, const char *data, size_t len);

static int load_file(void *ctx, const char *path, enum gitsrc_entry type, const char *oid,
		     uint64_t size)
{
	struct load *l = ctx;
	struct pass *p = l->p;

	if (check_git_name(path)) {
		diag_add(&p->diag, arena_strdup(&p->arena, path), 0, 0, "%s", check_git_name(path));
		return 0;
	}
	if (!is_manifest(path))
		return 0;
	l->file = arena_strdup(&p->arena, path);
	if (type == GITSRC_LINK) {
		diag_add(&p->diag, l->file, 0, 0, "manifest is a symlink; symlinks are never followed");
		return 0;
	}
	if (type != GITSRC_BLOB && type != GITSRC_EXEC)
		return 0;
	if (++l->nfiles > MANIFEST_MAX_FILES) {
		diag_add(&p->diag, NULL, 0, 0, "more than %u manifest files", MANIFEST_MAX_FILES);
		return 1;
	}
	if (size == UINT64_MAX && gitsrc_blob_size(p->git, oid, &size) < 0) {
		diag_add(&p->diag, l->file, 0, 0, "%s", err_msg());
		return 0;
	}
	if (size > MANIFEST_MAX_FILE) {
		diag_add(&p->diag, l->file, 0, 0, "manifest is %llu bytes, more than the limit of %u",
			 (unsigned long long)size, MANIFEST_MAX_FILE);
		return 0;
	}
	l->total += size;
	if (l->total > MANIFEST_MAX_TOTAL) {
		diag_add(&p->diag, NULL, 0, 0, "manifests add up to more than %u bytes", MANIFEST_MAX_TOTAL);
		return 1;
	}
	buf_reset(&l->blob);
	if (gitsrc_read_blob(p->git, oid, MANIFEST_MAX_FILE, &l->blob) < 0) {
		diag_add(&p->diag, l->file, 0, 0, "%s", err_msg());
		return 0;
	}
	return parse_file(l, l->blob.ptr ? l->blob.ptr : "", l->blob.len);
}

static int parse_file(struct load *l, const char *data, size_t len)
{
	struct pass *p = l->p;
	struct ystream ys = { 0 };
	/* the trees live in their own arena, dropped once the revision is
	 * validated; everything kept is copied into the pass arena */
	if (yaml_parse(&p->yaml_arena, l->file, data, len, &yaml_default_limits, &ys, &p->diag) < 0)
		return 0;
	const char *slash = strrchr(l->file, '/');
	const char *dir = slash ? arena_strndup(&p->arena, l->file, (size_t)(slash - l->file)) : "";
	l->ndocs_file = 0;
	for (size_t i = 0; i < ys.n; i++)
		if (ys.docs[i].index + 1 > l->ndocs_file)
			l->ndocs_file = ys.docs[i].index + 1;
	int ret = 0;
	for (size_t i = 0; i < ys.n; i++) {
		if (p->nres >= MANIFEST_MAX_RESOURCES) {
			diag_add(&p->diag, NULL, 0, 0, "more than %u resources", MANIFEST_MAX_RESOURCES);
			ret = 1;
			break;
		}
		load_doc(l, l->file, dir, &ys.docs[i]);
	}
	/* everything kept was copied into the pass arena, positions included:
	 * the trees of this file can go, so peak memory follows one file */
	arena_release(&p->yaml_arena);
	arena_init(&p->yaml_arena);
	return ret;
}

int manifest_load(struct pass *p)
{
	struct load l = { .p = p };
	/* sizes only of manifests: a big entry directory holds many other files */
	int r = gitsrc_walk_sizes(p->git, p->rev.oid, p->entry, 0, load_file, &l);
	buf_release(&l.blob);
	if (r < 0) {
		diag_add(&p->diag, NULL, 0, 0, "%s", err_msg());
		return -1;
	}
	if (r == 1)
		diag_add(&p->diag, NULL, 0, 0, "entry directory '%s' does not exist in commit %.12s",
			 p->entry, p->rev.oid);
	return p->diag.n ? -1 : 0;
}

int manifest_parse(struct pass *p, const char *file, const char *data, size_t len)
{
	struct load l = { .p = p, .file = arena_strdup(&p->arena, file) };
	size_t before = p->diag.n;
	parse_file(&l, data, len);
	return p->diag.n > before ? -1 : 0;
}
