/* util/metrics.h -- lock-free counters and histograms for /metrics (Prometheus text).
 * Every function is safe from any thread: the counters are C11 atomics. */
#ifndef CD_UTIL_METRICS_H
#define CD_UTIL_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/buf.h"

#define CD_HIST_MAX 16

typedef struct cd_hist {
    int nbounds;
    double bounds[CD_HIST_MAX]; /* upper bounds, ascending; +Inf is implied */
    atomic_uint_fast64_t counts[CD_HIST_MAX + 1];
    atomic_uint_fast64_t total;
    _Atomic double sum;
} cd_hist;

void cd_hist_init(cd_hist *h, const double *bounds, int n);
void cd_hist_observe(cd_hist *h, double v);
/* Appends `name{labels}` buckets, _sum and _count. labels may be "" */
void cd_hist_write(const cd_hist *h, cd_buf *out, const char *name, const char *help);

#endif
