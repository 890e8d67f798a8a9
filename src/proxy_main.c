/* proxy_main.c — `v6 proxy`: the process around the engine (proxy_engine.c).
 * It owns STATE/control.sock (the server's feed sends whole snapshots and
 * deltas there as JSON lines and gets an ack or nack for each),
 * STATE/snapshot.json + STATE/snapshot.journal (the last whole snapshot and
 * the deltas applied since, replayed at start so a proxy restarted while
 * the server is down still serves), STATE/proxy.pid, STATE/admin.addr, the
 * admin listener (/metrics, /healthz, /snapshot) and STATE/handoff.sock
 * (proxy_handoff.c). SIGTERM drains; SIGUSR2 or `v6 proxy --upgrade` starts
 * a seamless replacement: the new process takes the listening sockets over,
 * then this one drains. */
#include "obs_metrics.h"
#include "proxy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "flags.h"
#include "http.h"
#include "log.h"
#include "net.h"
#include "proc.h"
#include "node_runtime.h"
#include "obs_otlp.h"
#include "proxy_handoff.h"

#define CTL_MAX_LINE	(256u << 20)	/* one snapshot; a peer past it is cut off */
#define DRAIN_TIMEOUT_MS 30000

struct ctl_conn;

struct proxy {
	uv_loop_t *loop;
	struct proxy_engine *engine;
	char *dir, *sock_path, *snap_path, *pid_path, *admin_path, *handoff_path;
	char *admin_host;
	char *exe;			/* this binary's path at start, for SIGUSR2 */
	int admin_port;
	bool upgrade;			/* --upgrade: take over from the running proxy */
	char *inherit;			/* --inherit: where the server keeps our sockets */
	int ho_listen, ho_conn;		/* handoff.sock and a successor on it; -1: none */
	ino_t ho_ino;
	bool replaced;			/* a successor serves: its files are not ours */
	uv_poll_t ho_listen_poll, ho_conn_poll;
	uv_signal_t sigusr2;
	json_t *lmap, *cmap;		/* the applied table: name -> listener / cluster */
	int64_t version;		/* its version */
	bool have;			/* a table was applied */
	char *journal_path;
	size_t journal_bytes, snap_bytes;	/* compact the journal past the snapshot's size */
	uint64_t applies, rejects;
	uv_pipe_t ctl;
	ino_t ctl_ino;
	struct ctl_conn *conns;
	struct http_server *admin;
	uv_signal_t sigterm, sigint;
	uv_timer_t drain_timer;
	bool draining, drained;
	char *otlp_endpoint;		/* --otlp-endpoint; NULL: the OTEL_* variables */
	char *sample_ratio;		/* --trace-sample-ratio as given */
	double ratio;
	struct otlp_exporter *otlp;	/* NULL: tracing off */
	struct px_tracer *tracer;
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

static const struct flag_def proxy_flags[] = {
	{ "--state-dir", "DIR", "control.sock, snapshot.json, proxy.pid (required)" },
	{ "--admin", "ADDR:PORT", "admin listener for /metrics, /healthz, /snapshot "
	    "(default 127.0.0.1:0)" },
	{ "--log-level", "LEVEL", "debug, info, warn or error (default info)" },
	{ "--log-format", "FORMAT", "json (one object per line, the default) or text" },
	{ "--otlp-endpoint", "URL", "export a span per request and per upstream attempt "
	    "as OTLP/HTTP to URL (/v1/traces appended; default $OTEL_EXPORTER_OTLP_ENDPOINT; "
	    "none: no tracing, traceparent still forwarded)" },
	{ "--trace-sample-ratio", "R", "share of new traces sampled, 0..1 (default 1); a "
	    "continued trace follows the caller's sampled flag" },
	{ "--upgrade", NULL, "take the listening sockets over from the proxy running on "
	    "DIR, which then drains and exits (a plain start when none runs)" },
	{ "--inherit", "PATH", "take the listening sockets the server kept from a proxy "
	    "that died (a unix socket, proxy_keep.c; bind afresh when none answers there)" },
	{ "--help", NULL, "show this help" },
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: v6 proxy --state-dir DIR [--admin ADDR:PORT] [--upgrade]\n\n"
	    "Runs V6's data plane: the Service and Gateway listeners of the routing\n"
	    "snapshot the server sends on DIR/control.sock. `v6 server` starts and\n"
	    "watches it; it keeps serving its last snapshot while the server is away.\n"
	    "SIGTERM stops accepting, finishes in-flight requests, then exits.\n"
	    "SIGUSR2 restarts it seamlessly (after an upgrade of the v6 binary): a new\n"
	    "proxy from the same path takes the listening sockets over, this one\n"
	    "drains; no connection is refused.\n\nFlags:\n");
	flags_usage(f, proxy_flags, ARRAY_SIZE(proxy_flags), 24);
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
	p->ratio = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;
		char name[64];
		const struct flag_def *fl = flags_next(proxy_flags, ARRAY_SIZE(proxy_flags),
		    argc, argv, &i, name, sizeof name, &val);
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--upgrade") == 0) {
			p->upgrade = true;
			continue;
		}
		if (fl && val == NULL) {
			fprintf(stderr, "error: flag needs an argument: %s\n", name);
			return -EINVAL;
		}
		enum log_level lvl;
		enum log_format lf;
		if (strcmp(name, "--state-dir") == 0) {
			free(p->dir);
			p->dir = xstrdup(val);
		} else if (strcmp(name, "--admin") == 0) {
			admin = val;
		} else if (strcmp(name, "--log-level") == 0 && log_parse_level(val, &lvl) == 0) {
			log_set_level(lvl);
		} else if (strcmp(name, "--log-format") == 0 && log_parse_format(val, &lf) == 0) {
			log_set_format(lf);
		} else if (strcmp(name, "--inherit") == 0) {
			free(p->inherit);
			p->inherit = xstrdup(val);
		} else if (strcmp(name, "--otlp-endpoint") == 0) {
			free(p->otlp_endpoint);
			p->otlp_endpoint = xstrdup(val);
		} else if (strcmp(name, "--trace-sample-ratio") == 0 &&
		    otlp_ratio_parse(val, &p->ratio) == 0) {
			free(p->sample_ratio);
			p->sample_ratio = xstrdup(val);
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

/* The applied table as a snapshot document (a new reference); listeners
 * sorted by name when sorted, else in any order (the engine needs none). */
static json_t *
table_doc(const struct proxy *p, bool sorted)
{
	json_t *ls = sorted ? proxy_sorted_members(p->lmap, true) : json_array(), *l;
	const char *name;
	if (!sorted)
		json_object_foreach(p->lmap, name, l)
			json_array_append(ls, l);
	return json_pack("{s:I, s:o, s:O}", "version", (json_int_t)p->version, "listeners", ls,
	    "clusters", p->cmap);
}

/* Saves the whole applied table: raw (its text as received, when the caller
 * has it) or dumped; the journal starts again empty. */
static void
save_snapshot(struct proxy *p, const char *raw, size_t raw_len)
{
	json_t *doc = raw ? NULL : table_doc(p, true);
	char *text = raw ? NULL : json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc = file_write_atomic(p->snap_path, raw ? raw : text, raw ? raw_len : strlen(text),
	    false);
	if (rc < 0)
		log_warn("proxy", "saving %s: %s", p->snap_path, strerror(-rc));
	p->snap_bytes = raw ? raw_len : strlen(text);
	if (rc == 0 && truncate(p->journal_path, 0) < 0 && errno != ENOENT)
		log_warn("proxy", "emptying %s: %s", p->journal_path, strerror(errno));
	p->journal_bytes = 0;
	json_decref(doc);
	free(text);
}

/* Appends an applied delta (its control line) to the journal; writes the
 * whole table instead once the journal outgrows it. */
static void
journal_append(struct proxy *p, const char *line, size_t len)
{
	if (p->journal_bytes + len > p->snap_bytes + (64u << 10)) {
		save_snapshot(p, NULL, 0);
		return;
	}
	int fd = open(p->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct iovec iov[2] = { { (void *)line, len }, { "\n", 1 } };
	if (fd < 0 || writev(fd, iov, 2) != (ssize_t)len + 1) {
		log_warn("proxy", "appending to %s: %s", p->journal_path, strerror(errno));
		save_snapshot(p, NULL, 0);
	} else {
		p->journal_bytes += len + 1;
	}
	if (fd >= 0)
		close(fd);
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

/* Gives the engine the table (lmap, cmap) at version. */
static int
engine_apply(struct proxy *p, json_t *lmap, json_t *cmap, int64_t version, char **err)
{
	json_t *ls = json_array(), *l;
	const char *name;
	json_object_foreach(lmap, name, l)
		json_array_append(ls, l);
	json_t *doc = json_pack("{s:I, s:o, s:O}", "version", (json_int_t)version, "listeners",
	    ls, "clusters", cmap);
	int rc = proxy_engine_apply(p->engine, doc, err);
	json_decref(doc);
	if (rc < 0 && *err == NULL)
		*err = xstrdup(strerror(-rc));
	return rc;
}

/* Applies whole snapshot snap (borrowed). Returns 0, or negative errno
 * with *err (nothing changed). On success *err may name listeners that
 * could not bind (caller frees). */
static int
apply_full(struct proxy *p, const json_t *snap, char **err)
{
	const json_t *ls = json_object_get(snap, "listeners"), *cs = json_object_get(snap,
	    "clusters"), *l;
	size_t i;
	*err = NULL;
	if (!json_is_object(snap) || !json_is_integer(json_object_get(snap, "version")) ||
	    (ls && !json_is_array(ls)) || (cs && !json_is_object(cs))) {
		*err = xstrdup("snapshot must be an object with an integer \"version\", "
		    "\"listeners\" an array and \"clusters\" an object");
		return -EINVAL;
	}
	json_t *lmap = json_object(), *cmap = cs ? json_copy((json_t *)cs) : json_object();
	int rc = 0;
	json_array_foreach(ls, i, l) {
		const char *name = json_string_value(json_object_get(l, "name"));
		if (name == NULL || json_object_get(lmap, name)) {
			*err = xasprintf("listener %zu: %s", i, name ? "duplicate name" : "no name");
			rc = -EINVAL;
			break;
		}
		json_object_set(lmap, name, (json_t *)l);
	}
	int64_t v = json_integer_value(json_object_get(snap, "version"));
	if (rc == 0)
		rc = engine_apply(p, lmap, cmap, v, err);
	if (rc < 0) {
		json_decref(lmap);
		json_decref(cmap);
		return rc;
	}
	json_decref(p->lmap);
	json_decref(p->cmap);
	p->lmap = lmap;
	p->cmap = cmap;
	p->version = v;
	p->have = true;
	return 0;
}

/* Sets map[name] = v (JSON null: removes it). */
static void
delta_set(json_t *map, const char *name, json_t *v)
{
	if (json_is_null(v))
		json_object_del(map, name);
	else
		json_object_set(map, name, v);
}

/* Applies delta msg {"base", "version", "listeners", "clusters"} (name ->
 * value or null) to the applied table: the engine compiles only what it
 * names. Returns 0, -ESTALE when the proxy's version is not base (the
 * server resyncs), or negative errno; on error *err says why and nothing
 * changed. */
static int
apply_delta(struct proxy *p, const json_t *msg, char **err)
{
	const json_t *ls = json_object_get(msg, "listeners"), *cs = json_object_get(msg,
	    "clusters");
	int64_t base = json_integer_value(json_object_get(msg, "base"));
	int64_t v = json_integer_value(json_object_get(msg, "version"));
	const char *name;
	json_t *val;
	*err = NULL;
	if (!p->have || base != p->version) {
		*err = xasprintf("delta from version %lld, but version %lld is applied",
		    (long long)base, (long long)p->version);
		return -ESTALE;
	}
	if (!json_is_integer(json_object_get(msg, "version")) || v < base ||
	    (ls && !json_is_object(ls)) || (cs && !json_is_object(cs))) {
		*err = xstrdup("a delta needs integer \"base\" and \"version\", and objects "
		    "\"listeners\" and \"clusters\"");
		return -EINVAL;
	}
	int rc = proxy_engine_apply_delta(p->engine, v, ls, cs, err);
	if (rc < 0) {
		if (*err == NULL)
			*err = xstrdup(strerror(-rc));
		return rc;
	}
	json_object_foreach((json_t *)ls, name, val)
		delta_set(p->lmap, name, val);
	json_object_foreach((json_t *)cs, name, val)
		delta_set(p->cmap, name, val);
	p->version = v;
	return 0;
}

/* Applies control message msg (a whole snapshot, or a delta) and saves
 * the result, the line's own text when it can. Counts and logs it. */
static int
apply_msg(struct proxy *p, const json_t *msg, bool delta, const char *line, size_t len,
    bool save, char **err)
{
	int64_t t0 = time_mono_ms(), base = p->version;
	const char *raw = NULL;
	size_t raw_len = 0;
	int rc = delta ? apply_delta(p, msg, err) : apply_full(p, json_object_get(msg,
	    "snapshot"), err);
	if (rc < 0) {
		p->rejects++;
		return rc;
	}
	p->applies++;
	if (save && delta)
		journal_append(p, line, len);
	else if (save && snapshot_text(msg, line, len, &raw, &raw_len))
		save_snapshot(p, raw, raw_len);
	else if (save)
		save_snapshot(p, NULL, 0);
	if (delta)
		log_info("proxy", "applied snapshot version %lld in %lld ms (delta from %lld: %zu "
		    "listeners, %zu clusters)%s%s", (long long)p->version,
		    (long long)(time_mono_ms() - t0), (long long)base,
		    json_object_size(json_object_get(msg, "listeners")),
		    json_object_size(json_object_get(msg, "clusters")), *err ? ": " : "",
		    *err ? *err : "");
	else
		log_info("proxy", "applied snapshot version %lld in %lld ms%s%s",
		    (long long)p->version, (long long)(time_mono_ms() - t0), *err ? ": " : "",
		    *err ? *err : "");
	return 0;
}

/* The saved snapshot, then the journal's deltas that follow it. */
static void
load_saved(struct proxy *p)
{
	json_error_t je;
	char *err = NULL, *text = NULL;
	size_t len = 0;
	if (access(p->snap_path, F_OK) < 0)
		return;
	json_t *snap = json_load_file(p->snap_path, 0, &je);
	if (snap == NULL) {
		log_warn("proxy", "ignoring %s: %s (line %d)", p->snap_path, je.text, je.line);
		return;
	}
	json_t *msg = json_pack("{s:o}", "snapshot", snap);
	if (apply_msg(p, msg, false, NULL, 0, false, &err) < 0)
		log_warn("proxy", "saved snapshot rejected: %s", err);
	json_decref(msg);
	free(err);
	if (!p->have || file_read_all(p->journal_path, &text, &len) < 0)
		return;
	for (char *line = text, *nl; line < text + len; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(text + len - line))) == NULL)
			break;		/* a torn last line: not applied */
		msg = json_loadb(line, (size_t)(nl - line), 0, &je);
		err = NULL;
		if (msg && apply_msg(p, msg, true, NULL, 0, false, &err) < 0)
			log_warn("proxy", "journal %s: delta skipped: %s", p->journal_path, err);
		p->journal_bytes += (size_t)(nl - line) + 1;
		free(err);
		json_decref(msg);
	}
	free(text);
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

/* A request waits for an endpoint of service (scale from zero): every
 * connected server hears it and may start a pod. */
static void
on_hold(void *arg, const char *service)
{
	struct proxy *p = arg;
	for (struct ctl_conn *c = p->conns; c; c = c->next)
		ctl_send(c, json_pack("{s:s, s:s}", "type", "activate", "service", service));
}

static json_t *
nack(json_int_t version, const char *why)
{
	log_warn("proxy", "rejected snapshot version %lld: %s", (long long)version, why);
	return json_pack("{s:s, s:I, s:s}", "type", "nack", "version", version, "error", why);
}

/* One line from the server: a whole snapshot or a delta (-> ack / nack) or
 * a ping. A nack of a delta leaves the table as it was; the server then
 * sends a whole snapshot. */
static json_t *
ctl_handle(struct proxy *p, const char *line, size_t len)
{
	json_error_t je;
	json_t *msg = json_loadb(line, len, 0, &je), *reply;
	const char *type = json_string_value(json_object_get(msg, "type"));
	bool delta = type && strcmp(type, "delta") == 0;
	json_int_t v = json_integer_value(delta ? json_object_get(msg, "version")
	    : json_object_get(json_object_get(msg, "snapshot"), "version"));
	char *err = NULL;
	if (msg == NULL) {
		char *why = xasprintf("invalid JSON: %s", je.text);
		reply = nack(-1, why);
		free(why);
	} else if (type && strcmp(type, "ping") == 0) {
		reply = json_pack("{s:s, s:I}", "type", "pong", "version",
		    (json_int_t)proxy_engine_version(p->engine));
	} else if (!delta && (type == NULL || strcmp(type, "snapshot") != 0)) {
		reply = nack(-1, "unknown message type");
	} else if (p->draining) {
		reply = nack(v, "draining");
	} else if (apply_msg(p, msg, delta, line, len, true, &err) < 0) {
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
	    uv_read_start((uv_stream_t *)&c->pipe, net_alloc, on_ctl_read) < 0) {
		conn_close(c);
		return;
	}
	log_info("proxy", "control connection from the server");
}

/* Bound here rather than by uv_pipe_bind, whose close unlinks the path
 * even when a successor bound it again (seamless restart). */
static int
ctl_listen(struct proxy *p)
{
	struct stat sb;
	uv_pipe_init(p->loop, &p->ctl, 0);
	p->ctl.data = p;
	int fd = proxy_unix_listen(p->sock_path, SOCK_STREAM), rc;
	if (fd < 0)
		return fd;
	if ((rc = uv_pipe_open(&p->ctl, fd)) < 0)
		close(fd);
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
	if (!p->replaced && stat(p->sock_path, &sb) == 0 && sb.st_ino == p->ctl_ino)
		unlink(p->sock_path);
	while (p->conns)
		conn_close(p->conns);
}

/* ---- the admin listener --------------------------------------------------- */

/* The exporter's counters: what the collector got and what was lost. */
static void
tracing_metrics(struct proxy *p, struct buf *b)
{
	struct otlp_stats st;
	otlp_get_stats(p->otlp, &st);
	buf_printf(b, "# HELP v6_proxy_trace_spans_total Spans by fate: exported to the "
	    "collector, dropped because the queue was full or the export failed.\n"
	    "# TYPE v6_proxy_trace_spans_total counter\n"
	    "v6_proxy_trace_spans_total{outcome=\"exported\"} %llu\n"
	    "v6_proxy_trace_spans_total{outcome=\"dropped_queue_full\"} %llu\n"
	    "v6_proxy_trace_spans_total{outcome=\"dropped_export_failed\"} %llu\n"
	    "# HELP v6_proxy_trace_export_requests_total OTLP export requests sent, retries "
	    "included.\n# TYPE v6_proxy_trace_export_requests_total counter\n"
	    "v6_proxy_trace_export_requests_total %llu\n"
	    "# HELP v6_proxy_trace_queue_spans Spans waiting for export.\n"
	    "# TYPE v6_proxy_trace_queue_spans gauge\nv6_proxy_trace_queue_spans %u\n",
	    (unsigned long long)st.exported, (unsigned long long)st.dropped_full,
	    (unsigned long long)st.dropped_failed, (unsigned long long)st.requests, st.queue_len);
}

static void
admin_metrics(struct proxy *p, struct http_req *req)
{
	struct buf b = BUF_INIT;
	proxy_engine_metrics(p->engine, &b);
	buf_printf(&b, "# HELP v6_proxy_snapshot_version Version of the routing snapshot "
	    "being served.\n# TYPE v6_proxy_snapshot_version gauge\n"
	    "v6_proxy_snapshot_version %lld\n",
	    (long long)p->version);
	buf_printf(&b, "# HELP v6_proxy_snapshots_total Snapshots received, by outcome.\n"
	    "# TYPE v6_proxy_snapshots_total counter\n"
	    "v6_proxy_snapshots_total{outcome=\"applied\"} %llu\n"
	    "v6_proxy_snapshots_total{outcome=\"rejected\"} %llu\n",
	    (unsigned long long)p->applies, (unsigned long long)p->rejects);
	if (p->otlp)
		tracing_metrics(p, &b);
	http_respond(req, 200, OM_CONTENT_TYPE_TEXT, b.data ? b.data : "", b.len);
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
	} else if (strcmp(req->path, "/snapshot") == 0 && p->have) {
		json_t *doc = table_doc(p, true), *l;
		size_t i;
		json_array_foreach(json_object_get(doc, "listeners"), i, l)	/* no keys shown */
			json_array_set_new(json_object_get(doc, "listeners"), i,
			    proxy_listener_redacted(l));
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(doc);
		http_respond(req, 200, "application/json", text, strlen(text));
		free(text);
	} else if (strcmp(req->path, "/snapshot") == 0) {
		http_respond(req, 404, "application/json",
		    "{\"error\":\"no snapshot applied yet\"}\n", 36);
	} else {
		http_respond(req, 404, "text/plain", "not found\n", 10);
	}
}

