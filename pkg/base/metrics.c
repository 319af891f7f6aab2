/* Prometheus registry and text exposition; see metrics.h. Families are kept sorted by name and
 * each family's series sorted by label values, so rendering is a straight walk and the output
 * is deterministic. One registry mutex guards everything: updates are a binary search and an
 * add, far cheaper than the HTTP write that dominates a scrape. */
#include "base/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct series {
    char **values;     /* nlabels label values */
    double value;      /* counter / gauge */
    uint64_t *buckets; /* histogram: per-bucket (non-cumulative) counts, nb + 1 (+Inf) */
    double sum;
    uint64_t count;
};

struct tn_metric {
    struct tn_metrics *reg;
    enum mtype type;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nb;
    struct series **series; /* sorted by label values */
    size_t nseries, cap;
};

struct tn_metrics {
    pthread_mutex_t mu;
    struct tn_metric **fams; /* sorted by name */
    size_t nfams, cap;
};

struct tn_metrics *tn_metrics_new(void)
{
    struct tn_metrics *r = calloc(1, sizeof(*r));
    if (r) pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void series_free(struct series *s, size_t nlabels)
{
    if (!s) return;
    for (size_t i = 0; s->values && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void family_free(struct tn_metric *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nseries; i++)
        series_free(m->series[i], m->nlabels);
    free(m->series);
    for (size_t i = 0; m->labels && i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m->bounds);
    free(m->name);
    free(m->help);
    free(m);
}

void tn_metrics_free(struct tn_metrics *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nfams; i++)
        family_free(r->fams[i]);
    free(r->fams);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int valid_name(const char *s, int colon)
{
    if (!s || !*s) return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* Compares a series' label values with values (NULL entries read as ""). */
static int cmp_values(char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i], b && b[i] ? b[i] : "");
        if (c) return c;
    }
    return 0;
}

/* Binary search; returns the index of the series or where it would go (*found set). */
static size_t series_find(const struct tn_metric *m, const char *const *values, int *found)
{
    size_t lo = 0, hi = m->nseries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_values(m->series[mid]->values, values, m->nlabels);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* The series for values, created when missing. Caller holds the lock. NULL on OOM. */
static struct series *series_get(struct tn_metric *m, const char *const *values)
{
    int found;
    size_t at = series_find(m, values, &found);
    if (found) return m->series[at];
    if (m->nseries == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 4;
        struct series **ns = realloc(m->series, ncap * sizeof(*ns));
        if (!ns) return NULL;
        m->series = ns;
        m->cap = ncap;
    }
    struct series *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->values = calloc(m->nlabels + 1, sizeof(char *));
    if (!s->values) goto oom;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!(s->values[i] = strdup(values && values[i] ? values[i] : ""))) goto oom;
    if (m->type == M_HISTOGRAM && !(s->buckets = calloc(m->nb + 1, sizeof(uint64_t)))) goto oom;
    memmove(m->series + at + 1, m->series + at, (m->nseries - at) * sizeof(*m->series));
    m->series[at] = s;
    m->nseries++;
    return s;
oom:
    series_free(s, m->nlabels);
    return NULL;
}

/* Looks up or creates a family. Returns NULL when the name is taken by a different
 * definition or the definition is invalid. */
static struct tn_metric *family_register(struct tn_metrics *r, enum mtype type, const char *name,
                                         const char *help, const char *const *labels,
                                         const double *buckets, size_t nb)
{
    if (!r || !valid_name(name, 1)) return NULL;
    size_t nl = 0;
    for (; labels && labels[nl]; nl++) {
        if (!valid_name(labels[nl], 0) || !strncmp(labels[nl], "__", 2) ||
            (type == M_HISTOGRAM && !strcmp(labels[nl], "le")))
            return NULL;
        for (size_t j = 0; j < nl; j++)
            if (!strcmp(labels[j], labels[nl])) return NULL;
    }
    /* +Inf is implicit; a trailing explicit +Inf is dropped. */
    if (type == M_HISTOGRAM && nb && isinf(buckets[nb - 1]) && buckets[nb - 1] > 0) nb--;
    for (size_t i = 0; type == M_HISTOGRAM && i < nb; i++)
        if (isnan(buckets[i]) || (i && buckets[i] <= buckets[i - 1])) return NULL;

    struct tn_metric *m = NULL;
    pthread_mutex_lock(&r->mu);
    size_t lo = 0, hi = r->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->fams[mid]->name, name);
        if (c == 0) {
            m = r->fams[mid];
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (m) {
        int same = m->type == type && m->nlabels == nl;
        for (size_t i = 0; same && i < nl; i++)
            same = !strcmp(m->labels[i], labels[i]);
        if (same && type == M_HISTOGRAM)
            same = m->nb == nb && (nb == 0 || !memcmp(m->bounds, buckets, nb * sizeof(double)));
        pthread_mutex_unlock(&r->mu);
        return same ? m : NULL;
    }
    if (r->nfams == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        struct tn_metric **nf = realloc(r->fams, ncap * sizeof(*nf));
        if (!nf) goto fail;
        r->fams = nf;
        r->cap = ncap;
    }
    m = calloc(1, sizeof(*m));
    if (!m) goto fail;
    m->reg = r;
    m->type = type;
    m->nlabels = nl;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = calloc(nl + 1, sizeof(char *));
    if (!m->name || !m->help || !m->labels) goto fail;
    for (size_t i = 0; i < nl; i++)
        if (!(m->labels[i] = strdup(labels[i]))) goto fail;
    if (type == M_HISTOGRAM) {
        m->nb = nb;
        m->bounds = malloc((nb ? nb : 1) * sizeof(double));
        if (!m->bounds) goto fail;
        if (nb) memcpy(m->bounds, buckets, nb * sizeof(double));
    }
    /* A family without labels has exactly one series, exposed as 0 from the start. */
    if (nl == 0 && !series_get(m, NULL)) goto fail;
    memmove(r->fams + lo + 1, r->fams + lo, (r->nfams - lo) * sizeof(*r->fams));
    r->fams[lo] = m;
    r->nfams++;
    pthread_mutex_unlock(&r->mu);
    return m;
fail:
    pthread_mutex_unlock(&r->mu);
    family_free(m);
    return NULL;
}

