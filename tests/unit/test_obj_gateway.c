/* test_obj_gateway.c — the Gateway API kinds (GatewayClass, Gateway,
 * HTTPRoute): realistic manifests pass, typical mistakes are rejected with
 * their field paths, defaults are those of the upstream CRDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"

static json_t *
load(const char *yaml)
{
	struct obj_docs docs = { NULL, 0 };
	struct errlist errs = { NULL, 0, 0 };
	if (obj_parse(yaml, strlen(yaml), &docs, &errs) != 0 || docs.n != 1)
		fail_msg("parse failed: %s", errs.n ? errs.v[0].message : "not one doc");
	json_t *o = json_incref(docs.v[0].obj);
	obj_docs_free(&docs);
	return o;
}

static void
dump(const struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		print_message("  %s [%s]: %s\n", e->v[i].field, e->v[i].reason, e->v[i].message);
}

static struct errlist
check(const char *yaml)
{
	struct errlist e = { NULL, 0, 0 };
	json_t *o = load(yaml);
	int rc = obj_validate(o, &e);
	assert_int_equal(rc, e.n ? -EINVAL : 0);
	json_decref(o);
	return e;
}

static void
expect_ok(const char *yaml)
{
	struct errlist e = check(yaml);
	if (e.n) {
		dump(&e);
		fail_msg("rejected");
	}
	errlist_free(&e);
}

/* yaml must be rejected with an error on field whose message has what. */
static void
expect_err(const char *yaml, const char *field, const char *what)
{
	struct errlist e = check(yaml);
	for (size_t i = 0; i < e.n; i++)
		if (!strcmp(e.v[i].field, field) && strstr(e.v[i].message, what)) {
			errlist_free(&e);
			return;
		}
	dump(&e);
	fail_msg("no error '%s' on %s", what, field);
}

#define ROUTE_HEAD "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n" \
	"metadata: {name: web, namespace: prod}\nspec:\n"
#define GW_HEAD "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n" \
	"metadata: {name: edge, namespace: prod}\nspec:\n  gatewayClassName: v6\n"

static const char gatewayclass_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: GatewayClass\n"
    "metadata: {name: v6}\n"
    "spec:\n"
    "  controllerName: v6.io/gateway-controller\n"
    "  description: the V6 proxy\n";

static const char gateway_yaml[] =
    GW_HEAD
    "  listeners:\n"
    "  - name: http\n"
    "    protocol: HTTP\n"
    "    port: 8080\n"
    "    hostname: \"*.example.com\"\n"
    "    allowedRoutes:\n"
    "      namespaces: {from: Selector, selector: {matchLabels: {env: prod}}}\n"
    "      kinds: [{kind: HTTPRoute}]\n"
    "  - name: api\n"
    "    protocol: HTTP\n"
    "    port: 8080\n"
    "    hostname: api.example.com\n"
    "  - name: db\n"
    "    protocol: TCP\n"
    "    port: 5432\n"
    "  addresses:\n"
    "  - {type: IPAddress, value: 127.0.0.1}\n";

static const char route_yaml[] =
    ROUTE_HEAD
    "  parentRefs:\n"
    "  - {name: edge, sectionName: http}\n"
    "  - {group: \"\", kind: Service, name: web, port: 80}\n"
    "  hostnames: [shop.example.com, \"*.shop.example.com\"]\n"
    "  rules:\n"
    "  - name: canary\n"
    "    matches:\n"
    "    - path: {type: PathPrefix, value: /api}\n"
    "      headers:\n"
    "      - {name: X-Canary, value: \"true\"}\n"
    "      - {type: RegularExpression, name: User-Agent, value: \".*Firefox.*\"}\n"
    "      queryParams:\n"
    "      - {name: beta, value: \"1\"}\n"
    "      method: GET\n"
    "    filters:\n"
    "    - type: RequestHeaderModifier\n"
    "      requestHeaderModifier:\n"
    "        set: [{name: X-Env, value: prod}]\n"
    "        add: [{name: X-Trace, value: on}]\n"
    "        remove: [X-Debug]\n"
    "    - type: ResponseHeaderModifier\n"
    "      responseHeaderModifier: {remove: [Server]}\n"
    "    - type: RequestMirror\n"
    "      requestMirror:\n"
    "        backendRef: {name: shadow, port: 80}\n"
    "        percent: 10\n"
    "    backendRefs:\n"
    "    - {name: web-v1, port: 80, weight: 90}\n"
    "    - {name: web-v2, port: 80, weight: 10}\n"
    "    timeouts: {request: 10s, backendRequest: 2500ms}\n"
    "  - matches:\n"
    "    - path: {type: Exact, value: /healthz}\n"
    "    backendRefs:\n"
    "    - {name: web-v1, port: 80}\n";

