/* SPDX-License-Identifier: MIT */
/*
 * The fleet, agent side. Three small state machines share one etcd client:
 *
 * - the link: grant a lease, put this host's key under it, keep the lease
 *   alive every TTL/3; on any failure, work alone (log it once, note it in
 *   the state database) and try again with backoff, reusing the lease when
 *   it is still alive;
 * - the status: this host's key is rewritten on every change, at most once
 *   a second, one put in flight;
 * - the gate: a new revision is applied only while this host holds one of
 *   the group's maxParallel slots, taken with a txn that also checks the
 *   halt key did not change, and put under the lease so a dead host frees
 *   it. A failed pass writes the halt key (no lease: an operator clears it).
 *
 * There is no consensus, lock or election of our own: every decision that
 * crosses hosts is one etcd transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "cmd/render.h"
#include "fleet/etcd.h"
#include "fleet/fleet.h"
#include "http/webhook.h"
#include "lib/err.h"
#include "lib/redact.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define GATE_POLL_MS 1000	/* no slot free: look again (with jitter) */
#define HALT_POLL_MS 2000	/* halted: look again for the halt to be cleared */
#define PUBLISH_MIN_MS 1000	/* at most one status put a second */
#define ERROR_MAX 400

enum link { LINK_DOWN, LINK_CONNECTING, LINK_UP };

struct fleet {
	struct loop *loop;
	struct etcd *etcd;
	struct db *db;
	struct fleet_hooks hooks;
	char *name, *group, *prefix;
	char *host_key, *rollout_prefix, *halt_key;
	int max_parallel;
	int64_t ttl_ms, settle_ms;
	int64_t lease;
	enum link link;
	int failures;			/* reconnects in a row */
	int64_t down_since;		/* wall ms; 0 while up */
	char down_err[ERROR_MAX];
	int ever_up;
	int tfd_keepalive, tfd_retry, tfd_gate, tfd_settle, tfd_go, tfd_pub;
	/* what this host publishes */
	char applied[41], attempted[41], ref[256], result[16], last_error[ERROR_MAX];
	int64_t applied_at, started_ms, last_put_ms;
	int counts[OUT__COUNT];
	size_t resources;
	uint64_t drift, drift_failed;
	int unhealthy;			/* services whose health check fails now */
	int put_inflight, put_dirty, pub_armed;
	/* the gate */
	char want[41], want_ref[256];	/* waiting for a slot */
	int gate_inflight;
	int slot;			/* held slot index, -1: none */
	char slot_oid[41];
	int settling;
	int release_pending;		/* a release did not get through yet */
	int slot_to_release;
	int trying;			/* the slot index a txn in flight tries to take */
	char go_oid[41], go_ref[256];
	char halted[41];		/* the revision a halt holds back (logged once) */
	char waiting[41];		/* logged "waits for a slot" once */
	int halt_seen;
	char halt_host[128], halt_reason[ERROR_MAX];
	/* the client's settings, kept for the revoke at a clean stop */
	char **endpoints;
	size_t nendpoints;
	char *ca_file, *cert_file, *key_file, *username, *password;
	int64_t timeout_ms;
};

static void flog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void flog(const char *fmt, ...)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	redact_buf(&out, b.ptr ? b.ptr : "", b.len);
	fprintf(stderr, "%s\n", out.ptr ? out.ptr : "");
	fflush(stderr);
	buf_release(&b);
	buf_release(&out);
}

static int64_t jitter(int64_t ms)
{
	return ms + (ms > 4 ? (int64_t)(random() % (ms / 4 + 1)) : 0);
}

static void meta_note(struct fleet *f, const char *text)
{
	if (f->db && db_meta_set(f->db, "fleet", text) < 0)
		flog("fleet: %s", err_msg());
}

static void publish(struct fleet *f);
static void gate_try(struct fleet *f);
static void link_connect(struct fleet *f);
static void release_slot(struct fleet *f);

/* ---- the link ---- */

