/* node_cni.c — the pod network of runc pods: a network namespace per pod,
 * pinned by a bind mount at STATE/netns/POD_UID, attached to a host bridge
 * by Debian's CNI plugins (bridge + host-local IPAM, data in STATE/cni)
 * called as the CNI spec says (CNI_COMMAND ADD / DEL, config on stdin,
 * result JSON on stdout). The node agent asks for sandboxes on the loop;
 * plugin calls run on libuv's thread pool. */
#include "node_cni.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

enum { PLUGIN_TIMEOUT_MS = 30000, PLUGIN_OUT_MAX = 1 << 20 };

/* ---- pure parts ------------------------------------------------------------ */

char *
ncni_netconf(const struct ncni_config *cfg)
{
	json_t *routes = json_array();
	if (cfg->service_cidr && *cfg->service_cidr)
		json_array_append_new(routes, json_pack("{s:s}", "dst", cfg->service_cidr));
	if (cfg->masquerade)
		json_array_append_new(routes, json_pack("{s:s}", "dst", "0.0.0.0/0"));
	char *ipam_dir = xasprintf("%s/cni/ipam", cfg->state_dir);
	json_t *conf = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:{s:s, s:[[{s:s}]], "
	    "s:o, s:s}}", "cniVersion", "1.0.0", "name", "v6", "type", "bridge", "bridge",
	    cfg->bridge, "isGateway", 1, "ipMasq", cfg->masquerade, "hairpinMode", 1,
	    "ipam", "type", "host-local", "ranges", "subnet", cfg->cidr, "routes", routes,
	    "dataDir", ipam_dir);
	char *out = json_dumps(conf, JSON_COMPACT);
	json_decref(conf);
	free(ipam_dir);
	return out;
}

int
ncni_parse_result(const char *text, struct ncni_result *out, char **err)
{
	json_error_t je;
	json_t *r = json_loads(text ? text : "", 0, &je);
	int rc = -EIO;
	memset(out, 0, sizeof *out);
	*err = NULL;
	if (!json_is_object(r)) {
		*err = xasprintf("the plugin's output is not a JSON object: %s", je.text);
		goto out;
	}
	json_t *code = json_object_get(r, "code");
	if (json_is_integer(code)) {
		const char *msg = json_string_value(json_object_get(r, "msg"));
		const char *det = json_string_value(json_object_get(r, "details"));
		*err = xasprintf("CNI error %lld: %s%s%s", (long long)json_integer_value(code),
		    msg ? msg : "(no message)", det && *det ? ": " : "", det && *det ? det : "");
		goto out;
	}
	size_t i;
	json_t *ipc;
	json_array_foreach(json_object_get(r, "ips"), i, ipc) {
		const char *addr = json_string_value(json_object_get(ipc, "address"));
		const char *ver = json_string_value(json_object_get(ipc, "version"));
		if (!addr || strchr(addr, ':') || (ver && strcmp(ver, "4") != 0))
			continue;	/* IPv6: not used for status.podIP yet */
		size_t n = strcspn(addr, "/");
		if (n == 0 || n >= sizeof out->ip)
			continue;
		memcpy(out->ip, addr, n);
		const char *gw = json_string_value(json_object_get(ipc, "gateway"));
		snprintf(out->gateway, sizeof out->gateway, "%s", gw ? gw : "");
		rc = 0;
		goto out;
	}
	*err = xstrdup("the CNI result has no IPv4 address");
out:
	json_decref(r);
	return rc;
}

/* ---- blocking parts, on the thread pool ------------------------------ */

struct ncni {
	uv_loop_t *loop;
	struct ncni_config cfg;		/* strings owned */
	char *netns_dir, *results_dir;
	json_t *pods;			/* uid -> {state, ip, netns, err, release} */
	int works;			/* in flight; freed after the last once closed */
	bool closed;
};

char *
ncni_netns_path(const struct ncni *c, const char *uid)
{
	return xasprintf("%s/%s", c->netns_dir, uid);
}

