/* proxy_main.c — `v6 proxy`: the process around the engine (proxy_engine.c).
 * It owns STATE/control.sock (the server's feed sends snapshots there as
 * JSON lines and gets an ack or nack per snapshot), STATE/snapshot.json (the
 * last applied snapshot, applied again at start so a proxy restarted while
 * the server is down still serves), STATE/proxy.pid, STATE/admin.addr and
 * the admin listener (/metrics, /healthz, /snapshot). SIGTERM drains. */
#include "proxy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "proc.h"
#include "node_runtime.h"

#define CTL_MAX_LINE	(256u << 20)	/* one snapshot; a peer past it is cut off */
#define DRAIN_TIMEOUT_MS 30000

struct ctl_conn;

struct proxy {
	uv_loop_t *loop;
	struct proxy_engine *engine;
	char *dir, *sock_path, *snap_path, *pid_path, *admin_path;
	char *admin_host;
	int admin_port;
	json_t *snapshot;		/* the last applied one, NULL before any */
	uint64_t applies, rejects;
	uv_pipe_t ctl;
	ino_t ctl_ino;
	struct ctl_conn *conns;
	struct http_server *admin;
	uv_signal_t sigterm, sigint;
	uv_timer_t drain_timer;
	bool draining, drained;
};

struct ctl_conn {
	struct proxy *p;
	uv_pipe_t pipe;
	struct buf in;
	struct ctl_conn *next, **prevp;
};

struct ctl_write {
	uv_write_t req;
	char data[];
};

/* ---- flags --------------------------------------------------------------- */

static const struct {
	const char *name, *arg, *help;
} proxy_flags[] = {
	{ "--state-dir", "DIR", "control.sock, snapshot.json, proxy.pid (required)" },
	{ "--admin", "ADDR:PORT", "admin listener for /metrics, /healthz, /snapshot "
	    "(default 127.0.0.1:0)" },
	{ "--log-level", "LEVEL", "debug, info, warn or error (default info)" },
	{ "--help", NULL, "show this help" },
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: v6 proxy --state-dir DIR [--admin ADDR:PORT]\n\n"
	    "Runs V6's data plane: the Service and Gateway listeners of the routing\n"
	    "snapshot the server sends on DIR/control.sock. `v6 server` starts and\n"
	    "watches it; it keeps serving its last snapshot while the server is away.\n"
	    "SIGTERM stops accepting, finishes in-flight requests, then exits.\n\nFlags:\n");
	for (size_t i = 0; i < ARRAY_SIZE(proxy_flags); i++) {
		char left[64];
		snprintf(left, sizeof left, "%s%s%s", proxy_flags[i].name,
		    proxy_flags[i].arg ? " " : "", proxy_flags[i].arg ? proxy_flags[i].arg : "");
		fprintf(f, "  %-24s %s\n", left, proxy_flags[i].help);
	}
}

static int
parse_hostport(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	if (colon == NULL || colon == s || colon[1] == '\0')
		return -EINVAL;
	long v = strtol(colon + 1, &end, 10);
	if (*end || v < 0 || v > 65535)
		return -EINVAL;
	*host = xstrndup(s, (size_t)(colon - s));
	*port = (int)v;
	return 0;
}

static int
parse_flags(struct proxy *p, int argc, char **argv)
{
	const char *admin = "127.0.0.1:0";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		char name[64];
		const char *eq = strchr(a, '=');
		snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
		val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
		if (val == NULL) {
			fprintf(stderr, "error: flag needs an argument: %s\n", name);
			return -EINVAL;
		}
		enum log_level lvl;
		if (strcmp(name, "--state-dir") == 0) {
			free(p->dir);
			p->dir = xstrdup(val);
		} else if (strcmp(name, "--admin") == 0) {
			admin = val;
		} else if (strcmp(name, "--log-level") == 0 && log_parse_level(val, &lvl) == 0) {
			log_set_level(lvl);
		} else {
			fprintf(stderr, "error: unknown flag or bad value: %s\n"
			    "See 'v6 proxy --help' for usage.\n", a);
			return -EINVAL;
		}
	}
	if (p->dir == NULL) {
		fprintf(stderr, "error: --state-dir is required\n");
		return -EINVAL;
	}
	if (parse_hostport(admin, &p->admin_host, &p->admin_port) < 0) {
		fprintf(stderr, "error: --admin: expected ADDR:PORT, got \"%s\"\n", admin);
		return -EINVAL;
	}
	return 0;
}

