/* SPDX-License-Identifier: MIT */
/* Starting programs: argv and execve only, a clean environment, bounded and redacted output, a timeout that kills the group. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "lib/err.h"
#include "lib/proc.h"
#include "lib/redact.h"

const char *const proc_default_env[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	NULL,
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One captured stream: the first half kept as it came, the last half in a ring. */
struct capture {
	int fd;
	size_t head_max, tail_max;
	struct buf head;
	char *ring;
	size_t ring_len, ring_pos;	/* bytes in the ring, next write position */
	size_t total;
};

static void capture_init(struct capture *c, int fd, size_t max)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->head_max = max / 2;
	c->tail_max = max - c->head_max;
	c->ring = xmalloc(c->tail_max ? c->tail_max : 1);
}

static void capture_add(struct capture *c, const char *p, size_t n)
{
	c->total += n;
	if (c->head.len < c->head_max) {
		size_t take = c->head_max - c->head.len;
		if (take > n)
			take = n;
		buf_add(&c->head, p, take);
		p += take;
		n -= take;
	}
	if (!c->tail_max)
		return;
	if (n >= c->tail_max) {
		/* only the last tail_max bytes of this chunk can survive */
		memcpy(c->ring, p + n - c->tail_max, c->tail_max);
		c->ring_len = c->tail_max;
		c->ring_pos = 0;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		c->ring[c->ring_pos] = p[i];
		c->ring_pos = (c->ring_pos + 1) % c->tail_max;
		if (c->ring_len < c->tail_max)
			c->ring_len++;
	}
}

/* Head, a marker for what was dropped, and the tail, redacted into out. */
static void capture_finish(struct capture *c, struct buf *out, size_t *dropped)
{
	struct buf raw = BUF_INIT;
	buf_add(&raw, c->head.ptr ? c->head.ptr : "", c->head.len);
	*dropped = c->total - c->head.len - c->ring_len;
	if (*dropped)
		buf_addf(&raw, "%s[... %zu bytes dropped ...]\n",
			 raw.len && raw.ptr[raw.len - 1] != '\n' ? "\n" : "", *dropped);
	size_t start = c->ring_len < c->tail_max ? 0 : c->ring_pos;
	for (size_t i = 0; i < c->ring_len; i++)
		buf_addch(&raw, c->ring[(start + i) % c->tail_max]);
	buf_reset(out);
	redact_buf(out, raw.ptr ? raw.ptr : "", raw.len);
	redact_wipe(raw.ptr, raw.len);
	buf_release(&raw);
	redact_wipe(c->ring, c->tail_max);
	free(c->ring);
	c->ring = NULL;
	buf_release(&c->head);
}

/* Move fd above the standard descriptors (a daemon may have closed them). */
static int high_fd(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return nfd;
}

struct child_failure {
	int stage;	/* 0 setup, 1 groups/ids, 2 cwd, 3 exec */
	int err;
};

static void child_fail(int fd, int stage)
{
	struct child_failure f = { stage, errno };
	ssize_t w = write(fd, &f, sizeof(f));
	(void)w;
	_exit(127);
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowfd; fd < max; fd++)
		close(fd);
}

