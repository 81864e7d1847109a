"use strict";
// Control room page: sign-in, live board and alerts over SSE, KPIs, audit (commands: commands.js).
// Every visible string comes from the catalogue (/cr/api/i18n/<lang>); codes are translated here.
const S = { me: null, msgs: {}, lang: "en", stations: new Map(), alerts: new Map(), source: null, view: "board", audit: [],
  liveMax: 200, shownMax: 200 };  // alerts kept on the page as live ones arrive (more once "Show older" asked for more)
window.crLatency = [];

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") n.className = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) n.append(k instanceof Node ? k : String(k));
  return n;
};
function t(key, vals = {}) {
  let s = S.msgs[key];
  if (s === undefined) return key;
  for (const [k, v] of Object.entries(vals)) s = s.replaceAll("{" + k + "}", v);
  return s;
}
function say(node, key, vals = {}) {  // a sentence kept as its key and values: a change of language says it anew (loadLang)
  node.dataset.i18n = key;
  node.dataset.i18nVals = JSON.stringify(vals);
  node.textContent = t(key, vals);
}
const tc = (prefix, code) => (S.msgs[prefix + "." + code] !== undefined ? t(prefix + "." + code) : code);
const locale = () => (S.lang === "zh-Hant" ? "zh-HK" : S.lang === "zh-Hans" ? "zh-CN" : "en-GB");  // day before month, as the station
const fmtTime = (sec) => (sec ? new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "medium" }).format(new Date(sec * 1000)) : "-");
const fmtIso = (iso) => fmtTime(Date.parse(iso) / 1000);
const fmtNum = (v, pct) => (v === null || v === undefined ? "-" : pct ? new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(v) : new Intl.NumberFormat(locale()).format(v));

// A 401 signs the page out only when it answers the session the request was sent in: a request sent before the
// operator signed in (the page's own session check at start, a list asked for before) says nothing about the new one.
let session = 0;  // counts sign-ins and sign-outs on this page
function unauthorised(r, sentIn) {
  if (r.status !== 401) return false;
  if (S.me && sentIn === session) signedOut();
  return true;
}
async function api(path, opts = {}) {
  const sentIn = session;
  const r = await fetch(path, { credentials: "same-origin", headers: { "content-type": "application/json", "x-lang": S.lang }, ...opts });
  if (unauthorised(r, sentIn)) throw new Error(t("error.signin_required"));
  if (!r.ok) throw await refusal(r);
  return r.headers.get("content-type")?.includes("json") ? r.json() : r.text();
}
class Refusal extends Error {  // the hub's answer: its code (error.<code> in the catalogue) and values, else its sentence
  constructor(detail, code, vals) { super(detail); this.detail = detail; this.code = code; this.vals = vals || {}; this.message = errorText(this); }
}
const CODED_VALS = { decision: "decision", role: "role" };  // a refusal's values that are codes themselves: their catalogue prefix
function errorText(e) {  // a refusal in the language shown now; the hub's English sentence only for a code not in the catalogue
  if (!e.code || S.msgs["error." + e.code] === undefined) return e.detail ?? e.message;
  return t("error." + e.code, Object.fromEntries(Object.entries(e.vals).map(([k, v]) => [k, CODED_VALS[k] ? tc(CODED_VALS[k], v) : v])));
}
async function refusal(r) {
  let body = {};
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  const d = body.detail ?? r.statusText;
  return new Refusal(typeof d === "string" ? d : JSON.stringify(d), body.code, body.vals);
}
async function apiPage(path) {  // a search page and whether more results match than it holds (X-More-Results)
  const sentIn = session;
  const r = await fetch(path, { credentials: "same-origin", headers: { "x-lang": S.lang } });
  if (unauthorised(r, sentIn)) throw new Error(t("error.signin_required"));
  if (!r.ok) throw await refusal(r);
  return { items: await r.json(), more: r.headers.get("x-more-results") === "true", next: r.headers.get("x-next-before") };
}

async function loadLang(lang) {  // the hub resolves the tag (or preference list) by its one rule and names the result
  const r = await fetch("/cr/api/i18n/" + encodeURIComponent(lang), { credentials: "same-origin" });
  S.msgs = await r.json();
  S.lang = r.headers.get("content-language") || "en";
  document.documentElement.lang = S.lang;
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n, JSON.parse(n.dataset.i18nVals || "{}"));
  for (const n of document.querySelectorAll("[data-i18n-ph]")) n.placeholder = t(n.dataset.i18nPh);
  document.title = t("app.title");
  $("#live").textContent = t(S.source && S.source.readyState === 1 ? "live.on" : "live.off");
}