static void
test_realistic_manifests_pass(void **state)
{
	(void)state;
	expect_ok(gatewayclass_yaml);
	expect_ok(gateway_yaml);
	expect_ok(route_yaml);
	expect_ok(ROUTE_HEAD "  parentRefs: [{name: edge}]\n");
	const struct kind *k = kind_find_user("httproutes");
	assert_non_null(k);
	assert_string_equal(k->api_version, "gateway.networking.k8s.io/v1");
	assert_true(k->namespaced && k->has_status);
	assert_ptr_equal(kind_find_user("gtw"), kind_find_user("gateway"));
	assert_ptr_equal(kind_find_user("httproute.gateway.networking.k8s.io"), k);
	assert_false(kind_find_user("gatewayclass")->namespaced);
}

static void
test_gateway_mistakes(void **state)
{
	(void)state;
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: TLS, port: 443}\n",
	    "spec.listeners[0].protocol", "not supported by v6");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: "
	    "{mode: Passthrough, certificateRefs: [{name: c}]}}\n", "spec.listeners[0].tls.mode",
	    "must be Terminate for protocol HTTPS");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: "
	    "{mode: Terminate}}\n", "spec.listeners[0].tls.certificateRefs",
	    "certificateRefs or options must be specified");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80, tls: "
	    "{certificateRefs: [{name: c}]}}\n", "spec.listeners[0].tls",
	    "tls must not be specified");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: "
	    "{certificateRefs: [{name: c}], options: {x: y}}}\n", "spec.listeners[0].tls.options",
	    "not supported by v6");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: FTP, port: 21}\n",
	    "spec.listeners[0].protocol", "supported values");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 0}\n",
	    "spec.listeners[0].port", "between 1 and 65535");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP}\n",
	    "spec.listeners[0].port", "required");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n"
	    "  - {name: a, protocol: HTTP, port: 81}\n", "spec.listeners[1].name", "Duplicate");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n"
	    "  - {name: b, protocol: HTTP, port: 80}\n", "spec.listeners[1]",
	    "port, protocol and hostname must be unique");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: TCP, port: 80, "
	    "hostname: a.com}\n", "spec.listeners[0].hostname", "must not be specified");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80, "
	    "hostname: \"Bad_Host\"}\n", "spec.listeners[0].hostname", "RFC 1123 hostname");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80, "
	    "allowedRoutes: {namespaces: {from: Selector}}}\n",
	    "spec.listeners[0].allowedRoutes.namespaces.selector", "must be specified");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80, "
	    "allowedRoutes: {kinds: [{kind: GRPCRoute}]}}\n",
	    "spec.listeners[0].allowedRoutes.kinds[0].kind", "not supported by v6");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80, "
	    "extra: 1}\n", "spec.listeners[0].extra", "unknown field");
	expect_err(GW_HEAD "  listeners: []\n", "spec.listeners", "at least one listener");
	expect_err(GW_HEAD "  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n"
	    "  addresses: [{value: not-an-ip}]\n", "spec.addresses[0].value",
	    "valid IP address");
	expect_err("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
	    "metadata: {name: g}\nspec:\n  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n",
	    "spec.gatewayClassName", "required");
	expect_err("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n"
	    "metadata: {name: c}\nspec: {controllerName: nodomain}\n",
	    "spec.controllerName", "domain-prefixed path");
}

