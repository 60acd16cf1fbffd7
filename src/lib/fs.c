/* SPDX-License-Identifier: MIT */
/* Safe opens beneath a root directory fd and atomic replacement of host files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include "lib/err.h"
#include "lib/fs.h"

/*
 * Every path is resolved in two steps: the parent directory is opened beneath
 * the root (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS, or a component-wise O_NOFOLLOW walk where openat2
 * is missing), and the last component is then only ever touched through that
 * held directory fd with *at() calls that do not follow symlinks. A user who
 * can write to a directory on the way can swap entries as often as they like:
 * the worst they get is an error, never a write outside the root.
 */

#define FS_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* Random hex digits in a temporary name. */
#define FS_TMP_RAND 12
/* Room in a temporary name besides the target's base name. */
#define FS_TMP_EXTRA (sizeof(FS_TMP_PREFIX) - 1 + 1 + FS_TMP_RAND)
/* Attempts at a fresh temporary name before giving up. */
#define FS_TMP_TRIES 16

/*
 * How paths are resolved: -1 not decided yet, 1 openat2, 0 the component
 * walk. Decided once: DRIFTLESS_FS_NO_OPENAT2=1 forces the walk (so both
 * can be tested on one kernel), and openat2 failing with ENOSYS switches
 * to the walk for good.
 */
static int fs_openat2_state = -1;

int fs_has_openat2(void)
{
	if (fs_openat2_state < 0) {
		const char *env = getenv("DRIFTLESS_FS_NO_OPENAT2");
		fs_openat2_state = !(env && !strcmp(env, "1"));
	}
	return fs_openat2_state;
}

static void fs_close(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

/*
 * An entry that openat(O_DIRECTORY | O_NOFOLLOW) refused with ENOTDIR may
 * be a symlink; report that as openat2 would (ELOOP).
 */
static void fs_enotdir_to_eloop(int dirfd, const char *name)
{
	struct stat st;

	if (errno != ENOTDIR)
		return;
	if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISLNK(st.st_mode))
		errno = ELOOP;
	else
		errno = ENOTDIR;
}

/*
 * The fallback for kernels without openat2: open one component at a time
 * with O_NOFOLLOW, each intermediate one O_PATH | O_DIRECTORY. ".." was
 * refused by fs_rel() already and is refused here again; magic links are
 * symlinks and so refused like any other.
 */
static int fs_walk(int rootfd, const char *rel, int flags)
{
	char name[NAME_MAX + 1];
	const char *p = rel, *end, *next;
	size_t len;
	int cur, fd;

	cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -1;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			fd = openat(cur, ".", flags | O_CLOEXEC);
			fs_close(cur);
			return fd;
		}
		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (len > NAME_MAX) {
			fs_close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if (!strcmp(name, "..")) {
			fs_close(cur);
			errno = EXDEV;
			return -1;
		}
		for (next = end; *next == '/'; next++)
			;
		if (!*next) {
			fd = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 && (flags & O_DIRECTORY))
				fs_enotdir_to_eloop(cur, name);
			fs_close(cur);
			return fd;
		}
		fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fs_enotdir_to_eloop(cur, name);
		fs_close(cur);
		if (fd < 0)
			return -1;
		cur = fd;
		p = next;
	}
}

/*
 * Open rel ("" for the root itself, otherwise without a leading slash)
 * beneath the root. Returns the fd or -1 with errno set: ELOOP for a
 * symlink anywhere on the way, EXDEV for an escape.
 */
static int fs_resolve(int rootfd, const char *rel, int flags)
{
	struct open_how how;
	long fd;
	int tries;

	if (!*rel)
		rel = ".";
	if (fs_has_openat2()) {
		memset(&how, 0, sizeof(how));
		/*
		 * No O_NOFOLLOW: with it a trailing symlink fails O_DIRECTORY
		 * with ENOTDIR; RESOLVE_NO_SYMLINKS refuses it with ELOOP.
		 */
		how.flags = (uint64_t)(flags | O_CLOEXEC);
		how.resolve = FS_RESOLVE;
		/* EAGAIN: a concurrent rename raced the lookup; try again. */
		for (tries = 0; tries < 8; tries++) {
			fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
			if (fd >= 0 || errno != EAGAIN)
				break;
		}
		if (fd >= 0 || errno != ENOSYS)
			return (int)fd;
		fs_openat2_state = 0;
	}
	return fs_walk(rootfd, rel, flags);
}

