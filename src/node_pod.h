/* node_pod.h — the node agent's internals. node_pod.c is the pure per-pod
 * state machine: given the pod spec, what the containers did and the clock,
 * it decides what to do next (start container X, signal it, run a probe or
 * a hook, record an event) and renders the pod's status. It does no I/O, so
 * the Kubernetes rules (phases, init order, restart back-off, probe counting,
 * graceful termination) are unit-tested without processes. node_agent.c
 * executes the actions; node_env.c, node_probe.c and node_ipam.c help it. */
#ifndef V6_NODE_POD_H
#define V6_NODE_POD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node_runtime.h"
#include "util.h"

#define NPOD_BACKOFF_INITIAL_S	10
#define NPOD_BACKOFF_MAX_S	300
#define NPOD_BACKOFF_RESET_MS	(600 * 1000)	/* 10 min running resets the back-off */
#define NPOD_MIN_GRACE_S	2	/* kubelet's minimumGracePeriodInSeconds */
#define NPOD_PULL_ERR_SHOW_MS	2000	/* ErrImagePull before ImagePullBackOff */

enum npod_restart { NPOD_ALWAYS, NPOD_ON_FAILURE, NPOD_NEVER };
enum npod_phase { NPOD_PENDING, NPOD_RUNNING, NPOD_SUCCEEDED, NPOD_FAILED };
enum nctr_state { NCTR_WAITING, NCTR_RUNNING, NCTR_TERMINATED };
enum nprobe_kind { NPROBE_STARTUP, NPROBE_LIVENESS, NPROBE_READINESS, NPROBE_N };
enum nhook_kind { NHOOK_POST_START, NHOOK_PRE_STOP };
/* Where a container's stop stands. */
enum nkill { NKILL_NONE, NKILL_REQUESTED, NKILL_PRESTOP, NKILL_TERM, NKILL_KILL };
enum npost { NPOST_NONE, NPOST_PENDING, NPOST_RUNNING };

struct nprobe {
	bool set;
	int initial_delay_s, period_s, timeout_s, success_threshold, failure_threshold;
	int grace_s;			/* probe terminationGracePeriodSeconds, -1 none */
	int successes, failures;	/* consecutive */
	bool ok;			/* current result */
	bool in_flight;
	int64_t next_ms;		/* due time; 0 = not scheduled */
};

struct nterm {
	int attempt;
	int exit_code, signal;
	char reason[32];
	int64_t started_ms, finished_ms;
};

struct nctr {
	char *name;
	char *image;
	bool init;
	const json_t *spec;		/* borrowed from npod.pod */
	struct nprobe probe[NPROBE_N];
	bool has_post_start, has_pre_stop;

	enum nctr_state state;
	int attempt;			/* of the current / last run; -1 = never ran */
	int64_t started_ms;		/* of the current run */
	struct nterm term;		/* valid when TERMINATED */
	bool has_last;
	struct nterm last;		/* the termination before term / the run */
	char reason[40];		/* waiting reason ("" = default) */
	char *message;			/* waiting message */
	char *image_id;			/* status imageID (REPO@DIGEST), NULL unknown */
	bool ready, started;
	enum npost post_start;
	/* CrashLoopBackOff, kubelet's flowcontrol.Backoff per container */
	int backoff_s;			/* 0: no entry */
	int64_t backoff_at_ms;		/* last time the back-off was advanced */
	bool backoff_announced;		/* BackOff event sent for this exit */
	int retry_s;			/* delay before retrying a failed start */
	int64_t retry_at_ms;		/* a start that failed is retried then */
	/* stopping */
	enum nkill kill;
	int kill_grace_s;		/* of a requested kill */
	char kill_why[128];		/* message of the Killing event */
	int64_t kill_deadline_ms;	/* start of the stop + grace */
	int64_t kill_term_ms;		/* SIGTERM no later than */
	int64_t kill_kill_ms;		/* SIGKILL then, once SIGTERM was sent */
};

