/* SPDX-License-Identifier: MIT */
/* inotify watches on directories of managed paths; events name the path that changed. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "daemon/watch.h"
#include "lib/err.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | \
		    IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
		    IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

int watch_init(struct watch *w)
{
	memset(w, 0, sizeof(*w));
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return err_set_errno("cannot start watching for drift (inotify)");
	arena_init(&w->arena);
	hmap_init(&w->want);
	return 0;
}

void watch_release(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->dirs);
	w->dirs = NULL;
	w->ndirs = 0;
	hmap_release(&w->want);
	arena_release(&w->arena);
}

static void want(struct watch *w, const char *dir)
{
	if (!hmap_get(&w->want, dir)) {
		char *d = arena_strdup(&w->arena, dir);
		hmap_put(&w->want, d, d);
	}
}

int watch_sync(struct watch *w, struct pass *p)
{
	/* drop every watch and add them again: simpler than diffing, and cheap
	 * because watches are per directory; the fd stays the same */
	for (int wd = 0; wd < w->ndirs; wd++)
		if (w->dirs[wd])
			inotify_rm_watch(w->fd, wd);
	free(w->dirs);
	w->dirs = NULL;
	w->ndirs = 0;
	w->nwatches = 0;
	hmap_release(&w->want);
	hmap_init(&w->want);
	arena_release(&w->arena);
	arena_init(&w->arena);

	const char *root = strcmp(p->root.path, "/") ? p->root.path : "";
	for (size_t i = 0; i < p->nres; i++) {
		struct resource *res = p->res[i];
		if (!res->path)
			continue;
		char *dir = arena_strdup(&w->arena, res->path);
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		want(w, dir);
		if (res->kind == kind_find("Directory"))
			want(w, res->path);
	}
	size_t it = 0;
	const char *dir;
	while (hmap_next(&w->want, &it, &dir, NULL)) {
		char *host = xasprintf("%s%s", root, dir);
		int wd = inotify_add_watch(w->fd, host, WATCH_MASK);
		free(host);
		if (wd < 0)
			continue;	/* not there yet: the next full pass watches it */
		if (wd >= w->ndirs) {
			int n = wd + 64;
			w->dirs = xrealloc(w->dirs, (size_t)n * sizeof(*w->dirs));
			memset(w->dirs + w->ndirs, 0, (size_t)(n - w->ndirs) * sizeof(*w->dirs));
			w->ndirs = n;
		}
		w->dirs[wd] = (char *)dir;
		w->nwatches++;
	}
	return 0;
}

int watch_read(struct watch *w, watch_cb cb, void *ctx, int *overflow)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return err_set_errno("cannot read drift events");
		}
		if (n == 0)
			return 0;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				*overflow = 1;
				continue;
			}
			if (ev->wd < 0 || ev->wd >= w->ndirs || !w->dirs[ev->wd])
				continue;
			const char *dir = w->dirs[ev->wd];
			if (ev->mask & IN_IGNORED) {
				w->dirs[ev->wd] = NULL;
				w->nwatches--;
				cb(ctx, dir);
				continue;
			}
			if (!ev->len || !ev->name[0]) {
				cb(ctx, dir);
				continue;
			}
			/* our own temporaries come and go on every write */
			if (!strncmp(ev->name, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)))
				continue;
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", ev->name);
			cb(ctx, path);
		}
	}
}
