// Reporting a video or a comment to the moderators: a reason and an optional note. Shown to
// signed-in viewers on what others posted; the API keeps one open report per reporter and thing.
import { h, replace } from "./dom";
import { describe } from "./gate";
import { authJson } from "./session";

const REASONS: [string, string][] = [
  ["spam", "Spam or a scam"],
  ["abuse", "Harassment or hate"],
  ["copyright", "It copies my work"],
  ["sexual", "Sexual content"],
  ["violence", "Violence or gore"],
  ["other", "Something else"],
];
const MAX_NOTE = 1000;

let forms = 0;

/** A "Report …" disclosure for `target`, with its form; thanks the reporter once sent. */
export function reportControl(target: { video: string } | { comment: string }, label: string): HTMLElement {
  const n = ++forms;
  const reason = h(
    "select",
    { id: `report-${n}-reason`, required: true },
    h("option", { value: "" }, "Choose a reason"),
    ...REASONS.map(([value, text]) => h("option", { value }, text)),
  );
  const note = h("textarea", { id: `report-${n}-note`, maxlength: MAX_NOTE, rows: 2 });
  const problem = h("p", { class: "form-problem", role: "alert" });
  const send = h("button", { type: "submit" }, "Send report");
  const form = h(
    "form",
    { class: "report-form", novalidate: true },
    h("div", { class: "form-field" }, h("label", { for: reason.id }, "Reason"), reason),
    h("div", { class: "form-field" }, h("label", { for: note.id }, "What is wrong (optional)"), note),
    problem,
    send,
  );
  const box = h("div", { class: "report" }, h("details", {}, h("summary", {}, label), form));
  form.onsubmit = async (e) => {
    e.preventDefault();
    if (!reason.value) {
      problem.textContent = "Choose a reason.";
      reason.focus();
      return;
    }
    send.disabled = true;
    try {
      await authJson("POST", "/v1/reports", { ...target, reason: reason.value, note: note.value.trim() });
      replace(box, h("p", { class: "report-done", role: "status" }, "Thanks: the moderators will look at it."));
    } catch (err) {
      problem.textContent = describe(err);
      send.disabled = false;
    }
  };
  return box;
}