// ---- sign-in -------------------------------------------------------------------------------
$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    const me = await api("/cr/api/login", { method: "POST", body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
    session += 1;
    S.me = me;
    ev.target.reset();
    $("#signin-error").textContent = "";
    await start();
  } catch (e) { $("#signin-error").textContent = t("error.signin_refused"); }
});
$("#signout").addEventListener("click", async () => { try { await api("/cr/api/logout", { method: "POST" }); } finally { signedOut(); } });
$("#lang").addEventListener("change", async (ev) => {
  await api("/cr/api/me/lang", { method: "POST", body: JSON.stringify({ lang: ev.target.value }) });
  S.me.lang = ev.target.value;
  await loadLang(ev.target.value);
  feedLost();  // its time in the new language's format
  renderMe();
  renderAll();
  show(S.view);
});

function signedOut() {
  session += 1;
  S.me = null;
  if (S.source) S.source.close();
  S.source = null; S.feedLost = false; S.alerts.clear(); S.stations.clear(); S.audit = []; S.people = {}; S.shownMax = S.liveMax;
  liveState(false);
  $("#nav").hidden = $("#who").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "signin";
  $("#stations").replaceChildren(); $("#alert-list").replaceChildren();
}

async function start() {
  await loadLang(S.me.lang);
  renderMe();
  $("#lang").replaceChildren(...S.me.langs.map((l) => el("option", { value: l }, S.msgs["lang." + l] || l)));
  $("#lang").value = S.me.lang;
  for (const n of document.querySelectorAll("[data-need]")) n.hidden = !S.me.can.includes(n.dataset.need);
  $("#nav").hidden = $("#who").hidden = false;
  filtersFromAddress();
  $("#search-active").hidden = setFilters(filterParams($("#filters"))).length === 0;
  show(viewInAddress());
  for (const s of await api("/cr/api/stations")) S.stations.set(s.station, s);
  S.people = await api("/cr/api/people");
  S.assignees = S.me.can.includes("assign") ? await api("/cr/api/assignees") : null;
  showSearchPage(await apiPage("/cr/api/alerts?" + filterParams($("#filters"))));
  renderAll();
  S.feedLost = true;  // read again once the stream is open: an alert committed before it was, after the list, is not missed
  connect();
}

const person = (badge) => (S.people && S.people[badge] ? `${S.people[badge]} (${badge})` : badge);  // a name where the hub knows it
function renderMe() { $("#me").textContent = `${S.me.username} (${t("role." + S.me.role)})`; }

function viewInAddress() {  // the view named after # in the address (kept across a reload) when this user may open it
  const b = document.querySelector(`#nav button[data-view="${CSS.escape(location.hash.slice(1))}"]`);
  return b && !b.hidden ? b.dataset.view : "board";
}
function show(view) {
  S.view = view;
  if (location.hash.slice(1) !== view) history.replaceState(null, "", "#" + view);  // ?wall=1 stays
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== view;
  for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("active", b.dataset.view === view);
  ({ board: loadPki, kpi: loadKpi, tip: loadTip, audit: () => loadAudit(false), "search-reports": loadSearchReports, ...window.crViews }[view] || (() => {}))();
}
for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.view));

// ---- live feed -----------------------------------------------------------------------------
function liveState(on) {
  $("#live").className = on ? "live-on" : "live-off";
  $("#live").textContent = t(on ? "live.on" : "live.off");
  if (on || !S.me) S.lostAt = null; else S.lostAt = S.lostAt || Date.now() / 1000;  // since the stream first dropped
  feedLost();
}
function feedLost() {  // the board and the alerts are as they were when the stream dropped: said over every view, cards greyed
  document.documentElement.classList.toggle("feed-lost", !!S.lostAt);
  $("#feed-lost").hidden = !S.lostAt;
  if (S.lostAt) say($("#feed-lost"), "live.lost", { since: fmtTime(S.lostAt) });
}
function connect() {
  const src = (S.source = new EventSource("/cr/api/events"));
  src.onopen = () => { liveState(true); if (S.feedLost) { S.feedLost = false; resync().catch(() => { S.feedLost = true; }); } };
  src.onerror = () => {  // the browser retries a dropped stream by itself, but gives up on an HTTP error (401, a proxy's 502)
    liveState(false);
    S.feedLost = true;
    if (src.readyState === EventSource.CLOSED) setTimeout(() => reconnect(src), 3000);
  };
  src.addEventListener("stations", (ev) => { for (const s of JSON.parse(ev.data).stations) S.stations.set(s.station, s); renderStations(); });
  src.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data).alert;
    if (S.alerts.has(a.id) || !matchesFilters(a)) return;
    S.alerts.set(a.id, a);
    $("#alert-list").prepend(alertCard(a));
    trimAlerts();
    window.crLatency.push({ id: a.id, seconds: Date.now() / 1000 - a.committed_at });
  });
  src.addEventListener("review", (ev) => { const d = JSON.parse(ev.data); const a = S.alerts.get(d.record_id); if (a) { a.reviews.push(d.review); rerender(a); } });
  src.addEventListener("action", (ev) => {
    const act = JSON.parse(ev.data).action; const a = S.alerts.get(act.record_id);
    if (a) addAction(a, act);
  });
  src.addEventListener("command", () => { if (window.crOnCommand) window.crOnCommand(); });
}

