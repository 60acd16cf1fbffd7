/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for webhook verification: HMAC-SHA256 vectors (GitHub's own,
 * and ones computed with `openssl dgst -sha256 -hmac`), each provider's
 * header and prefix rules, token comparison, rotation, the replay cache,
 * and the secret file checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "http/webhook.h"

#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#define GITEA_SECRET "s3cr3t-gitea"
#define GITEA_BODY "{\"ref\":\"refs/heads/main\"}"
#define GITEA_SIG "8300804ae4599ea911c6cdcd7d4a9a14e9a1f4c27dcd5ac678354082150a5f7a"
#define ROT_BODY "{\"zen\":\"Design for failure.\"}"
#define ROT_SIG "c9545a3e69e6fd663af4142ca2d2539bf3a27f34d8516effbb1c7f59597c15d0"

/* A fake request: up to 8 headers. */
struct hdrs {
	const char *name[8], *value[8];
	int n;
};

static const char *get(void *ctx, const char *name)
{
	struct hdrs *h = ctx;
	for (int i = 0; i < h->n; i++)
		if (!strcasecmp(h->name[i], name))
			return h->value[i];
	return NULL;
}

static void set(struct hdrs *h, const char *name, const char *value)
{
	h->name[h->n] = name;
	h->value[h->n++] = value;
}

static void setup_hook(struct webhook *w, enum webhook_provider p, const char *secret)
{
	assert_int_equal(webhook_init(w, p, 0), 0);
	assert_int_equal(webhook_add_secret(w, secret, strlen(secret)), 0);
}

static void test_webhook__hmac_vectors(void **state)
{
	unsigned char mac[32];
	char hex[65];
	(void)state;
	hmac_sha256(mac, GH_SECRET, strlen(GH_SECRET), GH_BODY, strlen(GH_BODY));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(hex, GH_SIG);
	hmac_sha256(mac, "k", 1, "", 0);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(hex, "8bb990c40a7d61cb97597a942125025be50ac8beb74436e3735b98893a7f6620");
}

