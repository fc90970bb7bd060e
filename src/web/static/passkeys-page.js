// The account's passkey and linked-account pages: adding a passkey on this device, and following a
// provider's authorization page when linking an account.

import { say } from "./enhance.js";
import { register, supported } from "./passkey.js";

const add = document.getElementById("add-passkey");
if (add) {
  if (!supported) add.querySelector("button").disabled = true;
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await register(document.getElementById("passkey-name").value.trim());
      window.location.reload();
    } catch (err) {
      if (err.name !== "NotAllowedError" && err.name !== "AbortError") say(add, err.message, "alert");
    }
  });
}

document.querySelectorAll("form[data-link]").forEach((form) => form.addEventListener("bo:done", (event) => {
  if (event.detail?.authorize_url) {
    event.preventDefault();
    window.location.assign(event.detail.authorize_url);
  }
}));
