/* SPDX-License-Identifier: MIT */
/* Unit tests for the age format: keys, HKDF, round trips, tampering, files made by age(1). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/*
 * libsodium only to build hostile files by hand (a valid MAC over a bad
 * stream, say); the code under test keeps it behind src/lib/age.c.
 */
#include <sodium.h>
#include "lib/age.h"
#include "lib/buf.h"
#include "lib/err.h"

#define CHUNK 65536
#define TAG 16
/* age_encrypt() takes an array of public keys: the one of an identity */
#define ONE_PK(id) ((const unsigned char(*)[32]) & (id)->pk)

/* The fixture key of tests/unit/data/age/key.txt, made by age-keygen. */
static const char fixture_key[] =
    "# created: 2026-11-26T23:09:39Z\n"
    "# public key: age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh\n"
    "AGE-SECRET-KEY-1UDFW6ZXGDYW90076C2A7PURCV776FA2QNM6M5G5UCD8SWR64W2RQGJRF8K\n";
static const char fixture_rcpt[] = "age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh";

static void parse_one(struct age_identity *id, const char *text)
{
	size_t n = 0;

	assert_int_equal(age_identity_parse(id, 1, &n, text, strlen(text)), 0);
	assert_int_equal(n, 1);
}

static void new_identity(struct age_identity *id)
{
	assert_int_equal(age_identity_generate(id), 0);
}

static unsigned char *pattern(size_t len)
{
	unsigned char *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 31 + (i >> 8));
	return p;
}

/* Decryption must fail with msg (a prefix), leaving out empty. */
static void expect_fail(const struct age_identity *ids, size_t nid, const void *in, size_t len,
			const char *msg)
{
	struct buf out = BUF_INIT;

	buf_adds(&out, "previous contents");
	assert_int_equal(age_decrypt(ids, nid, in, len, &out), -1);
	assert_int_equal(out.len, 0);
	for (size_t i = 0; i < out.cap; i++)
		assert_int_equal(out.ptr[i], 0);
	if (msg && strncmp(err_msg(), msg, strlen(msg)))
		fail_msg("expected '%s', got '%s'", msg, err_msg());
	buf_release(&out);
}

static char *read_fixture(const char *name, size_t *len)
{
	const char *dir = getenv("DL_TEST_DATA");
	char path[4096];
	FILE *fp;
	char *p;
	long n;

	snprintf(path, sizeof(path), "%s/age/%s", dir ? dir : "tests/unit/data", name);
	fp = fopen(path, "rb");
	if (!fp)
		fail_msg("cannot open fixture '%s' (set DL_TEST_DATA)", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
	p[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return p;
}

/* ------------------------------------------------------------------------ */
/* Building files by hand */

static void b64(struct buf *b, const unsigned char *p, size_t n)
{
	char s[256];

	assert_true(n <= 128);
	sodium_bin2base64(s, sizeof(s), p, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	buf_adds(b, s);
}

/* An X25519 stanza wrapping fk for pk, into b. */
static void craft_x25519(struct buf *b, const unsigned char fk[16], const unsigned char pk[32])
{
	unsigned char eph[32], share[32], shared[32], salt[64], wrap[32], body[32];
	static const unsigned char zero[12];
	const char *info = "age-encryption.org/v1/X25519";

	randombytes_buf(eph, sizeof(eph));
	assert_int_equal(crypto_scalarmult_base(share, eph), 0);
	assert_int_equal(crypto_scalarmult(shared, eph, pk), 0);
	memcpy(salt, share, 32);
	memcpy(salt + 32, pk, 32);
	assert_int_equal(age_hkdf_sha256(wrap, 32, shared, 32, salt, 64, info, strlen(info)), 0);
	crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, fk, 16, NULL, 0, NULL, zero, wrap);
	buf_adds(b, "-> X25519 ");
	b64(b, share, 32);
	buf_addch(b, '\n');
	b64(b, body, 32);
	buf_addch(b, '\n');
}

/* Version line, stanzas, MAC with fk, payload nonce; the payload key into key. */
static void craft_header(struct buf *b, const unsigned char fk[16], const char *stanzas,
			 unsigned char key[32])
{
	unsigned char hk[32], mac[32], nonce[16];

	buf_reset(b);
	buf_adds(b, "age-encryption.org/v1\n");
	buf_adds(b, stanzas);
	buf_adds(b, "---");
	assert_int_equal(age_hkdf_sha256(hk, 32, fk, 16, NULL, 0, "header", 6), 0);
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, hk, 32);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)b->ptr, b->len);
	crypto_auth_hmacsha256_final(&st, mac);
	buf_addch(b, ' ');
	b64(b, mac, 32);
	buf_addch(b, '\n');
	randombytes_buf(nonce, 16);
	buf_add(b, nonce, 16);
	assert_int_equal(age_hkdf_sha256(key, 32, fk, 16, nonce, 16, "payload", 7), 0);
}

