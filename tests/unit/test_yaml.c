/* SPDX-License-Identifier: MIT */
/* Unit tests for the YAML seam: tree, positions, rejections and limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "lib/arena.h"
#include "lib/diag.h"
#include "lib/err.h"
#include "source/yaml.h"

struct fx {
	struct arena a;
	struct diag d;
	struct ystream s;
};

static int fx_setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof(*fx));

	arena_init(&fx->a);
	diag_init(&fx->d);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	arena_release(&fx->a);
	diag_release(&fx->d);
	free(fx);
	return 0;
}

/*
 * Parse len bytes copied into a buffer of exactly that size, without a
 * terminating NUL, so ASan catches any read past the end.
 */
static int parse_n(struct fx *fx, const char *text, size_t len,
		   const struct ylimits *lim)
{
	char *copy = xmalloc(len);
	int rc;

	memcpy(copy, text, len);
	rc = yaml_parse(&fx->a, "m.yaml", copy, len,
			lim ? lim : &yaml_default_limits, &fx->s, &fx->d);
	free(copy);
	return rc;
}

static int parse(struct fx *fx, const char *text, const struct ylimits *lim)
{
	return parse_n(fx, text, strlen(text), lim);
}

/* Parse text (len 0: up to its NUL) that must fail with one diagnostic. */
static void expect_one(struct fx *fx, const char *text, size_t len,
		       const struct ylimits *lim, int line, int col,
		       const char *msg)
{
	assert_int_equal(parse_n(fx, text, len ? len : strlen(text), lim), -1);
	assert_int_equal(fx->d.n, 1);
	assert_string_equal(fx->d.v[0].file, "m.yaml");
	assert_int_equal(fx->d.v[0].line, line);
	assert_int_equal(fx->d.v[0].col, col);
	assert_string_equal(fx->d.v[0].msg, msg);
}

static void assert_scalar(const struct ynode *n, const char *str, int line,
			  int col, int quoted)
{
	assert_non_null(n);
	assert_int_equal(n->type, YNODE_SCALAR);
	assert_int_equal(n->len, strlen(str));
	assert_string_equal(n->str, str);
	assert_int_equal(n->line, line);
	assert_int_equal(n->col, col);
	assert_int_equal(n->quoted, quoted);
}

static void test_yaml__tree(void **state)
{
	struct fx *fx = *state;
	const char *text =
		"kind: file\n"
		"spec:\n"
		"  path: /etc/motd\n"
		"  mode: \"0644\"\n"
		"  empty:\n"
		"items:\n"
		"  - a\n"
		"  - {b: 1, c: [x, y]}\n";
	const struct ynode *root, *spec, *items, *flow, *seq;

	assert_int_equal(parse(fx, text, NULL), 0);
	assert_int_equal(fx->d.n, 0);
	assert_int_equal(fx->s.n, 1);
	assert_int_equal(fx->s.docs[0].index, 0);
	assert_int_equal(fx->s.docs[0].line, 1);
	assert_int_equal(fx->s.docs[0].col, 1);

	root = fx->s.docs[0].root;
	assert_int_equal(root->type, YNODE_MAP);
	assert_int_equal(root->n, 3);
	assert_int_equal(root->line, 1);
	assert_int_equal(root->col, 1);
	assert_scalar(root->keys[0], "kind", 1, 1, 0);
	assert_scalar(root->vals[0], "file", 1, 7, 0);
	assert_scalar(root->keys[2], "items", 6, 1, 0);

	spec = yaml_map_get(root, "spec");
	assert_non_null(spec);
	assert_int_equal(spec->type, YNODE_MAP);
	assert_int_equal(spec->n, 3);
	assert_int_equal(spec->line, 3);
	assert_int_equal(spec->col, 3);
	assert_scalar(yaml_map_get(spec, "path"), "/etc/motd", 3, 9, 0);
	assert_scalar(yaml_map_get(spec, "mode"), "0644", 4, 9, 1);
	assert_true(yaml_is_null(yaml_map_get(spec, "empty")));
	assert_false(yaml_is_null(yaml_map_get(spec, "path")));
	assert_null(yaml_map_get(spec, "missing"));
	assert_null(yaml_map_get(root, "Spec"));
	assert_null(yaml_map_get(yaml_map_get(spec, "path"), "x"));

	items = yaml_map_get(root, "items");
	assert_int_equal(items->type, YNODE_SEQ);
	assert_int_equal(items->n, 2);
	assert_null(items->keys);
	assert_int_equal(items->line, 7);
	assert_int_equal(items->col, 3);
	assert_scalar(items->vals[0], "a", 7, 5, 0);
	flow = items->vals[1];
	assert_int_equal(flow->type, YNODE_MAP);
	assert_int_equal(flow->line, 8);
	assert_int_equal(flow->col, 5);
	assert_int_equal(flow->n, 2);
	assert_scalar(flow->keys[1], "c", 8, 12, 0);
	seq = yaml_map_get(flow, "c");
	assert_int_equal(seq->type, YNODE_SEQ);
	assert_int_equal(seq->line, 8);
	assert_int_equal(seq->col, 15);
	assert_int_equal(seq->n, 2);
	assert_scalar(seq->vals[1], "y", 8, 19, 0);
}

