/* bench/pods/launch.c — the floor for the pods benchmark: forks and execs N
 * copies of a command from one tiny parent, with nothing else in the way
 * (no API, no store, no shim), and times each exec; with -r it also starts
 * every child again, once, the moment it exits. Built and driven by
 * bench/pods/run.sh and pods_bench.py; prints one JSON line of figures. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 10000

struct child {
	pid_t pid;
	int attempts;
	double exec_ms;		/* from the launcher's t0 to exec done (first attempt) */
};

static struct child kids[MAX_CHILDREN];
static double t0;

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
usage(void)
{
	fprintf(stderr, "usage: launch -n N -o DIR [-i A.B] [-r] [-H HOLD_MS] [-t LIMIT_S] "
	    "-- CMD [ARG...]\n"
	    "  runs N copies of CMD, stdout+stderr of copy i to DIR/i.log, POD_IP=A.B.x.y\n"
	    "  with -i; -r starts each copy once more when it exits; then holds HOLD_MS,\n"
	    "  kills every copy's process group and prints JSON figures.\n");
	exit(2);
}

/* Forks copy i; returns once the exec succeeded (a CLOEXEC pipe closes) or
 * failed (the child writes its errno). */
static int
spawn(int i, const char *dir, const char *ipnet, char **argv)
{
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char path[4096], ip[32];
		setpgid(0, 0);
		snprintf(path, sizeof path, "%s/%d.log", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (ipnet) {
			snprintf(ip, sizeof ip, "%s.%d.%d", ipnet, i / 250, i % 250 + 1);
			setenv("POD_IP", ip, 1);
		}
		execvp(argv[0], argv);
		int err = errno;
		if (write(rep[1], &err, sizeof err) < 0)
			_exit(127);
		_exit(127);
	}
	setpgid(pid, pid);
	close(rep[1]);
	int err = 0;
	ssize_t n;
	while ((n = read(rep[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(rep[0]);
	kids[i].pid = pid;
	kids[i].attempts++;
	return n == (ssize_t)sizeof err ? -err : 0;
}

int
main(int argc, char **argv)
{
	int n = 0, restart = 0, opt;
	long hold_ms = 0;
	double limit_s = 60;
	const char *dir = NULL, *ipnet = NULL;
	while ((opt = getopt(argc, argv, "n:o:i:rH:t:")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'o': dir = optarg; break;
		case 'i': ipnet = optarg; break;
		case 'r': restart = 1; break;
		case 'H': hold_ms = atol(optarg); break;
		case 't': limit_s = atof(optarg); break;
		default: usage();
		}
	}
	if (n < 1 || n > MAX_CHILDREN || dir == NULL || optind >= argc)
		usage();
	char **cmd = argv + optind;
	int failed = 0;
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		if (spawn(i, dir, ipnet, cmd) < 0)
			failed++;
		kids[i].exec_ms = now_ms() - t0;
	}
	double all_ms = now_ms() - t0;
	int restarted = 0;
	while (restart && restarted < n && now_ms() - t0 < limit_s * 1e3) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (kids[i].pid != pid || kids[i].attempts != 1)
				continue;
			if (spawn(i, dir, ipnet, cmd) < 0)
				failed++;
			restarted++;
		}
	}
	struct timespec hold = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
	nanosleep(&hold, NULL);
	for (int i = 0; i < n; i++)
		if (kids[i].pid > 0)
			kill(-kids[i].pid, SIGKILL);
	while (wait(NULL) > 0)
		;
	printf("{\"n\":%d,\"failed\":%d,\"restarted\":%d,\"all_ms\":%.3f,\"exec_ms\":[", n,
	    failed, restarted, all_ms);
	for (int i = 0; i < n; i++)
		printf("%s%.3f", i ? "," : "", kids[i].exec_ms);
	printf("]}\n");
	return 0;
}