bool
ncni_is_ns(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == NSFS_MAGIC;
}

/* The namespace types ncni_ns_pin makes: clone flag -> /proc/self/ns name. */
static const struct {
	int flag;
	const char *self;
} ns_types[] = {
	{ CLONE_NEWNET, "/proc/self/ns/net" }, { CLONE_NEWIPC, "/proc/self/ns/ipc" },
};

struct pin_arg {
	int clone_flag;
	const char *self, *path;
};

/* The pinning child: shares the caller's memory (below), so it only makes
 * system calls and exits with the step that failed. */
static int
pin_child(void *arg)
{
	const struct pin_arg *a = arg;
	if (unshare(a->clone_flag) < 0)
		_exit(1);
	if (mount(a->self, a->path, NULL, MS_BIND, NULL) < 0)
		_exit(2);
	_exit(0);
}

enum { PIN_STACK = 16384 };

/* As `ip netns add` does, but at any path: a child process unshares the
 * namespace and pins it, so no thread of ours ever changes namespace. The
 * child is cloned with CLONE_VM | CLONE_VFORK (as posix_spawn does), not
 * forked: a fork copied the server's page tables and made every thread of
 * it take copy-on-write faults afterwards, ~10% of the server's CPU in a
 * 10-pod runc start (perf). Signals stay blocked in the child, which
 * shares our memory and must not run our handlers. */
int
ncni_ns_pin(const char *path, int clone_flag)
{
	const char *self = NULL;
	for (size_t i = 0; i < sizeof ns_types / sizeof ns_types[0]; i++)
		if (ns_types[i].flag == clone_flag)
			self = ns_types[i].self;
	if (self == NULL)
		return -EINVAL;
	if (ncni_is_ns(path))
		return 0;
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	struct pin_arg a = { .clone_flag = clone_flag, .self = self, .path = path };
	_Alignas(16) char stack[PIN_STACK];	/* ours is suspended until it exits */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(pin_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -err;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		unlink(path);
		return WIFEXITED(st) && WEXITSTATUS(st) == 1 ? -EPERM : -EIO;
	}
	return 0;
}

void
ncni_ns_unpin(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("cni", "unmounting %s: %s", path, strerror(errno));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cni", "removing %s: %s", path, strerror(errno));
}

/* Reads fd until EOF or the deadline into *out. */
static int
read_all(int fd, int64_t deadline, char **out)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	for (;;) {
		int64_t left = deadline - time_mono_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (left <= 0) {
			buf_free(&b);
			return -ETIMEDOUT;
		}
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b.len + (size_t)n > PLUGIN_OUT_MAX) {
			buf_free(&b);
			return -E2BIG;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	*out = buf_steal(&b);
	return 0;
}

/* Runs plugin type with CNI_COMMAND cmd for uid, the config on stdin; *out
 * gets its stdout. Returns 0 on exit status 0, -EIO on another exit (the
 * output is the CNI error), or -errno. */
