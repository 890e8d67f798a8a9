/* main.c — the one `v6` binary: the program table dispatches `v6 server`,
 * `v6 reset`, `v6 proxy`, `v6 shim` and `v6 testapp` to their own mains (each parses
 * its own flags, from argv at the verb on); every other verb is the CLI's. */
#include "cli.h"
#include "node_runtime.h"
#include "proxy.h"
#include "server.h"
#include "testapp.h"

#include <string.h>

static const struct program {
	const char *verb;
	int (*main)(int argc, char **argv);
} programs[] = {
	{ "server", server_main },
	{ "reset", reset_main },
	{ "proxy", proxy_main },
	{ "shim", shim_main },
	{ "testapp", testapp_main },
};

int
main(int argc, char **argv)
{
	int vi = cli_find_verb(argc, argv);
	for (size_t i = 0; vi > 0 && i < ARRAY_SIZE(programs); i++)
		if (strcmp(argv[vi], programs[i].verb) == 0)
			return programs[i].main(argc - vi, argv + vi);
	return cli_main(argc, argv);
}
