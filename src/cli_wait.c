/* cli_wait.c — `v6 wait --for=condition=TYPE[=VALUE] | --for=delete`, and
 * the wait-until-gone loop that `v6 delete --wait` shares. Polls the object
 * every 200 ms (simple, and independent of watch bookmarks) until the
 * condition holds or the deadline passes. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define POLL_MS 200

struct target {
	const struct kind *k;
	char *name;
};

static void
nap(int64_t deadline)
{
	int64_t left = deadline - time_mono_ms();
	usleep((useconds_t)(left < POLL_MS ? (left > 0 ? left : 0) : POLL_MS) * 1000);
}

/* GETs an object: 1 found (*obj set, caller decrefs), 0 not found, <0
 * error printed. */
static int
fetch(const struct kind *k, const char *ns, const char *name, json_t **obj)
{
	struct cli_resp r;
	char *path = cli_path(k, ns, name, NULL);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return rc;
	if (r.status == 404) {
		rc = 0;
	} else if (r.status == 200) {
		*obj = json_incref(r.body);
		rc = 1;
	} else {
		cli_print_error(&r, NULL);
		rc = -EIO;
	}
	cli_resp_free(&r);
	return rc;
}

int
cli_wait_gone(const struct kind *k, const char *ns, const char *name, const char *uid,
    int64_t deadline_mono_ms)
{
	for (;;) {
		json_t *obj = NULL;
		int rc = fetch(k, ns, name, &obj);
		bool gone = rc == 0 || (rc == 1 && uid && *uid && strcmp(obj_uid(obj), uid) != 0);
		json_decref(obj);
		if (rc < 0)
			return rc;
		if (gone)
			return 0;
		if (time_mono_ms() >= deadline_mono_ms)
			return -ETIMEDOUT;
		nap(deadline_mono_ms);
	}
}

/* Whether status.conditions has type (case-insensitive) with status value. */
static bool
condition_holds(const json_t *obj, const char *type, const char *value)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(obj, "status.conditions"), i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		const char *s = json_string_value(json_object_get(c, "status"));
		if (t && s && strcasecmp(t, type) == 0)
			return strcasecmp(s, value) == 0;
	}
	return false;
}

static int
wait_condition(const struct target *t, const char *ns, const char *type, const char *value,
    int64_t deadline)
{
	for (;;) {
		json_t *obj = NULL;
		int rc = fetch(t->k, ns, t->name, &obj);
		bool met = rc == 1 && condition_holds(obj, type, value);
		json_decref(obj);
		if (rc == 0) {
			fprintf(stderr, "Error from server (NotFound): %s%s%s \"%s\" not found\n",
			    t->k->plural, t->k->group[0] ? "." : "", t->k->group, t->name);
			return -ENOENT;
		}
		if (rc < 0)
			return rc;
		if (met)
			return 0;
		if (time_mono_ms() >= deadline)
			return -ETIMEDOUT;
		nap(deadline);
	}
}

static int
add_target(struct target **v, size_t *n, const char *kind, const char *name)
{
	const struct kind *k = cli_kind(kind);
	if (k == NULL)
		return -EINVAL;
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = (struct target){ k, xstrdup(name) };
	return 0;
}

static int
list_targets(const struct cli_opts *o, const char *kind, struct target **v, size_t *n)
{
	const struct kind *k = cli_kind(kind);
	struct cli_resp r;
	struct buf q = BUF_INIT;
	if (k == NULL)
		return -EINVAL;
	cli_query_add(&q, "labelSelector", o->selector);
	char *path = cli_path(k, cli_ns(o), NULL, q.data);
	buf_free(&q);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return rc;
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(r.body, "items"), i, it)
		add_target(v, n, kind, obj_name(it));
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		rc = -EIO;
	} else if (*n == 0) {
		fputs("error: no matching resources found\n", stderr);
		rc = -ENOENT;
	}
	cli_resp_free(&r);
	return rc;
}

/* KIND/NAME..., KIND NAME..., or KIND -l SEL. */
static int
parse_targets(const struct cli_opts *o, struct target **v, size_t *n)
{
	if (o->nargs == 0)
		return cli_fail("resource name may not be empty");
	if (strchr(o->args[0], '/') == NULL) {
		if (o->nargs == 1 && o->selector)
			return list_targets(o, o->args[0], v, n);
		if (o->nargs == 1)
			return cli_fail("resource name may not be empty");
		for (size_t i = 1; i < o->nargs; i++)
			if (add_target(v, n, o->args[0], o->args[i]) < 0)
				return -EINVAL;
		return 0;
	}
	for (size_t i = 0; i < o->nargs; i++) {
		const char *s = strchr(o->args[i], '/');
		if (s == NULL)
			return cli_fail("arguments in resource/name form must have a single resource "
			    "and name");
		char *kind = xstrndup(o->args[i], (size_t)(s - o->args[i]));
		int rc = add_target(v, n, kind, s + 1);
		free(kind);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* "--for" as delete, or condition=TYPE[=VALUE]: type/value are set. */
static int
parse_for(const char *f, char **type, char **value)
{
	if (f == NULL)
		return cli_fail("--for must be specified: --for=delete or "
		    "--for=condition=TYPE[=VALUE]");
	if (strcasecmp(f, "delete") == 0)
		return 0;
	if (!str_has_prefix(f, "condition=") || f[10] == '\0')
		return cli_fail("unrecognized condition: \"%s\"", f);
	const char *eq = strchr(f + 10, '=');
	*type = eq ? xstrndup(f + 10, (size_t)(eq - f - 10)) : xstrdup(f + 10);
	*value = xstrdup(eq ? eq + 1 : "True");
	return 0;
}

static int
wait_one(const struct cli_opts *o, const struct target *t, const char *type,
    const char *value, int64_t deadline)
{
	const char *ns = cli_ns(o);
	int rc = type ? wait_condition(t, ns, type, value, deadline)
	    : cli_wait_gone(t->k, ns, t->name, NULL, deadline);
	char ref[512];
	if (rc == 0)
		printf("%s condition met\n", cli_obj_ref(t->k, t->name, ref, sizeof ref));
	else if (rc == -ETIMEDOUT)
		fprintf(stderr, "error: timed out waiting for the condition on %s/%s\n",
		    t->k->plural, t->name);
	fflush(stdout);
	return rc;
}

int
cli_wait(struct cli_opts *o)
{
	char *type = NULL, *value = NULL;
	struct target *v = NULL;
	size_t n = 0;
	int rc = 1;
	int64_t ms = cli_timeout_ms(o, 30000);
	if (ms < 0 || parse_for(o->for_cond, &type, &value) < 0 || parse_targets(o, &v, &n) < 0)
		goto out;
	int64_t deadline = time_mono_ms() + ms;
	rc = 0;
	for (size_t i = 0; i < n; i++)
		if (wait_one(o, &v[i], type, value, deadline) < 0)
			rc = 1;
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	free(type);
	free(value);
	return rc;
}
