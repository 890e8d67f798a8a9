/* image_registry.c — the OCI distribution client (libcurl, blocking, run on
 * the thread pool by image_store.c): GET the manifest with the Accept list
 * of OCI index / manifest and Docker list / manifest v2, an index resolved
 * to this node's platform, then the config and the layers as blobs. Every
 * manifest and blob is checked against its digest. Auth: anonymous, Bearer
 * tokens (401 WWW-Authenticate realm / service / scope -> token -> retry)
 * and Basic from a dockerconfigjson "auths" object. Plain HTTP only for
 * loopback registries and those given with --insecure-registry; a private
 * CA and client certificate from the certs.d directory (Docker's layout). */
#include "image_int.h"
#include "log.h"

#include <archive.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_MAX (4 << 20)	/* as containerd: manifests are small */
#define ACCEPT "Accept: " IMG_MT_OCI_INDEX ", " IMG_MT_OCI_MANIFEST ", " \
	IMG_MT_DOCKER_LIST ", " IMG_MT_DOCKER_MANIFEST

struct reg {
	struct img_store *s;
	bool insecure;		/* loopback / --insecure-registry: no certificate check */
	bool plain;		/* TLS failed there: plain HTTP from now on */
	CURLcode last;		/* of the last transfer */
	struct img_ref ref;
	const json_t *auths;
	char *base;		/* "https://host/v2/REPO" */
	char *host;		/* as in the reference ("docker.io" -> the hub's API host) */
	char *authz;		/* "Authorization: ..." once known */
	char *basic;		/* base64 user:pass from auths, or NULL */
	char *ref_str;
	char *api_host;		/* HOST[:PORT] the registry's URLs name */
	char *ca;		/* CERTS_DIR/HOST:PORT/ca.crt when present, else NULL */
	char *client_cert;	/* .../client.cert and client.key when both present */
	char *client_key;
};

/* ---- where and how to connect ------------------------------------------ */

bool
img_plain_http_allowed(const char *hostport, char *const *insecure)
{
	if (util_host_is_loopback(hostport))
		return true;
	for (size_t i = 0; insecure && insecure[i]; i++)
		if (!strcmp(insecure[i], hostport))
			return true;
	return false;
}

/* The dockerconfigjson key for a registry: "host:port", "https://host/v1/",
 * "http://host"; docker.io answers to its historical names too. */
static bool
auth_key_matches(const char *key, const char *host)
{
	char k[512];
	const char *p = key;
	if (str_has_prefix(p, "https://"))
		p += 8;
	else if (str_has_prefix(p, "http://"))
		p += 7;
	snprintf(k, sizeof k, "%s", p);
	char *slash = strchr(k, '/');
	if (slash)
		*slash = '\0';
	if (!strcmp(k, host))
		return true;
	return !strcmp(host, "docker.io") && (!strcmp(k, "index.docker.io") ||
	    !strcmp(k, "registry-1.docker.io"));
}

static char *
basic_from_auths(const json_t *auths, const char *host)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)auths, key, v) {
		if (!auth_key_matches(key, host))
			continue;
		const char *a = json_string_value(json_object_get(v, "auth"));
		if (a && *a)
			return xstrdup(a);
		const char *u = json_string_value(json_object_get(v, "username"));
		const char *pw = json_string_value(json_object_get(v, "password"));
		if (!u || !pw)
			continue;
		char *plain = xasprintf("%s:%s", u, pw);
		size_t n = strlen(plain);
		char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)plain, (int)n);
		free(plain);
		return b64;
	}
	return NULL;
}

/* ---- one request -------------------------------------------------------- */

