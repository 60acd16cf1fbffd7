/* SPDX-License-Identifier: MIT */
/*
 * Push webhooks: which header carries the proof for each provider, how it
 * is checked, and the replay cache. Nothing here reads the body beyond
 * feeding its bytes to HMAC-SHA256; nothing here knows about HTTP servers,
 * so it can be unit-tested and fuzzed alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "http/webhook.h"
#include "lib/err.h"

#define SECRET_FILE_MAX 4096

const char *const webhook_provider_names[] = { "github", "gitlab", "gitea", "generic", NULL };

int webhook_provider_find(const char *name)
{
	for (int i = 0; name && webhook_provider_names[i]; i++)
		if (!strcmp(webhook_provider_names[i], name))
			return i;
	return -1;
}

int webhook_init(struct webhook *w, enum webhook_provider provider, int insecure)
{
	memset(w, 0, sizeof(*w));
	if (sodium_init() < 0)
		return err_set("cannot initialise libsodium");
	w->provider = provider;
	w->insecure = insecure;
	randombytes_buf(w->cmp_key, sizeof(w->cmp_key));
	return 0;
}

void webhook_release(struct webhook *w)
{
	for (size_t i = 0; i < w->nsecrets; i++) {
		sodium_memzero(w->secret[i], w->secret_len[i]);
		free(w->secret[i]);
	}
	w->nsecrets = 0;
	sodium_memzero(w->cmp_key, sizeof(w->cmp_key));
}

int webhook_add_secret(struct webhook *w, const void *secret, size_t len)
{
	if (!len || w->nsecrets == WEBHOOK_MAX_SECRETS)
		return -1;
	w->secret[w->nsecrets] = xmalloc(len);
	memcpy(w->secret[w->nsecrets], secret, len);
	w->secret_len[w->nsecrets++] = len;
	return 0;
}

/* Read a small root-owned file that holds secrets; the whole content. */
static char *read_secret_file(const char *file, const char *key, size_t *len)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err_set_errno("'%s': cannot read '%s'", key, file);
		return NULL;
	}
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) < 0) {
		err_set_errno("'%s': cannot stat '%s'", key, file);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("'%s': '%s' is not a regular file", key, file);
		goto fail;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		err_set("'%s': '%s' is owned by uid %u, not by root or the agent's user; refusing it",
			key, file, (unsigned)st.st_uid);
		goto fail;
	}
	if (st.st_mode & 077) {
		err_set("'%s': '%s' is accessible by group or others (mode %04o); chmod 600 it",
			key, file, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > SECRET_FILE_MAX) {
		err_set("'%s': '%s' is larger than %d bytes", key, file, SECRET_FILE_MAX);
		goto fail;
	}
	buf = xmalloc(SECRET_FILE_MAX + 1);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, SECRET_FILE_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set_errno("'%s': cannot read '%s'", key, file);
			goto fail;
		}
		if (r == 0 || (n += (size_t)r) == SECRET_FILE_MAX)
			break;
	}
	buf[n] = '\0';
	close(fd);
	*len = n;
	return buf;
