/* SPDX-License-Identifier: MIT */
/* Identifier and path hygiene: the first gate every string from Git passes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/check.h"

/* Decode one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n;
	uint32_t c, min;
	if ((s[0] & 0xe0) == 0xc0) { n = 2; c = s[0] & 0x1f; min = 0x80; }
	else if ((s[0] & 0xf0) == 0xe0) { n = 3; c = s[0] & 0x0f; min = 0x800; }
	else if ((s[0] & 0xf8) == 0xf0) { n = 4; c = s[0] & 0x07; min = 0x10000; }
	else return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static int invisible(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) ||		/* C1 controls */
	       c == 0xad ||				/* soft hyphen */
	       (c >= 0x300 && c <= 0x36f) ||		/* combining marks: not NFC */
	       c == 0x34f || c == 0x61c || c == 0x180e ||
	       (c >= 0x200b && c <= 0x200f) ||		/* zero-width, direction marks */
	       (c >= 0x2028 && c <= 0x202e) ||
	       (c >= 0x2060 && c <= 0x206f) ||
	       c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
}

const char *check_text(struct arena *a, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		uint32_t c;
		if (p[i] == 0)
			return "must not contain a NUL byte (U+0000)";
		if (p[i] < 0x20 || p[i] == 0x7f)
			return arena_printf(a, "must not contain the control character U+%04X", p[i]);
		size_t n = utf8_decode(p + i, len - i, &c);
		if (!n)
			return "is not valid UTF-8";
		if (invisible(c))
			return arena_printf(a, "must not contain the invisible or combining character U+%04X", (unsigned)c);
		i += n;
	}
	return NULL;
}

const char *check_name(const char *s)
{
	size_t n = strlen(s);
	if (!n)
		return "must not be empty";
	if (n > 253)
		return "must be at most 253 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if ((c == '-' || c == '.') && i > 0 && i < n - 1)
			continue;
		return "must match [a-z0-9]([-a-z0-9.]*[a-z0-9])?";
	}
	return NULL;
}

const char *check_account(const char *s)
{
	size_t n = strlen(s);
	if (!n)
		return "must not be empty";
	if (n > 32)
		return "must be at most 32 characters";
	int digits = 1;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			digits = 0;
	if (digits)
		return n > 10 ? "is not a valid numeric id" : NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			 (i > 0 && ((c >= '0' && c <= '9') || c == '.' || c == '-')) ||
			 (i == n - 1 && i > 0 && c == '$');
		if (!ok)
			return "must be a number or a name like 'www-data' ([A-Za-z_][A-Za-z0-9_.-]*)";
	}
	return NULL;
}

const char *check_account_name(const char *s)
{
	size_t n = strlen(s);
	if (n && strspn(s, "0123456789") == n)
		return "must be a name, not a number ([A-Za-z_][A-Za-z0-9_.-]*)";
	return check_account(s);
}

const char *check_numeric_id(const char *s, unsigned long *out)
{
	size_t n = strlen(s);
	if (!n || n > 10 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
		return "must be a number like 1000";
	unsigned long long v = strtoull(s, NULL, 10);
	if (v >= 4294967295ull)
		return "is out of range";
	*out = (unsigned long)v;
	return NULL;
}

const char *check_package_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 128)
		return "must be 2 to 128 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && (c == '+' || c == '-' || c == '.'));
		if (!ok)
			return "must be a Debian package name ([a-z0-9][a-z0-9+.-]+)";
	}
	return NULL;
}

const char *check_package_version(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 128)
		return "must be 1 to 128 characters";
	if (s[0] < '0' || s[0] > '9')
		return "must start with a digit (a Debian version: [epoch:]upstream[-revision])";
	const char *colon = strchr(s, ':');
	if (colon && (strchr(colon + 1, ':') || strspn(s, "0123456789") != (size_t)(colon - s)))
		return "must be a Debian version: [epoch:]upstream[-revision]";
	if (colon && (colon[1] < '0' || colon[1] > '9'))
		return "must be a Debian version: the upstream version starts with a digit";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '+' || c == '~' || c == '-' || c == ':'))
			return "must be a Debian version ([A-Za-z0-9.+~:-])";
	}
	if (s[n - 1] == '-')
		return "must not end with '-'";
	return NULL;
}

