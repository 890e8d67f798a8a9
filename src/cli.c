/* cli.c — the `v6` command line front: the flag table and the verb table
 * that drive parsing, dispatch and help. Every verb runs in a cli_*.c file
 * against the API server (cli_client.c); the programs (`v6 server`, ...)
 * are dispatched by main.c and only described here. Called by main(). */
#include "cli.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum flag_type { FLAG_BOOL, FLAG_STR, FLAG_LIST, FLAG_OPT, FLAG_INT };

struct cli_flag {
	const char *name;
	char shorthand;
	enum flag_type type;
	size_t off;		/* into struct cli_opts */
	const char *arg;	/* value placeholder in help */
	const char *bare;	/* FLAG_OPT: value when given without '=' */
	const char *help;
};

/* A shorthand may belong to several flags of different verbs (-f is
 * --filename for apply, --follow for logs); the verb's own flag wins. */
#define OFF(f) offsetof(struct cli_opts, f)

static const struct cli_flag flags[] = {
	{ "server", 0, FLAG_STR, OFF(server), "URL", NULL,
	  "API server URL (default $V6_SERVER, else the kubeconfig's)" },
	{ "kubeconfig", 0, FLAG_STR, OFF(kubeconfig), "FILE", NULL,
	  "kubeconfig to use (default $KUBECONFIG, else ~/.kube/config unless --server or "
	  "$V6_SERVER is given, else the admin certificate of the default data dir)" },
	{ "data-dir", 0, FLAG_STR, OFF(data_dir), "DIR", NULL,
	  "the server's data directory (default $V6_DATA_DIR, else /var/lib/v6 as root, "
	  "else ~/.local/share/v6)" },
	{ "out", 0, FLAG_STR, OFF(out), "FILE", NULL,
	  "write to FILE (mode 0600) instead of stdout" },
	{ "help", 'h', FLAG_BOOL, OFF(help), NULL, NULL, "show help for the command" },
	{ "filename", 'f', FLAG_LIST, OFF(files), "FILE", NULL,
	  "manifest file, directory (*.yaml, *.yml, *.json) or - for stdin; repeatable" },
	{ "kustomize", 'k', FLAG_STR, OFF(kustomize), "DIR", NULL,
	  "a kustomization directory, rendered as `v6 kustomize DIR` does" },
	{ "recursive", 'R', FLAG_BOOL, OFF(recursive), NULL, NULL,
	  "process directories given with -f recursively" },
	{ "namespace", 'n', FLAG_STR, OFF(ns), "NS", NULL,
	  "namespace to use (default \"default\")" },
	{ "all-namespaces", 'A', FLAG_BOOL, OFF(all_ns), NULL, NULL,
	  "list objects across all namespaces" },
	{ "selector", 'l', FLAG_STR, OFF(selector), "SEL", NULL,
	  "label selector, e.g. app=web,tier!=db" },
	{ "field-selector", 0, FLAG_STR, OFF(field_selector), "SEL", NULL,
	  "field selector, e.g. metadata.name=web" },
	{ "output", 'o', FLAG_STR, OFF(output), "FORMAT", NULL,
	  "output format: wide, yaml, json, name, jsonpath=TEMPLATE" },
	{ "watch", 'w', FLAG_BOOL, OFF(watch), NULL, NULL,
	  "get: after listing, print changes; rollout status: follow until done (default true)" },
	{ "export", 0, FLAG_BOOL, OFF(export_), NULL, NULL,
	  "get -o yaml|json: leave out what the server sets (status, uid, resourceVersion, "
	  "generation, creationTimestamp, managedFields), so the output applies elsewhere" },
	{ "show-labels", 0, FLAG_BOOL, OFF(show_labels), NULL, NULL,
	  "add a LABELS column" },
	{ "no-headers", 0, FLAG_BOOL, OFF(no_headers), NULL, NULL,
	  "do not print table headers" },
	{ "purge", 0, FLAG_BOOL, OFF(purge), NULL, NULL,
	  "addon disable: delete the addon's data volumes too" },
	{ "to", 0, FLAG_STR, OFF(to), "ENV", NULL,
	  "promote: the environment (or namespace) to release into" },
	{ "dry-run", 0, FLAG_OPT, OFF(dry_run), "client|server|none", "client",
	  "only show what would happen: client (local checks) or server (checked by the server)" },
	{ "all", 0, FLAG_BOOL, OFF(all), NULL, NULL,
	  "select every object of the kind in the namespace" },
	{ "ignore-not-found", 0, FLAG_BOOL, OFF(ignore_not_found), NULL, NULL,
	  "treat a missing object as success" },
	{ "cascade", 0, FLAG_OPT, OFF(cascade), "background|foreground|orphan", "background",
	  "what happens to dependents (default background)" },
	{ "wait", 0, FLAG_OPT, OFF(wait), "true|false", "true",
	  "delete: wait until the objects are gone (default true); apply, promote: wait until "
	  "the workloads have rolled out (default false)" },
	{ "for", 0, FLAG_STR, OFF(for_cond), "COND", NULL,
	  "condition=TYPE[=VALUE] or delete" },
	{ "timeout", 0, FLAG_STR, OFF(timeout), "DURATION", NULL,
	  "give up after this long, e.g. 30s, 2m" },
	{ "from", 0, FLAG_STR, OFF(from), "cronjob/NAME|ENV", NULL,
	  "create job: the CronJob whose jobTemplate the Job is made from; promote: the "
	  "environment (or namespace) to copy from" },
	{ "container", 'c', FLAG_STR, OFF(container), "NAME", NULL,
	  "the container (default: the pod's only one, or its default-container annotation)" },
	{ "follow", 'f', FLAG_BOOL, OFF(follow), NULL, NULL,
	  "keep streaming the logs as they are written" },
	{ "previous", 'p', FLAG_BOOL, OFF(previous), NULL, NULL,
	  "the logs of the previous, terminated instance of the container" },
	{ "tail", 0, FLAG_INT, OFF(tail), "N", NULL,
	  "only the last N lines (default all, 10 with -l; -1 = all)" },
	{ "since", 0, FLAG_STR, OFF(since), "DURATION", NULL,
	  "only lines newer than this, e.g. 10s, 5m, 1h" },
	{ "timestamps", 0, FLAG_BOOL, OFF(timestamps), NULL, NULL,
	  "start each line with its RFC 3339 timestamp" },
	{ "all-containers", 0, FLAG_BOOL, OFF(all_containers), NULL, NULL,
	  "the logs of every container of the pod(s), init containers first" },
	{ "prefix", 0, FLAG_BOOL, OFF(prefix), NULL, NULL,
	  "start each line with [pod/NAME/CONTAINER] (default true with -l)" },
	{ "limit-bytes", 0, FLAG_INT, OFF(limit_bytes), "N", NULL,
	  "at most N bytes of log per container" },
	{ "max-log-requests", 0, FLAG_INT, OFF(max_log_requests), "N", NULL,
	  "how many log streams -l -f may follow at once (default 5)" },
	{ "pod-running-timeout", 0, FLAG_STR, OFF(pod_running_timeout), "DURATION", NULL,
	  "how long to wait for a pod of KIND/NAME to exist (default 20s)" },
	{ "revision", 0, FLAG_INT, OFF(revision), "N", NULL,
	  "history: the pod template of revision N; status: wait for revision N" },
	{ "to-revision", 0, FLAG_INT, OFF(to_revision), "N", NULL,
	  "the revision to roll back to (default: the previous one)" },
	{ "replicas", 0, FLAG_INT, OFF(replicas), "N", NULL,
	  "the new number of replicas (required)" },
	{ "current-replicas", 0, FLAG_INT, OFF(current_replicas), "N", NULL,
	  "precondition: scale only if the current number of replicas is N" },
	{ "containers", 0, FLAG_BOOL, OFF(containers), NULL, NULL,
	  "one row per container" },
	{ "sort-by", 0, FLAG_STR, OFF(sort_by), "cpu|memory", NULL,
	  "sort the rows by CPU or memory use, largest first" },
	{ "full", 0, FLAG_BOOL, OFF(full), NULL, NULL,
	  "rollout promote: skip the remaining steps, pauses and analysis" },
	{ "stdin", 'i', FLAG_BOOL, OFF(stdin_), NULL, NULL,
	  "exec: pass stdin to the command; attach: to the container" },
	{ "tty", 't', FLAG_BOOL, OFF(tty), NULL, NULL,
	  "exec: run the command on a terminal (raw mode when stdin is one)" },
	{ "min", 0, FLAG_INT, OFF(min), "N", NULL,
	  "autoscale: the lower limit of replicas (default: the server's, 1)" },
	{ "max", 0, FLAG_INT, OFF(max), "N", NULL,
	  "autoscale: the upper limit of replicas (required)" },
	{ "cpu-percent", 0, FLAG_INT, OFF(cpu_percent), "P", NULL,
	  "autoscale: target average CPU utilization, percent of requests (default 80)" },
	{ "name", 0, FLAG_STR, OFF(name), "NAME", NULL,
	  "autoscale: the HorizontalPodAutoscaler's name (default: the target's)" },
	{ "prune", 0, FLAG_BOOL, OFF(prune), NULL, NULL,
	  "app sync: delete the resources git no longer has" },
	{ "overwrite", 0, FLAG_BOOL, OFF(overwrite), NULL, NULL,
	  "label, annotate: allow changing a key that already has a value" },
	{ "resource-version", 0, FLAG_STR, OFF(resource_version), "RV", NULL,
	  "label, annotate: change the object only if this is its current resourceVersion "
	  "(one object)" },
	{ "matcher", 'm', FLAG_LIST, OFF(matchers), "NAME=VALUE", NULL,
	  "silence create: a label matcher (=, !=, =~, !~); repeatable" },
	{ "duration", 'd', FLAG_STR, OFF(duration), "DURATION", NULL,
	  "silence create: how long the silence lasts (default 1h)" },
	{ "comment", 'c', FLAG_STR, OFF(comment), "TEXT", NULL,
	  "silence create: why (required)" },
};