/* Record why resolving path failed, keeping errno. */
static int fs_resolve_err(const char *verb, const char *path)
{
	int saved = errno;

	if (saved == ELOOP)
		err_set("'%s' has a symlink in its path", path);
	else if (saved == EXDEV)
		err_set("'%s' escapes the root", path);
	else
		err_set_errno("cannot %s '%s'", verb, path);
	errno = saved;
	return -1;
}

static int fs_fail(int e, const char *verb, const char *path)
{
	errno = e;
	return err_set_errno("cannot %s '%s'", verb, path);
}

/*
 * Check path and return it relative to the root ("" for the root itself),
 * or NULL with the message recorded. Any ".." component is refused, even
 * one that would stay beneath the root: paths arrive normalised, so a ".."
 * here is a bug or an attack.
 */
static const char *fs_rel(const char *verb, const char *path)
{
	const char *p, *end;

	if (path[0] != '/') {
		errno = EINVAL;
		err_set("cannot %s '%s': not an absolute path", verb, path);
		return NULL;
	}
	if (strlen(path) >= PATH_MAX) {
		fs_fail(ENAMETOOLONG, verb, path);
		return NULL;
	}
	for (p = path; *p; p = end) {
		while (*p == '/')
			p++;
		end = strchrnul(p, '/');
		if (end - p > NAME_MAX) {
			fs_fail(ENAMETOOLONG, verb, path);
			return NULL;
		}
		if (end - p == 2 && p[0] == '.' && p[1] == '.') {
			errno = EXDEV;
			err_set("'%s' has a '..' component", path);
			return NULL;
		}
	}
	p = path;
	while (*p == '/')
		p++;
	return p;
}

/*
 * Open the directory holding path and point *base at its last component.
 * The root itself has no parent: with allow_root it comes back as the
 * root directory with base ".", otherwise it is refused.
 */
