/* SPDX-License-Identifier: MIT */
/* The builtin Service backend: detached processes, their identity and logs, and the agent's supervisor. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include "daemon/supervise.h"
#include "lib/err.h"
#include "lib/hmap.h"
#include "lib/json.h"
#include "lib/proc.h"
#include "state/db.h"

#define HTTP_REPLY_MAX 512
#define TICK_MS 1000		/* log rotation, and liveness without a pidfd */

static int64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void slog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void slog(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* ---- identity: pid, start time, boot ---- */

/* State (field 3) and start time (field 22) of /proc/PID/stat. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: fields follow the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	char *save = NULL;
	int field = 3;
	for (char *t = strtok_r(p + 1, " ", &save); t; t = strtok_r(NULL, " ", &save), field++) {
		if (field == 3)
			*state = t[0];
		if (field == 22) {
			*start = strtoull(t, NULL, 10);
			return 0;
		}
	}
	return -1;
}

static const char *boot_id(void)
{
	static char id[64];
	if (id[0])
		return id;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, id, sizeof(id) - 1) : -1;
	if (fd >= 0)
		close(fd);
	id[n > 0 ? n : 0] = '\0';
	id[strcspn(id, "\n")] = '\0';
	if (!id[0])
		snprintf(id, sizeof(id), "unknown");
	return id;
}

int svc_alive(const struct svc_record *r)
{
	char state;
	uint64_t start;
	if (!r || r->pid <= 0 || (r->boot && strcmp(r->boot, boot_id())))
		return 0;
	if (proc_stat(r->pid, &state, &start) < 0)
		return 0;
	return state != 'Z' && state != 'X' && start == r->start;
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
#else
	(void)pid;
	return -1;
#endif
}

/* ---- records in the state database ---- */

static char *record_key(const char *id)
{
	return xasprintf("service:%s", id);
}

int svc_record_load(struct db *db, struct arena *a, const char *id, struct svc_record *out)
{
	char *key = record_key(id);
	char *text = db_meta_get(db, key, a);
	free(key);
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->ready = -1;
	if (!text)
		return 1;
	struct json *j;
	if (json_parse(a, text, strlen(text), &j) < 0)
		return err_wrap("the record of %s", id);
	int64_t v;
	out->backend = json_str(json_get(j, "backend"));
	out->want = json_int(json_get(j, "want"), &v) == 0 ? (int)v : 0;
	out->pid = json_int(json_get(j, "pid"), &v) == 0 ? (pid_t)v : 0;
	out->start = json_int(json_get(j, "start"), &v) == 0 ? (uint64_t)v : 0;
	out->boot = json_str(json_get(j, "boot"));
	out->started_ms = json_int(json_get(j, "startedMs"), &v) == 0 ? v : 0;
	out->key = json_str(json_get(j, "key"));
	out->trig = json_str(json_get(j, "trig"));
	out->restarts = json_int(json_get(j, "restarts"), &v) == 0 ? (int)v : 0;
	out->last_exit = json_str(json_get(j, "lastExit"));
	out->ready = json_int(json_get(j, "ready"), &v) == 0 ? (int)v : -1;
	/* json_int refuses negative numbers: -1 is written as null */
	out->health = json_str(json_get(j, "health"));
	out->checked_ms = json_int(json_get(j, "checkedMs"), &v) == 0 ? v : 0;
	return 0;
}

int svc_record_save(struct db *db, const struct svc_record *r)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"backend\":");
	buf_add_json_str(&b, r->backend ? r->backend : "builtin");
	buf_addf(&b, ",\"want\":%d,\"pid\":%d,\"start\":%llu,\"boot\":", r->want, (int)r->pid,
		 (unsigned long long)r->start);
	buf_add_json_str(&b, r->boot);
	buf_addf(&b, ",\"startedMs\":%lld,\"key\":", (long long)r->started_ms);
	buf_add_json_str(&b, r->key);
	buf_adds(&b, ",\"trig\":");
	buf_add_json_str(&b, r->trig);
	buf_addf(&b, ",\"restarts\":%d,\"lastExit\":", r->restarts);
	buf_add_json_str(&b, r->last_exit);
	if (r->ready >= 0)
		buf_addf(&b, ",\"ready\":%d", r->ready);
	else
		buf_adds(&b, ",\"ready\":null");
	buf_adds(&b, ",\"health\":");
	buf_add_json_str(&b, r->health);
	buf_addf(&b, ",\"checkedMs\":%lld}", (long long)r->checked_ms);
	char *key = record_key(r->id);
	int ret = db_meta_set(db, key, b.ptr);
	free(key);
	buf_release(&b);
	return ret;
}

int svc_record_del(struct db *db, const char *id)
{
	char *key = record_key(id);
	int ret = db_meta_set(db, key, NULL);
	free(key);
	return ret;
}

/* ---- logs ---- */

char *svc_log_path(const char *state_dir, const char *name)
{
	return xasprintf("%s/services/%s/out.log", state_dir, name);
}

