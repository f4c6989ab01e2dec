// obdgw console: a small single-page app over the daemon's REST API (/api/v1) and its event
// stream. No framework, no outside hosts: everything is served by the gateway itself.
// Owner data (name, phone) is shown only on a work order's own page, when the API returns it.
"use strict";

const API = "/api/v1";
const state = {
  lang: localStorage.getItem("obdgw.lang") === "en" ? "en" : "zh",
  token: localStorage.getItem("obdgw.token") || "",
  dtc: {},          // code → {zh, en} from /dtc.json
  labels: null,     // {monitors, pids} → {zh, en} from /labels.json
  bay: null,        // the bay shown on the bay page (for the clear dialog)
  clearID: "",      // request id of the open clear dialog: one id per confirmation
  settled: {},      // order id → warnings returned by its settlement, shown after the reload
  ordersFilter: "",
  selftest: {},     // bay → {method, order, running, progress, result, error, verdict}: see renderSelfTest
  ambiguous: {},    // bay → {scan, reason, candidates}: a scan that matched several open orders
  live: {},         // bay → last live values, kept across re-renders (language switch, new scan)
  keepFlash: false, // the next navigation keeps the message (it was said just before it)
};

// ---- helpers ---------------------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
function t(key) { return (I18N[state.lang] && I18N[state.lang][key]) || I18N.zh[key] || key; }
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
// h is a tagged template that escapes every interpolated value unless it was wrapped by raw().
function h(strings, ...vals) {
  return strings.reduce((out, s, i) => out + s + (i < vals.length ? (vals[i] && vals[i].__html !== undefined ? vals[i].__html : esc(vals[i])) : ""), "");
}
const raw = html => ({ __html: html });
const join = parts => raw(parts.join(""));
const enc = encodeURIComponent;
function flash(msg, kind) {
  const f = $("#flash");
  f.textContent = msg || ""; f.className = kind || ""; f.hidden = !msg;
  if (msg && kind === "info") setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 4000);
}
function translatePage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  $$("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  $("#lang").lang = state.lang === "zh" ? "en" : "zh-CN";
}
function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}
// A fresh id for a request that must run at most once. crypto.randomUUID needs a secure
// context, which a tablet reaching the gateway by its LAN address over http is not.
function requestID() {
  if (crypto.randomUUID) { try { return crypto.randomUUID(); } catch (e) { /* fall through */ } }
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
}

class APIError extends Error {
  constructor(status, body) { super(body.error || ("HTTP " + status)); this.status = status; this.field = body.field || ""; this.body = body; }
}
function authHeaders() { return state.token ? { Authorization: "Bearer " + state.token } : {}; }
async function api(method, path, body) {
  const opts = { method, headers: authHeaders() };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  let resp;
  try { resp = await fetch(API + path, opts); } catch (e) { throw new APIError(0, { error: t("err.network") }); }
  const text = await resp.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { error: text }; }
  if (resp.status === 401) { showLogin(t("err.auth")); throw new APIError(401, data); }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}
const items = x => (x && Array.isArray(x.items)) ? x.items : [];

// Field names in API errors are the work-order JSON names; say them in words as well.
const fieldKeys = {
  plate: "order.plate", plate_color: "order.platecolor", vin: "order.vin", mileage_km: "order.mileage",
  fault_description: "order.fault", bay: "order.bay", test_no: "order.testno", owner_name: "order.owner",
  owner_phone: "order.phone", costlistcode: "order.costlistcode", settle_date: "order.settledate",
  repair_date: "order.repairdate", items: "order.items", parts: "order.parts",
  method: "selftest.method", rated_rpm: "selftest.rated", limit_set: "selftest.limitset",
  fuel: "selftest.fuel", gross_mass_kg: "selftest.mass", lambda_judged: "selftest.lambdajudged",
  no_selftest_reason: "order.noselftest",
};
function fieldLabel(f) {
  const base = String(f || "").replace(/\[.*$/, "");
  return fieldKeys[base] ? `${t(fieldKeys[base])} (${f})` : f;
}
// problemParts says one validator problem in the page language: the validator's codes have
// Chinese texts here; its message (English, with the numbers) stays as the detail.
function problemParts(p) {
  const zh = state.lang === "zh" && p.code && I18N.zh["problem." + p.code];
  return { head: (p.field ? fieldLabel(p.field) + ": " : "") + (zh || p.message || ""), detail: zh ? p.message : "" };
}
const problemHTML = p => { const x = problemParts(p); return h`${x.head}${raw(x.detail ? h` <span class="muted small">${x.detail}</span>` : "")}`; };
function problemsOf(e) {
  return (e.body && Array.isArray(e.body.problems) && e.body.problems.length) ? e.body.problems : [{ field: e.field, message: e.message, code: e.body && e.body.code }];
}
// problemLines lists what an error says, one line per field.
function problemLines(e) { return problemsOf(e).map(p => { const x = problemParts(p); return x.head + (x.detail ? " (" + x.detail + ")" : ""); }); }
// showFormError puts an API error into a form's error box and marks the fields it names.
function showFormError(form, e) {
  if (e.status === 401) return;
  $$("[aria-invalid]").forEach(el => el.removeAttribute("aria-invalid"));
  const box = form && $("[data-role=errors]", form.closest("section") || form);
  if (box) {
    box.innerHTML = h`<ul>${join(problemsOf(e).map(p => h`<li>${raw(problemHTML(p))}</li>`))}</ul>`;
    const ws = (e.body && e.body.warnings) || [];
    if (ws.length) box.innerHTML += h`<div class="warnings"><b>${t("order.warnings")}</b><ul>${join(ws.map(w => h`<li>${raw(problemHTML(w))}</li>`))}</ul></div>`;
  } else flash(problemLines(e).join("; "));
  const fields = (e.body && e.body.problems ? e.body.problems.map(p => p.field) : [e.field]).filter(Boolean);
  let first = null;
  for (const f of fields) {
    const el = document.querySelector(`[name="${CSS.escape(f)}"]`);
    if (el) { el.setAttribute("aria-invalid", "true"); first = first || el; }
  }
  if (first) first.focus();
}
function showError(e) { if (e.status !== 401) flash(problemLines(e).join("; ")); }

// ---- login -----------------------------------------------------------------------------
function showLogin(msg) {
  stopStreams();
  if (uplinkTimer) { clearInterval(uplinkTimer); uplinkTimer = null; }
  document.body.dataset.view = "login";
  const v = $("#view");
  v.innerHTML = $("#login-tpl").innerHTML;
  translatePage();
  flash(msg || "");
  $("#token").focus();
  $("#login").addEventListener("submit", async ev => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    try { await api("GET", "/bays"); } catch (e) { if (e.status !== 401) showError(e); state.token = ""; return; }
    localStorage.setItem("obdgw.token", state.token);
    await loadRole();
    flash("");
    if (!location.hash || location.hash === "#/login") location.hash = "#/bays"; else route();
    start();
  });
}

// ---- bays ------------------------------------------------------------------------------
const stateClass = s => ({ ready: "ok", scanning: "warn", clearing: "warn", connecting: "warn", ignition_off: "warn", fault: "bad" }[s] || "");
const statePill = s => h`<span class="pill ${stateClass(s)}" data-role="state" data-state="${s}">${t("bay.state." + s)}</span>`;

// A bay without its adapter can neither scan nor clear: the buttons wait for it, and say why.
const noAdapter = st => st === "absent";
const noAdapterHint = st => noAdapter(st) ? h`<p class="warnings" data-role="no-adapter">${t("bay.noadapter")}</p>` : "";
function setAdapterPresence(card, st) {
  $$("button[data-act=scan], button[data-act=clear]", card).forEach(b => { b.disabled = noAdapter(st); });
  const hint = $("[data-role=no-adapter]", card);
  if (hint && !noAdapter(st)) hint.remove();
  else if (!hint && noAdapter(st)) { const row = $("button[data-act=scan]", card); if (row) row.parentElement.insertAdjacentHTML("beforebegin", noAdapterHint(st)); }
}
// Scan notes the gateway writes are translated; a note a person typed is shown as typed.
const scanNotes = { "automatic scan on connection": "scan.note.auto", "before clearing fault codes": "scan.note.before", "after clearing fault codes": "scan.note.after" };
const noteText = n => scanNotes[n] ? t(scanNotes[n]) : (n || "");

async function scanNow(bay, btn) {
  if (btn) btn.disabled = true;
  try { await api("POST", `/bays/${enc(bay)}/scan`); flash(t("bay.scan.started") + ": " + bay, "info"); }
  catch (e) { showError(e); } finally { if (btn) btn.disabled = false; }
}

async function viewBays() {
  const bays = items(await api("GET", "/bays"));
  $("#view").innerHTML = bays.length ? h`<div class="grid">${join(bays.map(b => h`
    <section class="card bay" data-bay="${b.name}">
      <h2><a href="#/bays/${enc(b.name)}">${b.name}</a> ${raw(statePill(b.state))}</h2>
      <p>${t("scan.vin")}: <span class="mono" data-role="vin">${(b.vehicle && b.vehicle.vin) || "—"}</span></p>
      ${raw(b.vehicle ? h`<p>${t("scan.mil")}: ${raw(milPill(b.vehicle.mil))}</p>` : "")}
      ${raw(b.order ? h`<p>${t("bay.order")}: <a href="#/orders/${enc(b.order)}">${b.order}</a></p>` : "")}
      ${raw(b.vin_conflict ? h`<p class="warnings" data-role="bay-vin-conflict">${t("bay.vinconflict")}: <span class="mono">${b.vin_conflict.order_vin}</span> ≠ <span class="mono">${b.vin_conflict.car_vin}</span></p>` : "")}
      <p class="errors" data-role="bay-error">${b.error || ""}</p>
      <div data-role="ambiguous">${raw(renderAmbiguous(b.name))}</div>
      <p class="muted small mono">${b.adapter || ""}</p>
      ${raw(noAdapterHint(b.state))}
      <div class="row">
        <button class="primary" data-act="scan" ${raw(noAdapter(b.state) ? "disabled" : "")}>${t("bay.scan")}</button>
        <a class="button" href="#/bays/${enc(b.name)}">${t("bay.open")}</a>
      </div>
    </section>`))}</div>` : h`<p class="card">${t("bays.empty")}</p>`;
  $$("button[data-act=scan]").forEach(btn => btn.addEventListener("click", () => scanNow(btn.closest("[data-bay]").dataset.bay, btn)));
}

