/* Kubeconfig and in-cluster loading; see config.h. Files are parsed with the shared YAML
 * loader, merged kubectl-style, and only the entries the chosen context uses are resolved, so an
 * unrelated broken user entry in a shared kubeconfig does not stop us. TLS material stays in
 * memory; nothing here writes to disk. */
#include "kube/config.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/yaml.h"

#define TOKEN_MAX ((size_t)1 << 20) /* a bearer token file larger than this is not a token */
#define PEM_MAX ((size_t)16 << 20)  /* CA bundles can be large, but not this large */
#define TOKEN_REFRESH_S 60          /* client-go's cached file token source period */
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* One parsed kubeconfig file. doc is a new reference (an object). */
struct kc_file {
    char *path;
    char *dir; /* directory for relative paths */
    json_t *doc;
};

/* A named entry found in one of the files: body is borrowed from f->doc. */
struct kc_ref {
    const struct kc_file *f;
    const char *list; /* "clusters", "users", "contexts" */
    const char *key;  /* "cluster", "user", "context" */
    const char *name;
    size_t idx;
    json_t *body;
};

static const char *const LISTS[3][2] = {
    {"clusters", "cluster"}, {"users", "user"}, {"contexts", "context"}};

/* Fills err with "kubeconfig <file>: <list>[i].<key>.<field>: <msg>"; returns code. */
static int ref_err(struct tn_err *err, int code, const struct kc_ref *r, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int ref_err(struct tn_err *err, int code, const struct kc_ref *r, const char *field,
                   const char *fmt, ...)
{
    char msg[TN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tn_err_set(err, code, "kubeconfig %s: %s[%zu].%s%s%s: %s", r->f->path, r->list, r->idx,
                      r->key, field ? "." : "", field ? field : "", msg);
}

/* Overwrites then frees a string holding secrets. */
static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated string. On failure fills
 * err with "<path>: <reason>" and returns a negative code. */
static int read_file(const char *path, size_t max, char **out, size_t *outlen, struct tn_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        return tn_err_set(err, e == ENOENT ? TN_ENOTFOUND : TN_EIO, "%s: %s", path, strerror(e));
    }
    struct tn_buf b;
    tn_buf_init(&b, max);
    char chunk[16384];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        rc = tn_buf_append(&b, chunk, n);
    int e = errno;
    if (!rc && ferror(fp)) rc = TN_EIO;
    fclose(fp);
    explicit_bzero(chunk, sizeof(chunk));
    if (rc) {
        if (b.data) explicit_bzero(b.data, b.len);
        tn_buf_free(&b);
        return tn_err_set(err, rc, "%s: %s", path,
                          rc == TN_EIO       ? strerror(e)
                          : rc == TN_ETOOBIG ? "file too large"
                                             : "out of memory");
    }
    size_t len = b.len;
    char *data = tn_buf_steal(&b, &len);
    if (!data) return tn_err_set(err, TN_ENOMEM, "%s: out of memory", path);
    *out = data;
    if (outlen) *outlen = len;
    return 0;
}

/* Trims ASCII whitespace at both ends in place. */
static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        s[--n] = 0;
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')
        i++;
    if (i) memmove(s, s + i, n - i + 1);
}

/* Monotonic seconds, for the token cache. */
static time_t mono_s(void)
{
    return (time_t)(tn_mono_ms() / 1000);
}

static char *path_join(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir) return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static void file_free(struct kc_file *f)
{
    free(f->path);
    free(f->dir);
    json_decref(f->doc);
}

/* Checks the shape of one file: a mapping whose clusters/users/contexts are lists of mappings
 * with unique, non-empty names. A missing or empty file is an empty config. */
