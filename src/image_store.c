/* image_store.c — the node's content-addressed image store (DATA/node/images):
 * blobs/sha256/HEX (manifests, configs, compressed layers, each verified
 * before it lands), layers/sha256/HEX (each layer unpacked once, read-only,
 * shared), images.json (ref -> manifest digest, written last and atomically:
 * an image is visible only once complete). Everything is written under tmp/
 * and renamed into place. Owns img_lookup / img_ensure / list / remove;
 * pulls and imports run on libuv's thread pool. */
#include "image_int.h"
#include "log.h"
#include "node_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_FILE "images.json"

struct img_job;
struct ensure;

struct img_store {
	uv_loop_t *loop;
	char *dir;
	uv_mutex_t mu;		/* index, pulls, sweep_pending, insecure */
	json_t *index;		/* {"REF": {"digest", "repoDigest", "pulled"}} */
	json_t *last_used;	/* {"REF": ms}: in memory only (no write per start) */
	json_t *uses;		/* {"REF": stamp}: the store's use_seq at the last lookup */
	json_int_t use_seq;	/* bumped by every lookup: a removal decided on the
				 * loop checks on the pool that no lookup came since */
	int pulls;		/* pulls / imports in flight */
	bool sweep_pending;	/* a removal left blobs for when no pull runs */
	char **insecure;	/* --insecure-registry HOST:PORT, NULL-terminated */
	size_t ninsecure;
	char *certs_dir;	/* --registry-certs-dir: DIR/HOST:PORT/ca.crt ... */
	struct img_job *jobs;	/* on the thread pool, for img_cancel and close */
	struct ensure *ensures;	/* img_ensure requests in flight or waiting */
	int running;		/* of them on the pool (IMG_MAX_PULLS at most) */
	uint64_t tmp_seq;
	img_in_use_fn in_use;	/* the agent's, for removal and GC */
	void *in_use_arg;
	bool closing;
};

/* ---- paths and digests -------------------------------------------------- */

static const char *
hex_of(const char *digest)
{
	return digest + strlen("sha256:");
}

char *
img__blob_path(const struct img_store *s, const char *digest)
{
	return xasprintf("%s/blobs/sha256/%s", s->dir, hex_of(digest));
}

char *
img__layer_path(const struct img_store *s, const char *digest)
{
	return xasprintf("%s/layers/sha256/%s", s->dir, hex_of(digest));
}

char *
img__tmp_path(const struct img_store *s, const char *what)
{
	struct img_store *m = (struct img_store *)s;
	uint64_t n = __atomic_add_fetch(&m->tmp_seq, 1, __ATOMIC_RELAXED);
	return xasprintf("%s/tmp/%s-%d-%llu", s->dir, what, (int)getpid(),
	    (unsigned long long)n);
}

static void
digest_hex(const unsigned char *md, char *out)
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 64] = '\0';
}

void
img__digest_final(EVP_MD_CTX *ctx, char *out)
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(ctx, md, &len);
	digest_hex(md, out);
}

void
img__digest_bytes(const void *p, size_t n, char *out)
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	digest_hex(md, out);
}

int
img__file_digest(const char *path, char *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	int rc = n < 0 ? -errno : 0;
	img__digest_final(ctx, out);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}

bool
img__blob_present(const struct img_store *s, const char *digest)
{
	char *p = img__blob_path(s, digest);
	bool ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

int
img__blob_commit(struct img_store *s, const char *tmp, const char *digest, char **msg)
{
	char got[80];
	int rc = img__file_digest(tmp, got);

	if (rc == 0 && strcmp(got, digest) != 0) {
		*msg = xasprintf("digest mismatch for blob %s: the content has %s", digest, got);
		rc = -EBADMSG;
	} else if (rc < 0) {
		*msg = xasprintf("cannot read blob %s: %s", digest, strerror(-rc));
	}
	if (rc == 0) {
		char *dst = img__blob_path(s, digest);
		if (rename(tmp, dst) < 0) {
			rc = -errno;
			*msg = xasprintf("cannot store blob %s: %s", digest, strerror(errno));
		}
		free(dst);
	}
	unlink(tmp);
	return rc;
}

/* ---- the index ---------------------------------------------------------- */

/* Called with s->mu held. */
static int
index_save(struct img_store *s)
{
	char *path = xasprintf("%s/%s", s->dir, INDEX_FILE);
	char *data = json_dumps(s->index, JSON_SORT_KEYS | JSON_INDENT(1));
	int rc = file_write_atomic(path, data, strlen(data), true);
	free(data);
	free(path);
	return rc;
}

static void
index_load(struct img_store *s)
{
	char *path = xasprintf("%s/%s", s->dir, INDEX_FILE);
	json_error_t jerr;
	s->index = json_load_file(path, 0, &jerr);
	if (!json_is_object(s->index)) {
		if (access(path, F_OK) == 0)
			log_warn("image", "%s is unreadable (%s): starting with no images",
			    path, jerr.text);
		json_decref(s->index);
		s->index = json_object();
	}
	free(path);
}

/* ---- manifests, configs, layers ----------------------------------------- */

static json_t *
blob_json(const struct img_store *s, const char *digest)
{
	if (!img_digest_valid(digest))
		return NULL;
	char *p = img__blob_path(s, digest);
	json_t *j = json_load_file(p, 0, NULL);
	free(p);
	return j;
}

static const char *
desc_digest(const json_t *desc)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	return img_digest_valid(d) ? d : NULL;
}

