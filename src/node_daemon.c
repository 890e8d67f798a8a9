/* node_daemon.c — spawning detached processes and finding them again
 * (node_daemon.h). Used by the proxy feed (proxy_feed.c) to keep `v6 proxy`
 * running across server restarts; the same steps the process runtime takes
 * for its shims. */
#include "node_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "node_runtime.h"
#include "util.h"

extern char **environ;

int
node_daemon_spawn(char *const argv[], const char *log_path, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log_path ? log_path : "/dev/null",
	    O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	int rc = -posix_spawn(pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

int
node_daemon_write_pidfile(const char *path, pid_t pid)
{
	char line[64];
	uint64_t ticks = 0;
	int rc = shim__start_time((int)pid, &ticks);
	if (rc < 0)
		return rc;
	int n = snprintf(line, sizeof line, "%d %" PRIu64 "\n", (int)pid, ticks);
	return shim__write_file(path, line, (size_t)n, false);
}

pid_t
node_daemon_read_pidfile(const char *path, uint64_t *ticks)
{
	FILE *f = fopen(path, "re");
	int pid = 0;
	uint64_t want = 0, now = 0;
	if (f == NULL)
		return 0;
	int n = fscanf(f, "%d %" SCNu64, &pid, &want);
	fclose(f);
	if (n != 2 || pid <= 0 || shim__start_time(pid, &now) < 0 || now != want)
		return 0;
	if (ticks)
		*ticks = want;
	return (pid_t)pid;
}

int
node_daemon_pidfd(pid_t pid, uint64_t ticks)
{
	uint64_t now = 0;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	if (ticks && (shim__start_time((int)pid, &now) < 0 || now != ticks)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}
