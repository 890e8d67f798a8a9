/* main.c — the one `v6` binary: client, server, and (later) proxy and shim
 * modes all start here and are dispatched by the CLI's verb table. */
#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
