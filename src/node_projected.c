/* node_projected.c — the volumes the kubelet projects from API objects,
 * for both runtimes: configMap, secret, downwardAPI and projected (its
 * configMap / secret / downwardAPI sources). nproj_files computes a
 * volume's files (pure but for the ConfigMap / Secret lookup); nproj_write
 * lays them out as the kubelet's atomic writer does — a ..TIMESTAMP
 * directory, the ..data symlink swapped to it by rename, one symlink per
 * top-level name into ..data — so that a container watching the mount sees
 * an update whole, never half of it. Called by node_volume.c. */
#include "node_pod.h"
#include "node_runtime.h"
#include "obj.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODE	0644	/* the API's defaultMode for all four kinds */

bool
nproj_is(const json_t *vol)
{
	static const char *const kinds[] = { "configMap", "secret", "downwardAPI", "projected" };
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (json_is_object(json_object_get(vol, kinds[i])))
			return true;
	return false;
}

void
nproj_files_free(struct nproj_file *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++) {
		free(f[i].path);
		free(f[i].data);
	}
	free(f);
}

struct files {
	struct nproj_file *v;
	size_t n, cap;
	char *err;
};

/* A path the API accepts for an item: relative, no "..", not empty. */
static bool
path_ok(const char *p)
{
	if (!*p || *p == '/' || str_has_prefix(p, "..") || strstr(p, "/../") ||
	    str_has_suffix(p, "/.."))
		return false;
	return strcmp(p, "..data") != 0;
}

static int
add(struct files *fs, const char *path, char *data, size_t len, int mode)
{
	if (!path_ok(path)) {
		free(data);
		fs->err = xasprintf("invalid item path \"%s\"", path);
		return -EINVAL;
	}
	for (size_t i = 0; i < fs->n; i++)
		if (!strcmp(fs->v[i].path, path)) {	/* a later source wins, as upstream */
			free(fs->v[i].data);
			fs->v[i].data = data;
			fs->v[i].len = len;
			fs->v[i].mode = mode;
			return 0;
		}
	if (fs->n == fs->cap) {
		fs->cap = fs->cap ? 2 * fs->cap : 8;
		fs->v = xrealloc(fs->v, fs->cap * sizeof *fs->v);
	}
	fs->v[fs->n++] = (struct nproj_file){ xstrdup(path), data, len, mode };
	return 0;
}

static int
mode_of(const json_t *o, int dflt)
{
	const json_t *m = json_object_get(o, "mode");
	return json_is_integer(m) ? (int)(json_integer_value(m) & 0777) : dflt;
}

/* A ConfigMap's or Secret's keys (data; a ConfigMap's binaryData too) as
 * files: every key, or only the items listed (a missing key fails unless
 * the source is optional). */
