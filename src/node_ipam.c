/* node_ipam.c — pod IP addresses for the process runtime: one loopback
 * address per pod from 127.1.0.0/16 (127.1.0.1 - 127.1.255.254). Allocation
 * is next-fit from a rotating cursor, so a released address is reused only
 * after every other one was handed out. The agent rebuilds the map at
 * start-up from the pods' status.podIP (nipam_reserve). */
#include "node_pod.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPAM_BASE	0x7f010000u	/* 127.1.0.0 */
#define IPAM_SIZE	65536u

struct nipam {
	uint8_t used[IPAM_SIZE / 8];
	uint32_t cursor;
};

static bool
usable(uint32_t off)
{
	return off != 0 && off != IPAM_SIZE - 1;	/* .0.0 and .255.255 */
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
	ip->cursor = cursor % IPAM_SIZE;
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
offset_of(const char *addr, uint32_t *off)
{
	struct in_addr a;
	if (!addr || inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	uint32_t h = ntohl(a.s_addr);
	if ((h & 0xffff0000u) != IPAM_BASE || !usable(h & 0xffffu))
		return -ERANGE;
	*off = h & 0xffffu;
	return 0;
}

int
nipam_reserve(struct nipam *ip, const char *addr)
{
	uint32_t off;
	int rc = offset_of(addr, &off);
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
	for (uint32_t n = 0; n < IPAM_SIZE; n++) {
		uint32_t off = (ip->cursor + 1 + n) % IPAM_SIZE;
		if (!usable(off) || bit_get(ip, off))
			continue;
		bit_set(ip, off, true);
		ip->cursor = off;
		snprintf(out, 16, "127.1.%u.%u", off >> 8, off & 0xffu);
		return 0;
	}
	return -ENOSPC;
}

void
nipam_release(struct nipam *ip, const char *addr)
{
	uint32_t off;
	if (offset_of(addr, &off) == 0)
		bit_set(ip, off, false);
}