static void
admin_record(struct proxy *p)
{
	char *addr = xasprintf("%s:%d\n", p->admin_host, http_server_port(p->admin));
	file_write_atomic(p->admin_path, addr, strlen(addr), false);
	free(addr);
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
	admin_record(p);
	return 0;
}

/* Serves the admin listener on the socket the replaced proxy handed over. */
static int
admin_open(struct proxy *p, int fd)
{
	struct http_config cfg = { .handler = admin_handler, .handler_arg = p,
		.max_connections = 64 };
	int rc = http_server_open(p->loop, fd, &cfg, &p->admin);
	if (rc < 0)
		return admin_listen(p);
	admin_record(p);
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
	uv_close((uv_handle_t *)&p->sigusr2, NULL);
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

static void handoff_unlisten(struct proxy *p);

/* Stops accepting, finishes what is in flight, then exits. */
static void
start_drain(struct proxy *p)
{
	if (p->draining)
		return;
	p->draining = true;
	ctl_unlisten(p);
	handoff_unlisten(p);
	uv_timer_start(&p->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
	proxy_engine_drain(p->engine, on_drained, p);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct proxy *p = h->data;
	if (p->draining)
		return;
	log_info("proxy", "received signal %d, draining", signum);
	start_drain(p);
}

/* ---- seamless restart (proxy_handoff.c) -------------------------------------- */

static void
handoff_conn_close(struct proxy *p)
{
	if (p->ho_conn < 0)
		return;
	uv_close((uv_handle_t *)&p->ho_conn_poll, NULL);
	close(p->ho_conn);
	p->ho_conn = -1;
}

static void
handoff_unlisten(struct proxy *p)
{
	struct stat sb;
	if (p->ho_listen < 0)
		return;
	uv_close((uv_handle_t *)&p->ho_listen_poll, NULL);
	close(p->ho_listen);
	p->ho_listen = -1;
	/* the successor's socket files stay (an inode number can come back) */
	if (!p->replaced && stat(p->handoff_path, &sb) == 0 && sb.st_ino == p->ho_ino)
		unlink(p->handoff_path);
	handoff_conn_close(p);
}

/* The successor answered: "ready" (it serves: drain and exit) or hung up
 * (it failed: keep serving); or the server's keeper (proxy_keep.c) took
 * copies of the sockets: "kept", keep serving. */
static void
on_handoff_answer(uv_poll_t *h, int status, int events)
{
	struct proxy *p = h->data;
	char buf[64];
	ssize_t n = status < 0 ? -1 : recv(p->ho_conn, buf, sizeof buf - 1, MSG_DONTWAIT);
	(void)events;
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && status >= 0)
		return;
	handoff_conn_close(p);
	if (n > 0 && memmem(buf, (size_t)n, "kept", 4) != NULL) {
		log_debug("proxy", "the server keeps copies of our listening sockets");
	} else if (n > 0 && memmem(buf, (size_t)n, "ready", 5) != NULL) {
		log_info("proxy", "the new proxy serves on our listening sockets; draining");
		p->replaced = true;
		start_drain(p);
	} else {
		log_warn("proxy", "the new proxy went away before serving; still serving");
	}
}

/* A successor connected on handoff.sock: send it the listening sockets. */
static void
on_handoff_connection(uv_poll_t *h, int status, int events)
{
	struct proxy *p = h->data;
	(void)events;
	int fd = status < 0 ? -1 : accept4(p->ho_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (p->draining || p->ho_conn >= 0) {
		close(fd);	/* one successor at a time */
		return;
	}
	int rc = proxy_handoff_send(p->engine, fd, p->admin ? http_server_fd(p->admin) : -1);
	if (rc < 0) {
		log_warn("proxy", "handing the listening sockets over: %s", strerror(-rc));
		close(fd);
		return;
	}
	log_info("proxy", "handed the listening sockets to a new proxy; waiting for it");
	p->ho_conn = fd;
	uv_poll_init(p->loop, &p->ho_conn_poll, fd);
	p->ho_conn_poll.data = p;
	uv_poll_start(&p->ho_conn_poll, UV_READABLE | UV_DISCONNECT, on_handoff_answer);
}

static int
handoff_listen(struct proxy *p)
{
	struct stat sb;
	int fd = proxy_unix_listen(p->handoff_path, SOCK_SEQPACKET);
	if (fd < 0)
		return fd;
	p->ho_listen = fd;
	if (stat(p->handoff_path, &sb) == 0)
		p->ho_ino = sb.st_ino;
	uv_poll_init(p->loop, &p->ho_listen_poll, fd);
	p->ho_listen_poll.data = p;
	return uv_poll_start(&p->ho_listen_poll, UV_READABLE, on_handoff_connection);
}

/* SIGUSR2: the binary this proxy was started from (upgraded, perhaps) is
 * started with --upgrade; it takes over through handoff.sock. */
static void
on_sigusr2(uv_signal_t *h, int signum)
{
	struct proxy *p = h->data;
	char admin[128];
	(void)signum;
	if (p->draining || p->exe == NULL)
		return;
	snprintf(admin, sizeof admin, "%s:%d", p->admin_host,
	    p->admin ? http_server_port(p->admin) : p->admin_port);
	char *argv[12] = { p->exe, "proxy", "--state-dir", p->dir, "--admin", admin, "--upgrade" };
	int argc = 7;
	if (p->otlp_endpoint) {
		argv[argc++] = "--otlp-endpoint";
		argv[argc++] = p->otlp_endpoint;
	}
	if (p->sample_ratio) {
		argv[argc++] = "--trace-sample-ratio";
		argv[argc++] = p->sample_ratio;
	}
	pid_t pid;
	char *log = realpath("/proc/self/fd/2", NULL);	/* our log file, if a file */
	int rc = proc_spawn(argv, log && log[0] == '/' ? log : NULL, &pid);
	free(log);
	if (rc < 0)
		log_error("proxy", "SIGUSR2: starting %s: %s", p->exe, strerror(-rc));
	else
		log_info("proxy", "SIGUSR2: started the new proxy (pid %d)", (int)pid);
}

/* ---- main ------------------------------------------------------------------- */

/* Tracing, when an OTLP endpoint is configured (flag or environment). */
static void
tracing_start(struct proxy *p)
{
	char *url = otlp_endpoint_from(p->otlp_endpoint);
	struct otlp_config cfg = { .endpoint = url, .scope = "v6.proxy" };
	if (url == NULL)
		return;
	if (otlp_start(p->loop, &cfg, &p->otlp) == 0) {
		p->tracer = proxy_tracer_new(p->otlp, p->ratio);
		proxy_engine_set_tracer(p->engine, p->tracer);
		log_info("proxy", "tracing: spans to %s, new traces sampled at %g", url, p->ratio);
	}
	free(url);
}

/* After the engine is gone (it stopped tracing before it was freed). An
 * export in flight is cut short (within a second: curl's progress callback). */
static void
tracing_stop(struct proxy *p)
{
	otlp_stop_wait(p->otlp, p->loop, OTLP_SHUTDOWN_FLUSH_MS);
	proxy_tracer_free(p->tracer);
	p->otlp = NULL;
	p->tracer = NULL;
}

static int
proxy_setup(struct proxy *p)
{
	int rc;
	if (mkdir(p->dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "error: cannot create %s: %s\n", p->dir, strerror(errno));
		return -errno;
	}
	p->engine = proxy_engine_new(p->loop);
	proxy_engine_on_hold(p->engine, on_hold, p);
	tracing_start(p);
	pid_t other = proc_pidfile_read(p->pid_path, NULL);
	int admin_fd = -1, ho_sock = -1;
	if (p->upgrade && other > 0 && other != getpid()) {
		rc = proxy_handoff_recv(p->engine, p->handoff_path, &admin_fd, &ho_sock);
		if (rc < 0) {
			fprintf(stderr, "error: taking over from the proxy (pid %d) on %s: %s\n",
			    (int)other, p->handoff_path, strerror(-rc));
			return rc;
		}
		log_info("proxy", "took the listening sockets over from pid %d", (int)other);
	} else if (other > 0 && other != getpid()) {
		fprintf(stderr, "error: another v6 proxy (pid %d) serves %s\n", (int)other, p->dir);
		return -EBUSY;
	} else if (p->inherit) {
		/* connections queued on them while no proxy ran are served now */
		rc = proxy_handoff_recv(p->engine, p->inherit, &admin_fd, &ho_sock);
		if (rc < 0)
			log_info("proxy", "no kept listening sockets at %s (%s): binding afresh",
			    p->inherit, strerror(-rc));
		else
			log_info("proxy", "took the listening sockets the server kept");
	}
	load_saved(p);
	/* The control socket last: once it answers, everything else is up. */
	rc = admin_fd >= 0 ? admin_open(p, admin_fd) : admin_listen(p);
	if (rc < 0) {
		fprintf(stderr, "error: cannot listen on %s:%d: %s\n", p->admin_host,
		    p->admin_port, uv_strerror(rc));
		return rc;
	}
	proc_pidfile_write(p->pid_path, getpid(), 0);
	if ((rc = ctl_listen(p)) < 0) {
		fprintf(stderr, "error: cannot listen on %s: %s\n", p->sock_path, uv_strerror(rc));
		proxy_handoff_ready(p->engine, -1);
		if (ho_sock >= 0)
			close(ho_sock);		/* the old proxy keeps serving */
		return rc;
	}
	if ((rc = handoff_listen(p)) < 0)
		log_warn("proxy", "%s: %s; no seamless restart", p->handoff_path, strerror(-rc));
	proxy_handoff_ready(p->engine, ho_sock);
	uv_signal_init(p->loop, &p->sigterm);
	uv_signal_init(p->loop, &p->sigint);
	uv_signal_init(p->loop, &p->sigusr2);
	uv_timer_init(p->loop, &p->drain_timer);
	p->sigterm.data = p->sigint.data = p->sigusr2.data = p->drain_timer.data = p;
	uv_signal_start(&p->sigterm, on_signal, SIGTERM);
	uv_signal_start(&p->sigint, on_signal, SIGINT);
	uv_signal_start(&p->sigusr2, on_sigusr2, SIGUSR2);
	return 0;
}

int
proxy_main(int argc, char **argv)
{
	struct proxy p = { .ho_listen = -1, .ho_conn = -1 };
	int rc = 1;
	if (parse_flags(&p, argc, argv) < 0)
		return 2;
	p.exe = realpath("/proc/self/exe", NULL);
	signal(SIGPIPE, SIG_IGN);
	p.loop = uv_default_loop();
	p.sock_path = xasprintf("%s/control.sock", p.dir);
	p.snap_path = xasprintf("%s/snapshot.json", p.dir);
	p.journal_path = xasprintf("%s/snapshot.journal", p.dir);
	p.lmap = json_object();
	p.cmap = json_object();
	p.pid_path = xasprintf("%s/proxy.pid", p.dir);
	p.admin_path = xasprintf("%s/admin.addr", p.dir);
	p.handoff_path = xasprintf("%s/handoff.sock", p.dir);
	if (proxy_setup(&p) == 0) {
		log_info("proxy", "v6 proxy %s: control %s, admin %s:%d, snapshot version %lld",
		    V6_VERSION, p.sock_path, p.admin_host, http_server_port(p.admin),
		    (long long)p.version);
		uv_run(p.loop, UV_RUN_DEFAULT);
		rc = 0;
	}
	if (!uv_is_closing((uv_handle_t *)&p.ctl) && p.ctl.loop)
		ctl_unlisten(&p);
	handoff_unlisten(&p);
	if (p.engine)
		proxy_handoff_ready(p.engine, -1);
	if (p.admin)
		http_server_stop(p.admin);
	if (p.engine) {
		proxy_engine_set_tracer(p.engine, NULL);	/* the engine is freed later */
		proxy_engine_free(p.engine);
	}
	for (int i = 0; i < 4; i++)
		uv_run(p.loop, UV_RUN_NOWAIT);
	tracing_stop(&p);
	free(p.otlp_endpoint);
	free(p.sample_ratio);
	json_decref(p.lmap);
	json_decref(p.cmap);
	free(p.journal_path);
	free(p.dir);
	free(p.sock_path);
	free(p.snap_path);
	free(p.pid_path);
	free(p.admin_path);
	free(p.handoff_path);
	free(p.inherit);
	free(p.exe);
	free(p.admin_host);
	return rc;
}
