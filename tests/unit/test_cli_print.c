/* test_cli_print.c — the CLI's offline logic: kubectl-like tables and AGE,
 * names, the YAML emitter (round-tripped through obj_parse), apply's
 * last-applied/merge-patch computation, and verb/flag dispatch errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL

static json_t *
deploy(const char *name, const char *created, int replicas, int ready)
{
	json_t *d = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, "
	    "s:{s:i, s:{s:{s:s}}, s:{s:{s:[{s:s, s:s}, {s:s, s:s}]}}}, "
	    "s:{s:i, s:i, s:i}}",
	    "apiVersion", "apps/v1", "kind", "Deployment",
	    "metadata", "name", name, "namespace", "prod", "creationTimestamp", created,
	    "labels", "app", name,
	    "spec", "replicas", replicas, "selector", "matchLabels", "app", name,
	    "template", "spec", "containers", "name", "web", "image", "nginx:1.25",
	    "name", "log", "image", "busybox",
	    "status", "readyReplicas", ready, "updatedReplicas", ready,
	    "availableReplicas", ready);
	assert_non_null(d);
	return d;
}

static char *
render(const char *kind, int flags, json_t **objs, size_t n)
{
	const struct kind *k = kind_find_user(kind);
	assert_non_null(k);
	struct cli_table *t = cli_table_new(k, NULL, flags, T0);
	for (size_t i = 0; i < n; i++)
		cli_table_add(t, objs[i]);
	char *s = cli_table_render(t);
	cli_table_free(t);
	return s;
}

static void
test_deployment_table(void **state)
{
	(void)state;
	json_t *d[2] = {
		deploy("web", "2025-12-31T23:59:55Z", 3, 2),
		deploy("api-gateway", "2025-12-31T20:55:00Z", 1, 1),
	};
	char *s = render("deploy", 0, d, 2);
	assert_string_equal(s,
	    "NAME          READY   UP-TO-DATE   AVAILABLE   AGE\n"
	    "web           2/3     2            2           5s\n"
	    "api-gateway   1/1     1            1           3h5m\n");
	free(s);
	s = render("deployments.apps", CLI_TBL_WIDE | CLI_TBL_NS | CLI_TBL_NOHEAD, d, 1);
	assert_string_equal(s,
	    "prod   web   2/3   2   2   5s   web,log   nginx:1.25,busybox   app=web\n");
	free(s);
	s = render("deployment", CLI_TBL_KINDREF | CLI_TBL_LABELS, d, 1);
	assert_string_equal(s,
	    "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE   LABELS\n"
	    "deployment.apps/web   2/3     2            2           5s    app=web\n");
	free(s);
	json_decref(d[0]);
	json_decref(d[1]);
}

static void
test_service_and_pod_columns(void **state)
{
	(void)state;
	json_t *svc = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:i, s:s}, {s:i, s:i}]}}",
	    "apiVersion", "v1", "kind", "Service", "metadata", "name", "web",
	    "spec", "clusterIP", "10.96.0.10", "ports", "port", 80, "protocol", "TCP",
	    "port", 443, "nodePort", 30443);
	char *s = render("svc", 0, &svc, 1);
	assert_string_equal(s,
	    "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)                AGE\n"
	    "web    ClusterIP   10.96.0.10   <none>        80/TCP,443:30443/TCP   <unknown>\n");
	free(s);
	json_decref(svc);

	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s}]}, "
	    "s:{s:s, s:[{s:b, s:i, s:{s:{s:s}}}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", "web-1",
	    "creationTimestamp", "2025-12-31T23:57:30Z", "spec", "containers", "name", "web",
	    "status", "phase", "Running", "containerStatuses", "ready", 0, "restartCount", 4,
	    "state", "waiting", "reason", "CrashLoopBackOff");
	s = render("po", 0, &pod, 1);
	assert_string_equal(s,
	    "NAME    READY   STATUS             RESTARTS   AGE\n"
	    "web-1   0/1     CrashLoopBackOff   4          2m30s\n");
	free(s);
	json_decref(pod);
}

static void
test_age(void **state)
{
	(void)state;
	char out[32];
	cli_age("2025-12-31T23:59:55Z", T0, out);
	assert_string_equal(out, "5s");
	cli_age("2025-12-31T23:56:48Z", T0, out);
	assert_string_equal(out, "3m12s");
	cli_age("2025-12-29T00:00:00Z", T0, out);
	assert_string_equal(out, "3d");
	cli_age("2025-12-31T23:58:00Z", T0, out);
	assert_string_equal(out, "2m");		/* kubectl drops a zero second part */
	cli_age("2025-12-31T21:00:00Z", T0, out);
	assert_string_equal(out, "3h");
	cli_age("2025-12-31T19:30:00Z", T0, out);
	assert_string_equal(out, "4h30m");
	cli_age(NULL, T0, out);
	assert_string_equal(out, "<unknown>");
	cli_age("yesterday", T0, out);
	assert_string_equal(out, "<unknown>");
}

