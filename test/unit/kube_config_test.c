/* Unit tests for pkg/kube/config: every kubeconfig auth form, $KUBECONFIG merging and context
 * selection, the in-cluster service account (IPv6 host, token rotation), and malformed files,
 * each of which must produce a message naming the file and the field. Each test runs in its
 * own temp directory and sets the environment it needs. */
#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "kube/config.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBcaTESTcaTEST\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBclientCERT\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIkey\n-----END EC PRIVATE KEY-----\n"

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tn-kubeconfig-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    setenv("HOME", tmpdir, 1);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes tmpdir/name (creating one level of subdirectory) and returns its path (static, one
 * of a few rotating slots). */
static const char *put(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *put(const char *name, const char *fmt, ...)
{
    static char slots[8][256];
    static int next;
    char *path = slots[next++ % 8];
    snprintf(path, 256, "%s/%s", tmpdir, name);
    char *slash = strrchr(path, '/');
    if (slash > path + strlen(tmpdir)) {
        *slash = 0;
        mkdir(path, 0700);
        *slash = '/';
    }
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fclose(fp);
    return path;
}

static char *b64(const char *s)
{
    return tn_base64_encode((const unsigned char *)s, strlen(s));
}

static struct tn_kube_config *load_ok_at(const char *path, const char *ctx, int line)
{
    struct tn_err err = {0};
    struct tn_kube_config *c = tn_kube_config_load(path, ctx, &err);
    ck_assert_msg(c != NULL, "line %d: load failed: %s", line, err.msg);
    return c;
}
#define load_ok(p, ctx) load_ok_at((p), (ctx), __LINE__)

/* Loading must fail with code, and the message must contain sub1 and sub2 (may be NULL). */
static void expect_err_at(const char *path, const char *ctx, int code, const char *sub1,
                          const char *sub2, int line)
{
    struct tn_err err = {0};
    struct tn_kube_config *c = tn_kube_config_load(path, ctx, &err);
    ck_assert_msg(c == NULL, "line %d: expected an error, got server %s", line, c ? c->server : "");
    ck_assert_msg(err.code == code, "line %d: code %d, want %d (%s)", line, err.code, code,
                  err.msg);
    ck_assert_msg(strstr(err.msg, sub1), "line %d: message \"%s\" lacks \"%s\"", line, err.msg,
                  sub1);
    if (sub2)
        ck_assert_msg(strstr(err.msg, sub2), "line %d: message \"%s\" lacks \"%s\"", line, err.msg,
                      sub2);
}
#define expect_err(p, ctx, code, s1, s2) expect_err_at((p), (ctx), (code), (s1), (s2), __LINE__)

/* A one-context kubeconfig with the given cluster and user bodies (YAML, 4-space indented). */
static const char *simple(const char *name, const char *cluster, const char *user)
{
    return put(name,
               "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
               "clusters:\n- name: c1\n  cluster:\n%s"
               "users:\n- name: u1\n  user:\n%s"
               "contexts:\n- name: main\n  context:\n    cluster: c1\n    user: u1\n",
               cluster, user);
}

START_TEST(test_token_and_ca_data)
{
    char *ca = b64(CA_PEM);
    char cl[512];
    snprintf(cl, sizeof(cl),
             "    server: https://10.0.0.1:6443/\n    certificate-authority-data: %s\n", ca);
    const char *p = put("config",
                        "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
                        "clusters:\n- name: c1\n  cluster:\n%s"
                        "users:\n- name: u1\n  user:\n    token: abc.def\n"
                        "contexts:\n- name: main\n  context:\n    cluster: c1\n    user: u1\n"
                        "    namespace: team-a\npreferences: {}\n",
                        cl);
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_str_eq(c->server, "https://10.0.0.1:6443");
    ck_assert_str_eq(c->ca_pem, CA_PEM);
    ck_assert_ptr_null(c->cert_pem);
    ck_assert_ptr_null(c->key_pem);
    ck_assert_str_eq(c->token, "abc.def");
    ck_assert_ptr_null(c->token_file);
    ck_assert_str_eq(c->namespace_, "team-a");
    ck_assert_str_eq(c->context, "main");
    ck_assert_int_eq(c->insecure, 0);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "abc.def");
    free(t);
    t = tn_kube_config_token(c, 1);
    ck_assert_str_eq(t, "abc.def");
    free(t);
    tn_kube_config_free(c);
    free(ca);
}
END_TEST

