/* api_objects.c — the object operations every write goes through, from a
 * user over HTTP or from a controller: validation, defaulting, system fields
 * (uid, creationTimestamp, generation), optimistic concurrency, finalizers
 * and graceful deletion, and the event recorder. Storage is store.c's job. */
#include "api.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void
api_error_set(struct api_error *err, int code, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(err->message);
	err->message = xvasprintf(fmt, ap);
	va_end(ap);
	err->code = code;
	err->reason = reason;
}

void
api_error_clear(struct api_error *err)
{
	free(err->message);
	free(err->name);
	errlist_free(&err->causes);
	memset(err, 0, sizeof *err);
}

const char *
api_res_key(const struct kind *k, char *out, size_t len)
{
	if (k->group[0])
		snprintf(out, len, "%s/%s", k->group, k->plural);
	else
		snprintf(out, len, "%s", k->plural);
	return out;
}

/* "deployments.apps \"web\"" as Kubernetes names things in messages. */
static char *
res_name(const struct kind *k, const char *name)
{
	if (k->group[0])
		return xasprintf("%s.%s \"%s\"", k->plural, k->group, name);
	return xasprintf("%s \"%s\"", k->plural, name);
}

static void
set_not_found(struct api_error *err, const struct kind *k, const char *name)
{
	char *rn = res_name(k, name);
	api_error_set(err, 404, "NotFound", "%s not found", rn);
	free(rn);
	err->kind = k;
	free(err->name);
	err->name = xstrdup(name);
}

