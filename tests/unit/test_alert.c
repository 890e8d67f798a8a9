/* Unit tests of alert_cause.c and the pure parts of alert_notify.c: the
 * probable cause of an alert from a loaded world (the rollout that changed
 * the pod ranks first, unrelated and old changes stay out, a Service leads
 * to its workloads), the rollout about to abort by analysis, DingTalk's
 * signature against a vector computed with Python's hmac, and the robots'
 * message bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "obj.h"
#include "util.h"

#define T0 1800000000000LL	/* the alert's start, ms */

static json_t *
at(int64_t ms)
{
	return obj_time_json(ms);
}

static json_t *
meta(const char *kind, const char *name, const char *uid, const char *owner_kind,
    const char *owner_uid, int64_t created)
{
	json_t *o = json_pack("{s:s, s:{s:s, s:s, s:s, s:o}}", "kind", kind, "metadata", "name",
	    name, "namespace", "shop", "uid", uid, "creationTimestamp", at(created));
	if (owner_kind)
		json_object_set_new(json_object_get(o, "metadata"), "ownerReferences",
		    json_pack("[{s:s, s:s, s:s, s:b}]", "kind", owner_kind, "name", "x", "uid",
		    owner_uid, "controller", true));
	return o;
}

static json_t *
rs(const char *name, const char *uid, const char *rev, const char *image, int64_t created)
{
	json_t *o = meta("ReplicaSet", name, uid, "Rollout", "ro-web", created);
	json_object_set_new(json_object_get(o, "metadata"), "annotations",
	    json_pack("{s:s}", "rollout.argoproj.io/revision", rev));
	json_object_set_new(o, "spec", json_pack("{s:{s:{s:[{s:s, s:s, s:[s]}]}}}", "template",
	    "spec", "containers", "name", "web", "image", image, "args", image));
	return o;
}

static json_t *
event(const char *kind, const char *name, const char *reason, const char *msg, int64_t t)
{
	return json_pack("{s:s, s:{s:s}, s:{s:s, s:s}, s:s, s:s, s:o, s:i}", "kind", "Event",
	    "metadata", "namespace", "shop", "involvedObject", "kind", kind, "name", name,
	    "reason", reason, "message", msg, "lastTimestamp", at(t), "count", 1);
}

static void
world(struct alert_world *w)
{
	memset(w, 0, sizeof *w);
	json_t *web = meta("Rollout", "web", "ro-web", NULL, NULL, T0 - 7200000);
	json_object_set_new(web, "spec", json_pack("{s:{s:{s:{s:s}}}}", "template", "metadata",
	    "labels", "app", "web"));
	json_t *other = meta("Rollout", "other", "ro-other", NULL, NULL, T0 - 7200000);
	w->rollouts = json_pack("[o, o]", web, other);
	w->rsets = json_pack("[o, o, o]", rs("web-1", "rs-1", "1", "app:1", T0 - 3000000),
	    rs("web-2", "rs-2", "2", "app:2", T0 - 60000),
	    rs("other-2", "rs-o2", "2", "o:2", T0 - 30000));
	json_object_set_new(json_object_get(json_array_get(w->rsets, 2), "metadata"),
	    "ownerReferences", json_pack("[{s:s, s:s, s:s, s:b}]", "kind", "Rollout", "name",
	    "other", "uid", "ro-other", "controller", true));
	json_t *pod = meta("Pod", "web-2-x", "pod-1", "ReplicaSet", "rs-2", T0 - 55000);
	json_object_set_new(pod, "status", json_pack("{s:[{s:s, s:i, s:{s:{s:s, s:i, s:o}}}]}",
	    "containerStatuses", "name", "web", "restartCount", 2, "lastState", "terminated",
	    "reason", "Error", "exitCode", 1, "finishedAt", at(T0 - 5000)));
	w->pods = json_pack("[o]", pod);
	w->events = json_pack("[o, o, o, o]",
	    event("Rollout", "web", "RolloutUpdated", "Rollout updated to revision 2", T0 - 60000),
	    event("Pod", "web-2-x", "Unhealthy", "Readiness probe failed", T0 - 10000),
	    event("Rollout", "other", "RolloutUpdated", "Rollout updated to revision 2",
	    T0 - 30000),
	    event("Rollout", "web", "RolloutCompleted", "old news", T0 - 2 * 3600000));
	w->services = json_pack("[{s:s, s:{s:s, s:s}, s:{s:{s:s}}}]", "kind", "Service",
	    "metadata", "name", "web", "namespace", "shop", "spec", "selector", "app", "web");
	w->node_events = json_array();
}

static bool
has(const json_t *changes, const char *change, const char *object, const char *detail)
{
	size_t i;
	const json_t *c;
	json_array_foreach(changes, i, c)
		if (!strcmp(obj_str(c, "change"), change) && !strcmp(obj_str(c, "object"), object) &&
		    strstr(obj_str(c, "detail"), detail))
			return true;
	return false;
}

