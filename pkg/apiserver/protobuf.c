/* Kubernetes protobuf -> JSON: a bounds-checked protobuf wire-format reader driven by constant
 * schema tables for the kinds kubectl's imperative generators send. Output rules and limits are
 * in protobuf.h; field numbers are those of k8s.io/api and k8s.io/apimachinery generated.proto. */
#include "apiserver/protobuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json.h"

/* ---- schema tables ---------------------------------------------------------------------- */

enum pb_type {
    T_STRING,
    T_BYTES, /* base64 string in JSON */
    T_INT32,
    T_INT64,
    T_BOOL,
    T_MSG,      /* nested message described by pb_field.msg */
    T_INTORSTR, /* intstr.IntOrString {type=1, intVal=2, strVal=3} -> number or string */
    T_QUANTITY, /* resource.Quantity {string=1} -> string */
    T_TIME,     /* meta/v1.Time {seconds=1, nanos=2} -> RFC 3339 string, null when unset */
};

#define F_REPEATED 0x1 /* JSON array, one element per occurrence */
#define F_MAP 0x2      /* map<string, type>: entries {key=1, value=2} -> JSON object */
#define F_KEEPZERO 0x4 /* Go pointer or non-omitempty field: zero values are printed */
#define F_INLINE 0x8   /* Go embedded struct (json:",inline"): fields land in the parent */

struct pb_msg;

struct pb_field {
    uint32_t num;
    uint8_t type;
    uint8_t flags;
    const char *json;
    const struct pb_msg *msg;
};

struct pb_msg {
    const char *name;
    const struct pb_field *fields; /* terminated by num == 0 */
};

/* clang-format off */
#define END {0, 0, 0, NULL, NULL}
#define STR(n, j) {n, T_STRING, 0, j, NULL}
#define STRK(n, j) {n, T_STRING, F_KEEPZERO, j, NULL}
#define STRS(n, j) {n, T_STRING, F_REPEATED, j, NULL}
#define I32(n, j) {n, T_INT32, 0, j, NULL}
#define I32K(n, j) {n, T_INT32, F_KEEPZERO, j, NULL}
#define I64(n, j) {n, T_INT64, 0, j, NULL}
#define I64K(n, j) {n, T_INT64, F_KEEPZERO, j, NULL}
#define BOOL(n, j) {n, T_BOOL, 0, j, NULL}
#define BOOLK(n, j) {n, T_BOOL, F_KEEPZERO, j, NULL}
#define MSG(n, j, m) {n, T_MSG, 0, j, &m_##m}
#define MSGS(n, j, m) {n, T_MSG, F_REPEATED, j, &m_##m}
#define INLINE(n, m) {n, T_MSG, F_INLINE, NULL, &m_##m}
#define MAP_STR(n, j) {n, T_STRING, F_MAP, j, NULL}
#define MAP_BYTES(n, j) {n, T_BYTES, F_MAP, j, NULL}
#define MAP_QTY(n, j) {n, T_QUANTITY, F_MAP, j, NULL}
#define IOS(n, j) {n, T_INTORSTR, 0, j, NULL}
#define QTY(n, j) {n, T_QUANTITY, 0, j, NULL}
#define TIME(n, j) {n, T_TIME, 0, j, NULL}
/* clang-format on */

#define MESSAGE(name, ...)                                                                         \
    static const struct pb_field f_##name[] = {__VA_ARGS__, END};                                  \
    static const struct pb_msg m_##name = {#name, f_##name}

/* Envelope and helper messages: only their names are used (errors), decoding is by hand. */
MESSAGE(Unknown, END);
MESSAGE(TypeMeta, END);
MESSAGE(IntOrString, END);
MESSAGE(Quantity, END);
MESSAGE(Time, END);
static const struct pb_msg m_map_entry = {"map entry", f_Unknown};

/* k8s.io/apimachinery/pkg/apis/meta/v1 */
MESSAGE(LabelSelectorRequirement, STRK(1, "key"), STRK(2, "operator"), STRS(3, "values"));
MESSAGE(LabelSelector, MAP_STR(1, "matchLabels"),
        MSGS(2, "matchExpressions", LabelSelectorRequirement));
MESSAGE(OwnerReference, STRK(5, "apiVersion"), STRK(1, "kind"), STRK(3, "name"), STRK(4, "uid"),
        BOOLK(6, "controller"), BOOLK(7, "blockOwnerDeletion"));
MESSAGE(ObjectMeta, STR(1, "name"), STR(2, "generateName"), STR(3, "namespace"), STR(4, "selfLink"),
        STR(5, "uid"), STR(6, "resourceVersion"), I64(7, "generation"),
        TIME(8, "creationTimestamp"), TIME(9, "deletionTimestamp"),
        I64K(10, "deletionGracePeriodSeconds"), MAP_STR(11, "labels"), MAP_STR(12, "annotations"),
        MSGS(13, "ownerReferences", OwnerReference), STRS(14, "finalizers"));

