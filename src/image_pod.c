/* image_pod.c — the kubelet's image step for one container (EnsureImageExists):
 * the pull policy (imagePullPolicy, else Kubernetes' default), the pod's
 * imagePullSecrets (kubernetes.io/dockerconfigjson) merged into one "auths",
 * events Pulling / Pulled / Failed / ErrImageNeverPull worded as the
 * kubelet's, and the result for the start: ready (with the imageID),
 * pending (pulling on the thread pool) or failed (ErrImagePull). Called by
 * node_agent.c before a runc container starts. */
#include "image_int.h"
#include "log.h"
#include "node_pod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct img_pull {
	struct img_store *s;
	const struct img_pull_hooks *h;
	void *arg;
	char *image;
	bool pending;
	int pending_attempt;
	int64_t began_ms;
	int result_attempt;	/* -2: none */
	int err;
	char *reason, *msg;
	struct img_info *info;
};

static const struct {
	const char *name;
	enum img_pull_policy policy;
} policies[] = {
	{ "Always", IMG_PULL_ALWAYS },
	{ "IfNotPresent", IMG_PULL_IF_NOT_PRESENT },
	{ "Never", IMG_PULL_NEVER },
};

enum img_pull_policy
img_policy_of(const json_t *ctr)
{
	const char *p = json_string_value(json_object_get(ctr, "imagePullPolicy"));
	for (size_t i = 0; p && i < ARRAY_SIZE(policies); i++)
		if (!strcmp(p, policies[i].name))
			return policies[i].policy;
	return img_default_policy(json_string_value(json_object_get(ctr, "image")) ?: "");
}

