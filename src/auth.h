/* auth.h — who is calling the API and whether they may (issue 15):
 * authentication (bearer tokens, X.509 client certificates, the explicit
 * insecure loopback port) and authorization (RBAC) of every request that
 * reaches api_server.c. In-process callers (controllers, the node agent)
 * call api_create() & co. directly and are not checked here. */
#ifndef V6_AUTH_H
#define V6_AUTH_H

#include <stdbool.h>
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

struct ctrl;

/* ---- the rest of the auth_* files (api_auth.c, auth_token.c, auth_rbac.c,
 * auth_roles.c, auth_review.c); server.c and api_server.c call the hooks. */

struct auth_config {
	const char *token_auth_file;	/* --token-auth-file; NULL: none */
	const char *data_dir;		/* where the ServiceAccount key lives */
	const char *ca_file;		/* the CA pods get as ca.crt; NULL: none */
};
/* Loads the token file, starts the authorizer (a watch on RBAC objects)
 * and creates the default roles and bindings. Returns 0 or negative errno
 * with *err set (caller frees). */
int api_auth_start(struct api *api, const struct auth_config *cfg, char **err);
/* Called by api_stop(): stops the authorizer. */
void api_auth_stop(struct api *api);
/* Called by api_server.c when req is finished: frees req->auth. */
void api_auth_done(struct http_req *req);
/* A watch of req's user begins / ends (api_server.c): at most
 * AUTH_MAX_WATCHES at once per user, system:masters exempt (as Kubernetes'
 * API Priority and Fairness exempts only them), so that a watch storm from
 * one identity cannot exhaust the server for the others. begin returns 0,
 * or -EBUSY after answering 429; end undoes a successful begin. */
#define AUTH_MAX_WATCHES 128
int api_auth_watch_begin(struct api *api, struct http_req *req);
void api_auth_watch_end(struct api *api, struct http_req *req);
/* api_server.c: where the API keeps its auth state (NULL before start). */
struct auth;
struct auth **api_auth_slot(struct api *api);

/* May u do what a describes? system:masters may do anything; everyone
 * else what RBAC grants. */
bool auth_authorize(struct auth *au, const struct auth_user *u,
    const struct audit_attrs *a);
/* Kubernetes' Forbidden message for a ("User \"u\" cannot list resource
 * \"pods\" in API group \"\" in the namespace \"ns\""). Caller frees. */
char *auth_forbidden_message(const struct auth_user *u, const struct audit_attrs *a);
bool auth_in_group(const struct auth_user *u, const char *group);
/* Every RBAC rule that applies to u in ns (a new array). */
json_t *auth_user_rules(struct auth *au, const struct auth_user *u, const char *ns);

/* auth_token.c — a static token file (Kubernetes' --token-auth-file: CSV
 * lines token,user,uid,"group1,group2"). */
struct auth_tokens;
int auth_tokens_load(const char *path, struct auth_tokens **out, char **err);
/* The user of token (valid while t lives), NULL when none. Compares
 * digests, in time independent of where a wrong token differs. */
const struct auth_user *auth_tokens_find(const struct auth_tokens *t, const char *token);
void auth_tokens_free(struct auth_tokens *t);

/* The TokenReview status of token (authenticated, user, audiences, or
 * error) for audiences (NULL or empty: the API server's). New reference. */
json_t *auth_token_review(struct auth *au, const char *token, const json_t *audiences);

/* auth_sa.c — ServiceAccount tokens: ES256 JWTs signed with DATA_DIR/sa.key
 * (made at first start, 0600), the TokenRequest subresource, verification,
 * and the controller that gives every namespace a `default` account. */
#define SA_ISSUER "https://kubernetes.default.svc.cluster.local"
struct auth_sa;
int auth_sa_open(struct api *api, const char *data_dir, const char *ca_file,
    struct auth_sa **out, char **err);
