/* node_cgroup.h — cgroup v1 helpers of the process runtime: where each
 * controller's V6 subtree lives, creating a container's group, writing its
 * limits, reading its counters, killing and removing it. Used by the runtime
 * (node_runtime.c) and by the shim (node_shim.c); plain libc, no loop. */
#ifndef V6_NODE_CGROUP_H
#define V6_NODE_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

enum cg_ctrl { CG_MEMORY, CG_CPU, CG_CPUACCT, CG_PIDS, CG_NCTRL };

/* node_cgroup.c */
const char *cg_ctrl_name(enum cg_ctrl c);
/* The V6 subtree of one controller: its mount point + the cgroup this
 * process is in + "/v6", created if needed (so V6 nests under whatever
 * cgroup it was started in). Returns NULL (and *err = errno) when the
 * controller is not mounted as cgroup v1 or not writable. Caller frees. */
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
/* rmdir, retrying briefly while the kernel is still releasing killed tasks. */
int cg_remove(const char *dir);

#endif