static void
random_hex(char *out, size_t nbytes)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16];
	BUG_ON(nbytes > sizeof raw);
	/* One system call, not open/read/close of /dev/urandom and a printf a
	 * byte: every created object and Event takes a uid, ~500 in a 100-pod
	 * start (perf: 2.6 % of the server's CPU before). */
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
		for (size_t i = 0; i < nbytes; i++)
			raw[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

json_t *
api_new_uid(void)
{
	char h[33];
	random_hex(h, 16);
	/* RFC 4122 version 4 layout. */
	h[12] = '4';
	h[16] = "89ab"[h[16] % 4];
	char s[37];
	snprintf(s, sizeof s, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	return json_string(s);
}

static json_t *
now_timestamp(void)
{
	char ts[32];
	time_format_rfc3339(time(NULL), ts);
	return json_string(ts);
}

/* kubernetes' generateName suffix: 5 characters from a consonant-heavy set. */
static char *
generate_name(const char *prefix)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	char hex[11], suffix[6];
	random_hex(hex, 5);
	for (int i = 0; i < 5; i++)
		suffix[i] = alphabet[strtol((char[]){ hex[2 * i], hex[2 * i + 1], 0 }, NULL, 16) %
		    (sizeof alphabet - 1)];
	suffix[5] = '\0';
	return xasprintf("%s%s", prefix, suffix);
}

static int
invalid(struct api_error *err, const struct kind *k, const char *name, struct errlist *errs)
{
	struct buf b = BUF_INIT;
	if (k->group[0])
		buf_printf(&b, "%s.%s \"%s\" is invalid: ", k->kind, k->group, name);
	else
		buf_printf(&b, "%s \"%s\" is invalid: ", k->kind, name);
	for (size_t i = 0; i < errs->n; i++) {
		if (i)
			buf_puts(&b, ", ");
		if (errs->v[i].field[0])
			buf_printf(&b, "%s: ", errs->v[i].field);
		buf_puts(&b, errs->v[i].message);
	}
	/* Kubernetes answers unknown fields (strict field validation) with 400. */
	bool unknown = false;
	for (size_t i = 0; i < errs->n; i++)
		unknown |= strcmp(errs->v[i].reason, "FieldValueUnknown") == 0;
	if (unknown)
		api_error_set(err, 400, "BadRequest", "strict decoding error: %s", b.data);
	else
		api_error_set(err, 422, "Invalid", "%s", b.data);
	buf_free(&b);
	err->kind = k;
	free(err->name);
	err->name = xstrdup(name);
	errlist_free(&err->causes);
	err->causes = *errs;
	memset(errs, 0, sizeof *errs);
	return -1;
}

/* Admission (api_policy.c): 422 for fields the runtime cannot enforce,
 * 403 for a pod the namespace's image policy denies; 422 for a
 * PrometheusRule promtool refuses (ctrl_promrules.c). */
static int
admit(struct api *api, const struct kind *k, const char *ns, const json_t *obj,
    const json_t *old, struct errlist *errs, struct api_error *err)
{
	int rc = api_policy_admit(api, k, ns, obj, old, errs, err);
	if (rc == 0 && strcmp(k->kind, "PrometheusRule") == 0)
		rc = promrules_admit(obj, old, errs);
	if (rc == -EINVAL)
		return invalid(err, k, obj_name(obj), errs);
	return rc < 0 ? -1 : 0;
}

/* Checks apiVersion/kind of a request body against the endpoint's kind,
 * filling them when absent (kubectl always sends them). */
static int
check_type(const struct kind *k, json_t *obj, struct api_error *err)
{
	if (!json_is_object(obj)) {
		api_error_set(err, 400, "BadRequest", "the request body must be a JSON object");
		return -1;
	}
	const char *av = obj_api_version(obj), *kd = obj_kind(obj);
	if (!*av)
		json_object_set_new(obj, "apiVersion", json_string(k->api_version));
	if (!*kd)
		json_object_set_new(obj, "kind", json_string(k->kind));
	av = obj_api_version(obj);
	kd = obj_kind(obj);
	if (strcmp(av, k->api_version) != 0 && kind_find_gvk(av, kd) == k) {
		/* an older version of the kind (gateway.networking.k8s.io/v1beta1): stored
		 * as the kind's own */
		json_object_set_new(obj, "apiVersion", json_string(k->api_version));
		av = obj_api_version(obj);
	}
	if (strcmp(av, k->api_version) != 0 || strcmp(kd, k->kind) != 0) {
		api_error_set(err, 400, "BadRequest",
		    "the API version in the data (%s) and kind (%s) do not match the "
		    "endpoint (%s %s)", av, kd, k->api_version, k->kind);
		return -1;
	}
	return 0;
}

static int
check_namespace(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    bool creating, struct api_error *err)
{
	json_t *meta = obj_metadata(obj);
	if (!k->namespaced) {
		json_object_del(meta, "namespace");
		return 0;
	}
	const char *body_ns = obj_namespace(obj);
	if (*body_ns && strcmp(body_ns, ns) != 0) {
		api_error_set(err, 400, "BadRequest",
		    "the namespace of the provided object (%s) does not match the namespace "
		    "sent on the request (%s)", body_ns, ns);
		return -1;
	}
	json_object_set_new(meta, "namespace", json_string(ns));
	if (!creating)
		return 0;
	json_t *nsobj = NULL;
	if (store_get(api_store(api), "namespaces", "", ns, &nsobj) != 0) {
		api_error_set(err, 404, "NotFound", "namespaces \"%s\" not found", ns);
		err->kind = kind_find_gvk("v1", "Namespace");
		free(err->name);
		err->name = xstrdup(ns);
		return -1;
	}
	bool terminating = json_object_get(json_object_get(nsobj, "metadata"),
	    "deletionTimestamp") != NULL;
	json_decref(nsobj);
	if (terminating) {
		api_error_set(err, 403, "Forbidden",
		    "unable to create new content in namespace %s because it is being "
		    "terminated", ns);
		return -1;
	}
	return 0;
}

static const char *const system_meta_fields[] = {
	"uid", "creationTimestamp", "generation", "deletionTimestamp",
	"deletionGracePeriodSeconds", "resourceVersion", "selfLink", "managedFields",
};

/* Everything of obj but metadata and status, compact, for generation. */
static char *
spec_text(const json_t *obj)
{
	json_t *copy = json_copy((json_t *)obj);
	json_object_del(copy, "metadata");
	json_object_del(copy, "status");
	char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return s;
}

/* The RuntimeClass admission plugin: a pod's runtimeClassName must name an
 * existing RuntimeClass (node.k8s.io/v1), as kube-apiserver answers it. */
static int
admit_runtime_class(struct api *api, const struct kind *k, const json_t *obj,
    struct api_error *err)
{
	const char *rc = json_string_value(json_object_get(json_object_get(obj, "spec"),
	    "runtimeClassName"));
	json_t *o = NULL;
	if (strcmp(k->kind, "Pod") != 0 || *k->group || rc == NULL || !*rc)
		return 0;
	if (store_get(api_store(api), "node.k8s.io/runtimeclasses", "", rc, &o) == 0) {
		json_decref(o);
		return 0;
	}
	api_error_set(err, 403, "Forbidden", "pod rejected: RuntimeClass \"%s\" not found", rc);
	return -1;
}

int
api_create(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    unsigned flags, json_t **out, struct api_error *err)
{
	char key[128];
	struct errlist errs = { 0 };
	if (check_type(k, obj, err) < 0)
		goto fail;
	json_t *meta = obj_metadata(obj);
	const char *gen = json_string_value(json_object_get(meta, "generateName"));
	if (!*obj_name(obj) && gen && *gen) {
		char *name = generate_name(gen);
		json_object_set_new(meta, "name", json_string(name));
		free(name);
	}
	if (check_namespace(api, k, ns, obj, true, err) < 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_SIZE(system_meta_fields); i++)
		if (!(flags & API_MANAGED_FIELDS) || strcmp(system_meta_fields[i],
		    "managedFields") != 0)
			json_object_del(meta, system_meta_fields[i]);
	if (k->has_status)
		json_object_del(obj, "status");
	/* The uid first, as the apiserver's BeforeCreate: a Job's generated
	 * selector (obj_schema_batch.c) is made from it. */
	json_object_set_new(meta, "uid", api_new_uid());
	if (obj_validate(obj, &errs) < 0) {
		invalid(err, k, obj_name(obj), &errs);
		goto fail;
	}
	obj_default(obj);
	if (admit_runtime_class(api, k, obj, err) < 0 ||
	    api_limits_admit(api, k, ns, obj, err) < 0 ||
	    api_vpa_admit(api, k, ns, obj) < 0 ||
	    admit(api, k, ns, obj, NULL, &errs, err) < 0 ||
	    api_quota_admit(api, k, ns, obj, err) < 0)
		goto fail;
	if (api_alloc_assign(api_allocator(api), k, NULL, obj, flags & API_DRY_RUN, &errs) < 0) {
		invalid(err, k, obj_name(obj), &errs);
		goto fail;
	}
	json_object_set_new(meta, "creationTimestamp", now_timestamp());
	if (json_object_get(obj, "spec"))
		json_object_set_new(meta, "generation", json_integer(1));
	if (k->has_status && !json_object_get(obj, "status"))
		json_object_set_new(obj, "status", json_object());
	if (strcmp(k->kind, "Namespace") == 0)
		json_object_set_new(json_object_get(obj, "status"), "phase", json_string("Active"));
	if (!(flags & API_DRY_RUN)) {
		int rc = store_create(api_store(api), api_res_key(k, key, sizeof key), obj);
		if (rc < 0)
			api_alloc_release(api_allocator(api), k, obj);
		if (rc == -EEXIST) {
			char *rn = res_name(k, obj_name(obj));
			api_error_set(err, 409, "AlreadyExists", "%s already exists", rn);
			free(rn);
			err->kind = k;
			free(err->name);
			err->name = xstrdup(obj_name(obj));
			goto fail;
		}
		if (rc < 0) {
			api_error_set(err, 500, "InternalError", "store: %s", strerror(-rc));
			goto fail;
		}
	}
	if (out)
		*out = json_incref(obj);
	json_decref(obj);
	return 0;
fail:
	errlist_free(&errs);
	json_decref(obj);
	return -1;
}

int
api_get(struct api *api, const struct kind *k, const char *ns, const char *name,
    json_t **out, struct api_error *err)
{
	char key[128];
	int rc = store_get(api_store(api), api_res_key(k, key, sizeof key),
	    k->namespaced ? ns : "", name, out);
	if (rc == 0)
		return 0;
	if (rc == -EIO) {	/* e.g. encrypted with a key no longer configured */
		char *rn = res_name(k, name);
		api_error_set(err, 500, "InternalError", "Internal error occurred: %s: the "
		    "stored object cannot be read (the server log says why)", rn);
		free(rn);
		return -1;
	}
	set_not_found(err, k, name);
	return -1;
}

/* Namespaces also wait for spec.finalizers (the namespace controller's). */
static bool
has_finalizers(const json_t *obj)
{
	return json_array_size(obj_get_path(obj, "metadata.finalizers")) > 0 ||
	    (strcmp(obj_kind(obj), "Namespace") == 0 &&
	    json_array_size(obj_get_path(obj, "spec.finalizers")) > 0);
}

/* Final removal from the store, once nothing holds the object back. */
static int
remove_object(struct api *api, const struct kind *k, json_t *obj, struct api_error *err)
{
	char key[128];
	json_t *gone = NULL;
	int rc = store_delete(api_store(api), api_res_key(k, key, sizeof key),
	    obj_namespace(obj), obj_name(obj), 0, &gone);
	if (rc < 0) {
		api_error_set(err, 500, "InternalError", "store: %s", strerror(-rc));
		return -1;
	}
	api_alloc_release(api_allocator(api), k, gone);
	json_decref(gone);
	return 0;
}

int
api_update(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    bool status_only, unsigned flags, json_t **out, struct api_error *err)
{
	char key[128];
	struct errlist errs = { 0 };
	json_t *old = NULL;
	if (check_type(k, obj, err) < 0 || check_namespace(api, k, ns, obj, false, err) < 0)
		goto fail;
	const char *name = obj_name(obj);
	if (!*name) {
		api_error_set(err, 400, "BadRequest", "metadata.name: required");
		goto fail;
	}
	if (api_get(api, k, ns, name, &old, err) < 0)
		goto fail;
	int64_t want_rv = obj_resource_version(obj);
	if (want_rv && want_rv != obj_resource_version(old)) {
		char *rn = res_name(k, name);
		api_error_set(err, 409, "Conflict", "Operation cannot be fulfilled on %s: the "
		    "object has been modified; please apply your changes to the latest version "
		    "and try again", rn);
		free(rn);
		err->kind = k;
		free(err->name);
		err->name = xstrdup(name);
		goto fail;
	}
	const char *body_uid = obj_uid(obj);
	if (*body_uid && strcmp(body_uid, obj_uid(old)) != 0) {
		char *rn = res_name(k, name);
		api_error_set(err, 409, "Conflict", "Operation cannot be fulfilled on %s: "
		    "Precondition failed: UID in precondition: %s, UID in object meta: %s", rn,
		    body_uid, obj_uid(old));
		free(rn);
		goto fail;
	}
	if (status_only) {
		json_t *st = json_incref(json_object_get(obj, "status"));
		json_decref(obj);
		obj = json_deep_copy(old);
		if (st)
			json_object_set_new(obj, "status", st);
	} else if (k->has_status) {
		json_t *st = json_object_get(old, "status");
		if (st)
			json_object_set(obj, "status", st);
		else
			json_object_del(obj, "status");
	}
	json_t *meta = obj_metadata(obj), *old_meta = json_object_get(old, "metadata");
	for (size_t i = 0; i < ARRAY_SIZE(system_meta_fields); i++) {
		json_t *v = json_object_get(old_meta, system_meta_fields[i]);
		if ((flags & API_MANAGED_FIELDS) && strcmp(system_meta_fields[i],
		    "managedFields") == 0)
			continue;
		if (v)
			json_object_set(meta, system_meta_fields[i], v);
		else
			json_object_del(meta, system_meta_fields[i]);
	}
	api_alloc_carry(k, old, obj);
	if (obj_validate(obj, &errs) < 0 || obj_validate_update(old, obj, &errs) < 0) {
		invalid(err, k, name, &errs);
		goto fail;
	}
	obj_default(obj);
	if (admit(api, k, ns, obj, old, &errs, err) < 0)
		goto fail;
	if (api_alloc_assign(api_allocator(api), k, old, obj, flags & API_DRY_RUN, &errs) < 0) {
		invalid(err, k, name, &errs);
		goto fail;
	}
	char *a = spec_text(old), *b = spec_text(obj);
	if (a && b && strcmp(a, b) != 0 && json_object_get(obj, "spec"))
		json_object_set_new(meta, "generation", json_integer(
		    json_integer_value(json_object_get(old_meta, "generation")) + 1));
	free(a);
	free(b);
	if (json_equal(old, obj)) {
		/* A no-op update writes nothing and keeps the resourceVersion. */
		json_decref(obj);
		if (out)
			*out = old;
		else
			json_decref(old);
		return 0;
	}
	if (!(flags & API_DRY_RUN)) {
		int rc;
		if (obj_is_deleting(obj) && !has_finalizers(obj))
			rc = remove_object(api, k, obj, err) < 0 ? -EIO : 0;
		else
			rc = store_update(api_store(api), api_res_key(k, key, sizeof key), obj,
			    obj_resource_version(old));
		if (rc < 0)
			api_alloc_revert(api_allocator(api), k, old, obj);
		if (rc < 0) {
			if (!err->message)
				api_error_set(err, 500, "InternalError", "store: %s", strerror(-rc));
			goto fail;
		}
	}
	json_decref(old);
	if (out)
		*out = json_incref(obj);
	json_decref(obj);
	return 0;
fail:
	errlist_free(&errs);
	json_decref(old);
	json_decref(obj);
	return -1;
}

static void
add_finalizer(json_t *meta, const char *f)
{
	json_t *fins = json_object_get(meta, "finalizers");
	if (!json_is_array(fins)) {
		fins = json_array();
		json_object_set_new(meta, "finalizers", fins);
	}
	size_t i;
	json_t *v;
	json_array_foreach(fins, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), f) == 0)
			return;
	json_array_append_new(fins, json_string(f));
}

