/* ctrl_statefulset.c — the StatefulSet controller (kube-controller-manager's
 * statefulset controller): pods NAME-0..N-1 with stable identities, their
 * PersistentVolumeClaims made from volumeClaimTemplates, OrderedReady or
 * Parallel management, RollingUpdate (highest ordinal first, down to the
 * partition) or OnDelete, revisions kept as ControllerRevisions, claim
 * retention, and the status. sts_decide() is the pure decision; the rest
 * watches the store and applies it through api.h. Started by server.c. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STS_COMPONENT "statefulset-controller"
#define REV_LABEL "controller-revision-hash"
#define POD_NAME_LABEL "statefulset.kubernetes.io/pod-name"
#define POD_INDEX_LABEL "apps.kubernetes.io/pod-index"
#define HASH_LABEL "controller.kubernetes.io/hash"

/* ---- small accessors ---------------------------------------------------- */

static const char *
phase_of(const json_t *pod)
{
	return obj_str_at(pod, "status.phase");
}

static bool
running_and_ready(const json_t *pod)
{
	return !strcmp(phase_of(pod), "Running") && obj_pod_ready(pod, NULL);
}

static bool
finished(const json_t *pod)
{
	return !strcmp(phase_of(pod), "Failed") || !strcmp(phase_of(pod), "Succeeded");
}

int
sts_pod_ordinal(const json_t *sts, const json_t *pod)
{
	const char *name = obj_name(pod), *set = obj_name(sts);
	size_t n = strlen(set);
	if (strncmp(name, set, n) != 0 || name[n] != '-' || !name[n + 1])
		return -1;
	const char *d = name + n + 1;
	if (strspn(d, "0123456789") != strlen(d) || strlen(d) > 9 || (d[0] == '0' && d[1]))
		return -1;
	return atoi(d);
}

/* ---- the simulated sync ------------------------------------------------- */

struct ssync {
	const json_t *set;
	int replicas, start, partition;
	bool monotonic, rolling;
	const json_t *claims;		/* the namespace's claims */
	json_t *owned;			/* array: the pods it owns (copies of adopted) */
	const json_t **slot;		/* [replicas]: the pod of ordinal start+i, or NULL */
	json_t *condemned;		/* owned pods outside the range, highest first */
	const json_t *update_rev, *current_rev;
	json_t *new_rev;		/* created by this sync (owned) */
	json_t *status;
	int64_t now_ms;
	struct sts_actions *out;
};

static void
push(struct ssync *s, enum sts_op op, json_t *obj)
{
	struct sts_actions *a = s->out;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = (struct sts_action){ .op = op, .obj = obj };
}

