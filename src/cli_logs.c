/* cli_logs.c — `v6 logs`: turns POD, KIND/NAME (one pod of a workload,
 * picked as kubectl picks it) or -l SEL (every matching pod) into log
 * streams, GET .../pods/NAME/log (text/plain), and copies them to stdout.
 * With -f the streams run side by side on one curl multi handle; lines get
 * a "[pod/NAME/CONTAINER] " prefix when several sources are shown. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONTAINER_ANN "kubectl.kubernetes.io/default-container"
#define SELECTOR_TAIL 10	/* kubectl's --tail default with -l */
#define MAX_LOG_REQUESTS 5

struct stream {
	char *path;
	char *prefix;		/* "[pod/web-1/web] " or NULL */
	struct buf line;	/* the unfinished line, in prefixed mode */
	struct buf err;		/* body of a failed response */
	long status;
	CURL *h;
	struct curl_slist *hdrs;
};

struct logs {
	struct cli_opts *o;
	const struct kind *pk;	/* Pod */
	char *query;		/* the options every stream shares */
	bool prefix;
	struct stream *v;
	size_t n;
};

/* ---- streams ----------------------------------------------------------- */

static void
stream_line(struct stream *s, const char *p, size_t len)
{
	fputs(s->prefix, stdout);
	fwrite(p, 1, len, stdout);
}

static size_t
stream_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t len = size * nmemb;
	if (s->status == 0)
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status >= 300) {
		buf_append(&s->err, p, len);
		return len;
	}
	if (s->prefix == NULL) {
		fwrite(p, 1, len, stdout);
	} else {
		for (size_t i = 0; i < len; i++) {
			buf_putc(&s->line, p[i]);
			if (p[i] == '\n') {
				stream_line(s, s->line.data, s->line.len);
				buf_reset(&s->line);
			}
		}
	}
	fflush(stdout);
	return len;
}

static void
stream_start(struct logs *l, struct stream *s, CURLM *m)
{
	s->h = curl_easy_init();
	BUG_ON(s->h == NULL);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	if (!l->o->follow)
		curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 120000L);
	s->hdrs = cli_curl_prepare(s->h, s->path,
	    curl_slist_append(NULL, "Accept: text/plain, application/json"));
	curl_multi_add_handle(m, s->h);
}

/* Ends a stream; returns 0, or 1 when it failed (the error printed). */
static int
stream_finish(struct stream *s, CURLM *m, CURLcode res)
{
	int rc = 0;
	if (s->line.len)
		stream_line(s, s->line.data, s->line.len);
	fflush(stdout);
	if (res != CURLE_OK) {
		cli_transport_error(res, "");
		rc = 1;
	} else if (s->status >= 300 || s->status == 0) {
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
		struct cli_resp r = { s->status, NULL, s->err.data ? s->err.data : (char *)"" };
		r.body = json_loads(r.raw, 0, NULL);
		if (s->status >= 300) {
			cli_print_error(&r, NULL);
			rc = 1;
		}
		json_decref(r.body);
	}
	curl_multi_remove_handle(m, s->h);
	curl_easy_cleanup(s->h);
	curl_slist_free_all(s->hdrs);
	s->h = NULL;
	return rc;
}