function reconnect(src) {  // signed out when the session has ended; otherwise the stream opened again (hub back)
  if (S.source !== src || !S.me) return;
  api("/cr/api/me").then(() => { if (S.source === src) connect(); }, () => { if (S.me) setTimeout(() => reconnect(src), 3000); });
}
async function resync() {  // what was committed while the stream was down (hub restart, network): never missed
  for (const s of await api("/cr/api/stations")) S.stations.set(s.station, s);
  renderStations();
  mergeAlerts((await apiPage("/cr/api/alerts?" + filterParams($("#filters")))).items);
  trimAlerts();
}
function mergeAlerts(items) {  // new ones placed in order, known ones redrawn only when their history grew: a card being
  for (const a of items) {     // written in (a comment typed, a refusal shown) is left as it is
    const known = S.alerts.get(a.id);
    if (known && known.actions.length >= a.actions.length && known.reviews.length >= a.reviews.length) continue;
    S.alerts.set(a.id, a);
    if (known) { rerender(a); continue; }
    const order = [...S.alerts.values()].sort(newestFirst), after = order.slice(order.indexOf(a) + 1);
    const next = after.map((o) => document.getElementById("alert-" + o.id)).find((n) => n);
    $("#alert-list").insertBefore(alertCard(a), next || null);
  }
}

// ---- stations board ------------------------------------------------------------------------
async function loadPki() {  // the broker refuses everyone once its CRL lapses; certificates expiring within 30 days
  const p = await api("/cr/api/pki");
  const items = [];
  if (p.enabled && p.crl.warn) {
    items.push(el("li", { class: "urgent", "data-warning": "crl" }, p.crl.error ? t("pki.crl_unreadable")
      : t("pki.crl_lapses", { when: fmtIso(p.crl.next_update) })));
  }
  for (const c of p.expiring) {
    items.push(el("li", { class: c.days_left <= 0 ? "urgent" : "", "data-warning": "expiring", "data-subject": c.subject },
      t(c.days_left <= 0 ? "pki.expired" : "pki.expiring", { subject: c.subject, kind: t("pki.kind." + c.kind),
                                                             when: fmtIso(c.not_after), days: Math.floor(c.days_left) })));
  }
  $("#pki-warnings").replaceChildren(...items);
  $("#pki-warnings").hidden = items.length === 0;
}

function renderStations() {  // coloured by the lane's state (central_sync/hub/stations.py condition), not only the link's
  const cards = [...S.stations.values()].sort((a, b) => a.station.localeCompare(b.station)).map((s) => {
    const cond = s.condition || s.state, lane = s.lane;
    return el("div", { class: "station " + cond, "data-station": s.station, "data-state": s.state, "data-condition": cond },
      el("h3", {}, s.station, el("span", { class: "state-badge" }, t("condition." + cond))),
      el("dl", {},
        el("dt", {}, t("board.lane")), el("dd", { class: "lane-state" }, laneText(lane)),
        el("dt", {}, t("board.items_per_hour")), el("dd", { class: "items-per-hour" }, lane ? fmtNum(lane.items_per_hour) : "-"),
        el("dt", {}, t("board.queue")), el("dd", { class: "queue-depth" }, lane ? fmtNum(lane.queue_depth) : "-"),
        el("dt", {}, t("board.last_item")), el("dd", { class: "last-item" }, lane ? fmtTime(lane.last_item_at) : "-"),
        el("dt", {}, t("board.devices")), el("dd", { class: "device-faults" + ((s.device_faults || []).length ? " error" : "") },
          ...deviceFaults(s.device_faults || [], !!lane)),
        el("dt", {}, t("board.backlog")), el("dd", {}, fmtNum(s.backlog_rows)),
        el("dt", {}, t("board.last_seen")), el("dd", {}, fmtTime(s.seen_at)),
        el("dt", {}, t("board.model")), el("dd", {}, s.model || "-"),
        el("dt", {}, t("board.software")), el("dd", { class: "software" }, s.software_version || "-"),
        el("dt", {}, t("board.budget_missed")), el("dd", {}, fmtNum(s.budget_missed_24h)),
        el("dt", {}, t("board.device_fault")), el("dd", {}, fmtNum(s.device_fault_24h)),
        el("dt", {}, t("board.last_error")), el("dd", {}, s.last_error ? t("board.has_error") : "-"),
        el("dt", {}, t("board.risk")), el("dd", { class: "risk" + (s.risk_stale || s.risk_version == null ? " error" : "") },
          s.risk_version == null ? t("board.risk_none") : t(s.risk_stale ? "board.risk_stale" : "board.risk_version", { version: s.risk_version }))));
  });
  $("#stations").replaceChildren(...cards);
}
function laneText(lane) {  // "Latched: emergency stop, since …"; an older station reports no lane
  if (!lane) return t("board.lane_unknown");
  let text = t("lanestate." + lane.state);
  if (lane.reason) text += ": " + tc("latch", lane.reason);
  return lane.since ? text + " " + t("board.since", { when: fmtTime(lane.since) }) : text;
}
function deviceFaults(faults, reported) {  // a device's name and state translated, its own sentence on hover
  if (!faults.length) return [reported ? t("board.devices_ok") : "-"];
  return faults.flatMap((f, n) => [n ? ", " : "", el("span", { class: "fault", "data-device": f.device, title: f.detail },
    `${deviceName(f.device)}: ${tc("devstate", f.state)}`)]);
}
function deviceName(name) {  // "camera:front" -> "Camera front"
  const [kind, ...rest] = name.split(":");
  return [tc("device", kind), ...rest].join(" ");
}