struct npod {
	json_t *pod;			/* the spec the containers came from (owned) */
	const char *uid, *ns, *name;	/* borrowed from pod */
	enum npod_restart restart;
	int grace_s;			/* spec.terminationGracePeriodSeconds */
	int backoff_max_s;
	size_t n, n_init;		/* init containers first, in order */
	struct nctr *c;
	int64_t start_ms;		/* status.startTime */
	char *fail_reason, *fail_message;	/* the whole pod failed (unsupported) */
	bool deleting;
	int64_t delete_ms;
	int delete_grace_s;
};

enum npod_act_type { NACT_START, NACT_SIGNAL, NACT_PROBE, NACT_HOOK, NACT_EVENT };

struct npod_act {
	enum npod_act_type type;
	size_t ctr;
	int attempt;			/* NACT_START */
	int sig;			/* NACT_SIGNAL */
	enum nprobe_kind probe;		/* NACT_PROBE */
	enum nhook_kind hook;		/* NACT_HOOK */
	int timeout_ms;			/* NACT_PROBE, NACT_HOOK */
	bool warning;			/* NACT_EVENT */
	char reason[32];		/* NACT_EVENT */
	char message[256];
};

#define NPOD_MAX_ACTS 64

/* node_pod.c */
/* Builds the machine from a Pod object (a reference is kept: pod must not
 * change afterwards; the agent replaces its objects, never edits them).
 * backoff_max_s <= 0 means
 * 300. Never fails: an unusable spec (unknown runtime class) makes a pod
 * that only reports Failed. */
void npod_init(struct npod *p, const json_t *pod, int backoff_max_s, int64_t now);
/* The runtime a pod runs on, "process" or "runc": its runtimeClassName, else
 * the node's default (npod_default_runtime, set from `v6 server
 * --default-runtime`). The one place that decides it: the image puller, the
 * pod network and the runtime all ask here. */
extern const char *npod_default_runtime;
/* The handler of RuntimeClass name ("runc", "process"; a static string), or
 * NULL when there is none: set by the node agent, which reads the store. */
extern const char *(*npod_class_handler)(const char *name);
const char *npod_runtime(const json_t *pod_spec);
void npod_free(struct npod *p);
/* Restores what a previous server knew from the stored status (attempts,
 * last terminations, startTime, container states). */
void npod_restore(struct npod *p, const json_t *status);
/* Index of a container by name, or -1. */
int npod_find(const struct npod *p, const char *name);
/* Decides: fills acts (at most max), returns their number; *next_ms gets
 * the time the machine wants to be called again (INT64_MAX: only on an
 * event). The machine assumes every action returned is carried out. */
size_t npod_step(struct npod *p, int64_t now, struct npod_act *acts, size_t max,
    int64_t *next_ms);
/* Results of actions and runtime events. */
void npod_started(struct npod *p, size_t i, int attempt, int64_t started_ms);
/* The image a container runs (status imageID), once the image step knew it. */
void npod_image_id(struct npod *p, size_t i, const char *image_id);
/* A start that failed: reason "CreateContainerError" or
 * "CreateContainerConfigError"; retried after a back-off. */
void npod_start_failed(struct npod *p, size_t i, const char *reason, const char *msg,
    int64_t now);
/* A running (or adopted) container exited; st from the runtime. */
void npod_exited(struct npod *p, size_t i, int attempt, const struct rt_status *st);
/* ev gets an event to record when ev->reason is not empty. */
void npod_probe_done(struct npod *p, size_t i, enum nprobe_kind k, bool ok,
    const char *msg, int64_t now, struct npod_act *ev);
void npod_hook_done(struct npod *p, size_t i, enum nhook_kind h, bool ok,
    const char *msg, int64_t now, struct npod_act *ev);
/* Starts graceful termination of every container (pod deleted). grace_s
 * < 0 means the pod's terminationGracePeriodSeconds. */
void npod_delete(struct npod *p, int grace_s, int64_t now);
/* True once nothing runs any more (after npod_delete, termination is done). */
bool npod_all_stopped(const struct npod *p);
enum npod_phase npod_phase(const struct npod *p);
/* The pod's status object (new reference). old_status (may be NULL) keeps
 * lastTransitionTime of conditions that did not change. */
