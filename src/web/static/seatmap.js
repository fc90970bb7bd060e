// The buy page: an SVG seat map drawn from the layout document and kept live from the 2-bit state
// document, the other products' quantities, and placing the order through the JSON API.

import { api, say, messages, showProblem } from "./enhance.js";
import { canvas, labelSections, seatCircle } from "./seatdraw.js";

const form = document.getElementById("buy");
const data = JSON.parse(document.getElementById("buy-data").textContent);
const t = data.texts;
const admissionKey = `bo-admission:${data.event_id}`;

// --- waiting room admission -------------------------------------------------------------
function admission() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(admissionKey) || "null");
    if (saved && Date.parse(saved.expires_at) > Date.now()) return saved;
  } catch (_) { /* a corrupt entry is no admission */ }
  return null;
}

if (data.queue) {
  const slot = admission();
  if (!slot) {
    window.location.replace(`/e/${encodeURIComponent(data.event_id)}/queue`);
  } else {
    const left = document.getElementById("admission-left");
    const value = left.querySelector("[data-countdown-value]");
    left.hidden = false;
    const tick = () => {
      const s = Math.max(0, Math.floor((Date.parse(slot.expires_at) - Date.now()) / 1000));
      value.textContent = `${Math.floor(s / 60)}${t.minutes} ${s % 60}${t.seconds}`;
      if (s === 0) {
        sessionStorage.removeItem(admissionKey);
        document.getElementById("queue-note").hidden = false;
        say(form, t.queue_expired, "alert");
      }
    };
    tick();
    setInterval(tick, 1000);
  }
}

// --- seat map ---------------------------------------------------------------------------
const mapBox = document.getElementById("seatmap");
const grades = new Map(data.reserved.map((g, i) => [g.grade, { ...g, index: i % 8 }]));
let layout = null;
let nodes = [];            // SVG element per seat, in layout order
const chosen = new Map();  // seat index → seat
let focusIndex = 0;
let zoom = 1;

function seatName(seat) {
  const g = grades.get(seat.grade);
  return `${seat.section} ${seat.row}-${seat.seat}, ${seat.grade}${g ? `, ${g.price_text}` : ""}`;
}

function draw(doc) {
  layout = doc;
  chosen.clear();
  const { svg } = canvas(doc.bounds);
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", document.getElementById("seat-map-title").textContent);
  labelSections(svg, doc.seats);
  nodes = doc.seats.map((s, i) => {
    const g = grades.get(s.grade);
    const c = seatCircle(s, `seat g${g ? g.index : 7}${g ? "" : " taken"}`);
    c.setAttribute("role", "checkbox");
    c.setAttribute("aria-checked", "false");
    c.setAttribute("aria-label", seatName(s));
    c.setAttribute("tabindex", i === 0 ? "0" : "-1");
    c.dataset.index = i;
    if (!g) c.setAttribute("aria-disabled", "true");
    svg.append(c);
    return c;
  });
  mapBox.replaceChildren(svg);
  buildNeighbours(doc.seats);
  renderChosen();
}

// Rows: seats of one section and row by x; moving up or down goes to the nearest seat by x in the
// next row of the same section (or the nearest seat anywhere above or below).
let rowOf = [];
let rows = [];
function buildNeighbours(seats) {
  const byRow = new Map();
  seats.forEach((s, i) => {
    const key = `${s.section}\u0000${s.row}`;
    if (!byRow.has(key)) byRow.set(key, []);
    byRow.get(key).push(i);
  });
  rows = [...byRow.values()].map((r) => r.sort((a, b) => seats[a].x - seats[b].x));
  rows.sort((a, b) => seats[a[0]].y - seats[b[0]].y || seats[a[0]].x - seats[b[0]].x);
  rowOf = new Array(seats.length);
  rows.forEach((r, ri) => r.forEach((i, pos) => { rowOf[i] = [ri, pos]; }));
}

function move(from, key) {
  const [ri, pos] = rowOf[from];
  const row = rows[ri];
  if (key === "ArrowLeft") return row[Math.max(0, pos - 1)];
  if (key === "ArrowRight") return row[Math.min(row.length - 1, pos + 1)];
  const next = rows[key === "ArrowUp" ? ri - 1 : ri + 1];
  if (!next) return from;
  const x = layout.seats[from].x;
  return next.reduce((best, i) => (Math.abs(layout.seats[i].x - x) < Math.abs(layout.seats[best].x - x) ? i : best), next[0]);
}

