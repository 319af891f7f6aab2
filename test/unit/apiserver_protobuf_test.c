/* Protobuf decoder tests: request bodies captured from real kubectl v1.32 generators
 * (`kubectl create namespace|configmap|secret|serviceaccount|deployment|service|quota`, and
 * `kubectl debug node/...` for a Pod) must decode to exactly the JSON that the same kubectl prints
 * with `--dry-run=client -o json`; every prefix and single-byte mutation of them must fail cleanly
 * or decode; hand-built bodies cover error messages, limits and Go's omitempty/pointer rules. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/protobuf.h"

/* ---- captured bodies (test/fuzz/corpus/fuzz_protobuf/ holds the same bytes) ---- */

static const unsigned char v_namespace[54] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
    0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a, 0x13, 0x0a, 0x03, 0x66,
    0x6f, 0x6f, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
    0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_configmap[70] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x43, 0x6f,
    0x6e, 0x66, 0x69, 0x67, 0x4d, 0x61, 0x70, 0x12, 0x2b, 0x0a, 0x11, 0x0a, 0x01, 0x78,
    0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00,
    0x12, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x62, 0x12, 0x0e, 0x0a, 0x05, 0x68, 0x65,
    0x6c, 0x6c, 0x6f, 0x12, 0x05, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_secret[53] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0c, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x06, 0x53, 0x65,
    0x63, 0x72, 0x65, 0x74, 0x12, 0x1d, 0x0a, 0x11, 0x0a, 0x01, 0x73, 0x12, 0x00, 0x1a,
    0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x06, 0x0a,
    0x01, 0x6b, 0x12, 0x01, 0x76, 0x1a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_serviceaccount[52] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x14, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x0e, 0x53,
    0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x41, 0x63, 0x63, 0x6f, 0x75, 0x6e, 0x74,
    0x12, 0x14, 0x0a, 0x12, 0x0a, 0x02, 0x73, 0x61, 0x12, 0x00, 0x1a, 0x00, 0x22,
    0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_deployment[205] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x15, 0x0a, 0x07, 0x61, 0x70, 0x70, 0x73, 0x2f, 0x76, 0x31, 0x12,
    0x0a, 0x44, 0x65, 0x70, 0x6c, 0x6f, 0x79, 0x6d, 0x65, 0x6e, 0x74, 0x12, 0xab, 0x01, 0x0a, 0x1f,
    0x0a, 0x03, 0x77, 0x65, 0x62, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38,
    0x00, 0x42, 0x00, 0x5a, 0x0a, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x03, 0x77, 0x65, 0x62, 0x12,
    0x7a, 0x08, 0x02, 0x12, 0x0c, 0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x03, 0x77, 0x65,
    0x62, 0x1a, 0x60, 0x0a, 0x1c, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32,
    0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0a, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x03, 0x77, 0x65,
    0x62, 0x12, 0x40, 0x12, 0x22, 0x0a, 0x05, 0x6e, 0x67, 0x69, 0x6e, 0x78, 0x12, 0x05, 0x6e, 0x67,
    0x69, 0x6e, 0x78, 0x2a, 0x00, 0x42, 0x00, 0x6a, 0x00, 0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01,
    0x00, 0x90, 0x01, 0x00, 0xa2, 0x01, 0x00, 0x1a, 0x00, 0x32, 0x00, 0x42, 0x00, 0x4a, 0x00, 0x52,
    0x00, 0x58, 0x00, 0x60, 0x00, 0x68, 0x00, 0x82, 0x01, 0x00, 0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00,
    0xc2, 0x01, 0x00, 0x22, 0x02, 0x0a, 0x00, 0x28, 0x00, 0x38, 0x00, 0x1a, 0x0c, 0x08, 0x00, 0x10,
    0x00, 0x18, 0x00, 0x20, 0x00, 0x28, 0x00, 0x38, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_service_clusterip[130] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0d, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x07, 0x53, 0x65, 0x72,
    0x76, 0x69, 0x63, 0x65, 0x12, 0x69, 0x0a, 0x1f, 0x0a, 0x03, 0x73, 0x76, 0x63, 0x12, 0x00,
    0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0a, 0x0a,
    0x03, 0x61, 0x70, 0x70, 0x12, 0x03, 0x73, 0x76, 0x63, 0x12, 0x42, 0x0a, 0x1b, 0x0a, 0x07,
    0x38, 0x30, 0x2d, 0x38, 0x30, 0x38, 0x30, 0x12, 0x03, 0x54, 0x43, 0x50, 0x18, 0x50, 0x22,
    0x07, 0x08, 0x00, 0x10, 0x90, 0x3f, 0x1a, 0x00, 0x28, 0x00, 0x12, 0x0a, 0x0a, 0x03, 0x61,
    0x70, 0x70, 0x12, 0x03, 0x73, 0x76, 0x63, 0x1a, 0x00, 0x22, 0x09, 0x43, 0x6c, 0x75, 0x73,
    0x74, 0x65, 0x72, 0x49, 0x50, 0x3a, 0x00, 0x42, 0x00, 0x52, 0x00, 0x5a, 0x00, 0x60, 0x00,
    0x68, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_configmap_binary[83] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x43, 0x6f,
    0x6e, 0x66, 0x69, 0x67, 0x4d, 0x61, 0x70, 0x12, 0x38, 0x0a, 0x13, 0x0a, 0x03, 0x62,
    0x69, 0x6e, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
    0x42, 0x00, 0x12, 0x12, 0x0a, 0x01, 0x74, 0x12, 0x0d, 0x74, 0x65, 0x78, 0x74, 0x2d,
    0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x0a, 0x1a, 0x0d, 0x0a, 0x04, 0x62, 0x6c,
    0x6f, 0x62, 0x12, 0x05, 0x00, 0x01, 0x02, 0xff, 0xfe, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_secret_dockerregistry[170] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0c, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x06, 0x53, 0x65, 0x63, 0x72,
    0x65, 0x74, 0x12, 0x91, 0x01, 0x0a, 0x13, 0x0a, 0x03, 0x72, 0x65, 0x67, 0x12, 0x00, 0x1a, 0x00,
    0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x5a, 0x0a, 0x11, 0x2e, 0x64,
    0x6f, 0x63, 0x6b, 0x65, 0x72, 0x63, 0x6f, 0x6e, 0x66, 0x69, 0x67, 0x6a, 0x73, 0x6f, 0x6e, 0x12,
    0x45, 0x7b, 0x22, 0x61, 0x75, 0x74, 0x68, 0x73, 0x22, 0x3a, 0x7b, 0x22, 0x72, 0x2e, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x22, 0x3a, 0x7b, 0x22, 0x75, 0x73, 0x65, 0x72, 0x6e, 0x61, 0x6d,
    0x65, 0x22, 0x3a, 0x22, 0x75, 0x22, 0x2c, 0x22, 0x70, 0x61, 0x73, 0x73, 0x77, 0x6f, 0x72, 0x64,
    0x22, 0x3a, 0x22, 0x70, 0x22, 0x2c, 0x22, 0x61, 0x75, 0x74, 0x68, 0x22, 0x3a, 0x22, 0x64, 0x54,
    0x70, 0x77, 0x22, 0x7d, 0x7d, 0x7d, 0x1a, 0x1e, 0x6b, 0x75, 0x62, 0x65, 0x72, 0x6e, 0x65, 0x74,
    0x65, 0x73, 0x2e, 0x69, 0x6f, 0x2f, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72, 0x63, 0x6f, 0x6e, 0x66,
    0x69, 0x67, 0x6a, 0x73, 0x6f, 0x6e, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_service_nodeport[131] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0d, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x07, 0x53, 0x65, 0x72,
    0x76, 0x69, 0x63, 0x65, 0x12, 0x6a, 0x0a, 0x1d, 0x0a, 0x02, 0x6e, 0x70, 0x12, 0x00, 0x1a,
    0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x09, 0x0a, 0x03,
    0x61, 0x70, 0x70, 0x12, 0x02, 0x6e, 0x70, 0x12, 0x45, 0x0a, 0x20, 0x0a, 0x07, 0x38, 0x30,
    0x2d, 0x68, 0x74, 0x74, 0x70, 0x12, 0x03, 0x54, 0x43, 0x50, 0x18, 0x50, 0x22, 0x0a, 0x08,
    0x01, 0x10, 0x00, 0x1a, 0x04, 0x68, 0x74, 0x74, 0x70, 0x28, 0x80, 0xeb, 0x01, 0x12, 0x09,
    0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x02, 0x6e, 0x70, 0x1a, 0x00, 0x22, 0x08, 0x4e, 0x6f,
    0x64, 0x65, 0x50, 0x6f, 0x72, 0x74, 0x3a, 0x00, 0x42, 0x00, 0x52, 0x00, 0x5a, 0x00, 0x60,
    0x00, 0x68, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_service_externalname[112] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0d, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x07, 0x53, 0x65, 0x72, 0x76,
    0x69, 0x63, 0x65, 0x12, 0x57, 0x0a, 0x1d, 0x0a, 0x02, 0x65, 0x6e, 0x12, 0x00, 0x1a, 0x00, 0x22,
    0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x09, 0x0a, 0x03, 0x61, 0x70, 0x70,
    0x12, 0x02, 0x65, 0x6e, 0x12, 0x32, 0x12, 0x09, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x02, 0x65,
    0x6e, 0x1a, 0x00, 0x22, 0x0c, 0x45, 0x78, 0x74, 0x65, 0x72, 0x6e, 0x61, 0x6c, 0x4e, 0x61, 0x6d,
    0x65, 0x3a, 0x00, 0x42, 0x00, 0x52, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63,
    0x6f, 0x6d, 0x5a, 0x00, 0x60, 0x00, 0x68, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_deployment_multi[263] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x15, 0x0a, 0x07, 0x61, 0x70, 0x70, 0x73, 0x2f, 0x76, 0x31, 0x12,
    0x0a, 0x44, 0x65, 0x70, 0x6c, 0x6f, 0x79, 0x6d, 0x65, 0x6e, 0x74, 0x12, 0xe5, 0x01, 0x0a, 0x23,
    0x0a, 0x05, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32,
    0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0c, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x05, 0x6d, 0x75,
    0x6c, 0x74, 0x69, 0x12, 0xaf, 0x01, 0x08, 0x01, 0x12, 0x0e, 0x0a, 0x0c, 0x0a, 0x03, 0x61, 0x70,
    0x70, 0x12, 0x05, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x1a, 0x92, 0x01, 0x0a, 0x1e, 0x0a, 0x00, 0x12,
    0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0c, 0x0a,
    0x03, 0x61, 0x70, 0x70, 0x12, 0x05, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x12, 0x70, 0x12, 0x2e, 0x0a,
    0x05, 0x6e, 0x67, 0x69, 0x6e, 0x78, 0x12, 0x05, 0x6e, 0x67, 0x69, 0x6e, 0x78, 0x2a, 0x00, 0x32,
    0x0a, 0x0a, 0x00, 0x10, 0x00, 0x18, 0x50, 0x22, 0x00, 0x2a, 0x00, 0x42, 0x00, 0x6a, 0x00, 0x72,
    0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2, 0x01, 0x00, 0x12, 0x22, 0x0a,
    0x05, 0x72, 0x65, 0x64, 0x69, 0x73, 0x12, 0x05, 0x72, 0x65, 0x64, 0x69, 0x73, 0x2a, 0x00, 0x42,
    0x00, 0x6a, 0x00, 0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2, 0x01,
    0x00, 0x1a, 0x00, 0x32, 0x00, 0x42, 0x00, 0x4a, 0x00, 0x52, 0x00, 0x58, 0x00, 0x60, 0x00, 0x68,
    0x00, 0x82, 0x01, 0x00, 0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x22, 0x02, 0x0a,
    0x00, 0x28, 0x00, 0x38, 0x00, 0x1a, 0x0c, 0x08, 0x00, 0x10, 0x00, 0x18, 0x00, 0x20, 0x00, 0x28,
    0x00, 0x38, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_job[158] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x08, 0x62, 0x61, 0x74, 0x63, 0x68, 0x2f, 0x76, 0x31,
    0x12, 0x03, 0x4a, 0x6f, 0x62, 0x12, 0x82, 0x01, 0x0a, 0x11, 0x0a, 0x01, 0x6a, 0x12, 0x00, 0x1a,
    0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x63, 0x32, 0x61, 0x0a,
    0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42,
    0x00, 0x12, 0x4d, 0x12, 0x2a, 0x0a, 0x01, 0x6a, 0x12, 0x07, 0x62, 0x75, 0x73, 0x79, 0x62, 0x6f,
    0x78, 0x1a, 0x04, 0x65, 0x63, 0x68, 0x6f, 0x1a, 0x02, 0x68, 0x69, 0x2a, 0x00, 0x42, 0x00, 0x6a,
    0x00, 0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2, 0x01, 0x00, 0x1a,
    0x05, 0x4e, 0x65, 0x76, 0x65, 0x72, 0x32, 0x00, 0x42, 0x00, 0x4a, 0x00, 0x52, 0x00, 0x58, 0x00,
    0x60, 0x00, 0x68, 0x00, 0x82, 0x01, 0x00, 0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00, 0xc2, 0x01, 0x00,
    0x1a, 0x08, 0x20, 0x00, 0x28, 0x00, 0x30, 0x00, 0x3a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_resourcequota[68] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x13, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x0d, 0x52, 0x65,
    0x73, 0x6f, 0x75, 0x72, 0x63, 0x65, 0x51, 0x75, 0x6f, 0x74, 0x61, 0x12, 0x25, 0x0a,
    0x11, 0x0a, 0x01, 0x71, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00,
    0x38, 0x00, 0x42, 0x00, 0x12, 0x0e, 0x0a, 0x0c, 0x0a, 0x04, 0x70, 0x6f, 0x64, 0x73,
    0x12, 0x04, 0x0a, 0x02, 0x31, 0x30, 0x1a, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_configmap_in_ns[59] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x43, 0x6f, 0x6e,
    0x66, 0x69, 0x67, 0x4d, 0x61, 0x70, 0x12, 0x20, 0x0a, 0x16, 0x0a, 0x03, 0x6e, 0x73, 0x78,
    0x12, 0x00, 0x1a, 0x03, 0x66, 0x6f, 0x6f, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
    0x42, 0x00, 0x12, 0x06, 0x0a, 0x01, 0x78, 0x12, 0x01, 0x79, 0x1a, 0x00, 0x22, 0x00,
};

