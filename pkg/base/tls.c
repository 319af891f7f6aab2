/* Self-signed CA, serving and client certificates for the apiserver's --tls mode; see tls.h.
 * Files are written through a temporary name and rename(2) so a crash never leaves a truncated
 * key behind, and existing files are only ever read, never replaced. */
#include "base/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_DAYS 3650
#define LEAF_DAYS 365
/* notBefore is backdated so that peers with slightly slow clocks accept a fresh certificate */
#define BACKDATE_SECS 300
/* paths are built in 4096-byte buffers as dir + "/." + name + ".tmp." + pid */
#define PATH_MAX_DIR 4000

struct cert_spec {
    const char *cn;
    const char *org;
    long days;
    int is_ca;
    const char *key_usage;
    const char *ext_key_usage; /* NULL for the CA */
    const char *const *hosts;  /* subjectAltName entries, or NULL */
    size_t nhosts;
};

static int ossl_fail(struct tn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills err with the message plus OpenSSL's most recent reason, and clears OpenSSL's error
 * queue so that the next failure does not report a stale reason. */
static int ossl_fail(struct tn_err *err, int code, const char *fmt, ...)
{
    char msg[TN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        tn_err_set(err, code, "%s (openssl: %s)", msg, reason);
    else
        tn_err_set(err, code, "%s", msg);
    ERR_clear_error();
    return code;
}

static void join(char *out, size_t outsz, const char *dir, const char *name)
{
    snprintf(out, outsz, "%s/%s", dir, name);
}

/* 1 if path exists, 0 if not, negative with err set when it cannot be checked. */
static int exists(const char *path, struct tn_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    if (errno == ENOENT) return 0;
    return tn_err_set(err, TN_EIO, "%s: %s", path, strerror(errno));
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1; /* encrypted keys are not supported: fail instead of prompting on a tty */
}

static int load_cert(const char *path, X509 **out, struct tn_err *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return tn_err_set(err, errno == ENOENT ? TN_ENOTFOUND : TN_EIO, "%s: %s", path,
                          strerror(errno));
    *out = PEM_read_X509(fp, NULL, no_passphrase, NULL);
    fclose(fp);
    if (!*out) {
        return ossl_fail(err, TN_EINVAL, "%s: not a valid PEM certificate", path);
    }
    return 0;
}

static int load_key(const char *path, EVP_PKEY **out, struct tn_err *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return tn_err_set(err, errno == ENOENT ? TN_ENOTFOUND : TN_EIO, "%s: %s", path,
                          strerror(errno));
    *out = PEM_read_PrivateKey(fp, NULL, no_passphrase, NULL);
    fclose(fp);
    if (!*out) {
        return ossl_fail(err, TN_EINVAL, "%s: not a valid unencrypted PEM private key", path);
    }
    return 0;
}

/* Loads a certificate and its key and checks that they belong together. */
static int load_pair(const char *crt_path, const char *key_path, X509 **crt, EVP_PKEY **key,
                     struct tn_err *err)
{
    int rc = load_cert(crt_path, crt, err);
    if (!rc) rc = load_key(key_path, key, err);
    if (!rc && X509_check_private_key(*crt, *key) != 1) {
        rc = ossl_fail(err, TN_EINVAL, "%s does not match the certificate in %s", key_path,
                       crt_path);
    }
    if (rc) {
        X509_free(*crt);
        EVP_PKEY_free(*key);
        *crt = NULL;
        *key = NULL;
    }
    return rc;
}

/* malloc'd NUL-terminated copy of a memory BIO's contents. */
static char *bio_string(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = 0;
    }
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = bio && PEM_write_bio_X509(bio, x) ? bio_string(bio) : NULL;
    BIO_free(bio);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s =
        bio && PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) ? bio_string(bio) : NULL;
    BIO_free(bio);
    return s;
}