/* A verb either runs as a client verb (run, with the parsed flags) or is a
 * program of its own (`v6 server`, `v6 shim`, `v6 testapp`: main.c's table
 * dispatches those, with argv from the verb on); their entries here are for
 * help. */
struct cli_verb {
	const char *name;
	int (*run)(struct cli_opts *o);
	const char *usage;
	const char *summary;	/* one line, for the verb list */
	const char *desc;
	const char *flags;	/* accepted flags, space separated */
	const char *examples;
	bool program;		/* run by main.c, not by the CLI */
};

static int cli_help(struct cli_opts *o);
static int cli_events(struct cli_opts *o);

static const struct cli_verb verbs[] = {
	{ "apply", cli_apply, "v6 apply -f FILE|DIR|- [-f ...] | -k DIR [flags]",
	  "Create or update objects from manifests, all or nothing",
	  "Create or update objects from manifests. Every document is validated\n"
	  "locally and checked by the server (dry run) before anything is applied;\n"
	  "one bad document means nothing is applied. Changes are computed from the\n"
	  "last applied configuration, as kubectl does. With --wait, then waits\n"
	  "until every applied Deployment, StatefulSet, DaemonSet and Rollout has\n"
	  "rolled out and every Job completed (exit 1 with the reason on failure,\n"
	  "abort or --timeout, default 5m).",
	  "filename kustomize recursive namespace dry-run output wait timeout",
	  "  v6 apply -f web.yaml\n  v6 apply -k overlays/prod\n  v6 apply -f manifests/ -n staging\n"
	  "  v6 apply -f release/ --wait --timeout 10m\n"
	  "  cat web.yaml | v6 apply -f -\n", false },
	{ "kustomize", cli_kustomize, "v6 kustomize [DIR]",
	  "Render a kustomization directory as YAML",
	  "Render a kustomization directory (kustomization.yaml) as kubectl kustomize\n"
	  "does: resources, bases and overlays, components, generators with their\n"
	  "content-hash suffix, name prefixes and suffixes with references rewritten,\n"
	  "labels, annotations, images, replicas and patches. Remote resources are\n"
	  "refused; see docs/kustomize.md. -o json prints a v1 List.",
	  "output",
	  "  v6 kustomize overlays/prod\n  v6 kustomize . -o json\n", false },
	{ "diff", cli_diff, "v6 diff -f FILE|DIR | -k DIR [flags]",
	  "Diff the live objects against what apply would make of them",
	  "Show a unified diff (diff -u -N, or $KUBECTL_EXTERNAL_DIFF) of each live\n"
	  "object against the result the server gives for applying the manifest\n"
	  "(a dry run), without server-set fields. Exit 0: no differences, 1:\n"
	  "differences, >1: an error, as kubectl diff.",
	  "filename kustomize recursive namespace",
	  "  v6 diff -f web.yaml\n  v6 diff -k overlays/staging\n", false },
	{ "get", cli_get, "v6 get KIND[,KIND...] [NAME...] | KIND/NAME... [flags]",
	  "Display one or many objects",
	  "Display one or many objects as a table, YAML, JSON or names.",
	  "namespace all-namespaces selector field-selector output watch show-labels "
	  "no-headers timeout export",
	  "  v6 get deployments\n  v6 get pods -l app=web -o wide\n"
	  "  v6 get rollouts,services -n demo -o yaml --export >backup.yaml\n"
	  "  v6 get deploy/web -o yaml\n  v6 get deploy,svc -A\n  v6 get pods -w\n", false },
	{ "describe", cli_describe, "v6 describe KIND NAME... | KIND/NAME | KIND [-l SEL] [flags]",
	  "Show details of an object and its events",
	  "Show a human readable description of objects and their recent events,\n"
	  "oldest first. Without a name: every object of the kind in the namespace,\n"
	  "or those the label selector matches.",
	  "namespace selector",
	  "  v6 describe deployment web\n  v6 describe pod/web-7d9c-x2k4p -n prod\n"
	  "  v6 describe pods -l app=web\n", false },
	{ "delete", cli_delete,
	  "v6 delete -f FILE|DIR | -k DIR | KIND NAME... | KIND/NAME | KIND -l SEL | KIND --all "
	  "[flags]",
	  "Delete objects by file, name, label selector or --all",
	  "Delete objects by file, name, label selector or --all, and by default wait\n"
	  "until they are gone.",
	  "filename kustomize recursive namespace selector all ignore-not-found cascade wait "
	  "timeout output dry-run",
	  "  v6 delete -f web.yaml\n  v6 delete -k overlays/dev\n  v6 delete deployment web\n"
	  "  v6 delete pods -l app=web --wait=false\n"
	  "  v6 delete -k overlays/dev --dry-run=server\n", false },
	{ "create", cli_create, "v6 create -f FILE | v6 create namespace NAME | "
	  "v6 create job NAME --from=cronjob/CJ [flags]",
	  "Create objects from manifests, a namespace, or a Job from a CronJob",
	  "Create objects from manifests (an existing object is an error), a\n"
	  "namespace by name, or a Job from a CronJob's jobTemplate (as kubectl).",
	  "filename recursive namespace dry-run output from",
	  "  v6 create namespace staging\n  v6 create -f web.yaml\n"
	  "  v6 create job backup-now --from=cronjob/backup\n", false },
	{ "wait", cli_wait,
	  "v6 wait --for=condition=TYPE[=VALUE]|--for=delete KIND/NAME... [flags]",
	  "Wait for a condition on objects, or for their deletion",
	  "Wait until a condition of one or more objects holds, or they are deleted.",
	  "for namespace timeout selector",
	  "  v6 wait --for=condition=Available deployment/web --timeout 60s\n"
	  "  v6 wait --for=delete pod/web-1\n", false },
	{ "version", cli_version, "v6 version [-o json]",
	  "Print the client and server versions",
	  "Print the client version and the server's version.",
	  "output",
	  "  v6 version\n  v6 version -o json\n", false },
	{ "logs", cli_logs,
	  "v6 logs POD [CONTAINER] | KIND/NAME | -l SEL [flags]",
	  "Print the logs of a container",
	  "Print the logs of a container of a pod. KIND/NAME (deploy/web, rs/web-5d9f)\n"
	  "picks one pod of that workload; -l prints the logs of every matching pod,\n"
	  "each line prefixed with [pod/NAME/CONTAINER]. -f keeps streaming.",
	  "container follow previous tail since timestamps all-containers prefix "
	  "limit-bytes max-log-requests pod-running-timeout selector namespace",
	  "  v6 logs web-7d9c-x2k4p\n  v6 logs deploy/web -f\n"
	  "  v6 logs web-7d9c-x2k4p -c sidecar --previous\n"
	  "  v6 logs -l app=web --tail 20 --since 5m\n"
	  "  v6 logs web-7d9c-x2k4p --all-containers --timestamps\n", false },
	{ "rollout", cli_rollout,
	  "v6 rollout SUBCOMMAND deployment/NAME|rollout/NAME [flags]",
	  "Manage the rollout of a deployment or an Argo Rollout",
	  "Manage the rollout of a deployment or of an Argo Rollout (rollout/NAME):\n"
	  "  status   follow the rollout until it completes; non-zero exit when it\n"
	  "           exceeds its progress deadline or --timeout passes. A Rollout\n"
	  "           is followed through its pauses (printing the one it waits\n"
	  "           on) until Healthy (exit 0) or Degraded (exit 1), as\n"
	  "           kubectl-argo-rollouts does\n"
	  "  history  list the revisions (--revision N shows one's pod template)\n"
	  "  undo     roll back to the previous revision, or --to-revision N\n"
	  "  restart  replace every pod with a new one (deployments)\n"
	  "  pause    stop rolling out template changes (spec.paused)\n"
	  "  resume   roll out again; a Rollout paused at a step goes on too\n"
	  "Argo Rollouts only (a bare NAME means rollout/NAME):\n"
	  "  promote  go on from a pause step, or skip the current step when not\n"
	  "           paused; --full skips every remaining step, pause and analysis\n"
	  "  abort    stop the update and go back to the stable revision\n"
	  "  retry    start an aborted update again\n"
	  "  watch    a live view of the rollout: steps, weights, revisions and\n"
	  "           their pods, analysis runs; redrawn on every change (a new\n"
	  "           block per change when stdout is not a terminal); Ctrl-C or\n"
	  "           --timeout ends it\n"
	  "Every subcommand that writes takes --dry-run[=server|client]: the server\n"
	  "checks the write (admission included) and stores nothing",
	  "namespace timeout watch revision to-revision full dry-run",
	  "  v6 rollout status deployment/web --timeout 2m\n"
	  "  v6 rollout history deployment/web\n"
	  "  v6 rollout history deployment/web --revision 3\n"
	  "  v6 rollout undo deployment/web --to-revision 2\n"
	  "  v6 rollout undo deployment/web --dry-run=server\n"
	  "  v6 rollout restart deployment/web\n"
	  "  v6 rollout pause deployment/web\n"
	  "  v6 rollout status rollout/web\n"
	  "  v6 rollout promote web\n"
	  "  v6 rollout promote rollout/web --full\n"
	  "  v6 rollout abort web\n"
	  "  v6 rollout retry web\n"
	  "  v6 rollout watch web\n", false },
	{ "scale", cli_scale,
	  "v6 scale KIND/NAME... | KIND NAME... --replicas N [flags]",
	  "Set the number of replicas of a deployment or replica set",
	  "Set the number of replicas of a deployment or replica set through its\n"
	  "scale subresource. --current-replicas makes it conditional.",
	  "replicas current-replicas namespace dry-run",
	  "  v6 scale deployment/web --replicas 5\n"
	  "  v6 scale deploy web --replicas 0 -n staging\n"
	  "  v6 scale rs/web-5d9f7c --current-replicas 2 --replicas 3\n"
	  "  v6 scale deploy/web --replicas 1 -n prod --dry-run=server\n", false },
	{ "label", cli_label,
	  "v6 label KIND/NAME... | KIND NAME... | KIND (-l SEL | --all) | -f FILE... KEY=VALUE... KEY-... "
	  "[flags]",
	  "Set or remove labels of objects",
	  "Set (KEY=VALUE) or remove (KEY-) labels of objects, as kubectl label does.\n"
	  "Changing a label that already has another value needs --overwrite.\n"
	  "Keys and values are checked by the server: a key is [PREFIX/]NAME (PREFIX a\n"
	  "DNS subdomain of at most 253 characters, NAME at most 63 alphanumerics, '-',\n"
	  "'_' or '.'), a value at most 63 of those. Each object gets one merge patch;\n"
	  "--resource-version makes it fail (Conflict) when the object changed since.\n"
	  "Prints \"KIND/NAME labeled\", \"unlabeled\" or \"not labeled\" (nothing changed).",
	  "filename recursive namespace all-namespaces selector all overwrite resource-version "
	  "dry-run output",
	  "  v6 label pod/web tier=front\n"
	  "  v6 label pod/web tier=back --overwrite\n"
	  "  v6 label pod/web tier-\n"
	  "  v6 label pods -l app=web canary=true\n"
	  "  v6 label deploy --all -n staging team=core --dry-run=server -o yaml\n"
	  "  v6 label pod web tier=front --resource-version 4711\n"
	  "  v6 label -f web.yaml -f manifests/ -R tier=front\n", false },
	{ "annotate", cli_annotate,
	  "v6 annotate KIND/NAME... | KIND NAME... | KIND (-l SEL | --all) | -f FILE... KEY=VALUE... "
	  "KEY-... [flags]",
	  "Set or remove annotations of objects",
	  "Set (KEY=VALUE, the value may hold '=') or remove (KEY-) annotations of\n"
	  "objects, as kubectl annotate does. Changing an annotation that already has\n"
	  "another value needs --overwrite (kubernetes.io/change-cause excepted). Keys\n"
	  "are checked by the server as label keys are. Each object gets one merge\n"
	  "patch; --resource-version makes it fail (Conflict) when the object changed\n"
	  "since. Prints \"KIND/NAME annotated\".",
	  "filename recursive namespace all-namespaces selector all overwrite resource-version "
	  "dry-run output",
	  "  v6 annotate deploy/web owner=team-a\n"
	  "  v6 annotate deploy/web owner=team-b --overwrite\n"
	  "  v6 annotate deploy/web owner-\n"
	  "  v6 annotate pods -l app=web note='restarted by hand' -o json\n"
	  "  v6 annotate -f - owner=team-a < web.yaml\n", false },
	{ "autoscale", cli_autoscale,
	  "v6 autoscale KIND/NAME | KIND NAME --max M [--min N] [--cpu-percent P] [flags]",
	  "Create a HorizontalPodAutoscaler for a deployment, replica set or stateful set",
	  "Create an autoscaling/v2 HorizontalPodAutoscaler that keeps the target's\n"
	  "average CPU utilization (percent of requests) at --cpu-percent, with\n"
	  "between --min and --max replicas, as kubectl autoscale does.",
	  "min max cpu-percent name namespace dry-run",
	  "  v6 autoscale deploy/web --min 2 --max 10 --cpu-percent 50\n"
	  "  v6 autoscale rollout web --max 5\n", false },
	{ "app", cli_app, "v6 app get|sync|diff|history|rollback NAME [ID] [flags]",
	  "Show, sync, diff and roll back Argo CD Applications",
	  "Manage argoproj.io Applications as the argocd CLI does:\n"
	  "  get       source, sync and health status, and every resource\n"
	  "  sync      sync now (--prune deletes what git no longer has); waits for\n"
	  "            the operation, exit 1 when it fails; --dry-run[=server] prints\n"
	  "            what it would create, configure or prune and changes nothing\n"
	  "  diff      the live state against git for each out-of-sync resource\n"
	  "            (diff -u); exit 1 when something differs\n"
	  "  history   the synced revisions with their ids\n"
	  "  rollback  sync the revision of history ID (default: the previous one);\n"
	  "            auto-sync must be off",
	  "namespace timeout prune output dry-run",
	  "  v6 app get guestbook -n argocd\n  v6 app sync guestbook --prune\n"
	  "  v6 app sync guestbook --dry-run=server\n"
	  "  v6 app get guestbook -o json | jq -r .status.sync.status\n"
	  "  v6 app diff guestbook\n  v6 app history guestbook\n"
	  "  v6 app rollback guestbook 1\n", false },
	{ "top", cli_top, "v6 top pods [NAME] [flags]",
	  "Show CPU and memory use of pods",
	  "Show the CPU (cores) and memory (bytes) use of pods, from the\n"
	  "metrics.k8s.io API.",
	  "namespace all-namespaces selector containers sort-by no-headers",
	  "  v6 top pods\n  v6 top pods -A --sort-by memory\n"
	  "  v6 top pods -l app=web --containers\n", false },
	{ "exec", cli_exec, "v6 exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]",
	  "Run a command in a container",
	  "Run a command in a running container of a pod: inside it for runc pods\n"
	  "(runc exec: the container's env, working dir and user), with the\n"
	  "container's env, working dir and mount namespace for process pods. Its\n"
	  "stdout and stderr are copied here; v6 exits with the command's exit code.\n"
	  "-i streams stdin to it; -t runs it on a terminal (this one in raw mode\n"
	  "while it runs, its size followed). Over the WebSocket kubectl uses\n"
	  "(v5.channel.k8s.io).",
	  "container stdin tty namespace",
	  "  v6 exec web-7d9c-x2k4p -- ls /\n"
	  "  v6 exec web-7d9c-x2k4p -c sidecar -- env\n"
	  "  echo hi | v6 exec -i web-7d9c-x2k4p -- cat\n", false },
	{ "attach", cli_attach, "v6 attach POD [-c CONTAINER] [-i]",
	  "Attach to the running main process of a container",
	  "Join a running container's main process, as kubectl attach does: what it\n"
	  "writes to stdout and stderr from now on is copied here until it exits\n"
	  "(exit 0) or you interrupt; -i sends stdin to it, for containers started\n"
	  "with stdin: true (for others it is dropped). V6 starts containers without\n"
	  "a terminal, so -t says so and goes on without one. Over the WebSocket\n"
	  "kubectl uses (v5.channel.k8s.io); needs create on pods/attach.",
	  "container stdin tty namespace",
	  "  v6 attach web-7d9c-x2k4p\n"
	  "  v6 attach -i repl -c shell\n", false },
	{ "port-forward", cli_port_forward, "v6 port-forward TARGET [LOCAL:]REMOTE...",
	  "Forward local ports to a pod",
	  "Listen on 127.0.0.1:LOCAL (0 or empty: a free port) and forward each\n"
	  "connection to REMOTE in the pod: inside its network namespace for runc\n"
	  "pods on the pod network, at its own address for process pods. TARGET is\n"
	  "a pod (NAME or pod/NAME), or svc/NAME or deploy/NAME, for which a running\n"
	  "pod of their selector is chosen (a Service port maps to its targetPort).\n"
	  "Runs until interrupted. Needs create on pods/portforward.",
	  "namespace",
	  "  v6 port-forward pod/web-7d9c-x2k4p 8080:8080\n"
	  "  v6 port-forward svc/web :80\n", false },
	{ "image", cli_image, "v6 image ls | pull REF | rm REF... | import FILE [flags]",
	  "List, pull, remove and import the node's container images",
	  "Manage the node's image store, as crictl does for a kubelet:\n"
	  "  ls       the images complete in the store\n"
	  "  pull     pull REF from its registry (nginx = docker.io/library/nginx:latest)\n"
	  "  rm       remove images and the layers no other image uses (an image a\n"
	  "           pod uses is refused)\n"
	  "  import   load an OCI layout tar (skopeo copy ... oci-archive:FILE:REF) or a\n"
	  "           docker-archive tar; FILE is read by the server, on its machine",
	  "output no-headers",
	  "  v6 image pull nginx:1.25\n  v6 image ls\n"
	  "  v6 image import app.tar\n  v6 image rm docker.io/library/nginx:1.25\n", false },
	{ "env", cli_env, "v6 env ls [-o json|yaml]",
	  "Show the environments, their policies and how their workloads differ",
	  "Environments are namespaces labelled environment.v6.dev/name (dev, test,\n"
	  "staging, prod, dr; docs/environments.md). Lists each with its namespace,\n"
	  "its policy (prod requires probes, limits and two replicas unless its\n"
	  "annotations say otherwise), its image policy, its ResourceQuotas and\n"
	  "LimitRanges, the environment it takes promotions from and its workloads;\n"
	  "then, for each Deployment, StatefulSet and Rollout, its replicas, every\n"
	  "container's image and env and the data of the ConfigMaps it uses, per\n"
	  "environment, and whether they are the same.",
	  "output", "  v6 env ls\n  v6 env ls -o json\n", false },
	{ "promote", cli_promote, "v6 promote KIND/NAME --from ENV --to ENV [--wait] "
	  "[--dry-run=server]",
	  "Release the exact template of one environment into the next",
	  "Copies the pod template of a Deployment, StatefulSet or Rollout from one\n"
	  "environment (a namespace labelled environment.v6.dev/name, or a namespace\n"
	  "name) to another: images pinned to the digests the source runs, the\n"
	  "ConfigMaps it names copied; the target keeps its replicas and strategy,\n"
	  "which rolls the change out (canary, blue-green, rolling). Only along the\n"
	  "chain dev > test > staging > prod > dr, or as the target's annotation\n"
	  "environment.v6.dev/promote-from allows. When an Application syncs the\n"
	  "target, the images are committed to its git branch instead (a\n"
	  "kustomization's images: or the manifest's image lines), pushed, and the\n"
	  "Application syncs them (docs/environments.md). --wait follows the rollout\n"
	  "(until --timeout, default 5m). --dry-run prints the diff it would make\n"
	  "(the target's template and ConfigMaps, or the files of the git commit)\n"
	  "and writes nothing: client sends nothing, server has the API check the\n"
	  "writes without storing them; git is never pushed.",
	  "from to wait timeout dry-run",
	  "  v6 promote deploy/web --from staging --to prod --wait\n"
	  "  v6 promote deploy/web --from staging --to prod --dry-run=server\n", false },
	{ "addon", cli_addon, "v6 addon ls | enable NAME | disable NAME [--purge]",
	  "Run components of the platform as V6 workloads (the observability stack)",
	  "Addons are components V6 runs as its own workloads in the namespace\n"
	  "v6-system, configured to work with it:\n"
	  "  observability  Debian's Prometheus and Alertmanager (process runtime, a\n"
	  "                 volume each): Prometheus scrapes what V6's discovery lists\n"
	  "                 (/v6/sd/prometheus), loads V6's rule pack and every\n"
	  "                 PrometheusRule, and alerts the Alertmanager. Without\n"
	  "                 --prometheus-url, V6 reloads this Prometheus's rules.\n"
	  "enable applies the objects again (their generated configs too); disable\n"
	  "deletes them and keeps the data volumes unless --purge is given.\n"
	  "--dry-run[=server|client]: server has the API check every write (admission\n"
	  "included) and store nothing, printing what it would change; client sends\n"
	  "nothing.",
	  "purge dry-run",
	  "  v6 addon enable observability\n  v6 addon ls\n"
	  "  v6 addon disable observability --purge\n"
	  "  v6 addon enable observability --dry-run=server\n", false },
	{ "silence", cli_silence, "v6 silence create|ls|expire [flags]",
	  "Silence alerts in Alertmanager, list and expire silences",
	  "Manage Alertmanager's silences through the server (--alertmanager-url),\n"
	  "as amtool silence does:\n"
	  "  create   silence the alerts every matcher matches (--matcher, or\n"
	  "           NAME=VALUE arguments) for --duration, saying why (--comment)\n"
	  "  ls       the silences: ID, state, end, author, matchers, comment\n"
	  "  expire   end silences now, by ID\n"
	  "create and expire take --dry-run[=server|client]: server checks the\n"
	  "silence (matchers, duration, comment; the silence to expire exists and\n"
	  "is not expired) and reaches Alertmanager without writing to it; client\n"
	  "sends nothing.\n"
	  "Firing alerts: 'v6 get alerts', 'v6 describe alert NAME'.",
	  "matcher duration comment all output no-headers dry-run",
	  "  v6 silence create -m alertname=V6ServiceErrorBudgetBurn -m namespace=shop \\\n"
	  "      --duration 2h --comment 'fix deploying'\n"
	  "  v6 silence ls\n  v6 silence expire 3f1e0c2a-...\n"
	  "  v6 silence expire 3f1e0c2a-... --dry-run=server\n", false },
	{ "events", cli_events, "v6 events [flags]",
	  "List events, the latest last",
	  "List events, oldest first; the same as 'v6 get events'.",
	  "namespace all-namespaces field-selector watch output no-headers",
	  "  v6 events\n  v6 events -A --field-selector type=Warning\n"
	  "  v6 events --field-selector involvedObject.name=web -w\n", false },
	{ "kubeconfig", cli_kubeconfig, "v6 kubeconfig [--out FILE] [--data-dir DIR] [--server URL]",
	  "Print or write the admin kubeconfig for kubectl and v6",
	  "Print (or write with --out, mode 0600) a kubeconfig for the admin identity\n"
	  "(CN v6-admin, O system:masters) of the server whose data directory this is:\n"
	  "the server from DIR/server.address (or --server), the CA and the admin client\n"
	  "certificate from DIR/pki, all inline. kubectl and v6 both use it.",
	  "data-dir out",
	  "  v6 kubeconfig --out ~/.kube/config\n"
	  "  v6 kubeconfig --data-dir /tmp/v6 > v6.kubeconfig && kubectl --kubeconfig "
	  "v6.kubeconfig get pods\n", false },
	{ "certs", cli_certs, "v6 certs status [--data-dir DIR] | v6 certs rotate",
	  "Show V6's certificates, or renew them now on the running server",
	  "status  each certificate of DIR/pki: subject, NotAfter, days left, SANs\n"
	  "rotate  the running server issues a new serving and admin certificate now\n"
	  "        and serves the new one to new connections (open ones keep theirs);\n"
	  "        it renews them by itself once a third of their lifetime is left",
	  "data-dir no-headers",
	  "  v6 certs status\n  v6 certs rotate\n", false },
	{ "help", cli_help, "v6 help [VERB]",
	  "Help about any verb",
	  "Show help for v6 or for one verb.",
	  "",
	  "  v6 help apply\n", false },
	{ "server", NULL, "v6 server [--data-dir DIR] [--listen ADDR:PORT] [flags]",
	  "Run the V6 control plane (API server, store, controllers)",
	  "Run the V6 control plane (API server, store, controllers). Its flags are\n"
	  "described by 'v6 server --help'.",
	  "",
	  "  v6 server --data-dir /var/lib/v6 --listen 127.0.0.1:6443\n", true },
	{ "reset", NULL, "v6 reset [--data-dir DIR] [--wipe] [--timeout DURATION]",
	  "Stop the server, proxy and pods of a data directory; --wipe removes it",
	  "Stop everything a data directory started, as k3s-killall.sh does: the\n"
	  "server, the proxy, every pod's containers and shims (workloads outlive\n"
	  "the server by design). With --wipe the directory is removed as well.\n"
	  "Its flags are described by 'v6 reset --help'.",
	  "",
	  "  v6 reset\n  v6 reset --data-dir /tmp/v6 --wipe\n", true },
	{ "shim", NULL, "v6 shim DIR",
	  "Supervise one container (internal: started by the node agent)",
	  "Supervise one container: run it, copy its output to its log file and\n"
	  "record its exit status. The node agent of 'v6 server' starts one per\n"
	  "container; it is not meant to be run by hand.",
	  "",
	  "  v6 shim /var/lib/v6/node/containers/POD_UID/web-0\n", true },
	{ "proxy", NULL, "v6 proxy --state-dir DIR [--admin ADDR:PORT]",
	  "The data plane: serve Services and Gateways (internal: started by the server)",
	  "Run V6's data plane: the HTTP/1.1 and TCP proxy that serves Service\n"
	  "addresses, NodePorts and Gateway listeners from the routing snapshots the\n"
	  "server sends over DIR/control.sock. 'v6 server' starts one and keeps it\n"
	  "running; it goes on serving its last snapshot while the server is down.\n"
	  "Its flags are described by 'v6 proxy --help'.",
	  "",
	  "  v6 proxy --state-dir /var/lib/v6/proxy --admin 127.0.0.1:9901\n", true },
	{ "testapp", NULL, "v6 testapp [flags]",
	  "The test workload: an HTTP server with configurable faults",
	  "The test workload shipped with V6 (like Kubernetes' agnhost): an HTTP\n"
	  "server whose version, port, latency, error rate, crashes, probe answers\n"
	  "and SIGTERM handling are set by flags or env. Its flags are described by\n"
	  "'v6 testapp --help'.",
	  "",
	  "  v6 testapp --port 8080 --version-string v2\n", true },
};

