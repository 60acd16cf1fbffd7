/* SPDX-License-Identifier: MIT */
/* Unit tests for graph_build: dependsOn, implicit parents, cycles and the apply order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "core/pass.h"
#include "kinds/kinds.h"

#define FILE_NAME "graph.yaml"

static const char *roots[] = {"/"};

struct fixture {
	struct pass p;
	struct policy pol;
	int next_line;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	pass_init(&f->p);
	f->pol.roots = roots;
	f->pol.nroots = 1;
	f->pol.max_file_size = 1u << 20;
	f->p.policy = &f->pol;
	f->next_line = 1;
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

/*
 * Declare a resource as a manifest would: document at (next_line, 1), each
 * dependsOn entry on the following lines at column 7. deps is a
 * NULL-terminated list of ids. A resource with a path is also put in
 * by_path, which is where graph_build looks for implicit parents.
 */
static struct resource *declare(struct fixture *f, const struct kind *k, const char *name,
				const char *path, const char *const *deps)
{
	struct pass *p = &f->p;
	struct resource *res = pass_new_resource(p, k);
	size_t n = 0;

	while (deps && deps[n])
		n++;
	res->name = arena_strdup(&p->arena, name);
	res->id = arena_printf(&p->arena, "%s/%s", k->name, name);
	res->pos = (struct srcpos){FILE_NAME, f->next_line++, 1};
	res->manifest = FILE_NAME;
	res->manifest_dir = "";
	if (path) {
		res->path = arena_strdup(&p->arena, path);
		*(const char **)((char *)res->spec + k->path_offset) = res->path;
	}
	res->dep_ids = arena_alloc(&p->arena, (n + 1) * sizeof(*res->dep_ids));
	res->dep_pos = arena_alloc(&p->arena, (n + 1) * sizeof(*res->dep_pos));
	for (size_t i = 0; i < n; i++) {
		res->dep_ids[i] = deps[i];
		res->dep_pos[i] = (struct srcpos){FILE_NAME, f->next_line++, 7};
	}
	res->ndep_ids = n;
	pass_register(p, res);
	if (res->path)
		hmap_put(&p->by_path, res->path, res);
	return res;
}

#define DEPS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int has_dep(const struct resource *res, const struct resource *dep)
{
	for (size_t i = 0; i < res->ndeps; i++)
		if (res->deps[i] == dep)
			return 1;
	return 0;
}

static void expect_msg(const struct diag_item *it, const char *what)
{
	if (!strstr(it->msg, what))
		fail_msg("diagnostic '%s' does not contain '%s'", it->msg, what);
}

