/* ctrl_workqueue.c — the work queue of the apps controllers (client-go's
 * workqueue, on one loop): string keys, deduplicated, processed from an idle
 * handle a batch at a time; delayed keys wait on one timer armed for the
 * earliest; failures retry with a per-key exponential delay. */
#include "ctrl.h"
#include "obs_metrics.h"

#include <stdlib.h>
#include <string.h>

#define WQ_BATCH 64
#define WQ_BASE_DELAY_MS 5
#define WQ_MAX_DELAY_MS 60000

struct ctrl_wq {
	uv_idle_t idle;
	uv_timer_t timer;
	ctrl_wq_fn fn;
	void *arg;
	json_t *queue;		/* key -> uv_hrtime() when queued, in insertion order */
	json_t *delayed;	/* key -> due time (monotonic ms) */
	json_t *failures;	/* key -> consecutive failures */
	int closing;		/* handles still to close; -1 while open */
	struct obs_wq *obs;	/* workqueue_* figures, once named */
};

static void wq_on_idle(uv_idle_t *h);
static void wq_on_timer(uv_timer_t *t);

static void
wq_arm(struct ctrl_wq *q)
{
	const char *key;
	json_t *v;
	int64_t first = INT64_MAX, now = time_mono_ms();
	json_object_foreach(q->delayed, key, v)
		if (json_integer_value(v) < first)
			first = json_integer_value(v);
	if (first == INT64_MAX) {
		uv_timer_stop(&q->timer);
		return;
	}
	uv_timer_start(&q->timer, wq_on_timer, first > now ? (uint64_t)(first - now) : 0, 0);
}

struct ctrl_wq *
ctrl_wq_new(uv_loop_t *loop, ctrl_wq_fn fn, void *arg)
{
	struct ctrl_wq *q = xcalloc(1, sizeof *q);
	q->fn = fn;
	q->arg = arg;
	q->queue = json_object();
	q->delayed = json_object();
	q->failures = json_object();
	q->closing = -1;
	uv_idle_init(loop, &q->idle);
	uv_timer_init(loop, &q->timer);
	q->idle.data = q->timer.data = q;
	return q;
}

void
ctrl_wq_add(struct ctrl_wq *q, const char *key)
{
	if (q->closing >= 0 || !key || !*key)
		return;
	if (json_object_get(q->queue, key))
		return;		/* already waiting: client-go counts no add */
	json_object_set_new(q->queue, key, json_integer((json_int_t)uv_hrtime()));
	if (q->obs) {
		obs_wq_add(q->obs);
		obs_wq_depth(q->obs, json_object_size(q->queue));
	}
	uv_idle_start(&q->idle, wq_on_idle);
}

void
ctrl_wq_set_name(struct ctrl_wq *q, const char *name)
{
	if (!q->obs)
		q->obs = obs_wq_register(name);
}

void
ctrl_wq_add_after(struct ctrl_wq *q, const char *key, int64_t delay_ms)
{
	if (q->closing >= 0 || !key || !*key)
		return;
	if (delay_ms <= 0) {
		ctrl_wq_add(q, key);
		return;
	}
	int64_t due = time_mono_ms() + delay_ms;
	json_t *cur = json_object_get(q->delayed, key);
	if (cur && json_integer_value(cur) <= due)
		return;
	json_object_set_new(q->delayed, key, json_integer(due));
	wq_arm(q);
}

void
ctrl_wq_add_rate_limited(struct ctrl_wq *q, const char *key)
{
	if (q->closing >= 0 || !key || !*key)
		return;
	json_int_t n = json_integer_value(json_object_get(q->failures, key));
	int64_t delay = WQ_BASE_DELAY_MS;
	for (json_int_t i = 0; i < n && delay < WQ_MAX_DELAY_MS; i++)
		delay *= 2;
	if (delay > WQ_MAX_DELAY_MS)
		delay = WQ_MAX_DELAY_MS;
	json_object_set_new(q->failures, key, json_integer(n + 1));
	if (q->obs)
		obs_wq_retry(q->obs);
	ctrl_wq_add_after(q, key, delay);
}

void
ctrl_wq_forget(struct ctrl_wq *q, const char *key)
{
	json_object_del(q->failures, key);
}

size_t
ctrl_wq_len(const struct ctrl_wq *q)
{
	return json_object_size(q->queue);
}

size_t
ctrl_wq_delayed(const struct ctrl_wq *q)
{
	return json_object_size(q->delayed);
}

static void
wq_on_timer(uv_timer_t *t)
{
	struct ctrl_wq *q = t->data;
	int64_t now = time_mono_ms();
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(q->delayed, tmp, key, v) {
		if (json_integer_value(v) <= now) {
			ctrl_wq_add(q, key);
			json_object_del(q->delayed, key);
		}
	}
	wq_arm(q);
}