static const unsigned char v_pod_debug_node[352] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x09, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x03, 0x50, 0x6f, 0x64, 0x12,
    0xca, 0x02, 0x0a, 0x26, 0x0a, 0x16, 0x6e, 0x6f, 0x64, 0x65, 0x2d, 0x64, 0x65, 0x62, 0x75, 0x67,
    0x67, 0x65, 0x72, 0x2d, 0x6e, 0x31, 0x2d, 0x34, 0x72, 0x73, 0x6b, 0x63, 0x12, 0x00, 0x1a, 0x00,
    0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x8d, 0x02, 0x0a, 0x12, 0x0a,
    0x09, 0x68, 0x6f, 0x73, 0x74, 0x2d, 0x72, 0x6f, 0x6f, 0x74, 0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01,
    0x2f, 0x12, 0xc2, 0x01, 0x0a, 0x08, 0x64, 0x65, 0x62, 0x75, 0x67, 0x67, 0x65, 0x72, 0x12, 0x07,
    0x62, 0x75, 0x73, 0x79, 0x62, 0x6f, 0x78, 0x1a, 0x02, 0x73, 0x68, 0x1a, 0x02, 0x2d, 0x63, 0x1a,
    0x07, 0x65, 0x63, 0x68, 0x6f, 0x20, 0x68, 0x69, 0x2a, 0x04, 0x2f, 0x74, 0x6d, 0x70, 0x32, 0x12,
    0x0a, 0x04, 0x68, 0x74, 0x74, 0x70, 0x10, 0x00, 0x18, 0x90, 0x3f, 0x22, 0x03, 0x54, 0x43, 0x50,
    0x2a, 0x00, 0x3a, 0x0a, 0x0a, 0x03, 0x46, 0x4f, 0x4f, 0x12, 0x03, 0x62, 0x61, 0x72, 0x3a, 0x09,
    0x0a, 0x05, 0x45, 0x4d, 0x50, 0x54, 0x59, 0x12, 0x00, 0x42, 0x31, 0x0a, 0x0d, 0x0a, 0x03, 0x63,
    0x70, 0x75, 0x12, 0x06, 0x0a, 0x04, 0x35, 0x30, 0x30, 0x6d, 0x0a, 0x11, 0x0a, 0x06, 0x6d, 0x65,
    0x6d, 0x6f, 0x72, 0x79, 0x12, 0x07, 0x0a, 0x05, 0x31, 0x32, 0x38, 0x4d, 0x69, 0x12, 0x0d, 0x0a,
    0x03, 0x63, 0x70, 0x75, 0x12, 0x06, 0x0a, 0x04, 0x31, 0x30, 0x30, 0x6d, 0x4a, 0x18, 0x0a, 0x09,
    0x68, 0x6f, 0x73, 0x74, 0x2d, 0x72, 0x6f, 0x6f, 0x74, 0x10, 0x00, 0x1a, 0x05, 0x2f, 0x68, 0x6f,
    0x73, 0x74, 0x22, 0x00, 0x32, 0x00, 0x6a, 0x00, 0x72, 0x0c, 0x49, 0x66, 0x4e, 0x6f, 0x74, 0x50,
    0x72, 0x65, 0x73, 0x65, 0x6e, 0x74, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2,
    0x01, 0x04, 0x46, 0x69, 0x6c, 0x65, 0x1a, 0x05, 0x4e, 0x65, 0x76, 0x65, 0x72, 0x32, 0x00, 0x42,
    0x00, 0x4a, 0x00, 0x52, 0x02, 0x6e, 0x31, 0x58, 0x01, 0x60, 0x01, 0x68, 0x01, 0x82, 0x01, 0x00,
    0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00, 0xb2, 0x01, 0x0e, 0x0a, 0x00, 0x12, 0x06, 0x45, 0x78, 0x69,
    0x73, 0x74, 0x73, 0x1a, 0x00, 0x22, 0x00, 0xc2, 0x01, 0x00, 0x1a, 0x10, 0x0a, 0x00, 0x1a, 0x00,
    0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x4a, 0x00, 0x5a, 0x00, 0x72, 0x00, 0x1a, 0x00, 0x22, 0x00,
};

