"""Zero downtime through the V6 proxy: a client that counts every request
sees no failure (non-2xx or connection error) while a 3-replica Deployment
of the test workload is rolled 20 times in a row, nor while the server is
killed with SIGKILL and restarted under load."""
import http.client
import json
import time

import load

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
    with load.version_load(ip, 80) as ld:
        for i in range(1, ROLLS + 1):
            deploy(server, "v%d" % i)
        ld.wait_requests(20)
    ld.assert_clean(min_ok=100)
    assert "v%d" % ROLLS in ld.by_key and len(ld.by_key) >= ROLLS // 2


def test_server_kill_9_under_load_fails_no_request(server):
    deploy(server, "v1")
    ip = service_address(server)
    with load.version_load(ip, 80) as ld:
        ld.wait_requests(20)
        server.kill()
        t_down = time.time()
        ld.wait_requests(20)  # the proxy serves while the server is away
        assert ld.window(t_down, time.time())[0] >= 20
        server.start()
        deploy(server, "v2")  # and the restarted server still rolls out
        ld.wait_requests(20)
    ld.assert_clean()
    assert ld.by_key.get("v2", 0) > 0
