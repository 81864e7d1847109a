// Vehicle search report (edge/search_report.py): areas on the vehicle's diagram, methods, time, findings, photos,
// notes; signed with badge + PIN (each edit is a new version), countersigned by a supervisor for a seizure.
// Uses app.js's globals: $, S, T, tr, api, show, can.
"use strict";
const SR = { diagrams: null, methods: [], record: null, type: "van", areas: new Set(), findings: [], photos: [] };
const SVGNS = "http://www.w3.org/2000/svg";

function showSearchState(rec) {  // called by app.js showRecord: the case panel's button and the pass's outcome
  const vehicle = ["vehicle", "container"].includes(rec.kind);
  $("search-state").hidden = !(vehicle && can("case.view"));
  const reports = rec.search_reports || [];
  const latest = reports[reports.length - 1];
  $("search-outcome").textContent = latest
    ? T("search_outcome." + (latest.outcome === "seizure" && !latest.countersigned ? "pending" : latest.outcome)) : "";
}
$("search-open").onclick = () => { if (S.current) openSearch(S.current.id); };

async function openSearch(id) {
  if (!SR.diagrams) {
    const d = await api("/api/search/diagrams"); SR.diagrams = d.diagrams; SR.methods = d.methods; SR.cameras = d.cameras;
  }
  const view = await api("/api/cases/" + id + "/search-reports");
  SR.record = id; show("search");
  const rec = S.current && S.current.id === id ? S.current : null;
  $("sr-plates").textContent = rec ? (rec.identities || []).filter((i) => ["plate", "container"].includes(i.kind) && i.value)
    .map((i) => i.value).join(" / ") : "";
  const latest = view.versions[0];  // an edit starts from the latest version and signs a new one
  SR.base = latest ? latest.version : 0;
  SR.type = latest ? latest.vehicle_type : rec && rec.kind === "container" ? "tractor_container" : "van";
  SR.areas = new Set(latest ? latest.areas : []);
  SR.findings = latest ? latest.findings.map((f) => ({ ...f })) : [];
  SR.photos = latest ? [...latest.photos] : [];
  $("sr-minutes").value = latest ? latest.minutes : 0; $("sr-notes").value = latest ? latest.notes : "";
  $("sr-sign").textContent = T(latest ? "search.edit" : "search.sign");
  $("sr-msg").textContent = ""; $("sr-badge").value = ""; $("sr-pin").value = "";
  const kept = JSON.parse(sessionStorage.getItem(searchKey(id)) || "null");
  if (kept && kept.base === SR.base && SR.diagrams[kept.type]) resumeSearch(kept);  // on the version it started from
  renderSearchForm(kept && kept.base === SR.base && SR.diagrams[kept.type] ? kept.methods : latest ? latest.methods : []);
  renderVersions(view);
}

// The report being filled, kept for this tab across a reload or a session that ran out (as the decision's draft,
// officer.js): per record, on top of the version it started from, which a newer version signed meanwhile supersedes.
const searchKey = (id) => "cpe-search-" + id;
function keepSearch() {
  if (!S.me || !SR.record || $("view-search").hidden) return;
  const methods = [...document.querySelectorAll("#sr-methods input:checked")].map((c) => c.value);
  sessionStorage.setItem(searchKey(SR.record), JSON.stringify({
    base: SR.base, type: SR.type, areas: [...SR.areas], methods, minutes: $("sr-minutes").value,
    findings: SR.findings, photos: SR.photos, notes: $("sr-notes").value }));
}
setInterval(keepSearch, 500);
addEventListener("pagehide", keepSearch);
function resumeSearch(kept) {
  SR.type = kept.type; SR.areas = new Set(kept.areas || []); SR.findings = kept.findings || []; SR.photos = kept.photos || [];
  $("sr-minutes").value = kept.minutes ?? 0; $("sr-notes").value = kept.notes || "";
}

function renderSearchForm(methods) {
  const sel = $("sr-type"); sel.innerHTML = "";
  for (const k of Object.keys(SR.diagrams)) sel.add(new Option(T("vehicle." + k), k, false, k === SR.type));
  sel.onchange = () => { SR.type = sel.value; SR.areas.clear(); renderDiagram(); renderFindings(); };
  const box = $("sr-methods"); box.innerHTML = "";
  for (const m of SR.methods) {
    const l = document.createElement("label"), c = document.createElement("input");
    c.type = "checkbox"; c.value = m; c.checked = methods.includes(m); c.dataset.method = m;
    l.append(c, " " + T("method." + m)); box.append(l);
  }
  renderDiagram(); renderFindings(); renderPhotos();
}

