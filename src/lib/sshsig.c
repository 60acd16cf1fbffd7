/* SPDX-License-Identifier: MIT */
/* SSH keys as trust material: fingerprints, known_hosts pinning, allowed_signers and SSHSIG
 * (ed25519, libsodium). */
#include <ctype.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "lib/err.h"
#include "lib/sshsig.h"

#define SSHSIG_MAX_ARMOR (64u << 10)
#define SSHSIG_MAX_LINE 16384

/* ---- the SSH wire format: uint32 lengths and strings ---- */

struct rd {
	const unsigned char *p;
	size_t n;
};

static int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->n < 4)
		return -1;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->n -= 4;
	return 0;
}

static int rd_str(struct rd *r, const unsigned char **s, size_t *len)
{
	uint32_t l;
	if (rd_u32(r, &l) < 0 || l > r->n)
		return -1;
	*s = r->p;
	*len = l;
	r->p += l;
	r->n -= l;
	return 0;
}

static void put_str(struct buf *b, const void *s, size_t len)
{
	unsigned char l[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
			      (unsigned char)(len >> 8), (unsigned char)len};
	buf_add(b, l, 4);
	buf_add(b, s, len);
}

static int str_is(const unsigned char *s, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(s, want, len);
}

/* Base64 (padded or not, whitespace ignored) into a new buffer. */
static int b64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	size_t cap = len / 4 * 3 + 3, n = 0;
	unsigned char *bin = xmalloc(cap ? cap : 1);
	const char *end;
	int ok =
	    sodium_init() >= 0 && ((!sodium_base642bin(bin, cap, s, len, " \t\r\n", &n, &end,
						       sodium_base64_VARIANT_ORIGINAL) &&
				    end == s + len) ||
				   (!sodium_base642bin(bin, cap, s, len, " \t\r\n", &n, &end,
						       sodium_base64_VARIANT_ORIGINAL_NO_PADDING) &&
				    end == s + len));
	if (!ok) {
		free(bin);
		return -1;
	}
	*out = bin;
	*outlen = n;
	return 0;
}

void sshsig_fingerprint(const void *key, size_t len, char out[SSHSIG_FP_MAX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(h, key, len);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, SSHSIG_FP_MAX - 7, h, sizeof(h),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

void sshsig_key_type(const void *key, size_t len, char *out, size_t outlen)
{
	struct rd r = {key, len};
	const unsigned char *t;
	size_t tl;
	if (rd_str(&r, &t, &tl) < 0 || !tl || tl >= outlen || memchr(t, '\0', tl)) {
		snprintf(out, outlen, "unknown");
		return;
	}
	memcpy(out, t, tl);
	out[tl] = '\0';
	for (size_t i = 0; i < tl; i++)
		if (!isgraph((unsigned char)out[i]))
			out[i] = '?';
}

/* ---- lines and tokens ---- */

/* The next line of text (without its newline); 0 at the end. */
static int next_line(const char **pos, const char *end, const char **line, size_t *len)
{
	if (*pos >= end)
		return 0;
	const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));
	const char *e = nl ? nl : end;
	*line = *pos;
	*len = (size_t)(e - *pos);
	if (*len && (*line)[*len - 1] == '\r')
		(*len)--;
	*pos = nl ? nl + 1 : end;
	return 1;
}

/* The next whitespace-separated token; double quotes keep spaces inside. */
static int next_tok(const char **p, const char *end, const char **tok, size_t *len)
{
	const char *s = *p;
	int q = 0;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end)
		return 0;
	*tok = s;
	while (s < end && (q || (*s != ' ' && *s != '\t'))) {
		if (*s == '"')
			q = !q;
		s++;
	}
	*len = (size_t)(s - *tok);
	*p = s;
	return 1;
}

static char *dup_tok(const char *t, size_t n)
{
	if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
		t++;
		n -= 2;
	}
	return xstrndup(t, n);
}