START_TEST(test_token_file_rotation)
{
    put("secrets/token", "  first-token\n");
    const char *p = simple("config", "    server: https://api.example:6443\n",
                           "    tokenFile: secrets/token\n");
    struct tn_kube_config *c = load_ok(p, NULL);
    char want[256];
    snprintf(want, sizeof(want), "%s/secrets/token", tmpdir);
    ck_assert_str_eq(c->token_file, want); /* resolved against the kubeconfig's directory */
    ck_assert_ptr_null(c->token);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "first-token");
    free(t);

    put("secrets/token", "second-token\n");
    t = tn_kube_config_token(c, 0); /* cached for 60 s */
    ck_assert_str_eq(t, "first-token");
    free(t);
    t = tn_kube_config_token(c, 1); /* after a 401 */
    ck_assert_str_eq(t, "second-token");
    free(t);

    put("secrets/token", "third-token");
    c->token_read_at -= 61; /* a minute later */
    t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "third-token");
    free(t);

    /* a rotation in progress (file truncated, or briefly gone) keeps the last good token */
    put("secrets/token", "%s", "\n");
    t = tn_kube_config_token(c, 1);
    ck_assert_str_eq(t, "third-token");
    free(t);
    unlink(want);
    t = tn_kube_config_token(c, 1);
    ck_assert_str_eq(t, "third-token");
    free(t);
    tn_kube_config_free(c);
}
END_TEST

START_TEST(test_token_file_wins_over_token)
{
    put("tok", "from-file\n");
    const char *p =
        simple("config", "    server: https://h:1\n", "    token: static\n    tokenFile: tok\n");
    struct tn_kube_config *c = load_ok(p, NULL);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "from-file");
    free(t);
    tn_kube_config_free(c);
}
END_TEST

START_TEST(test_client_cert_data)
{
    char *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
    char us[1024];
    snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: %s\n", cert,
             key);
    const char *p = simple("config", "    server: https://h:6443\n", us);
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_str_eq(c->cert_pem, CERT_PEM);
    ck_assert_str_eq(c->key_pem, KEY_PEM);
    ck_assert_ptr_null(c->token);
    ck_assert_ptr_null(c->ca_pem);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(c->namespace_, "default");
    tn_kube_config_free(c);
    free(cert);
    free(key);
}
END_TEST

START_TEST(test_client_cert_files)
{
    put("pki/ca.crt", "%s", CA_PEM);
    put("pki/client.crt", "%s", CERT_PEM);
    char abskey[256];
    snprintf(abskey, sizeof(abskey), "%s", put("keys/client.key", "%s", KEY_PEM));
    char us[512];
    snprintf(us, sizeof(us), "    client-certificate: pki/client.crt\n    client-key: %s\n",
             abskey);
    const char *p = simple("kube/config",
                           "    server: https://h:6443\n"
                           "    certificate-authority: ../pki/ca.crt\n"
                           "    tls-server-name: kubernetes.default\n",
                           us);
    /* relative paths are relative to kube/, so pki/client.crt is missing there */
    expect_err(p, NULL, TN_ENOTFOUND, "users[0].user.client-certificate: cannot read", "kube/pki");
    snprintf(us, sizeof(us), "    client-certificate: ../pki/client.crt\n    client-key: %s\n",
             abskey);
    p = simple("kube/config",
               "    server: https://h:6443\n"
               "    certificate-authority: ../pki/ca.crt\n"
               "    tls-server-name: kubernetes.default\n",
               us);
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_str_eq(c->ca_pem, CA_PEM);
    ck_assert_str_eq(c->cert_pem, CERT_PEM);
    ck_assert_str_eq(c->key_pem, KEY_PEM);
    ck_assert_str_eq(c->tls_server_name, "kubernetes.default");
    tn_kube_config_free(c);
}
END_TEST

