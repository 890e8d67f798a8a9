/* store_crypt.c — encryption at rest (store_crypt.h): parses the
 * EncryptionConfiguration, seals values with the first provider of their
 * resource and opens them with any listed one. aesgcm is OpenSSL's
 * AES-GCM (12-byte random nonce, the object's key as AAD), secretbox is
 * libsodium's XSalsa20-Poly1305 (24-byte random nonce), as kube-apiserver. */
#include "store_crypt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "util.h"

#define ENC_PREFIX	"k8s:enc:"
#define GCM_NONCE	12
#define GCM_TAG		16
#define KEY_MAX		32

struct ckey {
	char *name;
	unsigned char secret[KEY_MAX];
	size_t len;
};

struct provider {
	const struct ptype *type;
	struct ckey *keys;	/* keys[0] seals */
	size_t nkeys;
	char *prefix;		/* "k8s:enc:aesgcm:v1:NAME:" of keys[0]; "" identity */
	char *label;		/* "aesgcm key \"NAME\"" */
};

struct rule {
	char **res;		/* store keys: "secrets", "apps/deployments" */
	size_t nres;
	struct provider *prov;
	size_t nprov;
};

struct store_crypt {
	struct rule *rules;
	size_t nrules;
};

/* ---- the ciphers -------------------------------------------------------- */

typedef int (*seal_fn)(const struct ckey *k, const char *aad, const unsigned char *pt,
    size_t len, struct buf *out);
typedef int (*open_fn)(const struct ckey *k, const char *aad, const unsigned char *in,
    size_t len, struct buf *out);

static int
gcm_run(bool enc, const struct ckey *k, const char *aad, const unsigned char *nonce,
    const unsigned char *in, size_t len, unsigned char *tag, unsigned char *out)
{
	static const EVP_CIPHER *(*const by_len[])(void) = {
		[16] = EVP_aes_128_gcm, [24] = EVP_aes_192_gcm, [32] = EVP_aes_256_gcm };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_CipherInit_ex(ctx, by_len[k->len](), NULL, k->secret, nonce, enc) &&
	    EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) &&
	    EVP_CipherUpdate(ctx, out, &n, in, (int)len) &&
	    (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag)) &&
	    EVP_CipherFinal_ex(ctx, out + n, &n) &&
	    (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag));
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* nonce || ciphertext || tag */
static int
gcm_seal(const struct ckey *k, const char *aad, const unsigned char *pt, size_t len,
    struct buf *out)
{
	unsigned char *b = xmalloc(GCM_NONCE + len + GCM_TAG);
	int rc;

	randombytes_buf(b, GCM_NONCE);
	rc = gcm_run(true, k, aad, b, pt, len, b + GCM_NONCE + len, b + GCM_NONCE);
	if (rc == 0)
		buf_append(out, b, GCM_NONCE + len + GCM_TAG);
	free(b);
	return rc;
}

static int
gcm_open(const struct ckey *k, const char *aad, const unsigned char *in, size_t len,
    struct buf *out)
{
	unsigned char tag[GCM_TAG], *b;
	size_t n;
	int rc;

	if (len < GCM_NONCE + GCM_TAG)
		return -EIO;
	n = len - GCM_NONCE - GCM_TAG;
	memcpy(tag, in + len - GCM_TAG, GCM_TAG);
	b = xmalloc(n + 1);
	rc = gcm_run(false, k, aad, in, in + GCM_NONCE, n, tag, b);
	if (rc == 0)
		buf_append(out, b, n);
	free(b);
	return rc;
}

/* nonce || tag || ciphertext (crypto_secretbox_easy, Go's secretbox.Seal) */
static int
box_seal(const struct ckey *k, const char *aad, const unsigned char *pt, size_t len,
    struct buf *out)
{
	size_t n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
	unsigned char *b = xmalloc(n);

	(void)aad;
	randombytes_buf(b, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(b + crypto_secretbox_NONCEBYTES, pt, len, b, k->secret);
	buf_append(out, b, n);
	free(b);
	return 0;
}

static int
box_open(const struct ckey *k, const char *aad, const unsigned char *in, size_t len,
    struct buf *out)
{
	const size_t head = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
	unsigned char *b;
	int rc = -EIO;

