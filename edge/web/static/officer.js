// The officer's day on the station screen (issue 21), beside app.js whose state (S) and helpers it uses:
// TIP dwell and misses, alarms off the Live view, the belt on the Live view, work kept across a reload,
// decisions made in another tab, list paging, keyboard shortcuts and their help.
"use strict";

// -- TIP: a projection counts only when its image was watched ----------------------------------------
// The screen tells the station when an item's image has been on the Live view, page visible, for the
// dwell (the station checks it drew the image that long ago); moving on from an item is told too: a
// projection watched and not answered is then a miss, shown with where the threat was.
const DWELL_TICK_MS = 250;
S.dwell = { id: null, ms: 0, sent: false };
S.dwellS = 3;
async function tipSettings() { try { S.dwellS = (await api("/api/tip/stats")).dwell_s ?? S.dwellS; } catch { /* defaults */ } }
setInterval(() => {
  const rec = S.current;
  if (!rec || !S.me) return;
  if (S.dwell.id !== rec.id) S.dwell = { id: rec.id, ms: 0, sent: false };
  const watched = S.viewingLive && document.visibilityState === "visible" && $("scan").dataset.loadedId === rec.id;
  if (!watched || S.dwell.sent || rec.verdict !== "clear" || rec.review) return;
  S.dwell.ms += DWELL_TICK_MS;
  if (S.dwell.ms >= S.dwellS * 1000 + DWELL_TICK_MS) {
    S.dwell.sent = true;
    api("/api/cases/" + encodeURIComponent(rec.id) + "/seen", { method: "POST" }).catch(() => {});
  }
}, DWELL_TICK_MS);

// The image as it was on screen, small, kept to show where a missed threat was once the officer moved on:
// image tools' canvas when it draws the scan (the <img> under it is then a transparent placeholder), else the PNG.
function snapshot(rec) {
  const img = $("scan"), drawn = $("layer").classList.contains("data") ? $("scan-canvas") : null;
  if (img.dataset.loadedId !== rec.id || !img.naturalWidth) return null;
  const k = Math.min(1, 360 / img.naturalWidth), c = document.createElement("canvas");
  c.width = Math.round(img.naturalWidth * k); c.height = Math.round(img.naturalHeight * k);
  c.getContext("2d").drawImage(drawn && drawn.width ? drawn : img, 0, 0, c.width, c.height);
  return { canvas: c, k, natH: img.naturalHeight, sideOn: ["vehicle", "container"].includes(rec.kind) };
}
function leaving(prev) {
  if (prev.verdict !== "clear" || prev.review || S.tipAnswered === prev.id || !can("case.view")) return;
  const pic = snapshot(prev);
  api("/api/cases/" + encodeURIComponent(prev.id) + "/left", { method: "POST" }).then((res) => {
    if (!res || !res.tip) return;
    let picture = null;
    if (pic) {
      const b = pic.sideOn ? [res.box[1], pic.natH - res.box[2], res.box[3], pic.natH - res.box[0]] : res.box;
      const g = pic.canvas.getContext("2d"); g.strokeStyle = "#ff1744"; g.lineWidth = 3;
      g.strokeRect(Math.min(b[0], b[2]) * pic.k, Math.min(b[1], b[3]) * pic.k, Math.abs(b[2] - b[0]) * pic.k, Math.abs(b[3] - b[1]) * pic.k);
      picture = pic.canvas; picture.className = "tip-where"; picture.id = "tip-where";
    }
    tipMessage(T("tip.missed_previous", { label: tr("class.", res.label) }), "miss", picture);
  }).catch(() => {});
}

// -- alarms off the Live view ---------------------------------------------------------------------------
function alarmToast(rec) {
  const t = $("alarm-toast");
  t.textContent = T("alarm.toast", { verdict: T("verdict." + rec.verdict), n: fmtNum(S.waiting.length + 1) });
  t.hidden = false; clearTimeout(S.toastTimer); S.toastTimer = setTimeout(() => { t.hidden = true; }, 10000);
}
$("alarm-toast").onclick = () => { $("alarm-toast").hidden = true; show("live"); };