static int fs_parent(const struct fsroot *r, const char *verb, const char *path,
		     const char **base, int allow_root)
{
	char dir[PATH_MAX];
	const char *rel, *slash;
	size_t len;
	int fd;

	rel = fs_rel(verb, path);
	if (!rel)
		return -1;
	len = strlen(rel);
	while (len && rel[len - 1] == '/')
		len--;
	if (!len) {
		if (!allow_root) {
			errno = EINVAL;
			return err_set("cannot %s '%s': it is the root", verb, path);
		}
		fd = fs_resolve(r->fd, "", O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return fs_resolve_err(verb, path);
		*base = ".";
		return fd;
	}
	if (rel[len] == '/') {
		/* "/etc/x/" names a directory; the *at() calls need a bare name. */
		errno = EINVAL;
		return err_set("cannot %s '%s': trailing slash", verb, path);
	}
	slash = memrchr(rel, '/', len);
	len = slash ? (size_t)(slash - rel) : 0;
	memcpy(dir, rel, len);
	dir[len] = '\0';
	fd = fs_resolve(r->fd, dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fs_resolve_err(verb, path);
	*base = slash ? slash + 1 : rel;
	return fd;
}

/* The root comes from the agent's own configuration, so it may be reached
 * through symlinks; only what lies beneath it is untrusted. */
struct fs_dircache {
	int fd;
	size_t len;
	char dir[PATH_MAX];
};

int fs_root_open(struct fsroot *out, const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set_errno("cannot open root '%s'", dir);
	out->fd = fd;
	out->path = xstrdup(dir);
	out->dc = xcalloc(1, sizeof(*out->dc));
	out->dc->fd = -1;
	return 0;
}

void fs_root_view(const struct fsroot *r, struct fsroot *view)
{
	view->fd = r->fd;
	view->path = r->path;
	view->dc = xcalloc(1, sizeof(*view->dc));
	view->dc->fd = -1;
}

void fs_root_view_close(struct fsroot *view)
{
	fs_root_forget(view);
	free(view->dc);
	view->dc = NULL;
}

void fs_root_forget(const struct fsroot *r)
{
	if (!r || !r->dc)
		return;
	fs_close(r->dc->fd);
	r->dc->fd = -1;
	r->dc->len = 0;
}

void fs_root_close(struct fsroot *r)
{
	if (!r)
		return;
	fs_root_forget(r);
	free(r->dc);
	r->dc = NULL;
	fs_close(r->fd);
	r->fd = -1;
	free(r->path);
	r->path = NULL;
}

int fs_lstat(const struct fsroot *r, const char *path, struct stat *st)
{
	struct stat tmp;
	const char *base;
	int dirfd, ret;
	struct fs_dircache *dc = r->dc;
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;

	/* the same directory as last time: one fstatat, no path walk */
	if (dc && dc->fd >= 0 && slash && slash[1] && dlen == dc->len &&
	    !memcmp(dc->dir, path, dlen) && !strstr(path, "/..")) {
		if (fstatat(dc->fd, slash + 1, &tmp, AT_SYMLINK_NOFOLLOW)) {
			if (errno == ENOENT || errno == ENOTDIR)
				return 1;
			return err_set_errno("cannot stat '%s'", path);
		}
		*st = tmp;
		return 0;
	}
	dirfd = fs_parent(r, "stat", path, &base, 1);
	if (dirfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 1 : -1;
	if (dc && slash && slash[1] && dlen < sizeof(dc->dir)) {
		int keep = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		if (keep >= 0) {
			fs_close(dc->fd);
			dc->fd = keep;
			memcpy(dc->dir, path, dlen);
			dc->len = dlen;
		}
	}
	if (fstatat(dirfd, base, &tmp, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT || errno == ENOTDIR)
			ret = 1;
		else
			ret = err_set_errno("cannot stat '%s'", path);
	} else {
		*st = tmp;
		ret = 0;
	}
	fs_close(dirfd);
	return ret;
}

int fs_open(const struct fsroot *r, const char *path, int flags)
{
	const char *base;
	int dirfd, fd;

	BUG_ON(flags & O_CREAT);
	BUG_ON((flags & O_TMPFILE) == O_TMPFILE);
	dirfd = fs_parent(r, "open", path, &base, 1);
	if (dirfd < 0)
		return -1;
	fd = openat(dirfd, base, flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && (flags & O_DIRECTORY))
		fs_enotdir_to_eloop(dirfd, base);
	if (fd < 0) {
		int saved = errno;
		if (saved == ELOOP)
			err_set("'%s' is a symlink", path);
		else
			err_set_errno("cannot open '%s'", path);
		errno = saved;
	}
	fs_close(dirfd);
	return fd;
}

int fs_open_parent(const struct fsroot *r, const char *path, const char **base)
{
	return fs_parent(r, "open", path, base, 0);
}

int fs_read(const struct fsroot *r, const char *path, size_t max, struct buf *out)
{
	struct buf data = BUF_INIT;
	struct stat st;
	const char *base;
	int dirfd, fd = -1, ret = -1;
	ssize_t n;

	dirfd = fs_parent(r, "read", path, &base, 1);
	if (dirfd < 0)
		return -1;
	/* O_NONBLOCK: a FIFO swapped in must not hang the agent. */
	fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			err_set("'%s' is not a regular file", path);
		else
			err_set_errno("cannot read '%s'", path);
		goto out;
	}
	if (fstat(fd, &st)) {
		err_set_errno("cannot read '%s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("'%s' is not a regular file", path);
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		err_set("'%s' is larger than %zu bytes", path, max);
		goto out;
	}
	/* The file may grow while we read; never take more than max. */
	for (;;) {
		size_t want = 65536;
		if (max - data.len < want)
			want = max - data.len + 1;
		buf_grow(&data, want);
		n = read(fd, data.ptr + data.len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set_errno("cannot read '%s'", path);
			goto out;
		}
		if (!n)
			break;
		data.len += (size_t)n;
		data.ptr[data.len] = '\0';
		if (data.len > max) {
			err_set("'%s' is larger than %zu bytes", path, max);
			goto out;
		}
	}
	buf_add(out, data.ptr ? data.ptr : "", data.len);
	ret = 0;
out:
	buf_release(&data);
	fs_close(fd);
	fs_close(dirfd);
	return ret;
}

int fs_readlink(const struct fsroot *r, const char *path, struct buf *out)
{
	const char *base;
	char *target = NULL;
	size_t size = 256;
	int dirfd, ret = -1;
	ssize_t n;

	dirfd = fs_parent(r, "read link", path, &base, 1);
	if (dirfd < 0)
		return -1;
	for (;;) {
		target = xrealloc(target, size);
		n = readlinkat(dirfd, base, target, size);
		if (n < 0) {
			if (errno == EINVAL)
				err_set("'%s' is not a symlink", path);
			else
				err_set_errno("cannot read link '%s'", path);
			goto out;
		}
		if ((size_t)n < size)
			break;
		if (size >= 16 * PATH_MAX) {
			fs_fail(ENAMETOOLONG, "read link", path);
			goto out;
		}
		size *= 2;
	}
	buf_add(out, target, (size_t)n);
	ret = 0;
out:
	free(target);
	fs_close(dirfd);
	return ret;
}

/*
 * A temporary name for base: FS_TMP_PREFIX, base (cut short so the whole
 * stays within NAME_MAX), ".", random hex. O_EXCL makes a clash harmless;
 * the randomness only keeps the retries few.
 */
static void fs_tmp_name(char out[NAME_MAX + 1], const char *base)
{
	static const char hex[] = "0123456789abcdef";
	static unsigned long counter;
	unsigned char rnd[FS_TMP_RAND / 2];
	char suffix[FS_TMP_RAND + 1];
	size_t blen = strlen(base);

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		unsigned long long x;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)getpid() << 32) ^
		    (unsigned long long)++counter * 0x9e3779b97f4a7c15ULL;
		for (size_t i = 0; i < sizeof(rnd); i++, x >>= 8)
			rnd[i] = (unsigned char)x;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		suffix[2 * i] = hex[rnd[i] >> 4];
		suffix[2 * i + 1] = hex[rnd[i] & 15];
	}
	suffix[FS_TMP_RAND] = '\0';
	if (blen > NAME_MAX - FS_TMP_EXTRA)
		blen = NAME_MAX - FS_TMP_EXTRA;
	snprintf(out, NAME_MAX + 1, "%s%.*s.%s", FS_TMP_PREFIX, (int)blen, base, suffix);
}