static void test_webhook__github(void **state)
{
	struct webhook w;
	int matched = -2;
	(void)state;
	setup_hook(&w, WEBHOOK_GITHUB, GH_SECRET);
	struct hdrs ok = { 0 };
	set(&ok, "X-Hub-Signature-256", "sha256=" GH_SIG);
	assert_int_equal(webhook_verify(&w, get, &ok, GH_BODY, strlen(GH_BODY), &matched), WEBHOOK_OK);
	assert_int_equal(matched, 0);
	/* upper-case hex is the same 32 bytes */
	struct hdrs upper = { 0 };
	char up[80] = "sha256=";
	for (size_t i = 0; i < 64; i++)
		up[7 + i] = (char)(GH_SIG[i] >= 'a' ? GH_SIG[i] - 32 : GH_SIG[i]);
	set(&upper, "x-hub-signature-256", up);
	assert_int_equal(webhook_verify(&w, get, &upper, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_OK);
	/* (b) no header */
	struct hdrs none = { 0 };
	assert_int_equal(webhook_verify(&w, get, &none, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MISSING);
	/* (c) the legacy sha1 header only */
	struct hdrs sha1 = { 0 };
	set(&sha1, "X-Hub-Signature", "sha1=0123456789012345678901234567890123456789");
	assert_int_equal(webhook_verify(&w, get, &sha1, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MISSING);
	struct hdrs sha1b = { 0 };
	set(&sha1b, "X-Hub-Signature-256", "sha1=0123456789012345678901234567890123456789");
	assert_int_equal(webhook_verify(&w, get, &sha1b, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MALFORMED);
	/* (d) 63 hex digits, 65, non-hex, bare hex (Gitea style) */
	struct hdrs short_ = { 0 };
	set(&short_, "X-Hub-Signature-256", "sha256=" "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1");
	assert_int_equal(webhook_verify(&w, get, &short_, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MALFORMED);
	struct hdrs long_ = { 0 };
	set(&long_, "X-Hub-Signature-256", "sha256=" GH_SIG "7");
	assert_int_equal(webhook_verify(&w, get, &long_, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MALFORMED);
	struct hdrs nonhex = { 0 };
	set(&nonhex, "X-Hub-Signature-256", "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	assert_int_equal(webhook_verify(&w, get, &nonhex, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MALFORMED);
	struct hdrs bare = { 0 };
	set(&bare, "X-Hub-Signature-256", GH_SIG);
	assert_int_equal(webhook_verify(&w, get, &bare, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MALFORMED);
	/* (e) the same JSON re-serialised, and one byte more */
	assert_int_equal(webhook_verify(&w, get, &ok, "Hello,  World!", 14, NULL), WEBHOOK_MISMATCH);
	assert_int_equal(webhook_verify(&w, get, &ok, GH_BODY "\n", strlen(GH_BODY) + 1, NULL),
			 WEBHOOK_MISMATCH);
	webhook_release(&w);
	/* (f) a valid HMAC made with another secret */
	setup_hook(&w, WEBHOOK_GITHUB, "It's a Secret to Nobody");
	assert_int_equal(webhook_verify(&w, get, &ok, GH_BODY, strlen(GH_BODY), NULL), WEBHOOK_MISMATCH);
	webhook_release(&w);
}

static void test_webhook__provider_headers(void **state)
{
	struct webhook w;
	(void)state;
	/* Gitea: bare hex; the sha256= prefix is GitHub's, not Gitea's */
	setup_hook(&w, WEBHOOK_GITEA, GITEA_SECRET);
	struct hdrs g = { 0 }, f = { 0 }, pre = { 0 }, gh = { 0 };
	set(&g, "X-Gitea-Signature", GITEA_SIG);
	set(&f, "X-Forgejo-Signature", GITEA_SIG);
	set(&pre, "X-Gitea-Signature", "sha256=" GITEA_SIG);
	set(&gh, "X-Hub-Signature-256", "sha256=" GITEA_SIG);
	assert_int_equal(webhook_verify(&w, get, &g, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_OK);
	assert_int_equal(webhook_verify(&w, get, &f, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_OK);
	assert_int_equal(webhook_verify(&w, get, &pre, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_MALFORMED);
	/* never sniffed: GitHub's header means nothing to a Gitea receiver */
	assert_int_equal(webhook_verify(&w, get, &gh, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_MISSING);
	webhook_release(&w);
	/* generic: X-Signature-256 with the prefix */
	setup_hook(&w, WEBHOOK_GENERIC, GITEA_SECRET);
	struct hdrs gen = { 0 };
	set(&gen, "X-Signature-256", "sha256=" GITEA_SIG);
	assert_int_equal(webhook_verify(&w, get, &gen, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_OK);
	assert_int_equal(webhook_verify(&w, get, &g, GITEA_BODY, strlen(GITEA_BODY), NULL), WEBHOOK_MISSING);
	webhook_release(&w);
	/* GitLab: the token itself */
	setup_hook(&w, WEBHOOK_GITLAB, "glpat-0123456789");
	struct hdrs t = { 0 }, last = { 0 }, first = { 0 }, shorter = { 0 }, longer = { 0 }, empty = { 0 };
	set(&t, "X-Gitlab-Token", "glpat-0123456789");
	set(&last, "X-Gitlab-Token", "glpat-0123456788");
	set(&first, "X-Gitlab-Token", "Glpat-0123456789");
	set(&shorter, "X-Gitlab-Token", "glpat-012345678");
	set(&longer, "X-Gitlab-Token", "glpat-01234567890");
	set(&empty, "X-Gitlab-Token", "");
	assert_int_equal(webhook_verify(&w, get, &t, "{}", 2, NULL), WEBHOOK_OK);
	assert_int_equal(webhook_verify(&w, get, &last, "{}", 2, NULL), WEBHOOK_MISMATCH);
	assert_int_equal(webhook_verify(&w, get, &first, "{}", 2, NULL), WEBHOOK_MISMATCH);
	assert_int_equal(webhook_verify(&w, get, &shorter, "{}", 2, NULL), WEBHOOK_MISMATCH);
	assert_int_equal(webhook_verify(&w, get, &longer, "{}", 2, NULL), WEBHOOK_MISMATCH);
	assert_int_equal(webhook_verify(&w, get, &empty, "{}", 2, NULL), WEBHOOK_MISSING);
	webhook_release(&w);
}

static void test_webhook__rotation(void **state)
{
	struct webhook w;
	int matched = -2;
	(void)state;
	setup_hook(&w, WEBHOOK_GITHUB, "old-secret");
	assert_int_equal(webhook_add_secret(&w, "new-secret", 10), 0);
	struct hdrs h = { 0 };
	set(&h, "X-Hub-Signature-256", "sha256=" ROT_SIG);
	assert_int_equal(webhook_verify(&w, get, &h, ROT_BODY, strlen(ROT_BODY), &matched), WEBHOOK_OK);
	assert_int_equal(matched, 1);
	assert_int_equal(webhook_add_secret(&w, "", 0), -1);
	assert_int_equal(webhook_add_secret(&w, "c", 1), 0);
	assert_int_equal(webhook_add_secret(&w, "d", 1), 0);
	assert_int_equal(webhook_add_secret(&w, "e", 1), -1);	/* at most 4 */
	webhook_release(&w);
}

static void test_webhook__insecure(void **state)
{
	struct webhook w;
	struct hdrs none = { 0 };
	(void)state;
	assert_int_equal(webhook_init(&w, WEBHOOK_GITHUB, 1), 0);
	assert_int_equal(webhook_verify(&w, get, &none, "x", 1, NULL), WEBHOOK_OK);
	webhook_release(&w);
}

/* Both comparisons do the same work: a full HMAC of either string and a
 * 32-byte sodium_memcmp. This checks that a difference in the first byte
 * and one in the last byte take the same time within a loose bound (the
 * real guarantee is the code path; the bound only catches an early exit
 * that would dwarf the HMAC). */
static double time_token(struct webhook *w, struct hdrs *h, int n)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		assert_int_equal(webhook_verify(w, get, h, "", 0, NULL), WEBHOOK_MISMATCH);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

static void test_webhook__constant_time(void **state)
{
	struct webhook w;
	static char secret[4097], first[4097], last[4097];
	(void)state;
	memset(secret, 'a', 4096);
	memcpy(first, secret, sizeof(secret));
	memcpy(last, secret, sizeof(secret));
	first[0] = 'b';
	last[4095] = 'b';
	setup_hook(&w, WEBHOOK_GITLAB, secret);
	struct hdrs hf = { 0 }, hl = { 0 };
	set(&hf, "X-Gitlab-Token", first);
	set(&hl, "X-Gitlab-Token", last);
	double best_f = 1e18, best_l = 1e18;
	for (int round = 0; round < 25; round++) {	/* the best of many: a shared machine */
		double f = time_token(&w, &hf, 300), l = time_token(&w, &hl, 300);
		best_f = f < best_f ? f : best_f;
		best_l = l < best_l ? l : best_l;
	}
	double ratio = best_f > best_l ? best_f / best_l : best_l / best_f;
	print_message("first-byte difference %.0f ns, last-byte %.0f ns per 300 (ratio %.2f)\n", best_f,
		      best_l, ratio);
	assert_true(ratio < 1.5);
	/* and a secret compared with itself through the same path */
	unsigned char key[32] = { 1 };
	assert_true(secret_equal(key, "abc", 3, "abc", 3));
	assert_false(secret_equal(key, "abc", 3, "abd", 3));
	assert_false(secret_equal(key, "abc", 3, "abcd", 4));
	assert_false(secret_equal(key, "", 0, "a", 1));
	webhook_release(&w);
}

static void test_webhook__dedupe_eviction(void **state)
{
	static struct webhook_dedupe d;
	char id[64];
	(void)state;
	memset(&d, 0, sizeof(d));
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-0"), 0);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-0"), 1);
	for (int i = 1; i < WEBHOOK_DEDUPE_SLOTS; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		assert_int_equal(webhook_dedupe_seen(&d, id), 0);
	}
	assert_int_equal(d.n, WEBHOOK_DEDUPE_SLOTS);
	/* full: every one is still known */
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-0"), 1);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-255"), 1);
	/* one more evicts the oldest, and only it */
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-256"), 0);
	assert_int_equal(d.n, WEBHOOK_DEDUPE_SLOTS);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-1"), 1);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-256"), 1);
	/* delivery-0 is gone: it is taken as new (and evicts delivery-1) */
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-0"), 0);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-2"), 1);
	assert_int_equal(webhook_dedupe_seen(&d, "delivery-1"), 0);
}

static void test_webhook__delivery_ids(void **state)
{
	struct hdrs h = { 0 };
	(void)state;
	set(&h, "X-GitHub-Delivery", "gh-1");
	set(&h, "X-Gitlab-Event-UUID", "gl-1");
	set(&h, "X-Forgejo-Delivery", "fj-1");
	set(&h, "X-Delivery-Id", "gen-1");
	set(&h, "X-GitHub-Event", "ping");
	assert_string_equal(webhook_delivery_id(WEBHOOK_GITHUB, get, &h), "gh-1");
	assert_string_equal(webhook_delivery_id(WEBHOOK_GITLAB, get, &h), "gl-1");
	assert_string_equal(webhook_delivery_id(WEBHOOK_GITEA, get, &h), "fj-1");
	assert_string_equal(webhook_delivery_id(WEBHOOK_GENERIC, get, &h), "gen-1");
	assert_true(webhook_is_ping(WEBHOOK_GITHUB, get, &h));
	assert_false(webhook_is_ping(WEBHOOK_GITEA, get, &h));
	assert_int_equal(webhook_provider_find("gitea"), WEBHOOK_GITEA);
	assert_int_equal(webhook_provider_find("bitbucket"), -1);
}

static void test_webhook__secret_files(void **state)
{
	char dir[] = "/tmp/dl-webhook-test.XXXXXX";
	char path[256];
	struct webhook w;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("new-secret\r\n\n  \nold-secret  \n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(webhook_init(&w, WEBHOOK_GITHUB, 0), 0);
	assert_int_equal(webhook_load_secrets(&w, path), -1);	/* readable by others */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(webhook_load_secrets(&w, path), 0);
	assert_int_equal(w.nsecrets, 2);
	assert_int_equal(w.secret_len[0], 10);
	assert_memory_equal(w.secret[0], "new-secret", 10);
	assert_memory_equal(w.secret[1], "old-secret", 10);
	webhook_release(&w);
	size_t len = 0;
	char *tok = secret_file_read(path, "apiTokenFile", &len);
	assert_non_null(tok);
	assert_int_equal(len, 10);
	assert_memory_equal(tok, "new-secret", 10);
	free(tok);
	fp = fopen(path, "w");
	fputs("\n", fp);
	fclose(fp);
	assert_int_equal(webhook_init(&w, WEBHOOK_GITHUB, 0), 0);
	assert_int_equal(webhook_load_secrets(&w, path), -1);	/* empty */
	webhook_release(&w);
	assert_null(secret_file_read(path, "apiTokenFile", &len));
	assert_null(secret_file_read(dir, "apiTokenFile", &len));	/* not a regular file */
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webhook__hmac_vectors),
		cmocka_unit_test(test_webhook__github),
		cmocka_unit_test(test_webhook__provider_headers),
		cmocka_unit_test(test_webhook__rotation),
		cmocka_unit_test(test_webhook__insecure),
		cmocka_unit_test(test_webhook__constant_time),
		cmocka_unit_test(test_webhook__dedupe_eviction),
		cmocka_unit_test(test_webhook__delivery_ids),
		cmocka_unit_test(test_webhook__secret_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
