/* SPDX-License-Identifier: MIT */
/* Unit tests for layers (JSON merge patch, layer.yaml, patched manifests) and host variables. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "core/layer.h"
#include "core/pass.h"
#include "core/vars.h"
#include "kinds/kinds.h"

/* ---- merge patch (RFC 7386, appendix A, and a few more) ---- */

static struct ynode *parse_one(struct arena *a, const char *text)
{
	struct ystream ys = { 0 };
	struct diag d;
	diag_init(&d);
	int r = yaml_parse(a, "t.yaml", text, strlen(text), &yaml_default_limits, &ys, &d);
	if (r < 0 || ys.n != 1)
		fail_msg("cannot parse '%s': %s", text, d.n ? d.v[0].msg : "no document");
	diag_release(&d);
	return ys.docs[0].root;
}

static void show(struct buf *b, const struct ynode *n)
{
	if (n->type == YNODE_SCALAR) {
		buf_adds(b, yaml_is_null(n) ? "null" : n->str);
		return;
	}
	buf_addch(b, n->type == YNODE_MAP ? '{' : '[');
	for (size_t i = 0; i < n->n; i++) {
		if (i)
			buf_addch(b, ',');
		if (n->type == YNODE_MAP) {
			buf_adds(b, n->keys[i]->str);
			buf_addch(b, ':');
		}
		show(b, n->vals[i]);
	}
	buf_addch(b, n->type == YNODE_MAP ? '}' : ']');
}

static const char *const merges[][3] = {
	{ "{a: b}", "{a: c}", "{a:c}" },
	{ "{a: b}", "{b: c}", "{a:b,b:c}" },
	{ "{a: b}", "{a: null}", "{}" },
	{ "{a: b, b: c}", "{a: null}", "{b:c}" },
	{ "{a: [b]}", "{a: c}", "{a:c}" },
	{ "{a: c}", "{a: [b]}", "{a:[b]}" },
	{ "{a: {b: c}}", "{a: {b: d, c: null}}", "{a:{b:d}}" },
	{ "{a: [{b: c}]}", "{a: [1]}", "{a:[1]}" },
	{ "[a, b]", "[c, d]", "[c,d]" },
	{ "{a: b}", "[c]", "[c]" },
	{ "{a: foo}", "null", "null" },
	{ "{a: foo}", "bar", "bar" },
	{ "{e: null}", "{a: 1}", "{e:null,a:1}" },
	{ "[1, 2]", "{a: b, c: null}", "{a:b}" },
	{ "{}", "{a: {bb: {ccc: null}}}", "{a:{bb:{}}}" },
	{ "{a: 1, b: 2, c: 3}", "{b: ~, d: 4, a: 0}", "{a:0,c:3,d:4}" },
	{ "{spec: {x: {y: 1, z: 2}}}", "{spec: {x: {z: null, w: [n]}}}", "{spec:{x:{y:1,w:[n]}}}" },
	{ "{a: b}", "{}", "{a:b}" },
	{ "{a: b}", "{a: \"null\"}", "{a:null}" },	/* a quoted "null" is a string: kept */
};

static void test_layer__merge_rfc7386(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(merges) / sizeof(*merges); i++) {
		struct arena a;
		struct buf b = BUF_INIT;
		arena_init(&a);
		struct ynode *t = parse_one(&a, merges[i][0]);
		struct ynode *pt = parse_one(&a, merges[i][1]);
		struct buf before = BUF_INIT;
		show(&before, t);
		show(&b, layer_merge(&a, t, pt));
		if (strcmp(b.ptr, merges[i][2]))
			fail_msg("%s + %s = %s, expected %s", merges[i][0], merges[i][1], b.ptr, merges[i][2]);
		/* the target is never changed in place */
		buf_reset(&b);
		show(&b, t);
		assert_string_equal(b.ptr, before.ptr);
		buf_release(&b);
		buf_release(&before);
		arena_release(&a);
	}
}

static void test_layer__merge_keeps_positions(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	struct ynode *t = parse_one(&a, "spec:\n  path: /etc/motd\n  content: x\n");
	struct ynode *pt = parse_one(&a, "\n\nspec: {content: y}\n");
	pt->vals[0]->vals[0]->file = "hosts/web/layer.yaml";
	struct ynode *m = layer_merge(&a, t, pt);
	struct ynode *spec = yaml_map_get(m, "spec");
	struct ynode *path = yaml_map_get(spec, "path"), *content = yaml_map_get(spec, "content");
	assert_int_equal(spec->line, t->vals[0]->line);
	assert_null(path->file);
	assert_int_equal(path->line, 2);
	assert_string_equal(content->file, "hosts/web/layer.yaml");
	assert_int_equal(content->line, 3);
	assert_int_equal(content->col, 17);
	arena_release(&a);
}