struct vector {
    const char *name;
    const unsigned char *data;
    size_t len;
    const char *want; /* kubectl create ... --dry-run=client -o json, compacted */
};

static const struct vector vectors[] = {
    {"namespace", v_namespace, sizeof v_namespace,
     "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"foo\","
     "\"creationTimestamp\":null},\"spec\":{},\"status\":{}}"},
    {"configmap", v_configmap, sizeof v_configmap,
     "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\","
     "\"creationTimestamp\":null},\"data\":{\"a\":\"b\",\"hello\":\"world\"}}"},
    {"secret", v_secret, sizeof v_secret,
     "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"s\","
     "\"creationTimestamp\":null},\"data\":{\"k\":\"dg==\"}}"},
    {"serviceaccount", v_serviceaccount, sizeof v_serviceaccount,
     "{\"kind\":\"ServiceAccount\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"sa\","
     "\"creationTimestamp\":null}}"},
    {"deployment", v_deployment, sizeof v_deployment,
     "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/"
     "v1\",\"metadata\":{\"name\":\"web\",\"creationTimestamp\":null,\"labels\":{\"app\":\"web\"}},"
     "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{"
     "\"metadata\":{\"creationTimestamp\":null,\"labels\":{\"app\":\"web\"}},\"spec\":{"
     "\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx\",\"resources\":{}}]}},\"strategy\":{}}"
     ",\"status\":{}}"},
    {"service_clusterip", v_service_clusterip, sizeof v_service_clusterip,
     "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"svc\","
     "\"creationTimestamp\":null,\"labels\":{\"app\":\"svc\"}},\"spec\":{\"ports\":[{\"name\":\"80-"
     "8080\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"svc\"},"
     "\"type\":\"ClusterIP\"},\"status\":{\"loadBalancer\":{}}}"},
    {"configmap_binary", v_configmap_binary, sizeof v_configmap_binary,
     "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"bin\","
     "\"creationTimestamp\":null},\"data\":{\"t\":\"text-content\\n\"},\"binaryData\":{\"blob\":"
     "\"AAEC//4=\"}}"},
    {"secret_dockerregistry", v_secret_dockerregistry, sizeof v_secret_dockerregistry,
     "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"reg\","
     "\"creationTimestamp\":null},\"data\":{\".dockerconfigjson\":"
     "\"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX1"
     "9\"},\"type\":\"kubernetes.io/dockerconfigjson\"}"},
    {"service_nodeport", v_service_nodeport, sizeof v_service_nodeport,
     "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"np\","
     "\"creationTimestamp\":null,\"labels\":{\"app\":\"np\"}},\"spec\":{\"ports\":[{\"name\":\"80-"
     "http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":\"http\",\"nodePort\":30080}],"
     "\"selector\":{\"app\":\"np\"},\"type\":\"NodePort\"},\"status\":{\"loadBalancer\":{}}}"},
    {"service_externalname", v_service_externalname, sizeof v_service_externalname,
     "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"en\","
     "\"creationTimestamp\":null,\"labels\":{\"app\":\"en\"}},\"spec\":{\"selector\":{\"app\":"
     "\"en\"},\"type\":\"ExternalName\",\"externalName\":\"example.com\"},\"status\":{"
     "\"loadBalancer\":{}}}"},
    {"deployment_multi", v_deployment_multi, sizeof v_deployment_multi,
     "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/"
     "v1\",\"metadata\":{\"name\":\"multi\",\"creationTimestamp\":null,\"labels\":{\"app\":"
     "\"multi\"}},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"multi\"}},"
     "\"template\":{\"metadata\":{\"creationTimestamp\":null,\"labels\":{\"app\":\"multi\"}},"
     "\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx\",\"ports\":[{"
     "\"containerPort\":80}],\"resources\":{}},{\"name\":\"redis\",\"image\":\"redis\","
     "\"resources\":{}}]}},\"strategy\":{}},\"status\":{}}"},
    {"resourcequota", v_resourcequota, sizeof v_resourcequota,
     "{\"kind\":\"ResourceQuota\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"q\","
     "\"creationTimestamp\":null},\"spec\":{\"hard\":{\"pods\":\"10\"}},\"status\":{}}"},
    {"configmap_in_ns", v_configmap_in_ns, sizeof v_configmap_in_ns,
     "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"nsx\",\"namespace\":"
     "\"foo\",\"creationTimestamp\":null},\"data\":{\"x\":\"y\"}}"},
    {"pod_debug_node", v_pod_debug_node, sizeof v_pod_debug_node,
     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"creationTimestamp\":null,"
     "\"name\":\"node-debugger-n1-4rskc\"},\"spec\":{\"containers\":[{\"command\":[\"sh\",\"-c\","
     "\"echo hi\"],\"env\":[{\"name\":\"FOO\",\"value\":\"bar\"},{\"name\":\"EMPTY\"}],\"image\":"
     "\"busybox\",\"imagePullPolicy\":\"IfNotPresent\",\"name\":\"debugger\",\"ports\":[{"
     "\"containerPort\":8080,\"name\":\"http\",\"protocol\":\"TCP\"}],\"resources\":{\"limits\":{"
     "\"cpu\":\"500m\",\"memory\":\"128Mi\"},\"requests\":{\"cpu\":\"100m\"}},"
     "\"terminationMessagePolicy\":\"File\",\"volumeMounts\":[{\"mountPath\":\"/host\",\"name\":"
     "\"host-root\"}],\"workingDir\":\"/tmp\"}],\"hostIPC\":true,\"hostNetwork\":true,\"hostPID\":"
     "true,\"nodeName\":\"n1\",\"restartPolicy\":\"Never\",\"tolerations\":[{\"operator\":"
     "\"Exists\"}],\"volumes\":[{\"hostPath\":{\"path\":\"/\"},\"name\":\"host-root\"}]},"
     "\"status\":{}}"},
};

