/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the Prometheus text format (version 0.0.4). Counters come
 * from this process (struct agent_stats), gauges from the state database.
 * Only names, states, counts, times and commit ids appear: never a path's
 * content, a token or a secret.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd/render.h"
#include "http/internal.h"

const double stats_bounds[STATS_NBUCKETS - 1] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10, 30, 60 };

void stats_observe(struct agent_stats *s, int which, int64_t ms)
{
	double sec = (double)ms / 1000.0;
	int i = 0;
	while (i < STATS_NBUCKETS - 1 && sec > stats_bounds[i])
		i++;
	s->dur_bucket[which][i]++;
	s->dur_sum[which] += sec;
	s->dur_count[which]++;
}

/* A label value: backslash, quote and newline escaped. */
static void label(struct buf *b, const char *s)
{
	buf_addch(b, '"');
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_addch(b, '\\');
		if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_addch(b, *s);
	}
	buf_addch(b, '"');
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void meta_time(struct buf *b, struct http *h, struct arena *a, const char *key,
		      const char *name, const char *help)
{
	const char *v = db_meta_get(h->db, key, a);
	if (!v)
		return;
	head(b, name, "gauge", help);
	buf_addf(b, "%s %.3f\n", name, (double)strtoll(v, NULL, 10) / 1000.0);
}

void metrics_render(struct http *h, struct reply *out)
{
	static const char *const results[] = { "applied", "partial", "failed", "rejected" };
	static const char *const policies[] = { "repair", "report" };
	static const char *const actions[] = { "repaired", "reported", "failed", "backed-off",
		"held" };
	static const char *const types[] = { "pass", "drift" };
	static const char *const hooks[] = { "accepted", "duplicate", "unauthorized", "rejected", "ping" };
	static const char *const notes[] = { "sent", "failed", "dropped", "suppressed" };
	struct agent_stats *s = &h->stats;
	struct buf *b = &out->body;
	struct arena a;
	arena_init(&a);
	out->status = 200;
	out->type = "text/plain; version=0.0.4; charset=utf-8";

	head(b, "driftless_build_info", "gauge", "The running driftless version.");
	buf_adds(b, "driftless_build_info{version=");
	label(b, DRIFTLESS_VERSION);
	buf_adds(b, "} 1\n");
	const char *rev = db_meta_get(h->db, "applied_revision", &a);
	if (rev) {
		head(b, "driftless_revision_info", "gauge", "The applied revision (commit id).");
		buf_adds(b, "driftless_revision_info{revision=");
		label(b, rev);
		buf_adds(b, "} 1\n");
	}
	head(b, "driftless_agent_start_time_seconds", "gauge", "When this agent process started.");
	buf_addf(b, "driftless_agent_start_time_seconds %.3f\n", (double)s->started_ms / 1000.0);

	head(b, "driftless_reconcile_duration_seconds", "histogram",
	     "How long passes (type=pass) and drift repairs (type=drift) took.");
	for (int t = 0; t < 2; t++) {
		uint64_t cum = 0;
		for (int i = 0; i < STATS_NBUCKETS; i++) {
			cum += s->dur_bucket[t][i];
			if (i < STATS_NBUCKETS - 1)
				buf_addf(b, "driftless_reconcile_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
					 types[t], stats_bounds[i], (unsigned long long)cum);
			else
				buf_addf(b, "driftless_reconcile_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n",
					 types[t], (unsigned long long)cum);
		}
		buf_addf(b, "driftless_reconcile_duration_seconds_sum{type=\"%s\"} %.6f\n", types[t],
			 s->dur_sum[t]);
		buf_addf(b, "driftless_reconcile_duration_seconds_count{type=\"%s\"} %llu\n", types[t],
			 (unsigned long long)s->dur_count[t]);
	}

	head(b, "driftless_passes_total", "counter", "Passes run by this agent, by result.");
	for (int i = 0; i < 4; i++)
		buf_addf(b, "driftless_passes_total{result=\"%s\"} %llu\n", results[i],
			 (unsigned long long)s->passes[i]);

	head(b, "driftless_drift_events_total", "counter",
	     "Changes made outside Git, by drift policy and what the agent did.");
	for (int p = 0; p < 2; p++)
		for (int i = 0; i < 5; i++)
			buf_addf(b, "driftless_drift_events_total{policy=\"%s\",outcome=\"%s\"} %llu\n",
				 policies[p], actions[i], (unsigned long long)s->drift[p][i]);

	head(b, "driftless_resources", "gauge", "Managed resources by kind and state.");
	struct res_state *v = NULL;
	size_t n = 0;
	struct buf *gb = b;
	b = &h->res_gauge;
	if (h->res_gauge_valid) {
		/* nothing was applied or repaired since the last scrape */
	} else if (buf_reset(b), render_res_states(h->db, &a, &v, &n) == 0) {
		h->res_gauge_valid = 1;
		/* a few kinds: a linear list is enough */
		const char **kindv = arena_alloc(&a, (n + 1) * sizeof(*kindv));
		size_t (*c)[RES__STATES] = arena_alloc(&a, (n + 1) * sizeof(*c));
		size_t nk = 0;
		for (size_t i = 0; i < n; i++) {
			size_t k = 0;
			while (k < nk && strcmp(kindv[k], v[i].kind))
				k++;
			if (k == nk)
				kindv[nk++] = v[i].kind;
			c[k][v[i].state]++;
		}
		for (size_t k = 0; k < nk; k++) {
			for (int st = 0; st < RES__STATES; st++) {
				buf_adds(b, "driftless_resources{kind=");
				label(b, kindv[k]);
				buf_addf(b, ",state=\"%s\"} %zu\n", res_state_names[st], c[k][st]);
			}
		}
	}
	b = gb;
	buf_add(b, h->res_gauge.ptr ? h->res_gauge.ptr : "", h->res_gauge.len);

	head(b, "driftless_fetches_total", "counter", "Fetches of the source, by result.");
	buf_addf(b, "driftless_fetches_total{result=\"ok\"} %llu\n", (unsigned long long)s->fetches[0]);
	buf_addf(b, "driftless_fetches_total{result=\"failed\"} %llu\n", (unsigned long long)s->fetches[1]);
	head(b, "driftless_source_up", "gauge", "1 when the last fetch succeeded.");
	buf_addf(b, "driftless_source_up %d\n", s->source_state == 1);
	meta_time(b, h, &a, "last_fetch_ok_at", "driftless_last_successful_fetch_timestamp_seconds",
		  "When the source was last fetched successfully.");
	meta_time(b, h, &a, "applied_at", "driftless_last_successful_sync_timestamp_seconds",
		  "When a revision was last applied.");

	head(b, "driftless_webhook_deliveries_total", "counter", "Webhook deliveries, by result.");
	for (int i = 0; i < 5; i++)
		buf_addf(b, "driftless_webhook_deliveries_total{result=\"%s\"} %llu\n", hooks[i],
			 (unsigned long long)s->hooks[i]);
	head(b, "driftless_notifications_total", "counter", "Notifications, by result.");
	for (int i = 0; i < 4; i++)
		buf_addf(b, "driftless_notifications_total{result=\"%s\"} %llu\n", notes[i],
			 (unsigned long long)s->notify[i]);
	arena_release(&a);
}
