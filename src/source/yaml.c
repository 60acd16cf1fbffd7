/* SPDX-License-Identifier: MIT */
/* The only file that includes libfyaml: YAML text to a small tree of ynodes. */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libfyaml.h>
#include "source/yaml.h"
#include "lib/err.h"

const struct ylimits yaml_default_limits = {
	.max_depth = 64,
	.max_nodes = 1000000,
	.max_scalar = 16 * 1024 * 1024,
	.max_docs = 10000,
};

/*
 * Problems that do not stop the parse (anchors, tags, duplicate or
 * non-scalar keys) are capped per file, so a generated file with a
 * million duplicate keys yields a readable report rather than a flood.
 */
#define YAML_MAX_PROBLEMS 100

/* Keys are quoted in messages up to this many bytes. */
#define YAML_KEY_SHOWN 64

/* One key already seen in one mapping, for duplicate detection. */
struct yslot {
	const struct ynode *map;	/* NULL: free slot */
	const struct ynode *key;
	uint64_t hash;
};

/* Open addressing over (mapping, key bytes); cap is 0 or a power of two. */
struct ykeys {
	struct yslot *v;
	size_t n, cap;
};

/* An open mapping or sequence: its children sit on the item stack. */
struct yframe {
	struct ynode *node;
	size_t base;
};

struct yparse {
	struct arena *a;
	const char *file;
	const struct ylimits *lim;
	const char *data;	/* the input, for what libfyaml misreads */
	size_t len;
	struct diag *diag;
	size_t problems;
	int stop;
	int seen_anchor, seen_tag;
	size_t nodes;

	/* Explicit stacks, not recursion: depth is bounded by lim alone. */
	struct yframe *frames;
	size_t nframes, frames_cap;
	struct ynode **items;
	size_t nitems, items_cap;
	struct ykeys keys;

	/* The current document and the ones kept so far. */
	size_t doc_count;	/* documents seen, empty ones included */
	int doc_index, doc_line, doc_col, doc_checked;
	struct ynode *root;
	struct ydoc *docs;
	size_t ndocs, docs_cap;

	/* End of the last event that had a position (1-based). */
	int last_line, last_col;
	/* First message libfyaml logged without a token to collect. */
	char log[256];
};

