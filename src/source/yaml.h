/* SPDX-License-Identifier: MIT */
/* The only seam to libfyaml: parse YAML text into a small, position-carrying tree. */
#ifndef DL_YAML_H
#define DL_YAML_H

#include <stddef.h>
#include "lib/arena.h"
#include "lib/diag.h"

enum ynode_type { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_type type;
	int line, col;		/* 1-based position of the node's first character */
	const char *file;	/* NULL: the file parsed; set on nodes a layer's patch brought in */
	/* YNODE_SCALAR */
	const char *str;	/* NUL-terminated; may hold NUL bytes, len is authoritative */
	size_t len;
	int quoted;		/* 1: single, double quoted, literal or folded; 0: plain */
	/* YNODE_MAP: keys[i] (always scalars) -> vals[i]; YNODE_SEQ: vals[i] */
	struct ynode **keys;
	struct ynode **vals;
	size_t n;
};

struct ydoc {
	struct ynode *root;	/* never NULL for a stored document */
	int index;		/* 0-based index of the document in its file */
	int line, col;
};

struct ystream {
	struct ydoc *docs;
	size_t n;
};

struct ylimits {
	size_t max_depth;	/* nesting of maps and sequences */
	size_t max_nodes;	/* per file */
	size_t max_scalar;	/* bytes of one scalar */
	size_t max_docs;	/* documents per file */
};

extern const struct ylimits yaml_default_limits;

/*
 * Parse data (len bytes, need not be NUL-terminated) as a stream of YAML
 * documents into out, allocating from a. Anchors, aliases and tags are
 * rejected; duplicate keys (exact byte match) are rejected; keys must be
 * scalars; limits are enforced while consuming events, before building
 * anything larger. Empty documents are skipped. Every problem is added to
 * diag as FILE:LINE:COL (file is used as given). Returns 0 when the stream
 * was parsed without problems, -1 when diag received at least one.
 */
int yaml_parse(struct arena *a, const char *file, const char *data, size_t len,
	       const struct ylimits *lim, struct ystream *out, struct diag *diag);

/* Lookup helpers. yaml_map_get() returns NULL when the key is absent. */
struct ynode *yaml_map_get(const struct ynode *map, const char *key);
/* A plain scalar that YAML would read as null: "", "~", "null", "Null", "NULL". */
int yaml_is_null(const struct ynode *n);

#endif
