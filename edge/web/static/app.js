// Station screen: sign-in, live scans over SSE, screening tools, decisions, TIP, health, audit.
"use strict";
const $ = (id) => document.getElementById(id);
const S = { me: null, lang: "en", msgs: {}, current: null, mode: "colour", zoom: 1, panX: 0, panY: 0,
            boxes: [], drawing: false, live: null, badges: null, audio: null, viewingLive: true, waiting: [], seen: new Set(),
            heard: new Set(), sentOn: new Set() };  // heard: the seqs of the suspects whose alarm sounded (kept across a reload, officer.js)
const HEARD_MAX = 500;
window.cpeTimings = {};  // per item: when its event arrived, its banner showed, its image loaded (ms epoch)
const MODES = ["colour", "grey", "low", "organic", "inorganic", "negative"];  // grey: high energy
const CLASSES = ["firearm", "knife", "explosive", "ammunition", "battery", "cigarettes", "drugs", "currency", "phone", "other"];
// what an officer finds in a vehicle or container (the gantry model's classes and the rest)
const PORTAL_CLASSES = ["cigarettes", "drugs", "firearm", "ammunition", "explosive", "currency", "concealment", "load_present", "other"];

function T(key, vars) {
  let s = S.msgs[key];
  if (s === undefined) { console.warn("missing message", key); s = key; }
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll("{" + k + "}", v);
  return s;
}
// A count in words: key_one where the language says one thing apart ("1 undecided item"), else key (Chinese: one form)
function Tn(key, n, vars) {
  const one = new Intl.PluralRules(locale()).select(Number(n)) === "one" && S.msgs[key + "_one"] !== undefined;
  return T(one ? key + "_one" : key, { ...vars, n: fmtNum(n) });
}
const tr = (prefix, code) => (S.msgs[prefix + code] !== undefined ? T(prefix + code) : code);

// A 401 signs the screen out only when it answers the session its request was sent in: the screen's own session check
// at start, answered after an officer badged in meanwhile, says nothing about the officer's session.
let session = 0;  // counts sign-ins and sign-outs on this screen
// The officer's last touch, key or wheel on this screen. Every request says how long ago it was (X-Idle-S): the
// screen asks by itself every few seconds (the lane, the belt) and for each new item, and the station's idle sign-out
// runs from the officer's own last act, so a screen left alone signs out. Working without a request (examining an
// image) is told to the station too, at most every IDLE_TELL_MS.
const IDLE_TELL_MS = 20000;
let actedAt = Date.now(), toldAt = Date.now();
function acted() {
  actedAt = Date.now();
  if (S.me && actedAt - toldAt > IDLE_TELL_MS) api("/api/me").catch(() => {});
}
for (const type of ["pointerdown", "keydown", "wheel"]) document.addEventListener(type, acted, { capture: true, passive: true });
async function api(path, opts = {}) {
  const init = { credentials: "same-origin", ...opts }, sentIn = session;
  init.headers = { "X-Idle-S": ((Date.now() - actedAt) / 1000).toFixed(1) };
  if (opts.json !== undefined) { init.method = init.method || "POST"; init.body = JSON.stringify(opts.json);
    init.headers["Content-Type"] = "application/json"; }
  if (Date.now() - actedAt < 1000) toldAt = Date.now();
  const r = await fetch(path, init);
  if (r.status === 401 && S.me && sentIn === session && !path.startsWith("/api/signin")) { signedOut(); throw new Error("error.not_signed_in"); }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error("error." + (body?.detail && typeof body.detail === "string" ? body.detail : "request_failed"));
  return body;
}

// -- language -------------------------------------------------------------------------------
async function loadLang(lang) {
  const cat = await api("/api/i18n/" + encodeURIComponent(lang));
  S.lang = cat.lang; S.msgs = cat.messages; $("station").textContent = cat.station || ""; S.panels = cat.panels || [];
  document.documentElement.lang = S.lang;
  const sel = $("lang"); sel.innerHTML = "";
  for (const l of cat.langs) sel.add(new Option(T("lang." + l), l, false, l === S.lang));
  applyMessages();
}
function applyMessages() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = T(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = T(el.dataset.i18nPh);
  $("modes").innerHTML = "";
  for (const m of MODES) {
    const b = document.createElement("button"); b.textContent = T("view." + m); b.dataset.mode = m;
    b.className = m === S.mode ? "on" : ""; b.onclick = () => setMode(m); $("modes").append(b);
  }
  fillClasses();
  if (S.current) showRecord(S.current, false);
  if (!S.me) return;
  $("who").textContent = S.me.name + " · " + T("role." + S.me.role);
  // the lines above the item, written when their news came: again in this language (the banner's idle words too)
  showQueued(); showNotReplayed(); showUndecided(); showStopped();
  if (S.early && S.earlyRisk === S.early.item) showRisk("early-risk", S.early);
}
$("lang").onchange = async () => {  // kept for the next start once loaded (it kept the language being left)
  await loadLang($("lang").value); localStorage.setItem("lang", S.lang);
  if (S.me) api("/api/me/lang", { json: { lang: S.lang } }); else S.langChosen = true;
};

// -- sign-in ----------------------------------------------------------------------------------
function keypad() {
  const k = $("keypad");
  for (const d of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "C"]) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = d;
    b.onclick = () => { const p = $("pin"); p.value = d === "⌫" ? p.value.slice(0, -1) : d === "C" ? "" : p.value + d; };
    k.append(b);
  }
}
function watchBadges() {
  if (S.badges) return;
  S.badges = new EventSource("/api/badge-stream");
  S.badges.addEventListener("hello", () => { document.body.dataset.badges = "1"; });  // the reader's feed is live
  S.badges.addEventListener("badge", (e) => { if (!S.me) { $("badge").value = JSON.parse(e.data).badge; $("pin").focus(); } });
}
$("signin-form").onsubmit = async (ev) => {
  ev.preventDefault(); $("signin-error").textContent = "";
  unlockAudio();
  try {
    const me = await api("/api/signin", { json: { badge: $("badge").value, pin: $("pin").value } });
    $("pin").value = ""; await signedIn(me);
  } catch (err) { $("signin-error").textContent = T(err.message); }
};
$("signout").onclick = async () => { try { await api("/api/signout", { method: "POST" }); } finally { signedOut(); } };

async function signedIn(me) {
  session += 1;
  S.me = me;  // a language chosen on the sign-in screen is kept (and becomes the officer's); else the officer's own
  if (S.langChosen && me.lang !== S.lang) { api("/api/me/lang", { json: { lang: S.lang } }).catch(() => {}); me.lang = S.lang; }
  else if (me.lang && me.lang !== S.lang) await loadLang(me.lang);
  S.langChosen = false;
  if (S.badges) { S.badges.close(); S.badges = null; }
  $("nav").hidden = false; $("signout").hidden = false;
  $("who").textContent = me.name + " · " + T("role." + me.role);
  for (const el of document.querySelectorAll("[data-perm]")) el.hidden = !me.permissions.includes(el.dataset.perm);
  if (!S.current) $("dicos").hidden = $("case-export").hidden = true;  // they act on the item shown: none yet
  S.undecidedNote = true;  // undecided items left by whoever was here before: the Live view says how many
  if (can("case.view")) { refreshQueue(); refreshLane().catch(() => {}); show("live"); resumeWork(); } else show(can("diagnostics") ? "diagnostics" : "health");
}
function signedOut() {
  session += 1;
  S.me = null; S.current = null; S.boxes = []; S.waiting = []; S.seen = new Set(); S.heard = new Set(); showQueued(); S.notReplayed = 0; showNotReplayed();
  S.undecidedNote = false; S.queueTotal = 0; S.caseOpen = false; S.liveItem = null; showUndecided();
  if (S.live) { S.live.close(); S.live = null; }
  $("scan").removeAttribute("src"); $("scan").dataset.loadedId = ""; $("trail").innerHTML = "";
  $("nav").hidden = true; $("signout").hidden = true; $("who").textContent = "";
  show("signin"); watchBadges(); $("badge").focus();
}
const can = (p) => !!S.me && S.me.permissions.includes(p);

