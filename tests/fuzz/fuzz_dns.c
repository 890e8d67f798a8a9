/* fuzz_dns.c — libFuzzer target for the cluster DNS's input path: a UDP or
 * TCP message as ldns reads it (ldns_wire2pkt), then dns_answer over a
 * fixed view of Services and Endpoints (src/dns.c), as dns_server.c does.
 * Build and run: tests/fuzz/Makefile, docs/fuzzing.md.
 *
 * Oracle besides the sanitizers: every answer (or NULL, "forward") is a
 * response to the query: QR set, same id, the question echoed; it encodes
 * to wire form and that form reads back with the same rcode and counts. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *svcs, *eps;

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_dns: %s\n", what);
		abort();
	}
}

static void
setup(void)
{
	svcs = json_loads("{\"shop/web\":{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},"
	    "\"spec\":{\"clusterIP\":\"10.96.0.20\",\"ports\":[{\"name\":\"http\",\"port\":80}]}},"
	    "\"shop/db\":{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},\"spec\":"
	    "{\"clusterIP\":\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}},"
	    "\"shop/ext\":{\"metadata\":{\"name\":\"ext\",\"namespace\":\"shop\"},\"spec\":"
	    "{\"type\":\"ExternalName\",\"externalName\":\"example.org\"}}}", 0, NULL);
	eps = json_loads("{\"shop/db\":{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},"
	    "\"subsets\":[{\"addresses\":[{\"ip\":\"10.88.0.5\",\"hostname\":\"db-0\"},"
	    "{\"ip\":\"10.88.0.6\"}],\"ports\":[{\"name\":\"pg\",\"port\":5432,\"protocol\":"
	    "\"TCP\"}]}]}}", 0, NULL);
	check(svcs && eps, "bad fixture");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!svcs)
		setup();
	ldns_pkt *q = NULL;
	if (ldns_wire2pkt(&q, data, size) != LDNS_STATUS_OK)
		return 0;
	struct dns_view v = { svcs, eps, DNS_CLUSTER_DOMAIN };
	ldns_pkt *r = ldns_pkt_qr(q) ? NULL : dns_answer(&v, q);
	if (r) {
		uint8_t *wire = NULL;
		size_t len = 0;
		ldns_pkt *back = NULL;
		check(ldns_pkt_qr(r) && ldns_pkt_id(r) == ldns_pkt_id(q), "not a response to q");
		check(ldns_pkt2wire(&wire, r, &len) == LDNS_STATUS_OK, "answer does not encode");
		check(ldns_wire2pkt(&back, wire, len) == LDNS_STATUS_OK, "answer does not decode");
		check(ldns_pkt_get_rcode(back) == ldns_pkt_get_rcode(r) &&
		    ldns_pkt_ancount(back) == ldns_pkt_ancount(r) &&
		    ldns_pkt_qdcount(back) == ldns_pkt_qdcount(r), "answer changed on the wire");
		free(wire);
		ldns_pkt_free(back);
		ldns_pkt_free(r);
	}
	ldns_pkt_free(q);
	return 0;
}