json_t *npod_status(const struct npod *p, const json_t *old_status, const char *pod_ip,
    int64_t now);
/* The back-off (seconds) a restart right now would wait for; 0 = none. */
int npod_backoff_wait_s(const struct nctr *c, int64_t now);

/* node_env.c */
/* Looks up a ConfigMap or Secret ("ConfigMap" / "Secret"): new reference or
 * NULL when absent. */
typedef json_t *(*nenv_lookup_fn)(void *arg, const char *kind, const char *ns,
    const char *name);
struct nenv_ctx {
	const json_t *pod;
	const json_t *container;
	const char *pod_ip;
	const char *node_name;
	const char *bin_dir;		/* first in PATH; may be NULL */
	int64_t node_cpu_millis;	/* for resourceFieldRef without limits */
	int64_t node_memory_bytes;
	const char *const *extra_env;	/* "NAME=value" first (Service variables hook) */
	bool image_env;			/* runc: no PATH default (the image's applies) */
	const char *otlp_endpoint;	/* OTEL_EXPORTER_OTLP_ENDPOINT to give; NULL: none */
	nenv_lookup_fn lookup;
	void *lookup_arg;
};
/* Resolves the container's environment (envFrom, env, downward API, PATH,
 * HOSTNAME, and the OpenTelemetry SDK variables, nenv_otel). Returns a NULL-terminated "NAME=value" vector (nenv_free), or
 * NULL with *err set (caller frees) for CreateContainerConfigError. */
char **nenv_resolve(const struct nenv_ctx *ctx, char **err);
/* command + args with $(VAR) expanded against envp, or [image] + args when
 * there is no command. NULL-terminated, nenv_free. */
/* The OpenTelemetry SDK's variables for pod, each unless env sets it:
 * OTEL_SERVICE_NAME (annotation resource.opentelemetry.io/service.name,
 * else label app.kubernetes.io/name, else label app, else the owning
 * workload's name — a ReplicaSet's without its pod-template-hash suffix —
 * else the pod's name), OTEL_RESOURCE_ATTRIBUTES (k8s.namespace.name,
 * k8s.pod.name, k8s.pod.uid, service.version = the revision hash of label
 * rollouts-pod-template-hash, pod-template-hash or controller-revision-hash,
 * when there is one) and, when endpoint is not NULL,
 * OTEL_EXPORTER_OTLP_ENDPOINT (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for a URL
 * ending in /v1/traces). Calls set(arg, name, value) for each to add. */
void nenv_otel(const json_t *pod, const char *endpoint, char *const *env,
    void (*set)(void *arg, const char *name, const char *value), void *arg);
char **nenv_argv(const json_t *container, char *const *envp);
/* Kubernetes' $(VAR) expansion: "$$" -> "$", unknown references kept. */
char *nenv_expand(const char *s, char *const *envp);
const char *nenv_get(char *const *envp, const char *name);
/* Standard base64 (Secret data) decoded; s itself (copied) when it is not
 * base64. Caller frees. */
char *nenv_b64_decode(const char *s);
/* The same with the length (binary data); NULL when s is not base64. */
char *nenv_b64_decode_len(const char *s, size_t *len);
/* The content of a downwardAPI volume item (fieldRef: metadata.name,
 * namespace, uid, labels, annotations, labels['k'], ...; resourceFieldRef)
 * against ctx's pod and container, or NULL with *err (caller frees). */
char *nenv_downward(const struct nenv_ctx *ctx, const json_t *item, char **err);
void nenv_free(char **v);
/* Kubernetes' Service environment variables (docker-link style) for pod:
 * for each Service of services (an array) that has a cluster IP and is in
 * the pod's namespace (unless spec.enableServiceLinks is false), and for
 * default/kubernetes always: NAME_SERVICE_HOST, NAME_SERVICE_PORT,
 * NAME_SERVICE_PORT_<PORTNAME>, NAME_PORT, NAME_PORT_<P>_<PROTO>[_PROTO,
 * _PORT, _ADDR]. NULL-terminated "NAME=value" vector, nenv_free. */
char **nenv_service_env(const json_t *pod, const json_t *services);

