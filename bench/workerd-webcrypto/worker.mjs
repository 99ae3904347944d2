// WebCrypto signature checks inside workerd, as the Rust Worker makes them for access tokens:
// the key imported once (raw bytes, as from the JWKS), then one awaited `crypto.subtle.verify`
// per token. workerd's clocks stand still while a request runs, so the time is taken outside:
// `GET /?alg=ed25519&n=N` runs N sequential checks; run.sh times N = 0 and N = large over HTTP.
// `GET /names` says which algorithm names this workerd accepts for Ed25519. `GET /wycheproof`
// runs the Wycheproof Ed25519 and P-256 (P1363) vectors that shared-wasm's tests run against
// Rust's verifiers through this workerd's WebCrypto, and lists every case where it disagrees.
import ed25519Vectors from './wycheproof_ed25519_test.json';
import p256Vectors from './wycheproof_ecdsa_secp256r1_sha256_p1363_test.json';

const { subtle } = crypto;
const input = new TextEncoder().encode('eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIn0.' + 'x'.repeat(150));

async function setup(genAlg, importAlg, verifyAlg) {
  const pair = await subtle.generateKey(genAlg, true, ['sign', 'verify']);
  const raw = await subtle.exportKey('raw', pair.publicKey);
  const key = await subtle.importKey('raw', raw, importAlg, false, ['verify']);
  const sig = await subtle.sign(verifyAlg, pair.privateKey, input);
  return { key, sig, verifyAlg };
}

let ready;
function fixtures() {
  ready ??= Promise.all([
    setup({ name: 'Ed25519' }, { name: 'Ed25519' }, { name: 'Ed25519' }),
    setup({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', namedCurve: 'P-256' },
      { name: 'ECDSA', hash: 'SHA-256' }),
  ]).then(([ed25519, p256]) => ({ ed25519, p256 }));
  return ready;
}

async function accepts(name) {
  try {
    await subtle.importKey('raw', new Uint8Array(32).fill(9), { name, namedCurve: name }, false,
      ['verify']);
    return true;
  } catch {
    return false;
  }
}

const unhex = (h) => new Uint8Array((h.match(/../g) ?? []).map((b) => parseInt(b, 16)));

// shared_wasm::jwk's small-order blocklist (sign bit masked): keys Rust refuses when reading
// the JWKS, before WebCrypto ever sees them.
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
const smallOrder = (pk) =>
  SMALL_ORDER.some((b) => b.slice(0, 62) === pk.slice(0, 62)
    && parseInt(b.slice(62), 16) === (parseInt(pk.slice(62), 16) & 0x7f));

async function wycheproof(doc, importAlg, verifyAlg, pkOf, sigLen, bare) {
  const out = { valid: 0, invalid: 0, agree: 0, disagree: [] };
  for (const g of doc.testGroups) {
    const pk = pkOf(g);
    let key = null;
    if (bare || !(importAlg.name === 'Ed25519' && smallOrder(pk))) {
      try {
        key = await subtle.importKey('raw', unhex(pk), importAlg, false, ['verify']);
      } catch { /* refused on import: every signature fails */ }
    }
    for (const t of g.tests) {
      if (t.result === 'acceptable') continue;
      const expected = t.result === 'valid';
      expected ? out.valid++ : out.invalid++;
      let got = false;
      const sig = unhex(t.sig);
      // The Worker refuses a signature of any other length before asking WebCrypto.
      if (key && (bare || sig.length === sigLen)) {
        try { got = await subtle.verify(verifyAlg, key, sig, unhex(t.msg)); } catch { got = false; }
      }
      if (got === expected) out.agree++;
      else out.disagree.push({ tcId: t.tcId, comment: t.comment, flags: t.flags, expected });
    }
  }
  return out;
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/names') {
      const out = {};
      for (const name of ['Ed25519', 'NODE-ED25519']) out[name] = await accepts(name);
      return Response.json(out);
    }
    if (url.pathname === '/small-order') {
      // Key = the identity point, signature R = identity, S = 0: valid for every message under
      // the plain (cofactorless) equation; ed25519-dalek's verify_strict refuses it.
      let accepted;
      try {
        const key = await subtle.importKey('raw', unhex(SMALL_ORDER[1]), { name: 'Ed25519' },
          false, ['verify']);
        accepted = await subtle.verify({ name: 'Ed25519' }, key,
          unhex(SMALL_ORDER[1] + '00'.repeat(32)), new TextEncoder().encode('any message'));
      } catch (e) {
        accepted = `refused: ${e}`;
      }
      return Response.json({ accepted });
    }
    if (url.pathname === '/wycheproof') {
      // `?bare=1`: WebCrypto alone, without the Worker's own refusals.
      const bare = url.searchParams.has('bare');
      return Response.json({
        ed25519: await wycheproof(ed25519Vectors, { name: 'Ed25519' }, { name: 'Ed25519' },
          (g) => g.publicKey.pk, 64, bare),
        p256: await wycheproof(p256Vectors, { name: 'ECDSA', namedCurve: 'P-256' },
          { name: 'ECDSA', hash: 'SHA-256' }, (g) => g.publicKey.uncompressed, 64, bare),
      });
    }
    const f = (await fixtures())[url.searchParams.get('alg') ?? 'ed25519'];
    const n = Number(url.searchParams.get('n') ?? '1');
    let ok = 0;
    for (let i = 0; i < n; i++) {
      if (await subtle.verify(f.verifyAlg, f.key, f.sig, input)) ok++;
    }
    return new Response(`${ok}\n`);
  },
};
