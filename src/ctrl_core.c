/* ctrl_core.c — the controller core: one shell for every level-triggered
 * controller. A controller is a descriptor (struct ctrl_desc: its primary
 * kind, the resources it watches with how each maps to primary keys, a
 * decide hook that returns a write list) and this file does the rest:
 * start/stop, the watches, the work queue, reading the primary, and ONE
 * executor over the write list with ONE conflict policy (see ctrl.h and
 * docs/architecture.md, "the controller core's contract"). */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A create of a generateName'd object whose drawn name was taken is drawn
 * again this many times before the sync gives up and retries later. */
#define CTRL_GENERATE_TRIES 3

struct ctrl_hook {
	struct ctrl *c;
	const struct ctrl_source *src;
};

/* One ctrl_queue_work() in flight; c NULL once the controller stopped. */
struct ctrl_job {
	uv_work_t work;
	struct ctrl *c;
	char *key;
	void (*fn)(void *arg);
	void (*done)(struct ctrl *c, void *arg, int status);
	void (*cancel)(void *arg);
	void *arg;
	struct ctrl_job *next;
};

struct ctrl {
	struct api *api;
	const struct ctrl_desc *desc;
	const struct kind *kind;
	void *data;
	struct ctrl_wq *wq;
	struct ctrl_hook hooks[CTRL_MAX_SOURCES];
	struct store_watch *w[CTRL_MAX_SOURCES];
	struct ctrl_job *jobs;
	size_t njobs;
	json_t *echoes;		/* key -> the primary as its last sync wrote it */
};

/* ---- write lists ------------------------------------------------------- */

static struct ctrl_write *
writes_add(struct ctrl_writes *w)
{
	BUG_ON(w->n >= CTRL_MAX_WRITES);	/* a decide function lost its bound */
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = xrealloc(w->v, w->cap * sizeof *w->v);
	}
	struct ctrl_write *x = &w->v[w->n++];
	memset(x, 0, sizeof *x);
	return x;
}

void
ctrl_writes_push(struct ctrl_writes *w, enum ctrl_op op, const struct kind *k, json_t *obj,
    int tag)
{
	BUG_ON(op == CTRL_EVENT || !obj);
	struct ctrl_write *x = writes_add(w);
	x->op = op;
	x->kind = k;
	x->obj = obj;
	x->tag = tag;
}

void
ctrl_writes_event(struct ctrl_writes *w, const char *type, const char *reason,
    const char *message)
{
	struct ctrl_write *x = writes_add(w);
	x->op = CTRL_EVENT;
	x->type = type;
	x->reason = reason;
	x->message = xstrdup(message ? message : "");
}

void
ctrl_writes_free(struct ctrl_writes *w)
{
	for (size_t i = 0; i < w->n; i++) {
		json_decref(w->v[i].obj);
		free(w->v[i].message);
	}
	free(w->v);
	json_decref(w->carry);
	free(w->error);
	memset(w, 0, sizeof *w);
}

/* ---- the executor ------------------------------------------------------ */

/* What the conflict policy makes of one write's outcome. */
enum ctrl_verdict {
	CTRL_DONE,	/* applied, or nothing left to do: go on */
	CTRL_REDECIDE,	/* decided on stale state: stop, re-read and re-decide */
	CTRL_FAILED,	/* a real error: stop, report, retry rate-limited */
};

/* The one conflict policy. A 404 on delete, update or status means the
 * object is gone: the write has nothing left to do. A 409 on a create of a
 * named object means it exists already (a sync before this one made it; the
 * next decision sees it). Any other 409 (Conflict: a precondition failed)
 * means the decision was made on state that moved: re-decide. */
static enum ctrl_verdict
ctrl_verdict(enum ctrl_op op, const struct api_error *err)
{
	if (err->code == 404 && op != CTRL_CREATE)
		return CTRL_DONE;
	if (err->code == 409)
		return op == CTRL_CREATE ? CTRL_DONE : CTRL_REDECIDE;
	return CTRL_FAILED;
}

static bool
generated(const json_t *obj)
{
	const char *gen = json_string_value(obj_get_path(obj, "metadata.generateName"));
	return !*obj_name(obj) && gen && *gen;
}

/* Runs one create/update/status/delete; *made gets the stored object of a
 * create or update (new reference). Returns the API's 0 / -1 with err set. */