static void link_down(struct fleet *f, const char *why)
{
	if (!f->down_since) {
		/* once per outage; the retries are quiet */
		char line[ERROR_MAX + 200];
		f->down_since = wall_ms();
		snprintf(f->down_err, sizeof(f->down_err), "%s", why);
		flog("fleet: etcd unreachable (%s); working alone on revision %.12s: drift is repaired,"
		     " new revisions wait", why, f->applied[0] ? f->applied : "(none)");
		char when[32];
		render_time(when, sizeof(when), f->down_since);
		snprintf(line, sizeof(line), "etcd unreachable since %s: %s; working alone on the last"
			 " good revision", when, why);
		meta_note(f, line);
	}
	f->link = LINK_DOWN;
	f->gate_inflight = 0;
	f->put_inflight = 0;
	f->put_dirty = 1;
	timer_arm(f->tfd_keepalive, 0);
	int64_t back = BACKOFF_MIN_MS;
	for (int i = 0; i < f->failures && back < BACKOFF_MAX_MS; i++)
		back *= 2;
	if (back > BACKOFF_MAX_MS)
		back = BACKOFF_MAX_MS;
	f->failures++;
	timer_arm(f->tfd_retry, jitter(back));
}

/* etcd said the lease is gone ("requested lease not found"). */
static int lease_gone(const struct etcd_resp *r, const char *err)
{
	return err && r && r->error && strstr(r->error, "lease not found");
}

static void link_up(struct fleet *f)
{
	char line[600];
	f->link = LINK_UP;
	f->failures = 0;
	if (f->down_since)
		flog("fleet: etcd reachable again at %s; registered as %s/%s", etcd_endpoint(f->etcd),
		     f->group, f->name);
	else if (!f->ever_up)
		flog("fleet: registered in etcd at %s as %s/%s (lease %lld, ttl %lld s)",
		     etcd_endpoint(f->etcd), f->group, f->name, (long long)f->lease,
		     (long long)(f->ttl_ms / 1000));
	f->ever_up = 1;
	f->down_since = 0;
	snprintf(line, sizeof(line), "registered in etcd at %s as %s/%s", etcd_endpoint(f->etcd),
		 f->group, f->name);
	meta_note(f, line);
	timer_arm(f->tfd_keepalive, f->ttl_ms / 3);
	f->put_dirty = 1;
	publish(f);
	if (f->release_pending)
		release_slot(f);
	if (f->want[0])
		gate_try(f);
}

static void on_granted(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	if (err || !r->id) {
		link_down(f, err ? err : "etcd granted no lease");
		return;
	}
	f->lease = r->id;
	link_up(f);
}

static void grant(struct fleet *f)
{
	struct buf b = BUF_INIT;
	etcdreq_grant(&b, (f->ttl_ms + 999) / 1000);
	if (etcd_call(f->etcd, "/v3/lease/grant", b.ptr, on_granted, f) < 0)
		link_down(f, err_msg());
	buf_release(&b);
}

static void on_reconnect_keepalive(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	if (err) {
		link_down(f, err);
		return;
	}
	if (r->ttl > 0) {
		link_up(f);	/* the lease outlived the outage: the keys are still there */
		return;
	}
	f->lease = 0;
	f->slot = -1;	/* it went with the lease */
	f->settling = 0;
	f->release_pending = 0;
	grant(f);
}

static void link_connect(struct fleet *f)
{
	f->link = LINK_CONNECTING;
	if (!f->lease) {
		grant(f);
		return;
	}
	struct buf b = BUF_INIT;
	etcdreq_lease(&b, f->lease);
	if (etcd_call(f->etcd, "/v3/lease/keepalive", b.ptr, on_reconnect_keepalive, f) < 0)
		link_down(f, err_msg());
	buf_release(&b);
}

static void on_keepalive(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	if (err) {
		link_down(f, err);
		return;
	}
	if (r->ttl <= 0) {
		/* the loop was held up longer than the TTL (a long pass): the
		 * lease, this host's key and any slot are gone */
		flog("fleet: lease %lld expired; registering again", (long long)f->lease);
		f->lease = 0;
		if (f->slot >= 0)
			flog("fleet: rollout slot %d went with the lease", f->slot);
		f->slot = -1;
		f->settling = 0;
		f->release_pending = 0;
		link_connect(f);
		return;
	}
	timer_arm(f->tfd_keepalive, f->ttl_ms / 3);
}

