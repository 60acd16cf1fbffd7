/* SPDX-License-Identifier: MIT */
/* Unit tests for the process runner: exit codes, signals, timeouts that kill the group, bounded output, fds, env. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/err.h"
#include "lib/proc.h"
#include "lib/redact.h"

static int run(struct proc_result *res, const char *const *argv, const char *const *env)
{
	struct proc_opts o = { .argv = argv, .env = env };
	return proc_run(&o, res);
}

static void test_proc__exit_codes(void **state)
{
	(void)state;
	struct proc_result r;
	const char *const t[] = { "/bin/true", NULL };
	assert_int_equal(run(&r, t, NULL), 0);
	assert_true(r.exited);
	assert_int_equal(r.status, 0);
	assert_true(proc_ok(&r));
	proc_result_release(&r);

	const char *const f[] = { "/bin/sh", "-c", "exit 3", NULL };
	assert_int_equal(run(&r, f, NULL), 0);
	assert_true(r.exited);
	assert_int_equal(r.status, 3);
	assert_false(proc_ok(&r));
	struct buf d = BUF_INIT;
	struct proc_opts o = { .argv = f };
	proc_describe(&r, &o, &d);
	assert_string_equal(d.ptr, "exit status 3");
	buf_release(&d);
	proc_result_release(&r);
}

static void test_proc__signal(void **state)
{
	(void)state;
	struct proc_result r;
	const char *const a[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
	assert_int_equal(run(&r, a, NULL), 0);
	assert_false(r.exited);
	assert_int_equal(r.signal, SIGKILL);
	assert_false(r.timed_out);
	proc_result_release(&r);
}

static void test_proc__not_started(void **state)
{
	(void)state;
	struct proc_result r;
	const char *const rel[] = { "sh", "-c", "true", NULL };
	assert_int_equal(run(&r, rel, NULL), -1);
	assert_non_null(strstr(err_msg(), "not an absolute path"));
	const char *const none[] = { "/nonexistent/program", NULL };
	assert_int_equal(run(&r, none, NULL), -1);
	assert_string_equal(err_msg(), "cannot run '/nonexistent/program': No such file or directory");
	struct proc_opts o = { .argv = (const char *const[]){ "/bin/true", NULL }, .cwd = "/nonexistent" };
	assert_int_equal(proc_run(&o, &r), -1);
	assert_non_null(strstr(err_msg(), "in '/nonexistent'"));
}

static int alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *close = strrchr(buf, ')');
	return close && close[1] == ' ' && close[2] != 'Z' && close[2] != 'X';
}

static void test_proc__timeout_kills_group(void **state)
{
	(void)state;
	char file[] = "/tmp/test_proc.XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	close(fd);
	char *script = xasprintf("sleep 100 & echo $! > %s; sleep 100", file);
	const char *const a[] = { "/bin/sh", "-c", script, NULL };
	struct proc_opts o = { .argv = a, .timeout_ms = 300, .grace_ms = 200 };
	struct proc_result r;
	assert_int_equal(proc_run(&o, &r), 0);
	assert_true(r.timed_out);
	assert_false(r.exited);
	assert_int_equal(r.signal, SIGTERM);
	assert_true(r.ms < 5000);
	FILE *fp = fopen(file, "re");
	int bg = 0;
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%d", &bg), 1);
	fclose(fp);
	for (int i = 0; i < 100 && alive(bg); i++)
		usleep(10000);
	assert_false(alive(bg));
	proc_result_release(&r);
	unlink(file);
	free(script);

	/* a program that ignores SIGTERM is killed after the grace period */
	const char *const t[] = { "/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done", NULL };
	o.argv = t;
	assert_int_equal(proc_run(&o, &r), 0);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, SIGKILL);
	struct buf d = BUF_INIT;
	proc_describe(&r, &o, &d);
	assert_string_equal(d.ptr, "timed out after 300 ms");
	buf_release(&d);
	proc_result_release(&r);
}