// -- navigation -------------------------------------------------------------------------------
function show(view) {
  if (view === "live") leaveCase(true);
  const caseView = view === "live" || view === "case";
  for (const sec of document.querySelectorAll("main > .view")) sec.hidden = true;
  $(caseView ? "view-case" : "view-" + view).hidden = false;
  for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("on", b.dataset.view === view);
  S.viewingLive = view === "live";
  if (S.viewingLive && S.waiting.length && !busy() && !S.advancing) showWaiting();  // what arrived meanwhile
  const loaders = { queue: refreshQueue, history: refreshHistory, tip: refreshTip, health: refreshHealth,
                    diagnostics: refreshDiag, audit: refreshAudit };
  if (loaders[view]) loaders[view]();
}
for (const b of document.querySelectorAll("#nav button")) b.onclick = () => show(b.dataset.view);

// -- live stream ------------------------------------------------------------------------------
// after: the last seq dealt with before a reload (officer.js resumeWork), or before a gap in the stream
function connectLive(after) {
  if (!S.me || S.live) return;
  S.lastSeq = after ?? null; S.seqBefore = null;
  S.live = new EventSource("/api/stream" + (after != null ? "?after=" + encodeURIComponent(after) : ""));
  S.live.addEventListener("hello", () => { document.body.dataset.live = "1"; });
  S.live.addEventListener("inspection", (e) => {
    const rec = JSON.parse(e.data);
    if (S.seen.has(rec.seq)) return;  // sent again after a gap: already here
    S.seen.add(rec.seq); if (S.seen.size > 5000) S.seen = new Set([...S.seen].slice(-1000));
    S.seqBefore = S.lastSeq; S.lastSeq = Math.max(S.lastSeq || 0, rec.seq || 0);
    window.cpeTimings[rec.id] = { event: Date.now() };
    if (rec.verdict !== "clear") { refreshQueue(); refreshLane().catch(() => {}); }
    if (rec.verdict === "suspect" && (rec.seq == null || !S.heard.has(rec.seq))) {  // on every view, once: not again when sent after a reload
      S.heard.add(rec.seq); if (S.heard.size > HEARD_MAX) S.heard = new Set([...S.heard].slice(-HEARD_MAX));
      alarm(); if (!S.viewingLive) alarmToast(rec);
    }
    if (!S.viewingLive || busy()) holdBack(rec);
    else { S.waiting = []; showQueued(); showRecord(rec, true); }
  });
  S.live.addEventListener("review", (e) => { refreshQueue(); reviewed(JSON.parse(e.data)); });
  S.live.addEventListener("lane", (e) => { S.lane = JSON.parse(e.data); showLane(); });
  S.live.addEventListener("risk", (e) => {  // an item's identity is known, its scan not yet judged
    const early = JSON.parse(e.data); S.earlyRisk = early.item; S.early = early;
    showRisk("early-risk", early);
  });
  S.live.addEventListener("signed_out", () => signedOut());
  // The station dropped the oldest events it held for this screen (too slow for a burst): they came just before the
  // last item it sent, so the stream starts again from before that item (what is here already is skipped).
  S.live.addEventListener("dropped", (e) => {
    const count = JSON.parse(e.data).count || 0;
    const after = S.seqBefore ?? (S.lastSeq != null ? Math.max(0, S.lastSeq - count - 1) : null);
    refreshQueue();
    if (after == null) return;  // nothing came yet to place the gap: the Queue has what was lost
    S.live.close(); S.live = null; connectLive(after);
  });
  S.live.addEventListener("not_replayed", (e) => {  // back after a long break: older items than those sent again
    S.notReplayed = (S.notReplayed || 0) + JSON.parse(e.data).count; showNotReplayed(); refreshQueue();
  });
}
function showNotReplayed() {
  const b = $("not-replayed"); b.hidden = !S.notReplayed;
  if (S.notReplayed) b.textContent = Tn("live.not_replayed", S.notReplayed);
}
$("not-replayed").onclick = () => { S.notReplayed = 0; showNotReplayed(); show("queue"); };
// Signed in (or reloaded) with suspect or manual items undecided that this screen does not hold (its item and
// those waiting behind it): one line says how many, until the officer opens the Queue from it.
function showUndecided() {
  const here = [S.current, S.liveItem?.rec, ...S.waiting].filter((r) => r && r.verdict !== "clear" && !r.review).length;
  const n = S.undecidedNote ? Math.max(0, (S.queueTotal || 0) - here) : 0, b = $("undecided");
  b.hidden = n === 0;
  if (n) b.textContent = Tn("live.undecided", n);
}
$("undecided").onclick = () => { S.undecidedNote = false; showUndecided(); show("queue"); };

// An item on screen stays until the officer decides or moves on ("next"): one that asks for a decision,
// and any the officer is examining (zoomed, panned, a note, a box). Newer items wait behind "next" with
// their count (a suspect's alarm sounds on arrival) and are in the queue regardless.
const needsDecision = () => !!S.current && S.current.verdict !== "clear" && !S.current.review && can("case.decide");
const examining = () => !!S.current && (S.zoom !== 1 || S.panX !== 0 || S.panY !== 0 || S.drawing || S.boxes.length > 0
  || $("note").value.trim() !== "");
// A vehicle this screen sent to the search bay (no review until the search's report) is dealt with here: it holds the
// Live view no longer, and the vehicle behind it, now the one at the barrier, comes as after any decision.
const sentOn = () => !!S.current && S.sentOn.has(S.current.id);
const busy = () => !sentOn() && (needsDecision() || examining());
const WAITING_MAX = 500;  // an officer away from Live for hours: the oldest clear items give way
function holdBack(rec) {  // in the station's order (an item sent again after a gap is older than those here)
  const at = S.waiting.findIndex((r) => r.seq > rec.seq);
  if (at < 0) S.waiting.push(rec); else S.waiting.splice(at, 0, rec);
  if (S.waiting.length > WAITING_MAX) { const i = S.waiting.findIndex((r) => r.verdict === "clear"); S.waiting.splice(i < 0 ? 0 : i, 1); }
  showQueued();
  const tm = window.cpeTimings[rec.id]; if (tm) tm.held = Date.now();
}
function showQueued() {
  showUndecided();  // the items waiting here are not counted there
  const b = $("next-item"), n = S.waiting.length; b.hidden = n === 0;
  if (!n) return;
  const urgent = S.waiting.find((r) => r.verdict !== "clear");
  b.className = "next-item " + (urgent ? urgent.verdict : "clear"); b.dataset.waiting = n;
  b.textContent = T("live.next_waiting", { n: fmtNum(n), verdict: T("verdict." + (urgent || S.waiting[0]).verdict) });
}
// The next item: the oldest waiting suspect or manual item first, else the newest clear one (the older
// clear ones need nobody: they are in the history).
function showWaiting() {
  leaveCase(false);
  if (!S.waiting.length) return;
  let i = S.waiting.findIndex((r) => r.verdict !== "clear");
  if (i < 0) i = S.waiting.length - 1;
  const rec = S.waiting[i];
  S.waiting = i === S.waiting.length - 1 && rec.verdict === "clear" ? [] : S.waiting.filter((_, j) => j !== i);
  S.advancing = true;
  try { showQueued(); show("live"); showRecord(rec, true); } finally { S.advancing = false; }
}
$("next-item").onclick = showWaiting;
// A case opened from a list (Queue, History, recall, the belt's items) is looked at in its own right; the Live view's
// item kept aside meanwhile comes back on the return to Live, zoom, pan and draft as left (restore), or waits behind
// Next when Next is touched first: an undecided item is never dropped from the Live view by a look at another.
function leaveCase(restore) {
  if (!S.caseOpen) return;
  S.caseOpen = false; $("trail").innerHTML = "";
  const live = S.liveItem; S.liveItem = null;
  if (!live) return;
  if (!restore) {  // moved on from it: an undecided item waits, a clear one is left (TIP: watched, it is a miss)
    if (live.rec.verdict !== "clear" && !live.rec.review) holdBack(live.rec); else leaving(live.rec);
    return;
  }
  showRecord(live.rec, false); loadImage();
  S.zoom = live.view.zoom; S.panX = live.view.panX; S.panY = live.view.panY; applyFilters();
  if (!live.rec.review) {
    $("note").value = live.draft.note; S.boxes = live.draft.boxes;
    if (live.draft.cls) $("class").value = live.draft.cls;
    drawBoxes();
  }
}

