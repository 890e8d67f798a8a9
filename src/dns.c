/* dns.c — the cluster DNS's answers as a pure function: a query and a view of
 * the Services and Endpoints -> a response, as CoreDNS's kubernetes plugin
 * answers for the cluster domain (A, headless, StatefulSet hostnames, SRV,
 * PTR, pods insecure, NXDOMAIN with the SOA); and the pods' resolv.conf.
 * Called by dns_server.c (answers) and the node agent (resolv.conf). */
#include "dns.h"
#include "obj.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_LABELS = 8 };

/* ---- building the response -------------------------------------------- */

static ldns_pkt *
reply_new(const ldns_pkt *q, ldns_pkt_rcode rcode)
{
	ldns_pkt *r = ldns_pkt_new();
	ldns_pkt_set_id(r, ldns_pkt_id(q));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
	ldns_pkt_set_rd(r, ldns_pkt_rd(q));
	ldns_pkt_set_cd(r, ldns_pkt_cd(q));
	ldns_pkt_set_ra(r, true);
	ldns_pkt_set_rcode(r, (uint8_t)rcode);
	ldns_rr_list *qs = ldns_pkt_question(q);
	for (size_t i = 0; qs && i < ldns_rr_list_rr_count(qs); i++)
		ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(qs, i)));
	if (ldns_pkt_edns(q))
		ldns_pkt_set_edns_udp_size(r, 1232);
	return r;
}

ldns_pkt *
dns_reply_error(const ldns_pkt *query, ldns_pkt_rcode rcode)
{
	return reply_new(query, rcode);
}

/* Adds "OWNER TTL IN TYPE RDATA" to section; an rdata ldns does not accept
 * (a malformed address in an object) is skipped. Returns 1 if added. */
static int
add_rr(ldns_pkt *r, ldns_pkt_section sec, const char *owner, const char *type,
    const char *fmt, ...) V6_PRINTF(5, 6);

static int
add_rr(ldns_pkt *r, ldns_pkt_section sec, const char *owner, const char *type,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *rdata = xvasprintf(fmt, ap);
	va_end(ap);
	char *text = xasprintf("%s. %d IN %s %s", owner, DNS_TTL, type, rdata);
	ldns_rr *rr = NULL;
	int ok = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK;
	if (ok)
		ldns_pkt_push_rr(r, sec, rr);
	free(text);
	free(rdata);
	return ok;
}

static void
add_soa(ldns_pkt *r, const char *domain)
{
	add_rr(r, LDNS_SECTION_AUTHORITY, domain, "SOA",
	    "ns.dns.%s. hostmaster.%s. %lld 7200 1800 86400 %d", domain, domain,
	    (long long)(time_now_ms() / 1000) & 0x7fffffff, DNS_TTL);
}

/* ---- reading the view --------------------------------------------------- */

static const json_t *
view_get(const json_t *map, const char *ns, const char *name)
{
	char *key = xasprintf("%s/%s", ns, name);
	const json_t *o = json_object_get(map, key);
	free(key);
	return o;
}

static bool
is_headless(const json_t *svc)
{
	return strcmp(obj_str(obj_get_path(svc, "spec"), "clusterIP"), "None") == 0;
}

/* "10-1-2-3" for 10.1.2.3, the name CoreDNS gives an endpoint without a
 * hostname. */
static void
dashed(const char *ip, char *out, size_t len)
{
	snprintf(out, len, "%s", ip);
	for (char *p = out; *p; p++)
		if (*p == '.' || *p == ':')
			*p = '-';
}

/* The DNS label of an endpoint address: its hostname, else the dashed IP. */
static void
ep_label(const json_t *addr, char *out, size_t len)
{
	const char *h = obj_str(addr, "hostname");
	if (*h)
		snprintf(out, len, "%s", h);
	else
		dashed(obj_str(addr, "ip"), out, len);
}

/* Calls fn for each ready address of every subset of ep, with the subset. */
typedef void (*addr_fn)(void *arg, const json_t *subset, const json_t *addr);

