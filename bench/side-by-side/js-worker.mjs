// The comparison Worker: two request paths of the Rust edge written in plain JS, with the
// cryptography done by WebCrypto. Benchmarks only; the production edge is the Rust Worker.
// - A segment: same token format (shared-wasm/src/playback/mod.rs), same steps: parse the path,
//   verify the HMAC tag, check prefix and times, read the video record from KV and refuse a
//   takedown, then answer from the cache (or the origin on a miss).
// - A playback URL for a members video with a Bearer JWT (edge/app/src/routes/playback.rs):
//   the JWKS from KV (fetched from the origin once), the EdDSA/ES256 signature and the claims,
//   the two revocation reads, the playback rate limit per address and per user (a Durable
//   Object each, GCRA as shared-wasm/src/ratelimit.rs), the video record and the viewer's
//   entitlement from KV, then a signed playback token and the signed view token the player
//   reports with.
import { DurableObject } from 'cloudflare:workers';

const enc = new TextEncoder();
const DOMAIN = enc.encode('edge-video/playback-token/v1\0');
const VIEW_DOMAIN = enc.encode('edge-video/view-token/v1\0');
const VIEW_TTL_SECS = 12 * 3600;
const PATH = /^\/hls\/([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,512})\/((?:[a-z0-9_]{1,32}\/)?[a-z0-9_]{1,64}\.(?:ts|m3u8))$/;
const keys = new Map();

function b64urlDecode(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64urlEncode(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function parseToken(raw) {
  if (raw.length < 33) return null;
  const body = raw.subarray(0, raw.length - 32);
  const tag = raw.subarray(raw.length - 32);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let i = 0;
  const need = (n) => { if (i + n > body.length) throw new Error('short'); const at = i; i += n; return at; };
  try {
    if (body[need(1)] !== 1) return null;
    const kidLen = body[need(1)];
    const kid = new TextDecoder().decode(body.subarray(need(kidLen), i));
    const nbf = Number(dv.getBigUint64(need(8)));
    const exp = Number(dv.getBigUint64(need(8)));
    const prefixLen = body[need(1)];
    const prefix = new TextDecoder().decode(body.subarray(need(prefixLen), i));
    const flags = body[need(1)];
    if (flags !== 0 || i !== body.length) return null; // the benchmark's tokens are unbound
    return { kid, nbf, exp, prefix, body, tag };
  } catch {
    return null;
  }
}

async function hmacKey(secret, usage) {
  let k = keys.get(secret + usage);
  if (!k) {
    k = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
    keys.set(secret + usage, k);
  }
  return k;
}

function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

// A GET to the origin with the edge's proof (shared-wasm/src/edge_auth.rs).
async function originGet(env, path) {
  const ts = String(Math.floor(Date.now() / 1000));
  const signKey = await hmacKey(enc.encode(env.EDGE_ORIGIN_SECRET), 'sign');
  const proof = await crypto.subtle.sign('HMAC', signKey,
    enc.encode(`edge-video/edge-to-origin/v1\0GET\n${path}\n${ts}`));
  return fetch(`${env.ORIGIN_URL}${path}`, { headers: { 'x-edge-auth': `v1.${ts}.${b64urlEncode(proof)}` } });
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const PLAYBACK_QUOTA = { name: 'playback', limit: 1000000000, window_secs: 1000000 };
const ISSUER = 'edge-video-origin';
const AUDIENCE = 'edge-video';
const LEEWAY = 30;
const jwtKeys = new Map(); // kid + JWK → CryptoKey, imported once per isolate

async function jwks(env) {
  const now = Math.floor(Date.now() / 1000);
  const cached = await env.EDGE_KV.get('jwks', 'json');
  if (cached && now < cached.fetched_at + 300) return cached.jwks;
  const resp = await originGet(env, '/.well-known/jwks.json');
  if (resp.status !== 200) throw new Error(`jwks answered ${resp.status}`);
  const fresh = await resp.json();
  await env.EDGE_KV.put('jwks', JSON.stringify({ fetched_at: now, jwks: fresh }), { expirationTtl: 300 });
  return fresh;
}

async function verifyJwt(env, token) {
  if (token.length > 4096) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let header, claims;
  try {
    header = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[0])));
    claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
  } catch {
    return null;
  }
  const jwk = (await jwks(env)).keys.find((k) => k.kid === header.kid);
  if (!jwk) return null;
  let alg;
  if (header.alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = { name: 'Ed25519' };
  else if (header.alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  else return null;
  const cacheKey = JSON.stringify(jwk);
  let key = jwtKeys.get(cacheKey);
  if (!key) {
    key = await crypto.subtle.importKey('jwk', jwk, alg, false, ['verify']);
    jwtKeys.set(cacheKey, key);
  }
  const signed = enc.encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify(alg, key, b64urlDecode(parts[2]), signed))) return null;
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || now > claims.exp + LEEWAY) return null;
  if (typeof claims.nbf === 'number' && now < claims.nbf - LEEWAY) return null;
  if (typeof claims.iat === 'number' && now < claims.iat - LEEWAY) return null;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== ISSUER || !aud.includes(AUDIENCE) || typeof claims.sub !== 'string') return null;
  return claims;
}

