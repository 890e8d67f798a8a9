/* api.js — the dashboard's only way to the server: the Kubernetes API with
 * the user's Bearer token (sessionStorage), list+watch that resumes from the
 * last resourceVersion and relists on 410, and SelfSubjectAccessReview to
 * know which buttons to disable. Loaded before app.js; exports window.V6. */
"use strict";
(function () {
  const TOKEN_KEY = "v6.token";
  const V6 = (window.V6 = {});

  V6.token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  V6.setToken = (t) => t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY);

  function headers(ctype) {
    const h = { Accept: "application/json" };
    const t = V6.token();
    if (t) h.Authorization = "Bearer " + t;
    if (ctype) h["Content-Type"] = ctype;
    return h;
  }

  /* An API error: the Status message the server sent, and its code. */
  class ApiError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }
  V6.ApiError = ApiError;

  /* fetch itself failed: no answer from the server at all. */
  async function send(path, opt) {
    try {
      return await fetch(path, opt);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "the server did not answer (" + e.message + ")");
    }
  }

  async function failure(r) {
    let msg = r.status + " " + r.statusText;
    try {
      const s = await r.json();
      if (s && s.message) msg = s.message;
    } catch (e) { /* not a Status */ }
    if (r.status === 401 && V6.onUnauthorized) V6.onUnauthorized();
    return new ApiError(r.status, msg);
  }

  /* One request; resolves to the parsed JSON body, rejects with ApiError. */
  V6.req = async function (method, path, body, ctype, signal) {
    const opt = { method, headers: headers(body !== undefined ? (ctype || "application/json") : null), signal };
    if (body !== undefined) opt.body = typeof body === "string" ? body : JSON.stringify(body);
    const r = await send(path, opt);
    if (!r.ok) throw await failure(r);
    const text = await r.text();
    return text ? JSON.parse(text) : null;
  };
  V6.get = (path, signal) => V6.req("GET", path, undefined, undefined, signal);
  V6.mergePatch = (path, body) => V6.req("PATCH", path, body, "application/merge-patch+json");
  V6.jsonPatch = (path, ops) => V6.req("PATCH", path, ops, "application/json-patch+json");

  /* A streamed GET (watches, log follow): onChunk gets decoded text as it
   * arrives; resolves when the server ends the response. */
  V6.stream = async function (path, signal, onChunk) {
    const r = await send(path, { headers: headers(null), signal });
    if (!r.ok) throw await failure(r);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        onChunk(dec.decode(value, { stream: true }));
      }
    } catch (e) {
      reader.cancel().catch(() => {});	/* a bad event: let the connection go */
      throw e;
    }
  };

  /* The path of a resource: group "" is the core API; ns "" means all. */
  V6.path = function (res, ns, name, sub) {
    let p = res.group ? "/apis/" + res.group + "/" + res.version : "/api/v1";
    if (ns) p += "/namespaces/" + encodeURIComponent(ns);
    p += "/" + res.plural;
    if (name) p += "/" + encodeURIComponent(name);
    if (sub) p += "/" + sub;
    return p;
  };

  /* The kinds the dashboard shows. */
  V6.R = {
    namespaces: { group: "", version: "v1", plural: "namespaces", cluster: true },
    pods: { group: "", version: "v1", plural: "pods" },
    events: { group: "", version: "v1", plural: "events" },
    services: { group: "", version: "v1", plural: "services" },
    endpoints: { group: "", version: "v1", plural: "endpoints" },
    deployments: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment" },
    statefulsets: { group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet" },
    daemonsets: { group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet" },
    replicasets: { group: "apps", version: "v1", plural: "replicasets" },
    jobs: { group: "batch", version: "v1", plural: "jobs", kind: "Job" },
    rollouts: { group: "argoproj.io", version: "v1alpha1", plural: "rollouts", kind: "Rollout" },
    analysisruns: { group: "argoproj.io", version: "v1alpha1", plural: "analysisruns" },
    httproutes: { group: "gateway.networking.k8s.io", version: "v1", plural: "httproutes" },
    hpas: { group: "autoscaling", version: "v2", plural: "horizontalpodautoscalers" },
    applications: { group: "argoproj.io", version: "v1alpha1", plural: "applications" },
    alerts: { group: "alerts.v6.dev", version: "v1alpha1", plural: "alerts" },
    silences: { group: "alerts.v6.dev", version: "v1alpha1", plural: "silences", cluster: true },
    images: { group: "images.v6.dev", version: "v1alpha1", plural: "images", cluster: true },
  };

  /* A live collection: LIST, then WATCH from the list's resourceVersion;
   * after a disconnect the watch resumes from the last resourceVersion
   * seen (no event is lost), after 410 Gone it relists. onChange() runs
   * (at most once a frame) when the collection changed. stop() ends it. */
  V6.Live = class {
    constructor(path, query, onChange, onError) {
      this.path = path;
      this.query = query || "";
      this.items = new Map();
      this.rv = "";
      this.onChange = onChange;
      this.onError = onError || (() => {});
      this.ctl = new AbortController();
      this.stopped = false;
      this.paused = false;
      this.gen = 0;		/* the run() loop that is current */
      this.ready = false;
      this.pending = false;
      this.backoff = 250;
      this.run(this.gen);
    }
    key(o) { return (o.metadata.namespace || "") + "/" + o.metadata.name; }
    changed() {
      if (this.pending || this.stopped) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; if (!this.stopped) this.onChange(this); });
    }
    async list() {
      const sep = this.query ? "?" + this.query : "";
      const l = await V6.get(this.path + sep, this.ctl.signal);
      this.items.clear();
      for (const o of l.items || []) this.items.set(this.key(o), o);
      this.rv = l.metadata.resourceVersion;
      this.ready = true;
      this.changed();
    }
    apply(ev) {
      if (ev.type === "ERROR") {
        const code = ev.object && ev.object.code;
        throw new ApiError(code || 500, (ev.object && ev.object.message) || "watch error");
      }
      const o = ev.object;
      if (!o || !o.metadata) return;
      if (o.metadata.resourceVersion) this.rv = o.metadata.resourceVersion;
      if (ev.type === "DELETED") this.items.delete(this.key(o));
      else if (ev.type === "ADDED" || ev.type === "MODIFIED") this.items.set(this.key(o), o);
      this.changed();
    }
    async watchOnce() {
      const q = (this.query ? this.query + "&" : "") + "watch=1&resourceVersion=" + encodeURIComponent(this.rv);
      let buf = "";
      await V6.stream(this.path + "?" + q, this.ctl.signal, (text) => {
        buf += text;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.apply(JSON.parse(line));
          this.backoff = 250;
        }
      });
    }
    async run(gen) {
      const gone = () => this.stopped || gen !== this.gen;
      while (!gone()) {
        try {
          if (!this.ready) await this.list();
          await this.watchOnce();
        } catch (e) {
          if (gone()) return;
          if (e.code === 410) { this.ready = false; continue; }
          if (e.code === 401 || e.code === 403 || e.code === 404) { this.onError(e); return; }
          this.onError(e);
          await new Promise((res) => setTimeout(res, this.backoff));
          this.backoff = Math.min(this.backoff * 2, 5000);
        }
      }
    }
    list_() { return Array.from(this.items.values()); }
    stop() { this.stopped = true; this.ctl.abort(); }
    /* A hidden tab gives its connection back (a browser has six per
     * server for all its tabs); resume() watches again from the last
     * resourceVersion, or relists if that is too old. */
    pause() {
      if (this.stopped || this.paused) return;
      this.paused = true;
      this.gen++;
      this.ctl.abort();
    }
    resume() {
      if (this.stopped || !this.paused) return;
      this.paused = false;
      this.ctl = new AbortController();
      this.run(this.gen);
    }
  };

  /* May the caller do verb on resource (SelfSubjectAccessReview)? Until the
   * server serves the review (404), everything is allowed as the server is
   * unsecured. Answers are cached for the page's life. */
  const reviews = new Map();
  V6.can = function (verb, res, ns, sub, name) {
    const key = [verb, res.group, res.plural, sub || "", ns || "", name || ""].join("|");
    if (!reviews.has(key)) {
      const body = { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { verb, group: res.group, resource: res.plural,
          subresource: sub || "", namespace: ns || "", name: name || "" } } };
      reviews.set(key, V6.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body)
        .then((r) => !!(r && r.status && r.status.allowed))
        .catch((e) => e.code === 404));
    }
    return reviews.get(key);
  };
  V6.forgetReviews = () => reviews.clear();
})();