void auth_sa_close(struct auth_sa *sa);
/* Serves POST .../serviceaccounts/NAME/token. */
void auth_sa_register(struct api *api, struct auth_sa *sa);
/* Verifies a ServiceAccount token meant for audience: 0 with *claims (its
 * "kubernetes.io" claims and the rest; new reference), -EINVAL when token
 * is not a JWT at all, -EACCES when it is not valid (*why says why). */
int auth_sa_verify(struct auth_sa *sa, const char *token, const char *audience,
    json_t **claims, const char **why);
int ctrl_serviceaccount_start(struct api *api, struct ctrl **out);
/* The files of the kubelet's projected ServiceAccount volume for pod:
 * {"token": a token bound to the pod, "namespace": ..., "ca.crt": the API
 * server's CA when it serves HTTPS} in *files (new reference; the node
 * writes them off the loop with the container's start). Returns 0, 1 when
 * the pod or its account opts out (automountServiceAccountToken: false) or
 * sa is NULL, or a negative errno with *err set (caller frees). */
int auth_sa_files(struct auth_sa *sa, const json_t *pod, json_t **files, char **err);
/* The API's ServiceAccount signer (NULL before api_auth_start). */
struct auth_sa *api_auth_sa(struct api *api);

/* auth_rbac.c — Kubernetes' RBAC authorizer over one snapshot of Roles,
 * ClusterRoles (aggregated), RoleBindings and ClusterRoleBindings, indexed
 * by subject; the live one is rebuilt after a change to any of them. */
struct rbac_index;
/* From arrays of the four kinds' objects (any may be NULL). */
struct rbac_index *rbac_index_build(const json_t *roles, const json_t *clusterroles,
    const json_t *rolebindings, const json_t *clusterrolebindings);
void rbac_index_free(struct rbac_index *ix);
bool rbac_allows(const struct rbac_index *ix, const struct auth_user *u,
    const struct audit_attrs *a);
/* One PolicyRule against a request (Kubernetes' RuleAllows). */
bool rbac_rule_allows(const json_t *rule, const struct audit_attrs *a);
/* Every rule that applies to u in namespace ns ("" : cluster-wide only),
 * a new array. */
json_t *rbac_user_rules(const struct rbac_index *ix, const struct auth_user *u,
    const char *ns);
/* The effective rules of roleRef kind/name (a Role in ns, a ClusterRole
 * with its aggregation), borrowed; NULL when it does not exist. */
const json_t *rbac_role_rules(const struct rbac_index *ix, const char *kind,
    const char *ns, const char *name);
/* The rules of ClusterRole cr among all (an array of ClusterRoles): its
 * own, or with an aggregationRule the union of those of every other one its
 * selectors match, transitively. A new reference. */
json_t *rbac_clusterrole_rules(const json_t *all, const json_t *cr);
/* Do the owner's rules cover every one of rules (Kubernetes' Covers, the
 * escalation check)? */
bool rbac_rules_cover(const json_t *owner, const json_t *rules);
/* The live authorizer over the store. */
struct rbac;
struct rbac *rbac_start(struct store *st);
void rbac_stop(struct rbac *r);
/* The index as of the last committed RBAC change (rebuilt on demand). */
const struct rbac_index *rbac_current(struct rbac *r);

/* auth_roles.c — the default ClusterRoles (cluster-admin, admin, edit, view,
 * system:discovery, system:public-info-viewer, system:basic-user and the
 * aggregate-to-* parts) and their ClusterRoleBindings, created or brought
 * up to date at start unless annotated rbac.authorization.kubernetes.io/
 * autoupdate: "false". Returns 0 or -EIO. */
int auth_roles_ensure(struct api *api);
/* The aggregation controller: writes into each ClusterRole with an
 * aggregationRule the union of the rules it selects (as Kubernetes'
 * clusterrole-aggregation controller), for `kubectl describe`. */
int ctrl_clusterrole_aggregation_start(struct api *api, struct ctrl **out);

/* auth_review.c — authentication.k8s.io/v1 SelfSubjectReview and
 * authorization.k8s.io/v1 SelfSubjectAccessReview, SubjectAccessReview. */
void auth_review_register(struct api *api, struct auth *au);

#endif