static void
test_route_mistakes(void **state)
{
	(void)state;
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - path: {type: PathPrefix, "
	    "value: api}\n", "spec.rules[0].matches[0].path.value", "start with '/'");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - path: {value: /a//b}\n",
	    "spec.rules[0].matches[0].path.value", "must not contain");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - path: {type: RegularExpression, "
	    "value: \"/a.*\"}\n", "spec.rules[0].matches[0].path.type", "not supported by v6");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - path: {type: Prefix, value: /}\n",
	    "spec.rules[0].matches[0].path.type", "supported values");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - headers: [{name: \"bad header\", "
	    "value: x}]\n", "spec.rules[0].matches[0].headers[0].name", "header name");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - headers:\n      - {name: X-A, "
	    "value: a}\n      - {name: x-a, value: b}\n",
	    "spec.rules[0].matches[0].headers[1].name", "must be unique");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - headers: [{type: RegularExpression, "
	    "name: X-A, value: \"(\"}]\n", "spec.rules[0].matches[0].headers[0].value",
	    "regular expression");
	expect_err(ROUTE_HEAD "  rules:\n  - matches:\n    - method: FETCH\n",
	    "spec.rules[0].matches[0].method", "supported values");
	expect_err(ROUTE_HEAD "  rules:\n  - backendRefs: [{name: web}]\n",
	    "spec.rules[0].backendRefs[0].port", "must have port for Service reference");
	expect_err(ROUTE_HEAD "  rules:\n  - backendRefs: [{name: web, port: 80, "
	    "weight: 1000001}]\n", "spec.rules[0].backendRefs[0].weight",
	    "between 0 and 1000000");
	expect_err(ROUTE_HEAD "  rules:\n  - backendRefs: [{name: web, port: 80, weight: -1}]\n",
	    "spec.rules[0].backendRefs[0].weight", "between 0 and 1000000");
	expect_err(ROUTE_HEAD "  rules:\n  - backendRefs: [{kind: Pod, name: web, port: 80}]\n",
	    "spec.rules[0].backendRefs[0].kind", "not supported by v6");
	expect_err(ROUTE_HEAD "  rules:\n  - backendRefs: [{name: web, prt: 80}]\n",
	    "spec.rules[0].backendRefs[0].prt", "unknown field");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: RequestHeaderModifier\n",
	    "spec.rules[0].filters[0].requestHeaderModifier", "must be specified");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: RequestHeaderModifier\n"
	    "      responseHeaderModifier: {remove: [A]}\n      requestHeaderModifier: "
	    "{remove: [A]}\n", "spec.rules[0].filters[0].responseHeaderModifier",
	    "must be nil");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - {type: RequestHeaderModifier, "
	    "requestHeaderModifier: {remove: [A]}}\n    - {type: RequestHeaderModifier, "
	    "requestHeaderModifier: {remove: [B]}}\n", "spec.rules[0].filters[1].type",
	    "cannot be repeated");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: RequestHeaderModifier\n"
	    "      requestHeaderModifier:\n        set: [{name: A, value: x}, {name: a, "
	    "value: y}]\n", "spec.rules[0].filters[0].requestHeaderModifier.set[1].name",
	    "must be unique");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: ExtensionRef\n"
	    "      extensionRef: {group: x.io, kind: F, name: f}\n",
	    "spec.rules[0].filters[0].type", "not supported by v6");
	/* RequestRedirect / URLRewrite: the CRD's rules */
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: RequestRedirect\n"
	    "      requestRedirect: {statusCode: 304}\n",
	    "spec.rules[0].filters[0].requestRedirect.statusCode", "301, 302");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: URLRewrite\n"
	    "      urlRewrite: {path: {type: ReplaceFullPath, replacePrefixMatch: /a}}\n",
	    "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath", "Required value");
	expect_err(ROUTE_HEAD "  rules:\n  - matches: [{path: {type: Exact, value: /a}}]\n"
	    "    filters:\n    - type: URLRewrite\n      urlRewrite: {path: {type: "
	    "ReplacePrefixMatch, replacePrefixMatch: /b}}\n", "spec.rules[0].matches",
	    "exactly one PathPrefix match");
	expect_err(ROUTE_HEAD "  rules:\n  - filters:\n    - type: RequestMirror\n"
	    "      requestMirror: {backendRef: {name: s, port: 80}, percent: 5, "
	    "fraction: {numerator: 1}}\n", "spec.rules[0].filters[0].requestMirror",
	    "only one of percent or fraction");
	expect_err(ROUTE_HEAD "  rules:\n  - timeouts: {request: 10}\n",
	    "spec.rules[0].timeouts.request", "expected string");
	expect_err(ROUTE_HEAD "  rules:\n  - timeouts: {request: 10sec}\n",
	    "spec.rules[0].timeouts.request", "Gateway API duration");
	expect_err(ROUTE_HEAD "  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n",
	    "spec.rules[0].timeouts.backendRequest", "cannot be longer than request");
	expect_ok(ROUTE_HEAD "  rules:\n  - timeouts: {request: 0s, backendRequest: 2s}\n");
	expect_err(ROUTE_HEAD "  parentRefs: [{kind: Deployment, name: x}]\n",
	    "spec.parentRefs[0].kind", "must name a Gateway");
	expect_err(ROUTE_HEAD "  parentRefs: [{name: edge}, {name: edge}]\n",
	    "spec.parentRefs[1]", "sectionName or port must be specified");
	expect_err(ROUTE_HEAD "  hostnames: [\"-bad-\"]\n", "spec.hostnames[0]",
	    "RFC 1123 hostname");
	expect_err(ROUTE_HEAD "  rules:\n  - name: a\n  - name: a\n", "spec.rules[1].name",
	    "must be unique");
	expect_err(ROUTE_HEAD "  rules:\n  - retry: {attempts: 2}\n", "spec.rules[0].retry",
	    "not supported by v6");
}

