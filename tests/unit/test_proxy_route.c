/* test_proxy_route.c — the proxy's pure routing decisions (proxy_route.c)
 * without sockets: host and path matching rules, header/query/cookie
 * matches, route compilation errors, smooth weighted backend choice,
 * endpoint choice and passive outlier ejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_int.h"

static struct http_header hdrs[8];

static struct http_req
mkreq(const char *path, const char *query, const char *host, const char *cookie,
    const char *xname, const char *xval)
{
	struct http_req q;
	size_t n = 0;

	memset(&q, 0, sizeof(q));
	q.method = "GET";
	q.path = path;
	q.query = query ? query : "";
	if (host)
		hdrs[n++] = (struct http_header){ (char *)"Host", (char *)host };
	if (cookie)
		hdrs[n++] = (struct http_header){ (char *)"Cookie", (char *)cookie };
	if (xname)
		hdrs[n++] = (struct http_header){ (char *)xname, (char *)xval };
	q.headers = hdrs;
	q.nheaders = n;
	return q;
}

static void
test_host_patterns(void **state)
{
	(void)state;
	assert_true(px_host_matches("shop.example", "SHOP.example", 12));
	assert_false(px_host_matches("shop.example", "shop.example.com", 16));
	assert_true(px_host_matches("*.example", "a.example", 9));
	assert_true(px_host_matches("*.example", "a.b.example", 11));
	assert_false(px_host_matches("*.example", "example", 7));
	assert_false(px_host_matches("*.example", ".example", 8));
}

static void
test_path_prefix_on_element_boundaries(void **state)
{
	(void)state;
	assert_true(px_path_matches(PX_M_PREFIX, "/api", 4, "/api"));
	assert_true(px_path_matches(PX_M_PREFIX, "/api", 4, "/api/"));
	assert_true(px_path_matches(PX_M_PREFIX, "/api", 4, "/api/v1"));
	assert_false(px_path_matches(PX_M_PREFIX, "/api", 4, "/apiv1"));
	assert_true(px_path_matches(PX_M_PREFIX, "/", 1, "/anything"));
	assert_true(px_path_matches(PX_M_EXACT, "/a", 2, "/a"));
	assert_false(px_path_matches(PX_M_EXACT, "/a", 2, "/a/"));
}

static void
test_cookie_parsing(void **state)
{
	struct http_req q = mkreq("/", NULL, NULL, "a=1; canary=always;b=2", NULL, NULL);
	char v[16];

	(void)state;
	assert_true(px_cookie_get(&q, "canary", v, sizeof(v)));
	assert_string_equal(v, "always");
	assert_true(px_cookie_get(&q, "b", v, sizeof(v)));
	assert_string_equal(v, "2");
	assert_false(px_cookie_get(&q, "can", v, sizeof(v)));
}

static struct px_table *
table_with(const char *const *cluster_names, size_t n)
{
	struct px_table *t = calloc(1, sizeof(*t));

	t->clusters = calloc(n, sizeof(*t->clusters));
	t->nclusters = n;
	for (size_t i = 0; i < n; i++) {
		t->clusters[i] = calloc(1, sizeof(**t->clusters));
		t->clusters[i]->name = (char *)cluster_names[i];
		t->clusters[i]->service = (char *)"default/web";
	}
	return t;
}

static void
table_gone(struct px_table *t)
{
	for (size_t i = 0; i < t->nclusters; i++)
		free(t->clusters[i]);
	free(t->clusters);
	free(t);
}

static int
compile(struct px_table *t, struct px_route *r, const char *js, char **err)
{
	json_t *j = json_loads(js, 0, NULL);
	int rc;

	assert_non_null(j);
	memset(r, 0, sizeof(*r));
	*err = NULL;
	rc = px_route_compile(j, t, r, err);
	json_decref(j);
	return rc;
}

static void
test_matches_headers_query_cookies(void **state)
{
	static const char *const names[] = { "a", "b" };
	struct px_table *t = table_with(names, 2);
	struct px_route r;
	struct http_req q;
	char *err;

	(void)state;
	assert_int_equal(compile(t, &r, "{\"name\": \"r\", \"hostnames\": [\"*.shop.example\"],"
	    " \"matches\": [{\"path\": {\"type\": \"PathPrefix\", \"value\": \"/api\"},"
	    " \"headers\": [{\"name\": \"x-v\", \"type\": \"Prefix\", \"value\": \"be\"}]},"
	    " {\"queryParams\": [{\"name\": \"v\", \"type\": \"RegularExpression\","
	    " \"value\": \"^[0-9]+$\"}]}, {\"cookies\": [{\"name\": \"c\", \"value\": \"1\"}]}],"
	    " \"backends\": [{\"cluster\": \"a\"}]}", &err), 0);
	q = mkreq("/api/x", NULL, "www.shop.example:80", NULL, "X-V", "beta");
	assert_true(px_route_matches(&r, &q));
	q = mkreq("/api/x", NULL, "www.shop.example", NULL, "X-V", "alpha");
	assert_false(px_route_matches(&r, &q));
	q = mkreq("/other", "v=42", "www.shop.example", NULL, NULL, NULL);
	assert_true(px_route_matches(&r, &q));
	q = mkreq("/other", "v=4x", "www.shop.example", NULL, NULL, NULL);
	assert_false(px_route_matches(&r, &q));
	q = mkreq("/other", NULL, "www.shop.example", "c=1", NULL, NULL);
	assert_true(px_route_matches(&r, &q));
	q = mkreq("/api/x", NULL, "elsewhere.example", NULL, "X-V", "beta");
	assert_false(px_route_matches(&r, &q));
	px_route_clear(&r);
	/* HTTPRoute matches[].method: only that method matches. */
	assert_int_equal(compile(t, &r, "{\"name\": \"m\", \"matches\": [{\"method\": \"POST\","
	    " \"path\": {\"type\": \"Exact\", \"value\": \"/orders\"}}],"
	    " \"backends\": [{\"cluster\": \"a\"}]}", &err), 0);
	q = mkreq("/orders", NULL, NULL, NULL, NULL, NULL);
	assert_false(px_route_matches(&r, &q));		/* GET */
	q.method = "POST";
	assert_true(px_route_matches(&r, &q));
	px_route_clear(&r);
	table_gone(t);
}