// Over RPC, as the Rust Worker's shell calls its limiter (which passes numbers, not an object).
function rateLimit(env, key) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key)).check(PLAYBACK_QUOTA);
}

async function playback(request, env, url, id) {
  const auth = request.headers.get('authorization') || '';
  if (!auth.startsWith('Bearer ')) return json(401, { error: 'unauthorized' });
  const claims = await verifyJwt(env, auth.slice(7).trim());
  if (!claims) return json(401, { error: 'unauthorized' });
  const user = await env.EDGE_KV.get(`user:${claims.sub}`, 'json');
  if (user && claims.iat < user.not_before) return json(401, { error: 'unauthorized', reason: 'revoked' });
  if (claims.jti && (await env.EDGE_KV.get(`session:${claims.jti}`)) !== null) {
    return json(401, { error: 'unauthorized', reason: 'revoked' });
  }
  const ip = request.headers.get('cf-connecting-ip') || 'unknown';
  const decisions = await Promise.all([rateLimit(env, `playback:${ip}`), rateLimit(env, `playback:user:${claims.sub}`)]);
  const decision = decisions.find((d) => !d.allowed) || decisions.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  if (!decision.allowed) return json(429, { error: 'rate_limited' });
  const record = await env.EDGE_KV.get(`video:${id}`, 'json');
  if (!record || record.visibility === 'private') return json(404, { error: 'not_found' });
  if (record.taken_down) return json(451, { error: 'unavailable_for_legal_reasons' });
  const now = Math.floor(Date.now() / 1000);
  let expires = now + 3600;
  if (record.visibility === 'members') {
    const ent = await env.EDGE_KV.get(`ent:${claims.sub}`, 'json');
    if (!ent || ent.status !== 'active' || ent.period_end <= now) return json(402, { error: 'entitlement_required' });
    expires = Math.min(expires, ent.period_end);
  }
  if (record.state !== 'ready') return json(409, { error: 'not_ready' });
  const prefix = enc.encode(`/hls/${id}/`);
  const kid = enc.encode(env.PLAYBACK_KID);
  const times = new DataView(new ArrayBuffer(16));
  times.setBigUint64(0, BigInt(now));
  times.setBigUint64(8, BigInt(expires));
  const body = concat(Uint8Array.of(1, kid.length), kid, new Uint8Array(times.buffer),
    Uint8Array.of(prefix.length), prefix, Uint8Array.of(0));
  const key = await hmacKey(b64urlDecode(env.PLAYBACK_KEY), 'sign');
  const tag = new Uint8Array(await crypto.subtle.sign('HMAC', key, concat(DOMAIN, body)));
  const token = b64urlEncode(concat(body, tag));
  const out = json(200, {
    video_id: id,
    title: record.title,
    manifest_url: `${url.origin}/hls/${id}/${token}/master.m3u8`,
    expires_at: expires,
    view_token: await viewToken(env, request, key, id, `u:${claims.sub}`, now),
    beacon_url: `${url.origin}/v1/beacons`,
  });
  out.headers.set('cache-control', 'no-store');
  out.headers.set('ratelimit-policy', `"${PLAYBACK_QUOTA.name}";q=${PLAYBACK_QUOTA.limit};w=${PLAYBACK_QUOTA.window_secs}`);
  out.headers.set('ratelimit', `"${PLAYBACK_QUOTA.name}";r=${decision.remaining};t=${decision.reset_secs}`);
  return out;
}

// The view token the player reports with (shared-wasm/src/beacon/mod.rs): the claims as JSON,
// base64url, and an HMAC under the playback key bound to the view-token domain.
async function viewToken(env, request, key, video, viewer, now) {
  const claims = { w: b64urlEncode(crypto.getRandomValues(new Uint8Array(16))), v: video, u: viewer };
  if (request.cf?.country) claims.c = request.cf.country;
  Object.assign(claims, { d: device(request.headers.get('user-agent') || ''), i: now, e: now + VIEW_TTL_SECS });
  const payload = b64urlEncode(enc.encode(JSON.stringify(claims)));
  const tag = await crypto.subtle.sign('HMAC', key, concat(VIEW_DOMAIN, enc.encode(`${env.PLAYBACK_KID}.${payload}`)));
  return `${env.PLAYBACK_KID}.${payload}.${b64urlEncode(tag)}`;
}

