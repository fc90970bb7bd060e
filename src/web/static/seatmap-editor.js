// The organizer's seat-map generator: blocks (section, rows, seats per row, grade) become the
// generator blocks the seats API takes, previewed as the same SVG the buyer's seat map draws.

import { api, say, showProblem } from "./enhance.js";
import { canvas, labelSections, seatCircle } from "./seatdraw.js";

const SEAT = 12;      // seat spacing
const ROW = 14;       // row spacing
const SECTION_GAP = 40;
const form = document.getElementById("seat-editor");
const data = JSON.parse(document.getElementById("editor-data").textContent);
const t = data.texts;
const list = document.getElementById("blocks");
const base = `/events/${encodeURIComponent(data.event_id)}/performances/${encodeURIComponent(data.performance_id)}/seats`;
let counter = 0;

function field(label, name, value, type = "text") {
  const id = `blk-${counter}-${name}`;
  const p = document.createElement("p");
  const l = document.createElement("label");
  l.htmlFor = id;
  l.textContent = label;
  const input = document.createElement("input");
  input.id = id;
  input.dataset.field = name;
  input.type = type;
  input.value = value;
  input.required = true;
  if (type === "number") { input.min = "1"; input.max = "10000"; }
  input.addEventListener("input", preview);
  p.append(l, input);
  return p;
}

function addBlock(values = {}) {
  counter += 1;
  const row = document.createElement("fieldset");
  row.className = "block-row inline-fields";
  const legend = document.createElement("legend");
  legend.textContent = `#${counter}`;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = t.remove;
  remove.addEventListener("click", () => { row.remove(); preview(); });
  row.append(
    legend,
    field(t.section, "section", values.section ?? "A"),
    field(t.rows, "rows", values.rows ?? 5, "number"),
    field(t.seats_per_row, "seats_per_row", values.seats_per_row ?? 10, "number"),
    field(t.grade, "grade", values.grade ?? "R"),
    remove,
  );
  list.append(row);
  preview();
}

function rowLabel(n) {
  let s = "";
  while (n > 0) { n -= 1; s = String.fromCharCode(65 + (n % 26)) + s; n = Math.floor(n / 26); }
  return s;
}

/** The generator blocks: sections side by side, row ranges of one section stacked. */
function blocks() {
  const sections = new Map();  // name → { x, rowsSoFar, width }
  let nextX = 0;
  const out = [];
  for (const row of list.querySelectorAll(".block-row")) {
    const get = (f) => row.querySelector(`[data-field="${f}"]`).value.trim();
    const rows = Number.parseInt(get("rows"), 10);
    const perRow = Number.parseInt(get("seats_per_row"), 10);
    const section = get("section");
    if (!section || !(rows > 0) || !(perRow > 0)) continue;
    let s = sections.get(section);
    if (!s) {
      s = { x: nextX, rowsSoFar: 0, width: 0 };
      sections.set(section, s);
    }
    s.width = Math.max(s.width, (perRow - 1) * SEAT);
    out.push({
      section, rows, seats_per_row: perRow, grade: get("grade"),
      x: s.x, y: s.rowsSoFar * ROW, seat_spacing: SEAT, row_spacing: ROW,
      first_row: s.rowsSoFar + 1, row_labels: "LETTERS",
    });
    s.rowsSoFar += rows;
    // Later sections start right of the widest row of every section so far.
    nextX = Math.max(...[...sections.values()].map((v) => v.x + v.width)) + SECTION_GAP;
  }
  return out;
}

/** Seats as the server expands blocks, in the layout document's shape. */
function expand(bs) {
  const seats = [];
  for (const b of bs) {
    for (let r = 0; r < b.rows; r += 1) {
      for (let s = 0; s < b.seats_per_row; s += 1) {
        seats.push({ section: b.section, row: rowLabel(b.first_row + r), seat: String(s + 1),
          grade: b.grade, x: b.x + s * b.seat_spacing, y: b.y + r * b.row_spacing });
      }
    }
  }
  return seats;
}

function bounds(seats) {
  if (!seats.length) return { min_x: 0, min_y: 0, max_x: 0, max_y: 0 };
  return {
    min_x: Math.min(...seats.map((s) => s.x)), max_x: Math.max(...seats.map((s) => s.x)),
    min_y: Math.min(...seats.map((s) => s.y)), max_y: Math.max(...seats.map((s) => s.y)),
  };
}

/** Draws seats like the buyer's map: circles coloured by grade, section names above. */
export function drawSeats(box, seats, b) {
  const grades = [...new Set(seats.map((s) => s.grade))];
  const { svg, width } = canvas(b);
  svg.setAttribute("aria-hidden", "true");
  // A small map is not blown up past three screen pixels per unit.
  svg.style.maxWidth = `${width * 3}px`;
  labelSections(svg, seats);
  for (const s of seats) svg.append(seatCircle(s, `seat g${grades.indexOf(s.grade) % 8}`));
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const [i, g] of grades.entries()) {
    const chip = document.createElement("span");
    chip.className = `swatch g${i % 8}`;
    const name = document.createElement("span");
    name.textContent = `${g} (${seats.filter((s) => s.grade === g).length}) `;
    legend.append(chip, name);
  }
  box.replaceChildren(svg, legend);
}

function preview() {
  const seats = expand(blocks());
  document.getElementById("seat-count").textContent = String(seats.length);
  drawSeats(document.getElementById("preview"), seats, bounds(seats));
}

async function showCurrent() {
  if (!data.layout_version) return;
  try {
    const doc = await api("GET", `${base}/layout`);
    drawSeats(document.getElementById("current"), doc.seats, doc.bounds);
  } catch (_) { /* no layout yet */ }
}

document.getElementById("add-block").addEventListener("click", () => addBlock());
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    await api("PUT", base, { blocks: blocks() });
    say(form, t.saved, "success");
    data.layout_version = 1;
    await showCurrent();
  } catch (err) {
    showProblem(form, err);
  } finally {
    button.disabled = false;
  }
});

addBlock({ section: "A", rows: 3, seats_per_row: 10, grade: "VIP" });
addBlock({ section: "A", rows: 5, seats_per_row: 10, grade: "R" });
showCurrent();
