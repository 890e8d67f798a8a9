/* obj.h — the Kubernetes object model shared by the API server, the
 * controllers and the CLI: the table of kinds, parsing YAML/JSON manifests
 * with source positions, schema validation, defaulting, label and field
 * selectors, and the three patch formats.
 *
 * Objects are jansson json_t trees shaped exactly like Kubernetes objects
 * (apiVersion, kind, metadata, spec, status). Field paths are written the
 * way Kubernetes writes them: "spec.template.spec.containers[0].image",
 * "metadata.labels[app.kubernetes.io/name]". */
#ifndef V6_OBJ_H
#define V6_OBJ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* ---- errors with field paths ------------------------------------------ */

/* One rejected field. reason is a Kubernetes StatusCause type:
 * "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported",
 * "FieldValueDuplicate", "FieldValueTooLong", "FieldValueForbidden",
 * "FieldValueTypeInvalid", or "FieldValueUnknown" for a field the schema
 * does not declare. line/col are 0 when unknown (1-based otherwise). */
struct field_err {
	char *field;	/* "spec.replicas"; "" for a whole-document error */
	char *reason;
	char *message;	/* "required", "must be a DNS-1123 label ...", ... */
	int line, col;
};

struct errlist {
	struct field_err *v;
	size_t n, cap;
};

/* obj_err.c */
void errlist_add(struct errlist *e, const char *field, const char *reason,
    const char *fmt, ...) V6_PRINTF(4, 5);
void errlist_add_at(struct errlist *e, int line, int col, const char *field,
    const char *reason, const char *fmt, ...) V6_PRINTF(6, 7);
void errlist_free(struct errlist *e);
/* "FILE:LINE:COL: FIELD: MESSAGE" (parts omitted when unknown). Caller frees. */
char *field_err_format(const struct field_err *fe, const char *file);

/* ---- the table of kinds ------------------------------------------------ */

struct schema_field;	/* see obj_schema.h */

struct kind {
	const char *group;		/* "" for the core group */
	const char *version;		/* "v1" */
	const char *api_version;	/* "apps/v1", "v1" */
	const char *kind;		/* "Deployment" */
	const char *plural;		/* "deployments" */
	const char *singular;		/* "deployment" */
	const char *short_names;	/* comma-separated, "deploy"; "" for none */
	bool namespaced;
	bool has_status;		/* serves the /status subresource */
	/* Top-level fields other than apiVersion/kind/metadata (spec, status,
	 * data, ...). */
	const struct schema_field *fields;
	/* Fills in Kubernetes defaults; called after validation succeeded. */
	void (*defaults)(json_t *obj);
	/* Semantic checks the schema cannot express; may be NULL. */
	void (*validate)(const json_t *obj, struct errlist *errs);
	/* Checks an update against the stored object (immutable fields); may be
	 * NULL. */
	void (*validate_update)(const json_t *old, const json_t *obj, struct errlist *errs);
	/* Rule for metadata.name (a name_check_* below); NULL = DNS-1123
	 * subdomain. */
	const char *(*name_check)(const char *name);
};

/* obj_kind.c */
size_t kind_count(void);
const struct kind *kind_at(size_t i);
/* Does k answer for version ("v1", or an older one it also serves, such as
 * Gateway API's v1beta1, stored as k->version)? */
bool kind_serves_version(const struct kind *k, const char *version);
/* The i-th older version served in group besides its kinds' own, or NULL. */
const char *kind_alias_version(const char *group, size_t i);
/* By apiVersion ("apps/v1", or an older version k serves) and kind
 * ("Deployment"); NULL when unknown. */
const struct kind *kind_find_gvk(const char *api_version, const char *kind);
/* By REST path parts: group ("" for core), version, plural. */
const struct kind *kind_find_resource(const char *group, const char *version,
    const char *plural);
/* By what a user types: "deployment", "deployments", "deploy", "Deployment",
 * "deployment.apps", "deployments.apps", "deployments.v1.apps". */
