/* ctrl.h — the controllers of the control plane. Each is level-triggered:
 * it watches the store, queues the keys of objects that changed, and brings
 * the world to the desired state through the same object operations the API
 * uses (api.h). */
#ifndef V6_CTRL_H
#define V6_CTRL_H

#include "api.h"

/* ---- the controller core (ctrl_core.c) ---------------------------------
 *
 * A controller is a descriptor plus a pure decision. The core watches the
 * descriptor's sources, queues primary keys, reads the primary, calls
 * decide for a write list and applies it with one executor:
 *
 *  - writes run in order; the first one that does not succeed stops the
 *    list (later writes were computed from the state it should have made);
 *  - 404 on delete, update or status: the object is gone, the write is done;
 *  - 409 on a create of a named object: it exists already, done (the next
 *    decision sees it); on a generateName'd one: drawn again, up to 3 times;
 *  - any other 409 (a precondition): stop, re-read and re-decide through a
 *    rate-limited requeue, with no failure reported;
 *  - any other error: stop, log, report it to desc->result (the Failed*
 *    event), retry rate-limited (5 ms doubling to 60 s per key);
 *  - events never fail a sync; a list of more than CTRL_MAX_WRITES writes
 *    is a bug in its decide function (BUG_ON), never a silent drop. */
enum ctrl_op {
	CTRL_CREATE,	/* obj: the object to create (name or generateName) */
	CTRL_UPDATE,	/* obj: the object as it must be (spec, metadata) */
	CTRL_STATUS,	/* obj: the object with its new status (/status) */
	CTRL_DELETE,	/* obj: names the object; a uid in it is a precondition */
	CTRL_EVENT,	/* an Event on the primary: type, reason, message */
};
struct ctrl_write {
	enum ctrl_op op;
	json_t *obj;			/* owned */
	const struct kind *kind;	/* NULL: from obj's apiVersion and kind */
	const char *type, *reason;	/* CTRL_EVENT (static strings) */
	char *message;			/* CTRL_EVENT (owned) */
	int tag;			/* the adapter's own op, for desc->result */
};
#define CTRL_MAX_WRITES 10000
struct ctrl_writes {
	struct ctrl_write *v;
	size_t n, cap;
	int64_t requeue_ms;	/* > 0: sync again after this long (when all ran) */
	bool retry;		/* sync again soon, rate-limited, even if all ran */
	json_t *carry;		/* the adapter's, from decide to after (owned) */
	char *error;		/* the error of the write that failed, for after */
	int64_t rv;		/* the newest resourceVersion the writes made */
};
/* Appends a write (obj consumed; k may be NULL). */
void ctrl_writes_push(struct ctrl_writes *w, enum ctrl_op op, const struct kind *k,
    json_t *obj, int tag);
void ctrl_writes_event(struct ctrl_writes *w, const char *type, const char *reason,
    const char *message);
void ctrl_writes_free(struct ctrl_writes *w);

struct ctrl;
/* A watched resource and how its objects map to primary keys (map calls
 * ctrl_enqueue*); map NULL: the object is a primary, queued unless deleted.
 * A source whose kind (kind_api_version/kind, when set) is not served is
 * skipped. A staged source is a staged watch (store_watch_staged): the
 * controller syncs what a write of it woke before that write's commit, and
 * its own writes join that commit (a Deployment, its ReplicaSet and its
 * Pods: one fsync). Only for a controller whose maps keep no state but
 * queued keys: it hears writes that a failed commit then rolls back. */
struct ctrl_source {
	const char *res;
	void (*map)(struct ctrl *c, enum store_event ev, const json_t *obj);
	const char *kind_api_version, *kind;
	bool staged;
};
#define CTRL_MAX_SOURCES 8
struct ctrl_desc {
	const char *name;		/* log component: "replicaset" */
	const char *component;		/* source of its Events: "replicaset-controller" */
	const char *api_version, *kind;	/* the primary: "apps/v1", "ReplicaSet" */
	const char *res;		/* its store resource: "apps/replicasets" */
	struct ctrl_source sources[CTRL_MAX_SOURCES];	/* ends at res NULL */
	/* Reads what else it needs and fills out from the pure decision. obj
	 * is the primary (borrowed); with on_gone, a primary gone comes as a
	 * stub {apiVersion, kind, metadata: {namespace, name}} without uid.
	 * Returns 0, or negative to retry rate-limited. */
	int (*decide)(struct ctrl *c, const json_t *obj, int64_t now_ms,
	    struct ctrl_writes *out);
	bool on_gone;
	/* Optional: each create/update/status/delete's outcome (err NULL:
	 * done; made: the created object), for the Events users see. */
	void (*result)(struct ctrl *c, const json_t *obj, const struct ctrl_write *w,
	    const json_t *made, const char *err);
	/* Optional: after the list ran; failed is the write that stopped it
	 * (NULL: all done; out->error says why). May append writes, run next. */
	void (*after)(struct ctrl *c, const json_t *obj, const struct ctrl_write *failed,
	    struct ctrl_writes *out);
	/* Optional: queues the keys to look at first (default: every primary). */
	void (*seed)(struct ctrl *c);
	/* The primary's own writes come back without a sync: decide writes
	 * the primary's status only, from what it reads of the children, so
	 * hearing exactly the object it wrote brings nothing (the core keeps
	 * it and compares). Not for a decide that acts on its own last write
	 * (the Deployment's: its cleanup follows the complete status). */
	bool quiet_echo;
};
/* Starts a controller on api's loop; data is the adapter's (ctrl_data). */
int ctrl_start(struct api *api, const struct ctrl_desc *desc, void *data, struct ctrl **out);
void ctrl_stop(struct ctrl *c);
/* Applies w with the conflict policy above. Returns 0, or -EAGAIN when the
 * sync must be retried (a write stopped the list, or w->retry). */