// -- the belt and the lane on the Live view: stopped, held (latched, with its reason), what was on it ---
async function refreshBelt() {
  if (!S.me || !can("case.view")) return;
  if (!S.noBelt) {
    try { S.belt = await api("/api/belt"); } catch { return; }
    if (!S.belt.present) { S.noBelt = true; S.belt = null; }
  }
  showStopped();
}
setInterval(refreshBelt, 3000);  // a gantry's lane comes every 3 s too (app.js refreshLane) and by its events
function showStopped() {
  const b = S.belt, belt = !!b && (b.latched || !b.running);
  const lane = hasLane() && S.lane && S.lane.state === "held" ? S.lane : null;
  const box = $("belt-live");
  box.hidden = !belt && !lane;
  if (!S.current) $("banner-verdict").textContent = T(belt ? "live.belt_stopped"
    : lane ? (!lane.unknown ? "live.lane_held" : lane.held_for === "exit_tailgate" ? "live.exit_tailgate"
      : "live.lane_unknown") : "live.waiting");
  showLaneConfirm("lane-confirm-live", belt ? null : lane);
  if (box.hidden) return;
  $("belt-live-state").textContent = !belt ? laneWords(lane)
    : b.latched ? T("belt.latched", { reason: tr("belt.reason.", b.reason) }) : T("belt.stopped");
  const list = $("belt-live-items"); list.replaceChildren();
  const stranded = belt ? b.stranded || [] : [];
  $("belt-live-title").hidden = !stranded.length;
  for (const r of stranded) {
    const li = document.createElement("li"), btn = document.createElement("button");
    btn.type = "button"; btn.dataset.id = r.id;
    btn.textContent = r.pending ? T("belt.item_pending", { id: r.id })
      : [r.kind ? tr("kind.", r.kind) + " #" + r.seq : r.id, T("verdict." + r.verdict), idents(r)].filter(Boolean).join(" · ");
    if (!r.pending) btn.onclick = () => openCase(r.id);
    li.append(btn); list.append(li);
  }
}

// -- work kept across a reload; decisions made in another tab ------------------------------------------
const ITEM_KEY = "cpe-item", draftKey = (id) => "cpe-draft-" + id;
function draft() { return { note: $("note").value, boxes: S.boxes, cls: $("class").value, explained: explainedChanges() }; }
// The last item dealt with: the stream sends again what came after it (the items still waiting, and newer).
const handledSeq = () => (S.waiting.length ? Math.min(...S.waiting.map((r) => r.seq)) - 1 : S.lastSeq);
function keepWork() {  // the item on screen (its zoom and pan), the last item dealt with and the unfinished decision, for this tab only
  if (!S.me) return;
  // the Live view's item (kept aside while a case is open) and its zoom and pan
  const live = S.liveItem, view = live ? live.view : S.current ? { zoom: S.zoom, panX: S.panX, panY: S.panY } : null;
  const id = (live ? live.rec : S.current)?.id;
  sessionStorage.setItem(ITEM_KEY, JSON.stringify({ badge: S.me.badge, id, live: S.viewingLive, seq: handledSeq(), view,
    heard: [...S.heard] }));
  if (!S.current) return;
  const d = draft();
  if (!S.current.review && (d.note || d.boxes.length || d.cls || d.explained.length)) {
    sessionStorage.setItem(draftKey(S.current.id), JSON.stringify(d));
  }
}
setInterval(keepWork, 500);
addEventListener("pagehide", keepWork);  // a reload or a closed tab keeps what was typed since the last half second
// The held item first, then the live stream from the last item this tab was sent: the items that waited
// behind the held one come again and wait again (a new stream would send only what arrives from now on).
async function resumeWork() {
  tipSettings(); refreshBelt();
  const saved = JSON.parse(sessionStorage.getItem(ITEM_KEY) || "null");
  if (!saved || saved.badge !== S.me.badge) { sessionStorage.clear(); connectLive(); return; }
  if (Array.isArray(saved.heard)) S.heard = new Set(saved.heard);  // the alarms already sounded for what comes again
  try { if (saved.id) await resumeItem(saved.id, saved.view); } finally { connectLive(saved.seq); }
}
async function resumeItem(id, view) {
  let rec;
  try { rec = await api("/api/cases/" + encodeURIComponent(id)); } catch { return; }
  if (S.current) return;  // opened meanwhile
  showRecord(rec, false); loadImage();
  const num = (v, lo, hi) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : null);
  if (view && num(view.zoom, 0.5, MAX_ZOOM) !== null) {  // zoomed where the officer was looking (a new item starts at 1)
    S.zoom = num(view.zoom, 0.5, MAX_ZOOM); S.panX = num(view.panX, -1e5, 1e5) ?? 0; S.panY = num(view.panY, -1e5, 1e5) ?? 0;
    applyFilters();
  }
  const d = JSON.parse(sessionStorage.getItem(draftKey(rec.id)) || "null");
  if (d && !rec.review) {
    $("note").value = d.note || ""; S.boxes = d.boxes || [];
    if (d.cls && [...$("class").options].some((o) => o.value === d.cls)) $("class").value = d.cls;
    for (const cb of document.querySelectorAll("#changes input")) cb.checked = (d.explained || []).includes(Number(cb.dataset.change));
    drawBoxes();
  }
}
function decided(id) { sessionStorage.removeItem(draftKey(id)); }
// Another tab (or officer) decided an item: this one shows the decision and moves on from it.
function reviewed(ev) {
  decided(ev.id);
  S.waiting = S.waiting.filter((r) => r.id !== ev.id); showQueued();
  if (S.liveItem?.rec.id === ev.id) S.liveItem.rec = { ...S.liveItem.rec, review: ev.review };  // back on Live decided
  if (!S.current || S.current.id !== ev.id || S.current.review) return;
  showRecord({ ...S.current, review: ev.review }, false);
  if (S.deciding !== ev.id) decideMsg(T("decide.decided_elsewhere", { officer: ev.review.officer }));
  if (S.viewingLive && S.waiting.length && !busy()) showWaiting();
}