// ---- alerts --------------------------------------------------------------------------------
const FINAL_IMAGE_REFUSALS = new Set(["image_unreadable", "alert_unknown"]);  // waiting will not change these
function scanImage(id) {  // an alert's scan; on error the hub's answer says why: a scan not held yet is retried, one it cannot read is said at once
  const url = `/cr/api/alerts/${encodeURIComponent(id)}/image.png`;
  const img = el("img", { src: url, alt: t("alert.image") });
  let tries = 0;
  img.onerror = async () => {
    const why = await imageRefusal(url);
    if (why && FINAL_IMAGE_REFUSALS.has(why.code)) img.replaceWith(el("div", { class: "noimg image-refused" }, why.message));
    else if (tries++ < 5) setTimeout(() => { img.src = url + "?t=" + Date.now(); }, 2000);
    else img.replaceWith(el("div", { class: "noimg" }, t("alert.no_image")));
  };
  return img;
}
async function imageRefusal(url) {  // the hub's refusal of an image (code, values, sentence), null when it gave none (network, image now there)
  try {
    const r = await fetch(url, { credentials: "same-origin", headers: { "x-lang": S.lang } });
    return r.ok ? null : await refusal(r);
  } catch (e) { return null; }
}
function alertCard(a) {
  const r = a.record;
  const acked = a.actions.some((x) => x.kind === "ack");
  const img = r.scan ? scanImage(a.id) : el("div", { class: "noimg" }, t("alert.no_image"));
  const history = el("ul", { class: "history" },
    ...a.reviews.map((rv) => el("li", { class: "review" }, t("alert.review", { officer: person(rv.officer), outcome: tc("outcome", rv.outcome), at: fmtIso(rv.decided_at) }))),
    ...a.actions.map((x) => el("li", { class: "action-" + x.kind }, t("action." + x.kind, { actor: x.actor, assignee: x.assignee || "", at: fmtTime(x.at) }) + (x.text ? ": " + x.text : ""))));
  const text = el("input", { class: "act-text", placeholder: t("alert.comment_hint") });
  const who = S.assignees ? el("select", { class: "act-assignee", "aria-label": t("alert.assignee") },
    el("option", { value: "" }, t("alert.assignee")), ...S.assignees.map((u) => el("option", { value: u }, u))) : null;
  const said = el("p", { class: "act-msg error", role: "alert" });  // a refusal, one sentence under the buttons
  const act = (kind) => async () => {
    const body = { kind, text: text.value };
    said.textContent = "";
    if (kind === "assign") {
      if (!who.value) { who.focus(); return; }  // a person from the list, never free text
      body.assignee = who.value;
    }
    if (kind === "comment" && !text.value.trim()) { said.textContent = t("error.comment_empty"); text.focus(); return; }
    try {
      const done = await api(`/cr/api/alerts/${encodeURIComponent(a.id)}/actions`, { method: "POST", body: JSON.stringify(body) });
      if (kind === "comment") for (const n of [text, document.getElementById("alert-" + a.id)?.querySelector(".act-text")]) if (n) n.value = "";  // recorded: not kept for another
      addAction(a, done);
    } catch (e) { said.textContent = e.message; }
  };
  const buttons = [...(acked ? [] : [["ack", "alert.ack"]]), ["comment", "alert.comment"], ["escalate", "alert.escalate"]];  // acknowledged once
  if (S.me.can.includes("assign")) buttons.push(["assign", "alert.assign"]);
  return el("article", { class: "alert" + (acked ? " acknowledged" : ""), id: "alert-" + a.id, "data-id": a.id },
    img,
    el("div", {},
      el("h3", {}, el("span", { class: "verdict-" + r.verdict }, tc("verdict", r.verdict)), " · ", r.station, " · ", fmtIso(r.decided_at),
        ...alertMarks(a)),
      el("dl", {},
        el("dt", {}, t("alert.reason")), el("dd", { class: "reason" }, tc("reason", r.reason)),
        el("dt", {}, t("alert.identities")), el("dd", { class: "identities" }, ...identityList(r.identities)),
        el("dt", {}, t("alert.detections")), el("dd", {}, r.detections.map((d, n) => `${n + 1}. ${tc("class", d.label)} ${fmtNum(d.score, true)}`).join(", ") || "-"),
        el("dt", {}, t("alert.kind")), el("dd", {}, tc("kind", r.kind) + " · " + r.lane)),
      history,
      el("div", { class: "actions" }, text, ...(who ? [who] : []), ...buttons.map(([k, label]) => el("button", { class: "act-" + k, onclick: act(k) }, t(label))),
        ...(window.crAlertExtras ? window.crAlertExtras(a) : [])), said));  // retention.js: export case, hold
}
function alertMarks(a) {  // escalated stays marked on the card once acknowledged, the officer's decision beside (the wall hides the history)
  const kinds = new Set(a.actions.map((x) => x.kind));
  const marks = ["escalated", "acknowledged"].filter((k) => kinds.has(k === "escalated" ? "escalate" : "ack"))
    .map((k) => el("span", { class: "alert-mark mark-" + k }, t("state." + k)));
  const decided = [...a.reviews].sort((x, y) => Date.parse(x.decided_at) - Date.parse(y.decided_at)).pop();  // the latest decision stands
  if (decided) marks.push(el("span", { class: "alert-mark mark-reviewed outcome-" + decided.outcome }, tc("outcome", decided.outcome)));
  return marks;
}
function identityList(idents) {  // kind, value, a seal's state, a recogniser's confidence; a conflict marked, its sentence on hover
  if (!idents.length) return ["-"];
  return idents.flatMap((i, n) => [n ? ", " : "", el("span", { class: "ident" + (i.conflict ? " conflict" : ""), "data-kind": i.kind,
    title: i.conflict ? conflictText(i) : "" }, `${tc("ident", i.kind)} ${i.value}` + (i.seal ? ` (${tc("seal", i.seal.state)})` : "")
    + (i.confidence != null ? ` ${fmtNum(i.confidence, true)}` : "") + (i.conflict ? ` ⚠ ${t("ident.conflict")}` : ""))]);
}
// A conflict said in the language shown from its codes and values (`conflicts`, one per sentence of `conflict`); a
// record from before the codes, or one with a code not in the catalogue, shows its English sentences as they are.
const CONFLICT_LISTS = ["plates", "epcs", "lanes"];  // values naming several, joined by ", " in the record
function conflictText(i) {
  const notes = i.conflicts || [];
  if (notes.length !== i.conflict.split("; ").length || notes.some((n) => S.msgs["conflict." + n.code] === undefined)) {
    return i.conflict;  // a sentence without its code: the English sentences say them all
  }
  const said = (n) => t("conflict." + n.code, Object.fromEntries(Object.entries(n.values || {}).map(([k, v]) => [k,
    k === "jurisdiction" ? tc("jurisdiction", v)
      : CONFLICT_LISTS.includes(k) ? new Intl.ListFormat(locale(), { type: "conjunction" }).format(v.split(", ")) : v])));
  return notes.map(said).join(t("conflict.join"));
}
const KIND_ALIASES = { seal: ["seal", "eseal"], eseal: ["seal", "eseal"], em4100: ["em4100", "rfid"], rfid: ["rfid", "em4100"] };
// The form the hub keys identities by (central_sync/hub/search.py normalise, its second step risk/normal.py's plate
// form): separators, every dash and invisible characters dropped, upper case, Cyrillic and Greek look-alikes as Latin
// letters, for every kind. A live alert is shown under a search exactly when the hub's search finds it.
const LOOK_ALIKES = new Map([..."АВЕЅІЈКМНОРСТУХԚԜΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"].map((c, n) => [c, "ABESIJKMHOPCTYXQWABEZHIKMNOPTYX"[n]]));
const normOnce = (v) => [...v.normalize("NFKC").toUpperCase().normalize("NFKC").replace(/[\s.·・/_\u2212\0]/g, "")]
  .filter((c) => !/[\p{Pd}\p{Cf}]/u.test(c)).map((c) => LOOK_ALIKES.get(c) || c).join("");
