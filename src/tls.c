/* tls.c — OpenSSL server contexts: the one base (TLS 1.2+, V6's options),
 * certificates loaded from PEM in memory (the proxy's Gateway listeners,
 * proxy_tls.c; their validation in ctrl_gwtls.c), and the HTTPS API
 * server's context from DATA/pki (pki.h) with client certificates asked for
 * but optional, verified against V6's CA, the chain bounded in size and
 * depth (hostile clients, issue 15). http.c runs the connections. */
#include "pki.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TLS_MAX_CERT_LIST	(16 * 1024)	/* a client's whole certificate chain */
#define TLS_VERIFY_DEPTH	2		/* client cert, intermediate, V6's CA */

/* The first OpenSSL error as text, or what. */
static char *
tls_error(const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return xasprintf("%s %s: %s", what, path, e ? msg : "failed");
}

struct ssl_ctx_st *
tls_ctx_base(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);	/* idle connections stay small */
	return ctx;
}

/* The certificates of a PEM text: the first (the leaf) in *leaf, the
 * rest in a new stack (the chain). 0, or -EINVAL when there is no leaf. */
static int
pem_chain(BIO *in, X509 **leaf, STACK_OF(X509) **chain)
{
	X509 *x;

	*chain = sk_X509_new_null();
	if ((*leaf = PEM_read_bio_X509_AUX(in, NULL, NULL, NULL)) == NULL)
		return -EINVAL;
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
		sk_X509_push(*chain, x);
	ERR_clear_error();	/* the end of the text */
	return 0;
}

int
tls_ctx_add_pem(struct ssl_ctx_st *ctx, const char *crt, size_t crt_len, const char *key,
    size_t key_len, char **err)
{
	BIO *cb = BIO_new_mem_buf(crt, (int)crt_len), *kb = BIO_new_mem_buf(key, (int)key_len);
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *leaf = NULL;
	int rc = -EINVAL;

	if (cb == NULL || kb == NULL || crt_len > INT32_MAX || key_len > INT32_MAX) {
		*err = xstrdup("out of memory");
		goto out;
	}
	if (pem_chain(cb, &leaf, &chain) < 0) {
		*err = tls_error("no PEM certificate in", "tls.crt");
		goto out;
	}
	/* never the key's bytes in a message: OpenSSL's reason only */
	if ((pkey = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL) {
		*err = tls_error("no PEM private key in", "tls.key");
		goto out;
	}
	if (SSL_CTX_use_cert_and_key(ctx, leaf, pkey, chain, 1) != 1) {
		*err = tls_error("certificate and key do not go together:", "tls.crt/tls.key");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(pkey);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

struct ssl_ctx_st *
tls_server_ctx(const char *dir, char **err)
{
	SSL_CTX *ctx = tls_ctx_base();
	char *crt = xasprintf("%s/server.crt", dir), *key = xasprintf("%s/server.key", dir);
	char *ca = xasprintf("%s/ca.crt", dir);
	STACK_OF(X509_NAME) *names;

	if (ctx == NULL) {
		*err = tls_error("cannot create a TLS context for", dir);
		goto out;
	}
	SSL_CTX_set_max_cert_list(ctx, TLS_MAX_CERT_LIST);
	if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) {
		*err = tls_error("cannot load", crt);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*err = tls_error("cannot load", key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(ca)) == NULL) {
		*err = tls_error("cannot load", ca);
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	/* asked for, optional; one that does not chain to the CA fails the
	 * handshake, as Kubernetes' VerifyClientCertIfGiven */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	/* session ids need a context id once client certificates are asked for */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"v6", 2);
	goto out;
fail:
	SSL_CTX_free(ctx);
	ctx = NULL;
out:
	free(crt);
	free(key);
	free(ca);
	return ctx;
}