static int
ctrl_call(struct ctrl *c, const struct kind *k, const char *ns, const struct ctrl_write *w,
    json_t **made, struct api_error *err)
{
	int tries = w->op == CTRL_CREATE && generated(w->obj) ? CTRL_GENERATE_TRIES : 1;
	int rc = -1;
	for (int i = 0; i < tries && rc < 0; i++) {
		api_error_clear(err);
		memset(err, 0, sizeof *err);
		json_t *obj = json_deep_copy(w->obj);
		/* The read and the writes of a sync happen on the loop between two
		 * commits, so nothing interleaves: resourceVersion preconditions
		 * are dropped rather than tracked across the writes. */
		json_object_del(obj_metadata(obj), "resourceVersion");
		switch (w->op) {
		case CTRL_CREATE:
			rc = api_create(c->api, k, ns, obj, 0, made, err);
			break;
		case CTRL_UPDATE:
		case CTRL_STATUS:
			rc = api_update(c->api, k, ns, obj, w->op == CTRL_STATUS, 0, made, err);
			break;
		case CTRL_DELETE:
			rc = api_delete(c->api, k, ns, obj_name(obj), API_PROPAGATE_BACKGROUND,
			    *obj_uid(obj) ? obj_uid(obj) : NULL, 0, 0, NULL, err);
			json_decref(obj);
			break;
		case CTRL_EVENT:
			BUG_ON(1);
		}
		if (rc < 0 && !(err->code == 409 && w->op == CTRL_CREATE))
			break;
	}
	return rc;
}

static char *
obj_key(const json_t *obj)
{
	const char *ns = obj_namespace(obj);
	return *ns ? xasprintf("%s/%s", ns, obj_name(obj)) : xstrdup(obj_name(obj));
}

/* The primary as this controller just wrote it (desc->quiet_echo): hearing
 * exactly that object again (its echo) brings nothing the sync did not
 * decide on, and a staged source would sync on it before the commit, a
 * full sync each time (a ReplicaSet's lists its pods: 5-60 ms at 100). */
static void
echo_note(struct ctrl *c, const json_t *made)
{
	if (!c->echoes)
		return;
	char *key = obj_key(made);
	json_object_set(c->echoes, key, (json_t *)made);
	free(key);
}

/* True when obj is the echo of the controller's own last write of it. */
static bool
echo_heard(struct ctrl *c, const json_t *obj)
{
	if (!c->echoes || json_object_size(c->echoes) == 0)
		return false;
	char *key = obj_key(obj);
	json_t *mine = json_object_get(c->echoes, key);
	bool same = mine && json_equal(mine, (json_t *)obj);
	json_object_del(c->echoes, key);
	free(key);
	return same;
}

/* Applies one write; returns its verdict. A failure's message goes to
 * list->error (replacing what was there); list->rv rises to the version
 * the write was stored at. */
static enum ctrl_verdict
ctrl_apply_one(struct ctrl *c, const json_t *primary, const struct ctrl_write *w,
    struct ctrl_writes *list)
{
	char **error = &list->error;
	const struct ctrl_desc *d = c->desc;
	if (w->op == CTRL_EVENT) {
		api_record_event(c->api, primary, w->type, w->reason, d->component, "%s",
		    w->message);
		return CTRL_DONE;
	}
	const struct kind *k = w->kind ? w->kind :
	    kind_find_gvk(obj_api_version(w->obj), obj_kind(w->obj));
	/* The primary's namespace unless the write names its own (GitOps
	 * writes into the Application's destination) or is cluster-scoped. */
	const char *ns = k && !k->namespaced ? "" : *obj_namespace(w->obj) ?
	    obj_namespace(w->obj) : obj_namespace(primary);
	if (!k) {
		api_record_event(c->api, primary, "Warning", "KindMissing", d->component,
		    "%s %s is not served by this server", obj_api_version(w->obj),
		    obj_kind(w->obj));
		return CTRL_DONE;
	}
	struct api_error err = { 0 };
	json_t *made = NULL;
	enum ctrl_verdict v = CTRL_DONE;
	if (ctrl_call(c, k, ns, w, &made, &err) < 0)
		v = ctrl_verdict(w->op, &err);
	if (obj_resource_version(made) > list->rv)
		list->rv = obj_resource_version(made);
	if (v == CTRL_FAILED) {
		free(*error);
		*error = xstrdup(err.message ? err.message : "error");
	}
	if (v == CTRL_FAILED)
		log_warn(d->name, "syncing %s/%s: %s %s: %s", ns, obj_name(primary), k->kind,
		    *obj_name(w->obj) ? obj_name(w->obj) : "(generated)", err.message);
	if (d->result && v != CTRL_REDECIDE)
		d->result(c, primary, w, made, v == CTRL_FAILED ?
		    *error : NULL);
	if (made && k == c->kind && !strcmp(obj_name(made), obj_name(primary)) &&
	    !strcmp(obj_namespace(made), obj_namespace(primary)))
		echo_note(c, made);
	json_decref(made);
	api_error_clear(&err);
	return v;
}

/* Applies w[from..) in order, stopping at the first write that does not
 * verdict DONE; *stop gets its index (w->n when all ran). */
