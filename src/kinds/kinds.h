/* SPDX-License-Identifier: MIT */
/* The spec structs of the file-like kinds, shared where one kind expands into another. */
#ifndef DL_KINDS_H
#define DL_KINDS_H

#include <stdint.h>
#include "kinds/common.h"

struct file_spec {
	const char *path;
	struct text content;
	const char *source;
	struct optmode mode;
	struct owner own;
	int ensure;		/* 0 present, 1 absent */
	int adopt;		/* -1 unset */
	int tmpl;		/* File 'template: true': host variables in content and source */
	char blob[41];		/* desired content's blob id */
	int secret;		/* kind Secret: content/source hold age ciphertext */
	char cipher[41];	/* Secret with source: the ciphertext's blob id */
};

struct dir_spec {
	const char *path;
	struct optmode mode;
	struct owner own;
	const char *source;	/* repository folder to mirror */
	int purge;
	int ensure;
	int adopt;
};

struct link_spec {
	const char *path;
	const char *target;
	struct owner own;
	int ensure;
	int adopt;
};

struct user_spec {
	const char *name;	/* the account; metadata.name when absent */
	const char *uid;	/* decimal, as written */
	const char *group;	/* primary group: a name or a gid */
	const char **groups;	/* supplementary groups, exactly; NULL: not managed */
	const char *comment;	/* GECOS */
	const char *home;
	const char *shell;
	int system;		/* -1 unset */
	int ensure;		/* 0 present, 1 absent */
	int adopt;
};

struct group_spec {
	const char *name;	/* the group; metadata.name when absent */
	const char *gid;	/* decimal, as written */
	int system;
	int ensure;		/* 0 present, 1 absent */
	int adopt;
};

struct package_spec {
	const char *name;	/* the Debian package; metadata.name when absent */
	const char *version;	/* a pin (ensure: present only) */
	int ensure;		/* 0 present, 1 absent, 2 latest */
};

extern const struct kind kind_file, kind_directory, kind_symlink, kind_secret;
extern const struct kind kind_user, kind_group, kind_package;

/* kinds/account.c: what User and Group share. */
/* A line of ROOT/etc/passwd or ROOT/etc/group, split at ':' (arena). */
struct account {
	const char *f[7];
	int nf;
};
/* The account name of a User or Group resource. */
const char *account_name(const struct resource *res);
/* Find name in ROOT/etc/group (group) or ROOT/etc/passwd: 0, 1 when it
 * has no line, -1 when the file cannot be read. */
int account_find(struct pass *p, int group, const char *name, struct account *out);
/* The User (group 0) or Group of this pass that declares the account name
 * with ensure: present, or NULL. */
struct resource *account_declared(struct pass *p, const char *name, int group);
/* Its declared uid or gid as written, or NULL. */
const char *account_declared_id(const struct resource *decl);
/* Run /usr/sbin/TOOL [--prefix ROOT] ARGS -- NAME (no shell). 0 or -1. */
int account_tool(struct pass *p, const char *tool, const char *const *args, size_t nargs,
		 const char *name);
/* The root as an absolute path when it is not "/", else NULL (arena). */
const char *root_prefix(struct pass *p);

int file_resolve_source(struct pass *p, struct resource *res, const char *src, char oid[41],
			uint64_t *size);
int file_content(struct pass *p, struct file_spec *s, struct buf *out);
int file_observe(struct resource *res, struct pass *p, struct change *chg);
int file_apply(struct change *chg, struct pass *p);

/* kinds/secret.c: the plaintext of a Secret into out (registered with the
 * redactor); forget the pass's identity (wiped). */
int secret_content(struct pass *p, struct file_spec *s, struct buf *out);
void secret_pass_release(struct pass *p);

#endif