static void on_keepalive_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct fleet *f = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	if (f->link != LINK_UP)
		return;
	struct buf b = BUF_INIT;
	etcdreq_lease(&b, f->lease);
	if (etcd_call(f->etcd, "/v3/lease/keepalive", b.ptr, on_keepalive, f) < 0)
		link_down(f, err_msg());
	buf_release(&b);
}

static void on_retry_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct fleet *f = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	if (f->link == LINK_DOWN)
		link_connect(f);
}

/* ---- the status ---- */

static const char *state_name(const struct fleet *f)
{
	if (f->link != LINK_UP)
		return "alone";
	if (f->slot >= 0)
		return f->settling ? "settling" : "applying";
	if (f->want[0])
		return f->halted[0] && !strcmp(f->halted, f->want) ? "halted" : "waiting";
	return "idle";
}

static const char *health(const struct fleet *f)
{
	if (!f->result[0])
		return "unknown";
	if (!strcmp(f->result, "failed") || !strcmp(f->result, "rejected"))
		return "failing";
	if (!strcmp(f->result, "partial") || f->drift_failed || f->unhealthy)
		return "degraded";
	return "ok";
}

static void status_value(struct fleet *f, struct buf *b)
{
	buf_adds(b, "{\"name\":");
	buf_add_json_str(b, f->name);
	buf_adds(b, ",\"group\":");
	buf_add_json_str(b, f->group);
	buf_addf(b, ",\"version\":\"%s\",\"pid\":%d,\"state\":\"%s\",\"health\":\"%s\"", DRIFTLESS_VERSION,
		 (int)getpid(), state_name(f), health(f));
	buf_adds(b, ",\"applied\":");
	buf_add_json_str(b, f->applied[0] ? f->applied : NULL);
	buf_adds(b, ",\"ref\":");
	buf_add_json_str(b, f->ref[0] ? f->ref : NULL);
	buf_addf(b, ",\"appliedAt\":%lld,\"attempted\":", (long long)f->applied_at);
	buf_add_json_str(b, f->attempted[0] ? f->attempted : NULL);
	buf_adds(b, ",\"pending\":");
	buf_add_json_str(b, f->want[0] ? f->want : f->slot >= 0 && !f->settling ? f->slot_oid : NULL);
	buf_adds(b, ",\"result\":");
	buf_add_json_str(b, f->result[0] ? f->result : NULL);
	buf_addf(b, ",\"resources\":%zu,\"counts\":{", f->resources);
	for (int i = 0; i < OUT__COUNT; i++)
		buf_addf(b, "%s\"%s\":%d", i ? "," : "", outcome_names[i], f->counts[i]);
	buf_addf(b, "},\"drift\":%llu,\"driftFailed\":%llu,\"lastError\":", (unsigned long long)f->drift,
		 (unsigned long long)f->drift_failed);
	buf_add_json_str(b, f->last_error[0] ? f->last_error : NULL);
	buf_addf(b, ",\"slot\":%d,\"started\":%lld,\"updated\":%lld", f->slot, (long long)f->started_ms,
		 (long long)wall_ms());
	if (f->ever_up && f->failures == 0 && f->down_err[0]) {
		buf_adds(b, ",\"lastOutage\":");
		buf_add_json_str(b, f->down_err);
	}
	buf_addch(b, '}');
}

static void on_put(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	f->put_inflight = 0;
	if (lease_gone(r, err)) {
		flog("fleet: lease %lld is gone; registering again", (long long)f->lease);
		f->lease = 0;
		f->slot = -1;
		f->settling = 0;
		f->put_dirty = 1;
		link_connect(f);
		return;
	}
	if (err) {
		link_down(f, err);
		return;
	}
	if (f->put_dirty)
		publish(f);
}

