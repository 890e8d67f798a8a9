/* alert_notify.c — V6 as a receiver in Alertmanager's chain: each
 * notification (webhook_config, version 4 JSON) is annotated with its
 * probable cause (alert_cause.c), filtered by noise control (alerts of a
 * rollout about to abort by analysis are held back; flapping alerts are
 * folded into one notification with a flap count), and forwarded to the
 * receiver a Secret describes (DingTalk or WeCom robot, or any webhook)
 * through libcurl on the thread pool. Alertmanager gets 200 once the
 * receiver took it, 502 otherwise, and retries. What the receiver decided
 * and delivered survives a crash (DATA_DIR/alerts/receiver-state.json,
 * fsync'ed before Alertmanager gets its answer). Served by alert_api.c. */
#include "alert.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "node_pod.h"
#include "obj.h"
#include "store.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECEIVER_TYPE		"v6.dev/alert-receiver"
#define SEND_TIMEOUT_MS		10000
#define SEEN_MAX		4096
#define SEEN_TTL_MS		(24 * 60 * 60 * 1000)
#define CHANGES_IN_ANNOTATION	5
#define DELIVERIES_MAX		1024
/* the same alerts again this soon: Alertmanager re-flushing a group whose
 * answer it missed (its repeat_interval is hours), not a new notification */
#define REFLUSH_WINDOW_MS	60000
#define STATE_VERSION		1

struct alert_notify {
	struct api *api;
	int64_t flap_window_ms;
	int flap_threshold;
	bool noise_control;
	json_t *seen;			/* fingerprint -> what V6 did with it */
	/* notification key -> {receiver, atMs, notification, flapped[]} while
	 * it waits for its receiver, {receiver, atMs, deliveredMs, sent} once
	 * delivered: a retry of it is never decided or sent again */
	json_t *deliveries;
	char *state_path;		/* NULL: in memory only */
	struct fwd *fwds;		/* forwards in flight */
};

/* Alerts about a rollout's own state are the signal of its abort, never
 * held back with the alerts of its workload. */
static const char *const signal_alerts[] = {
	"V6RolloutDegraded", "V6AnalysisRunFailed", "V6RolloutAborted",
};

/* ---- durable state --------------------------------------------------------- */

/* Writes seen and deliveries (temp file, fsync, rename, fsync of the
 * directory), so that what Alertmanager was told survives kill -9. A
 * failure is logged: the receiver goes on from memory. */
static int
state_save(struct alert_notify *n)
{
	if (!n->state_path)
		return 0;
	json_t *doc = json_pack("{s:i, s:O, s:O}", "version", STATE_VERSION, "seen", n->seen,
	    "deliveries", n->deliveries);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	int rc = file_write_atomic(n->state_path, text, strlen(text), true);
	free(text);
	char *dir = xstrdup(n->state_path), *slash = strrchr(dir, '/');
	*slash = 0;
	int fd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		if (fsync(fd) < 0)
			rc = -errno;
		close(fd);
	}
	free(dir);
	if (rc < 0)
		log_error("alerts", "cannot save the receiver's state to %s: %s", n->state_path,
		    strerror(-rc));
	return rc;
}

static void
state_load(struct alert_notify *n)
{
	char *text = NULL;
	size_t len = 0;
	int rc = file_read_all(n->state_path, &text, &len);
	if (rc == -ENOENT)
		return;
	json_t *doc = rc == 0 ? json_loadb(text, len, 0, NULL) : NULL;
	free(text);
	json_t *seen = json_object_get(doc, "seen"), *dl = json_object_get(doc, "deliveries");
	if (obj_int_at(doc, "version", 0) != STATE_VERSION || !json_is_object(seen) ||
	    !json_is_object(dl)) {
		log_error("alerts", "%s: not the receiver's state (%s); starting afresh",
		    n->state_path, rc < 0 ? strerror(-rc) : "unreadable JSON");
	} else {
		json_object_update(n->seen, seen);
		json_object_update(n->deliveries, dl);
		size_t pending = 0;
		const char *k;
		json_t *v;
		json_object_foreach(n->deliveries, k, v)
			pending += !json_object_get(v, "deliveredMs");
		log_info("alerts", "receiver state: %zu alert(s), %zu notification(s) (%zu not "
		    "yet delivered: sent when Alertmanager retries)", json_object_size(n->seen),
		    json_object_size(n->deliveries), pending);
	}
	json_decref(doc);
}