static void
test_too_many_items(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_puts(&b, ROUTE_HEAD "  rules:\n");
	for (int i = 0; i < 17; i++)
		buf_puts(&b, "  - backendRefs: [{name: web, port: 80}]\n");
	expect_err(b.data, "spec.rules", "at most 16");
	buf_free(&b);
}

static json_t *
defaulted(const char *yaml)
{
	json_t *o = load(yaml);
	struct errlist e = { NULL, 0, 0 };
	if (obj_validate(o, &e) < 0) {
		dump(&e);
		fail_msg("rejected");
	}
	obj_default(o);
	return o;
}

static const char *
str_at(const json_t *o, const char *path)
{
	const json_t *v = obj_get_path(o, path);
	return json_string_value(v);
}

static void
test_defaults(void **state)
{
	(void)state;
	json_t *r = defaulted(ROUTE_HEAD "  parentRefs: [{name: edge}]\n");
	json_t *rule = json_array_get(obj_get_path(r, "spec.rules"), 0);
	json_t *m = json_array_get(json_object_get(rule, "matches"), 0);
	assert_string_equal(str_at(m, "path.type"), "PathPrefix");
	assert_string_equal(str_at(m, "path.value"), "/");
	json_t *ref = json_array_get(obj_get_path(r, "spec.parentRefs"), 0);
	assert_string_equal(str_at(ref, "group"), "gateway.networking.k8s.io");
	assert_string_equal(str_at(ref, "kind"), "Gateway");
	json_decref(r);

	r = defaulted(ROUTE_HEAD "  rules:\n  - matches:\n    - headers: [{name: A, value: b}]\n"
	    "    - path: {value: /x}\n    backendRefs: [{name: web, port: 80}]\n");
	rule = json_array_get(obj_get_path(r, "spec.rules"), 0);
	m = json_array_get(json_object_get(rule, "matches"), 0);
	assert_string_equal(str_at(m, "path.type"), "PathPrefix");
	assert_string_equal(str_at(json_array_get(json_object_get(m, "headers"), 0), "type"),
	    "Exact");
	m = json_array_get(json_object_get(rule, "matches"), 1);
	assert_string_equal(str_at(m, "path.type"), "PathPrefix");
	assert_string_equal(str_at(m, "path.value"), "/x");
	json_t *be = json_array_get(json_object_get(rule, "backendRefs"), 0);
	assert_int_equal(json_integer_value(json_object_get(be, "weight")), 1);
	assert_string_equal(str_at(be, "kind"), "Service");
	assert_string_equal(str_at(be, "group"), "");
	json_decref(r);

	json_t *g = defaulted(gateway_yaml);
	json_t *l = json_array_get(obj_get_path(g, "spec.listeners"), 1);
	assert_string_equal(str_at(l, "allowedRoutes.namespaces.from"), "Same");
	l = json_array_get(obj_get_path(g, "spec.listeners"), 0);
	assert_string_equal(str_at(l, "allowedRoutes.namespaces.from"), "Selector");
	assert_string_equal(str_at(json_array_get(obj_get_path(l, "allowedRoutes.kinds"), 0),
	    "group"), "gateway.networking.k8s.io");
	json_decref(g);
}

static void
test_gatewayclass_controller_is_immutable(void **state)
{
	(void)state;
	json_t *a = load(gatewayclass_yaml), *b = load(gatewayclass_yaml);
	json_object_set_new(json_object_get(b, "spec"), "controllerName",
	    json_string("other.io/x"));
	struct errlist e = { NULL, 0, 0 };
	assert_int_equal(obj_validate_update(a, b, &e), -EINVAL);
	assert_string_equal(e.v[0].field, "spec.controllerName");
	errlist_free(&e);
	json_decref(a);
	json_decref(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realistic_manifests_pass),
		cmocka_unit_test(test_gateway_mistakes),
		cmocka_unit_test(test_route_mistakes),
		cmocka_unit_test(test_too_many_items),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_gatewayclass_controller_is_immutable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
