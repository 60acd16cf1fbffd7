/* SPDX-License-Identifier: MIT */
/*
 * layer.yaml: which files and directories make up a directory's resources,
 * and the JSON merge patches (RFC 7386) laid over them. Patches work on the
 * YAML trees before the schema parses them, so a patched value is checked
 * exactly like a written one, and errors about it point into layer.yaml.
 */
#include <string.h>
#include "core/check.h"
#include "core/layer.h"

static const char *const layer_keys[] = { "apiVersion", "kind", "metadata", "resources",
	"patches", NULL };
static const char *const meta_keys[] = { "name", "labels", "annotations", NULL };
static const char *const patch_keys[] = { "target", "patch", NULL };
static const char *const target_keys[] = { "kind", "name", NULL };

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

static const char *scalar(const struct ynode *n)
{
	return n && n->type == YNODE_SCALAR ? n->str : NULL;
}

static void unknown_keys(struct diag *d, const char *file, const struct ynode *m,
			 const char *prefix, const char *const *keys)
{
	for (size_t i = 0; i < m->n; i++)
		if (!in_list(keys, m->keys[i]->str))
			diag_add(d, file, m->keys[i]->line, m->keys[i]->col, "unknown field '%s%s' in %s",
				 prefix, m->keys[i]->str, LAYER_FILE);
}

/* Every node of a patch says where it came from. */
static void mark_file(struct ynode *n, const char *file)
{
	n->file = file;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			mark_file(n->keys[i], file);
		mark_file(n->vals[i], file);
	}
}

static void parse_resources(struct layer *l, struct arena *keep, const struct ynode *r,
			    struct diag *d)
{
	const char *f = l->file;
	if (r->type != YNODE_SEQ) {
		diag_add(d, f, r->line, r->col, "'resources' must be a list of files and directories,"
			 " relative to the layer");
		return;
	}
	if (r->n > LAYER_MAX_ENTRIES) {
		diag_add(d, f, r->line, r->col, "'resources' has more than %d entries", LAYER_MAX_ENTRIES);
		return;
	}
	l->resources = arena_alloc(keep, (r->n + 1) * sizeof(*l->resources));
	l->res_pos = arena_alloc(keep, (r->n + 1) * sizeof(*l->res_pos));
	for (size_t i = 0; i < r->n; i++) {
		const struct ynode *it = r->vals[i];
		const char *s = scalar(it), *e, *norm;
		if (!s || yaml_is_null(it)) {
			diag_add(d, f, it->line, it->col, "'resources' entries must be paths (strings)");
			continue;
		}
		if (s[0] == '/') {
			diag_add(d, f, it->line, it->col, "'resources' entry '%s' is absolute: entries are"
				 " relative to the layer, inside the repository", s);
			continue;
		}
		if ((e = check_repo_dir(keep, l->dir, s, it->len, &norm))) {
			if (!strcmp(e, "leaves the repository"))
				diag_add(d, f, it->line, it->col, "'resources' entry '%s' leaves the repository", s);
			else
				diag_add(d, f, it->line, it->col, "'resources' entry %s", e);
			continue;
		}
		if ((e = check_git_path(norm))) {
			diag_add(d, f, it->line, it->col, "'resources' entry '%s' %s", s, e);
			continue;
		}
		l->res_pos[l->nresources] = (struct srcpos){ f, it->line, it->col };
		l->resources[l->nresources++] = norm;
	}
}