/* In the child after fork: only async-signal-safe calls until execve. */
static void child(const struct proc_opts *o, int devnull, int outw, int errw, int failw)
{
	static const char *const empty[] = { NULL };
	sigset_t none;
	struct sigaction dfl;

	if (o->new_session ? setsid() < 0 : setpgid(0, 0) < 0)
		child_fail(failw, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);	/* SIGKILL, SIGSTOP and RT internals refuse: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (outw < 0)
		outw = devnull;
	if (o->merge_stderr || errw < 0)
		errw = o->merge_stderr ? outw : devnull;
	if (dup2(devnull, 0) < 0 || dup2(outw, 1) < 0 || dup2(errw, 2) < 0)
		child_fail(failw, 0);
	if (failw != 3) {
		if (dup3(failw, 3, O_CLOEXEC) < 0)
			child_fail(failw, 0);
		failw = 3;
	}
	close_from(4);
	umask(022);
	if (o->set_ids) {
		if (setgroups(o->ngroups, o->ngroups ? o->groups : NULL) < 0 || setgid(o->gid) < 0 ||
		    setuid(o->uid) < 0)
			child_fail(failw, 1);
	}
	if (chdir(o->cwd ? o->cwd : "/") < 0)
		child_fail(failw, 2);
	execve(o->argv[0], (char *const *)o->argv, (char *const *)(o->env ? o->env : empty));
	child_fail(failw, 3);
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return high_fd(fd);
	}
#endif
	(void)pid;
	return -1;
}

/* Has the child exited? Leaves it a zombie, so its pid (and group id)
 * cannot be reused while we still signal the group. */
static int child_exited(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD;
	return si.si_pid == pid;
}

void proc_result_release(struct proc_result *res)
{
	if (!res)
		return;
	buf_release(&res->out);
	buf_release(&res->err);
}

int proc_ok(const struct proc_result *res)
{
	return res->exited && res->status == 0 && !res->timed_out;
}

void proc_describe(const struct proc_result *res, const struct proc_opts *o, struct buf *out)
{
	if (res->timed_out)
		buf_addf(out, "timed out after %lld ms", (long long)o->timeout_ms);
	else if (res->exited)
		buf_addf(out, "exit status %d", res->status);
	else
		buf_addf(out, "killed by signal %d (%s)", res->signal, strsignal(res->signal));
}

void proc_tail(struct buf *out, const struct buf *text, size_t max)
{
	const char *s = text->ptr ? text->ptr : "";
	size_t len = text->len;
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r'))
		len--;
	size_t start = len > max ? len - max : 0;
	if (start) {
		const char *nl = memchr(s + start, '\n', len - start);
		if (nl && (size_t)(nl - s) + 1 < len)
			start = (size_t)(nl - s) + 1;
	}
	int sep = 0;
	for (size_t i = start; i < len; i++) {
		if (s[i] == '\n' || s[i] == '\r') {
			sep = 1;
			continue;
		}
		if (sep && out->len)
			buf_adds(out, "; ");
		sep = 0;
		buf_addch(out, s[i]);
	}
}

/*
 * Fork and exec o with stdout on outw and stderr on errw (-1: /dev/null),
 * which the child gets as copies; the caller keeps its own. Returns the
 * pid once the program runs, or -1 (err_msg) when it could not be started.
 */
static pid_t start(const struct proc_opts *o, int outw, int errw)
{
	int failp[2] = { -1, -1 }, devnull = -1, o1 = -1, o2 = -1;
	pid_t pid = -1;

	if (!o->argv || !o->argv[0] || o->argv[0][0] != '/')
		return err_set("cannot run '%s': not an absolute path",
			       o->argv && o->argv[0] ? o->argv[0] : "");
	devnull = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (devnull < 0) {
		err_set_errno("cannot open '/dev/null'");
		goto out;
	}
	/* copies above 2, so the dup2 onto 0, 1 and 2 cannot clobber one */
	if ((outw >= 0 && (o1 = fcntl(outw, F_DUPFD_CLOEXEC, 3)) < 0) ||
	    (errw >= 0 && (o2 = fcntl(errw, F_DUPFD_CLOEXEC, 3)) < 0) ||
	    pipe2(failp, O_CLOEXEC) < 0) {
		err_set_errno("cannot run '%s': pipe", o->argv[0]);
		goto out;
	}
	failp[0] = high_fd(failp[0]);
	failp[1] = high_fd(failp[1]);
	pid = fork();
	if (pid < 0) {
		err_set_errno("cannot run '%s': fork", o->argv[0]);
		goto out;
	}
	if (pid == 0)
		child(o, devnull, o1, o2, failp[1]);
	/* also here, so the group exists before we signal it (a session leader
	 * to be must not be made a group leader first: setsid would fail) */
	if (!o->new_session)
		setpgid(pid, pid);
	close(failp[1]);
	failp[1] = -1;

	/* the failure pipe closes on execve; data on it means no exec happened */
	struct child_failure f;
	ssize_t got;
	do
		got = read(failp[0], &f, sizeof(f));
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)sizeof(f)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		pid = -1;
		errno = f.err;
		if (f.stage == 1)
			err_set_errno("cannot run '%s' as uid %u gid %u", o->argv[0], (unsigned)o->uid,
				      (unsigned)o->gid);
		else if (f.stage == 2)
			err_set_errno("cannot run '%s' in '%s'", o->argv[0], o->cwd ? o->cwd : "/");
		else
			err_set_errno("cannot run '%s'", o->argv[0]);
	}
out:
	{
		int fds[] = { devnull, o1, o2, failp[0], failp[1] };
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return pid;
}

int proc_spawn(const struct proc_opts *o, int out_fd, int err_fd, struct proc_child *out)
{
	pid_t pid = start(o, out_fd, err_fd);
	if (pid < 0)
		return -1;
	out->pid = pid;
	out->pidfd = pidfd_of(pid);
	return 0;
}

