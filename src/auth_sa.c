/* auth_sa.c — ServiceAccount identities: ES256-signed, expiring,
 * audience-bound JWTs (key DATA_DIR/sa.key), TokenRequest, verification
 * (account and bound pod must still exist), projection into pods, and the
 * controller giving every namespace its `default` account. Called by
 * api_auth.c, node_agent.c and server.c. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctrl.h"
#include "log.h"
#include "util.h"

#define SA_TOKEN_DEFAULT_S	3600
#define SA_TOKEN_MIN_S		600
#define SA_TOKEN_MAX_S		(48 * 3600)

struct auth_sa {
	struct api *api;
	char *ca_file;		/* NULL: pods get no ca.crt */
	EVP_PKEY *key;
	char kid[48];
};

/* ---- base64url ------------------------------------------------------------ */

static char *
b64url(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *c = out; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return out;
}

/* Decodes n characters of base64url; NULL when invalid. *len gets the size. */
static unsigned char *
b64url_decode(const char *s, size_t n, size_t *len)
{
	size_t padded = (n + 3) / 4 * 4;
	char *in = xmalloc(padded + 1);
	unsigned char *out = xmalloc(padded / 4 * 3 + 1);
	for (size_t i = 0; i < padded; i++) {
		char c = i < n ? s[i] : '=';
		in[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	in[padded] = '\0';
	int r = n % 4 == 1 ? -1 : EVP_DecodeBlock(out, (unsigned char *)in, (int)padded);
	free(in);
	if (r < 0) {
		free(out);
		return NULL;
	}
	*len = (size_t)r - (padded - n) % 3;	/* EVP_DecodeBlock counts the padding */
	return out;
}

/* ---- the key ------------------------------------------------------------- */

static int
key_load_or_make(const char *path, EVP_PKEY **out)
{
	FILE *f = fopen(path, "r");
	if (f) {
		*out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		return *out ? 0 : -EINVAL;
	}
	if (errno != ENOENT)
		return -errno;
	if (!(*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
		return -EIO;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		int rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	bool ok = PEM_write_PrivateKey(f, *out, NULL, NULL, 0, NULL, NULL) == 1;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

int
auth_sa_open(struct api *api, const char *data_dir, const char *ca_file,
    struct auth_sa **out, char **err)
{
	struct auth_sa *sa = xcalloc(1, sizeof *sa);
	char *path = xasprintf("%s/sa.key", data_dir);
	unsigned char *der = NULL, md[32];
	unsigned mdlen = 0;
	int rc = key_load_or_make(path, &sa->key), n;
	if (rc < 0) {
		*err = xasprintf("%s: the ServiceAccount signing key: %s", path, strerror(-rc));
		free(path);
		EVP_PKEY_free(sa->key);
		free(sa);
		return rc;
	}
	free(path);
	sa->api = api;
	sa->ca_file = ca_file ? xstrdup(ca_file) : NULL;
	/* kid: the key's public half, hashed (as Kubernetes' keyIDFromPublicKey) */
	n = i2d_PUBKEY(sa->key, &der);
	EVP_Digest(der, (size_t)(n > 0 ? n : 0), md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	char *k = b64url(md, mdlen);
	snprintf(sa->kid, sizeof sa->kid, "%s", k);
	free(k);
	*out = sa;
	return 0;
}

void
auth_sa_close(struct auth_sa *sa)
{
	if (!sa)
		return;
	EVP_PKEY_free(sa->key);
	free(sa->ca_file);
	free(sa);
}

/* ---- signing and verifying ------------------------------------------------ */

/* ES256 over "header.payload": the JWS signature is r || s, 32 bytes each. */
static char *
sign(EVP_PKEY *key, const char *input)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128], raw[64];
	const unsigned char *p = der;
	size_t len = sizeof der;
	ECDSA_SIG *sig = NULL;
	char *out = NULL;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, der, &len, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = d2i_ECDSA_SIG(NULL, &p, (long)len)))
		goto out;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32)
		out = b64url(raw, 64);
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

static bool
verify(EVP_PKEY *key, const char *input, size_t inlen, const unsigned char *raw, size_t n)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	bool ok = false;
	int len;
	if (n != 64 || !ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32,
	    NULL)) || (len = i2d_ECDSA_SIG(sig, &der)) <= 0)
		goto out;
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, der, (size_t)len, (const unsigned char *)input, inlen) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(sig);
	return ok;
}

