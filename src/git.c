/* git.c — the git side of GitOps, with libgit2: one bare clone per repo URL
 * under the cache dir, fetched with every branch and tag (deleted branches
 * pruned, force-pushes followed), a revision resolved as Argo CD does
 * (branch, tag, commit, HEAD) and its tree checked out once per commit.
 * Runs on libuv's thread pool (ctrl_app.c); calls are serialised. */
#include "gitops.h"
#include "log.h"
#include "node_pod.h"

#include <errno.h>
#include <git2.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t git_lock = PTHREAD_MUTEX_INITIALIZER;

void
git_creds_free(struct git_creds *c)
{
	if (!c)
		return;
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	if (c->ssh_key)
		explicit_bzero(c->ssh_key, strlen(c->ssh_key));
	free(c->username);
	free(c->password);
	free(c->ssh_key);
	free(c->known_hosts);
	*c = (struct git_creds){ 0 };
}

/* Base64 Secret data, decoded (NULL when absent). */
static char *
secret_field(const json_t *secret, const char *key)
{
	const char *v = json_string_value(obj_get_path(json_object_get(secret, "data"), key));
	return v ? nenv_b64_decode(v) : NULL;
}

void
git_creds_find(const json_t *secrets, const char *url, struct git_creds *out)
{
	json_t *s;
	size_t i;
	char *want = git_url_normalize(url);
	json_array_foreach(secrets, i, s) {
		const char *type = json_string_value(json_object_get(obj_labels(s),
		    APP_SECRET_TYPE));
		char *su = secret_field(s, "url");
		char *norm = su ? git_url_normalize(su) : NULL;
		bool match = type && norm && ((!strcmp(type, "repository") && !strcmp(norm, want)) ||
		    (!strcmp(type, "repo-creds") && !strncmp(want, norm, strlen(norm))));
		free(su);
		free(norm);
		if (!match || out->username || out->password || out->ssh_key)
			continue;
		out->username = secret_field(s, "username");
		out->password = secret_field(s, "password");
		out->ssh_key = secret_field(s, "sshPrivateKey");
		char *insecure = secret_field(s, "insecure");
		out->insecure = insecure && !strcmp(insecure, "true");
		free(insecure);
		char *kh = secret_field(s, "sshKnownHosts");
		if (kh)
			git_known_hosts_add(out, kh);
		free(kh);
	}
	free(want);
}

char *
git_url_normalize(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = strchr(p, '@'), *slash = strchr(p, '/');
	if (at && (!slash || at < slash))
		p = at + 1;
	char *s = xstrdup(p);
	for (char *q = s; *q && *q != '/'; q++) {
		if (*q == ':' && strncmp(url, "file:", 5) && !strstr(url, "://"))
			*q = '/';	/* scp-like git@host:org/repo */
		*q = (char)tolower((unsigned char)*q);
	}
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = '\0';
	if (n > 4 && !strcmp(s + n - 4, ".git"))
		s[n - 4] = '\0';
	return s;
}

void
git_known_hosts_add(struct git_creds *c, const char *text)
{
	char *t = xasprintf("%s%s\n", c->known_hosts ? c->known_hosts : "", text);
	free(c->known_hosts);
	c->known_hosts = t;
}

void
git_known_hosts_user(struct git_creds *c)
{
	const char *home = getenv("HOME");
	char *path = xasprintf("%s/.ssh/known_hosts", home && *home ? home : "/");
	char *text = NULL;
	size_t len;
	if (file_read_all(path, &text, &len) == 0)
		git_known_hosts_add(c, text);
	free(text);
	free(path);
}

/* The credential callback: one offer per kind, then give up (libgit2
 * asks again after a refusal). */
struct cred_state {
	const struct git_creds *c;
	int tries;
	int port;		/* of the URL, for [host]:port in known_hosts */
	char *refused;		/* a push: the server's reason, or NULL */
};

/* The port of an ssh URL (22 when none; scp-like URLs have none). */
static int
url_port(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return 22;
	p += 3;
	const char *slash = strchr(p, '/'), *at = strchr(p, '@');
	if (at && (!slash || at < slash))
		p = at + 1;
	const char *colon = p[0] == '[' ? strstr(p, "]:") : strchr(p, ':');
	if (colon && p[0] == '[')
		colon++;
	if (!colon || (slash && colon > slash))
		return 22;
	int port = atoi(colon + 1);
	return port > 0 ? port : 22;
}

