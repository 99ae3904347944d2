// What the browser walks share: their settings from the environment, a step log, axe-core runs,
// screenshots, and the CSP-violation watch. Each walk prints one line per step and fails on the
// first problem (an exception: node exits non-zero).
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

export const fail = (s) => {
  throw new Error(s);
};

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** The helpers of one walk (`who`: viewer, account …) on one page of one runtime. */
export function walkHelpers(who, page) {
  const runtime = env("RUNTIME");
  const shots = env("SCREENSHOT_DIR");
  mkdirSync(shots, { recursive: true });
  const step = (s) => console.log(`[${who} ${runtime}] ${s}`);
  const problems = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return {
    step,
    /** No serious or critical axe-core violation on the page as it is now. */
    async axe(name) {
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
    },
    async shot(name) {
      const path = join(shots, `${runtime}-${name}.png`);
      await page.screenshot({ path, fullPage: true });
      step(`screenshot ${path}`);
    },
    /** No CSP violation and no uncaught page error so far. */
    cspClean(name) {
      if (problems.length) fail(`${name}: CSP violations or page errors: ${problems.join("; ")}`);
    },
  };
}