START_TEST(test_insecure)
{
    const char *p =
        simple("config", "    server: https://h:6443\n    insecure-skip-tls-verify: true\n",
               "    token: t\n");
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_int_eq(c->insecure, 1);
    ck_assert_ptr_null(c->ca_pem);
    tn_kube_config_free(c);
}
END_TEST

START_TEST(test_no_user_and_context_selection)
{
    const char *p =
        put("config", "current-context: one\n"
                      "clusters:\n"
                      "- name: c1\n  cluster: {server: 'https://one:6443'}\n"
                      "- name: c2\n  cluster: {server: 'http://127.0.0.1:8080'}\n"
                      "users:\n- name: u1\n  user: {token: t1}\n"
                      "contexts:\n"
                      "- name: one\n  context: {cluster: c1, user: u1, namespace: ns1}\n"
                      "- name: two\n  context: {cluster: c2}\n");
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_str_eq(c->context, "one");
    ck_assert_str_eq(c->server, "https://one:6443");
    ck_assert_str_eq(c->namespace_, "ns1");
    ck_assert_str_eq(c->token, "t1");
    tn_kube_config_free(c);

    c = load_ok(p, "two");
    ck_assert_str_eq(c->context, "two");
    ck_assert_str_eq(c->server, "http://127.0.0.1:8080");
    ck_assert_str_eq(c->namespace_, "default");
    ck_assert_ptr_null(c->token);
    ck_assert_ptr_null(tn_kube_config_token(c, 0));
    tn_kube_config_free(c);

    expect_err(p, "three", TN_ENOTFOUND, "context \"three\" not found", p);
}
END_TEST

START_TEST(test_merged_kubeconfig)
{
    char a[256], b[256];
    snprintf(a, sizeof(a), "%s",
             put("a/config", "clusters:\n"
                             "- name: shared\n  cluster: {server: 'https://from-a:6443'}\n"
                             "users:\n- name: ua\n  user: {tokenFile: token}\n"
                             "contexts:\n- name: ctx-a\n  context: {cluster: shared, user: ua}\n"
                             "- name: ctx-x\n  context: {cluster: only-b, user: ub}\n"));
    put("a/token", "token-a\n");
    snprintf(b, sizeof(b), "%s",
             put("b/config",
                 "current-context: ctx-a\n"
                 "clusters:\n"
                 "- name: shared\n  cluster: {server: 'https://from-b:6443'}\n"
                 "- name: only-b\n  cluster: {server: 'https://only-b:6443'}\n"
                 "users:\n- name: ua\n  user: {token: from-b}\n"
                 "- name: ub\n  user: {tokenFile: token}\n"
                 "contexts:\n- name: ctx-a\n  context: {cluster: only-b, namespace: from-b}\n"
                 "- name: ctx-b\n  context: {cluster: only-b, user: ub, namespace: nb}\n"));
    put("b/token", "token-b\n");
    char list[600];
    /* a missing file and an empty element are skipped, as kubectl does */
    snprintf(list, sizeof(list), "%s/missing.yaml:%s::%s", tmpdir, a, b);
    setenv("KUBECONFIG", list, 1);

    /* current-context from b (a sets none); ctx-a, cluster shared, user ua all from a */
    struct tn_kube_config *c = load_ok(NULL, NULL);
    ck_assert_str_eq(c->context, "ctx-a");
    ck_assert_str_eq(c->server, "https://from-a:6443");
    ck_assert_str_eq(c->namespace_, "default");
    ck_assert_ptr_null(c->token);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "token-a"); /* tokenFile resolved against a/ */
    free(t);
    tn_kube_config_free(c);

    c = load_ok(NULL, "ctx-b");
    ck_assert_str_eq(c->server, "https://only-b:6443");
    ck_assert_str_eq(c->namespace_, "nb");
    t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "token-b");
    free(t);
    tn_kube_config_free(c);

    /* a context in one file may name entries from another */
    c = load_ok(NULL, "ctx-x");
    ck_assert_str_eq(c->server, "https://only-b:6443");
    t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "token-b");
    free(t);
    tn_kube_config_free(c);

    /* reversed order: b wins everything */
    snprintf(list, sizeof(list), "%s:%s", b, a);
    setenv("KUBECONFIG", list, 1);
    c = load_ok(NULL, NULL);
    ck_assert_str_eq(c->server, "https://only-b:6443");
    ck_assert_str_eq(c->namespace_, "from-b");
    tn_kube_config_free(c);

    /* an explicit path is used alone */
    expect_err(a, NULL, TN_EINVAL, "current-context: not set", a);

    snprintf(list, sizeof(list), "%s/nope1:%s/nope2", tmpdir, tmpdir);
    setenv("KUBECONFIG", list, 1);
    expect_err(NULL, NULL, TN_ENOTFOUND, "none of the files", "nope2");
}
END_TEST

