/* image.h — OCI images on this node (the contract between the image store,
 * the node agent and the runc runtime). The store keeps blobs by digest and
 * each layer unpacked once, read-only, shared by every pod; the agent asks
 * for an image by reference with a pull policy and gets back what the
 * runtime needs: the layer directories (lowest first, for an overlayfs
 * lowerdir) and the image config. Implemented in image_*.c. */
#ifndef V6_IMAGE_H
#define V6_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct img_store;

enum img_pull_policy { IMG_PULL_IF_NOT_PRESENT, IMG_PULL_ALWAYS, IMG_PULL_NEVER };

/* The parts of the image config ("config" of application/vnd.oci.image.config.v1+json)
 * a runtime merges with the container spec, as Kubernetes does. Arrays are
 * NULL-terminated; NULL when the image does not set them. */
struct img_config {
	char **entrypoint;
	char **cmd;
	char **env;			/* "NAME=value" */
	char *working_dir;		/* "" when unset */
	char *user;			/* "", "uid", "uid:gid", "name", "name:group" */
};

struct img_info {
	char *ref;			/* normalised: docker.io/library/nginx:1.25 */
	char *digest;			/* manifest digest for this node's platform: sha256:... */
	char *image_id;			/* status.containerStatuses[].imageID: REPO@DIGEST */
	char **layers;			/* unpacked layer dirs, lowest first, NULL-terminated */
	size_t n_layers;
	struct img_config config;
	int64_t size;			/* bytes on disk (compressed blobs) */
};

void img_info_free(struct img_info *info);

/* image_ref.c — image references. */
struct img_ref {
	char *registry;
	char *repo;
	char *tag;
	char *digest;
	bool tag_implied;	/* no tag and no digest given: tag is "latest" */
};
/* Parses s by Docker's rules (nginx = docker.io/library/nginx:latest).
 * Returns 0 or -EINVAL with *msg saying why (caller frees). */
int img_ref_parse(const char *s, struct img_ref *out, char **msg);
/* "registry/repo:tag", "registry/repo@digest" or both; caller frees. */
char *img_ref_string(const struct img_ref *r);
void img_ref_free(struct img_ref *r);

/* dir: DATA/node/images. */
int img_store_open(uv_loop_t *loop, const char *dir, struct img_store **out);
void img_store_close(struct img_store *s);

/* Local only, no network: the image if it is complete in the store,
 * else -ENOENT. */
int img_lookup(struct img_store *s, const char *ref, struct img_info **out);

/* Done: err 0 and info (the callee owns it), or a negative errno with a
 * message for the container's status (reason ErrImagePull), e.g.
 * `failed to pull "reg/x:1": manifest unknown`. Runs on the loop. */
typedef void (*img_done_fn)(void *arg, int err, const char *message, struct img_info *info);

/* Makes ref present according to policy (pulling on the thread pool) and
 * calls fn once. auths: the "auths" object of the pod's imagePullSecrets
 * (kubernetes.io/dockerconfigjson), merged; may be NULL. max_bytes > 0: an
 * image whose manifest declares more fails with -EFBIG before any layer is
 * fetched (the namespace's max-image-size). */
int img_ensure(struct img_store *s, const char *ref, enum img_pull_policy policy,
    const json_t *auths, int64_t max_bytes, img_done_fn fn, void *arg);

/* Drops the callbacks of every img_ensure in flight with this arg (a pod
 * going away); the pulls themselves finish. */
void img_cancel(struct img_store *s, void *arg);

/* Allows plain HTTP to a registry HOST:PORT (the server's repeatable
 * --insecure-registry); loopback registries are always allowed. */
void img_store_add_insecure(struct img_store *s, const char *hostport);
/* Where the CA and client certificate of a private registry are, Docker's
 * certs.d layout: DIR/HOST:PORT/ca.crt (the registry's certificate is
 * checked against it alone, on loopback too), client.cert + client.key.
 * Read at each pull. Default IMG_CERTS_DIR. */
#define IMG_CERTS_DIR "/etc/v6/certs.d"
void img_store_set_certs_dir(struct img_store *s, const char *dir);
/* DATA/node/images (borrowed). */
const char *img_store_dir(const struct img_store *s);
/* The images complete in the store: [{"ref", "digest", "imageID", "size",
 * "pulled"}], a new reference. */