static void
ep_foreach(const json_t *ep, addr_fn fn, void *arg)
{
	size_t i, j;
	const json_t *s, *a;
	json_array_foreach(json_object_get(ep, "subsets"), i, s)
		json_array_foreach(json_object_get(s, "addresses"), j, a)
			fn(arg, s, a);
}

/* ---- the answers ------------------------------------------------------ */

struct ans {
	const struct dns_view *v;
	ldns_pkt *r;
	const char *qname;	/* lower case, no trailing dot */
	ldns_rr_type qtype;
	const char *svc, *ns;	/* the Service asked about */
	const char *host;	/* an endpoint's label, or NULL */
	const char *port, *proto;	/* SRV: without their '_', or NULL (every named port) */
	int n;			/* records added */
	int found;		/* endpoints matching host, whatever the type asked */
};

static bool
wants(const struct ans *a, ldns_rr_type t)
{
	return a->qtype == t || a->qtype == LDNS_RR_TYPE_ANY;
}

static void
a_of_addr(void *arg, const json_t *subset, const json_t *addr)
{
	struct ans *a = arg;
	char label[256];
	(void)subset;
	ep_label(addr, label, sizeof label);
	if (a->host && strcasecmp(a->host, label) != 0)
		return;
	a->found++;
	if (wants(a, LDNS_RR_TYPE_A))
		a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "A", "%s", obj_str(addr, "ip"));
}

static bool
port_matches(const struct ans *a, const json_t *port)
{
	const char *name = obj_str(port, "name"), *proto = obj_str(port, "protocol");
	if (!*name || (a->port && strcasecmp(a->port, name) != 0))
		return false;
	return !a->proto || strcasecmp(a->proto, *proto ? proto : "TCP") == 0;
}

/* SRV of a headless Service: one per named port and ready endpoint, the
 * target being the endpoint's own name (with its A in additional). */
static void
srv_of_addr(void *arg, const json_t *subset, const json_t *addr)
{
	struct ans *a = arg;
	char label[256];
	size_t i;
	const json_t *p;
	ep_label(addr, label, sizeof label);
	json_array_foreach(json_object_get(subset, "ports"), i, p) {
		if (!port_matches(a, p))
			continue;
		char *target = xasprintf("%s.%s.%s.svc.%s", label, a->svc, a->ns, a->v->domain);
		a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "SRV", "0 100 %lld %s.",
		    (long long)json_integer_value(json_object_get(p, "port")), target);
		add_rr(a->r, LDNS_SECTION_ADDITIONAL, target, "A", "%s", obj_str(addr, "ip"));
		free(target);
	}
}

static void
srv_of_service(struct ans *a, const json_t *svc, const json_t *ep)
{
	if (is_headless(svc)) {
		ep_foreach(ep, srv_of_addr, a);
		return;
	}
	size_t i;
	const json_t *p;
	const json_t *spec = json_object_get(svc, "spec");
	char *target = xasprintf("%s.%s.svc.%s", a->svc, a->ns, a->v->domain);
	int before = a->n;
	json_array_foreach(json_object_get(spec, "ports"), i, p)
		if (port_matches(a, p))
			a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "SRV", "0 100 %lld %s.",
			    (long long)json_integer_value(json_object_get(p, "port")), target);
	if (a->n > before)
		add_rr(a->r, LDNS_SECTION_ADDITIONAL, target, "A", "%s",
		    obj_str(spec, "clusterIP"));
	free(target);
}

/* NAME.NS.svc, HOST.NAME.NS.svc or _PORT._PROTO.NAME.NS.svc. Returns false
 * when the name does not exist (NXDOMAIN). */
