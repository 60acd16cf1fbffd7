/* SPDX-License-Identifier: MIT */
/* Semantic versions (semver 2.0.0) and npm-style ranges, for --semver: pure, no I/O. */
#ifndef DL_SEMVER_H
#define DL_SEMVER_H

#include <stddef.h>
#include <stdint.h>

#define SEMVER_MAX_TEXT 256	/* a version or range longer than this is refused */
#define SEMVER_MAX_COMPS 32	/* comparators in a range, all sets together */

struct semver {
	uint64_t major, minor, patch;
	char pre[SEMVER_MAX_TEXT];	/* pre-release identifiers ("rc.1"), "" when none */
};

/*
 * Parse a full version "1.2.3", "1.2.3-rc.1" or "1.2.3+build", with an
 * optional leading 'v'. Numbers have no leading zeros; build metadata is
 * ignored. Returns 0, or -1 (with err_set) when s is not a version.
 */
int semver_parse(const char *s, struct semver *out);

/* <0, 0, >0: precedence of a against b (semver 2.0.0 section 11). */
int semver_cmp(const struct semver *a, const struct semver *b);

enum semver_op { SEMVER_EQ, SEMVER_LT, SEMVER_LE, SEMVER_GT, SEMVER_GE };

struct semver_comp {
	enum semver_op op;
	struct semver v;
	int set;		/* index of the ||-separated set it belongs to */
	int allows_pre;		/* written with a pre-release: admits pre-releases of its X.Y.Z */
};

struct semver_range {
	struct semver_comp c[SEMVER_MAX_COMPS];
	size_t n;
	int nsets;
};

/*
 * Parse a range: comparators (=, <, <=, >, >=, with full or partial
 * versions), caret (^1.2), tilde (~1.2.3), x-ranges (1.x, 1.2.*, *),
 * hyphen ranges (1.2.3 - 2.0.0), separated by spaces (and) and || (or).
 * Returns 0, or -1 with err_set naming what is wrong.
 */
int semver_range_parse(const char *s, struct semver_range *out);

/* 1 when v satisfies r. A pre-release version satisfies a set only when a
 * comparator of that set names a pre-release of the same major.minor.patch
 * (the npm rule: "^1.2" never picks 1.3.0-rc.1). */
int semver_range_match(const struct semver_range *r, const struct semver *v);

#endif
