/* pki.h — V6's own small PKI in DATA/pki (pki.c): a CA, the API server's
 * serving certificate and the admin client certificate, made at first start,
 * renewed before they expire; and the TLS contexts built from them (tls.c)
 * for the HTTPS API server and the v6 CLI. */
#ifndef V6_PKI_H
#define V6_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PKI_DIR			"pki"		/* under the data dir */
#define PKI_ADMIN_CN		"v6-admin"
#define PKI_ADMIN_ORG		"system:masters"
#define PKI_DEFAULT_LIFETIME_S	(365 * 86400)	/* serving and admin certificates */
#define PKI_CA_LIFETIME_S	(10 * 365 * 86400)

/* The certificates, by their file stem in DATA/pki (NAME.crt, NAME.key). */
enum pki_cert { PKI_CA, PKI_SERVER, PKI_ADMIN, PKI_NCERTS };

struct pki_opts {
	const char *dir;		/* DATA/pki; made 0700 */
	const char *const *sans;	/* serving SANs beyond loopback and the host name:
					 * IP addresses or DNS names (the --listen host) */
	size_t nsans;
	int64_t lifetime_s;		/* serving and admin; 0: PKI_DEFAULT_LIFETIME_S */
};

/* What `v6 certs status` shows of one certificate. */
struct pki_info {
	char subject[256];
	char sans[512];			/* "DNS:localhost, IP:127.0.0.1", "" when none */
	char serial[80];		/* hex */
	time_t not_before, not_after;
};

/* pki.c */
/* File stem of a certificate ("ca", "server", "admin"). */
const char *pki_name(enum pki_cert which);
/* Makes whatever is missing in o->dir and renews a certificate that is due:
 * less than a third of its lifetime left, a serving certificate lacking one
 * of the wanted SANs, or force (`v6 certs rotate`; the CA is never renewed
 * here). Existing valid files are reused. Returns how many certificates were
 * (re)issued (>= 0), or a negative errno with *err set (caller frees). */
int pki_ensure(const struct pki_opts *o, bool force, char **err);
/* Reads DIR/NAME.crt. Returns 0 or a negative errno. */
int pki_info_read(const char *dir, enum pki_cert which, struct pki_info *out);
/* The earliest time a certificate of dir is due for renewal (a third of
 * its life left), 0 when unreadable. */
time_t pki_renew_at(const char *dir);
/* The whole file DIR/NAME.EXT ("crt" or "key") in a malloc'ed NUL-terminated
 * buffer, or NULL. */
char *pki_read_pem(const char *dir, enum pki_cert which, const char *ext, size_t *len);

/* tls.c */
struct ssl_ctx_st;
/* A TLS 1.2+ server context with V6's options (no renegotiation, server
 * cipher preference, buffers released when idle), nothing loaded yet;
 * NULL when OpenSSL cannot make one. */
struct ssl_ctx_st *tls_ctx_base(void);
/* Loads a certificate chain (PEM, leaf first) and its private key (PEM)
 * into ctx, next to ones of other key types already there (RSA and ECDSA
 * side by side). Returns 0, or -EINVAL with *err (caller frees; names the
 * problem, never the key's bytes). */
int tls_ctx_add_pem(struct ssl_ctx_st *ctx, const char *crt, size_t crt_len, const char *key,
    size_t key_len, char **err);
/* A TLS 1.2+ server context from DIR/server.{crt,key} that asks for client
 * certificates (optional) and verifies them against DIR/ca.crt, with a
 * bounded chain (size and depth). NULL with *err set (caller frees). */
struct ssl_ctx_st *tls_server_ctx(const char *dir, char **err);

#endif