#define NVECTORS (sizeof vectors / sizeof vectors[0])

static json_t *J(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    ck_assert_msg(v != NULL, "bad test JSON (%s): %s", je.text, s);
    return v;
}

static void assert_json(const json_t *got, const char *want_s)
{
    json_t *want = J(want_s);
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(got && json_equal((json_t *)got, want), "got  %s\nwant %s", g ? g : "NULL", w);
    free(g);
    free(w);
    json_decref(want);
}

/* Decodes from an exact-size heap copy, so a sanitizer sees any read past the end. */
static json_t *decode_copy(const unsigned char *data, size_t len, struct tn_err *err)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    if (len) memcpy(copy, data, len);
    json_t *v = tn_protobuf_decode(copy, len, err);
    free(copy);
    return v;
}

/* The decoder either succeeds with an object carrying kind/apiVersion or explains itself. */
static void check_clean(const unsigned char *data, size_t len, const char *what)
{
    struct tn_err err = {0};
    json_t *v = decode_copy(data, len, &err);
    if (v) {
        ck_assert_msg(json_is_object(v) && json_is_string(json_object_get(v, "kind")) &&
                          json_is_string(json_object_get(v, "apiVersion")),
                      "%s: decoded to something that is not an object with kind", what);
        json_decref(v);
    } else {
        ck_assert_msg(err.code < 0 && strncmp(err.msg, "protobuf: ", 10) == 0,
                      "%s: failed without a message (code %d, msg '%s')", what, err.code, err.msg);
    }
}

