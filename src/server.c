/* server.c — `v6 server`: parses the server's flags, opens the store, starts
 * the API server and the controllers on one libuv loop, and shuts them down
 * in order on SIGTERM / SIGINT. */
#include "server.h"
#include "analysis.h"
#include "api.h"
#include "ctrl.h"
#include "log.h"
#include "node.h"
#include "obs_traffic.h"
#include "node_pod.h"
#include "node_runtime.h"
#include "obj_schema.h"
#include "proxy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct server_opts {
	char *data_dir;
	char *host;
	int port;
	int64_t journal_limit;
	size_t max_body;
	int max_backoff_s;
	int64_t log_max_bytes;		/* --container-log-max-size; 0: the runtime's default */
	int log_max_files;		/* --container-log-max-files (live file included) */
	char *node_name;
	unsigned disabled;	/* PART_* bits turned off with --controllers */
	int64_t traffic_period_ms;	/* --traffic-period; 0: obs_traffic's default */
};

/* The parts --controllers can turn off, as kube-controller-manager's
 * --controllers does ("*,-deployment"). Tests that play a controller's role
 * themselves use it; so can an edge box that never runs Deployments. */
enum { PART_GC = 1, PART_REPLICASET = 2, PART_DEPLOYMENT = 4, PART_NODE = 8,
	PART_ENDPOINTS = 16, PART_PROXY = 32, PART_ROLLOUT = 64, PART_ANALYSIS = 128,
	PART_STATEFULSET = 256, PART_DAEMONSET = 512, PART_GWSTATUS = 1024 };
#define PART_ALL (PART_GC | PART_REPLICASET | PART_DEPLOYMENT | PART_NODE | \
	PART_ENDPOINTS | PART_PROXY | PART_ROLLOUT | PART_ANALYSIS | PART_STATEFULSET | \
	PART_DAEMONSET | PART_GWSTATUS)
static const struct { const char *name; unsigned bit; } parts[] = {
	{ "garbagecollector", PART_GC },
	{ "replicaset", PART_REPLICASET },
	{ "deployment", PART_DEPLOYMENT },
	{ "node", PART_NODE },
	{ "endpoints", PART_ENDPOINTS },
	{ "proxy", PART_PROXY },
	{ "rollout", PART_ROLLOUT },
	{ "analysis", PART_ANALYSIS },
	{ "statefulset", PART_STATEFULSET },
	{ "daemonset", PART_DAEMONSET },
	{ "gwstatus", PART_GWSTATUS },
};

static int
parse_controllers(const char *list, unsigned *disabled)
{
	char *copy = xstrdup(list), *save = NULL;
	int rc = 0;
	*disabled = PART_ALL;
	for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
		bool off = *t == '-';
		const char *name = t + off;
		if (strcmp(name, "*") == 0 && !off) {
			*disabled = 0;
			continue;
		}
		rc = -EINVAL;
		for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
			if (strcmp(name, parts[i].name) == 0) {
				*disabled = off ? *disabled | parts[i].bit : *disabled & ~parts[i].bit;
				rc = 0;
			}
	}
	free(copy);
	return rc;
}

struct server {
	uv_loop_t *loop;
	struct store *st;
	struct api *api;
	struct ctrl_gc *gc;
	struct ctrl_replicaset *rs;
	struct ctrl_deployment *deploy;
	struct ctrl_rollout *rollout;
	struct ctrl_daemonset *daemonset;
	struct ctrl_statefulset *statefulset;
	struct ctrl_endpoints *eps;
	struct ctrl_routes *routes;
	struct ctrl_gwstatus *gwstatus;
	struct proxy_feed *feed;
	struct obs_traffic *traffic;
	struct ctrl_analysis *analysis;
	struct node *node;
	char *node_state, *proxy_state;
	uv_signal_t sigterm, sigint;
};

