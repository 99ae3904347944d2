// The admin page's Ad campaigns section: every campaign with what its ads' tracking reported
// (impressions today and in all, completions, skips, clicks, spend), paused or resumed with a
// button; and a form that starts one. Prices are typed in the currency's major unit and sent
// in minor units; the API checks every field and says which one is wrong.
import { seg } from "./api";
import { h, replace } from "./dom";
import { describe } from "./gate";
import { authJson } from "./session";
import { digits, money } from "./studio-earnings";

interface Campaign {
  id: string;
  name: string;
  creative_id: string;
  click_url: string;
  countries: string[];
  categories: string[];
  ends_at: number;
  daily_cap: number;
  frequency_cap: number;
  cpm_minor: number;
  currency: string;
  status: "active" | "paused";
  paused_until: number;
  figures: { events: Record<string, number>; impressions_today: number; spend_minor: number };
}


const list = (s: string): string[] =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

export class AdCampaigns {
  private readonly rows = h("ul", { id: "campaigns", class: "admin-list" });
  private readonly status = h("p", { id: "campaigns-status", role: "status" });

  constructor(
    private readonly box: HTMLElement,
    private readonly say: (m: string) => void,
  ) {
    replace(box, this.status, this.rows);
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const { items, currency } = await authJson<{ items: Campaign[]; currency: string }>("GET", "/v1/ads/campaigns");
      this.status.textContent = items.length ? "" : "No campaigns yet.";
      replace(this.rows, ...items.map((c) => this.row(c)));
      this.box.prepend(this.form(currency));
    } catch (e) {
      this.status.textContent = `Campaigns could not be loaded: ${describe(e)}`;
    }
  }

  private row(c: Campaign): HTMLElement {
    const e = c.figures.events;
    const capped = c.paused_until * 1000 > Date.now();
    const state = c.status === "paused" ? "paused" : capped ? "daily cap reached" : "active";
    const toggle = h("button", { type: "button" }, c.status === "paused" ? "Resume" : "Pause");
    const note = h("p", { class: "row-status", role: "status" });
    toggle.onclick = async () => {
      toggle.disabled = true;
      try {
        const next = c.status === "paused" ? "active" : "paused";
        const updated = await authJson<Campaign>("PATCH", `/v1/ads/campaigns/${seg(c.id)}`, { status: next });
        this.rows.replaceChild(this.row(updated), li);
        this.say(`Campaign “${c.name}” ${next === "paused" ? "paused" : "resumed"}.`);
      } catch (err) {
        note.textContent = describe(err);
        toggle.disabled = false;
      }
    };
    const li = h(
      "li",
      { class: "campaign-row", "data-id": c.id },
      h("strong", {}, c.name),
      " ",
      h("span", { class: "campaign-state" }, state),
      h(
        "p",
        { class: "meta" },
        `Creative ${c.creative_id} · ${money(c.cpm_minor, c.currency)} per thousand · ${c.daily_cap} a day, ${c.frequency_cap} per viewer · until ${new Date(c.ends_at * 1000).toLocaleDateString()}`,
        c.countries.length ? ` · ${c.countries.join(", ")}` : "",
        c.categories.length ? ` · ${c.categories.join(", ")}` : "",
      ),
      h(
        "p",
        { class: "campaign-figures" },
        `${e.impression ?? 0} impressions (${c.figures.impressions_today} today), ${e.complete ?? 0} completed, ${e.skip ?? 0} skipped, ${e.click ?? 0} clicks · spent ${money(c.figures.spend_minor, c.currency)}`,
      ),
      toggle,
      note,
    );
    return li;
  }

  private form(currency: string): HTMLElement {
    const field = (label: string, input: HTMLInputElement): HTMLElement => h("label", {}, label, input);
    const name = h("input", { name: "name", maxlength: "100", required: true });
    const creative = h("input", { name: "creative", maxlength: "64", required: true });
    const url = h("input", { name: "click_url", type: "url", maxlength: "512", required: true, placeholder: "https://" });
    const countries = h("input", { name: "countries", placeholder: "FR, BE (empty: everywhere)" });
    const categories = h("input", { name: "categories", placeholder: "music (empty: any)" });
    const ends = h("input", { name: "ends", type: "date", required: true });
    const cap = h("input", { name: "daily_cap", type: "number", min: "1", value: "1000", required: true });
    const freq = h("input", { name: "frequency_cap", type: "number", min: "1", max: "100", value: "3", required: true });
    const price = h("input", { name: "cpm", type: "number", value: "5", required: true });
    price.step = String(10 ** -digits(currency));
    price.min = price.step;
    const out = h("p", { class: "row-status", role: "status" });
    const form = h(
      "form",
      { id: "new-campaign", class: "stacked-form", novalidate: true },
      field("Name", name),
      field("Creative (a public video's id)", creative),
      field("Click-through URL", url),
      field("Countries", countries),
      field("Categories", categories),
      field("Ends on", ends),
      field("Impressions a day", cap),
      field("Ads per viewer a day", freq),
      field(`Price per thousand impressions (${currency.toUpperCase()})`, price),
      h("button", { type: "submit" }, "Start campaign"),
      out,
    );
    form.onsubmit = async (e) => {
      e.preventDefault();
      const endsAt = Date.parse(`${ends.value}T23:59:59Z`) / 1000;
      if (!name.value.trim() || !creative.value.trim() || !url.value.trim() || !Number.isFinite(endsAt)) {
        out.textContent = "Name, creative, click-through URL and end date are needed.";
        return;
      }
      try {
        const c = await authJson<Campaign>("POST", "/v1/ads/campaigns", {
          name: name.value,
          creative: creative.value.trim(),
          click_url: url.value.trim(),
          countries: list(countries.value).map((x) => x.toUpperCase()),
          categories: list(categories.value),
          ends_at: endsAt,
          daily_cap: Number(cap.value),
          frequency_cap: Number(freq.value),
          cpm_minor: Math.round(Number(price.value) * 10 ** digits(currency)),
        });
        out.textContent = "";
        this.rows.prepend(this.row(c));
        this.status.textContent = "";
        this.say(`Campaign “${c.name}” started.`);
        form.reset();
      } catch (err) {
        out.textContent = describe(err);
      }
    };
    return h("details", { id: "new-campaign-box" }, h("summary", {}, "Start a campaign"), form);
  }
}
