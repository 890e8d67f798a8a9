/* cli.h — the `v6` command line: verb table, global flags, help, and the
 * kubectl-like verbs that talk to the API server over HTTP. main.c calls
 * cli_main(); everything below it is internal to the cli_*.c files, grouped
 * by the file that defines it. */
#ifndef V6_CLI_H
#define V6_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "obj.h"
#include "obj_apply.h"
#include "util.h"

#define V6_VERSION "0.1.0"

/* cli.c */
/* Entry point of the binary: dispatches argv[1] through the verb table.
 * Returns the process exit code (0 success, non-zero with a message on
 * stderr). */
int cli_main(int argc, char **argv);
/* Index of the verb in argv (skipping global flags and their values), or
 * -1: main.c dispatches the programs by it. */
int cli_find_verb(int argc, char **argv);

/* Every flag of every verb lands here; the verb table says which flags a
 * verb accepts. Strings are borrowed from argv. */
struct cli_opts {
	const char *verb;
	const char *server;
	const char *kubeconfig;		/* --kubeconfig */
	const char *data_dir;		/* kubeconfig, certs status */
	const char *out;		/* kubeconfig --out */
	const char **files;
	size_t nfiles;
	const char *kustomize;		/* -k DIR */
	const char *ns;
	bool all_ns;
	const char *selector;
	const char *field_selector;
	const char *output;
	bool watch;
	bool show_labels;
	bool no_headers;
	bool export_;		/* get --export: server-set fields stripped */
	bool purge;		/* addon disable --purge */
	const char *to;		/* promote --to ENV (--from: the one below) */
	bool recursive;
	bool all;
	bool ignore_not_found;
	bool help;
	const char *dry_run;		/* NULL, "client", "server", "none" */
	const char *cascade;
	const char *wait;		/* "true" / "false"; NULL = verb default */
	const char *for_cond;
	const char *timeout;		/* duration; NULL = verb default */
	const char **args;		/* positionals after the verb */
	size_t nargs;
	/* logs */
	const char *container;
	bool follow;
	bool previous;
	bool timestamps;
	bool all_containers;
	bool prefix;
	int64_t tail;
	int64_t limit_bytes;
	int64_t max_log_requests;
	const char *since;
	const char *pod_running_timeout;
	const char *from;		/* create job --from=cronjob/NAME; promote --from ENV */
	/* rollout, scale, top */
	int64_t revision;
	int64_t to_revision;
	int64_t replicas;
	int64_t current_replicas;
	bool containers;
	bool full;			/* rollout promote --full */
	/* exec */
	bool stdin_;			/* -i: send stdin to the command */
	bool tty;			/* -t: a terminal for the command */
	const char *sort_by;
	/* autoscale */
	int64_t min, max, cpu_percent;
	const char *name;
	bool prune;			/* app sync --prune */
	bool overwrite;			/* label, annotate */
	const char *resource_version;	/* label, annotate: precondition */
	/* silence (cli_alert.c); matchers/nmatchers in this order: FLAG_LIST */
	const char **matchers;
	size_t nmatchers;
	const char *duration;
	const char *comment;
	uint64_t given;			/* bit i: the i-th flag of cli.c's table was given */
};

/* Whether the flag of that long name was on the command line (for flags
 * whose default depends on the verb, or whose absence matters). */
bool cli_flag_given(const struct cli_opts *o, const char *name);

/* Prints "error: MSG" on stderr; returns 1 (the exit code). */
int cli_err(const char *fmt, ...) V6_PRINTF(1, 2);
/* A verb's subcommands (v6 image ls, v6 addon enable): runs the one named
 * by o->args[0], else says which there are ("ls, pull, rm or import"). */
struct cli_sub {
	const char *name;
	int (*run)(const struct cli_opts *o);
};
int cli_run_sub(const struct cli_opts *o, const struct cli_sub *subs, size_t n,
    const char *names);
/* The same, returning -EINVAL (for helpers that return errno codes). */
int cli_fail(const char *fmt, ...) V6_PRINTF(1, 2);
/* The --timeout value in ms, or dflt when unset; -1 and an error printed
 * when malformed. */
int64_t cli_timeout_ms(const struct cli_opts *o, int64_t dflt);

