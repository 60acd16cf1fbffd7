/* SPDX-License-Identifier: MIT */
/*
 * Manifest loading: the entry directory of a commit, composed by its layers
 * (layer.yaml) or else every YAML file below it, parsed into resources by
 * the kinds' field tables. One file's YAML tree is alive at a time; layers
 * keep only their own small trees (the patches) for the whole load.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/check.h"
#include "core/layer.h"
#include "core/pass.h"
#include "core/vars.h"
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

/* A directory being loaded: a layer, or a plain one (every manifest below it). */
struct frame {
	const char *dir;
	struct layer *layer;	/* NULL: a plain directory */
	struct srcpos via;	/* the layer entry that led here (file NULL: the entry directory) */
};

struct load {
	struct pass *p;
	struct buf blob;
	uint64_t total;
	size_t nfiles;
	int ndocs_file;		/* documents in the current file */
	const char *file;
	const char *cur_id;	/* Kind/name of the document being read, once known */
	int tmpl;		/* the document's spec says 'template: true' */
	struct arena layer_arena;	/* layer.yaml trees (the patches), for the whole load */
	struct frame stack[LAYER_MAX_DEPTH];
	int depth;
	int patched;		/* some frame on the stack has patches */
	const char *skip;	/* plain walk: a subdirectory composed as a layer */
	struct hmap cyclic;	/* directories of a layer cycle already reported */
	struct pcache *pc;	/* parse results by file and blob id (core/cache.c), or NULL */
	struct srcpos *npos;	/* metadata.name of each resource of the current file */
	size_t nnpos, capnpos;
};

/* The file a node was read from: the manifest, or the layer of a patch. */
static const char *nfile(const struct load *l, const struct ynode *n)
{
	return n && n->file ? n->file : l->file;
}

