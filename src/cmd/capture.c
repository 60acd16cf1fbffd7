/* SPDX-License-Identifier: MIT */
/*
 * driftless capture: turn a hand fix into a commit for review. The live
 * state of drifted resources is written back into a local clone of the
 * infrastructure repository: the `source:` file a manifest names, or the
 * manifest's own `content`, `mode`, `owner`, `group` or `target` value,
 * rewritten in place so the rest of the file (comments, order, style) stays
 * as it was. Each rewritten manifest is parsed again and checked to hold the
 * captured value before anything is committed. It never pushes, never
 * writes a Secret's plaintext, and refuses a clone whose HEAD is not the
 * applied revision or a descendant of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "cmd/run.h"
#include "core/vars.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "source/git.h"
#include "source/yaml.h"
#include "state/db.h"

#define CAPTURE_USAGE "driftless capture [Kind/name...] --into CLONE [--state DIR] [--root DIR] [-c FILE] [--identity FILE]"

struct edit {
	size_t off, end;	/* replace text[off, end) */
	char *with;
	const char *field;
	char *want;		/* the value the field must hold afterwards */
	size_t want_len;
	const struct resource *res;
};

struct mfile {
	char *path;		/* repository path */
	struct buf text;
	struct edit *v;
	size_t n, cap;
};

struct capture {
	struct run r;
	struct arena a;
	const char *into;
	struct mfile *files;
	size_t nfiles;
	const char **staged;	/* repository paths to commit */
	size_t nstaged;
	struct buf list;	/* "- File/motd /etc/motd (content)\n" ... */
};

static int read_file(const char *path, size_t max, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char tmp[65536];
	if (fd < 0)
		return err_set_errno("cannot read '%s'", path);
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return err_set_errno("cannot read '%s'", path);
		}
		if (!n)
			break;
		if (out->len + (size_t)n > max) {
			close(fd);
			return err_set("'%s' is larger than %zu bytes", path, max);
		}
		buf_add(out, tmp, (size_t)n);
	}
	close(fd);
	return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
	/* into the clone: an ordinary write, keeping the file's mode */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	const char *p = data;
	if (fd < 0)
		return err_set_errno("cannot write '%s'", path);
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return err_set_errno("cannot write '%s'", path);
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0)
		return err_set_errno("cannot write '%s'", path);
	return 0;
}

static void stage_path(struct capture *c, const char *repo_path)
{
	for (size_t i = 0; i < c->nstaged; i++)
		if (!strcmp(c->staged[i], repo_path))
			return;
	c->staged = xrealloc(c->staged, (c->nstaged + 1) * sizeof(*c->staged));
	c->staged[c->nstaged++] = arena_strdup(&c->a, repo_path);
}

static struct mfile *manifest_of(struct capture *c, const char *repo_path)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (!strcmp(c->files[i].path, repo_path))
			return &c->files[i];
	char *full = xasprintf("%s/%s", c->into, repo_path);
	struct mfile m = { .path = arena_strdup(&c->a, repo_path) };
	int r = read_file(full, 16u << 20, &m.text);
	free(full);
	if (r < 0) {
		buf_release(&m.text);
		return NULL;
	}
	c->files = xrealloc(c->files, (c->nfiles + 1) * sizeof(*c->files));
	c->files[c->nfiles] = m;
	return &c->files[c->nfiles++];
}

/* The document of res in a parsed manifest. */
static struct ynode *find_doc(const struct ystream *ys, const struct resource *res)
{
	for (size_t i = 0; i < ys->n; i++) {
		struct ynode *root = ys->docs[i].root, *k, *md, *nm;
		if (root->type != YNODE_MAP || !(k = yaml_map_get(root, "kind")) ||
		    k->type != YNODE_SCALAR || strcmp(k->str, res->kind->name) ||
		    !(md = yaml_map_get(root, "metadata")) || md->type != YNODE_MAP ||
		    !(nm = yaml_map_get(md, "name")) || nm->type != YNODE_SCALAR ||
		    strcmp(nm->str, res->name))
			continue;
		return root;
	}
	return NULL;
}

