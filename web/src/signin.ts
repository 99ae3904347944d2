// Sign in and sign up (one script, two pages): on success, back to where the visitor came from.
import "./nav";
import { byId } from "./dom";
import { field, onSubmit } from "./forms";
import { safeNext, signIn, signUp } from "./session";

const next = safeNext(new URLSearchParams(location.search).get("next"));
const form = byId<HTMLFormElement>("auth-form");
const status = byId("auth-status");
const other = document.getElementById("auth-other");
if (other instanceof HTMLAnchorElement && next !== "/") {
  other.href = `${other.pathname}?next=${encodeURIComponent(next)}`;
}

onSubmit(form, status, async (data) => {
  const email = field(data, "email");
  const password = field(data, "password");
  if (form.dataset.mode === "signup") {
    if (password.length < 10) return "Passwords are at least 10 characters.";
    if (password !== field(data, "confirm")) return "The two passwords differ.";
    await signUp(email, password, field(data, "display_name"));
  } else {
    await signIn(email, password);
  }
  location.assign(next);
});
