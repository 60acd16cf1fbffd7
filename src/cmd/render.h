/* SPDX-License-Identifier: MIT */
/* Views of the state database, rendered once for both the commands and the HTTP API. */
#ifndef DL_RENDER_H
#define DL_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include "lib/arena.h"
#include "lib/buf.h"
#include "state/db.h"

/* "2024-05-01T12:00:00Z" from milliseconds since the epoch. */
void render_time(char *out, size_t n, int64_t ms);

/* What `driftless status` prints (json: `-o json`, one line), appended to out. */
int render_status(struct db *db, int json, struct buf *out);
/* What `driftless history -n N` prints; -1 with err_msg() when the
 * database cannot be read (out then holds what was rendered so far). */
int render_history(struct db *db, int n, int json, struct buf *out);

enum res_state_kind { RES_IN_SYNC, RES_DRIFTED, RES_FAILED, RES__STATES };
extern const char *const res_state_names[RES__STATES];	/* "in-sync", "drifted", "failed" */

/* One managed resource and its state, from the inventory, the outcome of
 * the last pass that touched it and the last drift event about it, the
 * newer of the two deciding. Strings live in the arena. */
struct res_state {
	const char *id, *kind, *name, *path;
	const char *type;		/* "file", "directory", "symlink", "none" */
	int created;			/* 1: driftless created it; 0: adopted */
	enum res_state_kind state;
	const char *detail;		/* why not in sync, or what last changed; may be NULL */
	int64_t since_ms;		/* when that was recorded; 0 unknown */
};

/* Every inventory row with its state, sorted by id. */
int render_res_states(struct db *db, struct arena *a, struct res_state **out, size_t *n);
/* {"resources":[...],"counts":{...}} (GET /api/v1/resources). */
int render_resources_json(struct db *db, struct buf *out);

#endif