static int
object_source(const struct nenv_ctx *ctx, struct files *fs, const json_t *src,
    const char *kind, const char *name_field, int dflt)
{
	bool secret = !strcmp(kind, "Secret");
	const char *name = json_string_value(json_object_get(src, name_field)) ?: "";
	bool optional = json_is_true(json_object_get(src, "optional"));
	json_t *obj = ctx->lookup ? ctx->lookup(ctx->lookup_arg, kind, obj_namespace(ctx->pod),
	    name) : NULL;
	int rc = 0;
	if (!obj) {
		if (optional)
			return 0;
		fs->err = xasprintf("%s \"%s\" not found", secret ? "secret" : "configmap", name);
		return -ENOENT;
	}
	const json_t *data = json_object_get(obj, "data");
	const json_t *bin = secret ? NULL : json_object_get(obj, "binaryData");
	const json_t *items = json_object_get(src, "items");
	const char *key;
	json_t *v;
	/* (key, path, mode) for each file to write */
	json_t *want = json_array();
	if (json_array_size(items)) {
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
			json_array_append_new(want, json_pack("{s:s, s:s, s:i}", "key",
			    json_string_value(json_object_get(it, "key")) ?: "", "path",
			    json_string_value(json_object_get(it, "path")) ?: "", "mode",
			    mode_of(it, dflt)));
	} else {
		json_object_foreach((json_t *)data, key, v)
			json_array_append_new(want, json_pack("{s:s, s:s, s:i}", "key", key,
			    "path", key, "mode", dflt));
		json_object_foreach((json_t *)bin, key, v)
			json_array_append_new(want, json_pack("{s:s, s:s, s:i}", "key", key,
			    "path", key, "mode", dflt));
	}
	size_t i;
	json_t *w;
	json_array_foreach(want, i, w) {
		const char *k = json_string_value(json_object_get(w, "key"));
		const char *s = json_string_value(json_object_get(data, k));
		bool b64 = secret;
		if (!s && bin && (s = json_string_value(json_object_get(bin, k))) != NULL)
			b64 = true;
		if (!s) {
			if (optional)
				continue;
			fs->err = xasprintf("%s \"%s\" has no key \"%s\"", secret ? "secret" :
			    "configmap", name, k);
			rc = -ENOENT;
			break;
		}
		size_t len = strlen(s);
		char *bytes = b64 ? nenv_b64_decode_len(s, &len) : xstrdup(s);
		if (!bytes) {
			fs->err = xasprintf("%s \"%s\": key \"%s\" is not base64",
			    secret ? "secret" : "configmap", name, k);
			rc = -EINVAL;
			break;
		}
		rc = add(fs, json_string_value(json_object_get(w, "path")), bytes, len,
		    (int)json_integer_value(json_object_get(w, "mode")));
		if (rc < 0)
			break;
	}
	json_decref(want);
	json_decref(obj);
	return rc;
}

static int
downward_source(const struct nenv_ctx *ctx, struct files *fs, const json_t *src, int dflt)
{
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(src, "items"), i, it) {
		char *err = NULL;
		char *v = nenv_downward(ctx, it, &err);
		if (!v) {
			fs->err = err;
			return -EINVAL;
		}
		if (add(fs, json_string_value(json_object_get(it, "path")) ?: "", v, strlen(v),
		    mode_of(it, dflt)) < 0)
			return -EINVAL;
	}
	return 0;
}

static int
default_mode(const json_t *src)
{
	const json_t *m = json_object_get(src, "defaultMode");
	return json_is_integer(m) ? (int)(json_integer_value(m) & 0777) : DEFAULT_MODE;
}

int
nproj_files(const struct nenv_ctx *ctx, const json_t *vol, struct nproj_file **out,
    size_t *n, char **err)
{
	struct files fs = { 0 };
	const json_t *src;
	int rc = 0;
	if ((src = json_object_get(vol, "configMap")) != NULL) {
		rc = object_source(ctx, &fs, src, "ConfigMap", "name", default_mode(src));
	} else if ((src = json_object_get(vol, "secret")) != NULL) {
		rc = object_source(ctx, &fs, src, "Secret", "secretName", default_mode(src));
	} else if ((src = json_object_get(vol, "downwardAPI")) != NULL) {
		rc = downward_source(ctx, &fs, src, default_mode(src));
	} else if ((src = json_object_get(vol, "projected")) != NULL) {
		int dflt = default_mode(src);
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(src, "sources"), i, s) {
			const json_t *x;
			if ((x = json_object_get(s, "configMap")) != NULL)
				rc = object_source(ctx, &fs, x, "ConfigMap", "name", dflt);
			else if ((x = json_object_get(s, "secret")) != NULL)
				rc = object_source(ctx, &fs, x, "Secret", "name", dflt);
			else if ((x = json_object_get(s, "downwardAPI")) != NULL)
				rc = downward_source(ctx, &fs, x, dflt);
			else {
				const char *k = json_object_iter_key(json_object_iter((json_t *)s));
				fs.err = xasprintf("projected source %s is not supported by v6 yet "
				    "(configMap, secret and downwardAPI are)", k ? k : "(empty)");
				rc = -ENOTSUP;
			}
			if (rc < 0)
				break;
		}
	}
	if (rc < 0) {
		nproj_files_free(fs.v, fs.n);
		*err = fs.err ? fs.err : xstrdup("cannot project the volume");
		return rc;
	}
	*out = fs.v;
	*n = fs.n;
	return 0;
}

