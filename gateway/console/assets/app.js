// obdgw console: a small single-page app over the daemon's REST API (/api/v1) and its event
// stream. No framework, no outside hosts: everything is served by the gateway itself.
"use strict";

const API = "/api/v1";
const state = { lang: localStorage.getItem("obdgw.lang") || "zh", token: localStorage.getItem("obdgw.token") || "" };

// ---- helpers ---------------------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
function t(key) { return (I18N[state.lang] && I18N[state.lang][key]) || I18N.zh[key] || key; }
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function h(strings, ...vals) { // tagged template that escapes every interpolated value
  return strings.reduce((out, s, i) => out + s + (i < vals.length ? (vals[i] && vals[i].__html !== undefined ? vals[i].__html : esc(vals[i])) : ""), "");
}
const raw = html => ({ __html: html });
function flash(msg, kind) {
  const f = $("#flash");
  f.textContent = msg; f.className = kind || ""; f.hidden = !msg;
  if (msg && kind === "info") setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 4000);
}
function translatePage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
}

class APIError extends Error {
  constructor(status, body) { super(body.error || ("HTTP " + status)); this.status = status; this.field = body.field; this.body = body; }
}
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (state.token) opts.headers.Authorization = "Bearer " + state.token;
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
function showError(e) {
  flash(e.field ? `${e.message} (${e.field})` : e.message);
  if (e.field) {
    const el = document.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (el) { el.setAttribute("aria-invalid", "true"); el.focus(); }
  }
}
const list = x => Array.isArray(x) ? x : (x && (x.items || x.workorders || x.bays || x.records)) || [];

// ---- login -----------------------------------------------------------------------------
function showLogin(msg) {
  const v = $("#view");
  v.innerHTML = $("#login-tpl").innerHTML;
  translatePage();
  if (msg) flash(msg);
  $("#login").addEventListener("submit", ev => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    localStorage.setItem("obdgw.token", state.token);
    flash("");
    route();
    follow();
  });
}

// ---- views -----------------------------------------------------------------------------
function stateClass(s) { return { ready: "ok", scanning: "warn", connecting: "warn", ignition_off: "warn", fault: "bad", absent: "" }[s] || ""; }

async function viewBays() {
  const bays = list(await api("GET", "/bays"));
  const v = $("#view");
  v.innerHTML = `<div class="grid">${bays.map(b => h`
    <section class="card bay" data-bay="${b.name}">
      <h2>${b.name} <span class="pill ${stateClass(b.state)}" data-role="state">${t("bay.state." + b.state)}</span></h2>
      <p class="muted mono">${b.adapter || ""}</p>
      <p>${t("scan.vin")}: <span class="mono big" data-role="vin">${(b.vehicle && b.vehicle.vin) || "—"}</span></p>
      <div class="row">
        <button class="primary" data-act="scan">${t("bay.scan")}</button>
        <a href="#/bays/${encodeURIComponent(b.name)}"><button>${t("bay.lastscan")}</button></a>
      </div>
    </section>`).join("")}</div>`;
  v.querySelectorAll("button[data-act=scan]").forEach(btn => btn.addEventListener("click", async () => {
    const bay = btn.closest("[data-bay]").dataset.bay;
    btn.disabled = true;
    try { await api("POST", `/bays/${encodeURIComponent(bay)}/scan`, {}); flash(t("bay.state.scanning") + " " + bay, "info"); }
    catch (e) { showError(e); } finally { btn.disabled = false; }
  }));
}

function renderScan(s) {
  if (!s) return h`<p class="muted">${t("scan.none")}</p>`;
  const dtcRows = [];
  for (const [kind, label] of [["stored", "scan.stored"], ["pending", "scan.pending"], ["permanent", "scan.permanent"]]) {
    for (const d of (s.dtcs && s.dtcs[kind]) || []) dtcRows.push(h`<tr><td class="mono">${d.code}</td><td>${t(label)}</td><td class="mono">${d.ecu}</td><td>${d.description}</td></tr>`);
  }
  const r = s.readiness || {};
  return h`
    <p>${t("scan.vin")}: <span class="mono big" data-role="scan-vin">${s.vin || "—"}</span>
       ${raw(s.vin && s.vin_valid === false ? h`<span class="pill warn">${t("scan.vin.bad")}</span>` : "")}</p>
    <p>${t("scan.protocol")}: ${s.protocol || "—"} · ${t("scan.mil")}:
       <span class="pill ${s.mil ? "bad" : "ok"}" data-role="mil">${s.mil ? t("scan.mil.on") : t("scan.mil.off")}</span>
       ${raw(s.odometer_km != null ? h` · ${t("scan.odometer")}: ${s.odometer_km} km` : "")}
       · ${t("scan.elapsed")}: ${((s.elapsed_ms || 0) / 1000).toFixed(1)} s</p>
    <h3>${t("scan.dtcs")}</h3>
    ${raw(dtcRows.length ? `<table data-role="dtcs"><tr><th>DTC</th><th></th><th>${esc(t("scan.ecu"))}</th><th></th></tr>${dtcRows.join("")}</table>` : h`<p data-role="dtcs">${t("scan.none")}</p>`)}
    <h3>${t("scan.readiness")}</h3>
    <p>${t("scan.supported")}: ${(r.supported || []).join(", ") || "—"}</p>
    <p>${t("scan.incomplete")}: <span data-role="incomplete">${(r.incomplete || []).join(", ") || t("scan.none")}</span></p>
    ${raw(s.freeze_frame ? h`<h3>${t("scan.freeze")}</h3><pre class="mono">${JSON.stringify(s.freeze_frame, null, 1)}</pre>` : "")}`;
}