function fillClasses() {
  const cls = $("class"), keep = cls.value; cls.innerHTML = "";
  cls.add(new Option(T("decide.choose_class"), ""));  // never a class by default: the officer's or the detector's
  for (const c of sideOn() ? PORTAL_CLASSES : CLASSES) cls.add(new Option(T("class." + c), c));
  if (keep && [...cls.options].some((o) => o.value === keep)) cls.value = keep;
}
const HOLD_BADGES = { record: "hold.record", plate: "hold.plate", container: "hold.container" };
// The detector's class when it found one class; the officer chooses when it found several, or none.
function detectorClass(rec) {
  const cls = $("class"), labels = [...new Set((rec.detections || []).map((d) => d.label))];
  cls.value = labels.length === 1 && [...cls.options].some((o) => o.value === labels[0]) ? labels[0] : "";
  cls.classList.toggle("ask", labels.length > 1);
}
function showRecord(rec, fresh) {
  const changed = !S.current || S.current.id !== rec.id;
  // TIP: moving on from an item (officer.js); the Live view's item set aside for a look at a case is not left yet
  if (changed && S.current && S.current.id !== S.liveItem?.rec.id) leaving(S.current);
  S.current = rec; showUndecided();
  if (changed) { fillClasses(); detectorClass(rec); }
  if (changed) { S.boxes = []; S.tipBox = null; resetView(); decideMsg(""); $("note").value = ""; askOverride(null); }
  else if (S.decideAsk) askOverride(S.decideAsk);  // the question in the language of the screen
  if (changed && rec.verdict === "clear") { clearTimeout(S.alarmTimer); $("alarm-frame").hidden = true; }
  const banner = $("banner");
  banner.className = "banner " + rec.verdict; banner.dataset.id = rec.id;
  const tm = window.cpeTimings[rec.id]; if (tm && !tm.banner) tm.banner = Date.now();
  $("banner-verdict").textContent = T("verdict." + rec.verdict);
  $("banner-reason").textContent = rec.verdict === "clear" ? "" : tr("reason.", rec.reason);
  // a verdict of the risk assessment says in the banner what raised it (the risk box is below the fold at 1024x768)
  const why = rec.verdict !== "clear" && rec.reason.startsWith("risk_") && rec.risk ? rec.risk.rules || [] : [];
  $("banner-why").textContent = why.map((f) => riskWords(rec.risk, f)).join(" · "); $("banner-why").hidden = !why.length;
  $("item-id").textContent = rec.kind ? tr("kind.", rec.kind) + " #" + rec.seq : "";
  $("item-time").textContent = fmtTime(rec.decided_at);
  showIdentities(rec.identities || []);
  showRisk("risk", rec.risk);
  $("hold-badge").hidden = !rec.hold;  // a legal hold from the hub (docs/retention-and-holds.md)
  $("hold-badge").textContent = rec.hold ? T(HOLD_BADGES[rec.hold] || "hold.record") : "";
  if (S.earlyRisk === rec.id) { S.earlyRisk = null; $("early-risk").hidden = true; }
  const total = rec.latency_verdict_ms, budget = rec.budget_ms;
  $("latency").textContent = T("case.latency_of", { ms: fmtNum(total), budget: fmtNum(budget) });
  $("stages").textContent = Object.entries(rec.latencies_ms || {}).map(([k, v]) => tr("stage.", k) + " " + fmtNum(v)).join(" · ");
  const bar = $("latency-bar"); bar.style.width = Math.min(100, (100 * total) / (budget || 1)) + "%";
  bar.className = total > budget ? "over" : "";
  const dl = $("detections"); dl.innerHTML = "";
  for (const d of rec.detections || []) {
    const li = document.createElement("li"); li.textContent = tr("class.", d.label) + " " + Math.round(d.score * 100) + "%"; dl.append(li);
  }
  $("review-state").textContent = rec.review ? T("review." + rec.review.outcome) + " — " + rec.review.officer +
    (rec.review.label ? " · " + tr("class.", rec.review.label) : "") + (rec.review.note ? " · " + rec.review.note : "") : "";
  $("dicos").hidden = !(can("case.export") && (rec.scan_stored ?? !!rec.scan));
  $("case-export").hidden = !can("case.export");
  $("dicos").href = "/api/cases/" + encodeURIComponent(rec.id) + "/dicos.zip";
  const undecided = rec.verdict !== "clear";
  const open = (undecided || S.flagged === rec.id) && !rec.review;  // supervisors may override any verdict
  $("deciding").hidden = !(can("case.decide") && (open || can("case.override")));
  for (const id of ["false-alarm", "cleared"]) $(id).hidden = !open;
  // a supervisor confirms a threat over a decision made (its reason in the note): it counts as any confirmed threat
  $("confirm").hidden = !(open || (can("case.override") && rec.review && rec.review.outcome !== "threat_confirmed"));
  $("screening").hidden = !(can("case.decide") && rec.verdict === "clear" && !rec.review && S.screened !== rec.id);
  if (changed) stopHistoryViews();
  showHistory(rec, changed);
  if (changed || fresh) loadImage();
  drawBoxes();
  showLane();
  showSearchState(rec);  // search.js
}