fail:
	if (buf) {
		sodium_memzero(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	close(fd);
	return NULL;
}

int webhook_load_secrets(struct webhook *w, const char *file)
{
	size_t n;
	char *buf = read_secret_file(file, "webhook.secretFile", &n);
	if (!buf)
		return -1;
	int ret = 0;
	char *line = buf, *end = buf + n;
	while (line < end && !ret) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *stop = nl ? nl : end;
		char *e = stop;
		while (e > line && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (e > line && webhook_add_secret(w, line, (size_t)(e - line)) < 0)
			ret = err_set("'webhook.secretFile': '%s' holds more than %d secrets", file,
				      WEBHOOK_MAX_SECRETS);
		line = stop + 1;
	}
	if (!ret && !w->nsecrets)
		ret = err_set("'webhook.secretFile': '%s' is empty; set 'webhook.insecure: true' to accept"
			      " unsigned deliveries", file);
	sodium_memzero(buf, SECRET_FILE_MAX + 1);
	free(buf);
	return ret;
}

int webhook_rotate(struct webhook *w, const char *file, int insecure)
{
	struct webhook nw;
	if (!file && !insecure)
		return err_set("'webhook.secretFile' is required (or set 'webhook.insecure: true')");
	if (webhook_init(&nw, w->provider, insecure) < 0)
		return -1;
	if (file && webhook_load_secrets(&nw, file) < 0) {
		webhook_release(&nw);
		return -1;
	}
	memcpy(&nw.seen, &w->seen, sizeof(nw.seen));
	webhook_release(w);
	*w = nw;
	sodium_memzero(nw.cmp_key, sizeof(nw.cmp_key));
	return 0;
}

char *secret_file_read(const char *file, const char *key, size_t *len)
{
	size_t n;
	char *buf = read_secret_file(file, key, &n);
	if (!buf)
		return NULL;
	size_t e = strcspn(buf, "\n");
	while (e > 0 && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r'))
		e--;
	if (!e) {
		sodium_memzero(buf, SECRET_FILE_MAX + 1);
		free(buf);
		err_set("'%s': '%s' is empty", key, file);
		return NULL;
	}
	sodium_memzero(buf + e, SECRET_FILE_MAX + 1 - e);
	*len = e;
	return buf;
}

void hmac_sha256(unsigned char out[32], const void *key, size_t klen, const void *data, size_t len)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, data, len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

int secret_equal(const unsigned char key[32], const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char ma[32], mb[32];
	hmac_sha256(ma, key, 32, a, alen);
	hmac_sha256(mb, key, 32, b, blen);
	return sodium_memcmp(ma, mb, 32) == 0;
}

/* Exactly 64 hex digits (either case) -> 32 bytes; -1 otherwise. */
static int hex32(const char *s, size_t len, unsigned char out[32])
{
	size_t bin = 0;
	const char *end = NULL;
	if (len != 64)
		return -1;
	if (sodium_hex2bin(out, 32, s, len, NULL, &bin, &end) < 0 || bin != 32 || end != s + len)
		return -1;
	return 0;
}

static const char *sig_header(enum webhook_provider p, webhook_header_fn get, void *ctx)
{
	switch (p) {
	case WEBHOOK_GITHUB:
		return get(ctx, "X-Hub-Signature-256");
	case WEBHOOK_GITLAB:
		return get(ctx, "X-Gitlab-Token");
	case WEBHOOK_GITEA: {
		const char *v = get(ctx, "X-Gitea-Signature");
		return v ? v : get(ctx, "X-Forgejo-Signature");
	}
	case WEBHOOK_GENERIC:
		return get(ctx, "X-Signature-256");
	default:
		return NULL;
	}
}

enum webhook_verdict webhook_verify(const struct webhook *w, webhook_header_fn get, void *ctx,
				    const void *body, size_t len, int *matched)
{
	if (matched)
		*matched = -1;
	if (w->insecure && !w->nsecrets)
		return WEBHOOK_OK;
	const char *v = sig_header(w->provider, get, ctx);
	if (!v || !*v)
		return WEBHOOK_MISSING;
	int ok = 0, which = -1;
	if (w->provider == WEBHOOK_GITLAB) {
		/* the token is the secret itself: compare MACs of both, never the strings */
		for (size_t i = 0; i < w->nsecrets; i++)
			if (secret_equal(w->cmp_key, v, strlen(v), w->secret[i], w->secret_len[i]) && !ok) {
				ok = 1;
				which = (int)i;
			}
	} else {
		/* the algorithm comes from the prefix and must be sha256; bare
		 * hex only for Gitea/Forgejo, which send no prefix */
		const char *hex = v;
		if (w->provider != WEBHOOK_GITEA) {
			if (strncmp(v, "sha256=", 7))
				return WEBHOOK_MALFORMED;
			hex = v + 7;
		}
		unsigned char want[32], got[32];
		if (hex32(hex, strlen(hex), got) < 0)
			return WEBHOOK_MALFORMED;
		for (size_t i = 0; i < w->nsecrets; i++) {
			hmac_sha256(want, w->secret[i], w->secret_len[i], body, len);
			if (sodium_memcmp(want, got, 32) == 0 && !ok) {
				ok = 1;
				which = (int)i;
			}
		}
		sodium_memzero(want, sizeof(want));
	}
	if (!ok)
		return WEBHOOK_MISMATCH;
	if (matched)
		*matched = which;
	return WEBHOOK_OK;
}

const char *webhook_verdict_str(enum webhook_verdict v)
{
	switch (v) {
	case WEBHOOK_OK:
		return "valid";
	case WEBHOOK_MISSING:
		return "no signature or token header";
	case WEBHOOK_MALFORMED:
		return "malformed signature (sha256 and 64 hex digits expected)";
	case WEBHOOK_MISMATCH:
		return "signature or token does not match any configured secret";
	}
	return "?";
}

const char *webhook_delivery_id(enum webhook_provider p, webhook_header_fn get, void *ctx)
{
	const char *v = NULL;
	switch (p) {
	case WEBHOOK_GITHUB:
		v = get(ctx, "X-GitHub-Delivery");
		break;
	case WEBHOOK_GITLAB:
		v = get(ctx, "X-Gitlab-Event-UUID");
		break;
	case WEBHOOK_GITEA:
		v = get(ctx, "X-Gitea-Delivery");
		if (!v)
			v = get(ctx, "X-Forgejo-Delivery");
		break;
	case WEBHOOK_GENERIC:
		v = get(ctx, "X-Delivery-Id");
		break;
	default:
		break;
	}
	return v && *v ? v : NULL;
}

int webhook_is_ping(enum webhook_provider p, webhook_header_fn get, void *ctx)
{
	if (p != WEBHOOK_GITHUB)
		return 0;
	const char *ev = get(ctx, "X-GitHub-Event");
	return ev && !strcasecmp(ev, "ping");
}

int webhook_dedupe_seen(struct webhook_dedupe *d, const char *id)
{
	unsigned char h[16];
	crypto_generichash(h, sizeof(h), (const unsigned char *)id, strlen(id), NULL, 0);
	for (size_t i = 0; i < d->n; i++)
		if (!memcmp(d->id[i], h, sizeof(h)))
			return 1;
	memcpy(d->id[d->next], h, sizeof(h));
	d->next = (d->next + 1) % WEBHOOK_DEDUPE_SLOTS;
	if (d->n < WEBHOOK_DEDUPE_SLOTS)
		d->n++;
	return 0;
}