function normId(v) {
  let out = v.normalize("NFKC").replace(/[\s.\-·・]+/g, "").toUpperCase();
  if (/^[A-Z0-9]*$/.test(out)) return out;
  for (let n = 0; n < 4; n++) { const again = normOnce(out); if (again === out) break; out = again; }
  return out;
}
function identityMatches(i, q, kind, match) {
  if (kind && !(KIND_ALIASES[kind] || [kind]).includes(i.kind)) return false;
  const v = normId(i.value);
  return match === "exact" ? v === q : v.startsWith(q);
}
function addAction(a, act) {  // the POST answer and the live feed both bring it: keep one
  if (a.actions.some((x) => x.at === act.at && x.actor === act.actor && x.kind === act.kind)) return;
  a.actions.push(act);
  rerender(a);
}
function rerender(a) {  // what is being written on the card (a comment, the person chosen) stays as the card is redrawn
  const old = document.getElementById("alert-" + a.id);
  if (!old) return;
  const card = alertCard(a), typing = old.contains(document.activeElement) ? document.activeElement.className : null;
  for (const sel of [".act-text", ".act-assignee"]) if (old.querySelector(sel) && card.querySelector(sel)) card.querySelector(sel).value = old.querySelector(sel).value;
  old.replaceWith(card);
  if (typing === "act-text" || typing === "act-assignee") card.querySelector("." + typing).focus();
}
const newestFirst = (a, b) => Date.parse(b.record.decided_at) - Date.parse(a.record.decided_at) || (b.id > a.id ? 1 : -1);
function renderAlerts() { $("#alert-list").replaceChildren(...[...S.alerts.values()].sort(newestFirst).map(alertCard)); }
function showAlertPage(page) {  // one page of alerts added; "Show older" while the hub holds more
  for (const a of page.items) S.alerts.set(a.id, a);
  $("#alert-more").hidden = !page.more;
  S.alertsNext = page.next;  // where the next older page starts: a page filtered by state may show none
}
function renderAll() { renderStations(); renderAlerts(); }
function trimAlerts() {  // a page left open (a wall, for days) drops its oldest alerts past the limit: "Show older" brings them back
  if (S.alerts.size <= S.shownMax) return;
  const kept = [...S.alerts.values()].sort(newestFirst);
  for (const a of kept.slice(S.shownMax)) { S.alerts.delete(a.id); document.getElementById("alert-" + a.id)?.remove(); }
  S.alertsNext = kept[S.shownMax - 1].id;  // the next older page starts after the oldest kept
  $("#alert-more").hidden = false;
}

