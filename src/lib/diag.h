/* SPDX-License-Identifier: MIT */
/* Diagnostics: problems in user input, collected and reported as FILE:LINE:COL. */
#ifndef DL_DIAG_H
#define DL_DIAG_H

#include <stdio.h>
#include <stddef.h>

struct diag_item {
	char *file;	/* may be NULL for problems not tied to a file */
	int line, col;	/* 1-based; 0 when unknown */
	char *msg;
};

struct diag {
	struct diag_item *v;
	size_t n, cap;
};

void diag_init(struct diag *d);
void diag_release(struct diag *d);
void diag_add(struct diag *d, const char *file, int line, int col,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sort by file, line, col (stable) so output is deterministic. */
void diag_sort(struct diag *d);
/* Print each as "error: FILE:LINE:COL: msg" (or "error: msg"). */
void diag_print(const struct diag *d, FILE *fp);

#endif
