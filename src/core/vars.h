/* SPDX-License-Identifier: MIT */
/* Host variables: ${host.name}, ${host.os}, ${host.arch} and ${vars.KEY} in manifests. */
#ifndef DL_VARS_H
#define DL_VARS_H

#include <stddef.h>
#include "lib/arena.h"
#include "lib/buf.h"

struct pass;
struct fsroot;

struct vars {
	const char *host_name;		/* gethostname() */
	const char *host_os;		/* ID= of the root's os-release, else "linux" */
	const char *host_arch;		/* uname -m */
	const char *const *keys;	/* vars: of the agent config */
	const char *const *vals;
	size_t n;
};

#define VARS_MAX_KEY 64

/* NULL when key may name a variable: [A-Za-z_][A-Za-z0-9_]*, at most VARS_MAX_KEY bytes. */
const char *vars_check_key(const char *key);

/* 1 when s[0..len) holds "${" (a reference or an escaped "$${"). */
int vars_has_ref(const char *s, size_t len);

/*
 * Substitute ${host.name}, ${host.os}, ${host.arch} and ${vars.KEY} in
 * s[0..len), appending the result to out; "$${" is a literal "${". There is
 * no nesting, no default and no lookup beyond these: a substituted value is
 * never scanned again. With v NULL only the syntax is checked (validate has
 * no host) and out may be NULL. The result may grow to max bytes. Returns
 * 0, or -1 with *why (a message, in a or static) and *at (the byte offset
 * of the offending "${").
 */
int vars_expand(const struct vars *v, struct arena *a, const char *s, size_t len, size_t max,
		struct buf *out, const char **why, size_t *at);

/* Line and column (1-based, in bytes) of byte offset at in s. */
void vars_line_col(const char *s, size_t at, int *line, int *col);

/* Set p->vars: the facts of this machine (the os of p->root, which must be
 * open) and the variables of the agent config, copied into p->arena. */
void pass_set_vars(struct pass *p, const char *const *keys, const char *const *vals, size_t n);

#endif
