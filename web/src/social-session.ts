// The signed-in viewer, as the watch page's community features need it: who it is, a call to
// the API on its behalf, and where to sign in.
//
// A STAND-IN until the web app's session module (web/src/session.ts: sign-in pages, access
// token in memory, refresh token in an HttpOnly cookie the edge sets) lands. Its exports have
// that module's names and shapes, so the switch is an import path: `currentUser()`,
// `authJson()` (which must take a 204, as here), `viewerJson()`, `signInHref()`. Meanwhile it
// keeps the JSON of a login or signup in sessionStorage under STORE_KEY and refreshes it once
// on a 401.
import { ApiError } from "./api";

/** Where the stand-in keeps a login's answer (`access_token`, `refresh_token`). */
export const STORE_KEY = "edge-video.session";

interface Tokens {
  access_token: string;
  refresh_token?: string;
}

/** The signed-in user (of the session module's `User`, what this page needs). */
export interface User {
  /** The user id (the access token's `sub`). */
  id: string;
}

function stored(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    const t = raw ? (JSON.parse(raw) as Tokens) : null;
    return t && typeof t.access_token === "string" ? t : null;
  } catch {
    return null;
  }
}

/** The `sub` of a JWT, read (not checked: the edge and the origin check it). */
function subject(token: string): string | null {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === "string" && sub ? sub : null;
  } catch {
    return null;
  }
}

/** The signed-in user, or `null`. */
export async function currentUser(): Promise<User | null> {
  const t = stored();
  const id = t ? subject(t.access_token) : null;
  return id ? { id } : null;
}

/** The sign-in page, coming back to this one afterwards. */
export function signInHref(): string {
  return `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
}

async function refresh(t: Tokens): Promise<Tokens | null> {
  if (!t.refresh_token) return null;
  try {
    const r = await fetch("/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: t.refresh_token }),
    });
    if (!r.ok) return null;
    const next = (await r.json()) as Tokens;
    sessionStorage.setItem(STORE_KEY, JSON.stringify(next));
    return next;
  } catch {
    return null;
  }
}

/** The API's JSON error as an `ApiError`; a field error names its field (as session.ts does). */
async function errorOf(r: Response): Promise<ApiError> {
  let body: { error?: string; message?: string; reason?: string; field?: string } = {};
  try {
    body = await r.json();
  } catch {
    // not JSON: the status alone
  }
  return new ApiError(
    r.status,
    body.error ?? `http_${r.status}`,
    body.message
      ? body.field
        ? `${body.field.replace(/[._]/g, " ")}: ${body.message}`
        : body.message
      : `The server answered ${r.status}.`,
    body.reason,
  );
}

/**
 * `method path` with the viewer's token when there is one (refreshed once if the edge says it
 * expired); the JSON answer, or `null` for an empty one (204). Throws `ApiError`.
 */
export async function authJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  let t = stored();
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (t) headers.authorization = `Bearer ${t.access_token}`;
    let r: Response;
    try {
      r = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
    }
    if (r.status === 401 && t && attempt === 0) {
      t = await refresh(t);
      if (t) continue;
      sessionStorage.removeItem(STORE_KEY);
    }
    if (!r.ok) throw await errorOf(r);
    if (r.status === 204) return null as T;
    const text = await r.text();
    return (text ? JSON.parse(text) : null) as T;
  }
}

/** GET as the signed-in viewer when there is one, anonymously otherwise. */
export function viewerJson<T>(path: string): Promise<T> {
  return authJson<T>("GET", path);
}