struct sink {
	struct buf body;	/* manifests, tokens, error bodies */
	size_t limit;
	int fd;			/* blobs: written here (-1: memory) */
	EVP_MD_CTX *md;		/* blobs: hashed as they arrive */
	struct buf *stream;	/* blobs unpacked as they arrive: a copy goes here */
	long status;
	char *www_auth;		/* WWW-Authenticate of a 401 */
	char *ctype;
	char *dcd;		/* Docker-Content-Digest */
	bool failed;
};

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t len = size * n;
	static const struct {
		const char *name;
		size_t off;
	} keep[] = {
		{ "www-authenticate:", offsetof(struct sink, www_auth) },
		{ "content-type:", offsetof(struct sink, ctype) },
		{ "docker-content-digest:", offsetof(struct sink, dcd) },
	};
	/* A new response (redirect, 401 then retry): forget the last one's. */
	if (len > 5 && !strncmp(p, "HTTP/", 5)) {
		for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
			char **f = (char **)((char *)k + keep[i].off);
			free(*f);
			*f = NULL;
		}
		return len;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		size_t kl = strlen(keep[i].name);
		if (len > kl && !strncasecmp(p, keep[i].name, kl)) {
			const char *v = p + kl;
			size_t vl = len - kl;
			while (vl && isspace((unsigned char)*v))
				v++, vl--;
			while (vl && isspace((unsigned char)v[vl - 1]))
				vl--;
			char **f = (char **)((char *)k + keep[i].off);
			free(*f);
			*f = xstrndup(v, vl);
		}
	}
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t len = size * n;

	/* Only a 200 body goes to the blob file: an error body is kept. */
	if (k->fd >= 0 && k->status == 200) {
		size_t off = 0;
		while (off < len) {
			ssize_t w = write(k->fd, p + off, len - off);
			if (w < 0) {
				k->failed = true;
				return 0;
			}
			off += (size_t)w;
		}
		EVP_DigestUpdate(k->md, p, len);
		if (k->stream)
			buf_append(k->stream, p, len);
		return len;
	}
	if (k->body.len + len > k->limit) {
		k->failed = true;
		return 0;
	}
	buf_append(&k->body, p, len);
	return len;
}

static void
sink_free(struct sink *k)
{
	buf_free(&k->body);
	free(k->www_auth);
	free(k->ctype);
	free(k->dcd);
}

/* Status of a response once its headers are in, for on_body. */
static size_t
on_header_status(char *p, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t len = on_header(p, size, n, arg);
	if (len > 12 && !strncmp(p, "HTTP/", 5)) {
		const char *sp = memchr(p, ' ', len);
		k->status = sp ? strtol(sp + 1, NULL, 10) : 0;
	}
	return len;
}

/* The server is stopping: a pull in flight ends now, not after its
 * download (the loop waits for the thread pool). */
static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return img__closing(arg);
}

/* Whether url is on the registry itself (not its token realm). */
static bool
url_is_registry(const struct reg *r, const char *url)
{
	const char *h = strstr(url, "://");
	size_t n = strlen(r->api_host);
	return h && !strncmp(h + 3, r->api_host, n) && strchr("/", h[3 + n]);
}

/* An easy handle for GET url into k (headers h and the error buffer err
 * are the caller's to free / keep alive until the transfer ends). */
static CURL *
easy_new(struct reg *r, const char *url, const char *accept, struct sink *k,
    struct curl_slist **h, char *err)
{
	CURL *c = curl_easy_init();

	*h = NULL;
	if (accept)
		*h = curl_slist_append(*h, accept);
	if (r->authz)
		*h = curl_slist_append(*h, r->authz);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *h);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, str_has_prefix(url, "https:") ?
	    "https" : "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* A stalled transfer: under 1 byte/s for 30 s. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header_status);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "v6/" V6_VERSION);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r->s);
	if (url_is_registry(r, url)) {
		if (r->ca)
			curl_easy_setopt(c, CURLOPT_CAINFO, r->ca);
		if (r->client_cert) {
			curl_easy_setopt(c, CURLOPT_SSLCERT, r->client_cert);
			curl_easy_setopt(c, CURLOPT_SSLKEY, r->client_key);
		}
	}
	if (r->insecure && !r->ca) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return c;
}

/* 0 when a response came (any status, in k->status), else -EIO with *msg. */
static int
transfer_result(const char *url, CURLcode rc, const char *err, struct sink *k, char **msg)
{
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && k->failed)) {
		*msg = xasprintf("GET %s: %s", url, *err ? err : curl_easy_strerror(rc));
		return -EIO;
	}
	if (k->failed) {
		*msg = xasprintf("GET %s: %s", url, k->fd >= 0 ? "cannot write the blob" :
		    "response too large");
		return -EIO;
	}
	return 0;
}

/* GET url; the answer in k. Returns 0 when a response came (any status) or
 * -EIO with *msg. */
static int
http_get(struct reg *r, const char *url, const char *accept, struct sink *k, char **msg)
{
	struct curl_slist *h;
	char err[CURL_ERROR_SIZE] = "";
	CURL *c = easy_new(r, url, accept, k, &h, err);
	CURLcode rc = curl_easy_perform(c);
	r->last = rc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &k->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return transfer_result(url, rc, err, k, msg);
}

