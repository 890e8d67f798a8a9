/* node_attach.c — pods/attach: a client joins the stdio of a container's
 * running main process (kubectl attach, `v6 attach`), over the channels
 * exec speaks (WebSocket v5.channel.k8s.io / v4.channel.k8s.io, or
 * kubectl's SPDY/3.1 fallback: node_stream.c): 1 stdout and 2 stderr as the container writes them from
 * the moment of the attach on (followed in the CRI log the shim keeps:
 * one follower per stream, or one for both on channel 1 when the client
 * asked for no stderr), 0 the client's stdin into the container's stdin
 * FIFO (a container started with stdin: true, node_shim.c; for the others
 * stdin is dropped, as containerd does), 3 a Success Status when the
 * container exits, 4 a resize, passed on to the shim ("size ROWS COLS"
 * on its control FIFO DIR/ctl) for a container with tty: true, whose
 * output (stdout, the pty's) is channel 1. The end of an attach's stdin
 * (255 [0], or the client gone) writes "end" there: the shim of a
 * stdinOnce container then drops its own writer, so the container reads
 * EOF (node_shim.c). The agent keeps each pod's attaches in a list and
 * ends them when a container exits. Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "net.h"
#include "node_log.h"
#include "util.h"
#include "ws.h"

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
	struct nstream *ns;		/* NULL once ended */
	struct nattach_out out[2];
	uv_pipe_t in;
	bool in_open;			/* in is a live handle */
	bool in_closing;
	unsigned in_writes;		/* writes in flight (net_send) */
	bool done;			/* ended: the client or the container went */
	bool in_ended;			/* "end" told to the shim */
	char *ctl;			/* the shim's control FIFO, or NULL */
};

/* One line to the shim's control FIFO; dropped when it has none (a
 * container without stdin or tty) or it is full. */
static void
tell_shim(const struct nattach *a, const char *line)
{
	int fd = a->ctl ? open(a->ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, strlen(line));	/* < PIPE_BUF: atomic */
	(void)w;
	close(fd);
}

static void on_in_closed(uv_handle_t *h);

/* Closes our writer of the container's stdin (the queued writes are
 * dropped: to be called once they are done, or on the way out). */
static void
close_in(struct nattach *a)
{
	if (a->in_open && !a->in_closing) {
		a->in_closing = true;
		uv_close((uv_handle_t *)&a->in, on_in_closed);
	}
}

/* The end of this attach's stdin, once: "end" to the shim, and our writer
 * closed once what was queued is written, so that the container of a
 * stdinOnce one has no writer left and reads EOF. */
static void
end_stdin(struct nattach *a)
{
	if (!a->in_open || a->in_ended)
		return;
	a->in_ended = true;
	tell_shim(a, "end\n");
	if (a->in_writes == 0)
		close_in(a);
}

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
	if (a->done && !a->in_open && a->in_writes == 0) {
		free(a->ctl);
		free(a);
	}
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
	if (!status)
		end_stdin(a);
	nstream_end(a->ns, status ? ok : NULL);
	a->ns = NULL;
	close_in(a);
	maybe_free(a);
}

static void
on_output(void *arg, const char *data, size_t len)
{
	struct nattach_out *o = arg;
	if (data && len && !o->a->done)
		nstream_send(o->a->ns, o->ch, data, len);
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
	if (a->in_ended && a->in_writes == 0)
		close_in(a);
	if (!a->done && uv_stream_get_write_queue_size(s) < ATTACH_STDIN_HIGH / 2)
		nstream_pause(a->ns, false);
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
		nstream_pause(a->ns, true);
}

/* A terminal size {"Width":W,"Height":H}: "size ROWS COLS" to the shim. */
static void
resize(struct nattach *a, const char *data, size_t len)
{
	unsigned short rows, cols;
	char line[64];
	if (nexec_parse_size(data, len, &rows, &cols) < 0)
		return;
	snprintf(line, sizeof line, "size %u %u\n", rows, cols);
	tell_shim(a, line);
}

static void
on_stdin_data(void *arg, const char *data, size_t len)
{
	struct nattach *a = arg;
	if (!a->done)
		write_stdin(a, data, len);
}

static void
on_stdin_end(void *arg)
{
	struct nattach *a = arg;
	if (!a->done)
		end_stdin(a);
}

static void
on_resize(void *arg, const char *data, size_t len)
{
	struct nattach *a = arg;
	if (!a->done)
		resize(a, data, len);
}

static void
on_client_gone(void *arg)
{
	attach_finish(arg, false);
}

static const struct nstream_ops attach_ops = { on_stdin_data, on_stdin_end, on_resize,
	on_client_gone, NULL };

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
    const char *log_path, const char *stdin_path, const char *ctl_path, bool separate_stderr,
    char **err)
{
	const char *proto;
	if (nstream_check(req, "attach", &proto))
		return 0;
	if (proto == NULL) {
		ws_refuse(req, "v6 serves attach over WebSocket (v5.channel.k8s.io, "
		    "v4.channel.k8s.io) or SPDY/3.1");
		return 0;
	}
	struct nattach *a = xcalloc(1, sizeof *a);
	a->ctr = ctr;
	a->ctl = ctl_path ? xstrdup(ctl_path) : NULL;
	a->out[0] = (struct nattach_out){ a, NSTREAM_STDOUT, NULL };
	a->out[1] = (struct nattach_out){ a, NSTREAM_STDERR, NULL };
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
		free(a->ctl);
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
	a->ns = nstream_open(loop, req, proto, &attach_ops, a);
	if (a->ns == NULL) {		/* answered 400 */
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
	if (nstream_gone(a->ns))
		attach_finish(a, false);	/* the client left during the upgrade */
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