/* cli_client.c — one libcurl handle for the life of the process. */
struct cli_resp {
	long status;	/* HTTP status */
	json_t *body;	/* parsed JSON body or NULL */
	char *raw;	/* raw body, NUL-terminated */
};
/* Where the CLI connects and as whom (cli_kubeconfig.c resolves it). */
struct cli_conn {
	char *server;			/* "https://127.0.0.1:6443" */
	char *ca, *cert, *key;		/* PEM (certificate-authority-data, ...), or NULL */
	size_t ca_len, cert_len, key_len;
	char *token;			/* bearer token, or NULL */
	bool skip_verify;		/* insecure-skip-tls-verify */
	char *source;			/* "kubeconfig /root/.kube/config", for errors */
};
/* Takes c's contents (c is zeroed). */
void cli_client_init(struct cli_conn *c);
void cli_client_close(void);
const char *cli_server_url(void);
/* Points h at the API server's path with the connection's TLS material and
 * credentials, the CLI's common options (no signals, 5 s to connect) and
 * headers: hdrs (may be NULL) plus User-Agent and Authorization. Returns
 * the header list for the caller to free after the transfer. */
struct curl_slist *cli_curl_prepare(void *h, const char *path, struct curl_slist *hdrs);
/* Prints why a transfer failed (TLS errors explained), kubectl-style. */
void cli_transport_error(int curlcode, const char *errbuf);

/* cli_kubeconfig.c */
/* The connection: --kubeconfig or $KUBECONFIG (its server replaced by
 * --server / $V6_SERVER when given); else --server / $V6_SERVER alone; else
 * ~/.kube/config; else the default data dir's admin certificate and
 * address; else http://127.0.0.1:6443. Returns 0, or -EINVAL with the
 * error printed. */
int cli_conn_resolve(const struct cli_opts *o, struct cli_conn *out);
void cli_conn_free(struct cli_conn *c);
/* Resolves the connection, runs run(o) with the client set up, closes it.
 * Returns run's exit code, or 1 when there is no usable connection. */
int cli_run_connected(struct cli_opts *o, int (*run)(struct cli_opts *));
int cli_kubeconfig(struct cli_opts *o);
int cli_certs(struct cli_opts *o);
/* One request. body may be NULL; ctype defaults to application/json.
 * Returns 0 when an HTTP response was received (any status, see
 * out->status) or -EIO with the connection error already printed. */
int cli_http(const char *method, const char *path, const char *ctype,
    const json_t *body, struct cli_resp *out);
void cli_resp_free(struct cli_resp *r);
/* GETs path and gives its JSON object in *out (a new reference). -EIO when
 * the server cannot be reached, -EPROTO when it answered anything but 200
 * with an object; either error is already printed. */
int cli_get_json(const char *path, json_t **out);
/* Prints a failed response kubectl-style: "Error from server (Reason):
 * [WHEN: ]message" plus one line per cause. */
void cli_print_error(const struct cli_resp *r, const char *when);
/* The reason of a Status body ("NotFound"), or "" */
const char *cli_resp_reason(const struct cli_resp *r);
/* Streams ?watch=true events to cb until cb returns non-zero (returned),
 * the server ends the stream (0), the deadline passes (-ETIMEDOUT; 0 = no
 * deadline) or the transport fails (-EIO, printed). cb borrows obj. */
typedef int (*cli_watch_cb)(const char *type, json_t *obj, void *arg);
int cli_watch(const char *path, int64_t deadline_mono_ms, cli_watch_cb cb, void *arg);
/* REST path of a kind: ns NULL lists across namespaces, name may be NULL,
 * query (already "a=b&c=d" encoded, may be NULL). Caller frees. */
char *cli_path(const struct kind *k, const char *ns, const char *name, const char *query);
/* Appends "&key=escaped(value)" (or "key=" first) to a query buffer. */
void cli_query_add(struct buf *q, const char *key, const char *value);

/* cli_print.c */
/* "deployment.apps/web", "service/web" into out (>= 256 bytes). */
const char *cli_obj_ref(const struct kind *k, const char *name, char *out, size_t len);
/* "deployment.apps" for a kind (kubectl resource.group form). */
const char *cli_kind_ref(const struct kind *k, char *out, size_t len);
/* Age of an RFC 3339 timestamp relative to now_ms, "<unknown>" if absent. */
void cli_age(const char *ts, int64_t now_ms, char *out);

