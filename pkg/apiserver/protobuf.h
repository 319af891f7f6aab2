/* Kubernetes protobuf request bodies (Content-Type: application/vnd.kubernetes.protobuf) decoded
 * into the JSON object the same request would have carried as application/json, so that
 * kubectl's imperative generators (`kubectl create namespace|configmap|secret|serviceaccount|
 * deployment|service|quota`), which always send protobuf, work against a JSON-only store.
 *
 * Input: the 4-byte magic "k8s\0" followed by a runtime.Unknown envelope
 * {typeMeta{apiVersion=1,kind=2}=1, raw=2, contentEncoding=3, contentType=4} whose raw bytes are
 * the k8s.io/api generated.proto encoding of the typed object. The typed object is mapped to JSON
 * through built-in schema tables (field numbers from k8s.io/api and k8s.io/apimachinery
 * generated.proto). Output follows what Go's encoding/json prints for the decoded struct:
 * zero scalars of omitempty fields are left out, pointer fields keep explicit zeros, embedded
 * structs (spec, status, resources, strategy) appear even when empty, an unset Time is null,
 * bytes (Secret data, ConfigMap binaryData) are base64 strings, IntOrString is a number or a
 * string, Quantity is its string. Field numbers absent from the tables are skipped.
 *
 * Limits: TN_PROTOBUF_MAX_BYTES of input, TN_PROTOBUF_MAX_DEPTH nested messages and
 * TN_PROTOBUF_MAX_VALUES JSON values per body (TN_ETOOBIG past them). Groups, wire types 6/7,
 * truncated values, strings that are not UTF-8 or hold NUL bytes (application/json refuses
 * \u0000 as well) are rejected; nothing is ever read out of bounds.
 * Thread-safe: the tables are constant and the decoder keeps no state between calls. */
#ifndef TN_APISERVER_PROTOBUF_H
#define TN_APISERVER_PROTOBUF_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

#define TN_PROTOBUF_MAX_BYTES ((size_t)4 << 20)
#define TN_PROTOBUF_MAX_DEPTH 64
#define TN_PROTOBUF_MAX_VALUES 262144

/* New reference: the decoded object with "kind" and "apiVersion" taken from the envelope, or
 * NULL with err filled ("protobuf: field 2 of ConfigMap: truncated length-delimited value at
 * byte 37"). Codes: TN_EINVAL for malformed input (bad magic, truncation, wire-type mismatch,
 * invalid UTF-8 or NUL in a string, missing kind), TN_EUNSUPPORTED for a kind/apiVersion not in the
 * tables (the message names it) or a contentEncoding/contentType other than plain protobuf,
 * TN_ETOOBIG past a limit, TN_ENOMEM when allocation fails. data is borrowed and need not be
 * NUL-terminated. */
json_t *tn_protobuf_decode(const char *data, size_t len, struct tn_err *err);

/* 1 if apiVersion/kind is in the decoder's tables, else 0 (lets callers answer 415 early). */
int tn_protobuf_kind_supported(const char *api_version, const char *kind);

#endif
