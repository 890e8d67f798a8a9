/* proxy_feed.c — the server's side of the data plane (proxy.h): keeps one
 * `v6 proxy` running (adopting the one a previous server left, else starting
 * it detached; restarting it with a back-off when it dies, seen through a
 * pidfd), keeps a connection to its control.sock, and keeps the proxy's
 * table equal to the routing table: a full snapshot on every (re)connect
 * and after a refused delta, else deltas (base version -> new version) of
 * what changed, one at a time (changes that arrive before the ack are
 * merged into the next delta). It keeps copies of the proxy's listening
 * sockets (proxy_keep.c) and hands them to the proxy it restarts, so a
 * SIGKILL of the proxy refuses no connection. Called by server.c; fed by
 * ctrl_routes.c. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proc.h"
#include "proxy_keep.h"
#include "node_runtime.h"

#define RESTART_MIN_MS	100
#define RESTART_MAX_MS	10000
#define RESTART_RESET_MS 30000	/* a proxy that ran this long restarts fast again */
#define CONNECT_MIN_MS	5
#define CONNECT_MAX_MS	500
#define ACK_TIMEOUT_MS	10000

struct feed_conn {
	struct proxy_feed *f;
	uv_pipe_t pipe;
	uv_connect_t creq;
	struct buf in;
	bool connected;
	bool synced;			/* a full snapshot was sent on this connection */
	int64_t base;			/* version the proxy acked on it: deltas start there */
	int64_t nacked;			/* content version of a full snapshot it refused */
};

struct feed_waiter {
	struct proxy_feed *f;
	int64_t v;
	uv_timer_t timer;
	void (*cb)(void *, bool);
	void *arg;
	struct feed_waiter *next, **prevp;
};

struct proxy_feed {
	uv_loop_t *loop;
	char *dir, *exe, *sock_path, *pid_path, *log_path, *addr_path;
	char *admin;			/* "127.0.0.1:PORT" */
	char *args[8];			/* cfg->proxy_args, copied */
	void (*activate)(void *arg, const char *service);	/* a request waits */
	void *activate_arg;
	struct proc_watch *watch;	/* the proxy process, NULL while none */
	int64_t started_ms;
	unsigned restart_ms;
	uv_timer_t restart_timer;
	uv_timer_t connect_timer;
	unsigned connect_ms;
	uv_timer_t ack_timer;
	struct feed_conn *conn;
	json_t *tab_l, *tab_c;		/* the table: name -> listener / cluster */
	json_t *pend_l, *pend_c;	/* changes not sent yet: name -> value or null */
	int64_t version;		/* of the table; 0 before the first update */
	int64_t content_version;	/* <= version: its last change of content */
	bool need_full;			/* the proxy refused a delta: resync */
	int64_t sent_version;		/* awaiting its ack; 0 when none */
	bool sent_full;
	bool sent_listeners;		/* it changes the proxy's listeners */
	struct proxy_keep *keep;	/* NULL: none (keeper.sock failed) */
	int64_t acked_version;
	struct feed_waiter *waiters;
	bool stopping;
	int handles;			/* open handles owned by the feed itself */
};

static void feed_connect(struct proxy_feed *f);
static void on_connect_timer(uv_timer_t *t);
static void feed_pump(struct proxy_feed *f);
static void feed_spawn(struct proxy_feed *f);
static bool feed_adopt(struct proxy_feed *f);

/* ---- the applied version and its waiters ---------------------------------- */

/* The proxy serves the newest content once it acked its version; every
 * later version with the same content counts as applied too. */
static int64_t
applied_version(const struct proxy_feed *f)
{
	if (f->acked_version > 0 && f->acked_version >= f->content_version &&
	    f->version > f->acked_version)
		return f->version;
	return f->acked_version;
}

static void
on_waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
waiter_finish(struct feed_waiter *w, bool applied)
{
	if (w->next)
		w->next->prevp = w->prevp;
	*w->prevp = w->next;
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
	w->cb(w->arg, applied);
}

