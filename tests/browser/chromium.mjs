// Chromium as the browser tests and benchmarks launch it: Debian's /usr/bin/chromium (or
// $CHROMIUM) through playwright-core, with the flags this machine kind needs (no sandbox, no GPU,
// no background traffic) and autoplay allowed (the watch page starts playing by itself).
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
}
