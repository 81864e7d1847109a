"use strict";
// Model roll-out (docs/model-rollout.md): every station's active and candidate model, its canary progress and
// agreement, the hub's packages and roll-outs; an admin stages a roll-out of a signed package to one station,
// a percentage of the stations, or all. Uses app.js's helpers ($, el, t, tc, api, table, fmt*).
(() => {
  const field = (name, attrs) => el("label", {}, el("span", { "data-i18n": "models.field." + name }), " ",
    el("input", { name, ...attrs }));
  const form = el("form", { id: "models-form", class: "filters", "data-need": "models_rollout" },
    el("select", { name: "package", id: "models-package", required: "" }),
    el("select", { name: "target", id: "models-target" }, ...["station", "percent", "all"].map((v) =>
      el("option", { value: v, "data-i18n": "models.target." + v }))),
    el("select", { name: "station", id: "models-station" }),
    field("percent", { type: "number", min: "1", max: "100", step: "1", value: "10" }),
    field("min_items", { type: "number", min: "1", value: "50", required: "" }),
    field("min_agreement", { type: "number", min: "0", max: "1", step: "0.01", value: "0.95", required: "" }),
    field("p95_ms", { type: "number", min: "1", step: "1", value: "500", required: "" }),
    field("max_misses", { type: "number", min: "0", value: "5", required: "" }),
    el("button", { type: "submit", "data-i18n": "models.stage" }));
  $("main").append(el("section", { id: "models", class: "view", hidden: "" },
    el("h2", { "data-i18n": "models.title" }),
    el("p", { class: "note", "data-i18n": "models.note" }),
    el("table", { id: "models-stations" }),
    el("h3", { "data-i18n": "models.stage_title", "data-need": "models_rollout" }),
    form,
    el("p", { id: "models-msg", class: "note", role: "status" }),
    el("h3", { "data-i18n": "models.packages" }),
    el("table", { id: "models-packages" }),
    el("h3", { "data-i18n": "models.rollouts" }),
    el("table", { id: "models-rollouts" })));

  const msg = (text, bad) => { const n = $("#models-msg"); n.textContent = text; n.classList.toggle("error", !!bad); };
  const pct = (v) => (v === null || v === undefined ? "-" : fmtNum(v, true));

  function progress(m, rollout) {  // "12 / 50" items compared of those the roll-out needs
    if (!m || m.phase !== "canary") return "-";
    return t("models.progress", { items: m.items, needed: rollout ? rollout.criteria.min_items : "?" });
  }

  async function loadModels() {  // #models[data-loaded] once the page shows the current state
    const view = $("#models");
    delete view.dataset.loaded;
    const d = await api("/cr/api/models");
    const byId = new Map(d.rollouts.map((r) => [r.id, r]));
    $("#models-stations").replaceChildren(
      el("tr", {}, ...["station", "state", "active", "candidate", "phase", "progress", "agreement", "p95_ms", "misses", "reason"]
        .map((c) => el("th", {}, t("models.col." + c)))),
      ...d.stations.map((s) => {
        const m = s.models;
        return el("tr", { "data-station": s.station, "data-phase": m ? m.phase : "none" },
          el("td", {}, s.station), el("td", {}, tc("state", s.state)),
          el("td", {}, m ? m.active || t("models.configured") : t("models.no_rollout")), el("td", {}, (m && m.candidate) || "-"),
          el("td", {}, m ? tc("models.phase", m.phase) : "-"), el("td", { class: "progress" }, progress(m, m && byId.get(m.rollout))),
          el("td", { class: "agreement" }, m ? pct(m.agreement) : "-"), el("td", {}, m && m.p95_ms !== null ? fmtNum(m.p95_ms) : "-"),
          el("td", {}, m ? m.misses : "-"), el("td", {}, (m && m.reason) || ""));
      }));
    table($("#models-packages"), ["package", "version", "sha256", "signed", "downgrade"].map((c) => t("models.col." + c)),
      d.packages.map((p) => [p.name, p.version, p.sha256.slice(0, 12), p.signed ? t("models.signed_by", { who: p.signed_by }) : t("models.unsigned"),
        p.allow_downgrade ? t("risk.yes") : t("risk.no")]));
    table($("#models-rollouts"), ["id", "package", "stations", "criteria", "staged_by", "at"].map((c) => t("models.col." + c)),
      d.rollouts.map((r) => [r.id, r.package, r.stations ? r.stations.join(", ") : t("models.target.all"),
        t("models.criteria", { items: r.criteria.min_items, agreement: pct(r.criteria.min_agreement), p95: r.criteria.p95_ms,
          misses: r.criteria.max_misses }), r.staged_by, fmtTime(r.at)]));
    $("#models-package").replaceChildren(...d.packages.filter((p) => p.signed).map((p) => el("option", { value: p.package }, p.package)));
    $("#models-station").replaceChildren(...d.stations.map((s) => el("option", { value: s.station }, s.station)));
    if (!d.enabled) msg(t("models.disabled"), true);
    view.dataset.loaded = "1";
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form), target = f.get("target");
    const body = { package: f.get("package"), criteria: { min_items: +f.get("min_items"), min_agreement: +f.get("min_agreement"),
      p95_ms: +f.get("p95_ms"), max_misses: +f.get("max_misses") } };
    if (target === "station") body.stations = [f.get("station")];
    if (target === "percent") body.percent = +f.get("percent");
    try {
      const r = await api("/cr/api/models/rollouts", { method: "POST", body: JSON.stringify(body) });
      msg(t("models.staged", { id: r.id, package: r.package, stations: r.stations ? r.stations.join(", ") : t("models.target.all") }));
    } catch (e) { msg(t("models.stage_failed", { error: e.message }), true); }
    loadModels();
  });

  window.crViews = { ...(window.crViews || {}), models: loadModels };
})();
