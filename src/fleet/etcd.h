/* SPDX-License-Identifier: MIT */
/*
 * A tiny etcd v3 client over the JSON gateway (POST /v3/...), with libcurl's
 * multi interface on the agent's event loop: requests never block the loop.
 * The seam to etcd: nothing else talks to it.
 */
#ifndef DL_FLEET_ETCD_H
#define DL_FLEET_ETCD_H

#include <stddef.h>
#include <stdint.h>
#include "daemon/loop.h"
#include "fleet/proto.h"

struct etcd_opts {
	const char *const *endpoints;	/* http://HOST:PORT or https://HOST:PORT, tried in turn */
	size_t nendpoints;
	const char *ca_file, *cert_file, *key_file;	/* TLS: server CA, client certificate */
	const char *username, *password;	/* etcd authentication; copied, wiped on free */
	int64_t timeout_ms;			/* one request, connection included */
};

struct etcd;

/*
 * The answer to one request. err is NULL on success; otherwise it says
 * what failed: the transport ("cannot reach etcd at URL: ..."), or etcd
 * itself (r->code is then its gRPC status code). r and everything in it
 * live until the callback returns.
 */
typedef void (*etcd_cb)(void *ctx, const struct etcd_resp *r, const char *err);

/* A client driven by l. Nothing is sent until the first call. */
int etcd_new(struct etcd **out, struct loop *l, const struct etcd_opts *o);
/* Drop everything in flight or queued; their callbacks are not called. */
void etcd_free(struct etcd *e);
/*
 * Queue POST path (e.g. "/v3/kv/put") with a JSON body. Requests go out one
 * at a time, in order, after authenticating when a username is set (and
 * again when the token expires). -1 when the queue (64) is full.
 */
int etcd_call(struct etcd *e, const char *path, const char *body, etcd_cb cb, void *ctx);
/* Call and run the loop until the answer is in: for commands, not the
 * agent. Fills *out (in a) and returns 0, or -1 with err_msg(). */
int etcd_call_sync(struct etcd *e, const char *path, const char *body, struct arena *a,
		   struct etcd_resp *out);
/* The endpoint in use ("http://127.0.0.1:2379"), for messages. */
const char *etcd_endpoint(const struct etcd *e);
/* Requests queued or in flight. */
size_t etcd_pending(const struct etcd *e);

#endif
