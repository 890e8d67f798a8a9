/* cli_exec.c — `v6 exec POD [-c C] [-i] [-t] -- CMD ARGS`: the same
 * WebSocket kubectl exec opens (v5.channel.k8s.io, cli_ws.c) on
 * .../pods/NAME/exec?command=...: stdin streamed on channel 0 and its end
 * signalled on 255, -t with the local terminal in raw mode and its size
 * sent on channel 4 (again on SIGWINCH); stdout, stderr copied; exits
 * with the command's exit code from the closing Status (channel 3).
 * `v6 attach POD [-c C] [-i] [-t]` is the same stream on .../attach: the
 * running container's output, and stdin into its own; -t drives the
 * container's terminal (tty: true), else says it has none, as kubectl. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_STATUS = 3, CH_RESIZE = 4,
	CH_CLOSE = 255 };

struct exec_rx {
	int exit_code;			/* -1 until the Status */
};

static volatile sig_atomic_t winch;

static void
on_winch(int sig)
{
	(void)sig;
	winch = 1;
}

/* The exit code a closing Status carries: 0 for Success, the ExitCode
 * cause of NonZeroExitCode, else 1 with its message printed. */
static int
status_code(const char *data, size_t len)
{
	json_t *st = json_loadb(data, len, 0, NULL);
	int code = 1;
	if (strcmp(obj_str(st, "status"), "Success") == 0) {
		code = 0;
	} else {
		json_t *causes = obj_get_path(st, "details.causes"), *c;
		size_t i;
		bool found = false;
		json_array_foreach(causes, i, c)
			if (strcmp(obj_str(c, "reason"), "ExitCode") == 0) {
				code = atoi(obj_str(c, "message"));
				found = true;
			}
		if (!found)
			fprintf(stderr, "error: %s\n", *obj_str(st, "message") ?
			    obj_str(st, "message") : "exec failed");
	}
	json_decref(st);
	return code;
}

static void
on_message(void *arg, const char *data, size_t len)
{
	struct exec_rx *rx = arg;
	if (len == 0)
		return;
	switch ((unsigned char)data[0]) {
	case CH_STDOUT:
		fd_write_all(1, data + 1, len - 1);
		break;
	case CH_STDERR:
		fd_write_all(2, data + 1, len - 1);
		break;
	case CH_STATUS:
		rx->exit_code = status_code(data + 1, len - 1);
		break;
	default:
		break;
	}
}

/* .../pods/POD/SUB?... with the command words from args[from] on (exec). */
static char *
stream_path(const struct cli_opts *o, const char *pod, const char *sub, size_t from)
{
	struct buf q = BUF_INIT;
	if (o->container) {
		char *esc = curl_easy_escape(NULL, o->container, 0);
		buf_printf(&q, "container=%s&", esc);
		curl_free(esc);
	}
	for (size_t i = from; i < o->nargs; i++) {
		char *esc = curl_easy_escape(NULL, o->args[i], 0);
		buf_printf(&q, "command=%s&", esc);
		curl_free(esc);
	}
	buf_printf(&q, "stdin=%s&stdout=true&stderr=%s&tty=%s", o->stdin_ ? "true" : "false",
	    o->tty ? "false" : "true", o->tty ? "true" : "false");
	char *path = cli_path(kind_find_gvk("v1", "Pod"), cli_ns(o), pod, NULL);
	char *full = xasprintf("%s/%s?%s", path, sub, q.data);
	free(path);
	buf_free(&q);
	return full;
}

static void
send_size(struct cli_ws *w)
{
	struct winsize ws;
	if (ioctl(1, TIOCGWINSZ, &ws) < 0 && ioctl(0, TIOCGWINSZ, &ws) < 0)
		return;
	char msg[64];
	int n = snprintf(msg, sizeof msg, "{\"Width\":%u,\"Height\":%u}", ws.ws_col, ws.ws_row);
	cli_ws_send(w, CH_RESIZE, msg, (size_t)n);
}

