// Playback statistics, in the studio (a creator's, GET /v1/creator/stats) and on the admin page
// (the platform's, GET /v1/admin/stats): totals for a period, views and watch time over it (a
// uPlot chart with the same figures in a table beside it), one video's audience retention, and
// where and on what it was watched. uPlot is its own file (/assets/uplot.js, the global `uPlot`),
// loaded when the first chart is drawn, so the pages' own scripts stay small.
import type UPlot from "uplot";
import { describe } from "./gate";
import { clock, h, replace } from "./dom";
import { CreatorStats, StatsSums } from "./studio-api";

const PERIODS: [number, string][] = [
  [7, "Last 7 days"],
  [28, "Last 28 days"],
  [90, "Last 90 days"],
];

const percent = (x: number): string => `${(x * 100).toFixed(1)} %`;
const minutes = (ms: number): string => (ms / 60_000).toFixed(1);

export class Stats {
  private readonly period = h("select", { id: "stats-period" });
  private readonly video = h("select", { id: "stats-video" });
  private readonly out = h("div", { id: "stats-out", "aria-live": "polite" });
  private charts: UPlot[] = [];
  private pending: ((u: typeof UPlot) => void)[] = [];

  /**
   * Statistics in `box`, read by `fetch(from, video)`; `videos` (id, title) to choose one from,
   * or none for a single figure of everything.
   */
  constructor(
    box: HTMLElement,
    private readonly fetch: (from: number, video: string) => Promise<CreatorStats>,
    videos: { id: string; title: string }[] | null,
  ) {
    for (const [days, label] of PERIODS) this.period.appendChild(h("option", { value: String(days), selected: days === 28 }, label));
    const controls = h("div", { class: "stats-controls" }, h("label", {}, "Period ", this.period));
    if (videos) {
      this.video.appendChild(h("option", { value: "" }, "All videos"));
      for (const v of videos) this.video.appendChild(h("option", { value: v.id }, v.title || v.id));
      controls.append(h("label", {}, "Video ", this.video));
    }
    replace(box, controls, this.out);
    this.period.onchange = this.video.onchange = () => void this.load();
    void this.load();
  }

  private async load(): Promise<void> {
    const from = Math.floor(Date.now() / 1000) - Number(this.period.value) * 86_400;
    let s: CreatorStats;
    try {
      s = await this.fetch(from, this.video.value);
    } catch (e) {
      replace(this.out, h("p", { role: "alert" }, `Statistics unavailable: ${describe(e)}`));
      return;
    }
    for (const c of this.charts) c.destroy();
    this.charts = [];
    const t = s.totals;
    const figures: [string, string][] = [
      ["Views", t.views.toLocaleString("en")],
      ["Unique viewers", t.unique_viewers.toLocaleString("en")],
      ["Watch time (hours)", (t.watch_ms / 3_600_000).toFixed(1)],
      ["Average view", clock(t.average_view_ms / 1000)],
      ["Plays", t.plays.toLocaleString("en")],
      ["Startup p50 / p95", t.startup_ms.p50 === null ? "–" : `≤ ${t.startup_ms.p50} ms / ≤ ${t.startup_ms.p95} ms`],
      ["Rebuffering", percent(t.rebuffer_ratio)],
      ["Playback errors", t.errors.toLocaleString("en")],
    ];
    const totals = h("dl", { class: "stats-totals", id: "stats-totals" });
    for (const [k, v] of figures) totals.append(h("div", {}, h("dt", {}, k), h("dd", {}, v)));
    const over = this.overTime(s);
    const parts: (HTMLElement | null)[] = [
      totals,
      over,
      s.retention ? this.retention(s.retention) : null,
      table("Countries", ["Country", "Views", "Plays", "Watch minutes"], s.countries, (c) => c.country ?? "Unknown"),
      table("Devices", ["Device", "Views", "Plays", "Watch minutes"], s.devices, (d) => d.device),
    ];
    replace(this.out, ...parts.filter((p): p is HTMLElement => p !== null));
    await this.draw();
  }