static void test_proc__strays_killed_on_exit(void **state)
{
	(void)state;
	char file[] = "/tmp/test_proc.XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	close(fd);
	char *script = xasprintf("sleep 100 >/dev/null 2>&1 & echo $! > %s; exit 0", file);
	const char *const a[] = { "/bin/sh", "-c", script, NULL };
	struct proc_result r;
	assert_int_equal(run(&r, a, NULL), 0);
	assert_true(proc_ok(&r));
	FILE *fp = fopen(file, "re");
	int bg = 0;
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%d", &bg), 1);
	fclose(fp);
	for (int i = 0; i < 100 && alive(bg); i++)
		usleep(10000);
	assert_false(alive(bg));
	proc_result_release(&r);
	unlink(file);
	free(script);
}

static void test_proc__output_bounded(void **state)
{
	(void)state;
	const char *const a[] = { "/bin/sh", "-c",
		"echo START; head -c 1000000 /dev/zero | tr '\\0' a; echo; echo END; echo oops >&2", NULL };
	struct proc_opts o = { .argv = a, .out_max = 1000 };
	struct proc_result r;
	assert_int_equal(proc_run(&o, &r), 0);
	assert_true(proc_ok(&r));
	assert_true(r.out.len < 1100);
	assert_int_equal(r.out_dropped, 6 + 1000000 + 1 + 4 - 1000);
	assert_int_equal(strncmp(r.out.ptr, "START\n", 6), 0);
	assert_non_null(strstr(r.out.ptr, "[... 999011 bytes dropped ...]\n"));
	assert_string_equal(r.out.ptr + r.out.len - 4, "END\n");
	assert_string_equal(r.err.ptr, "oops\n");
	assert_int_equal(r.err_dropped, 0);
	proc_result_release(&r);

	/* merged: both streams in one buffer */
	const char *const m[] = { "/bin/sh", "-c", "echo one; echo two >&2", NULL };
	struct proc_opts mo = { .argv = m, .merge_stderr = 1 };
	assert_int_equal(proc_run(&mo, &r), 0);
	assert_string_equal(r.out.ptr, "one\ntwo\n");
	assert_int_equal(r.err.len, 0);
	proc_result_release(&r);
}

static void test_proc__no_fd_leaks(void **state)
{
	(void)state;
	int leak = open("/dev/null", O_RDONLY);	/* deliberately not O_CLOEXEC */
	int leak2 = dup2(leak, 200);
	assert_true(leak >= 0 && leak2 == 200);
	const char *const a[] = { "/bin/ls", "/proc/self/fd", NULL };
	struct proc_result r;
	assert_int_equal(run(&r, a, NULL), 0);
	/* 0, 1, 2 and the directory ls itself reads */
	assert_string_equal(r.out.ptr, "0\n1\n2\n3\n");
	proc_result_release(&r);
	/* stdin is /dev/null: cat ends at once */
	const char *const c[] = { "/bin/cat", NULL };
	assert_int_equal(run(&r, c, NULL), 0);
	assert_true(proc_ok(&r));
	assert_int_equal(r.out.len, 0);
	proc_result_release(&r);
	const char *const l[] = { "/usr/bin/readlink", "/proc/self/fd/0", NULL };
	assert_int_equal(run(&r, l, NULL), 0);
	assert_string_equal(r.out.ptr, "/dev/null\n");
	proc_result_release(&r);
	close(leak);
	close(leak2);
}

