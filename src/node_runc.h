/* node_runc.h — the runc runtime's side of a container start: the OCI
 * runtime config (config.json) of a container, made as a pure function of
 * the image config and the pod's spec, merged as Kubernetes (kubelet +
 * containerd's CRI plugin) does, and the per-pod /etc files. Called by the
 * node agent; the bundle is written and run by node_runtime.c / node_shim.c. */
#ifndef V6_NODE_RUNC_H
#define V6_NODE_RUNC_H

#include <jansson.h>
#include <stdint.h>

#include "image.h"
#include "node_runtime.h"

/* Everything config.json is made of; nothing here is read from disk except
 * the image's /etc/passwd and /etc/group (in layers) for a user name. */
struct nrunc_in {
	const struct img_config *img;	/* may be NULL: an image that sets nothing */
	char *const *layers;		/* unpacked layer dirs, lowest first; NULL ok */
	const json_t *pod;		/* the Pod object */
	const json_t *cspec;		/* its container */
	char *const *env;		/* the container's env from the pod spec, resolved
					 * ($(VAR), envFrom, downward API), no defaults */
	const struct rt_mount *mounts;	/* volumes */
	size_t n_mounts;
	const char *etc_dir;		/* the pod's hosts, hostname, resolv.conf */
	const char *netns_path;		/* NULL: a new, empty network namespace */
	const char *ipc_path;		/* the pod's pinned IPC namespace, joined;
					 * NULL: a new one (ignored with hostIPC) */
	const char *shm_dir;		/* the pod's /dev/shm (a tmpfs), bind-mounted;
					 * NULL: a tmpfs of its own (hostIPC: the
					 * host's /dev/shm) */
	const char *cgroups_path;	/* relative: below the runc process's own groups */
	int64_t memory_limit;		/* bytes, 0 = none */
	int64_t cpu_limit_millis;	/* 0 = none */
	int64_t cpu_request_millis;	/* -> cpu.shares (2 when 0, as kubelet) */
	int64_t pids_limit;		/* 0 = none */
};

/* The container's OCI config (root.path "rootfs"). Returns 0 and *out (a
 * new reference), or -EINVAL with the waiting reason in *reason (static
 * string: "CreateContainerConfigError" for a securityContext the image
 * breaks, "CreateContainerError" for no command) and the message in *err
 * (caller frees), worded as kubelet words it. */
int nrunc_config(const struct nrunc_in *in, json_t **out, const char **reason, char **err);

/* The files of a pod's etc_dir, as {name: text}: "hosts" (localhost, the
 * pod's IP and hostname, hostAliases), "hostname", "resolv.conf" (see
 * nrunc_resolv_conf). New reference. */
json_t *nrunc_pod_files(const json_t *pod, const char *pod_ip);
/* What a pod's /etc/resolv.conf says: the host's, for now (the pod network
 * replaces it with the cluster DNS). Caller frees. */
char *nrunc_resolv_conf(const json_t *pod);

/* Everything a runc container start needs besides the rt_spec the agent
 * fills for both runtimes. */
struct nrunc_prep {
	struct img_store *images;
	const struct img_info *info;	/* the image, as the pull gate found it (borrowed,
					 * kept until rt_start returned); NULL: looked up */
	const json_t *pod, *cspec;
	char *const *env;		/* as for nrunc_in */
	const struct rt_mount *mounts;
	size_t n_mounts;
	const char *pod_dir;		/* the pod's state dir (rt_pod_state_dir, on tmpfs):
					 * POD_DIR/etc, POD_DIR/ipc, POD_DIR/shm */
	const char *pod_ip;
	const char *netns_path;		/* NULL: a new, empty network namespace */
	int64_t memory_limit, cpu_limit_millis, cpu_request_millis, pids_limit;
};

/* What rt_spec.runc points into, kept until rt_start returned. */
struct nrunc_start {
	struct rt_runc r;
	struct img_info *info;		/* looked up here (no nrunc_prep.info), else NULL */
	char *config, *etc_dir;
	json_t *files;
};

/* The pod's IPC namespace and /dev/shm, as Kubernetes shares them between a
 * pod's containers (as its network namespace): an IPC namespace pinned at
 * POD_DIR/ipc and a 64 MiB tmpfs at POD_DIR/shm, made on the first call and
 * found again on later ones (container restarts, a new server adopting the
 * pod). Blocking (one fork the first time); callable from any thread (a
 * lock on pod_dir: two containers' starts make one namespace). 0 with both
 * paths (caller frees), or -errno (-EPERM: not root). */
int nrunc_pod_ipc(const char *pod_dir, char **ipc_path, char **shm_dir);
/* The same without the paths: POD_DIR/ipc and POD_DIR/shm. The start's job
 * calls it (rt_runc.sandbox) before the shim runs. */
int nrunc_pod_sandbox(const char *pod_dir);
/* Unmounts and removes what nrunc_pod_ipc made in pod_dir (nothing there is
 * fine: a process pod); before the pod's dir is removed. */
void nrunc_pod_release(const char *pod_dir);

/* Looks the container's image up in the store (no pull: img_lookup) unless
 * in->info has it, makes its config.json and pod files, and has the start's
 * job make the pod's IPC namespace and /dev/shm unless spec.hostIPC
 * (rt_runc.sandbox = nrunc_pod_sandbox: a failure is a StartError). Returns 0 and *out (nrunc_start_free),
 * or a negative errno with the waiting reason (static) and message (caller
 * frees): "ErrImagePull" for an image not in the store, else nrunc_config's. */
int nrunc_start_prepare(const struct nrunc_prep *in, struct nrunc_start **out,
    const char **reason, char **err);
void nrunc_start_free(struct nrunc_start *s);

/* The runc container id of a container attempt: "POD_UID-NAME-ATTEMPT".
 * Caller frees. */
char *nrunc_id(const char *pod_uid, const char *name, int attempt);

#endif
