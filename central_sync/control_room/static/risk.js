"use strict";
// Risk assessment pages (issue 18): watchlists and rules with drafting, approvals (four eyes), declarations
// import, bundles and the stations' versions, hit rates. Uses app.js's helpers ($, el, t, tc, api, table, fmt*).

const riskMsg = (node, text, bad) => { node.textContent = text; node.classList.toggle("error", !!bad); };
const can = (p) => S.me && S.me.can.includes(p);

async function draft(op, payload, msgNode) {
  try {
    const d = await api("/cr/api/risk/drafts", { method: "POST", body: JSON.stringify({ op, payload }) });
    riskMsg(msgNode, t("risk.drafted", { id: d.id, target: d.target }));
    return d;
  } catch (e) { riskMsg(msgNode, t("risk.draft_refused", { error: e.message }), true); return null; }
}

// ---- rules as readable text --------------------------------------------------------------------
function condText(c) {
  if (c.all) return t("cond.all") + " (" + c.all.map(condText).join("; ") + ")";
  if (c.any) return t("cond.any") + " (" + c.any.map(condText).join("; ") + ")";
  if (c.not) return t("cond.not") + " (" + condText(c.not) + ")";
  if (c.listed) return t("cond.listed", { kind: c.listed === "any" ? t("cond.any_list") : tc("ident", c.listed) });
  if (c.fact) {
    const v = c.value === undefined ? "" : Array.isArray(c.value) ? c.value.join(", ") : String(c.value);
    return t("cond.fact", { fact: tc("fact", c.fact), op: tc("cmp", c.op), value: v });
  }
  return JSON.stringify(c);
}
const ruleText = (r) => t("risk.rule_text", { when: condText(r.when), lane: tc("lane", r.lane), score: r.score });

// ---- watchlists, entries, rules, random policy --------------------------------------------------
async function loadRisk() {  // #risk[data-loaded] once the page shows the current state
  delete $("#risk").dataset.loaded;
  const lists = await api("/cr/api/risk/watchlists");
  table($("#risk-lists"), ["id", "kind", "name", "lane", "owner", "entries"].map((c) => t("risk.col." + c)),
    lists.map((w) => [w.id, tc("ident", w.kind), w.name, tc("lane", w.lane), w.owner, fmtNum(w.entries)]));
  $("#risk-entry-list").replaceChildren(...lists.map((w) => el("option", { value: w.id }, `${w.id} (${tc("ident", w.kind)})`)));
  const entries = await api("/cr/api/risk/entries?limit=500");
  table($("#risk-entries"), ["list", "value", "reason", "owner", "valid_to", "level"].map((c) => t("risk.col." + c)),
    entries.map((e) => [e.list_id, e.value, e.reason, e.owner, e.valid_to ? fmtTime(e.valid_to) : "-", e.level]));
  const rs = await api("/cr/api/risk/rules");
  table($("#risk-rules"), ["id", "name", "when", "enabled"].map((c) => t("risk.col." + c)),
    rs.rules.map((r) => [r.id, r.name, ruleText(r), r.enabled ? t("risk.yes") : t("risk.no")]));
  const f = $("#risk-random-form");  // a refresh never overwrites what the administrator is typing there
  if (!f.dataset.edited) { f.rate.value = rs.random.rate; f.stale_rate.value = rs.random.stale_rate; }
  if (!$("#risk-rule-json").value) $("#risk-rule-json").value = JSON.stringify(RULE_EXAMPLE, null, 2);
  $("#risk").dataset.loaded = "1";
}
const RULE_EXAMPLE = { id: "empty_but_heavy", name: "Declared empty but heavy", reason: "declared_empty_heavy",
  when: { all: [{ fact: "declaration.declared_empty", op: "eq", value: true }, { fact: "declaration.weight_kg", op: "gte", value: 4500 }] },
  score: 60, lane: "red", enabled: true };

