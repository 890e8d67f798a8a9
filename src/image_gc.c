/* image_gc.c — image garbage collection by disk use, as the kubelet's image
 * GC: every period, when the file system of the image store is at least
 * high% full, the least recently used images no pod uses (and unused for at
 * least min_age) are removed until the use would be back under low%. The
 * choice is the pure img_gc_select (unit-tested); the removal runs on the
 * thread pool. Started by server.c with the --image-gc-* flags. */
#include "image_int.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

struct img_gc {
	struct img_store *s;
	struct img_gc_config cfg;
	uv_timer_t timer;
	bool running;		/* a removal job in flight */
};

static int
by_last_used(const void *a, const void *b)
{
	const struct img_gc_image *x = *(const struct img_gc_image *const *)a;
	const struct img_gc_image *y = *(const struct img_gc_image *const *)b;
	return x->last_used_ms < y->last_used_ms ? -1 : x->last_used_ms > y->last_used_ms;
}

size_t
img_gc_select(const struct img_gc_image *imgs, size_t n, uint64_t capacity,
    uint64_t available, int high, int low, int64_t now_ms, int64_t min_age_ms,
    size_t *out)
{
	if (capacity == 0 || available > capacity)
		return 0;
	uint64_t used = capacity - available;
	if (used * 100 < (uint64_t)high * capacity)
		return 0;
	/* Bytes to free to get down to low%, as the kubelet computes it. */
	uint64_t target = capacity * (uint64_t)low / 100;
	uint64_t to_free = used > target ? used - target : 0;
	const struct img_gc_image **order = xcalloc(n ? n : 1, sizeof *order);
	size_t m = 0;
	uint64_t freed = 0;

	for (size_t i = 0; i < n; i++)
		order[i] = &imgs[i];
	qsort(order, n, sizeof *order, by_last_used);
	for (size_t i = 0; i < n && freed < to_free; i++) {
		const struct img_gc_image *im = order[i];
		if (im->in_use || now_ms - im->last_used_ms < min_age_ms)
			continue;
		out[m++] = (size_t)(im - imgs);
		freed += (uint64_t)(im->size > 0 ? im->size : 0);
	}
	free(order);
	return m;
}

/* ---- the periodic check ------------------------------------------------- */

struct gc_job {
	struct img_store *s;
	struct img_gc *gc;	/* the job is cancelled when the GC stops */
	char **refs;
	json_int_t *stamps;	/* each image's use stamp when it was picked */
	size_t n;
};

static void
gc_run(void *arg)
{
	struct gc_job *j = arg;
	for (size_t i = 0; i < j->n; i++) {
		char *removed = NULL, *msg = NULL;
		/* not if a pod started with it since it was picked (on the loop) */
		if (img__remove_unused(j->s, j->refs[i], j->stamps[i], &removed, &msg) == 0)
			log_info("image", "image GC removed %s", removed);
		else
			log_warn("image", "image GC: %s", msg ? msg : j->refs[i]);
		free(removed);
		free(msg);
	}
}

static void
gc_done(void *arg, bool cancelled)
{
	struct gc_job *j = arg;
	if (!cancelled)
		j->gc->running = false;
	for (size_t i = 0; i < j->n; i++)
		free(j->refs[i]);
	free(j->refs);
	free(j->stamps);
	free(j);
}

static void
gc_check(struct img_gc *gc)
{
	struct statvfs vfs;
	json_t *list, *it;
	size_t i, n;

	if (gc->running || statvfs(img_store_dir(gc->s), &vfs) < 0)
		return;
	list = img__list_used(gc->s);
	n = json_array_size(list);
	struct img_gc_image *imgs = xcalloc(n ? n : 1, sizeof *imgs);
	size_t *pick = xcalloc(n ? n : 1, sizeof *pick);
	json_array_foreach(list, i, it) {
		char *by = img__in_use(gc->s, json_string_value(json_object_get(it, "imageID")));
		const char *ref = json_string_value(json_object_get(it, "ref"));
		imgs[i] = (struct img_gc_image){
			.ref = ref,
			.size = json_integer_value(json_object_get(it, "size")),
			.last_used_ms = json_integer_value(json_object_get(it, "lastUsedMs")),
			/* a pull of it in flight: a pod is about to use it */
			.in_use = by != NULL || img__pull_pending(gc->s, ref),
		};
		free(by);
	}
	uint64_t cap = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	size_t m = img_gc_select(imgs, n, cap, avail, gc->cfg.high, gc->cfg.low,
	    time_now_ms(), gc->cfg.min_age_ms, pick);
	if (m > 0) {
		struct gc_job *j = xcalloc(1, sizeof *j);
		j->s = gc->s;
		j->gc = gc;
		j->refs = xcalloc(m, sizeof(char *));
		j->stamps = xcalloc(m, sizeof(json_int_t));
		for (size_t k = 0; k < m; k++) {
			const json_t *e = json_array_get(list, pick[k]);
			j->stamps[j->n] = json_integer_value(json_object_get(e, "useStamp"));
			j->refs[j->n++] = xstrdup(imgs[pick[k]].ref);
		}
		log_info("image", "image GC: the disk is %llu%% full (threshold %d%%): removing "
		    "%zu unused image(s)", (unsigned long long)((cap - avail) * 100 / cap),
		    gc->cfg.high, m);
		if (img__queue(gc->s, gc_run, gc_done, j, gc) == 0)
			gc->running = true;
		else
			gc_done(j, true);
	}
	free(pick);
	free(imgs);
	json_decref(list);
}

static void
on_timer(uv_timer_t *t)
{
	gc_check(t->data);
}

int
img_gc_start(struct img_store *s, const struct img_gc_config *cfg, struct img_gc **out)
{
	if (cfg->high < 0 || cfg->high > 100 || cfg->low < 0 || cfg->low > cfg->high)
		return -EINVAL;
	struct img_gc *gc = xcalloc(1, sizeof *gc);
	gc->s = s;
	gc->cfg = *cfg;
	if (gc->cfg.period_ms <= 0)
		gc->cfg.period_ms = IMG_GC_PERIOD_MS;
	uv_timer_init(img__loop(s), &gc->timer);
	gc->timer.data = gc;
	uv_timer_start(&gc->timer, on_timer, (uint64_t)gc->cfg.period_ms,
	    (uint64_t)gc->cfg.period_ms);
	*out = gc;
	return 0;
}

static void
gc_closed(uv_handle_t *h)
{
	free(h->data);
}

void
img_gc_stop(struct img_gc *gc)
{
	if (!gc)
		return;
	img_cancel(gc->s, gc);
	uv_close((uv_handle_t *)&gc->timer, gc_closed);
}