const kinds = [["stored", "scan.stored"], ["pending", "scan.pending"], ["permanent", "scan.permanent"]];

// The MIL as the scan read it: on, off, or unknown (null) when the scan could not read it —
// never shown as off.
function milPill(mil, role) {
  const r = role ? raw(h` data-role="${role}"`) : "";
  if (mil === true) return h`<span class="pill bad" data-mil="on"${r}>${t("scan.mil.on")}</span>`;
  if (mil === false) return h`<span class="pill ok" data-mil="off"${r}>${t("scan.mil.off")}</span>`;
  return h`<span class="pill warn" data-mil="unknown"${r}>${t("scan.unknown")}</span>`;
}

// unreadText says why an item of a scan report (s.unread, see obd.Report) is unknown; "" when
// it was read.
function unreadText(s, item) {
  const u = ((s && s.unread) || []).find(x => x.item === item);
  if (!u) return "";
  return t("scan.unknown") + " (" + (u.status === "failed" ? t("scan.unknown.failed") : t("scan.unknown.notread")) + ": " + u.step + ": " + u.reason + ")";
}

// dtcText describes a code in the page language: the catalogue's text when the console has it,
// else the report's own (decoded in the language the scan ran in).
function dtcText(code, reportText) { const c = state.dtc[code]; return (c && c[state.lang]) || reportText || ""; }

async function describeCodes(codes) {
  const missing = [...new Set(codes)].filter(c => !state.dtc[c]);
  if (!missing.length) return;
  try {
    const resp = await fetch("/dtc.json?codes=" + enc(missing.slice(0, 64).join(",")));
    if (resp.ok) Object.assign(state.dtc, await resp.json());
  } catch (e) { /* keep the report's text */ }
  $$("[data-role=dtc-desc]").forEach(el => { el.textContent = dtcText(el.dataset.code, el.dataset.fallback); });
}

async function loadLabels() {
  if (state.labels) return;
  try { const r = await fetch("/labels.json"); if (r.ok) state.labels = await r.json(); } catch (e) { /* keys are shown instead */ }
}
function monLabel(key) { const l = state.labels && state.labels.monitors[key]; return (l && l[state.lang]) || key; }
function pidLabel(v) { const l = state.labels && state.labels.pids[v.pid]; return (l && l[state.lang]) || v.name; }

function renderScan(s) {
  if (!s) return h`<p class="muted" data-role="no-scan">${t("scan.never")}</p>`;
  const rows = [], codes = [];
  for (const [kind, label] of kinds) {
    for (const d of (s.dtcs && s.dtcs[kind]) || []) {
      codes.push(d.code);
      rows.push(h`<tr data-code="${d.code}" data-kind="${kind}"><td class="mono big">${d.code}</td><td>${t(label)}</td><td class="mono">${d.ecu}</td>
        <td data-role="dtc-desc" data-code="${d.code}" data-fallback="${d.description || ""}">${dtcText(d.code, d.description)}</td></tr>`);
    }
  }
  setTimeout(() => describeCodes(codes));
  // A DTC service the scan could not read is unknown, never "none".
  const unread = kinds.filter(([kind]) => unreadText(s, "dtcs_" + kind)).map(([kind, label]) =>
    h`<li data-kind="${kind}">${t(label)}: ${unreadText(s, "dtcs_" + kind)}</li>`);
  const r = s.readiness || {};
  const inc = new Set(r.incomplete || []);
  const frames = (s.freeze_frames || []).map(f => h`
    <h4>${t("scan.freeze")} · ${f.dtc || ""} · ${t("scan.ecu")} ${f.ecu || ""}</h4>
    <table class="compact" data-role="freeze"><tr><th>${t("scan.desc")}</th><th>${t("scan.value")}</th></tr>
      ${join((f.values || []).map(v => h`<tr><td>${pidLabel(v)}</td><td class="mono">${v.text || v.value} ${v.text ? "" : (v.unit || "")}</td></tr>`))}</table>`);
  return h`
    <div class="facts">
      <p>${t("scan.vin")}: <span class="mono big" data-role="scan-vin">${s.vin || "—"}</span>
        ${raw(s.vin ? h`<a href="#/vehicles/${enc(s.vin)}" data-act="history">${t("history.link")}</a>` : "")}
        ${raw(s.vin ? h`<span class="pill ${s.vin_valid ? "ok" : "warn"}" data-role="vin-valid">${s.vin_valid ? t("scan.vin.ok") : t("scan.vin.bad")}</span>` : "")}</p>
      <p>${t("scan.mil")}: ${raw(milPill(s.mil, "mil"))} <span class="warnings small" data-role="mil-unread">${unreadText(s, "mil")}</span>
        · ${t("scan.odometer")}: <span data-role="odometer">${s.odometer_km != null ? Math.round(s.odometer_km) + " km" : "—"}</span></p>
      <p class="muted">${t("scan.time")}: ${when(s.time)} · ${t("scan.protocol")}: ${s.protocol || "—"} · ${t("scan.elapsed")}: ${((s.elapsed_ms || 0) / 1000).toFixed(1)} s</p>
    </div>
    <h3>${t("scan.dtcs")}</h3>
    ${raw(rows.length ? h`<table data-role="dtcs"><tr><th>${t("scan.code")}</th><th>${t("scan.kind")}</th><th>${t("scan.ecu")}</th><th>${t("scan.desc")}</th></tr>${join(rows)}</table>`
      : unread.length ? "" : h`<p data-role="dtcs">${t("scan.none")}</p>`)}
    ${raw(unread.length ? h`<ul class="warnings" data-role="dtcs-unread">${join(unread)}</ul>` : "")}
    <h3>${t("scan.readiness")}</h3>
    ${raw(s.readiness == null ? h`<p class="warnings" data-role="readiness-unread">${unreadText(s, "readiness") || t("scan.unknown")}</p>` : "")}
    <p data-role="readiness" class="pills">${join((r.supported || []).map(m => h`<span class="pill ${inc.has(m) ? "warn" : "ok"}" data-monitor="${m}">${monLabel(m)}${inc.has(m) ? " ✗" : " ✓"}</span> `))}${(r.supported || []).length ? "" : "—"}</p>
    <p>${t("scan.incomplete")}: <span data-role="incomplete">${s.readiness == null ? t("scan.unknown") : (r.incomplete || []).map(monLabel).join(", ") || t("scan.none")}</span></p>
    ${join(frames)}
    ${raw((s.warnings || []).length ? h`<h3>${t("scan.warnings")}</h3><ul class="warnings">${join(s.warnings.map(w => h`<li>${w}</li>`))}</ul>` : "")}`;
}

async function viewBay(name) {
  const [b] = await Promise.all([api("GET", `/bays/${enc(name)}`), loadLabels()]);
  if (b.rig) await loadSelfTest(name);
  state.bay = b;
  const st = state.selftest[b.name];
  $("#view").innerHTML = h`
    <section class="card" data-bay="${b.name}">
      <h2>${b.name} ${raw(statePill(b.state))}</h2>
      <p class="errors" data-role="bay-error">${b.error || ""}</p>
      <p class="muted small mono">${b.adapter || ""}${b.rig ? " · " + b.rig : ""}</p>
      <div data-role="ambiguous">${raw(renderAmbiguous(b.name))}</div>
      ${raw(b.order ? h`<p>${t("bay.order")}: <a href="#/orders/${enc(b.order)}">${b.order}</a></p>` : "")}
      <h3>${t("bay.live")}</h3>
      <div class="live" data-role="live">
        ${join([["rpm", "live.rpm"], ["coolant_c", "live.coolant"], ["speed_kmh", "live.speed"]].map(([k, label]) =>
          h`<div><b data-pid="${k}">${liveValue((state.live[b.name] || {})[k])}</b>${t(label)}</div>`))}
      </div>
      ${raw(noAdapterHint(b.state))}
      <div class="row"><button class="primary" data-act="scan" ${raw(noAdapter(b.state) ? "disabled" : "")}>${t("bay.scan")}</button>
      <button class="danger" data-act="clear" ${raw(noAdapter(b.state) ? "disabled" : "")}>${t("bay.clear")}</button></div>
    </section>
    ${raw(ShopCharts.section(b))}
    <section class="card" data-role="selftest" ${raw(st || b.rig ? "" : "hidden")}>${raw(renderSelfTest(st, !!b.rig, b.name))}</section>
    <section class="card" data-role="selftest-curves" hidden></section>
    <section class="card" data-role="obd-check"><h2>${t("obd.title")}</h2><div data-role="obd-body"><p class="muted">${t("loading")}</p></div>
      <p><button data-act="obd-recheck">${t("obd.recheck")}</button></p></section>
    <section class="card" data-role="last-scan"><h2>${t("bay.lastscan")}</h2>${raw(renderScan(b.last_scan))}</section>`;
  $("[data-act=scan]").addEventListener("click", ev => scanNow(name, ev.target));
  $("[data-act=clear]").addEventListener("click", () => openClear(b));
  $("[data-act=obd-recheck]").addEventListener("click", () => loadOBDCheck(name));
  watchLive(name);
  ShopCharts.start(name);
  ShopCharts.renderSelfTest();
  // The progress stream of a running test; one already open for this bay stays.
  if (st && st.running && !stEnded(st)) { if (!(stAbort && stBay === name)) followSelfTest(name); } else stopSelfTest();
  loadOBDCheck(name);
}