/* Makes layer digest present: unpacked from its blob into tmp/, then
 * renamed into layers/ (another thread may have won the race: fine). */
static int
layer_ensure(struct img_store *s, const char *digest, char **msg)
{
	char *dst = img__layer_path(s, digest);
	int rc = 0;

	if (access(dst, F_OK) == 0) {
		free(dst);
		return 0;
	}
	char *blob = img__blob_path(s, digest);
	char *tmp = img__tmp_path(s, "layer");
	if (mkdir(tmp, 0755) < 0 || chmod(tmp, 0755) < 0) {	/* the rootfs' "/" */
		rc = -errno;
		*msg = xasprintf("cannot create %s: %s", tmp, strerror(errno));
	}
	int64_t t0 = time_mono_ms();
	if (rc == 0)
		rc = img__unpack_file(blob, tmp, true, msg);
	if (rc == 0 && rename(tmp, dst) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		rc = -errno;
		*msg = xasprintf("cannot store layer %s: %s", digest, strerror(errno));
	}
	if (rc == 0)
		log_debug("image", "layer %s unpacked in %lld ms", digest,
		    (long long)(time_mono_ms() - t0));
	util_remove_tree(tmp);
	free(tmp);
	free(blob);
	free(dst);
	return rc;
}

static int
blob_ensure(struct img_store *s, const char *digest, const struct img_source *src,
    char **msg)
{
	if (img__blob_present(s, digest))
		return 0;
	if (!src) {
		*msg = xasprintf("blob %s is missing", digest);
		return -ENOENT;
	}
	char *tmp = img__tmp_path(s, "blob");
	int rc = src->fetch(src->arg, digest, tmp, msg);
	if (rc == 0)
		rc = img__blob_commit(s, tmp, digest, msg);
	unlink(tmp);
	free(tmp);
	return rc;
}

/* A missing layer fetched and unpacked in one pass (src->fetch_unpack):
 * blob and directory both land in tmp/ and are renamed into place only
 * once the blob's digest checked. -EAGAIN: use the two-step way. */
static int
layer_stream(struct img_store *s, const char *digest, const struct img_source *src,
    char **msg)
{
	char *dst = img__layer_path(s, digest);
	int rc = -EAGAIN;

	if (access(dst, F_OK) == 0 || img__blob_present(s, digest)) {
		free(dst);
		return -EAGAIN;
	}
	char *blob = img__tmp_path(s, "blob");
	char *dir = img__tmp_path(s, "layer");
	int64_t t0 = time_mono_ms();
	if (mkdir(dir, 0755) == 0 && chmod(dir, 0755) == 0)	/* the rootfs' "/" */
		rc = src->fetch_unpack(src->arg, digest, blob, dir, msg);
	if (rc == 0)
		rc = img__blob_commit(s, blob, digest, msg);
	if (rc == 0 && rename(dir, dst) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		rc = -errno;
		*msg = xasprintf("cannot store layer %s: %s", digest, strerror(errno));
	}
	if (rc == 0)
		log_debug("image", "layer %s fetched and unpacked in %lld ms", digest,
		    (long long)(time_mono_ms() - t0));
	if (rc == -EAGAIN) {
		free(*msg);
		*msg = NULL;
	}
	unlink(blob);
	util_remove_tree(dir);
	free(blob);
	free(dir);
	free(dst);
	return rc;
}

/* Layer digest present: fetched and unpacked in one pass when the source
 * can, else its blob fetched (if missing), then unpacked (if not yet). */
static int
layer_present(struct img_store *s, const char *digest, const struct img_source *src,
    char **msg)
{
	int rc = src && src->fetch_unpack ? layer_stream(s, digest, src, msg) : -EAGAIN;
	if (rc == -EAGAIN)
		rc = blob_ensure(s, digest, src, msg);
	if (rc == 0)
		rc = layer_ensure(s, digest, msg);
	return rc;
}

