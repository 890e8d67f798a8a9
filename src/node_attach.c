/* node_attach.c — pods/attach: a client joins the stdio of a container's
 * running main process (kubectl attach, `v6 attach`), over the WebSocket
 * subprotocols v5.channel.k8s.io / v4.channel.k8s.io that exec speaks
 * (node_exec.c): 1 stdout and 2 stderr as the container writes them from
 * the moment of the attach on (followed in the CRI log the shim keeps:
 * one follower per stream, or one for both on channel 1 when the client
 * asked for no stderr), 0 the client's stdin into the container's stdin
 * FIFO (a container started with stdin: true, node_shim.c; for the others
 * stdin is dropped, as containerd does), 3 a Success Status when the
 * container exits. Containers get no terminal, so resize messages are
 * ignored. The agent keeps each pod's attaches in a list and ends them
 * when a container exits. Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "net.h"
#include "node_log.h"
#include "util.h"
#include "ws.h"

enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_STATUS = 3 };

/* stdin queued to the container past which the client is not read */
#define ATTACH_STDIN_HIGH	(256u << 10)

struct nattach_out {
	struct nattach *a;
	int ch;
	struct log_follower *f;		/* NULL: not following */
};

struct nattach {
	struct nattach *next, **list;	/* in the agent's list while linked */
	size_t ctr;
	struct ws *ws;
	struct nattach_out out[2];
	uv_pipe_t in;
	bool in_open;			/* in is a live handle */
	bool in_closing;
	unsigned in_writes;		/* writes in flight (net_send) */
	bool done;			/* ended: the client or the container went */
};

static void
attach_unlink(struct nattach *a)
{
	for (struct nattach **pp = a->list; pp && *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	a->list = NULL;
}

static void
maybe_free(struct nattach *a)
{
	if (a->done && !a->in_open && a->in_writes == 0)
		free(a);
}

static void
on_in_closed(uv_handle_t *h)
{
	struct nattach *a = h->data;
	a->in_open = false;
	maybe_free(a);
}

/* Stops everything; status: send the end's Status first (the container
 * exited), else the client is gone. */
static void
attach_finish(struct nattach *a, bool status)
{
	static const char ok[] = "{\"metadata\":{},\"status\":\"Success\"}";
	if (a->done)
		return;
	for (int i = 0; i < 2 && status; i++)
		if (a->out[i].f)
			log_follow_poll(a->out[i].f);	/* the last lines first */
	a->done = true;
	attach_unlink(a);
	for (int i = 0; i < 2; i++)
		if (a->out[i].f) {
			log_follow_stop(a->out[i].f);
			a->out[i].f = NULL;
		}
	if (status)
		ws_send(a->ws, CH_STATUS, ok, sizeof ok - 1);
	ws_end(a->ws);
	a->ws = NULL;
	if (a->in_open && !a->in_closing) {
		a->in_closing = true;
		uv_close((uv_handle_t *)&a->in, on_in_closed);
	}
	maybe_free(a);
}

static void
on_output(void *arg, const char *data, size_t len)
{
	struct nattach_out *o = arg;
	if (data && len && !o->a->done)
		ws_send(o->a->ws, o->ch, data, len);
}

static void
on_in_written(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct nattach *a = w->owner;
	uv_stream_t *s = req->handle;
	(void)status;
	free(w);
	a->in_writes--;
	if (!a->done && uv_stream_get_write_queue_size(s) < ATTACH_STDIN_HIGH / 2)
		ws_pause(a->ws, false);
	maybe_free(a);
}

static void
write_stdin(struct nattach *a, const char *data, size_t len)
{
	if (!a->in_open || a->in_closing || len == 0)
		return;		/* a container without stdin: dropped */
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	if (net_send((uv_stream_t *)&a->in, &b, 1, &a->in_writes, on_in_written, a, 0) < 0)
		return;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&a->in) > ATTACH_STDIN_HIGH)
		ws_pause(a->ws, true);
}

static void
on_message(struct ws *w, const char *data, size_t len, void *arg)
{
	struct nattach *a = arg;
	(void)w;
	/* 4 (resize) and 255 (end of stdin: the container's stays open for
	 * the next attach, stdinOnce is not honoured) need nothing */
	if (len > 0 && !a->done && (unsigned char)data[0] == CH_STDIN)
		write_stdin(a, data + 1, len - 1);
}

static void
on_closed(struct ws *w, void *arg)
{
	(void)w;
	attach_finish(arg, false);
}

static const struct ws_ops attach_ops = { on_message, on_closed };

/* The container's stdin FIFO for writing, or -1 (no stdin asked or none
 * there). */
static int
open_stdin(const char *path)
{
	if (path == NULL)
		return -1;
	return open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

int
nattach_start(uv_loop_t *loop, struct http_req *req, struct nattach **list, size_t ctr,
    const char *log_path, const char *stdin_path, bool separate_stderr, char **err)
{
	static const char *const ours[] = { "v5.channel.k8s.io", "v4.channel.k8s.io" };
	const char *proto = ws_wanted(req) ? ws_pick(req, ours, ARRAY_SIZE(ours)) : NULL;
	if (proto == NULL) {
		ws_refuse(req, "v6 serves attach over WebSocket with one of the subprotocols "
		    "v5.channel.k8s.io, v4.channel.k8s.io");
		return 0;
	}
	struct nattach *a = xcalloc(1, sizeof *a);
	a->ctr = ctr;
	a->out[0] = (struct nattach_out){ a, CH_STDOUT, NULL };
	a->out[1] = (struct nattach_out){ a, CH_STDERR, NULL };
	/* from now on: what the container writes next */
	struct log_opts o = { .tail_lines = 0, .stream = separate_stderr ? "stdout" : NULL };
	int rc = log_follow_start(loop, log_path, &o, on_output, &a->out[0], &a->out[0].f);
	if (rc == 0 && separate_stderr) {
		o.stream = "stderr";
		rc = log_follow_start(loop, log_path, &o, on_output, &a->out[1], &a->out[1].f);
	}
	if (rc < 0) {
		*err = xasprintf("following the container's output: %s", strerror(-rc));
		if (a->out[0].f)
			log_follow_stop(a->out[0].f);
		free(a);
		return rc;
	}
	int fd = open_stdin(stdin_path);
	if (fd >= 0) {
		uv_pipe_init(loop, &a->in, 0);
		a->in.data = a;
		a->in_open = true;
		if (uv_pipe_open(&a->in, fd) < 0) {
			close(fd);
			a->in_closing = true;
			uv_close((uv_handle_t *)&a->in, on_in_closed);
		}
	}
	a->ws = ws_open(req, proto, &attach_ops, a);
	if (a->ws == NULL) {		/* answered 400 */
		a->done = true;
		for (int i = 0; i < 2; i++)
			if (a->out[i].f)
				log_follow_stop(a->out[i].f);
		if (a->in_open && !a->in_closing)
			uv_close((uv_handle_t *)&a->in, on_in_closed);
		maybe_free(a);
		return 0;
	}
	a->list = list;
	a->next = *list;
	*list = a;
	return 0;
}

void
nattach_exited(struct nattach **list, size_t ctr)
{
	struct nattach *a = *list, *next;
	for (; a; a = next) {
		next = a->next;
		if (ctr == SIZE_MAX || a->ctr == ctr)
			attach_finish(a, true);
	}
}
