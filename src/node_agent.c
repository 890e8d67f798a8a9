/* node_agent.c — the node agent (V6's kubelet). It watches Pods, binds the
 * unbound ones to this node (spec.nodeName + the "v6.io/node" finalizer),
 * runs each pod's state machine (node_pod.c) against the runtime
 * (node_runtime.h), probes and hooks (node_probe.c), writes pod status only
 * when it changed, adopts containers that outlived a previous server, and
 * serves pods/log and the metrics.k8s.io API. Started by server.c. */
#include "auth.h"
#include "dns.h"
#include "node.h"
#include "node_log.h"
#include "node_pod.h"
#include "node_runc.h"
#include "node_secctx.h"
#include "http.h"
#include "log.h"
#include "obj_schema.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <malloc.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define NODE_FINALIZER		"v6.io/node"
#define PIDS_ANNOTATION		"v6.io/pids-limit"
#define METRICS_PERIOD_MS	10000	/* a running container's usage, sampled this often */
#define METRICS_FIRST_MS	1000	/* a new one: its first two samples this far apart */
#define METRICS_SETTLE_MS	300	/* a new one's first sample waits this long after its start */
#define MAX_STEP_ROUNDS		8

struct apod;

/* The agent's side of one container: runtime handle, probe and hook runs,
 * the resolved environment (for exec probes), usage samples. */
struct actr {
	struct apod *pod;
	size_t i;
	struct rt_ctr *rt;
	int attempt;
	struct nprobe_run *run[NPROBE_N + 1];	/* probes, then the hook */
	struct actx {
		struct actr *a;
		int slot;
	} ctx[NPROBE_N + 1];
	enum nhook_kind hook;
	bool hook_deferred;		/* postStart asked for while the start is under way */
	int hook_timeout_ms;
	char **envp;
	char *cwd;
	uint64_t cpu_ns;		/* last sample */
	int64_t sample_ms;		/* 0: none yet for this attempt */
	int64_t window_ms;		/* between the two samples of nanocores */
	uint64_t nanocores, memory;
	bool have_usage;
	struct img_pull *pull;		/* runc: the image step (image_pod.c) */
};

struct apod {
	struct apod *next;
	struct node *n;
	char *uid;
	json_t *obj;			/* latest stored object */
	json_t *written;		/* status as stored */
	bool gone;			/* removed from the store */
	bool inited;
	bool orphan;			/* containers without a pod */
	struct npod sm;
	struct actr *c;
	char ip[16];
	bool cni;			/* on the pod network (node_cni.c), not on loopback */
	char *netns;			/* its network namespace, once made */
	enum { DRAIN_NONE, DRAIN_WAITING, DRAIN_DONE } drain;
	char *dir;			/* STATE/pods/UID: default working dir */
	uv_timer_t timer;
	struct log_stream *streams;
	struct nattach *attaches;	/* pods/attach clients (node_attach.c) */
};

/* A `logs -f` reader. */
struct log_stream {
	struct log_stream *next;
	struct apod *pod;
	size_t ctr;
	struct http_req *req;
	struct log_follower *f;
};

struct node {
	struct api *api;
	uv_loop_t *loop;
	struct rt *rt;
	struct nvol *vol;		/* volumes (node_volume.c); NULL: none mounted */
	struct img_store *images;	/* node_config's; NULL: no image step */
	struct nipam *ipam;
	struct ncni *cni;		/* the pod network; NULL: off */
	struct store_watch *sw;
	char *name, *bin_dir, *state_dir;
	struct node_usage usage;	/* NodeMetrics (node_usage.c) */
	char *otlp_endpoint;		/* pods' OTEL_EXPORTER_OTLP_ENDPOINT, or NULL */
	char *cluster_dns;		/* node_config.cluster_dns */
	int backoff_max_s;
	int64_t log_max_bytes;		/* node_config's, passed to every container */
	int log_max_files;
	int64_t cpu_millis, memory_bytes;
	struct apod *pods;
	json_t *found;			/* rt_scan: uid -> name -> {attempt: running} */
	json_t *released;		/* uids terminated and handed back, until DELETED */
	void (*drain)(void *, const char *, void (*)(void *, bool), void *);
	void *drain_arg;
	int drains;			/* drains in flight: n is freed after the last */
	bool stopped;
	unsigned starts;		/* container starts since the last trim */
	unsigned starts_seen;		/* at the previous metrics tick */
	uv_timer_t metrics;
	uv_timer_t *node_timer;		/* Node status check (node object section) */
	json_t *node_facts;		/* the static part of the Node's status */
};