START_TEST(test_real_vectors)
{
    for (size_t i = 0; i < NVECTORS; i++) {
        struct tn_err err = {0};
        json_t *got = decode_copy(vectors[i].data, vectors[i].len, &err);
        ck_assert_msg(got != NULL, "%s: %s", vectors[i].name, err.msg);
        assert_json(got, vectors[i].want);
        json_decref(got);
    }
}
END_TEST

START_TEST(test_unsupported_kind_named)
{
    struct tn_err err = {0};
    json_t *got = decode_copy(v_job, sizeof v_job, &err);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(err.code, TN_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "kind Job (apiVersion batch/v1) is not supported"), "%s",
                  err.msg);
    ck_assert_int_eq(tn_protobuf_kind_supported("batch/v1", "Job"), 0);
    ck_assert_int_eq(tn_protobuf_kind_supported("apps/v1", "Deployment"), 1);
    ck_assert_int_eq(tn_protobuf_kind_supported("v1", "Deployment"), 0);
    ck_assert_int_eq(tn_protobuf_kind_supported("v1", "Secret"), 1);
}
END_TEST

START_TEST(test_every_prefix)
{
    char what[96];
    for (size_t i = 0; i < NVECTORS; i++)
        for (size_t n = 0; n < vectors[i].len; n++) {
            snprintf(what, sizeof what, "%s[:%zu]", vectors[i].name, n);
            check_clean(vectors[i].data, n, what);
        }
    check_clean(v_job, sizeof v_job - 1, "job prefix");
}
END_TEST

START_TEST(test_byte_mutations)
{
    static const unsigned char flips[] = {0x01, 0x07, 0x80, 0xff};
    char what[96];
    for (size_t i = 0; i < NVECTORS; i++) {
        size_t len = vectors[i].len;
        unsigned char *buf = malloc(len);
        ck_assert_ptr_nonnull(buf);
        for (size_t pos = 0; pos < len; pos++)
            for (size_t f = 0; f < sizeof flips; f++) {
                memcpy(buf, vectors[i].data, len);
                buf[pos] ^= flips[f];
                snprintf(what, sizeof what, "%s byte %zu ^ 0x%02x", vectors[i].name, pos, flips[f]);
                check_clean(buf, len, what);
            }
        free(buf);
    }
}
END_TEST

/* ---- a tiny encoder for hand-built bodies ---- */

struct enc {
    unsigned char *b;
    size_t n, cap;
};

static void e_raw(struct enc *e, const void *p, size_t n)
{
    if (e->n + n > e->cap) {
        e->cap = (e->n + n) * 2 + 64;
        e->b = realloc(e->b, e->cap);
        ck_assert_ptr_nonnull(e->b);
    }
    if (n) memcpy(e->b + e->n, p, n);
    e->n += n;
}

static void e_varint(struct enc *e, uint64_t v)
{
    do {
        unsigned char byte = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) byte |= 0x80;
        e_raw(e, &byte, 1);
    } while (v);
}

static void e_tag(struct enc *e, unsigned field, int wt)
{
    e_varint(e, ((uint64_t)field << 3) | (unsigned)wt);
}

static void e_uint(struct enc *e, unsigned field, uint64_t v)
{
    e_tag(e, field, 0);
    e_varint(e, v);
}

static void e_bytes(struct enc *e, unsigned field, const void *p, size_t n)
{
    e_tag(e, field, 2);
    e_varint(e, n);
    e_raw(e, p, n);
}

