/* SPDX-License-Identifier: MIT */
/* Unit tests for manifest_parse: documents into resources, each error at FILE:LINE:COL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "core/pass.h"
#include "kinds/kinds.h"

#define FILE_NAME "hosts/web/motd.yaml"

static const char *roots[] = {"/"};

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

static int parse_as(struct fixture *f, const char *file, const char *yaml)
{
	return manifest_parse(&f->p, file, yaml, strlen(yaml));
}

static int parse(struct fixture *f, const char *yaml)
{
	return parse_as(f, FILE_NAME, yaml);
}

/* Diagnostic i is at FILE_NAME:line:col and its message contains what. */
static void expect_diag(const struct fixture *f, size_t i, int line, int col, const char *what)
{
	assert_true(i < f->p.diag.n);
	const struct diag_item *it = &f->p.diag.v[i];
	assert_non_null(it->file);
	assert_string_equal(it->file, FILE_NAME);
	assert_int_equal(it->line, line);
	assert_int_equal(it->col, col);
	if (!strstr(it->msg, what))
		fail_msg("diagnostic '%s' does not contain '%s'", it->msg, what);
}

/* A File document whose spec ends with the line `extra` (line 8), indented by two. */
static int parse_file_with(struct fixture *f, const char *extra)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "apiVersion: driftless/v1\n" /* 1 */
		 "kind: File\n"		      /* 2 */
		 "metadata:\n"		      /* 3 */
		 "  name: motd\n"	      /* 4 */
		 "spec:\n"		      /* 5 */
		 "  path: /etc/motd\n"	      /* 6 */
		 "  content: hi\n"	      /* 7 */
		 "%s\n",		      /* 8 */
		 extra);
	return parse(f, yaml);
}

static void test_manifest__valid_file(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "  labels:\n"
				   "    team: ops\n"
				   "spec:\n"
				   "  path: /etc//./motd/\n"
				   "  content: \"hello\\n\"\n"
				   "  mode: \"0640\"\n"
				   "  ensure: present\n"
				   "  adopt: true\n";

	assert_int_equal(parse(f, yaml), 0);
	assert_int_equal(f->p.diag.n, 0);
	assert_int_equal(f->p.nres, 1);

	struct resource *res = f->p.res[0];
	assert_ptr_equal(res->kind, &kind_file);
	assert_string_equal(res->name, "motd");
	assert_string_equal(res->id, "File/motd");
	assert_ptr_equal(hmap_get(&f->p.by_id, "File/motd"), res);
	assert_string_equal(res->path, "/etc/motd");
	assert_string_equal(res->manifest, FILE_NAME);
	assert_string_equal(res->manifest_dir, "hosts/web");
	assert_string_equal(res->pos.file, FILE_NAME);
	assert_int_equal(res->pos.line, 1);
	assert_int_equal(res->pos.col, 1);
	assert_int_equal(res->doc_index, 0);
	assert_int_equal(res->drift, DRIFT_REPAIR);
	assert_int_equal(res->prune, 1);
	assert_int_equal(res->ndep_ids, 0);

	struct file_spec *s = res->spec;
	assert_string_equal(s->path, "/etc/motd");
	assert_non_null(s->content.ptr);
	assert_int_equal(s->content.len, 6);
	assert_memory_equal(s->content.ptr, "hello\n", 6);
	assert_true(s->mode.set);
	assert_int_equal(s->mode.mode, 0640);
	assert_null(s->source);
	assert_null(s->own.owner);
	assert_null(s->own.group);
	assert_int_equal(s->ensure, 0);
	assert_int_equal(s->adopt, 1);

	/* field positions come from the document */
	struct srcpos pos = res_field_pos(res, "mode");
	assert_int_equal(pos.line, 10);
	assert_int_equal(pos.col, 9);
}

static void test_manifest__defaults(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  ensure: absent"), 0);
	assert_int_equal(f->p.nres, 1);
	struct file_spec *s = f->p.res[0]->spec;
	assert_false(s->mode.set);
	assert_int_equal(s->adopt, -1); /* booleans are unset, not false */
	assert_int_equal(s->ensure, 1);
	assert_int_equal(s->content.len, 2);
	assert_memory_equal(s->content.ptr, "hi", 2);
}

