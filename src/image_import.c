/* image_import.c — `v6 image import FILE`: an OCI image layout in a tar (what
 * `skopeo copy ... oci-archive:` writes) or a docker-archive tar (`docker
 * save`, `skopeo copy ... docker-archive:`), for machines without a
 * registry. The archive is unpacked safely into the store's tmp/, every
 * blob is verified against its digest, and each image is recorded through
 * img__store_put like a pull. Runs on the thread pool (image_api.c). */
#include "image_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct archive_src {
	const char *root;	/* the unpacked archive */
	json_t *files;		/* docker-archive: digest -> file inside root */
};

/* Hard-links (or copies) the archive's file for digest to tmp. */
static int
src_fetch(void *arg, const char *digest, const char *tmp, char **msg)
{
	struct archive_src *a = arg;
	const char *rel = json_string_value(json_object_get(a->files, digest));
	char *path = rel ? xasprintf("%s/%s", a->root, rel) :
	    xasprintf("%s/blobs/sha256/%s", a->root, digest + strlen("sha256:"));
	int rc = 0;

	if (link(path, tmp) < 0) {
		char *data = NULL;
		size_t len = 0;
		rc = file_read_all(path, &data, &len);
		if (rc == 0)
			rc = file_write_atomic(tmp, data, len, false);
		free(data);
	}
	if (rc < 0)
		*msg = xasprintf("the archive has no blob %s", digest);
	free(path);
	return rc;
}

static int
read_doc(const char *root, const char *rel, char **data, size_t *len, char **msg)
{
	char *p = xasprintf("%s/%s", root, rel);
	int rc = file_read_all(p, data, len);
	if (rc < 0)
		*msg = xasprintf("the archive has no readable %s", rel);
	free(p);
	return rc;
}

/* Reads blob digest of an OCI layout, checking its content. */
static int
oci_blob(const char *root, const char *digest, char **data, size_t *len, char **msg)
{
	char got[80];
	if (!img_digest_valid(digest)) {
		*msg = xasprintf("invalid digest \"%s\" in the archive", digest ? digest : "");
		return -EPROTO;
	}
	char *rel = xasprintf("blobs/sha256/%s", digest + strlen("sha256:"));
	int rc = read_doc(root, rel, data, len, msg);
	free(rel);
	if (rc < 0)
		return rc;
	img__digest_bytes(*data, *len, got);
	if (strcmp(got, digest) != 0) {
		*msg = xasprintf("digest mismatch for %s: the content has %s", digest, got);
		free(*data);
		*data = NULL;
		return -EBADMSG;
	}
	return 0;
}

static char *
normalise(const char *name, char **msg)
{
	struct img_ref r;
	if (img_ref_parse(name, &r, msg) < 0)
		return NULL;
	char *s = img_ref_string(&r);
	img_ref_free(&r);
	return s;
}

static int
import_oci(struct img_store *s, const char *root, json_t *refs, char **msg)
{
	char *data = NULL;
	size_t len, i;
	int rc = read_doc(root, "index.json", &data, &len, msg);
	json_t *index = rc == 0 ? json_loadb(data, len, 0, NULL) : NULL, *d;
	struct archive_src src = { root, NULL };
	struct img_source is = { src_fetch, NULL, &src, 0, NULL, NULL };
	const char *os, *arch, *variant;

	free(data);
	img_platform(&os, &arch, &variant);
	json_array_foreach(json_object_get(index, "manifests"), i, d) {
		const json_t *ann = json_object_get(d, "annotations");
		const char *name = json_string_value(json_object_get(ann,
		    "io.containerd.image.name"));
		if (!name)
			name = json_string_value(json_object_get(ann,
			    "org.opencontainers.image.ref.name"));
		const char *digest = json_string_value(json_object_get(d, "digest"));
		if (!name) {
			*msg = xasprintf("manifest %zu of index.json has no image name "
			    "(annotation org.opencontainers.image.ref.name)", i);
			rc = -EPROTO;
			break;
		}
		char *ref = normalise(name, msg);
		if (!ref) {
			rc = -EINVAL;
			break;
		}
		rc = oci_blob(root, digest, &data, &len, msg);
		json_t *m = rc == 0 ? json_loadb(data, len, 0, NULL) : NULL;
		if (rc == 0 && img_is_index(m, json_string_value(json_object_get(d, "mediaType")))) {
			const json_t *pick = img_index_select(m, os, arch, variant);
			free(data);
			data = NULL;
			rc = pick ? oci_blob(root, json_string_value(json_object_get(pick,
			    "digest")), &data, &len, msg) : -ENOENT;
			if (!pick)
				*msg = xasprintf("%s has no image for %s/%s", ref, os, arch);
		}
		if (rc == 0)
			rc = img__store_put(s, ref, data, len, digest, &is, msg);
		if (rc == 0)
			json_array_append_new(refs, json_string(ref));
		json_decref(m);
		free(data);
		data = NULL;
		free(ref);
		if (rc < 0)
			break;
	}
	if (rc == 0 && json_array_size(refs) == 0) {
		*msg = xstrdup("index.json lists no image");
		rc = -EPROTO;
	}
	json_decref(index);
	return rc;
}