static void
on_waiter_timer(uv_timer_t *t)
{
	struct feed_waiter *w = t->data;
	waiter_finish(w, applied_version(w->f) >= w->v);
}

static void
waiters_check(struct proxy_feed *f)
{
	int64_t v = applied_version(f);
	struct feed_waiter *w = f->waiters, *next;
	for (; w; w = next) {
		next = w->next;
		if (v >= w->v)
			waiter_finish(w, true);
	}
}

void
proxy_feed_wait_version(struct proxy_feed *f, int64_t v, unsigned timeout_ms,
    void (*cb)(void *arg, bool applied), void *arg)
{
	struct feed_waiter *w = xcalloc(1, sizeof *w);
	w->f = f;
	w->v = v;
	w->cb = cb;
	w->arg = arg;
	uv_timer_init(f->loop, &w->timer);
	w->timer.data = w;
	w->next = f->waiters;
	if (w->next)
		w->next->prevp = &w->next;
	w->prevp = &f->waiters;
	f->waiters = w;
	/* Never call back from inside the call: a zero timer when already done. */
	uv_timer_start(&w->timer, on_waiter_timer,
	    applied_version(f) >= v || f->stopping ? 0 : timeout_ms, 0);
}

/* ---- the connection to control.sock --------------------------------------- */

static void
on_conn_closed(uv_handle_t *h)
{
	struct feed_conn *c = h->data;
	buf_free(&c->in);
	free(c);
}

/* Drops the connection; unless stopping, connects again soon. */
static void
conn_drop(struct proxy_feed *f, const char *why)
{
	struct feed_conn *c = f->conn;
	if (c == NULL)
		return;
	if (c->connected && why)
		log_warn("proxy", "lost the proxy's control connection: %s", why);
	f->conn = NULL;
	f->sent_version = 0;
	uv_timer_stop(&f->ack_timer);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
	if (!f->stopping && !uv_is_active((uv_handle_t *)&f->connect_timer))
		uv_timer_start(&f->connect_timer, on_connect_timer, f->connect_ms, 0);
}

static void
on_ack_timeout(uv_timer_t *t)
{
	conn_drop(t->data, "no answer to a snapshot");
}

/* req->data is the connection, alive until its close callback, which
 * comes after the cancelled writes' callbacks (then the feed may be gone). */
static void
on_written(uv_write_t *req, int status)
{
	struct feed_conn *c = req->data;
	free(req);
	if (status < 0 && status != UV_ECANCELED && c->f->conn == c)
		conn_drop(c->f, uv_strerror(status));
}

