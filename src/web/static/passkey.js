// Passkeys in the browser: sign-in (conditional UI in the e-mail field's autofill, and an explicit
// button) and registration (used by the account's passkey page). The ceremony state lives on the
// server; this module only converts between WebAuthn's ArrayBuffers and the API's base64url JSON.

import { api, say } from "./enhance.js";

function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Whether this browser can use passkeys at all. */
export const supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

function requestOptions(options) {
  const pk = { ...options.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = pk.allowCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
  return pk;
}

function creationOptions(options) {
  const pk = { ...options.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  if (pk.excludeCredentials) pk.excludeCredentials = pk.excludeCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
  return pk;
}

function assertionJSON(cred) {
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    response: {
      authenticatorData: toB64url(cred.response.authenticatorData),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      signature: toB64url(cred.response.signature),
      userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
    },
  };
}

function attestationJSON(cred) {
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    response: {
      attestationObject: toB64url(cred.response.attestationObject),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    },
  };
}

/** Signs in with a discoverable passkey; `mediation` "conditional" waits in the autofill. */
export async function signIn(mediation, signal) {
  const started = await api("POST", "/auth/webauthn/authenticate");
  const cred = await navigator.credentials.get({ publicKey: requestOptions(started.options), mediation, signal });
  return api("POST", "/auth/webauthn/authenticate/finish?session=cookie", {
    ceremony_id: started.ceremony_id,
    credential: assertionJSON(cred),
  });
}

/** Registers a new passkey for the signed-in user. */
export async function register(name) {
  const started = await api("POST", "/auth/webauthn/register");
  const cred = await navigator.credentials.create({ publicKey: creationOptions(started.options) });
  return api("POST", "/auth/webauthn/register/finish", {
    ceremony_id: started.ceremony_id,
    name: name || undefined,
    credential: attestationJSON(cred),
  });
}

function rememberLang(result) {
  const locale = result?.user?.locale;
  if (locale) document.cookie = `lang=${locale}; Path=/; SameSite=Lax; Max-Age=31536000`;
}

// The sign-in page: a button, and the passkey offered in the e-mail field's autofill.
const button = document.getElementById("passkey-sign-in");
if (button) {
  const form = document.getElementById("sign-in");
  let conditional = null;
  if (!supported) {
    button.disabled = true;
    button.title = button.dataset.unsupported;
  } else {
    button.addEventListener("click", async () => {
      conditional?.abort();
      try {
        rememberLang(await signIn("optional"));
        window.location.assign(button.dataset.next || "/");
      } catch (err) {
        if (err.name !== "NotAllowedError" && err.name !== "AbortError") say(form, err.message, "alert");
      }
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(async (ok) => {
        if (!ok) return;
        conditional = new AbortController();
        try {
          rememberLang(await signIn("conditional", conditional.signal));
          window.location.assign(button.dataset.next || "/");
        } catch (_) { /* dismissed, aborted, or the password form was used */ }
      });
    }
  }
}
