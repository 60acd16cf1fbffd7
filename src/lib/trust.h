/* SPDX-License-Identifier: MIT */
/* Reading credentials and trust material from local files, refusing files others could read or
 * change. */
#ifndef DL_TRUST_H
#define DL_TRUST_H

#include <stddef.h>
#include "lib/buf.h"

enum trust_kind {
	TRUST_SECRET, /* a token, password or private key: owner-only (no group or other bits) */
	TRUST_ANCHOR, /* keys to trust: nobody but the owner may write it */
};

/*
 * Read path (at most max bytes) into out. The file must be a regular file
 * owned by root or by the running user, with the mode kind asks for; what
 * names the setting in messages ("source.auth.tokenFile"). A TRUST_SECRET's
 * content (and its trimmed form) is registered with redact_add() at once.
 */
int trust_file_read(const char *path, const char *what, enum trust_kind kind, size_t max,
		    struct buf *out);

#endif