START_TEST(test_home_fallback_and_auto)
{
    const char *p = simple(".kube/config", "    server: https://home:6443\n", "    token: h\n");
    struct tn_kube_config *c = load_ok(NULL, NULL);
    ck_assert_str_eq(c->server, "https://home:6443");
    tn_kube_config_free(c);
    struct tn_err err = {0};
    c = tn_kube_config_auto(NULL, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    ck_assert_str_eq(c->server, "https://home:6443");
    tn_kube_config_free(c);
    c = tn_kube_config_auto(p, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    tn_kube_config_free(c);
    unlink(p);
    expect_err(NULL, NULL, TN_ENOTFOUND, ".kube/config", "No such file");
}
END_TEST

/* Writes an in-cluster service account directory. */
static const char *sa_dir(const char *token, const char *ns, int with_ca)
{
    static char dir[256];
    put("sa/token", "%s", token);
    if (ns) put("sa/namespace", "%s", ns);
    if (with_ca) put("sa/ca.crt", "%s", CA_PEM);
    snprintf(dir, sizeof(dir), "%s/sa", tmpdir);
    return dir;
}

START_TEST(test_incluster)
{
    struct tn_err err = {0};
    const char *dir = sa_dir("sa-token-1\n", "tandem-system\n", 1);
    ck_assert_ptr_null(tn_kube_config_incluster(dir, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "KUBERNETES_SERVICE_HOST"));

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    struct tn_kube_config *c = tn_kube_config_incluster(dir, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    ck_assert_str_eq(c->server, "https://10.96.0.1:443");
    ck_assert_str_eq(c->ca_pem, CA_PEM);
    ck_assert_str_eq(c->namespace_, "tandem-system");
    ck_assert_str_eq(c->context, "");
    ck_assert_ptr_null(c->cert_pem);
    char *t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "sa-token-1");
    free(t);

    /* the kubelet rotates the projected token */
    put("sa/token", "sa-token-2\n");
    t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "sa-token-1");
    free(t);
    t = tn_kube_config_token(c, 1);
    ck_assert_str_eq(t, "sa-token-2");
    free(t);
    put("sa/token", "sa-token-3\n");
    c->token_read_at -= 60;
    t = tn_kube_config_token(c, 0);
    ck_assert_str_eq(t, "sa-token-3");
    free(t);
    tn_kube_config_free(c);
}
END_TEST

START_TEST(test_incluster_ipv6_defaults)
{
    struct tn_err err = {0};
    const char *dir = sa_dir("tok", NULL, 0);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    struct tn_kube_config *c = tn_kube_config_incluster(dir, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    ck_assert_str_eq(c->server, "https://[fd00:10:96::1]:6443");
    ck_assert_str_eq(c->namespace_, "default");
    ck_assert_ptr_null(c->ca_pem); /* system trust, as client-go */
    tn_kube_config_free(c);

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nosa", tmpdir);
    ck_assert_ptr_null(tn_kube_config_incluster(missing, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "service account token"));
    ck_assert_ptr_nonnull(strstr(err.msg, "nosa/token"));
}
END_TEST

START_TEST(test_malformed)
{
    const char *srv = "    server: https://h:6443\n";
    const char *p;

    p = put("nocc", "clusters: []\nusers: []\ncontexts: []\n");
    expect_err(p, NULL, TN_EINVAL, "current-context: not set", p);

    p = put("empty", "%s", "");
    expect_err(p, NULL, TN_EINVAL, "current-context: not set", p);

    p = put("ccnum", "current-context: [a]\n");
    expect_err(p, NULL, TN_EINVAL, "current-context: not a string", p);

    p = put("list", "- a\n- b\n");
    expect_err(p, NULL, TN_EINVAL, ": not a mapping", p);

    p = put("scalar", "just text\n");
    expect_err(p, NULL, TN_EINVAL, ": not a mapping", p);

    p = put("syntax", "clusters: [\n");
    expect_err(p, NULL, TN_EINVAL, "line", p);

    p = put("twodocs", "a: 1\n---\nb: 2\n");
    expect_err(p, NULL, TN_EINVAL, "YAML documents", p);

    p = put("badlist", "current-context: x\nclusters: {a: 1}\n");
    expect_err(p, NULL, TN_EINVAL, "clusters: not a list", p);

    p = put("badentry", "current-context: x\nusers:\n- 42\n");
    expect_err(p, NULL, TN_EINVAL, "users[0]: not a mapping", p);

    p = put("noname", "current-context: x\nusers:\n- user: {}\n");
    expect_err(p, NULL, TN_EINVAL, "users[0].name: missing", p);

    p = put("badbody", "current-context: x\nclusters:\n- name: a\n  cluster: [1]\n");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster: not a mapping", p);

    p = put("dup", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: a}\n"
                   "- name: x\n  context: {cluster: b}\n");
    expect_err(p, NULL, TN_EINVAL, "contexts[1].name: duplicate name \"x\"", p);

    p = put("cc-missing", "current-context: ghost\ncontexts: []\n");
    expect_err(p, NULL, TN_ENOTFOUND, "current-context: context \"ghost\" not found", p);

    p = put("ctx-cluster", "current-context: x\nclusters:\n- name: c1\n  cluster: {server: "
                           "'https://h'}\ncontexts:\n- name: x\n  context: {cluster: nope}\n");
    expect_err(p, NULL, TN_ENOTFOUND, "contexts[0].context.cluster: cluster \"nope\" not found", p);

    p = put("ctx-nocluster", "current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n");
    expect_err(p, NULL, TN_EINVAL, "contexts[0].context.cluster: missing", p);

    p = put("ctx-user",
            "current-context: x\nclusters:\n- name: c1\n  cluster: {server: 'https://h'}\n"
            "contexts:\n- name: x\n  context: {cluster: c1, user: nope}\n");
    expect_err(p, NULL, TN_ENOTFOUND, "contexts[0].context.user: user \"nope\" not found", p);

    p = simple("noserver", "    insecure-skip-tls-verify: true\n", "    token: t\n");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.server: missing", p);

    p = simple("badserver", "    server: h:6443\n", "    token: t\n");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.server: \"h:6443\" must start with", p);

    p = simple("numserver", "    server: 6443\n", "    token: t\n");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.server: not a string", p);

    p = simple("badb64", srv, "    client-certificate-data: Zm9v\n    client-key-data: '!!!'\n");
    expect_err(p, NULL, TN_EINVAL, "users[0].user.client-certificate-data: decoded data is not PEM",
               p);

    char *cert = b64(CERT_PEM);
    char us[512];
    snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: 'a$bc'\n",
             cert);
    p = simple("badb64key", srv, us);
    expect_err(p, NULL, TN_EINVAL, "users[0].user.client-key-data: invalid base64", p);
    snprintf(us, sizeof(us), "    client-certificate-data: %s\n", cert);
    p = simple("certnokey", srv, us);
    expect_err(p, NULL, TN_EINVAL, "users[0].user.client-key: missing", "together");
    free(cert);

    p = simple("badca64", "    server: https://h\n    certificate-authority-data: Q\n", "");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.certificate-authority-data: invalid base64",
               p);

    p = simple("nocafile",
               "    server: https://h\n    certificate-authority: /nonexistent/ca.crt\n", "");
    expect_err(p, NULL, TN_ENOTFOUND,
               "clusters[0].cluster.certificate-authority: cannot read /nonexistent/ca.crt", p);

    put("notpem.crt", "hello\n");
    p = simple("notpem", "    server: https://h\n    certificate-authority: notpem.crt\n", "");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.certificate-authority", "not PEM data");

    put("ca.crt", "%s", CA_PEM);
    p = simple("both",
               "    server: https://h\n    certificate-authority: ca.crt\n"
               "    certificate-authority-data: Zm9v\n",
               "");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.certificate-authority-data: both", p);

    p = simple("insecure-ca",
               "    server: https://h\n    certificate-authority: ca.crt\n"
               "    insecure-skip-tls-verify: true\n",
               "");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.insecure-skip-tls-verify: cannot be", p);

    p = simple("insecure-str", "    server: https://h\n    insecure-skip-tls-verify: 'yes'\n", "");
    expect_err(p, NULL, TN_EINVAL, "clusters[0].cluster.insecure-skip-tls-verify: not a boolean",
               p);

    p = simple("notokfile", srv, "    tokenFile: missing-token\n");
    expect_err(p, NULL, TN_ENOTFOUND, "users[0].user.tokenFile: cannot read", "missing-token");

    p = simple("exec", srv,
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: aws\n      args: [eks, get-token]\n");
    expect_err(p, NULL, TN_EUNSUPPORTED,
               "users[0].user.exec: exec credential plugins are not supported (user \"u1\": "
               "\"aws\")",
               p);

    p = simple("authprov", srv, "    auth-provider:\n      name: oidc\n      config: {}\n");
    expect_err(p, NULL, TN_EUNSUPPORTED, "users[0].user.auth-provider: auth-provider plugins",
               "\"oidc\"");

    p = simple("basic", srv, "    username: admin\n    password: secret\n");
    expect_err(p, NULL, TN_EUNSUPPORTED, "users[0].user.username: basic authentication", p);

    p = simple("proxy", "    server: https://h\n    proxy-url: http://proxy:3128\n", "");
    expect_err(p, NULL, TN_EUNSUPPORTED, "clusters[0].cluster.proxy-url", p);

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/does-not-exist", tmpdir);
    expect_err(missing, NULL, TN_ENOTFOUND, "kubeconfig", "does-not-exist: No such file");
}
END_TEST

