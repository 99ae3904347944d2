// The membership checkout button: the origin opens a Stripe Checkout session, the browser goes
// to Stripe's page and comes back to this site (the session's success address).
import { h } from "./dom";
import { authJson } from "./session";

export function checkoutButton(): HTMLElement {
  const button = h("button", { type: "button", id: "checkout" }, "Become a member");
  const status = h("span", { class: "form-status", role: "alert" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const session = await authJson<{ url: string }>("POST", "/v1/billing/checkout");
      location.assign(session.url);
    } catch (e) {
      status.textContent = e instanceof Error ? e.message : "Checkout could not start.";
      button.disabled = false;
    }
  });
  return h("p", {}, button, " ", status);
}
