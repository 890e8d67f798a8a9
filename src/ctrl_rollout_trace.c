/* ctrl_rollout_trace.c — rollouts as traces (ctrl.h): one trace per
 * (Rollout, revision), its id derived from the Rollout's uid and the pod
 * template hash so every sync (and a restarted server) lands in the same
 * trace. Each traffic move the controller decides (its Events, a canary
 * weight change) becomes a span at once; the revision's own span, the
 * parent of those, goes when the revision completes or aborts and lists
 * them all as events. Resource: service.name=v6. Called by ctrl_rollout.c. */
#include "ctrl.h"
#include "obs_otlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_MAX_OPEN	256	/* revisions tracked at once */
#define RT_MAX_EVENTS	64	/* events kept per revision span */

struct rt_event {
	uint64_t t_ns;
	char *reason, *message;
	int64_t weight, step;
};

/* A revision whose span is still open. */
struct rt_open {
	char *key;			/* "uid/hash" */
	uint64_t start_ns;
	struct otlp_ids ids;
	struct rt_event ev[RT_MAX_EVENTS];
	size_t nev;
	char *last;			/* the last move recorded: a retried sync repeats it */
	struct rt_open *next;
};

struct ro_trace {
	struct otlp_exporter *x;
	struct rt_open *open;
	size_t nopen;
	struct buf span, res;
};

struct ro_trace *
ro_trace_new(struct otlp_exporter *x)
{
	struct ro_trace *t = xcalloc(1, sizeof *t);

	t->x = x;
	return t;
}

static void
open_free(struct rt_open *o)
{
	for (size_t i = 0; i < o->nev; i++) {
		free(o->ev[i].reason);
		free(o->ev[i].message);
	}
	free(o->key);
	free(o->last);
	free(o);
}

void
ro_trace_free(struct ro_trace *t)
{
	if (t == NULL)
		return;
	while (t->open) {
		struct rt_open *o = t->open;
		t->open = o->next;
		open_free(o);
	}
	buf_free(&t->span);
	buf_free(&t->res);
	free(t);
}