// Who is in the lane: one row per identity with its evidence crop (touch to enlarge), its value, the
// recogniser's confidence and status (corrected, low confidence, not read: a failed read is never
// guessed), the check it passed or failed (ISO 6346, the plate's jurisdiction), a seal's state, and a
// conflicting read marked with its sentence in the row (touch screens have no hover), never hidden.
const CHECKED = ["iso6346", "jurisdiction"];  // checks worth an officer's look; others (a tag's TID) are plumbing
// what an officer looks for first: plates and codes, then the seal, then tags (the record keeps read order)
const IDENT_ORDER = ["plate", "container", "seal", "eseal", "rfid_tid", "rfid_epc", "rfid", "em4100", "badge"];
const byKind = (idents) => [...idents].sort((a, b) => IDENT_ORDER.indexOf(a.kind) - IDENT_ORDER.indexOf(b.kind));
// A tag's EPC goes in its TID's row (one tag, one row: the lane buttons stay in view on a small screen),
// unless the EPC conflicts: then it has its own row with its sentence.
function showIdentities(idents) {
  const box = $("identities"); box.replaceChildren();
  if (!idents.length) { box.textContent = "—"; return; }
  const sorted = byKind(idents), tids = new Set(sorted.filter((i) => i.kind === "rfid_tid").map((i) => i.value));
  const folded = sorted.filter((i) => i.kind === "rfid_epc" && !i.conflict && tids.has((i.checks || {}).tid));
  for (const i of sorted) {
    if (folded.includes(i)) continue;
    const epcs = i.kind === "rfid_tid" ? folded.filter((e) => e.checks.tid === i.value) : [];
    box.append(identityRow(i, epcs.map((e) => chip("epc", T("ident.epc", { epc: e.value })))));
  }
}
function identityRow(i, extra = []) {
  const row = document.createElement("li"), broken = i.seal && i.seal.state !== "intact";
  row.className = "ident" + (i.conflict ? " conflict" : "") + (broken ? " seal-broken" : "") + (!i.value ? " unread" : "");
  row.dataset.kind = i.kind; if (i.status) row.dataset.status = i.status;
  if (i.crop && S.current) row.append(cropThumb(i));
  const text = document.createElement("span"); text.className = "ident-text";
  text.textContent = T("identity." + i.kind) + " " + (i.value || T("ident_status.unread"));
  if (i.seal) text.textContent += T(i.seal.battery_low ? "seal.state_battery_low" : "seal.state", { state: T("seal." + i.seal.state) });
  row.append(text);
  const chips = [...identityChips(i), ...extra];
  if (chips.length) { const c = document.createElement("span"); c.className = "ident-chips"; c.append(...chips); row.append(c); }
  if (i.conflict) {
    const said = conflictText(i); row.title = said;
    const why = document.createElement("small"); why.className = "ident-why";
    why.textContent = "⚠ " + T("identity.conflict") + ": " + said; row.append(why);
  }
  return row;
}
// A conflict said in the screen's language from its codes and values (`conflicts`, one per sentence of `conflict`); a
// record from before the codes, or one with a code this screen does not know, shows its English sentences as they are.
const CONFLICT_LISTS = ["plates", "epcs", "lanes"];  // values naming several, joined by ", " in the record
function conflictText(i) {
  const notes = i.conflicts || [];
  if (notes.length !== i.conflict.split("; ").length || notes.some((n) => S.msgs["conflict." + n.code] === undefined)) {
    return i.conflict;  // a sentence without its code: the English sentences say them all
  }
  const said = (n) => T("conflict." + n.code, Object.fromEntries(Object.entries(n.values || {}).map(([k, v]) => [k,
    k === "jurisdiction" ? tr("check.jurisdiction.", v)
      : CONFLICT_LISTS.includes(k) ? new Intl.ListFormat(locale(), { type: "conjunction" }).format(v.split(", ")) : v])));
  return notes.map(said).join(T("conflict.join"));
}
function chip(cls, text) { const c = document.createElement("span"); c.className = "chip " + cls; c.textContent = text; return c; }
function identityChips(i) {
  const out = [];
  if (i.confidence != null && i.value) out.push(chip("conf" + (i.status === "low_confidence" ? " bad" : ""), Math.round(i.confidence * 100) + "%"));
  if (i.status && i.status !== "read" && (i.value || i.status !== "unread")) out.push(chip(i.status === "corrected" ? "warn" : "bad", T("ident_status." + i.status)));
  if (i.raw && (!i.value || i.status === "corrected")) out.push(chip("raw", T("ident.saw", { raw: i.raw })));
  for (const k of CHECKED) {
    const v = (i.checks || {})[k];
    if (v) out.push(chip(v === "ok" || k === "jurisdiction" ? "ok" : "bad", tr("check." + k + ".", v)));
  }
  return out;
}
function cropThumb(i) {
  const b = document.createElement("button"); b.type = "button"; b.className = "crop";
  const img = document.createElement("img");
  img.src = "/api/cases/" + S.current.id + "/crops/" + i.crop + ".png"; img.alt = T("ident.crop", { what: T("identity." + i.kind) });
  b.title = T("ident.enlarge"); b.append(img);
  b.onclick = () => showCrop(img.src, [T("identity." + i.kind) + " " + (i.value || T("ident_status.unread")),
                                       ...identityChips(i).map((c) => c.textContent)].join(" · "));
  return b;
}
function showCrop(src, caption) {
  $("crop-img").src = src; $("crop-caption").textContent = caption; $("crop-view").hidden = false; $("crop-close").focus();
}
$("crop-view").onclick = () => { $("crop-view").hidden = true; };
document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("crop-view").hidden = true; });

// The risk lane and, in words, what raised it: a watchlist's or rule's reason as the centre wrote it (or a
// catalogue key such as declared_empty_not_empty), no bundle, a stale one, the random draw (edge/risk.py).
function showRisk(id, risk) {
  const box = $(id); box.hidden = !risk;
  if (!risk) return;
  const lane = $(id + "-lane");
  lane.className = "risk-lane " + risk.lane;
  lane.textContent = T("risk.lane." + risk.lane) + " · " + (risk.bundle == null ? T("risk.no_bundle")
    : T(risk.stale ? "risk.bundle_stale" : "risk.bundle", { version: risk.bundle }));
  const list = $(id + "-reasons"); list.replaceChildren();
  for (const f of risk.rules || []) {
    const li = document.createElement("li"); li.className = f.lane; li.dataset.kind = f.kind;
    li.textContent = riskWords(risk, f); list.append(li);
  }
}
const riskWords = (risk, f) => (f.kind === "random" ? T("risk.reason.random", { rate: Math.round(risk.random.rate * 1000) / 10 })
  : tr("risk.reason.", f.reason));

function loadImage() {
  const rec = S.current, img = $("scan");
  $("no-image").hidden = !!rec.scan_stored || rec.scan_stored === null;
  if (rec.scan_stored === false || !rec.scan) { img.removeAttribute("src"); img.dataset.loadedId = ""; $("no-image").hidden = false; return; }
  img.dataset.loadedId = "";
  img.onerror = () => { $("no-image").hidden = false; };
  img.onload = () => { fit(); img.dataset.loadedId = rec.id; const tm = window.cpeTimings[rec.id]; if (tm && !tm.image) tm.image = Date.now(); };
  const png = "/api/cases/" + rec.id + "/image.png?mode=" + S.mode + "&lang=" + S.lang + "&t=" + Date.now();
  if (window.ImageTools) ImageTools.load(rec, img, png); else img.src = png;  // imagetools.js: views drawn on the data
}

// -- alarm ------------------------------------------------------------------------------------
function unlockAudio() {  // browsers allow sound only after a touch; any touch will do
  if (!S.audio && window.AudioContext) S.audio = new AudioContext();
  if (S.audio && S.audio.state === "suspended") S.audio.resume();
}
document.addEventListener("pointerdown", unlockAudio);
function alarm() {
  const f = $("alarm-frame"); f.hidden = false; clearTimeout(S.alarmTimer);
  S.alarmTimer = setTimeout(() => { f.hidden = true; }, 4000);
  if (!S.audio) return;
  const ctx = S.audio, now = ctx.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 880; osc.connect(gain); gain.connect(ctx.destination);
    gain.gain.setValueAtTime(0.3, now + i * 0.3); gain.gain.setValueAtTime(0, now + i * 0.3 + 0.18);
    osc.start(now + i * 0.3); osc.stop(now + i * 0.3 + 0.2);
  }
}

// -- screening tools (views, gamma, density, edges, loupe, overlay, recall: imagetools.js) -------------
const MAX_ZOOM = 16;
function setMode(m) {
  S.mode = m; for (const b of $("modes").children) b.className = b.dataset.mode === m ? "on" : "";
  if (S.side || S.flicker) loadReference();  // the reference pass in the same view
  if (window.ImageTools && ImageTools.state.data) ImageTools.render(); else if (S.current) loadImage();
}
function applyFilters() {
  $("layer").style.transform = `translate(${S.panX}px, ${S.panY}px) scale(${S.zoom})`;
  $("ref-layer").style.transform = $("layer").style.transform;  // side by side: one zoom and pan for both
}
function resetView() { S.zoom = 1; S.panX = 0; S.panY = 0; applyFilters(); }
function zoomBy(f) { S.zoom = Math.min(MAX_ZOOM, Math.max(0.5, S.zoom * f)); applyFilters(); }
$("zoom-in").onclick = () => zoomBy(1.25); $("zoom-out").onclick = () => zoomBy(0.8); $("zoom-reset").onclick = resetView;
function fit() {
  const img = $("scan"), st = $("stage");
  const h = S.side ? (st.clientHeight - 8) / 2 : st.clientHeight;  // side by side: one above the other
  for (const [im, sv] of [[img, $("overlay")], [$("ref-scan"), $("ref-overlay")]]) {
    if (!im.naturalWidth) continue;
    const k = Math.min(st.clientWidth / im.naturalWidth, h / im.naturalHeight);
    im.style.width = im.naturalWidth * k + "px"; im.style.height = im.naturalHeight * k + "px";
    sv.setAttribute("viewBox", `0 0 ${im.naturalWidth} ${im.naturalHeight}`);
    sv.style.width = im.style.width; sv.style.height = im.style.height;
  }
}
const pointers = new Map(); let pinch = null, drag = null;
$("stage").addEventListener("wheel", (e) => { e.preventDefault(); const f = e.deltaY < 0 ? 1.1 : 0.9;
  if (window.ImageTools) ImageTools.zoomAt(f, e.clientX, e.clientY); else zoomBy(f); }, { passive: false });