static int
cred_cb(git_credential **out, const char *url, const char *user_from_url,
    unsigned int allowed, void *payload)
{
	struct cred_state *s = payload;
	(void)url;
	if (!s->c || s->tries++ > 0)
		return GIT_PASSTHROUGH;
	const char *user = s->c->username ? s->c->username : user_from_url ? user_from_url
	    : "git";
	if ((allowed & GIT_CREDENTIAL_SSH_MEMORY) && s->c->ssh_key)
		return git_credential_ssh_key_memory_new(out, user, NULL, s->c->ssh_key, NULL);
	if ((allowed & GIT_CREDENTIAL_USERNAME) && s->c->ssh_key)
		return git_credential_username_new(out, user);
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && s->c->password)
		return git_credential_userpass_plaintext_new(out, user, s->c->password);
	return GIT_PASSTHROUGH;
}

/* ---- ssh host keys against known_hosts ------------------------------------ */

/* Base64 (no newlines) decoded into out (at least 3/4 of its length). */
static size_t
b64_decode(const char *in, size_t n, unsigned char *out)
{
	if (n % 4 || !n)
		return 0;
	int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return 0;
	len -= (in[n - 1] == '=') + (in[n - 2] == '=');
	return (size_t)len;
}

/* OpenSSH's pattern match: * and ? only, case-insensitive. */
static bool
glob_match(const char *p, const char *s)
{
	for (; *p; p++, s++) {
		if (*p == '*') {
			for (const char *t = s;; t++) {
				if (glob_match(p + 1, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (!*s || (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s)))
			return false;
	}
	return !*s;
}

/* Whether the host pattern field (comma-separated, "!" negates, * and ?
 * glob, or OpenSSH's hashed |1|salt|hmac) names host. */
static bool
host_matches(const char *field, size_t n, const char *host)
{
	char *f = xstrndup(field, n);
	bool yes = false, no = false;
	for (char *save = NULL, *p = strtok_r(f, ",", &save); p; p = strtok_r(NULL, ",",
	    &save)) {
		if (!strncmp(p, "|1|", 3)) {
			char *bar = strchr(p + 3, '|');
			unsigned char salt[64], want[64], md[EVP_MAX_MD_SIZE];
			unsigned mdlen = 0;
			size_t sl = bar && bar - p - 3 <= 84 ? b64_decode(p + 3, (size_t)(bar - p - 3),
			    salt) : 0;
			size_t wl = bar && strlen(bar + 1) <= 80 ? b64_decode(bar + 1,
			    strlen(bar + 1), want) : 0;
			if (sl && wl == 20 && HMAC(EVP_sha1(), salt, (int)sl,
			    (const unsigned char *)host, strlen(host), md, &mdlen) &&
			    mdlen == 20 && !memcmp(md, want, 20))
				yes = true;
		} else if (p[0] == '!') {
			if (glob_match(p + 1, host))
				no = true;
		} else if (glob_match(p, host)) {
			yes = true;
		}
	}
	free(f);
	return yes && !no;
}

/* OpenSSH's SHA256:... fingerprint of a key blob. */
static void
fingerprint(const unsigned char *key, size_t len, char out[64])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned char b64[64];
	SHA256(key, len, md);
	int n = EVP_EncodeBlock(b64, md, sizeof md);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, 64, "SHA256:%.*s", n, (const char *)b64);
}

int
git_known_host_check(const char *known, const char *host, int port, const unsigned char *key,
    size_t klen, char *msg, size_t mlen)
{
	char pattern[300];
	if (port == 22)
		snprintf(pattern, sizeof pattern, "%s", host);
	else
		snprintf(pattern, sizeof pattern, "[%s]:%d", host, port);
	char fp[64];
	fingerprint(key, klen, fp);
	bool seen = false, ok = false;
	const char *line = known ? known : "";
	for (size_t guard = 0; *line && guard < 1000000; guard++) {
		size_t n = strcspn(line, "\n");
		char *l = xstrndup(line, n);
		line += n + (line[n] == '\n');
		char *f[4] = { 0 }, *save = NULL;
		int nf = 0;
		for (char *t = strtok_r(l, " \t\r", &save); t && nf < 4; t = strtok_r(NULL,
		    " \t\r", &save))
			f[nf++] = t;
		bool revoked = nf > 0 && !strcmp(f[0], "@revoked");
		bool ca = nf > 0 && !strcmp(f[0], "@cert-authority");
		char **e = revoked || ca ? f + 1 : f;
		int ne = revoked || ca ? nf - 1 : nf;
		if (ne < 3 || e[0][0] == '#' || ca || !host_matches(e[0], strlen(e[0]), pattern)) {
			free(l);
			continue;
		}
		unsigned char *blob = xmalloc(strlen(e[2]) + 4);
		size_t bl = b64_decode(e[2], strlen(e[2]), blob);
		bool same = bl == klen && !memcmp(blob, key, klen);
		free(blob);
		free(l);
		if (same && revoked) {
			snprintf(msg, mlen, "host key verification failed: the ssh host key of %s "
			    "(%s) is marked @revoked in known_hosts", pattern, fp);
			return -1;
		}
		if (same)
			ok = true;	/* unless a later line revokes it */
		seen = true;
	}
	if (ok)
		return 0;
	if (seen)
		snprintf(msg, mlen, "host key verification failed: the ssh host key of %s (%s) "
		    "does not match the one known_hosts has for it (knownhosts: key mismatch): "
		    "the server's key changed, or another machine answers; correct known_hosts "
		    "if the change is expected", pattern, fp);
	else
		snprintf(msg, mlen, "host key verification failed: %s is not in known_hosts "
		    "(knownhosts: key is unknown); add its key (%s) to the repository Secret's "
		    "sshKnownHosts or the ConfigMap " APP_KNOWN_HOSTS_CM, pattern, fp);
	return -1;
}

/* ssh: the host key must be in known_hosts; TLS: libgit2's own check
 * (the system's CAs), skipped only for a repository whose Secret says
 * insecure: "true" (Argo CD's field, for a self-signed server). */
static int
cert_cb(git_cert *cert, int valid, const char *host, void *payload)
{
	struct cred_state *s = payload;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
		return valid || (s->c && s->c->insecure) ? 0 : GIT_PASSTHROUGH;
	const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
	char msg[512];
	if (!(hk->type & GIT_CERT_SSH_RAW)) {
		git_error_set_str(GIT_ERROR_SSH, "host key verification failed: no raw host key");
		return -1;
	}
	if (git_known_host_check(s->c ? s->c->known_hosts : NULL, host, s->port,
	    (const unsigned char *)hk->hostkey, hk->hostkey_len, msg, sizeof msg) < 0) {
		git_error_set_str(GIT_ERROR_SSH, msg);
		return -1;
	}
	return 0;
}

static char *
git_errmsg(const char *what)
{
	const git_error *e = git_error_last();
	return xasprintf("%s: %s", what, e && e->message ? e->message : "unknown error");
}

/* The clone's directory: cache/repos/SHA256(url)[0:16]. */
static char *
repo_dir(const char *cache, const char *url)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)url, strlen(url), md);
	char hex[17];
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return xasprintf("%s/repos/%s", cache, hex);
}