static void parse_patches(struct layer *l, struct arena *keep, struct ynode *ps, struct diag *d)
{
	const char *f = l->file;
	if (ps->type != YNODE_SEQ) {
		diag_add(d, f, ps->line, ps->col, "'patches' must be a list of {target, patch}");
		return;
	}
	if (ps->n > LAYER_MAX_ENTRIES) {
		diag_add(d, f, ps->line, ps->col, "'patches' has more than %d entries", LAYER_MAX_ENTRIES);
		return;
	}
	l->patches = arena_alloc(keep, (ps->n + 1) * sizeof(*l->patches));
	for (size_t i = 0; i < ps->n; i++) {
		struct ynode *it = ps->vals[i];
		struct layer_patch lp = { 0 };
		int ok = 1;
		if (it->type != YNODE_MAP) {
			diag_add(d, f, it->line, it->col, "'patches' entries must be mappings with 'target'"
				 " and 'patch'");
			continue;
		}
		unknown_keys(d, f, it, "patches[].", patch_keys);
		struct ynode *t = yaml_map_get(it, "target"), *pt = yaml_map_get(it, "patch");
		if (!t || t->type != YNODE_MAP) {
			diag_add(d, f, t ? t->line : it->line, t ? t->col : it->col,
				 "a patch needs 'target', a mapping with 'kind' and/or 'name'");
			ok = 0;
		} else {
			unknown_keys(d, f, t, "patches[].target.", target_keys);
			struct ynode *k = yaml_map_get(t, "kind"), *n = yaml_map_get(t, "name");
			const char *e;
			if (k && (!scalar(k) || !kind_find(k->str))) {
				struct buf b = BUF_INIT;
				for (int j = 0; kinds[j]; j++)
					buf_addf(&b, "%s%s", j ? ", " : "", kinds[j]->name);
				diag_add(d, f, k->line, k->col, "patch target kind '%s' is not a kind (known"
					 " kinds: %s)", scalar(k) ? k->str : "?", b.ptr);
				buf_release(&b);
				ok = 0;
			}
			if (n && (!scalar(n) || (e = check_name(n->str)))) {
				diag_add(d, f, n->line, n->col, "patch target 'name' %s",
					 scalar(n) ? e : "must be a string");
				ok = 0;
			}
			if (!k && !n) {
				diag_add(d, f, t->line, t->col, "a patch target needs 'kind', 'name' or both");
				ok = 0;
			}
			lp.kind = k && scalar(k) ? arena_strdup(keep, k->str) : NULL;
			lp.name = n && scalar(n) ? arena_strdup(keep, n->str) : NULL;
			lp.pos = (struct srcpos){ f, t->line, t->col };
		}
		if (!pt || pt->type != YNODE_MAP) {
			diag_add(d, f, pt ? pt->line : it->line, pt ? pt->col : it->col,
				 "a patch needs 'patch', a mapping merged into the target (RFC 7386)");
			ok = 0;
		}
		if (!ok)
			continue;
		mark_file(pt, f);
		lp.patch = pt;
		l->patches[l->npatches++] = lp;
	}
}

int layer_parse(struct layer *out, struct arena *a, struct arena *keep, const char *dir,
		const char *data, size_t len, struct diag *d)
{
	size_t before = d->n;
	struct ystream ys = { 0 };
	memset(out, 0, sizeof(*out));
	out->dir = arena_strdup(keep, dir);
	out->file = *dir ? arena_printf(keep, "%s/%s", dir, LAYER_FILE) : arena_strdup(keep, LAYER_FILE);
	const char *f = out->file;
	if (yaml_parse(a, f, data, len, &yaml_default_limits, &ys, d) < 0)
		return -1;
	if (!ys.n) {
		diag_add(d, f, 1, 1, "an empty layer: a layer has 'apiVersion', 'kind: Layer' and"
			 " 'resources'");
		return -1;
	}
	if (ys.n > 1) {
		diag_add(d, f, ys.docs[1].line, ys.docs[1].col, "a layer is one document; this file"
			 " holds %zu", ys.n);
		return -1;
	}
	struct ynode *root = ys.docs[0].root;
	if (root->type != YNODE_MAP) {
		diag_add(d, f, root->line, root->col, "a layer must be a mapping with apiVersion,"
			 " kind: Layer, resources and patches");
		return -1;
	}
	unknown_keys(d, f, root, "", layer_keys);
	struct ynode *api = yaml_map_get(root, "apiVersion"), *kind = yaml_map_get(root, "kind");
	struct ynode *meta = yaml_map_get(root, "metadata"), *v;
	if (!api)
		diag_add(d, f, root->line, root->col, "missing field 'apiVersion'");
	else if (!scalar(api) || strcmp(api->str, "driftless/v1"))
		diag_add(d, f, api->line, api->col, "'apiVersion' must be 'driftless/v1'");
	if (!kind)
		diag_add(d, f, root->line, root->col, "missing field 'kind' (a %s has 'kind: Layer')",
			 LAYER_FILE);
	else if (!scalar(kind) || strcmp(kind->str, "Layer"))
		diag_add(d, f, kind->line, kind->col, "'kind' of %s must be 'Layer', not '%s'", LAYER_FILE,
			 scalar(kind) ? kind->str : "?");
	if (meta && meta->type != YNODE_MAP)
		diag_add(d, f, meta->line, meta->col, "'metadata' must be a mapping");
	else if (meta)
		unknown_keys(d, f, meta, "metadata.", meta_keys);
	if ((v = yaml_map_get(root, "resources")))
		parse_resources(out, keep, v, d);
	if ((v = yaml_map_get(root, "patches")))
		parse_patches(out, keep, v, d);
	return d->n > before ? -1 : 0;
}