int proc_run(const struct proc_opts *o, struct proc_result *res)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int pidfd = -1, ret = -1;
	struct capture cap[2];
	int ncap = 0;
	pid_t pid = -1;

	memset(res, 0, sizeof(*res));
	int64_t t0 = mono_ms();
	if (pipe2(outp, O_CLOEXEC) < 0 || (!o->merge_stderr && pipe2(errp, O_CLOEXEC) < 0)) {
		err_set_errno("cannot run '%s': pipe", o->argv && o->argv[0] ? o->argv[0] : "");
		goto out;
	}
	pid = start(o, outp[1], errp[1]);
	close(outp[1]);
	outp[1] = -1;
	if (errp[1] >= 0) {
		close(errp[1]);
		errp[1] = -1;
	}
	if (pid < 0)
		goto out;

	size_t max = o->out_max ? o->out_max : PROC_OUT_MAX;
	capture_init(&cap[ncap++], outp[0], max);
	if (!o->merge_stderr)
		capture_init(&cap[ncap++], errp[0], max);
	pidfd = pidfd_of(pid);

	int64_t deadline = o->timeout_ms > 0 ? t0 + o->timeout_ms : -1;
	int64_t grace = o->grace_ms > 0 ? o->grace_ms : PROC_GRACE_MS;
	int64_t kill_at = -1, drain_until = -1;
	int exited = 0, termed = 0, killed = 0, st = 0;
	char chunk[16384];

	for (;;) {
		int64_t now = mono_ms();
		if (!exited && (pidfd < 0 || kill_at >= 0) && child_exited(pid))
			exited = 1;
		if (exited && drain_until < 0) {
			/* whatever it left in its group goes with it (the leader is
			 * still a zombie, so the group id is still ours) */
			kill(-pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			pid = -1;
			drain_until = now + 2000;
		}
		int open_pipes = 0;
		for (int i = 0; i < ncap; i++)
			open_pipes += cap[i].fd >= 0;
		if (exited && (!open_pipes || now >= drain_until))
			break;
		if (!exited && deadline >= 0 && now >= deadline && !termed) {
			kill(-pid, SIGTERM);
			termed = 1;
			res->timed_out = 1;
			kill_at = now + grace;
		}
		if (!exited && kill_at >= 0 && now >= kill_at && !killed) {
			kill(-pid, SIGKILL);
			killed = 1;
		}
		int64_t wait = INT32_MAX;	/* "forever": the pidfd wakes us */
		if (!exited && deadline >= 0 && !termed)
			wait = deadline - now;
		if (!exited && kill_at >= 0 && !killed)
			wait = kill_at - now;
		if (!exited && (pidfd < 0 || kill_at >= 0) && wait > 20)
			wait = 20;	/* no pidfd (or the group is dying): poll for the exit */
		if (exited)
			wait = drain_until - now;
		if (wait < 0)
			wait = 0;
		int forever = wait == INT32_MAX;
		struct pollfd pfd[3];
		int n = 0, pi = -1;
		int idx[2] = { -1, -1 };
		for (int i = 0; i < ncap; i++)
			if (cap[i].fd >= 0) {
				idx[i] = n;
				pfd[n++] = (struct pollfd){ .fd = cap[i].fd, .events = POLLIN };
			}
		if (!exited && pidfd >= 0) {
			pi = n;
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		}
		int r = poll(pfd, (nfds_t)n, forever ? -1 : (int)wait);
		if (r < 0 && errno != EINTR) {
			err_set_errno("cannot run '%s': poll", o->argv[0]);
			goto out;
		}
		if (r <= 0)
			continue;
		for (int i = 0; i < ncap; i++) {
			if (idx[i] < 0 || !(pfd[idx[i]].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t k = read(cap[i].fd, chunk, sizeof(chunk));
			if (k > 0)
				capture_add(&cap[i], chunk, (size_t)k);
			else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(cap[i].fd);
				cap[i].fd = -1;
			}
		}
		if (pi >= 0 && (pfd[pi].revents & POLLIN))
			exited = 1;
	}
	if (WIFEXITED(st)) {
		res->exited = 1;
		res->status = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res->signal = WTERMSIG(st);
	}
	ret = 0;
out:
	for (int i = 0; i < ncap; i++) {
		if (cap[i].fd >= 0)
			close(cap[i].fd);
		if (ret == 0)
			capture_finish(&cap[i], i == 0 ? &res->out : &res->err,
				       i == 0 ? &res->out_dropped : &res->err_dropped);
		else {
			free(cap[i].ring);
			buf_release(&cap[i].head);
		}
	}
	if (pid > 0) {
		/* a failure after the start: do not leave the group behind */
		kill(-pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (ncap == 0) {
		int fds[] = { outp[0], outp[1], errp[0], errp[1] };
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	res->ms = mono_ms() - t0;
	return ret;
}