static struct ynode *spec_field(struct arena *a, struct mfile *m, const struct resource *res,
				const char *field, struct ynode **key)
{
	struct ystream ys = { 0 };
	struct diag d;
	diag_init(&d);
	int r = yaml_parse(a, m->path, m->text.ptr ? m->text.ptr : "", m->text.len,
			   &yaml_default_limits, &ys, &d);
	diag_release(&d);
	if (r < 0) {
		err_set("'%s' in the clone does not parse", m->path);
		return NULL;
	}
	struct ynode *doc = find_doc(&ys, res), *spec, *v;
	if (!doc || !(spec = yaml_map_get(doc, "spec")) || spec->type != YNODE_MAP) {
		err_set("'%s' in the clone has no document for %s", m->path, res->id);
		return NULL;
	}
	if (!(v = yaml_map_get(spec, field)) || v->type != YNODE_SCALAR) {
		err_set("%s in '%s' has no 'spec.%s' to rewrite", res->id, m->path, field);
		return NULL;
	}
	for (size_t i = 0; key && i < spec->n; i++)
		if (spec->vals[i] == v)
			*key = spec->keys[i];
	return v;
}

/* Byte offset of (line, col), both 1-based, col in characters. */
static int offset_of(const struct buf *t, int line, int col, size_t *out)
{
	size_t i = 0;
	for (int l = 1; l < line; l++) {
		const char *nl = memchr(t->ptr + i, '\n', t->len - i);
		if (!nl)
			return -1;
		i = (size_t)(nl - t->ptr) + 1;
	}
	for (int c = 1; c < col; c++) {
		if (i >= t->len || t->ptr[i] == '\n')
			return -1;
		i++;
		while (i < t->len && ((unsigned char)t->ptr[i] & 0xc0) == 0x80)
			i++;
	}
	*out = i;
	return 0;
}

static size_t line_start(const struct buf *t, size_t off)
{
	while (off > 0 && t->ptr[off - 1] != '\n')
		off--;
	return off;
}

static size_t indent_at(const struct buf *t, size_t ls)
{
	size_t n = 0;
	while (ls + n < t->len && t->ptr[ls + n] == ' ')
		n++;
	return n;
}

/* The end of the scalar that starts at off; *block when it is a block
 * scalar (the region then ends after its last content line's newline). */
static int scalar_end(const struct buf *t, size_t off, size_t *end, int *block)
{
	const char *s = t->ptr;
	size_t i = off;
	*block = 0;
	if (s[i] == '"') {
		for (i++; i < t->len; i++) {
			if (s[i] == '\\') {
				i++;
				continue;
			}
			if (s[i] == '"') {
				*end = i + 1;
				return 0;
			}
		}
		return -1;
	}
	if (s[i] == '\'') {
		for (i++; i < t->len; i++) {
			if (s[i] == '\'' && i + 1 < t->len && s[i + 1] == '\'') {
				i++;
				continue;
			}
			if (s[i] == '\'') {
				*end = i + 1;
				return 0;
			}
		}
		return -1;
	}
	if (s[i] == '|' || s[i] == '>') {
		size_t key_indent = indent_at(t, line_start(t, off));
		const char *nl = memchr(s + i, '\n', t->len - i);
		size_t last = nl ? (size_t)(nl - s) + 1 : t->len;
		i = last;
		while (i < t->len) {
			const char *e = memchr(s + i, '\n', t->len - i);
			size_t le = e ? (size_t)(e - s) + 1 : t->len;
			size_t ind = indent_at(t, i);
			int blank = i + ind >= le - (e ? 1 : 0);
			if (!blank && ind <= key_indent)
				break;
			if (!blank)
				last = le;
			i = le;
		}
		*end = last;
		*block = 1;
		return 0;
	}
	/* plain: to the end of the line, a comment, or a flow indicator */
	while (i < t->len && s[i] != '\n' && s[i] != ',' && s[i] != '}' && s[i] != ']' &&
	       !(s[i] == '#' && i > off && (s[i - 1] == ' ' || s[i - 1] == '\t')))
		i++;
	while (i > off && (s[i - 1] == ' ' || s[i - 1] == '\t'))
		i--;
	*end = i;
	return 0;
}

