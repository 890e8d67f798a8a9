/* quantity.h — Kubernetes resource quantities ("250m", "3141592n", "12Mi",
 * "1.5G", "1e3"): one parser for the schema's validation, the node's limits
 * and `v6 top`'s arithmetic. */
#ifndef V6_QUANTITY_H
#define V6_QUANTITY_H

#include <stdint.h>

/* s as a number (a fraction is kept: "500m" -> 0.5). 0 or -EINVAL. */
int quantity_parse(const char *s, double *out);

/* s scaled to 10^scale units and rounded up as resource.Quantity's
 * ScaledValue does (scale -3: millis, -9: nanos, 0: units), exactly.
 * 0, -EINVAL or -ERANGE (beyond int64). */
int quantity_scaled(const char *s, int scale, int64_t *out);

#endif
