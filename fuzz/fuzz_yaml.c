/* SPDX-License-Identifier: MIT */
/* libFuzzer target: any input must parse, or be rejected with diagnostics. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "lib/arena.h"
#include "lib/diag.h"
#include "lib/err.h"
#include "source/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walk the tree depth first so every node the parser hands out is read. */
static void fuzz_walk(const struct ynode *root)
{
	struct {
		const struct ynode *node;
		size_t i;
	} stack[65];
	size_t n = 0;

	stack[n].node = root;
	stack[n++].i = 0;
	while (n) {
		const struct ynode *node = stack[n - 1].node;
		size_t i = stack[n - 1].i++;

		BUG_ON(node->line < 0 || node->col < 0);
		if (node->type == YNODE_SCALAR) {
			BUG_ON(!node->str || node->str[node->len] != '\0');
			n--;
			continue;
		}
		if (i == node->n) {
			n--;
			continue;
		}
		if (node->type == YNODE_MAP) {
			const struct ynode *k = node->keys[i];

			BUG_ON(k->type != YNODE_SCALAR || k->str[k->len]);
		}
		/* the default depth limit is 64 */
		BUG_ON(n == sizeof(stack) / sizeof(stack[0]));
		stack[n].node = node->vals[i];
		stack[n++].i = 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct diag d;
	struct ystream s;
	int rc;

	arena_init(&a);
	diag_init(&d);
	memset(&s, 0, sizeof(s));
	rc = yaml_parse(&a, "fuzz.yaml", (const char *)data, size,
			&yaml_default_limits, &s, &d);
	BUG_ON(rc == 0 && d.n != 0);
	BUG_ON(rc != 0 && d.n == 0);
	if (rc == 0) {
		for (size_t i = 0; i < s.n; i++) {
			BUG_ON(!s.docs[i].root);
			fuzz_walk(s.docs[i].root);
			yaml_map_get(s.docs[i].root, "kind");
			yaml_is_null(s.docs[i].root);
		}
	}
	diag_sort(&d);
	arena_release(&a);
	diag_release(&d);
	return 0;
}