void
sts_actions_free(struct sts_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		json_decref(a->v[i].obj);
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* ClaimPods: owned pods that still match stay, those that do not are
 * released; orphans that match (selector and NAME-N) are adopted. */
static int
claim_pods(struct ssync *s, const json_t *pods)
{
	struct selector *sel = NULL;
	char *err = NULL;
	if (selector_from_json(obj_get_path(s->set, "spec.selector"), &sel, &err) < 0) {
		free(err);
		return -EINVAL;
	}
	const char *uid = obj_uid(s->set);
	size_t i;
	json_t *pod;
	json_array_foreach(pods, i, pod) {
		if (strcmp(obj_namespace(pod), obj_namespace(s->set)) != 0)
			continue;
		const json_t *ref = obj_controller_ref(pod);
		bool match = selector_matches(sel, obj_labels(pod)) &&
		    sts_pod_ordinal(s->set, pod) >= 0;
		if (ref && strcmp(obj_str(ref, "uid"), uid) != 0)
			continue;
		if (ref && match)
			json_array_append(s->owned, pod);
		else if (ref)
			push(s, STS_UPDATE_POD, obj_with_owner_ref(pod, uid, NULL));
		else if (match && !obj_is_deleting(pod)) {
			json_t *p = obj_with_owner_ref(pod, uid, obj_new_controller_ref(s->set));
			push(s, STS_UPDATE_POD, json_deep_copy(p));
			json_array_append_new(s->owned, p);
		}
	}
	selector_free(sel);
	return 0;
}

/* ---- revisions ---------------------------------------------------------- */

static json_t *
revision_template(const json_t *rev)
{
	return obj_get_path(rev, "data.spec.template");
}

/* The revision's template equals the set's, "$patch" aside. */
static bool
revision_matches(const json_t *rev, const json_t *tmpl)
{
	json_t *t = json_deep_copy(revision_template(rev));
	json_object_del(t, "$patch");
	bool eq = t && json_equal(t, (json_t *)tmpl);
	json_decref(t);
	return eq;
}

static int
cmp_revision(const void *pa, const void *pb)
{
	json_int_t a = json_integer_value(json_object_get(*(json_t *const *)pa, "revision"));
	json_int_t b = json_integer_value(json_object_get(*(json_t *const *)pb, "revision"));
	if (a != b)
		return a < b ? -1 : 1;
	return strcmp(obj_name(*(json_t *const *)pa), obj_name(*(json_t *const *)pb));
}

/* The revisions the set controls, oldest first (borrowed pointers). */
static size_t
owned_revisions(const struct ssync *s, const json_t *revisions, const json_t ***out)
{
	const json_t **v = xcalloc(json_array_size(revisions) + 1, sizeof *v);
	size_t n = 0, i;
	json_t *r;
	json_array_foreach(revisions, i, r) {
		const json_t *ref = obj_controller_ref(r);
		if (ref && !strcmp(obj_str(ref, "uid"), obj_uid(s->set)) &&
		    !strcmp(obj_namespace(r), obj_namespace(s->set)))
			v[n++] = r;
	}
	qsort(v, n, sizeof *v, cmp_revision);
	*out = v;
	return n;
}

static json_t *
new_revision(const struct ssync *s, const char *name, const char *hash, json_int_t number)
{
	const json_t *tmpl = obj_get_path(s->set, "spec.template");
	json_t *labels = json_deep_copy(obj_get_path(tmpl, "metadata.labels"));
	if (!labels)
		labels = json_object();
	json_object_set_new(labels, HASH_LABEL, json_string(hash));
	json_t *t = json_deep_copy(tmpl);
	json_object_set_new(t, "$patch", json_string("replace"));
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:[o]}, s:{s:{s:o}}, s:I}",
	    "apiVersion", "apps/v1", "kind", "ControllerRevision",
	    "metadata", "name", name, "namespace", obj_namespace(s->set), "labels", labels,
	    "ownerReferences", obj_new_controller_ref(s->set),
	    "data", "spec", "template", t, "revision", number);
}

/* getStatefulSetRevisions: the update revision is the one whose template is
 * the set's (renumbered when it is not the newest, created when none is);
 * a name taken by another template bumps collisionCount. The current
 * revision is status.currentRevision when it still exists. */
static void
sync_revisions(struct ssync *s, const json_t **revs, size_t n)
{
	const json_t *tmpl = obj_get_path(s->set, "spec.template");
	json_int_t max = n ? json_integer_value(json_object_get(revs[n - 1], "revision")) : 0;
	int64_t collisions = json_integer_value(obj_get_path(s->set, "status.collisionCount"));
	const json_t *equal = NULL;
	for (size_t i = 0; i < n; i++)
		if (revision_matches(revs[i], tmpl))
			equal = revs[i];
	if (equal && equal == revs[n - 1]) {
		s->update_rev = equal;
	} else if (equal) {
		json_t *r = json_deep_copy(equal);
		json_object_set_new(r, "revision", json_integer(max + 1));
		push(s, STS_UPDATE_REVISION, json_deep_copy(r));
		s->new_rev = r;
		s->update_rev = r;
	} else {
		char hash[16], *name = NULL;
		for (size_t tries = 0; tries <= n; tries++, collisions++) {
			deploy_template_hash(tmpl, collisions, hash);
			free(name);
			name = xasprintf("%s-%s", obj_name(s->set), hash);
			bool taken = false;
			for (size_t i = 0; i < n; i++)
				taken |= !strcmp(obj_name(revs[i]), name);
			if (!taken)
				break;
		}
		s->new_rev = new_revision(s, name, hash, max + 1);
		push(s, STS_CREATE_REVISION, json_deep_copy(s->new_rev));
		s->update_rev = s->new_rev;
		free(name);
	}
	json_object_set_new(s->status, "collisionCount", json_integer(collisions));
	const char *cur = obj_str_at(s->set, "status.currentRevision");
	s->current_rev = s->update_rev;
	for (size_t i = 0; *cur && i < n; i++)
		if (!strcmp(obj_name(revs[i]), cur) && strcmp(cur, obj_name(s->update_rev)))
			s->current_rev = revs[i];
}

