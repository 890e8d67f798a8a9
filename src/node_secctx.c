/* node_secctx.c — what a process-runtime container runs as, computed from
 * its pod without touching the system: the pod / container securityContext
 * merge, containerd's capability sets, kubelet's runAsNonRoot rule, and the
 * table of pod fields each runtime enforces (refused at admission by
 * api_policy.c). The node agent builds a struct secctx; the shim applies it
 * (node_shim_sec.c). */
#include "node_secctx.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "node_pod.h"
#include "obj.h"
#include "util.h"

#define CAP_BIT(n)	((uint64_t)1 << (n))

/* Linux capability numbers (linux/capability.h), by Kubernetes name. */
static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
	"SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
	"SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
	"AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};

/* containerd's default set (oci.defaultUnixCaps), which CRI containers
 * start from. */
static const char *const default_caps[] = {
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
};

int
secctx_cap_count(void)
{
	return (int)ARRAY_SIZE(cap_names);
}

const char *
secctx_cap_name(int n)
{
	return n >= 0 && n < (int)ARRAY_SIZE(cap_names) ? cap_names[n] : NULL;
}

int
secctx_cap_number(const char *name)
{
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(name, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

static bool
listed_all(const json_t *a)
{
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x)
		if (json_is_string(x) && strcasecmp(json_string_value(x), "ALL") == 0)
			return true;
	return false;
}

/* The bits of the named capabilities of a (ALL skipped). */
static int
cap_bits(const json_t *a, const char *list, uint64_t all, uint64_t *bits, char **err)
{
	size_t i;
	json_t *x;
	*bits = 0;
	json_array_foreach(a, i, x) {
		const char *s = json_string_value(x);
		if (s && strcasecmp(s, "ALL") == 0)
			continue;
		int n = s ? secctx_cap_number(s) : -1;
		if (n < 0 || (CAP_BIT(n) & all) == 0) {
			*err = xasprintf("unknown capability \"%s\" in "
			    "securityContext.capabilities.%s", s ? s : "", list);
			return -EINVAL;
		}
		*bits |= CAP_BIT(n);
	}
	return 0;
}

int
secctx_caps(const json_t *csc, uint64_t all, uint64_t *out, char **err)
{
	const json_t *caps = json_object_get(csc, "capabilities");
	const json_t *add = json_object_get(caps, "add"), *drop = json_object_get(caps, "drop");
	uint64_t set = 0, a, d;
	if (json_is_true(json_object_get(csc, "privileged"))) {
		*out = all;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
		set |= CAP_BIT(secctx_cap_number(default_caps[i]));
	if (listed_all(add))
		set = all;
	if (listed_all(drop))
		set = 0;
	int rc = cap_bits(add, "add", all, &a, err);
	if (rc == 0)
		rc = cap_bits(drop, "drop", all, &d, err);
	if (rc < 0)
		return rc;
	*out = ((set | a) & ~d) & all;
	return 0;
}

/* The fields a container's securityContext overrides in the pod's
 * (k8s.io/kubernetes/pkg/securitycontext DetermineEffectiveSecurityContext). */
static const char *const pod_level[] = {
	"seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot",
	"seccompProfile", "appArmorProfile",
};

json_t *
secctx_merge(const json_t *pod_spec, const json_t *container)
{
	const json_t *psc = json_object_get(pod_spec, "securityContext");
	const json_t *csc = json_object_get(container, "securityContext");
	json_t *m = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(pod_level); i++) {
		json_t *v = json_object_get(psc, pod_level[i]);
		if (v && !json_is_null(v))
			json_object_set(m, pod_level[i], v);
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)csc, k, v)
		if (!json_is_null(v))
			json_object_set(m, k, v);
	return m;
}

