/* node_volume.c — the volumes of the process runtime (node_runtime.h): the
 * node's side of PersistentVolumeClaims (a directory STATE/volumes/pvc-UID
 * per claim, made when a pod first uses it, the claim then Bound; the
 * finalizer kubernetes.io/pvc-protection holds a deleted claim until no pod
 * uses it, then the directory goes), and the mounts of a container
 * (persistentVolumeClaim, emptyDir, hostPath, and the volumes projected from
 * API objects by node_projected.c: configMap, secret, downwardAPI,
 * projected, kept up to date as those objects and the pod change, as the
 * kubelet's sync does). Started by node_agent.c. */
#include "ctrl.h"
#include "log.h"
#include "node_pod.h"
#include "node_runtime.h"
#include "node_secctx.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PVC_FINALIZER "kubernetes.io/pvc-protection"
#define PVC_RES "persistentvolumeclaims"

struct nvol {
	struct api *api;
	char *root;			/* STATE/volumes */
	char *pods;			/* STATE/pods: the pods' own dirs */
	struct ctrl_wq *wq;		/* claims, keyed "NS/NAME" */
	struct store_watch *w_claims, *w_pods, *w_cms, *w_secrets;
};

static void project_pod(struct nvol *v, const json_t *pod);

static const struct kind *
pvc_kind(void)
{
	return kind_find_gvk("v1", "PersistentVolumeClaim");
}

static char *
claim_dir(const struct nvol *v, const char *uid)
{
	return xasprintf("%s/pvc-%s", v->root, uid);
}

static bool
is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
mkdirs(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;
	for (char *s = p + 1; rc == 0; s++) {
		char c = *s;
		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == 0) {
			if (c == '\0')	/* the volume: containers read it whatever */
				chmod(p, 0755);	/* the server's umask */
		} else if (errno != EEXIST) {
			rc = -errno;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static void
remove_dir(const char *dir)
{
	if (is_dir(dir)) {
		util_remove_tree(dir);
		log_info("node", "removed volume %s", dir);
	}
}

static void
enqueue(struct nvol *v, const char *ns, const char *name)
{
	ctrl_wq_add_name(v->wq, ns, name);
}

/* ---- claims ------------------------------------------------------------- */

static bool
has_finalizer(const json_t *obj)
{
	size_t i;
	json_t *f;
	json_array_foreach(obj_get_path(obj, "metadata.finalizers"), i, f)
		if (!strcmp(json_string_value(f) ?: "", PVC_FINALIZER))
			return true;
	return false;
}

/* Does a pod of ns that has not finished use the claim? */
static bool
claim_in_use(struct nvol *v, const char *ns, const char *name)
{
	json_t *pods = NULL, *pod, *vol;
	size_t i, j;
	bool used = false;
	if (store_list(api_store(v->api), "pods", ns, &pods, NULL) < 0)
		return true;
	json_array_foreach(pods, i, pod) {
		const char *phase = obj_str_at(pod, "status.phase");
		if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))
			continue;
		json_array_foreach(obj_get_path(pod, "spec.volumes"), j, vol)
			used |= !strcmp(obj_str_at(vol, "persistentVolumeClaim.claimName"), name);
	}
	json_decref(pods);
	return used;
}

static int
write_claim(struct nvol *v, json_t *obj, bool status)
{
	struct api_error err = { 0 };
	char *ns = xstrdup(obj_namespace(obj));
	json_object_del(obj_metadata(obj), "resourceVersion");
	int rc = api_update(v->api, pvc_kind(), ns, obj, status, 0, NULL, &err);
	if (rc < 0 && err.code != 404)
		log_warn("node", "claim %s: %s", ns, err.message);
	else
		rc = 0;
	api_error_clear(&err);
	free(ns);
	return rc;
}

