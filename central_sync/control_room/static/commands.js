"use strict";
// Commands to stations (issue 21): a station picker of the stations the hub knows, one typed form per
// command with the station's current values, a confirmation naming the change, undo, the station's
// effective settings, and the diagnostic report a station sends back. Uses app.js's helpers
// ($, el, t, tc, api, table, fmtTime, fmtNum, S). The hub checks everything again (command_routes.py).

const CMD = { stations: [], rows: [], pending: null, poll: null, msg: null };
const cmdCan = (p) => S.me && S.me.can.includes(p);
const thr = (v) => (v === null || v === undefined ? "-" : Number(v).toFixed(2));
const pct = (v) => (v === null || v === undefined ? "-" : fmtNum(v, true));
const shortSha = (s) => (s ? s.slice(0, 12) : "-");
const cmdStation = () => CMD.stations.find((s) => s.station === $("#cmd-station").value) || null;
function cmdMsg(key, vals = {}, bad = false, sent = null) {  // kept as a key (a refusal as its code): a change of language shows it anew
  CMD.msg = key ? { key, vals, bad, sent } : null;  // sent: the command it waits for (answered(), at each list)
  const shown = Object.fromEntries(Object.entries(vals).map(([k, v]) => [k, v instanceof Error ? errorText(v) : v]));
  $("#cmd-msg").textContent = key ? t(key, shown) : "";
  $("#cmd-msg").classList.toggle("error", !!bad);
}
class FormError extends Error { constructor(key, vals = {}) { super(key); this.key = key; this.vals = vals; } }

async function loadCommandsView() {  // #commands[data-loaded] once stations, settings and list show
  delete $("#commands").dataset.loaded;
  CMD.stations = await api("/cr/api/commands/stations");
  const sel = $("#cmd-station"), keep = sel.value || new URLSearchParams(location.search).get("cmd_station");  // a reload keeps it
  sel.replaceChildren(el("option", { value: "" }, t("commands.pick_station")),
    ...CMD.stations.map((s) => el("option", { value: s.station }, `${s.station} (${tc("state", s.state || "offline")})`)));
  if (CMD.stations.some((s) => s.station === keep)) sel.value = keep;
  renderCommandForms();
  if (CMD.msg) cmdMsg(CMD.msg.key, CMD.msg.vals, CMD.msg.bad, CMD.msg.sent);
  await loadCommandList();
  $("#commands").dataset.loaded = "1";
}

function renderCommandForms() {
  const st = cmdStation(), cur = (st && st.settings) || {};
  $("#cmd-forms").hidden = !st;
  $("#cmd-current").replaceChildren(...(st ? currentSettings(st) : []));
  if (!st) return;
  const classes = Object.keys(cur.thresholds || {}).sort();
  const cls = $("#cmd-thr-class"), keep = cls.value;
  cls.replaceChildren(...classes.map((c) => el("option", { value: c }, tc("class", c))));
  if (classes.includes(keep)) cls.value = keep;
  $("#cmd-thr-none").hidden = classes.length > 0;
  $("#form-set_thresholds button").disabled = classes.length === 0;
  showThresholdNow();
  $("#cmd-tip-now").textContent = pct(cur.tip_rate);
  $("#cmd-model-now").textContent = cur.model ? `${cur.model.name} ${cur.model.version} (${shortSha(cur.model.sha256)})` : "-";
  $("#form-switch_model").hidden = !cmdCan("switch_model");
}

function showThresholdNow() {
  const st = cmdStation(), v = ((st && st.settings && st.settings.thresholds) || {})[$("#cmd-thr-class").value];
  $("#cmd-thr-now").textContent = thr(v);
}

