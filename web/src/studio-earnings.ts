// The studio's Earnings section: the closed months with the creator's totals; a month's
// statement with what it was computed from (the membership pool and the platform's watch time,
// each video's members' watch time and ad impressions), so the creator can redo the sums; and
// its CSV. Amounts are integer minor units from the API, shown in the month's currency.
import { seg } from "./api";
import { h, replace } from "./dom";
import { authFetch, authJson } from "./session";
import { describe } from "./gate";

interface MonthTotal {
  month: string;
  currency: string;
  membership: number;
  ads: number;
  total: number;
}

interface MonthFigures {
  month: string;
  currency: string;
  share_bps: number;
  membership_gross: number;
  membership_platform: number;
  membership_pool: number;
  members_watch_ms: number;
  ad_gross: number;
}

interface Statement {
  members_watch_ms: number;
  membership: number;
  ad_impressions: number;
  ad_gross_milli: number;
  ad_gross: number;
  ad_platform: number;
  ad_net: number;
  total: number;
}

interface Line {
  video_id: string;
  title: string | null;
  members_watch_ms: number;
  ad_impressions: number;
  ad_gross_milli: number;
}

/** Digits after the point in `currency`'s major unit (2 for euros, 0 for yen). */
export const digits = (currency: string): number =>
  new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;

/** `minor` units of `currency` as the viewer's locale writes money. */
export function money(minor: number, currency: string): string {
  const major = minor / 10 ** digits(currency);
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(major);
}

const hours = (ms: number): string => `${(ms / 3_600_000).toFixed(1)} h`;

export class Earnings {
  private readonly list = h("ul", { class: "earnings-months", "aria-label": "Closed months" });
  private readonly detail = h("div", { id: "earnings-statement" });
  private readonly status = h("p", { role: "status" });

  constructor(box: HTMLElement) {
    replace(box, this.status, this.list, this.detail);
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const { items } = await authJson<{ items: MonthTotal[] }>("GET", "/v1/creator/earnings");
      this.status.textContent = items.length ? "" : "No month has closed yet: a month closes a few days after it ends.";
      replace(
        this.list,
        ...items.map((m) => {
          const open = h("button", { type: "button" }, `${m.month}: ${money(m.total, m.currency)}`);
          open.onclick = () => void this.show(m.month);
          return h("li", {}, open);
        }),
      );
    } catch (e) {
      this.status.textContent = `Earnings could not be loaded: ${describe(e)}`;
    }
  }

  private async show(month: string): Promise<void> {
    let r: { month: MonthFigures; statement: Statement; videos: Line[] };
    try {
      r = await authJson("GET", `/v1/creator/earnings/${seg(month)}`);
    } catch (e) {
      this.status.textContent = `That statement could not be loaded: ${describe(e)}`;
      return;
    }
    const { month: f, statement: s } = r;
    const m = (n: number): string => money(n, f.currency);
    const share = `${f.share_bps / 100} %`;
    const row = (label: string, value: string): HTMLElement => h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value));
    const csv = h("button", { type: "button", id: "earnings-csv" }, "Download CSV");
    csv.onclick = () => void this.download(month, f.currency);
    replace(
      this.detail,
      h("h3", {}, `Statement for ${month}`),
      h(
        "table",
        { class: "statement" },
        h("caption", {}, "Memberships"),
        h("tbody", {},
          row("Members paid (platform)", m(f.membership_gross)),
          row(`Platform's share (${share})`, m(f.membership_platform)),
          row("Pool for creators", m(f.membership_pool)),
          row("Members' watch time, all creators", hours(f.members_watch_ms)),
          row("Your members' watch time", hours(s.members_watch_ms)),
          row("Your share of the pool", m(s.membership)),
        ),
      ),
      h(
        "table",
        { class: "statement" },
        h("caption", {}, "Ads"),
        h("tbody", {},
          row("Impressions on your videos", String(s.ad_impressions)),
          row("What they earned", m(s.ad_gross)),
          row(`Platform's share (${share})`, m(s.ad_platform)),
          row("Yours", m(s.ad_net)),
        ),
      ),
      h("p", { class: "statement-total" }, "Total: ", h("strong", { id: "earnings-total" }, m(s.total))),
      r.videos.length
        ? h(
            "table",
            { class: "statement" },
            h("caption", {}, "By video"),
            h("thead", {}, h("tr", {}, h("th", {}, "Video"), h("th", {}, "Members' watch time"), h("th", {}, "Ad impressions"))),
            h("tbody", {}, ...r.videos.map((v) =>
              h("tr", {}, h("td", {}, v.title ?? v.video_id), h("td", {}, hours(v.members_watch_ms)), h("td", {}, String(v.ad_impressions))),
            )),
          )
        : h("p", {}, "None of your videos earned anything that month."),
      csv,
    );
  }

  /** The statement's CSV, fetched with the session (a plain link would carry no token). */
  private async download(month: string, currency: string): Promise<void> {
    try {
      const r = await authFetch(`/v1/creator/earnings/${seg(month)}/csv`);
      if (!r.ok) throw new Error(`the server answered ${r.status}`);
      const url = URL.createObjectURL(await r.blob());
      const a = h("a", { href: url, download: `earnings-${month}-${currency}.csv` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      this.status.textContent = `The CSV could not be downloaded: ${describe(e)}`;
    }
  }
}