/* A claim being deleted: once no pod uses it, its data and finalizer go. */
static int
release_claim(struct nvol *v, const json_t *claim)
{
	if (!has_finalizer(claim) || claim_in_use(v, obj_namespace(claim), obj_name(claim)))
		return 0;
	char *dir = claim_dir(v, obj_uid(claim));
	remove_dir(dir);
	free(dir);
	json_t *o = json_deep_copy(claim), *keep = json_array(), *f;
	size_t i;
	json_array_foreach(obj_get_path(claim, "metadata.finalizers"), i, f)
		if (strcmp(json_string_value(f) ?: "", PVC_FINALIZER) != 0)
			json_array_append(keep, f);
	json_object_set_new(obj_metadata(o), "finalizers", keep);
	return write_claim(v, o, false);
}

/* The protection finalizer, then, once the directory exists, volumeName and
 * the Bound status (capacity = the request: a directory has no size). */
static int
bind_claim(struct nvol *v, const json_t *claim)
{
	char *dir = claim_dir(v, obj_uid(claim));
	bool bound = is_dir(dir);
	char *vol = xasprintf("pvc-%s", obj_uid(claim));
	int rc = 0;
	free(dir);
	if (!has_finalizer(claim) || (bound && !*obj_str_at(claim, "spec.volumeName"))) {
		json_t *o = json_deep_copy(claim), *fins = obj_get_path(o, "metadata.finalizers");
		if (!json_is_array(fins)) {
			fins = json_array();
			json_object_set_new(obj_metadata(o), "finalizers", fins);
		}
		if (!has_finalizer(claim))
			json_array_append_new(fins, json_string(PVC_FINALIZER));
		if (bound)
			json_object_set_new(json_object_get(o, "spec"), "volumeName",
			    json_string(vol));
		rc = write_claim(v, o, false);
	}
	if (rc == 0 && bound && strcmp(obj_str_at(claim, "status.phase"), "Bound") != 0) {
		json_t *o = json_deep_copy(claim);
		json_t *st = json_pack("{s:s, s:O}", "phase", "Bound", "accessModes",
		    obj_get_path(claim, "spec.accessModes"));
		json_t *storage = obj_get_path(claim, "spec.resources.requests.storage");
		if (storage)
			json_object_set_new(st, "capacity", json_pack("{s:O}", "storage", storage));
		json_object_set_new(o, "status", st);
		rc = write_claim(v, o, true);
	}
	free(vol);
	return rc;
}

static int
claim_sync(void *arg, const char *key)
{
	struct nvol *v = arg;
	const char *slash = strchr(key, '/');
	if (!slash)
		return 0;
	char *ns = xstrndup(key, (size_t)(slash - key));
	json_t *claim = NULL;
	int rc = 0;
	if (store_get(api_store(v->api), PVC_RES, ns, slash + 1, &claim) == 0)
		rc = obj_get_path(claim, "metadata.deletionTimestamp") ?
		    release_claim(v, claim) : bind_claim(v, claim);
	json_decref(claim);
	free(ns);
	return rc < 0 ? -EAGAIN : 0;
}

static void
on_claim(void *arg, enum store_event ev, const char *res, const json_t *claim, int64_t rv)
{
	struct nvol *v = arg;
	(void)res;
	(void)rv;
	if (ev != STORE_DELETED) {
		enqueue(v, obj_namespace(claim), obj_name(claim));
		return;
	}
	char *dir = claim_dir(v, obj_uid(claim));
	remove_dir(dir);
	free(dir);
}

/* A pod started, finished or gone may bind or release its claims. */
static void
on_pod(void *arg, enum store_event ev, const char *res, const json_t *pod, int64_t rv)
{
	struct nvol *v = arg;
	size_t i;
	json_t *vol;
	(void)ev;
	(void)res;
	(void)rv;
	json_array_foreach(obj_get_path(pod, "spec.volumes"), i, vol) {
		const char *name = obj_str_at(vol, "persistentVolumeClaim.claimName");
		if (*name)
			enqueue(v, obj_namespace(pod), name);
	}
	if (ev == STORE_MODIFIED)	/* labels and annotations of downwardAPI files */
		project_pod(v, pod);
}

