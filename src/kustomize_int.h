/* kustomize_int.h — internals shared by the kustomize_*.c files: the set of
 * resources being built (with each one's name history, which the
 * name-reference fix-up needs) and the transformer and generator steps.
 * Only kustomize.c's kustomize_build() is public (kustomize.h). */
#ifndef V6_KUSTOMIZE_INT_H
#define V6_KUSTOMIZE_INT_H

#include <jansson.h>
#include <stdbool.h>

/* One resource. prev holds {"name","namespace"} objects, one per earlier id
 * (kustomize's PrevIds): a reference naming any of them is rewritten to the
 * current name. */
struct kres {
	json_t *obj;
	json_t *prev;		/* array, owned */
	json_t *prefixes;	/* namePrefixes applied, innermost first (owned) */
	json_t *suffixes;
	bool hash;		/* generated: gets the content-hash suffix at the end */
	bool generated;
};

struct kresmap {
	struct kres *v;
	size_t n;
};

/* A kustomization being built: its directory and its parsed file. */
struct kust {
	const char *dir;	/* as given (for relative paths and messages) */
	const char *file;	/* DIR/kustomization.yaml (for messages) */
	json_t *k;		/* the kustomization document */
};

/* kustomize.c */
void kz_add(struct kresmap *m, json_t *obj);	/* obj consumed */
void kz_remove(struct kresmap *m, size_t i);
void kz_map_free(struct kresmap *m);
/* Records the current name/namespace of r as a previous id. */
void kz_store_prev(struct kres *r);
/* "default" for the empty namespace (kustomize's EffectiveNamespace). */
const char *kz_eff_ns(const char *ns);
/* r is or was named name (in namespace ns; NULL: any namespace). */
bool kz_had_id(const struct kres *r, const char *name, const char *ns);
/* The list field of k in *list (NULL when absent); -EINVAL with *err when
 * it is not a list. */
int kz_list(const struct kust *k, const char *field, json_t **list, char **err);
/* Reads DIR/REL into *out (caller frees); *err on failure. */
int kz_read(const char *dir, const char *rel, char **out, size_t *len, char **err);
/* Parses YAML/JSON text into an array of documents (new ref); a top-level
 * sequence (a JSON 6902 patch) comes back as one array. *err names file.
 * yaml11: the kustomization file itself, whose y / yes / on / n / no / off
 * are bools (kustomize reads it with YAML 1.1), unlike resources. */
int kz_parse(const char *text, size_t len, const char *file, bool yaml11, json_t **out,
    char **err);

/* kustomize_gen.c */
/* configMapGenerator / secretGenerator of k into m. */
int kz_generate(const struct kust *k, struct kresmap *m, char **err);
/* The content hash kustomize appends ("-" + 10 characters), of a ConfigMap
 * or Secret as it is now. Caller frees. */
char *kz_hash(const json_t *obj);
/* Appends the hash to every resource marked for it (top level only). */
void kz_add_hashes(struct kresmap *m);

/* kustomize_xf.c — the built-in transformers, in kustomize's order. */
int kz_transform(const struct kust *k, struct kresmap *m, char **err);
/* Rewrites references to renamed resources (nameReference). */
int kz_fix_names(struct kresmap *m, char **err);
/* Whether kind is cluster-scoped (unknown kinds are namespaced). */
bool kz_cluster_scoped(const char *kind);

/* kustomize_patch.c */
/* Applies the patches listed in field ("patches", "patchesStrategicMerge",
 * "patchesJson6902") of k to m. */
int kz_patch_step(const struct kust *k, struct kresmap *m, const char *field, char **err);
/* Whether obj is selected by a patch/replacement target {group, version,
 * kind, name (regex), namespace, labelSelector, annotationSelector}. */
int kz_target_match(const json_t *target, const struct kres *r, bool *match, char **err);

/* kustomize_xf.c (images) */
/* Applies one images entry {name, newName, newTag, digest, tagSuffix} to value.
 * Returns a new string or NULL when the image does not match. */
char *kz_image_set(const char *value, const json_t *entry);

#endif