static void publish(struct fleet *f)
{
	f->put_dirty = 1;
	if (f->link != LINK_UP || f->put_inflight)
		return;
	int64_t now = mono_ms(), wait = f->last_put_ms + PUBLISH_MIN_MS - now;
	if (f->last_put_ms && wait > 0) {
		if (!f->pub_armed) {
			timer_arm(f->tfd_pub, wait);
			f->pub_armed = 1;
		}
		return;
	}
	struct buf v = BUF_INIT, b = BUF_INIT;
	status_value(f, &v);
	etcdreq_put(&b, f->host_key, v.ptr, f->lease);
	f->put_dirty = 0;
	f->put_inflight = 1;
	f->last_put_ms = now;
	if (etcd_call(f->etcd, "/v3/kv/put", b.ptr, on_put, f) < 0) {
		f->put_inflight = 0;
		link_down(f, err_msg());
	}
	buf_release(&v);
	buf_release(&b);
}

static void on_pub_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct fleet *f = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	f->pub_armed = 0;
	if (f->put_dirty)
		publish(f);
}

/* ---- the gate ---- */

static void on_released(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	(void)r;
	if (err) {
		link_down(f, err);
		return;
	}
	f->release_pending = 0;
}

/* Give the held slot back: delete its key while it is still ours. */
static void release_slot(struct fleet *f)
{
	if (f->slot >= 0) {
		f->slot_to_release = f->slot;
		flog("fleet: released rollout slot %d (revision %.12s)", f->slot, f->slot_oid);
		f->slot = -1;
		f->settling = 0;
		f->release_pending = 1;
		timer_arm(f->tfd_settle, 0);
		publish(f);
	}
	if (!f->release_pending || f->link != LINK_UP)
		return;
	char *key = xasprintf("%sslot/%d", f->rollout_prefix, f->slot_to_release);
	struct buf b = BUF_INIT;
	etcdreq_release_slot(&b, key, f->lease);
	if (etcd_call(f->etcd, "/v3/kv/txn", b.ptr, on_released, f) < 0)
		link_down(f, err_msg());
	buf_release(&b);
	free(key);
}

static void go(struct fleet *f)
{
	memcpy(f->go_oid, f->want, sizeof(f->go_oid));
	memcpy(f->go_ref, f->want_ref, sizeof(f->go_ref));
	memcpy(f->slot_oid, f->want, sizeof(f->slot_oid));
	f->want[0] = '\0';
	f->waiting[0] = '\0';
	publish(f);
	timer_arm(f->tfd_go, -1);	/* from the loop, not from inside a callback */
}

static void on_go_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct fleet *f = ctx;
	char oid[41], ref[256];
	(void)l;
	(void)events;
	timer_ack(fd);
	if (!f->go_oid[0] || f->slot < 0)
		return;
	memcpy(oid, f->go_oid, sizeof(oid));
	memcpy(ref, f->go_ref, sizeof(ref));
	f->go_oid[0] = '\0';
	if (f->hooks.go)
		f->hooks.go(f->hooks.ctx, oid, ref);
}

static void on_took(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	int k = f->trying;
	f->gate_inflight = 0;
	if (lease_gone(r, err)) {
		f->lease = 0;
		link_connect(f);
		return;
	}
	if (err) {
		link_down(f, err);
		return;
	}
	if (!r->succeeded) {
		/* someone took it first, or the halt changed: look again soon */
		timer_arm(f->tfd_gate, 50 + random() % 250);
		return;
	}
	f->slot = k;
	if (!f->want[0]) {
		/* the revision was superseded while the txn was in flight */
		memcpy(f->slot_oid, "(none)", 7);
		release_slot(f);
		return;
	}
	flog("fleet: took rollout slot %d of %d in group %s for revision %.12s", k, f->max_parallel,
	     f->group, f->want);
	go(f);
}