static void e_str(struct enc *e, unsigned field, const char *s)
{
    e_bytes(e, field, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void e_msg(struct enc *e, unsigned field, struct enc *sub)
{
    e_bytes(e, field, sub->b, sub->n);
    free(sub->b);
    memset(sub, 0, sizeof *sub);
}

static void e_map(struct enc *e, unsigned field, const char *k, const char *v)
{
    struct enc entry = {0};
    e_str(&entry, 1, k);
    if (v) e_str(&entry, 2, v);
    e_msg(e, field, &entry);
}

/* "k8s\0" + Unknown{typeMeta, raw}; raw is freed. */
static struct enc body(const char *api_version, const char *kind, struct enc *raw)
{
    struct enc out = {0}, tm = {0};
    e_raw(&out, "k8s\0", 4);
    e_str(&tm, 1, api_version);
    e_str(&tm, 2, kind);
    e_msg(&out, 1, &tm);
    e_msg(&out, 2, raw);
    return out;
}

static struct enc meta_named(const char *name)
{
    struct enc m = {0};
    e_str(&m, 1, name);
    return m;
}

static json_t *decode_enc(struct enc *e, struct tn_err *err)
{
    json_t *v = decode_copy(e->b, e->n, err);
    free(e->b);
    memset(e, 0, sizeof *e);
    return v;
}

static void expect_fail(struct enc *e, int code, const char *want_msg)
{
    struct tn_err err = {0};
    json_t *v = decode_enc(e, &err);
    ck_assert_msg(v == NULL, "decoded although it should fail with '%s'", want_msg);
    ck_assert_msg(err.code == code, "code %d, want %d (%s)", err.code, code, err.msg);
    ck_assert_msg(strstr(err.msg, want_msg) != NULL, "message '%s' lacks '%s'", err.msg, want_msg);
}

START_TEST(test_truncated_value_names_field_and_byte)
{
    /* ConfigMap{metadata{name:"x"}, data entry whose length says 50 but 3 bytes follow} */
    struct enc raw = {0}, m = meta_named("x");
    e_msg(&raw, 1, &m);
    size_t data_at = raw.n;
    e_tag(&raw, 2, 2);
    e_varint(&raw, 50);
    e_raw(&raw, "abc", 3);
    size_t raw_len = raw.n;
    struct enc b = body("v1", "ConfigMap", &raw);
    size_t raw_start = b.n - raw_len; /* raw is the last field of the envelope */
    char want[200];
    snprintf(want, sizeof want,
             "protobuf: field 2 of ConfigMap: truncated length-delimited value (50 bytes "
             "declared, 3 left) at byte %zu",
             raw_start + data_at);
    struct tn_err err = {0};
    ck_assert_ptr_null(decode_enc(&b, &err));
    ck_assert_int_eq(err.code, TN_EINVAL);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_malformed_inputs)
{
    struct enc raw, m, b;

    /* no magic */
    b = (struct enc){0};
    e_raw(&b, "{\"kind\":\"x\"}", 12);
    expect_fail(&b, TN_EINVAL, "does not start with the Kubernetes magic");

    /* empty envelope: no kind */
    b = (struct enc){0};
    e_raw(&b, "k8s\0", 4);
    expect_fail(&b, TN_EINVAL, "envelope has no kind");

    /* a group (wire type 3) inside ConfigMap */
    raw = (struct enc){0};
    m = meta_named("x");
    e_msg(&raw, 1, &m);
    e_tag(&raw, 7, 3);
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL, "field 7 of ConfigMap: groups (wire type 3) are not supported");

    /* invalid wire type 7 */
    raw = (struct enc){0};
    e_tag(&raw, 9, 7);
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL, "field 9 of ConfigMap: invalid wire type 7");

    /* field number 0 */
    raw = (struct enc){0};
    e_uint(&raw, 0, 1);
    b = body("v1", "Secret", &raw);
    expect_fail(&b, TN_EINVAL, "Secret: invalid field number 0");

    /* a varint of 11 bytes */
    raw = (struct enc){0};
    e_tag(&raw, 4, 0);
    e_raw(&raw, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL, "field 4 of ConfigMap: overlong varint");

    /* immutable (bool) sent as a string */
    raw = (struct enc){0};
    e_str(&raw, 4, "true");
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL,
                "field 4 of ConfigMap: expected a varint value, got length-delimited");

    /* deep error carries the JSON path: Deployment container name as a varint */
    struct enc ctr = {0}, ps = {0}, tpl = {0}, spec = {0};
    e_str(&ctr, 1, "ok");
    struct enc ctr2 = {0};
    e_uint(&ctr2, 1, 5);
    e_msg(&ps, 2, &ctr);
    e_msg(&ps, 2, &ctr2);
    e_msg(&tpl, 2, &ps);
    e_msg(&spec, 3, &tpl);
    raw = (struct enc){0};
    e_msg(&raw, 2, &spec);
    b = body("apps/v1", "Deployment", &raw);
    expect_fail(&b, TN_EINVAL,
                "field 1 of Container (at spec.template.spec.containers[1]): expected a "
                "length-delimited value, got varint");

    /* invalid UTF-8 in a name */
    raw = (struct enc){0};
    m = meta_named("bad\xc3(");
    e_msg(&raw, 1, &m);
    b = body("v1", "ServiceAccount", &raw);
    expect_fail(&b, TN_EINVAL, "field 1 of ObjectMeta (at metadata): string is not valid UTF-8");

    /* NUL inside a string (application/json refuses \u0000 as well) */
    raw = (struct enc){0};
    m = (struct enc){0};
    e_bytes(&m, 3, "a\0b", 3);
    e_msg(&raw, 1, &m);
    b = body("v1", "ServiceAccount", &raw);
    expect_fail(&b, TN_EINVAL, "field 3 of ObjectMeta (at metadata): string contains a NUL byte");

    /* NUL inside a map key */
    raw = (struct enc){0};
    struct enc entry = {0};
    e_bytes(&entry, 1, "a\0b", 3);
    e_str(&entry, 2, "v");
    e_msg(&raw, 2, &entry);
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL, "key is not a valid UTF-8 string without NUL bytes");

    /* IntOrString with an impossible type */
    struct enc ios = {0}, port = {0}, sspec = {0};
    e_uint(&ios, 1, 2);
    e_uint(&port, 3, 80);
    e_msg(&port, 4, &ios);
    e_msg(&sspec, 1, &port);
    raw = (struct enc){0};
    e_msg(&raw, 2, &sspec);
    b = body("v1", "Service", &raw);
    expect_fail(&b, TN_EINVAL, "type 2 is neither 0 (int) nor 1 (string)");

    /* Time out of range */
    struct enc t = {0};
    e_uint(&t, 1, (uint64_t)300000000000LL);
    m = meta_named("x");
    e_msg(&m, 8, &t);
    raw = (struct enc){0};
    e_msg(&raw, 1, &m);
    b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_EINVAL, "field 1 of Time (at metadata.creationTimestamp)");

    /* compressed or foreign payloads are refused, naming the kind */
    struct enc tm = {0};
    b = (struct enc){0};
    e_raw(&b, "k8s\0", 4);
    e_str(&tm, 1, "v1");
    e_str(&tm, 2, "ConfigMap");
    e_msg(&b, 1, &tm);
    e_bytes(&b, 2, "", 0);
    e_str(&b, 3, "gzip");
    expect_fail(&b, TN_EUNSUPPORTED, "v1 ConfigMap: contentEncoding \"gzip\" is not supported");

    tm = (struct enc){0};
    b = (struct enc){0};
    e_raw(&b, "k8s\0", 4);
    e_str(&tm, 1, "v1");
    e_str(&tm, 2, "ConfigMap");
    e_msg(&b, 1, &tm);
    e_str(&b, 4, "application/json");
    expect_fail(&b, TN_EUNSUPPORTED, "contentType \"application/json\" is not supported");

    raw = (struct enc){0};
    b = body("example.com/v1", "Widget", &raw);
    expect_fail(&b, TN_EUNSUPPORTED, "kind Widget (apiVersion example.com/v1) is not supported");
}
END_TEST

