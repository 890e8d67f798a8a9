/* node_cni.h — the pod network of runc pods (node_cni.c): per pod a network
 * namespace pinned at STATE/netns/POD_UID, attached to a host bridge by the
 * CNI plugins (bridge + host-local); the node agent asks for a pod's sandbox
 * and releases it, the work runs on libuv's thread pool. */
#ifndef V6_NODE_CNI_H
#define V6_NODE_CNI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#define NCNI_DEFAULT_BRIDGE "v6br0"
#define NCNI_DEFAULT_CIDR "10.88.0.0/16"
#define NCNI_PLUGIN_DIR "/usr/lib/cni"

struct ncni_config {
	const char *state_dir;		/* DATA/node: netns/, cni/ (IPAM, results) below */
	const char *bridge;		/* host bridge name (NCNI_DEFAULT_BRIDGE) */
	const char *cidr;		/* pod subnet (NCNI_DEFAULT_CIDR) */
	const char *service_cidr;	/* routed to the bridge's gateway in every pod; may be NULL */
	bool masquerade;		/* default route + the bridge plugin's ipMasq */
	const char *plugin_dir;		/* NULL: NCNI_PLUGIN_DIR */
};

/* What a CNI ADD gave a pod. */
struct ncni_result {
	char ip[64];			/* without the prefix length */
	char gateway[64];		/* "" when the result names none */
};

/* A namespace pinned by a bind mount at path (a new file): clone_flag is
 * CLONE_NEWNET or CLONE_NEWIPC. Already pinned there: 0 at once. Made in a
 * child process (blocking, one fork). 0, -EPERM (not root) or -errno. The
 * pod network pins its netns so; the runc runtime a pod's IPC namespace. */
int ncni_ns_pin(const char *path, int clone_flag);
/* Unmounts (lazily) and removes a pinned namespace; gone already is fine. */
void ncni_ns_unpin(const char *path);
/* Whether path is a pinned namespace (an nsfs file). */
bool ncni_is_ns(const char *path);

/* Pure parts (unit-tested). */
/* The network configuration given to each plugin call on stdin (CNI 1.0.0,
 * type bridge with host-local IPAM). Caller frees. */
char *ncni_netconf(const struct ncni_config *cfg);
/* Reads a plugin's stdout: a result (the first IPv4 address, CNI 0.4.0 or
 * 1.0.0 form) -> 0; an error object ({"code", "msg", "details"}) or
 * anything else -> -EIO with *err (caller frees) saying why. */
int ncni_parse_result(const char *json, struct ncni_result *out, char **err);

/* The agent's side, on the loop. */
struct ncni;
int ncni_open(uv_loop_t *loop, const struct ncni_config *cfg, struct ncni **out);
/* Stops calling back; in-flight plugin calls finish and free their state. */
void ncni_close(struct ncni *c);
/* The sandbox of pod uid: 1 when ready (*ip, *netns set, borrowed until
 * ncni_release), 0 while it is being made (ready(arg, uid) is called on
 * the loop once it is, or failed), < 0 when making it failed (*err says
 * why; the next call tries again). A sandbox made by an earlier server
 * (result saved under STATE/cni/results) is ready at once. */
int ncni_sandbox(struct ncni *c, const char *uid, void (*ready)(void *, const char *),
    void *arg, const char **ip, const char **netns, const char **err);
/* Tears pod uid's sandbox down (CNI DEL, unmount, remove) off the loop. */
void ncni_release(struct ncni *c, const char *uid);
/* Releases every sandbox under STATE/netns whose uid is not a key of live
 * (start-up: leaks are bugs). Returns how many it released. */
int ncni_gc(struct ncni *c, const json_t *live);
/* Makes every address of cidr local to this host (`ip route replace local
 * CIDR dev lo`, as kube-proxy's IPVS mode holds cluster IPs on kube-ipvs0):
 * the proxy and the cluster DNS bind any of them, and packets from pods
 * (routed to the bridge's gateway) are delivered to them. Blocking (one
 * `ip` run); 0 or -errno. The route stays when the server stops: the proxy
 * keeps serving. */
int ncni_hold_services(const char *state_dir, const char *cidr);
/* `v6 reset`: undoes what the pod network of state_dir made on the host
 * (recorded in STATE/cni/host.json): the bridge, when no interface is left
 * on it, and the Services' local route. Says what it did on out; 0 or
 * -EIO when the bridge could not be removed. */
int ncni_reset_host(const char *state_dir, FILE *out);
/* The netns path of pod uid (whether or not it exists). Caller frees. */
char *ncni_netns_path(const struct ncni *c, const char *uid);

#endif
