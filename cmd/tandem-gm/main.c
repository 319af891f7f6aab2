/* tandem-gm: the GlobalManager daemon. Flags (and an optional YAML --config of the same keys,
 * flags winning) are turned into a struct tn_gm_config; pkg/gm/gm.c does the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/gm.h"

static const char usage[] =
    "Usage: tandem-gm [flags]\n"
    "\n"
    "Tandem GlobalManager: runs the sedna.io controllers and the websocket endpoint the\n"
    "LocalControllers connect to. See docs/gm.md.\n"
    "\n"
    "Flags (each also a key of the --config file):\n"
    "  --config FILE                    YAML file with the keys below; flags override it\n"
    "  --kubeconfig PATH                kubeconfig (default: $KUBECONFIG, in-cluster,\n"
    "                                   ~/.kube/config)\n"
    "  --namespace NS                   namespace to watch (default \"\": all namespaces)\n"
    "  --ws-listen ADDR:PORT            LC websocket endpoint (default 0.0.0.0:9000)\n"
    "  --metrics-listen ADDR:PORT       Prometheus /metrics (default 127.0.0.1:8080)\n"
    "  --health-listen ADDR:PORT        /healthz and /readyz (default 127.0.0.1:8081)\n"
    "  --node-tokens FILE               \"node,token\" lines; LCs must present their token\n"
    "                                   (default: none, any node is accepted, as in Sedna)\n"
    "  --leader-elect=true|false        leader election on the Lease tandem-gm (default true)\n"
    "  --leader-election-namespace NS   namespace of the Lease (default: $POD_NAMESPACE, the\n"
    "                                   kubeconfig's namespace, \"default\")\n"
    "  --log-level debug|info|warn|error  (default info)\n"
    "  --log-format text|json           (default text)\n"
    "  --help                           this text\n";

static const char *const keys[] = {
    "kubeconfig",    "namespace",   "ws-listen",    "metrics-listen",
    "health-listen", "node-tokens", "leader-elect", "leader-election-namespace",
    "log-level",     "log-format",  NULL,
};

static int known(const char *k)
{
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], k)) return 1;
    return !strcmp(k, "config");
}

/* Splits argv[*i] ("--key=value" or "--key value") into key and value. 0, or -1 with a message. */
static int flag_at(int argc, char **argv, int *i, char *key, size_t n, const char **value)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) {
        fprintf(stderr, "tandem-gm: unexpected argument %s (see --help)\n", a);
        return -1;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    size_t klen = eq ? (size_t)(eq - a) : strlen(a);
    if (klen + 1 > n || klen == 0) {
        fprintf(stderr, "tandem-gm: bad flag %s\n", argv[*i]);
        return -1;
    }
    memcpy(key, a, klen);
    key[klen] = '\0';
    if (!known(key)) {
        fprintf(stderr, "tandem-gm: unknown flag --%s (see --help)\n", key);
        return -1;
    }
    if (eq) {
        *value = eq + 1;
    } else if (!strcmp(key, "leader-elect")) {
        *value = "true";
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        fprintf(stderr, "tandem-gm: flag --%s needs a value\n", key);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tn_gm_config cfg;
    struct tn_err err = {0};
    char key[64];
    const char *value;
    const char *config = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
    }
    if (tn_gm_config_init(&cfg) != 0) {
        fprintf(stderr, "tandem-gm: out of memory\n");
        return 1;
    }
    /* First pass: --config, so that flags override the file. */
    for (int i = 1; i < argc; i++) {
        if (flag_at(argc, argv, &i, key, sizeof(key), &value) != 0) goto fail;
        if (!strcmp(key, "config")) config = value;
    }
    if (config && tn_gm_config_load_file(&cfg, config, &err) != 0) {
        fprintf(stderr, "tandem-gm: --config: %s\n", err.msg);
        goto fail;
    }
    for (int i = 1; i < argc; i++) {
        flag_at(argc, argv, &i, key, sizeof(key), &value);
        if (!strcmp(key, "config")) continue;
        if (tn_gm_config_set(&cfg, key, value, &err) != 0) {
            fprintf(stderr, "tandem-gm: --%s\n", err.msg);
            goto fail;
        }
    }
    int rc = tn_gm_run(&cfg, &err);
    if (rc != 0) fprintf(stderr, "tandem-gm: %s\n", err.msg);
    tn_gm_config_free(&cfg);
    return rc == 0 ? 0 : 1;
fail:
    tn_gm_config_free(&cfg);
    return 2;
}