function renderDiagram() {
  const svg = $("sr-diagram"); svg.replaceChildren();
  const found = new Set(SR.findings.map((f) => f.area));
  for (const a of SR.diagrams[SR.type]) {
    const [x, y, w, h] = a.rect, r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", w); r.setAttribute("height", h);
    r.dataset.area = a.name;
    r.setAttribute("class", (SR.areas.has(a.name) ? "on" : "") + (found.has(a.name) ? " found" : ""));
    const title = document.createElementNS(SVGNS, "title"); title.textContent = T("area." + a.name); r.append(title);
    r.onclick = () => { SR.areas.has(a.name) ? SR.areas.delete(a.name) : SR.areas.add(a.name); renderDiagram(); };
    const label = document.createElementNS(SVGNS, "text");
    label.setAttribute("x", x + 0.8); label.setAttribute("y", y + Math.min(h - 0.8, 3)); label.textContent = T("area." + a.name);
    svg.append(r, label);
  }
  $("sr-areas").textContent = [...SR.areas].map((a) => T("area." + a)).join(", ");
}

function renderFindings() {
  const box = $("sr-findings"); box.innerHTML = "";
  SR.findings.forEach((f, n) => {
    const row = document.createElement("div"); row.className = "sr-finding";
    // each field under its caption: a filled row ("40", "cartons", "12.5") hides the placeholders
    const labelled = (input, caption) => {
      const l = document.createElement("label"), c = document.createElement("span"); c.textContent = T(caption);
      l.append(c, input); return l;
    };
    const field = (key, type, ph) => {
      const i = document.createElement("input"); i.type = type; i.value = f[key] ?? ""; i.placeholder = T(ph);
      i.dataset.field = key; if (type === "number") { i.min = 0; i.step = "any"; }
      i.oninput = () => { f[key] = type === "number" ? Number(i.value) : i.value; }; return labelled(i, ph);
    };
    const where = document.createElement("select"); where.dataset.field = "area";
    for (const a of SR.diagrams[SR.type]) where.add(new Option(T("area." + a.name), a.name, false, a.name === f.area));
    f.area = where.value; where.onchange = () => { f.area = where.value; renderDiagram(); };
    const del = document.createElement("button"); del.type = "button"; del.textContent = T("search.remove");
    del.onclick = () => { SR.findings.splice(n, 1); renderFindings(); renderDiagram(); };
    row.append(field("goods", "text", "search.goods"), field("hs_class", "text", "search.hs_class"),
               field("quantity", "number", "search.quantity"), field("unit", "text", "search.unit"),
               field("weight_kg", "number", "search.weight_kg"), labelled(where, "search.where_found"), del);
    box.append(row);
  });
}
$("sr-add-finding").onclick = () => {
  SR.findings.push({ goods: "", hs_class: "", quantity: 0, unit: "pcs", weight_kg: 0, area: "" });
  renderFindings(); renderDiagram();
};

function renderPhotos() {
  const box = $("sr-photos"); box.innerHTML = "";
  for (const sha of SR.photos) { const img = document.createElement("img"); img.src = "/api/search-photos/" + sha; img.alt = sha.slice(0, 12); box.append(img); }
  const cams = $("sr-cameras"); cams.innerHTML = "";
  for (const name of SR.cameras || []) {  // a station camera takes the photo now
    const b = document.createElement("button"); b.type = "button"; b.dataset.camera = name;
    b.textContent = T("search.take_photo", { camera: name });
    b.onclick = async () => {
      try { addPhoto((await api("/api/search-photos/camera/" + encodeURIComponent(name), { method: "POST" })).sha256); }
      catch (err) { $("sr-msg").textContent = T(err.message); }
    };
    cams.append(b);
  }
}
function addPhoto(sha) { if (!SR.photos.includes(sha)) SR.photos.push(sha); renderPhotos(); }
$("sr-photo").onchange = async () => {
  const file = $("sr-photo").files[0]; if (!file) return;
  const r = await fetch("/api/search-photos", { method: "POST", credentials: "same-origin", body: file,
                                                headers: { "Content-Type": file.type } });
  const body = await r.json();
  if (!r.ok) { $("sr-msg").textContent = T("error." + body.detail); return; }
  $("sr-photo").value = ""; addPhoto(body.sha256);
};

