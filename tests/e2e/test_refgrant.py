"""Gateway API ReferenceGrant end to end: an HTTPRoute whose backendRef names
a Service of another namespace is refused (ResolvedRefs False,
RefNotPermitted, and its requests fail) until a ReferenceGrant in the
Service's namespace lets HTTPRoutes of the route's namespace refer to it;
deleting the grant takes the permission back."""
import http.client
import json

from conftest import free_port, wait_for
from test_traffic import deploy

GW_ADDR = "127.3.0.2"
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/"
GRANT = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
         "metadata": {"name": "shop-to-web", "namespace": "default"},
         "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                            "namespace": "shop"}],
                  "to": [{"group": "", "kind": "Service", "name": "web"}]}}


def status_of(port):
    """The status of GET / through the Gateway, None when nothing answers."""
    c = http.client.HTTPConnection(GW_ADDR, port, timeout=5)
    try:
        c.request("GET", "/", headers={"Host": "shop.example"})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


def resolved(server):
    _, r = server.json("GET", ROUTES + "front", expect=200)
    for p in (r.get("status") or {}).get("parents") or []:
        for c in p["conditions"]:
            if c["type"] == "ResolvedRefs":
                return c["status"], c["reason"], c.get("message", "")
    return None


def test_cross_namespace_backend_routes_only_with_a_reference_grant(server):
    deploy(server)                  # Deployment + Service web in default
    port = free_port()
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
             "metadata": {"name": "edge", "namespace": "shop"},
             "spec": {"gatewayClassName": "v6", "addresses": [{"value": GW_ADDR}],
                      "listeners": [{"name": "http", "port": port, "protocol": "HTTP"}]}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "front", "namespace": "shop"},
             "spec": {"parentRefs": [{"name": "edge"}],
                      "rules": [{"backendRefs": [{"name": "web", "namespace": "default",
                                                  "port": 80}]}]}}]
    server.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs),
              check=True)
    wait_for(lambda: (resolved(server) or ("",))[0] == "False", 20, "the route's status")
    st, reason, msg = resolved(server)
    assert reason == "RefNotPermitted", (reason, msg)
    assert "ReferenceGrant" in msg and "default/web" in msg, msg
    wait_for(lambda: status_of(port) is not None, 20, "the Gateway listener")
    assert status_of(port) >= 500       # the refused backend's share fails

    server.v6("apply", "-f", "-", input=json.dumps(GRANT), check=True)
    wait_for(lambda: status_of(port) == 200, 20, "requests to pass once granted")
    wait_for(lambda: resolved(server)[:2] == ("True", "ResolvedRefs"), 20,
             "ResolvedRefs once granted")

    server.v6("delete", "referencegrant", "shop-to-web", "-n", "default", check=True)
    wait_for(lambda: (status_of(port) or 0) >= 500, 20, "the permission taken back")
    wait_for(lambda: resolved(server)[1] == "RefNotPermitted", 20, "refused again")