/* k8s.io/api/core/v1 */
MESSAGE(LocalObjectReference, STR(1, "name"));
MESSAGE(ObjectReference, STR(1, "kind"), STR(2, "namespace"), STR(3, "name"), STR(4, "uid"),
        STR(5, "apiVersion"), STR(6, "resourceVersion"), STR(7, "fieldPath"));
MESSAGE(ObjectFieldSelector, STR(1, "apiVersion"), STRK(2, "fieldPath"));
MESSAGE(ResourceFieldSelector, STR(1, "containerName"), STRK(2, "resource"), QTY(3, "divisor"));
MESSAGE(ConfigMapKeySelector, INLINE(1, LocalObjectReference), STRK(2, "key"),
        BOOLK(3, "optional"));
MESSAGE(SecretKeySelector, INLINE(1, LocalObjectReference), STRK(2, "key"), BOOLK(3, "optional"));
MESSAGE(EnvVarSource, MSG(1, "fieldRef", ObjectFieldSelector),
        MSG(2, "resourceFieldRef", ResourceFieldSelector),
        MSG(3, "configMapKeyRef", ConfigMapKeySelector), MSG(4, "secretKeyRef", SecretKeySelector));
MESSAGE(EnvVar, STRK(1, "name"), STR(2, "value"), MSG(3, "valueFrom", EnvVarSource));
MESSAGE(ConfigMapEnvSource, INLINE(1, LocalObjectReference), BOOLK(2, "optional"));
MESSAGE(SecretEnvSource, INLINE(1, LocalObjectReference), BOOLK(2, "optional"));
MESSAGE(EnvFromSource, STR(1, "prefix"), MSG(2, "configMapRef", ConfigMapEnvSource),
        MSG(3, "secretRef", SecretEnvSource));
MESSAGE(ContainerPort, STR(1, "name"), I32(2, "hostPort"), I32K(3, "containerPort"),
        STR(4, "protocol"), STR(5, "hostIP"));
MESSAGE(ResourceRequirements, MAP_QTY(1, "limits"), MAP_QTY(2, "requests"));
MESSAGE(VolumeMount, STRK(1, "name"), BOOL(2, "readOnly"), STRK(3, "mountPath"), STR(4, "subPath"),
        STRK(5, "mountPropagation"), STR(6, "subPathExpr"));
MESSAGE(Container, STRK(1, "name"), STR(2, "image"), STRS(3, "command"), STRS(4, "args"),
        STR(5, "workingDir"), MSGS(6, "ports", ContainerPort), MSGS(19, "envFrom", EnvFromSource),
        MSGS(7, "env", EnvVar), MSG(8, "resources", ResourceRequirements),
        MSGS(9, "volumeMounts", VolumeMount), STR(13, "terminationMessagePath"),
        STR(20, "terminationMessagePolicy"), STR(14, "imagePullPolicy"), BOOL(16, "stdin"),
        BOOL(17, "stdinOnce"), BOOL(18, "tty"));
MESSAGE(HostPathVolumeSource, STRK(1, "path"), STRK(2, "type"));
MESSAGE(EmptyDirVolumeSource, STR(1, "medium"), QTY(2, "sizeLimit"));
MESSAGE(KeyToPath, STRK(1, "key"), STRK(2, "path"), I32K(3, "mode"));
MESSAGE(SecretVolumeSource, STR(1, "secretName"), MSGS(2, "items", KeyToPath),
        I32K(3, "defaultMode"), BOOLK(4, "optional"));
MESSAGE(ConfigMapVolumeSource, INLINE(1, LocalObjectReference), MSGS(2, "items", KeyToPath),
        I32K(3, "defaultMode"), BOOLK(4, "optional"));
MESSAGE(PersistentVolumeClaimVolumeSource, STRK(1, "claimName"), BOOL(2, "readOnly"));
MESSAGE(VolumeSource, MSG(1, "hostPath", HostPathVolumeSource),
        MSG(2, "emptyDir", EmptyDirVolumeSource), MSG(6, "secret", SecretVolumeSource),
        MSG(10, "persistentVolumeClaim", PersistentVolumeClaimVolumeSource),
        MSG(19, "configMap", ConfigMapVolumeSource));
MESSAGE(Volume, STRK(1, "name"), INLINE(2, VolumeSource));
MESSAGE(Toleration, STR(1, "key"), STR(2, "operator"), STR(3, "value"), STR(4, "effect"),
        I64K(5, "tolerationSeconds"));
