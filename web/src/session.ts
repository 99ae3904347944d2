// The browser's session. The access token lives in this module's memory only; the refresh token
// is an HttpOnly cookie the edge sets and reads (`x-session: cookie`, see
// edge/app/src/routes/session.rs), so no script on the page can read it. A page load restores
// the session with one refresh; an access token that expires is refreshed once on a 401.

import { ApiError, errorOf, getJson } from "./api";

export interface Membership {
  tier: string;
  status: "active" | "inactive";
  period_end: number;
}

export interface User {
  id: string;
  email: string;
  role: "user" | "creator" | "moderator" | "admin";
  home_region?: string | null;
  display_name: string;
  /** Notification emails go only to a confirmed address. */
  email_confirmed: boolean;
  membership: Membership | null;
}

let access: string | null = null;
let user: Promise<User | null> | null = null;
// One refresh at a time: the cookie rotates, and a second refresh with the old one would look
// like a stolen token to the origin (which then ends the session).
let refreshing: Promise<boolean> | null = null;

const SESSION_HEADERS = { "content-type": "application/json", "x-session": "cookie" };

async function post(path: string, body?: unknown, auth = false): Promise<Response> {
  const headers: Record<string, string> = { ...SESSION_HEADERS };
  if (auth && access) headers.authorization = `Bearer ${access}`;
  try {
    return await fetch(path, {
      method: "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
}

async function takeTokens(r: Response): Promise<void> {
  if (!r.ok) throw await errorOf(r);
  const t = (await r.json()) as { access_token: string };
  access = t.access_token;
}

async function refreshNow(): Promise<boolean> {
  const r = await post("/v1/auth/refresh");
  if (r.status === 401) {
    access = null;
    return false;
  }
  await takeTokens(r);
  return true;
}

/** Exchanges the cookie for a new access token; false when there is no session. Tabs take
 * turns (Web Locks): each refresh rotates the cookie, so two tabs refreshing at once would
 * present the same token twice, which the origin takes for a stolen one. */
function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const locks = navigator.locks;
      return locks ? await locks.request("session-refresh", refreshNow) : await refreshNow();
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** `fetch` with the access token; on a 401 the token is refreshed once and the call repeated. */
export async function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  if (!access) await refresh();
  const send = () => {
    const headers = new Headers(init.headers);
    if (access) headers.set("authorization", `Bearer ${access}`);
    return fetch(path, { ...init, headers, credentials: "same-origin" });
  };
  let r: Response;
  try {
    r = await send();
    if (r.status === 401 && (await refresh())) r = await send();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  return r;
}

/** A JSON call through [`authFetch`]; throws the API's error when it refuses. */
export async function authJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers = { accept: "application/json", "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const r = await authFetch(path, init);
  if (!r.ok) throw await errorOf(r);
  // 204 (an unsubscribe, a deleted comment) has no body.
  return (r.status === 204 ? undefined : await r.json()) as T;
}

/** GET as the signed-in viewer when there is one (a members video, one's own private video),
 * anonymously otherwise. */
export async function viewerJson<T>(path: string): Promise<T> {
  const signedIn = await currentUser().catch(() => null);
  return signedIn ? authJson<T>("GET", path) : getJson<T>(path);
}

async function loadUser(): Promise<User | null> {
  if (!access && !(await refresh())) return null;
  const r = await authFetch("/v1/me", { headers: { accept: "application/json" } });
  if (r.status === 401) return null;
  if (!r.ok) throw await errorOf(r);
  return (await r.json()) as User;
}

/** The signed-in user, or null; the first call restores the session from the cookie. */
export function currentUser(): Promise<User | null> {
  user ??= loadUser().catch((e) => {
    user = null;
    throw e;
  });
  return user;
}

/** Forgets the cached profile (after it changed), so the next `currentUser` reads it again. */
export function reloadUser(): Promise<User | null> {
  user = null;
  return currentUser();
}

export async function signIn(email: string, password: string): Promise<User> {
  await takeTokens(await post("/v1/auth/login", { email, password }));
  const u = await reloadUser();
  if (!u) throw new ApiError(401, "unauthorized", "Signing in did not start a session.");
  return u;
}

export async function signUp(email: string, password: string, displayName?: string): Promise<User> {
  const body: Record<string, string> = { email, password };
  if (displayName) body.display_name = displayName;
  await takeTokens(await post("/v1/auth/signup", body));
  const u = await reloadUser();
  if (!u) throw new ApiError(401, "unauthorized", "Signing up did not start a session.");
  return u;
}

export async function signOut(): Promise<void> {
  if (!access) await refresh();
  let r = await post("/v1/auth/logout", undefined, true);
  if (r.status === 401 && (await refresh())) r = await post("/v1/auth/logout", undefined, true);
  access = null;
  user = Promise.resolve(null);
  // The edge clears the cookie whatever the answer; a refusal here only means the session had
  // already ended.
}

/** The sign-in page, coming back here afterwards. */
export function signInHref(): string {
  return `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/** A `next` parameter safe to go to: a path on this site, never another site. */
export function safeNext(raw: string | null): string {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.startsWith("/\\")) return "/";
  return raw;
}
