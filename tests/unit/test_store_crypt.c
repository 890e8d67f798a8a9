/* test_store_crypt.c — unit tests of encryption at rest (src/store_crypt.c):
 * the envelope format against published known-answer vectors (NIST GCM,
 * NaCl secretbox), sealing and opening with every provider, tampering and
 * wrong keys refused with the key named, and configuration errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_crypt.h"
#include "util.h"

static size_t
unhex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return n;
}

static struct store_crypt *
config(const char *providers)
{
	char *text = xasprintf("apiVersion: apiserver.config.k8s.io/v1\n"
	    "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n"
	    "  providers:\n%s", providers);
	struct store_crypt *c;
	char *err;
	int rc = store_crypt_parse(text, strlen(text), &c, &err);
	if (rc < 0)
		fail_msg("parse: %s", err);
	free(text);
	return c;
}

/* Opens prefix + the hex payload; returns the plaintext (caller frees) or
 * NULL with *err set. */
static char *
open_hex(struct store_crypt *c, const char *prefix, const char *hex, const char *aad,
    size_t *len, char **err)
{
	unsigned char in[512];
	size_t n = strlen(prefix);
	char *out = NULL;
	memcpy(in, prefix, n);
	n += unhex(hex, in + n);
	if (store_crypt_open(c, "secrets", aad, in, n, &out, len, err) < 0)
		return NULL;
	return out;
}

/* NIST GCM spec test cases 2 and 4 (AES-128), nonce || ciphertext || tag. */
static void
test_aesgcm_known_answers(void **state)
{
	(void)state;
	struct store_crypt *c = config("  - aesgcm:\n      keys:\n"
	    "      - {name: zero, secret: AAAAAAAAAAAAAAAAAAAAAA==}\n"
	    "      - {name: tc4, secret: /v/pkoZlcxxtao+UZzCDCA==}\n");
	char *err = NULL, *pt;
	unsigned char want[64];
	size_t len;

	pt = open_hex(c, "k8s:enc:aesgcm:v1:zero:", "000000000000000000000000"
	    "0388dace60b6a392f328c2b971b2fe78" "ab6e47d42cec13bdf53a67b21257bddf", "", &len,
	    &err);
	assert_non_null(pt);
	assert_int_equal(len, 16);
	memset(want, 0, 16);
	assert_memory_equal(pt, want, 16);
	free(pt);

	const char *aad = "\xfe\xed\xfa\xce\xde\xad\xbe\xef\xfe\xed\xfa\xce\xde\xad\xbe\xef"
	    "\xab\xad\xda\xd2";
	const char *ct = "cafebabefacedbaddecaf888"
	    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
	    "5bc94fbc3221a5db94fae95ae7121a47";
	pt = open_hex(c, "k8s:enc:aesgcm:v1:tc4:", ct, aad, &len, &err);
	assert_non_null(pt);
	assert_int_equal(unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d"
	    "8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", want), len);
	assert_memory_equal(pt, want, len);
	free(pt);
	/* the AAD is authenticated: another object's key does not open it */
	assert_null(open_hex(c, "k8s:enc:aesgcm:v1:tc4:", ct, "/registry/secrets/x/y",
	    &len, &err));
	assert_non_null(strstr(err, "aesgcm key \"tc4\" failed"));
	free(err);
	store_crypt_free(c);
}

/* NaCl's crypto_secretbox test vector: nonce || tag || ciphertext. */
static void
test_secretbox_known_answer(void **state)
{
	(void)state;
	unsigned char want[160];
	size_t len, n;
	char *err = NULL, *pt;
	/* the key 1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389 */
	const char *cfg = "  - secretbox:\n      keys:\n      - {name: nacl, "
	    "secret: GydVZHPphdRizVEZeppGx2AJVJ6sZHTyBsTuCET2g4k=}\n";

	struct store_crypt *c = config(cfg);
	pt = open_hex(c, "k8s:enc:secretbox:v1:nacl:",
	    "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"
	    "f3ffc7703f9400e52a7dfb4b3d3305d9"
	    "8e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a"
	    "c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738"
	    "b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da"
	    "99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74"
	    "e355a5", "", &len, &err);
	if (!pt)
		fail_msg("open: %s", err);
	n = unhex("be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc"
	    "e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"
	    "0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"
	    "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864"
	    "5e0705", want);
	assert_int_equal(len, n);
	assert_memory_equal(pt, want, n);
	free(pt);
	store_crypt_free(c);
}

/* Seal then open with each provider; the stored form starts with its
 * prefix and does not hold the plaintext. */
static void
test_round_trip_every_provider(void **state)
{
	(void)state;
	static const char *const cfgs[][2] = {
		{ "  - aesgcm:\n      keys:\n      - {name: a1, secret: "
		  "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=}\n", "k8s:enc:aesgcm:v1:a1:" },
		{ "  - secretbox:\n      keys:\n      - {name: b1, secret: "
		  "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=}\n", "k8s:enc:secretbox:v1:b1:" },
		{ "  - identity: {}\n", "" },
	};
	const char *pt = "{\"data\":{\"password\":\"aHVudGVyMg==\"}}";
	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
		struct store_crypt *c = config(cfgs[i][0]);
		unsigned char *sealed;
		size_t n, len;
		char *out, *err;
		assert_int_equal(store_crypt_seal(c, "secrets", "/registry/secrets/d/s", pt,
		    strlen(pt), &sealed, &n), 0);
		assert_memory_equal(sealed, cfgs[i][1], strlen(cfgs[i][1]));
		assert_true(store_crypt_current(c, "secrets", sealed, n));
		if (*cfgs[i][1])
			assert_null(memmem(sealed, n, "aHVudGVy", 8));
		assert_int_equal(store_crypt_open(c, "secrets", "/registry/secrets/d/s", sealed,
		    n, &out, &len, &err), 0);
		assert_int_equal(len, strlen(pt));
		assert_string_equal(out, pt);
		free(out);
		if (*cfgs[i][1]) {	/* any flipped byte is refused */
			sealed[n - 1] ^= 1;
			assert_int_equal(store_crypt_open(c, "secrets", "/registry/secrets/d/s",
			    sealed, n, &out, &len, &err), -EIO);
			assert_non_null(strstr(err, "wrong key or tampered data"));
			free(err);
		}
		free(sealed);
		store_crypt_free(c);
	}
}