static char *
jwt_encode(const struct auth_sa *sa, json_t *claims)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "ES256", "kid", sa->kid);
	char *h = json_dumps(hdr, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
	char *hb = b64url((unsigned char *)h, strlen(h)), *cb = b64url((unsigned char *)c,
	    strlen(c));
	char *input = xasprintf("%s.%s", hb, cb), *s = sign(sa->key, input), *out = NULL;
	if (s)
		out = xasprintf("%s.%s", input, s);
	free(s);
	free(input);
	free(hb);
	free(cb);
	free(h);
	free(c);
	json_decref(hdr);
	return out;
}

/* The object ns/name of res still exists with this uid. */
static bool
still_there(struct auth_sa *sa, const char *res, const char *ns, const char *name,
    const char *uid)
{
	json_t *o = NULL;
	bool ok = name && uid && store_get(api_store(sa->api), res, ns, name, &o) == 0 &&
	    strcmp(json_string_value(obj_get_path(o, "metadata.uid")) ?
	    json_string_value(obj_get_path(o, "metadata.uid")) : "", uid) == 0;
	json_decref(o);
	return ok;
}

static bool
has_audience(const json_t *aud, const char *audience)
{
	size_t i;
	const json_t *v;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	json_array_foreach(aud, i, v)
		if (json_string_value(v) && strcmp(json_string_value(v), audience) == 0)
			return true;
	return false;
}

int
auth_sa_verify(struct auth_sa *sa, const char *token, const char *audience, json_t **claims,
    const char **why)
{
	const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	unsigned char *sig = NULL, *payload = NULL;
	size_t siglen = 0, plen = 0;
	json_t *c = NULL;
	int rc = -EACCES;

	*claims = NULL;
	*why = "not a ServiceAccount token";
	if (!sa || !d2 || strchr(d2 + 1, '.'))
		return -EINVAL;
	if (!(sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen)) ||
	    !verify(sa->key, token, (size_t)(d2 - token), sig, siglen)) {
		*why = "invalid signature";
		goto out;
	}
	payload = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &plen);
	c = payload ? json_loadb((const char *)payload, plen, 0, NULL) : NULL;
	const json_t *k8s = json_object_get(c, "kubernetes.io");
	const char *ns = json_string_value(json_object_get(k8s, "namespace"));
	const json_t *sao = json_object_get(k8s, "serviceaccount");
	const json_t *pod = json_object_get(k8s, "pod");
	json_int_t exp = json_integer_value(json_object_get(c, "exp"));
	if (!ns || !sao) {
		*why = "not a ServiceAccount token";
	} else if (exp <= (json_int_t)time(NULL)) {
		*why = "token has expired";
	} else if (!has_audience(json_object_get(c, "aud"), audience)) {
		*why = "token audiences do not include this server's";
	} else if (!still_there(sa, "serviceaccounts", ns,
	    json_string_value(json_object_get(sao, "name")),
	    json_string_value(json_object_get(sao, "uid")))) {
		*why = "the ServiceAccount of the token no longer exists";
	} else if (pod && !still_there(sa, "pods", ns,
	    json_string_value(json_object_get(pod, "name")),
	    json_string_value(json_object_get(pod, "uid")))) {
		*why = "the Pod the token is bound to no longer exists";
	} else {
		*claims = json_incref(c);
		rc = 0;
	}
out:
	json_decref(c);
	free(payload);
	free(sig);
	return rc;
}

/* ---- TokenRequest ------------------------------------------------------- */

