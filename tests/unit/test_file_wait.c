/* test_file_wait.c — file_wait.c on a real loop and a real directory: a file
 * renamed into place or created is noticed through inotify long before the
 * safety poll would look, other names are not reported, a stopped wait
 * calls nothing, and a directory that cannot be watched falls back to the
 * poll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "file_wait.h"
#include "util.h"

#define NEVER_MS	600000		/* a poll that never comes within a test */

struct fx {
	uv_loop_t loop;
	char dir[64];
	int calls;
};

static int
setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof *fx);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/v6-file-wait-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	util_remove_tree(fx->dir);
	free(fx);
	return 0;
}

static void
on_file(void *arg)
{
	((struct fx *)arg)->calls++;
}

static void
on_deadline(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until fx->calls reaches want or ms pass; the elapsed ms. */
static int64_t
run_until_calls(struct fx *fx, int want, int ms)
{
	uv_timer_t t;
	bool expired = false;
	int64_t t0 = time_mono_ms();
	uv_timer_init(&fx->loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
	while (fx->calls < want && !expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	return time_mono_ms() - t0;
}

static void
put(struct fx *fx, const char *name)
{
	char *path = xasprintf("%s/%s", fx->dir, name);
	assert_int_equal(file_write_atomic(path, "1\n", 2, false), 0);
	free(path);
}

static void
test_rename_into_place_is_noticed_without_polling(void **state)
{
	struct fx *fx = *state;
	struct file_wait *w = NULL;
	assert_int_equal(file_wait_start(&fx->loop, fx->dir, "ctr.pid", NEVER_MS, NEVER_MS,
	    on_file, fx, &w), 0);
	put(fx, "shim.pid");			/* another name: not reported */
	run_until_calls(fx, 1, 200);
	assert_int_equal(fx->calls, 0);
	put(fx, "ctr.pid");			/* tmp file, then rename: noticed */
	int64_t ms = run_until_calls(fx, 1, 10000);
	assert_true(fx->calls >= 1);
	assert_true(ms < 10000);
	file_wait_stop(w);
	int seen = fx->calls;
	put(fx, "ctr.pid");			/* after stop: nothing */
	run_until_calls(fx, seen + 1, 200);
	assert_int_equal(fx->calls, seen);
}

static void
test_unwatchable_dir_falls_back_to_the_poll(void **state)
{
	struct fx *fx = *state;
	struct file_wait *w = NULL;
	char *gone = xasprintf("%s/missing", fx->dir);
	assert_int_equal(file_wait_start(&fx->loop, gone, "ctr.pid", NEVER_MS, 5, on_file,
	    fx, &w), 0);
	run_until_calls(fx, 3, 10000);
	assert_true(fx->calls >= 3);
	file_wait_stop(w);
	free(gone);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rename_into_place_is_noticed_without_polling,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwatchable_dir_falls_back_to_the_poll,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
