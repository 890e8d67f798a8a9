/* ctrl_app.c — Argo CD's Application controller on the controller core:
 * fetches the source (git.c on the thread pool, every --app-resync-period
 * or at once on a /api/webhook push), renders it (ctrl_app_render.c),
 * compares every object with the live one through an in-process dry-run
 * of the apply the CLI makes (obj_apply.c), and syncs: sync waves,
 * PreSync / Sync / PostSync / SyncFail hooks, prune, retry with back-off,
 * history. Its progress lives in status.operationState, so a server killed
 * mid-sync resumes the same wave. See docs/gitops.md. */
#include "gitops.h"
#include "http.h"
#include "log.h"
#include "node_pod.h"
#include "obj_apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_COMPONENT "argocd-application-controller"
#define APP_DEFAULT_RESYNC_MS (3 * 60 * 1000)
#define APP_STEP_MS 1000		/* a sync in progress looks again this soon */
#define APP_HISTORY_DEFAULT 10

/* What one Application's source rendered to, kept between syncs. */
struct app_mem {
	char *key;		/* "NS/NAME" */
	char *name;
	char *url_norm;		/* for the webhook */
	char *src_id;		/* the source + revision the result is for */
	char sha[41];
	json_t *objs;		/* rendered objects, or NULL */
	int type;		/* APP_DIRECTORY, APP_KUSTOMIZE */
	char *error;		/* why not */
	int64_t fetched_ms;	/* monotonic; 0: never */
	bool busy, refresh;
	struct app_mem *next;
};

struct ctrl_app {
	struct ctrl *core;
	struct api *api;
	char *cache;
	int64_t resync_ms;
	struct app_mem *mem;
	json_t *recording;	/* operationState the running write list reports to */
	struct store_watch *sw;	/* every resource: changes of tracked objects */
};

enum { TAG_APPLY = 1, TAG_PRUNE, TAG_HOOK, TAG_STATUS, TAG_APP };

/* ---- memory per Application ---------------------------------------------- */

static void
mem_free(struct app_mem *m)
{
	free(m->key);
	free(m->name);
	free(m->url_norm);
	free(m->src_id);
	json_decref(m->objs);
	free(m->error);
	free(m);
}

static struct app_mem *
mem_find(struct ctrl_app *a, const char *key)
{
	for (struct app_mem *m = a->mem; m; m = m->next)
		if (!strcmp(m->key, key))
			return m;
	return NULL;
}

static struct app_mem *
mem_get(struct ctrl_app *a, const json_t *app)
{
	char *key = xasprintf("%s/%s", obj_namespace(app), obj_name(app));
	struct app_mem *m = mem_find(a, key);
	if (m) {
		free(key);
		return m;
	}
	m = xcalloc(1, sizeof *m);
	m->key = key;
	m->name = xstrdup(obj_name(app));
	m->next = a->mem;
	a->mem = m;
	return m;
}

static void
mem_drop(struct ctrl_app *a, const json_t *app)
{
	char *key = xasprintf("%s/%s", obj_namespace(app), obj_name(app));
	for (struct app_mem **p = &a->mem; *p; p = &(*p)->next)
		if (!strcmp((*p)->key, key)) {
			struct app_mem *gone = *p;
			*p = gone->next;
			mem_free(gone);
			break;
		}
	free(key);
}

/* ---- fetch and render on the thread pool ---------------------------------- */

struct app_fetch {
	char *cache, *url, *rev, *src_id;
	int64_t queued_ms;
	json_t *src;
	struct git_creds creds;
	char sha[41];
	json_t *objs;
	char *err;
	int type;		/* APP_DIRECTORY, APP_KUSTOMIZE */
};

static void
fetch_work(void *arg)
{
	struct app_fetch *f = arg;
	char *tree = NULL;
	if (git_checkout(f->cache, f->url, f->rev, &f->creds, f->sha, &tree, &f->err) == 0) {
		char *err = NULL;
		if ((f->type = app_render(tree, f->src, &f->objs, &err)) < 0) {
			f->err = xasprintf("failed to generate manifest: %s", err);
			free(err);
		}
	}
	free(tree);
}

static void
fetch_free(struct app_fetch *f)
{
	free(f->cache);
	free(f->url);
	free(f->rev);
	free(f->src_id);
	json_decref(f->src);
	git_creds_free(&f->creds);
	json_decref(f->objs);
	free(f->err);
	free(f);
}

static void
fetch_done(struct ctrl *c, void *arg, int status)
{
	struct app_fetch *f = arg;
	struct app_mem *m = c ? mem_find(ctrl_data(c), f->src_id + strlen(f->src_id) + 1) : NULL;
	if (m) {
		m->busy = false;
		m->fetched_ms = time_mono_ms();
		free(m->src_id);
		m->src_id = xstrdup(f->src_id);
		memcpy(m->sha, f->sha, sizeof m->sha);
		json_decref(m->objs);
		m->objs = f->err ? NULL : json_incref(f->objs);
		m->type = f->type;
		free(m->error);
		m->error = f->err ? xasprintf("Failed to load target state: %s", f->err) :
		    status < 0 ? xstrdup("Failed to load target state: fetch cancelled") : NULL;
		if (m->error)
			log_warn("gitops", "%s: %s", m->key, m->error);
		else
			log_info("gitops", "%s: %s at %s: %zu objects, fetched and rendered in "
			    "%lld ms", m->key, f->rev, m->sha, json_array_size(m->objs),
			    (long long)(time_mono_ms() - f->queued_ms));
	}
	fetch_free(f);
}

/* Credentials for url from the Secrets of the Application's namespace,
 * and the ssh known hosts of its ConfigMap argocd-ssh-known-hosts-cm. */
static void
find_creds(struct ctrl *c, const char *ns, const char *url, struct git_creds *out)
{
	json_t *all = NULL, *cm = NULL;
	if (store_list(ctrl_store(c), "secrets", ns, &all, NULL) < 0)
		all = NULL;
	git_creds_find(all, url, out);
	json_decref(all);
	if (store_get(ctrl_store(c), "configmaps", ns, APP_KNOWN_HOSTS_CM, &cm) == 0 &&
	    json_is_string(obj_get_path(json_object_get(cm, "data"), APP_KNOWN_HOSTS_KEY)))
		git_known_hosts_add(out, json_string_value(obj_get_path(json_object_get(cm,
		    "data"), APP_KNOWN_HOSTS_KEY)));
	json_decref(cm);
}

/* ---- the source an Application syncs from -------------------------------- */