static bool
answer_service(struct ans *a)
{
	const json_t *svc = view_get(a->v->services, a->ns, a->svc);
	const json_t *ep = view_get(a->v->endpoints, a->ns, a->svc);
	const json_t *spec = json_object_get(svc, "spec");
	if (!svc)
		return false;
	if (strcmp(obj_str(spec, "type"), "ExternalName") == 0) {
		if (a->host || a->port)
			return false;
		a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "CNAME", "%s.",
		    obj_str(spec, "externalName"));
		return true;
	}
	if (a->port) {
		srv_of_service(a, svc, ep);
		return a->n > 0;
	}
	if (a->host) {		/* only headless Services name their endpoints */
		if (!is_headless(svc))
			return false;
		ep_foreach(ep, a_of_addr, a);
		return a->found > 0;
	}
	if (wants(a, LDNS_RR_TYPE_SRV))
		srv_of_service(a, svc, ep);
	if (is_headless(svc))
		ep_foreach(ep, a_of_addr, a);
	else if (wants(a, LDNS_RR_TYPE_A))
		a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "A", "%s",
		    obj_str(spec, "clusterIP"));
	return true;
}

/* A-B-C-D.NS.pod: the address written in the name, as CoreDNS's
 * "pods insecure" mode (kubeadm's default) answers. */
static bool
answer_pod(struct ans *a, const char *label)
{
	char ip[64];
	snprintf(ip, sizeof ip, "%s", label);
	for (char *p = ip; *p; p++)
		if (*p == '-')
			*p = '.';
	ldns_rdf *rdf = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, ip);
	if (!rdf)
		return false;
	ldns_rdf_deep_free(rdf);
	if (wants(a, LDNS_RR_TYPE_A))
		a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "A", "%s", ip);
	return true;
}

/* Splits the part of qname before ".DOMAIN" into labels. Returns their
 * count, or -1 when qname is not in the domain. */
static int
split_labels(char *rel, const char *qname, const char *domain, char *labels[MAX_LABELS + 1])
{
	size_t ql = strlen(qname), dl = strlen(domain);
	if (ql == dl && strcmp(qname, domain) == 0)
		return 0;
	if (ql <= dl + 1 || qname[ql - dl - 1] != '.' || strcmp(qname + ql - dl, domain) != 0)
		return -1;
	memcpy(rel, qname, ql - dl - 1);
	rel[ql - dl - 1] = '\0';
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(rel, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
		if (n == MAX_LABELS)
			return MAX_LABELS + 1;	/* deeper than any name we have */
		labels[n++] = t;
	}
	return n;
}

static ldns_pkt *
answer_cluster(struct ans *a, char **l, int n)
{
	bool exists = false;
	if (n == 0) {
		exists = true;
		if (wants(a, LDNS_RR_TYPE_SOA)) {
			add_soa(a->r, a->v->domain);
			ldns_rr_list *auth = ldns_pkt_authority(a->r);
			ldns_pkt_push_rr_list(a->r, LDNS_SECTION_ANSWER, auth);	/* moves it */
			ldns_pkt_set_authority(a->r, ldns_rr_list_new());
			ldns_pkt_set_nscount(a->r, 0);
			ldns_rr_list_free(auth);
			a->n++;
		}
	} else if (n <= 2 && strcmp(l[n - 1], "svc") == 0) {
		exists = true;		/* svc.DOMAIN and NS.svc.DOMAIN: empty non-terminals */
	} else if (n >= 3 && n <= 5 && strcmp(l[n - 1], "svc") == 0) {
		a->svc = l[n - 3];
		a->ns = l[n - 2];
		if (n == 4) {
			a->host = l[0];
		} else if (n == 5) {
			if (l[0][0] != '_' || l[1][0] != '_')
				goto done;
			a->port = l[0] + 1;
			a->proto = l[1] + 1;
		}
		exists = answer_service(a);
	} else if (n == 3 && strcmp(l[2], "pod") == 0) {
		exists = answer_pod(a, l[0]);
	}
done:
	ldns_pkt_set_aa(a->r, true);
	if (!exists) {
		ldns_pkt_set_rcode(a->r, LDNS_RCODE_NXDOMAIN);
		ldns_rr_list_deep_free(ldns_pkt_answer(a->r));
		ldns_pkt_set_answer(a->r, ldns_rr_list_new());
		ldns_pkt_set_ancount(a->r, 0);
		ldns_rr_list_deep_free(ldns_pkt_additional(a->r));
		ldns_pkt_set_additional(a->r, ldns_rr_list_new());
		ldns_pkt_set_arcount(a->r, 0);
	}
	if (a->n == 0)		/* NXDOMAIN or no data: the SOA says for how long */
		add_soa(a->r, a->v->domain);
	return a->r;
}

