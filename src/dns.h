/* dns.h — cluster DNS: the answers (dns.c, a pure function of the Services
 * and Endpoints, as CoreDNS's kubernetes plugin gives them), the server on
 * the loop (dns_server.c: UDP + TCP, watch-fed, forwarding to upstreams)
 * and the pods' resolv.conf. Started by server.c; read by the node agent. */
#ifndef V6_DNS_H
#define V6_DNS_H

#include <jansson.h>
#include <ldns/ldns.h>
#include <stdbool.h>

#include "api.h"

#define DNS_CLUSTER_DOMAIN "cluster.local"
#define DNS_TTL 5		/* CoreDNS's kubernetes plugin default */

/* dns.c */
/* What the answers are computed from: "ns/name" -> Service and -> Endpoints
 * (borrowed), and the cluster domain (DNS_CLUSTER_DOMAIN). */
struct dns_view {
	const json_t *services;
	const json_t *endpoints;
	const char *domain;
};
/* The answer to query from the view: a new packet (caller ldns_pkt_free)
 * with the query's id and question, or NULL when the name is not ours to
 * answer (outside the cluster domain, or a PTR for an address no Service or
 * endpoint has): the caller forwards it upstream. */
ldns_pkt *dns_answer(const struct dns_view *v, const ldns_pkt *query);
/* An empty answer to query with rcode (SERVFAIL, FORMERR, ...); caller frees. */
ldns_pkt *dns_reply_error(const ldns_pkt *query, ldns_pkt_rcode rcode);

/* The /etc/resolv.conf a pod gets, as kubelet writes it: dnsPolicy
 * ClusterFirst (the default; hostNetwork pods too with
 * ClusterFirstWithHostNet) -> "nameserver DNS_IP", search
 * NS.svc.DOMAIN svc.DOMAIN DOMAIN (then the host's search list), options
 * ndots:5; Default (or ClusterFirst without cluster DNS) -> host_resolv as
 * is; None -> only spec.dnsConfig. dnsConfig's nameservers, searches and
 * options are merged in for every policy. dns_ip NULL: no cluster DNS.
 * host_resolv: the host's resolv.conf text (may be NULL). Caller frees. */
char *pod_resolv_conf(const json_t *pod, const char *dns_ip, const char *domain,
    const char *host_resolv);
/* pod_resolv_conf(pod, dns_ip, DNS_CLUSTER_DOMAIN, the host's
 * /etc/resolv.conf): the pod's file (the node writes it with the start).
 * Caller frees. */
char *pod_resolv_text(const json_t *pod, const char *dns_ip);

/* dns_server.c */
struct dns_server;
struct dns_config {
	const char *listen;	/* "IP" or "IP:PORT" (default port 53) */
	const char *upstream;	/* "IP[:PORT]"; NULL: the first nameserver of /etc/resolv.conf */
	int upstream_timeout_ms;	/* 0: 2000; then SERVFAIL */
};
/* Serves the cluster domain on cfg->listen (UDP and TCP) from the store's
 * Services and Endpoints, kept by a watch; makes the kube-system/kube-dns
 * Service for it when the address is in the Service range. 0 or -errno. */
int dns_server_start(struct api *api, const struct dns_config *cfg, struct dns_server **out);
void dns_server_stop(struct dns_server *d);
/* The address pods use as nameserver ("10.96.0.10"); borrowed. */
const char *dns_server_ip(const struct dns_server *d);

#endif