/* A descriptor for file rel of the archive (digest computed here). */
static json_t *
file_desc(const char *root, const char *rel, const char *mt, json_t *files)
{
	char digest[80];
	struct stat st;
	char *p = xasprintf("%s/%s", root, rel);
	json_t *d = NULL;

	if (strstr(rel, "..") == NULL && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	    img__file_digest(p, digest) == 0) {
		d = json_pack("{s:s, s:I, s:s}", "mediaType", mt, "size", (json_int_t)st.st_size,
		    "digest", digest);
		json_object_set_new(files, digest, json_string(rel));
	}
	free(p);
	return d;
}

static int
import_docker(struct img_store *s, const char *root, json_t *refs, char **msg)
{
	char *data = NULL;
	size_t len, i, j;
	int rc = read_doc(root, "manifest.json", &data, &len, msg);
	json_t *list = rc == 0 ? json_loadb(data, len, 0, NULL) : NULL, *e, *l, *t;
	struct archive_src src = { root, json_object() };
	struct img_source is = { src_fetch, NULL, &src, 0, NULL, NULL };

	free(data);
	if (rc == 0 && !json_is_array(list)) {
		*msg = xstrdup("manifest.json is not a list of images");
		rc = -EPROTO;
	}
	json_array_foreach(list, i, e) {
		const char *cfg = json_string_value(json_object_get(e, "Config"));
		json_t *layers = json_array();
		json_t *cd = cfg ? file_desc(root, cfg, IMG_MT_DOCKER_CONFIG, src.files) : NULL;
		if (!cd) {
			*msg = xasprintf("image %zu of manifest.json has no config file", i);
			rc = -EPROTO;
		}
		json_array_foreach(json_object_get(e, "Layers"), j, l) {
			json_t *ld = rc == 0 && json_is_string(l) ? file_desc(root,
			    json_string_value(l), IMG_MT_DOCKER_LAYER, src.files) : NULL;
			if (!ld && rc == 0) {
				*msg = xasprintf("layer %zu of image %zu is missing", j, i);
				rc = -EPROTO;
			}
			if (ld)
				json_array_append_new(layers, ld);
		}
		json_t *m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
		    IMG_MT_DOCKER_MANIFEST, "config", cd ? cd : json_null(), "layers", layers);
		char *mdata = json_dumps(m, JSON_COMPACT);
		json_decref(m);
		if (rc == 0 && json_array_size(json_object_get(e, "RepoTags")) == 0) {
			*msg = xasprintf("image %zu of manifest.json has no RepoTags: name it "
			    "when saving", i);
			rc = -EPROTO;
		}
		json_array_foreach(json_object_get(e, "RepoTags"), j, t) {
			char *ref = rc == 0 ? normalise(json_string_value(t) ?: "", msg) : NULL;
			if (rc == 0 && !ref)
				rc = -EINVAL;
			if (rc == 0)
				rc = img__store_put(s, ref, mdata, strlen(mdata), NULL, &is, msg);
			if (rc == 0)
				json_array_append_new(refs, json_string(ref));
			free(ref);
		}
		free(mdata);
		if (rc < 0)
			break;
	}
	json_decref(list);
	json_decref(src.files);
	return rc;
}

int
img_import_file(struct img_store *s, const char *path, json_t **refs, char **msg)
{
	char *root = img__tmp_path(s, "import");
	int rc = 0;

	*refs = json_array();
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		*msg = xasprintf("%s is not a regular file", path);
		free(root);
		return -ENOENT;
	}
	if (mkdir(root, 0700) < 0) {
		*msg = xasprintf("cannot create %s: %s", root, strerror(errno));
		free(root);
		return -errno;
	}
	img__pull_begin(s);
	rc = img__unpack_file(path, root, false, msg);
	if (rc == 0) {
		char *layout = xasprintf("%s/oci-layout", root);
		char *docker = xasprintf("%s/manifest.json", root);
		if (access(layout, F_OK) == 0)
			rc = import_oci(s, root, *refs, msg);
		else if (access(docker, F_OK) == 0)
			rc = import_docker(s, root, *refs, msg);
		else {
			*msg = xstrdup("neither an OCI layout (oci-layout, index.json) nor a "
			    "docker archive (manifest.json)");
			rc = -EPROTO;
		}
		free(layout);
		free(docker);
	}
	img__pull_end(s);
	util_remove_tree(root);
	free(root);
	return rc;
}