static void yaml_vproblem(struct yparse *p, int line, int col, int fatal,
			  const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void yaml_vproblem(struct yparse *p, int line, int col, int fatal,
			  const char *fmt, va_list ap)
{
	char msg[512];

	if (p->stop)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(p->diag, p->file, line, col, "%s", msg);
	p->problems++;
	if (fatal) {
		p->stop = 1;
	} else if (p->problems == YAML_MAX_PROBLEMS) {
		diag_add(p->diag, p->file, 0, 0, "too many errors, stopping");
		p->stop = 1;
	}
}

/* A problem in the input; parsing goes on to find the others. */
static void yaml_problem(struct yparse *p, int line, int col,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void yaml_problem(struct yparse *p, int line, int col,
			 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yaml_vproblem(p, line, col, 0, fmt, ap);
	va_end(ap);
}

/* A problem after which nothing more can be trusted: parsing stops. */
static void yaml_fatal(struct yparse *p, int line, int col,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void yaml_fatal(struct yparse *p, int line, int col,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yaml_vproblem(p, line, col, 1, fmt, ap);
	va_end(ap);
}

/*
 * libfyaml handed out events in an order YAML does not allow: a bug on
 * its side, reported rather than trusted (or aborted on).
 */
static void yaml_bad_events(struct yparse *p)
{
	yaml_fatal(p, p->last_line, p->last_col,
		   "yaml syntax error: unexpected parser event");
}

/*
 * Copy a key for a message: control bytes become \xNN so a hostile file
 * cannot drive the terminal, and long keys are cut short.
 */
static void yaml_show(char *dst, size_t cap, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= cap || i == YAML_KEY_SHOWN) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
		else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

static void yaml_mark_pos(const struct fy_mark *m, int *line, int *col)
{
	*line = m->line + 1;
	*col = m->column + 1;
}

/*
 * The 1-based position of a node event. libfyaml marks quoted scalars
 * and aliases at their first byte after the quote or '*'; step back onto
 * it. Empty scalars have no mark at all: use the end of what came before.
 */
static void yaml_event_pos(struct yparse *p, struct fy_event *ev, int *line,
			   int *col)
{
	const struct fy_mark *m = fy_event_start_mark(ev);
	int back = 0;

	if (!m) {
		*line = p->last_line;
		*col = p->last_col;
		return;
	}
	yaml_mark_pos(m, line, col);
	if (ev->type == FYET_ALIAS) {
		back = 1;
	} else if (ev->type == FYET_SCALAR) {
		enum fy_scalar_style st;

		st = fy_token_scalar_style(ev->scalar.value);
		back = st == FYSS_SINGLE_QUOTED || st == FYSS_DOUBLE_QUOTED;
	}
	if (back && *col > 1)
		(*col)--;
}

/* Anchor tokens are marked after the '&'; tags at their '!'. */
static void yaml_token_pos(struct yparse *p, struct fy_token *t, int back,
			   int *line, int *col)
{
	const struct fy_mark *m = fy_token_start_mark(t);

	if (!m) {
		*line = p->last_line;
		*col = p->last_col;
		return;
	}
	yaml_mark_pos(m, line, col);
	if (back && *col > 1)
		(*col)--;
}

static uint64_t yaml_hash(const struct ynode *map, const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)map;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static void yaml_keys_grow(struct ykeys *k)
{
	size_t cap = k->cap ? k->cap * 2 : 64;
	struct yslot *v = xcalloc(cap, sizeof(*v));

	for (size_t i = 0; i < k->cap; i++) {
		size_t j;

		if (!k->v[i].map)
			continue;
		j = k->v[i].hash & (cap - 1);
		while (v[j].map)
			j = (j + 1) & (cap - 1);
		v[j] = k->v[i];
	}
	free(k->v);
	k->v = v;
	k->cap = cap;
}

/* Record key in map; return the earlier key with the same bytes, if any. */
static const struct ynode *yaml_keys_put(struct ykeys *k,
					 const struct ynode *map,
					 const struct ynode *key)
{
	uint64_t h = yaml_hash(map, key->str, key->len);
	size_t j;

	if ((k->n + 1) * 2 > k->cap)
		yaml_keys_grow(k);
	for (j = h & (k->cap - 1); k->v[j].map; j = (j + 1) & (k->cap - 1)) {
		const struct yslot *s = &k->v[j];

		if (s->hash == h && s->map == map && s->key->len == key->len &&
		    !memcmp(s->key->str, key->str, key->len))
			return s->key;
	}
	k->v[j].map = map;
	k->v[j].key = key;
	k->v[j].hash = h;
	k->n++;
	return NULL;
}

/* The document limit counts empty documents too: they cost parsing time. */
static void yaml_doc_check(struct yparse *p, int line, int col)
{
	if (p->doc_checked)
		return;
	p->doc_checked = 1;
	if (p->doc_count <= p->lim->max_docs)
		return;
	if (p->doc_line) {
		line = p->doc_line;
		col = p->doc_col;
	}
	yaml_fatal(p, line, col, "more than %zu documents", p->lim->max_docs);
}

static void yaml_doc_start(struct yparse *p, struct fy_event *ev)
{
	struct fy_token *t = ev->document_start.document_start;
	const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;

	p->doc_index = p->doc_count < INT_MAX ? (int)p->doc_count : INT_MAX;
	p->doc_count++;
	p->doc_checked = 0;
	p->root = NULL;
	if (m && !ev->document_start.implicit) {
		yaml_mark_pos(m, &p->doc_line, &p->doc_col);
	} else {
		p->doc_line = 0;
		p->doc_col = 0;
	}
}

static void yaml_doc_end(struct yparse *p)
{
	struct ydoc *d;

	yaml_doc_check(p, p->last_line, p->last_col);
	if (!p->root || p->stop)
		return;
	if (p->ndocs == p->docs_cap) {
		p->docs_cap = p->docs_cap ? p->docs_cap * 2 : 8;
		p->docs = xrealloc(p->docs, p->docs_cap * sizeof(*p->docs));
	}
	d = &p->docs[p->ndocs++];
	d->root = p->root;
	d->index = p->doc_index;
	d->line = p->doc_line ? p->doc_line : p->root->line;
	d->col = p->doc_line ? p->doc_col : p->root->col;
	p->root = NULL;
}

/* A document whose only content is the empty scalar libfyaml makes up. */
static int yaml_is_empty_doc(struct yparse *p, struct fy_event *ev)
{
	return !p->nframes && !p->root && ev->type == FYET_SCALAR &&
	       !fy_event_start_mark(ev) && !ev->scalar.anchor &&
	       !ev->scalar.tag &&
	       fy_token_scalar_style(ev->scalar.value) == FYSS_PLAIN &&
	       fy_token_get_text_length(ev->scalar.value) == 0;
}

static void yaml_push_item(struct yparse *p, struct ynode *node)
{
	if (p->nitems == p->items_cap) {
		p->items_cap = p->items_cap ? p->items_cap * 2 : 64;
		p->items = xrealloc(p->items, p->items_cap * sizeof(*p->items));
	}
	p->items[p->nitems++] = node;
}

static void yaml_check_key(struct yparse *p, const struct ynode *map,
			   const struct ynode *key, int check_dup)
{
	const struct ynode *first;
	char shown[YAML_KEY_SHOWN * 4 + 8];

	if (key->type != YNODE_SCALAR) {
		yaml_problem(p, key->line, key->col,
			     "mapping keys must be scalars");
		return;
	}
	if (!check_dup || !(first = yaml_keys_put(&p->keys, map, key)))
		return;
	yaml_show(shown, sizeof(shown), key->str, key->len);
	yaml_problem(p, key->line, key->col,
		     "duplicate key '%s' (first at line %d, column %d)",
		     shown, first->line, first->col);
}

/* Hang node under the open container, or make it the document's root. */
static void yaml_attach(struct yparse *p, struct ynode *node, int check_dup)
{
	struct yframe *f;

	if (!p->nframes) {
		if (p->root)
			yaml_bad_events(p);
		p->root = node;
		return;
	}
	f = &p->frames[p->nframes - 1];
	if (f->node->type == YNODE_MAP && (p->nitems - f->base) % 2 == 0)
		yaml_check_key(p, f->node, node, check_dup);
	yaml_push_item(p, node);
}

static int yaml_is_break(char c)
{
	return c == '\n' || c == '\r';
}

static size_t yaml_skip_blanks(const char *s, size_t i, size_t end)
{
	while (i < end && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static size_t yaml_skip_break(const char *s, size_t i, size_t end)
{
	if (s[i] == '\r' && i + 1 < end && s[i + 1] == '\n')
		return i + 2;
	return i + 1;
}

/*
 * Decode the body of a single-quoted scalar, s[i, end), into out (at
 * least end - i + 1 bytes): '' is a quote, lines fold as in YAML 1.2
 * 7.3.2. libfyaml 0.7.12 decodes runs of '' wrongly ('a''''b' reads as
 * "a'''") and leaks when there are many, so this one style is done here.
 */
static size_t yaml_single_quoted(const char *s, size_t i, size_t end,
				 char *out)
{
	size_t o = 0;

	while (i < end) {
		size_t j, breaks;

		if (s[i] == '\'') {
			out[o++] = '\'';
			i += 2;
		} else if (s[i] == ' ' || s[i] == '\t') {
			/* blanks before a line break are dropped */
			j = yaml_skip_blanks(s, i, end);
			if (j == end || !yaml_is_break(s[j])) {
				memcpy(out + o, s + i, j - i);
				o += j - i;
			}
			i = j;
		} else if (yaml_is_break(s[i])) {
			/* one break folds to a space, n + 1 to n newlines */
			i = yaml_skip_break(s, i, end);
			breaks = 0;
			for (;;) {
				j = yaml_skip_blanks(s, i, end);
				if (j == end || !yaml_is_break(s[j]))
					break;
				breaks++;
				i = yaml_skip_break(s, j, end);
			}
			i = j;
			if (!breaks)
				out[o++] = ' ';
			while (breaks--)
				out[o++] = '\n';
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	return o;
}

/* The raw body of a single-quoted scalar, if its marks frame one. */
static int yaml_quoted_body(struct yparse *p, struct fy_event *ev,
			    size_t *start, size_t *end)
{
	const struct fy_mark *sm = fy_event_start_mark(ev);
	const struct fy_mark *em = fy_event_end_mark(ev);

	if (!sm || !em || sm->input_pos < 1 || em->input_pos >= p->len ||
	    sm->input_pos > em->input_pos ||
	    p->data[sm->input_pos - 1] != '\'' ||
	    p->data[em->input_pos] != '\'')
		return -1;
	*start = sm->input_pos;
	*end = em->input_pos;
	return 0;
}

/*
 * Copy a scalar's text through libfyaml's chunk iterator into the arena.
 * fy_token_get_text() formats into a buffer of the precomputed length; in
 * 0.7.12 the two sometimes disagree (runs of '', bare CRs in block
 * scalars), and it then truncates the text and leaks. A disagreement here
 * is reported as an error rather than guessed around.
 */
static int yaml_decode(struct yparse *p, struct fy_token *t, size_t want,
		       char **out)
{
	struct fy_token_iter *it = fy_token_iter_create(t);
	const struct fy_iter_chunk *c = NULL;
	char *str = arena_alloc(p->a, want + 1);
	size_t o = 0;
	int err = 0;

	if (!it)
		return -1;
	while ((c = fy_token_iter_chunk_next(it, c, &err))) {
		if (c->len > want - o) {
			err = -1;
			break;
		}
		if (c->len)
			memcpy(str + o, c->str, c->len);
		o += c->len;
	}
	fy_token_iter_destroy(it);
	if (err || o != want)
		return -1;
	str[o] = '\0';
	*out = str;
	return 0;
}

static void yaml_scalar(struct yparse *p, struct ynode *node,
			struct fy_event *ev)
{
	struct fy_token *t = ev->scalar.value;
	enum fy_scalar_style style = fy_token_scalar_style(t);
	size_t len = fy_token_get_text_length(t), start, end;
	char *str;

	if (len == (size_t)-1)
		goto bad;
	/* check before anything decodes (and allocates) the text */
	if (len > p->lim->max_scalar) {
		yaml_fatal(p, node->line, node->col,
			   "scalar longer than %zu bytes", p->lim->max_scalar);
		return;
	}
	if (style == FYSS_SINGLE_QUOTED &&
	    !yaml_quoted_body(p, ev, &start, &end)) {
		str = arena_alloc(p->a, end - start + 1);
		len = yaml_single_quoted(p->data, start, end, str);
	} else if (yaml_decode(p, t, len, &str)) {
		goto bad;
	}
	node->type = YNODE_SCALAR;
	node->str = str;
	node->len = len;
	node->quoted = style != FYSS_PLAIN;
	return;
bad:
	yaml_fatal(p, node->line, node->col,
		   "yaml syntax error: cannot decode this scalar");
}

static void yaml_node(struct yparse *p, struct fy_event *ev)
{
	struct fy_token *anchor = NULL, *tag = NULL;
	struct ynode *node;
	int line, col;

	if (yaml_is_empty_doc(p, ev))
		return;
	yaml_event_pos(p, ev, &line, &col);
	if (!p->nframes && !p->root) {
		yaml_doc_check(p, line, col);
		if (p->stop)
			return;
	}
	if (p->nodes >= p->lim->max_nodes) {
		yaml_fatal(p, line, col, "more than %zu nodes",
			   p->lim->max_nodes);
		return;
	}
	p->nodes++;

	if (ev->type != FYET_ALIAS) {
		anchor = fy_event_get_anchor_token(ev);
		tag = fy_event_get_tag_token(ev);
	}
	if ((ev->type == FYET_ALIAS || anchor) && !p->seen_anchor) {
		int l = line, c = col;

		if (anchor)
			yaml_token_pos(p, anchor, 1, &l, &c);
		p->seen_anchor = 1;
		yaml_problem(p, l, c, "anchors and aliases are not allowed");
	}
	if (tag && !p->seen_tag) {
		int l, c;

		yaml_token_pos(p, tag, 0, &l, &c);
		p->seen_tag = 1;
		yaml_problem(p, l, c, "tags are not allowed");
	}

	node = arena_alloc(p->a, sizeof(*node));
	node->line = line;
	node->col = col;
	switch (ev->type) {
	case FYET_SCALAR:
		yaml_scalar(p, node, ev);
		break;
	case FYET_ALIAS:
		/* already reported; a placeholder keeps the shape */
		node->type = YNODE_SCALAR;
		node->str = "";
		break;
	case FYET_MAPPING_START:
	case FYET_SEQUENCE_START:
		if (p->nframes >= p->lim->max_depth) {
			yaml_fatal(p, line, col,
				   "nesting deeper than %zu levels",
				   p->lim->max_depth);
			break;
		}
		node->type = ev->type == FYET_MAPPING_START ? YNODE_MAP
							    : YNODE_SEQ;
		break;
	default:
		BUG_ON(1);
	}
	if (p->stop)
		return;

	yaml_attach(p, node, ev->type == FYET_SCALAR);
	if (node->type == YNODE_SCALAR)
		return;
	if (p->nframes == p->frames_cap) {
		p->frames_cap = p->frames_cap ? p->frames_cap * 2 : 16;
		p->frames = xrealloc(p->frames,
				     p->frames_cap * sizeof(*p->frames));
	}
	p->frames[p->nframes].node = node;
	p->frames[p->nframes].base = p->nitems;
	p->nframes++;
}

/* Close the innermost container: move its children into the arena. */
static void yaml_close(struct yparse *p)
{
	struct yframe *f;
	struct ynode *node, **kids;
	size_t n;

	if (!p->nframes) {
		yaml_bad_events(p);
		return;
	}
	f = &p->frames[--p->nframes];
	node = f->node;
	n = p->nitems - f->base;
	if (node->type == YNODE_MAP && n % 2) {
		yaml_bad_events(p);
		return;
	}
	kids = n ? p->items + f->base : NULL;
	if (node->type == YNODE_MAP) {
		node->n = n / 2;
		if (node->n) {
			node->keys = arena_alloc(p->a,
						 node->n * sizeof(*node->keys));
			node->vals = arena_alloc(p->a,
						 node->n * sizeof(*node->vals));
		}
		for (size_t i = 0; i < node->n; i++) {
			node->keys[i] = kids[2 * i];
			node->vals[i] = kids[2 * i + 1];
		}
	} else {
		node->n = n;
		if (n) {
			node->vals = arena_alloc(p->a, n * sizeof(*node->vals));
			memcpy(node->vals, kids, n * sizeof(*node->vals));
		}
	}
	p->nitems = f->base;
}

static void yaml_event(struct yparse *p, struct fy_event *ev)
{
	const struct fy_mark *m;

	switch (ev->type) {
	case FYET_DOCUMENT_START:
		yaml_doc_start(p, ev);
		break;
	case FYET_DOCUMENT_END:
		yaml_doc_end(p);
		break;
	case FYET_SCALAR:
	case FYET_ALIAS:
	case FYET_MAPPING_START:
	case FYET_SEQUENCE_START:
		yaml_node(p, ev);
		break;
	case FYET_MAPPING_END:
	case FYET_SEQUENCE_END:
		yaml_close(p);
		break;
	default:
		break;
	}
	m = fy_event_end_mark(ev);
	if (m)
		yaml_mark_pos(m, &p->last_line, &p->last_col);
}

/*
 * libfyaml logs the few errors that have no token through the output
 * function instead of collecting them; keep the first as a fallback.
 */
static void yaml_log(struct fy_diag *fd, void *user, const char *buf,
		     size_t len)
{
	struct yparse *p = user;

	(void)fd;
	if (p->log[0])
		return;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len >= sizeof(p->log))
		len = sizeof(p->log) - 1;
	memcpy(p->log, buf, len);
	p->log[len] = '\0';
}

/* The parser stopped on its own: report its first error as ours. */
static void yaml_syntax_error(struct yparse *p, struct fy_diag *fd)
{
	struct fy_diag_error *e;
	void *iter = NULL;
	const char *msg = p->log[0] ? p->log : "invalid input";
	int line = 0, col = 0;
	char lower[2] = "";

	while ((e = fy_diag_errors_iterate(fd, &iter))) {
		if (e->type >= FYET_ERROR && e->msg && e->msg[0]) {
			msg = e->msg;
			line = e->line;
			col = e->column;
			break;
		}
	}
	/* a few libfyaml messages start upper case ("Illegal placement") */
	if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z') {
		lower[0] = (char)(msg[0] - 'A' + 'a');
		msg++;
	}
	yaml_fatal(p, line, col, "yaml syntax error: %s%s", lower, msg);
}

static int yaml_has_error(struct fy_diag *fd)
{
	struct fy_diag_error *e;
	void *iter = NULL;

	while ((e = fy_diag_errors_iterate(fd, &iter)))
		if (e->type >= FYET_ERROR)
			return 1;
	return 0;
}

/* Length of the UTF-8 sequence at s and its code point, or 0 if invalid. */
static size_t yaml_utf8(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* YAML's c-printable: what a stream may hold at all. */
static int yaml_printable(uint32_t c)
{
	if (c < 0x80)
		return c == '\t' || c == '\n' || c == '\r' ||
		       (c >= 0x20 && c != 0x7f);
	return c == 0x85 || (c >= 0xa0 && c != 0xfffe && c != 0xffff);
}

/*
 * After ':', blanks holding a tab and then an indicator. libfyaml 0.7.12
 * frees a simple key twice when it rejects this inside an explicit key
 * ("? ?:\t?"), so it must never see it. s[i] is the colon, at line:col.
 */
static int yaml_check_tab(struct yparse *p, const unsigned char *s, size_t i,
			  size_t len, int line, int col)
{
	size_t j = i + 1, tab = 0;

	while (j < len && (s[j] == ' ' || s[j] == '\t')) {
		if (s[j] == '\t' && !tab)
			tab = j - i;
		j++;
	}
	if (!tab || j == len)
		return 0;
	if ((s[j] && strchr("?:|>", s[j])) ||
	    (s[j] == '-' &&
	     (j + 1 == len || (s[j + 1] && strchr(" \t\r\n", s[j + 1]))))) {
		yaml_fatal(p, line, col + (int)tab,
			   "tab after ':' is not supported here, use spaces");
		return -1;
	}
	return 0;
}

/*
 * Check the whole input before libfyaml sees it: 0.7.12 silently stops
 * at a NUL byte (hiding whatever follows), loops forever on invalid
 * UTF-8 inside a directive ("%Y\xfa") and corrupts its heap on some
 * tabs (yaml_check_tab).
 */
static int yaml_check_text(struct yparse *p, const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	int line = 1, col = 1;
	size_t i = 0;

	while (i < len) {
		uint32_t c;
		size_t n = yaml_utf8(s + i, len - i, &c);

		if (!n) {
			yaml_fatal(p, line, col, "invalid UTF-8 byte 0x%02x",
				   s[i]);
			return -1;
		}
		if (!yaml_printable(c)) {
			yaml_fatal(p, line, col,
				   "character U+%04X is not allowed in yaml",
				   (unsigned int)c);
			return -1;
		}
		if (c == ':' && yaml_check_tab(p, s, i, len, line, col))
			return -1;
		i += n;
		if (c == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	return 0;
}

static void yaml_run(struct yparse *p, const char *data, size_t len)
{
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg;
	struct fy_diag *fd;
	struct fy_parser *fp = NULL;
	struct fy_event *ev;
	int ended = 0;

	if (yaml_check_text(p, data, len))
		return;

	/*
	 * FYPCF_COLLECT_DIAG alone still prints to stderr in 0.7.12; an own
	 * diag object with collection on keeps libfyaml silent.
	 */
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = yaml_log;
	dcfg.user = p;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	dcfg.show_source = false;
	dcfg.show_position = false;
	dcfg.show_type = false;
	dcfg.show_module = false;
	fd = fy_diag_create(&dcfg);
	if (!fd) {
		yaml_fatal(p, 0, 0, "cannot create the yaml parser");
		return;
	}
	fy_diag_set_collect_errors(fd, true);

	memset(&pcfg, 0, sizeof(pcfg));
	/* no recycling: ASan then sees any misuse of freed tokens */
	pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_DISABLE_RECYCLING;
	pcfg.diag = fd;
	fp = fy_parser_create(&pcfg);
	/* a length of (size_t)-1 would mean "NUL-terminated" to libfyaml */
	if (!fp || len == (size_t)-1 ||
	    fy_parser_set_string(fp, len ? data : "", len)) {
		yaml_fatal(p, 0, 0, "cannot create the yaml parser");
		goto out;
	}

	while (!p->stop && (ev = fy_parser_parse(fp))) {
		if (ev->type == FYET_STREAM_END)
			ended = 1;
		yaml_event(p, ev);
		fy_parser_event_free(fp, ev);
	}
	/*
	 * When we stopped first, libfyaml may have scanned ahead and found
	 * more: the first problem is the one worth reporting.
	 */
	if (!p->stop && (!ended || fy_parser_get_stream_error(fp) ||
			 yaml_has_error(fd)))
		yaml_syntax_error(p, fd);
out:
	/* the parser holds a reference; only destroy frees collected errors */
	fy_parser_destroy(fp);
	fy_diag_destroy(fd);
}

int yaml_parse(struct arena *a, const char *file, const char *data, size_t len,
	       const struct ylimits *lim, struct ystream *out,
	       struct diag *diag)
{
	struct yparse p;

	memset(&p, 0, sizeof(p));
	p.a = a;
	p.file = file;
	p.lim = lim ? lim : &yaml_default_limits;
	p.diag = diag;
	p.data = data;
	p.len = len;

	yaml_run(&p, data, len);

	if (!p.problems && !p.stop) {
		size_t size = p.ndocs * sizeof(*p.docs);

		out->docs = size ? arena_alloc(a, size) : NULL;
		if (size)
			memcpy(out->docs, p.docs, size);
		out->n = p.ndocs;
	}
	free(p.frames);
	free(p.items);
	free(p.keys.v);
	free(p.docs);
	return p.problems || p.stop ? -1 : 0;
}

struct ynode *yaml_map_get(const struct ynode *map, const char *key)
{
	size_t len;

	if (!map || map->type != YNODE_MAP)
		return NULL;
	len = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i];

		if (k->len == len && !memcmp(k->str, key, len))
			return map->vals[i];
	}
	return NULL;
}

int yaml_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!n || n->type != YNODE_SCALAR || n->quoted)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		if (n->len == strlen(nulls[i]) &&
		    !memcmp(n->str, nulls[i], n->len))
			return 1;
	}
	return 0;
}