static const struct kind *
pod_kind(void)
{
	return kind_find_gvk("v1", "Pod");
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static struct apod *
pod_find(struct node *n, const char *uid)
{
	for (struct apod *p = n->pods; p; p = p->next)
		if (strcmp(p->uid, uid) == 0)
			return p;
	return NULL;
}

static bool
has_finalizer(const json_t *obj)
{
	size_t i;
	json_t *v;
	json_array_foreach(obj_get_path(obj, "metadata.finalizers"), i, v)
		if (!strcmp(json_string_value(v) ?: "", NODE_FINALIZER))
			return true;
	return false;
}

static void
event(struct apod *p, bool warning, const char *reason, const char *msg)
{
	if (p->gone || !p->obj)
		return;
	api_record_event(p->n->api, p->obj, warning ? "Warning" : "Normal", reason, "kubelet",
	    "%s", msg);
}

static void pod_sync(struct apod *p);

static void
on_pod_timer(uv_timer_t *t)
{
	pod_sync(t->data);
}

static void
schedule(struct apod *p, int64_t delay_ms)
{
	uv_timer_start(&p->timer, on_pod_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* ---- writes ------------------------------------------------------------ */

/* api_update consumes obj, so the namespace is copied first. */
static int
update(struct node *n, json_t *obj, bool status_only, json_t **out, struct api_error *err)
{
	char *ns = xstrdup(obj_namespace(obj));
	int rc = api_update(n->api, pod_kind(), ns, obj, status_only, 0, out, err);
	free(ns);
	return rc;
}

/* Binds an unbound pod and puts the finalizer on; returns 0 or -1. The
 * watched object is normally the stored one: it is written as is (its
 * resourceVersion a precondition), and only a conflict re-reads the store. */
static int
claim(struct apod *p)
{
	struct node *n = p->n;
	bool bind = !*jstr(json_object_get(p->obj, "spec"), "nodeName");
	if (!bind && (has_finalizer(p->obj) || obj_get_path(p->obj, "metadata.deletionTimestamp")))
		return 0;
	json_t *o = NULL, *out = NULL;
	struct api_error err = { 0 };
	for (int tries = 0; tries < 2; tries++) {
		api_error_clear(&err);
		if (tries == 0) {
			o = json_deep_copy(p->obj);
		} else if (api_get(n->api, pod_kind(), obj_namespace(p->obj), obj_name(p->obj), &o,
		    &err) < 0 || strcmp(obj_uid(o), p->uid) != 0) {
			api_error_clear(&err);
			json_decref(o);
			return -1;
		}
		json_t *meta = obj_metadata(o), *fins = json_object_get(meta, "finalizers");
		if (!json_is_array(fins)) {
			fins = json_array();
			json_object_set_new(meta, "finalizers", fins);
		}
		if (!has_finalizer(o))
			json_array_append_new(fins, json_string(NODE_FINALIZER));
		json_object_set_new(json_object_get(o, "spec"), "nodeName", json_string(n->name));
		if (update(n, o, false, &out, &err) == 0 || err.code != 409)
			break;
	}
	if (out == NULL) {
		log_warn("node", "binding pod %s/%s: %s", obj_namespace(p->obj),
		    obj_name(p->obj), err.message);
		api_error_clear(&err);
		return -1;
	}
	json_decref(p->obj);
	p->obj = out;
	if (bind)
		api_record_event(n->api, p->obj, "Normal", "Scheduled", "default-scheduler",
		    "Successfully assigned %s/%s to %s", obj_namespace(out), obj_name(out),
		    n->name);
	return 0;
}

/* A container whose shim is still being spawned (off the loop): the
 * pod's status waits for it, so that Running means a running process. */
static bool
pod_starting(const struct apod *p)
{
	for (size_t i = 0; i < p->sm.n; i++)
		if (p->c[i].rt && rt_starting(p->c[i].rt))
			return true;
	return false;
}

static void
write_status(struct apod *p, int64_t now)
{
	if (p->gone || p->orphan || pod_starting(p))
		return;
	json_t *st = npod_status(&p->sm, p->written, p->ip, now);
	/* In the shape the API stores (it drops nulls, such as the conditions'
	 * lastProbeTime), or every sync would send a write that changes nothing. */
	obj_prune_nulls(st);
	if (json_equal(st, p->written)) {
		json_decref(st);
		return;
	}
	json_t *o = json_deep_copy(p->obj), *out = NULL;
	json_object_set(o, "status", st);
	json_object_del(obj_metadata(o), "resourceVersion");
	struct api_error err = { 0 };
	if (update(p->n, o, true, &out, &err) < 0) {
		log_warn("node", "pod %s/%s status: %s", obj_namespace(p->obj), obj_name(p->obj),
		    err.message);
		api_error_clear(&err);
		json_decref(st);
		return;
	}
	/* Until its watch event comes, the object written; a write that changed
	 * nothing keeps the watch's object, which other parts share. */
	if (obj_resource_version(out) != obj_resource_version(p->obj)) {
		json_decref(p->obj);
		p->obj = out;
	} else {
		json_decref(out);
	}
	json_decref(p->written);
	p->written = st;
}

/* The watch's object replaces ours; the status last written is kept as the
 * watch's copy when they agree, so a running pod holds one status, not two. */
static void
pod_set_obj(struct apod *p, const json_t *obj)
{
	json_t *st = json_object_get(obj, "status");
	json_decref(p->obj);
	p->obj = json_incref((json_t *)obj);	/* watch objects are not changed */
	if (p->written && st && p->written != st && json_equal(p->written, st)) {
		json_decref(p->written);
		p->written = json_incref(st);
	}
}

/* Drops the finalizer: the API then removes the pod. */
static void
release_pod(struct apod *p)
{
	if (p->gone || p->orphan || !has_finalizer(p->obj))
		return;
	json_t *o = NULL, *keep = json_array();
	struct api_error err = { 0 };
	if (api_get(p->n->api, pod_kind(), obj_namespace(p->obj), obj_name(p->obj), &o,
	    &err) < 0 || strcmp(obj_uid(o), p->uid) != 0) {
		api_error_clear(&err);
		json_decref(o);
		json_decref(keep);
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach(obj_get_path(o, "metadata.finalizers"), i, v)
		if (strcmp(json_string_value(v) ?: "", NODE_FINALIZER) != 0)
			json_array_append(keep, v);
	json_object_set_new(obj_metadata(o), "finalizers", keep);
	if (update(p->n, o, false, NULL, &err) < 0) {
		log_warn("node", "pod %s/%s finalizer: %s", obj_namespace(p->obj),
		    obj_name(p->obj), err.message);
		api_error_clear(&err);
	}
}

/* ---- containers -------------------------------------------------------- */

/* A quantity of the container's resources.limits (or .requests with a
 * "requests." prefix in res), times scale; 0 when absent. */
static int64_t
qty_of(const json_t *c, const char *res, double scale)
{
	double d;
	bool req = str_has_prefix(res, "requests.");
	const json_t *v = json_object_get(obj_get_path(c, req ? "resources.requests" :
	    "resources.limits"), req ? res + 9 : res);
	if (json_is_string(v) && quantity_parse(json_string_value(v), &d) == 0)
		return (int64_t)(d * scale + 0.5);
	if (json_is_number(v))
		return (int64_t)(json_number_value(v) * scale + 0.5);
	return 0;
}

/* The pod's own directory (working dir by default, emptyDir volumes): made
 * by the first container start, off the loop (rt_spec.make_working_dir),
 * or by nvol_mounts for a volume in it. */
static void
pod_dir_make(struct apod *p)
{
	p->dir = xasprintf("%s/pods/%s", p->n->state_dir, p->uid);
}

/* The Services a container's environment links to: those of ns and
 * default/kubernetes (nenv_service_env picks). New reference. */
static json_t *
link_services(struct node *n, const char *ns)
{
	json_t *svcs = NULL, *k8s = NULL;
	if (store_list(api_store(n->api), "services", ns, &svcs, NULL) < 0)
		svcs = json_array();
	if (strcmp(ns, "default") != 0 &&
	    store_get(api_store(n->api), "services", "default", "kubernetes", &k8s) == 0)
		json_array_append_new(svcs, k8s);
	return svcs;
}

static bool
is_runc(const struct apod *p)
{
	return strcmp(npod_runtime(json_object_get(p->obj ? p->obj : p->sm.pod, "spec")),
	    "runc") == 0;
}

static char **
resolve_env(struct apod *p, const json_t *cspec, char **err)
{
	struct node *n = p->n;
	const json_t *pod = p->obj ? p->obj : p->sm.pod;
	json_t *svcs = link_services(n, obj_namespace(pod));
	char **links = nenv_service_env(pod, svcs);
	struct nenv_ctx ctx = { .pod = pod, .container = cspec,
		.pod_ip = p->ip, .node_name = n->name, .bin_dir = n->bin_dir,
		.otlp_endpoint = n->otlp_endpoint,
		.node_cpu_millis = n->cpu_millis, .node_memory_bytes = n->memory_bytes,
		.extra_env = (const char *const *)links, .lookup = api_lookup_v1, .lookup_arg = n->api,
		.image_env = is_runc(p) };
	char **env = nenv_resolve(&ctx, err);
	nenv_free(links);
	json_decref(svcs);
	return env;
}

static void on_ctr_exit(void *arg, struct rt_ctr *c, const struct rt_status *st);

enum { SANDBOX_RETRY_MS = 5000 };	/* after a failed CNI ADD */

/* With cluster DNS, the pod's resolv.conf (dns.c) joins its mounts at
 * /etc/resolv.conf: the shim bind-mounts it in the container's private mount
 * namespace. Its text goes into files (linked to one copy per text by the
 * start's job, off the loop: it is the same for a namespace's pods).
 * Returns the new count. */
static int
resolv_mount(struct apod *p, json_t *files, struct rt_mount **mounts, int nm)
{
	if (!p->n->cluster_dns)
		return nm;
	char *path = xasprintf("%s/resolv.conf", p->dir);
	char *text = pod_resolv_text(p->obj ? p->obj : p->sm.pod, p->n->cluster_dns);
	json_object_set_new(files, path, json_string_nocheck(text));
	free(text);
	*mounts = xrealloc(*mounts, (size_t)(nm + 1) * sizeof **mounts);
	(*mounts)[nm] = (struct rt_mount){ .source = path,
		.target = xstrdup("/etc/resolv.conf"), .read_only = true };
	return nm + 1;
}

/* The pod's ServiceAccount token, namespace and ca.crt at Kubernetes' path
 * (auth_sa.c makes them; they go into files, written by the start's job
 * into the pod's state dir, on tmpfs as the kubelet's projected volumes:
 * a secret that never reaches the disk, and files that cost no disk inode;
 * the shim or runc bind-mounts them read-only). namespace and ca.crt are
 * copies, not links to node/shared's one copy: a hard link does not cross
 * from the disk to tmpfs, and a tmpfs file costs ~0.01 ms. Returns the new
 * count (unchanged when the pod opts out or they could not be made, which
 * is logged). */
static int
sa_mount(struct apod *p, json_t *files, struct rt_mount **mounts, int nm)
{
	char *state = rt_pod_state_dir(p->n->rt, p->uid), *err = NULL;
	char *dir = xasprintf("%s/serviceaccount", state);
	json_t *sa = NULL, *v;
	const char *name;
	int rc = auth_sa_files(api_auth_sa(p->n->api), p->obj ? p->obj : p->sm.pod, &sa,
	    &err);
	if (rc != 0) {
		if (rc < 0)
			log_warn("node", "pod %s/%s: %s", p->sm.ns, p->sm.name, err);
		free(err);
		free(dir);
		free(state);
		return nm;
	}
	free(state);
	json_object_foreach(sa, name, v) {
		char *path = xasprintf("%s/%s", dir, name);
		json_object_set(files, path, v);
		free(path);
	}
	json_decref(sa);
	*mounts = xrealloc(*mounts, (size_t)(nm + 1) * sizeof **mounts);
	(*mounts)[nm] = (struct rt_mount){ .source = dir,
		.target = xstrdup("/var/run/secrets/kubernetes.io/serviceaccount"),
		.read_only = true };
	return nm + 1;
}

static void
ctr_forget_run(struct actr *a)
{
	nenv_free(a->envp);
	a->envp = NULL;
	free(a->cwd);
	a->cwd = NULL;
	a->hook_deferred = false;
	for (int k = 0; k <= NPROBE_N; k++) {
		nprobe_cancel(a->run[k]);
		a->run[k] = NULL;
	}
}

/* ---- the image step of runc containers (image_pod.c decides) ---------- */

static void
pull_event(void *arg, bool warning, const char *reason, const char *msg)
{
	struct actr *a = arg;
	event(a->pod, warning, reason, msg);
}

static void
pull_done(void *arg)
{
	struct actr *a = arg;
	pod_sync(a->pod);
}

static json_t *
pull_secret(void *arg, const char *ns, const char *name)
{
	struct actr *a = arg;
	return api_lookup_v1(a->pod->n->api, "Secret", ns, name);
}

/* The store's in-use question: "NS/NAME" of a pod running image_id. */
static char *
image_user(void *arg, const char *image_id)
{
	struct node *n = arg;
	for (struct apod *p = n->pods; p; p = p->next)
		for (size_t i = 0; p->inited && i < p->sm.n; i++)
			if (p->sm.c[i].image_id && !strcmp(p->sm.c[i].image_id, image_id))
				return xasprintf("%s/%s", p->sm.ns, p->sm.name);
	return NULL;
}

/* The namespace's image-policy.v6.io/max-image-size, checked at pull time
 * (admission cannot know an image's size). */
static int64_t
pull_max_bytes(void *arg, const char *ns)
{
	struct actr *a = arg;
	json_t *o = api_lookup_v1(a->pod->n->api, "Namespace", NULL, ns);
	int64_t max = o ? api_policy_max_image_bytes(o) : 0;
	json_decref(o);
	return max;
}

static const struct img_pull_hooks pull_hooks = { pull_event, pull_done, pull_secret,
	pull_max_bytes };

/* Whether container i may start now: true once its image is ready (*info,
 * owned by the gate) or it needs none (*info NULL); false while pulling or
 * after a failed pull (recorded). */
static bool
image_ready(struct apod *p, size_t i, int attempt, int64_t now,
    const struct img_info **info)
{
	struct img_pull_result r;
	const json_t *pod = p->obj ? p->obj : p->sm.pod;
	*info = NULL;
	if (strcmp(npod_runtime(json_object_get(pod, "spec")), "runc") != 0)
		return true;
	if (!p->n->images) {
		static const char msg[] = "no image store on this node (the images part is "
		    "off: --controllers)";
		npod_start_failed(&p->sm, i, "CreateContainerError", msg, now);
		event(p, true, "Failed", "Error: no image store on this node");
		return false;
	}
	switch (img_pull_gate(&p->c[i].pull, p->n->images, pod, p->sm.c[i].spec, attempt,
	    &pull_hooks, &p->c[i], &r)) {
	case IMG_GATE_PENDING:
		return false;
	case IMG_GATE_FAILED: {
		npod_start_failed(&p->sm, i, r.reason, r.message, now);
		char *m = xasprintf("Error: %s", r.reason);
		event(p, true, "Failed", m);
		free(m);
		return false;
	}
	}
	npod_image_id(&p->sm, i, r.image_id);
	*info = r.info;
	return true;
}

static void
start_ctr(struct apod *p, size_t i, int attempt, int64_t now)
{
	struct node *n = p->n;
	struct actr *a = &p->c[i];
	const json_t *cs = p->sm.c[i].spec;
	char *err = NULL;
	const struct img_info *image = NULL;
	if (!image_ready(p, i, attempt, now, &image))
		return;
	struct secctx sec;
	bool runc = is_runc(p);		/* runc applies the securityContext itself */
	const char *refused = runc ? NULL : secctx_for_start(p->obj ? p->obj : p->sm.pod, cs,
	    &sec, &err);
	if (refused) {			/* node_secctx.c: never started as something else */
		npod_start_failed(&p->sm, i, refused, err, now);
		char *m = xasprintf("Error: %s", err);
		event(p, true, "Failed", m);
		free(m);
		free(err);
		return;
	}
	char **envp = resolve_env(p, cs, &err);
	if (!envp) {
		npod_start_failed(&p->sm, i, "CreateContainerConfigError", err, now);
		char *m = xasprintf("Error: %s", err);
		event(p, true, "Failed", m);
		free(m);
		free(err);
		return;
	}
	struct rt_mount *mounts = NULL;
	int nm = nvol_mounts(n->vol, p->obj ? p->obj : p->sm.pod, cs, p->dir, &mounts, &err);
	if (nm < 0) {
		npod_start_failed(&p->sm, i, "CreateContainerConfigError", err, now);
		char *m = xasprintf("Error: %s", err);
		event(p, true, "FailedMount", m);
		free(m);
		free(err);
		nenv_free(envp);
		return;
	}
	json_t *files = json_object();	/* written off the loop by rt_start's job */
	json_t *shared = json_object();	/* the same, as links to one copy */
	nm = resolv_mount(p, shared, &mounts, nm);
	nm = sa_mount(p, files, &mounts, nm);
	char **argv = nenv_argv(cs, envp);
	const char *wd = jstr(cs, "workingDir");
	const char *pids = json_string_value(json_object_get(obj_get_path(p->obj ? p->obj :
	    p->sm.pod, "metadata.annotations"), PIDS_ANNOTATION));
	struct rt_spec spec = {
		.pod_uid = p->uid, .pod_namespace = p->sm.ns, .pod_name = p->sm.name,
		.name = p->sm.c[i].name, .attempt = attempt, .argv = argv, .envp = envp,
		.working_dir = *wd ? wd : p->dir, .make_working_dir = !*wd, .pod_ip = p->ip,
		.memory_limit = qty_of(cs, "memory", 1),
		.cpu_limit_millis = qty_of(cs, "cpu", 1000),
		.pids_limit = pids ? strtoll(pids, NULL, 10) : 0,
		.log_max_bytes = n->log_max_bytes, .log_max_files = n->log_max_files,
		.mounts = mounts, .n_mounts = (size_t)nm, .security = runc ? NULL : &sec,
		.files = files, .shared_files = shared,
		.stdin_open = json_is_true(json_object_get(cs, "stdin")),
		.stdin_once = json_is_true(json_object_get(cs, "stdinOnce")),
		.tty = json_is_true(json_object_get(cs, "tty")),
	};
	struct nrunc_start *rs = NULL;
	const char *reason = "CreateContainerError";
	int rc = 0;
	char *state = runc ? rt_pod_state_dir(n->rt, p->uid) : NULL;
	if (runc) {
		struct nrunc_prep rp = { .images = n->images, .info = image,
			.pod = p->obj ? p->obj : p->sm.pod,
			.cspec = cs, .env = envp, .mounts = mounts, .n_mounts = (size_t)nm,
			.pod_dir = state, .pod_ip = p->ip, .netns_path = p->netns,
			.memory_limit = spec.memory_limit,
			.cpu_limit_millis = spec.cpu_limit_millis,
			.cpu_request_millis = qty_of(cs, "requests.cpu", 1000),
			.pids_limit = spec.pids_limit };
		rc = nrunc_start_prepare(&rp, &rs, &reason, &err);
		spec.runc = rs ? &rs->r : NULL;
	}
	struct rt_ctr *c = NULL;
	if (rc == 0)
		rc = rt_start(n->rt, &spec, on_ctr_exit, a, &c, &err);
	nrunc_start_free(rs);
	free(state);
	nenv_free(argv);
	nvol_mounts_free(mounts, nm);
	json_decref(files);
	json_decref(shared);
	if (rc < 0) {
		const char *msg = err ? err : strerror(-rc);
		npod_start_failed(&p->sm, i, reason, msg, now);
		char *m = xasprintf("Error: %s", msg);
		event(p, true, "Failed", m);
		free(m);
		free(err);
		nenv_free(envp);
		return;
	}
	ctr_forget_run(a);
	a->rt = c;
	a->attempt = attempt;
	a->envp = envp;
	a->cwd = xstrdup(*wd ? wd : p->dir);
	a->have_usage = false;
	a->sample_ms = 0;
	struct rt_status st;
	rt_status(c, &st);
	npod_started(&p->sm, i, attempt, st.started_at_ms ? st.started_at_ms : now);
	char msg[160];
	snprintf(msg, sizeof msg, "Created container %s", p->sm.c[i].name);
	event(p, false, "Created", msg);
	snprintf(msg, sizeof msg, "Started container %s", p->sm.c[i].name);
	event(p, false, "Started", msg);
}

static void streams_container_exited(struct apod *p, size_t i);

static void
on_ctr_exit(void *arg, struct rt_ctr *c, const struct rt_status *st)
{
	struct actr *a = arg;
	struct apod *p = a->pod;
	if (a->rt != c) {
		rt_release(c);
		return;
	}
	npod_exited(&p->sm, a->i, a->attempt, st);
	for (int k = 0; k <= NPROBE_N; k++) {
		nprobe_cancel(a->run[k]);
		a->run[k] = NULL;
	}
	rt_release(c);
	a->rt = NULL;
	streams_container_exited(p, a->i);
	pod_sync(p);
}

static void run_handler(struct apod *p, size_t i, int slot, const json_t *h, int timeout_ms);

/* The shim runs: the pod's status (Running) is written at once, not on a
 * timer. This runs in the loop's poll phase (the spawn job's completion),
 * so the status joins the commit of the same iteration's check handle,
 * before the controllers' idle work of the next one; a timer would put
 * the ReplicaSet's and Deployment's syncs (5-15 ms with 100 pods) between
 * every status write and its commit. */
static void
on_ctr_started(void *arg, struct rt_ctr *c)
{
	struct actr *a = arg;
	if (a->rt != c)
		return;
	a->pod->n->starts++;
	if (a->hook_deferred) {
		a->hook_deferred = false;
		run_handler(a->pod, a->i, NPROBE_N, obj_get_path(json_object_get(
		    a->pod->sm.c[a->i].spec, "lifecycle"), "postStart"), a->hook_timeout_ms);
	}
	pod_sync(a->pod);
}

static void
on_run_done(void *arg, bool ok, const char *msg)
{
	struct actx *x = arg;
	struct actr *a = x->a;
	int slot = x->slot;
	struct apod *p = a->pod;
	struct npod_act ev;
	a->run[slot] = NULL;
	int64_t now = time_now_ms();
	if (slot < NPROBE_N)
		npod_probe_done(&p->sm, a->i, (enum nprobe_kind)slot, ok, msg, now, &ev);
	else
		npod_hook_done(&p->sm, a->i, a->hook, ok, msg, now, &ev);
	if (ev.reason[0])
		event(p, ev.warning, ev.reason, ev.message);
	schedule(p, 0);
}

/* An exec handler rewritten to run inside the container (rt_enter_argv),
 * or NULL to run h as it is. New reference. */
static json_t *
in_container(const struct actr *a, const json_t *h)
{
	const json_t *cmd = obj_get_path(h, "exec.command");
	json_t *argv = cmd && a->rt ? rt_enter_argv(a->rt) : NULL;
	if (argv == NULL)
		return NULL;
	json_array_extend(argv, (json_t *)cmd);
	return json_pack("{s:{s:o}}", "exec", "command", argv);
}

static void
run_handler(struct apod *p, size_t i, int slot, const json_t *h, int timeout_ms)
{
	struct actr *a = &p->c[i];
	a->ctx[slot].a = a;
	a->ctx[slot].slot = slot;
	nprobe_cancel(a->run[slot]);
	a->run[slot] = NULL;
	json_t *inside = in_container(a, h);	/* exec: in the container's namespaces */
	bool runc = a->rt && rt_is_runc(a->rt);	/* runc exec: the server's env finds runc */
	nprobe_start(p->n->loop, inside ? inside : h, p->sm.c[i].spec, p->ip,
	    runc ? NULL : a->envp, runc ? NULL : a->cwd, timeout_ms, on_run_done,
	    &a->ctx[slot], &a->run[slot]);
	json_decref(inside);
}

static const char *const probe_fields[NPROBE_N] = { "startupProbe", "livenessProbe",
	"readinessProbe" };

static void
execute(struct apod *p, const struct npod_act *x, int64_t now)
{
	struct actr *a = &p->c[x->ctr];
	const json_t *cs = p->sm.c[x->ctr].spec;
	switch (x->type) {
	case NACT_START:
		start_ctr(p, x->ctr, x->attempt, now);
		break;
	case NACT_SIGNAL:
		if (a->rt)
			rt_signal(a->rt, x->sig);
		break;
	case NACT_PROBE:
		run_handler(p, x->ctr, x->probe, json_object_get(cs, probe_fields[x->probe]),
		    x->timeout_ms);
		break;
	case NACT_HOOK:
		a->hook = x->hook;
		/* a runc container is not there until runc run -d is done */
		if (x->hook == NHOOK_POST_START && a->rt && rt_starting(a->rt)) {
			a->hook_deferred = true;
			a->hook_timeout_ms = x->timeout_ms;
			break;
		}
		run_handler(p, x->ctr, NPROBE_N, obj_get_path(json_object_get(cs, "lifecycle"),
		    x->hook == NHOOK_POST_START ? "postStart" : "preStop"), x->timeout_ms);
		break;
	case NACT_EVENT:
		event(p, x->warning, x->reason, x->message);
		break;
	}
}

/* ---- life of a pod ----------------------------------------------------- */

static void
pod_close_cb(uv_handle_t *h)
{
	struct apod *p = h->data;
	free(p->uid);
	free(p);
}

static void streams_end_all(struct apod *p);

static void
pod_free(struct apod *p, bool remove)
{
	struct node *n = p->n;
	for (struct apod **pp = &n->pods; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	streams_end_all(p);
	for (size_t i = 0; p->c && i < p->sm.n; i++) {
		ctr_forget_run(&p->c[i]);
		img_pull_free(p->c[i].pull);
		if (p->c[i].rt)
			rt_release(p->c[i].rt);
	}
	if (remove) {
		if (p->dir) {	/* first: its links to shared files go (rt_remove_pod GCs) */
			nrunc_pod_release(p->dir);	/* a pod an older server started */
			util_remove_tree(p->dir);
		}
		char *state = rt_pod_state_dir(n->rt, p->uid);
		nrunc_pod_release(state);	/* the pod's IPC ns and /dev/shm */
		free(state);
		rt_remove_pod(n->rt, p->uid);
		if (p->cni)
			ncni_release(n->cni, p->uid);
		else if (p->ip[0])
			nipam_release(n->ipam, p->ip);
	}
	free(p->netns);
	free(p->c);
	free(p->dir);
	if (p->inited)
		npod_free(&p->sm);
	json_decref(p->obj);
	json_decref(p->written);
	uv_close((uv_handle_t *)&p->timer, pod_close_cb);
}

static int
delete_grace(const json_t *obj)
{
	json_t *g = obj_get_path(obj, "metadata.deletionGracePeriodSeconds");
	return json_is_integer(g) && json_integer_value(g) > 0 ?
	    (int)json_integer_value(g) : -1;
}

/* Adopts what a previous server left running for container i. */
static void
adopt_ctr(struct apod *p, size_t i, int64_t now)
{
	struct node *n = p->n;
	struct nctr *c = &p->sm.c[i];
	json_t *seen = json_object_get(json_object_get(n->found, p->uid), c->name);
	int high = -1;
	const char *k;
	json_t *v;
	json_object_foreach(seen, k, v)
		if (atoi(k) > high)
			high = atoi(k);
	json_object_foreach(seen, k, v) {
		struct rt_ctr *dup = NULL;
		if (atoi(k) != high && json_is_true(v) && rt_adopt(n->rt, p->uid, c->name,
		    atoi(k), on_ctr_exit, &p->c[i], &dup) == 0) {
			log_warn("node", "pod %s: killing stale %s-%s", p->uid, c->name, k);
			rt_signal(dup, SIGKILL);
			rt_release(dup);
		}
	}
	struct rt_status unknown = { .state = RT_EXITED, .exit_code = 137,
		.finished_at_ms = now };
	snprintf(unknown.reason, sizeof unknown.reason, "ContainerStatusUnknown");
	if (high < 0 || high < c->attempt) {
		if (c->state == NCTR_RUNNING)
			npod_exited(&p->sm, i, c->attempt, &unknown);
		return;
	}
	if (high > c->attempt || c->state != NCTR_RUNNING) {
		if (high == c->attempt)
			return;		/* its exit is already recorded */
		if (c->state == NCTR_RUNNING)
			npod_exited(&p->sm, i, c->attempt, &unknown);
		npod_started(&p->sm, i, high, now);
	}
	struct actr *a = &p->c[i];
	if (rt_adopt(n->rt, p->uid, c->name, high, on_ctr_exit, a, &a->rt) < 0) {
		a->rt = NULL;
		npod_exited(&p->sm, i, high, &unknown);
		return;
	}
	a->attempt = high;
	struct rt_status st;
	rt_status(a->rt, &st);
	if (st.started_at_ms)
		c->started_ms = st.started_at_ms;
	c->post_start = NPOST_NONE;
	char *err = NULL;
	a->envp = resolve_env(p, c->spec, &err);
	free(err);
	const char *wd = jstr(c->spec, "workingDir");
	a->cwd = xstrdup(*wd ? wd : p->dir);
	log_info("node", "adopted container %s-%d of pod %s/%s", c->name, high, p->sm.ns,
	    p->sm.name);
}

static void
pod_init(struct apod *p, int64_t now)
{
	struct node *n = p->n;
	if (!p->orphan)
		claim(p);
	npod_init(&p->sm, p->obj, n->backoff_max_s, now);
	npod_restore(&p->sm, json_object_get(p->obj, "status"));
	p->written = json_incref(json_object_get(p->obj, "status"));
	p->c = xcalloc(p->sm.n ? p->sm.n : 1, sizeof *p->c);
	for (size_t i = 0; i < p->sm.n; i++) {
		p->c[i].pod = p;
		p->c[i].i = i;
	}
	p->inited = true;
	pod_dir_make(p);
	const char *ip = jstr(json_object_get(p->obj, "status"), "podIP");
	p->cni = n->cni && !p->orphan && strcmp(npod_runtime(json_object_get(p->obj, "spec")),
	    "runc") == 0;
	if (p->cni)
		;			/* the address comes with the sandbox (sandbox_wait) */
	else if (*ip)
		snprintf(p->ip, sizeof p->ip, "%s", ip);
	else if (!p->orphan && nipam_alloc(n->ipam, p->ip) < 0)
		log_error("node", "no pod IP left for %s/%s", p->sm.ns, p->sm.name);
	for (size_t i = 0; i < p->sm.n; i++)
		adopt_ctr(p, i, now);
	json_object_del(n->found, p->uid);
}

struct drain_ref {
	struct node *n;
	char *uid;
};

static void node_free(struct node *n);

static void
on_drained(void *arg, bool drained)
{
	struct drain_ref *r = arg;
	struct node *n = r->n;
	n->drains--;
	if (n->stopped) {
		if (n->drains == 0)
			node_free(n);
	} else {
		struct apod *p = pod_find(n, r->uid);
		if (p) {
			if (!drained)
				log_warn("node", "pod %s/%s: data plane not confirmed drained, "
				    "terminating anyway", p->sm.ns, p->sm.name);
			p->drain = DRAIN_DONE;
			schedule(p, 0);
		}
	}
	free(r->uid);
	free(r);
}

/* A pod being deleted first leaves the data plane (the proxy stops sending
 * it new requests), then its containers get preStop / SIGTERM. Returns true
 * while that is still under way. */
static bool
draining(struct apod *p)
{
	struct node *n = p->n;
	if (p->drain == DRAIN_NONE && n->drain && p->ip[0] && !p->gone) {
		struct drain_ref *r = xmalloc(sizeof *r);
		r->n = n;
		r->uid = xstrdup(p->uid);
		p->drain = DRAIN_WAITING;
		n->drains++;
		n->drain(n->drain_arg, p->ip, on_drained, r);
	}
	return p->drain == DRAIN_WAITING && !p->gone;
}

static void
on_sandbox_ready(void *arg, const char *uid)
{
	struct apod *p = pod_find(arg, uid);
	if (p)
		schedule(p, 0);
}

/* The pod network's hook: a runc pod's network namespace and address are
 * made (off the loop, node_cni.c) before its containers start. Returns
 * true while the pod must wait for them; p->ip and p->netns (the path the
 * runtime joins) are set once they are there. */
static bool
sandbox_wait(struct apod *p)
{
	const char *ip = NULL, *netns = NULL, *err = NULL;
	if (!p->cni || p->netns)
		return false;
	int rc = ncni_sandbox(p->n->cni, p->uid, on_sandbox_ready, p->n, &ip, &netns, &err);
	if (rc == 0)
		return true;
	if (rc < 0) {
		char *m = xasprintf("Failed to create pod sandbox: %s", err);
		event(p, true, "FailedCreatePodSandBox", m);
		free(m);
		schedule(p, SANDBOX_RETRY_MS);
		return true;
	}
	snprintf(p->ip, sizeof p->ip, "%s", ip);
	p->netns = xstrdup(netns);
	return false;
}

static void
pod_sync(struct apod *p)
{
	int64_t now = time_now_ms();
	if (!p->inited)
		pod_init(p, now);
	else if (!p->gone && !p->sm.deleting)
		claim(p);
	if (!p->sm.deleting && (p->gone || (obj_get_path(p->obj, "metadata.deletionTimestamp") &&
	    !draining(p))))
		npod_delete(&p->sm, p->gone ? -1 : delete_grace(p->obj), now);
	if (!p->sm.deleting && sandbox_wait(p))
		return;
	struct npod_act acts[NPOD_MAX_ACTS];
	int64_t next = INT64_MAX;
	for (int round = 0; round < MAX_STEP_ROUNDS; round++) {
		size_t k = npod_step(&p->sm, now, acts, NPOD_MAX_ACTS, &next);
		bool again = false;
		for (size_t j = 0; j < k; j++) {
			execute(p, &acts[j], now);
			again |= acts[j].type == NACT_START;
		}
		if (!again)
			break;
	}
	if (p->sm.deleting && npod_all_stopped(&p->sm)) {
		write_status(p, now);
		release_pod(p);
		/* The events of our own last writes are still to come: they must
		 * not bring the pod back to life in the agent. */
		json_object_set_new(p->n->released, p->uid, json_true());
		log_info("node", "pod %s/%s terminated", p->sm.ns, p->sm.name);
		pod_free(p, true);
		return;
	}
	write_status(p, now);
	if (next != INT64_MAX)
		schedule(p, next - now);
}

static struct apod *
pod_new(struct node *n, const char *uid, const json_t *obj)
{
	struct apod *p = xcalloc(1, sizeof *p);
	p->n = n;
	p->uid = xstrdup(uid);
	p->obj = json_incref((json_t *)obj);	/* watch objects are not changed */
	uv_timer_init(n->loop, &p->timer);
	p->timer.data = p;
	p->next = n->pods;
	n->pods = p;
	return p;
}

static bool
is_ours(struct node *n, const json_t *obj)
{
	const char *node = jstr(json_object_get(obj, "spec"), "nodeName");
	return !*node || strcmp(node, n->name) == 0;
}

static void
on_watch(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct node *n = arg;
	(void)res;
	(void)rv;
	const char *uid = obj_uid(obj);
	struct apod *p = pod_find(n, uid);
	if (ev == STORE_DELETED) {
		json_object_del(n->released, uid);
		if (p) {
			p->gone = true;
			schedule(p, 0);
		}
		return;
	}
	if (!p && (!is_ours(n, obj) || json_object_get(n->released, uid)))
		return;
	if (!p && obj_get_path(obj, "metadata.deletionTimestamp") && !has_finalizer(obj))
		return;
	if (!p) {
		p = pod_new(n, uid, obj);
	} else {
		/* The echo of the agent's own write (a claim or a status): the
		 * version it holds already, written by a sync that acted on it;
		 * syncing again finds nothing to do (100 of the 300 syncs of a
		 * burst of 100 starts). Changes of others folded into that write came
		 * first, at versions of their own, and are synced on. */
		bool echo = obj_resource_version(obj) == obj_resource_version(p->obj);
		pod_set_obj(p, obj);
		if (echo)
			return;
	}
	schedule(p, 0);
}

/* ---- start-up: adoption ------------------------------------------------- */

static void
on_found(void *arg, const char *uid, const char *name, int attempt,
    const struct rt_status *st)
{
	struct node *n = arg;
	json_t *pod = json_object_get(n->found, uid);
	if (!pod) {
		pod = json_object();
		json_object_set_new(n->found, uid, pod);
	}
	json_t *ctr = json_object_get(pod, name);
	if (!ctr) {
		ctr = json_object();
		json_object_set_new(pod, name, ctr);
	}
	char k[16];
	snprintf(k, sizeof k, "%d", attempt);
	json_object_set_new(ctr, k, json_boolean(st->state == RT_RUNNING));
}

/* Containers whose pod is gone: a synthetic pod that only terminates
 * (SIGTERM, the default grace period, SIGKILL), then removes them. */
static void
reap_orphans(struct node *n)
{
	const char *uid;
	json_t *ctrs, *tmp;
	json_object_foreach_safe(n->found, tmp, uid, ctrs) {
		if (pod_find(n, uid))
			continue;
		json_t *list = json_array();
		const char *name;
		json_t *v;
		json_object_foreach(ctrs, name, v)
			json_array_append_new(list, json_pack("{s:s, s:s}", "name", name,
			    "image", ""));
		char pname[64];
		snprintf(pname, sizeof pname, "orphan-%.40s", uid);
		json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:o}}",
		    "apiVersion", "v1", "kind", "Pod", "metadata", "name", pname,
		    "namespace", "", "uid", uid, "spec", "containers", list);
		struct apod *p = pod_new(n, uid, obj);
		json_decref(obj);
		p->orphan = true;
		p->gone = true;
		log_info("node", "pod %s is gone: stopping its containers", uid);
		schedule(p, 0);
	}
}

/* ---- pods/log ------------------------------------------------------------ */

static void
reply_status(struct http_req *req, int code, const char *reason, const char *msg)
{
	json_t *s = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", "Failure", "message", msg,
	    "reason", reason, "code", code);
	char *body = json_dumps(s, JSON_COMPACT);
	http_respond(req, code, "application/json", body, strlen(body));
	free(body);
	json_decref(s);
}

static void
log_to_buf(void *arg, const char *data, size_t len)
{
	if (data)
		buf_append(arg, data, len);
}

static void
log_to_stream(void *arg, const char *data, size_t len)
{
	struct log_stream *s = arg;
	if (data && len)
		http_stream_write(s->req, data, len);
}

static void
stream_end(struct log_stream *s)
{
	struct apod *p = s->pod;
	for (struct log_stream **pp = &p->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	log_follow_poll(s->f);
	log_follow_stop(s->f);
	http_stream_end(s->req);
	free(s);
}

static void
on_stream_abort(struct http_req *req, void *arg)
{
	(void)req;
	stream_end(arg);
}

static void
streams_container_exited(struct apod *p, size_t i)
{
	nattach_exited(&p->attaches, i);
	struct log_stream *s = p->streams, *next;
	for (; s; s = next) {
		next = s->next;
		if (s->ctr == i)
			stream_end(s);
	}
}

static void
streams_end_all(struct apod *p)
{
	nattach_exited(&p->attaches, SIZE_MAX);
	while (p->streams)
		stream_end(p->streams);
}

static char *
query(const struct http_req *req, const char *key)
{
	return http_query_get(req->query, key);
}

static bool
query_bool(const struct http_req *req, const char *key)
{
	return http_query_bool(req->query, key);
}

static int64_t
query_int(const struct http_req *req, const char *key, int64_t def)
{
	char *v = query(req, key);
	int64_t x = v && *v ? strtoll(v, NULL, 10) : def;
	free(v);
	return x;
}

/* The container a pods/log or pods/exec request names (?container=, or
 * the only one): its index, or -1 once req is answered with the error. */
static int
req_container(struct node *n, struct http_req *req, const json_t *obj, struct apod **pp)
{
	struct apod *p = *pp = pod_find(n, obj_uid(obj));
	char msg[512];
	if (!p || !p->inited) {
		snprintf(msg, sizeof msg, "pod %s has no containers running on this node",
		    obj_name(obj));
		reply_status(req, 400, "BadRequest", msg);
		return -1;
	}
	char *cname = query(req, "container");
	int i = cname && *cname ? npod_find(&p->sm, cname) : p->sm.n - p->sm.n_init == 1 ?
	    (int)p->sm.n_init : -1;
	if (i < 0) {
		struct buf b = BUF_INIT;
		for (size_t j = p->sm.n_init; j < p->sm.n; j++)
			buf_printf(&b, "%s%s", j > p->sm.n_init ? " " : "", p->sm.c[j].name);
		if (cname && *cname)
			snprintf(msg, sizeof msg, "container %s is not valid for pod %s", cname,
			    p->sm.name);
		else
			snprintf(msg, sizeof msg, "a container name must be specified for pod %s, "
			    "choose one of: [%s]", p->sm.name, b.data ? b.data : "");
		buf_free(&b);
		free(cname);
		reply_status(req, 400, "BadRequest", msg);
		return -1;
	}
	free(cname);
	return i;
}

static void
serve_log(void *arg, struct http_req *req, const json_t *obj)
{
	struct node *n = arg;
	struct apod *p;
	char msg[512];
	int i = req_container(n, req, obj, &p);
	if (i < 0)
		return;
	struct nctr *c = &p->sm.c[i];
	bool previous = query_bool(req, "previous");
	int attempt = previous ? c->attempt - 1 : c->attempt;
	if (attempt < 0) {
		snprintf(msg, sizeof msg, previous ? "previous terminated container \"%s\" in "
		    "pod \"%s\" not found" : "container \"%s\" in pod \"%s\" is waiting to "
		    "start: %s", c->name, p->sm.name, c->reason[0] ? c->reason :
		    "ContainerCreating");
		reply_status(req, 400, "BadRequest", msg);
		return;
	}
	struct log_opts o = { .tail_lines = query_int(req, "tailLines", -1),
		.limit_bytes = query_int(req, "limitBytes", 0),
		.timestamps = query_bool(req, "timestamps") };
	int64_t since = query_int(req, "sinceSeconds", 0);
	if (since > 0)
		o.since_ms = time_now_ms() - since * 1000;
	char *path = rt_log_path(n->rt, p->sm.ns, p->sm.name, p->uid, c->name, attempt);
	bool follow = query_bool(req, "follow") && !previous && c->state == NCTR_RUNNING;
	if (follow) {
		struct log_stream *s = xcalloc(1, sizeof *s);
		s->pod = p;
		s->ctr = (size_t)i;
		s->req = req;
		http_stream_start(req, 200, "text/plain");
		if (log_follow_start(n->loop, path, &o, log_to_stream, s, &s->f) < 0) {
			http_stream_end(req);
			free(s);
		} else {
			s->next = p->streams;
			p->streams = s;
			http_req_on_abort(req, on_stream_abort, s);
		}
		free(path);
		return;
	}
	struct buf b = BUF_INIT;
	int rc = log_read(path, &o, log_to_buf, &b);
	free(path);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(msg, sizeof msg, "reading the log: %s", strerror(-rc));
		reply_status(req, 500, "InternalError", msg);
	} else {
		http_respond(req, 200, "text/plain", b.data ? b.data : "", b.len);
	}
	buf_free(&b);
}

/* ---- metrics.k8s.io ------------------------------------------------------ */

/* One usage sample of a's container; from the second on, the CPU rate
 * over the time between the last two (at least most of METRICS_FIRST_MS:
 * a shorter window says little). */
static void
usage_sample(struct actr *a, int64_t now)
{
	struct rt_usage u;
	if (a->sample_ms && now - a->sample_ms < METRICS_FIRST_MS * 4 / 5)
		return;
	if (!a->rt || rt_usage(a->rt, &u) < 0)
		return;
	if (a->sample_ms && now > a->sample_ms && u.cpu_ns >= a->cpu_ns) {
		a->nanocores = (u.cpu_ns - a->cpu_ns) * 1000 / (uint64_t)(now - a->sample_ms);
		a->window_ms = now - a->sample_ms;
		a->have_usage = true;
	}
	a->cpu_ns = u.cpu_ns;
	a->sample_ms = now;
	a->memory = u.memory_bytes;
}

/* Every METRICS_FIRST_MS: samples the containers due (a new one until it
 * has figures, the others every METRICS_PERIOD_MS), so `v6 top` has a
 * pod's first figures one to two seconds after it started. A container's
 * first sample is not taken at its start: two cgroup reads per start on
 * the loop were 7 % of its work in a burst of 100 starts (bench/pods), so
 * a tick takes it, once the container is METRICS_SETTLE_MS old (a tick
 * inside a burst then samples few). */
/* A burst of starts (100 pods applied at once) leaves the heap large and
 * mostly free: once a tick sees no new start, hand the free pages back. */
static void
trim_after_burst(struct node *n)
{
	if (n->starts == 0 || n->starts != n->starts_seen) {
		n->starts_seen = n->starts;
		return;
	}
	malloc_trim(0);
	n->starts = n->starts_seen = 0;
}

/* A container started less than METRICS_SETTLE_MS ago, not sampled yet. */
static bool
usage_settling(const struct actr *a, int64_t now)
{
	struct rt_status st;
	if (!a->rt || a->sample_ms)
		return false;
	rt_status(a->rt, &st);
	return now - st.started_at_ms < METRICS_SETTLE_MS;
}

static void
on_metrics(uv_timer_t *t)
{
	struct node *n = t->data;
	int64_t now = time_now_ms();
	trim_after_burst(n);
	if (!n->usage.have || now - n->usage.at_ms >= METRICS_PERIOD_MS - 500)
		node_usage_sample(&n->usage, now);
	for (struct apod *p = n->pods; p; p = p->next)
		for (size_t i = 0; p->inited && i < p->sm.n; i++) {
			struct actr *a = &p->c[i];
			if (!usage_settling(a, now) && (!a->have_usage ||
			    now - a->sample_ms >= METRICS_PERIOD_MS - 500))
				usage_sample(a, now);
		}
}

void
node_each_container(struct node *n, node_ctr_fn fn, void *arg)
{
	for (struct apod *p = n->pods; p; p = p->next)
		for (size_t i = 0; p->inited && i < p->sm.n; i++)
			if (p->c[i].rt)
				fn(arg, p->sm.ns, p->sm.name, p->sm.c[i].name, p->sm.c[i].image,
				    p->c[i].rt);
}

static json_t *
pod_metrics(struct apod *p)
{
	json_t *cs = json_array();
	for (size_t i = 0; i < p->sm.n; i++) {
		struct actr *a = &p->c[i];
		if (!a->rt || !a->have_usage)
			continue;
		char cpu[32], mem[32];
		snprintf(cpu, sizeof cpu, "%llun", (unsigned long long)a->nanocores);
		snprintf(mem, sizeof mem, "%lluKi", (unsigned long long)(a->memory / 1024));
		json_array_append_new(cs, json_pack("{s:s, s:{s:s, s:s}}", "name",
		    p->sm.c[i].name, "usage", "cpu", cpu, "memory", mem));
	}
	if (json_array_size(cs) == 0) {
		json_decref(cs);
		return NULL;
	}
	char ts[32], window[32];
	time_format_rfc3339((time_t)(p->c[0].sample_ms / 1000), ts);
	snprintf(window, sizeof window, "%.3gs", (double)p->c[0].window_ms / 1000);
	json_t *labels = obj_labels(p->obj);	/* a pod without labels gets {} */
	labels = labels ? json_incref(labels) : json_object();
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:o}, s:s, s:s, s:o}", "kind",
	    "PodMetrics", "apiVersion", "metrics.k8s.io/v1beta1", "metadata", "name",
	    p->sm.name, "namespace", p->sm.ns, "creationTimestamp", ts, "labels",
	    labels, "timestamp", ts, "window", window, "containers", cs);
}

