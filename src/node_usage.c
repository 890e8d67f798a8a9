/* node_usage.c — the node's own row of metrics.k8s.io: NodeMetrics with the
 * machine's CPU (the busy time between two samples of /proc/stat, as
 * nanocores) and memory in use, sampled on the node agent's metrics timer.
 * What `kubectl top nodes` reads; node_agent.c serves it. */
#include "node_pod.h"
#include "obs_metrics.h"

#include <stdio.h>

void
node_usage_sample(struct node_usage *u, int64_t now_ms)
{
	uint64_t busy, mem;
	if (host_usage_read("/proc", &busy, &mem) < 0)
		return;
	if (u->primed && now_ms > u->at_ms && busy >= u->busy_ns) {
		u->window_ms = now_ms - u->at_ms;
		u->nanocores = (uint64_t)((double)(busy - u->busy_ns) * 1000.0 /
		    (double)u->window_ms);
		u->have = true;
	}
	u->busy_ns = busy;
	u->memory = mem;
	u->at_ms = now_ms;
	u->primed = true;
}

json_t *
node_usage_metrics(const struct node_usage *u, const char *node, const json_t *labels)
{
	char ts[32], cpu[32], mem[32], window[32];
	if (!u->have)
		return NULL;
	time_format_rfc3339((time_t)(u->at_ms / 1000), ts);
	snprintf(cpu, sizeof cpu, "%llun", (unsigned long long)u->nanocores);
	snprintf(mem, sizeof mem, "%lluKi", (unsigned long long)(u->memory / 1024));
	snprintf(window, sizeof window, "%.3gs", (double)u->window_ms / 1000);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:s, s:s, s:{s:s, s:s}}", "kind",
	    "NodeMetrics", "apiVersion", "metrics.k8s.io/v1beta1", "metadata", "name", node,
	    "creationTimestamp", ts, "labels", labels ? json_deep_copy(labels) : json_object(),
	    "timestamp", ts, "window", window, "usage", "cpu", cpu, "memory", mem);
}
