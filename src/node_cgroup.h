/* node_cgroup.h — cgroup helpers of the process runtime (v1 hierarchies and
 * the v2 unified one): where each controller's V6 subtree lives, creating a
 * container's group, writing its limits, reading its counters, killing and
 * removing it. Used by the runtime (node_runtime.c) and by the shim
 * (node_shim.c); plain libc, no loop. */
#ifndef V6_NODE_CGROUP_H
#define V6_NODE_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum cg_ctrl { CG_MEMORY, CG_CPU, CG_CPUACCT, CG_PIDS, CG_NCTRL };

/* node_cgroup.c */
const char *cg_ctrl_name(enum cg_ctrl c);
/* The V6 subtree of one controller: its mount point + the cgroup this
 * process is in + "/v6", created if needed (so V6 nests under whatever
 * cgroup it was started in). A controller not mounted as cgroup v1 is looked
 * for in the v2 unified hierarchy (where all share one directory). Returns
 * NULL (and *err = errno) when it is in neither or not writable. Caller
 * frees. */
char *cg_base(enum cg_ctrl c, int *err);
/* mkdir -p. Returns 0 or negative errno. */
int cg_mkdirs(const char *dir);
/* Writes "%s" to DIR/FILE. Returns 0 or negative errno. */
int cg_write(const char *dir, const char *file, const char *value);
int cg_write_i64(const char *dir, const char *file, int64_t v);
int cg_read_u64(const char *dir, const char *file, uint64_t *out);
/* Reads "KEY VALUE" lines (memory.stat, memory.oom_control). */
int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out);
/* Moves pid into the group. */
int cg_join(const char *dir, pid_t pid);
/* Sends sig to every process of the group; returns how many were signalled. */
int cg_kill_all(const char *dir, int sig);
/* Removes the group MOUNT/<own group>/v6/REL and its child groups in every
 * cgroup v1 hierarchy, best effort: those runc makes in the controllers V6
 * does not use itself (devices, freezer, ...). */
void cg_remove_v6_everywhere(const char *rel);
/* rmdir, retrying briefly while the kernel is still releasing killed tasks. */
int cg_remove(const char *dir);

/* Version-independent knobs of one container group DIR (v2 when DIR has a
 * cgroup.controllers file). Each returns 0 or negative errno. */
bool cg_is_v2(const char *dir);
/* mkdir -p DIR; on v2 also enables V6's controllers in its parent. */
int cg_group_create(const char *dir);
/* Limits; 0 or less means none. */
int cg_set_memory_max(const char *dir, int64_t bytes);
int cg_set_cpu_max(const char *dir, int64_t millicores);
int cg_set_pids_max(const char *dir, int64_t n);
/* Counters: OOM kills so far, CPU time used, memory in use minus the
 * inactive page cache (the working set, as kubelet reports it). */
int cg_oom_kills(const char *dir, uint64_t *out);
int cg_cpu_usage_ns(const char *dir, uint64_t *out);
int cg_memory_working_set(const char *dir, uint64_t *out);
/* The V6 subtree below the v2 group OWN (a directory of the unified
 * hierarchy): enables V6's controllers in OWN (moving this process into a
 * leaf of it first if OWN holds processes) and in OWN/v6. *out is
 * malloc'ed. -ENOENT: OWN does not offer the controller. For cg_base and
 * tests. */
int cg__v2_base(const char *own, enum cg_ctrl c, char **out);

#endif
