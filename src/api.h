/* api.h — the API server: Kubernetes REST paths over http.c, and the object
 * operations behind them (create, update, patch, delete with finalizers and
 * propagation) that the controllers call too, so that a write from a
 * controller follows exactly the rules of a write from a user. */
#ifndef V6_API_H
#define V6_API_H

#include <jansson.h>
#include <uv.h>

#include "api_alloc.h"
#include "obj.h"
#include "store.h"

struct api;

/* A failed operation, rendered as a Kubernetes Status by the API server. */
struct api_error {
	int code;		/* HTTP status: 400, 404, 409, 410, 422, ... */
	const char *reason;	/* "NotFound", "AlreadyExists", "Conflict", "Invalid", ... */
	char *message;
	struct errlist causes;	/* field errors for 422 Invalid */
	const struct kind *kind;	/* details.kind / group, when known */
	char *name;		/* details.name, when known */
};

void api_error_set(struct api_error *err, int code, const char *reason,
    const char *fmt, ...) V6_PRINTF(4, 5);
void api_error_clear(struct api_error *err);

enum api_propagation { API_PROPAGATE_BACKGROUND, API_PROPAGATE_FOREGROUND,
	API_PROPAGATE_ORPHAN };

enum {
	API_DRY_RUN = 1,
	API_MANAGED_FIELDS = 2,	/* the caller sets metadata.managedFields (server-side apply) */
};

/* api_policy.c */
/* Admission of a pod or a workload's pod template, after validation and
 * defaulting (old: the stored object on update, else NULL; an update that
 * leaves the pod spec alone is admitted). Fields the pod's runtime cannot
 * enforce go to errs (-EINVAL: answer 422); a pod the image policy of its
 * namespace denies sets err to 403 Forbidden naming the rule (-EPERM). */
int api_policy_admit(struct api *api, const struct kind *k, const char *ns,
    const json_t *obj, const json_t *old, struct errlist *errs, struct api_error *err);
/* The namespace's image-policy.v6.io/max-image-size in bytes, 0 when none:
 * the hook the image store checks at pull time (docs/security.md). */
int64_t api_policy_max_image_bytes(const json_t *ns_obj);

/* api_quota.c — LimitRange and ResourceQuota admission (docs/environments.md).
 * api_limits_admit: a Pod or claim being created gets the namespace's
 * LimitRange defaults (obj changed), then its min / max / ratio checks;
 * api_quota_admit: a create that would pass a ResourceQuota's hard limit,
 * or a pod without a compute resource a quota constrains. Both return 0 or
 * -1 with err set to 403 Forbidden in Kubernetes' words. */
int api_limits_admit(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    struct api_error *err);
int api_quota_admit(struct api *api, const struct kind *k, const char *ns,
    const json_t *obj, struct api_error *err);
/* vpa_admit.c — a Pod being created whose controller an Initial-mode
 * VerticalPodAutoscaler targets gets its recommended requests (obj
 * changed). Returns 0. */
int api_vpa_admit(struct api *api, const struct kind *k, const char *ns, json_t *obj);

/* api_objects.c */
/* The store key of a kind: "apps/deployments", or "pods" for the core group. */
const char *api_res_key(const struct kind *k, char *out, size_t len);
/* Creates obj (consumed) in ns ("" for cluster-scoped): validates, checks the
 * namespace exists and is not terminating, fills uid, creationTimestamp,
 * generation, defaults. *out (if not NULL) gets the stored object. Returns 0
 * or -1 with err set. */
int api_create(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    unsigned flags, json_t **out, struct api_error *err);
/* Replaces an object (obj consumed). status_only: the /status subresource
 * (only status changes); otherwise status is kept from the stored object.
 * A resourceVersion in obj is a precondition (409 when stale). Removing the
 * last finalizer of an object being deleted deletes it. */
int api_update(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    bool status_only, unsigned flags, json_t **out, struct api_error *err);
/* api_apply.c — server-side apply of the configuration applied (taken) by
 * manager to NS/NAME: created when absent (*created set), else merged;
 * managedFields kept; 409 Conflict with FieldManagerConflict causes unless
 * force. flags as api_update. */
int api_apply(struct api *api, const struct kind *k, const char *ns, const char *name,
    json_t *applied, const char *manager, bool force, unsigned flags, json_t **out,
    bool *created, struct api_error *err);
/* For any other write by a client (create, PUT, PATCH): sets obj's
 * managedFields to old's (NULL: a create) with the fields this write sets
 * or changes owned by manager (operation Update) and taken from the
 * others, as the apiserver records updates. Returns API_MANAGED_FIELDS, the
 * flag the write then needs. */
