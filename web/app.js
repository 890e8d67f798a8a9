/* app.js — the dashboard's views: a hash router (#/view/ns/name?ns=&q=, so
 * every view can be shared by URL), login, keyboard navigation, and one
 * renderer per view fed by V6.Live collections (api.js). A view opens at
 * most four watches (browsers give a page six connections per server);
 * kinds it shows besides are relisted when a watched kind changes. */
"use strict";
(function () {
  const V6 = window.V6, R = V6.R;
  const $ = (sel, el) => (el || document).querySelector(sel);
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s === undefined || s === null ? "" : s).replace(/[&<>"']/g, (c) => ESC[c]);
  class Raw { constructor(s) { this.s = s; } toString() { return this.s; } }
  const raw = (s) => new Raw(s);
  /* A template tag that escapes what it interpolates (arrays are joined). */
  function html(strs, ...vals) {
    let out = strs[0];
    vals.forEach((v, i) => {
      if (Array.isArray(v)) out += v.map((x) => (x instanceof Raw ? x.s : esc(x))).join("");
      else out += v instanceof Raw ? v.s : esc(v);
      out += strs[i + 1];
    });
    return raw(out);
  }
  const get = (o, path) => path.split(".").reduce((a, k) => (a === undefined || a === null ? undefined : a[k]), o);
  const name = (o) => o.metadata.name, nsOf = (o) => o.metadata.namespace || "";
  const labels = (o) => o.metadata.labels || {};
  /* Code-point order: localeCompare is too slow for 1,000 rows a frame. */
  const byName = (a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);

  /* ---- time --------------------------------------------------------- */
  function rel(ts) {
    if (!ts) return "";
    const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
    if (s < 60) return Math.floor(s) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }
  const ago = (ts) => ts ? html`<time datetime="${ts}" title="${new Date(ts).toString()}">${rel(ts)}</time>` : raw("");
  setInterval(() => document.querySelectorAll("time[datetime]").forEach((t) => { t.textContent = rel(t.getAttribute("datetime")); }), 10000);

  /* ---- route: #/view/a/b?ns=..&q=.. ---------------------------------- */
  function parseHash() {
    const h = location.hash.replace(/^#\/?/, "");
    const [p, q] = h.split("?");
    const parts = p.split("/").filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(q || "");
    return { view: parts[0] || "overview", args: parts.slice(1), ns: params.get("ns") || "", q: params.get("q") || "" };
  }
  function href(view, args, extra) {
    const cur = parseHash();
    const params = new URLSearchParams();
    const ns = extra && "ns" in extra ? extra.ns : cur.ns;
    const q = extra && "q" in extra ? extra.q : (view === cur.view ? cur.q : "");
    if (ns) params.set("ns", ns);
    if (q) params.set("q", q);
    const s = params.toString();
    return "#/" + [view].concat((args || []).map(encodeURIComponent)).join("/") + (s ? "?" + s : "");
  }

  /* Name search and label terms ("app=web", "tier!=db") of the q box. */
  /* nameOf / labelsOf: for objects whose name and labels sit elsewhere
   * (an alert's are labels.alertname and labels). */
  function matcher(q, nameOf, labelsOf) {
    const terms = q.trim().split(/[\s,]+/).filter(Boolean);
    nameOf = nameOf || name; labelsOf = labelsOf || labels;
    return (o) => terms.every((t) => {
      const m = t.match(/^([^=!]+)(!?=)(.*)$/);
      if (!m) return nameOf(o).toLowerCase().includes(t.toLowerCase());
      /* A workload matches by its own labels or its pods' (the template's). */
      const ls = labelsOf(o);
      const v = m[1] in ls ? ls[m[1]] : (get(o, "spec.template.metadata.labels") || {})[m[1]];
      return m[2] === "=" ? v === m[3] : v !== m[3];
    });
  }

  /* ---- health --------------------------------------------------------- */
  const HEALTH = {
    Deployment: (o) => [get(o, "status.readyReplicas") || 0, get(o, "spec.replicas") ?? 1,
      (get(o, "status.updatedReplicas") || 0) < (get(o, "spec.replicas") ?? 1) ? "Progressing" : null],
    StatefulSet: (o) => [get(o, "status.readyReplicas") || 0, get(o, "spec.replicas") ?? 1, null],
    DaemonSet: (o) => [get(o, "status.numberReady") || 0, get(o, "status.desiredNumberScheduled") || 0, null],
    Rollout: (o) => [get(o, "status.readyReplicas") || 0, get(o, "spec.replicas") ?? 1, get(o, "status.phase") || "Progressing"],
    Job: (o) => {
      const done = get(o, "status.succeeded") || 0, want = get(o, "spec.completions") ?? 1;
      const failed = (get(o, "status.conditions") || []).some((c) => c.type === "Failed" && c.status === "True");
      return [done, want, failed ? "Degraded" : done >= want ? "Complete" : "Progressing"];
    },
  };
  function health(kind, o) {
    const [ready, want, phase] = HEALTH[kind](o);
    const state = phase || (ready >= want ? "Healthy" : "Progressing");
    return { ready, want, state };
  }
  const badge = (s) => html`<span class="badge b-${String(s).toLowerCase()}">${s}</span>`;

  function podReady(p) {
    const cs = get(p, "status.containerStatuses") || [];
    return [cs.filter((c) => c.ready).length, (get(p, "spec.containers") || []).length];
  }
  const restarts = (p) => (get(p, "status.containerStatuses") || []).reduce((a, c) => a + (c.restartCount || 0), 0);
  function podPhase(p) {
    if (p.metadata.deletionTimestamp) return "Terminating";
    for (const c of get(p, "status.containerStatuses") || []) {
      const w = get(c, "state.waiting.reason");
      if (w && w !== "ContainerCreating") return w;
    }
    return get(p, "status.phase") || "Pending";
  }

  /* ---- view plumbing ------------------------------------------------- */
  let view = null;	/* { name, lives: [], timers: [], render(), stop() } */
  const main = () => $("#main");
  const WORKLOADS = ["deployments", "statefulsets", "daemonsets", "rollouts", "jobs"];

  /* A collection relisted (at most every 1.5 s) when poke() is called: for
   * kinds a view shows next to the ones it watches. opts.every (ms) also
   * relists on a timer, while the tab is visible: for the APIs that serve
   * no watch (alerts: Alertmanager's; images: the node's store).
   * opts.quiet keeps a failure in .error for the view to show in place. */
  class Follow {
    constructor(path, query, onChange, opts) {
      this.path = path; this.query = query || ""; this.onChange = onChange; this.opts = opts || {};
      this.items = new Map(); this.stopped = false; this.last = 0; this.timer = null; this.ctl = new AbortController();
      this.ready = false; this.error = null; this.iv = null;
      this.relist();
      this.tick();
    }
    async relist() {
      this.timer = null; this.last = Date.now();
      try {
        const l = await V6.get(this.path + (this.query ? "?" + this.query : ""), this.ctl.signal);
        /* Images have no metadata: their reference is their name. */
        this.items = new Map((l.items || []).map((o) => [o.metadata ? nsOf(o) + "/" + name(o) : o.ref, o]));
        this.error = null;
      } catch (e) {
        if (this.stopped || e.name === "AbortError") return;
        if (!this.opts.quiet) { if (e.code !== 404) showError(e); return; }
        this.error = e;
        this.items = new Map();	/* not what is there now: shown as unknown */
      }
      this.ready = true;
      if (!this.stopped) this.onChange(this);
    }
    poke() {
      if (this.timer || this.stopped) return;
      this.timer = setTimeout(() => this.relist(), Math.max(0, 1500 - (Date.now() - this.last)));
    }
    list_() { return Array.from(this.items.values()); }
    stop() { this.stopped = true; clearTimeout(this.timer); clearInterval(this.iv); this.ctl.abort(); }
    tick() { if (this.opts.every && !this.iv && !this.stopped) this.iv = setInterval(() => this.poke(), this.opts.every); }
    pause() { clearInterval(this.iv); this.iv = null; }
    resume() { this.poke(); this.tick(); }
  }

  function startView(name, setup) {
    if (view) view.stop();
    const v = { name, lives: [], timers: [], aborts: [], render: () => {} };
    v.live = (res, ns, query) => { const l = new V6.Live(V6.path(res, ns), query, () => { v.render(); v.onLive && v.onLive(l); }, showError); v.lives.push(l); return l; };
    v.follow = (res, ns, query, opts) => { const f = new Follow(V6.path(res, ns, opts && opts.name), query, () => v.render(), opts); v.lives.push(f); return f; };
    v.errors = {};	/* action key -> message, shown next to that action */
    v.stop = () => { v.lives.forEach((l) => l.stop()); v.timers.forEach(clearInterval); v.aborts.forEach((a) => a.abort()); };
    view = v;
    main().innerHTML = '<p class="muted">Loading…</p>';
    main().__painted = "";
    setup(v);
    return v;
  }
  function showError(e) {
    const el = $("#banner");
    el.textContent = e.message || String(e);
    el.hidden = false;
    clearTimeout(showError.t);
    showError.t = setTimeout(() => { el.hidden = true; }, 8000);
  }
  /* Writes html into the main area keeping focus, scroll and the row
   * selection (keyboard navigation) across live updates. */
  function paint(h) {
    const m = main(), active = document.activeElement, id = active && active.id;
    /* Unchanged but for relative times: keep the DOM (a click in progress
     * on a row must not lose its target). */
    const key = String(h).replace(/(<time[^>]*>)[^<]*</g, "$1<");
    if (m.__painted === key) return;
    m.__painted = key;
    const sel = $("tr.sel", m), selHref = sel && sel.dataset.href;
    const logPre = $("#log", m);
    m.innerHTML = String(h);
    if (logPre) { const nl = $("#log", m); if (nl) nl.replaceWith(logPre); }
    if (id && id !== "q") {
      const el = document.getElementById(id), at = active.selectionStart, end = active.selectionEnd;
      if (el) { el.focus(); if (typeof at === "number" && el.setSelectionRange) try { el.setSelectionRange(at, end); } catch (e) { /* no caret */ } }
    }
    if (selHref) { const r = m.querySelector('tr[data-href="' + CSS.escape(selHref) + '"]'); if (r) r.classList.add("sel"); }
  }

  /* ---- tables -------------------------------------------------------- */
  const LIMIT = 200;
  /* rows may be cut to what is shown already: opts.total is then the
   * whole count (for "show all"). */
  function table(cols, rows, opts) {
    opts = opts || {};
    const shown = opts.all ? rows : rows.slice(0, LIMIT);
    const total = opts.total === undefined ? rows.length : opts.total;
    return html`<table class="t" data-t="${opts.t || ""}"><thead><tr>${cols.map((c) => html`<th>${c}</th>`)}</tr></thead>
      <tbody>${shown.map((r) => html`<tr${r.href ? html` data-href="${r.href}" tabindex="-1"` : ""}>${r.cells.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody></table>
      ${total > shown.length ? html`<button class="more" data-more="${opts.t}">Show all ${total} (${total - shown.length} more)</button>` : ""}
      ${total === 0 ? html`<p class="muted">${opts.empty || "Nothing here."}</p>` : ""}`;
  }
  const showAll = new Set();

  /* Rows of the pods in name order, only the first LIMIT unless all. */
  function podRows(pods, all) {
    pods.sort(byName);
    return (all ? pods : pods.slice(0, LIMIT)).map((p) => {
      const [r, n] = podReady(p), ph = podPhase(p);
      return { href: href("pod", [nsOf(p), name(p)]), cells: [html`<a href="${href("pod", [nsOf(p), name(p)])}">${name(p)}</a>`,
        nsOf(p), badge(ph), r + "/" + n, restarts(p), get(p, "spec.nodeName") || "", get(p, "status.podIP") || "", ago(p.metadata.creationTimestamp)] };
    });
  }
  const POD_COLS = ["Pod", "Namespace", "Phase", "Ready", "Restarts", "Node", "IP", "Age"];

  /* ---- overview ------------------------------------------------------ */
  function overview(r) {
    startView("overview", (v) => {
      const pods = v.live(R.pods, r.ns), ros = v.live(R.rollouts, r.ns), evs = v.live(R.events, r.ns);
      const fol = ["deployments", "statefulsets", "daemonsets", "jobs"].map((k) => [k, v.follow(R[k], r.ns)]);
      const al = v.follow(R.alerts, r.ns, "", { every: ALERT_EVERY, quiet: true });
      v.onLive = (l) => { if (l === pods) fol.forEach(([, f]) => f.poke()); };
      v.render = () => {
        const spaces = new Map();
        const bucket = (ns) => { if (!spaces.has(ns)) spaces.set(ns, { healthy: 0, progressing: 0, degraded: 0, pods: 0, running: 0, failing: 0 }); return spaces.get(ns); };
        const moving = [];
        const wl = fol.map(([k, f]) => [R[k].kind, f.list_()]).concat([["Rollout", ros.list_()]]);
        for (const [kind, items] of wl) for (const o of items) {
          const h = health(kind, o), b = bucket(nsOf(o));
          if (h.state === "Healthy" || h.state === "Complete") b.healthy++;
          else if (h.state === "Degraded") b.degraded++;
          else { b.progressing++; moving.push([kind, o, h]); }
        }
        for (const p of pods.list_()) {
          const b = bucket(nsOf(p)), ph = podPhase(p);
          b.pods++;
          if (ph === "Running" || ph === "Succeeded") b.running++;
          else if (ph !== "Pending" && ph !== "Terminating") b.failing++;
        }
        const events = evs.list_().sort((a, b) => (evTime(b) || "").localeCompare(evTime(a) || "")).slice(0, 25);
        paint(html`<h1>Overview</h1>
          <section class="cards">${Array.from(spaces.entries()).sort().map(([ns, b]) => html`
            <a class="card ${b.degraded || b.failing ? "bad" : b.progressing ? "warn" : "ok"}" href="${href("workloads", [], { ns })}" data-ns="${ns}">
              <h3>${ns}</h3><p>${b.healthy} healthy · ${b.progressing} progressing · ${b.degraded} degraded</p>
              <p class="muted">${b.pods} pods, ${b.running} running${b.failing ? ", " + b.failing + " failing" : ""}</p></a>`)}</section>
          <h2><a href="${href("alerts", [])}">Firing alerts</a> <span class="muted" data-t="overview-firing">${al.list_().filter((a) => a.state === "firing").length}</span></h2>
          ${al.error ? html`<p class="muted" data-t="alerts-error">${al.error.code === 503 ? "No Alertmanager: alerts show here once the server has one." : al.error.message}</p>` :
            table(ALERT_COLS.slice(0, 6), alertRows(al.list_().filter((a) => a.state === "firing").sort(byStart)).map((x) => ({ href: x.href, cells: x.cells.slice(0, 6) })), { t: "overview-alerts", empty: al.ready ? "Nothing is firing." : "Loading…" })}
          <h2>Rolling out now</h2>
          ${table(["Kind", "Name", "Namespace", "Ready", "State"], moving.map(([kind, o, h]) => ({
            href: kind === "Rollout" ? href("rollout", [nsOf(o), name(o)]) : href("workloads", [], { ns: nsOf(o) }),
            cells: [kind, name(o), nsOf(o), h.ready + "/" + h.want, badge(h.state)] })), { t: "moving", empty: "Nothing is rolling out." })}
          <h2>Recent events</h2>${eventTable(events)}`);
      };
    });
  }
  const evTime = (e) => e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp;
  function eventTable(events) {
    return table(["When", "Type", "Object", "Reason", "Message"], events.map((e) => ({
      cells: [ago(evTime(e)), html`<span class="${e.type === "Warning" ? "warn-t" : ""}">${e.type}</span>`,
        (get(e, "involvedObject.kind") || "") + "/" + (get(e, "involvedObject.name") || ""), e.reason,
        (e.count > 1 ? "(x" + e.count + ") " : "") + (e.message || "")] })), { t: "events", empty: "No events." });
  }

  /* ---- workloads ----------------------------------------------------- */
  function selectorQuery(o) {
    const ml = get(o, "spec.selector.matchLabels") || {};
    return Object.entries(ml).map(([k, v]) => k + "=" + v).join(" ");
  }
  /* The revision a workload is at: a Deployment's number, a Rollout's pod
   * template hash, a StatefulSet's revision, else the generation seen. */
  function revisionOf(o) {
    const ann = o.metadata.annotations || {};
    return ann["deployment.kubernetes.io/revision"] || get(o, "status.currentPodHash") ||
      get(o, "status.currentRevision") || (get(o, "status.observedGeneration") !== undefined ? "gen " + get(o, "status.observedGeneration") : "");
  }
  const images = (o) => (get(o, "spec.template.spec.containers") || []).map((c) => c.image).join(", ");
  function workloads(r) {
    startView("workloads", (v) => {
      const pods = v.live(R.pods, r.ns), ros = v.live(R.rollouts, r.ns);
      const fol = ["deployments", "statefulsets", "daemonsets", "jobs"].map((k) => [k, v.follow(R[k], r.ns)]);
      v.onLive = (l) => { if (l === pods) fol.forEach(([, f]) => f.poke()); };
      v.render = () => {
        const match = matcher(r.q);
        const rows = [];
        for (const [kind, items] of fol.map(([k, f]) => [R[k].kind, f.list_()]).concat([["Rollout", ros.list_()]]))
          for (const o of items.filter(match).sort((a, b) => byName(a, b))) {
            const h = health(kind, o);
            const target = kind === "Rollout" ? href("rollout", [nsOf(o), name(o)]) : href("workloads", [], { q: selectorQuery(o) });
            rows.push({ href: target, cells: [kind, html`<a href="${target}">${name(o)}</a>`, nsOf(o), h.ready + "/" + h.want, badge(h.state),
              revisionOf(o), images(o), ago(o.metadata.creationTimestamp)] });
          }
        const plist = pods.list_().filter(match);
        paint(html`<h1>Workloads</h1>
          ${table(["Kind", "Name", "Namespace", "Ready", "State", "Revision", "Images", "Age"], rows, { t: "workloads", empty: "No workloads match." })}
          <h2>Pods <span class="muted" data-t="pod-count">${plist.length}</span></h2>
          ${table(POD_COLS, podRows(plist, showAll.has("pods")), { t: "pods", all: showAll.has("pods"), total: plist.length, empty: pods.ready ? "No pods match." : "Loading…" })}`);
      };
    });
  }

  /* ---- pod detail with logs ------------------------------------------ */
  function envValue(e) {
    if ("value" in e) return e.value;
    const f = e.valueFrom || {};
    if (f.fieldRef) return "field " + f.fieldRef.fieldPath;
    if (f.secretKeyRef) return "secret " + f.secretKeyRef.name + "/" + f.secretKeyRef.key;
    if (f.configMapKeyRef) return "configmap " + f.configMapKeyRef.name + "/" + f.configMapKeyRef.key;
    if (f.resourceFieldRef) return "resource " + f.resourceFieldRef.resource;
    return "";
  }
  function volumeSource(vol) {
    const k = Object.keys(vol).find((x) => x !== "name");
    const s = vol[k] || {};
    return k + (s.claimName || s.name || s.secretName || s.path ? " " + (s.claimName || s.name || s.secretName || s.path) : "");
  }
  function pod(r) {
    const [ns, pname] = r.args;
    startView("pod", (v) => {
      const pods = v.live(R.pods, ns, "fieldSelector=metadata.name%3D" + encodeURIComponent(pname));
      const evs = v.follow(R.events, ns);
      v.log = { container: "", previous: false, follow: true, ctl: null };
      v.onLive = () => evs.poke();
      v.render = () => {
        const p = pods.items.get(ns + "/" + pname);
        if (!p) { paint(html`<h1>Pod ${pname}</h1><p class="muted">${pods.ready ? "This pod does not exist (any more)." : "Loading…"}</p>`); return; }
        const cs = new Map((get(p, "status.containerStatuses") || []).map((c) => [c.name, c]));
        const containers = get(p, "spec.containers") || [];
        if (!v.log.container && containers.length) { v.log.container = containers[0].name; setTimeout(() => startLog(v, ns, pname), 0); }
        /* Following and a new run of the container started: follow it. */
        const run = get(cs.get(v.log.container) || {}, "state.running.startedAt");
        if (run && v.log.run && run !== v.log.run && v.log.follow && !v.log.previous) setTimeout(() => startLog(v, ns, pname), 0);
        if (run) v.log.run = run;
        const events = evs.list_().filter((e) => get(e, "involvedObject.kind") === "Pod" && get(e, "involvedObject.name") === pname)
          .sort((a, b) => (evTime(b) || "").localeCompare(evTime(a) || ""));
        paint(html`<h1>Pod ${pname} ${badge(podPhase(p))}</h1>
          <p class="muted">${ns} · node ${get(p, "spec.nodeName") || "-"} · IP ${get(p, "status.podIP") || "-"} · created ${ago(p.metadata.creationTimestamp)}</p>
          <h2>Containers</h2>${table(["Name", "Image", "Ready", "Restarts", "State"], containers.map((c) => {
            const s = cs.get(c.name) || {}, st = Object.keys(s.state || {})[0] || "waiting";
            return { cells: [c.name, c.image, s.ready ? "yes" : "no", s.restartCount || 0, st + (get(s, "state." + st + ".reason") ? " (" + get(s, "state." + st + ".reason") + ")" : "")] };
          }), { t: "containers" })}
          <h2>Environment</h2>${table(["Container", "Name", "Value"], containers.flatMap((c) => (c.env || []).map((e) => ({ cells: [c.name, e.name, envValue(e)] }))), { t: "env", empty: "No environment variables." })}
          <h2>Volumes</h2>${table(["Volume", "Source", "Mounted at"], (get(p, "spec.volumes") || []).map((vol) => ({
            cells: [vol.name, volumeSource(vol), containers.flatMap((c) => (c.volumeMounts || []).filter((m) => m.name === vol.name).map((m) => c.name + ":" + m.mountPath)).join(", ")] })), { t: "volumes", empty: "No volumes." })}
          <h2>Events</h2>${eventTable(events)}
          <h2>Logs</h2>
          <div class="bar"><label>Container <select id="log-container">${containers.map((c) => html`<option${c.name === v.log.container ? " selected" : ""}>${c.name}</option>`)}</select></label>
            <label><input type="checkbox" id="log-previous"${v.log.previous ? " checked" : ""}> previous container</label>
            <label><input type="checkbox" id="log-follow"${v.log.follow ? " checked" : ""}> follow</label>
            <span id="log-state" class="muted">${v.log.state || ""}</span></div>
          <pre id="log" class="log" tabindex="0"></pre>`);
      };
      v.aborts.push({ abort: () => v.log.ctl && v.log.ctl.abort() });
    });
  }
  const LOG_MAX_LINES = 5000;
  /* (Re)starts the log tail of the view's pod: follow streams the log as
   * the node writes it; previous reads the last terminated container's. */
  async function startLog(v, ns, pname) {
    if (v.log.ctl) v.log.ctl.abort();
    const ctl = (v.log.ctl = new AbortController());
    const pre = $("#log");
    if (pre) pre.textContent = "";
    const q = new URLSearchParams({ container: v.log.container, tailLines: "500" });
    if (v.log.previous) q.set("previous", "true");
    else if (v.log.follow) q.set("follow", "true");
    const setState = (s) => { v.log.state = s; const el = $("#log-state"); if (el) el.textContent = s; };
    setState(q.has("follow") ? "following…" : "loading…");
    let lines = 0;
    try {
      await V6.stream(V6.path(R.pods, ns, pname, "log") + "?" + q, ctl.signal, (text) => {
        const el = $("#log");
        if (!el) return;
        const stick = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
        el.appendChild(document.createTextNode(text));
        lines += (text.match(/\n/g) || []).length;
        if (lines > LOG_MAX_LINES) { el.textContent = el.textContent.split("\n").slice(-LOG_MAX_LINES).join("\n"); lines = LOG_MAX_LINES; }
        if (stick) el.scrollTop = el.scrollHeight;
      });
      if (!ctl.signal.aborted) setState("end of log");
    } catch (e) {
      if (!ctl.signal.aborted) setState(e.message);
    }
  }

  /* ---- rollout ------------------------------------------------------- */
  const HASH = "rollouts-pod-template-hash", REV = "rollout.argoproj.io/revision";
  function stepText(s) {
    if ("setWeight" in s) return "set weight " + s.setWeight + "%";
    if ("pause" in s) return s.pause && s.pause.duration !== undefined ? "pause " + s.pause.duration + (typeof s.pause.duration === "number" ? "s" : "") : "pause (until promoted)";
    if (s.analysis) return "analysis " + (s.analysis.templates || []).map((t) => t.templateName).join(", ");
    if (s.setHeaderRoute) return "header route " + s.setHeaderRoute.name + ((s.setHeaderRoute.match || []).length ? ": " + s.setHeaderRoute.match.map((m) => m.headerName + "=" + JSON.stringify(m.headerValue)).join(", ") : " (removed)");
    if (s.setCanaryScale) return "canary scale " + JSON.stringify(s.setCanaryScale);
    if (s.setMirrorRoute) return "mirror route " + s.setMirrorRoute.name;
    return JSON.stringify(s);
  }
  /* The weight the canary gets, as `v6 rollout status` shows it
   * (cli_argo_weight): the controller's when traffic is routed, else the
   * step's set weight. */
  function setWeight(ro) {
    const steps = get(ro, "spec.strategy.canary.steps") || [];
    if (get(ro, "status.abort")) return 0;
    let i = Math.min(get(ro, "status.currentStepIndex") || 0, steps.length);
    if (i >= steps.length) return 100;
    for (; i >= 0; i--) if (steps[i] && "setWeight" in steps[i]) return steps[i].setWeight;
    return 0;
  }
  function weight(ro) {
    if (!get(ro, "spec.strategy.canary")) return 0;	/* blue-green: the switch is all or nothing */
    const w = get(ro, "status.canary.weights.canary.weight");
    const routed = get(ro, "spec.strategy.canary.canaryService") || get(ro, "spec.strategy.canary.trafficRouting");
    return routed && w !== undefined ? w : setWeight(ro);
  }
  const fullyPromoted = (ro) => get(ro, "status.currentPodHash") && get(ro, "status.currentPodHash") === get(ro, "status.stableRS");
  const pausedAtStep = (ro) => (get(ro, "status.pauseConditions") || []).length > 0;
  /* What each button writes: the same decisions and patches as
   * `v6 rollout CMD` (cli_rollout.c's argo_*): {status, spec} merge
   * patches, or an Error whose message says why not. */
  const ARGO = {
    promote(ro) {
      if (get(ro, "status.abort")) throw new Error("the rollout is aborted; retry it, or change spec.template back to the stable version");
      const out = {};
      if (get(ro, "spec.paused")) out.spec = { paused: false };
      if (pausedAtStep(ro)) { out.status = { pauseConditions: null }; return out; }
      if (out.spec) return out;
      const steps = get(ro, "spec.strategy.canary.steps");
      if (!steps) throw new Error("not paused: a blue-green rollout is promoted while it waits for promotion; use promote full to switch over now");
      const i = Math.min(get(ro, "status.currentStepIndex") || 0, steps.length);
      if (i >= steps.length) throw new Error("no canary step left to skip (at step " + i + "/" + steps.length + "); use promote full to skip analysis and pauses too");
      out.status = { currentStepIndex: i + 1 };
      return out;
    },
    "promote-full"(ro) {
      if (get(ro, "status.abort")) throw new Error("the rollout is aborted; retry it first");
      if (fullyPromoted(ro) && !get(ro, "spec.paused")) throw new Error("already fully promoted (the stable revision is the current one)");
      const out = {};
      if (get(ro, "spec.paused")) out.spec = { paused: false };
      if (!fullyPromoted(ro)) out.status = { promoteFull: true };
      return out;
    },
    abort(ro) {
      if (get(ro, "status.abort")) throw new Error("already aborted; use retry to try the update again");
      if (fullyPromoted(ro)) throw new Error("fully promoted (the stable revision is the current one); nothing to abort");
      return { status: { abort: true } };
    },
    retry(ro) {
      if (!get(ro, "status.abort")) throw new Error("not aborted; retry restarts an aborted update (to move on, use promote)");
      return { status: { abort: false } };
    },
    pause(ro) {
      if (get(ro, "spec.paused")) throw new Error("already paused");
      return { spec: { paused: true } };
    },
    resume(ro) {
      const out = {};
      if (!get(ro, "spec.paused") && !pausedAtStep(ro)) throw new Error("not paused; use promote to skip the current step");
      if (get(ro, "spec.paused")) out.spec = { paused: false };
      if (pausedAtStep(ro)) out.status = { pauseConditions: null };
      return out;
    },
  };
  /* Annotations an undo keeps from the rollout rather than the
   * ReplicaSet (cli_rollout.c's undo_skip). */
  const UNDO_KEEP = ["kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to", REV,
    "rollout.argoproj.io/revision-history", "rollout.argoproj.io/desired-replicas", "rollout.argoproj.io/workload-generation"];
  function undoPatch(ro, rsets) {
    const byRev = rsets.map((rs) => [parseInt((rs.metadata.annotations || {})[REV] || "0", 10), rs]).sort((a, b) => b[0] - a[0]);
    if (byRev.length < 2) throw new Error("no rollout history found for rollout \"" + name(ro) + "\"");
    const rs = byRev[1][1];
    const tpl = JSON.parse(JSON.stringify(rs.spec.template || {}));
    if (tpl.metadata && tpl.metadata.labels) { delete tpl.metadata.labels[HASH]; delete tpl.metadata.labels["pod-template-hash"]; }
    const ann = {};
    for (const [k, val] of Object.entries(ro.metadata.annotations || {})) if (UNDO_KEEP.includes(k)) ann[k] = val;
    for (const [k, val] of Object.entries(rs.metadata.annotations || {})) if (!UNDO_KEEP.includes(k)) ann[k] = val;
    return [{ op: "replace", path: "/spec/template", value: tpl }, { op: "add", path: "/metadata/annotations", value: ann }];
  }
  const ACTIONS = [["promote", "Promote"], ["promote-full", "Promote full"], ["abort", "Abort"], ["retry", "Retry"], ["undo", "Undo"], ["pause", "Pause"], ["resume", "Resume"]];
  /* Buttons a state makes pointless are disabled like the ones RBAC denies. */
  function applicable(cmd, ro, rsets) {
    if (cmd === "undo") return rsets.length >= 2;
    try { ARGO[cmd](ro); return true; } catch (e) { return false; }
  }
  function rollout(r) {
    const [ns, rname] = r.args;
    startView("rollout", (v) => {
      const ros = v.live(R.rollouts, ns, "fieldSelector=metadata.name%3D" + encodeURIComponent(rname));
      /* Watched: the rollout, its analysis runs (measurements land there
       * between the rollout's own changes), then its pods and ReplicaSets
       * (by its selector, once known). */
      const none = { list_: () => [] };
      let pods = null, rsets = none;
      const runs = v.live(R.analysisruns, ns);
      v.allowed = { patch: false, status: false };
      Promise.all([V6.can("patch", R.rollouts, ns, "", rname), V6.can("patch", R.rollouts, ns, "status", rname)])
        .then(([a, b]) => { v.allowed = { patch: a, status: b, known: true }; v.render(); });
      v.onLive = (l) => {
        if (l !== ros) return;
        const ro = ros.items.get(ns + "/" + rname);
        if (ro && !pods) {
          const q = "labelSelector=" + encodeURIComponent(selectorQuery(ro).replace(/ /g, ","));
          pods = v.live(R.pods, ns, q);
          rsets = v.live(R.replicasets, ns, q);
        }
      };
      v.error = "";
      v.render = () => {
        const ro = ros.items.get(ns + "/" + rname);
        if (!ro) { paint(html`<h1>Rollout ${rname}</h1><p class="muted">${ros.ready ? "This rollout does not exist." : "Loading…"}</p>`); return; }
        const uid = ro.metadata.uid;
        const owned = (o) => (o.metadata.ownerReferences || []).some((ref) => ref.uid === uid);
        const mine = rsets.list_().filter(owned);
        const steps = get(ro, "spec.strategy.canary.steps") || [];
        const idx = Math.min(get(ro, "status.currentStepIndex") || 0, steps.length);
        /* The current revision's share: all of it once it is the stable one. */
        const w = fullyPromoted(ro) && !get(ro, "status.abort") ? 100 : weight(ro), phase = get(ro, "status.phase") || "Progressing";
        const stable = get(ro, "status.stableRS"), current = get(ro, "status.currentPodHash");
        const podList = pods ? pods.list_() : [];
        const canDo = (cmd) => (cmd === "pause" || cmd === "undo" ? v.allowed.patch : v.allowed.status && v.allowed.patch);
        const revs = mine.map((rs) => [parseInt((rs.metadata.annotations || {})[REV] || "0", 10), rs]).sort((a, b) => b[0] - a[0]);
        const myRuns = runs.list_().filter(owned).sort((a, b) => b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp));
        paint(html`<h1>Rollout ${rname} ${badge(phase)}${get(ro, "spec.paused") ? badge("Paused") : ""}${get(ro, "status.abort") ? badge("Aborted") : ""}</h1>
          <p class="muted">${[ns, get(ro, "spec.strategy.blueGreen") ? "blue-green" : "canary", get(ro, "status.message")].filter(Boolean).join(" · ")}</p>
          <div class="actions" role="toolbar">${ACTIONS.map(([cmd, label]) => {
            const ok = canDo(cmd), app = applicable(cmd, ro, mine);
            return html`<button data-action="${cmd}"${ok && app ? "" : " disabled"} title="${!ok ? "your identity may not do this" : app ? "" : "not applicable in this state"}">${label}</button>`;
          })}<span class="err" id="action-error" role="alert">${v.error}</span></div>
          <div class="weight"><div class="wbar"><div class="wfill" style="width:${w}%"></div></div>
            <span>new revision <b data-t="weight">${w}</b>% · stable ${100 - w}%</span>
            <span class="muted">step <b data-t="step">${idx}</b>/${steps.length}</span>
            ${steps.length && !fullyPromoted(ro) ? html`<span class="muted">set weight ${setWeight(ro)}% · actual ${get(ro, "status.canary.weights.canary.weight") ?? "–"}%</span>` : ""}</div>
          <div class="cols"><section><h2>Steps</h2><ol class="steps" start="0">${steps.map((s, i) => html`<li class="${i < idx ? "done" : i === idx ? "current" : ""}"${i === idx ? raw(' data-t="step-current"') : ""}>${stepText(s)}</li>`)}
            ${steps.length ? html`<li class="${idx >= steps.length ? "current done" : ""}">fully promoted</li>` : ""}</ol></section>
          <section><h2>Revisions</h2>${revs.map(([rev, rs]) => {
            const hash = labels(rs)[HASH] || "";
            const rp = podList.filter((p) => labels(p)[HASH] === hash);
            const images = (get(rs, "spec.template.spec.containers") || []).map((c) => c.image).join(", ");
            return html`<div class="rev" data-hash="${hash}"><h3>Revision ${rev} ${hash === stable ? badge("stable") : ""}${hash === current && hash !== stable ? badge("canary") : ""}</h3>
              <p class="muted">${hash} · ${images} · ${get(rs, "status.readyReplicas") || 0}/${get(rs, "spec.replicas") || 0} ready</p>
              <p>${rp.map((p) => html`<a class="pod-chip ${podPhase(p) === "Running" && podReady(p)[0] === podReady(p)[1] ? "ok" : "warn"}" href="${href("pod", [ns, name(p)])}" title="${podPhase(p)}">${name(p)}</a>`)}</p></div>`;
          })}</section></div>
          <h2>Analysis runs</h2>${myRuns.length ? myRuns.map((ar) => html`<div class="run"><h3>${name(ar)} ${badge(get(ar, "status.phase") || "Pending")}</h3>
            ${table(["Metric", "Phase", "Value", "Started", "Message"], (get(ar, "status.metricResults") || []).flatMap((m) => (m.measurements || []).map((x) => ({
              cells: [m.name, badge(x.phase || ""), x.value, ago(x.startedAt), x.message || ""] }))), { t: "measurements", empty: "No measurements yet." })}</div>`) : html`<p class="muted">No analysis runs.</p>`}`);
      };
      v.act = async (cmd) => {
        const ro = ros.items.get(ns + "/" + rname);
        const p = V6.path(R.rollouts, ns, rname);
        v.error = "";
        try {
          if (cmd === "undo") {
            await V6.jsonPatch(p, undoPatch(ro, rsets.list_().filter((o) => (o.metadata.ownerReferences || []).some((x) => x.uid === ro.metadata.uid))));
          } else {
            const d = ARGO[cmd](ro);
            if (d.status) await V6.mergePatch(p + "/status", { status: d.status });
            if (d.spec) await V6.mergePatch(p, { spec: d.spec });
          }
        } catch (e) { v.error = cmd + ": " + e.message; }
        v.render();
      };
    });
  }

  /* ---- services and routes ------------------------------------------- */
  function routesTo(routes, ns, svc) {
    return routes.filter((rt) => nsOf(rt) === ns && (get(rt, "spec.rules") || []).some((ru) => (ru.backendRefs || []).some((b) => b.name === svc)));
  }
  function readyAddrs(ep) {
    return (ep && ep.subsets || []).reduce((a, s) => a + (s.addresses || []).length, 0);
  }
  function services(r) {
    startView("services", (v) => {
      const svcs = v.live(R.services, r.ns);
      const eps = v.live(R.endpoints, r.ns);
      const routes = v.follow(R.httproutes, r.ns);
      v.onLive = (l) => { if (l === svcs) routes.poke(); };
      v.render = () => {
        const match = matcher(r.q), rl = routes.list_();
        const rows = svcs.list_().filter(match).sort((a, b) => byName(a, b)).map((s) => {
          const target = href("service", [nsOf(s), name(s)]);
          return { href: target, cells: [html`<a href="${target}">${name(s)}</a>`, nsOf(s), get(s, "spec.type") || "ClusterIP", get(s, "spec.clusterIP") || "",
            (get(s, "spec.ports") || []).map((p) => p.port + "/" + (p.protocol || "TCP")).join(", "),
            readyAddrs(eps.items.get(nsOf(s) + "/" + name(s))), routesTo(rl, nsOf(s), name(s)).map(name).join(", ")] };
        });
        paint(html`<h1>Services and routes</h1>${table(["Service", "Namespace", "Type", "Cluster IP", "Ports", "Ready endpoints", "Routes"], rows, { t: "services" })}`);
      };
    });
  }
  /* A small inline SVG line of the last values (max: the top of the box). */
  function spark(vals, fmt) {
    const W = 160, H = 32, max = Math.max(1e-9, ...vals);
    const pts = vals.map((x, i) => ((i * W) / Math.max(1, vals.length - 1)).toFixed(1) + "," + (H - 2 - (x / max) * (H - 4)).toFixed(1)).join(" ");
    const last = vals.length ? vals[vals.length - 1] : 0;
    const end = pts.split(" ").pop().split(",");
    return html`<svg class="spark" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${fmt(last)}"><polyline points="${pts}"/><circle cx="${end[0]}" cy="${end[1]}" r="2"/></svg> <span class="num">${fmt(last)}</span>`;
  }
  const HISTORY = 60;
  function service(r) {
    const [ns, sname] = r.args;
    startView("service", (v) => {
      const svcs = v.live(R.services, ns, "fieldSelector=metadata.name%3D" + encodeURIComponent(sname));
      const eps = v.follow(R.endpoints, ns, "fieldSelector=metadata.name%3D" + encodeURIComponent(sname));
      const routes = v.follow(R.httproutes, ns), ros = v.follow(R.rollouts, ns);
      v.onLive = () => { eps.poke(); routes.poke(); ros.poke(); };
      v.traffic = new Map();	/* "service revision" -> [{rps, err, p99}] */
      v.trafficNote = "waiting for the proxy's first sample…";
      /* A rollout splits one Service's traffic over its stable and canary
       * Services: the revisions of all of them are shown together. */
      const steered = () => {
        const out = new Set([sname]);
        for (const ro of ros.list_()) {
          const c = get(ro, "spec.strategy.canary") || get(ro, "spec.strategy.blueGreen") || {};
          const names = [c.stableService, c.canaryService, c.activeService, c.previewService].filter(Boolean);
          if (names.includes(sname)) names.forEach((n) => out.add(n));
        }
        return Array.from(out);
      };
      const poll = async () => {
        const notes = [];
        await Promise.all(steered().map(async (svc) => {
          try {
            const t = await V6.get("/apis/traffic.v6.dev/v1alpha1/namespaces/" + encodeURIComponent(ns) + "/services/" + encodeURIComponent(svc));
            for (const rev of t.revisions || []) {
              const key = svc + " " + rev.revision, h = v.traffic.get(key) || [];
              h.push({ rps: rev.requestsPerSecond, err: rev.errorRate, p99: rev.p99LatencyMs });
              if (h.length > HISTORY) h.shift();
              v.traffic.set(key, h);
            }
            notes.push("every " + (t.window || "5s"));
          } catch (e) { if (e.code !== 404) notes.push(svc + ": " + e.message); }
        }));
        v.trafficNote = notes.length ? "per revision, " + Array.from(new Set(notes)).join("; ") : "no traffic seen yet";
        v.render();
      };
      poll();
      v.timers.push(setInterval(poll, 5000));
      v.render = () => {
        const s = svcs.items.get(ns + "/" + sname);
        if (!s) { paint(html`<h1>Service ${sname}</h1><p class="muted">${svcs.ready ? "This service does not exist." : "Loading…"}</p>`); return; }
        const ep = eps.items.get(ns + "/" + sname);
        const rts = routesTo(routes.list_(), ns, sname);
        const users = ros.list_().filter((ro) => [get(ro, "spec.strategy.canary.stableService"), get(ro, "spec.strategy.canary.canaryService"),
          get(ro, "spec.strategy.blueGreen.activeService"), get(ro, "spec.strategy.blueGreen.previewService")].includes(sname));
        const addrs = (ep && ep.subsets || []).flatMap((ss) => (ss.addresses || []).map((a) => [a, true]).concat((ss.notReadyAddresses || []).map((a) => [a, false])));
        paint(html`<h1>Service ${sname}</h1>
          <p class="muted">${ns} · ${get(s, "spec.type") || "ClusterIP"} ${get(s, "spec.clusterIP") || ""} · ports ${(get(s, "spec.ports") || []).map((p) => (p.name ? p.name + " " : "") + p.port + "→" + (p.targetPort || p.port)).join(", ")}</p>
          <h2>Live traffic <span class="muted">${v.trafficNote}</span></h2>
          ${table(["Service", "Revision", "Requests/s", "Error rate", "P99 latency"], Array.from(v.traffic.entries()).sort().map(([key, h]) => ({
            cells: [key.split(" ")[0], key.split(" ")[1], spark(h.map((x) => x.rps), (x) => x.toFixed(1) + "/s"), spark(h.map((x) => x.err), (x) => (x * 100).toFixed(1) + "%"), spark(h.map((x) => x.p99), (x) => x.toFixed(1) + " ms")] })), { t: "traffic", empty: "No requests through the proxy yet." })}
          <h2>Rollouts steering it</h2>${table(["Rollout", "Canary weight", "Header routes", "Step"], users.map((ro) => ({
            href: href("rollout", [ns, name(ro)]),
            cells: [html`<a href="${href("rollout", [ns, name(ro)])}">${name(ro)}</a>`, weight(ro) + "%",
              (get(ro, "spec.strategy.canary.steps") || []).filter((st) => st.setHeaderRoute).slice(0, Math.max(0, get(ro, "status.currentStepIndex") || 0)).map((st) => stepText(st)).join("; "),
              (get(ro, "status.currentStepIndex") || 0) + "/" + (get(ro, "spec.strategy.canary.steps") || []).length] })), { t: "steering", empty: "No rollout uses this service." })}
          <h2>Routes</h2>${rts.length ? rts.map((rt) => html`<h3>HTTPRoute ${name(rt)}</h3>${table(["Matches", "Backends (weight)"], (get(rt, "spec.rules") || []).map((ru) => ({
            cells: [(ru.matches || []).map((m) => [get(m, "path.value") || "/"].concat((m.headers || []).map((hd) => hd.name + "=" + hd.value)).join(" ")).join(" | ") || "all",
              (ru.backendRefs || []).map((b) => b.name + " (" + (b.weight === undefined ? 1 : b.weight) + ")").join(", ")] })), { t: "route" })}`) : html`<p class="muted">No HTTPRoute sends traffic here.</p>`}
          <h2>Endpoints</h2>${table(["Address", "Pod", "Node", "Ready"], addrs.map(([a, ok]) => ({
            cells: [a.ip, get(a, "targetRef.name") || "", a.nodeName || "", ok ? "yes" : "no"] })), { t: "endpoints", empty: "No endpoints." })}`);
      };
    });
  }

  /* ---- autoscalers --------------------------------------------------- */
  function metricText(m, cur) {
    const t = m[m.type.charAt(0).toLowerCase() + m.type.slice(1)] || {};
    const c = cur ? cur[cur.type.charAt(0).toLowerCase() + cur.type.slice(1)] || {} : {};
    const nm = (t.name || get(t, "metric.name") || m.type);
    const tv = t.target || {}, cv = c.current || {};
    const val = (o) => o.averageUtilization !== undefined ? o.averageUtilization + "%" : o.averageValue || o.value || "?";
    return nm + " " + (cur ? val(cv) : "?") + " / " + val(tv);
  }
  function hpas(r) {
    startView("hpa", (v) => {
      const l = v.live(R.hpas, r.ns);
      v.render = () => {
        const rows = l.list_().filter(matcher(r.q)).sort((a, b) => byName(a, b)).map((h) => {
          const metrics = get(h, "spec.metrics") || [], cur = get(h, "status.currentMetrics") || [];
          const conds = (get(h, "status.conditions") || []).filter((c) => c.type === "AbleToScale" || c.type === "ScalingLimited" || c.type === "ScalingActive");
          return { cells: [name(h), nsOf(h), (get(h, "spec.scaleTargetRef.kind") || "") + "/" + (get(h, "spec.scaleTargetRef.name") || ""),
            (get(h, "spec.minReplicas") || 1) + "–" + get(h, "spec.maxReplicas"), (get(h, "status.currentReplicas") || 0) + " → " + (get(h, "status.desiredReplicas") || 0),
            metrics.map((m, i) => metricText(m, cur[i])).join("; "), ago(get(h, "status.lastScaleTime")),
            conds.map((c) => c.type + ": " + (c.message || c.reason || c.status)).join(" · ")] };
        });
        paint(html`<h1>Autoscalers</h1>${table(["HPA", "Namespace", "Target", "Min–max", "Replicas", "Metrics (current / target)", "Last scale", "Decision"], rows, { t: "hpas", empty: "No HorizontalPodAutoscalers." })}`);
      };
    });
  }

  /* ---- GitOps Applications ------------------------------------------ */
  const short = (rev) => (rev || "").slice(0, 8);
  function apps(r) {
    startView("apps", (v) => {
      const l = v.live(R.applications, r.ns);
      v.render = () => {
        const rows = l.list_().filter(matcher(r.q)).sort(byName).map((a) => {
          const target = href("app", [nsOf(a), name(a)]);
          return { href: target, cells: [html`<a href="${target}">${name(a)}</a>`, nsOf(a),
            badge(get(a, "status.sync.status") || "Unknown"), badge(get(a, "status.health.status") || "Unknown"),
            short(get(a, "status.sync.revision")), (get(a, "spec.source.repoURL") || "") + " " + (get(a, "spec.source.path") || ""),
            get(a, "status.operationState.phase") || "", ago(get(a, "status.operationState.finishedAt"))] };
        });
        paint(html`<h1>Applications</h1>${table(["Application", "Namespace", "Sync", "Health", "Revision", "Source", "Last operation", "Finished"], rows, { t: "apps", empty: "No Applications." })}`);
      };
    });
  }
  /* Line diff of two texts (longest common subsequence): [[" "|"-"|"+", line]]. */
  function lineDiff(a, b) {
    const x = a ? a.split("\n") : [], y = b ? b.split("\n") : [];
    const n = x.length, m = y.length, L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
      else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", x[i++]]);
      else out.push(["+", y[j++]]);
    }
    while (i < n) out.push(["-", x[i++]]);
    while (j < m) out.push(["+", y[j++]]);
    return out;
  }
  const pretty = (o) => (o === null || o === undefined ? "" : JSON.stringify(o, null, 2));
  function app(r) {
    const [ns, aname] = r.args;
    startView("app", (v) => {
      const l = v.live(R.applications, ns, "fieldSelector=metadata.name%3D" + encodeURIComponent(aname));
      v.allowed = false;
      V6.can("patch", R.applications, ns, "", aname).then((ok) => { v.allowed = ok; v.render(); });
      v.diff = null; v.diffFor = ""; v.error = "";
      const loadDiff = async (key) => {
        try {
          const d = await V6.get(V6.path(R.applications, ns, aname, "diff"));
          v.diff = (d.items || []).map((e) => ({ ref: [e.kind, e.namespace, e.name].filter(Boolean).join("/"),
            lines: lineDiff(pretty(e.live), pretty(e.target)).filter((x, k, all) => x[0] !== " " || all.slice(Math.max(0, k - 2), k + 3).some((y) => y[0] !== " ")) }))
            .filter((e) => e.lines.length);
        } catch (e) { v.diff = [{ ref: "diff", lines: [["!", e.message]] }]; }
        v.diffFor = key;
        v.render();
      };
      v.render = () => {
        const a = l.items.get(ns + "/" + aname);
        if (!a) { paint(html`<h1>Application ${aname}</h1><p class="muted">${l.ready ? "This Application does not exist." : "Loading…"}</p>`); return; }
        const key = (get(a, "status.sync.revision") || "") + "@" + a.metadata.resourceVersion;
        if (v.diffFor !== key && v.loading !== key) { v.loading = key; loadDiff(key); }
        const os = get(a, "status.operationState") || {};
        paint(html`<h1>Application ${aname} ${badge(get(a, "status.sync.status") || "Unknown")}${badge(get(a, "status.health.status") || "Unknown")}</h1>
          <p class="muted">${ns} · ${get(a, "spec.source.repoURL")} ${get(a, "spec.source.path") || ""} @ ${get(a, "spec.source.targetRevision") || "HEAD"} → ${short(get(a, "status.sync.revision"))}</p>
          <div class="actions"><button data-action="sync"${v.allowed ? "" : " disabled"} title="${v.allowed ? "" : "your identity may not do this"}">Sync</button>
            <span class="err" id="action-error" role="alert">${v.error}</span></div>
          <p>${os.phase ? html`Last operation: ${badge(os.phase)} ${os.message || ""} ${ago(os.finishedAt || os.startedAt)}` : "No operation yet."}</p>
          ${(get(a, "status.conditions") || []).map((c) => html`<p class="warn-t">${c.type}: ${c.message}</p>`)}
          <h2>Resources</h2>${table(["Kind", "Namespace", "Name", "Sync", "Health"], (get(a, "status.resources") || []).map((x) => ({
            cells: [x.kind, x.namespace || "", x.name, badge(x.status || ""), x.health ? badge(x.health.status) : ""] })), { t: "app-resources", empty: "No resources." })}
          <h2>Diff <span class="muted">live → git</span></h2>
          ${v.diff === null ? html`<p class="muted">Loading…</p>` : v.diff.length === 0 ? html`<p class="muted" data-t="no-diff">In sync: no difference.</p>` :
            v.diff.map((e) => html`<h3>${e.ref}</h3><pre class="diff" data-t="diff">${e.lines.map(([t, line]) => html`<span class="d${t === "+" ? "a" : t === "-" ? "r" : "c"}">${t} ${line}
</span>`)}</pre>`)}`);
      };
      v.act = async () => {
        v.error = "";
        try {
          await V6.mergePatch(V6.path(R.applications, ns, aname), { operation: { sync: { prune: false }, initiatedBy: { username: $("#who").textContent || "dashboard" } } });
        } catch (e) { v.error = "sync: " + e.message; }
        v.render();
      };
    });
  }

  /* ---- alerts and silences (alerts.v6.dev: Alertmanager's, through V6) -- */
  /* The API serves no watch (it asks Alertmanager on each call): the views
   * relist every 5 s while visible, one request per kind. */
  const ALERT_EVERY = 5000;
  const alertName = (a) => get(a, "labels.alertname") || name(a);
  const alertHref = (a) => href("alert", [nsOf(a) || "-", name(a)]);
  const labelChips = (ls) => Object.keys(ls || {}).sort().map((k) => html`<span class="chip">${k}=${ls[k]}</span>`);
  /* "2m before": where a change sits against the alert's start. */
  function before(t, at) {
    const d = Math.round((Date.parse(at) - Date.parse(t)) / 1000);
    if (isNaN(d)) return "";
    const a = Math.abs(d), s = a < 60 ? a + "s" : a < 3600 ? Math.round(a / 60) + "m" : Math.round(a / 3600) + "h";
    return d >= 0 ? s + " before" : s + " after";
  }
  const causeLine = (c, at) => c ? html`<span title="${c.detail}">${c.object} ${c.change} <span class="muted">(${before(c.time, at)})</span></span>` : raw("");
  function alertRows(list, causes) {
    return list.map((a) => ({ href: alertHref(a), cells: [html`<a href="${alertHref(a)}">${alertName(a)}</a>`,
      get(a, "labels.severity") || "", nsOf(a), a.target || "", badge(a.state), ago(a.startsAt), labelChips(a.labels),
      causes ? causeLine((causes.get(name(a)) || [])[0], a.startsAt) : ""] }));
  }
  const ALERT_COLS = ["Alert", "Severity", "Namespace", "Target", "State", "Since", "Labels", "Probable cause"];
  const byStart = (a, b) => (b.startsAt || "").localeCompare(a.startsAt || "") || (name(a) < name(b) ? -1 : 1);
  /* "alertname=X severity!=info job=~api.*" -> Alertmanager matchers. */
  function parseMatchers(text) {
    const out = [], re = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^\s,]*)/g;
    let m, rest = text;
    while ((m = re.exec(text))) {
      const v = m[3].startsWith('"') ? JSON.parse(m[3]) : m[3];
      out.push({ name: m[1], value: v, isRegex: m[2].includes("~"), isEqual: !m[2].startsWith("!") });
      rest = rest.replace(m[0], "");
    }
    if (rest.replace(/[\s,]/g, "")) throw new Error("matchers: \"" + rest.trim() + "\" is not NAME=VALUE (or !=, =~, !~)");
    if (!out.length) throw new Error("matchers: at least one NAME=VALUE is required");
    return out;
  }
  const matcherText = (m) => m.name + (m.isRegex ? (m.isEqual === false ? "!~" : "=~") : (m.isEqual === false ? "!=" : "=")) +
    (/[\s,"]/.test(m.value) || m.value === "" ? JSON.stringify(m.value) : m.value);
  /* A new silence for an alert: its name, namespace and the label naming
   * its target (pod=..., rollout=...), as specific as the alert. */
  function matchersOf(a) {
    const t = (a.target || "").split("/")[0], keys = ["alertname", "namespace", t === "job" ? "job_name" : t];
    return keys.filter((k, i) => k && keys.indexOf(k) === i && get(a, "labels." + k) !== undefined)
      .map((k) => matcherText({ name: k, value: a.labels[k] })).join(" ");
  }
  const noPerm = "your identity may not do this";
  const errAt = (v, key) => html`<span class="err" role="alert" data-err="${key}">${v.errors[key] || ""}</span>`;
  /* The silence form: matchers, duration, comment; v.form keeps what is typed. */
  function silenceForm(v, canCreate) {
    const f = v.form;
    return html`<form class="actions" data-action="silence" id="silence-form">
      <label>Matchers <input id="sf-matchers" data-f="matchers" size="40" value="${f.matchers || ""}" placeholder="alertname=HighErrorRate namespace=shop"></label>
      <label>for <select id="sf-duration" data-f="duration">${["30m", "1h", "2h", "6h", "1d", "7d"].map((d) => html`<option${d === (f.duration || "2h") ? " selected" : ""}>${d}</option>`)}</select></label>
      <label>Comment <input id="sf-comment" data-f="comment" size="30" value="${f.comment || ""}" placeholder="why (required)"></label>
      <button type="submit" id="sf-create"${canCreate ? "" : " disabled"} title="${canCreate ? "create the silence" : noPerm}">Silence</button>
      ${errAt(v, "silence")}</form>`;
  }
  async function createSilence(v) {
    const f = v.form;
    v.errors.silence = "";
    try {
      const body = { matchers: parseMatchers(f.matchers || ""), duration: f.duration || "2h", comment: (f.comment || "").trim() };
      const who = $("#who").textContent;
      if (who) body.createdBy = who;
      const r = await V6.req("POST", V6.path(R.silences), body);
      v.form = { duration: f.duration };
      v.created = get(r, "metadata.name") || "";
      v.lives.forEach((l) => l instanceof Follow && l.relist());
    } catch (e) { v.errors.silence = "silence: " + e.message; }
    v.render();
  }
  async function expireSilence(v, id) {
    v.errors["expire-" + id] = "";
    try {
      await V6.req("DELETE", V6.path(R.silences, "", id));
      v.lives.forEach((l) => l instanceof Follow && l.relist());
    } catch (e) { v.errors["expire-" + id] = "expire: " + e.message; }
    v.render();
  }
  function silenceTable(v, list, canExpire) {
    return table(["Silence", "Matchers", "State", "Ends", "Created by", "Comment", ""], list.map((x) => ({
      cells: [html`<code title="${name(x)}">${name(x).slice(0, 8)}</code>`, (x.matchers || []).map(matcherText).join(" "), badge(x.state),
        x.state === "expired" ? ago(x.endsAt) : html`<time datetime="${x.endsAt}" title="${new Date(x.endsAt).toString()}">${x.endsAt ? new Date(x.endsAt).toLocaleString() : ""}</time>`,
        x.createdBy, x.comment,
        html`<button data-action="expire" data-arg="${name(x)}"${canExpire && x.state !== "expired" ? "" : " disabled"} title="${!canExpire ? noPerm : x.state === "expired" ? "already expired" : "end the silence now"}">Expire</button>${errAt(v, "expire-" + name(x))}`] })),
    { t: "silences", empty: "No silences." });
  }
  /* Probable causes, fetched once per alert (GET alerts/FINGERPRINT adds
   * them) and kept while the alert keeps its start. */
  function causeLoader(v) {
    const causes = new Map(), asked = new Map();
    return { causes, load(list) {
      for (const a of list.slice(0, 50)) {
        const key = name(a) + "@" + a.startsAt;
        if (asked.get(name(a)) === key) continue;
        asked.set(name(a), key);
        V6.get(V6.path(R.alerts, nsOf(a), name(a))).then((l) => {
          causes.set(name(a), get(l, "items.0.probableCause") || []);
          v.render();
        }).catch(() => { asked.delete(name(a)); });
      }
    } };
  }
  function alerts(r) {
    startView("alerts", (v) => {
      const al = v.follow(R.alerts, r.ns, "", { every: ALERT_EVERY, quiet: true });
      const sl = v.follow(R.silences, "", "", { every: ALERT_EVERY, quiet: true });
      const cl = causeLoader(v);
      v.form = { duration: "2h" };
      v.allowed = { create: false, expire: false };
      Promise.all([V6.can("create", R.silences), V6.can("delete", R.silences)])
        .then(([c, d]) => { v.allowed = { create: c, expire: d }; v.render(); });
      v.render = () => {
        const list = al.list_().filter(matcher(r.q, alertName, (a) => a.labels || {})).sort(byStart);
        cl.load(list);
        const firing = list.filter((a) => a.state === "firing" || a.state === "pending");
        const quiet = list.filter((a) => a.state !== "firing" && a.state !== "pending");
        const sils = sl.list_().filter((x) => showAll.has("silences") || x.state !== "expired")
          .sort((a, b) => (a.state < b.state ? -1 : a.state > b.state ? 1 : (b.endsAt || "").localeCompare(a.endsAt || "")));
        const expired = sl.list_().length - sils.length;
        paint(html`<h1>Alerts</h1>
          ${al.error ? html`<p class="err" data-t="alerts-error">${al.error.message}</p>` : ""}
          <h2>Firing <span class="muted" data-t="firing-count">${firing.length}</span></h2>
          ${table(ALERT_COLS.concat([""]), alertRows(firing, cl.causes).map((row, i) => ({ href: row.href, cells: row.cells.concat([
            html`<button data-action="prefill" data-arg="${name(firing[i])}"${v.allowed.create ? "" : " disabled"} title="${v.allowed.create ? "silence this alert" : noPerm}">Silence…</button>`]) })),
          { t: "alerts", empty: al.ready ? (al.error ? "Alerts are not available." : "Nothing is firing.") : "Loading…" })}
          ${quiet.length ? html`<h2>Silenced or inhibited <span class="muted">${quiet.length}</span></h2>${table(ALERT_COLS, alertRows(quiet, cl.causes), { t: "quiet-alerts" })}` : ""}
          <h2>Silences</h2>${silenceForm(v, v.allowed.create)}
          ${sl.error ? html`<p class="err">${sl.error.message}</p>` : silenceTable(v, sils, v.allowed.expire)}
          ${expired && !showAll.has("silences") ? html`<button class="more" data-more="silences">Show ${expired} expired</button>` : ""}`);
      };
      v.act = (cmd, arg) => {
        if (cmd === "silence") return createSilence(v);
        if (cmd === "expire") return expireSilence(v, arg);
        if (cmd === "prefill") {
          const a = al.list_().find((x) => name(x) === arg);
          if (a) { v.form.matchers = matchersOf(a); v.errors.silence = ""; }
          v.render();
          const c = $("#sf-comment");
          if (c) c.focus();
        }
      };
    });
  }
  function alert(r) {
    const [ns0, fp] = r.args, ns = ns0 === "-" ? "" : ns0;
    startView("alert", (v) => {
      const one = v.follow(R.alerts, ns, "", { every: ALERT_EVERY, quiet: true, name: fp });
      const sl = v.follow(R.silences, "", "", { every: ALERT_EVERY, quiet: true });
      v.form = { duration: "2h" };
      v.allowed = { create: false, expire: false };
      Promise.all([V6.can("create", R.silences), V6.can("delete", R.silences)])
        .then(([c, d]) => { v.allowed = { create: c, expire: d }; v.render(); });
      v.render = () => {
        const a = one.list_()[0];
        if (!a) {
          paint(html`<h1>Alert ${fp}</h1><p class="${one.error && one.error.code !== 404 ? "err" : "muted"}">${!one.ready ? "Loading…" :
            one.error && one.error.code === 404 ? "This alert is not firing (any more)." : one.error ? one.error.message : ""}</p>`);
          return;
        }
        if (v.form.matchers === undefined) v.form.matchers = matchersOf(a);
        const ids = new Set(a.silencedBy || []);
        const causes = a.probableCause || [];
        paint(html`<h1>${alertName(a)} ${badge(a.state)}</h1>
          <p class="muted">${[nsOf(a), a.target, get(a, "labels.severity")].filter(Boolean).join(" · ")} · since ${ago(a.startsAt)}</p>
          ${get(a, "annotations.summary") || get(a, "annotations.description") ? html`<p>${get(a, "annotations.summary") || ""} ${get(a, "annotations.description") || ""}</p>` : ""}
          <h2>Labels</h2><p data-t="labels">${labelChips(a.labels)}</p>
          <h2>Probable cause <span class="muted">the changes V6 made to what it is about, nearest first</span></h2>
          ${table(["When", "Object", "Change", "Detail", "See"], causes.map((c) => ({
            cells: [html`${ago(c.time)} <span class="muted">(${before(c.time, a.startsAt)})</span>`, c.object, c.change, c.detail, html`<code>${c.ref}</code>`] })),
          { t: "causes", empty: "No change to this alert's workloads in the hour before it started." })}
          <h2>Annotations</h2>${table(["Name", "Value"], Object.keys(a.annotations || {}).sort().map((k) => ({ cells: [k, a.annotations[k]] })), { t: "annotations", empty: "None." })}
          <h2>Silences</h2>${silenceForm(v, v.allowed.create)}
          ${silenceTable(v, sl.list_().filter((x) => ids.has(name(x))), v.allowed.expire)}
          ${a.notifications ? html`<h2>Notifications</h2><pre class="diff">${JSON.stringify(a.notifications, null, 2)}</pre>` : ""}`);
      };
      v.act = (cmd, arg) => (cmd === "silence" ? createSilence(v) : cmd === "expire" ? expireSilence(v, arg) : null);
    });
  }

  /* ---- images (images.v6.dev: the node's store) ---------------------- */
  /* Docker's normalisation (image_ref.c): nginx = docker.io/library/nginx:latest. */
  function normRef(s) {
    if (!s) return "";
    let [n, dig] = s.split("@");
    const first = n.split("/")[0];
    if (!(n.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")))
      n = "docker.io/" + (n.includes("/") ? "" : "library/") + n;
    if (!dig && !/:[^/]*$/.test(n)) n += ":latest";
    return n + (dig ? "@" + dig : "");
  }
  function bytes(n) {
    const u = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    for (n = n || 0; n >= 1000 && i < u.length - 1; i++) n /= 1000;
    return (i ? n.toPrecision(3) : String(n)) + " " + u[i];
  }
  /* The pods whose containers run an image: by the imageID the node
   * reported, else by the normalised reference in the spec. */
  function imageUsers(img, pods) {
    return pods.filter((p) => (get(p, "status.containerStatuses") || []).some((c) => c.imageID && c.imageID === img.imageID) ||
      (get(p, "spec.containers") || []).concat(get(p, "spec.initContainers") || []).some((c) => normRef(c.image) === img.ref));
  }
  function imagesView(r) {
    startView("images", (v) => {
      const pods = v.live(R.pods, r.ns);
      const imgs = v.follow(R.images, "", "", { every: 30000, quiet: true });
      v.onLive = (l) => { if (l === pods) imgs.poke(); };
      v.form = {};
      v.busy = "";
      v.allowed = { pull: false, remove: false };
      Promise.all([V6.can("create", R.images), V6.can("delete", R.images)])
        .then(([c, d]) => { v.allowed = { pull: c, remove: d }; v.render(); });
      v.render = () => {
        const pl = pods.list_();
        const list = imgs.list_().filter((i) => { const q = r.q.trim().toLowerCase(); return !q || i.ref.toLowerCase().includes(q); })
          .sort((a, b) => (a.ref < b.ref ? -1 : 1));
        const total = list.reduce((s, i) => s + (i.size || 0), 0);
        paint(html`<h1>Images <span class="muted" data-t="image-total">${list.length} · ${bytes(total)}</span></h1>
          <form class="actions" data-action="pull" id="pull-form"><label>Image <input id="pull-ref" data-f="ref" size="50" value="${v.form.ref || ""}" placeholder="registry.example:5000/shop/web:1.2"></label>
            <button type="submit" id="pull"${v.allowed.pull && !v.busy ? "" : " disabled"} title="${v.allowed.pull ? "pull (always, as imagePullPolicy: Always)" : noPerm}">Pull</button>
            <span class="muted" data-t="busy">${v.busy}</span>${errAt(v, "pull")}</form>
          ${imgs.error ? html`<p class="err" data-t="images-error">${imgs.error.message}</p>` : ""}
          ${table(["Image", "Digest", "Size", "Used by", "Last used", "Pulled", ""], list.map((i) => {
            const users = imageUsers(i, pl);
            return { cells: [i.ref, html`<code title="${i.digest}">${(i.digest || "").replace(/^sha256:/, "").slice(0, 12)}</code>`, bytes(i.size),
              users.length ? users.sort(byName).map((p) => html`<a class="pod-chip" href="${href("pod", [nsOf(p), name(p)])}">${nsOf(p)}/${name(p)}</a>`) : html`<span class="muted">no pod</span>`,
              ago(i.lastUsed), ago(i.pulled),
              html`<button data-action="remove" data-arg="${i.ref}"${v.allowed.remove && !users.length ? "" : " disabled"} title="${!v.allowed.remove ? noPerm : users.length ? "in use by pod " + name(users[0]) : "remove from the node"}">Remove</button>${errAt(v, "remove-" + i.ref)}`] };
          }), { t: "images", empty: imgs.ready ? "No images in the node's store." : "Loading…" })}`);
      };
      v.act = async (cmd, arg) => {
        const key = cmd === "pull" ? "pull" : "remove-" + arg;
        v.errors[key] = "";
        try {
          if (cmd === "pull") {
            const ref = (v.form.ref || "").trim();
            if (!ref) throw new Error("an image reference is required");
            v.busy = "pulling " + ref + "…";
            v.render();
            await V6.req("POST", V6.path(R.images), { ref });
            v.form.ref = "";
          } else {
            await V6.req("DELETE", V6.path(R.images) + "?ref=" + encodeURIComponent(arg));
          }
        } catch (e) { v.errors[key] = (cmd === "pull" ? "pull: " : "remove: ") + e.message; }
        v.busy = "";
        imgs.relist();
        v.render();
      };
    });
  }

  const VIEWS = { overview, workloads, pod, rollout, services, service, hpa: hpas, apps, app, alerts, alert, images: imagesView };

  /* ---- shell: login, router, namespace selector, keys ---------------- */
  function route() {
    const r = parseHash();
    const fn = VIEWS[r.view] || overview;
    document.querySelectorAll("nav a[data-view]").forEach((a) => {
      a.classList.toggle("on", a.dataset.view === r.view);
      a.href = href(a.dataset.view, [], { q: "" });
    });
    $("#ns").value = r.ns;
    if (document.activeElement !== $("#q")) $("#q").value = r.q;
    fn(r);
  }
  async function loadNamespaces() {
    try {
      const l = await V6.get(V6.path(R.namespaces));
      const cur = parseHash().ns;
      $("#ns").innerHTML = String(html`<option value="">all namespaces</option>${l.items.map((n) => html`<option${name(n) === cur ? " selected" : ""}>${name(n)}</option>`)}`);
      return true;
    } catch (e) {
      if (e.code === 401) return false;
      throw e;
    }
  }
  let needsLogin = false;	/* the server refused us without a token */
  function showLogin(msg) {
    if (view) { view.stop(); view = null; }
    $("#app").hidden = true;
    $("#login").hidden = false;
    $("#login-cancel").hidden = needsLogin || !!V6.token();
    $("#login-error").textContent = msg || "";
    $("#token").value = "";
    $("#token").focus();
  }
  /* Who the server says we are (SelfSubjectReview); nothing shown when it
   * does not serve the review. */
  async function whoami() {
    try {
      const r = await V6.req("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
      $("#who").textContent = get(r, "status.userInfo.username") || "";
    } catch (e) { $("#who").textContent = ""; }
  }
  async function enter() {
    let ok;
    try { ok = await loadNamespaces(); } catch (e) { showLogin(e.message); return; }
    if (!ok) {
      const refused = !!V6.token();
      V6.setToken("");
      needsLogin = !refused || needsLogin;
      showLogin(refused ? "The server refused this token." : "");
      return;
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = !V6.token();
    $("#signin").hidden = !!V6.token();
    whoami();
    route();
  }
  /* A 401 during a session: the token expired or was revoked. */
  V6.onUnauthorized = () => {
    if ($("#app").hidden) return;	/* enter() handles the sign-in's own 401 */
    V6.setToken("");
    needsLogin = true;
    showLogin("Your session ended: sign in again.");
  };

  function setTheme(t) {
    document.documentElement.dataset.theme = t;
    localStorage.setItem("v6.theme", t);
  }

  function rows() { return Array.from(main().querySelectorAll("tr[data-href]")); }
  function moveSel(d) {
    const rs = rows();
    if (!rs.length) return;
    let i = rs.findIndex((x) => x.classList.contains("sel"));
    if (i >= 0) rs[i].classList.remove("sel");
    i = Math.max(0, Math.min(rs.length - 1, i + d));
    rs[i].classList.add("sel");
    rs[i].scrollIntoView({ block: "nearest" });
  }
  let pendingG = false;
  const GO = { o: "overview", w: "workloads", s: "services", h: "hpa", a: "apps", l: "alerts", i: "images" };
  function onKey(e) {
    const t = e.target;
    if (t.matches("input, select, textarea")) { if (e.key === "Escape") t.blur(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (pendingG) { pendingG = false; if (GO[e.key]) { location.hash = href(GO[e.key], [], { q: "" }); e.preventDefault(); } return; }
    const sel = main().querySelector("tr.sel");
    switch (e.key) {
    case "g": pendingG = true; break;
    case "/": $("#q").focus(); e.preventDefault(); break;
    case "j": case "ArrowDown": moveSel(1); e.preventDefault(); break;
    case "k": case "ArrowUp": moveSel(-1); e.preventDefault(); break;
    case "Enter": if (sel) location.hash = sel.dataset.href; break;
    case "Backspace": history.back(); break;
    case "t": setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"); break;
    case "?": $("#help").hidden = !$("#help").hidden; break;
    default: return;
    }
  }

  function init() {
    setTheme(localStorage.getItem("v6.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
    $("#login").addEventListener("submit", (e) => {
      e.preventDefault();
      V6.setToken($("#token").value.trim());
      V6.forgetReviews();
      enter();
    });
    $("#logout").addEventListener("click", () => { V6.setToken(""); V6.forgetReviews(); enter(); });
    $("#signin").addEventListener("click", () => showLogin(""));
    $("#login-cancel").addEventListener("click", () => enter());
    $("#theme").addEventListener("click", () => setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
    $("#ns").addEventListener("change", () => { const r = parseHash(); location.hash = href(r.view, r.args, { ns: $("#ns").value }); });
    $("#ns").addEventListener("focus", () => loadNamespaces().catch(showError));
    let qt = null;
    $("#q").addEventListener("input", () => {
      clearTimeout(qt);
      qt = setTimeout(() => { const r = parseHash(); history.replaceState(null, "", href(r.view, r.args, { q: $("#q").value })); route(); }, 200);
    });
    main().addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action]");
      if (b && view && view.act) { if (b.dataset.action !== "prefill") b.disabled = true; view.act(b.dataset.action, b.dataset.arg); return; }
      const m = e.target.closest("button[data-more]");
      if (m) { showAll.add(m.dataset.more); view.render(); return; }
      const tr = e.target.closest("tr[data-href]");
      if (tr && !e.target.closest("a")) location.hash = tr.dataset.href;
    });
    main().addEventListener("submit", (e) => {
      const f = e.target.closest("form[data-action]");
      e.preventDefault();
      if (!f || !view || !view.act) return;
      const b = f.querySelector("button[type=submit]");
      if (b) b.disabled = true;
      view.act(f.dataset.action);
    });
    /* What is typed in a view's form survives its live repaints. */
    main().addEventListener("input", (e) => { const k = e.target.dataset.f; if (k && view && view.form) view.form[k] = e.target.value; });
    main().addEventListener("change", (e) => {
      const k = e.target.dataset.f;
      if (k && view && view.form) { view.form[k] = e.target.value; return; }
      if (!view || view.name !== "pod") return;
      const r = parseHash();
      if (e.target.id === "log-container") view.log.container = e.target.value;
      else if (e.target.id === "log-previous") view.log.previous = e.target.checked;
      else if (e.target.id === "log-follow") view.log.follow = e.target.checked;
      else return;
      startLog(view, r.args[0], r.args[1]);
    });
    document.addEventListener("keydown", onKey);
    document.addEventListener("visibilitychange", () => {
      if (!view) return;
      const hidden = document.visibilityState === "hidden";
      view.lives.forEach((l) => (hidden ? l.pause() : l.resume()));
    });
    window.addEventListener("hashchange", () => { showAll.clear(); route(); });
    enter();
  }
  init();
})();