static void test_yaml__empty_containers(void **state)
{
	struct fx *fx = *state;
	const struct ynode *root;

	assert_int_equal(parse(fx, "a: {}\nb: []\n", NULL), 0);
	root = fx->s.docs[0].root;
	assert_int_equal(yaml_map_get(root, "a")->type, YNODE_MAP);
	assert_int_equal(yaml_map_get(root, "a")->n, 0);
	assert_int_equal(yaml_map_get(root, "b")->type, YNODE_SEQ);
	assert_int_equal(yaml_map_get(root, "b")->n, 0);

	/* nothing was ever pushed on the item stack */
	assert_int_equal(parse(fx, "[]", NULL), 0);
	assert_int_equal(fx->s.docs[0].root->type, YNODE_SEQ);
	assert_int_equal(fx->s.docs[0].root->n, 0);
	assert_null(fx->s.docs[0].root->vals);
	assert_int_equal(parse(fx, "{}", NULL), 0);
	assert_int_equal(fx->s.docs[0].root->type, YNODE_MAP);
	assert_int_equal(fx->s.docs[0].root->n, 0);
}

static void test_yaml__multi_doc(void **state)
{
	struct fx *fx = *state;
	const char *text =
		"a: 1\n"		/* document 0 */
		"---\n"			/* 1: empty */
		"---\n"			/* 2: only a comment */
		"# nothing here\n"
		"--- \n"		/* 3 */
		"b: 2\n"
		"...\n"
		"c: 3\n"		/* 4: implicit after "..." */
		"---\n";		/* 5: stray marker at the end */

	assert_int_equal(parse(fx, text, NULL), 0);
	assert_int_equal(fx->d.n, 0);
	assert_int_equal(fx->s.n, 3);
	assert_int_equal(fx->s.docs[0].index, 0);
	assert_int_equal(fx->s.docs[1].index, 3);
	assert_int_equal(fx->s.docs[1].line, 5);
	assert_int_equal(fx->s.docs[1].col, 1);
	assert_non_null(yaml_map_get(fx->s.docs[1].root, "b"));
	assert_int_equal(fx->s.docs[2].index, 4);
	assert_int_equal(fx->s.docs[2].line, 8);
	assert_int_equal(fx->s.docs[2].col, 1);
	assert_non_null(yaml_map_get(fx->s.docs[2].root, "c"));
}

static void test_yaml__empty_input(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(parse_n(fx, "", 0, NULL), 0);
	assert_int_equal(fx->s.n, 0);
	assert_null(fx->s.docs);
	assert_int_equal(parse(fx, "# just a comment\n\n", NULL), 0);
	assert_int_equal(fx->s.n, 0);
	assert_int_equal(fx->d.n, 0);
}