/* Copy from into to (a new file, written whole, then renamed into place). */
static int copy_file(const char *from, const char *to, uint64_t max)
{
	char *tmp = xasprintf("%s.tmp", to);
	int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int ret = -1;
	char chunk[65536];
	uint64_t done = 0;
	if (in < 0 || out < 0)
		goto out;
	for (;;) {
		ssize_t n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -1 : 0;
			break;
		}
		if (write(out, chunk, (size_t)n) != n)
			break;
		done += (uint64_t)n;
		if (done >= max * 2) {	/* it keeps growing while we copy: enough */
			ret = 0;
			break;
		}
	}
	if (ret == 0 && rename(tmp, to) < 0)
		ret = -1;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

/*
 * out.log larger than max: shift out.log.N-1 .. out.log.1 up by one, copy
 * out.log to out.log.1 and truncate it. A copy and not a rename, because
 * the service holds the file open (appending) and must go on writing to
 * out.log; what it writes between the copy and the truncation is lost.
 */
static void log_rotate(const char *log, uint64_t max, int keep)
{
	struct stat st;
	if (!max || lstat(log, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size <= max)
		return;
	for (int k = keep - 1; k >= 1; k--) {
		char *from = xasprintf("%s.%d", log, k), *to = xasprintf("%s.%d", log, k + 1);
		rename(from, to);
		free(from);
		free(to);
	}
	if (keep > 0) {
		char *to = xasprintf("%s.1", log);
		copy_file(log, to, max);
		free(to);
	}
	if (truncate(log, 0) < 0)
		slog("agent: cannot truncate '%s': %s", log, strerror(errno));
}

static int log_open(const char *state_dir, const struct svc_def *d)
{
	char *dir = xasprintf("%s/services", state_dir);
	mkdir(dir, 0700);
	free(dir);
	dir = xasprintf("%s/services/%s", state_dir, d->name);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err_set_errno("cannot create '%s'", dir);
		free(dir);
		return -1;
	}
	free(dir);
	char *log = svc_log_path(state_dir, d->name);
	log_rotate(log, d->log_max, d->log_keep);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		err_set_errno("cannot open the log '%s'", log);
	free(log);
	return fd;
}

/* ---- start and stop ---- */

static void proc_opts_of(const struct svc_def *d, const char *const *argv, struct proc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->argv = argv;
	o->env = d->env;
	o->cwd = d->cwd;
	o->set_ids = d->set_ids;
	o->uid = d->uid;
	o->gid = d->gid;
	o->groups = &d->gid;
	o->ngroups = d->set_ids ? 1 : 0;
}

static int spawn(const char *state_dir, const struct svc_def *d, struct svc_record *r, int *pidfd)
{
	int fd = log_open(state_dir, d);
	if (fd < 0)
		return -1;
	struct proc_opts o;
	proc_opts_of(d, d->argv, &o);
	o.merge_stderr = 1;
	o.new_session = 1;	/* its own session: it outlives us, and no terminal reaches it */
	struct proc_child ch;
	int ret = proc_spawn(&o, fd, -1, &ch);
	close(fd);
	if (ret < 0)
		return err_wrap("cannot start %s", d->id);
	char state;
	r->pid = ch.pid;
	r->start = 0;
	proc_stat(ch.pid, &state, &r->start);
	r->boot = boot_id();
	r->started_ms = wall_now();
	r->last_exit = NULL;
	if (pidfd)
		*pidfd = ch.pidfd;
	else if (ch.pidfd >= 0)
		close(ch.pidfd);
	return 0;
}

int svc_start(const char *state_dir, const struct svc_def *d, struct svc_record *r)
{
	return spawn(state_dir, d, r, NULL);
}

/* Reap pid when it is our child and has ended (no-op otherwise). */
static void reap(pid_t pid)
{
	if (pid > 0)
		while (waitpid(pid, NULL, WNOHANG) < 0 && errno == EINTR)
			;
}