/* FNV-1a of s, seeded: ids that are the same for the same revision. */
static uint64_t
id_of(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static struct rt_open *
open_get(struct ro_trace *t, const char *key, uint64_t now_ns)
{
	struct rt_open *o, **pp;

	for (o = t->open; o; o = o->next)
		if (!strcmp(o->key, key))
			return o;
	if (t->nopen >= RT_MAX_OPEN) {		/* forget the oldest */
		for (pp = &t->open; (*pp)->next; pp = &(*pp)->next)
			;
		open_free(*pp);
		*pp = NULL;
		t->nopen--;
	}
	o = xcalloc(1, sizeof *o);
	o->key = xstrdup(key);
	o->start_ns = now_ns;
	o->ids.trace_hi = id_of(key, 1);
	o->ids.trace_lo = id_of(key, 2);
	o->ids.span_id = id_of(key, 3);
	o->next = t->open;
	t->open = o;
	t->nopen++;
	return o;
}

static void
open_close(struct ro_trace *t, struct rt_open *o)
{
	struct rt_open **pp = &t->open;

	while (*pp != o)
		pp = &(*pp)->next;
	*pp = o->next;
	t->nopen--;
	open_free(o);
}

static void
put_resource(struct buf *b)
{
	buf_reset(b);
	buf_putc(b, '[');
	otlp_attr_cstr(b, "service.name", "v6");
	otlp_attr_cstr(b, "service.version", V6_VERSION);
	buf_putc(b, ']');
}

/* Attributes every rollout span carries. */
static void
put_rollout_attrs(struct buf *b, const json_t *ro, const char *hash, int64_t weight,
    int64_t step)
{
	otlp_attr_cstr(b, "k8s.namespace.name", obj_namespace(ro));
	otlp_attr_cstr(b, "argoproj.rollout.name", obj_name(ro));
	otlp_attr_cstr(b, "argoproj.rollout.revision", hash);
	if (weight >= 0) {
		otlp_attr_int(b, "argoproj.rollout.canary.weight", weight);
		otlp_attr_int(b, "argoproj.rollout.stable.weight", 100 - weight);
	}
	if (step >= 0)
		otlp_attr_int(b, "argoproj.rollout.step", step);
}

static bool
is_end(const char *reason)
{
	return !strcmp(reason, "RolloutCompleted") || !strcmp(reason, "RolloutAborted");
}

/* One move: its own span now, an event of the revision's span later. */
static void
record(struct ro_trace *t, const json_t *ro, struct rt_open *o, const char *hash,
    const char *reason, const char *message, int64_t weight, int64_t step, uint64_t now_ns)
{
	struct otlp_ids ids = o->ids;
	char name[128];
	bool error = !strcmp(reason, "RolloutAborted");

	ids.parent_id = o->ids.span_id;
	ids.span_id = id_of(o->key, now_ns ^ (uint64_t)o->nev << 48);
	snprintf(name, sizeof name, "rollout %s: %s", obj_name(ro), reason);
	buf_reset(&t->span);
	otlp_span_begin(&t->span, &ids, NULL, name, OTLP_KIND_INTERNAL, now_ns, now_ns);
	put_rollout_attrs(&t->span, ro, hash, weight, step);
	otlp_attr_cstr(&t->span, "event.name", reason);
	otlp_span_events(&t->span);
	otlp_event_begin(&t->span, reason, now_ns);
	otlp_attr_cstr(&t->span, "message", message);
	otlp_event_end(&t->span);
	otlp_span_end(&t->span, error ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET,
	    error ? message : NULL, true);
	put_resource(&t->res);
	otlp_add(t->x, t->res.data, t->res.len, t->span.data, t->span.len);
	if (o->nev < RT_MAX_EVENTS) {
		struct rt_event *e = &o->ev[o->nev++];
		e->t_ns = now_ns;
		e->reason = xstrdup(reason);
		e->message = xstrdup(message);
		e->weight = weight;
		e->step = step;
	}
}

/* The revision's span: from its first move to its end, every move an event. */
static void
finish(struct ro_trace *t, const json_t *ro, struct rt_open *o, const char *hash,
    bool aborted, uint64_t now_ns)
{
	char name[128];

	snprintf(name, sizeof name, "rollout %s", obj_name(ro));
	buf_reset(&t->span);
	otlp_span_begin(&t->span, &o->ids, NULL, name, OTLP_KIND_INTERNAL, o->start_ns, now_ns);
	put_rollout_attrs(&t->span, ro, hash, -1, -1);
	otlp_attr_cstr(&t->span, "argoproj.rollout.outcome", aborted ? "aborted" : "completed");
	otlp_span_events(&t->span);
	for (size_t i = 0; i < o->nev; i++) {
		const struct rt_event *e = &o->ev[i];
		otlp_event_begin(&t->span, e->reason, e->t_ns);
		otlp_attr_cstr(&t->span, "message", e->message);
		if (e->weight >= 0)
			otlp_attr_int(&t->span, "argoproj.rollout.canary.weight", e->weight);
		if (e->step >= 0)
			otlp_attr_int(&t->span, "argoproj.rollout.step", e->step);
		otlp_event_end(&t->span);
	}
	otlp_span_end(&t->span, aborted ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET,
	    aborted ? "rollout aborted" : NULL, true);
	put_resource(&t->res);
	otlp_add(t->x, t->res.data, t->res.len, t->span.data, t->span.len);
	open_close(t, o);
}

static int64_t
weight_of(const json_t *status)
{
	const json_t *w = obj_get_path(status, "canary.weights.canary.weight");

	return json_is_integer(w) ? json_integer_value(w) : -1;
}

void
ro_trace_sync(struct ro_trace *t, const json_t *ro, const struct rollout_actions *a,
    int64_t now_ms)
{
	const json_t *old = json_object_get(ro, "status"), *st = old;
	uint64_t now_ns = (uint64_t)now_ms * 1000000ull;
	const char *hash, *uid = obj_uid(ro);
	int64_t weight, step;
	struct rt_open *o;
	char *key;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (a->v[i].op == RO_STATUS)
			st = json_object_get(a->v[i].obj, "status");
	hash = obj_str(st, "currentPodHash");
	if (!hash || !*hash)
		return;
	weight = weight_of(st);
	step = obj_int_at(st, "currentStepIndex", -1);
	key = xasprintf("%s/%s", uid ? uid : obj_name(ro), hash);
	o = open_get(t, key, now_ns);
	free(key);
	for (i = 0; i < a->n; i++) {
		const struct rollout_action *x = &a->v[i];
		char *mark;
		if (x->op != RO_EVENT || !x->reason || !x->message)
			continue;
		mark = xasprintf("%s|%s|%lld", x->reason, x->message, (long long)step);
		if (o->last && !strcmp(o->last, mark)) {
			free(mark);	/* the same move again: the last sync's writes failed */
			continue;
		}
		free(o->last);
		o->last = mark;
		record(t, ro, o, hash, x->reason, x->message, weight, step, now_ns);
		if (is_end(x->reason)) {
			finish(t, ro, o, hash, !strcmp(x->reason, "RolloutAborted"), now_ns);
			return;
		}
	}
	if (weight >= 0 && weight != weight_of(old) && st != old) {
		char msg[96];
		snprintf(msg, sizeof msg, "canary weight %lld -> %lld",
		    (long long)(weight_of(old) < 0 ? 0 : weight_of(old)), (long long)weight);
		record(t, ro, o, hash, "TrafficWeightUpdated", msg, weight, step, now_ns);
	}
}
