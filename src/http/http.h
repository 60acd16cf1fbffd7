/* SPDX-License-Identifier: MIT */
/*
 * The agent's HTTP surface: the status page, JSON API, metrics and push
 * webhooks (server.c, api.c, metrics.c, webhook.c), and outgoing
 * notifications (notify.c). All of it runs in the agent's event loop; none
 * of it ever blocks a pass or a drift repair.
 */
#ifndef DL_HTTP_H
#define DL_HTTP_H

#include <stdint.h>
#include "core/config.h"
#include "core/pass.h"
#include "daemon/loop.h"
#include "state/db.h"

/* What the agent lets the HTTP module do. */
struct http_hooks {
	/* Fetch now, and run a pass when the commit is new. Returns one of
	 * HTTP_SYNC_*. Never blocks: the fetch runs in a child process. */
	int (*sync)(void *ctx);
	void *ctx;
};

enum {
	HTTP_SYNC_STARTED,	/* nothing was running: a fetch started */
	HTTP_SYNC_QUEUED,	/* a fetch was running: one more follows it */
	HTTP_SYNC_BUSY,		/* one running and one queued already */
};

#define STATS_NBUCKETS 14	/* histogram buckets, +Inf included */
enum { STATS_PASS, STATS_DRIFT };

/* Counters over the life of this agent process, for /metrics. */
struct agent_stats {
	uint64_t passes[4];		/* by result: applied, partial, failed, rejected */
	uint64_t drift[2][5];		/* by policy (repair, report) and action
					 * (repaired, reported, failed, backed-off, held) */
	uint64_t dur_bucket[2][STATS_NBUCKETS];	/* reconcile durations: passes, drift repairs */
	double dur_sum[2];
	uint64_t dur_count[2];
	uint64_t fetches[2];		/* ok, failed */
	int source_state;		/* -1 no fetch finished yet, 0 failing, 1 reachable */
	char source_error[256];
	uint64_t hooks[5];		/* accepted, duplicate, unauthorized, rejected, ping */
	uint64_t notify[4];		/* sent, failed, dropped, suppressed */
	int64_t started_ms;
};

struct http;

/*
 * Start what cfg asks for: the HTTP server when 'listen', 'webhook' or
 * 'apiTokenFile' is set (or --listen was given), the notifier when 'notify'
 * is set. Reads the token and secret files now and refuses bad ones.
 * Returns 0 with *out set (also when nothing is configured: the counters
 * are always kept), or -1 with err_msg().
 */
int http_new(struct http **out, struct loop *l, const struct config *cfg, struct db *db,
	     const struct http_hooks *hooks);
void http_free(struct http *h);
/* SIGHUP: read the API token and the webhook secrets again from the files
 * cfg names, so rotating them needs no restart; the listener, the webhook
 * provider and the Host allow-list stay as they started. On error nothing
 * changes and -1 is returned with err_msg(). */
int http_reload(struct http *h, const struct config *cfg);

/* A pass of agent_pass() ended. result is "rejected" or "failed" when the
 * pass did not run to the end, or NULL: then pass_result(p). */
void http_note_pass(struct http *h, const struct pass *p, const char *result, int64_t ms);
/* A drift repair pass took ms (one per repair_dirty() that did work). */
void http_note_repair(struct http *h, int64_t ms);
/* A drift event was recorded. */
void http_note_drift(struct http *h, const struct drift_event *e);
/* A fetch ended: ok, or failed with why. */
void http_note_fetch(struct http *h, int ok, const char *why);
/* A Service's health check changed its readiness (health-degraded). */
void http_note_health(struct http *h, const char *id, int ready, const char *detail);

#endif