/* Runs the streams, at most `width` at a time, in order. */
static int
streams_run(struct logs *l, size_t width)
{
	CURLM *m = curl_multi_init();
	size_t next = 0, active = 0;
	int rc = 0;
	while (active > 0 || next < l->n) {
		while (active < width && next < l->n) {
			stream_start(l, &l->v[next++], m);
			active++;
		}
		int running, left;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct stream *s = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			rc |= stream_finish(s, m, msg->data.result);
			active--;
		}
		if (active > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	curl_multi_cleanup(m);
	return rc;
}

static void
stream_add(struct logs *l, const char *pod, const char *container)
{
	struct buf q = BUF_INIT;
	cli_query_add(&q, "container", container);
	char *base = cli_path(l->pk, cli_ns(l->o), pod, NULL);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	struct stream *s = &l->v[l->n++];
	memset(s, 0, sizeof *s);
	s->path = xasprintf("%s/log?%s%s%s", base, q.data, l->query[0] ? "&" : "", l->query);
	s->prefix = l->prefix ? xasprintf("[pod/%s/%s] ", pod, container) : NULL;
	free(base);
	buf_free(&q);
}

/* ---- options ----------------------------------------------------------- */

static int
logs_query(struct logs *l)
{
	const struct cli_opts *o = l->o;
	struct buf q = BUF_INIT;
	char num[32];
	int64_t tail = o->tail;
	if (!cli_flag_given(o, "tail"))
		tail = o->selector ? SELECTOR_TAIL : -1;
	if (tail < -1)
		return cli_fail("--tail must be greater than or equal to -1");
	if (cli_flag_given(o, "limit-bytes") && o->limit_bytes < 1)
		return cli_fail("--limit-bytes must be greater than 0");
	if (o->follow)
		cli_query_add(&q, "follow", "true");
	if (o->previous)
		cli_query_add(&q, "previous", "true");
	if (o->timestamps)
		cli_query_add(&q, "timestamps", "true");
	if (tail >= 0) {
		snprintf(num, sizeof num, "%lld", (long long)tail);
		cli_query_add(&q, "tailLines", num);
	}
	if (o->since) {
		int64_t ms;
		if (duration_parse(o->since, &ms) < 0 || ms <= 0) {
			buf_free(&q);
			return cli_fail("invalid --since \"%s\": use a positive duration such as "
			    "10s, 5m or 1h", o->since);
		}
		snprintf(num, sizeof num, "%lld", (long long)((ms + 999) / 1000));
		cli_query_add(&q, "sinceSeconds", num);
	}
	if (cli_flag_given(o, "limit-bytes")) {
		snprintf(num, sizeof num, "%lld", (long long)o->limit_bytes);
		cli_query_add(&q, "limitBytes", num);
	}
	l->query = buf_steal(&q);
	return 0;
}

/* ---- which containers -------------------------------------------------- */

static void
names_of(const json_t *list, struct buf *b)
{
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
		buf_printf(b, "%s%s", i ? " " : "", json_string_value(json_object_get(c, "name")));
}

/* The one container to show when -c is not given, or NULL with kubectl's
 * error printed. */
static const char *
default_container(const json_t *pod)
{
	json_t *cs = obj_get_path(pod, "spec.containers");
	json_t *inits = obj_get_path(pod, "spec.initContainers");
	json_t *ann = obj_get_path(pod, "metadata.annotations");
	const char *dflt = json_string_value(json_object_get(ann, DEFAULT_CONTAINER_ANN));
	if (dflt && *dflt)
		return dflt;
	if (json_array_size(cs) == 1)
		return json_string_value(obj_get_path(json_array_get(cs, 0), "name"));
	struct buf b = BUF_INIT, ib = BUF_INIT;
	names_of(cs, &b);
	names_of(inits, &ib);
	cli_err("a container name must be specified for pod %s, choose one of: [%s]%s%s%s",
	    obj_name(pod), b.data ? b.data : "", ib.len ? " or one of the init containers: ["
	    : "", ib.len ? ib.data : "", ib.len ? "]" : "");
	buf_free(&b);
	buf_free(&ib);
	return NULL;
}

static int
add_pod(struct logs *l, const json_t *pod, const char *container)
{
	static const char *const all[] = { "spec.initContainers", "spec.containers",
		"spec.ephemeralContainers" };
	if (container == NULL)
		container = l->o->container;
	if (container) {
		stream_add(l, obj_name(pod), container);
		return 0;
	}
	if (!l->o->all_containers) {
		const char *c = default_container(pod);
		if (c == NULL)
			return -EINVAL;
		stream_add(l, obj_name(pod), c);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		size_t j;
		json_t *c;
		json_array_foreach(obj_get_path(pod, all[i]), j, c)
			stream_add(l, obj_name(pod), json_string_value(json_object_get(c, "name")));
	}
	return 0;
}

/* ---- which pods -------------------------------------------------------- */

static json_t *
get_json(const char *path)
{
	struct cli_resp r;
	if (cli_http("GET", path, NULL, NULL, &r) < 0)
		return NULL;
	json_t *body = NULL;
	if (r.status == 200 && json_is_object(r.body))
		body = json_incref(r.body);
	else
		cli_print_error(&r, NULL);
	cli_resp_free(&r);
	return body;
}

static json_t *
list_pods(const struct logs *l, const char *selector)
{
	struct buf q = BUF_INIT;
	cli_query_add(&q, "labelSelector", selector);
	char *path = cli_path(l->pk, cli_ns(l->o), NULL, q.data);
	json_t *list = get_json(path);
	free(path);
	buf_free(&q);
	return list;
}

static bool
pod_ready(const json_t *p, const char **since)
{
	size_t i;
	json_t *c;
	*since = "";
	json_array_foreach(obj_get_path(p, "status.conditions"), i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		const char *st = json_string_value(json_object_get(c, "status"));
		if (t && strcmp(t, "Ready") == 0 && st && strcmp(st, "True") == 0) {
			const char *ts = json_string_value(json_object_get(c, "lastTransitionTime"));
			*since = ts ? ts : "";
			return true;
		}
	}
	return false;
}

static int
phase_rank(const json_t *p)
{
	const char *ph = json_string_value(obj_get_path(p, "status.phase"));
	return ph == NULL ? 0 : strcmp(ph, "Pending") == 0 ? 2 : strcmp(ph, "Unknown") == 0;
}

static int64_t
max_restarts(const json_t *p)
{
	int64_t n = 0;
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(p, "status.containerStatuses"), i, c)
		if (json_integer_value(json_object_get(c, "restartCount")) > n)
			n = json_integer_value(json_object_get(c, "restartCount"));
	return n;
}

