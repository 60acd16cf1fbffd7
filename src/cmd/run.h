/* SPDX-License-Identifier: MIT */
/* One command run over a revision: plan, apply, validate, drift and capture share it. */
#ifndef DL_RUN_H
#define DL_RUN_H

#include "cmd/cmd.h"

struct run {
	struct opts o;
	struct pass p;
	struct db *db;
	int rejected;
	int import_dir;		/* validate DIR: the working copy, not a commit */
	int fresh;		/* validated now (not from the cache): store it at the end */
	int readonly;		/* drift, capture: next to a running agent, offline, no lock */
	int nocache;		/* plan -o yaml: parse the revision, never the desired-state cache */
};

/* fetch -> resolve -> read tree -> parse -> validate; prints its errors.
 * 0, or an exit code (r->rejected: the diagnostics are in r->p.diag). */
int run_prepare(struct run *r, int need_db);
/* The same for the applied revision, from the git cache, with the source,
 * entry and root recorded with it (drift, capture). */
int drift_prepare(struct run *r, struct arena *a, const char *usage);
void run_release(struct run *r);
/* Each planned update's content diff (secrets as digests). */
void fill_diffs(struct pass *p);

#endif
