// Live waiting-room figures for the organizer, refreshed every 2 seconds.

import { api } from "./enhance.js";

const box = document.getElementById("queue-live");

async function refresh() {
  try {
    const s = await api("GET", `/admin/queues/${encodeURIComponent(box.dataset.event)}`);
    const values = {
      waiting: Object.values(s.waiting || {}).reduce((a, b) => a + b, 0),
      active: s.active,
      admitted_total: s.admitted_total,
      admission_rate: Number(s.admission_rate).toFixed(1),
      abandoned_total: s.abandoned_total,
      wait_avg_seconds: s.wait_avg_seconds == null ? "—" : Math.round(s.wait_avg_seconds),
    };
    for (const [key, value] of Object.entries(values)) {
      const el = box.querySelector(`[data-stat="${key}"]`);
      if (el && el.textContent !== String(value)) el.textContent = String(value);
    }
  } catch (_) { /* the next tick retries */ }
}

if (box) {
  refresh();
  setInterval(refresh, 2000);
}
