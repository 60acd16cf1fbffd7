/* SPDX-License-Identifier: MIT */
/*
 * The one audited layer through which every host write goes. All paths are
 * absolute host paths such as "/etc/motd"; they are resolved beneath the root
 * directory fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS), so a symlink in any component (including the last,
 * unless stated otherwise) or a ".." escape fails with an error rather than
 * being followed. Paths handed in are already normalised (no "." or ".."
 * components, no double slashes); fs functions still refuse "..".
 */
#ifndef DL_FS_H
#define DL_FS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "lib/buf.h"

/* Temporaries carry this prefix so a later start can recognise and remove them. */
#define FS_TMP_PREFIX ".driftless-tmp."

struct fs_dircache;

struct fsroot {
	int fd;		/* O_PATH|O_DIRECTORY fd of the root */
	char *path;	/* as given, for messages */
	struct fs_dircache *dc;	/* fs_lstat's last parent directory */
};

int fs_root_open(struct fsroot *out, const char *dir);
void fs_root_close(struct fsroot *r);
/* A view of r for another thread: the same root fd (borrowed), its own
 * directory cache. Only fs_lstat is meant to be used through it. */
void fs_root_view(const struct fsroot *r, struct fsroot *view);
void fs_root_view_close(struct fsroot *view);

/*
 * 1 when paths are resolved with openat2, 0 when with the component-wise
 * O_NOFOLLOW walk: on kernels without openat2 (ENOSYS), or when the
 * environment variable DRIFTLESS_FS_NO_OPENAT2=1 was set at the first call
 * (for tests). Decided once per process.
 */
int fs_has_openat2(void);

/* Forget the parent directory fs_lstat keeps open between calls (call it
 * before observing again after anything may have changed directories). */
void fs_root_forget(const struct fsroot *r);

/*
 * lstat(path) beneath the root. Consecutive calls for paths in the same
 * directory reuse one directory fd (resolved beneath the root, no symlinks)
 * until fs_root_forget(); writes never use it. Returns 0 and fills st when it exists,
 * 1 when it or a parent does not exist (ENOENT/ENOTDIR), -1 on other errors
 * (a symlinked parent is an error: "'%s' has a symlink in its path").
 */
int fs_lstat(const struct fsroot *r, const char *path, struct stat *st);

/* Open an existing file or directory beneath the root, never following a
 * symlink. flags as for open(2) (O_NOFOLLOW|O_CLOEXEC are added). Returns
 * the fd or -1 (errno kept). */
int fs_open(const struct fsroot *r, const char *path, int flags);

/* Open the parent directory of path (O_RDONLY|O_DIRECTORY) and point *base at
 * the last component inside path. Returns the fd or -1. */
int fs_open_parent(const struct fsroot *r, const char *path, const char **base);

/* Read a whole regular file (refusing anything else, a symlink included,
 * and anything over max bytes), appending it to out on success only. */
int fs_read(const struct fsroot *r, const char *path, size_t max, struct buf *out);
/* All of data to fd, through EINTR and short writes: 0, or -1 with errno. */
int fs_write_all(int fd, const void *data, size_t len);
/* len bytes of fd from offset at, through EINTR and short reads: 0, or -1
 * (with errno, or EIO when the file ends first). */
int fs_pread_all(int fd, void *data, size_t len, off_t at);

/* Read the target of a symlink, appending it to out on success only. */
int fs_readlink(const struct fsroot *r, const char *path, struct buf *out);

/*
 * Replace path atomically with data: temporary file FS_TMP_PREFIX* created
 * with O_CREAT|O_EXCL|O_NOFOLLOW in the same directory at mode & 0600 (so no
 * one else can read it early), fchown(uid, gid) when either is not (uid_t)-1,
 * fchmod(mode) before any data, write, fsync, renameat over path, fsync of
 * the directory. On any failure the temporary is removed and path is
 * unchanged. Refuses when path exists and is a directory. When path is a
 * symlink, the rename replaces the link itself with the regular file: the
 * link is never followed and its target is not touched.
 */
int fs_write_atomic(const struct fsroot *r, const char *path, const void *data,
		    size_t len, mode_t mode, uid_t uid, gid_t gid);

/* Create a symlink atomically (temporary link, renameat over path, fsync dir);
 * lchown when uid or gid is not -1. Replaces a file or symlink at path;
 * refuses a directory. target is stored as given and never resolved. */
int fs_symlink_atomic(const struct fsroot *r, const char *path, const char *target,
		      uid_t uid, gid_t gid);

/* mkdir one level (the parent must exist), then chown/chmod it via an fd
 * opened with O_NOFOLLOW|O_DIRECTORY; fsync of the parent. EEXIST is an error. */
int fs_mkdir(const struct fsroot *r, const char *path, mode_t mode, uid_t uid, gid_t gid);

/*
 * chmod/chown without following a symlink (uid/gid -1 = leave). Only regular
 * files, directories and symlinks are accepted. A symlink's own owner is
 * changed; chmod of a symlink succeeds and does nothing (Linux symlinks have
 * no mode). chown of a regular file clears its setuid/setgid bits, so
 * callers that do both chown first.
 */
int fs_chmod(const struct fsroot *r, const char *path, mode_t mode);
int fs_chown(const struct fsroot *r, const char *path, uid_t uid, gid_t gid);

/* Remove a non-directory / an empty directory; fsync of the parent. */
int fs_unlink(const struct fsroot *r, const char *path);
int fs_rmdir(const struct fsroot *r, const char *path);

/*
 * Staged writes: many files replaced with the same guarantees as
 * fs_write_atomic but with the syncs shared. fs_stage_write writes a
 * temporary (created 0600, chown, chmod, data) and keeps it; fs_batch_sync
 * makes every staged temporary durable (fsync of each when there are few,
 * one syncfs per file system when there are many); fs_batch_commit renames
 * one into place; fs_batch_finish makes the renames durable. Whatever was
 * not committed is removed by fs_batch_release.
 */
#define FS_BATCH_FSYNC_MAX 16

struct fs_staged {
	char *path;
	char tmp[256];
	int fd;			/* kept open while the batch is small or anon, else -1 */
	int dirfd;		/* likewise */
	dev_t dev;
	int committed;
	int anon;		/* an unnamed O_TMPFILE, linked (not renamed) into place */
	char *failed;		/* why its early link (with its chunk) failed */
};

struct fs_batch {
	struct fs_staged *v;
	size_t n, cap;
	size_t bytes;
	int *devfds;		/* one directory fd per file system, for syncfs */
	dev_t *devs;
	size_t ndevs;
	size_t nanon;		/* unnamed files holding descriptors until linked */
	size_t anon_from;	/* the first entry not yet considered for an early link */
};

void fs_batch_init(struct fs_batch *b);
/* Returns the index of the staged write, or -1. */
int fs_stage_write(const struct fsroot *r, struct fs_batch *b, const char *path,
		   const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid);
int fs_batch_sync(struct fs_batch *b);
int fs_batch_commit(const struct fsroot *r, struct fs_batch *b, size_t i);
int fs_batch_finish(const struct fsroot *r, struct fs_batch *b);
/* Remove uncommitted temporaries and free everything; b is reusable. */
void fs_batch_release(const struct fsroot *r, struct fs_batch *b);

/* Remove FS_TMP_PREFIX* regular files and symlinks in directory dir (beneath
 * the root) left by an interrupted write. Returns the number removed or -1. */
int fs_sweep_temps(const struct fsroot *r, const char *dir);

#endif