int ctrl_apply(struct ctrl *c, const json_t *primary, struct ctrl_writes *w);
struct api *ctrl_api(const struct ctrl *c);
struct store *ctrl_store(const struct ctrl *c);
void *ctrl_data(const struct ctrl *c);
/* Queues the primary ns/name ("" ns: cluster-scoped). */
void ctrl_enqueue(struct ctrl *c, const char *ns, const char *name);
/* Queues the key "NS/NAME" as the core's sync gets it. */
void ctrl_enqueue_key(struct ctrl *c, const char *key);
/* Queues the primaries of ns (NULL: all) whose spec.selector selects
 * labels (NULL: every one). */
void ctrl_enqueue_selecting(struct ctrl *c, const char *ns, const json_t *labels);
/* A pod changed: queues its controller if that is of the primary kind, else
 * for a live orphan the primaries that select it (adoption). */
void ctrl_enqueue_pod_owner(struct ctrl *c, enum store_event ev, const json_t *pod);
/* The Events Kubernetes' pod control records on owner for a pod create or
 * delete w (SuccessfulCreate "Created pod: NAME", FailedCreate, ...); a
 * desc->result for the pod writes of replica-managing controllers. */
void ctrl_record_pod_write(struct ctrl *c, const json_t *owner, const struct ctrl_write *w,
    const json_t *made, const char *err);
/* Queues the primary that is obj's controller (ownerReference), if any. */
void ctrl_enqueue_owner(struct ctrl *c, enum store_event ev, const json_t *obj);
/* Queues every primary (a change that may touch any of them). */
void ctrl_enqueue_all(struct ctrl *c);
/* Queues the key "NS/NAME" after delay_ms (the earliest wins). */
void ctrl_enqueue_after(struct ctrl *c, const char *key, int64_t delay_ms);
/* Asynchronous work for a decide (a measurement over the network, ...):
 * work(arg) runs on libuv's thread pool and touches only arg; then, on the
 * loop, done(c, arg, status) hands the result back (status < 0: the pool
 * refused or cancelled it) and the core queues key again, so the next
 * decide sees what done recorded. After ctrl_stop(), done gets c NULL and
 * only frees arg; cancel(arg) (optional) is called by ctrl_stop() on the
 * loop to make a running work end soon. Returns 0 or a negative errno
 * (then nothing was queued and arg is still the caller's). */
int ctrl_queue_work(struct ctrl *c, const char *key, void (*work)(void *arg),
    void (*done)(struct ctrl *c, void *arg, int status), void (*cancel)(void *arg),
    void *arg);
/* Works queued and not done yet. */
size_t ctrl_jobs(const struct ctrl *c);

struct ctrl_gc;

/* ctrl_gc.c — the garbage collector: cascading deletion through
 * ownerReferences (background, foreground, orphan), finalizer completion,
 * and namespace termination. */
int ctrl_gc_start(struct api *api, struct ctrl_gc **out);
void ctrl_gc_stop(struct ctrl_gc *gc);
/* Number of objects the collector's graph holds (tests, metrics). */
size_t ctrl_gc_size(const struct ctrl_gc *gc);

/* ---- ReplicaSet and Deployment controllers (ctrl_workqueue.c,
 * ctrl_replicaset.c, ctrl_deployment.c) ------------------------------- */

/* ctrl_workqueue.c — a work queue of string keys ("NS/NAME") on the loop:
 * a key queued twice is processed once; keys can be queued after a delay
 * (the earliest wins) or rate-limited after a failure (5 ms doubling to
 * 60 s per key, reset by ctrl_wq_forget). fn runs from an idle handle, a
 * batch at a time; it returns 0 when done with the key, negative to have
 * it retried rate-limited. */
