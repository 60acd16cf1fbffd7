/* SPDX-License-Identifier: MIT */
/* Kind Group: a local group in ROOT/etc/group, changed through groupadd, groupmod and groupdel. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/check.h"
#include "kinds/kinds.h"
#include "lib/err.h"

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field group_fields[] = {
	{ "name", FIELD_STR, offsetof(struct group_spec, name), 0, NULL },
	{ "gid", FIELD_STR, offsetof(struct group_spec, gid), 0, NULL },
	{ "system", FIELD_BOOL, offsetof(struct group_spec, system), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct group_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct group_spec, adopt), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

#define ROOT_RULE "denied by local policy rule 'policy.allowRootAccounts'"

static int group_check(struct resource *res, struct pass *p)
{
	struct group_spec *s = res->spec;
	const char *name = account_name(res);
	const char *e;
	unsigned long gid;
	int ret = 0;

	if (s->adopt == 1)
		res->adopt = 1;
	if ((e = check_account_name(name))) {
		res_diag(p, res, s->name ? "name" : NULL, "group name '%s' %s", name, e);
		ret = -1;
	} else if (!strcmp(name, "root") && !p->policy->allow_root_accounts) {
		res_diag(p, res, s->name ? "name" : NULL, "group 'root' is " ROOT_RULE);
		ret = -1;
	}
	if (s->gid && (e = check_numeric_id(s->gid, &gid))) {
		res_diag(p, res, "gid", "'gid' '%s' %s", s->gid, e);
		ret = -1;
	} else if (s->gid && gid == 0 && !p->policy->allow_root_accounts) {
		res_diag(p, res, "gid", "'gid' 0 is " ROOT_RULE);
		ret = -1;
	}
	if (s->ensure == 1 && (s->gid || s->system != -1)) {
		res_diag(p, res, s->gid ? "gid" : "system", "'ensure: absent' takes no other field");
		ret = -1;
	}
	return ret;
}

static int group_observe(struct resource *res, struct pass *p, struct change *chg)
{
	struct group_spec *s = res->spec;
	const char *name = account_name(res);
	struct account a;

	chg->key = name;
	int r = account_find(p, 1, name, &a);
	if (r < 0)
		return -1;
	chg->exists = r == 0;
	if (chg->exists && !strcmp(a.f[2], "0") && !p->policy->allow_root_accounts)
		return err_set("group '%s' has gid 0: " ROOT_RULE, name);
	if (s->ensure == 1) {
		if (chg->exists) {
			chg->action = ACT_DELETE;
			what_add(chg, "group '%s', gid %s", name, a.f[2]);
		}
		return 0;
	}
	if (!chg->exists) {
		chg->action = ACT_CREATE;
		what_add(chg, "group '%s'%s%s", name, s->gid ? ", gid " : "", s->gid ? s->gid : "");
		return 0;
	}
	if (s->gid && strcmp(a.f[2], s->gid))
		what_add(chg, "gid %s -> %s", a.f[2], s->gid);
	if (chg->what.len)
		chg->action = ACT_UPDATE;
	return 0;
}

static int group_apply(struct change *chg, struct pass *p)
{
	struct group_spec *s = chg->res->spec;
	const char *args[4] = { NULL };
	size_t n = 0;
	int r;

	switch (chg->action) {
	case ACT_CREATE:
		if (s->gid) {
			args[n++] = "--gid";
			args[n++] = s->gid;
		}
		if (s->system == 1)
			args[n++] = "--system";
		r = account_tool(p, "groupadd", args, n, chg->key);
		break;
	case ACT_UPDATE:
		args[n++] = "--gid";
		args[n++] = s->gid;
		r = account_tool(p, "groupmod", args, n, chg->key);
		break;
	case ACT_DELETE:
		r = account_tool(p, "groupdel", args, 0, chg->key);
		break;
	default:
		return 0;
	}
	pass_ids_forget(p);	/* owners named after it resolve anew */
	return r;
}

const struct kind kind_group = {
	.name = "Group",
	.fields = group_fields,
	.spec_size = sizeof(struct group_spec),
	.path_offset = SIZE_MAX,
	.check = group_check,
	.observe = group_observe,
	.apply = group_apply,
	.key_field = "name",
};
