// What the buyer's seat map and the organizer's preview draw alike: the canvas around the seats'
// bounds, each section's name above its first seat, and a circle per seat.

export const SVG = "http://www.w3.org/2000/svg";
const PAD = 20;

/** An SVG fitted to `bounds` (with room for the section names); `width` is its user-unit width. */
export function canvas(bounds) {
  const width = Math.max(1, bounds.max_x - bounds.min_x) + PAD * 2;
  const height = Math.max(1, bounds.max_y - bounds.min_y) + PAD * 2;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `${bounds.min_x - PAD} ${bounds.min_y - PAD - 10} ${width} ${height + 10}`);
  svg.style.width = "100%";
  return { svg, width };
}

/** Writes each section's name above its top-left seat. */
export function labelSections(svg, seats) {
  const sections = new Map();
  for (const s of seats) {
    const at = sections.get(s.section);
    if (!at || s.y < at.y || (s.y === at.y && s.x < at.x)) sections.set(s.section, { x: s.x, y: s.y });
  }
  for (const [name, at] of sections) {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", at.x);
    label.setAttribute("y", at.y - 8);
    label.setAttribute("class", "section-name");
    label.textContent = name;
    svg.append(label);
  }
}

/** One seat's circle with its CSS classes. */
export function seatCircle(seat, classes) {
  const c = document.createElementNS(SVG, "circle");
  c.setAttribute("cx", seat.x);
  c.setAttribute("cy", seat.y);
  c.setAttribute("r", 4.5);
  c.setAttribute("class", classes);
  return c;
}