/* PTR for D.C.B.A.in-addr.arpa: the Services whose cluster IP, and the
 * endpoints whose address, is A.B.C.D. NULL when none (forwarded). */
static ldns_pkt *
answer_ptr(struct ans *a)
{
	unsigned o[4];
	char tail[32], ip[32];
	if (sscanf(a->qname, "%u.%u.%u.%u.%31s", &o[3], &o[2], &o[1], &o[0], tail) != 5 ||
	    strcmp(tail, "in-addr.arpa") != 0 || o[0] > 255 || o[1] > 255 || o[2] > 255 ||
	    o[3] > 255)
		return NULL;
	snprintf(ip, sizeof ip, "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
	const char *key;
	const json_t *obj;
	json_object_foreach((json_t *)a->v->services, key, obj)
		if (strcmp(obj_str(obj_get_path(obj, "spec"), "clusterIP"), ip) == 0)
			a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "PTR", "%s.%s.svc.%s.",
			    obj_name(obj), obj_namespace(obj), a->v->domain);
	json_object_foreach((json_t *)a->v->endpoints, key, obj) {
		size_t i, j;
		const json_t *s, *addr;
		json_array_foreach(json_object_get(obj, "subsets"), i, s)
			json_array_foreach(json_object_get(s, "addresses"), j, addr) {
				char label[256];
				if (strcmp(obj_str(addr, "ip"), ip) != 0)
					continue;
				ep_label(addr, label, sizeof label);
				a->n += add_rr(a->r, LDNS_SECTION_ANSWER, a->qname, "PTR",
				    "%s.%s.%s.svc.%s.", label, obj_name(obj), obj_namespace(obj),
				    a->v->domain);
			}
	}
	if (a->n == 0)
		return NULL;
	ldns_pkt_set_aa(a->r, true);
	return a->r;
}

ldns_pkt *
dns_answer(const struct dns_view *v, const ldns_pkt *q)
{
	ldns_rr_list *qs = ldns_pkt_question(q);
	if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY || ldns_pkt_qr(q))
		return reply_new(q, LDNS_RCODE_NOTIMPL);
	if (!qs || ldns_rr_list_rr_count(qs) != 1)
		return reply_new(q, LDNS_RCODE_FORMERR);
	ldns_rr *qrr = ldns_rr_list_rr(qs, 0);
	char *name = ldns_rdf2str(ldns_rr_owner(qrr));
	if (!name)
		return reply_new(q, LDNS_RCODE_FORMERR);
	size_t len = strlen(name);
	for (size_t i = 0; i < len; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	struct ans a = { .v = v, .qname = name, .qtype = ldns_rr_get_type(qrr) };
	/* the presentation form escapes odd bytes (\\032): longer than the wire */
	char *rel = xmalloc(len + 1), *labels[MAX_LABELS + 1];
	ldns_pkt *r = NULL;
	int n = split_labels(rel, name, v->domain, labels);
	if (n >= 0 || str_has_suffix(name, ".in-addr.arpa")) {
		a.r = reply_new(q, LDNS_RCODE_NOERROR);
		r = n >= 0 ? answer_cluster(&a, labels, n) : answer_ptr(&a);
		if (!r)
			ldns_pkt_free(a.r);
	}
	free(rel);
	free(name);
	return r;
}

/* ---- resolv.conf ------------------------------------------------------ */

/* Appends the words after "KEY " on the host's lines starting with it. */
static void
host_words(const char *host, const char *key, json_t *out)
{
	size_t kl = strlen(key);
	for (const char *p = host; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > kl && strncmp(p, key, kl) == 0 && isspace((unsigned char)p[kl])) {
			char *line = xstrndup(p + kl, ll - kl), *save = NULL;
			for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r",
			    &save))
				json_array_append_new(out, json_string(t));
			free(line);
		}
		p = eol ? eol + 1 : NULL;
	}
}