json_t *
node_pod_metrics(struct node *n, const char *ns, const char *name)
{
	for (struct apod *p = n->pods; p; p = p->next)
		if (p->inited && !p->orphan && !p->gone && !strcmp(ns, p->sm.ns) &&
		    !strcmp(name, p->sm.name))
			return pod_metrics(p);
	return NULL;
}

static void
reply_json(struct http_req *req, json_t *j)
{
	char *body = json_dumps(j, JSON_COMPACT);
	http_respond(req, 200, "application/json", body, strlen(body));
	free(body);
	json_decref(j);
}

static void
serve_metrics(void *arg, struct http_req *req, const char *rest)
{
	struct node *n = arg;
	char ns[256] = "", name[256] = "";
	if (!strcmp(rest, "") || !strcmp(rest, "/")) {
		reply_json(req, json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}",
		    "kind", "APIGroup", "apiVersion", "v1", "name", "metrics.k8s.io",
		    "versions", "groupVersion", "metrics.k8s.io/v1beta1", "version", "v1beta1",
		    "preferredVersion", "groupVersion", "metrics.k8s.io/v1beta1", "version",
		    "v1beta1"));
		return;
	}
	if (!strcmp(rest, "/v1beta1") || !strcmp(rest, "/v1beta1/")) {
		reply_json(req, json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:b, s:[s, s]}, "
		    "{s:s, s:s, s:s, s:b, s:[s, s]}]}",
		    "kind", "APIResourceList", "apiVersion", "v1", "groupVersion",
		    "metrics.k8s.io/v1beta1", "resources", "name", "pods", "singularName", "",
		    "kind", "PodMetrics", "namespaced", true, "verbs", "get", "list",
		    "name", "nodes", "singularName", "", "kind", "NodeMetrics", "namespaced", false,
		    "verbs", "get", "list"));
		return;
	}
	if (!strcmp(rest, "/v1beta1/nodes") || sscanf(rest, "/v1beta1/nodes/%255[^/]", name) == 1) {
		json_t *m = node_usage_metrics(&n->usage, n->name, NULL);
		if (*name && (!m || strcmp(name, n->name))) {
			json_decref(m);
			snprintf(ns, sizeof ns, "nodemetrics.metrics.k8s.io \"%.200s\" not found", name);
			reply_status(req, 404, "NotFound", ns);
		} else if (*name) {
			reply_json(req, m);
		} else {
			reply_json(req, json_pack("{s:s, s:s, s:{}, s:o}", "kind", "NodeMetricsList",
			    "apiVersion", "metrics.k8s.io/v1beta1", "metadata", "items", m ?
			    json_pack("[o]", m) : json_array()));
		}
		return;
	}
	if (strcmp(rest, "/v1beta1/pods") != 0 &&
	    sscanf(rest, "/v1beta1/namespaces/%255[^/]/pods/%255[^/]", ns, name) < 1) {
		reply_status(req, 404, "NotFound", "the server could not find the requested "
		    "resource");
		return;
	}
	if (!*name && !str_has_suffix(rest, "/pods") && *ns) {
		reply_status(req, 404, "NotFound", "the server could not find the requested "
		    "resource");
		return;
	}
	json_t *items = json_array();
	for (struct apod *p = n->pods; p; p = p->next) {
		if (!p->inited || p->orphan || p->gone || (*ns && strcmp(ns, p->sm.ns)) ||
		    (*name && strcmp(name, p->sm.name)))
			continue;
		json_t *m = pod_metrics(p);
		if (m)
			json_array_append_new(items, m);
	}
	if (*name) {
		json_t *one = json_incref(json_array_get(items, 0));
		json_decref(items);
		if (!one) {
			char msg[600];
			snprintf(msg, sizeof msg, "podmetrics.metrics.k8s.io \"%s\" not found", name);
			reply_status(req, 404, "NotFound", msg);
			return;
		}
		reply_json(req, one);
		return;
	}
	reply_json(req, json_pack("{s:s, s:s, s:{}, s:o}", "kind", "PodMetricsList",
	    "apiVersion", "metrics.k8s.io/v1beta1", "metadata", "items", items));
}