/* Refuse to replace a directory with a file or a symlink. */
static int fs_check_not_dir(int dirfd, const char *base, const char *verb,
			    const char *path)
{
	struct stat st;

	if (!fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW)) {
		if (S_ISDIR(st.st_mode))
			return fs_fail(EISDIR, verb, path);
		return 0;
	}
	if (errno != ENOENT)
		return err_set_errno("cannot %s '%s'", verb, path);
	return 0;
}

/* Rename the finished temporary over base. */
static int fs_rename(int dirfd, const char *tmp, const char *base,
		     const char *verb, const char *path)
{
	if (!renameat(dirfd, tmp, dirfd, base))
		return 0;
	/* A bind-mounted target (EBUSY), or one on another mount (EXDEV),
	 * cannot be replaced by rename; nothing is written in place (F09). */
	if (errno == EBUSY || errno == EXDEV) {
		int e = errno;
		err_set("cannot atomically replace '%s' (%s)", path, e == EBUSY ? "EBUSY" : "EXDEV");
		errno = e;
		return -1;
	}
	return err_set_errno("cannot %s '%s'", verb, path);
}

/* Without this a power cut can still lose a rename or unlink (F02). */
static int fs_sync_dir(int dirfd, const char *path)
{
	if (fsync(dirfd))
		return err_set_errno("cannot sync the directory of '%s'", path);
	return 0;
}

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_pread_all(int fd, void *data, size_t len, off_t at)
{
	char *p = data;
	while (len) {
		ssize_t n = pread(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n) {
			errno = EIO;
			return -1;
		}
		p += n;
		at += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_write_atomic(const struct fsroot *r, const char *path, const void *data,
		    size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	/* a batch of one: the same temporary, syncs and rename as many */
	struct fs_batch b;
	int ret;

	fs_batch_init(&b);
	ret = fs_stage_write(r, &b, path, data, len, mode, uid, gid) < 0 ? -1 : 0;
	if (!ret)
		ret = fs_batch_sync(&b);
	if (!ret)
		ret = fs_batch_commit(r, &b, 0);
	if (!ret)
		ret = fs_batch_finish(r, &b);
	fs_batch_release(r, &b);
	return ret;
}

int fs_symlink_atomic(const struct fsroot *r, const char *path, const char *target,
		      uid_t uid, gid_t gid)
{
	char tmp[NAME_MAX + 1];
	const char *base;
	int dirfd, made = 0, ret = -1, tries, rc = -1;

	dirfd = fs_parent(r, "create symlink", path, &base, 0);
	if (dirfd < 0)
		return -1;
	if (fs_check_not_dir(dirfd, base, "create symlink", path))
		goto out;
	for (tries = 0; tries < FS_TMP_TRIES; tries++) {
		fs_tmp_name(tmp, base);
		rc = symlinkat(target, dirfd, tmp);
		if (!rc || errno != EEXIST)
			break;
	}
	if (rc) {
		err_set_errno("cannot create symlink '%s'", path);
		goto out;
	}
	made = 1;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchownat(dirfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW)) {
		err_set_errno("cannot chown '%s'", path);
		goto out;
	}
	if (fs_rename(dirfd, tmp, base, "create symlink", path))
		goto out;
	made = 0;
	ret = fs_sync_dir(dirfd, path);
out:
	if (made) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
	}
	fs_close(dirfd);
	return ret;
}

