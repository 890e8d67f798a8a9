/* ctrl_gc.c — the garbage collector. It keeps a graph of every object's
 * ownerReferences (uid -> owners, owner -> dependents), built from a list at
 * start and a store watch after, and acts on it the Kubernetes way:
 * - a dependent whose owners are all gone is deleted (background);
 * - an owner deleted with propagationPolicy=Foreground keeps its
 *   "foregroundDeletion" finalizer until its blocking dependents are gone;
 * - an owner deleted with Orphan has the references to it removed from its
 *   dependents, then loses its "orphan" finalizer;
 * - a terminating Namespace has its contents deleted, then is removed.
 * Work is queued by uid and done from an idle handle, a batch at a time. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_BATCH 256
#define GC_RETRY_MS 1000

struct ctrl_gc {
	struct api *api;
	struct store_watch *sw;
	json_t *nodes;		/* uid -> {apiVersion, kind, ns, name, owners, deleting, fg, orphan} */
	json_t *deps;		/* owner uid -> {dependent uid: true} */
	json_t *ns_uid;		/* namespace name -> uid */
	json_t *queue;		/* uid -> true, in insertion order */
	json_t *retry;		/* uids to queue again after GC_RETRY_MS */
	uv_idle_t idle;
	uv_timer_t retry_timer;
	int closing;
};

static bool
has_finalizer(const json_t *obj, const char *f)
{
	size_t i;
	json_t *v;
	json_array_foreach(obj_get_path(obj, "metadata.finalizers"), i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), f) == 0)
			return true;
	return false;
}

static void on_idle(uv_idle_t *h);
static void on_retry(uv_timer_t *t);

static void
enqueue(struct ctrl_gc *gc, const char *uid)
{
	if (!*uid || gc->closing)
		return;
	json_object_set_new(gc->queue, uid, json_true());
	uv_idle_start(&gc->idle, on_idle);
}

static void
retry_later(struct ctrl_gc *gc, const char *uid)
{
	json_object_set_new(gc->retry, uid, json_true());
	if (!uv_is_active((uv_handle_t *)&gc->retry_timer))
		uv_timer_start(&gc->retry_timer, on_retry, GC_RETRY_MS, 0);
}

static void
unlink_owners(struct ctrl_gc *gc, const char *uid, const json_t *node)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(node, "owners"), i, o) {
		const char *ou = json_string_value(json_object_get(o, "uid"));
		json_t *set = json_object_get(gc->deps, ou);
		json_object_del(set, uid);
		if (set && json_object_size(set) == 0)
			json_object_del(gc->deps, ou);
	}
}

/* Records obj in the graph; returns the node (borrowed). */
static json_t *
graph_put(struct ctrl_gc *gc, const json_t *obj)
{
	const char *uid = obj_uid(obj);
	json_t *old = json_object_get(gc->nodes, uid);
	if (old)
		unlink_owners(gc, uid, old);
	json_t *owners = json_array();
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, ref) {
		const char *ou = json_string_value(json_object_get(ref, "uid"));
		if (!ou || !*ou)
			continue;
		json_array_append_new(owners, json_pack("{s:s, s:b}", "uid", ou, "block",
		    json_is_true(json_object_get(ref, "blockOwnerDeletion"))));
		json_t *set = json_object_get(gc->deps, ou);
		if (!set) {
			set = json_object();
			json_object_set_new(gc->deps, ou, set);
		}
		json_object_set_new(set, uid, json_true());
	}
	json_t *node = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:b}",
	    "apiVersion", obj_api_version(obj), "kind", obj_kind(obj),
	    "ns", obj_namespace(obj), "name", obj_name(obj), "owners", owners,
	    "deleting", obj_get_path(obj, "metadata.deletionTimestamp") != NULL,
	    "fg", has_finalizer(obj, "foregroundDeletion"),
	    "orphan", has_finalizer(obj, "orphan"));
	json_object_set_new(gc->nodes, uid, node);
	if (strcmp(obj_kind(obj), "Namespace") == 0)
		json_object_set_new(gc->ns_uid, obj_name(obj), json_string(uid));
	return node;
}

static bool
node_flag(const json_t *node, const char *f)
{
	return json_is_true(json_object_get(node, f));
}

static const char *
node_str(const json_t *node, const char *f)
{
	const char *s = json_string_value(json_object_get(node, f));
	return s ? s : "";
}

