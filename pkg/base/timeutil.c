/* Time helpers; see timeutil.h. */
#include "base/timeutil.h"
#include "base/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

void tn_time_rfc3339(time_t t, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void tn_time_now_rfc3339(char *out, size_t n)
{
    tn_time_rfc3339(time(NULL), out, n);
}

void tn_time_now_rfc3339_micro(char *out, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t s = tv.tv_sec;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%06ldZ", base, (long)tv.tv_usec);
}

int tn_time_parse_rfc3339(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) p = strptime(s, "%Y-%m-%dt%H:%M:%S", &tm);
    if (!p) return TN_EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return TN_EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return TN_EINVAL;
        off = sign * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return TN_EINVAL;
    }
    if (*p) return TN_EINVAL;
    *out = timegm(&tm) - off;
    return 0;
}

int64_t tn_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t tn_mono_ms(void)
{
    return tn_mono_ns() / 1000000LL;
}

/* Mirrors the apimachinery HumanDuration rules that kubectl's AGE column uses. */
void tn_time_human_age(int64_t seconds, char *out, size_t n)
{
    if (seconds < 0) seconds = 0;
    int64_t s = seconds;
    if (s < 120) {
        snprintf(out, n, "%llds", (long long)s);
        return;
    }
    int64_t m = s / 60;
    if (m < 10) {
        int64_t rs = s % 60;
        if (rs == 0)
            snprintf(out, n, "%lldm", (long long)m);
        else
            snprintf(out, n, "%lldm%llds", (long long)m, (long long)rs);
        return;
    }
    if (m < 180) {
        snprintf(out, n, "%lldm", (long long)m);
        return;
    }
    int64_t h = s / 3600;
    if (h < 8) {
        int64_t rm = m % 60;
        if (rm == 0)
            snprintf(out, n, "%lldh", (long long)h);
        else
            snprintf(out, n, "%lldh%lldm", (long long)h, (long long)rm);
        return;
    }
    if (h < 48) {
        snprintf(out, n, "%lldh", (long long)h);
        return;
    }
    if (h < 24 * 8) {
        int64_t rh = h % 24;
        if (rh == 0)
            snprintf(out, n, "%lldd", (long long)(h / 24));
        else
            snprintf(out, n, "%lldd%lldh", (long long)(h / 24), (long long)rh);
        return;
    }
    if (h < 24 * 365 * 2) {
        snprintf(out, n, "%lldd", (long long)(h / 24));
        return;
    }
    if (h < 24 * 365 * 8) {
        int64_t dy = (h / 24) % 365;
        if (dy == 0)
            snprintf(out, n, "%lldy", (long long)(h / 24 / 365));
        else
            snprintf(out, n, "%lldy%lldd", (long long)(h / 24 / 365), (long long)dy);
        return;
    }
    snprintf(out, n, "%lldy", (long long)(h / 24 / 365));
}

int tn_duration_parse_ms(const char *s, int64_t *ms)
{
    if (!s || !*s) return TN_EINVAL;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) return TN_EINVAL;
        p = end;
        double mul;
        if (strncmp(p, "ms", 2) == 0) {
            mul = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            mul = 0.001;
            p += 2;
        } else if (strncmp(p, "ns", 2) == 0) {
            mul = 0.000001;
            p += 2;
        } else if (*p == 'h') {
            mul = 3600000;
            p++;
        } else if (*p == 'm') {
            mul = 60000;
            p++;
        } else if (*p == 's') {
            mul = 1000;
            p++;
        } else {
            return TN_EINVAL;
        }
        total += v * mul;
    }
    *ms = (int64_t)total;
    return 0;
}
