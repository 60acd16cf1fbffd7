/* SPDX-License-Identifier: MIT */
/* The one redactor: registered secret values and URL credentials never reach a sink. */
#include <pthread.h>
#include <string.h>
#include <sodium.h>
#include "lib/err.h"
#include "lib/redact.h"

#define REDACT_MIN 4		/* shorter values would match everywhere */
#define REDACT_LINE_MIN 8	/* lines of a multi-line secret registered on their own */
#define REDACT_MAX_VALUES 4096

struct secret_value {
	char *p;
	size_t len;
	char tag[REDACT_TAG_MAX];
};

static struct secret_value *values;
static size_t nvalues, capvalues;
/* a pass's worker threads may report an error while another secret is
 * being registered */
static pthread_rwlock_t values_lock = PTHREAD_RWLOCK_INITIALIZER;

void redact_wipe(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

void redact_tag(const void *data, size_t len, char out[REDACT_TAG_MAX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	crypto_hash_sha256(h, data, len);
	o += sprintf(o, "<redacted sha256:");
	for (int i = 0; i < 6; i++) {
		*o++ = hex[h[i] >> 4];
		*o++ = hex[h[i] & 15];
	}
	*o++ = '>';
	*o = '\0';
}

static void add_one(const char *p, size_t len, const char *tag)
{
	if (len < REDACT_MIN || nvalues >= REDACT_MAX_VALUES)
		return;
	for (size_t i = 0; i < nvalues; i++)
		if (values[i].len == len && !memcmp(values[i].p, p, len))
			return;
	if (nvalues == capvalues) {
		capvalues = capvalues ? capvalues * 2 : 16;
		values = xrealloc(values, capvalues * sizeof(*values));
	}
	struct secret_value *v = &values[nvalues++];
	v->p = xmalloc(len);
	memcpy(v->p, p, len);
	v->len = len;
	memcpy(v->tag, tag, REDACT_TAG_MAX);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void redact_add(const void *data, size_t len)
{
	const char *p = data, *end = p + len;
	char tag[REDACT_TAG_MAX];

	if (!len)
		return;
	if (sodium_init() < 0)
		return;
	/* one tag for the whole secret, whichever piece of it is found */
	redact_tag(data, len, tag);
	pthread_rwlock_wrlock(&values_lock);
	add_one(p, len, tag);
	const char *s = p, *e = end;
	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	add_one(s, (size_t)(e - s), tag);
	for (const char *l = s; l < e;) {
		const char *nl = memchr(l, '\n', (size_t)(e - l));
		const char *le = nl ? nl : e, *ls = l;
		while (ls < le && is_space(*ls))
			ls++;
		const char *lt = le;
		while (lt > ls && is_space(lt[-1]))
			lt--;
		if ((size_t)(lt - ls) >= REDACT_LINE_MIN)
			add_one(ls, (size_t)(lt - ls), tag);
		l = nl ? nl + 1 : e;
	}
	/* longest first, so a line of a secret never pre-empts the whole */
	for (size_t i = 1; i < nvalues; i++)
		for (size_t j = i; j > 0 && values[j - 1].len < values[j].len; j--) {
			struct secret_value t = values[j];
			values[j] = values[j - 1];
			values[j - 1] = t;
		}
	pthread_rwlock_unlock(&values_lock);
}

void redact_clear(void)
{
	pthread_rwlock_wrlock(&values_lock);
	for (size_t i = 0; i < nvalues; i++) {
		redact_wipe(values[i].p, values[i].len);
		free(values[i].p);
	}
	free(values);
	values = NULL;
	nvalues = capvalues = 0;
	pthread_rwlock_unlock(&values_lock);
}

size_t redact_count(void)
{
	return nvalues;
}

/* "scheme://userinfo@" at s: the length of userinfo+'@' to drop, else 0. */
static size_t userinfo_len(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && (s[i] == '+' || s[i] == '-' || s[i] == '.' ||
			   (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= '0' && s[i] <= '9')))
		i++;
	if (!i || len - i < 3 || memcmp(s + i, "://", 3))
		return 0;
	size_t start = i + 3;
	for (size_t j = start; j < len; j++) {
		char c = s[j];
		if (c == '@')
			return j + 1 - start;
		if (c == '/' || c == ' ' || c == '\'' || c == '"' || c == '\n' || c == '?' || c == '#')
			return 0;
	}
	return 0;
}

void redact_buf(struct buf *out, const char *s, size_t len)
{
	size_t i = 0, run = 0;

	pthread_rwlock_rdlock(&values_lock);
	while (i < len) {
		size_t skip = 0;
		const char *tag = NULL;
		for (size_t k = 0; k < nvalues; k++) {
			if (values[k].len <= len - i && s[i] == values[k].p[0] &&
			    !memcmp(s + i, values[k].p, values[k].len)) {
				skip = values[k].len;
				tag = values[k].tag;
				break;
			}
		}
		if (!tag && s[i] == ':' && i + 2 < len && s[i + 1] == '/' && s[i + 2] == '/') {
			/* back up to the scheme start already copied: find it in s */
			size_t b = i;
			while (b > run && b > 0 && (s[b - 1] == '+' || s[b - 1] == '-' || s[b - 1] == '.' ||
						    (s[b - 1] >= 'a' && s[b - 1] <= 'z') ||
						    (s[b - 1] >= 'A' && s[b - 1] <= 'Z') ||
						    (s[b - 1] >= '0' && s[b - 1] <= '9')))
				b--;
			size_t u = userinfo_len(s + b, len - b);
			if (u) {
				buf_add(out, s + run, i + 3 - run);
				i += 3;
				run = i + u;
				i = run;
				continue;
			}
		}
		if (tag) {
			buf_add(out, s + run, i - run);
			buf_adds(out, tag);
			i += skip;
			run = i;
			continue;
		}
		i++;
	}
	pthread_rwlock_unlock(&values_lock);
	buf_add(out, s + run, len - run);
}

char *redact_inplace(char *s, size_t cap)
{
	size_t len = strlen(s);
	if (!nvalues && !memmem(s, len, "://", 3))
		return s;
	struct buf b = BUF_INIT;
	redact_buf(&b, s, len);
	size_t n = b.len < cap - 1 ? b.len : cap - 1;
	memcpy(s, b.ptr ? b.ptr : "", n);
	s[n] = '\0';
	redact_wipe(b.ptr, b.cap);
	buf_release(&b);
	return s;
}