struct alert_notify *
alert_notify_new(struct api *api, const struct alert_config *cfg)
{
	struct alert_notify *n = xcalloc(1, sizeof *n);
	n->api = api;
	n->flap_window_ms = cfg->flap_window_ms > 0 ? cfg->flap_window_ms : ALERT_FLAP_WINDOW_MS;
	n->flap_threshold = cfg->flap_threshold > 0 ? cfg->flap_threshold : ALERT_FLAP_THRESHOLD;
	n->noise_control = cfg->noise_control;
	n->seen = json_object();
	n->deliveries = json_object();
	if (cfg->state_dir) {
		char *dir = xasprintf("%s/alerts", cfg->state_dir);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			log_error("alerts", "cannot make %s: %s", dir, strerror(errno));
		n->state_path = xasprintf("%s/receiver-state.json", dir);
		free(dir);
		state_load(n);
	}
	return n;
}

json_t *
alert_notify_seen(struct alert_notify *n, const char *fingerprint)
{
	json_t *r = n ? json_object_get(n->seen, fingerprint) : NULL;
	if (!r)
		return NULL;
	json_t *out = json_deep_copy(r);
	json_object_del(out, "firings");
	return out;
}

/* ---- enrichment ---------------------------------------------------------- */

static void
enrich(struct alert_notify *n, json_t *alert)
{
	struct alert_world w;
	json_t *labels = json_object_get(alert, "labels");
	int64_t at = obj_time_ms(json_object_get(alert, "startsAt"));
	alert_world_load(api_store(n->api), alert_namespace(labels), &w);
	json_t *changes = alert_cause(labels, at ? at : time_now_ms(), ALERT_CAUSE_WINDOW_MS, &w);
	json_t *ann = json_object_get(alert, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(alert, "annotations", ann);
	}
	char *line = alert_cause_line(changes, at);
	if (line) {
		while (json_array_size(changes) > CHANGES_IN_ANNOTATION)
			json_array_remove(changes, CHANGES_IN_ANNOTATION);
		char *js = json_dumps(changes, JSON_COMPACT);
		json_object_set_new(ann, ALERT_CAUSE_ANNOTATION, json_string(line));
		json_object_set_new(ann, ALERT_CAUSES_ANNOTATION, json_string(js));
		free(js);
		free(line);
	}
	/* noise control reads the same world */
	const char *name = obj_str(labels, "alertname");
	bool signal = false;
	for (size_t i = 0; i < ARRAY_SIZE(signal_alerts); i++)
		signal |= !strcmp(name, signal_alerts[i]);
	const json_t *ro = signal || !n->noise_control ? NULL : alert_aborting_rollout(labels, &w);
	if (ro) {
		char *why = xasprintf("held back: rollout/%s is aborting by analysis (its "
		    "RolloutAborted event is the signal)", obj_name(ro));
		json_object_set_new(alert, "v6_hold", json_string(why));
		free(why);
	}
	json_decref(changes);
	alert_world_free(&w);
}

/* ---- noise control: flapping ------------------------------------------- */

/* The record of fingerprint, made when new; old records go first when the
 * map is full. */
static json_t *
record_of(struct alert_notify *n, const char *fp, int64_t now)
{
	json_t *r = json_object_get(n->seen, fp);
	if (r)
		return r;
	if (json_object_size(n->seen) >= SEEN_MAX) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(n->seen, tmp, k, v)
			if (now - obj_int_at(v, "lastMs", 0) > SEEN_TTL_MS ||
			    json_object_size(n->seen) >= SEEN_MAX)
				json_object_del(n->seen, k);
	}
	r = json_pack("{s:[]}", "firings");
	json_object_set_new(n->seen, fp, r);
	return r;
}

/* Counts the alert's firings in the window; once there are flap_threshold
 * of them, the first notification goes out saying so and the rest of the
 * window's (from its delivery on) are folded into it. Returns why the
 * alert is folded (static), or NULL to send it. */