static const struct server_flag {
	const char *name;
	const char *arg;
	const char *help;
} server_flags[] = {
	{ "--data-dir", "DIR", "where the store lives (default $V6_DATA_DIR, else "
	    "/var/lib/v6 as root, else ~/.local/share/v6)" },
	{ "--listen", "ADDR:PORT", "address of the API server (default 127.0.0.1:6443; "
	    "[::1]:6443 for IPv6; port 0 picks a free port, written to DIR/server.address)" },
	{ "--log-level", "LEVEL", "debug, info, warn or error (default info)" },
	{ "--journal-limit", "N", "watch events kept for resuming watches (default 100000)" },
	{ "--max-body-bytes", "N", "largest request body accepted (default 3145728)" },
	{ "--max-backoff", "DURATION", "node-wide CrashLoopBackOff cap, lower for edge "
	    "devices (default 5m, at least 1s)" },
	{ "--node-name", "NAME", "name of this node (default: the host name)" },
	{ "--container-log-max-size", "QUANTITY", "a container's log file is rotated past "
	    "this size, as kubelet's containerLogMaxSize (default 10Mi, at least 4Ki)" },
	{ "--container-log-max-files", "N", "log files kept per container, the live one "
	    "included, as kubelet's containerLogMaxFiles (default 3, at least 2)" },
	{ "--controllers", "LIST", "parts to run: * for all, -NAME to turn one off; names: "
	    "garbagecollector, replicaset, deployment, rollout, analysis, statefulset, "
	    "daemonset, endpoints, gwstatus, node, proxy (default *)" },
	{ "--traffic-period", "DURATION", "how often the proxy's traffic figures are sampled "
	    "for ServiceTraffic and canary analysis (default 5s, at least 200ms)" },
	{ "--pod-cidr", "CIDR", "loopback range pod addresses come from, /16 to /24 inside "
	    "127.0.0.0/8 but not 127.0.0.0/16 (default 127.1.0.0/16)" },
	{ "--service-cidr", "CIDR", "loopback range Service cluster IPs come from, like "
	    "--pod-cidr (default " API_SERVICE_CIDR "); give each server on a machine its own" },
	{ "--help", NULL, "show this help" },
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: v6 server [flags]\n\n"
	    "Runs the V6 control plane: the Kubernetes-style API server, the object\n"
	    "store (SQLite, in DIR/v6.db) and the controllers. Logs are JSON lines on\n"
	    "stderr. Stop it with SIGTERM or Ctrl-C; workloads are not affected.\n\nFlags:\n");
	for (size_t i = 0; i < ARRAY_SIZE(server_flags); i++) {
		char left[64];
		snprintf(left, sizeof left, "%s%s%s", server_flags[i].name,
		    server_flags[i].arg ? " " : "", server_flags[i].arg ? server_flags[i].arg : "");
		fprintf(f, "  %-28s %s\n", left, server_flags[i].help);
	}
	fprintf(f, "\nExample:\n  v6 server --data-dir /tmp/v6 --listen 127.0.0.1:6443\n");
}

static char *
default_data_dir(void)
{
	const char *env = getenv("V6_DATA_DIR");
	if (env && *env)
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/v6");
	const char *home = getenv("HOME");
	return xasprintf("%s/.local/share/v6", home ? home : ".");
}

/* "127.0.0.1:6443", "[::1]:6443", ":6443". */
static int
parse_listen(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || p < 0 || p > 65535)
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	*host = hl ? xstrndup(h, hl) : xstrdup("0.0.0.0");
	*port = (int)p;
	return 0;
}