static void
test_cause_of_a_pod_alert_is_its_rollout(void **state)
{
	(void)state;
	struct alert_world w;
	world(&w);
	json_t *labels = json_pack("{s:s, s:s, s:s}", "alertname", "PodNotReady", "namespace",
	    "shop", "pod", "web-2-x");
	json_t *c = alert_cause(labels, T0, ALERT_CAUSE_WINDOW_MS, &w);
	/* changes first (the rollout's new revision), symptoms after */
	const json_t *first = json_array_get(c, 0);
	assert_string_equal(obj_str(first, "object"), "rollout/web");
	assert_string_equal(obj_str(first, "ref"), "v6 rollout history rollout/web -n shop");
	assert_true(has(c, "rollout started", "rollout/web", "revision 2"));
	assert_true(has(c, "image changed", "rollout/web",
	    "web=app:1 -> web=app:2; changed: containers[web].args"));
	assert_true(has(c, "probe failed", "pod/web-2-x", "Readiness"));
	assert_true(has(c, "pod restarts", "pod/web-2-x", "restarted 2 times, last Error"));
	/* another rollout's change and a change outside the window are not causes */
	assert_false(has(c, "rollout started", "rollout/other", ""));
	assert_false(has(c, "rollout promoted", "rollout/web", ""));
	char *line = alert_cause_line(c, T0);
	assert_non_null(strstr(line, "rollout/web "));
	assert_non_null(strstr(line, "60s before the alert"));
	assert_non_null(strstr(line, "`v6 rollout history rollout/web -n shop`"));
	free(line);
	json_decref(c);

	/* through the Service's selector; the namespace defaults for proxy labels */
	json_decref(labels);
	labels = json_pack("{s:s, s:s}", "alertname", "ErrorBudgetBurn", "service", "web");
	assert_string_equal(alert_namespace(labels), "default");
	c = alert_cause(labels, T0, ALERT_CAUSE_WINDOW_MS, &w);
	assert_true(has(c, "rollout started", "rollout/web", "revision 2"));
	json_decref(c);

	/* the proxy's form of the label: "NAMESPACE/NAME" */
	json_decref(labels);
	labels = json_pack("{s:s, s:s}", "alertname", "ErrorBudgetBurn", "service", "shop/web");
	assert_string_equal(alert_namespace(labels), "shop");
	c = alert_cause(labels, T0, ALERT_CAUSE_WINDOW_MS, &w);
	assert_true(has(c, "rollout started", "rollout/web", "revision 2"));
	json_decref(c);

	/* labels naming nothing V6 runs: nothing to say */
	json_decref(labels);
	labels = json_pack("{s:s, s:s}", "alertname", "X", "instance", "h:9100");
	assert_null(alert_namespace(labels));
	c = alert_cause(labels, T0, ALERT_CAUSE_WINDOW_MS, &w);
	assert_int_equal(json_array_size(c), 0);
	assert_null(alert_cause_line(c, T0));
	json_decref(c);
	json_decref(labels);
	alert_world_free(&w);
}

static void
test_rollout_about_to_abort(void **state)
{
	(void)state;
	struct alert_world w;
	world(&w);
	json_t *labels = json_pack("{s:s, s:s}", "namespace", "shop", "pod", "web-2-x");
	json_t *run = meta("AnalysisRun", "web-2-run", "ar-1", "Rollout", "ro-web", T0 - 20000);
	json_object_set_new(run, "status", json_pack("{s:s, s:[{s:s, s:i}]}", "phase",
	    "Running", "metricResults", "name", "success-rate", "failed", 0));
	w.analysisruns = json_pack("[o]", run);
	assert_null(alert_aborting_rollout(labels, &w));
	json_object_set_new(json_array_get(obj_get_path(run, "status.metricResults"), 0),
	    "failed", json_integer(1));
	const json_t *ro = alert_aborting_rollout(labels, &w);
	assert_non_null(ro);
	assert_string_equal(obj_name(ro), "web");
	json_decref(labels);
	alert_world_free(&w);
}

static void
test_dingtalk_sign_matches_the_documented_method(void **state)
{
	(void)state;
	/* python3: quote_plus(b64encode(hmac.new(s, f"{ts}\n{s}", sha256).digest())) */
	char *sign = alert_dingtalk_sign(1577262236757LL, "SEC0123456789abcdef");
	assert_string_equal(sign, "Pgr6tpIpjVrMPPJUPkaI9sivFPPTYOy5zIOMF2GPFMA%3D");
	free(sign);
}

static void
test_robot_bodies(void **state)
{
	(void)state;
	json_t *n = json_pack("{s:s, s:{s:s}, s:[{s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}}]}",
	    "status", "firing", "commonLabels", "alertname", "WebDown", "alerts", "status",
	    "firing", "labels", "alertname", "WebDown", "severity", "page", "namespace", "shop",
	    "annotations", "summary", "web is down", ALERT_CAUSE_ANNOTATION,
	    "rollout/web rollout started");
	json_t *d = alert_receiver_body("dingtalk", n);
	assert_string_equal(obj_str(d, "msgtype"), "markdown");
	assert_string_equal(obj_str_at(d, "markdown.title"), "[FIRING:1] WebDown");
	assert_non_null(strstr(obj_str_at(d, "markdown.text"),
	    "> Probable cause: rollout/web rollout started"));
	json_t *wc = alert_receiver_body("wecom", n);
	assert_non_null(strstr(obj_str_at(wc, "markdown.content"), "web is down"));
	json_t *wh = alert_receiver_body("webhook", n);
	assert_ptr_equal(wh, n);
	assert_null(alert_receiver_body("pager", n));
	json_decref(d);
	json_decref(wc);
	json_decref(wh);
	json_decref(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cause_of_a_pod_alert_is_its_rollout),
		cmocka_unit_test(test_rollout_about_to_abort),
		cmocka_unit_test(test_dingtalk_sign_matches_the_documented_method),
		cmocka_unit_test(test_robot_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
