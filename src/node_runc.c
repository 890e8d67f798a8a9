/* node_runc.c — the OCI runtime config of a runc container, merged from the
 * image config and the pod spec as Kubernetes does (kubelet's command/args
 * rules and runAsNonRoot check, containerd's CRI defaults for capabilities,
 * mounts, masked paths), and the per-pod /etc files. Pure functions of their
 * inputs (plus the image's /etc/passwd for a user name); the node agent calls
 * them, node_runtime.c writes the bundle and the shim runs it. */
#include "node_runc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "node_cni.h"
#include "node_pod.h"
#include "node_secctx.h"
#include "obj.h"
#include "obs_metrics.h"
#include "util.h"

#define DEFAULT_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CPU_PERIOD_US	100000
#define MIN_SHARES	2
/* The pod's /dev/shm: Kubernetes' default size (64 MiB), as the base one. */
#define POD_SHM_OPTS	"mode=1777,size=65536k"

static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/proc/scsi",
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* The mounts of every container (containerd's default spec); privileged
 * ones get /sys and its cgroups read-write. */
static const struct {
	const char *dest, *type, *source, *options;
	bool ro_unless_privileged;
} base_mounts[] = {
	{ "/proc", "proc", "proc", "nosuid,noexec,nodev", false },
	{ "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k", false },
	{ "/dev/pts", "devpts", "devpts",
	    "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5", false },
	{ "/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k", false },
	{ "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev", false },
	{ "/sys", "sysfs", "sysfs", "nosuid,noexec,nodev", true },
	{ "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime", true },
};

/* The pod's /etc files, bind-mounted unless a volume takes their place. */
static const struct {
	const char *file, *dest;
} etc_files[] = {
	{ "hosts", "/etc/hosts" }, { "hostname", "/etc/hostname" },
	{ "resolv.conf", "/etc/resolv.conf" },
};

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static size_t
vlen(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static json_t *
str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *
csv_array(const char *csv)
{
	json_t *a = json_array();
	for (const char *p = csv; *p; ) {
		size_t n = strcspn(p, ",");
		json_array_append_new(a, json_stringn(p, n));
		p += n + (p[n] == ',');
	}
	return a;
}

/* ---- command and environment ------------------------------------------- */

static void
append_expanded(json_t *a, const json_t *x, char *const *env)
{
	char *s = nenv_expand(json_string_value(x) ?: "", env);
	json_array_append_new(a, json_string(s));
	free(s);
}

/* kubelet: command replaces the image's Entrypoint and drops its Cmd; args
 * replaces Cmd; $(VAR) in either expands against the container's env. */
static json_t *
merge_args(const struct img_config *img, const json_t *cs, char *const *env)
{
	const json_t *cmd = json_object_get(cs, "command"), *args = json_object_get(cs, "args");
	json_t *out = json_array();
	size_t i;
	json_t *x;
	if (json_array_size(cmd) > 0) {
		json_array_foreach(cmd, i, x)
			append_expanded(out, x, env);
	} else {
		for (char **p = img ? img->entrypoint : NULL; p && *p; p++)
			json_array_append_new(out, json_string(*p));
	}
	if (json_array_size(args) > 0) {
		json_array_foreach(args, i, x)
			append_expanded(out, x, env);
	} else if (json_array_size(cmd) == 0) {
		for (char **p = img ? img->cmd : NULL; p && *p; p++)
			json_array_append_new(out, json_string(*p));
	}
	return out;
}

/* NAME=value into env (an array), replacing an earlier NAME in place. */
static void
env_put(json_t *env, const char *kv)
{
	size_t n = strcspn(kv, "="), i;
	json_t *x;
	json_array_foreach(env, i, x) {
		const char *s = json_string_value(x);
		if (strncmp(s, kv, n) == 0 && s[n] == '=') {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

/* containerd: PATH default and HOSTNAME, then the image's env, then the
 * pod's (a later NAME wins, in the place of the first). */
static json_t *
merge_env(const struct img_config *img, char *const *pod_env, const char *hostname)
{
	json_t *env = json_array();
	char *h = xasprintf("HOSTNAME=%s", hostname);
	env_put(env, "PATH=" DEFAULT_PATH);
	env_put(env, h);
	free(h);
	for (char **p = img ? img->env : NULL; p && *p; p++)
		if (strchr(*p, '='))
			env_put(env, *p);
	for (char *const *p = pod_env; p && *p; p++)
		env_put(env, *p);
	return env;
}

/* ---- user -------------------------------------------------------------- */

static bool
is_number(const char *s, long long *v)
{
	char *end;
	if (!*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return *end == '\0' && errno == 0 && *v <= UINT32_MAX;
}

/* The topmost layer's etc/FILE (passwd, group), read whole; NULL if none.
 * Not followed out of the layer: a symlinked file is ignored. */
static char *
layer_file(char *const *layers, const char *file)
{
	for (size_t i = vlen(layers); i-- > 0; ) {
		char *path = xasprintf("%s/etc/%s", layers[i], file), *text = NULL;
		struct stat st;
		size_t len = 0;
		int rc = lstat(path, &st) == 0 && S_ISREG(st.st_mode) ?
		    file_read_all(path, &text, &len) : -ENOENT;
		free(path);
		if (rc == 0)
			return text;
	}
	return NULL;
}

/* In passwd/group text: the entry whose field `by` (0 name, 2 id) is key;
 * its id (field 2) and, for passwd, gid (field 3). Returns 0 or -ENOENT. */
static int
db_find(const char *text, int by, const char *key, long long *id, long long *gid)
{
	for (const char *line = text; line && *line; ) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *l = xstrndup(line, n), *f[4] = { 0 }, *save = NULL, *p = l;
		for (int k = 0; k < 4; k++, p = NULL)
			f[k] = strtok_r(p, ":", &save);
		long long v;
		bool hit = f[2] && f[by] && strcmp(f[by], key) == 0 && is_number(f[2], id);
		if (hit && gid)
			*gid = f[3] && is_number(f[3], &v) ? v : 0;
		free(l);
		if (hit)
			return 0;
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

struct user {
	long long uid, gid;
};

/* The image's "user[:group]" with runAsUser/runAsGroup over it, names
 * looked up in the image. Returns 0 or -EINVAL with *err. */
static int
resolve_user(const char *spec, char *const *layers, const json_t *sc, struct user *u,
    char **err)
{
	char *user = xstrdup(spec), *group = strchr(user, ':');
	char *passwd = layer_file(layers, "passwd");
	long long pw_gid = -1;
	int rc = 0;
	if (group)
		*group++ = '\0';
	u->uid = 0;
	u->gid = -1;
	if (json_is_integer(json_object_get(sc, "runAsUser"))) {
		u->uid = json_integer_value(json_object_get(sc, "runAsUser"));
	} else if (*user && !is_number(user, &u->uid) &&
	    db_find(passwd, 0, user, &u->uid, &pw_gid) < 0) {
		*err = xasprintf("unable to find user %s: no matching entries in passwd file",
		    user);
		rc = -EINVAL;
	}
	if (rc == 0 && json_is_integer(json_object_get(sc, "runAsGroup"))) {
		u->gid = json_integer_value(json_object_get(sc, "runAsGroup"));
	} else if (rc == 0 && group && *group && !json_is_integer(json_object_get(sc,
	    "runAsUser"))) {
		char *gtext = layer_file(layers, "group");
		if (!is_number(group, &u->gid) && db_find(gtext, 0, group, &u->gid, NULL) < 0) {
			*err = xasprintf("unable to find group %s: no matching entries in group "
			    "file", group);
			rc = -EINVAL;
		}
		free(gtext);
	}
	if (rc == 0 && u->gid < 0) {
		char id[24];
		snprintf(id, sizeof id, "%lld", u->uid);
		if (pw_gid < 0 && db_find(passwd, 2, id, &u->uid, &pw_gid) < 0)
			pw_gid = 0;
		u->gid = pw_gid;
	}
	free(passwd);
	free(user);
	return rc;
}

/* kubelet's verifyRunAsNonRoot, with its messages. */
static int
check_non_root(const json_t *sc, const char *image_user, const json_t *pod,
    const char *ctr, char **err)
{
	if (!json_is_true(json_object_get(sc, "runAsNonRoot")))
		return 0;
	const json_t *meta = json_object_get(pod, "metadata");
	char *who = xasprintf("(pod: \"%s_%s(%s)\", container: %s)", jstr(meta, "name"),
	    jstr(meta, "namespace"), jstr(meta, "uid"), ctr);
	json_t *rau = json_object_get(sc, "runAsUser");
	char *user = xstrndup(image_user, strcspn(image_user, ":"));
	long long uid = 0;
	int rc = -EINVAL;
	if (json_is_integer(rau) && json_integer_value(rau) == 0)
		*err = xasprintf("container's runAsUser breaks non-root policy %s", who);
	else if (json_is_integer(rau))
		rc = 0;
	else if (*user && !is_number(user, &uid))
		*err = xasprintf("container has runAsNonRoot and image has non-numeric user "
		    "(%s), cannot verify user is non-root %s", user, who);
	else if (uid == 0)
		*err = xasprintf("container has runAsNonRoot and image will run as root %s", who);
	else
		rc = 0;
	free(user);
	free(who);
	return rc;
}

/* The container's securityContext over the pod's (the fields both have). */
static json_t *
merged_sc(const json_t *pod_spec, const json_t *cs)
{
	static const char *const inherited[] = { "runAsUser", "runAsGroup", "runAsNonRoot" };
	json_t *sc = json_deep_copy(json_object_get(cs, "securityContext"));
	const json_t *psc = json_object_get(pod_spec, "securityContext");
	if (sc == NULL)
		sc = json_object();
	for (size_t i = 0; i < sizeof inherited / sizeof inherited[0]; i++)
		if (!json_object_get(sc, inherited[i]) && json_object_get(psc, inherited[i]))
			json_object_set(sc, inherited[i], json_object_get(psc, inherited[i]));
	return sc;
}

static json_t *
user_json(const struct user *u, const json_t *pod_spec)
{
	const json_t *psc = json_object_get(pod_spec, "securityContext");
	json_t *gids = json_array(), *g;
	size_t i;
	json_array_foreach(json_object_get(psc, "supplementalGroups"), i, g)
		if (json_is_integer(g))
			json_array_append(gids, g);
	if (json_is_integer(json_object_get(psc, "fsGroup")))
		json_array_append(gids, json_object_get(psc, "fsGroup"));
	json_t *o = json_pack("{s:I, s:I}", "uid", (json_int_t)u->uid, "gid", (json_int_t)u->gid);
	if (json_array_size(gids))
		json_object_set_new(o, "additionalGids", gids);
	else
		json_decref(gids);
	return o;
}

/* ---- capabilities ------------------------------------------------------ */

/* The runc capability list of a set of capability bits ("CAP_CHOWN", ...). */
static json_t *
caps_json(uint64_t set)
{
	json_t *a = json_array();
	for (int i = 0; i < secctx_cap_count(); i++)
		if (set & ((uint64_t)1 << i)) {
			char *c = xasprintf("CAP_%s", secctx_cap_name(i));
			json_array_append_new(a, json_string(c));
			free(c);
		}
	/* inheritable and ambient stay empty: a non-root user keeps none */
	return json_pack("{s:O, s:O, s:o}", "bounding", a, "effective", a, "permitted", a);
}

/* ---- mounts, namespaces, resources ------------------------------------ */

static bool
volume_at(const struct nrunc_in *in, const char *dest)
{
	for (size_t i = 0; i < in->n_mounts; i++)
		if (strcmp(in->mounts[i].target, dest) == 0)
			return true;
	return false;
}

static json_t *
bind_mount(const char *dest, const char *source, bool ro)
{
	json_t *opts = json_pack("[s, s]", "rbind", "rprivate");
	if (ro)
		json_array_append_new(opts, json_string("ro"));
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", "bind",
	    "source", source, "options", opts);
}

static json_t *
mounts_json(const struct nrunc_in *in, bool privileged)
{
	json_t *a = json_array();
	const char *shm = json_is_true(obj_get_path(in->pod, "spec.hostIPC")) ? "/dev/shm" :
	    in->shm_dir;
	for (size_t i = 0; i < sizeof base_mounts / sizeof base_mounts[0]; i++) {
		if (shm && strcmp(base_mounts[i].dest, "/dev/shm") == 0) {
			json_t *m = bind_mount("/dev/shm", shm, false);
			json_t *more = json_pack("[s, s, s]", "nosuid", "noexec", "nodev");
			json_array_extend(json_object_get(m, "options"), more);
			json_decref(more);
			json_array_append_new(a, m);
			continue;
		}
		json_t *opts = csv_array(base_mounts[i].options);
		if (base_mounts[i].ro_unless_privileged && !privileged)
			json_array_append_new(opts, json_string("ro"));
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o}", "destination",
		    base_mounts[i].dest, "type", base_mounts[i].type, "source",
		    base_mounts[i].source, "options", opts));
	}
	for (size_t i = 0; in->etc_dir && i < sizeof etc_files / sizeof etc_files[0]; i++) {
		if (volume_at(in, etc_files[i].dest))
			continue;
		char *src = xasprintf("%s/%s", in->etc_dir, etc_files[i].file);
		json_array_append_new(a, bind_mount(etc_files[i].dest, src, false));
		free(src);
	}
	for (size_t i = 0; i < in->n_mounts; i++)
		json_array_append_new(a, bind_mount(in->mounts[i].target, in->mounts[i].source,
		    in->mounts[i].read_only));
	return a;
}

/* pid, ipc, uts, mount, network; hostPID / hostIPC / hostNetwork share the
 * host's (hostNetwork also its UTS, as Kubernetes does). The pod's IPC
 * namespace, when given, is joined by path: all containers share it. Without a pod
 * network (--pod-network none) a pod stays on the host's network, as a
 * process-runtime pod does, and serves on its own 127.1.x.y address: a new,
 * empty namespace would leave it unreachable by probes, Services and peers. */
static json_t *
namespaces_json(const struct nrunc_in *in, const json_t *spec)
{
	bool host_net = json_is_true(json_object_get(spec, "hostNetwork"));
	json_t *a = json_array();
	if (!json_is_true(json_object_get(spec, "hostPID")))
		json_array_append_new(a, json_pack("{s:s}", "type", "pid"));
	if (!json_is_true(json_object_get(spec, "hostIPC")) && in->ipc_path)
		json_array_append_new(a, json_pack("{s:s, s:s}", "type", "ipc", "path",
		    in->ipc_path));
	else if (!json_is_true(json_object_get(spec, "hostIPC")))
		json_array_append_new(a, json_pack("{s:s}", "type", "ipc"));
	if (!host_net)
		json_array_append_new(a, json_pack("{s:s}", "type", "uts"));
	json_array_append_new(a, json_pack("{s:s}", "type", "mount"));
	if (!host_net && in->netns_path)
		json_array_append_new(a, json_pack("{s:s, s:s}", "type", "network", "path",
		    in->netns_path));
	return a;
}

static json_t *
resources_json(const struct nrunc_in *in, bool privileged)
{
	json_t *r = json_object();
	json_object_set_new(r, "devices", json_pack("[{s:b, s:s}]", "allow", privileged,
	    "access", "rwm"));
	if (in->memory_limit > 0)
		json_object_set_new(r, "memory", json_pack("{s:I}", "limit",
		    (json_int_t)in->memory_limit));
	int64_t shares = in->cpu_request_millis * 1024 / 1000;
	json_t *cpu = json_pack("{s:I}", "shares", (json_int_t)(shares < MIN_SHARES ?
	    MIN_SHARES : shares));
	if (in->cpu_limit_millis > 0) {
		int64_t quota = in->cpu_limit_millis * CPU_PERIOD_US / 1000;
		json_object_set_new(cpu, "quota", json_integer(quota < 1000 ? 1000 : quota));
		json_object_set_new(cpu, "period", json_integer(CPU_PERIOD_US));
	}
	json_object_set_new(r, "cpu", cpu);
	if (in->pids_limit > 0)
		json_object_set_new(r, "pids", json_pack("{s:I}", "limit",
		    (json_int_t)in->pids_limit));
	if (in->etc_dir)	/* so that blkio counts the container's bytes */
		obs_blkio_accounting(r, in->etc_dir);
	return r;
}

static char *
pod_hostname(const json_t *pod)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *h = jstr(spec, "hostname");
	if (!*h)
		h = jstr(json_object_get(pod, "metadata"), "name");
	return xstrndup(h, strnlen(h, 63));
}

/* ---- config.json ------------------------------------------------------- */

int
nrunc_config(const struct nrunc_in *in, json_t **out, const char **reason, char **err)
{
	const json_t *spec = json_object_get(in->pod, "spec"), *cs = in->cspec;
	const struct img_config *img = in->img;
	json_t *sc = merged_sc(spec, cs);
	bool privileged = json_is_true(json_object_get(sc, "privileged"));
	uint64_t caps = 0, all = ((uint64_t)1 << secctx_cap_count()) - 1;
	struct user u;
	*out = NULL;
	*err = NULL;
	*reason = "CreateContainerConfigError";
	const char *image_user = img && img->user ? img->user : "";
	int rc = check_non_root(sc, image_user, in->pod, jstr(cs, "name"), err);
	if (rc == 0)
		rc = resolve_user(image_user, in->layers, sc, &u, err);
	if (rc < 0) {
		json_decref(sc);
		return rc;
	}
	json_t *args = merge_args(img, cs, in->env);
	if (json_array_size(args) == 0 || secctx_caps(sc, all, &caps, err) < 0) {
		*reason = "CreateContainerError";
		if (*err == NULL)
			*err = xstrdup("no command specified: the image has no Entrypoint or Cmd "
			    "and the container no command");
		json_decref(args);
		json_decref(sc);
		return -EINVAL;
	}
	char *hostname = pod_hostname(in->pod);
	const char *cwd = jstr(cs, "workingDir");
	if (!*cwd)
		cwd = img && img->working_dir && *img->working_dir ? img->working_dir : "/";
	json_t *ape = json_object_get(sc, "allowPrivilegeEscalation");
	json_t *process = json_pack("{s:b, s:o, s:o, s:o, s:s, s:o, s:b}", "terminal",
	    json_is_true(json_object_get(cs, "tty")),
	    "user", user_json(&u, spec), "args", args,
	    "env", merge_env(img, in->env, hostname), "cwd", cwd,
	    "capabilities", caps_json(caps),
	    "noNewPrivileges", json_is_false(ape) && !privileged);
	json_t *linux = json_pack("{s:o, s:o}", "namespaces", namespaces_json(in, spec),
	    "resources", resources_json(in, privileged));
	if (in->cgroups_path)
		json_object_set_new(linux, "cgroupsPath", json_string(in->cgroups_path));
	if (!privileged) {
		json_object_set_new(linux, "maskedPaths", str_array(masked_paths,
		    sizeof masked_paths / sizeof masked_paths[0]));
		json_object_set_new(linux, "readonlyPaths", str_array(readonly_paths,
		    sizeof readonly_paths / sizeof readonly_paths[0]));
	}
	*out = json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2",
	    "process", process, "root", "path", "rootfs", "readonly",
	    json_is_true(json_object_get(sc, "readOnlyRootFilesystem")), "hostname", hostname,
	    "mounts", mounts_json(in, privileged), "linux", linux);
	free(hostname);
	json_decref(sc);
	return 0;
}

/* ---- per-pod files ----------------------------------------------------- */

char *
nrunc_resolv_conf(const json_t *pod)
{
	(void)pod;
	char *text = NULL;
	size_t len = 0;
	if (file_read_all("/etc/resolv.conf", &text, &len) < 0)
		text = xstrdup("");
	return text;
}

/* kubelet's managed /etc/hosts. */
static char *
hosts_text(const json_t *pod, const char *ip, const char *hostname)
{
	const json_t *spec = json_object_get(pod, "spec");
	size_t i, j;
	json_t *a, *h;
	char *text = xasprintf("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
	    "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
	    "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	    "%s%s%s%s", ip && *ip ? ip : "", ip && *ip ? "\t" : "", ip && *ip ? hostname : "",
	    ip && *ip ? "\n" : "");
	json_array_foreach(json_object_get(spec, "hostAliases"), i, a) {
		char *line = xasprintf("%s\t", jstr(a, "ip"));
		json_array_foreach(json_object_get(a, "hostnames"), j, h) {
			char *l2 = xasprintf("%s%s%s", line, j ? " " : "", json_string_value(h) ?: "");
			free(line);
			line = l2;
		}
		char *t2 = xasprintf("%s%s\n", text, line);
		free(text);
		free(line);
		text = t2;
	}
	return text;
}

json_t *
nrunc_pod_files(const json_t *pod, const char *pod_ip)
{
	char *hostname = pod_hostname(pod);
	char *hosts = hosts_text(pod, pod_ip, hostname);
	char *resolv = nrunc_resolv_conf(pod);
	json_t *files = json_pack("{s:s, s:s+, s:s}", "hosts", hosts, "hostname", hostname,
	    "\n", "resolv.conf", resolv);
	free(hostname);
	free(hosts);
	free(resolv);
	return files;
}

/* ---- the pod's IPC namespace and /dev/shm ------------------------------ */

static char *
pod_path(const char *pod_dir, const char *name)
{
	return xasprintf("%s/%s", pod_dir, name);
}

/* Whether dir is a mount point (its device differs from its parent's). */
static bool
mounted_at(const char *dir, const char *parent)
{
	struct stat a, b;
	return stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

int
nrunc_pod_sandbox(const char *pod_dir)
{
	char *ipc = pod_path(pod_dir, "ipc"), *shm = pod_path(pod_dir, "shm");
	char *parent = xstrdup(pod_dir);	/* STATE/pods, for the first pod */
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	int rc = 0, lock = -1;
	if ((mkdir(parent, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(pod_dir, 0755) < 0 && errno != EEXIST))
		rc = -errno;
	free(parent);
	/* Two containers of a pod start on two threads: one makes, the
	 * other finds (never two namespaces stacked on one path). */
	if (rc == 0 && ((lock = open(pod_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    flock(lock, LOCK_EX) < 0))
		rc = -errno;
	if (rc == 0)
		rc = ncni_ns_pin(ipc, CLONE_NEWIPC);
	if (rc == 0 && mkdir(shm, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0 && !mounted_at(shm, pod_dir) && mount("shm", shm, "tmpfs",
	    MS_NOSUID | MS_NODEV | MS_NOEXEC, POD_SHM_OPTS) < 0)
		rc = -errno;
	if (lock >= 0)
		close(lock);		/* and with it the lock */
	free(ipc);
	free(shm);
	return rc;
}

int
nrunc_pod_ipc(const char *pod_dir, char **ipc_path, char **shm_dir)
{
	int rc = nrunc_pod_sandbox(pod_dir);
	if (rc < 0)
		return rc;
	*ipc_path = pod_path(pod_dir, "ipc");
	*shm_dir = pod_path(pod_dir, "shm");
	return 0;
}

void
nrunc_pod_release(const char *pod_dir)
{
	char *ipc = pod_path(pod_dir, "ipc"), *shm = pod_path(pod_dir, "shm");
	if (mounted_at(shm, pod_dir) && umount2(shm, MNT_DETACH) < 0)
		log_warn("runc", "unmounting %s: %s", shm, strerror(errno));
	if (ncni_is_ns(ipc))
		ncni_ns_unpin(ipc);
	free(ipc);
	free(shm);
}

char *
nrunc_id(const char *pod_uid, const char *name, int attempt)
{
	return xasprintf("%s-%s-%d", pod_uid, name, attempt);
}

/* ---- a start ---------------------------------------------------------- */

int
nrunc_start_prepare(const struct nrunc_prep *in, struct nrunc_start **out,
    const char **reason, char **err)
{
	const char *image = jstr(in->cspec, "image");
	const json_t *meta = json_object_get(in->pod, "metadata");
	struct img_info *owned = NULL;
	const struct img_info *info = in->info;
	int rc = info ? 0 : in->images ? img_lookup(in->images, image, &owned) : -ENOENT;
	*out = NULL;
	if (owned)
		info = owned;
	if (rc < 0) {
		*reason = "ErrImagePull";
		*err = xasprintf("image \"%s\" is not present on this node (v6 image pull, "
		    "v6 image import)", image);
		return rc;
	}
	/* The IPC namespace and /dev/shm are made by the start's job, off the
	 * loop (rt_runc.sandbox); config.json only names them. */
	bool host_ipc = json_is_true(obj_get_path(in->pod, "spec.hostIPC"));
	char *ipc = host_ipc ? NULL : pod_path(in->pod_dir, "ipc");
	char *shm = host_ipc ? NULL : pod_path(in->pod_dir, "shm");
	struct nrunc_start *s = xcalloc(1, sizeof *s);
	char *cg = xasprintf("v6/%s/%s", jstr(meta, "uid"), jstr(in->cspec, "name"));
	s->info = owned;
	s->etc_dir = xasprintf("%s/etc", in->pod_dir);
	struct nrunc_in c = { .img = &info->config, .layers = info->layers, .pod = in->pod,
		.cspec = in->cspec, .env = in->env, .mounts = in->mounts,
		.n_mounts = in->n_mounts, .etc_dir = s->etc_dir, .netns_path = in->netns_path,
		.ipc_path = ipc, .shm_dir = shm, .cgroups_path = cg, .memory_limit = in->memory_limit,
		.cpu_limit_millis = in->cpu_limit_millis,
		.cpu_request_millis = in->cpu_request_millis, .pids_limit = in->pids_limit };
	json_t *config = NULL;
	rc = nrunc_config(&c, &config, reason, err);
	free(cg);
	free(ipc);
	free(shm);
	if (rc < 0) {
		nrunc_start_free(s);
		return rc;
	}
	s->config = json_dumps(config, JSON_COMPACT);
	json_decref(config);
	s->files = nrunc_pod_files(in->pod, in->pod_ip);
	s->r = (struct rt_runc){ .config = s->config, .layers = info->layers,
		.etc_dir = s->etc_dir, .etc_files = s->files,
		.sandbox = host_ipc ? NULL : nrunc_pod_sandbox,
		.sandbox_dir = host_ipc ? NULL : in->pod_dir };
	*out = s;
	return 0;
}

void
nrunc_start_free(struct nrunc_start *s)
{
	if (s == NULL)
		return;
	img_info_free(s->info);
	free(s->config);
	free(s->etc_dir);
	json_decref(s->files);
	free(s);
}
