/* SPDX-License-Identifier: MIT */
/*
 * Kind Package: a Debian package, through apt-get and dpkg. Every Package
 * change of a pass goes into one apt transaction (apply_batch); observe()
 * reads dpkg's database with dpkg-query and the candidates with apt-cache,
 * once per plan for all the packages of the revision. With a --root other
 * than "/", every tool works on that root's own database, lists and
 * configuration: dpkg --admindir/--root, and apt through an APT_CONFIG
 * file in the state directory that sets Dir, so the host's apt hooks never
 * run for it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/check.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "lib/proc.h"

#define PKG_QUERY_TIMEOUT_MS	(2 * 60 * 1000)
#define PKG_UPDATE_TIMEOUT_MS	(10 * 60 * 1000)
#define PKG_INSTALL_TIMEOUT_MS	(60 * 60 * 1000)
#define PKG_QUERY_MAX		(16u << 20)

enum { PKG_PRESENT, PKG_ABSENT, PKG_LATEST };
static const char *const ensure_values[] = { "present", "absent", "latest", NULL };

static const struct field pkg_fields[] = {
	{ "name", FIELD_STR, offsetof(struct package_spec, name), 0, NULL },
	{ "version", FIELD_STR, offsetof(struct package_spec, version), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct package_spec, ensure), 0, ensure_values },
	{ NULL, 0, 0, 0, NULL },
};

static const char *pkg_name(const struct resource *res)
{
	const struct package_spec *s = res->spec;
	return s->name ? s->name : res->name;
}

static int pkg_check(struct resource *res, struct pass *p)
{
	struct package_spec *s = res->spec;
	const char *e;
	int ret = 0;
	if ((e = check_package_name(pkg_name(res)))) {
		res_diag(p, res, s->name ? "name" : NULL, "package name '%s' %s", pkg_name(res), e);
		ret = -1;
	}
	if (s->version && (e = check_package_version(s->version))) {
		res_diag(p, res, "version", "'version' '%s' %s", s->version, e);
		ret = -1;
	} else if (s->version && s->ensure != PKG_PRESENT) {
		res_diag(p, res, "version", "'version' pins a package only with 'ensure: present'");
		ret = -1;
	}
	return ret;
}

/* ---- running the tools against the root ---- */

static void memo_put(struct pass *p, const char *key, const char *val)
{
	hmap_put(&p->memo, key, (void *)(uintptr_t)val);
}

/* ROOT/var/lib/dpkg, or NULL for the host's own. */
static const char *admindir(struct pass *p)
{
	const char *root = root_prefix(p);
	return root ? arena_printf(&p->arena, "%s/var/lib/dpkg", root) : NULL;
}

/* Run argv; 0 with res filled (any exit status), -1 when it could not run.
 * merge: stderr into res->out, where apt's reasons and its errors meet. */
