#include "util/metrics.h"

#include <string.h>

void cd_hist_init(cd_hist *h, const double *bounds, int n)
{
    if (n > CD_HIST_MAX)
        n = CD_HIST_MAX;
    h->nbounds = n;
    memcpy(h->bounds, bounds, sizeof(double) * (size_t)n);
    for (int i = 0; i <= CD_HIST_MAX; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->total, 0);
    atomic_init(&h->sum, 0.0);
}

void cd_hist_observe(cd_hist *h, double v)
{
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add(&h->counts[i], 1);
    atomic_fetch_add(&h->total, 1);
    double old = atomic_load(&h->sum);
    while (!atomic_compare_exchange_weak(&h->sum, &old, old + v))
        ;
}

void cd_hist_write(const cd_hist *h, cd_buf *out, const char *name, const char *help)
{
    uint64_t cum = 0;
    cd_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < h->nbounds; i++) {
        cum += atomic_load(&h->counts[i]);
        cd_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                      (unsigned long long)cum);
    }
    cum += atomic_load(&h->counts[h->nbounds]);
    cd_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    cd_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, atomic_load(&h->sum), name,
                  (unsigned long long)atomic_load(&h->total));
}
