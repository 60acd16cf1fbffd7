/* SPDX-License-Identifier: MIT */
/* Kind User: a local account in ROOT/etc/passwd, changed through useradd, usermod and userdel. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/check.h"
#include "kinds/kinds.h"
#include "lib/err.h"

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field user_fields[] = {
	{ "name", FIELD_STR, offsetof(struct user_spec, name), 0, NULL },
	{ "uid", FIELD_STR, offsetof(struct user_spec, uid), 0, NULL },
	{ "group", FIELD_ID, offsetof(struct user_spec, group), 0, NULL },
	{ "groups", FIELD_LIST, offsetof(struct user_spec, groups), 0, NULL },
	{ "comment", FIELD_STR, offsetof(struct user_spec, comment), 0, NULL },
	{ "home", FIELD_PATH, offsetof(struct user_spec, home), 0, NULL },
	{ "shell", FIELD_PATH, offsetof(struct user_spec, shell), 0, NULL },
	{ "system", FIELD_BOOL, offsetof(struct user_spec, system), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct user_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct user_spec, adopt), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

#define ROOT_RULE "denied by local policy rule 'policy.allowRootAccounts'"

static int is_root_group(const char *g)
{
	return !strcmp(g, "root") || !strcmp(g, "0");
}

/* A group the account refers to: allowed, and declared by a Group of the
 * pass (an implicit dependency) when it does not exist yet. */
static int check_group_ref(struct resource *res, struct pass *p, const char *field, const char *g)
{
	const char *e;
	if (strspn(g, "0123456789") != strlen(g) && (e = check_account_name(g))) {
		res_diag(p, res, field, "'%s' names '%s', which %s", field, g, e);
		return -1;
	}
	if (is_root_group(g) && !p->policy->allow_root_accounts) {
		res_diag(p, res, field, "'%s' '%s' is " ROOT_RULE, field, g);
		return -1;
	}
	if (!owner_allowed(p, g, 1)) {
		res_diag(p, res, field, "'%s' '%s' is denied by local policy rule 'policy.groups'",
			 field, g);
		return -1;
	}
	struct resource *decl = account_declared(p, g, 1);
	if (decl)
		res_add_dep(res, decl);
	return 0;
}

static int user_check(struct resource *res, struct pass *p)
{
	struct user_spec *s = res->spec;
	const char *name = account_name(res);
	const char *e, *msg;
	unsigned long uid;
	int ret = 0;

	if (s->adopt == 1)
		res->adopt = 1;
	if ((e = check_account_name(name))) {
		res_diag(p, res, s->name ? "name" : NULL, "user name '%s' %s", name, e);
		ret = -1;
	} else if (!strcmp(name, "root") && !p->policy->allow_root_accounts) {
		res_diag(p, res, s->name ? "name" : NULL, "user 'root' is " ROOT_RULE);
		ret = -1;
	}
	if (s->uid && (e = check_numeric_id(s->uid, &uid))) {
		res_diag(p, res, "uid", "'uid' '%s' %s", s->uid, e);
		ret = -1;
	} else if (s->uid && uid == 0 && !p->policy->allow_root_accounts) {
		res_diag(p, res, "uid", "'uid' 0 is " ROOT_RULE);
		ret = -1;
	}
	if (s->ensure == 1) {
		if (s->uid || s->group || s->groups || s->comment || s->home || s->shell ||
		    s->system != -1) {
			res_diag(p, res, NULL, "'ensure: absent' takes no field but 'name'");
			ret = -1;
		}
		return ret;
	}
	if (s->group && check_group_ref(res, p, "group", s->group) < 0)
		ret = -1;
	for (size_t i = 0; s->groups && s->groups[i]; i++) {
		if (strspn(s->groups[i], "0123456789") == strlen(s->groups[i])) {
			res_diag(p, res, "groups", "'groups' entries must be group names, not '%s'",
				 s->groups[i]);
			ret = -1;
		} else if (check_group_ref(res, p, "groups", s->groups[i]) < 0) {
			ret = -1;
		}
	}
	if (s->comment && strchr(s->comment, ':')) {
		res_diag(p, res, "comment", "'comment' must not contain ':'");
		ret = -1;
	}
	/* useradd creates the home directory of a user that is not a system user */
	const char *home = s->home ? s->home : arena_printf(&p->arena, "/home/%s", name);
	if (s->system != 1 && (msg = policy_check_path(p->policy, home))) {
		res_diag(p, res, s->home ? "home" : NULL, "home directory '%s' %s", home, msg);
		ret = -1;
	}
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a,b,c": names sorted, duplicates dropped (arena). */
static const char *join_sorted(struct pass *p, const char **v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_str);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (!i || strcmp(v[i], v[i - 1]))
			buf_addf(&b, "%s%s", b.len ? "," : "", v[i]);
	const char *r = arena_strdup(&p->arena, b.ptr ? b.ptr : "");
	buf_release(&b);
	return r;
}