static int file_load(struct kc_file *f, const char *path, struct tn_err *err)
{
    memset(f, 0, sizeof(*f));
    f->path = strdup(path);
    f->dir = dir_of(path);
    if (!f->path || !f->dir)
        return tn_err_set(err, TN_ENOMEM, "kubeconfig %s: out of memory", path);
    struct tn_err e2 = {0};
    json_t *docs = tn_yaml_load_file(path, NULL, &e2);
    if (!docs) /* e2.msg starts with the path */
        return tn_err_set(err, e2.code ? e2.code : TN_EINVAL, "kubeconfig %s", e2.msg);
    size_t ndocs = json_array_size(docs);
    if (ndocs > 1) {
        json_decref(docs);
        return tn_err_set(err, TN_EINVAL, "kubeconfig %s: holds %zu YAML documents, want one", path,
                          ndocs);
    }
    json_t *doc = ndocs ? json_incref(json_array_get(docs, 0)) : json_object();
    json_decref(docs);
    if (json_is_null(doc)) {
        json_decref(doc);
        doc = json_object();
    }
    f->doc = doc;
    if (!json_is_object(doc))
        return tn_err_set(err, TN_EINVAL, "kubeconfig %s: not a mapping", path);

    json_t *cc = json_object_get(doc, "current-context");
    if (cc && !json_is_null(cc) && !json_is_string(cc))
        return tn_err_set(err, TN_EINVAL, "kubeconfig %s: current-context: not a string", path);

    for (int l = 0; l < 3; l++) {
        const char *list = LISTS[l][0], *key = LISTS[l][1];
        json_t *arr = json_object_get(doc, list);
        if (!arr || json_is_null(arr)) continue;
        if (!json_is_array(arr))
            return tn_err_set(err, TN_EINVAL, "kubeconfig %s: %s: not a list", path, list);
        size_t i;
        json_t *ent;
        json_array_foreach(arr, i, ent)
        {
            if (!json_is_object(ent))
                return tn_err_set(err, TN_EINVAL, "kubeconfig %s: %s[%zu]: not a mapping", path,
                                  list, i);
            const char *name = json_string_value(json_object_get(ent, "name"));
            if (!name || !*name)
                return tn_err_set(err, TN_EINVAL, "kubeconfig %s: %s[%zu].name: missing", path,
                                  list, i);
            json_t *body = json_object_get(ent, key);
            if (body && !json_is_null(body) && !json_is_object(body))
                return tn_err_set(err, TN_EINVAL, "kubeconfig %s: %s[%zu].%s: not a mapping", path,
                                  list, i, key);
            for (size_t j = 0; j < i; j++) {
                const char *other =
                    json_string_value(json_object_get(json_array_get(arr, j), "name"));
                if (other && !strcmp(other, name))
                    return tn_err_set(err, TN_EINVAL,
                                      "kubeconfig %s: %s[%zu].name: duplicate name \"%s\" (also "
                                      "%s[%zu])",
                                      path, list, i, name, list, j);
            }
        }
    }
    return 0;
}

/* Finds the first entry named name in list l across files (first file wins). */
static int find_ref(const struct kc_file *files, size_t nf, int l, const char *name,
                    struct kc_ref *out)
{
    for (size_t k = 0; k < nf; k++) {
        json_t *arr = json_object_get(files[k].doc, LISTS[l][0]);
        size_t i;
        json_t *ent;
        json_array_foreach(arr, i, ent)
        {
            const char *n = json_string_value(json_object_get(ent, "name"));
            if (n && !strcmp(n, name)) {
                out->f = &files[k];
                out->list = LISTS[l][0];
                out->key = LISTS[l][1];
                out->name = n;
                out->idx = i;
                out->body = json_object_get(ent, LISTS[l][1]);
                if (json_is_null(out->body)) out->body = NULL;
                return 1;
            }
        }
    }
    return 0;
}

/* A string field of an entry: *out borrowed, NULL when absent/null/empty. */
static int ref_str(const struct kc_ref *r, const char *field, const char **out, struct tn_err *err)
{
    *out = NULL;
    json_t *v = r->body ? json_object_get(r->body, field) : NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return ref_err(err, TN_EINVAL, r, field, "not a string");
    if (*json_string_value(v)) *out = json_string_value(v);
    return 0;
}