/* The operation being run (status.operationState, phase Running), or NULL. */
static const json_t *
running_op(const json_t *app)
{
	const json_t *os = obj_get_path(app, "status.operationState");
	return os && !strcmp(obj_str(os, "phase"), "Running") ? os : NULL;
}

/* The source and revision to render: a manual operation's (rollback: an
 * older source and revision), else spec.source at targetRevision. */
static const json_t *
target_source(const json_t *app, const char **rev)
{
	const json_t *op = running_op(app);
	op = op ? json_object_get(op, "operation") : json_object_get(app, "operation");
	const json_t *src = obj_get_path(op, "sync.source");
	if (!src)
		src = obj_get_path(app, "spec.source");
	*rev = obj_str(src, "targetRevision") ?: "HEAD";
	if (op && !json_is_true(obj_get_path(op, "initiatedBy.automated")) &&
	    obj_str_at(op, "sync.revision") && *obj_str_at(op, "sync.revision"))
		*rev = obj_str_at(op, "sync.revision");
	return src;
}

/* Queues a fetch when the result is missing, stale or asked for. Returns
 * true when m holds a result for the current source. */
static bool
ensure_fetched(struct ctrl *c, const json_t *app, struct app_mem *m)
{
	struct ctrl_app *a = ctrl_data(c);
	const char *rev;
	const json_t *src = target_source(app, &rev);
	json_t *idj = json_pack("{s:O, s:s}", "source", src, "revision", rev);
	char *id = json_dumps(idj, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(idj);
	bool have = m->src_id && !strcmp(m->src_id, id);
	bool stale = !have || m->refresh || time_mono_ms() - m->fetched_ms >= a->resync_ms;
	free(m->url_norm);
	m->url_norm = git_url_normalize(obj_str(src, "repoURL"));
	if (stale && !m->busy) {
		struct app_fetch *f = xcalloc(1, sizeof *f);
		f->cache = xstrdup(a->cache);
		f->url = xstrdup(obj_str(src, "repoURL"));
		f->rev = xstrdup(rev);
		/* src_id, then the key after its NUL, for fetch_done */
		size_t il = strlen(id), kl = strlen(m->key);
		f->src_id = xmalloc(il + kl + 2);
		memcpy(f->src_id, id, il + 1);
		memcpy(f->src_id + il + 1, m->key, kl + 1);
		f->src = json_deep_copy(src);
		f->queued_ms = time_mono_ms();
		find_creds(c, obj_namespace(app), f->url, &f->creds);
		if (ctrl_queue_work(c, m->key, fetch_work, fetch_done, NULL, f) == 0) {
			m->busy = true;
			m->refresh = false;
		} else {
			fetch_free(f);
		}
	}
	free(id);
	return have && (m->objs || m->error);
}

/* ---- comparing with the live state ----------------------------------------- */

struct app_res {
	json_t *want;		/* the object as rendered + namespace + tracking id */
	json_t *live;		/* NULL: missing */
	const struct kind *k;
	int wave;
	const char *hook;	/* the hook annotation, or NULL */
	bool out_of_sync;	/* the apply would change the live object */
	bool prune;		/* tracked, no longer in git */
	const char *health, *hmsg;
	char *error;		/* the dry run refused it */
};

struct app_ctx {
	struct app_res *v;
	size_t n;
	const char *dest_ns;
	const json_t *src;
	const char *sha;
	bool out_of_sync;
	const char *health;
};

static void
ctx_free(struct app_ctx *x)
{
	for (size_t i = 0; i < x->n; i++) {
		json_decref(x->v[i].want);
		json_decref(x->v[i].live);
		free(x->v[i].error);
	}
	free(x->v);
}

static int
wave_of(const json_t *o)
{
	const char *w = o ? obj_annotation(o, APP_SYNC_WAVE) : NULL;
	return w ? atoi(w) : 0;
}

static char *
tracking_id(const char *app, const json_t *o, const struct kind *k)
{
	return xasprintf("%s:%s/%s:%s/%s", app, k->group, k->kind, obj_namespace(o),
	    obj_name(o));
}

static json_t *
last_applied(const json_t *live)
{
	const char *s = obj_annotation(live, OBJ_LAST_APPLIED);
	return s ? json_loads(s, 0, NULL) : NULL;
}

/* The object `v6 apply` of want makes of live: live with the three-way
 * merge patch (last-applied -> want) applied. New reference or NULL. */
static json_t *
apply_target(const json_t *live, const json_t *want)
{
	json_t *cfg = obj_apply_config(want);
	json_t *send = obj_apply_annotate(cfg);
	json_t *last = last_applied(live);
	json_t *patch = obj_apply_patch(last, send);
	char *err = NULL;
	json_t *t = patch_merge(live, patch, &err);
	free(err);
	json_decref(cfg);
	json_decref(send);
	json_decref(last);
	json_decref(patch);
	return t;
}

/* live's last-applied configuration is want's (an apply would only
 * rewrite the record): what ApplyOutOfSyncOnly=false re-applies. */
static bool
applied_as(const json_t *live, const json_t *want)
{
	json_t *last = last_applied(live), *cfg = obj_apply_config(want);
	bool same = last && json_equal(last, cfg);
	json_decref(last);
	json_decref(cfg);
	return same;
}

/* What a comparison looks at: no status, no server bookkeeping, no
 * last-applied record. */
static json_t *
normalized(const json_t *o)
{
	json_t *n = json_deep_copy(o);
	json_object_del(n, "status");
	json_t *meta = json_object_get(n, "metadata");
	static const char *const drop[] = { "resourceVersion", "generation", "managedFields" };
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		json_object_del(meta, drop[i]);
	json_t *ann = json_object_get(meta, "annotations");
	json_object_del(ann, OBJ_LAST_APPLIED);
	if (ann && !json_object_size(ann))
		json_object_del(meta, "annotations");
	return n;
}

/* The live object as the apply would leave it (a dry run through the API,
 * so defaults and server-set fields come out as they will be), or NULL
 * with r->error. New reference. */
static json_t *
predict(struct api *api, struct app_res *r)
{
	json_t *t = apply_target(r->live, r->want), *out = NULL;
	struct api_error err = { 0 };
	if (!t || api_update(api, r->k, obj_namespace(r->live), t, false, API_DRY_RUN, &out,
	    &err) < 0) {
		free(r->error);
		r->error = xstrdup(err.message ? err.message : "cannot merge");
		api_error_clear(&err);
		return NULL;
	}
	return out;
}

static void
compare_one(struct api *api, struct app_res *r)
{
	if (!r->live || !r->want) {
		r->out_of_sync = true;
		return;
	}
	json_t *p = predict(api, r);
	if (!p) {
		r->out_of_sync = true;
		return;
	}
	json_t *a = normalized(p), *b = normalized(r->live);
	r->out_of_sync = !json_equal(a, b);
	json_decref(a);
	json_decref(b);
	json_decref(p);
}

static json_t *
live_of(struct api *api, const struct kind *k, const char *ns, const char *name)
{
	json_t *o = NULL;
	struct api_error err = { 0 };
	if (api_get(api, k, k->namespaced ? ns : "", name, &o, &err) < 0)
		o = NULL;
	api_error_clear(&err);
	return o;
}

static struct app_res *
ctx_add(struct app_ctx *x)
{
	x->v = xrealloc(x->v, (x->n + 1) * sizeof *x->v);
	struct app_res *r = &x->v[x->n++];
	memset(r, 0, sizeof *r);
	return r;
}

/* Tracked resources of the last comparison (status.resources) that git no
 * longer has and that still carry this Application's tracking id. */
static void
add_prunes(struct ctrl *c, const json_t *app, struct app_ctx *x)
{
	size_t i;
	const json_t *e;
	json_array_foreach(obj_get_path(app, "status.resources"), i, e) {
		if (json_object_get(e, "hook"))
			continue;
		const char *g = obj_str(e, "group"), *v = obj_str(e, "version") ?: "v1";
		char *av = *g ? xasprintf("%s/%s", g, v) : xstrdup(v);
		const struct kind *k = kind_find_gvk(av, obj_str(e, "kind"));
		free(av);
		const char *ns = obj_str(e, "namespace"), *name = obj_str(e, "name");
		bool wanted = false;
		for (size_t j = 0; k && j < x->n && !wanted; j++)
			wanted = x->v[j].k == k && !strcmp(obj_name(x->v[j].want), name) &&
			    !strcmp(obj_namespace(x->v[j].want), k->namespaced ? ns : "");
		if (!k || wanted)
			continue;
		json_t *live = live_of(ctrl_api(c), k, ns, name);
		const char *tid = live ? obj_annotation(live, APP_TRACKING_ID) : NULL;
		size_t an = strlen(obj_name(app));
		if (!tid || strncmp(tid, obj_name(app), an) || tid[an] != ':') {
			json_decref(live);
			continue;
		}
		struct app_res *r = ctx_add(x);
		r->live = live;
		r->k = k;
		r->prune = true;
		r->out_of_sync = true;
		r->wave = wave_of(live);
		r->health = app_health_of(live, &r->hmsg);
	}
}

/* Whether a HorizontalPodAutoscaler of ns scales kind/name (the kinds with
 * a scale subresource). */
static bool
hpa_scales(struct ctrl *c, const char *ns, const struct kind *k, const char *name)
{
	static const char *const scalable[] = { "Deployment", "StatefulSet", "ReplicaSet",
		"Rollout" };
	bool kind_ok = false, hit = false;
	for (size_t i = 0; i < ARRAY_SIZE(scalable); i++)
		kind_ok |= !strcmp(k->kind, scalable[i]);
	json_t *all = NULL, *h;
	size_t i;
	if (!kind_ok || store_list(ctrl_store(c), "autoscaling/horizontalpodautoscalers", ns, &all,
	    NULL) < 0)
		return false;
	json_array_foreach(all, i, h)
		hit |= !strcmp(obj_str_at(h, "spec.scaleTargetRef.kind"), k->kind) &&
		    !strcmp(obj_str_at(h, "spec.scaleTargetRef.name"), name);
	json_decref(all);
	return hit;
}

/* A workload an HPA scales keeps the HPA's count: git's spec.replicas (or
 * its absence, which would mean 1) is not applied, so a sync never fights
 * the autoscaler and the Application does not flap OutOfSync; as `v6
 * apply` does (cli_hpa_guard_replicas), and as Argo CD users get with
 * ignoreDifferences on /spec/replicas. */
static void
keep_hpa_replicas(struct ctrl *c, const json_t *app, struct app_res *r)
{
	const json_t *now = obj_get_path(r->live, "spec.replicas");
	const json_t *want = obj_get_path(r->want, "spec.replicas");
	if (!json_is_integer(now) || (json_is_integer(want) && json_integer_value(want) ==
	    json_integer_value(now)) || !hpa_scales(c, obj_namespace(r->want), r->k,
	    obj_name(r->want)))
		return;
	if (json_is_integer(want))
		log_info("gitops", "%s: %s %s/%s: spec.replicas %lld in git is not applied: a "
		    "HorizontalPodAutoscaler manages the replicas (%lld now)", obj_name(app),
		    r->k->kind, obj_namespace(r->want), obj_name(r->want),
		    (long long)json_integer_value(want), (long long)json_integer_value(now));
	json_object_set(obj_child(r->want, "spec"), "replicas", (json_t *)now);
}

/* Desired objects with their live counterparts, compared. */
static void
compare(struct ctrl *c, const json_t *app, const json_t *objs, struct app_ctx *x)
{
	size_t i;
	const json_t *o;
	x->dest_ns = obj_str_at(app, "spec.destination.namespace");
	if (!x->dest_ns || !*x->dest_ns)
		x->dest_ns = "default";
	x->health = "Healthy";
	json_array_foreach(objs, i, o) {
		const struct kind *k = kind_find_gvk(obj_api_version(o), obj_kind(o));
		if (!k)
			continue;
		struct app_res *r = ctx_add(x);
		r->k = k;
		r->want = json_deep_copy(o);
		json_t *meta = obj_metadata(r->want);
		if (k->namespaced && !*obj_namespace(r->want))
			json_object_set_new(meta, "namespace", json_string(x->dest_ns));
		if (!k->namespaced)
			json_object_del(meta, "namespace");
		char *tid = tracking_id(obj_name(app), r->want, k);
		obj_set_annotation(r->want, APP_TRACKING_ID, tid);
		free(tid);
		r->hook = obj_annotation(o, APP_HOOK);
		r->wave = wave_of(o);
		r->live = live_of(ctrl_api(c), k, obj_namespace(r->want), obj_name(r->want));
		if (r->hook)
			continue;
		if (r->live)
			keep_hpa_replicas(c, app, r);
		compare_one(ctrl_api(c), r);
		r->health = app_health_of(r->live, &r->hmsg);
	}
	add_prunes(c, app, x);
	for (size_t j = 0; j < x->n; j++) {
		if (x->v[j].hook)
			continue;
		x->out_of_sync |= x->v[j].out_of_sync;
		if (!x->v[j].prune)
			x->health = app_health_worse(x->health, x->v[j].health);
	}
}

/* ---- status ---------------------------------------------------------------- */

static json_t *
res_ref(const struct kind *k, const json_t *o)
{
	json_t *e = json_pack("{s:s, s:s, s:s}", "version", k->version, "kind", k->kind,
	    "name", obj_name(o));
	if (*k->group)
		json_object_set_new(e, "group", json_string(k->group));
	if (k->namespaced)
		json_object_set_new(e, "namespace", json_string(obj_namespace(o)));
	return e;
}

static json_t *
status_resources(const struct app_ctx *x)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < x->n; i++) {
		const struct app_res *r = &x->v[i];
		json_t *e = res_ref(r->k, r->want ? r->want : r->live);
		json_object_set_new(e, "status", json_string(r->hook ? "Synced" :
		    r->out_of_sync ? "OutOfSync" : "Synced"));
		if (r->health) {
			json_t *h = json_pack("{s:s}", "status", r->health);
			if (r->hmsg && strcmp(r->health, "Healthy"))
				json_object_set_new(h, "message", json_string(r->hmsg));
			json_object_set_new(e, "health", h);
		}
		if (r->hook)
			json_object_set_new(e, "hook", json_true());
		if (r->prune)
			json_object_set_new(e, "requiresPruning", json_true());
		if (r->wave)
			json_object_set_new(e, "syncWave", json_integer(r->wave));
		json_array_append_new(arr, e);
	}
	return arr;
}