struct ctrl_wq;
typedef int (*ctrl_wq_fn)(void *arg, const char *key);
struct ctrl_wq *ctrl_wq_new(uv_loop_t *loop, ctrl_wq_fn fn, void *arg);
/* Names the queue for /metrics (workqueue_*{name}); once, after new. */
void ctrl_wq_set_name(struct ctrl_wq *q, const char *name);
void ctrl_wq_add(struct ctrl_wq *q, const char *key);
void ctrl_wq_add_after(struct ctrl_wq *q, const char *key, int64_t delay_ms);
void ctrl_wq_add_rate_limited(struct ctrl_wq *q, const char *key);
void ctrl_wq_forget(struct ctrl_wq *q, const char *key);
/* Keys ready to run now (not counting delayed ones). */
size_t ctrl_wq_len(const struct ctrl_wq *q);
/* Keys waiting for a delay or a rate-limited retry. */
size_t ctrl_wq_delayed(const struct ctrl_wq *q);
/* Runs a batch of the queued keys now instead of from the idle handle (a
 * staged controller's drain, before the commit). */
void ctrl_wq_run(struct ctrl_wq *q);
/* Stops calling fn at once; the memory goes when the loop closes the handles. */
void ctrl_wq_free(struct ctrl_wq *q);
/* Queues the key "ns/name". */
void ctrl_wq_add_name(struct ctrl_wq *q, const char *ns, const char *name);
/* Queues every object of the store resource res ("apps/statefulsets"),
 * as a controller does at start-up. Returns 0 or a negative errno. */
int ctrl_wq_add_all(struct ctrl_wq *q, struct store *st, const char *res);
/* Queues the objects of res in ns whose spec.selector selects labels
 * (NULL ns: every namespace; NULL labels: all of them): the owners an
 * orphan might have. */
void ctrl_wq_add_selecting(struct ctrl_wq *q, struct store *st, const char *res,
    const char *ns, const json_t *labels);
/* A pod changed: queues its controller when that is a `kind` of res's group,
 * else, for a live orphan, the objects of res that select it (adoption). */
void ctrl_wq_add_pod_owner(struct ctrl_wq *q, struct store *st, enum store_event ev,
    const json_t *pod, const char *kind, const char *res);
/* The decision of the ReplicaSet controller, without I/O: from the RS and
 * every pod of its namespace, what to write. The json_t members are new
 * references (or NULL); rs_actions_free releases them. */
struct rs_actions {
	json_t *adopt;		/* pods with this RS's controller ref added */
	json_t *release;	/* pods with this RS's ownerReference removed */
	int create;		/* pods to create from the template */
	json_t *remove;		/* names of pods to delete, in deletion order */
	json_t *status;		/* the status computed from the owned pods */
	int64_t requeue_ms;	/* > 0: look again after this long (minReadySeconds) */
};
/* Returns 0, or -EINVAL when the RS's selector is unusable (no actions). */
int rs_decide(const json_t *rs, const json_t *pods, int64_t now_ms, struct rs_actions *out);
void rs_actions_free(struct rs_actions *a);
/* The pod the RS creates: its template with generateName "RSNAME-" and the
 * controller reference (new reference). */
json_t *rs_pod_from_template(const json_t *rs);
/* Applies the outcome of managing replicas to a status from rs_decide, as
 * Kubernetes does: a ReplicaFailure condition (reason FailedCreate or
 * FailedDelete) after an error (err_msg != NULL), none after success. */
void rs_status_finish(json_t *status, const char *err_reason, const char *err_msg,
    int64_t now_ms);
/* Sorts pod pointers so the ones to delete first come first (Kubernetes'
 * ActivePodsWithRanks order on one node). */
void rs_sort_for_deletion(const json_t **pods, size_t n, int64_t now_ms);

/* Starts it on the controller core; ctrl_stop() stops it. */
int ctrl_replicaset_start(struct api *api, struct ctrl **out);

/* ctrl_deployment.c — the decision of the Deployment controller: an ordered
 * list of writes, each computed from the state the previous ones leave (as
 * kube-controller-manager's sync does step by step). The executor applies
 * them in order and stops at the first failure. */
enum deploy_op {
	DEPLOY_CREATE_RS,	/* obj: the new ReplicaSet */
	DEPLOY_UPDATE_RS,	/* obj: the ReplicaSet as it must be (spec, metadata) */
	DEPLOY_DELETE_RS,	/* obj: the ReplicaSet to delete */
	DEPLOY_UPDATE_META,	/* obj: the Deployment with new annotations */
	DEPLOY_UPDATE_STATUS,	/* obj: the Deployment with its new status */
	DEPLOY_EVENT,		/* on the Deployment: type, reason, message */
};
struct deploy_action {
	enum deploy_op op;
	json_t *obj;
	const char *type, *reason;	/* static strings */
	char *message;
};
struct deploy_actions {
	struct deploy_action *v;
	size_t n, cap;
	int64_t requeue_ms;	/* > 0: sync again after this long */
	bool retry;		/* retry soon, rate-limited: a hash collision stopped
				 * the sync, or the progress deadline is < 1 s away */
};
/* deploy: the Deployment; rses: every ReplicaSet of its namespace; pods:
 * the pods of its namespace (only Recreate looks at them; may be NULL). */
