// Live countdowns: <el data-countdown="RFC 3339"> with a [data-countdown-value] child. With
// data-done-reload the page reloads when the moment comes (the sale opens).

function pad(n) { return String(n).padStart(2, "0"); }

function tick(el) {
  const left = Math.max(0, Date.parse(el.dataset.countdown) - Date.now());
  const s = Math.floor(left / 1000);
  const d = Math.floor(s / 86400);
  const text = `${d > 0 ? `${d}d ` : ""}${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  const value = el.querySelector("[data-countdown-value]") || el;
  value.textContent = text;
  if (left === 0 && "doneReload" in el.dataset && !el.dataset.reloaded) {
    el.dataset.reloaded = "1";
    setTimeout(() => window.location.reload(), 500 + Math.random() * 1500);
  }
  return left > 0;
}

for (const el of document.querySelectorAll("[data-countdown]")) {
  if (tick(el)) {
    const timer = setInterval(() => { if (!tick(el)) clearInterval(timer); }, 1000);
  }
}