static const char *
revision_of(const json_t *pod)
{
	return obj_str(obj_labels(pod), REV_LABEL);
}

/* truncateHistory: revisions no pod and neither current nor update uses,
 * oldest first, beyond revisionHistoryLimit. */
static void
truncate_history(struct ssync *s, const json_t **revs, size_t n)
{
	int limit = (int)obj_int_at(s->set, "spec.revisionHistoryLimit", 0);
	const json_t **old = xcalloc(n + 1, sizeof *old);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = obj_name(revs[i]);
		bool live = !strcmp(name, obj_name(s->update_rev)) ||
		    !strcmp(name, obj_name(s->current_rev));
		size_t j;
		json_t *p;
		json_array_foreach(s->owned, j, p)
			live |= !strcmp(revision_of(p), name);
		if (!live)
			old[k++] = revs[i];
	}
	for (size_t i = 0; limit >= 0 && k > (size_t)limit && i < k - (size_t)limit; i++)
		push(s, STS_DELETE_REVISION, json_deep_copy(old[i]));
	free(old);
}

/* ---- pods and claims ---------------------------------------------------- */

static char *
pod_name(const struct ssync *s, int ord)
{
	return xasprintf("%s-%d", obj_name(s->set), ord);
}

static char *
claim_name(const struct ssync *s, const json_t *tmpl, int ord)
{
	return xasprintf("%s-%s-%d", obj_str_at(tmpl, "metadata.name"), obj_name(s->set), ord);
}

static const json_t *
find_claim(const struct ssync *s, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(s->claims, i, c)
		if (!strcmp(obj_name(c), name) && !strcmp(obj_namespace(c), obj_namespace(s->set)))
			return c;
	return NULL;
}

static json_t *
set_ref(const json_t *set)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "apiVersion", "apps/v1",
	    "kind", "StatefulSet", "name", obj_name(set), "uid", obj_uid(set));
}

static json_t *
pod_ref(const json_t *pod)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "apiVersion", "v1", "kind", "Pod",
	    "name", obj_name(pod), "uid", obj_uid(pod));
}

static bool
retention_delete(const struct ssync *s, const char *when)
{
	char path[96];
	snprintf(path, sizeof path, "spec.persistentVolumeClaimRetentionPolicy.%s", when);
	return !strcmp(obj_str_at(s->set, path), "Delete");
}

/* The claim's ownerReferences as the retention policy wants them:
 * whenDeleted=Delete -> owned by the set; whenScaled=Delete and the pod
 * condemned by a scale-down -> owned by the pod. Other owners are kept. */
static json_t *
claim_refs(const struct ssync *s, const json_t *claim, const json_t *pod, bool condemned)
{
	json_t *c = obj_with_owner_ref(claim, obj_uid(s->set), NULL);
	if (pod) {
		json_t *tmp = obj_with_owner_ref(c, obj_uid(pod), NULL);
		json_decref(c);
		c = tmp;
	}
	json_t *refs = obj_get_path(c, "metadata.ownerReferences");
	if (!refs) {
		refs = json_array();
		json_object_set_new(obj_metadata(c), "ownerReferences", refs);
	}
	if (retention_delete(s, "whenDeleted"))
		json_array_append_new(refs, set_ref(s->set));
	if (pod && condemned && retention_delete(s, "whenScaled"))
		json_array_append_new(refs, pod_ref(pod));
	if (json_array_size(refs) == 0)
		json_object_del(obj_metadata(c), "ownerReferences");
	return c;
}

/* Every claim of a pod: missing ones are created (*missing set), existing
 * ones get the owners the retention policy wants; a claim being deleted
 * holds the pod back (*blocked). */
