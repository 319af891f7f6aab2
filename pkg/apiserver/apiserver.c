/* tandem-apiserver assembly: storage, registry (built-ins + stored CRDs), default namespaces,
 * watch hub, static tokens, TLS material, the kubeconfig for clients, and the HTTP loop. */
#include "apiserver/apiserver.h"
#include "apiserver/internal.h"
#include "base/json.h"
#include "base/log.h"
#include "base/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int load_crd(json_t *crd, void *arg)
{
    struct tn_apiserver *a = arg;
    struct tn_err err = {0};
    if (tn_registry_add_crd(&a->reg, crd, &err))
        TN_ERROR("cannot serve stored CRD", "crd", tn_json_str(crd, "metadata.name", ""), "error",
                 err.msg);
    return 0;
}

static int load_tokens(struct tn_apiserver *a, const char *path, struct tn_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tn_err_set(err, TN_ENOTFOUND, "cannot read token file %s: %s", path,
                          strerror(errno));
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *c1 = strchr(line, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c1 || !c2 || c1 == line) {
            fclose(f);
            return tn_err_set(err, TN_EINVAL, "token file %s line %d: want token,user,uid[,groups]",
                              path, lineno);
        }
        *c1 = 0;
        *c2 = 0;
        struct tn_token *nt = realloc(a->tokens, (a->ntokens + 1) * sizeof(*nt));
        if (!nt) {
            fclose(f);
            return tn_err_set(err, TN_ENOMEM, "out of memory");
        }
        a->tokens = nt;
        nt[a->ntokens].token = strdup(line);
        nt[a->ntokens].user = strdup(c1 + 1);
        a->ntokens++;
    }
    fclose(f);
    if (!a->ntokens) return tn_err_set(err, TN_EINVAL, "token file %s has no tokens", path);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int write_kubeconfig(struct tn_apiserver *a, struct tn_err *err)
{
    const char *path = a->cfg.kubeconfig_out;
    const char *host = a->cfg.advertise ? a->cfg.advertise : a->cfg.addr;
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return tn_err_set(err, TN_EIO, "cannot write kubeconfig %s: %s", path, strerror(errno));
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: tandem\n  cluster:\n");
    fprintf(f, "    server: %s://%s:%d\n", a->cfg.tls ? "https" : "http", host,
            tn_apiserver_port(a));
    if (a->cfg.tls) {
        char ca[4096];
        snprintf(ca, sizeof(ca), "%s/ca.crt", a->cfg.cert_dir);
        char *pem = read_file(ca);
        char *b64 = pem ? tn_base64_encode((const unsigned char *)pem, strlen(pem)) : NULL;
        if (b64) fprintf(f, "    certificate-authority-data: %s\n", b64);
        free(pem);
        free(b64);
    }
    fprintf(f, "users:\n- name: tandem-admin\n  user:");
    if (a->ntokens)
        fprintf(f, "\n    token: %s\n", a->tokens[0].token);
    else
        fprintf(f, " {}\n");
    fprintf(f, "contexts:\n- name: tandem\n  context:\n    cluster: tandem\n    user: "
               "tandem-admin\n    namespace: default\ncurrent-context: tandem\n");
    fclose(f);
    chmod(tmp, 0600);
    if (rename(tmp, path))
        return tn_err_set(err, TN_EIO, "cannot write kubeconfig %s: %s", path, strerror(errno));
    return 0;
}

static void ensure_namespace(struct tn_apiserver *a, const char *name)
{
    const struct tn_rtype *t = tn_registry_find(&a->reg, "", "v1", "namespaces");
    if (tn_store_get(a->store, t->key, "", name, NULL, NULL, NULL) == 0) return;
    json_t *ns = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                           "name", name);
    struct tn_reply rep;
    tn_reply_init(&rep);
    tn_obj_create(a, t, NULL, ns, NULL, &rep);
    tn_reply_free(&rep);
    json_decref(ns);
}

