// The same checks with the platform's native crypto (WebCrypto), for comparison with the Wasm
// figures of shared-wasm/benches/verify.rs: HMAC-SHA256 over a playback token's signed bytes,
// Ed25519 and ECDSA P-256 signature verification over a JWT's signing input.
// Node's WebCrypto stands in for workerd's (both native, called through V8 promises).
// Usage: node bench/webcrypto.mjs
const { subtle } = globalThis.crypto;
const enc = new TextEncoder();

async function measure(iters, runs, f) {
  const samples = [];
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) await f();
    samples.push(Number(process.hrtime.bigint() - start) / iters);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(runs / 2)];
}

// About the size of a playback token's domain-separated body.
const body = new Uint8Array(80).fill(7);
const hmacKey = await subtle.importKey('raw', new Uint8Array(32).fill(7),
  { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
const hmacNs = await measure(50_000, 7, () => subtle.sign('HMAC', hmacKey, body));

const input = enc.encode('eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIn0.' + 'x'.repeat(150));
const ed = await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
const edSig = await subtle.sign('Ed25519', ed.privateKey, input);
const edNs = await measure(5_000, 7, () => subtle.verify('Ed25519', ed.publicKey, edSig, input));

const ec = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
const ecAlg = { name: 'ECDSA', hash: 'SHA-256' };
const ecSig = await subtle.sign(ecAlg, ec.privateKey, input);
const ecNs = await measure(5_000, 7, () => subtle.verify(ecAlg, ec.publicKey, ecSig, input));

const fmt = (n) => String(Math.round(n)).padStart(8);
console.log(`WebCrypto HMAC-SHA256 (80 bytes):         ${fmt(hmacNs)} ns`);
console.log(`WebCrypto Ed25519 verify:                 ${fmt(edNs)} ns`);
console.log(`WebCrypto ECDSA P-256 verify:             ${fmt(ecNs)} ns`);