static int value_after_key(const struct buf *t, size_t off, size_t keylen, size_t *out)
{
	size_t i = off + keylen;
	if (i > t->len)
		return -1;
	while (i < t->len && (t->ptr[i] == ' ' || t->ptr[i] == '\t'))
		i++;
	if (i >= t->len || t->ptr[i] != ':')
		return -1;
	i++;
	while (i < t->len && (t->ptr[i] == ' ' || t->ptr[i] == '\t'))
		i++;
	/* a value on the lines below the key is not rewritten in place */
	if (i >= t->len || t->ptr[i] == '\n' || t->ptr[i] == '\r' || t->ptr[i] == '#')
		return -1;
	*out = i;
	return 0;
}

/* Can data be written as a "|" block scalar and read back byte for byte?
 * Printable lines, ending in exactly one newline, the first not starting
 * with a blank. */
static int literal_ok(const char *d, size_t len)
{
	if (!len || d[len - 1] != '\n' || (len > 1 && d[len - 2] == '\n') || d[0] == ' ' ||
	    d[0] == '\t' || d[0] == '\n')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return 0;
		if ((c == ' ' || c == '\t') && (i + 1 == len || d[i + 1] == '\n'))
			return 0;	/* trailing blanks are easy to lose in review */
	}
	return 1;
}

/* A YAML double-quoted scalar holding exactly data. */
static char *quoted(const char *data, size_t len)
{
	struct buf b = BUF_INIT;
	buf_add_json_strn(&b, data, len);
	return buf_detach(&b);
}

/* Whether host variables are substituted in field of res: every string
 * field, and text only in a template. */
static int substituted(const struct resource *res, const char *field)
{
	const struct field *f, *t = NULL;
	for (f = res->kind->fields; f->name && strcmp(f->name, field); f++)
		;
	for (const struct field *g = res->kind->fields; g->name; g++)
		if (g->type == FIELD_BOOL && !strcmp(g->name, "template"))
			t = g;
	if (!f->name || f->type == FIELD_BOOL)
		return 0;
	return f->type != FIELD_TEXT || (t && *(const int *)((const char *)res->spec + t->offset) == 1);
}

static int add_edit(struct capture *c, const struct resource *res, const char *field,
		    const char *value, size_t len)
{
	/* a value a layer's patch wrote is not in the manifest: editing the
	 * manifest would change nothing */
	struct srcpos from = res_field_pos(res, field);
	if (from.file && res->manifest && strcmp(from.file, res->manifest))
		return err_set("'spec.%s' of %s comes from a patch in '%s' (line %d); capture it by hand",
			       field, res->id, from.file, from.line);
	struct mfile *m = manifest_of(c, res->manifest);
	if (!m)
		return -1;
	struct ynode *key = NULL;
	struct ynode *v = spec_field(&c->a, m, res, field, &key);
	size_t off, end;
	int block;
	if (!v)
		return -1;
	/* the manifest is shared by hosts: never write one host's values over ${...} */
	if (substituted(res, field) && vars_has_ref(v->str, v->len))
		return err_set("'spec.%s' of %s in '%s' uses host variables (${...}); capture it by hand",
			       field, res->id, m->path);
	/* from the key (a block scalar's own position is its first content
	 * line): past "key", blanks, ':' and blanks is where the value starts */
	if (!key || key->quoted || offset_of(&m->text, key->line, key->col, &off) < 0 ||
	    value_after_key(&m->text, off, key->len, &off) < 0 ||
	    scalar_end(&m->text, off, &end, &block) < 0)
		return err_set("cannot find the value of 'spec.%s' of %s in '%s'; capture it by hand",
			       field, res->id, m->path);
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 4;
		m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	struct edit *e = &m->v[m->n++];
	e->off = off;
	e->end = end;
	if (block && literal_ok(value, len)) {
		/* keep a block scalar a block scalar: the diff shows the lines */
		struct buf b = BUF_INIT;
		size_t ind = indent_at(&m->text, line_start(&m->text, off)) + 2;
		buf_adds(&b, "|\n");
		for (const char *l = value; l < value + len;) {
			const char *nl = memchr(l, '\n', (size_t)(value + len - l));
			if (nl > l)
				buf_addf(&b, "%*s", (int)ind, "");
			buf_add(&b, l, (size_t)(nl - l) + 1);
			l = nl + 1;
		}
		e->with = buf_detach(&b);
	} else {
		char *q = quoted(value, len);
		e->with = block ? xasprintf("%s\n", q) : xstrdup(q);
		free(q);
	}
	e->field = field;
	e->want = xmalloc(len + 1);
	memcpy(e->want, value, len);
	e->want[len] = '\0';
	e->want_len = len;
	e->res = res;
	return 0;
}

