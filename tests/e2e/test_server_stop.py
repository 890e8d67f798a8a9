"""The README's promise about stopping the server: pods (under their shims)
and Services (in `v6 proxy`) keep running and serving when `v6 server`
stops, and the next server adopts them. SIGTERM must end the server
promptly with status 0; clients counting every failure see none while it is
down or coming back; the restarted server keeps the same processes and pod
IPs (no duplicate container, no second proxy)."""
import pytest
import glob
import os
import signal
import time

from conftest import wait_for
from load import Load, json_version
import readme


@pytest.fixture
def server(examples_server):
    """examples/ are images run by runc: the server the README starts (as root)."""
    return examples_server

EXAMPLES = os.path.join(readme.ROOT, "examples")


def pods(server):
    _, lst = server.json("GET", "/api/v1/namespaces/demo/pods?labelSelector=app%3Dweb",
                         expect=200)
    return {p["metadata"]["name"]: p for p in lst["items"]}


def ctr_pids(server):
    """{container dir: pid} of every container the node started."""
    out = {}
    for d in glob.glob(os.path.join(server.data_dir, "node", "containers", "*", "*")):
        with open(os.path.join(d, "ctr.pid")) as f:
            out[d] = int(f.read().split()[0])
    return out


def proxy_pid(server):
    with open(os.path.join(server.data_dir, "proxy", "proxy.pid")) as f:
        return int(f.read().split()[0])


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigterm_stops_the_server_and_workloads_keep_serving_until_adopted(server):
    for f in ("00-namespace.yaml", "web.yaml"):
        server.v6("apply", "-f", os.path.join(EXAMPLES, f), check=True)
    server.v6("rollout", "status", "deployment/web", "-n", "demo", "--timeout", "120s",
              check=True, timeout=150)
    before = pods(server)
    assert len(before) == 3
    ips = {n: p["status"]["podIP"] for n, p in before.items()}
    _, svc = server.json("GET", "/api/v1/namespaces/demo/services/web", expect=200)
    procs, proxy = ctr_pids(server), proxy_pid(server)
    assert len(procs) == 3 and all(alive(p) for p in procs.values())

    through_svc = Load(svc["spec"]["clusterIP"], 80, clients=2, key=json_version)
    direct = Load(sorted(ips.values())[0], 8080, key=json_version)
    with through_svc, direct:
        through_svc.wait_requests(50)
        direct.wait_requests(20)

        t0 = time.monotonic()
        p, server.proc = server.proc, None
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        took = time.monotonic() - t0
        assert rc == 0, server.log()
        print("server stopped in %.2fs" % took)
        assert took < 5, "the server took %.1fs to stop" % took
        try:
            server.request("GET", "/readyz", timeout=1)
            raise AssertionError("the API still answers after the server exited")
        except OSError:
            pass

        # down: everything keeps serving
        through_svc.wait_requests(300)
        direct.wait_requests(100)
        assert all(alive(p) for p in procs.values()) and alive(proxy)

        offset = os.path.getsize(server.log_path)
        server.start()
        wait_for(lambda: open(server.log_path, errors="replace").read()[offset:].count(
            "adopted container") >= 3, 60, "the three containers adopted")
        through_svc.wait_requests(300)
        direct.wait_requests(100)
    print("requests: %d through the Service, %d direct" % (through_svc.ok, direct.ok))
    through_svc.assert_clean(min_ok=650)
    direct.assert_clean(min_ok=220)

    # the same processes, pods and addresses: nothing restarted, nothing doubled
    after = pods(server)
    assert {n: p["status"]["podIP"] for n, p in after.items()} == ips
    assert all(cs["restartCount"] == 0 for p in after.values()
               for cs in p["status"]["containerStatuses"])
    assert ctr_pids(server) == procs
    assert proxy_pid(server) == proxy and alive(proxy)
    assert server.v6("get", "deployment", "web", "-n", "demo", "-o",
                     "jsonpath={.status.readyReplicas}", check=True).stdout.strip() == "3"