static void ldiag(struct load *l, const struct ynode *n, int doc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void ldiag(struct load *l, const struct ynode *n, int doc, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	if (l->ndocs_file > 1 && !(n && n->file))
		buf_addf(&b, "document %d: ", doc + 1);
	if (l->cur_id)
		buf_addf(&b, "%s: ", l->cur_id);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	diag_add(&l->p->diag, nfile(l, n), n ? n->line : 0, n ? n->col : 0, "%s", b.ptr);
	buf_release(&b);
}

static const char *scalar_str(const struct ynode *n)
{
	return n && n->type == YNODE_SCALAR ? n->str : NULL;
}

/*
 * Substitute host variables in the scalar v into *out (a copy of v), or
 * with p->vars NULL (validate) only check their syntax. -1 after a
 * diagnostic at v.
 */
static int substitute(struct load *l, const struct field *f, const struct ynode *v, int doc,
		      struct ynode *out)
{
	struct pass *p = l->p;
	struct buf b = BUF_INIT;
	const char *why;
	size_t at, max = f->type == FIELD_TEXT ? (size_t)p->policy->max_file_size : 65536;
	*out = *v;
	if (vars_expand(p->vars, &p->yaml_arena, v->str, v->len, max, p->vars ? &b : NULL, &why,
			&at) < 0) {
		ldiag(l, v, doc, "'%s' %s", f->name, why);
		buf_release(&b);
		return -1;
	}
	if (p->vars) {
		out->str = arena_strndup(&p->yaml_arena, b.ptr ? b.ptr : "", b.len);
		out->len = b.len;
	}
	buf_release(&b);
	return 0;
}

/* Parse one spec field into spec + f->offset. */
static void parse_list(struct load *l, struct resource *res, const struct field *f,
		       const struct ynode *v, int doc);
static void parse_map(struct load *l, struct resource *res, const struct field *f,
		      const struct ynode *v, int doc);

static void parse_field(struct load *l, struct resource *res, const struct field *f,
			const struct ynode *v, int doc)
{
	struct pass *p = l->p;
	char *slot = (char *)res->spec + f->offset;
	const char *e;
	struct ynode sub;

	if (f->type == FIELD_LIST) {
		parse_list(l, res, f, v, doc);
		return;
	}
	if (f->type == FIELD_MAP) {
		parse_map(l, res, f, v, doc);
		return;
	}
	if (v->type != YNODE_SCALAR) {
		ldiag(l, v, doc, "'%s' must be a %s", f->name,
		      f->type == FIELD_BOOL ? "boolean" : "string");
		return;
	}
	/* host variables: in every string field, in content only for templates */
	if (f->type != FIELD_BOOL && (f->type != FIELD_TEXT || l->tmpl) &&
	    vars_has_ref(v->str, v->len)) {
		/* text stays as written after an error, so the kind does not
		 * also report it missing; the revision is rejected anyway */
		if (substitute(l, f, v, doc, &sub) < 0 && f->type != FIELD_TEXT)
			return;
		v = &sub;
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
	case FIELD_RELPATH: {
		/* relative to the file that wrote it: the manifest, or a layer's patch */
		const char *base = res->manifest_dir;
		if (v->file) {
			const char *slash = strrchr(v->file, '/');
			base = slash ? arena_strndup(&p->arena, v->file, (size_t)(slash - v->file)) : "";
		}
		if ((e = check_repo_path(&p->arena, base, v->str, v->len, out)))
			ldiag(l, v, doc, "'%s' %s", f->name, e);
		return;
	}
	default:
		BUG_ON(1);
	}
}

/* A list of strings: each item parsed as a FIELD_STR of the same name. */
static void parse_list(struct load *l, struct resource *res, const struct field *f,
		       const struct ynode *v, int doc)
{
	if (v->type != YNODE_SEQ) {
		ldiag(l, v, doc, "'%s' must be a list of strings", f->name);
		return;
	}
	const char **list = arena_alloc(&l->p->arena, (v->n + 1) * sizeof(*list));
	const struct field item = { f->name, FIELD_STR, 0, 0, NULL };
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++) {
		const char *one = NULL;
		struct resource tmp = *res;
		tmp.spec = &one;
		parse_field(l, &tmp, &item, v->vals[i], doc);
		if (one)
			list[n++] = one;
	}
	*(const char ***)((char *)res->spec + f->offset) = list;
}

/* A mapping of names to strings or lists of strings (FIELD_MAP in
 * core/model.h): each value parsed as a FIELD_STR (or a list of them)
 * named "field.name"; a quoted "" is a valid string here (env). */
static void parse_map(struct load *l, struct resource *res, const struct field *f,
		      const struct ynode *v, int doc)
{
	struct pass *p = l->p;
	if (v->type != YNODE_MAP) {
		ldiag(l, v, doc, "'%s' must be a mapping", f->name);
		return;
	}
	const char **map = arena_alloc(&p->arena, (2 * v->n + 1) * sizeof(*map));
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *k = v->keys[i], *val = v->vals[i];
		if (!k->len || k->len > 256 || check_text(&p->arena, k->str, k->len)) {
			ldiag(l, k, doc, "'%s' has a key that is empty, too long or not text", f->name);
			continue;
		}
		const char *name = arena_printf(&p->arena, "%s.%s", f->name, k->str);
		const struct field item = { name, FIELD_STR, 0, 0, NULL };
		struct buf b = BUF_INIT;
		int ok = 1;
		if (val->type == YNODE_SEQ) {
			buf_addch(&b, '[');
			for (size_t j = 0; j < val->n && ok; j++) {
				const char *one = NULL;
				struct resource tmp = *res;
				tmp.spec = &one;
				parse_field(l, &tmp, &item, val->vals[j], doc);
				if (one)
					buf_addf(&b, "%s\n", one);
				ok = one != NULL;
			}
		} else if (val->type == YNODE_SCALAR && val->quoted && !val->len) {
			buf_addch(&b, '=');
		} else if (val->type == YNODE_SCALAR) {
			const char *one = NULL;
			struct resource tmp = *res;
			tmp.spec = &one;
			parse_field(l, &tmp, &item, val, doc);
			if (one)
				buf_addf(&b, "=%s", one);
			ok = one != NULL;
		} else {
			ldiag(l, val, doc, "'%s' must be a string or a list of strings", name);
			ok = 0;
		}
		if (ok) {
			map[n++] = arena_strndup(&p->arena, k->str, k->len);
			map[n++] = arena_strndup(&p->arena, b.ptr, b.len);
		}
		buf_release(&b);
	}
	*(const char ***)((char *)res->spec + f->offset) = map;
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
		res->dep_pos[res->ndep_ids] = (struct srcpos){ nfile(l, it), it->line, it->col };
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

