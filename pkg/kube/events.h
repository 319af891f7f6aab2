/* Event recorder: writes core/v1 Events about objects (what `kubectl describe` shows), after
 * client-go tools/record. Repeats of the same (object, type, reason, message) within 10 minutes
 * of the previous one update the existing Event (count, lastTimestamp) with a PATCH instead of
 * creating another. Events are best-effort: recording copies the event into a bounded queue and
 * returns at once; a sender thread writes them, and when the queue is full new events are dropped
 * and counted.
 *
 * Threading: tn_event_record* are thread-safe and never wait for the network or for queue space.
 * Ownership: the client is borrowed and must outlive the recorder; every argument is copied.
 * Call tn_event_recorder_free only once no other thread records any more. */
#ifndef TN_KUBE_EVENTS_H
#define TN_KUBE_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tn_kube_client;
struct tn_metrics;

#define TN_EVENT_NORMAL "Normal"
#define TN_EVENT_WARNING "Warning"

/* The object an event is about (involvedObject). Strings are borrowed for the call; NULL or ""
 * fields are left out. */
struct tn_event_ref {
    const char *api_version;
    const char *kind;
    const char *namespace_; /* "" for cluster-scoped objects: the Event goes to "default" */
    const char *name;
    const char *uid;
    const char *resource_version;
    const char *field_path;
};

struct tn_event_recorder_opts {
    struct tn_kube_client *client; /* required */
    const char *component;         /* source.component and reportingComponent; required */
    const char *host;              /* source.host and reportingInstance; default hostname */
    size_t queue_size;             /* pending events kept; default 1000 */
    int64_t flush_timeout_ms;      /* tn_event_recorder_free sends what is queued for at most
                                      this long; default 2000 */
    /* optional: event_recorder_dropped_total{component} and event_recorder_failed_total */
    struct tn_metrics *metrics;
};

struct tn_event_recorder;

/* Returns NULL with err set when a required option is missing or the thread cannot start. */
struct tn_event_recorder *tn_event_recorder_new(const struct tn_event_recorder_opts *opts,
                                                struct tn_err *err);
/* Sends what is queued (bounded by flush_timeout_ms), stops the sender thread, frees r. */
void tn_event_recorder_free(struct tn_event_recorder *r);

/* Records an event about obj (borrowed; apiVersion, kind and metadata name, namespace, uid and
 * resourceVersion are copied). type is TN_EVENT_NORMAL or TN_EVENT_WARNING; reason is
 * CamelCase (cut at 128 bytes); the message is cut at 4 KiB. */
void tn_event_record(struct tn_event_recorder *r, const json_t *obj, const char *type,
                     const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void tn_event_record_ref(struct tn_event_recorder *r, const struct tn_event_ref *ref,
                         const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Waits (at most timeout_ms) until every event recorded before the call has been written or
 * given up on. Returns 0, or TN_EIO on timeout. */
int tn_event_recorder_flush(struct tn_event_recorder *r, int64_t timeout_ms);

struct tn_event_stats {
    uint64_t created; /* new Event objects */
    uint64_t patched; /* repeats folded into an existing Event */
    uint64_t dropped; /* queue full */
    uint64_t failed;  /* the API refused or stayed unreachable */
};
void tn_event_recorder_stats(struct tn_event_recorder *r, struct tn_event_stats *out);

#endif