/* A condition keeps its lastTransitionTime while its message stays. */
static json_t *
conditions(const json_t *app, const char *type, const char *msg)
{
	if (!msg)
		return NULL;
	size_t i;
	const json_t *c;
	json_array_foreach(obj_get_path(app, "status.conditions"), i, c)
		if (!strcmp(obj_str(c, "type"), type) && !strcmp(obj_str(c, "message"), msg))
			return json_pack("[O]", c);
	return json_pack("[{s:s, s:s, s:o}]", "type", type, "message", msg,
	    "lastTransitionTime", obj_time_json(time_now_ms()));
}

/* The status of a comparison (x NULL: the source failed to load with err). */
static json_t *
status_of(const json_t *app, const struct app_mem *m, const struct app_ctx *x,
    const json_t *src)
{
	json_t *st = json_deep_copy(json_object_get(app, "status"));
	if (!st)
		st = json_object();
	json_t *sync = json_pack("{s:s, s:{s:O, s:O}}", "status", !x ? "Unknown" :
	    x->out_of_sync ? "OutOfSync" : "Synced", "comparedTo", "source", src,
	    "destination", obj_get_path(app, "spec.destination"));
	if (m->sha[0])
		json_object_set_new(sync, "revision", json_string(m->sha));
	json_object_set_new(st, "sync", sync);
	json_t *health = json_pack("{s:s}", "status", x ? x->health : "Degraded");
	if (!x)
		json_object_set_new(health, "message", json_string(m->error));
	json_object_set_new(st, "health", health);
	if (x)
		json_object_set_new(st, "resources", status_resources(x));
	json_t *cond = conditions(app, "ComparisonError", x ? NULL : m->error);
	if (cond)
		json_object_set_new(st, "conditions", cond);
	else
		json_object_del(st, "conditions");
	json_object_set_new(st, "sourceType", json_string(m->type == APP_KUSTOMIZE ?
	    "Kustomize" : "Directory"));
	return st;
}

