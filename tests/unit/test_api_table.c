/* test_api_table.c — server-side printing: which Accept headers ask for a
 * meta.k8s.io Table, and the Tables themselves (column names, types and
 * priorities as kubectl's printers and the CRDs declare them, typed cells,
 * the object per includeObject), for a fixed clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_table.h"

/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL

static void
test_accept_header(void **state)
{
	(void)state;
	assert_string_equal(table_accept("application/json;as=Table;v=v1;g=meta.k8s.io,"
	    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
	    "meta.k8s.io/v1");
	assert_string_equal(table_accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
	    "meta.k8s.io/v1beta1");
	assert_string_equal(table_accept("application/json, application/json; as=Table; "
	    "g=meta.k8s.io; v=v1"), "meta.k8s.io/v1");
	assert_null(table_accept("application/json"));
	assert_null(table_accept(NULL));
	assert_null(table_accept("application/json;as=Table;v=v1;g=apps"));
	assert_null(table_accept("application/yaml;as=Table;v=v1;g=meta.k8s.io"));
	enum table_include inc;
	assert_int_equal(table_include_parse(NULL, &inc), 0);
	assert_int_equal(inc, TABLE_INCLUDE_METADATA);
	assert_int_equal(table_include_parse("Object", &inc), 0);
	assert_int_equal(inc, TABLE_INCLUDE_OBJECT);
	assert_int_equal(table_include_parse("None", &inc), 0);
	assert_int_equal(inc, TABLE_INCLUDE_NONE);
	assert_int_equal(table_include_parse("object", &inc), -EINVAL);
}

static json_t *
build(const char *kind, json_t *obj, enum table_include inc)
{
	json_t *items = json_pack("[o]", obj);
	json_t *t = table_build(kind_find_user(kind), "meta.k8s.io/v1", items, inc, true, "42",
	    NULL, -1, T0);
	json_decref(items);
	return t;
}

/* "Name:string:0,Ready:string:0,..." */
static char *
columns(const json_t *t)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(t, "columnDefinitions"), i, c)
		buf_printf(&b, "%s%s:%s:%lld", i ? "," : "", json_string_value(json_object_get(c,
		    "name")), json_string_value(json_object_get(c, "type")),
		    (long long)json_integer_value(json_object_get(c, "priority")));
	return buf_steal(&b);
}

static char *
cells(const json_t *t)
{
	return json_dumps(json_object_get(json_array_get(json_object_get(t, "rows"), 0),
	    "cells"), JSON_COMPACT);
}

static void
test_deployment_table(void **state)
{
	(void)state;
	json_t *d = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:i, s:{s:{s:s, s:s}}, "
	    "s:{s:{s:[{s:s, s:s}, {s:s, s:s}]}}}, s:{s:i, s:i, s:i}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", "web",
	    "namespace", "prod", "creationTimestamp", "2025-12-31T23:55:00Z",
	    "resourceVersion", "7", "spec", "replicas", 3, "selector", "matchLabels",
	    "tier", "front", "app", "web", "template", "spec", "containers", "name", "web",
	    "image", "nginx:1.25", "name", "log", "image", "busybox",
	    "status", "readyReplicas", 2, "updatedReplicas", 3, "availableReplicas", 2);
	json_t *t = build("deploy", d, TABLE_INCLUDE_METADATA);
	char *cols = columns(t), *row = cells(t);
	assert_string_equal(cols, "Name:string:0,Ready:string:0,Up-to-date:string:0,"
	    "Available:string:0,Age:string:0,Containers:string:1,Images:string:1,"
	    "Selector:string:1");
	assert_string_equal(row, "[\"web\",\"2/3\",3,2,\"5m\",\"web,log\",\"nginx:1.25,busybox\","
	    "\"app=web,tier=front\"]");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
	    t, "columnDefinitions"), 0), "format")), "name");
	json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
	assert_string_equal(json_string_value(json_object_get(obj, "kind")),
	    "PartialObjectMetadata");
	assert_null(json_object_get(obj, "spec"));
	assert_string_equal(json_string_value(json_object_get(t, "kind")), "Table");
	assert_string_equal(json_string_value(json_object_get(json_object_get(t, "metadata"),
	    "resourceVersion")), "42");
	free(cols);
	free(row);
	json_decref(t);
}

