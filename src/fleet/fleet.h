/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of a fleet (docs/fleet.md): registration under an etcd
 * lease kept alive from the event loop, the status this host publishes, and
 * the rollout gate (a lease-backed slot per host applying a new revision,
 * at most rollout.maxParallel per group; a halt key when one fails). All of
 * it is asynchronous: nothing here ever blocks a pass or a drift repair,
 * and when etcd cannot be reached the host keeps its last good revision.
 */
#ifndef DL_FLEET_H
#define DL_FLEET_H

#include "core/config.h"
#include "core/pass.h"
#include "daemon/loop.h"
#include "state/db.h"

struct fleet;

struct fleet_hooks {
	/* The gate opened for oid (a slot is held): apply it now, then call
	 * fleet_rollout_done(). Called from the loop, never from inside
	 * fleet_gate(). */
	void (*go)(void *ctx, const char *oid, const char *ref);
	void *ctx;
};

enum { FLEET_GO, FLEET_WAIT };

/*
 * Start registering when cfg->fleet.enabled; *out is NULL otherwise (every
 * function below takes a NULL fleet and then does nothing, and the gate
 * always answers FLEET_GO). Reads the password file now. db gets the meta
 * key "fleet" (what `driftless status` shows). -1 with err_msg() on a
 * setup error (a bad host name, an unreadable password file).
 */
int fleet_new(struct fleet **out, struct loop *l, const struct config *cfg, struct db *db,
	      const struct fleet_hooks *hooks);
/* Release the slot (best effort, without waiting) and stop. The host key
 * goes when the lease expires, or at once when the revoke gets through. */
void fleet_free(struct fleet *f);

/* A fetch found the remote at oid: a revision waiting for the gate that
 * is no longer the remote's is dropped. */
void fleet_fetched(struct fleet *f, const char *oid);
/* May this host start applying oid now? FLEET_GO when no fleet or a slot
 * is held; otherwise FLEET_WAIT, and hooks.go follows when a slot is taken. */
int fleet_gate(struct fleet *f, const char *oid, const char *ref);
/* A gated revision was applied (result: applied, partial, failed,
 * rejected): keep the slot for rollout.settle, or halt the group's rollout
 * of oid and free the slot. */
void fleet_rollout_done(struct fleet *f, const char *oid, const char *result);
/* Give a slot back without applying (the agent was suspended meanwhile). */
void fleet_release(struct fleet *f);

/* Every pass (result as for http_note_pass) and drift event: publish. */
void fleet_note_pass(struct fleet *f, const struct pass *p, const char *result);
void fleet_note_drift(struct fleet *f, const char *action);
/* A Service's health check changed its readiness: while the revision
 * settles, a failure halts the rollout for the group. */
void fleet_note_health(struct fleet *f, const char *id, int ready, const char *detail);

#endif