// ---- a scan that matched several open orders: the technician chooses -------------------
function renderAmbiguous(bay) {
  const a = state.ambiguous[bay];
  if (!a) return "";
  return h`<div class="choose"><p><b>${t("scan.ambiguous")}</b></p><div class="row">${join(a.candidates.map(c =>
    h`<button data-act="attach" data-bay="${bay}" data-order="${c.id}" data-scan="${a.scan}">${c.id} · ${c.plate}${c.vin ? " · " + c.vin : ""}</button>`))}</div></div>`;
}

function showAmbiguous(bay) {
  $$(`[data-bay="${CSS.escape(bay)}"] [data-role=ambiguous]`).forEach(el => { el.innerHTML = renderAmbiguous(bay); });
}

// One listener for every choice button, wherever it is rendered.
document.addEventListener("click", async ev => {
  const btn = ev.target.closest && ev.target.closest("button[data-act=attach]");
  if (!btn) return;
  btn.disabled = true;
  try {
    await api("POST", `/workorders/${enc(btn.dataset.order)}/scans`, { scan_id: btn.dataset.scan });
    delete state.ambiguous[btn.dataset.bay];
    showAmbiguous(btn.dataset.bay);
    flash(t("scan.attached") + " " + btn.dataset.order, "info");
    state.keepFlash = true;
    location.hash = "#/orders/" + enc(btn.dataset.order);
  } catch (e) { showError(e); btn.disabled = false; }
});

// ---- emission self-test: start, follow live, abort, the judged result ------------------------
// A bay's test is state.selftest[bay]: {method, order, running, progress, result, error, verdict}.
// It is filled from GET /selftest when the bay page opens, from the bay's progress stream while
// a test runs, and from the daemon's selftest.* events (which also reach bays without a page open).
const num = (v, d) => v == null ? "—" : (Math.round(v * 10 ** d) / 10 ** d).toString();
const fixed = (v, d) => v == null ? "—" : Number(v).toFixed(d);
const gasCols = [["hc_ppm", "HC ppm", 0], ["co_pct", "CO %", 2], ["co2_pct", "CO₂ %", 2], ["o2_pct", "O₂ %", 2], ["no_ppm", "NO ppm", 0],
  ["lambda", "λ", 3], ["opacity_pct", "N %", 1], ["k_m1", "k m⁻¹", 2], ["oil_c", "°C", 0]];
function txt(x) { return x ? (x[state.lang] || x.zh || x.en || "") : ""; }
const methodName = m => ({ "1": "two_speed_idle", "5": "free_acceleration" }[m] || m || "");
const verdictClass = v => ({ pass: "ok", fail: "bad", refused: "warn", aborted: "warn" }[v] || "bad");
const stEnded = st => !!(st && (st.result || st.verdict || st.error) && !st.running);
let stAbort = null, stBay = "";  // the progress stream of the bay page's running test
const stForm = {};                // bay → true: the start form is open after a result
const stValues = {};              // bay → what the start form holds, kept across re-renders

function renderSelfTest(st, rig, bay) {
  const parts = [];
  const method = st && methodName(st.method || (st.result && st.result.method) || (st.progress && st.progress.method));
  const ended = stEnded(st);
  const verdict = ended ? ((st.result && st.result.verdict) || st.verdict || "error") : "";
  parts.push(h`<h2>${t("selftest.title")}${method ? " · " + t("selftest.method." + method) : ""}
    ${raw(ended && !st.result ? h`<span class="pill ${verdictClass(verdict)}" data-role="verdict" data-verdict="${verdict}">${t("selftest.verdict." + verdict)}</span>` : "")}</h2>`);
  if (st && !ended) parts.push(renderRunning(st, rig));
  if (ended && st.result) parts.push(renderResult(st.result));
  if (ended && st.error) parts.push(h`<p class="errors" data-role="selftest-error">${st.error}</p>`);
  if (rig && (!st || ended)) {
    parts.push(!st || stForm[bay] ? renderStartForm(stValues[bay] || {})
      : h`<p><button data-act="st-new">${t("selftest.new")}</button></p>`);
  }
  return parts.join("");
}

function renderRunning(st, rig) {
  const p = st.progress || {}, rd = p.reading || {}, w = p.rpm_window;
  const cells = gasCols.filter(([k]) => rd[k] != null);
  const phase = p.phase ? (I18N.zh["selftest.phase." + p.phase] ? t("selftest.phase." + p.phase) : p.phase) : "";
  return h`
    ${raw(p.prompt ? h`<p class="prompt" data-role="prompt">${txt(p.prompt)}</p>` : h`<p class="muted" data-role="prompt">${t("selftest.starting")}</p>`)}
    ${raw(p.phase ? h`<p>${t("selftest.phase")}: <b data-role="phase" data-phase="${p.phase}">${phase}</b>
      ${raw(p.acceleration ? h` · ${t("selftest.acceleration")} <b data-role="acceleration">${p.acceleration}</b>` : "")}
      · ${t("selftest.left")}: <b class="big" data-role="seconds-left">${p.seconds_left >= 0 ? p.seconds_left + " s" : t("selftest.waiting")}</b>
      ${raw(p.restarts ? h` · ${t("selftest.restarts")}: ${p.restarts}` : "")}</p>` : "")}
    ${raw(p.rpm != null || w ? h`<p>${t("live.rpm")}: <b data-role="selftest-rpm">${num(p.rpm, 0)}</b>
      ${raw(w ? h`<span class="pill ${w.state === "in" ? "ok" : "warn"}" data-role="rpm-window" data-state="${w.state}">${num(w.min, 0)}–${w.max == null ? "∞" : num(w.max, 0)} r/min · ${t("selftest.window." + w.state)}</span>` : "")}</p>` : "")}
    ${raw(cells.length ? h`<div class="live" data-role="gases">${join(cells.map(([k, label, d]) => h`<div><b data-gas="${k}">${num(rd[k], d)}</b>${label}</div>`))}</div>` : "")}
    ${raw(p.event ? h`<p class="warnings" data-role="selftest-event">${txt(p.event)}</p>` : "")}
    ${raw(rig ? h`<p><button class="danger" data-act="st-abort">${t("selftest.abort")}</button></p>` : "")}`;
}

function renderStartForm(v) {
  const sel = (a, b) => raw(a === b ? " selected" : "");
  return h`<form id="st-form" novalidate>
    <div class="row">
      <div><label for="st-method">${t("selftest.method")}</label><select id="st-method" name="method">
        ${join(["two_speed_idle", "free_acceleration"].map(m => h`<option value="${m}"${sel(v.method, m)}>${t("selftest.method." + m)}</option>`))}</select></div>
      <div><label for="st-rated">${t("selftest.rated")}</label><input id="st-rated" name="rated_rpm" type="number" min="0" max="10000" step="10" inputmode="numeric" autocomplete="off" value="${v.rated_rpm || ""}"></div>
      <div><label for="st-limit">${t("selftest.limitset")}</label><select id="st-limit" name="limit_set">
        <option value="">${t("selftest.limitset.config")}</option>${join(["a", "b"].map(x => h`<option value="${x}"${sel(v.limit_set, x)}>${t("selftest.limitset." + x)}</option>`))}</select></div>
    </div>
    <div class="row">
      <div><label for="st-fuel">${t("selftest.fuel")}</label><select id="st-fuel" name="fuel">
        <option value="">${t("selftest.fuel.scan")}</option>${join(["petrol", "diesel", "lpg", "cng"].map(x => h`<option value="${x}"${sel(v.fuel, x)}>${t("selftest.fuel." + x)}</option>`))}</select></div>
      <div><label for="st-mass">${t("selftest.mass")}</label><input id="st-mass" name="gross_mass_kg" type="number" min="0" max="100000" step="10" inputmode="numeric" autocomplete="off" value="${v.gross_mass_kg || ""}"></div>
      <div><label for="st-lambda">${t("selftest.lambdajudged")}</label><select id="st-lambda" name="lambda_judged">
        <option value="">${t("selftest.lambdajudged.auto")}</option>${join(["yes", "no"].map(x => h`<option value="${x}"${sel(v.lambda_judged, x)}>${t("selftest.lambdajudged." + x)}</option>`))}</select></div>
    </div>
    <p class="muted small">${t("selftest.rated.help")} ${t("selftest.vehicle.help")}</p>
    <div class="errors" data-role="errors"></div>
    <p><button class="primary" type="submit" data-act="st-start">${t("selftest.start")}</button></p></form>`;
}

// itemLimit says an item's limit: a range for λ, else an upper limit.
function itemLimit(it) {
  const u = it.unit ? " " + it.unit : "";
  return it.name === "AIR_COEFFICIENT" || it.lower ? `${fixed(it.lower, 2)}–${fixed(it.limit, 2)}${u}` : `≤ ${fixed(it.limit, it.decimals)}${u}`;
}
const itemName = n => I18N.zh["item." + String(n).toLowerCase()] ? t("item." + String(n).toLowerCase()) : n;