/* node_ipam.c — pod IPs from the pod range (127.1.0.0/16 by default), one
 * per pod, reused as late as possible. */
struct nipam;
/* Sets the range of maps created from now on (`v6 server --pod-cidr`), a
 * loopback CIDR as util_loopback_cidr accepts. 0 or -EINVAL. */
int nipam_set_cidr(const char *cidr);
struct nipam *nipam_new(void);
/* Tests: a deterministic start (nipam_new starts at a random address). */
struct nipam *nipam_new_at(uint32_t cursor);
void nipam_free(struct nipam *ip);
/* Marks an address as used (from a stored status.podIP). 0 or -EINVAL /
 * -EEXIST / -ERANGE (outside the range). */
int nipam_reserve(struct nipam *ip, const char *addr);
/* Allocates an address into out (>= 16 bytes). 0 or -ENOSPC. */
int nipam_alloc(struct nipam *ip, char *out);
void nipam_release(struct nipam *ip, const char *addr);

/* node_probe.c — probes and lifecycle hooks, asynchronous on the loop. */
struct nprobe_run;
/* done(arg, ok, message): message says why it failed ("" on success). */
typedef void (*nprobe_done_fn)(void *arg, bool ok, const char *message);
/* Runs a handler object (exec / httpGet / tcpSocket / sleep) for the
 * container: ports by number or by the container's port name, host default
 * pod_ip. envp/cwd for exec. Returns 0 and calls done exactly once (unless
 * cancelled), or a negative errno. */
int nprobe_start(uv_loop_t *loop, const json_t *handler, const json_t *container,
    const char *pod_ip, char *const *envp, const char *cwd, int timeout_ms,
    nprobe_done_fn done, void *arg, struct nprobe_run **out);
/* Stops a run; done is not called. */
void nprobe_cancel(struct nprobe_run *r);

/* node_stream.c — a remote command's stream to its client (pods/exec,
 * pods/attach): channels 0 stdin, 1 stdout, 2 stderr, 3 the end's Status,
 * 4 resize, over WebSocket (v5/v4.channel.k8s.io) or SPDY/3.1 (kubectl's
 * fallback, v4.channel.k8s.io). */
#define NSTREAM_SPDY	"SPDY/3.1"	/* nstream_check's proto for SPDY */
enum { NSTREAM_STDIN = 0, NSTREAM_STDOUT = 1, NSTREAM_STDERR = 2, NSTREAM_STATUS = 3,
	NSTREAM_RESIZE = 4 };
struct http_req;
struct nstream;
struct nstream_ops {
	/* stdin bytes, the end of stdin, a resize {"Width":W,"Height":H};
	 * data valid during the call */
	void (*stdin_data)(void *arg, const char *data, size_t len);
	void (*stdin_end)(void *arg);
	void (*resize)(void *arg, const char *data, size_t len);
	/* the client left or broke the session, once: the owner ends (kills
	 * what runs) and calls nstream_end, now or later */
	void (*gone)(void *arg);
	/* the queue to the client emptied (may be NULL): resume the output */
	void (*drained)(void *arg);
};
/* What req asks for: 1 when it was answered (refused: an upgrade to
 * neither framing, or no subprotocol of ours; what names the subresource
 * in the message), else 0 with *proto the WebSocket subprotocol,
 * NSTREAM_SPDY, or NULL for a plain request (the caller's to serve or
 * refuse). */
int nstream_check(struct http_req *req, const char *what, const char **proto);
/* Answers the upgrade to proto (from nstream_check) and owns req from
 * then on; NULL when req was answered 400 instead (a WebSocket request
 * without a key). The SPDY streams announced are read from req's query
 * (stdin, stdout, stderr, tty). After a return the client may already
 * be gone (nstream_gone) without ops->gone. */
struct nstream *nstream_open(uv_loop_t *loop, struct http_req *req, const char *proto,
    const struct nstream_ops *ops, void *arg);
/* Output on channel ch (SPDY: queued until the client opens its stream);
 * dropped once the client is gone. */
