/* SPDX-License-Identifier: MIT */
/*
 * Kind Secret: a File whose content is stored in Git encrypted with age for
 * this host's recipient, and decrypted only here. The ciphertext is checked
 * and decrypted while the revision is validated, so a secret this host
 * cannot open rejects the whole revision before anything is applied. The
 * plaintext is never kept: its blob id is what the stat cache, the state
 * database and plans compare; it is decrypted again when written, goes to
 * the file at its final mode (fs_stage_write sets it before any data), and
 * every copy in memory is wiped. Each plaintext is registered with the
 * redactor (lib/redact.h) the moment it exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/check.h"
#include "kinds/common.h"
#include "kinds/kinds.h"
#include "lib/age.h"
#include "lib/err.h"
#include "lib/redact.h"
#include "source/git.h"

#define IDENTITY_MAX (64u << 10)

struct age_keys {
	struct age_identity *ids;
	size_t n;
};

static const char *const ensure_values[] = { "present", "absent", NULL };

static const struct field secret_fields[] = {
	{ "path", FIELD_PATH, offsetof(struct file_spec, path), FIELD_REQUIRED, NULL },
	{ "content", FIELD_TEXT, offsetof(struct file_spec, content), 0, NULL },
	{ "source", FIELD_RELPATH, offsetof(struct file_spec, source), 0, NULL },
	{ "mode", FIELD_MODE, offsetof(struct file_spec, mode), 0, NULL },
	{ "owner", FIELD_ID, offsetof(struct file_spec, own.owner), 0, NULL },
	{ "group", FIELD_ID, offsetof(struct file_spec, own.group), 0, NULL },
	{ "ensure", FIELD_ENUM, offsetof(struct file_spec, ensure), 0, ensure_values },
	{ "adopt", FIELD_BOOL, offsetof(struct file_spec, adopt), 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

void secret_pass_release(struct pass *p)
{
	if (!p->keys)
		return;
	redact_wipe(p->keys->ids, p->keys->n * sizeof(*p->keys->ids));
	free(p->keys->ids);
	free(p->keys);
	p->keys = NULL;
}

/* Read and parse the identity file once per pass. It must be a regular file
 * that only its owner (root or us) can read. */
