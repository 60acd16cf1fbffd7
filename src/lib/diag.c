/* SPDX-License-Identifier: MIT */
/* Collected diagnostics on user input, sorted and printed as FILE:LINE:COL. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/diag.h"
#include "lib/redact.h"
#include "lib/err.h"

void diag_init(struct diag *d)
{
	d->v = NULL;
	d->n = d->cap = 0;
}

void diag_release(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	diag_init(d);
}

void diag_add(struct diag *d, const char *file, int line, int col,
	      const char *fmt, ...)
{
	struct diag_item *it;
	va_list ap, cp;
	int n;

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	it = &d->v[d->n];

	va_start(ap, fmt);
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	BUG_ON(n < 0);
	it->msg = xmalloc((size_t)n + 1);
	vsnprintf(it->msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (redact_count() || strstr(it->msg, "://")) {
		struct buf b = BUF_INIT;
		redact_buf(&b, it->msg, strlen(it->msg));
		free(it->msg);
		it->msg = buf_detach(&b);
	}

	it->file = file ? xstrdup(file) : NULL;
	it->line = line > 0 ? line : 0;
	it->col = col > 0 ? col : 0;
	d->n++;
}

static int diag_cmp(const struct diag_item *a, const struct diag_item *b)
{
	if (a->file != b->file) {
		int r;

		if (!a->file)
			return -1;
		if (!b->file)
			return 1;
		r = strcmp(a->file, b->file);
		if (r)
			return r;
	}
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

/*
 * Bottom-up merge sort: qsort() is not stable, and two problems reported
 * at the same position must keep the order in which they were found.
 */
void diag_sort(struct diag *d)
{
	struct diag_item *src = d->v, *dst, *tmp;
	size_t n = d->n;

	if (n < 2)
		return;
	dst = xmalloc(n * sizeof(*dst));
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = mid + width < n ? mid + width : n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi) {
				if (diag_cmp(&src[j], &src[i]) < 0)
					dst[k++] = src[j++];
				else
					dst[k++] = src[i++];
			}
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		tmp = src;
		src = dst;
		dst = tmp;
	}
	if (src != d->v) {
		memcpy(d->v, src, n * sizeof(*src));
		dst = src;
	}
	free(dst);
}

void diag_print(const struct diag *d, FILE *fp)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_item *it = &d->v[i];

		if (!it->file)
			fprintf(fp, "error: %s\n", it->msg);
		else if (!it->line)
			fprintf(fp, "error: %s: %s\n", it->file, it->msg);
		else if (!it->col)
			fprintf(fp, "error: %s:%d: %s\n", it->file, it->line,
				it->msg);
		else
			fprintf(fp, "error: %s:%d:%d: %s\n", it->file, it->line,
				it->col, it->msg);
	}
}
