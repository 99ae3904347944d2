// The pre-roll in Chromium, against one running edge; tests/tests/web.rs first starts a campaign
// (creative demo-embed, 8 s; daily cap 2) through the admin API. Environment, beside walk.mjs's:
//   CAMPAIGN      the campaign's id
//   ADMIN_TOKEN   an admin's access token, to read the campaign's figures
//   MEMBER_EMAIL, PASSWORD   a member's sign-in
// A signed-out viewer sees the ad to its end, then the video; a member sees none while it runs;
// the second ad may be skipped once 5 s have played, and is; the daily cap then stops the
// campaign. The origin counts exactly the tracking the player sent, each event once per ad
// view, and a repeat of one adds nothing. Prints one line per step; exits non-zero on a failure.
import { BROWSER_UA, env, fail, walk, watched } from "./walk.mjs";

const campaign = env("CAMPAIGN");

/** Waits up to `ms` for `check()` to hold. */
async function until(what, check, ms = 20_000) {
  for (const end = Date.now() + ms; !(await check()); ) {
    if (Date.now() > end) fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The main video plays (after any ad). */
async function videoPlays(page) {
  await page.waitForFunction(
    () => {
      const v = document.querySelector("#video");
      return document.querySelector("#ad").hidden && !v.hidden && !v.paused && v.currentTime > 0.5;
    },
    null,
    { timeout: 30_000 },
  );
}

await walk("ads", async (w) => {
  const { base, page, step, axe, shot, cspClean, context } = w;
  // Every tracking request the player sent, as the edge answered it.
  const tracked = [];
  const vast = [];
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (u.pathname === "/v1/ads/track") {
      tracked.push({ e: u.searchParams.get("e"), t: u.searchParams.get("t"), url: r.url(), status: r.status() });
    }
    if (u.pathname === "/v1/ads/vast") vast.push(r);
  });
  const sentFor = (token) => tracked.filter((x) => x.t === token).map((x) => x.e);

  // 1. Signed out: the ad first, skippable only after 5 s, played to its end; then the video.
  await page.goto(`${base}/watch?v=demo-free`);
  await page.locator("#ad:not([hidden])").waitFor();
  await page.waitForFunction(() => document.querySelector("#ad-video").currentTime > 0);
  if (!(await page.locator("#ad-skip").isDisabled())) fail("the ad could be skipped at once");
  if ((await page.locator("#ad-link").getAttribute("href")) !== "https://advertiser.example/spring") {
    fail("the ad's link is not the campaign's click-through URL");
  }
  step(`a pre-roll plays before the video; "${await page.locator("#ad-skip").textContent()}"`);
  await axe("watch (ad)");
  await shot("watch-ad");
  await page.locator("#ad").waitFor({ state: "hidden", timeout: 30_000 });
  await videoPlays(page);
  const first = tracked.find((x) => x.e === "impression")?.t;
  if (!first) fail("no impression was tracked");
  const full = ["impression", "first_quartile", "midpoint", "third_quartile", "complete"];
  await until("the first ad's tracking", () => full.every((e) => sentFor(first).includes(e)));
  step(`the ad played to its end (tracked: ${sentFor(first).join(", ")}), then the video`);

  // 2. A member, while the campaign runs: no ad.
  const memberCtx = await context.browser().newContext({
    viewport: { width: 1280, height: 800 },
    extraHTTPHeaders: { [env("COUNTRY_HEADER")]: env("COUNTRY") },
    userAgent: BROWSER_UA,
  });
  const m = await watched("ads member", memberCtx, await memberCtx.newPage());
  const memberVast = [];
  m.page.on("response", (r) => {
    if (new URL(r.url()).pathname === "/v1/ads/vast") memberVast.push(r);
  });
  await m.page.goto(`${base}/signin?next=${encodeURIComponent("/watch?v=demo-free")}`);
  await m.page.getByLabel("Email").fill(env("MEMBER_EMAIL"));
  await m.page.getByLabel("Password").fill(env("PASSWORD"));
  await m.page.getByRole("button", { name: "Sign in" }).click();
  await m.page.waitForURL((u) => u.pathname === "/watch");
  await videoPlays(m.page);
  await until("the member's ad request", () => memberVast.length > 0);
  const answer = await memberVast.at(-1).text();
  if (memberVast.at(-1).status() !== 200 || /<Ad[ >]/.test(answer)) fail(`a member was offered an ad: ${answer}`);
  step("a member gets no ad; the video plays at once");
  await m.cspClean("watch (member)");
  await memberCtx.close();

  // 3. Signed out again: the second ad, skipped as soon as it may be.
  await page.reload();
  await page.locator("#ad:not([hidden])").waitFor();
  await page.locator("#ad-skip:not([disabled])").waitFor({ timeout: 20_000 });
  const at = await page.locator("#ad-video").evaluate((v) => v.currentTime);
  if (at < 4.5) fail(`skippable at ${at.toFixed(2)} s of the ad`);
  await page.locator("#ad-skip").click();
  await videoPlays(page);
  const second = tracked.filter((x) => x.e === "impression").map((x) => x.t).find((t) => t !== first);
  if (!second) fail("the second ad's impression was not tracked");
  await until("the skip's tracking", () => sentFor(second).includes("skip"));
  if (sentFor(second).includes("complete")) fail("a skipped ad reported its end");
  step(`skipped at ${at.toFixed(2)} s (tracked: ${sentFor(second).join(", ")}), then the video`);

  // 4. Two impressions today: the daily cap stops the campaign once the edge hears of it.
  await until(
    "the capped campaign leaving the edge",
    async () => {
      const before = vast.length;
      await page.reload();
      await until("the ad request", () => vast.length > before, 10_000);
      return !/<Ad[ >]/.test(await vast.at(-1).text());
    },
    30_000,
  );
  await videoPlays(page);
  step("past its daily cap the campaign is not served: the video plays at once");

  // The origin counted what the player sent, each event once per ad view; a repeat adds nothing.
  for (const x of tracked) if (x.status !== 204) fail(`tracking ${x.e} answered ${x.status}`);
  const figures = async () => {
    const r = await fetch(`${base}/v1/ads/campaigns/${campaign}`, {
      headers: { authorization: `Bearer ${env("ADMIN_TOKEN")}` },
    });
    if (r.status !== 200) fail(`campaign figures: ${r.status}`);
    return (await r.json()).figures;
  };
  const distinct = (e) => new Set(tracked.filter((x) => x.e === e).map((x) => x.t)).size;
  const counted = await figures();
  for (const [e, n] of Object.entries(counted.events)) {
    if (n !== distinct(e)) fail(`${e}: the origin counted ${n}, the player sent ${distinct(e)} ad views' worth`);
  }
  if (counted.events.impression !== 2 || counted.events.complete !== 1 || counted.events.skip !== 1) {
    fail(`unexpected figures ${JSON.stringify(counted)}`);
  }
  const again = tracked.find((x) => x.e === "impression").url;
  const status = await page.evaluate(async (u) => (await fetch(u)).status, again);
  if (status !== 204 || JSON.stringify(await figures()) !== JSON.stringify(counted)) {
    fail("a repeated impression changed the figures");
  }
  step(`the origin counted ${JSON.stringify(counted.events)}; a repeated impression changed nothing`);
  await cspClean("watch (ads)");
  console.log("ADS OK");
});
