/* server.h — `v6 server`: the control plane process (API server, store,
 * controllers) on one libuv loop. Called by the CLI's verb table. */
#ifndef V6_SERVER_H
#define V6_SERVER_H

/* server.c */
/* Parses server flags (argv[0] is "server"), runs until SIGTERM/SIGINT.
 * Returns the process exit code. */
int server_main(int argc, char **argv);
/* The data directory when --data-dir is not given: $V6_DATA_DIR, else
 * /var/lib/v6 as root, else ~/.local/share/v6. Caller frees. */
char *server_default_data_dir(void);

/* cli_reset.c */
/* `v6 reset`: stops everything a data directory started (argv[0] "reset"). */
int reset_main(int argc, char **argv);

#endif