struct tn_apiserver *tn_apiserver_new(const struct tn_apiserver_config *cfg, struct tn_err *err)
{
    struct tn_apiserver *a = calloc(1, sizeof(*a));
    if (!a) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    if (!a->cfg.addr) a->cfg.addr = "127.0.0.1";
    if (!a->cfg.data) a->cfg.data = "tandem-apiserver.db";
    if (!a->cfg.watch_history) a->cfg.watch_history = 10000;
    if (a->cfg.bookmark_ms <= 0) a->cfg.bookmark_ms = 60000;
    tn_registry_init(&a->reg);
    a->store = tn_store_open(a->cfg.data, err);
    if (!a->store) goto fail;
    if (a->cfg.token_file && load_tokens(a, a->cfg.token_file, err)) goto fail;
    a->hub = tn_watch_hub_new(a->cfg.watch_history, tn_table_row_event, a);
    if (!a->hub) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        goto fail;
    }
    tn_watch_set_base_rv(a->hub, tn_store_rv(a->store));
    const struct tn_rtype *crdt =
        tn_registry_find(&a->reg, "apiextensions.k8s.io", "v1", "customresourcedefinitions");
    tn_obj_each(a, crdt, NULL, load_crd, a);
    ensure_namespace(a, "default");
    ensure_namespace(a, "kube-system");
    ensure_namespace(a, "kube-public");
    ensure_namespace(a, "kube-node-lease");
    struct tn_http_config hc = {0};
    hc.addr = a->cfg.addr;
    hc.port = a->cfg.port;
    hc.name = "tandem-apiserver";
    hc.handler = tn_handle;
    hc.user = a;
    hc.max_body = 3u << 20;
    char cert[4200], key[4200], dir[4096];
    if (a->cfg.tls) {
        if (!a->cfg.cert_dir) {
            snprintf(dir, sizeof(dir), "%s.pki",
                     strcmp(a->cfg.data, ":memory:") == 0 ? "tandem" : a->cfg.data);
            a->cert_dir_owned = strdup(dir);
            a->cfg.cert_dir = a->cert_dir_owned;
        }
        const char *hosts[] = {"127.0.0.1", "localhost", a->cfg.addr,
                               a->cfg.advertise ? a->cfg.advertise : "localhost"};
        if (tn_tls_ensure_certs(a->cfg.cert_dir, hosts, 4, err)) goto fail;
        snprintf(cert, sizeof(cert), "%s/server.crt", a->cfg.cert_dir);
        snprintf(key, sizeof(key), "%s/server.key", a->cfg.cert_dir);
        hc.tls_cert = cert;
        hc.tls_key = key;
    }
    a->http = tn_http_server_new(&hc, err);
    if (!a->http) goto fail;
    if (a->cfg.kubeconfig_out && write_kubeconfig(a, err)) goto fail;
    return a;
fail:
    tn_apiserver_free(a);
    return NULL;
}

int tn_apiserver_port(const struct tn_apiserver *a)
{
    return a->http ? tn_http_server_port(a->http) : 0;
}

int tn_apiserver_run(struct tn_apiserver *a)
{
    tn_ctrl_start(a);
    char port[16];
    snprintf(port, sizeof(port), "%d", tn_apiserver_port(a));
    TN_INFO("serving", "address", a->cfg.addr, "port", port, "data", a->cfg.data, "tls",
            a->cfg.tls ? "true" : "false");
    return tn_http_server_run(a->http);
}

void tn_apiserver_stop(struct tn_apiserver *a)
{
    if (a && a->http) tn_http_server_stop(a->http);
}

void tn_apiserver_free(struct tn_apiserver *a)
{
    if (!a) return;
    tn_watch_hub_free(a->hub);
    a->hub = NULL;
    tn_http_server_free(a->http);
    tn_store_close(a->store);
    tn_registry_free(&a->reg);
    for (size_t i = 0; i < a->ntokens; i++) {
        free(a->tokens[i].token);
        free(a->tokens[i].user);
    }
    free(a->tokens);
    for (size_t i = 0; i < a->ndirty; i++)
        free(a->dirty[i]);
    free(a->dirty);
    free(a->cert_dir_owned);
    free(a);
}