static void
test_compile_errors(void **state)
{
	static const char *const names[] = { "a" };
	static const char *const bad[] = {
		"{\"backends\": []}",
		"{\"name\": \"r\", \"backends\": [{\"cluster\": \"zz\"}]}",
		"{\"name\": \"r\", \"backends\": [{\"cluster\": \"a\", \"weight\": -1}]}",
		"{\"name\": \"r\", \"matches\": [{\"path\": {\"type\": \"Exact\", \"value\": \"x\"}}],"
		    " \"backends\": []}",
		"{\"name\": \"r\", \"matches\": [{\"headers\": [{\"name\": \"a\", \"type\":"
		    " \"RegularExpression\", \"value\": \"[\"}]}], \"backends\": []}",
		"{\"name\": \"r\", \"timeouts\": {\"request\": \"soon\"}, \"backends\": []}",
		"{\"name\": \"r\", \"matches\": [{\"method\": \"FETCH\"}], \"backends\": []}",
	};
	struct px_table *t = table_with(names, 1);
	struct px_route r;
	char *err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(compile(t, &r, bad[i], &err), -EINVAL);
		assert_non_null(err);
		free(err);
		px_route_clear(&r);
	}
	table_gone(t);
}

/* URLRewrite: the target the upstream gets (Gateway API's prefix rules); and
 * ReplacePrefixMatch needs the route's PathPrefix match. */
static void
test_url_rewrite_targets(void **state)
{
	static const char *const names[] = { "a" };
	static const struct { const char *prefix, *repl, *in, *out; } cases[] = {
		{ "/foo", "/bar", "/foo", "/bar" },
		{ "/foo", "/bar", "/foo/x?y=1", "/bar/x?y=1" },
		{ "/foo/", "/bar/", "/foo/x", "/bar/x" },
		{ "/foo", "/", "/foo/x", "/x" },
		{ "/foo", "/", "/foo", "/" },
		{ "/", "/api", "/x", "/api/x" },
	};
	struct px_table *t = table_with(names, 1);
	struct px_route r;
	char *err, *js, *got;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		js = xasprintf("{\"name\": \"r\", \"matches\": [{\"path\": {\"type\": "
		    "\"PathPrefix\", \"value\": \"%s\"}}], \"filters\": [{\"type\": "
		    "\"URLRewrite\", \"hostname\": \"in.example\", \"path\": {\"type\": "
		    "\"ReplacePrefixMatch\", \"replacePrefixMatch\": \"%s\"}}], "
		    "\"backends\": [{\"cluster\": \"a\"}]}", cases[i].prefix, cases[i].repl);
		assert_int_equal(compile(t, &r, js, &err), 0);
		got = px_filter_target(&r, cases[i].in);
		assert_string_equal(got, cases[i].out);
		assert_string_equal(px_filter_host(&r), "in.example");
		free(got);
		free(js);
		px_route_clear(&r);
	}
	assert_int_equal(compile(t, &r, "{\"name\": \"r\", \"filters\": [{\"type\": "
	    "\"URLRewrite\", \"path\": {\"type\": \"ReplaceFullPath\", \"replaceFullPath\": "
	    "\"/v2/all\"}}], \"backends\": [{\"cluster\": \"a\"}]}", &err), 0);
	got = px_filter_target(&r, "/anything/here?q=1");
	assert_string_equal(got, "/v2/all?q=1");
	assert_null(px_filter_host(&r));
	free(got);
	px_route_clear(&r);
	assert_int_equal(compile(t, &r, "{\"name\": \"r\", \"matches\": [{\"path\": "
	    "{\"type\": \"Exact\", \"value\": \"/a\"}}], \"filters\": [{\"type\": "
	    "\"RequestRedirect\", \"path\": {\"type\": \"ReplacePrefixMatch\", "
	    "\"replacePrefixMatch\": \"/b\"}}], \"backends\": []}", &err), -EINVAL);
	assert_non_null(strstr(err, "PathPrefix"));
	free(err);
	px_route_clear(&r);
	table_gone(t);
}

