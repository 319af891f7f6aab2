/* Unit tests for pkg/base/tls: the generated CA and serving certificate verify and carry the
 * requested SANs, keys are private, existing files are reused and never overwritten (corrupt
 * ones are reported by name), and client certificates chain to the CA. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/tls.h"

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    char *buf = malloc(65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static void spit(const char *path, const char *data)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    fputs(data, fp);
    fclose(fp);
}

static X509 *pem_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ck_assert_msg(x != NULL, "not a PEM certificate:\n%s", pem);
    return x;
}

static X509 *file_cert(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *pem = slurp(path);
    X509 *x = pem_cert(pem);
    free(pem);
    return x;
}

static void make_tmpdir(char *out, size_t outsz)
{
    snprintf(out, outsz, "/tmp/tn_tls_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static void rm_tree(const char *dir)
{
    static const char *const names[] = {"ca.crt", "ca.key", "server.crt", "server.key"};
    char path[512];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Verifies leaf against ca for the given purpose (X509_PURPOSE_SSL_SERVER/CLIENT). */
static int verify(X509 *ca, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fprintf(stderr, "verify: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void assert_cn(X509 *x, int nid, const char *want)
{
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, sizeof(buf));
    ck_assert_str_eq(buf, want);
}

static int validity_days(X509 *x)
{
    int days = 0, secs = 0;
    ck_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    return days;
}

static void assert_p256(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    char group[64] = "";
    ck_assert(EVP_PKEY_get_group_name(k, group, sizeof(group), NULL));
    ck_assert_str_eq(group, "prime256v1");
}

static mode_t mode_of(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 0777;
}

START_TEST(test_generate_and_verify)
{
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    const char *hosts[] = {"127.0.0.1", "localhost", "::1", "api.tandem.example"};
    struct tn_err err = {0};
    ck_assert_msg(tn_tls_ensure_certs(dir, hosts, 4, &err) == 0, "%s", err.msg);

    X509 *ca = file_cert(dir, "ca.crt"), *srv = file_cert(dir, "server.crt");
    assert_cn(ca, NID_commonName, "tandem-ca");
    assert_cn(srv, NID_commonName, "tandem-apiserver");
    ck_assert_int_ge(X509_check_ca(ca), 1);
    ck_assert_int_eq(X509_check_ca(srv), 0);
    ck_assert(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    ck_assert(X509_get_extended_key_usage(srv) & XKU_SSL_SERVER);
    ck_assert_int_ge(validity_days(ca), 3649);
    ck_assert_int_le(validity_days(ca), 3651);
    ck_assert_int_ge(validity_days(srv), 364);
    ck_assert_int_le(validity_days(srv), 366);
    assert_p256(ca);
    assert_p256(srv);

    ck_assert_int_eq(verify(ca, srv, X509_PURPOSE_SSL_SERVER), 1);

    /* SANs: IPs as iPAddress entries, names as dNSName entries */
    ck_assert_int_eq(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    ck_assert_int_eq(X509_check_ip_asc(srv, "::1", 0), 1);
    ck_assert_int_eq(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    ck_assert_int_eq(X509_check_host(srv, "api.tandem.example", 0, 0, NULL), 1);
    ck_assert_int_ne(X509_check_host(srv, "other.example", 0, 0, NULL), 1);
    ck_assert_int_ne(X509_check_ip_asc(srv, "10.0.0.1", 0), 1);
    GENERAL_NAMES *gens = X509_get_ext_d2i(srv, NID_subject_alt_name, NULL, NULL);
    ck_assert_ptr_nonnull(gens);
    ck_assert_int_eq(sk_GENERAL_NAME_num(gens), 4);
    ck_assert_int_eq(sk_GENERAL_NAME_value(gens, 0)->type, GEN_IPADD);
    ck_assert_int_eq(sk_GENERAL_NAME_value(gens, 1)->type, GEN_DNS);
    ck_assert_int_eq(sk_GENERAL_NAME_value(gens, 2)->type, GEN_IPADD);
    ck_assert_int_eq(sk_GENERAL_NAME_value(gens, 3)->type, GEN_DNS);
    GENERAL_NAMES_free(gens);

    ck_assert_uint_eq(mode_of(dir, "ca.key"), 0600);
    ck_assert_uint_eq(mode_of(dir, "server.key"), 0600);
    ck_assert_uint_eq(mode_of(dir, "ca.crt"), 0644);
    ck_assert_uint_eq(mode_of(dir, "server.crt"), 0644);

    X509_free(ca);
    X509_free(srv);
    rm_tree(dir);
}
END_TEST

START_TEST(test_reuse_existing)
{
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    struct tn_err err = {0};
    const char *hosts[] = {"127.0.0.1", "localhost"};
    ck_assert_msg(tn_tls_ensure_certs(dir, hosts, 2, &err) == 0, "%s", err.msg);
    static const char *const names[] = {"ca.crt", "ca.key", "server.crt", "server.key"};
    char *before[4], *after[4];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        before[i] = slurp(path);
    }
    /* different hosts on the second start: the existing files are kept as they are */
    const char *other[] = {"10.1.2.3"};
    ck_assert_msg(tn_tls_ensure_certs(dir, other, 1, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        after[i] = slurp(path);
        ck_assert_msg(strcmp(before[i], after[i]) == 0, "%s was rewritten", names[i]);
        free(before[i]);
        free(after[i]);
    }

    /* a lost serving pair is re-issued from the existing CA */
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    char *ca_before = slurp(path);
    snprintf(path, sizeof(path), "%s/server.crt", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/server.key", dir);
    unlink(path);
    ck_assert_msg(tn_tls_ensure_certs(dir, hosts, 2, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    char *ca_after = slurp(path);
    ck_assert_str_eq(ca_before, ca_after);
    X509 *ca = file_cert(dir, "ca.crt"), *srv = file_cert(dir, "server.crt");
    ck_assert_int_eq(verify(ca, srv, X509_PURPOSE_SSL_SERVER), 1);
    X509_free(ca);
    X509_free(srv);
    free(ca_before);
    free(ca_after);
    rm_tree(dir);
}
END_TEST

START_TEST(test_corrupt_files_are_reported)
{
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    struct tn_err err = {0};
    ck_assert_msg(tn_tls_ensure_certs(dir, NULL, 0, &err) == 0, "%s", err.msg);

    /* a corrupt CA certificate: error naming it, file left alone */
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    char *good = slurp(path);
    spit(path, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    ck_assert_int_eq(tn_tls_ensure_certs(dir, NULL, 0, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "not a valid PEM certificate"), "%s",
                  err.msg);
    char *now = slurp(path);
    ck_assert_str_eq(now, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                          "-----END CERTIFICATE-----\n");
    free(now);
    /* client certificates need a readable CA as well */
    char *cp = NULL, *kp = NULL;
    ck_assert_int_eq(tn_tls_gen_client_cert(dir, "admin", NULL, &cp, &kp, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, path), "%s", err.msg);
    ck_assert_ptr_null(cp);
    ck_assert_ptr_null(kp);
    spit(path, good);
    free(good);

    /* a corrupt serving key */
    snprintf(path, sizeof(path), "%s/server.key", dir);
    spit(path, "garbage\n");
    ck_assert_int_eq(tn_tls_ensure_certs(dir, NULL, 0, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "private key"), "%s", err.msg);

    /* a key that belongs to another certificate */
    char ca_key[128];
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
    char *other = slurp(ca_key);
    spit(path, other);
    free(other);
    ck_assert_int_eq(tn_tls_ensure_certs(dir, NULL, 0, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "does not match"), "%s", err.msg);

    /* half a CA: never regenerated over the remaining file */
    unlink(ca_key);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    char *ca_before = slurp(path);
    ck_assert_int_eq(tn_tls_ensure_certs(dir, NULL, 0, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, ca_key) && strstr(err.msg, "missing"), "%s", err.msg);
    char *ca_after = slurp(path);
    ck_assert_str_eq(ca_before, ca_after);
    free(ca_before);
    free(ca_after);
    rm_tree(dir);
}
END_TEST

START_TEST(test_client_cert)
{
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    struct tn_err err = {0};
    char *cp = NULL, *kp = NULL;
    /* no CA yet */
    ck_assert_int_eq(tn_tls_gen_client_cert(dir, "admin", "system:masters", &cp, &kp, &err),
                     TN_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "ca.crt"), "%s", err.msg);

    ck_assert_msg(tn_tls_ensure_certs(dir, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(tn_tls_gen_client_cert(dir, "admin", "system:masters", &cp, &kp, &err) == 0, "%s",
                  err.msg);
    ck_assert_ptr_nonnull(strstr(cp, "-----BEGIN CERTIFICATE-----"));
    ck_assert_ptr_nonnull(strstr(kp, "-----BEGIN PRIVATE KEY-----"));
    X509 *ca = file_cert(dir, "ca.crt"), *cl = pem_cert(cp);
    assert_cn(cl, NID_commonName, "admin");
    assert_cn(cl, NID_organizationName, "system:masters");
    ck_assert(X509_get_extended_key_usage(cl) & XKU_SSL_CLIENT);
    ck_assert(!(X509_get_extended_key_usage(cl) & XKU_SSL_SERVER));
    ck_assert_int_eq(verify(ca, cl, X509_PURPOSE_SSL_CLIENT), 1);
    assert_p256(cl);
    BIO *bio = BIO_new_mem_buf(kp, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(X509_check_private_key(cl, k), 1);
    EVP_PKEY_free(k);
    X509_free(cl);
    free(cp);
    free(kp);

    /* without an organisation: no O in the subject */
    ck_assert_msg(tn_tls_gen_client_cert(dir, "viewer", NULL, &cp, &kp, &err) == 0, "%s", err.msg);
    cl = pem_cert(cp);
    assert_cn(cl, NID_commonName, "viewer");
    ck_assert_int_eq(
        X509_NAME_get_index_by_NID(X509_get_subject_name(cl), NID_organizationName, -1), -1);
    X509_free(cl);
    X509_free(ca);
    free(cp);
    free(kp);

    ck_assert_int_eq(tn_tls_gen_client_cert(dir, "", NULL, &cp, &kp, &err), TN_EINVAL);
    rm_tree(dir);
}
END_TEST

START_TEST(test_bad_input)
{
    char dir[64], sub[128];
    make_tmpdir(dir, sizeof(dir));
    struct tn_err err = {0};
    const char *bad[] = {"127.0.0.1", "bad host!"};
    ck_assert_int_eq(tn_tls_ensure_certs(dir, bad, 2, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, "\"bad host!\""), "%s", err.msg);

    /* a missing directory is created, private */
    snprintf(sub, sizeof(sub), "%s/certs", dir);
    ck_assert_msg(tn_tls_ensure_certs(sub, NULL, 0, &err) == 0, "%s", err.msg);
    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    X509 *srv = file_cert(sub, "server.crt");
    ck_assert_int_eq(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    ck_assert_int_eq(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    ck_assert_int_eq(X509_check_ip_asc(srv, "::1", 0), 1);
    X509_free(srv);
    rm_tree(sub);

    /* a file where the directory should be */
    snprintf(sub, sizeof(sub), "%s/file", dir);
    spit(sub, "x");
    ck_assert_int_eq(tn_tls_ensure_certs(sub, NULL, 0, &err), TN_EINVAL);
    ck_assert_msg(strstr(err.msg, "not a directory"), "%s", err.msg);
    unlink(sub);
    rm_tree(dir);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("base_tls");
    TCase *tc = tcase_create("server");
    tcase_add_test(tc, test_generate_and_verify);
    tcase_add_test(tc, test_reuse_existing);
    tcase_add_test(tc, test_corrupt_files_are_reported);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("client");
    tcase_add_test(tc, test_client_cert);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