/* ---- auth --------------------------------------------------------------- */

/* The value of key="..." in a WWW-Authenticate challenge; caller frees. */
static char *
challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = ch; (p = strstr(p, key)) != NULL; p += kl) {
		if (p != ch && !strchr(" ,", p[-1]))
			continue;
		if (p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		if (*v == '"') {
			const char *end = strchr(v + 1, '"');
			return end ? xstrndup(v + 1, (size_t)(end - v - 1)) : NULL;
		}
		size_t n = strcspn(v, ", ");
		return xstrndup(v, n);
	}
	return NULL;
}

static void
query_add(struct buf *q, const char *key, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0);
	buf_printf(q, "%s%s=%s", q->len ? "&" : "", key, e);
	curl_free(e);
}

/* Answers a 401's challenge: Basic with the pull secret, or Bearer with a
 * token from the realm (with the secret when there is one). 0 when there
 * is something new to retry with. */
static int
authenticate(struct reg *r, const char *challenge, char **msg)
{
	if (!strncasecmp(challenge, "Basic", 5)) {
		if (!r->basic || (r->authz && str_has_prefix(r->authz, "Authorization: Basic"))) {
			*msg = xasprintf("unauthorized: %s", r->basic ? "the pull secret was refused"
			    : "authentication required (no pull secret for this registry)");
			return -EACCES;
		}
		free(r->authz);
		r->authz = xasprintf("Authorization: Basic %s", r->basic);
		return 0;
	}
	/* Bearer: a new token each time asked (one that expired during a long
	 * pull is renewed); reg_get answers one challenge per request. */
	if (strncasecmp(challenge, "Bearer", 6) != 0) {
		*msg = xstrdup("unauthorized: unsupported challenge");
		return -EACCES;
	}
	char *realm = challenge_param(challenge, "realm");
	char *service = challenge_param(challenge, "service");
	char *scope = challenge_param(challenge, "scope");
	struct buf q = BUF_INIT;
	int rc = -EACCES;

	if (!realm || !(str_has_prefix(realm, "https://") || str_has_prefix(realm, "http://"))) {
		*msg = xstrdup("unauthorized: the registry's token realm is not a URL");
		goto out;
	}
	if (service)
		query_add(&q, "service", service);
	char *dflt = xasprintf("repository:%s:pull", r->ref.repo);
	query_add(&q, "scope", scope ? scope : dflt);
	free(dflt);
	char *url = xasprintf("%s%c%s", realm, strchr(realm, '?') ? '&' : '?', q.data);
	struct sink k = { .limit = 1 << 20, .fd = -1 };
	free(r->authz);
	r->authz = r->basic ? xasprintf("Authorization: Basic %s", r->basic) : NULL;
	rc = http_get(r, url, NULL, &k, msg);
	free(r->authz);
	r->authz = NULL;
	json_t *tok = rc == 0 && k.status == 200 ? json_loadb(k.body.data ? k.body.data : "",
	    k.body.len, 0, NULL) : NULL;
	const char *t = json_string_value(json_object_get(tok, "token"));
	if (!t)
		t = json_string_value(json_object_get(tok, "access_token"));
	if (rc == 0 && t && *t) {
		r->authz = xasprintf("Authorization: Bearer %s", t);
	} else if (rc == 0) {
		*msg = xasprintf("unauthorized: the token server %s answered %ld", realm, k.status);
		rc = -EACCES;
	}
	json_decref(tok);
	sink_free(&k);
	free(url);
out:
	buf_free(&q);
	free(realm);
	free(service);
	free(scope);
	return rc;
}

/* The registry's error message of a failed response ("manifest unknown"). */
static char *
error_text(const struct sink *k)
{
	json_t *j = k->body.len ? json_loadb(k->body.data, k->body.len, 0, NULL) : NULL;
	const json_t *e = json_array_get(json_object_get(j, "errors"), 0);
	const char *m = json_string_value(json_object_get(e, "message"));
	char *out = m ? xstrdup(m) : xasprintf("HTTP %ld", k->status);
	json_decref(j);
	return out;
}

/* GET with the auth dance: at most one challenge answered per request. */
/* An insecure registry that does not speak TLS: every URL of the pull
 * (r->base and the ones made from it) goes plain from now on. */
