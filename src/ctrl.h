/* ctrl.h — the controllers of the control plane. Each is level-triggered:
 * it watches the store, queues the keys of objects that changed, and brings
 * the world to the desired state through the same object operations the API
 * uses (api.h). */
#ifndef V6_CTRL_H
#define V6_CTRL_H

#include "api.h"

struct ctrl_gc;

/* ctrl_gc.c — the garbage collector: cascading deletion through
 * ownerReferences (background, foreground, orphan), finalizer completion,
 * and namespace termination. */
int ctrl_gc_start(struct api *api, struct ctrl_gc **out);
void ctrl_gc_stop(struct ctrl_gc *gc);
/* Number of objects the collector's graph holds (tests, metrics). */
size_t ctrl_gc_size(const struct ctrl_gc *gc);

#endif