/* Empty timestamps sort last. */
static int
ts_cmp(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a - !*b;
	return strcmp(a, b);
}

/* kubectl's ByLogging: the pod whose logs a user most likely wants first. */
static int
by_logging(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	const char *na = json_string_value(obj_get_path(a, "spec.nodeName"));
	const char *nb = json_string_value(obj_get_path(b, "spec.nodeName"));
	bool aa = na && *na, ab = nb && *nb;
	if (aa != ab)
		return aa ? -1 : 1;
	if (phase_rank(a) != phase_rank(b))
		return phase_rank(a) - phase_rank(b);
	const char *ra, *rb;
	bool ready_a = pod_ready(a, &ra), ready_b = pod_ready(b, &rb);
	if (ready_a != ready_b)
		return ready_a ? -1 : 1;
	if (ready_a && ts_cmp(ra, rb) != 0)
		return ts_cmp(ra, rb);
	if (max_restarts(a) != max_restarts(b))
		return max_restarts(a) > max_restarts(b) ? -1 : 1;
	const char *ca = json_string_value(obj_get_path(a, "metadata.creationTimestamp"));
	const char *cb = json_string_value(obj_get_path(b, "metadata.creationTimestamp"));
	return ts_cmp(ca ? ca : "", cb ? cb : "");
}

/* The label selector of a workload (spec.selector; a Service's is a map). */
static char *
workload_selector(const struct kind *k, const json_t *obj)
{
	json_t *sel = obj_get_path(obj, "spec.selector");
	json_t *ls = strcmp(k->kind, "Service") == 0 ? json_pack("{s:O}", "matchLabels", sel)
	    : json_incref(sel);
	struct selector *s = NULL;
	char *err = NULL, *out = NULL;
	if (sel && selector_from_json(ls, &s, &err) == 0 && !selector_empty(s))
		out = selector_format(s);
	else
		cli_err("cannot select pods for %s \"%s\": %s", k->plural, obj_name(obj),
		    err ? err : "it has no selector");
	selector_free(s);
	free(err);
	json_decref(ls);
	return out;
}