$("stage").addEventListener("pointerdown", (e) => {
  if (e.target.closest("button")) return;  // the zoom buttons on the image
  $("stage").setPointerCapture(e.pointerId); pointers.set(e.pointerId, e);
  if (S.drawing) { const p = toImage(e); drag = { box: [p.x, p.y, p.x, p.y] }; return; }
  if (pointers.size === 2) { const [a, b] = [...pointers.values()]; pinch = { d: dist(a, b), zoom: S.zoom }; }
  else drag = { x: e.clientX - S.panX, y: e.clientY - S.panY };
});
$("stage").addEventListener("pointermove", (e) => {
  if (!pointers.has(e.pointerId)) return; pointers.set(e.pointerId, e);
  if (pinch && pointers.size === 2) { const [a, b] = [...pointers.values()]; S.zoom = Math.min(MAX_ZOOM, Math.max(0.5, pinch.zoom * dist(a, b) / pinch.d)); applyFilters(); }
  else if (drag && drag.box) { const p = toImage(e); drag.box[2] = p.x; drag.box[3] = p.y; drawBoxes(drag.box); }
  else if (drag) { S.panX = e.clientX - drag.x; S.panY = e.clientY - drag.y; applyFilters(); }
});
$("stage").addEventListener("pointerup", (e) => {
  pointers.delete(e.pointerId); if (pointers.size < 2) pinch = null;
  if (drag && drag.box) { const [x0, y0, x1, y1] = drag.box;
    if (Math.abs(x1 - x0) > 3 && Math.abs(y1 - y0) > 3) S.boxes.push([Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map(Math.round));
    S.drawing = false; $("draw").classList.remove("on"); drawBoxes(); }
  drag = null;
});
const dist = (a, b) => Math.hypot(a.clientX - b.clientX, a.clientY - b.clientY);
// Portal scans (vehicles, containers) are drawn side-on: the server turns the image a quarter
// counter-clockwise (edge/web/render.py side_on); boxes stay in scan pixels (x = column, y = line).
const sideOn = () => ["vehicle", "container"].includes(S.current?.kind);
function toImage(e) {
  const img = $("scan"), r = img.getBoundingClientRect();
  const within = (f, n) => Math.min(n, Math.max(0, f * n));  // a box dragged past the image's edge stops at it
  const u = within((e.clientX - r.left) / r.width, img.naturalWidth), v = within((e.clientY - r.top) / r.height, img.naturalHeight);
  return sideOn() ? { x: img.naturalHeight - v, y: u } : { x: u, y: v };
}
function onScreen(b) {
  const n = $("scan").naturalHeight;
  return sideOn() ? [b[1], n - b[2], b[3], n - b[0]] : b;
}
function drawBoxes(extra) {
  const svg = $("overlay"); svg.innerHTML = "";
  const boxes = (extra ? [...S.boxes, extra] : S.boxes).map((b) => [b, "userbox"]);
  if (S.tipBox) boxes.push([S.tipBox, "tipbox"]);  // where a TIP threat was, after the answer
  for (const [box, cls] of boxes) svg.append(scanRect(box, cls));
  drawChanges();
}
function scanRect(box, cls) {  // an SVG rect over the image for a box in scan pixels [column0, line0, column1, line1]
  const b = onScreen(box), r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  r.setAttribute("x", Math.min(b[0], b[2])); r.setAttribute("y", Math.min(b[1], b[3]));
  r.setAttribute("width", Math.abs(b[2] - b[0])); r.setAttribute("height", Math.abs(b[3] - b[1]));
  r.setAttribute("class", cls); return r;
}
$("draw").onclick = () => { S.drawing = !S.drawing; $("draw").classList.toggle("on", S.drawing); };
$("clear-boxes").onclick = () => { S.boxes = []; drawBoxes(); };
$("copy-boxes").onclick = () => { S.boxes = (S.current?.detections || []).map((d) => d.box.map(Math.round)); drawBoxes(); };

// -- decisions and TIP -------------------------------------------------------------------------
// Under the decision buttons (in view on a 1024x768 monitor): a refusal in red, never in the green of "saved".
function decideMsg(text, refused = false) { const m = $("decide-msg"); m.textContent = text; m.className = refused ? "error" : "msg"; }
async function decide(outcome) {
  const rec = S.current; if (!rec || S.deciding === rec.id) return;  // a second touch while the first is answered
  const body = { outcome, note: $("note").value, boxes: S.boxes, explained: explainedChanges() };
  if (outcome === "threat_confirmed" && !$("class").value) { decideMsg(T("decide.class_needed"), true); $("class").focus(); return; }
  if (outcome === "threat_confirmed") body.label = $("class").value;
  if (outcome === "override") { body.label = $("class").value || null; if (!body.note.trim()) { decideMsg(T("error.override_needs_reason"), true); return; } }
  S.deciding = rec.id;
  try {
    const updated = await api("/api/cases/" + rec.id + "/decision", { json: body });
    decided(rec.id);  // officer.js: the draft is done with
    if (S.current?.id !== rec.id) return;  // the station's word of the decision moved this screen on already
    decideMsg(T("decide.saved"));
    S.boxes = []; $("note").value = "";
    showRecord({ ...rec, ...updated, scan_stored: rec.scan_stored }, false); loadImage(); refreshQueue();
    if ($("trail").childElementCount) openCase(rec.id);
    else if (S.viewingLive && S.waiting.length) showWaiting();
  } catch (err) { decideMsg(T(err.message), true); } finally { S.deciding = null; }
}
$("confirm").onclick = () => decide("threat_confirmed");
$("false-alarm").onclick = () => decide("false_alarm");
$("cleared").onclick = () => decide("cleared");
// A supervisor's override of a SUSPECT item (its release) asks on the screen first, its reason read back; Confirm decides.
$("override").onclick = () => {
  const rec = S.current, reason = $("note").value.trim();
  if (rec && rec.verdict === "suspect" && reason) askOverride(rec.id); else decide("override");
};
function askOverride(id) {
  S.decideAsk = id; $("decide-ask").hidden = !id; $("decide-ways").hidden = !!id;
  if (id) { $("decide-ask-q").textContent = T("decide.override_suspect_ask", { reason: $("note").value.trim() }); decideMsg(""); }
}
$("decide-ask-cancel").onclick = () => askOverride(null);
$("decide-ask-confirm").onclick = () => {
  const asked = S.decideAsk; askOverride(null);
  if (asked && S.current?.id === asked) decide("override");
};
$("note").addEventListener("input", () => { if (S.decideAsk) askOverride(null); });  // the reason read back has changed

async function screenAnswer(flagged) {
  const rec = S.current; if (!rec) return;
  const box = S.boxes.length ? S.boxes[S.boxes.length - 1] : null;
  const res = await api("/api/cases/" + rec.id + "/screen", { json: { flagged, box } });
  S.screened = rec.id;
  if (res.tip) {  // the composite stays on screen with the threat's box, until the officer moves on
    tipMessage(T(res.outcome === "hit" ? "tip.hit" : "tip.miss", { label: tr("class.", res.label) }), res.outcome);
    S.boxes = []; S.tipBox = res.box; S.tipAnswered = rec.id;
  } else if (flagged) S.flagged = rec.id;
  showRecord(rec, false);
}
$("flag").onclick = () => screenAnswer(true);
$("noflag").onclick = () => screenAnswer(false);
function tipMessage(text, outcome, picture) {  // in the side panel: never over the image
  const m = $("tip-msg"); m.replaceChildren(text); m.className = "tip-msg " + outcome; m.hidden = false;
  if (picture) m.append(picture);
  clearTimeout(S.tipTimer); S.tipTimer = setTimeout(() => { m.hidden = true; }, picture ? 20000 : 8000);
}

// -- gantry lane: the vehicle waiting at the barrier, released or sent to the search bay by the officer
const hasLane = () => (S.panels || []).includes("lane");  // a gantry's screen (edge.stations.kinds panels)
async function refreshLane() {
  if (!can("case.view") || !hasLane()) return;
  S.lane = await api("/api/lane"); showLane();
}
setInterval(() => { if (S.me && hasLane()) refreshLane().catch(() => {}); }, 3000);  // vehicles leave meanwhile
function showLane() {
  const rec = S.current, lane = S.lane, v = rec && lane ? lane.vehicles.find((x) => x.id === rec.id) : null;
  $("lane-panel").hidden = !v || !can("case.decide");
  if (!v || v.leaving || S.laneAsk?.id !== rec.id) askRelease(null);  // the question is for this vehicle, still waiting
  else askRelease(S.laneAsk.id, S.laneAsk.reason);  // in the language of the screen
  if (!v) return;
  const pos = lane.vehicles.indexOf(v);
  // decided on the panel below (a review stored) is not yet sent on: the barrier waits for Release or Search bay
  const what = v.leaving ? T("lane.leaving") : v.way ? T("lane.way." + v.way)
    : T(rec.review ? "lane.waiting_way" : "lane.waiting", { s: fmtNum(v.waiting_s) });
  $("lane-state").textContent = (pos === 0 ? T("lane.at_barrier") : Tn("lane.behind", pos)) + " · " + what + (v.problem ? " — " + v.problem : "");
  for (const id of ["lane-release", "lane-search", "lane-supervisor"]) $(id).disabled = v.leaving;
  $("lane-supervisor").hidden = !can("case.override");
}
// reason: a supervisor's release (an override) and its reason; none for the officer's own decision
async function laneDecide(way, reason = null) {
  const rec = S.current; if (!rec || S.deciding === rec.id) return;  // a second touch while the first is answered
  const body = { lane: way, note: reason ?? "" };
  if (way === "release") body.outcome = reason !== null ? "override" : (rec.verdict === "suspect" ? "false_alarm" : "cleared");
  S.deciding = rec.id;  // this screen's decision: the station's word of it is no decision "on another screen"
  try {
    const r = await api("/api/cases/" + rec.id + "/decision", { json: body });
    $("lane-msg").textContent = T("lane.result." + r.lane.outcome); if (reason !== null) $("lane-reason").value = ""; refreshQueue();
    if (!r.review) S.sentOn.add(rec.id);  // the search bay: its outcome comes with the search report
    if (S.current?.id === rec.id) {
      if (r.review) { decided(rec.id); showRecord({ ...S.current, review: r.review }, false); }
      if (S.viewingLive && S.waiting.length && !busy()) showWaiting();  // the next vehicle, as after any decision
    }
  } catch (err) { $("lane-msg").textContent = T(err.message); } finally { S.deciding = null; }
  await refreshLane();
}
// A suspect vehicle is released in two touches, by the officer (a false alarm) and by a supervisor (an override with
// its reason, read back in the question): Release asks on the screen, Confirm releases it (a touch too many on
// Release, right under the SUSPECT banner, lands on the question, never on Confirm).
function askRelease(id, reason = null) {
  S.laneAsk = id ? { id, reason } : null; $("lane-ask").hidden = !id;
  $("lane-ways").hidden = !!id; $("lane-super").hidden = !!id || !can("case.override");  // an officer has no such row
  if (!id) return;
  $("lane-ask-q").textContent = reason !== null ? T("lane.supervisor_release_ask", { reason }) : T("lane.release_suspect_ask");
  $("lane-msg").textContent = "";  // a refusal before it (no reason) is answered
}
$("lane-release").onclick = () => (S.current?.verdict === "suspect" ? askRelease(S.current.id) : laneDecide("release"));
$("lane-ask-cancel").onclick = () => askRelease(null);
$("lane-ask-confirm").onclick = () => {
  const asked = S.laneAsk; askRelease(null);
  if (asked && S.current?.id === asked.id) laneDecide("release", asked.reason);
};
$("lane-search").onclick = () => laneDecide("search_bay");
$("lane-supervisor").onclick = () => {
  const reason = $("lane-reason").value.trim();
  if (!reason) { $("lane-msg").textContent = T("error.override_needs_reason"); return; }
  if (S.current?.verdict === "suspect") askRelease(S.current.id, reason); else laneDecide("release", reason);
};

// -- lists -------------------------------------------------------------------------------------
function row(cells, onclick, cls) {
  const tr_ = document.createElement("tr"); if (cls) tr_.className = cls;
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr_.append(td); }
  if (onclick) tr_.onclick = onclick; return tr_;
}
const idents = (r) => byKind(r.identities || []).map((i) => i.value).filter(Boolean).join(", ");
async function refreshQueue() {  // called on every event, never awaited: a refusal (signed out meanwhile) is no error
  if (!can("case.view")) return;
  let got;
  try { got = await api("/api/queue"); } catch { return; }
  const { items, total } = got;
  $("queue-count").textContent = S.queueTotal = total ?? items.length; showUndecided();
  const body = $("queue-rows"); body.innerHTML = "";
  for (const r of items) body.append(row([fmtTime(r.decided_at), T("verdict." + r.verdict), tr("reason.", r.reason), idents(r)], () => openCase(r.id), r.verdict));
  pager("queue", items, total);  // officer.js: the next page
}
async function refreshHistory() {
  const p = new URLSearchParams({ q: $("h-text").value });
  if ($("h-verdict").value) p.set("verdict", $("h-verdict").value);
  if ($("h-reviewed").value) p.set("reviewed", $("h-reviewed").value);
  if ($("h-since").value) p.set("since", new Date($("h-since").value + "T00:00:00").toISOString());
  if ($("h-until").value) p.set("until", new Date($("h-until").value + "T23:59:59.999").toISOString());
  const { items, page_size } = await api("/api/history?" + p);
  const body = $("history-rows"); body.innerHTML = "";
  for (const r of items) body.append(historyRow(r));
  pager("history", items, null, p, page_size);  // officer.js: older pages
}
const historyRow = (r) => row([fmtTime(r.decided_at), T("verdict." + r.verdict), tr("reason.", r.reason), idents(r),
  r.review ? T("review." + r.review.outcome) + " · " + r.review.officer : "—"], () => openCase(r.id), r.verdict);