int fs_mkdir(const struct fsroot *r, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	const char *base;
	int dirfd, fd = -1, made = 0, ret = -1;

	dirfd = fs_parent(r, "create directory", path, &base, 0);
	if (dirfd < 0)
		return -1;
	/*
	 * 0700: nobody but us gets in before the final owner and mode are set,
	 * and we can open it even when the final mode has no owner bits.
	 */
	if (mkdirat(dirfd, base, 0700)) {
		err_set_errno("cannot create directory '%s'", path);
		goto out;
	}
	fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* Swapped for something else between mkdir and open: leave it. */
		err_set_errno("cannot open new directory '%s'", path);
		goto out;
	}
	made = 1;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid)) {
		err_set_errno("cannot chown '%s'", path);
		goto out;
	}
	if (fchmod(fd, mode & 07777)) {
		err_set_errno("cannot chmod '%s'", path);
		goto out;
	}
	made = 0;
	ret = fs_sync_dir(dirfd, path);
out:
	if (made) {
		/* Still empty, and ours unless swapped, when rmdir just fails. */
		int saved = errno;
		unlinkat(dirfd, base, AT_REMOVEDIR);
		errno = saved;
	}
	fs_close(fd);
	fs_close(dirfd);
	return ret;
}

/*
 * Open the last component for fchmod/fchown: regular files and directories
 * only. The type is checked before the open, so that a device node is never
 * opened (opening some devices has side effects), and again on the fd,
 * which is what counts. O_NONBLOCK and O_NOCTTY cover a FIFO or a terminal
 * swapped in between. Returns the fd, -1 on error, or -2 (with *st filled)
 * when the last component is a symlink, which the caller handles by name.
 */
static int fs_open_meta(int dirfd, const char *base, const char *verb,
			const char *path, struct stat *st)
{
	int fd;

	if (fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW))
		return err_set_errno("cannot %s '%s'", verb, path);
	if (S_ISLNK(st->st_mode))
		return -2;
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return err_set("cannot %s '%s': not a regular file or directory", verb, path);
	fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP && !fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISLNK(st->st_mode))
			return -2;
		return err_set_errno("cannot %s '%s'", verb, path);
	}
	if (fstat(fd, st)) {
		err_set_errno("cannot %s '%s'", verb, path);
		fs_close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		fs_close(fd);
		return err_set("cannot %s '%s': not a regular file or directory", verb, path);
	}
	return fd;
}

int fs_chmod(const struct fsroot *r, const char *path, mode_t mode)
{
	struct stat st;
	const char *base;
	int dirfd, fd, ret = -1;

	dirfd = fs_parent(r, "chmod", path, &base, 1);
	if (dirfd < 0)
		return -1;
	fd = fs_open_meta(dirfd, base, "chmod", path, &st);
	if (fd == -2) {
		/* Linux symlinks have no mode of their own: nothing to do. */
		ret = 0;
	} else if (fd >= 0) {
		ret = fchmod(fd, mode & 07777);
		if (ret)
			err_set_errno("cannot chmod '%s'", path);
		fs_close(fd);
	}
	fs_close(dirfd);
	return ret;
}