/* Writes data to dir/name via a temporary file and rename, with the given mode. */
static int write_file(const char *dir, const char *name, const char *data, mode_t mode,
                      struct tn_err *err)
{
    char path[4096], tmp[4096];
    join(path, sizeof(path), dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    unlink(tmp); /* a leftover from a crashed run */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return tn_err_set(err, TN_EIO, "%s: %s", tmp, strerror(errno));
    size_t len = strlen(data), off = 0;
    int rc = 0;
    if (fchmod(fd, mode) != 0) /* the umask must not loosen or tighten what we promise */
        rc = errno;
    while (!rc && off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
            rc = errno;
        else
            off += (size_t)w;
    }
    if (!rc && fsync(fd) != 0) rc = errno;
    if (close(fd) != 0 && !rc) rc = errno;
    if (!rc && rename(tmp, path) != 0) rc = errno;
    if (rc) {
        unlink(tmp);
        return tn_err_set(err, TN_EIO, "%s: %s", path, strerror(rc));
    }
    return 0;
}

static int gen_key(EVP_PKEY **out, struct tn_err *err)
{
    *out = EVP_EC_gen("P-256");
    return *out ? 0 : ossl_fail(err, TN_EINTERNAL, "generating an EC P-256 key failed");
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A DNS name we are willing to put in a certificate: letters, digits, '-', '.', '_' and a
 * leading "*." wildcard. */
static int valid_dns(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253) return 0;
    if (h[0] == '*' && h[1] == '.') h += 2;
    for (; *h; h++) {
        char c = *h;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

static int add_sans(X509 *x, const char *const *hosts, size_t nhosts, struct tn_err *err)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = gens ? 0 : tn_err_set(err, TN_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < nhosts; i++) {
        const char *h = hosts[i];
        unsigned char addr[16];
        GENERAL_NAME *gen = GENERAL_NAME_new();
        if (!gen) {
            rc = tn_err_set(err, TN_ENOMEM, "out of memory");
            break;
        }
        if (h && (inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)) {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(h);
            if (!ip) {
                GENERAL_NAME_free(gen);
                rc = ossl_fail(err, TN_EINVAL, "cannot encode IP address for subjectAltName");
                break;
            }
            GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
        } else if (h && valid_dns(h)) {
            ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
            if (!dns || !ASN1_STRING_set(dns, h, (int)strlen(h))) {
                ASN1_IA5STRING_free(dns);
                GENERAL_NAME_free(gen);
                rc = tn_err_set(err, TN_ENOMEM, "out of memory");
                break;
            }
            GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
        } else {
            GENERAL_NAME_free(gen);
            rc = tn_err_set(err, TN_EINVAL,
                            "invalid host \"%s\" for the serving certificate: expected an IP "
                            "address or a DNS name",
                            h ? h : "(null)");
            break;
        }
        if (!sk_GENERAL_NAME_push(gens, gen)) {
            GENERAL_NAME_free(gen);
            rc = tn_err_set(err, TN_ENOMEM, "out of memory");
        }
    }
    if (!rc && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = ossl_fail(err, TN_EINTERNAL, "adding subjectAltName failed");
    GENERAL_NAMES_free(gens);
    return rc;
}

/* *out = new certificate for key, signed by issuer_key; issuer NULL means self-signed. */
static int make_cert(const struct cert_spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                     X509 **out, struct tn_err *err)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    X509_NAME *name = X509_NAME_new();
    int rc = (!x || !bn || !name) ? tn_err_set(err, TN_ENOMEM, "out of memory") : 0;

    /* random positive serial: at most 20 octets per RFC 5280 */
    if (!rc && (!X509_set_version(x, X509_VERSION_3) ||
                !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
                !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
                !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECS) ||
                !X509_time_adj_ex(X509_getm_notAfter(x), (int)s->days, 0, NULL) ||
                !X509_set_pubkey(x, key)))
        rc = ossl_fail(err, TN_EINTERNAL, "building certificate failed");
    if (!rc && (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
                                            -1, -1, 0) ||
                (s->org && *s->org &&
                 !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                             (const unsigned char *)s->org, -1, -1, 0)) ||
                !X509_set_subject_name(x, name) ||
                !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name)))
        rc = ossl_fail(err, TN_EINVAL, "invalid certificate subject");
    X509 *iss = issuer ? issuer : x;
    if (!rc && (add_ext(x, iss, NID_basic_constraints,
                        s->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
                add_ext(x, iss, NID_key_usage, s->key_usage) ||
                (s->ext_key_usage && add_ext(x, iss, NID_ext_key_usage, s->ext_key_usage)) ||
                add_ext(x, iss, NID_subject_key_identifier, "hash") ||
                add_ext(x, iss, NID_authority_key_identifier, "keyid:always")))
        rc = ossl_fail(err, TN_EINTERNAL, "adding certificate extensions failed");
    if (!rc && s->nhosts) rc = add_sans(x, s->hosts, s->nhosts, err);
    if (!rc && !X509_sign(x, issuer_key, EVP_sha256()))
        rc = ossl_fail(err, TN_EINTERNAL, "signing certificate failed");
    BN_free(bn);
    X509_NAME_free(name);
    if (rc) {
        X509_free(x);
        x = NULL;
    }
    *out = x;
    return rc;
}

