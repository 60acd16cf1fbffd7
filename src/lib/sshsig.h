/* SPDX-License-Identifier: MIT */
/*
 * SSH public keys as trust material: SHA256 fingerprints, known_hosts
 * pinning (key type, key and port), ssh-keygen(1) allowed_signers files and
 * SSHSIG signatures (PROTOCOL.sshsig) as git writes them with
 * gpg.format=ssh. Verification is native (libsodium): ssh-ed25519 only;
 * other key types are refused with a message that says so.
 */
#ifndef DL_SSHSIG_H
#define DL_SSHSIG_H

#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

/* "SHA256:" + 43 base64 characters + NUL */
#define SSHSIG_FP_MAX 56

/* The OpenSSH fingerprint of a public key blob (wire format). */
void sshsig_fingerprint(const void *key, size_t len, char out[SSHSIG_FP_MAX]);
/* The key type string inside a key blob ("ssh-ed25519"), or "unknown". */
void sshsig_key_type(const void *key, size_t len, char *out, size_t outlen);

/*
 * Check the host key a server offered (key: wire format blob) against the
 * known_hosts text (ssh(1) format; file names it in messages). Only an
 * entry for "host" (port 22) or "[host]:port" counts, with the same key
 * type and key; "@revoked" entries refuse their key; hashed entries,
 * "@cert-authority" lines and wildcard patterns are skipped. 0 when the key
 * is pinned; -1 otherwise, with a message that shows the expected and the
 * received fingerprints.
 */
int sshsig_known_host(const char *text, size_t len, const char *file, const char *host, int port,
		      const void *key, size_t keylen);

/* One line of an allowed_signers file. */
struct sshsig_signer {
	char *principals;   /* as written: "alice@example.com,bob@*" */
	char *namespaces;   /* namespaces="..." or NULL: any */
	unsigned char *key; /* wire format */
	size_t keylen;
	int64_t valid_after;  /* seconds since the epoch; 0: no bound */
	int64_t valid_before; /* 0: no bound */
	int cert_authority;
	int line;
};

struct sshsig_allowed {
	struct sshsig_signer *v;
	size_t n;
};

/* Parse an allowed_signers file (ssh-keygen(1) ALLOWED SIGNERS). Errors are
 * "FILE:LINE: message". */
int sshsig_allowed_parse(struct sshsig_allowed *out, const char *text, size_t len,
			 const char *file);
void sshsig_allowed_release(struct sshsig_allowed *a);

/* A parsed SSHSIG blob; the pointers point into the decoded bytes. */
struct sshsig {
	unsigned char *raw; /* owned */
	size_t rawlen;
	const unsigned char *pubkey, *ns, *reserved, *hash, *sig;
	size_t pubkeylen, nslen, reservedlen, hashlen, siglen;
};

/* Decode "-----BEGIN SSH SIGNATURE-----" armor and parse the blob. */
int sshsig_parse(struct sshsig *out, const char *armored, size_t len);
void sshsig_release(struct sshsig *s);

/*
 * Verify that the armored SSHSIG signs msg in namespace ns with a key from
 * allowed that is valid at time now and allowed for ns. 0 when it does;
 * -1 with a message otherwise ("key SHA256:... is not in allowed signers",
 * "bad signature", ...). *fp (when not NULL) receives the signing key's
 * fingerprint as soon as it is known.
 */
int sshsig_verify(const char *armored, size_t alen, const void *msg, size_t mlen, const char *ns,
		  const struct sshsig_allowed *allowed, int64_t now, char fp[SSHSIG_FP_MAX]);

#endif
