/* node_pod.c — the pure per-pod state machine of the node agent (kubelet's
 * sync logic without the I/O): init containers in order, restart policy
 * with CrashLoopBackOff, startup / liveness / readiness probe counting,
 * postStart / preStop hooks and graceful termination, Kubernetes phases,
 * conditions and container statuses. node_agent.c feeds it runtime events
 * and carries out the actions it returns; tests drive it with a fake clock. */
#include "node_pod.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"

static const char *const probe_field[NPROBE_N] = { "startupProbe", "livenessProbe",
	"readinessProbe" };
static const char *const probe_word[NPROBE_N] = { "Startup", "Liveness", "Readiness" };

static int
jint(const json_t *o, const char *key, int def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void
probe_parse(struct nprobe *pr, const json_t *j)
{
	memset(pr, 0, sizeof *pr);
	pr->set = json_is_object(j);
	pr->initial_delay_s = jint(j, "initialDelaySeconds", 0);
	pr->period_s = jint(j, "periodSeconds", 10);
	pr->timeout_s = jint(j, "timeoutSeconds", 1);
	pr->success_threshold = jint(j, "successThreshold", 1);
	pr->failure_threshold = jint(j, "failureThreshold", 3);
	pr->grace_s = jint(j, "terminationGracePeriodSeconds", -1);
}

static void
probes_reset(struct nctr *c)
{
	for (int k = 0; k < NPROBE_N; k++) {
		struct nprobe *pr = &c->probe[k];
		pr->successes = pr->failures = 0;
		pr->ok = k == NPROBE_LIVENESS;
		pr->in_flight = false;
		pr->next_ms = 0;
	}
}

static void
ctr_init(struct nctr *c, const json_t *spec, bool init)
{
	memset(c, 0, sizeof *c);
	c->spec = spec;
	c->name = xstrdup(jstr(spec, "name"));
	c->image = xstrdup(jstr(spec, "image"));
	c->init = init;
	c->attempt = -1;
	for (int k = 0; k < NPROBE_N; k++)
		probe_parse(&c->probe[k], json_object_get(spec, probe_field[k]));
	probes_reset(c);
	json_t *lc = json_object_get(spec, "lifecycle");
	c->has_post_start = json_is_object(json_object_get(lc, "postStart"));
	c->has_pre_stop = json_is_object(json_object_get(lc, "preStop"));
}

void
npod_init(struct npod *p, const json_t *pod, int backoff_max_s, int64_t now)
{
	memset(p, 0, sizeof *p);
	p->pod = json_incref((json_t *)pod);	/* never changed: shared */
	p->uid = obj_uid(p->pod);
	p->ns = obj_namespace(p->pod);
	p->name = obj_name(p->pod);
	const json_t *spec = json_object_get(p->pod, "spec");
	const char *rp = jstr(spec, "restartPolicy");
	p->restart = !strcmp(rp, "Never") ? NPOD_NEVER :
	    !strcmp(rp, "OnFailure") ? NPOD_ON_FAILURE : NPOD_ALWAYS;
	p->grace_s = jint(spec, "terminationGracePeriodSeconds", 30);
	p->backoff_max_s = backoff_max_s > 0 ? backoff_max_s : NPOD_BACKOFF_MAX_S;
	p->start_ms = now;
	json_t *ic = json_object_get(spec, "initContainers"), *ac = json_object_get(spec,
	    "containers");
	p->n_init = json_array_size(ic);
	p->n = p->n_init + json_array_size(ac);
	p->c = xcalloc(p->n ? p->n : 1, sizeof *p->c);
	for (size_t i = 0; i < p->n; i++)
		ctr_init(&p->c[i], i < p->n_init ? json_array_get(ic, i) :
		    json_array_get(ac, i - p->n_init), i < p->n_init);
	for (size_t i = 0; i < p->n_init; i++)
		if (*jstr(p->c[i].spec, "restartPolicy") && !p->fail_reason) {
			p->fail_reason = xstrdup("UnsupportedSidecar");
			p->fail_message = xasprintf("init container %s: restartPolicy (sidecar "
			    "containers) is not supported by v6 yet", p->c[i].name);
		}
	const char *rc = npod_runtime(spec);
	if (strcmp(rc, "process") != 0 && strcmp(rc, "runc") != 0 && !p->fail_reason) {
		p->fail_reason = xstrdup("UnsupportedRuntimeClass");
		p->fail_message = xasprintf("runtimeClassName \"%s\" is not supported on "
		    "this node: the runtimes are \"process\" and \"runc\"", rc);
	}
}

const char *npod_default_runtime = "process";
const char *(*npod_class_handler)(const char *name);

const char *
npod_runtime(const json_t *pod_spec)
{
	const char *rc = jstr(pod_spec, "runtimeClassName");
	const char *h = *rc && npod_class_handler ? npod_class_handler(rc) : NULL;
	return h ? h : *rc ? rc : npod_default_runtime;
}

void
npod_free(struct npod *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->c[i].name);
		free(p->c[i].image);
		free(p->c[i].image_id);
		free(p->c[i].message);
	}
	free(p->c);
	free(p->fail_reason);
	free(p->fail_message);
	json_decref(p->pod);
	memset(p, 0, sizeof *p);
}