/* Layers made present at once, as containerd's default of 3 concurrent
 * downloads: a pull waits for one round trip per layer no more (each
 * blob's GET, its digest check and its unpack run in its thread). */
#define IMG_LAYER_JOBS 3

/* The layers of one pull shared by its threads: each takes the next one
 * not taken; the first failure in manifest order is the pull's. */
struct layer_jobs {
	struct img_store *s;
	const char **digests;	/* distinct, in manifest order */
	size_t n, next;
	uv_mutex_t mu;
	int rc;
	size_t failed;		/* the index of rc's layer */
	char *msg;
};

struct layer_thread {
	struct layer_jobs *j;
	struct img_source src;	/* with this thread's arg */
	const struct img_source *use;	/* &src, or NULL: no source */
	uv_thread_t tid;
};

static void
layer_thread_run(void *arg)
{
	struct layer_thread *t = arg;
	struct layer_jobs *j = t->j;
	for (;;) {
		uv_mutex_lock(&j->mu);
		size_t i = j->next;
		bool stop = j->rc < 0 || i >= j->n;	/* a failure: no more starts */
		j->next += stop ? 0 : 1;
		uv_mutex_unlock(&j->mu);
		if (stop)
			return;
		char *msg = NULL;
		int rc = layer_present(j->s, j->digests[i], t->use, &msg);
		uv_mutex_lock(&j->mu);
		if (rc < 0 && (j->rc == 0 || i < j->failed)) {
			free(j->msg);
			j->msg = msg;
			msg = NULL;
			j->rc = rc;
			j->failed = i;
		}
		uv_mutex_unlock(&j->mu);
		free(msg);
	}
}

/* Every layer of the manifest's list present: up to IMG_LAYER_JOBS at a
 * time when src can be cloned (this thread and helpers joined before the
 * return), else one after the other. A layer listed twice is made once. */
static int
layers_ensure(struct img_store *s, const json_t *layers, const struct img_source *src,
    char **msg)
{
	struct layer_jobs j = { .s = s };
	struct layer_thread t[IMG_LAYER_JOBS];
	size_t i, k, nt = 1;
	const json_t *l;
	j.digests = xcalloc(json_array_size(layers) + 1, sizeof *j.digests);
	json_array_foreach(layers, i, l) {
		const char *d = desc_digest(l);
		for (k = 0; k < j.n && strcmp(j.digests[k], d); k++)
			;
		if (k == j.n)
			j.digests[j.n++] = d;
	}
	uv_mutex_init(&j.mu);
	memset(t, 0, sizeof t);
	t[0].j = &j;
	if (src) {
		t[0].src = *src;
		t[0].use = &t[0].src;
	}
	for (; src && src->clone && nt < IMG_LAYER_JOBS && nt < j.n; nt++) {
		t[nt] = t[0];
		t[nt].use = &t[nt].src;
		t[nt].src.arg = src->clone(src->arg);
		if (uv_thread_create(&t[nt].tid, layer_thread_run, &t[nt]) < 0) {
			src->release(t[nt].src.arg);
			break;		/* fewer helpers: the same work */
		}
	}
	layer_thread_run(&t[0]);
	for (k = 1; k < nt; k++) {
		uv_thread_join(&t[k].tid);
		src->release(t[k].src.arg);
	}
	uv_mutex_destroy(&j.mu);
	free(j.digests);
	if (j.rc < 0)
		*msg = j.msg;
	return j.rc;
}

char *
img_size_violation(int64_t size, int64_t max)
{
	return xasprintf("image policy rule max-image-size: the image is %lld bytes "
	    "(compressed layers and config), more than the namespace's limit of %lld bytes",
	    (long long)size, (long long)max);
}

/* ref is about to name the image of manifest digest: the image it named
 * until now (a tag pushed again) stays as REGISTRY/REPO@REPODIGEST, as
 * Docker keeps it untagged (<none>): the pods running it keep their layers
 * (its key is their imageID, which the in-use check protects) until the
 * GC or `v6 image rm` takes it. s->mu held. */
static void
keep_untagged_locked(struct img_store *s, const char *ref, const char *digest)
{
	const json_t *e = json_object_get(s->index, ref);
	const char *was = json_string_value(json_object_get(e, "digest"));
	const char *rd = json_string_value(json_object_get(e, "repoDigest"));
	struct img_ref r;
	char *msg = NULL;

	if (!was || !rd || !strcmp(was, digest) || img_ref_parse(ref, &r, &msg) < 0) {
		free(msg);
		return;
	}
	char *key = xasprintf("%s/%s@%s", r.registry, r.repo, rd);
	if (strcmp(key, ref) != 0 && !json_object_get(s->index, key))
		json_object_set_new(s->index, key, json_deep_copy(e));
	free(key);
	img_ref_free(&r);
}