static const char global_flags[] = "server kubeconfig help";
/* Verbs on local files (DATA/pki): they connect by themselves, if at all. */
static const char local_verbs[] = "kubeconfig certs";

int
cli_run_sub(const struct cli_opts *o, const struct cli_sub *subs, size_t n,
    const char *names)
{
	if (o->nargs == 0)
		return cli_err("v6 %s needs a subcommand: %s", o->verb, names);
	for (size_t i = 0; i < n; i++)
		if (strcmp(o->args[0], subs[i].name) == 0)
			return subs[i].run(o);
	return cli_err("unknown subcommand \"%s\" for \"v6 %s\" (%s)", o->args[0], o->verb,
	    names);
}

int
cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

int
cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -EINVAL;
}

int64_t
cli_timeout_ms(const struct cli_opts *o, int64_t dflt)
{
	int64_t ms;
	if (o->timeout == NULL)
		return dflt;
	if (duration_parse(o->timeout, &ms) < 0) {
		cli_err("invalid --timeout \"%s\": use a duration such as 30s or 2m", o->timeout);
		return -1;
	}
	return ms;
}

static const struct cli_verb *
verb_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; *p; ) {
		const char *sp = strchr(p, ' ');
		size_t len = sp ? (size_t)(sp - p) : strlen(p);
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len + (sp ? 1 : 0);
	}
	return false;
}

