/* api_alloc.c — Service addresses: cluster IPs from the Service range,
 * 127.2.0.0/16 unless `v6 server --service-cidr` says otherwise (stable
 * virtual addresses on loopback that the proxy binds) and node ports from
 * 30000-32767. A struct api_alloc is its own state: one pair of bitmaps
 * over one store, rebuilt from the stored Services on first use (no state of
 * its own on disk). The API server owns one; api_objects.c calls it on every
 * Service create, update and delete. */
#include "api_alloc.h"
#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IP_MAX		65536u		/* a /16, the largest range accepted */
/* The Service range: process-wide, set once from the server's flags. */
static uint32_t ip_base = 0x7f020000u;	/* 127.2.0.0 */
static uint32_t ip_count = IP_MAX;
static char ip_cidr[32] = API_SERVICE_CIDR;
/* Kubernetes prefers the upper part of a range for dynamic allocation and
 * keeps the lower part (min(max(16, size/16), 256) addresses, 1/32 of the
 * ports up to 128) mostly for users who pick their own. */
#define IP_STATIC_BAND	(ip_count / 16 < 16 ? 16 : ip_count / 16 > 256 ? 256 : ip_count / 16)
#define PORT_MIN	30000
#define PORT_COUNT	2768u
#define PORT_STATIC_BAND 86u

struct api_alloc {
	struct store *st;
	bool built;		/* the bitmaps reflect the store */
	uint8_t ips[IP_MAX / 8];
	uint8_t ports[(PORT_COUNT + 7) / 8];
	uint32_t ip_next, port_next;	/* where the next dynamic scan starts */
};

/* What one Service holds: an address index (0 = none) and node ports (a
 * bitmap over the range: a Service may list any number of ports). */
struct held {
	uint32_t ip;
	size_t nports;
	uint8_t ports[(PORT_COUNT + 7) / 8];
};

static bool
bit_get(const uint8_t *m, uint32_t i)
{
	return m[i / 8] & (1u << (i % 8));
}

