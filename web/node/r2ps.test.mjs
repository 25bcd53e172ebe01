// The manager in WebAssembly with the r2ps plugin against a real wscad on
// loopback (started by node_test.go): enrolment with an activation code,
// the PIN through callbacks.requestPIN, generate, sign (verified with
// WebCrypto), signJWS (jose), ECDH, list, properties, attestation,
// delete, a cancelled and a wrong PIN, progress, and a signing benchmark.
// Usage: node r2ps.test.mjs URL UNIT ACTIVATION_CODE
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { load, memoryStorage, bench } from './lib.mjs';

const [url, unit, code] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const jose = await import(pathToFileURL(path.join(here, '..', '..', 'interop', 'node_modules', 'jose', 'dist', 'webapi', 'index.js')));
const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const PIN = '424242';

async function rejects(p, code, plugin) {
  try {
    await p;
  } catch (e) {
    assert.equal(e.name, 'WSCAError', `${e}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (plugin) assert.equal(e.plugin, plugin);
    return e;
  }
  assert.fail(`resolved, want ${code}`);
}

const W = await load();
const storage = memoryStorage();
const kek = new Uint8Array(32).fill(3);
const asked = [];
const stages = new Set();
const open = (requestPIN) => W.open({
  storage, kek,
  plugins: { r2ps: { url, unit } },
  defaults: { global: 'r2ps' },
  callbacks: {
    requestPIN: async (req) => { asked.push(req); return requestPIN(req); },
    progress: (p) => stages.add(p.stage),
  },
});
const m = await open(() => PIN);

// before enrolment: no keys, and an operation needs enrolment
assert.deepEqual(await m.list(), []);
await rejects(m.generate({}), 'auth_required', 'r2ps');

await m.enrol('r2ps', code);
assert.equal(asked.at(-1).reason, 'register');
assert.equal(asked.at(-1).plugin, 'r2ps');
// the device keys are kept encrypted
for (const [key, val] of storage.map) {
  const plain = Buffer.from(val, 'base64').toString('latin1');
  assert.ok(!plain.includes('"csk"') && !plain.includes('"cak"'), `${key} holds device keys in the clear`);
}

const k = await m.generate({});
assert.equal(k.plugin, 'r2ps');
assert.equal(asked.at(-1).reason, 'unlock');
assert.ok(stages.has('waiting_for_user') && stages.has('network_round_trip'), [...stages].join());
const pub = await subtle.importKey('jwk', k.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
const data = enc.encode('signed in the wallet provider HSM');
const s = await m.sign(k.kid, data);
assert.equal(s.format, 'raw');
assert.equal(s.plugin, 'r2ps');
assert.ok(s.amr.length > 0, 'no amr');
assert.ok(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, s.signature, data));

const jws = await m.signJWS(k.kid, { typ: 'kb+jwt' }, { nonce: 'n', aud: 'a' });
await jose.compactVerify(jws, await jose.importJWK(k.publicJwk, 'ES256'));

const peer = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
const pj = await subtle.exportKey('jwk', peer.publicKey);
const z = await m.ecdh(k.kid, { kty: 'EC', crv: 'P-256', x: pj.x, y: pj.y });
const ours = await subtle.importKey('jwk', k.publicJwk, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
assert.deepEqual(z, new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: ours }, peer.privateKey, 256)));

assert.deepEqual((await m.list()).map((x) => x.kid), [k.kid]);
const props = await m.properties(k.kid);
assert.equal(props.key_storage, 'remote_hsm');
assert.equal(props.exportable, false);
const att = await m.attestation([k.kid], 'nonce-1');
assert.equal(att.format, 'key-attestation+jwt');
assert.equal(jose.decodeProtectedHeader(att.jwt).typ, 'key-attestation+jwt');

// The session is kept (encrypted) in the storage: a second manager on it
// signs without asking for the PIN.
const before = asked.length;
const m2 = await open(() => PIN);
await m2.sign(k.kid, data);
assert.equal(asked.length, before, 'the second manager asked for the PIN');

// Without the session: a cancelled PIN and a wrong PIN.
await storage.delete('r2ps/session');
const cancelled = await open(() => null);
await rejects(cancelled.sign(k.kid, data), 'auth_cancelled', 'r2ps');
const wrong = await open(() => '999999');
const e = await rejects(wrong.sign(k.kid, data), 'auth_required', 'r2ps');
assert.ok(!e.message.includes('999999') && !e.message.includes(PIN), 'a PIN in an error message');

// a signing benchmark (no threshold)
const b = await bench(() => m.sign(k.kid, data), 50);

const d = await m.delete(k.kid);
assert.ok(Array.isArray(d.amr));
await rejects(m.sign(k.kid, data), 'key_not_found');
console.log(JSON.stringify({ test: 'r2ps', ok: true, ...b }));
process.exit(0);