/* ---- help ------------------------------------------------------------- */

static void
help_flag(FILE *f, const struct cli_flag *fl)
{
	char left[80];
	int n = fl->shorthand ? snprintf(left, sizeof left, "  -%c, --%s", fl->shorthand, fl->name)
	    : snprintf(left, sizeof left, "      --%s", fl->name);
	if (fl->arg && n > 0 && (size_t)n < sizeof left)
		snprintf(left + n, sizeof left - (size_t)n, fl->type == FLAG_OPT ? "[=%s]" : " %s",
		    fl->arg);
	fprintf(f, "%-36s %s\n", left, fl->help);
}

static void
help_verb(FILE *f, const struct cli_verb *v)
{
	fprintf(f, "%s\n\nUsage:\n  %s\n", v->desc, v->usage);
	if (v->flags[0]) {
		fputs("\nFlags:\n", f);
		for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
			if (word_in(v->flags, flags[i].name))
				help_flag(f, &flags[i]);
	}
	fputs("\nGlobal flags:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (word_in(global_flags, flags[i].name))
			help_flag(f, &flags[i]);
	fprintf(f, "\nExamples:\n%s", v->examples);
}

static void
help_top(FILE *f)
{
	fputs("v6 runs and controls the V6 deployment platform: one binary that is the\n"
	    "control plane (v6 server) and a kubectl-like client speaking the\n"
	    "Kubernetes REST API.\n\nUsage:\n  v6 VERB [ARGS] [flags]\n\nVerbs:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!verbs[i].program)
			fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fputs("\nPrograms V6 runs:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (verbs[i].program)
			fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fputs("\nGlobal flags:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (word_in(global_flags, flags[i].name))
			help_flag(f, &flags[i]);
	fputs("\nUse 'v6 VERB --help' or 'v6 help VERB' for a verb's flags and examples.\n", f);
}

static int
cli_help(struct cli_opts *o)
{
	if (o->nargs == 0) {
		help_top(stdout);
		return 0;
	}
	const struct cli_verb *v = verb_find(o->args[0]);
	if (v == NULL) {
		cli_err("unknown command \"%s\" for \"v6\"", o->args[0]);
		fputs("See 'v6 --help' for usage.\n", stderr);
		return 1;
	}
	help_verb(stdout, v);
	return 0;
}

static int
cli_events(struct cli_opts *o)
{
	static const char *events[] = { "events" };
	if (o->nargs)
		return cli_err("unexpected argument \"%s\": 'v6 events' takes only flags "
		    "(see 'v6 events --help')", o->args[0]);
	o->args = events;
	o->nargs = 1;
	return cli_get(o);
}

/* ---- flag parsing ----------------------------------------------------- */

static const struct cli_flag *
flag_long(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (strlen(flags[i].name) == n && strncmp(flags[i].name, name, n) == 0)
			return &flags[i];
	return NULL;
}

/* The flag of shorthand c, preferring one that verb v (may be NULL) accepts. */
static const struct cli_flag *
flag_short(char c, const struct cli_verb *v)
{
	const struct cli_flag *any = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		if (flags[i].shorthand != c)
			continue;
		if (v == NULL || word_in(v->flags, flags[i].name) ||
		    word_in(global_flags, flags[i].name))
			return &flags[i];
		if (any == NULL)
			any = &flags[i];
	}
	return any;
}

_Static_assert(ARRAY_SIZE(flags) <= 64, "cli_opts.given has one bit per flag");

bool
cli_flag_given(const struct cli_opts *o, const char *name)
{
	const struct cli_flag *fl = flag_long(name, strlen(name));
	BUG_ON(fl == NULL);
	return (o->given >> (fl - flags)) & 1;
}

static bool
takes_value(const struct cli_flag *fl)
{
	return fl->type == FLAG_STR || fl->type == FLAG_LIST || fl->type == FLAG_INT;
}

static int
parse_int(const char *val, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = val ? strtoll(val, &end, 10) : 0;
	if (val == NULL || *val == '\0' || *end != '\0' || errno)
		return -EINVAL;
	*out = n;
	return 0;
}

struct parse {
	struct cli_opts *o;
	const struct cli_verb *v;	/* the verb, once known, for shorthands */
	const char **pos;	/* positionals, verb included */
	size_t npos;
	const struct cli_flag *seen[64];
	size_t nseen;
	char *bad;		/* the offending flag, for the message */
	const char *bad_msg;
};

static int
flag_set(struct parse *p, const struct cli_flag *fl, const char *val)
{
	char *base = (char *)p->o + fl->off;
	if (p->nseen < ARRAY_SIZE(p->seen))
		p->seen[p->nseen++] = fl;
	p->o->given |= UINT64_C(1) << (fl - flags);
	switch (fl->type) {
	case FLAG_INT:
		return parse_int(val, (int64_t *)(void *)base);
	case FLAG_BOOL:
		if (val == NULL || strcmp(val, "true") == 0)
			*(bool *)base = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)base = false;
		else
			return -EINVAL;
		return 0;
	case FLAG_STR:
	case FLAG_OPT:
		*(const char **)base = val ? val : fl->bare;
		return 0;
	case FLAG_LIST: {	/* const char **list; size_t n; in this order */
		BUG_ON(fl->off != OFF(files) && fl->off != OFF(matchers));
		const char ***list = (const char ***)((char *)p->o + fl->off);
		size_t *n = (size_t *)((char *)p->o + fl->off + sizeof(const char **));
		*list = xrealloc(*list, (*n + 1) * sizeof **list);
		(*list)[(*n)++] = val;
		return 0;
	}
	}
	return -EINVAL;
}

/* Parses one "--name[=v]" or "-x[v]" at argv[*i]; advances *i past a
 * separate value. */
static int
parse_flag(struct parse *p, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const struct cli_flag *fl;
	const char *val = NULL;
	if (a[1] == '-') {
		const char *eq = strchr(a + 2, '=');
		size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		fl = flag_long(a + 2, n);
		val = eq ? eq + 1 : NULL;
		if (fl == NULL) {
			p->bad = xstrndup(a, eq ? (size_t)(eq - a) : strlen(a));
			return -ENOENT;
		}
	} else {
		fl = flag_short(a[1], p->v);
		if (fl == NULL) {
			p->bad = xasprintf("-%c", a[1]);
			return -ENOENT;
		}
		if (a[2] && fl->type == FLAG_BOOL) {
			/* -Aw: a run of boolean shorthands */
			for (const char *c = a + 1; *c; c++) {
				const struct cli_flag *b = flag_short(*c, p->v);
				if (b == NULL || b->type != FLAG_BOOL) {
					p->bad = xasprintf("-%c", *c);
					return -ENOENT;
				}
				flag_set(p, b, NULL);
			}
			return 0;
		}
		val = a[2] ? a + 2 + (a[2] == '=') : NULL;
	}
	if (takes_value(fl) && val == NULL) {
		if (*i + 1 >= argc) {
			p->bad = xasprintf("--%s", fl->name);
			p->bad_msg = "flag needs an argument";
			return -EINVAL;
		}
		val = argv[++*i];
	}
	if (flag_set(p, fl, val) < 0) {
		p->bad = xasprintf("--%s", fl->name);
		p->bad_msg = "invalid value for flag";
		return -EINVAL;
	}
	return 0;
}

static int
parse_args(struct parse *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (++i < argc)
				p->pos[p->npos++] = argv[i];
			break;
		}
		if (a[0] == '-' && a[1] != '\0') {
			int r = parse_flag(p, argc, argv, &i);
			if (r < 0)
				return r;
		} else {
			p->pos[p->npos++] = a;
		}
	}
	return 0;
}

