/* SPDX-License-Identifier: MIT */
/*
 * Semantic versions and ranges for --semver, after semver 2.0.0 and the
 * range grammar of npm's node-semver, which Flux and most release tooling
 * also follow. Every range is lowered to comparator sets (>=, <, ...); the
 * sugar (^, ~, x-ranges, hyphens) exists only in the parser.
 */
#include <string.h>
#include "lib/err.h"
#include "lib/semver.h"

#define NUM_MAX 1000000000000000ull	/* leaves room for +1 */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric component: no leading zero, at most NUM_MAX. */
static int parse_num(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (!is_digit(*p))
		return -1;
	if (*p == '0' && is_digit(p[1]))
		return -1;
	while (is_digit(*p)) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > NUM_MAX)
			return -1;
		p++;
	}
	*s = p;
	*out = v;
	return 0;
}

/* Dot-separated identifiers [0-9A-Za-z-]+, numeric ones without leading
 * zeros; copied into out (pre) or only checked (out NULL: build). */
static int parse_idents(const char **s, char *out, size_t outlen)
{
	const char *p = *s, *start = p;
	for (;;) {
		const char *id = p;
		int digits = 1;
		while (ident_char(*p)) {
			digits &= is_digit(*p);
			p++;
		}
		if (p == id)
			return -1;
		if (out && digits && *id == '0' && p - id > 1)
			return -1;
		if (*p != '.')
			break;
		p++;
	}
	if (out) {
		size_t n = (size_t)(p - start);
		if (n >= outlen)
			return -1;
		memcpy(out, start, n);
		out[n] = '\0';
	}
	*s = p;
	return 0;
}

