/* SPDX-License-Identifier: MIT */
/* Unit tests for the host write layer: modes, owners, atomicity and escapes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"

#define CANARY_DATA "canary: must never change\n"

/*
 * Each test gets a fresh tree:
 *   top/root/               the fsroot
 *   top/outside/canary      must stay byte- and metadata-identical
 *   top/root/evil    ->     top/outside (a symlinked directory)
 *   top/root/sub/           an ordinary directory
 */
struct fx {
	char top[64];
	char root[128];
	char outside[128];
	char canary[192];
	struct fsroot r;
	struct stat canary_st;
	char mounted[2][PATH_MAX];
};

static const char *host(const struct fx *f, const char *path)
{
	static char ring[8][PATH_MAX];
	static unsigned next;
	char *out = ring[next++ % 8];

	snprintf(out, PATH_MAX, "%s%s", f->root, path);
	return out;
}

static void put_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* The whole content of a file the test made, read directly. */
static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	assert_true(n == 0);
	close(fd);
	return buf_detach(&b);
}

static void assert_content(const char *path, const char *want)
{
	char *got = slurp(path);

	assert_string_equal(got, want);
	free(got);
}

static int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!prefix || !strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	}
	closedir(d);
	return n;
}

static int count_temps(const char *dir)
{
	return count_entries(dir, FS_TMP_PREFIX);
}

static int count_fds(void)
{
	return count_entries("/proc/self/fd", NULL);
}

static void assert_err_has(const char *want)
{
	if (!strstr(err_msg(), want))
		fail_msg("error '%s' lacks '%s'", err_msg(), want);
}

static void assert_canary(const struct fx *f)
{
	struct stat st;

	assert_int_equal(lstat(f->canary, &st), 0);
	assert_int_equal(st.st_ino, f->canary_st.st_ino);
	assert_int_equal(st.st_mode, f->canary_st.st_mode);
	assert_int_equal(st.st_uid, f->canary_st.st_uid);
	assert_int_equal(st.st_gid, f->canary_st.st_gid);
	assert_int_equal(st.st_nlink, f->canary_st.st_nlink);
	assert_int_equal(st.st_size, f->canary_st.st_size);
	assert_memory_equal(&st.st_mtim, &f->canary_st.st_mtim, sizeof(st.st_mtim));
	assert_memory_equal(&st.st_ctim, &f->canary_st.st_ctim, sizeof(st.st_ctim));
	assert_content(f->canary, CANARY_DATA);
	/* Nothing new appeared next to it either. */
	assert_int_equal(count_entries(f->outside, NULL), 1);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP || type == FTW_DNR)
		return rmdir(path);
	return unlink(path);
}

/* Without root, directories made with mode 0000 must be opened up first. */
static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char link[PATH_MAX];

	umask(022);
	snprintf(f->top, sizeof(f->top), "/tmp/driftless-fs-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->root, sizeof(f->root), "%s/root", f->top);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->top);
	snprintf(f->canary, sizeof(f->canary), "%s/canary", f->outside);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	put_file(f->canary, CANARY_DATA, 0640);
	assert_int_equal(lstat(f->canary, &f->canary_st), 0);
	snprintf(link, sizeof(link), "%s/evil", f->root);
	assert_int_equal(symlink(f->outside, link), 0);
	snprintf(link, sizeof(link), "%s/sub", f->root);
	assert_int_equal(mkdir(link, 0755), 0);
	assert_int_equal(fs_root_open(&f->r, f->root), 0);
	err_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < 2; i++)
		if (f->mounted[i][0])
			umount2(f->mounted[i], MNT_DETACH);
	fs_root_close(&f->r);
	for (int pass = 0; pass < 4; pass++)
		nftw(f->top, open_up, 16, FTW_PHYS | FTW_MOUNT);
	nftw(f->top, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	free(f);
	return 0;
}

static int is_root(void)
{
	return geteuid() == 0;
}

/* Mounts made by tests stay in a private namespace of this process. */
static int can_mount(void)
{
	static int state = -1;

	if (state < 0)
		state = is_root() && !unshare(CLONE_NEWNS) &&
			!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	return state;
}

static void write_ok(struct fx *f, const char *path, const char *data, mode_t mode)
{
	if (fs_write_atomic(&f->r, path, data, strlen(data), mode, (uid_t)-1, (gid_t)-1))
		fail_msg("fs_write_atomic('%s'): %s", path, err_msg());
}

static void test_fs__mode_matches_env(void **state)
{
	const char *env = getenv("DRIFTLESS_FS_NO_OPENAT2");

	(void)state;
	assert_int_equal(fs_has_openat2(), !(env && !strcmp(env, "1")));
}

/* In a child where openat2 fails with ENOSYS, as on old kernels or under
 * some container seccomp profiles, fs switches to the walk and stays safe. */