static void
handle_reply(struct proxy_feed *f, struct feed_conn *c, const char *line, size_t len)
{
	json_t *msg = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	int64_t v = json_integer_value(json_object_get(msg, "version"));
	const char *warn = json_string_value(json_object_get(msg, "warning"));
	bool ack = type && strcmp(type, "ack") == 0, nack = type && strcmp(type, "nack") == 0;
	if (type && strcmp(type, "activate") == 0 && f->activate) {
		const char *svc = json_string_value(json_object_get(msg, "service"));
		if (svc)
			f->activate(f->activate_arg, svc);
		json_decref(msg);
		return;
	}
	if (ack && v > f->acked_version)
		f->acked_version = v;
	if (ack && v == f->sent_version)
		c->base = v;
	if (ack && v == f->sent_version && f->sent_listeners)
		proxy_keep_refresh(f->keep);	/* copies of its listening sockets */
	if (ack && warn)
		log_warn("proxy", "snapshot version %lld applied with errors: %s", (long long)v,
		    warn);
	if (nack && v == f->sent_version && !f->sent_full) {
		/* a gap or a bad delta: the proxy keeps its version, resync whole */
		log_warn("proxy", "the proxy refused delta version %lld (%s); sending the whole "
		    "table", (long long)v, json_string_value(json_object_get(msg, "error")));
		f->need_full = true;
	} else if (nack) {
		/* the proxy kept its table: the next message is whole again, once
		 * the content changed */
		c->nacked = f->content_version;
		f->need_full = true;
		log_error("proxy", "the proxy rejected snapshot version %lld: %s", (long long)v,
		    json_string_value(json_object_get(msg, "error")));
	}
	json_decref(msg);
	if ((ack || nack) && v == f->sent_version) {
		f->sent_version = 0;
		uv_timer_stop(&f->ack_timer);
	}
	waiters_check(f);
	feed_pump(f);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct feed_conn *c = s->data;
	struct proxy_feed *f = c->f;
	if (n > 0)
		buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	if (n < 0) {
		conn_drop(f, n == UV_EOF ? "closed by the proxy" : uv_strerror((int)n));
		return;
	}
	char *nl;
	while (f->conn == c && c->in.len && (nl = memchr(c->in.data, '\n', c->in.len))) {
		size_t len = (size_t)(nl - c->in.data);
		char *line = xstrndup(c->in.data, len);
		memmove(c->in.data, nl + 1, c->in.len - len - 1);
		c->in.len -= len + 1;
		handle_reply(f, c, line, len);
		free(line);
	}
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *
proxy_sorted_members(const json_t *obj, bool as_array)
{
	size_t n = 0;
	const char **keys = xcalloc(json_object_size(obj) + 1, sizeof *keys), *k;
	json_t *v, *out = as_array ? json_array() : json_object();
	json_object_foreach((json_t *)obj, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof *keys, cmp_name);
	for (size_t i = 0; i < n; i++) {
		if (as_array)
			json_array_append(out, json_object_get(obj, keys[i]));
		else
			json_object_set(out, keys[i], json_object_get(obj, keys[i]));
	}
	free(keys);
	return out;
}

/* The whole table as a control line (sorted, as routes_build makes it). */
static char *
full_line(const struct proxy_feed *f)
{
	json_t *msg = json_pack("{s:s, s:{s:I, s:o, s:o}}", "type", "snapshot", "snapshot",
	    "version", (json_int_t)f->version, "listeners", proxy_sorted_members(f->tab_l, true),
	    "clusters", proxy_sorted_members(f->tab_c, false));
	char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(msg);
	return text;
}

static char *
delta_line(const struct proxy_feed *f, int64_t base)
{
	json_t *msg = json_pack("{s:s, s:I, s:I, s:O, s:O}", "type", "delta", "base",
	    (json_int_t)base, "version", (json_int_t)f->version, "listeners", f->pend_l,
	    "clusters", f->pend_c);
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return text;
}

/* Sends what the proxy lacks if the connection is idle: the whole table
 * first on a connection (resync) and after a refused delta, else the
 * changes since the version it acked. */
static void
feed_pump(struct proxy_feed *f)
{
	struct feed_conn *c = f->conn;
	if (c == NULL || !c->connected || f->sent_version || f->version == 0)
		return;
	bool full = !c->synced || f->need_full;
	if (full && c->synced && c->nacked == f->content_version)
		return;		/* refused as it is: wait for the next change */
	if (!full && json_object_size(f->pend_l) + json_object_size(f->pend_c) == 0)
		return;
	char *text = full ? full_line(f) : delta_line(f, c->base);
	size_t n = strlen(text);
	uv_write_t *req = xmalloc(sizeof *req + n + 1);
	char *data = (char *)(req + 1);
	memcpy(data, text, n);
	data[n] = '\n';
	free(text);
	uv_buf_t b = uv_buf_init(data, (unsigned)n + 1);
	req->data = c;
	if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(req);
		conn_drop(f, "write failed");
		return;
	}
	f->sent_listeners = full || json_object_size(f->pend_l) > 0;
	if (f->sent_listeners)
		proxy_keep_drop(f->keep);	/* no copy may hold a port it rebinds */
	json_object_clear(f->pend_l);
	json_object_clear(f->pend_c);
	c->synced = true;
	f->need_full = false;
	f->sent_full = full;
	f->sent_version = f->version;
	uv_timer_start(&f->ack_timer, on_ack_timeout, ACK_TIMEOUT_MS, 0);
}