char *
secctx_check_non_root(const json_t *pod, const json_t *container, uint32_t image_uid)
{
	json_t *sc = secctx_merge(obj_get_path(pod, "spec"), container);
	const json_t *user = json_object_get(sc, "runAsUser");
	const char *name = json_string_value(json_object_get(container, "name"));
	char *msg = NULL;
	/* format.Pod: NAME_NAMESPACE(UID) */
	char *fp = xasprintf("%s_%s(%s)", obj_name(pod), obj_namespace(pod), obj_uid(pod));
	if (!json_is_true(json_object_get(sc, "runAsNonRoot")))
		;
	else if (json_is_integer(user) && json_integer_value(user) == 0)
		msg = xasprintf("container's runAsUser breaks non-root policy (pod: \"%s\", "
		    "container: %s)", fp, name ? name : "");
	else if (!json_is_integer(user) && image_uid == 0)
		msg = xasprintf("container has runAsNonRoot and image will run as root (pod: "
		    "\"%s\", container: %s)", fp, name ? name : "");
	free(fp);
	json_decref(sc);
	return msg;
}

/* supplementalGroups, then fsGroup (as the kubelet adds it), deduplicated. */
static int
build_groups(const json_t *psc, struct secctx *s, char **err)
{
	const json_t *sg = json_object_get(psc, "supplementalGroups");
	const json_t *fs = json_object_get(psc, "fsGroup");
	size_t n = json_array_size(sg);
	for (size_t i = 0; i <= n; i++) {
		const json_t *g = i < n ? json_array_get(sg, i) : fs;
		if (!json_is_integer(g))
			continue;
		uint32_t gid = (uint32_t)json_integer_value(g);
		bool dup = false;
		for (size_t k = 0; k < s->n_groups; k++)
			dup |= s->groups[k] == gid;
		if (dup)
			continue;
		if (s->n_groups == SECCTX_MAX_GROUPS) {
			*err = xasprintf("more than %d supplemental groups", SECCTX_MAX_GROUPS);
			return -EINVAL;
		}
		s->groups[s->n_groups++] = gid;
	}
	return 0;
}

/* A server that is not root can only run containers as itself. */
static int
check_unprivileged(const json_t *sc, const struct secctx *s, uint32_t node_uid,
    uint32_t node_gid, uint64_t caps, char **err)
{
	const json_t *add = obj_get_path(sc, "capabilities.add");
	const char *what = NULL;
	if (s->uid != node_uid)
		what = "runAsUser";
	else if (s->gid != node_gid)
		what = "runAsGroup";
	else if (s->n_groups > 0)
		what = "supplementalGroups / fsGroup";
	else if (json_is_true(json_object_get(sc, "privileged")))
		what = "privileged";
	else if (json_array_size(add) > 0 && caps)
		what = "capabilities.add";
	if (what == NULL)
		return 0;
	*err = xasprintf("securityContext.%s: the process runtime runs as uid %u (v6 server is "
	    "not root) and cannot change a container's user, groups or capabilities",
	    what, (unsigned)node_uid);
	return -EPERM;
}

int
secctx_build(const json_t *pod, const json_t *container, uint32_t node_uid,
    uint32_t node_gid, int last_cap, struct secctx *out, char **err)
{
	const json_t *spec = obj_get_path(pod, "spec");
	const json_t *psc = json_object_get(spec, "securityContext");
	json_t *sc = secctx_merge(spec, container);
	const json_t *user = json_object_get(sc, "runAsUser");
	const json_t *group = json_object_get(sc, "runAsGroup");
	uint64_t all = last_cap >= 63 ? UINT64_MAX : CAP_BIT(last_cap + 1) - 1, caps = 0;
	memset(out, 0, sizeof *out);
	*err = NULL;
	out->uid = json_is_integer(user) ? (uint32_t)json_integer_value(user) : node_uid;
	/* A numeric uid the (absent) image's /etc/passwd does not name gets
	 * gid 0 under containerd; without runAsUser the image user's group. */
	out->gid = json_is_integer(group) ? (uint32_t)json_integer_value(group)
	    : json_is_integer(user) ? 0 : node_gid;
	int rc = build_groups(psc, out, err);
	if (rc == 0)
		rc = secctx_caps(sc, all, &caps, err);
	if (rc == 0 && node_uid != 0)
		rc = check_unprivileged(sc, out, node_uid, node_gid, caps, err);
	if (rc < 0) {
		json_decref(sc);
		return rc;
	}
	out->no_new_privs = json_is_false(json_object_get(sc, "allowPrivilegeEscalation"));
	out->read_only_root = json_is_true(json_object_get(sc, "readOnlyRootFilesystem"));
	out->pid_ns = node_uid == 0 && !json_is_true(json_object_get(spec, "hostPID"));
	out->ipc_ns = node_uid == 0 && !json_is_true(json_object_get(spec, "hostIPC"));
	out->set_ids = out->set_caps = node_uid == 0;
	out->unmasked = json_is_true(json_object_get(sc, "privileged"));
	out->cap_bounding = out->cap_permitted = out->cap_effective = caps;
	/* Non-root: exec keeps only ambient capabilities (the file has none),
	 * so the set is also inheritable and ambient, or an added capability
	 * would be gone by the time the command runs. */
	if (out->uid != 0)
		out->cap_inheritable = out->cap_ambient = caps;
	json_decref(sc);
	return 0;
}

