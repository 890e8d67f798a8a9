/* image_int.h — what the image_*.c files share and nobody else needs:
 * reference parsing, the unpacker, manifests, blob and index operations of
 * the store, the registry client. Grouped by the file that defines them. */
#ifndef V6_IMAGE_INT_H
#define V6_IMAGE_INT_H

#include "image.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>

struct archive;
struct evp_md_ctx_st;

#define IMG_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMG_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMG_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMG_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMG_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define IMG_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"

/* image_ref.c */
/* A parsed reference: registry "docker.io", repo "library/nginx", tag
 * "latest" (NULL when only a digest was given), digest (NULL unless given). */
/* "sha256:<64 hex>" */
bool img_digest_valid(const char *d);
/* The platform this node runs: "linux", "amd64", variant ("" if none). */
void img_platform(const char **os, const char **arch, const char **variant);
/* From an index's "manifests" array: the descriptor for os/arch/variant
 * (variant "" matches any; amd64 has none), or NULL. Borrowed. */
const json_t *img_index_select(const json_t *index, const char *os, const char *arch,
    const char *variant);
/* Whether media type (or, when absent, the document's shape) is an index. */
bool img_is_index(const json_t *doc, const char *content_type);

/* image_unpack.c */
/* "a/./b//c" -> "a/b/c", "./" -> ""; -EPERM for absolute names and any
 * ".." component. out >= len bytes. */
int img__path_clean(const char *name, char *out, size_t len);
enum img_wh { IMG_WH_NONE, IMG_WH_FILE, IMG_WH_OPAQUE, IMG_WH_INVALID };
/* What an entry's base name is: ".wh..wh..opq" opaque, ".wh.X" whiteout of
 * X (*target), else none. */
enum img_wh img__whiteout(const char *base, const char **target);
/* A libarchive reader for tar, plain, gzip or zstd. */
struct archive *img__archive_reader(void);
/* Unpacks an opened archive into dir (exists, empty). overlay: OCI
 * whiteouts become overlayfs ones (char 0/0, trusted.overlay.opaque).
 * Returns 0 or negative errno with *msg (caller frees). */
int img__unpack_archive(struct archive *a, const char *dir, bool overlay, char **msg);
int img__unpack_file(const char *tar, const char *dir, bool overlay, char **msg);

/* image_store.c */
/* Where the store keeps things; path helpers return malloc'ed strings. */
char *img__blob_path(const struct img_store *s, const char *digest);
char *img__layer_path(const struct img_store *s, const char *digest);
/* A fresh private path under DIR/tmp (not created). */
char *img__tmp_path(const struct img_store *s, const char *what);
/* sha256 of a file as "sha256:hex" into out (>= 72 bytes). */
int img__file_digest(const char *path, char *out);
void img__digest_bytes(const void *p, size_t n, char *out);
/* Ends a sha256 EVP context into "sha256:hex" (out >= 72 bytes). */
void img__digest_final(struct evp_md_ctx_st *ctx, char *out);
/* Moves file tmp into the store as blob digest after checking its content
 * has that digest (tmp is removed either way). 0, -EBADMSG on mismatch. */
int img__blob_commit(struct img_store *s, const char *tmp, const char *digest, char **msg);
bool img__blob_present(const struct img_store *s, const char *digest);
/* Fetches a missing blob into path tmp (the store verifies it after). */
struct img_source {
	int (*fetch)(void *arg, const char *digest, const char *tmp, char **msg);
	/* Optional: fetches layer blob digest into file tmp and unpacks it into
	 * dir (overlay mode) while it arrives, checking the digest at the end
	 * (a mismatch wins over an unpack error). -EAGAIN: not possible now
	 * (the caller fetches, then unpacks). */
	int (*fetch_unpack)(void *arg, const char *digest, const char *tmp, const char *dir,
	    char **msg);
	void *arg;
	int64_t max_bytes;	/* > 0: refuse an image larger than this (-EFBIG) */
	/* Optional: another arg for the same source that a second thread may
	 * use beside this one (its own connection and auth state), freed with
	 * release. NULL: the layers are made present one at a time. */
	void *(*clone)(void *arg);
	void (*release)(void *arg);
};
/* The -EFBIG message of an image of size bytes over the max-image-size
 * limit max (caller frees). */
char *img_size_violation(int64_t size, int64_t max);
/* Records image ref (normalised) -> manifest (bytes, a single-platform
 * manifest) after making its config and layers present (fetched through
 * src when missing, verified, unpacked): the ref becomes visible last.
 * repo_digest: the digest to report as imageID (the index's when the ref
 * named an index). Returns 0 or negative errno with *msg. */
int img__store_put(struct img_store *s, const char *ref, const char *manifest, size_t len,
    const char *repo_digest, const struct img_source *src, char **msg);
/* Pull accounting: a sweep of unreferenced blobs waits for no pull. */
void img__pull_begin(struct img_store *s);
void img__pull_end(struct img_store *s);
/* Runs run(arg) on the thread pool, then done(arg, cancelled) on the
 * loop (cancelled: img_cancel(owner) or the store closing; done must only
 * free then). Returns 0 or negative errno. */
int img__queue(struct img_store *s, void (*run)(void *), void (*done)(void *, bool),
    void *arg, void *owner);
uv_loop_t *img__loop(const struct img_store *s);
/* True once the store is closing: transfers in flight give up. Any thread. */
bool img__closing(const struct img_store *s);
/* img_list with "lastUsedMs" (last lookup, else the pull) and "useStamp"
 * (see img__remove_unused) for the GC. */
json_t *img__list_used(struct img_store *s);
/* ref's use stamp: changes with every img_lookup of it (0: none yet). */
json_int_t img__use_stamp(struct img_store *s, const char *ref);
/* img_remove, unless ref was looked up (a pod starting with it) since its
 * use stamp was stamp, as the loop saw it when it decided the image was
 * unused: then -EBUSY with *msg. stamp < 0: unconditionally. Any thread. */
int img__remove_unused(struct img_store *s, const char *ref, json_int_t stamp,
    char **removed, char **msg);
/* Whether an img_ensure of the image named by index key is in flight:
 * its pod learns the image (and protects it) only when it ends. Loop only. */
bool img__pull_pending(struct img_store *s, const char *key);
/* The pod using image_id ("ns/name", caller frees) or NULL. Loop only. */
char *img__in_use(const struct img_store *s, const char *image_id);
/* The --insecure-registry list (NULL-terminated, borrowed). */
char *const *img__insecure(const struct img_store *s);
/* The --registry-certs-dir (borrowed). */
const char *img__certs_dir(const struct img_store *s);

/* image_import.c */
/* Imports an OCI layout or docker-archive tar; *refs gets the refs made
 * (json array). 0 or negative errno with *msg. Blocking. */
int img_import_file(struct img_store *s, const char *path, json_t **refs, char **msg);

/* image_registry.c */
/* Docker's rule: a registry on loopback (localhost, 127.x, [::1]) or named
 * in insecure (NULL-terminated HOST:PORT list) may be reached without a
 * certificate check, or over plain HTTP when TLS fails; any other only
 * over verified TLS. */
bool img_plain_http_allowed(const char *hostport, char *const *insecure);
/* Pulls ref (normalised) from its registry into the store. auths: a
 * dockerconfigjson "auths" object or NULL. Blocking. */
int img_registry_pull(struct img_store *s, const char *ref, const json_t *auths,
    int64_t max_bytes, char **msg);

#endif
