// obdgw console: what the token's role may do, the manager's audit log and the waste ledger.
// Loaded after app.js and uses its helpers (state, api, h, t, $, $$). The role comes from
// GET /whoami: actions the role may not take are hidden (the API refuses them anyway), owner
// data is asked for only by a role that may read it.
"use strict";

// The API route each action button stands for (data-act → "METHOD /path").
const actRoutes = {
  "scan": "POST /bays/{bay}/scan", "clear": "POST /bays/{bay}/clear-dtcs",
  "st-start": "POST /bays/{bay}/selftest", "st-new": "POST /bays/{bay}/selftest", "st-abort": "POST /bays/{bay}/selftest/abort",
  "new": "POST /workorders", "add-item": "POST /workorders/{id}/items", "add-part": "POST /workorders/{id}/parts",
  "save-edit": "PATCH /workorders/{id}", "use-car-vin": "PATCH /workorders/{id}", "confirm-vin-mismatch": "POST /workorders/{id}/scans",
  "attach": "POST /workorders/{id}/scans", "settle": "POST /workorders/{id}/settle", "revise": "POST /workorders/{id}/revisions",
  "requeue": "POST /deadletters/{seq}/requeue", "handover": "POST /waste/handovers",
};

// loadRole asks the gateway who the token is; an older gateway without /whoami allows all.
async function loadRole() {
  try { state.me = await api("GET", "/whoami"); } catch (e) { state.me = null; }
  document.body.dataset.userRole = state.me ? state.me.role : "";
  const who = $("#whoami");
  if (who) who.textContent = state.me ? (state.me.name || t("role.anonymous")) + " · " + t("role." + state.me.role) : "";
  applyRole();
}

function may(route) { return !state.me || (state.me.may || []).includes(route); }
function mayOwner() { return !state.me || !!state.me.owner_data; }

// applyRole hides what the role cannot do: a form whose submit it may not send goes whole, a
// lone button alone; navigation links name their route in data-need.
function applyRole() {
  for (const el of $$("[data-act]")) {
    const route = actRoutes[el.dataset.act];
    if (!route) continue;
    const target = (el.type === "submit" && el.closest("form")) || el;
    const hide = !may(route);
    if (hide !== (target.dataset.roleHidden === "1")) {
      target.dataset.roleHidden = hide ? "1" : "";
      target.style.display = hide ? "none" : "";
    }
  }
  for (const el of $$("[data-need]")) { el.hidden = !may(el.dataset.need); el.style.display = el.hidden ? "none" : ""; }
}

// Pages re-render on events (a scan, a self-test's progress): each render is checked again.
new MutationObserver(() => applyRole()).observe(document.documentElement, { childList: true, subtree: true });

// ---- audit log (manager) -------------------------------------------------------------------
async function viewAudit(after) {
  const page = await api("GET", "/audit?limit=50" + (after ? "&after=" + enc(after) : ""));
  const rows = items(page);
  const body = join(rows.map(e => h`<tr data-action="${e.action}"><td>${when(e.at)}</td><td>${e.token || t("role.anonymous")}</td><td>${t("role." + e.role)}</td>
    <td>${t("audit." + e.action)}</td><td class="mono small">${[e.order, e.bay, e.vin].filter(Boolean).join(" · ")}</td><td class="small">${e.detail || ""}</td></tr>`));
  if (after) {
    $("[data-role=audit] tbody").insertAdjacentHTML("beforeend", body.__html);
  } else {
    $("#view").innerHTML = h`<section class="card"><h2>${t("nav.audit")}</h2>
      ${raw(rows.length ? h`<table data-role="audit"><thead><tr><th>${t("audit.at")}</th><th>${t("audit.token")}</th><th>${t("audit.role")}</th><th>${t("audit.action")}</th><th>${t("audit.what")}</th><th>${t("audit.detail")}</th></tr></thead><tbody>${body}</tbody></table>` : h`<p data-role="audit">${t("scan.none")}</p>`)}
      <p><button data-act="audit-more" hidden>${t("orders.more")}</button></p></section>`;
  }
  const more = $("[data-act=audit-more]");
  more.hidden = !page.next;
  more.onclick = () => viewAudit(page.next).then(translatePage, showError);
}

// ---- waste ledger --------------------------------------------------------------------------
const wasteCategories = [["waste_mineral_oil", ["L", "kg"]], ["lead_acid_battery", ["piece", "kg"]], ["exhaust_catalyst", ["piece", "kg"]],
  ["scrap_steel", ["kg", "piece"]], ["scrap_tyre", ["piece", "kg"]]];