static int
plugin_run(const struct ncni *c, const char *type, const char *cmd, const char *uid,
    const char *netns, char **out)
{
	const char *dir = c->cfg.plugin_dir ? c->cfg.plugin_dir : NCNI_PLUGIN_DIR;
	char *path = xasprintf("%s/%s", dir, type);
	char *conf = strcmp(type, "loopback") == 0 ? xstrdup("{\"cniVersion\":\"1.0.0\","
	    "\"name\":\"lo\",\"type\":\"loopback\"}") : ncni_netconf(&c->cfg);
	char *env[] = { xasprintf("CNI_COMMAND=%s", cmd), xasprintf("CNI_CONTAINERID=%s", uid),
		xasprintf("CNI_NETNS=%s", netns ? netns : ""), xstrdup("CNI_IFNAME=eth0"),
		xasprintf("CNI_PATH=%s", dir), xstrdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
		NULL };
	char *argv[] = { path, NULL };
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, rc;
	pid_t pid = -1;
	*out = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		rc = -errno;
		goto done;
	}
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if ((rc = -posix_spawn(&pid, path, &fa, NULL, argv, env)) < 0) {
		pid = -1;
		goto done;
	}
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	size_t len = strlen(conf), off = 0;
	while (off < len) {		/* a few hundred bytes: the pipe takes them */
		ssize_t n = write(in[1], conf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(in[1]);
	in[1] = -1;
	rc = read_all(outp[0], time_mono_ms() + PLUGIN_TIMEOUT_MS, out);
done:
	if (pid > 0) {
		int st;
		if (rc == -ETIMEDOUT)
			kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (rc == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			rc = -EIO;
	}
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	posix_spawn_file_actions_destroy(&fa);
	for (char **e = env; *e; e++)
		free(*e);
	free(path);
	free(conf);
	return rc;
}

/* Runs `ip ARGS...` (stdout and stderr to /dev/null); 0, -EIO when it
 * failed, or -errno. Blocking. */
static int
run_ip(char *const argv[])
{
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = -posix_spawnp(&pid, "ip", &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (rc < 0)
		return rc;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* STATE/cni/host.json records what a pod network made outside the data
 * directory (the bridge, the Services' local route), so that `v6 reset`
 * can undo it after the server is gone. */
static void
record_host(const char *state_dir, const char *key, const char *value)
{
	char *dir = xasprintf("%s/cni", state_dir), *path = xasprintf("%s/host.json", dir);
	mkdir(state_dir, 0755);
	mkdir(dir, 0700);
	json_t *h = json_load_file(path, 0, NULL);
	if (!json_is_object(h)) {
		json_decref(h);
		h = json_object();
	}
	json_object_set_new(h, key, json_string(value));
	char *text = json_dumps(h, JSON_SORT_KEYS);
	if (file_write_atomic(path, text, strlen(text), true) < 0)
		log_warn("cni", "%s: cannot record %s", path, key);
	free(text);
	json_decref(h);
	free(path);
	free(dir);
}

int
ncni_hold_services(const char *state_dir, const char *cidr)
{
	char *argv[] = { "ip", "route", "replace", "local", (char *)cidr, "dev", "lo", NULL };
	int rc = run_ip(argv);
	if (rc < 0) {
		log_error("cni", "ip route replace local %s dev lo failed: %s", cidr,
		    rc == -EIO ? "ip exited with an error" : strerror(-rc));
		return rc;
	}
	record_host(state_dir, "serviceCIDR", cidr);
	log_info("cni", "Service addresses %s are local (route on lo)", cidr);
	return 0;
}

/* How many ports bridge br has; -1 when it does not exist. */
static int
bridge_ports(const char *br)
{
	char *path = xasprintf("/sys/class/net/%s/brif", br);
	DIR *d = opendir(path);
	free(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Unmounts and removes the pinned network namespaces of STATE/netns: with
 * their containers stopped, nothing holds them and each namespace goes,
 * with the pod's end of its veth (the bridge's end goes too). The next
 * server releases their addresses (ncni_gc). Returns how many. */
static int
drop_netns(const char *state_dir)
{
	char *dir = xasprintf("%s/netns", state_dir);
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		umount2(path, MNT_DETACH);
		n += unlink(path) == 0;
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
	return n;
}

int
ncni_reset_host(const char *state_dir, FILE *out)
{
	char *path = xasprintf("%s/cni/host.json", state_dir);
	json_t *h = json_load_file(path, 0, NULL);
	free(path);
	const char *br = json_string_value(json_object_get(h, "bridge"));
	const char *cidr = json_string_value(json_object_get(h, "serviceCIDR"));
	int dropped = drop_netns(state_dir);
	if (dropped)
		fprintf(out, "removed %d pod network namespace(s)\n", dropped);
	int rc = 0, ports = br ? bridge_ports(br) : -1;
	/* the kernel frees a namespace, and its veths, a moment after its
	 * last user: give the bridge up to a second to empty */
	for (int i = 0; i < 100 && ports > 0 && dropped; i++) {
		usleep(10000);
		ports = bridge_ports(br);
	}
	if (ports > 0) {
		fprintf(out, "kept bridge %s: %d interface(s) still attached (another "
		    "server's pods?)\n", br, ports);
	} else if (ports == 0) {
		char *argv[] = { "ip", "link", "del", (char *)br, NULL };
		if (run_ip(argv) == 0)
			fprintf(out, "removed bridge %s\n", br);
		else
			rc = -EIO, fprintf(out, "could not remove bridge %s (ip link del)\n", br);
	}
	if (cidr) {
		char *argv[] = { "ip", "route", "del", "local", (char *)cidr, "dev", "lo",
			"table", "local", NULL };
		if (run_ip(argv) == 0)
			fprintf(out, "removed route local %s dev lo\n", cidr);
	}
	json_decref(h);
	return rc;
}

struct work {
	uv_work_t req;
	struct ncni *c;
	char *uid;
	bool add;
	void (*ready)(void *, const char *);
	void *arg;
	int rc;
	struct ncni_result res;
	char *err;
};

static void
sandbox_add(struct work *w)
{
	struct ncni *c = w->c;
	char *netns = ncni_netns_path(c, w->uid), *out = NULL;
	char *saved = xasprintf("%s/%s.json", c->results_dir, w->uid);
	if ((w->rc = ncni_ns_pin(netns, CLONE_NEWNET)) < 0) {
		w->err = xasprintf("making the network namespace %s: %s", netns, strerror(-w->rc));
		goto out;
	}
	/* lo up first (as every CNI runtime does), then eth0 on the bridge */
	if ((w->rc = plugin_run(c, "loopback", "ADD", w->uid, netns, &out)) == 0) {
		free(out);
		out = NULL;
		w->rc = plugin_run(c, "bridge", "ADD", w->uid, netns, &out);
	}
	if (w->rc == 0 || w->rc == -EIO)
		w->rc = ncni_parse_result(out, &w->res, &w->err);
	else
		w->err = xasprintf("running the CNI plugins in %s: %s", c->cfg.plugin_dir ?
		    c->cfg.plugin_dir : NCNI_PLUGIN_DIR, strerror(-w->rc));
	if (w->rc == 0)
		w->rc = file_write_atomic(saved, out, strlen(out), false);
	if (w->rc < 0) {		/* nothing half made stays */
		char *ignored = NULL;
		plugin_run(c, "bridge", "DEL", w->uid, netns, &ignored);
		free(ignored);
		ncni_ns_unpin(netns);
	}
out:
	free(out);
	free(saved);
	free(netns);
}

static void
sandbox_del(struct work *w)
{
	struct ncni *c = w->c;
	char *netns = ncni_netns_path(c, w->uid), *out = NULL;
	char *saved = xasprintf("%s/%s.json", c->results_dir, w->uid);
	/* DEL must succeed when the namespace is gone already (CNI spec) */
	w->rc = plugin_run(c, "bridge", "DEL", w->uid, ncni_is_ns(netns) ? netns : NULL, &out);
	if (w->rc < 0) {
		struct ncni_result ignored;
		if (ncni_parse_result(out, &ignored, &w->err) == 0 || !w->err)
			w->err = xstrdup(strerror(-w->rc));
	}
	ncni_ns_unpin(netns);
	unlink(saved);
	free(out);
	free(saved);
	free(netns);
}

static void
work_run(uv_work_t *req)
{
	struct work *w = req->data;
	if (w->add)
		sandbox_add(w);
	else
		sandbox_del(w);
}

/* ---- the agent's side, on the loop ------------------------------------ */

static void queue(struct ncni *c, const char *uid, bool add,
    void (*ready)(void *, const char *), void *arg);

static void
ncni_free(struct ncni *c)
{
	free((char *)c->cfg.state_dir);
	free((char *)c->cfg.bridge);
	free((char *)c->cfg.cidr);
	free((char *)c->cfg.service_cidr);
	free((char *)c->cfg.plugin_dir);
	free(c->netns_dir);
	free(c->results_dir);
	json_decref(c->pods);
	free(c);
}

static void
work_done(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct ncni *c = w->c;
	(void)status;
	c->works--;
	json_t *p = json_object_get(c->pods, w->uid);
	if (!w->add) {
		if (w->rc < 0)
			log_warn("cni", "pod %s: tearing the network down: %s", w->uid, w->err);
		else
			log_info("cni", "pod %s: network torn down", w->uid);
		json_object_del(c->pods, w->uid);
	} else if (json_is_true(json_object_get(p, "release"))) {
		json_object_del(c->pods, w->uid);	/* released while being made */
		if (!c->closed)
			queue(c, w->uid, false, NULL, NULL);
	} else if (p) {
		char *netns = ncni_netns_path(c, w->uid);
		if (w->rc == 0) {
			json_object_set_new(p, "state", json_string("ready"));
			json_object_set_new(p, "ip", json_string(w->res.ip));
			json_object_set_new(p, "netns", json_string(netns));
			log_info("cni", "pod %s: %s on bridge %s (%s)", w->uid, w->res.ip,
			    c->cfg.bridge, netns);
		} else {
			json_object_set_new(p, "state", json_string("failed"));
			json_object_set_new(p, "err", json_string(w->err ? w->err : "failed"));
			log_warn("cni", "pod %s: %s", w->uid, w->err ? w->err : "failed");
		}
		free(netns);
		if (!c->closed && w->ready)
			w->ready(w->arg, w->uid);
	}
	free(w->uid);
	free(w->err);
	free(w);
	if (c->closed && c->works == 0)
		ncni_free(c);
}

static void
queue(struct ncni *c, const char *uid, bool add, void (*ready)(void *, const char *),
    void *arg)
{
	struct work *w = xcalloc(1, sizeof *w);
	w->c = c;
	w->uid = xstrdup(uid);
	w->add = add;
	w->ready = ready;
	w->arg = arg;
	w->req.data = w;
	c->works++;
	if (!add)
		json_object_set_new(c->pods, uid, json_pack("{s:s}", "state", "releasing"));
	uv_queue_work(c->loop, &w->req, work_run, work_done);
}

int
ncni_open(uv_loop_t *loop, const struct ncni_config *cfg, struct ncni **out)
{
	struct ncni *c = xcalloc(1, sizeof *c);
	c->loop = loop;
	c->cfg.state_dir = xstrdup(cfg->state_dir);
	c->cfg.bridge = xstrdup(cfg->bridge ? cfg->bridge : NCNI_DEFAULT_BRIDGE);
	c->cfg.cidr = xstrdup(cfg->cidr ? cfg->cidr : NCNI_DEFAULT_CIDR);
	c->cfg.service_cidr = cfg->service_cidr ? xstrdup(cfg->service_cidr) : NULL;
	c->cfg.plugin_dir = cfg->plugin_dir ? xstrdup(cfg->plugin_dir) : NULL;
	c->cfg.masquerade = cfg->masquerade;
	c->netns_dir = xasprintf("%s/netns", cfg->state_dir);
	c->results_dir = xasprintf("%s/cni/results", cfg->state_dir);
	c->pods = json_object();
	char *cni = xasprintf("%s/cni", cfg->state_dir);
	mkdir(cfg->state_dir, 0755);
	mkdir(cni, 0700);
	free(cni);
	int rc = 0;
	if ((mkdir(c->netns_dir, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(c->results_dir, 0700) < 0 && errno != EEXIST))
		rc = -errno;
	char *bridge = xasprintf("%s/bridge", c->cfg.plugin_dir ? c->cfg.plugin_dir :
	    NCNI_PLUGIN_DIR);
	if (rc == 0 && access(bridge, X_OK) < 0)
		rc = -errno;
	if (rc < 0) {
		log_error("cni", "pod network: %s: %s", rc == -ENOENT ? bridge : c->netns_dir,
		    strerror(-rc));
		free(bridge);
		ncni_free(c);
		return rc;
	}
	free(bridge);
	record_host(cfg->state_dir, "bridge", c->cfg.bridge);
	log_info("cni", "pod network: bridge %s, subnet %s%s%s, netns in %s", c->cfg.bridge,
	    c->cfg.cidr, c->cfg.service_cidr ? ", Services via the gateway: " : "",
	    c->cfg.service_cidr ? c->cfg.service_cidr : "", c->netns_dir);
	*out = c;
	return 0;
}

void
ncni_close(struct ncni *c)
{
	if (!c)
		return;
	c->closed = true;
	if (c->works == 0)
		ncni_free(c);
}

/* A sandbox an earlier server made: its saved result, if the namespace is
 * still there. */
static bool
adopt(struct ncni *c, const char *uid)
{
	char *saved = xasprintf("%s/%s.json", c->results_dir, uid), *text = NULL;
	char *netns = ncni_netns_path(c, uid), *err = NULL;
	size_t len;
	struct ncni_result res;
	bool ok = ncni_is_ns(netns) && file_read_all(saved, &text, &len) == 0 &&
	    ncni_parse_result(text, &res, &err) == 0;
	if (ok)
		json_object_set_new(c->pods, uid, json_pack("{s:s, s:s, s:s}", "state", "ready",
		    "ip", res.ip, "netns", netns));
	free(err);
	free(text);
	free(saved);
	free(netns);
	return ok;
}

int
ncni_sandbox(struct ncni *c, const char *uid, void (*ready)(void *, const char *),
    void *arg, const char **ip, const char **netns, const char **err)
{
	json_t *p = json_object_get(c->pods, uid);
	const char *state = json_string_value(json_object_get(p, "state"));
	if (!p && adopt(c, uid))
		return ncni_sandbox(c, uid, ready, arg, ip, netns, err);
	if (state && strcmp(state, "ready") == 0) {
		*ip = json_string_value(json_object_get(p, "ip"));
		*netns = json_string_value(json_object_get(p, "netns"));
		return 1;
	}
	if (state && strcmp(state, "failed") == 0) {
		*err = json_string_value(json_object_get(p, "err"));
		json_object_set_new(p, "state", json_string("retry"));
		return -EIO;
	}
	if (state && strcmp(state, "pending") == 0)
		return 0;
	if (state && strcmp(state, "releasing") == 0) {
		*err = "the previous network of this pod is still being torn down";
		return -EAGAIN;
	}
	json_object_set_new(c->pods, uid, json_pack("{s:s}", "state", "pending"));
	queue(c, uid, true, ready, arg);
	return 0;
}

void
ncni_release(struct ncni *c, const char *uid)
{
	json_t *p = json_object_get(c->pods, uid);
	const char *state = json_string_value(json_object_get(p, "state"));
	if (state && strcmp(state, "pending") == 0) {
		json_object_set_new(p, "release", json_true());	/* after the ADD */
		return;
	}
	if (state && strcmp(state, "releasing") == 0)
		return;
	queue(c, uid, false, NULL, NULL);
}

/* Adds the uids named by the entries of dir (suffix stripped) to set. */
static void
names_in(const char *dir, const char *suffix, json_t *set)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp"))
			continue;
		char *name = xstrdup(e->d_name);
		if (*suffix && str_has_suffix(name, suffix))
			name[strlen(name) - strlen(suffix)] = '\0';
		json_object_set_new(set, name, json_true());
		free(name);
	}
	closedir(d);
}

int
ncni_gc(struct ncni *c, const json_t *live)
{
	json_t *found = json_object();
	const char *uid;
	json_t *v;
	int n = 0;
	names_in(c->netns_dir, "", found);
	names_in(c->results_dir, ".json", found);
	json_object_foreach(found, uid, v)
		if (!json_object_get(live, uid) && !json_object_get(c->pods, uid)) {
			log_info("cni", "pod %s is gone: releasing its network", uid);
			ncni_release(c, uid);
			n++;
		}
	json_decref(found);
	return n;
}
