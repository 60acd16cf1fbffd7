/* SPDX-License-Identifier: MIT */
/* Pure checks on identifiers and paths from manifests: names, ids, host and repository paths. */
#ifndef DL_CHECK_H
#define DL_CHECK_H

#include <stddef.h>
#include "lib/arena.h"

/*
 * Each returns NULL when s is acceptable, else a static message fragment
 * or one formatted into the arena, ready to follow "'field' ".
 */

/* Bytes that must never appear in an identifier or path: C0, DEL, invalid
 * UTF-8, C1 controls, invisible format characters and combining marks. */
const char *check_text(struct arena *a, const char *s, size_t len);

/* metadata.name: [a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most 253 bytes */
const char *check_name(const char *s);

/* owner/group: a number, or [A-Za-z_][A-Za-z0-9_.-]*$? up to 32 bytes, no leading '-' */
const char *check_account(const char *s);
/* The name of a User or Group: as check_account, but never all digits
 * (so never '-', ':', ',', '/', whitespace or a newline). */
const char *check_account_name(const char *s);
/* A numeric uid or gid: decimal digits, below 2^32 - 1. */
const char *check_numeric_id(const char *s, unsigned long *out);
/* A Debian package name: [a-z0-9][a-z0-9+.-]+ (at least two characters). */
const char *check_package_name(const char *s);
/* A Debian version: [epoch:]upstream[-revision] from [A-Za-z0-9.+~:-],
 * starting with a digit. */
const char *check_package_version(const char *s);

/* An absolute host path: normalised into *out (no "//", no "." components,
 * no trailing '/'), ".." refused, control characters refused. */
const char *check_host_path(struct arena *a, const char *s, size_t len, const char **out);

/* A repository path relative to base (a repository directory, "" for the root):
 * joined and normalised into *out; may not leave the repository. */
const char *check_repo_path(struct arena *a, const char *base, const char *s, size_t len,
			    const char **out);

/* The same, where the repository root itself ("") is a valid answer (a
 * layer's resources name directories). */
const char *check_repo_dir(struct arena *a, const char *base, const char *s, size_t len,
			   const char **out);

/* Non-NULL when a component of the repository path names git metadata in
 * any spelling a file system might fold to ".git" (".GIT", ".git ", ".git.",
 * "git~1", ".git::$INDEX_ALLOCATION"). */
const char *check_git_path(const char *path);
/* The same for the last component only (for tree walks, which see parents first). */
const char *check_git_name(const char *path);

/* 1 when path equals root or lies below it (both normalised). */
int path_under(const char *path, const char *root);

/* A quoted octal mode "0644", "644", "4755" (^0?[0-7]{3,4}$). */
const char *check_mode(const char *s, unsigned *out);

#endif