int deploy_decide(const json_t *deploy, const json_t *rses, const json_t *pods,
    int64_t now_ms, struct deploy_actions *out);
void deploy_actions_free(struct deploy_actions *a);
/* pod-template-hash of a template for a collisionCount (< 0: none). */
void deploy_template_hash(const json_t *tmpl, int64_t collision_count, char out[16]);
/* maxSurge / maxUnavailable resolved against spec.replicas (ResolveFenceposts). */
void deploy_fenceposts(const json_t *deploy, int *surge, int *unavailable);

/* Starts it on the controller core; ctrl_stop() stops it. */
int ctrl_deployment_start(struct api *api, struct ctrl **out);

/* ---- DaemonSet controller (ctrl_daemonset.c) -------------------------- */

/* The decision of the DaemonSet controller: an ordered list of writes over
 * the list of Node objects (one daemon pod per eligible node), as
 * kube-controller-manager's daemon controller syncs: claim pods, manage
 * (create on nodes without a pod, delete excess, failed and misscheduled
 * ones), then, only when manage wrote nothing, one rolling-update step,
 * then status. The executor applies them in order. */
enum ds_op {
	DS_ADOPT_POD,		/* obj: the pod with this DaemonSet's controller ref */
	DS_RELEASE_POD,		/* obj: the pod without it */
	DS_CREATE_POD,		/* obj: the pod to create, spec.nodeName set */
	DS_DELETE_POD,		/* obj: the pod to delete */
	DS_UPDATE_STATUS,	/* obj: the DaemonSet with its new status */
	DS_CREATE_REVISION,	/* obj: the ControllerRevision of the current template */
	DS_UPDATE_REVISION,	/* obj: an old revision renumbered to the newest */
	DS_DELETE_REVISION,	/* obj: a revision past revisionHistoryLimit */
};
struct ds_action {
	enum ds_op op;
	json_t *obj;
	const char *why;	/* static: "excess", "failed", "misscheduled", "update" */
};
struct ds_actions {
	struct ds_action *v;
	size_t n, cap;
	int64_t requeue_ms;	/* > 0: sync again after this long (minReadySeconds) */
};
/* ds: the DaemonSet; nodes: every Node; pods: the pods of ds's namespace;
 * revisions: its ControllerRevisions (may be NULL), kept as Kubernetes
 * does: NAME-HASH holds the template, the newest gets max+1, old ones that
 * no pod uses go beyond revisionHistoryLimit; a NAME-HASH taken by another
 * template only bumps status.collisionCount (the next sync hashes anew).
 * Returns 0, or -EINVAL when the selector is unusable (no actions). */
int ds_decide(const json_t *ds, const json_t *nodes, const json_t *pods,
    const json_t *revisions, int64_t now_ms, struct ds_actions *out);
void ds_actions_free(struct ds_actions *a);
/* NodeShouldRunDaemonPod: *run = a daemon pod should be created on node
 * (nodeName, nodeSelector, NoSchedule/NoExecute taints vs tolerations);
 * *keep = an existing one may stay (only an untolerated NoExecute taint or
 * a selector mismatch evicts it). */
void ds_node_should_run(const json_t *ds, const json_t *node, bool *run, bool *keep);
/* controller-revision-hash of ds's template (status.collisionCount mixed in). */
void ds_template_hash(const json_t *ds, char out[16]);
/* The daemon pod for node (new reference): the template, labels
 * controller-revision-hash and pod-template-generation, spec.nodeName, the
 * daemon tolerations, generateName "DSNAME-", the controller reference. */
json_t *ds_pod_for_node(const json_t *ds, const char *node, const char *hash);

/* Starts it on the controller core; ctrl_stop() stops it. */
int ctrl_daemonset_start(struct api *api, struct ctrl **out);

/* ---- Job and CronJob controllers (ctrl_job.c, ctrl_cronjob.c) --------- */

/* The tags of job_decide's writes (ctrl_write.tag). */
enum { JOB_W_CREATE, JOB_W_DELETE, JOB_W_STATUS, JOB_W_TTL };
/* The Job controller's decision (one sync): job (defaulted, with its
 * generated selector) and pods (the namespace's; only those whose
 * controller reference is job count) -> ordered writes: pod creates
 * (generateName JOB-, Indexed: JOB-INDEX- with the completion index
 * annotation, label and JOB_COMPLETION_INDEX), pod deletes (surplus,
 * suspend, deadline, after success or failure), the Job's status, Events,
 * the Job's delete once ttlSecondsAfterFinished passed; w->requeue_ms for
 * back-off, deadline and TTL. Returns 0. */
