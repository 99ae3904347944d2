// An in-memory Cache API backend for `workerd serve` (benchmarks only). workerd sends
// `cache.put` as PUT {key URL} with the serialised HTTP response as the body, and `cache.match`
// as GET {key URL}, expecting `Cf-Cache-Status: HIT` with the stored response or `MISS`.
// Expiry is ignored: runs are short. A match with one `Range: bytes=first-last` gets that part
// (206), as Cloudflare's cache answers it.
const store = new Map();
const CRLF2 = [13, 10, 13, 10];

function indexOf(bytes, pattern) {
  outer: for (let i = 0; i + pattern.length <= bytes.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

function dechunk(bytes) {
  const out = [];
  let i = 0;
  const dec = new TextDecoder();
  for (;;) {
    const eol = indexOf(bytes.subarray(i), [13, 10]);
    const size = parseInt(dec.decode(bytes.subarray(i, i + eol)), 16);
    i += eol + 2;
    if (!size) break;
    out.push(bytes.subarray(i, i + size));
    i += size + 2;
  }
  const total = new Uint8Array(out.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of out) { total.set(c, at); at += c.length; }
  return total;
}

function parse(serialised) {
  const split = indexOf(serialised, CRLF2);
  const head = new TextDecoder().decode(serialised.subarray(0, split)).split('\r\n');
  const status = parseInt(head[0].split(' ')[1], 10);
  const headers = new Headers();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let body = serialised.subarray(split + 4);
  if ((headers.get('transfer-encoding') || '').includes('chunked')) {
    body = dechunk(body);
    headers.delete('transfer-encoding');
    headers.set('content-length', String(body.length));
  }
  return { status, headers, body };
}

export default {
  async fetch(request, env) {
    const key = request.url;
    if (request.method === 'PUT') {
      store.set(key, parse(new Uint8Array(await request.arrayBuffer())));
      return new Response(null, { status: 204 });
    }
    if (request.method === 'PURGE') {
      return new Response(null, { status: store.delete(key) ? 200 : 404 });
    }
    // IO_DELAY_MS (run.sh): each match waits this long, as a lookup elsewhere does.
    if (env.DELAY_MS > 0) await new Promise((done) => setTimeout(done, Number(env.DELAY_MS)));
    const hit = store.get(key);
    if (!hit) return new Response(null, { headers: { 'cf-cache-status': 'MISS' } });
    const headers = new Headers(hit.headers);
    headers.set('cf-cache-status', 'HIT');
    const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get('range') || '');
    if (range && hit.status === 200) {
      const [first, last] = [Number(range[1]), Math.min(Number(range[2]), hit.body.length - 1)];
      const part = hit.body.subarray(first, last + 1);
      headers.set('content-range', `bytes ${first}-${last}/${hit.body.length}`);
      headers.set('content-length', String(part.length));
      return new Response(part, { status: 206, headers });
    }
    return new Response(hit.body, { status: hit.status, headers });
  },
};