static int edit_cmp(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;
	return x->off < y->off ? 1 : x->off > y->off ? -1 : 0;
}

/* Apply the edits of m (last first), check the result parses and holds
 * every captured value, and write it into the clone. */
static int rewrite(struct capture *c, struct mfile *m)
{
	struct buf t = BUF_INIT;
	qsort(m->v, m->n, sizeof(*m->v), edit_cmp);
	for (size_t i = 1; i < m->n; i++)
		if (m->v[i].end > m->v[i - 1].off)
			return err_set("two captured values overlap in '%s'", m->path);
	buf_add(&t, m->text.ptr, m->text.len);
	for (size_t i = 0; i < m->n; i++) {
		struct edit *e = &m->v[i];
		struct buf n = BUF_INIT;
		buf_add(&n, t.ptr, e->off);
		buf_adds(&n, e->with);
		buf_add(&n, t.ptr + e->end, t.len - e->end);
		buf_release(&t);
		t = n;
	}
	struct mfile check = { .path = m->path, .text = t };
	for (size_t i = 0; i < m->n; i++) {
		struct ynode *v = spec_field(&c->a, &check, m->v[i].res, m->v[i].field, NULL);
		if (!v || v->len != m->v[i].want_len || memcmp(v->str, m->v[i].want, v->len)) {
			buf_release(&t);
			return err_set("rewriting 'spec.%s' of %s in '%s' did not give the captured value;"
				       " capture it by hand", m->v[i].field, m->v[i].res->id, m->path);
		}
	}
	char *full = xasprintf("%s/%s", c->into, m->path);
	int r = write_file(full, t.ptr, t.len);
	free(full);
	buf_release(&t);
	if (r < 0)
		return -1;
	stage_path(c, m->path);
	return 0;
}

static void id_name(char *out, size_t n, unsigned id, int group)
{
	if (group) {
		struct group *g = getgrgid((gid_t)id);
		snprintf(out, n, "%s", g ? g->gr_name : "");
	} else {
		struct passwd *pw = getpwuid((uid_t)id);
		snprintf(out, n, "%s", pw ? pw->pw_name : "");
	}
	if (!out[0])
		snprintf(out, n, "%u", id);
}

static int capture_owner(struct capture *c, const struct resource *res, const struct owner *o,
			 const struct stat *st)
{
	char name[64];
	if (o->has_uid && o->uid != st->st_uid) {
		id_name(name, sizeof(name), st->st_uid, 0);
		if (add_edit(c, res, "owner", name, strlen(name)) < 0)
			return -1;
	}
	if (o->has_gid && o->gid != st->st_gid) {
		id_name(name, sizeof(name), st->st_gid, 1);
		if (add_edit(c, res, "group", name, strlen(name)) < 0)
			return -1;
	}
	return 0;
}

static int capture_mode(struct capture *c, const struct resource *res, const struct optmode *m,
			const struct stat *st)
{
	char mode[8];
	if (!m->set || m->mode == (st->st_mode & 07777))
		return 0;
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(st->st_mode & 07777));
	return add_edit(c, res, "mode", mode, strlen(mode));
}