static void test_manifest__depends_on(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: app.conf\n"
				   "spec:\n"
				   "  path: /etc/app.conf\n"
				   "  content: x\n"
				   "  dependsOn:\n"
				   "    - Directory/etc-app\n"
				   "    - File/base.conf\n";

	assert_int_equal(parse(f, yaml), 0);
	assert_int_equal(f->p.nres, 1);
	struct resource *res = f->p.res[0];
	assert_int_equal(res->ndep_ids, 2);
	assert_string_equal(res->dep_ids[0], "Directory/etc-app");
	assert_string_equal(res->dep_ids[1], "File/base.conf");
	assert_string_equal(res->dep_pos[0].file, FILE_NAME);
	assert_int_equal(res->dep_pos[0].line, 9);
	assert_int_equal(res->dep_pos[0].col, 7);
	assert_int_equal(res->dep_pos[1].line, 10);
	assert_int_equal(res->dep_pos[1].col, 7);
	/* manifest_parse does not resolve references: graph_build does */
	assert_int_equal(res->ndeps, 0);
}

static void test_manifest__depends_on_bad_entry(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  dependsOn: [File/ok, nokind, Directory/Bad]"), -1);
	assert_int_equal(f->p.diag.n, 2);
	expect_diag(f, 0, 8, 24, "File/motd: 'dependsOn' entries must look like Kind/name");
	expect_diag(f, 1, 8, 32, "'dependsOn' entries must look like Kind/name");
	assert_int_equal(f->p.res[0]->ndep_ids, 1);
	assert_string_equal(f->p.res[0]->dep_ids[0], "File/ok");
}

static void test_manifest__annotations(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "  annotations:\n"
				   "    driftless/drift: report\n"
				   "    driftless/prune: \"false\"\n"
				   "    example.com/owner: ops\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), 0);
	assert_int_equal(f->p.diag.n, 0);
	assert_int_equal(f->p.nres, 1);
	assert_int_equal(f->p.res[0]->drift, DRIFT_REPORT);
	assert_int_equal(f->p.res[0]->prune, 0);
}

static void test_manifest__bad_annotations(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "  annotations:\n"
				   "    driftless/drift: fix\n"
				   "    driftless/prune: \"no\"\n"
				   "    driftless/colour: red\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 3);
	expect_diag(
	    f, 0, 6, 22,
	    "File/motd: annotation 'driftless/drift' must be repair, report or ignore, not 'fix'");
	expect_diag(f, 1, 7, 22, "annotation 'driftless/prune' must be \"true\" or \"false\"");
	expect_diag(f, 2, 8, 5, "unknown annotation 'driftless/colour'");
}

static void test_manifest__unknown_top_field(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n"
				   "status: ok\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 1, "unknown field 'status'");
}

static void test_manifest__unknown_metadata_field(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "  namespace: web\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 5, 3, "unknown field 'metadata.namespace'");
}

static void test_manifest__unknown_spec_field(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  colour: blue"), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 3, "File/motd: unknown field 'spec.colour' for kind File");
}

static void test_manifest__missing_spec_field(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 6, 3, "File/motd: missing field 'spec.path'");
}

static void test_manifest__missing_api_version(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 1, 1, "missing field 'apiVersion'");
}

static void test_manifest__wrong_api_version(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v2\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 1, 13, "'apiVersion' must be 'driftless/v1'");
}

static void test_manifest__unknown_kind(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: Fiel\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: /etc/motd\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 2, 7, "unknown kind 'Fiel' (known kinds: File, Directory, Symlink, ");
	assert_int_equal(f->p.nres, 0);
}

static void test_manifest__bad_name(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: Motd_1\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 4, 9, "'metadata.name' must match [a-z0-9]([-a-z0-9.]*[a-z0-9])?");
	assert_int_equal(f->p.nres, 0);
}

static void test_manifest__bad_path(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: etc/motd\n"
				   "  content: hi\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 6, 9, "File/motd: 'path' must be an absolute path");
}