static void
sync_claims(struct ssync *s, const json_t *pod, int ord, bool condemned, bool create,
    bool *blocked)
{
	size_t i;
	json_t *t;
	json_array_foreach(obj_get_path(s->set, "spec.volumeClaimTemplates"), i, t) {
		char *name = claim_name(s, t, ord);
		const json_t *have = find_claim(s, name);
		if (have && obj_is_deleting(have)) {
			*blocked = true;
		} else if (have) {
			json_t *want = claim_refs(s, have, pod, condemned);
			const json_t *a = obj_get_path(have, "metadata.ownerReferences");
			const json_t *b = obj_get_path(want, "metadata.ownerReferences");
			if ((a || b) && !(a && b && json_equal((json_t *)a, (json_t *)b)))
				push(s, STS_UPDATE_CLAIM, want);
			else
				json_decref(want);
		} else if (create) {
			json_t *labels = json_deep_copy(obj_get_path(t, "metadata.labels"));
			if (!labels)
				labels = json_object();
			json_object_update(labels, obj_get_path(s->set, "spec.selector.matchLabels"));
			json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:O}",
			    "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata",
			    "name", name, "namespace", obj_namespace(s->set), "labels", labels,
			    "spec", json_object_get(t, "spec"));
			json_t *ann = obj_get_path(t, "metadata.annotations");
			if (ann)
				json_object_set_new(obj_metadata(c), "annotations", json_deep_copy(ann));
			json_t *w = claim_refs(s, c, NULL, false);
			json_decref(c);
			push(s, STS_CREATE_CLAIM, w);
		}
		free(name);
	}
}

/* newVersionedStatefulSetPod: below the partition a missing pod comes back
 * at the current revision, otherwise at the update revision. */
static const json_t *
revision_for(const struct ssync *s, int ord)
{
	if (s->rolling && ord < s->start + s->partition)
		return s->current_rev;
	return s->update_rev;
}

/* newStatefulSetPod: the revision's template with the pod's identity
 * (name, labels, hostname, subdomain) and its claims as volumes. */
static json_t *
new_pod(const struct ssync *s, int ord, const json_t *rev)
{
	json_t *tmpl = json_deep_copy(revision_template(rev));
	json_object_del(tmpl, "$patch");
	const json_t *tmeta = json_object_get(tmpl, "metadata");
	char *name = pod_name(s, ord);
	char index[16];
	snprintf(index, sizeof index, "%d", ord);
	json_t *labels = json_deep_copy(json_object_get(tmeta, "labels"));
	if (!labels)
		labels = json_object();
	json_object_set_new(labels, POD_NAME_LABEL, json_string(name));
	json_object_set_new(labels, POD_INDEX_LABEL, json_string(index));
	json_object_set_new(labels, REV_LABEL, json_string(obj_name(rev)));
	json_t *meta = json_pack("{s:s, s:s, s:o, s:[o]}", "name", name,
	    "namespace", obj_namespace(s->set), "labels", labels,
	    "ownerReferences", obj_new_controller_ref(s->set));
	static const char *const copied[] = { "annotations", "finalizers" };
	for (size_t i = 0; i < ARRAY_SIZE(copied); i++) {
		json_t *v = json_object_get(tmeta, copied[i]);
		if (v)
			json_object_set(meta, copied[i], v);
	}
	json_t *spec = json_object_get(tmpl, "spec");
	spec = spec ? json_incref(spec) : json_object();
	json_object_set_new(spec, "hostname", json_string(name));
	if (*obj_str_at(s->set, "spec.serviceName"))
		json_object_set_new(spec, "subdomain", json_string(obj_str_at(s->set,
		    "spec.serviceName")));
	/* updateStorage: claim volumes first, then the template's others. */
	json_t *vols = json_array(), *t, *v;
	size_t i, j;
	const json_t *cts = obj_get_path(s->set, "spec.volumeClaimTemplates");
	json_array_foreach(cts, i, t) {
		char *cn = claim_name(s, t, ord);
		json_array_append_new(vols, json_pack("{s:s, s:{s:s, s:b}}",
		    "name", obj_str_at(t, "metadata.name"), "persistentVolumeClaim",
		    "claimName", cn, "readOnly", 0));
		free(cn);
	}
	json_array_foreach(json_object_get(spec, "volumes"), i, v) {
		bool replaced = false;
		json_array_foreach(cts, j, t)
			replaced |= !strcmp(obj_str(v, "name"), obj_str_at(t, "metadata.name"));
		if (!replaced)
			json_array_append(vols, v);
	}
	if (json_array_size(vols))
		json_object_set_new(spec, "volumes", vols);
	else
		json_decref(vols);
	json_t *pod = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod",
	    "metadata", meta, "spec", spec);
	free(name);
	json_decref(tmpl);
	return pod;
}

/* ---- status ------------------------------------------------------------- */

static void
put_count(json_t *st, const char *key, int n, bool always)
{
	if (n || always)
		json_object_set_new(st, key, json_integer(n));
	else
		json_object_del(st, key);
}