static void on_gate_read(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	struct arena a;
	struct rollout ro;
	int mine = -1;
	if (err) {
		f->gate_inflight = 0;
		link_down(f, err);
		return;
	}
	if (!f->want[0]) {
		f->gate_inflight = 0;
		return;
	}
	arena_init(&a);
	rollout_read(&a, r->kvs, r->nkvs, f->rollout_prefix, &ro);
	f->halt_seen = ro.halt.present;
	if (ro.halt.present) {
		snprintf(f->halt_host, sizeof(f->halt_host), "%s", ro.halt.host);
		snprintf(f->halt_reason, sizeof(f->halt_reason), "%s", ro.halt.reason);
	}
	if (ro.halt.present && !strcmp(ro.halt.revision, f->want)) {
		f->gate_inflight = 0;
		if (strcmp(f->halted, f->want)) {
			memcpy(f->halted, f->want, sizeof(f->halted));
			flog("fleet: rollout of revision %.12s in group %s is halted: %s failed it (%s);"
			     " staying on %.12s until the halt is cleared or a newer revision arrives",
			     f->want, f->group, ro.halt.host, ro.halt.reason,
			     f->applied[0] ? f->applied : "(none)");
			publish(f);
		}
		timer_arm(f->tfd_gate, jitter(HALT_POLL_MS));
		arena_release(&a);
		return;
	}
	if (f->halted[0]) {
		flog("fleet: the halt on revision %.12s was cleared", f->halted);
		f->halted[0] = '\0';
		publish(f);
	}
	int k = rollout_pick(&ro, f->max_parallel, f->name, f->lease, &mine);
	if (k == -2) {
		/* ours already (an answer that was lost) */
		f->gate_inflight = 0;
		f->slot = mine;
		go(f);
	} else if (k == -1) {
		f->gate_inflight = 0;
		if (strcmp(f->waiting, f->want)) {
			struct buf who = BUF_INIT;
			for (size_t i = 0; i < ro.nslots; i++)
				buf_addf(&who, "%s%s (%.12s)", i ? ", " : "", ro.slots[i].host,
					 ro.slots[i].revision);
			memcpy(f->waiting, f->want, sizeof(f->waiting));
			flog("fleet: revision %.12s waits for a rollout slot: %zu of %d in use by %s",
			     f->want, ro.nslots, f->max_parallel, who.ptr ? who.ptr : "?");
			buf_release(&who);
			publish(f);
		}
		timer_arm(f->tfd_gate, jitter(GATE_POLL_MS));
	} else {
		char *key = xasprintf("%sslot/%d", f->rollout_prefix, k);
		struct buf v = BUF_INIT, b = BUF_INIT;
		rollout_slot_value(&v, f->name, f->want, wall_ms());
		etcdreq_take_slot(&b, key, f->halt_key, ro.halt.present ? ro.halt.mod_rev : 0, v.ptr, f->lease);
		f->trying = k;
		if (etcd_call(f->etcd, "/v3/kv/txn", b.ptr, on_took, f) < 0) {
			f->gate_inflight = 0;
			link_down(f, err_msg());
		}
		buf_release(&v);
		buf_release(&b);
		free(key);
	}
	arena_release(&a);
}

static void gate_try(struct fleet *f)
{
	if (f->gate_inflight || !f->want[0] || f->link != LINK_UP || f->release_pending)
		return;
	struct buf b = BUF_INIT;
	etcdreq_range(&b, f->rollout_prefix, 1);
	f->gate_inflight = 1;
	if (etcd_call(f->etcd, "/v3/kv/range", b.ptr, on_gate_read, f) < 0) {
		f->gate_inflight = 0;
		link_down(f, err_msg());
	}
	buf_release(&b);
}

static void on_gate_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	gate_try(ctx);
}

static void on_settle_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct fleet *f = ctx;
	(void)l;
	(void)events;
	timer_ack(fd);
	if (f->settling)
		release_slot(f);
}

static void on_halted(void *ctx, const struct etcd_resp *r, const char *err)
{
	struct fleet *f = ctx;
	(void)r;
	if (err)
		link_down(f, err);
}