int job_decide(const json_t *job, const json_t *pods, int64_t now_ms, struct ctrl_writes *w);
/* The back-off before a new pod after failures: 10 s doubling, max 6 min. */
int64_t job_backoff_ms(int64_t failures);
/* "Complete" or "Failed" when that condition is True, else NULL. */
const char *job_finished(const json_t *job);
/* The pod of completion index ix (-1: NonIndexed) from job's template. */
json_t *job_pod(const json_t *job, int64_t ix);
int ctrl_job_start(struct api *api, struct ctrl **out);
/* api_quota.c: ResourceQuota status.hard / status.used. */
int ctrl_quota_start(struct api *api, struct ctrl **out);
/* The CronJob controller's decision: cj and jobs (the namespace's; those
 * cj controls count) -> writes: history beyond the limits deleted, at the
 * newest scheduled time not yet run (after lastScheduleTime or creation,
 * within startingDeadlineSeconds) the Job NAME-<minutes since the epoch>
 * (Forbid: not while one runs; Replace: the running ones deleted first),
 * the status (active, lastScheduleTime, lastSuccessfulTime);
 * w->requeue_ms = the next scheduled time. Returns 0. */
int cronjob_decide(const json_t *cj, const json_t *jobs, int64_t now_ms,
    struct ctrl_writes *w);
/* The Job cj makes (new reference): the jobTemplate, the controller
 * reference, name; annotation batch.kubernetes.io/cronjob-scheduled-timestamp
 * or, manual (`v6 create job --from=cronjob/CJ`), cronjob.kubernetes.io/
 * instantiate: manual as kubectl. */
json_t *cronjob_job(const json_t *cj, const char *name, int64_t scheduled_s, bool manual);
int ctrl_cronjob_start(struct api *api, struct ctrl **out);

/* ---- Rollout controller (ctrl_rollout.c) -------------------------------- */

/* The decision of the Rollout controller (Argo Rollouts' canary and
 * blue-green): ordered writes of any kind (obj carries apiVersion/kind),
 * applied in order until the first failure. */
enum rollout_op {
	RO_CREATE,		/* obj: a ReplicaSet or AnalysisRun to create */
	RO_UPDATE,		/* obj: a ReplicaSet, Service or AnalysisRun as it must be */
	RO_DELETE,		/* obj: an object to delete */
	RO_STATUS,		/* obj: the Rollout with its new status */
	RO_EVENT,		/* on the Rollout: type, reason, message */
};
struct rollout_action {
	enum rollout_op op;
	json_t *obj;
	const char *type, *reason;	/* static strings */
	char *message;
};
struct rollout_actions {
	struct rollout_action *v;
	size_t n, cap;
	int64_t requeue_ms;		/* > 0: sync again after this long */
	bool await_routes;		/* sync again once the proxy applied these writes */
};
/* in: {"replicasets": [...] (the namespace's), "services": {name: Service},
 * "endpoints": {name: Endpoints}, "analysisruns": [...], "templates":
 * {name: AnalysisTemplate}, "clustertemplates": {name: ...}, "routesPending":
 * true while the proxy has yet to apply the writes of a sync that asked
 * await_routes}. Returns 0. */
int rollout_decide(const json_t *rollout, const json_t *in, int64_t now_ms,
    struct rollout_actions *out);
void rollout_actions_free(struct rollout_actions *a);

struct ctrl_rollout;
/* Starts it on the controller core (with the state the proxy waits need). */
int ctrl_rollout_start(struct api *api, struct ctrl_rollout **out);
void ctrl_rollout_stop(struct ctrl_rollout *c);
/* How the controller learns that the proxy routes by a write: wait(arg, rv,
 * timeout_ms, cb, cb_arg) calls cb once the proxy applied the routing of
 * store version rv (applied = false after timeout_ms or when the feed
 * stops). Without one (no proxy), a route change counts as applied at once. */
typedef void ctrl_routes_wait_fn(void *arg, int64_t rv, unsigned timeout_ms,
    void (*cb)(void *cb_arg, bool applied), void *cb_arg);
void ctrl_rollout_set_routes_wait(struct ctrl_rollout *c, ctrl_routes_wait_fn *wait,
    void *arg);
struct otlp_exporter;
/* Records the rollouts' traffic moves as spans on x (borrowed; outlives c):
 * ctrl_rollout_trace.c. */
void ctrl_rollout_set_tracing(struct ctrl_rollout *c, struct otlp_exporter *x);

/* ctrl_rollout_trace.c — a trace per rollout revision: a span per step
 * change, weight change, pause, promotion or abort (its events saying
 * what happened) as it happens, parented by the revision's span, which goes
 * when the revision completes or aborts and carries every step as an event. */
