/* mem_trim.c — gives the heap's free pages back to the system after a burst
 * of writes. A burst (100 pods starting: their parses, status writes and
 * Events) leaves free chunks all over glibc's heap, which only returns its
 * top on its own; malloc_trim() releases the free pages inside it too. The
 * server starts this after its parts: a store watch of every resource
 * restarts a quiet timer, and once no write has come for MEM_TRIM_QUIET_MS
 * the heap is trimmed once. An idle server does nothing (no timer runs). */
#include <malloc.h>
#include <stdlib.h>
#include <uv.h>

#include "log.h"
#include "mem_trim.h"
#include "store.h"
#include "util.h"

#define MEM_TRIM_QUIET_MS 200	/* no write for this long: the burst is over */

struct mem_trim {
	uv_timer_t timer;
	struct store_watch *sw;
};

static void
on_quiet(uv_timer_t *t)
{
	(void)t;
	uint64_t t0 = uv_hrtime();
	int freed = malloc_trim(0);
	log_debug("mem", "heap trimmed after a burst of writes (%s, %.1f ms)",
	    freed ? "pages returned" : "nothing to return", (double)(uv_hrtime() - t0) / 1e6);
}

static void
on_event(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct mem_trim *m = arg;
	(void)ev;
	(void)res;
	(void)obj;
	(void)rv;
	uv_timer_start(&m->timer, on_quiet, MEM_TRIM_QUIET_MS, 0);
}

int
mem_trim_start(uv_loop_t *loop, struct store *st, struct mem_trim **out)
{
	struct mem_trim *m = xcalloc(1, sizeof *m);
	int rc;

	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	if ((rc = store_watch_start(st, NULL, NULL, 0, on_event, m, &m->sw)) < 0) {
		mem_trim_stop(m);
		return rc;
	}
	*out = m;
	return 0;
}

static void
on_closed(uv_handle_t *h)
{
	free(h->data);
}

void
mem_trim_stop(struct mem_trim *m)
{
	if (!m)
		return;
	store_watch_stop(m->sw);
	uv_close((uv_handle_t *)&m->timer, on_closed);
}
