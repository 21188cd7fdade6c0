//! The page's one script, inline: the timeline's filters, showing the row a chart mark or
//! a moment links to (even when a filter hides it), a folded row's text on hover, and the
//! map at the moment the slider picks. Without it the page still reads: the map at the end, every row, folded messages
//! open on click.
//!
//! A node looks as `map::sites::node_look` says; `lookOf` below must say the same (the
//! browser check compares the end the script draws with the one the page was written
//! with).

pub(super) const SCRIPT: &str = r##"
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);

  // The timeline: filters by type and by text.
  const table = $("timeline-table");
  const filters = $("timeline-filters");
  const search = $("timeline-search");
  const hiddenKinds = new Set();
  function applyFilters() {
    if (!table) return;
    const q = search ? search.value.trim().toLowerCase() : "";
    const rows = table.tBodies[0].rows;
    let shown = 0;
    for (const tr of rows) {
      const off = hiddenKinds.has(tr.dataset.kind) ||
        (q !== "" && !tr.textContent.toLowerCase().includes(q));
      tr.hidden = off;
      if (!off) shown++;
    }
    const count = $("timeline-count");
    if (count) count.textContent = shown + " of " + rows.length + " shown";
  }
  if (filters) {
    filters.hidden = false;
    for (const b of filters.querySelectorAll("button[data-kind]")) {
      b.addEventListener("click", () => {
        const kind = b.dataset.kind;
        if (hiddenKinds.has(kind)) hiddenKinds.delete(kind); else hiddenKinds.add(kind);
        b.setAttribute("aria-pressed", String(!hiddenKinds.has(kind)));
        applyFilters();
      });
    }
    if (search) search.addEventListener("input", applyFilters);
    applyFilters();
  }
  // A folded row's whole text on hover (kept once in the page, in the row).
  if (table) {
    table.addEventListener("mouseover", (e) => {
      const d = e.target.closest("details.more");
      if (d && !d.title) d.title = d.querySelector(".full").textContent;
    });
  }

  // A chart mark or a moment links to a row: show it, whatever the filters say.
  function reveal() {
    let id;
    try {
      id = decodeURIComponent(location.hash.slice(1));
    } catch (e) {
      return; // a hash no row has
    }
    const tr = id ? document.getElementById(id) : null;
    if (!tr || tr.tagName !== "TR") return;
    if (hiddenKinds.delete(tr.dataset.kind) && filters) {
      const b = filters.querySelector('button[data-kind="' + tr.dataset.kind + '"]');
      if (b) b.setAttribute("aria-pressed", "true");
    }
    if (search) search.value = "";
    applyFilters();
    for (const old of document.querySelectorAll("tr.flash")) old.classList.remove("flash");
    tr.classList.add("flash");
    tr.scrollIntoView({ block: "center" });
  }
  window.addEventListener("hashchange", reveal);
  reveal();

  // The map at each moment.
  const data = $("map-data");
  const slider = $("map-slider");
  const map = $("site-map");
  if (!data || !slider || !map) return;
  const { bands, over, moments, lanes } = JSON.parse(data.textContent);
  const colourOf = (ms) => {
    for (const [bound, colour] of bands) if (ms <= bound) return colour;
    return over;
  };
  const lookOf = (n) => {
    if (!n) return ["empty", 0];
    if (n.state === "Ready") return n.pods > 0 ? ["pods", n.pods] : ["empty", 0];
    return [n.state === "Failed" ? "failed" : "notready", n.pods + n.terminating];
  };
  const stateText = (n) => {
    if (!n) return "Ready";
    const s = n.state === "Failed" ? "failed, not noticed yet" : n.state;
    return n.terminating > 0 ? s + ", " + n.terminating + " terminating" : s;
  };
  const nodes = [...map.querySelectorAll("g.node")];
  const counts = [...map.querySelectorAll("text.site-count")];
  const links = [...map.querySelectorAll("g.link[data-link]")];
  const paths = [...map.querySelectorAll("g.link[data-path]")];
  const laneGroups = [...map.querySelectorAll("g.lane[data-lane]")];
  // The end's tooltips name the pods; other moments count them.
  const titles = new Map();
  for (const e of [...nodes, ...counts, ...links]) {
    const t = e.querySelector("title");
    if (t) titles.set(e, t.textContent);
  }
  const last = moments.length - 1;
  function show(i) {
    const m = moments[i];
    const end = i === last;
    const byName = new Map(m.nodes.map((n) => [n.name, n]));
    for (const g of nodes) {
      const n = byName.get(g.dataset.node);
      const [state, count] = lookOf(n);
      g.dataset.state = state;
      g.querySelector("text").textContent = String(count);
      g.querySelector("title").textContent = end ? titles.get(g) :
        g.dataset.node + " (" + stateText(n) + "): " + count + " pods at " + m.at;
    }
    for (const t of counts) {
      const names = t.dataset.nodes.split(" ");
      let pods = 0, down = false;
      for (const name of names) {
        const [state, count] = lookOf(byName.get(name));
        pods += count;
        down = down || state === "failed" || state === "notready";
      }
      t.dataset.state = down ? "down" : pods > 0 ? "pods" : "empty";
      t.lastChild.textContent = names.length + "n · " + pods + "p";
    }
    for (const g of links) {
      const l = m.links[g.dataset.link];
      if (!l) continue;
      g.querySelector("path").setAttribute("stroke", colourOf(l.latencyMs));
      const label = g.querySelector("text");
      if (label) label.textContent = l.latency;
      g.querySelector("title").textContent = end ? titles.get(g) :
        g.dataset.link + ": latency " + l.latency + " at " + m.at;
    }
    const up = new Set(m.paths.map((p) => p.activated + "|" + p.from + "|" + p.to));
    for (const g of paths) g.style.display = up.has(g.dataset.path) ? "" : "none";
    // The lanes of service chains: ingress, the hops' nodes, egress at that moment.
    for (const g of laneGroups) {
      const l = lanes && lanes[g.dataset.lane] ? lanes[g.dataset.lane][i] : null;
      g.style.display = l ? "" : "none";
      if (!l) continue;
      const p = g.querySelector("path");
      p.setAttribute("d", l.d);
      p.setAttribute("stroke", l.colour);
      g.dataset.nodes = l.nodes;
      g.dataset.compliance = l.compliance;
      g.querySelector("title").textContent = l.title;
    }
    slider.value = String(i);
    map.dataset.moment = String(i);
    const text = $("map-moment");
    text.textContent = "";
    const at = document.createElement("b");
    at.textContent = m.at;
    text.append(at, " " + m.what);
    if (m.row) {
      const a = document.createElement("a");
      a.href = "#" + m.row;
      a.textContent = "in the timeline";
      text.append(a);
    }
  }
  slider.addEventListener("input", () => show(Number(slider.value)));
  $("map-prev").addEventListener("click", () => show(Math.max(0, Number(slider.value) - 1)));
  $("map-next").addEventListener("click", () => show(Math.min(last, Number(slider.value) + 1)));
  $("map-moments").hidden = false;
})();
"##;
