/* node.h — the node agent (V6's kubelet): runs the Pods bound to this node
 * through a runtime (node_runtime.h), runs their probes, restarts them with
 * back-off, terminates them gracefully, and reports their status through
 * the API. Started by server.c on the server's loop. */
#ifndef V6_NODE_H
#define V6_NODE_H

#include "api.h"
#include "image.h"
#include "node_cni.h"

#include <stdint.h>

struct node;

struct node_config {
	const char *node_name;		/* default: the host name */
	const char *state_dir;		/* DATA/node */
	const char *self_exe;		/* the v6 binary, for shims and PATH */
	int backoff_max_s;		/* node-wide CrashLoopBackOff cap (default 300) */
	int64_t log_max_bytes;		/* containers' log rotation size; 0: 10 MiB */
	int log_max_files;		/* rotated log files kept; 0: 2 */
	/* Optional: takes a pod's IP out of the data plane before its
	 * containers get SIGTERM (zero-downtime); calls done(done_arg, drained)
	 * once it is, or when it gave up. */
	void (*drain)(void *arg, const char *pod_ip, void (*done)(void *, bool),
	    void *done_arg);
	void *drain_arg;
	struct img_store *images;	/* image.h: pulled before runc pods start */
	const char *otlp_endpoint;	/* pods' OTEL_EXPORTER_OTLP_ENDPOINT; NULL: none */
	/* The cluster DNS address pods get as nameserver (dns.h), or NULL:
	 * pods see the host's /etc/resolv.conf. */
	const char *cluster_dns;
	/* The pod network of runc pods (node_cni.h), or NULL: every pod on
	 * the host's network with a loopback pod IP (node_ipam.c). */
	const struct ncni_config *pod_network;
};

/* node_agent.c */
int node_start(struct api *api, const struct node_config *cfg, struct node **out);
/* Stops the agent; containers keep running, to be adopted on restart. */
void node_stop(struct node *n);
/* Calls fn for each container of this node that has a runtime container
 * now (for /metrics/cadvisor); ctr is the runtime's (node_runtime.h). */
struct rt_ctr;
typedef void (*node_ctr_fn)(void *arg, const char *ns, const char *pod, const char *container,
    const char *image, const struct rt_ctr *ctr);
void node_each_container(struct node *n, node_ctr_fn fn, void *arg);
/* The metrics.k8s.io PodMetrics of pod ns/name on this node (new
 * reference), or NULL before its first usage sample (the HPA reads it). */
json_t *node_pod_metrics(struct node *n, const char *ns, const char *name);

#endif