/* A Pod bound to a node and not finished is deleted gracefully, as in
 * Kubernetes: it gets deletionTimestamp = now + grace and stays until its
 * node agent has stopped its containers and deletes it with grace 0. */
static bool
pod_delete_graceful(const json_t *pod, int64_t *grace)
{
	if (*grace < 0) {
		json_t *g = obj_get_path(pod, "spec.terminationGracePeriodSeconds");
		*grace = json_is_integer(g) ? json_integer_value(g) : 30;
	}
	const char *node = json_string_value(obj_get_path(pod, "spec.nodeName"));
	const char *phase = json_string_value(obj_get_path(pod, "status.phase"));
	bool finished = phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
	return *grace > 0 && node && *node && !finished;
}

int
api_delete(struct api *api, const struct kind *k, const char *ns, const char *name,
    enum api_propagation prop, const char *precond_uid, int64_t precond_rv,
    unsigned flags, json_t **out, struct api_error *err)
{
	return api_delete_grace(api, k, ns, name, prop, precond_uid, precond_rv, -1, flags,
	    out, err);
}

int
api_delete_grace(struct api *api, const struct kind *k, const char *ns, const char *name,
    enum api_propagation prop, const char *precond_uid, int64_t precond_rv,
    int64_t grace, unsigned flags, json_t **out, struct api_error *err)
{
	char key[128];
	json_t *obj = NULL;
	if (api_get(api, k, ns, name, &obj, err) < 0)
		return -1;
	if ((precond_uid && *precond_uid && strcmp(precond_uid, obj_uid(obj)) != 0) ||
	    (precond_rv && precond_rv != obj_resource_version(obj))) {
		char *rn = res_name(k, name);
		api_error_set(err, 409, "Conflict", "Operation cannot be fulfilled on %s: "
		    "Precondition failed: UID or ResourceVersion in precondition does not "
		    "match the object", rn);
		free(rn);
		json_decref(obj);
		return -1;
	}
	json_t *meta = obj_metadata(obj);
	bool is_ns = strcmp(k->kind, "Namespace") == 0;
	if (is_ns && (strcmp(name, "default") == 0 || strcmp(name, "kube-system") == 0 ||
	    strcmp(name, "kube-public") == 0)) {
		api_error_set(err, 403, "Forbidden", "namespaces \"%s\" is forbidden: this "
		    "namespace may not be deleted", name);
		json_decref(obj);
		return -1;
	}
	if (prop == API_PROPAGATE_FOREGROUND)
		add_finalizer(meta, "foregroundDeletion");
	else if (prop == API_PROPAGATE_ORPHAN)
		add_finalizer(meta, "orphan");
	if (is_ns) {
		json_t *st = json_object_get(obj, "status");
		if (!json_is_object(st)) {
			st = json_object();
			json_object_set_new(obj, "status", st);
		}
		json_object_set_new(st, "phase", json_string("Terminating"));
	}
	bool keep = has_finalizers(obj);
	if (flags & API_DRY_RUN) {
		if (out)
			*out = obj;
		else
			json_decref(obj);
		return 0;
	}
	int rc = 0;
	bool graceful = strcmp(k->kind, "Pod") == 0 && pod_delete_graceful(obj, &grace);
	json_t *old_grace = json_object_get(meta, "deletionGracePeriodSeconds");
	if (graceful && (!obj_is_deleting(obj) || grace < json_integer_value(old_grace))) {
		/* First graceful delete, or a shorter grace than before. */
		char ts[32];
		time_format_rfc3339(time(NULL) + (time_t)grace, ts);
		json_object_set_new(meta, "deletionTimestamp", json_string(ts));
		json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace));
		rc = store_update(api_store(api), api_res_key(k, key, sizeof key), obj, 0);
	} else if (graceful) {
		/* Already terminating with this grace or less: nothing changes. */
	} else if (keep) {
		if (!obj_is_deleting(obj)) {
			json_object_set_new(meta, "deletionTimestamp", now_timestamp());
			json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0));
		}
		rc = store_update(api_store(api), api_res_key(k, key, sizeof key), obj, 0);
	} else {
		json_t *gone = NULL;
		rc = store_delete(api_store(api), api_res_key(k, key, sizeof key),
		    k->namespaced ? ns : "", name, 0, &gone);
		if (rc == 0) {
			api_alloc_release(api_allocator(api), k, gone);
			json_decref(obj);
			obj = gone;
		}
	}
	if (rc < 0) {
		api_error_set(err, 500, "InternalError", "store: %s", strerror(-rc));
		json_decref(obj);
		return -1;
	}
	if (out)
		*out = obj;
	else
		json_decref(obj);
	return 0;
}

