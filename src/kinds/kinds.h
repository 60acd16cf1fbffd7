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

extern const struct kind kind_file, kind_directory, kind_symlink, kind_secret;

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
