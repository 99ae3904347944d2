// What every walk through the web app in Chromium shares (viewer.mjs, social.mjs, account.mjs,
// and through users.mjs studio.mjs and admin.mjs): the settings from the environment, a browser
// page that records every document's and asset's headers and every CSP violation, axe-core,
// screenshots, and the steps of finding and playing a video. Environment (set by
// tests/tests/web.rs):
//   EDGE_URL        the edge (http://127.0.0.1:port)
//   RUNTIME         a name for the screenshots (wrangler, spin, spin-up)
//   SCREENSHOT_DIR  where the screenshots go (created)
//   COUNTRY_HEADER, COUNTRY   the trusted country header the Spin edge reads, and its value
import { launch } from "./chromium.mjs";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

/** What desktop Chromium on Linux says it is. */
export const BROWSER_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

export const fail = (s) => {
  throw new Error(s);
};

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs `body(w)` with a fresh browser and page; `who` names the walk in its log lines. `w` has
 * `base`, `runtime`, `page`, `context`, `step`, `axe(name)`, `shot(name)`, `cspClean(name)` and
 * `loaded` (every document and asset of ours seen: url, status, headers).
 */
export async function walk(who, body) {
  const browser = await launch();
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      extraHTTPHeaders: { [env("COUNTRY_HEADER")]: env("COUNTRY") },
      // A person's browser: headless Chromium names itself HeadlessChrome, and the edge drops
      // the playback reports of headless browsers as a bot's.
      userAgent: BROWSER_UA,
    });
    const page = await context.newPage();
    await body({ context, ...(await watched(who, context, page)) });
  } finally {
    await browser.close();
  }
}

/**
 * The helpers of one page of a walk (`who`): `base`, `runtime`, `page`, `step`, `axe(name)`,
 * `shot(name)`, `cspClean(name)` and `loaded`; a walk with several users (several contexts)
 * takes them for each user's page.
 */
export async function watched(who, context, page) {
  const base = env("EDGE_URL");
  const runtime = env("RUNTIME");
  const shots = env("SCREENSHOT_DIR");
  mkdirSync(shots, { recursive: true });
  const step = (s) => console.log(`[${who} ${runtime}] ${s}`);
  // The test command runs two walks at once on a two-core machine: a page may be slow.
  page.setDefaultNavigationTimeout(60_000);
  // Every document and asset of ours, with its headers.
  const loaded = [];
  page.on("response", (r) => {
    const url = new URL(r.url());
    // Ours only (a walk may pass through another site, Stripe's checkout page).
    if (url.origin !== new URL(base).origin) return;
    const t = r.request().resourceType();
    if (t === "document" || (url.pathname.startsWith("/assets/") && r.status() === 200)) {
      loaded.push({ url: url.pathname + url.search, status: r.status(), headers: r.headers() });
    }
  });
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("pageerror", (e) => violations.push(`page error: ${e.message}`));
  // A dialog is script someone's text ran (no page of ours opens one).
  page.on("dialog", (d) => {
    violations.push(`a ${d.type()} dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
    // The first `playing` of any video, in ms after navigation started.
    document.addEventListener(
      "playing",
      () => {
        window.__firstPlaying ??= performance.now();
      },
      true,
    );
  });

  const axe = async (name) => {
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      window.axe.run(document, { resultTypes: ["violations"] }),
    );
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    if (bad.length) {
      fail(
        `axe on ${name}: ${bad
          .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)
          .join("; ")}`,
      );
    }
    step(`axe: ${name} has no serious or critical violations (${result.violations.length} minor)`);
  };
  const shot = async (name) => {
    const path = join(shots, `${runtime}-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    step(`screenshot ${path}`);
  };
  const cspClean = async (name) => {
    const seen = await page.evaluate(() => window.__csp);
    if (seen.length || violations.length) {
      fail(`${name}: CSP violations or errors: ${[...seen, ...violations].join("; ")}`);
    }
  };
  return { base, runtime, page, step, axe, shot, cspClean, loaded };
}

/** Every page and asset loaded carried the security headers. */
export function headersOnEverything(w, need) {
  const kinds = new Set(w.loaded.map((p) => p.url.split("?")[0]));
  for (const n of need) if (!kinds.has(n)) fail(`never loaded ${n}`);
  for (const p of w.loaded) {
    const csp = p.headers["content-security-policy"] ?? "";
    if (!csp.includes("script-src 'self'") || !csp.includes("default-src 'none'")) {
      fail(`${p.url} (${p.status}) lacks the CSP: ${JSON.stringify(p.headers)}`);
    }
    if (p.headers["x-content-type-options"] !== "nosniff") fail(`${p.url} lacks nosniff`);
    if (!p.headers["referrer-policy"]) fail(`${p.url} lacks a referrer policy`);
  }
  w.step(`CSP, nosniff and referrer policy on all ${w.loaded.length} pages and assets loaded`);
}

/** From any page: searches by keyboard for the public demo video and opens it. */
export async function searchAndOpen(w) {
  const { page, step } = w;
  await page.getByRole("searchbox", { name: "Search videos" }).fill("pattern public");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/search\?q=pattern/);
  const result = page.locator('#results a[href="/watch?v=demo-free"]');
  await result.waitFor();
  step("search finds demo-free");
  return result;
}

/** On the watch page of the public demo: it plays 3 s and more, and quality and speed switch. */
export async function playsAndSwitches(w) {
  const { page, step } = w;
  await page.locator("#title", { hasText: "Test pattern (public)" }).waitFor();
  const video = page.locator("#video");
  await page.waitForFunction(() => window.__firstPlaying !== undefined, null, { timeout: 30_000 });
  const start = await video.evaluate((v) => v.currentTime);
  await page.waitForFunction(
    (s) => document.querySelector("#video").currentTime >= s + 3,
    start,
    { timeout: 30_000 },
  );
  step(`plays: currentTime ${start.toFixed(2)} → ≥ ${(start + 3).toFixed(2)}`);
  const levels = await page.locator("#quality option").count();
  if (levels < 3) fail(`quality menu has ${levels} entries, want auto + 2 renditions`);
  const want = await page.locator("#quality option").nth(levels - 1).getAttribute("value");
  await page.getByLabel("Quality").selectOption(want);
  await page.waitForFunction((w) => document.querySelector("#video").dataset.level === w, want, {
    timeout: 20_000,
  });
  step(`quality switched to rendition ${want} (${await page.locator("#quality option:checked").textContent()})`);
  await page.getByLabel("Speed").selectOption("2");
  if ((await video.evaluate((v) => v.playbackRate)) !== 2) fail("speed did not change to 2x");
  await page.getByLabel("Speed").selectOption("0.25");
  if ((await video.evaluate((v) => v.playbackRate)) !== 0.25) fail("speed did not change to 0.25x");
  step("speed switched to 2x and 0.25x");
}