function renderResult(r) {
  const v = r.verdict || "error";
  const reasons = r.reasons || [], warns = r.warnings || [];
  const idle = r.two_speed_idle, acc = r.free_acceleration;
  return h`
    <p class="verdict ${verdictClass(v)}" data-role="verdict" data-verdict="${v}">${t("selftest.verdict." + v)}</p>
    <p class="muted small" data-role="result-facts">${t("selftest.limitset")}: ${r.limit_set ? t("selftest.limitset." + r.limit_set) : "—"}
      · ${t("selftest.rig")}: <span class="mono">${r.rig || "—"}</span>${r.speed ? " · " + t("selftest.speed") + ": " + (r.speed === "rig" ? t("selftest.speed.rig") : r.speed) : ""}
      · ${when(r.start)} – ${when(r.end)}</p>
    ${raw(reasons.length ? h`<h3>${t("selftest.reasons")}</h3><ul data-role="reasons">${join(reasons.map(x => h`<li data-code="${x.code}">${txt(x)}</li>`))}</ul>` : "")}
    ${raw(warns.length ? h`<div class="warnings"><b>${t("selftest.warnings")}</b><ul data-role="st-warnings">${join(warns.map(x => h`<li data-code="${x.code}">${txt(x)}</li>`))}</ul></div>` : "")}
    ${raw((r.items || []).length ? h`<h3>${t("selftest.items")}</h3>
      <table data-role="st-items"><tr><th>${t("selftest.item")}</th><th>${t("selftest.value")}</th><th>${t("selftest.limit")}</th><th>${t("selftest.judgement")}</th></tr>
      ${join(r.items.map(it => h`<tr data-item="${it.name}" data-pass="${it.pass ? "true" : "false"}" data-judged="${it.not_judged ? "false" : "true"}" class="${it.pass ? "" : "over"}">
        <td>${itemName(it.name)}</td><td class="mono">${fixed(it.value, it.decimals)}${it.unit ? " " + it.unit : ""}</td><td class="mono">${it.not_judged ? "—" : itemLimit(it)}</td>
        <td>${raw(it.not_judged ? h`<span class="pill" title="${t("selftest.notjudged.help")}">${t("selftest.notjudged")}</span>`
          : h`<span class="pill ${it.pass ? "ok" : "bad"}">${it.pass ? t("selftest.verdict.pass") : t("selftest.verdict.fail")}</span>`)}</td></tr>`))}</table>` : "")}
    ${raw(idle ? renderIdleDetail(idle) : "")}
    ${raw(acc ? renderAccelDetail(acc) : "")}`;
}

function renderIdleDetail(d) {
  const rows = [["high_idle", d.high_idle], ["idle", d.idle]].filter(([, a]) => a);
  return h`
    <h3>${t("selftest.lambda")}</h3>
    <table class="compact" data-role="lambda"><tr><th></th><th>${t("selftest.lambda.analyzer")}</th><th>${t("selftest.lambda.computed")}</th><th>HC ppm</th><th>CO %</th><th>${t("selftest.samples")}</th></tr>
      ${join(rows.map(([k, a]) => h`<tr data-phase="${k}"><td>${t("selftest.avg." + k)}</td><td class="mono" data-role="lambda-analyzer">${fixed(a.lambda, 3)}</td>
        <td class="mono" data-role="lambda-computed">${fixed(a.lambda_computed, 3)}</td><td class="mono">${fixed(a.hc_ppm, 0)}</td><td class="mono">${fixed(a.co_pct, 2)}</td><td>${a.samples}/${a.expected}</td></tr>`))}</table>
    <p class="muted small">${t("selftest.lambda.judged")}: ${d.lambda_source ? t("selftest.lambda." + d.lambda_source) : "—"} · ${t("selftest.lambda.range")} ${fixed(d.lambda_min, 2)}–${fixed(d.lambda_max, 2)}
      · ${t("selftest.rated")}: ${num(d.rated_rpm, 0)} r/min${d.restarts ? " · " + t("selftest.restarts") + ": " + d.restarts : ""}</p>
    ${raw(renderProcess(d.process || [], "full_sequence_s", 1, [["rpm", "r/min", 0], ["hc_ppm", "HC ppm", 0], ["co_pct", "CO %", 2], ["lambda", t("selftest.lambda.analyzer"), 3], ["lambda_computed", t("selftest.lambda.computed"), 3]],
      p => p.condition === 2 || p.condition === 4, ["condition", "sampling_timing", "rpm", "hc_ppm", "co_pct", "co2_pct", "o2_pct", "no_ppm", "lambda", "lambda_computed", "oil_c", "averaged"]))}`;
}

function renderAccelDetail(d) {
  return h`
    <h3>${t("selftest.accel")}</h3>
    <table class="compact" data-role="peaks"><tr><th>#</th><th>k m⁻¹</th><th>r/min</th></tr>
      ${join((d.peaks_k_m1 || []).map((k, i) => h`<tr><td>${i + 1}</td><td class="mono">${fixed(k, 2)}</td><td class="mono">${num((d.peak_rpm || [])[i], 0)}</td></tr>`))}
      <tr><td><b>${t("selftest.avg")}</b></td><td class="mono"><b>${fixed(d.avg_k_m1, 2)}</b></td><td></td></tr></table>
    <p class="muted small">${t("selftest.limit")}: ${fixed(d.limit_k_m1, 2)} m⁻¹ · ${t("selftest.idlerpm")}: ${num(d.idle_rpm, 0)} · ${t("selftest.maxrpm")}: ${num(d.max_rpm, 0)}
      · L = ${fixed(d.path_length_m, 3)} m${d.k_from_n ? " · " + t("selftest.kfromn") : ""}${d.repeated ? " · " + t("selftest.repeated") + ": " + d.repeated : ""}</p>
    ${raw(renderProcess(d.process || [], "full_sequence_ms", 1000, [["rpm", "r/min", 0], ["k_m1", "k m⁻¹", 2], ["opacity_pct", "N %", 1]],
      p => p.phase === "accelerate", ["condition", "phase", "rpm", "k_m1", "opacity_pct", "oil_c"]))}`;
}

// renderProcess draws the process data as small line charts (one per quantity, sampling spans
// shaded) and keeps the numbers in a table behind a disclosure. Plain SVG: no library.
function renderProcess(rows, tKey, tDiv, series, marked, cols) {
  if (!rows.length) return "";
  const W = 600, H = 48;
  const ts = rows.map(p => (p[tKey] || 0) / tDiv);
  const t0 = Math.min(...ts), t1 = Math.max(...ts), span = t1 - t0 || 1;
  const x = v => ((v - t0) / span * W).toFixed(1);
  const bands = [];
  rows.forEach((p, i) => { if (marked(p)) bands.push(h`<rect class="band" x="${x(ts[i])}" y="0" width="${Math.max(W / rows.length, 1).toFixed(1)}" height="${H}"></rect>`); });
  const charts = series.filter(([k]) => rows.some(p => p[k] != null)).map(([k, label, d]) => {
    const vals = rows.map(p => p[k]).filter(v => v != null);
    const lo = Math.min(...vals), hi = Math.max(...vals), rng = hi - lo || 1;
    const pts = rows.map((p, i) => p[k] == null ? null : `${x(ts[i])},${(H - 2 - (p[k] - lo) / rng * (H - 4)).toFixed(1)}`).filter(Boolean).join(" ");
    return h`<div class="chart" data-series="${k}"><span class="small">${label} <span class="muted mono">${fixed(lo, d)}–${fixed(hi, d)}</span></span>
      <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${label}">${join(bands)}<polyline points="${pts}" vector-effect="non-scaling-stroke"></polyline></svg></div>`;
  });
  const cell = v => v == null ? "" : typeof v === "number" ? String(Math.round(v * 1000) / 1000) : typeof v === "boolean" ? (v ? "✓" : "") : String(v);
  return h`<h3>${t("selftest.process")} <span class="muted small">(${rows.length} · ${Math.round(span)} s)</span></h3>
    <div class="charts" data-role="process-chart">${join(charts)}</div>
    <details><summary>${t("selftest.process.table")}</summary>
      <table class="compact small mono" data-role="process"><tr><th>s</th>${join(cols.map(c => h`<th>${c}</th>`))}</tr>
      ${join(rows.map((p, i) => h`<tr><td>${cell(ts[i])}</td>${join(cols.map(c => h`<td>${cell(p[c])}</td>`))}</tr>`))}</table></details>`;
}

function showSelfTest(bay) {
  const box = document.querySelector(`[data-bay="${CSS.escape(bay)}"] ~ [data-role=selftest]`);
  if (!box) return;
  const rig = !!(state.bay && state.bay.name === bay && state.bay.rig);
  const st = state.selftest[bay];
  box.hidden = !st && !rig;
  box.innerHTML = renderSelfTest(st, rig, bay);
}

// fromStatus turns GET /selftest into the bay's test state.
function fromStatus(s) {
  return { method: s.method, order: s.order, running: !!s.running, progress: s.progress || null, result: s.result || null, error: s.error || "" };
}

async function loadSelfTest(bay) {
  try { state.selftest[bay] = fromStatus(await api("GET", `/bays/${enc(bay)}/selftest`)); }
  catch (e) {
    if (e.status === 401) throw e;
    // 404: no test yet on this bay. Anything else must not keep the bay page from showing.
    if (e.status !== 404) flash(problemLines(e).join("; "));
  }
}

// followSelfTest reads the bay's progress stream while its test runs; at its end the page reads
// the judged result.
function followSelfTest(bay) {
  if (stAbort) stAbort.abort();
  stAbort = new AbortController(); stBay = bay;
  const ctl = stAbort;
  stream(`${API}/bays/${enc(bay)}/selftest/progress`, ctl.signal, (type, d) => {
    if (type === "progress") {
      const cur = state.selftest[bay];
      if (!cur || stEnded(cur)) return;
      cur.progress = d;
      showSelfTest(bay);
      ShopCharts.selfTestProgress(bay, d);
    } else if (type === "end") {
      ctl.abort();
      if (stAbort === ctl) stAbort = null;
      refreshSelfTest(bay);
    }
  }, null, null, () => { if (stAbort === ctl) stAbort = null; refreshSelfTest(bay); });
}
function stopSelfTest() { if (stAbort) { stAbort.abort(); stAbort = null; } }

async function refreshSelfTest(bay) {
  try {
    const s = await api("GET", `/bays/${enc(bay)}/selftest`);
    const cur = state.selftest[bay] || {};
    // The event may have said the verdict already; the status has the detail.
    state.selftest[bay] = Object.assign(fromStatus(s), s.running ? {} : { verdict: cur.verdict || "" });
    if (!s.running) stForm[bay] = false;
  } catch (e) {
    // The event's verdict stays; a running test the gateway no longer knows (it restarted) is gone.
    const cur = state.selftest[bay];
    if (e.status === 404 && cur && cur.running) delete state.selftest[bay];
  }
  showSelfTest(bay);
}