/* ---- the sync operation -------------------------------------------------- */

static bool
has_option(const json_t *app, const json_t *op, const char *opt)
{
	const json_t *lists[] = { obj_get_path(app, "spec.syncPolicy.syncOptions"),
		obj_get_path(op, "sync.syncOptions") };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		const json_t *s;
		json_array_foreach(lists[l], i, s)
			if (!strcmp(json_string_value(s) ?: "", opt))
				return true;
	}
	return false;
}

/* The record of a task in operationState.syncResult.resources. */
static json_t *
task_rec(json_t *os, const struct kind *k, const json_t *o, const char *hook_type)
{
	json_t *list = json_object_get(json_object_get(os, "syncResult"), "resources");
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
		if (!strcmp(obj_str(e, "kind"), k->kind) && !strcmp(obj_str(e, "name"), obj_name(o)) && !strcmp(obj_str(e, "namespace"),
		    k->namespaced ? obj_namespace(o) : "") &&
		    !strcmp(obj_str(e, "hookType"), hook_type ?: ""))
			return e;
	return NULL;
}

static void
task_set(json_t *os, const struct kind *k, const json_t *o, const char *hook_type,
    const char *status, const char *hook_phase, const char *msg)
{
	json_t *e = task_rec(os, k, o, hook_type);
	if (!e) {
		json_t *sr = json_object_get(os, "syncResult");
		if (!sr)
			json_object_set_new(os, "syncResult", sr = json_object());
		json_t *list = json_object_get(sr, "resources");
		if (!list)
			json_object_set_new(sr, "resources", list = json_array());
		e = res_ref(k, o);
		json_object_set_new(e, "namespace", json_string(k->namespaced ?
		    obj_namespace(o) : ""));
		if (hook_type)
			json_object_set_new(e, "hookType", json_string(hook_type));
		json_object_set_new(e, "syncPhase", json_string(hook_type &&
		    strcmp(hook_type, "Sync") ? hook_type : "Sync"));
		json_array_append_new(list, e);
	}
	if (status)
		json_object_set_new(e, "status", json_string(status));
	if (hook_phase)
		json_object_set_new(e, "hookPhase", json_string(hook_phase));
	if (msg)
		json_object_set_new(e, "message", json_string(msg));
}

static bool
hook_has(const char *list, const char *type)
{
	char *copy = xstrdup(list ?: ""), *save = NULL;
	bool found = false;
	for (char *t = strtok_r(copy, ",", &save); t && !found; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		found = !strcmp(t, type);
	}
	free(copy);
	return found;
}

enum hooks { HOOKS_DONE, HOOKS_WAIT, HOOKS_FAILED };

/* Runs the hooks of type (PreSync, Sync at wave, PostSync, SyncFail): each
 * is created once per operation (opid in its annotation), an older one
 * deleted first (BeforeHookCreation); it is done when healthy (a Job
 * complete), failed when degraded; HookSucceeded / HookFailed delete it. */