/* ---- snapshots ----------------------------------------------------------- */

/* Saves the applied snapshot: raw (its text as received, when the caller
 * has it) or dumped again. Dumping a snapshot of 100 Services costs about
 * as much as applying it, on the path of every change. */
static void
save_snapshot(struct proxy *p, const char *raw, size_t raw_len)
{
	char *text = raw ? NULL : json_dumps(p->snapshot, JSON_COMPACT);
	int rc = file_write_atomic(p->snap_path, raw ? raw : text, raw ? raw_len : strlen(text),
	    false);
	if (rc < 0)
		log_warn("proxy", "saving %s: %s", p->snap_path, strerror(-rc));
	free(text);
}

/* The text of the snapshot inside a control line msg that is exactly
 * {"type":"snapshot","snapshot":{...}} (the feed's form); false for any
 * other spelling (then the snapshot is dumped again to be saved). */
static bool
snapshot_text(const json_t *msg, const char *line, size_t len, const char **out,
    size_t *out_len)
{
	static const char prefix[] = "{\"type\":\"snapshot\",\"snapshot\":";
	size_t plen = sizeof(prefix) - 1;
	if (json_object_size(msg) != 2 || len < plen + 3 || memcmp(line, prefix, plen) != 0 ||
	    line[plen] != '{' || line[len - 1] != '}' || line[len - 2] != '}')
		return false;
	*out = line + plen;
	*out_len = len - plen - 1;
	return true;
}

/* Applies snap (borrowed); saves it when save, as raw (may be NULL: dumped
 * again). Returns 0, or negative errno with *err. On success *err may name
 * listeners that could not bind (caller frees). */
static int
apply_snapshot(struct proxy *p, json_t *snap, bool save, const char *raw, size_t raw_len,
    char **err)
{
	*err = NULL;
	if (!json_is_object(snap) || !json_is_integer(json_object_get(snap, "version"))) {
		*err = xstrdup("snapshot must be an object with an integer \"version\"");
		p->rejects++;
		return -EINVAL;
	}
	int64_t t0 = time_mono_ms();
	int rc = proxy_engine_apply(p->engine, snap, err);
	if (rc < 0) {
		if (*err == NULL)
			*err = xstrdup(strerror(-rc));
		p->rejects++;
		return rc;
	}
	p->applies++;
	json_decref(p->snapshot);
	p->snapshot = json_incref(snap);
	if (save)
		save_snapshot(p, raw, raw_len);
	log_info("proxy", "applied snapshot version %lld in %lld ms%s%s",
	    (long long)json_integer_value(json_object_get(snap, "version")),
	    (long long)(time_mono_ms() - t0), *err ? ": " : "", *err ? *err : "");
	return 0;
}

static void
load_saved(struct proxy *p)
{
	json_error_t je;
	char *err = NULL;
	if (access(p->snap_path, F_OK) < 0)
		return;
	json_t *snap = json_load_file(p->snap_path, 0, &je);
	if (snap == NULL) {
		log_warn("proxy", "ignoring %s: %s (line %d)", p->snap_path, je.text, je.line);
		return;
	}
	if (apply_snapshot(p, snap, false, NULL, 0, &err) < 0)
		log_warn("proxy", "saved snapshot rejected: %s", err);
	free(err);
	json_decref(snap);
}

/* ---- the control socket --------------------------------------------------- */

