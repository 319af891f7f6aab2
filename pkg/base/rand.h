/* Randomness for names and jitter. Uses getrandom(2); thread-safe. */
#ifndef TN_BASE_RAND_H
#define TN_BASE_RAND_H

#include <stddef.h>
#include <stdint.h>

uint64_t tn_rand_u64(void);
/* Uniform double in [0,1). */
double tn_rand_unit(void);
/* n random characters from Kubernetes' generateName alphabet "bcdfghjklmnpqrstvwxz2456789"
 * into out (n+1 bytes, NUL-terminated). */
void tn_rand_suffix(char *out, size_t n);
/* RFC 4122 version-4 UUID (37 bytes with NUL). */
void tn_rand_uuid(char out[37]);

#endif