/* Copies stdin and the WebSocket until the Status or the end. */
static void
pump(struct cli_ws *w, bool with_stdin, bool tty, struct exec_rx *rx)
{
	bool in_open = with_stdin;
	while (rx->exit_code < 0) {
		struct pollfd p[2] = { { .fd = cli_ws_fd(w), .events = POLLIN },
			{ .fd = 0, .events = POLLIN } };
		int rc = poll(p, in_open ? 2 : 1, 100);
		if (winch && tty) {
			winch = 0;
			send_size(w);
		}
		if (cli_ws_read(w, on_message, rx) != 0)
			return;
		if (rc <= 0 || !in_open || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char chunk[32768];
		ssize_t n = read(0, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			cli_ws_send(w, CH_STDIN, chunk, (size_t)n);
			continue;
		}
		in_open = false;	/* EOF: v5's close of stdin */
		unsigned char close_in = CH_STDIN;
		cli_ws_send(w, CH_CLOSE, &close_in, 1);
	}
}

static const char *
pod_name(const char *arg)
{
	if (strncmp(arg, "pod/", 4) == 0 || strncmp(arg, "pods/", 5) == 0)
		return strchr(arg, '/') + 1;
	return arg;
}

/* Streams the WebSocket of path until the closing Status: the exit code
 * it carries, or 1 when the stream ended without one (what says that
 * is printed). */
static int
run_stream(struct cli_opts *o, const char *path, const char *what)
{
	struct cli_ws *w = cli_ws_open(path, "v5.channel.k8s.io");
	if (!w)
		return 1;
	struct exec_rx rx = { .exit_code = -1 };
	struct termios saved;
	bool raw = o->tty && o->stdin_ && isatty(0) && tcgetattr(0, &saved) == 0;
	if (raw) {
		struct termios t = saved;
		cfmakeraw(&t);
		tcsetattr(0, TCSANOW, &t);
	}
	if (o->tty) {
		struct sigaction sa = { .sa_handler = on_winch };
		sigaction(SIGWINCH, &sa, NULL);
		send_size(w);
	}
	pump(w, o->stdin_, o->tty, &rx);
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	cli_ws_close(w);
	if (rx.exit_code < 0) {
		fprintf(stderr, "error: %s\n", what);
		return 1;
	}
	return rx.exit_code > 255 ? 255 : rx.exit_code;
}

int
cli_exec(struct cli_opts *o)
{
	if (o->nargs < 2)
		return cli_err("v6 exec needs a pod and a command: v6 exec POD -- COMMAND [ARGS...]");
	char *path = stream_path(o, pod_name(o->args[0]), "exec", 1);
	int rc = run_stream(o, path, "the exec stream ended before the command's exit status");
	free(path);
	return rc;
}

/* kubectl attach's check: a container started without a terminal (no
 * tty: true in its spec) gets none now; said, and attached without. */
static void
attach_tty_check(struct cli_opts *o, const char *pod)
{
	char *path = cli_path(kind_find_gvk("v1", "Pod"), cli_ns(o), pod, NULL);
	json_t *obj = NULL, *c = NULL;
	const char *name = o->container;
	if (cli_get_json(path, &obj) == 0) {
		json_t *cs = obj_get_path(obj, "spec.containers");
		for (size_t i = 0; i < json_array_size(cs) && c == NULL; i++) {
			const char *cn = obj_str(json_array_get(cs, i), "name");
			if (name == NULL || (cn && strcmp(cn, name) == 0))
				c = json_array_get(cs, i);
		}
		if (name == NULL)
			name = obj_str(c, "name");
	}
	if (json_is_true(json_object_get(c, "tty"))) {
		json_decref(obj);
		free(path);
		return;
	}
	fprintf(stderr, "error: Unable to use a TTY - container %s did not allocate one\n",
	    name ? name : "");
	o->tty = false;
	json_decref(obj);
	free(path);
}

int
cli_attach(struct cli_opts *o)
{
	if (o->nargs != 1)
		return cli_err("v6 attach needs exactly one pod: v6 attach POD [-c CONTAINER] [-i] [-t]");
	const char *pod = pod_name(o->args[0]);
	if (o->tty)
		attach_tty_check(o, pod);
	char *path = stream_path(o, pod, "attach", 1);
	int rc = run_stream(o, path, "the attach stream ended before the container exited");
	free(path);
	return rc;
}