/* ---- the Node object ---------------------------------------------------- */

/* The agent registers its own Node at start (labels kubernetes.io/hostname,
 * os, arch) and keeps its status current: it looks every NODE_CHECK_MS and
 * writes only when something but the heartbeat changed, or when the
 * heartbeat is NODE_REPORT_S old (kubelet's nodeStatusReportFrequency), so
 * an idle node writes once per 5 minutes. */
#define NODE_CHECK_MS	40000
#define NODE_REPORT_S	300
#define NODE_MAX_PODS	"110"

static const struct kind *
node_kind(void)
{
	return kind_find_gvk("v1", "Node");
}

static const char *
node_arch(void)
{
	static const struct { const char *uname, *goarch; } arches[] = {
		{ "x86_64", "amd64" }, { "aarch64", "arm64" }, { "armv7l", "arm" },
		{ "armv6l", "arm" }, { "i686", "386" }, { "i386", "386" },
	};
	static struct utsname u;
	if (!u.machine[0] && uname(&u) < 0)
		return "unknown";
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (!strcmp(u.machine, arches[i].uname))
			return arches[i].goarch;
	return u.machine;
}

/* First line of a file, or "" (into out). */
static void
read_line(const char *path, const char *prefix, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[512];
	out[0] = '\0';
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, prefix, strlen(prefix)))
			continue;
		char *v = line + strlen(prefix);
		v[strcspn(v, "\n")] = '\0';
		if (*v == '"' && v[1] && v[strlen(v) - 1] == '"') {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		snprintf(out, len, "%s", v);
		break;
	}
	if (f)
		fclose(f);
}