static void
test_pod_status_restarts_and_include(void **state)
{
	(void)state;
	json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[{s:s}, {s:s}]}, "
	    "s:{s:s, s:s, s:[{s:s, s:b, s:i, s:{s:{}}, s:{s:{s:s}}}, "
	    "{s:s, s:b, s:i, s:{s:{s:s}}}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", "web-1",
	    "creationTimestamp", "2025-12-31T22:00:00Z", "spec", "nodeName", "vm",
	    "containers", "name", "a", "name", "b", "status", "phase", "Running",
	    "podIP", "127.1.0.5", "containerStatuses", "name", "a", "ready", 1,
	    "restartCount", 2, "state", "running", "lastState", "terminated", "finishedAt",
	    "2025-12-31T23:57:00Z", "name", "b", "ready", 0, "restartCount", 1, "state",
	    "waiting", "reason", "CrashLoopBackOff");
	json_t *t = build("po", p, TABLE_INCLUDE_OBJECT);
	char *cols = columns(t), *row = cells(t);
	assert_string_equal(cols, "Name:string:0,Ready:string:0,Status:string:0,"
	    "Restarts:string:0,Age:string:0,IP:string:1,Node:string:1,"
	    "Nominated Node:string:1,Readiness Gates:string:1");
	assert_string_equal(row, "[\"web-1\",\"1/2\",\"CrashLoopBackOff\",\"3 (3m ago)\",\"120m\","
	    "\"127.1.0.5\",\"vm\",\"<none>\",\"<none>\"]");
	json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
	assert_string_equal(json_string_value(json_object_get(obj, "kind")), "Pod");
	free(cols);
	free(row);
	json_decref(t);
	/* A finished pod reads Completed, as kubectl shows it; None: no object. */
	p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s}]}, s:{s:s, s:[{s:s, s:b, s:i, "
	    "s:{s:{s:s, s:i}}}]}}", "apiVersion", "v1", "kind", "Pod", "metadata", "name",
	    "job-1", "creationTimestamp", "2025-12-31T23:59:30Z", "spec", "containers", "name",
	    "a", "status", "phase", "Succeeded", "containerStatuses", "name", "a", "ready", 0,
	    "restartCount", 0, "state", "terminated", "reason", "Completed", "exitCode", 0);
	t = build("pods", p, TABLE_INCLUDE_NONE);
	row = cells(t);
	assert_string_equal(row, "[\"job-1\",\"0/1\",\"Completed\",\"0\",\"30s\",\"<none>\","
	    "\"<none>\",\"<none>\",\"<none>\"]");
	assert_null(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object"));
	free(row);
	json_decref(t);
}

static void
test_event_and_service_tables(void **state)
{
	(void)state;
	json_t *e = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s, s:i, "
	    "s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "Event", "metadata", "name",
	    "web.1", "creationTimestamp", "2025-12-31T23:50:00Z", "involvedObject", "kind",
	    "Deployment", "name", "web", "type", "Normal", "reason", "ScalingReplicaSet",
	    "message", "Scaled up", "count", 3, "firstTimestamp", "2025-12-31T23:50:00Z",
	    "lastTimestamp", "2025-12-31T23:59:00Z", "source", "component",
	    "deployment-controller", "host", "vm");
	json_t *t = build("ev", e, TABLE_INCLUDE_METADATA);
	char *cols = columns(t), *row = cells(t);
	assert_string_equal(cols, "Last Seen:string:0,Type:string:0,Reason:string:0,"
	    "Object:string:0,Subobject:string:1,Source:string:1,Message:string:0,"
	    "First Seen:string:1,Count:string:1,Name:string:1");
	assert_string_equal(row, "[\"60s (x3 over 10m)\",\"Normal\",\"ScalingReplicaSet\","
	    "\"deployment/web\",\"\",\"deployment-controller, vm\",\"Scaled up\",\"10m\",3,"
	    "\"web.1\"]");
	free(cols);
	free(row);
	json_decref(t);
	json_t *s = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:[{s:i, s:i, s:s}, "
	    "{s:i, s:s}], s:{s:s}}}", "apiVersion", "v1", "kind", "Service", "metadata", "name",
	    "web", "creationTimestamp", "2025-12-31T23:00:00Z", "spec", "type", "NodePort",
	    "clusterIP", "127.2.0.9", "ports", "port", 80, "nodePort", 30080, "protocol", "TCP",
	    "port", 53, "protocol", "UDP", "selector", "app", "web");
	t = build("svc", s, TABLE_INCLUDE_METADATA);
	row = cells(t);
	assert_string_equal(row, "[\"web\",\"NodePort\",\"127.2.0.9\",\"<none>\","
	    "\"80:30080/TCP,53/UDP\",\"60m\",\"app=web\"]");
	free(row);
	json_decref(t);
}

/* CRDs: the additionalPrinterColumns, null where the JSONPath finds nothing. */
static void
test_crd_columns(void **state)
{
	(void)state;
	json_t *r = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i}}", "apiVersion",
	    "argoproj.io/v1alpha1", "kind", "Rollout", "metadata", "name", "shop",
	    "creationTimestamp", "2025-12-31T23:59:00Z", "spec", "replicas", 4);
	json_t *t = build("rollouts", r, TABLE_INCLUDE_METADATA);
	char *cols = columns(t), *row = cells(t);
	assert_string_equal(cols, "Name:string:0,Desired:integer:0,Current:integer:0,"
	    "Up-to-date:integer:0,Available:integer:0,Age:date:0");
	assert_string_equal(row, "[\"shop\",4,null,null,null,\"60s\"]");
	free(cols);
	free(row);
	json_decref(t);
	json_t *g = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}, s:{s:[{s:s, s:s}, {s:s, s:s}],"
	    " s:[{s:s, s:s}]}}", "apiVersion", "gateway.networking.k8s.io/v1", "kind", "Gateway",
	    "metadata", "name", "edge", "creationTimestamp", "2025-12-31T23:59:00Z", "spec",
	    "gatewayClassName", "v6", "status", "addresses", "type", "IPAddress", "value",
	    "127.3.0.1", "type", "IPAddress", "value", "127.3.0.2", "conditions", "type",
	    "Programmed", "status", "True");
	t = build("gateways", g, TABLE_INCLUDE_METADATA);
	cols = columns(t);
	row = cells(t);
	assert_string_equal(cols, "Name:string:0,Class:string:0,Address:string:0,"
	    "Programmed:string:0,Age:date:0");
	assert_string_equal(row, "[\"edge\",\"v6\",\"127.3.0.1 127.3.0.2\",\"True\",\"60s\"]");
	free(cols);
	free(row);
	json_decref(t);
	json_t *h = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[s]}}", "apiVersion",
	    "gateway.networking.k8s.io/v1", "kind", "HTTPRoute", "metadata", "name", "shop",
	    "creationTimestamp", "2025-12-31T23:59:00Z", "spec", "hostnames", "shop.example.com");
	t = build("httproutes", h, TABLE_INCLUDE_METADATA);
	row = cells(t);
	assert_string_equal(row, "[\"shop\",\"[\\\"shop.example.com\\\"]\",\"60s\"]");
	free(row);
	json_decref(t);
}