static void test_yaml__quoted(void **state)
{
	struct fx *fx = *state;
	const char *text =
		"plain: null\n"
		"single: 'null'\n"
		"double: \"x\\ty\"\n"
		"literal: |\n"
		"  line\n"
		"folded: >-\n"
		"  one\n"
		"  two\n"
		"tilde: ~\n"
		"empty: ''\n";
	const struct ynode *root;

	assert_int_equal(parse(fx, text, NULL), 0);
	root = fx->s.docs[0].root;
	assert_scalar(yaml_map_get(root, "plain"), "null", 1, 8, 0);
	assert_scalar(yaml_map_get(root, "single"), "null", 2, 9, 1);
	assert_scalar(yaml_map_get(root, "double"), "x\ty", 3, 9, 1);
	assert_int_equal(yaml_map_get(root, "literal")->quoted, 1);
	assert_string_equal(yaml_map_get(root, "literal")->str, "line\n");
	assert_int_equal(yaml_map_get(root, "folded")->quoted, 1);
	assert_string_equal(yaml_map_get(root, "folded")->str, "one two");
	assert_true(yaml_is_null(yaml_map_get(root, "plain")));
	assert_true(yaml_is_null(yaml_map_get(root, "tilde")));
	assert_false(yaml_is_null(yaml_map_get(root, "single")));
	assert_false(yaml_is_null(yaml_map_get(root, "empty")));
	assert_false(yaml_is_null(root));
}

static void test_yaml__single_quoted(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "'it''s'", "it's" },
		{ "'a''''b'", "a''b" },
		{ "''''''''''''", "'''''" },
		{ "'a''''''''''''''''''''b'", "a''''''''''b" },
		{ "''", "" },
		{ "'  lead and trail  '", "  lead and trail  " },
		{ "'one\n  two'", "one two" },
		{ "'one  \n\n   two'", "one\ntwo" },
		{ "'one\n\n\n two'", "one\n\ntwo" },
		{ "'one \t\r\n\t two'", "one two" },
		{ "'a\n \n b'", "a\nb" },
		{ "'\n  a'", " a" },
		{ "'\\n \"x\" #y'", "\\n \"x\" #y" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ynode *n;

		assert_int_equal(parse(fx, cases[i].in, NULL), 0);
		n = fx->s.docs[0].root;
		assert_int_equal(n->type, YNODE_SCALAR);
		assert_int_equal(n->quoted, 1);
		assert_string_equal(n->str, cases[i].want);
		assert_int_equal(n->len, strlen(cases[i].want));
	}
}

/* Everything but single quotes goes through libfyaml's chunk iterator. */
static void test_yaml__decoded_styles(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "|+\n  x\n\n", "x\n\n" },
		{ "|-\n  x\n\n", "x" },
		{ "|\r\n  x\r\n  y\r\n", "x\ny\n" },
		{ ">\n  one\n  two\n\n  three\n    more\n  four\n",
		  "one two\nthree\n  more\nfour\n" },
		{ "one\n  two\n\n  three\n", "one two\nthree" },
		{ "\"x\\\n  y\"", "xy" },
		{ "\"x\n  y\"", "x y" },
		{ "\"\\u00e9\\t\\x41\\\\\"", "\xc3\xa9\tA\\" },
		{ "plain # comment\n", "plain" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ynode *n;

		assert_int_equal(parse(fx, cases[i].in, NULL), 0);
		n = fx->s.docs[0].root;
		assert_int_equal(n->type, YNODE_SCALAR);
		assert_string_equal(n->str, cases[i].want);
		assert_int_equal(n->len, strlen(cases[i].want));
	}
}

/* libfyaml 0.7.12 disagrees with itself on this scalar's length. */
static void test_yaml__undecodable_scalar(void **state)
{
	struct fx *fx = *state;

	expect_one(fx, "...\n|\n-\n \n\n\r\r \r", 0, NULL, 3, 1,
		   "yaml syntax error: cannot decode this scalar");
}

static void test_yaml__nul_in_scalar(void **state)
{
	struct fx *fx = *state;
	const struct ynode *n;

	assert_int_equal(parse(fx, "a: \"a\\0b\"\n", NULL), 0);
	n = yaml_map_get(fx->s.docs[0].root, "a");
	assert_non_null(n);
	assert_int_equal(n->len, 3);
	assert_memory_equal(n->str, "a\0b", 4);
	assert_int_equal(n->quoted, 1);
}