async function viewWaste() {
  const v = await api("GET", "/waste/ledger");
  const stock = v.stock || [], hos = v.handovers || [];
  $("#view").innerHTML = h`
    <section class="card"><h2>${t("nav.waste")}</h2>
      <p class="muted small">${t("waste.policy").replace("{n}", v.due_days)}</p>
      ${raw(stock.length ? h`<table data-role="waste-stock"><tr><th>${t("waste.category")}</th><th>${t("waste.code")}</th><th>${t("waste.stock")}</th><th>${t("waste.due")}</th><th>${t("waste.oldest")}</th><th>${t("waste.generated")}</th><th>${t("waste.handed")}</th></tr>
        ${join(stock.map(s => h`<tr data-category="${s.category}" data-unit="${s.unit}" data-due="${s.due_now ? "1" : "0"}">
          <td>${s.label}${raw(s.hazardous ? h` <span class="pill bad">${t("waste.hazardous")}</span>` : "")}</td>
          <td class="mono small">${s.class} ${s.code || ""}${raw(s.code_confirmed ? "" : h` <span class="muted">(${t("waste.unconfirmed")})</span>`)}</td>
          <td data-role="stock">${s.stock} ${t("unit." + s.unit)}</td>
          <td data-role="due">${raw(s.due_now ? h`<span class="pill warn">${s.due} ${t("unit." + s.unit)} ${t("waste.due.now")}</span>` : "—")}</td>
          <td>${s.oldest_stored || "—"}</td><td>${s.generated}</td><td>${s.handed_over}</td></tr>`))}</table>` : h`<p data-role="waste-stock">${t("waste.empty")}</p>`)}</section>
    <section class="card"><h2>${t("waste.handover")}</h2>
      <form id="handover-form" class="grid">
        <label>${t("waste.collector")} <input name="collector" maxlength="100" required></label>
        <label>${t("waste.licence")} <input name="licence" maxlength="50" required></label>
        <label>${t("waste.manifest")} <input name="manifest_no" maxlength="50" required></label>
        <label>${t("waste.date")} <input name="date" pattern="[0-9]{8}" placeholder="yyyyMMdd" value="${v.today}"></label>
        <label>${t("waste.category")} <select name="category">${join(wasteCategories.map(([c]) => h`<option value="${c}">${t("waste.cat." + c)}</option>`))}</select></label>
        <label>${t("waste.quantity")} <input name="quantity" inputmode="decimal" required></label>
        <label>${t("waste.unit")} <select name="unit">${join(["L", "kg", "piece"].map(u => h`<option value="${u}">${t("unit." + u)}</option>`))}</select></label>
        <div class="errors" data-role="errors"></div>
        <p><button class="primary" type="submit" data-act="handover">${t("waste.handover.go")}</button></p>
      </form></section>
    <section class="card"><h2>${t("waste.handovers")}</h2>
      ${raw(hos.length ? h`<table data-role="handovers"><tr><th>${t("waste.date")}</th><th>${t("waste.manifest")}</th><th>${t("waste.collector")}</th><th>${t("waste.licence")}</th><th>${t("waste.what")}</th></tr>
        ${join(hos.map(o => h`<tr data-id="${o.id}"><td>${o.date}</td><td class="mono">${o.manifest_no}</td><td>${o.collector}</td><td class="mono small">${o.licence}</td>
          <td>${(o.lines || []).map(l => t("waste.cat." + l.category) + " " + l.quantity + " " + t("unit." + l.unit)).join("; ")}</td></tr>`))}</table>` : h`<p data-role="handovers">${t("scan.none")}</p>`)}</section>`;
  const form = $("#handover-form");
  const units = () => {
    const allowed = (wasteCategories.find(([c]) => c === form.category.value) || [, []])[1];
    for (const o of form.unit.options) o.disabled = !allowed.includes(o.value);
    if (!allowed.includes(form.unit.value)) form.unit.value = allowed[0];
  };
  form.category.addEventListener("change", units);
  units();
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = { collector: form.collector.value.trim(), licence: form.licence.value.trim(), manifest_no: form.manifest_no.value.trim(),
      date: form.date.value.trim(), lines: [{ category: form.category.value, quantity: form.quantity.value.trim(), unit: form.unit.value }] };
    try { await api("POST", "/waste/handovers", body); flash(t("waste.handover.done"), "info"); state.keepFlash = true; await viewWaste(); translatePage(); }
    catch (e) { showFormError(form, e); }
  });
}

// ---- waste on an order's items and parts ---------------------------------------------------
// wasteInputs are the optional waste fields of the item and part forms (names waste_*).
function wasteInputs() {
  return raw(h`<select name="waste_category" aria-label="${t("waste.category")}"><option value="">${t("waste.none")}</option>
    ${join(wasteCategories.map(([c]) => h`<option value="${c}">${t("waste.cat." + c)}</option>`))}</select>
    <input name="waste_quantity" inputmode="decimal" placeholder="${t("waste.quantity")}" aria-label="${t("waste.quantity")}">
    <select name="waste_unit" aria-label="${t("waste.unit")}">${join(["L", "kg", "piece"].map(u => h`<option value="${u}">${t("unit." + u)}</option>`))}</select>`);
}
// wasteOf is the waste member of an item or part body from its form's fields ({} without one).
function wasteOf(b) {
  if (!b.waste_category) return {};
  return { waste: { category: b.waste_category, quantity: b.waste_quantity ? Number(b.waste_quantity) : 0, unit: b.waste_unit || "" } };
}
function wasteText(w) { return w ? t("waste.cat." + w.category) + " " + w.quantity + " " + t("unit." + w.unit) : ""; }