/* admin.addr may have changed: the proxy takes another port when its own
 * is taken. */
static void
read_admin_addr(struct proxy_feed *f)
{
	char *text = NULL;
	size_t len;
	if (file_read_all(f->addr_path, &text, &len) < 0)
		return;
	text[strcspn(text, "\r\n")] = '\0';
	if (*text && strcmp(text, f->admin) != 0) {
		if (*f->admin)
			log_info("proxy", "the proxy's admin listener moved to %s", text);
		free(f->admin);
		f->admin = text;
	} else {
		free(text);
	}
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct feed_conn *c = req->data;
	if (status == UV_ECANCELED || c->f->conn != c)
		return;
	struct proxy_feed *f = c->f;
	if (status < 0) {
		f->connect_ms = f->connect_ms * 2 > CONNECT_MAX_MS ? CONNECT_MAX_MS
		    : f->connect_ms * 2;
		conn_drop(f, NULL);
		return;
	}
	c->connected = true;
	f->connect_ms = CONNECT_MIN_MS;
	uv_read_start((uv_stream_t *)&c->pipe, net_alloc, on_read);
	read_admin_addr(f);
	log_info("proxy", "connected to the proxy's control socket, sending version %lld",
	    (long long)f->version);
	feed_pump(f);
}

static void
feed_connect(struct proxy_feed *f)
{
	if (f->conn || f->stopping)
		return;
	struct feed_conn *c = xcalloc(1, sizeof *c);
	c->f = f;
	uv_pipe_init(f->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->creq.data = c;
	f->conn = c;
	uv_pipe_connect(&c->creq, &c->pipe, f->sock_path, on_connect);
}

static void
on_connect_timer(uv_timer_t *t)
{
	feed_connect(t->data);
}

/* ---- the proxy process ------------------------------------------------------ */

static void
watch_close(struct proxy_feed *f)
{
	proc_watch_close(f->watch);
	f->watch = NULL;
}

/* Restart back-off: at once after a proxy that ran a while (a kill or a
 * crash), then 100 ms, doubling up to 10 s while it keeps dying. */
static unsigned
restart_next(unsigned ms)
{
	if (ms == 0)
		return RESTART_MIN_MS;
	return ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : ms * 2;
}

static void
on_restart_timer(uv_timer_t *t)
{
	feed_spawn(t->data);
}

static void
on_proxy_exit(struct proc_watch *w, int wstatus, void *arg)
{
	struct proxy_feed *f = arg;
	int pid = (int)proc_watch_pid(w);
	if (wstatus != -1 && WIFSIGNALED(wstatus))
		log_warn("proxy", "proxy (pid %d) killed by signal %d", pid, WTERMSIG(wstatus));
	else if (wstatus != -1)
		log_warn("proxy", "proxy (pid %d) exited with code %d", pid,
		    WEXITSTATUS(wstatus));
	else
		log_warn("proxy", "proxy (pid %d) exited", pid);
	watch_close(f);
	uint64_t ticks;
	pid_t next = proc_pidfile_read(f->pid_path, &ticks);
	if (next > 0 && next != pid && feed_adopt(f))
		return;		/* a seamless restart: the successor serves */
	if (time_mono_ms() - f->started_ms > RESTART_RESET_MS)
		f->restart_ms = 0;
	unsigned delay = f->restart_ms;
	f->restart_ms = restart_next(delay);
	if (delay == 0) {
		/* not crash-looping: every millisecond counts, start it now */
		log_info("proxy", "restarting the proxy now");
		feed_spawn(f);
		return;
	}
	log_info("proxy", "restarting the proxy in %u ms", delay);
	uv_timer_start(&f->restart_timer, on_restart_timer, delay, 0);
}

static int
watch_start(struct proxy_feed *f, pid_t pid, uint64_t ticks, bool child)
{
	int rc = proc_watch_start(f->loop, pid, ticks, child, on_proxy_exit, f, &f->watch);
	if (rc == 0)
		f->started_ms = time_mono_ms();
	return rc;
}

static void
feed_spawn(struct proxy_feed *f)
{
	char *argv[10 + ARRAY_SIZE(f->args) + 1] = { f->exe, "proxy", "--state-dir", f->dir,
		"--admin", f->admin, "--log-format",
		log_get_format() == LOG_FORMAT_TEXT ? "text" : "json" };
	size_t n = 8;
	if (f->keep) {
		/* the sockets of the proxy that died, with what waits on them */
		argv[n++] = "--inherit";
		argv[n++] = (char *)proxy_keep_path(f->keep);
	}
	for (size_t i = 0; i < ARRAY_SIZE(f->args) && f->args[i]; i++)
		argv[n++] = f->args[i];
	pid_t pid;
	int rc = proc_spawn(argv, f->log_path, &pid);
	if (rc == 0) {
		proc_pidfile_write(f->pid_path, pid, 0);
		rc = watch_start(f, pid, 0, true);
	}
	if (rc < 0) {
		log_error("proxy", "starting %s proxy: %s; retrying in %u ms", f->exe,
		    strerror(-rc), f->restart_ms);
		uv_timer_start(&f->restart_timer, on_restart_timer, f->restart_ms, 0);
		f->restart_ms = restart_next(f->restart_ms);
		return;
	}
	log_info("proxy", "started the proxy (pid %d), admin on %s, log in %s", (int)pid,
	    f->admin, f->log_path);
	conn_drop(f, NULL);
	feed_connect(f);
}

/* The proxy a previous server left running, if proxy.pid still names it. */
static bool
feed_adopt(struct proxy_feed *f)
{
	uint64_t ticks = 0;
	pid_t pid = proc_pidfile_read(f->pid_path, &ticks);
	if (pid <= 0 || watch_start(f, pid, ticks, false) < 0)
		return false;
	read_admin_addr(f);
	log_info("proxy", "adopted the running proxy (pid %d), admin on %s", (int)pid, f->admin);
	feed_connect(f);
	return true;
}

/* ---- start / send / stop ----------------------------------------------------- */

/* A port for the admin listener: free now, then kept in admin.addr. */
static char *
pick_admin(const char *want)
{
	const char *colon = want ? strrchr(want, ':') : NULL;
	if (colon && atoi(colon + 1) > 0)
		return xstrdup(want);
	char *host = colon ? xstrndup(want, (size_t)(colon - want)) : xstrdup("127.0.0.1");
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	char *out = xasprintf("%s:%d", host, port);
	free(host);
	return out;
}

static void
init_timer(struct proxy_feed *f, uv_timer_t *t)
{
	uv_timer_init(f->loop, t);
	t->data = f;
	f->handles++;
}

int
proxy_feed_start(uv_loop_t *loop, const struct proxy_feed_config *cfg,
    struct proxy_feed **out)
{
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct proxy_feed *f = xcalloc(1, sizeof *f);
	f->loop = loop;
	f->dir = xstrdup(cfg->state_dir);
	f->exe = xstrdup(cfg->self_exe);
	for (size_t i = 0; cfg->proxy_args && cfg->proxy_args[i] &&
	    i + 1 < ARRAY_SIZE(f->args); i++)
		f->args[i] = xstrdup(cfg->proxy_args[i]);
	f->sock_path = xasprintf("%s/control.sock", f->dir);
	f->pid_path = xasprintf("%s/proxy.pid", f->dir);
	f->log_path = xasprintf("%s/proxy.log", f->dir);
	f->addr_path = xasprintf("%s/admin.addr", f->dir);
	f->restart_ms = 0;
	f->connect_ms = CONNECT_MIN_MS;
	f->tab_l = json_object();
	f->tab_c = json_object();
	f->pend_l = json_object();
	f->pend_c = json_object();
	init_timer(f, &f->restart_timer);
	init_timer(f, &f->connect_timer);
	init_timer(f, &f->ack_timer);
	f->admin = xstrdup("");
	read_admin_addr(f);
	if (*f->admin == '\0') {
		free(f->admin);
		f->admin = pick_admin(cfg->admin_address);
		char *line = xasprintf("%s\n", f->admin);
		file_write_atomic(f->addr_path, line, strlen(line), false);
		free(line);
	}
	int rc = proxy_keep_start(loop, f->dir, &f->keep);
	if (rc < 0)
		log_warn("proxy", "%s/keeper.sock: %s; a killed proxy's connections are refused "
		    "until it restarts", f->dir, strerror(-rc));
	if (!feed_adopt(f))
		feed_spawn(f);
	*out = f;
	return 0;
}

/* Records the changes of part (name -> value or null) in tab and pend. */
static size_t
feed_merge(json_t *tab, json_t *pend, const json_t *part)
{
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)part, name, v) {
		if (json_is_null(v))
			json_object_del(tab, name);
		else
			json_object_set(tab, name, v);
		json_object_set(pend, name, v);
	}
	return json_object_size(part);
}