struct cli_table;
enum {
	CLI_TBL_WIDE = 1,	/* -o wide columns */
	CLI_TBL_NS = 2,		/* NAMESPACE column first (-A) */
	CLI_TBL_LABELS = 4,	/* LABELS column last */
	CLI_TBL_KINDREF = 8,	/* NAME as kind.group/name */
	CLI_TBL_NOHEAD = 16,
};
/* A table for objects of one kind (kind name "Deployment", NULL -> generic
 * columns). now_ms fixes the clock for AGE columns. */
struct cli_table *cli_table_new(const struct kind *k, const char *kind, int flags,
    int64_t now_ms);
void cli_table_add(struct cli_table *t, const json_t *obj);
/* Renders header (unless NOHEAD) and rows; caller frees. */
char *cli_table_render(struct cli_table *t);
/* Renders only the rows added since the last render, reusing widths
 * computed so far (for watch). Caller frees. */
char *cli_table_render_new_rows(struct cli_table *t);
void cli_table_free(struct cli_table *t);
/* Prints rows (arrays of strings, the header first) in columns three
 * spaces apart, as kubectl's printer lays them out. */
void cli_print_rows(const json_t *rows);
/* JSON as kubectl prints it (4-space indent, newline). Caller frees. */
char *cli_json_dump(const json_t *v);

/* cli_promote_git.c */
/* When target (the live object in the target environment) is synced by an
 * Application (its tracking id), commits what tpl (the template of src_ns)
 * differs by, and the data of the ConfigMaps it uses, to the Application's
 * git source and pushes them instead of writing the target; with wait,
 * waits for the sync and the rollout until wait_deadline (time_mono_ms, 0:
 * none). dry: checks out and edits, prints each file's diff, commits and
 * pushes nothing. Returns 1 when target is not tracked (the caller writes it), 0 when
 * promoted, -1 with the error printed. */
int cli_promote_git(const struct kind *k, const json_t *target, const json_t *tpl,
    const char *src_ns, const char *from, const char *to, int64_t wait_deadline, bool wait,
    bool dry);
/* Calls cb for each ConfigMap or Secret that the pod template tpl names
 * (env, envFrom, volumes, projected volumes, imagePullSecrets): kind
 * "ConfigMap" or "Secret", and holder[field] the name (cb may change it). */
typedef void (*cli_ref_fn)(const char *kind, json_t *holder, const char *field, void *arg);
void cli_tpl_refs(json_t *tpl, cli_ref_fn cb, void *arg);

/* cli_yaml.c */
/* Emits a JSON value as a YAML document (block style, sorted keys, list
 * items at their parent's indentation). Caller frees. */
char *cli_yaml_dump(const json_t *v);
/* The same with the key first (when an object has it) in every object:
 * "- name: web" as people write list items. */
char *cli_yaml_dump_titled(const json_t *v, const char *first);
/* Whether a string needs quotes to read back as the same string. */
bool cli_yaml_needs_quotes(const char *s);

/* cli_manifest.c — reading -f inputs. */
struct cli_item {
	json_t *obj;		/* owned */
	const struct kind *k;
	json_t *pos;		/* field path -> [line, col] (owned) */
	char *file;		/* owned, for messages */
	int line;
};
struct cli_items {
	struct cli_item *v;
	size_t n;
};
/* Reads every -f path (dirs: *.yaml, *.yml, *.json sorted; -R recurses),
 * parses and validates every document, sets namespaces (object's, else
 * -n, else "default"). Prints every error; returns 0 or -EINVAL with
 * nothing loaded. */
int cli_items_load(const struct cli_opts *o, bool validate, struct cli_items *out);
void cli_items_free(struct cli_items *items);
/* The namespace a verb targets: -n, else "default". */
const char *cli_ns(const struct cli_opts *o);
/* Resolves a user-typed kind; prints kubectl's error and returns NULL. */
const struct kind *cli_kind(const char *name);