/* The first IPv4 address of an interface that is up and not loopback. */
static void
node_ip(char out[INET_ADDRSTRLEN])
{
	struct ifaddrs *ifs = NULL;
	snprintf(out, INET_ADDRSTRLEN, "127.0.0.1");
	if (getifaddrs(&ifs) < 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK)) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
			    out, INET_ADDRSTRLEN);
			break;
		}
	freeifaddrs(ifs);
}

/* Addresses, capacity and nodeInfo: what does not change while we run. */
static json_t *
node_facts(struct node *n)
{
	char ip[INET_ADDRSTRLEN], host[256] = "localhost", os[256], machine[128], boot[128];
	struct utsname u;
	node_ip(ip);
	gethostname(host, sizeof host - 1);
	read_line("/etc/os-release", "PRETTY_NAME=", os, sizeof os);
	read_line("/etc/machine-id", "", machine, sizeof machine);
	read_line("/proc/sys/kernel/random/boot_id", "", boot, sizeof boot);
	if (uname(&u) < 0)
		u.release[0] = '\0';
	char *cpu = xasprintf("%lld", (long long)(n->cpu_millis / 1000));
	char *mem = xasprintf("%lldKi", (long long)(n->memory_bytes / 1024));
	json_t *cap = json_pack("{s:s, s:s, s:s}", "cpu", cpu, "memory", mem, "pods",
	    NODE_MAX_PODS);
	free(cpu);
	free(mem);
	return json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:o, s:O, s:{s:s, s:s, s:s, s:s,"
	    " s:s, s:s, s:s, s:s, s:s, s:s}}",
	    "addresses", "type", "InternalIP", "address", ip, "type", "Hostname", "address", host,
	    "capacity", cap, "allocatable", cap,
	    "nodeInfo", "machineID", machine, "systemUUID", machine, "bootID", boot,
	    "kernelVersion", u.release, "osImage", os[0] ? os : "Linux",
	    "containerRuntimeVersion", "v6-process://" V6_VERSION,
	    "kubeletVersion", "v6-" V6_VERSION, "kubeProxyVersion", "v6-" V6_VERSION,
	    "operatingSystem", "linux", "architecture", node_arch());
}