/* Writes a key (0600) and its certificate (0644) under dir. */
static int write_pair(const char *dir, const char *crt_name, X509 *crt, const char *key_name,
                      EVP_PKEY *key, struct tn_err *err)
{
    char *kp = key_pem(key), *cp = cert_pem(crt);
    int rc = (!kp || !cp) ? tn_err_set(err, TN_ENOMEM, "out of memory") : 0;
    if (!rc) rc = write_file(dir, key_name, kp, 0600, err);
    if (!rc) rc = write_file(dir, crt_name, cp, 0644, err);
    if (kp) OPENSSL_cleanse(kp, strlen(kp));
    free(kp);
    free(cp);
    return rc;
}

/* Loads the CA pair, or with create set, generates it when neither file exists. */
static int get_ca(const char *dir, int create, X509 **ca, EVP_PKEY **cakey, struct tn_err *err)
{
    char crt_path[4096], key_path[4096];
    join(crt_path, sizeof(crt_path), dir, "ca.crt");
    join(key_path, sizeof(key_path), dir, "ca.key");
    int have_crt = exists(crt_path, err), have_key;
    if (have_crt < 0) return have_crt;
    if ((have_key = exists(key_path, err)) < 0) return have_key;
    if (have_crt && have_key) return load_pair(crt_path, key_path, ca, cakey, err);
    if (have_crt || have_key)
        return tn_err_set(err, TN_EINVAL,
                          "%s is missing (%s exists); the CA is never regenerated over existing "
                          "files: restore it, or remove both to create a new CA",
                          have_crt ? key_path : crt_path, have_crt ? crt_path : key_path);
    if (!create)
        return tn_err_set(err, TN_ENOTFOUND, "%s and %s do not exist (no CA in %s yet)", crt_path,
                          key_path, dir);

    static const struct cert_spec spec = {
        .cn = "tandem-ca",
        .days = CA_DAYS,
        .is_ca = 1,
        .key_usage = "critical,keyCertSign,cRLSign,digitalSignature",
    };
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    int rc = gen_key(&k, err);
    if (!rc) rc = make_cert(&spec, k, NULL, k, &x, err);
    if (!rc) rc = write_pair(dir, "ca.crt", x, "ca.key", k, err);
    if (rc) {
        X509_free(x);
        EVP_PKEY_free(k);
        return rc;
    }
    *ca = x;
    *cakey = k;
    return 0;
}

