/* SPDX-License-Identifier: MIT */
/* The age file format (age-encryption.org/v1) with X25519 recipients only. */
#ifndef DL_AGE_H
#define DL_AGE_H

#include <stddef.h>
#include "lib/buf.h"

/* Refuse age files (binary or armored, as given) larger than this. */
#define AGE_MAX_INPUT (64u << 20)
/* An age1... recipient is 62 characters; room for it and the NUL. */
#define AGE_RECIPIENT_SIZE 63
/* age_identity_parse stops with an error after this many identities. */
#define AGE_MAX_IDENTITIES 16

/* An X25519 identity: the secret scalar and the public key derived from it. */
struct age_identity {
	unsigned char sk[32];
	unsigned char pk[32];
};

/* A fresh random identity. */
int age_identity_generate(struct age_identity *out);

/*
 * Parse an identity file: blank lines, '#' comment lines and one or more
 * AGE-SECRET-KEY-1... lines (Bech32, upper case; surrounding blanks and a CR
 * are ignored). Writes up to max identities to out and their number to *n.
 * Fails when a line is not an identity (the message names the line number,
 * never its text), when there is none, or when there are more than max.
 * Nothing is left in out on failure.
 */
int age_identity_parse(struct age_identity *out, size_t max, size_t *n, const char *text,
		       size_t len);

/*
 * Append an identity file to out, as age-keygen writes it:
 * "# created: <UTC time>\n# public key: age1...\nAGE-SECRET-KEY-1...\n".
 * out then holds the secret key: release it with age_buf_wipe().
 */
int age_identity_format(const struct age_identity *id, struct buf *out);

/* The age1... Bech32 string of a public key, NUL-terminated. */
void age_recipient_format(const unsigned char pk[32], char out[AGE_RECIPIENT_SIZE]);
/* Parse an age1... recipient (lower case, checksum checked) into pk. */
int age_recipient_parse(const char *s, unsigned char pk[32]);

/*
 * Encrypt in to the npk (at least one) public keys; out is reset and then
 * holds the age file, binary or armored (PEM "AGE ENCRYPTED FILE"). Fails
 * when the file would be larger than AGE_MAX_INPUT, so everything sealed
 * here can be opened by age_decrypt().
 */
int age_encrypt(const unsigned char (*pks)[32], size_t npk, const void *in, size_t len, int armor,
		struct buf *out);

/*
 * Decrypt a binary or armored age file with the first of the nid identities
 * that matches a recipient stanza. out is reset and then holds the
 * plaintext. On failure out is wiped and empty: a caller never sees part of
 * a plaintext whose authentication failed. Error messages never quote the
 * input. Passphrase (scrypt) files are refused.
 */
int age_decrypt(const struct age_identity *ids, size_t nid, const void *in, size_t len,
		struct buf *out);

/* Zero the whole allocation of b (key material, plaintext) and release it. */
void age_buf_wipe(struct buf *b);
/* Zero n bytes at p in a way the compiler does not remove. */
void age_wipe(void *p, size_t n);

/* HKDF-SHA-256 (RFC 5869); outlen at most 255 * 32. Exposed for tests. */
int age_hkdf_sha256(unsigned char *out, size_t outlen, const void *ikm, size_t ikmlen,
		    const void *salt, size_t saltlen, const void *info, size_t infolen);

#endif
