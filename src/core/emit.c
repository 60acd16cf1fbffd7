/* SPDX-License-Identifier: MIT */
/*
 * The composed manifests of a revision as YAML (plan -o yaml): what the
 * kinds' field tables hold after layers, patches and host variables, one
 * document per resource, in load order. Written from the resource model,
 * not from the YAML trees, so it shows exactly what driftless understood;
 * every string is double-quoted and text is a literal block when it can be,
 * so the output parses back to the same resources.
 */
#include <string.h>
#include "core/pass.h"

/* Valid UTF-8 without control characters other than tab (and newline when nl). */
static int clean_text(const char *s, size_t len, int nl)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && !(nl && c == '\n')) || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (!n || n > len - i || (c & 0xfe) == 0xc0)
			return 0;
		for (size_t k = 1; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += n;
	}
	return 1;
}

/* esc: the value had host variables substituted; a "${" in it is written
 * "$${", so that reading the output back gives the same value */
static void quoted(struct buf *b, const char *s, size_t len, int esc)
{
	buf_addch(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (esc && c == '$' && i + 1 < len && s[i + 1] == '{')
			buf_addch(b, '$');
		switch (c) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\t': buf_adds(b, "\\t"); break;
		case '\r': buf_adds(b, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_addf(b, "\\x%02x", c);
			else
				buf_addch(b, (char)c);
		}
	}
	buf_addch(b, '"');
}

/* Text as a literal block (indented by ind) when it reads back unchanged. */
static void text(struct buf *b, const char *s, size_t len, int ind, int esc)
{
	if (!len || !memchr(s, '\n', len) || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' ||
	    !clean_text(s, len, 1)) {
		quoted(b, s, len, esc);
		buf_addch(b, '\n');
		return;
	}
	size_t trail = 0;
	while (trail < len && s[len - 1 - trail] == '\n')
		trail++;
	buf_adds(b, trail == 0 ? "|-\n" : trail == 1 ? "|\n" : "|+\n");
	for (const char *l = s, *end = s + len; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t n = nl ? (size_t)(nl - l) : (size_t)(end - l);
		if (n)
			buf_addf(b, "%*s", ind, "");
		for (size_t i = 0; i < n; i++) {
			if (esc && l[i] == '$' && i + 1 < n && l[i + 1] == '{')
				buf_addch(b, '$');
			buf_addch(b, l[i]);
		}
		buf_addch(b, '\n');
		l += n + 1;
	}
}

/* The value of bool field 'template' of res (-1: unset or none). */
static int tmpl(const struct resource *res)
{
	for (const struct field *g = res->kind->fields; g->name; g++)
		if (g->type == FIELD_BOOL && !strcmp(g->name, "template"))
			return *(const int *)((const char *)res->spec + g->offset);
	return -1;
}