/* For `diff`: the live object (NULL when absent) and what apply would
 * make of it (the server's dry-run answer). 0, or -EIO with the error
 * printed. New references. */
int cli_apply_preview(const struct cli_item *it, json_t **live, json_t **next);

/* cli_kustomize.c */
int cli_kustomize(struct cli_opts *o);
int cli_diff(struct cli_opts *o);
/* Prints the unified diff of two texts (diff -u, both sides named
 * a/label and b/label; $KUBECTL_EXTERNAL_DIFF as `v6 diff`). diff's exit
 * code: 0 same, 1 different, >1 error. */
int cli_text_diff(const char *label, const char *before, const char *after);

/* --dry-run (cli_apply.c, for every writing verb): none (absent), client
 * (bare --dry-run, as kubectl: nothing sent) or server (?dryRun=All: the
 * server checks and answers, stores nothing). -EINVAL with the error
 * printed. cli_dry_said[] is what a result line ends with. */
enum cli_dry { CLI_DRY_NONE, CLI_DRY_CLIENT, CLI_DRY_SERVER };
int cli_dry_run(const struct cli_opts *o, enum cli_dry *out);
extern const char *const cli_dry_said[];

/* The verbs, one file each. */
int cli_apply(struct cli_opts *o);	/* cli_apply.c */
int cli_create(struct cli_opts *o);	/* cli_apply.c */
int cli_get(struct cli_opts *o);	/* cli_get.c */
int cli_describe(struct cli_opts *o);	/* cli_describe.c */
int cli_delete(struct cli_opts *o);	/* cli_delete.c */
int cli_wait(struct cli_opts *o);	/* cli_describe.c */
/* kubectl's "Pod Template:" section for a pod template (rollout history
 * --revision). Caller frees. */
char *cli_describe_pod_template(const json_t *tpl);

/* cli_wait.c */
int cli_version(struct cli_opts *o);	/* cli_get.c */
int cli_logs(struct cli_opts *o);	/* cli_logs.c */
int cli_rollout(struct cli_opts *o);	/* cli_rollout.c */
int cli_scale(struct cli_opts *o);	/* cli_scale.c */
/* cli_autoscale.c: `v6 autoscale` (how HPA metrics read is obj_print_hpa.c's) */
int cli_autoscale(struct cli_opts *o);
/* For `v6 apply`: a manifest's spec.replicas that differs from live's, on a
 * target an HPA scales, would fight the HPA: dropped from the merge patch
 * with a warning on stderr (the HPA's count stays). */
void cli_hpa_guard_replicas(const struct cli_item *it, const json_t *live, json_t *patch);
int cli_top(struct cli_opts *o);	/* cli_top.c */
int cli_image(struct cli_opts *o);	/* cli_image.c */
int cli_addon(struct cli_opts *o);	/* cli_addon.c */
int cli_env(struct cli_opts *o);	/* cli_env.c */
int cli_promote(struct cli_opts *o);	/* cli_env.c */
int cli_exec(struct cli_opts *o);	/* cli_exec.c */
int cli_attach(struct cli_opts *o);	/* cli_exec.c */
int cli_port_forward(struct cli_opts *o);	/* cli_portforward.c */

/* cli_label.c — `v6 label` / `v6 annotate`; the pure parts unit tested. */
int cli_label(struct cli_opts *o);
int cli_annotate(struct cli_opts *o);
/* A parsed change: set holds KEY -> VALUE strings, remove the KEYs given
 * as KEY-. */
struct cli_meta_edit {
	json_t *set;
	json_t *remove;
};
/* Splits args as kubectl does: the resources first (*nres of them), then
 * KEY=VALUE / KEY- changes (labels: a value holds no '='). 0, or -EINVAL
 * with *err (kubectl's message; caller frees) and nothing to free. */
int cli_meta_edit_parse(bool labels, const char **args, size_t nargs, size_t *nres,
    struct cli_meta_edit *e, char **err);
void cli_meta_edit_free(struct cli_meta_edit *e);
/* The merge patch {"metadata":{"labels"|"annotations":{...}}} making e of
 * obj: the keys whose value changes, null for present keys removed.
 * Returns 0 when nothing changes, 1 when a key is set, 2 when keys are
 * only removed; -EINVAL with *err when a key has another value and
 * overwrite is false (kubectl's message; caller frees). *patch is a new
 * reference unless an error. */