static void
test_names(void **state)
{
	(void)state;
	char out[256];
	assert_string_equal(cli_obj_ref(kind_find_user("deploy"), "web", out, sizeof out),
	    "deployment.apps/web");
	assert_string_equal(cli_obj_ref(kind_find_user("svc"), "web", out, sizeof out),
	    "service/web");
	assert_string_equal(cli_obj_ref(kind_find_user("namespaces"), "prod", out, sizeof out),
	    "namespace/prod");
}

static void
test_yaml_quoting(void **state)
{
	(void)state;
	static const char *const quoted[] = {
		"", "yes", "No", "true", "null", "~", "123", "-1", "1.5", "1e3", "0x1F", "0o17",
		":", "-", "- x", "a: b", "a #b", " lead", "trail ", "#x", "*ref", "&a", "!tag",
		"{x}", "[x]", "'q'", "\"q\"", "@at", "`b`", "%p", "|", ">", "12:30",
		"2024-01-02", "2026-11-28T18:46:32Z", "tab\there", "nl\nx", ".inf", "1_000",
	};
	static const char *const plain[] = {
		"web", "nginx:1.25", "app.kubernetes.io/name", "10.96.0.1", "-foo",
		"Running", "/dev/termination-log", "25%", "a b", "x-y_z",
	};
	for (size_t i = 0; i < ARRAY_SIZE(quoted); i++)
		if (!cli_yaml_needs_quotes(quoted[i]))
			fail_msg("should be quoted: [%s]", quoted[i]);
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		if (cli_yaml_needs_quotes(plain[i]))
			fail_msg("should be plain: [%s]", plain[i]);
}

static void
test_yaml_layout(void **state)
{
	(void)state;
	json_t *v = json_pack("{s:s, s:{s:i, s:[{s:s, s:[i, i]}], s:{}, s:[]}, s:s}",
	    "kind", "X", "spec", "replicas", 3, "containers", "name", "web", "ports", 80, 443,
	    "empty", "none", "text", "a\nb\n");
	char *s = cli_yaml_dump(v);
	assert_string_equal(s,
	    "kind: X\n"
	    "spec:\n"
	    "  containers:\n"
	    "  - name: web\n"
	    "    ports:\n"
	    "    - 80\n"
	    "    - 443\n"
	    "  empty: {}\n"
	    "  none: []\n"
	    "  replicas: 3\n"
	    "text: |\n"
	    "  a\n"
	    "  b\n");
	free(s);
	json_decref(v);
}

/* Every tricky value must come back from obj_parse unchanged. */
static void
test_yaml_round_trip(void **state)
{
	(void)state;
	static const char *const strs[] = {
		"yes", "123", "", ":", "- x", "a: b", "it's", "say \"hi\"", "back\\slash",
		"tab\there", "two\nlines\n", "no newline\nat end", "keep\n\n", "2024-01-02",
		"0x10", "1e3", "~", "null", "-", "#c", "trail ", " lead", "ünïcödé", "10.96.0.1",
		"ctl\x01" "x", "  indented\nblock",
	};
	json_t *data = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		char key[16];
		snprintf(key, sizeof key, "k%02zu", i);
		json_object_set_new(data, key, json_string(strs[i]));
	}
	json_object_set_new(data, "yes", json_string("key needs quotes"));
	json_t *cm = json_pack("{s:s, s:s, s:{s:s}, s:O, s:[f, f, b, n]}", "apiVersion", "v1",
	    "kind", "ConfigMap", "metadata", "name", "c", "data", data, "extra", 1.5, 2.0, 1);
	char *y = cli_yaml_dump(cm);
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	int rc = obj_parse(y, strlen(y), &docs, &errs);
	if (rc != 0 || errs.n)
		fail_msg("obj_parse failed on:\n%s\n%s", y, errs.n ? errs.v[0].message : "");
	assert_int_equal(docs.n, 1);
	if (!json_equal(docs.v[0].obj, cm)) {
		char *got = json_dumps(docs.v[0].obj, JSON_SORT_KEYS);
		fail_msg("round trip changed the document:\n%s\ngot %s", y, got);
	}
	obj_docs_free(&docs);
	errlist_free(&errs);
	free(y);
	json_decref(cm);
	json_decref(data);
}