START_TEST(test_limits)
{
    /* more JSON values than TN_PROTOBUF_MAX_VALUES: that many finalizers */
    struct enc m = meta_named("x"), raw = {0};
    for (int i = 0; i <= TN_PROTOBUF_MAX_VALUES; i++)
        e_bytes(&m, 14, "f", 1);
    e_msg(&raw, 1, &m);
    struct enc b = body("v1", "ConfigMap", &raw);
    expect_fail(&b, TN_ETOOBIG, "more than 262144 values");

    /* bodies past the size cap are refused before being read */
    size_t big = TN_PROTOBUF_MAX_BYTES + 1;
    char *buf = calloc(1, big);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, "k8s\0", 4);
    struct tn_err err = {0};
    ck_assert_ptr_null(tn_protobuf_decode(buf, big, &err));
    ck_assert_int_eq(err.code, TN_ETOOBIG);
    free(buf);

    /* NULL err is allowed */
    ck_assert_ptr_null(tn_protobuf_decode("k8", 2, NULL));
}
END_TEST

START_TEST(test_object_meta_and_unknown_fields)
{
    struct enc m = {0}, t = {0}, owner = {0}, raw = {0};
    e_str(&m, 1, "cm");
    e_str(&m, 2, "cm-");
    e_str(&m, 3, "team-a");
    e_str(&m, 5, "0b9c1f3e-0000-4000-8000-000000000001");
    e_str(&m, 6, "42");
    e_uint(&m, 7, 7);
    e_uint(&t, 1, 1700000000);
    e_uint(&t, 2, 5); /* nanos are dropped, as Go does */
    e_msg(&m, 8, &t);
    e_map(&m, 11, "app", "web");
    e_map(&m, 11, "tier", "");
    e_map(&m, 12, "note", "hello \xc3\xa9");
    e_str(&owner, 5, "apps/v1");
    e_str(&owner, 1, "ReplicaSet");
    e_str(&owner, 3, "web-1");
    e_str(&owner, 4, "u-1");
    e_uint(&owner, 6, 1);
    e_uint(&owner, 7, 0);
    e_msg(&m, 13, &owner);
    e_str(&m, 14, "example.com/a");
    e_str(&m, 14, "example.com/b");
    /* unknown fields of every wire type are skipped */
    e_uint(&m, 99, 1);
    e_tag(&m, 98, 1);
    e_raw(&m, "12345678", 8);
    e_tag(&m, 97, 5);
    e_raw(&m, "1234", 4);
    e_str(&m, 96, "ignored");
    e_msg(&raw, 1, &m);
    e_uint(&raw, 4, 0);            /* immutable=false: a pointer, so it stays */
    e_map(&raw, 2, "empty", NULL); /* entry without value */
    e_map(&raw, 2, "k", "v");
    e_map(&raw, 3, "bin", "\x01\x02"); /* binaryData is bytes */
    e_uint(&raw, 50, 3);
    struct enc b = body("v1", "ConfigMap", &raw);
    struct tn_err err = {0};
    json_t *got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"cm\","
                     "\"generateName\":\"cm-\",\"namespace\":\"team-a\",\"uid\":"
                     "\"0b9c1f3e-0000-4000-8000-000000000001\",\"resourceVersion\":\"42\","
                     "\"generation\":7,\"creationTimestamp\":\"2023-11-14T22:13:20Z\","
                     "\"labels\":{\"app\":\"web\",\"tier\":\"\"},\"annotations\":{\"note\":"
                     "\"hello \\u00e9\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
                     "\"kind\":\"ReplicaSet\",\"name\":\"web-1\",\"uid\":\"u-1\",\"controller\":"
                     "true,\"blockOwnerDeletion\":false}],\"finalizers\":[\"example.com/a\","
                     "\"example.com/b\"]},\"immutable\":false,\"data\":{\"empty\":\"\",\"k\":"
                     "\"v\"},\"binaryData\":{\"bin\":\"AQI=\"}}");
    json_decref(got);
}
END_TEST