static void test_manifest__unquoted_mode(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  mode: 0644"), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 9, "'mode' must be a quoted octal string like \"0644\"");
	expect_diag(f, 0, 8, 9, "(quote the mode: \"0644\")");
	assert_false(((struct file_spec *)f->p.res[0]->spec)->mode.set);
}

static void test_manifest__unquoted_mode_no_zero(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  mode: 755"), -1);
	assert_int_equal(f->p.diag.n, 1);
	/* the hint adds the leading zero YAML would otherwise read as decimal */
	expect_diag(f, 0, 8, 9, "(quote the mode: \"0755\")");
}

static void test_manifest__bad_mode(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  mode: \"0648\""), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 9, "File/motd: 'mode' ");
}

static void test_manifest__setuid_denied(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  mode: \"4755\""), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 9,
		    "'mode' 4755 sets setuid, setgid or sticky bits: denied by local policy rule "
		    "'allowSetid'");
	assert_false(((struct file_spec *)f->p.res[0]->spec)->mode.set);
}

static void test_manifest__setuid_allowed(void **state)
{
	struct fixture *f = *state;
	f->pol.allow_setid = 1;
	assert_int_equal(parse_file_with(f, "  mode: \"4755\""), 0);
	assert_int_equal(f->p.diag.n, 0);
	struct file_spec *s = f->p.res[0]->spec;
	assert_true(s->mode.set);
	assert_int_equal(s->mode.mode, 04755);
}

static void test_manifest__bool_quoted(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  adopt: \"true\""), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 10, "File/motd: 'adopt' must be true or false");
	assert_int_equal(((struct file_spec *)f->p.res[0]->spec)->adopt, -1);
}

static void test_manifest__bool_not_scalar(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  adopt: [true]"), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 10, "'adopt' must be a boolean");
}

static void test_manifest__enum_outside_list(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_file_with(f, "  ensure: gone"), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 8, 11, "File/motd: 'ensure' must be one of present, absent, not 'gone'");
}

static void test_manifest__duplicate(void **state)
{
	struct fixture *f = *state;
	static const char first[] = "apiVersion: driftless/v1\n"
				    "kind: File\n"
				    "metadata:\n"
				    "  name: motd\n"
				    "spec:\n"
				    "  path: /etc/motd\n"
				    "  content: one\n";
	static const char second[] = "# the same File again\n"
				     "apiVersion: driftless/v1\n"
				     "kind: File\n"
				     "metadata:\n"
				     "  name: motd\n"
				     "spec:\n"
				     "  path: /etc/motd2\n"
				     "  content: two\n";

	assert_int_equal(parse_as(f, "base/motd.yaml", first), 0);
	assert_int_equal(parse(f, second), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 5, 9,
		    "duplicate resource File/motd (first declared at base/motd.yaml:1:1)");
	/* the first declaration stays */
	assert_int_equal(f->p.nres, 1);
	assert_string_equal(f->p.res[0]->path, "/etc/motd");
	assert_string_equal(f->p.res[0]->manifest, "base/motd.yaml");
}

static void test_manifest__same_name_other_kind(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: app\n"
				   "spec:\n"
				   "  path: /etc/app.conf\n"
				   "  content: x\n"
				   "---\n"
				   "apiVersion: driftless/v1\n"
				   "kind: Directory\n"
				   "metadata:\n"
				   "  name: app\n"
				   "spec:\n"
				   "  path: /etc/app\n";

	assert_int_equal(parse(f, yaml), 0);
	assert_int_equal(f->p.nres, 2);
	assert_string_equal(f->p.res[0]->id, "File/app");
	assert_string_equal(f->p.res[1]->id, "Directory/app");
	assert_int_equal(f->p.res[1]->doc_index, 1);
	assert_int_equal(f->p.res[1]->pos.line, 9);
}

static void test_manifest__multi_document_prefix(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: a\n"
				   "spec:\n"
				   "  path: /etc/a\n"
				   "  content: x\n"
				   "---\n"
				   "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: b\n"
				   "spec:\n"
				   "  path: /etc/b\n"
				   "  content: x\n"
				   "  ensure: maybe\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 16, 11,
		    "document 2: File/b: 'ensure' must be one of present, absent, not 'maybe'");
}