/* The groups that list user as a member in ROOT/etc/group, as join_sorted. */
static int member_of(struct pass *p, const char *user, const char **out)
{
	struct buf b = BUF_INIT;
	if (fs_read(&p->root, "/etc/group", 64u << 20, &b) < 0) {
		buf_release(&b);
		return err_wrap("cannot read the accounts of '%s'", p->root.path);
	}
	const char **v = NULL;
	size_t n = 0, cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(b.ptr ? b.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *c3 = c2 ? strchr(c2 + 1, ':') : NULL;
		if (!c3)
			continue;
		*c1 = '\0';
		char *save2 = NULL;
		for (char *m = strtok_r(c3 + 1, ",", &save2); m; m = strtok_r(NULL, ",", &save2)) {
			if (strcmp(m, user))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n++] = arena_strdup(&p->arena, line);
			break;
		}
	}
	*out = join_sorted(p, v, n);
	free(v);
	buf_release(&b);
	return 0;
}

/* The gid a group name or number stands for, "" when the group is declared
 * in this pass but does not exist yet. */
static int resolve_gid(struct pass *p, const char *g, const char **out)
{
	struct account a;
	if (strspn(g, "0123456789") == strlen(g)) {
		*out = g;
		return 0;
	}
	int r = account_find(p, 1, g, &a);
	if (r < 0)
		return -1;
	if (r == 0) {
		*out = a.f[2];
		return 0;
	}
	if (account_declared(p, g, 1)) {
		*out = "";
		return 0;
	}
	return err_set("group '%s' does not exist, and no Group of this revision declares it", g);
}

/*
 * Compare the account a (a line of ROOT/etc/passwd) with the spec: each
 * difference goes into chg->what and, when args is not NULL, becomes
 * usermod options in args (at most 12).
 */
static int user_diff(struct pass *p, struct user_spec *s, const struct account *a,
		     struct change *chg, const char **args, size_t *nargs)
{
	size_t n = 0;
	if (s->uid && strcmp(a->f[2], s->uid)) {
		what_add(chg, "uid %s -> %s", a->f[2], s->uid);
		args[n++] = "--uid";
		args[n++] = s->uid;
	}
	if (s->group) {
		const char *gid;
		if (resolve_gid(p, s->group, &gid) < 0)
			return -1;
		if (!strcmp(gid, "0") && !p->policy->allow_root_accounts)
			return err_set("group '%s' has gid 0: " ROOT_RULE, s->group);
		if (!*gid)
			what_add(chg, "group %s -> '%s' (created in this pass)", a->f[3], s->group);
		else if (strcmp(gid, a->f[3]))
			what_add(chg, "group %s -> %s", a->f[3], gid);
		if (!*gid || strcmp(gid, a->f[3])) {
			args[n++] = "--gid";
			args[n++] = s->group;
		}
	}
	if (s->comment && strcmp(a->f[4], s->comment)) {
		what_add(chg, "comment '%s' -> '%s'", a->f[4], s->comment);
		args[n++] = "--comment";
		args[n++] = s->comment;
	}
	if (s->home && strcmp(a->f[5], s->home)) {
		what_add(chg, "home %s -> %s", a->f[5], s->home);
		args[n++] = "--home";
		args[n++] = s->home;
	}
	if (s->shell && strcmp(a->f[6], s->shell)) {
		what_add(chg, "shell %s -> %s", a->f[6], s->shell);
		args[n++] = "--shell";
		args[n++] = s->shell;
	}
	if (s->groups) {
		const char *cur = "";
		size_t k = 0;
		while (s->groups[k])
			k++;
		const char **v = xmalloc((k + 1) * sizeof(*v));
		memcpy(v, s->groups, k * sizeof(*v));
		const char *want = join_sorted(p, v, k);
		free(v);
		if (member_of(p, a->f[0], &cur) < 0)
			return -1;
		for (size_t i = 0; s->groups[i]; i++) {
			const char *gid;
			if (resolve_gid(p, s->groups[i], &gid) < 0)
				return -1;
			if (!strcmp(gid, "0") && !p->policy->allow_root_accounts)
				return err_set("group '%s' has gid 0: " ROOT_RULE, s->groups[i]);
		}
		if (strcmp(cur, want)) {
			what_add(chg, "groups [%s] -> [%s]", cur, want);
			args[n++] = "--groups";
			args[n++] = want;
		}
	}
	*nargs = n;
	return 0;
}

