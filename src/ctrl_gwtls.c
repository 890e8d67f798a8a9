/* ctrl_gwtls.c — the certificates of a Gateway HTTPS listener: its
 * tls.certificateRefs resolved to kubernetes.io/tls Secrets, each chain and
 * key loaded once through OpenSSL (tls.c) to be sure the proxy can serve
 * it. One pure rule read by the routing snapshot (ctrl_routes.c: what the
 * proxy gets) and by Gateway status (ctrl_gwstatus.c: ResolvedRefs), so
 * the two never disagree. Key bytes never reach a message. */
#include "ctrl.h"
#include "node_pod.h"
#include "pki.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

/* Sets the first failure's reason and message (caller frees *msg). */
static void
refs_fail(const char **reason, char **msg, const char *why, char *text)
{
	if (*msg == NULL) {
		*reason = why;
		*msg = text;
	} else {
		free(text);
	}
}

/* The PEM texts of Secret s, checked by loading them; NULL with *why. */
static json_t *
secret_pair(const json_t *s, const char *host, char **why)
{
	const json_t *data = obj_get_path(s, "data");
	size_t clen = 0, klen = 0;
	char *crt = nenv_b64_decode_len(obj_str(data, "tls.crt"), &clen);
	char *key = nenv_b64_decode_len(obj_str(data, "tls.key"), &klen);
	json_t *out = NULL;
	SSL_CTX *ctx = NULL;

	if (strcmp(obj_str(s, "type"), "kubernetes.io/tls") != 0)
		*why = xasprintf("Secret %s/%s is of type '%s', not kubernetes.io/tls",
		    obj_namespace(s), obj_name(s), obj_str(s, "type"));
	else if (crt == NULL || key == NULL || clen == 0 || klen == 0 ||
	    memchr(crt, 0, clen) || memchr(key, 0, klen))
		*why = xasprintf("Secret %s/%s has no PEM tls.crt and tls.key", obj_namespace(s),
		    obj_name(s));
	else if ((ctx = tls_ctx_base()) == NULL)
		*why = xstrdup("cannot create a TLS context");
	else if (tls_ctx_add_pem(ctx, crt, clen, key, klen, why) == 0)
		out = json_pack("{s:s, s:s, s:s}", "hostname", host, "cert", crt, "key", key);
	if (out == NULL && ctx) {
		char *m = xasprintf("Secret %s/%s: %s", obj_namespace(s), obj_name(s), *why);
		free(*why);
		*why = m;
	}
	SSL_CTX_free(ctx);
	if (key)
		OPENSSL_cleanse(key, klen);
	free(crt);
	free(key);
	return out;
}

bool
gw_listener_certs(const json_t *gw, const json_t *gl, const json_t *secrets,
    const json_t *grants, json_t **out, const char **reason, char **msg)
{
	const json_t *refs = obj_get_path(gl, "tls.certificateRefs"), *ref;
	const char *host = obj_str(gl, "hostname");
	size_t i;

	*out = json_array();
	*reason = "ResolvedRefs";
	*msg = NULL;
	if (json_array_size(refs) == 0)
		refs_fail(reason, msg, "InvalidCertificateRef",
		    xstrdup("an HTTPS listener needs tls.certificateRefs"));
	json_array_foreach(refs, i, ref) {
		const char *group = obj_str(ref, "group"), *kind = obj_str(ref, "kind");
		const char *ns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace")
		    : obj_namespace(gw);
		const json_t *s;
		char *why = NULL;
		json_t *pair;
		if ((*group && strcmp(group, "core") != 0) || (*kind && strcmp(kind, "Secret") != 0)) {
			refs_fail(reason, msg, "InvalidCertificateRef", xasprintf("certificateRefs[%zu]: "
			    "only Secrets (group \"\") are supported, not %s %s", i, group, kind));
			continue;
		}
		if (!gw_ref_permitted(grants, "gateway.networking.k8s.io", "Gateway",
		    obj_namespace(gw), "", "Secret", ns, obj_str(ref, "name"))) {
			refs_fail(reason, msg, "RefNotPermitted", xasprintf("certificateRefs[%zu]: "
			    "Secret %s/%s is in another namespace and no ReferenceGrant allows it",
			    i, ns, obj_str(ref, "name")));
			continue;
		}
		if ((s = obj_lookup(secrets, ns, obj_str(ref, "name"))) == NULL) {
			refs_fail(reason, msg, "InvalidCertificateRef", xasprintf("certificateRefs[%zu]: "
			    "Secret %s/%s not found", i, ns, obj_str(ref, "name")));
			continue;
		}
		if ((pair = secret_pair(s, host, &why)) == NULL) {
			refs_fail(reason, msg, "InvalidCertificateRef", xasprintf("certificateRefs[%zu]: "
			    "%s", i, why));
			free(why);
			continue;
		}
		json_array_append_new(*out, pair);
	}
	if (*msg == NULL)
		*msg = xstrdup("Listener references are resolved");
	return strcmp(*reason, "ResolvedRefs") == 0;
}
