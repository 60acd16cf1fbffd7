/* SPDX-License-Identifier: MIT */
/* libFuzzer target: one manifest file through the schema, the kind checks and the graph. */
#include <stddef.h>
#include <stdint.h>
#include "core/pass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *roots[] = { "/" };
	struct policy pol = { .roots = roots, .nroots = 1, .max_file_size = 1 << 20 };
	struct pass p;
	pass_init(&p);
	p.policy = &pol;
	p.root.path = (char *)"/nonexistent-fuzz-root";	/* owners fall back to NSS */
	p.entry = "";
	manifest_parse(&p, "hosts/web/fuzz.yaml", (const char *)data, size);
	pass_validate(&p);
	pass_drop_yaml(&p);
	pass_release(&p);
	return 0;
}