/* ---- merge patches ---- */

struct ynode *layer_merge(struct arena *a, const struct ynode *target, const struct ynode *patch)
{
	if (patch->type != YNODE_MAP)
		return (struct ynode *)patch;
	struct ynode *out = arena_alloc(a, sizeof(*out));
	size_t have = target && target->type == YNODE_MAP ? target->n : 0;
	if (have || (target && target->type == YNODE_MAP)) {
		*out = *target;
	} else {
		/* a non-map target becomes {} (RFC 7386), placed where the patch is */
		out->type = YNODE_MAP;
		out->line = patch->line;
		out->col = patch->col;
		out->file = patch->file;
	}
	out->n = have;
	out->keys = arena_alloc(a, (have + patch->n + 1) * sizeof(*out->keys));
	out->vals = arena_alloc(a, (have + patch->n + 1) * sizeof(*out->vals));
	if (have) {
		memcpy(out->keys, target->keys, have * sizeof(*out->keys));
		memcpy(out->vals, target->vals, have * sizeof(*out->vals));
	}
	for (size_t i = 0; i < patch->n; i++) {
		const char *k = patch->keys[i]->str;
		size_t j;
		for (j = 0; j < out->n; j++)
			if (out->keys[j]->len == patch->keys[i]->len &&
			    !memcmp(out->keys[j]->str, k, patch->keys[i]->len))
				break;
		if (yaml_is_null(patch->vals[i])) {
			if (j < out->n) {
				memmove(out->keys + j, out->keys + j + 1, (out->n - j - 1) * sizeof(*out->keys));
				memmove(out->vals + j, out->vals + j + 1, (out->n - j - 1) * sizeof(*out->vals));
				out->n--;
			}
			continue;
		}
		struct ynode *v = layer_merge(a, j < out->n ? out->vals[j] : NULL, patch->vals[i]);
		if (j < out->n) {
			out->vals[j] = v;
		} else {
			out->keys[out->n] = patch->keys[i];
			out->vals[out->n++] = v;
		}
	}
	return out;
}

static const char *doc_kind(const struct ynode *root)
{
	return root->type == YNODE_MAP ? scalar(yaml_map_get(root, "kind")) : NULL;
}

static const char *doc_name(const struct ynode *root)
{
	const struct ynode *m = root->type == YNODE_MAP ? yaml_map_get(root, "metadata") : NULL;
	return m && m->type == YNODE_MAP ? scalar(yaml_map_get(m, "name")) : NULL;
}

static int same(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

struct ynode *layer_apply(struct layer *l, struct arena *a, struct ynode *root, struct diag *d)
{
	const char *kind = doc_kind(root), *name = doc_name(root);
	if (!kind || !name)
		return root;	/* not a resource: the schema says why */
	for (size_t i = 0; i < l->npatches; i++) {
		struct layer_patch *lp = &l->patches[i];
		if ((lp->kind && strcmp(lp->kind, kind)) || (lp->name && strcmp(lp->name, name)))
			continue;
		lp->hits++;
		struct ynode *next = layer_merge(a, root, lp->patch);
		if (!same(doc_kind(next), kind) || !same(doc_name(next), name)) {
			const struct ynode *at = yaml_map_get(lp->patch, "kind"), *m;
			const char *what = "kind";
			if (same(doc_kind(next), kind)) {
				what = "metadata.name";
				at = yaml_map_get(lp->patch, "metadata");
				if (at && at->type == YNODE_MAP && (m = yaml_map_get(at, "name")))
					at = m;
			}
			if (!at)
				at = lp->patch;
			diag_add(d, l->file, at->line, at->col, "a patch may not change '%s' of %s/%s", what,
				 kind, name);
			return NULL;
		}
		root = next;
	}
	return root;
}

void layer_check_hits(const struct layer *l, struct diag *d)
{
	for (size_t i = 0; i < l->npatches; i++) {
		const struct layer_patch *lp = &l->patches[i];
		if (lp->hits)
			continue;
		diag_add(d, lp->pos.file, lp->pos.line, lp->pos.col,
			 "patch target %s%s%s matches no resource of this layer", lp->kind ? lp->kind : "*",
			 "/", lp->name ? lp->name : "*");
	}
}
