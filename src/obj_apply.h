/* obj_apply.h — apply's pure object logic, shared by the `v6 apply` / `diff`
 * CLI (cli_apply.c, cli_kustomize.c) and the Application controller
 * (ctrl_app.c), so the server's controllers do not depend on the CLI:
 * the last-applied-configuration record, the merge patch computed from it,
 * and the Secret masking of a diff. No I/O. */
#ifndef V6_OBJ_APPLY_H
#define V6_OBJ_APPLY_H

#include <jansson.h>

#define OBJ_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/* Removes what the server sets (status, uid, resourceVersion, generation,
 * creationTimestamp, managedFields, ...), leaving what a manifest says. */
void obj_strip_server_fields(json_t *obj);
/* The config recorded in last-applied-configuration: a copy of obj without
 * that annotation (and without an emptied annotations map) and without the
 * server's fields. New reference. */
json_t *obj_apply_config(const json_t *obj);
/* The merge patch turning last into cur: cur plus null for every key of
 * last that cur lacks, recursively through objects (arrays replace).
 * last may be NULL. New reference. */
json_t *obj_apply_patch(const json_t *last, const json_t *cur);
/* The object to send: cfg plus the annotation holding cfg's compact JSON.
 * New reference. */
json_t *obj_apply_annotate(const json_t *cfg);
/* kubectl diff's Masker: in a Secret (before and/or after, either NULL)
 * each data / stringData value becomes "***", or "*** (before)" and
 * "*** (after)" where it changed, and so does the last-applied record: a
 * diff shows which keys changed, never what they hold (CI logs, and
 * Application diffs readable without access to Secrets). */
void obj_mask_secret(json_t *before, json_t *after);

#endif