/* ---- layer.yaml and patched manifests ---- */

static const char *roots[] = { "/" };

struct fixture {
	struct pass p;
	struct policy pol;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	pass_init(&f->p);
	f->pol.roots = roots;
	f->pol.nroots = 1;
	f->pol.max_file_size = 1u << 20;
	f->p.policy = &f->pol;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pass_release(&f->p);
	test_free(f);
	return 0;
}

static const char motd[] =
	"apiVersion: driftless/v1\n"
	"kind: File\n"
	"metadata: {name: motd}\n"
	"spec:\n"
	"  path: /etc/motd\n"
	"  content: \"base\\n\"\n"
	"  mode: \"0644\"\n"
	"---\n"
	"apiVersion: driftless/v1\n"
	"kind: Directory\n"
	"metadata: {name: etc-app}\n"
	"spec: {path: /etc/app}\n";

static int layered(struct fixture *f, const char *layer)
{
	return manifest_parse_layered(&f->p, "hosts/web", layer, strlen(layer), "base/motd.yaml", motd,
				      strlen(motd));
}

static void expect_diag(const struct fixture *f, const char *file, int line, int col, const char *what)
{
	for (size_t i = 0; i < f->p.diag.n; i++) {
		const struct diag_item *d = &f->p.diag.v[i];
		if (d->file && !strcmp(d->file, file) && d->line == line && d->col == col &&
		    strstr(d->msg, what))
			return;
	}
	for (size_t i = 0; i < f->p.diag.n; i++)
		print_message("diag: %s:%d:%d: %s\n", f->p.diag.v[i].file ? f->p.diag.v[i].file : "-",
			      f->p.diag.v[i].line, f->p.diag.v[i].col, f->p.diag.v[i].msg);
	fail_msg("no diagnostic %s:%d:%d: ...%s...", file, line, col, what);
}

static struct file_spec *file_spec(struct fixture *f, const char *id)
{
	struct resource *r = hmap_get(&f->p.by_id, id);
	assert_non_null(r);
	return r->spec;
}

static void test_layer__patch_content_and_delete(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\n"
				    "kind: Layer\n"
				    "patches:\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch: {spec: {content: \"production\\n\", mode: null}}\n"), 0);
	struct file_spec *s = file_spec(f, "File/motd");
	assert_int_equal(s->content.len, 11);
	assert_memory_equal(s->content.ptr, "production\n", 11);
	assert_false(s->mode.set);
	struct resource *r = hmap_get(&f->p.by_id, "File/motd");
	struct srcpos pos = res_field_pos(r, "content");
	assert_string_equal(pos.file, "hosts/web/layer.yaml");
	assert_int_equal(pos.line, 5);
	assert_string_equal(res_field_pos(r, "path").file, "base/motd.yaml");
	assert_string_equal(r->manifest, "base/motd.yaml");
}

static void test_layer__patch_by_kind_only(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: Directory}\n"
				    "    patch: {spec: {mode: \"0750\"}}\n"), 0);
	struct resource *r = hmap_get(&f->p.by_id, "Directory/etc-app");
	assert_non_null(r);
	assert_int_equal(((struct dir_spec *)r->spec)->mode.mode, 0750);
}

static void test_layer__patches_in_order(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {name: motd}\n"
				    "    patch: {spec: {content: one}}\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch: {spec: {content: two}}\n"), 0);
	assert_memory_equal(file_spec(f, "File/motd")->content.ptr, "two", 3);
}

static void test_layer__source_relative_to_layer(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch: {spec: {content: null, source: files/motd}}\n"), 0);
	assert_string_equal(file_spec(f, "File/motd")->source, "hosts/web/files/motd");
}

static void test_layer__error_in_patched_value_points_at_layer(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch:\n"
				    "      spec: {mode: 644, colour: red}\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 6, 20, "quoted octal string");
	expect_diag(f, "hosts/web/layer.yaml", 6, 25, "unknown field 'spec.colour'");
}

static void test_layer__patch_may_not_change_kind_or_name(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch: {kind: Symlink}\n"
				    "  - target: {kind: Directory, name: etc-app}\n"
				    "    patch: {metadata: {name: other}}\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 5, 19, "may not change 'kind' of File/motd");
	expect_diag(f, "hosts/web/layer.yaml", 7, 30, "may not change 'metadata.name' of Directory/etc-app");
}

static void test_layer__null_name_is_a_change(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: File, name: motd}\n"
				    "    patch: {metadata: null}\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 5, 23, "may not change 'metadata.name'");
}

static void test_layer__target_matches_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\npatches:\n"
				    "  - target: {kind: File, name: nope}\n"
				    "    patch: {spec: {content: x}}\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 4, 13, "File/nope matches no resource");
}