/* Runs a batch of the queued keys, in the order they came. */
static void
wq_run(struct ctrl_wq *q)
{
	for (int n = 0; n < WQ_BATCH && q->closing < 0; n++) {
		void *it = json_object_iter(q->queue);
		if (!it)
			break;
		char *key = xstrdup(json_object_iter_key(it));
		uint64_t queued = (uint64_t)json_integer_value(json_object_iter_value(it));
		uint64_t t0 = uv_hrtime();
		json_object_del(q->queue, key);
		if (q->obs) {
			obs_wq_depth(q->obs, json_object_size(q->queue));
			obs_wq_got(q->obs, (double)(t0 - queued) / 1e9);
		}
		int rc = q->fn(q->arg, key);
		/* q->fn may have closed the queue, but q lives until its handles close */
		if (q->obs)
			obs_wq_done(q->obs, (double)(uv_hrtime() - t0) / 1e9, rc < 0);
		if (rc < 0)
			ctrl_wq_add_rate_limited(q, key);
		else
			ctrl_wq_forget(q, key);
		free(key);
	}
	if (json_object_size(q->queue) == 0 && q->closing < 0)
		uv_idle_stop(&q->idle);
}

static void
wq_on_idle(uv_idle_t *h)
{
	struct ctrl_wq *q = h->data;
	wq_run(q);
	if (q->closing >= 0)
		uv_idle_stop(&q->idle);
}

void
ctrl_wq_run(struct ctrl_wq *q)
{
	wq_run(q);
}

static void
wq_closed(uv_handle_t *h)
{
	struct ctrl_wq *q = h->data;
	if (--q->closing > 0)
		return;
	json_decref(q->queue);
	json_decref(q->delayed);
	json_decref(q->failures);
	free(q);
}

void
ctrl_wq_free(struct ctrl_wq *q)
{
	if (!q)
		return;
	obs_wq_unregister(q->obs);
	q->obs = NULL;
	q->closing = 2;
	uv_close((uv_handle_t *)&q->idle, wq_closed);
	uv_close((uv_handle_t *)&q->timer, wq_closed);
}

/* ---- what every controller's watch layer does ---------------------------- */

void
ctrl_wq_add_name(struct ctrl_wq *q, const char *ns, const char *name)
{
	char *key = xasprintf("%s/%s", ns, name);
	ctrl_wq_add(q, key);
	free(key);
}

int
ctrl_wq_add_all(struct ctrl_wq *q, struct store *st, const char *res)
{
	json_t *items = NULL, *o;
	size_t i;
	int rc = store_list(st, res, NULL, &items, NULL);
	if (rc < 0)
		return rc;
	json_array_foreach(items, i, o)
		ctrl_wq_add_name(q, obj_namespace(o), obj_name(o));
	json_decref(items);
	return 0;
}

void
ctrl_wq_add_selecting(struct ctrl_wq *q, struct store *st, const char *res, const char *ns,
    const json_t *labels)
{
	json_t *items = NULL, *o;
	size_t i;
	if (store_list(st, res, ns, &items, NULL) < 0)
		return;
	json_array_foreach(items, i, o) {
		struct selector *sel = NULL;
		char *err = NULL;
		if (!labels || (selector_from_json(obj_get_path(o, "spec.selector"), &sel,
		    &err) == 0 && selector_matches(sel, labels)))
			ctrl_wq_add_name(q, obj_namespace(o), obj_name(o));
		selector_free(sel);
		free(err);
	}
	json_decref(items);
}

void
ctrl_wq_add_pod_owner(struct ctrl_wq *q, struct store *st, enum store_event ev,
    const json_t *pod, const char *kind, const char *res)
{
	const json_t *ref = obj_controller_ref(pod);
	if (ref) {
		const char *k = json_string_value(json_object_get(ref, "kind"));
		const char *av = json_string_value(json_object_get(ref, "apiVersion"));
		/* the reference's group is the primary's: "apps/v1" for
		 * "apps/replicasets", "batch/v1" for "batch/jobs" */
		const char *slash = strchr(res, '/');
		size_t glen = slash ? (size_t)(slash - res) + 1 : 0;
		if (k && av && strcmp(k, kind) == 0 && glen && strncmp(av, res, glen) == 0)
			ctrl_wq_add_name(q, obj_namespace(pod),
			    json_string_value(json_object_get(ref, "name")));
		return;
	}
	if (ev != STORE_DELETED && obj_pod_active(pod))
		ctrl_wq_add_selecting(q, st, res, obj_namespace(pod), obj_labels(pod));
}
