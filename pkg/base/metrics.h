/* Prometheus metrics: a registry of counter, gauge and histogram families with labels, rendered
 * in the Prometheus text exposition format (version 0.0.4) for /metrics. Names follow
 * client-go/controller-runtime so existing dashboards work.
 * Thread-safety: every function is thread-safe (one mutex per registry).
 * Ownership: the registry owns its families; family pointers stay valid until the registry is
 * freed; label name/value strings are copied. */
#ifndef TN_BASE_METRICS_H
#define TN_BASE_METRICS_H

#include <stddef.h>

struct tn_buf;
struct tn_metrics;
struct tn_metric;

struct tn_metrics *tn_metrics_new(void);
void tn_metrics_free(struct tn_metrics *r);

/* Registers (or returns the already registered) family. labels: NULL-terminated label names,
 * or NULL for none. Registering the same name with another type, other label names or other
 * buckets returns NULL, as does an invalid metric or label name. A family without labels is
 * exposed (as 0) from registration; a labelled one once a series has been touched. */
struct tn_metric *tn_metrics_counter(struct tn_metrics *r, const char *name, const char *help,
                                     const char *const *labels);
struct tn_metric *tn_metrics_gauge(struct tn_metrics *r, const char *name, const char *help,
                                   const char *const *labels);
/* buckets: strictly ascending upper bounds (+Inf is implicit), nb of them. */
struct tn_metric *tn_metrics_histogram(struct tn_metrics *r, const char *name, const char *help,
                                       const char *const *labels, const double *buckets, size_t nb);

/* values: label values in the order of the family's label names (NULL when it has none).
 * A NULL family is ignored, so callers need not check registration. */
void tn_metric_inc(struct tn_metric *m, const char *const *values);
void tn_metric_add(struct tn_metric *m, const char *const *values, double v); /* counter/gauge */
void tn_metric_set(struct tn_metric *m, const char *const *values, double v); /* gauge */
void tn_metric_observe(struct tn_metric *m, const char *const *values, double v); /* histogram */
/* Current value of a counter/gauge series, or a histogram series' count (0 when absent); for
 * tests. Negative adds to a counter are ignored, as are updates of the wrong kind (set on a
 * counter, observe on a gauge). */
double tn_metric_value(struct tn_metric *m, const char *const *values);

/* Appends the text exposition of every family (sorted by name) to out. */
void tn_metrics_render(struct tn_metrics *r, struct tn_buf *out);

#endif