static void test_layer__bad_layer_files(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "apiVersion: driftless/v2\n"
				    "kind: Kustomization\n"
				    "colour: blue\n"
				    "metadata: {name: web, owner: me}\n"
				    "resources: [/etc, ../../.., ../base/.git/config, \"\", {a: b}]\n"
				    "patches:\n"
				    "  - {target: {kind: Nope, name: BAD, label: x}, patch: [1], extra: 1}\n"
				    "  - {patch: {}}\n"
				    "  - 3\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 1, 13, "'apiVersion' must be 'driftless/v1'");
	expect_diag(f, "hosts/web/layer.yaml", 2, 7, "must be 'Layer', not 'Kustomization'");
	expect_diag(f, "hosts/web/layer.yaml", 3, 1, "unknown field 'colour'");
	expect_diag(f, "hosts/web/layer.yaml", 4, 23, "unknown field 'metadata.owner'");
	expect_diag(f, "hosts/web/layer.yaml", 5, 13, "'/etc' is absolute");
	expect_diag(f, "hosts/web/layer.yaml", 5, 19, "leaves the repository");
	expect_diag(f, "hosts/web/layer.yaml", 5, 29, "git metadata name");
	expect_diag(f, "hosts/web/layer.yaml", 5, 50, "must not be empty");
	expect_diag(f, "hosts/web/layer.yaml", 5, 54, "must be paths");
	expect_diag(f, "hosts/web/layer.yaml", 7, 21, "'Nope' is not a kind");
	expect_diag(f, "hosts/web/layer.yaml", 7, 33, "'name' must match");
	expect_diag(f, "hosts/web/layer.yaml", 7, 38, "unknown field 'patches[].target.label'");
	expect_diag(f, "hosts/web/layer.yaml", 7, 56, "needs 'patch', a mapping");
	expect_diag(f, "hosts/web/layer.yaml", 7, 61, "unknown field 'patches[].extra'");
	expect_diag(f, "hosts/web/layer.yaml", 8, 5, "needs 'target'");
	expect_diag(f, "hosts/web/layer.yaml", 9, 5, "must be mappings");
}

