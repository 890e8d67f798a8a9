/* proc.c — spawning detached processes and finding them again (proc.h):
 * posix_spawn in a new session, pid files checked against PID reuse by the
 * process's start time, pidfds. Plain libc: the runtime, the proxy
 * supervisor and the static v6-shim (Makefile SHIM_SRCS) all link it. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

int
proc_spawn(char *const argv[], const char *log_path, pid_t *pid)
{
	return proc_spawn_fd(argv, log_path, -1, pid);
}

int
proc_spawn_fd(char *const argv[], const char *log_path, int fd3, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log_path ? log_path : "/dev/null",
	    O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd3 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd3, 3);
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

char *
proc_which(const char *name)
{
	const char *path = getenv("PATH");
	for (const char *d = path; d && *d; ) {
		size_t n = strcspn(d, ":");
		char *p = xasprintf("%.*s/%s", (int)n, d, name);
		if (n > 0 && access(p, X_OK) == 0)
			return p;
		free(p);
		d += n + (d[n] == ':');
	}
	return NULL;
}

int
proc_start_ticks(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%" SCNu64, out) != 1)
		return -EIO;
	return 0;
}

bool
proc_is_alive(const struct proc_id *id)
{
	uint64_t now;
	return id->pid > 0 && proc_start_ticks(id->pid, &now) == 0 && now == id->ticks;
}

int
proc_pidfile_write(const char *path, pid_t pid, int64_t extra)
{
	char line[96];
	uint64_t ticks = 0;
	int rc = proc_start_ticks(pid, &ticks);
	if (rc < 0)
		return rc;
	int n = extra ? snprintf(line, sizeof line, "%d %" PRIu64 " %" PRId64 "\n", (int)pid,
	    ticks, extra) : snprintf(line, sizeof line, "%d %" PRIu64 "\n", (int)pid, ticks);
	return file_write_atomic(path, line, (size_t)n, false);
}

int
proc_pidfile_load(const char *path, struct proc_id *id)
{
	FILE *f = fopen(path, "re");
	int pid = 0;
	memset(id, 0, sizeof *id);
	if (f == NULL)
		return -errno;
	int n = fscanf(f, "%d %" SCNu64 " %" SCNd64, &pid, &id->ticks, &id->extra);
	fclose(f);
	if (n < 2 || pid <= 0) {
		memset(id, 0, sizeof *id);
		return -EINVAL;
	}
	id->pid = (pid_t)pid;
	return 0;
}

pid_t
proc_pidfile_read(const char *path, uint64_t *ticks)
{
	struct proc_id id;
	if (proc_pidfile_load(path, &id) < 0 || !proc_is_alive(&id))
		return 0;
	if (ticks)
		*ticks = id.ticks;
	return id.pid;
}

int
proc_pidfd_open(pid_t pid, uint64_t ticks)
{
	struct proc_id id = { .pid = pid, .ticks = ticks };
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	if (ticks && !proc_is_alive(&id)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}