/* Wait up to ms for r's process to end: 1 when it did. */
static int wait_gone(const struct svc_record *r, int pidfd, int64_t ms)
{
	int64_t until = mono_now() + ms;
	for (;;) {
		reap(r->pid);
		if (!svc_alive(r))
			return 1;
		int64_t left = until - mono_now();
		if (left <= 0)
			return 0;
		if (pidfd >= 0) {
			struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
			poll(&pfd, 1, left > 50 ? 50 : (int)left);
		} else {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
}

int svc_stop(const struct svc_record *r, int64_t timeout_ms, struct buf *how)
{
	if (!svc_alive(r)) {
		reap(r->pid);
		buf_adds(how, "was not running");
		return 0;
	}
	int pidfd = pidfd_of(r->pid);
	if (!svc_alive(r)) {	/* gone before the pidfd: it must not name another process */
		if (pidfd >= 0)
			close(pidfd);
		reap(r->pid);
		buf_adds(how, "was not running");
		return 0;
	}
	int64_t t0 = mono_now();
	/* its session's process group (pgid == pid), and the process itself
	 * in case it moved to another group */
	kill(-r->pid, SIGTERM);
	kill(r->pid, SIGTERM);
	int gone = wait_gone(r, pidfd, timeout_ms > 0 ? timeout_ms : 10000), killed = 0;
	if (!gone) {
		killed = 1;
		kill(-r->pid, SIGKILL);
		kill(r->pid, SIGKILL);
		gone = wait_gone(r, pidfd, 5000);
	}
	/* what it left behind in its group goes with it */
	kill(-r->pid, SIGKILL);
	if (pidfd >= 0)
		close(pidfd);
	reap(r->pid);
	if (!gone)
		return err_set("%s: pid %d did not end, even after SIGKILL", r->id, (int)r->pid);
	if (killed)
		buf_addf(how, "killed with SIGKILL after the %lld ms stop timeout",
			 (long long)(timeout_ms > 0 ? timeout_ms : 10000));
	else
		buf_addf(how, "stopped in %lld ms", (long long)(mono_now() - t0));
	return 0;
}

/* ---- health check targets ---- */

/* "HOST:PORT" or "http://HOST[:PORT][/PATH]" to a loopback address. */
static int parse_target(int check, const char *target, struct sockaddr_storage *sa, socklen_t *salen,
			const char **path, const char **why)
{
	const char *s = target, *host_end, *port = NULL;
	char host[64];
	*path = "/";
	if (check == SVC_CHECK_HTTP) {
		if (strncmp(s, "http://", 7)) {
			*why = "must be an http:// URL (https is not supported)";
			return -1;
		}
		s += 7;
	}
	const char *end = check == SVC_CHECK_HTTP ? s + strcspn(s, "/?#") : s + strlen(s);
	if (check == SVC_CHECK_HTTP && *end)
		*path = end;
	if (*s == '[') {
		host_end = memchr(s, ']', (size_t)(end - s));
		if (!host_end) {
			*why = "has an IPv6 address without ']'";
			return -1;
		}
		if (host_end + 1 < end && host_end[1] == ':')
			port = host_end + 2;
		else if (host_end + 1 != end) {
			*why = "has something after the address";
			return -1;
		}
		s++;
	} else {
		host_end = memchr(s, ':', (size_t)(end - s));
		if (host_end)
			port = host_end + 1;
		else
			host_end = end;
	}
	size_t hl = (size_t)(host_end - s);
	if (!hl || hl >= sizeof(host)) {
		*why = "has no host";
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	long pn = check == SVC_CHECK_HTTP ? 80 : -1;
	if (port) {
		char *pe;
		pn = strtol(port, &pe, 10);
		if (pe != end || port == end)
			pn = -1;
	}
	if (pn < 1 || pn > 65535) {
		*why = check == SVC_CHECK_HTTP ? "has a bad port" : "must be HOST:PORT with a port 1-65535";
		return -1;
	}
	memset(sa, 0, sizeof(*sa));
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) {
			*why = "must name a loopback address (127.0.0.0/8, ::1 or localhost)";
			return -1;
		}
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)pn);
		*salen = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
			*why = "must name a loopback address (127.0.0.0/8, ::1 or localhost)";
			return -1;
		}
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)pn);
		*salen = sizeof(*v6);
		return 0;
	}
	*why = "must name a loopback address (127.0.0.0/8, ::1 or localhost), not a host name";
	return -1;
}

const char *svc_target_check(int check, const char *target)
{
	struct sockaddr_storage sa;
	socklen_t len;
	const char *path, *why = NULL;
	if (parse_target(check, target, &sa, &len, &path, &why) < 0)
		return why;
	for (const char *c = path; *c; c++)
		if (*c == ' ' || (unsigned char)*c < 0x21 || *c == 0x7f)
			return "has a space or a control character in its path";
	return NULL;
}

/* ---- the supervisor ---- */

struct sv_entry;
struct sv_tag {
	struct sv_entry *e;
	int what;		/* 0: the service's pidfd, 1: its health check */
};

struct sv_entry {
	struct svc_def def;	/* in the supervisor's arena */
	int seen;
	pid_t pid;		/* tracked process, 0 none */
	uint64_t start;		/* its start time */
	int pidfd;
	int64_t spawned;	/* mono */
	int fails;		/* restarts in a row that did not last SVC_STABLE_MS */
	int64_t restart_at;	/* mono, 0: none due */
	int ready;
	int check_fails;
	int64_t check_at, check_deadline;
	int check_fd;
	pid_t check_pid;
	int check_pidfd;
	int http_sent;
	struct buf reply;
	char *detail;		/* the last check's result */
	struct sv_tag tag_proc, tag_check;
};

struct supervisor {
	char *state_dir;
	struct db *db;
	struct svc_hooks hooks;
	int epfd, tfd;
	struct sv_entry **v;
	size_t n;
	struct arena arena;	/* the defs in force */
	int64_t tick_at;
};

