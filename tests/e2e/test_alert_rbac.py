"""Who may see and silence alerts (issue 12): V6's alerts.v6.dev is joined to
Kubernetes' default view / edit / admin ClusterRoles by the aggregation
labels, as an add-on's roles are. A viewer reads alerts and silences, an
editor also creates and expires silences, a viewer creating one gets 403 with
Kubernetes' message, and a user bound to nothing reads nothing. Token
identities against Debian's Alertmanager."""
import json
import tempfile

import pytest

from am import Alertmanager
from conftest import free_port, wait_for, write

RBAC = "/apis/rbac.authorization.k8s.io/v1"
ALERTS = "/apis/alerts.v6.dev/v1alpha1"
TOKENS = """\
viewer-token,vera,uid-vera
editor-token,eddie,uid-eddie
admin-token,ada,uid-ada
nobody-token,nora,uid-nora
"""


def as_user(server, token, method, path, body=None):
    status, _, data = server.request(method, path, body,
                                      {"Authorization": "Bearer " + token})
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data


def bind(server, ns, name, role, user):
    kind, path = ("RoleBinding", "%s/namespaces/%s/rolebindings" % (RBAC, ns)) if ns \
        else ("ClusterRoleBinding", RBAC + "/clusterrolebindings")
    meta = {"name": name, "namespace": ns} if ns else {"name": name}
    server.json("POST", path, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                      "name": user}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role}}, expect=201)


@pytest.fixture
def alert_rbac(make_server, workdir):
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        aport = free_port()
        s = make_server("--token-auth-file", write(workdir, "tokens.csv", TOKENS),
                        "--alertmanager-url", "http://127.0.0.1:%d" % aport)
        am = Alertmanager(d, s.url + ALERTS + "/webhook", port=aport)
        try:
            wait_for(am.ready, 60, "alertmanager to be ready")
            yield s
        finally:
            am.stop()


def silence(comment):
    return {"matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": False}],
            "comment": comment, "duration": "1h"}


def test_viewer_reads_alerts_editor_silences_and_a_viewer_silencing_is_403(alert_rbac):
    s = alert_rbac
    # silences are cluster-scoped: a ClusterRoleBinding, as for any such resource
    bind(s, None, "vera-view", "view", "vera")
    bind(s, None, "eddie-edit", "edit", "eddie")
    bind(s, "default", "ada-admin", "admin", "ada")

    # the default roles carry alerts.v6.dev through their aggregation rules
    _, view = s.json("GET", RBAC + "/clusterroles/view", expect=200)
    assert any("alerts.v6.dev" in r.get("apiGroups", []) and "silences" in r["resources"]
               for r in view["rules"]), view["rules"]
    _, edit = s.json("GET", RBAC + "/clusterroles/edit", expect=200)
    assert any("alerts.v6.dev" in r.get("apiGroups", []) and "create" in r["verbs"]
               for r in edit["rules"]), edit["rules"]

    for path in ("/alerts", "/namespaces/default/alerts", "/silences"):
        st, body = as_user(s, "viewer-token", "GET", ALERTS + path)
        assert st == 200, (path, st, body)
    st, body = as_user(s, "viewer-token", "POST", ALERTS + "/silences", silence("vera"))
    assert st == 403, (st, body)
    assert body["message"] == (
        'silences.alerts.v6.dev is forbidden: User "vera" cannot create resource '
        '"silences" in API group "alerts.v6.dev" at the cluster scope'), body

    # an editor creates and expires silences; a viewer cannot expire one
    st, body = as_user(s, "editor-token", "POST", ALERTS + "/silences", silence("eddie"))
    assert st == 201, (st, body)
    sid = body["metadata"]["name"]
    st, body = as_user(s, "viewer-token", "GET", ALERTS + "/silences")
    assert sid in json.dumps(body), body
    st, body = as_user(s, "viewer-token", "DELETE", ALERTS + "/silences/" + sid)
    assert st == 403 and body["message"] == (
        'silences.alerts.v6.dev "%s" is forbidden: User "vera" cannot delete resource '
        '"silences" in API group "alerts.v6.dev" at the cluster scope' % sid), (st, body)
    st, body = as_user(s, "editor-token", "DELETE", ALERTS + "/silences/" + sid)
    assert st == 200, (st, body)

    # admin in a namespace (aggregated from edit) reads that namespace's alerts only
    assert as_user(s, "admin-token", "GET", ALERTS + "/namespaces/default/alerts")[0] == 200
    st, body = as_user(s, "admin-token", "GET", ALERTS + "/namespaces/other/alerts")
    assert st == 403, (st, body)
    # no binding, nothing
    st, body = as_user(s, "nobody-token", "GET", ALERTS + "/alerts")
    assert st == 403 and body["message"] == (
        'alerts.alerts.v6.dev is forbidden: User "nora" cannot list resource "alerts" '
        'in API group "alerts.v6.dev" at the cluster scope'), (st, body)