/* ---- events: record, aggregate, expire ------------------------------- */

/*
 * As client-go's EventCorrelator: an Event repeated with the same object,
 * reason and message bumps count and lastTimestamp of one stored Event;
 * once EVENT_AGG_MAX different messages share an object, type, reason and
 * source within EVENT_AGG_WINDOW_MS, further ones are combined into one
 * Event "(combined from similar events): ...". So a crash-looping pod or a
 * churning ReplicaSet keeps a bounded number of Events, and api_events_*
 * deletes Events whose last occurrence is older than the TTL.
 */
#define EVENT_AGG_MAX		10
#define EVENT_AGG_WINDOW_MS	(10 * 60 * 1000)
#define EVENT_AGG_SLOTS		512	/* a bounded cache: a collision restarts a slot */

struct event_agg {
	uint64_t key;
	int64_t last_ms;
	unsigned n;
	uint64_t msgs[EVENT_AGG_MAX];
};

struct api_events {
	struct api *api;
	uv_timer_t timer;
	int64_t ttl_ms;
	struct event_agg agg[EVENT_AGG_SLOTS];
};

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;	/* a separator between parts */
}

/* True when this message joins a burst of similar ones (aggregate it). */
static bool
event_aggregate(struct api_events *ev, uint64_t key, uint64_t msg)
{
	if (!ev)
		return false;
	struct event_agg *a = &ev->agg[key % EVENT_AGG_SLOTS];
	int64_t now = time_mono_ms();
	if (a->key != key || now - a->last_ms > EVENT_AGG_WINDOW_MS)
		*a = (struct event_agg){ .key = key };
	a->last_ms = now;
	for (unsigned i = 0; i < a->n; i++)
		if (a->msgs[i] == msg)
			return a->n >= EVENT_AGG_MAX;
	if (a->n < EVENT_AGG_MAX) {
		a->msgs[a->n++] = msg;
		return false;
	}
	return true;
}