int fs_chown(const struct fsroot *r, const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	const char *base;
	int dirfd, fd, ret = -1;

	dirfd = fs_parent(r, "chown", path, &base, 1);
	if (dirfd < 0)
		return -1;
	fd = fs_open_meta(dirfd, base, "chown", path, &st);
	if (fd == -2) {
		ret = fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
		if (ret)
			err_set_errno("cannot chown '%s'", path);
	} else if (fd >= 0) {
		/* Even a no-op chown clears setuid bits: skip it. */
		ret = 0;
		if ((uid != (uid_t)-1 && uid != st.st_uid) ||
		    (gid != (gid_t)-1 && gid != st.st_gid))
			ret = fchown(fd, uid, gid);
		if (ret)
			err_set_errno("cannot chown '%s'", path);
		fs_close(fd);
	}
	fs_close(dirfd);
	return ret;
}

static int fs_remove(const struct fsroot *r, const char *path, int flags,
		     const char *verb)
{
	const char *base;
	int dirfd, ret = -1;

	dirfd = fs_parent(r, verb, path, &base, 0);
	if (dirfd < 0)
		return -1;
	if (unlinkat(dirfd, base, flags))
		err_set_errno("cannot %s '%s'", verb, path);
	else
		ret = fs_sync_dir(dirfd, path);
	fs_close(dirfd);
	return ret;
}

int fs_unlink(const struct fsroot *r, const char *path)
{
	return fs_remove(r, path, 0, "remove");
}

int fs_rmdir(const struct fsroot *r, const char *path)
{
	return fs_remove(r, path, AT_REMOVEDIR, "remove directory");
}

/*
 * No ownership check: temporaries are chowned to the target's owner before
 * any data goes in, so they may belong to anyone. Whoever could name a file
 * FS_TMP_PREFIX* here could remove it themselves.
 */
int fs_sweep_temps(const struct fsroot *r, const char *dir)
{
	const char *rel;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, count = 0;

	rel = fs_rel("sweep", dir);
	if (!rel)
		return -1;
	fd = fs_resolve(r->fd, rel, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fs_resolve_err("sweep", dir);
	d = fdopendir(fd);
	if (!d) {
		err_set_errno("cannot sweep '%s'", dir);
		fs_close(fd);
		return -1;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (strncmp(de->d_name, FS_TMP_PREFIX, sizeof(FS_TMP_PREFIX) - 1))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		if (unlinkat(fd, de->d_name, 0)) {
			if (errno == ENOENT)
				continue;
			err_set_errno("cannot remove '%s/%s'", dir, de->d_name);
			count = -1;
			break;
		}
		count++;
	}
	if (!de && errno) {
		err_set_errno("cannot sweep '%s'", dir);
		count = -1;
	}
	if (count > 0 && fsync(fd)) {
		err_set_errno("cannot sync '%s'", dir);
		count = -1;
	}
	closedir(d);
	return count;
}

/* ---- staged writes ---- */

void fs_batch_init(struct fs_batch *b)
{
	memset(b, 0, sizeof(*b));
}

static int fs_batch_devfd(struct fs_batch *b, int dirfd, dev_t dev)
{
	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i] == dev)
			return 0;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	b->devs = xrealloc(b->devs, (b->ndevs + 1) * sizeof(*b->devs));
	b->devfds = xrealloc(b->devfds, (b->ndevs + 1) * sizeof(*b->devfds));
	b->devs[b->ndevs] = dev;
	b->devfds[b->ndevs++] = fd;
	return 0;
}

/*
 * How many descriptors staged creations may hold open: each keeps its file
 * and its directory until it is linked into place. The soft limit is raised
 * to the hard one the first time; a quarter of it stays for everything else.
 */