static void load_doc(struct load *l, const char *file, const char *dir, struct ynode *root, int doc)
{
	struct pass *p = l->p;
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
	res->id = arena_join(&p->arena, k->name, '/', nm->str);
	l->cur_id = res->id;
	res->pos = (struct srcpos){ file, root->line, root->col };
	res->doc_index = doc;
	res->manifest = file;
	res->manifest_dir = dir;
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
	size_t npos = 0;
	res->fpos = arena_alloc(&p->arena, (spec->n + 1) * sizeof(*res->fpos));
	/* 'template: true' makes content a template too; the field is checked below */
	l->tmpl = 0;
	for (const struct field *f = k->fields; f->name; f++) {
		struct ynode *t;
		if (f->type == FIELD_BOOL && !strcmp(f->name, "template") &&
		    (t = yaml_map_get(spec, "template")) && t->type == YNODE_SCALAR && !t->quoted)
			l->tmpl = !strcmp(t->str, "true") || !strcmp(t->str, "True") || !strcmp(t->str, "TRUE");
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
		res->fpos[npos++] = fieldpos_make((size_t)(f - k->fields), nfile(l, spec->vals[i]),
						  spec->vals[i]->line, spec->vals[i]->col);
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
	if (prev && !strcmp(prev->pos.file, res->pos.file) && prev->pos.line == res->pos.line &&
	    prev->pos.col == res->pos.col) {
		/* the same document again: two layers lead to its file */
		const struct srcpos *via = NULL;
		for (int i = l->depth - 1; i >= 0 && !via; i--)
			if (l->stack[i].via.file)
				via = &l->stack[i].via;
		if (via)
			ldiag(l, nm, doc, "duplicate resource %s: '%s' is reached a second time, through"
			      " %s:%d:%d", res->id, file, via->file, via->line, via->col);
		else
			ldiag(l, nm, doc, "duplicate resource %s: '%s' is reached a second time", res->id,
			      file);
		return;
	}
	if (prev) {
		ldiag(l, nm, doc, "duplicate resource %s (first declared at %s:%d:%d)", res->id,
		      prev->pos.file, prev->pos.line, prev->pos.col);
		return;
	}
	if (l->nnpos == l->capnpos) {
		l->capnpos = l->capnpos ? l->capnpos * 2 : 64;
		l->npos = xrealloc(l->npos, l->capnpos * sizeof(*l->npos));
	}
	l->npos[l->nnpos++] = (struct srcpos){ file, nm->line, nm->col };
	pass_register(p, res);
}

static int is_manifest(const char *path)
{
	size_t n = strlen(path);
	return (n > 5 && !strcmp(path + n - 5, ".yaml")) || (n > 4 && !strcmp(path + n - 4, ".yml"));
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static int parse_file(struct load *l, const char *data, size_t len);
static int load_dir(struct load *l, const char *dir, const struct srcpos *via);

/* Size checks and the read of one blob into l->blob; 1 stops the load. */
/* The limits on manifest files, checked on the blob's size before it is
 * read (or taken from the parse cache): 0 within them, else as read_manifest. */
static int count_manifest(struct load *l, const char *oid, uint64_t *sizep)
{
	struct pass *p = l->p;
	uint64_t size = *sizep;
	if (++l->nfiles > MANIFEST_MAX_FILES) {
		diag_add(&p->diag, NULL, 0, 0, "more than %u manifest files", MANIFEST_MAX_FILES);
		return 1;
	}
	if (size == UINT64_MAX && gitsrc_blob_size(p->git, oid, &size) < 0) {
		diag_add(&p->diag, l->file, 0, 0, "%s", err_msg());
		return -1;
	}
	if (size > MANIFEST_MAX_FILE) {
		diag_add(&p->diag, l->file, 0, 0, "manifest is %llu bytes, more than the limit of %u",
			 (unsigned long long)size, MANIFEST_MAX_FILE);
		return -1;
	}
	l->total += size;
	if (l->total > MANIFEST_MAX_TOTAL) {
		diag_add(&p->diag, NULL, 0, 0, "manifests add up to more than %u bytes", MANIFEST_MAX_TOTAL);
		return 1;
	}
	*sizep = size;
	return 0;
}

static int read_manifest(struct load *l, const char *oid, uint64_t size)
{
	struct pass *p = l->p;
	int r = count_manifest(l, oid, &size);
	if (r)
		return r;
	buf_reset(&l->blob);
	if (gitsrc_read_blob(p->git, oid, MANIFEST_MAX_FILE, &l->blob) < 0) {
		diag_add(&p->diag, l->file, 0, 0, "%s", err_msg());
		return -1;
	}
	return 0;
}

/* A manifest outside any layer: what it parsed to last time when its blob
 * is the same, else parsed and remembered when it parses without a word. */
static int load_plain(struct load *l, const char *oid, uint64_t size)
{
	struct pass *p = l->p;
	const char *slash = strrchr(l->file, '/');
	const char *dir = slash ? arena_strndup(&p->arena, l->file, (size_t)(slash - l->file)) : "";
	struct resource **v;
	struct srcpos *np;
	size_t n;
	int ndocs;
	int r = count_manifest(l, oid, &size);
	if (r)
		return r > 0 ? 1 : 0;
	if (pcache_take(l->pc, p, l->file, dir, oid, &v, &np, &n, &ndocs) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct resource *prev = hmap_get(&p->by_id, v[i]->id);
			if (p->nres >= MANIFEST_MAX_RESOURCES) {
				diag_add(&p->diag, NULL, 0, 0, "more than %u resources",
					 MANIFEST_MAX_RESOURCES);
				r = 1;
				break;
			}
			if (prev && ndocs > 1)
				diag_add(&p->diag, l->file, np[i].line, np[i].col,
					 "document %d: duplicate resource %s (first declared at %s:%d:%d)",
					 v[i]->doc_index + 1, v[i]->id, prev->pos.file, prev->pos.line,
					 prev->pos.col);
			else if (prev)
				diag_add(&p->diag, l->file, np[i].line, np[i].col,
					 "duplicate resource %s (first declared at %s:%d:%d)", v[i]->id,
					 prev->pos.file, prev->pos.line, prev->pos.col);
			else
				pass_register(p, v[i]);
		}
		free(v);
		free(np);
		return r;
	}
	buf_reset(&l->blob);
	if (gitsrc_read_blob(p->git, oid, MANIFEST_MAX_FILE, &l->blob) < 0) {
		diag_add(&p->diag, l->file, 0, 0, "%s", err_msg());
		return 0;
	}
	size_t first = p->nres, ndiag = p->diag.n;
	l->nnpos = 0;
	r = parse_file(l, l->blob.ptr ? l->blob.ptr : "", l->blob.len);
	if (p->diag.n == ndiag && p->nres - first == l->nnpos)
		pcache_keep(l->pc, l->file, oid, l->ndocs_file, p->res + first, l->npos, l->nnpos);
	return r;
}

/* One manifest file (a tree walk's entry, or a layer's resource). */
static int load_one(struct load *l, const char *path, enum gitsrc_entry type, const char *oid,
		    uint64_t size)
{
	struct pass *p = l->p;
	l->file = arena_strdup(&p->arena, path);
	if (type == GITSRC_LINK) {
		diag_add(&p->diag, l->file, 0, 0, "manifest is a symlink; symlinks are never followed");
		return 0;
	}
	if (type != GITSRC_BLOB && type != GITSRC_EXEC)
		return 0;
	int plain = l->pc != NULL;
	for (int i = 0; i < l->depth; i++)
		plain &= l->stack[i].layer == NULL;
	if (plain)
		return load_plain(l, oid, size);
	int r = read_manifest(l, oid, size);
	if (r)
		return r > 0 ? 1 : 0;
	return parse_file(l, l->blob.ptr ? l->blob.ptr : "", l->blob.len);
}

/* The entry that led to the directory being walked, for messages. */
static const struct srcpos *cur_via(const struct load *l)
{
	for (int i = l->depth - 1; i >= 0; i--)
		if (l->stack[i].via.file)
			return &l->stack[i].via;
	return NULL;
}

/* gitsrc_walk callback of a plain directory: every manifest below it, and
 * each subdirectory holding a layer.yaml composed as that layer. */
static int load_file(void *ctx, const char *path, enum gitsrc_entry type, const char *oid,
		     uint64_t size)
{
	struct load *l = ctx;
	struct pass *p = l->p;
	size_t skip = l->skip ? strlen(l->skip) : 0;

	if (skip && !strncmp(path, l->skip, skip) && path[skip] == '/')
		return 0;
	if (check_git_name(path)) {
		diag_add(&p->diag, arena_strdup(&p->arena, path), 0, 0, "%s", check_git_name(path));
		return 0;
	}
	if (type == GITSRC_TREE) {
		enum gitsrc_entry t;
		char loid[41];
		uint64_t lsize;
		char *lp = xasprintf("%s/%s", path, LAYER_FILE);
		int r = gitsrc_lookup(p->git, p->rev.oid, lp, &t, loid, &lsize);
		free(lp);
		if (r != 0)
			return 0;
		/* composed as its layer; the walk skips what is below it */
		const char *dir = arena_strdup(&p->arena, path);
		r = load_dir(l, dir, cur_via(l));
		l->skip = dir;
		return r;
	}
	if (!is_manifest(path))
		return 0;
	return load_one(l, path, type, oid, size);
}

/* gitsrc_walk_pruned's test: every entry load_file does something with
 * (a manifest, a git name, a folder with a layer file in it: a manifest) */
static int manifest_matters(const char *name, enum gitsrc_entry type)
{
	(void)type;
	return is_manifest(name) || check_git_name(name) != NULL;
}

static const char *show_dir(const char *dir)
{
	return *dir ? dir : ".";
}

/* One entry of a layer's resources: a manifest file or a directory. */
static int load_entry(struct load *l, const char *path, const struct srcpos *at)
{
	struct pass *p = l->p;
	enum gitsrc_entry type = GITSRC_TREE;
	char oid[41] = "";
	uint64_t size = 0;

	/* component by component: a symlink anywhere on the way is refused */
	for (size_t i = 0; path[i];) {
		size_t n = strcspn(path + i, "/");
		char *prefix = arena_strndup(&p->yaml_arena, path, i + n);
		int r = gitsrc_lookup(p->git, p->rev.oid, prefix, &type, oid, &size);
		if (r < 0) {
			diag_add(&p->diag, at->file, at->line, at->col, "%s", err_msg());
			return 0;
		}
		if (r == 1) {
			diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' does not exist"
				 " in the commit", path);
			return 0;
		}
		if (type == GITSRC_LINK) {
			diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' %s a symlink;"
				 " symlinks are never followed", path,
				 path[i + n] ? arena_printf(&p->yaml_arena, "goes through '%s',", prefix) : "is");
			return 0;
		}
		if (type == GITSRC_COMMIT) {
			diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' is a submodule,"
				 " which is not supported", path);
			return 0;
		}
		if (path[i + n] && type != GITSRC_TREE) {
			diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' does not exist"
				 " in the commit ('%s' is a file)", path, prefix);
			return 0;
		}
		i += n + (path[i + n] == '/');
	}
	if (type == GITSRC_TREE)
		return load_dir(l, path, at);
	if (!strcmp(base_name(path), LAYER_FILE)) {
		diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' is a layer file:"
			 " name its directory instead", path);
		return 0;
	}
	if (!is_manifest(path)) {
		diag_add(&p->diag, at->file, at->line, at->col, "'resources' entry '%s' is not a manifest"
			 " (*.yaml or *.yml) or a directory", path);
		return 0;
	}
	return load_one(l, path, type, oid, UINT64_MAX);
}