/* The clone and an anonymous remote for url, without url.*.insteadOf
 * rewriting: nothing is read from or written to the clone's config
 * (libgit2 1.5's regexp config lookups leak a PCRE2 match block each,
 * fixed upstream in 1.6); the fetch's refspecs say where everything goes. */
static int
open_clone(const char *dir, const char *url, git_repository **repo, git_remote **remote)
{
	if (git_repository_open_bare(repo, dir) < 0 &&
	    git_repository_init(repo, dir, 1) < 0)
		return -1;
	git_remote_create_options o;
	git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = *repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(remote, url, &o);
}

static int
do_fetch(git_remote *remote, const char *url, const struct git_creds *creds, git_oid *head,
    bool *has_head)
{
	struct cred_state cs = { creds, 0, url_port(url), NULL };
	git_fetch_options fo;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.callbacks.credentials = cred_cb;
	fo.callbacks.certificate_check = cert_cb;
	fo.callbacks.payload = &cs;
	fo.prune = GIT_FETCH_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
	char *specs[] = { (char *)"+refs/heads/*:refs/remotes/origin/*",
		(char *)"+refs/tags/*:refs/tags/*" };
	git_strarray refspecs = { specs, 2 };
	if (git_remote_fetch(remote, &refspecs, &fo, "fetch") < 0)
		return -1;
	const git_remote_head **heads;
	size_t n;
	*has_head = false;
	if (git_remote_ls(&heads, &n, remote) == 0)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(heads[i]->name, "HEAD")) {
				git_oid_cpy(head, &heads[i]->oid);
				*has_head = true;
			}
	return 0;
}

static bool
is_hex(const char *s)
{
	size_t n = strlen(s);
	if (n < 4 || n > 40)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF", *s))
			return false;
	return true;
}