MESSAGE(PodSpec, MSGS(1, "volumes", Volume), MSGS(20, "initContainers", Container),
        MSGS(2, "containers", Container), STR(3, "restartPolicy"),
        I64K(4, "terminationGracePeriodSeconds"), I64K(5, "activeDeadlineSeconds"),
        STR(6, "dnsPolicy"), MAP_STR(7, "nodeSelector"), STR(8, "serviceAccountName"),
        STR(9, "serviceAccount"), BOOLK(21, "automountServiceAccountToken"), STR(10, "nodeName"),
        BOOL(11, "hostNetwork"), BOOL(12, "hostPID"), BOOL(13, "hostIPC"),
        BOOLK(27, "shareProcessNamespace"), MSGS(15, "imagePullSecrets", LocalObjectReference),
        STR(16, "hostname"), STR(17, "subdomain"), STR(19, "schedulerName"),
        MSGS(22, "tolerations", Toleration), STR(24, "priorityClassName"), I32K(25, "priority"),
        BOOLK(30, "enableServiceLinks"), STRK(31, "preemptionPolicy"),
        BOOLK(35, "setHostnameAsFQDN"));
MESSAGE(PodStatus, STR(1, "phase"), STR(3, "message"), STR(4, "reason"),
        STR(11, "nominatedNodeName"), STR(5, "hostIP"), STR(6, "podIP"), TIME(7, "startTime"),
        STR(9, "qosClass"));
