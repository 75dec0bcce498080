/* cli/cli.h -- the subcommands. Each returns the process exit code. */
#ifndef CD_CLI_CLI_H
#define CD_CLI_CLI_H

#include "config.h"

int cd_cli_serve(cd_config *cfg, int argc, char **argv);
int cd_cli_account(cd_config *cfg, int argc, char **argv);
int cd_cli_key(cd_config *cfg, int argc, char **argv);
int cd_cli_token(cd_config *cfg, int argc, char **argv);
int cd_cli_ledger(cd_config *cfg, int argc, char **argv);
int cd_cli_export(cd_config *cfg, int argc, char **argv);
int cd_cli_migrate(cd_config *cfg, int argc, char **argv);
/* inbound unrouted [--limit N]: inbound messages no account owns, newest first. */
int cd_cli_inbound(cd_config *cfg, int argc, char **argv);

/* issue 14: sender add|list|lease|release --account NAME ... */
int cd_cli_sender(cd_config *cfg, int argc, char **argv);

#endif
