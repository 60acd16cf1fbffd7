/* SPDX-License-Identifier: MIT */
/* What User and Group share: the account files of the root, the accounts a pass declares, the shadow tools. */
#include <stdlib.h>
#include <string.h>
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/proc.h"

#define ACCOUNT_TOOL_TIMEOUT_MS 60000

const char *root_prefix(struct pass *p)
{
	char *abs = realpath(p->root.path, NULL);
	const char *r = arena_strdup(&p->arena, abs ? abs : p->root.path);
	free(abs);
	return strcmp(r, "/") ? r : NULL;
}

const char *account_name(const struct resource *res)
{
	if (res->kind == &kind_user) {
		const struct user_spec *s = res->spec;
		return s->name ? s->name : res->name;
	}
	const struct group_spec *s = res->spec;
	return s->name ? s->name : res->name;
}

const char *account_declared_id(const struct resource *decl)
{
	if (decl->kind == &kind_user)
		return ((const struct user_spec *)decl->spec)->uid;
	return ((const struct group_spec *)decl->spec)->gid;
}

/*
 * The accounts the pass declares, by name, in the per-plan memo: built at
 * the first question (the whole revision is loaded by then), so a File's
 * owner costs one lookup, not a scan.
 */
struct resource *account_declared(struct pass *p, const char *name, int group)
{
	if (!hmap_get(&p->memo, "account:indexed")) {
		for (size_t i = 0; i < p->nres; i++) {
			struct resource *r = p->res[i];
			int ensure;
			if (r->kind == &kind_user)
				ensure = ((struct user_spec *)r->spec)->ensure;
			else if (r->kind == &kind_group)
				ensure = ((struct group_spec *)r->spec)->ensure;
			else
				continue;
			if (ensure != 0)
				continue;
			const char *key = arena_printf(&p->arena, "account:%c:%s",
						       r->kind == &kind_user ? 'u' : 'g', account_name(r));
			hmap_put(&p->memo, key, r);
		}
		hmap_put(&p->memo, "account:indexed", p);
	}
	char key[64];
	if (strlen(name) > 40)
		return NULL;
	snprintf(key, sizeof(key), "account:%c:%s", group ? 'g' : 'u', name);
	return hmap_get(&p->memo, key);
}

int account_find(struct pass *p, int group, const char *name, struct account *out)
{
	const char *file = group ? "/etc/group" : "/etc/passwd";
	struct buf b = BUF_INIT;
	size_t n = strlen(name);
	int ret = 1;
	if (fs_read(&p->root, file, 64u << 20, &b) < 0) {
		buf_release(&b);
		return err_wrap("cannot read the accounts of '%s'", p->root.path);
	}
	const char *s = b.ptr ? b.ptr : "";
	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		if (len > n && s[n] == ':' && !memcmp(s, name, n)) {
			memset(out, 0, sizeof(*out));
			const char *f = s, *end = s + len;
			while (out->nf < 7) {
				const char *c = memchr(f, ':', (size_t)(end - f));
				const char *stop = c && out->nf < 6 ? c : end;
				out->f[out->nf++] = arena_strndup(&p->arena, f, (size_t)(stop - f));
				if (stop == end)
					break;
				f = stop + 1;
			}
			while (out->nf < 7)
				out->f[out->nf++] = "";
			ret = 0;
			break;
		}
		s += len + (eol != NULL);
	}
	buf_release(&b);
	return ret;
}

int account_tool(struct pass *p, const char *tool, const char *const *args, size_t nargs,
		 const char *name)
{
	const char *argv[48];
	size_t n = 0;
	BUG_ON(nargs > 40);
	argv[n++] = arena_printf(&p->arena, "/usr/sbin/%s", tool);
	const char *root = root_prefix(p);
	if (root) {
		argv[n++] = "--prefix";
		argv[n++] = root;
	}
	for (size_t i = 0; i < nargs; i++)
		argv[n++] = args[i];
	argv[n++] = "--";
	argv[n++] = name;
	argv[n] = NULL;
	struct proc_opts o = { .argv = argv, .env = proc_default_env,
			       .timeout_ms = ACCOUNT_TOOL_TIMEOUT_MS, .merge_stderr = 1 };
	struct proc_result r;
	if (proc_run(&o, &r) < 0)
		return -1;
	int ret = 0;
	if (!proc_ok(&r)) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "%s failed (", tool);
		proc_describe(&r, &o, &m);
		buf_adds(&m, ")");
		if (r.out.len) {
			buf_adds(&m, ": ");
			proc_tail(&m, &r.out, 400);
		}
		ret = err_set("%s", m.ptr);
		buf_release(&m);
	}
	proc_result_release(&r);
	return ret;
}