MESSAGE(Pod, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", PodSpec), MSG(3, "status", PodStatus));
MESSAGE(PodTemplateSpec, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", PodSpec));

MESSAGE(NamespaceSpec, STRS(1, "finalizers"));
MESSAGE(NamespaceStatus, STR(1, "phase"));
MESSAGE(Namespace, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", NamespaceSpec),
        MSG(3, "status", NamespaceStatus));
MESSAGE(ConfigMap, MSG(1, "metadata", ObjectMeta), BOOLK(4, "immutable"), MAP_STR(2, "data"),
        MAP_BYTES(3, "binaryData"));
MESSAGE(Secret, MSG(1, "metadata", ObjectMeta), BOOLK(5, "immutable"), MAP_BYTES(2, "data"),
        MAP_STR(4, "stringData"), STR(3, "type"));
MESSAGE(ServiceAccount, MSG(1, "metadata", ObjectMeta), MSGS(2, "secrets", ObjectReference),
        MSGS(3, "imagePullSecrets", LocalObjectReference),
        BOOLK(4, "automountServiceAccountToken"));

MESSAGE(ServicePort, STR(1, "name"), STR(2, "protocol"), STRK(6, "appProtocol"), I32K(3, "port"),
        IOS(4, "targetPort"), I32(5, "nodePort"));
MESSAGE(ServiceSpec, MSGS(1, "ports", ServicePort), MAP_STR(2, "selector"), STR(3, "clusterIP"),
        STRS(18, "clusterIPs"), STR(4, "type"), STRS(5, "externalIPs"), STR(7, "sessionAffinity"),
        STR(8, "loadBalancerIP"), STRS(9, "loadBalancerSourceRanges"), STR(10, "externalName"),
        STR(11, "externalTrafficPolicy"), I32(12, "healthCheckNodePort"),
        BOOL(13, "publishNotReadyAddresses"), STRS(19, "ipFamilies"), STRK(17, "ipFamilyPolicy"),
        BOOLK(20, "allocateLoadBalancerNodePorts"), STRK(21, "loadBalancerClass"),
        STRK(22, "internalTrafficPolicy"));
MESSAGE(LoadBalancerIngress, STR(1, "ip"), STR(2, "hostname"));
MESSAGE(LoadBalancerStatus, MSGS(1, "ingress", LoadBalancerIngress));
MESSAGE(ServiceStatus, MSG(1, "loadBalancer", LoadBalancerStatus));
MESSAGE(Service, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", ServiceSpec),
        MSG(3, "status", ServiceStatus));

MESSAGE(ResourceQuotaSpec, MAP_QTY(1, "hard"), STRS(2, "scopes"));
MESSAGE(ResourceQuotaStatus, MAP_QTY(1, "hard"), MAP_QTY(2, "used"));
MESSAGE(ResourceQuota, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", ResourceQuotaSpec),
        MSG(3, "status", ResourceQuotaStatus));

/* k8s.io/api/apps/v1 */
MESSAGE(RollingUpdateDeployment, IOS(1, "maxUnavailable"), IOS(2, "maxSurge"));
MESSAGE(DeploymentStrategy, STR(1, "type"), MSG(2, "rollingUpdate", RollingUpdateDeployment));
MESSAGE(DeploymentSpec, I32K(1, "replicas"), MSG(2, "selector", LabelSelector),
        MSG(3, "template", PodTemplateSpec), MSG(4, "strategy", DeploymentStrategy),
        I32(5, "minReadySeconds"), I32K(6, "revisionHistoryLimit"), BOOL(7, "paused"),
        I32K(9, "progressDeadlineSeconds"));
MESSAGE(DeploymentStatus, I64(1, "observedGeneration"), I32(2, "replicas"),
        I32(3, "updatedReplicas"), I32(7, "readyReplicas"), I32(4, "availableReplicas"),
        I32(5, "unavailableReplicas"), I32K(8, "collisionCount"));
MESSAGE(Deployment, MSG(1, "metadata", ObjectMeta), MSG(2, "spec", DeploymentSpec),
        MSG(3, "status", DeploymentStatus));

static const struct pb_kind {
    const char *api_version;
    const char *kind;
    const struct pb_msg *msg;
} pb_kinds[] = {
    {"v1", "Namespace", &m_Namespace},
    {"v1", "ConfigMap", &m_ConfigMap},
    {"v1", "Secret", &m_Secret},
    {"v1", "ServiceAccount", &m_ServiceAccount},
    {"v1", "Service", &m_Service},
    {"v1", "Pod", &m_Pod},
    {"v1", "ResourceQuota", &m_ResourceQuota},
    {"apps/v1", "Deployment", &m_Deployment},
};

/* ---- wire reader ------------------------------------------------------------------------ */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static const char *wt_name(int wt)
{
    switch (wt) {
    case WT_VARINT:
        return "varint";
    case WT_I64:
        return "64-bit";
    case WT_LEN:
        return "length-delimited";
    case WT_I32:
        return "32-bit";
    default:
        return "group";
    }
}

/* One field as read off the wire; offsets are absolute in the whole body. */
struct pb_val {
    uint32_t num;
    int wt;
    size_t at; /* offset of the tag */
    uint64_t u;
    size_t off, len; /* WT_LEN payload */
};

struct pb_ctx {
    const uint8_t *buf;
    struct tn_err *err;
    size_t nvalues;
    char path[256];
    size_t pathlen;
};

static int pb_fail(struct pb_ctx *c, int code, const struct pb_msg *m, uint32_t field, size_t at,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Records the first error only: callers unwind with its code. */
static int pb_fail(struct pb_ctx *c, int code, const struct pb_msg *m, uint32_t field, size_t at,
                   const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    char where[64] = "";
    if (field) snprintf(where, sizeof where, "field %u of ", field);
    if (c->pathlen)
        return tn_err_set(c->err, code, "protobuf: %s%s (at %s): %s at byte %zu", where, m->name,
                          c->path, reason, at);
    return tn_err_set(c->err, code, "protobuf: %s%s: %s at byte %zu", where, m->name, reason, at);
}

/* Returns 0, -1 when the input ends inside the varint, -2 when it overflows 64 bits. */
static int rd_varint(const uint8_t *b, size_t *pos, size_t end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= end) return -1;
        uint8_t byte = b[(*pos)++];
        if (i == 9 && byte > 1) return -2;
        v |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -2;
}

/* Reads one whole field (tag and value) of message m from [*pos, end), advancing *pos. */
static int rd_field(struct pb_ctx *c, const struct pb_msg *m, size_t *pos, size_t end,
                    struct pb_val *v)
{
    memset(v, 0, sizeof *v);
    v->at = *pos;
    uint64_t tag;
    int rc = rd_varint(c->buf, pos, end, &tag);
    if (rc)
        return pb_fail(c, TN_EINVAL, m, 0, v->at, "%s field tag",
                       rc == -1 ? "truncated" : "overlong");
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
        return pb_fail(c, TN_EINVAL, m, 0, v->at, "invalid field number %llu",
                       (unsigned long long)(tag >> 3));
    v->num = (uint32_t)(tag >> 3);
    v->wt = (int)(tag & 7);
    switch (v->wt) {
    case WT_VARINT:
        rc = rd_varint(c->buf, pos, end, &v->u);
        if (rc)
            return pb_fail(c, TN_EINVAL, m, v->num, v->at, "%s varint",
                           rc == -1 ? "truncated" : "overlong");
        return 0;
    case WT_I64:
    case WT_I32: {
        size_t n = v->wt == WT_I64 ? 8 : 4;
        if (end - *pos < n)
            return pb_fail(c, TN_EINVAL, m, v->num, v->at, "truncated %s value", wt_name(v->wt));
        for (size_t i = 0; i < n; i++)
            v->u |= (uint64_t)c->buf[*pos + i] << (8 * i);
        *pos += n;
        return 0;
    }
    case WT_LEN: {
        uint64_t len;
        rc = rd_varint(c->buf, pos, end, &len);
        if (rc)
            return pb_fail(c, TN_EINVAL, m, v->num, v->at, "%s length of length-delimited value",
                           rc == -1 ? "truncated" : "overlong");
        if (len > end - *pos)
            return pb_fail(c, TN_EINVAL, m, v->num, v->at,
                           "truncated length-delimited value (%llu bytes declared, %zu left)",
                           (unsigned long long)len, end - *pos);
        v->off = *pos;
        v->len = (size_t)len;
        *pos += (size_t)len;
        return 0;
    }
    case WT_SGROUP:
    case WT_EGROUP:
        return pb_fail(c, TN_EINVAL, m, v->num, v->at, "groups (wire type %d) are not supported",
                       v->wt);
    default:
        return pb_fail(c, TN_EINVAL, m, v->num, v->at, "invalid wire type %d", v->wt);
    }
}

static int expect_wt(struct pb_ctx *c, const struct pb_msg *m, const struct pb_val *v, int want)
{
    if (v->wt == want) return 0;
    return pb_fail(c, TN_EINVAL, m, v->num, v->at, "expected a %s value, got %s", wt_name(want),
                   wt_name(v->wt));
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c0 = s[i];
        if (c0 < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c0 >= 0xc2 && c0 <= 0xdf) {
            need = 1;
            cp = c0 & 0x1f;
        } else if (c0 >= 0xe0 && c0 <= 0xef) {
            need = 2;
            cp = c0 & 0x0f;
        } else if (c0 >= 0xf0 && c0 <= 0xf4) {
            need = 3;
            cp = c0 & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need) return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- decoder ---------------------------------------------------------------------------- */

static size_t path_push(struct pb_ctx *c, const char *name, long idx)
{
    size_t old = c->pathlen;
    size_t room = sizeof c->path - c->pathlen;
    int n = 0;
    if (name)
        n = snprintf(c->path + c->pathlen, room, "%s%s", c->pathlen ? "." : "", name);
    else if (idx >= 0)
        n = snprintf(c->path + c->pathlen, room, "[%ld]", idx);
    if (n > 0) c->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void path_pop(struct pb_ctx *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = 0;
}

/* Counts one JSON value against TN_PROTOBUF_MAX_VALUES. */
static int pb_count(struct pb_ctx *c, const struct pb_msg *m, const struct pb_val *v)
{
    if (++c->nvalues <= TN_PROTOBUF_MAX_VALUES) return 0;
    return pb_fail(c, TN_ETOOBIG, m, v->num, v->at, "more than %d values in one object",
                   TN_PROTOBUF_MAX_VALUES);
}

static int pb_oom(struct pb_ctx *c, const struct pb_msg *m, const struct pb_val *v)
{
    return pb_fail(c, TN_ENOMEM, m, v->num, v->at, "out of memory");
}

/* New string value from a WT_LEN payload (UTF-8 without NUL bytes, else TN_EINVAL). */
static int make_string(struct pb_ctx *c, const struct pb_msg *m, const struct pb_val *v,
                       json_t **out)
{
    const uint8_t *s = c->buf + v->off;
    if (!utf8_valid(s, v->len))
        return pb_fail(c, TN_EINVAL, m, v->num, v->at, "string is not valid UTF-8");
    /* the JSON path refuses \u0000 too, and the rest of the server reads C strings */
    if (memchr(s, 0, v->len))
        return pb_fail(c, TN_EINVAL, m, v->num, v->at, "string contains a NUL byte");
    *out = json_stringn_nocheck((const char *)s, v->len);
    return *out ? 0 : pb_oom(c, m, v);
}

static int decode_intorstr(struct pb_ctx *c, const struct pb_val *outer, json_t **out)
{
    const struct pb_msg *m = &m_IntOrString;
    int64_t type = 0;
    int32_t ival = 0;
    struct pb_val sval = {0};
    size_t pos = outer->off, end = outer->off + outer->len;
    while (pos < end) {
        struct pb_val v;
        int rc = rd_field(c, m, &pos, end, &v);
        if (rc) return rc;
        if (v.num == 1 || v.num == 2) {
            if ((rc = expect_wt(c, m, &v, WT_VARINT))) return rc;
            if (v.num == 1)
                type = (int64_t)v.u;
            else
                ival = (int32_t)(uint32_t)v.u;
        } else if (v.num == 3) {
            if ((rc = expect_wt(c, m, &v, WT_LEN))) return rc;
            sval = v;
        }
    }
    if (type == 0) {
        *out = json_integer(ival);
        return *out ? 0 : pb_oom(c, m, outer);
    }
    if (type == 1) {
        if (!sval.len) {
            *out = json_string("");
            return *out ? 0 : pb_oom(c, m, outer);
        }
        return make_string(c, m, &sval, out);
    }
    return pb_fail(c, TN_EINVAL, m, 1, outer->at, "type %lld is neither 0 (int) nor 1 (string)",
                   (long long)type);
}

static int decode_quantity(struct pb_ctx *c, const struct pb_val *outer, json_t **out)
{
    const struct pb_msg *m = &m_Quantity;
    struct pb_val str = {0};
    size_t pos = outer->off, end = outer->off + outer->len;
    while (pos < end) {
        struct pb_val v;
        int rc = rd_field(c, m, &pos, end, &v);
        if (rc) return rc;
        if (v.num == 1) {
            if ((rc = expect_wt(c, m, &v, WT_LEN))) return rc;
            str = v;
        }
    }
    if (!str.len) { /* the zero Quantity prints as "0" */
        *out = json_string("0");
        return *out ? 0 : pb_oom(c, m, outer);
    }
    return make_string(c, m, &str, out);
}

/* metav1.Time: an empty message is the zero time (JSON null); nanos are dropped as the Go
 * decoder does, and the JSON form has second precision in UTC. */
static int decode_time(struct pb_ctx *c, const struct pb_val *outer, json_t **out)
{
    const struct pb_msg *m = &m_Time;
    if (outer->len == 0) {
        *out = json_null();
        return 0;
    }
    int64_t secs = 0;
    size_t pos = outer->off, end = outer->off + outer->len;
    while (pos < end) {
        struct pb_val v;
        int rc = rd_field(c, m, &pos, end, &v);
        if (rc) return rc;
        if (v.num == 1 || v.num == 2) {
            if ((rc = expect_wt(c, m, &v, WT_VARINT))) return rc;
            if (v.num == 1) secs = (int64_t)v.u;
        }
    }
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, the range RFC 3339 can spell */
    if (secs < -62135596800LL || secs > 253402300799LL)
        return pb_fail(c, TN_EINVAL, m, 1, outer->at, "seconds %lld out of range", (long long)secs);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return pb_fail(c, TN_EINVAL, m, 1, outer->at, "seconds %lld out of range", (long long)secs);
    char buf[40];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    *out = json_string(buf);
    return *out ? 0 : pb_oom(c, m, outer);
}

/* New value for a non-message field; *zero tells whether Go's omitempty would drop it. */
static int decode_scalar(struct pb_ctx *c, const struct pb_msg *m, const struct pb_field *f,
                         const struct pb_val *v, json_t **out, int *zero)
{
    int rc;
    *out = NULL;
    *zero = 0;
    switch (f->type) {
    case T_STRING:
        if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
        *zero = v->len == 0;
        return make_string(c, m, v, out);
    case T_BYTES: {
        if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
        *zero = v->len == 0;
        char *b64 = tn_base64_encode(c->buf + v->off, v->len);
        if (!b64) return pb_oom(c, m, v);
        *out = json_string_nocheck(b64);
        free(b64);
        return *out ? 0 : pb_oom(c, m, v);
    }
    case T_INT32:
    case T_INT64:
    case T_BOOL:
        if ((rc = expect_wt(c, m, v, WT_VARINT))) return rc;
        *zero = v->u == 0;
        if (f->type == T_BOOL)
            *out = json_boolean(v->u != 0);
        else if (f->type == T_INT32)
            *out = json_integer((int32_t)(uint32_t)v->u);
        else
            *out = json_integer((json_int_t)(int64_t)v->u);
        return *out ? 0 : pb_oom(c, m, v);
    case T_INTORSTR:
    case T_QUANTITY:
    case T_TIME:
        if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
        /* name the field in error paths, unless it is a map value (the map is named) */
        size_t old = path_push(c, m == &m_map_entry ? NULL : f->json, -1);
        if (f->type == T_INTORSTR)
            rc = decode_intorstr(c, v, out);
        else if (f->type == T_QUANTITY)
            rc = decode_quantity(c, v, out);
        else
            rc = decode_time(c, v, out);
        path_pop(c, old);
        return rc;
    default:
        return pb_fail(c, TN_EINTERNAL, m, v->num, v->at, "bad schema type %d", f->type);
    }
}

static int decode_msg(struct pb_ctx *c, const struct pb_msg *m, size_t start, size_t end,
                      json_t *obj, int depth);

/* Borrowed: the container of kind `want` (JSON_OBJECT/JSON_ARRAY) at key, created if needed. */
static json_t *ensure(json_t *obj, const char *key, json_type want)
{
    json_t *cur = json_object_get(obj, key);
    if (cur && json_typeof(cur) == want) return cur;
    json_t *fresh = want == JSON_ARRAY ? json_array() : json_object();
    if (!fresh || json_object_set_new(obj, key, fresh)) return NULL;
    return fresh;
}

static int decode_map_entry(struct pb_ctx *c, const struct pb_msg *m, const struct pb_field *f,
                            const struct pb_val *outer, json_t *obj)
{
    int rc = expect_wt(c, m, outer, WT_LEN);
    if (rc) return rc;
    size_t old = path_push(c, f->json, -1);
    const struct pb_msg *em = &m_map_entry;
    struct pb_val key = {0}, val = {0};
    int have_val = 0;
    size_t pos = outer->off, end = outer->off + outer->len;
    json_t *value = NULL;
    while (pos < end) {
        struct pb_val v;
        if ((rc = rd_field(c, em, &pos, end, &v))) goto out;
        if (v.num == 1) {
            if ((rc = expect_wt(c, em, &v, WT_LEN))) goto out;
            key = v;
        } else if (v.num == 2) {
            val = v;
            have_val = 1;
        }
    }
    const uint8_t *k = c->buf + key.off;
    if (!utf8_valid(k, key.len) || memchr(k, 0, key.len)) {
        rc = pb_fail(c, TN_EINVAL, em, 1, key.len ? key.at : outer->at,
                     "key is not a valid UTF-8 string without NUL bytes");
        goto out;
    }
    if ((rc = pb_count(c, m, outer))) goto out;
    int zero;
    if (have_val) {
        if ((rc = decode_scalar(c, em, f, &val, &value, &zero))) goto out;
    } else {
        value = json_string(f->type == T_QUANTITY ? "0" : "");
        if (!value) {
            rc = pb_oom(c, m, outer);
            goto out;
        }
    }
    json_t *map = ensure(obj, f->json, JSON_OBJECT);
    if (!map) {
        rc = pb_oom(c, m, outer);
        goto out;
    }
    json_t *stolen = value; /* setn_new takes the reference even when it fails */
    value = NULL;
    if (json_object_setn_new_nocheck(map, (const char *)k, key.len, stolen)) {
        rc = pb_oom(c, m, outer);
        goto out;
    }
out:
    json_decref(value);
    path_pop(c, old);
    return rc;
}

static int decode_field(struct pb_ctx *c, const struct pb_msg *m, const struct pb_field *f,
                        const struct pb_val *v, json_t *obj, int depth)
{
    int rc, zero;
    json_t *val = NULL;
    if (f->flags & F_INLINE) {
        if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
        return decode_msg(c, f->msg, v->off, v->off + v->len, obj, depth + 1);
    }
    if (f->flags & F_MAP) return decode_map_entry(c, m, f, v, obj);
    if ((rc = pb_count(c, m, v))) return rc;
    if (f->flags & F_REPEATED) {
        json_t *arr = ensure(obj, f->json, JSON_ARRAY);
        if (!arr) return pb_oom(c, m, v);
        if (f->type == T_MSG) {
            if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
            json_t *elem = json_object();
            if (!elem || json_array_append_new(arr, elem)) return pb_oom(c, m, v);
            size_t old = path_push(c, f->json, -1);
            path_push(c, NULL, (long)json_array_size(arr) - 1);
            rc = decode_msg(c, f->msg, v->off, v->off + v->len, elem, depth + 1);
            path_pop(c, old);
            return rc;
        }
        if ((rc = decode_scalar(c, m, f, v, &val, &zero))) return rc;
        if (json_array_append_new(arr, val)) return pb_oom(c, m, v);
        return 0;
    }
    if (f->type == T_MSG) {
        if ((rc = expect_wt(c, m, v, WT_LEN))) return rc;
        json_t *sub = ensure(obj, f->json, JSON_OBJECT); /* a repeated occurrence merges */
        if (!sub) return pb_oom(c, m, v);
        size_t old = path_push(c, f->json, -1);
        rc = decode_msg(c, f->msg, v->off, v->off + v->len, sub, depth + 1);
        path_pop(c, old);
        return rc;
    }
    if ((rc = decode_scalar(c, m, f, v, &val, &zero))) return rc;
    if (zero && !(f->flags & F_KEEPZERO)) { /* last occurrence wins, even a zero one */
        json_decref(val);
        json_object_del(obj, f->json);
        return 0;
    }
    if (json_object_set_new(obj, f->json, val)) return pb_oom(c, m, v);
    return 0;
}

static int decode_msg(struct pb_ctx *c, const struct pb_msg *m, size_t start, size_t end,
                      json_t *obj, int depth)
{
    if (depth > TN_PROTOBUF_MAX_DEPTH)
        return pb_fail(c, TN_ETOOBIG, m, 0, start, "nested deeper than %d messages",
                       TN_PROTOBUF_MAX_DEPTH);
    size_t pos = start;
    while (pos < end) {
        struct pb_val v;
        int rc = rd_field(c, m, &pos, end, &v);
        if (rc) return rc;
        const struct pb_field *f = m->fields;
        while (f->num && f->num != v.num)
            f++;
        if (!f->num) continue; /* unknown field: rd_field already skipped its value */
        if ((rc = decode_field(c, m, f, &v, obj, depth))) return rc;
    }
    return 0;
}

static const struct pb_kind *find_kind(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < sizeof pb_kinds / sizeof pb_kinds[0]; i++)
        if (strcmp(pb_kinds[i].kind, kind) == 0 &&
            strcmp(pb_kinds[i].api_version, api_version) == 0)
            return &pb_kinds[i];
    return NULL;
}

int tn_protobuf_kind_supported(const char *api_version, const char *kind)
{
    return api_version && kind && find_kind(api_version, kind) != NULL;
}

/* Copies a WT_LEN string of the envelope into out (NUL-terminated); 0 or TN_EINVAL. */
static int envelope_str(struct pb_ctx *c, const struct pb_msg *m, const struct pb_val *v, char *out,
                        size_t n)
{
    int rc = expect_wt(c, m, v, WT_LEN);
    if (rc) return rc;
    const uint8_t *s = c->buf + v->off;
    if (v->len >= n || !utf8_valid(s, v->len) || memchr(s, 0, v->len))
        return pb_fail(c, TN_EINVAL, m, v->num, v->at,
                       "not a UTF-8 string of at most %zu bytes without NUL", n - 1);
    memcpy(out, s, v->len);
    out[v->len] = 0;
    return 0;
}

json_t *tn_protobuf_decode(const char *data, size_t len, struct tn_err *err)
{
    static const char magic[4] = {'k', '8', 's', 0};
    struct pb_ctx c = {.buf = (const uint8_t *)data, .err = err};
    char api_version[256] = "", kind[256] = "", encoding[128] = "", ctype[128] = "";
    struct pb_val raw = {0};
    int have_raw = 0;
    json_t *root = NULL;

    if (len > TN_PROTOBUF_MAX_BYTES) {
        tn_err_set(err, TN_ETOOBIG, "protobuf: body of %zu bytes exceeds the limit of %zu", len,
                   TN_PROTOBUF_MAX_BYTES);
        return NULL;
    }
    if (!data || len < sizeof magic || memcmp(data, magic, sizeof magic) != 0) {
        tn_err_set(err, TN_EINVAL,
                   "protobuf: body does not start with the Kubernetes magic \"k8s\\x00\"");
        return NULL;
    }
    size_t pos = sizeof magic;
    while (pos < len) {
        struct pb_val v;
        if (rd_field(&c, &m_Unknown, &pos, len, &v)) return NULL;
        if (v.num == 1) { /* TypeMeta {apiVersion=1, kind=2} */
            if (expect_wt(&c, &m_Unknown, &v, WT_LEN)) return NULL;
            size_t tp = v.off, tend = v.off + v.len;
            while (tp < tend) {
                struct pb_val t;
                if (rd_field(&c, &m_TypeMeta, &tp, tend, &t)) return NULL;
                if ((t.num == 1 &&
                     envelope_str(&c, &m_TypeMeta, &t, api_version, sizeof api_version)) ||
                    (t.num == 2 && envelope_str(&c, &m_TypeMeta, &t, kind, sizeof kind)))
                    return NULL;
            }
        } else if (v.num == 2) {
            if (expect_wt(&c, &m_Unknown, &v, WT_LEN)) return NULL;
            raw = v;
            have_raw = 1;
        } else if ((v.num == 3 && envelope_str(&c, &m_Unknown, &v, encoding, sizeof encoding)) ||
                   (v.num == 4 && envelope_str(&c, &m_Unknown, &v, ctype, sizeof ctype))) {
            return NULL;
        }
    }
    if (!kind[0] || !api_version[0]) {
        tn_err_set(err, TN_EINVAL, "protobuf: envelope has no %s",
                   !kind[0] ? "kind" : "apiVersion");
        return NULL;
    }
    if (encoding[0]) {
        tn_err_set(err, TN_EUNSUPPORTED, "protobuf: %s %s: contentEncoding \"%s\" is not supported",
                   api_version, kind, encoding);
        return NULL;
    }
    if (ctype[0] && strcmp(ctype, "application/vnd.kubernetes.protobuf") != 0) {
        tn_err_set(err, TN_EUNSUPPORTED, "protobuf: %s %s: contentType \"%s\" is not supported",
                   api_version, kind, ctype);
        return NULL;
    }
    const struct pb_kind *k = find_kind(api_version, kind);
    if (!k) {
        tn_err_set(err, TN_EUNSUPPORTED,
                   "protobuf: kind %s (apiVersion %s) is not supported by the protobuf decoder; "
                   "send it as application/json",
                   kind, api_version);
        return NULL;
    }
    root = json_object();
    if (!root || json_object_set_new(root, "kind", json_string(kind)) ||
        json_object_set_new(root, "apiVersion", json_string(api_version))) {
        tn_err_set(err, TN_ENOMEM, "protobuf: out of memory");
        json_decref(root);
        return NULL;
    }
    if (have_raw && decode_msg(&c, k->msg, raw.off, raw.off + raw.len, root, 1)) {
        json_decref(root);
        return NULL;
    }
    return root;
}
