/* Unit tests of the cluster DNS's answers (dns_answer: a query and a view of
 * Services and Endpoints -> the response CoreDNS's kubernetes plugin would
 * give) and of the pods' resolv.conf (pod_resolv_conf). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "util.h"

/* ---- fixtures ---------------------------------------------------------- */

static json_t *svcs, *eps;

static void
add_json(json_t *map, const char *text)
{
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);
	if (!o)
		fail_msg("bad fixture: %s", e.text);
	char *key = xasprintf("%s/%s", json_string_value(json_object_get(json_object_get(o,
	    "metadata"), "namespace")), json_string_value(json_object_get(json_object_get(o,
	    "metadata"), "name")));
	json_object_set_new(map, key, o);
	free(key);
}

static int
setup(void **state)
{
	(void)state;
	svcs = json_object();
	eps = json_object();
	add_json(svcs, "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":"
	    "{\"clusterIP\":\"10.96.0.20\",\"ports\":[{\"name\":\"http\",\"port\":80,"
	    "\"protocol\":\"TCP\"},{\"port\":81}]}}");
	add_json(svcs, "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},\"spec\":"
	    "{\"clusterIP\":\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}");
	add_json(eps, "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},\"subsets\":["
	    "{\"addresses\":[{\"ip\":\"10.88.0.5\",\"hostname\":\"db-0\"},{\"ip\":\"10.88.0.6\","
	    "\"hostname\":\"db-1\"},{\"ip\":\"10.88.0.7\"}],\"notReadyAddresses\":[{\"ip\":"
	    "\"10.88.0.9\",\"hostname\":\"db-2\"}],\"ports\":[{\"name\":\"pg\",\"port\":5432,"
	    "\"protocol\":\"TCP\"}]}]}");
	add_json(eps, "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"subsets\":["
	    "{\"addresses\":[{\"ip\":\"10.88.0.8\"}],\"ports\":[{\"name\":\"http\",\"port\":"
	    "8080,\"protocol\":\"TCP\"}]}]}");
	add_json(svcs, "{\"metadata\":{\"name\":\"ext\",\"namespace\":\"shop\"},\"spec\":"
	    "{\"type\":\"ExternalName\",\"externalName\":\"example.org\"}}");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_decref(svcs);
	json_decref(eps);
	return 0;
}

struct res {
	ldns_pkt_rcode rcode;
	bool aa;
	char *answer;		/* "TYPE RDATA\n" per record, sorted, NULL if forwarded */
	char *authority;	/* the types in authority, space separated */
	char *additional;	/* "NAME TYPE RDATA\n" per record */
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "TYPE RDATA" lines of a section, sorted; with_owner puts the owner first. */
static char *
section(const ldns_rr_list *l, bool with_owner)
{
	size_t n = ldns_rr_list_rr_count(l);
	char **lines = xcalloc(n + 1, sizeof *lines);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		char *type = ldns_rr_type2str(ldns_rr_get_type(rr));
		struct buf b = BUF_INIT;
		if (with_owner) {
			char *o = ldns_rdf2str(ldns_rr_owner(rr));
			buf_printf(&b, "%s ", o);
			free(o);
		}
		buf_puts(&b, type);
		for (size_t j = 0; j < ldns_rr_rd_count(rr); j++) {
			char *rd = ldns_rdf2str(ldns_rr_rdf(rr, j));
			buf_printf(&b, " %s", rd);
			free(rd);
		}
		assert_int_equal(ldns_rr_ttl(rr), DNS_TTL);
		lines[i] = buf_steal(&b);
		free(type);
	}
	qsort(lines, n, sizeof *lines, cmp_str);
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		buf_printf(&out, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	return buf_steal(&out);
}

static struct res
ask(const char *name, ldns_rr_type type)
{
	struct dns_view v = { svcs, eps, DNS_CLUSTER_DOMAIN };
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN,
	    LDNS_RD);
	ldns_pkt_set_id(q, 4242);
	/* through the wire and back, as the server gets it */
	uint8_t *wire;
	size_t len;
	ldns_pkt *back = NULL;
	assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
	assert_int_equal(ldns_wire2pkt(&back, wire, len), LDNS_STATUS_OK);
	free(wire);
	ldns_pkt *r = dns_answer(&v, back);
	struct res out = { 0 };
	if (r) {
		assert_int_equal(ldns_pkt_id(r), 4242);
		assert_true(ldns_pkt_qr(r));
		assert_int_equal(ldns_pkt_qdcount(r), 1);
		/* the response must encode */
		assert_int_equal(ldns_pkt2wire(&wire, r, &len), LDNS_STATUS_OK);
		free(wire);
		out.rcode = ldns_pkt_get_rcode(r);
		out.aa = ldns_pkt_aa(r);
		out.answer = section(ldns_pkt_answer(r), false);
		out.authority = section(ldns_pkt_authority(r), false);
		out.additional = section(ldns_pkt_additional(r), true);
		ldns_pkt_free(r);
	}
	ldns_pkt_free(q);
	ldns_pkt_free(back);
	return out;
}

static void
res_free(struct res *r)
{
	free(r->answer);
	free(r->authority);
	free(r->additional);
}