static const char *
flap(struct alert_notify *n, json_t *rec, json_t *alert, int64_t now)
{
	const char *status = obj_str(alert, "status"), *last = obj_str(rec, "status");
	json_t *firings = json_object_get(rec, "firings");
	if (!strcmp(status, "firing") && strcmp(last, "firing") != 0)
		json_array_append_new(firings, json_integer(now));
	while (json_array_size(firings) &&
	    json_integer_value(json_array_get(firings, 0)) < now - n->flap_window_ms)
		json_array_remove(firings, 0);
	int64_t count = (int64_t)json_array_size(firings);
	int64_t since = obj_int_at(rec, "flapNotifiedMs", 0);
	bool folding = since && now - since < n->flap_window_ms;
	if (!n->noise_control || (count < n->flap_threshold && !folding))
		return NULL;
	char *text = xasprintf("fired %lld times in the last %lld min", (long long)count,
	    (long long)(n->flap_window_ms / 60000));
	json_object_set_new(rec, "flapCount", json_integer(count));
	json_object_set_new(json_object_get(alert, "annotations"), "v6_flapping",
	    json_string(text));
	free(text);
	if (folding) {
		json_object_set_new(rec, "folded", json_integer(obj_int_at(rec, "folded", 0) + 1));
		return "folded: flapping, already notified in this window";
	}
	/* the fold starts once this notification is delivered (commit_flaps):
	 * until then a later one may still carry the flap count */
	json_object_set_new(alert, "v6_flap_notify", json_true());
	return NULL;
}

/* Decides for one alert; returns true to send it. */
static bool
decide(struct alert_notify *n, json_t *alert, const char *receiver, int64_t now)
{
	const char *fp = obj_str(alert, "fingerprint");
	json_t *rec = record_of(n, fp, now);
	const char *why = flap(n, rec, alert, now);
	const char *hold = json_string_value(json_object_get(alert, "v6_hold"));
	/* A resolution follows its firing: sent when the firing was. */
	if (!strcmp(obj_str(alert, "status"), "resolved"))
		hold = str_has_prefix(obj_str(rec, "handling"), "held back") ?
		    obj_str(rec, "handling") : NULL;
	char *handling = hold ? xstrdup(hold) : why ? xstrdup(why) : receiver ?
	    xasprintf("forwarded to receiver %s", receiver) : xstrdup("recorded");
	json_object_set(rec, "status", json_object_get(alert, "status"));
	json_object_set_new(rec, "lastMs", json_integer(now));
	json_object_set_new(rec, "lastNotified", obj_time_json(now));
	json_object_set_new(rec, "handling", json_string(handling));
	json_object_set(rec, "annotations", json_object_get(alert, "annotations"));
	free(handling);
	json_object_del(alert, "v6_hold");
	return !hold && !why;
}

/* ---- deliveries: each notification decided once, sent once ---------------- */

/* Alertmanager retries a failed notification with the very same JSON (its
 * alerts' endsAt move only between flushes), so the digest of the body and
 * the receiver names one notification: 32 hex digits, malloc'ed. */
static char *
digest_key(const char *ns, const char *name, const json_t *what)
{
	char *text = json_dumps(what, JSON_COMPACT | JSON_SORT_KEYS);
	char *in = xasprintf("%s/%s\n%s", ns ? ns : "", ns ? name : "", text);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL);
	char *hex = xmalloc(33);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	free(text);
	free(in);
	return hex;
}

static char *
delivery_key(const json_t *doc, const char *ns, const char *name)
{
	return digest_key(ns, name, doc);
}

/* What the notification says, without what moves at each flush of its
 * group (endsAt): the receiver and each alert's fingerprint, status and
 * startsAt, sorted. A later notification with the same content is the
 * same news. */
static char *
content_key(const json_t *doc, const char *ns, const char *name)
{
	json_t *parts = json_array(), *a;
	size_t i;
	json_array_foreach(json_object_get(doc, "alerts"), i, a)
		json_array_append_new(parts, json_sprintf("%s %s %s", obj_str(a, "fingerprint"),
		    obj_str(a, "status"), obj_str(a, "startsAt")));
	size_t n = json_array_size(parts);
	const char **v = xcalloc(n + 1, sizeof *v);
	for (i = 0; i < n; i++)
		v[i] = json_string_value(json_array_get(parts, i));
	qsort(v, n, sizeof *v, str_pcmp);
	json_t *sorted = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(sorted, json_string(v[i]));
	char *key = digest_key(ns, name, sorted);
	json_decref(sorted);
	json_decref(parts);
	free(v);
	return key;
}

