/* api_auth.c — authentication and authorization of API requests (auth.h).
 * Placeholder of the contract: every request is the unsecured admin, as
 * before issue 15. The RBAC work replaces this file. */
#include "auth.h"

static const char *const masters[] = { "system:masters", "system:authenticated" };
static const struct auth_user unsecured = { "system:unsecured", "", masters, 2 };

int
api_auth_request(struct api *api, struct http_req *req)
{
	(void)api;
	req->auth = (void *)&unsecured;
	return 0;
}

const struct auth_user *
api_auth_user(const struct http_req *req)
{
	return req->auth;
}
