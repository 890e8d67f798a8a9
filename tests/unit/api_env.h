/* tests/unit/api_env.h — a real store and API server on a private loop in
 * a temporary directory, with the namespace "default": the fixture of the
 * unit tests that go through the object operations (test_api_alloc.c,
 * test_ctrl_core.c, test_ctrl_endpoints.c, test_ctrl_gwstatus.c,
 * test_ctrl_routes.c). Include after cmocka.h. */
#ifndef V6_TEST_API_ENV_H
#define V6_TEST_API_ENV_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

struct api_env {
	uv_loop_t loop;
	struct store *st;
	struct api *api;
	char dir[64];
};

/* Commits what is staged and runs what that wakes, a few rounds. */
static inline void
api_env_pump(struct api_env *e)
{
	for (int i = 0; i < 20; i++) {
		api_flush(e->api);
		uv_run(&e->loop, UV_RUN_NOWAIT);
	}
}

static inline void
api_env_open(struct api_env *e)
{
	strcpy(e->dir, "/tmp/v6-test-api-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	uv_loop_init(&e->loop);
	assert_int_equal(store_open(e->dir, &e->st), 0);
	struct api_config cfg = { .listen_host = "127.0.0.1", .max_body_bytes = 1 << 20 };
	assert_int_equal(api_start(&e->loop, e->st, &cfg, &e->api), 0);
	struct api_error err = { 0 };
	assert_int_equal(api_create(e->api, kind_find_gvk("v1", "Namespace"), "",
	    json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
	    "metadata", "name", "default"), 0, NULL, &err), 0);
	api_env_pump(e);
}

/* Creates obj (consumed) through the API; its kind from apiVersion and kind. */
static inline void
api_env_create(struct api_env *e, json_t *obj)
{
	struct api_error err = { 0 };
	const struct kind *k = kind_find_gvk(obj_api_version(obj), obj_kind(obj));
	char *ns = xstrdup(obj_namespace(obj));
	assert_non_null(k);
	if (api_create(e->api, k, ns, obj, 0, NULL, &err) < 0)
		fail_msg("create %s: %s", obj_kind(obj), err.message);
	api_error_clear(&err);
	free(ns);
}

/* Pod default/name Running at ip, Ready or not, as the node agent writes it. */
static inline void
api_env_pod_status(struct api_env *e, const char *name, const char *ip, bool ready)
{
	struct api_error err = { 0 };
	const struct kind *pk = kind_find_gvk("v1", "Pod");
	json_t *pod = NULL;
	assert_int_equal(api_get(e->api, pk, "default", name, &pod, &err), 0);
	json_object_set_new(pod, "status", json_pack("{s:s, s:s, s:[{s:s, s:s}]}",
	    "phase", "Running", "podIP", ip, "conditions", "type", "Ready",
	    "status", ready ? "True" : "False"));
	if (api_update(e->api, pk, "default", pod, true, 0, NULL, &err) < 0)
		fail_msg("status: %s", err.message);
	api_error_clear(&err);
}

static inline void
api_env_close(struct api_env *e)
{
	api_stop(e->api);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	store_close(e->st);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0);
}

#endif
