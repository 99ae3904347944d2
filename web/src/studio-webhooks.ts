// The studio's webhooks: the creator's endpoints with their events, each one's delivery log with
// "Send again", a secret rotation and deletion, and a form for a new one. A signing secret is
// shown once, when it is made: the API never lists it.
import { h, replace } from "./dom";
import { describe } from "./gate";
import {
  createEndpoint,
  deleteEndpoint,
  deliveries,
  Delivery,
  Endpoint,
  EventType,
  rotateSecret,
  sendAgain,
} from "./studio-api";
import { deleteWithConfirmation } from "./studio-form";

const EVENTS: [EventType, string][] = [
  ["upload.completed", "Upload completed"],
  ["video.ready", "Ready to play"],
  ["video.failed", "Transcoding failed"],
  ["video.taken_down", "Taken down"],
  ["video.deleted", "Deleted"],
];

const when = (unix: number | null): string => (unix ? new Date(unix * 1000).toLocaleString() : "—");

/** The secret, once, with what to do with it. */
function secretNote(secret: string, rotated: boolean): HTMLElement {
  return h(
    "div",
    { class: "webhook-secret", role: "status" },
    h("p", {}, rotated
      ? "New signing secret (the old one keeps signing beside it for a day). Copy it now: it is not shown again."
      : "Signing secret. Copy it now: it is not shown again."),
    h("code", { class: "secret" }, secret),
  );
}

export class Webhooks {
  private list: Endpoint[];

  constructor(
    initial: Endpoint[],
    private readonly box: HTMLElement,
    private readonly announce: (m: string) => void,
  ) {
    this.list = [...initial];
    this.render();
  }

  private render(secret?: { id: string; value: string; rotated: boolean }): void {
    const items = h("ul", { class: "webhook-list", id: "webhooks" }, ...this.list.map((e) => this.row(e, secret)));
    replace(
      this.box,
      this.list.length ? items : h("p", {}, "No endpoints yet."),
      h("details", { class: "new-webhook" }, h("summary", {}, "New webhook endpoint"), this.form()),
    );
  }

  private form(): HTMLFormElement {
    const url = h("input", { id: "webhook-url", type: "url", required: true, maxlength: 2048, placeholder: "https://" });
    const boxes = EVENTS.map(([type, label]) => {
      const input = h("input", { type: "checkbox", id: `webhook-event-${type}`, value: type, checked: true });
      return { type, el: h("div", { class: "check" }, input, h("label", { for: input.id }, label)), input };
    });
    const problem = h("p", { class: "form-problem", role: "alert" });
    const form = h(
      "form",
      { id: "new-webhook", novalidate: true },
      h("div", { class: "form-field" }, h("label", { for: url.id }, "Endpoint URL"), url),
      h("fieldset", {}, h("legend", {}, "Events"), ...boxes.map((b) => b.el)),
      problem,
      h("button", { type: "submit" }, "Add endpoint"),
    );
    form.onsubmit = async (e) => {
      e.preventDefault();
      const events = boxes.filter((b) => b.input.checked).map((b) => b.type);
      if (!url.value.trim()) {
        problem.textContent = "Enter the URL your server receives webhooks on.";
        url.focus();
        return;
      }
      if (!events.length) {
        problem.textContent = "Choose at least one event.";
        return;
      }
      let made: Endpoint;
      try {
        made = await createEndpoint(url.value.trim(), events);
      } catch (err) {
        problem.textContent = describe(err);
        return;
      }
      const { secret, ...shown } = made;
      this.list.push(shown);
      this.announce(`Added the endpoint ${made.url}.`);
      this.render(secret ? { id: made.id, value: secret, rotated: false } : undefined);
    };
    return form;
  }

  private row(e: Endpoint, secret?: { id: string; value: string; rotated: boolean }): HTMLElement {
    const names = EVENTS.filter(([t]) => e.events.includes(t)).map(([, label]) => label);
    const log = h("div", { class: "delivery-log" });
    const logBox = h("details", { class: "deliveries" }, h("summary", {}, "Deliveries"), log);
    logBox.ontoggle = () => {
      if (logBox.open) void this.showLog(e, log);
    };
    const rotate = h("button", { type: "button" }, "Rotate secret");
    rotate.onclick = async () => {
      rotate.disabled = true;
      try {
        const r = await rotateSecret(e.id);
        this.list = this.list.map((x) => (x.id === e.id ? { ...x, previous_secret_until: r.previous_secret_until } : x));
        this.announce("The endpoint has a new signing secret.");
        this.render(r.secret ? { id: e.id, value: r.secret, rotated: true } : undefined);
      } catch (err) {
        rotate.disabled = false;
        this.announce(describe(err));
      }
    };
    const danger = deleteWithConfirmation(
      "Delete endpoint",
      () => `Delete the endpoint ${e.url}? Its pending deliveries are dropped.`,
      async () => {
        await deleteEndpoint(e.id);
        this.list = this.list.filter((x) => x.id !== e.id);
        this.announce(`Deleted the endpoint ${e.url}.`);
        this.render();
      },
    );
    return h(
      "li",
      { class: "webhook", "data-id": e.id },
      h("h3", {}, h("code", {}, e.url)),
      h("p", { class: "meta" }, `Events: ${names.join(", ")}`),
      e.previous_secret_until * 1000 > Date.now()
        ? h("p", { class: "meta" }, `The previous secret also signs until ${when(e.previous_secret_until)}.`)
        : null,
      secret?.id === e.id ? secretNote(secret.value, secret.rotated) : null,
      logBox,
      h("div", { class: "buttons" }, rotate),
      danger,
    );
  }

  /** The endpoint's latest deliveries in `into`, each with "Send again". */
  private async showLog(e: Endpoint, into: HTMLElement): Promise<void> {
    const refresh = h("button", { type: "button", class: "refresh" }, "Refresh");
    refresh.onclick = () => void this.showLog(e, into);
    let items: Delivery[];
    try {
      ({ items } = await deliveries(e.id));
    } catch (err) {
      replace(into, h("p", { role: "alert" }, describe(err)), refresh);
      return;
    }
    if (!items.length) {
      replace(into, h("p", {}, "Nothing sent yet."), refresh);
      return;
    }
    const rows = items.map((d) => {
      const again = h("button", { type: "button" }, "Send again");
      again.onclick = async () => {
        again.disabled = true;
        try {
          await sendAgain(e.id, d.event);
          this.announce(`${d.type} for ${d.video} is being sent again.`);
          await this.showLog(e, into);
        } catch (err) {
          again.disabled = false;
          this.announce(describe(err));
        }
      };
      const answer = d.last_error ?? (d.last_status ? `HTTP ${d.last_status}` : "—");
      return h(
        "tr",
        { "data-event": d.event, "data-state": d.state },
        h("td", {}, d.type),
        h("td", {}, h("code", {}, d.video)),
        h("td", { class: "state" }, d.state === "pending" ? `pending (next ${when(d.next_attempt_at)})` : d.state),
        h("td", {}, String(d.attempts)),
        h("td", {}, answer),
        h("td", {}, when(d.last_attempt_at)),
        h("td", {}, again),
      );
    });
    replace(
      into,
      h(
        "table",
        { class: "delivery-table" },
        h("caption", {}, "Latest deliveries, newest first"),
        h(
          "thead",
          {},
          h("tr", {}, ...["Event", "Video", "State", "Attempts", "Last answer", "Last attempt", "Action"].map((t) => h("th", { scope: "col" }, t))),
        ),
        h("tbody", {}, ...rows),
      ),
      refresh,
    );
  }
}