static void
on_ctl_write(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void
ctl_send(struct ctl_conn *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t n = strlen(text);
	struct ctl_write *w = xmalloc(sizeof *w + n + 1);
	memcpy(w->data, text, n);
	w->data[n] = '\n';
	free(text);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)n + 1);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_ctl_write) < 0)
		free(w);
	json_decref(msg);
}

static json_t *
nack(json_int_t version, const char *why)
{
	log_warn("proxy", "rejected snapshot version %lld: %s", (long long)version, why);
	return json_pack("{s:s, s:I, s:s}", "type", "nack", "version", version, "error", why);
}

/* One line from the server: a snapshot (-> ack / nack) or a ping. */
static json_t *
ctl_handle(struct proxy *p, const char *line, size_t len)
{
	json_error_t je;
	json_t *msg = json_loadb(line, len, 0, &je), *reply;
	const char *type = json_string_value(json_object_get(msg, "type"));
	json_t *snap = json_object_get(msg, "snapshot");
	json_int_t v = json_integer_value(json_object_get(snap, "version"));
	char *err = NULL;
	const char *raw = NULL;
	size_t raw_len = 0;
	if (msg && !snapshot_text(msg, line, len, &raw, &raw_len))
		raw = NULL;
	if (msg == NULL) {
		char *why = xasprintf("invalid JSON: %s", je.text);
		reply = nack(-1, why);
		free(why);
	} else if (type && strcmp(type, "ping") == 0) {
		reply = json_pack("{s:s, s:I}", "type", "pong", "version",
		    (json_int_t)proxy_engine_version(p->engine));
	} else if (type == NULL || strcmp(type, "snapshot") != 0) {
		reply = nack(-1, "unknown message type");
	} else if (p->draining) {
		reply = nack(v, "draining");
	} else if (apply_snapshot(p, snap, true, raw, raw_len, &err) < 0) {
		reply = nack(v, err);
	} else {
		reply = json_pack("{s:s, s:I}", "type", "ack", "version", v);
		if (err)
			json_object_set_new(reply, "warning", json_string(err));
	}
	free(err);
	json_decref(msg);
	return reply;
}

static void
on_conn_closed(uv_handle_t *h)
{
	struct ctl_conn *c = h->data;
	buf_free(&c->in);
	free(c);
}

static void
conn_close(struct ctl_conn *c)
{
	if (c->prevp == NULL)
		return;
	if (c->next)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	c->prevp = NULL;
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(hint);
	b->len = hint;
}

static void
on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct ctl_conn *c = s->data;
	if (n > 0)
		buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	if (n < 0) {
		conn_close(c);
		return;
	}
	size_t start = 0;
	char *nl;
	while (c->in.len > start && (nl = memchr(c->in.data + start, '\n',
	    c->in.len - start)) != NULL) {
		size_t len = (size_t)(nl - (c->in.data + start));
		if (len > 0)
			ctl_send(c, ctl_handle(c->p, c->in.data + start, len));
		start += len + 1;
		if (c->prevp == NULL)
			return;
	}
	if (start > 0) {
		memmove(c->in.data, c->in.data + start, c->in.len - start);
		c->in.len -= start;
		if (c->in.data)
			c->in.data[c->in.len] = '\0';
	}
	if (c->in.len > CTL_MAX_LINE) {
		log_warn("proxy", "control message longer than %u bytes, disconnecting",
		    CTL_MAX_LINE);
		conn_close(c);
	}
}

static void
on_ctl_connection(uv_stream_t *server, int status)
{
	struct proxy *p = server->data;
	if (status < 0)
		return;
	struct ctl_conn *c = xcalloc(1, sizeof *c);
	c->p = p;
	uv_pipe_init(p->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = p->conns;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &p->conns;
	p->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_ctl_read) < 0) {
		conn_close(c);
		return;
	}
	log_info("proxy", "control connection from the server");
}

