/* vpa_hist.c — the VPA recommender's arithmetic, as upstream's
 * (autoscaler/vertical-pod-autoscaler/pkg/recommender/util and model):
 * exponential decaying histograms, the per-container aggregate with one
 * memory peak per window and OOM bumps, checkpoints, and the percentile
 * estimators with margin, confidence and minimums. Pure; ctrl_vpa.c feeds it. */
#include "vpa.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATIO 1.05
#define EPSILON 0.0001
#define MAX_DECAY_EXPONENT 100
#define HOUR_MS 3600000LL
#define MIN_SAMPLE_WEIGHT 0.1
#define MAX_AMOUNT 1e14		/* upstream's MaxResourceAmount (milli-cores, bytes) */

void
vpa_hist_init(struct vpa_hist *h, enum vpa_res r, int64_t half_life_ms)
{
	memset(h, 0, sizeof *h);
	h->first = r == VPA_CPU ? 0.01 : 1e7;
	h->min_b = VPA_NBUCKETS - 1;
	h->max_b = 0;
	h->half_life_ms = half_life_ms;
}

int
vpa_hist_bucket(const struct vpa_hist *h, double v)
{
	if (v < h->first)
		return 0;
	int b = (int)(log(v * (RATIO - 1) / h->first + 1) / log(RATIO));
	return b >= VPA_NBUCKETS ? VPA_NBUCKETS - 1 : b;
}

double
vpa_hist_bucket_start(const struct vpa_hist *h, int b)
{
	return b == 0 ? 0 : h->first * (pow(RATIO, b) - 1) / (RATIO - 1);
}

bool
vpa_hist_empty(const struct vpa_hist *h)
{
	return h->w[h->min_b] < EPSILON;
}

static void
update_range(struct vpa_hist *h)
{
	int lo = VPA_NBUCKETS - 1, hi = 0;
	for (int b = 0; b < VPA_NBUCKETS; b++)
		if (h->w[b] >= EPSILON) {
			lo = b < lo ? b : lo;
			hi = b;
		}
	h->min_b = lo;
	h->max_b = hi;
}

static void
scale(struct vpa_hist *h, double f)
{
	for (int b = 0; b < VPA_NBUCKETS; b++)
		h->w[b] *= f;
	h->total *= f;
	update_range(h);
}

/* upstream's decayFactor: t truncated to the hour; the reference moves
 * (whole half-lives) once t is 100 half-lives past it, so weights stay finite. */
static double
decay(struct vpa_hist *h, int64_t t_ms)
{
	int64_t t = t_ms - t_ms % HOUR_MS;
	if (t_ms > h->ref_ms + h->half_life_ms * MAX_DECAY_EXPONENT) {
		int64_t ref = (t + h->half_life_ms / 2) / h->half_life_ms * h->half_life_ms;
		double e = round((double)(h->ref_ms - ref) / (double)h->half_life_ms);
		scale(h, ldexp(1.0, (int)fmax(e, -1074)));
		h->ref_ms = ref;
	}
	return exp2((double)(t - h->ref_ms) / (double)h->half_life_ms);
}

void
vpa_hist_add(struct vpa_hist *h, double v, double weight, int64_t t_ms)
{
	if (weight < 0)
		return;
	weight *= decay(h, t_ms);
	int b = vpa_hist_bucket(h, v);
	h->w[b] += weight;
	h->total += weight;
	if (b < h->min_b && h->w[b] >= EPSILON)
		h->min_b = b;
	if (b > h->max_b && h->w[b] >= EPSILON)
		h->max_b = b;
}

void
vpa_hist_sub(struct vpa_hist *h, double v, double weight, int64_t t_ms)
{
	if (weight < 0)
		return;
	weight *= decay(h, t_ms);
	int b = vpa_hist_bucket(h, v);
	if (h->w[b] < weight + EPSILON) {
		h->total -= h->w[b];
		h->w[b] = 0;
		update_range(h);
	} else {
		h->w[b] -= weight;
		h->total -= weight;
	}
}

double
vpa_hist_percentile(const struct vpa_hist *h, double p)
{
	if (vpa_hist_empty(h))
		return 0;
	double sum = 0, threshold = p * h->total;
	int b = h->min_b;
	for (; b < h->max_b; b++) {
		sum += h->w[b];
		if (sum >= threshold)
			break;
	}
	return vpa_hist_bucket_start(h, b < VPA_NBUCKETS - 1 ? b + 1 : b);
}

json_t *
vpa_hist_save(const struct vpa_hist *h)
{
	json_t *bw = json_object();
	double max = 0;
	for (int b = h->min_b; b <= h->max_b; b++)
		max = h->w[b] > max ? h->w[b] : max;
	for (int b = h->min_b; max > 0 && b <= h->max_b; b++) {
		long w = lround(h->w[b] * VPA_CHECKPOINT_WEIGHT / max);
		char key[16];
		snprintf(key, sizeof key, "%d", b);
		if (w > 0)
			json_object_set_new(bw, key, json_integer(w));
	}
	return json_pack("{s:o, s:o, s:f}", "referenceTimestamp", obj_time_json(h->ref_ms),
	    "bucketWeights", bw, "totalWeight", h->total);
}

