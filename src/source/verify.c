/* SPDX-License-Identifier: MIT */
/* Signed commits: the signature header split from the commit, SSH signatures checked natively, GPG
 * ones through gpgme with a keyring from the local config only. */
#include <ftw.h>
#include <gpgme.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/err.h"
#include "lib/sshsig.h"
#include "lib/trust.h"
#include "source/git.h"
#include "source/verify.h"

#define TRUST_MAX (1u << 20)
#define COMMIT_MAX (64u << 20)

/* One header line "name value", continuation lines start with a space. */
static int is_header(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && !memcmp(line, name, n) && line[n] == ' ';
}

int verify_split_commit(const char *raw, size_t len, struct buf *sig, struct buf *payload)
{
	const char *p = raw, *end = raw + len;
	int found = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);
		const char *next = nl ? nl + 1 : end;
		if (ll == 0) {
			/* the message: never read for headers */
			buf_add(payload, p, (size_t)(end - p));
			break;
		}
		int gpgsig = is_header(p, ll, "gpgsig");
		if (is_header(p, ll, "gpgsig-sha256"))
			return err_set("the commit has a 'gpgsig-sha256' header, which a SHA-1"
				       " repository never carries");
		if (!gpgsig) {
			buf_add(payload, p, (size_t)(next - p));
			p = next;
			continue;
		}
		if (found++)
			return err_set("the commit has more than one signature header");
		buf_add(sig, p + 7, ll - 7);
		p = next;
		while (p < end && *p == ' ') {
			nl = memchr(p, '\n', (size_t)(end - p));
			le = nl ? nl : end;
			buf_addch(sig, '\n');
			buf_add(sig, p + 1, (size_t)(le - p - 1));
			p = nl ? nl + 1 : end;
		}
		buf_addch(sig, '\n');
	}
	return found ? 0 : 1;
}

/* ---- GPG (gpgme): a throw-away home holding only the configured keyring ---- */

