// A viewer's walk through the web app in Chromium (playwright-core), against one running edge.
// Started by tests/tests/web.rs with:
//   EDGE_URL        the edge (http://127.0.0.1:port)
//   RUNTIME         a name for the screenshots (wrangler, spin, spin-up)
//   SCREENSHOT_DIR  where the screenshots go (created)
//   MARKUP_COMMENT  the body of a comment on demo-free that holds markup (the test posted it)
//   COUNTRY_HEADER, COUNTRY   the trusted country header the Spin edge reads, and its value
// Prints one line per step and exits non-zero on the first failure.
import { launch } from "./chromium.mjs";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("EDGE_URL");
const runtime = env("RUNTIME");
const shots = env("SCREENSHOT_DIR");
const markup = env("MARKUP_COMMENT");
mkdirSync(shots, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const step = (s) => console.log(`[viewer ${runtime}] ${s}`);
const fail = (s) => {
  throw new Error(s);
};

const browser = await launch();
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    extraHTTPHeaders: { [env("COUNTRY_HEADER")]: env("COUNTRY") },
  });
  const page = await context.newPage();
  // Every document and asset of ours carries the security headers.
  const pages = [];
  page.on("response", (r) => {
    const url = new URL(r.url());
    const t = r.request().resourceType();
    if (t === "document" || (url.pathname.startsWith("/assets/") && r.status() === 200)) {
      pages.push({ url: url.pathname + url.search, status: r.status(), headers: r.headers() });
    }
  });
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("pageerror", (e) => violations.push(`page error: ${e.message}`));
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
    if (seen.length || violations.length) fail(`${name}: CSP violations or errors: ${[...seen, ...violations].join("; ")}`);
  };

  // Home: the home feed, then the other tabs.
  await page.goto(`${base}/`);
  await page.locator("#panel-home .card").first().waitFor();
  step(`home lists ${await page.locator("#panel-home .card").count()} videos`);
  await axe("home");
  await shot("home");
  await page.getByRole("tab", { name: "Trending" }).click();
  await page.locator("#panel-trending .card, #panel-trending .status:not(:empty)").first().waitFor();
  await page.getByRole("tab", { name: "Categories" }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#panel-categories .chip, #panel-categories p").first().waitFor();
  step("trending and categories tabs answer");

  // Search, by keyboard.
  await page.getByRole("searchbox", { name: "Search videos" }).fill("pattern public");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/search\?q=pattern/);
  const result = page.locator('#results a[href="/watch?v=demo-free"]');
  await result.waitFor();
  step("search finds demo-free");
  await axe("search");
  await shot("search");

  // Watch: it plays, 3 s and more; quality and speed switch.
  await result.click();
  await page.waitForURL(/\/watch\?v=demo-free/);
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
  // k pauses (the page's shortcut, focus on the page itself).
  await page.locator("#title").click();
  await page.keyboard.press("k");
  await page.waitForFunction(() => document.querySelector("#video").paused);
  step("k pauses");
  // Reloaded, the page starts where the viewer left off.
  const pausedAt = await video.evaluate((v) => v.currentTime);
  await page.reload();
  await page.locator("#resume-note", { hasText: "Resumed at" }).waitFor();
  const resumedAt = await video.evaluate((v) => v.currentTime);
  if (resumedAt < pausedAt - 0.5) fail(`resumed at ${resumedAt}, paused at ${pausedAt}`);
  step(`resumes at ${resumedAt.toFixed(2)} s after a reload (paused at ${pausedAt.toFixed(2)} s)`);

  // The markup comment is text on the screen, and nothing of it ran or became an element.
  const body = page.locator("#comments .comment-body", { hasText: "<img" });
  await body.waitFor();
  if ((await body.textContent()) !== markup) fail(`comment shown as ${await body.textContent()}`);
  const injected = await page.evaluate(
    () => document.querySelectorAll("#comments img, #comments script, #comments b").length + (window.__xss ?? 0),
  );
  if (injected) fail("the comment's markup became elements or ran");
  step("a comment with markup stays inert text");
  await page.locator("#comment-form .sign-in").waitFor();
  await axe("watch");
  await shot("watch");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("watch-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
  await cspClean("watch");

  // The channel, through its link.
  await page.locator("#channel a").click();
  await page.waitForURL(/\/channel\?id=/);
  await page.locator("#channel-videos .card").first().waitFor();
  step(`channel "${await page.locator("#channel-name").textContent()}" lists its videos`);
  await axe("channel");
  await shot("channel");

  // A members video invites sign-in; a taken-down or blocked one says why.
  await page.goto(`${base}/watch?v=demo-members`);
  await page.locator('#notice[data-kind="members"]', { hasText: "Sign in" }).waitFor();
  step("members video: invitation to sign in");
  await axe("watch (members)");
  await shot("watch-members");
  await page.goto(`${base}/watch?v=demo-taken`);
  await page.locator('#notice[data-kind="taken_down"]', { hasText: "taken down" }).waitFor();
  step(`taken-down video: "${(await page.locator("#notice").innerText()).replace(/\s+/g, " ")}"`);
  await shot("watch-taken");
  await page.goto(`${base}/watch?v=demo-geo`);
  await page.locator('#notice[data-kind="country_blocked"]', { hasText: "not available in your country" }).waitFor();
  step("France-only video, viewer elsewhere: blocked, and says so");
  await cspClean("refusals");

  // Every page and asset had the headers.
  const kinds = new Set(pages.map((p) => p.url.split("?")[0]));
  for (const need of ["/", "/search", "/watch", "/channel", "/assets/watch.js", "/assets/hls.js", "/assets/app.css"]) {
    if (!kinds.has(need)) fail(`never loaded ${need}`);
  }
  for (const p of pages) {
    const csp = p.headers["content-security-policy"] ?? "";
    if (!csp.includes("script-src 'self'") || !csp.includes("default-src 'none'")) {
      fail(`${p.url} (${p.status}) lacks the CSP: ${JSON.stringify(p.headers)}`);
    }
    if (p.headers["x-content-type-options"] !== "nosniff") fail(`${p.url} lacks nosniff`);
    if (!p.headers["referrer-policy"]) fail(`${p.url} lacks a referrer policy`);
  }
  step(`CSP, nosniff and referrer policy on all ${pages.length} pages and assets loaded`);
  console.log("VIEWER OK");
} finally {
  await browser.close();
}