START_TEST(test_workload_fields)
{
    /* Deployment: replicas=0 kept (pointer), strategy with IntOrString int and string */
    struct enc ru = {0}, ios1 = {0}, ios2 = {0}, strat = {0}, spec = {0}, raw = {0};
    e_uint(&ios1, 1, 0);
    e_uint(&ios1, 2, 1);
    e_uint(&ios2, 1, 1);
    e_str(&ios2, 3, "25%");
    e_msg(&ru, 1, &ios1);
    e_msg(&ru, 2, &ios2);
    e_str(&strat, 1, "RollingUpdate");
    e_msg(&strat, 2, &ru);
    e_uint(&spec, 1, 0);
    e_msg(&spec, 4, &strat);
    e_uint(&spec, 5, 0); /* minReadySeconds 0: omitempty */
    e_msg(&raw, 2, &spec);
    struct enc b = body("apps/v1", "Deployment", &raw);
    struct tn_err err = {0};
    json_t *got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"spec\":{\"replicas\":0,"
                     "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{"
                     "\"maxUnavailable\":1,\"maxSurge\":\"25%\"}}}}");
    json_decref(got);

    /* Pod: init containers, volumes (inline VolumeSource), grace period 0 kept, env valueFrom */
    struct enc init = {0}, c1 = {0}, env = {0}, from = {0}, ref = {0}, v1 = {0}, v2 = {0};
    struct enc hp = {0}, ed = {0}, ps = {0}, pod = {0}, t0 = {0}, m = meta_named("p");
    e_str(&init, 1, "init");
    e_str(&init, 2, "busybox");
    e_str(&init, 4, "--once");
    e_str(&init, 4, "");
    e_str(&c1, 1, "main");
    e_str(&c1, 2, "nginx");
    e_str(&ref, 2, "metadata.name");
    e_msg(&from, 1, &ref);
    e_str(&env, 1, "POD");
    e_msg(&env, 3, &from);
    e_msg(&c1, 7, &env);
    e_str(&v1, 1, "cache");
    e_msg(&ed, 2, &t0); /* emptyDir{} */
    e_msg(&v1, 2, &ed);
    e_str(&hp, 1, "/var/log");
    e_str(&hp, 2, "Directory");
    struct enc vs = {0};
    e_msg(&vs, 1, &hp);
    e_str(&v2, 1, "logs");
    e_msg(&v2, 2, &vs);
    e_msg(&ps, 1, &v1);
    e_msg(&ps, 1, &v2);
    e_msg(&ps, 20, &init);
    e_msg(&ps, 2, &c1);
    e_str(&ps, 3, "Always");
    e_uint(&ps, 4, 0);
    e_str(&ps, 8, "builder");
    e_str(&ps, 10, "node-1");
    e_uint(&ps, 11, 1);
    e_uint(&ps, 12, 0);
    e_msg(&pod, 1, &m);
    e_msg(&pod, 2, &ps);
    b = body("v1", "Pod", &pod);
    got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\"},"
                     "\"spec\":{\"volumes\":[{\"name\":\"cache\",\"emptyDir\":{}},{\"name\":"
                     "\"logs\",\"hostPath\":{\"path\":\"/var/log\",\"type\":\"Directory\"}}],"
                     "\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox\",\"args\":["
                     "\"--once\",\"\"]}],\"containers\":[{\"name\":\"main\",\"image\":\"nginx\","
                     "\"env\":[{\"name\":\"POD\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
                     "\"metadata.name\"}}}]}],\"restartPolicy\":\"Always\","
                     "\"terminationGracePeriodSeconds\":0,\"serviceAccountName\":\"builder\","
                     "\"nodeName\":\"node-1\",\"hostNetwork\":true}}");
    json_decref(got);
}
END_TEST

START_TEST(test_scalar_edge_cases)
{
    /* last occurrence wins, even when it is a zero that omitempty drops; negative int64; a
     * Time at the epoch is a time, an empty Time is null */
    struct enc m = meta_named("s"), t = {0}, t0 = {0}, raw = {0};
    e_uint(&m, 7, (uint64_t)-1);
    e_uint(&t, 1, 0);
    e_msg(&m, 8, &t);
    e_msg(&m, 9, &t0);
    e_msg(&raw, 1, &m);
    e_str(&raw, 3, "Opaque");
    e_str(&raw, 3, "");
    e_map(&raw, 4, "plain", "text");
    e_uint(&raw, 5, 1);
    struct enc b = body("v1", "Secret", &raw);
    struct tn_err err = {0};
    json_t *got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"s\","
                     "\"generation\":-1,\"creationTimestamp\":\"1970-01-01T00:00:00Z\","
                     "\"deletionTimestamp\":null},\"stringData\":{\"plain\":\"text\"},"
                     "\"immutable\":true}");
    json_decref(got);

    /* Namespace spec.finalizers and a service account's secrets */
    struct enc nss = {0}, ns = meta_named("team");
    raw = (struct enc){0};
    e_msg(&raw, 1, &ns);
    e_str(&nss, 1, "kubernetes");
    e_msg(&raw, 2, &nss);
    b = body("v1", "Namespace", &raw);
    got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                     "\"team\"},\"spec\":{\"finalizers\":[\"kubernetes\"]}}");
    json_decref(got);

    struct enc sa = meta_named("sa"), sec = {0}, ips = {0};
    raw = (struct enc){0};
    e_msg(&raw, 1, &sa);
    e_str(&sec, 3, "sa-token");
    e_msg(&raw, 2, &sec);
    e_str(&ips, 1, "regcred");
    e_msg(&raw, 3, &ips);
    e_uint(&raw, 4, 0);
    b = body("v1", "ServiceAccount", &raw);
    got = decode_enc(&b, &err);
    ck_assert_msg(got != NULL, "%s", err.msg);
    assert_json(got, "{\"kind\":\"ServiceAccount\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                     "\"sa\"},\"secrets\":[{\"name\":\"sa-token\"}],\"imagePullSecrets\":[{"
                     "\"name\":\"regcred\"}],\"automountServiceAccountToken\":false}");
    json_decref(got);
}
END_TEST

static Suite *protobuf_suite(void)
{
    Suite *s = suite_create("apiserver_protobuf");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_real_vectors);
    tcase_add_test(tc, test_unsupported_kind_named);
    tcase_add_test(tc, test_every_prefix);
    tcase_add_test(tc, test_byte_mutations);
    tcase_add_test(tc, test_truncated_value_names_field_and_byte);
    tcase_add_test(tc, test_malformed_inputs);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_object_meta_and_unknown_fields);
    tcase_add_test(tc, test_workload_fields);
    tcase_add_test(tc, test_scalar_edge_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(protobuf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