/* Does obj need the collector's attention now? */
static bool
needs_work(struct ctrl_gc *gc, const json_t *node)
{
	if (node_flag(node, "deleting") && (node_flag(node, "fg") ||
	    node_flag(node, "orphan") || strcmp(node_str(node, "kind"), "Namespace") == 0))
		return true;
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(node, "owners"), i, o) {
		json_t *owner = json_object_get(gc->nodes, node_str(o, "uid"));
		if (!owner || (node_flag(owner, "deleting") && node_flag(owner, "fg")))
			return true;
	}
	return false;
}

static void
on_event(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct ctrl_gc *gc = arg;
	(void)res;
	(void)rv;
	const char *uid = obj_uid(obj);
	if (ev != STORE_DELETED) {
		json_t *node = graph_put(gc, obj);
		if (needs_work(gc, node))
			enqueue(gc, uid);
		if (node_flag(node, "deleting") && node_flag(node, "fg"))
			enqueue(gc, uid);
		json_t *set = json_object_get(gc->deps, uid);
		const char *du;
		json_t *v;
		if (node_flag(node, "deleting"))
			json_object_foreach(set, du, v)
				enqueue(gc, du);
		return;
	}
	json_t *node = json_object_get(gc->nodes, uid);
	if (node) {
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(node, "owners"), i, o)
			enqueue(gc, node_str(o, "uid"));
		unlink_owners(gc, uid, node);
		json_object_del(gc->nodes, uid);
	}
	const char *du;
	json_t *v;
	json_object_foreach(json_object_get(gc->deps, uid), du, v)
		enqueue(gc, du);
	const char *ns = obj_namespace(obj);
	if (*ns) {
		const char *nsu = json_string_value(json_object_get(gc->ns_uid, ns));
		json_t *nsnode = nsu ? json_object_get(gc->nodes, nsu) : NULL;
		if (nsnode && node_flag(nsnode, "deleting"))
			enqueue(gc, nsu);
	} else if (strcmp(obj_kind(obj), "Namespace") == 0) {
		json_object_del(gc->ns_uid, obj_name(obj));
	}
}

static const struct kind *
node_kind(const json_t *node)
{
	return kind_find_gvk(node_str(node, "apiVersion"), node_str(node, "kind"));
}

/* Rewrites metadata.<list> (finalizers, ownerReferences) of node's object,
 * keeping the entries keep() accepts; an empty list goes. Returns the
 * update's 0 / -1 (0 when the object is gone already). */
static int
rewrite_list(struct ctrl_gc *gc, const json_t *node, const char *list,
    bool (*keep)(struct ctrl_gc *gc, const json_t *entry, const char *arg), const char *arg)
{
	const struct kind *k = node_kind(node);
	struct api_error err = { 0 };
	json_t *obj = NULL;
	int rc = 0;
	if (!k || api_get(gc->api, k, node_str(node, "ns"), node_str(node, "name"), &obj,
	    &err) < 0)
		goto out;
	json_t *meta = obj_metadata(obj), *kept = json_array(), *v;
	size_t i;
	json_array_foreach(json_object_get(meta, list), i, v)
		if (keep(gc, v, arg))
			json_array_append(kept, v);
	if (json_array_size(kept))
		json_object_set_new(meta, list, kept);
	else {
		json_decref(kept);
		json_object_del(meta, list);
	}
	rc = api_update(gc->api, k, node_str(node, "ns"), obj, false, 0, NULL, &err);
	obj = NULL;
	if (rc < 0)
		log_warn("gc", "rewriting %s of %s/%s: %s", list, node_str(node, "ns"),
		    node_str(node, "name"), err.message);
out:
	json_decref(obj);
	api_error_clear(&err);
	return rc;
}

static bool
other_finalizer(struct ctrl_gc *gc, const json_t *v, const char *f)
{
	(void)gc;
	return !json_is_string(v) || strcmp(json_string_value(v), f) != 0;
}

/* Removes finalizer f from the object of node (which may then go away). */
static int
drop_finalizer(struct ctrl_gc *gc, const json_t *node, const char *f)
{
	return rewrite_list(gc, node, "finalizers", other_finalizer, f);
}