/* dir's layer.yaml (at type/oid): parse it, load its resources, then check
 * that each patch found a target. */
static int load_layer(struct load *l, const char *dir, enum gitsrc_entry type, const char *oid,
		      const struct srcpos *via)
{
	struct pass *p = l->p;
	struct layer *ly = arena_alloc(&l->layer_arena, sizeof(*ly));
	l->file = *dir ? arena_printf(&p->arena, "%s/%s", dir, LAYER_FILE) : LAYER_FILE;
	if (type == GITSRC_LINK) {
		diag_add(&p->diag, l->file, 0, 0, "%s is a symlink; symlinks are never followed", LAYER_FILE);
		return 0;
	}
	if (type != GITSRC_BLOB && type != GITSRC_EXEC) {
		diag_add(&p->diag, l->file, 0, 0, "%s is not a regular file", LAYER_FILE);
		return 0;
	}
	int r = read_manifest(l, oid, UINT64_MAX);
	if (r)
		return r > 0 ? 1 : 0;
	/* what parsed is still loaded, so that one run reports every problem */
	int bad = layer_parse(ly, &l->layer_arena, &p->arena, dir, l->blob.ptr ? l->blob.ptr : "",
			      l->blob.len, &p->diag) < 0;
	struct frame *f = &l->stack[l->depth++];
	f->dir = dir;
	f->layer = ly;
	f->via = via ? *via : (struct srcpos){ 0 };
	int patched = l->patched;
	l->patched |= ly->npatches > 0;
	r = 0;
	for (size_t i = 0; i < ly->nresources && !r; i++)
		r = load_entry(l, ly->resources[i], &ly->res_pos[i]);
	l->patched = patched;
	l->depth--;
	if (!r && !bad)	/* with a bad entry, a target may be missing for that reason */
		layer_check_hits(ly, &p->diag);
	return r;
}

