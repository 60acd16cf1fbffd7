/* SPDX-License-Identifier: MIT */
/*
 * Host variables. Substitution is deliberately dumb: a fixed set of names,
 * one pass over the text, values pasted in as they are and never scanned
 * again, so a value can neither run anything nor reach another variable.
 */
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "core/pass.h"
#include "core/vars.h"

static int ident_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int ident_char(char c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

const char *vars_check_key(const char *key)
{
	size_t n = strlen(key);
	if (!n || !ident_start(key[0]))
		return "must start with a letter or '_'";
	if (n > VARS_MAX_KEY)
		return "must be at most 64 characters";
	for (size_t i = 1; i < n; i++)
		if (!ident_char(key[i]))
			return "may hold only letters, digits and '_'";
	return NULL;
}

int vars_has_ref(const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	while (p < end && (p = memchr(p, '$', (size_t)(end - p)))) {
		if (p + 1 < end && p[1] == '{')
			return 1;
		p++;
	}
	return 0;
}

static const char *host_value(const struct vars *v, const char *name, size_t n)
{
	static const char *const names[] = { "name", "os", "arch", NULL };
	for (int i = 0; names[i]; i++) {
		if (strlen(names[i]) != n || memcmp(names[i], name, n))
			continue;
		if (!v)
			return "";
		return i == 0 ? v->host_name : i == 1 ? v->host_os : v->host_arch;
	}
	return NULL;
}

/* A name fit to be echoed in a message: short printable ASCII. */
static int echoable(const char *s, size_t n)
{
	if (n > 80)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

int vars_expand(const struct vars *v, struct arena *a, const char *s, size_t len, size_t max,
		struct buf *out, const char **why, size_t *at)
{
	size_t i = 0, lit = 0, base = out ? out->len : 0;
	while (i < len) {
		const char *d = memchr(s + i, '$', len - i);
		if (!d)
			break;
		i = (size_t)(d - s);
		if (i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
			/* "$${": a literal "${" */
			if (out) {
				buf_add(out, s + lit, i - lit);
				buf_adds(out, "${");
			}
			i += 3;
			lit = i;
			continue;
		}
		if (i + 1 >= len || s[i + 1] != '{') {
			i++;
			continue;
		}
		const char *name = s + i + 2;
		const char *close = memchr(name, '}', len - i - 2);
		const char *nl = memchr(name, '\n', len - i - 2);
		*at = i;
		if (!close || (nl && nl < close)) {
			*why = "unterminated '${' (write '$${' for a literal '${')";
			return -1;
		}
		size_t n = (size_t)(close - name);
		const char *val = NULL;
		if (n > 5 && !memcmp(name, "host.", 5)) {
			val = host_value(v, name + 5, n - 5);
			if (!val) {
				*why = echoable(name, n) ?
				       arena_printf(a, "unknown variable '%.*s' (host has name, os and arch)",
						    (int)n, name) :
				       "unknown host variable (host has name, os and arch)";
				return -1;
			}
		} else if (n > 5 && !memcmp(name, "vars.", 5)) {
			const char *key = name + 5;
			size_t kn = n - 5;
			int ok = kn <= VARS_MAX_KEY && ident_start(key[0]);
			for (size_t k = 1; ok && k < kn; k++)
				ok = ident_char(key[k]);
			if (!ok) {
				*why = echoable(name, n) ?
				       arena_printf(a, "'${%.*s}' is not a variable name: vars.KEY has KEY"
						    " [A-Za-z_][A-Za-z0-9_]*", (int)n, name) :
				       "a variable name is vars.KEY with KEY [A-Za-z_][A-Za-z0-9_]*";
				return -1;
			}
			if (v) {
				for (size_t k = 0; k < v->n && !val; k++)
					if (strlen(v->keys[k]) == kn && !memcmp(v->keys[k], key, kn))
						val = v->vals[k];
				if (!val) {
					*why = arena_printf(a, "unknown variable 'vars.%.*s' (not set in 'vars' of"
							    " the agent config)", (int)kn, key);
					return -1;
				}
			} else {
				val = "";
			}
		} else {
			*why = echoable(name, n) ?
			       arena_printf(a, "'${%.*s}' is not a variable: use ${host.name}, ${host.os},"
					    " ${host.arch} or ${vars.KEY} (and '$${' for a literal '${')",
					    (int)n, name) :
			       "'${' starts something that is not a variable: use ${host.name}, ${host.os},"
			       " ${host.arch} or ${vars.KEY} (and '$${' for a literal '${')";
			return -1;
		}
		if (out) {
			buf_add(out, s + lit, i - lit);
			buf_adds(out, val);
			if (out->len - base > max) {
				*why = arena_printf(a, "is more than %zu bytes once variables are substituted",
						    max);
				return -1;
			}
		}
		i = (size_t)(close - s) + 1;
		lit = i;
	}
	if (out)
		buf_add(out, s + lit, len - lit);
	if (out && out->len - base > max) {
		*at = 0;
		*why = arena_printf(a, "is more than %zu bytes once variables are substituted", max);
		return -1;
	}
	return 0;
}

void vars_line_col(const char *s, size_t at, int *line, int *col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < at; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

/* ID= of an os-release file: unquoted, lower case [a-z0-9._-] (os-release(5)). */
static const char *os_id(struct arena *a, const struct buf *b)
{
	const char *p = b->ptr ? b->ptr : "";
	while (*p) {
		size_t n = strcspn(p, "\n");
		if (n > 3 && !memcmp(p, "ID=", 3)) {
			const char *v = p + 3;
			size_t vn = n - 3;
			if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
				v++;
				vn -= 2;
			}
			if (!vn || vn > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789._-") < vn)
				return NULL;
			return arena_strndup(a, v, vn);
		}
		p += n + (p[n] == '\n');
	}
	return NULL;
}

void pass_set_vars(struct pass *p, const char *const *keys, const char *const *vals, size_t n)
{
	struct vars *v = arena_alloc(&p->arena, sizeof(*v));
	char host[256];
	struct utsname u;

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	v->host_name = arena_strdup(&p->arena, host);
	v->host_arch = arena_strdup(&p->arena, uname(&u) == 0 ? u.machine : "unknown");
	/* the os of the tree being managed (--root), not of the machine */
	static const char *const files[] = { "/etc/os-release", "/usr/lib/os-release", NULL };
	for (int i = 0; files[i] && !v->host_os; i++) {
		struct buf b = BUF_INIT;
		if (p->root.fd >= 0 && fs_read(&p->root, files[i], 64u << 10, &b) == 0)
			v->host_os = os_id(&p->arena, &b);
		buf_release(&b);
	}
	if (!v->host_os)
		v->host_os = "linux";
	const char **k = arena_alloc(&p->arena, (n + 1) * sizeof(*k));
	const char **val = arena_alloc(&p->arena, (n + 1) * sizeof(*val));
	for (size_t i = 0; i < n; i++) {
		k[i] = arena_strdup(&p->arena, keys[i]);
		val[i] = arena_strdup(&p->arena, vals[i]);
	}
	v->keys = k;
	v->vals = val;
	v->n = n;
	p->vars = v;
}
