// The manager in WebAssembly with the softkey plugin, in Node: generate,
// sign (verified with WebCrypto), signJWS (verified with jose), ECDH
// (against a WebCrypto key), list, delete, properties, migrate, the typed
// errors, persistence in the host's storage, and a signing benchmark.
// Run by node_test.go; prints one JSON line of measurements at the end.
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { load, memoryStorage, b64u, bench } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const jose = await import(pathToFileURL(path.join(here, '..', '..', 'interop', 'node_modules', 'jose', 'dist', 'webapi', 'index.js')));
const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();

const W = await load();
assert.equal(typeof W.version, 'string');
const kek = new Uint8Array(32).fill(7);
const storage = memoryStorage();
// r2ps is configured but never enrolled: it answers without the network.
const plugins = { softkey: {}, r2ps: { url: 'http://127.0.0.1:9', unit: 'unit-1' } };
const open = (o = {}) => W.open({ storage, kek, plugins, defaults: { global: 'softkey' }, callbacks: {}, ...o });

async function rejects(p, code, plugin) {
  try {
    await p;
  } catch (e) {
    assert.equal(e.name, 'WSCAError', `${e}`);
    assert.ok(e instanceof Error);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (plugin) assert.equal(e.plugin, plugin);
    return e;
  }
  assert.fail(`resolved, want ${code}`);
}

const m = await open();
assert.deepEqual(await m.plugins(), ['softkey', 'r2ps']);

// generate, sign, verify with WebCrypto
const k = await m.generate({});
assert.equal(k.plugin, 'softkey');
assert.deepEqual(k.amr, ['swk']);
assert.equal(k.kid, await jose.calculateJwkThumbprint(k.publicJwk, 'sha256'));
const pub = await subtle.importKey('jwk', k.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
const data = enc.encode('a message from the page');
const s = await m.sign(k.kid, data);
assert.equal(s.format, 'raw');
assert.equal(s.plugin, 'softkey');
assert.ok(s.signature instanceof Uint8Array && s.signature.length === 64);
assert.ok(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, s.signature, data));
assert.ok(!(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, s.signature, enc.encode('another'))));

// signJWS, verified by jose; alg forced to ES256, the caller's kid kept
const jws = await m.signJWS(k.kid, { typ: 'openid4vci-proof+jwt', alg: 'none', kid: 'k1' }, { aud: 'https://issuer.example', nonce: 'n-1' });
const v = await jose.compactVerify(jws, await jose.importJWK(k.publicJwk, 'ES256'));
assert.deepEqual(v.protectedHeader, { typ: 'openid4vci-proof+jwt', alg: 'ES256', kid: 'k1' });
assert.deepEqual(JSON.parse(new TextDecoder().decode(v.payload)), { aud: 'https://issuer.example', nonce: 'n-1' });
await rejects(m.signJWS(k.kid, 'header', {}), 'invalid_input');

// ECDH against a WebCrypto key: both sides derive the same secret
const peer = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
const peerJwk = await subtle.exportKey('jwk', peer.publicKey);
const z = await m.ecdh(k.kid, { kty: 'EC', crv: 'P-256', x: peerJwk.x, y: peerJwk.y });
const ours = await subtle.importKey('jwk', k.publicJwk, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
const want = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: ours }, peer.privateKey, 256));
assert.deepEqual(z, want);
await rejects(m.ecdh(k.kid, { kty: 'EC', crv: 'P-256', x: peerJwk.x, y: b64u.enc(new Uint8Array(32)) }), 'invalid_input');

// properties
const props = await m.properties(k.kid);
assert.equal(props.key_storage, 'software');
assert.equal(props.exportable, true);

// concurrent generations: every key bound, none lost
const many = await Promise.all(Array.from({ length: 8 }, () => m.generate({ plugin: 'softkey' })));
assert.equal(new Set(many.map((x) => x.kid)).size, 8);
const listed = await m.list();
assert.equal(listed.length, 9);
for (const x of listed) assert.match(x.created, /^\d{4}-\d\d-\d\dT/);