const struct kind *kind_find_user(const char *name);
/* Comma-separated discovery categories ("all"); "" for none. */
const char *kind_categories(const struct kind *k);
/* "deployment.apps", "pod" (kubectl's resource.group form for messages). */
const char *kind_display(const struct kind *k, char *out, size_t len);

/* ---- parsing manifests ------------------------------------------------- */

struct obj_doc {
	json_t *obj;	/* the document as JSON (owned) */
	json_t *pos;	/* object: field path -> [line, col] (owned); "" = document */
	int line;	/* first line of the document */
};

struct obj_docs {
	struct obj_doc *v;
	size_t n;
};

/* obj_parse.c */
/* Parses multi-document YAML or JSON (a JSON object, or a v1 List whose
 * items are expanded). Empty documents are skipped. Syntax errors, duplicate
 * keys and unsupported YAML (tags other than the core schema, aliases past a
 * bound) are added to errs with line and column. Returns 0 or -EINVAL. */
int obj_parse(const char *text, size_t len, struct obj_docs *out, struct errlist *errs);
/* obj_parse reading plain y / yes / on / n / no / off (any case form YAML
 * 1.1 lists) as bools, as kustomize reads a kustomization file (go-yaml v2
 * through sigs.k8s.io/yaml); manifests keep YAML 1.2's strings. */
int obj_parse_yaml11(const char *text, size_t len, struct obj_docs *out,
    struct errlist *errs);
void obj_docs_free(struct obj_docs *docs);
/* Position of field (or of its nearest parent that has one) in a document. */
void obj_pos_lookup(const json_t *pos, const char *field, int *line, int *col);
/* Fills line/col of every error in errs from pos. */
void obj_pos_annotate(const json_t *pos, struct errlist *errs);

/* ---- validation and defaulting ---------------------------------------- */

/* obj_schema.c */
/* Validates a whole object: apiVersion/kind known, metadata (DNS-1123 names,
 * labels, annotations, ownerReferences, ...), the kind's schema (unknown
 * fields rejected with their path, types, required fields, enums), then the
 * kind's semantic checks. Returns 0 or -EINVAL with errs filled. The object
 * is not modified. */
int obj_validate(const json_t *obj, struct errlist *errs);
/* Extra checks for an update of old into obj (same kind). */
int obj_validate_update(const json_t *old, const json_t *obj, struct errlist *errs);
/* Applies the kind's defaults in place (Kubernetes defaults). */
void obj_default(json_t *obj);
/* Drops null members in place, at any depth: null means absent, and every
 * write stores the object so (obj_default starts with it). */
void obj_prune_nulls(json_t *v);

/* A pod template as Kubernetes stores it, for hashing and comparing
 * templates: defaulted, without nulls and without an empty resources {}
 * (Go zero values kubectl sends back, e.g. in `rollout undo`). A template
 * already stored comes back unchanged. Returns a new reference. */
json_t *pod_template_canonical(const json_t *template);

/* Name rules, each returns NULL when valid or a static message. */
const char *name_check_dns1123_label(const char *s);
/* obj_schema_rbac.c: any path segment (RBAC names such as "system:view"). */
const char *name_check_path_segment(const char *s);
const char *name_check_dns1123_subdomain(const char *s);
const char *name_check_dns1035_label(const char *s);	/* Service names */
const char *label_check_key(const char *s);	/* also annotation keys */
const char *label_check_value(const char *s);

/* ---- accessors --------------------------------------------------------- */

/* obj_meta.c — NULL / "" / 0 when absent; returned strings are borrowed. */
const char *obj_api_version(const json_t *obj);
const char *obj_kind(const json_t *obj);
const char *obj_name(const json_t *obj);
const char *obj_namespace(const json_t *obj);
const char *obj_uid(const json_t *obj);
int64_t obj_resource_version(const json_t *obj);	/* parsed from string */
json_t *obj_metadata(json_t *obj);	/* creates metadata when absent */
json_t *obj_labels(const json_t *obj);	/* may be NULL */
/* Walks a dotted path ("spec.template.metadata"); NULL if absent. */
json_t *obj_get_path(const json_t *obj, const char *path);
/* The string member key of o / at a dotted path; "" when absent or not a
 * string. */