async function viewBay(name) {
  const b = await api("GET", `/bays/${encodeURIComponent(name)}`);
  const v = $("#view");
  v.innerHTML = h`
    <section class="card" data-bay="${b.name}">
      <h2>${b.name} <span class="pill ${stateClass(b.state)}" data-role="state">${t("bay.state." + b.state)}</span></h2>
      <div class="live" data-role="live">
        <div><b data-pid="rpm">—</b>${t("live.rpm")}</div><div><b data-pid="coolant_c">—</b>${t("live.coolant")}</div><div><b data-pid="speed_kmh">—</b>${t("live.speed")}</div>
      </div>
      <div class="row"><button class="primary" data-act="scan">${t("bay.scan")}</button>
      <button class="danger" data-act="clear">${t("bay.clear")}</button></div>
    </section>
    <section class="card"><h2>${t("bay.lastscan")}</h2>${raw(renderScan(b.last_scan))}</section>`;
  $("[data-act=scan]").addEventListener("click", () => api("POST", `/bays/${encodeURIComponent(name)}/scan`, {}).then(() => flash(t("bay.state.scanning"), "info"), showError));
  $("[data-act=clear]").addEventListener("click", async () => {
    const vin = prompt(t("bay.clear.confirm"));
    if (!vin) return;
    const carVin = b.vehicle && b.vehicle.vin;
    if (carVin && vin.trim().toUpperCase() !== carVin) { flash(t("bay.clear.vinmismatch")); return; }
    try { await api("POST", `/bays/${encodeURIComponent(name)}/clear-dtcs`, { confirm: true, vin: vin.trim().toUpperCase(), request_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) }); flash(t("saved"), "info"); }
    catch (e) { showError(e); }
  });
  watchLive(name);
}

let liveAbort = null;
function watchLive(bay) {
  if (liveAbort) liveAbort.abort();
  liveAbort = new AbortController();
  stream(`${API}/bays/${encodeURIComponent(bay)}/live`, liveAbort.signal, ev => {
    const d = ev.data || ev;
    for (const [k, val] of Object.entries(d)) {
      const el = document.querySelector(`[data-pid="${CSS.escape(k)}"]`);
      if (el && typeof val === "number") el.textContent = Math.round(val * 10) / 10;
    }
  });
}

async function viewOrders() {
  const orders = list(await api("GET", "/workorders"));
  $("#view").innerHTML = h`
    <p><a href="#/orders/new"><button class="primary" data-act="new">${t("orders.new")}</button></a></p>
    <section class="card">${raw(orders.length ? `<table data-role="orders"><tr><th>${esc(t("order.plate"))}</th><th>VIN</th><th>${esc(t("order.bay"))}</th><th>${esc(t("order.status"))}</th></tr>` +
      orders.map(o => h`<tr><td><a href="#/orders/${o.id}">${o.plate}</a></td><td class="mono">${o.vin || "—"}</td><td>${o.bay || ""}</td><td>${o.status === "settled" ? t("orders.settled") : t("orders.open")}</td></tr>`).join("") + "</table>"
      : h`<p>${t("orders.empty")}</p>`)}</section>`;
}