/* Drops deliveries older than a day, then the oldest past DELIVERIES_MAX. */
static void
deliveries_trim(struct alert_notify *n, int64_t now)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(n->deliveries, tmp, k, v)
		if (now - obj_int_at(v, "atMs", 0) > SEEN_TTL_MS)
			json_object_del(n->deliveries, k);
	while (json_object_size(n->deliveries) > DELIVERIES_MAX) {
		const char *oldest = NULL;
		int64_t at = INT64_MAX;
		json_object_foreach(n->deliveries, k, v)
			if (obj_int_at(v, "atMs", 0) < at)
				at = obj_int_at(v, "atMs", 0), oldest = k;
		json_object_del(n->deliveries, oldest);
	}
}

/* The flap notifications in a delivered notification start their folds. */
static void
commit_flaps(struct alert_notify *n, json_t *d, int64_t now)
{
	size_t i;
	json_t *fp;
	json_array_foreach(json_object_get(d, "flapped"), i, fp) {
		json_t *rec = json_object_get(n->seen, json_string_value(fp));
		if (rec)
			json_object_set_new(rec, "flapNotifiedMs", json_integer(now));
	}
	json_object_del(d, "flapped");
}

/* Marks d delivered (sent alerts), forgets its body, saves. */
static void
delivered(struct alert_notify *n, json_t *d, int sent)
{
	int64_t now = time_now_ms();
	commit_flaps(n, d, now);
	json_object_del(d, "notification");
	json_object_set_new(d, "deliveredMs", json_integer(now));
	json_object_set_new(d, "sent", json_integer(sent));
	state_save(n);
}

/* ---- receivers: DingTalk, WeCom, webhook -------------------------------- */

char *
alert_dingtalk_sign(int64_t timestamp_ms, const char *secret)
{
	char *msg = xasprintf("%lld\n%s", (long long)timestamp_ms, secret);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg,
	    strlen(msg), mac, &len);
	free(msg);
	char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)len);
	char *esc = curl_easy_escape(NULL, b64, 0), *out = xstrdup(esc);
	curl_free(esc);
	return out;
}

/* Markdown for the robots: one block per alert, with its cause. */
static char *
markdown(const json_t *notification, char **title)
{
	struct buf b = BUF_INIT;
	const json_t *a;
	size_t i, firing = 0;
	json_array_foreach(json_object_get(notification, "alerts"), i, a)
		firing += !strcmp(obj_str(a, "status"), "firing");
	const char *name = obj_str_at(notification, "commonLabels.alertname");
	*title = firing ? xasprintf("[FIRING:%zu] %s", firing, *name ? name : "alerts") :
	    xasprintf("[RESOLVED] %s", *name ? name : "alerts");
	buf_printf(&b, "### %s\n", *title);
	json_array_foreach(json_object_get(notification, "alerts"), i, a) {
		const json_t *l = json_object_get(a, "labels"), *an = json_object_get(a,
		    "annotations");
		buf_printf(&b, "\n**%s** (%s) %s%s%s\n", obj_str(l, "alertname"),
		    obj_str(a, "status"), obj_str(l, "severity"), *obj_str(l, "namespace") ?
		    " in " : "", obj_str(l, "namespace"));
		static const char *const keys[] = { "summary", "description",
			ALERT_CAUSE_ANNOTATION, "v6_flapping" };
		static const char *const heads[] = { "", "", "Probable cause: ", "Flapping: " };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			if (*obj_str(an, keys[k]))
				buf_printf(&b, "> %s%s\n", heads[k], obj_str(an, keys[k]));
	}
	return buf_steal(&b);
}