/* computeReplicaStatus over the owned pods. */
static void
count_pods(struct ssync *s)
{
	int64_t min_ready = json_integer_value(obj_get_path(s->set, "spec.minReadySeconds"));
	int replicas = 0, ready = 0, avail = 0, current = 0, updated = 0;
	size_t i;
	json_t *p;
	json_array_foreach(s->owned, i, p) {
		replicas++;
		if (running_and_ready(p)) {
			ready++;
			int64_t since = 0;
			obj_pod_ready(p, &since);
			if (obj_pod_available(p, min_ready, s->now_ms))
				avail++;
			else if (since > 0) {
				int64_t wait = (since + min_ready) * 1000 + 1 - s->now_ms;
				if (wait > 0 && (!s->out->requeue_ms || wait < s->out->requeue_ms))
					s->out->requeue_ms = wait;
			}
		}
		if (obj_is_deleting(p))
			continue;
		current += !strcmp(revision_of(p), obj_name(s->current_rev));
		updated += !strcmp(revision_of(p), obj_name(s->update_rev));
	}
	put_count(s->status, "replicas", replicas, true);
	put_count(s->status, "readyReplicas", ready, false);
	put_count(s->status, "availableReplicas", avail, false);
	put_count(s->status, "currentReplicas", current, false);
	put_count(s->status, "updatedReplicas", updated, false);
}

static void
add_count(json_t *st, const char *key, int delta)
{
	put_count(st, key, (int)json_integer_value(json_object_get(st, key)) + delta,
	    !strcmp(key, "replicas"));
}

/* completeRollingUpdate, then the revisions and observedGeneration. */
static void
finish_status(struct ssync *s)
{
	json_t *st = s->status;
	json_object_set_new(st, "currentRevision", json_string(obj_name(s->current_rev)));
	json_object_set_new(st, "updateRevision", json_string(obj_name(s->update_rev)));
	int n = (int)json_integer_value(json_object_get(st, "replicas"));
	if (s->rolling &&
	    json_integer_value(json_object_get(st, "updatedReplicas")) == n &&
	    json_integer_value(json_object_get(st, "readyReplicas")) == n) {
		put_count(st, "currentReplicas", n, false);
		json_object_set_new(st, "currentRevision", json_string(obj_name(s->update_rev)));
	}
	json_t *gen = obj_get_path(s->set, "metadata.generation");
	if (json_integer_value(gen) > 0)
		json_object_set(st, "observedGeneration", gen);
	if (json_equal(st, json_object_get(s->set, "status")))
		return;
	json_t *copy = json_deep_copy(s->set);
	json_object_set(copy, "status", st);
	push(s, STS_UPDATE_STATUS, copy);
}

/* ---- the replicas ------------------------------------------------------- */

static int
cmp_ordinal_desc(const void *pa, const void *pb, void *arg)
{
	int a = sts_pod_ordinal(arg, *(json_t *const *)pa);
	int b = sts_pod_ordinal(arg, *(json_t *const *)pb);
	return a == b ? 0 : a > b ? -1 : 1;
}

static void
place_pods(struct ssync *s)
{
	size_t i, n = json_array_size(s->owned);
	json_t *p;
	const json_t **cond = xcalloc(n + 1, sizeof *cond);
	size_t k = 0;
	json_array_foreach(s->owned, i, p) {
		int ord = sts_pod_ordinal(s->set, p);
		if (ord >= s->start && ord < s->start + s->replicas)
			s->slot[ord - s->start] = p;
		else
			cond[k++] = p;
	}
	qsort_r(cond, k, sizeof *cond, cmp_ordinal_desc, (void *)s->set);
	for (i = 0; i < k; i++)
		json_array_append(s->condemned, (json_t *)cond[i]);
	free(cond);
}

/* Existing pods first get their claims' owners right (retention), and
 * missing claims of running pods are made again. */
static void
sync_existing_claims(struct ssync *s)
{
	bool blocked = false;
	for (int i = 0; i < s->replicas; i++)
		if (s->slot[i])
			sync_claims(s, s->slot[i], s->start + i, false, !obj_is_deleting(s->slot[i]),
			    &blocked);
	size_t i;
	json_t *p;
	json_array_foreach(s->condemned, i, p)
		sync_claims(s, p, sts_pod_ordinal(s->set, p), true, false, &blocked);
}

/* Brings each ordinal in range up: create, replace a finished pod, wait for
 * a terminating or unready one. Returns false when an OrderedReady set must
 * wait (nothing further this sync). */
