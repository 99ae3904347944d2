// A viewer's account in Chromium (playwright-core), against one running edge: sign up from a
// members video's invitation, the session's refresh cookie (HttpOnly, Secure, SameSite=Strict,
// never readable by the page, refused cross-site), the session surviving a reload, the
// membership checkout (Stripe's stand-in; the test delivers the webhooks when this walk prints
// `CHECKOUT` and answers `PAID` on stdin), the members video then playing, the account page,
// sign out and sign in again. Started by tests/tests/web.rs with EDGE_URL, RUNTIME,
// SCREENSHOT_DIR, STRIPE_URL, COUNTRY_HEADER and COUNTRY. Prints `ACCOUNT OK` at the end.
import { createInterface } from "node:readline";
import { env, fail, headersOnEverything, walk } from "./walk.mjs";

const stripe = env("STRIPE_URL");
const password = "a long enough password";
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

try {
  await walk("account", async (w) => {
    const { base, runtime, page, context, step, axe, shot, cspClean } = w;
    const email = `web-${runtime}-${Date.now()}@example.com`;
    const tokenBodies = [];
    page.on("response", async (r) => {
      const path = new URL(r.url()).pathname;
      if (/^\/v1\/auth\/(signup|login|refresh)$/.test(path) && r.ok()) tokenBodies.push(await r.text());
    });
    const refreshCookie = async () =>
      (await context.cookies(`${base}/v1/auth/refresh`)).find((c) => c.name === "__Secure-refresh");
    const signedInAs = (name) => page.locator("#nav-account", { hasText: name }).waitFor();

    // Signed out, a members video invites sign-in; the invitation leads to sign-up and back.
    await page.goto(`${base}/watch?v=demo-members`);
    await page.locator('#notice[data-kind="members"] a', { hasText: "Sign in" }).click();
    await page.waitForURL(/\/signin\?next=%2Fwatch%3Fv%3Ddemo-members/);
    await axe("sign in");
    await shot("signin");
    await page.locator("#auth-other").click();
    await page.waitForURL(/\/signup\?next=/);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel(/^Display name/).fill("Web Viewer");
    await page.getByLabel(/^Password \(/).fill("short");
    await page.getByLabel("Password again").fill("short");
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.locator("#auth-status", { hasText: "at least 10" }).waitFor();
    step("a short password is refused before anything is sent");
    await axe("sign up");
    await shot("signup");
    await page.getByLabel(/^Password \(/).fill(password);
    await page.getByLabel("Password again").fill(password);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.waitForURL(/\/watch\?v=demo-members$/);
    await signedInAs("Web Viewer");
    step("signed up, back on the members video, signed in");

    // The refresh token is a cookie the page cannot read, and never in a JSON body it can.
    const cookie = await refreshCookie();
    if (!cookie) fail("no refresh cookie after sign-up");
    if (!cookie.httpOnly || !cookie.secure || cookie.sameSite !== "Strict" || cookie.path !== "/v1/auth") {
      fail(`refresh cookie attributes: ${JSON.stringify({ ...cookie, value: "…" })}`);
    }
    if ((await page.evaluate(() => document.cookie)).includes("refresh")) fail("the page can read the refresh cookie");
    if (tokenBodies.length === 0 || tokenBodies.some((b) => b.includes("refresh_token"))) {
      fail(`token answers to the page: ${tokenBodies.length}, some with the refresh token`);
    }
    step(`refresh cookie HttpOnly, Secure, SameSite=Strict, Path=/v1/auth; ${tokenBodies.length} token answers without it`);

    // Another site cannot use the cookie: a refresh with a foreign Origin, or none, is refused.
    for (const origin of ["http://evil.example", null]) {
      const headers = { "x-session": "cookie", cookie: `__Secure-refresh=${cookie.value}` };
      if (origin) headers.origin = origin;
      const r = await fetch(`${base}/v1/auth/refresh`, { method: "POST", headers });
      const body = await r.json();
      if (r.status !== 403 || body.reason !== "cross_origin") fail(`cross-site refresh (${origin}): ${r.status} ${JSON.stringify(body)}`);
    }
    step("a refresh from another Origin (or none) is refused: 403 cross_origin");

    // The session survives a reload (one refresh, which rotates the cookie).
    await page.reload();
    await signedInAs("Web Viewer");
    const rotated = await refreshCookie();
    if (!rotated || rotated.value === cookie.value) fail("the reload's refresh did not rotate the cookie");
    step("after a reload still signed in; the refresh cookie rotated");

    // Without a membership: the checkout button, to Stripe (the stand-in), then the webhooks.
    const checkout = page.locator('#notice[data-kind="membership"] #checkout');
    await checkout.waitFor();
    await axe("watch (membership)");
    await checkout.click();
    await page.waitForURL((u) => u.href.startsWith(stripe));
    step("checkout opens Stripe's page");
    console.log(`CHECKOUT ${email}`);
    const answer = await lines.next();
    if (answer.value !== "PAID") fail(`expected PAID from the test, got ${answer.value}`);

    // Paid: the same page plays once the membership reaches the edge.
    const deadline = Date.now() + 30_000;
    for (;;) {
      await page.goto(`${base}/watch?v=demo-members`);
      const outcome = await Promise.race([
        page.waitForFunction(() => window.__firstPlaying !== undefined, null, { timeout: 20_000 }).then(() => "playing"),
        page.locator('#notice[data-kind="membership"]').waitFor({ timeout: 20_000 }).then(() => "refused"),
      ]);
      if (outcome === "playing") break;
      if (Date.now() > deadline) fail("the members video still refuses 30 s after the payment");
      await page.waitForTimeout(500);
    }
    const t0 = await page.locator("#video").evaluate((v) => v.currentTime);
    await page.waitForFunction((s) => document.querySelector("#video").currentTime >= s + 2, t0, { timeout: 30_000 });
    step("after the payment the members video plays");

    // The account page: membership, display name.
    await page.locator("#nav-account").click();
    await page.waitForURL(/\/account$/);
    await page.locator("#membership", { hasText: "paid through" }).waitFor();
    await page.getByLabel("Shown with your comments and channel").fill("Renamed Viewer");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.locator("#name-status", { hasText: "Saved" }).waitFor();
    await page.reload();
    await signedInAs("Renamed Viewer");
    step("account page: member, display name changed");
    await axe("account");
    await shot("account");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("account-phone");
    await page.setViewportSize({ width: 1280, height: 800 });

    // Sign out: the cookie goes, and a reload stays signed out.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/`);
    await page.locator("#nav-user a", { hasText: "Sign in" }).waitFor();
    if (await refreshCookie()) fail("the refresh cookie outlived sign-out");
    await page.reload();
    await page.locator("#nav-user a", { hasText: "Sign in" }).waitFor();
    step("signed out: no cookie, still signed out after a reload");

    // Signing in again, with a wrong password first.
    await page.goto(`${base}/signin?next=%2Faccount`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("not the password at all");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#auth-status", { hasText: "wrong" }).waitFor();
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/account$/);
    await signedInAs("Renamed Viewer");
    step("a wrong password is refused with a message; the right one signs in and returns to next");
    await cspClean("account pages");

    headersOnEverything(w, ["/signin", "/signup", "/account", "/watch"]);
    console.log("ACCOUNT OK");
  });
} finally {
  stdin.close();
}
