/* Certificates for tandem-apiserver's --tls mode (OpenSSL 3): a self-signed CA and a serving
 * certificate created on first start and reused afterwards, and client certificates issued by
 * that CA for kubeconfigs. All keys are EC P-256, certificates are signed with SHA-256.
 * Ownership: returned PEM strings are malloc'd, the caller frees. Thread-safe (no shared state;
 * OpenSSL 3 initialises itself). */
#ifndef TN_BASE_TLS_H
#define TN_BASE_TLS_H

#include <stddef.h>

#include "base/err.h"

/* Makes sure dir holds ca.crt, ca.key, server.crt and server.key (dir itself is created 0700 if
 * missing). Missing files are generated: the CA (CN "tandem-ca", 10 years, CA:TRUE, keyCertSign)
 * when neither CA file exists, and the serving certificate (CN "tandem-apiserver", 1 year,
 * serverAuth, one subjectAltName per host: IP: when the host parses as an IPv4/IPv6 address,
 * DNS: otherwise; nhosts == 0 means localhost, 127.0.0.1 and ::1) when neither server file
 * exists. Keys are written 0600, certificates 0644, each through a temporary file and rename.
 * Existing files are never overwritten: they are loaded and checked (PEM syntax, key matches
 * certificate, server certificate issued by the CA), and any problem is an error naming the
 * file, as is a pair with one half missing. The SANs of an existing serving certificate are not
 * compared with hosts; delete server.crt and server.key to re-issue it.
 * Returns 0, TN_EINVAL (bad host or file contents), TN_EIO (filesystem), TN_ENOMEM. */
int tn_tls_ensure_certs(const char *dir, const char *const *hosts, size_t nhosts,
                        struct tn_err *err);

/* Issues a client certificate (clientAuth, 1 year) signed by dir/ca.crt + dir/ca.key, with
 * subject CN=cn and, when org is non-NULL and non-empty, O=org (Kubernetes reads them as user
 * and group). On success *cert_pem and *key_pem are malloc'd PEM strings (key in PKCS#8). */
int tn_tls_gen_client_cert(const char *dir, const char *cn, const char *org, char **cert_pem,
                           char **key_pem, struct tn_err *err);

#endif