/* Refuses to take over a socket another live proxy answers on. */
static int
ctl_listen(struct proxy *p)
{
	struct stat sb;
	uv_pipe_init(p->loop, &p->ctl, 0);
	p->ctl.data = p;
	unlink(p->sock_path);
	mode_t old = umask(0177);
	int rc = uv_pipe_bind(&p->ctl, p->sock_path);
	umask(old);
	if (rc == 0)
		rc = chmod(p->sock_path, 0600) < 0 ? -errno : 0;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&p->ctl, 16, on_ctl_connection);
	if (rc == 0 && stat(p->sock_path, &sb) == 0)
		p->ctl_ino = sb.st_ino;
	return rc;
}

static void
ctl_unlisten(struct proxy *p)
{
	struct stat sb;
	if (uv_is_closing((uv_handle_t *)&p->ctl))
		return;
	uv_close((uv_handle_t *)&p->ctl, NULL);
	if (stat(p->sock_path, &sb) == 0 && sb.st_ino == p->ctl_ino)
		unlink(p->sock_path);
	while (p->conns)
		conn_close(p->conns);
}

/* ---- the admin listener --------------------------------------------------- */

static void
admin_metrics(struct proxy *p, struct http_req *req)
{
	struct buf b = BUF_INIT;
	proxy_engine_metrics(p->engine, &b);
	buf_printf(&b, "# HELP v6_proxy_snapshot_version Version of the routing snapshot "
	    "being served.\n# TYPE v6_proxy_snapshot_version gauge\n"
	    "v6_proxy_snapshot_version %lld\n",
	    (long long)json_integer_value(json_object_get(p->snapshot, "version")));
	buf_printf(&b, "# HELP v6_proxy_snapshots_total Snapshots received, by outcome.\n"
	    "# TYPE v6_proxy_snapshots_total counter\n"
	    "v6_proxy_snapshots_total{outcome=\"applied\"} %llu\n"
	    "v6_proxy_snapshots_total{outcome=\"rejected\"} %llu\n",
	    (unsigned long long)p->applies, (unsigned long long)p->rejects);
	http_respond(req, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
	buf_free(&b);
}

static void
admin_handler(struct http_req *req, void *arg)
{
	struct proxy *p = arg;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		http_respond(req, 405, "text/plain", "method not allowed\n", 19);
	} else if (strcmp(req->path, "/metrics") == 0) {
		admin_metrics(p, req);
	} else if (strcmp(req->path, "/healthz") == 0) {
		if (p->draining)
			http_respond(req, 503, "text/plain", "draining\n", 9);
		else
			http_respond(req, 200, "text/plain", "ok\n", 3);
	} else if (strcmp(req->path, "/snapshot") == 0 && p->snapshot) {
		char *text = json_dumps(p->snapshot, JSON_INDENT(2));
		http_respond(req, 200, "application/json", text, strlen(text));
		free(text);
	} else if (strcmp(req->path, "/snapshot") == 0) {
		http_respond(req, 404, "application/json",
		    "{\"error\":\"no snapshot applied yet\"}\n", 36);
	} else {
		http_respond(req, 404, "text/plain", "not found\n", 10);
	}
}

/* Binds the admin listener; when the recorded port is taken by someone
 * else, takes any free one (the feed reads admin.addr again). */
static int
admin_listen(struct proxy *p)
{
	struct http_config cfg = { .handler = admin_handler, .handler_arg = p,
		.max_connections = 64 };
	int rc = http_server_start(p->loop, p->admin_host, p->admin_port, &cfg, &p->admin);
	if (rc == UV_EADDRINUSE && p->admin_port != 0) {
		log_warn("proxy", "admin port %d is taken, using another", p->admin_port);
		rc = http_server_start(p->loop, p->admin_host, 0, &cfg, &p->admin);
	}
	if (rc < 0)
		return rc;
	char *addr = xasprintf("%s:%d\n", p->admin_host, http_server_port(p->admin));
	file_write_atomic(p->admin_path, addr, strlen(addr), false);
	free(addr);
	return 0;
}

/* ---- shutdown --------------------------------------------------------------- */

