/* api_policy.c — admission after validation and defaulting, for pods and
 * pod templates: the fields the pod's runtime cannot enforce are refused
 * (422, the table in node_secctx.c), and the image policy of the pod's
 * namespace (annotations image-policy.v6.io/..., docs/security.md) denies
 * pods as an admission webhook would (403). Called by api_objects.c. */
#include "api.h"
#include "image.h"
#include "node_pod.h"
#include "node_secctx.h"
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_PREFIX	"image-policy.v6.io/"

/* Where a kind keeps its pod spec. */
static const struct {
	const char *kind;
	const char *path;
} pod_specs[] = {
	{ "Pod", "spec" },
	{ "ReplicaSet", "spec.template.spec" },
	{ "Deployment", "spec.template.spec" },
	{ "StatefulSet", "spec.template.spec" },
	{ "DaemonSet", "spec.template.spec" },
	{ "Job", "spec.template.spec" },
	{ "Rollout", "spec.template.spec" },
	{ "CronJob", "spec.jobTemplate.spec.template.spec" },
};

/* ---- the image policy ---------------------------------------------------- */

struct policy_ctx {
	const json_t *ns_obj;
	const json_t *pod_spec;
	const json_t *container;
	const char *image;
	struct img_ref ref;	/* Docker's rules (image_ref.c) */
};

/* A rule: its annotation (after the prefix) and its check, which returns
 * NULL or why the container breaks it (caller frees). */
struct policy_rule {
	const char *name;
	char *(*check)(const struct policy_ctx *x, const char *value);
};

static bool
is_true(const char *v)
{
	return strcmp(v, "true") == 0;
}

static char *
rule_deny_latest(const struct policy_ctx *x, const char *v)
{
	if (!is_true(v) || !x->ref.tag || strcmp(x->ref.tag, "latest") != 0)
		return NULL;
	return xasprintf("image \"%s\" %s", x->image, x->ref.tag_implied ?
	    "has no tag (it means :latest)" : "uses the :latest tag");
}

static char *
rule_require_digest(const struct policy_ctx *x, const char *v)
{
	if (!is_true(v) || x->ref.digest)
		return NULL;
	return xasprintf("image \"%s\" is not pinned by digest (NAME@sha256:...)", x->image);
}

static char *
rule_require_non_root(const struct policy_ctx *x, const char *v)
{
	if (!is_true(v))
		return NULL;
	json_t *sc = secctx_merge(x->pod_spec, x->container);
	const json_t *user = json_object_get(sc, "runAsUser");
	bool ok = json_is_true(json_object_get(sc, "runAsNonRoot")) &&
	    !(json_is_integer(user) && json_integer_value(user) == 0);
	json_decref(sc);
	return ok ? NULL : xstrdup("securityContext.runAsNonRoot must be true (pod or "
	    "container) and runAsUser not 0");
}

/* "docker.io, registry.local:5000, ghcr.io/acme": a registry, or a
 * registry and a repository prefix. */
static char *
rule_allowed_registries(const struct policy_ctx *x, const char *v)
{
	char full[2100];
	snprintf(full, sizeof full, "%s/%s", x->ref.registry, x->ref.repo);
	for (const char *p = v; *p;) {
		p += strspn(p, " ,");
		size_t n = strcspn(p, " ,");
		if (n > 0 && strncmp(full, p, n) == 0 && (full[n] == '/' || full[n] == '\0'))
			return NULL;
		p += n;
	}
	return xasprintf("image \"%s\" is from registry %s, which is not in the allowed "
	    "registries (%s)", x->image, x->ref.registry, v);
}

static const struct policy_rule rules[] = {
	{ "deny-latest", rule_deny_latest },
	{ "require-digest", rule_require_digest },
	{ "require-run-as-non-root", rule_require_non_root },
	{ "allowed-registries", rule_allowed_registries },
	/* "max-image-size" is checked when the image is pulled
	 * (api_policy_max_image_bytes). */
};

