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
    "charts.csv": "导出CSV", "charts.rate": "次/秒", "charts.selftest": "自检过程曲线", "charts.oil": "机油温度 °C",
    "history.title": "车辆档案", "history.link": "车辆档案", "history.scan": "诊断", "history.order": "工单", "history.selftest": "排放自检",
    "history.kind": "类别", "history.what": "内容", "history.empty": "该车在本网关没有记录",
    "report.open": "报告", "report.print": "打印", "report.back": "返回",
    "report.pdf": "保存为PDF：在打印对话框中选择“另存为PDF”。",
    "report.diag.title": "车辆故障诊断报告", "report.im.title": "排放检测自检报告", "report.vin": "VIN（车辆读取）",
    "report.scanid": "诊断记录", "report.desc.zh": "中文说明", "report.desc.en": "英文说明",
    "report.complete": "已完成", "report.incomplete": "未完成", "report.clearing": "清除故障码前后对比",
    "report.before": "清除前", "report.after": "清除后", "report.testno": "检验报告编号", "report.instrument": "检测设备",
    "report.bay": "工位", "report.technician": "检测/维修技师签字", "report.customer": "客户签字", "report.printed": "打印时间",
    "scan.progress": "读取进度", "scan.progress.left": "剩余步骤",
    "scan.step.adapter": "诊断头信息", "scan.step.supported_pids_01": "支持的数据项（01）", "scan.step.supported_pids_09": "支持的车辆信息（09）",
    "scan.step.vin": "VIN", "scan.step.readiness": "就绪状态", "scan.step.dtcs_stored": "已确认故障码", "scan.step.dtcs_pending": "待定故障码",
    "scan.step.dtcs_permanent": "永久故障码", "scan.step.freeze_frame": "冻结帧", "scan.step.calid": "标定识别号", "scan.step.cvn": "标定验证码",
    "scan.step.ecu_name": "控制单元名称", "scan.step.iupr": "监测频率（IUPR）", "scan.step.context_pids": "里程与运行数据"
  },
  en: {
    "bay.noadapter": "No OBD adapter detected: plug the adapter into the car and the gateway, then scan or clear.",
    "obd.oresult": "Reported as", "obd.oresult.0": "fail", "obd.oresult.1": "pass", "obd.oresult.2": "exempt", "obd.oresult.3": "no OBD",
    "scan.note.auto": "automatic scan on connection", "scan.note.before": "before clearing fault codes", "scan.note.after": "after clearing fault codes",
    "uplink.why": "Why the platform is not connected",
    "charts.title": "Live data charts", "charts.pick": "Pick values", "charts.pause": "Pause", "charts.resume": "Resume",
    "charts.csv": "Export CSV", "charts.rate": "samples/s", "charts.selftest": "Self-test curves", "charts.oil": "Oil temperature °C",
    "history.title": "Vehicle history", "history.link": "Vehicle history", "history.scan": "Scan", "history.order": "Work order", "history.selftest": "Emission self-test",
    "history.kind": "Kind", "history.what": "What", "history.empty": "This gateway holds nothing of this car",
    "report.open": "Report", "report.print": "Print", "report.back": "Back",
    "report.pdf": "To save a PDF, choose \"Save as PDF\" in the print dialog.",
    "report.diag.title": "Vehicle diagnostic report", "report.im.title": "Emission self-test report", "report.vin": "VIN (read from the car)",
    "report.scanid": "Scan", "report.desc.zh": "Description (Chinese)", "report.desc.en": "Description (English)",
    "report.complete": "complete", "report.incomplete": "incomplete", "report.clearing": "Before and after clearing codes",
    "report.before": "Before", "report.after": "After", "report.testno": "Inspection report no.", "report.instrument": "Instrument",
    "report.bay": "Bay", "report.technician": "Technician's signature", "report.customer": "Customer's signature", "report.printed": "Printed",
    "scan.progress": "Scanning, step", "scan.progress.left": "steps left",
    "scan.step.adapter": "adapter", "scan.step.supported_pids_01": "supported PIDs (01)", "scan.step.supported_pids_09": "supported vehicle info (09)",
    "scan.step.vin": "VIN", "scan.step.readiness": "readiness", "scan.step.dtcs_stored": "stored codes", "scan.step.dtcs_pending": "pending codes",
    "scan.step.dtcs_permanent": "permanent codes", "scan.step.freeze_frame": "freeze frame", "scan.step.calid": "calibration IDs", "scan.step.cvn": "calibration verification numbers",
    "scan.step.ecu_name": "ECU names", "scan.step.iupr": "monitor ratios (IUPR)", "scan.step.context_pids": "odometer and context values"
  }
});