int semver_parse(const char *s, struct semver *out)
{
	const char *p = s;
	struct semver v;
	memset(&v, 0, sizeof(v));
	if (strlen(s) >= SEMVER_MAX_TEXT)
		return err_set("'%.40s...' is too long for a version", s);
	if (*p == 'v')
		p++;
	if (parse_num(&p, &v.major) < 0 || *p++ != '.' || parse_num(&p, &v.minor) < 0 ||
	    *p++ != '.' || parse_num(&p, &v.patch) < 0)
		return err_set("'%s' is not a version like 1.2.3", s);
	if (*p == '-') {
		p++;
		if (parse_idents(&p, v.pre, sizeof(v.pre)) < 0)
			return err_set("'%s' has an invalid pre-release", s);
	}
	if (*p == '+') {
		p++;
		if (parse_idents(&p, NULL, 0) < 0)
			return err_set("'%s' has invalid build metadata", s);
	}
	if (*p)
		return err_set("'%s' is not a version like 1.2.3", s);
	*out = v;
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_pre(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : !*a ? 1 : -1;	/* no pre-release ranks higher */
	while (*a && *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		int da = strspn(a, "0123456789") >= la, db = strspn(b, "0123456789") >= lb;
		int c;
		if (da && db)
			c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
		else if (da || db)
			c = da ? -1 : 1;	/* numeric identifiers rank lower */
		else {
			c = memcmp(a, b, la < lb ? la : lb);
			if (!c)
				c = la < lb ? -1 : la > lb;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += la + (a[la] == '.');
		b += lb + (b[lb] == '.');
	}
	return *a ? 1 : *b ? -1 : 0;
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	int c = cmp_u64(a->major, b->major);
	if (!c)
		c = cmp_u64(a->minor, b->minor);
	if (!c)
		c = cmp_u64(a->patch, b->patch);
	return c ? c : cmp_pre(a->pre, b->pre);
}

/* ---- ranges ---- */

/* A version as written in a range: up to three numbers, the rest wild. */
struct partial {
	uint64_t v[3];
	int n;			/* numbers given before the first wildcard or the end */
	char pre[SEMVER_MAX_TEXT];
};

struct rparse {
	struct semver_range *r;
	const char *text;
	int set;
};

static int perr(struct rparse *rp, const char *why)
{
	return err_set("'%s' is not a semver range: %s", rp->text, why);
}

static int parse_partial(struct rparse *rp, const char *s, size_t len, struct partial *out)
{
	char tmp[SEMVER_MAX_TEXT];
	const char *p = tmp;
	memset(out, 0, sizeof(*out));
	if (len >= sizeof(tmp))
		return perr(rp, "a version is too long");
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (*p == 'v' || *p == '=')
		p++;
	int wild = 0;
	for (int i = 0; i < 3; i++) {
		if (*p == 'x' || *p == 'X' || *p == '*') {
			wild = 1;
			p++;
		} else if (wild) {
			return perr(rp, "a number follows a wildcard");
		} else if (parse_num(&p, &out->v[i]) < 0) {
			return perr(rp, "versions are numbers like 1.2.3 without leading zeros,"
				    " or x and * wildcards");
		} else {
			out->n = i + 1;
		}
		if (*p != '.')
			break;
		p++;
		if (!*p)
			return perr(rp, "a version ends with '.'");
	}
	if (*p == '-') {
		if (out->n != 3)
			return perr(rp, "a pre-release needs a full version like 1.2.3-rc.1");
		p++;
		if (parse_idents(&p, out->pre, sizeof(out->pre)) < 0)
			return perr(rp, "an invalid pre-release");
	}
	if (*p == '+') {
		p++;
		if (parse_idents(&p, NULL, 0) < 0)
			return perr(rp, "invalid build metadata");
	}
	if (*p)
		return perr(rp, "unexpected characters in a version");
	return 0;
}

static int add(struct rparse *rp, enum semver_op op, uint64_t ma, uint64_t mi, uint64_t pa,
	       const char *pre)
{
	struct semver_range *r = rp->r;
	if (r->n >= SEMVER_MAX_COMPS)
		return perr(rp, "too many comparators");
	struct semver_comp *c = &r->c[r->n++];
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->v.major = ma;
	c->v.minor = mi;
	c->v.patch = pa;
	c->set = rp->set;
	if (pre && *pre) {
		memcpy(c->v.pre, pre, strlen(pre) + 1);	/* both SEMVER_MAX_TEXT */
		c->allows_pre = 1;
	}
	return 0;
}

/* Lower bound of a partial (missing numbers are 0); n == 0 admits anything. */
static int lower(struct rparse *rp, const struct partial *v)
{
	return add(rp, SEMVER_GE, v->v[0], v->v[1], v->v[2], v->n == 3 ? v->pre : NULL);
}

/* Exclusive upper bound just past a partial: 1 -> <2.0.0, 1.2 -> <1.3.0. */
static int upper_past(struct rparse *rp, const struct partial *v)
{
	if (v->n == 1)
		return add(rp, SEMVER_LT, v->v[0] + 1, 0, 0, NULL);
	if (v->n == 2)
		return add(rp, SEMVER_LT, v->v[0], v->v[1] + 1, 0, NULL);
	return 0;
}

static int xrange(struct rparse *rp, const struct partial *v)
{
	if (v->n == 3)
		return add(rp, SEMVER_EQ, v->v[0], v->v[1], v->v[2], v->pre);
	if (lower(rp, v) < 0)
		return -1;
	return upper_past(rp, v);
}

static int caret(struct rparse *rp, const struct partial *v)
{
	if (v->n == 0)
		return lower(rp, v);
	if (lower(rp, v) < 0)
		return -1;
	if (v->n == 1 || v->v[0] > 0)
		return add(rp, SEMVER_LT, v->v[0] + 1, 0, 0, NULL);
	if (v->n == 2 || v->v[1] > 0)
		return add(rp, SEMVER_LT, 0, v->v[1] + 1, 0, NULL);
	return add(rp, SEMVER_LT, 0, 0, v->v[2] + 1, NULL);
}

static int tilde(struct rparse *rp, const struct partial *v)
{
	if (v->n == 0)
		return lower(rp, v);
	if (lower(rp, v) < 0)
		return -1;
	if (v->n == 1)
		return add(rp, SEMVER_LT, v->v[0] + 1, 0, 0, NULL);
	return add(rp, SEMVER_LT, v->v[0], v->v[1] + 1, 0, NULL);
}

static int nothing(struct rparse *rp)
{
	return add(rp, SEMVER_LT, 0, 0, 0, NULL);	/* no release is below 0.0.0 */
}

static int comparator(struct rparse *rp, enum semver_op op, const struct partial *v)
{
	switch (op) {
	case SEMVER_GE:
		return lower(rp, v);
	case SEMVER_GT:
		if (v->n == 0)
			return nothing(rp);
		if (v->n == 3)
			return add(rp, SEMVER_GT, v->v[0], v->v[1], v->v[2], v->pre);
		if (v->n == 1)
			return add(rp, SEMVER_GE, v->v[0] + 1, 0, 0, NULL);
		return add(rp, SEMVER_GE, v->v[0], v->v[1] + 1, 0, NULL);
	case SEMVER_LT:
		if (v->n == 0)
			return nothing(rp);
		return add(rp, SEMVER_LT, v->v[0], v->v[1], v->v[2], v->n == 3 ? v->pre : NULL);
	case SEMVER_LE:
		if (v->n == 0)
			return lower(rp, v);
		if (v->n == 3)
			return add(rp, SEMVER_LE, v->v[0], v->v[1], v->v[2], v->pre);
		return upper_past(rp, v);
	case SEMVER_EQ:
		return xrange(rp, v);
	}
	return 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One ||-separated set: s[0..len). */
static int parse_set(struct rparse *rp, const char *s, size_t len)
{
	const char *tok[SEMVER_MAX_COMPS * 2];
	size_t tlen[SEMVER_MAX_COMPS * 2], nt = 0;
	const char *p = s, *end = s + len;
	while (p < end) {
		while (p < end && is_space(*p))
			p++;
		if (p == end)
			break;
		if (nt == sizeof(tok) / sizeof(*tok))
			return perr(rp, "too many comparators");
		tok[nt] = p;
		while (p < end && !is_space(*p))
			p++;
		tlen[nt] = (size_t)(p - tok[nt]);
		nt++;
	}
	if (!nt)
		return perr(rp, "an empty set between '||'");
	/* hyphen range: A - B */
	if (nt == 3 && tlen[1] == 1 && tok[1][0] == '-') {
		struct partial a, b;
		if (parse_partial(rp, tok[0], tlen[0], &a) < 0 || parse_partial(rp, tok[2], tlen[2], &b) < 0)
			return -1;
		if (lower(rp, &a) < 0)
			return -1;
		if (b.n == 0)
			return 0;
		return b.n == 3 ? add(rp, SEMVER_LE, b.v[0], b.v[1], b.v[2], b.pre) : upper_past(rp, &b);
	}
	for (size_t i = 0; i < nt; i++) {
		const char *t = tok[i];
		size_t n = tlen[i];
		enum semver_op op = SEMVER_EQ;
		int kind = 0;	/* 0 comparator, '^', '~' */
		if (*t == '^' || *t == '~') {
			kind = *t;
			t++, n--;
			if (n && *t == '>' && kind == '~')	/* ~> is tilde too */
				t++, n--;
		} else if (*t == '>' || *t == '<') {
			int eq = n > 1 && t[1] == '=';
			op = *t == '>' ? (eq ? SEMVER_GE : SEMVER_GT) : (eq ? SEMVER_LE : SEMVER_LT);
			t += 1 + eq, n -= 1 + (size_t)eq;
		} else if (*t == '=') {
			t++, n--;
		}
		if (!n) {
			/* an operator alone: its version is the next token (">= 1.2") */
			if (i + 1 == nt)
				return perr(rp, "an operator without a version");
			i++;
			t = tok[i];
			n = tlen[i];
		}
		if (*t == '-' && n == 1)
			return perr(rp, "a hyphen range is 'A - B' and nothing else in its set");
		struct partial v;
		if (parse_partial(rp, t, n, &v) < 0)
			return -1;
		int r = kind == '^' ? caret(rp, &v) : kind == '~' ? tilde(rp, &v) : comparator(rp, op, &v);
		if (r < 0)
			return -1;
	}
	return 0;
}

int semver_range_parse(const char *s, struct semver_range *out)
{
	struct rparse rp = { out, s, 0 };
	memset(out, 0, sizeof(*out));
	if (strlen(s) >= SEMVER_MAX_TEXT)
		return err_set("a semver range is at most %d bytes", SEMVER_MAX_TEXT - 1);
	const char *p = s;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return perr(&rp, "it holds a character that is not printable ASCII");
	for (;;) {
		const char *bar = strstr(p, "||");
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (parse_set(&rp, p, len) < 0)
			return -1;
		rp.set++;
		if (!bar)
			break;
		p = bar + 2;
	}
	out->nsets = rp.set;
	return 0;
}

static int comp_match(const struct semver_comp *c, const struct semver *v)
{
	int r = semver_cmp(v, &c->v);
	switch (c->op) {
	case SEMVER_EQ: return r == 0;
	case SEMVER_LT: return r < 0;
	case SEMVER_LE: return r <= 0;
	case SEMVER_GT: return r > 0;
	case SEMVER_GE: return r >= 0;
	}
	return 0;
}

int semver_range_match(const struct semver_range *r, const struct semver *v)
{
	for (int set = 0; set < r->nsets; set++) {
		int ok = 1, pre_ok = !v->pre[0];
		for (size_t i = 0; i < r->n && ok; i++) {
			const struct semver_comp *c = &r->c[i];
			if (c->set != set)
				continue;
			ok = comp_match(c, v);
			if (c->allows_pre && c->v.major == v->major && c->v.minor == v->minor &&
			    c->v.patch == v->patch)
				pre_ok = 1;
		}
		if (ok && pre_ok)
			return 1;
	}
	return 0;
}