static void
append_unique(json_t *arr, const json_t *more)
{
	size_t i, j;
	const json_t *m, *e;
	json_array_foreach(more, i, m) {
		bool dup = false;
		json_array_foreach(arr, j, e)
			dup = dup || json_equal(e, m);
		if (!dup && json_is_string(m))
			json_array_append(arr, (json_t *)m);
	}
}

static void
emit(struct buf *b, const char *key, const json_t *words, size_t max)
{
	size_t i;
	const json_t *w;
	if (json_array_size(words) == 0)
		return;
	if (strcmp(key, "nameserver") == 0) {	/* one per line, resolv.conf's form */
		json_array_foreach(words, i, w)
			if (i < max)
				buf_printf(b, "nameserver %s\n", json_string_value(w));
		return;
	}
	buf_puts(b, key);
	json_array_foreach(words, i, w)
		if (i < max)
			buf_printf(b, " %s", json_string_value(w));
	buf_putc(b, '\n');
}

/* dnsConfig.options [{name, value}] -> "name:value" words, replacing a host
 * or default option of the same name. */
static void
merge_options(json_t *opts, const json_t *extra)
{
	size_t i, j;
	const json_t *o;
	json_array_foreach(extra, i, o) {
		const char *name = obj_str(o, "name"), *val = obj_str(o, "value");
		if (!*name)
			continue;
		size_t nl = strlen(name);
		for (j = json_array_size(opts); j-- > 0;) {
			const char *have = json_string_value(json_array_get(opts, j));
			if (strncmp(have, name, nl) == 0 && (have[nl] == ':' || have[nl] == '\0'))
				json_array_remove(opts, j);
		}
		json_array_append_new(opts, *val ? json_sprintf("%s:%s", name, val) :
		    json_string(name));
	}
}

char *
pod_resolv_conf(const json_t *pod, const char *dns_ip, const char *domain,
    const char *host_resolv)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *policy = obj_str(spec, "dnsPolicy");
	const json_t *cfg = json_object_get(spec, "dnsConfig");
	bool host_net = json_is_true(json_object_get(spec, "hostNetwork"));
	json_t *ns = json_array(), *search = json_array(), *opts = json_array();
	bool cluster = dns_ip && (!*policy || strcmp(policy, "ClusterFirst") == 0 ||
	    strcmp(policy, "ClusterFirstWithHostNet") == 0) &&
	    !(host_net && strcmp(policy, "ClusterFirstWithHostNet") != 0);
	if (strcmp(policy, "None") != 0) {
		if (cluster) {
			json_array_append_new(ns, json_string(dns_ip));
			json_array_append_new(search, json_sprintf("%s.svc.%s",
			    obj_namespace(pod), domain));
			json_array_append_new(search, json_sprintf("svc.%s", domain));
			json_array_append_new(search, json_string(domain));
			json_array_append_new(opts, json_string("ndots:5"));
		} else {
			host_words(host_resolv, "nameserver", ns);
		}
		json_t *hs = json_array();
		host_words(host_resolv, "search", hs);
		host_words(host_resolv, "domain", hs);
		append_unique(search, hs);
		json_decref(hs);
		if (!cluster)
			host_words(host_resolv, "options", opts);
	}
	append_unique(ns, json_object_get(cfg, "nameservers"));
	append_unique(search, json_object_get(cfg, "searches"));
	merge_options(opts, json_object_get(cfg, "options"));
	struct buf b = { 0 };
	/* glibc reads 3 nameservers and (since 2.26) any number of search
	 * domains; kubelet caps search at 32 */
	emit(&b, "search", search, 32);
	emit(&b, "nameserver", ns, 3);
	emit(&b, "options", opts, 64);
	json_decref(ns);
	json_decref(search);
	json_decref(opts);
	return buf_steal(&b);
}

char *
pod_resolv_text(const json_t *pod, const char *dns_ip)
{
	char *host = NULL, *text;
	size_t len;
	if (file_read_all("/etc/resolv.conf", &host, &len) < 0)
		host = NULL;
	text = pod_resolv_conf(pod, dns_ip, DNS_CLUSTER_DOMAIN, host);
	free(host);
	return text;
}