/* The pod of a workload whose logs to show, waiting for one to exist. */
static json_t *
pick_pod(struct logs *l, const struct kind *k, const char *name)
{
	int64_t wait_ms = 20000;
	if (l->o->pod_running_timeout && duration_parse(l->o->pod_running_timeout, &wait_ms) < 0) {
		cli_err("invalid --pod-running-timeout \"%s\": use a duration such as 20s",
		    l->o->pod_running_timeout);
		return NULL;
	}
	char *path = cli_path(k, cli_ns(l->o), name, NULL);
	json_t *obj = get_json(path), *pod = NULL;
	free(path);
	char *sel = obj ? workload_selector(k, obj) : NULL;
	int64_t deadline = time_mono_ms() + wait_ms;
	for (json_t *list; sel && pod == NULL && (list = list_pods(l, sel)) != NULL; ) {
		json_t *items = json_object_get(list, "items");
		size_t n = json_array_size(items);
		if (n) {
			json_t **v = xcalloc(n, sizeof *v);
			for (size_t i = 0; i < n; i++)
				v[i] = json_array_get(items, i);
			qsort(v, n, sizeof *v, by_logging);
			pod = json_incref(v[0]);
			if (n > 1)
				fprintf(stderr, "Found %zu pods, using pod/%s\n", n, obj_name(pod));
			free(v);
		}
		json_decref(list);
		if (pod == NULL && time_mono_ms() >= deadline) {
			cli_err("timed out waiting for the condition");
			break;
		}
		if (pod == NULL)
			usleep(250 * 1000);
	}
	free(sel);
	json_decref(obj);
	return pod;
}

static int
from_selector(struct logs *l)
{
	json_t *list = list_pods(l, l->o->selector);
	if (list == NULL)
		return -EIO;
	json_t *items = json_object_get(list, "items");
	size_t i;
	json_t *p;
	int rc = 0;
	if (json_array_size(items) == 0)
		fprintf(stderr, "No resources found in %s namespace.\n", cli_ns(l->o));
	json_array_foreach(items, i, p)
		if ((rc = add_pod(l, p, NULL)) < 0)
			break;
	json_decref(list);
	return rc;
}

static int
from_args(struct logs *l)
{
	const char *arg = l->o->args[0], *slash = strchr(arg, '/');
	const char *container = l->o->nargs > 1 ? l->o->args[1] : NULL;
	json_t *pod = NULL;
	const struct kind *k = l->pk;
	if (slash) {
		char *kname = xstrndup(arg, (size_t)(slash - arg));
		k = cli_kind(kname);
		free(kname);
		if (k == NULL)
			return -EINVAL;
		arg = slash + 1;
	}
	if (strcmp(k->kind, "Pod") == 0) {
		char *path = cli_path(k, cli_ns(l->o), arg, NULL);
		pod = get_json(path);
		free(path);
	} else {
		pod = pick_pod(l, k, arg);
	}
	if (pod == NULL)
		return -EIO;
	if (container && l->o->container) {
		json_decref(pod);
		return cli_fail("only one of -c or an inline container name is allowed");
	}
	int rc = add_pod(l, pod, container);
	json_decref(pod);
	return rc;
}

static int
logs_check(const struct cli_opts *o)
{
	if (o->selector && o->nargs)
		return cli_fail("only a selector (-l) or a POD name is allowed");
	if (!o->selector && (o->nargs == 0 || o->nargs > 2))
		return cli_fail("expected POD, KIND/NAME or -l SEL: 'v6 logs POD [-c CONTAINER]'");
	if (o->all_containers && o->container)
		return cli_fail("--all-containers=true should not be specified with container "
		    "name %s", o->container);
	return 0;
}

int
cli_logs(struct cli_opts *o)
{
	struct logs l = { .o = o, .pk = kind_find_gvk("v1", "Pod") };
	int rc = 1;
	l.prefix = cli_flag_given(o, "prefix") ? o->prefix : o->selector != NULL;
	if (logs_check(o) < 0 || logs_query(&l) < 0)
		goto out;
	if ((o->selector ? from_selector(&l) : from_args(&l)) < 0)
		goto out;
	int64_t max = cli_flag_given(o, "max-log-requests") ? o->max_log_requests
	    : MAX_LOG_REQUESTS;
	if (o->follow && (int64_t)l.n > max) {
		rc = cli_err("you are attempting to follow %zu log streams, but maximum allowed "
		    "concurrency is %lld, use --max-log-requests to increase the limit", l.n,
		    (long long)max);
		goto out;
	}
	rc = streams_run(&l, o->follow ? l.n : 1);
out:
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].path);
		free(l.v[i].prefix);
		buf_free(&l.v[i].line);
		buf_free(&l.v[i].err);
	}
	free(l.v);
	free(l.query);
	return rc;
}
