/* SPDX-License-Identifier: MIT */
/*
 * The read side of the HTTP surface: the JSON API (the same renderers as
 * `driftless status` and `history`, src/cmd/render.c), liveness,
 * readiness and a self-contained status page for people.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cmd/render.h"
#include "http/internal.h"
#include "lib/err.h"

#define PAGE_MAX_RESOURCES 1000
#define PAGE_DRIFT 20
#define PAGE_HISTORY 20
#define HISTORY_MAX 1000

void api_status(struct http *h, struct reply *out)
{
	out->status = 200;
	out->type = "application/json";
	render_status(h->db, 1, &out->body);
}

void api_resources(struct http *h, struct reply *out)
{
	out->status = 200;
	out->type = "application/json";
	if (render_resources_json(h->db, &out->body) < 0)
		reply_error(out, 500, err_msg());
}

void api_history(struct http *h, const char *limit, struct reply *out)
{
	int n = 20;
	if (limit) {
		char *end;
		long v = strtol(limit, &end, 10);
		if (*end || end == limit || v <= 0 || v > HISTORY_MAX) {
			reply_error(out, 400, "'limit' must be a number from 1 to 1000");
			return;
		}
		n = (int)v;
	}
	out->status = 200;
	out->type = "application/json";
	if (render_history(h->db, n, 1, &out->body) < 0)
		reply_error(out, 500, err_msg());
}

void api_healthz(struct http *h, struct reply *out)
{
	(void)h;
	out->status = 200;
	out->type = "text/plain; charset=utf-8";
	buf_adds(&out->body, "ok\n");
}

/* NULL when ready, else why not (in a). */
static const char *not_ready(struct http *h, struct arena *a, const char **rev)
{
	const char *applied = db_meta_get(h->db, "applied_revision", a);
	const char *in_progress = db_meta_get(h->db, "in_progress", a);
	const char *rejected = db_meta_get(h->db, "rejected_revision", a);
	const char *last = db_meta_get(h->db, "last_result", a);
	*rev = applied;
	if (!applied)
		return "no revision has been applied yet";
	if (in_progress)
		return arena_printf(a, "the apply of %.12s has not finished", in_progress);
	if (rejected)
		return arena_printf(a, "revision %.12s was rejected; %.12s stays enforced", rejected, applied);
	if (last && strcmp(last, "applied"))
		return arena_printf(a, "the last pass on %.12s ended '%s'", applied, last);
	if (h->stats.source_state < 0)
		return "waiting for the first fetch";
	if (h->stats.source_state == 0)
		return arena_printf(a, "the source is unreachable: %s", h->stats.source_error);
	return NULL;
}

void api_readyz(struct http *h, struct reply *out)
{
	struct arena a;
	arena_init(&a);
	const char *rev = NULL;
	const char *why = not_ready(h, &a, &rev);
	out->type = "text/plain; charset=utf-8";
	if (why) {
		out->status = 503;
		buf_addf(&out->body, "not ready: %s\n", why);
	} else {
		out->status = 200;
		buf_addf(&out->body, "ready: revision %s applied, source reachable\n", rev);
	}
	arena_release(&a);
}

/* ---- the page for people ---- */

/* Redacted first (so the redaction tag is escaped too), then escaped. */
static void esc(struct buf *b, const char *str)
{
	struct buf r = BUF_INIT;
	if (!str)
		return;
	http_redact(&r, str);
	buf_add_html(b, r.ptr);
	buf_release(&r);
}

static void row(struct buf *b, const char *key, const char *val)
{
	buf_adds(b, "<tr><th>");
	esc(b, key);
	buf_adds(b, "</th><td>");
	esc(b, val ? val : "(none)");
	buf_adds(b, "</td></tr>\n");
}

static void when(char *out, size_t n, const char *ms)
{
	if (ms)
		render_time(out, n, strtoll(ms, NULL, 10));
	else
		snprintf(out, n, "(never)");
}

static int page_drift(void *ctx, const struct drift_event *e)
{
	struct buf *b = ctx;
	char t[32];
	render_time(t, sizeof(t), e->when_ms);
	buf_addf(b, "<tr><td>%s</td><td class=\"%s\">", t,
		 e->action && !strcmp(e->action, "repaired") ? "ok" : "bad");
	esc(b, e->action);
	buf_adds(b, "</td><td>");
	esc(b, e->res_id);
	buf_adds(b, "</td><td>");
	esc(b, e->path);
	buf_adds(b, "</td><td>");
	esc(b, e->what);
	buf_adds(b, "</td></tr>\n");
	return 0;
}

static int page_pass(void *ctx, const struct pass_record *r)
{
	struct buf *b = ctx;
	char t[32];
	render_time(t, sizeof(t), r->started_ms);
	buf_addf(b, "<tr><td>%s</td><td>", t);
	esc(b, r->command);
	buf_addf(b, "</td><td><code>%.12s</code></td><td class=\"%s\">", r->commit ? r->commit : "",
		 r->result && !strcmp(r->result, "applied") ? "ok" : "bad");
	esc(b, r->result);
	buf_adds(b, "</td><td>");
	esc(b, r->author);
	buf_adds(b, "</td><td>");
	esc(b, r->summary);
	buf_addf(b, "</td><td>%d / %d / %d / %d / %d</td><td>%lld ms</td></tr>\n", r->counts[OUT_CREATED],
		 r->counts[OUT_UPDATED], r->counts[OUT_DELETED], r->counts[OUT_FAILED],
		 r->counts[OUT_SKIPPED], (long long)(r->finished_ms - r->started_ms));
	return 0;
}