static int
parse_opts(int argc, char **argv, struct server_opts *o)
{
	o->port = 6443;
	o->host = xstrdup("127.0.0.1");
	o->max_body = 3u << 20;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		const char *val = NULL;
		char name[64];
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof name, "%s", a);
			if (i + 1 < argc)
				val = argv[i + 1], i++;
		}
		if (!val) {
			fprintf(stderr, "error: flag needs an argument: %s\n", name);
			return -EINVAL;
		}
		if (strcmp(name, "--data-dir") == 0) {
			free(o->data_dir);
			o->data_dir = xstrdup(val);
		} else if (strcmp(name, "--listen") == 0) {
			free(o->host);
			if (parse_listen(val, &o->host, &o->port) < 0) {
				fprintf(stderr, "error: --listen: expected ADDR:PORT, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--log-level") == 0) {
			enum log_level lvl;
			if (log_parse_level(val, &lvl) < 0) {
				fprintf(stderr, "error: --log-level: unknown level \"%s\"\n", val);
				return -EINVAL;
			}
			log_set_level(lvl);
		} else if (strcmp(name, "--journal-limit") == 0) {
			o->journal_limit = strtoll(val, NULL, 10);
		} else if (strcmp(name, "--max-backoff") == 0) {
			int64_t ms;
			if (duration_parse(val, &ms) < 0 || ms < 1000 || ms > 86400000) {
				fprintf(stderr, "error: --max-backoff: expected a duration between 1s "
				    "and 24h, got \"%s\"\n", val);
				return -EINVAL;
			}
			o->max_backoff_s = (int)(ms / 1000);
		} else if (strcmp(name, "--controllers") == 0) {
			if (parse_controllers(val, &o->disabled) < 0) {
				fprintf(stderr, "error: --controllers: unknown part in \"%s\" (known: "
				    "*, garbagecollector, replicaset, deployment, endpoints, node, proxy)\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--traffic-period") == 0) {
			if (duration_parse(val, &o->traffic_period_ms) < 0 ||
			    o->traffic_period_ms < 200 || o->traffic_period_ms > 3600000) {
				fprintf(stderr, "error: --traffic-period: expected a duration between "
				    "200ms and 1h, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--container-log-max-size") == 0) {
			double b;
			if (quantity_parse(val, &b) < 0 || b < 4096 || b > 1e12) {
				fprintf(stderr, "error: --container-log-max-size: expected a size "
				    "between 4Ki and 1T, got \"%s\"\n", val);
				return -EINVAL;
			}
			o->log_max_bytes = (int64_t)b;
		} else if (strcmp(name, "--container-log-max-files") == 0) {
			char *end;
			long nf = strtol(val, &end, 10);
			if (*end || nf < 2 || nf > 64) {
				fprintf(stderr, "error: --container-log-max-files: expected 2..64, "
				    "got \"%s\"\n", val);
				return -EINVAL;
			}
			o->log_max_files = (int)nf;
		} else if (strcmp(name, "--node-name") == 0) {
			free(o->node_name);
			o->node_name = xstrdup(val);
		} else if (strcmp(name, "--pod-cidr") == 0 || strcmp(name, "--service-cidr") == 0) {
			bool pod = strcmp(name, "--pod-cidr") == 0;
			if ((pod ? nipam_set_cidr(val) : api_alloc_set_cidr(val)) < 0) {
				fprintf(stderr, "error: %s: expected a range like 127.5.0.0/16 inside "
				    "127.0.0.0/8 (not 127.0.0.0/16), /16 to /24, got \"%s\"\n", name, val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--max-body-bytes") == 0) {
			o->max_body = (size_t)strtoull(val, NULL, 10);
		} else {
			fprintf(stderr, "error: unknown flag: %s\nSee 'v6 server --help' for usage.\n",
			    name);
			return -EINVAL;
		}
	}
	if (!o->data_dir)
		o->data_dir = default_data_dir();
	return 0;
}

/* The namespaces every cluster has. */
static int
ensure_namespaces(struct api *api)
{
	static const char *const names[] = { "default", "kube-system", "kube-public" };
	const struct kind *k = kind_find_gvk("v1", "Namespace");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		json_t *o = NULL;
		if (store_get(api_store(api), "namespaces", "", names[i], &o) == 0) {
			json_decref(o);
			continue;
		}
		struct api_error err = { 0 };
		json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		    "Namespace", "metadata", "name", names[i]);
		int rc = api_create(api, k, "", ns, 0, NULL, &err);
		if (rc < 0)
			log_error("server", "creating namespace %s: %s", names[i], err.message);
		api_error_clear(&err);
		if (rc < 0)
			return -EIO;
	}
	api_flush(api);
	return 0;
}

/* Stops the parts in the reverse order of their start; containers keep
 * running, to be adopted by the next server. */
static void
server_stop_parts(struct server *s)
{
	if (s->node)
		node_stop(s->node);
	if (s->routes)
		ctrl_routes_stop(s->routes);
	if (s->analysis)
		ctrl_analysis_stop(s->analysis);	/* reads s->traffic */
	s->analysis = NULL;
	if (s->traffic)
		obs_traffic_stop(s->traffic);
	if (s->feed)
		proxy_feed_stop(s->feed);	/* the proxy process keeps serving */
	s->traffic = NULL;
	s->routes = NULL;
	s->feed = NULL;
	if (s->gwstatus)
		ctrl_gwstatus_stop(s->gwstatus);
	s->gwstatus = NULL;
	if (s->eps)
		ctrl_endpoints_stop(s->eps);
	if (s->rollout)
		ctrl_rollout_stop(s->rollout);
	s->rollout = NULL;
	if (s->daemonset)
		ctrl_daemonset_stop(s->daemonset);
	s->daemonset = NULL;
	if (s->statefulset)
		ctrl_statefulset_stop(s->statefulset);
	s->statefulset = NULL;
	if (s->deploy)
		ctrl_deployment_stop(s->deploy);
	if (s->rs)
		ctrl_replicaset_stop(s->rs);
	if (s->gc)
		ctrl_gc_stop(s->gc);
	s->node = NULL;
	s->deploy = NULL;
	s->eps = NULL;
	s->rs = NULL;
	s->gc = NULL;
	if (s->api)
		api_stop(s->api);
	s->api = NULL;
}

/* The node agent's drain hook: a terminating pod leaves the proxy's
 * routing table before it gets SIGTERM (at most 2 s). */
static void
drain_pod_ip(void *arg, const char *ip, void (*done)(void *, bool), void *done_arg)
{
	struct server *s = arg;
	if (!s->routes) {
		done(done_arg, true);
		return;
	}
	ctrl_routes_drain(s->routes, ip, 2000, done, done_arg);
}

/* The Rollout controller's wait for the proxy to route by a write. */
static void
routes_wait(void *arg, int64_t rv, unsigned timeout_ms, void (*cb)(void *, bool),
    void *cb_arg)
{
	struct server *s = arg;
	if (!s->routes) {
		cb(cb_arg, true);
		return;
	}
	ctrl_routes_wait_applied(s->routes, rv, timeout_ms, cb, cb_arg);
}

static int
server_start_parts(struct server *s, const struct server_opts *o)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	s->node_state = xasprintf("%s/node", o->data_dir);
	s->proxy_state = xasprintf("%s/proxy", o->data_dir);
	struct proxy_feed_config pc = { .state_dir = s->proxy_state, .self_exe = exe,
		.admin_address = "127.0.0.1:0" };
	struct node_config nc = { .node_name = o->node_name, .state_dir = s->node_state,
		.self_exe = exe, .backoff_max_s = o->max_backoff_s,
		.log_max_bytes = o->log_max_bytes,
		.log_max_files = o->log_max_files > 0 ? o->log_max_files - 1 : 0,
		.drain = drain_pod_ip, .drain_arg = s };
	int rc;
	unsigned off = o->disabled;
	if ((rc = ensure_namespaces(s->api)) < 0 ||
	    (!(off & PART_GC) && (rc = ctrl_gc_start(s->api, &s->gc)) < 0) ||
	    (!(off & PART_REPLICASET) && (rc = ctrl_replicaset_start(s->api, &s->rs)) < 0) ||
	    (!(off & PART_DEPLOYMENT) && (rc = ctrl_deployment_start(s->api, &s->deploy)) < 0) ||
	    (!(off & PART_ROLLOUT) && (rc = ctrl_rollout_start(s->api, &s->rollout)) < 0) ||
	    (!(off & PART_DAEMONSET) && (rc = ctrl_daemonset_start(s->api, &s->daemonset)) < 0) ||
	    (!(off & PART_STATEFULSET) && (rc = ctrl_statefulset_start(s->api,
	    &s->statefulset)) < 0) ||
	    (!(off & PART_ENDPOINTS) && (rc = ctrl_endpoints_start(s->api, &s->eps)) < 0) ||
	    (!(off & PART_GWSTATUS) && (rc = ctrl_gwstatus_start(s->api, !(off & PART_PROXY),
	    &s->gwstatus)) < 0) ||
	    (!(off & PART_PROXY) && (rc = proxy_feed_start(s->loop, &pc, &s->feed)) < 0) ||
	    (!(off & PART_PROXY) && (rc = ctrl_routes_start(s->api, s->feed, &s->routes)) < 0) ||
	    (!(off & PART_PROXY) && (rc = obs_traffic_start(s->loop, s->api, s->feed,
	    &s->traffic)) < 0) ||
	    (!(off & PART_ANALYSIS) && (rc = ctrl_analysis_start(s->api, s->traffic,
	    &s->analysis)) < 0) ||
	    (!(off & PART_NODE) && (rc = node_start(s->api, &nc, &s->node)) < 0))
		return rc;
	if (s->rollout && s->routes)
		ctrl_rollout_set_routes_wait(s->rollout, routes_wait, s);
	if (s->traffic && o->traffic_period_ms > 0)
		obs_traffic_set_period(s->traffic, (unsigned)o->traffic_period_ms);
	return 0;
}