static int run(struct pass *p, const char *const *argv, int64_t timeout_ms, int merge,
	       struct proc_result *res)
{
	const char *env[6];
	size_t n = 0;
	env[n++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	env[n++] = "LC_ALL=C";
	env[n++] = "DEBIAN_FRONTEND=noninteractive";
	const char *root = root_prefix(p);
	if (root && p->state_dir)
		env[n++] = arena_printf(&p->arena, "APT_CONFIG=%s/apt.conf", p->state_dir);
	env[n] = NULL;
	struct proc_opts o = { .argv = argv, .env = env, .timeout_ms = timeout_ms,
			       .out_max = merge ? PROC_OUT_MAX : PKG_QUERY_MAX, .merge_stderr = merge };
	return proc_run(&o, res);
}

/* "TOOL failed (exit status N): last lines of its output" as the error. */
static int tool_failed(const char *tool, const struct proc_result *r, int64_t timeout_ms)
{
	struct buf m = BUF_INIT;
	struct proc_opts o = { .timeout_ms = timeout_ms };
	buf_addf(&m, "%s failed (", tool);
	proc_describe(r, &o, &m);
	buf_adds(&m, ")");
	const struct buf *text = r->err.len ? &r->err : &r->out;
	if (text->len) {
		buf_adds(&m, ": ");
		proc_tail(&m, text, 400);
	}
	int ret = err_set("%s", m.ptr);
	buf_release(&m);
	return ret;
}

/*
 * Is dpkg's database in a state to work on? An interrupted run leaves
 * packages half-installed or unconfigured (dpkg --audit lists them) or
 * journal files in updates/. NULL when healthy, else the message with its
 * remedy.
 */
static const char *health(struct pass *p, int fresh)
{
	const char *m = fresh ? NULL : hmap_get(&p->memo, "pkg:health");
	if (m)
		return *m ? m : NULL;
	const char *root = root_prefix(p), *admin = admindir(p);
	const char *remedy = root ? arena_printf(&p->arena, "dpkg --root=%s --configure -a", root) :
				    "dpkg --configure -a";
	struct buf why = BUF_INIT;
	int fd = fs_open(&p->root, "/var/lib/dpkg/updates", O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		struct dirent *de;
		int journal = 0;
		if (!d)
			close(fd);
		while (d && (de = readdir(d)))
			journal |= de->d_name[0] >= '0' && de->d_name[0] <= '9';
		if (d)
			closedir(d);
		if (journal)
			buf_adds(&why, "its journal (/var/lib/dpkg/updates) was not integrated");
	}
	const char *argv[4];
	size_t n = 0;
	argv[n++] = "/usr/bin/dpkg";
	if (admin)
		argv[n++] = arena_printf(&p->arena, "--admindir=%s", admin);
	argv[n++] = "--audit";
	argv[n] = NULL;
	struct proc_result r;
	if (run(p, argv, PKG_QUERY_TIMEOUT_MS, 0, &r) < 0) {
		buf_addf(&why, "%s%s", why.len ? "; " : "", err_msg());
	} else {
		if (!proc_ok(&r) || r.out.len) {
			buf_addf(&why, "%sdpkg --audit: ", why.len ? "; " : "");
			proc_tail(&why, r.out.len ? &r.out : &r.err, 300);
		}
		proc_result_release(&r);
	}
	m = why.len ? arena_printf(&p->arena, "dpkg was interrupted and needs '%s' (%s);"
				   " no package is changed until it is repaired", remedy, why.ptr) : "";
	buf_release(&why);
	memo_put(p, "pkg:health", m);
	return *m ? m : NULL;
}

/* dpkg's view of the packages of the revision (and of name), in the memo
 * as "pkg:st:NAME" -> "STATUS VERSION" (STATUS not-installed when unknown). */
static int query_status(struct pass *p, const char *name)
{
	const char **argv = xmalloc((p->nres + 8) * sizeof(*argv));
	const char *admin = admindir(p);
	size_t n = 0, first;
	argv[n++] = "/usr/bin/dpkg-query";
	if (admin)
		argv[n++] = arena_printf(&p->arena, "--admindir=%s", admin);
	argv[n++] = "--show";
	argv[n++] = "--showformat=${Package}\\t${Status}\\t${Version}\\n";
	argv[n++] = "--";
	first = n;
	argv[n++] = name;
	if (!hmap_get(&p->memo, "pkg:queried"))
		for (size_t i = 0; i < p->nres; i++)
			if (p->res[i]->kind == &kind_package && strcmp(pkg_name(p->res[i]), name))
				argv[n++] = pkg_name(p->res[i]);
	argv[n] = NULL;
	hmap_put(&p->memo, "pkg:queried", p);
	struct proc_result r;
	int ret = -1;
	memset(&r, 0, sizeof(r));
	if (run(p, argv, PKG_QUERY_TIMEOUT_MS, 0, &r) < 0)
		goto out;
	/* 1: some are unknown to dpkg, which is an answer too */
	if (!r.exited || r.status > 1 || r.out_dropped) {
		tool_failed("dpkg-query", &r, PKG_QUERY_TIMEOUT_MS);
		goto out;
	}
	for (size_t i = first; i < n; i++)
		memo_put(p, arena_printf(&p->arena, "pkg:st:%s", argv[i]), "not-installed ");
	char *save = NULL;
	for (char *line = strtok_r(r.out.ptr ? r.out.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t2)
			continue;
		*t1 = *t2 = '\0';
		/* "install ok installed": the last word is the state */
		const char *state = strrchr(t1 + 1, ' ') ? strrchr(t1 + 1, ' ') + 1 : t1 + 1;
		const char *key = arena_printf(&p->arena, "pkg:st:%s", line);
		const char *old = hmap_get(&p->memo, key);
		/* several architectures: an installed one wins */
		if (old && !strncmp(old, "installed ", 10))
			continue;
		memo_put(p, key, arena_printf(&p->arena, "%s %s", state, t2 + 1));
	}
	ret = 0;
out:
	proc_result_release(&r);
	free(argv);
	return ret;
}

/* The installed version of name into *version ("" when not installed). */
static int installed(struct pass *p, const char *name, const char **version)
{
	const char *key = arena_printf(&p->arena, "pkg:st:%s", name);
	const char *v = hmap_get(&p->memo, key);
	if (!v) {
		if (query_status(p, name) < 0)
			return -1;
		v = hmap_get(&p->memo, key);
	}
	const char *sp = strchr(v, ' ');
	/* config-files: removed, its configuration left; as good as absent */
	*version = !strncmp(v, "installed ", 10) ? sp + 1 : "";
	return 0;
}

/* apt's candidate versions of the 'latest' packages (and name), in the
 * memo as "pkg:cand:NAME" ("" when apt knows none). */
static int query_candidates(struct pass *p, const char *name)
{
	const char **argv = xmalloc((p->nres + 8) * sizeof(*argv));
	const char *root = root_prefix(p);
	size_t n = 0, first;
	argv[n++] = "/usr/bin/apt-cache";
	if (root) {
		argv[n++] = "-o";
		argv[n++] = arena_printf(&p->arena, "Dir=%s/", root);
	}
	argv[n++] = "policy";
	argv[n++] = "--";
	first = n;
	argv[n++] = name;
	if (!hmap_get(&p->memo, "pkg:candidates"))
		for (size_t i = 0; i < p->nres; i++)
			if (p->res[i]->kind == &kind_package &&
			    ((struct package_spec *)p->res[i]->spec)->ensure == PKG_LATEST &&
			    strcmp(pkg_name(p->res[i]), name))
				argv[n++] = pkg_name(p->res[i]);
	argv[n] = NULL;
	hmap_put(&p->memo, "pkg:candidates", p);
	struct proc_result r;
	int ret = -1;
	memset(&r, 0, sizeof(r));
	if (run(p, argv, PKG_QUERY_TIMEOUT_MS, 0, &r) < 0)
		goto out;
	if (!proc_ok(&r) || r.out_dropped) {
		tool_failed("apt-cache policy", &r, PKG_QUERY_TIMEOUT_MS);
		goto out;
	}
	for (size_t i = first; i < n; i++)
		memo_put(p, arena_printf(&p->arena, "pkg:cand:%s", argv[i]), "");
	/* "NAME:" (or "NAME:ARCH:"), then "  Candidate: VERSION" */
	const char *cur = NULL;
	char *save = NULL;
	for (char *line = strtok_r(r.out.ptr ? r.out.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		if (line[0] != ' ' && len > 1 && line[len - 1] == ':') {
			line[len - 1] = '\0';
			char *colon = strchr(line, ':');
			if (colon)
				*colon = '\0';
			cur = arena_strdup(&p->arena, line);
		} else if (cur && !strncmp(line, "  Candidate: ", 13)) {
			const char *v = line + 13;
			memo_put(p, arena_printf(&p->arena, "pkg:cand:%s", cur),
				 strcmp(v, "(none)") ? arena_strdup(&p->arena, v) : "");
		}
	}
	ret = 0;
out:
	proc_result_release(&r);
	free(argv);
	return ret;
}

static int candidate(struct pass *p, const char *name, const char **version)
{
	const char *key = arena_printf(&p->arena, "pkg:cand:%s", name);
	const char *v = hmap_get(&p->memo, key);
	if (!v) {
		if (query_candidates(p, name) < 0)
			return -1;
		v = hmap_get(&p->memo, key);
	}
	*version = v;
	return 0;
}

/* ---- observe and apply ---- */

static int pkg_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct package_spec *s = res->spec;
	const char *name = pkg_name(res), *have, *msg;

	chg->key = name;
	if ((msg = health(p, 0)))
		return err_set("%s", msg);
	if (installed(p, name, &have) < 0)
		return -1;
	chg->exists = *have != '\0';
	if (s->ensure == PKG_ABSENT) {
		if (chg->exists) {
			chg->action = ACT_DELETE;
			what_add(chg, "remove %s", have);
		}
		return 0;
	}
	const char *want = s->version;
	if (s->ensure == PKG_LATEST) {
		if (candidate(p, name, &want) < 0)
			return -1;
		if (!*want)
			want = NULL;	/* not in the lists (yet): the apply updates them */
	}
	if (!chg->exists) {
		chg->action = ACT_CREATE;
		if (want)
			what_add(chg, "install %s", want);
		else
			what_add(chg, "install");
		return 0;
	}
	if (want && strcmp(have, want)) {
		chg->action = ACT_UPDATE;
		what_add(chg, "version %s -> %s", have, want);
	}
	return 0;
}

/* The APT_CONFIG of a root other than "/": Dir points apt at the root's
 * own configuration, lists, caches, status and logs. */
static int write_apt_conf(struct pass *p, const char *root)
{
	if (!p->state_dir)
		return err_set("packages in '%s' need a state directory", root);
	if (strpbrk(root, "\"\\\n{};"))
		return err_set("packages cannot be managed in '%s': apt cannot quote that path", root);
	char *file = xasprintf("%s/apt.conf", p->state_dir);
	char *tmp = xasprintf("%s.tmp.%d", file, (int)getpid());
	char *text = xasprintf("// written by driftless for --root %s\nDir \"%s/\";\n", root, root);
	int ret = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set_errno("cannot write '%s'", tmp);
		goto out;
	}
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	if (close(fd) < 0 || w != (ssize_t)len || rename(tmp, file) < 0) {
		err_set_errno("cannot write '%s'", file);
		unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	free(file);
	free(tmp);
	free(text);
	return ret;
}

/* apt-get with the options every transaction uses, then verb, --, ops. */
static const char **apt_argv(struct pass *p, const char *verb, int simulate, const char **ops,
			     size_t nops)
{
	const char **argv = xmalloc((nops + 24) * sizeof(*argv));
	const char *root = root_prefix(p);
	size_t n = 0;
	argv[n++] = "/usr/bin/apt-get";
	argv[n++] = "-q";
	argv[n++] = "-y";
	if (simulate)
		argv[n++] = "--simulate";
	argv[n++] = "--no-install-recommends";
	argv[n++] = "--allow-downgrades";
	argv[n++] = "-o";
	argv[n++] = "Dpkg::Options::=--force-confdef";
	argv[n++] = "-o";
	argv[n++] = "Dpkg::Options::=--force-confold";
	if (root) {
		argv[n++] = "-o";
		argv[n++] = arena_printf(&p->arena, "Dpkg::Options::=--root=%s", root);
		argv[n++] = "-o";
		argv[n++] = arena_printf(&p->arena, "Dpkg::Options::=--log=%s/var/log/dpkg.log", root);
	}
	argv[n++] = verb;
	if (nops) {
		argv[n++] = "--";
		for (size_t i = 0; i < nops; i++)
			argv[n++] = ops[i];
	}
	argv[n] = NULL;
	return argv;
}

/*
 * One apt transaction for every Package change of the pass: refresh the
 * lists when something is installed, simulate (apt must not remove any
 * package that was not asked for), then "apt-get install a b=1.0 c-".
 */
static int pkg_apply_batch(struct change **v, size_t n, struct pass *p)
{
	const char **ops = xmalloc((n + 1) * sizeof(*ops));
	const char **argv = NULL;
	const char *root = root_prefix(p), *msg;
	struct buf update_err = BUF_INIT;
	struct proc_result r;
	int installs = 0, ret = -1;

	memset(&r, 0, sizeof(r));
	if ((msg = health(p, 1))) {
		err_set("%s", msg);
		goto out;
	}
	if (root && write_apt_conf(p, root) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct package_spec *s = v[i]->res->spec;
		const char *name = v[i]->key ? v[i]->key : pkg_name(v[i]->res);
		if (v[i]->action == ACT_DELETE) {
			ops[i] = arena_printf(&p->arena, "%s-", name);
		} else {
			installs = 1;
			ops[i] = s->version ? arena_printf(&p->arena, "%s=%s", name, s->version) : name;
		}
	}
	if (installs) {
		argv = apt_argv(p, "update", 0, NULL, 0);
		if (run(p, argv, PKG_UPDATE_TIMEOUT_MS, 1, &r) == 0) {
			if (!proc_ok(&r)) {
				tool_failed("apt-get update", &r, PKG_UPDATE_TIMEOUT_MS);
				buf_adds(&update_err, err_msg());
			}
			proc_result_release(&r);
		}
		free(argv);
	}
	/* what would apt do? nothing beyond what was asked may be removed */
	argv = apt_argv(p, "install", 1, ops, n);
	if (run(p, argv, PKG_INSTALL_TIMEOUT_MS, 1, &r) < 0)
		goto out;
	if (!proc_ok(&r)) {
		tool_failed("apt-get install (simulated)", &r, PKG_INSTALL_TIMEOUT_MS);
		goto out;
	}
	struct buf extra = BUF_INIT;
	char *save = NULL;
	for (char *line = strtok_r(r.out.ptr ? r.out.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "Remv ", 5))
			continue;
		char *name = line + 5, *sp = strchr(name, ' ');
		if (sp)
			*sp = '\0';
		char *colon = strchr(name, ':');
		if (colon)
			*colon = '\0';
		int asked = 0;
		for (size_t i = 0; i < n && !asked; i++)
			asked = v[i]->action == ACT_DELETE && v[i]->key && !strcmp(v[i]->key, name);
		if (!asked)
			buf_addf(&extra, "%s%s", extra.len ? ", " : "", name);
	}
	if (extra.len) {
		err_set("apt would also remove %s, which no Package asks to remove; nothing was"
			" changed (declare them, or remove them by hand)", extra.ptr);
		buf_release(&extra);
		goto out;
	}
	proc_result_release(&r);
	free(argv);
	argv = apt_argv(p, "install", 0, ops, n);
	if (run(p, argv, PKG_INSTALL_TIMEOUT_MS, 1, &r) < 0)
		goto out;
	if (!proc_ok(&r)) {
		tool_failed("apt-get install", &r, PKG_INSTALL_TIMEOUT_MS);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0 && update_err.len)
		err_wrap("%s; before that, %s", err_msg(), update_err.ptr);
	proc_result_release(&r);
	/* what dpkg now has is read again, once for all of them */
	pass_memo_reset(p);
	buf_release(&update_err);
	free(argv);
	free(ops);
	return ret;
}

/* After the batch: did this package get where it should be? */
static int pkg_apply(struct change *chg, struct pass *p)
{
	struct package_spec *s = chg->res->spec;
	const char *name = chg->key ? chg->key : pkg_name(chg->res), *have, *want = s->version;
	const char *why = chg->error ? chg->error : "apt-get did not do it";
	if (installed(p, name, &have) < 0)
		return -1;
	if (chg->action == ACT_DELETE)
		return *have ? err_set("'%s' is still installed (%s): %s", name, have, why) : 0;
	if (s->ensure == PKG_LATEST && candidate(p, name, &want) < 0)
		return -1;
	if (!*have)
		return err_set("'%s' was not installed: %s", name, why);
	if (want && *want && strcmp(have, want))
		return err_set("'%s' is at version %s, not %s: %s", name, have, want, why);
	return 0;
}

const struct kind kind_package = {
	.name = "Package",
	.fields = pkg_fields,
	.spec_size = sizeof(struct package_spec),
	.path_offset = SIZE_MAX,
	.check = pkg_check,
	.observe = pkg_observe,
	.apply = pkg_apply,
	.apply_batch = pkg_apply_batch,
	.key_field = "name",
	.adopt_free = 1,	/* a package taken over loses nothing; never pruned */
};