struct gpg {
	gpgme_ctx_t ctx;
	char *home;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void gpg_release(struct gpg *g)
{
	if (g->ctx)
		gpgme_release(g->ctx);
	if (g->home) {
		nftw(g->home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(g->home);
	}
	memset(g, 0, sizeof(*g));
}

static int gpg_fail(gpgme_error_t e, const char *what)
{
	return err_set("%s: %s", what, gpgme_strerror(e));
}

static int gpg_open(struct gpg *g, const struct verify_opts *v)
{
	struct buf ring = BUF_INIT;
	gpgme_data_t d = NULL;
	gpgme_error_t e;
	int ret = -1;

	memset(g, 0, sizeof(*g));
	if (trust_file_read(v->gpg_keyring, "source.verify.gpgKeyring", TRUST_ANCHOR, TRUST_MAX,
			    &ring) < 0)
		return -1;
	gpgme_check_version(NULL);
	g->home = xasprintf("%s/gnupg.XXXXXX", v->state_dir ? v->state_dir : "/tmp");
	if (!mkdtemp(g->home)) {
		err_set_errno("cannot create a directory for gpg below '%s'", v->state_dir);
		free(g->home);
		g->home = NULL;
		goto out;
	}
	if ((e = gpgme_new(&g->ctx)) || (e = gpgme_set_protocol(g->ctx, GPGME_PROTOCOL_OpenPGP)) ||
	    (e = gpgme_ctx_set_engine_info(g->ctx, GPGME_PROTOCOL_OpenPGP, NULL, g->home))) {
		gpg_fail(e, "cannot start gpg");
		goto out;
	}
	if ((e = gpgme_data_new_from_mem(&d, ring.ptr ? ring.ptr : "", ring.len, 0)) ||
	    (e = gpgme_op_import(g->ctx, d))) {
		gpg_fail(e, "cannot import 'source.verify.gpgKeyring'");
		goto out;
	}
	gpgme_import_result_t r = gpgme_op_import_result(g->ctx);
	if (!r || r->imported + r->unchanged == 0) {
		err_set("'source.verify.gpgKeyring' ('%s') holds no public key", v->gpg_keyring);
		goto out;
	}
	ret = 0;
out:
	gpgme_data_release(d);
	buf_release(&ring);
	if (ret < 0)
		gpg_release(g);
	return ret;
}

/* 0 good, -1 refused (message set). */
static int gpg_verify(struct gpg *g, const struct buf *sig, const struct buf *payload)
{
	gpgme_data_t s = NULL, m = NULL;
	gpgme_error_t e;
	int ret = -1;
	if ((e = gpgme_data_new_from_mem(&s, sig->ptr, sig->len, 0)) ||
	    (e = gpgme_data_new_from_mem(&m, payload->ptr ? payload->ptr : "", payload->len, 0))) {
		gpg_fail(e, "cannot verify the GPG signature");
		goto out;
	}
	e = gpgme_op_verify(g->ctx, s, m, NULL);
	gpgme_verify_result_t r = e ? NULL : gpgme_op_verify_result(g->ctx);
	if (!r || !r->signatures) {
		err_set("the GPG signature cannot be read%s%s", e ? ": " : "",
			e ? gpgme_strerror(e) : "");
		goto out;
	}
	if (r->signatures->next) {
		err_set("the GPG signature holds more than one signature");
		goto out;
	}
	gpgme_signature_t one = r->signatures;
	const char *fpr = one->fpr ? one->fpr : "?";
	if (gpgme_err_code(one->status) == GPG_ERR_NO_PUBKEY)
		err_set("GPG key %s is not in the keyring 'source.verify.gpgKeyring'", fpr);
	else if (one->summary & GPGME_SIGSUM_KEY_REVOKED)
		err_set("GPG key %s is revoked", fpr);
	else if (one->summary & (GPGME_SIGSUM_KEY_EXPIRED | GPGME_SIGSUM_SIG_EXPIRED))
		err_set("GPG key or signature %s has expired", fpr);
	else if (gpgme_err_code(one->status) != GPG_ERR_NO_ERROR)
		err_set("bad GPG signature from key %s: %s", fpr, gpgme_strerror(one->status));
	else
		ret = 0;
out:
	gpgme_data_release(s);
	gpgme_data_release(m);
	return ret;
}

/* ---- the policy ---- */

struct checker {
	const struct verify_opts *v;
	struct gitsrc *git;
	struct sshsig_allowed allowed;
	int have_ssh;
	struct gpg gpg;
	int have_gpg;
};

static int checker_open(struct checker *c, struct gitsrc *g, const struct verify_opts *v)
{
	memset(c, 0, sizeof(*c));
	c->v = v;
	c->git = g;
	if (v->allowed_signers) {
		struct buf b = BUF_INIT;
		int r = trust_file_read(v->allowed_signers, "source.verify.allowedSigners",
					TRUST_ANCHOR, TRUST_MAX, &b);
		if (!r)
			r = sshsig_allowed_parse(&c->allowed, b.ptr ? b.ptr : "", b.len,
						 v->allowed_signers);
		buf_release(&b);
		if (r < 0)
			return -1;
		c->have_ssh = 1;
	}
	if (v->gpg_keyring) {
		if (gpg_open(&c->gpg, v) < 0) {
			sshsig_allowed_release(&c->allowed);
			return -1;
		}
		c->have_gpg = 1;
	}
	return 0;
}

static void checker_release(struct checker *c)
{
	sshsig_allowed_release(&c->allowed);
	gpg_release(&c->gpg);
}

/* 0 good, 1 refused, -1 error; the message names the commit. */
static int check_one(struct checker *c, const char *oid)
{
	struct buf raw = BUF_INIT, sig = BUF_INIT, payload = BUF_INIT;
	int ret = 1;
	if (gitsrc_read_commit(c->git, oid, COMMIT_MAX, &raw) < 0) {
		ret = -1;
		goto out;
	}
	int r = verify_split_commit(raw.ptr, raw.len, &sig, &payload);
	if (r < 0) {
		err_wrap("commit %.12s", oid);
		goto out;
	}
	if (r == 1) {
		err_set("commit %.12s is not signed", oid);
		goto out;
	}
	if (strstr(sig.ptr, "-----BEGIN SSH SIGNATURE-----")) {
		char fp[SSHSIG_FP_MAX];
		if (!c->have_ssh)
			err_set("commit %.12s has an SSH signature, and no 'allowedSigners' is"
				" configured",
				oid);
		else if (sshsig_verify(sig.ptr, sig.len, payload.ptr ? payload.ptr : "",
				       payload.len, "git", &c->allowed, (int64_t)time(NULL),
				       fp) < 0)
			err_wrap("commit %.12s", oid);
		else
			ret = 0;
	} else if (strstr(sig.ptr, "-----BEGIN PGP SIGNATURE-----")) {
		if (!c->have_gpg)
			err_set(
			    "commit %.12s has a GPG signature, and no 'gpgKeyring' is configured",
			    oid);
		else if (gpg_verify(&c->gpg, &sig, &payload) < 0)
			err_wrap("commit %.12s", oid);
		else
			ret = 0;
	} else {
		err_set("commit %.12s has a signature of an unknown kind", oid);
	}
out:
	buf_release(&raw);
	buf_release(&sig);
	buf_release(&payload);
	return ret;
}

int verify_revision(struct gitsrc *g, const struct verify_opts *v, const char *oid,
		    const char *last_applied)
{
	struct checker c;
	char *list = NULL;
	size_t n = 0;
	int ret;

	if (v->mode == VERIFY_OFF)
		return 0;
	if (checker_open(&c, g, v) < 0)
		return -1;
	if (v->mode == VERIFY_HEAD || !last_applied || !*last_applied ||
	    !strcmp(last_applied, oid)) {
		ret = check_one(&c, oid);
		goto out;
	}
	int r = gitsrc_commits_since(g, oid, last_applied, VERIFY_MAX_COMMITS, &list, &n);
	if (r < 0) {
		ret = 1;
		err_wrap("strict verification of %.12s", oid);
		goto out;
	}
	ret = 0;
	for (size_t i = 0; i < n && !ret; i++)
		ret = check_one(&c, list + i * 41);
	/* a revision older than the applied one is in no such list: check it too */
	if (!ret && (!n || strcmp(list + (n - 1) * 41, oid)))
		ret = check_one(&c, oid);
out:
	free(list);
	checker_release(&c);
	return ret;
}