/* ResourceQuota's printer; LimitRange has none: the default convertor. */
static void
test_quota_and_default_columns(void **state)
{
	(void)state;
	json_t *q = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}}, "
	    "s:{s:{s:s, s:s, s:s}, s:{s:s}}}", "apiVersion", "v1", "kind", "ResourceQuota",
	    "metadata", "name", "q", "creationTimestamp", "2025-12-31T23:59:00Z", "spec", "hard",
	    "requests.cpu", "2", "pods", "10", "limits.memory", "4Gi", "status", "hard",
	    "requests.cpu", "2", "pods", "10", "limits.memory", "4Gi", "used", "pods", "3");
	json_t *t = build("quota", q, TABLE_INCLUDE_METADATA);
	char *cols = columns(t), *row = cells(t);
	assert_string_equal(cols, "Name:string:0,Request:string:0,Limit:string:0,Age:string:0");
	assert_string_equal(row, "[\"q\",\"pods: 3/10, requests.cpu: 0/2\","
	    "\"limits.memory: 0/4Gi\",\"60s\"]");
	free(cols);
	free(row);
	json_decref(t);
	json_t *l = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
	    "LimitRange", "metadata", "name", "lr", "creationTimestamp", "2025-12-31T23:59:00Z");
	t = build("limits", l, TABLE_INCLUDE_METADATA);
	cols = columns(t);
	row = cells(t);
	assert_string_equal(cols, "Name:string:0,Created At:date:0");
	assert_string_equal(row, "[\"lr\",\"2025-12-31T23:59:00Z\"]");
	free(cols);
	free(row);
	json_decref(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_header),
		cmocka_unit_test(test_deployment_table),
		cmocka_unit_test(test_pod_status_restarts_and_include),
		cmocka_unit_test(test_event_and_service_tables),
		cmocka_unit_test(test_crd_columns),
		cmocka_unit_test(test_quota_and_default_columns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