static void test_manifest__not_a_mapping(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse(f, "- a\n- b\n"), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_diag(f, 0, 1, 1, "a manifest document must be a mapping");
	assert_int_equal(f->p.nres, 0);
}

static void test_manifest__collects_all_errors(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  mode: 644\n"
				   "  adopt: \"yes\"\n"
				   "  ensure: gone\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 3);
	expect_diag(f, 0, 7, 9, "'mode' must be a quoted octal string");
	expect_diag(f, 1, 8, 10, "'adopt' must be true or false");
	expect_diag(f, 2, 9, 11, "'ensure' must be one of present, absent");
}

/* FIELD_MAP: names to strings ("=value") or lists ("[item\n..."), in order. */
static void test_manifest__map_field(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: Service\n"
				   "metadata: {name: web}\n"
				   "spec:\n"
				   "  exec: [/usr/bin/sleep, \"9\"]\n"
				   "  env: {B: two words, A: \"\"}\n"
				   "  healthCheck: {exec: [/bin/test, -e, /x], interval: 2s}\n";

	assert_int_equal(parse(f, yaml), 0);
	assert_int_equal(f->p.diag.n, 0);
	const struct service_spec *s = f->p.res[0]->spec;
	assert_non_null(s->env);
	assert_string_equal(s->env[0], "B");
	assert_string_equal(s->env[1], "=two words");
	assert_string_equal(s->env[2], "A");
	assert_string_equal(s->env[3], "=");
	assert_null(s->env[4]);
	assert_string_equal(fmap_str(s->env, "B"), "two words");
	assert_null(fmap_str(s->env, "C"));
	size_t n = 0;
	const char **argv = fmap_list(&f->p.arena, s->health, "exec", &n);
	assert_int_equal(n, 3);
	assert_string_equal(argv[0], "/bin/test");
	assert_string_equal(argv[2], "/x");
	assert_null(argv[3]);
	assert_null(fmap_list(&f->p.arena, s->health, "interval", NULL));
	assert_string_equal(fmap_str(s->health, "interval"), "2s");
}

static void test_manifest__map_field_errors(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: Exec\n"
				   "metadata: {name: x}\n"
				   "spec:\n"
				   "  command: [/bin/true]\n"
				   "  env: [A=b]\n"
				   "---\n"
				   "apiVersion: driftless/v1\n"
				   "kind: Exec\n"
				   "metadata: {name: y}\n"
				   "spec:\n"
				   "  command: [/bin/true]\n"
				   "  env: {A: {b: c}, B: \"x\\ny\"}\n";

	assert_int_equal(parse(f, yaml), -1);
	assert_int_equal(f->p.diag.n, 3);
	expect_diag(f, 0, 6, 8, "'env' must be a mapping");
	expect_diag(f, 1, 13, 12, "'env.A' must be a string or a list of strings");
	expect_diag(f, 2, 13, 23, "'env.B' must not contain the control character");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_manifest__valid_file),
	    T(test_manifest__defaults),
	    T(test_manifest__depends_on),
	    T(test_manifest__depends_on_bad_entry),
	    T(test_manifest__annotations),
	    T(test_manifest__bad_annotations),
	    T(test_manifest__unknown_top_field),
	    T(test_manifest__unknown_metadata_field),
	    T(test_manifest__unknown_spec_field),
	    T(test_manifest__missing_spec_field),
	    T(test_manifest__missing_api_version),
	    T(test_manifest__wrong_api_version),
	    T(test_manifest__unknown_kind),
	    T(test_manifest__bad_name),
	    T(test_manifest__bad_path),
	    T(test_manifest__unquoted_mode),
	    T(test_manifest__unquoted_mode_no_zero),
	    T(test_manifest__bad_mode),
	    T(test_manifest__setuid_denied),
	    T(test_manifest__setuid_allowed),
	    T(test_manifest__bool_quoted),
	    T(test_manifest__bool_not_scalar),
	    T(test_manifest__enum_outside_list),
	    T(test_manifest__duplicate),
	    T(test_manifest__same_name_other_kind),
	    T(test_manifest__multi_document_prefix),
	    T(test_manifest__not_a_mapping),
	    T(test_manifest__collects_all_errors),
	    T(test_manifest__map_field),
	    T(test_manifest__map_field_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
