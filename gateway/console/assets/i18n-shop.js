// Translations of the shop views (live charts, printable reports, history per VIN, the bay's
// adapter hints). Same shape and rules as i18n.js: the zh table, then the en table; the two
// are merged into window.I18N, so t() finds these keys like any other.
(function (more) {
  for (const lang of ["zh", "en"]) Object.assign(window.I18N[lang], more[lang]);
})({
  zh: {
    "bay.noadapter": "未检测到诊断头：请把OBD诊断头插到车上并连接网关，然后再读取或清除。",
    "obd.oresult": "上报结果", "obd.oresult.0": "不合格", "obd.oresult.1": "合格", "obd.oresult.2": "免检", "obd.oresult.3": "无OBD",
    "scan.note.auto": "连接后自动读取", "scan.note.before": "清除故障码前", "scan.note.after": "清除故障码后",
    "uplink.why": "平台未连接的原因",
    "charts.title": "实时数据曲线", "charts.pick": "选择数据项", "charts.pause": "暂停", "charts.resume": "继续",
    "charts.csv": "导出CSV", "charts.rate": "次/秒", "charts.selftest": "自检过程曲线", "charts.oil": "机油温度 °C"
  },
  en: {
    "bay.noadapter": "No OBD adapter detected: plug the adapter into the car and the gateway, then scan or clear.",
    "obd.oresult": "Reported as", "obd.oresult.0": "fail", "obd.oresult.1": "pass", "obd.oresult.2": "exempt", "obd.oresult.3": "no OBD",
    "scan.note.auto": "automatic scan on connection", "scan.note.before": "before clearing fault codes", "scan.note.after": "after clearing fault codes",
    "uplink.why": "Why the platform is not connected",
    "charts.title": "Live data charts", "charts.pick": "Pick values", "charts.pause": "Pause", "charts.resume": "Resume",
    "charts.csv": "Export CSV", "charts.rate": "samples/s", "charts.selftest": "Self-test curves", "charts.oil": "Oil temperature °C"
  }
});