// The device class of a User-Agent, as `Device::of` decides it.
function device(userAgent) {
  const ua = userAgent.toLowerCase();
  const has = (words) => words.some((w) => ua.includes(w));
  if (has(['smart-tv', 'smarttv', 'appletv', 'crkey', 'roku', 'tizen', 'webos', 'bravia'])) return 'tv';
  if (has(['ipad', 'tablet']) || (ua.includes('android') && !ua.includes('mobile'))) return 'tablet';
  if (has(['mobi', 'iphone', 'ipod', 'android'])) return 'mobile';
  if (has(['windows', 'macintosh', 'x11', 'linux', 'cros'])) return 'desktop';
  return 'other';
}

// GCRA for one key, as the Rust Worker's RateLimiter (edge/cloudflare/shell.js, deciding in
// shared-wasm/src/ratelimit.rs).
export class RateLimiter extends DurableObject {
  async check(quota) {
    if (this.tat === undefined) this.tat = (await this.ctx.storage.get('tat')) ?? null;
    const now = Date.now();
    const window = quota.window_secs * 1000;
    const t = Math.ceil(window / quota.limit);
    const tat = Math.max(this.tat ?? now, now);
    const newTat = tat + t;
    if (newTat - now > window) {
      const body = { allowed: false, remaining: 0, reset_secs: Math.ceil((tat - now) / 1000),
        retry_after_secs: Math.max(1, Math.ceil((newTat - window - now) / 1000)) };
      return body;
    }
    this.tat = newTat;
    await this.ctx.storage.put('tat', newTat);
    const used = newTat - now;
    return { allowed: true, remaining: Math.floor((window - used) / t), reset_secs: Math.ceil(used / 1000), retry_after_secs: 0 };
  }
}

export default {
  // Every answer carries a request id, as the Rust edge's do (edge/app/src/request_id.rs).
  async fetch(request, env) {
    const out = await route(request, env);
    out.headers.set('x-request-id', b64urlEncode(crypto.getRandomValues(new Uint8Array(16))));
    return out;
  },
};

async function route(request, env) {
  const url = new URL(request.url);
  if (url.pathname === '/healthz') {
    const ok = json(200, { status: 'ok' });
    ok.headers.set('cache-control', 'no-store');
    return ok;
  }
  const pb = /^\/v1\/videos\/([A-Za-z0-9_-]{1,64})\/playback$/.exec(url.pathname);
  if (pb) return playback(request, env, url, pb[1]);
  const m = PATH.exec(url.pathname);
  if (!m) return json(400, { error: 'bad_media_path' });
  const [, id, token, file] = m;
  const t = parseToken(b64urlDecode(token));
  if (!t || t.kid !== env.PLAYBACK_KID) return json(403, { error: 'forbidden', reason: 'invalid' });
  const signed = new Uint8Array(DOMAIN.length + t.body.length);
  signed.set(DOMAIN);
  signed.set(t.body, DOMAIN.length);
  const key = await hmacKey(b64urlDecode(env.PLAYBACK_KEY), 'verify');
  if (!(await crypto.subtle.verify('HMAC', key, t.tag, signed))) {
    return json(403, { error: 'forbidden', reason: 'invalid' });
  }
  const now = Math.floor(Date.now() / 1000);
  if (!url.pathname.startsWith(t.prefix)) return json(403, { error: 'forbidden', reason: 'wrong_path' });
  if (now > t.exp + 30) return json(403, { error: 'forbidden', reason: 'expired' });
  if (now < t.nbf - 30) return json(403, { error: 'forbidden', reason: 'not_yet_valid' });
  const record = await env.EDGE_KV.get(`video:${id}`, 'json');
  if (!record) return json(404, { error: 'not_found' });
  if (record.taken_down) return json(451, { error: 'unavailable_for_legal_reasons' });

  const cacheKey = `${url.origin}/__edge-cache/hls/${id}/${file}`;
  let resp = await caches.default.match(cacheKey);
  let status = 'HIT';
  if (!resp) {
    status = 'MISS';
    const origin = await originGet(env, `/internal/media/${id}/${file}`);
    if (origin.status !== 200) return json(502, { error: 'bad_gateway' });
    resp = new Response(await origin.arrayBuffer(), {
      headers: { 'content-type': origin.headers.get('content-type'), 'cache-control': 'public, max-age=86400' },
    });
    await caches.default.put(cacheKey, resp.clone());
  }
  const out = new Response(resp.body, resp);
  out.headers.set('cache-control', `private, max-age=${Math.max(0, t.exp - now)}`);
  out.headers.set('accept-ranges', 'bytes');
  out.headers.set('access-control-allow-origin', '*');
  out.headers.set('x-edge-cache', status);
  return out;
}
