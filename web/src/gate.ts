// What the pages for some users only (the studio, the admin page) share: who may use them (the
// rest are told why, and a signed-out visitor is invited to sign in), their live region, and
// the words for a failed request.
import { ApiError } from "./api";
import { byId, h, replace } from "./dom";
import { currentUser, signInHref, User } from "./session";

/** Shows, in the element `boxId`, why the page offers nothing else. */
export function gate(boxId: string, heading: string, text: string, extra?: Node): void {
  const box = byId(boxId);
  replace(box, h("h2", {}, heading), h("p", {}, text), extra);
  box.hidden = false;
}

/**
 * The signed-in user when `allowed`; otherwise null, once `boxId` says why: signed out, an
 * invitation to sign in (`signedOut`); below the role, `refused(user)` (a heading and a text).
 */
export async function requireUser(
  boxId: string,
  signedOut: [string, string],
  allowed: (u: User) => boolean,
  refused: (u: User) => [string, string],
): Promise<User | null> {
  let user: User | null;
  try {
    user = await currentUser();
  } catch {
    gate(boxId, "Unavailable", "Your account could not be checked. Reload the page to try again.");
    return null;
  }
  if (!user) {
    gate(boxId, ...signedOut, h("p", {}, h("a", { href: signInHref() }, "Sign in")));
    return null;
  }
  if (!allowed(user)) {
    gate(boxId, ...refused(user));
    return null;
  }
  return user;
}

/** Says `message` in the live region `id`; the same message twice is read out twice. */
export function announce(id: string, message: string): void {
  const live = byId(id);
  live.textContent = "";
  requestAnimationFrame(() => {
    live.textContent = message;
  });
}

/** A failed request in words: the API's message, or the network's failure. */
export function describe(e: unknown): string {
  return e instanceof ApiError ? e.message : "The request failed. Check your connection and try again.";
}
