/* SPDX-License-Identifier: MIT */
/*
 * The etcd client: a FIFO of JSON requests sent one at a time through
 * libcurl's multi interface, whose sockets and timer sit on our epoll loop
 * (as in src/http/notify.c, which serves notifications; this one serves
 * etcd and keeps its own multi handle so neither can hold up the other).
 * An endpoint that fails is left for the next one for the next request;
 * callers retry. With a username, a token from /v3/auth/authenticate is
 * sent in the Authorization header and fetched again when etcd says it
 * expired. One of the two files that include <curl/curl.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <curl/curl.h>
#include "daemon/curlloop.h"
#include "fleet/etcd.h"
#include "lib/err.h"
#include "lib/redact.h"

#define ETCD_QUEUE 64
#define ETCD_MAX_ANSWER (4u << 20)
#define ETCD_UNAUTHENTICATED 16	/* gRPC status code */

struct ereq {
	char *path, *body;
	etcd_cb cb;
	void *ctx;
	int auth;			/* the authenticate request itself */
	int retried;			/* sent again once after a token expired */
	struct arena *sync_arena;	/* etcd_call_sync: decode into this */
	struct etcd_resp *sync_out;
	int *sync_done;
};

struct etcd {
	struct loop *loop;
	struct curl_loop cl;		/* its own multi handle, on the agent's loop */
	char **endpoints;
	size_t nendpoints, cur;
	char *ca_file, *cert_file, *key_file, *username, *password;
	int64_t timeout_ms;
	char *token;			/* "Authorization: TOKEN" */
	struct ereq *q[ETCD_QUEUE + 1];	/* q[0] is in flight when easy is set; +1 for auth */
	size_t len;
	CURL *easy;
	struct curl_slist *headers;
	struct buf answer;
	char errbuf[CURL_ERROR_SIZE];
	int in_cb;			/* a callback runs: q[0] is finished, do not start it */
};

static void pump(struct etcd *e);

static void req_free(struct ereq *r)
{
	if (!r)
		return;
	free(r->path);
	if (r->body) {
		redact_wipe(r->body, strlen(r->body));	/* an authenticate body holds the password */
		free(r->body);
	}
	free(r);
}

/* ---- curl on the loop ---- */

static void reap(struct etcd *e);

static void reap_cb(void *ctx)
{
	reap(ctx);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct etcd *e = ctx;
	size_t n = size * nmemb;
	if (e->answer.len + n > ETCD_MAX_ANSWER)
		return 0;	/* too large: curl fails the transfer */
	buf_add(&e->answer, p, n);
	return n;
}

/* ---- the queue ---- */

static void start(struct etcd *e)
{
	struct ereq *r = e->q[0];
	char *url = xasprintf("%s%s", e->endpoints[e->cur], r->path);
	CURL *c = curl_easy_init();
	if (!c) {
		free(url);
		return;
	}
	buf_reset(&e->answer);
	e->errbuf[0] = '\0';
	curl_slist_free_all(e->headers);
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	e->headers = curl_slist_append(e->headers, "Expect:");
	if (e->token && !r->auth) {
		char *h = xasprintf("Authorization: %s", e->token);
		e->headers = curl_slist_append(e->headers, h);
		redact_wipe(h, strlen(h));
		free(h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "driftless/" DRIFTLESS_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(e->timeout_ms < 3000 ? e->timeout_ms : 3000));
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->errbuf);
	if (e->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file);
	free(url);
	if (curl_multi_add_handle(e->cl.multi, c) != CURLM_OK) {
		curl_easy_cleanup(c);
		return;
	}
	e->easy = c;
}

static void q_shift(struct etcd *e)
{
	req_free(e->q[0]);
	memmove(&e->q[0], &e->q[1], (e->len - 1) * sizeof(*e->q));
	e->len--;
}

/* Hand the answer to the caller of q[0] and drop it. */
static void finish(struct etcd *e, const struct etcd_resp *resp, const char *err)
{
	struct ereq *r = e->q[0];
	if (r->sync_done) {
		*r->sync_done = err ? -1 : 1;
		if (err)
			err_set("%s", err);
		else
			*r->sync_out = *resp;
	} else if (r->cb) {
		/* the callback may queue more; q[0] stays r until it returns */
		e->in_cb = 1;
		r->cb(r->ctx, resp, err);
		e->in_cb = 0;
	}
	q_shift(e);
}

/* Fail what is queued now (not what the callbacks queue meanwhile). */
static void fail_all(struct etcd *e, const char *err)
{
	size_t n = e->len;
	while (n-- && e->len)
		finish(e, NULL, err);
}

