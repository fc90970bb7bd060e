// Check-in: a typed code or a QR scanned with the camera (where BarcodeDetector exists) is sent
// to POST /events/{id}/check-in and the answer is shown large: OK, ALREADY_USED with its time,
// INVALID or REFUNDED.

const form = document.getElementById("check-form");
const data = JSON.parse(document.getElementById("check-data").textContent);
const t = data.texts;
const result = document.getElementById("check-result");
const codeInput = document.getElementById("code");
const scanButton = document.getElementById("scan");
const video = document.getElementById("camera");
const CLASSES = { OK: "ok", ALREADY_USED: "used", INVALID: "bad", REFUNDED: "bad" };
let busy = false;

function timeOf(iso) {
  return new Intl.DateTimeFormat(data.lang === "ko" ? "ko-KR" : "en-US", {
    dateStyle: "medium", timeStyle: "medium", timeZone: data.timezone,
  }).format(new Date(iso));
}

function show(answer) {
  const big = document.createElement("strong");
  big.textContent = t[answer.result] || answer.result;
  const parts = [big];
  if (answer.ticket) {
    const what = document.createElement("span");
    what.textContent = [answer.ticket.name, answer.ticket.seat_label].filter(Boolean).join(" · ");
    parts.push(what);
  }
  if (answer.result === "ALREADY_USED" && answer.used_at) {
    const when = document.createElement("span");
    when.textContent = `${t.used_at}: ${timeOf(answer.used_at)}`;
    parts.push(when);
  }
  result.className = `check-result ${CLASSES[answer.result] || "bad"}`;
  result.replaceChildren(...parts);
  result.hidden = false;
  codeInput.value = "";
  codeInput.focus();
}

form.addEventListener("bo:done", (event) => {
  event.preventDefault();
  form.querySelector(":scope > [data-say]")?.setAttribute("hidden", "");
  show(event.detail);
  busy = false;
});
form.addEventListener("bo:failed", () => { busy = false; });

// --- camera -----------------------------------------------------------------------------
let stream = null;
async function scanLoop(detector) {
  if (!stream) return;
  try {
    const codes = await detector.detect(video);
    if (codes.length && !busy) {
      busy = true;
      codeInput.value = codes[0].rawValue;
      form.requestSubmit();
      // One scan per second at most, so a code held in front of the camera is sent once.
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (_) { /* a frame that cannot be read */ }
  requestAnimationFrame(() => scanLoop(detector));
}

async function toggleCamera() {
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
    scanButton.textContent = t.scan;
    return;
  }
  try {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    scanButton.textContent = t.stop_scan;
    scanLoop(detector);
  } catch (_) {
    stream = null;
    scanButton.hidden = true;
    const note = document.createElement("p");
    note.className = "notice";
    note.textContent = t.no_camera;
    form.append(note);
  }
}

if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
  scanButton.hidden = false;
  scanButton.addEventListener("click", toggleCamera);
} else {
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = t.no_camera;
  form.append(note);
}
