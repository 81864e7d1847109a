"use strict";
// Wall mode and the full-size image viewer (issue 21). Wall mode (the header's toggle, or ?wall=1 / ?wall=0 in
// the address) scales the text to the screen, uses its whole width and shows the alerts as compact cards, many
// at a time; the choice is remembered in this browser. Any alert image opens full size on a click.
(() => {
  const KEY = "cr.wall";
  const button = document.getElementById("wall-toggle");
  const label = () => { button.textContent = t(document.documentElement.classList.contains("wall") ? "wall.off" : "wall.on"); };
  function setWall(on) {
    document.documentElement.classList.toggle("wall", on);
    button.setAttribute("aria-pressed", String(on));
    localStorage.setItem(KEY, on ? "1" : "0");
    label();
  }
  const asked = new URLSearchParams(location.search).get("wall");
  setWall(asked !== null ? asked === "1" || asked === "true" : localStorage.getItem(KEY) === "1");
  button.addEventListener("click", () => setWall(!document.documentElement.classList.contains("wall")));
  new MutationObserver(label).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });

  const viewer = document.getElementById("viewer");
  const full = viewer.querySelector("img");
  document.addEventListener("click", (ev) => {
    const img = ev.target.closest(".alert img");
    if (!img) return;
    full.src = img.src;
    full.alt = img.alt;
    viewer.showModal();
  });
  viewer.addEventListener("click", (ev) => { if (ev.target !== full) viewer.close(); });
})();