int
img__store_put(struct img_store *s, const char *ref, const char *manifest, size_t len,
    const char *repo_digest, const struct img_source *src, char **msg)
{
	char digest[80];
	json_t *m = json_loadb(manifest, len, 0, NULL);
	const json_t *layers = json_object_get(m, "layers"), *l;
	const char *cfg = desc_digest(json_object_get(m, "config"));
	size_t i;
	int rc = 0;

	if (!cfg || !json_is_array(layers)) {
		json_decref(m);
		*msg = xasprintf("the manifest of %s has no config or layers", ref);
		return -EPROTO;
	}
	if (src && src->max_bytes > 0) {
		/* before any blob is fetched: the sizes the manifest declares */
		int64_t size = json_integer_value(json_object_get(json_object_get(m, "config"),
		    "size"));
		json_array_foreach(layers, i, l)
			size += json_integer_value(json_object_get(l, "size"));
		if (size > src->max_bytes) {
			json_decref(m);
			*msg = img_size_violation(size, src->max_bytes);
			return -EFBIG;
		}
	}
	img__digest_bytes(manifest, len, digest);
	char *tmp = img__tmp_path(s, "manifest");
	rc = file_write_atomic(tmp, manifest, len, false);
	if (rc == 0)
		rc = img__blob_commit(s, tmp, digest, msg);
	free(tmp);
	if (rc == 0)
		rc = blob_ensure(s, cfg, src, msg);
	json_array_foreach(layers, i, l) {
		if (rc == 0 && !desc_digest(l)) {
			*msg = xasprintf("layer %zu of %s has no valid digest", i, ref);
			rc = -EPROTO;
		}
	}
	if (rc == 0)
		rc = layers_ensure(s, layers, src, msg);
	json_decref(m);
	if (rc < 0)
		return rc;
	/* Blobs and layers reach the disk before the index names them: one
	 * syncfs for all of them rather than an fsync per file. */
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		syncfs(dfd);
		close(dfd);
	}
	uv_mutex_lock(&s->mu);
	char ts[32];
	time_format_rfc3339(time(NULL), ts);
	keep_untagged_locked(s, ref, digest);
	json_object_set_new(s->index, ref, json_pack("{s:s, s:s, s:s}", "digest", digest,
	    "repoDigest", repo_digest ? repo_digest : digest, "pulled", ts));
	rc = index_save(s);
	uv_mutex_unlock(&s->mu);
	if (rc < 0)
		*msg = xasprintf("cannot write the image index: %s", strerror(-rc));
	return rc;
}

void
img__pull_begin(struct img_store *s)
{
	uv_mutex_lock(&s->mu);
	s->pulls++;
	uv_mutex_unlock(&s->mu);
}

static void sweep_locked(struct img_store *s);

void
img__pull_end(struct img_store *s)
{
	uv_mutex_lock(&s->mu);
	if (--s->pulls == 0 && s->sweep_pending)
		sweep_locked(s);
	uv_mutex_unlock(&s->mu);
}

char *const *
img__insecure(const struct img_store *s)
{
	return s->insecure;
}

/* ---- lookup ------------------------------------------------------------- */

static char **
strv_from(const json_t *a)
{
	if (!json_is_array(a))
		return NULL;
	char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(a, i, e)
		if (json_is_string(e))
			v[n++] = xstrdup(json_string_value(e));
	return v;
}

static void
strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void
img_info_free(struct img_info *info)
{
	if (!info)
		return;
	free(info->ref);
	free(info->digest);
	free(info->image_id);
	strv_free(info->layers);
	strv_free(info->config.entrypoint);
	strv_free(info->config.cmd);
	strv_free(info->config.env);
	free(info->config.working_dir);
	free(info->config.user);
	free(info);
}

static const char *
cfg_str(const json_t *c, const char *key)
{
	const char *v = json_string_value(json_object_get(c, key));
	return v ? v : "";
}

/* The image of index entry e (key ref), if all its parts are on disk. */
static int
info_build(const struct img_store *s, const char *ref, const json_t *e,
    struct img_info **out)
{
	const char *digest = json_string_value(json_object_get(e, "digest"));
	const char *repo_digest = json_string_value(json_object_get(e, "repoDigest"));
	json_t *m = blob_json(s, digest), *c = NULL;
	const json_t *layers = json_object_get(m, "layers"), *l;
	struct img_info *info = NULL;
	struct img_ref r;
	char *msg = NULL;
	size_t i;
	int rc = -ENOENT;

