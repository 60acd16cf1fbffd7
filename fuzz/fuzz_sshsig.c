/* SPDX-License-Identifier: MIT */
/* libFuzzer target: any bytes as an SSH signature, an allowed_signers file, a known_hosts file and
 * a raw commit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/sshsig.h"
#include "source/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus (fuzz/corpus/sshsig) holds signatures by this key over
 * "msg" (tests/unit/data/sshsig), so mutations start past the parser. */
static const char allowed_text[] =
    "alice@example.com namespaces=\"git\" ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIE278Ob8z6RW2ClmSVEgzRCG9Txm/GFB5oJEOB8VohhW alice\n";
static const char msg[] = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
			  "author A <a@x> 1700000000 +0000\n"
			  "committer A <a@x> 1700000000 +0000\n\nsigned message\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sshsig_allowed allowed;
	static int ready;
	const char *s = (const char *)data;
	struct sshsig_allowed a;
	struct sshsig sig;
	struct buf sg = BUF_INIT, payload = BUF_INIT;
	char fp[SSHSIG_FP_MAX];

	if (!ready && sshsig_allowed_parse(&allowed, allowed_text, strlen(allowed_text), "f"))
		__builtin_trap();
	ready = 1;

	/* as a signature: it parses or not; only a real one verifies */
	if (!sshsig_parse(&sig, s, size)) {
		BUG_ON(!sig.raw || sig.pubkeylen > sig.rawlen || sig.siglen > sig.rawlen);
		sshsig_fingerprint(sig.pubkey, sig.pubkeylen, fp);
		BUG_ON(strncmp(fp, "SHA256:", 7));
		sshsig_release(&sig);
	}
	sshsig_verify(s, size, msg, strlen(msg), "git", &allowed, 1800000000, fp);

	/* as an allowed_signers file */
	if (!sshsig_allowed_parse(&a, s, size, "f")) {
		for (size_t i = 0; i < a.n; i++)
			BUG_ON(!a.v[i].key || !a.v[i].keylen || !a.v[i].principals);
		sshsig_allowed_release(&a);
	}

	/* as a known_hosts file, against the one key above */
	sshsig_known_host(s, size, "kh", "git.example", 2222, allowed.v[0].key,
			  allowed.v[0].keylen);

	/* as a raw commit: the payload never holds the signature header */
	int r = verify_split_commit(s, size, &sg, &payload);
	if (r >= 0)
		BUG_ON(payload.len > size || sg.len > size + size / 2 + 2);
	if (r == 1)
		BUG_ON(payload.len != size);
	buf_release(&sg);
	buf_release(&payload);
	return 0;
}