/*
 * Load the directory dir (which exists): its layer when it has a
 * layer.yaml, else every manifest below it. Returns 0, or 1 to stop the
 * load (a limit was reached).
 */
static int load_dir(struct load *l, const char *dir, const struct srcpos *via)
{
	struct pass *p = l->p;
	for (int i = 0; i < l->depth; i++) {
		if (strcmp(l->stack[i].dir, dir))
			continue;
		if (hmap_get(&l->cyclic, dir))
			return 0;	/* reported once, not again from each of its layers */
		for (int j = i; j < l->depth; j++)
			hmap_put(&l->cyclic, l->stack[j].dir, (void *)1);
		struct buf b = BUF_INIT;
		for (int j = i; j < l->depth; j++)
			buf_addf(&b, "%s -> ", show_dir(l->stack[j].dir));
		buf_adds(&b, show_dir(dir));
		diag_add(&p->diag, via ? via->file : NULL, via ? via->line : 0, via ? via->col : 0,
			 "layer cycle: %s", b.ptr);
		buf_release(&b);
		return 0;
	}
	if (l->depth >= LAYER_MAX_DEPTH) {
		diag_add(&p->diag, via ? via->file : NULL, via ? via->line : 0, via ? via->col : 0,
			 "layers nest more than %d deep", LAYER_MAX_DEPTH);
		return 0;
	}
	enum gitsrc_entry type;
	char oid[41];
	uint64_t size;
	char *lp = *dir ? xasprintf("%s/%s", dir, LAYER_FILE) : xstrdup(LAYER_FILE);
	int r = gitsrc_lookup(p->git, p->rev.oid, lp, &type, oid, &size);
	free(lp);
	if (r < 0) {
		diag_add(&p->diag, NULL, 0, 0, "%s", err_msg());
		return 0;
	}
	if (r == 0)
		return load_layer(l, dir, type, oid, via);
	struct frame *f = &l->stack[l->depth++];
	f->dir = dir;
	f->layer = NULL;
	f->via = via ? *via : (struct srcpos){ 0 };
	const char *skip = l->skip;
	l->skip = NULL;
	/* sizes only of manifests: a big entry directory holds many other files,
	 * and a folder with neither manifests nor git names is walked once */
	r = gitsrc_walk_pruned(p->git, p->rev.oid, dir, 0, manifest_matters, load_file, l);
	l->skip = skip;
	l->depth--;
	if (r < 0) {
		diag_add(&p->diag, NULL, 0, 0, "%s", err_msg());
		return 0;
	}
	return r;
}