const char *obj_str(const json_t *o, const char *key);
const char *obj_str_at(const json_t *o, const char *path);
/* The integer at a dotted path; dflt when absent or not an integer. */
int64_t obj_int_at(const json_t *o, const char *path, int64_t dflt);
/* The object member key of o, made (empty) when absent or not an object. */
json_t *obj_child(json_t *o, const char *key);
/* metadata.annotations[key]; NULL when absent. */
const char *obj_annotation(const json_t *obj, const char *key);
/* metadata.annotations, made when absent. */
json_t *obj_annotations(json_t *obj);
/* Sets metadata.annotations[key] (val NULL: removes it); true if it changed. */
bool obj_set_annotation(json_t *obj, const char *key, const char *val);
/* metadata.deletionTimestamp is set. */
bool obj_is_deleting(const json_t *obj);
/* RFC 3339 time (a "...Z" string, with or without a fraction of a second)
 * in ms / whole seconds since the epoch; 0 when absent or malformed. */
int64_t obj_time_ms(const json_t *v);
int64_t obj_time_s(const json_t *v);
/* A metav1.Time for ms since the epoch (whole seconds, new reference). */
json_t *obj_time_json(int64_t ms);
/* The entry of status.conditions whose "type" is type (borrowed), or NULL;
 * status is the object holding "conditions". */
json_t *obj_condition(const json_t *status, const char *type);
/* Removes the conditions of type (and an empty "conditions"). */
void obj_condition_remove(json_t *status, const char *type);
/* Sets condition c (consumed) as Kubernetes' Set*Condition do: the same
 * status and reason leave the current one as it is; the same status keeps
 * its lastTransitionTime; the condition moves to the end. */
void obj_condition_set(json_t *status, json_t *c);

/* An index of coll (an array of objects, or an object whose values are
 * objects): a new object keyed "ns/name" holding references to them. */
json_t *obj_index(const json_t *coll);
/* In an index (an object keyed "ns/name"), the object ns/name (borrowed),
 * or NULL. */
const json_t *obj_lookup(const json_t *index, const char *ns, const char *name);

/* Owner references. The one with controller: true, or NULL (borrowed). */
const json_t *obj_controller_ref(const json_t *obj);
/* {apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true}
 * pointing at owner (new reference). */
json_t *obj_new_controller_ref(const json_t *owner);
/* A copy of obj with every ownerReference to uid removed and ref (consumed,
 * may be NULL) added (new reference). */
json_t *obj_with_owner_ref(const json_t *obj, const char *uid, json_t *ref);
/* ClaimObject's writes: a copy of obj with owner's controller reference
 * (adopt), or with every reference to owner removed (release). */
json_t *obj_claim(const json_t *obj, const json_t *owner, bool adopt);

/* Pods (podutil). Ready condition True; *since_s (if not NULL) gets its
 * lastTransitionTime in seconds (0 when absent). */
bool obj_pod_ready(const json_t *pod, int64_t *since_s);
/* Ready for at least min_ready_s at now_ms (podutil.IsPodAvailable). */
bool obj_pod_available(const json_t *pod, int64_t min_ready_s, int64_t now_ms);
/* Not Succeeded/Failed and not being deleted (controller.FilterActivePods). */
bool obj_pod_active(const json_t *pod);

/* ---- selectors --------------------------------------------------------- */

struct selector;

/* obj_selector.c */
/* Label selector string: "a=b,c!=d,e in (x,y),f notin (z),g,!h". The empty
 * string selects everything. Returns 0 or -EINVAL with *err set (caller
 * frees). */
int selector_parse(const char *s, struct selector **out, char **err);
/* From a LabelSelector object {matchLabels, matchExpressions}, validated as
 * Kubernetes does (label key/value syntax; In/NotIn need values,
 * Exists/DoesNotExist take none). As in metav1.LabelSelectorAsSelector, a
 * NULL or JSON null label_selector gives a selector that matches nothing,
 * and {} one that matches everything. Error messages start with the field
 * inside the LabelSelector ("matchExpressions[0].operator: ..."), so the
 * caller prefixes its own path. */
