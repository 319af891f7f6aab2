/* tandem-apiserver: command line, signals, and the server's lifetime. */
#include "apiserver/apiserver.h"
#include "base/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct tn_apiserver *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server) tn_apiserver_stop(g_server);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: tandem-apiserver [options]\n"
            "\n"
            "A single-process, Kubernetes-API-compatible control plane for one machine, with\n"
            "sqlite storage. Real kubectl and client libraries work against it.\n"
            "\n"
            "Options:\n"
            "  --listen ADDR:PORT        address to serve on (default 127.0.0.1:6443; port 0 "
            "picks one)\n"
            "  --data FILE|:memory:      sqlite database (default ./tandem-apiserver.db)\n"
            "  --write-kubeconfig PATH   write a kubeconfig for clients to PATH\n"
            "  --tls                     serve HTTPS; a CA and serving certificate are generated\n"
            "                            on first start into --cert-dir\n"
            "  --cert-dir DIR            TLS material (default <data>.pki)\n"
            "  --token-file FILE         static bearer tokens, CSV lines token,user,uid[,groups];\n"
            "                            when set, every request but health checks needs one\n"
            "  --advertise-address HOST  host written into the kubeconfig (default: listen "
            "address)\n"
            "  --watch-history N         watch events kept for resuming watches (default 10000)\n"
            "  --bookmark-interval SEC   period of watch BOOKMARK events (default 60)\n"
            "  --log-level LEVEL         debug|info|warn|error (default info)\n"
            "  --log-format FORMAT       text|json (default text)\n"
            "  --help                    show this help\n");
}

int main(int argc, char **argv)
{
    struct tn_apiserver_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.port = 6443;
    enum tn_log_level lvl = TN_LOG_INFO;
    int json = 0;
    static char addr[256];
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},
        {"data", required_argument, 0, 'd'},
        {"write-kubeconfig", required_argument, 0, 'k'},
        {"tls", no_argument, 0, 't'},
        {"cert-dir", required_argument, 0, 'c'},
        {"token-file", required_argument, 0, 'T'},
        {"advertise-address", required_argument, 0, 'a'},
        {"watch-history", required_argument, 0, 'w'},
        {"bookmark-interval", required_argument, 0, 'b'},
        {"log-level", required_argument, 0, 'L'},
        {"log-format", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            const char *colon = strrchr(optarg, ':');
            char *end;
            if (!colon || (cfg.port = (int)strtol(colon + 1, &end, 10), *end) || cfg.port < 0 ||
                cfg.port > 65535) {
                fprintf(stderr, "tandem-apiserver: --listen wants ADDR:PORT, got \"%s\"\n", optarg);
                return 2;
            }
            snprintf(addr, sizeof(addr), "%.*s", (int)(colon - optarg), optarg);
            cfg.addr = addr[0] ? addr : "127.0.0.1";
            break;
        }
        case 'd':
            cfg.data = optarg;
            break;
        case 'k':
            cfg.kubeconfig_out = optarg;
            break;
        case 't':
            cfg.tls = 1;
            break;
        case 'c':
            cfg.cert_dir = optarg;
            break;
        case 'T':
            cfg.token_file = optarg;
            break;
        case 'a':
            cfg.advertise = optarg;
            break;
        case 'w':
            cfg.watch_history = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            cfg.bookmark_ms = (int64_t)(strtod(optarg, NULL) * 1000);
            break;
        case 'L':
            if (tn_log_parse_level(optarg, &lvl)) {
                fprintf(stderr, "tandem-apiserver: --log-level: unknown level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'F':
            if (tn_log_parse_format(optarg, &json)) {
                fprintf(stderr, "tandem-apiserver: --log-format: want text or json, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tandem-apiserver: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    tn_log_setup("apiserver", lvl, json, 2);
    signal(SIGPIPE, SIG_IGN);
    struct tn_err err = {0};
    g_server = tn_apiserver_new(&cfg, &err);
    if (!g_server) {
        fprintf(stderr, "tandem-apiserver: %s\n", err.msg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    tn_apiserver_run(g_server);
    TN_INFO("shutting down");
    tn_apiserver_free(g_server);
    return 0;
}