/* Decodes a *-data field into a malloc'd string; pem: the result must hold a PEM block. */
static int ref_b64(const struct kc_ref *r, const char *field, int pem, char **out,
                   struct tn_err *err)
{
    const char *s;
    int rc = ref_str(r, field, &s, err);
    if (rc || !s) return rc;
    /* tn_base64_decode tolerates a dangling sextet; kubectl does not. */
    size_t sig = 0;
    for (const char *p = s; *p && *p != '='; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ') sig++;
    unsigned char *dec = NULL;
    size_t n = 0;
    if (sig % 4 == 1 || tn_base64_decode(s, &dec, &n) != 0)
        return ref_err(err, TN_EINVAL, r, field, "invalid base64");
    if (memchr(dec, 0, n) || (pem && !strstr((char *)dec, "-----BEGIN "))) {
        explicit_bzero(dec, n);
        free(dec);
        return ref_err(err, TN_EINVAL, r, field, "decoded data is not PEM");
    }
    *out = (char *)dec;
    return 0;
}

/* Reads a file field (relative to the entry's file) into a malloc'd string. */
static int ref_file(const struct kc_ref *r, const char *field, size_t max, int pem, char **out,
                    char **resolved, struct tn_err *err)
{
    const char *p;
    int rc = ref_str(r, field, &p, err);
    if (rc || !p) return rc;
    char *full = path_join(r->f->dir, p);
    if (!full) return tn_err_set(err, TN_ENOMEM, "out of memory");
    struct tn_err e2 = {0};
    char *data = NULL;
    size_t n = 0;
    rc = read_file(full, max, &data, &n, &e2);
    if (rc) {
        ref_err(err, rc, r, field, "cannot read %s", e2.msg);
        free(full);
        return rc;
    }
    if (memchr(data, 0, n) || (pem && !strstr(data, "-----BEGIN "))) {
        ref_err(err, TN_EINVAL, r, field, "%s: not PEM data", full);
        free_secret(data);
        free(full);
        return TN_EINVAL;
    }
    *out = data;
    if (resolved)
        *resolved = full;
    else
        free(full);
    return 0;
}

/* Exactly one of field (a file) and field-data may be set. */
static int ref_pem(const struct kc_ref *r, const char *field, char **out, struct tn_err *err)
{
    char dfield[64];
    snprintf(dfield, sizeof(dfield), "%s-data", field);
    const char *a, *b;
    int rc = ref_str(r, field, &a, err);
    if (!rc) rc = ref_str(r, dfield, &b, err);
    if (rc) return rc;
    if (a && b)
        return ref_err(err, TN_EINVAL, r, dfield, "both %s and %s are set for %s \"%s\"", field,
                       dfield, r->key, r->name);
    if (b) return ref_b64(r, dfield, 1, out, err);
    return ref_file(r, field, PEM_MAX, 1, out, NULL, err);
}

static int ref_present(const struct kc_ref *r, const char *field)
{
    json_t *v = r->body ? json_object_get(r->body, field) : NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) return *json_string_value(v) != 0;
    if (json_is_array(v)) return json_array_size(v) != 0;
    if (json_is_object(v)) return json_object_size(v) != 0;
    return 1;
}

static struct tn_kube_config *config_new(void)
{
    struct tn_kube_config *c = calloc(1, sizeof(*c));
    if (c) pthread_mutex_init(&c->mu, NULL);
    return c;
}

