/* proxy_tls.c — TLS termination for the proxy's HTTPS listeners (Gateway
 * listeners with protocol HTTPS): a listener's "tls" list compiled into
 * OpenSSL server contexts, one per hostname, chosen per handshake by SNI.
 * Contexts are shared by every listener spec with the same list (a spec is
 * recompiled when a cluster it routes to changes; its certificates are
 * not reloaded then), so a new context means new certificates. http.c runs
 * the connections (memory BIOs on the engine's loop); proxy_engine.c hands
 * a listener's context to its server: new handshakes take it, open
 * connections keep theirs. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pki.h"
#include "proxy_int.h"

/* The contexts of one "tls" list, by hostname: "" (any), "a.example" or
 * "*.example". Owned by its first context (ex_data), which is the one
 * connections start on. */
struct sni_table {
	size_t n;
	struct sni_entry {
		char *host;
		SSL_CTX *ctx;		/* a reference; NULL for the first context itself */
	} *v;
	size_t dflt;			/* the entry for no SNI or an unknown name */
};

struct px_tls {
	unsigned refs;
	json_t *src;			/* the "tls" list it was compiled from */
	SSL_CTX *ctx;			/* connections start here; SNI may switch */
	struct px_tls *next;		/* e->tls */
};

static int sni_index = -1;

static void
sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct sni_table *t = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].host);
		SSL_CTX_free(t->v[i].ctx);
	}
	free(t->v);
	free(t);
}

/* HTTP/1.1 is all the proxy speaks: a client offering only h2 is told so. */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	static const unsigned char h1[] = "\x08http/1.1";

	(void)ssl, (void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, h1, sizeof(h1) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* The entry for SNI name: the same hostname (case-insensitively), else
 * the longest wildcard suffix covering it ("*.example" covers one label
 * or more before ".example"), else the default. */
static const struct sni_entry *
sni_pick(const struct sni_table *t, const char *name)
{
	const struct sni_entry *best = NULL;
	size_t nlen = name ? strlen(name) : 0, blen = 0;

	for (size_t i = 0; name && i < t->n; i++) {
		const char *h = t->v[i].host;
		size_t hlen = strlen(h);
		if (strcasecmp(h, name) == 0)
			return &t->v[i];
		if (hlen > 2 && h[0] == '*' && h[1] == '.' && nlen > hlen - 1 &&
		    strcasecmp(name + nlen - (hlen - 1), h + 1) == 0 && hlen > blen) {
			best = &t->v[i];
			blen = hlen;
		}
	}
	return best ? best : &t->v[t->dflt];
}

static int
on_sni(SSL *ssl, int *alert, void *arg)
{
	const struct sni_entry *pick = sni_pick(arg, SSL_get_servername(ssl,
	    TLSEXT_NAMETYPE_host_name));

	(void)alert;
	if (pick->ctx)
		SSL_set_SSL_CTX(ssl, pick->ctx);
	return SSL_TLSEXT_ERR_OK;
}

/* A context with the certificates of every entry of list for host. */
static SSL_CTX *
ctx_for_host(const json_t *list, const char *host, char **err)
{
	SSL_CTX *ctx = tls_ctx_base();
	const json_t *it;
	size_t i;

	if (ctx == NULL) {
		*err = xstrdup("cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
	json_array_foreach(list, i, it) {
		const char *crt = json_string_value(json_object_get(it, "cert"));
		const char *key = json_string_value(json_object_get(it, "key"));
		if (strcmp(json_string_value(json_object_get(it, "hostname")) ?: "", host) != 0)
			continue;
		if (crt == NULL || key == NULL) {
			*err = xstrdup("tls entry without cert and key");
			goto fail;
		}
		if (tls_ctx_add_pem(ctx, crt, strlen(crt), key, strlen(key), err) < 0)
			goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Compiles list: the SNI table on its first hostname's context. */
static SSL_CTX *
tls_compile(const json_t *list, char **err)
{
	struct sni_table *t = xcalloc(1, sizeof(*t));
	const json_t *it;
	SSL_CTX *first = NULL;
	size_t i, k;

	t->v = xcalloc(json_array_size(list) + 1, sizeof(*t->v));
	json_array_foreach(list, i, it) {
		const char *host = json_string_value(json_object_get(it, "hostname")) ?: "";
		for (k = 0; k < t->n && strcmp(t->v[k].host, host) != 0; k++)
			;
		if (k < t->n)
			continue;	/* its context has every entry of host */
		SSL_CTX *ctx = ctx_for_host(list, host, err);
		if (ctx == NULL)
			goto fail;
		t->v[t->n].host = xstrdup(host);
		if (first == NULL)
			first = ctx;
		else
			t->v[t->n].ctx = ctx;
		if (*host == '\0')
			t->dflt = t->n;	/* a listener without hostname takes the rest */
		t->n++;
	}
	if (first == NULL) {
		*err = xstrdup("an HTTPS listener needs at least one certificate");
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(first, on_sni);
	SSL_CTX_set_tlsext_servername_arg(first, t);
	SSL_CTX_set_ex_data(first, sni_index, t);	/* freed with first */
	return first;
fail:
	SSL_CTX_free(first);
	sni_free(NULL, t, NULL, 0, 0, NULL);
	return NULL;
}

struct px_tls *
px_tls_get(struct proxy_engine *e, const json_t *list, char **err)
{
	struct px_tls *t;
	SSL_CTX *ctx;

	if (!json_is_array(list) || json_array_size(list) == 0) {
		*err = xstrdup("an HTTPS listener needs a non-empty tls list");
		return NULL;
	}
	for (t = e->tls; t; t = t->next)
		if (json_equal(t->src, (json_t *)list)) {
			t->refs++;
			return t;
		}
	if (sni_index < 0)
		sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free);
	if ((ctx = tls_compile(list, err)) == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->refs = 1;
	t->src = json_incref((json_t *)list);
	t->ctx = ctx;
	t->next = e->tls;
	e->tls = t;
	return t;
}

void
px_tls_put(struct proxy_engine *e, struct px_tls *t)
{
	struct px_tls **pp;

	if (t == NULL || --t->refs > 0)
		return;
	for (pp = &e->tls; *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	SSL_CTX_free(t->ctx);	/* connections still on it hold their own reference */
	json_decref(t->src);
	free(t);
}

struct ssl_ctx_st *
px_tls_ctx(const struct px_tls *t)
{
	return t ? t->ctx : NULL;
}

json_t *
proxy_listener_redacted(const json_t *listener)
{
	json_t *copy, *it;
	size_t i;

	if (json_object_get(listener, "tls") == NULL)
		return json_incref((json_t *)listener);
	copy = json_deep_copy(listener);
	json_array_foreach(json_object_get(copy, "tls"), i, it)
		if (json_object_get(it, "key"))
			json_object_set_new(it, "key", json_string("REDACTED"));
	return copy;
}