int
npod_find(const struct npod *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->c[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* ---- restoring from a stored status -------------------------------- */

/* "process://UID/NAME-ATTEMPT" -> ATTEMPT, or -1. */
static int
id_attempt(const char *id)
{
	const char *dash = id ? strrchr(id, '-') : NULL;
	if (!dash || !str_has_prefix(id, "process://"))
		return -1;
	char *end;
	long a = strtol(dash + 1, &end, 10);
	return *end || a < 0 || dash[1] == '\0' ? -1 : (int)a;
}

static void
term_restore(struct nterm *t, const json_t *j, int attempt)
{
	t->attempt = attempt;
	t->exit_code = jint(j, "exitCode", 0);
	t->signal = jint(j, "signal", 0);
	snprintf(t->reason, sizeof t->reason, "%s", jstr(j, "reason"));
	t->started_ms = obj_time_ms(json_object_get(j, "startedAt"));
	t->finished_ms = obj_time_ms(json_object_get(j, "finishedAt"));
}

static void
ctr_restore(struct nctr *c, const json_t *cs)
{
	int attempt = id_attempt(jstr(cs, "containerID"));
	json_t *last = obj_get_path(cs, "lastState.terminated");
	if (json_is_object(last)) {
		c->has_last = true;
		term_restore(&c->last, last, id_attempt(jstr(last, "containerID")));
	}
	if (attempt < 0)
		return;
	c->attempt = attempt;
	json_t *run = obj_get_path(cs, "state.running");
	json_t *term = obj_get_path(cs, "state.terminated");
	if (json_is_object(run)) {
		c->state = NCTR_RUNNING;
		c->started_ms = obj_time_ms(json_object_get(run, "startedAt"));
		c->ready = json_is_true(json_object_get(cs, "ready"));
		c->started = json_is_true(json_object_get(cs, "started"));
		/* A restarted server keeps what the probes last said: a Ready
		 * container stays in the routing table (kubelet forgets it and
		 * drops traffic until the next probe passes). */
		c->probe[NPROBE_READINESS].ok = c->ready;
		if (c->started)
			c->probe[NPROBE_STARTUP].ok = true;
	} else if (json_is_object(term)) {
		c->state = NCTR_TERMINATED;
		term_restore(&c->term, term, attempt);
		c->started_ms = c->term.started_ms;
	} else if (c->has_last && c->last.attempt == attempt) {
		/* waiting (CrashLoopBackOff) after this attempt ended */
		c->state = NCTR_TERMINATED;
		c->term = c->last;
		c->has_last = false;
	}
}

void
npod_restore(struct npod *p, const json_t *status)
{
	if (!json_is_object(status))
		return;
	int64_t st = obj_time_ms(json_object_get(status, "startTime"));
	if (st)
		p->start_ms = st;
	static const char *const lists[] = { "initContainerStatuses", "containerStatuses" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *cs;
		json_array_foreach(json_object_get(status, lists[l]), i, cs) {
			int k = npod_find(p, jstr(cs, "name"));
			if (k < 0)
				continue;
			ctr_restore(&p->c[k], cs);
			if (*jstr(cs, "imageID"))
				npod_image_id(p, (size_t)k, jstr(cs, "imageID"));
		}
	}
}

/* ---- runtime events ------------------------------------------------- */

static void
set_waiting(struct nctr *c, const char *reason, const char *msg)
{
	snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "");
	free(c->message);
	c->message = msg && *msg ? xstrdup(msg) : NULL;
}

void
npod_started(struct npod *p, size_t i, int attempt, int64_t started_ms)
{
	struct nctr *c = &p->c[i];
	if (c->state == NCTR_TERMINATED && c->term.attempt != attempt) {
		c->last = c->term;
		c->has_last = true;
	}
	c->state = NCTR_RUNNING;
	c->attempt = attempt;
	c->started_ms = started_ms;
	set_waiting(c, NULL, NULL);
	c->ready = c->started = false;
	c->post_start = c->has_post_start ? NPOST_PENDING : NPOST_NONE;
	c->kill = NKILL_NONE;
	c->backoff_announced = false;
	c->retry_s = 0;
	c->retry_at_ms = 0;
	probes_reset(c);
}

void
npod_image_id(struct npod *p, size_t i, const char *image_id)
{
	free(p->c[i].image_id);
	p->c[i].image_id = image_id ? xstrdup(image_id) : NULL;
}

void
npod_start_failed(struct npod *p, size_t i, const char *reason, const char *msg,
    int64_t now)
{
	struct nctr *c = &p->c[i];
	if (c->state == NCTR_TERMINATED) {
		c->last = c->term;
		c->has_last = true;
	}
	c->state = NCTR_WAITING;
	set_waiting(c, reason, msg);
	c->retry_s = c->retry_s ? c->retry_s * 2 : NPOD_BACKOFF_INITIAL_S;
	if (c->retry_s > p->backoff_max_s)
		c->retry_s = p->backoff_max_s;
	c->retry_at_ms = now + (int64_t)c->retry_s * 1000;
}

void
npod_exited(struct npod *p, size_t i, int attempt, const struct rt_status *st)
{
	struct nctr *c = &p->c[i];
	if (c->state != NCTR_RUNNING || c->attempt != attempt)
		return;
	c->state = NCTR_TERMINATED;
	struct nterm *t = &c->term;
	t->attempt = attempt;
	t->exit_code = st->exit_code;
	t->signal = st->signal;
	t->started_ms = st->started_at_ms ? st->started_at_ms : c->started_ms;
	t->finished_ms = st->finished_at_ms;
	const char *r = st->reason[0] ? st->reason : st->oom_killed ? "OOMKilled" :
	    st->exit_code == 0 ? "Completed" : "Error";
	snprintf(t->reason, sizeof t->reason, "%s", r);
	c->ready = c->started = false;
	c->post_start = NPOST_NONE;
	c->kill = NKILL_NONE;
	c->backoff_announced = false;
	set_waiting(c, NULL, NULL);
	for (int k = 0; k < NPROBE_N; k++)
		c->probe[k].in_flight = false;
}

static void
make_event(struct npod_act *ev, size_t i, bool warning, const char *reason,
    const char *fmt, ...) V6_PRINTF(5, 6);

static void
make_event(struct npod_act *ev, size_t i, bool warning, const char *reason,
    const char *fmt, ...)
{
	memset(ev, 0, sizeof *ev);
	ev->type = NACT_EVENT;
	ev->ctr = i;
	ev->warning = warning;
	snprintf(ev->reason, sizeof ev->reason, "%s", reason);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev->message, sizeof ev->message, fmt, ap);
	va_end(ap);
}