static bool
sync_replicas(struct ssync *s, bool *all_healthy)
{
	int64_t min_ready = json_integer_value(obj_get_path(s->set, "spec.minReadySeconds"));
	*all_healthy = true;
	for (int i = 0; i < s->replicas; i++) {
		const json_t *p = s->slot[i];
		int ord = s->start + i;
		if (p && finished(p) && !obj_is_deleting(p)) {
			push(s, STS_DELETE_POD, json_deep_copy(p));
			*all_healthy = false;
			if (s->monotonic)
				return false;
			continue;
		}
		if (!p) {
			bool blocked = false;
			sync_claims(s, NULL, ord, false, true, &blocked);
			*all_healthy = false;
			if (blocked) {
				if (s->monotonic)
					return false;
				continue;
			}
			const json_t *rev = revision_for(s, ord);
			push(s, STS_CREATE_POD, new_pod(s, ord, rev));
			add_count(s->status, "replicas", 1);
			if (rev == s->current_rev)
				add_count(s->status, "currentReplicas", 1);
			if (rev == s->update_rev)
				add_count(s->status, "updatedReplicas", 1);
			if (s->monotonic)
				return false;
			continue;
		}
		if (obj_is_deleting(p) || !running_and_ready(p) ||
		    !obj_pod_available(p, min_ready, s->now_ms)) {
			*all_healthy = false;
			if (s->monotonic)
				return false;
		}
	}
	return true;
}

/* Scale down from the highest ordinal; OrderedReady deletes one at a time
 * and only once the others are healthy. */
static bool
sync_condemned(struct ssync *s, bool all_healthy)
{
	size_t i;
	json_t *p;
	json_array_foreach(s->condemned, i, p) {
		if (obj_is_deleting(p)) {
			if (s->monotonic)
				return false;
			continue;
		}
		if (s->monotonic && !all_healthy)
			return false;
		push(s, STS_DELETE_POD, json_deep_copy(p));
		if (s->monotonic)
			return false;
	}
	return true;
}

/* RollingUpdate: from the highest ordinal down to the partition, delete one
 * pod not at the update revision, once every higher one is healthy. */
static void
rolling_update(struct ssync *s)
{
	for (int i = s->replicas - 1; i >= s->partition && i >= 0; i--) {
		const json_t *p = s->slot[i];
		if (!p)
			return;
		if (strcmp(revision_of(p), obj_name(s->update_rev)) != 0 && !obj_is_deleting(p)) {
			push(s, STS_DELETE_POD, json_deep_copy(p));
			return;
		}
		if (!running_and_ready(p) || obj_is_deleting(p))
			return;
	}
}

int
sts_decide(const json_t *sts, const json_t *pods, const json_t *claims,
    const json_t *revisions, int64_t now_ms, struct sts_actions *out)
{
	memset(out, 0, sizeof *out);
	const char *policy = obj_str_at(sts, "spec.podManagementPolicy");
	const char *strategy = obj_str_at(sts, "spec.updateStrategy.type");
	struct ssync s = {
		.set = sts, .claims = claims, .now_ms = now_ms, .out = out,
		.replicas = (int)obj_int_at(sts, "spec.replicas", 0),
		.start = (int)obj_int_at(sts, "spec.ordinals.start", 0),
		.partition = (int)obj_int_at(sts, "spec.updateStrategy.rollingUpdate.partition", 0),
		.monotonic = strcmp(policy, "Parallel") != 0,
		.rolling = !*strategy || !strcmp(strategy, "RollingUpdate"),
		.owned = json_array(), .condemned = json_array(),
		.status = json_deep_copy(json_object_get(sts, "status")),
	};
	if (!s.status)
		s.status = json_object();
	if (s.replicas < 0)
		s.replicas = 0;
	int rc = claim_pods(&s, pods);
	if (rc < 0 || obj_is_deleting(sts))
		goto out;
	const json_t **revs = NULL;
	size_t nrev = owned_revisions(&s, revisions, &revs);
	sync_revisions(&s, revs, nrev);
	s.slot = xcalloc((size_t)s.replicas + 1, sizeof *s.slot);
	place_pods(&s);
	count_pods(&s);
	sync_existing_claims(&s);
	bool healthy;
	if (sync_replicas(&s, &healthy) && sync_condemned(&s, healthy) && s.rolling)
		rolling_update(&s);
	finish_status(&s);
	truncate_history(&s, revs, nrev);
	free(revs);
	free(s.slot);
out:
	json_decref(s.owned);
	json_decref(s.condemned);
	json_decref(s.new_rev);
	json_decref(s.status);
	return rc;
}

