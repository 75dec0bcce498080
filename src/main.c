/* main.c -- argv -> serve | account | key | token | ledger | migrate | inbound | sender. */
#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "core/phone.h"
#include "util/crypto.h"

static int usage(void)
{
    fputs("usage: consentd COMMAND [--db URL] ...\n"
          "  serve   [--listen 127.0.0.1:8080] [--db sqlite:PATH] [--threads N] [--quiet]\n"
          "          [--max-body BYTES] [--max-connections 4000] [--max-conns-per-ip 256]\n"
          "          [--request-timeout 30] [--public-rate-limit 600/60] [--ledger-key FILE]\n"
          "          [--webhook-schedule 5,30,120,...] [--allow-private-webhooks]\n"
          "  account create NAME [--login EMAIL] [--brand ABBR] [--region US] [--timezone TZ]\n"
          "  account list\n"
          "  key     create|list --account NAME [--name LABEL] | revoke --account NAME KEY_ID\n"
          "  token   --account NAME [--ttl SECONDS] | revoke --account NAME TOKEN\n"
          "  sender  add --account NAME NUMBER [--type TYPE] [--transport T]\n"
          "          list --account NAME | release --account NAME NUMBER\n"
          "          lease --account NAME NUMBER --profile UUID\n"
          "  ledger  verify [--account NAME] [--ledger-key FILE]\n"
          "  export  --account NAME [--contact NUMBER] [--format json|csv]\n"
          "  migrate\n"
          "  inbound unrouted [--limit N]\n"
          "Every flag has an environment variable: CONSENTD_LISTEN, CONSENTD_DB, ...\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cd_config *, int, char **);
    } commands[] = {
        {"serve", cd_cli_serve},   {"account", cd_cli_account}, {"key", cd_cli_key},
        {"token", cd_cli_token},   {"ledger", cd_cli_ledger},   {"migrate", cd_cli_migrate},
        {"export", cd_cli_export}, {"inbound", cd_cli_inbound}, {"sender", cd_cli_sender}};
    cd_config cfg;
    if (argc < 2)
        return usage();
    /* Requests allocate and free many small blocks across threads; without these glibc keeps
     * giving memory back to the kernel and faulting it in again (madvise, TLB shootdowns),
     * which we measured as a tenth of the CPU time under load. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    /* Everything with global state is set up here, before any thread starts. */
    if (cd_crypto_init() != 0) {
        fputs("consentd: libsodium failed to initialise\n", stderr);
        return 1;
    }
    json_object_seed(0);
    xmlInitParser();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cd_phone_init();
    cd_config_defaults(&cfg);
    int n = cd_config_parse_flags(&cfg, argc - 2, argv + 2);
    int rc = 2;
    if (n >= 0) {
        size_t i = 0;
        while (i < sizeof commands / sizeof commands[0] && strcmp(argv[1], commands[i].name))
            i++;
        rc =
            i < sizeof commands / sizeof commands[0] ? commands[i].run(&cfg, n, argv + 2) : usage();
    }
    curl_global_cleanup();
    xmlCleanupParser();
    return rc;
}