unsigned api_managed_update(const struct kind *k, const json_t *old, json_t *obj,
    const char *manager);
/* Deletes: with finalizers (or Foreground / Orphan propagation) the object
 * only gets deletionTimestamp and the garbage collector finishes the job.
 * precond_uid / precond_rv may be NULL / 0. */
int api_delete(struct api *api, const struct kind *k, const char *ns, const char *name,
    enum api_propagation prop, const char *precond_uid, int64_t precond_rv,
    unsigned flags, json_t **out, struct api_error *err);
/* api_delete with a grace period in seconds (DeleteOptions.gracePeriodSeconds;
 * -1 = the object's own, 0 = now). Only Pods use it: a Pod running on a node
 * is deleted gracefully (see api_objects.c). */
int api_delete_grace(struct api *api, const struct kind *k, const char *ns,
    const char *name, enum api_propagation prop, const char *precond_uid,
    int64_t precond_rv, int64_t grace, unsigned flags, json_t **out,
    struct api_error *err);
int api_get(struct api *api, const struct kind *k, const char *ns, const char *name,
    json_t **out, struct api_error *err);
/* A core (v1) object by kind name ("Secret", "ConfigMap", "Namespace"), a
 * new reference, or NULL when absent. api is a struct api * (the shape of
 * the node's lookup hooks, nenv_lookup_fn). */
json_t *api_lookup_v1(void *api, const char *kind, const char *ns, const char *name);
/* Records a Kubernetes Event about obj (type "Normal" / "Warning"); repeated
 * events of the same reason and message are counted on one Event, and a
 * burst of similar ones is combined (as client-go's EventCorrelator). */
void api_record_event(struct api *api, const json_t *obj, const char *type,
    const char *reason, const char *component, const char *fmt, ...) V6_PRINTF(6, 7);
/* Event expiry: every Event not seen for ttl_ms (<= 0: the default) is
 * deleted, in batches from a coarse timer. Stop frees. */
struct api_events;
struct api_events *api_events_start(struct api *api, uv_loop_t *loop, int64_t ttl_ms);
void api_events_stop(struct api_events *ev);
/* api_server.c: the API's event state (NULL before api_start finished). */
struct api_events *api_events_of(struct api *api);

struct store *api_store(struct api *api);

/* The Service address allocator of api (api_alloc.h; owned by api). */
struct api_alloc *api_allocator(struct api *api);
uv_loop_t *api_loop(struct api *api);

/* api_server.c */
struct http_req;
/* A handler for a subresource served by another module (pods/log is the
 * node agent's): called for GET .../NAME/SUB with the object; it must
 * answer req itself (http_respond or a stream). */
typedef void (*api_subresource_fn)(void *arg, struct http_req *req, const json_t *obj);
void api_register_subresource(struct api *api, const char *kind, const char *sub,
    api_subresource_fn fn, void *arg);
/* A handler for every request under /apis/GROUP/ (an aggregated API such as
 * metrics.k8s.io): rest is the path after the group. It must answer req. */
typedef void (*api_group_fn)(void *arg, struct http_req *req, const char *rest);
void api_register_group(struct api *api, const char *group, api_group_fn fn, void *arg);
/* Lists a registered group with its (static) version in /apis, so clients
 * that discover groups (kubectl top: metrics.k8s.io) find it. */
void api_group_version(struct api *api, const char *group, const char *version);
/* For such handlers: a Kubernetes Status body (reason from code), or obj
 * as JSON (the reference is taken). Both finish req. */
void api_respond_status(struct http_req *req, int code, const char *message);
void api_respond_json(struct http_req *req, int code, json_t *obj);
/* ?dryRun of a write to a handler of its own (addons, silences), as the
 * API's resources take it: *flags = API_DRY_RUN for "All", 0 when absent;
 * any other value is answered 422 (a typo must never become a real write)
 * and -1 returned. */
int api_dry_run_query(struct http_req *req, unsigned *flags);
/* Discovery for such a group: the APIGroup document at rest "" or "/", the
 * APIResourceList (resources, whose reference is taken) at "/VERSION";
 * NULL for any other rest. */
json_t *api_group_discovery(const char *rest, const char *group, const char *version,
    json_t *resources);
/* A handler for one exact path outside the Kubernetes REST tree (/metrics,
 * /v6/sd/prometheus). It must answer req. */
typedef void (*api_path_fn)(void *arg, struct http_req *req);
void api_register_path(struct api *api, const char *path, api_path_fn fn, void *arg);
/* The same for every path that starts with prefix ("/ui/": the dashboard's
 * assets). Exact paths and prefixes are tried in registration order. */