/* Normalise the components of s onto out (which already holds olen bytes;
 * floor is the length that ".." may not pop below). */
static const char *norm_components(char *out, size_t *olen, const char *s, size_t len,
				   int allow_up, size_t floor)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == '/')
			i++;
		size_t st = i;
		while (i < len && s[i] != '/')
			i++;
		size_t cl = i - st;
		if (!cl || (cl == 1 && s[st] == '.'))
			continue;
		if (cl == 2 && s[st] == '.' && s[st + 1] == '.') {
			if (!allow_up)
				return "must not contain '..'";
			if (*olen <= floor)
				return "leaves the repository";
			while (*olen > floor && out[*olen - 1] != '/')
				(*olen)--;
			if (*olen > floor)
				(*olen)--;
			continue;
		}
		if (*olen > 0 && out[*olen - 1] != '/')
			out[(*olen)++] = '/';
		memcpy(out + *olen, s + st, cl);
		*olen += cl;
	}
	out[*olen] = '\0';
	return NULL;
}

const char *check_host_path(struct arena *a, const char *s, size_t len, const char **out)
{
	const char *e = check_text(a, s, len);
	if (e)
		return e;
	if (!len || s[0] != '/')
		return "must be an absolute path";
	if (len > 4096)
		return "must be at most 4096 bytes";
	char *o = arena_alloc(a, len + 2);
	size_t olen = 1;
	o[0] = '/';
	e = norm_components(o, &olen, s, len, 0, 1);
	if (e)
		return e;
	*out = o;
	return NULL;
}

static const char *repo_path(struct arena *a, const char *base, const char *s, size_t len,
			     const char **out, int allow_root)
{
	const char *e = check_text(a, s, len);
	if (e)
		return e;
	if (!len)
		return "must not be empty";
	if (s[0] == '/')
		return "must be relative to the manifest, inside the repository";
	size_t blen = strlen(base);
	char *o = arena_alloc(a, blen + len + 2);
	size_t olen = 0;
	e = norm_components(o, &olen, base, blen, 0, 0);
	if (e)
		return e;
	e = norm_components(o, &olen, s, len, 1, 0);
	if (e)
		return e;
	if (!olen && !allow_root)
		return "names the repository root, not a file";
	*out = o;
	return NULL;
}

const char *check_repo_path(struct arena *a, const char *base, const char *s, size_t len,
			    const char **out)
{
	return repo_path(a, base, s, len, out, 0);
}

const char *check_repo_dir(struct arena *a, const char *base, const char *s, size_t len,
			   const char **out)
{
	return repo_path(a, base, s, len, out, 1);
}

int path_under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return 1;
	return !strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/');
}

const char *check_mode(const char *s, unsigned *out)
{
	static const char msg[] = "must be a quoted octal string like \"0644\"";
	size_t n = strlen(s);
	unsigned m = 0;
	if (n < 3 || n > 5 || (n == 5 && s[0] != '0'))
		return msg;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return msg;
		m = m * 8 + (unsigned)(s[i] - '0');
	}
	*out = m;
	return NULL;
}

static int is_git_component(const char *c, size_t n)
{
	/* trailing spaces and dots vanish on NTFS; case folds on HFS, NTFS, vfat */
	while (n > 0 && (c[n - 1] == ' ' || c[n - 1] == '.'))
		n--;
	const char *colon = memchr(c, ':', n);
	if (colon)
		n = (size_t)(colon - c);
	if (n == 4 && !strncasecmp(c, ".git", 4))
		return 1;
	if (n == 5 && !strncasecmp(c, "git~1", 5))
		return 1;
	return 0;
}

const char *check_git_path(const char *path)
{
	const char *p = path;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (is_git_component(p, n))
			return "is a git metadata name (never read or written)";
		p += n;
		while (*p == '/')
			p++;
	}
	return NULL;
}

const char *check_git_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *c = slash ? slash + 1 : path;
	return is_git_component(c, strlen(c)) ? "is a git metadata name (never read or written)" : NULL;
}