$("history-form").onsubmit = (e) => { e.preventDefault(); refreshHistory(); };
async function openCase(id) {
  const rec = await api("/api/cases/" + id);
  if (!S.caseOpen && S.current)  // the Live view's item, as the officer left it: back on the return to Live
    S.liveItem = { rec: S.current, view: { zoom: S.zoom, panX: S.panX, panY: S.panY }, draft: draft() };
  S.caseOpen = true;
  show("case"); showRecord(rec, false); loadImage();
  const ol = $("trail"); ol.innerHTML = "";
  for (const a of rec.audit) { const li = document.createElement("li"); li.className = "audit-entry";
    li.textContent = `#${a.seq} ${fmtTime(a.at)} ${tr("audit.actor.", a.actor)} ${tr("audit.action.", a.action)}`; ol.append(li); }
}
async function refreshTip() {
  const data = await api("/api/tip/stats");
  $("tip-state").textContent = data.active ? T("tip.active", { rate: fmtNum(data.rate * 100) }) : T("tip.inactive");
  const body = $("tip-rows"); body.innerHTML = "";
  for (const o of data.officers) body.append(row([o.officer, o.projected, o.hits, o.misses, o.false_alarms,
    o.hit_rate === null ? "—" : fmtNum(o.hit_rate * 100) + "%"]));
}
function kv(pairs) {
  const dl = document.createElement("dl");
  for (const [k, v] of pairs) { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; dl.append(dt, dd); }
  return dl;
}
async function refreshHealth() {
  const h = await api("/api/health"); const box = $("health-body"); box.innerHTML = "";
  const devices = Object.entries(h.devices || {}).map(([n, d]) => [n, tr("state.", d.state) + (d.detail ? " — " + d.detail : "")]);
  box.append(kv([[T("health.station"), `${h.station} (${tr("station_kind.", h.station_kind)}, ${h.lane})`], ...devices,
    [T("health.model"), h.model ? [h.model.name, h.model.version, h.model.state ? tr("state.", h.model.state) : ""].filter(Boolean).join(" ") : "—"],
    [T("health.sync_backlog"), syncWords(h.sync)],
    [T("health.budget_misses"), fmtNum(h.budget_misses || 0)],
    [T("health.queue"), fmtNum(h.queue)], [T("health.tip"), T(h.tip_active ? "health.on" : "health.off")],
    [T("health.material_colour"), T(h.material_colour ? "health.on" : "health.off")],
    [T("health.software"), h.version || "—"]]));
  const h3 = document.createElement("h3"); h3.textContent = T("health.last_errors"); box.append(h3);
  const ul = document.createElement("ul");
  for (const [code, msg] of h.alarms || []) {  // a known code in the reader's language; the daemon's sentence otherwise
    const li = document.createElement("li"); li.title = msg;
    li.textContent = S.msgs["alarm." + code] !== undefined ? T("alarm." + code) : msg; ul.append(li);
  }
  if (!(h.alarms || []).length) { const li = document.createElement("li"); li.textContent = T("health.no_errors"); ul.append(li); }
  box.append(ul);
  showBelt(h.belt);
  showLaneHealth(h.vehicle_lane);
}
// A gantry lane held (full, the first vehicle waiting for an officer) is not "Working": it says so.
function showLaneHealth(lane) {
  $("lane-health").hidden = !lane;
  showLaneConfirm("lane-confirm", lane);
  if (!lane) return;
  $("lane-health").dataset.state = lane.state;
  $("lane-health").textContent = laneWords(lane);
}
// A lane held because its file could not be read, or because a vehicle may have left it undecided behind a released
// one (`missing`): a supervisor (or technician) who checked it says it holds no vehicle but those the station lists,
// or all but the missing ones, which left undecided; it flows again (the daemon audits it).
function showLaneConfirm(id, lane) {
  const b = $(id), gone = $(id + "-gone");
  b.hidden = !(lane && lane.unknown && can("lane.confirm"));
  const missing = b.hidden ? [] : (lane.missing || []).filter((m) => lane.vehicles.some((v) => v.id === m));
  gone.hidden = !missing.length;
  if (b.hidden) return;
  b.textContent = lane.vehicles.length ? T("lane.confirm_button", { n: lane.vehicles.length })
    : T("lane.confirm_button_empty");
  b.dataset.vehicles = JSON.stringify(lane.vehicles.map((v) => v.id));  // what the supervisor confirms
  const left = lane.vehicles.filter((v) => !missing.includes(v.id)).map((v) => v.id);
  gone.textContent = T("lane.confirm_gone_button", { gone: Tn("lane.gone", missing.length),
    holds: left.length ? Tn("lane.gone_holds", left.length) : T("lane.gone_holds_none") });
  gone.dataset.vehicles = JSON.stringify(left);
}
async function confirmLane(id, button = id) {
  const b = $(button), msg = $(id + "-msg"); b.disabled = true; msg.textContent = "";
  try {
    const r = await api("/api/lane/confirm", { json: { vehicles: JSON.parse(b.dataset.vehicles || "[]") } });
    S.lane = r.lane; msg.className = "msg"; msg.textContent = T("lane.confirmed");
  } catch (err) { msg.className = "error"; msg.textContent = T(err.message); }
  finally { b.disabled = false; }
  await Promise.all([refreshLane().catch(() => {}), $("view-health").hidden ? null : refreshHealth().catch(() => {})]);
  showStopped();
}
$("lane-confirm").onclick = () => confirmLane("lane-confirm");
$("lane-confirm-live").onclick = () => confirmLane("lane-confirm-live");
$("lane-confirm-gone").onclick = () => confirmLane("lane-confirm", "lane-confirm-gone");
$("lane-confirm-live-gone").onclick = () => confirmLane("lane-confirm-live", "lane-confirm-live-gone");
function laneWords(lane) {  // "Vehicle lane: HELD: 1 vehicle waiting for an officer (oldest 40 s); ..."
  const oldest = lane.oldest_s >= 90 ? T("lane.minutes", { n: fmtNum(Math.round(lane.oldest_s / 60)) }) : T("lane.seconds", { n: fmtNum(Math.round(lane.oldest_s)) });
  if (lane.unknown) {  // its file unreadable, or a vehicle may have left undecided: held, whatever it counts
    return T("health.lane") + ": " + T(lane.held_for === "exit_tailgate" ? "lane.state.exit_tailgate" : "lane.state.unknown");
  }
  return T("health.lane") + ": " + Tn("lane.state." + lane.state, lane.waiting_for_officer, { oldest, taken: lane.vehicles.length, capacity: lane.capacity });
}
// A conveyor belt latched stopped says why; a supervisor may ask for it to run again (the daemon checks).
function showBelt(belt) {
  $("belt").hidden = !belt;
  if (!belt) return;
  $("belt").dataset.latched = belt.latched ? "1" : "0";
  $("belt-state").textContent = T("health.belt") + ": " + (belt.latched
    ? T("belt.latched", { reason: tr("belt.reason.", belt.reason) }) : T(belt.running ? "belt.running" : "belt.stopped"));
  $("belt-restart").hidden = !(belt.latched && can("belt.restart"));
}
setInterval(() => { if (S.me && !$("view-health").hidden) refreshHealth().catch(() => {}); }, 5000);  // a belt may latch meanwhile
$("belt-restart").onclick = async () => {
  const b = $("belt-restart"); b.disabled = true; $("belt-msg").textContent = "";
  try {
    await api("/api/belt/restart", { method: "POST" });
    await refreshHealth(); $("belt-msg").className = "msg"; $("belt-msg").textContent = T("belt.restarted");
  } catch (err) { $("belt-msg").className = "error"; $("belt-msg").textContent = T(err.message); }
  finally { b.disabled = false; }
};
function syncWords(sync) {  // the outbox and hub link in a sentence, whatever the publisher reports
  if (!sync) return T("sync.off");
  const parts = [];
  if ("connected" in sync) parts.push(T(sync.connected ? "sync.connected" : "sync.disconnected"));
  const backlog = sync.backlog;
  if (typeof backlog === "number") parts.push(T("sync.backlog") + " " + fmtNum(backlog));
  else if (backlog) for (const [lane, v] of Object.entries(backlog)) parts.push(tr("sync.", lane) + " " + fmtNum(typeof v === "number" ? v : v.rows || 0));
  if (typeof sync.last_ack_age_s === "number") parts.push(T("sync.last_ack", { s: fmtNum(sync.last_ack_age_s) }));
  if (sync.last_error) parts.push(String(sync.last_error));
  return parts.join(" · ") || "—";
}
async function refreshDiag() {
  const d = await api("/api/diagnostics"); const box = $("diag-body"); box.innerHTML = "";
  box.append(kv([[T("diag.schema"), d.schema_version], [T("diag.records"), fmtNum(d.records)],
    [T("diag.outbox"), JSON.stringify(d.outbox_backlog)], [T("diag.counters"), JSON.stringify(d.counters)],
    [T("diag.audit_chain"), d.audit_chain.ok ? T("audit.ok") : T("audit.broken", { seq: d.audit_chain.first_broken_seq })],
    [T("diag.subscribers"), d.event_subscribers], [T("diag.tip_library"), d.tip_library.join(", ") || "—"],
    [T("diag.db"), d.db_path]]));
}
async function refreshAudit() {
  const { entries } = await api("/api/audit"); const body = $("audit-rows"); body.innerHTML = "";
  for (const a of entries) body.append(row([a.seq, fmtTime(a.at), tr("audit.actor.", a.actor), tr("audit.action.", a.action), tr("audit.object.", a.object)]));
}
$("audit-verify").onclick = async () => {
  const v = await api("/api/audit/verify");
  $("audit-result").textContent = v.ok ? T("audit.ok") : T("audit.broken", { seq: v.first_broken_seq });
};

