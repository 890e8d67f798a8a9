"""Identities and RBAC (issue 15): bearer tokens from --token-auth-file over
the plain loopback listener (where a request without credentials stays the
unsecured admin), 401 for a bad token, Kubernetes' 403 messages, Roles and
bindings taking effect at once, the default roles, escalation prevention,
`kubectl auth whoami` / `auth can-i`, non-resource paths, the audit log's
user, and the failed-token rate limit."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import TIMEOUT_SCALE, wait_for, write

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
RBAC = "/apis/rbac.authorization.k8s.io/v1"

TOKENS = """\
alice-token,alice,uid-alice
bob-token,bob,uid-bob,"team-b,readers"
carol-token,carol,uid-carol
"""


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture
def rbac_server(make_server, workdir):
    path = write(workdir, "tokens.csv", TOKENS)
    return make_server("--token-auth-file", path)


def as_user(server, token, method, path, body=None):
    status, hdrs, data = server.request(method, path, body, bearer(token))
    if "json" not in hdrs.get("Content-Type", ""):
        return status, data
    return status, (json.loads(data) if data else None)


def kubectl(server, *args):
    """Stock kubectl. Against the plain listener it sends no bearer token
    (kubernetes/kubectl#744), so there it acts as a user by impersonation
    (--as), which the unsecured admin may do; over HTTPS it sends --token."""
    return subprocess.run(
        [KUBECTL, "--server", server.url] + list(args),
        capture_output=True, text=True, timeout=60 * TIMEOUT_SCALE,
        env=dict(os.environ, KUBECONFIG="/dev/null", HOME=server.data_dir))


def bind(server, ns, name, role_kind, role, users, subject="User"):
    """users (or ServiceAccounts of ns, subject="ServiceAccount") get role."""
    subjects = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u}
                if subject == "User" else {"kind": subject, "name": u} for u in users]
    kind, path = ("RoleBinding", "%s/namespaces/%s/rolebindings" % (RBAC, ns)) if ns \
        else ("ClusterRoleBinding", RBAC + "/clusterrolebindings")
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    server.json("POST", path, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                    "name": role}}, expect=201)


def test_tokens_identify_users_and_a_bad_token_is_401(rbac_server):
    s = rbac_server
    # No credentials on the plain loopback listener: the unsecured admin.
    s.json("GET", "/api/v1/namespaces/default/pods", expect=200)
    status, body = as_user(s, "wrong-token", "GET", "/api/v1/namespaces/default/pods")
    assert status == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    assert body["code"] == 401
    status, review = as_user(s, "bob-token", "POST",
                             "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"apiVersion": "authentication.k8s.io/v1",
                              "kind": "SelfSubjectReview"})
    assert status == 201, review
    info = review["status"]["userInfo"]
    assert info["username"] == "bob" and info["uid"] == "uid-bob"
    assert info["groups"] == ["team-b", "readers", "system:authenticated"]
    _, review = s.json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       {"kind": "SelfSubjectReview"}, expect=201)
    assert review["status"]["userInfo"]["username"] == "system:unsecured"
    assert "system:masters" in review["status"]["userInfo"]["groups"]


def test_kubectl_auth_whoami_and_impersonation(rbac_server):
    s = rbac_server
    p = kubectl(s, "auth", "whoami", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"]["userInfo"]["username"] == "system:unsecured"
    p = kubectl(s, "--as", "bob", "--as-group", "team-b", "auth", "whoami")
    assert p.returncode == 0, p.stderr
    assert "bob" in p.stdout and "team-b" in p.stdout, p.stdout
    assert "system:authenticated" in p.stdout
    # Impersonating needs the impersonate verb: bob may not act as alice.
    status, body = s.json("GET", "/api/v1/namespaces", headers={
        "Authorization": "Bearer bob-token", "Impersonate-User": "alice"})
    assert status == 403
    assert body["message"] == ('users "alice" is forbidden: User "bob" cannot impersonate '
                               'resource "users" in API group "" at the cluster scope')


def test_forbidden_until_a_role_binding_grants_it(rbac_server):
    s = rbac_server
    s.json("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}}, expect=201)
    status, body = as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/pods")
    assert status == 403
    assert body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == ('pods is forbidden: User "alice" cannot list resource '
                               '"pods" in API group "" in the namespace "default"')
    assert body["details"] == {"kind": "pods"}
    status, body = as_user(s, "alice-token", "GET", "/api/v1/nodes/x")
    assert status == 403
    assert body["message"] == ('nodes "x" is forbidden: User "alice" cannot get resource '
                               '"nodes" in API group "" at the cluster scope')
    status, body = as_user(s, "alice-token", "GET",
                           "/apis/apps/v1/namespaces/default/deployments/web/scale")
    assert body["message"] == (
        'deployments.apps "web" is forbidden: User "alice" cannot get resource '
        '"deployments/scale" in API group "apps" in the namespace "default"')

    s.json("POST", RBAC + "/namespaces/default/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                   "verbs": ["get", "list", "watch"]},
                  {"apiGroups": [""], "resources": ["configmaps"],
                   "resourceNames": ["app-config"], "verbs": ["get"]}]}, expect=201)
    bind(s, "default", "alice-reads-pods", "Role", "pod-reader", ["alice"])
    # In effect as soon as the binding's write was acknowledged.
    status, body = as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/pods")
    assert status == 200 and body["kind"] == "PodList"
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/other/pods")[0] == 403
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/secrets")[0] == 403
    assert as_user(s, "alice-token", "POST", "/api/v1/namespaces/default/pods",
                   {"metadata": {"name": "p"}})[0] == 403
    # resourceNames: that ConfigMap only.
    s.json("POST", "/api/v1/namespaces/default/configmaps",
           {"metadata": {"name": "app-config"}, "data": {"a": "1"}}, expect=201)
    s.json("POST", "/api/v1/namespaces/default/configmaps",
           {"metadata": {"name": "private"}, "data": {"a": "2"}}, expect=201)
    assert as_user(s, "alice-token", "GET",
                   "/api/v1/namespaces/default/configmaps/app-config")[0] == 200
    assert as_user(s, "alice-token", "GET",
                   "/api/v1/namespaces/default/configmaps/private")[0] == 403
    # Deleting the binding takes the permission away again.
    s.json("DELETE", RBAC + "/namespaces/default/rolebindings/alice-reads-pods",
           expect=200)
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/pods")[0] == 403


def test_default_view_and_edit_roles(rbac_server):
    s = rbac_server
    bind(s, "default", "alice-view", "ClusterRole", "view", ["alice"])
    bind(s, "default", "bob-edit", "ClusterRole", "edit", ["bob"])
    s.json("POST", "/api/v1/namespaces/default/secrets",
           {"metadata": {"name": "db"}, "stringData": {"pw": "x"}}, expect=201)
    assert as_user(s, "alice-token", "GET", "/apis/apps/v1/namespaces/default/deployments"
                   )[0] == 200
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/pods?watch=1"
                   "&timeoutSeconds=1")[0] == 200
    # get on pods/exec does not let one run commands in a pod (a GET of
    # pods/exec, the WebSocket form, needs create as well).
    s.json("POST", RBAC + "/namespaces/default/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "exec-get", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]},
        expect=201)
    bind(s, "default", "alice-exec-get", "Role", "exec-get", ["alice"])
    status, body = as_user(s, "alice-token", "GET",
                           "/api/v1/namespaces/default/pods/p/exec?command=id")
    assert status == 403
    assert body["message"] == ('pods "p" is forbidden: User "alice" cannot create resource '
                               '"pods/exec" in API group "" in the namespace "default"')
    # view reads no Secrets and writes nothing.
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/secrets/db")[0] == 403
    assert as_user(s, "alice-token", "POST", "/api/v1/namespaces/default/configmaps",
                   {"metadata": {"name": "c1"}})[0] == 403
    # edit does both, but not RBAC.
    assert as_user(s, "bob-token", "GET", "/api/v1/namespaces/default/secrets/db")[0] == 200
    assert as_user(s, "bob-token", "POST", "/api/v1/namespaces/default/configmaps",
                   {"metadata": {"name": "c1"}})[0] == 201
    assert as_user(s, "bob-token", "GET", RBAC + "/namespaces/default/roles")[0] == 403


def test_kubectl_auth_can_i_and_aggregation(rbac_server):
    s = rbac_server
    bind(s, "default", "alice-view", "ClusterRole", "view", ["alice"])

    def can_i(*args):
        p = kubectl(s, "--as", "alice", "auth", "can-i", *args)
        assert p.returncode in (0, 1), p.stderr
        return p.stdout.strip(), p.returncode

    assert can_i("list", "pods", "-n", "default") == ("yes", 0)
    assert can_i("get", "pods", "--subresource", "log", "-n", "default") == ("yes", 0)
    assert can_i("create", "pods", "-n", "default")[0] == "no"
    assert can_i("list", "pods", "-n", "kube-system")[0] == "no"
    assert can_i("get", "/healthz") == ("yes", 0)
    # --list: SelfSubjectRulesReview, as kubectl prints it.
    p = kubectl(s, "--as", "alice", "auth", "can-i", "--list", "-n", "default")
    assert p.returncode == 0, p.stderr
    rows = {tuple(l.split()[:1]) for l in p.stdout.splitlines()}
    assert ("pods",) in rows and ("deployments.apps",) in rows, p.stdout
    assert ("secrets",) not in rows, p.stdout
    assert "/healthz" in p.stdout
    assert can_i("get", "/metrics")[0] == "no"
    assert can_i("list", "secrets", "-n", "default")[0] == "no"
    # A ClusterRole labelled aggregate-to-view joins view (and so edit and admin).
    s.json("POST", RBAC + "/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "secrets-view",
                     "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"],
                   "verbs": ["get", "list", "watch"]}]}, expect=201)
    assert can_i("list", "secrets", "-n", "default") == ("yes", 0)
    status, _, _ = s.request("GET", "/api/v1/namespaces/default/secrets",
                             headers={"Impersonate-User": "alice"})
    assert status == 200
    # The controller writes the union into the aggregated roles (kubectl describe).
    def view_rules():
        _, view = s.json("GET", RBAC + "/clusterroles/view", expect=200)
        return view["rules"]
    wait_for(lambda: {"apiGroups": [""], "resources": ["secrets"],
                      "verbs": ["get", "list", "watch"]} in view_rules(), 20,
             "view's aggregated rules")
    _, admin = s.json("GET", RBAC + "/clusterroles/admin", expect=200)
    assert any("rolebindings" in r.get("resources", []) for r in admin["rules"])
    assert any("pods" in r.get("resources", []) for r in admin["rules"])
    # The admin's view of someone else: SubjectAccessReview.
    _, sar = s.json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {
            "namespace": "default", "verb": "delete", "resource": "pods"}}}, expect=201)
    assert sar["status"]["allowed"] is False
    # ... which alice herself may not ask.
    status, body = as_user(s, "alice-token", "POST",
                           "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                           {"kind": "SubjectAccessReview", "spec": {}})
    assert status == 403


def test_escalation_is_prevented(rbac_server):
    s = rbac_server
    s.json("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}}, expect=201)
    bind(s, "team", "carol-admin", "ClusterRole", "admin", ["carol"])

    def role(name, rules):
        return as_user(s, "carol-token", "POST", RBAC + "/namespaces/team/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": "team"}, "rules": rules})

    # A Role with permissions carol holds: fine.
    status, body = role("reader", [{"apiGroups": [""], "resources": ["pods"],
                                    "verbs": ["get", "list"]}])
    assert status == 201, body
    # One granting more than she holds (every verb on every resource): refused.
    status, body = role("everything", [{"apiGroups": ["*"], "resources": ["*"],
                                        "verbs": ["*"]}])
    assert status == 403, body
    assert "is attempting to grant RBAC permissions not currently held" in body["message"]
    assert body["message"].startswith('roles.rbac.authorization.k8s.io is forbidden: '
                                      'user "carol"')
    # Patches (kubectl apply) are judged by the role they would leave.
    def patch(rules):
        status, _, data = s.request(
            "PATCH", RBAC + "/namespaces/team/roles/reader", {"rules": rules},
            headers=dict(bearer("carol-token"),
                         **{"Content-Type": "application/merge-patch+json"}))
        return status, json.loads(data)
    status, body = patch([{"apiGroups": [""], "resources": ["pods", "services"],
                           "verbs": ["get", "list", "watch"]}])
    assert status == 200, body
    status, body = patch([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}])
    assert status == 403 and "not currently held" in body["message"], body

    def binding(name, kind, ref):
        return as_user(s, "carol-token", "POST", RBAC + "/namespaces/team/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": "team"},
            "subjects": [{"kind": "User", "name": "alice"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                        "name": ref}})

    assert binding("alice-view", "ClusterRole", "view")[0] == 201
    status, body = binding("alice-root", "ClusterRole", "cluster-admin")
    assert status == 403, body
    assert "not currently held" in body["message"]
    # Binding alice to view in team worked: she reads pods there, not elsewhere.
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/team/pods")[0] == 200
    assert as_user(s, "alice-token", "GET", "/api/v1/namespaces/default/pods")[0] == 403
    # With the bind verb on cluster-admin she could bind it (Kubernetes' rule).
    s.json("POST", RBAC + "/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "bind-cluster-admin"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                   "resourceNames": ["cluster-admin"], "verbs": ["bind"]}]}, expect=201)
    bind(s, "team", "carol-may-bind", "ClusterRole", "bind-cluster-admin", ["carol"])
    assert binding("alice-root", "ClusterRole", "cluster-admin")[0] == 201


def test_non_resource_paths_are_authorized(rbac_server):
    s = rbac_server
    for path in ("/healthz", "/readyz", "/livez", "/version", "/api", "/apis"):
        assert as_user(s, "alice-token", "GET", path)[0] == 200, path
    status, body = as_user(s, "alice-token", "GET", "/metrics")
    assert status == 403
    assert body["message"] == 'forbidden: User "alice" cannot get path "/metrics"'
    assert as_user(s, "alice-token", "GET", "/v6/sd/prometheus")[0] == 403
    s.json("POST", RBAC + "/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "scraper"},
        "rules": [{"nonResourceURLs": ["/metrics", "/v6/sd/*"], "verbs": ["get"]}]},
        expect=201)
    bind(s, None, "alice-scrapes", "ClusterRole", "scraper", ["alice"])
    assert as_user(s, "alice-token", "GET", "/metrics")[0] == 200
    assert as_user(s, "alice-token", "GET", "/v6/sd/prometheus")[0] == 200
    # The default system:monitoring role, for a Prometheus' ServiceAccount.
    assert as_user(s, "bob-token", "GET", "/metrics")[0] == 403
    bind(s, None, "bob-monitors", "ClusterRole", "system:monitoring", ["bob"])
    assert as_user(s, "bob-token", "GET", "/metrics")[0] == 200
    assert as_user(s, "bob-token", "GET", "/v6/sd/prometheus")[0] == 200
    assert as_user(s, "bob-token", "GET", "/api/v1/namespaces/default/pods")[0] == 403


def test_rbac_objects_are_validated(rbac_server):
    s = rbac_server
    status, body = s.json("POST", RBAC + "/namespaces/default/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "bad", "namespace": "default"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
                  {"resources": ["pods"], "verbs": []}]})
    assert status == 422, body
    assert "namespaced rules cannot apply to non-resource URLs" in body["message"]
    assert "rules[1].apiGroups" in body["message"]
    bind(s, "default", "b", "ClusterRole", "view", ["alice"])
    _, b = s.json("GET", RBAC + "/namespaces/default/rolebindings/b", expect=200)
    b["roleRef"]["name"] = "edit"
    status, body = s.json("PUT", RBAC + "/namespaces/default/rolebindings/b", b)
    assert status == 422 and "cannot change roleRef" in body["message"]
    _, roles = s.json("GET", RBAC + "/clusterroles", expect=200)
    names = {r["metadata"]["name"] for r in roles["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery",
            "system:public-info-viewer"} <= names


def test_audit_log_names_the_user(make_server, workdir):
    tokens = write(workdir, "tokens.csv", TOKENS)
    log = os.path.join(workdir, "audit.log")
    s = make_server("--token-auth-file", tokens, "--audit-log-path", log)
    as_user(s, "bob-token", "GET", "/api/v1/namespaces/default/pods")
    s.json("GET", "/api/v1/namespaces/default/configmaps", expect=200)

    def events():
        with open(log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def done(uri):
        return [e for e in events() if e["stage"] == "ResponseComplete"
                and e["requestURI"] == uri]
    wait_for(lambda: done("/api/v1/namespaces/default/configmaps"), 10, "audit events")
    bob = done("/api/v1/namespaces/default/pods")[0]
    assert bob["user"] == {"username": "bob",
                           "groups": ["team-b", "readers", "system:authenticated"]}
    assert bob["responseStatus"]["code"] == 403
    admin = done("/api/v1/namespaces/default/configmaps")[0]
    assert admin["user"]["username"] == "system:unsecured"


def test_token_brute_force_is_rate_limited_and_logged(rbac_server):
    s = rbac_server
    codes = [as_user(s, "guess-%d" % i, "GET", "/api/v1/namespaces")[0] for i in range(25)]
    assert codes[:20] == [401] * 20
    assert codes[20:] == [429] * 5
    # Even a right token from that address waits out the window ...
    status, _, _ = s.request("GET", "/api/v1/namespaces", headers=bearer("alice-token"))
    assert status == 429
    # ... while requests without a token (and other addresses) go on.
    s.json("GET", "/api/v1/namespaces", expect=200)
    wait_for(lambda: "invalid bearer tokens from 127.0.0.1" in s.log(), 10, "the log line")
    wait_for(lambda: as_user(s, "alice-token", "POST",
                             "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"kind": "SelfSubjectReview"})[0] == 201,
             30, "the window to end")


def wait_default_sa(s, ns):
    """Every namespace gets its `default` ServiceAccount (the controller)."""
    wait_for(lambda: s.request("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns
                               )[0] == 200, 20, "the default ServiceAccount of " + ns)


def token_for(s, ns, sa, **spec):
    _, tr = s.json("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, sa), {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        expect=201)
    assert tr["status"]["expirationTimestamp"]
    return tr["status"]["token"]


def whoami(s, token):
    status, review = as_user(s, token, "POST",
                             "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"kind": "SelfSubjectReview"})
    return status, (review["status"]["userInfo"] if status == 201 else None)


def test_service_account_tokens_and_namespaces(rbac_server):
    s = rbac_server
    for ns in ("team", "other"):
        s.json("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, expect=201)
    # Every namespace gets its `default` ServiceAccount.
    wait_default_sa(s, "team")
    s.json("POST", "/api/v1/namespaces/other/secrets",
           {"metadata": {"name": "theirs"}, "stringData": {"k": "v"}}, expect=201)
    s.json("POST", "/api/v1/namespaces/team/secrets",
           {"metadata": {"name": "ours"}, "stringData": {"k": "v"}}, expect=201)
    token = token_for(s, "team", "default")
    assert token.count(".") == 2  # a JWT
    status, info = whoami(s, token)
    assert status == 201
    assert info["username"] == "system:serviceaccount:team:default"
    assert info["groups"] == ["system:serviceaccounts", "system:serviceaccounts:team",
                              "system:authenticated"]
    # A ServiceAccount has no rights until bound (Kubernetes' default).
    assert as_user(s, token, "GET", "/api/v1/namespaces/team/secrets/ours")[0] == 403
    s.json("POST", RBAC + "/namespaces/team/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "secret-reader", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"],
                   "verbs": ["get", "list"]}]}, expect=201)
    bind(s, "team", "sa-reads", "Role", "secret-reader", ["default"], "ServiceAccount")
    assert as_user(s, token, "GET", "/api/v1/namespaces/team/secrets/ours")[0] == 200
    # ... and never another namespace's Secrets.
    status, body = as_user(s, token, "GET", "/api/v1/namespaces/other/secrets/theirs")
    assert status == 403
    assert body["message"] == (
        'secrets "theirs" is forbidden: User "system:serviceaccount:team:default" cannot '
        'get resource "secrets" in API group "" in the namespace "other"')
    assert as_user(s, token, "GET", "/api/v1/secrets")[0] == 403
    # Tokens are audience-bound: one minted for another audience is not the API's.
    vault = token_for(s, "team", "default", audiences=["vault"])
    assert whoami(s, vault)[0] == 401
    _, review = s.json("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": vault, "audiences": ["vault"]}}, expect=201)
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == "system:serviceaccount:team:default"
    _, review = s.json("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        "kind": "TokenReview", "spec": {"token": token[:-4] + "AAAA"}}, expect=201)
    assert review["status"]["authenticated"] is False
    # Tokens die with their ServiceAccount.
    s.json("DELETE", "/api/v1/namespaces/team/serviceaccounts/default", expect=200)
    assert whoami(s, token)[0] == 401


def test_pod_bound_token_dies_with_the_pod(rbac_server):
    s = rbac_server
    wait_default_sa(s, "default")
    _, pod = s.json("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder"},
        "spec": {"containers": [{"name": "c", "image": "sh",
                                 "command": ["sh", "-c", "sleep 1000"]}],
                 "terminationGracePeriodSeconds": 0}}, expect=201)
    token = token_for(s, "default", "default", boundObjectRef={
        "apiVersion": "v1", "kind": "Pod", "name": "holder",
        "uid": pod["metadata"]["uid"]})
    assert whoami(s, token)[0] == 201
    assert s.request("DELETE", "/api/v1/namespaces/default/pods/holder")[0] in (200, 202)
    wait_for(lambda: s.request("GET", "/api/v1/namespaces/default/pods/holder")[0] == 404,
             30, "the pod to be gone")
    assert whoami(s, token)[0] == 401
    assert "the Pod the token is bound to no longer exists" in s.log()


SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_pod_uses_its_projected_token_and_cannot_read_other_namespaces(rbac_server):
    s = rbac_server
    for ns in ("team", "other"):
        s.json("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, expect=201)
    s.json("POST", "/api/v1/namespaces/other/secrets",
           {"metadata": {"name": "theirs"}, "stringData": {"k": "v"}}, expect=201)
    s.json("POST", "/api/v1/namespaces/team/secrets",
           {"metadata": {"name": "ours"}, "stringData": {"k": "v"}}, expect=201)
    bind(s, "team", "sa-edit", "ClusterRole", "edit", ["default"], "ServiceAccount")
    wait_default_sa(s, "team")
    # The pod reads its token and namespace where Kubernetes puts them and
    # asks the API for its own namespace's Secret and another's.
    script = (
        'T=$(cat %(d)s/token); NS=$(cat %(d)s/namespace); '
        'get() { curl -s -o /dev/null -w %%{http_code} -H "Authorization: Bearer $T" '
        '"%(url)s/api/v1/namespaces/$1/secrets/$2"; }; '
        'echo "ns=$NS own=$(get $NS ours) other=$(get other theirs)"; sleep 1000'
        % {"d": SA_DIR, "url": s.url})
    s.json("POST", "/api/v1/namespaces/team/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "asker"},
        "spec": {"containers": [{"name": "c", "image": "sh",
                                 "command": ["sh", "-c", script]}],
                 "terminationGracePeriodSeconds": 0}}, expect=201)

    def line():
        status, _, data = s.request("GET", "/api/v1/namespaces/team/pods/asker/log")
        return status == 200 and "ns=" in data.decode() and data.decode()
    out = wait_for(line, 60, "the pod's answer")
    assert "ns=team own=200 other=403" in out, out
    # A pod that opts out gets no token.
    s.json("POST", "/api/v1/namespaces/team/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "none"},
        "spec": {"automountServiceAccountToken": False,
                 "containers": [{"name": "c", "image": "sh", "command": [
                     "sh", "-c", "ls %s/token >/dev/null 2>&1 && echo has-token || "
                     "echo no-token; sleep 1000" % SA_DIR]}],
                 "terminationGracePeriodSeconds": 0}}, expect=201)

    def opted_out():
        status, _, data = s.request("GET", "/api/v1/namespaces/team/pods/none/log")
        return status == 200 and "token" in data.decode() and data.decode()
    assert "no-token" in wait_for(opted_out, 60, "the second pod's answer")


def test_watch_storm_from_one_identity_is_capped(rbac_server):
    import http.client
    s = rbac_server
    bind(s, "default", "bob-view", "ClusterRole", "view", ["bob"])
    bind(s, "default", "alice-view", "ClusterRole", "view", ["alice"])
    path = "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=60"
    conns = []

    def open_watch(token):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("GET", path, headers=bearer(token))
        r = c.getresponse()
        conns.append(c)
        return r.status
    try:
        statuses = [open_watch("bob-token") for _ in range(128)]
        assert statuses == [200] * 128
        assert open_watch("bob-token") == 429
        # Everyone else is served as before: another user, the admin.
        assert open_watch("alice-token") == 200
        s.json("GET", "/api/v1/namespaces/default/configmaps", expect=200)
        wait_for(lambda: "holds 128 watches" in s.log(), 10, "the log line")
        # One of bob's watches ends: he may open one again.
        conns[0].close()
        wait_for(lambda: open_watch("bob-token") == 200, 10, "a freed watch slot")
    finally:
        for c in conns:
            c.close()


def client_cert(server, workdir, subject):
    """A client certificate signed by the server's own CA (as an admin would
    issue one): subject "/O=dev/O=ops/CN=dave"."""
    key, csr, crt = (os.path.join(workdir, "client." + x) for x in ("key", "csr", "crt"))
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", subject],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr,
                    "-CA", os.path.join(server.pki, "ca.crt"),
                    "-CAkey", os.path.join(server.pki, "ca.key"), "-CAcreateserial",
                    "-CAserial", os.path.join(workdir, "ca.srl"), "-out", crt, "-days", "1"],
                   check=True, capture_output=True)
    return crt, key


def https(server, method, path, body=None, cert=None, token=None):
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(server.pki, "ca.crt"))
    if cert:
        ctx.load_cert_chain(*cert)
    c = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=ctx)
    try:
        hdrs = {"Content-Type": "application/json"}
        if token:
            hdrs.update(bearer(token))
        c.request(method, path, json.dumps(body) if body is not None else None, hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data.startswith(b"{") else data)
    finally:
        c.close()


def test_x509_tokens_and_anonymous_over_https(make_server, workdir):
    tokens = write(workdir, "tokens.csv", TOKENS)
    s = make_server("--token-auth-file", tokens, tls=True)
    cert = client_cert(s, workdir, "/O=dev/O=ops/CN=dave")
    review = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"}
    # A client certificate: CN is the user, each O a group.
    status, r = https(s, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      review, cert=cert)
    assert status == 201, r
    assert r["status"]["userInfo"] == {"username": "dave",
                                       "groups": ["dev", "ops", "system:authenticated"]}
    status, r = https(s, "GET", "/api/v1/namespaces/default/pods", cert=cert)
    assert status == 403 and r["message"] == (
        'pods is forbidden: User "dave" cannot list resource "pods" in API group "" in '
        'the namespace "default"')
    bind(s, "default", "ops-view", "ClusterRole", "view", ["ops"], "Group")
    assert https(s, "GET", "/api/v1/namespaces/default/pods", cert=cert)[0] == 200
    # No credentials over TLS: system:anonymous, who sees health and version only.
    assert https(s, "GET", "/healthz")[0] == 200
    assert https(s, "GET", "/version")[0] == 200
    status, r = https(s, "GET", "/api/v1/namespaces/default/pods")
    assert status == 403 and 'User "system:anonymous"' in r["message"]
    status, r = https(s, "GET", "/api")
    assert status == 403 and r["message"] == (
        'forbidden: User "system:anonymous" cannot get path "/api"')
    # A bad token is 401 over TLS too; a good one is its user.
    assert https(s, "GET", "/api", token="nope")[0] == 401
    assert https(s, "GET", "/api", token="alice-token")[0] == 200
    # Stock kubectl sends its token over HTTPS: whoami and can-i as alice.
    kc = ["--certificate-authority", os.path.join(s.pki, "ca.crt"), "--token", "alice-token"]
    p = kubectl(s, *kc, "auth", "whoami", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"]["userInfo"]["username"] == "alice"
    p = kubectl(s, *kc, "auth", "can-i", "list", "pods", "-n", "default")
    assert (p.stdout.strip(), p.returncode) == ("no", 1)
    p = kubectl(s, *kc, "auth", "can-i", "get", "/healthz")
    assert (p.stdout.strip(), p.returncode) == ("yes", 0)


def test_pod_gets_ca_crt_and_reaches_https_with_its_token(make_server):
    s = make_server(tls=True)
    wait_default_sa(s, "default")
    bind(s, "default", "sa-view", "ClusterRole", "view", ["default"], "ServiceAccount")
    script = (
        'curl -s -o /dev/null -w "code=%%{http_code}\\n" --cacert %(d)s/ca.crt '
        '-H "Authorization: Bearer $(cat %(d)s/token)" '
        '%(url)s/api/v1/namespaces/$(cat %(d)s/namespace)/pods; sleep 1000'
        % {"d": SA_DIR, "url": s.url})
    s.json("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "caller"},
        "spec": {"containers": [{"name": "c", "image": "sh",
                                 "command": ["sh", "-c", script]}],
                 "terminationGracePeriodSeconds": 0}}, expect=201)

    def answer():
        status, _, data = s.request("GET", "/api/v1/namespaces/default/pods/caller/log")
        return status == 200 and "code=" in data.decode() and data.decode()
    # The CA verified the server (curl would print code=000 otherwise).
    assert "code=200" in wait_for(answer, 60, "the pod's answer")