static void
test_smooth_weights_exact(void **state)
{
	static const char *const names[] = { "a", "b" };
	struct px_table *t = table_with(names, 2);
	struct px_route r;
	struct px_endpoint *sticky;
	struct http_req q = mkreq("/", NULL, NULL, NULL, NULL, NULL);
	int i, na = 0, run = 0, maxrun = 0;
	char *err;

	(void)state;
	assert_int_equal(compile(t, &r, "{\"name\": \"r\", \"backends\": [{\"cluster\": \"a\","
	    " \"weight\": 90}, {\"cluster\": \"b\", \"weight\": 10}]}", &err), 0);
	for (i = 0; i < 1000; i++) {
		struct px_cluster *c = px_route_backend(&r, &q, &sticky);
		if (c == t->clusters[0]) {
			na++;
			run = 0;
		} else if (++run > maxrun)
			maxrun = run;
	}
	assert_int_equal(na, 900);
	assert_int_equal(maxrun, 1);	/* the 10% are spread out */
	px_route_clear(&r);
	table_gone(t);
}

static void
test_outlier_never_ejects_last(void **state)
{
	struct px_endpoint a = { .key = (char *)"a" }, b = { .key = (char *)"b" };
	struct px_endpoint *eps[2] = { &a, &b };
	struct px_cluster c = { .eps = eps, .neps = 2, .outlier_fails = 2, .outlier_ms = 100 };
	int i;

	(void)state;
	px_outlier_report(&c, &a, true, 1000);
	px_outlier_report(&c, &a, true, 1000);
	assert_int_equal(a.ejected_until, 1100);
	for (i = 0; i < 10; i++)
		assert_ptr_equal(px_pick_endpoint(&c, NULL, 0, 1050), &b);
	px_outlier_report(&c, &b, true, 1050);
	px_outlier_report(&c, &b, true, 1050);
	assert_int_equal(b.ejected_until, 0);	/* a is out: b stays */
	assert_non_null(px_pick_endpoint(&c, NULL, 0, 1200));	/* a's back-off over */
	assert_int_equal(a.ejected_until, 0);
	/* a second ejection lasts twice as long */
	px_outlier_report(&c, &a, true, 2000);
	px_outlier_report(&c, &a, true, 2000);
	assert_int_equal(a.ejected_until, 2200);
}

static void
test_least_request_and_tried(void **state)
{
	struct px_endpoint a = { .active = 3 }, b = { .active = 1 }, d = { .active = 2 };
	struct px_endpoint *eps[3] = { &a, &b, &d };
	struct px_cluster c = { .eps = eps, .neps = 3, .lb = PX_LB_LEAST };
	struct px_endpoint *tried[1] = { &b };

	(void)state;
	assert_ptr_equal(px_pick_endpoint(&c, NULL, 0, 0), &b);
	assert_ptr_equal(px_pick_endpoint(&c, tried, 1, 0), &d);
	c.lb = PX_LB_RR;
	c.rr = 0;
	assert_ptr_equal(px_pick_endpoint(&c, NULL, 0, 0), &a);
	assert_ptr_equal(px_pick_endpoint(&c, NULL, 0, 0), &b);
	assert_ptr_equal(px_pick_endpoint(&c, NULL, 0, 0), &d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_patterns),
		cmocka_unit_test(test_path_prefix_on_element_boundaries),
		cmocka_unit_test(test_cookie_parsing),
		cmocka_unit_test(test_url_rewrite_targets),
		cmocka_unit_test(test_matches_headers_query_cookies),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_smooth_weights_exact),
		cmocka_unit_test(test_outlier_never_ejects_last),
		cmocka_unit_test(test_least_request_and_tried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