int
vpa_hist_load(struct vpa_hist *h, const json_t *cp)
{
	const json_t *bw = json_object_get(cp, "bucketWeights"), *w;
	const char *key;
	double sum = 0, total = json_number_value(json_object_get(cp, "totalWeight"));
	json_object_foreach((json_t *)bw, key, w) {
		char *end;
		long b = strtol(key, &end, 10);
		if (*end || b < 0 || b >= VPA_NBUCKETS || !json_is_integer(w) ||
		    json_integer_value(w) < 0)
			return -EINVAL;
		sum += (double)json_integer_value(w);
	}
	if (!(total >= 0) || !isfinite(total))
		return -EINVAL;
	h->ref_ms = obj_time_ms(json_object_get(cp, "referenceTimestamp"));
	if (sum == 0)
		return 0;
	json_object_foreach((json_t *)bw, key, w)
		h->w[atoi(key)] += (double)json_integer_value(w) * total / sum;
	h->total += total;
	update_range(h);
	return 0;
}

/* ---- the aggregate per container ---------------------------------------- */

void
vpa_config_default(struct vpa_config *cfg)
{
	*cfg = (struct vpa_config){ .cpu_half_life_ms = 24 * HOUR_MS,
		.mem_half_life_ms = 24 * HOUR_MS, .mem_window_ms = 24 * HOUR_MS,
		.history_ms = 8 * 24 * HOUR_MS,
		.margin = 0.15, .p_target = 0.9, .p_lower = 0.5, .p_upper = 0.95,
		.pod_min = { 0.025, 250.0 * 1024 * 1024 }, .oom_ratio = 1.2,
		.oom_min_bump = 100.0 * 1024 * 1024, .confidence = true };
}

void
vpa_state_init(struct vpa_state *s, const struct vpa_config *cfg)
{
	memset(s, 0, sizeof *s);
	vpa_hist_init(&s->cpu, VPA_CPU, cfg->cpu_half_life_ms);
	vpa_hist_init(&s->mem, VPA_MEM, cfg->mem_half_life_ms);
}

void
vpa_state_add_cpu(struct vpa_state *s, double cores, double request, int64_t t_ms)
{
	if (cores < 0)
		return;
	vpa_hist_add(&s->cpu, cores, fmax(request, MIN_SAMPLE_WEIGHT), t_ms);
	if (t_ms > s->last_ms)
		s->last_ms = t_ms;
	if (!s->first_ms || t_ms < s->first_ms)
		s->first_ms = t_ms;
	s->seen_ms = t_ms > s->seen_ms ? t_ms : s->seen_ms;
	s->samples++;
}

/* upstream's ContainerState.addMemorySample: the window's peak replaces
 * the one it had in the histogram; a sample past the window opens the next. */
static bool
add_mem(struct vpa_state *s, struct vpa_peak *pk, double bytes, int64_t t_ms, bool oom,
    const struct vpa_config *cfg)
{
	if (bytes < 0 || (!oom && t_ms < pk->last_mem_ms))
		return false;
	pk->last_mem_ms = t_ms;
	s->seen_ms = t_ms > s->seen_ms ? t_ms : s->seen_ms;
	if (!pk->win_end_ms)
		pk->win_end_ms = t_ms;
	bool add = false;
	double old = fmax(pk->mem_peak, pk->oom_peak);
	if (t_ms < pk->win_end_ms) {
		if (old != 0 && bytes > old) {
			vpa_hist_sub(&s->mem, old, 1.0, pk->win_end_ms);
			add = true;
		}
	} else {
		int64_t w = cfg->mem_window_ms;
		pk->win_end_ms += (t_ms - pk->win_end_ms) / w * w + w;
		pk->mem_peak = pk->oom_peak = 0;
		add = true;
	}
	if (add) {
		vpa_hist_add(&s->mem, bytes, 1.0, pk->win_end_ms);
		if (oom)
			pk->oom_peak = bytes;
		else
			pk->mem_peak = bytes;
	}
	return true;
}

bool
vpa_state_add_mem(struct vpa_state *s, struct vpa_peak *pk, double bytes, int64_t t_ms,
    const struct vpa_config *cfg)
{
	return add_mem(s, pk, bytes, t_ms, false, cfg);
}

void
vpa_state_oom(struct vpa_state *s, struct vpa_peak *pk, double request, int64_t t_ms,
    const struct vpa_config *cfg)
{
	double used = fmax(request, pk->mem_peak);
	add_mem(s, pk, fmax(used + cfg->oom_min_bump, used * cfg->oom_ratio), t_ms, true, cfg);
}