static int ensure_dir(const char *dir, struct tn_err *err)
{
    struct stat st;
    if (!dir || !*dir) return tn_err_set(err, TN_EINVAL, "certificate directory not set");
    if (strlen(dir) > PATH_MAX_DIR)
        return tn_err_set(err, TN_EINVAL, "certificate directory path too long");
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : tn_err_set(err, TN_EINVAL, "%s: not a directory", dir);
    if (errno == ENOENT && mkdir(dir, 0700) == 0) return 0;
    return tn_err_set(err, TN_EIO, "%s: %s", dir, strerror(errno));
}

int tn_tls_ensure_certs(const char *dir, const char *const *hosts, size_t nhosts,
                        struct tn_err *err)
{
    static const char *const default_hosts[] = {"localhost", "127.0.0.1", "::1"};
    X509 *ca = NULL, *srv = NULL;
    EVP_PKEY *cakey = NULL, *srvkey = NULL;
    char crt_path[4096], key_path[4096];

    int rc = ensure_dir(dir, err);
    if (!rc) rc = get_ca(dir, 1, &ca, &cakey, err);
    if (rc) goto out;
    join(crt_path, sizeof(crt_path), dir, "server.crt");
    join(key_path, sizeof(key_path), dir, "server.key");
    int have_crt = exists(crt_path, err), have_key = exists(key_path, err);
    if (have_crt < 0 || have_key < 0) {
        rc = have_crt < 0 ? have_crt : have_key;
        goto out;
    }
    if (have_crt && have_key) {
        if ((rc = load_pair(crt_path, key_path, &srv, &srvkey, err))) goto out;
        if (X509_verify(srv, cakey) != 1)
            rc =
                ossl_fail(err, TN_EINVAL, "%s is not signed by the CA in %s/ca.crt", crt_path, dir);
        goto out;
    }
    if (have_crt || have_key) {
        rc = tn_err_set(err, TN_EINVAL,
                        "%s is missing (%s exists); remove both to issue a new serving "
                        "certificate",
                        have_crt ? key_path : crt_path, have_crt ? crt_path : key_path);
        goto out;
    }
    if (!hosts || nhosts == 0) {
        hosts = default_hosts;
        nhosts = sizeof(default_hosts) / sizeof(default_hosts[0]);
    }
    const struct cert_spec spec = {
        .cn = "tandem-apiserver",
        .days = LEAF_DAYS,
        .key_usage = "critical,digitalSignature,keyEncipherment",
        .ext_key_usage = "serverAuth",
        .hosts = hosts,
        .nhosts = nhosts,
    };
    if ((rc = gen_key(&srvkey, err)) || (rc = make_cert(&spec, srvkey, ca, cakey, &srv, err)))
        goto out;
    rc = write_pair(dir, "server.crt", srv, "server.key", srvkey, err);
out:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(srvkey);
    return rc;
}

int tn_tls_gen_client_cert(const char *dir, const char *cn, const char *org, char **cert_out,
                           char **key_out, struct tn_err *err)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *cakey = NULL, *k = NULL;
    *cert_out = *key_out = NULL;
    if (!cn || !*cn)
        return tn_err_set(err, TN_EINVAL, "client certificate needs a common name (user)");
    if (!dir || strlen(dir) > PATH_MAX_DIR)
        return tn_err_set(err, TN_EINVAL, "invalid certificate directory");
    int rc = get_ca(dir, 0, &ca, &cakey, err);
    if (rc) return rc;
    const struct cert_spec spec = {
        .cn = cn,
        .org = org,
        .days = LEAF_DAYS,
        .key_usage = "critical,digitalSignature,keyEncipherment",
        .ext_key_usage = "clientAuth",
    };
    if ((rc = gen_key(&k, err)) || (rc = make_cert(&spec, k, ca, cakey, &x, err))) goto out;
    *cert_out = cert_pem(x);
    *key_out = key_pem(k);
    if (!*cert_out || !*key_out) {
        free(*cert_out);
        free(*key_out);
        *cert_out = *key_out = NULL;
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    }
out:
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(k);
    return rc;
}
