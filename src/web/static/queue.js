// The waiting room page: join, live place over the WebSocket (reconnecting with back-off and a
// fresh ticket), then on admission keep the admission token for this tab and go to the shop.

import { api, say } from "./enhance.js";

const data = JSON.parse(document.getElementById("queue-data").textContent);
const t = data.texts;
const event = encodeURIComponent(data.event_id);
const box = document.getElementById("queue");
const stateLine = document.getElementById("queue-state");
const figures = document.getElementById("queue-figures");
const bar = document.getElementById("queue-bar");
const leaveButton = document.getElementById("queue-leave");
const rejoinButton = document.getElementById("queue-rejoin");
const admissionKey = `bo-admission:${data.event_id}`;
let socket = null;
let retry = 0;
let done = false;
let firstAhead = null;
let shownPosition = Infinity;

function eta(seconds) {
  if (seconds == null) return "—";
  const m = Math.floor(seconds / 60);
  return m > 0 ? `${m}${t.minutes} ${seconds % 60}${t.seconds}` : `${seconds}${t.seconds}`;
}

function show(place) {
  if (place.lane === "VIP") document.getElementById("queue-lane").hidden = false;
  if (place.position == null) {
    // Pre-queue: the order is drawn at opening.
    stateLine.textContent = t.queue_pre;
    figures.hidden = true;
    return;
  }
  // A shown place never goes back, whatever order messages arrive in.
  if (place.position > shownPosition) return;
  shownPosition = place.position;
  figures.hidden = false;
  stateLine.textContent = "";
  document.getElementById("queue-position").textContent = place.position.toLocaleString();
  document.getElementById("queue-ahead").textContent = (place.ahead ?? 0).toLocaleString();
  document.getElementById("queue-eta").textContent = eta(place.eta_seconds);
  if (firstAhead === null) firstAhead = Math.max(1, place.ahead ?? 1);
  const progress = 1 - Math.min(1, (place.ahead ?? 0) / firstAhead);
  bar.style.width = `${Math.round(progress * 100)}%`;
}

function admitted(token, expiresAt) {
  if (done) return;
  done = true;
  sessionStorage.setItem(admissionKey, JSON.stringify({ token, expires_at: expiresAt }));
  stateLine.textContent = t.queue_admitted;
  bar.style.width = "100%";
  socket?.close();
  window.location.assign(`/e/${event}/buy`);
}

async function sha256Bits(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let bits = 0;
  for (const b of digest) {
    if (b === 0) { bits += 8; continue; }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

// The optional proof-of-work before joining (see the server's ChallengeProvider).
async function solve(bits) {
  stateLine.textContent = t.queue_solving;
  for (let nonce = 0; ; nonce++) {
    if ((await sha256Bits(`${data.user_id}:${data.event_id}:${nonce}`)) >= bits) return String(nonce);
  }
}

async function join() {
  try {
    return await api("POST", "/queue/join", { event_id: data.event_id });
  } catch (err) {
    const bits = err.body?.code === "challenge_required" && /(\d+) zero bits/.exec(err.body.detail || "");
    if (!bits) throw err;
    const nonce = await solve(Number(bits[1]));
    return api("POST", "/queue/join", { event_id: data.event_id }, { "X-Queue-Challenge": nonce });
  }
}

async function status() {
  const place = await api("GET", `/queue/status?event_id=${event}`);
  if (place.status === "ADMITTED" && place.admission_token) {
    admitted(place.admission_token, place.admission_expires_at);
  } else {
    show(place);
  }
  return place;
}

function connect() {
  if (done) return;
  api("POST", "/queue/ws-ticket", { event_id: data.event_id })
    .then(({ ticket }) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/queue/ws?event_id=${event}&ticket=${encodeURIComponent(ticket)}`);
      socket.onopen = () => { retry = 0; };
      socket.onmessage = (m) => {
        let msg;
        try { msg = JSON.parse(m.data); } catch (_) { return; }
        if (msg.type === "position") show(msg);
        else if (msg.type === "admitted") admitted(msg.admission_token, msg.admission_expires_at);
        else if (msg.type === "paused") stateLine.textContent = t.queue_paused;
        else if (msg.type === "expired") ended(t.queue_expired);
        else if (msg.type === "closed" && msg.reason !== "shutdown") {
          if (msg.reason === "left") ended(t.queue_left);
          else if (msg.reason === "abandoned" || msg.reason === "not_in_queue") ended(t.queue_expired);
        }
      };
      socket.onclose = () => {
        if (done) return;
        say(box, t.queue_reconnecting, "notice");
        reconnect();
      };
    })
    .catch((err) => {
      if (err.status === 409 || err.status === 404) {
        ended(err.message);
        return;
      }
      say(box, t.queue_reconnecting, "notice");
      reconnect();
    });
}

function reconnect() {
  retry += 1;
  // Back-off with jitter so a restarted instance is not hit by everyone in the same second.
  const wait = Math.min(15000, 500 * 2 ** Math.min(retry, 5)) * (0.5 + Math.random());
  setTimeout(async () => {
    try {
      await status();
      say(box, "", "notice");
    } catch (_) { /* the socket attempt below reports */ }
    connect();
  }, wait);
}

function ended(text) {
  done = true;
  socket?.close();
  sessionStorage.removeItem(admissionKey);
  stateLine.textContent = text;
  figures.hidden = true;
  leaveButton.hidden = true;
  rejoinButton.hidden = false;
}

leaveButton.addEventListener("click", async () => {
  try {
    await api("DELETE", `/queue/leave?event_id=${event}`);
  } catch (_) { /* leaving twice is fine */ }
  ended(t.queue_left);
});

rejoinButton.addEventListener("click", () => window.location.reload());

async function start() {
  const slot = JSON.parse(sessionStorage.getItem(admissionKey) || "null");
  if (slot && Date.parse(slot.expires_at) > Date.now()) {
    window.location.assign(`/e/${event}/buy`);
    return;
  }
  try {
    const place = await join();
    show(place);
    await status();
    connect();
  } catch (err) {
    if (err.body?.code === "queue_not_enabled") {
      window.location.assign(`/e/${event}/buy`);
      return;
    }
    say(box, err.message, "alert");
    if (err.status >= 500 || err.status === 0) reconnect();
  }
}

start();
