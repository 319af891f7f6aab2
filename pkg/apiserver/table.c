/* meta.k8s.io/v1 Table output for `kubectl get`: CRD additionalPrinterColumns (JSONPath cells,
 * dates shown as ages like the real apiextensions-apiserver does) and the columns kubectl users
 * know for the built-in kinds (pods READY/STATUS/RESTARTS, deployments READY/UP-TO-DATE, ...). */
#include "apiserver/internal.h"
#include "apiserver/jsonpath.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *coldef(const char *name, const char *type, const char *format, const char *desc,
                      int priority)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", name, "type", type, "format", format,
                     "description", desc, "priority", priority);
}

static json_t *age_cell(const char *ts)
{
    time_t t;
    if (!ts || tn_time_parse_rfc3339(ts, &t)) return json_string("<unknown>");
    char out[32];
    tn_time_human_age((int64_t)(time(NULL) - t), out, sizeof(out));
    return json_string(out);
}

/* builtin column sets: name list (Name first), with cells computed per kind */
static json_t *builtin_columns(const struct tn_rtype *t)
{
    json_t *c = json_array();
    json_array_append_new(c, coldef("Name", "string", "name",
                                    "Name must be unique within a "
                                    "namespace.",
                                    0));
    const char *k = t->key;
    if (strcmp(k, "core/pods") == 0) {
        json_array_append_new(c, coldef("Ready", "string", "",
                                        "The aggregate readiness state "
                                        "of this pod for accepting "
                                        "traffic.",
                                        0));
        json_array_append_new(c, coldef("Status", "string", "",
                                        "The aggregate status of the "
                                        "containers in this pod.",
                                        0));
        json_array_append_new(c, coldef("Restarts", "string", "",
                                        "The number of times the "
                                        "containers in this pod have "
                                        "been restarted.",
                                        0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
        json_array_append_new(c, coldef("IP", "string", "", "IP address allocated to the pod.", 1));
        json_array_append_new(c,
                              coldef("Node", "string", "", "Name of the node the pod runs on.", 1));
    } else if (strcmp(k, "apps/deployments") == 0) {
        json_array_append_new(c, coldef("Ready", "string", "",
                                        "Number of the pod with ready "
                                        "state",
                                        0));
        json_array_append_new(c, coldef("Up-to-date", "string", "",
                                        "Total number of non-terminated"
                                        " pods with the desired "
                                        "template spec.",
                                        0));
        json_array_append_new(c, coldef("Available", "string", "", "Number of available pods.", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "core/services") == 0) {
        json_array_append_new(c, coldef("Type", "string", "", "The type of the service.", 0));
        json_array_append_new(c, coldef("Cluster-IP", "string", "", "The cluster IP.", 0));
        json_array_append_new(c, coldef("External-IP", "string", "", "External IPs.", 0));
        json_array_append_new(c, coldef("Port(s)", "string", "", "Ports of the service.", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "core/nodes") == 0) {
        json_array_append_new(c, coldef("Status", "string", "", "The status of the node", 0));
        json_array_append_new(c, coldef("Roles", "string", "", "The roles of the node", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
        json_array_append_new(c, coldef("Version", "string", "", "Kubelet Version", 0));
        json_array_append_new(c, coldef("Internal-IP", "string", "", "Internal IP", 1));
    } else if (strcmp(k, "core/namespaces") == 0) {
        json_array_append_new(c, coldef("Status", "string", "", "The status of the namespace", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "core/configmaps") == 0 || strcmp(k, "core/secrets") == 0) {
        if (strcmp(k, "core/secrets") == 0)
            json_array_append_new(c, coldef("Type", "string", "", "The type of the secret", 0));
        json_array_append_new(c, coldef("Data", "string", "", "Number of keys", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "core/endpoints") == 0) {
        json_array_append_new(c, coldef("Endpoints", "string", "", "Endpoints", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "core/events") == 0) {
        json_array_clear(c);
        json_array_append_new(c, coldef("Last Seen", "string", "", "Last seen", 0));
        json_array_append_new(c, coldef("Type", "string", "", "Type", 0));
        json_array_append_new(c, coldef("Reason", "string", "", "Reason", 0));
        json_array_append_new(c, coldef("Object", "string", "", "Involved object", 0));
        json_array_append_new(c, coldef("Message", "string", "", "Message", 0));
    } else if (strcmp(k, "coordination.k8s.io/leases") == 0) {
        json_array_append_new(c, coldef("Holder", "string", "", "Holder identity", 0));
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    } else if (strcmp(k, "apiextensions.k8s.io/customresourcedefinitions") == 0) {
        json_array_append_new(c, coldef("Created At", "date", "", "CreationTimestamp", 0));
    } else {
        json_array_append_new(c, coldef("Age", "string", "", "CreationTimestamp", 0));
    }
    return c;
}

static int cond_true(const json_t *obj, const char *path, const char *type)
{
    json_t *conds = tn_json_get(obj, path);
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(tn_json_str(c, "type", ""), type) == 0)
            return strcmp(tn_json_str(c, "status", ""), "True") == 0;
    }
    return 0;
}

static const char *pod_status(const json_t *pod, char *buf, size_t n)
{
    if (tn_json_get(pod, "metadata.deletionTimestamp")) return "Terminating";
    const char *reason = tn_json_str(pod, "status.reason", NULL);
    json_t *cs = tn_json_get(pod, "status.containerStatuses");
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        const char *w = tn_json_str(c, "state.waiting.reason", NULL);
        if (w && *w) {
            snprintf(buf, n, "%s", w);
            return buf;
        }
        const char *tr = tn_json_str(c, "state.terminated.reason", NULL);
        if (tr && *tr && strcmp(tn_json_str(pod, "status.phase", ""), "Running") != 0) {
            snprintf(buf, n, "%s", tr);
            return buf;
        }
    }
    if (reason && *reason) return reason;
    return tn_json_str(pod, "status.phase", "Pending");
}

static void builtin_cells(const struct tn_rtype *t, const json_t *o, json_t *cells)
{
    const char *k = t->key;
    const char *created = tn_json_str(o, "metadata.creationTimestamp", NULL);
    char buf[1024];
    if (strcmp(k, "core/events") == 0) {
        const char *last = tn_json_str(o, "lastTimestamp", NULL);
        if (!last || !*last) last = tn_json_str(o, "eventTime", created);
        json_array_append_new(cells, age_cell(last));
        json_array_append_new(cells, json_string(tn_json_str(o, "type", "")));
        json_array_append_new(cells, json_string(tn_json_str(o, "reason", "")));
        char obj[600];
        const char *ik = tn_json_str(o, "involvedObject.kind", "");
        char lk[128];
        size_t i;
        for (i = 0; i < sizeof(lk) - 1 && ik[i]; i++)
            lk[i] = (char)(ik[i] >= 'A' && ik[i] <= 'Z' ? ik[i] + 32 : ik[i]);
        lk[i] = 0;
        snprintf(obj, sizeof(obj), "%s/%s", lk, tn_json_str(o, "involvedObject.name", ""));
        json_array_append_new(cells, json_string(obj));
        json_array_append_new(cells, json_string(tn_json_str(o, "message", "")));
        return;
    }
    json_array_append_new(cells, json_string(tn_json_str(o, "metadata.name", "")));
    if (strcmp(k, "core/pods") == 0) {
        size_t total = json_array_size(tn_json_get(o, "spec.containers")), ready = 0;
        long restarts = 0;
        json_t *cs = tn_json_get(o, "status.containerStatuses");
        size_t i;
        json_t *c;
        json_array_foreach(cs, i, c)
        {
            if (json_is_true(json_object_get(c, "ready"))) ready++;
            restarts += (long)tn_json_int(c, "restartCount", 0);
        }
        snprintf(buf, sizeof(buf), "%zu/%zu", ready, total);
        json_array_append_new(cells, json_string(buf));
        char sb[128];
        json_array_append_new(cells, json_string(pod_status(o, sb, sizeof(sb))));
        json_array_append_new(cells, json_integer(restarts));
        json_array_append_new(cells, age_cell(created));
        json_array_append_new(cells, json_string(tn_json_str(o, "status.podIP", "<none>")));
        json_array_append_new(cells, json_string(tn_json_str(o, "spec.nodeName", "<none>")));
    } else if (strcmp(k, "apps/deployments") == 0) {
        snprintf(buf, sizeof(buf), "%lld/%lld", tn_json_int(o, "status.readyReplicas", 0),
                 tn_json_int(o, "spec.replicas", 1));
        json_array_append_new(cells, json_string(buf));
        json_array_append_new(cells, json_integer(tn_json_int(o, "status.updatedReplicas", 0)));
        json_array_append_new(cells, json_integer(tn_json_int(o, "status.availableReplicas", 0)));
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "core/services") == 0) {
        json_array_append_new(cells, json_string(tn_json_str(o, "spec.type", "ClusterIP")));
        json_array_append_new(cells, json_string(tn_json_str(o, "spec.clusterIP", "<none>")));
        json_array_append_new(cells, json_string("<none>"));
        struct tn_buf b;
        tn_buf_init(&b, 4096);
        json_t *ports = tn_json_get(o, "spec.ports");
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
            tn_buf_printf(&b, "%s%lld/%s", i ? "," : "", tn_json_int(p, "port", 0),
                          tn_json_str(p, "protocol", "TCP"));
        json_array_append_new(cells, json_string(b.len ? b.data : "<none>"));
        tn_buf_free(&b);
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "core/nodes") == 0) {
        int ready = cond_true(o, "status.conditions", "Ready");
        json_array_append_new(cells, json_string(ready ? "Ready" : "NotReady"));
        json_array_append_new(cells, json_string("<none>"));
        json_array_append_new(cells, age_cell(created));
        json_array_append_new(cells,
                              json_string(tn_json_str(o, "status.nodeInfo.kubeletVersion", "")));
        const char *ip = "<none>";
        json_t *addrs = tn_json_get(o, "status.addresses");
        size_t i;
        json_t *ad;
        json_array_foreach(addrs, i, ad) if (strcmp(tn_json_str(ad, "type", ""), "InternalIP") == 0)
            ip = tn_json_str(ad, "address", ip);
        json_array_append_new(cells, json_string(ip));
    } else if (strcmp(k, "core/namespaces") == 0) {
        json_array_append_new(cells, json_string(tn_json_str(o, "status.phase", "Active")));
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "core/configmaps") == 0 || strcmp(k, "core/secrets") == 0) {
        if (strcmp(k, "core/secrets") == 0)
            json_array_append_new(cells, json_string(tn_json_str(o, "type", "Opaque")));
        size_t n = json_object_size(json_object_get(o, "data")) +
                   json_object_size(json_object_get(o, "binaryData"));
        json_array_append_new(cells, json_integer((json_int_t)n));
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "core/endpoints") == 0) {
        struct tn_buf b;
        tn_buf_init(&b, 4096);
        json_t *subsets = json_object_get(o, "subsets");
        size_t i, j, m;
        json_t *s, *ad, *p;
        json_array_foreach(subsets, i, s) json_array_foreach(json_object_get(s, "addresses"), j, ad)
            json_array_foreach(json_object_get(s, "ports"), m, p)
                tn_buf_printf(&b, "%s%s:%lld", b.len ? "," : "", tn_json_str(ad, "ip", ""),
                              tn_json_int(p, "port", 0));
        json_array_append_new(cells, json_string(b.len ? b.data : "<none>"));
        tn_buf_free(&b);
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "coordination.k8s.io/leases") == 0) {
        json_array_append_new(cells, json_string(tn_json_str(o, "spec.holderIdentity", "")));
        json_array_append_new(cells, age_cell(created));
    } else if (strcmp(k, "apiextensions.k8s.io/customresourcedefinitions") == 0) {
        json_array_append_new(cells, json_string(created ? created : ""));
    } else {
        json_array_append_new(cells, age_cell(created));
    }
}

static json_t *crd_columns(const struct tn_rtype *t)
{
    json_t *c = json_array();
    json_array_append_new(c, coldef("Name", "string", "name",
                                    "Name must be unique within a "
                                    "namespace.",
                                    0));
    if (!t->columns) {
        json_array_append_new(c, coldef("Age", "date", "", "CreationTimestamp", 0));
        return c;
    }
    size_t i;
    json_t *col;
    json_array_foreach(t->columns, i, col)
    {
        const char *type = tn_json_str(col, "type", "string");
        json_array_append_new(
            c, coldef(tn_json_str(col, "name", ""), type, tn_json_str(col, "format", ""),
                      tn_json_str(col, "description", ""), (int)tn_json_int(col, "priority", 0)));
    }
    return c;
}

static void crd_cells(const struct tn_rtype *t, const json_t *o, json_t *cells)
{
    json_array_append_new(cells, json_string(tn_json_str(o, "metadata.name", "")));
    if (!t->columns) {
        json_array_append_new(cells, age_cell(tn_json_str(o, "metadata.creationTimestamp", NULL)));
        return;
    }
    size_t i;
    json_t *col;
    json_array_foreach(t->columns, i, col)
    {
        const char *type = tn_json_str(col, "type", "string");
        json_t *v = tn_jsonpath_first(tn_json_str(col, "jsonPath", ""), o);
        if (!v || json_is_null(v)) {
            json_array_append_new(cells, json_null());
        } else if (strcmp(type, "date") == 0 && json_is_string(v)) {
            json_array_append_new(cells, age_cell(json_string_value(v)));
        } else if (json_is_object(v) || json_is_array(v)) {
            char *s = tn_json_dump(v);
            json_array_append_new(cells, json_string(s ? s : ""));
            free(s);
        } else {
            json_array_append(cells, v);
        }
        json_decref(v);
    }
}

static json_t *row_object(const json_t *o, const char *include)
{
    if (include && strcmp(include, "None") == 0) return NULL;
    if (include && strcmp(include, "Object") == 0) return json_deep_copy(o);
    json_t *meta = json_deep_copy(json_object_get(o, "metadata"));
    return json_pack("{s:s,s:s,s:o}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", meta ? meta : json_object());
}

static json_t *make_row(const struct tn_rtype *t, const json_t *o, const char *include)
{
    json_t *cells = json_array();
    if (t->builtin)
        builtin_cells(t, o, cells);
    else
        crd_cells(t, o, cells);
    json_t *row = json_pack("{s:o}", "cells", cells);
    json_t *ro = row_object(o, include);
    if (ro) json_object_set_new(row, "object", ro);
    return row;
}

json_t *tn_table_for(const struct tn_rtype *t, json_t *items, const char *include_object,
                     int with_columns)
{
    json_t *rows = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o) json_array_append_new(rows, make_row(t, o, include_object));
    json_t *tb = json_pack("{s:s,s:s,s:{},s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
                           "metadata", "rows", rows);
    if (with_columns)
        json_object_set_new(tb, "columnDefinitions",
                            t->builtin ? builtin_columns(t) : crd_columns(t));
    return tb;
}

json_t *tn_table_row_event(const struct tn_rtype *t, const json_t *obj, const char *include_object,
                           void *arg)
{
    json_t *items = json_pack("[O]", obj);
    json_t *tb = tn_table_for(t, items, include_object, 1);
    json_decref(items);
    json_t *rv = tn_json_get(obj, "metadata.resourceVersion");
    if (rv) json_object_set(json_object_get(tb, "metadata"), "resourceVersion", rv);
    return tb;
}
