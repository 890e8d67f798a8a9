"""Zero downtime through the V6 proxy: a client that counts every request
sees no failure (non-2xx or connection error) while a 3-replica Deployment
of the test workload is rolled 20 times in a row, nor while the server is
killed with SIGKILL and restarted under load."""
import http.client
import json
import threading
import time

ROLLS = 20


def manifest(version, replicas=3):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "web", "image": "v6/testapp",
                        "command": ["v6", "testapp", "--quiet",
                                    "--version-string", version],
                        "env": [{"name": "POD_IP", "valueFrom": {
                            "fieldRef": {"fieldPath": "status.podIP"}}}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                           "periodSeconds": 1},
                    }]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


class Load:
    """Keep-alive clients hammering the Service address, counting everything."""

    def __init__(self, host, port, clients=4):
        self.host, self.port = host, port
        self.ok = 0
        self.failures = []
        self.versions = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]

    def run(self):
        conn = None
        deadline = time.time() + 600
        while not self.stop.is_set() and time.time() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read()
                with self.lock:
                    if 200 <= r.status < 300:
                        self.ok += 1
                        v = json.loads(body)["version"]
                        self.versions[v] = self.versions.get(v, 0) + 1
                    else:
                        self.failures.append("HTTP %d %s" % (r.status, body[:100]))
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append("%s: %s" % (type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def deploy(server, version):
    p = server.v6("apply", "-f", "-", input=json.dumps(manifest(version)), check=True)
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    print("deploy", version, p.stdout)


def service_address(server):
    server.v6("apply", "-f", "-", input=json.dumps(SERVICE), check=True)
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    deadline = time.time() + 10  # the proxy gets the Service within 100 ms normally
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=1)
            c.request("GET", "/")
            if c.getresponse().status == 200:
                return ip
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("Service %s never answered" % ip)


def test_twenty_rolling_updates_under_load_fail_no_request(server):
    deploy(server, "v0")
    ip = service_address(server)
    with Load(ip, 80) as load:
        for i in range(1, ROLLS + 1):
            deploy(server, "v%d" % i)
        time.sleep(0.5)
    assert not load.failures, "%d failed of %d: %s" % (
        len(load.failures), load.ok + len(load.failures), load.failures[:5])
    assert load.ok > 100
    assert "v%d" % ROLLS in load.versions and len(load.versions) >= ROLLS // 2


def test_server_kill_9_under_load_fails_no_request(server):
    deploy(server, "v1")
    ip = service_address(server)
    with Load(ip, 80) as load:
        time.sleep(0.5)
        server.kill()
        time.sleep(1.0)
        server.start()
        deploy(server, "v2")  # and the restarted server still rolls out
        time.sleep(0.5)
    assert not load.failures, "%d failed of %d: %s" % (
        len(load.failures), load.ok + len(load.failures), load.failures[:5])
    assert load.versions.get("v2", 0) > 0