static void
serve_token(void *arg, struct http_req *req, const json_t *acct)
{
	struct auth_sa *sa = arg;
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	const json_t *spec = json_object_get(body, "spec"), *ref, *aud;
	const char *ns = json_string_value(obj_get_path(acct, "metadata.namespace"));
	const char *name = json_string_value(obj_get_path(acct, "metadata.name"));
	json_int_t secs = json_integer_value(json_object_get(spec, "expirationSeconds"));
	time_t now = time(NULL);
	json_t *pod = NULL, *claims = NULL, *out;
	char *token = NULL, ts[32];

	if (!json_is_object(body)) {
		api_respond_status(req, 400, "the request body is not a TokenRequest");
		goto done;
	}
	if (!secs)
		secs = SA_TOKEN_DEFAULT_S;
	if (secs < SA_TOKEN_MIN_S) {
		api_respond_status(req, 422, "spec.expirationSeconds: Invalid value: may not "
		    "specify a duration less than 10 minutes");
		goto done;
	}
	if (secs > SA_TOKEN_MAX_S)
		secs = SA_TOKEN_MAX_S;
	aud = json_object_get(spec, "audiences");
	claims = json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:s, s:{s:s, s:s}}}",
	    "iss", SA_ISSUER, "sub", "", "iat", (json_int_t)now, "nbf", (json_int_t)now,
	    "exp", (json_int_t)now + secs, "kubernetes.io", "namespace", ns, "serviceaccount",
	    "name", name, "uid", json_string_value(obj_get_path(acct, "metadata.uid")));
	char *sub = xasprintf("system:serviceaccount:%s:%s", ns, name);
	json_object_set_new(claims, "sub", json_string(sub));
	free(sub);
	json_object_set_new(claims, "aud", json_array_size(aud) ? json_incref((json_t *)aud) :
	    json_pack("[s]", SA_ISSUER));
	if ((ref = json_object_get(spec, "boundObjectRef")) != NULL) {
		const char *kind = json_string_value(json_object_get(ref, "kind"));
		const char *pn = json_string_value(json_object_get(ref, "name"));
		if (!kind || strcmp(kind, "Pod") != 0 || !pn ||
		    store_get(api_store(sa->api), "pods", ns, pn, &pod) < 0) {
			api_respond_status(req, 422, "spec.boundObjectRef: Invalid value: a Pod of "
			    "this namespace (v6 binds tokens to Pods only)");
			goto done;
		}
		const char *uid = json_string_value(obj_get_path(pod, "metadata.uid"));
		const char *want = json_string_value(json_object_get(ref, "uid"));
		if (want && strcmp(want, uid) != 0) {
			api_respond_status(req, 409, "the Pod's uid is not the one in boundObjectRef");
			goto done;
		}
		json_object_set_new(json_object_get(claims, "kubernetes.io"), "pod",
		    json_pack("{s:s, s:s}", "name", pn, "uid", uid));
	}
	if (!(token = jwt_encode(sa, claims))) {
		api_respond_status(req, 500, "signing the token failed");
		goto done;
	}
	time_format_rfc3339(now + (time_t)secs, ts);
	out = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:{s:s, s:s}}", "kind", "TokenRequest",
	    "apiVersion", "authentication.k8s.io/v1", "metadata", "name", name, "namespace", ns,
	    "spec", spec ? json_deep_copy(spec) : json_object(), "status", "token", token,
	    "expirationTimestamp", ts);
	json_object_set_new(json_object_get(out, "spec"), "expirationSeconds",
	    json_integer(secs));
	api_respond_json(req, 201, out);
done:
	free(token);
	json_decref(claims);
	json_decref(pod);
	json_decref(body);
}

void
auth_sa_register(struct api *api, struct auth_sa *sa)
{
	api_register_subresource(api, "ServiceAccount", "token", serve_token, sa);
}

/* ---- every namespace has a `default` ServiceAccount ------------------------ */