function focusSeat(i) {
  nodes[focusIndex]?.setAttribute("tabindex", "-1");
  focusIndex = i;
  nodes[i].setAttribute("tabindex", "0");
  nodes[i].focus();
}

function limitLeft() {
  if (!data.per_user_limit) return Infinity;
  let general = 0;
  form.querySelectorAll("[data-qty][data-ticket]").forEach((el) => { general += Number(el.value) || 0; });
  return data.per_user_limit - chosen.size - general;
}

function toggle(i) {
  const node = nodes[i];
  if (!node || node.classList.contains("taken")) return;
  if (chosen.has(i)) {
    chosen.delete(i);
  } else {
    if (limitLeft() <= 0) {
      say(form, t.over_limit, "alert");
      return;
    }
    chosen.set(i, layout.seats[i]);
  }
  node.classList.toggle("sel", chosen.has(i));
  node.setAttribute("aria-checked", String(chosen.has(i)));
  renderChosen();
}

function renderChosen() {
  const list = document.getElementById("chosen");
  if (!list) return;
  list.replaceChildren();
  if (chosen.size === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t.none_chosen;
    list.append(li);
  }
  for (const seat of chosen.values()) {
    const li = document.createElement("li");
    li.textContent = seatName(seat);
    list.append(li);
  }
  updateTotal();
}

mapBox?.addEventListener("click", (e) => {
  const i = e.target.dataset?.index;
  if (i !== undefined) {
    focusSeat(Number(i));
    toggle(Number(i));
  }
});

mapBox?.addEventListener("keydown", (e) => {
  const i = e.target.dataset?.index;
  if (i === undefined) return;
  if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(e.key)) {
    e.preventDefault();
    focusSeat(move(Number(i), e.key));
  } else if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    toggle(Number(i));
  }
});

document.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
  zoom = Math.min(8, Math.max(1, zoom * Number(button.dataset.zoom)));
  const svg = mapBox.querySelector("svg");
  if (svg) svg.style.width = `${zoom * 100}%`;
}));

// 2-bit states, four seats a byte, the first seat in the lowest bits: 0 free, 1 held, 2 sold, 3 blocked.
function applyState(doc) {
  if (!layout) return;
  if (doc.version !== layout.version) {
    loadLayout(doc.version);
    return;
  }
  const bytes = Uint8Array.from(atob(doc.data), (c) => c.charCodeAt(0));
  let lost = false;
  nodes.forEach((node, i) => {
    const state = (bytes[i >> 2] >> ((i & 3) * 2)) & 3;
    const unpriced = !grades.has(layout.seats[i].grade);
    const taken = state !== 0 || unpriced;
    if (taken && chosen.has(i)) {
      chosen.delete(i);
      node.classList.remove("sel");
      node.setAttribute("aria-checked", "false");
      lost = true;
    }
    node.classList.toggle("taken", taken);
    node.setAttribute("aria-disabled", String(taken));
  });
  if (lost) {
    say(form, t.seats_gone, "alert");
    renderChosen();
  }
}

const base = data.performance_id
  ? `/events/${encodeURIComponent(data.event_id)}/performances/${encodeURIComponent(data.performance_id)}/seats`
  : null;

async function loadLayout(version) {
  const doc = await api("GET", `${base}/layout${version ? `?version=${version}` : ""}`);
  draw(doc);
  await refreshState();
}

async function refreshState() {
  try {
    applyState(await api("GET", `${base}/state`));
  } catch (_) { /* the next refresh tries again */ }
}

if (mapBox && base && grades.size > 0) {
  loadLayout().catch((err) => say(mapBox.parentElement, err.message, "alert"));
  setInterval(() => { if (!document.hidden) refreshState(); }, 3000);
}

// --- goods, address, total ----------------------------------------------------------------
const moneyFormat = new Intl.NumberFormat(data.lang === "ko" ? "ko-KR" : "en-US", {
  style: "currency",
  currency: data.currency,
});
// The server's own format: "165,000원" in Korean, "₩165,000" in English.
function money(minor) {
  if (data.currency === "KRW" && data.lang === "ko") return `${Math.round(minor / 100).toLocaleString("ko-KR")}원`;
  return moneyFormat.format(minor / 100);
}

function needsAddress() {
  let needed = false;
  form.querySelectorAll("[data-ship-for]:checked").forEach((radio) => {
    const qty = document.getElementById(`qty-${radio.dataset.shipFor}`);
    if ("delivery" in radio.dataset && qty && Number(qty.value) > 0) needed = true;
  });
  return needed;
}