int supervise_new(struct supervisor **out, const char *state_dir, struct db *db,
		  const struct svc_hooks *hooks)
{
	struct supervisor *s = xcalloc(1, sizeof(*s));
	s->state_dir = xstrdup(state_dir);
	s->db = db;
	if (hooks)
		s->hooks = *hooks;
	arena_init(&s->arena);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->tfd < 0) {
		err_set_errno("cannot start the supervisor");
		supervise_free(s);
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev);
	*out = s;
	return 0;
}

int supervise_fd(const struct supervisor *s)
{
	return s->epfd;
}

static void watch_fd(struct supervisor *s, int fd, uint32_t events, struct sv_tag *tag, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };
	epoll_ctl(s->epfd, op, fd, &ev);
}

static void untrack(struct supervisor *s, struct sv_entry *e)
{
	if (e->pidfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, e->pidfd, NULL);
		close(e->pidfd);
	}
	e->pidfd = -1;
	e->pid = 0;
}

static void track(struct supervisor *s, struct sv_entry *e, pid_t pid, int pidfd)
{
	untrack(s, e);
	e->pid = pid;
	e->pidfd = pidfd >= 0 ? pidfd : pidfd_of(pid);
	if (e->pidfd >= 0)
		watch_fd(s, e->pidfd, EPOLLIN, &e->tag_proc, EPOLL_CTL_ADD);
}

static void check_cancel(struct supervisor *s, struct sv_entry *e)
{
	if (e->check_fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, e->check_fd, NULL);
		close(e->check_fd);
		e->check_fd = -1;
	}
	if (e->check_pidfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, e->check_pidfd, NULL);
		close(e->check_pidfd);
		e->check_pidfd = -1;
	}
	if (e->check_pid > 0) {
		kill(-e->check_pid, SIGKILL);
		while (waitpid(e->check_pid, NULL, 0) < 0 && errno == EINTR)
			;
		e->check_pid = 0;
	}
	e->check_deadline = 0;
	e->http_sent = 0;
	buf_reset(&e->reply);
}

static void entry_free(struct supervisor *s, struct sv_entry *e)
{
	check_cancel(s, e);
	untrack(s, e);
	buf_release(&e->reply);
	free(e->detail);
	free(e);
}

void supervise_free(struct supervisor *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_free(s, s->v[i]);
	free(s->v);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->tfd >= 0)
		close(s->tfd);
	arena_release(&s->arena);
	free(s->state_dir);
	free(s);
}

static const char *const *copy_argv(struct arena *a, const char *const *v)
{
	size_t n = 0;
	if (!v)
		return NULL;
	while (v[n])
		n++;
	const char **out = arena_alloc(a, (n + 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = arena_strdup(a, v[i]);
	return out;
}

static void copy_def(struct arena *a, const struct svc_def *d, struct svc_def *out)
{
	*out = *d;
	out->id = arena_strdup(a, d->id);
	out->name = arena_strdup(a, d->name);
	out->argv = copy_argv(a, d->argv);
	out->env = copy_argv(a, d->env);
	out->cwd = d->cwd ? arena_strdup(a, d->cwd) : NULL;
	out->check_argv = copy_argv(a, d->check_argv);
	out->check_target = d->check_target ? arena_strdup(a, d->check_target) : NULL;
}

static void rearm(struct supervisor *s)
{
	int64_t next = 0, now = mono_now();
	int ticking = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct sv_entry *e = s->v[i];
		int64_t t[3] = { e->restart_at, e->check_deadline,
				 e->def.check && !e->check_deadline ? e->check_at : 0 };
		for (int k = 0; k < 3; k++)
			if (t[k] && (!next || t[k] < next))
				next = t[k];
		ticking |= e->def.builtin && e->pid;
	}
	if (ticking) {
		if (!s->tick_at)
			s->tick_at = now + TICK_MS;
		if (!next || s->tick_at < next)
			next = s->tick_at;
	} else {
		s->tick_at = 0;
	}
	struct itimerspec its = { 0 };
	if (next) {
		int64_t ms = next - now > 0 ? next - now : 1;
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000;
	}
	timerfd_settime(s->tfd, 0, &its, NULL);
}

static void on_exit_event(struct supervisor *s, struct sv_entry *e);

/* Take the record's view of e: the process to watch, readiness. */
static void entry_sync(struct supervisor *s, struct sv_entry *e)
{
	struct arena a;
	struct svc_record r;
	arena_init(&a);
	int got = svc_record_load(s->db, &a, e->def.id, &r);
	if (got < 0)
		slog("agent: %s", err_msg());
	if (got != 0 || !e->def.builtin || !r.want || !r.pid) {
		if (e->pid)
			untrack(s, e);
		if (got != 0 || !r.want)
			e->restart_at = 0;
		if (!e->def.builtin && got == 0)
			e->ready = r.ready;
		arena_release(&a);
		return;
	}
	if (r.pid != e->pid) {
		if (svc_alive(&r)) {
			track(s, e, r.pid, -1);
			e->start = r.start;
			e->spawned = mono_now();
			e->restart_at = 0;
			e->ready = r.ready;
			e->check_fails = 0;
			e->check_at = mono_now() + e->def.check_interval_ms;
		} else {
			/* it ended before we watched it (between its start by a pass
			 * and now, or while no agent ran): handle that as its exit */
			untrack(s, e);
			e->pid = r.pid;
			e->start = r.start;
			arena_release(&a);
			on_exit_event(s, e);
			return;
		}
	}
	arena_release(&a);
}

void supervise_set(struct supervisor *s, const struct svc_def *defs, size_t n)
{
	struct arena old = s->arena;
	arena_init(&s->arena);
	for (size_t i = 0; i < s->n; i++)
		s->v[i]->seen = 0;
	for (size_t i = 0; i < n; i++) {
		struct sv_entry *e = NULL;
		for (size_t k = 0; k < s->n && !e; k++)
			if (!strcmp(s->v[k]->def.id, defs[i].id))
				e = s->v[k];
		if (!e) {
			e = xcalloc(1, sizeof(*e));
			e->pidfd = e->check_fd = e->check_pidfd = -1;
			e->ready = -1;
			e->tag_proc = (struct sv_tag){ e, 0 };
			e->tag_check = (struct sv_tag){ e, 1 };
			s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
			s->v[s->n++] = e;
			e->check_at = mono_now() + defs[i].check_interval_ms;
		}
		int had_check = e->def.check;
		copy_def(&s->arena, &defs[i], &e->def);
		if (!e->def.check || had_check != e->def.check) {
			check_cancel(s, e);
			e->check_at = mono_now() + e->def.check_interval_ms;
		}
		e->seen = 1;
	}
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i]->seen)
			s->v[k++] = s->v[i];
		else
			entry_free(s, s->v[i]);
	}
	s->n = k;
	arena_release(&old);
	for (size_t i = 0; i < s->n; i++)
		entry_sync(s, s->v[i]);
	rearm(s);
}