static size_t fs_anon_budget(void)
{
	static size_t budget = SIZE_MAX;
	if (budget == SIZE_MAX) {
		struct rlimit rl;
		budget = 0;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			if (rl.rlim_cur < rl.rlim_max) {
				struct rlimit up = { rl.rlim_max, rl.rlim_max };
				if (up.rlim_cur > (1u << 20))
					up.rlim_cur = 1u << 20;
				if (setrlimit(RLIMIT_NOFILE, &up) == 0)
					rl.rlim_cur = up.rlim_cur;
			}
			if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256)
				budget = (size_t)(rl.rlim_cur - rl.rlim_cur / 4);
		}
	}
	return budget;
}

/*
 * A file that does not exist yet is written as an unnamed O_TMPFILE in its
 * directory and linked into place at commit: it appears whole or not at
 * all, a crash leaves nothing to sweep, and the file system is spared the
 * temporary name's insertion and the rename (on ext4 several times cheaper
 * per file). Anything else, or a file system without O_TMPFILE, gets a named
 * temporary renamed over the target.
 */
static int fs_open_anon(struct fs_batch *b, int dirfd, mode_t mode)
{
	if ((b->nanon + 1) * 2 > fs_anon_budget())
		return -1;
	int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 0600);
	if (fd >= 0)
		b->nanon++;
	return fd;
}

static int fs_link_anon(struct fs_staged *e, const char *base)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", e->fd);
	int rc = linkat(AT_FDCWD, proc, e->dirfd, base, AT_SYMLINK_FOLLOW);
	if (rc && errno == ENOENT && access("/proc/self/fd", X_OK))
		rc = linkat(e->fd, "", e->dirfd, base, AT_EMPTY_PATH);	/* no /proc */
	if (!rc)
		return 0;
	if (errno == EEXIST)
		return err_set("cannot write '%s': it appeared while it was being written", e->path);
	return err_set_errno("cannot write '%s'", e->path);
}

/*
 * Unnamed files are linked a chunk at a time, once their data is synced:
 * ext4 gets slower at every creation the more unnamed inodes a process
 * holds (each is on the orphan list until linked), so thousands of them
 * are never held at once. Linking a creation before the batch commits is
 * safe: the inventory owns every path a pass creates before the first
 * write (core/apply.c), and each file still appears whole or not at all.
 */
#define FS_ANON_CHUNK 1024

static void fs_batch_flush_anon(struct fs_batch *b)
{
	int synced = 1;
	char *why = NULL;
	for (size_t i = 0; i < b->ndevs && synced; i++)
		if (syncfs(b->devfds[i])) {
			synced = 0;
			err_set_errno("cannot sync staged files");
			why = xstrdup(err_msg());
		}
	for (size_t i = b->anon_from; i < b->n; i++) {
		struct fs_staged *e = &b->v[i];
		if (!e->anon || e->committed || e->failed)
			continue;
		if (!synced)
			e->failed = xstrdup(why);
		else if (fs_link_anon(e, strrchr(e->path, '/') + 1) < 0)
			e->failed = xstrdup(err_msg());
		else
			e->committed = 1;
		fs_close(e->fd);
		fs_close(e->dirfd);
		e->fd = e->dirfd = -1;
		b->nanon--;
	}
	free(why);
	b->anon_from = b->n;
}

int fs_stage_write(const struct fsroot *r, struct fs_batch *b, const char *path,
		   const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[NAME_MAX + 1] = "";
	const char *base;
	struct stat st;
	int dirfd, fd = -1, tries, anon = 0;

	dirfd = fs_parent(r, "write", path, &base, 0);
	if (dirfd < 0)
		return -1;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			fs_fail(EISDIR, "write", path);
			goto fail;
		}
	} else if (errno != ENOENT) {
		err_set_errno("cannot write '%s'", path);
		goto fail;
	} else {
		fd = fs_open_anon(b, dirfd, mode);
		anon = fd >= 0;
	}
	for (tries = 0; !anon && tries < FS_TMP_TRIES; tries++) {
		fs_tmp_name(tmp, base);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    mode & 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		err_set_errno("cannot write '%s'", path);
		goto fail;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid)) {
		err_set_errno("cannot chown '%s'", path);
		goto fail_tmp;
	}
	/* after fchown, which clears setuid and setgid; before any data (S05) */
	if (fchmod(fd, mode & 07777)) {
		err_set_errno("cannot chmod '%s'", path);
		goto fail_tmp;
	}
	if (fs_write_all(fd, data, len) || fstat(dirfd, &st) || fs_batch_devfd(b, dirfd, st.st_dev)) {
		err_set_errno("cannot write '%s'", path);
		goto fail_tmp;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	struct fs_staged *e = &b->v[b->n];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	memcpy(e->tmp, tmp, sizeof(e->tmp));
	e->dev = st.st_dev;
	e->fd = e->dirfd = -1;
	e->anon = anon;
	if (b->n < FS_BATCH_FSYNC_MAX || anon) {
		e->fd = fd;
		e->dirfd = dirfd;
	} else {
		if (close(fd)) {
			fd = -1;
			err_set_errno("cannot write '%s'", path);
			goto fail_tmp;
		}
		fs_close(dirfd);
	}
	b->bytes += len;
	b->n++;
	if (b->nanon >= FS_ANON_CHUNK)
		fs_batch_flush_anon(b);
	return (int)b->n - 1;
fail_tmp:
	fs_close(fd);
	if (anon)
		b->nanon--;
	else
		unlinkat(dirfd, tmp, 0);
fail:
	fs_close(dirfd);
	return -1;
}