static int is_key_type(const char *t, size_t n)
{
	static const char *const prefixes[] = {"ssh-", "ecdsa-", "sk-", "rsa-", NULL};
	for (int i = 0; prefixes[i]; i++)
		if (n > strlen(prefixes[i]) && !strncmp(t, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}

/* Decode a key field and check that its blob names the same type. */
static int decode_key(const char *type, size_t tlen, const char *b64, size_t blen,
		      unsigned char **key, size_t *keylen)
{
	char inner[64];
	if (b64_decode(b64, blen, key, keylen) < 0)
		return -1;
	sshsig_key_type(*key, *keylen, inner, sizeof(inner));
	if (strlen(inner) != tlen || strncmp(inner, type, tlen)) {
		free(*key);
		*key = NULL;
		return -1;
	}
	return 0;
}

/* ---- known_hosts ---- */

static int host_pattern_match(const char *pat, size_t plen, const char *name)
{
	char *p = xstrndup(pat, plen);
	int r = strchr(p, '*') || strchr(p, '?') ? fnmatch(p, name, FNM_CASEFOLD) == 0
						 : !strcasecmp(p, name);
	free(p);
	return r;
}

/* 1 when the comma-separated patterns name name (and no "!pattern" does). */
static int hosts_match(const char *pats, size_t len, const char *name)
{
	int hit = 0;
	const char *p = pats, *end = pats + len;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((c ? c : end) - p);
		if (n && *p == '!') {
			if (host_pattern_match(p + 1, n - 1, name))
				return 0;
		} else if (n && host_pattern_match(p, n, name)) {
			hit = 1;
		}
		p = c ? c + 1 : end;
	}
	return hit;
}

/* 1 when the patterns name host on some port other than port. */
static int hosts_other_port(const char *pats, size_t len, const char *host, int port)
{
	const char *p = pats, *end = pats + len;
	size_t hl = strlen(host);
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((c ? c : end) - p);
		if (n == hl && !strncasecmp(p, host, hl) && port != 22)
			return 1;
		if (n > hl + 3 && p[0] == '[' && !strncasecmp(p + 1, host, hl) &&
		    p[hl + 1] == ']' && p[hl + 2] == ':' && atoi(p + hl + 3) != port)
			return 1;
		p = c ? c + 1 : end;
	}
	return 0;
}

int sshsig_known_host(const char *text, size_t len, const char *file, const char *host, int port,
		      const void *key, size_t keylen)
{
	char name[512], got_fp[SSHSIG_FP_MAX], got_type[64];
	struct buf expected = BUF_INIT;
	const char *pos = text, *end = text + len, *line;
	size_t ll;
	int lineno = 0, matched = 0, revoked = 0, other_port = 0, hashed = 0;

	if (port == 22 || port <= 0)
		snprintf(name, sizeof(name), "%s", host);
	else
		snprintf(name, sizeof(name), "[%s]:%d", host, port);
	sshsig_fingerprint(key, keylen, got_fp);
	sshsig_key_type(key, keylen, got_type, sizeof(got_type));
	while (next_line(&pos, end, &line, &ll)) {
		const char *p = line, *le = line + ll, *t[4];
		size_t tl[4];
		int marker = 0; /* 1 revoked, 2 cert-authority */
		lineno++;
		if (!next_tok(&p, le, &t[0], &tl[0]) || *t[0] == '#')
			continue;
		if (*t[0] == '@') {
			marker = tl[0] == 8 && !strncmp(t[0], "@revoked", 8) ? 1 : 2;
			if (!next_tok(&p, le, &t[0], &tl[0]))
				continue;
		}
		if (!next_tok(&p, le, &t[1], &tl[1]) || !next_tok(&p, le, &t[2], &tl[2]))
			continue;
		if (tl[0] > 3 && !strncmp(t[0], "|1|", 3)) {
			hashed = 1;
			continue;
		}
		if (!hosts_match(t[0], tl[0], name)) {
			other_port |= hosts_other_port(t[0], tl[0], host, port);
			continue;
		}
		if (marker == 2)
			continue;
		unsigned char *k = NULL;
		size_t kl = 0;
		if (decode_key(t[1], tl[1], t[2], tl[2], &k, &kl) < 0) {
			free(k);
			buf_release(&expected);
			return err_set("%s:%d: the key of '%.*s' is not valid base64 of a %.*s key",
				       file, lineno, (int)tl[0], t[0], (int)tl[1], t[1]);
		}
		int same = kl == keylen && !memcmp(k, key, kl);
		if (marker == 1) {
			revoked |= same;
		} else if (same) {
			matched = 1;
		} else {
			char fp[SSHSIG_FP_MAX];
			sshsig_fingerprint(k, kl, fp);
			buf_addf(&expected, "%s%.*s %s (line %d)", expected.len ? ", " : "",
				 (int)tl[1], t[1], fp, lineno);
		}
		free(k);
	}
	int ret = 0;
	if (revoked)
		ret = err_set("the host key of '%s' (%s %s) is marked @revoked in '%s'", name,
			      got_type, got_fp, file);
	else if (!matched && expected.len)
		ret =
		    err_set("the host key of '%s' does not match '%s': expected %s, received %s %s",
			    name, file, expected.ptr, got_type, got_fp);
	else if (!matched)
		ret = err_set(
		    "'%s' has no entry in the known hosts file '%s'%s%s; the server offered"
		    " %s %s",
		    name, file, other_port ? " (the host is listed for another port only)" : "",
		    hashed ? " (hashed entries are not read: list the host in plain text)" : "",
		    got_type, got_fp);
	buf_release(&expected);
	return ret;
}