async function viewNewOrder() {
  let bays = [];
  try { bays = list(await api("GET", "/bays")); } catch (e) { /* the form still works */ }
  $("#view").innerHTML = h`
    <form id="order-form" class="card">
      <h2>${t("orders.new")}</h2>
      <div class="row"><div><label>${t("order.plate")}</label><input name="plate" required></div>
        <div><label>${t("order.platecolor")}</label><select name="plate_color"><option value="blue">蓝 blue</option><option value="yellow">黄 yellow</option><option value="green">绿 green</option><option value="black">黑 black</option><option value="white">白 white</option></select></div></div>
      <div class="row"><div><label>${t("order.vin")}</label><input name="vin" maxlength="17" class="mono"></div>
        <div><label>${t("order.mileage")}</label><input name="mileage_km" type="number" min="0" inputmode="numeric"></div>
        <div><label>${t("order.bay")}</label><select name="bay"><option value=""></option>${raw(bays.map(b => h`<option>${b.name}</option>`).join(""))}</select></div></div>
      <label>${t("order.fault")}</label><textarea name="fault_description" rows="2"></textarea>
      <label>${t("order.testno")}</label><input name="test_no">
      <div class="row"><div><label>${t("order.owner")}</label><input name="owner_name" autocomplete="off"></div>
        <div><label>${t("order.phone")}</label><input name="owner_phone" type="tel" autocomplete="off"></div></div>
      <p><button class="primary" type="submit">${t("order.save")}</button></p>
    </form>`;
  $("#order-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target), body = {};
    for (const [k, v] of f.entries()) if (v !== "") body[k] = k === "mileage_km" ? Number(v) : v;
    if (body.test_no) body.emission_repair = true;
    try { const o = await api("POST", "/workorders", body); location.hash = "#/orders/" + o.id; flash(t("saved"), "info"); }
    catch (e) { showError(e); }
  });
}

async function viewOrder(id) {
  const o = await api("GET", `/workorders/${encodeURIComponent(id)}`);
  const settled = o.status === "settled";
  const warn = (o.warnings || []).map(w => h`<li>${w.message || w}</li>`).join("");
  $("#view").innerHTML = h`
    <section class="card" data-order="${o.id}">
      <h2>${o.plate} <span class="pill ${settled ? "ok" : "warn"}" data-role="status">${settled ? t("orders.settled") : t("orders.open")}</span></h2>
      <p>${t("order.vin")}: <span class="mono">${o.vin || "—"}</span> <span class="muted">(${t("order.vinsource")}: ${o.vin_source || "—"})</span>
        ${raw(o.vin_mismatch ? h`<span class="pill bad">${t("order.vinmismatch")}</span>` : "")}</p>
      <p>${t("order.mileage")}: ${o.mileage_km ?? "—"} · ${t("order.bay")}: ${o.bay || "—"}</p>
      <p>${t("order.fault")}: ${o.fault_description || "—"}</p>
      ${raw(warn ? h`<div class="warnings"><b>${t("order.warnings")}</b><ul>${raw(warn)}</ul></div>` : "")}
    </section>
    <section class="card"><h2>${t("order.items")}</h2>
      <table data-role="items">${raw((o.items || []).map(i => h`<tr><td>${i.name}</td><td>${i.hours}</td></tr>`).join(""))}</table>
      ${raw(settled ? "" : h`<form id="item-form" class="row"><input name="name" placeholder="${t("order.item")}" required><input name="hours" type="number" step="0.1" min="0" placeholder="${t("order.hours")}" required><button>${t("order.add")}</button></form>`)}
    </section>
    <section class="card"><h2>${t("order.parts")}</h2>
      <table data-role="parts">${raw((o.parts || []).map(p => h`<tr><td>${p.name}</td><td class="mono">${p.code}</td><td>${p.quantity}</td></tr>`).join(""))}</table>
      ${raw(settled ? "" : h`<form id="part-form" class="row"><input name="name" placeholder="${t("order.part")}" required><input name="code" placeholder="${t("order.code")}"><input name="quantity" type="number" step="0.01" min="0" placeholder="${t("order.qty")}" required><button>${t("order.add")}</button></form>`)}
    </section>
    ${raw(settled ? h`<section class="card"><p>${t("order.costlistcode")}: <span class="mono">${o.costlistcode}</span> · ${t("order.settledate")}: ${o.settle_date || ""}</p></section>` :
      h`<form id="settle-form" class="card"><h2>${t("order.settle")}</h2><div class="row">
        <div><label>${t("order.costlistcode")}</label><input name="costlistcode" required></div>
        <div><label>${t("order.settledate")}</label><input name="settle_date" type="date"></div></div>
        <div class="errors" data-role="settle-errors"></div>
        <p><button class="primary" type="submit">${t("order.settle")}</button></p></form>`)}`;
  const post = (sel, path, conv) => { const f = $(sel); if (!f) return; f.addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = conv(Object.fromEntries(new FormData(ev.target).entries()));
    try { await api("POST", `/workorders/${encodeURIComponent(id)}${path}`, body); viewOrder(id); }
    catch (e) { showError(e); const box = $("[data-role=settle-errors]"); if (box && sel === "#settle-form") box.textContent = e.field ? `${e.field}: ${e.message}` : e.message; }
  }); };
  post("#item-form", "/items", b => ({ name: b.name, hours: Number(b.hours) }));
  post("#part-form", "/parts", b => ({ name: b.name, code: b.code, quantity: Number(b.quantity) }));
  post("#settle-form", "/settle", b => ({ costlistcode: b.costlistcode, settle_date: b.settle_date ? b.settle_date.replaceAll("-", "") : undefined }));
}