function currentSettings(st) {  // what is in force on the station, as it last reported
  const s = st.settings;
  if (!s) return [el("p", { class: "note" }, t("commands.no_settings", { station: st.station }))];
  const last = s.last_command;
  return [el("h3", {}, t("commands.in_force", { station: st.station })), el("dl", { id: "cmd-in-force" },
    el("dt", {}, t("commands.thresholds")), el("dd", {}, Object.entries(s.thresholds || {}).sort()
      .map(([c, v]) => `${tc("class", c)} ${thr(v)}`).join(", ") || "-"),
    el("dt", {}, t("commands.tip_rate")), el("dd", {}, pct(s.tip_rate)),
    el("dt", {}, t("commands.model")), el("dd", {}, s.model ? `${s.model.name} ${s.model.version}` : "-"),
    el("dt", {}, t("commands.last_applied")), el("dd", { id: "cmd-last-applied" },
      last ? t("commands.last_text", { op: tc("op", last.op), args: argsText(last.op, last.args), who: last.issuer, at: fmtTime(last.at) }) : "-"),
    el("dt", {}, t("commands.reported")), el("dd", {}, fmtTime(s.reported_at)))];
}

function argsText(op, a) {
  if (!a) return "";
  if (op === "set_thresholds") return Object.entries(a.thresholds || {}).map(([c, v]) => `${tc("class", c)} ${thr(v)}`).join(", ");
  if (op === "set_tip_rate") return pct(a.rate);
  if (op === "switch_model") return shortSha(a.sha256);
  if (op === "request_diag") return t("commands.plan." + (a.plan || "quick"));
  return JSON.stringify(a);
}

// ---- the sentence the confirmation shows, and the request it confirms --------------------------
function changeText(op, station, args, previous) {
  if (op === "set_thresholds") return Object.entries(args.thresholds).map(([c, v]) => t("commands.confirm.set_thresholds",
    { cls: tc("class", c), station, old: thr(((previous || {}).thresholds || {})[c]), new: thr(v) })).join(" ");
  if (op === "set_tip_rate") return t("commands.confirm.set_tip_rate", { station, old: pct((previous || {}).rate), new: pct(args.rate) });
  if (op === "switch_model") return t("commands.confirm.switch_model", { station, old: shortSha((previous || {}).sha256), new: shortSha(args.sha256) });
  return t("commands.confirm.request_diag", { station, plan: t("commands.plan_name." + args.plan) });
}

function formRequest(op) {  // {args, previous} from a form; a one-sentence message when a value is wrong
  const st = cmdStation(), cur = st.settings || {};
  if (op === "set_thresholds") {
    const c = $("#cmd-thr-class").value, v = Number($("#cmd-thr-new").value);
    if (!c) throw new FormError("commands.bad.class");
    if (!$("#cmd-thr-new").value || !(v > 0 && v <= 0.99)) throw new FormError("commands.bad.threshold", { value: $("#cmd-thr-new").value });
    return { args: { thresholds: { [c]: v } }, previous: { thresholds: { [c]: (cur.thresholds || {})[c] } } };
  }
  if (op === "set_tip_rate") {
    const p = Number($("#cmd-tip-new").value);
    if ($("#cmd-tip-new").value === "" || !(p >= 0 && p <= 100)) throw new FormError("commands.bad.rate", { value: $("#cmd-tip-new").value });
    return { args: { rate: Math.round(p * 1000) / 100000 }, previous: { rate: cur.tip_rate } };
  }
  if (op === "switch_model") {
    const sha = $("#cmd-model-new").value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new FormError("commands.bad.sha", { value: sha });
    return { args: { sha256: sha }, previous: { sha256: cur.model ? cur.model.sha256 : null } };
  }
  return { args: { plan: $("#cmd-diag-plan").value, lang: S.lang }, previous: {} };  // the report in the reader's language
}

const offline = (station) => { const s = CMD.stations.find((x) => x.station === station); return !s || !s.state || s.state === "offline"; };
function confirmThen(text, action, station) {  // an offline station is named: the command waits for it, and may expire
  CMD.pending = action;
  $("#cmd-confirm-text").textContent = text;
  $("#cmd-confirm-note").hidden = !offline(station);
  $("#cmd-confirm-note").textContent = offline(station) ? t("commands.offline_note", { station }) : "";
  $("#cmd-confirm").showModal();
}
function sentMsg(station, sent) {  // sent to an offline station: applied only if it comes back before the command expires
  if (offline(station)) cmdMsg("commands.sent_offline", { station, until: fmtTime(sent.expires_at) }, true, sent.id);
  else cmdMsg("commands.sent", {}, false, sent.id);
}
function answered() {  // "waiting for the station's report" no longer, once the list shows the station's answer
  const c = CMD.msg && CMD.msg.sent && CMD.rows.find((r) => r.id === CMD.msg.sent && r.outcome);
  if (c) cmdMsg("commands.answered", { station: c.station, outcome: tc("outcome", c.outcome) }, c.outcome !== "applied", c.id);
}