int selector_from_json(const json_t *label_selector, struct selector **out, char **err);
/* labels is the metadata.labels object; NULL means no labels. */
bool selector_matches(const struct selector *sel, const json_t *labels);
/* True only for a selector that matches everything (no requirements). */
bool selector_empty(const struct selector *sel);
/* A new selector that matches nothing; selector_free() it. */
struct selector *selector_nothing(void);
bool selector_is_nothing(const struct selector *sel);
/* Canonical string form, requirements sorted by key, In/NotIn values sorted
 * ("app=web,tier in (a,b),!legacy"); "" for everything and for nothing.
 * Parses back to an equivalent selector. Caller frees. */
char *selector_format(const struct selector *sel);
/* PromQL label matchers for sel ("{a=\"b\",c=~\"x|y\"}", "{}" for everything),
 * as prometheus-adapter turns a metric selector into matchers; NULL when a
 * key is no Prometheus label name or Gt / Lt is used. Caller frees. */
char *selector_promql(const struct selector *sel);
void selector_free(struct selector *sel);

struct field_selector;
/* Field selector: "metadata.name=web,metadata.namespace!=kube-system"; the
 * fields supported are metadata.name and metadata.namespace (plus any kind
 * specific ones listed in the implementation). */
int field_selector_parse(const char *s, struct field_selector **out, char **err);
/* An absent field compares as "", so "spec.nodeName=" selects unscheduled
 * pods and "metadata.name!=x" matches objects without that field. */
bool field_selector_matches(const struct field_selector *sel, const json_t *obj);
/* Checks that every field label of sel is served for kind ("Pod"); returns
 * 0 or -EINVAL with *err = "field label not supported: ..." (caller frees). */
int field_selector_check_kind(const struct field_selector *sel, const char *kind,
    char **err);
void field_selector_free(struct field_selector *sel);

/* ---- patches ----------------------------------------------------------- */

/* obj_patch.c — each returns a new reference to the patched document, or
 * NULL with *err set (caller frees; err may be NULL). The inputs are not
 * modified and the result shares no values with them. patch_json applies
 * all operations or none; its errors name the 0-based operation index:
 * 'operation 2 (replace): path "/spec/foo" does not exist'. */
json_t *patch_merge(const json_t *doc, const json_t *patch, char **err);	/* RFC 7386 */
json_t *patch_json(const json_t *doc, const json_t *ops, char **err);	/* RFC 6902 */
/* Kubernetes strategic merge patch: lists with a merge key (containers,
 * initContainers and volumes by name, env by name, ports by containerPort /
 * port, volumeMounts by mountPath, ...) merge element-wise; others replace.
 * Honors "$patch": "replace" | "delete" | "merge" and
 * "$deleteFromPrimitiveList/<field>", "$setElementOrder/<field>",
 * "$retainKeys". "$patch": "delete" on a map removes that field. */
json_t *patch_strategic(const json_t *doc, const json_t *patch, char **err);
/* The merge key patch_strategic uses for the list field (in the map named
 * parent) given its two sides a and b, or NULL when the list is replaced
 * or merged as a set of scalars (kustomize orders merged lists by it). */
const char *patch_strategic_list_key(const char *field, const char *parent, const json_t *a,
    const json_t *b);
/* Whether the list field (inside the map named parent, "" at the top)
 * merges element-wise under patch_strategic: *key is its merge key (NULL: a
 * set of scalars), *alt_key the key used when items lack *key (or NULL). */
bool patch_list_merges(const char *field, const char *parent, const char **key,
    const char **alt_key);

/* ---- OpenAPI ------------------------------------------------------------ */

/* obj_openapi.c — the OpenAPI v3 documents kubectl reads (apply's
 * field-validation and patch-strategy checks, explain), generated from the
 * kind table and its schemas. Each returns a new reference. */
/* The /openapi/v3 index: {"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}. */
json_t *openapi_v3_index(void);
/* The document of one group version ("" for core), NULL if V6 serves no
 * kind in it. */
json_t *openapi_v3_group_version(const char *group, const char *version);

#endif