function selfTestEvent(type, bay, data) {
  const cur = state.selftest[bay];
  if (type === "selftest.started") {
    state.selftest[bay] = { method: methodName(data.method), order: data.order, running: true };
    stForm[bay] = false;
    ShopCharts.selfTestProgress(bay, null);
    if (isBayPage(bay) && state.bay && state.bay.rig && !(stAbort && stBay === bay)) followSelfTest(bay);
  } else if (type === "selftest.progress") {
    if (cur && stEnded(cur)) return; // a late update of a test that has ended
    state.selftest[bay] = Object.assign({ running: true }, cur, { progress: data, method: (cur && cur.method) || methodName(data.method) });
    ShopCharts.selfTestProgress(bay, data);
  } else {
    state.selftest[bay] = Object.assign({}, cur, { running: false, verdict: data.verdict || (data.error ? "error" : ""), error: data.error || (cur && cur.error) || "" });
    if (isBayPage(bay)) refreshSelfTest(bay);
  }
  showSelfTest(bay);
}
const isBayPage = bay => (location.hash || "") === "#/bays/" + enc(bay);

async function startSelfTest(form, bay) {
  const b = formBody(form);
  const body = { method: b.method || "two_speed_idle" };
  if (b.rated_rpm !== undefined) body.rated_rpm = Number(b.rated_rpm);
  if (b.limit_set) body.limit_set = b.limit_set;
  if (b.fuel) body.fuel = b.fuel;
  if (b.gross_mass_kg !== undefined && b.gross_mass_kg !== "") body.gross_mass_kg = Number(b.gross_mass_kg);
  if (b.lambda_judged) body.lambda_judged = b.lambda_judged === "yes";
  if (body.method === "two_speed_idle" && !body.rated_rpm) {
    showFormError(form, new APIError(400, { error: t("selftest.rated.required"), field: "rated_rpm" }));
    return;
  }
  const s = await api("POST", `/bays/${enc(bay)}/selftest`, body);
  state.selftest[bay] = fromStatus(s);
  stForm[bay] = false;
  showSelfTest(bay);
  if (s.running) followSelfTest(bay); else refreshSelfTest(bay);
}

// One listener for the panel's buttons and form, whatever rendering they come from.
document.addEventListener("click", ev => {
  const btn = ev.target.closest && ev.target.closest("[data-role=selftest] button[data-act]");
  if (!btn || !state.bay) return;
  const bay = state.bay.name;
  if (btn.dataset.act === "st-new") { stForm[bay] = true; showSelfTest(bay); const m = $("#st-method"); if (m) m.focus(); }
  else if (btn.dataset.act === "st-abort") openAbort(bay);
});
// The form's values survive a re-render (language switch, a finished scan reloading the page).
for (const type of ["input", "change"]) {
  document.addEventListener(type, ev => {
    const f = ev.target.closest && ev.target.closest("#st-form");
    if (f && state.bay) stValues[state.bay.name] = formBody(f);
  });
}
document.addEventListener("submit", async ev => {
  if (!ev.target.matches || !ev.target.matches("#st-form") || !state.bay) return;
  ev.preventDefault();
  const btn = $("[data-act=st-start]", ev.target);
  btn.disabled = true;
  try { await startSelfTest(ev.target, state.bay.name); }
  catch (e) { showFormError(ev.target, e); }
  finally { btn.disabled = false; }
});

function openAbort(bay) {
  const d = $("#abort-dialog");
  d.dataset.bay = bay;
  $("[data-role=abort-error]", d).textContent = "";
  $("[data-act=confirm-abort]", d).disabled = false;
  translatePage();
  d.showModal();
}

async function confirmAbort(ev) {
  ev.preventDefault();
  const d = $("#abort-dialog"), btn = $("[data-act=confirm-abort]", d);
  if (btn.disabled) return;
  btn.disabled = true; // one tap, one request
  try {
    await api("POST", `/bays/${enc(d.dataset.bay)}/selftest/abort`);
    d.close();
    flash(t("selftest.aborting"), "info");
  } catch (e) { $("[data-role=abort-error]", d).textContent = problemLines(e).join("; "); }
}

// ---- the inspection station's OBD check over the bay's last scan ----------------------------
const checkClass = s => ({ pass: "ok", fail: "bad", warning: "warn" }[s] || "");
// The check's verdict: pass, fail, or cannot_judge (the car could not be read: neither).
const obdVerdictClass = v => ({ pass: "ok", fail: "bad", cannot_judge: "warn" }[v] || "bad");
const obdVerdictText = v => v === "cannot_judge" ? t("obd.verdict.cannot_judge") : t("selftest.verdict." + v);
function renderOBDCheck(c) {
  if (!c) return h`<p class="muted" data-role="obd-none">${t("obd.none")}</p>`;
  const a7 = c.ods_a7 || {};
  const v = c.verdict || (c.pass ? "pass" : "fail");
  const unread = item => (c.unread || []).some(u => u.item === item) || (v === "cannot_judge" && !(c.unread || []).length);
  return h`<p><span class="pill ${obdVerdictClass(v)} big" data-role="obd-result" data-verdict="${v}" data-pass="${c.pass ? "true" : "false"}">${obdVerdictText(v)}</span>
      <span class="muted small" data-role="o-result">${t("obd.oresult")}: ${c.o_result} ${I18N.zh["obd.oresult." + c.o_result] ? t("obd.oresult." + c.o_result) : ""}</span></p>
    <table data-role="obd-lines">${join((c.lines || []).map(l => h`<tr data-rule="${l.rule}" data-status="${l.status}">
      <td>${I18N.zh["obd.rule." + l.rule] ? t("obd.rule." + l.rule) : l.rule}</td>
      <td><span class="pill ${checkClass(l.status)}">${t("obd.status." + l.status)}</span></td><td>${txt(l)}</td></tr>`))}</table>
    <p class="muted small">${t("obd.dtcs")}: ${unread("dtcs_stored") ? t("scan.unknown") : a7.FAULT_CODE_NUM ?? 0} · ${t("obd.incomplete")}: ${unread("readiness") ? t("scan.unknown") : a7.READY_STATE_UNDONE ?? 0} · VIN: <span class="mono">${a7.VIN || "—"}</span></p>`;
}

async function loadOBDCheck(bay) {
  const box = $("[data-role=obd-check] [data-role=obd-body]");
  if (!box) return;
  let html;
  try { html = renderOBDCheck(await api("GET", `/bays/${enc(bay)}/obd-check`)); }
  catch (e) { html = e.status === 404 ? renderOBDCheck(null) : h`<p class="errors">${problemLines(e).join("; ")}</p>`; }
  const now = $("[data-role=obd-check] [data-role=obd-body]");
  if (now && state.bay && state.bay.name === bay) now.innerHTML = html;
}

// ---- clearing DTCs: only after the technician types the VIN of the car on the bay ----------
function carVIN(b) { return (b.vehicle && b.vehicle.vin) || (b.last_scan && b.last_scan.vin) || ""; }

function openClear(b) {
  const vin = carVIN(b);
  if (!vin) { flash(t("bay.clear.novin")); return; }
  const d = $("#clear-dialog"), f = $("#clear-form");
  state.clearID = requestID();
  f.dataset.bay = b.name;
  f.dataset.vin = vin;
  $("[data-role=car-vin]", d).textContent = vin;
  $("[data-role=clear-error]", d).textContent = "";
  f.vin.value = "";
  $("[data-act=confirm-clear]", d).disabled = false;
  translatePage();
  d.showModal();
  f.vin.focus();
}

async function submitClear(ev) {
  ev.preventDefault();
  const f = $("#clear-form"), d = $("#clear-dialog"), err = $("[data-role=clear-error]", d), btn = $("[data-act=confirm-clear]", d);
  const typed = f.vin.value.trim().toUpperCase();
  if (typed !== f.dataset.vin) { err.textContent = t("bay.clear.vinmismatch"); f.vin.setAttribute("aria-invalid", "true"); return; }
  btn.disabled = true;
  try {
    const res = await api("POST", `/bays/${enc(f.dataset.bay)}/clear-dtcs`, { confirm: true, vin: typed, request_id: state.clearID });
    d.close();
    const milNote = res.mil_after === true ? t("bay.clear.milafter") : res.mil_after == null ? t("bay.clear.milunknown") : "";
    flash(t("bay.clear.done") + (milNote ? " · " + milNote : ""), milNote ? "" : "info");
    if (location.hash.startsWith("#/bays/")) route();
  } catch (e) {
    // The id stays spent: a second tap on the same dialog is refused by the gateway, never
    // executed twice. Reopening the dialog makes a new confirmation with a new id.
    err.textContent = problemLines(e).join("; ");
  }
}

// ---- live values and the event stream (fetch, so the bearer token goes in a header) -------
let liveAbort = null, followAbort = null;
const liveValue = v => typeof v === "number" ? String(Math.round(v * 10) / 10) : "—";
function stopStreams() {
  if (liveAbort) { liveAbort.abort(); liveAbort = null; }
  if (followAbort) { followAbort.abort(); followAbort = null; }
  stopSelfTest();
}

function watchLive(bay) {
  if (liveAbort) liveAbort.abort();
  liveAbort = new AbortController();
  stream(`${API}/bays/${enc(bay)}/live`, liveAbort.signal, (type, d) => {
    state.live[bay] = Object.assign({}, state.live[bay], d);
    for (const [k, val] of Object.entries(d || {})) {
      const el = document.querySelector(`[data-pid="${CSS.escape(k)}"]`);
      if (el) el.textContent = liveValue(val);
    }
  });
}