static void
request_kill(struct nctr *c, int grace_s, const char *why)
{
	if (c->kill != NKILL_NONE)
		return;
	c->kill = NKILL_REQUESTED;
	c->kill_grace_s = grace_s;
	snprintf(c->kill_why, sizeof c->kill_why, "%s", why);
}

void
npod_probe_done(struct npod *p, size_t i, enum nprobe_kind k, bool ok, const char *msg,
    int64_t now, struct npod_act *ev)
{
	struct nctr *c = &p->c[i];
	struct nprobe *pr = &c->probe[k];
	memset(ev, 0, sizeof *ev);
	if (c->state != NCTR_RUNNING || !pr->in_flight)
		return;
	pr->in_flight = false;
	pr->next_ms = now + (int64_t)pr->period_s * 1000;
	bool crossed = false;
	if (ok) {
		pr->failures = 0;
		if (++pr->successes >= pr->success_threshold)
			pr->ok = true;
	} else {
		pr->successes = 0;
		if (++pr->failures >= pr->failure_threshold) {
			crossed = true;
			pr->ok = false;
		}
	}
	if (!ok)
		make_event(ev, i, true, "Unhealthy", "%s probe failed: %s", probe_word[k],
		    msg ? msg : "");
	if (k == NPROBE_STARTUP && pr->ok)
		c->started = true;
	if (k == NPROBE_READINESS)
		c->ready = pr->ok && c->started;
	if (crossed && k != NPROBE_READINESS) {
		char why[128];
		snprintf(why, sizeof why, "Container %s failed %s probe, will be restarted",
		    c->name, k == NPROBE_STARTUP ? "startup" : "liveness");
		request_kill(c, pr->grace_s >= 0 ? pr->grace_s : p->grace_s, why);
		pr->failures = 0;
	}
}