function filterParams(form) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) p.set(k, (k === "since" || k === "until") ? new Date(v).toISOString() : v);
  return p;
}
function matchesFilters(a) {  // a live alert shown when the search would find it (as central_sync/control_room/queries.py)
  const f = new FormData($("#filters"));
  const st = (f.get("station") || "").toLowerCase(), q = normId(f.get("q") || ""), kind = f.get("ident_kind"), match = f.get("match");
  if (st && !a.record.station.toLowerCase().includes(st)) return false;
  if (q && !a.record.identities.some((i) => identityMatches(i, q, kind, match))) return false;
  const at = Date.parse(a.record.decided_at);
  if (f.get("since") && at < new Date(f.get("since")).getTime()) return false;
  if (f.get("until") && at >= new Date(f.get("until")).getTime()) return false;
  return !f.get("state") || alertStates(a).includes(f.get("state"));
}
function alertStates(a) {  // as queries.alert_states
  const kinds = new Set(a.actions.map((x) => x.kind));
  return [kinds.has("ack") ? "acknowledged" : "unacknowledged", a.reviews.length ? "reviewed" : "open",
    ...(kinds.has("assign") ? ["assigned"] : []), ...(kinds.has("escalate") ? ["escalated"] : [])];
}
function showSearchPage(page) {  // a search's first page; a broad search shows its newest page and says there is more
  showAlertPage(page);
  // only over a search: with none set, more alerts than the first page is the rule ("Show older" under the list)
  $("#search-more").hidden = !page.more || setFilters(filterParams($("#filters"))).length === 0;
  say($("#search-more"), "filter.more_results", { n: page.items.length });
}
const FILTER_KEYS = ["q", "ident_kind", "match", "station", "state", "scope", "since", "until"];
const setFilters = (params) => FILTER_KEYS.filter((k) => {  // those that narrow the list: a choice left at its first option (match=prefix) does not
  const field = $("#filters").elements[k];
  return params.has(k) && !(field.tagName === "SELECT" && params.get(k) === field.options[0].value);
});
function filtersToAddress(params) {  // the search kept in the address beside ?wall= and #view: a reload or a shared link searches the same
  const u = new URLSearchParams(location.search), set = setFilters(params);
  for (const k of FILTER_KEYS) if (set.includes(k)) u.set(k, params.get(k)); else u.delete(k);
  $("#search-active").hidden = set.length === 0;  // a wall or a reloaded page never hides alerts without saying so
  const q = u.toString();
  if (q !== location.search.slice(1)) history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
}
function filtersFromAddress() {  // the form as the address names it; since/until are instants (UTC), shown in local time
  const u = new URLSearchParams(location.search), form = $("#filters");
  for (const k of FILTER_KEYS) {  // each field set, not form.reset(): a reset searches by itself
    const v = u.get(k), field = form.elements[k], d = new Date(v ?? NaN);
    if (field.type === "checkbox") field.checked = v === field.value;
    else if (field.type === "datetime-local") field.value = isNaN(d) ? "" : new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    else if (field.tagName === "SELECT") field.value = [...field.options].some((o) => o.value === v) ? v : field.options[0].value;
    else field.value = v ?? "";
  }
}
$("#filters").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const params = filterParams(ev.target);
  filtersToAddress(params);
  S.alerts.clear();
  S.shownMax = S.liveMax;
  showSearchPage(await apiPage("/cr/api/alerts?" + params));
  renderAlerts();
});
$("#alert-more").addEventListener("click", async () => {  // the next older page of the same search
  const p = filterParams($("#filters")), oldest = [...S.alerts.values()].sort(newestFirst).pop();
  const before = S.alertsNext || (oldest && oldest.id);
  if (before) p.set("before", before);
  const page = await apiPage("/cr/api/alerts?" + p);
  showAlertPage(page);
  S.shownMax = S.alerts.size + S.liveMax;  // what was asked for stays while as many live alerts again arrive
  $("#alert-list").append(...page.items.map(alertCard));
});
$("#filters").addEventListener("reset", () => setTimeout(() => $("#filters").requestSubmit(), 0));