  /** Views and watch minutes per hour or day, every step of the period (no data is zero). */
  private overTime(s: CreatorStats): HTMLElement {
    const step = s.granularity === "hour" ? 3600 : 86_400;
    const byStart = new Map(s.series.map((p) => [p.start, p]));
    const xs: number[] = [];
    const views: number[] = [];
    const watch: number[] = [];
    for (let x = s.from - (s.from % step); x < s.to; x += step) {
      const p: StatsSums | undefined = byStart.get(x);
      xs.push(x);
      views.push(p?.views ?? 0);
      watch.push(Number(minutes(p?.watch_ms ?? 0)));
    }
    const chart = h("div", { class: "stats-chart", role: "img", "aria-label": `Views and watch minutes per ${s.granularity}` });
    this.pending.push((uPlot) => {
      const opts: UPlot.Options = {
        width: chartWidth(chart),
        height: 240,
        scales: { x: { time: true }, min: { auto: true } },
        series: [
          {},
          { label: "Views", stroke: "#0b57d0", width: 2 },
          { label: "Watch minutes", stroke: "#b3261e", width: 2, scale: "min" },
        ],
        axes: [{}, { label: "Views" }, { side: 1, scale: "min", label: "Minutes", grid: { show: false } }],
      };
      this.charts.push(new uPlot(opts, [xs, views, watch], chart));
    });
    const rows = xs
      .map((x, i) => [x, views[i], watch[i]] as const)
      .filter(([, v, w]) => v > 0 || w > 0)
      .map(([x, v, w]) =>
        h("tr", {}, h("td", {}, new Date(x * 1000).toLocaleString()), h("td", {}, String(v)), h("td", {}, String(w))),
      );
    const data = h(
      "details",
      {},
      h("summary", {}, "As a table"),
      rows.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", {}, "Views"), h("th", {}, "Watch minutes"))), h("tbody", {}, ...rows))
        : h("p", {}, "Nothing watched in this period."),
    );
    return h("section", { "aria-labelledby": "stats-over-heading" }, h("h3", { id: "stats-over-heading" }, "Over time"), chart, data);
  }

  /** Share of plays still watching at 0 %, 5 % … 95 % of the video. */
  private retention(shares: number[]): HTMLElement {
    const chart = h("div", { class: "stats-chart", role: "img", "aria-label": "Audience retention" });
    const xs = shares.map((_, k) => k * 5);
    this.pending.push((uPlot) => {
      const opts: UPlot.Options = {
        width: chartWidth(chart),
        height: 200,
        scales: { x: { time: false }, y: { range: [0, 100] } },
        series: [{ label: "Point (%)" }, { label: "Still watching (%)", stroke: "#0b57d0", width: 2, fill: "rgba(11,87,208,.1)" }],
        axes: [{ label: "Point of the video (%)" }, { label: "%" }],
      };
      this.charts.push(new uPlot(opts, [xs, shares.map((x) => Math.round(x * 1000) / 10)], chart));
    });
    const list = h("p", { class: "hint", id: "stats-retention" }, shares.map((x, k) => `${k * 5} %: ${percent(x)}`).join(" · "));
    return h("section", { "aria-labelledby": "stats-retention-heading" }, h("h3", { id: "stats-retention-heading" }, "Audience retention"), chart, list);
  }

  /** Charts are drawn once their boxes are in the page (their width is the box's). */
  private async draw(): Promise<void> {
    const uPlot = await loadUplot();
    // Without the library the tables still say it all.
    if (uPlot) for (const f of this.pending.splice(0)) f(uPlot);
  }
}

let uplot: Promise<typeof UPlot | null> | null = null;

/** Runs /assets/uplot.js once; its global `uPlot`, or null if it would not load. */
function loadUplot(): Promise<typeof UPlot | null> {
  uplot ??= new Promise((resolve) => {
    const s = document.createElement("script");
    s.src = "/assets/uplot.js";
    const global = (): typeof UPlot | null => (window as { uPlot?: typeof UPlot }).uPlot ?? null;
    s.onload = () => resolve(global());
    s.onerror = () => resolve(null);
    document.head.appendChild(s);
  });
  return uplot;
}

function chartWidth(el: HTMLElement): number {
  return Math.max(280, Math.min(el.clientWidth || (el.parentElement?.clientWidth ?? 0), 900));
}

function table<T extends StatsSums>(title: string, head: string[], rows: T[], name: (r: T) => string): HTMLElement | null {
  if (!rows.length) return null;
  const sorted = [...rows].sort((a, b) => b.watch_ms - a.watch_ms).slice(0, 10);
  return h(
    "table",
    { class: "stats-table" },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      ...sorted.map((r) =>
        h("tr", {}, h("th", { scope: "row" }, name(r)), h("td", {}, String(r.views)), h("td", {}, String(r.plays)), h("td", {}, minutes(r.watch_ms))),
      ),
    ),
  );
}