void
proxy_feed_update(struct proxy_feed *f, int64_t v, const json_t *listeners,
    const json_t *clusters)
{
	size_t n = feed_merge(f->tab_l, f->pend_l, listeners) +
	    feed_merge(f->tab_c, f->pend_c, clusters);
	if (v > f->version)
		f->version = v;
	if (n)
		f->content_version = f->version;
	waiters_check(f);
	feed_pump(f);
}

/* The differences of want (name -> value) from have, into out. */
static void
feed_diff(const json_t *have, const json_t *want, json_t *out)
{
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)want, name, v)
		if (!json_equal(v, json_object_get(have, name)))
			json_object_set(out, name, v);
	json_object_foreach((json_t *)have, name, v)
		if (json_object_get(want, name) == NULL)
			json_object_set_new(out, name, json_null());
}

void
proxy_feed_send(struct proxy_feed *f, const json_t *snapshot)
{
	json_t *ls = json_object(), *dl = json_object(), *dc = json_object(), *l;
	size_t i;
	json_array_foreach(json_object_get(snapshot, "listeners"), i, l)
		json_object_set(ls, json_string_value(json_object_get(l, "name")), l);
	feed_diff(f->tab_l, ls, dl);
	feed_diff(f->tab_c, json_object_get(snapshot, "clusters"), dc);
	proxy_feed_update(f, json_integer_value(json_object_get(snapshot, "version")), dl, dc);
	json_decref(ls);
	json_decref(dl);
	json_decref(dc);
}