// nothing of a key is in the storage in the clear
for (const [key, val] of storage.map) {
  const plain = Buffer.from(val, 'base64').toString('latin1');
  assert.ok(!plain.includes('"d"'), `${key} holds a private key in the clear`);
}

// migrate softkey -> r2ps: r2ps cannot import, so re-enrolment is required
const mig = await m.migrate(k.kid, 'r2ps');
assert.deepEqual(mig, { migrated: false, reEnrollmentRequired: true });

// persistence: another manager on the same storage signs with the key;
// under another KEK it cannot
await m.close();
await rejects(m.list(), 'invalid_input');
const m2 = await open();
const s2 = await m2.sign(k.kid, data);
assert.ok(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, s2.signature, data));
const wrong = await open({ kek: new Uint8Array(32).fill(8) });
await rejects(wrong.sign(k.kid, data), 'plugin_failed', 'softkey');

// delete
const d = await m2.delete(many[0].kid);
assert.deepEqual(d.amr, ['swk']);
await rejects(m2.sign(many[0].kid, data), 'key_not_found');

// typed errors
const unknown = b64u.enc(new Uint8Array(32));
await rejects(m2.sign(unknown, data), 'key_not_found');
await rejects(m2.sign('not-a-kid', data), 'invalid_input');
await rejects(m2.sign(k.kid, 'not bytes'), 'invalid_input');
await rejects(m2.generate({ plugin: 'nope' }), 'no_plugin', 'nope');
await rejects(m2.generate({ bogus: 1 }), 'invalid_input');
await rejects(m2.generate({ plugin: 'r2ps' }), 'auth_required', 'r2ps');
await rejects(m2.generate({ requirement: { key_storage: ['iso_18045_high'] } }), 'no_eligible_plugin');
await rejects(m2.enrol('softkey', 'code'), 'unsupported', 'softkey');
await rejects(m2.migrate(k.kid, 'softkey'), 'invalid_input');
await rejects(m2.migrate(k.kid, 3), 'invalid_input');
await rejects(m2.enrol('r2ps'), 'invalid_input');
await rejects(m2.sign(k.kid, new Uint8Array((1 << 20) + 1)), 'invalid_input');
await rejects(m2.signJWS(k.kid, {}, { big: 'x'.repeat(1 << 20) }), 'invalid_input');
await rejects(m2.attestation(k.kid, 'n'), 'invalid_input');
await rejects(m2.attestation([k.kid], 5), 'invalid_input');
await rejects(m2.attestation([k.kid], 'n'), 'unsupported', 'softkey');
const priv = await subtle.exportKey('jwk', peer.privateKey);
await rejects(m2.ecdh(k.kid, { kty: 'EC', crv: 'P-256', x: priv.x, y: priv.y, d: priv.d }), 'invalid_input');
await rejects(m2.ecdh(k.kid, 'jwk'), 'invalid_input');
const nodef = await W.open({ storage: memoryStorage(), kek, plugins: { softkey: {} } });
await rejects(nodef.generate({}), 'no_default');
await rejects(W.open({ storage: memoryStorage(), kek: new Uint8Array(16), plugins: {} }), 'invalid_input');
await rejects(W.open({ storage: {}, kek, plugins: {} }), 'invalid_input');
await rejects(W.open({ storage: memoryStorage(), kek, plugins: { fido2: { rpId: '127.0.0.1' } } }), 'invalid_input');
await rejects(W.open({ storage: memoryStorage(), kek, plugins: { fido2: {} } }), 'invalid_input');

// a storage that fails: the host's error comes back as a rejection
const failing = memoryStorage();
failing.create = async () => { throw new TypeError('quota exceeded'); };
const mf = await W.open({ storage: failing, kek, plugins: { softkey: {} }, defaults: { global: 'softkey' } });
const e = await rejects(mf.generate({}), 'internal');
assert.match(e.message, /quota exceeded/);

// a signing benchmark (no threshold: measured, printed)
const b = await bench(() => m2.sign(k.kid, data), 200);
console.log(JSON.stringify({ test: 'softkey', ok: true, loadMs: W.loadMs, ...b }));
process.exit(0);