static void
finish(struct proxy *p)
{
	if (p->drained)
		return;
	p->drained = true;
	uint64_t ticks;
	if (proc_pidfile_read(p->pid_path, &ticks) == getpid())
		unlink(p->pid_path);
	if (p->admin)
		http_server_stop(p->admin);
	p->admin = NULL;
	uv_close((uv_handle_t *)&p->drain_timer, NULL);
	uv_close((uv_handle_t *)&p->sigterm, NULL);
	uv_close((uv_handle_t *)&p->sigint, NULL);
	log_info("proxy", "drained, exiting");
	uv_stop(p->loop);
}

static void
on_drained(void *arg)
{
	finish(arg);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	log_warn("proxy", "drain did not finish in %d ms, exiting", DRAIN_TIMEOUT_MS);
	finish(t->data);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct proxy *p = h->data;
	if (p->draining)
		return;
	p->draining = true;
	log_info("proxy", "received signal %d, draining", signum);
	ctl_unlisten(p);
	uv_timer_start(&p->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
	proxy_engine_drain(p->engine, on_drained, p);
}

/* ---- main ------------------------------------------------------------------- */

static int
proxy_setup(struct proxy *p)
{
	int rc;
	if (mkdir(p->dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "error: cannot create %s: %s\n", p->dir, strerror(errno));
		return -errno;
	}
	pid_t other = proc_pidfile_read(p->pid_path, NULL);
	if (other > 0 && other != getpid()) {
		fprintf(stderr, "error: another v6 proxy (pid %d) serves %s\n", (int)other, p->dir);
		return -EBUSY;
	}
	p->engine = proxy_engine_new(p->loop);
	load_saved(p);
	/* The control socket last: once it answers, everything else is up. */
	if ((rc = admin_listen(p)) < 0) {
		fprintf(stderr, "error: cannot listen on %s:%d: %s\n", p->admin_host,
		    p->admin_port, uv_strerror(rc));
		return rc;
	}
	proc_pidfile_write(p->pid_path, getpid(), 0);
	if ((rc = ctl_listen(p)) < 0) {
		fprintf(stderr, "error: cannot listen on %s: %s\n", p->sock_path, uv_strerror(rc));
		return rc;
	}
	uv_signal_init(p->loop, &p->sigterm);
	uv_signal_init(p->loop, &p->sigint);
	uv_timer_init(p->loop, &p->drain_timer);
	p->sigterm.data = p->sigint.data = p->drain_timer.data = p;
	uv_signal_start(&p->sigterm, on_signal, SIGTERM);
	uv_signal_start(&p->sigint, on_signal, SIGINT);
	return 0;
}

int
proxy_main(int argc, char **argv)
{
	struct proxy p = { 0 };
	int rc = 1;
	if (parse_flags(&p, argc, argv) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	p.loop = uv_default_loop();
	p.sock_path = xasprintf("%s/control.sock", p.dir);
	p.snap_path = xasprintf("%s/snapshot.json", p.dir);
	p.pid_path = xasprintf("%s/proxy.pid", p.dir);
	p.admin_path = xasprintf("%s/admin.addr", p.dir);
	if (proxy_setup(&p) == 0) {
		log_info("proxy", "v6 proxy %s: control %s, admin %s:%d, snapshot version %lld",
		    V6_VERSION, p.sock_path, p.admin_host, http_server_port(p.admin),
		    (long long)json_integer_value(json_object_get(p.snapshot, "version")));
		uv_run(p.loop, UV_RUN_DEFAULT);
		rc = 0;
	}
	if (!uv_is_closing((uv_handle_t *)&p.ctl) && p.ctl.loop)
		ctl_unlisten(&p);
	if (p.admin)
		http_server_stop(p.admin);
	if (p.engine)
		proxy_engine_free(p.engine);
	for (int i = 0; i < 4; i++)
		uv_run(p.loop, UV_RUN_NOWAIT);
	json_decref(p.snapshot);
	free(p.dir);
	free(p.sock_path);
	free(p.snap_path);
	free(p.pid_path);
	free(p.admin_path);
	free(p.admin_host);
	return rc;
}