/* rev -> the commit, as Argo CD resolves targetRevision. */
static int
resolve(git_repository *repo, const char *rev, const git_oid *head, bool has_head,
    git_commit **out)
{
	git_object *o = NULL;
	if (!*rev || !strcmp(rev, "HEAD")) {
		if (!has_head)
			return -1;
		return git_commit_lookup(out, repo, head);
	}
	char ref[512];
	static const char *const forms[] = { "refs/remotes/origin/", "refs/tags/", "" };
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		if (i == 2 && !is_hex(rev))
			break;
		snprintf(ref, sizeof ref, "%s%s", forms[i], rev);
		if (git_revparse_single(&o, repo, ref) < 0)
			continue;
		git_object *c = NULL;
		int rc = git_object_peel(&c, o, GIT_OBJECT_COMMIT);
		git_object_free(o);
		if (rc == 0) {
			*out = (git_commit *)c;
			return 0;
		}
	}
	return -1;
}

static int
mkdirs(const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0700);
			*s = '/';
		}
	int rc = mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
	free(p);
	return rc;
}

/* git_checkout keeps 16 trees and prunes those unused for 10 minutes: the
 * age keeps a tree another Application is still rendering (renders run
 * after git_checkout returns, outside the lock). */
#define TREES_KEEP	16
#define TREES_MIN_AGE_S	600

struct tree_age {
	char *path;
	time_t mtime;
};

static int
by_age(const void *a, const void *b)
{
	const struct tree_age *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

void
git_prune_trees(const char *trees, size_t keep, int64_t min_age_s)
{
	DIR *d = opendir(trees);
	struct dirent *e;
	struct tree_age *v = NULL;
	size_t n = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && n < 100000) {
		struct stat st;
		if (strlen(e->d_name) != 40 || strspn(e->d_name, "0123456789abcdef") != 40)
			continue;	/* SHAs only: not the .tmp of a checkout */
		char *p = xasprintf("%s/%s", trees, e->d_name);
		if (stat(p, &st) < 0) {
			free(p);
			continue;
		}
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = (struct tree_age){ p, st.st_mtime };
	}
	closedir(d);
	qsort(v, n, sizeof *v, by_age);
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		if (n - i > keep && now - v[i].mtime >= min_age_s &&
		    util_remove_tree(v[i].path) == 0)
			log_info("gitops", "removed the checked-out tree %s (unused)", v[i].path);
		free(v[i].path);
	}
	free(v);
}

static int
checkout(git_repository *repo, git_commit *commit, const char *tree_dir)
{
	struct stat st;
	if (stat(tree_dir, &st) == 0) {
		utimes(tree_dir, NULL);		/* used now: not pruned */
		return 0;
	}
	char *tmp = xasprintf("%s.tmp%d", tree_dir, (int)getpid());
	git_tree *tree = NULL;
	int rc = -1;
	if (mkdirs(tmp) < 0 || git_commit_tree(&tree, commit) < 0)
		goto fail;
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = tmp;
	if (git_checkout_tree(repo, (git_object *)tree, &co) < 0)
		goto fail;
	rc = rename(tmp, tree_dir) < 0 ? -1 : 0;
fail:
	git_tree_free(tree);
	if (rc < 0)
		util_remove_tree(tmp);
	free(tmp);
	return rc;
}

int
git_checkout(const char *cache_dir, const char *url, const char *rev,
    const struct git_creds *creds, char sha[41], char **tree, char **err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_commit *commit = NULL;
	git_oid head;
	bool has_head = false;
	int rc = -EIO;
	*tree = NULL;
	*err = NULL;
	pthread_mutex_lock(&git_lock);
	git_libgit2_init();
	char *dir = repo_dir(cache_dir, url);
	if (mkdirs(cache_dir) < 0 || open_clone(dir, url, &repo, &remote) < 0) {
		*err = git_errmsg("cannot open the repository cache");
		goto out;
	}
	if (do_fetch(remote, url, creds, &head, &has_head) < 0) {
		*err = git_errmsg("failed to fetch");
		goto out;
	}
	if (resolve(repo, rev ? rev : "", &head, has_head, &commit) < 0) {
		*err = xasprintf("unable to resolve '%s' to a commit SHA", rev && *rev ? rev
		    : "HEAD");
		rc = -ENOENT;
		goto out;
	}
	git_oid_tostr(sha, 41, git_commit_id(commit));
	char *trees = xasprintf("%s/trees", cache_dir);
	mkdirs(trees);
	*tree = xasprintf("%s/%s", trees, sha);
	free(trees);
	if (checkout(repo, commit, *tree) < 0) {
		*err = git_errmsg("failed to check out");
		free(*tree);
		*tree = NULL;
		goto out;
	}
	char *tdir = xasprintf("%s/trees", cache_dir);
	git_prune_trees(tdir, TREES_KEEP, TREES_MIN_AGE_S);
	free(tdir);
	rc = 0;
out:
	git_commit_free(commit);
	git_remote_free(remote);
	git_repository_free(repo);
	git_libgit2_shutdown();
	pthread_mutex_unlock(&git_lock);
	free(dir);
	return rc;
}