struct ro_trace;
struct ro_trace *ro_trace_new(struct otlp_exporter *x);
void ro_trace_free(struct ro_trace *t);
/* What one sync of Rollout ro decided (a), at wall-clock now_ms. */
void ro_trace_sync(struct ro_trace *t, const json_t *ro, const struct rollout_actions *a,
    int64_t now_ms);

/* ---- StatefulSet controller (ctrl_statefulset.c) ------------------------ */

/* The decision of the StatefulSet controller (kube-controller-manager's
 * statefulset controller, one sync): an ordered list of writes. Pods are
 * NAME-ORDINAL with stable hostnames; claims CLAIM-NAME-ORDINAL are made
 * before their pod and outlive it (persistentVolumeClaimRetentionPolicy
 * decides when the garbage collector takes them); revisions are
 * ControllerRevisions NAME-HASH. The executor applies the writes in order
 * and stops at the first failure. */
enum sts_op {
	STS_CREATE_REVISION,	/* obj: the new ControllerRevision */
	STS_UPDATE_REVISION,	/* obj: a revision renumbered (a template came back) */
	STS_DELETE_REVISION,	/* obj: a revision past revisionHistoryLimit */
	STS_CREATE_CLAIM,	/* obj: a PersistentVolumeClaim from a template */
	STS_UPDATE_CLAIM,	/* obj: a claim with new ownerReferences (retention) */
	STS_CREATE_POD,		/* obj: the pod NAME-ORDINAL */
	STS_UPDATE_POD,		/* obj: a pod adopted or released */
	STS_DELETE_POD,		/* obj: the pod to delete */
	STS_UPDATE_STATUS,	/* obj: the StatefulSet with its new status */
};
struct sts_action {
	enum sts_op op;
	json_t *obj;
};
struct sts_actions {
	struct sts_action *v;
	size_t n, cap;
	int64_t requeue_ms;	/* > 0: sync again after this long (minReadySeconds) */
};
/* sts: the StatefulSet; pods, claims, revisions: every Pod,
 * PersistentVolumeClaim and ControllerRevision of its namespace (arrays).
 * Returns 0, or -EINVAL when the selector is unusable (no actions). */
int sts_decide(const json_t *sts, const json_t *pods, const json_t *claims,
    const json_t *revisions, int64_t now_ms, struct sts_actions *out);
void sts_actions_free(struct sts_actions *a);
/* The ordinal of a pod named SETNAME-N, or -1 when pod is not one of sts's. */
int sts_pod_ordinal(const json_t *sts, const json_t *pod);

/* Starts it on the controller core; ctrl_stop() stops it. */
int ctrl_statefulset_start(struct api *api, struct ctrl **out);

/* ---- Endpoints controller (ctrl_endpoints.c) -------------------------- */

/* The Endpoints object that svc must have, from pods (an array of Pods;
 * only those of svc's namespace that its spec.selector matches count):
 * Ready pods in addresses, the others in notReadyAddresses (every one in
 * addresses with publishNotReadyAddresses), terminating and finished pods
 * left out, each Service port resolved per pod (targetPort by number, or
 * by name from the pod's container ports; a pod without the named port is
 * left out of that port), subsets grouped by identical address sets as
 * Kubernetes' RepackSubsets does, everything sorted. Labels are the
 * Service's (+ service.kubernetes.io/headless for clusterIP None). Returns
 * a new reference, or NULL when svc has no selector (user-managed). */
json_t *endpoints_build(const json_t *svc, const json_t *pods);
/* Stored Endpoints ep already has want's subsets and labels. */
bool endpoints_equal(const json_t *ep, const json_t *want);

struct ctrl_endpoints;
int ctrl_endpoints_start(struct api *api, struct ctrl_endpoints **out);
void ctrl_endpoints_stop(struct ctrl_endpoints *c);
/* Endpoints objects written since start (an idle system writes none). */
size_t ctrl_endpoints_writes(const struct ctrl_endpoints *c);

/* ---- routing snapshots for the proxy (ctrl_routes.c) ------------------- */

