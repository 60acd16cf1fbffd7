/* SPDX-License-Identifier: MIT */
/*
 * What crosses the wire to etcd's v3 JSON gateway, and what it means for a
 * rollout: request bodies, response decoding, the key layout and the slot
 * and halt values. Pure functions, no I/O: unit-tested and fuzzed.
 */
#ifndef DL_FLEET_PROTO_H
#define DL_FLEET_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/json.h"

/* ---- base64 (RFC 4648, padded), as the gateway encodes keys and values ---- */
void b64_encode(struct buf *b, const void *p, size_t n);
/* Decode into arena memory (NUL-terminated for convenience); -1 when malformed. */
int b64_decode(struct arena *a, const char *s, size_t n, char **out, size_t *outlen);

/* ---- request bodies (JSON), appended to b ---- */
/* Range over key, or over every key that starts with key when prefix. */
void etcdreq_range(struct buf *b, const char *key, int prefix);
/* Put key = val, attached to lease (0: none). */
void etcdreq_put(struct buf *b, const char *key, const char *val, int64_t lease);
void etcdreq_delete(struct buf *b, const char *key);
void etcdreq_grant(struct buf *b, int64_t ttl_s);
/* keepalive, revoke and timetolive take the same body. */
void etcdreq_lease(struct buf *b, int64_t lease);
void etcdreq_auth(struct buf *b, const char *user, const char *password);
/*
 * Take a rollout slot atomically: put slot_key = val under lease if and only
 * if slot_key does not exist and halt_key's mod_revision is still halt_mod
 * (0: absent). Either way the answer carries no range.
 */
void etcdreq_take_slot(struct buf *b, const char *slot_key, const char *halt_key, int64_t halt_mod,
		       const char *val, int64_t lease);
/* Delete slot_key only while it is still attached to lease (ours). */
void etcdreq_release_slot(struct buf *b, const char *slot_key, int64_t lease);

/* ---- responses ---- */
struct etcd_kv {
	const char *key, *val;		/* decoded; NUL-terminated */
	size_t klen, vlen;
	int64_t create_rev, mod_rev, version, lease;
};

struct etcd_resp {
	struct json *root;
	int64_t revision;		/* header.revision, 0 when absent */
	int code;			/* gRPC status code of an error answer, 0 otherwise */
	const char *error;		/* its message, or NULL */
	struct etcd_kv *kvs;		/* range: kvs; txn: the kvs of its first range */
	size_t nkvs;
	int64_t id, ttl;		/* lease grant and keepalive ("result" unwrapped) */
	int succeeded;			/* txn */
	const char *token;		/* auth/authenticate */
};

/*
 * Decode one gateway answer. Error answers ({"error","code"}) decode fine
 * with code and error set. Returns -1 with err_msg() when the body is not
 * JSON or a field has the wrong shape (a key that is not base64, say).
 */
int etcdresp_parse(struct arena *a, const char *body, size_t len, struct etcd_resp *out);

/* ---- the rollout: slots and halt ---- */
struct fleet_slot {
	int index;
	const char *host, *revision;	/* from the value; "" when unreadable */
	int64_t since_ms, lease;
};

struct fleet_halt {
	int present;
	const char *revision, *host, *reason;
	int64_t at_ms, mod_rev;
};

struct rollout {
	struct fleet_slot *slots;	/* sorted by index */
	size_t nslots;
	struct fleet_halt halt;
};

/* The slot and halt values (JSON objects), appended to b. */
void rollout_slot_value(struct buf *b, const char *host, const char *revision, int64_t since_ms);
void rollout_halt_value(struct buf *b, const char *revision, const char *host, const char *reason,
			int64_t at_ms);
/*
 * Read the keys under prefix (PREFIX/rollout/GROUP/, ending in '/'):
 * "slot/N" and "halt". Other keys and unreadable values are ignored
 * (a slot with an unreadable value still counts as taken).
 */
void rollout_read(struct arena *a, const struct etcd_kv *kvs, size_t n, const char *prefix,
		  struct rollout *out);
/*
 * The slot to try for host (lease): -2 when host already holds one (its
 * index in *mine), the lowest free index below max, or -1 when all max are
 * taken.
 */
int rollout_pick(const struct rollout *r, int max, const char *host, int64_t lease, int *mine);

/* A host or group name: 1..253 of [A-Za-z0-9._-], not "." or "..". */
int fleet_name_ok(const char *s);

#endif
