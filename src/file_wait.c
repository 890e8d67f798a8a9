/* file_wait.c — a file's appearance in a directory, noticed on the loop
 * (file_wait.h): one uv_fs_event (inotify) on the directory, filtered by
 * name, and one timer as the safety net. Used by node_runtime.c. */
#include "file_wait.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct file_wait {
	uv_fs_event_t ev;
	uv_timer_t timer;
	bool ev_inited, has_ev;	/* the handle, and its watch started */
	int open;			/* handles not yet closed */
	char *name;
	file_wait_fn fn;
	void *arg;
};

static void
on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct file_wait *w = h->data;
	(void)events;
	/* an error (the queue overflowed) or no name: look anyway */
	if (status < 0 || filename == NULL || strcmp(filename, w->name) == 0)
		w->fn(w->arg);
}

static void
on_timer(uv_timer_t *t)
{
	struct file_wait *w = t->data;
	w->fn(w->arg);
}

int
file_wait_start(uv_loop_t *loop, const char *dir, const char *name, uint64_t poll_ms,
    uint64_t fallback_ms, file_wait_fn fn, void *arg, struct file_wait **out)
{
	struct file_wait *w = xcalloc(1, sizeof *w);
	int rc = uv_timer_init(loop, &w->timer);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->name = xstrdup(name);
	w->fn = fn;
	w->arg = arg;
	w->open = 1;
	w->timer.data = w;
	if (uv_fs_event_init(loop, &w->ev) == 0) {
		w->ev_inited = true;
		w->open++;
		w->ev.data = w;
		w->has_ev = uv_fs_event_start(&w->ev, on_event, dir, 0) == 0;
	}
	uint64_t every = w->has_ev ? poll_ms : fallback_ms;
	uv_timer_start(&w->timer, on_timer, every, every);
	*out = w;
	return 0;
}

static void
on_closed(uv_handle_t *h)
{
	struct file_wait *w = h->data;
	if (--w->open > 0)
		return;
	free(w->name);
	free(w);
}

void
file_wait_stop(struct file_wait *w)
{
	if (w == NULL)
		return;
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, on_closed);
	if (w->ev_inited) {
		if (w->has_ev)
			uv_fs_event_stop(&w->ev);
		uv_close((uv_handle_t *)&w->ev, on_closed);
	}
}