/* The routing snapshot (format in proxy.h) of the given objects, each a
 * JSON array of objects or an object whose values are objects: services,
 * endpoints, pods (only their pod-template-hash / controller-revision-hash
 * labels are read, for endpoint revisions), httproutes and gateways (may
 * be NULL). Per Service port (TCP only): a cluster "NS/NAME:PORT" (PORT =
 * port name, else number) with the Endpoints' ready addresses; a listener
 * "svc/NS/NAME/PORT" on clusterIP:port unless headless, and
 * ".../nodeport" on 0.0.0.0:nodePort for NodePort / LoadBalancer; HTTP or
 * TCP by appProtocol, port name, then well-known port (see port_is_http).
 * HTTPRoutes attach to Gateway HTTP listeners ("gw/NS/GW/LISTENER") or,
 * GAMMA style, to a Service's listeners ahead of its default route; routes
 * are ordered by Gateway API precedence. Gateway HTTPS listeners get the
 * certificates gw_listener_certs finds in secrets (may be NULL): one
 * "HTTPS" listener per address:port with a "tls" entry per certificate;
 * one without any certificate is not served. A backendRef or
 * certificateRef into another namespace counts only when grants (the
 * ReferenceGrants, as gw_ref_permitted reads them) permit it; a refused
 * backendRef keeps its weight on a cluster without endpoints, so its share
 * of requests fails as Gateway API requires. Output is sorted and
 * deterministic. Returns a new reference. */
json_t *routes_build(const json_t *services, const json_t *endpoints, const json_t *pods,
    const json_t *httproutes, const json_t *gateways, const json_t *secrets,
    const json_t *grants, int64_t version);

/* Whether HTTPRoute route, through its parentRef ref, attaches to listener
 * gl of Gateway gw — the rule routes_build attaches by: NOT_LISTENER when
 * ref names another listener (sectionName, port); NOT_ALLOWED when gl does
 * not take HTTPRoutes from route's namespace (protocol, allowedRoutes);
 * NO_HOSTNAME when their hostnames do not intersect. ctrl_gwstatus.c
 * reports it in status. */
/* Listener gl's allowedRoutes.kinds is empty or names HTTPRoute (of the
 * Gateway API group). */
bool routes_listener_takes_httproutes(const json_t *gl);
enum routes_admit { ROUTES_ADMITTED, ROUTES_NOT_LISTENER, ROUTES_NOT_ALLOWED,
	ROUTES_NO_HOSTNAME };
enum routes_admit routes_listener_admits(const json_t *gw, const json_t *gl,
    const json_t *route, const json_t *ref);

/* ---- Gateway API status (ctrl_gwstatus.c) ------------------------------ */

/* ctrl_gwtls.c — the certificates of HTTPS listener gl of Gateway gw from
 * secrets ("ns/name" -> Secret): *out (new array, caller frees) gets
 * {"hostname": gl's, "cert": PEM, "key": PEM} per certificateRef that
 * names a kubernetes.io/tls Secret whose chain and key load, in gw's
 * namespace or in one whose ReferenceGrants (grants) let the Gateway refer
 * to it. Returns true when every ref did; else *reason is the first
 * failure's (InvalidCertificateRef, RefNotPermitted). *msg (caller frees)
 * says why, never with key bytes. */
bool gw_listener_certs(const json_t *gw, const json_t *gl, const json_t *secrets,
    const json_t *grants, json_t **out, const char **reason, char **msg);

/* ctrl_refgrant.c — whether an object of from_group/from_kind in from_ns
 * may refer to to_kind to_name in to_ns: always within one namespace, else
 * only when a ReferenceGrant of to_ns (grants: an array, or an object of
 * objects, of ReferenceGrants; may be NULL) lists the referrer in spec.from
 * and the target (its kind, and its name when the entry names one) in
 * spec.to. The core group is "" (or "core"). */
bool gw_ref_permitted(const json_t *grants, const char *from_group, const char *from_kind,
    const char *from_ns, const char *to_group, const char *to_kind, const char *to_ns,
    const char *to_name);

#define GW_CONTROLLER_NAME "v6.dev/gateway-controller"
/* The status V6 wants on Gateway gw, given every HTTPRoute (an object
 * "ns/name" -> route) and the Secrets (same form; may be NULL without HTTPS
 * listeners): conditions Accepted, Programmed (programmed: a data plane
 * runs), addresses, and listeners[] with supportedKinds, attachedRoutes
 * and conditions Accepted, Programmed, ResolvedRefs (an HTTPS listener's
 * certificateRefs as gw_listener_certs judges them; none that loads: not
 * Programmed). A
 * condition keeps the lastTransitionTime of gw's current one while its
 * status stays, else gets now (RFC 3339). Returns a new reference. */
json_t *gwstatus_gateway(const json_t *gw, const json_t *routes, const json_t *secrets,
    const json_t *grants, bool programmed, const char *now);
/* The status V6 wants on HTTPRoute route (gateways and services: objects
 * "ns/name" -> object): parents[], one per spec.parentRefs entry, with
 * controllerName GW_CONTROLLER_NAME and conditions Accepted (Accepted,
 * NoMatchingParent, NotAllowedByListeners, NoMatchingListenerHostname) and
 * ResolvedRefs (ResolvedRefs, BackendNotFound, InvalidKind, RefNotPermitted:
 * a Service of another namespace without a ReferenceGrant). Times as
 * above. Returns a new reference. */
