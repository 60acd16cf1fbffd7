/* SPDX-License-Identifier: MIT */
/*
 * What the agent tells the HTTP module: passes, drift repairs, drift events
 * and fetches. Each call counts for /metrics and, when notification targets
 * are configured, queues the matching event. Nothing here blocks.
 */
#include <stdio.h>
#include <string.h>
#include "http/internal.h"

static int index_of(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

void http_note_pass(struct http *h, const struct pass *p, const char *result, int64_t ms)
{
	static const char *const results[] = { "applied", "partial", "failed", "rejected" };
	if (!h || !p)
		return;
	h->res_gauge_valid = 0;
	const char *res = result ? result : pass_result(p);
	int r = index_of(results, 4, res);
	if (r < 0)
		return;
	h->stats.passes[r]++;
	stats_observe(&h->stats, STATS_PASS, ms);
	const char *oid = p->rev.oid;
	int changes = p->counts[OUT_CREATED] + p->counts[OUT_UPDATED] + p->counts[OUT_DELETED];
	char text[1024];
	if (r == 0) {
		if (h->notify && (changes || strcmp(h->last_rev, oid))) {
			snprintf(text, sizeof(text), "revision %.12s applied: %d created, %d updated, %d deleted"
				 "%s%s%s", oid, p->counts[OUT_CREATED], p->counts[OUT_UPDATED],
				 p->counts[OUT_DELETED], p->rev.summary ? " (\"" : "",
				 p->rev.summary ? p->rev.summary : "", p->rev.summary ? "\")" : "");
			notify_event(h->notify, NOTIFY_SYNC_SUCCEEDED, oid, oid, text);
		}
		snprintf(h->last_rev, sizeof(h->last_rev), "%s", oid);
		return;
	}
	if (!h->notify)
		return;
	if (r == 3) {
		snprintf(text, sizeof(text), "revision %.12s rejected: %zu problem%s; %s", oid, p->diag.n,
			 p->diag.n == 1 ? "" : "s",
			 h->last_rev[0] ? "the previous revision stays enforced" : "nothing was applied");
	} else if (result) {
		snprintf(text, sizeof(text), "revision %.12s could not be applied; see the agent's log", oid);
	} else {
		const struct change *first = NULL;
		for (size_t i = 0; i < p->nchanges && !first; i++)
			if (p->changes[i].outcome == OUT_FAILED)
				first = &p->changes[i];
		snprintf(text, sizeof(text), "revision %.12s %s: %d failed, %d skipped%s%s%s%s", oid, res,
			 p->counts[OUT_FAILED], p->counts[OUT_SKIPPED], first ? "; " : "",
			 first ? first->res->id : "", first && first->error ? ": " : "",
			 first && first->error ? first->error : "");
	}
	notify_event(h->notify, NOTIFY_SYNC_FAILED, oid, oid, text);
}

void http_note_repair(struct http *h, int64_t ms)
{
	if (h)
		stats_observe(&h->stats, STATS_DRIFT, ms);
}

void http_note_drift(struct http *h, const struct drift_event *e)
{
	static const char *const policies[] = { "repair", "report" };
	static const char *const actions[] = { "repaired", "reported", "failed", "backed-off",
		"held" };
	if (!h || !e)
		return;
	h->res_gauge_valid = 0;
	int p = index_of(policies, 2, e->policy), a = index_of(actions, 5, e->action);
	if (p >= 0 && a >= 0)
		h->stats.drift[p][a]++;
	if (!h->notify || a < 0)
		return;
	static const char *const then[] = { "; repaired", "; reported, not repaired (driftless/drift: report)",
		"; the repair failed", "; it keeps being changed, repairs back off",
		"; held, not repaired: the agent is suspended" };
	char text[1024];
	snprintf(text, sizeof(text), "%s: %s changed outside Git (%s)%s", e->res_id ? e->res_id : "",
		 e->path ? e->path : "", e->what ? e->what : "", then[a]);
	notify_event(h->notify, NOTIFY_DRIFT_DETECTED, e->res_id, e->commit, text);
	if (a == 0) {
		snprintf(text, sizeof(text), "%s: %s repaired (%s)", e->res_id ? e->res_id : "",
			 e->path ? e->path : "", e->what ? e->what : "");
		notify_event(h->notify, NOTIFY_DRIFT_REPAIRED, e->res_id, e->commit, text);
	}
}

void http_note_fetch(struct http *h, int ok, const char *why)
{
	if (!h)
		return;
	h->stats.fetches[ok ? 0 : 1]++;
	int was = h->stats.source_state;
	h->stats.source_state = ok ? 1 : 0;
	if (ok)
		return;
	snprintf(h->stats.source_error, sizeof(h->stats.source_error), "%s", why ? why : "");
	if (was != 0 && h->notify) {
		char text[512];
		snprintf(text, sizeof(text), "the source is unreachable (%s); the host is held to %s%.12s",
			 h->stats.source_error, h->last_rev[0] ? "revision " : "",
			 h->last_rev[0] ? h->last_rev : "nothing yet");
		notify_event(h->notify, NOTIFY_HEALTH_DEGRADED, "source", h->last_rev[0] ? h->last_rev : NULL,
			     text);
	}
}

void http_note_health(struct http *h, const char *id, int ready, const char *detail)
{
	if (!h || !h->notify || ready)
		return;
	char text[1024];
	snprintf(text, sizeof(text), "%s is not ready: %s", id ? id : "", detail ? detail : "");
	notify_event(h->notify, NOTIFY_HEALTH_DEGRADED, id, h->last_rev[0] ? h->last_rev : NULL, text);
}