bool
vpa_state_expired(const struct vpa_state *s, int64_t now_ms, const struct vpa_config *cfg)
{
	return now_ms - s->seen_ms >= cfg->history_ms;
}

json_t *
vpa_state_save(const struct vpa_state *s, int64_t now_ms)
{
	return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:I}", "lastUpdateTime",
	    obj_time_json(now_ms), "version", "v3", "cpuHistogram", vpa_hist_save(&s->cpu),
	    "memoryHistogram", vpa_hist_save(&s->mem), "firstSampleStart",
	    obj_time_json(s->first_ms), "lastSampleStart", obj_time_json(s->last_ms),
	    "totalSamplesCount", (json_int_t)s->samples);
}

int
vpa_state_load(struct vpa_state *s, const json_t *st, const struct vpa_config *cfg)
{
	struct vpa_state n;
	vpa_state_init(&n, cfg);
	if (strcmp(obj_str(st, "version"), "v3") ||
	    vpa_hist_load(&n.cpu, json_object_get(st, "cpuHistogram")) < 0 ||
	    vpa_hist_load(&n.mem, json_object_get(st, "memoryHistogram")) < 0)
		return -EINVAL;
	n.first_ms = obj_time_ms(json_object_get(st, "firstSampleStart"));
	n.last_ms = obj_time_ms(json_object_get(st, "lastSampleStart"));
	n.samples = obj_int_at(st, "totalSamplesCount", 0);
	/* the checkpoint was saved after its newest sample */
	n.seen_ms = obj_time_ms(json_object_get(st, "lastUpdateTime"));
	n.seen_ms = n.last_ms > n.seen_ms ? n.last_ms : n.seen_ms;
	*s = n;
	return 0;
}

/* ---- estimation ---------------------------------------------------------------- */

/* upstream's getConfidence: the history's length in days, or its samples
 * counted at one a minute, whichever is less. */
static double
confidence(const struct vpa_state *s)
{
	double days = (double)(s->last_ms - s->first_ms) / (24.0 * HOUR_MS);
	double amount = (double)s->samples / (60.0 * 24);
	return fmin(days, amount);
}

/* upstream's ResourceAmount arithmetic, in whole units (milli-cores,
 * bytes): truncated, capped at MaxResourceAmount. */
static double
clamp_amount(double a)
{
	if (isnan(a) || a < 0)
		return 0;
	return a > MAX_AMOUNT ? MAX_AMOUNT : floor(a);
}

void
vpa_estimate(const struct vpa_state *s, size_t ncontainers, const struct vpa_config *cfg,
    struct vpa_estimate *out)
{
	const struct vpa_hist *h[VPA_NRES] = { &s->cpu, &s->mem };
	double conf = confidence(s);
	double frac = ncontainers ? 1.0 / (double)ncontainers : 1.0;
	for (int r = 0; r < VPA_NRES; r++) {
		double unit = r == VPA_CPU ? 1000.0 : 1.0, m = 1 + cfg->margin;
		double t = clamp_amount(clamp_amount(vpa_hist_percentile(h[r], cfg->p_target) *
		    unit) * m);
		double lo = clamp_amount(clamp_amount(vpa_hist_percentile(h[r], cfg->p_lower) *
		    unit) * m);
		double up = clamp_amount(clamp_amount(vpa_hist_percentile(h[r], cfg->p_upper) *
		    unit) * m);
		if (cfg->confidence) {
			up = clamp_amount(up * pow(1 + 1.0 / conf, 1.0));
			lo = clamp_amount(lo * pow(1 + 0.001 / conf, -2.0));
		}
		double min = clamp_amount(clamp_amount(cfg->pod_min[r] * unit) * frac);
		out->target[r] = fmax(t, min) / unit;
		out->lower[r] = fmax(lo, min) / unit;
		out->upper[r] = fmax(up, min) / unit;
	}
}

/* resource.Quantity's canonical decimal form: the largest power of 1000
 * that divides v exactly as its suffix. */
static void
decimal_si(long long v, const char *unit, char *out, size_t len)
{
	static const char *const suffix[] = { "", "k", "M", "G", "T", "P", "E" };
	int i = 0;
	if (*unit && v % 1000 != 0) {
		snprintf(out, len, "%lld%s", v, unit);	/* milli-units */
		return;
	}
	if (*unit)
		v /= 1000;
	while (v != 0 && v % 1000 == 0 && i < 6) {
		v /= 1000;
		i++;
	}
	snprintf(out, len, "%lld%s", v, suffix[i]);
}

void
vpa_quantity(enum vpa_res r, double v, char *out, size_t len)
{
	if (r == VPA_CPU)
		decimal_si((long long)floor(v * 1000 + 1e-6), "m", out, len);
	else
		decimal_si((long long)floor(v + 1e-6), "", out, len);
}
