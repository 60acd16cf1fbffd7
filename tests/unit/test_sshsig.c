/* SPDX-License-Identifier: MIT */
/* Unit tests for SSH trust material: SSHSIG verification, allowed_signers, known_hosts, and the
 * commit signature split. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/err.h"
#include "lib/sshsig.h"
#include "source/verify.h"

/*
 * Fixtures in tests/unit/data/sshsig, made with OpenSSH 9.2: "msg" signed
 * with `ssh-keygen -Y sign` by alice (namespaces git and file), mallory
 * (not an allowed signer) and an ecdsa key; commit.raw is a commit signed
 * by alice with `git -c gpg.format=ssh commit -S`.
 */
#define ALICE_FP "SHA256:FQRwFsA7gCi5nf4E9o8n+BDP87FgxI/K/k672l3AxTM"
#define NOW 1800000000

static char *fixture(const char *name, size_t *len)
{
	const char *dir = getenv("DL_TEST_DATA");
	char path[4096];
	snprintf(path, sizeof(path), "%s/sshsig/%s", dir ? dir : "tests/unit/data", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture '%s' (set DL_TEST_DATA)", path);
	char *buf = malloc(1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void allowed_load(struct sshsig_allowed *a, const char *text)
{
	if (sshsig_allowed_parse(a, text, strlen(text), "allowed_signers") < 0)
		fail_msg("%s", err_msg());
}

static int verify(const char *sigfile, const char *msg, const char *allowed_text, int64_t now)
{
	struct sshsig_allowed a;
	size_t sl, ml;
	char *sig = fixture(sigfile, &sl), *m = msg ? NULL : fixture("msg", &ml);
	char fp[SSHSIG_FP_MAX];
	allowed_load(&a, allowed_text);
	int r = sshsig_verify(sig, sl, msg ? msg : m, msg ? strlen(msg) : ml, "git", &a, now, fp);
	sshsig_allowed_release(&a);
	free(sig);
	free(m);
	return r;
}

static char *allowed_file(void)
{
	return fixture("allowed_signers", NULL);
}

static void test_sshsig__good_signature(void **state)
{
	(void)state;
	char *al = allowed_file();
	assert_int_equal(verify("msg.alice.git.sig", NULL, al, NOW), 0);
	free(al);
}

static void test_sshsig__fingerprint_as_ssh_keygen(void **state)
{
	(void)state;
	struct sshsig s;
	size_t n;
	char *sig = fixture("msg.alice.git.sig", &n), fp[SSHSIG_FP_MAX], type[64];
	assert_int_equal(sshsig_parse(&s, sig, n), 0);
	sshsig_fingerprint(s.pubkey, s.pubkeylen, fp);
	sshsig_key_type(s.pubkey, s.pubkeylen, type, sizeof(type));
	assert_string_equal(fp, ALICE_FP);
	assert_string_equal(type, "ssh-ed25519");
	sshsig_release(&s);
	free(sig);
}

static void test_sshsig__wrong_namespace(void **state)
{
	(void)state;
	char *al = allowed_file();
	assert_int_equal(verify("msg.alice.file.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "namespace 'file', not 'git'"));
	free(al);
}

static void test_sshsig__signer_not_allowed(void **state)
{
	(void)state;
	char *al = allowed_file();
	assert_int_equal(verify("msg.mallory.git.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "is not in allowed signers"));
	assert_non_null(strstr(err_msg(), "SHA256:"));
	free(al);
}

static void test_sshsig__tampered_message(void **state)
{
	(void)state;
	char *al = allowed_file();
	size_t n;
	char *m = fixture("msg", &n);
	m[n - 2] ^= 1;
	assert_int_equal(verify("msg.alice.git.sig", m, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "bad signature from key " ALICE_FP));
	free(m);
	free(al);
}

static void test_sshsig__tampered_signature(void **state)
{
	(void)state;
	struct sshsig_allowed a;
	size_t sl, ml;
	char *al = allowed_file(), *sig = fixture("msg.alice.git.sig", &sl),
	     *m = fixture("msg", &ml);
	allowed_load(&a, al);
	/* flip one base64 digit in the signature bytes (the third line) */
	char *line = strchr(strchr(strchr(sig, '\n') + 1, '\n') + 1, '\n') + 1;
	line[10] = line[10] == 'A' ? 'B' : 'A';
	assert_int_equal(sshsig_verify(sig, sl, m, ml, "git", &a, NOW, NULL), -1);
	sshsig_allowed_release(&a);
	free(sig);
	free(m);
	free(al);
}

static void test_sshsig__other_key_types_refused(void **state)
{
	(void)state;
	char *al = allowed_file();
	assert_int_equal(verify("msg.ec.git.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "ssh-ed25519 signatures only"));
	free(al);
}

static void test_sshsig__validity_window(void **state)
{
	(void)state;
	size_t n;
	char *pub = fixture("alice.pub", &n);
	char *al = malloc(n + 256);
	pub[strcspn(pub, "\n")] = '\0';
	snprintf(al, n + 256, "a@x valid-before=\"20200101\" %s\n", pub);
	assert_int_equal(verify("msg.alice.git.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "expired at 20"));
	snprintf(al, n + 256, "a@x valid-after=\"20990101Z\",namespaces=\"git\" %s\n", pub);
	assert_int_equal(verify("msg.alice.git.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "not valid before 2099-01-01"));
	snprintf(al, n + 256, "a@x namespaces=\"file,other\" %s\n", pub);
	assert_int_equal(verify("msg.alice.git.sig", NULL, al, NOW), -1);
	assert_non_null(strstr(err_msg(), "not allowed for namespace 'git'"));
	snprintf(al, n + 256, "a@x cert-authority %s\n", pub);
	assert_int_equal(verify("msg.alice.git.sig", NULL, al, NOW), -1);
	free(al);
	free(pub);
}

static void test_sshsig__allowed_signers_errors(void **state)
{
	(void)state;
	struct sshsig_allowed a;
	const char *bad[] = {
	    "a@x bogus=1 ssh-ed25519 "
	    "AAAAC3NzaC1lZDI1NTE5AAAAIHNppHI+anEIwD2PVbcewulCKdylyOVd3dWCHzWMy07R\n",
	    "a@x ssh-ed25519 !!notbase64!!\n",
	    "a@x ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHNppHI+anEIwD2PVbcewulCKdylyOVd3dWCHzWMy07R\n",
	    "a@x valid-before=\"2020\" ssh-ed25519 "
	    "AAAAC3NzaC1lZDI1NTE5AAAAIHNppHI+anEIwD2PVbcewulCKdylyOVd3dWCHzWMy07R\n",
	    "just-one-token\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sshsig_allowed_parse(&a, bad[i], strlen(bad[i]), "f"), -1);
		assert_non_null(strstr(err_msg(), "f:1: "));
		assert_int_equal(a.n, 0);
	}
	const char *ok = "# comment\n\n\"a@x,b@y\" ssh-ed25519 "
			 "AAAAC3NzaC1lZDI1NTE5AAAAIHNppHI+anEIwD2PVbcewulCKdylyOVd3dWCHzWMy07R c\n";
	assert_int_equal(sshsig_allowed_parse(&a, ok, strlen(ok), "f"), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0].principals, "a@x,b@y");
	assert_int_equal(a.v[0].line, 3);
	sshsig_allowed_release(&a);
}

static void test_sshsig__armor_errors(void **state)
{
	(void)state;
	struct sshsig s;
	const char *bad[] = {
	    "",
	    "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n",
	    "-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----\n",
	    "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
	    "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAAM=\n-----END SSH SIGNATURE-----\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sshsig_parse(&s, bad[i], strlen(bad[i])), -1);
}

static void known_host_key(unsigned char **key, size_t *len)
{
	struct sshsig s;
	size_t n;
	char *sig = fixture("msg.alice.git.sig", &n);
	assert_int_equal(sshsig_parse(&s, sig, n), 0);
	*key = malloc(s.pubkeylen);
	memcpy(*key, s.pubkey, s.pubkeylen);
	*len = s.pubkeylen;
	sshsig_release(&s);
	free(sig);
}

static void test_sshsig__known_hosts(void **state)
{
	(void)state;
	unsigned char *key;
	size_t kl, n;
	char *pub = fixture("alice.pub", &n), *ec = fixture("ec.pub", NULL), kh[4096];
	char *b64 = strchr(pub, ' ') + 1;
	b64[strcspn(b64, " \n")] = '\0';
	ec[strcspn(ec, "\n")] = '\0';
	known_host_key(&key, &kl);

	snprintf(kh, sizeof(kh), "# pinned\n[git.example]:2222 ssh-ed25519 %s\n", b64);
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 2222, key, kl), 0);
	/* the right key on another port */
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 2223, key, kl), -1);
	assert_non_null(strstr(err_msg(), "'[git.example]:2223' has no entry"));
	assert_non_null(strstr(err_msg(), "another port"));
	assert_non_null(strstr(err_msg(), ALICE_FP));
	/* port 22 is written without brackets; a list of names */
	snprintf(kh, sizeof(kh), "other,git.example ssh-ed25519 %s\n", b64);
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 22, key, kl), 0);
	/* a changed key: both fingerprints */
	snprintf(kh, sizeof(kh), "git.example %s\n", ec);
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 22, key, kl), -1);
	assert_non_null(
	    strstr(err_msg(), "does not match 'kh': expected ecdsa-sha2-nistp256 SHA256:"));
	assert_non_null(strstr(err_msg(), "received ssh-ed25519 " ALICE_FP));
	/* revoked wins over a match */
	snprintf(kh, sizeof(kh), "git.example ssh-ed25519 %s\n@revoked * ssh-ed25519 %s\n", b64,
		 b64);
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 22, key, kl), -1);
	assert_non_null(strstr(err_msg(), "@revoked"));
	/* negation, hashed entries and an empty file */
	snprintf(kh, sizeof(kh),
		 "*.example,!git.example ssh-ed25519 %s\n|1|abc|def ssh-ed25519 %s\n", b64, b64);
	assert_int_equal(sshsig_known_host(kh, strlen(kh), "kh", "git.example", 22, key, kl), -1);
	assert_non_null(strstr(err_msg(), "hashed entries"));
	assert_int_equal(sshsig_known_host("", 0, "kh", "git.example", 22, key, kl), -1);
	free(key);
	free(pub);
	free(ec);
}

static void test_sshsig__commit_split(void **state)
{
	(void)state;
	struct buf sig = BUF_INIT, payload = BUF_INIT;
	size_t n, an;
	char *raw = fixture("commit.raw", &n), *al = fixture("allowed_signers", &an);
	struct sshsig_allowed a;
	assert_int_equal(verify_split_commit(raw, n, &sig, &payload), 0);
	assert_non_null(strstr(sig.ptr, "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH"));
	assert_null(strstr(payload.ptr, "gpgsig"));
	assert_non_null(strstr(payload.ptr, "committer A <a@x>"));
	assert_non_null(strstr(payload.ptr, "\n\nsigned commit\n"));
	allowed_load(&a, al);
	assert_int_equal(
	    sshsig_verify(sig.ptr, sig.len, payload.ptr, payload.len, "git", &a, NOW, NULL), 0);
	sshsig_allowed_release(&a);
	buf_release(&sig);
	buf_release(&payload);

	/* unsigned; a "gpgsig" line in the message is not a header */
	const char *plain = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\ngpgsig x\n";
	assert_int_equal(verify_split_commit(plain, strlen(plain), &sig, &payload), 1);
	assert_string_equal(payload.ptr, plain);
	buf_release(&sig);
	buf_release(&payload);

	/* two signature headers, or the sha256 one */
	const char *two =
	    "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ngpgsig a\n b\ngpgsig c\n\nm\n";
	assert_int_equal(verify_split_commit(two, strlen(two), &sig, &payload), -1);
	assert_non_null(strstr(err_msg(), "more than one signature header"));
	buf_release(&sig);
	buf_release(&payload);
	const char *s256 = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ngpgsig-sha256 a\n\nm\n";
	assert_int_equal(verify_split_commit(s256, strlen(s256), &sig, &payload), -1);
	buf_release(&sig);
	buf_release(&payload);
	free(raw);
	free(al);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sshsig__good_signature),
	    cmocka_unit_test(test_sshsig__fingerprint_as_ssh_keygen),
	    cmocka_unit_test(test_sshsig__wrong_namespace),
	    cmocka_unit_test(test_sshsig__signer_not_allowed),
	    cmocka_unit_test(test_sshsig__tampered_message),
	    cmocka_unit_test(test_sshsig__tampered_signature),
	    cmocka_unit_test(test_sshsig__other_key_types_refused),
	    cmocka_unit_test(test_sshsig__validity_window),
	    cmocka_unit_test(test_sshsig__allowed_signers_errors),
	    cmocka_unit_test(test_sshsig__armor_errors),
	    cmocka_unit_test(test_sshsig__known_hosts),
	    cmocka_unit_test(test_sshsig__commit_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
