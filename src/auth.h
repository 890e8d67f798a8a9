/* auth.h — who is calling the API and whether they may (issue 15):
 * authentication (bearer tokens, X.509 client certificates, the explicit
 * insecure loopback port) and authorization (RBAC) of every request that
 * reaches api_server.c. In-process callers (controllers, the node agent)
 * call api_create() & co. directly and are not checked here. */
#ifndef V6_AUTH_H
#define V6_AUTH_H

#include <stddef.h>

#include "api.h"
#include "http.h"

/* A caller as Kubernetes' user.Info names it. */
struct auth_user {
	const char *name;		/* "system:serviceaccount:ns:sa", "v6-admin" */
	const char *uid;		/* "" when none */
	const char *const *groups;	/* "system:masters", "system:authenticated", ... */
	size_t ngroups;
};

/* Called by api_server.c first for every request, before any routing:
 * authenticates it (req->auth is set), then authorizes it. Returns 0 to go
 * on, or -1 when it answered the request itself (401 Unauthorized for bad
 * credentials, 403 Forbidden with Kubernetes' message). A plain-HTTP request
 * (!req->tls, only possible on the explicit insecure loopback listener)
 * without credentials is system:unsecured in system:masters, as Kubernetes'
 * old insecure port; credentials it carries are still checked. */
int api_auth_request(struct api *api, struct http_req *req);

/* The identity api_auth_request() found for req (NULL before). */
const struct auth_user *api_auth_user(const struct http_req *req);

#endif
