/* SPDX-License-Identifier: MIT */
/* One event loop: epoll over file descriptors, each with a callback. */
#ifndef DL_LOOP_H
#define DL_LOOP_H

#include <stdint.h>

struct loop;
typedef void (*loop_cb)(struct loop *l, int fd, uint32_t events, void *ctx);

struct loop_entry {
	int fd;
	loop_cb cb;
	void *ctx;
};

struct loop {
	int epfd;
	struct loop_entry *v;
	int n, cap;
	int stop;
};

int loop_init(struct loop *l);
void loop_release(struct loop *l);
int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *ctx);
void loop_del(struct loop *l, int fd);
/* Wait once and dispatch what arrived. */
int loop_run_once(struct loop *l);
/* Wait for and dispatch events until l->stop is set. */
int loop_run(struct loop *l);

/* timerfd helpers (CLOCK_MONOTONIC): arm once after ms (0 disarms). */
int timer_new(void);
int timer_arm(int fd, int64_t ms);
/* Read the expiry count so the fd stops being readable. */
void timer_ack(int fd);

int64_t mono_ms(void);
int64_t wall_ms(void);

#endif