/* The first provider seals; every listed one opens; a value sealed with a
 * key no longer listed fails with the key named. */
static void
test_rotation_and_unknown_key(void **state)
{
	(void)state;
	const char *k1 = "      - {name: k1, secret: AAECAwQFBgcICQoLDA0ODw==}\n";
	const char *k2 = "      - {name: k2, secret: EBESExQVFhcYGRobHB0eHw==}\n";
	char *c1s = xasprintf("  - aesgcm:\n      keys:\n%s", k1);
	char *c21s = xasprintf("  - aesgcm:\n      keys:\n%s%s", k2, k1);
	char *c2s = xasprintf("  - aesgcm:\n      keys:\n%s", k2);
	struct store_crypt *c1 = config(c1s), *c21 = config(c21s), *c2 = config(c2s);
	unsigned char *old;
	size_t n, len;
	char *out, *err;

	assert_int_equal(store_crypt_seal(c1, "secrets", "k", "{}", 2, &old, &n), 0);
	assert_false(store_crypt_current(c21, "secrets", old, n));
	assert_int_equal(store_crypt_open(c21, "secrets", "k", old, n, &out, &len, &err), 0);
	free(out);
	assert_string_equal(store_crypt_writer(c21, "secrets"), "aesgcm key \"k2\"");
	assert_int_equal(store_crypt_open(c2, "secrets", "k", old, n, &out, &len, &err), -EIO);
	assert_string_equal(err, "encrypted with aesgcm key \"k1\", which the encryption "
	    "configuration does not list");
	free(err);
	/* no configuration at all */
	assert_int_equal(store_crypt_open(NULL, "secrets", "k", old, n, &out, &len, &err),
	    -EIO);
	assert_non_null(strstr(err, "no --encryption-provider-config covers"));
	free(err);
	/* plaintext is readable only with identity among the providers */
	assert_int_equal(store_crypt_open(c2, "secrets", "k", "{}", 2, &out, &len, &err), -EIO);
	assert_non_null(strstr(err, "lists no identity provider"));
	free(err);
	assert_int_equal(store_crypt_open(c2, "configmaps", "k", "{}", 2, &out, &len, &err), 0);
	free(out);
	free(old);
	store_crypt_free(c1);
	store_crypt_free(c21);
	store_crypt_free(c2);
	free(c1s);
	free(c21s);
	free(c2s);
}

static void
expect_parse_error(const char *text, const char *msg)
{
	struct store_crypt *c;
	char *err;
	assert_int_equal(store_crypt_parse(text, strlen(text), &c, &err), -EINVAL);
	assert_null(c);
	if (!strstr(err, msg))
		fail_msg("got \"%s\", want \"%s\"", err, msg);
	free(err);
}

static void
test_config_errors_name_the_field_not_the_key(void **state)
{
	(void)state;
	const char *head = "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n"
	    "  providers:\n";
	char *t;
	t = xasprintf("%s  - aesgcm:\n      keys:\n      - {name: k, secret: c2VjcmV0}\n", head);
	expect_parse_error(t, "resources[0].providers[0].aesgcm.keys[0].secret: must be the "
	    "base64 of a aesgcm key (16, 24 or 32 bytes)");
	free(t);
	t = xasprintf("%s  - kms: {name: x}\n", head);
	expect_parse_error(t, "resources[0].providers[0]: expected one of aesgcm, secretbox, "
	    "identity (kms is not supported), got \"kms\"");
	free(t);
	t = xasprintf("%s  - secretbox:\n      keys: []\n", head);
	expect_parse_error(t, "resources[0].providers[0].secretbox.keys: at least one key");
	free(t);
	expect_parse_error("kind: EncryptionConfiguration\nresources:\n- resources: ['*.*']\n"
	    "  providers:\n  - identity: {}\n", "wildcards are not supported");
	expect_parse_error("kind: Pod\n", "kind: expected EncryptionConfiguration");
}

static void
test_resources_by_group(void **state)
{
	(void)state;
	const char *t = "kind: EncryptionConfiguration\nresources:\n"
	    "- resources: [secrets, deployments.apps]\n  providers:\n  - identity: {}\n";
	struct store_crypt *c;
	char *err;
	assert_int_equal(store_crypt_parse(t, strlen(t), &c, &err), 0);
	assert_true(store_crypt_covers(c, "secrets"));
	assert_true(store_crypt_covers(c, "apps/deployments"));
	assert_false(store_crypt_covers(c, "configmaps"));
	assert_string_equal(store_crypt_resource(c, 1), "apps/deployments");
	assert_null(store_crypt_resource(c, 2));
	store_crypt_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aesgcm_known_answers),
		cmocka_unit_test(test_secretbox_known_answer),
		cmocka_unit_test(test_round_trip_every_provider),
		cmocka_unit_test(test_rotation_and_unknown_key),
		cmocka_unit_test(test_config_errors_name_the_field_not_the_key),
		cmocka_unit_test(test_resources_by_group),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
