/* SPDX-License-Identifier: MIT */
/* Drift watches: inotify on the directories that hold managed paths, not one watch per file. */
#ifndef DL_WATCH_H
#define DL_WATCH_H

#include "core/model.h"

struct watch {
	int fd;			/* inotify fd, non-blocking */
	char **dirs;		/* host path watched by each wd (index = wd) */
	int ndirs;
	int nwatches;
	struct hmap want;	/* host path -> 1: directories to watch */
	struct arena arena;
};

int watch_init(struct watch *w);
void watch_release(struct watch *w);
/* Watch the parent of every managed path and every managed directory of p
 * (those that exist), replacing what was watched before. */
int watch_sync(struct watch *w, struct pass *p);

/* Read pending events; for each, cb gets the host path it concerns (the
 * directory itself for events on it). *overflow is set on IN_Q_OVERFLOW. */
typedef void (*watch_cb)(void *ctx, const char *path);
int watch_read(struct watch *w, watch_cb cb, void *ctx, int *overflow);

#endif
