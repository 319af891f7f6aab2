/* tandem-apiserver: a single-process, Kubernetes-API-compatible control plane with sqlite storage,
 * CRDs, watches, tables and OpenAPI for real kubectl, and the minimal controllers one machine needs
 * (garbage collector, namespace cleanup, Deployments, Endpoints).
 * Threading: everything runs on one loop thread inside tn_apiserver_run; tn_apiserver_stop is
 * thread-safe. Ownership: the config strings are borrowed and must outlive the server. */
#ifndef TN_APISERVER_APISERVER_H
#define TN_APISERVER_APISERVER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tn_apiserver_config {
    const char *addr;           /* default 127.0.0.1 */
    int port;                   /* default 6443; 0 picks a free port */
    const char *data;           /* sqlite file or ":memory:" */
    const char *kubeconfig_out; /* write a kubeconfig here (optional) */
    int tls;                    /* serve HTTPS with certificates in cert_dir */
    const char *cert_dir;       /* default: <data>.pki or ./tandem-pki */
    const char *token_file;     /* static tokens CSV: token,user,uid[,"group1,group2"] */
    const char *advertise;      /* host name/IP put in the kubeconfig, default addr */
    size_t watch_history;       /* retained events, default 10000 */
    int64_t bookmark_ms;        /* BOOKMARK period, default 60000 */
    int64_t controller_ms;      /* controller/GC tick, default 200 */
};

struct tn_apiserver;

struct tn_apiserver *tn_apiserver_new(const struct tn_apiserver_config *cfg, struct tn_err *err);
int tn_apiserver_run(struct tn_apiserver *a);
void tn_apiserver_stop(struct tn_apiserver *a); /* thread-safe */
void tn_apiserver_free(struct tn_apiserver *a);
int tn_apiserver_port(const struct tn_apiserver *a);

#endif