static bool
fall_back_to_http(struct reg *r)
{
	static const CURLcode tls_failures[] = { CURLE_SSL_CONNECT_ERROR, CURLE_GOT_NOTHING,
		CURLE_RECV_ERROR, CURLE_WEIRD_SERVER_REPLY, CURLE_PEER_FAILED_VERIFICATION };
	if (!r->insecure || r->plain || r->ca)
		return false;	/* a registry given a CA speaks TLS */
	for (size_t i = 0; i < ARRAY_SIZE(tls_failures); i++)
		if (r->last == tls_failures[i]) {
			char *b = xasprintf("http://%s", r->base + strlen("https://"));
			free(r->base);
			r->base = b;
			r->plain = true;
			return true;
		}
	return false;
}

static int
reg_get(struct reg *r, const char *url, const char *accept, struct sink *k, char **msg)
{
	char *plain = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = http_get(r, url, accept, k, msg);
		if (rc == -EIO && str_has_prefix(url, "https://") && fall_back_to_http(r)) {
			free(*msg);
			*msg = NULL;
			buf_reset(&k->body);
			url = plain = xasprintf("http://%s", url + strlen("https://"));
			rc = http_get(r, url, accept, k, msg);
		}
		if (rc < 0) {
			free(plain);
			return rc;
		}
		if (k->status != 401 || attempt == 1)
			break;
		if ((rc = authenticate(r, k->www_auth ? k->www_auth : "", msg)) < 0) {
			free(plain);
			return rc;
		}
		buf_reset(&k->body);
		if (k->fd >= 0 && (ftruncate(k->fd, 0) < 0 || lseek(k->fd, 0, SEEK_SET) < 0)) {
			free(plain);
			return -EIO;
		}
	}
	free(plain);
	if (k->status != 200) {
		char *t = error_text(k);
		/* a 401 to the pull secret's own credentials: they were refused */
		bool refused = r->authz && str_has_prefix(r->authz, "Authorization: Basic");
		*msg = k->status == 401 ? xasprintf("unauthorized: %s%s", refused ?
		    "the pull secret was refused: " : "", t) : t;
		if (k->status == 401)
			free(t);
		return k->status == 404 ? -ENOENT : k->status == 401 || k->status == 403 ?
		    -EACCES : -EIO;
	}
	return 0;
}

/* ---- manifests and blobs ------------------------------------------------ */

/* GETs manifest ref (a tag or a digest), checks its digest (the one asked
 * for, else the registry's Docker-Content-Digest), returns the body. */
static int
get_manifest(struct reg *r, const char *ref, char **body, size_t *len, char **ctype,
    char *digest, char **msg)
{
	struct sink k = { .limit = MANIFEST_MAX, .fd = -1 };
	char *url = xasprintf("%s/manifests/%s", r->base, ref);
	int rc = reg_get(r, url, ACCEPT, &k, msg);
	free(url);
	if (rc == 0) {
		img__digest_bytes(k.body.data ? k.body.data : "", k.body.len, digest);
		const char *want = img_digest_valid(ref) ? ref : k.dcd;
		if (want && img_digest_valid(want) && strcmp(want, digest) != 0) {
			*msg = xasprintf("manifest digest mismatch: expected %s, the content has %s",
			    want, digest);
			rc = -EBADMSG;
		}
	}
	if (rc == 0) {
		*len = k.body.len;
		*body = buf_steal(&k.body);
		*ctype = k.ctype;
		k.ctype = NULL;
	}
	sink_free(&k);
	return rc;
}

static int
fetch_blob(void *arg, const char *digest, const char *tmp, char **msg)
{
	struct reg *r = arg;
	struct sink k = { .limit = 1 << 16 };
	char *url = xasprintf("%s/blobs/%s", r->base, digest);
	int64_t t0 = time_mono_ms();
	int rc;

	k.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (k.fd < 0) {
		*msg = xasprintf("cannot create %s: %s", tmp, strerror(errno));
		free(url);
		return -errno;
	}
	k.md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(k.md, EVP_sha256(), NULL);
	rc = reg_get(r, url, NULL, &k, msg);
	if (rc == 0) {
		char got[80];
		img__digest_final(k.md, got);
		if (strcmp(got, digest) != 0) {
			*msg = xasprintf("digest mismatch for blob %s: the registry sent %s",
			    digest, got);
			rc = -EBADMSG;
		}
	}
	log_debug("image", "blob %s fetched in %lld ms", digest,
	    (long long)(time_mono_ms() - t0));
	EVP_MD_CTX_free(k.md);
	close(k.fd);
	sink_free(&k);
	free(url);
	return rc;
}

