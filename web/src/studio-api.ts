// What the creator studio reads and writes, as the API answers it (origin/openapi.json).
import { seg } from "./api";
import { authJson } from "./session";

export type Visibility = "public" | "members" | "private";
export type VideoState = "uploading" | "processing" | "ready" | "failed";

export interface CountryRule {
  mode: "allow" | "deny";
  list: string[];
}

/** One of the creator's videos, with every field the studio edits. */
export interface MyVideo {
  id: string;
  title: string;
  description: string;
  visibility: Visibility;
  state: VideoState;
  category: string | null;
  tags: string[];
  countries: CountryRule | null;
  taken_down: boolean;
  channel_id: string | null;
  duration_ms: number | null;
  created_at: number;
}

export interface MyChannel {
  id: string;
  owner_id: string;
  name: string;
  description: string;
  created_at: number;
}

export interface Ticket {
  upload_url: string;
  tus_url: string;
  expires_at: number;
  max_bytes: number;
  content_types: string[];
}

export interface TranscodeError {
  code: string;
  message: string;
}

export interface Transcode {
  video_id: string;
  state: VideoState;
  stage: "probe" | "encode" | "finalize" | "done" | "failed" | null;
  progress: number;
  renditions: { name: string; state: string; progress: number; attempts: number; error?: TranscodeError | null }[];
  error?: TranscodeError | null;
}

/** The fields of a new video or of an edit (an edit sends only what changed). */
export interface VideoFields {
  title?: string;
  description?: string;
  visibility?: Visibility;
  category?: string | null;
  tags?: string[];
  countries?: CountryRule | null;
  channel?: string;
}

export const myVideos = (): Promise<{ items: MyVideo[] }> => authJson("GET", "/v1/creator/videos");
export const createVideo = (f: VideoFields): Promise<{ id: string }> => authJson("POST", "/v1/videos", f);
export const editVideo = (id: string, f: VideoFields): Promise<unknown> => authJson("PATCH", `/v1/videos/${seg(id)}`, f);
export const deleteVideo = (id: string): Promise<void> => authJson("DELETE", `/v1/videos/${seg(id)}`);
export const uploadTicket = (id: string): Promise<Ticket> => authJson("POST", `/v1/videos/${seg(id)}/upload`);
export const transcode = (id: string): Promise<Transcode> => authJson("GET", `/v1/videos/${seg(id)}/transcode`);

export const myChannels = (user: string): Promise<{ channels: MyChannel[] }> =>
  authJson("GET", `/v1/users/${seg(user)}/channels`);
export const createChannel = (name: string, description: string): Promise<MyChannel> =>
  authJson("POST", "/v1/channels", { name, description });
export const editChannel = (id: string, name: string, description: string): Promise<MyChannel> =>
  authJson("PATCH", `/v1/channels/${seg(id)}`, { name, description });
export const deleteChannel = (id: string): Promise<void> => authJson("DELETE", `/v1/channels/${seg(id)}`);

export type EventType = "upload.completed" | "video.ready" | "video.failed" | "video.deleted" | "video.taken_down";

/** A webhook endpoint; `secret` only in the answers of a creation and a rotation. */
export interface Endpoint {
  id: string;
  url: string;
  events: EventType[];
  all_creators: boolean;
  previous_secret_until: number;
  created_at: number;
  secret?: string;
}

export interface Delivery {
  event: string;
  type: EventType;
  video: string;
  state: "pending" | "delivered" | "failed";
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: number | null;
  delivered_at: number | null;
  next_attempt_at: number | null;
  created_at: number;
}

export const myEndpoints = (): Promise<{ items: Endpoint[] }> => authJson("GET", "/v1/webhooks");
export const createEndpoint = (url: string, events: EventType[]): Promise<Endpoint> =>
  authJson("POST", "/v1/webhooks", { url, events });
export const rotateSecret = (id: string): Promise<Endpoint> => authJson("POST", `/v1/webhooks/${seg(id)}/rotate`, {});
export const deleteEndpoint = (id: string): Promise<void> => authJson("DELETE", `/v1/webhooks/${seg(id)}`);
export const deliveries = (id: string): Promise<{ items: Delivery[] }> =>
  authJson("GET", `/v1/webhooks/${seg(id)}/deliveries`);
export const sendAgain = (id: string, event: string): Promise<unknown> =>
  authJson("POST", `/v1/webhooks/${seg(id)}/deliveries/${seg(event)}/retry`);

/** Plays, counted views and watch time of one slice of the statistics. */
export interface StatsSums {
  plays: number;
  views: number;
  watch_ms: number;
}

/** `GET /v1/creator/stats` (origin/src/analytics/stats.rs). */
export interface CreatorStats {
  from: number;
  to: number;
  video: string | null;
  granularity: "hour" | "day";
  totals: StatsSums & {
    unique_viewers: number;
    average_view_ms: number;
    startup_ms: { p50: number | null; p95: number | null };
    rebuffers: number;
    rebuffer_ratio: number;
    rendition_switches: number;
    errors: number;
  };
  series: (StatsSums & { start: number })[];
  retention: number[] | null;
  countries: (StatsSums & { country: string | null })[];
  devices: (StatsSums & { device: string })[];
}

export const creatorStats = (from: number, video: string): Promise<CreatorStats> =>
  authJson("GET", `/v1/creator/stats?from=${from}${video ? `&video=${encodeURIComponent(video)}` : ""}`);
export const platformStats = (from: number): Promise<CreatorStats> => authJson("GET", `/v1/admin/stats?from=${from}`);
