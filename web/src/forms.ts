// Form plumbing the account pages share: one status line per form, the button disabled while a
// call runs, the API's message shown as text.
import { ApiError } from "./api";

/** Runs `action` on submit; its error's message goes to `status` (a `role=alert` element). */
export function onSubmit(
  form: HTMLFormElement,
  status: HTMLElement,
  action: (data: FormData) => Promise<string | void>,
): void {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
    if (button) button.disabled = true;
    status.textContent = "";
    try {
      const done = await action(new FormData(form));
      if (done) status.textContent = done;
    } catch (err) {
      status.textContent = err instanceof ApiError ? err.message : "Something went wrong. Try again.";
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** A form field's text. */
export function field(data: FormData, name: string): string {
  const v = data.get(name);
  return typeof v === "string" ? v : "";
}
