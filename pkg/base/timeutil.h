/* Time helpers: RFC 3339 formatting/parsing (UTC), monotonic clock, and Go-style durations
 * ("1h30m", "500ms"). Thread-safe (no state). */
#ifndef TN_BASE_TIMEUTIL_H
#define TN_BASE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* "2026-11-22T04:59:07Z" into out (>= 21 bytes). */
void tn_time_rfc3339(time_t t, char *out, size_t n);
void tn_time_now_rfc3339(char *out, size_t n);
/* "2026-11-22T04:59:07.123456Z" (>= 28 bytes), as Kubernetes MicroTime. */
void tn_time_now_rfc3339_micro(char *out, size_t n);
/* Parses RFC 3339 with optional fraction and Z or +hh:mm offset; return 0 or TN_EINVAL. */
int tn_time_parse_rfc3339(const char *s, time_t *out);
/* Monotonic milliseconds / nanoseconds. */
int64_t tn_mono_ms(void);
int64_t tn_mono_ns(void);
/* Human age as kubectl prints it: "5s", "3m12s", "4h", "2d5h", "12d", "3y". */
void tn_time_human_age(int64_t seconds, char *out, size_t n);
/* Go duration string ("300ms", "1h2m3.5s") into milliseconds; return 0 or TN_EINVAL. */
int tn_duration_parse_ms(const char *s, int64_t *ms);

#endif
