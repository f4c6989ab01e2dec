// Where a running scan is (which step, how many left), from the "scan.step" events, shown on
// the bay's card and page until the scan ends. app.js's event stream calls ShopProgress.
"use strict";
const ShopProgress = (() => {
  const current = {}; // bay → {step, index, total}

  function html(p) {
    const name = I18N.zh["scan.step." + p.step] ? t("scan.step." + p.step) : p.step;
    return h`<progress max="${p.total}" value="${p.index}"></progress>
      <span>${t("scan.progress")} ${p.index}/${p.total}: <b data-role="scan-step" data-step="${p.step}">${name}</b>
      · ${t("scan.progress.left")} <b data-role="scan-left">${p.total - p.index}</b></span>`;
  }

  function show(bay) {
    document.querySelectorAll(`[data-bay="${CSS.escape(bay)}"]`).forEach(card => {
      let el = card.querySelector("[data-role=scan-progress]");
      const p = current[bay];
      if (!p) { if (el) el.remove(); return; }
      if (!el) {
        el = document.createElement("p");
        el.className = "scanprogress";
        el.dataset.role = "scan-progress";
        const h2 = card.querySelector("h2");
        if (h2) h2.after(el); else card.prepend(el);
      }
      el.innerHTML = html(p);
    });
  }

  return {
    step(bay, p) { if (p && p.total) { current[bay] = p; show(bay); } },
    done(bay) { delete current[bay]; show(bay); },
    // After a page is drawn again, a scan still running shows where it is.
    redraw() { Object.keys(current).forEach(show); },
  };
})();