void
npod_hook_done(struct npod *p, size_t i, enum nhook_kind h, bool ok, const char *msg,
    int64_t now, struct npod_act *ev)
{
	struct nctr *c = &p->c[i];
	memset(ev, 0, sizeof *ev);
	if (c->state != NCTR_RUNNING)
		return;
	if (h == NHOOK_PRE_STOP) {
		if (!ok)
			make_event(ev, i, true, "FailedPreStopHook", "PreStopHook failed: %s",
			    msg ? msg : "");
		if (c->kill == NKILL_PRESTOP && c->kill_term_ms > now)
			c->kill_term_ms = now;
		return;
	}
	if (c->post_start != NPOST_RUNNING)
		return;
	c->post_start = NPOST_NONE;
	if (ok)
		return;
	make_event(ev, i, true, "FailedPostStartHook", "PostStartHook failed: %s",
	    msg ? msg : "");
	char why[128];
	snprintf(why, sizeof why, "FailedPostStartHook: stopping container %s", c->name);
	request_kill(c, p->grace_s, why);
}

void
npod_delete(struct npod *p, int grace_s, int64_t now)
{
	if (p->deleting)
		return;
	p->deleting = true;
	p->delete_ms = now;
	p->delete_grace_s = grace_s >= 0 ? grace_s : p->grace_s;
}

bool
npod_all_stopped(const struct npod *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->c[i].state == NCTR_RUNNING)
			return false;
	return true;
}

/* ---- deciding -------------------------------------------------------- */

struct acts {
	struct npod_act *v;
	size_t n, max;
	int64_t next;
};

static struct npod_act *
act_add(struct acts *a, enum npod_act_type type, size_t i)
{
	static struct npod_act sink;
	if (a->n >= a->max) {
		memset(&sink, 0, sizeof sink);
		return &sink;
	}
	struct npod_act *x = &a->v[a->n++];
	memset(x, 0, sizeof *x);
	x->type = type;
	x->ctr = i;
	return x;
}

static void
act_event(struct acts *a, size_t i, bool warning, const char *reason, const char *msg)
{
	if (a->n >= a->max)
		return;
	make_event(&a->v[a->n++], i, warning, reason, "%s", msg);
}

static void
wake_at(struct acts *a, int64_t t)
{
	if (t < a->next)
		a->next = t;
}

static void
send_term(struct acts *a, struct nctr *c, size_t i, int64_t now)
{
	act_add(a, NACT_SIGNAL, i)->sig = SIGTERM;
	c->kill = NKILL_TERM;
	int64_t min_kill = now + (int64_t)NPOD_MIN_GRACE_S * 1000;
	c->kill_kill_ms = c->kill_deadline_ms > min_kill ? c->kill_deadline_ms : min_kill;
	wake_at(a, c->kill_kill_ms);
}

