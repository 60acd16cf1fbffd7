/* SPDX-License-Identifier: MIT */
/*
 * libcurl's multi interface on the agent's event loop: curl's sockets go on
 * the epoll loop (CURLMOPT_SOCKETFUNCTION) and its timeout on a timerfd
 * (CURLMOPT_TIMERFUNCTION). Each user (notifications, the etcd client)
 * keeps its own multi handle, so one cannot hold up the other; after every
 * socket or timer action the user's reap() collects finished transfers.
 */
#ifndef DL_CURLLOOP_H
#define DL_CURLLOOP_H

#include <stddef.h>
#include <curl/curl.h>
#include "daemon/loop.h"

struct curl_loop {
	CURLM *multi;
	struct loop *loop;
	int tfd;
	int *socks;			/* curl's sockets on the loop */
	size_t nsocks, capsocks;
	void (*reap)(void *ctx);
	void *ctx;
};

/* A multi handle with its sockets and timer on l; reap(ctx) runs after each
 * action. 0, or -1 with err_msg() (cl is then released). */
int curl_loop_init(struct curl_loop *cl, struct loop *l, void (*reap)(void *ctx), void *ctx);
/* curl_multi_cleanup, then the sockets and the timer off the loop. Remove
 * the easy handles first. */
void curl_loop_release(struct curl_loop *cl);
/* In a forked child: close curl's sockets, touch nothing else. */
void curl_loop_close_in_child(struct curl_loop *cl);

#endif
