/* node_ipam.c — pod IP addresses for the process runtime: one loopback
 * address per pod from the pod range, 127.1.0.0/16 unless `v6 server
 * --pod-cidr` says otherwise (nipam_set_cidr). Allocation
 * is next-fit from a rotating cursor, so a released address is reused only
 * after every other one was handed out. The agent rebuilds the map at
 * start-up from the pods' status.podIP (nipam_reserve). */
#include "node_pod.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPAM_MAX	65536u		/* a /16, the largest range accepted */

/* The range new maps use: process-wide, set once from the server's flags. */
static uint32_t range_base = 0x7f010000u;	/* 127.1.0.0 */
static uint32_t range_size = IPAM_MAX;

struct nipam {
	uint8_t used[IPAM_MAX / 8];
	uint32_t base, size;
	uint32_t cursor;
};

int
nipam_set_cidr(const char *cidr)
{
	uint32_t base;
	unsigned prefix;
	if (util_loopback_cidr(cidr, &base, &prefix) < 0)
		return -EINVAL;
	range_base = base;
	range_size = 1u << (32 - prefix);
	return 0;
}

static bool
usable(const struct nipam *ip, uint32_t off)
{
	return off != 0 && off != ip->size - 1;	/* network and broadcast */
}

static bool
bit_get(const struct nipam *ip, uint32_t off)
{
	return ip->used[off / 8] & (1u << (off % 8));
}

static void
bit_set(struct nipam *ip, uint32_t off, bool on)
{
	if (on)
		ip->used[off / 8] |= (uint8_t)(1u << (off % 8));
	else
		ip->used[off / 8] &= (uint8_t)~(1u << (off % 8));
}

struct nipam *
nipam_new_at(uint32_t cursor)
{
	struct nipam *ip = xcalloc(1, sizeof(struct nipam));
	ip->base = range_base;
	ip->size = range_size;
	ip->cursor = cursor % ip->size;
	return ip;
}

/* Each server starts at a random place, so that two V6 servers on one
 * machine (or pods left behind by another) rarely want the same address. */
struct nipam *
nipam_new(void)
{
	return nipam_new_at(util_random32());
}

void
nipam_free(struct nipam *ip)
{
	free(ip);
}

static int
offset_of(const struct nipam *ip, const char *addr, uint32_t *off)
{
	struct in_addr a;
	if (!addr || inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	uint32_t h = ntohl(a.s_addr);
	if ((h & ~(ip->size - 1)) != ip->base || !usable(ip, h - ip->base))
		return -ERANGE;
	*off = h - ip->base;
	return 0;
}

int
nipam_reserve(struct nipam *ip, const char *addr)
{
	uint32_t off;
	int rc = offset_of(ip, addr, &off);
	if (rc < 0)
		return rc;
	if (bit_get(ip, off))
		return -EEXIST;
	bit_set(ip, off, true);
	if (off >= ip->cursor)
		ip->cursor = off;
	return 0;
}

int
nipam_alloc(struct nipam *ip, char *out)
{
	for (uint32_t n = 0; n < ip->size; n++) {
		uint32_t off = (ip->cursor + 1 + n) % ip->size;
		if (!usable(ip, off) || bit_get(ip, off))
			continue;
		bit_set(ip, off, true);
		ip->cursor = off;
		uint32_t h = ip->base + off;
		snprintf(out, 16, "%u.%u.%u.%u", h >> 24, (h >> 16) & 0xffu, (h >> 8) & 0xffu,
		    h & 0xffu);
		return 0;
	}
	return -ENOSPC;
}

void
nipam_release(struct nipam *ip, const char *addr)
{
	uint32_t off;
	if (offset_of(ip, addr, &off) == 0)
		bit_set(ip, off, false);
}