static enum hooks
run_hooks(struct app_ctx *x, json_t *os, const char *type, int wave, bool any_wave,
    struct ctrl_writes *w, char **why)
{
	const char *opid = obj_str(os, "startedAt");
	enum hooks res = HOOKS_DONE;
	for (size_t i = 0; i < x->n && res != HOOKS_FAILED; i++) {
		struct app_res *r = &x->v[i];
		if (!r->hook || !hook_has(r->hook, type) || (!any_wave && r->wave != wave))
			continue;
		json_t *rec = task_rec(os, r->k, r->want, type);
		const char *phase = rec ? obj_str(rec, "hookPhase") : NULL;
		const char *policy = obj_annotation(r->want, APP_HOOK_DELETE) ?: "";
		if (phase && !strcmp(phase, "Succeeded"))
			continue;
		if (phase && !strcmp(phase, "Failed")) {
			*why = xasprintf("%s hook %s/%s failed", type, r->k->kind, obj_name(r->want));
			return HOOKS_FAILED;
		}
		const char *made_by = r->live ? obj_annotation(r->live, APP_HOOK_OP) : NULL;
		if (r->live && made_by && !strcmp(made_by, opid)) {
			const char *msg = NULL, *h = app_health_of(r->live, &msg);
			if (!h || !strcmp(h, "Healthy")) {
				task_set(os, r->k, r->want, type, "Synced", "Succeeded", "");
				if (strstr(policy, "HookSucceeded"))
					ctrl_writes_push(w, CTRL_DELETE, r->k, json_incref(r->live),
					    TAG_HOOK);
			} else if (!strcmp(h, "Degraded")) {
				task_set(os, r->k, r->want, type, "SyncFailed", "Failed", msg ?: "");
				if (strstr(policy, "HookFailed"))
					ctrl_writes_push(w, CTRL_DELETE, r->k, json_incref(r->live),
					    TAG_HOOK);
				*why = xasprintf("%s hook %s/%s failed: %s", type, r->k->kind,
				    obj_name(r->want), msg ?: "");
				res = HOOKS_FAILED;
			} else {
				res = HOOKS_WAIT;
			}
		} else if (r->live) {
			if (!obj_is_deleting(r->live))
				ctrl_writes_push(w, CTRL_DELETE, r->k, json_incref(r->live), TAG_HOOK);
			res = HOOKS_WAIT;
		} else {
			json_t *o = json_deep_copy(r->want);
			obj_set_annotation(o, APP_HOOK_OP, opid);
			ctrl_writes_push(w, CTRL_CREATE, r->k, o, TAG_HOOK);
			task_set(os, r->k, r->want, type, "Synced", "Running", "");
			res = HOOKS_WAIT;
		}
	}
	return res;
}

static int64_t
backoff_ms(const json_t *retry, int64_t n)
{
	int64_t base = 5000, max = 3 * 60 * 1000;
	const char *d = obj_str_at(retry, "backoff.duration");
	const char *md = obj_str_at(retry, "backoff.maxDuration");
	if (*d)
		duration_parse(d, &base);
	if (*md)
		duration_parse(md, &max);
	int64_t f = obj_int_at(retry, "backoff.factor", 2), t = base;
	for (int64_t i = 0; i < n && t < max; i++)
		t *= f > 0 ? f : 1;
	return t < max ? t : max;
}

static void
history_add(json_t *st, const json_t *app, const json_t *os, const char *sha,
    const json_t *src)
{
	json_t *h = json_object_get(st, "history");
	if (!h)
		json_object_set_new(st, "history", h = json_array());
	json_int_t id = 0;
	size_t i;
	json_t *e;
	json_array_foreach(h, i, e)
		if (json_integer_value(json_object_get(e, "id")) > id)
			id = json_integer_value(json_object_get(e, "id"));
	json_array_append_new(h, json_pack("{s:I, s:s, s:o, s:O, s:O}", "id", id + 1,
	    "revision", sha, "deployedAt", obj_time_json(time_now_ms()), "deployStartedAt",
	    json_object_get(os, "startedAt"), "source", src));
	size_t limit = (size_t)obj_int_at(app, "spec.revisionHistoryLimit", APP_HISTORY_DEFAULT);
	while (json_array_size(h) > limit && json_array_size(h) > 0)
		json_array_remove(h, 0);
}

/* Ends the operation in os with phase and message. */
static void
op_finish(json_t *st, const json_t *app, json_t *os, const char *phase, const char *msg,
    const struct app_ctx *x)
{
	json_object_set_new(os, "phase", json_string(phase));
	json_object_set_new(os, "message", json_string(msg));
	json_object_set_new(os, "finishedAt", obj_time_json(time_now_ms()));
	json_object_del(os, "nextRetryAt");
	json_t *sr = json_object_get(os, "syncResult");
	if (!sr)
		json_object_set_new(os, "syncResult", sr = json_object());
	json_object_set_new(sr, "revision", json_string(x->sha));
	json_object_set_new(sr, "source", json_deep_copy(x->src));
	if (!strcmp(phase, "Succeeded"))
		history_add(st, app, os, x->sha, x->src);
}

/* The operation failed with why: retried with back-off while the retry
 * limit allows (-1: always), else Failed and the SyncFail hooks run. */
static void
op_fail(json_t *st, const json_t *app, json_t *os, struct app_ctx *x, const char *why,
    struct ctrl_writes *w)
{
	const json_t *retry = obj_get_path(os, "operation.retry");
	if (!retry)
		retry = obj_get_path(app, "spec.syncPolicy.retry");
	int64_t limit = obj_int_at(retry, "limit", 0), n = obj_int_at(os, "retryCount", 0);
	if (retry && (limit < 0 || n < limit)) {
		int64_t wait = backoff_ms(retry, n);
		json_object_set_new(os, "retryCount", json_integer(n + 1));
		json_object_set_new(os, "nextRetryAt", obj_time_json(time_now_ms() + wait));
		char *m = xasprintf("retrying attempt #%lld in %llds: %s", (long long)n + 1,
		    (long long)(wait / 1000), why);
		json_object_set_new(os, "message", json_string(m));
		free(m);
		w->requeue_ms = wait;
		return;
	}
	char *dummy = NULL;
	run_hooks(x, os, "SyncFail", 0, true, w, &dummy);
	free(dummy);
	op_finish(st, app, os, "Failed", why, x);
	ctrl_writes_event(w, "Warning", "OperationCompleted", why);
}

struct sync_opts {
	bool prune, prune_last, oos_only;
};

/* The wave a task runs in: its annotation's; a prune with PruneLast after
 * every other. -1 << 30: not a task of the sync phase. */