int
cli_find_verb(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			return i;
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? i + 1 : -1;
		const struct cli_flag *fl = a[1] == '-' ? (strchr(a, '=') ? NULL
		    : flag_long(a + 2, strlen(a + 2))) : (a[2] ? NULL : flag_short(a[1], NULL));
		if (fl && takes_value(fl))
			i++;
	}
	return -1;
}

static int
usage_error(const char *verb, const char *msg, const char *what)
{
	cli_err("%s: %s", msg, what);
	if (verb)
		fprintf(stderr, "See 'v6 %s --help' for usage.\n", verb);
	else
		fputs("See 'v6 --help' for usage.\n", stderr);
	return 1;
}

static int
check_flags(const struct parse *p, const struct cli_verb *v)
{
	for (size_t i = 0; i < p->nseen; i++) {
		const char *name = p->seen[i]->name;
		if (word_in(global_flags, name) || word_in(v->flags, name))
			continue;
		char what[64];
		snprintf(what, sizeof what, "--%s", name);
		return usage_error(v->name, "unknown flag", what);
	}
	return 0;
}

int
cli_run_connected(struct cli_opts *o, int (*run)(struct cli_opts *))
{
	struct cli_conn conn;
	if (cli_conn_resolve(o, &conn) < 0)
		return 1;
	cli_client_init(&conn);
	int rc = run(o);
	cli_client_close();
	return rc;
}