const char *
proxy_feed_admin_address(const struct proxy_feed *f)
{
	return f && *f->admin ? f->admin : NULL;
}

static void
on_feed_closed(uv_handle_t *h)
{
	struct proxy_feed *f = h->data;
	if (--f->handles > 0)
		return;
	free(f->dir);
	free(f->exe);
	for (size_t i = 0; i < ARRAY_SIZE(f->args); i++)
		free(f->args[i]);
	free(f->sock_path);
	free(f->pid_path);
	free(f->log_path);
	free(f->addr_path);
	free(f->admin);
	json_decref(f->tab_l);
	json_decref(f->tab_c);
	json_decref(f->pend_l);
	json_decref(f->pend_c);
	free(f);
}

void
proxy_feed_stop(struct proxy_feed *f)
{
	f->stopping = true;
	proxy_keep_stop(f->keep);
	f->keep = NULL;
	conn_drop(f, NULL);
	watch_close(f);
	while (f->waiters)
		waiter_finish(f->waiters, false);
	uv_close((uv_handle_t *)&f->restart_timer, on_feed_closed);
	uv_close((uv_handle_t *)&f->connect_timer, on_feed_closed);
	uv_close((uv_handle_t *)&f->ack_timer, on_feed_closed);
}

void
proxy_feed_on_activate(struct proxy_feed *f, void (*cb)(void *arg, const char *service),
    void *arg)
{
	f->activate = cb;
	f->activate_arg = arg;
}
