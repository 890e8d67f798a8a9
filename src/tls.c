/* tls.c — OpenSSL server contexts for the HTTPS API server from DATA/pki
 * (pki.h): TLS 1.2+, the serving certificate, client certificates asked
 * for but optional and verified against V6's CA, with the client's chain
 * bounded in size and depth (hostile clients, issue 15). http.c runs the
 * connections; server.c builds (and after a renewal rebuilds) the context. */
#include "pki.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
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
tls_server_ctx(const char *dir, char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char *crt = xasprintf("%s/server.crt", dir), *key = xasprintf("%s/server.key", dir);
	char *ca = xasprintf("%s/ca.crt", dir);
	STACK_OF(X509_NAME) *names;

	if (ctx == NULL) {
		*err = tls_error("cannot create a TLS context for", dir);
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);	/* idle connections stay small */
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