json_t *
alert_receiver_body(const char *type, const json_t *notification)
{
	char *title = NULL, *text;
	json_t *out = NULL;
	if (!strcmp(type, "webhook"))
		return json_incref((json_t *)notification);
	text = markdown(notification, &title);
	if (!strcmp(type, "dingtalk"))
		out = json_pack("{s:s, s:{s:s, s:s}}", "msgtype", "markdown", "markdown", "title",
		    title, "text", text);
	else if (!strcmp(type, "wecom"))
		out = json_pack("{s:s, s:{s:s}}", "msgtype", "markdown", "markdown", "content",
		    text);
	free(title);
	free(text);
	return out;
}

/* A Secret of type v6.dev/alert-receiver: type, url and (DingTalk) secret.
 * Its values are credentials: never logged. */
struct receiver {
	char *type, *url, *secret, *token;
};

static void
receiver_free(struct receiver *r)
{
	free(r->type);
	free(r->url);
	free(r->secret);
	free(r->token);
}

static char *
secret_value(const json_t *s, const char *key)
{
	const char *d = json_string_value(obj_get_path(s, "data") ?
	    json_object_get(obj_get_path(s, "data"), key) : NULL);
	if (d)
		return nenv_b64_decode(d);
	const char *sd = json_string_value(json_object_get(obj_get_path(s, "stringData"), key));
	return sd ? xstrdup(sd) : NULL;
}

static int
receiver_load(struct alert_notify *n, const char *ns, const char *name, struct receiver *r,
    int *code, char **msg)
{
	json_t *s = NULL;
	memset(r, 0, sizeof *r);
	if (store_get(api_store(n->api), "secrets", ns, name, &s) < 0 || !s) {
		*code = 404;
		*msg = xasprintf("receiver: Secret %s/%s not found", ns, name);
		return -ENOENT;
	}
	r->type = secret_value(s, "type");
	r->url = secret_value(s, "url");
	r->secret = secret_value(s, "secret");
	r->token = secret_value(s, "token");
	bool known = r->type && (!strcmp(r->type, "dingtalk") || !strcmp(r->type, "wecom") ||
	    !strcmp(r->type, "webhook"));
	const char *bad = strcmp(obj_str(s, "type"), RECEIVER_TYPE) != 0 ?
	    "its type is not " RECEIVER_TYPE : !known ? "data.type must be dingtalk, wecom or "
	    "webhook" : !r->url || !(str_has_prefix(r->url, "http://") ||
	    str_has_prefix(r->url, "https://")) ? "data.url must be an http(s) URL" : NULL;
	json_decref(s);
	if (bad) {
		*code = 422;
		*msg = xasprintf("receiver Secret %s/%s: %s", ns, name, bad);
		receiver_free(r);
		return -EINVAL;
	}
	return 0;
}

/* One forward on the thread pool. */
struct fwd {
	uv_work_t work;
	struct alert_notify *n;		/* NULL once the notifier stopped */
	struct http_req *req;
	char *who;			/* "NS/NAME (type)": the only thing logged */
	char *key;			/* its delivery in n->deliveries */
	struct receiver r;
	char *body;
	long status;
	CURLcode crc;
	struct buf answer;
	int sent;
	struct fwd *next;
};

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	if (b->len < 4096)
		buf_append(b, p, size * nmemb);
	return size * nmemb;
}

static void
fwd_run(uv_work_t *w)
{
	struct fwd *f = w->data;
	char *url;
	if (!strcmp(f->r.type, "dingtalk") && f->r.secret && *f->r.secret) {
		int64_t ts = time_now_ms();
		char *sign = alert_dingtalk_sign(ts, f->r.secret);
		url = xasprintf("%s%ctimestamp=%lld&sign=%s", f->r.url, strchr(f->r.url, '?') ?
		    '&' : '?', (long long)ts, sign);
		free(sign);
	} else {
		url = xstrdup(f->r.url);
	}
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	char *auth = f->r.token && *f->r.token ? xasprintf("Authorization: Bearer %s",
	    f->r.token) : NULL;
	if (auth)
		h = curl_slist_append(h, auth);
	f->crc = CURLE_FAILED_INIT;
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body);
		curl_easy_setopt(c, CURLOPT_USERAGENT, "v6/alert-notify");
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)SEND_TIMEOUT_MS);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->answer);
		f->crc = curl_easy_perform(c);
		if (f->crc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
		curl_easy_cleanup(c);
	}
	curl_slist_free_all(h);
	free(auth);
	free(url);
}