/* DIR/server.address: "HOST:PORT" the API listens on, written once it
 * listens, so whoever started the server with --listen HOST:0 finds it. */
static void
write_address(const struct server_opts *o, int port)
{
	char *path = xasprintf("%s/server.address", o->data_dir);
	char line[300];
	int n = snprintf(line, sizeof line, "%s:%d\n", o->host, port);
	int rc = file_write_atomic(path, line, (size_t)n, false);
	if (rc < 0)
		log_warn("server", "writing %s: %s", path, strerror(-rc));
	free(path);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct server *s = h->data;
	log_info("server", "received signal %d, shutting down", signum);
	uv_signal_stop(&s->sigterm);
	uv_signal_stop(&s->sigint);
	server_stop_parts(s);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
}

int
server_main(int argc, char **argv)
{
	struct server_opts o = { 0 };
	struct server s = { 0 };
	int rc = 1;
	if (parse_opts(argc, argv, &o) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	s.loop = uv_default_loop();
	int err = store_open(o.data_dir, &s.st);
	if (err < 0) {
		fprintf(stderr, "error: cannot open the store in %s: %s\n", o.data_dir,
		    strerror(-err));
		goto out;
	}
	if (o.journal_limit > 0)
		store_set_journal_limit(s.st, o.journal_limit);
	struct api_config ac = { .listen_host = o.host, .listen_port = o.port,
		.max_body_bytes = o.max_body };
	err = api_start(s.loop, s.st, &ac, &s.api);
	if (err < 0) {
		fprintf(stderr, "error: cannot listen on %s:%d: %s\n", o.host, o.port,
		    uv_strerror(err));
		goto out_store;
	}
	err = server_start_parts(&s, &o);
	if (err < 0) {
		fprintf(stderr, "error: starting the controllers and the node agent failed: %s\n",
		    strerror(-err));
		goto out_api;
	}
	uv_signal_init(s.loop, &s.sigterm);
	uv_signal_init(s.loop, &s.sigint);
	s.sigterm.data = s.sigint.data = &s;
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	log_info("server", "v6 %s serving on %s:%d, data in %s, resourceVersion %lld",
	    V6_VERSION, o.host, api_port(s.api), o.data_dir,
	    (long long)store_current_rv(s.st));
	write_address(&o, api_port(s.api));
	uv_run(s.loop, UV_RUN_DEFAULT);
	rc = 0;
	goto out_store;
out_api:
out_store:
	server_stop_parts(&s);
	uv_run(s.loop, UV_RUN_NOWAIT);
	store_close(s.st);
	uv_loop_close(s.loop);
out:
	free(s.node_state);
	free(s.proxy_state);
	free(o.data_dir);
	free(o.host);
	free(o.node_name);
	return rc;
}
