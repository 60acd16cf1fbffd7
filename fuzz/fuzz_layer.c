/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a layer.yaml and a manifest, the patches of the one
 * merged into the documents of the other (with host variables), then the
 * schema, the kind checks and the graph. The input is the layer text, a
 * line "---8<---", and the manifest text; without that line, the whole
 * input is the layer and a fixed manifest is patched.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "core/pass.h"
#include "core/vars.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed[] =
	"apiVersion: driftless/v1\n"
	"kind: File\n"
	"metadata: {name: motd, labels: {role: web}}\n"
	"spec:\n"
	"  path: /etc/motd\n"
	"  content: \"base ${vars.env}\\n\"\n"
	"  mode: \"0644\"\n"
	"---\n"
	"apiVersion: driftless/v1\n"
	"kind: Directory\n"
	"metadata: {name: etc-app}\n"
	"spec: {path: /etc/app, mode: \"0755\"}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *roots[] = { "/" };
	static const char *const keys[] = { "env", "port" };
	static const char *const vals[] = { "prod", "${vars.env}" };
	static const struct vars vars = { "fuzz-host", "debian", "x86_64", keys, vals, 2 };
	struct policy pol = { .roots = roots, .nroots = 1, .max_file_size = 1 << 20 };
	const char *text = (const char *)data, *man = fixed;
	size_t layer_len = size, man_len = sizeof(fixed) - 1;
	const char *cut = size >= 9 ? memmem(text, size, "\n---8<---\n", 10) : NULL;
	if (cut) {
		layer_len = (size_t)(cut - text) + 1;
		man = cut + 10;
		man_len = size - layer_len - 9;
	}
	struct pass p;
	pass_init(&p);
	p.policy = &pol;
	p.root.path = (char *)"/nonexistent-fuzz-root";	/* owners fall back to NSS */
	p.entry = "";
	p.vars = size && (data[0] & 1) ? &vars : NULL;	/* validate: syntax only */
	manifest_parse_layered(&p, "hosts/web", text, layer_len, "base/motd.yaml", man, man_len);
	pass_validate(&p);
	struct buf out = BUF_INIT;
	manifest_emit(&p, &out);
	buf_release(&out);
	pass_drop_yaml(&p);
	pass_release(&p);
	return 0;
}