static void
test_apply_patch(void **state)
{
	(void)state;
	json_t *last = json_loads("{\"metadata\":{\"name\":\"web\",\"labels\":{\"a\":\"1\","
	    "\"b\":\"2\"}},\"spec\":{\"replicas\":2,\"paused\":false,"
	    "\"template\":{\"x\":[1,2,3],\"old\":{\"deep\":1}}}}", 0, NULL);
	json_t *cur = json_loads("{\"metadata\":{\"name\":\"web\",\"labels\":{\"a\":\"1\"},"
	    "\"resourceVersion\":\"9\"},\"spec\":{\"replicas\":3,"
	    "\"template\":{\"x\":[1]},\"added\":{\"k\":\"v\"}}}", 0, NULL);
	json_t *want = json_loads("{\"metadata\":{\"name\":\"web\",\"labels\":{\"a\":\"1\","
	    "\"b\":null}},\"spec\":{\"replicas\":3,\"paused\":null,"
	    "\"template\":{\"x\":[1],\"old\":null},\"added\":{\"k\":\"v\"}}}", 0, NULL);
	json_t *p = obj_apply_patch(last, cur);
	if (!json_equal(p, want))
		fail_msg("patch: %s", json_dumps(p, JSON_SORT_KEYS));
	json_decref(p);
	/* no last applied config: the patch is the config itself */
	p = obj_apply_patch(NULL, want);
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(last);
	json_decref(cur);
	json_decref(want);
}

static void
test_apply_config_and_annotation(void **state)
{
	(void)state;
	json_t *obj = json_loads("{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
	    "\"resourceVersion\":\"4\",\"annotations\":{\"" OBJ_LAST_APPLIED "\":\"{}\"}},"
	    "\"data\":{\"a\":\"b\"}}", 0, NULL);
	json_t *cfg = obj_apply_config(obj);
	json_t *want = json_loads("{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},"
	    "\"data\":{\"a\":\"b\"}}", 0, NULL);
	assert_true(json_equal(cfg, want));
	json_t *sent = obj_apply_annotate(cfg);
	const char *ann = json_string_value(obj_get_path(sent, "metadata.annotations." "x"));
	assert_null(ann);
	json_t *anns = obj_get_path(sent, "metadata.annotations");
	json_t *rec = json_loads(json_string_value(json_object_get(anns, OBJ_LAST_APPLIED)), 0,
	    NULL);
	assert_true(json_equal(rec, want));	/* what apply compares next time */
	json_decref(rec);
	json_decref(sent);
	json_decref(cfg);
	json_decref(want);
	json_decref(obj);
}

static int
run_cli(int n, ...)
{
	char *argv[16];
	va_list ap;
	va_start(ap, n);
	argv[0] = (char *)"v6";
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	argv[n + 1] = NULL;
	return cli_main(n + 1, argv);
}

static void
test_dispatch_errors(void **state)
{
	(void)state;
	assert_int_equal(run_cli(2, "get", "--frobnicate"), 1);
	assert_int_equal(run_cli(1, "frobnicate"), 1);
	assert_int_equal(run_cli(3, "version", "--for", "delete"), 1);	/* not a version flag */
	assert_int_equal(run_cli(2, "get", "-o"), 1);			/* needs a value */
	assert_int_equal(run_cli(2, "help", "apply"), 0);
	assert_int_equal(run_cli(2, "delete", "--help"), 0);
	assert_int_equal(run_cli(3, "--server", "http://x:1", "--help"), 0);
	assert_int_equal(run_cli(2, "help", "nope"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deployment_table),
		cmocka_unit_test(test_service_and_pod_columns),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_yaml_quoting),
		cmocka_unit_test(test_yaml_layout),
		cmocka_unit_test(test_yaml_round_trip),
		cmocka_unit_test(test_apply_patch),
		cmocka_unit_test(test_apply_config_and_annotation),
		cmocka_unit_test(test_dispatch_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