for (const op of ["set_thresholds", "set_tip_rate", "request_diag", "switch_model"]) {
  $("#form-" + op).addEventListener("submit", (ev) => {
    ev.preventDefault();
    const st = cmdStation();
    if (!st) return;
    let req;
    try { req = formRequest(op); } catch (e) { cmdMsg(e.key, e.vals, true); return; }
    cmdMsg(null);
    confirmThen(changeText(op, st.station, req.args, req.previous), async () => {
      const sent = await api("/cr/api/commands", { method: "POST", body: JSON.stringify({ station: st.station, op, args: req.args }) });
      sentMsg(st.station, sent);
      if (op === "request_diag") watchReport(sent.id);
    }, st.station);
  });
}
$("#cmd-confirm-yes").addEventListener("click", async (ev) => {
  ev.preventDefault();
  $("#cmd-confirm").close();
  const action = CMD.pending;
  CMD.pending = null;
  try { if (action) await action(); } catch (e) { cmdMsg("commands.failed", { error: e }, true); }
  await loadCommandList();
});
$("#cmd-confirm-no").addEventListener("click", (ev) => { ev.preventDefault(); CMD.pending = null; $("#cmd-confirm").close(); cmdMsg("commands.cancelled"); });
$("#cmd-station").addEventListener("change", () => { cmdMsg(null); stationToAddress(); renderCommandForms(); });
function stationToAddress() {  // the station chosen kept in the address beside ?wall= and #commands, as the alerts' search is
  const u = new URLSearchParams(location.search), v = $("#cmd-station").value;
  if (v) u.set("cmd_station", v); else u.delete("cmd_station");
  const q = u.toString();
  history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
}
$("#cmd-thr-class").addEventListener("change", showThresholdNow);

function undo(c) {  // a new command restoring what `c` replaced; the hub refuses when that is not known
  const current = { thresholds: {}, rate: null, sha256: null };
  const st = CMD.stations.find((s) => s.station === c.station), cur = (st && st.settings) || {};
  for (const k of Object.keys((c.previous || {}).thresholds || {})) current.thresholds[k] = (cur.thresholds || {})[k];
  current.rate = cur.tip_rate; current.sha256 = cur.model ? cur.model.sha256 : null;
  confirmThen(t("commands.confirm_undo", { change: changeText(c.op, c.station, c.previous || {}, current) }), async () => {
    sentMsg(c.station, await api(`/cr/api/commands/${encodeURIComponent(c.id)}/undo`, { method: "POST" }));
  }, c.station);
}

async function resend(c, button) {  // one touch: the station refused it for a full queue, so nothing was applied
  button.disabled = true;  // a second touch sends nothing more (the hub sends a command again once)
  try {
    const sent = await api(`/cr/api/commands/${encodeURIComponent(c.id)}/resend`, { method: "POST" });
    sentMsg(c.station, sent);
    if (c.op === "request_diag") watchReport(sent.id);
  } catch (e) { cmdMsg("commands.failed", { error: e }, true); }
  await loadCommandList();
}

