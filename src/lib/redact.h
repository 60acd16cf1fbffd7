/* SPDX-License-Identifier: MIT */
/*
 * The one redactor. Every decrypted secret is registered here the moment it
 * exists; every sink (error messages, diagnostics, the agent log, plan and
 * diff output, history details, the HTTP surface, notifications) passes its
 * text through redact_*() so a registered value is shown only as
 * "<redacted sha256:PREFIX>". Redaction is a property of the sink, not of the
 * call site that happened to remember it.
 */
#ifndef DL_REDACT_H
#define DL_REDACT_H

#include <stddef.h>
#include "lib/buf.h"

/* "<redacted sha256:" + 12 hex + ">" + NUL */
#define REDACT_TAG_MAX 32

/* Remember a secret value (the whole of it, its trimmed form and each long
 * line). Values shorter than 4 bytes are too short to search for. */
void redact_add(const void *data, size_t len);
/* Forget every value (wiping the copies). */
void redact_clear(void);
/* How many values are registered (0: redaction is a no-op). */
size_t redact_count(void);

/* The tag that stands for data: "<redacted sha256:0123456789ab>". */
void redact_tag(const void *data, size_t len, char out[REDACT_TAG_MAX]);
/* Append s[0..len) to out with every registered value and every URL's
 * userinfo ("https://user:TOKEN@host") replaced. */
void redact_buf(struct buf *out, const char *s, size_t len);
/* Rewrite the NUL-terminated string s (capacity cap) in place, truncating
 * if the result does not fit. Returns s. */
char *redact_inplace(char *s, size_t cap);

/* Overwrite n bytes in a way the compiler may not drop. */
void redact_wipe(void *p, size_t n);

#endif
