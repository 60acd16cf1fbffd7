/* SPDX-License-Identifier: MIT */
/* The agent's event loop: epoll, timerfd and nothing else; callbacks run to completion. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "daemon/loop.h"
#include "lib/err.h"

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? err_set_errno("cannot create the event loop") : 0;
}

void loop_release(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->epfd = -1;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *ctx)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, (size_t)l->cap * sizeof(*l->v));
	}
	l->v[l->n] = (struct loop_entry){ fd, cb, ctx };
	struct epoll_event ev = { .events = events, .data.fd = fd };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return err_set_errno("cannot watch fd %d", fd);
	l->n++;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	for (int i = 0; i < l->n; i++) {
		if (l->v[i].fd == fd) {
			l->v[i] = l->v[--l->n];
			return;
		}
	}
}

int loop_run_once(struct loop *l)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->epfd, evs, 16, -1);
	if (n < 0)
		return errno == EINTR ? 0 : err_set_errno("event loop");
	for (int i = 0; i < n && !l->stop; i++) {
		for (int j = 0; j < l->n; j++) {
			if (l->v[j].fd == evs[i].data.fd) {
				struct loop_entry e = l->v[j];
				e.cb(l, e.fd, evs[i].events, e.ctx);
				break;
			}
		}
	}
	return 0;
}

int loop_run(struct loop *l)
{
	while (!l->stop)
		if (loop_run_once(l) < 0)
			return -1;
	return 0;
}

int timer_new(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		err_set_errno("cannot create a timer");
	return fd;
}

int timer_arm(int fd, int64_t ms)
{
	struct itimerspec its = { 0 };
	if (ms > 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000;
	} else if (ms == 0) {
		its.it_value.tv_nsec = 0;
	} else {
		its.it_value.tv_nsec = 1;	/* negative: fire at once */
	}
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? err_set_errno("cannot arm a timer") : 0;
}

void timer_ack(int fd)
{
	uint64_t n;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