/* Stop the group's rollout of oid: the others will not start it. */
static void halt(struct fleet *f, const char *oid, const char *why)
{
	struct buf v = BUF_INIT, b = BUF_INIT;
	rollout_halt_value(&v, oid, f->name, why, wall_ms());
	etcdreq_put(&b, f->halt_key, v.ptr, 0);
	flog("fleet: revision %.12s failed here (%s); halting its rollout in group %s (clear with"
	     " 'etcdctl del %s')", oid, why, f->group, f->halt_key);
	if (f->link != LINK_UP || etcd_call(f->etcd, "/v3/kv/put", b.ptr, on_halted, f) < 0)
		flog("fleet: cannot write the halt now: etcd is unreachable; the slot stays taken until"
		     " the lease expires");
	else
		memcpy(f->halted, oid, 41);
	buf_release(&v);
	buf_release(&b);
}

void fleet_fetched(struct fleet *f, const char *oid)
{
	if (f && f->go_oid[0] && strcmp(f->go_oid, oid)) {
		f->go_oid[0] = '\0';	/* superseded before it started */
		release_slot(f);
	}
	if (!f || !f->want[0] || !strcmp(f->want, oid))
		return;
	flog("fleet: revision %.12s no longer waits: the remote is at %.12s now", f->want, oid);
	f->want[0] = '\0';
	f->waiting[0] = '\0';
	timer_arm(f->tfd_gate, 0);
	publish(f);
}

int fleet_gate(struct fleet *f, const char *oid, const char *ref)
{
	if (!f)
		return FLEET_GO;
	if (f->slot >= 0) {
		/* a slot held (settling, say) covers the newer revision too */
		memcpy(f->slot_oid, oid, 41);
		f->settling = 0;
		timer_arm(f->tfd_settle, 0);
		f->want[0] = '\0';
		publish(f);
		return FLEET_GO;
	}
	if (!strcmp(f->want, oid))
		return FLEET_WAIT;
	snprintf(f->want, sizeof(f->want), "%s", oid);
	snprintf(f->want_ref, sizeof(f->want_ref), "%s", ref);
	f->waiting[0] = '\0';
	if (f->link != LINK_UP)
		flog("fleet: new revision %.12s waits: etcd is unreachable, so no rollout slot can be"
		     " taken", oid);
	publish(f);
	gate_try(f);
	return FLEET_WAIT;
}

void fleet_rollout_done(struct fleet *f, const char *oid, const char *result)
{
	if (!f || f->slot < 0 || strcmp(f->slot_oid, oid))
		return;
	if (strcmp(result, "applied")) {
		halt(f, oid, f->last_error[0] ? f->last_error : result);
		release_slot(f);
		return;
	}
	if (f->settle_ms > 0) {
		f->settling = 1;
		flog("fleet: revision %.12s applied; keeping rollout slot %d for %lld s to settle", oid,
		     f->slot, (long long)(f->settle_ms / 1000));
		timer_arm(f->tfd_settle, f->settle_ms);
		publish(f);
		return;
	}
	release_slot(f);
}

void fleet_release(struct fleet *f)
{
	if (!f)
		return;
	f->want[0] = '\0';
	if (f->slot >= 0)
		release_slot(f);
}

void fleet_note_pass(struct fleet *f, const struct pass *p, const char *result)
{
	if (!f)
		return;
	if (!result && p)
		result = pass_result(p);
	snprintf(f->result, sizeof(f->result), "%s", result ? result : "");
	f->last_error[0] = '\0';
	if (p) {
		if (p->rev.oid[0])
			snprintf(f->attempted, sizeof(f->attempted), "%s", p->rev.oid);
		for (size_t i = 0; i < p->nchanges && !f->last_error[0]; i++)
			if (p->changes[i].outcome == OUT_FAILED)
				snprintf(f->last_error, sizeof(f->last_error), "%s: %s", p->changes[i].res->id,
					 p->changes[i].error ? p->changes[i].error : "failed");
		if (!f->last_error[0] && p->diag.n)
			snprintf(f->last_error, sizeof(f->last_error), "rejected: %s", p->diag.v[0].msg);
		if (!strcmp(f->result, "applied") || !strcmp(f->result, "partial")) {
			snprintf(f->applied, sizeof(f->applied), "%s", p->rev.oid);
			snprintf(f->ref, sizeof(f->ref), "%s", p->rev.ref);
			f->applied_at = wall_ms();
			memcpy(f->counts, p->counts, sizeof(f->counts));
			f->resources = p->nres;
			f->drift_failed = 0;
		}
	}
	if (!f->last_error[0] && strcmp(f->result, "applied"))
		snprintf(f->last_error, sizeof(f->last_error), "the pass %s", f->result);
	/* settling: a pass that goes wrong now halts the rollout as well */
	if (f->settling && strcmp(f->result, "applied") && !strcmp(f->slot_oid, f->attempted)) {
		halt(f, f->slot_oid, f->last_error);
		release_slot(f);
	}
	publish(f);
}