json_t *img_list(struct img_store *s);
/* Forgets ref (the normalised key goes to *removed, caller frees) and
 * deletes the blobs and layers no other image uses. -ENOENT with *msg. */
int img_remove(struct img_store *s, const char *ref, char **removed, char **msg);
/* Who uses an image: the agent answers with "NS/POD" (malloc'ed) for the
 * first pod whose container runs image_id (REPO@DIGEST), else NULL. Image
 * removal and GC never take an image in use. Called on the loop. */
typedef char *(*img_in_use_fn)(void *arg, const char *image_id);
void img_store_set_in_use(struct img_store *s, img_in_use_fn fn, void *arg);

struct api;
/* Serves the images.v6.dev group on api (image_api.c). */
void img_api_register(struct api *api, struct img_store *s);

/* image_pod.c — the agent's image step before a container starts. */
struct img_pull;
/* A Secret of namespace ns (new reference) or NULL. */
typedef json_t *(*img_secret_fn)(void *arg, const char *ns, const char *name);
struct img_pull_hooks {
	void (*event)(void *arg, bool warning, const char *reason, const char *msg);
	void (*done)(void *arg);	/* a pull ended: call the gate again */
	img_secret_fn secret;
	/* The max-image-size of namespace ns in bytes (0: none); may be NULL. */
	int64_t (*max_image_bytes)(void *arg, const char *ns);
};
enum { IMG_GATE_READY, IMG_GATE_PENDING, IMG_GATE_FAILED };
struct img_pull_result {
	const char *image_id;		/* READY: REPO@DIGEST */
	const struct img_info *info;	/* READY: layers and config (the gate owns it) */
	const char *reason;		/* FAILED: ErrImagePull, ErrImageNeverPull */
	const char *message;
};
/* Makes container ctr's image ready for its start number attempt: READY,
 * PENDING (a pull runs; hooks->done(arg) when it ends, then call again with
 * the same attempt) or FAILED (reported once; the next call pulls again).
 * *pp is the container's state, created here, freed by img_pull_free
 * (which also drops a pull's callback). Events go through hooks->event. */
int img_pull_gate(struct img_pull **pp, struct img_store *s, const json_t *pod,
    const json_t *ctr, int attempt, const struct img_pull_hooks *hooks, void *arg,
    struct img_pull_result *out);
void img_pull_free(struct img_pull *p);
/* The container's imagePullPolicy, else the Kubernetes default. */
enum img_pull_policy img_policy_of(const json_t *ctr);
/* The "auths" of the pod's kubernetes.io/dockerconfigjson imagePullSecrets
 * merged (the first secret naming a registry wins), or NULL. */
json_t *img_pull_auths(const json_t *pod, img_secret_fn lookup, void *arg);

/* image_gc.c — garbage collection by disk use (kubelet's image GC). */
#define IMG_GC_PERIOD_MS (5 * 60 * 1000)	/* the kubelet's imageGCPeriod */
struct img_gc_config {
	int high, low;		/* --image-gc-high-threshold / -low- (85 / 80) */
	int64_t min_age_ms;	/* --minimum-image-ttl-duration (2 min) */
	int64_t period_ms;	/* how often the disk is checked; 0: 5 min */
};
struct img_gc_image {
	const char *ref;
	int64_t size;		/* bytes the removal frees (its blobs) */
	int64_t last_used_ms;
	bool in_use;		/* a pod's container runs it: never removed */
};
/* The pure choice: when used / capacity >= high%, the images to remove,
 * least recently used first, skipping those in use or used within
 * min_age_ms, until their sizes reach used - low% of capacity. Fills out
 * (>= n entries) with indices into imgs; returns their number. */
size_t img_gc_select(const struct img_gc_image *imgs, size_t n, uint64_t capacity,
    uint64_t available, int high, int low, int64_t now_ms, int64_t min_age_ms,
    size_t *out);
struct img_gc;
/* -EINVAL unless 0 <= low <= high <= 100. */
int img_gc_start(struct img_store *s, const struct img_gc_config *cfg, struct img_gc **out);
void img_gc_stop(struct img_gc *gc);

/* The Kubernetes default: Always for ":latest" or no tag (and no digest),
 * else IfNotPresent. */
enum img_pull_policy img_default_policy(const char *ref);

#endif
