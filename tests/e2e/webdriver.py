"""A small W3C WebDriver client (urllib only) for headless Chromium from
Debian through chromedriver: start() runs chromedriver on a free loopback
port and opens one browser session with a fresh profile; close() ends the
session and the chromedriver process (by PID). Used by test_dashboard.py
and bench/dashboard/."""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("V6_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("V6_CHROMEDRIVER", "/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
# No network, no background traffic, no first-run dialogs: the machine has
# no internet and the test must only talk to loopback.
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-default-apps",
               "--disable-extensions", "--disable-dev-shm-usage",
               "--metrics-recording-only", "--password-store=basic"]


class WebDriverError(Exception):
    pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, width=1280, height=720, mobile=False, ca=None):
        """ca: a CA certificate (PEM file) the browser trusts for TLS, as a
        user would import it: into the NSS database Chromium reads
        ($HOME/.pki/nssdb, a HOME of the profile's own)."""
        self.width, self.height, self.mobile, self.ca = width, height, mobile, ca
        self.proc = None
        self.session = None
        self.profile = None
        self.port = 0

    # ---- process ----------------------------------------------------
    def start(self, timeout=30):
        self.profile = tempfile.mkdtemp(prefix="v6-chromium-")
        self.port = _free_port()
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "wb")
        env = dict(os.environ, HOME=self._home())
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, "--port=%d" % self.port, "--allowed-ips=127.0.0.1"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._call("GET", "/status", timeout=2)["ready"]:
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.05)
        args = CHROME_ARGS + ["--user-data-dir=" + os.path.join(self.profile, "data"),
                              "--window-size=%d,%d" % (self.width, self.height)]
        opts = {"binary": CHROMIUM, "args": args}
        if self.mobile:
            opts["mobileEmulation"] = {"deviceMetrics": {
                "width": self.width, "height": self.height, "pixelRatio": 2}}
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": opts,
            "goog:loggingPrefs": {"browser": "ALL"}}}}
        try:
            r = self._call("POST", "/session", caps, timeout=timeout)
        except Exception:
            self.close()
            raise
        self.session = r["sessionId"]
        self._s("POST", "/timeouts", {"script": 30000, "pageLoad": 30000})
        return self

    def _home(self):
        """A HOME for the browser alone; with self.ca, its NSS database
        trusts that CA to issue server certificates (certutil, libnss3-tools)."""
        home = os.path.join(self.profile, "home")
        db = os.path.join(home, ".pki", "nssdb")
        os.makedirs(db)
        if self.ca:
            for args in (["-N", "--empty-password"],
                         ["-A", "-n", "v6-test-ca", "-t", "C,,", "-i", self.ca]):
                subprocess.run(["certutil", "-d", "sql:" + db] + args, check=True,
                               capture_output=True, timeout=30)
        return home

    def close(self):
        if self.session:
            try:
                self._call("DELETE", "/session/" + self.session, timeout=10)
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self.log.close()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- protocol ---------------------------------------------------
    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                v = json.loads(e.read()).get("value", {})
            except ValueError:
                v = {}
            raise WebDriverError("%s %s: %s: %s" % (method, path, v.get("error"),
                                                    v.get("message", "")[:500]))
        return out.get("value")

    def _s(self, method, path, body=None, timeout=60):
        return self._call(method, "/session/%s%s" % (self.session, path), body, timeout)

    # ---- commands ---------------------------------------------------
    def get(self, url):
        self._s("POST", "/url", {"url": url})

    def resize(self, width, height):
        self._s("POST", "/window/rect", {"width": width, "height": height})

    def js(self, script, *args):
        """Runs script (a function body; `arguments` holds args) and
        returns its value."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self._s("POST", "/execute/async", {"script": script, "args": list(args)})

    def find(self, css):
        """The first element matching css, or None."""
        try:
            r = self._s("POST", "/element", {"using": "css selector", "value": css})
        except WebDriverError as e:
            if "no such element" in str(e):
                return None
            raise
        return r[ELEMENT]

    def click(self, css, tries=5):
        """Clicks the element css matches; found again if a live page
        replaced it in between."""
        for i in range(tries):
            el = self.find(css)
            if el is None:
                raise WebDriverError("no element %s to click" % css)
            try:
                self._s("POST", "/element/%s/click" % el, {})
                return
            except WebDriverError as e:
                if "stale element" not in str(e) or i == tries - 1:
                    raise

    def type(self, css, text):
        el = self.find(css)
        self._s("POST", "/element/%s/value" % el, {"text": text})

    def keys(self, text):
        """Sends key presses to the focused element (WebDriver actions)."""
        acts = []
        for ch in text:
            acts += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        self._s("POST", "/actions", {"actions": [{"type": "key", "id": "kb", "actions": acts}]})

    def text(self, css):
        return self.js("var e = document.querySelector(arguments[0]);"
                       "return e ? e.textContent : null;", css)

    def wait(self, script, what, timeout=30, *args):
        """Polls script (returning a truthy value when done) until it is;
        returns that value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.js(script, *args)
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError("browser: timed out waiting for %s (last: %r)" % (what, last))

    def wait_text(self, css, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        t = None
        while time.monotonic() < deadline:
            t = self.text(css)
            if t is not None and pred(t):
                return t
            time.sleep(0.1)
        raise AssertionError("browser: timed out waiting for %s: %s is %r" % (what, css, t))

    def frames_start(self):
        """Starts recording the time between animation frames (the frame
        budget: a gap of a second is a frozen page)."""
        self.js("window.__gaps = []; window.__stopFrames = false;"
                "var last = performance.now();"
                "requestAnimationFrame(function f(t) {"
                "  window.__gaps.push(t - last); last = t;"
                "  if (!window.__stopFrames) requestAnimationFrame(f); });")

    def frames_stop(self):
        """The gaps (ms) recorded since frames_start(), sorted."""
        return sorted(self.js("window.__stopFrames = true; return window.__gaps"))

    def screenshot(self, path):
        png = base64.b64decode(self._s("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)

    def console(self):
        """Browser console messages since the last call."""
        try:
            return self._s("POST", "/se/log", {"type": "browser"})
        except WebDriverError:
            return []