$("sr-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const methods = [...document.querySelectorAll("#sr-methods input:checked")].map((c) => c.value);
  const body = { vehicle_type: SR.type, areas: [...SR.areas], methods, minutes: Number($("sr-minutes").value || 0),
                 findings: SR.findings.filter((f) => f.goods.trim()), photos: SR.photos, notes: $("sr-notes").value,
                 badge: $("sr-badge").value, pin: $("sr-pin").value };
  try {
    const view = await api("/api/cases/" + SR.record + "/search-reports", { json: body });
    $("sr-pin").value = ""; $("sr-msg").textContent = T("search.signed");
    SR.base = view.versions[0].version; sessionStorage.removeItem(searchKey(SR.record));
    $("sr-sign").textContent = T("search.edit");
    renderVersions(view); refreshCurrent(view);
  } catch (err) { $("sr-msg").textContent = T(err.message); }
};

function refreshCurrent(view) {
  if (!S.current || S.current.id !== SR.record) return;
  S.current.search_reports = [...view.versions].reverse(); showSearchState(S.current);
}

function renderVersions(view) {
  const box = $("sr-versions"); box.replaceChildren();
  if (!view.versions.length) { box.textContent = T("search.none"); return; }
  for (const v of view.versions) {
    const final = v.final, div = document.createElement("div");
    div.className = "version " + (final ? "final" : "pending"); div.dataset.version = v.version;
    const h = document.createElement("h3");
    h.textContent = T("search.version", { n: v.version }) + " · " + T("search_outcome." + (final ? v.outcome : "pending")) +
      (v.supersedes ? " · " + T("search.supersedes", { n: v.supersedes }) : "");
    const who = document.createElement("p");
    who.textContent = T("search.signed_by") + ": " + v.officer.name + " (" + v.officer.badge + ") " + v.officer.signed_at +
      (v.countersigned ? " · " + T("search.countersigned_by") + ": " + v.countersigned.name + " (" + v.countersigned.badge + ")" : "");
    const what = document.createElement("p");
    what.textContent = T("vehicle." + v.vehicle_type) + " · " + v.areas.map((a) => T("area." + a)).join(", ") + " · " +
      v.methods.map((m) => T("method." + m)).join(", ") + " · " + T("search.minutes") + " " + v.minutes +
      (v.findings.length ? " · " + v.findings.map((f) => f.goods + " " + f.quantity + " " + f.unit).join(", ") : "");
    const links = document.createElement("p");
    for (const [ext, key] of [["html", "search.print_html"], ["pdf", "search.print_pdf"]]) {
      const a = document.createElement("a"); a.target = "_blank"; a.dataset.print = ext; a.textContent = T(key);
      a.href = "/api/cases/" + SR.record + "/search-reports/" + v.version + "." + ext + "?lang=" + S.lang; links.append(a);
    }
    div.append(h, who, what, links);
    if (v.outcome === "seizure" && !v.countersigned && v.version === view.versions[0].version) div.append(countersignForm(v));
    box.append(div);
  }
}

function countersignForm(v) {
  const form = document.createElement("form"); form.className = "row countersign";
  const badge = document.createElement("input"); badge.placeholder = T("signin.badge"); badge.autocomplete = "off"; badge.name = "badge";
  const pin = document.createElement("input"); pin.type = "password"; pin.placeholder = T("signin.pin"); pin.name = "pin";
  const go = document.createElement("button"); go.className = "supervisor"; go.textContent = T("search.countersign");
  const msg = document.createElement("span"); msg.className = "msg";
  form.append(badge, pin, go, msg);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const view = await api("/api/cases/" + SR.record + "/search-reports/" + v.version + "/countersign",
                             { json: { badge: badge.value, pin: pin.value } });
      renderVersions(view); refreshCurrent(view); $("sr-msg").textContent = T("search.countersigned");
    } catch (err) { pin.value = ""; msg.textContent = T(err.message); }
  };
  return form;
}