void api_page(struct http *h, struct reply *out)
{
	struct arena a;
	arena_init(&a);
	struct buf *b = &out->body;
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	const char *applied = db_meta_get(h->db, "applied_revision", &a);
	char at[32], fetched[32];
	when(at, sizeof(at), db_meta_get(h->db, "applied_at", &a));
	when(fetched, sizeof(fetched), db_meta_get(h->db, "last_fetch_ok_at", &a));
	const char *rev = NULL;
	const char *why = not_ready(h, &a, &rev);

	out->status = 200;
	out->type = "text/html; charset=utf-8";
	buf_adds(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width\">"
		    "<meta http-equiv=\"refresh\" content=\"30\"><title>driftless on ");
	esc(b, host);
	buf_adds(b, "</title><style>"
		    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
		    "table{border-collapse:collapse;margin-bottom:1.5em}"
		    "td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}"
		    "th{background:#f4f4f4}.ok{color:#161}.bad{color:#a11;font-weight:bold}"
		    "code{font:13px ui-monospace,monospace}"
		    "</style></head><body>\n<h1>driftless on ");
	esc(b, host);
	buf_adds(b, "</h1>\n");
	/* a suspension changes what the agent does: say so before anything else */
	struct suspension sp;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (db_suspend_active(h->db, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &a, &sp) == 1) {
		char until[32];
		render_time(until, sizeof(until), sp.until_ms);
		buf_adds(b, "<p class=\"bad\" id=\"suspended\" style=\"background:#fee;padding:.6em;"
			    "border:2px solid #a11\">SUSPENDED until ");
		esc(b, until);
		buf_adds(b, " by ");
		esc(b, sp.by);
		buf_adds(b, ": ");
		esc(b, sp.reason);
		buf_adds(b, ". Drift is held, not repaired, and new revisions wait"
			    " (<code>driftless resume</code> ends it).</p>\n");
	}
	buf_adds(b, "<table>\n");
	row(b, "applied revision", applied);
	row(b, "applied at", at);
	row(b, "last result", db_meta_get(h->db, "last_result", &a));
	row(b, "attempted revision", db_meta_get(h->db, "attempted_revision", &a));
	const char *rejected = db_meta_get(h->db, "rejected_revision", &a);
	if (rejected) {
		row(b, "rejected revision", rejected);
		row(b, "rejected because", db_meta_get(h->db, "rejected_reason", &a));
	}
	row(b, "last successful fetch", fetched);
	const char *serr = db_meta_get(h->db, "source_error", &a);
	if (serr)
		row(b, "source error", serr);
	row(b, "ready", why ? arena_printf(&a, "no: %s", why) : "yes");
	buf_adds(b, "</table>\n");

	struct res_state *v = NULL;
	size_t n = 0, counts[RES__STATES] = { 0 };
	if (render_res_states(h->db, &a, &v, &n) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++)
		counts[v[i].state]++;
	buf_addf(b, "<h2>Resources</h2>\n<p>%zu managed: %zu in sync, %zu drifted, %zu failed.</p>\n", n,
		 counts[RES_IN_SYNC], counts[RES_DRIFTED], counts[RES_FAILED]);
	buf_adds(b, "<table>\n<tr><th>state</th><th>resource</th><th>path</th><th>since</th>"
		    "<th>detail</th></tr>\n");
	/* the ones that need a look first */
	size_t shown = 0;
	for (int pass = RES_FAILED; pass >= RES_IN_SYNC; pass--) {
		for (size_t i = 0; i < n && shown < PAGE_MAX_RESOURCES; i++) {
			struct res_state *r = &v[i];
			if ((int)r->state != pass)
				continue;
			char since[32] = "";
			if (r->since_ms)
				render_time(since, sizeof(since), r->since_ms);
			buf_addf(b, "<tr><td class=\"%s\">%s</td><td>", r->state == RES_IN_SYNC ? "ok" : "bad",
				 res_state_names[r->state]);
			esc(b, r->id);
			buf_adds(b, "</td><td><code>");
			esc(b, r->path);
			buf_addf(b, "</code></td><td>%s</td><td>", since);
			esc(b, r->detail);
			buf_adds(b, "</td></tr>\n");
			shown++;
		}
	}
	buf_adds(b, "</table>\n");
	if (shown < n)
		buf_addf(b, "<p>%zu more: see <a href=\"/api/v1/resources\">/api/v1/resources</a>.</p>\n",
			 n - shown);

	buf_adds(b, "<h2>Drift events</h2>\n<table>\n<tr><th>time</th><th>action</th><th>resource</th>"
		    "<th>path</th><th>changes</th></tr>\n");
	db_drift_list(h->db, PAGE_DRIFT, page_drift, b);
	buf_adds(b, "</table>\n<h2>History</h2>\n<table>\n<tr><th>time</th><th>command</th>"
		    "<th>revision</th><th>result</th><th>author</th><th>summary</th>"
		    "<th>created / updated / deleted / failed / skipped</th><th>took</th></tr>\n");
	db_passes(h->db, PAGE_HISTORY, page_pass, b);
	buf_adds(b, "</table>\n<p>JSON: <a href=\"/api/v1/status\">status</a>, "
		    "<a href=\"/api/v1/resources\">resources</a>, <a href=\"/api/v1/history\">history</a>; "
		    "<a href=\"/metrics\">metrics</a>.</p>\n</body></html>\n");
	arena_release(&a);
}