/* A history row for a change of readiness (command "health"). */
static void record_health(struct supervisor *s, struct sv_entry *e, int ready, const char *detail)
{
	struct arena a;
	arena_init(&a);
	int64_t now = wall_now();
	char *summary = xasprintf("%s: %s", e->def.id, ready ? "ready again" : "health check failing");
	struct pass_record rec = {
		.started_ms = now, .finished_ms = now, .command = "health",
		.commit = db_meta_get(s->db, "applied_revision", &a), .ref = "",
		.author = "driftless agent", .summary = summary,
		.result = ready ? "recovered" : "degraded",
	};
	rec.counts[ready ? OUT_UNCHANGED : OUT_FAILED] = 1;
	if (db_begin(s->db) < 0 || db_pass_add(s->db, &rec) < 0 ||
	    db_outcome_add(s->db, rec.id, e->def.id, ready ? "unchanged" : "failed", detail) < 0 ||
	    db_commit(s->db) < 0) {
		slog("agent: %s", err_msg());
		db_rollback(s->db);
	}
	free(summary);
	arena_release(&a);
}

static void save_ready(struct supervisor *s, struct sv_entry *e, const char *detail)
{
	struct arena a;
	struct svc_record r;
	arena_init(&a);
	if (svc_record_load(s->db, &a, e->def.id, &r) == 0) {
		r.ready = e->ready;
		r.health = detail;
		r.checked_ms = wall_now();
		if (svc_record_save(s->db, &r) < 0)
			slog("agent: %s", err_msg());
	}
	arena_release(&a);
}

static void check_done(struct supervisor *s, struct sv_entry *e, int ok, const char *detail)
{
	check_cancel(s, e);
	e->check_at = mono_now() + e->def.check_interval_ms;
	int was = e->ready, now_ready = was;
	if (ok) {
		e->check_fails = 0;
		now_ready = 1;
	} else if (++e->check_fails >= (e->def.check_retries > 0 ? e->def.check_retries : 1)) {
		now_ready = 0;
	}
	int changed_detail = !e->detail || strcmp(e->detail, detail);
	free(e->detail);
	e->detail = xstrdup(detail);
	if (now_ready == was) {
		if (changed_detail && now_ready == 0)
			save_ready(s, e, detail);
		return;
	}
	e->ready = now_ready;
	save_ready(s, e, detail);
	if (now_ready == 0) {
		char *why = xasprintf("health check failed %d time%s in a row: %s", e->check_fails,
				      e->check_fails == 1 ? "" : "s", detail);
		slog("%s: not ready: %s", e->def.id, why);
		record_health(s, e, 0, why);
		if (s->hooks.health)
			s->hooks.health(s->hooks.ctx, e->def.id, 0, why);
		free(why);
	} else {
		slog("%s: ready (%s)", e->def.id, detail);
		if (was == 0) {
			record_health(s, e, 1, detail);
			if (s->hooks.health)
				s->hooks.health(s->hooks.ctx, e->def.id, 1, detail);
		}
	}
}

