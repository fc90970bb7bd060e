// The sales dashboard: totals refreshed every 2 seconds from GET /events/{id}/sales, and the
// orders placed per minute since the page opened drawn as an SVG bar chart (no library).

import { api } from "./enhance.js";

const SVG = "http://www.w3.org/2000/svg";
const data = JSON.parse(document.getElementById("sales-data").textContent);
const box = document.getElementById("orders-chart");
const MINUTES = 30;
// minute (epoch) → orders placed in it, seeded with the last 30 minutes from the server
const buckets = new Map(Object.entries(data.history || {}).map(([m, n]) => [Number(m), n]));
let last = null;

const money = new Intl.NumberFormat(data.lang === "ko" ? "ko-KR" : "en-US", {
  style: "currency", currency: data.currency,
});

function ordersOf(t) {
  return t.orders_pending + t.orders_confirmed + t.orders_canceled + t.orders_refunded;
}

function setTotal(key, text) {
  const el = document.querySelector(`[data-total="${key}"]`);
  if (el && el.textContent !== text) el.textContent = text;
}

/** Bars for the last 30 minutes; the height scale is the busiest minute. */
export function drawBars(target, counts, label) {
  const w = 600; const h = 160; const pad = 24;
  const max = Math.max(1, ...counts);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label}: ${counts.join(", ")}`);
  svg.style.width = "100%";
  const bw = (w - pad) / counts.length;
  counts.forEach((n, i) => {
    const bh = ((h - pad) * n) / max;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", pad + i * bw + 1);
    r.setAttribute("y", h - pad - bh);
    r.setAttribute("width", Math.max(1, bw - 2));
    r.setAttribute("height", bh);
    r.setAttribute("class", "bar");
    svg.append(r);
  });
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", pad); axis.setAttribute("x2", w);
  axis.setAttribute("y1", h - pad); axis.setAttribute("y2", h - pad);
  axis.setAttribute("class", "axis");
  svg.append(axis);
  const top = document.createElementNS(SVG, "text");
  top.setAttribute("x", 0); top.setAttribute("y", 12);
  top.setAttribute("class", "tick");
  top.textContent = String(max);
  svg.append(top);
  target.replaceChildren(svg);
}

function render() {
  const now = Math.floor(Date.now() / 60000);
  const counts = [];
  for (let m = now - MINUTES + 1; m <= now; m += 1) counts.push(buckets.get(m) || 0);
  drawBars(box, counts, data.texts.orders_per_minute);
}

async function refresh() {
  try {
    const report = await api("GET", `/events/${encodeURIComponent(data.event_id)}/sales`);
    const t = report.totals;
    const orders = ordersOf(t);
    if (last !== null && orders > last) {
      const minute = Math.floor(Date.now() / 60000);
      buckets.set(minute, (buckets.get(minute) || 0) + (orders - last));
    }
    last = orders;
    setTotal("sold", String(t.sold));
    setTotal("held", String(t.held));
    setTotal("orders", String(orders));
    setTotal("revenue", money.format(Number(t.revenue)));
    setTotal("gross", money.format(Number(t.gross)));
    setTotal("refunded", money.format(Number(t.refunded)));
  } catch (_) { /* keep the last figures; the next tick retries */ }
  render();
}

render();
refresh();
setInterval(refresh, 2000);