/* ---- allowed_signers ---- */

/* YYYYMMDD[HHMM[SS]][Z]: local time unless Z, as ssh-keygen(1) reads it. */
static int parse_time(const char *s, int64_t *out)
{
	struct tm tm = {0};
	size_t n = strlen(s);
	int utc = n && (s[n - 1] == 'Z' || s[n - 1] == 'z');
	if (utc)
		n--;
	if ((n != 8 && n != 12 && n != 14) || strspn(s, "0123456789") != n)
		return -1;
	char d[15] = {0};
	memcpy(d, s, n);
	int sec = n == 14 ? atoi(d + 12) : 0;
	d[12] = '\0';
	int min = n >= 12 ? atoi(d + 10) : 0;
	d[10] = '\0';
	int hour = n >= 12 ? atoi(d + 8) : 0;
	d[8] = '\0';
	tm.tm_mday = atoi(d + 6);
	d[6] = '\0';
	tm.tm_mon = atoi(d + 4) - 1;
	d[4] = '\0';
	tm.tm_year = atoi(d) - 1900;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || hour > 23 ||
	    min > 59 || sec > 60)
		return -1;
	time_t t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/* options: cert-authority, namespaces="...", valid-after="...", valid-before="..." */
static int parse_options(struct sshsig_signer *s, const char *o, size_t len, const char *file)
{
	const char *p = o, *end = o + len;
	while (p < end) {
		const char *e = p;
		int q = 0;
		while (e < end && (q || *e != ',')) {
			if (*e == '"')
				q = !q;
			e++;
		}
		size_t n = (size_t)(e - p);
		const char *eq = memchr(p, '=', n);
		size_t kl = eq ? (size_t)(eq - p) : n;
		char *val = eq ? dup_tok(eq + 1, (size_t)(e - eq - 1)) : NULL;
		int bad = 0;
		if (kl == 14 && !strncasecmp(p, "cert-authority", kl) && !val) {
			s->cert_authority = 1;
		} else if (kl == 10 && !strncasecmp(p, "namespaces", kl) && val) {
			free(s->namespaces);
			s->namespaces = val;
			val = NULL;
		} else if (kl == 11 && !strncasecmp(p, "valid-after", kl) && val) {
			bad = parse_time(val, &s->valid_after) < 0;
		} else if (kl == 12 && !strncasecmp(p, "valid-before", kl) && val) {
			bad = parse_time(val, &s->valid_before) < 0;
		} else {
			free(val);
			return err_set("%s:%d: unknown option '%.*s'", file, s->line,
				       (int)(kl < 64 ? kl : 64), p);
		}
		free(val);
		if (bad)
			return err_set(
			    "%s:%d: '%.*s' must be a time like 20250131 or 202501311200Z", file,
			    s->line, (int)kl, p);
		p = e < end ? e + 1 : end;
	}
	return 0;
}

static void signer_release(struct sshsig_signer *s)
{
	free(s->principals);
	free(s->namespaces);
	free(s->key);
}