// stream reads a server-sent-event stream until signal aborts, reconnecting after a drop.
// onOpen runs each time the stream is (re)connected. With onGone, a 404 ends the stream
// instead of retrying (what it follows no longer exists).
async function stream(url, signal, onEvent, onOpen, onDrop, onGone) {
  let attempt = 0, wait = 1000;
  while (!signal.aborted) {
    try {
      const resp = await fetch(url, { headers: authHeaders(), signal, cache: "no-store" });
      if (resp.status === 401) { showLogin(t("err.auth")); return; }
      if (resp.status === 404 && onGone) { onGone(); return; }
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      if (onOpen) onOpen(attempt++);
      wait = 1000;
      const rd = resp.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let type = "message"; const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) { try { onEvent(type, JSON.parse(data.join("\n"))); } catch (e) { /* a malformed event is skipped */ } }
        }
      }
    } catch (e) { if (signal.aborted) return; }
    if (onDrop) onDrop();
    // A bay with no car answers the live stream with an error: retry, but ever more slowly.
    await new Promise(r => setTimeout(r, wait));
    wait = Math.min(wait * 2, 30000);
  }
}

function currentView() { return (location.hash || "#/bays").slice(2).split("/")[0] || "bays"; }

function follow() {
  if (followAbort) followAbort.abort();
  followAbort = new AbortController();
  stream(API + "/events", followAbort.signal, (type, ev) => {
    const view = currentView(), hash = location.hash || "#/bays";
    const bay = ev.bay || "";
    switch (ev.type || type) {
    case "bay.state": {
      const d = ev.data || {};
      $$(`[data-bay="${CSS.escape(bay)}"]`).forEach(card => {
        const pill = $("[data-role=state]", card);
        if (pill) pill.outerHTML = statePill(d.state);
        const vin = $("[data-role=vin]", card);
        if (vin && d.vin) vin.textContent = d.vin;
        const err = $("[data-role=bay-error]", card);
        if (err) err.textContent = d.detail || ""; // the last problem, in words that say what to do
        setAdapterPresence(card, d.state);
      });
      if (state.bay && state.bay.name === bay && d.vin) state.bay.vehicle = Object.assign({}, state.bay.vehicle, { vin: d.vin });
      break;
    }
    case "scan.step":
      ShopProgress.step(bay, ev.data);
      break;
    case "scan.failed":
      ShopProgress.done(bay);
      if (hash === "#/bays/" + enc(bay) || hash === "#/bays") flash(bay + ": " + ((ev.data && ev.data.error) || ""));
      break;
    case "scan.done": case "scan.stored": case "dtcs.cleared":
      ShopProgress.done(bay);
      if (hash === "#/bays/" + enc(bay) || view === "bays" && !hash.startsWith("#/bays/")) route();
      break;
    case "workorder.vin_conflict":
      if (hash === "#/orders/" + enc((ev.data && ev.data.id) || "") || hash === "#/bays/" + enc(bay)) route();
      break;
    case "workorder.opened": case "workorder.settled": case "workorder.revised":
      if (hash === "#/orders") route();
      if (view === "outbox") route();
      break;
    case "scan.ambiguous": {
      // Data is workorder.AmbiguousError: {scan_id, reason, candidates: [{id, plate, vin, bay}]}.
      const d = ev.data || {};
      if ((d.candidates || []).length) state.ambiguous[bay] = { scan: d.scan_id, reason: d.reason, candidates: d.candidates };
      showAmbiguous(bay);
      break;
    }
    case "selftest.started": case "selftest.progress": case "selftest.done":
      selfTestEvent(ev.type, bay, ev.data || {});
      break;
    case "outbox.stats":
      if (view === "outbox") route();
      break;
    case "lost":
      if (view === "bays" || view === "outbox") route();
      break;
    }
  }, attempt => {
    document.body.dataset.events = "on";
    if ($("#flash").textContent === t("events.off")) flash("");
    // After a drop the page may have missed events: read the view again (the first connection
    // comes with the first rendering already).
    if (attempt > 0 && (currentView() === "bays" || currentView() === "outbox")) route();
  }, () => { document.body.dataset.events = "off"; if ($("#flash").hidden) flash(t("events.off")); });
}

// ---- work orders -----------------------------------------------------------------------
const colors = ["blue", "yellow", "green", "yellow_green", "black", "white", "other"];
const statusPill = o => h`<span class="pill ${o.status === "settled" ? "ok" : "warn"}" data-role="status" data-status="${o.status}">${o.status === "settled" ? t("orders.settled") : t("orders.open")}</span>`;

async function viewOrders() {
  const q = state.ordersFilter ? "?status=" + state.ordersFilter + "&limit=50" : "?limit=50";
  const res = await api("GET", "/workorders" + q);
  const list = items(res);
  const row = o => h`<tr data-order="${o.id}"><td><a href="#/orders/${enc(o.id)}" class="mono">${o.id}</a></td><td><a href="#/orders/${enc(o.id)}">${o.plate}</a></td>
    <td class="mono">${o.vin || "—"}</td><td>${o.bay || ""}</td><td>${o.repair_date || ""}</td><td>${raw(statusPill(o))}</td></tr>`;
  $("#view").innerHTML = h`
    <div class="row toolbar">
      <a class="button primary" href="#/orders/new" data-act="new">${t("orders.new")}</a>
      ${join([["", "orders.all"], ["open", "orders.open"], ["settled", "orders.settled"]].map(([v, k]) =>
        h`<button data-filter="${v}" class="${state.ordersFilter === v ? "active" : ""}">${t(k)}</button>`))}
    </div>
    <section class="card">${raw(list.length ? h`<table data-role="orders"><tr><th>${t("order.id")}</th><th>${t("order.plate")}</th><th>VIN</th><th>${t("order.bay")}</th><th>${t("order.repairdate")}</th><th>${t("order.status")}</th></tr>${join(list.map(row))}</table>`
      : h`<p>${t("orders.empty")}</p>`)}
      ${raw(res.next ? h`<p><button data-act="more" data-after="${res.next}">${t("orders.more")}</button></p>` : "")}</section>`;
  $$("button[data-filter]").forEach(b => b.addEventListener("click", () => { state.ordersFilter = b.dataset.filter; viewOrders().then(translatePage, showError); }));
  const more = $("[data-act=more]");
  if (more) more.addEventListener("click", async () => {
    try {
      const r = await api("GET", "/workorders" + q + "&after=" + enc(more.dataset.after));
      $("[data-role=orders]").insertAdjacentHTML("beforeend", items(r).map(row).join(""));
      if (r.next) more.dataset.after = r.next; else more.remove();
    } catch (e) { showError(e); }
  });
}

function formBody(form) {
  const body = {};
  for (const [k, v] of new FormData(form).entries()) {
    const s = typeof v === "string" ? v.trim() : v;
    if (s === "") continue;
    body[k] = k === "mileage_km" ? Number(s) : s;
  }
  return body;
}

async function viewNewOrder() {
  let bays = [];
  try { bays = items(await api("GET", "/bays")); } catch (e) { if (e.status === 401) throw e; /* the form works without */ }
  $("#view").innerHTML = h`
    <form id="order-form" class="card" novalidate>
      <h2>${t("orders.new")}</h2>
      <div class="row"><div><label for="f-plate">${t("order.plate")}</label><input id="f-plate" name="plate" required autocomplete="off"></div>
        <div><label for="f-color">${t("order.platecolor")}</label><select id="f-color" name="plate_color">${join(colors.map(c => h`<option value="${c}">${t("color." + c)}</option>`))}</select></div></div>
      <div class="row"><div><label for="f-vin">${t("order.vin")}</label><input id="f-vin" name="vin" maxlength="17" class="mono" autocomplete="off" spellcheck="false"></div>
        <div><label for="f-km">${t("order.mileage")}</label><input id="f-km" name="mileage_km" type="number" min="0" inputmode="numeric"></div>
        <div><label for="f-bay">${t("order.bay")}</label><select id="f-bay" name="bay"><option value=""></option>${join(bays.map(b => h`<option>${b.name}</option>`))}</select></div></div>
      <label for="f-fault">${t("order.fault")}</label><textarea id="f-fault" name="fault_description" rows="2"></textarea>
      <label for="f-testno">${t("order.testno")}</label><input id="f-testno" name="test_no" autocomplete="off">
      <div class="row"><div><label for="f-owner">${t("order.owner")}</label><input id="f-owner" name="owner_name" autocomplete="off"></div>
        <div><label for="f-phone">${t("order.phone")}</label><input id="f-phone" name="owner_phone" type="tel" autocomplete="off"></div></div>
      <div class="errors" data-role="errors"></div>
      <div class="warnings" data-role="vin-confirm" hidden><p>${t("vin.checkdigit.help")}</p>
        <label for="f-vinreason">${t("vin.checkdigit.reason")}</label><input id="f-vinreason" name="vin_reason" autocomplete="off">
        <p><button type="submit" data-act="confirm-vin">${t("vin.checkdigit.confirm")}</button></p></div>
      <p><button class="primary" type="submit" data-act="save">${t("order.save")}</button></p>
    </form>`;
  $("#order-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const form = ev.target, confirmBox = $("[data-role=vin-confirm]", form);
    const body = formBody(form);
    delete body.vin_reason;
    if (body.test_no) body.emission_repair = true;
    // A Chinese VIN with a wrong check digit is kept only on the technician's confirmation.
    const confirming = ev.submitter && ev.submitter.dataset.act === "confirm-vin";
    if (confirming) body.confirm_vin_check_digit = { reason: form.vin_reason.value.trim() };
    try { const o = await api("POST", "/workorders", body); flash(t("saved"), "info"); state.keepFlash = true; location.hash = "#/orders/" + enc(o.id); }
    catch (e) {
      showFormError(form, e);
      if (e.body && e.body.code === "check_digit") { confirmBox.hidden = false; if (!confirming) form.vin_reason.value = ""; }
    }
  });
}

