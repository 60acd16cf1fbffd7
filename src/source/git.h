/* SPDX-License-Identifier: MIT */
/* The only seam to libgit2: fetch a remote into a bare cache and read a commit's objects. */
#ifndef DL_GIT_H
#define DL_GIT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

struct gitsrc;
struct revision;

struct source_opts {
	const char *url;	/* file://, local path, git://, http(s)://, ssh:// */
	const char *branch;	/* at most one of branch, tag, semver, commit */
	const char *tag;
	const char *commit;	/* full or abbreviated (>= 7) hex object id */
	const char *semver;	/* the highest tag matching this range (lib/semver.h) */
	const char *ca_file;	/* extra CA bundle for https, or NULL */
	int offline;		/* use the cache only, never contact the remote */
	/* credentials (docs/sources.md): the caller read them from root-owned
	 * files and registered them with redact_add() */
	const char *username;	/* http(s) basic auth; NULL with password: "x-access-token" */
	const char *password;	/* a token or password, or NULL */
	const char *ssh_key;	/* an OpenSSH private key (the text), or NULL */
	const char *known_hosts; /* known_hosts text for ssh://; ssh needs it */
	const char *known_hosts_file;	/* its name, for messages */
	uint64_t max_bytes;	/* abort a download larger than this; 0: no cap */
	int64_t deadline_ms;	/* CLOCK_MONOTONIC ms when the fetch gives up; 0: none */
};

/* Open (creating if needed) the bare object cache for url under cache_dir. */
int gitsrc_open(struct gitsrc **out, const char *cache_dir, const char *url);
/* Start initialising libgit2 (which parses the system's CA bundle) on a
 * thread of its own, to overlap with other start-up work; the first
 * gitsrc_* call that needs it waits for it. */
void gitsrc_warmup(void);
/* Wait for that thread, if it runs (main() does, before it returns). */
void gitsrc_warmup_wait(void);
void gitsrc_free(struct gitsrc *g);

/* 1 when a libgit2 failure since the last call came from damage in the
 * cache (object database, zlib, refs), not from the network. */
int gitsrc_cache_damaged(void);
/* Move the cache of url aside (*aside: where to), so the next open starts
 * a fresh one. */
int gitsrc_cache_reset(const char *cache_dir, const char *url, char **aside);

/*
 * Ask the remote for the wanted ref; download a pack only when the commit
 * is not already in the cache. Fills rev (oid, ref, author, summary, time).
 * *fetched is set to 1 when objects were downloaded.
 */
int gitsrc_fetch(struct gitsrc *g, const struct source_opts *o, struct revision *rev,
		 int *fetched);

/* Snapshot the files below a host directory (a working copy; ".git" is
 * skipped) as a commit in the cache, for validating uncommitted work. */
int gitsrc_import_dir(struct gitsrc *g, const char *dir, struct revision *rev);

/* Fill rev for a commit already in the cache (after a fetch elsewhere). */
int gitsrc_resolve(struct gitsrc *g, const char *oid, const char *ref, struct revision *rev);

/* Entry types of a tree walk. */
enum gitsrc_entry { GITSRC_BLOB, GITSRC_EXEC, GITSRC_LINK, GITSRC_TREE, GITSRC_COMMIT };

/*
 * Walk the tree of commit oid below dir ("" for the root) recursively in
 * path order. cb gets the repository-relative path, the type, the blob id
 * (40 hex) and the blob size (0 for non-blobs). A non-zero return from cb
 * stops the walk and is returned. Returns 1 when dir does not exist.
 */
typedef int (*gitsrc_walk_cb)(void *ctx, const char *path, enum gitsrc_entry type,
			      const char *oid, uint64_t size);
int gitsrc_walk(struct gitsrc *g, const char *commit, const char *dir,
		gitsrc_walk_cb cb, void *ctx);

/*
 * The same; with sizes 0 the size is not read (reported as UINT64_MAX), which
 * saves an object header read per blob. With matters, a folder in which no
 * entry at any depth passes matters(name, type) is remembered in the cache's
 * memo (by tree id), and its entries are not walked again in a later pass:
 * matters must say yes to every entry for which cb does anything, and
 * depend on nothing but its arguments.
 */
typedef int (*gitsrc_matters_fn)(const char *name, enum gitsrc_entry type);
int gitsrc_walk_pruned(struct gitsrc *g, const char *commit, const char *dir, int sizes,
		       gitsrc_matters_fn matters, gitsrc_walk_cb cb, void *ctx);

/* Look up one path in the commit's tree (no symlink following). Returns 0
 * and fills type/oid/size, 1 when absent, -1 on error. */
int gitsrc_lookup(struct gitsrc *g, const char *commit, const char *path,
		  enum gitsrc_entry *type, char oid[41], uint64_t *size);

/* Size of a blob from its object header, without reading it. */
int gitsrc_blob_size(struct gitsrc *g, const char *oid, uint64_t *out);

/* Read a blob, refusing blobs larger than max bytes. */
int gitsrc_read_blob(struct gitsrc *g, const char *oid, size_t max, struct buf *out);

/* Git blob id of data (what `git hash-object` prints), 40 hex + NUL. */
void gitsrc_hash_blob(const void *data, size_t len, char out[41]);

/* Append a unified diff of a -> b (labelled with path) to out. */
int gitsrc_diff_text(const char *path, const char *a, size_t alen,
		     const char *b, size_t blen, struct buf *out);

/* The raw object of a commit (headers and message), refusing more than max bytes. */
int gitsrc_read_commit(struct gitsrc *g, const char *oid, size_t max, struct buf *out);

/* The commits reachable from head and not from base, oldest first, as
 * *n ids of 41 bytes each (NUL-terminated) in *out (to free). More than max
 * is an error, and so is a base not in the cache. */
int gitsrc_commits_since(struct gitsrc *g, const char *head, const char *base, size_t max,
			 char **out, size_t *n);

/* 1 when commit is ancestor or a descendant of it, 0 when not (history was
 * rewritten, or went back), 2 when ancestor is not in the cache (cannot
 * tell), -1 on error. */
int gitsrc_descendant(struct gitsrc *g, const char *commit, const char *ancestor);

/* url without userinfo, for messages (never prints credentials). */
char *gitsrc_redact_url(const char *url);

const char *gitsrc_version(void);

/* A working clone (driftless capture). gitsrc_clone_check: 0 when HEAD of
 * the clone at dir is commit or a descendant of it, 1 when not (head is set
 * either way), -1 on error. */
int gitsrc_clone_check(const char *dir, const char *commit, char head[41]);
/* Stage paths (relative to the work tree) and commit them on HEAD. The
 * author is the clone's own user.name/user.email, else name <email>. */
int gitsrc_clone_commit(const char *dir, const char *const *paths, size_t n, const char *msg,
			const char *name, const char *email, char out[41]);

#endif
