/* api_alloc.h — the Service address allocator (api_alloc.c): cluster IPs
 * (API_SERVICE_CIDR unless set, on loopback) and node ports (30000-32767), held in
 * memory over one store and rebuilt from its Services on first use. Its own
 * module state, owned by the API server (api_allocator()); api_objects.c
 * calls it on Service writes (other kinds: no-ops). Depends on the object
 * model and the store only. */
#ifndef V6_API_ALLOC_H
#define V6_API_ALLOC_H

#include <jansson.h>
#include <stdbool.h>

#include "obj.h"
#include "store.h"

#define API_SERVICE_CIDR "127.2.0.0/16"
/* Sets the Service range for allocations built from now on (`v6 server
 * --service-cidr`): a loopback CIDR as util_loopback_cidr accepts, or, for
 * the pod network (server.c checks), a routable one as util_ipv4_cidr
 * accepts. 0 or -EINVAL. */
int api_alloc_set_cidr(const char *cidr);

struct api_alloc;
/* An allocator over st's Services (built on first use). */
struct api_alloc *api_alloc_new(struct store *st);
void api_alloc_free(struct api_alloc *a);
/* Rebuilds the allocations from the store now (optional: the first use
 * does it too). Returns 0. */
int api_alloc_init(struct api_alloc *a);
/* Drops the allocations; the next use rebuilds them (as after a restart). */
void api_alloc_forget(struct api_alloc *a);
/* Update, before validation: what the user left out but old had (as
 * kubectl apply does) — clusterIP, clusterIPs, the nodePort of a port
 * that stays; a nodePort left from NodePort type when the type changes
 * away is dropped. */
void api_alloc_carry(const struct kind *k, const json_t *old, json_t *obj);
/* After validation and defaulting: fills spec.clusterIP / clusterIPs and
 * missing nodePorts, checks requested ones are in range, free (or held by
 * old) and unchanged (clusterIP is immutable), and moves the allocations
 * from old (NULL on create) to obj unless dry_run. Returns 0 or -EINVAL
 * with errs filled (nothing allocated). */
int api_alloc_assign(struct api_alloc *a, const struct kind *k, const json_t *old,
    json_t *obj, bool dry_run, struct errlist *errs);
/* The Service obj is gone: its address and ports are free. */
void api_alloc_release(struct api_alloc *a, const struct kind *k, const json_t *obj);
/* A write of obj over old failed after api_alloc_assign: back to old's. */
void api_alloc_revert(struct api_alloc *a, const struct kind *k, const json_t *old,
    const json_t *obj);

#endif
