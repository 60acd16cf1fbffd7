/* SPDX-License-Identifier: MIT */
/* age-encryption.org/v1 with X25519 recipients: keys, header, STREAM payload, armor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "lib/age.h"
#include "lib/buf.h"
#include "lib/err.h"

/*
 * The whole file is in memory (at most AGE_MAX_INPUT bytes), so parsing is
 * a walk over one byte array. The parser is strict where the spec says MUST
 * (canonical unpadded base64, 64-column stanza bodies ending with a short
 * line, exact argument counts and lengths), because an age file is not
 * malleable and a lenient parser would make it so.
 *
 * Plaintext is decrypted straight into the caller's buffer, which is sized
 * once up front: growing it would leave copies of plaintext in freed memory.
 * On any failure the buffer is zeroed and emptied.
 */

#define AGE_MAGIC "age-encryption.org/"
#define AGE_VERSION_LINE "age-encryption.org/v1\n"
#define AGE_X25519_INFO "age-encryption.org/v1/X25519"
#define AGE_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define AGE_ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define AGE_SECRET_HRP "AGE-SECRET-KEY-"
#define AGE_PUBLIC_HRP "age"

#define AGE_FILE_KEY 16
#define AGE_NONCE 16
#define AGE_CHUNK (64u * 1024)
#define AGE_TAG crypto_aead_chacha20poly1305_ietf_ABYTES
#define AGE_COLS 64	  /* base64 columns of stanza bodies and armor lines */
#define AGE_LINE_BYTES 48 /* what a full line of 64 columns decodes to */
/* Each stanza costs an X25519 per identity; a header is a handful of them. */
#define AGE_MAX_STANZAS 1024

#define B64_RAW sodium_base64_VARIANT_ORIGINAL_NO_PADDING
#define B64_PEM sodium_base64_VARIANT_ORIGINAL

static const unsigned char zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

static int age_init(void)
{
	/* sodium_init() is cheap and safe to call again once it has succeeded */
	if (sodium_init() < 0)
		return err_set("age: cannot initialise libsodium");
	return 0;
}