/* The robots answer 200 with {"errcode": N}: anything but 0 is a failure. */
static const char *
robot_error(const struct fwd *f)
{
	if (!strcmp(f->r.type, "webhook"))
		return NULL;
	json_t *doc = f->answer.len ? json_loadb(f->answer.data, f->answer.len, 0, NULL) : NULL;
	json_t *code = json_object_get(doc, "errcode");
	bool bad = !json_is_integer(code) || json_integer_value(code) != 0;
	json_decref(doc);
	return bad ? "the robot answered an errcode" : NULL;
}

static void
fwd_free(struct fwd *f)
{
	receiver_free(&f->r);
	buf_free(&f->answer);
	free(f->who);
	free(f->key);
	free(f->body);
	free(f);
}

static void
fwd_done(uv_work_t *w, int status)
{
	struct fwd *f = w->data;
	(void)status;
	if (!f->n) {		/* answered by alert_notify_free */
		fwd_free(f);
		return;
	}
	for (struct fwd **p = &f->n->fwds; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	const char *robot = f->crc == CURLE_OK && f->status / 100 == 2 ? robot_error(f) : NULL;
	if (f->crc != CURLE_OK || f->status / 100 != 2 || robot) {
		char *m = f->crc != CURLE_OK ? xasprintf("receiver %s: %s", f->who,
		    curl_easy_strerror(f->crc)) : robot ? xasprintf("receiver %s: %s", f->who,
		    robot) : xasprintf("receiver %s: HTTP %ld", f->who, f->status);
		log_warn("alerts", "%s (Alertmanager will retry)", m);
		api_respond_status(f->req, 502, m);
		free(m);
	} else {
		log_info("alerts", "%d alert(s) forwarded to receiver %s", f->sent, f->who);
		json_t *d = json_object_get(f->n->deliveries, f->key);
		if (d)
			delivered(f->n, d, f->sent);
		api_respond_json(f->req, 200, json_pack("{s:i}", "forwarded", f->sent));
	}
	fwd_free(f);
}

/* ---- the webhook ----------------------------------------------------------- */

/* Queues the forward of delivery d (its stored notification) to receiver r
 * (taken); req is answered when it is done. */
static void
forward(struct alert_notify *n, struct http_req *req, const char *key, json_t *d,
    struct receiver *r, const char *who)
{
	json_t *doc = json_object_get(d, "notification");
	json_t *body = alert_receiver_body(r->type, doc);
	struct fwd *f = xcalloc(1, sizeof *f);
	*f = (struct fwd){ .n = n, .req = req, .who = xstrdup(who), .r = *r,
		.key = xstrdup(key), .body = json_dumps(body, JSON_COMPACT),
		.sent = (int)json_array_size(json_object_get(doc, "alerts")), .next = n->fwds };
	json_decref(body);
	memset(r, 0, sizeof *r);
	f->work.data = f;
	n->fwds = f;
	if (uv_queue_work(api_loop(n->api), &f->work, fwd_run, fwd_done) < 0) {
		n->fwds = f->next;
		api_respond_status(req, 500, "cannot queue the forward");
		fwd_free(f);
	}
}

/* The delivery of the last REFLUSH_WINDOW_MS with content ckey (its key in
 * *key_out), or NULL. */
static const json_t *
reflush_of(const struct alert_notify *n, const char *ckey, const char **key_out)
{
	int64_t now = time_now_ms();
	const char *k;
	json_t *v;
	json_object_foreach(n->deliveries, k, v)
		if (!strcmp(obj_str(v, "content"), ckey) &&
		    now - obj_int_at(v, "atMs", 0) < REFLUSH_WINDOW_MS) {
			*key_out = k;
			return v;
		}
	return NULL;
}

static bool
in_flight(const struct alert_notify *n, const char *key)
{
	for (const struct fwd *f = n->fwds; f; f = f->next)
		if (!strcmp(f->key, key))
			return true;
	return false;
}

/* Decides a new notification: each alert enriched, then sent, held back or
 * folded. Returns its delivery record (borrowed from n->deliveries, with
 * ckey, its content_key, for re-flushes), saved before anything leaves. */
static json_t *
decide_all(struct alert_notify *n, json_t *doc, const char *key, const char *ckey,
    const char *who, size_t *held)
{
	json_t *keep = json_array(), *flapped = json_array(), *a;
	int64_t now = time_now_ms();
	size_t i;
	json_array_foreach(json_object_get(doc, "alerts"), i, a) {
		enrich(n, a);
		bool send = decide(n, a, who, now);
		if (json_object_get(a, "v6_flap_notify") && send)
			json_array_append(flapped, json_object_get(a, "fingerprint"));
		json_object_del(a, "v6_flap_notify");
		if (send)
			json_array_append(keep, a);
		else
			(*held)++;
	}
	json_object_set_new(doc, "alerts", keep);
	json_t *d = json_pack("{s:s, s:I, s:O, s:o, s:s}", "receiver", who ? who : "", "atMs",
	    (json_int_t)now, "notification", doc, "flapped", flapped, "content", ckey);
	deliveries_trim(n, now);
	json_object_set_new(n->deliveries, key, d);
	if (!who || json_array_size(keep) == 0)
		delivered(n, d, 0);	/* nothing to send: done (and saved) */
	else
		state_save(n);
	return d;
}

void
alert_notify_serve(struct alert_notify *n, struct http_req *req, const char *ns,
    const char *name)
{
	json_t *doc = json_loadb(req->body, req->body_len, 0, NULL);
	struct receiver r = { 0 };
	int code = 0;
	char *msg = NULL, *who = NULL, *key = NULL, *ckey = NULL;
	size_t held = 0;
	if (!json_is_array(json_object_get(doc, "alerts"))) {
		api_respond_status(req, 400, "expected Alertmanager's webhook JSON "
		    "(version 4, with \"alerts\")");
		goto out;
	}
	if (ns && receiver_load(n, ns, name, &r, &code, &msg) < 0) {
		api_respond_status(req, code, msg);
		goto out;
	}
	who = ns ? xasprintf("%s/%s (%s)", ns, name, r.type) : NULL;
	key = delivery_key(doc, ns, name);
	ckey = content_key(doc, ns, name);
	json_t *d = json_object_get(n->deliveries, key);
	const char *same_key = NULL;
	const json_t *same = d ? NULL : reflush_of(n, ckey, &same_key);
	if (same && json_object_get(same, "deliveredMs")) {
		log_info("alerts", "notification %s carries the alerts %s delivered %llds ago "
		    "(a re-flush of its group): not sent again", key, same_key,
		    (long long)((time_now_ms() - obj_int_at(same, "deliveredMs", 0)) / 1000));
		api_respond_json(req, 200, json_pack("{s:i, s:b}", "forwarded", 0, "duplicate",
		    1));
	} else if (same && in_flight(n, same_key)) {
		api_respond_status(req, 503, "these alerts are being delivered; retry");
	} else if (d && json_object_get(d, "deliveredMs")) {
		/* a retry of what the receiver already took (its answer was lost,
		 * or the server died before giving it): not sent again */
		log_info("alerts", "notification %s already delivered: not sent again", key);
		api_respond_json(req, 200, json_pack("{s:i, s:b}", "forwarded", 0, "duplicate",
		    1));
	} else if (d && in_flight(n, key)) {
		api_respond_status(req, 503, "this notification is being delivered; retry");
	} else {
		if (!d)
			d = decide_all(n, doc, key, ckey, who, &held);
		if (json_object_get(d, "deliveredMs"))
			api_respond_json(req, 200, json_pack("{s:i, s:i}", "forwarded", 0, "held",
			    (int)held));
		else
			forward(n, req, key, d, &r, who);
	}
	receiver_free(&r);
out:
	free(ckey);
	free(key);
	free(who);
	free(msg);
	json_decref(doc);
}

void
alert_notify_free(struct alert_notify *n)
{
	if (!n)
		return;
	for (struct fwd *f = n->fwds; f; f = f->next) {
		f->n = NULL;
		api_respond_status(f->req, 503, "the server is stopping");
	}
	json_decref(n->seen);
	json_decref(n->deliveries);
	free(n->state_path);
	free(n);
}
