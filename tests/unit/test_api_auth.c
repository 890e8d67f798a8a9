/* test_api_auth.c — the identities api_auth_request() gives requests that
 * reach the API (src/api_auth.c) on a real store and API: an X.509 client
 * certificate's CN and O (as http.c's TLS fills them in), anonymous over
 * TLS, the unsecured admin on the plain listener, system:masters from a
 * certificate bypassing RBAC; and the default roles made at start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "http.h"
#include "api_env.h"

static struct http_req
request(const char *path, bool tls, const char *cn, const char *const *orgs, size_t n)
{
	return (struct http_req){ .method = "GET", .target = path, .path = path, .query = "",
		.body = "", .remote_addr = "127.0.0.1:40000", .content_length = -1, .tls = tls,
		.client_cn = cn, .client_orgs = orgs, .client_norgs = n };
}

static void
assert_groups(const struct auth_user *u, const char *const *want, size_t n)
{
	assert_int_equal(u->ngroups, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(u->groups[i], want[i]);
}

static void
test_identities(void **state)
{
	(void)state;
	struct api_env e;
	struct auth_config cfg = { .token_auth_file = NULL };
	char *err = NULL;
	api_env_open(&e);
	cfg.data_dir = e.dir;
	assert_int_equal(api_auth_start(e.api, &cfg, &err), 0);
	api_env_pump(&e);

	/* A client certificate: CN is the user, O values the groups. */
	static const char *const orgs[] = { "dev", "ops" };
	static const char *const cert_groups[] = { "dev", "ops", "system:authenticated" };
	struct http_req r = request("/healthz", true, "carol", orgs, 2);
	assert_int_equal(api_auth_request(e.api, &r), 0);	/* public-info-viewer */
	assert_string_equal(api_auth_user(&r)->name, "carol");
	assert_groups(api_auth_user(&r), cert_groups, 3);
	api_auth_done(&r);
	assert_null(r.auth);

	/* TLS without a certificate or token: Kubernetes' anonymous user. */
	static const char *const anon_groups[] = { "system:unauthenticated" };
	r = request("/version", true, NULL, NULL, 0);
	assert_int_equal(api_auth_request(e.api, &r), 0);
	assert_string_equal(api_auth_user(&r)->name, "system:anonymous");
	assert_groups(api_auth_user(&r), anon_groups, 1);
	api_auth_done(&r);

	/* The plain loopback listener without credentials: the unsecured admin. */
	static const char *const admin_groups[] = { "system:masters", "system:authenticated" };
	r = request("/api/v1/secrets", false, NULL, NULL, 0);
	assert_int_equal(api_auth_request(e.api, &r), 0);
	assert_string_equal(api_auth_user(&r)->name, "system:unsecured");
	assert_groups(api_auth_user(&r), admin_groups, 2);
	api_auth_done(&r);

	/* The admin client certificate (CN v6-admin, O system:masters). */
	static const char *const masters[] = { "system:masters" };
	r = request("/api/v1/secrets", true, "v6-admin", masters, 1);
	assert_int_equal(api_auth_request(e.api, &r), 0);
	assert_string_equal(api_auth_user(&r)->name, "v6-admin");
	api_auth_done(&r);

	/* The default roles exist, aggregated ones included. */
	json_t *o = NULL;
	assert_int_equal(store_get(e.st, "rbac.authorization.k8s.io/clusterroles", "",
	    "cluster-admin", &o), 0);
	json_decref(o);
	assert_int_equal(store_get(e.st, "rbac.authorization.k8s.io/clusterrolebindings", "",
	    "system:public-info-viewer", &o), 0);
	json_decref(o);
	api_env_close(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