// ---- KPIs ----------------------------------------------------------------------------------
async function loadKpi() {
  const p = filterParams($("#kpi-range"));
  const k = await api("/cr/api/kpi?" + p);
  $("#kpi-csv").href = "/cr/api/kpi.csv?" + p;
  $("#kpi-none").hidden = k.summary.length > 0;
  charts($("#kpi-charts"), k.charts);
  const cols = [["station", 0], ["items", 0], ["suspect_rate", 1], ["manual_rate", 1], ["budget_missed", 0], ["device_fault", 0],
    ["verdict_ms_p50", 0], ["verdict_ms_p95", 0], ["decision_s_p50", 0], ["reviewed", 0], ["agreement", 1], ["tip_shown", 0], ["tip_hits", 0], ["tip_hit_rate", 1], ["tip_miss_rate", 1]];
  table($("#kpi-table"), cols.map(([c]) => t("kpi.col." + c)), k.summary.map((row) => cols.map(([c, pct]) => (c === "station" ? row[c] : fmtNum(row[c], pct)))));
  table($("#kpi-officers"), ["officer", "reviewed", "agree", "disagree"].map((c) => t("kpi.col." + c)),
    k.officers.map((o) => [person(o.officer), fmtNum(o.reviewed || 0), fmtNum(o.agree || 0), fmtNum(o.disagree || 0)]));
}
$("#kpi-range").addEventListener("submit", (ev) => { ev.preventDefault(); loadKpi(); });
$("#kpi-refresh").addEventListener("click", () => loadKpi());
setInterval(() => { if (S.me && S.view === "kpi" && $("#kpi-auto").checked && !document.hidden) loadKpi(); }, 60000);

// ---- TIP: per station for every role, per officer for supervisors and admins ----------------
const TIP_COLS = [["tip_shown", 0], ["tip_hits", 0], ["tip_misses", 0], ["tip_hit_rate", 1], ["tip_miss_rate", 1], ["tip_false_alarms", 0], ["tip_decision_s_p50", 0]];
function tipTable(node, keys, rows) {
  const cols = [...keys.map((k) => [k, null]), ...TIP_COLS];
  table(node, cols.map(([c]) => t("kpi.col." + c)), rows.map((row) => cols.map(([c, pct]) => (c === "officer" ? person(row[c]) : pct === null ? row[c] : fmtNum(row[c], pct)))));
}
function charts(node, svgs) { node.replaceChildren(...Object.values(svgs).map((s) => { const d = el("div"); d.innerHTML = s; return d; })); }
async function loadTip() {
  const p = filterParams($("#tip-range"));
  const k = await api("/cr/api/kpi/tip?" + p);
  $("#tip-csv").href = "/cr/api/kpi/tip.csv?" + p;
  charts($("#tip-charts"), k.charts);
  tipTable($("#tip-table"), ["station"], k.stations);
  if (!S.me.can.includes("staff_kpi")) return;
  const o = await api("/cr/api/kpi/tip/officers?" + p);
  $("#tip-officers-csv").href = "/cr/api/kpi/tip/officers.csv?" + p;
  charts($("#tip-officer-charts"), o.charts);
  tipTable($("#tip-officers"), ["station", "officer"], o.officers);
}
$("#tip-range").addEventListener("submit", (ev) => { ev.preventDefault(); loadTip(); });
function table(node, head, rows) {
  node.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))));
}