json_t *
secctx_to_json(const struct secctx *s)
{
	json_t *groups = json_array();
	for (size_t i = 0; i < s->n_groups; i++)
		json_array_append_new(groups, json_integer(s->groups[i]));
	/* capability masks as strings: jansson integers are signed 64-bit */
	char b[5][24];
	const uint64_t v[5] = { s->cap_bounding, s->cap_permitted, s->cap_effective,
		s->cap_inheritable, s->cap_ambient };
	for (int i = 0; i < 5; i++)
		snprintf(b[i], sizeof b[i], "%llx", (unsigned long long)v[i]);
	return json_pack("{s:b, s:I, s:I, s:o, s:b, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, "
	    "s:b, s:b}", "setIds", s->set_ids, "uid", (json_int_t)s->uid, "gid", (json_int_t)s->gid,
	    "groups", groups, "setCaps", s->set_caps, "capBounding", b[0], "capPermitted", b[1],
	    "capEffective", b[2], "capInheritable", b[3], "capAmbient", b[4],
	    "noNewPrivs", s->no_new_privs, "readOnlyRoot", s->read_only_root,
	    "pidNamespace", s->pid_ns, "ipcNamespace", s->ipc_ns, "unmasked", s->unmasked);
}

char *
secctx_image_error(const json_t *container)
{
	if (json_array_size(json_object_get(container, "command")) > 0)
		return NULL;
	const char *image = json_string_value(json_object_get(container, "image"));
	const char *name = json_string_value(json_object_get(container, "name"));
	return xasprintf("container %s has no command and image \"%s\" cannot run on the "
	    "process runtime, which runs host commands, not images: set the container's "
	    "command, or use runtimeClassName: runc", name ? name : "", image ? image : "");
}

/* /proc/sys/kernel/cap_last_cap (40 on 5.9+ kernels when unreadable). */
static int
last_cap(void)
{
	static int n;
	FILE *f;
	if (n == 0 && (f = fopen("/proc/sys/kernel/cap_last_cap", "re")) != NULL) {
		if (fscanf(f, "%d", &n) != 1 || n <= 0 || n > 63)
			n = 0;
		fclose(f);
	}
	return n > 0 ? n : 40;
}

const char *
secctx_for_start(const json_t *pod, const json_t *container, struct secctx *out, char **msg)
{
	if (strcmp(npod_runtime(obj_get_path(pod, "spec")), "process") == 0 &&
	    (*msg = secctx_image_error(container)) != NULL)
		return "CreateContainerError";
	if ((*msg = secctx_check_non_root(pod, container, (uint32_t)geteuid())) != NULL)
		return "CreateContainerConfigError";
	if (secctx_build(pod, container, (uint32_t)geteuid(), (uint32_t)getegid(), last_cap(),
	    out, msg) < 0)
		return "CreateContainerConfigError";
	return NULL;
}

/* ---- volume ownership (fsGroup) ----------------------------------------- */

static gid_t own_gid;

/* kubelet's SetVolumeOwnership: group fsGroup, group-readable and writable,
 * directories also group-executable and set-gid (new files inherit it). */
static int
own_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_SL || type == FTW_NS)
		return 0;
	if (lchown(path, (uid_t)-1, own_gid) < 0)
		return -errno;
	mode_t mode = st->st_mode & 07777;
	mode |= S_IRGRP | S_IWGRP;
	if (S_ISDIR(st->st_mode))
		mode |= S_IXGRP | S_ISGID;
	return chmod(path, mode) < 0 ? -errno : 0;
}