static void check_start(struct supervisor *s, struct sv_entry *e)
{
	int64_t now = mono_now();
	e->check_at = now + e->def.check_interval_ms;
	if (e->def.builtin && !e->pid)
		return;	/* not running: nothing to check (its restarts tell) */
	e->check_deadline = now + e->def.check_timeout_ms;
	if (e->def.check == SVC_CHECK_EXEC) {
		struct proc_opts o;
		struct proc_child ch;
		proc_opts_of(&e->def, e->def.check_argv, &o);
		if (proc_spawn(&o, -1, -1, &ch) < 0) {
			char *why = xasprintf("exec: %s", err_msg());
			check_done(s, e, 0, why);
			free(why);
			return;
		}
		e->check_pid = ch.pid;
		e->check_pidfd = ch.pidfd;
		if (ch.pidfd >= 0)
			watch_fd(s, ch.pidfd, EPOLLIN, &e->tag_check, EPOLL_CTL_ADD);
		return;
	}
	struct sockaddr_storage sa;
	socklen_t len;
	const char *path, *why;
	if (parse_target(e->def.check, e->def.check_target, &sa, &len, &path, &why) < 0) {
		check_done(s, e, 0, why);
		return;
	}
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS)) {
		char *m = xasprintf("%s %s: %s", e->def.check == SVC_CHECK_TCP ? "tcp" : "http",
				    e->def.check_target, strerror(errno));
		if (fd >= 0)
			close(fd);
		check_done(s, e, 0, m);
		free(m);
		return;
	}
	e->check_fd = fd;
	watch_fd(s, fd, EPOLLOUT, &e->tag_check, EPOLL_CTL_ADD);
}

