/* Structured logging; see log.h. */
#include "base/log.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *g_component = "tandem";
static enum tn_log_level g_min = TN_LOG_INFO;
static int g_json;
static int g_fd = 2;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void tn_log_setup(const char *component, enum tn_log_level min, int json, int fd)
{
    if (component) g_component = component;
    g_min = min;
    g_json = json;
    g_fd = fd >= 0 ? fd : 2;
}

int tn_log_parse_level(const char *s, enum tn_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tn_log_level)i;
            return 0;
        }
    }
    return TN_EINVAL;
}

int tn_log_parse_format(const char *s, int *json)
{
    if (strcmp(s, "json") == 0)
        *json = 1;
    else if (strcmp(s, "text") == 0)
        *json = 0;
    else
        return TN_EINVAL;
    return 0;
}

int tn_log_enabled(enum tn_log_level lvl)
{
    return lvl >= g_min;
}

static int needs_quotes(const char *v)
{
    if (!*v) return 1;
    for (; *v; v++)
        if (*v == ' ' || *v == '"' || *v == '=' || (unsigned char)*v < 0x20) return 1;
    return 0;
}

static void put_kv(struct tn_buf *b, const char *k, const char *v)
{
    if (!v) v = "";
    if (g_json) {
        tn_buf_putc(b, ',');
        tn_buf_json_str(b, k);
        tn_buf_putc(b, ':');
        tn_buf_json_str(b, v);
    } else {
        tn_buf_printf(b, " %s=", k);
        if (needs_quotes(v))
            tn_buf_json_str(b, v);
        else
            tn_buf_puts(b, v);
    }
}

static void emit(enum tn_log_level lvl, const char *msg, va_list ap)
{
    char ts[40];
    tn_time_now_rfc3339_micro(ts, sizeof(ts));
    struct tn_buf b;
    tn_buf_init(&b, 64 << 10);
    if (g_json) {
        tn_buf_puts(&b, "{\"ts\":");
        tn_buf_json_str(&b, ts);
        tn_buf_puts(&b, ",\"level\":");
        tn_buf_json_str(&b, level_names[lvl]);
        tn_buf_puts(&b, ",\"component\":");
        tn_buf_json_str(&b, g_component);
        tn_buf_puts(&b, ",\"msg\":");
        tn_buf_json_str(&b, msg);
    } else {
        tn_buf_printf(&b, "ts=%s level=%s component=%s msg=", ts, level_names[lvl], g_component);
        tn_buf_json_str(&b, msg);
    }
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        put_kv(&b, k, v);
    }
    tn_buf_puts(&b, g_json ? "}\n" : "\n");
    pthread_mutex_lock(&g_mu);
    ssize_t w = write(g_fd, b.data, b.len);
    (void)w;
    pthread_mutex_unlock(&g_mu);
    tn_buf_free(&b);
}

void tn_log(enum tn_log_level lvl, const char *msg, ...)
{
    if (lvl < g_min) return;
    va_list ap;
    va_start(ap, msg);
    emit(lvl, msg, ap);
    va_end(ap);
}

void tn_logf(enum tn_log_level lvl, const char *fmt, ...)
{
    if (lvl < g_min) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tn_log(lvl, msg, (const char *)0);
}