static int
task_wave(const struct app_res *r, const struct sync_opts *o)
{
	if ((r->hook && !hook_has(r->hook, "Sync")) || (r->prune && !o->prune))
		return -(1 << 30);
	return r->prune && o->prune_last ? 1 << 30 : r->wave;
}

/* The lowest wave above *wave (any, when !have) that has a task. */
static bool
next_wave(const struct app_ctx *x, const struct sync_opts *o, bool have, int *wave)
{
	bool found = false;
	int next = 0;
	for (size_t i = 0; i < x->n; i++) {
		int rw = task_wave(&x->v[i], o);
		if (rw != -(1 << 30) && (!have || rw > *wave) && (!found || rw < next)) {
			next = rw;
			found = true;
		}
	}
	if (found)
		*wave = next;
	return found;
}

/* Pushes the applies and prunes of wave to w; returns the resource the
 * wave waits for (written now, being deleted, not yet healthy), or NULL
 * when its resources are done. */
static const struct app_res *
sync_wave(const struct app_ctx *x, const struct sync_opts *o, int wave, struct ctrl_writes *w)
{
	const struct app_res *waiting = NULL;
	for (size_t i = 0; i < x->n; i++) {
		const struct app_res *r = &x->v[i];
		if (r->hook || task_wave(r, o) != wave)
			continue;
		if (r->prune) {
			if (!obj_is_deleting(r->live))
				ctrl_writes_push(w, CTRL_DELETE, r->k, json_incref(r->live), TAG_PRUNE);
			waiting = r;
		} else if (r->out_of_sync || (!o->oos_only && !applied_as(r->live, r->want))) {
			if (r->live) {
				ctrl_writes_push(w, CTRL_UPDATE, r->k, apply_target(r->live, r->want),
				    TAG_APPLY);
			} else {
				json_t *cfg = obj_apply_config(r->want);
				ctrl_writes_push(w, CTRL_CREATE, r->k, obj_apply_annotate(cfg),
				    TAG_APPLY);
				json_decref(cfg);
			}
			waiting = r;
		} else if (r->health && strcmp(r->health, "Healthy") &&
		    strcmp(r->health, "Suspended") && !waiting) {
			waiting = r;
		}
	}
	return waiting;
}

/* One step of the running operation os (in st): the namespace, the
 * PreSync hooks, then the lowest wave not yet synced and healthy (its
 * applies, prunes and Sync hooks), then the PostSync hooks, then done.
 * Writes go to w; os records what was done. */
static void
op_step(struct ctrl *c, const json_t *app, json_t *st, json_t *os, struct app_ctx *x,
    struct ctrl_writes *w)
{
	const json_t *op = json_object_get(os, "operation");
	int64_t retry_at = obj_time_ms(json_object_get(os, "nextRetryAt"));
	if (retry_at && retry_at > time_now_ms()) {
		w->requeue_ms = retry_at - time_now_ms();
		return;
	}
	json_object_del(os, "nextRetryAt");
	const struct sync_opts so = { json_is_true(obj_get_path(op, "sync.prune")),
		has_option(app, op, "PruneLast=true"), has_option(app, op,
		"ApplyOutOfSyncOnly=true") };
	char *why = NULL;
	w->requeue_ms = APP_STEP_MS;
	if (has_option(app, op, "CreateNamespace=true")) {
		json_t *ns = live_of(ctrl_api(c), kind_find_gvk("v1", "Namespace"), "", x->dest_ns);
		if (!ns)
			ctrl_writes_push(w, CTRL_CREATE, kind_find_gvk("v1", "Namespace"),
			    json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
			    "Namespace", "metadata", "name", x->dest_ns), TAG_APPLY);
		json_decref(ns);
	}
	enum hooks h = run_hooks(x, os, "PreSync", 0, true, w, &why);
	if (h == HOOKS_WAIT) {
		json_object_set_new(os, "message", json_string("waiting for PreSync hooks"));
		return;
	}
	if (h == HOOKS_FAILED)
		goto failed;
	/* the waves, lowest first */
	int wave = 0;
	for (bool have = false; next_wave(x, &so, have, &wave); have = true) {
		size_t before = w->n;
		const struct app_res *waiting = sync_wave(x, &so, wave, w);
		h = run_hooks(x, os, "Sync", wave, false, w, &why);
		if (h == HOOKS_FAILED)
			goto failed;
		if (w->n > before || waiting || h == HOOKS_WAIT) {
			char *m = waiting ? xasprintf("waiting for wave %d: %s/%s%s%s", wave,
			    waiting->k->kind, obj_name(waiting->want ? waiting->want : waiting->live),
			    waiting->health ? " " : "", waiting->health ? waiting->health : "") :
			    xasprintf("waiting for wave %d: Sync hooks", wave);
			json_object_set_new(os, "message", json_string(m));
			free(m);
			return;
		}
	}
	h = run_hooks(x, os, "PostSync", 0, true, w, &why);
	if (h == HOOKS_WAIT) {
		json_object_set_new(os, "message", json_string("waiting for PostSync hooks"));
		return;
	}
	if (h == HOOKS_FAILED)
		goto failed;
	op_finish(st, app, os, "Succeeded", "successfully synced (all tasks run)", x);
	char *ev = xasprintf("Sync operation to %s succeeded", x->sha);
	ctrl_writes_event(w, "Normal", "OperationCompleted", ev);
	free(ev);
	w->requeue_ms = 0;
	return;
failed:
	op_fail(st, app, os, x, why, w);
	free(why);
}

/* Whether automated sync starts an operation now (Argo CD's rules: only
 * when out of sync; not twice for a revision unless selfHeal; never again
 * for a revision whose automated sync failed; not to an empty set unless
 * allowEmpty). */
static bool
auto_sync_due(const json_t *app, const struct app_ctx *x, const char *sha)
{
	const json_t *auto_ = obj_get_path(app, "spec.syncPolicy.automated");
	if (!auto_ || !x->out_of_sync)
		return false;
	size_t wanted = 0;
	for (size_t i = 0; i < x->n; i++)
		wanted += !x->v[i].prune && !x->v[i].hook;
	if (!wanted && !json_is_true(json_object_get(auto_, "allowEmpty")))
		return false;
	const json_t *last = obj_get_path(app, "status.operationState");
	const char *last_rev = obj_str_at(last, "syncResult.revision");
	if (!last || !last_rev || strcmp(last_rev, sha))
		return true;
	const char *phase = obj_str(last, "phase");
	if (strcmp(phase, "Succeeded"))
		return false;
	return json_is_true(json_object_get(auto_, "selfHeal"));
}

