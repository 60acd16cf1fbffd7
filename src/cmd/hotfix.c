/* SPDX-License-Identifier: MIT */
/*
 * The emergency hotfix path and the audit trail: suspend and resume (a hold
 * on repairs and new revisions, with who and why, that ends by itself at its
 * deadline) and report (every applied revision, drift event and suspension
 * of a period, for auditors). drift and capture live next to plan in
 * cmd/apply.c and cmd/capture.c. These commands work next to a running
 * agent: they take no lock, and tell the agent with SIGUSR2.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "lib/err.h"
#include "lib/redact.h"
#include "state/db.h"

#define SUSPEND_USAGE "driftless suspend --for DUR --reason TEXT [--state DIR] [-c FILE]"
#define RESUME_USAGE "driftless resume [--state DIR] [-c FILE]"
#define REPORT_USAGE "driftless report --since DATE [--until DATE] [--state DIR] [-c FILE] [-o json|csv|html]"
#define SUSPEND_MAX_MS (7LL * 24 * 3600 * 1000)
#define REASON_MAX 500

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void invoking_user(char *out, size_t n)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	char name[64];
	if (pw)
		snprintf(name, sizeof(name), "%s", pw->pw_name);
	else
		snprintf(name, sizeof(name), "uid %u", (unsigned)getuid());
	if (getuid() == 0 && sudo && *sudo && strcmp(sudo, "root") && strlen(sudo) < 64)
		snprintf(out, n, "%s (sudo from %s)", name, sudo);
	else
		snprintf(out, n, "%s", name);
}

int state_db_open(struct opts *o, struct db **db)
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

/* Tell a running agent to read the suspension state again. */
static void notify_agent(struct db *db, struct arena *a)
{
	char *pid = db_meta_get(db, "agent_pid", a);
	if (pid && kill((pid_t)atoi(pid), SIGUSR2) == 0)
		fprintf(stderr, "told the running agent (pid %s)\n", pid);
	else
		fprintf(stderr, "no agent is running; it will see this when it starts\n");
}

/* A history row for a suspend or resume, so history and reports show it. */
static int record(struct db *db, struct arena *a, const char *command, const char *result,
		  const char *by, const char *reason, const char *detail)
{
	struct pass_record r = {
		.started_ms = now_ms(), .finished_ms = now_ms(), .command = command,
		.commit = db_meta_get(db, "applied_revision", a), .ref = "", .author = by,
		.summary = reason, .result = result, .error = detail,
	};
	return db_pass_add(db, &r);
}

