/* mem_trim.h — the heap trimmed once a burst of store writes is over
 * (mem_trim.c); started by the server after its parts. */
#ifndef V6_MEM_TRIM_H
#define V6_MEM_TRIM_H

#include <uv.h>

struct mem_trim;
struct store;

/* mem_trim.c */
/* Watches st's writes on loop; 0 or a negative errno from the watch. */
int mem_trim_start(uv_loop_t *loop, struct store *st, struct mem_trim **out);
/* Stops the watch and frees m once its timer is closed; NULL is fine. */
void mem_trim_stop(struct mem_trim *m);

#endif