// ---- vehicle search reports (the latest version of each; central_sync/hub/search_reports.py) -------------
async function loadSearchReports() {
  const f = new FormData($("#search-form")), p = new URLSearchParams();
  for (const k of ["q", "outcome", "station"]) if (f.get(k)) p.set(k, f.get(k));
  const rows = await api("/cr/api/search-reports?" + p);
  $("#search-none").hidden = rows.length > 0;
  table($("#search-table"), ["search.time", "search.station", "search.identities", "search.outcome", "search.version",
                             "search.officer", "search.supervisor", "search.minutes", "search.findings",
                             "search.photos"].map((k) => t(k)),
    rows.map((v) => { const r = v.report; return [fmtIso(r.officer.signed_at), v.station,
      v.identities.map((i) => i.value).join(" / "), tc("search_outcome", v.search_outcome), r.version,
      r.officer.name + " (" + r.officer.badge + ")", r.countersigned ? r.countersigned.name + " (" + r.countersigned.badge + ")" : "",
      r.minutes, r.findings.map((x) => `${x.goods} ${x.hs_class} ${x.quantity} ${x.unit} ${x.weight_kg} kg`).join("; "),
      searchPhotos(v)]; }));
}
function searchPhotos(v) {  // the report's photos the hub holds (synced by the station), each a thumbnail link
  const cell = el("span", { class: "search-photos" });
  for (const ph of v.photos || []) {
    if (!ph.held) { cell.append(el("span", { class: "muted", title: ph.sha256 }, t("search.photo_pending"))); continue; }
    const url = `/cr/api/search-reports/${encodeURIComponent(v.record_id)}/photos/${ph.sha256}`;
    const img = el("img", { src: url, alt: ph.sha256.slice(0, 12), class: "search-photo", loading: "lazy" });
    img.onerror = () => photoRefused(img, url, ph.sha256);
    cell.append(el("a", { href: url, target: "_blank", rel: "noopener" }, img));
  }
  return cell;
}
async function photoRefused(img, url, sha) {  // a photo the hub will not show (not a JPEG or PNG, too large): why, not a broken image
  const r = await fetch(url, { credentials: "same-origin", headers: { "x-lang": S.lang } });
  if (!r.ok) img.parentNode.replaceWith(el("span", { class: "muted photo-refused", title: sha }, (await refusal(r)).message));
}
$("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadSearchReports(); });

// ---- audit (commands: commands.js) ---------------------------------------------------------
const AUDIT_PAGE = 200, IMAGE_VIEW = /^\/cr\/api\/alerts\/[^/]+\/image\.png$/;
async function loadAudit(older) {  // newest first; "Show older" pages back by seq
  const before = older && S.audit.length ? "&before=" + S.audit[S.audit.length - 1].seq : "";
  const rows = await api(`/cr/api/audit?limit=${AUDIT_PAGE}${before}`);
  S.audit = older ? S.audit.concat(rows) : rows;
  $("#audit-more").hidden = rows.length < AUDIT_PAGE;
  renderAudit();
}
function renderAudit() {  // a run of one user's alert-image views is one row (unless the box is cleared)
  const rows = [];
  for (const r of S.audit) {
    const image = r.action === "get:view" && IMAGE_VIEW.test(r.object), last = rows[rows.length - 1];
    if (image && $("#audit-group").checked && last && last.images && last.actor === r.actor) last.images.push(r);
    else rows.push(image ? { ...r, images: [r] } : r);
  }
  table($("#audit-table"), ["seq", "at", "actor", "action", "object"].map((c) => t("audit.col." + c)), rows.map((r) => {
    if (!r.images || r.images.length < 2) return [r.seq, fmtIso(r.at), r.actor, auditAction(r.action), r.object];
    const first = r.images[r.images.length - 1];
    return [`${first.seq}–${r.seq}`, `${fmtIso(first.at)} – ${fmtIso(r.at)}`, r.actor, t("audit.image_views", { n: r.images.length }), ""];
  }));
}
function auditAction(code) {  // "alert_ack" -> "acknowledged an alert"; "get:kpi" -> "viewed"; unknown codes as they are
  if (S.msgs["audit.action." + code] !== undefined) return t("audit.action." + code);
  const verb = code.split(":")[0];
  return code.includes(":") && S.msgs["audit.verb." + verb] !== undefined ? `${t("audit.verb." + verb)} (${code.split(":")[1]})` : code;
}
$("#audit-more").addEventListener("click", () => loadAudit(true));
$("#audit-group").addEventListener("change", renderAudit);
$("#audit-verify").addEventListener("click", async () => {
  const v = await api("/cr/api/audit/verify");
  if (v.first_broken === null) say($("#audit-result"), "audit.intact", { n: v.checked });
  else say($("#audit-result"), "audit.broken", { seq: v.first_broken, why: v.why });
});

// ---- boot ----------------------------------------------------------------------------------
(async () => {  // the session a cookie still holds; a sign-in (or out) made while this was asked decides instead
  const sentIn = session;
  let me = null;
  try { me = await api("/cr/api/me"); } catch (e) { /* no session: the sign-in form */ }
  if (sentIn !== session) return;
  try {
    if (!me) throw new Error("no session");
    S.me = me;
    await start();
  } catch (e) {
    if (S.me && sentIn !== session) return;  // signed in again while the start failed
    await loadLang((navigator.languages || [navigator.language]).join(",") || "default");
    if (!S.me || sentIn === session) signedOut();
  }
})();