static int
delete_node(struct ctrl_gc *gc, const json_t *node, enum api_propagation prop)
{
	const struct kind *k = node_kind(node);
	struct api_error err = { 0 };
	if (!k)
		return 0;
	int rc = api_delete(gc->api, k, node_str(node, "ns"), node_str(node, "name"), prop,
	    NULL, 0, 0, NULL, &err);
	if (rc < 0 && err.code == 404)
		rc = 0;
	else if (rc < 0)
		log_warn("gc", "deleting %s %s/%s: %s", k->kind, node_str(node, "ns"),
		    node_str(node, "name"), err.message);
	else
		log_info("gc", "deleted %s %s/%s (owner gone)", k->kind, node_str(node, "ns"),
		    node_str(node, "name"));
	api_error_clear(&err);
	return rc;
}

/* An owner the graph still holds, other than drop_uid (orphaning). */
static bool
live_owner(struct ctrl_gc *gc, const json_t *ref, const char *drop_uid)
{
	const char *ou = json_string_value(json_object_get(ref, "uid"));
	return ou && json_object_get(gc->nodes, ou) && !(drop_uid && strcmp(ou, drop_uid) == 0);
}

/* Rewrites obj's ownerReferences keeping only owners the graph still holds
 * (minus drop_uid, for orphaning). */
static int
prune_owner_refs(struct ctrl_gc *gc, const json_t *node, const char *drop_uid)
{
	return rewrite_list(gc, node, "ownerReferences", live_owner, drop_uid);
}

static int
process_owner_fg(struct ctrl_gc *gc, const char *uid, const json_t *node)
{
	size_t blocking = 0;
	const char *du;
	json_t *v;
	int rc = 0;
	json_object_foreach(json_object_get(gc->deps, uid), du, v) {
		json_t *dep = json_object_get(gc->nodes, du);
		if (!dep)
			continue;
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(dep, "owners"), i, o)
			if (strcmp(node_str(o, "uid"), uid) == 0 && node_flag(o, "block"))
				blocking++;
		if (!node_flag(dep, "deleting") && delete_node(gc, dep, API_PROPAGATE_FOREGROUND) < 0)
			rc = -EAGAIN;
	}
	if (blocking == 0 && rc == 0)
		rc = drop_finalizer(gc, node, "foregroundDeletion");
	return rc;
}

static int
process_owner_orphan(struct ctrl_gc *gc, const char *uid, const json_t *node)
{
	const char *du;
	json_t *v, *set = json_deep_copy(json_object_get(gc->deps, uid));
	int rc = 0;
	json_object_foreach(set, du, v) {
		json_t *dep = json_object_get(gc->nodes, du);
		if (dep && prune_owner_refs(gc, dep, uid) < 0)
			rc = -EAGAIN;
	}
	json_decref(set);
	return rc ? rc : drop_finalizer(gc, node, "orphan");
}

/* Deletes everything in a terminating namespace; once nothing is left,
 * removes the namespace's "kubernetes" finalizer (and so the namespace). */
static int
process_namespace(struct ctrl_gc *gc, const json_t *node)
{
	const char *ns = node_str(node, "name");
	size_t left = 0;
	int rc = 0;
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		char key[128];
		json_t *items = NULL;
		if (!k->namespaced ||
		    store_list(api_store(gc->api), api_res_key(k, key, sizeof key), ns, &items, NULL) < 0)
			continue;
		size_t j;
		json_t *o;
		json_array_foreach(items, j, o) {
			struct api_error err = { 0 };
			if (!obj_get_path(o, "metadata.deletionTimestamp") &&
			    api_delete(gc->api, k, ns, obj_name(o), API_PROPAGATE_BACKGROUND, NULL,
			    0, 0, NULL, &err) < 0 && err.code != 404)
				rc = -EAGAIN;
			api_error_clear(&err);
		}
		json_decref(items);
		items = NULL;
		store_list(api_store(gc->api), key, ns, &items, NULL);
		left += json_array_size(items);
		json_decref(items);
	}
	if (left || rc < 0)
		return rc;
	const struct kind *k = node_kind(node);
	struct api_error err = { 0 };
	json_t *obj = NULL;
	if (api_get(gc->api, k, "", ns, &obj, &err) == 0) {
		/* Empty, not absent: defaulting would put "kubernetes" back. */
		json_object_set_new(json_object_get(obj, "spec"), "finalizers", json_array());
		if (api_update(gc->api, k, "", obj, false, 0, NULL, &err) < 0)
			rc = -EAGAIN;
		else
			log_info("gc", "namespace %s terminated", ns);
	}
	api_error_clear(&err);
	return rc;
}