/* libfyaml stops at a raw NUL: what follows must not vanish silently. */
static void test_yaml__raw_nul(void **state)
{
	struct fx *fx = *state;

	expect_one(fx, "a: 1\n\0\nb: 2\n", 12, NULL, 2, 1,
		   "character U+0000 is not allowed in yaml");
}

static void test_yaml__invalid_utf8(void **state)
{
	struct fx *fx = *state;

	/* libfyaml 0.7.12 loops forever on this one */
	expect_one(fx, "%Y\xfa\n", 0, NULL, 1, 3,
		   "invalid UTF-8 byte 0xfa");
	diag_release(&fx->d);
	expect_one(fx, "a: \xc3\xa9\xc3\n", 0, NULL, 1, 5,
		   "invalid UTF-8 byte 0xc3");
	diag_release(&fx->d);
	expect_one(fx, "a: \xed\xa0\x80\n", 0, NULL, 1, 4,
		   "invalid UTF-8 byte 0xed");
	diag_release(&fx->d);
	expect_one(fx, "a: b\x1b[2J\n", 0, NULL, 1, 5,
		   "character U+001B is not allowed in yaml");
	diag_release(&fx->d);
	/* a byte order mark, a non-ASCII letter, tab and CR are fine */
	assert_int_equal(parse(fx, "\xef\xbb\xbf" "a: \xc3\xa9\t\r\n", NULL),
			 0);
	assert_string_equal(yaml_map_get(fx->s.docs[0].root, "a")->str,
			    "\xc3\xa9");
}

/* libfyaml 0.7.12 corrupts its heap on this one: it must never see it. */
static void test_yaml__tab_before_indicator(void **state)
{
	struct fx *fx = *state;

	expect_one(fx, "? ?:\t?", 0, NULL, 1, 5,
		   "tab after ':' is not supported here, use spaces");
	diag_release(&fx->d);
	expect_one(fx, "? ::\t:", 0, NULL, 1, 5,
		   "tab after ':' is not supported here, use spaces");
	diag_release(&fx->d);
	/* tabs as plain separators stay fine */
	assert_int_equal(parse(fx, "a:\tb\nc: d\t# e\nf:\t-g\n", NULL), 0);
	assert_string_equal(yaml_map_get(fx->s.docs[0].root, "a")->str, "b");
	assert_string_equal(yaml_map_get(fx->s.docs[0].root, "f")->str, "-g");
}

static void test_yaml__duplicate_key(void **state)
{
	struct fx *fx = *state;
	const char *text =
		"path: /a\n"
		"Path: /b\n"
		"spec:\n"
		"  path: /c\n"
		"path: /d\n";

	expect_one(fx, text, strlen(text), NULL, 5, 1,
		   "duplicate key 'path' (first at line 1, column 1)");
}

static void test_yaml__duplicate_key_flow_quoted(void **state)
{
	struct fx *fx = *state;
	const char *text = "{a: 1, \"a\": 2}";

	expect_one(fx, text, strlen(text), NULL, 1, 8,
		   "duplicate key 'a' (first at line 1, column 2)");
}

static void test_yaml__duplicate_key_escaped(void **state)
{
	struct fx *fx = *state;
	const char *text = "\"a\\eb\": 1\n\"a\\eb\": 2\n";

	expect_one(fx, text, strlen(text), NULL, 2, 1,
		   "duplicate key 'a\\x1bb' (first at line 1, column 1)");
}

static void test_yaml__many_duplicates_capped(void **state)
{
	struct fx *fx = *state;
	size_t n = 1000, len = 0;
	char *text = xmalloc(n * 8);

	for (size_t i = 0; i < n; i++) {
		memcpy(text + len, "k: v\n", 5);
		len += 5;
	}
	assert_int_equal(parse_n(fx, text, len, NULL), -1);
	free(text);
	assert_int_equal(fx->d.n, 101);
	assert_string_equal(fx->d.v[100].msg, "too many errors, stopping");
	assert_int_equal(fx->d.v[100].line, 0);
}

static void test_yaml__anchor(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: &x 1\nb: *x\n";

	expect_one(fx, text, strlen(text), NULL, 1, 4,
		   "anchors and aliases are not allowed");
}

