/* pki.c — V6's own certificate authority in DATA/pki: ca.{crt,key} (ECDSA
 * P-256, ten years), server.{crt,key} (the API's serving certificate, SANs
 * for loopback, the host name and the --listen address) and admin.{crt,key}
 * (CN v6-admin, O system:masters), made at first start and renewed with a
 * fresh key once a third of their life is left. Keys are 0600 in a 0700
 * directory. Called by server.c (start, renewal timer) and `v6 certs`. */
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define PKI_BACKDATE_S	60	/* notBefore this far back: clocks differ a little */

static const struct pki_spec {
	const char *name;	/* file stem */
	const char *cn;		/* subject CN; the server's is its own */
	const char *org;	/* subject O, or NULL */
	const char *eku;	/* extendedKeyUsage, NULL for the CA */
} specs[PKI_NCERTS] = {
	[PKI_CA] = { "ca", "v6-ca", NULL, NULL },
	[PKI_SERVER] = { "server", "v6-apiserver", NULL, "serverAuth" },
	[PKI_ADMIN] = { "admin", PKI_ADMIN_CN, PKI_ADMIN_ORG,
		"clientAuth" },
};

const char *
pki_name(enum pki_cert which)
{
	return specs[which].name;
}

static char *
pki_path(const char *dir, enum pki_cert which, const char *ext)
{
	return xasprintf("%s/%s.%s", dir, specs[which].name, ext);
}

char *
pki_read_pem(const char *dir, enum pki_cert which, const char *ext, size_t *len)
{
	char *path = pki_path(dir, which, ext), *data = NULL;
	int rc = file_read_all(path, &data, len);

	free(path);
	return rc < 0 ? NULL : data;
}

static X509 *
cert_load(const char *dir, enum pki_cert which)
{
	char *path = pki_path(dir, which, "crt");
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	free(path);
	ERR_clear_error();
	return x;
}

static EVP_PKEY *
key_load(const char *dir, enum pki_cert which)
{
	char *path = pki_path(dir, which, "key");
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	free(path);
	ERR_clear_error();
	return k;
}

/* Writes a PEM (from the memory BIO b) to DIR/NAME.EXT, 0600, atomically. */
static int
pem_store(const char *dir, enum pki_cert which, const char *ext, BIO *b)
{
	char *data, *path = pki_path(dir, which, ext);
	long n = BIO_get_mem_data(b, &data);
	int rc = n > 0 ? file_write_atomic(path, data, (size_t)n, true) : -EIO;

	free(path);
	return rc;
}

static int
pair_store(const char *dir, enum pki_cert which, X509 *x, EVP_PKEY *k)
{
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	int rc = -EIO;

	if (kb && cb && PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    PEM_write_bio_X509(cb, x) == 1 && (rc = pem_store(dir, which, "key", kb)) == 0)
		rc = pem_store(dir, which, "crt", cb);
	BIO_free(kb);
	BIO_free(cb);
	return rc;
}

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -EINVAL;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1 ? 0 : -EINVAL;
}

/* A 127-bit random serial, as CAs do (RFC 5280: positive, <= 20 bytes). */
static int
set_serial(X509 *x)
{
	unsigned char raw[16];
	BIGNUM *bn;
	int ok = 0;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	raw[0] &= 0x7f;
	raw[0] |= 0x01;
	if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) != NULL)
		ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -EIO;
}

/* The subjectAltName value of the serving certificate: loopback, localhost,
 * the host name and o->sans (a wildcard listen address adds nothing). */