/* ---- answers ------------------------------------------------------------ */

static void
test_service_a_is_its_cluster_ip(void **state)
{
	(void)state;
	struct res r = ask("web.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_true(r.aa);
	assert_string_equal(r.answer, "A 10.96.0.20\n");
	res_free(&r);
	/* names are case-insensitive */
	r = ask("WEB.Shop.SVC.cluster.LOCAL.", LDNS_RR_TYPE_A);
	assert_string_equal(r.answer, "A 10.96.0.20\n");
	res_free(&r);
}

static void
test_aaaa_of_a_service_is_no_data_with_soa(void **state)
{
	(void)state;
	struct res r = ask("web.shop.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_string_equal(r.answer, "");
	assert_true(str_has_prefix(r.authority, "SOA ns.dns.cluster.local. "
	    "hostmaster.cluster.local. "));
	res_free(&r);
}

static void
test_headless_service_answers_each_ready_endpoint(void **state)
{
	(void)state;
	struct res r = ask("db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	/* 10.88.0.9 is not ready: left out */
	assert_string_equal(r.answer, "A 10.88.0.5\nA 10.88.0.6\nA 10.88.0.7\n");
	res_free(&r);
}

static void
test_statefulset_pod_by_hostname_and_dashed_ip(void **state)
{
	(void)state;
	struct res r = ask("db-1.db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_string_equal(r.answer, "A 10.88.0.6\n");
	res_free(&r);
	r = ask("10-88-0-7.db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_string_equal(r.answer, "A 10.88.0.7\n");
	res_free(&r);
	/* not ready, or not a headless Service: no such name */
	r = ask("db-2.db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
	res_free(&r);
	r = ask("10-88-0-8.web.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
	res_free(&r);
	/* the name exists; it has no AAAA */
	r = ask("db-0.db.shop.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_string_equal(r.answer, "");
	res_free(&r);
}

static void
test_srv_for_named_ports(void **state)
{
	(void)state;
	struct res r = ask("_http._tcp.web.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_string_equal(r.answer, "SRV 0 100 80 web.shop.svc.cluster.local.\n");
	assert_string_equal(r.additional, "web.shop.svc.cluster.local. A 10.96.0.20\n");
	res_free(&r);
	r = ask("_pg._tcp.db.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV);
	assert_string_equal(r.answer, "SRV 0 100 5432 10-88-0-7.db.shop.svc.cluster.local.\n"
	    "SRV 0 100 5432 db-0.db.shop.svc.cluster.local.\n"
	    "SRV 0 100 5432 db-1.db.shop.svc.cluster.local.\n");
	assert_string_equal(r.additional, "10-88-0-7.db.shop.svc.cluster.local. A 10.88.0.7\n"
	    "db-0.db.shop.svc.cluster.local. A 10.88.0.5\n"
	    "db-1.db.shop.svc.cluster.local. A 10.88.0.6\n");
	res_free(&r);
	/* wrong protocol, unknown port name */
	r = ask("_http._udp.web.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV);
	assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
	res_free(&r);
	r = ask("_grpc._tcp.web.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV);
	assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
	res_free(&r);
}

static void
test_ptr_for_cluster_ips_and_endpoints(void **state)
{
	(void)state;
	struct res r = ask("20.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);
	assert_string_equal(r.answer, "PTR web.shop.svc.cluster.local.\n");
	res_free(&r);
	r = ask("5.0.88.10.in-addr.arpa.", LDNS_RR_TYPE_PTR);
	assert_string_equal(r.answer, "PTR db-0.db.shop.svc.cluster.local.\n");
	res_free(&r);
	r = ask("8.0.88.10.in-addr.arpa.", LDNS_RR_TYPE_PTR);
	assert_string_equal(r.answer, "PTR 10-88-0-8.web.shop.svc.cluster.local.\n");
	res_free(&r);
	/* an address V6 does not know goes upstream */
	r = ask("1.1.1.1.in-addr.arpa.", LDNS_RR_TYPE_PTR);
	assert_null(r.answer);
}

static void
test_unknown_names_in_the_domain_are_nxdomain_with_soa(void **state)
{
	(void)state;
	static const char *const names[] = { "nope.shop.svc.cluster.local.",
		"web.other.svc.cluster.local.", "a.b.c.d.web.shop.svc.cluster.local.",
		"x.cluster.local.", "web.shop.cluster.local." };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct res r = ask(names[i], LDNS_RR_TYPE_A);
		assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
		assert_true(r.aa);
		assert_string_equal(r.answer, "");
		assert_true(str_has_prefix(r.authority, "SOA ns.dns.cluster.local."));
		res_free(&r);
	}
}

static void
test_other_names_are_forwarded(void **state)
{
	(void)state;
	struct res r = ask("example.org.", LDNS_RR_TYPE_A);
	assert_null(r.answer);
	r = ask("cluster.local.example.org.", LDNS_RR_TYPE_A);
	assert_null(r.answer);
	r = ask("xcluster.local.", LDNS_RR_TYPE_A);
	assert_null(r.answer);
}

static void
test_external_name_is_a_cname_and_pods_insecure(void **state)
{
	(void)state;
	struct res r = ask("ext.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_string_equal(r.answer, "CNAME example.org.\n");
	res_free(&r);
	r = ask("10-88-0-5.shop.pod.cluster.local.", LDNS_RR_TYPE_A);
	assert_string_equal(r.answer, "A 10.88.0.5\n");
	res_free(&r);
	r = ask("cluster.local.", LDNS_RR_TYPE_SOA);
	assert_true(str_has_prefix(r.answer, "SOA ns.dns.cluster.local."));
	assert_string_equal(r.authority, "");
	res_free(&r);
}

static void
test_endpoints_change_the_answer(void **state)
{
	(void)state;
	json_object_del(eps, "shop/db");
	struct res r = ask("db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NOERROR);	/* the Service is there, no pods */
	assert_string_equal(r.answer, "");
	res_free(&r);
	json_object_del(svcs, "shop/web");
	r = ask("web.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.rcode, LDNS_RCODE_NXDOMAIN);
	res_free(&r);
}

static void
test_garbage_questions(void **state)
{
	(void)state;
	struct dns_view v = { svcs, eps, DNS_CLUSTER_DOMAIN };
	ldns_pkt *q = ldns_pkt_new();		/* no question */
	ldns_pkt *r = dns_answer(&v, q);
	assert_non_null(r);
	assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
	ldns_pkt_free(r);
	ldns_pkt_set_opcode(q, LDNS_PACKET_UPDATE);
	r = dns_answer(&v, q);
	assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
	ldns_pkt_free(r);
	ldns_pkt_free(q);
}

/* ---- resolv.conf -------------------------------------------------------- */

static const char host_resolv[] = "# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
    "search corp.example\noptions edns0 timeout:2\n";

static char *
resolv_of(const char *pod_json, const char *dns)
{
	json_t *pod = json_loads(pod_json, 0, NULL);
	assert_non_null(pod);
	char *out = pod_resolv_conf(pod, dns, "cluster.local", host_resolv);
	json_decref(pod);
	return out;
}

static void
test_resolv_conf_cluster_first(void **state)
{
	(void)state;
	char *s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{}}", "10.96.0.10");
	assert_string_equal(s, "search shop.svc.cluster.local svc.cluster.local cluster.local "
	    "corp.example\nnameserver 10.96.0.10\noptions ndots:5\n");
	free(s);
	/* no cluster DNS: the host's */
	s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{}}", NULL);
	assert_string_equal(s, "search corp.example\nnameserver 192.0.2.53\n"
	    "nameserver 192.0.2.54\noptions edns0 timeout:2\n");
	free(s);
}

static void
test_resolv_conf_default_none_and_dns_config(void **state)
{
	(void)state;
	char *s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{\"dnsPolicy\":"
	    "\"Default\"}}", "10.96.0.10");
	assert_string_equal(s, "search corp.example\nnameserver 192.0.2.53\n"
	    "nameserver 192.0.2.54\noptions edns0 timeout:2\n");
	free(s);
	s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{\"dnsPolicy\":\"None\","
	    "\"dnsConfig\":{\"nameservers\":[\"1.2.3.4\"],\"searches\":[\"a.example\"],"
	    "\"options\":[{\"name\":\"ndots\",\"value\":\"2\"},{\"name\":\"edns0\"}]}}}",
	    "10.96.0.10");
	assert_string_equal(s, "search a.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n");
	free(s);
	/* dnsConfig merges into ClusterFirst, its options replace same-named ones */
	s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{\"dnsConfig\":"
	    "{\"searches\":[\"a.example\"],\"options\":[{\"name\":\"ndots\",\"value\":\"1\"}]}}}",
	    "10.96.0.10");
	assert_string_equal(s, "search shop.svc.cluster.local svc.cluster.local cluster.local "
	    "corp.example a.example\nnameserver 10.96.0.10\noptions ndots:1\n");
	free(s);
	/* hostNetwork pods with ClusterFirst get the host's, as kubelet does */
	s = resolv_of("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{\"hostNetwork\":true}}",
	    "10.96.0.10");
	assert_true(str_has_prefix(s, "search corp.example\nnameserver 192.0.2.53\n"));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_a_is_its_cluster_ip),
		cmocka_unit_test(test_aaaa_of_a_service_is_no_data_with_soa),
		cmocka_unit_test(test_headless_service_answers_each_ready_endpoint),
		cmocka_unit_test(test_statefulset_pod_by_hostname_and_dashed_ip),
		cmocka_unit_test(test_srv_for_named_ports),
		cmocka_unit_test(test_ptr_for_cluster_ips_and_endpoints),
		cmocka_unit_test(test_unknown_names_in_the_domain_are_nxdomain_with_soa),
		cmocka_unit_test(test_other_names_are_forwarded),
		cmocka_unit_test(test_external_name_is_a_cname_and_pods_insecure),
		cmocka_unit_test(test_endpoints_change_the_answer),
		cmocka_unit_test(test_garbage_questions),
		cmocka_unit_test(test_resolv_conf_cluster_first),
		cmocka_unit_test(test_resolv_conf_default_none_and_dns_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
