/* SPDX-License-Identifier: MIT */
/* libcurl's multi interface on the agent's event loop (see curlloop.h). */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "daemon/curlloop.h"
#include "lib/err.h"

static void sock_forget(struct curl_loop *cl, int fd)
{
	for (size_t i = 0; i < cl->nsocks; i++)
		if (cl->socks[i] == fd) {
			cl->socks[i] = cl->socks[--cl->nsocks];
			return;
		}
}

static void on_sock(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct curl_loop *cl = ctx;
	int running, flags = 0;
	(void)l;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(cl->multi, fd, flags, &running);
	cl->reap(cl->ctx);
}

static int on_curl_socket(CURL *c, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_loop *cl = userp;
	(void)c;
	if (socketp) {
		loop_del(cl->loop, s);
		sock_forget(cl, s);
	}
	if (what == CURL_POLL_REMOVE) {
		curl_multi_assign(cl->multi, s, NULL);
		return 0;
	}
	uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (loop_add(cl->loop, s, ev, on_sock, cl) < 0)
		return -1;
	if (cl->nsocks == cl->capsocks) {
		cl->capsocks = cl->capsocks ? 2 * cl->capsocks : 8;
		cl->socks = xrealloc(cl->socks, cl->capsocks * sizeof(*cl->socks));
	}
	cl->socks[cl->nsocks++] = s;
	curl_multi_assign(cl->multi, s, cl);
	return 0;
}

static int on_curl_timer(CURLM *m, long ms, void *userp)
{
	struct curl_loop *cl = userp;
	(void)m;
	timer_arm(cl->tfd, ms < 0 ? 0 : ms == 0 ? -1 : ms);
	return 0;
}

static void on_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct curl_loop *cl = ctx;
	int running;
	(void)l;
	(void)events;
	timer_ack(fd);
	curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	cl->reap(cl->ctx);
}

int curl_loop_init(struct curl_loop *cl, struct loop *l, void (*reap)(void *ctx), void *ctx)
{
	*cl = (struct curl_loop){ .loop = l, .tfd = -1, .reap = reap, .ctx = ctx };
	cl->multi = curl_multi_init();
	cl->tfd = timer_new();
	if (!cl->multi || cl->tfd < 0 || loop_add(l, cl->tfd, EPOLLIN, on_tfd, cl) < 0) {
		curl_loop_release(cl);
		return err_set("cannot set up libcurl on the event loop");
	}
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
	return 0;
}

void curl_loop_release(struct curl_loop *cl)
{
	if (cl->multi)
		curl_multi_cleanup(cl->multi);	/* calls the socket callback for what is left */
	cl->multi = NULL;
	for (size_t i = 0; i < cl->nsocks; i++)
		loop_del(cl->loop, cl->socks[i]);
	if (cl->tfd >= 0) {
		loop_del(cl->loop, cl->tfd);
		close(cl->tfd);
		cl->tfd = -1;
	}
	free(cl->socks);
	cl->socks = NULL;
	cl->nsocks = cl->capsocks = 0;
}

void curl_loop_close_in_child(struct curl_loop *cl)
{
	for (size_t i = 0; i < cl->nsocks; i++)
		close(cl->socks[i]);
}