/* ---- the adapter ------------------------------------------------------------ */

/* Deleting with resources-finalizer: every tracked resource first. */
static void
app_finalize(struct ctrl *c, const json_t *app, struct ctrl_writes *w)
{
	bool has = false;
	size_t i;
	const json_t *f;
	json_array_foreach(obj_get_path(app, "metadata.finalizers"), i, f)
		has |= !strcmp(json_string_value(f) ?: "", APP_FINALIZER);
	if (!has)
		return;
	struct app_ctx x = { 0 };
	add_prunes(c, app, &x);
	for (size_t j = 0; j < x.n; j++)
		if (!obj_is_deleting(x.v[j].live))
			ctrl_writes_push(w, CTRL_DELETE, x.v[j].k, json_incref(x.v[j].live),
			    TAG_PRUNE);
	if (!x.n) {
		json_t *copy = json_deep_copy(app);
		json_t *fl = obj_get_path(copy, "metadata.finalizers");
		json_array_foreach(fl, i, f)
			if (!strcmp(json_string_value(f) ?: "", APP_FINALIZER)) {
				json_array_remove(fl, i);
				break;
			}
		ctrl_writes_push(w, CTRL_UPDATE, NULL, copy, TAG_APP);
	}
	w->requeue_ms = APP_STEP_MS;
	ctx_free(&x);
}

static int
app_decide(struct ctrl *c, const json_t *app, int64_t now_ms, struct ctrl_writes *w)
{
	struct ctrl_app *a = ctrl_data(c);
	(void)now_ms;
	if (!obj_uid(app) || !*obj_uid(app)) {
		mem_drop(a, app);
		return 0;
	}
	if (obj_is_deleting(app)) {
		app_finalize(c, app, w);
		return 0;
	}
	struct app_mem *m = mem_get(a, app);
	w->requeue_ms = a->resync_ms;
	if (!ensure_fetched(c, app, m))
		return 0;		/* fetch_done queues it again */
	const char *rev;
	const json_t *src = target_source(app, &rev);
	json_t *st;
	struct app_ctx x = { .src = src, .sha = m->sha };
	if (m->error) {
		st = status_of(app, m, NULL, src);
		const json_t *os = running_op(app);
		if (os || json_object_get(app, "operation")) {
			json_t *nos = os ? json_deep_copy(os) : json_pack("{s:O, s:o}", "operation",
			    json_object_get(app, "operation"), "startedAt", obj_time_json(time_now_ms()));
			op_finish(st, app, nos, "Error", m->error, &x);
			json_object_set_new(st, "operationState", nos);
		}
	} else {
		int64_t t0 = time_mono_ms();
		compare(c, app, m->objs, &x);
		log_debug("gitops", "%s: compared %zu objects in %lld ms", m->key, x.n,
		    (long long)(time_mono_ms() - t0));
		st = status_of(app, m, &x, src);
		json_t *os = json_deep_copy(running_op(app));
		const json_t *req = json_object_get(app, "operation");
		if (os && !req && json_is_true(obj_get_path(os,
		    "operation.initiatedBy.automated")) && strcmp(obj_str_at(os,
		    "operation.sync.revision"), m->sha)) {
			/* git moved on while an automated sync waited: sync the new
			 * one. When the new revision needs no writes (already in
			 * sync), no new operation would start, so the waiting one
			 * goes on for it (its waves re-checked on the new objects)
			 * rather than being left Running forever */
			if (x.out_of_sync) {
				json_decref(os);
				os = NULL;
			} else {
				json_object_set_new(obj_get_path(os, "operation.sync"), "revision",
				    json_string(m->sha));
			}
		}
		if (req && (!os || !json_equal(json_object_get(os, "operation"), req))) {
			json_decref(os);
			os = json_pack("{s:O, s:s, s:o}", "operation", req, "phase", "Running",
			    "startedAt", obj_time_json(time_now_ms()));
			ctrl_writes_event(w, "Normal", "OperationStarted", "Initiated sync");
		} else if (!os && auto_sync_due(app, &x, m->sha)) {
			os = json_pack("{s:{s:{s:s, s:b}, s:{s:b}}, s:s, s:o}", "operation", "sync",
			    "revision", m->sha, "prune", json_is_true(obj_get_path(app,
			    "spec.syncPolicy.automated.prune")), "initiatedBy", "automated", 1,
			    "phase", "Running", "startedAt", obj_time_json(time_now_ms()));
			char *ev = xasprintf("Initiated automated sync to '%s'", m->sha);
			ctrl_writes_event(w, "Normal", "OperationStarted", ev);
			free(ev);
		}
		if (os) {
			op_step(c, app, st, os, &x, w);
			json_object_set_new(st, "operationState", os);
		}
	}
	if (!w->requeue_ms || w->requeue_ms > a->resync_ms)
		w->requeue_ms = a->resync_ms;
	w->carry = st;
	json_decref(a->recording);
	a->recording = json_incref(json_object_get(st, "operationState"));
	ctx_free(&x);
	return 0;
}

/* A write of the sync failed: the operation fails (or retries) with it. */
static void
app_after(struct ctrl *c, const json_t *app, const struct ctrl_write *failed,
    struct ctrl_writes *w)
{
	struct ctrl_app *a = ctrl_data(c);
	json_t *st = w->carry;
	json_decref(a->recording);
	a->recording = NULL;
	if (!st)
		return;
	json_t *os = json_object_get(st, "operationState");
	if (failed && failed->tag != TAG_STATUS && failed->tag != TAG_APP && os &&
	    !strcmp(obj_str(os, "phase"), "Running")) {
		char *why = xasprintf("%s/%s: %s", obj_kind(failed->obj), obj_name(failed->obj),
		    w->error ? w->error : "error");
		const char *rev;
		struct app_mem *m = mem_get(a, app);
		struct app_ctx x = { .src = target_source(app, &rev), .sha = m->sha };
		if (m->objs)
			compare(c, app, m->objs, &x);	/* for the SyncFail hooks */
		op_fail(st, app, os, &x, why, w);
		ctx_free(&x);
		free(why);
	}
	if (!json_equal(st, json_object_get(app, "status"))) {
		json_t *copy = json_deep_copy(app);
		json_object_set(copy, "status", st);
		ctrl_writes_push(w, CTRL_STATUS, NULL, copy, TAG_STATUS);
	}
	const char *phase = os ? obj_str(os, "phase") : NULL;
	if (json_object_get(app, "operation") && phase) {
		/* the request is recorded in operationState: clear it */
		json_t *copy = json_deep_copy(app);
		json_object_del(copy, "operation");
		json_object_del(copy, "status");
		ctrl_writes_push(w, CTRL_UPDATE, NULL, copy, TAG_APP);
	}
}

