/* Random values; see rand.h. */
#include "base/rand.h"

#include <stdio.h>
#include <sys/random.h>

uint64_t tn_rand_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        /* getrandom only fails before the pool is initialised; fall back to a weak source */
        static uint64_t x = 88172645463325252ULL;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = x;
    }
    return v;
}

double tn_rand_unit(void)
{
    return (double)(tn_rand_u64() >> 11) * (1.0 / 9007199254740992.0);
}

void tn_rand_suffix(char *out, size_t n)
{
    static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[tn_rand_u64() % (sizeof(alpha) - 1)];
    out[n] = 0;
}

void tn_rand_uuid(char out[37])
{
    unsigned char b[16];
    uint64_t a = tn_rand_u64(), c = tn_rand_u64();
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(a >> (8 * i));
        b[8 + i] = (unsigned char)(c >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}