json_t *gwstatus_route(const json_t *route, const json_t *gateways, const json_t *services,
    const json_t *grants, const char *now);
struct ctrl_gwstatus;
/* Watches Gateways, HTTPRoutes and Services and writes the statuses above
 * whenever they differ from the stored ones (never when idle). */
int ctrl_gwstatus_start(struct api *api, bool programmed, struct ctrl_gwstatus **out);
void ctrl_gwstatus_stop(struct ctrl_gwstatus *c);
/* Status writes made so far (tests). */
size_t ctrl_gwstatus_writes(const struct ctrl_gwstatus *c);

/* Applies the Rollouts (an array or an object of objects) to snap: every
 * route backend that goes to a Rollout's stableService gives
 * status.canary.weights.canary.weight percent of its weight to the
 * canaryService's cluster; status.canary.headerRoutes become routes to the
 * canary placed before the route they copy; annotation v6.dev/sticky-cookie
 * pins each client to one endpoint (so one version) with that cookie. */
void routes_apply_rollouts(json_t *snap, const json_t *rollouts);

/* The routing table kept incrementally (ctrl_routes.c): objects are put
 * one at a time; a commit rebuilds only what the puts since the last one
 * touched (the Service's own listeners and clusters; Gateways, HTTPRoutes
 * and Rollouts with the Services they read) and returns what changed, so
 * one change costs the same whatever the number of Services. The table
 * always equals routes_build() + routes_apply_rollouts() of its objects. */
enum routes_kind { ROUTES_SERVICE, ROUTES_ENDPOINTS, ROUTES_POD, ROUTES_GATEWAY,
	ROUTES_HTTPROUTE, ROUTES_ROLLOUT, ROUTES_SECRET, ROUTES_GRANT, ROUTES_NKINDS };
struct routes_table;
struct routes_table *routes_table_new(void);
void routes_table_free(struct routes_table *t);
/* Records obj (borrowed; NULL: deleted) of kind k as ns/name. Returns true
 * when the next commit has something to rebuild. */
bool routes_table_put(struct routes_table *t, enum routes_kind k, const char *ns,
    const char *name, const json_t *obj);
/* Rebuilds what changed since the last commit. *listeners and *clusters
 * (new objects, caller frees) map each changed name to its new value, or
 * to JSON null when it is gone; empty when the table did not change. */
void routes_table_commit(struct routes_table *t, json_t **listeners, json_t **clusters);
/* The whole table as a snapshot (proxy.h) of that version: a new reference. */
json_t *routes_table_snapshot(const struct routes_table *t, int64_t version);
/* Whether some cluster of the committed table has an endpoint at ip. */
bool routes_table_routes_to(const struct routes_table *t, const char *ip);

struct ctrl_routes;
struct proxy_feed;
/* Watches the objects above and commits the table after any change (at
 * most once per loop iteration), version = the store's resourceVersion,
 * and sends what changed to feed (may be NULL: build only). A write to any of those
 * kinds (a Pod's status too) advances the version even when the table does
 * not change, so proxy_feed_wait_version(rv of that write) resolves. */
int ctrl_routes_start(struct api *api, struct proxy_feed *feed, struct ctrl_routes **out);
void ctrl_routes_stop(struct ctrl_routes *c);
/* The last snapshot built (borrowed), and how many were built. */
const json_t *ctrl_routes_current(struct ctrl_routes *c);
uint64_t ctrl_routes_builds(const struct ctrl_routes *c);
/* Calls done once no built snapshot sends new requests to ip any more and
 * the proxy has applied it (drained = true), or after timeout_ms (false).
 * The node agent waits for it before a pod gets SIGTERM. */
void ctrl_routes_drain(struct ctrl_routes *c, const char *ip, unsigned timeout_ms,
    void (*done)(void *arg, bool drained), void *arg);
/* Calls cb once the proxy has applied a snapshot that includes store
 * version rv (applied = true), or after timeout_ms / when the feed stops
 * (false); at once when there is no proxy. */
void ctrl_routes_wait_applied(struct ctrl_routes *c, int64_t rv, unsigned timeout_ms,
    void (*cb)(void *arg, bool applied), void *arg);

/* ---- ctrl_promrules.c: PrometheusRule -> rule files -> Prometheus ---- */
struct promrules_config {
	const char *dir;		/* --prometheus-rules-dir: NS_NAME.yaml files */
	const char *url;		/* --prometheus-url http://IP:PORT, or NULL */
	const char *rule_selector;	/* label selector on the rules, or NULL: all */
	const char *namespace_selector;	/* on their namespaces, or NULL: all */
};
struct ctrl_promrules;
int ctrl_promrules_start(struct api *api, const struct promrules_config *cfg,
    struct ctrl_promrules **out);
void ctrl_promrules_stop(struct ctrl_promrules *p);

#endif