	(void)aad;
	if (len < head)
		return -EIO;
	b = xmalloc(len - head + 1);
	if (crypto_secretbox_open_easy(b, in + crypto_secretbox_NONCEBYTES,
	    len - crypto_secretbox_NONCEBYTES, in, k->secret) == 0) {
		buf_append(out, b, len - head);
		rc = 0;
	}
	free(b);
	return rc;
}

/* The provider kinds of the configuration, by their field name. */
static const struct ptype {
	const char *name;
	size_t key_lens[3];	/* accepted secret sizes; none: no keys */
	seal_fn seal;
	open_fn open;
} ptypes[] = {
	{ "aesgcm", { 16, 24, 32 }, gcm_seal, gcm_open },
	{ "secretbox", { 32 }, box_seal, box_open },
	{ "identity", { 0 }, NULL, NULL },
};

/* ---- the configuration -------------------------------------------------- */

static void
provider_free(struct provider *p)
{
	for (size_t i = 0; i < p->nkeys; i++) {
		sodium_memzero(p->keys[i].secret, sizeof p->keys[i].secret);
		free(p->keys[i].name);
	}
	free(p->keys);
	free(p->prefix);
	free(p->label);
}

void
store_crypt_free(struct store_crypt *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nrules; i++) {
		struct rule *r = &c->rules[i];
		for (size_t j = 0; j < r->nres; j++)
			free(r->res[j]);
		for (size_t j = 0; j < r->nprov; j++)
			provider_free(&r->prov[j]);
		free(r->res);
		free(r->prov);
	}
	free(c->rules);
	free(c);
}

static bool
key_len_ok(const struct ptype *t, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(t->key_lens); i++)
		if (t->key_lens[i] && t->key_lens[i] == n)
			return true;
	return false;
}

/* One keys[i] {name, secret: base64}; at is its field path. */
static int
key_parse(const struct ptype *t, const json_t *j, const char *at, struct ckey *k,
    char **err)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *secret = json_string_value(json_object_get(j, "secret"));
	size_t n = 0;

	if (!name || !*name || strchr(name, ':')) {
		*err = xasprintf("%s.name: a name without ':' is required", at);
		return -EINVAL;
	}
	k->name = xstrdup(name);
	if (!secret || sodium_base642bin(k->secret, sizeof k->secret, secret, strlen(secret),
	    NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 || !key_len_ok(t, n)) {
		*err = xasprintf("%s.secret: must be the base64 of a %s key (%s bytes)", at,
		    t->name, t->key_lens[1] ? "16, 24 or 32" : "32");
		return -EINVAL;
	}
	k->len = n;
	return 0;
}

/* providers[i]: an object with one field naming its kind. */
static int
provider_parse(const json_t *j, const char *at, struct provider *p, char **err)
{
	const char *field = json_object_size(j) == 1 ? json_object_iter_key(
	    json_object_iter((json_t *)j)) : NULL;
	const json_t *body = field ? json_object_get(j, field) : NULL, *keys, *k;
	size_t i;

	for (i = 0; field && i < ARRAY_SIZE(ptypes); i++)
		if (strcmp(ptypes[i].name, field) == 0)
			p->type = &ptypes[i];
	if (!p->type) {
		*err = xasprintf("%s: expected one of aesgcm, secretbox, identity%s%s%s", at,
		    field ? " (kms is not supported), got \"" : "", field ? field : "",
		    field ? "\"" : "");
		return -EINVAL;
	}
	if (!p->type->seal) {
		p->prefix = xstrdup("");
		p->label = xstrdup("identity");
		return 0;
	}
	keys = json_object_get(body, "keys");
	if (json_array_size(keys) == 0) {
		*err = xasprintf("%s.%s.keys: at least one key is required", at, field);
		return -EINVAL;
	}
	p->keys = xcalloc(json_array_size(keys), sizeof *p->keys);
	json_array_foreach(keys, i, k) {
		char *kat = xasprintf("%s.%s.keys[%zu]", at, field, i);
		int rc = key_parse(p->type, k, kat, &p->keys[i], err);
		free(kat);
		p->nkeys = i + 1;
		if (rc < 0)
			return rc;
	}
	p->prefix = xasprintf(ENC_PREFIX "%s:v1:%s:", field, p->keys[0].name);
	p->label = xasprintf("%s key \"%s\"", field, p->keys[0].name);
	return 0;
}

/* "secrets" -> "secrets", "deployments.apps" -> "apps/deployments". */
static char *
res_key(const char *s)
{
	const char *dot = strchr(s, '.');
	return dot ? xasprintf("%s/%.*s", dot + 1, (int)(dot - s), s) : xstrdup(s);
}