int sshsig_allowed_parse(struct sshsig_allowed *out, const char *text, size_t len, const char *file)
{
	const char *pos = text, *end = text + len, *line;
	size_t ll, cap = 0;
	int lineno = 0;
	memset(out, 0, sizeof(*out));
	while (next_line(&pos, end, &line, &ll)) {
		const char *p = line, *le = line + ll, *t[4];
		size_t tl[4];
		struct sshsig_signer s = {0};
		s.line = ++lineno;
		if (ll > SSHSIG_MAX_LINE) {
			sshsig_allowed_release(out);
			return err_set("%s:%d: the line is too long", file, lineno);
		}
		if (!next_tok(&p, le, &t[0], &tl[0]) || *t[0] == '#')
			continue;
		int n = 1;
		while (n < 4 && next_tok(&p, le, &t[n], &tl[n]))
			n++;
		int k = n >= 2 && is_key_type(t[1], tl[1]) ? 1 : 2;
		if (n < k + 2) {
			sshsig_allowed_release(out);
			return err_set("%s:%d: expected 'PRINCIPALS [OPTIONS] KEYTYPE KEY'", file,
				       lineno);
		}
		s.principals = dup_tok(t[0], tl[0]);
		if ((k == 2 && parse_options(&s, t[1], tl[1], file) < 0) ||
		    (!is_key_type(t[k], tl[k]) &&
		     err_set("%s:%d: '%.*s' is not an SSH key type", file, lineno,
			     (int)(tl[k] < 64 ? tl[k] : 64), t[k])) ||
		    (decode_key(t[k], tl[k], t[k + 1], tl[k + 1], &s.key, &s.keylen) < 0 &&
		     err_set("%s:%d: the key is not valid base64 of a %.*s key", file, lineno,
			     (int)(tl[k] < 64 ? tl[k] : 64), t[k]))) {
			signer_release(&s);
			sshsig_allowed_release(out);
			return -1;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			out->v = xrealloc(out->v, cap * sizeof(*out->v));
		}
		out->v[out->n++] = s;
	}
	return 0;
}