	if (img_ref_parse(ref, &r, &msg) < 0 || !m || !json_is_array(layers) ||
	    !(c = blob_json(s, desc_digest(json_object_get(m, "config")))))
		goto out;
	info = xcalloc(1, sizeof *info);
	info->ref = xstrdup(ref);
	info->digest = xstrdup(digest);
	info->image_id = xasprintf("%s/%s@%s", r.registry, r.repo,
	    repo_digest ? repo_digest : digest);
	info->layers = xcalloc(json_array_size(layers) + 1, sizeof(char *));
	info->size = json_integer_value(json_object_get(json_object_get(m, "config"), "size"));
	json_array_foreach(layers, i, l) {
		const char *d = desc_digest(l);
		if (!d)
			goto out;
		info->layers[info->n_layers] = img__layer_path(s, d);
		if (access(info->layers[info->n_layers++], F_OK) < 0)
			goto out;
		info->size += json_integer_value(json_object_get(l, "size"));
	}
	const json_t *cc = json_object_get(c, "config");
	info->config.entrypoint = strv_from(json_object_get(cc, "Entrypoint"));
	info->config.cmd = strv_from(json_object_get(cc, "Cmd"));
	info->config.env = strv_from(json_object_get(cc, "Env"));
	info->config.working_dir = xstrdup(cfg_str(cc, "WorkingDir"));
	info->config.user = xstrdup(cfg_str(cc, "User"));
	rc = 0;
out:
	if (rc < 0) {
		img_info_free(info);
		info = NULL;
	}
	*out = info;
	free(msg);
	img_ref_free(&r);
	json_decref(m);
	json_decref(c);
	return rc;
}

/* The index key for ref: its normalised form, or for a digest reference
 * any image of that repository with that digest. Called with s->mu held. */
static const char *
index_find(struct img_store *s, const char *ref, char **msg)
{
	struct img_ref r;
	const char *key, *found = NULL;
	json_t *e;

	if (img_ref_parse(ref, &r, msg) < 0)
		return NULL;
	char *norm = img_ref_string(&r);
	if (json_object_get(s->index, norm))
		found = json_object_iter_key(json_object_iter_at(s->index, norm));
	else if (r.digest) {
		char *prefix = xasprintf("%s/%s", r.registry, r.repo);
		json_object_foreach(s->index, key, e) {
			const char *d = json_string_value(json_object_get(e, "digest"));
			const char *rd = json_string_value(json_object_get(e, "repoDigest"));
			size_t pl = strlen(prefix);
			if (strncmp(key, prefix, pl) == 0 && strchr(":@", key[pl]) &&
			    ((d && !strcmp(d, r.digest)) || (rd && !strcmp(rd, r.digest))))
				found = key;
		}
		free(prefix);
	}
	free(norm);
	img_ref_free(&r);
	return found;
}

int
img_lookup(struct img_store *s, const char *ref, struct img_info **out)
{
	char *msg = NULL;
	int rc = -ENOENT;

	*out = NULL;
	uv_mutex_lock(&s->mu);
	const char *key = index_find(s, ref, &msg);
	if (key)
		rc = info_build(s, key, json_object_get(s->index, key), out);
	if (rc == 0) {
		json_object_set_new(s->last_used, key, json_integer(time_now_ms()));
		json_object_set_new(s->uses, key, json_integer(++s->use_seq));
	}
	uv_mutex_unlock(&s->mu);
	free(msg);
	return rc;
}

/* ---- list, remove, sweep ------------------------------------------------ */

/* The images, each with lastUsedMs (the last lookup, else the pull). */
static json_t *
list_build(struct img_store *s)
{
	json_t *items = json_array(), *e;
	const char *key;

	uv_mutex_lock(&s->mu);
	json_object_foreach(s->index, key, e) {
		struct img_info *info;
		const char *pulled = json_string_value(json_object_get(e, "pulled")) ?: "";
		time_t t = 0;
		if (info_build(s, key, e, &info) < 0)
			continue;
		json_int_t used = json_integer_value(json_object_get(s->last_used, key));
		if (!used && time_parse_rfc3339(pulled, &t) == 0)
			used = (json_int_t)t * 1000;
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I}",
		    "ref", key, "digest", info->digest, "imageID", info->image_id, "size",
		    (json_int_t)info->size, "pulled", pulled, "lastUsedMs", used, "useStamp",
		    json_integer_value(json_object_get(s->uses, key))));
		img_info_free(info);
	}
	uv_mutex_unlock(&s->mu);
	return items;
}

json_t *
img_list(struct img_store *s)
{
	json_t *items = list_build(s), *it;
	size_t i;
	json_array_foreach(items, i, it) {
		char ts[32];
		time_format_rfc3339((time_t)(json_integer_value(json_object_get(it,
		    "lastUsedMs")) / 1000), ts);
		json_object_del(it, "lastUsedMs");
		json_object_del(it, "useStamp");
		json_object_set_new(it, "lastUsed", json_string(ts));
	}
	return items;
}