static void test_yaml__alias(void **state)
{
	struct fx *fx = *state;
	const char *text = "a:\n  - x\n  - *y\n";

	expect_one(fx, text, strlen(text), NULL, 3, 5,
		   "anchors and aliases are not allowed");
}

static void test_yaml__alias_bomb(void **state)
{
	struct fx *fx = *state;
	const char *text =
		"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
		"j: [*i,*i,*i,*i,*i,*i,*i,*i,*i]\n";
	clock_t t0 = clock();

	expect_one(fx, text, strlen(text), NULL, 1, 4,
		   "anchors and aliases are not allowed");
	/* nothing was expanded: the arena holds about one node per event */
	assert_true(fx->a.total < 1024 * 1024);
	assert_true(clock() - t0 < CLOCKS_PER_SEC);
}

static void test_yaml__tag(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: 1\nb: !!str 3\nc: !foo x\n";

	expect_one(fx, text, strlen(text), NULL, 2, 4, "tags are not allowed");
}

static void test_yaml__tag_on_collection(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: !seq [1]\n";

	expect_one(fx, text, strlen(text), NULL, 1, 4, "tags are not allowed");
}

static void test_yaml__non_scalar_key(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: 1\n? [x, y]\n: 2\n";

	expect_one(fx, text, strlen(text), NULL, 2, 3,
		   "mapping keys must be scalars");
	diag_release(&fx->d);
	expect_one(fx, "{{a: 1}: b}", 0, NULL, 1, 2,
		   "mapping keys must be scalars");
}

static char *repeat(const char *unit, size_t n, const char *tail,
		    size_t *len)
{
	size_t ul = strlen(unit), tl = strlen(tail);
	char *s = xmalloc(ul * n + tl);

	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	memcpy(s + ul * n, tail, tl);
	*len = ul * n + tl;
	return s;
}

static void test_yaml__deep_flow(void **state)
{
	struct fx *fx = *state;
	size_t len;
	char *text = repeat("[", 100000, "", &len);

	expect_one(fx, text, len, NULL, 1, 65, "nesting deeper than 64 levels");
	free(text);
}

static void test_yaml__deep_flow_map(void **state)
{
	struct fx *fx = *state;
	size_t len;
	char *text = repeat("{a: ", 100000, "", &len);

	expect_one(fx, text, len, NULL, 1, 4 * 64 + 1,
		   "nesting deeper than 64 levels");
	free(text);
}

static void test_yaml__deep_block(void **state)
{
	struct fx *fx = *state;
	size_t len;
	char *text = repeat("- ", 100000, "x\n", &len);

	expect_one(fx, text, len, NULL, 1, 2 * 64 + 1,
		   "nesting deeper than 64 levels");
	free(text);
}

static void test_yaml__depth_at_limit(void **state)
{
	struct fx *fx = *state;
	struct ylimits lim = yaml_default_limits;
	size_t len;
	char *text = repeat("[", 64, "", &len);
	char *closed = xmalloc(2 * 64);
	const struct ynode *n;
	size_t depth = 0;

	memcpy(closed, text, 64);
	memset(closed + 64, ']', 64);
	assert_int_equal(parse_n(fx, closed, 128, NULL), 0);
	for (n = fx->s.docs[0].root; n->n; n = n->vals[0])
		depth++;
	assert_int_equal(depth, 63);

	lim.max_depth = 3;
	expect_one(fx, "a:\n  b:\n    c:\n      d: 1\n", 0, &lim, 4, 7,
		   "nesting deeper than 3 levels");
	free(closed);
	free(text);
}

static void test_yaml__scalar_cap(void **state)
{
	struct fx *fx = *state;
	struct ylimits lim = yaml_default_limits;

	lim.max_scalar = 8;
	assert_int_equal(parse(fx, "a: 12345678\n", &lim), 0);
	expect_one(fx, "a: 12345678\nb: \"123456789\"\nc: 1234567890\n", 0,
		   &lim, 2, 4, "scalar longer than 8 bytes");
}