static void test_layer__empty_and_multi_document(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(layered(f, "# nothing\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 1, 1, "an empty layer");
	assert_int_equal(layered(f, "apiVersion: driftless/v1\nkind: Layer\n---\nkind: Layer\n"), -1);
	expect_diag(f, "hosts/web/layer.yaml", 3, 1, "a layer is one document");
}

static void test_layer__root_resources(void **state)
{
	struct fixture *f = *state;
	struct layer ly;
	struct arena a;
	const char *text = "apiVersion: driftless/v1\nkind: Layer\nresources: [../.., ../../base, motd.yaml]\n";
	arena_init(&a);
	assert_int_equal(layer_parse(&ly, &a, &f->p.arena, "hosts/web", text, strlen(text), &f->p.diag), 0);
	assert_int_equal(ly.nresources, 3);
	assert_string_equal(ly.resources[0], "");
	assert_string_equal(ly.resources[1], "base");
	assert_string_equal(ly.resources[2], "hosts/web/motd.yaml");
	assert_string_equal(ly.file, "hosts/web/layer.yaml");
	arena_release(&a);
}

/* ---- host variables ---- */

static const char *const keys[] = { "env", "port", "weird", NULL };
static const char *const vals[] = { "prod", "8080", "${vars.env}", NULL };
static const struct vars vars = { "web-01", "debian", "x86_64", keys, vals, 3 };

static const char *expand(struct arena *a, const struct vars *v, const char *s, const char **why,
			  size_t *at)
{
	struct buf b = BUF_INIT;
	if (vars_expand(v, a, s, strlen(s), 1000, &b, why, at) < 0) {
		buf_release(&b);
		return NULL;
	}
	char *r = arena_strdup(a, b.ptr ? b.ptr : "");
	buf_release(&b);
	return r;
}

static void test_layer__vars_expand(void **state)
{
	(void)state;
	struct arena a;
	const char *why;
	size_t at;
	arena_init(&a);
	static const char *const ok[][2] = {
		{ "plain", "plain" },
		{ "/etc/${host.name}/x", "/etc/web-01/x" },
		{ "${host.os}-${host.arch}", "debian-x86_64" },
		{ "${vars.env}:${vars.port}", "prod:8080" },
		{ "$${host.name}", "${host.name}" },
		{ "$$${vars.env}", "$${vars.env}" },
		{ "cost $5 and $$ and ${vars.env}$", "cost $5 and $$ and prod$" },
		{ "${vars.weird}", "${vars.env}" },	/* never scanned again */
		{ "$", "$" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		const char *r = expand(&a, &vars, ok[i][0], &why, &at);
		if (!r)
			fail_msg("'%s': %s", ok[i][0], why);
		assert_string_equal(r, ok[i][1]);
	}
	static const struct { const char *in; size_t at; const char *why; } bad[] = {
		{ "x ${vars.nope} y", 2, "unknown variable 'vars.nope'" },
		{ "${host.kernel}", 0, "unknown variable 'host.kernel'" },
		{ "ab${env}", 2, "'${env}' is not a variable" },
		{ "${vars.${vars.env}}", 0, "is not a variable name" },
		{ "${vars.1x}", 0, "is not a variable name" },
		{ "${vars.env", 0, "unterminated '${'" },
		{ "${vars.env\n}", 0, "unterminated '${'" },
		{ "ok ${", 3, "unterminated" },
		{ "${}", 0, "is not a variable" },
		{ "${vars.env:-x}", 0, "is not a variable name" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (expand(&a, &vars, bad[i].in, &why, &at))
			fail_msg("'%s' expanded", bad[i].in);
		if (!strstr(why, bad[i].why))
			fail_msg("'%s': '%s' does not say '%s'", bad[i].in, why, bad[i].why);
		assert_int_equal(at, bad[i].at);
	}
	/* syntax only (validate): unknown vars.* pass, bad syntax does not */
	assert_int_equal(vars_expand(NULL, &a, "${vars.nope}${host.os}", 22, 10, NULL, &why, &at), 0);
	assert_int_equal(vars_expand(NULL, &a, "${host.nope}", 12, 10, NULL, &why, &at), -1);
	assert_int_equal(vars_expand(NULL, &a, "${vars.x", 8, 10, NULL, &why, &at), -1);
	/* a value cannot blow the result up past its limit */
	struct buf b = BUF_INIT;
	assert_int_equal(vars_expand(&vars, &a, "${vars.env}${vars.env}", 22, 6, &b, &why, &at), -1);
	assert_non_null(strstr(why, "more than 6 bytes"));
	buf_release(&b);
	assert_true(vars_has_ref("a${b", 4));
	assert_false(vars_has_ref("a$ {b}", 6));
	assert_null(vars_check_key("Env_1"));
	assert_non_null(vars_check_key("1env"));
	assert_non_null(vars_check_key("e-v"));
	assert_non_null(vars_check_key(""));
	int line, col;
	vars_line_col("ab\ncd ${x", 6, &line, &col);
	assert_int_equal(line, 2);
	assert_int_equal(col, 4);
	arena_release(&a);
}

static void test_layer__vars_in_manifest(void **state)
{
	struct fixture *f = *state;
	f->p.vars = &vars;
	const char *m = "apiVersion: driftless/v1\n"
			"kind: File\n"
			"metadata: {name: a}\n"
			"spec:\n"
			"  path: /etc/${host.name}.conf\n"
			"  content: \"env ${vars.env}\\n\"\n"
			"---\n"
			"apiVersion: driftless/v1\n"
			"kind: File\n"
			"metadata: {name: b}\n"
			"spec:\n"
			"  path: /etc/b\n"
			"  template: true\n"
			"  content: \"env ${vars.env} $${x}\\n\"\n"
			"---\n"
			"apiVersion: driftless/v1\n"
			"kind: File\n"
			"metadata: {name: c}\n"
			"spec:\n"
			"  path: /etc/${vars.missing}\n"
			"  content: x\n";
	assert_int_equal(manifest_parse(&f->p, "m.yaml", m, strlen(m)), -1);
	struct file_spec *a = file_spec(f, "File/a"), *b = file_spec(f, "File/b");
	assert_string_equal(a->path, "/etc/web-01.conf");
	assert_memory_equal(a->content.ptr, "env ${vars.env}\n", a->content.len);
	assert_memory_equal(b->content.ptr, "env prod ${x}\n", b->content.len);
	assert_int_equal(b->tmpl, 1);
	expect_diag(f, "m.yaml", 20, 9, "'path' unknown variable 'vars.missing'");
}

#define T(x) cmocka_unit_test(x)
#define TF(x) cmocka_unit_test_setup_teardown(x, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_layer__merge_rfc7386),
		T(test_layer__merge_keeps_positions),
		TF(test_layer__patch_content_and_delete),
		TF(test_layer__patch_by_kind_only),
		TF(test_layer__patches_in_order),
		TF(test_layer__source_relative_to_layer),
		TF(test_layer__error_in_patched_value_points_at_layer),
		TF(test_layer__patch_may_not_change_kind_or_name),
		TF(test_layer__null_name_is_a_change),
		TF(test_layer__target_matches_nothing),
		TF(test_layer__bad_layer_files),
		TF(test_layer__empty_and_multi_document),
		TF(test_layer__root_resources),
		T(test_layer__vars_expand),
		TF(test_layer__vars_in_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