static int capture_one(struct capture *c, struct change *chg)
{
	struct pass *p = &c->r.p;
	const struct resource *res = chg->res;
	struct stat st;

	if (res->kind == &kind_secret)
		return err_set("%s is a Secret: its plaintext never goes to Git; seal the new value "
			       "with 'driftless secret seal' and commit the ciphertext", res->id);
	if (!res->path)
		return err_set("%s: capture records files, directories and symlinks; change it in '%s'"
			       " by hand (%s)", res->id, res->manifest, chg->what.len ? chg->what.ptr : "");
	if (chg->action == ACT_CREATE || fs_lstat(&p->root, res->path, &st) < 0)
		return err_set("%s: '%s' was removed from the host; capture does not record removals "
			       "(set 'ensure: absent' in '%s' by hand)", res->id, res->path, res->manifest);
	if (res->kind == &kind_file) {
		struct file_spec *s = res->spec;
		if (!S_ISREG(st.st_mode))
			return err_set("%s: '%s' is no longer a regular file; capture it by hand", res->id,
				       res->path);
		if (strcmp(chg->oid, s->blob) && s->tmpl == 1)
			return err_set("%s is a template ('template: true'): its content on the host has the"
				       " host's variables filled in; change the template in '%s' by hand",
				       res->id, s->source ? s->source : res->manifest);
		if (strcmp(chg->oid, s->blob)) {
			struct buf live = BUF_INIT;
			if (fs_read(&p->root, res->path, (size_t)p->policy->max_file_size, &live) < 0)
				return -1;
			int r;
			if (s->source) {
				char *full = xasprintf("%s/%s", c->into, s->source);
				r = write_file(full, live.ptr ? live.ptr : "", live.len);
				free(full);
				if (!r)
					stage_path(c, s->source);
			} else {
				r = add_edit(c, res, "content", live.ptr ? live.ptr : "", live.len);
			}
			buf_release(&live);
			if (r < 0)
				return -1;
		}
		return capture_mode(c, res, &s->mode, &st) < 0 ? -1 : capture_owner(c, res, &s->own, &st);
	}
	if (res->kind == &kind_directory) {
		struct dir_spec *s = res->spec;
		if (!S_ISDIR(st.st_mode))
			return err_set("%s: '%s' is no longer a directory; capture it by hand", res->id, res->path);
		return capture_mode(c, res, &s->mode, &st) < 0 ? -1 : capture_owner(c, res, &s->own, &st);
	}
	if (res->kind == &kind_symlink) {
		struct link_spec *s = res->spec;
		struct buf target = BUF_INIT;
		if (!S_ISLNK(st.st_mode))
			return err_set("%s: '%s' is no longer a symlink; capture it by hand", res->id, res->path);
		if (fs_readlink(&p->root, res->path, &target) < 0)
			return -1;
		int r = 0;
		if (strcmp(target.ptr ? target.ptr : "", s->target))
			r = add_edit(c, res, "target", target.ptr, target.len);
		buf_release(&target);
		return r < 0 ? -1 : capture_owner(c, res, &s->own, &st);
	}
	return err_set("%s: capture handles File, Directory and Symlink, not %s", res->id,
		       res->kind->name);
}

static int wanted(const struct opts *o, const char *id)
{
	if (!o->nargs)
		return 1;
	for (int i = 0; i < o->nargs; i++)
		if (!strcmp(o->args[i], id))
			return 1;
	return 0;
}