void sshsig_allowed_release(struct sshsig_allowed *a)
{
	for (size_t i = 0; i < a->n; i++)
		signer_release(&a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* ---- SSHSIG ---- */

static const char armor_begin[] = "-----BEGIN SSH SIGNATURE-----";
static const char armor_end[] = "-----END SSH SIGNATURE-----";

int sshsig_parse(struct sshsig *out, const char *armored, size_t len)
{
	const char *s = armored, *e = armored + len;
	memset(out, 0, sizeof(*out));
	if (len > SSHSIG_MAX_ARMOR)
		return err_set("the signature is larger than %u bytes", SSHSIG_MAX_ARMOR);
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	size_t bl = sizeof(armor_begin) - 1, el = sizeof(armor_end) - 1;
	if ((size_t)(e - s) < bl + el || memcmp(s, armor_begin, bl) ||
	    memcmp(e - el, armor_end, el))
		return err_set("the signature is not an SSH signature (no '%s' armor)",
			       armor_begin);
	const char *body = s + bl, *bend = e - el;
	if (body < bend && *body != '\n' && *body != '\r')
		return err_set("the SSH signature armor is malformed");
	if (b64_decode(body, (size_t)(bend - body), &out->raw, &out->rawlen) < 0)
		return err_set("the SSH signature is not valid base64");
	struct rd r = {out->raw, out->rawlen};
	uint32_t version;
	if (r.n < 6 || memcmp(r.p, "SSHSIG", 6)) {
		sshsig_release(out);
		return err_set("the SSH signature does not start with 'SSHSIG'");
	}
	r.p += 6;
	r.n -= 6;
	if (rd_u32(&r, &version) < 0 || version != 1) {
		sshsig_release(out);
		return err_set("the SSH signature has an unknown version");
	}
	if (rd_str(&r, &out->pubkey, &out->pubkeylen) < 0 ||
	    rd_str(&r, &out->ns, &out->nslen) < 0 ||
	    rd_str(&r, &out->reserved, &out->reservedlen) < 0 ||
	    rd_str(&r, &out->hash, &out->hashlen) < 0 || rd_str(&r, &out->sig, &out->siglen) < 0 ||
	    r.n) {
		sshsig_release(out);
		return err_set("the SSH signature is truncated or has trailing bytes");
	}
	return 0;
}

void sshsig_release(struct sshsig *s)
{
	free(s->raw);
	memset(s, 0, sizeof(*s));
}

/* Does the comma-separated pattern list pats allow namespace ns? */
static int ns_allowed(const char *pats, const char *ns)
{
	const char *p = pats;
	while (*p) {
		size_t n = strcspn(p, ",");
		char *one = xstrndup(p, n);
		int ok = fnmatch(one, ns, 0) == 0;
		free(one);
		if (ok)
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

static void fmt_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int sshsig_verify(const char *armored, size_t alen, const void *msg, size_t mlen, const char *ns,
		  const struct sshsig_allowed *allowed, int64_t now, char fp[SSHSIG_FP_MAX])
{
	struct sshsig s;
	char kfp[SSHSIG_FP_MAX], type[64], when[32];
	struct buf signed_data = BUF_INIT;
	const struct sshsig_signer *signer = NULL;
	int ret = -1;

	if (fp)
		fp[0] = '\0';
	if (sshsig_parse(&s, armored, alen) < 0)
		return -1;
	sshsig_fingerprint(s.pubkey, s.pubkeylen, kfp);
	sshsig_key_type(s.pubkey, s.pubkeylen, type, sizeof(type));
	if (fp)
		memcpy(fp, kfp, SSHSIG_FP_MAX);
	if (!str_is(s.ns, s.nslen, ns)) {
		err_set("the signature is for namespace '%.*s', not '%s'",
			(int)(s.nslen < 64 ? s.nslen : 64), s.ns, ns);
		goto out;
	}
	for (size_t i = 0; i < allowed->n && !signer; i++) {
		const struct sshsig_signer *a = &allowed->v[i];
		if (!a->cert_authority && a->keylen == s.pubkeylen &&
		    !memcmp(a->key, s.pubkey, s.pubkeylen))
			signer = a;
	}
	if (!signer) {
		err_set("key %s %s is not in allowed signers", type, kfp);
		goto out;
	}
	if (signer->valid_after && now < signer->valid_after) {
		fmt_time(signer->valid_after, when, sizeof(when));
		err_set("key %s is not valid before %s (allowed signers line %d)", kfp, when,
			signer->line);
		goto out;
	}
	if (signer->valid_before && now > signer->valid_before) {
		fmt_time(signer->valid_before, when, sizeof(when));
		err_set("key %s expired at %s (allowed signers line %d)", kfp, when, signer->line);
		goto out;
	}
	if (signer->namespaces && !ns_allowed(signer->namespaces, ns)) {
		err_set("key %s is not allowed for namespace '%s' (allowed signers line %d)", kfp,
			ns, signer->line);
		goto out;
	}
	if (strcmp(type, "ssh-ed25519")) {
		err_set("key %s is of type '%s'; driftless verifies ssh-ed25519 signatures only",
			kfp, type);
		goto out;
	}
	struct rd pk = {s.pubkey, s.pubkeylen}, sg = {s.sig, s.siglen};
	const unsigned char *t, *key, *st, *sig;
	size_t tl, kl, stl, sl;
	if (rd_str(&pk, &t, &tl) < 0 || rd_str(&pk, &key, &kl) < 0 || pk.n ||
	    kl != crypto_sign_ed25519_PUBLICKEYBYTES) {
		err_set("key %s is not a valid ssh-ed25519 key", kfp);
		goto out;
	}
	if (rd_str(&sg, &st, &stl) < 0 || !str_is(st, stl, "ssh-ed25519") ||
	    rd_str(&sg, &sig, &sl) < 0 || sg.n || sl != crypto_sign_ed25519_BYTES) {
		err_set("the signature of key %s is malformed", kfp);
		goto out;
	}
	unsigned char h[crypto_hash_sha512_BYTES];
	size_t hl;
	if (str_is(s.hash, s.hashlen, "sha512")) {
		crypto_hash_sha512(h, msg, mlen);
		hl = crypto_hash_sha512_BYTES;
	} else if (str_is(s.hash, s.hashlen, "sha256")) {
		crypto_hash_sha256(h, msg, mlen);
		hl = crypto_hash_sha256_BYTES;
	} else {
		err_set("the signature uses an unknown hash algorithm");
		goto out;
	}
	buf_add(&signed_data, "SSHSIG", 6);
	put_str(&signed_data, s.ns, s.nslen);
	put_str(&signed_data, s.reserved, s.reservedlen);
	put_str(&signed_data, s.hash, s.hashlen);
	put_str(&signed_data, h, hl);
	if (crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)signed_data.ptr,
						signed_data.len, key) != 0) {
		err_set("bad signature from key %s", kfp);
		goto out;
	}
	ret = 0;
out:
	buf_release(&signed_data);
	sshsig_release(&s);
	return ret;
}