/* Whether volume vol of a pod draws on the ConfigMap / Secret kind/name. */
static bool
uses_object(const json_t *vol, const char *kind, const char *name)
{
	bool secret = !strcmp(kind, "Secret");
	const char *own = secret ? obj_str_at(vol, "secret.secretName") :
	    obj_str_at(vol, "configMap.name");
	if (!strcmp(own, name))
		return true;
	size_t i;
	json_t *s;
	json_array_foreach(obj_get_path(vol, "projected.sources"), i, s)
		if (!strcmp(obj_str_at(s, secret ? "secret.name" : "configMap.name"), name))
			return true;
	return false;
}

/* A ConfigMap or Secret changed: the pods of its namespace that project it
 * get the new content (atomically: see node_projected.c). */
static void
on_source(struct nvol *v, const char *kind, const json_t *obj)
{
	json_t *pods = NULL, *pod, *vol;
	size_t i, j;
	if (store_list(api_store(v->api), "pods", obj_namespace(obj), &pods, NULL) < 0)
		return;
	json_array_foreach(pods, i, pod)
		json_array_foreach(obj_get_path(pod, "spec.volumes"), j, vol)
			if (uses_object(vol, kind, obj_name(obj))) {
				project_pod(v, pod);
				break;
			}
	json_decref(pods);
}

static void
on_cm(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	(void)ev, (void)res, (void)rv;
	on_source(arg, "ConfigMap", obj);
}

static void
on_secret(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	(void)ev, (void)res, (void)rv;
	on_source(arg, "Secret", obj);
}

/* pvc-UID directories whose claim is gone (deleted while we were down). */
static void
remove_stale(struct nvol *v, const json_t *claims)
{
	json_t *uids = json_object(), *c;
	size_t i;
	json_array_foreach(claims, i, c)
		json_object_set_new(uids, obj_uid(c), json_true());
	DIR *d = opendir(v->root);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "pvc-", 4) != 0 || json_object_get(uids, de->d_name + 4))
			continue;
		char *dir = xasprintf("%s/%s", v->root, de->d_name);
		remove_dir(dir);
		free(dir);
	}
	if (d)
		closedir(d);
	json_decref(uids);
}

int
nvol_start(struct api *api, const char *state_dir, struct nvol **out)
{
	struct nvol *v = xcalloc(1, sizeof *v);
	struct store *st = api_store(api);
	json_t *claims = NULL, *c;
	size_t i;
	int rc;
	v->api = api;
	v->root = xasprintf("%s/volumes", state_dir);
	v->pods = xasprintf("%s/pods", state_dir);
	v->wq = ctrl_wq_new(api_loop(api), claim_sync, v);
	ctrl_wq_set_name(v->wq, "persistentvolumeclaim");
	if ((rc = mkdirs(v->root)) < 0 ||
	    (rc = store_list(st, PVC_RES, NULL, &claims, NULL)) < 0)
		goto fail;
	remove_stale(v, claims);
	json_array_foreach(claims, i, c)
		enqueue(v, obj_namespace(c), obj_name(c));
	json_decref(claims);
	if ((rc = store_watch_start(st, PVC_RES, NULL, 0, on_claim, v, &v->w_claims)) < 0 ||
	    (rc = store_watch_start(st, "pods", NULL, 0, on_pod, v, &v->w_pods)) < 0 ||
	    (rc = store_watch_start(st, "configmaps", NULL, 0, on_cm, v, &v->w_cms)) < 0 ||
	    (rc = store_watch_start(st, "secrets", NULL, 0, on_secret, v, &v->w_secrets)) < 0)
		goto fail;
	*out = v;
	return 0;
fail:
	nvol_stop(v);
	return rc;
}

void
nvol_stop(struct nvol *v)
{
	if (!v)
		return;
	if (v->w_claims)
		store_watch_stop(v->w_claims);
	if (v->w_pods)
		store_watch_stop(v->w_pods);
	if (v->w_cms)
		store_watch_stop(v->w_cms);
	if (v->w_secrets)
		store_watch_stop(v->w_secrets);
	free(v->pods);
	ctrl_wq_free(v->wq);
	free(v->root);
	free(v);
}