/* Events are named after their object plus a hash of what makes them the
 * same Event; a repeat bumps count and lastTimestamp instead. */
void
api_record_event(struct api *api, const json_t *obj, const char *type, const char *reason,
    const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	const struct kind *ek = kind_find_gvk("v1", "Event");
	const char *ns = obj_namespace(obj);
	if (!*ns)
		ns = "default";
	char name[300];
	uint64_t agg = fnv(fnv(fnv(fnv(1469598103934665603ULL, obj_uid(obj)), type), reason),
	    component);
	uint64_t h = fnv(fnv(fnv(1469598103934665603ULL, obj_uid(obj)), reason), msg);
	if (event_aggregate(api_events_of(api), agg, fnv(1469598103934665603ULL, msg))) {
		char *combined = xasprintf("(combined from similar events): %s", msg);
		free(msg);
		msg = combined;
		h = agg;
	}
	snprintf(name, sizeof name, "%.230s.%016llx", obj_name(obj), (unsigned long long)h);
	json_t *ts = now_timestamp();
	json_t *old = NULL;
	struct api_error err = { 0 };
	if (store_get(api_store(api), "events", ns, name, &old) == 0) {
		json_object_set_new(old, "count", json_integer(
		    json_integer_value(json_object_get(old, "count")) + 1));
		json_object_set(old, "lastTimestamp", ts);
		json_object_set_new(old, "message", json_string(msg));
		if (api_update(api, ek, ns, old, false, 0, NULL, &err) < 0)
			log_warn("events", "recording %s: %s", reason, err.message);
	} else {
		json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s},"
		    " s:s, s:s, s:s, s:{s:s}, s:O, s:O, s:i, s:s, s:s}",
		    "apiVersion", "v1", "kind", "Event",
		    "metadata", "name", name, "namespace", ns,
		    "involvedObject", "apiVersion", obj_api_version(obj), "kind", obj_kind(obj),
		    "name", obj_name(obj), "namespace", obj_namespace(obj), "uid", obj_uid(obj),
		    "reason", reason, "message", msg, "type", type,
		    "source", "component", component,
		    "firstTimestamp", ts, "lastTimestamp", ts, "count", 1,
		    "reportingComponent", component, "reportingInstance", "v6");
		if (ev && api_create(api, ek, ns, ev, 0, NULL, &err) < 0)
			log_warn("events", "recording %s: %s", reason, err.message);
	}
	api_error_clear(&err);
	json_decref(ts);
	free(msg);
}