/* ---- a layer unpacked while it downloads -------------------------------- */

/* libarchive pulls; each pull drives the transfer (curl multi, same thread)
 * until bytes arrived or it ended. */
struct stream {
	CURLM *m;
	struct sink *k;
	struct buf pend;	/* arrived, not yet read by libarchive */
	char *cur;		/* handed to libarchive (valid until its next read) */
	bool done;
	CURLcode result;
};

static void
stream_pump(struct stream *st)
{
	int running = 0;
	curl_multi_perform(st->m, &running);
	if (!running) {
		int left;
		CURLMsg *mm = curl_multi_info_read(st->m, &left);
		st->result = mm && mm->msg == CURLMSG_DONE ? mm->data.result : CURLE_RECV_ERROR;
		st->done = true;
	} else if (st->pend.len == 0) {
		curl_multi_poll(st->m, NULL, 0, 1000, NULL);
	}
}

static la_ssize_t
stream_read(struct archive *a, void *arg, const void **out)
{
	struct stream *st = arg;
	free(st->cur);
	st->cur = NULL;
	while (st->pend.len == 0 && !st->done) {
		stream_pump(st);
		if (st->k->status >= 400) {
			archive_set_error(a, EIO, "HTTP %ld", st->k->status);
			return -1;
		}
	}
	size_t n = st->pend.len;
	if (n == 0)
		return 0;
	st->cur = buf_steal(&st->pend);
	*out = st->cur;
	return (la_ssize_t)n;
}

static int
fetch_unpack(void *arg, const char *digest, const char *tmp, const char *dir, char **msg)
{
	struct reg *r = arg;
	struct sink k = { .limit = 1 << 16 };
	struct stream st = { .k = &k };
	char *url = xasprintf("%s/blobs/%s", r->base, digest);
	char err[CURL_ERROR_SIZE] = "", got[80];
	struct curl_slist *h;
	char *umsg = NULL;

	k.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (k.fd < 0) {
		free(url);
		return -EAGAIN;
	}
	k.md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(k.md, EVP_sha256(), NULL);
	k.stream = &st.pend;
	CURL *c = easy_new(r, url, NULL, &k, &h, err);
	st.m = curl_multi_init();
	curl_multi_add_handle(st.m, c);
	struct archive *a = img__archive_reader();
	int urc = archive_read_open(a, &st, NULL, stream_read, NULL) == ARCHIVE_OK ?
	    img__unpack_archive(a, dir, true, &umsg) : -EIO;
	archive_read_free(a);
	/* The rest (tar padding, compression trailer, or all of it after an
	 * unpack error) still counts for the digest. */
	k.stream = NULL;
	buf_free(&st.pend);
	while (!st.done && k.status < 400)
		stream_pump(&st);
	int rc = st.done ? transfer_result(url, st.result, err, &k, msg) : 0;
	if (rc == 0 && k.status != 200)
		rc = -EAGAIN;	/* a 401 and the like: the plain path knows what to do */
	if (rc == 0) {
		img__digest_final(k.md, got);
		if (strcmp(got, digest) != 0) {
			*msg = xasprintf("digest mismatch for blob %s: the registry sent %s",
			    digest, got);
			rc = -EBADMSG;
		} else if (urc < 0) {
			*msg = umsg;
			umsg = NULL;
			rc = urc;
		}
	}
	curl_multi_remove_handle(st.m, c);
	curl_easy_cleanup(c);
	curl_multi_cleanup(st.m);
	curl_slist_free_all(h);
	free(st.cur);
	free(umsg);
	EVP_MD_CTX_free(k.md);
	close(k.fd);
	sink_free(&k);
	free(url);
	return rc;
}

