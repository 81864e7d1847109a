"use strict";
// Retention and legal holds (docs/retention-and-holds.md): the policy (admins), holds placed and released with a
// reason (supervisors), seizures released, the hub's and the stations' disk figures; and on every alert the
// "Export case" button (a signed case bundle, docs/case-bundles.md) and "Hold". Uses app.js's helpers.

const retCan = (p) => S.me && S.me.can.includes(p);
const retMsg = (node, text, bad) => { node.textContent = text; node.classList.toggle("error", !!bad); };
const fmtBytes = (n) => (n === null || n === undefined ? "-" : fmtNum(Math.round(n / 1048576)) + " MiB");
const perVerdict = (m) => Object.entries(m || {}).map(([v, n]) => `${tc("verdict", v)} ${fmtNum(n)}`).join(", ") || "-";
const keptText = (m) => Object.entries(m || {}).map(([why, n]) => `${tc("kept", why)} ${fmtNum(n)}`).join(", ") || "-";
const daysText = (d) => (d === null || d === undefined ? t("retention.keep") : t("retention.days", { days: fmtNum(d) }));

async function loadRetention() {  // #retention[data-loaded] once the page shows the current state
  delete $("#retention").dataset.loaded;
  const [r, holds] = await Promise.all([api("/cr/api/retention"), api("/cr/api/holds")]);
  renderHolds(holds);
  const p = r.hub.policy;
  $("#retention-policy-now").textContent = p ? t("retention.policy_now", {
    clear: daysText(p.clear_days), suspect: daysText(p.suspect_days), manual: daysText(p.manual_days),
    version: r.published_version ?? "-" }) : t("retention.no_policy");
  const refused = $("#retention-state-refused");  // the newest state over its limits: stations keep an older one
  refused.hidden = !r.state_refused;
  refused.textContent = r.state_refused ? t("retention.state_refused", { version: r.state_refused.kept_version ?? "-" }) : "";
  const f = $("#retention-policy-form");
  if (p) for (const k of ["clear_days", "suspect_days", "manual_days"]) f[k].value = p[k] ?? "";
  const h = r.hub;
  table($("#retention-hub"), ["records", "oldest", "scans", "scan_bytes", "db_bytes", "next_prune", "kept", "holds"].map((c) => t("retention.col." + c)),
    [[perVerdict(h.records), fmtTime(h.oldest), fmtNum(h.scans), fmtBytes(h.scan_bytes), fmtBytes(h.db_bytes),
      fmtNum(h.next_prune.records), keptText(h.next_prune.kept), fmtNum(h.holds)]]);
  table($("#retention-stations"), ["station", "version", "data_bytes", "free_bytes", "oldest", "records", "next_prune", "kept"].map((c) => t("retention.col." + c)),
    r.stations.map((s) => { const g = s.storage || {};
      return [s.station, s.retention_version ?? t("retention.keeps_all"), fmtBytes(g.data_bytes), fmtBytes(g.free_bytes),
              g.oldest ? fmtIso(g.oldest) : "-", perVerdict(g.records), fmtNum(g.next_prune), keptText(g.kept)]; }));
  $("#retention").dataset.loaded = "1";
}

function renderHolds(holds) {
  const node = $("#hold-table");
  table(node, ["kind", "value", "reason", "placed_by", "placed_at", ""].map((c) => (c ? t("hold.col." + c) : "")),
    holds.map((h) => [tc("hold.kind", h.kind), h.value, h.reason, h.placed_by, fmtTime(h.placed_at), ""]));
  [...node.querySelectorAll("tr")].slice(1).forEach((tr, i) => {
    tr.dataset.hold = holds[i].id; tr.dataset.value = holds[i].value;
    if (retCan("hold")) tr.lastChild.replaceChildren(el("button", { class: "hold-release", onclick: () => releaseHold(holds[i]) }, t("hold.release")));
  });
}

async function releaseHold(h) {
  const reason = prompt(t("hold.release_why", { value: h.value }));
  if (!reason || !reason.trim()) return;
  try { await api(`/cr/api/holds/${encodeURIComponent(h.id)}/release`, { method: "POST", body: JSON.stringify({ reason }) }); }
  catch (e) { retMsg($("#hold-msg"), e.message, true); return; }
  retMsg($("#hold-msg"), t("hold.released", { value: h.value }));
  await loadRetention();
}

async function placeHold(kind, value, reason) {  // the answer, or null when refused (the message says why)
  try {
    const h = await api("/cr/api/holds", { method: "POST", body: JSON.stringify({ kind, value, reason }) });
    retMsg($("#hold-msg"), t(h.published_version ? "hold.placed" : "hold.placed_unpublished", { value: h.value }));
    return h;
  } catch (e) { retMsg($("#hold-msg"), e.message, true); return null; }
}

$("#hold-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  if (await placeHold(f.kind.value, f.value.value, f.reason.value)) { f.reset(); await loadRetention(); }
});

$("#retention-policy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target, days = (k) => (f[k].value === "" ? null : Number(f[k].value));
  const policy = { clear_days: days("clear_days"), suspect_days: days("suspect_days"), manual_days: days("manual_days") };
  try {
    const r = await api("/cr/api/retention/policy", { method: "PUT", body: JSON.stringify({ policy, reason: f.reason.value }) });
    retMsg($("#retention-policy-msg"), t("retention.set_done", { version: r.published_version ?? "-" }));
    f.reason.value = "";
    await loadRetention();
  } catch (e) { retMsg($("#retention-policy-msg"), e.message, true); }
});

$("#seizure-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api(`/cr/api/seizures/${encodeURIComponent(f.record_id.value)}/release`, { method: "POST", body: JSON.stringify({ reason: f.reason.value }) });
    retMsg($("#seizure-msg"), t("seizure.released", { id: f.record_id.value }));
    f.reset();
  } catch (e) { retMsg($("#seizure-msg"), e.message, true); }
});

// ---- on every alert: export the case, hold it ---------------------------------------------------
async function exportCase(a, msg) {
  const reason = prompt(t("export.why"));
  if (!reason || !reason.trim()) return;
  const r = await fetch("/cr/api/case-bundles", { method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-lang": S.lang }, body: JSON.stringify({ record_ids: [a.id], reason }) });
  if (!r.ok) { retMsg(msg, (await refusal(r)).message, true); return; }  // its code's sentence in the language shown
  const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || "case.zip";
  const link = el("a", { href: URL.createObjectURL(await r.blob()), download: name });
  document.body.append(link); link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  retMsg(msg, t("export.done", { sha: (r.headers.get("x-manifest-sha256") || "").slice(0, 16) }));
}

async function holdAlert(a, msg) {
  const reason = prompt(t("hold.why"));
  if (!reason || !reason.trim()) return;
  const h = await placeHold("record", a.id, reason);
  retMsg(msg, h ? t("hold.placed", { value: a.id }) : $("#hold-msg").textContent, !h);
}

window.crAlertExtras = (a) => {
  const msg = el("span", { class: "case-msg", role: "status" });
  const out = [];
  if (retCan("case_export")) out.push(el("button", { class: "act-export", onclick: () => exportCase(a, msg) }, t("export.button")));
  if (retCan("hold")) out.push(el("button", { class: "act-hold", onclick: () => holdAlert(a, msg) }, t("hold.button")));
  return out.length ? [...out, msg] : [];
};
window.crViews = { ...window.crViews, retention: loadRetention };