static void
bit_set(uint8_t *m, uint32_t i, bool on)
{
	if (on)
		m[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		m[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* Index of an address inside the range, excluding the network and
 * broadcast addresses; 0 when s is not such an address. */
static uint32_t
ip_index(const char *s)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return 0;
	uint32_t h = ntohl(a.s_addr);
	if ((h & ~(ip_count - 1)) != ip_base || h == ip_base || h == ip_base + ip_count - 1)
		return 0;
	return h - ip_base;
}

static void
ip_format(uint32_t idx, char out[16])
{
	uint32_t h = ip_base + idx;
	snprintf(out, 16, "%u.%u.%u.%u", h >> 24, (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

int
api_alloc_set_cidr(const char *cidr)
{
	uint32_t base;
	unsigned prefix;
	if (util_ipv4_cidr(cidr, &base, &prefix) < 0 || (base >> 24 == 127 &&
	    util_loopback_cidr(cidr, &base, &prefix) < 0))
		return -EINVAL;
	ip_base = base;
	ip_count = 1u << (32 - prefix);
	snprintf(ip_cidr, sizeof ip_cidr, "%s", cidr);
	return 0;
}

static const char *
svc_str(const json_t *svc, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(svc, "spec"), key));
	return s ? s : "";
}

static bool
is_node_port_type(const json_t *svc)
{
	return strcmp(svc_str(svc, "type"), "NodePort") == 0;
}

static bool
held_port(const struct held *h, uint32_t port)
{
	return port < PORT_COUNT && bit_get(h->ports, port);
}

static void
held_add(struct held *h, uint32_t port)
{
	BUG_ON(port >= PORT_COUNT);
	if (!held_port(h, port)) {
		bit_set(h->ports, port, true);
		h->nports++;
	}
}

static void
held_of(const json_t *svc, struct held *h)
{
	memset(h, 0, sizeof *h);
	if (!svc)
		return;
	h->ip = ip_index(svc_str(svc, "clusterIP"));
	size_t i;
	json_t *p;
	json_array_foreach(obj_get_path(svc, "spec.ports"), i, p) {
		json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
		if (np >= PORT_MIN && np < PORT_MIN + (json_int_t)PORT_COUNT)
			held_add(h, (uint32_t)(np - PORT_MIN));
	}
}

/* Moves the bitmaps from what `from` holds to what `to` holds. */
static void
alloc_move(struct api_alloc *a, const struct held *from, const struct held *to)
{
	if (from->ip && from->ip != to->ip)
		bit_set(a->ips, from->ip, false);
	for (uint32_t i = 0; from->nports && i < PORT_COUNT; i++)
		if (held_port(from, i) && !held_port(to, i))
			bit_set(a->ports, i, false);
	if (to->ip)
		bit_set(a->ips, to->ip, true);
	for (uint32_t i = 0; to->nports && i < PORT_COUNT; i++)
		if (held_port(to, i))
			bit_set(a->ports, i, true);
}

static int
rebuild_one(void *arg, const char *text, size_t len)
{
	struct api_alloc *a = arg;
	json_t *svc = json_loadb(text, len, 0, NULL);
	struct held h, none = { 0 };
	held_of(svc, &h);
	if ((h.ip && bit_get(a->ips, h.ip)))
		log_warn("alloc", "service %s/%s: clusterIP %s is held twice",
		    obj_namespace(svc), obj_name(svc), svc_str(svc, "clusterIP"));
	alloc_move(a, &none, &h);
	json_decref(svc);
	return 0;
}

static void
alloc_build(struct api_alloc *a)
{
	memset(a->ips, 0, sizeof a->ips);
	memset(a->ports, 0, sizeof a->ports);
	/* A random start (see node_ipam.c): servers sharing a machine rarely
	 * hand out the same address or node port. */
	a->ip_next = IP_STATIC_BAND + util_random32() % (ip_count - 1 - IP_STATIC_BAND);
	a->port_next = PORT_STATIC_BAND + util_random32() % (PORT_COUNT - PORT_STATIC_BAND);
	int rc = store_list_each(a->st, "services", NULL, rebuild_one, a, NULL);
	if (rc < 0)
		log_warn("alloc", "reading services: %s", strerror(-rc));
	a->built = true;
}

static struct api_alloc *
alloc_get(struct api_alloc *a)
{
	if (!a->built)
		alloc_build(a);
	return a;
}

struct api_alloc *
api_alloc_new(struct store *st)
{
	struct api_alloc *a = xcalloc(1, sizeof *a);
	a->st = st;
	return a;
}

void
api_alloc_free(struct api_alloc *a)
{
	free(a);
}

void
api_alloc_forget(struct api_alloc *a)
{
	a->built = false;
}

int
api_alloc_init(struct api_alloc *a)
{
	alloc_build(a);
	return 0;
}

/* ---- update: what the user left out ---------------------------------- */

static const json_t *
same_port(const json_t *ports, const json_t *p)
{
	json_int_t num = json_integer_value(json_object_get(p, "port"));
	const char *proto = json_string_value(json_object_get(p, "protocol"));
	size_t i;
	json_t *q;
	json_array_foreach(ports, i, q) {
		const char *qp = json_string_value(json_object_get(q, "protocol"));
		if (json_integer_value(json_object_get(q, "port")) == num &&
		    strcmp(proto ? proto : "TCP", qp ? qp : "TCP") == 0)
			return q;
	}
	return NULL;
}

static void
carry_node_ports(const json_t *old_spec, json_t *spec, bool old_np, bool new_np)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		const json_t *op = same_port(json_object_get(old_spec, "ports"), p);
		json_t *onp = json_object_get(op, "nodePort"), *np = json_object_get(p, "nodePort");
		if (!onp)
			continue;
		if (old_np && new_np && !np)
			json_object_set(p, "nodePort", onp);
		else if (old_np && !new_np && np && json_equal(np, onp))
			json_object_del(p, "nodePort");
	}
}

void
api_alloc_carry(const struct kind *k, const json_t *old, json_t *obj)
{
	if (strcmp(k->kind, "Service") != 0)
		return;
	const json_t *os = json_object_get(old, "spec");
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec) || !json_is_object(os))
		return;
	const char *oip = json_string_value(json_object_get(os, "clusterIP"));
	const char *nip = json_string_value(json_object_get(spec, "clusterIP"));
	if (oip && *oip && (!nip || !*nip) && !json_object_get(spec, "clusterIPs"))
		json_object_set(spec, "clusterIP", json_object_get(os, "clusterIP"));
	nip = json_string_value(json_object_get(spec, "clusterIP"));
	if (oip && nip && !strcmp(oip, nip) && !json_object_get(spec, "clusterIPs") &&
	    json_object_get(os, "clusterIPs"))
		json_object_set(spec, "clusterIPs", json_object_get(os, "clusterIPs"));
	const char *ot = json_string_value(json_object_get(os, "type"));
	const char *nt = json_string_value(json_object_get(spec, "type"));
	carry_node_ports(os, spec, ot && !strcmp(ot, "NodePort"), nt && !strcmp(nt, "NodePort"));
}

/* ---- assignment ------------------------------------------------------ */