/* The last time an Event happened, as Kubernetes' TTL counts it (the
 * lease is renewed by every update): series.lastObservedTime,
 * lastTimestamp, eventTime, else creationTimestamp. 0 when unknown. */
static time_t
event_last_seen(const json_t *ev)
{
	static const char *const paths[] = { "series.lastObservedTime", "lastTimestamp",
		"eventTime", "metadata.creationTimestamp" };
	time_t t = 0, best = 0;
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		const char *s = json_string_value(obj_get_path(ev, paths[i]));
		if (s && time_parse_rfc3339(s, &t) == 0 && t > best)
			best = t;
	}
	return best;
}

struct expiry {
	time_t cutoff;
	json_t *names;		/* [[ns, name], ...] to delete */
};

static int
collect_expired(void *arg, const char *json, size_t len)
{
	struct expiry *x = arg;
	json_t *ev = json_loadb(json, len, 0, NULL);
	time_t seen = ev ? event_last_seen(ev) : 0;
	if (seen && seen < x->cutoff)
		json_array_append_new(x->names, json_pack("[s,s]", obj_namespace(ev),
		    obj_name(ev)));
	json_decref(ev);
	return 0;
}

/* Reads every Event (no write when none expired) and deletes the expired
 * ones in one batch (one commit). */