// -- formatting --------------------------------------------------------------------------------
const locale = () => (S.lang === "zh-Hant" ? "zh-HK" : S.lang === "zh-Hans" ? "zh-CN" : "en-GB");
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(locale(), { dateStyle: "short", timeStyle: "medium" }) : "");
const fmtNum = (n) => Number(n).toLocaleString(locale(), { maximumFractionDigits: 1 });

// -- start -------------------------------------------------------------------------------------
(async function start() {
  keypad();
  const sentIn = session;  // an officer who signs in (or out) while the screen starts decides, not the check below
  await loadLang(new URLSearchParams(location.search).get("lang") || localStorage.getItem("lang") || "default");
  let me = null;
  try { me = await api("/api/me"); } catch { /* no session: the sign-in form */ }
  if (sentIn === session) { try { if (!me) throw new Error("error.not_signed_in"); await signedIn(me); } catch { signedOut(); } }
  document.body.dataset.ready = "1";
})();

// -- a vehicle's history (issue 19): current and reference side by side (one zoom and pan), flicker, changes -----
// The comparison is the officer's aid only (edge/history.py): it never changes the verdict; a change the
// officer marks explained is stored with the review.
function showHistory(rec, changed) {
  const h = rec.history, box = $("history");
  box.hidden = !h;
  if (!h) return;
  // same_type_empty: another container of its size/type travelling empty; only the container part is compared.
  // Two references: each change was seen against both (models.history.compare.Corroboration); the newest is shown.
  const compared = h.basis === "same_type_empty" ? "history.compared_type"
    : (h.reference_ids || []).length > 1 ? "history.compared_two" : "history.compared";
  $("history-state").textContent = h.status === "compared" ? Tn(compared, h.regions.length) : T("history." + h.status);
  const why = h.status === "compared" ? "" : historyWhy(h);
  $("history-why").textContent = why; $("history-why").hidden = !why;
  $("history-tools").hidden = !h.reference_scan || h.status !== "compared";
  // a cab the portal kept its beam off in one of the passes was compared with nothing: never read as "no change"
  $("history-uncompared").hidden = h.status !== "compared" || !(h.uncompared || []).length;
  $("history-uncompared").textContent = T("history.not_compared");
  const list = $("changes"), keep = changed ? new Set((rec.review?.explained) || []) : new Set(explainedChanges());
  list.replaceChildren();
  (h.regions || []).forEach((r, i) => {
    const li = document.createElement("li"), label = document.createElement("label"), cb = document.createElement("input");
    cb.type = "checkbox"; cb.dataset.change = i; cb.checked = keep.has(i); cb.onchange = drawChanges;
    cb.disabled = !can("case.decide");
    label.append(cb, T("history.change", { kind: T("history." + r.kind), where: tr("location.", r.location),
      kg: fmtNum(Math.abs(r.mass_kg_fe)) }) + (r.confidence ? " · " + T("history.change_likely", { p: Math.round(r.confidence * 100) }) : ""));
    li.append(label); list.append(li);
  });
}
// Why a pass was not compared, said from its code and values (edge/history.py, HistoryCode); a record from before the
// codes, or with a code this screen does not know, shows its status alone (its English `detail` is for the log).
const HISTORY_NUMBERS = ["passes", "reference_px", "scan_px", "budget_ms"];  // the scanner's values stay as written (0.05 mm)
function historyWhy(h) {
  if (!h.code || S.msgs["history.why." + h.code] === undefined) return "";
  return T("history.why." + h.code, Object.fromEntries(Object.entries(h.values || {}).map(([k, v]) => [k,
    k === "kind" ? tr("identity.", v) : k === "what" ? tr("history.scanner.", v) : HISTORY_NUMBERS.includes(k) ? fmtNum(v) : v])));
}
function explainedChanges() { return [...document.querySelectorAll("#changes input:checked")].map((c) => Number(c.dataset.change)); }
function drawChanges() {
  const h = S.current?.history; if (!h || !S.changes) return;
  const done = new Set(explainedChanges());
  for (const svg of [$("overlay"), $("ref-overlay")]) {
    svg.querySelectorAll(".change, .uncompared").forEach((e) => e.remove());
    // shaded where nothing was compared (the beam off there in one of the passes), under the changes
    (h.uncompared || []).forEach((u) => svg.append(scanRect(u, "uncompared")));
    h.regions.forEach((c, i) => svg.append(scanRect(c.box, "change " + c.kind + (done.has(i) ? " explained" : ""))));
  }
}
function historyUrl(which) { return "/api/cases/" + S.current.id + "/" + which + ".png?mode=" + S.mode + "&lang=" + S.lang; }
function loadReference() {
  const img = $("ref-scan");
  img.onload = () => { fit(); img.dataset.loadedId = S.current.id; };
  img.onerror = () => { $("history-state").textContent = T("error.reference_not_held"); };
  img.src = historyUrl("reference") + "&t=" + Date.now();
}
function stopHistoryViews() {
  S.side = false; S.changes = false; clearInterval(S.flicker); S.flicker = null;
  $("ref-pane").hidden = true; $("stage").classList.remove("side", "flicker"); $("ref-scan").dataset.loadedId = "";
  for (const id of ["hist-side", "hist-flicker", "hist-overlay"]) $(id).classList.remove("on");
  $("scan").dataset.showing = "current";
}
$("hist-side").onclick = () => {
  const on = !S.side; stopFlicker(); S.side = on; $("hist-side").classList.toggle("on", on);
  $("ref-pane").hidden = !on; $("stage").classList.toggle("side", on);
  if (on) loadReference(); else fit();
};
function stopFlicker() {
  if (!S.flicker) return;
  clearInterval(S.flicker); S.flicker = null; $("hist-flicker").classList.remove("on");
  $("stage").classList.remove("flicker"); $("ref-pane").hidden = true; $("scan").dataset.showing = "current";
}
$("hist-flicker").onclick = () => {
  if (S.flicker) { stopFlicker(); return; }
  if (S.side) $("hist-side").onclick();
  if ($("ref-scan").dataset.loadedId !== S.current.id) loadReference();
  $("stage").classList.add("flicker"); $("hist-flicker").classList.add("on");
  S.flicker = setInterval(() => {  // the reference over the current scan, twice a second: what changed blinks
    const ref = $("scan").dataset.showing !== "reference";
    $("scan").dataset.showing = ref ? "reference" : "current"; $("ref-pane").hidden = !ref;
  }, 500);
};
$("hist-overlay").onclick = () => {
  S.changes = !S.changes; $("hist-overlay").classList.toggle("on", S.changes);
  if (S.changes) drawChanges(); else for (const svg of [$("overlay"), $("ref-overlay")]) svg.querySelectorAll(".change, .uncompared").forEach((e) => e.remove());
};