static int check_reason(const char *r)
{
	size_t n = strlen(r);
	if (!n || n > REASON_MAX)
		return -1;
	for (const unsigned char *p = (const unsigned char *)r; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -1;
	return 0;
}

int cmd_suspend(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct arena a;
	char by[160], until[32], detail[96];
	arena_init(&a);
	int ret = opts_parse(&o, argc, argv, SUSPEND_USAGE, "csFWh");
	if (ret)
		goto out;
	ret = EXIT_USAGE;
	if (!o.for_ms || !o.reason) {
		fprintf(stderr, "error: give '--for DUR' and '--reason TEXT'\nusage: %s\n", SUSPEND_USAGE);
		goto out;
	}
	if (o.for_ms > SUSPEND_MAX_MS) {
		fprintf(stderr, "error: '--for' may be at most 7 days (168h)\n");
		goto out;
	}
	if (check_reason(o.reason) < 0) {
		fprintf(stderr, "error: '--reason' must be 1 to %d characters on one line\n", REASON_MAX);
		goto out;
	}
	if ((ret = state_db_open(&o, &db)))
		goto out;
	ret = EXIT_ERR;
	invoking_user(by, sizeof(by));
	int64_t now = now_ms();
	struct suspension sp = { .started_ms = now, .until_ms = now + o.for_ms, .reason = o.reason,
				 .by = by };
	render_time(until, sizeof(until), sp.until_ms);
	snprintf(detail, sizeof(detail), "until %s", until);
	if (db_begin(db) < 0 || db_suspend_end(db, now, "replaced by a new suspension") < 0 ||
	    db_suspend_start(db, &sp) < 0 ||
	    record(db, &a, "suspend", "suspended", by, o.reason, detail) < 0 || db_commit(db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		db_rollback(db);
		goto out;
	}
	printf("suspended until %s by %s: %s\n", until, by, o.reason);
	printf("drift is reported, not repaired, and new revisions are held until then or 'driftless resume'\n");
	notify_agent(db, &a);
	ret = EXIT_OK;
out:
	db_close(db);
	arena_release(&a);
	opts_release(&o);
	return ret;
}

int cmd_resume(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct arena a;
	char by[160], ended[200];
	arena_init(&a);
	int ret = opts_parse(&o, argc, argv, RESUME_USAGE, "csh");
	if (ret || (ret = state_db_open(&o, &db)))
		goto out;
	ret = EXIT_ERR;
	invoking_user(by, sizeof(by));
	snprintf(ended, sizeof(ended), "resumed by %s", by);
	int64_t now = now_ms();
	struct suspension sp;
	int active = db_suspend_active(db, now, &a, &sp);
	if (active < 0 || db_begin(db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	int n = db_suspend_end(db, now, ended);
	if (n < 0 || (active == 1 && record(db, &a, "resume", "resumed", by, sp.reason, NULL) < 0) ||
	    db_commit(db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		db_rollback(db);
		goto out;
	}
	if (active == 1)
		printf("resumed by %s: drift is repaired and new revisions are applied again\n", by);
	else
		printf("nothing was suspended\n");
	notify_agent(db, &a);
	ret = EXIT_OK;
out:
	db_close(db);
	arena_release(&a);
	opts_release(&o);
	return ret;
}

/* ---- report ---- */

/* "2026-11-26", "2026-11-26T10:00:00Z", or a duration back from now ("7d", "24h"). */
static int parse_date(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end && !*end) {
		*out = (int64_t)timegm(&tm) * 1000;
		return 0;
	}
	size_t n = strlen(s);
	if (n > 1 && s[n - 1] == 'd') {
		char *e;
		long d = strtol(s, &e, 10);
		if (e == s + n - 1 && d > 0 && d < 100000) {
			*out = now_ms() - (int64_t)d * 86400000;
			return 0;
		}
	}
	int64_t d = config_duration(s);
	if (d > 0) {
		*out = now_ms() - d;
		return 0;
	}
	return -1;
}

enum fmt { FMT_TEXT, FMT_JSON, FMT_CSV, FMT_HTML };

struct report {
	struct db *db;
	enum fmt fmt;
	struct buf out;
	struct buf rows;	/* html: the rows of the current table */
	int first;
	struct buf res;		/* outcomes of one pass */
	int res_first;
};

static void csv_field(struct buf *b, const char *s)
{
	if (!s)
		s = "";
	/* a leading = + - @ would be a formula in a spreadsheet */
	int quote = strpbrk(s, ",\"\n\r") || strchr("=+-@", s[0] ? s[0] : 'x');
	if (!quote) {
		buf_adds(b, s);
		return;
	}
	buf_addch(b, '"');
	if (s[0] && strchr("=+-@", s[0]))
		buf_addch(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_addch(b, '"');
		buf_addch(b, *s);
	}
	buf_addch(b, '"');
}

static void csv_row(struct buf *b, const char *const *f, int n)
{
	for (int i = 0; i < n; i++) {
		if (i)
			buf_addch(b, ',');
		csv_field(b, f[i]);
	}
	buf_addch(b, '\n');
}

static void html_row(struct buf *b, const char *const *f, int n)
{
	buf_adds(b, "<tr>");
	for (int i = 0; i < n; i++) {
		buf_adds(b, "<td>");
		buf_add_html(b, f[i]);
		buf_adds(b, "</td>");
	}
	buf_adds(b, "</tr>\n");
}

static int report_outcome(void *ctx, const char *id, const char *outcome, const char *detail)
{
	struct report *r = ctx;
	if (r->fmt == FMT_JSON) {
		buf_adds(&r->res, r->res_first ? "{\"id\":" : ",{\"id\":");
		buf_add_json_str(&r->res, id);
		buf_adds(&r->res, ",\"outcome\":");
		buf_add_json_str(&r->res, outcome);
		buf_adds(&r->res, ",\"detail\":");
		buf_add_json_str(&r->res, detail);
		buf_addch(&r->res, '}');
	} else {
		buf_addf(&r->res, "%s%s %s%s%s%s", r->res_first ? "" : "; ", id, outcome,
			 detail && *detail ? " (" : "", detail && *detail ? detail : "",
			 detail && *detail ? ")" : "");
	}
	r->res_first = 0;
	return 0;
}

static int report_pass(void *ctx, const struct pass_record *p)
{
	struct report *r = ctx;
	char when[32];
	if (!strcmp(p->command, "suspend") || !strcmp(p->command, "resume"))
		return 0;	/* listed with the suspensions */
	render_time(when, sizeof(when), p->started_ms);
	buf_reset(&r->res);
	r->res_first = 1;
	if (db_outcomes(r->db, p->id, report_outcome, r) < 0)
		return -1;
	/* recorded by the pass (source.verify); passes before 0.2 did not record it */
	const char *sig = p->signature ? p->signature : "not recorded";
	char counts[128];
	snprintf(counts, sizeof(counts), "%d created, %d updated, %d deleted, %d failed",
		 p->counts[OUT_CREATED], p->counts[OUT_UPDATED], p->counts[OUT_DELETED],
		 p->counts[OUT_FAILED]);
	switch (r->fmt) {
	case FMT_JSON:
		buf_adds(&r->out, r->first ? "{\"time\":" : ",{\"time\":");
		buf_add_json_str(&r->out, when);
		buf_adds(&r->out, ",\"trigger\":");
		buf_add_json_str(&r->out, p->command);
		buf_adds(&r->out, ",\"commit\":");
		buf_add_json_str(&r->out, p->commit);
		buf_adds(&r->out, ",\"ref\":");
		buf_add_json_str(&r->out, p->ref);
		buf_adds(&r->out, ",\"author\":");
		buf_add_json_str(&r->out, p->author);
		buf_adds(&r->out, ",\"summary\":");
		buf_add_json_str(&r->out, p->summary);
		buf_adds(&r->out, ",\"signature\":");
		buf_add_json_str(&r->out, sig);
		buf_adds(&r->out, ",\"result\":");
		buf_add_json_str(&r->out, p->result);
		buf_addf(&r->out, ",\"created\":%d,\"updated\":%d,\"deleted\":%d,\"failed\":%d,"
			 "\"skipped\":%d,\"error\":", p->counts[OUT_CREATED], p->counts[OUT_UPDATED],
			 p->counts[OUT_DELETED], p->counts[OUT_FAILED], p->counts[OUT_SKIPPED]);
		buf_add_json_str(&r->out, p->error);
		buf_addf(&r->out, ",\"resources\":[%s]}", r->res.ptr ? r->res.ptr : "");
		break;
	case FMT_CSV: {
		const char *f[] = { "revision", when, p->command, p->commit, p->author, p->summary, sig,
				    p->result, counts, r->res.ptr, p->error };
		csv_row(&r->out, f, 11);
		break;
	}
	default: {
		const char *f[] = { when, p->command, p->commit, p->author, p->summary, sig, p->result,
				    counts, r->res.ptr ? r->res.ptr : "", p->error ? p->error : "" };
		html_row(&r->rows, f, 10);
		break;
	}
	}
	r->first = 0;
	return 0;
}

static int report_drift(void *ctx, const struct drift_event *e)
{
	struct report *r = ctx;
	char when[32];
	render_time(when, sizeof(when), e->when_ms);
	switch (r->fmt) {
	case FMT_JSON:
		buf_adds(&r->out, r->first ? "{\"time\":" : ",{\"time\":");
		buf_add_json_str(&r->out, when);
		buf_adds(&r->out, ",\"id\":");
		buf_add_json_str(&r->out, e->res_id);
		buf_adds(&r->out, ",\"path\":");
		buf_add_json_str(&r->out, e->path);
		buf_adds(&r->out, ",\"policy\":");
		buf_add_json_str(&r->out, e->policy);
		buf_adds(&r->out, ",\"outcome\":");
		buf_add_json_str(&r->out, e->action);
		buf_adds(&r->out, ",\"changes\":");
		buf_add_json_str(&r->out, e->what);
		buf_adds(&r->out, ",\"before\":");
		buf_add_json_str(&r->out, e->before);
		buf_adds(&r->out, ",\"after\":");
		buf_add_json_str(&r->out, e->after);
		buf_adds(&r->out, ",\"commit\":");
		buf_add_json_str(&r->out, e->commit);
		buf_addch(&r->out, '}');
		break;
	case FMT_CSV: {
		const char *f[] = { "drift", when, e->policy, e->commit, "", e->res_id, "", e->action,
				    e->what, e->path, e->before };
		csv_row(&r->out, f, 11);
		break;
	}
	default: {
		const char *f[] = { when, e->res_id, e->path ? e->path : "", e->policy, e->action,
				    e->what ? e->what : "", e->before ? e->before : "",
				    e->after ? e->after : "" };
		html_row(&r->rows, f, 8);
		break;
	}
	}
	r->first = 0;
	return 0;
}

static int report_suspension(void *ctx, const struct suspension *sp)
{
	struct report *r = ctx;
	char start[32], until[32], ended[32] = "";
	render_time(start, sizeof(start), sp->started_ms);
	render_time(until, sizeof(until), sp->until_ms);
	if (sp->ended_ms)
		render_time(ended, sizeof(ended), sp->ended_ms);
	const char *how = sp->ended_ms ? (sp->ended_by ? sp->ended_by : "") :
			  sp->until_ms <= now_ms() ? "deadline" : "in force";
	switch (r->fmt) {
	case FMT_JSON:
		buf_adds(&r->out, r->first ? "{\"started\":" : ",{\"started\":");
		buf_add_json_str(&r->out, start);
		buf_adds(&r->out, ",\"until\":");
		buf_add_json_str(&r->out, until);
		buf_adds(&r->out, ",\"by\":");
		buf_add_json_str(&r->out, sp->by);
		buf_adds(&r->out, ",\"reason\":");
		buf_add_json_str(&r->out, sp->reason);
		buf_adds(&r->out, ",\"ended\":");
		buf_add_json_str(&r->out, sp->ended_ms ? ended : NULL);
		buf_adds(&r->out, ",\"endedBy\":");
		buf_add_json_str(&r->out, how);
		buf_addch(&r->out, '}');
		break;
	case FMT_CSV: {
		const char *f[] = { "suspension", start, "", "", sp->by, sp->reason, "", how, until,
				    ended, "" };
		csv_row(&r->out, f, 11);
		break;
	}
	default: {
		const char *f[] = { start, until, sp->by, sp->reason, ended, how };
		html_row(&r->rows, f, 6);
		break;
	}
	}
	r->first = 0;
	return 0;
}

static void html_table(struct report *r, const char *title, const char *const *head, int n)
{
	buf_addf(&r->out, "<h2>%s</h2>\n", title);
	if (!r->rows.len) {
		buf_adds(&r->out, "<p class=none>None in this period.</p>\n");
		return;
	}
	buf_adds(&r->out, "<table>\n<tr>");
	for (int i = 0; i < n; i++)
		buf_addf(&r->out, "<th>%s</th>", head[i]);
	buf_adds(&r->out, "</tr>\n");
	buf_add(&r->out, r->rows.ptr, r->rows.len);
	buf_adds(&r->out, "</table>\n");
	buf_reset(&r->rows);
}

int cmd_report(int argc, char **argv)
{
	struct opts o;
	struct db *db = NULL;
	struct arena a;
	struct report r = { 0 };
	char host[256] = "", since_s[32], until_s[32], gen[32];
	int64_t since, until;
	arena_init(&a);
	int ret = opts_parse(&o, argc, argv, REPORT_USAGE, "csYUoHh");
	if (ret)
		goto out;
	ret = EXIT_USAGE;
	if (!o.since) {
		fprintf(stderr, "error: give '--since DATE' (2026-01-31, 2026-01-31T12:00:00Z or 30d)\n"
			"usage: %s\n", REPORT_USAGE);
		goto out;
	}
	if (parse_date(o.since, &since) < 0 || (o.until && parse_date(o.until, &until) < 0)) {
		fprintf(stderr, "error: '%s' is not a date like 2026-01-31, 2026-01-31T12:00:00Z or 30d\n",
			parse_date(o.since, &since) < 0 ? o.since : o.until);
		goto out;
	}
	if (!o.until)
		until = now_ms() + 1;
	if (until <= since) {
		fprintf(stderr, "error: '--until' must be after '--since'\n");
		goto out;
	}
	if ((ret = state_db_open(&o, &db)))
		goto out;
	ret = EXIT_ERR;
	r.db = db;
	r.fmt = !o.output || !strcmp(o.output, "text") || !strcmp(o.output, "html") ? FMT_HTML :
		!strcmp(o.output, "json") ? FMT_JSON : FMT_CSV;
	gethostname(host, sizeof(host) - 1);
	render_time(since_s, sizeof(since_s), since);
	render_time(until_s, sizeof(until_s), until);
	render_time(gen, sizeof(gen), now_ms());
	char *applied = db_meta_get(db, "applied_revision", &a);
	int rc = 0;
	if (r.fmt == FMT_JSON) {
		buf_adds(&r.out, "{\"host\":");
		buf_add_json_str(&r.out, host);
		buf_adds(&r.out, ",\"generated\":");
		buf_add_json_str(&r.out, gen);
		buf_adds(&r.out, ",\"since\":");
		buf_add_json_str(&r.out, since_s);
		buf_adds(&r.out, ",\"until\":");
		buf_add_json_str(&r.out, until_s);
		buf_adds(&r.out, ",\"appliedRevision\":");
		buf_add_json_str(&r.out, applied);
		buf_adds(&r.out, ",\"revisions\":[");
		r.first = 1;
		rc |= db_passes_between(db, since, until, report_pass, &r);
		buf_adds(&r.out, "],\"drift\":[");
		r.first = 1;
		rc |= db_drift_between(db, since, until, report_drift, &r);
		buf_adds(&r.out, "],\"suspensions\":[");
		r.first = 1;
		rc |= db_suspensions_between(db, since, until, report_suspension, &r);
		buf_adds(&r.out, "]}\n");
	} else if (r.fmt == FMT_CSV) {
		const char *head[] = { "record", "time", "trigger_or_policy", "commit", "author_or_by",
				       "summary_or_reason", "signature", "result", "detail", "resources_or_path",
				       "error_or_before" };
		csv_row(&r.out, head, 11);
		rc |= db_passes_between(db, since, until, report_pass, &r);
		rc |= db_drift_between(db, since, until, report_drift, &r);
		rc |= db_suspensions_between(db, since, until, report_suspension, &r);
	} else {
		buf_adds(&r.out, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
			 "<title>driftless change report</title>\n<style>\n"
			 "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\n"
			 "table{border-collapse:collapse;width:100%;margin-bottom:1.5em}\n"
			 "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}\n"
			 "th{background:#f0f0f0}td{font-family:ui-monospace,monospace;font-size:12px}\n"
			 ".none{color:#777}\n</style></head><body>\n<h1>Change report: ");
		buf_add_html(&r.out, host);
		buf_adds(&r.out, "</h1>\n<p>Period ");
		buf_add_html(&r.out, since_s);
		buf_adds(&r.out, " to ");
		buf_add_html(&r.out, until_s);
		buf_adds(&r.out, "; generated ");
		buf_add_html(&r.out, gen);
		buf_adds(&r.out, " by driftless " DRIFTLESS_VERSION "; revision in force: ");
		buf_add_html(&r.out, applied ? applied : "(none)");
		buf_adds(&r.out, ".</p>\n");
		static const char *const ph[] = { "time", "trigger", "commit", "author", "summary",
						   "signature", "result", "counts", "resources", "error" };
		static const char *const dh[] = { "time", "resource", "path", "policy", "outcome",
						   "changes", "found", "left" };
		static const char *const sh[] = { "started", "until", "by", "reason", "ended", "how it ended" };
		rc |= db_passes_between(db, since, until, report_pass, &r);
		html_table(&r, "Revisions applied", ph, 10);
		rc |= db_drift_between(db, since, until, report_drift, &r);
		html_table(&r, "Drift events", dh, 8);
		rc |= db_suspensions_between(db, since, until, report_suspension, &r);
		html_table(&r, "Suspensions (emergency hotfixes)", sh, 6);
		buf_adds(&r.out, "</body></html>\n");
	}
	if (rc) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	/* the report is a sink like any other */
	struct buf shown = BUF_INIT;
	redact_buf(&shown, r.out.ptr ? r.out.ptr : "", r.out.len);
	fwrite(shown.ptr ? shown.ptr : "", 1, shown.len, stdout);
	buf_release(&shown);
	ret = EXIT_OK;
out:
	buf_release(&r.out);
	buf_release(&r.rows);
	buf_release(&r.res);
	db_close(db);
	arena_release(&a);
	opts_release(&o);
	return ret;
}