json_t *
img__list_used(struct img_store *s)
{
	return list_build(s);
}

/* Adds every digest an image of the index needs to keep. */
static void
keep_add(const struct img_store *s, json_t *keep, const char *digest)
{
	json_t *m = blob_json(s, digest), *l;
	size_t i;

	json_object_set_new(keep, digest, json_true());
	const char *cfg = desc_digest(json_object_get(m, "config"));
	if (cfg)
		json_object_set_new(keep, cfg, json_true());
	json_array_foreach(json_object_get(m, "layers"), i, l)
		if (desc_digest(l))
			json_object_set_new(keep, desc_digest(l), json_true());
	json_decref(m);
}

static void
sweep_dir(const struct img_store *s, const char *sub, const json_t *keep)
{
	char *dir = xasprintf("%s/%s/sha256", s->dir, sub);
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char digest[80];
		if (de->d_name[0] == '.' || strlen(de->d_name) != 64)
			continue;
		snprintf(digest, sizeof digest, "sha256:%s", de->d_name);
		if (json_object_get(keep, digest))
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		/* A layer leaves through tmp/ so it never looks half there. */
		char *t = img__tmp_path(s, "gone");
		if (rename(p, t) == 0)
			util_remove_tree(t);
		free(t);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
}

/* Removes blobs and layers no image of the index refers to. s->mu held. */
static void
sweep_locked(struct img_store *s)
{
	json_t *keep = json_object(), *e;
	const char *key;

	if (s->pulls > 0) {
		s->sweep_pending = true;
		return;
	}
	s->sweep_pending = false;
	json_object_foreach(s->index, key, e)
		keep_add(s, keep, json_string_value(json_object_get(e, "digest")));
	sweep_dir(s, "layers", keep);
	sweep_dir(s, "blobs", keep);
	json_decref(keep);
}

json_int_t
img__use_stamp(struct img_store *s, const char *ref)
{
	char *msg = NULL;
	uv_mutex_lock(&s->mu);
	const char *key = index_find(s, ref, &msg);
	json_int_t stamp = key ? json_integer_value(json_object_get(s->uses, key)) : 0;
	uv_mutex_unlock(&s->mu);
	free(msg);
	return stamp;
}

int
img__remove_unused(struct img_store *s, const char *ref, json_int_t stamp, char **removed,
    char **msg)
{
	int rc = -ENOENT;

	*removed = NULL;
	uv_mutex_lock(&s->mu);
	const char *key = index_find(s, ref, msg);
	if (key && stamp >= 0 && json_integer_value(json_object_get(s->uses, key)) != stamp) {
		/* a pod looked it up since the removal was decided: it is starting */
		*msg = xasprintf("image \"%s\" came into use while it was being removed", key);
		rc = -EBUSY;
	} else if (key) {
		*removed = xstrdup(key);
		json_object_del(s->last_used, key);
		json_object_del(s->uses, key);
		json_object_del(s->index, key);
		rc = index_save(s);
		if (rc == 0)
			sweep_locked(s);
	}
	uv_mutex_unlock(&s->mu);
	if (rc == -ENOENT && !*msg)
		*msg = xasprintf("image \"%s\" not found", ref);
	return rc;
}

int
img_remove(struct img_store *s, const char *ref, char **removed, char **msg)
{
	return img__remove_unused(s, ref, -1, removed, msg);
}

/* ---- jobs on the thread pool ------------------------------------------- */

struct img_job {
	uv_work_t work;
	struct img_store *s;
	void (*run)(void *arg);			/* on a pool thread */
	void (*done)(void *arg, bool cancelled);	/* on the loop, once */
	void *arg;
	void *owner;		/* img_cancel matches it */
	bool cancelled;
	struct img_job *next;
};

static void
job_work(uv_work_t *w)
{
	struct img_job *j = w->data;
	j->run(j->arg);
}

static void store_free(struct img_store *s);