static void check_event(struct supervisor *s, struct sv_entry *e, uint32_t events)
{
	const char *what = e->def.check == SVC_CHECK_TCP ? "tcp" : "http";
	if (e->def.check == SVC_CHECK_EXEC) {
		int st = 0;
		pid_t r = waitpid(e->check_pid, &st, WNOHANG);
		if (r != e->check_pid)
			return;
		kill(-e->check_pid, SIGKILL);	/* what it left in its group */
		e->check_pid = 0;
		char why[128];
		if (WIFEXITED(st))
			snprintf(why, sizeof(why), "exec: exit status %d", WEXITSTATUS(st));
		else
			snprintf(why, sizeof(why), "exec: killed by signal %d", WTERMSIG(st));
		check_done(s, e, WIFEXITED(st) && WEXITSTATUS(st) == 0, why);
		return;
	}
	if (!e->http_sent) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(e->check_fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (!err && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		char *m = xasprintf("%s %s: %s", what, e->def.check_target,
				    err ? strerror(err) : "connected");
		if (err || e->def.check == SVC_CHECK_TCP) {
			check_done(s, e, !err, m);
			free(m);
			return;
		}
		free(m);
		/* http: GET the path, HTTP/1.0, and read the status line */
		struct sockaddr_storage sa;
		socklen_t len;
		const char *path, *why;
		parse_target(e->def.check, e->def.check_target, &sa, &len, &path, &why);
		const char *hp = e->def.check_target + 7;
		int hl = (int)strcspn(hp, "/?#");
		char *req = xasprintf("GET %s HTTP/1.0\r\nHost: %.*s\r\nUser-Agent: driftless/%s\r\n"
				      "Connection: close\r\n\r\n", path, hl, hp, DRIFTLESS_VERSION);
		ssize_t w = send(e->check_fd, req, strlen(req), MSG_NOSIGNAL);
		int short_write = w != (ssize_t)strlen(req);
		free(req);
		if (short_write) {
			char *f = xasprintf("http %s: cannot send the request", e->def.check_target);
			check_done(s, e, 0, f);
			free(f);
			return;
		}
		e->http_sent = 1;
		watch_fd(s, e->check_fd, EPOLLIN, &e->tag_check, EPOLL_CTL_MOD);
		return;
	}
	char chunk[HTTP_REPLY_MAX];
	ssize_t n = recv(e->check_fd, chunk, sizeof(chunk), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && e->reply.len < HTTP_REPLY_MAX)
		buf_add(&e->reply, chunk, (size_t)n);
	const char *nl = e->reply.len ? memchr(e->reply.ptr, '\n', e->reply.len) : NULL;
	if (n > 0 && !nl && e->reply.len < HTTP_REPLY_MAX)
		return;
	int code = 0;
	if (e->reply.len >= 12 && !strncmp(e->reply.ptr, "HTTP/1.", 7) && e->reply.ptr[8] == ' ')
		code = atoi(e->reply.ptr + 9);
	char *m = code ? xasprintf("http %s: status %d", e->def.check_target, code) :
			 xasprintf("http %s: %s", e->def.check_target,
				   n < 0 ? strerror(errno) : "no HTTP status line in the answer");
	check_done(s, e, code >= 200 && code < 400, m);
	free(m);
}

static void do_restart(struct supervisor *s, struct sv_entry *e)
{
	struct arena a;
	struct svc_record r;
	arena_init(&a);
	e->restart_at = 0;
	if (svc_record_load(s->db, &a, e->def.id, &r) != 0 || !r.want || svc_alive(&r)) {
		/* stopped, or started by someone else since */
		int other = r.want && svc_alive(&r) && r.pid != e->pid;
		arena_release(&a);
		if (other)
			entry_sync(s, e);
		return;
	}
	int pidfd = -1;
	if (spawn(s->state_dir, &e->def, &r, &pidfd) < 0) {
		int64_t delay = e->def.restart_delay_ms << (e->fails < 20 ? e->fails : 20);
		if (delay > SVC_RESTART_MAX_MS || delay <= 0)
			delay = SVC_RESTART_MAX_MS;
		e->fails++;
		e->restart_at = mono_now() + delay;
		slog("%s: %s; trying again in %lld ms", e->def.id, err_msg(), (long long)delay);
		arena_release(&a);
		return;
	}
	r.restarts++;
	r.ready = -1;
	r.health = NULL;
	if (svc_record_save(s->db, &r) < 0)
		slog("agent: %s", err_msg());
	track(s, e, r.pid, pidfd);
	e->start = r.start;
	e->spawned = mono_now();
	e->ready = -1;
	e->check_fails = 0;
	e->check_at = e->spawned + e->def.check_interval_ms;
	slog("%s: restarted (pid %d, restart %d)", e->def.id, (int)r.pid, r.restarts);
	arena_release(&a);
}

/* The tracked process ended (its pidfd said so, or it is gone). */
static void on_exit_event(struct supervisor *s, struct sv_entry *e)
{
	pid_t pid = e->pid;
	int st = 0, known = 0;
	pid_t got = -1;
	char state;
	uint64_t start;
	/* reap it when it is our child, and only it: a pid that now names
	 * another process (a later start time) is not waited for */
	if (proc_stat(pid, &state, &start) < 0 || start == e->start) {
		while ((got = waitpid(pid, &st, WNOHANG)) < 0 && errno == EINTR)
			;
	}
	known = got == pid;
	if (got == 0 && proc_stat(pid, &state, &start) == 0 && state != 'Z' && state != 'X')
		return;	/* still there (a spurious wake-up) */
	untrack(s, e);
	check_cancel(s, e);
	/* what it left in its session's group (unless the pid is another's now) */
	if (proc_stat(pid, &state, &start) < 0 || start == e->start)
		kill(-pid, SIGKILL);
	struct arena a;
	struct svc_record r;
	arena_init(&a);
	if (svc_record_load(s->db, &a, e->def.id, &r) != 0 || r.pid != pid || !r.want) {
		arena_release(&a);	/* a pass stopped or replaced it */
		return;
	}
	char how[128];
	int failed = 1;
	if (!known)
		snprintf(how, sizeof(how), "ended (exit status unknown: started before this agent)");
	else if (WIFEXITED(st)) {
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(st));
		failed = WEXITSTATUS(st) != 0;
	} else {
		snprintf(how, sizeof(how), "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	}
	int64_t up = e->spawned ? mono_now() - e->spawned : 0;
	r.pid = 0;
	r.last_exit = how;
	r.ready = -1;
	r.health = "not running";
	e->ready = -1;
	int again = e->def.restart == SVC_ALWAYS || (e->def.restart == SVC_ON_FAILURE && failed);
	if (again) {
		if (up >= SVC_STABLE_MS)
			e->fails = 0;
		int64_t delay = e->def.restart_delay_ms << (e->fails < 20 ? e->fails : 20);
		if (delay > SVC_RESTART_MAX_MS || delay <= 0)
			delay = SVC_RESTART_MAX_MS;
		e->fails++;
		e->restart_at = mono_now() + delay;
		slog("%s: pid %d ended (%s) after %lld ms; restarting in %lld ms", e->def.id, (int)pid,
		     how, (long long)up, (long long)delay);
	} else {
		slog("%s: pid %d ended (%s); not restarted (restart: %s)", e->def.id, (int)pid, how,
		     e->def.restart == SVC_NEVER ? "never" : "on-failure");
	}
	if (svc_record_save(s->db, &r) < 0)
		slog("agent: %s", err_msg());
	arena_release(&a);
}

static void tick(struct supervisor *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct sv_entry *e = s->v[i];
		if (!e->def.builtin || !e->pid)
			continue;
		char *log = svc_log_path(s->state_dir, e->def.name);
		log_rotate(log, e->def.log_max, e->def.log_keep);
		free(log);
		if (e->pidfd < 0) {	/* no pidfd: look */
			char state;
			uint64_t start;
			if (proc_stat(e->pid, &state, &start) < 0 || state == 'Z' || state == 'X')
				on_exit_event(s, e);
		}
	}
}

void supervise_run(struct supervisor *s)
{
	struct epoll_event ev[16];
	int n = epoll_wait(s->epfd, ev, 16, 0);
	for (int i = 0; i < n; i++) {
		struct sv_tag *t = ev[i].data.ptr;
		if (!t) {
			uint64_t x;
			ssize_t r = read(s->tfd, &x, sizeof(x));
			(void)r;
			continue;
		}
		/* an entry may have been handled by an earlier event of this batch */
		if (t->what == 0 && t->e->pid)
			on_exit_event(s, t->e);
		else if (t->what == 1 && (t->e->check_fd >= 0 || t->e->check_pid > 0))
			check_event(s, t->e, ev[i].events);
	}
	int64_t now = mono_now();
	for (size_t i = 0; i < s->n; i++) {
		struct sv_entry *e = s->v[i];
		if (e->restart_at && e->restart_at <= now)
			do_restart(s, e);
		if (e->check_deadline && e->check_deadline <= now) {
			char *m = xasprintf("%s: no answer within %lld ms",
					    e->def.check == SVC_CHECK_EXEC ? "exec" :
					    e->def.check_target, (long long)e->def.check_timeout_ms);
			check_done(s, e, 0, m);
			free(m);
		} else if (e->def.check && !e->check_deadline && e->check_at <= now) {
			check_start(s, e);
		}
	}
	if (s->tick_at && s->tick_at <= now) {
		s->tick_at = now + TICK_MS;
		tick(s);
	}
	rearm(s);
}

/* ---- status ---- */

void svc_render_status(struct db *db, int json, struct buf *out)
{
	struct arena a;
	struct hmap inv;
	arena_init(&a);
	hmap_init(&inv);
	if (db_inv_load_kind(db, "Service", &a, &inv) < 0) {
		hmap_release(&inv);
		arena_release(&a);
		return;
	}
	/* sorted by id */
	const char **ids = xmalloc((inv.n + 1) * sizeof(*ids));
	size_t n = 0, it = 0;
	void *val;
	while (hmap_next(&inv, &it, NULL, &val))
		if (!strcmp(((struct inv_entry *)val)->kind, "Service"))
			ids[n++] = ((struct inv_entry *)val)->id;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
			const char *t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	struct buf text = BUF_INIT, bad = BUF_INIT;
	size_t shown = 0;
	if (json)
		buf_adds(out, ",\"services\":[");
	for (size_t i = 0; i < n; i++) {
		struct svc_record r;
		if (svc_record_load(db, &a, ids[i], &r) != 0)
			continue;
		int first = !shown++;
		int builtin = !r.backend || !strcmp(r.backend, "builtin");
		int alive = builtin && svc_alive(&r);
		char since[32] = "";
		if (r.started_ms) {
			time_t t = (time_t)(r.started_ms / 1000);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		const char *state = !builtin ? (r.want ? "running" : "stopped") :
				    alive ? "running" : !r.want ? "stopped" :
				    r.last_exit ? "exited" : "not running";
		if (r.ready == 0)
			buf_addf(&bad, "%s%s", bad.len ? ", " : "", ids[i]);
		if (json) {
			buf_adds(out, first ? "{\"id\":" : ",{\"id\":");
			buf_add_json_str(out, ids[i]);
			buf_adds(out, ",\"backend\":");
			buf_add_json_str(out, builtin ? "builtin" : "systemd");
			buf_addf(out, ",\"ensure\":\"%s\",\"state\":\"%s\",\"pid\":", r.want ? "running" : "stopped",
				 state);
			if (alive)
				buf_addf(out, "%d", (int)r.pid);
			else
				buf_adds(out, "null");
			buf_adds(out, ",\"since\":");
			buf_add_json_str(out, alive ? since : NULL);
			buf_addf(out, ",\"restarts\":%d,\"lastExit\":", r.restarts);
			buf_add_json_str(out, r.last_exit);
			buf_addf(out, ",\"ready\":%s,\"health\":",
				 r.ready == 1 ? "true" : r.ready == 0 ? "false" : "null");
			buf_add_json_str(out, r.health);
			buf_addch(out, '}');
		} else {
			buf_addf(&text, "  %s: %s", ids[i], state);
			if (alive)
				buf_addf(&text, ", pid %d since %s", (int)r.pid, since);
			if (!builtin)
				buf_adds(&text, " (systemd)");
			if (r.last_exit && !alive)
				buf_addf(&text, " (%s)", r.last_exit);
			if (r.restarts)
				buf_addf(&text, ", %d restart%s", r.restarts, r.restarts == 1 ? "" : "s");
			if (r.ready >= 0)
				buf_addf(&text, ", %s%s%s%s", r.ready ? "ready" : "NOT READY",
					 r.health ? " (" : "", r.health ? r.health : "", r.health ? ")" : "");
			buf_addch(&text, '\n');
		}
	}
	if (json) {
		buf_addf(out, "],\"degraded\":%s", bad.len ? "true" : "false");
	} else if (text.len) {
		buf_addf(out, "services:\n%s", text.ptr);
		if (bad.len)
			buf_addf(out, "health:             degraded: %s not ready\n", bad.ptr);
	}
	buf_release(&text);
	buf_release(&bad);
	free(ids);
	hmap_release(&inv);
	arena_release(&a);
}