int cmd_capture(int argc, char **argv)
{
	struct capture c;
	memset(&c, 0, sizeof(c));
	arena_init(&c.a);
	pass_init(&c.r.p);
	struct opts *o = &c.r.o;
	int ret = opts_parse(o, argc, argv, CAPTURE_USAGE, "csRiTMh");
	if (ret)
		goto out;
	if (!o->into) {
		fprintf(stderr, "error: give '--into CLONE', a clone of the repository\nusage: %s\n",
			CAPTURE_USAGE);
		ret = EXIT_USAGE;
		goto out;
	}
	c.into = o->into;
	ret = drift_prepare(&c.r, &c.a, CAPTURE_USAGE);
	if (ret) {
		if (c.r.rejected)
			fprintf(stderr, "error: the applied revision does not validate any more\n");
		goto out;
	}
	ret = EXIT_ERR;
	struct pass *p = &c.r.p;
	p->dry_run = 1;
	if (pass_plan(p, c.r.db) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	for (int i = 0; i < o->nargs; i++)
		if (!hmap_get(&p->by_id, o->args[i])) {
			fprintf(stderr, "error: '%s' is not a resource of revision %.12s\n", o->args[i],
				p->rev.oid);
			goto out;
		}
	char head[41];
	int chk = gitsrc_clone_check(c.into, p->rev.oid, head);
	if (chk < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	if (chk) {
		fprintf(stderr, "error: the clone's HEAD %.12s is not the applied revision %.12s or a"
			" descendant of it; bring the clone up to date first\n", head, p->rev.oid);
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < p->nchanges; i++) {
		struct change *chg = &p->changes[i];
		if (!chg->res->digest[0] || !chg->inv || !wanted(o, chg->res->id))
			continue;
		if (chg->action == ACT_NONE && !chg->drifted)
			continue;
		if (chg->outcome == OUT_FAILED) {
			fprintf(stderr, "error: %s: %s\n", chg->res->id, chg->error);
			goto out;
		}
		if (capture_one(&c, chg) < 0) {
			fprintf(stderr, "error: %s\n", err_msg());
			goto out;
		}
		buf_addf(&c.list, "- %s %s (%s)\n", chg->res->id, chg->res->path ? chg->res->path : "",
			 chg->what.len ? chg->what.ptr : "changed");
		n++;
	}
	for (int i = 0; i < o->nargs; i++)
		if (!strstr(c.list.ptr ? c.list.ptr : "", o->args[i])) {
			fprintf(stderr, "error: '%s' has not drifted: nothing to capture\n", o->args[i]);
			goto out;
		}
	if (!n) {
		printf("capture: nothing has drifted from revision %.12s\n", p->rev.oid);
		ret = EXIT_OK;
		goto out;
	}
	for (size_t i = 0; i < c.nfiles; i++)
		if (rewrite(&c, &c.files[i]) < 0) {
			fprintf(stderr, "error: %s\n", err_msg());
			goto out;
		}
	char host[256] = "", by[160], when[32];
	gethostname(host, sizeof(host) - 1);
	invoking_user(by, sizeof(by));
	time_t t = time(NULL);
	render_time(when, sizeof(when), (int64_t)t * 1000);
	struct suspension sp;
	int susp = db_suspend_active(c.r.db, (int64_t)t * 1000, &c.a, &sp) == 1;
	struct buf msg = BUF_INIT;
	buf_addf(&msg, "hotfix from %s: capture %zu resource%s changed by hand\n\n", host, n,
		 n == 1 ? "" : "s");
	buf_add(&msg, c.list.ptr, c.list.len);
	buf_addf(&msg, "\nCaptured by 'driftless capture' on %s at %s, run by %s.\n", host, when, by);
	if (susp)
		buf_addf(&msg, "Suspension in force: \"%s\" (by %s).\n", sp.reason, sp.by);
	else
		buf_adds(&msg, "No suspension was in force.\n");
	buf_addf(&msg, "Applied revision on the host: %s\n", p->rev.oid);
	char oid[41], email[300];
	snprintf(email, sizeof(email), "driftless@%s", host[0] ? host : "localhost");
	if (gitsrc_clone_commit(c.into, c.staged, c.nstaged, msg.ptr, "driftless capture", email, oid) < 0) {
		fprintf(stderr, "error: %s\n", err_msg());
		buf_release(&msg);
		goto out;
	}
	buf_release(&msg);
	printf("captured %zu resource%s into commit %s in '%s':\n%s", n, n == 1 ? "" : "s", oid,
	       c.into, c.list.ptr);
	printf("review it and push it for review (capture never pushes); once it is applied,"
	       " 'driftless resume' ends the suspension\n");
	ret = EXIT_OK;
out:
	for (size_t i = 0; i < c.nfiles; i++) {
		for (size_t j = 0; j < c.files[i].n; j++) {
			free(c.files[i].v[j].with);
			free(c.files[i].v[j].want);
		}
		free(c.files[i].v);
		buf_release(&c.files[i].text);
	}
	free(c.files);
	free(c.staged);
	buf_release(&c.list);
	run_release(&c.r);
	arena_release(&c.a);
	return ret;
}