void tn_kube_config_free(struct tn_kube_config *c)
{
    if (!c) return;
    free(c->server);
    free(c->ca_pem);
    free(c->cert_pem);
    free_secret(c->key_pem);
    free_secret(c->token);
    free(c->token_file);
    free(c->namespace_);
    free(c->context);
    free(c->tls_server_name);
    free_secret(c->cached_token);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int set_server(struct tn_kube_config *c, const char *s)
{
    c->server = strdup(s);
    if (!c->server) return TN_ENOMEM;
    size_t n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/')
        c->server[--n] = 0;
    return 0;
}

static int load_cluster(struct tn_kube_config *c, const struct kc_ref *r, struct tn_err *err)
{
    const char *server, *sni;
    int rc = ref_str(r, "server", &server, err);
    if (rc) return rc;
    if (!server) return ref_err(err, TN_EINVAL, r, "server", "missing (cluster \"%s\")", r->name);
    if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))
        return ref_err(err, TN_EINVAL, r, "server", "\"%s\" must start with https:// or http://",
                       server);
    if (ref_present(r, "proxy-url"))
        return ref_err(err, TN_EUNSUPPORTED, r, "proxy-url",
                       "proxies are not supported (cluster "
                       "\"%s\")",
                       r->name);
    if ((rc = set_server(c, server))) return tn_err_set(err, rc, "out of memory");
    json_t *ins = r->body ? json_object_get(r->body, "insecure-skip-tls-verify") : NULL;
    if (ins && !json_is_null(ins)) {
        if (!json_is_boolean(ins))
            return ref_err(err, TN_EINVAL, r, "insecure-skip-tls-verify", "not a boolean");
        c->insecure = json_is_true(ins);
    }
    if ((rc = ref_pem(r, "certificate-authority", &c->ca_pem, err))) return rc;
    if (c->insecure && c->ca_pem)
        return ref_err(err, TN_EINVAL, r, "insecure-skip-tls-verify",
                       "cannot be combined with a certificate authority (cluster \"%s\")", r->name);
    if ((rc = ref_str(r, "tls-server-name", &sni, err))) return rc;
    if (sni && !(c->tls_server_name = strdup(sni)))
        return tn_err_set(err, TN_ENOMEM, "out of memory");
    return 0;
}

static int load_user(struct tn_kube_config *c, const struct kc_ref *r, struct tn_err *err)
{
    static const char *const unsupported[][2] = {
        {"exec", "exec credential plugins are not supported"},
        {"auth-provider", "auth-provider plugins are not supported"},
        {"username", "basic authentication is not supported"},
        {"password", "basic authentication is not supported"},
        {"as", "impersonation is not supported"},
        {"as-uid", "impersonation is not supported"},
        {"as-groups", "impersonation is not supported"},
        {"as-user-extra", "impersonation is not supported"},
    };
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (!ref_present(r, unsupported[i][0])) continue;
        const char *what = "";
        if (!strcmp(unsupported[i][0], "exec"))
            what = json_string_value(json_object_get(json_object_get(r->body, "exec"), "command"));
        else if (!strcmp(unsupported[i][0], "auth-provider"))
            what = json_string_value(
                json_object_get(json_object_get(r->body, "auth-provider"), "name"));
        return ref_err(err, TN_EUNSUPPORTED, r, unsupported[i][0],
                       "%s (user \"%s\"%s%s%s); use a token, tokenFile or client certificate",
                       unsupported[i][1], r->name, what && *what ? ": \"" : "",
                       what && *what ? what : "", what && *what ? "\"" : "");
    }
    const char *tok;
    int rc = ref_str(r, "token", &tok, err);
    if (rc) return rc;
    if (tok && !(c->token = strdup(tok))) return tn_err_set(err, TN_ENOMEM, "out of memory");
    char *ftok = NULL;
    if ((rc = ref_file(r, "tokenFile", TOKEN_MAX, 0, &ftok, &c->token_file, err))) return rc;
    if (ftok) {
        trim(ftok);
        c->cached_token = ftok;
        c->token_read_at = mono_s();
    }
    if ((rc = ref_pem(r, "client-certificate", &c->cert_pem, err)) ||
        (rc = ref_pem(r, "client-key", &c->key_pem, err)))
        return rc;
    if (!!c->cert_pem != !!c->key_pem)
        return ref_err(err, TN_EINVAL, r, c->cert_pem ? "client-key" : "client-certificate",
                       "missing: client-certificate and client-key must be set together (user "
                       "\"%s\")",
                       r->name);
    return 0;
}