int fs_batch_sync(struct fs_batch *b)
{
	if (b->n <= FS_BATCH_FSYNC_MAX) {
		for (size_t i = 0; i < b->n; i++) {
			struct fs_staged *e = &b->v[i];
			if (e->fd < 0)
				continue;
			int rc = fsync(e->fd), rc2 = 0;
			if (!e->anon) {	/* an unnamed one is linked through its fd */
				rc2 = close(e->fd);
				e->fd = -1;
			}
			if (rc || rc2)
				return err_set_errno("cannot write '%s'", e->path);
		}
		return 0;
	}
	for (size_t i = 0; i < b->ndevs; i++)
		if (syncfs(b->devfds[i]))
			return err_set_errno("cannot sync staged files");
	return 0;
}

int fs_batch_commit(const struct fsroot *r, struct fs_batch *b, size_t i)
{
	struct fs_staged *e = &b->v[i];
	const char *base;
	int dirfd = e->dirfd;
	if (e->failed)
		return err_set("%s", e->failed);
	if (e->committed)
		return 0;	/* an unnamed file linked with its chunk */
	if (e->anon) {
		if (fs_link_anon(e, strrchr(e->path, '/') + 1) < 0)
			return -1;
		fs_close(e->fd);
		e->fd = -1;
		b->nanon--;
		e->committed = 1;
		return 0;
	}
	if (dirfd < 0 && (dirfd = fs_parent(r, "write", e->path, &base, 0)) < 0)
		return -1;
	base = strrchr(e->path, '/') + 1;
	int rc = fs_rename(dirfd, e->tmp, base, "write", e->path);
	if (dirfd != e->dirfd)
		fs_close(dirfd);
	if (rc)
		return -1;
	e->committed = 1;
	return 0;
}

int fs_batch_finish(const struct fsroot *r, struct fs_batch *b)
{
	(void)r;
	if (b->n <= FS_BATCH_FSYNC_MAX) {
		int ret = 0;
		for (size_t i = 0; i < b->n; i++)
			if (b->v[i].committed && b->v[i].dirfd >= 0 &&
			    fs_sync_dir(b->v[i].dirfd, b->v[i].path))
				ret = -1;
		return ret;
	}
	for (size_t i = 0; i < b->ndevs; i++)
		if (syncfs(b->devfds[i]))
			return err_set_errno("cannot sync renamed files");
	return 0;
}

void fs_batch_release(const struct fsroot *r, struct fs_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct fs_staged *e = &b->v[i];
		fs_close(e->fd);
		if (!e->committed && !e->anon) {
			int dirfd = e->dirfd;
			const char *base;
			if (dirfd < 0)
				dirfd = fs_parent(r, "write", e->path, &base, 0);
			if (dirfd >= 0)
				unlinkat(dirfd, e->tmp, 0);
			if (dirfd != e->dirfd)
				fs_close(dirfd);
		}
		fs_close(e->dirfd);
		free(e->path);
		free(e->failed);
	}
	for (size_t i = 0; i < b->ndevs; i++)
		fs_close(b->devfds[i]);
	free(b->v);
	free(b->devfds);
	free(b->devs);
	fs_batch_init(b);
}
