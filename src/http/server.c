/* SPDX-License-Identifier: MIT */
/*
 * The agent's HTTP server: libmicrohttpd driven from the agent's own event
 * loop (MHD's epoll fd and a timerfd for MHD_get_timeout, no thread),
 * routing, the limits that come before anything else (Host allow-list,
 * method, size, content type, token), per-request deadlines and the access
 * log. The only file that includes <microhttpd.h>.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include <sodium.h>
#include "http/internal.h"
#include "lib/err.h"
#include "lib/redact.h"

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9180"

/* One TCP connection, for the deadline of the request in flight. */
struct conn {
	struct conn *next;
	int fd;
	int64_t deadline_ms;	/* the request must be done by then; INT64_MAX: closing */
	char ip[64];
};

enum {
	R_GET = 1,		/* GET and HEAD */
	R_POST = 2,
	R_TOKEN = 4,		/* needs the API token, always */
	R_PRIVATE = 8,		/* needs the API token when not bound to loopback */
	R_QUIET = 16,		/* successful requests are not logged (probes, scrapes) */
};

struct route {
	const char *path;
	int flags;
	int provider;		/* a webhook route: its provider; -1 otherwise */
	void (*handle)(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
};

static void do_page(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_healthz(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_readyz(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_metrics(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_status(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_resources(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_history(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_sync(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);
static void do_hook(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out);

static const struct route routes[] = {
	{ "/", R_GET | R_PRIVATE, -1, do_page },
	{ "/healthz", R_GET | R_QUIET, -1, do_healthz },
	{ "/readyz", R_GET | R_QUIET, -1, do_readyz },
	{ "/metrics", R_GET | R_QUIET, -1, do_metrics },
	{ "/api/v1/status", R_GET | R_PRIVATE, -1, do_status },
	{ "/api/v1/resources", R_GET | R_PRIVATE, -1, do_resources },
	{ "/api/v1/history", R_GET | R_PRIVATE, -1, do_history },
	{ "/api/v1/sync", R_POST | R_TOKEN, -1, do_sync },
	{ "/hooks/github", R_POST, WEBHOOK_GITHUB, do_hook },
	{ "/hooks/gitlab", R_POST, WEBHOOK_GITLAB, do_hook },
	{ "/hooks/gitea", R_POST, WEBHOOK_GITEA, do_hook },
	{ "/hooks/generic", R_POST, WEBHOOK_GENERIC, do_hook },
	{ NULL, 0, -1, NULL },
};

/* The one module instance, for the fork handler only: a fetch child must
 * not keep the agent's sockets (and so its TCP connections) open. */
static struct http *fork_h;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define HLOG_PER_SECOND 50	/* a flood of requests must not flood the log too */

/* A line in the agent's log (stderr), redacted; at most HLOG_PER_SECOND a
 * second, the rest counted and said once the next second begins. */
static void hlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hlog(const char *fmt, ...)
{
	static int64_t second;
	static long lines, dropped;
	int64_t now = mono_ms() / 1000;
	if (now != second) {
		if (dropped)
			fprintf(stderr, "http: %ld log lines left out (more than %d a second)\n", dropped,
				HLOG_PER_SECOND);
		second = now;
		lines = dropped = 0;
	}
	if (++lines > HLOG_PER_SECOND) {
		dropped++;
		return;
	}
	struct buf b = BUF_INIT, out = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	http_redact(&out, b.ptr ? b.ptr : "");
	fputs(out.ptr ? out.ptr : "", stderr);
	fputc('\n', stderr);
	fflush(stderr);
	buf_release(&b);
	buf_release(&out);
}

/* Copy s for a log line: printable ASCII only, at most n-1 bytes, cut at '?'. */
static void log_safe(char *out, size_t n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (; s && *s && *s != '?' && o + 1 < n; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
			out[o++] = (char)ch;
		} else {
			if (o + 5 > n)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

void reply_error(struct reply *out, int status, const char *msg)
{
	out->status = status;
	out->type = "application/json";
	buf_reset(&out->body);
	buf_adds(&out->body, "{\"error\":");
	buf_add_json_str(&out->body, msg);
	buf_adds(&out->body, "}\n");
}

static void reply_json(struct reply *out, int status, const char *json)
{
	out->status = status;
	out->type = "application/json";
	buf_reset(&out->body);
	buf_adds(&out->body, json);
}

/* ---- MHD on the agent's loop ---- */

static void http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG to = 0;
	MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &to) == MHD_YES)
		timer_arm(h->mhd_tfd, to == 0 ? -1 : to > 60000 ? 60000 : (int64_t)to);
	else
		timer_arm(h->mhd_tfd, 0);
}

static void on_mhd_fd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)fd;
	(void)events;
	http_run(ctx);
}

static void on_mhd_timer(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	http_run(ctx);
}

/* Requests that took longer than the deadline are cut off, however slowly
 * their bytes trickle in (MHD's own timeout is only for idle connections). */
static void on_sweep(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct http *h = ctx;
	int64_t now = mono_ms();
	(void)l;
	(void)events;
	timer_ack(fd);
	for (struct conn *k = h->conns; k; k = k->next) {
		if (k->deadline_ms > now)
			continue;
		hlog("http: %s: request not finished within %d s; connection closed", k->ip,
		     h->deadline_s);
		shutdown(k->fd, SHUT_RDWR);
		k->deadline_ms = INT64_MAX;
	}
	if (h->conns)
		timer_arm(h->sweep_tfd, 1000);
	http_run(h);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		struct conn *k = xcalloc(1, sizeof(*k));
		k->fd = ci ? ci->connect_fd : -1;
		k->deadline_ms = mono_ms() + (int64_t)h->deadline_s * 1000;
		if (ai && ai->client_addr) {
			const struct sockaddr *sa = ai->client_addr;
			if (sa->sa_family == AF_INET)
				inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, k->ip, sizeof(k->ip));
			else if (sa->sa_family == AF_INET6)
				inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, k->ip, sizeof(k->ip));
		}
		if (!k->ip[0])
			snprintf(k->ip, sizeof(k->ip), "?");
		if (!h->conns)
			timer_arm(h->sweep_tfd, 1000);
		k->next = h->conns;
		h->conns = k;
		*socket_context = k;
		return;
	}
	struct conn *k = *socket_context;
	for (struct conn **pp = &h->conns; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	free(k);
	*socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return i ? i->socket_context : NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	hlog("http: %s", msg);
}

static void fork_child(void)
{
	/* in a forked child (the fetch): let go of every socket of the server
	 * and of the notifier, so that closing a connection in the agent
	 * really closes it */
	struct http *h = fork_h;
	if (!h)
		return;
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->mhd_fd >= 0)
		close(h->mhd_fd);
	for (struct conn *k = h->conns; k; k = k->next)
		if (k->fd >= 0)
			close(k->fd);
	if (h->notify)
		notify_close_in_child(h->notify);
}

/* ---- what comes before any handler ---- */

static const struct route *route_find(const char *path)
{
	for (const struct route *r = routes; r->path; r++)
		if (!strcmp(r->path, path))
			return r;
	return NULL;
}

/* The host part of a Host header value: "[::1]:80" -> "::1", "a:80" -> "a". */
static void host_part(char *out, size_t n, const char *v)
{
	size_t len;
	if (v[0] == '[') {
		v++;
		len = strcspn(v, "]");
	} else {
		const char *colon = strrchr(v, ':');
		len = colon ? (size_t)(colon - v) : strlen(v);
	}
	if (len >= n)
		len = n - 1;
	memcpy(out, v, len);
	out[len] = '\0';
	if (len && out[len - 1] == '.')
		out[len - 1] = '\0';
}

static int host_allowed(const struct http *h, const char *value)
{
	static const char *const loop_names[] = { "localhost", "127.0.0.1", "::1", NULL };
	char host[256];
	if (!value)
		return 1;	/* HTTP/1.0 without Host; MHD refuses HTTP/1.1 without it */
	host_part(host, sizeof(host), value);
	for (int i = 0; loop_names[i]; i++)
		if (!strcasecmp(host, loop_names[i]))
			return 1;
	if (h->listen_host[0] && !strcasecmp(host, h->listen_host))
		return 1;
	for (size_t i = 0; i < h->nallowed_hosts; i++)
		if (!strcasecmp(host, h->allowed_hosts[i]))
			return 1;
	return 0;
}

/* 1 when the request carries "Authorization: Bearer <the token>". */
static int token_ok(const struct http *h, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h->token || !v || strncasecmp(v, "Bearer ", 7))
		return 0;
	v += 7;
	while (*v == ' ')
		v++;
	return secret_equal(h->cmp_key, v, strlen(v), h->token, h->token_len);
}

static enum MHD_Result send_reply(struct http *h, struct req *r, struct MHD_Connection *c,
				  struct reply *rp)
{
	struct buf body = BUF_INIT;
	(void)h;
	if (rp->type && !strncmp(rp->type, "text/html", 9))
		buf_adds(&body, rp->body.ptr ? rp->body.ptr : "");	/* redacted string by string */
	else
		http_redact(&body, rp->body.ptr ? rp->body.ptr : "");
	size_t len = body.len;
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, len ? buf_detach(&body) : (void *)"",
								     len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		buf_release(&body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", rp->type ? rp->type : "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (rp->type && !strncmp(rp->type, "text/html", 9)) {
		MHD_add_response_header(resp, "Content-Security-Policy",
					"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	}
	if (rp->allow)
		MHD_add_response_header(resp, "Allow", rp->allow);
	if (rp->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
	if (rp->status == 413 || rp->status == 431)
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)rp->status, resp);
	MHD_destroy_response(resp);
	r->status = rp->status;
	r->bytes = len;
	r->answered = 1;
	buf_release(&rp->body);
	return ret;
}

static enum MHD_Result refuse(struct http *h, struct req *r, struct MHD_Connection *c, int status,
			      const char *msg, const char *note)
{
	struct reply rp = { .status = status };
	reply_error(&rp, status, msg);
	r->note = note;
	return send_reply(h, r, c, &rp);
}

/* Everything that can be decided from the request line and the headers,
 * before a byte of the body is read. */
static enum MHD_Result first_look(struct http *h, struct req *r, struct MHD_Connection *c,
				  const char *url, const char *method)
{
	if (!host_allowed(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
		return refuse(h, r, c, 421, "this Host is not served here (see 'allowedHosts')", "host");
	const struct route *rt = route_find(url);
	if (rt && rt->provider >= 0 && (!h->hook || (int)h->hook->provider != rt->provider))
		rt = NULL;	/* the provider is configured, never guessed */
	if (!rt)
		return refuse(h, r, c, 404, "not found", NULL);
	r->route = rt;
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int is_post = !strcmp(method, "POST");
	int hook = rt->provider >= 0;
	if ((rt->flags & R_GET && !is_get) || (rt->flags & R_POST && !is_post)) {
		struct reply rp = { .allow = rt->flags & R_GET ? "GET, HEAD" : "POST" };
		h->stats.hooks[3] += hook;	/* refused before authentication */
		reply_error(&rp, 405, "method not allowed");
		return send_reply(h, r, c, &rp);
	}
	r->body_max = hook ? HTTP_BODY_MAX_HOOK : HTTP_BODY_MAX_API;
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno || *end || n > r->body_max) {
			h->stats.hooks[3] += hook;
			return refuse(h, r, c, 413, "request body too large", "size");
		}
	}
	if (hook) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!ct || (strncasecmp(ct, "application/json", 16) &&
			    strncasecmp(ct, "application/x-www-form-urlencoded", 33))) {
			h->stats.hooks[3]++;
			return refuse(h, r, c, 415, "content type must be application/json", "type");
		}
	}
	if (rt->flags & R_TOKEN && !h->token)
		return refuse(h, r, c, 403, "no 'apiTokenFile' is configured: this endpoint is off",
			      "no token configured");
	if ((rt->flags & R_TOKEN || (rt->flags & R_PRIVATE && !h->loopback)) && !token_ok(h, c))
		return refuse(h, r, c, 401, "unauthorized", "token");
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	(void)version;
	if (!r) {
		r = xcalloc(1, sizeof(*r));
		*con_cls = r;
		r->t0_us = mono_us();
		log_safe(r->method, sizeof(r->method), method);
		log_safe(r->path, sizeof(r->path), url);
		struct conn *k = conn_of(c);
		snprintf(r->ip, sizeof(r->ip), "%s", k ? k->ip : "?");
		return first_look(h, r, c, url, method);
	}
	if (r->answered) {
		*upload_size = 0;	/* an early answer is out; MHD closes after it */
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > r->body_max) {
			/* a chunked body that outgrew the cap: libmicrohttpd 0.9.75
			 * cannot answer before the body ends, so read no more */
			r->status = 413;
			r->note = "size; connection closed";
			r->answered = 1;
			return MHD_NO;
		}
		buf_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	struct reply rp = { .status = 200, .type = "application/json" };
	r->route->handle(h, r, c, &rp);
	return send_reply(h, r, c, &rp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	struct conn *k = conn_of(c);
	if (k && k->deadline_ms != INT64_MAX)
		k->deadline_ms = mono_ms() + (int64_t)h->deadline_s * 1000;
	if (!r)
		return;
	*con_cls = NULL;
	int quiet = r->route && r->route->flags & R_QUIET && r->status && r->status < 300 &&
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
	if (!quiet) {
		static const char *const toes[] = { "", "error", "timed out", "daemon shut down",
			"read error", "client aborted" };
		const char *why = (unsigned)toe < sizeof(toes) / sizeof(*toes) ? toes[toe] : "?";
		hlog("http: %s \"%s %s\" %d %zu %.1fms%s%s%s%s%s", r->ip, r->method, r->path, r->status,
		     r->bytes, (double)(mono_us() - r->t0_us) / 1000.0, r->note ? " (" : "",
		     r->note ? r->note : "", r->note ? ")" : "", *why ? " " : "", why);
	}
	buf_release(&r->body);
	free(r);
}

/* ---- handlers ---- */

static void do_page(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	api_page(h, out);
}

static void do_healthz(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	api_healthz(h, out);
}

static void do_readyz(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	api_readyz(h, out);
}

static void do_metrics(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	metrics_render(h, out);
}

static void do_status(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	api_status(h, out);
}

static void do_resources(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	(void)c;
	api_resources(h, out);
}

static void do_history(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)r;
	api_history(h, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"), out);
}

static void do_sync(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	(void)c;
	switch (h->hooks.sync ? h->hooks.sync(h->hooks.ctx) : HTTP_SYNC_BUSY) {
	case HTTP_SYNC_STARTED:
		reply_json(out, 202, "{\"status\":\"started\"}\n");
		break;
	case HTTP_SYNC_QUEUED:
		reply_json(out, 202, "{\"status\":\"queued\"}\n");
		break;
	default:
		r->note = "busy";
		reply_error(out, 409, "a sync is already running and another one is queued");
		break;
	}
}

/* A hook-triggered sync at most every HTTP_HOOK_COOLDOWN_MS; what comes in
 * between is folded into one sync at the end of the cooldown. */
static void hook_sync(struct http *h)
{
	int64_t now = mono_ms();
	if (h->hook_pending)
		return;
	if (now - h->hook_last_ms >= HTTP_HOOK_COOLDOWN_MS) {
		h->hook_last_ms = now;
		if (h->hooks.sync)
			h->hooks.sync(h->hooks.ctx);
		return;
	}
	h->hook_pending = 1;
	timer_arm(h->hook_tfd, HTTP_HOOK_COOLDOWN_MS - (now - h->hook_last_ms));
}

static void on_hook_timer(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct http *h = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	if (!h->hook_pending)
		return;
	h->hook_pending = 0;
	h->hook_last_ms = mono_ms();
	if (h->hooks.sync)
		h->hooks.sync(h->hooks.ctx);
}

static const char *get_header(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static void do_hook(struct http *h, struct req *r, struct MHD_Connection *c, struct reply *out)
{
	const char *name = webhook_provider_names[h->hook->provider];
	int matched = -1;
	enum webhook_verdict v = webhook_verify(h->hook, get_header, c, r->body.ptr ? r->body.ptr : "",
						r->body.len, &matched);
	if (v != WEBHOOK_OK) {
		h->stats.hooks[2]++;
		r->note = "signature";
		hlog("http: webhook %s from %s refused: %s", name, r->ip, webhook_verdict_str(v));
		reply_error(out, 401, "unauthorized");
		return;
	}
	const char *id = webhook_delivery_id(h->hook->provider, get_header, c);
	char shown[96] = "";
	if (id)
		log_safe(shown, sizeof(shown), id);
	if (webhook_is_ping(h->hook->provider, get_header, c)) {
		h->stats.hooks[4]++;
		hlog("http: webhook %s ping %s answered", name, shown);
		reply_json(out, 200, "{\"status\":\"pong\"}\n");
		return;
	}
	if (id && webhook_dedupe_seen(&h->hook->seen, id)) {
		h->stats.hooks[1]++;
		r->note = "replay";
		hlog("http: webhook %s delivery %s was seen before; ignored", name, shown);
		reply_json(out, 200, "{\"status\":\"duplicate\"}\n");
		return;
	}
	h->stats.hooks[0]++;
	if (matched >= 0)
		hlog("http: webhook %s delivery %s accepted (secret %d of %zu); fetching", name,
		     id ? shown : "(no id)", matched + 1, h->hook->nsecrets);
	else
		hlog("http: webhook %s delivery %s accepted (no secret: 'webhook.insecure'); fetching",
		     name, id ? shown : "(no id)");
	hook_sync(h);
	reply_json(out, 202, "{\"status\":\"queued\"}\n");
}

/* ---- setup ---- */

static int open_listener(struct http *h, const char *spec)
{
	char host[64];
	int port;
	if (config_listen_parse(spec, host, sizeof(host), &port) < 0)
		return err_set("'listen': '%s' is not HOST:PORT (an IP address or localhost, and a port)",
			       spec);
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	const char *ip = !strcmp(host, "localhost") ? "127.0.0.1" : host;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
		h->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
		h->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	} else {
		return err_set("'listen': '%s' is not HOST:PORT (an IP address or localhost, and a port)",
			       spec);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return err_set_errno("cannot listen on '%s'", spec);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return err_set_errno("cannot listen on '%s'", spec);
	}
	h->listen_fd = fd;
	snprintf(h->listen, sizeof(h->listen), "%s", spec);
	snprintf(h->listen_host, sizeof(h->listen_host), "%s", host);
	return ss.ss_family == AF_INET6 ? 6 : 4;
}

/* Test knob: DRIFTLESS_HTTP_TIMEOUTS=IDLE,TOTAL (seconds). */
static void timeouts(struct http *h)
{
	h->idle_timeout_s = HTTP_IDLE_TIMEOUT_S;
	h->deadline_s = HTTP_REQUEST_DEADLINE_S;
	const char *t = getenv("DRIFTLESS_HTTP_TIMEOUTS");
	int idle, total;
	if (t && sscanf(t, "%d,%d", &idle, &total) == 2 && idle > 0 && total > 0) {
		h->idle_timeout_s = idle;
		h->deadline_s = total;
	}
}

static int server_start(struct http *h, const struct config *cfg)
{
	const char *spec = cfg->listen ? cfg->listen : HTTP_DEFAULT_LISTEN;
	int family = open_listener(h, spec);
	if (family < 0)
		return -1;
	if (cfg->api_token_file) {
		h->token = secret_file_read(cfg->api_token_file, "apiTokenFile", &h->token_len);
		if (!h->token)
			return -1;
		redact_add(h->token, h->token_len);
	}
	if (!h->loopback && !h->token)
		return err_set("'listen': '%s' is not a loopback address; set 'apiTokenFile' to serve the"
			       " API beyond this host", spec);
	h->allowed_hosts = xcalloc(cfg->nallowed_hosts + 1, sizeof(char *));
	for (size_t i = 0; i < cfg->nallowed_hosts; i++)
		h->allowed_hosts[h->nallowed_hosts++] = xstrdup(cfg->allowed_hosts[i]);
	if (cfg->webhook.provider) {
		int p = webhook_provider_find(cfg->webhook.provider);
		if (p < 0)
			return err_set("'webhook.provider': unknown provider '%s'", cfg->webhook.provider);
		h->hook = xcalloc(1, sizeof(*h->hook));
		if (webhook_init(h->hook, (enum webhook_provider)p, cfg->webhook.insecure) < 0)
			return -1;
		if (cfg->webhook.secret_file) {
			if (webhook_load_secrets(h->hook, cfg->webhook.secret_file) < 0)
				return -1;
			for (size_t i = 0; i < h->hook->nsecrets; i++)
				redact_add(h->hook->secret[i], h->hook->secret_len[i]);
		} else if (!cfg->webhook.insecure) {
			return err_set("'webhook.secretFile' is required (or set 'webhook.insecure: true')");
		}
		h->hook_last_ms = INT64_MIN / 2;
	}
	timeouts(h);
	h->mhd_tfd = timer_new();
	h->sweep_tfd = timer_new();
	h->hook_tfd = timer_new();
	if (h->mhd_tfd < 0 || h->sweep_tfd < 0 || h->hook_tfd < 0)
		return -1;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (family == 6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
				  MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->idle_timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				  MHD_OPTION_END);
	if (!h->mhd)
		return err_set("cannot start the HTTP server on '%s'", spec);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di || di->epoll_fd < 0)
		return err_set("cannot start the HTTP server on '%s': no epoll", spec);
	h->mhd_fd = di->epoll_fd;
	if (loop_add(h->loop, h->mhd_fd, EPOLLIN, on_mhd_fd, h) < 0 ||
	    loop_add(h->loop, h->mhd_tfd, EPOLLIN, on_mhd_timer, h) < 0 ||
	    loop_add(h->loop, h->sweep_tfd, EPOLLIN, on_sweep, h) < 0 ||
	    loop_add(h->loop, h->hook_tfd, EPOLLIN, on_hook_timer, h) < 0)
		return -1;
	http_run(h);
	hlog("http: listening on %s%s%s%s", h->listen, h->hook ? ", webhook " : "",
	     h->hook ? webhook_provider_names[h->hook->provider] : "",
	     h->token ? ", API token set" : "");
	if (h->hook && !h->hook->nsecrets)
		hlog("http: warning: 'webhook.insecure' is set: anyone who can reach %s can trigger fetches",
		     h->listen);
	return 0;
}

int http_new(struct http **out, struct loop *l, const struct config *cfg, struct db *db,
	     const struct http_hooks *hooks)
{
	struct http *h = xcalloc(1, sizeof(*h));
	h->loop = l;
	h->db = db;
	h->hooks = *hooks;
	h->listen_fd = h->mhd_fd = h->mhd_tfd = h->sweep_tfd = h->hook_tfd = -1;
	h->stats.source_state = -1;
	h->stats.started_ms = wall_ms();
	if (sodium_init() < 0) {
		free(h);
		return err_set("cannot initialise libsodium");
	}
	randombytes_buf(h->cmp_key, sizeof(h->cmp_key));
	char *applied = NULL;
	struct arena tmp;
	arena_init(&tmp);
	if ((applied = db_meta_get(db, "applied_revision", &tmp)))
		snprintf(h->last_rev, sizeof(h->last_rev), "%s", applied);
	arena_release(&tmp);
	if ((cfg->listen || cfg->webhook.provider || cfg->api_token_file) && server_start(h, cfg) < 0)
		goto fail;
	if (cfg->nnotify && notify_new(&h->notify, l, cfg, &h->stats) < 0)
		goto fail;
	fork_h = h;
	static int atfork_done;
	if (!atfork_done && pthread_atfork(NULL, NULL, fork_child) == 0)
		atfork_done = 1;
	*out = h;
	return 0;
fail:
	http_free(h);
	return -1;
}

/* The API token of cfg (NULL without 'apiTokenFile'); 0, or -1 with err_msg(). */
static int token_load(const struct http *h, const struct config *cfg, char **token, size_t *len)
{
	*token = NULL;
	*len = 0;
	if (cfg->api_token_file) {
		*token = secret_file_read(cfg->api_token_file, "apiTokenFile", len);
		if (!*token)
			return -1;
	}
	if (!h->loopback && !*token)
		return err_set("'listen': '%s' is not a loopback address; 'apiTokenFile' cannot go",
			       h->listen);
	return 0;
}

/* The webhook secrets of cfg into h->hook; the provider cannot change. */
static int hook_rotate(struct http *h, const struct config *cfg)
{
	if (!h->hook) {
		if (cfg->webhook.provider)
			hlog("http: a webhook receiver starts only with the agent; restart it");
		return 0;
	}
	if (!cfg->webhook.provider ||
	    webhook_provider_find(cfg->webhook.provider) != (int)h->hook->provider) {
		hlog("http: the webhook provider cannot change on reload; restart the agent");
		return 0;
	}
	if (webhook_rotate(h->hook, cfg->webhook.secret_file, cfg->webhook.insecure) < 0)
		return -1;
	for (size_t i = 0; i < h->hook->nsecrets; i++)
		redact_add(h->hook->secret[i], h->hook->secret_len[i]);
	if (!h->hook->nsecrets)
		hlog("http: warning: 'webhook.insecure' is set: anyone who can reach %s can trigger fetches",
		     h->listen);
	return 0;
}

int http_reload(struct http *h, const struct config *cfg)
{
	if (!h->mhd) {
		if (cfg->listen || cfg->webhook.provider || cfg->api_token_file)
			hlog("http: the HTTP server starts only with the agent; restart it to serve HTTP");
		return 0;
	}
	char *token;
	size_t len;
	if (token_load(h, cfg, &token, &len) < 0)
		return -1;
	if (hook_rotate(h, cfg) < 0) {
		if (token) {
			sodium_memzero(token, len);
			free(token);
		}
		return -1;
	}
	if (h->token) {
		sodium_memzero(h->token, h->token_len);
		free(h->token);
	}
	h->token = token;
	h->token_len = len;
	if (token)
		redact_add(token, len);
	hlog("http: credentials read again: %zu webhook secret(s)%s", h->hook ? h->hook->nsecrets : 0,
	     h->token ? ", API token set" : ", no API token");
	return 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (fork_h == h)
		fork_h = NULL;
	if (h->mhd) {
		loop_del(h->loop, h->mhd_fd);
		MHD_stop_daemon(h->mhd);	/* closes the listening socket and every connection */
		h->listen_fd = -1;
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	int tfds[] = { h->mhd_tfd, h->sweep_tfd, h->hook_tfd };
	for (size_t i = 0; i < sizeof(tfds) / sizeof(*tfds); i++) {
		if (tfds[i] < 0)
			continue;
		loop_del(h->loop, tfds[i]);
		close(tfds[i]);
	}
	while (h->conns) {
		struct conn *k = h->conns;
		h->conns = k->next;
		free(k);
	}
	notify_free(h->notify);
	buf_release(&h->res_gauge);
	if (h->hook) {
		webhook_release(h->hook);
		free(h->hook);
	}
	if (h->token) {
		sodium_memzero(h->token, h->token_len);
		free(h->token);
	}
	for (size_t i = 0; i < h->nallowed_hosts; i++)
		free(h->allowed_hosts[i]);
	free(h->allowed_hosts);
	sodium_memzero(h->cmp_key, sizeof(h->cmp_key));
	free(h);
}