static void
sa_map(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	ctrl_enqueue(c, "", json_string_value(obj_get_path(obj, "metadata.namespace")));
}

static int
sa_decide(struct ctrl *c, const json_t *ns, int64_t now_ms, struct ctrl_writes *out)
{
	const char *name = json_string_value(obj_get_path(ns, "metadata.name"));
	json_t *have = NULL;
	(void)now_ms;
	if (obj_get_path(ns, "metadata.deletionTimestamp") ||
	    store_get(ctrl_store(c), "serviceaccounts", name, "default", &have) == 0) {
		json_decref(have);
		return 0;
	}
	ctrl_writes_push(out, CTRL_CREATE, NULL, json_pack("{s:s, s:s, s:{s:s, s:s}}",
	    "apiVersion", "v1", "kind", "ServiceAccount", "metadata", "name", "default",
	    "namespace", name), 0);
	return 0;
}

static const struct ctrl_desc sa_desc = {
	.name = "serviceaccount", .component = "serviceaccount-controller",
	.api_version = "v1", .kind = "Namespace", .res = "namespaces",
	.sources = {
		{ "namespaces", NULL },
		{ "serviceaccounts", sa_map },
	},
	.decide = sa_decide,
};

int
ctrl_serviceaccount_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &sa_desc, NULL, out);
}

/* ---- the token in the pod ------------------------------------------------ */

/* Projected tokens live as long as their pod, up to a year (Kubernetes'
 * --service-account-extend-token-expiration does the same for the
 * kubelet's projected tokens): the pod's end revokes them. */
#define SA_PROJECTED_S (365 * 24 * 3600)

int
auth_sa_files(struct auth_sa *sa, const json_t *pod, json_t **files, char **err)
{
	const char *ns = json_string_value(obj_get_path(pod, "metadata.namespace"));
	const char *name = json_string_value(obj_get_path(pod, "spec.serviceAccountName"));
	json_t *acct = NULL, *claims;
	char *token = NULL, *ca = NULL;
	size_t calen = 0;
	time_t now = time(NULL);

	*err = NULL;
	if (!sa || json_is_false(obj_get_path(pod, "spec.automountServiceAccountToken")))
		return 1;
	if (!name || !*name)
		name = "default";
	if (store_get(api_store(sa->api), "serviceaccounts", ns, name, &acct) < 0) {
		*err = xasprintf("serviceaccount \"%s\" not found", name);
		return -ENOENT;
	}
	if (json_is_false(json_object_get(acct, "automountServiceAccountToken")) &&
	    !json_is_true(obj_get_path(pod, "spec.automountServiceAccountToken"))) {
		json_decref(acct);
		return 1;
	}
	char *sub = xasprintf("system:serviceaccount:%s:%s", ns, name);
	claims = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:I, s:{s:s, s:{s:s, s:s}, s:{s:s, "
	    "s:s}}}", "iss", SA_ISSUER, "sub", sub, "aud", SA_ISSUER, "iat", (json_int_t)now,
	    "nbf", (json_int_t)now, "exp", (json_int_t)now + SA_PROJECTED_S, "kubernetes.io",
	    "namespace", ns, "serviceaccount", "name", name, "uid",
	    json_string_value(obj_get_path(acct, "metadata.uid")), "pod", "name",
	    json_string_value(obj_get_path(pod, "metadata.name")), "uid",
	    json_string_value(obj_get_path(pod, "metadata.uid")));
	free(sub);
	json_decref(acct);
	if (!(token = jwt_encode(sa, claims))) {
		json_decref(claims);
		*err = xstrdup("signing the ServiceAccount token failed");
		return -EIO;
	}
	json_decref(claims);
	*files = json_pack("{s:s, s:s}", "token", token, "namespace", ns);
	if (sa->ca_file && file_read_all(sa->ca_file, &ca, &calen) == 0)
		json_object_set_new(*files, "ca.crt", json_stringn(ca, calen));
	free(ca);
	free(token);
	return 0;
}