static int
process_dependent(struct ctrl_gc *gc, const json_t *node)
{
	size_t alive = 0, dangling = 0, n = 0;
	bool waiting = false;
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(node, "owners"), i, o) {
		json_t *owner = json_object_get(gc->nodes, node_str(o, "uid"));
		n++;
		if (!owner)
			dangling++;
		else if (node_flag(owner, "deleting") && node_flag(owner, "fg"))
			waiting = true;
		else
			alive++;
	}
	if (n == 0 || node_flag(node, "deleting"))
		return 0;
	if (alive == 0 && (dangling || waiting))
		return delete_node(gc, node, waiting ? API_PROPAGATE_FOREGROUND :
		    API_PROPAGATE_BACKGROUND);
	if (dangling)
		return prune_owner_refs(gc, node, NULL);
	return 0;
}

static int
process(struct ctrl_gc *gc, const char *uid)
{
	json_t *node = json_object_get(gc->nodes, uid);
	if (!node)
		return 0;
	json_incref(node);
	int rc = 0;
	if (node_flag(node, "deleting")) {
		if (node_flag(node, "orphan"))
			rc = process_owner_orphan(gc, uid, node);
		else if (node_flag(node, "fg"))
			rc = process_owner_fg(gc, uid, node);
		else if (strcmp(node_str(node, "kind"), "Namespace") == 0)
			rc = process_namespace(gc, node);
	} else {
		rc = process_dependent(gc, node);
	}
	json_decref(node);
	return rc;
}

static void
on_idle(uv_idle_t *h)
{
	struct ctrl_gc *gc = h->data;
	for (int n = 0; n < GC_BATCH; n++) {
		void *it = json_object_iter(gc->queue);
		if (!it)
			break;
		char *uid = xstrdup(json_object_iter_key(it));
		json_object_del(gc->queue, uid);
		if (process(gc, uid) < 0)
			retry_later(gc, uid);
		free(uid);
	}
	if (json_object_size(gc->queue) == 0)
		uv_idle_stop(&gc->idle);
}

static void
on_retry(uv_timer_t *t)
{
	struct ctrl_gc *gc = t->data;
	const char *uid;
	json_t *v;
	json_object_foreach(gc->retry, uid, v)
		enqueue(gc, uid);
	json_object_clear(gc->retry);
}

int
ctrl_gc_start(struct api *api, struct ctrl_gc **out)
{
	struct ctrl_gc *gc = xcalloc(1, sizeof *gc);
	gc->api = api;
	gc->nodes = json_object();
	gc->deps = json_object();
	gc->ns_uid = json_object();
	gc->queue = json_object();
	gc->retry = json_object();
	uv_idle_init(api_loop(api), &gc->idle);
	gc->idle.data = gc;
	uv_timer_init(api_loop(api), &gc->retry_timer);
	gc->retry_timer.data = gc;

	struct store *st = api_store(api);
	for (size_t i = 0; i < kind_count(); i++) {
		char key[128];
		json_t *items = NULL;
		if (store_list(st, api_res_key(kind_at(i), key, sizeof key), NULL, &items, NULL) < 0)
			continue;
		size_t j;
		json_t *o;
		json_array_foreach(items, j, o)
			graph_put(gc, o);
		json_decref(items);
	}
	const char *uid;
	json_t *node;
	json_object_foreach(gc->nodes, uid, node)
		if (needs_work(gc, node))
			enqueue(gc, uid);
	int rc = store_watch_start(st, NULL, NULL, 0, on_event, gc, &gc->sw);
	if (rc < 0) {
		ctrl_gc_stop(gc);
		return rc;
	}
	log_info("gc", "garbage collector started, %zu objects in the graph",
	    json_object_size(gc->nodes));
	*out = gc;
	return 0;
}

size_t
ctrl_gc_size(const struct ctrl_gc *gc)
{
	return json_object_size(gc->nodes);
}

static void
gc_free_cb(uv_handle_t *h)
{
	struct ctrl_gc *gc = h->data;
	if (--gc->closing > 0)
		return;
	json_decref(gc->nodes);
	json_decref(gc->deps);
	json_decref(gc->ns_uid);
	json_decref(gc->queue);
	json_decref(gc->retry);
	free(gc);
}

void
ctrl_gc_stop(struct ctrl_gc *gc)
{
	if (gc->sw)
		store_watch_stop(gc->sw);
	gc->sw = NULL;
	gc->closing = 2;
	uv_close((uv_handle_t *)&gc->idle, gc_free_cb);
	uv_close((uv_handle_t *)&gc->retry_timer, gc_free_cb);
}
