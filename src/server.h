/* server.h — `v6 server`: the control plane process (API server, store,
 * controllers) on one libuv loop. Called by the CLI's verb table. */
#ifndef V6_SERVER_H
#define V6_SERVER_H

/* server.c */
/* Parses server flags (argv[0] is "server"), runs until SIGTERM/SIGINT.
 * Returns the process exit code. */
int server_main(int argc, char **argv);

#endif
