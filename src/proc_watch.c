/* proc_watch.c — a pidfd watched on a libuv loop (proc.h): the runtime
 * watches its shims with it, the proxy supervisor its `v6 proxy`. Adopted
 * processes (not our children) are watched the same way as our own. */
#include "proc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

struct proc_watch {
	uv_poll_t poll;
	int fd;
	pid_t pid;
	bool reap;		/* our child: waitpid it */
	bool exited;
	proc_exit_fn fn;
	void *arg;
};

static void
on_exit_readable(uv_poll_t *h, int status, int events)
{
	struct proc_watch *w = h->data;
	int wstatus = -1;
	(void)status;
	(void)events;
	uv_poll_stop(h);
	w->exited = true;
	if (w->reap && waitpid(w->pid, &wstatus, WNOHANG) != w->pid)
		wstatus = -1;
	w->reap = false;
	if (w->fn)
		w->fn(w, wstatus, w->arg);
}

int
proc_watch_start(uv_loop_t *loop, pid_t pid, uint64_t ticks, bool reap,
    proc_exit_fn fn, void *arg, struct proc_watch **out)
{
	int fd = proc_pidfd_open(pid, ticks);
	if (fd < 0)
		return fd;
	struct proc_watch *w = xcalloc(1, sizeof *w);
	w->fd = fd;
	w->pid = pid;
	w->reap = reap;
	w->fn = fn;
	w->arg = arg;
	int rc = uv_poll_init(loop, &w->poll, fd);
	if (rc < 0) {
		close(fd);
		free(w);
		return rc;
	}
	w->poll.data = w;
	*out = w;
	rc = uv_poll_start(&w->poll, UV_READABLE, on_exit_readable);
	if (rc < 0) {
		proc_watch_close(w);
		*out = NULL;
	}
	return rc;
}

pid_t
proc_watch_pid(const struct proc_watch *w)
{
	return w->pid;
}

bool
proc_watch_alive(const struct proc_watch *w)
{
	struct pollfd p = { w->fd, POLLIN, 0 };
	return !w->exited && poll(&p, 1, 0) == 0;
}

static void
on_closed(uv_handle_t *h)
{
	struct proc_watch *w = h->data;
	close(w->fd);
	free(w);
}

void
proc_watch_close(struct proc_watch *w)
{
	if (w == NULL)
		return;
	w->fn = NULL;
	if (w->reap)
		waitpid(w->pid, NULL, WNOHANG);
	uv_close((uv_handle_t *)&w->poll, on_closed);
}
