// The comparison Worker: the segment-request path of the Rust edge written in plain JS, with
// the token check done by WebCrypto. Same token format (shared-wasm/src/playback/mod.rs), same
// steps: parse the path, verify the HMAC tag, check prefix and times, read the video record
// from KV and refuse a takedown, then answer from the cache (or the origin on a miss).
// Benchmarks only; the production edge is the Rust Worker.
const enc = new TextEncoder();
const DOMAIN = enc.encode('edge-video/playback-token/v1\0');
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

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/healthz') return json(200, { status: 'ok' });
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
      const path = `/internal/media/${id}/${file}`;
      const ts = String(now);
      const signKey = await hmacKey(enc.encode(env.EDGE_ORIGIN_SECRET), 'sign');
      const proof = await crypto.subtle.sign('HMAC', signKey,
        enc.encode(`edge-video/edge-to-origin/v1\0GET\n${path}\n${ts}`));
      const origin = await fetch(`${env.ORIGIN_URL}${path}`,
        { headers: { 'x-edge-auth': `v1.${ts}.${b64urlEncode(proof)}` } });
      if (origin.status !== 200) return json(502, { error: 'bad_gateway' });
      resp = new Response(await origin.arrayBuffer(), {
        headers: { 'content-type': origin.headers.get('content-type'), 'cache-control': 'public, max-age=86400' },
      });
      await caches.default.put(cacheKey, resp.clone());
    }
    const out = new Response(resp.body, resp);
    out.headers.set('cache-control', `private, max-age=${Math.max(0, t.exp - now)}`);
    out.headers.set('x-edge-cache', status);
    return out;
  },
};