async function viewOutbox() {
  const [ob, dead] = await Promise.all([api("GET", "/outbox"), api("GET", "/deadletters").catch(() => [])]);
  const d = list(dead);
  $("#view").innerHTML = h`
    <section class="card"><h2>${t("nav.outbox")}</h2>
      <p>${t("outbox.depth")}: <span class="big" data-role="depth">${ob.depth ?? 0}</span>
      · ${t("outbox.oldest")}: ${ob.oldest_age_s != null ? Math.round(ob.oldest_age_s) + " s" : "—"}</p></section>
    <section class="card"><h2>${t("outbox.dead")}</h2>
      ${raw(d.length ? `<table data-role="dead"><tr><th>${esc(t("outbox.id"))}</th><th>${esc(t("outbox.kind"))}</th><th>${esc(t("outbox.reason"))}</th><th></th></tr>` +
        d.map(r => h`<tr><td class="mono">${r.id}</td><td>${r.kind}</td><td>${r.reason}</td><td><button data-seq="${r.seq}">${t("outbox.requeue")}</button></td></tr>`).join("") + "</table>" : h`<p>${t("scan.none")}</p>`)}
    </section>`;
  document.querySelectorAll("button[data-seq]").forEach(b => b.addEventListener("click", () =>
    api("POST", `/deadletters/${b.dataset.seq}/requeue`, {}).then(viewOutbox, showError)));
}

// ---- event stream (fetch-based so the bearer token goes in a header) ---------------------
async function stream(url, signal, onEvent) {
  for (;;) {
    try {
      const resp = await fetch(url, { headers: state.token ? { Authorization: "Bearer " + state.token } : {}, signal });
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      const rd = resp.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          const data = block.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
          if (data) { try { onEvent(JSON.parse(data)); } catch (e) { /* ignore a malformed event */ } }
        }
      }
    } catch (e) { if (signal && signal.aborted) return; }
    await new Promise(r => setTimeout(r, 2000)); // reconnect after a drop
  }
}

let followAbort = null;
function follow() {
  if (followAbort) followAbort.abort();
  followAbort = new AbortController();
  stream(API + "/events", followAbort.signal, ev => {
    if (ev.type === "uplink.status") showUplink(ev.data);
    const cur = location.hash || "#/bays";
    if (ev.type === "bay.state" || ev.type === "scan.done") {
      const card = document.querySelector(`[data-bay="${CSS.escape(ev.bay || "")}"]`);
      if (card && ev.type === "bay.state" && ev.data) {
        const pill = card.querySelector("[data-role=state]");
        if (pill) { pill.textContent = t("bay.state." + ev.data.state); pill.className = "pill " + stateClass(ev.data.state); }
        const vin = card.querySelector("[data-role=vin]");
        if (vin && ev.data.vin) vin.textContent = ev.data.vin;
      }
      if (ev.type === "scan.done" && cur.startsWith("#/bays/")) route();
      if (ev.type === "scan.done" && (cur === "#/bays" || cur === "#/")) route();
    }
    if ((ev.type === "workorder.settled" || ev.type === "outbox.stats") && cur === "#/outbox") route();
  });
}

function showUplink(s) {
  const el = $("#uplink");
  if (!s) return;
  el.textContent = s.connected ? t("uplink.online") : t("uplink.offline");
  el.className = "pill " + (s.connected ? "ok" : "bad");
  el.title = s.last_error || "";
}
async function refreshUplink() { try { showUplink(await api("GET", "/uplink")); } catch (e) { /* shown on the next event */ } }

// ---- router ----------------------------------------------------------------------------
async function route() {
  const hash = location.hash || "#/bays";
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", hash.startsWith(a.getAttribute("href"))));
  if (liveAbort && !hash.startsWith("#/bays/")) { liveAbort.abort(); liveAbort = null; }
  const parts = hash.slice(2).split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "bays" && parts[1]) await viewBay(parts[1]);
    else if (parts[0] === "orders" && parts[1] === "new") await viewNewOrder();
    else if (parts[0] === "orders" && parts[1]) await viewOrder(parts[1]);
    else if (parts[0] === "orders") await viewOrders();
    else if (parts[0] === "outbox") await viewOutbox();
    else await viewBays();
    translatePage();
  } catch (e) { if (e.status !== 401) showError(e); }
}

document.addEventListener("DOMContentLoaded", () => {
  translatePage();
  $("#lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("obdgw.lang", state.lang); route(); });
  $("#logout").addEventListener("click", () => { state.token = ""; localStorage.removeItem("obdgw.token"); showLogin(); });
  window.addEventListener("hashchange", route);
  route();
  follow();
  refreshUplink();
});