/* ---- mounts ------------------------------------------------------------- */

static const json_t *
find_volume(const json_t *pod, const char *name)
{
	size_t i;
	json_t *vol;
	json_array_foreach(obj_get_path(pod, "spec.volumes"), i, vol)
		if (!strcmp(obj_str_at(vol, "name"), name))
			return vol;
	return NULL;
}

/* The host directory of a claim volume, made on first use. */
static char *
claim_source(struct nvol *v, const json_t *pod, const json_t *vol, bool *ro, char **err)
{
	const char *name = obj_str_at(vol, "persistentVolumeClaim.claimName");
	json_t *claim = NULL;
	if (store_get(api_store(v->api), PVC_RES, obj_namespace(pod), name, &claim) < 0) {
		*err = xasprintf("persistentvolumeclaim \"%s\" not found", name);
		return NULL;
	}
	char *dir = NULL;
	if (obj_get_path(claim, "metadata.deletionTimestamp"))
		*err = xasprintf("persistentvolumeclaim \"%s\" is being deleted", name);
	else {
		dir = claim_dir(v, obj_uid(claim));
		*ro |= json_is_true(obj_get_path(vol, "persistentVolumeClaim.readOnly"));
		enqueue(v, obj_namespace(pod), name);
	}
	json_decref(claim);
	return dir;
}

/* Writes projected volume vol of pod into dir (0, or -1 with *err). */
static int
project(struct nvol *v, const json_t *pod, const json_t *cspec, const json_t *vol,
    const char *dir, char **err)
{
	struct nenv_ctx ctx = { .pod = pod, .container = cspec,
		.node_cpu_millis = sysconf(_SC_NPROCESSORS_ONLN) * 1000,
		.node_memory_bytes = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE),
		.lookup = api_lookup_v1, .lookup_arg = v->api };
	struct nproj_file *f = NULL;
	size_t n = 0;
	char *why = NULL;
	int rc = nproj_files(&ctx, vol, &f, &n, &why);
	if (rc == 0)
		rc = nproj_write(dir, f, n, &why);
	nproj_files_free(f, n);
	if (rc < 0) {
		*err = xasprintf("MountVolume.SetUp failed for volume \"%s\": %s",
		    obj_str_at(vol, "name"), why);
		free(why);
		return -1;
	}
	return 0;
}

/* Rewrites the projected volumes of a running pod whose content changed
 * (only those already set up: a container start makes them). */
static void
project_pod(struct nvol *v, const json_t *pod)
{
	size_t i;
	json_t *vol;
	json_array_foreach(obj_get_path(pod, "spec.volumes"), i, vol) {
		if (!nproj_is(vol))
			continue;
		char *dir = xasprintf("%s/%s/volumes/%s", v->pods, obj_uid(pod),
		    obj_str_at(vol, "name"));
		char *data = xasprintf("%s/..data", dir), *err = NULL;
		struct stat st;
		if (lstat(data, &st) == 0 && project(v, pod,
		    json_array_get(obj_get_path(pod, "spec.containers"), 0), vol, dir, &err) < 0) {
			log_warn("volume", "pod %s/%s: %s", obj_namespace(pod), obj_name(pod), err);
			free(err);
		}
		free(data);
		free(dir);
	}
}