static int user_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct user_spec *s = res->spec;
	const char *name = account_name(res);
	struct account a;
	const char *args[16];
	size_t n;

	chg->key = name;
	int r = account_find(p, 0, name, &a);
	if (r < 0)
		return -1;
	chg->exists = r == 0;
	if (chg->exists && !strcmp(a.f[2], "0") && !p->policy->allow_root_accounts)
		return err_set("user '%s' has uid 0: " ROOT_RULE, name);
	if (s->ensure == 1) {
		if (chg->exists) {
			chg->action = ACT_DELETE;
			what_add(chg, "user '%s', uid %s", name, a.f[2]);
		}
		return 0;
	}
	if (!chg->exists) {
		/* the groups it names must exist by the time it is created */
		const char *gid;
		if (s->group && resolve_gid(p, s->group, &gid) < 0)
			return -1;
		for (size_t i = 0; s->groups && s->groups[i]; i++)
			if (resolve_gid(p, s->groups[i], &gid) < 0)
				return -1;
		chg->action = ACT_CREATE;
		what_add(chg, "user '%s'%s%s", name, s->uid ? ", uid " : "", s->uid ? s->uid : "");
		return 0;
	}
	if (user_diff(p, s, &a, chg, args, &n) < 0)
		return -1;
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

static int user_create(struct change *chg, struct pass *p)
{
	struct user_spec *s = chg->res->spec;
	const char *args[20];
	size_t n = 0;
	if (s->uid) {
		args[n++] = "--uid";
		args[n++] = s->uid;
	}
	if (s->group) {
		args[n++] = "--gid";
		args[n++] = s->group;
	}
	if (s->groups && s->groups[0]) {
		size_t k = 0;
		while (s->groups[k])
			k++;
		const char **v = xmalloc((k + 1) * sizeof(*v));
		memcpy(v, s->groups, k * sizeof(*v));
		args[n++] = "--groups";
		args[n++] = join_sorted(p, v, k);
		free(v);
	}
	if (s->comment) {
		args[n++] = "--comment";
		args[n++] = s->comment;
	}
	if (s->home) {
		args[n++] = "--home-dir";
		args[n++] = s->home;
	}
	if (s->shell) {
		args[n++] = "--shell";
		args[n++] = s->shell;
	}
	if (s->system == 1)
		args[n++] = "--system";
	/* a system account gets no home directory; others get theirs from
	 * ROOT/etc/skel when it does not exist yet (never moved or removed) */
	args[n++] = s->system == 1 ? "--no-create-home" : "--create-home";
	return account_tool(p, "useradd", args, n, chg->key);
}

static int user_apply(struct change *chg, struct pass *p)
{
	struct user_spec *s = chg->res->spec;
	int r = 0;

	if (chg->action == ACT_CREATE) {
		r = user_create(chg, p);
	} else if (chg->action == ACT_DELETE) {
		r = account_tool(p, "userdel", NULL, 0, chg->key);
	} else if (chg->action == ACT_UPDATE) {
		/* compare again: a Group of this pass may exist by now */
		struct account a;
		struct change scratch;
		const char *args[16];
		size_t n = 0;
		memset(&scratch, 0, sizeof(scratch));
		int f = account_find(p, 0, chg->key, &a);
		if (f != 0) {
			r = f < 0 ? -1 : err_set("user '%s' disappeared before it could be changed",
						 chg->key);
		} else if (user_diff(p, s, &a, &scratch, args, &n) < 0) {
			r = -1;
		} else if (n) {
			r = account_tool(p, "usermod", args, n, chg->key);
		}
		buf_release(&scratch.what);
	}
	pass_ids_forget(p);	/* owners named after it resolve anew */
	return r;
}

const struct kind kind_user = {
	.name = "User",
	.fields = user_fields,
	.spec_size = sizeof(struct user_spec),
	.path_offset = SIZE_MAX,
	.check = user_check,
	.observe = user_observe,
	.apply = user_apply,
	.key_field = "name",
};
