/* node_secctx.h — securityContext for the process runtime: the pure
 * computation of what a container runs as (node_secctx.c: Kubernetes' pod /
 * container merge, containerd's capability sets, kubelet's runAsNonRoot
 * check), the table of what each runtime enforces (api_policy.c refuses the
 * rest at admission), and the shim side that applies it (node_shim_sec.c). */
#ifndef V6_NODE_SECCTX_H
#define V6_NODE_SECCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SECCTX_MAX_GROUPS 32

/* What the shim does to one container before exec. Built by secctx_build
 * on the server, carried in spec.json "security" (secctx_to_json), applied
 * by the shim (shim_sec_*). */
struct secctx {
	bool set_ids;			/* change uid/gid/groups (the shim is root) */
	uint32_t uid, gid;
	uint32_t groups[SECCTX_MAX_GROUPS];
	size_t n_groups;
	bool set_caps;			/* the shim may change capability sets */
	uint64_t cap_bounding, cap_permitted, cap_effective, cap_inheritable, cap_ambient;
	bool no_new_privs;		/* allowPrivilegeEscalation: false */
	bool read_only_root;		/* readOnlyRootFilesystem */
	bool pid_ns, ipc_ns;		/* own PID / IPC namespace (not hostPID / hostIPC) */
	bool unmasked;			/* privileged: /proc without runc's masks */
};

/* node_secctx.c */
/* Capability number of a Kubernetes name ("NET_BIND_SERVICE", "CAP_KILL",
 * any case), or -1. */
int secctx_cap_number(const char *name);
/* How many capabilities V6 knows (numbers 0..count-1) and the name of one
 * ("CHOWN"), NULL past the end. */
int secctx_cap_count(void);
const char *secctx_cap_name(int n);
/* The capability set containerd gives a container: its default set, then
 * add ALL, drop ALL, the named adds, the named drops (so a drop wins);
 * privileged: every capability up to last_cap. -EINVAL and *err (caller
 * frees) for an unknown name. */
int secctx_caps(const json_t *csc, uint64_t all, uint64_t *out, char **err);
/* The effective securityContext of a container: the pod's, with the
 * container's fields winning (DetermineEffectiveSecurityContext). New
 * object. */
json_t *secctx_merge(const json_t *pod_spec, const json_t *container);
/* kubelet's verifyRunAsNonRoot: NULL when allowed, else the message for
 * CreateContainerConfigError (caller frees). image_uid: the uid the
 * container runs as without runAsUser (the process runtime: the node's). */
char *secctx_check_non_root(const json_t *pod, const json_t *container, uint32_t image_uid);
/* Everything the shim applies to container of pod. node_uid / node_gid:
 * the server's ids (non-root: only its own ids, no added capabilities);
 * last_cap: /proc/sys/kernel/cap_last_cap. Returns 0, or -EINVAL / -EPERM
 * with *err (caller frees) for a context this node cannot honour. */
int secctx_build(const json_t *pod, const json_t *container, uint32_t node_uid,
    uint32_t node_gid, int last_cap, struct secctx *out, char **err);
json_t *secctx_to_json(const struct secctx *s);
/* What the node agent calls before it starts container of a process pod
 * (the image user is the server's uid): NULL and
 * *out filled, or the waiting reason ("CreateContainerConfigError",
 * "CreateContainerError") and *msg (caller frees): a process pod without
 * command, runAsNonRoot broken, a context this node cannot honour. */
const char *secctx_for_start(const json_t *pod, const json_t *container, struct secctx *out,
    char **msg);
/* The message for a process-runtime container that has no command (only an
 * image to run), or NULL when it has one (caller frees). */
char *secctx_image_error(const json_t *container);

/* fsGroup of pod_spec applied to a volume's directory (emptyDir, claim) as
 * the kubelet does: every file in group fsGroup, group rw, directories
 * set-gid; with fsGroupChangePolicy OnRootMismatch, skipped when the root
 * already is. Returns 0 or -errno. Blocks (a walk of the tree). */
int secctx_volume_ownership(const char *dir, const json_t *pod_spec);

/* What a runtime enforces of one pod field (the admission table). */
enum secctx_support {
	SECCTX_ENFORCED,		/* any value is honoured */
	SECCTX_REFUSED,			/* set at all: refused */
	SECCTX_VALUES,			/* only the values listed in ok_values */
};
struct secctx_field {
	const char *path;		/* relative to the pod spec or a container:
					 * "securityContext.seccompProfile" */
	bool container;			/* a container field (else a pod spec field) */
	enum secctx_support process, runc;
	const char *ok_values;		/* SECCTX_VALUES: "type=Unconfined", "true", ... */
	const char *why;		/* the reason in the refusal */
};
extern const struct secctx_field secctx_fields[];
extern const size_t secctx_n_fields;
/* Appends to errs (obj.h errlist) Kubernetes' allowPrivilegeEscalation
 * rules, then one error per field of pod_spec the
 * runtime ("process" or "runc") does not enforce, at "spec.<path>" or
 * "spec.containers[i].<path>" (prefix: "spec"). */
struct errlist;
void secctx_admit(const json_t *pod_spec, const char *runtime, const char *prefix,
    struct errlist *errs);

/* node_shim_sec.c (in the static shim) */
/* spec.json's "security" -> out. -EINVAL when j is not an object. */
int secctx_from_json(const json_t *j, struct secctx *out);
/* In the shim, before forking the container: a PID namespace of its own
 * (the next fork is its pid 1) when s->pid_ns. Returns 0 or -errno. */
int shim_sec_unshare_pid(const struct secctx *s);
/* The namespace's pid 1 (forked first): reaps orphans until the shim, its
 * parent, dies or kills it. Never returns. */
_Noreturn void shim_sec_init(void);
/* In the forked container, before its volumes are mounted: its own IPC
 * namespace and a private mount namespace (when it needs one). Returns 1
 * when it made the mount namespace, 0 when none was needed, or -errno with
 * *step set. */
int shim_sec_namespaces(const struct secctx *s, int *step);
/* After its volumes are mounted: / read-only (rw_targets, the writable
 * volumes, stay writable), a private /proc (of its PID namespace) with
 * runc's masked and read-only paths. Returns 0 or -errno with *step set
 * for shim_sec_step. */
int shim_sec_mounts(const struct secctx *s, const char *const *rw_targets, size_t n_rw,
    int *step);
/* Right before exec: setgroups, setgid, setuid, capabilities, no_new_privs. */
int shim_sec_drop(const struct secctx *s, int *step);
/* `v6-shim --enter DIR COMMAND...`: runs COMMAND in the running
 * container of DIR (its cgroups, its mount, IPC and PID namespaces, its
 * working dir, its uid, groups and capabilities), with the caller's
 * environment, and exits as it did. Exec probes and hooks use it. */
int shim_sec_enter_main(int argc, char **argv);
/* What step failed: "setuid", "mounting /proc", ... */
const char *shim_sec_step(int step);

#endif
