// Time from navigation to the first `playing` event of the watch page, in Chromium, against one
// running edge (loopback). Each run is a new browser context (empty HTTP cache, no resume
// position); the first run also finds the edge's cache cold. Prints one JSON line.
//   EDGE_URL, RUNTIME, RUNS (5), VIDEO (demo-free), COUNTRY_HEADER, COUNTRY
import { launch } from "../../tests/browser/chromium.mjs";

const base = process.env.EDGE_URL;
const runs = Number(process.env.RUNS ?? 5);
const video = process.env.VIDEO ?? "demo-free";
const headers = process.env.COUNTRY_HEADER ? { [process.env.COUNTRY_HEADER]: process.env.COUNTRY } : {};
const browser = await launch();
const times = [];
let breakdown = {};
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ extraHTTPHeaders: headers });
    await context.addInitScript(() => {
      document.addEventListener("playing", () => {
        window.__firstPlaying ??= performance.now();
      }, true);
    });
    const page = await context.newPage();
    await page.goto(`${base}/watch?v=${video}`);
    await page.waitForFunction(() => window.__firstPlaying !== undefined, null, { timeout: 30_000 });
    times.push(await page.evaluate(() => window.__firstPlaying));
    // Where the last run's time went: when each request of the way to the first frame ended.
    breakdown = await page.evaluate(() => {
      const at = {};
      const name = (u) => {
        const p = new URL(u).pathname;
        if (p.endsWith("/playback")) return "playback";
        if (p.startsWith("/v1/videos/") && !p.includes("/comments")) return "details";
        if (p.startsWith("/assets/")) return p.slice(8);
        if (p.startsWith("/hls/")) {
          const file = p.split("/").slice(4).join("/");
          return /\.(ts|m4s|mp4)$/.test(file) ? "first segment" : file;
        }
        return null;
      };
      const nav = performance.getEntriesByType("navigation")[0];
      at["html"] = Math.round(nav.responseEnd);
      for (const e of performance.getEntriesByType("resource")) {
        const n = name(e.name);
        if (n && at[n] === undefined) at[n] = Math.round(e.responseEnd);
      }
      at["playing"] = Math.round(window.__firstPlaying);
      return at;
    });
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...times].sort((a, b) => a - b);
const ms = (x) => Math.round(x);
console.log(JSON.stringify({
  runtime: process.env.RUNTIME,
  runs,
  first_ms: ms(times[0]),
  median_ms: ms(sorted[Math.floor(sorted.length / 2)]),
  min_ms: ms(sorted[0]),
  max_ms: ms(sorted[sorted.length - 1]),
  last_run_ms_after_navigation: breakdown,
}));