int64_t
api_policy_max_image_bytes(const json_t *ns_obj)
{
	const char *v = obj_annotation(ns_obj, POLICY_PREFIX "max-image-size");
	double d;
	if (v == NULL || quantity_parse(v, &d) < 0 || d <= 0)
		return 0;
	return (int64_t)d;
}

/* The first rule a container breaks: 403 Forbidden naming it. */
static int
check_container(const struct kind *k, const char *pod_name, struct policy_ctx *x,
    struct api_error *err)
{
	const char *name = json_string_value(json_object_get(x->container, "name"));
	char *bad = NULL;
	x->image = json_string_value(json_object_get(x->container, "image"));
	if (x->image == NULL)
		return 0;	/* validation has said what is wrong */
	img_ref_parse(x->image, &x->ref, &bad);
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		char key[96];
		snprintf(key, sizeof key, POLICY_PREFIX "%s", rules[i].name);
		const char *v = obj_annotation(x->ns_obj, key);
		/* a reference no rule can read breaks the first rule that is set */
		char *why = v && bad ? xstrdup(bad) : v ? rules[i].check(x, v) : NULL;
		if (why == NULL)
			continue;
		api_error_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: image policy of "
		    "namespace \"%s\": rule %s: container %s: %s", k->plural, pod_name,
		    obj_name(x->ns_obj), rules[i].name, name ? name : "", why);
		free(why);
		err->kind = k;
		free(err->name);
		err->name = xstrdup(pod_name);
		img_ref_free(&x->ref);
		free(bad);
		return -EPERM;
	}
	img_ref_free(&x->ref);
	free(bad);
	return 0;
}

static int
image_policy(struct api *api, const struct kind *k, const char *ns, const json_t *pod,
    struct api_error *err)
{
	json_t *ns_obj = NULL;
	if (store_get(api_store(api), "namespaces", "", ns, &ns_obj) != 0)
		return 0;
	struct policy_ctx x = { .ns_obj = ns_obj, .pod_spec = json_object_get(pod, "spec") };
	static const char *const lists[] = { "initContainers", "containers" };
	int rc = 0;
	for (size_t l = 0; rc == 0 && l < ARRAY_SIZE(lists); l++) {
		const json_t *cs = json_object_get(x.pod_spec, lists[l]);
		for (size_t i = 0; rc == 0 && i < json_array_size(cs); i++) {
			x.container = json_array_get(cs, i);
			rc = check_container(k, obj_name(pod), &x, err);
		}
	}
	json_decref(ns_obj);
	return rc;
}

/* ---- the environment policy ----------------------------------------------- */

/* A namespace labelled environment.v6.dev/name: prod requires, unless its
 * annotations say otherwise, what a production workload needs: probes,
 * limits and two replicas (docs/environments.md). Other namespaces only
 * what their annotations ask. */
#define ENV_PREFIX	"environment.v6.dev/"

static bool
env_rule(const json_t *ns_obj, const char *rule, bool prod)
{
	char key[96];
	snprintf(key, sizeof key, ENV_PREFIX "%s", rule);
	const char *v = obj_annotation(ns_obj, key);
	return v ? strcmp(v, "true") == 0 : prod;
}

static int64_t
env_min_replicas(const json_t *ns_obj, bool prod)
{
	const char *v = obj_annotation(ns_obj, ENV_PREFIX "min-replicas");
	return v ? strtoll(v, NULL, 10) : prod ? 2 : 0;
}

