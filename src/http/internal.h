/* SPDX-License-Identifier: MIT */
/* What the files of src/http share: the module's state, requests and replies. */
#ifndef DL_HTTP_INTERNAL_H
#define DL_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "http/http.h"
#include "http/webhook.h"
#include "lib/buf.h"

#define HTTP_BODY_MAX_HOOK (1u << 20)	/* webhook bodies; larger is 413 before reading */
#define HTTP_BODY_MAX_API 4096		/* any other request body */
#define HTTP_CONN_LIMIT 64
#define HTTP_PER_IP_LIMIT 32
#define HTTP_IDLE_TIMEOUT_S 10		/* no byte for this long: closed */
#define HTTP_REQUEST_DEADLINE_S 30	/* a whole request, headers and body */
#define HTTP_CONN_MEMORY (32u << 10)	/* request line and headers; more is 431 */
#define HTTP_HOOK_COOLDOWN_MS 1000	/* at most one hook-triggered sync a second */

struct notifier;
struct conn;

struct http {
	struct loop *loop;
	struct db *db;
	struct http_hooks hooks;
	struct agent_stats stats;

	/* the server (NULL when no listen address is configured) */
	struct MHD_Daemon *mhd;
	int listen_fd, mhd_fd, mhd_tfd, sweep_tfd, hook_tfd;
	char listen[128];		/* as shown: "127.0.0.1:9180" */
	char listen_host[64];		/* for the Host allow-list */
	int loopback;			/* bound to a loopback address */
	char **allowed_hosts;
	size_t nallowed_hosts;
	char *token;			/* apiTokenFile's token, or NULL */
	size_t token_len;
	unsigned char cmp_key[32];
	struct webhook *hook;		/* NULL when no webhook is configured */
	int64_t hook_last_ms;
	int hook_pending;
	struct conn *conns;
	int idle_timeout_s, deadline_s;

	struct notifier *notify;	/* NULL when no target is configured */
	char last_rev[41];		/* last revision seen applied, for "new revision" */
	/* /metrics' driftless_resources lines, rebuilt only after a pass or a
	 * drift event (reading every resource's state costs a full table scan) */
	struct buf res_gauge;
	int res_gauge_valid;
};

/* One HTTP request while MHD handles it. */
struct req {
	const struct route *route;
	char method[16];
	char path[128];		/* for the access log: no query string, control bytes escaped */
	char ip[64];
	struct buf body;
	size_t body_max;
	int status;		/* what was answered, for the access log */
	size_t bytes;
	int64_t t0_us;
	int answered;
	const char *note;	/* a word for the access log: why it was refused */
};

/* What a handler answers. */
struct reply {
	int status;
	const char *type;	/* Content-Type */
	struct buf body;
	const char *allow;	/* for 405 */
};

/* api.c: the JSON API, health, readiness and the page for people. */
void api_status(struct http *h, struct reply *out);
void api_resources(struct http *h, struct reply *out);
void api_history(struct http *h, const char *limit, struct reply *out);
void api_healthz(struct http *h, struct reply *out);
void api_readyz(struct http *h, struct reply *out);
void api_page(struct http *h, struct reply *out);
/* Fill out with a JSON error body {"error": msg}. */
void reply_error(struct reply *out, int status, const char *msg);

/* metrics.c: the Prometheus text exposition. */
void metrics_render(struct http *h, struct reply *out);
/* Record one duration in the histogram (STATS_PASS or STATS_DRIFT). */
void stats_observe(struct agent_stats *s, int which, int64_t ms);
extern const double stats_bounds[STATS_NBUCKETS - 1];

/* notify.c: outgoing notifications through libcurl's multi interface. */
int notify_new(struct notifier **out, struct loop *l, const struct config *cfg,
	       struct agent_stats *stats);
void notify_free(struct notifier *n);
/* Queue event (enum notify_event) about subject; text is what people read. */
void notify_event(struct notifier *n, int event, const char *subject, const char *revision,
		  const char *text);
/* Close the notifier's sockets in a forked child (pthread_atfork). */
void notify_close_in_child(struct notifier *n);

/* The one redaction hook of the HTTP surface and notifications: the
 * project's redactor (registered secrets, URL userinfo), then values after
 * token=, secret=, password= and the like. Appends to out. */
void http_redact(struct buf *out, const char *s);

#endif
