/* SPDX-License-Identifier: MIT */
/* Push webhooks: signature and token checks per provider, and the delivery-id replay cache. */
#ifndef DL_WEBHOOK_H
#define DL_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

enum webhook_provider {
	WEBHOOK_GITHUB,		/* X-Hub-Signature-256: sha256=HEX(HMAC-SHA256(secret, body)) */
	WEBHOOK_GITLAB,		/* X-Gitlab-Token: the secret itself */
	WEBHOOK_GITEA,		/* X-Gitea-Signature (or X-Forgejo-Signature): bare HEX */
	WEBHOOK_GENERIC,	/* X-Signature-256: sha256=HEX */
	WEBHOOK__COUNT,
};

/* "github", "gitlab", "gitea", "generic"; NULL-terminated. */
extern const char *const webhook_provider_names[];
/* The provider called name, or -1. */
int webhook_provider_find(const char *name);

#define WEBHOOK_MAX_SECRETS 4
#define WEBHOOK_DEDUPE_SLOTS 256

/* The replay cache: the last WEBHOOK_DEDUPE_SLOTS delivery ids, as a ring
 * of 16-byte hashes (the oldest is overwritten first). */
struct webhook_dedupe {
	unsigned char id[WEBHOOK_DEDUPE_SLOTS][16];
	size_t next, n;
};

struct webhook {
	enum webhook_provider provider;
	/* Accepted secrets (rotation: old and new); heap copies. None with insecure. */
	unsigned char *secret[WEBHOOK_MAX_SECRETS];
	size_t secret_len[WEBHOOK_MAX_SECRETS];
	size_t nsecrets;
	int insecure;			/* no secret: every delivery is taken as valid */
	unsigned char cmp_key[32];	/* random per process, for comparing tokens */
	struct webhook_dedupe seen;
};

/* Look up a request header by name (case-insensitive); NULL when absent. */
typedef const char *(*webhook_header_fn)(void *ctx, const char *name);

/* Set up w for provider; secrets are added with webhook_add_secret. */
int webhook_init(struct webhook *w, enum webhook_provider provider, int insecure);
void webhook_release(struct webhook *w);
/* Add one accepted secret (copied). -1 when empty or too many. */
int webhook_add_secret(struct webhook *w, const void *secret, size_t len);
/* Read FILE: one secret a line (at most WEBHOOK_MAX_SECRETS; blank lines
 * and trailing white space ignored). The file must be a regular file owned
 * by root or by the agent's user, and not readable or writable by group or
 * others. -1 with err_msg() naming what is wrong. */
int webhook_load_secrets(struct webhook *w, const char *file);
/* Replace w's secrets with those of FILE (or none, when insecure), for a
 * rotation: the provider and the replay cache stay. On error w is left as
 * it was and -1 is returned with err_msg(). */
int webhook_rotate(struct webhook *w, const char *file, int insecure);

/* Read a secret file with the same checks, for apiTokenFile: the first
 * line. Returns a heap string or NULL with err_msg(). */
char *secret_file_read(const char *file, const char *key, size_t *len);

enum webhook_verdict {
	WEBHOOK_OK,
	WEBHOOK_MISSING,	/* no signature or token header */
	WEBHOOK_MALFORMED,	/* wrong prefix or algorithm, not 64 hex digits */
	WEBHOOK_MISMATCH,	/* well-formed, but no configured secret matches */
};

/*
 * Check the delivery: the signature header of w's provider over the raw
 * body bytes, or the token header (GitLab). Every candidate secret is
 * tried with a constant-time comparison of the full 32-byte MAC. On
 * WEBHOOK_OK, *matched (if not NULL) is the index of the secret that
 * matched (-1 when insecure). The body is never parsed.
 */
enum webhook_verdict webhook_verify(const struct webhook *w, webhook_header_fn get, void *ctx,
				    const void *body, size_t len, int *matched);
const char *webhook_verdict_str(enum webhook_verdict v);

/* The delivery id header of the provider, or NULL. */
const char *webhook_delivery_id(enum webhook_provider p, webhook_header_fn get, void *ctx);
/* 1 when the provider says this delivery is only a ping (GitHub's
 * X-GitHub-Event: ping): authenticate it, answer it, fetch nothing. */
int webhook_is_ping(enum webhook_provider p, webhook_header_fn get, void *ctx);

/* 1 when id was seen among the last WEBHOOK_DEDUPE_SLOTS ids (a replay);
 * otherwise remember it (evicting the oldest) and return 0. */
int webhook_dedupe_seen(struct webhook_dedupe *d, const char *id);

/* HMAC-SHA256 of data under key (any length). */
void hmac_sha256(unsigned char out[32], const void *key, size_t klen, const void *data, size_t len);
/* Constant-time equality of two secrets of any length: compares
 * HMAC(key, a) with HMAC(key, b), so neither the length nor the position
 * of the first difference shows in the time taken. */
int secret_equal(const unsigned char key[32], const void *a, size_t alen, const void *b, size_t blen);

#endif