/* preStop (counted in the grace period), SIGTERM, then SIGKILL. */
static void
begin_kill(struct acts *a, struct nctr *c, size_t i, int grace_s, int64_t now)
{
	c->kill_deadline_ms = now + (int64_t)grace_s * 1000;
	if (c->has_pre_stop) {
		struct npod_act *h = act_add(a, NACT_HOOK, i);
		h->hook = NHOOK_PRE_STOP;
		h->timeout_ms = grace_s > 0 ? grace_s * 1000 : 1;
		c->kill = NKILL_PRESTOP;
		c->kill_term_ms = c->kill_deadline_ms;
		wake_at(a, c->kill_term_ms);
		return;
	}
	send_term(a, c, i, now);
}

static void
advance_kill(struct acts *a, struct nctr *c, size_t i, int64_t now)
{
	switch (c->kill) {
	case NKILL_PRESTOP:
		if (now >= c->kill_term_ms)
			send_term(a, c, i, now);
		else
			wake_at(a, c->kill_term_ms);
		break;
	case NKILL_TERM:
		if (now >= c->kill_kill_ms) {
			act_add(a, NACT_SIGNAL, i)->sig = SIGKILL;
			c->kill = NKILL_KILL;
		} else {
			wake_at(a, c->kill_kill_ms);
		}
		break;
	default:
		break;
	}
}

int
npod_backoff_wait_s(const struct nctr *c, int64_t now)
{
	if (c->state != NCTR_TERMINATED || c->backoff_s == 0 ||
	    now - c->backoff_at_ms > NPOD_BACKOFF_RESET_MS)
		return 0;
	int64_t due = c->term.finished_ms + (int64_t)c->backoff_s * 1000;
	return now < due ? c->backoff_s : 0;
}

/* A failed pull (ErrImagePull) shows as such for NPOD_PULL_ERR_SHOW_MS,
 * then as ImagePullBackOff until the retry, as the kubelet's next sync
 * finds the image back-off (10 s doubling to 300 s) in effect. */
static void
image_backoff(struct acts *a, struct nctr *c, size_t i, int64_t now)
{
	int64_t failed_ms = c->retry_at_ms - (int64_t)c->retry_s * 1000;
	if (strcmp(c->reason, "ErrImagePull") != 0)
		return;
	if (now < failed_ms + NPOD_PULL_ERR_SHOW_MS) {
		wake_at(a, failed_ms + NPOD_PULL_ERR_SHOW_MS);
		return;
	}
	char msg[256];
	snprintf(msg, sizeof msg, "Back-off pulling image \"%s\"", c->image);
	set_waiting(c, "ImagePullBackOff", msg);
	act_event(a, i, false, "BackOff", msg);
}

/* kubelet's flowcontrol.Backoff: the first restart is immediate and sets
 * the back-off to 10 s; each later restart waits the current back-off
 * after the exit, then doubles it (cap backoff_max_s); an entry not
 * advanced for 10 minutes starts over. */
static void
restart(struct npod *p, struct acts *a, struct nctr *c, size_t i, int64_t now)
{
	if (c->retry_at_ms > now) {
		image_backoff(a, c, i, now);
		wake_at(a, c->retry_at_ms);
		return;
	}
	if (c->state == NCTR_TERMINATED) {
		int wait = npod_backoff_wait_s(c, now);
		if (wait) {
			char msg[256];
			snprintf(msg, sizeof msg, "back-off %ds restarting failed container=%s "
			    "pod=%s_%s(%s)", wait, c->name, p->name, p->ns, p->uid);
			set_waiting(c, "CrashLoopBackOff", msg);
			if (!c->backoff_announced)
				act_event(a, i, true, "BackOff", msg);
			c->backoff_announced = true;
			wake_at(a, c->term.finished_ms + (int64_t)wait * 1000);
			return;
		}
		bool fresh = c->backoff_s == 0 || now - c->backoff_at_ms > NPOD_BACKOFF_RESET_MS;
		c->backoff_s = fresh ? NPOD_BACKOFF_INITIAL_S : c->backoff_s * 2;
		if (c->backoff_s > p->backoff_max_s)
			c->backoff_s = p->backoff_max_s;
		c->backoff_at_ms = now;
	}
	act_add(a, NACT_START, i)->attempt = c->attempt + 1;
}

