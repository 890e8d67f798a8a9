/* testapp.h — `v6 testapp`, the test workload shipped with V6 (like
 * Kubernetes' agnhost): an HTTP server whose behaviour (version, latency,
 * errors, crashes, probe answers, SIGTERM handling) is set by flags or env.
 * The CLI's verb table calls testapp_main(); docs/testapp.md describes it. */
#ifndef V6_TESTAPP_H
#define V6_TESTAPP_H

/* testapp.c */
/* argv[0] is the verb ("testapp"), flags follow. Runs until drained after
 * SIGTERM (returns 0), or exits the process itself for --crash-after and
 * /exit/CODE. Returns 2 for bad flags, 1 when it cannot listen. */
int testapp_main(int argc, char **argv);

#endif