json_t *
img_pull_auths(const json_t *pod, img_secret_fn lookup, void *arg)
{
	const json_t *secrets = json_object_get(json_object_get(pod, "spec"),
	    "imagePullSecrets"), *ref;
	const json_t *meta = json_object_get(pod, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *pname = json_string_value(json_object_get(meta, "name"));
	json_t *auths = NULL;
	size_t i;

	json_array_foreach(secrets, i, ref) {
		const char *name = json_string_value(json_object_get(ref, "name"));
		json_t *sec = name && ns ? lookup(arg, ns, name) : NULL;
		const char *type = json_string_value(json_object_get(sec, "type"));
		const char *data = json_string_value(json_object_get(json_object_get(sec, "data"),
		    ".dockerconfigjson"));
		if (!sec || !type || strcmp(type, "kubernetes.io/dockerconfigjson") != 0 || !data) {
			/* The kubelet goes on without it (anonymous), as here. */
			log_warn("image", "pod %s/%s: imagePullSecret \"%s\" is missing or not a "
			    "kubernetes.io/dockerconfigjson Secret", ns ? ns : "", pname ? pname : "",
			    name ? name : "");
			json_decref(sec);
			continue;
		}
		char *raw = nenv_b64_decode(data);
		json_t *cfg = json_loads(raw, 0, NULL);
		json_t *a = json_object_get(cfg, "auths");
		if (json_is_object(a)) {
			if (!auths)
				auths = json_object();
			json_object_update_missing(auths, a);	/* the first secret wins */
		}
		json_decref(cfg);
		free(raw);
		json_decref(sec);
	}
	return auths;
}

static void
set_result(struct img_pull *p, int attempt, int err, const char *reason, const char *msg)
{
	p->result_attempt = attempt;
	p->err = err;
	free(p->reason);
	free(p->msg);
	p->reason = reason ? xstrdup(reason) : NULL;
	p->msg = msg ? xstrdup(msg) : NULL;
}

static void
pulled_event(struct img_pull *p)
{
	char msg[512];
	double secs = (double)(time_mono_ms() - p->began_ms) / 1000;
	snprintf(msg, sizeof msg, "Successfully pulled image \"%s\" in %.3fs (%.3fs including "
	    "waiting). Image size: %lld bytes.", p->image, secs, secs, (long long)p->info->size);
	p->h->event(p->arg, false, "Pulled", msg);
}

static void
on_pulled(void *arg, int err, const char *message, struct img_info *info)
{
	struct img_pull *p = arg;

	p->pending = false;
	img_info_free(p->info);
	p->info = info;
	if (err < 0) {
		char m[1024];
		snprintf(m, sizeof m, "Failed to pull image \"%s\": %s", p->image,
		    message ? message : strerror(-err));
		p->h->event(p->arg, true, "Failed", m);
		set_result(p, p->pending_attempt, err, "ErrImagePull", message);
	} else {
		pulled_event(p);
		set_result(p, p->pending_attempt, 0, NULL, NULL);
	}
	p->h->done(p->arg);
}

int
img_pull_gate(struct img_pull **pp, struct img_store *s, const json_t *pod,
    const json_t *ctr, int attempt, const struct img_pull_hooks *h, void *arg,
    struct img_pull_result *out)
{
	struct img_pull *p = *pp;
	const char *image = json_string_value(json_object_get(ctr, "image")) ?: "";
	enum img_pull_policy policy = img_policy_of(ctr);
	char m[512];

	memset(out, 0, sizeof *out);
	if (!p) {
		p = *pp = xcalloc(1, sizeof *p);
		p->s = s;
		p->result_attempt = -2;
	}
	p->h = h;
	p->arg = arg;
	if (!p->image || strcmp(p->image, image) != 0) {
		free(p->image);
		p->image = xstrdup(image);
	}
	if (p->result_attempt == attempt) {
		if (p->err == 0) {
			out->image_id = p->info->image_id;
			out->info = p->info;
			return IMG_GATE_READY;
		}
		/* A failure is reported once; the next start pulls again. */
		out->reason = p->reason;
		out->message = p->msg;
		p->result_attempt = -2;
		return IMG_GATE_FAILED;
	}
	if (p->pending)
		return IMG_GATE_PENDING;
	const char *ns = json_string_value(json_object_get(json_object_get(pod, "metadata"),
	    "namespace")) ?: "default";
	int64_t max = h->max_image_bytes ? h->max_image_bytes(arg, ns) : 0;
	if (policy != IMG_PULL_ALWAYS) {
		struct img_info *info = NULL;
		if (img_lookup(s, image, &info) == 0 && max > 0 && info->size > max) {
			/* present, but the namespace's policy refuses its size */
			char *why = img_size_violation(info->size, max);
			snprintf(m, sizeof m, "Failed to pull image \"%s\": %s", image, why);
			h->event(arg, true, "Failed", m);
			set_result(p, -2, -EFBIG, "ErrImagePull", why);
			free(why);
			img_info_free(info);
			out->reason = p->reason;
			out->message = p->msg;
			return IMG_GATE_FAILED;
		}
		if (info) {
			img_info_free(p->info);
			p->info = info;
			snprintf(m, sizeof m, "Container image \"%s\" already present on machine",
			    image);
			h->event(arg, false, "Pulled", m);
			set_result(p, attempt, 0, NULL, NULL);
			out->image_id = info->image_id;
			out->info = info;
			return IMG_GATE_READY;
		}
	}
	if (policy == IMG_PULL_NEVER) {
		snprintf(m, sizeof m, "Container image \"%s\" is not present with pull policy of "
		    "Never", image);
		h->event(arg, true, "ErrImageNeverPull", m);
		set_result(p, -2, -ENOENT, "ErrImageNeverPull", m);
		out->reason = p->reason;
		out->message = p->msg;
		return IMG_GATE_FAILED;
	}
	json_t *auths = img_pull_auths(pod, h->secret, arg);
	snprintf(m, sizeof m, "Pulling image \"%s\"", image);
	h->event(arg, false, "Pulling", m);
	p->began_ms = time_mono_ms();
	p->pending_attempt = attempt;
	int rc = img_ensure(s, image, IMG_PULL_ALWAYS, auths, max, on_pulled, p);
	json_decref(auths);
	if (rc < 0) {
		set_result(p, -2, rc, "ErrImagePull", "cannot queue the pull");
		out->reason = p->reason;
		out->message = p->msg;
		return IMG_GATE_FAILED;
	}
	p->pending = true;
	return IMG_GATE_PENDING;
}

void
img_pull_free(struct img_pull *p)
{
	if (!p)
		return;
	img_cancel(p->s, p);
	img_info_free(p->info);
	free(p->image);
	free(p->reason);
	free(p->msg);
	free(p);
}