void fleet_note_drift(struct fleet *f, const char *action)
{
	if (!f)
		return;
	f->drift++;
	if (action && !strcmp(action, "failed")) {
		f->drift_failed++;
		if (f->settling) {
			halt(f, f->slot_oid, "a drift repair failed while the revision settled");
			release_slot(f);
		}
	}
	publish(f);
}

void fleet_note_health(struct fleet *f, const char *id, int ready, const char *detail)
{
	if (!f)
		return;
	if (!ready) {
		f->unhealthy++;
		snprintf(f->last_error, sizeof(f->last_error), "%s: %s", id ? id : "", detail ? detail : "");
		/* a health check that fails after applying marks the revision failed
		 * for the group: the others stay on the last good one */
		if (f->settling) {
			char *why = xasprintf("a health check failed after applying (%s)", id ? id : "");
			halt(f, f->slot_oid, why);
			free(why);
			release_slot(f);
		}
	} else if (f->unhealthy > 0) {
		f->unhealthy--;
	}
	publish(f);
}

/* ---- setup ---- */

static void opts_of(const struct fleet *f, struct etcd_opts *eo)
{
	*eo = (struct etcd_opts){ .endpoints = (const char *const *)f->endpoints,
				  .nendpoints = f->nendpoints, .ca_file = f->ca_file,
				  .cert_file = f->cert_file, .key_file = f->key_file,
				  .username = f->username, .password = f->password,
				  .timeout_ms = f->timeout_ms };
}