/* Resolves the context in the merged files into c. */
static int resolve(struct tn_kube_config *c, const struct kc_file *files, size_t nf,
                   const char *names, const char *context, struct tn_err *err)
{
    const char *ctx = context;
    const struct kc_file *ctx_from = NULL;
    for (size_t k = 0; !ctx && k < nf; k++) {
        const char *cc = json_string_value(json_object_get(files[k].doc, "current-context"));
        if (cc && *cc) {
            ctx = cc;
            ctx_from = &files[k];
        }
    }
    if (!ctx)
        return tn_err_set(err, TN_EINVAL,
                          "kubeconfig %s: current-context: not set (and no context was given)",
                          names);
    struct kc_ref cr;
    if (!find_ref(files, nf, 2, ctx, &cr)) {
        if (ctx_from)
            return tn_err_set(err, TN_ENOTFOUND,
                              "kubeconfig %s: current-context: context \"%s\" not found in %s",
                              ctx_from->path, ctx, names);
        return tn_err_set(err, TN_ENOTFOUND, "kubeconfig %s: context \"%s\" not found", names, ctx);
    }
    const char *cluster, *user, *ns;
    int rc;
    if ((rc = ref_str(&cr, "cluster", &cluster, err)) || (rc = ref_str(&cr, "user", &user, err)) ||
        (rc = ref_str(&cr, "namespace", &ns, err)))
        return rc;
    if (!cluster) return ref_err(err, TN_EINVAL, &cr, "cluster", "missing (context \"%s\")", ctx);
    struct kc_ref clr, ur;
    if (!find_ref(files, nf, 0, cluster, &clr))
        return ref_err(err, TN_ENOTFOUND, &cr, "cluster", "cluster \"%s\" not found", cluster);
    if (user && !find_ref(files, nf, 1, user, &ur))
        return ref_err(err, TN_ENOTFOUND, &cr, "user", "user \"%s\" not found", user);
    c->context = strdup(ctx);
    c->namespace_ = strdup(ns ? ns : "default");
    if (!c->context || !c->namespace_) return tn_err_set(err, TN_ENOMEM, "out of memory");
    if ((rc = load_cluster(c, &clr, err))) return rc;
    if (user && (rc = load_user(c, &ur, err))) return rc;
    return 0;
}

static char *home_config(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home) return NULL;
    return path_join(home, ".kube/config");
}

struct tn_kube_config *tn_kube_config_load(const char *path, const char *context,
                                           struct tn_err *err)
{
    struct tn_kube_config *c = NULL;
    struct kc_file *files = NULL;
    size_t nf = 0;
    char *list = NULL;
    int rc = 0, explicit_list = 0;

    if (path && *path) {
        list = strdup(path);
    } else if (getenv("KUBECONFIG") && *getenv("KUBECONFIG")) {
        list = strdup(getenv("KUBECONFIG"));
        explicit_list = 1;
    } else {
        list = home_config();
        if (!list) {
            tn_err_set(err, TN_ENOTFOUND, "kubeconfig: $HOME is not set and no path was given");
            return NULL;
        }
    }
    if (!list) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ':';
    files = calloc(cap, sizeof(*files));
    if (!files) {
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
        goto out;
    }
    /* A single path (argument or ~/.kube/config) must exist; in a $KUBECONFIG list, missing
     * files are skipped as kubectl does. */
    char *save = NULL;
    for (char *p = explicit_list ? strtok_r(list, ":", &save) : list; p;
         p = explicit_list ? strtok_r(NULL, ":", &save) : NULL) {
        if (explicit_list && access(p, F_OK) != 0 && errno == ENOENT) continue;
        int dup = 0;
        for (size_t k = 0; k < nf; k++)
            dup |= !strcmp(files[k].path, p);
        if (dup) continue;
        rc = file_load(&files[nf], p, err);
        nf++;
        if (rc) goto out;
    }
    if (nf == 0) {
        rc = tn_err_set(err, TN_ENOTFOUND, "kubeconfig: none of the files in KUBECONFIG=%s exist",
                        getenv("KUBECONFIG"));
        goto out;
    }

    struct tn_buf names;
    tn_buf_init(&names, 4096);
    for (size_t k = 0; k < nf; k++)
        tn_buf_printf(&names, "%s%s", k ? ":" : "", files[k].path);
    c = config_new();
    if (!c)
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
    else
        rc = resolve(c, files, nf, names.data ? names.data : "", context, err);
    tn_buf_free(&names);

out:
    for (size_t k = 0; k < nf; k++)
        file_free(&files[k]);
    free(files);
    free(list);
    if (rc) {
        if (err && err->code == 0) tn_err_set(err, rc, "kubeconfig: %s", tn_code_str(rc));
        tn_kube_config_free(c);
        return NULL;
    }
    return c;
}