function updateTotal() {
  const address = document.getElementById("address");
  address.hidden = !needsAddress();
  address.querySelectorAll("input").forEach((el) => { el.disabled = address.hidden; });
  // Hundredths, like the API; the server's total on the checkout page is the one that counts.
  let minor = 0;
  for (const seat of chosen.values()) minor += grades.get(seat.grade)?.price || 0;
  const shipping = new Set();
  form.querySelectorAll("[data-qty]").forEach((el) => {
    const qty = Number(el.value) || 0;
    if (qty <= 0) return;
    minor += qty * (data.prices[el.dataset.product] || 0);
    const ship = form.querySelector(`[data-ship-for="${CSS.escape(el.dataset.product)}"]:checked`);
    if (ship) shipping.add(ship.value);
  });
  for (const id of shipping) minor += data.fees[id] || 0;
  const total = document.getElementById("total");
  total.textContent = minor > 0 ? money(minor) : "—";
}

form.addEventListener("input", updateTotal);
form.addEventListener("change", updateTotal);
updateTotal();

function items() {
  const out = [];
  const bySeatGrade = new Map();
  for (const [i, seat] of chosen) {
    if (!bySeatGrade.has(seat.grade)) bySeatGrade.set(seat.grade, []);
    bySeatGrade.get(seat.grade).push(layout.seats[i].id);
  }
  for (const [grade, seatIds] of bySeatGrade) {
    out.push({ product_id: grades.get(grade).product_id, quantity: seatIds.length, seat_ids: seatIds });
  }
  form.querySelectorAll("[data-qty]").forEach((el) => {
    const quantity = Number.parseInt(el.value, 10) || 0;
    if (quantity <= 0) return;
    const id = el.dataset.product;
    const item = { product_id: id, quantity };
    const variant = form.querySelector(`[data-variant-for="${CSS.escape(id)}"]`);
    if (variant && variant.value) item.variant_id = variant.value;
    const ship = form.querySelector(`[data-ship-for="${CSS.escape(id)}"]:checked`);
    if (ship) item.shipping_option_id = ship.value;
    out.push(item);
  });
  return out;
}

function address() {
  if (!needsAddress()) return undefined;
  const get = (name) => form.querySelector(`[name="${name}"]`).value.trim();
  return {
    recipient: get("shipping_address.recipient"),
    phone: get("shipping_address.phone"),
    postcode: get("shipping_address.postcode"),
    address_lines: [get("shipping_address.address_lines.0"), get("shipping_address.address_lines.1")].filter(Boolean),
  };
}

// One key per attempt: a retry after a lost answer is the same order, a changed basket a new one.
let attempt = { basket: "", key: "" };

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { items: items() };
  const shipping = address();
  if (shipping) body.shipping_address = shipping;
  if (body.items.length === 0) {
    say(form, t.choose_something, "alert");
    return;
  }
  const basket = JSON.stringify(body);
  if (attempt.basket !== basket) attempt = { basket, key: crypto.randomUUID() };
  const headers = { "Idempotency-Key": attempt.key };
  const slot = admission();
  if (slot) headers["X-Admission-Token"] = slot.token;
  const button = document.getElementById("place-order");
  button.disabled = true;
  say(form, messages._working || "…", "notice");
  try {
    const order = await api("POST", "/orders", body, headers);
    window.location.assign(`/checkout/${encodeURIComponent(order.id)}`);
  } catch (err) {
    if (err.body?.code === "admission_required") {
      sessionStorage.removeItem(admissionKey);
      document.getElementById("queue-note").hidden = false;
    }
    if (err.body?.code === "seat_unavailable") refreshState();
    if (err.status === 401) {
      window.location.assign(`/account/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    showProblem(form, err);
    // The same basket after an error that changed nothing may be retried with the same key;
    // a refused one must not replay the refusal.
    if (err.status !== 0 && err.status < 500) attempt = { basket: "", key: "" };
  } finally {
    button.disabled = false;
  }
});

// "Notify me" on sold-out products.
form.querySelectorAll("[data-notify]").forEach((button) => button.addEventListener("click", async () => {
  try {
    await api("POST", `/products/${encodeURIComponent(button.dataset.notify)}/notify-me`, {});
    button.replaceWith(Object.assign(document.createElement("span"), { className: "success", textContent: t.notify_done }));
  } catch (err) {
    say(form, err.message, "alert");
  }
}));