/* ---- the adapter on the controller core ---------------------------------- */

static const struct {
	enum ctrl_op op;
	const char *api_version, *kind;
} sts_writes[] = {
	[STS_CREATE_REVISION] = { CTRL_CREATE, "apps/v1", "ControllerRevision" },
	[STS_UPDATE_REVISION] = { CTRL_UPDATE, "apps/v1", "ControllerRevision" },
	[STS_DELETE_REVISION] = { CTRL_DELETE, "apps/v1", "ControllerRevision" },
	[STS_CREATE_CLAIM] = { CTRL_CREATE, "v1", "PersistentVolumeClaim" },
	[STS_UPDATE_CLAIM] = { CTRL_UPDATE, "v1", "PersistentVolumeClaim" },
	[STS_CREATE_POD] = { CTRL_CREATE, "v1", "Pod" },
	[STS_UPDATE_POD] = { CTRL_UPDATE, "v1", "Pod" },
	[STS_DELETE_POD] = { CTRL_DELETE, "v1", "Pod" },
	[STS_UPDATE_STATUS] = { CTRL_STATUS, "apps/v1", "StatefulSet" },
};

static int
sts_ctrl_decide(struct ctrl *c, const json_t *set, int64_t now_ms, struct ctrl_writes *w)
{
	struct store *st = ctrl_store(c);
	const char *ns = obj_namespace(set);
	json_t *pods = NULL, *claims = NULL, *revs = NULL;
	struct sts_actions a = { 0 };
	if (store_list(st, "pods", ns, &pods, NULL) == 0 &&
	    store_list(st, "persistentvolumeclaims", ns, &claims, NULL) == 0 &&
	    store_list(st, "apps/controllerrevisions", ns, &revs, NULL) == 0 &&
	    sts_decide(set, pods, claims, revs, now_ms, &a) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			enum sts_op op = a.v[i].op;
			ctrl_writes_push(w, sts_writes[op].op, kind_find_gvk(sts_writes[op].api_version,
			    sts_writes[op].kind), json_incref(a.v[i].obj), op);
		}
		w->requeue_ms = a.requeue_ms;
	}
	sts_actions_free(&a);
	json_decref(pods);
	json_decref(claims);
	json_decref(revs);
	return 0;
}

/* The events Kubernetes records for pod and claim writes. */
static void
sts_result(struct ctrl *c, const json_t *set, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	static const struct {
		enum sts_op op;
		const char *what, *ok_reason, *fail_reason;
	} evs[] = {
		{ STS_CREATE_POD, "create Pod", "SuccessfulCreate", "FailedCreate" },
		{ STS_DELETE_POD, "delete Pod", "SuccessfulDelete", "FailedDelete" },
		{ STS_CREATE_CLAIM, "create Claim", "SuccessfulCreate", "FailedCreate" },
	};
	(void)made;
	for (size_t i = 0; i < ARRAY_SIZE(evs); i++) {
		if ((int)evs[i].op != w->tag)
			continue;
		if (!err)
			api_record_event(ctrl_api(c), set, "Normal", evs[i].ok_reason, STS_COMPONENT,
			    "%s %s in StatefulSet %s successful", evs[i].what, obj_name(w->obj),
			    obj_name(set));
		else
			api_record_event(ctrl_api(c), set, "Warning", evs[i].fail_reason,
			    STS_COMPONENT, "%s %s in StatefulSet %s failed error: %s", evs[i].what,
			    obj_name(w->obj), obj_name(set), err);
	}
}

/* A claim created, bound or gone may let a pod be made. */
static void
sts_on_claim(struct ctrl *c, enum store_event ev, const json_t *claim)
{
	(void)ev;
	ctrl_enqueue_selecting(c, obj_namespace(claim), obj_labels(claim));
}

static const struct ctrl_desc sts_desc = {
	.name = "statefulset", .component = STS_COMPONENT,
	.api_version = "apps/v1", .kind = "StatefulSet", .res = "apps/statefulsets",
	.sources = {
		{ "apps/statefulsets", NULL },
		{ "pods", ctrl_enqueue_pod_owner },
		{ "persistentvolumeclaims", sts_on_claim },
	},
	.decide = sts_ctrl_decide, .result = sts_result,
};

int
ctrl_statefulset_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &sts_desc, NULL, out);
}