struct tn_kube_config *tn_kube_config_incluster(const char *sa_dir, struct tn_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        tn_err_set(err, TN_ENOTFOUND,
                   "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must "
                   "be set (not running in a pod?)");
        return NULL;
    }
    if (!sa_dir) sa_dir = SA_DIR;
    struct tn_kube_config *c = config_new();
    char *ca = NULL, *ns = NULL;
    int rc = 0;
    if (!c) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    size_t n = strlen(host) + strlen(port) + 16;
    c->server = malloc(n);
    c->token_file = path_join(sa_dir, "token");
    ca = path_join(sa_dir, "ca.crt");
    ns = path_join(sa_dir, "namespace");
    c->context = strdup("");
    if (!c->server || !c->token_file || !ca || !ns || !c->context) {
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");
        goto out;
    }
    /* An IPv6 literal needs brackets in a URL. */
    if (strchr(host, ':') && host[0] != '[')
        snprintf(c->server, n, "https://[%s]:%s", host, port);
    else
        snprintf(c->server, n, "https://%s:%s", host, port);

    struct tn_err e2 = {0};
    if ((rc = read_file(c->token_file, TOKEN_MAX, &c->cached_token, NULL, &e2))) {
        tn_err_set(err, rc, "in-cluster config: service account token: %s", e2.msg);
        goto out;
    }
    trim(c->cached_token);
    c->token_read_at = mono_s();
    /* client-go carries on with the system trust store when ca.crt is unusable. */
    if (read_file(ca, PEM_MAX, &c->ca_pem, NULL, &e2) != 0) {
        TN_WARN("in-cluster CA not loaded, using system trust", "error", e2.msg);
    } else if (!strstr(c->ca_pem, "-----BEGIN ")) {
        TN_WARN("in-cluster CA is not PEM, using system trust", "path", ca);
        free(c->ca_pem);
        c->ca_pem = NULL;
    }
    char *nsdata = NULL;
    if (read_file(ns, 4096, &nsdata, NULL, &e2) == 0) {
        trim(nsdata);
        if (*nsdata)
            c->namespace_ = nsdata;
        else
            free(nsdata);
    }
    if (!c->namespace_ && !(c->namespace_ = strdup("default")))
        rc = tn_err_set(err, TN_ENOMEM, "out of memory");

out:
    free(ca);
    free(ns);
    if (rc) {
        tn_kube_config_free(c);
        return NULL;
    }
    return c;
}

struct tn_kube_config *tn_kube_config_auto(const char *path, struct tn_err *err)
{
    const char *kc = getenv("KUBECONFIG");
    if ((path && *path) || (kc && *kc)) return tn_kube_config_load(path, NULL, err);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (host && *host) return tn_kube_config_incluster(NULL, err);
    return tn_kube_config_load(NULL, NULL, err);
}

char *tn_kube_config_token(struct tn_kube_config *c, int force)
{
    if (!c) return NULL;
    pthread_mutex_lock(&c->mu);
    if (c->token_file &&
        (force || !c->cached_token || mono_s() - c->token_read_at >= TOKEN_REFRESH_S)) {
        char *fresh = NULL;
        struct tn_err e2 = {0};
        if (read_file(c->token_file, TOKEN_MAX, &fresh, NULL, &e2) == 0) {
            trim(fresh);
            if (*fresh) {
                free_secret(c->cached_token);
                c->cached_token = fresh;
            } else {
                free(fresh);
            }
        } else {
            /* Keep the last good token: the kubelet replaces the file atomically, so a
             * failure is transient and the old token is usually still valid. */
            TN_WARN("cannot re-read bearer token file", "error", e2.msg);
        }
        c->token_read_at = mono_s();
    }
    const char *t = c->cached_token ? c->cached_token : c->token;
    char *out = t ? strdup(t) : NULL;
    pthread_mutex_unlock(&c->mu);
    return out;
}