void nstream_send(struct nstream *s, int ch, const char *data, size_t len);
/* Bytes queued to the client (output backpressure). */
size_t nstream_pending(const struct nstream *s);
/* Stops (true) or resumes reading the client (stdin backpressure). */
void nstream_pause(struct nstream *s, bool pause);
bool nstream_gone(const struct nstream *s);
/* The end: status (a metav1.Status, or NULL) on channel 3, then the
 * stream closes (SPDY: once the client opened every stream it announced,
 * or 2 s later). No callback follows; s is not to be used again. */
void nstream_end(struct nstream *s, const char *status);

/* node_exec.c — pods/exec: spawns argv (envp and cwd as uv_spawn takes
 * them; NULL: the server's) and streams it over a WebSocket
 * (channel.k8s.io: stdin, resize, a pty with tty) or in V6's older framing
 * (req's body is the stdin when with_stdin). runc_process (rt_runc_process,
 * with tty for runc; else NULL): argv's `runc exec --tty ID CMD` runs as
 * `--process FILE` of it with args CMD and the client's first size as its
 * consoleSize, so the terminal runc makes has that size from the start. Returns 0 (req is answered
 * by the stream, or refused), or a negative errno with *err (caller
 * frees) and req still to be answered. */
struct http_req;
int nexec_start(uv_loop_t *loop, struct http_req *req, char *const *argv, char *const *envp,
    const char *cwd, bool with_stdin, bool tty, const json_t *runc_process, char **err);
/* The argv running cmd (nc words) after enter (rt_enter_argv): with tty
 * in a new session whose controlling terminal is its stdin (setsid -c),
 * and `runc exec --tty` for runc. NULL-terminated; free with nenv_free. */
char **nexec_argv(const json_t *enter, bool runc, bool tty, char *const *cmd, size_t nc);

/* node_attach.c — pods/attach: the client joins the running container's
 * output (the CRI log at log_path followed from now on; stderr on its own
 * channel when separate_stderr, else with stdout) and, when stdin_path is
 * given and the container has that FIFO, writes its stdin there; ctl_path:
 * the shim's control FIFO, told of resizes and of the end of this stdin
 * (stdinOnce), when the container has one. Linked
 * into *list until the client leaves or nattach_exited(list, ctr) (ctr
 * SIZE_MAX: every one) ends it with a Success Status. Returns 0 (req is
 * answered: streamed or refused), or a negative errno with *err (caller
 * frees) and req still to be answered. */
/* A resize message {"Width":W,"Height":H} (node_exec.c): 0 with both in
 * 1..65535, else -EINVAL. */
int nexec_parse_size(const char *data, size_t len, unsigned short *rows, unsigned short *cols);
struct nattach;
int nattach_start(uv_loop_t *loop, struct http_req *req, struct nattach **list, size_t ctr,
    const char *log_path, const char *stdin_path, const char *ctl_path, bool separate_stderr,
    char **err);
void nattach_exited(struct nattach **list, size_t ctr);

/* node_portforward.c — pods/portforward for kubectl port-forward (SPDY/3.1,
 * tunnelled in a WebSocket or plain): connections go to 127.0.0.1 in the
 * network namespace at netns, or to ip when netns is NULL (a process
 * pod's own loopback address). pod names the pod in error messages.
 * Always answers req (a 400 Status for an upgrade it cannot serve). */
int npf_start(uv_loop_t *loop, struct http_req *req, const char *pod, const char *netns,
    const char *ip);

/* node_usage.c — the machine's usage for metrics.k8s.io NodeMetrics
 * (kubectl top nodes): CPU as the rate between two samples, memory in use. */
struct node_usage {
	int64_t at_ms;		/* last sample */
	int64_t window_ms;	/* between the last two samples */
	uint64_t busy_ns, nanocores, memory;
	bool primed, have;	/* one sample taken; a rate known */
};
/* Takes a sample from /proc at now_ms. */
void node_usage_sample(struct node_usage *u, int64_t now_ms);
/* The NodeMetrics of node (labels borrowed, may be NULL), or NULL while
 * no rate is known. */
json_t *node_usage_metrics(const struct node_usage *u, const char *node, const json_t *labels);

#endif