static void test_proc__env_exact(void **state)
{
	(void)state;
	setenv("DL_TEST_PROC_PARENT", "must-not-leak", 1);
	const char *const a[] = { "/usr/bin/env", NULL };
	const char *const env[] = { "A=1", "B=two words", NULL };
	struct proc_result r;
	assert_int_equal(run(&r, a, env), 0);
	assert_string_equal(r.out.ptr, "A=1\nB=two words\n");
	proc_result_release(&r);
	assert_int_equal(run(&r, a, NULL), 0);
	assert_int_equal(r.out.len, 0);
	proc_result_release(&r);
	assert_int_equal(run(&r, a, proc_default_env), 0);
	assert_string_equal(r.out.ptr, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLC_ALL=C\n");
	proc_result_release(&r);
}

static void test_proc__group_cwd_signals(void **state)
{
	(void)state;
	/* its own process group, default signal mask, the working directory */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	signal(SIGPIPE, SIG_IGN);
	const char *const a[] = { "/bin/sh", "-c",
		"pwd; echo $$; cut -d' ' -f5 /proc/$$/stat; grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL };
	struct proc_opts o = { .argv = a, .cwd = "/tmp" };
	struct proc_result r;
	assert_int_equal(proc_run(&o, &r), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);
	int pid = 0, pgid = 0;
	char cwd[64];
	assert_int_equal(sscanf(r.out.ptr, "%63s %d %d", cwd, &pid, &pgid), 3);
	assert_string_equal(cwd, "/tmp");
	assert_int_equal(pid, pgid);
	assert_non_null(strstr(r.out.ptr, "SigBlk:\t0000000000000000"));
	assert_null(strstr(r.out.ptr, "SigIgn:\t0000000000001000"));	/* SIGPIPE not ignored */
	proc_result_release(&r);
}

static void test_proc__ids(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	const char *const a[] = { "/usr/bin/id", NULL };
	struct proc_opts o = { .argv = a, .set_ids = 1, .uid = 65534, .gid = 65534 };
	struct proc_result r;
	assert_int_equal(proc_run(&o, &r), 0);
	assert_true(proc_ok(&r));
	assert_non_null(strstr(r.out.ptr, "uid=65534"));
	assert_non_null(strstr(r.out.ptr, "gid=65534"));
	assert_null(strstr(r.out.ptr, "groups=0"));
	proc_result_release(&r);
}

static void test_proc__redacted(void **state)
{
	(void)state;
	redact_add("canary-s3cr3t-value", 19);
	const char *const a[] = { "/bin/sh", "-c", "echo got canary-s3cr3t-value; echo canary-s3cr3t-value >&2",
				  NULL };
	struct proc_result r;
	assert_int_equal(run(&r, a, NULL), 0);
	assert_null(strstr(r.out.ptr, "s3cr3t"));
	assert_null(strstr(r.err.ptr, "s3cr3t"));
	assert_non_null(strstr(r.out.ptr, "<redacted sha256:"));
	proc_result_release(&r);
	redact_clear();
}

static void test_proc__spawn(void **state)
{
	(void)state;
	char file[] = "/tmp/test_proc.XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	const char *const a[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 5", NULL };
	struct proc_opts o = { .argv = a, .merge_stderr = 1 };
	struct proc_child c;
	assert_int_equal(proc_spawn(&o, fd, -1, &c), 0);
	assert_true(c.pid > 0);
	if (c.pidfd >= 0) {
		struct pollfd pfd = { .fd = c.pidfd, .events = POLLIN };
		assert_int_equal(poll(&pfd, 1, 5000), 1);
		close(c.pidfd);
	}
	int st = 0;
	assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 5);
	char buf[64] = { 0 };
	assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), 8);
	assert_string_equal(buf, "out\nerr\n");
	close(fd);
	unlink(file);
	const char *const none[] = { "/nonexistent", NULL };
	o.argv = none;
	assert_int_equal(proc_spawn(&o, -1, -1, &c), -1);
	assert_string_equal(err_msg(), "cannot run '/nonexistent': No such file or directory");
}

static void test_proc__tail(void **state)
{
	(void)state;
	struct buf t = BUF_INIT, out = BUF_INIT;
	buf_adds(&t, "Reading package lists...\nE: first\nE: second\n\n");
	proc_tail(&out, &t, 20);
	assert_string_equal(out.ptr, "E: first; E: second");
	buf_reset(&out);
	proc_tail(&out, &t, 1000);
	assert_string_equal(out.ptr, "Reading package lists...; E: first; E: second");
	buf_release(&t);
	buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc__exit_codes),
		cmocka_unit_test(test_proc__signal),
		cmocka_unit_test(test_proc__not_started),
		cmocka_unit_test(test_proc__timeout_kills_group),
		cmocka_unit_test(test_proc__strays_killed_on_exit),
		cmocka_unit_test(test_proc__output_bounded),
		cmocka_unit_test(test_proc__no_fd_leaks),
		cmocka_unit_test(test_proc__env_exact),
		cmocka_unit_test(test_proc__group_cwd_signals),
		cmocka_unit_test(test_proc__ids),
		cmocka_unit_test(test_proc__redacted),
		cmocka_unit_test(test_proc__spawn),
		cmocka_unit_test(test_proc__tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