static bool
wants_restart(const struct npod *p, const struct nctr *c)
{
	return p->restart == NPOD_ALWAYS && !c->init ? true :
	    p->restart != NPOD_NEVER && c->term.exit_code != 0;
}

static void
probe_sched(struct acts *a, struct nctr *c, size_t i, enum nprobe_kind k, int64_t now)
{
	struct nprobe *pr = &c->probe[k];
	if (!pr->set || pr->in_flight)
		return;
	if (pr->next_ms == 0) {
		int64_t first = c->started_ms + (int64_t)pr->initial_delay_s * 1000;
		pr->next_ms = first > now ? first : now;
	}
	if (now < pr->next_ms) {
		wake_at(a, pr->next_ms);
		return;
	}
	struct npod_act *x = act_add(a, NACT_PROBE, i);
	x->probe = k;
	x->timeout_ms = pr->timeout_s * 1000;
	pr->in_flight = true;
}

static void
running(struct npod *p, struct acts *a, struct nctr *c, size_t i, int64_t now)
{
	if (c->kill == NKILL_REQUESTED) {
		act_event(a, i, false, "Killing", c->kill_why);
		begin_kill(a, c, i, c->kill_grace_s, now);
		return;
	}
	if (c->kill != NKILL_NONE) {
		advance_kill(a, c, i, now);
		return;
	}
	if (c->post_start == NPOST_PENDING) {
		struct npod_act *h = act_add(a, NACT_HOOK, i);
		h->hook = NHOOK_POST_START;
		h->timeout_ms = (p->grace_s > 0 ? p->grace_s : 30) * 1000;
		c->post_start = NPOST_RUNNING;
	}
	if (c->post_start != NPOST_NONE || c->init)
		return;
	if (c->probe[NPROBE_STARTUP].set && !c->started) {
		probe_sched(a, c, i, NPROBE_STARTUP, now);
		return;
	}
	c->started = true;
	probe_sched(a, c, i, NPROBE_LIVENESS, now);
	if (c->probe[NPROBE_READINESS].set) {
		probe_sched(a, c, i, NPROBE_READINESS, now);
		c->ready = c->probe[NPROBE_READINESS].ok;
	} else {
		c->ready = true;
	}
}

/* One container outside termination: start, restart or supervise. */
static void
drive(struct npod *p, struct acts *a, size_t i, int64_t now)
{
	struct nctr *c = &p->c[i];
	switch (c->state) {
	case NCTR_RUNNING:
		running(p, a, c, i, now);
		break;
	case NCTR_WAITING:
		restart(p, a, c, i, now);
		break;
	case NCTR_TERMINATED:
		if (wants_restart(p, c))
			restart(p, a, c, i, now);
		break;
	}
}

static bool
init_done(const struct nctr *c)
{
	return c->state == NCTR_TERMINATED && c->term.exit_code == 0;
}

size_t
npod_step(struct npod *p, int64_t now, struct npod_act *acts, size_t max, int64_t *next_ms)
{
	struct acts a = { acts, 0, max, INT64_MAX };
	if (p->fail_reason)
		goto out;
	if (p->deleting) {
		int64_t end = p->delete_ms + (int64_t)p->delete_grace_s * 1000;
		for (size_t i = 0; i < p->n; i++) {
			struct nctr *c = &p->c[i];
			if (c->state != NCTR_RUNNING)
				continue;
			if (c->kill == NKILL_NONE || c->kill == NKILL_REQUESTED) {
				char msg[160];
				snprintf(msg, sizeof msg, "Stopping container %s", c->name);
				act_event(&a, i, false, "Killing", msg);
				int left = (int)((end - now + 999) / 1000);
				begin_kill(&a, c, i, left > 0 ? left : 0, now);
			} else {
				advance_kill(&a, c, i, now);
			}
		}
		goto out;
	}
	for (size_t i = 0; i < p->n_init; i++) {
		struct nctr *c = &p->c[i];
		if (init_done(c))
			continue;
		if (c->state == NCTR_RUNNING || p->restart != NPOD_NEVER ||
		    c->state == NCTR_WAITING)
			drive(p, &a, i, now);
		goto out;
	}
	for (size_t i = p->n_init; i < p->n; i++)
		drive(p, &a, i, now);
out:
	*next_ms = a.next;
	return a.n;
}

