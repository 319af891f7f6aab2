/* Connection settings for a Kubernetes API server: from kubeconfig files (several merged, as
 * $KUBECONFIG lists them) or from the in-cluster service account. TLS material is kept in memory
 * (PEM) and handed to libcurl as blobs, never written to temporary files.
 * Ownership: tn_kube_config_free releases everything. Thread-safety: a loaded config is
 * read-only, except the token source, which has its own lock. */
#ifndef TN_KUBE_CONFIG_H
#define TN_KUBE_CONFIG_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "base/err.h"

struct tn_kube_config {
    char *server;          /* "https://10.0.0.1:6443", no trailing slash */
    char *ca_pem;          /* CA bundle (PEM) or NULL: system trust */
    char *cert_pem;        /* client certificate (PEM) or NULL */
    char *key_pem;         /* client key (PEM) or NULL */
    char *token;           /* static bearer token or NULL */
    char *token_file;      /* bearer token file, re-read every 60 s and after a 401 */
    char *namespace_;      /* default namespace ("default" when unset) */
    char *context;         /* context name used ("" in-cluster) */
    int insecure;          /* insecure-skip-tls-verify */
    char *tls_server_name; /* cluster tls-server-name (SNI / verified name) or NULL */
    /* token file cache */
    pthread_mutex_t mu;
    char *cached_token;
    time_t token_read_at;
};

/* Loads a kubeconfig: path if given, else $KUBECONFIG (colon-separated, merged with the first
 * file winning per name, like kubectl; files that do not exist are skipped), else
 * ~/.kube/config. context NULL = current-context (taken from the first file that sets it).
 * Relative certificate-authority / client-certificate / client-key / tokenFile paths are
 * resolved against the directory of the file that holds the entry; tokenFile is read once here
 * so an unreadable file fails early. Unsupported auth (exec, auth-provider, basic auth,
 * impersonation) and proxy-url are errors naming the user/cluster entry rather than being
 * silently ignored. Errors name the file and the field ("kubeconfig /x:
 * users[0].user.client-key-data: invalid base64"). Returns NULL with err set. */
struct tn_kube_config *tn_kube_config_load(const char *path, const char *context,
                                           struct tn_err *err);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, /var/run/secrets/kubernetes.io/serviceaccount/
 * {token,ca.crt,namespace}; sa_dir overrides that directory (tests). */
struct tn_kube_config *tn_kube_config_incluster(const char *sa_dir, struct tn_err *err);
/* kubeconfig path if given or $KUBECONFIG set, else in-cluster when its env is set, else
 * ~/.kube/config. */
struct tn_kube_config *tn_kube_config_auto(const char *path, struct tn_err *err);
/* Wipes key material and tokens from memory, then frees. NULL is ignored. */
void tn_kube_config_free(struct tn_kube_config *c);

/* The bearer token to send now (malloc'd, caller frees), or NULL when none. Re-reads
 * token_file when older than 60 s or when force is set (after a 401); surrounding whitespace is
 * trimmed. When the re-read fails (file briefly missing during rotation) the last good token is
 * kept; the file's token takes precedence over the static token, as in client-go.
 * token_read_at is on the monotonic clock (seconds). Thread-safe. */
char *tn_kube_config_token(struct tn_kube_config *c, int force);

#endif