static int load_keys(struct pass *p)
{
	struct stat st;
	struct buf b = BUF_INIT;
	int fd, ret = -1;

	if (p->keys)
		return 0;
	/* plaintext will be in this process: no core dumps, no ptrace by others */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	fd = open(p->identity_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set_errno("cannot read the age identity '%s'", p->identity_file);
	if (fstat(fd, &st) < 0) {
		err_set_errno("cannot read the age identity '%s'", p->identity_file);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("the age identity '%s' is not a regular file", p->identity_file);
		goto out;
	}
	if (st.st_mode & 077) {
		err_set("the age identity '%s' is readable by group or others (mode %04o); "
			"it must be 0600 or 0400", p->identity_file, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		err_set("the age identity '%s' is owned by uid %u, not by root", p->identity_file,
			(unsigned)st.st_uid);
		goto out;
	}
	if (st.st_size > (off_t)IDENTITY_MAX) {
		err_set("the age identity '%s' is larger than %u bytes", p->identity_file, IDENTITY_MAX);
		goto out;
	}
	buf_grow(&b, (size_t)st.st_size + 1);
	for (;;) {
		ssize_t n = read(fd, b.ptr + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set_errno("cannot read the age identity '%s'", p->identity_file);
			goto out;
		}
		if (n == 0 || b.len + (size_t)n >= b.cap - 1) {
			b.len += (size_t)n;
			break;
		}
		b.len += (size_t)n;
	}
	b.ptr[b.len] = '\0';
	struct age_keys *k = xcalloc(1, sizeof(*k));
	k->ids = xcalloc(AGE_MAX_IDENTITIES, sizeof(*k->ids));
	if (age_identity_parse(k->ids, AGE_MAX_IDENTITIES, &k->n, b.ptr, b.len) < 0) {
		err_wrap("the age identity '%s'", p->identity_file);
		free(k->ids);
		free(k);
		goto out;
	}
	p->keys = k;
	ret = 0;
out:
	redact_wipe(b.ptr, b.cap);
	buf_release(&b);
	close(fd);
	return ret;
}

/* Does data look like an age file (binary or armored)? Nothing else is
 * accepted as a Secret's content: plaintext in Git is an error. */
static int looks_like_age(const char *d, size_t len)
{
	static const char bin[] = "age-encryption.org/v1\n";
	static const char arm[] = "-----BEGIN AGE ENCRYPTED FILE-----";
	while (len && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n')) {
		d++;
		len--;
	}
	return (len >= sizeof(bin) - 1 && !memcmp(d, bin, sizeof(bin) - 1)) ||
	       (len >= sizeof(arm) - 1 && !memcmp(d, arm, sizeof(arm) - 1));
}

/* The ciphertext of s: inline, or the blob of the commit. */
static int ciphertext(struct pass *p, struct file_spec *s, struct buf *out)
{
	if (s->content.ptr) {
		buf_add(out, s->content.ptr, s->content.len);
		return 0;
	}
	struct gitsrc *g = pass_git(p);
	return g ? gitsrc_read_blob(g, ((struct secret_spec *)s)->cipher, AGE_MAX_INPUT, out) : -1;
}

static int decrypt(struct pass *p, struct file_spec *s, const struct buf *ct, struct buf *out)
{
	if (load_keys(p) < 0)
		return -1;
	if (age_decrypt(p->keys->ids, p->keys->n, ct->ptr ? ct->ptr : "", ct->len, out) < 0)
		return -1;
	redact_add(out->ptr ? out->ptr : "", out->len);
	if (out->len > p->policy->max_file_size) {
		redact_wipe(out->ptr, out->cap);
		buf_reset(out);
		return err_set("the decrypted secret is %s than the limit of %llu bytes", "larger",
			       (unsigned long long)p->policy->max_file_size);
	}
	(void)s;
	return 0;
}

int secret_content(struct pass *p, struct file_spec *s, struct buf *out)
{
	struct buf ct = BUF_INIT;
	int ret = ciphertext(p, s, &ct);
	if (!ret)
		ret = decrypt(p, s, &ct, out);
	buf_release(&ct);
	if (ret < 0)
		return err_wrap("cannot decrypt Secret '%s'", s->path);
	return 0;
}

static int secret_check(struct resource *res, struct pass *p)
{
	struct file_spec *s = res->spec;
	const char *field = s->source ? "source" : "content";
	struct buf ct = BUF_INIT, pt = BUF_INIT;
	int ret = -1;

	s->secret = 1;
	if (s->content.ptr && s->source) {
		res_diag(p, res, "source", "exactly one of 'content' and 'source' may be set");
		return -1;
	}
	if (!s->mode.set) {
		/* a secret is private unless the manifest says otherwise */
		s->mode.set = 1;
		s->mode.mode = 0600;
	}
	owner_resolve(p, res, &s->own);
	if (s->adopt == 1)
		res->adopt = 1;
	if (s->ensure == 1 && !s->content.ptr && !s->source)
		return 0;
	if (!s->content.ptr && !s->source) {
		res_diag(p, res, NULL, "one of 'spec.content' and 'spec.source' is required");
		return -1;
	}
	if (s->source) {
		uint64_t size;
		if (file_resolve_source(p, res, s->source, ((struct secret_spec *)s)->cipher, &size) < 0)
			return -1;
		if (size > AGE_MAX_INPUT) {
			res_diag(p, res, "source", "'source' '%s' is %llu bytes, more than the %u bytes "
				 "a Secret may have", s->source, (unsigned long long)size, AGE_MAX_INPUT);
			return -1;
		}
	} else if (s->content.len > AGE_MAX_INPUT) {
		res_diag(p, res, "content", "'content' is %zu bytes, more than the %u bytes a Secret may have",
			 s->content.len, AGE_MAX_INPUT);
		return -1;
	}
	if (ciphertext(p, s, &ct) < 0) {
		res_diag(p, res, field, "%s", err_msg());
		goto out;
	}
	if (!looks_like_age(ct.ptr ? ct.ptr : "", ct.len)) {
		/* never echo it: it may be the plaintext someone forgot to seal */
		res_diag(p, res, field, "'%s' of a Secret is not age-encrypted; plaintext secrets "
			 "are refused (encrypt it with 'driftless secret seal')", field);
		goto out;
	}
	if (!p->identity_file) {
		ret = 0;	/* validate: no identity here; the host checks the rest */
		goto out;
	}
	if (decrypt(p, s, &ct, &pt) < 0) {
		res_diag(p, res, field, "cannot decrypt: %s", err_msg());
		goto out;
	}
	gitsrc_hash_blob(pt.ptr ? pt.ptr : "", pt.len, s->blob);
	res->digest_extra = s->blob;
	ret = 0;
out:
	redact_wipe(pt.ptr, pt.cap);
	buf_release(&pt);
	buf_release(&ct);
	return ret;
}

/* Never a content diff: the digests of the old and the new plaintext. */
static int secret_diff(struct change *chg, struct pass *p, struct buf *out)
{
	struct file_spec *s = chg->res->spec;
	struct buf cur = BUF_INIT;
	char was[REDACT_TAG_MAX], now[REDACT_TAG_MAX];

	if (chg->type != NODE_FILE || !strcmp(chg->oid, s->blob))
		return 0;
	if (fs_read(&p->root, chg->res->path, (size_t)p->policy->max_file_size, &cur) < 0)
		snprintf(was, sizeof(was), "<unreadable>");
	else
		redact_tag(cur.ptr ? cur.ptr : "", cur.len, was);
	redact_wipe(cur.ptr, cur.cap);
	buf_reset(&cur);
	if (secret_content(p, s, &cur) < 0) {
		buf_addf(out, "(secret content differs: %s)\n", err_msg());
	} else {
		redact_tag(cur.ptr ? cur.ptr : "", cur.len, now);
		buf_addf(out, "--- %s\n+++ %s\n-%s\n+%s\n", chg->res->path, chg->res->path, was, now);
	}
	redact_wipe(cur.ptr, cur.cap);
	buf_release(&cur);
	return 0;
}

const struct kind kind_secret = {
	.name = "Secret",
	.fields = secret_fields,
	.spec_size = sizeof(struct secret_spec),
	.path_offset = offsetof(struct file_spec, path),
	.check = secret_check,
	.observe = file_observe,
	.apply = file_apply,
	.diff = secret_diff,
};
