/* alert.h — alerting past the rule files (issue 12): Alertmanager's alerts
 * and silences served through V6's own API group alerts.v6.dev (alert_api.c),
 * the probable cause of an alert from V6's events and revision history
 * (alert_cause.c), and the webhook receiver that enriches, holds back, folds
 * and forwards notifications to DingTalk / WeCom / webhook (alert_notify.c). */
#ifndef V6_ALERT_H
#define V6_ALERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct api;
struct store;

#define ALERT_GROUP		"alerts.v6.dev"
#define ALERT_VERSION		"v1alpha1"
#define ALERT_GROUP_VERSION	ALERT_GROUP "/" ALERT_VERSION
/* The annotation V6 adds to each alert it passes on: one line naming the
 * most likely change; the ranked list is in ALERT_CAUSES_ANNOTATION (JSON). */
#define ALERT_CAUSE_ANNOTATION	"v6_probable_cause"
#define ALERT_CAUSES_ANNOTATION	"v6_changes"
/* How far back before an alert started its changes are looked for. */
#define ALERT_CAUSE_WINDOW_MS	(60 * 60 * 1000)

/* ---- alert_cause.c ---------------------------------------------------- */

/* What the cause is computed from: the objects of the alert's namespace
 * (arrays, may be NULL) and the cluster's Nodes. */
struct alert_world {
	json_t *events, *rsets, *pods, *rollouts, *deployments, *statefulsets,
	    *services, *jobs, *analysisruns, *node_events;
};

/* The namespace an alert is about: its namespace label, else the NS of
 * the proxy's service label "NS/NAME" (valid until the next call), else
 * "default" when it names a workload, else NULL. */
const char *alert_namespace(const json_t *labels);
/* Loads the world of namespace ns (NULL: node events only) from st. */
void alert_world_load(struct store *st, const char *ns, struct alert_world *w);
void alert_world_free(struct alert_world *w);
/* The changes V6 made to the workloads an alert's labels point at
 * (namespace + rollout / deployment / statefulset / job_name / pod /
 * service), from window_ms before at_ms to 2 min after it, ranked: the
 * named workload before those found through a pod or Service before node
 * events, then nearest in time first. A new array of
 * {time, scope, change, object, detail, ref}; pure. */
json_t *alert_cause(const json_t *labels, int64_t at_ms, int64_t window_ms,
    const struct alert_world *w);
/* One line for ALERT_CAUSE_ANNOTATION from alert_cause's first entry
 * (malloc'ed), or NULL when the list is empty. */
char *alert_cause_line(const json_t *changes, int64_t at_ms);
/* The Rollout of the alert's workload whose analysis is failing (a failed
 * or errored AnalysisRun of its current revision, a failed measurement of
 * a running one, or status.abort), or NULL (borrowed from w). The rollout
 * will abort by itself: its alerts are held back. */
const json_t *alert_aborting_rollout(const json_t *labels, const struct alert_world *w);

/* ---- alert_api.c ------------------------------------------------------ */

struct alert_api;
struct alert_config {
	const char *alertmanager_url;	/* http://IP:PORT[/PREFIX]; NULL: none */
	int64_t flap_window_ms;		/* 0: ALERT_FLAP_WINDOW_MS */
	int flap_threshold;		/* 0: ALERT_FLAP_THRESHOLD */
	bool noise_control;		/* hold back / fold (default true) */
	const char *state_dir;		/* the receiver's state goes to
					 * STATE_DIR/alerts; NULL: memory only */
};
/* Registers the group on api. Returns 0, or -EINVAL for a bad URL. */
int alert_api_start(struct api *api, const struct alert_config *cfg, struct alert_api **out);
void alert_api_stop(struct alert_api *a);

/* ---- alert_notify.c --------------------------------------------------- */

#define ALERT_FLAP_WINDOW_MS	(10 * 60 * 1000)
#define ALERT_FLAP_THRESHOLD	3

struct alert_notify;
struct alert_notify *alert_notify_new(struct api *api, const struct alert_config *cfg);
void alert_notify_free(struct alert_notify *n);
struct http_req;
/* POST from Alertmanager's webhook_config: the notification (Alertmanager's
 * webhook JSON) enriched, filtered and forwarded to the receiver Secret
 * ns/name (NULL: recorded only). Answers req: 200 once every receiver took
 * it, 502 otherwise (Alertmanager retries). */
void alert_notify_serve(struct alert_notify *n, struct http_req *req, const char *ns,
    const char *name);
/* The notifications V6 saw for an alert fingerprint: the last one's
 * annotations and how V6 handled it (for `v6 describe alert`), a new
 * object, or NULL. */
json_t *alert_notify_seen(struct alert_notify *n, const char *fingerprint);

/* The DingTalk robot's signature: base64(HMAC-SHA256(secret,
 * "TIMESTAMP\nSECRET")), URL-encoded, as its documentation says. malloc'ed. */
char *alert_dingtalk_sign(int64_t timestamp_ms, const char *secret);
/* The body a receiver of type ("dingtalk", "wecom", "webhook") gets for a
 * notification (new reference), or NULL for an unknown type. */
json_t *alert_receiver_body(const char *type, const json_t *notification);

#endif
