// Live data charts of the PIDs a technician picks, and the curves of a running self-test,
// drawn with uPlot (uPlot.iife.min.js, MIT, see uPlot.LICENSE). Uses app.js's helpers (t, h,
// raw, join, enc, stream, API, state, pidLabel); app.js calls ShopCharts from the bay page.
"use strict";
const ShopCharts = (() => {
  // What a bay's live stream can sample (GET /bays/{bay}/live?pids=…), with the unit shown.
  const PICKABLE = [["0C", "r/min"], ["0D", "km/h"], ["05", "°C"], ["0F", "°C"], ["5C", "°C"], ["04", "%"], ["11", "%"],
    ["06", "%"], ["07", "%"], ["08", "%"], ["09", "%"], ["0B", "kPa"], ["10", "g/s"], ["0E", "°"], ["14", "V"], ["15", "V"],
    ["24", "λ"], ["44", "λ"], ["42", "V"]];
  const UNIT = Object.fromEntries(PICKABLE);
  const DEFAULT = ["0C", "05", "06", "07", "14", "44"];
  const MAX_PICK = 12;   // the API's MaxLivePIDs
  const SHOWN = 300;     // samples a chart shows (a minute at five samples a second)
  const KEPT = 20000;    // samples kept for the CSV export
  const COLORS = ["#1f5fbf", "#b3261e", "#1b7f3b", "#b26a00", "#6a3fb5", "#00838f", "#444"];

  let ctl = null, bay = "", paused = false, rows = [], plots = {};
  let picked = (() => {
    try {
      const p = JSON.parse(localStorage.getItem("obdgw.pids") || "null");
      if (Array.isArray(p) && p.length && p.every(x => UNIT[x])) return p.slice(0, MAX_PICK);
    } catch (e) { /* the defaults */ }
    return DEFAULT.slice();
  })();

  const label = pid => pidLabel({ pid, name: pid });
  const fmt = v => typeof v === "number" ? String(Math.round(v * 100) / 100) : "—";
  const width = el => Math.max(200, Math.floor((el && el.clientWidth) || 300));

  function makePlot(el, seriesLabel, color, timeAxis) {
    return new uPlot({
      width: width(el), height: 130, legend: { show: false }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: timeAxis } },
      axes: [{ size: 28, font: "11px system-ui" }, { size: 48, font: "11px system-ui" }],
      series: [{}, { label: seriesLabel, stroke: color, width: 1.5, spanGaps: true }],
    }, [[], []], el);
  }

  // ---- live data ------------------------------------------------------------------------------
  function section(b) {
    const boxes = picked.map((pid, i) => h`<div class="chartbox" data-chart="${pid}">
      <div class="small"><b>${label(pid)}</b> <span class="mono" data-role="chart-value">—</span> ${UNIT[pid]}</div>
      <div data-role="plot" data-color="${COLORS[i % COLORS.length]}"></div></div>`);
    return h`<section class="card" data-role="charts">
      <h2>${t("charts.title")}</h2>
      <details data-role="pid-picker"><summary>${t("charts.pick")} (${picked.length}/${MAX_PICK})</summary>
        <div class="pickgrid">${join(PICKABLE.map(([pid]) => h`<label class="pick"><input type="checkbox" data-pick="${pid}"
          ${raw(picked.includes(pid) ? "checked" : "")} ${raw(!picked.includes(pid) && picked.length >= MAX_PICK ? "disabled" : "")}> ${label(pid)}</label>`))}</div>
      </details>
      <div class="row toolbar"><button data-act="charts-pause" aria-pressed="${paused ? "true" : "false"}">${paused ? t("charts.resume") : t("charts.pause")}</button>
        <button data-act="charts-csv">${t("charts.csv")}</button>
        <span class="muted small" data-role="charts-rate"></span></div>
      <div class="chartgrid" data-role="chart-grid">${join(boxes)}</div>
    </section>`;
  }

  function start(name) {
    stop();
    const sameBay = bay === name;
    bay = name;
    if (!sameBay) { rows = []; paused = false; }
    const card = document.querySelector("[data-role=charts]");
    if (!card) return;
    plots = {};
    card.querySelectorAll("[data-chart]").forEach(box => {
      const el = box.querySelector("[data-role=plot]");
      plots[box.dataset.chart] = makePlot(el, box.dataset.chart, el.dataset.color, true);
    });
    redraw();
    card.querySelectorAll("input[data-pick]").forEach(cb => cb.addEventListener("change", () => {
      picked = PICKABLE.map(([p]) => p).filter(p => p === cb.dataset.pick ? cb.checked : picked.includes(p));
      if (!picked.length) picked = [cb.dataset.pick];
      localStorage.setItem("obdgw.pids", JSON.stringify(picked));
      const open = card.querySelector("details").open;
      card.outerHTML = section(state.bay);
      document.querySelector("[data-role=charts] details").open = open;
      start(name);
    }));
    card.querySelector("[data-act=charts-pause]").addEventListener("click", ev => {
      paused = !paused;
      ev.target.textContent = paused ? t("charts.resume") : t("charts.pause");
      ev.target.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) redraw();
    });
    card.querySelector("[data-act=charts-csv]").addEventListener("click", download);
    ctl = new AbortController();
    stream(`${API}/bays/${enc(name)}/live?pids=${picked.join(",")}`, ctl.signal, (type, d) => add(d));
  }

  function stop() { if (ctl) { ctl.abort(); ctl = null; } }

  function add(values) {
    rows.push({ t: Date.now() / 1000, v: values || {} });
    if (rows.length > KEPT) rows.splice(0, rows.length - KEPT);
    if (!paused) redraw();
  }

  function redraw() {
    const shown = rows.slice(-SHOWN), xs = shown.map(r => r.t);
    for (const [pid, u] of Object.entries(plots)) {
      u.setData([xs, shown.map(r => r.v[pid] ?? null)]);
      const box = document.querySelector(`[data-chart="${pid}"] [data-role=chart-value]`);
      const last = shown.length ? shown[shown.length - 1].v[pid] : null;
      if (box) box.textContent = fmt(last);
    }
    // The rate the adapter really delivers, over the last ten samples.
    const r = document.querySelector("[data-role=charts-rate]");
    if (r && shown.length > 1) {
      const n = Math.min(10, shown.length - 1), dt = shown[shown.length - 1].t - shown[shown.length - 1 - n].t;
      r.textContent = dt > 0 ? (n / dt).toFixed(1) + " " + t("charts.rate") : "";
    }
  }

  // csv is every kept sample of the picked PIDs: time, then one column per PID.
  function csv() {
    const cols = picked.filter(p => rows.some(r => p in r.v));
    const q = s => /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    const head = ["time", ...cols.map(p => q(`${label(p)} (${UNIT[p]}) [01 ${p}]`))].join(",");
    return [head, ...rows.map(r => [new Date(r.t * 1000).toISOString(), ...cols.map(p => r.v[p] ?? "")].join(","))].join("\r\n") + "\r\n";
  }

  function download() {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob(["\ufeff" + csv()], { type: "text/csv;charset=utf-8" }));
    a.download = `obdgw-${bay}-live-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}.csv`;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // ---- self-test curves ---------------------------------------------------------------------
  // The gases and λ with engine speed for two-speed idle, opacity k with engine speed for free
  // acceleration, and oil temperature while the engine warms up before the first prompt.
  const ST_SERIES = {
    two_speed_idle: [["hc_ppm", "HC ppm"], ["co_pct", "CO %"], ["co2_pct", "CO₂ %"], ["o2_pct", "O₂ %"], ["no_ppm", "NO ppm"], ["lambda", "λ"], ["rpm", "r/min"], ["oil_c", "°C"]],
    free_acceleration: [["k_m1", "k m⁻¹"], ["rpm", "r/min"], ["oil_c", "°C"]],
  };
  let st = { bay: "", method: "", rows: [], plots: {}, last: null };

  function stKey(k) { return k === "oil_c" ? "charts.oil" : k === "rpm" ? "live.rpm" : ""; }

  // selfTestProgress takes one progress update of the bay's running test (or null when a new
  // test starts) and draws it.
  function selfTestProgress(name, p) {
    const method = p && p.method ? methodName(String(p.method)) : "";
    if (!p || st.bay !== name || (method && st.method && method !== st.method)) {
      st = { bay: name, method, rows: [], plots: {}, last: null };
    }
    if (!p) { renderSelfTest(); return; }
    if (method) st.method = method;
    const rd = p.reading || {};
    const v = Object.assign({}, rd, { rpm: p.rpm ?? rd.rpm });
    const x = (p.elapsed_ns || 0) / 1e9;
    if (!st.rows.length || x > st.rows[st.rows.length - 1].x) st.rows.push({ x, v });
    st.last = p;
    renderSelfTest();
  }

  function renderSelfTest() {
    const box = document.querySelector("[data-role=selftest-curves]");
    if (!box || st.bay !== (state.bay && state.bay.name)) return;
    const series = (ST_SERIES[st.method] || []).filter(([k]) => st.rows.some(r => typeof r.v[k] === "number"));
    box.hidden = !series.length;
    if (!series.length) return;
    const keys = series.map(([k]) => k).join(",");
    if (box.dataset.keys !== keys) {
      box.dataset.keys = keys;
      box.innerHTML = h`<h2>${t("charts.selftest")}</h2><p data-role="curves-phase"></p>
        <div class="chartgrid">${join(series.map(([k, unit]) => h`<div class="chartbox" data-curve="${k}">
          <div class="small"><b>${stKey(k) ? t(stKey(k)) : unit}</b> <span class="mono" data-role="chart-value">—</span></div><div data-role="plot"></div></div>`))}</div>`;
      st.plots = {};
      series.forEach(([k, unit], i) => { st.plots[k] = makePlot(box.querySelector(`[data-curve="${k}"] [data-role=plot]`), unit, COLORS[i % COLORS.length], false); });
    }
    const xs = st.rows.map(r => r.x);
    for (const [k, u] of Object.entries(st.plots)) {
      u.setData([xs, st.rows.map(r => r.v[k] ?? null)]);
      const last = st.rows[st.rows.length - 1].v[k];
      box.querySelector(`[data-curve="${k}"] [data-role=chart-value]`).textContent = fmt(last);
    }
    const p = st.last || {};
    const phase = p.phase ? (I18N.zh["selftest.phase." + p.phase] ? t("selftest.phase." + p.phase) : p.phase) : "";
    box.querySelector("[data-role=curves-phase]").innerHTML = phase ? h`${t("selftest.phase")}: <b data-role="curves-phase-name">${phase}</b>
      · ${t("selftest.left")}: <b data-role="curves-left">${p.seconds_left >= 0 ? p.seconds_left + " s" : t("selftest.waiting")}</b>` : "";
  }

  window.addEventListener("resize", () => {
    for (const u of [...Object.values(plots), ...Object.values(st.plots)]) u.setSize({ width: width(u.root.parentElement), height: 130 });
  });

  return { section, start, stop, csv, selfTestProgress, renderSelfTest, picked: () => picked.slice(), shown: pid => (plots[pid] ? plots[pid].data[0].length : -1) };
})();