static void reap(struct etcd *e)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(e->cl.multi, &left))) {
		if (msg->msg != CURLMSG_DONE || msg->easy_handle != e->easy)
			continue;
		CURLcode code = msg->data.result;
		long status = 0;
		curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(e->cl.multi, e->easy);
		curl_easy_cleanup(e->easy);
		e->easy = NULL;
			struct ereq *r = e->q[0];
		struct arena tmp;
		arena_init(&tmp);
		struct arena *a = r->sync_arena ? r->sync_arena : &tmp;
		struct etcd_resp resp;
		memset(&resp, 0, sizeof(resp));
		char *why = NULL;
		if (code != CURLE_OK) {
			why = xasprintf("cannot reach etcd at %s: %s", e->endpoints[e->cur],
					e->errbuf[0] ? e->errbuf : curl_easy_strerror(code));
			/* the next request tries the next endpoint */
			e->cur = (e->cur + 1) % e->nendpoints;
		} else if (etcdresp_parse(a, e->answer.ptr ? e->answer.ptr : "", e->answer.len, &resp) < 0) {
			why = status != 200 ? xasprintf("etcd at %s answered HTTP %ld", e->endpoints[e->cur], status)
					    : xasprintf("%s", err_msg());
		} else if (resp.error) {
			if (resp.code == ETCD_UNAUTHENTICATED && e->token && !r->auth && !r->retried) {
				/* the token expired: authenticate again, then resend */
				free(e->token);
				e->token = NULL;
				r->retried = 1;
				arena_release(&tmp);
				pump(e);
				continue;
			}
			why = xasprintf("etcd: %s", resp.error);
		}
		if (r->auth && !why) {
			if (!resp.token || !*resp.token) {
				why = xasprintf("etcd: authentication answered no token");
			} else {
				free(e->token);
				e->token = xstrdup(resp.token);
			}
		}
		if (r->auth) {
			q_shift(e);
			if (why) {
				char *w = xasprintf("etcd: cannot authenticate as '%s': %s", e->username, why);
				fail_all(e, w);
				free(w);
			}
		} else {
			finish(e, why ? (resp.error ? &resp : NULL) : &resp, why);
		}
		free(why);
		arena_release(&tmp);
	}
	pump(e);
}

static void pump(struct etcd *e)
{
	if (e->easy || !e->len || e->in_cb)
		return;
	if (e->username && !e->token && !e->q[0]->auth) {
		/* authenticate first: put the request at the head */
		struct ereq *r = xcalloc(1, sizeof(*r));
		struct buf b = BUF_INIT;
		etcdreq_auth(&b, e->username, e->password ? e->password : "");
		r->path = xstrdup("/v3/auth/authenticate");
		r->body = buf_detach(&b);
		r->auth = 1;
		memmove(&e->q[1], &e->q[0], e->len * sizeof(*e->q));
		e->q[0] = r;
		e->len++;
	}
	start(e);
	if (!e->easy) {
		char *w = xasprintf("cannot send a request to etcd at %s", e->endpoints[e->cur]);
		fail_all(e, w);
		free(w);
	}
}

int etcd_call(struct etcd *e, const char *path, const char *body, etcd_cb cb, void *ctx)
{
	if (e->len >= ETCD_QUEUE)
		return err_set("etcd: %d requests are waiting already", ETCD_QUEUE);
	struct ereq *r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	r->body = xstrdup(body);
	r->cb = cb;
	r->ctx = ctx;
	e->q[e->len++] = r;
	pump(e);
	return 0;
}

int etcd_call_sync(struct etcd *e, const char *path, const char *body, struct arena *a,
		   struct etcd_resp *out)
{
	int done = 0;
	if (etcd_call(e, path, body, NULL, NULL) < 0)
		return -1;
	struct ereq *r = e->q[e->len - 1];
	r->sync_arena = a;
	r->sync_out = out;
	r->sync_done = &done;
	while (!done)
		if (loop_run_once(e->loop) < 0)
			return -1;
	return done < 0 ? -1 : 0;
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->endpoints[e->cur];
}

size_t etcd_pending(const struct etcd *e)
{
	return e->len;
}

int etcd_new(struct etcd **out, struct loop *l, const struct etcd_opts *o)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set("cannot initialise libcurl");
	if (!o->nendpoints)
		return err_set("etcd: no endpoint");
	struct etcd *e = xcalloc(1, sizeof(*e));
	e->loop = l;
	e->cl.tfd = -1;
	e->endpoints = xcalloc(o->nendpoints, sizeof(*e->endpoints));
	for (size_t i = 0; i < o->nendpoints; i++) {
		size_t n = strlen(o->endpoints[i]);
		while (n && o->endpoints[i][n - 1] == '/')
			n--;	/* paths are appended: no "//v3" */
		e->endpoints[i] = xstrndup(o->endpoints[i], n);
	}
	e->nendpoints = o->nendpoints;
	e->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
	e->cert_file = o->cert_file ? xstrdup(o->cert_file) : NULL;
	e->key_file = o->key_file ? xstrdup(o->key_file) : NULL;
	e->username = o->username ? xstrdup(o->username) : NULL;
	e->password = o->password ? xstrdup(o->password) : NULL;
	e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	if (curl_loop_init(&e->cl, l, reap_cb, e) < 0) {
		etcd_free(e);
		return err_set("etcd: cannot set up the client");
	}
	*out = e;
	return 0;
}

void etcd_free(struct etcd *e)
{
	if (!e)
		return;
	if (e->easy) {
		curl_multi_remove_handle(e->cl.multi, e->easy);
		curl_easy_cleanup(e->easy);
	}
	while (e->len)
		q_shift(e);
	curl_loop_release(&e->cl);
	for (size_t i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->username);
	if (e->password) {
		redact_wipe(e->password, strlen(e->password));
		free(e->password);
	}
	if (e->token) {
		redact_wipe(e->token, strlen(e->token));
		free(e->token);
	}
	curl_slist_free_all(e->headers);
	buf_release(&e->answer);
	free(e);
	curl_global_cleanup();
}
