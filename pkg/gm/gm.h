/* The tandem-gm daemon as a library: configuration (flags and YAML file share one key set),
 * and tn_gm_run, which wires the kube client, the controller manager with the Dataset and Model
 * controllers, the LC message layer on its websocket server, the metrics and health servers and
 * leader election, and runs until SIGTERM/SIGINT or lost leadership. See docs/gm.md.
 *
 * Ownership: a struct tn_gm_config owns its strings (tn_gm_config_free). Threading: tn_gm_run
 * takes over the calling thread and installs SIGTERM/SIGINT handlers; call it once. */
#ifndef TN_GM_GM_H
#define TN_GM_GM_H

#include <stddef.h>

#include "base/err.h"

struct tn_gm_config {
    char *kubeconfig;                /* NULL: $KUBECONFIG, in-cluster, ~/.kube/config */
    char *namespace_;                /* namespace the controllers watch; "" = all */
    char *ws_listen;                 /* LC websocket, default "0.0.0.0:9000" */
    char *metrics_listen;            /* /metrics, default "127.0.0.1:8080" */
    char *health_listen;             /* /healthz, /readyz, default "127.0.0.1:8081" */
    char *node_tokens;               /* "node,token" file; NULL = any node (Sedna) */
    int leader_elect;                /* default 1: Lease tandem-gm */
    char *leader_election_namespace; /* NULL: $POD_NAMESPACE, the kubeconfig's, "default" */
    char *log_level;                 /* debug|info|warn|error, default info */
    char *log_format;                /* text|json, default text */
};

/* Fills the defaults. Returns 0 or TN_ENOMEM. */
int tn_gm_config_init(struct tn_gm_config *c);
void tn_gm_config_free(struct tn_gm_config *c);
/* Sets one key (the flag name without "--": "ws-listen", "leader-elect"...; the YAML keys are
 * the same) from its text value, validating it. Errors name the key. */
int tn_gm_config_set(struct tn_gm_config *c, const char *key, const char *value,
                     struct tn_err *err);
/* Applies a YAML mapping file of the same keys (scalars; booleans for leader-elect). Unknown
 * keys are errors naming the file and the key. */
int tn_gm_config_load_file(struct tn_gm_config *c, const char *path, struct tn_err *err);
/* Checks cross-field consistency (listen addresses parse, token file readable...). */
int tn_gm_config_validate(const struct tn_gm_config *c, struct tn_err *err);

/* Splits "addr:port" (port 0..65535; "[v6]:port" accepted). addr gets at most n bytes. */
int tn_gm_parse_listen(const char *s, char *addr, size_t n, int *port);

/* Runs the GM. Returns 0 after a graceful SIGTERM/SIGINT shutdown, nonzero (with err) when
 * start-up fails or leadership is lost (the process must then exit non-zero, as
 * controller-runtime does). */
int tn_gm_run(const struct tn_gm_config *c, struct tn_err *err);

#endif
