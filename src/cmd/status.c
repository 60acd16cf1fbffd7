/* SPDX-License-Identifier: MIT */
/* The status, history and version commands: read the state database, never the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "lib/err.h"
#include "source/git.h"
#include "state/db.h"

#define STATUS_USAGE "driftless status [--state DIR] [-o text|json]"
#define HISTORY_USAGE "driftless history [--state DIR] [-n N] [-o text|json]"

static void fmt_time(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int open_db(struct opts *o, struct db **db)
{
	if (opts_config(o) < 0)
		return EXIT_ERR;
	char *path = xasprintf("%s/driftless.db", o->state);
	int exists = access(path, F_OK) == 0;
	free(path);
	if (!exists) {
		fprintf(stderr, "error: no state in '%s': nothing has been applied yet\n", o->state);
		return EXIT_ERR;
	}
	if (db_open(db, o->state) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		return EXIT_ERR;
	}
	return 0;
}

static int count_inv(struct db *db, struct arena *a)
{
	struct hmap m;
	hmap_init(&m);
	db_inv_load(db, a, &m);
	int n = (int)m.n;
	hmap_release(&m);
	return n;
}

struct drift_list {
	int json;
	struct arena *a;
	struct buf out;
};

static int collect_drift(void *ctx, const struct drift_event *e)
{
	struct drift_list *d = ctx;
	char when[32];
	fmt_time(when, sizeof(when), e->when_ms);
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

int cmd_status(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct arena a;
	arena_init(&a);
	int ret = opts_parse(&o, argc, argv, STATUS_USAGE, "csoh");
	if (ret || (ret = open_db(&o, &db)))
		goto out;
	static const char *const keys[] = { "applied_revision", "applied_at", "attempted_revision",
		"last_result", "rejected_revision", "rejected_reason", "in_progress", "agent_pid",
		"last_fetch_ok_at", "source_stale_since", "source_error", "bad_revision", "rebuilt", NULL };
	const char *vals[16] = { 0 };
	for (int i = 0; keys[i]; i++)
		vals[i] = db_meta_get(db, keys[i], &a);
	int n = count_inv(db, &a);
	char when[32] = "", fetched[32] = "", stale[32] = "";
	if (vals[1])
		fmt_time(when, sizeof(when), strtoll(vals[1], NULL, 10));
	if (vals[8])
		fmt_time(fetched, sizeof(fetched), strtoll(vals[8], NULL, 10));
	if (vals[9])
		fmt_time(stale, sizeof(stale), strtoll(vals[9], NULL, 10));
	int running = vals[7] && kill((pid_t)atoi(vals[7]), 0) == 0;
	struct drift_list dl = { .json = o.json, .a = &a };
	db_drift_list(db, 10, collect_drift, &dl);
	if (o.json) {
		struct buf b = BUF_INIT;
		buf_adds(&b, "{\"lastAppliedRevision\":");
		buf_add_json_str(&b, vals[0]);
		buf_adds(&b, ",\"lastAppliedAt\":");
		buf_add_json_str(&b, vals[1] ? when : NULL);
		buf_adds(&b, ",\"lastAttemptedRevision\":");
		buf_add_json_str(&b, vals[2]);
		buf_adds(&b, ",\"lastResult\":");
		buf_add_json_str(&b, vals[3]);
		buf_adds(&b, ",\"rejectedRevision\":");
		buf_add_json_str(&b, vals[4]);
		buf_adds(&b, ",\"rejectedReason\":");
		buf_add_json_str(&b, vals[5]);
		buf_addf(&b, ",\"interrupted\":%s,\"managedResources\":%d", vals[6] ? "true" : "false", n);
		buf_addf(&b, ",\"agent\":{\"running\":%s,\"pid\":%s}", running ? "true" : "false",
			 running ? vals[7] : "null");
		buf_adds(&b, ",\"source\":{\"lastSuccessfulFetch\":");
		buf_add_json_str(&b, vals[8] ? fetched : NULL);
		buf_adds(&b, ",\"staleSince\":");
		buf_add_json_str(&b, vals[9] ? stale : NULL);
		buf_adds(&b, ",\"error\":");
		buf_add_json_str(&b, vals[10]);
		buf_adds(&b, "},\"badRevision\":");
		buf_add_json_str(&b, vals[11]);
		buf_adds(&b, ",\"stateRebuilt\":");
		buf_add_json_str(&b, vals[12]);
		buf_addf(&b, ",\"recentDrift\":[%s]}\n", dl.out.ptr ? dl.out.ptr : "");
		fputs(b.ptr, stdout);
		buf_release(&b);
	} else {
		printf("applied revision:   %s%s%s\n", vals[0] ? vals[0] : "(none)",
		       vals[1] ? " at " : "", when);
		printf("attempted revision: %s\n", vals[2] ? vals[2] : "(none)");
		printf("last result:        %s\n", vals[3] ? vals[3] : "(none)");
		printf("managed resources:  %d\n", n);
		if (vals[6])
			printf("interrupted:        apply of %s did not finish; the next pass converges it\n", vals[6]);
		if (vals[4])
			printf("rejected revision:  %s\n%s\n", vals[4], vals[5] ? vals[5] : "");
		printf("agent:              %s\n", running ? "running" : "not running");
		if (vals[9])
			printf("source:             stale since %s: %s\n", stale, vals[10] ? vals[10] : "");
		else if (vals[8])
			printf("source:             ok, last fetched at %s\n", fetched);
		if (vals[12])
			printf("state:              %s\n", vals[12]);
		if (vals[11])
			printf("bad revision:       %s (crashed the agent; skipped until a newer one)\n", vals[11]);
		if (dl.out.len)
			printf("recent drift:\n%s", dl.out.ptr);
	}
	buf_release(&dl.out);
out:
	db_close(db);
	arena_release(&a);
	opts_release(&o);
	return ret;
}

struct hist {
	struct db *db;
	struct buf *json;
	int first;
};

static int hist_outcome(void *ctx, const char *id, const char *outcome, const char *detail)
{
	struct hist *h = ctx;
	if (h->json) {
		buf_addf(h->json, "%s{\"id\":", h->first ? "" : ",");
		buf_add_json_str(h->json, id);
		buf_adds(h->json, ",\"outcome\":");
		buf_add_json_str(h->json, outcome);
		buf_adds(h->json, ",\"detail\":");
		buf_add_json_str(h->json, detail);
		buf_addch(h->json, '}');
		h->first = 0;
	} else {
		printf("    %-9s %s%s%s%s\n", outcome, id, detail && *detail ? " (" : "",
		       detail ? detail : "", detail && *detail ? ")" : "");
	}
	return 0;
}

static int hist_pass(void *ctx, const struct pass_record *r)
{
	struct hist *h = ctx;
	char when[32];
	fmt_time(when, sizeof(when), r->started_ms);
	if (h->json) {
		struct buf *b = h->json;
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
	printf("%s  %-5s  %.12s  %-8s %s  \"%s\"  (%d created, %d updated, %d deleted, %d failed, %d skipped, %lld ms)\n",
	       when, r->command ? r->command : "", r->commit ? r->commit : "", r->result ? r->result : "", r->author ? r->author : "",
	       r->summary ? r->summary : "", r->counts[OUT_CREATED], r->counts[OUT_UPDATED],
	       r->counts[OUT_DELETED], r->counts[OUT_FAILED], r->counts[OUT_SKIPPED],
	       (long long)(r->finished_ms - r->started_ms));
	if (r->error) {
		const char *e = r->error;
		while (*e) {
			size_t len = strcspn(e, "\n");
			printf("    %.*s\n", (int)len, e);
			e += len + (e[len] == '\n');
		}
	}
	db_outcomes(h->db, r->id, hist_outcome, h);
	return 0;
}

int cmd_history(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	int ret = opts_parse(&o, argc, argv, HISTORY_USAGE, "csonh");
	if (ret || (ret = open_db(&o, &db)))
		goto out;
	struct buf b = BUF_INIT;
	struct hist h = { db, o.json ? &b : NULL, 1 };
	if (o.json)
		buf_adds(&b, "{\"passes\":[");
	if (db_passes(db, o.n, hist_pass, &h) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		ret = EXIT_ERR;
	} else if (o.json) {
		buf_adds(&b, "]}\n");
		fputs(b.ptr, stdout);
	}
	buf_release(&b);
out:
	db_close(db);
	opts_release(&o);
	return ret;
}

int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: driftless version\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "error: unexpected argument '%s'\nusage: driftless version\n", argv[1]);
		return EXIT_USAGE;
	}
	printf("driftless %s (libgit2 %s)\n", DRIFTLESS_VERSION, gitsrc_version());
	return EXIT_OK;
}