static void
on_events_expire(uv_timer_t *t)
{
	struct api_events *ev = t->data;
	struct expiry x = { .cutoff = time(NULL) - (time_t)(ev->ttl_ms / 1000),
		.names = json_array() };
	const struct kind *ek = kind_find_gvk("v1", "Event");
	store_list_each(api_store(ev->api), "events", NULL, collect_expired, &x, NULL);
	size_t i;
	json_t *nn;
	json_array_foreach(x.names, i, nn) {
		struct api_error err = { 0 };
		api_delete(ev->api, ek, json_string_value(json_array_get(nn, 0)),
		    json_string_value(json_array_get(nn, 1)), API_PROPAGATE_BACKGROUND, NULL, 0,
		    0, NULL, &err);
		api_error_clear(&err);
	}
	if (i)
		log_info("events", "expired %zu events older than %llds", i,
		    (long long)(ev->ttl_ms / 1000));
	json_decref(x.names);
}

struct api_events *
api_events_start(struct api *api, uv_loop_t *loop, int64_t ttl_ms)
{
	struct api_events *ev = xcalloc(1, sizeof *ev);
	ev->api = api;
	ev->ttl_ms = ttl_ms > 0 ? ttl_ms : API_EVENT_TTL_DEFAULT_MS;
	/* Coarse: a tenth of the TTL, between 1 s and 1 min. */
	int64_t period = ev->ttl_ms / 10;
	period = period < 1000 ? 1000 : period > 60000 ? 60000 : period;
	uv_timer_init(loop, &ev->timer);
	ev->timer.data = ev;
	uv_timer_start(&ev->timer, on_events_expire, (uint64_t)period, (uint64_t)period);
	return ev;
}

static void
events_free_cb(uv_handle_t *h)
{
	free(h->data);
}

void
api_events_stop(struct api_events *ev)
{
	if (!ev)
		return;
	uv_timer_stop(&ev->timer);
	uv_close((uv_handle_t *)&ev->timer, events_free_cb);
}

json_t *
api_lookup_v1(void *api, const char *kind, const char *ns, const char *name)
{
	json_t *o = NULL;
	struct api_error err = { 0 };
	const struct kind *k = kind_find_gvk("v1", kind);
	if (!k || api_get(api, k, ns, name, &o, &err) < 0)
		o = NULL;
	api_error_clear(&err);
	return o;
}
