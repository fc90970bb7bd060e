// The test gateway's payment page: start the payment, confirm it with the chosen outcome, then
// show the order. Real gateways would open their own window here with `client_params`.

import { api, say, showProblem, messages } from "./enhance.js";

const form = document.getElementById("pay");
if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const order = encodeURIComponent(form.dataset.order);
    const scenario = form.querySelector("[name=scenario]:checked")?.value || "SUCCESS";
    const button = document.getElementById("pay-button");
    button.disabled = true;
    say(form, messages._working || "…", "notice");
    try {
      await api("POST", `/orders/${order}/pay`, {});
      await api("POST", `/orders/${order}/pay/confirm`, { provider_payload: { scenario } });
      window.location.assign(`/account/orders/${order}?paid=1`);
    } catch (err) {
      if (err.status === 401) {
        window.location.assign(`/account/sign-in?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      showProblem(form, err);
    } finally {
      button.disabled = false;
    }
  });
}