static void field(struct buf *b, const struct resource *res, const struct field *f)
{
	const char *slot = (const char *)res->spec + f->offset;
	switch (f->type) {
	case FIELD_TEXT: {
		const struct text *t = (const struct text *)slot;
		if (!t->ptr)
			return;
		if (!clean_text(t->ptr, t->len, 1) && memchr(t->ptr, 0, t->len)) {
			buf_addf(b, "  # %s: %zu bytes of binary content, not shown\n", f->name, t->len);
			return;
		}
		if (!clean_text(t->ptr, t->len, 1)) {
			buf_addf(b, "  # %s: %zu bytes that are not UTF-8 text, not shown\n", f->name, t->len);
			return;
		}
		buf_addf(b, "  %s: ", f->name);
		text(b, t->ptr, t->len, 4, tmpl(res) == 1);
		return;
	}
	case FIELD_MODE: {
		const struct optmode *m = (const struct optmode *)slot;
		if (m->set)
			buf_addf(b, "  %s: \"%04o\"\n", f->name, (unsigned)m->mode);
		return;
	}
	case FIELD_BOOL: {
		int v = *(const int *)slot;
		if (v >= 0)
			buf_addf(b, "  %s: %s\n", f->name, v ? "true" : "false");
		return;
	}
	case FIELD_ENUM: {
		int v = *(const int *)slot;
		if (v > 0)	/* the first value is the default */
			buf_addf(b, "  %s: %s\n", f->name, f->enums[v]);
		return;
	}
	case FIELD_LIST: {
		const char *const *l = *(const char *const *const *)slot;
		if (!l)
			return;
		buf_addf(b, "  %s: [", f->name);
		for (size_t i = 0; l[i]; i++) {
			if (i)
				buf_adds(b, ", ");
			quoted(b, l[i], strlen(l[i]), 1);
		}
		buf_adds(b, "]\n");
		return;
	}
	case FIELD_MAP: {
		const char *const *m = *(const char *const *const *)slot;
		if (!m)
			return;
		buf_addf(b, "  %s: {", f->name);
		for (size_t i = 0; m[i] && m[i + 1]; i += 2) {
			const char *v = m[i + 1];
			buf_adds(b, i ? ", " : "");
			quoted(b, m[i], strlen(m[i]), 0);
			buf_adds(b, ": ");
			if (*v == '=') {
				quoted(b, v + 1, strlen(v + 1), 1);
				continue;
			}
			buf_addch(b, '[');
			for (const char *it = v + 1, *nl; (nl = strchr(it, '\n')); it = nl + 1) {
				buf_adds(b, it == v + 1 ? "" : ", ");
				quoted(b, it, (size_t)(nl - it), 1);
			}
			buf_addch(b, ']');
		}
		buf_adds(b, "}\n");
		return;
	}
	case FIELD_STR:
	case FIELD_PATH:
	case FIELD_ID:
	case FIELD_RELPATH:
	case FIELD_TARGET: {
		const char *s = *(const char *const *)slot;
		if (!s)
			return;
		buf_addf(b, "  %s: ", f->name);
		quoted(b, s, strlen(s), 1);
		buf_addch(b, '\n');
		return;
	}
	}
	buf_addf(b, "  # %s: not shown\n", f->name);	/* a field type this code does not know */
}

/* Whether the content of a File-like spec is shown: not when it was
 * rendered from a 'source' template (the source names it). */
static int shows(const struct resource *res, const struct field *f)
{
	if (f->type != FIELD_TEXT)
		return 1;
	for (const struct field *g = res->kind->fields; g->name; g++)
		if (g->type == FIELD_RELPATH && !strcmp(g->name, "source") &&
		    *(const char *const *)((const char *)res->spec + g->offset))
			return 0;
	return 1;
}

void manifest_emit(const struct pass *p, struct buf *out)
{
	for (size_t i = 0; i < p->nres; i++) {
		const struct resource *res = p->res[i];
		if (res->parent)
			continue;	/* expanded from a Directory's source: not in Git as such */
		buf_addf(out, "---\n# %s from %s:%d:%d\n", res->id, res->pos.file ? res->pos.file : "?",
			 res->pos.line, res->pos.col);
		buf_addf(out, "apiVersion: driftless/v1\nkind: %s\nmetadata:\n  name: %s\n",
			 res->kind->name, res->name);
		if (res->drift || !res->prune) {
			buf_adds(out, "  annotations:\n");
			if (res->drift)
				buf_addf(out, "    driftless/drift: %s\n", drift_names[res->drift]);
			if (!res->prune)
				buf_adds(out, "    driftless/prune: \"false\"\n");
		}
		buf_adds(out, "spec:\n");
		size_t before = out->len;
		for (const struct field *f = res->kind->fields; f->name; f++)
			if (shows(res, f))
				field(out, res, f);
		if (res->ndep_ids) {
			buf_adds(out, "  dependsOn: [");
			for (size_t d = 0; d < res->ndep_ids; d++) {
				if (d)
					buf_adds(out, ", ");
				quoted(out, res->dep_ids[d], strlen(res->dep_ids[d]), 0);
			}
			buf_adds(out, "]\n");
		}
		if (out->len == before) {
			out->len -= 6;	/* "spec:\n" of an empty spec: {} */
			buf_adds(out, "spec: {}\n");
		}
	}
}