static enum ctrl_verdict
ctrl_apply_from(struct ctrl *c, const json_t *primary, struct ctrl_writes *w,
    size_t from, size_t *stop)
{
	for (*stop = from; *stop < w->n; (*stop)++) {
		enum ctrl_verdict v = ctrl_apply_one(c, primary, &w->v[*stop], w);
		if (v != CTRL_DONE)
			return v;
	}
	return CTRL_DONE;
}

int
ctrl_apply(struct ctrl *c, const json_t *primary, struct ctrl_writes *w)
{
	size_t stop, n = w->n;
	enum ctrl_verdict v = ctrl_apply_from(c, primary, w, 0, &stop);
	if (c->desc->after) {
		/* a copy: after may append, which moves w->v */
		struct ctrl_write failed = stop < n ? w->v[stop] : (struct ctrl_write){ 0 };
		c->desc->after(c, primary, stop < n ? &failed : NULL, w);
		enum ctrl_verdict v2 = ctrl_apply_from(c, primary, w, n, &stop);
		if (v == CTRL_DONE)
			v = v2;
	}
	return v == CTRL_DONE && !w->retry ? 0 : -EAGAIN;
}

/* ---- the sync skeleton --------------------------------------------------- */

/* One sync of the primary named by key "NS/NAME" (or "NAME" when cluster
 * scoped): read it, decide, apply. A primary gone is no work unless the
 * descriptor asks to hear of it (on_gone: decide gets a stub, no uid). */
static int
ctrl_sync(void *arg, const char *key)
{
	struct ctrl *c = arg;
	const struct ctrl_desc *d = c->desc;
	const char *slash = strchr(key, '/');
	char *ns = slash ? xstrndup(key, (size_t)(slash - key)) : xstrdup("");
	const char *name = slash ? slash + 1 : key;
	struct api_error err = { 0 };
	struct ctrl_writes w = { 0 };
	json_t *obj = NULL;
	int rc = 0;
	if (api_get(c->api, c->kind, ns, name, &obj, &err) < 0 && !d->on_gone)
		goto out;
	if (!obj)
		obj = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", d->api_version, "kind",
		    d->kind, "metadata", "namespace", ns, "name", name);
	if ((rc = d->decide(c, obj, time_now_ms(), &w)) < 0)
		goto out;
	rc = ctrl_apply(c, obj, &w);
	if (rc == 0 && w.requeue_ms > 0)
		ctrl_wq_add_after(c->wq, key, w.requeue_ms);
out:
	ctrl_writes_free(&w);
	api_error_clear(&err);
	json_decref(obj);
	free(ns);
	return rc < 0 ? -EAGAIN : 0;
}

/* The store watch of one source: the primary's own resource queues the
 * object itself (not a deleted one); the others map through their hook. */
static void
ctrl_on_event(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct ctrl_hook *h = arg;
	(void)res;
	(void)rv;
	if (h->src->map)
		h->src->map(h->c, ev, obj);
	else if (ev != STORE_DELETED && !echo_heard(h->c, obj))
		ctrl_enqueue(h->c, obj_namespace(obj), obj_name(obj));
}

/* A staged source heard writes about to be committed: sync what they woke
 * now, so that the writes of the syncs join that commit. */
static void
ctrl_drain(void *arg)
{
	struct ctrl_hook *h = arg;
	ctrl_wq_run(h->c->wq);
}

int
ctrl_start(struct api *api, const struct ctrl_desc *desc, void *data, struct ctrl **out)
{
	struct ctrl *c = xcalloc(1, sizeof *c);
	struct store *st = api_store(api);
	int rc = 0;
	c->api = api;
	c->desc = desc;
	c->data = data;
	c->kind = kind_find_gvk(desc->api_version, desc->kind);
	BUG_ON(!c->kind || !desc->decide);
	c->wq = ctrl_wq_new(api_loop(api), ctrl_sync, c);
	c->echoes = desc->quiet_echo ? json_object() : NULL;
	ctrl_wq_set_name(c->wq, desc->name);
	if (desc->seed)
		desc->seed(c);
	else if ((rc = ctrl_wq_add_all(c->wq, st, desc->res)) < 0)
		goto fail;
	for (size_t i = 0; i < CTRL_MAX_SOURCES && desc->sources[i].res; i++) {
		const struct ctrl_source *src = &desc->sources[i];
		if (src->kind && !kind_find_gvk(src->kind_api_version, src->kind))
			continue;	/* a kind this server does not serve */
		c->hooks[i] = (struct ctrl_hook){ .c = c, .src = src };
		rc = src->staged ?
		    store_watch_staged(st, src->res, ctrl_on_event, ctrl_drain, &c->hooks[i],
		    &c->w[i]) :
		    store_watch_start(st, src->res, NULL, 0, ctrl_on_event, &c->hooks[i], &c->w[i]);
		if (rc < 0)
			goto fail;
	}
	log_info(desc->name, "%s controller started", desc->name);
	*out = c;
	return 0;
fail:
	ctrl_stop(c);
	return rc;
}

