// The operators' console. No framework, no build step. Every value from the API is put on the page
// with textContent (never innerHTML), so carrier text stays text.
//
// Authentication: the operator's key lives in sessionStorage (this tab only) and goes out as a
// bearer header on fetch. EventSource cannot send headers, so the live feed opens with a short-lived
// stream token from POST /v1/alerts/stream-token; the key itself never appears in a URL. A stream
// ends when its token does; the page then fetches a new token and resumes from the last event id.
"use strict";

(() => {
  const STORE = "throughline.operatorKey";
  const main = document.getElementById("main");
  const API = main.dataset.api;
  const PAGE = main.dataset.trackingPage;
  const $ = (id) => document.getElementById(id);

  const alerts = new Map(); // id -> alert (the newest version seen)
  let key = sessionStorage.getItem(STORE);
  let stream = null;
  let lastEventId = "";
  let retry = null;
  let countsTimer = null;
  let nextCursor = null;
  let stopped = true;
  let healthTimer = null;
  let backoff = 1000;

  // ---- small DOM helpers -------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function badge(kind, value) {
    return el("span", { class: `badge ${kind}-${value}` }, value);
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 360) / 10} h`;
    return `${Math.round(s / 8640) / 10} d`;
  }
  function when(iso) {
    if (!iso) return el("span", {}, "–");
    const d = new Date(iso);
    return el("time", { datetime: iso }, d.toLocaleString(undefined, {
      dateStyle: "medium", timeStyle: "short",
    }));
  }
  function announce(text) {
    $("announce").textContent = text;
  }
  function setLive(state, text) {
    $("live").dataset.state = state;
    $("live").textContent = text;
  }

  // ---- API -----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(API + path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      credentials: "omit",
    });
    if (!resp.ok) {
      let detail = `HTTP ${resp.status}`;
      try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new ApiError(resp.status, detail);
    }
    return resp.json();
  }

  // ---- filters -------------------------------------------------------------------------------
  function filters() {
    const form = new FormData($("filters"));
    const f = {};
    for (const name of ["state", "rule", "carrier", "lane"]) {
      const v = String(form.get(name) || "").trim();
      if (v) f[name] = v;
    }
    return f;
  }
  function query(f, extra) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...f, ...extra })) {
      if (k === "state" && v === "unresolved") {
        for (const s of ["open", "acknowledged", "snoozed"]) q.append("state", s);
      } else if (v !== null && v !== undefined && v !== "") q.append(k, v);
    }
    return q.toString();
  }
  function matches(alert, f) {
    if (f.state === "unresolved" ? alert.state === "resolved" : f.state && alert.state !== f.state) return false;
    if (f.rule && alert.rule !== f.rule) return false;
    if (f.carrier && alert.carrier !== f.carrier.toLowerCase()) return false;
    if (f.lane && alert.lane !== f.lane.toUpperCase()) return false;
    return true;
  }

  // ---- the feed ------------------------------------------------------------------------------
  function subject(a) {
    if (a.tracking_number) {
      const cell = el("span", {}, el("span", { class: "mono" }, a.tracking_number));
      if (a.carrier) cell.append(" ", el("span", { class: "muted" }, a.carrier));
      return cell;
    }
    const cell = el("span", {}, a.carrier ? `carrier ${a.carrier}` : "–");
    if (a.carrier_wide) cell.append(" ", el("span", { class: "badge carrier-wide" }, "carrier-wide"));
    return cell;
  }
  function quietFor(a) {
    if (!a.silent_since) return null;
    const end = a.resolved_at ? new Date(a.resolved_at) : new Date();
    return (end - new Date(a.silent_since)) / 1000;
  }
  function actions(a) {
    const box = el("div", { class: "actions" });
    if (a.carrier_wide) {
      // Every tenant's at once: the platform manages it and the scan resolves it.
      box.append(el("span", { class: "muted" }, a.state === "resolved"
        ? "resolved by itself" : "resolves by itself when the carrier recovers"));
      return box;
    }
    const label = a.tracking_number || a.carrier || a.id;
    if (a.state === "open" || a.state === "snoozed") {
      const ack = el("button", { type: "button", "aria-label": `Acknowledge the alert on ${label}` }, "Acknowledge");
      ack.addEventListener("click", () => act(a.id, "acknowledge", {}, ack));
      box.append(ack);
    }
    if (a.state !== "resolved") {
      const pick = el("select", { "aria-label": `Snooze the alert on ${label} for` },
        el("option", { value: "3600" }, "1 h"), el("option", { value: "14400" }, "4 h"),
        el("option", { value: "86400" }, "24 h"), el("option", { value: "259200" }, "3 d"));
      const snooze = el("button", { type: "button", class: "secondary", "aria-label": `Snooze the alert on ${label}` }, "Snooze");
      snooze.addEventListener("click", () => act(a.id, "snooze", { duration_s: Number(pick.value) }, snooze));
      const resolve = el("button", { type: "button", class: "secondary", "aria-label": `Resolve the alert on ${label}` }, "Resolve");
      resolve.addEventListener("click", () => act(a.id, "resolve", {}, resolve));
      box.append(pick, snooze, resolve);
    }
    if (a.tracking_number) {
      const show = el("button", { type: "button", class: "secondary", "aria-label": `Show the timeline of ${a.tracking_number}` }, "Timeline");
      show.addEventListener("click", () => drill(a.tracking_number));
      box.append(show);
    }
    return box;
  }
  function row(a) {
    const state = el("td", {}, badge("state", a.state));
    if (a.state === "snoozed" && a.snoozed_until) state.append(" until ", when(a.snoozed_until));
    return el("tr", { "data-alert-id": a.id, "data-state": a.state, "data-carrier-wide": a.carrier_wide ? "true" : null },
      el("td", {}, when(a.opened_at)),
      el("td", { class: "rule" }, el("span", { class: "mono" }, a.rule)),
      el("td", {}, badge("sev", a.severity)),
      el("td", {}, subject(a)),
      el("td", {}, a.lane || "–"),
      el("td", { class: "num" }, duration(quietFor(a))),
      state,
      el("td", {}, actions(a)));
  }
  function render(a, fresh) {
    const body = $("alerts");
    const existing = body.querySelector(`tr[data-alert-id="${CSS.escape(a.id)}"]`);
    if (!matches(a, filters())) {
      if (existing) existing.remove();
    } else {
      const tr = row(a);
      if (fresh) tr.classList.add("fresh");
      if (existing) existing.replaceWith(tr);
      else body.prepend(tr);
    }
    $("feed-empty").hidden = body.rows.length > 0;
  }
  function upsert(a) {
    const known = alerts.get(a.id);
    if (known && known.updated_at > a.updated_at) return null; // an older repeat
    alerts.set(a.id, a);
    return known || null;
  }
  async function loadAlerts(more) {
    const f = filters();
    const page = await api(`/alerts?${query(f, { limit: 50, cursor: more ? nextCursor : null })}`);
    if (!more) {
      $("alerts").replaceChildren();
      if (!lastEventId) lastEventId = page.stream_cursor || "";
    }
    for (const a of page.data) {
      upsert(a);
      const tr = row(alerts.get(a.id));
      $("alerts").append(tr);
    }
    nextCursor = page.next_cursor;
    $("more").hidden = !nextCursor;
    $("feed-empty").hidden = $("alerts").rows.length > 0;
  }
  async function act(id, action, body, button) {
    button.disabled = true;
    try {
      const a = await api(`/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST", body });
      upsert(a);
      render(a, false);
      announce(`Alert ${action === "acknowledge" ? "acknowledged" : action === "snooze" ? "snoozed" : "resolved"}.`);
      scheduleCounts();
    } catch (e) {
      button.disabled = false;
      announce(`Could not ${action} the alert: ${e.message}`);
      if (e.status === 401 || e.status === 403) signOut(e.message);
    }
  }

  // ---- counts and health ---------------------------------------------------------------------
  function fillCounts(id, rows) {
    $(id).replaceChildren(...(rows.length ? rows.map((r) => el("tr", {},
      el("td", {}, r.key || "unknown"), el("td", { class: "num" }, r.count))) :
      [el("tr", {}, el("td", { colspan: "2", class: "muted" }, "none"))]));
  }
  async function loadCounts() {
    const c = await api("/alerts/counts");
    $("total").textContent = c.carrier_wide ? `(${c.total}, ${c.carrier_wide} carrier-wide)` : `(${c.total})`;
    fillCounts("by-rule", c.by_rule);
    fillCounts("by-carrier", c.by_carrier);
    fillCounts("by-lane", c.by_lane);
  }
  function scheduleCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(() => loadCounts().catch(() => {}), 300);
  }
  async function loadHealth() {
    const h = await api("/carriers/health");
    const rows = h.data.map((c) => el("tr", { "data-carrier": c.carrier },
      el("th", { scope: "row" }, c.carrier),
      el("td", {}, badge("health", c.health)),
      el("td", { class: "num" }, c.polls),
      el("td", { class: "num" }, c.polls ? `${Math.round(c.error_rate * 1000) / 10} %` : "–"),
      el("td", { class: "num" }, c.mean_latency_ms === null ? "–" : `${Math.round(c.mean_latency_ms)} ms`),
      el("td", {}, when(c.last_ok_at))));
    $("health").replaceChildren(...rows);
    $("health-empty").hidden = rows.length > 0;
  }

  // ---- drill-down into a shipment's timeline (the public tracking endpoint: no personal data) --
  async function drill(number) {
    const section = $("drill");
    section.hidden = false;
    $("drill-heading").textContent = `Timeline of ${number}`;
    $("drill-summary").textContent = "Loading…";
    $("drill-events").replaceChildren();
    $("drill-page").href = `${PAGE}/${encodeURIComponent(number)}`;
    section.focus();
    try {
      const resp = await fetch(`${API}/tracking/${encodeURIComponent(number)}`, { credentials: "omit" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const t = await resp.json();
      $("drill-summary").textContent = `Status: ${t.status}${t.substatus ? ` (${t.substatus})` : ""}. ${t.next_step}`;
      const items = [];
      for (const m of t.modules) {
        for (const e of m.events) {
          const place = e.location ? [e.location.city, e.location.country].filter(Boolean).join(", ") : "";
          items.push(el("li", {},
            el("div", { class: "when" }, e.occurred_at_local || "time unknown", ` · ${m.module} · ${e.carrier}`),
            el("div", {}, e.description), place ? el("div", { class: "muted" }, place) : null));
        }
      }
      $("drill-events").replaceChildren(...(items.length ? items : [el("li", {}, "No scans yet.")]));
    } catch (e) {
      $("drill-summary").textContent = `Could not load the timeline: ${e.message}`;
    }
  }

  // ---- the live stream -----------------------------------------------------------------------
  function onAlert(event) {
    lastEventId = event.lastEventId || lastEventId;
    let a;
    try { a = JSON.parse(event.data); } catch (e) { return; }
    const before = upsert(a);
    if (alerts.get(a.id) !== a) return;
    render(a, true);
    if (!before) announce(`New alert: ${a.rule} on ${a.tracking_number || a.carrier || "a shipment"}.`);
    scheduleCounts();
  }
  async function openStream() {
    clearTimeout(retry);
    if (stopped) return;
    try {
      const t = await api("/alerts/stream-token", { method: "POST" });
      if (stopped) return;
      const q = new URLSearchParams({ token: t.token });
      if (lastEventId) q.set("last_event_id", lastEventId);
      const source = new EventSource(`${API}/alerts/stream?${q}`);
      stream = source;
      source.addEventListener("alert", onAlert);
      source.onopen = () => { backoff = 1000; setLive("live", "Live"); };
      source.onerror = () => {
        // The stream ended (its token expired, the server restarted, the network dropped).
        // EventSource would retry with the same, possibly expired, token: reconnect ourselves
        // with a new one instead, resuming after the last event we got.
        source.close();
        if (stream !== source) return;
        reconnect();
      };
    } catch (e) {
      if (e.status === 401 || e.status === 403) return signOut(e.message);
      reconnect();
    }
  }
  function reconnect() {
    setLive("down", "Reconnecting…");
    clearTimeout(retry);
    retry = setTimeout(openStream, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }
  function closeStream() {
    clearTimeout(retry);
    if (stream) stream.close();
    stream = null;
  }

  // ---- sign in and out -----------------------------------------------------------------------
  async function start() {
    stopped = false;
    $("key-error").textContent = "";
    try {
      await loadAlerts(false);
      await Promise.all([loadCounts(), loadHealth()]);
    } catch (e) {
      return signOut(e.status === 403 || e.status === 401 ? e.message : `Could not load alerts: ${e.message}`);
    }
    $("signin").hidden = true;
    $("console").hidden = false;
    $("who").textContent = `Signed in with key ${key.split("_").slice(0, 2).join("_")}_…`;
    openStream();
    clearInterval(healthTimer);
    healthTimer = setInterval(() => loadHealth().catch(() => {}), 30000);
  }
  function signOut(message) {
    stopped = true;
    closeStream();
    clearInterval(healthTimer);
    key = null;
    sessionStorage.removeItem(STORE);
    alerts.clear();
    lastEventId = "";
    $("console").hidden = true;
    $("signin").hidden = false;
    $("key-error").textContent = message || "";
    $("api-key").setAttribute("aria-invalid", message ? "true" : "false");
    setLive("off", "Not connected");
    $("api-key").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    key = $("api-key").value.trim();
    $("api-key").value = "";
    sessionStorage.setItem(STORE, key);
    start();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAlerts(false).catch((e) => announce(`Could not load alerts: ${e.message}`));
  });
  $("more").addEventListener("click", () => {
    loadAlerts(true).catch((e) => announce(`Could not load alerts: ${e.message}`));
  });
  window.addEventListener("pagehide", closeStream);
  if (key) start();
})();
