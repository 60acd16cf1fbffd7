/* SPDX-License-Identifier: MIT */
/*
 * Views of the state database: status, history and the resources with
 * their state. `driftless status`, `driftless history` and the agent's
 * HTTP API (src/http/api.c) all call these, so the command output and the
 * API can never disagree. They read the database only, never the host.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd/render.h"
#include "core/model.h"
#include "daemon/supervise.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/hmap.h"

const char *const res_state_names[RES__STATES] = { "in-sync", "drifted", "failed" };

/* how far back the state of a resource is looked for */
#define STATE_PASSES 1000
#define STATE_DRIFTS 5000

void render_time(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int count_inv(struct db *db, struct arena *a)
{
	(void)a;
	int64_t n = db_inv_count(db);
	return n < 0 ? 0 : (int)n;
}

struct drift_list {
	int json;
	struct buf out;
};

static int collect_drift(void *ctx, const struct drift_event *e)
{
	struct drift_list *d = ctx;
	char when[32];
	render_time(when, sizeof(when), e->when_ms);
	if (d->json) {
		buf_addf(&d->out, "%s{\"time\":\"%s\",\"id\":", d->out.len ? "," : "", when);
		buf_add_json_str(&d->out, e->res_id);
		buf_adds(&d->out, ",\"path\":");
		buf_add_json_str(&d->out, e->path);
		buf_adds(&d->out, ",\"policy\":");
		buf_add_json_str(&d->out, e->policy);
		buf_adds(&d->out, ",\"action\":");
		buf_add_json_str(&d->out, e->action);
		buf_adds(&d->out, ",\"changes\":");
		buf_add_json_str(&d->out, e->what);
		buf_adds(&d->out, ",\"before\":");
		buf_add_json_str(&d->out, e->before);
		buf_adds(&d->out, ",\"after\":");
		buf_add_json_str(&d->out, e->after);
		buf_addch(&d->out, '}');
	} else {
		buf_addf(&d->out, "  %s  %-10s %s %s (%s)\n", when, e->action ? e->action : "",
			 e->res_id ? e->res_id : "", e->path ? e->path : "", e->what ? e->what : "");
	}
	return 0;
}

int render_status(struct db *db, int json, struct buf *out)
{
	struct arena a;
	arena_init(&a);
	static const char *const keys[] = { "applied_revision", "applied_at", "attempted_revision",
		"last_result", "rejected_revision", "rejected_reason", "in_progress", "agent_pid",
		"last_fetch_ok_at", "source_stale_since", "source_error", "bad_revision", "rebuilt", NULL };
	const char *vals[16] = { 0 };
	for (int i = 0; keys[i]; i++)
		vals[i] = db_meta_get(db, keys[i], &a);
	int n = count_inv(db, &a);
	char when[32] = "", fetched[32] = "", stale[32] = "";
	if (vals[1])
		render_time(when, sizeof(when), strtoll(vals[1], NULL, 10));
	if (vals[8])
		render_time(fetched, sizeof(fetched), strtoll(vals[8], NULL, 10));
	if (vals[9])
		render_time(stale, sizeof(stale), strtoll(vals[9], NULL, 10));
	int running = vals[7] && kill((pid_t)atoi(vals[7]), 0) == 0;
	struct drift_list dl = { .json = json };
	db_drift_list(db, 10, collect_drift, &dl);
	struct buf *b = out;
	/* a suspension in force comes first: it changes what the agent does */
	struct suspension sp;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int susp = db_suspend_active(db, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &a, &sp) == 1;
	char until[32] = "";
	const char *held = db_meta_get(db, "held_revision", &a);
	const char *fleet = db_meta_get(db, "fleet", &a);	/* fleet: the agent's link to etcd */
	if (susp)
		render_time(until, sizeof(until), sp.until_ms);
	if (json) {
		buf_adds(b, "{\"suspended\":");
		if (susp) {
			buf_adds(b, "{\"until\":");
			buf_add_json_str(b, until);
			buf_adds(b, ",\"by\":");
			buf_add_json_str(b, sp.by);
			buf_adds(b, ",\"reason\":");
			buf_add_json_str(b, sp.reason);
			buf_adds(b, ",\"heldRevision\":");
			buf_add_json_str(b, held);
			buf_addch(b, '}');
		} else {
			buf_adds(b, "null");
		}
		buf_adds(b, ",\"lastAppliedRevision\":");
		buf_add_json_str(b, vals[0]);
		buf_adds(b, ",\"lastAppliedAt\":");
		buf_add_json_str(b, vals[1] ? when : NULL);
		buf_adds(b, ",\"lastAttemptedRevision\":");
		buf_add_json_str(b, vals[2]);
		buf_adds(b, ",\"lastResult\":");
		buf_add_json_str(b, vals[3]);
		buf_adds(b, ",\"rejectedRevision\":");
		buf_add_json_str(b, vals[4]);
		buf_adds(b, ",\"rejectedReason\":");
		buf_add_json_str(b, vals[5]);
		buf_addf(b, ",\"interrupted\":%s,\"managedResources\":%d", vals[6] ? "true" : "false", n);
		buf_addf(b, ",\"agent\":{\"running\":%s,\"pid\":%s}", running ? "true" : "false",
			 running ? vals[7] : "null");
		buf_adds(b, ",\"source\":{\"lastSuccessfulFetch\":");
		buf_add_json_str(b, vals[8] ? fetched : NULL);
		buf_adds(b, ",\"staleSince\":");
		buf_add_json_str(b, vals[9] ? stale : NULL);
		buf_adds(b, ",\"error\":");
		buf_add_json_str(b, vals[10]);
		buf_adds(b, "},\"badRevision\":");
		buf_add_json_str(b, vals[11]);
		buf_adds(b, ",\"stateRebuilt\":");
		buf_add_json_str(b, vals[12]);
		buf_adds(b, ",\"fleet\":");
		buf_add_json_str(b, fleet);
		svc_render_status(db, 1, b);	/* services: state and readiness */
		exec_render_status(db, 1, b);	/* Exec runs with an unknown outcome */
		buf_addf(b, ",\"recentDrift\":[%s]}\n", dl.out.ptr ? dl.out.ptr : "");
	} else {
		if (susp) {
			buf_addf(b, "SUSPENDED until %s by %s: %s\n", until, sp.by, sp.reason);
			buf_addf(b, "  drift is held, not repaired; new revisions wait%s%s%s ('driftless resume' ends it)\n",
				 held ? " (" : "", held ? held : "", held ? " is waiting)" : "");
		}
		buf_addf(b, "applied revision:   %s%s%s\n", vals[0] ? vals[0] : "(none)",
			 vals[1] ? " at " : "", when);
		buf_addf(b, "attempted revision: %s\n", vals[2] ? vals[2] : "(none)");
		buf_addf(b, "last result:        %s\n", vals[3] ? vals[3] : "(none)");
		buf_addf(b, "managed resources:  %d\n", n);
		if (vals[6])
			buf_addf(b, "interrupted:        apply of %s did not finish; the next pass converges it\n",
				 vals[6]);
		if (vals[4])
			buf_addf(b, "rejected revision:  %s\n%s\n", vals[4], vals[5] ? vals[5] : "");
		buf_addf(b, "agent:              %s\n", running ? "running" : "not running");
		if (vals[9])
			buf_addf(b, "source:             stale since %s: %s\n", stale, vals[10] ? vals[10] : "");
		else if (vals[8])
			buf_addf(b, "source:             ok, last fetched at %s\n", fetched);
		if (vals[12])
			buf_addf(b, "state:              %s\n", vals[12]);
		if (fleet)
			buf_addf(b, "fleet:              %s\n", fleet);
		if (vals[11])
			buf_addf(b, "bad revision:       %s (crashed the agent; skipped until a newer one)\n",
				 vals[11]);
		if (dl.out.len)
			buf_addf(b, "recent drift:\n%s", dl.out.ptr);
		svc_render_status(db, 0, b);	/* services: state and readiness */
		exec_render_status(db, 0, b);	/* Exec runs with an unknown outcome */
	}
	buf_release(&dl.out);
	arena_release(&a);
	return 0;
}

struct hist {
	struct db *db;
	struct buf *out;
	int json;
	int first;
};

static int hist_outcome(void *ctx, const char *id, const char *outcome, const char *detail)
{
	struct hist *h = ctx;
	if (h->json) {
		buf_addf(h->out, "%s{\"id\":", h->first ? "" : ",");
		buf_add_json_str(h->out, id);
		buf_adds(h->out, ",\"outcome\":");
		buf_add_json_str(h->out, outcome);
		buf_adds(h->out, ",\"detail\":");
		buf_add_json_str(h->out, detail);
		buf_addch(h->out, '}');
		h->first = 0;
	} else {
		buf_addf(h->out, "    %-9s %s%s%s%s\n", outcome, id, detail && *detail ? " (" : "",
			 detail ? detail : "", detail && *detail ? ")" : "");
	}
	return 0;
}

static int hist_pass(void *ctx, const struct pass_record *r)
{
	struct hist *h = ctx;
	struct buf *b = h->out;
	char when[32];
	render_time(when, sizeof(when), r->started_ms);
	if (h->json) {
		buf_addf(b, "%s{\"id\":%lld,\"time\":\"%s\",\"durationMs\":%lld,\"command\":", h->first ? "" : ",",
			 (long long)r->id, when, (long long)(r->finished_ms - r->started_ms));
		buf_add_json_str(b, r->command);
		buf_adds(b, ",\"revision\":");
		buf_add_json_str(b, r->commit);
		buf_adds(b, ",\"ref\":");
		buf_add_json_str(b, r->ref);
		buf_adds(b, ",\"author\":");
		buf_add_json_str(b, r->author);
		buf_adds(b, ",\"summary\":");
		buf_add_json_str(b, r->summary);
		buf_adds(b, ",\"result\":");
		buf_add_json_str(b, r->result);
		buf_adds(b, ",\"signature\":");
		buf_add_json_str(b, r->signature);
		buf_adds(b, ",\"error\":");
		buf_add_json_str(b, r->error);
		buf_adds(b, ",\"counts\":{");
		for (int i = 0; i < OUT__COUNT; i++)
			buf_addf(b, "%s\"%s\":%d", i ? "," : "", outcome_names[i], r->counts[i]);
		buf_adds(b, "},\"resources\":[");
		h->first = 1;
		db_outcomes(h->db, r->id, hist_outcome, h);
		buf_adds(b, "]}");
		h->first = 0;
		return 0;
	}
	buf_addf(b, "%s  %-5s  %.12s  %-8s %s  \"%s\"  (%d created, %d updated, %d deleted, %d failed, %d skipped, %lld ms)\n",
		 when, r->command ? r->command : "", r->commit ? r->commit : "", r->result ? r->result : "",
		 r->author ? r->author : "", r->summary ? r->summary : "", r->counts[OUT_CREATED],
		 r->counts[OUT_UPDATED], r->counts[OUT_DELETED], r->counts[OUT_FAILED],
		 r->counts[OUT_SKIPPED], (long long)(r->finished_ms - r->started_ms));
	if (r->error) {
		const char *e = r->error;
		while (*e) {
			size_t len = strcspn(e, "\n");
			buf_addf(b, "    %.*s\n", (int)len, e);
			e += len + (e[len] == '\n');
		}
	}
	db_outcomes(h->db, r->id, hist_outcome, h);
	return 0;
}

int render_history(struct db *db, int n, int json, struct buf *out)
{
	struct hist h = { db, out, json, 1 };
	if (json)
		buf_adds(out, "{\"passes\":[");
	if (db_passes(db, n, hist_pass, &h) < 0)
		return -1;
	if (json)
		buf_adds(out, "]}\n");
	return 0;
}

/* ---- resources and their state ---- */

struct last_seen {
	enum res_state_kind state;
	const char *detail;
	int64_t when_ms;
};

struct state_scan {
	struct arena *a;
	struct hmap *inv;
	struct hmap outcome;		/* id -> last_seen from history */
	struct hmap drift;		/* id -> last_seen from drift events */
	int64_t pass_ms;
	struct db *db;
};

static int scan_outcome(void *ctx, const char *id, const char *outcome, const char *detail)
{
	struct state_scan *s = ctx;
	if (!id || !outcome || hmap_get(&s->outcome, id) || !hmap_get(s->inv, id))
		return 0;
	struct last_seen *l = arena_alloc(s->a, sizeof(*l));
	l->when_ms = s->pass_ms;
	if (!strcmp(outcome, "failed") || !strcmp(outcome, "skipped")) {
		l->state = RES_FAILED;
		l->detail = detail ? arena_strdup(s->a, detail) : NULL;
	} else if (!strcmp(outcome, "unchanged") && detail && !strncmp(detail, "drift reported", 14)) {
		l->state = RES_DRIFTED;
		l->detail = arena_strdup(s->a, detail);
	} else {
		l->state = RES_IN_SYNC;
		l->detail = arena_printf(s->a, "%s%s%s%s", outcome, detail && *detail ? " (" : "",
					 detail ? detail : "", detail && *detail ? ")" : "");
	}
	hmap_put(&s->outcome, arena_strdup(s->a, id), l);
	return 0;
}

static int scan_pass(void *ctx, const struct pass_record *r)
{
	struct state_scan *s = ctx;
	s->pass_ms = r->finished_ms;
	db_outcomes(s->db, r->id, scan_outcome, s);
	return s->outcome.n >= s->inv->n;	/* every resource has its last outcome */
}

static int scan_drift(void *ctx, const struct drift_event *e)
{
	struct state_scan *s = ctx;
	if (!e->res_id || !e->action || hmap_get(&s->drift, e->res_id) || !hmap_get(s->inv, e->res_id))
		return 0;
	struct last_seen *l = arena_alloc(s->a, sizeof(*l));
	l->when_ms = e->when_ms;
	if (!strcmp(e->action, "repaired")) {
		l->state = RES_IN_SYNC;
		l->detail = arena_printf(s->a, "drift repaired (%s)", e->what ? e->what : "");
	} else if (!strcmp(e->action, "failed")) {
		l->state = RES_FAILED;
		l->detail = arena_printf(s->a, "drift repair failed: %s", e->after ? e->after : "");
	} else {
		l->state = RES_DRIFTED;
		l->detail = arena_printf(s->a, "drift %s (%s)", e->action, e->what ? e->what : "");
	}
	hmap_put(&s->drift, arena_strdup(s->a, e->res_id), l);
	return 0;
}

static int by_id(const void *x, const void *y)
{
	const struct res_state *a = x, *b = y;
	return strcmp(a->id, b->id);
}

int render_res_states(struct db *db, struct arena *a, struct res_state **out, size_t *n)
{
	struct hmap inv;
	hmap_init(&inv);
	struct state_scan s = { .a = a, .inv = &inv, .db = db };
	hmap_init(&s.outcome);
	hmap_init(&s.drift);
	int ret = -1;
	if (db_inv_load(db, a, &inv) < 0)
		goto out;
	if (inv.n && (db_passes(db, STATE_PASSES, scan_pass, &s) < 0 ||
		      db_drift_list(db, STATE_DRIFTS, scan_drift, &s) < 0))
		goto out;
	struct res_state *v = arena_alloc(a, (inv.n + 1) * sizeof(*v));
	size_t cnt = 0, it = 0;
	void *val;
	while (hmap_next(&inv, &it, NULL, &val)) {
		const struct inv_entry *e = val;
		struct res_state *r = &v[cnt++];
		const char *slash = strchr(e->id, '/');
		r->id = e->id;
		r->kind = e->kind;
		r->name = slash ? slash + 1 : e->id;
		r->path = e->path;
		r->type = e->type >= 0 && e->type <= NODE_OTHER ? node_type_names[e->type] : "other";
		r->created = e->created;
		r->state = RES_IN_SYNC;
		const struct last_seen *o = hmap_get(&s.outcome, e->id), *d = hmap_get(&s.drift, e->id);
		const struct last_seen *l = o && d ? (d->when_ms >= o->when_ms ? d : o) : o ? o : d;
		if (l) {
			r->state = l->state;
			r->detail = l->detail;
			r->since_ms = l->when_ms;
		}
	}
	qsort(v, cnt, sizeof(*v), by_id);
	*out = v;
	*n = cnt;
	ret = 0;
out:
	hmap_release(&s.outcome);
	hmap_release(&s.drift);
	hmap_release(&inv);
	return ret;
}

int render_resources_json(struct db *db, struct buf *out)
{
	struct arena a;
	arena_init(&a);
	struct res_state *v;
	size_t n;
	if (render_res_states(db, &a, &v, &n) < 0) {
		arena_release(&a);
		return -1;
	}
	size_t counts[RES__STATES] = { 0 };
	buf_adds(out, "{\"resources\":[");
	for (size_t i = 0; i < n; i++) {
		struct res_state *r = &v[i];
		counts[r->state]++;
		buf_adds(out, i ? ",{\"id\":" : "{\"id\":");
		buf_add_json_str(out, r->id);
		buf_adds(out, ",\"kind\":");
		buf_add_json_str(out, r->kind);
		buf_adds(out, ",\"name\":");
		buf_add_json_str(out, r->name);
		buf_adds(out, ",\"path\":");
		buf_add_json_str(out, r->path);
		buf_adds(out, ",\"type\":");
		buf_add_json_str(out, r->type);
		buf_addf(out, ",\"created\":%s,\"state\":\"%s\",\"since\":", r->created ? "true" : "false",
			 res_state_names[r->state]);
		if (r->since_ms) {
			char when[32];
			render_time(when, sizeof(when), r->since_ms);
			buf_add_json_str(out, when);
		} else {
			buf_adds(out, "null");
		}
		buf_adds(out, ",\"detail\":");
		buf_add_json_str(out, r->detail);
		buf_addch(out, '}');
	}
	buf_adds(out, "],\"counts\":{");
	for (int i = 0; i < RES__STATES; i++)
		buf_addf(out, "%s\"%s\":%zu", i ? "," : "", res_state_names[i], counts[i]);
	buf_adds(out, "}}\n");
	arena_release(&a);
	return 0;
}