async function viewOrder(id) {
  const o = await api("GET", `/workorders/${enc(id)}${mayOwner() ? "?include=owner" : ""}`);
  const settled = o.status === "settled";
  const seen = new Set(), warns = [];
  for (const w of [...(state.settled[id] || []), ...(o.warnings || [])]) {
    const k = w.field + "|" + w.message;
    if (!seen.has(k)) { seen.add(k); warns.push(w); }
  }
  const src = o.vin_source ? t("order.vinsource." + o.vin_source) : "—";
  $("#view").innerHTML = h`
    <section class="card" data-order="${o.id}">
      <h2>${o.plate} <span class="muted mono small">${o.id}</span> ${raw(statusPill(o))}</h2>
      <p>${t("order.vin")}: <span class="mono" data-role="order-vin">${o.vin || "—"}</span> <span class="muted">(${t("order.vinsource")}: ${src})</span>
        ${raw(o.vin ? h`<a href="#/vehicles/${enc(o.vin)}" data-act="history">${t("history.link")}</a>` : "")}
        ${raw(o.vin_mismatch ? h`<span class="pill bad">${t("order.vinmismatch")}: ${o.vin_read || ""}</span>` : "")}</p>
      <p>${t("order.mileage")}: <span data-role="order-mileage">${o.mileage_km ?? "—"}</span> · ${t("order.bay")}: ${o.bay || "—"} · ${t("order.repairdate")}: ${o.repair_date || "—"}</p>
      <p>${t("order.fault")}: ${o.fault_description || "—"}</p>
      ${raw(o.fault_record && o.fault_record !== o.fault_description ? h`<p>${t("order.faultrecord")}: <span data-role="fault-record">${o.fault_record}</span></p>` : "")}
      ${raw(o.test_no ? h`<p>${t("order.testno")}: <span class="mono">${o.test_no}</span></p>` : "")}
      ${raw(o.owner ? h`<p class="owner" data-role="owner">${t("order.ownerdata")}: ${o.owner.name || ""} ${o.owner.phone || ""}</p>` : "")}
      ${raw(settled ? h`<p>${t("order.costlistcode")}: <span class="mono" data-role="costlistcode">${o.costlistcode}</span> · ${t("order.settledate")}: ${o.settle_date || ""} · ${t("order.revision")}: ${o.revision}</p>` : "")}
      ${raw(warns.length ? h`<div class="warnings" data-role="warnings"><b>${t("order.warnings")}</b><ul>${join(warns.map(w => h`<li>${raw(problemHTML(w))}</li>`))}</ul></div>` : "")}
    </section>
    ${raw(o.vin_conflict && !settled ? h`<section class="card warnings" data-role="vin-conflict"><h2>${t("vin.conflict")}</h2>
      <p>${t("vin.conflict.order")}: <span class="mono big" data-role="conflict-order-vin">${o.vin_conflict.order_vin}</span></p>
      <p>${t("vin.conflict.car")}: <span class="mono big" data-role="conflict-car-vin">${o.vin_conflict.car_vin}</span>
        <span class="muted small mono">${o.vin_conflict.scan_id} · ${o.vin_conflict.bay || ""} · ${when(o.vin_conflict.at)}</span></p>
      <p class="muted">${t("vin.conflict.help")}</p>
      <p><button data-act="use-car-vin">${t("vin.conflict.usecar")}</button></p>
      <form id="vin-confirm-form" novalidate><label for="c-reason">${t("vin.conflict.reason")}</label><input id="c-reason" name="reason" autocomplete="off">
        <div class="errors" data-role="errors"></div>
        <p><button class="danger" data-act="confirm-vin-mismatch">${t("vin.conflict.confirm")}</button></p></form></section>` : "")}
    ${raw((o.scans || []).length ? h`<section class="card"><h2>${t("order.scans")}</h2><table data-role="scans">
      ${join(o.scans.map(s => h`<tr><td class="mono"><a href="#/report/scan/${enc(s.id)}" data-act="scan-report">${s.id}</a></td><td>${when(s.at)}</td><td>${s.bay || ""}</td><td>${t("scan.mil")} ${s.mil === true ? t("scan.mil.on") : s.mil === false ? t("scan.mil.off") : t("scan.unknown")}</td>
        <td class="mono">${(s.dtcs || []).map(d => d.code).join(" ") || ((s.unread || []).some(u => u.startsWith("dtcs_")) ? t("scan.unknown") : t("scan.none"))}</td><td data-role="scan-note">${noteText(s.note)}</td></tr>`))}</table></section>` : "")}
    <section class="card"><h2>${t("order.items")}</h2>
      <table data-role="items">${join((o.items || []).map(i => h`<tr><td>${i.name}</td><td>${i.hours} h</td><td>${wasteText(i.waste)}</td></tr>`))}</table>
      ${raw(settled ? "" : h`<form id="item-form" class="row" novalidate><input name="name" placeholder="${t("order.item")}" aria-label="${t("order.item")}">
        <input name="hours" type="number" step="0.1" min="0" placeholder="${t("order.hours")}" aria-label="${t("order.hours")}">${wasteInputs()}<button data-act="add-item">${t("order.add")}</button></form><div class="errors" data-role="errors"></div>`)}
    </section>
    <section class="card"><h2>${t("order.parts")}</h2>
      <table data-role="parts">${join((o.parts || []).map(p => h`<tr><td>${p.name}</td><td class="mono">${p.code}</td><td>${p.quantity}</td><td>${wasteText(p.waste)}</td></tr>`))}</table>
      ${raw(settled ? "" : h`<form id="part-form" class="row" novalidate><input name="name" placeholder="${t("order.part")}" aria-label="${t("order.part")}">
        <input name="code" placeholder="${t("order.code")}" aria-label="${t("order.code")}"><input name="quantity" type="number" step="0.01" min="0" placeholder="${t("order.qty")}" aria-label="${t("order.qty")}">
        ${wasteInputs()}<button data-act="add-part">${t("order.add")}</button></form><div class="errors" data-role="errors"></div>`)}
    </section>
    ${raw(settled ? h`
    <section class="card"><h2>${t("order.revisions")}</h2>
      <table data-role="revisions"><tr><th>#</th><th>${t("scan.time")}</th><th>${t("order.reason")}</th><th>${t("order.changed")}</th><th>${t("outbox.id")}</th></tr>
      ${join((o.revisions || []).map(r => h`<tr><td>${r.n}</td><td>${when(r.at)}</td><td>${r.reason || ""}</td><td class="mono small">${(r.changed || []).join(", ")}</td><td>${r.outbox_seq}</td></tr>`))}</table>
      <form id="revise-form" novalidate><h3>${t("order.revise")}</h3>
        <p class="muted">${t("order.revise.help")}</p>
        <label for="r-reason">${t("order.reason")}</label><input id="r-reason" name="reason" autocomplete="off">
        <div class="row"><div><label for="r-vin">${t("order.vin")}</label><input id="r-vin" name="vin" class="mono" maxlength="17" value="${o.vin || ""}"></div>
          <div><label for="r-km">${t("order.mileage")}</label><input id="r-km" name="mileage_km" type="number" min="0" value="${o.mileage_km ?? ""}"></div></div>
        <label for="r-fault">${t("order.fault")}</label><textarea id="r-fault" name="fault_description" rows="2">${o.fault_description || ""}</textarea>
        <div class="errors" data-role="errors"></div>
        <p><button data-act="revise">${t("order.revise")}</button></p></form></section>` : h`
    <section class="card"><h2>${t("order.edit")}</h2><form id="edit-form" novalidate>
      <div class="row"><div><label for="e-vin">${t("order.vin")}</label><input id="e-vin" name="vin" class="mono" maxlength="17" value="${o.vin || ""}"></div>
        <div><label for="e-km">${t("order.mileage")}</label><input id="e-km" name="mileage_km" type="number" min="0" value="${o.mileage_km ?? ""}"></div></div>
      <label for="e-fault">${t("order.fault")}</label><textarea id="e-fault" name="fault_description" rows="2">${o.fault_description || ""}</textarea>
      <div class="errors" data-role="errors"></div>
      <div class="warnings" data-role="vin-confirm" hidden><p data-role="vin-confirm-help"></p>
        <label for="e-vinreason">${t("vin.checkdigit.reason")}</label><input id="e-vinreason" name="vin_reason" autocomplete="off">
        <p><button type="submit" data-act="confirm-edit-vin">${t("vin.checkdigit.confirm")}</button></p></div>
      <p><button data-act="save-edit">${t("order.save")}</button></p></form></section>
    <section class="card"><form id="settle-form" novalidate><h2>${t("order.settle")}</h2><div class="row">
        <div><label for="s-code">${t("order.costlistcode")}</label><input id="s-code" name="costlistcode" class="mono" autocomplete="off"></div>
        <div><label for="s-date">${t("order.settledate")}</label><input id="s-date" name="settle_date" type="date"></div></div>
        ${raw(o.emission_repair ? h`<label for="s-noselftest">${t("order.noselftest")}</label><textarea id="s-noselftest" name="no_selftest_reason" rows="2" maxlength="200"></textarea>
        <p class="muted small">${t("order.noselftest.help")}</p>` : "")}
        <div class="errors" data-role="errors"></div>
        <p><button class="primary" type="submit" data-act="settle">${t("order.settle")}</button></p></form></section>`)}`;

  const bind = (sel, fn) => { const f = $(sel); if (f) f.addEventListener("submit", async ev => {
    ev.preventDefault();
    const btn = $("button", ev.target); btn.disabled = true;
    try { await fn(ev.target); } catch (e) { showFormError(ev.target, e); } finally { btn.disabled = false; }
  }); };
  const reload = () => viewOrder(id).then(translatePage, showError);
  bind("#item-form", async f => { const b = formBody(f); await api("POST", `/workorders/${enc(id)}/items`, { name: b.name || "", hours: b.hours ? Number(b.hours) : 0, ...wasteOf(b) }); await reload(); });
  bind("#part-form", async f => { const b = formBody(f); await api("POST", `/workorders/${enc(id)}/parts`, { name: b.name || "", code: b.code || "", quantity: b.quantity ? Number(b.quantity) : 0, ...wasteOf(b) }); await reload(); });
  bind("#vin-confirm-form", async f => {
    await api("POST", `/workorders/${enc(id)}/scans`, { scan_id: o.vin_conflict.scan_id, confirm_vin_mismatch: { reason: f.reason.value.trim() } });
    flash(t("scan.attached") + " " + id, "info");
    await reload();
  });
  const useCar = $("[data-act=use-car-vin]");
  if (useCar) useCar.addEventListener("click", async () => {
    useCar.disabled = true;
    try {
      await api("PATCH", `/workorders/${enc(id)}`, { vin: o.vin_conflict.car_vin });
      await api("POST", `/workorders/${enc(id)}/scans`, { scan_id: o.vin_conflict.scan_id });
      flash(t("scan.attached") + " " + id, "info");
      await reload();
    } catch (e) { showError(e); useCar.disabled = false; }
  });
  // A VIN the rules refuse (a Chinese VIN with a wrong check digit, or another VIN than the car
  // reported) is saved only when the technician confirms it with a reason.
  const editForm = $("#edit-form");
  if (editForm) editForm.addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = ev.target, box = $("[data-role=vin-confirm]", f);
    const p = changes(formBody(f));
    if (ev.submitter && ev.submitter.dataset.act === "confirm-edit-vin" && f.dataset.confirm) {
      p[f.dataset.confirm] = { reason: f.vin_reason.value.trim() };
      if (p.vin === undefined) p.vin = o.vin || "";
    }
    try { await api("PATCH", `/workorders/${enc(id)}`, p); flash(t("saved"), "info"); await reload(); }
    catch (e) {
      showFormError(f, e);
      const code = e.body && e.body.code;
      if (code === "check_digit" || code === "vin_mismatch") {
        f.dataset.confirm = code === "check_digit" ? "confirm_vin_check_digit" : "confirm_vin_mismatch";
        $("[data-role=vin-confirm-help]", f).textContent = t(code === "check_digit" ? "vin.checkdigit.help" : "vin.conflict.help");
        box.hidden = false;
      }
    }
  });
  // changes lists the record fields a form changes (only those, so a revision says what it corrects).
  const changes = (b) => {
    const p = {};
    if ((b.vin || "") !== (o.vin || "")) p.vin = b.vin || "";
    if (b.mileage_km !== undefined && b.mileage_km !== o.mileage_km) p.mileage_km = b.mileage_km;
    if ((b.fault_description || "") !== (o.fault_description || "")) p.fault_description = b.fault_description || "";
    return p;
  };
  bind("#revise-form", async f => {
    const b = formBody(f);
    const res = await api("POST", `/workorders/${enc(id)}/revisions`, Object.assign({ reason: b.reason || "" }, changes(b)));
    state.settled[id] = res.warnings || [];
    flash(t("order.revised.ok"), "info");
    await reload();
  });
  bind("#settle-form", async f => {
    const b = formBody(f);
    const res = await api("POST", `/workorders/${enc(id)}/settle`, { costlistcode: b.costlistcode || "", settle_date: b.settle_date ? b.settle_date.replaceAll("-", "") : undefined,
      no_selftest_reason: b.no_selftest_reason ? b.no_selftest_reason : undefined });
    state.settled[id] = res.warnings || [];
    flash(t("order.settled.ok"), "info");
    await reload();
  });
}