/* The host directory behind volume vol, or NULL with *err. */
static char *
volume_source(struct nvol *v, const json_t *pod, const json_t *cspec, const json_t *vol,
    const char *pod_dir, bool *ro, char **err)
{
	if (nproj_is(vol)) {
		char *dir = xasprintf("%s/volumes/%s", pod_dir, obj_str_at(vol, "name"));
		char *parent = xasprintf("%s/volumes", pod_dir);
		mkdirs(parent);
		free(parent);
		if (project(v, pod, cspec, vol, dir, err) < 0) {
			free(dir);
			return NULL;
		}
		*ro = true;		/* as the kubelet mounts them */
		return dir;
	}
	if (json_object_get(vol, "persistentVolumeClaim"))
		return claim_source(v, pod, vol, ro, err);
	if (json_object_get(vol, "emptyDir"))
		return xasprintf("%s/volumes/%s", pod_dir, obj_str_at(vol, "name"));
	if (json_object_get(vol, "hostPath")) {
		const char *type = obj_str_at(vol, "hostPath.type");
		const char *path = obj_str_at(vol, "hostPath.path");
		if (!strcmp(type, "Directory") && !is_dir(path)) {
			*err = xasprintf("hostPath type check failed: %s is not a directory", path);
			return NULL;
		}
		if (*type && strcmp(type, "Directory") && strcmp(type, "DirectoryOrCreate")) {
			*err = xasprintf("hostPath type %s is not supported by the process runtime",
			    type);
			return NULL;
		}
		return xstrdup(path);
	}
	*err = xasprintf("volume \"%s\": this volume type is not supported by v6 yet "
	    "(persistentVolumeClaim, emptyDir, hostPath, configMap, secret, downwardAPI and "
	    "projected are)", obj_str_at(vol, "name"));
	return NULL;
}

static bool
hostpath(const json_t *vol)
{
	return json_object_get(vol, "hostPath") != NULL;
}

/* An emptyDir is world-writable as the kubelet makes it (any runAsUser can
 * use it); an emptyDir or a claim belongs to the pod's fsGroup
 * (node_secctx.c). */
static void
volume_setup(const char *src, const json_t *vol, const json_t *pod, const char *name,
    char **err)
{
	int rc = mkdirs(src);
	if (rc == 0 && json_object_get(vol, "emptyDir") && chmod(src, 0777) < 0)
		rc = -errno;
	if (rc == 0)
		rc = secctx_volume_ownership(src, obj_get_path(pod, "spec"));
	if (rc < 0)
		*err = xasprintf("volume \"%s\": setting up %s (fsGroup): %s", name, src,
		    strerror(-rc));
}

void
nvol_mounts_free(struct rt_mount *m, int n)
{
	for (int i = 0; m && i < n; i++) {
		free((char *)m[i].source);
		free((char *)m[i].target);
	}
	free(m);
}

int
nvol_mounts(struct nvol *v, const json_t *pod, const json_t *cspec, const char *pod_dir,
    struct rt_mount **out, char **err)
{
	const json_t *vms = json_object_get(cspec, "volumeMounts");
	struct rt_mount *m = xcalloc(json_array_size(vms) + 1, sizeof *m);
	int n = 0;
	size_t i;
	json_t *vm;
	*err = NULL;
	json_array_foreach(vms, i, vm) {
		const char *name = obj_str_at(vm, "name"), *target = obj_str_at(vm, "mountPath");
		const char *sub = obj_str_at(vm, "subPath");
		const json_t *vol = find_volume(pod, name);
		bool ro = json_is_true(json_object_get(vm, "readOnly"));
		char *src = NULL;
		if (!v)
			*err = xstrdup("volumes need the node's volume manager");
		else if (*target != '/')
			*err = xasprintf("volumeMount \"%s\": mountPath must be absolute", name);
		else if (*obj_str_at(vm, "subPathExpr") || strstr(sub, ".."))
			*err = xasprintf("volumeMount \"%s\": subPathExpr and \"..\" in subPath are "
			    "not supported by v6", name);
		else if (!vol)
			*err = xasprintf("volume \"%s\" not found", name);
		else
			src = volume_source(v, pod, cspec, vol, pod_dir, &ro, err);
		if (src && !hostpath(vol))
			volume_setup(src, vol, pod, name, err);
		if (src && *sub) {
			char *s = xasprintf("%s/%s", src, sub);
			free(src);
			src = s;
		}
		int rc = src ? mkdirs(src) : 0;
		if (src && rc < 0)
			*err = xasprintf("volume \"%s\": making %s: %s", name, src, strerror(-rc));
		if (*err) {
			free(src);
			nvol_mounts_free(m, n);
			return -1;
		}
		m[n++] = (struct rt_mount){ .source = src, .target = xstrdup(target),
			.read_only = ro };
	}
	*out = m;
	return n;
}