static int enosys_child(struct fx *f)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	struct stat st;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 10;
	if (fs_write_atomic(&f->r, "/sub/f", "x", 1, 0644, (uid_t)-1, (gid_t)-1))
		return 11;
	if (fs_has_openat2())
		return 12;
	if (lstat(host(f, "/sub/f"), &st) || !S_ISREG(st.st_mode))
		return 13;
	if (fs_write_atomic(&f->r, "/evil/canary", "x", 1, 0644, (uid_t)-1, (gid_t)-1) != -1 ||
	    strcmp(err_msg(), "'/evil/canary' has a symlink in its path"))
		return 14;
	return 0;
}

static void test_fs__openat2_enosys_falls_back(void **state)
{
	struct fx *f = *state;
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(enosys_child(f));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_content(host(f, "/sub/f"), "x");
	assert_canary(f);
}

static void test_fs__root_open_missing(void **state)
{
	struct fx *f = *state;
	struct fsroot r = { -1, NULL };
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/nope", f->top);
	assert_int_equal(fs_root_open(&r, path), -1);
	assert_err_has("cannot open root '");
	assert_int_equal(r.fd, -1);
	fs_root_close(&r);
	fs_root_close(NULL);
}

static void test_fs__write_modes(void **state)
{
	static const mode_t modes[] = { 0600, 0644, 0755, 0640, 0400, 0000 };
	struct fx *f = *state;
	struct stat st;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char path[32];

		snprintf(path, sizeof(path), "/sub/m%o", (unsigned)modes[i]);
		write_ok(f, path, "hello\n", modes[i]);
		assert_int_equal(lstat(host(f, path), &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, modes[i]);
		assert_int_equal(st.st_uid, geteuid());
		if ((modes[i] & 0400) || is_root())
			assert_content(host(f, path), "hello\n");
	}
	/* The umask plays no part in the final mode. */
	umask(077);
	write_ok(f, "/sub/umask", "x", 0644);
	umask(022);
	assert_int_equal(lstat(host(f, "/sub/umask"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* A file directly under the root. */
	write_ok(f, "/top", "t", 0644);
	assert_content(host(f, "/top"), "t");
	assert_int_equal(count_temps(f->root), 0);
	assert_int_equal(count_temps(host(f, "/sub")), 0);
}

static void test_fs__write_owner_setuid(void **state)
{
	struct fx *f = *state;
	struct stat st;

	if (!is_root())
		skip();
	assert_int_equal(fs_write_atomic(&f->r, "/sub/suid", "#!/bin/sh\n", 10, 04755,
					 65534, 65534), 0);
	assert_int_equal(lstat(host(f, "/sub/suid"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_gid, 65534);

	assert_int_equal(fs_write_atomic(&f->r, "/sub/own", "x", 1, 0640, 65534,
					 (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/own"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_gid, 0);

	assert_int_equal(fs_write_atomic(&f->r, "/sub/sgid", "x", 1, 02750, (uid_t)-1,
					 65534), 0);
	assert_int_equal(lstat(host(f, "/sub/sgid"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 02750);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 65534);
}

static void test_fs__write_replaces_atomically(void **state)
{
	static const char bin[] = { 'a', '\0', 'b', '\n', '\0' };
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat before, after;

	write_ok(f, "/sub/f", "first version\n", 0644);
	assert_int_equal(lstat(host(f, "/sub/f"), &before), 0);
	write_ok(f, "/sub/f", "second\n", 0600);
	assert_int_equal(lstat(host(f, "/sub/f"), &after), 0);
	assert_int_not_equal(before.st_ino, after.st_ino);
	assert_int_equal(after.st_mode & 07777, 0600);
	assert_content(host(f, "/sub/f"), "second\n");

	/* Exact bytes, NULs included; and an empty file. */
	assert_int_equal(fs_write_atomic(&f->r, "/sub/f", bin, sizeof(bin), 0644,
					 (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(fs_read(&f->r, "/sub/f", 100, &b), 0);
	assert_int_equal(b.len, sizeof(bin));
	assert_memory_equal(b.ptr, bin, sizeof(bin));
	buf_release(&b);
	assert_int_equal(fs_write_atomic(&f->r, "/sub/f", NULL, 0, 0644, (uid_t)-1,
					 (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/f"), &after), 0);
	assert_int_equal(after.st_size, 0);
	assert_int_equal(count_temps(host(f, "/sub")), 0);
}

static void test_fs__write_target_is_dir(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(fs_write_atomic(&f->r, "/sub", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot write '/sub': Is a directory");
	assert_int_equal(lstat(host(f, "/sub"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(count_temps(f->root), 0);
	/* The root itself is not a file either. */
	assert_int_equal(fs_write_atomic(&f->r, "/", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_err_has("it is the root");
}

static void test_fs__write_parent_missing(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fs_write_atomic(&f->r, "/nope/x", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot write '/nope/x': No such file or directory");
	assert_int_equal(fs_write_atomic(&f->r, "/sub/x/y", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_int_equal(count_temps(f->root), 0);
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	/* A regular file where a directory should be. */
	write_ok(f, "/sub/file", "x", 0644);
	assert_int_equal(fs_write_atomic(&f->r, "/sub/file/y", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot write '/sub/file/y': Not a directory");
}

/* A write that fails halfway (short write, then EFBIG) leaves the old file. */
static void test_fs__write_fails_midway(void **state)
{
	struct fx *f = *state;
	struct rlimit old, lim;
	void (*oldsig)(int);
	char *big = xmalloc(3 * 4096 + 1);

	memset(big, 'z', 3 * 4096);
	big[3 * 4096] = '\0';
	write_ok(f, "/sub/big", "old\n", 0644);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(fs_write_atomic(&f->r, "/sub/big", big, 3 * 4096, 0644,
					 (uid_t)-1, (gid_t)-1), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	assert_string_equal(err_msg(), "cannot write '/sub/big': File too large");
	assert_content(host(f, "/sub/big"), "old\n");
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	free(big);
}

static void test_fs__write_enospc(void **state)
{
	struct fx *f = *state;
	char *big;

	if (!can_mount())
		skip();
	big = xmalloc(256 * 1024 + 1);
	snprintf(f->mounted[0], PATH_MAX, "%s", host(f, "/sub"));
	assert_int_equal(mount("tmpfs", f->mounted[0], "tmpfs", 0, "size=64k,mode=0755"), 0);
	write_ok(f, "/sub/f", "old\n", 0644);
	memset(big, 'z', 256 * 1024);
	big[256 * 1024] = '\0';
	assert_int_equal(fs_write_atomic(&f->r, "/sub/f", big, 256 * 1024, 0644,
					 (uid_t)-1, (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot write '/sub/f': No space left on device");
	assert_content(host(f, "/sub/f"), "old\n");
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	free(big);
	assert_int_equal(umount(f->mounted[0]), 0);
	f->mounted[0][0] = '\0';
}

static void test_fs__write_ebusy(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX];

	if (!can_mount())
		skip();
	snprintf(src, sizeof(src), "%s/bindsrc", f->top);
	put_file(src, "bound\n", 0644);
	write_ok(f, "/sub/resolv.conf", "target\n", 0644);
	snprintf(f->mounted[0], PATH_MAX, "%s", host(f, "/sub/resolv.conf"));
	assert_int_equal(mount(src, f->mounted[0], NULL, MS_BIND, NULL), 0);
	assert_int_equal(fs_write_atomic(&f->r, "/sub/resolv.conf", "new\n", 4, 0644,
					 (uid_t)-1, (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot atomically replace '/sub/resolv.conf' (EBUSY)");
	assert_content(host(f, "/sub/resolv.conf"), "bound\n");
	assert_content(src, "bound\n");
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	assert_int_equal(umount(f->mounted[0]), 0);
	f->mounted[0][0] = '\0';
}

static void test_fs__write_name_length(void **state)
{
	struct fx *f = *state;
	char path[NAME_MAX + 16];

	/* NAME_MAX exactly: the temporary's name is cut to fit. */
	path[0] = '/';
	memset(path + 1, 'n', NAME_MAX);
	path[NAME_MAX + 1] = '\0';
	write_ok(f, path, "long\n", 0644);
	assert_content(host(f, path), "long\n");
	assert_int_equal(count_temps(f->root), 0);
	/* One more is too long. */
	memset(path + 1, 'n', NAME_MAX + 1);
	path[NAME_MAX + 2] = '\0';
	assert_int_equal(fs_write_atomic(&f->r, path, "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_err_has("File name too long");
	assert_int_equal(count_temps(f->root), 0);
}

static void test_fs__relative_path_refused(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fs_write_atomic(&f->r, "sub/x", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot write 'sub/x': not an absolute path");
	assert_int_equal(fs_write_atomic(&f->r, "/sub/x/", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_err_has("trailing slash");
	assert_int_equal(count_entries(host(f, "/sub"), NULL), 0);
}

/* Every operation through a symlinked parent fails and leaves the canary. */
static void test_fs__symlink_parent_refused(void **state)
{
	static const char msg[] = "'/evil/canary' has a symlink in its path";
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat st;
	const char *base;
	char deep[256];

	assert_int_equal(fs_write_atomic(&f->r, "/evil/canary", "pwned", 5, 0666, 0, 0), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(fs_chmod(&f->r, "/evil/canary", 0666), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(fs_chown(&f->r, "/evil/canary", 65534, 65534), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(fs_unlink(&f->r, "/evil/canary"), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(fs_read(&f->r, "/evil/canary", 4096, &b), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(b.len, 0);
	assert_int_equal(fs_readlink(&f->r, "/evil/canary", &b), -1);
	assert_int_equal(fs_lstat(&f->r, "/evil/canary", &st), -1);
	assert_string_equal(err_msg(), msg);
	assert_int_equal(fs_open(&f->r, "/evil/canary", O_RDONLY), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(fs_open_parent(&f->r, "/evil/canary", &base), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(fs_symlink_atomic(&f->r, "/evil/canary", "/etc/shadow", 0, 0), -1);
	assert_int_equal(fs_mkdir(&f->r, "/evil/new", 0777, 0, 0), -1);
	assert_string_equal(err_msg(), "'/evil/new' has a symlink in its path");
	assert_int_equal(fs_rmdir(&f->r, "/evil/x"), -1);
	assert_int_equal(fs_sweep_temps(&f->r, "/evil"), -1);
	assert_string_equal(err_msg(), "'/evil' has a symlink in its path");
	/* Deeper down too, where what lies beyond the link exists. */
	snprintf(deep, sizeof(deep), "%s/deep", f->outside);
	assert_int_equal(mkdir(deep, 0755), 0);
	assert_int_equal(fs_write_atomic(&f->r, "/evil/deep/x", "x", 1, 0644, 0, 0), -1);
	assert_string_equal(err_msg(), "'/evil/deep/x' has a symlink in its path");
	assert_int_equal(fs_mkdir(&f->r, "/evil/deep/x", 0755, 0, 0), -1);
	assert_int_equal(fs_symlink_atomic(&f->r, "/evil/deep/x", "y", 0, 0), -1);
	assert_int_equal(fs_chmod(&f->r, "/evil/deep", 0777), -1);
	assert_int_equal(fs_chown(&f->r, "/evil/deep", 65534, 65534), -1);
	assert_int_equal(fs_lstat(&f->r, "/evil/deep/x", &st), -1);
	assert_int_equal(fs_sweep_temps(&f->r, "/evil/deep"), -1);
	assert_int_equal(fs_open(&f->r, "/evil/deep", O_RDONLY | O_DIRECTORY), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(count_entries(deep, NULL), 0);
	assert_int_equal(lstat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(rmdir(deep), 0);
	assert_canary(f);
}

/* The rename replaces the link itself; its target is never opened. */
static void test_fs__symlink_last_write_replaces_link(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(symlink(f->canary, host(f, "/sub/lnk")), 0);
	write_ok(f, "/sub/lnk", "replaced\n", 0600);
	assert_int_equal(lstat(host(f, "/sub/lnk"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_content(host(f, "/sub/lnk"), "replaced\n");
	/* A link to a directory is a link, not a directory: replaced too. */
	assert_int_equal(symlink(f->outside, host(f, "/sub/dlnk")), 0);
	write_ok(f, "/sub/dlnk", "file\n", 0644);
	assert_int_equal(lstat(host(f, "/sub/dlnk"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	assert_canary(f);
}

static void test_fs__symlink_last_not_followed(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat st;
	int fd;

	assert_int_equal(symlink(f->canary, host(f, "/sub/lnk")), 0);
	assert_int_equal(fs_read(&f->r, "/sub/lnk", 4096, &b), -1);
	assert_string_equal(err_msg(), "'/sub/lnk' is not a regular file");
	assert_int_equal(b.len, 0);
	/* Symlinks have no mode: chmod succeeds and changes nothing. */
	assert_int_equal(fs_chmod(&f->r, "/sub/lnk", 0666), 0);
	assert_canary(f);
	fd = fs_open(&f->r, "/sub/lnk", O_RDONLY);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ELOOP);
	assert_string_equal(err_msg(), "'/sub/lnk' is a symlink");
	fd = fs_open(&f->r, "/evil", O_RDONLY | O_DIRECTORY);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(fs_lstat(&f->r, "/sub/lnk", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	if (is_root()) {
		/* chown changes the link's own owner. */
		assert_int_equal(fs_chown(&f->r, "/sub/lnk", 65534, 65534), 0);
		assert_int_equal(lstat(host(f, "/sub/lnk"), &st), 0);
		assert_true(S_ISLNK(st.st_mode));
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
	}
	assert_canary(f);
	assert_int_equal(fs_unlink(&f->r, "/sub/lnk"), 0);
	assert_int_equal(lstat(host(f, "/sub/lnk"), &st), -1);
	assert_canary(f);
}

static void test_fs__dotdot_refused(void **state)
{
	static const char *const paths[] = {
		"/../outside/canary", "/sub/../../outside/canary", "/sub/../x", "/..",
		"/sub/..",
	};
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat st;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char want[128];

		snprintf(want, sizeof(want), "'%s' has a '..' component", paths[i]);
		assert_int_equal(fs_write_atomic(&f->r, paths[i], "x", 1, 0644, (uid_t)-1,
						 (gid_t)-1), -1);
		assert_string_equal(err_msg(), want);
		assert_int_equal(fs_chmod(&f->r, paths[i], 0777), -1);
		assert_int_equal(fs_chown(&f->r, paths[i], 65534, 65534), -1);
		assert_int_equal(fs_unlink(&f->r, paths[i]), -1);
		assert_int_equal(fs_read(&f->r, paths[i], 4096, &b), -1);
		assert_int_equal(fs_lstat(&f->r, paths[i], &st), -1);
		assert_int_equal(fs_sweep_temps(&f->r, paths[i]), -1);
	}
	assert_int_equal(count_entries(host(f, "/sub"), NULL), 0);
	assert_canary(f);
}

/* Even a symlink that stays inside the root is refused. */
static void test_fs__symlink_into_root_refused(void **state)
{
	struct fx *f = *state;

	assert_int_equal(symlink(host(f, "/sub"), host(f, "/abs")), 0);
	assert_int_equal(symlink("sub", host(f, "/rel")), 0);
	assert_int_equal(symlink("/sub", host(f, "/rootabs")), 0);
	assert_int_equal(fs_write_atomic(&f->r, "/abs/f", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "'/abs/f' has a symlink in its path");
	assert_int_equal(fs_write_atomic(&f->r, "/rel/f", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_string_equal(err_msg(), "'/rel/f' has a symlink in its path");
	assert_int_equal(fs_write_atomic(&f->r, "/rootabs/f", "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_int_equal(count_entries(host(f, "/sub"), NULL), 0);
}

/* A magic link (/proc/self/root) on the way is refused like any symlink. */
static void test_fs__magic_link_refused(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	assert_int_equal(symlink("/proc/self/root", host(f, "/proc")), 0);
	snprintf(path, sizeof(path), "/proc%s/x", f->outside);
	assert_int_equal(fs_write_atomic(&f->r, path, "x", 1, 0644, (uid_t)-1,
					 (gid_t)-1), -1);
	assert_err_has("has a symlink in its path");
	assert_canary(f);
}

static void test_fs__mkdir_modes(void **state)
{
	static const mode_t modes[] = { 0700, 0755, 0750, 0711, 01777, 02775, 0000 };
	struct fx *f = *state;
	struct stat st;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char path[32];

		snprintf(path, sizeof(path), "/sub/d%o", (unsigned)modes[i]);
		if (fs_mkdir(&f->r, path, modes[i], (uid_t)-1, (gid_t)-1))
			fail_msg("fs_mkdir('%s'): %s", path, err_msg());
		assert_int_equal(lstat(host(f, path), &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, modes[i]);
	}
	assert_int_equal(fs_mkdir(&f->r, "/sub/d700", 0700, (uid_t)-1, (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot create directory '/sub/d700': File exists");
	assert_int_equal(fs_mkdir(&f->r, "/nope/d", 0700, (uid_t)-1, (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot create directory '/nope/d': No such file or directory");
	/* A symlink in the way is not followed. */
	assert_int_equal(symlink(f->outside, host(f, "/sub/lnk")), 0);
	assert_int_equal(fs_mkdir(&f->r, "/sub/lnk", 0777, (uid_t)-1, (gid_t)-1), -1);
	assert_err_has("File exists");
	if (is_root()) {
		assert_int_equal(fs_mkdir(&f->r, "/sub/owned", 0750, 65534, 65534), 0);
		assert_int_equal(lstat(host(f, "/sub/owned"), &st), 0);
		assert_int_equal(st.st_mode & 07777, 0750);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
	}
	assert_canary(f);
}

static void test_fs__symlink_atomic(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat st, before;

	assert_int_equal(fs_symlink_atomic(&f->r, "/sub/l", "../target", (uid_t)-1,
					   (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/l"), &before), 0);
	assert_true(S_ISLNK(before.st_mode));
	assert_int_equal(fs_readlink(&f->r, "/sub/l", &b), 0);
	assert_string_equal(b.ptr, "../target");
	buf_reset(&b);
	/* Replacing an existing link and an existing file. */
	assert_int_equal(fs_symlink_atomic(&f->r, "/sub/l", f->canary, (uid_t)-1,
					   (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/l"), &st), 0);
	assert_int_not_equal(st.st_ino, before.st_ino);
	assert_int_equal(fs_readlink(&f->r, "/sub/l", &b), 0);
	assert_string_equal(b.ptr, f->canary);
	buf_release(&b);
	write_ok(f, "/sub/file", "x", 0644);
	assert_int_equal(fs_symlink_atomic(&f->r, "/sub/file", "y", (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/file"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* A directory is refused. */
	assert_int_equal(fs_mkdir(&f->r, "/sub/dir", 0755, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(fs_symlink_atomic(&f->r, "/sub/dir", "y", (uid_t)-1, (gid_t)-1), -1);
	assert_string_equal(err_msg(), "cannot create symlink '/sub/dir': Is a directory");
	if (is_root()) {
		assert_int_equal(fs_symlink_atomic(&f->r, "/sub/owned", "z", 65534, 65534), 0);
		assert_int_equal(lstat(host(f, "/sub/owned"), &st), 0);
		assert_true(S_ISLNK(st.st_mode));
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
	}
	assert_int_equal(count_temps(host(f, "/sub")), 0);
	assert_canary(f);
}

static void test_fs__readlink(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	char target[2048];

	memset(target, 't', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	assert_int_equal(symlink(target, host(f, "/sub/long")), 0);
	buf_adds(&b, "prefix:");
	assert_int_equal(fs_readlink(&f->r, "/sub/long", &b), 0);
	assert_int_equal(b.len, strlen("prefix:") + strlen(target));
	assert_string_equal(b.ptr + strlen("prefix:"), target);
	buf_reset(&b);
	write_ok(f, "/sub/file", "x", 0644);
	assert_int_equal(fs_readlink(&f->r, "/sub/file", &b), -1);
	assert_string_equal(err_msg(), "'/sub/file' is not a symlink");
	assert_int_equal(fs_readlink(&f->r, "/sub/missing", &b), -1);
	assert_string_equal(err_msg(), "cannot read link '/sub/missing': No such file or directory");
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_fs__chmod_chown(void **state)
{
	struct fx *f = *state;
	struct stat st;

	write_ok(f, "/sub/f", "x", 0644);
	assert_int_equal(fs_chmod(&f->r, "/sub/f", 0640), 0);
	assert_int_equal(lstat(host(f, "/sub/f"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(fs_chmod(&f->r, "/sub", 0711), 0);
	assert_int_equal(lstat(host(f, "/sub"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_int_equal(fs_chmod(&f->r, "/sub/missing", 0711), -1);
	assert_string_equal(err_msg(), "cannot chmod '/sub/missing': No such file or directory");
	/* A FIFO is refused, and opening it does not hang. */
	assert_int_equal(mkfifo(host(f, "/sub/fifo"), 0644), 0);
	assert_int_equal(fs_chmod(&f->r, "/sub/fifo", 0600), -1);
	assert_string_equal(err_msg(),
			    "cannot chmod '/sub/fifo': not a regular file or directory");
	assert_int_equal(fs_chown(&f->r, "/sub/fifo", (uid_t)-1, (gid_t)-1), -1);
	assert_int_equal(lstat(host(f, "/sub/fifo"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* The root directory itself can be managed. */
	assert_int_equal(fs_chmod(&f->r, "/", 0750), 0);
	assert_int_equal(lstat(f->root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	if (!is_root())
		return;
	assert_int_equal(fs_chown(&f->r, "/sub/f", 65534, (gid_t)-1), 0);
	assert_int_equal(lstat(host(f, "/sub/f"), &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(fs_chown(&f->r, "/sub", (uid_t)-1, 65534), 0);
	assert_int_equal(lstat(host(f, "/sub"), &st), 0);
	assert_int_equal(st.st_gid, 65534);
	/* A chown to the owner it already has keeps the setuid bit. */
	write_ok(f, "/sub/suid", "x", 04755);
	assert_int_equal(fs_chown(&f->r, "/sub/suid", 0, 0), 0);
	assert_int_equal(lstat(host(f, "/sub/suid"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	/* A real change clears it; chmod afterwards restores it. */
	assert_int_equal(fs_chown(&f->r, "/sub/suid", 65534, (gid_t)-1), 0);
	assert_int_equal(fs_chmod(&f->r, "/sub/suid", 04755), 0);
	assert_int_equal(lstat(host(f, "/sub/suid"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 65534);
}

static void test_fs__unlink_rmdir(void **state)
{
	struct fx *f = *state;
	struct stat st;

	write_ok(f, "/sub/f", "x", 0644);
	assert_int_equal(fs_unlink(&f->r, "/sub/f"), 0);
	assert_int_equal(lstat(host(f, "/sub/f"), &st), -1);
	assert_int_equal(fs_unlink(&f->r, "/sub/f"), -1);
	assert_string_equal(err_msg(), "cannot remove '/sub/f': No such file or directory");
	assert_int_equal(fs_mkdir(&f->r, "/sub/d", 0755, (uid_t)-1, (gid_t)-1), 0);
	write_ok(f, "/sub/d/f", "x", 0644);
	assert_int_equal(fs_unlink(&f->r, "/sub/d"), -1);
	assert_int_equal(fs_rmdir(&f->r, "/sub/d"), -1);
	assert_err_has("cannot remove directory '/sub/d'");
	assert_int_equal(fs_unlink(&f->r, "/sub/d/f"), 0);
	assert_int_equal(fs_rmdir(&f->r, "/sub/d"), 0);
	assert_int_equal(lstat(host(f, "/sub/d"), &st), -1);
	assert_int_equal(fs_rmdir(&f->r, "/"), -1);
	assert_int_equal(fs_unlink(&f->r, "/"), -1);
	/* Removing a symlink removes the link, not what it points to. */
	assert_int_equal(fs_unlink(&f->r, "/evil"), 0);
	assert_canary(f);
}

static void test_fs__read(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;

	write_ok(f, "/sub/f", "0123456789", 0600);
	buf_adds(&b, ">");
	assert_int_equal(fs_read(&f->r, "/sub/f", 10, &b), 0);
	assert_string_equal(b.ptr, ">0123456789");
	buf_reset(&b);
	assert_int_equal(fs_read(&f->r, "/sub/f", 9, &b), -1);
	assert_string_equal(err_msg(), "'/sub/f' is larger than 9 bytes");
	assert_int_equal(b.len, 0);
	assert_int_equal(fs_read(&f->r, "/sub/f", SIZE_MAX, &b), 0);
	assert_string_equal(b.ptr, "0123456789");
	buf_reset(&b);
	write_ok(f, "/sub/empty", "", 0644);
	assert_int_equal(fs_read(&f->r, "/sub/empty", 0, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(fs_read(&f->r, "/sub", 4096, &b), -1);
	assert_string_equal(err_msg(), "'/sub' is not a regular file");
	assert_int_equal(fs_read(&f->r, "/", 4096, &b), -1);
	assert_int_equal(mkfifo(host(f, "/sub/fifo"), 0644), 0);
	assert_int_equal(fs_read(&f->r, "/sub/fifo", 4096, &b), -1);
	assert_string_equal(err_msg(), "'/sub/fifo' is not a regular file");
	assert_int_equal(fs_read(&f->r, "/sub/missing", 4096, &b), -1);
	assert_string_equal(err_msg(), "cannot read '/sub/missing': No such file or directory");
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_fs__lstat(void **state)
{
	struct fx *f = *state;
	struct stat st;

	write_ok(f, "/sub/f", "abc", 0640);
	memset(&st, 0, sizeof(st));
	assert_int_equal(fs_lstat(&f->r, "/sub/f", &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(fs_lstat(&f->r, "/sub/missing", &st), 1);
	assert_int_equal(fs_lstat(&f->r, "/nope/missing", &st), 1);
	assert_int_equal(fs_lstat(&f->r, "/sub/f/below", &st), 1);
	assert_int_equal(fs_lstat(&f->r, "/", &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fs_lstat(&f->r, "/evil", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(fs_lstat(&f->r, "/evil/canary", &st), -1);
	assert_string_equal(err_msg(), "'/evil/canary' has a symlink in its path");
	assert_int_equal(fs_lstat(&f->r, "/evil/nothing/below", &st), -1);
}

static void test_fs__open(void **state)
{
	struct fx *f = *state;
	const char *base = NULL;
	struct stat st;
	int fd;

	write_ok(f, "/sub/f", "abc", 0644);
	fd = fs_open(&f->r, "/sub/f", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	fd = fs_open(&f->r, "/", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	fd = fs_open(&f->r, "/sub/missing", O_RDONLY);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ENOENT);
	fd = fs_open_parent(&f->r, "/sub/f", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "f");
	assert_int_equal(fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	fd = fs_open_parent(&f->r, "/top", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "top");
	close(fd);
	assert_int_equal(fs_open_parent(&f->r, "/", &base), -1);
}

static void test_fs__sweep_temps(void **state)
{
	struct fx *f = *state;
	struct stat st;

	put_file(host(f, "/sub/" FS_TMP_PREFIX "motd.0123"), "x", 0600);
	assert_int_equal(symlink(f->canary, host(f, "/sub/" FS_TMP_PREFIX "link.4567")), 0);
	assert_int_equal(mkdir(host(f, "/sub/" FS_TMP_PREFIX "dir.89ab"), 0700), 0);
	assert_int_equal(mkfifo(host(f, "/sub/" FS_TMP_PREFIX "fifo.cdef"), 0600), 0);
	put_file(host(f, "/sub/keep"), "x", 0644);
	put_file(host(f, "/sub/.driftless-tmp"), "x", 0644);
	put_file(host(f, "/sub/x" FS_TMP_PREFIX "y"), "x", 0644);
	put_file(host(f, "/" FS_TMP_PREFIX "top.0000"), "x", 0644);
	assert_int_equal(fs_sweep_temps(&f->r, "/sub"), 2);
	assert_int_equal(count_temps(host(f, "/sub")), 2);
	assert_int_equal(lstat(host(f, "/sub/" FS_TMP_PREFIX "dir.89ab"), &st), 0);
	assert_int_equal(lstat(host(f, "/sub/" FS_TMP_PREFIX "fifo.cdef"), &st), 0);
	assert_int_equal(lstat(host(f, "/sub/keep"), &st), 0);
	assert_int_equal(lstat(host(f, "/sub/.driftless-tmp"), &st), 0);
	assert_int_equal(lstat(host(f, "/sub/x" FS_TMP_PREFIX "y"), &st), 0);
	assert_int_equal(fs_sweep_temps(&f->r, "/sub"), 0);
	assert_int_equal(fs_sweep_temps(&f->r, "/"), 1);
	assert_int_equal(count_temps(f->root), 0);
	assert_int_equal(fs_sweep_temps(&f->r, "/nope"), -1);
	assert_string_equal(err_msg(), "cannot sweep '/nope': No such file or directory");
	assert_canary(f);
}

/*
 * Another process swaps a directory for a symlink to the outside, and a
 * file for a symlink to the canary, while we write, chmod and chown (F10).
 */
static void test_fs__swap_race(void **state)
{
	static const char *const paths[] = { "/sub/race/canary", "/sub/race2/f" };
	struct fx *f = *state;
	char dir[PATH_MAX], aside[PATH_MAX], file[PATH_MAX];
	int ok = 0, failed = 0, status;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s", host(f, "/sub/race"));
	snprintf(aside, sizeof(aside), "%s", host(f, "/sub/race.x"));
	snprintf(file, sizeof(file), "%s", host(f, "/sub/race2/f"));
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mkdir(host(f, "/sub/race2"), 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		for (;;) {
			if (rename(dir, aside) || symlink(f->outside, dir) ||
			    unlink(dir) || rename(aside, dir))
				_exit(1);
			/* race2 is never swapped, so this stays inside. */
			unlink(file);
			(void)!symlink(f->canary, file);
		}
	}
	for (int i = 0; i < 4000; i++) {
		const char *path = paths[i % 2];

		if (fs_write_atomic(&f->r, path, "pwned\n", 6, 0666, (uid_t)-1, (gid_t)-1))
			failed++;
		else
			ok++;
		fs_chmod(&f->r, path, 0666);
		if (is_root())
			fs_chown(&f->r, path, 65534, 65534);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(ok + failed == 4000);
	assert_canary(f);
}

static void test_fs__no_fd_leak(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct stat st;
	int before = count_fds();

	write_ok(f, "/sub/f", "x", 0644);
	fs_write_atomic(&f->r, "/sub", "x", 1, 0644, (uid_t)-1, (gid_t)-1);
	fs_write_atomic(&f->r, "/nope/x", "x", 1, 0644, (uid_t)-1, (gid_t)-1);
	fs_write_atomic(&f->r, "/evil/x", "x", 1, 0644, (uid_t)-1, (gid_t)-1);
	fs_read(&f->r, "/sub/f", 100, &b);
	fs_read(&f->r, "/sub/f", 0, &b);
	fs_read(&f->r, "/sub", 100, &b);
	fs_read(&f->r, "/evil/canary", 100, &b);
	fs_readlink(&f->r, "/evil", &b);
	fs_readlink(&f->r, "/sub/f", &b);
	fs_lstat(&f->r, "/sub/f", &st);
	fs_lstat(&f->r, "/sub/nope", &st);
	fs_lstat(&f->r, "/evil/x", &st);
	fs_symlink_atomic(&f->r, "/sub/l", "t", (uid_t)-1, (gid_t)-1);
	fs_symlink_atomic(&f->r, "/sub", "t", (uid_t)-1, (gid_t)-1);
	fs_mkdir(&f->r, "/sub/d", 0755, (uid_t)-1, (gid_t)-1);
	fs_mkdir(&f->r, "/sub/d", 0755, (uid_t)-1, (gid_t)-1);
	fs_chmod(&f->r, "/sub/f", 0600);
	fs_chmod(&f->r, "/sub/l", 0600);
	fs_chmod(&f->r, "/sub/nope", 0600);
	fs_chown(&f->r, "/sub/f", (uid_t)-1, (gid_t)-1);
	fs_chown(&f->r, "/sub/l", (uid_t)-1, (gid_t)-1);
	fs_chown(&f->r, "/sub/nope", (uid_t)-1, (gid_t)-1);
	fs_unlink(&f->r, "/sub/l");
	fs_unlink(&f->r, "/sub/l");
	fs_rmdir(&f->r, "/sub/d");
	fs_rmdir(&f->r, "/sub/d");
	fs_sweep_temps(&f->r, "/sub");
	fs_sweep_temps(&f->r, "/nope");
	fs_sweep_temps(&f->r, "/evil");
	buf_release(&b);
	/* fs_lstat keeps its last directory open until told to forget it */
	fs_root_forget(&f->r);
	assert_int_equal(count_fds(), before);
}

static void test_fs__lstat_dir_cache_follows_changes(void **state)
{
	struct fx *f = *state;
	struct stat st;

	write_ok(f, "/sub/f", "x", 0644);
	assert_int_equal(fs_lstat(&f->r, "/sub/f", &st), 0);
	assert_int_equal(fs_lstat(&f->r, "/sub/g", &st), 1);
	/* the directory is swapped for a symlink to the outside: after forget,
	 * the new path is resolved again and refused */
	char *sub = xasprintf("%s/sub", f->root);
	char *moved = xasprintf("%s/sub.old", f->root);
	assert_int_equal(rename(sub, moved), 0);
	assert_int_equal(symlink(f->outside, sub), 0);
	fs_root_forget(&f->r);
	assert_int_equal(fs_lstat(&f->r, "/sub/f", &st), -1);
	unlink(sub);
	rename(moved, sub);
	fs_root_forget(&f->r);
	free(sub);
	free(moved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs__mode_matches_env),
		cmocka_unit_test_setup_teardown(test_fs__openat2_enosys_falls_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fs__root_open_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_owner_setuid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_replaces_atomically, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_target_is_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_parent_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_fails_midway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_ebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__write_name_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__relative_path_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__symlink_parent_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__symlink_last_write_replaces_link, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fs__symlink_last_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__dotdot_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__symlink_into_root_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__magic_link_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__mkdir_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__symlink_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__readlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__chmod_chown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__unlink_rmdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__lstat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__sweep_temps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__swap_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__lstat_dir_cache_follows_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__no_fd_leak, setup, teardown),
	};

	/* Before any fsroot is opened, so that its fd sees the test mounts. */
	can_mount();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