struct tn_metric *tn_metrics_counter(struct tn_metrics *r, const char *name, const char *help,
                                     const char *const *labels)
{
    return family_register(r, M_COUNTER, name, help, labels, NULL, 0);
}

struct tn_metric *tn_metrics_gauge(struct tn_metrics *r, const char *name, const char *help,
                                   const char *const *labels)
{
    return family_register(r, M_GAUGE, name, help, labels, NULL, 0);
}

struct tn_metric *tn_metrics_histogram(struct tn_metrics *r, const char *name, const char *help,
                                       const char *const *labels, const double *buckets, size_t nb)
{
    if (nb && !buckets) return NULL;
    return family_register(r, M_HISTOGRAM, name, help, labels, buckets, nb);
}

/* op: 0 add, 1 set, 2 observe. */
static void update(struct tn_metric *m, const char *const *values, double v, int op)
{
    if (!m) return;
    if ((op == 2) != (m->type == M_HISTOGRAM)) return;
    if (op == 1 && m->type != M_GAUGE) return;
    if (op == 0 && m->type == M_COUNTER && !(v >= 0)) /* counters only go up */
        return;
    pthread_mutex_lock(&m->reg->mu);
    struct series *s = series_get(m, values);
    if (s) {
        if (op == 0)
            s->value += v;
        else if (op == 1)
            s->value = v;
        else {
            size_t i = 0;
            while (i < m->nb && !(v <= m->bounds[i]))
                i++;
            s->buckets[i]++;
            s->sum += v;
            s->count++;
        }
    }
    pthread_mutex_unlock(&m->reg->mu);
}

void tn_metric_inc(struct tn_metric *m, const char *const *values)
{
    update(m, values, 1, 0);
}

void tn_metric_add(struct tn_metric *m, const char *const *values, double v)
{
    update(m, values, v, 0);
}

void tn_metric_set(struct tn_metric *m, const char *const *values, double v)
{
    update(m, values, v, 1);
}

void tn_metric_observe(struct tn_metric *m, const char *const *values, double v)
{
    update(m, values, v, 2);
}

double tn_metric_value(struct tn_metric *m, const char *const *values)
{
    if (!m) return 0;
    pthread_mutex_lock(&m->reg->mu);
    int found;
    size_t at = series_find(m, values, &found);
    double v = 0;
    if (found) v = m->type == M_HISTOGRAM ? (double)m->series[at]->count : m->series[at]->value;
    pthread_mutex_unlock(&m->reg->mu);
    return v;
}

/* Formats a sample value as Prometheus clients do: integers without exponent or fraction,
 * others in the shortest form that reads back exactly, and +Inf/-Inf/NaN. */
static void fmt_value(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, n, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v) break;
        }
    }
}

/* esc_quote: label values escape '"' too; HELP text escapes only '\\' and newline. */
static void put_escaped(struct tn_buf *out, const char *s, int esc_quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            tn_buf_puts(out, "\\\\");
        else if (*s == '\n')
            tn_buf_puts(out, "\\n");
        else if (*s == '"' && esc_quote)
            tn_buf_puts(out, "\\\"");
        else
            tn_buf_putc(out, *s);
    }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void put_sample(struct tn_buf *out, const struct tn_metric *m, const char *suffix,
                       const struct series *s, const char *le, double v)
{
    char num[64];
    tn_buf_puts(out, m->name);
    tn_buf_puts(out, suffix);
    if (m->nlabels || le) {
        tn_buf_putc(out, '{');
        for (size_t i = 0; i < m->nlabels; i++) {
            tn_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
            put_escaped(out, s->values[i], 1);
            tn_buf_putc(out, '"');
        }
        if (le) tn_buf_printf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
        tn_buf_putc(out, '}');
    }
    fmt_value(num, sizeof(num), v);
    tn_buf_printf(out, " %s\n", num);
}

void tn_metrics_render(struct tn_metrics *r, struct tn_buf *out)
{
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    if (!r || !out) return;
    pthread_mutex_lock(&r->mu);
    for (size_t f = 0; f < r->nfams; f++) {
        const struct tn_metric *m = r->fams[f];
        if (m->nseries == 0) /* a labelled family nobody used yet, as client_golang does */
            continue;
        tn_buf_printf(out, "# HELP %s ", m->name);
        put_escaped(out, m->help, 0);
        tn_buf_printf(out, "\n# TYPE %s %s\n", m->name, tnames[m->type]);
        for (size_t i = 0; i < m->nseries; i++) {
            const struct series *s = m->series[i];
            if (m->type != M_HISTOGRAM) {
                put_sample(out, m, "", s, NULL, s->value);
                continue;
            }
            uint64_t cum = 0;
            char le[64];
            for (size_t b = 0; b < m->nb; b++) {
                cum += s->buckets[b];
                fmt_value(le, sizeof(le), m->bounds[b]);
                put_sample(out, m, "_bucket", s, le, (double)cum);
            }
            cum += s->buckets[m->nb];
            put_sample(out, m, "_bucket", s, "+Inf", (double)cum);
            put_sample(out, m, "_sum", s, NULL, s->sum);
            put_sample(out, m, "_count", s, NULL, (double)s->count);
        }
    }
    pthread_mutex_unlock(&r->mu);
}