/* ---- phase and status ------------------------------------------------ */

enum npod_phase
npod_phase(const struct npod *p)
{
	if (p->fail_reason)
		return NPOD_FAILED;
	for (size_t i = 0; i < p->n_init; i++) {
		const struct nctr *c = &p->c[i];
		if (init_done(c))
			continue;
		if (c->state == NCTR_TERMINATED && p->restart == NPOD_NEVER)
			return NPOD_FAILED;
		return p->deleting && npod_all_stopped(p) ? NPOD_FAILED : NPOD_PENDING;
	}
	size_t running = 0, waiting = 0, stopped = 0, succeeded = 0;
	for (size_t i = p->n_init; i < p->n; i++) {
		const struct nctr *c = &p->c[i];
		if (c->state == NCTR_RUNNING)
			running++;
		else if (c->state == NCTR_TERMINATED) {
			stopped++;
			succeeded += c->term.exit_code == 0;
		} else if (c->has_last)
			stopped++;
		else
			waiting++;
	}
	if (p->deleting && running == 0)
		return succeeded == p->n - p->n_init ? NPOD_SUCCEEDED : NPOD_FAILED;
	if (waiting)
		return NPOD_PENDING;
	if (running)
		return NPOD_RUNNING;
	if (stopped == 0)
		return NPOD_PENDING;
	if (p->restart == NPOD_ALWAYS)
		return NPOD_RUNNING;
	if (stopped == succeeded)
		return NPOD_SUCCEEDED;
	return p->restart == NPOD_NEVER ? NPOD_FAILED : NPOD_RUNNING;
}

static json_t *
ctr_id(const struct npod *p, const struct nctr *c, int attempt)
{
	return json_sprintf("process://%s/%s-%d", p->uid, c->name, attempt);
}

static json_t *
term_json(const struct npod *p, const struct nctr *c, const struct nterm *t)
{
	json_t *j = json_pack("{s:i, s:s, s:o, s:o, s:o}", "exitCode", t->exit_code,
	    "reason", t->reason, "startedAt", obj_time_json(t->started_ms),
	    "finishedAt", obj_time_json(t->finished_ms), "containerID", ctr_id(p, c, t->attempt));
	if (t->signal)
		json_object_set_new(j, "signal", json_integer(t->signal));
	return json_pack("{s:o}", "terminated", j);
}

static json_t *
waiting_json(const struct nctr *c, const char *def)
{
	json_t *w = json_pack("{s:s}", "reason", c->reason[0] ? c->reason : def);
	if (c->message)
		json_object_set_new(w, "message", json_string(c->message));
	return json_pack("{s:o}", "waiting", w);
}

static json_t *
ctr_status(const struct npod *p, const struct nctr *c, bool initializing)
{
	json_t *state, *last = NULL;
	const char *def = c->init || initializing ? "PodInitializing" : "ContainerCreating";
	switch (c->state) {
	case NCTR_RUNNING:
		state = json_pack("{s:{s:o}}", "running", "startedAt", obj_time_json(c->started_ms));
		break;
	case NCTR_TERMINATED:
		if (!strcmp(c->reason, "CrashLoopBackOff")) {
			state = waiting_json(c, def);
			last = term_json(p, c, &c->term);
		} else {
			state = term_json(p, c, &c->term);
		}
		break;
	default:
		state = waiting_json(c, def);
		break;
	}
	if (!last)
		last = c->has_last ? term_json(p, c, &c->last) : json_object();
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:i, s:o, s:o}", "name", c->name,
	    "image", c->image, "imageID", c->image_id ? c->image_id : "", "ready", c->ready, "started", c->started,
	    "restartCount", c->attempt > 0 ? c->attempt : 0, "state", state,
	    "lastState", last);
	if (c->attempt >= 0)
		json_object_set_new(j, "containerID", ctr_id(p, c, c->attempt));
	return j;
}