function ruleFromEditor() {  // the editor's rule, or null with the reason shown (not JSON, or JSON but no object)
  let rule;
  try { rule = JSON.parse($("#risk-rule-json").value); }
  catch (e) { riskMsg($("#risk-rule-text"), t("risk.bad_json", { error: e.message }), true); return null; }
  if (rule !== null && typeof rule === "object" && !Array.isArray(rule)) return rule;
  riskMsg($("#risk-rule-text"), t("risk.rule_not_object"), true);
  return null;
}
$("#risk-rule-check").addEventListener("click", async () => {
  const rule = ruleFromEditor();
  if (!rule) return;
  let res;
  try { res = await api("/cr/api/risk/rules/check", { method: "POST", body: JSON.stringify({ rule }) }); }
  catch (e) { riskMsg($("#risk-rule-text"), t("risk.rule_invalid", { error: e.message }), true); return; }
  const why = res.ok ? "" : errorText({ detail: res.error, code: res.code, vals: res.vals || {} });  // the catalogue's, else English
  riskMsg($("#risk-rule-text"), res.ok ? ruleText(rule) : t("risk.rule_invalid", { error: why }), !res.ok);
});
$("#risk-rule-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const rule = ruleFromEditor();
  if (rule) await draft("rule.put", rule, $("#risk-msg"));
});
$("#risk-list-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  if (await draft("watchlist.put", { id: f.get("id"), kind: f.get("kind"), name: f.get("name"), lane: f.get("lane"), owner: S.me.username }, $("#risk-msg"))) ev.target.reset();
});
$("#risk-entry-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const validTo = f.get("valid_to") ? Date.parse(f.get("valid_to") + "T23:59:59Z") / 1000 : null;
  if (await draft("entry.put", { list_id: f.get("list_id"), value: f.get("value"), reason: f.get("reason"), owner: S.me.username,
    valid_to: validTo, level: Number(f.get("level")) }, $("#risk-msg"))) { ev.target.value.value = ""; ev.target.reason.value = ""; }
});
$("#risk-random-form").addEventListener("input", (ev) => { ev.currentTarget.dataset.edited = "1"; });
$("#risk-random-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget, f = new FormData(form);
  if (await draft("random.set", { rate: Number(f.get("rate")), stale_rate: Number(f.get("stale_rate")), per_lane: {} },
    $("#risk-msg"))) delete form.dataset.edited;
});

// ---- approvals ---------------------------------------------------------------------------------
function payloadText(d) {
  if (d.op === "rule.put") return ruleText(d.payload);
  return Object.entries(d.payload).filter(([, v]) => v !== null && v !== "").map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
}
async function loadApprovals() {
  const drafts = await api("/cr/api/risk/drafts?status=pending");
  const decide = (d, verb) => async () => {
    const body = verb === "reject" ? { reason: prompt(t("approvals.reason_prompt")) || "" } : undefined;
    if (body && !body.reason) return;
    try {
      await api(`/cr/api/risk/drafts/${encodeURIComponent(d.id)}/${verb}`, { method: "POST", body: body ? JSON.stringify(body) : "{}" });
      riskMsg($("#approvals-msg"), t("approvals." + verb + "d", { id: d.id }));
    } catch (e) { riskMsg($("#approvals-msg"), t("approvals.refused", { error: e.message }), true); }
    loadApprovals();
  };
  $("#drafts-table").replaceChildren(el("tr", {}, ...["time", "author", "op", "target", "change", ""].map((c) => el("th", {}, c ? t("approvals.col." + c) : ""))),
    ...drafts.map((d) => el("tr", { "data-draft": d.id },
      el("td", {}, fmtTime(d.created_at)), el("td", {}, d.author), el("td", {}, tc("draftop", d.op)), el("td", {}, d.target),
      el("td", {}, payloadText(d)),
      el("td", {}, ...(can("risk_approve") && d.author !== S.me.username
        ? [el("button", { class: "approve", onclick: decide(d, "approve") }, t("approvals.approve")), " ",
           el("button", { class: "reject", onclick: decide(d, "reject") }, t("approvals.reject"))]
        : [d.author === S.me.username ? t("approvals.own_draft") : t("approvals.needs_admin")])))));
  const changes = await api("/cr/api/risk/changes");
  table($("#changes-table"), ["time", "op", "target", "author", "approver", "decision", "reason"].map((c) => t("approvals.col." + c)),
    changes.map((c) => [fmtTime(c.at), tc("draftop", c.op), c.target, c.author, c.approver, tc("decision", c.decision), c.reason]));
}