static void craft_chunk(struct buf *b, const unsigned char key[32], uint64_t counter, int last,
			const unsigned char *p, size_t n)
{
	unsigned char nonce[12] = {0};
	unsigned long long clen;

	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = (unsigned char)last;
	buf_grow(b, n + TAG);
	crypto_aead_chacha20poly1305_ietf_encrypt((unsigned char *)b->ptr + b->len, &clen, p, n,
						  NULL, 0, NULL, nonce, key);
	b->len += (size_t)clen;
}

/* ------------------------------------------------------------------------ */

static void test_age__hkdf_rfc5869(void **state)
{
	/* RFC 5869, A.1, test case 1 */
	static const unsigned char okm[42] = {
	    0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
	    0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
	    0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65,
	};
	unsigned char ikm[22], salt[13], info[10], out[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (unsigned char)i;
	for (int i = 0; i < 10; i++)
		info[i] = (unsigned char)(0xf0 + i);
	assert_int_equal(age_hkdf_sha256(out, sizeof(out), ikm, sizeof(ikm), salt, sizeof(salt),
					 info, sizeof(info)),
			 0);
	assert_memory_equal(out, okm, sizeof(okm));
	assert_int_equal(age_hkdf_sha256(out, 255 * 32 + 1, ikm, 1, NULL, 0, NULL, 0), -1);
}

static void test_age__keys_known_vector(void **state)
{
	struct age_identity id;
	char rcpt[AGE_RECIPIENT_SIZE];
	unsigned char pk[32];

	(void)state;
	/* the secret key age-keygen wrote derives the public key it printed */
	parse_one(&id, fixture_key);
	age_recipient_format(id.pk, rcpt);
	assert_string_equal(rcpt, fixture_rcpt);
	assert_int_equal(age_recipient_parse(fixture_rcpt, pk), 0);
	assert_memory_equal(pk, id.pk, 32);

	/* the example pair of the age specification (c2sp.org/age) */
	parse_one(&id,
		  "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX");
	age_recipient_format(id.pk, rcpt);
	assert_string_equal(rcpt, "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(id.sk[i], 0x42);
}

static void test_age__keys_round_trip(void **state)
{
	struct age_identity id, back[2];
	struct buf text = BUF_INIT;
	char rcpt[AGE_RECIPIENT_SIZE];
	unsigned char pk[32];
	size_t n = 0;

	(void)state;
	for (int round = 0; round < 50; round++) {
		new_identity(&id);
		age_recipient_format(id.pk, rcpt);
		assert_int_equal(strlen(rcpt), 62);
		assert_int_equal(strncmp(rcpt, "age1", 4), 0);
		assert_int_equal(age_recipient_parse(rcpt, pk), 0);
		assert_memory_equal(pk, id.pk, 32);
		buf_reset(&text);
		assert_int_equal(age_identity_format(&id, &text), 0);
		assert_non_null(strstr(text.ptr, "# public key: "));
		assert_non_null(strstr(text.ptr, rcpt));
		assert_non_null(strstr(text.ptr, "\nAGE-SECRET-KEY-1"));
		assert_int_equal(age_identity_parse(back, 2, &n, text.ptr, text.len), 0);
		assert_int_equal(n, 1);
		assert_memory_equal(&back[0], &id, sizeof(id));
	}
	age_buf_wipe(&text);
	assert_null(text.ptr);
}

static void test_age__keys_rejected(void **state)
{
	struct age_identity ids[2];
	unsigned char pk[32];
	char s[256];
	size_t n = 0;
	const char *sk = strstr(fixture_key, "AGE-SECRET-KEY-1");

	(void)state;
	/* mixed case, upper-case recipient, bad checksum, wrong HRP, bad length */
	assert_int_equal(age_recipient_parse(
			     "Age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh", pk),
			 -1);
	assert_int_equal(age_recipient_parse(
			     "age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rJh", pk),
			 -1);
	assert_int_equal(age_recipient_parse(
			     "AGE1S8P3ZUHDMHVP7RMXUAA0L0ZQ0D9TME74UNKXTG34NPDS9HNV5EJSKT6RJH", pk),
			 -1);
	assert_int_equal(age_recipient_parse(
			     "age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjj", pk),
			 -1);
	assert_int_equal(age_recipient_parse(
			     "age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rj", pk),
			 -1);
	assert_int_equal(age_recipient_parse(
			     "agf1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh", pk),
			 -1);
	assert_int_equal(age_recipient_parse("", pk), -1);
	assert_int_equal(age_recipient_parse("age1", pk), -1);
	/* a 'b' is not in the Bech32 alphabet */
	assert_int_equal(age_recipient_parse(
			     "age1b8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh", pk),
			 -1);

	/* identities: lower case, one flipped character, a comment only */
	snprintf(s, sizeof(s), "%s", sk);
	for (char *p = s; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	assert_int_equal(age_identity_parse(ids, 2, &n, s, strlen(s)), -1);
	assert_non_null(strstr(err_msg(), "line 1"));
	assert_null(strstr(err_msg(), "age-secret-key"));
	snprintf(s, sizeof(s), "# hi\n\n%s", sk);
	s[30] = s[30] == 'Q' ? 'P' : 'Q';
	assert_int_equal(age_identity_parse(ids, 2, &n, s, strlen(s)), -1);
	assert_non_null(strstr(err_msg(), "line 3"));
	assert_int_equal(age_identity_parse(ids, 2, &n, "# nothing\n", 10), -1);
	assert_string_equal(err_msg(), "age: no identity in the identity file");
	assert_int_equal(age_identity_parse(ids, 2, &n, "", 0), -1);

	/* several identities, CRLF and blanks; too many */
	snprintf(s, sizeof(s), "  %.74s \r\n%.74s\n", sk, sk);
	assert_int_equal(age_identity_parse(ids, 2, &n, s, strlen(s)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(age_identity_parse(ids, 1, &n, s, strlen(s)), -1);
	assert_non_null(strstr(err_msg(), "more than 1"));
}

static void round_trip(size_t len, int armor)
{
	struct age_identity id;
	struct buf ct = BUF_INIT, pt = BUF_INIT;
	unsigned char *data = pattern(len);
	size_t chunks = len ? (len + CHUNK - 1) / CHUNK : 1;

	new_identity(&id);
	assert_int_equal(age_encrypt(ONE_PK(&id), 1, data, len, armor, &ct), 0);
	if (!armor) {
		/* header, nonce, then each chunk grows by its tag */
		const char *mac = strstr(ct.ptr, "\n--- ");

		assert_non_null(mac);
		assert_int_equal(ct.len,
				 (size_t)(mac - ct.ptr) + 5 + 43 + 1 + 16 + len + chunks * TAG);
	} else {
		assert_int_equal(strncmp(ct.ptr, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35), 0);
		assert_string_equal(ct.ptr + ct.len - 33, "-----END AGE ENCRYPTED FILE-----\n");
	}
	assert_int_equal(age_decrypt(&id, 1, ct.ptr, ct.len, &pt), 0);
	assert_int_equal(pt.len, len);
	if (len)
		assert_memory_equal(pt.ptr, data, len);
	free(data);
	buf_release(&ct);
	age_buf_wipe(&pt);
}

static void test_age__round_trip_sizes(void **state)
{
	static const size_t sizes[] = {0, 1, 47, 48, 49, 65535, 65536, 65537, 131072, 200000};

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip(sizes[i], 0);
		round_trip(sizes[i], 1);
	}
}

/* A small file to damage: binary, 10 bytes of plaintext. */
static void small_file(struct age_identity *id, struct buf *ct, int armor)
{
	new_identity(id);
	assert_int_equal(age_encrypt(ONE_PK(id), 1, "0123456789", 10, armor, ct), 0);
}

static void test_age__tamper_every_byte(void **state)
{
	static const unsigned char flips[] = {0x01, 0x80, 0xff, 0x20};
	struct age_identity id;
	struct buf ct = BUF_INIT;

	(void)state;
	small_file(&id, &ct, 0);
	for (size_t i = 0; i < ct.len; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			ct.ptr[i] ^= (char)flips[f];
			expect_fail(&id, 1, ct.ptr, ct.len, "age: ");
			assert_null(strstr(err_msg(), "0123456789"));
			ct.ptr[i] ^= (char)flips[f];
		}
	}
	/* armored: every byte inside the armor (blanks around it are allowed) */
	small_file(&id, &ct, 1);
	for (size_t i = 0; i + 1 < ct.len; i++) {
		ct.ptr[i] ^= 0x01;
		expect_fail(&id, 1, ct.ptr, ct.len, "age: ");
		ct.ptr[i] ^= 0x01;
	}
	buf_release(&ct);
}

static void test_age__truncate_every_length(void **state)
{
	struct age_identity id;
	struct buf ct = BUF_INIT, pt = BUF_INIT;

	(void)state;
	for (int armor = 0; armor <= 1; armor++) {
		small_file(&id, &ct, armor);
		assert_int_equal(age_decrypt(&id, 1, ct.ptr, ct.len, &pt), 0);
		/* the armor's final newline is optional */
		for (size_t n = 0; n < ct.len - (size_t)armor; n++)
			expect_fail(&id, 1, ct.ptr, n, "age: ");
	}
	/* cut exactly after a full chunk that is not the last */
	new_identity(&id);
	{
		unsigned char *data = pattern(2 * CHUNK);
		const char *mac;
		size_t hdr;

		assert_int_equal(age_encrypt(ONE_PK(&id), 1, data, 2 * CHUNK, 0, &ct), 0);
		mac = strstr(ct.ptr, "\n--- ");
		hdr = (size_t)(mac - ct.ptr) + 49;
		expect_fail(&id, 1, ct.ptr, hdr + 16 + CHUNK + TAG, "age: payload is truncated");
		expect_fail(&id, 1, ct.ptr, hdr + 16, "age: payload is truncated");
		expect_fail(&id, 1, ct.ptr, hdr + 10, "age: payload is truncated");
		expect_fail(&id, 1, ct.ptr, hdr, "age: payload is truncated");
		expect_fail(&id, 1, ct.ptr, ct.len - 1, "age: payload authentication failed");
		free(data);
	}
	buf_release(&ct);
	buf_release(&pt);
}

static void test_age__trailing_data(void **state)
{
	struct age_identity id;
	struct buf ct = BUF_INIT;
	unsigned char *data = pattern(CHUNK);

	(void)state;
	small_file(&id, &ct, 0);
	buf_addch(&ct, 'x');
	expect_fail(&id, 1, ct.ptr, ct.len, "age: payload authentication failed");
	/* a full final chunk and more: the final chunk is found and named */
	assert_int_equal(age_encrypt(ONE_PK(&id), 1, data, CHUNK, 0, &ct), 0);
	buf_add(&ct, data, 17);
	expect_fail(&id, 1, ct.ptr, ct.len, "age: trailing data after the payload");
	/* armor: anything but blanks after END */
	small_file(&id, &ct, 1);
	buf_adds(&ct, " \r\n\t\n");
	{
		struct buf pt = BUF_INIT;

		assert_int_equal(age_decrypt(&id, 1, ct.ptr, ct.len, &pt), 0);
		assert_string_equal(pt.ptr, "0123456789");
		buf_release(&pt);
	}
	buf_adds(&ct, "x\n");
	expect_fail(&id, 1, ct.ptr, ct.len, "age: trailing data after the armored file");
	free(data);
	buf_release(&ct);
}

static void test_age__wrong_identity(void **state)
{
	struct age_identity id, other[2];
	struct buf ct = BUF_INIT;

	(void)state;
	small_file(&id, &ct, 0);
	new_identity(&other[0]);
	new_identity(&other[1]);
	expect_fail(other, 2, ct.ptr, ct.len, "age: no identity matches any recipient");
	expect_fail(other, 0, ct.ptr, ct.len, "age: no identity matches any recipient");
	buf_release(&ct);
}

static void test_age__multiple_recipients(void **state)
{
	struct age_identity ids[3], stranger, pair[2];
	unsigned char pks[3][32];
	struct buf ct = BUF_INIT, pt = BUF_INIT;

	(void)state;
	for (int i = 0; i < 3; i++) {
		new_identity(&ids[i]);
		memcpy(pks[i], ids[i].pk, 32);
	}
	assert_int_equal(age_encrypt((const unsigned char(*)[32])pks, 3, "shared", 6, 0, &ct), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(age_decrypt(&ids[i], 1, ct.ptr, ct.len, &pt), 0);
		assert_string_equal(pt.ptr, "shared");
	}
	/* the second identity of a list matches */
	new_identity(&stranger);
	pair[0] = stranger;
	pair[1] = ids[2];
	assert_int_equal(age_decrypt(pair, 2, ct.ptr, ct.len, &pt), 0);
	assert_string_equal(pt.ptr, "shared");
	expect_fail(&stranger, 1, ct.ptr, ct.len, "age: no identity matches any recipient");
	assert_int_equal(age_encrypt(NULL, 0, "x", 1, 0, &ct), -1);
	assert_string_equal(err_msg(), "age: no recipients");
	buf_release(&ct);
	age_buf_wipe(&pt);
}

static void test_age__armor(void **state)
{
	struct age_identity id;
	struct buf ct = BUF_INIT, pt = BUF_INIT, alt = BUF_INIT;
	unsigned char *data = pattern(1000);

	(void)state;
	new_identity(&id);
	assert_int_equal(age_encrypt(ONE_PK(&id), 1, data, 1000, 1, &ct), 0);
	/* every line 64 columns but the last */
	for (const char *p = strchr(ct.ptr, '\n') + 1; strncmp(p, "-----END", 8);) {
		const char *nl = strchr(p, '\n');

		if (strncmp(nl + 1, "-----END", 8))
			assert_int_equal(nl - p, 64);
		else
			assert_true(nl - p <= 64 && nl - p > 0);
		p = nl + 1;
	}
	/* blanks before and after, CRLF line endings */
	buf_adds(&alt, "\n \t\r\n");
	for (size_t i = 0; i < ct.len; i++) {
		if (ct.ptr[i] == '\n')
			buf_addch(&alt, '\r');
		buf_addch(&alt, ct.ptr[i]);
	}
	buf_adds(&alt, "\n\n");
	assert_int_equal(age_decrypt(&id, 1, alt.ptr, alt.len, &pt), 0);
	assert_int_equal(pt.len, 1000);
	assert_memory_equal(pt.ptr, data, 1000);
	/* END without its newline */
	assert_int_equal(age_decrypt(&id, 1, ct.ptr, ct.len - 1, &pt), 0);

	/* a short line in the middle, a long line, a blank line, a bad marker */
	buf_reset(&alt);
	buf_add(&alt, ct.ptr, ct.len);
	alt.ptr[35 + 10] = '\n';
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_add(&alt, ct.ptr, 35 + 64);
	buf_add(&alt, ct.ptr + 35 + 65, ct.len - 35 - 65);
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_add(&alt, ct.ptr, 35);
	buf_addch(&alt, '\n');
	buf_add(&alt, ct.ptr + 35, ct.len - 35);
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_adds(&alt, "x-----BEGIN AGE ENCRYPTED FILE-----\n");
	expect_fail(&id, 1, alt.ptr, alt.len, "age: input is not an age file");
	buf_reset(&alt);
	buf_adds(&alt, "  -----BEGIN AGE ENCRYPTED FILE-----\n");
	buf_add(&alt, ct.ptr + 35, ct.len - 35);
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_adds(&alt, "-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n");
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	/* padding that is not canonical */
	buf_reset(&alt);
	buf_adds(&alt,
		 "-----BEGIN AGE ENCRYPTED FILE-----\nYR==\n-----END AGE ENCRYPTED FILE-----\n");
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_adds(&alt,
		 "-----BEGIN AGE ENCRYPTED FILE-----\nYQ\n-----END AGE ENCRYPTED FILE-----\n");
	expect_fail(&id, 1, alt.ptr, alt.len, "age: armor is malformed");
	buf_reset(&alt);
	buf_adds(&alt,
		 "-----BEGIN AGE ENCRYPTED FILE-----\nZm9v\n-----END AGE ENCRYPTED FILE-----\n");
	expect_fail(&id, 1, alt.ptr, alt.len, "age: input is not an age file");
	free(data);
	buf_release(&ct);
	buf_release(&alt);
	age_buf_wipe(&pt);
}

static void test_age__not_age(void **state)
{
	struct age_identity id;

	(void)state;
	new_identity(&id);
	expect_fail(&id, 1, "", 0, "age: input is empty");
	expect_fail(&id, 1, "hello world\n", 12, "age: input is not an age file");
	expect_fail(&id, 1, "age-encryption.org/v2\n", 22, "age: unsupported age format version");
	expect_fail(&id, 1, "age-encryption.org/v1\r\n-> X", 27, "age: header has CRLF");
	expect_fail(&id, 1, "age-enc", 7, "age: header is truncated");
	expect_fail(&id, 1, "age-encryption.org/v1\n--- AAAA\n", 31, "age: header is malformed");
}

static void test_age__oversized(void **state)
{
	const unsigned char(*pk)[32];
	struct age_identity id;
	struct buf out = BUF_INIT, pt = BUF_INIT;
	size_t big = AGE_MAX_INPUT + 1;
	char *p = calloc(1, big);

	(void)state;
	assert_non_null(p);
	new_identity(&id);
	pk = ONE_PK(&id);
	assert_int_equal(age_encrypt(pk, 1, p, big, 0, &out), -1);
	assert_int_equal(out.len, 0);
	/* exactly 64 MiB of plaintext does not fit with its header and tags */
	assert_int_equal(age_encrypt(pk, 1, p, AGE_MAX_INPUT, 0, &out), -1);
	assert_string_equal(err_msg(),
			    "age: plaintext too large (the age file would exceed 64 MiB)");
	/* nor do 48 MiB once armored */
	assert_int_equal(age_encrypt(pk, 1, p, 48u << 20, 1, &out), -1);
	assert_int_equal(out.len, 0);
	memcpy(p, "age-encryption.org/v1\n", 22);
	expect_fail(&id, 1, p, big, "age: ciphertext larger than 64 MiB");
	/* the largest files that fit round-trip */
	assert_int_equal(age_encrypt(pk, 1, p, AGE_MAX_INPUT - 32768, 0, &out), 0);
	assert_true(out.len <= AGE_MAX_INPUT);
	assert_int_equal(age_decrypt(&id, 1, out.ptr, out.len, &pt), 0);
	assert_int_equal(pt.len, AGE_MAX_INPUT - 32768);
	assert_int_equal(age_encrypt(pk, 1, p, 47u << 20, 1, &out), 0);
	assert_true(out.len <= AGE_MAX_INPUT);
	assert_int_equal(age_decrypt(&id, 1, out.ptr, out.len, &pt), 0);
	assert_int_equal(pt.len, 47u << 20);
	free(p);
	buf_release(&out);
	buf_release(&pt);
}

static void test_age__fixtures_from_age_cli(void **state)
{
	struct age_identity ids[AGE_MAX_IDENTITIES];
	struct buf pt = BUF_INIT;
	size_t klen, tlen, clen, nid = 0;
	char *key = read_fixture("key.txt", &klen);
	char *text = read_fixture("hello.txt", &tlen);
	static const char *const files[] = {"hello.age", "hello.age.asc"};

	(void)state;
	assert_int_equal(age_identity_parse(ids, AGE_MAX_IDENTITIES, &nid, key, klen), 0);
	assert_int_equal(nid, 1);
	for (size_t i = 0; i < 2; i++) {
		char *ct = read_fixture(files[i], &clen);

		assert_int_equal(age_decrypt(ids, nid, ct, clen, &pt), 0);
		assert_int_equal(pt.len, tlen);
		assert_memory_equal(pt.ptr, text, tlen);
		free(ct);
	}
	{
		char *ct = read_fixture("empty.age", &clen);

		assert_int_equal(age_decrypt(ids, nid, ct, clen, &pt), 0);
		assert_int_equal(pt.len, 0);
		free(ct);
	}
	{
		char *ct = read_fixture("scrypt.age", &clen);

		expect_fail(ids, nid, ct, clen,
			    "age: passphrase-encrypted age files are not supported");
		free(ct);
	}
	free(key);
	free(text);
	age_buf_wipe(&pt);
}

/* Files with a valid MAC (so only the stanza or stream is wrong). */
static void test_age__crafted(void **state)
{
	struct age_identity id;
	unsigned char fk[16], key[32], zero[32] = {0};
	unsigned char *data = pattern(CHUNK);
	struct buf st = BUF_INIT, f = BUF_INIT, pt = BUF_INIT;

	(void)state;
	new_identity(&id);
	randombytes_buf(fk, sizeof(fk));

	/* the hand-made file is right: unknown stanzas around X25519 are skipped */
	buf_adds(&st, "-> grease-1 x)y *\n");
	b64(&st, data, 48);
	buf_adds(&st, "\n\n");
	craft_x25519(&st, fk, id.pk);
	buf_adds(&st, "-> example.com/other\n");
	b64(&st, data, 10);
	buf_addch(&st, '\n');
	craft_header(&f, fk, st.ptr, key);
	craft_chunk(&f, key, 0, 1, data, 5);
	assert_int_equal(age_decrypt(&id, 1, f.ptr, f.len, &pt), 0);
	assert_int_equal(pt.len, 5);

	/* a full chunk, then an empty final chunk */
	craft_header(&f, fk, st.ptr, key);
	craft_chunk(&f, key, 0, 0, data, CHUNK);
	craft_chunk(&f, key, 1, 1, data, 0);
	expect_fail(&id, 1, f.ptr, f.len, "age: payload ends with an empty chunk");
	/* a short chunk that is not marked final */
	craft_header(&f, fk, st.ptr, key);
	craft_chunk(&f, key, 0, 0, data, 100);
	expect_fail(&id, 1, f.ptr, f.len, "age: payload authentication failed");
	/* chunks out of order */
	craft_header(&f, fk, st.ptr, key);
	craft_chunk(&f, key, 1, 0, data, CHUNK);
	craft_chunk(&f, key, 0, 1, data, 1);
	expect_fail(&id, 1, f.ptr, f.len, "age: payload authentication failed");
	/* a full final chunk is fine */
	craft_header(&f, fk, st.ptr, key);
	craft_chunk(&f, key, 0, 1, data, CHUNK);
	assert_int_equal(age_decrypt(&id, 1, f.ptr, f.len, &pt), 0);
	assert_int_equal(pt.len, CHUNK);

	/* scrypt, alone or with others */
	craft_header(&f, fk, "-> scrypt AAAAAAAAAAAAAAAAAAAAAA 18\nAAAA\n", key);
	craft_chunk(&f, key, 0, 1, data, 1);
	expect_fail(&id, 1, f.ptr, f.len, "age: passphrase-encrypted age files are not supported");
	buf_adds(&st, "-> scrypt AAAAAAAAAAAAAAAAAAAAAA 18\nAAAA\n");
	craft_header(&f, fk, st.ptr, key);
	expect_fail(&id, 1, f.ptr, f.len, "age: passphrase-encrypted age files are not supported");

	/* only other stanzas */
	craft_header(&f, fk, "-> other\n\n", key);
	expect_fail(&id, 1, f.ptr, f.len, "age: the file has no X25519 recipient");

	/* X25519 stanzas with the wrong shape, or an all-zero share */
	static const char *const bad[] = {
	    "-> X25519\nAAAA\n",
	    "-> X25519 AAAA\nAAAA\n",
	    "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA extra\nAAAA\n",
	    "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nAAAA\n",
	    "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\nAAAA\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		craft_header(&f, fk, bad[i], key);
		craft_chunk(&f, key, 0, 1, data, 1);
		expect_fail(&id, 1, f.ptr, f.len, "age: malformed X25519 recipient stanza");
	}
	buf_reset(&st);
	buf_adds(&st, "-> X25519 ");
	b64(&st, zero, 32);
	buf_adds(&st, "\n");
	b64(&st, data, 32);
	buf_adds(&st, "\n");
	craft_header(&f, fk, st.ptr, key);
	expect_fail(&id, 1, f.ptr, f.len, "age: malformed X25519 recipient stanza");
	/* a body of 33 bytes */
	buf_reset(&st);
	craft_x25519(&st, fk, id.pk);
	st.len -= 44;
	b64(&st, data, 33);
	buf_addch(&st, '\n');
	craft_header(&f, fk, st.ptr, key);
	expect_fail(&id, 1, f.ptr, f.len, "age: malformed X25519 recipient stanza");

	/* header syntax: double space, empty argument, long body line, no final line */
	static const char *const syntax[] = {
	    "->  X25519\n\n",
	    "-> a  b\n\n",
	    "-> a \n\n",
	    "->\n\n",
	    ("-> a\n"
	     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"),
	    "-> a\tb\n\n",
	    "-> a\nAAAA====\n",
	    "-> a\nAAA=\n",
	    "-> a\nAB\n",
	    "-> a\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	};
	for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
		craft_header(&f, fk, syntax[i], key);
		craft_chunk(&f, key, 0, 1, data, 1);
		expect_fail(&id, 1, f.ptr, f.len, "age: header is malformed");
	}
	free(data);
	buf_release(&st);
	buf_release(&f);
	age_buf_wipe(&pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_age__hkdf_rfc5869),
	    cmocka_unit_test(test_age__keys_known_vector),
	    cmocka_unit_test(test_age__keys_round_trip),
	    cmocka_unit_test(test_age__keys_rejected),
	    cmocka_unit_test(test_age__round_trip_sizes),
	    cmocka_unit_test(test_age__tamper_every_byte),
	    cmocka_unit_test(test_age__truncate_every_length),
	    cmocka_unit_test(test_age__trailing_data),
	    cmocka_unit_test(test_age__wrong_identity),
	    cmocka_unit_test(test_age__multiple_recipients),
	    cmocka_unit_test(test_age__armor),
	    cmocka_unit_test(test_age__not_age),
	    cmocka_unit_test(test_age__oversized),
	    cmocka_unit_test(test_age__fixtures_from_age_cli),
	    cmocka_unit_test(test_age__crafted),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