/* What each write did, recorded on the running operation. */
static void
app_result(struct ctrl *c, const json_t *app, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	struct ctrl_app *a = ctrl_data(c);
	(void)app;
	(void)made;
	if (!a->recording || (w->tag != TAG_APPLY && w->tag != TAG_PRUNE))
		return;
	const struct kind *k = w->kind;
	if (!k)
		return;
	task_set(a->recording, k, w->obj, NULL, err ? "SyncFailed" : w->tag == TAG_PRUNE ?
	    "Pruned" : "Synced", NULL, err ? err : w->tag == TAG_PRUNE ? "pruned" :
	    w->op == CTRL_CREATE ? "created" : "configured");
}

/* A change of a tracked object of any kind (a Secret, a Role, an HPA as
 * much as a Deployment) queues its Application (by the name in its
 * tracking id), so selfHeal and the sync waves see it at once, not at the
 * next resync. A watch of every resource: the controller core's sources
 * are a short list of named ones. */
static void
map_tracked(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	(void)ev;
	(void)res;
	(void)rv;
	const char *tid = obj_annotation(obj, APP_TRACKING_ID);
	const char *colon = tid ? strchr(tid, ':') : NULL;
	if (!colon)
		return;
	struct ctrl_app *a = arg;
	for (struct app_mem *m = a->mem; m; m = m->next)
		if (strlen(m->name) == (size_t)(colon - tid) && !strncmp(m->name, tid,
		    (size_t)(colon - tid)))
			ctrl_enqueue_key(a->core, m->key);
}

static const struct ctrl_desc app_desc = {
	.name = "gitops", .component = APP_COMPONENT,
	.api_version = "argoproj.io/v1alpha1", .kind = "Application",
	.res = "argoproj.io/applications",
	.sources = {
		{ "argoproj.io/applications", NULL },
	},
	.decide = app_decide, .after = app_after, .result = app_result, .on_gone = true,
};

/* ---- the webhook --------------------------------------------------------------- */

/* Argo CD's /api/webhook: a GitHub, GitLab, Gitea or plain push payload;
 * every Application of the pushed repository is fetched again at once. */
static void
serve_webhook(void *arg, struct http_req *req)
{
	struct ctrl_app *a = arg;
	if (strcmp(req->method, "POST")) {
		api_respond_status(req, 405, "Method Not Allowed");
		return;
	}
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		api_respond_status(req, 400, "Webhook processing failed: not a JSON payload");
		return;
	}
	static const char *const fields[] = { "repository.html_url", "repository.clone_url",
		"repository.ssh_url", "repository.git_url", "repository.url",
		"repository.git_http_url", "repository.git_ssh_url", "project.web_url",
		"project.git_http_url", "project.git_ssh_url", "repoURL", "url" };
	size_t hits = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *u = obj_str_at(body, fields[i]);
		if (!u || !*u)
			continue;
		char *n = git_url_normalize(u);
		for (struct app_mem *m = a->mem; m; m = m->next)
			if (m->url_norm && !strcmp(m->url_norm, n) && !m->refresh) {
				m->refresh = true;
				ctrl_enqueue_key(a->core, m->key);
				hits++;
			}
		free(n);
	}
	json_decref(body);
	log_info("gitops", "webhook: %zu application(s) to refresh", hits);
	api_respond_json(req, 200, json_pack("{s:I}", "refreshed", (json_int_t)hits));
}

/* GET .../applications/NAME/diff: the out-of-sync resources, live and as
 * the apply would make them (the dry run the comparison uses). */
static void
serve_diff(void *arg, struct http_req *req, const json_t *app)
{
	struct ctrl_app *a = arg;
	char *key = xasprintf("%s/%s", obj_namespace(app), obj_name(app));
	struct app_mem *m = mem_find(a, key);
	free(key);
	if (!m || !m->objs) {
		api_respond_status(req, m && m->error ? 422 : 503, m && m->error ? m->error :
		    "the application has not been compared yet");
		return;
	}
	struct app_ctx x = { 0 };
	compare(a->core, app, m->objs, &x);
	json_t *items = json_array();
	for (size_t i = 0; i < x.n; i++) {
		struct app_res *r = &x.v[i];
		if (r->hook || !r->out_of_sync)
			continue;
		json_t *e = res_ref(r->k, r->want ? r->want : r->live);
		json_t *p = r->live && r->want ? predict(a->api, r) : NULL;
		json_t *live = r->live ? normalized(r->live) : NULL;
		json_t *target = p ? normalized(p) : r->want ? normalized(r->want) : NULL;
		obj_mask_secret(live, target);	/* as Argo CD: no Secret values */
		json_object_set_new(e, "live", live ? live : json_null());
		json_object_set_new(e, "target", target ? target : json_null());
		if (r->error)
			json_object_set_new(e, "error", json_string(r->error));
		json_decref(p);
		json_array_append_new(items, e);
	}
	ctx_free(&x);
	api_respond_json(req, 200, json_pack("{s:s, s:o}", "revision", m->sha, "items", items));
}

int
ctrl_app_start(struct api *api, const struct app_config *cfg, struct ctrl_app **out)
{
	struct ctrl_app *a = xcalloc(1, sizeof *a);
	a->api = api;
	a->cache = xstrdup(cfg->cache_dir);
	a->resync_ms = cfg->resync_ms > 0 ? cfg->resync_ms : APP_DEFAULT_RESYNC_MS;
	int rc = ctrl_start(api, &app_desc, a, &a->core);
	if (rc == 0 && (rc = store_watch_start(api_store(api), NULL, NULL, 0, map_tracked, a,
	    &a->sw)) < 0)
		ctrl_stop(a->core);
	if (rc < 0) {
		free(a->cache);
		free(a);
		return rc;
	}
	api_register_path(api, "/api/webhook", serve_webhook, a);
	api_register_subresource(api, "Application", "diff", serve_diff, a);
	*out = a;
	return 0;
}

void
ctrl_app_stop(struct ctrl_app *a)
{
	if (!a)
		return;
	store_watch_stop(a->sw);
	ctrl_stop(a->core);
	while (a->mem) {
		struct app_mem *m = a->mem;
		a->mem = m->next;
		mem_free(m);
	}
	json_decref(a->recording);
	free(a->cache);
	free(a);
}