// -- paging: the queue beyond its first 100, the history beyond its first page --------------------------
function pager(kind, items, total, params, pageSize) {  // pageSize: the station's, for the history
  const more = $(kind + "-more"), shown = $(kind + "-rows").childElementCount;
  const left = kind === "queue" ? (total || 0) - shown : null;
  more.hidden = kind === "queue" ? left <= 0 : !items.length || items.length < pageSize;  // a short page is the last
  if (kind === "queue") more.textContent = T("list.more_n", { n: fmtNum(Math.max(left, 0)) });
  more.onclick = async () => {
    const last = items[items.length - 1];
    if (kind === "queue") {
      const page = await api("/api/queue?after_seq=" + last.seq);
      for (const r of page.items) $("queue-rows").append(row([fmtTime(r.decided_at), T("verdict." + r.verdict), tr("reason.", r.reason), idents(r)], () => openCase(r.id), r.verdict));
      pager("queue", page.items.length ? page.items : items, page.total);
    } else {
      const p = new URLSearchParams(params); p.set("before_seq", last.seq);
      const page = await api("/api/history?" + p);
      for (const r of page.items) $("history-rows").append(historyRow(r));
      if (page.items.length) pager("history", page.items, null, params, page.page_size); else more.hidden = true;
    }
  };
}

// -- keyboard shortcuts (each also a button on screen) and their help ("?") ----------------------------
// Other modules add theirs to window.cpeShortcuts ({ key, label: message key, run: () => void }).
window.cpeShortcuts = [
  { key: "c", label: "decide.confirm", button: "confirm" },
  { key: "a", label: "decide.false_alarm", button: "false-alarm" },
  { key: "x", label: "decide.cleared", button: "cleared" },
  { key: "f", label: "screen.flag", button: "flag" },
  { key: "p", label: "screen.no_threat", button: "noflag" },
  { key: "n", label: "keys.next", button: "next-item" },
  { key: "?", label: "keys.help", run: () => toggleHelp() },
  ...(window.cpeShortcuts || []),
];
function toggleHelp(open) {
  const h = $("help"), show_ = open ?? h.hidden;
  h.hidden = !show_;
  if (!show_) return;
  const dl = $("help-keys"); dl.replaceChildren();
  for (const s of window.cpeShortcuts) {
    const dt = document.createElement("dt"), kbd = document.createElement("kbd"), dd = document.createElement("dd");
    kbd.textContent = s.key === " " ? "Space" : s.key.toUpperCase(); dt.append(kbd);
    dd.textContent = S.msgs[s.label] !== undefined ? T(s.label) : s.label; dl.append(dt, dd);
  }
  $("help-close").focus();
}
$("help-open").onclick = () => toggleHelp();
$("help-close").onclick = () => toggleHelp(false);
document.addEventListener("keydown", (e) => {
  if (!S.me || e.ctrlKey || e.altKey || e.metaKey || e.defaultPrevented) return;
  if (e.key === "Escape") { $("help").hidden = true; return; }
  if (e.target.closest && e.target.closest("input, textarea, select, [contenteditable]")) return;
  const s = window.cpeShortcuts.find((x) => x.key === e.key.toLowerCase() || x.key === e.key);
  if (!s) return;
  if (s.run) { e.preventDefault(); s.run(); return; }
  const b = $(s.button);
  if (b && !b.hidden && !b.disabled && b.offsetParent !== null) { e.preventDefault(); b.click(); }
});