int cli_meta_edit_patch(const struct cli_meta_edit *e, bool labels, const json_t *obj,
    bool overwrite, json_t **patch, char **err);

/* cli_ws.c — a WebSocket to the API server (TLS and credentials as every
 * request). cli_ws_open upgrades path with subprotocol proto: NULL with
 * the error printed (a refused upgrade as kubectl prints its Status).
 * cli_ws_read hands each whole message that arrived to fn, without
 * waiting: 0, or 1 once the connection ended. */
struct cli_ws;
typedef void (*cli_ws_msg_fn)(void *arg, const char *data, size_t len);
struct cli_ws *cli_ws_open(const char *path, const char *proto);
int cli_ws_fd(const struct cli_ws *w);
/* One binary message [ch][data] (ch < 0: data alone); 0 or -EPIPE. */
int cli_ws_send(struct cli_ws *w, int ch, const void *data, size_t len);
int cli_ws_read(struct cli_ws *w, cli_ws_msg_fn fn, void *arg);
void cli_ws_close(struct cli_ws *w);
int cli_app(struct cli_opts *o);	/* cli_app.c */
/* cli_alert.c: alerts and silences (alerts.v6.dev); get and describe hand
 * over when cli_alert_resource(args[0]) ("alerts", "alert/NAME", ...). */
bool cli_alert_resource(const char *arg);
int cli_alert_get(struct cli_opts *o);
int cli_alert_describe(struct cli_opts *o);
int cli_silence(struct cli_opts *o);

/* cli_describe.c */
/* kubectl's "Pod Template:" section for a pod template (rollout history
 * --revision). Caller frees. */
char *cli_describe_pod_template(const json_t *tpl);

/* cli_wait.c */
/* Polls until KIND/NAME is gone (404 or another uid); 0, or -ETIMEDOUT. */
int cli_wait_gone(const struct kind *k, const char *ns, const char *name,
    const char *uid, int64_t deadline_mono_ms);

/* cli_rollout.c — the pure parts, unit tested. */
/* kubectl's rollout status of a Deployment: *msg gets the line to print
 * (with its newline, caller frees) and *done whether the rollout finished.
 * revision > 0 requires that revision. Returns 0, or -1 with *msg set to
 * the error (no "error: " prefix, no newline). */
int cli_rollout_status_msg(const json_t *deploy, int64_t revision, char **msg, bool *done);
/* Whether `apply --wait` waits for objects of k: Deployment, StatefulSet,
 * DaemonSet, Rollout (rolled out / Healthy), Job (Complete). */
bool cli_rollout_waits_for(const struct kind *k);
/* Follows ns/name of k as `v6 rollout status` does (one line per change of
 * its status message) until it is rolled out (0), fails or aborts (1, the
 * reason printed), or deadline (time_mono_ms; 0: none) passes (1). */
int cli_rollout_wait(const struct kind *k, const char *ns, const char *name,
    int64_t deadline);
/* The ReplicaSets of items (an array) controlled by deploy (ownerReference
 * with controller true and deploy's uid). New array of borrowed-then-
 * increfed objects, sorted by revision. */
json_t *cli_owned_replicasets(const json_t *deploy, const json_t *items);
/* The ReplicaSet to roll back to: to_revision, or (0) the newest revision
 * below the current one. Borrowed from rsets; NULL with *err (caller frees). */
const json_t *cli_undo_target(const json_t *deploy, const json_t *rsets, int64_t to_revision,
    char **err);
/* Whether the deployment's pod template equals the ReplicaSet's, ignoring
 * the pod-template-hash label. */
bool cli_template_matches(const json_t *deploy, const json_t *rs);
/* The JSON patch (RFC 6902) kubectl sends to restore rs's template and
 * annotations into deploy. New reference. */
json_t *cli_undo_patch(const json_t *deploy, const json_t *rs);

/* cli_top.c — the pure parts, unit tested. */
/* kubectl top's cells: "3m" from nanocores, "12Mi" from bytes. out >= 32. */
void cli_format_cpu(int64_t nanocores, char *out);
void cli_format_memory(int64_t bytes, char *out);

