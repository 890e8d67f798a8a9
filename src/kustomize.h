/* kustomize.h — Kustomize built in (issue 14): renders a kustomization
 * directory into objects as `kubectl kustomize` does. Used by `v6 kustomize`,
 * `v6 apply -k` / `v6 diff -k` and Applications with a kustomize source. */
#ifndef V6_KUSTOMIZE_H
#define V6_KUSTOMIZE_H

#include <jansson.h>

/* Renders the kustomization in dir (kustomization.yaml, .yml or
 * Kustomization). Returns 0 and *out, a new JSON array of the objects in
 * kubectl kustomize's order, or a negative errno and *err (malloc'ed,
 * "FILE: message" with the file that is wrong). */
int kustomize_build(const char *dir, json_t **out, char **err);

#endif