// ---- declarations ------------------------------------------------------------------------------
$("#decl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const text = await f.get("file").text();
  try {
    const res = await api("/cr/api/risk/declarations?format=" + f.get("format"), { method: "POST", body: text, headers: { "content-type": "text/plain", "x-lang": S.lang } });
    riskMsg($("#decl-result"), t("decl.result", { accepted: res.accepted, refused: res.refused }), res.refused > 0);
    $("#decl-errors").replaceChildren(...res.errors.map((e) => el("li", {}, e)));
  } catch (e) { riskMsg($("#decl-result"), t("decl.failed", { error: e.message }), true); }
  loadDeclarations();
});
async function loadDeclarations() {
  const rows = await api("/cr/api/risk/declarations?limit=200");
  table($("#decl-table"), ["ref", "container", "plate", "trader", "goods", "declared_empty", "weight_kg", "origin", "seal_id"].map((c) => t("decl.col." + c)),
    rows.map((d) => [d.ref, d.container || "-", d.plate || "-", d.trader, d.goods.map(([hs, desc]) => `${hs} ${desc}`).join("; ") || "-",
      d.declared_empty ? t("risk.yes") : t("risk.no"), fmtNum(d.weight_kg), d.origin, d.sealed ? d.seal_id : t("decl.unsealed")]));
}

// ---- bundles and stations ----------------------------------------------------------------------
$("#bundle-publish").addEventListener("click", async () => {
  try {
    const b = await api("/cr/api/risk/publish", { method: "POST", body: "{}" });
    riskMsg($("#bundle-msg"), t("bundles.published", { version: b.version, entries: b.entries, rules: b.rules }));
  } catch (e) { riskMsg($("#bundle-msg"), t("bundles.failed", { error: e.message }), true); }
  loadBundles();
});
async function loadBundles() {
  const b = await api("/cr/api/risk/bundles");
  table($("#bundle-table"), ["version", "kind", "issued_at", "expires_at", "entries", "rules", "bytes", "publisher", "sha256"].map((c) => t("bundles.col." + c)),
    b.bundles.map((x) => [x.version, tc("bundlekind", x.kind), fmtTime(x.issued_at), fmtTime(x.expires_at), fmtNum(x.entries), fmtNum(x.rules),
      fmtNum(x.bytes), x.publisher, x.sha256.slice(0, 12)]));
  $("#bundle-stations").replaceChildren(el("tr", {}, ...["station", "version", "newest", "state", "refused"].map((c) => el("th", {}, t("bundles.col." + c)))),
    ...b.stations.map((s) => el("tr", { class: s.stale ? "stale" : "current", "data-station": s.station },
      el("td", {}, s.station), el("td", {}, s.version ?? "-"), el("td", {}, s.newest ?? "-"),
      el("td", {}, s.stale ? t("bundles.stale", { why: tc("stale", s.stale_reason) }) : t("bundles.current")),
      el("td", {}, s.refused_version ? `${s.refused_version} (${s.refused_code || "-"})` : "-"))));
}

// ---- hit rates ---------------------------------------------------------------------------------
async function loadRiskKpi() {
  const k = await api("/cr/api/risk/kpi");
  table($("#riskkpi-table"), ["kind", "id", "inspected", "seized", "rate", "ci"].map((c) => t("riskkpi.col." + c)),
    k.rates.map((r) => [tc("selector", r.kind), r.kind === "random" ? t("selector.random") : r.id, fmtNum(r.inspected), fmtNum(r.seized),
      fmtNum(r.rate, true), `${fmtNum(r.ci_low, true)} – ${fmtNum(r.ci_high, true)}`]));
}

window.crViews = { risk: loadRisk, approvals: loadApprovals, declarations: loadDeclarations, bundles: loadBundles, riskkpi: loadRiskKpi };