// ---- outbox ----------------------------------------------------------------------------
async function viewOutbox() {
  const [ob, waiting, dead] = await Promise.all([api("GET", "/outbox"), api("GET", "/outbox/records?limit=20"), api("GET", "/deadletters")]);
  const w = items(waiting), d = items(dead);
  $("#view").innerHTML = h`
    <section class="card"><h2>${t("nav.outbox")}</h2>
      <p class="stats">${t("outbox.depth")}: <span class="big" data-role="depth">${ob.depth ?? 0}</span> (${ob.bytes ?? 0} ${t("outbox.bytes")})
      · ${t("outbox.oldest")}: <span data-role="oldest">${ob.depth ? Math.round(ob.oldest_age_s || 0) + " s" : "—"}</span>
      · ${t("outbox.dead")}: <span data-role="dead-count">${ob.dead_letters ?? 0}</span></p></section>
    <section class="card"><h2>${t("outbox.waiting")}</h2>
      ${raw(w.length ? h`<table data-role="waiting"><tr><th>#</th><th>${t("outbox.kind")}</th><th>${t("outbox.id")}</th><th>${t("outbox.created")}</th><th>${t("outbox.attempts")}</th></tr>
        ${join(w.map(r => h`<tr><td>${r.seq}</td><td>${r.kind}</td><td class="mono small">${r.id}</td><td>${when(r.created)}</td><td>${r.attempts}</td></tr>`))}</table>` : h`<p>${t("scan.none")}</p>`)}</section>
    <section class="card"><h2>${t("outbox.dead")}</h2>
      ${raw(d.length ? h`<table data-role="dead"><tr><th>#</th><th>${t("outbox.kind")}</th><th>${t("outbox.id")}</th><th>${t("outbox.reason")}</th><th></th></tr>
        ${join(d.map(r => h`<tr data-seq="${r.seq}"><td>${r.seq}</td><td>${r.kind}</td><td class="mono small">${r.id}</td><td>${r.reason}</td><td><button data-act="requeue" data-seq="${r.seq}">${t("outbox.requeue")}</button></td></tr>`))}</table>`
        : h`<p data-role="dead">${t("scan.none")}</p>`)}
    </section>`;
  $$("button[data-act=requeue]").forEach(b => b.addEventListener("click", async () => {
    b.disabled = true;
    try { await api("POST", `/deadletters/${enc(b.dataset.seq)}/requeue`); flash(t("outbox.requeued"), "info"); await viewOutbox(); translatePage(); }
    catch (e) { showError(e); b.disabled = false; }
  }));
}

// ---- broker status ---------------------------------------------------------------------
function showUplink(s) {
  const el = $("#uplink");
  if (!s) return;
  const none = s.configured === false;
  el.textContent = none ? t("uplink.none") : s.connected ? t("uplink.online") : t("uplink.offline");
  el.className = "pill " + (none ? "" : s.connected ? "ok" : "bad");
  el.dataset.connected = s.connected ? "true" : "false";
  el.title = [s.broker, s.last_error].filter(Boolean).join(" · ");
  // A tablet cannot hover: why the platform is down is said in the page, not only in the title.
  const why = $("#uplink-why");
  const reason = !none && !s.connected ? (s.last_error || "") : "";
  why.textContent = reason ? t("uplink.why") + ": " + reason : "";
  why.hidden = !reason;
}
let uplinkTimer = null, lastUplink = null;
async function refreshUplink() {
  try { lastUplink = await api("GET", "/uplink"); showUplink(lastUplink); } catch (e) { /* shown on the next poll */ }
}

// ---- router ----------------------------------------------------------------------------
let routing = 0;
async function route() {
  if (!state.token) { showLogin(); return; }
  const my = ++routing;
  const hash = location.hash || "#/bays";
  $$("header nav a").forEach(a => a.classList.toggle("active", hash.startsWith(a.getAttribute("href"))));
  if (liveAbort && !hash.startsWith("#/bays/")) { liveAbort.abort(); liveAbort = null; }
  if (!hash.startsWith("#/bays/")) { stopSelfTest(); ShopCharts.stop(); }
  const parts = hash.slice(2).split("/").map(decodeURIComponent);
  document.body.dataset.view = parts[0] + (parts[1] ? (parts[1] === "new" ? "-new" : "-detail") : "");
  try {
    if (parts[0] === "bays" && parts[1]) await viewBay(parts[1]);
    else if (parts[0] === "orders" && parts[1] === "new") await viewNewOrder();
    else if (parts[0] === "orders" && parts[1]) await viewOrder(parts[1]);
    else if (parts[0] === "orders") await viewOrders();
    else if (parts[0] === "outbox") await viewOutbox();
    else if (parts[0] === "waste") await viewWaste();
    else if (parts[0] === "audit") await viewAudit();
    else if (parts[0] === "vehicles" && parts[1]) await ShopViews.history(parts[1]);
    else if (parts[0] === "report" && parts[1] === "scan" && parts[2]) await ShopViews.scanReport(parts[2]);
    else if (parts[0] === "report" && parts[1] === "selftest" && parts[2]) await ShopViews.selfTestReport(parts[2]);
    else { document.body.dataset.view = "bays"; await viewBays(); }
    if (my === routing) { translatePage(); ShopProgress.redraw(); }
  } catch (e) { showError(e); }
}

function start() {
  follow();
  refreshUplink();
  if (uplinkTimer) clearInterval(uplinkTimer);
  uplinkTimer = setInterval(() => {
    if (!state.token) return;
    refreshUplink();
    // Deliveries are not announced on the event stream: the outbox page reads itself again.
    if (currentView() === "outbox") viewOutbox().then(translatePage, () => {});
  }, 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  translatePage();
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("obdgw.lang", state.lang);
    translatePage();
    if (lastUplink) showUplink(lastUplink);
    if (document.body.dataset.view !== "login") route();
  });
  $("#logout").addEventListener("click", () => { state.token = ""; localStorage.removeItem("obdgw.token"); showLogin(); });
  $("#clear-form").addEventListener("submit", submitClear);
  $("[data-act=cancel]", $("#clear-dialog")).addEventListener("click", () => $("#clear-dialog").close());
  $("#abort-form").addEventListener("submit", confirmAbort);
  $("[data-act=cancel]", $("#abort-dialog")).addEventListener("click", () => $("#abort-dialog").close());
  window.addEventListener("hashchange", () => {
    // A message belongs to the page it was said on.
    if (!state.keepFlash && $("#flash").textContent !== t("events.off")) flash("");
    state.keepFlash = false;
    route();
  });
  if (!state.token) { showLogin(); return; }
  loadRole().then(route);
  start();
});
