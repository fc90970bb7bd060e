// Organizer forms: `datetime-local` fields arrive written in the event's time zone (readable
// without JavaScript); enhance.js reads them back in the browser's, so show them in the browser's.

function pad(n) {
  return String(n).padStart(2, "0");
}

for (const el of document.querySelectorAll('input[type="datetime-local"][data-offset]')) {
  if (!el.value || !el.dataset.offset) continue;
  const at = new Date(`${el.value}:00${el.dataset.offset}`);
  if (Number.isNaN(at.getTime())) continue;
  el.value = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}
