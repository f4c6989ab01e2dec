// A car's history by VIN and the printable reports: the customer's diagnostic report of a scan
// and the I/M self-test report of a work order. Printed on A4 from the tablet's browser (the
// print dialog's "Save as PDF" makes the PDF); the print rules are in style.css (@media print).
// Uses app.js's helpers (api, t, h, raw, join, enc, when, state, describeCodes, monLabel,
// pidLabel, milPill, renderResult, methodName, noteText).
"use strict";
const ShopViews = (() => {
  const kindName = { stored: "scan.stored", pending: "scan.pending", permanent: "scan.permanent" };

  // ---- history --------------------------------------------------------------------------------
  // stale: the page moved on while a view was loading; the view must not draw over the new one.
  const stale = at => location.hash !== at;

  async function history(vin) {
    const at = location.hash;
    const res = await api("GET", `/vehicles/${enc(vin)}/history`);
    if (stale(at)) return;
    const rows = (res.items || []).map(it => {
      if (it.kind === "scan") {
        const s = it.scan;
        const codes = (s.dtcs || []).map(d => d.code).join(" ") || ((s.unread || []).some(u => u.startsWith("dtcs_")) ? t("scan.unknown") : t("scan.none"));
        return h`<tr data-kind="scan" data-id="${s.id}"><td>${when(it.at)}</td><td><span class="pill">${t("history.scan")}</span></td>
          <td>${s.bay || ""} · ${t("scan.mil")} ${s.mil === true ? t("scan.mil.on") : s.mil === false ? t("scan.mil.off") : t("scan.unknown")}
            · <span class="mono">${codes}</span>${s.note ? " · " + noteText(s.note) : ""}${raw(s.order ? h` · <a href="#/orders/${enc(s.order)}">${s.order}</a>` : "")}</td>
          <td><a class="button" href="#/report/scan/${enc(s.id)}" data-act="scan-report">${t("report.open")}</a></td></tr>`;
      }
      if (it.kind === "order") {
        const o = it.order;
        return h`<tr data-kind="order" data-id="${o.id}"><td>${when(it.at)}</td><td><span class="pill ${o.status === "settled" ? "ok" : "warn"}">${t("history.order")}</span></td>
          <td><a href="#/orders/${enc(o.id)}" class="mono">${o.id}</a> · ${o.plate} · ${o.status === "settled" ? t("orders.settled") : t("orders.open")}
            ${o.mileage_km != null ? " · " + o.mileage_km + " km" : ""}${o.fault_description ? " · " + o.fault_description : ""}</td><td></td></tr>`;
      }
      const st = it.selftest;
      return h`<tr data-kind="selftest" data-id="${st.order}"><td>${when(it.at)}</td><td><span class="pill ${st.verdict === "pass" ? "ok" : "bad"}">${t("history.selftest")}</span></td>
        <td>${t("selftest.method." + methodName(st.method))} · ${t("selftest.verdict." + st.verdict)} · <span class="mono">${st.rig || ""}</span> · <a href="#/orders/${enc(st.order)}">${st.order}</a></td>
        <td><a class="button" href="#/report/selftest/${enc(st.order)}" data-act="selftest-report">${t("report.open")}</a></td></tr>`;
    });
    $("#view").innerHTML = h`<section class="card" data-role="history"><h2>${t("history.title")} <span class="mono" data-role="history-vin">${res.vin}</span></h2>
      ${raw(rows.length ? h`<table data-role="history-items"><tr><th>${t("scan.time")}</th><th>${t("history.kind")}</th><th>${t("history.what")}</th><th></th></tr>${join(rows)}</table>`
        : h`<p data-role="history-items">${t("history.empty")}</p>`)}</section>`;
  }

  // ---- the customer's diagnostic report ---------------------------------------------------
  function codeRows(rep) {
    const rows = [];
    for (const kind of ["stored", "pending", "permanent"]) {
      for (const d of (rep.dtcs && rep.dtcs[kind]) || []) {
        const c = state.dtc[d.code] || {};
        rows.push(h`<tr data-code="${d.code}"><td class="mono big">${d.code}</td><td>${t(kindName[kind])}</td>
          <td lang="zh-CN">${c.zh || d.description || ""}</td><td lang="en">${c.en || ""}</td></tr>`);
      }
    }
    return rows;
  }
  const codeList = rep => ["stored", "pending", "permanent"].flatMap(k => ((rep && rep.dtcs && rep.dtcs[k]) || []).map(d => d.code));

  async function full(id) { const s = await api("GET", `/scans/${enc(id)}`); return Object.assign(s, { report: s.report || {} }); }

  async function scanReport(id) {
    const at = location.hash;
    const sc = await full(id);
    const rep = sc.report;
    const order = sc.order ? await api("GET", `/workorders/${enc(sc.order)}`).catch(() => null) : null;
    // Before and after clearing: the order's scans taken around a confirmed clear.
    let before = null, after = null;
    if (order) {
      const around = note => (order.scans || []).filter(s => s.note === note).pop();
      const b = around("before clearing fault codes"), a = around("after clearing fault codes");
      if (b && a) [before, after] = await Promise.all([full(b.id), full(a.id)]);
    }
    await loadLabels();
    await describeCodes([...codeList(rep), ...codeList(before && before.report), ...codeList(after && after.report)]);
    if (stale(at)) return;
    const codes = codeRows(rep);
    const r = rep.readiness || {}, inc = new Set(r.incomplete || []);
    const frames = (rep.freeze_frames || []).map(f => h`<h4>${t("scan.freeze")} · ${f.dtc || ""}</h4>
      <table class="compact" data-role="report-freeze">${join((f.values || []).map(v => h`<tr><td>${pidLabel(v)}</td><td class="mono">${v.text || v.value} ${v.text ? "" : (v.unit || "")}</td></tr>`))}</table>`);
    const mil = m => m === true ? t("scan.mil.on") : m === false ? t("scan.mil.off") : t("scan.unknown");
    $("#view").innerHTML = h`<article class="report" data-role="report" data-report="scan">
      ${raw(toolbar())}
      <h1>${t("report.diag.title")}</h1>
      <table class="facts" data-role="report-vehicle">
        <tr><th>${t("order.plate")}</th><td>${(order && order.plate) || "—"}</td><th>${t("report.vin")}</th><td class="mono" data-role="report-vin">${rep.vin || "—"}</td></tr>
        <tr><th>${t("order.mileage")}</th><td>${order && order.mileage_km != null ? order.mileage_km : rep.odometer_km != null ? Math.round(rep.odometer_km) : "—"}</td>
          <th>${t("scan.protocol")}</th><td>${rep.protocol || "—"}</td></tr>
        <tr><th>${t("scan.time")}</th><td>${when(rep.time)}</td><th>${t("order.id")}</th><td class="mono">${sc.order || "—"}</td></tr>
        <tr><th>${t("scan.mil")}</th><td data-role="report-mil">${mil(rep.mil)}</td><th>${t("report.scanid")}</th><td class="mono">${sc.id}${sc.note ? " · " + noteText(sc.note) : ""}</td></tr>
      </table>
      <h2>${t("scan.dtcs")}</h2>
      ${raw(codes.length ? h`<table data-role="report-dtcs"><tr><th>${t("scan.code")}</th><th>${t("scan.kind")}</th><th>${t("report.desc.zh")}</th><th>${t("report.desc.en")}</th></tr>${join(codes)}</table>`
        : h`<p data-role="report-dtcs">${t("scan.none")}</p>`)}
      <h2>${t("scan.readiness")}</h2>
      <table class="compact" data-role="report-readiness">${join((r.supported || []).map(m => h`<tr><td>${monLabel(m)}</td><td>${inc.has(m) ? t("report.incomplete") : t("report.complete")}</td></tr>`))}</table>
      ${raw(rep.readiness == null ? h`<p>${t("scan.unknown")}</p>` : "")}
      ${join(frames)}
      ${raw(before && after ? h`<h2>${t("report.clearing")}</h2><table data-role="report-clearing">
        <tr><th></th><th>${t("report.before")}</th><th>${t("report.after")}</th></tr>
        <tr><td>${t("scan.mil")}</td><td>${mil(before.report.mil)}</td><td>${mil(after.report.mil)}</td></tr>
        <tr><td>${t("scan.dtcs")}</td><td class="mono">${codeList(before.report).join(" ") || t("scan.none")}</td><td class="mono">${codeList(after.report).join(" ") || t("scan.none")}</td></tr>
        <tr><td>${t("scan.time")}</td><td>${when(before.report.time)}</td><td>${when(after.report.time)}</td></tr></table>` : "")}
      ${raw(signatures())}
    </article>`;
    wire();
  }

  // ---- the I/M self-test report --------------------------------------------------------------
  async function selfTestReport(orderID) {
    const at = location.hash;
    const [st, order] = await Promise.all([api("GET", `/workorders/${enc(orderID)}/selftest`), api("GET", `/workorders/${enc(orderID)}`)]);
    if (stale(at)) return;
    const res = st.result || {};
    $("#view").innerHTML = h`<article class="report" data-role="report" data-report="selftest">
      ${raw(toolbar())}
      <h1>${t("report.im.title")} · ${t("selftest.method." + methodName(st.method))}</h1>
      <table class="facts" data-role="report-vehicle">
        <tr><th>${t("order.plate")}</th><td>${order.plate || "—"}</td><th>${t("report.vin")}</th><td class="mono" data-role="report-vin">${order.vin || "—"}</td></tr>
        <tr><th>${t("order.id")}</th><td class="mono">${order.id}</td><th>${t("report.testno")}</th><td class="mono">${order.test_no || "—"}</td></tr>
        <tr><th>${t("report.instrument")}</th><td data-role="report-instrument">${[st.rig_model, st.rig_serial].filter(Boolean).join(" · ") || st.rig || "—"}</td>
          <th>${t("report.bay")}</th><td>${st.bay || "—"}</td></tr>
      </table>
      <div data-role="report-result">${raw(renderResult(res))}</div>
      ${raw(signatures())}
    </article>`;
    wire();
  }

  function toolbar() {
    return h`<div class="row toolbar noprint"><button class="primary" data-act="print">${t("report.print")}</button>
      <button data-act="back">${t("report.back")}</button><span class="muted small">${t("report.pdf")}</span></div>`;
  }
  function signatures() {
    return h`<div class="signatures"><p>${t("report.technician")}: ____________________</p><p>${t("report.customer")}: ____________________</p>
      <p class="muted small">${t("report.printed")}: ${when(new Date().toISOString())}</p></div>`;
  }
  function wire() {
    $("[data-act=print]").addEventListener("click", () => window.print());
    $("[data-act=back]").addEventListener("click", () => window.history.length > 1 ? window.history.back() : (location.hash = "#/bays"));
  }

  return { history, scanReport, selfTestReport };
})();