static char *
server_sans(const struct pki_opts *o)
{
	struct buf b = BUF_INIT;
	char host[256] = "";
	unsigned char ip[16];

	buf_puts(&b, "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] && strcmp(host, "localhost"))
		buf_printf(&b, ",DNS:%s", host);
	for (size_t i = 0; i < o->nsans; i++) {
		const char *s = o->sans[i];
		bool is_ip = inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1;
		if (!*s || !strcmp(s, "0.0.0.0") || !strcmp(s, "::") || !strcmp(s, "localhost") ||
		    !strcmp(s, "127.0.0.1") || !strcmp(s, "::1") || !strcmp(s, host))
			continue;
		buf_printf(&b, ",%s:%s", is_ip ? "IP" : "DNS", s);
	}
	return buf_steal(&b);
}

/* Issues spec's certificate for key k, signed by ca / ca_key (itself when
 * NULL: the CA). Returns the certificate or NULL. */
static X509 *
cert_issue(enum pki_cert which, EVP_PKEY *k, X509 *ca, EVP_PKEY *ca_key,
    const char *sans, int64_t lifetime_s)
{
	const struct pki_spec *sp = &specs[which];
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL || X509_set_version(x, 2) != 1 || set_serial(x) < 0)
		goto fail;
	name = X509_get_subject_name(x);
	if (sp->org && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)sp->org, -1, -1, 0) != 1)
		goto fail;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)sp->cn, -1, -1, 0) != 1)
		goto fail;
	if (X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)lifetime_s) == NULL ||
	    X509_set_pubkey(x, k) != 1)
		goto fail;
	if (ca == NULL) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
		    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") < 0 ||
		    add_ext(x, x, NID_subject_key_identifier, "hash") < 0)
			goto fail;
	} else {
		if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		    add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
		    add_ext(x, ca, NID_ext_key_usage, sp->eku) < 0 ||
		    add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
		    (sans && add_ext(x, ca, NID_subject_alt_name, sans) < 0))
			goto fail;
	}
	if (X509_sign(x, ca_key ? ca_key : k, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

static int64_t
cert_life(const X509 *x, time_t *not_after)
{
	struct tm tm;
	time_t nb;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1)
		return 0;
	nb = timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	*not_after = timegm(&tm);
	return (int64_t)(*not_after - nb) - PKI_BACKDATE_S;
}

/* When x is due: a third of its life before it ends. */
static time_t
cert_due(const X509 *x)
{
	time_t na = 0;
	int64_t life = cert_life(x, &na);

	return na - (time_t)(life > 0 ? life / 3 : 0);
}

/* True when every SAN the serving certificate should have is in x. */
static bool
sans_cover(X509 *x, const char *sans)
{
	char *copy = xstrdup(sans), *save = NULL;
	bool ok = true;

	for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
		if (str_has_prefix(t, "IP:"))
			ok = X509_check_ip_asc(x, t + 3, 0) == 1;
		else if (str_has_prefix(t, "DNS:"))
			ok = X509_check_host(x, t + 4, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
	}
	free(copy);
	return ok;
}

/* Whether DIR's certificate which must be (re)issued. */
static bool
leaf_due(const char *dir, enum pki_cert which, X509 *ca, const char *sans)
{
	X509 *x = cert_load(dir, which);
	EVP_PKEY *k = key_load(dir, which), *capub = X509_get0_pubkey(ca);
	bool due = x == NULL || k == NULL || X509_verify(x, capub) != 1 ||
	    X509_check_private_key(x, k) != 1 || cert_due(x) <= time(NULL) ||
	    (sans && !sans_cover(x, sans));

	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return due;
}

static int
dir_private(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return chmod(dir, 0700) < 0 ? -errno : 0;
}

/* Makes the CA when it is missing (or unreadable: a new CA). Returns 1 when
 * made, 0 when reused, or a negative errno. */
static int
ca_ensure(const char *dir, X509 **ca, EVP_PKEY **ca_key)
{
	*ca = cert_load(dir, PKI_CA);
	*ca_key = key_load(dir, PKI_CA);
	if (*ca && *ca_key && X509_check_private_key(*ca, *ca_key) == 1)
		return 0;
	X509_free(*ca);
	EVP_PKEY_free(*ca_key);
	*ca = NULL;
	if ((*ca_key = EVP_EC_gen("P-256")) == NULL ||
	    (*ca = cert_issue(PKI_CA, *ca_key, NULL, NULL, NULL, PKI_CA_LIFETIME_S)) == NULL)
		return -EIO;
	int rc = pair_store(dir, PKI_CA, *ca, *ca_key);
	return rc < 0 ? rc : 1;
}

int
pki_ensure(const struct pki_opts *o, bool force, char **err)
{
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL, *k = NULL;
	char *sans = server_sans(o);
	int64_t life = o->lifetime_s > 0 ? o->lifetime_s : PKI_DEFAULT_LIFETIME_S;
	int rc, made = 0;
	bool new_ca;

	if ((rc = dir_private(o->dir)) < 0) {
		*err = xasprintf("cannot create %s: %s", o->dir, strerror(-rc));
		goto out;
	}
	if ((rc = ca_ensure(o->dir, &ca, &ca_key)) < 0) {
		*err = xasprintf("cannot create the CA in %s: %s", o->dir, strerror(-rc));
		goto out;
	}
	made = rc;
	new_ca = rc > 0;	/* every certificate it signed is void */
	for (enum pki_cert w = PKI_SERVER; w < PKI_NCERTS; w++) {
		const char *want = w == PKI_SERVER ? sans : NULL;
		if (!force && !new_ca && !leaf_due(o->dir, w, ca, want))
			continue;
		if ((k = EVP_EC_gen("P-256")) == NULL ||
		    (x = cert_issue(w, k, ca, ca_key, want, life)) == NULL)
			rc = -EIO;
		else
			rc = pair_store(o->dir, w, x, k);
		X509_free(x);
		EVP_PKEY_free(k);
		x = NULL;
		k = NULL;
		if (rc < 0) {
			*err = xasprintf("cannot issue %s/%s.crt: %s", o->dir, specs[w].name,
			    strerror(-rc));
			goto out;
		}
		made++;
	}
	rc = made;
out:
	ERR_clear_error();
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	free(sans);
	return rc;
}

/* "DNS:a, IP:1.2.3.4" of x's subjectAltName. */
static void
sans_format(X509 *x, char *out, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	struct buf b = BUF_INIT;
	char ip[64];

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int n;
		if (g->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(g->d.dNSName);
			buf_printf(&b, "%sDNS:%.*s", b.len ? ", " : "",
			    ASN1_STRING_length(g->d.dNSName), (const char *)d);
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			n = ASN1_STRING_length(g->d.iPAddress);
			if (inet_ntop(n == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip)))
				buf_printf(&b, "%sIP:%s", b.len ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
	snprintf(out, len, "%s", b.len ? b.data : "");
	buf_free(&b);
}

int
pki_info_read(const char *dir, enum pki_cert which, struct pki_info *out)
{
	X509 *x = cert_load(dir, which);
	BIGNUM *bn;
	char *hex;

	memset(out, 0, sizeof(*out));
	if (x == NULL)
		return -ENOENT;
	X509_NAME_oneline(X509_get_subject_name(x), out->subject, sizeof(out->subject));
	sans_format(x, out->sans, sizeof(out->sans));
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) != NULL &&
	    (hex = BN_bn2hex(bn)) != NULL) {
		snprintf(out->serial, sizeof(out->serial), "%s", hex);
		OPENSSL_free(hex);
	}
	BN_free(bn);
	time_t na = 0;
	int64_t life = cert_life(x, &na);
	out->not_after = na;
	out->not_before = na - (time_t)life;
	X509_free(x);
	return 0;
}

time_t
pki_renew_at(const char *dir)
{
	time_t at = 0;

	for (enum pki_cert w = PKI_SERVER; w < PKI_NCERTS; w++) {
		X509 *x = cert_load(dir, w);
		if (x == NULL)
			return 0;
		time_t due = cert_due(x);
		if (at == 0 || due < at)
			at = due;
		X509_free(x);
	}
	return at;
}