static const struct { const char *type, *status, *reason, *message; } node_conds[] = {
	{ "MemoryPressure", "False", "KubeletHasSufficientMemory",
	  "kubelet has sufficient memory available" },
	{ "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure" },
	{ "PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available" },
	{ "Ready", "True", "KubeletReady", "v6 node agent is posting ready status" },
};

/* The status the Node must have. Times come from old where the condition
 * did not change; heartbeats are hb (RFC 3339). */
static json_t *
node_status(struct node *n, const json_t *old, const char *hb)
{
	json_t *st = json_deep_copy(n->node_facts), *conds = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(node_conds); i++) {
		const char *since = hb;
		size_t j;
		json_t *c;
		json_array_foreach(json_object_get(old, "conditions"), j, c)
			if (!strcmp(jstr(c, "type"), node_conds[i].type) &&
			    !strcmp(jstr(c, "status"), node_conds[i].status) &&
			    *jstr(c, "lastTransitionTime"))
				since = jstr(c, "lastTransitionTime");
		json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
		    "type", node_conds[i].type, "status", node_conds[i].status,
		    "lastHeartbeatTime", hb, "lastTransitionTime", since,
		    "reason", node_conds[i].reason, "message", node_conds[i].message));
	}
	json_object_set_new(st, "conditions", conds);
	return st;
}