/* The documents of one file, through the patches of every layer on the
 * stack (innermost first), into resources. */
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
		struct ynode *root = ys.docs[i].root;
		for (int f = l->depth - 1; l->patched && f >= 0 && root; f--)
			if (l->stack[f].layer)
				root = layer_apply(l->stack[f].layer, &p->yaml_arena, root, &p->diag);
		if (root)
			load_doc(l, l->file, dir, root, ys.docs[i].index);
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
	const char *entry = p->entry ? p->entry : "";
	enum gitsrc_entry type = GITSRC_TREE;
	char oid[41];
	uint64_t size;
	int r = *entry ? gitsrc_lookup(p->git, p->rev.oid, entry, &type, oid, &size) : 0;
	if (r < 0) {
		diag_add(&p->diag, NULL, 0, 0, "%s", err_msg());
		return -1;
	}
	if (r == 1 || type != GITSRC_TREE) {
		diag_add(&p->diag, NULL, 0, 0, "entry directory '%s' does not exist in commit %.12s",
			 entry, p->rev.oid);
		return -1;
	}
	arena_init(&l.layer_arena);
	hmap_init(&l.cyclic);
	if (p->state_dir && p->db && !p->pcache)
		l.pc = p->pcache = pcache_open(p, p->state_dir);
	load_dir(&l, entry, NULL);
	free(l.npos);
	buf_release(&l.blob);
	hmap_release(&l.cyclic);
	arena_release(&l.layer_arena);
	return p->diag.n ? -1 : 0;
}

int manifest_parse(struct pass *p, const char *file, const char *data, size_t len)
{
	struct load l = { .p = p, .file = arena_strdup(&p->arena, file) };
	size_t before = p->diag.n;
	parse_file(&l, data, len);
	free(l.npos);
	return p->diag.n > before ? -1 : 0;
}

int manifest_parse_layered(struct pass *p, const char *dir, const char *layer, size_t layer_len,
			   const char *file, const char *data, size_t len)
{
	struct load l = { .p = p };
	struct layer ly;
	size_t before = p->diag.n;
	arena_init(&l.layer_arena);
	if (layer_parse(&ly, &l.layer_arena, &p->arena, dir, layer, layer_len, &p->diag) == 0) {
		l.stack[0] = (struct frame){ ly.dir, &ly, { 0 } };
		l.depth = 1;
		l.patched = ly.npatches > 0;
		l.file = arena_strdup(&p->arena, file);
		parse_file(&l, data, len);
		layer_check_hits(&ly, &p->diag);
	}
	free(l.npos);
	arena_release(&l.layer_arena);
	return p->diag.n > before ? -1 : 0;
}