/* The first thing spec (at path in obj) lacks, or NULL (caller frees). */
static char *
env_check(const json_t *ns_obj, const struct kind *k, const json_t *obj, const char *path)
{
	const char *env = json_string_value(json_object_get(obj_labels(ns_obj),
	    ENV_PREFIX "name")) ?: "";
	bool prod = strcmp(env, "prod") == 0 || strcmp(env, "production") == 0;
	bool probes = env_rule(ns_obj, "require-probes", prod);
	bool limits = env_rule(ns_obj, "require-limits", prod);
	int64_t min = env_min_replicas(ns_obj, prod);
	const json_t *spec = obj_get_path(obj, path);
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(spec, "containers"), i, c) {
		const char *n = obj_str(c, "name");
		if (probes && !json_object_get(c, "readinessProbe"))
			return xasprintf("rule require-probes: container %s has no readinessProbe", n);
		if (probes && !json_object_get(c, "livenessProbe"))
			return xasprintf("rule require-probes: container %s has no livenessProbe", n);
		const json_t *lim = obj_get_path(c, "resources.limits");
		if (limits && (!json_object_get(lim, "cpu") || !json_object_get(lim, "memory")))
			return xasprintf("rule require-limits: container %s has no cpu and memory "
			    "limits", n);
	}
	/* an autoscaler's floor counts as the workload's replicas: one whose
	 * minReplicas (default 1) is below would scale it under the minimum */
	static const struct { const char *kind, *field; } replicated[] = {
		{ "Deployment", "replicas" }, { "StatefulSet", "replicas" },
		{ "Rollout", "replicas" }, { "HorizontalPodAutoscaler", "minReplicas" },
	};
	for (size_t r = 0; r < ARRAY_SIZE(replicated) && min > 0; r++) {
		if (strcmp(k->kind, replicated[r].kind) != 0)
			continue;
		int64_t n = obj_int_at(json_object_get(obj, "spec"), replicated[r].field, 1);
		if (n < min && !strcmp(replicated[r].field, "replicas"))
			return xasprintf("rule min-replicas: %lld replica(s), the environment "
			    "requires at least %lld", (long long)n, (long long)min);
		if (n < min)
			return xasprintf("rule min-replicas: minReplicas %lld, the environment "
			    "requires at least %lld", (long long)n, (long long)min);
	}
	return NULL;
}

static int
env_policy(struct api *api, const struct kind *k, const char *ns, const json_t *obj,
    const char *path, struct api_error *err)
{
	json_t *ns_obj = NULL;
	if (!strcmp(k->kind, "Pod") || !strcmp(k->kind, "ReplicaSet") ||
	    store_get(api_store(api), "namespaces", "", ns, &ns_obj) != 0)
		return 0;	/* pods and ReplicaSets come from checked templates */
	char *why = env_check(ns_obj, k, obj, path);
	if (why) {
		api_error_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: environment policy "
		    "of namespace \"%s\": %s", k->plural, obj_name(obj), ns, why);
		err->kind = k;
		free(err->name);
		err->name = xstrdup(obj_name(obj));
		free(why);
	}
	json_decref(ns_obj);
	return why ? -EPERM : 0;
}

/* ---- the hook ------------------------------------------------------------ */

int
api_policy_admit(struct api *api, const struct kind *k, const char *ns, const json_t *obj,
    const json_t *old, struct errlist *errs, struct api_error *err)
{
	const char *path = NULL;
	if (!strcmp(k->kind, "HorizontalPodAutoscaler"))	/* the environment's floor */
		return old && json_equal(json_object_get(obj, "spec"), json_object_get(old,
		    "spec")) ? 0 : env_policy(api, k, ns, obj, "spec", err);
	for (size_t i = 0; i < ARRAY_SIZE(pod_specs) && !path; i++)
		if (strcmp(k->kind, pod_specs[i].kind) == 0)
			path = pod_specs[i].path;
	const json_t *spec = path ? obj_get_path(obj, path) : NULL;
	if (spec == NULL)
		return 0;
	/* the environment's rules whenever the spec (replicas too) changes */
	bool spec_changed = !old || !json_equal(json_object_get(obj, "spec"),
	    json_object_get(old, "spec"));
	if (spec_changed && env_policy(api, k, ns, obj, path, err) < 0)
		return -EPERM;
	if (old && json_equal(spec, obj_get_path(old, path)))
		return 0;	/* metadata, status, finalizers: admitted before */
	secctx_admit(spec, npod_runtime(spec), path, errs);
	if (errs->n > 0)
		return -EINVAL;
	if (strcmp(k->kind, "Pod") == 0)
		return image_policy(api, k, ns, obj, err);
	return 0;
}