/* The Ready condition's lastHeartbeatTime of a stored status, or "". */
static const char *
node_heartbeat(const json_t *status)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
		if (!strcmp(jstr(c, "type"), "Ready"))
			return jstr(c, "lastHeartbeatTime");
	return "";
}

/* Sets the labels the agent owns; true when one changed. */
static bool
node_labels(struct node *n, json_t *node)
{
	json_t *meta = obj_metadata(node), *labels = json_object_get(meta, "labels");
	const char *want[][2] = { { "kubernetes.io/hostname", n->name },
		{ "kubernetes.io/os", "linux" }, { "kubernetes.io/arch", node_arch() } };
	bool changed = false;
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(meta, "labels", labels);
	}
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (strcmp(jstr(labels, want[i][0]), want[i][1])) {
			json_object_set_new(labels, want[i][0], json_string(want[i][1]));
			changed = true;
		}
	return changed;
}

/* Registers the Node if it is missing (or fixes its labels), then writes
 * its status if it changed or force is set or the heartbeat is due. */
static void
node_report(struct node *n, bool force)
{
	struct api_error err = { 0 };
	json_t *obj = NULL, *out = NULL;
	if (api_get(n->api, node_kind(), "", n->name, &obj, &err) < 0 && err.code == 404) {
		api_error_clear(&err);
		obj = json_pack("{s:s, s:s, s:{s:s}, s:{}}", "apiVersion", "v1", "kind", "Node",
		    "metadata", "name", n->name, "spec");
		node_labels(n, obj);
		json_t *made = NULL;
		if (api_create(n->api, node_kind(), "", obj, 0, &made, &err) == 0)
			log_info("node", "registered node %s", n->name);
		obj = made;
		force = true;
	} else if (obj && node_labels(n, obj)) {
		json_object_del(obj_metadata(obj), "resourceVersion");
		json_t *copy = json_deep_copy(obj);
		json_decref(obj);
		obj = NULL;
		api_update(n->api, node_kind(), "", copy, false, 0, &obj, &err);
	}
	if (!obj) {
		log_warn("node", "registering node %s: %s", n->name, err.message);
		api_error_clear(&err);
		return;
	}
	const json_t *old = json_object_get(obj, "status");
	char now[32];
	time_t hb_old;
	time_format_rfc3339(time(NULL), now);
	json_t *same = node_status(n, old, node_heartbeat(old));
	bool due = time_parse_rfc3339(node_heartbeat(old), &hb_old) < 0 ||
	    time(NULL) - hb_old >= NODE_REPORT_S;
	if (force || due || !json_equal(same, old)) {
		json_object_set_new(obj, "status", node_status(n, old, now));
		json_object_del(obj_metadata(obj), "resourceVersion");
		if (api_update(n->api, node_kind(), "", json_incref(obj), true, 0, &out, &err) < 0)
			log_warn("node", "node %s status: %s", n->name, err.message);
	}
	json_decref(same);
	json_decref(obj);
	json_decref(out);
	api_error_clear(&err);
}

static void
on_node_timer(uv_timer_t *t)
{
	node_report(t->data, false);
}

static void
node_object_start(struct node *n)
{
	n->node_facts = node_facts(n);
	node_report(n, true);
	n->node_timer = xmalloc(sizeof *n->node_timer);
	uv_timer_init(n->loop, n->node_timer);
	n->node_timer->data = n;
	uv_timer_start(n->node_timer, on_node_timer, NODE_CHECK_MS, NODE_CHECK_MS);
}

static void
node_timer_free(uv_handle_t *h)
{
	free(h);
}

static void
node_object_stop(struct node *n)
{
	if (n->node_timer)
		uv_close((uv_handle_t *)n->node_timer, node_timer_free);
	n->node_timer = NULL;
	json_decref(n->node_facts);
	n->node_facts = NULL;
}

/* ---- start / stop -------------------------------------------------------- */

static void
node_resources(struct node *n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	n->cpu_millis = (cpus > 0 ? cpus : 1) * 1000;
	n->memory_bytes = pages > 0 && psize > 0 ? (int64_t)pages * psize : 0;
}

static char *
dir_of(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	return slash ? xstrndup(path, (size_t)(slash - path)) : NULL;
}

/* The ?command= values of a query, in order, percent-decoded. */
static char **
query_all(const char *query, const char *key, size_t *n)
{
	char **v = xcalloc(strlen(query) / 2 + 2, sizeof *v);
	size_t klen = strlen(key);
	*n = 0;
	for (const char *q = query; *q; ) {
		size_t len = strcspn(q, "&");
		if (strncmp(q, key, klen) == 0 && (q[klen] == '=' || q[klen] == '&' ||
		    q[klen] == '\0')) {
			char *pair = xstrndup(q, len);
			v[(*n)++] = http_query_get(pair, key);
			free(pair);
		}
		q += len + (q[len] == '&');
	}
	return v;
}

/* Container i of p when it runs, else NULL with req answered as the
 * kubelet answers an exec or attach to it. */