void
ctrl_stop(struct ctrl *c)
{
	if (!c)
		return;
	for (struct ctrl_job *j = c->jobs; j; j = j->next) {
		j->c = NULL;		/* job_done frees it */
		if (j->cancel)
			j->cancel(j->arg);
	}
	for (size_t i = 0; i < CTRL_MAX_SOURCES; i++)
		if (c->w[i])
			store_watch_stop(c->w[i]);
	ctrl_wq_free(c->wq);
	json_decref(c->echoes);
	free(c);
}

struct api *
ctrl_api(const struct ctrl *c)
{
	return c->api;
}

struct store *
ctrl_store(const struct ctrl *c)
{
	return api_store(c->api);
}

void *
ctrl_data(const struct ctrl *c)
{
	return c->data;
}

void
ctrl_enqueue(struct ctrl *c, const char *ns, const char *name)
{
	if (ns && *ns)
		ctrl_wq_add_name(c->wq, ns, name);
	else
		ctrl_wq_add(c->wq, name);
}

void
ctrl_enqueue_key(struct ctrl *c, const char *key)
{
	ctrl_wq_add(c->wq, key);
}

void
ctrl_enqueue_selecting(struct ctrl *c, const char *ns, const json_t *labels)
{
	ctrl_wq_add_selecting(c->wq, api_store(c->api), c->desc->res, ns, labels);
}

void
ctrl_enqueue_pod_owner(struct ctrl *c, enum store_event ev, const json_t *pod)
{
	ctrl_wq_add_pod_owner(c->wq, api_store(c->api), ev, pod, c->desc->kind, c->desc->res);
}

void
ctrl_enqueue_owner(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	const json_t *ref = obj_controller_ref(obj);
	if (ref && !strcmp(obj_str(ref, "kind"), c->desc->kind))
		ctrl_enqueue(c, obj_namespace(obj), obj_str(ref, "name"));
}

void
ctrl_enqueue_all(struct ctrl *c)
{
	ctrl_wq_add_all(c->wq, api_store(c->api), c->desc->res);
}

void
ctrl_enqueue_after(struct ctrl *c, const char *key, int64_t delay_ms)
{
	ctrl_wq_add_after(c->wq, key, delay_ms);
}

/* ---- asynchronous work ---------------------------------------------------- */

static void
job_work(uv_work_t *w)
{
	struct ctrl_job *j = w->data;
	j->fn(j->arg);
}

static void
job_done(uv_work_t *w, int status)
{
	struct ctrl_job *j = w->data;
	struct ctrl *c = j->c;
	if (c) {
		for (struct ctrl_job **pp = &c->jobs; *pp; pp = &(*pp)->next)
			if (*pp == j) {
				*pp = j->next;
				break;
			}
		c->njobs--;
	}
	j->done(c, j->arg, status);
	if (c)
		ctrl_wq_add(c->wq, j->key);
	free(j->key);
	free(j);
}

int
ctrl_queue_work(struct ctrl *c, const char *key, void (*work)(void *arg),
    void (*done)(struct ctrl *c, void *arg, int status), void (*cancel)(void *arg),
    void *arg)
{
	struct ctrl_job *j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->c = c;
	j->key = xstrdup(key);
	j->fn = work;
	j->done = done;
	j->cancel = cancel;
	j->arg = arg;
	int rc = uv_queue_work(api_loop(c->api), &j->work, job_work, job_done);
	if (rc < 0) {
		free(j->key);
		free(j);
		return rc;
	}
	j->next = c->jobs;
	c->jobs = j;
	c->njobs++;
	return 0;
}

size_t
ctrl_jobs(const struct ctrl *c)
{
	return c ? c->njobs : 0;
}

void
ctrl_record_pod_write(struct ctrl *c, const json_t *owner, const struct ctrl_write *w,
    const json_t *made, const char *err)
{
	const char *comp = c->desc->component;
	if (w->op == CTRL_CREATE && !err)
		api_record_event(c->api, owner, "Normal", "SuccessfulCreate", comp,
		    "Created pod: %s", obj_name(made));
	else if (w->op == CTRL_CREATE)
		api_record_event(c->api, owner, "Warning", "FailedCreate", comp,
		    "Error creating: %s", err);
	else if (w->op == CTRL_DELETE && !err)
		api_record_event(c->api, owner, "Normal", "SuccessfulDelete", comp,
		    "Deleted pod: %s", obj_name(w->obj));
	else if (w->op == CTRL_DELETE)
		api_record_event(c->api, owner, "Warning", "FailedDelete", comp,
		    "Error deleting: %s", err);
}
