// Image tools of the station screen (issue 21): the scan is fetched once as raw dual-energy data
// (/api/cases/{id}/scan.bin, edge/web/scandata.py) and every view is computed here on that data:
// high and low energy, material colour, organic/inorganic only, negative, edge enhancement, gamma and
// variable density (absorption slicing), a loupe, zoom at the cursor up to 16×, the detector's boxes
// drawn over the image (never burned in) in per-class colours, the lines a portal's beam never lit
// (cab avoidance: "not scanned", hatched, never called dense), the dense-object ("cannot penetrate")
// alert, and recall of the last items by hotkey. Loaded before app.js; uses app.js's S, T, tr, setMode,
// applyFilters and openCase at call time. The <img id="scan"> keeps the layout (app.js fit, zoom, pan,
// boxes): it holds a transparent placeholder of the scan's size and the canvas over it shows the pixels.
"use strict";
window.ImageTools = (() => {
  const el = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  // models/material.py: air, organic, inorganic, metal, opaque
  const COLOURS = [[255, 255, 255], [235, 140, 30], [50, 170, 60], [40, 90, 215], [0, 0, 0]];
  const AIR = 0, ORGANIC = 1;
  const CLASS_RGB = { firearm: "#ff3b30", knife: "#ff9500", explosive: "#ff2d92", ammunition: "#ffd60a",
    battery: "#64d2ff", cigarettes: "#c69c6d", drugs: "#bf5af2", currency: "#30d158", phone: "#0a84ff",
    concealment: "#ff6482", load_present: "#98989d", other: "#ffffff" };
  const REVIEW_RGB = "#28dc3c";
  const RECALL = 10, LOUPE_PX = 220, LOUPE_K = 3, EDGE_GAIN = 1.5;
  // views on the digits: the letters are the officer's decisions (officer.js: C confirm, A false alarm, N next ...)
  const MODE_KEYS = { 1: "colour", 2: "grey", 3: "low", 4: "organic", 5: "inorganic", 6: "negative" };
  window.cpeShortcuts = [...(window.cpeShortcuts || []),  // listed in the "?" help (officer.js)
    ...Object.entries(MODE_KEYS).map(([key, mode]) => ({ key, label: "view." + mode, run: () => setMode(mode) })),
    { key: "e", label: "tools.edge", run: () => set({ edge: !IT.edge }) },
    { key: "m", label: "tools.loupe", run: () => setLoupe(!IT.loupe) },
    { key: "b", label: "tools.overlay", run: () => setOverlay(!IT.overlay) },
    { key: "[", label: "tools.recall", run: () => step(true) }];
  const DEFAULTS = { edge: false, gamma: 1, lo: 0, hi: 100 };
  const IT = { data: null, want: null, rec: null, ...DEFAULTS, overlay: true, loupe: false, recent: [], pointer: null,
               announced: new Set() };

  // -- the DOM: a canvas and the detections' overlay in the image layer, a loupe, the alert, the tools
  const canvas = document.createElement("canvas"); canvas.id = "scan-canvas"; canvas.className = "scan-canvas";
  const det = document.createElementNS(SVG, "svg"); det.id = "det-overlay"; det.classList.add("det-overlay");
  el("layer").insertBefore(det, el("overlay")); el("layer").insertBefore(canvas, det);
  const loupe = document.createElement("canvas"); loupe.id = "loupe"; loupe.className = "loupe"; loupe.hidden = true;
  loupe.width = loupe.height = LOUPE_PX; el("stage").append(loupe);
  const alertBox = document.createElement("div"); alertBox.id = "dense-alert"; alertBox.className = "dense-alert";
  alertBox.setAttribute("role", "alert"); alertBox.hidden = true; el("stage").append(alertBox);

  function button(id, key, onclick) {
    const b = document.createElement("button"); b.type = "button"; b.id = id; b.dataset.i18n = key; b.onclick = onclick; return b;
  }
  function slider(id, key, min, max, step, value, oninput) {
    const label = document.createElement("label"), span = document.createElement("span"), input = document.createElement("input");
    span.dataset.i18n = key; input.type = "range"; input.id = id;
    Object.assign(input, { min, max, step, value }); input.oninput = oninput; label.append(span, input); return label;
  }
  const tools = el("imgtools");
  const toggles = document.createElement("div"); toggles.className = "row";
  toggles.append(button("tool-edge", "tools.edge", () => set({ edge: !IT.edge })),
    button("tool-loupe", "tools.loupe", () => setLoupe(!IT.loupe)),
    button("tool-overlay", "tools.overlay", () => setOverlay(!IT.overlay)),
    button("tool-reset", "tools.reset_tools", () => set(DEFAULTS)));
  const recall = document.createElement("div"); recall.id = "recall"; recall.className = "row recall";
  const keys = document.createElement("small"); keys.className = "keys"; keys.dataset.i18n = "tools.keys";
  tools.append(toggles,
    slider("gamma", "tools.gamma", 0.3, 3, 0.05, 1, (e) => set({ gamma: Number(e.target.value) })),
    slider("density-lo", "tools.density_from", 0, 100, 1, 0, (e) => set({ lo: Math.min(Number(e.target.value), IT.hi) })),
    slider("density-hi", "tools.density_to", 0, 100, 1, 100, (e) => set({ hi: Math.max(Number(e.target.value), IT.lo) })),
    recall, keys);

  function set(changes) {
    Object.assign(IT, changes);
    el("gamma").value = IT.gamma; el("density-lo").value = IT.lo; el("density-hi").value = IT.hi;
    el("tool-edge").classList.toggle("on", IT.edge);
    render();
  }
  function setOverlay(on) { IT.overlay = on; el("tool-overlay").classList.toggle("on", on); det.classList.toggle("off", !on); }
  function setLoupe(on) { IT.loupe = on; el("tool-loupe").classList.toggle("on", on); if (!on) loupe.hidden = true; else moveLoupe(); }
  setOverlay(true);

  // -- data: fetch once per item shown; parse the payload of edge/web/scandata.py
  function parse(buf) {
    const head = new DataView(buf, 0, 8);
    if (new TextDecoder().decode(new Uint8Array(buf, 0, 4)) !== "CPSD") throw new Error("error.scan_unreadable");
    const n = head.getUint32(4, true), h = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
    const px = h.width * h.height, at = 8 + n;
    const high = new Uint16Array(buf, at, px), low = new Uint16Array(buf, at + 2 * px, px), cls = new Uint8Array(buf, at + 4 * px, px);
    const att = (ch) => { const a = new Float32Array(px); for (let i = 0; i < px; i++) a[i] = -Math.log(Math.max(ch[i], 1) / h.air); return a; };
    const aHigh = att(high), shade = new Float32Array(px);  // the colour views' density shade, as models/material.py
    for (let i = 0; i < px; i++) shade[i] = 1 - 0.7 * Math.pow(Math.min(1, aHigh[i] / h.dense_from), 0.7);
    const work = { b: new Float32Array(px), outside: new Uint8Array(px), image: new ImageData(h.width, h.height) };  // reused per render
    return { ...h, w: h.width, h: h.height, high, low, cls, aHigh, aLow: att(low), shade, work };
  }
  async function load(rec, img, pngUrl) {
    IT.want = rec.id; remember(rec);
    let data;
    try {
      const r = await fetch("/api/cases/" + encodeURIComponent(rec.id) + "/scan.bin", { credentials: "same-origin" });
      if (!r.ok) throw new Error("error.request_failed");
      data = parse(await r.arrayBuffer());
    } catch (err) {  // the server's PNG (boxes burned in) rather than nothing
      console.warn("image tools: no scan data", rec.id, err.message);
      if (IT.want === rec.id) img.src = pngUrl;
      return;
    }
    if (IT.want !== rec.id) return;  // a newer item meanwhile
    IT.data = data; IT.rec = rec;
    canvas.width = data.w; canvas.height = data.h;
    render(); drawOverlay(); denseAlert();
    img.src = "data:image/svg+xml," + encodeURIComponent(  // the scan's size for the layout; the canvas shows it
      `<svg xmlns="${SVG}" width="${data.w}" height="${data.h}"><!--${rec.id}--></svg>`);
  }
  // The placeholder keeps the canvas; anything else in #scan (the PNG fallback, nothing after sign-out)
  // leaves no trace of the item here.
  new MutationObserver(() => {
    const src = el("scan").getAttribute("src") || "", mine = src.startsWith("data:image/svg+xml,");
    el("layer").classList.toggle("data", mine);
    if (!mine) { IT.data = null; if (!src) IT.want = null; canvas.width = canvas.height = 0; det.replaceChildren();
                 alertBox.hidden = true; loupe.hidden = true; delete document.body.dataset.dense; }
    if (!src && !S.me) { IT.recent = []; IT.announced.clear(); showRecent(); }  // signed out: the next officer starts afresh
  }).observe(el("scan"), { attributes: true, attributeFilter: ["src"] });

  // -- views, computed on the data ----------------------------------------------------------------
  // b: what a pixel shows, 0 (dark) .. 1 (white): transmission in the grey views, the density shade in
  // the colour views (as models/material.py shades); slicing, gamma and edges act on b, so a material
  // keeps its hue whatever the tool.
  function render() {
    const d = IT.data; if (!d) return;
    const mode = S.mode, px = d.w * d.h, a = mode === "low" ? d.aLow : d.aHigh, ch = mode === "low" ? d.low : d.high;
    const grey = mode === "grey" || mode === "low" || mode === "negative";
    const slicing = IT.lo > 0 || IT.hi < 100, aLo = (IT.lo / 100) * d.dense_from;
    const aHi = IT.hi >= 100 ? Infinity : (IT.hi / 100) * d.dense_from, span = Math.max(Math.min(aHi, d.dense_from) - aLo, 1e-3);
    const { b, outside, image } = d.work, gamma = gammaTable(IT.gamma), toAir = 1 / d.air;
    outside.fill(0);
    for (let i = 0; i < px; i++) {
      let v;
      if (slicing) {
        if (a[i] < aLo || a[i] > aHi) { outside[i] = 1; b[i] = 1; continue; }
        v = 1 - 0.9 * Math.min(1, (a[i] - aLo) / span);  // the band stretched over the whole scale
      } else v = grey ? ch[i] * toAir : d.shade[i];
      b[i] = gamma ? gamma[(v * GAMMA_STEPS + 0.5) | 0] : v;
    }
    if (IT.edge) sharpen(b, outside, d.w, d.h);
    const o = new Uint32Array(image.data.buffer), WHITE = 0xffffffff;  // ABGR, little-endian
    const fade = mode === "organic" ? [0, 0, 1, 1, 1] : mode === "inorganic" ? [0, 1, 0, 0, 0] : null;  // by class
    const neg = mode === "negative";
    for (let i = 0; i < px; i++) {
      if (outside[i]) { o[i] = WHITE; continue; }
      if (grey) { const g = (255 * (neg ? 1 - b[i] : b[i]) + 0.5) | 0; o[i] = 0xff000000 | (g << 16) | (g << 8) | g; continue; }
      const c = d.cls[i];
      if (c === AIR && !slicing) { o[i] = WHITE; continue; }
      const rgb = COLOURS[c];
      let r = (rgb[0] * b[i] + 0.5) | 0, g = (rgb[1] * b[i] + 0.5) | 0, bl = (rgb[2] * b[i] + 0.5) | 0;
      if (fade && fade[c]) { r = 255 - ((255 - r) / 5 | 0); g = 255 - ((255 - g) / 5 | 0); bl = 255 - ((255 - bl) / 5 | 0); }  // as render._keep_only
      o[i] = 0xff000000 | (bl << 16) | (g << 8) | r;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
    moveLoupe();
  }
  const GAMMA_STEPS = 4096;
  function gammaTable(gamma) {  // b -> b^(1/gamma) on 4,096 steps (under a tenth of a grey level off); null for 1
    if (gamma === 1) return null;
    if (IT.gammaLut?.gamma !== gamma) {
      const lut = new Float32Array(GAMMA_STEPS + 1);
      for (let i = 0; i <= GAMMA_STEPS; i++) lut[i] = Math.pow(i / GAMMA_STEPS, 1 / gamma);
      IT.gammaLut = { gamma, lut };
    }
    return IT.gammaLut.lut;
  }
  // Unsharp mask on b (3×3 box mean over the neighbours inside the scan, separable), sliced-out pixels left white.
  function sharpen(b, outside, w, h) {
    const src = Float32Array.from(b), rows = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      const row = y * w;
      for (let x = 0; x < w; x++) rows[row + x] = src[row + x] + (x > 0 ? src[row + x - 1] : 0) + (x < w - 1 ? src[row + x + 1] : 0);
    }
    for (let y = 0; y < h; y++) {
      const ny = 1 + (y > 0) + (y < h - 1), row = y * w;
      for (let x = 0; x < w; x++) {
        const i = row + x; if (outside[i]) continue;
        const sum = rows[i] + (y > 0 ? rows[i - w] : 0) + (y < h - 1 ? rows[i + w] : 0), n = ny * (1 + (x > 0) + (x < w - 1));
        const v = src[i] + EDGE_GAIN * (src[i] - sum / n);
        b[i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }

  // -- the detector's boxes and the dense regions, over the image ---------------------------------
  function toScreen(box) {  // scan pixels to the shown image: portal scans are turned side-on (app.js onScreen)
    const n = IT.data.h, b = IT.data.portal ? [box[1], n - box[2], box[3], n - box[0]] : box;
    return [Math.min(b[0], b[2]), Math.min(b[1], b[3]), Math.abs(b[2] - b[0]), Math.abs(b[3] - b[1])];
  }
  // A caption a 45th of the image's long side, never under 12 screen pixels: in scan pixels, so a small scan
  // (drawn many times its size to fill the stage) gets small ones, not 12 scan pixels across its whole width.
  function captionSize() {
    const d = IT.data, st = document.getElementById("stage"), k = Math.min(st.clientWidth / d.w, st.clientHeight / d.h);
    return Math.max(k > 0 ? 12 / k : 12, Math.max(d.w, d.h) / 45);
  }
  function rect(box, cls, colour, caption) {
    const [x, y, w, h] = toScreen(box), g = document.createElementNS(SVG, "g"), r = document.createElementNS(SVG, "rect");
    g.setAttribute("class", cls);
    Object.entries({ x, y, width: w, height: h }).forEach(([k, v]) => r.setAttribute(k, v));
    if (colour) { r.style.stroke = colour; g.dataset.colour = colour; }
    g.append(r);
    if (caption) {
      const t = document.createElementNS(SVG, "text"), fs = captionSize();
      const above = y - fs * 0.3, below = y + h + fs;  // above the box, else below it, else inside its top
      t.setAttribute("x", x); t.setAttribute("y", above >= fs ? above : below <= IT.data.h ? below : y + fs * 1.2);
      t.dataset.inside = above < fs && below > IT.data.h ? "1" : "";
      t.style.fontSize = fs + "px"; if (colour) t.style.fill = colour; t.textContent = caption; g.append(t);
    }
    return g;
  }
  // A caption inside its box stays inside it: wider than the box, it is cut in two lines at the space that
  // makes them most even, then made smaller until it fits (its width estimated at 0.6 em a character, above
  // what sans-serif letters take: the overlay may be laid out later, when it is shown).
  const EM_PER_CHAR = 0.6;
  function fitInside(g) {
    const t = g.querySelector("text"), w = +g.querySelector("rect").getAttribute("width");
    const fs = t && parseFloat(t.style.fontSize), wide = (text) => text.length * EM_PER_CHAR * fs;
    if (!t || !t.dataset.inside || wide(t.textContent) <= w) return;
    const words = t.textContent.split(" ");
    let lines = [t.textContent];
    if (words.length > 1) {
      const gap = (k) => Math.abs(words.slice(0, k).join(" ").length - words.slice(k).join(" ").length);
      let cut = 1;
      for (let i = 2; i < words.length; i++) if (gap(i) < gap(cut)) cut = i;
      lines = [words.slice(0, cut).join(" ") + " ", words.slice(cut).join(" ")];
      const x = t.getAttribute("x");
      t.replaceChildren(...lines.map((line, k) => {
        const s = document.createElementNS(SVG, "tspan");
        s.setAttribute("x", x); if (k) s.setAttribute("dy", "1.2em"); s.textContent = line; return s;
      }));
    }
    const widest = Math.max(...lines.map((line) => wide(line.trim())));
    if (widest > w) t.style.fontSize = fs * w / widest + "px";
  }
  function drawOverlay() {
    const d = IT.data, rec = IT.rec; if (!d || !rec) return;
    det.setAttribute("viewBox", `0 0 ${d.w} ${d.h}`); det.replaceChildren();
    (rec.detections || []).forEach((x, i) => {
      const g = rect(x.box, "det", CLASS_RGB[x.label] || CLASS_RGB.other, `${i + 1} ${tr("class.", x.label)} ${Math.round(x.score * 100)}%`);
      g.dataset.label = x.label; det.append(g);
    });
    for (const box of rec.review?.boxes || [])
      det.append(rect(box, "det review", REVIEW_RGB, T("tools.review_box") + (rec.review.label ? " " + tr("class.", rec.review.label) : "")));
    for (const r of d.dense) det.append(rect(r.box, "dense", null, T("tools.dense_box")));
    for (const box of d.unlit || []) det.append(rect(box, "unlit", null, T("tools.unlit_box")));  // cab avoidance
    det.querySelectorAll("g").forEach(fitInside);
  }
  function denseAlert() {  // a bag is not cleared with one (an alert, two low notes); a vehicle is not held for
    const n = IT.data.dense.length, portal = !!IT.data.portal;  // its engine block: a note, silent
    alertBox.hidden = !n; alertBox.textContent = n ? Tn(portal ? "tools.dense_note" : "tools.dense_alert", n) : "";
    alertBox.setAttribute("role", portal ? "status" : "alert"); alertBox.classList.toggle("note", portal);
    if (n) document.body.dataset.dense = n; else delete document.body.dataset.dense;
    if (n && !portal && !IT.announced.has(IT.rec.id)) { IT.announced.add(IT.rec.id); tone(); }
  }
  function tone() {  // two low notes, unlike the suspect alarm's three high ones (app.js alarm)
    const ctx = S.audio; if (!ctx) return;
    for (let i = 0; i < 2; i++) {
      const osc = ctx.createOscillator(), gain = ctx.createGain(), at = ctx.currentTime + 1.0 + i * 0.4;
      osc.frequency.value = 330; osc.connect(gain); gain.connect(ctx.destination);
      gain.gain.setValueAtTime(0.3, at); gain.gain.setValueAtTime(0, at + 0.25); osc.start(at); osc.stop(at + 0.3);
    }
  }

  // -- loupe and zoom at the cursor ---------------------------------------------------------------
  function moveLoupe(e) {
    if (e) IT.pointer = { x: e.clientX, y: e.clientY };
    const p = IT.pointer, d = IT.data;
    if (!IT.loupe || !p || !d) { loupe.hidden = true; return; }
    const r = canvas.getBoundingClientRect(), u = ((p.x - r.left) / r.width) * d.w, v = ((p.y - r.top) / r.height) * d.h;
    if (!(u >= 0 && v >= 0 && u < d.w && v < d.h)) { loupe.hidden = true; return; }
    const s = LOUPE_PX / (r.width / d.w) / LOUPE_K, st = el("stage").getBoundingClientRect(), ctx = loupe.getContext("2d");
    ctx.imageSmoothingEnabled = false; ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, LOUPE_PX, LOUPE_PX);
    ctx.drawImage(canvas, u - s / 2, v - s / 2, s, s, 0, 0, LOUPE_PX, LOUPE_PX);
    loupe.style.left = p.x - st.left - LOUPE_PX / 2 + "px"; loupe.style.top = p.y - st.top - LOUPE_PX / 2 + "px";
    loupe.hidden = false;
  }
  el("stage").addEventListener("pointermove", moveLoupe);
  el("stage").addEventListener("pointerleave", () => { IT.pointer = null; loupe.hidden = true; });
  // The layer scales about its centre (app.js applyFilters, MAX_ZOOM): keep the scan point under (x, y) where it is.
  function zoomAt(f, x, y) {
    const r = el("layer").getBoundingClientRect(), z = S.zoom, z2 = Math.min(MAX_ZOOM, Math.max(0.5, z * f));
    S.panX += ((z - z2) * (x - (r.left + r.width / 2))) / z; S.panY += ((z - z2) * (y - (r.top + r.height / 2))) / z;
    S.zoom = z2; applyFilters(); moveLoupe();
  }

  // -- recall of the last items, by hotkey ----------------------------------------------------------
  function remember(rec) {
    if (!IT.recent.some((r) => r.id === rec.id)) IT.recent.unshift({ id: rec.id, seq: rec.seq, verdict: rec.verdict });
    IT.recent.length = Math.min(IT.recent.length, RECALL);
    showRecent();
  }
  function showRecent() {
    recall.replaceChildren();
    const lead = document.createElement("span"); lead.textContent = T("tools.recall"); recall.append(lead);
    for (const r of IT.recent) {
      const b = document.createElement("button"); b.type = "button"; b.className = "recall-item " + r.verdict + (r.id === IT.want ? " on" : "");
      b.dataset.id = r.id; b.textContent = "#" + r.seq; b.onclick = () => openCase(r.id); recall.append(b);
    }
  }
  function step(older) {  // "[" the item shown before this one, "]" the one after
    const i = IT.recent.findIndex((r) => r.id === IT.want), j = i < 0 ? 0 : i + (older ? 1 : -1);
    if (j >= 0 && j < IT.recent.length && j !== i) openCase(IT.recent[j].id);
  }

  // -- hotkeys: modes, tools, zoom, recall (never while typing) -------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || e.target.closest?.("input, textarea, select, [contenteditable]")) return;
    if (el("view-case").hidden || !S.me) return;
    const k = e.key, centre = () => { const r = el("stage").getBoundingClientRect(); return IT.pointer || { x: r.left + r.width / 2, y: r.top + r.height / 2 }; };
    const act = {
      e: () => set({ edge: !IT.edge }), m: () => setLoupe(!IT.loupe), b: () => setOverlay(!IT.overlay),
      g: () => set({ gamma: Math.min(3, +(IT.gamma + 0.2).toFixed(2)) }), G: () => set({ gamma: Math.max(0.3, +(IT.gamma - 0.2).toFixed(2)) }),
      d: () => set({ lo: Math.min(IT.hi, IT.lo + 10) }), D: () => set({ lo: Math.max(0, IT.lo - 10) }),
      "+": () => zoomAt(1.25, centre().x, centre().y), "=": () => zoomAt(1.25, centre().x, centre().y),
      "-": () => zoomAt(0.8, centre().x, centre().y), 0: () => { resetView(); set(DEFAULTS); },
      "[": () => step(true), "]": () => step(false),
    }[k] || (MODE_KEYS[k] ? () => setMode(MODE_KEYS[k]) : null);
    if (act) { e.preventDefault(); act(); }
  });

  // captions in the reader's language: app.js loadLang sets <html lang> once the catalogue is in
  new MutationObserver(() => { if (IT.data) { drawOverlay(); denseAlert(); } showRecent(); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });

  return { load, render, zoomAt, state: IT };
})();
