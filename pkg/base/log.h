/* Structured logging: one line per event with level, ts, component, msg and key/values, as text
 * (`ts=... level=info component=gm msg="..." key=value`) or JSON (--log-format=json).
 * Thread-safe: a line is written with one write(2) under a mutex. Configure once at start-up. */
#ifndef TN_BASE_LOG_H
#define TN_BASE_LOG_H

enum tn_log_level { TN_LOG_DEBUG = 0, TN_LOG_INFO = 1, TN_LOG_WARN = 2, TN_LOG_ERROR = 3 };

/* Set before threads start. fd defaults to 2. */
void tn_log_setup(const char *component, enum tn_log_level min, int json, int fd);
/* Parses "debug|info|warn|error" / "text|json"; return 0 or TN_EINVAL. */
int tn_log_parse_level(const char *s, enum tn_log_level *out);
int tn_log_parse_format(const char *s, int *json);
int tn_log_enabled(enum tn_log_level lvl);

/* kv is a NULL-terminated list of alternating const char *key, const char *value pairs;
 * a NULL value is written as an empty string. */
void tn_log(enum tn_log_level lvl, const char *msg, ...) __attribute__((sentinel));
/* printf-style message without key/values. */
void tn_logf(enum tn_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TN_DEBUG(...) tn_log(TN_LOG_DEBUG, __VA_ARGS__, (const char *)0)
#define TN_INFO(...) tn_log(TN_LOG_INFO, __VA_ARGS__, (const char *)0)
#define TN_WARN(...) tn_log(TN_LOG_WARN, __VA_ARGS__, (const char *)0)
#define TN_ERROR(...) tn_log(TN_LOG_ERROR, __VA_ARGS__, (const char *)0)

#endif