int
secctx_volume_ownership(const char *dir, const json_t *pod_spec)
{
	const json_t *fs = obj_get_path(pod_spec, "securityContext.fsGroup");
	const char *policy = json_string_value(obj_get_path(pod_spec,
	    "securityContext.fsGroupChangePolicy"));
	struct stat st;
	if (!json_is_integer(fs))
		return 0;
	own_gid = (gid_t)json_integer_value(fs);
	if (policy && strcmp(policy, "OnRootMismatch") == 0 && stat(dir, &st) == 0 &&
	    st.st_gid == own_gid && (st.st_mode & (S_ISGID | S_IRWXG)) == (S_ISGID | S_IRWXG))
		return 0;
	return nftw(dir, own_one, 16, FTW_PHYS);
}

/* ---- the admission table ------------------------------------------------ */

#define NO_SECCOMP	"it does not filter system calls"
#define NO_LSM		"it applies no Linux security module profile"

/* Every securityContext and pod field that asks a runtime for isolation,
 * and what each runtime does with it (runc: node_runc.c's config.json). */
const struct secctx_field secctx_fields[] = {
	{ "securityContext.runAsUser", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.runAsGroup", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.runAsNonRoot", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.supplementalGroups", false, SECCTX_ENFORCED, SECCTX_ENFORCED,
	  NULL, NULL },
	{ "securityContext.fsGroup", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.fsGroupChangePolicy", false, SECCTX_ENFORCED, SECCTX_REFUSED,
	  NULL, NULL },
	{ "securityContext.supplementalGroupsPolicy", false, SECCTX_ENFORCED, SECCTX_REFUSED,
	  NULL, NULL },
	{ "securityContext.seccompProfile", false, SECCTX_VALUES, SECCTX_VALUES,
	  "type=Unconfined", NO_SECCOMP },
	{ "securityContext.appArmorProfile", false, SECCTX_VALUES, SECCTX_VALUES,
	  "type=Unconfined", NO_LSM },
	{ "securityContext.seLinuxOptions", false, SECCTX_REFUSED, SECCTX_REFUSED, NULL, NO_LSM },
	{ "securityContext.seLinuxChangePolicy", false, SECCTX_REFUSED, SECCTX_REFUSED, NULL,
	  NO_LSM },
	{ "securityContext.windowsOptions", false, SECCTX_REFUSED, SECCTX_REFUSED, NULL,
	  "it runs Linux processes" },
	{ "securityContext.sysctls", false, SECCTX_REFUSED, SECCTX_REFUSED, NULL,
	  "its pods share the host's network namespace and kernel settings" },
	{ "hostPID", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "hostIPC", false, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "shareProcessNamespace", false, SECCTX_VALUES, SECCTX_VALUES, "false",
	  "each container has its own PID namespace" },
	{ "hostUsers", false, SECCTX_VALUES, SECCTX_VALUES, "true",
	  "it runs containers in the host's user namespace" },
	{ "securityContext.runAsUser", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.runAsGroup", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.runAsNonRoot", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.capabilities", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.privileged", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
	{ "securityContext.allowPrivilegeEscalation", true, SECCTX_ENFORCED, SECCTX_ENFORCED,
	  NULL, NULL },
	{ "securityContext.readOnlyRootFilesystem", true, SECCTX_ENFORCED, SECCTX_ENFORCED,
	  NULL, NULL },
	{ "securityContext.procMount", true, SECCTX_VALUES, SECCTX_VALUES, "Default",
	  "an unmasked /proc needs a user namespace (hostUsers: false)" },
	{ "securityContext.seccompProfile", true, SECCTX_VALUES, SECCTX_VALUES,
	  "type=Unconfined", NO_SECCOMP },
	{ "securityContext.appArmorProfile", true, SECCTX_VALUES, SECCTX_VALUES,
	  "type=Unconfined", NO_LSM },
	{ "securityContext.seLinuxOptions", true, SECCTX_REFUSED, SECCTX_REFUSED, NULL, NO_LSM },
	{ "securityContext.windowsOptions", true, SECCTX_REFUSED, SECCTX_REFUSED, NULL,
	  "it runs Linux processes" },
	{ "tty", true, SECCTX_ENFORCED, SECCTX_ENFORCED, NULL, NULL },
};
const size_t secctx_n_fields = ARRAY_SIZE(secctx_fields);

/* "type=Unconfined" against an object, "false" / "Default" against a scalar. */
static bool
value_ok(const json_t *v, const char *ok, char *shown, size_t len)
{
	const char *eq = strchr(ok, '=');
	if (eq) {
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(eq - ok), ok);
		const char *s = json_string_value(json_object_get(v, key));
		snprintf(shown, len, "%s \"%s\"", key, s ? s : "");
		return s && strcmp(s, eq + 1) == 0;
	}
	if (json_is_boolean(v))
		snprintf(shown, len, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(shown, len, "\"%s\"", json_string_value(v) ? json_string_value(v) : "");
	return strcmp(shown, ok) == 0 || (json_is_string(v) &&
	    strcmp(json_string_value(v), ok) == 0);
}

static void
admit_field(const struct secctx_field *f, const json_t *v, const char *runtime,
    const char *at, struct errlist *errs)
{
	enum secctx_support sup = strcmp(runtime, "process") == 0 ? f->process : f->runc;
	char shown[96] = "";
	if (v == NULL || json_is_null(v) || sup == SECCTX_ENFORCED)
		return;
	if (sup == SECCTX_VALUES && value_ok(v, f->ok_values, shown, sizeof shown))
		return;
	if (sup == SECCTX_VALUES)
		errlist_add(errs, at, "FieldValueForbidden", "%s is not enforced by the %s "
		    "runtime: %s (only %s is)", shown, runtime, f->why, f->ok_values);
	else
		errlist_add(errs, at, "FieldValueForbidden", "not enforced by the %s runtime%s%s",
		    runtime, f->why ? ": " : "", f->why ? f->why : "");
}

/* Kubernetes' own rule (ValidateSecurityContext): no_new_privs cannot hold
 * a privileged container or one given CAP_SYS_ADMIN. */
static void
check_escalation(const json_t *csc, const char *at, struct errlist *errs)
{
	const json_t *add = obj_get_path(csc, "capabilities.add");
	size_t i;
	json_t *x;
	if (!json_is_false(json_object_get(csc, "allowPrivilegeEscalation")))
		return;
	if (json_is_true(json_object_get(csc, "privileged")))
		errlist_add(errs, at, "FieldValueInvalid", "cannot set `allowPrivilegeEscalation` "
		    "to false and `privileged` to true");
	json_array_foreach(add, i, x)
		if (json_is_string(x) && secctx_cap_number(json_string_value(x)) == 21)
			errlist_add(errs, at, "FieldValueInvalid", "cannot set "
			    "`allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN");
}

void
secctx_admit(const json_t *pod_spec, const char *runtime, const char *prefix,
    struct errlist *errs)
{
	static const char *const lists[] = { "initContainers", "containers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		const json_t *cs = json_object_get(pod_spec, lists[l]);
		for (size_t i = 0; i < json_array_size(cs); i++) {
			char *at = xasprintf("%s.%s[%zu].securityContext", prefix, lists[l], i);
			check_escalation(obj_get_path(json_array_get(cs, i), "securityContext"), at,
			    errs);
			free(at);
		}
	}
	for (size_t k = 0; k < secctx_n_fields; k++) {
		const struct secctx_field *f = &secctx_fields[k];
		if (!f->container) {
			char *at = xasprintf("%s.%s", prefix, f->path);
			admit_field(f, obj_get_path(pod_spec, f->path), runtime, at, errs);
			free(at);
			continue;
		}
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
			const json_t *cs = json_object_get(pod_spec, lists[l]);
			for (size_t i = 0; i < json_array_size(cs); i++) {
				char *at = xasprintf("%s.%s[%zu].%s", prefix, lists[l], i, f->path);
				admit_field(f, obj_get_path(json_array_get(cs, i), f->path), runtime,
				    at, errs);
				free(at);
			}
		}
	}
}