int fleet_new(struct fleet **out, struct loop *l, const struct config *cfg, struct db *db,
	      const struct fleet_hooks *hooks)
{
	const struct fleet_config *fc = &cfg->fleet;
	char host[256] = "";
	*out = NULL;
	if (!fc->enabled)
		return 0;
	const char *name = fc->name;
	if (!name) {
		if (gethostname(host, sizeof(host) - 1) < 0)
			return err_set_errno("fleet: cannot read the host name");
		host[strcspn(host, ".")] = host[0] == '.' ? '.' : '\0';	/* the short name */
		name = host;
	}
	if (!fleet_name_ok(name))
		return err_set("fleet: the host name '%s' cannot be a fleet name; set 'fleet.name'", name);
	char *password = NULL;
	if (fc->password_file) {
		size_t n;
		if (!(password = secret_file_read(fc->password_file, "fleet.auth.passwordFile", &n)))
			return -1;
		redact_add(password, n);
	}
	struct fleet *f = xcalloc(1, sizeof(*f));
	f->loop = l;
	f->db = db;
	if (hooks)
		f->hooks = *hooks;
	f->name = xstrdup(name);
	f->group = xstrdup(fc->group);
	f->prefix = xstrdup(fc->prefix);
	f->host_key = xasprintf("%s/hosts/%s/%s", fc->prefix, fc->group, name);
	f->rollout_prefix = xasprintf("%s/rollout/%s/", fc->prefix, fc->group);
	f->halt_key = xasprintf("%shalt", f->rollout_prefix);
	f->max_parallel = fc->max_parallel > 0 ? fc->max_parallel : 1;
	f->ttl_ms = fc->lease_ttl_ms;
	f->settle_ms = fc->settle_ms;
	f->slot = -1;
	f->started_ms = wall_ms();
	f->tfd_keepalive = f->tfd_retry = f->tfd_gate = f->tfd_settle = f->tfd_go = f->tfd_pub = -1;
	f->endpoints = xcalloc(fc->nendpoints, sizeof(char *));
	for (size_t i = 0; i < fc->nendpoints; i++)
		f->endpoints[f->nendpoints++] = xstrdup(fc->endpoints[i]);
	f->ca_file = fc->ca_file ? xstrdup(fc->ca_file) : NULL;
	f->cert_file = fc->cert_file ? xstrdup(fc->cert_file) : NULL;
	f->key_file = fc->key_file ? xstrdup(fc->key_file) : NULL;
	f->username = fc->username ? xstrdup(fc->username) : NULL;
	f->password = password;
	f->timeout_ms = fc->timeout_ms;
	struct etcd_opts eo;
	opts_of(f, &eo);
	if (etcd_new(&f->etcd, l, &eo) < 0) {
		fleet_free(f);
		return -1;
	}
	struct {
		int *fd;
		loop_cb cb;
	} timers[] = {
		{ &f->tfd_keepalive, on_keepalive_tfd }, { &f->tfd_retry, on_retry_tfd },
		{ &f->tfd_gate, on_gate_tfd }, { &f->tfd_settle, on_settle_tfd },
		{ &f->tfd_go, on_go_tfd }, { &f->tfd_pub, on_pub_tfd },
	};
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		if ((*timers[i].fd = timer_new()) < 0 ||
		    loop_add(l, *timers[i].fd, EPOLLIN, timers[i].cb, f) < 0) {
			fleet_free(f);
			return -1;
		}
	}
	flog("fleet: %s in group %s, etcd %s%s, at most %d applying at once", f->name, f->group,
	     fc->endpoints[0], fc->nendpoints > 1 ? " (and more)" : "", f->max_parallel);
	meta_note(f, "connecting to etcd");
	link_connect(f);
	*out = f;
	return 0;
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	int up = f->etcd && f->link == LINK_UP && f->lease;
	etcd_free(f->etcd);
	if (up) {
		/* a clean stop: leave at once by revoking the lease (the host key
		 * and any slot go with it), on a private loop, so no callback of
		 * the agent's runs any more; at most 2 s */
		struct loop tl;
		struct etcd *e = NULL;
		struct etcd_opts eo;
		opts_of(f, &eo);
		eo.timeout_ms = eo.timeout_ms < 2000 ? eo.timeout_ms : 2000;
		if (loop_init(&tl) == 0 && etcd_new(&e, &tl, &eo) == 0) {
			struct arena a;
			struct etcd_resp r;
			struct buf b = BUF_INIT;
			arena_init(&a);
			etcdreq_lease(&b, f->lease);
			if (etcd_call_sync(e, "/v3/lease/revoke", b.ptr, &a, &r) == 0)
				flog("fleet: left the fleet (lease %lld revoked)", (long long)f->lease);
			buf_release(&b);
			arena_release(&a);
		}
		etcd_free(e);
		if (tl.epfd >= 0)
			loop_release(&tl);
	}
	int *fds[] = { &f->tfd_keepalive, &f->tfd_retry, &f->tfd_gate, &f->tfd_settle, &f->tfd_go,
		       &f->tfd_pub };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			loop_del(f->loop, *fds[i]);
			close(*fds[i]);
		}
	if (f->db)
		db_meta_set(f->db, "fleet", NULL);
	free(f->name);
	free(f->group);
	free(f->prefix);
	free(f->host_key);
	free(f->rollout_prefix);
	free(f->halt_key);
	for (size_t i = 0; i < f->nendpoints; i++)
		free(f->endpoints[i]);
	free(f->endpoints);
	free(f->ca_file);
	free(f->cert_file);
	free(f->key_file);
	free(f->username);
	if (f->password) {
		redact_wipe(f->password, strlen(f->password));
		free(f->password);
	}
	free(f);
}