static void test_graph__order_follows_depends_on(void **state)
{
	struct fixture *f = *state;
	/* declared in the reverse of the order they must be applied in */
	struct resource *c = declare(f, &kind_file, "c", "/srv/c", DEPS("File/b"));
	struct resource *b = declare(f, &kind_file, "b", "/srv/b", DEPS("File/a"));
	struct resource *a = declare(f, &kind_file, "a", "/srv/a", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(f->p.diag.n, 0);
	assert_int_equal(c->ndeps, 1);
	assert_ptr_equal(c->deps[0], b);
	assert_int_equal(b->ndeps, 1);
	assert_ptr_equal(b->deps[0], a);
	assert_int_equal(a->ndeps, 0);
	assert_true(a->order < b->order);
	assert_true(b->order < c->order);
	assert_int_equal(f->p.nres, 3);
	assert_ptr_equal(f->p.res[0], a);
	assert_ptr_equal(f->p.res[1], b);
	assert_ptr_equal(f->p.res[2], c);
	for (size_t i = 0; i < f->p.nres; i++)
		assert_int_equal(f->p.res[i]->order, (int)i);
}

static void test_graph__independent_keep_declaration_order(void **state)
{
	struct fixture *f = *state;
	struct resource *x = declare(f, &kind_file, "x", "/srv/x", NULL);
	struct resource *y = declare(f, &kind_file, "y", "/srv/y", NULL);
	struct resource *z = declare(f, &kind_file, "z", "/srv/z", DEPS("File/x", "File/y"));
	struct resource *w = declare(f, &kind_file, "w", "/srv/w", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_ptr_equal(f->p.res[0], x);
	assert_ptr_equal(f->p.res[1], y);
	assert_ptr_equal(f->p.res[2], z);
	assert_ptr_equal(f->p.res[3], w);
	assert_int_equal(z->ndeps, 2);
}

static void test_graph__diamond(void **state)
{
	struct fixture *f = *state;
	struct resource *top =
	    declare(f, &kind_file, "top", "/srv/top", DEPS("File/left", "File/right"));
	struct resource *left = declare(f, &kind_file, "left", "/srv/left", DEPS("File/base"));
	struct resource *right = declare(f, &kind_file, "right", "/srv/right", DEPS("File/base"));
	struct resource *base = declare(f, &kind_file, "base", "/srv/base", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(f->p.diag.n, 0);
	assert_true(base->order < left->order);
	assert_true(base->order < right->order);
	assert_true(left->order < top->order);
	assert_true(right->order < top->order);
	assert_ptr_equal(f->p.res[0], base);
	assert_ptr_equal(f->p.res[3], top);
}

static void test_graph__duplicate_dep_once(void **state)
{
	struct fixture *f = *state;
	struct resource *a = declare(f, &kind_file, "a", "/srv/a", NULL);
	struct resource *b = declare(f, &kind_file, "b", "/srv/b", DEPS("File/a", "File/a"));

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(b->ndeps, 1);
	assert_ptr_equal(b->deps[0], a);
}

static void test_graph__implicit_parent(void **state)
{
	struct fixture *f = *state;
	/* the file comes first and names no dependency; /etc/app/x is not managed */
	struct resource *file = declare(f, &kind_file, "y", "/etc/app/x/y.conf", NULL);
	struct resource *dir = declare(f, &kind_directory, "app", "/etc/app", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(f->p.diag.n, 0);
	assert_int_equal(file->ndeps, 1);
	assert_ptr_equal(file->deps[0], dir);
	assert_int_equal(dir->ndeps, 0);
	assert_true(dir->order < file->order);
	assert_ptr_equal(f->p.res[0], dir);
	assert_ptr_equal(f->p.res[1], file);
}

static void test_graph__implicit_parent_nearest_only(void **state)
{
	struct fixture *f = *state;
	struct resource *file = declare(f, &kind_file, "conf", "/etc/app/sub/conf", NULL);
	struct resource *sub = declare(f, &kind_directory, "sub", "/etc/app/sub", NULL);
	struct resource *etc = declare(f, &kind_directory, "etc", "/etc", NULL);
	/* a sibling whose name merely starts with the directory's is not below it */
	struct resource *other = declare(f, &kind_file, "other", "/etc/app/subx", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(file->ndeps, 1);
	assert_ptr_equal(file->deps[0], sub);
	assert_int_equal(sub->ndeps, 1);
	assert_ptr_equal(sub->deps[0], etc);
	assert_int_equal(other->ndeps, 1);
	assert_ptr_equal(other->deps[0], etc);
	assert_false(has_dep(file, etc));
	assert_true(etc->order < sub->order);
	assert_true(sub->order < file->order);
}

static void test_graph__explicit_and_implicit(void **state)
{
	struct fixture *f = *state;
	struct resource *file = declare(f, &kind_file, "conf", "/etc/app/conf", DEPS("File/key"));
	struct resource *dir = declare(f, &kind_directory, "app", "/etc/app", NULL);
	struct resource *key = declare(f, &kind_file, "key", "/srv/key", NULL);

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(file->ndeps, 2);
	assert_true(has_dep(file, dir));
	assert_true(has_dep(file, key));
	assert_ptr_equal(f->p.res[2], file);
}

static void test_graph__parent_of_expanded_child(void **state)
{
	struct fixture *f = *state;
	struct resource *child = declare(f, &kind_file, "c", NULL, NULL);
	struct resource *par = declare(f, &kind_directory, "d", NULL, NULL);
	child->parent = par;

	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(child->ndeps, 1);
	assert_ptr_equal(child->deps[0], par);
	assert_ptr_equal(f->p.res[0], par);
}

static void test_graph__cycle(void **state)
{
	struct fixture *f = *state;
	declare(f, &kind_file, "a", "/srv/a", DEPS("File/b")); /* lines 1, 2 */
	declare(f, &kind_file, "b", "/srv/b", DEPS("File/c")); /* lines 3, 4 */
	declare(f, &kind_file, "c", "/srv/c", DEPS("File/a")); /* lines 5, 6 */

	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 1);
	const struct diag_item *it = &f->p.diag.v[0];
	expect_msg(it, "File/a");
	expect_msg(it, "File/b");
	expect_msg(it, "File/c");
	/* the walk starts at the first declared resource and reports the
	 * cycle at the resource it comes back to */
	assert_string_equal(it->msg,
			    "File/a: dependency cycle: File/a -> File/b -> File/c -> File/a");
	assert_string_equal(it->file, FILE_NAME);
	assert_int_equal(it->line, 1);
	assert_int_equal(it->col, 1);
}

static void test_graph__cycle_behind_a_path(void **state)
{
	struct fixture *f = *state;
	/* x leads into the cycle but is not part of it */
	declare(f, &kind_file, "x", "/srv/x", DEPS("File/a")); /* lines 1, 2 */
	declare(f, &kind_file, "a", "/srv/a", DEPS("File/b")); /* lines 3, 4 */
	declare(f, &kind_file, "b", "/srv/b", DEPS("File/a")); /* lines 5, 6 */

	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 1);
	assert_string_equal(f->p.diag.v[0].msg,
			    "File/a: dependency cycle: File/a -> File/b -> File/a");
	assert_int_equal(f->p.diag.v[0].line, 3);
}

static void test_graph__cycle_through_implicit_parent(void **state)
{
	struct fixture *f = *state;
	/* the directory waits for a file that lives inside it */
	declare(f, &kind_directory, "app", "/etc/app", DEPS("File/conf"));
	declare(f, &kind_file, "conf", "/etc/app/conf", NULL);

	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 1);
	assert_string_equal(
	    f->p.diag.v[0].msg,
	    "Directory/app: dependency cycle: Directory/app -> File/conf -> Directory/app");
}

static void test_graph__missing_reference(void **state)
{
	struct fixture *f = *state;
	declare(f, &kind_file, "a", "/srv/a", DEPS("File/b", "Directory/nope")); /* lines 1-3 */
	declare(f, &kind_file, "b", "/srv/b", NULL);

	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 1);
	const struct diag_item *it = &f->p.diag.v[0];
	assert_string_equal(it->msg,
			    "File/a: 'dependsOn' names Directory/nope, which is not declared");
	assert_string_equal(it->file, FILE_NAME);
	assert_int_equal(it->line, 3);
	assert_int_equal(it->col, 7);
}

static void test_graph__missing_reference_and_cycle(void **state)
{
	struct fixture *f = *state;
	declare(f, &kind_file, "a", "/srv/a", DEPS("File/ghost", "File/b"));
	declare(f, &kind_file, "b", "/srv/b", DEPS("File/a"));

	/* one run reports both */
	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 2);
	expect_msg(&f->p.diag.v[0], "'dependsOn' names File/ghost, which is not declared");
	expect_msg(&f->p.diag.v[1], "dependency cycle: File/a -> File/b -> File/a");
}

