/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a webhook request's headers and body through the
 * verification path (signature or token check, delivery id, replay cache).
 * Input: one byte choosing the provider (low 2 bits) and insecure mode
 * (bit 2), then "Name: value" header lines up to an empty line, then the
 * body. Verification must never accept a delivery that no configured
 * secret signs: every acceptance is re-checked here the slow, obvious way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http/webhook.h"
#include "lib/err.h"

#define MAX_HEADERS 32

static const char *const secrets[] = { "fuzz-secret", "It's a Secret to Everybody" };

struct req {
	char *name[MAX_HEADERS], *value[MAX_HEADERS];
	int n;
};

static const char *get(void *ctx, const char *name)
{
	struct req *r = ctx;
	for (int i = 0; i < r->n; i++)
		if (!strcasecmp(r->name[i], name))
			return r->value[i];
	return NULL;
}

/* the slow, obvious check: lower-case hex of HMAC(secret, body) */
static int signed_by_a_secret(const char *hex, const void *body, size_t len)
{
	for (size_t s = 0; s < sizeof(secrets) / sizeof(*secrets); s++) {
		unsigned char mac[32];
		char want[65];
		hmac_sha256(mac, secrets[s], strlen(secrets[s]), body, len);
		for (int i = 0; i < 32; i++)
			snprintf(want + 2 * i, 3, "%02x", mac[i]);
		if (!strcasecmp(want, hex))
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct webhook_dedupe seen;
	if (size < 1)
		return 0;
	enum webhook_provider p = (enum webhook_provider)(data[0] & 3);
	int insecure = !!(data[0] & 4);
	char *buf = xmalloc(size);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	size_t len = size - 1;

	/* headers: lines up to an empty one (NUL-terminated in place) */
	struct req r = { .n = 0 };
	char *pos = buf, *end = buf + len, *body = end;
	while (pos < end) {
		char *nl = memchr(pos, '\n', (size_t)(end - pos));
		char *stop = nl ? nl : end;
		if (stop == pos || (stop == pos + 1 && *pos == '\r')) {
			body = nl ? nl + 1 : end;
			break;
		}
		*stop = '\0';
		if (stop > pos && stop[-1] == '\r')
			stop[-1] = '\0';
		char *colon = strchr(pos, ':');
		if (colon && r.n < MAX_HEADERS) {
			*colon = '\0';
			char *v = colon + 1;
			while (*v == ' ')
				v++;
			r.name[r.n] = pos;
			r.value[r.n++] = v;
		}
		pos = nl ? nl + 1 : end;
		body = end;
	}
	size_t blen = (size_t)(end - body);

	struct webhook w;
	if (webhook_init(&w, p, insecure) < 0)
		__builtin_trap();
	if (!insecure || (data[0] & 8))
		for (size_t s = 0; s < sizeof(secrets) / sizeof(*secrets); s++)
			webhook_add_secret(&w, secrets[s], strlen(secrets[s]));
	int matched = -2;
	enum webhook_verdict v = webhook_verify(&w, get, &r, body, blen, &matched);
	if (v == WEBHOOK_OK && w.nsecrets) {
		const char *h;
		switch (p) {
		case WEBHOOK_GITHUB:
			h = get(&r, "X-Hub-Signature-256");
			if (!h || strncmp(h, "sha256=", 7) || !signed_by_a_secret(h + 7, body, blen))
				__builtin_trap();
			break;
		case WEBHOOK_GENERIC:
			h = get(&r, "X-Signature-256");
			if (!h || strncmp(h, "sha256=", 7) || !signed_by_a_secret(h + 7, body, blen))
				__builtin_trap();
			break;
		case WEBHOOK_GITEA:
			h = get(&r, "X-Gitea-Signature");
			if (!h)
				h = get(&r, "X-Forgejo-Signature");
			if (!h || !signed_by_a_secret(h, body, blen))
				__builtin_trap();
			break;
		case WEBHOOK_GITLAB:
			h = get(&r, "X-Gitlab-Token");
			if (!h || (strcmp(h, secrets[0]) && strcmp(h, secrets[1])))
				__builtin_trap();
			break;
		default:
			__builtin_trap();
		}
		if (matched < 0 || (size_t)matched >= w.nsecrets)
			__builtin_trap();
	}
	if (v != WEBHOOK_OK && matched != -1)
		__builtin_trap();
	(void)webhook_verdict_str(v);
	const char *id = webhook_delivery_id(p, get, &r);
	if (id && !webhook_dedupe_seen(&seen, id) && !webhook_dedupe_seen(&seen, id))
		__builtin_trap();	/* just remembered: must be seen now */
	(void)webhook_is_ping(p, get, &r);
	webhook_release(&w);
	free(buf);
	return 0;
}