/* ---- the atomic writer ---------------------------------------------------- */

static int
mkdirs_under(const char *root, const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	int rc = 0;
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -errno;
		*s = '/';
	}
	free(p);
	return rc;
}

static int
write_one(const char *dir, const struct nproj_file *f)
{
	int rc = mkdirs_under(dir, f->path);
	char *p = xasprintf("%s/%s", dir, f->path);
	int fd = rc < 0 ? -1 : open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (rc == 0 && fd < 0)
		rc = -errno;
	for (size_t off = 0; rc == 0 && off < f->len;) {
		ssize_t w = write(fd, f->data + off, f->len - off);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			off += (size_t)w;
	}
	if (fd >= 0 && fchmod(fd, (mode_t)f->mode) < 0 && rc == 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}

/* The first component of path, malloc'ed. */
static char *
top_name(const char *path)
{
	return xstrndup(path, strcspn(path, "/"));
}

/* Whether dir's current ..data holds exactly these files. */
static bool
unchanged(const char *dir, const struct nproj_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/..data/%s", dir, f[i].path);
		size_t len = 0;
		char *cur = NULL;
		struct stat st;
		bool same = file_read_all(p, &cur, &len) == 0 && len == f[i].len && memcmp(cur, f[i].data, len) == 0 &&
		    stat(p, &st) == 0 && (int)(st.st_mode & 0777) == f[i].mode;
		free(cur);
		free(p);
		if (!same)
			return false;
	}
	/* and nothing more at the top */
	DIR *d = opendir(dir);
	bool same = d != NULL;
	struct dirent *e;
	while (same && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		bool listed = false;
		for (size_t i = 0; !listed && i < n; i++) {
			char *t = top_name(f[i].path);
			listed = !strcmp(t, e->d_name);
			free(t);
		}
		same = listed;
	}
	if (d)
		closedir(d);
	return same;
}

int
nproj_write(const char *dir, const struct nproj_file *f, size_t n, char **err)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		*err = xasprintf("making %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (unchanged(dir, f, n))
		return 0;
	static unsigned seq;	/* two writes within a millisecond */
	char *ts = xasprintf("..%lld.%u", (long long)time_now_ms(), seq++);
	char *tsdir = xasprintf("%s/%s", dir, ts), *tmp = xasprintf("%s/..data_tmp", dir);
	char *data = xasprintf("%s/..data", dir);
	int rc = mkdir(tsdir, 0755) < 0 ? -errno : 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write_one(tsdir, &f[i]);
	unlink(tmp);
	if (rc == 0 && (symlink(ts, tmp) < 0 || rename(tmp, data) < 0))
		rc = -errno;
	/* a symlink per top-level name into ..data; stale names and older
	 * ..TIMESTAMP directories go */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char *t = top_name(f[i].path), *link = xasprintf("%s/%s", dir, t);
		char *target = xasprintf("..data/%s", t);
		struct stat st;
		if (lstat(link, &st) < 0 && symlink(target, link) < 0)
			rc = -errno;
		free(t);
		free(link);
		free(target);
	}
	DIR *d = rc == 0 ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char *p = xasprintf("%s/%s", dir, e->d_name);
		if (str_has_prefix(e->d_name, "..") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, ts) && strcmp(e->d_name, "..data")) {
			util_remove_tree(p);
		} else if (e->d_name[0] != '.') {
			bool listed = false;
			for (size_t i = 0; !listed && i < n; i++) {
				char *t = top_name(f[i].path);
				listed = !strcmp(t, e->d_name);
				free(t);
			}
			if (!listed)
				unlink(p);
		}
		free(p);
	}
	if (d)
		closedir(d);
	if (rc < 0) {
		*err = xasprintf("writing %s: %s", dir, strerror(-rc));
		util_remove_tree(tsdir);
	}
	free(ts);
	free(tsdir);
	free(tmp);
	free(data);
	return rc;
}