static int
run_verb(struct parse *p)
{
	struct cli_opts *o = p->o;
	if (p->npos == 0) {
		help_top(stdout);
		return 0;
	}
	const struct cli_verb *v = verb_find(p->pos[0]);
	if (v == NULL) {
		cli_err("unknown command \"%s\" for \"v6\"", p->pos[0]);
		fputs("See 'v6 --help' for usage.\n", stderr);
		return 1;
	}
	if (check_flags(p, v))
		return 1;
	if (o->help) {
		help_verb(stdout, v);
		return 0;
	}
	o->verb = v->name;
	o->args = p->pos + 1;
	o->nargs = p->npos - 1;
	if (word_in(local_verbs, v->name))
		return v->run(o);
	return cli_run_connected(o, v->run);
}

int
cli_main(int argc, char **argv)
{
	int vi = cli_find_verb(argc, argv);
	const struct cli_verb *v = vi > 0 ? verb_find(argv[vi]) : NULL;
	BUG_ON(v && v->program);	/* main.c runs those */

	struct cli_opts o = { 0 };
	struct parse p = { .o = &o, .v = v };
	p.pos = xcalloc((size_t)argc + 1, sizeof *p.pos);
	int rc;
	if (parse_args(&p, argc, argv) < 0) {
		rc = usage_error(v ? v->name : NULL, p.bad_msg ? p.bad_msg : "unknown flag",
		    p.bad);
	} else {
		rc = run_verb(&p);
	}
	free(p.bad);
	free(p.pos);
	free(o.files);
	free(o.matchers);
	return rc;
}
