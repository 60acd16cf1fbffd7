/* SPDX-License-Identifier: MIT */
/* Layers (layer.yaml): explicit composition of resources, and JSON merge patches over them. */
#ifndef DL_LAYER_H
#define DL_LAYER_H

#include "core/model.h"
#include "source/yaml.h"

#define LAYER_FILE "layer.yaml"
#define LAYER_MAX_ENTRIES 10000	/* resources, and patches, of one layer */
#define LAYER_MAX_DEPTH 64	/* layers within layers */

struct layer_patch {
	const char *kind, *name;	/* the target; NULL matches any */
	const struct ynode *patch;	/* a mapping; each node's file is the layer's */
	struct srcpos pos;		/* the target, for "matches nothing" */
	int hits;
};

struct layer {
	const char *dir;		/* repository directory of the layer ("" for the root) */
	const char *file;		/* dir/layer.yaml */
	const char **resources;		/* normalised repository paths, "" for the root */
	struct srcpos *res_pos;		/* where each is written */
	size_t nresources;
	struct layer_patch *patches;
	size_t npatches;
};

/*
 * Parse the text of a layer.yaml in directory dir into out. YAML nodes go
 * into a, which must live as long as the patches are applied; file names
 * and paths (kept in positions) into keep. Every problem goes to diag as
 * FILE:LINE:COL. Returns 0, or -1 when diag received something.
 */
int layer_parse(struct layer *out, struct arena *a, struct arena *keep, const char *dir,
		const char *data, size_t len, struct diag *diag);

/*
 * RFC 7386 JSON merge patch of target (may be NULL) with patch. Neither is
 * changed: the maps on the patch's path are copied into a, everything else
 * is shared. Patch values keep their own positions.
 */
struct ynode *layer_merge(struct arena *a, const struct ynode *target, const struct ynode *patch);

/*
 * Apply, in order, the patches of l whose target matches document root
 * (counting hits). Returns the patched root, or NULL after a diagnostic
 * when a patch would change the document's kind or metadata.name.
 */
struct ynode *layer_apply(struct layer *l, struct arena *a, struct ynode *root, struct diag *diag);

/* Report every patch of l that matched no resource. */
void layer_check_hits(const struct layer *l, struct diag *diag);

#endif
