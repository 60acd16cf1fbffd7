/* SPDX-License-Identifier: MIT */
/* Signed commits: an SSH (allowed_signers) or GPG (keyring) signature on the revision, or on every
 * commit since the last applied one. */
#ifndef DL_VERIFY_H
#define DL_VERIFY_H

#include <stddef.h>
#include "lib/buf.h"

struct gitsrc;

enum verify_mode { VERIFY_OFF, VERIFY_HEAD, VERIFY_STRICT };

struct verify_opts {
	enum verify_mode mode;
	const char *allowed_signers; /* ssh-keygen(1) allowed_signers file, or NULL */
	const char *gpg_keyring; /* a keyring (binary or armored) of allowed GPG keys, or NULL */
	const char *state_dir;	 /* gpg's private, throw-away home goes below it */
};

/* At most this many commits are checked between two revisions (strict). */
#define VERIFY_MAX_COMMITS 10000

/*
 * Split a raw commit object into the value of its one signature header
 * ("gpgsig", continuation lines unfolded) and the signed payload (the
 * object without that header). Headers are read only up to the first blank
 * line. 0 when signed, 1 when unsigned, -1 (with a message) when there is
 * more than one signature header or an unknown one ("gpgsig-sha256").
 */
int verify_split_commit(const char *raw, size_t len, struct buf *sig, struct buf *payload);

/*
 * Check the revision oid under v. Mode head checks oid; strict checks every
 * commit reachable from oid and not from last_applied (NULL: none yet, oid
 * only), oldest first, and names the first one that fails. 0 when
 * verified; 1 when refused (err_msg() says why and names the commit); -1
 * on an error that is not the revision's fault (an unreadable allowed
 * signers file, say).
 */
int verify_revision(struct gitsrc *g, const struct verify_opts *v, const char *oid,
		    const char *last_applied);

#endif
