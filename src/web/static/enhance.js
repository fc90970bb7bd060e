// Forms that talk to the JSON API: every <form data-api="/path"> is sent as JSON with the page's
// CSRF token, problems are shown next to the fields they name, and success goes to data-next.
// Other modules import { api, say, messages } from here.

const meta = document.querySelector('meta[name="csrf-token"]');
const dataBlock = document.getElementById("bo-messages");

/** Localised sentences by error code (from the page). */
export const messages = dataBlock ? JSON.parse(dataBlock.textContent) : {};

/** The CSRF token of this page's session ("" when signed out). */
export function csrfToken() {
  return meta ? meta.content : "";
}

/** A problem+json error thrown by api(). */
export class Problem extends Error {
  constructor(status, body) {
    super((body && (messages[body.code] || body.detail)) || messages._generic || "Error");
    this.status = status;
    this.body = body || {};
  }
}

/** Calls the JSON API; resolves with the parsed body (or null), rejects with a Problem. */
export async function api(method, url, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined && body !== null) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (_) {
    throw new Problem(0, { code: "_network", detail: messages._network });
  }
  const text = await res.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch (_) { parsed = { detail: text }; }
  }
  if (!res.ok) {
    const problem = new Problem(res.status, parsed);
    problem.retryAfter = res.headers.get("Retry-After");
    throw problem;
  }
  return parsed;
}

/** Shows a message in a live region inside `where` (kind: "alert" | "success" | "notice"). */
export function say(where, text, kind = "alert") {
  let box = where.querySelector(":scope > [data-say]");
  if (!box) {
    box = document.createElement("div");
    box.dataset.say = "";
    where.prepend(box);
  }
  box.className = kind;
  box.setAttribute("role", kind === "alert" ? "alert" : "status");
  box.textContent = text;
  box.hidden = !text;
  return box;
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  keys.forEach((key, i) => {
    const last = i === keys.length - 1;
    const nextIsIndex = !last && /^\d+$/.test(keys[i + 1]);
    if (last) {
      node[key] = value;
    } else {
      if (node[key] === undefined) node[key] = nextIsIndex ? [] : {};
      node = node[key];
    }
  });
}

function valueOf(el) {
  const type = el.dataset.type || (el.type === "checkbox" ? "bool" : "string");
  const raw = el.value;
  switch (type) {
    case "bool": return el.checked;
    case "int": return raw.trim() === "" ? undefined : Number.parseInt(raw, 10);
    case "number": return raw.trim() === "" ? undefined : Number(raw);
    case "json": return raw.trim() === "" ? undefined : JSON.parse(raw);
    case "list": return raw.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
    case "datetime": return raw ? new Date(raw).toISOString() : undefined;
    case "nullable": return raw.trim() === "" ? null : raw;
    default: return raw === "" && !("keepEmpty" in el.dataset) ? undefined : raw;
  }
}

/** The JSON body a form describes. */
export function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || "skip" in el.dataset || el.name === "csrf_token") continue;
    if (el.type === "radio" && !el.checked) continue;
    if (el.type === "checkbox" && el.dataset.type === "list-item") {
      if (!el.checked) continue;
      const list = el.name.split(".").reduce((n, k) => (n ? n[k] : undefined), body) || [];
      list.push(el.value);
      setPath(body, el.name, list);
      continue;
    }
    const value = valueOf(el);
    if (value !== undefined) setPath(body, el.name, value);
  }
  return body;
}

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

/** Marks the fields a problem names and says the problem at the top of the form. */
export function showProblem(form, problem) {
  clearErrors(form);
  let text = problem.message;
  if (problem.retryAfter) text += ` (${problem.retryAfter}s)`;
  say(form, text, "alert");
  for (const fe of problem.body.errors || []) {
    const field = form.querySelector(`[name="${CSS.escape(fe.field)}"]`);
    if (!field) continue;
    field.setAttribute("aria-invalid", "true");
    const note = document.createElement("span");
    note.className = "field-error";
    note.id = `err-${fe.field.replace(/\W/g, "-")}`;
    note.textContent = fe.message;
    field.after(note);
    field.setAttribute("aria-describedby", note.id);
  }
}

function fill(template, data) {
  return template.replace(/\{([\w.]+)\}/g, (_, path) =>
    encodeURIComponent(path.split(".").reduce((n, k) => (n == null ? n : n[k]), data) ?? ""));
}

function idempotencyKey(form) {
  if (!form.dataset.idempotencyKey) form.dataset.idempotencyKey = crypto.randomUUID();
  return form.dataset.idempotencyKey;
}

async function submit(form, submitter) {
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const method = (form.dataset.method || "POST").toUpperCase();
  let url = form.dataset.api;
  let body;
  try {
    body = formBody(form);
  } catch (_) {
    say(form, messages.validation_failed || "Invalid input", "alert");
    return;
  }
  // GET and DELETE send their fields as the query, unless the form says its API wants a body.
  if (((method === "GET" || method === "DELETE") && !("body" in form.dataset)) || "query" in form.dataset) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(body)) params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
    body = undefined;
  }
  const headers = {};
  if ("idempotent" in form.dataset) headers["Idempotency-Key"] = idempotencyKey(form);
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => b.setAttribute("aria-busy", "true"));
  if (submitter) submitter.disabled = true;
  clearErrors(form);
  say(form, messages._working || "…", "notice");
  try {
    const result = await api(method, url, body, headers);
    const done = new CustomEvent("bo:done", { detail: result, cancelable: true });
    if (!form.dispatchEvent(done)) return;
    if ("rememberLang" in form.dataset) {
      const locale = (result && (result.locale || (result.user && result.user.locale))) || body?.locale;
      if (locale) document.cookie = `lang=${locale}; Path=/; SameSite=Lax; Max-Age=31536000`;
    }
    const next = form.dataset.next;
    if (next === "reload") window.location.reload();
    // Placeholders come from the answer, else from what was sent (e.g. the e-mail signed up with).
    else if (next) window.location.assign(fill(next, { ...(body || {}), ...(result || {}) }));
    else say(form, form.dataset.saved || messages._saved || "OK", "success");
  } catch (err) {
    if (!(err instanceof Problem)) throw err;
    if (err.status === 401 && !("public" in form.dataset)) {
      window.location.assign(`/account/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    form.dispatchEvent(new CustomEvent("bo:failed", { detail: err }));
    showProblem(form, err);
  } finally {
    buttons.forEach((b) => b.removeAttribute("aria-busy"));
    if (submitter) submitter.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  submit(form, event.submitter);
});

// The language switch: signed in, the choice is saved in the profile too (so it follows the person
// to other browsers), then the link sets this browser's cookie. Signed out, just the link.
document.addEventListener("click", async (event) => {
  const link = event.target.closest?.("a[data-lang-switch]");
  if (!link || !csrfToken()) return;
  event.preventDefault();
  try {
    await api("PATCH", "/auth/me", { locale: link.dataset.langSwitch });
  } catch (_) { /* the cookie still switches this browser */ }
  window.location.assign(link.href);
});

// Forms marked data-api do nothing without this module; tell people with scripts off.
document.documentElement.classList.add("js");
