/* SPDX-License-Identifier: MIT */
/* libFuzzer target: any bytes as an age file, an identity file and a recipient. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/age.h"
#include "lib/buf.h"
#include "lib/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The seed corpus (fuzz/corpus/age) was sealed with age 1.1.1 for this test
 * key, also tests/unit/data/age/key.txt, so mutations start from files that
 * get past the header MAC. The second key matches nothing.
 */
static const char fuzz_keys[] =
    "# public key: age1s8p3zuhdmhvp7rmxuaa0l0zq0d9tme74unkxtg34npds9hnv5ejskt6rjh\n"
    "AGE-SECRET-KEY-1UDFW6ZXGDYW90076C2A7PURCV776FA2QNM6M5G5UCD8SWR64W2RQGJRF8K\n"
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct age_identity keys[2];
	static size_t nkeys;
	struct age_identity ids[AGE_MAX_IDENTITIES];
	struct buf out = BUF_INIT, again = BUF_INIT, back = BUF_INIT;
	unsigned char pk[32];
	size_t n = 0;
	char *s;

	if (!nkeys && age_identity_parse(keys, 2, &nkeys, fuzz_keys, strlen(fuzz_keys)))
		__builtin_trap();

	if (!age_decrypt(keys, nkeys, data, size, &out)) {
		/* what opened seals and opens again to the same bytes */
		BUG_ON(out.len > size);
		if (age_encrypt((const unsigned char(*)[32])keys[1].pk, 1, out.ptr, out.len,
				size & 1, &again) ||
		    age_decrypt(&keys[1], 1, again.ptr, again.len, &back) || back.len != out.len ||
		    (out.len && memcmp(back.ptr, out.ptr, out.len)))
			__builtin_trap();
	} else {
		/* a failure leaves nothing behind */
		BUG_ON(out.len != 0);
		for (size_t i = 0; i < out.cap; i++)
			BUG_ON(out.ptr[i] != 0);
	}

	if (!age_identity_parse(ids, AGE_MAX_IDENTITIES, &n, (const char *)data, size))
		BUG_ON(n == 0 || n > AGE_MAX_IDENTITIES);

	s = xstrndup((const char *)data, size);
	if (!age_recipient_parse(s, pk)) {
		/* a recipient that parses formats back to the same text */
		char r[AGE_RECIPIENT_SIZE];

		age_recipient_format(pk, r);
		if (strcmp(r, s))
			__builtin_trap();
	}
	free(s);
	buf_release(&out);
	buf_release(&again);
	buf_release(&back);
	return 0;
}
