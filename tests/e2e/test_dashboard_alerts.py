"""The dashboard's alerts and images views, and the dashboard over V6's own
HTTPS, in headless Chromium (webdriver.py). Alerts come from Debian's real
Alertmanager (am.py), which receives them on its v2 API exactly as
Prometheus sends them; V6's alerts.v6.dev API reads them from there and
links each to the changes V6 made (its probable cause). Silences are made
and expired with the buttons and checked through the API. Images are the
node's store after `v6 image import` and a runc pod from the image.
Screenshots go to tests/e2e/artifacts/dashboard/ with the other views'."""
import datetime
import json
import os
import tempfile
import urllib.request

from am import Alertmanager
from conftest import free_port, wait_for, write
from test_dashboard import goto, open_ui, shot
from test_rollout import apply
from webdriver import Browser, WebDriverError

ALERTS = "/apis/alerts.v6.dev/v1alpha1"
IMAGES = "/apis/images.v6.dev/v1alpha1/images"
TESTAPP = "localhost:5000/v6/testapp:0.1"


def deployment(name, image="v6/testapp", runtime=None):
    spec = {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "web", "image": image,
        "command": ["v6", "testapp", "--quiet"] if runtime != "runc" else None,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}]}]}
    if runtime:
        spec["runtimeClassName"] = runtime
    spec["containers"][0] = {k: v for k, v in spec["containers"][0].items() if v is not None}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def fire(am, labels, summary):
    """Sends an alert to Alertmanager as Prometheus does (POST /api/v2/alerts)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = json.dumps([{"labels": labels, "annotations": {"summary": summary},
                        "startsAt": now}]).encode()
    req = urllib.request.Request(am.url + "/api/v2/alerts", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def bind(server, user, role):
    server.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "%s-%s" % (user, role)},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role}}, expect=201)


def reader_role(server):
    """Read-only on V6's alerts and images groups (not in Kubernetes' view)."""
    server.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "v6-reader"},
        "rules": [{"apiGroups": ["alerts.v6.dev"], "resources": ["alerts", "silences"],
                   "verbs": ["get", "list"]},
                  {"apiGroups": ["images.v6.dev"], "resources": ["images"],
                   "verbs": ["get", "list"]}]}, expect=201)


def cells(b, table, contains):
    return b.wait("var r = Array.from(document.querySelectorAll('table[data-t=%s] tbody tr'))"
                  ".find(x => x.textContent.indexOf(arguments[0]) >= 0);"
                  "return r && Array.from(r.cells).map(c => c.textContent.trim())" % table,
                  "a row of %s with %s" % (table, contains), 30, contains)


def silences(server):
    _, l = server.json("GET", ALERTS + "/silences", expect=200)
    return l["items"]


def test_alerts_with_their_cause_silenced_and_expired_from_the_dashboard(make_server, workdir):
    tokens = write(workdir, "tokens.csv", "viewer-token,viv,uid-viv\n")
    aport = free_port()
    server = make_server("--alertmanager-url", "http://127.0.0.1:%d" % aport,
                         "--token-auth-file", tokens)
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        am = Alertmanager(d, server.url + ALERTS + "/webhook", port=aport)
        try:
            wait_for(am.ready, 60, "alertmanager to be ready")
            run_alerts(server, am)
        finally:
            am.stop()


def run_alerts(server, am):
    reader_role(server)
    bind(server, "viv", "view")
    bind(server, "viv", "v6-reader")
    apply(server, deployment("web"))
    wait_for(lambda: server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web")[1]
             .get("status", {}).get("readyReplicas") == 1, 60, "web ready", interval=0.2)
    with Browser() as b:
        open_ui(b, server, "#/alerts")
        b.wait("return document.querySelector('[data-t=firing-count]')", "the alerts view")
        assert b.text("[data-t=firing-count]") == "0"
        fire(am, {"alertname": "WebDown", "severity": "critical", "namespace": "default",
                  "deployment": "web"}, "web answers 503")
        # Live: the alert appears without a reload, with its labels, since
        # when, and the change V6 made to its deployment as probable cause.
        row = cells(b, "alerts", "WebDown")
        assert row[:5] == ["WebDown", "critical", "default", "deployment/web", "firing"], row
        assert row[5].endswith("s"), row                       # "3s": relative time
        assert "alertname=WebDown" in row[6] and "deployment=web" in row[6], row
        row = b.wait("var r = document.querySelector('table[data-t=alerts] tbody tr');"
                     "return r && r.cells[7].textContent.trim() && "
                     "Array.from(r.cells).map(c => c.textContent.trim())",
                     "the probable cause in the row", 30)
        assert "deployment/web" in row[7] or "replicaset/web" in row[7], row
        shot(b, "alerts")
        # Search by label, kept in the URL.
        b.type("#q", "severity=info")
        b.wait("return !document.querySelector('table[data-t=alerts] tbody tr') && "
               "location.hash.indexOf('q=severity%3Dinfo') > 0", "no info alerts")
        b.js("document.getElementById('q').value = ''")
        b.type("#q", "severity=critical")
        cells(b, "alerts", "WebDown")
        b.js("document.getElementById('q').value = ''; document.activeElement.blur()")

        # The overview lists it among firing alerts.
        goto(b, "#/overview")
        row = cells(b, "overview-alerts", "WebDown")
        assert row[:5] == ["WebDown", "critical", "default", "deployment/web", "firing"], row
        shot(b, "overview-alerts")

        # Silence it from its row: the form is filled with its matchers.
        goto(b, "#/alerts")
        b.wait("var x = document.querySelector('button[data-action=prefill]');"
               "return x && !x.disabled", "the Silence button")
        b.click("button[data-action=prefill]")
        b.wait("return document.activeElement.id == 'sf-comment'", "the comment focused")
        assert b.js("return document.getElementById('sf-matchers').value") == \
            "alertname=WebDown namespace=default deployment=web"
        b.keys("rollback in progress\n")
        sil = wait_for(lambda: [x for x in silences(server) if x["state"] == "active"], 30,
                       "the silence in the API")[0]
        assert sil["comment"] == "rollback in progress", sil
        assert sil["createdBy"] == "system:unsecured", sil
        assert sorted((m["name"], m["value"], m["isEqual"]) for m in sil["matchers"]) == [
            ("alertname", "WebDown", True), ("deployment", "web", True),
            ("namespace", "default", True)], sil
        # The alert moves to "silenced"; the silence is listed.
        row = cells(b, "quiet-alerts", "WebDown")
        assert row[4] == "silenced", row
        srow = cells(b, "silences", sil["metadata"]["name"][:8])
        assert "alertname=WebDown" in srow[1] and srow[2] == "active", srow
        assert b.text("[data-t=firing-count]") == "0"
        # A bad matcher is refused where it was typed.
        b.type("#sf-matchers", "not a matcher")
        b.type("#sf-comment", "x\n")
        b.wait_text("[data-err=silence]", lambda t: t.startswith("silence: matchers:"),
                    "the error next to the form")

        # The alert's own view (a shareable URL), by keys from the
        # overview: g l (alerts), j (its row), Enter.
        goto(b, "#/overview")
        b.wait("return document.querySelector('table[data-t=overview-alerts]') || "
               "document.querySelector('[data-t=overview-firing]')", "the overview")
        b.js("document.activeElement.blur()")
        b.keys("gl")
        b.wait("return location.hash.indexOf('#/alerts') == 0 && "
               "document.querySelector('table[data-t=quiet-alerts] tbody tr')", "alerts by keys")
        b.keys("j")
        b.keys("\ue007")
        b.wait("return location.hash.indexOf('#/alert/default/') == 0", "the alert opened by keys")
        causes = b.wait("var r = document.querySelectorAll('table[data-t=causes] tbody tr');"
                        "return r.length && Array.from(r).map(x => x.cells[1].textContent)",
                        "the probable causes")
        assert any(c.startswith(("deployment/web", "replicaset/web")) for c in causes), causes
        assert "severity=critical" in b.text("[data-t=labels]")
        b.wait("var x = document.querySelector('table[data-t=silences] button[data-action=expire]');"
               "return x && !x.disabled", "Expire on the alert's silence")
        shot(b, "alert")
        # On a phone, in the dark theme, it still reads (no sideways scroll).
        b.resize(390, 844)
        b.keys("t")
        assert b.js("return document.documentElement.dataset.theme") == "dark"
        b.wait("return document.documentElement.scrollWidth <= window.innerWidth + 1",
               "one column on a phone")
        shot(b, "alert-phone-dark")
        b.keys("t")
        b.resize(1280, 720)
        b.click("table[data-t=silences] button[data-action=expire]")
        wait_for(lambda: [x for x in silences(server) if x["state"] == "expired"], 30,
                 "the silence expired in the API")
        b.wait("return document.querySelector('h1 .b-firing')", "firing again", 30)

        # A viewer reads alerts and images but may change neither.
        b.click("#signin")
        b.type("#token", "viewer-token\n")
        b.wait_text("#who", lambda t: t == "viv", "the viewer signed in")
        goto(b, "#/alerts")
        cells(b, "alerts", "WebDown")
        b.wait("var x = document.querySelector('button[data-action=prefill]');"
               "return x && x.disabled && x.title == 'your identity may not do this' && "
               "document.getElementById('sf-create').disabled", "silence disabled for a viewer")
        shot(b, "alerts-viewer")
        status = b.js_async(
            "var done = arguments[0]; fetch('%s/silences', {method: 'POST', body: '{}',"
            " headers: {'Content-Type': 'application/json',"
            "  Authorization: 'Bearer ' + sessionStorage.getItem('v6.token')}})"
            ".then(r => done(r.status));" % ALERTS)
        assert status == 403
        goto(b, "#/images")
        b.wait("var x = document.getElementById('pull'); return x && x.disabled && "
               "x.title == 'your identity may not do this'", "pull disabled for a viewer")


def test_images_view_lists_the_store_with_the_pods_using_each(examples_server, workdir):
    from test_images import Registry, app_image
    s = examples_server
    reg = Registry(workdir)
    try:
        run_images(s, reg, reg.push(app_image(workdir).image, "team/app:1"))
    finally:
        reg.close()


def run_images(s, reg, pushed):
    apply(s, deployment("shop", image=TESTAPP, runtime="runc"))
    with Browser() as b:
        open_ui(b, s, "#/images")
        # The imported image, its size, and the runc pod that runs it.
        row = b.wait("var r = Array.from(document.querySelectorAll('table[data-t=images] tbody tr'))"
                     ".find(x => x.cells[0].textContent == arguments[0]);"
                     "return r && r.querySelector('.pod-chip') && "
                     "Array.from(r.cells).map(c => c.textContent.trim())",
                     "the testapp image used by the shop pod", 90, TESTAPP)
        _, imgs = s.json("GET", IMAGES, expect=200)
        img = [i for i in imgs["items"] if i["ref"] == TESTAPP][0]
        assert row[1] == img["digest"].split(":")[1][:12], row
        assert row[2].endswith(("kB", "MB")), row
        assert row[3].startswith("default/shop-"), row
        remove = "button[data-action=remove][data-arg='%s']" % TESTAPP
        assert b.js("return document.querySelector(arguments[0]).title", remove) \
            .startswith("in use by pod shop-")
        assert b.js("return document.querySelector(arguments[0]).disabled", remove)
        shot(b, "images")

        # A pull that fails says why next to the Pull button.
        b.type("#pull-ref", "127.0.0.1:%d/nothing/here:1\n" % free_port())
        err = b.wait_text("[data-err=pull]", lambda t: t.startswith("pull: "),
                          "the pull's error", timeout=60)
        assert "nothing/here" in err, err
        shot(b, "images-pull-error")
        # A pull from a registry: the image arrives in the list, used by no pod.
        b.js("document.getElementById('pull-ref').value = ''")
        b.type("#pull-ref", pushed + "\n")
        row = b.wait("var r = Array.from(document.querySelectorAll('table[data-t=images] tbody tr'))"
                     ".find(x => x.cells[0].textContent == arguments[0]);"
                     "return r && Array.from(r.cells).map(c => c.textContent.trim())",
                     "the pulled image", 90, pushed)
        assert row[3] == "no pod", row
        assert b.text("[data-err=pull]") == "" and b.js(
            "return document.getElementById('pull-ref').value") == ""
        _, imgs = s.json("GET", IMAGES, expect=200)
        assert pushed in [i["ref"] for i in imgs["items"]]

        # Once no pod uses it, Remove removes it from the node.
        s.v6("delete", "deployment", "shop", check=True)
        b.wait("var x = document.querySelector(arguments[0]); return x && !x.disabled",
               "Remove enabled once unused", 90, remove)
        b.click(remove)
        b.wait("return !Array.from(document.querySelectorAll('table[data-t=images] tbody tr'))"
               ".some(x => x.cells[0].textContent == arguments[0])", "the image gone",
               60, TESTAPP)
        _, imgs = s.json("GET", IMAGES, expect=200)
        assert TESTAPP not in [i["ref"] for i in imgs["items"]]


def test_dashboard_over_https_with_the_servers_ca_and_a_token(make_server, workdir):
    tokens = write(workdir, "tokens.csv", "admin-token,ada,uid-ada\n")
    s = make_server("--token-auth-file", tokens, tls=True)
    bind(s, "ada", "view")
    ca = os.path.join(s.pki, "ca.crt")
    assert s.url.startswith("https://")
    # Without the CA the browser refuses the server's certificate.
    with Browser() as b:
        try:
            b.get(s.url + "/ui/")
        except WebDriverError as e:
            assert "CERT" in str(e), e
        else:
            assert not b.js("return !!document.getElementById('login')"), "untrusted TLS accepted"
    with Browser(ca=ca) as b:
        b.get(s.url + "/ui/#/workloads")
        # No client certificate in a browser: the API answers 401, so a token.
        b.wait("return !document.getElementById('login').hidden", "the sign-in form")
        b.type("#token", "admin-token\n")
        b.wait_text("#who", lambda t: t == "ada", "signed in over HTTPS")
        assert b.js("return location.protocol + ' ' + window.isSecureContext") == "https: true"
        b.wait("return document.querySelector('#main h1') && "
               "document.querySelector('#main h1').textContent == 'Workloads' && "
               "!!document.querySelector('table[data-t=workloads]')", "the workloads view")
        shot(b, "https-workloads")