/* Docker's certs.d: DIR/HOST:PORT/ca.crt, client.cert + client.key. */
static void
certs_find(struct reg *r, const char *dir)
{
	char *d = dir ? xasprintf("%s/%s", dir, r->ref.registry) : NULL;
	char *ca = d ? xasprintf("%s/ca.crt", d) : NULL;
	char *cert = d ? xasprintf("%s/client.cert", d) : NULL;
	char *key = d ? xasprintf("%s/client.key", d) : NULL;

	if (ca && access(ca, R_OK) == 0)
		r->ca = ca, ca = NULL;
	if (cert && access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		r->client_cert = cert, r->client_key = key, cert = key = NULL;
	free(d);
	free(ca);
	free(cert);
	free(key);
}

static int
reg_init(struct reg *r, struct img_store *s, const char *ref, const json_t *auths,
    char **msg)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->auths = auths;
	if (img_ref_parse(ref, &r->ref, msg) < 0)
		return -EINVAL;
	r->ref_str = img_ref_string(&r->ref);
	const char *api_host = strcmp(r->ref.registry, "docker.io") == 0 ?
	    "registry-1.docker.io" : r->ref.registry;
	/* Docker's rule for a registry that may be insecure: HTTPS first,
	 * its certificate unchecked, then plain HTTP if TLS fails. */
	r->insecure = img_plain_http_allowed(r->ref.registry, img__insecure(s));
	r->api_host = xstrdup(api_host);
	r->base = xasprintf("https://%s/v2/%s", api_host, r->ref.repo);
	certs_find(r, img__certs_dir(s));
	r->basic = auths ? basic_from_auths(auths, r->ref.registry) : NULL;
	return 0;
}

static void
reg_free(struct reg *r)
{
	img_ref_free(&r->ref);
	free(r->base);
	free(r->authz);
	free(r->basic);
	free(r->ref_str);
	free(r->api_host);
	free(r->ca);
	free(r->client_cert);
	free(r->client_key);
}

/* A copy of r for another thread of the same pull (img_source.clone): the
 * auth and scheme found so far, its own from then on. */
static void *
reg_clone(void *arg)
{
	const struct reg *r = arg;
	struct reg *c = xmalloc(sizeof *c);
	*c = *r;
	c->ref.registry = r->ref.registry ? xstrdup(r->ref.registry) : NULL;
	c->ref.repo = r->ref.repo ? xstrdup(r->ref.repo) : NULL;
	c->ref.tag = r->ref.tag ? xstrdup(r->ref.tag) : NULL;
	c->ref.digest = r->ref.digest ? xstrdup(r->ref.digest) : NULL;
	c->base = xstrdup(r->base);
	c->authz = r->authz ? xstrdup(r->authz) : NULL;
	c->basic = r->basic ? xstrdup(r->basic) : NULL;
	c->ref_str = xstrdup(r->ref_str);
	c->api_host = xstrdup(r->api_host);
	c->ca = r->ca ? xstrdup(r->ca) : NULL;
	c->client_cert = r->client_cert ? xstrdup(r->client_cert) : NULL;
	c->client_key = r->client_key ? xstrdup(r->client_key) : NULL;
	return c;
}

static void
reg_release(void *arg)
{
	reg_free(arg);
	free(arg);
}

int
img_registry_pull(struct img_store *s, const char *ref, const json_t *auths,
    int64_t max_bytes, char **msg)
{
	struct reg r;
	char *body = NULL, *ctype = NULL;
	size_t len = 0;
	char digest[80], top[80];
	int rc = reg_init(&r, s, ref, auths, msg);
	int64_t t0 = time_mono_ms();

	if (rc < 0)
		return rc;
	rc = get_manifest(&r, r.ref.digest ? r.ref.digest : r.ref.tag, &body, &len, &ctype,
	    top, msg);
	json_t *doc = rc == 0 ? json_loadb(body, len, 0, NULL) : NULL;
	if (rc == 0 && !json_is_object(doc)) {
		*msg = xstrdup("the manifest is not JSON");
		rc = -EPROTO;
	}
	if (rc == 0 && img_is_index(doc, ctype)) {
		const char *os, *arch, *variant;
		img_platform(&os, &arch, &variant);
		const json_t *pick = img_index_select(doc, os, arch, variant);
		const char *d = json_string_value(json_object_get(pick, "digest"));
		free(body);
		free(ctype);
		body = ctype = NULL;
		if (!img_digest_valid(d)) {
			*msg = xasprintf("no image for %s/%s%s%s in the index", os, arch,
			    *variant ? "/" : "", variant);
			rc = -ENOENT;
		} else {
			rc = get_manifest(&r, d, &body, &len, &ctype, digest, msg);
		}
	}
	if (rc == 0) {
		struct img_source src = { fetch_blob, fetch_unpack, &r, max_bytes, reg_clone,
			reg_release };
		rc = img__store_put(s, r.ref_str, body, len, top, &src, msg);
	}
	if (rc == 0)
		log_info("image", "pulled %s (%s) in %lld ms", r.ref_str, top,
		    (long long)(time_mono_ms() - t0));
	json_decref(doc);
	free(body);
	free(ctype);
	reg_free(&r);
	return rc;
}