static int
pick_ip(struct api_alloc *a, uint32_t *out)
{
	/* The dynamic band first, from a moving cursor so that a freed
	 * address is not handed out again at once, then the static band. */
	for (uint32_t n = 0; n < ip_count - IP_STATIC_BAND; n++) {
		uint32_t i = IP_STATIC_BAND + (a->ip_next - IP_STATIC_BAND + n) %
		    (ip_count - IP_STATIC_BAND);
		if (i != ip_count - 1 && !bit_get(a->ips, i)) {
			a->ip_next = i + 1 < ip_count ? i + 1 : IP_STATIC_BAND;
			*out = i;
			return 0;
		}
	}
	for (uint32_t i = 1; i < IP_STATIC_BAND; i++)
		if (!bit_get(a->ips, i)) {
			*out = i;
			return 0;
		}
	return -ENOSPC;
}

/* Whether TCP port is free on the host (a bind to the wildcard address
 * succeeds): V6 is its own node, so a dynamic node port must not be one that
 * another program, or another V6 on the same machine, already listens on;
 * the proxy could not bind it and the Service would answer elsewhere. */
static bool
port_free_on_host(uint32_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;	/* cannot tell: the proxy reports a failed bind */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static int
pick_port(struct api_alloc *a, const struct held *taken_here, uint32_t *out)
{
	uint32_t dyn = PORT_COUNT - PORT_STATIC_BAND;
	for (uint32_t n = 0; n < PORT_COUNT; n++) {
		uint32_t i = n < dyn ? PORT_STATIC_BAND + (a->port_next - PORT_STATIC_BAND + n) % dyn :
		    n - dyn;
		if (bit_get(a->ports, i) || held_port(taken_here, i))
			continue;
		if (n < dyn && !port_free_on_host(PORT_MIN + i))
			continue;	/* the static band stays the user's choice */
		if (n < dyn)
			a->port_next = i + 1 < PORT_COUNT ? i + 1 : PORT_STATIC_BAND;
		*out = i;
		return 0;
	}
	return -ENOSPC;
}

static void
cip_invalid(struct errlist *errs, const char *field, const char *ip, const char *detail)
{
	errlist_add(errs, field, "FieldValueInvalid", "Invalid value: \"%s\": %s", ip, detail);
}

/* The cluster IP obj asks for: "" (allocate), "None" or an address. */
static const char *
requested_ip(json_t *spec, struct errlist *errs)
{
	const char *cip = json_string_value(json_object_get(spec, "clusterIP"));
	const json_t *ips = json_object_get(spec, "clusterIPs");
	const char *first = json_string_value(json_array_get(ips, 0));
	if (json_array_size(ips) > 1)
		errlist_add(errs, "spec.clusterIPs", "FieldValueInvalid", "Invalid value: "
		    "more than one IP: dual-stack Services are not supported by v6");
	if (cip && *cip && first && strcmp(cip, first) != 0)
		cip_invalid(errs, "spec.clusterIPs[0]", first, "must match `clusterIP`");
	return cip && *cip ? cip : first ? first : "";
}

static void
check_ip(struct api_alloc *a, const char *ip, const struct held *old, struct errlist *errs)
{
	uint32_t idx = ip_index(ip);
	char msg[200];
	if (!idx) {
		snprintf(msg, sizeof msg, "failed to allocate IP %s: the provided IP (%s) is "
		    "not in the valid range. The range of valid IPs is %s", ip, ip,
		    ip_cidr);
		cip_invalid(errs, "spec.clusterIP", ip, msg);
	} else if (bit_get(a->ips, idx) && old->ip != idx) {
		snprintf(msg, sizeof msg, "failed to allocate IP %s: provided IP is already "
		    "allocated", ip);
		cip_invalid(errs, "spec.clusterIP", ip, msg);
	}
}

/* Checks and fills spec.clusterIP / clusterIPs; *want gets the index. */
static void
assign_ip(struct api_alloc *a, const json_t *old, json_t *spec, struct held *want,
    struct errlist *errs)
{
	const char *oip = old ? svc_str(old, "clusterIP") : "";
	const char *ip = requested_ip(spec, errs);
	if (*oip && strcmp(ip, oip) != 0) {
		cip_invalid(errs, "spec.clusterIP", ip, "field is immutable");
		return;
	}
	struct held oh;
	held_of(old, &oh);
	if (!strcmp(ip, "None")) {
		json_object_set_new(spec, "clusterIP", json_string("None"));
		json_object_set_new(spec, "clusterIPs", json_pack("[s]", "None"));
		return;
	}
	if (*ip) {
		check_ip(a, ip, &oh, errs);
		want->ip = ip_index(ip);
	} else if (pick_ip(a, &want->ip) < 0) {
		errlist_add(errs, "spec.clusterIP", "FieldValueInvalid", "Invalid value: \"\": "
		    "failed to allocate a serviceIP: range is full");
		return;
	}
	char s[16];
	ip_format(want->ip, s);
	json_object_set_new(spec, "clusterIP", json_string(s));
	json_object_set_new(spec, "clusterIPs", json_pack("[s]", s));
}

static void
port_err(struct errlist *errs, size_t i, const char *reason, json_int_t v,
    const char *detail)
{
	char *p = xasprintf("spec.ports[%zu].nodePort", i);
	if (!strcmp(reason, "FieldValueDuplicate"))
		errlist_add(errs, p, reason, "Duplicate value: %lld", (long long)v);
	else
		errlist_add(errs, p, reason, "Invalid value: %lld: %s", (long long)v, detail);
	free(p);
}

static void
assign_ports(struct api_alloc *a, const json_t *old, json_t *spec, struct held *want,
    struct errlist *errs)
{
	struct held oh;
	held_of(old, &oh);
	size_t i;
	json_t *p;
	json_t *ports = json_object_get(spec, "ports");
	/* Requested ports first, so that allocated ones avoid them. */
	json_array_foreach(ports, i, p) {
		json_t *np = json_object_get(p, "nodePort");
		if (!np)
			continue;
		json_int_t v = json_integer_value(np);
		if (v < PORT_MIN || v >= PORT_MIN + (json_int_t)PORT_COUNT)
			continue;	/* refused by validation (obj_schema_core.c) */
		uint32_t idx = (uint32_t)(v - PORT_MIN);
		if (held_port(want, idx))
			port_err(errs, i, "FieldValueDuplicate", v, NULL);
		else if (bit_get(a->ports, idx) && !held_port(&oh, idx))
			port_err(errs, i, "FieldValueInvalid", v, "provided port is already allocated");
		held_add(want, idx);
	}
	json_array_foreach(ports, i, p) {
		if (json_object_get(p, "nodePort"))
			continue;
		uint32_t idx;
		if (pick_port(a, want, &idx) < 0) {
			port_err(errs, i, "FieldValueInvalid", 0,
			    "failed to allocate a nodePort: range is full");
			return;
		}
		held_add(want, idx);
		json_object_set_new(p, "nodePort", json_integer(PORT_MIN + idx));
	}
}

static void
default_str(json_t *o, const char *key, const char *v)
{
	if (!json_object_get(o, key))
		json_object_set_new(o, key, json_string(v));
}

/* What the Kubernetes service registry fills in beside the addresses. */
static void
spec_defaults(json_t *spec, bool node_port)
{
	const char *cip = json_string_value(json_object_get(spec, "clusterIP"));
	bool headless = cip && !strcmp(cip, "None");
	if (!headless || json_object_size(json_object_get(spec, "selector"))) {
		if (!json_object_get(spec, "ipFamilies"))
			json_object_set_new(spec, "ipFamilies", json_pack("[s]", "IPv4"));
		default_str(spec, "ipFamilyPolicy", "SingleStack");
	}
	default_str(spec, "internalTrafficPolicy", "Cluster");
	if (node_port)
		default_str(spec, "externalTrafficPolicy", "Cluster");
}

int
api_alloc_assign(struct api_alloc *alloc, const struct kind *k, const json_t *old,
    json_t *obj, bool dry_run, struct errlist *errs)
{
	if (strcmp(k->kind, "Service") != 0)
		return 0;
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return 0;
	struct api_alloc *a = alloc_get(alloc);
	struct held want = { 0 }, oh;
	size_t before = errs->n;
	held_of(old, &oh);
	assign_ip(a, old, spec, &want, errs);
	if (is_node_port_type(obj))
		assign_ports(a, old, spec, &want, errs);
	if (errs->n > before)
		return -EINVAL;
	spec_defaults(spec, is_node_port_type(obj));
	alloc_move(a, &oh, &want);
	if (dry_run)
		alloc_move(a, &want, &oh);
	return 0;
}

void
api_alloc_release(struct api_alloc *a, const struct kind *k, const json_t *obj)
{
	if (strcmp(k->kind, "Service") != 0)
		return;
	struct held h, none = { 0 };
	held_of(obj, &h);
	alloc_move(alloc_get(a), &h, &none);
}

void
api_alloc_revert(struct api_alloc *a, const struct kind *k, const json_t *old,
    const json_t *obj)
{
	if (strcmp(k->kind, "Service") != 0)
		return;
	struct held from, to;
	held_of(obj, &from);
	held_of(old, &to);
	alloc_move(alloc_get(a), &from, &to);
}
