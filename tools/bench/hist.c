/* hist.c: a log-linear latency histogram (HdrHistogram's layout, 32 sub-buckets per power of
 * two: ~3 % resolution from 1 ns to centuries, 16 KB, O(1) add). See bench.h. */
#include <string.h>

#include "bench.h"

#define SUB (1u << HIST_SUB_BITS)

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return ((shift + 1) << HIST_SUB_BITS) + (unsigned)((v >> shift) & (SUB - 1));
}

/* The middle of bucket i's range. */
static uint64_t bucket_mid(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t low = (uint64_t)(SUB + (i & (SUB - 1))) << shift;
    return low + ((1ull << shift) >> 1);
}

void hist_add(struct hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t m = bucket_mid(i);
            return m > h->max ? h->max : m;
        }
    }
    return h->max;
}