static void test_yaml__docs_cap(void **state)
{
	struct fx *fx = *state;
	struct ylimits lim = yaml_default_limits;
	const char *text = "a\n---\nb\n---\nc\n---\nd\n";

	lim.max_docs = 3;
	assert_int_equal(parse(fx, "a\n---\nb\n---\nc\n", &lim), 0);
	assert_int_equal(fx->s.n, 3);
	expect_one(fx, text, strlen(text), &lim, 6, 1,
		   "more than 3 documents");
}

static void test_yaml__docs_cap_empty(void **state)
{
	struct fx *fx = *state;
	struct ylimits lim = yaml_default_limits;
	size_t len;
	char *text = repeat("---\n", 100000, "", &len);

	expect_one(fx, text, len, NULL, 10001, 1, "more than 10000 documents");
	free(text);
	diag_release(&fx->d);
	lim.max_docs = 1;
	expect_one(fx, "a: 1\n...\nb: 2\n", 0, &lim, 3, 1,
		   "more than 1 documents");
}

static void test_yaml__node_cap(void **state)
{
	struct fx *fx = *state;
	struct ylimits lim = yaml_default_limits;
	const char *text = "a: 1\nb: 2\nc: 3\n";

	lim.max_nodes = 5;
	expect_one(fx, text, strlen(text), &lim, 3, 1, "more than 5 nodes");
	diag_release(&fx->d);
	/* the count is per file, across documents */
	expect_one(fx, "[a, b]\n---\n[c, d]\n", 0, &lim, 3, 5,
		   "more than 5 nodes");
}

static void test_yaml__syntax_error(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: 1\nb\nc: 2\n";

	expect_one(fx, text, strlen(text), NULL, 2, 1,
		   "yaml syntax error: could not find expected ':'");
	diag_release(&fx->d);
	expect_one(fx, "a: \"open\n", 0, NULL, 1, 5,
		   "yaml syntax error: "
		   "double-quoted scalar without closing quote");
}

static void test_yaml__syntax_error_after_problem(void **state)
{
	struct fx *fx = *state;
	const char *text = "a: !t 1\nb\nc: 2\n";

	assert_int_equal(parse(fx, text, NULL), -1);
	assert_int_equal(fx->d.n, 2);
	assert_string_equal(fx->d.v[0].msg, "tags are not allowed");
	assert_string_equal(fx->d.v[1].msg,
			    "yaml syntax error: could not find expected ':'");
}

static void test_yaml__out_untouched_on_error(void **state)
{
	struct fx *fx = *state;

	fx->s.docs = NULL;
	fx->s.n = 42;
	assert_int_equal(parse(fx, "a: 1\na: 2\n", NULL), -1);
	assert_int_equal(fx->s.n, 42);
	assert_null(fx->s.docs);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_yaml__tree),
		T(test_yaml__empty_containers),
		T(test_yaml__multi_doc),
		T(test_yaml__empty_input),
		T(test_yaml__quoted),
		T(test_yaml__single_quoted),
		T(test_yaml__decoded_styles),
		T(test_yaml__undecodable_scalar),
		T(test_yaml__nul_in_scalar),
		T(test_yaml__raw_nul),
		T(test_yaml__invalid_utf8),
		T(test_yaml__tab_before_indicator),
		T(test_yaml__duplicate_key),
		T(test_yaml__duplicate_key_flow_quoted),
		T(test_yaml__duplicate_key_escaped),
		T(test_yaml__many_duplicates_capped),
		T(test_yaml__anchor),
		T(test_yaml__alias),
		T(test_yaml__alias_bomb),
		T(test_yaml__tag),
		T(test_yaml__tag_on_collection),
		T(test_yaml__non_scalar_key),
		T(test_yaml__deep_flow),
		T(test_yaml__deep_flow_map),
		T(test_yaml__deep_block),
		T(test_yaml__depth_at_limit),
		T(test_yaml__scalar_cap),
		T(test_yaml__docs_cap),
		T(test_yaml__docs_cap_empty),
		T(test_yaml__node_cap),
		T(test_yaml__syntax_error),
		T(test_yaml__syntax_error_after_problem),
		T(test_yaml__out_untouched_on_error),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