/* ---- writing: a commit on a branch, pushed (v6 promote through git) ---- */

static int
push_ref_cb(const char *ref, const char *status, void *payload)
{
	struct cred_state *s = payload;
	(void)ref;
	if (status && !s->refused)
		s->refused = xstrdup(status);
	return 0;
}

/* The author: $GIT_AUTHOR_NAME / $GIT_AUTHOR_EMAIL as git reads them, else
 * "v6 <v6@localhost>". */
static int
author(git_signature **out)
{
	const char *n = getenv("GIT_AUTHOR_NAME"), *e = getenv("GIT_AUTHOR_EMAIL");
	return git_signature_now(out, n && *n ? n : "v6", e && *e ? e : "v6@localhost");
}

int
git_commit_push(const char *cache_dir, const char *url, const char *branch,
    const struct git_creds *creds, const char parent_sha[41],
    const struct git_file *files, size_t nfiles, const char *message, char sha[41],
    char **err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_commit *parent = NULL;
	git_tree *ptree = NULL, *ntree = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	git_oid poid, toid, coid;
	git_tree_update *up = xcalloc(nfiles ? nfiles : 1, sizeof *up);
	struct cred_state cs = { creds, 0, url_port(url), NULL };
	int rc = -EIO;
	*err = NULL;
	pthread_mutex_lock(&git_lock);
	git_libgit2_init();
	char *dir = repo_dir(cache_dir, url), *spec = NULL;
	if (open_clone(dir, url, &repo, &remote) < 0 || git_oid_fromstr(&poid, parent_sha) < 0 ||
	    git_commit_lookup(&parent, repo, &poid) < 0 || git_commit_tree(&ptree, parent) < 0) {
		*err = git_errmsg("cannot open the checked-out commit");
		goto out;
	}
	/* only a branch takes a commit, and only from where it is now */
	char *rref = xasprintf("refs/remotes/origin/%s", branch);
	git_oid boid;
	int brc = git_reference_name_to_id(&boid, repo, rref);
	free(rref);
	if (brc < 0) {
		*err = xasprintf("%s is not a branch of %s", branch, url);
		rc = -EINVAL;
		goto out;
	}
	if (!git_oid_equal(&boid, &poid)) {
		*err = xasprintf("the branch %s moved meanwhile", branch);
		rc = -EAGAIN;
		goto out;
	}
	for (size_t i = 0; i < nfiles; i++) {
		up[i].action = GIT_TREE_UPDATE_UPSERT;
		up[i].filemode = GIT_FILEMODE_BLOB;
		up[i].path = files[i].path;
		if (git_blob_create_from_buffer(&up[i].id, repo, files[i].data, files[i].len) < 0) {
			*err = git_errmsg("cannot write a blob");
			goto out;
		}
	}
	const git_commit *parents[] = { parent };
	if (git_tree_create_updated(&toid, repo, ptree, nfiles, up) < 0 ||
	    git_tree_lookup(&ntree, repo, &toid) < 0 || author(&sig) < 0 ||
	    git_commit_create(&coid, repo, NULL, sig, sig, NULL, message, ntree, 1,
	    parents) < 0) {
		*err = git_errmsg("cannot make the commit");
		goto out;
	}
	/* a local branch to push from; the remote's branch is the target */
	if (git_reference_create(&ref, repo, "refs/heads/v6-promote", &coid, 1, NULL) < 0) {
		*err = git_errmsg("cannot make the commit");
		goto out;
	}
	spec = xasprintf("refs/heads/v6-promote:refs/heads/%s", branch);
	char *specs[] = { spec };
	git_strarray refspecs = { specs, 1 };
	git_push_options po;
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	po.callbacks.credentials = cred_cb;
	po.callbacks.certificate_check = cert_cb;
	po.callbacks.push_update_reference = push_ref_cb;
	po.callbacks.payload = &cs;
	if (git_remote_push(remote, &refspecs, &po) < 0) {
		*err = git_errmsg("failed to push");
		goto out;
	}
	if (cs.refused) {
		*err = xasprintf("the push to %s was refused: %s", branch, cs.refused);
		rc = -EAGAIN;
		goto out;
	}
	git_oid_tostr(sha, 41, &coid);
	rc = 0;
out:
	free(cs.refused);
	free(spec);
	free(up);
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(ntree);
	git_tree_free(ptree);
	git_commit_free(parent);
	git_remote_free(remote);
	git_repository_free(repo);
	git_libgit2_shutdown();
	pthread_mutex_unlock(&git_lock);
	free(dir);
	return rc;
}