static void
condition(json_t *conds, const json_t *old, const char *type, bool ok, const char *reason,
    const char *msg, int64_t now)
{
	const char *st = ok ? "True" : "False";
	json_t *ltt = NULL;
	size_t i;
	json_t *oc;
	json_array_foreach(json_object_get(old, "conditions"), i, oc)
		if (!strcmp(jstr(oc, "type"), type) && !strcmp(jstr(oc, "status"), st))
			ltt = json_incref(json_object_get(oc, "lastTransitionTime"));
	json_t *c = json_pack("{s:s, s:s, s:n, s:o}", "type", type, "status", st,
	    "lastProbeTime", "lastTransitionTime", ltt ? ltt : obj_time_json(now));
	if (!ok && reason)
		json_object_set_new(c, "reason", json_string(reason));
	if (!ok && msg)
		json_object_set_new(c, "message", json_string(msg));
	json_array_append_new(conds, c);
}

/* "containers with unready status: [a b]" from the names that fail. */
static char *
names_msg(const struct npod *p, const char *what, size_t from, size_t to, bool init)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "containers with %s status: [", what);
	bool first = true;
	for (size_t i = from; i < to; i++) {
		const struct nctr *c = &p->c[i];
		if (init ? init_done(c) : c->ready)
			continue;
		buf_printf(&b, "%s%s", first ? "" : " ", c->name);
		first = false;
	}
	buf_putc(&b, ']');
	if (first) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static const char *const phase_names[] = { "Pending", "Running", "Succeeded", "Failed" };

json_t *
npod_status(const struct npod *p, const json_t *old, const char *pod_ip, int64_t now)
{
	enum npod_phase ph = npod_phase(p);
	bool terminal = ph == NPOD_SUCCEEDED || ph == NPOD_FAILED;
	json_t *st = json_pack("{s:s, s:s, s:[{s:s}]}", "phase", phase_names[ph],
	    "hostIP", "127.0.0.1", "hostIPs", "ip", "127.0.0.1");
	if (p->fail_reason) {
		json_object_set_new(st, "reason", json_string(p->fail_reason));
		json_object_set_new(st, "message", json_string(p->fail_message));
	}
	if (pod_ip && *pod_ip) {
		json_object_set_new(st, "podIP", json_string(pod_ip));
		json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", pod_ip));
	}
	json_object_set_new(st, "startTime", obj_time_json(p->start_ms));
	json_t *conds = json_array();
	char *uninit = names_msg(p, "incomplete", 0, p->n_init, true);
	char *unready = names_msg(p, "unready", p->n_init, p->n, false);
	condition(conds, old, "Initialized", !uninit, "ContainersNotInitialized", uninit, now);
	const char *nr_reason = terminal ? "PodCompleted" : "ContainersNotReady";
	bool ready = !unready && !terminal;
	condition(conds, old, "Ready", ready, nr_reason, terminal ? NULL : unready, now);
	condition(conds, old, "ContainersReady", ready, nr_reason, terminal ? NULL : unready,
	    now);
	condition(conds, old, "PodScheduled", true, NULL, NULL, now);
	free(uninit);
	free(unready);
	json_object_set_new(st, "conditions", conds);
	bool initializing = false;
	for (size_t i = 0; i < p->n_init; i++)
		initializing |= !init_done(&p->c[i]);
	if (p->n_init) {
		json_t *ics = json_array();
		for (size_t i = 0; i < p->n_init; i++)
			json_array_append_new(ics, ctr_status(p, &p->c[i], true));
		json_object_set_new(st, "initContainerStatuses", ics);
	}
	json_t *cs = json_array();
	for (size_t i = p->n_init; i < p->n; i++)
		json_array_append_new(cs, ctr_status(p, &p->c[i], initializing));
	json_object_set_new(st, "containerStatuses", cs);
	return st;
}