START_TEST(test_unrelated_entries_not_checked)
{
    /* a broken user that the current context does not use does not stop loading */
    const char *p =
        put("config", "current-context: ok\n"
                      "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
                      "users:\n- name: good\n  user: {token: t}\n"
                      "- name: broken\n  user: {exec: {command: x}, client-key-data: '!'}\n"
                      "contexts:\n- name: ok\n  context: {cluster: c, user: good}\n");
    struct tn_kube_config *c = load_ok(p, NULL);
    ck_assert_str_eq(c->token, "t");
    tn_kube_config_free(c);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("kube_config");
    TCase *tc = tcase_create("kubeconfig");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_token_and_ca_data);
    tcase_add_test(tc, test_token_file_rotation);
    tcase_add_test(tc, test_token_file_wins_over_token);
    tcase_add_test(tc, test_client_cert_data);
    tcase_add_test(tc, test_client_cert_files);
    tcase_add_test(tc, test_insecure);
    tcase_add_test(tc, test_no_user_and_context_selection);
    tcase_add_test(tc, test_merged_kubeconfig);
    tcase_add_test(tc, test_home_fallback_and_auto);
    tcase_add_test(tc, test_unrelated_entries_not_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("incluster");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_incluster);
    tcase_add_test(tc, test_incluster_ipv6_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