void api_register_prefix(struct api *api, const char *prefix, api_path_fn fn, void *arg);

/* The patch function (obj.h) a PATCH's Content-Type names (merge, JSON,
 * strategic merge), NULL for another type (415). */
typedef json_t *(*api_patch_fn)(const json_t *doc, const json_t *patch, char **err);
api_patch_fn api_patch_for(const char *content_type);

struct api_audit;

struct api_config {
	const char *listen_host;
	int listen_port;
	size_t max_body_bytes;
	int64_t event_ttl_ms;	/* 0: API_EVENT_TTL_DEFAULT_MS */
	struct api_audit *audit;	/* --audit-log-path; NULL: none (owned by caller) */
	struct ssl_ctx_st *tls_ctx;	/* HTTPS (tls.c); NULL: plain HTTP (--insecure-http) */
};

/* Kubernetes' --event-ttl default: one hour. */
#define API_EVENT_TTL_DEFAULT_MS (60 * 60 * 1000)
/* Starts serving on the loop. Returns 0 or negative errno. */
int api_start(uv_loop_t *loop, struct store *st, const struct api_config *cfg,
    struct api **out);
int api_port(const struct api *api);
/* New API connections use ctx (a renewed certificate); open ones go on. */
void api_set_tls(struct api *api, struct ssl_ctx_st *ctx);
/* Commits staged writes now and answers the requests waiting on them. */
void api_flush(struct api *api);
void api_stop(struct api *api);

/* api_objects.c: a new RFC 4122 version 4 UID string. */
json_t *api_new_uid(void);

/* api_audit.c */
enum audit_level { AUDIT_NONE, AUDIT_METADATA, AUDIT_REQUEST, AUDIT_REQUEST_RESPONSE };
enum { AUDIT_STAGE_RECEIVED, AUDIT_STAGE_COMPLETE };
/* What a policy rule matches on; strings point into the request's path
 * copy ("" when absent). */
struct audit_attrs {
	const char *user, *verb, *path;
	const char *group, *version, *ns, *resource, *name, *subresource;
	const char *const *groups;	/* the user's groups (ngroups of them) */
	size_t ngroups;
};
struct audit_policy;
/* Parses an audit.k8s.io/v1 Policy (YAML or JSON). Returns 0 or -EINVAL
 * with *err naming the field (caller frees). */
int api_audit_policy_parse(const char *text, size_t len, struct audit_policy **out,
    char **err);
void api_audit_policy_free(struct audit_policy *p);
/* The level of the first rule matching a (None when none does; Metadata
 * when p is NULL); *omit gets the stages not to record (bit per stage). */
enum audit_level api_audit_policy_level(const struct audit_policy *p,
    const struct audit_attrs *a, unsigned *omit);
/* The attributes of a request as Kubernetes' RequestInfo has them: verb
 * (get, list, watch, create, update, patch, delete, deletecollection; the
 * lower-case method for a non-resource request) and the object it names.
 * The user is system:anonymous in system:unauthenticated until set. *copy
 * holds the strings; caller frees. Used by the audit log and by RBAC. */
void api_audit_attrs(const char *method, const char *path, const char *query, char **copy,
    struct audit_attrs *a);
/* Does a nonResourceURLs list (audit rules, RBAC rules) name path: exactly,
 * or by a prefix ending in "*" ("/apis/\*", "\*")? */
bool api_url_match(const json_t *list, const char *path);
/* Opens the log (appending, 0600; "-" is stdout) and reads the policy
 * (NULL: Metadata for every request). Returns 0 or negative errno with
 * *err set (caller frees). */
int api_audit_open(const char *log_path, const char *policy_path, struct api_audit **out,
    char **err);
void api_audit_close(struct api_audit *a);
/* Hooks of api_server.c: a request dispatched, a request finished (the
 * ResponseComplete event). a NULL: nothing. */
struct http_req;
void api_audit_received(struct api_audit *a, struct http_req *req);
void api_audit_done(struct api_audit *a, struct http_req *req, int status);
/* The JSON body the request is answered with (responseObject). */
void api_audit_response(struct api_audit *a, struct http_req *req, const char *body);

/* ctrl_promrules.c — admission of a PrometheusRule: `promtool check rules`
 * on its groups (a bounded synchronous run, ~50 ms); promtool's messages
 * land at the rule's path (spec.groups[0].rules[1].expr). An update that
 * leaves spec alone is not checked again. Returns 0 or -EINVAL (errs). */
int promrules_admit(const json_t *obj, const json_t *old, struct errlist *errs);

#endif