static struct actr *
running_ctr(struct apod *p, int i, struct http_req *req)
{
	struct actr *a = &p->c[i];
	struct rt_status st;
	char msg[512];
	if (a->rt)
		rt_status(a->rt, &st);
	if (a->rt && st.state == RT_RUNNING && !rt_starting(a->rt))
		return a;
	snprintf(msg, sizeof msg, "unable to upgrade connection: container not found "
	    "(\"%s\")", p->sm.c[i].name);
	reply_status(req, 400, "BadRequest", msg);
	return NULL;
}

/* pods/exec: POST .../pods/NAME/exec?container=C&command=A&command=B
 * [&stdin=true] (node_exec.c streams the answer). The command runs in the
 * container (rt_enter_argv): `runc exec` for runc (its env, cwd, user),
 * `v6-shim --enter` for a process one (its namespaces, cgroups,
 * securityContext and cwd) with the container's env; as the container's
 * env and cwd alone when the server is not root. */
static void
serve_exec(void *arg, struct http_req *req, const json_t *obj)
{
	struct node *n = arg;
	struct apod *p;
	size_t nc;
	char **cmd = query_all(req->query, "command", &nc), *err = NULL;
	int i = nc == 0 ? -2 : req_container(n, req, obj, &p);
	if (i == -2)
		reply_status(req, 400, "BadRequest", "you must specify at least one command "
		    "for the container");
	if (i < 0) {
		nenv_free(cmd);
		return;
	}
	struct actr *a = running_ctr(p, i, req);
	if (!a) {
		nenv_free(cmd);
		return;
	}
	json_t *enter = rt_enter_argv(a->rt);
	bool runc = rt_is_runc(a->rt), tty = query_bool(req, "tty");
	char **argv = nexec_argv(enter, runc, tty, cmd, nc);
	json_t *proc = runc && tty ? rt_runc_process(a->rt) : NULL;
	json_decref(enter);
	if (nexec_start(n->loop, req, argv, runc ? NULL : a->envp, runc ? NULL : a->cwd,
	    query_bool(req, "stdin"), tty, proc, &err) < 0) {
		reply_status(req, 500, "InternalError", err);
		free(err);
	}
	json_decref(proc);
	nenv_free(argv);
	nenv_free(cmd);
}

/* pods/attach: GET/POST .../pods/NAME/attach?container=C&stdin=true&
 * stdout=true&stderr=true (node_attach.c): the running container's output
 * from now on and, with stdin=true, the client's input into its stdin
 * (containers started with stdin: true). */
static void
serve_attach(void *arg, struct http_req *req, const json_t *obj)
{
	struct node *n = arg;
	struct apod *p;
	char *err = NULL;
	int i = req_container(n, req, obj, &p);
	if (i < 0)
		return;
	struct actr *a = running_ctr(p, i, req);
	if (!a)
		return;
	char *log = rt_log_path(n->rt, p->sm.ns, p->sm.name, p->uid, p->sm.c[i].name,
	    a->attempt);
	char *in = query_bool(req, "stdin") ? rt_stdin_path(a->rt) : NULL;
	char *ctl = rt_ctl_path(a->rt);
	if (nattach_start(n->loop, req, &p->attaches, (size_t)i, log, in, ctl,
	    query_bool(req, "stderr"), &err) < 0) {
		reply_status(req, 500, "InternalError", err);
		free(err);
	}
	free(log);
	free(in);
	free(ctl);
}

/* pods/portforward: kubectl port-forward (node_portforward.c) to the
 * pod's network namespace, or to a process pod's own address. */
static void
serve_portforward(void *arg, struct http_req *req, const json_t *obj)
{
	struct node *n = arg;
	struct apod *p = pod_find(n, obj_uid(obj));
	char msg[512];
	if (!p || !p->inited || !p->ip[0] || (p->cni && !p->netns)) {
		snprintf(msg, sizeof msg, "unable to upgrade connection: pod %s has no "
		    "network on this node yet", obj_name(obj));
		reply_status(req, 400, "BadRequest", msg);
		return;
	}
	npf_start(n->loop, req, p->sm.name, p->cni ? p->netns : NULL, p->ip);
}

/* npod_class_handler: a RuntimeClass's handler, from the store. One node
 * agent per process, so one store to ask. */
static struct api *class_api;

static const char *
class_handler(const char *name)
{
	json_t *o = NULL;
	const char *h = NULL;
	if (class_api && store_get(api_store(class_api), "node.k8s.io/runtimeclasses", "",
	    name, &o) == 0) {
		const char *v = jstr(o, "handler");
		h = strcmp(v, "runc") == 0 ? "runc" : strcmp(v, "process") == 0 ? "process" : NULL;
	}
	json_decref(o);
	return h;
}
static void sandbox_gc(struct node *n, const json_t *pods);

int
node_start(struct api *api, const struct node_config *cfg, struct node **out)
{
	struct node *n = xcalloc(1, sizeof *n);
	char host[256] = "localhost";
	n->api = api;
	n->loop = api_loop(api);
	gethostname(host, sizeof host - 1);
	n->name = xstrdup(cfg->node_name && *cfg->node_name ? cfg->node_name : host);
	n->bin_dir = dir_of(cfg->self_exe);
	n->state_dir = xstrdup(cfg->state_dir);
	n->otlp_endpoint = cfg->otlp_endpoint ? xstrdup(cfg->otlp_endpoint) : NULL;
	n->cluster_dns = cfg->cluster_dns ? xstrdup(cfg->cluster_dns) : NULL;
	n->backoff_max_s = cfg->backoff_max_s > 0 ? cfg->backoff_max_s : NPOD_BACKOFF_MAX_S;
	n->log_max_bytes = cfg->log_max_bytes;
	n->log_max_files = cfg->log_max_files;
	n->drain = cfg->drain;
	n->drain_arg = cfg->drain_arg;
	n->images = cfg->images;
	class_api = api;
	npod_class_handler = class_handler;
	n->ipam = nipam_new();
	n->found = json_object();
	n->released = json_object();
	node_resources(n);
	int rc = rt_open(n->loop, cfg->state_dir, cfg->self_exe, &n->rt);
	if (rc < 0) {
		log_error("node", "opening the runtime in %s: %s", cfg->state_dir, strerror(-rc));
		goto fail;
	}
	rt_set_started_fn(n->rt, on_ctr_started);
	rt_scan(n->rt, on_found, n);
	if ((rc = nvol_start(api, cfg->state_dir, &n->vol)) < 0)
		log_warn("node", "volumes in %s: %s (pods with volumes will not start)",
		    cfg->state_dir, strerror(-rc));
	if (cfg->pod_network && (rc = ncni_open(n->loop, cfg->pod_network, &n->cni)) < 0)
		goto fail;
	json_t *items = NULL;
	int64_t rv = 0;
	rc = store_list(api_store(api), "pods", NULL, &items, &rv);
	if (rc < 0)
		goto fail;
	if (n->cni)
		sandbox_gc(n, items);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) {
		if (!is_ours(n, o))
			continue;
		const char *ip = jstr(json_object_get(o, "status"), "podIP");
		if (*ip)
			nipam_reserve(n->ipam, ip);
		schedule(pod_new(n, obj_uid(o), o), 0);
	}
	json_decref(items);
	size_t npods = 0;
	for (struct apod *p = n->pods; p; p = p->next)
		npods++;
	reap_orphans(n);
	rc = store_watch_start(api_store(api), "pods", NULL, rv, on_watch, n, &n->sw);
	if (rc < 0)
		goto fail;
	api_register_subresource(api, "Pod", "log", serve_log, n);
	api_register_subresource(api, "Pod", "exec", serve_exec, n);
	api_register_subresource(api, "Pod", "attach", serve_attach, n);
	api_register_subresource(api, "Pod", "portforward", serve_portforward, n);
	api_register_group(api, "metrics.k8s.io", serve_metrics, n);
	api_group_version(api, "metrics.k8s.io", "v1beta1");
	uv_timer_init(n->loop, &n->metrics);
	n->metrics.data = n;
	uv_timer_start(&n->metrics, on_metrics, METRICS_FIRST_MS, METRICS_FIRST_MS);
	node_object_start(n);
	if (n->images)
		img_store_set_in_use(n->images, image_user, n);
	log_info("node", "node agent %s started: %zu pods, back-off cap %ds", n->name,
	    npods, n->backoff_max_s);
	*out = n;
	return 0;
fail:
	node_free(n);
	return rc;
}

/* Networks of pods that are gone (deleted while the server was down, or a
 * crash between the CNI ADD and the pod's first status) are released. */
static void
sandbox_gc(struct node *n, const json_t *pods)
{
	json_t *live = json_object();
	size_t i;
	const json_t *o;
	json_array_foreach(pods, i, o)
		json_object_set_new(live, obj_uid(o), json_true());
	ncni_gc(n->cni, live);
	json_decref(live);
}

/* Frees n and what it owns; a node_start that failed half way has no
 * runtime yet. */
static void
node_free(struct node *n)
{
	if (n->rt)
		rt_close(n->rt);
	nipam_free(n->ipam);
	ncni_close(n->cni);
	json_decref(n->found);
	json_decref(n->released);
	free(n->name);
	free(n->bin_dir);
	free(n->otlp_endpoint);
	free(n->state_dir);
	free(n->cluster_dns);
	free(n);
}

static void
node_free_cb(uv_handle_t *h)
{
	struct node *n = h->data;
	n->stopped = true;
	if (n->drains == 0)
		node_free(n);
}

void
node_stop(struct node *n)
{
	if (n->sw)
		store_watch_stop(n->sw);
	n->sw = NULL;
	nvol_stop(n->vol);
	n->vol = NULL;
	if (n->images)
		img_store_set_in_use(n->images, NULL, NULL);
	node_object_stop(n);
	while (n->pods)
		pod_free(n->pods, false);
	uv_close((uv_handle_t *)&n->metrics, node_free_cb);
}