static void
job_done(uv_work_t *w, int status)
{
	struct img_job *j = w->data;
	struct img_store *s = j->s;

	(void)status;	/* never cancelled through uv_cancel */
	for (struct img_job **pp = &s->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	j->done(j->arg, j->cancelled);
	free(j);
	if (s->closing && !s->jobs)
		store_free(s);
}

int
img__queue(struct img_store *s, void (*run)(void *), void (*done)(void *, bool),
    void *arg, void *owner)
{
	struct img_job *j = xcalloc(1, sizeof *j);
	*j = (struct img_job){ .s = s, .run = run, .done = done, .arg = arg, .owner = owner };
	j->work.data = j;
	int rc = uv_queue_work(s->loop, &j->work, job_work, job_done);
	if (rc < 0) {
		free(j);
		return rc;
	}
	j->next = s->jobs;
	s->jobs = j;
	return 0;
}

static void ensure_cancel(struct img_store *s, void *arg);

void
img_cancel(struct img_store *s, void *owner)
{
	for (struct img_job *j = s->jobs; j; j = j->next)
		if (j->owner == owner)
			j->cancelled = true;
	ensure_cancel(s, owner);
}

/* ---- ensure: make an image present according to a pull policy ----------- */

/* Requests for the same image with the same policy and credentials while
 * one is in flight join it (two replicas starting pull once, as the
 * kubelet's serialized pulls would); each waiter gets its own answer. */
struct waiter {
	img_done_fn fn;
	void *arg;
	bool cancelled;
};

struct ensure {
	struct img_store *s;
	char *ref;
	enum img_pull_policy policy;
	json_t *auths;
	int64_t max_bytes;	/* the pods' max-image-size; 0: none */
	struct waiter *w;
	size_t nw;
	int err;
	char *msg;
	struct img_info *info;
	bool queued;		/* on the thread pool (else waiting for a slot) */
	struct ensure *next;	/* s->ensures, oldest first */
};

/* Pulls at once: each holds a thread of libuv's pool (4 by default) for as
 * long as its registry takes, and container starts need the pool too; the
 * kubelet pulls one at a time by default (serializeImagePulls). */
#define IMG_MAX_PULLS 2

static void ensure_done(void *arg, bool cancelled);
static void ensure_run(void *arg);

static void
ensure_kick(struct img_store *s)
{
	for (struct ensure *e = s->ensures; e && s->running < IMG_MAX_PULLS; e = e->next) {
		if (e->queued)
			continue;
		if (img__queue(s, ensure_run, ensure_done, e, NULL) < 0)
			break;	/* retried when a running one ends */
		e->queued = true;
		s->running++;
	}
}

static void
ensure_free(struct ensure *e)
{
	img_info_free(e->info);
	json_decref(e->auths);
	free(e->w);
	free(e->msg);
	free(e->ref);
	free(e);
}

static void
ensure_run(void *arg)
{
	struct ensure *e = arg;
	struct img_store *s = e->s;

	if (e->policy != IMG_PULL_ALWAYS && img_lookup(s, e->ref, &e->info) == 0)
		return;
	if (e->policy == IMG_PULL_NEVER) {
		e->err = -ENOENT;
		e->msg = xasprintf("Container image \"%s\" is not present with pull policy "
		    "of Never", e->ref);
		return;
	}
	img__pull_begin(s);
	e->err = img_registry_pull(s, e->ref, e->auths, e->max_bytes, &e->msg);
	img__pull_end(s);
	if (e->err == 0 && img_lookup(s, e->ref, &e->info) < 0) {
		e->err = -ENOENT;
		e->msg = xasprintf("image \"%s\" vanished after its pull", e->ref);
	}
	if (e->err < 0) {
		char *m = xasprintf("failed to pull and unpack image \"%s\": %s", e->ref,
		    e->msg ? e->msg : strerror(-e->err));
		free(e->msg);
		e->msg = m;
	}
}

static void
ensure_done(void *arg, bool cancelled)
{
	struct ensure *e = arg;
	struct img_store *s = e->s;

	for (struct ensure **pp = &s->ensures; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	for (size_t i = 0; i < e->nw && !cancelled; i++) {
		struct img_info *info = NULL;
		if (e->w[i].cancelled)
			continue;
		if (e->err == 0 && !e->info && img_lookup(s, e->ref, &info) < 0) {
			e->w[i].fn(e->w[i].arg, -ENOENT, "the image was removed meanwhile", NULL);
			continue;
		}
		if (!info) {
			info = e->info;
			e->info = NULL;
		}
		e->w[i].fn(e->w[i].arg, e->err, e->msg, info);
	}
	ensure_free(e);
	s->running--;
	if (!img__closing(s))
		ensure_kick(s);
}

static void
ensure_cancel(struct img_store *s, void *arg)
{
	for (struct ensure *e = s->ensures; e; e = e->next)
		for (size_t i = 0; i < e->nw; i++)
			if (e->w[i].arg == arg)
				e->w[i].cancelled = true;
}

int
img_ensure(struct img_store *s, const char *ref, enum img_pull_policy policy,
    const json_t *auths, int64_t max_bytes, img_done_fn fn, void *arg)
{
	struct ensure *e;

	for (e = s->ensures; e; e = e->next)
		if (!strcmp(e->ref, ref) && e->policy == policy && e->max_bytes == max_bytes &&
		    (auths ? e->auths && json_equal(e->auths, auths) : !e->auths))
			break;
	if (!e) {
		struct ensure **tail = &s->ensures;
		while (*tail)
			tail = &(*tail)->next;
		e = *tail = xcalloc(1, sizeof *e);
		e->s = s;
		e->ref = xstrdup(ref);
		e->policy = policy;
		e->max_bytes = max_bytes;
		e->auths = auths ? json_deep_copy(auths) : NULL;
	}
	e->w = xrealloc(e->w, (e->nw + 1) * sizeof *e->w);
	e->w[e->nw++] = (struct waiter){ fn, arg, false };
	ensure_kick(s);
	if (!e->queued && s->running == 0) {
		/* Nothing runs to retry it later: the pool refused. */
		for (struct ensure **pp = &s->ensures; *pp; pp = &(*pp)->next)
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		ensure_free(e);
		return -EAGAIN;
	}
	return 0;
}

/* ---- open / close ------------------------------------------------------- */

int
img_store_open(uv_loop_t *loop, const char *dir, struct img_store **out)
{
	static const char *const subs[] = { "blobs/sha256", "layers/sha256", "tmp" };
	struct img_store *s = xcalloc(1, sizeof *s);
	int rc = 0;

	s->loop = loop;
	s->dir = xstrdup(dir);
	/* libcurl is loaded and initialised at the first pull (lazylib.c). */
	s->insecure = xcalloc(1, sizeof(char *));
	s->certs_dir = xstrdup(IMG_CERTS_DIR);
	uv_mutex_init(&s->mu);
	/* What a killed pull or import left half done is garbage. */
	char *tmp = xasprintf("%s/tmp", dir);
	util_remove_tree(tmp);
	free(tmp);
	for (size_t i = 0; i < ARRAY_SIZE(subs) && rc == 0; i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		rc = cg_mkdirs(p);
		free(p);
	}
	if (rc < 0) {
		log_error("image", "cannot create the image store in %s: %s", dir, strerror(-rc));
		store_free(s);
		return rc;
	}
	index_load(s);
	s->last_used = json_object();
	s->uses = json_object();
	*out = s;
	return 0;
}

void
img_store_add_insecure(struct img_store *s, const char *hostport)
{
	uv_mutex_lock(&s->mu);
	s->insecure = xrealloc(s->insecure, (s->ninsecure + 2) * sizeof(char *));
	s->insecure[s->ninsecure++] = xstrdup(hostport);
	s->insecure[s->ninsecure] = NULL;
	uv_mutex_unlock(&s->mu);
}

bool
img__pull_pending(struct img_store *s, const char *key)
{
	bool found = false;
	for (struct ensure *e = s->ensures; e && !found; e = e->next) {
		struct img_ref r;
		char *msg = NULL;
		if (img_ref_parse(e->ref, &r, &msg) == 0) {
			char *norm = img_ref_string(&r);
			found = !strcmp(norm, key);
			free(norm);
			img_ref_free(&r);
		}
		free(msg);
	}
	return found;
}

void
img_store_set_certs_dir(struct img_store *s, const char *dir)
{
	free(s->certs_dir);
	s->certs_dir = xstrdup(dir);
}

const char *
img__certs_dir(const struct img_store *s)
{
	return s->certs_dir;
}

void
img_store_set_in_use(struct img_store *s, img_in_use_fn fn, void *arg)
{
	s->in_use = fn;
	s->in_use_arg = arg;
}

char *
img__in_use(const struct img_store *s, const char *image_id)
{
	return s->in_use ? s->in_use(s->in_use_arg, image_id) : NULL;
}

bool
img__closing(const struct img_store *s)
{
	return __atomic_load_n(&s->closing, __ATOMIC_ACQUIRE);
}

uv_loop_t *
img__loop(const struct img_store *s)
{
	return s->loop;
}

const char *
img_store_dir(const struct img_store *s)
{
	return s->dir;
}

static void
store_free(struct img_store *s)
{
	json_decref(s->index);
	json_decref(s->last_used);
	json_decref(s->uses);
	strv_free(s->insecure);
	free(s->certs_dir);
	uv_mutex_destroy(&s->mu);
	free(s->dir);
	free(s);
}

void
img_store_close(struct img_store *s)
{
	if (!s)
		return;
	/* Pulls in flight finish on the pool; their callbacks are dropped and
	 * the last one frees the store. */
	for (struct img_job *j = s->jobs; j; j = j->next)
		j->cancelled = true;
	/* Requests still waiting for a slot never run: no callback either. */
	for (struct ensure **pp = &s->ensures; *pp;) {
		struct ensure *e = *pp;
		if (e->queued) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		ensure_free(e);
	}
	__atomic_store_n(&s->closing, true, __ATOMIC_RELEASE);
	if (!s->jobs)
		store_free(s);
}