static void test_graph__self_dependency(void **state)
{
	struct fixture *f = *state;
	struct resource *a = declare(f, &kind_file, "a", "/srv/a", DEPS("File/a")); /* lines 1, 2 */

	assert_int_equal(graph_build(&f->p), -1);
	assert_int_equal(f->p.diag.n, 1);
	const struct diag_item *it = &f->p.diag.v[0];
	assert_string_equal(it->msg, "File/a: a resource cannot depend on itself");
	assert_int_equal(it->line, 2);
	assert_int_equal(it->col, 7);
	/* reported once, not also as a cycle */
	assert_int_equal(a->ndeps, 0);
}

static void test_graph__empty(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(graph_build(&f->p), 0);
	assert_int_equal(f->p.diag.n, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_graph__order_follows_depends_on),
	    T(test_graph__independent_keep_declaration_order),
	    T(test_graph__diamond),
	    T(test_graph__duplicate_dep_once),
	    T(test_graph__implicit_parent),
	    T(test_graph__implicit_parent_nearest_only),
	    T(test_graph__explicit_and_implicit),
	    T(test_graph__parent_of_expanded_child),
	    T(test_graph__cycle),
	    T(test_graph__cycle_behind_a_path),
	    T(test_graph__cycle_through_implicit_parent),
	    T(test_graph__missing_reference),
	    T(test_graph__missing_reference_and_cycle),
	    T(test_graph__self_dependency),
	    T(test_graph__empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