/* cli_argo.c — what the CLI reads out of a Rollout (pure, unit tested);
 * shared by get, the rollout views and the rollout verbs. */
/* The revision annotation of an object, 0 when absent or malformed. */
int64_t cli_revision_of(const json_t *obj);
enum { CLI_ARGO_WAIT, CLI_ARGO_DONE, CLI_ARGO_FAILED };
/* "Canary", "BlueGreen" or "" from spec.strategy. */
const char *cli_argo_strategy(const json_t *ro);
/* A canary's status.currentStepIndex (0 when absent, at most count) and
 * number of steps; false for a blue-green rollout. */
bool cli_argo_step(const json_t *ro, int64_t *index, int64_t *count);
/* Argo's SET-WEIGHT: the last setWeight at or before the current step, 100
 * past the last step or without steps, 0 when aborted, -1 for blue-green. */
int64_t cli_argo_set_weight(const json_t *ro);
/* The canary weight in effect: status.canary.weights.canary.weight when
 * the controller reports it and traffic is split between services
 * (canaryService or trafficRouting), else the set weight. */
int64_t cli_argo_weight(const json_t *ro);
/* The line `rollout status` prints ("Paused - CanaryPauseStep (step 1/4,
 * weight 20%)" and a newline; caller frees) and, as kubectl-argo-rollouts
 * status: CLI_ARGO_DONE at Healthy, CLI_ARGO_FAILED at Degraded,
 * CLI_ARGO_WAIT otherwise (Progressing, Paused, and while
 * status.observedGeneration lags metadata.generation). */
int cli_argo_status_msg(const json_t *ro, char **msg);
/* cli_rollout.c — the rollout verbs' decisions for Rollouts (pure, unit tested). */
/* What cmd ("promote", "promote-full", "abort", "retry", "pause",
 * "resume") sends for the rollout ro: *spec and *status are the contents
 * of the spec merge patch and of the status patch (each NULL when not
 * needed; new references). Returns 0 to send them, 1 when there is nothing
 * to do (*msg says why), -EINVAL when the command does not apply (*msg
 * says what to do instead). Caller frees *msg. */
int cli_argo_patches(const char *cmd, const json_t *ro, json_t **spec, json_t **status,
    char **msg);
/* `rollout history` of a Rollout: REVISION, HASH, CHANGE-CAUSE of rsets
 * (sorted by revision). Caller frees. */
char *cli_argo_history(const json_t *rsets);

/* cli_rwatch.c — the Rollout views: `rollout watch`, `describe rollout`,
 * `describe analysisrun`. */
/* The view of a Rollout: status, strategy, steps with the current one
 * marked, weights, revisions with their pods, analysis runs with their
 * latest measurements, message. rsets, pods and runs are arrays of
 * candidates (those not belonging to ro are skipped; runs may be NULL).
 * Pure; caller frees. */
char *cli_rwatch_view(const json_t *ro, const json_t *rsets, const json_t *pods,
    const json_t *runs);
/* An AnalysisRun's status, metric results and their measurements, for
 * describe. Caller frees. */
char *cli_rwatch_analysisrun(const json_t *run);
/* Fetches what cli_rwatch_view needs for ro; new references (*runs is an
 * empty array when the server has no AnalysisRuns). 0 or -EIO (printed). */
int cli_rwatch_related(const json_t *ro, json_t **rsets, json_t **pods, json_t **runs);

/* cli_vpa.c — `v6 describe vpa`: per container the template's requests,
 * usage p50 / p90 / peak from the checkpoints' histograms, the
 * recommendation and the history's start (text; caller frees). */
char *cli_vpa_view(const json_t *vpa, const json_t *target, const json_t *checkpoints);
/* Fetches the VPA's target and its namespace's checkpoints (new references
 * or NULL). Returns 0. */
int cli_vpa_related(const json_t *vpa, json_t **target, json_t **checkpoints);
/* `v6 rollout watch`: the live view until Ctrl-C or --timeout (exit 0), or
 * the rollout's deletion (1). */
int cli_rwatch_run(struct cli_opts *o, const struct kind *k, const char *ns,
    const char *name);

#endif
