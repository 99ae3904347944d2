// The edge's read API, as the pages use it. Same origin only: the CSP's connect-src is 'self'.

export interface FeedItem {
  id: string;
  title: string;
  owner_id?: string | null;
  duration_ms?: number | null;
  created_at: number;
  channel_id?: string | null;
}

export interface FeedPage {
  items: FeedItem[];
  next_cursor?: string;
}

export interface VideoDetails {
  id: string;
  title: string;
  description: string;
  tags: string[];
  category?: string | null;
  visibility: "public" | "members" | "private" | string;
  state: string;
  duration_ms?: number | null;
  created_at: number;
  owner_id?: string | null;
  owner_name?: string | null;
  channel_id?: string | null;
  channel_name?: string | null;
  subscribers: number;
  likes: number;
  dislikes: number;
  comments: number;
  poster_url?: string | null;
  /** Only when the request carried a token: the asker's own reaction and subscription. */
  viewer?: { reaction: "like" | "dislike" | "none"; subscribed: boolean };
}

export interface Playback {
  video_id: string;
  title: string;
  manifest_url: string;
  expires_at: number;
  /** What the player reports its playback with (web/src/beacons.ts). */
  view_token: string;
  beacon_url: string;
}

export interface Comment {
  id: string;
  video_id: string;
  author_id?: string | null;
  body: string;
  created_at: number;
  edited_at?: number | null;
  deleted: boolean;
  likes: number;
  dislikes: number;
  /** The comment this one answers, if it is a reply. */
  parent_id?: string | null;
}

export interface CommentPage {
  items: Comment[];
  next_cursor?: string;
}

export interface Categories {
  categories: { slug: string; videos: number }[];
}

export interface Channel {
  id: string;
  owner_id: string;
  name: string;
  description: string;
  created_at: number;
  subscribers?: number;
}

/** A refusal or failure, with the API's JSON error when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(path: string): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, { headers: { accept: "application/json" }, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  if (r.ok) return (await r.json()) as T;
  throw await errorOf(r);
}

/** The API's JSON error as an `ApiError`; a field error names its field. */
export async function errorOf(r: Response): Promise<ApiError> {
  let body: { error?: string; message?: string; reason?: string; field?: string } = {};
  try {
    body = await r.json();
  } catch {
    // not JSON: keep the status alone
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

/** `path?k=v&…` with the empty values left out. */
export function withQuery(path: string, q: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

export const seg = encodeURIComponent;