static int
rule_parse(const json_t *j, size_t idx, struct rule *r, char **err)
{
	const json_t *res = json_object_get(j, "resources");
	const json_t *prov = json_object_get(j, "providers"), *v;
	size_t i;

	if (json_array_size(res) == 0 || json_array_size(prov) == 0) {
		*err = xasprintf("resources[%zu]: resources and providers are required", idx);
		return -EINVAL;
	}
	r->res = xcalloc(json_array_size(res), sizeof *r->res);
	json_array_foreach(res, i, v) {
		const char *s = json_string_value(v);
		if (!s || !*s || strchr(s, '*')) {
			*err = xasprintf("resources[%zu].resources[%zu]: a resource name "
			    "(\"secrets\", \"deployments.apps\"; wildcards are not supported)",
			    idx, i);
			return -EINVAL;
		}
		r->res[r->nres++] = res_key(s);
	}
	r->prov = xcalloc(json_array_size(prov), sizeof *r->prov);
	json_array_foreach(prov, i, v) {
		char *at = xasprintf("resources[%zu].providers[%zu]", idx, i);
		int rc = provider_parse(v, at, &r->prov[i], err);
		free(at);
		r->nprov = i + 1;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
store_crypt_parse(const char *text, size_t len, struct store_crypt **out, char **err)
{
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	struct store_crypt *c;
	const json_t *doc, *rules, *r;
	size_t i;
	int rc = -EINVAL;

	*out = NULL;
	*err = NULL;
	if (sodium_init() < 0) {
		*err = xstrdup("libsodium failed to initialise");
		return -EIO;
	}
	if (obj_parse(text, len, &docs, &errs) < 0 || docs.n != 1) {
		*err = errs.n ? field_err_format(&errs.v[0], NULL)
		    : xstrdup("expected one EncryptionConfiguration document");
		goto out;
	}
	doc = docs.v[0].obj;
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	if (!kind || strcmp(kind, "EncryptionConfiguration") != 0) {
		*err = xstrdup("kind: expected EncryptionConfiguration "
		    "(apiVersion apiserver.config.k8s.io/v1)");
		goto out;
	}
	rules = json_object_get(doc, "resources");
	c = xcalloc(1, sizeof *c);
	c->rules = xcalloc(json_array_size(rules) + 1, sizeof *c->rules);
	json_array_foreach(rules, i, r) {
		c->nrules = i + 1;
		if (rule_parse(r, i, &c->rules[i], err) < 0) {
			store_crypt_free(c);
			goto out;
		}
	}
	*out = c;
	rc = 0;
out:
	obj_docs_free(&docs);
	errlist_free(&errs);
	return rc;
}

int
store_crypt_load(const char *path, struct store_crypt **out, char **err)
{
	char *text = NULL;
	size_t len;
	int rc = file_read_all(path, &text, &len);

	*out = NULL;
	*err = NULL;
	if (rc < 0) {
		*err = xasprintf("%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = store_crypt_parse(text, len, out, err);
	sodium_memzero(text, len);
	free(text);
	return rc;
}

/* ---- sealing and opening ------------------------------------------------ */

/* The first rule listing res (the apiserver's order), or NULL. */
static const struct rule *
rule_for(const struct store_crypt *c, const char *res)
{
	for (size_t i = 0; c && i < c->nrules; i++)
		for (size_t j = 0; j < c->rules[i].nres; j++)
			if (strcmp(c->rules[i].res[j], res) == 0)
				return &c->rules[i];
	return NULL;
}

const char *
store_crypt_resource(const struct store_crypt *c, size_t i)
{
	for (size_t r = 0; c && r < c->nrules; r++) {
		if (i < c->rules[r].nres)
			return c->rules[r].res[i];
		i -= c->rules[r].nres;
	}
	return NULL;
}

bool
store_crypt_covers(const struct store_crypt *c, const char *res)
{
	return rule_for(c, res) != NULL;
}

const char *
store_crypt_writer(const struct store_crypt *c, const char *res)
{
	const struct rule *r = rule_for(c, res);
	return r ? r->prov[0].label : NULL;
}

int
store_crypt_seal(const struct store_crypt *c, const char *res, const char *aad,
    const void *pt, size_t len, unsigned char **out, size_t *outlen)
{
	const struct rule *r = rule_for(c, res);
	const struct provider *p = r ? &r->prov[0] : NULL;
	struct buf b = BUF_INIT;
	int rc = 0;

	buf_puts(&b, p ? p->prefix : "");
	if (p && p->type->seal)
		rc = p->type->seal(&p->keys[0], aad, pt, len, &b);
	else
		buf_append(&b, pt, len);
	if (rc < 0) {
		buf_free(&b);
		return rc;
	}
	*outlen = b.len;
	*out = (unsigned char *)buf_steal(&b);
	return 0;
}

/* Splits "k8s:enc:TYPE:v1:KEY:" off in: the provider kind and key name
 * (into type/key, NUL-terminated) and where the payload starts. */
static int
envelope_split(const unsigned char *in, size_t len, char type[16], char key[256],
    size_t *payload)
{
	const char *s = (const char *)in + strlen(ENC_PREFIX), *end = (const char *)in + len;
	const char *c1 = memchr(s, ':', (size_t)(end - s));
	const char *c2 = c1 && end - c1 > 4 && memcmp(c1, ":v1:", 4) == 0 ?
	    memchr(c1 + 4, ':', (size_t)(end - c1 - 4)) : NULL;

	if (!c2 || c1 - s >= 16 || c2 - (c1 + 4) >= 256)
		return -EIO;
	memcpy(type, s, (size_t)(c1 - s));
	type[c1 - s] = '\0';
	memcpy(key, c1 + 4, (size_t)(c2 - c1 - 4));
	key[c2 - c1 - 4] = '\0';
	*payload = (size_t)(c2 + 1 - (const char *)in);
	return 0;
}

static bool
is_sealed(const void *in, size_t len)
{
	return len >= strlen(ENC_PREFIX) && memcmp(in, ENC_PREFIX, strlen(ENC_PREFIX)) == 0;
}

static const struct ckey *
key_find(const struct rule *r, const char *type, const char *name,
    const struct provider **prov)
{
	for (size_t i = 0; r && i < r->nprov; i++)
		for (size_t j = 0; r->prov[i].type->seal && j < r->prov[i].nkeys; j++)
			if (strcmp(r->prov[i].type->name, type) == 0 &&
			    strcmp(r->prov[i].keys[j].name, name) == 0) {
				*prov = &r->prov[i];
				return &r->prov[i].keys[j];
			}
	return NULL;
}

static bool
has_identity(const struct rule *r)
{
	for (size_t i = 0; i < r->nprov; i++)
		if (!r->prov[i].type->seal)
			return true;
	return false;
}

int
store_crypt_open(const struct store_crypt *c, const char *res, const char *aad,
    const void *in, size_t len, char **out, size_t *outlen, char **err)
{
	const struct rule *r = rule_for(c, res);
	const struct provider *p = NULL;
	const struct ckey *k;
	struct buf b = BUF_INIT;
	char type[16], key[256];
	size_t at;

	*err = NULL;
	if (!is_sealed(in, len)) {
		if (r && !has_identity(r)) {
			*err = xasprintf("stored unencrypted, and the encryption configuration "
			    "for %s lists no identity provider to read it", res);
			return -EIO;
		}
		*out = xstrndup(in, len);
		*outlen = len;
		return 0;
	}
	if (envelope_split(in, len, type, key, &at) < 0) {
		*err = xstrdup("stored value has a malformed k8s:enc: prefix");
		return -EIO;
	}
	if (!(k = key_find(r, type, key, &p))) {
		*err = xasprintf("encrypted with %s key \"%s\", which %s", type, key, r ?
		    "the encryption configuration does not list" :
		    "no --encryption-provider-config covers");
		return -EIO;
	}
	if (p->type->open(k, aad, (const unsigned char *)in + at, len - at, &b) < 0) {
		buf_free(&b);
		*err = xasprintf("decrypting with %s key \"%s\" failed: wrong key or "
		    "tampered data", type, key);
		return -EIO;
	}
	*outlen = b.len;
	*out = buf_steal(&b);
	return 0;
}

bool
store_crypt_current(const struct store_crypt *c, const char *res, const void *in,
    size_t len)
{
	const struct rule *r = rule_for(c, res);
	const char *want = r ? r->prov[0].prefix : "";
	size_t n = strlen(want);

	if (!*want)
		return !is_sealed(in, len);
	return len >= n && memcmp(in, want, n) == 0;
}