// ---- the list, the station's settings, the diagnostic report ------------------------------------
async function loadCommandList() {
  CMD.rows = await api("/cr/api/commands?limit=100");
  table($("#command-table"), ["time", "station", "op", "args", "previous", "issuer", "outcome", "reason", ""].map((c) => (c ? t("commands.col." + c) : "")),
    CMD.rows.map((c) => [fmtTime(c.issued_at), c.station, tc("op", c.op) + (c.undo_of ? " " + t("commands.is_undo") : "")
      + (c.resend_of ? " " + t("commands.is_resend") : ""),
      argsText(c.op, c.args), c.previous && c.op !== "request_diag" ? argsText(c.op, c.previous) : "", c.issuer,
      c.outcome ? tc("outcome", c.outcome) : t("commands.pending"), c.reason ? tc("cmdreason", c.reason) : "", rowActions(c)]));
  for (const [n, c] of CMD.rows.entries()) $("#command-table").rows[n + 1].dataset.id = c.id;
  answered();
}

function rowActions(c) {
  const box = el("span", { class: "actions" });
  if (c.undoable && cmdCan("command") && (c.op !== "switch_model" || cmdCan("switch_model")))
    box.append(el("button", { class: "cmd-undo", onclick: () => undo(c) }, t("commands.undo")));
  if (c.resendable && cmdCan("command") && (c.op !== "switch_model" || cmdCan("switch_model")))
    box.append(el("button", { class: "cmd-resend", onclick: (ev) => resend(c, ev.target) }, t("commands.send_again")));
  if (c.has_report) box.append(el("button", { class: "cmd-report", onclick: () => showReport(c.id) }, t("commands.show_report")));
  else if (c.op === "request_diag" && c.outcome === "applied") box.append(el("span", { class: "note" }, t("commands.report_waiting")));
  return box;
}

function watchReport(id) {  // poll until the station's report is in (a run takes seconds to minutes)
  clearInterval(CMD.poll);
  const until = Date.now() + 15 * 60 * 1000;
  CMD.poll = setInterval(async () => {
    if (Date.now() > until || S.view !== "commands") { clearInterval(CMD.poll); return; }
    const c = await api(`/cr/api/commands/${encodeURIComponent(id)}`);
    if (c.report || (c.outcome && c.outcome !== "applied")) { clearInterval(CMD.poll); await loadCommandList(); if (c.report) showReport(id, c); }
  }, 1000);
}

async function showReport(id, got) {
  const c = got || await api(`/cr/api/commands/${encodeURIComponent(id)}`);
  const r = c.report;
  if (!r) return;
  const box = $("#cmd-report");
  box.hidden = false;
  box.dataset.id = id;
  box.dataset.outcome = r.outcome;
  box.replaceChildren(...[el("h3", {}, t("commands.report_title", { station: c.station, plan: t("commands.plan_name." + (r.plan || "quick")), outcome: tc("diag", r.outcome) })),
    el("p", { class: "note" }, t("commands.report_when", { started: fmtIso(r.started), ended: fmtIso(r.ended) })),
    ...(r.phases || []).map((p) => el("div", { class: "cmd-phase", "data-phase": p.name, "data-outcome": p.outcome },
      el("h4", {}, `${p.title}: ${tc("diag", p.outcome)}`), p.reason ? el("p", {}, p.reason) : null,
      p.measurements && p.measurements.length ? measureTable(p.measurements) : null,
      ...(p.diagnoses || []).filter((d) => d !== p.reason).map((d) => el("p", { class: "note" }, d)))),  // the reason is one of them
    el("p", { class: "note" }, t("commands.report_not_run", { phases: (r.not_run || []).join(", ") || "-" })),
    r.detail ? el("p", { class: "error" }, r.detail) : null].filter((n) => n !== null));
}

function measureTable(ms) {
  const n = el("table");
  table(n, ["name", "target", "value", "limits", "outcome"].map((c) => t("commands.report_col." + c)),
    ms.map((m) => [m.name, m.target, typeof m.value === "number" ? fmtNum(Math.round(m.value * 1000) / 1000) + (m.unit ? " " + m.unit : "") : String(m.value),
      [m.low, m.high].some((x) => x !== null && x !== undefined) ? `${m.low ?? ""} – ${m.high ?? ""}` : "", tc("diag", m.outcome)]));
  return n;
}

window.crViews = { ...(window.crViews || {}), commands: loadCommandsView };
window.crOnCommand = () => { if (S.view === "commands") loadCommandsView(); };