void age_wipe(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

void age_buf_wipe(struct buf *b)
{
	age_wipe(b->ptr, b->cap);
	buf_release(b);
}

/* Zero everything b ever held and leave it empty (still allocated). */
static void buf_scrub(struct buf *b)
{
	age_wipe(b->ptr, b->cap);
	buf_reset(b);
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ------------------------------------------------------------------------ */
/* HMAC-SHA-256 and HKDF-SHA-256 (libsodium 1.0.18 has no HKDF) */

static void hmac(unsigned char out[32], const void *key, size_t keylen, const void *msg, size_t len)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, keylen ? key : (const void *)"", keylen);
	crypto_auth_hmacsha256_update(&st, len ? msg : (const void *)"", len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

static void hkdf(unsigned char *out, size_t outlen, const void *ikm, size_t ikmlen,
		 const void *salt, size_t saltlen, const void *info, size_t infolen)
{
	crypto_auth_hmacsha256_state st;
	unsigned char prk[32], t[32];
	unsigned char ctr = 0;
	size_t done = 0;

	/* extract: an empty salt is HashLen zeros, which HMAC pads to the same key */
	hmac(prk, salt, saltlen, ikm, ikmlen);
	while (done < outlen) {
		size_t n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);

		ctr++;
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (ctr > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		if (infolen)
			crypto_auth_hmacsha256_update(&st, info, infolen);
		crypto_auth_hmacsha256_update(&st, &ctr, 1);
		crypto_auth_hmacsha256_final(&st, t);
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
}

int age_hkdf_sha256(unsigned char *out, size_t outlen, const void *ikm, size_t ikmlen,
		    const void *salt, size_t saltlen, const void *info, size_t infolen)
{
	if (outlen > 255 * 32)
		return err_set("age: hkdf output longer than 8160 bytes");
	if (age_init())
		return -1;
	hkdf(out, outlen, ikm, ikmlen, salt, saltlen, info, infolen);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Bech32 (BIP 173, no length limit), for 32-byte keys only */

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* Groups of 5 bits in a 32-byte key, and the longest encoding of one. */
#define BECH32_GROUPS 52
/* hrp, "1", the groups, the checksum and the NUL (counted in the sizeof) */
#define BECH32_MAX (sizeof(AGE_SECRET_HRP) + 1 + BECH32_GROUPS + 6)

static uint32_t bech32_step(uint32_t chk, unsigned v)
{
	static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
	uint32_t top = chk >> 25;

	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (int i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

static unsigned char to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The checksum state after the expanded human-readable part (lower case). */
static uint32_t bech32_hrp(const char *hrp, size_t n)
{
	uint32_t chk = 1;

	for (size_t i = 0; i < n; i++)
		chk = bech32_step(chk, to_lower(hrp[i]) >> 5);
	chk = bech32_step(chk, 0);
	for (size_t i = 0; i < n; i++)
		chk = bech32_step(chk, to_lower(hrp[i]) & 31);
	return chk;
}

/* hrp "1" data checksum, in upper case when upper (hrp is given in that case). */
static void bech32_encode(char out[BECH32_MAX], const char *hrp, const unsigned char key[32],
			  int upper)
{
	size_t hlen = strlen(hrp), o = 0;
	uint32_t chk = bech32_hrp(hrp, hlen), acc = 0;
	unsigned bits = 0;
	unsigned char v[BECH32_GROUPS + 6];
	size_t nv = 0;

	for (size_t i = 0; i < 32; i++) {
		acc = (acc << 8 | key[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			v[nv++] = (acc >> bits) & 31;
		}
	}
	if (bits)
		v[nv++] = (acc << (5 - bits)) & 31;
	BUG_ON(nv != BECH32_GROUPS);
	for (size_t i = 0; i < nv; i++)
		chk = bech32_step(chk, v[i]);
	for (int i = 0; i < 6; i++)
		chk = bech32_step(chk, 0);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		v[nv++] = (chk >> (5 * (5 - i))) & 31;

	memcpy(out, hrp, hlen);
	o = hlen;
	out[o++] = '1';
	for (size_t i = 0; i < nv; i++) {
		char c = bech32_charset[v[i]];

		out[o++] = upper && c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
	}
	out[o] = '\0';
	sodium_memzero(v, sizeof(v));
}

/*
 * Decode s (n characters) as hrp "1" data checksum into a 32-byte key. hrp
 * is given in the case s must use: all of s is upper case when upper, lower
 * case otherwise (Bech32 forbids mixed case). Writes key only on success.
 */
static int bech32_decode(unsigned char key[32], const char *s, size_t n, const char *hrp, int upper)
{
	size_t hlen = strlen(hrp), nout = 0;
	unsigned char v[BECH32_GROUPS], k[32];
	uint32_t chk, acc = 0;
	unsigned bits = 0;
	int ret = -1;

	if (n != hlen + 1 + BECH32_GROUPS + 6 || memcmp(s, hrp, hlen) || s[hlen] != '1')
		return -1;
	chk = bech32_hrp(hrp, hlen);
	for (size_t i = 0; i < BECH32_GROUPS + 6; i++) {
		unsigned char c = (unsigned char)s[hlen + 1 + i];
		const char *p;

		if (upper ? c >= 'a' && c <= 'z' : c >= 'A' && c <= 'Z')
			goto out;
		c = to_lower(c);
		if (!c || !(p = strchr(bech32_charset, c)))
			goto out;
		chk = bech32_step(chk, (unsigned)(p - bech32_charset));
		if (i < BECH32_GROUPS)
			v[i] = (unsigned char)(p - bech32_charset);
	}
	if (chk != 1)
		goto out;
	for (size_t i = 0; i < BECH32_GROUPS; i++) {
		acc = (acc << 5 | v[i]) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			k[nout++] = (acc >> bits) & 0xff;
		}
	}
	/* 260 bits for 256: the 4 left over must be zero padding */
	if (nout != 32 || bits >= 5 || (acc & ((1u << bits) - 1)))
		goto out;
	memcpy(key, k, 32);
	ret = 0;
out:
	sodium_memzero(v, sizeof(v));
	sodium_memzero(k, sizeof(k));
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Keys */

int age_identity_generate(struct age_identity *out)
{
	if (age_init())
		return -1;
	randombytes_buf(out->sk, sizeof(out->sk));
	if (crypto_scalarmult_base(out->pk, out->sk) != 0) {
		sodium_memzero(out, sizeof(*out));
		return err_set("age: cannot derive the public key");
	}
	return 0;
}

int age_identity_parse(struct age_identity *out, size_t max, size_t *n, const char *text,
		       size_t len)
{
	size_t pos = 0, lineno = 0, count = 0;

	if (age_init())
		return -1;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ln = nl ? (size_t)(nl - line) : len - pos;

		pos += ln + (nl != NULL);
		lineno++;
		while (ln && is_space((unsigned char)line[ln - 1]))
			ln--;
		while (ln && is_space((unsigned char)line[0])) {
			line++;
			ln--;
		}
		if (!ln || line[0] == '#')
			continue;
		if (count == max) {
			err_set("age: more than %zu identities in the identity file", max);
			goto fail;
		}
		if (bech32_decode(out[count].sk, line, ln, AGE_SECRET_HRP, 1) ||
		    crypto_scalarmult_base(out[count].pk, out[count].sk) != 0) {
			err_set("age: line %zu of the identity file is not an age X25519 identity",
				lineno);
			goto fail;
		}
		count++;
	}
	if (!count) {
		err_set("age: no identity in the identity file");
		goto fail;
	}
	*n = count;
	return 0;
fail:
	age_wipe(out, (count < max ? count + 1 : max) * sizeof(*out));
	return -1;
}

int age_identity_format(const struct age_identity *id, struct buf *out)
{
	char rcpt[AGE_RECIPIENT_SIZE], key[BECH32_MAX], when[32] = "";
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	age_recipient_format(id->pk, rcpt);
	bech32_encode(key, AGE_SECRET_HRP, id->sk, 1);
	/* room first, so the buffer is not moved (and copied) with the key in it */
	buf_grow(out, 64 + sizeof(when) + sizeof(rcpt) + sizeof(key));
	buf_addf(out, "# created: %s\n# public key: %s\n%s\n", when, rcpt, key);
	sodium_memzero(key, sizeof(key));
	return 0;
}

void age_recipient_format(const unsigned char pk[32], char out[AGE_RECIPIENT_SIZE])
{
	char s[BECH32_MAX];

	bech32_encode(s, AGE_PUBLIC_HRP, pk, 0);
	BUG_ON(strlen(s) >= AGE_RECIPIENT_SIZE);
	memcpy(out, s, strlen(s) + 1);
}

int age_recipient_parse(const char *s, unsigned char pk[32])
{
	if (bech32_decode(pk, s, strlen(s), AGE_PUBLIC_HRP, 0))
		return err_set("age: not an age X25519 recipient (age1...)");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Base64 and lines */

/*
 * Decode one line of at most 64 base64 characters into out (48 bytes). Only
 * the canonical encoding is accepted: decoding must use every character and
 * encoding the result again must give the same text. Returns the number of
 * bytes or -1.
 */
static int b64_line(unsigned char out[AGE_LINE_BYTES], const char *s, size_t n, int variant)
{
	char again[AGE_COLS + 1];
	const char *end = NULL;
	size_t len = 0;

	if (n == 0)
		return 0;
	if (n > AGE_COLS ||
	    sodium_base642bin(out, AGE_LINE_BYTES, s, n, NULL, &len, &end, variant) != 0 ||
	    end != s + n)
		return -1;
	sodium_bin2base64(again, sizeof(again), out, len, variant);
	if (strlen(again) != n || memcmp(again, s, n))
		return -1;
	return (int)len;
}

static void b64_add(struct buf *b, const unsigned char *p, size_t n, int variant)
{
	char s[AGE_COLS + 1];

	BUG_ON(n > AGE_LINE_BYTES);
	sodium_bin2base64(s, sizeof(s), p, n, variant);
	buf_adds(b, s);
}

/* The line at *pos (without its LF) and *pos moved past it; -1 when no LF follows. */
static int next_line(const unsigned char *in, size_t len, size_t *pos, const char **line, size_t *n)
{
	const unsigned char *nl;

	if (*pos >= len || !(nl = memchr(in + *pos, '\n', len - *pos)))
		return -1;
	*line = (const char *)in + *pos;
	*n = (size_t)(nl - (in + *pos));
	*pos = (size_t)(nl - in) + 1;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Header */

struct x25519_stanza {
	unsigned char share[32];
	unsigned char body[32];
};

struct header {
	struct x25519_stanza *x;
	size_t nx, alloc;
	size_t nstanza;
	int scrypt;
	size_t mac_end; /* the MAC covers the header up to here ("---") */
	size_t payload; /* where the payload starts */
	unsigned char mac[32];
};

static int malformed(void)
{
	return err_set("age: header is malformed");
}

/* One "-> type args..." stanza; line is its argument line, *pos after it. */
static int stanza_parse(struct header *h, const unsigned char *in, size_t len, size_t *pos,
			const char *line, size_t n)
{
	const char *arg[2] = {NULL, NULL};
	size_t alen[2] = {0, 0}, nargs = 0, blen = 0;
	unsigned char share[AGE_LINE_BYTES], tmp[AGE_LINE_BYTES], body[32];
	const char *p, *start, *end = line + n;
	int x25519;

	if (++h->nstanza > AGE_MAX_STANZAS)
		return err_set("age: more than %d recipient stanzas", AGE_MAX_STANZAS);
	/* "-> " and one or more arguments of visible ASCII, single spaces between */
	if (n < 4 || memcmp(line, "-> ", 3))
		return malformed();
	for (p = start = line + 3;; p++) {
		if (p == end || *p == ' ') {
			if (p == start)
				return malformed();
			if (nargs < 2) {
				arg[nargs] = start;
				alen[nargs] = (size_t)(p - start);
			}
			nargs++;
			if (p == end)
				break;
			start = p + 1;
		} else if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			return malformed();
		}
	}
	x25519 = alen[0] == 6 && !memcmp(arg[0], "X25519", 6);
	if (alen[0] == 6 && !memcmp(arg[0], "scrypt", 6))
		h->scrypt = 1;
	if (x25519 && (nargs != 2 || b64_line(share, arg[1], alen[1], B64_RAW) != 32))
		return err_set("age: malformed X25519 recipient stanza");

	/* the body: full 64-column lines, then one shorter line, maybe empty */
	for (;;) {
		int r;

		if (next_line(in, len, pos, &line, &n))
			return err_set("age: header is truncated");
		if ((r = b64_line(tmp, line, n, B64_RAW)) < 0)
			return malformed();
		if (blen + (size_t)r <= sizeof(body))
			memcpy(body + blen, tmp, (size_t)r);
		blen += (size_t)r;
		if (n < AGE_COLS)
			break;
	}
	if (!x25519)
		return 0;
	/* exactly 32 bytes before any decryption is tried (partitioning oracles) */
	if (blen != sizeof(body))
		return err_set("age: malformed X25519 recipient stanza");
	if (h->nx == h->alloc) {
		h->alloc = h->alloc ? 2 * h->alloc : 4;
		h->x = xrealloc(h->x, h->alloc * sizeof(*h->x));
	}
	memcpy(h->x[h->nx].share, share, 32);
	memcpy(h->x[h->nx].body, body, 32);
	h->nx++;
	return 0;
}

static int header_parse(struct header *h, const unsigned char *in, size_t len)
{
	size_t pos = 0, n, mlen = strlen(AGE_MAGIC);
	unsigned char mac[AGE_LINE_BYTES];
	const char *line;

	if (memcmp(in, AGE_MAGIC, len < mlen ? len : mlen))
		return err_set("age: input is not an age file");
	if (next_line(in, len, &pos, &line, &n))
		return err_set("age: header is truncated");
	if (n == strlen(AGE_VERSION_LINE) && !memcmp(line, "age-encryption.org/v1\r", n))
		return err_set(
		    "age: header has CRLF line endings (was the file converted as text?)");
	if (n != strlen(AGE_VERSION_LINE) - 1 || memcmp(line, AGE_VERSION_LINE, n))
		return err_set("age: unsupported age format version");
	for (;;) {
		if (next_line(in, len, &pos, &line, &n))
			return err_set("age: header is truncated");
		if (n >= 3 && !memcmp(line, "---", 3)) {
			/* "--- " and the MAC, 43 characters of base64 */
			if (!h->nstanza || n != 4 + 43 || line[3] != ' ' ||
			    b64_line(mac, line + 4, 43, B64_RAW) != 32)
				return malformed();
			memcpy(h->mac, mac, 32);
			h->mac_end = (size_t)((const unsigned char *)line - in) + 3;
			h->payload = pos;
			return 0;
		}
		if (stanza_parse(h, in, len, &pos, line, n))
			return -1;
	}
}

/* ------------------------------------------------------------------------ */
/* Armor: strict PEM, 64 columns, padded base64; blanks around it are fine */

static void armor_encode(struct buf *out, const unsigned char *p, size_t n)
{
	buf_grow(out, n / 3 * 4 + n / AGE_LINE_BYTES + 2 * sizeof(AGE_ARMOR_BEGIN) + 8);
	buf_adds(out, AGE_ARMOR_BEGIN "\n");
	for (size_t off = 0; off < n; off += AGE_LINE_BYTES) {
		b64_add(out, p + off, n - off < AGE_LINE_BYTES ? n - off : AGE_LINE_BYTES, B64_PEM);
		buf_addch(out, '\n');
	}
	buf_adds(out, AGE_ARMOR_END "\n");
}

/* Where the BEGIN line starts when in is armored (after blanks only), or -1. */
static long armor_start(const unsigned char *in, size_t len)
{
	size_t i = 0, blen = strlen(AGE_ARMOR_BEGIN);

	while (i < len && is_space(in[i]))
		i++;
	if (len - i >= blen && !memcmp(in + i, AGE_ARMOR_BEGIN, blen))
		return (long)i;
	return -1;
}

static int is_marker(const char *line, size_t n, const char *marker)
{
	if (n && line[n - 1] == '\r')
		n--;
	return n == strlen(marker) && !memcmp(line, marker, n);
}

static int armor_decode(struct buf *bin, const unsigned char *in, size_t len, size_t start)
{
	unsigned char tmp[AGE_LINE_BYTES];
	size_t pos = start, n, nlines = 0;
	const char *line;
	int final = 0;

	/* the BEGIN line starts a line of its own */
	if (start && in[start - 1] != '\n')
		return err_set("age: armor is malformed");
	if (next_line(in, len, &pos, &line, &n))
		return err_set("age: armored input is truncated");
	if (!is_marker(line, n, AGE_ARMOR_BEGIN))
		return err_set("age: armor is malformed");
	buf_grow(bin, (len - pos) / 4 * 3 + 3);
	for (;;) {
		int r, eof = next_line(in, len, &pos, &line, &n);

		if (eof && pos < len) {
			/* the END line may lack its LF, nothing else may */
			line = (const char *)in + pos;
			n = len - pos;
			pos = len;
		} else if (eof) {
			return err_set("age: armored input is truncated");
		}
		if (is_marker(line, n, AGE_ARMOR_END)) {
			if (!nlines)
				return err_set("age: armor is malformed");
			break;
		}
		if (eof)
			return err_set("age: armored input is truncated");
		if (final)
			return err_set("age: armor is malformed");
		if (n && line[n - 1] == '\r')
			n--;
		if (!n || (r = b64_line(tmp, line, n, B64_PEM)) < 0)
			return err_set("age: armor is malformed");
		buf_add(bin, tmp, (size_t)r);
		nlines++;
		/* a short (or padded) line is the last one */
		final = r < AGE_LINE_BYTES;
	}
	for (; pos < len; pos++)
		if (!is_space(in[pos]))
			return err_set("age: trailing data after the armored file");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* X25519 stanzas */

static int x25519_wrap(struct buf *dst, const unsigned char file_key[AGE_FILE_KEY],
		       const unsigned char pk[32])
{
	unsigned char eph[32], share[32], shared[32], salt[64], wrap[32], body[32];
	int ret = -1;

	randombytes_buf(eph, sizeof(eph));
	if (crypto_scalarmult_base(share, eph) != 0 || crypto_scalarmult(shared, eph, pk) != 0) {
		/* a low-order point: the shared secret would be all zeros */
		err_set("age: recipient is not a usable X25519 public key");
		goto out;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, pk, 32);
	hkdf(wrap, sizeof(wrap), shared, sizeof(shared), salt, sizeof(salt), AGE_X25519_INFO,
	     strlen(AGE_X25519_INFO));
	crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, file_key, AGE_FILE_KEY, NULL, 0, NULL,
						  zero_nonce, wrap);
	buf_adds(dst, "-> X25519 ");
	b64_add(dst, share, sizeof(share), B64_RAW);
	buf_addch(dst, '\n');
	b64_add(dst, body, sizeof(body), B64_RAW);
	buf_addch(dst, '\n');
	ret = 0;
out:
	sodium_memzero(eph, sizeof(eph));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wrap, sizeof(wrap));
	return ret;
}

/* 1 and the file key when the stanza is for id, 0 when not, -1 on a bad share. */
static int x25519_unwrap(unsigned char file_key[AGE_FILE_KEY], const struct age_identity *id,
			 const struct x25519_stanza *s)
{
	unsigned char shared[32], salt[64], wrap[32];
	unsigned long long klen = 0;
	int ret = 0;

	/* libsodium refuses an all-zero result, which the spec says to abort on */
	if (crypto_scalarmult(shared, id->sk, s->share) != 0 || sodium_is_zero(shared, 32)) {
		ret = err_set("age: malformed X25519 recipient stanza");
		goto out;
	}
	memcpy(salt, s->share, 32);
	memcpy(salt + 32, id->pk, 32);
	hkdf(wrap, sizeof(wrap), shared, sizeof(shared), salt, sizeof(salt), AGE_X25519_INFO,
	     strlen(AGE_X25519_INFO));
	if (crypto_aead_chacha20poly1305_ietf_decrypt(
		file_key, &klen, NULL, s->body, sizeof(s->body), NULL, 0, zero_nonce, wrap) == 0 &&
	    klen == AGE_FILE_KEY)
		ret = 1;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wrap, sizeof(wrap));
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Payload: STREAM over 64 KiB chunks of ChaCha20-Poly1305 */

static void stream_nonce(unsigned char nonce[12], uint64_t counter, int last)
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

/* Decrypt one chunk onto the end of out, which has room for it. */
static int chunk_open(struct buf *out, const unsigned char key[32], uint64_t counter, int last,
		      const unsigned char *c, size_t clen)
{
	unsigned char nonce[12];
	unsigned long long mlen = 0;

	stream_nonce(nonce, counter, last);
	if (crypto_aead_chacha20poly1305_ietf_decrypt((unsigned char *)out->ptr + out->len, &mlen,
						      NULL, c, clen, NULL, 0, nonce, key) != 0)
		return -1;
	out->len += (size_t)mlen;
	out->ptr[out->len] = '\0';
	return 0;
}

static int payload_open(struct buf *out, const unsigned char file_key[AGE_FILE_KEY],
			const unsigned char *p, size_t n)
{
	const size_t full = AGE_CHUNK + AGE_TAG;
	unsigned char key[32];
	uint64_t counter = 0;
	int ret = -1;

	if (n < AGE_NONCE)
		return err_set("age: payload is truncated");
	hkdf(key, sizeof(key), file_key, AGE_FILE_KEY, p, AGE_NONCE, "payload", 7);
	p += AGE_NONCE;
	n -= AGE_NONCE;
	/* all the room the plaintext needs, so it is never moved */
	buf_grow(out, n);
	for (;;) {
		size_t clen = n > full ? full : n;
		int last = n <= full;

		if (n < AGE_TAG) {
			err_set("age: payload is truncated");
			break;
		}
		if (chunk_open(out, key, counter, last, p, clen)) {
			/* tell a cut or an appended file from tampering, for the message */
			if (last && clen == full && !chunk_open(out, key, counter, 0, p, clen))
				err_set("age: payload is truncated");
			else if (!last && !chunk_open(out, key, counter, 1, p, clen))
				err_set("age: trailing data after the payload");
			else
				err_set("age: payload authentication failed");
			break;
		}
		if (last && clen == AGE_TAG && counter > 0) {
			err_set("age: payload ends with an empty chunk");
			break;
		}
		if (last) {
			ret = 0;
			break;
		}
		p += clen;
		n -= clen;
		counter++;
	}
	sodium_memzero(key, sizeof(key));
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Files */

int age_encrypt(const unsigned char (*pks)[32], size_t npk, const void *in, size_t len, int armor,
		struct buf *out)
{
	static const unsigned char empty[1];
	const unsigned char *src = len ? in : empty;
	unsigned char file_key[AGE_FILE_KEY], key[32], mac[32], nonce[AGE_NONCE], sn[12];
	struct buf bin = BUF_INIT;
	struct buf *dst = armor ? &bin : out;
	size_t nchunks, size;
	int ret = -1;

	buf_reset(out);
	if (age_init())
		return -1;
	if (!npk)
		return err_set("age: no recipients");
	if (len > AGE_MAX_INPUT)
		return err_set("age: plaintext larger than 64 MiB");
	randombytes_buf(file_key, sizeof(file_key));
	buf_adds(dst, AGE_VERSION_LINE);
	for (size_t i = 0; i < npk; i++)
		if (x25519_wrap(dst, file_key, pks[i]))
			goto out;
	buf_adds(dst, "---");
	hkdf(key, sizeof(key), file_key, sizeof(file_key), NULL, 0, "header", 6);
	hmac(mac, key, sizeof(key), dst->ptr, dst->len);
	buf_addch(dst, ' ');
	b64_add(dst, mac, sizeof(mac), B64_RAW);
	buf_addch(dst, '\n');

	/* what age_decrypt() would refuse is not written */
	nchunks = len ? (len + AGE_CHUNK - 1) / AGE_CHUNK : 1;
	size = dst->len + AGE_NONCE + len + nchunks * AGE_TAG;
	if (armor)
		size = sizeof(AGE_ARMOR_BEGIN) + (size + 2) / 3 * 4 +
		       (size + AGE_LINE_BYTES - 1) / AGE_LINE_BYTES + sizeof(AGE_ARMOR_END);
	if (size > AGE_MAX_INPUT) {
		err_set("age: plaintext too large (the age file would exceed 64 MiB)");
		goto out;
	}
	randombytes_buf(nonce, sizeof(nonce));
	buf_add(dst, nonce, sizeof(nonce));
	hkdf(key, sizeof(key), file_key, sizeof(file_key), nonce, sizeof(nonce), "payload", 7);
	buf_grow(dst, len + nchunks * AGE_TAG);
	for (size_t i = 0; i < nchunks; i++) {
		size_t off = i * AGE_CHUNK;
		size_t plen = len - off < AGE_CHUNK ? len - off : AGE_CHUNK;
		unsigned long long clen = 0;

		stream_nonce(sn, i, i == nchunks - 1);
		crypto_aead_chacha20poly1305_ietf_encrypt((unsigned char *)dst->ptr + dst->len,
							  &clen, src + off, plen, NULL, 0, NULL, sn,
							  key);
		dst->len += (size_t)clen;
	}
	dst->ptr[dst->len] = '\0';
	if (armor)
		armor_encode(out, (const unsigned char *)bin.ptr, bin.len);
	ret = 0;
out:
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(key, sizeof(key));
	buf_release(&bin);
	if (ret)
		buf_reset(out);
	return ret;
}

int age_decrypt(const struct age_identity *ids, size_t nid, const void *in, size_t len,
		struct buf *out)
{
	const unsigned char *bin = in;
	size_t binlen = len;
	struct buf armored = BUF_INIT;
	struct header h;
	unsigned char file_key[AGE_FILE_KEY], key[32], mac[32];
	int ret = -1, found = 0;
	long start;

	memset(&h, 0, sizeof(h));
	/* whatever out held goes too, so a failure leaves no plaintext at all */
	buf_scrub(out);
	if (age_init())
		goto out;
	if (!len) {
		err_set("age: input is empty");
		goto out;
	}
	if (len > AGE_MAX_INPUT) {
		err_set("age: ciphertext larger than 64 MiB");
		goto out;
	}
	if ((start = armor_start(in, len)) >= 0) {
		if (armor_decode(&armored, in, len, (size_t)start))
			goto out;
		bin = (const unsigned char *)armored.ptr;
		binlen = armored.len;
	}
	if (header_parse(&h, bin, binlen))
		goto out;
	if (h.scrypt) {
		err_set("age: passphrase-encrypted age files are not supported");
		goto out;
	}
	if (!h.nx) {
		err_set("age: the file has no X25519 recipient");
		goto out;
	}
	for (size_t i = 0; i < nid && !found; i++) {
		for (size_t j = 0; j < h.nx && !found; j++) {
			int r = x25519_unwrap(file_key, &ids[i], &h.x[j]);

			if (r < 0)
				goto out;
			found = r;
		}
	}
	if (!found) {
		err_set("age: no identity matches any recipient");
		goto out;
	}
	hkdf(key, sizeof(key), file_key, sizeof(file_key), NULL, 0, "header", 6);
	hmac(mac, key, sizeof(key), bin, h.mac_end);
	if (sodium_memcmp(mac, h.mac, sizeof(mac)) != 0) {
		err_set("age: header MAC mismatch (tampered or wrong file)");
		goto out;
	}
	if (payload_open(out, file_key, bin + h.payload, binlen - h.payload))
		goto out;
	ret = 0;
out:
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(key, sizeof(key));
	free(h.x);
	buf_release(&armored);
	if (ret)
		buf_scrub(out);
	return ret;
}
