// Independent reader of wsca's Token Status Lists, run by
// statuslist_test.go: node statuslist-check.mjs TOKEN.jwt TOKEN.cwt URI
//
// The JWT list is decoded by @sd-jwt/jwt-status-list (which inflates with
// pako) and its signature verified by jose against the x5c leaf; the CWT is
// taken apart with cbor2, its COSE_Sign1 signature verified with node:crypto
// over a Sig_structure encoded by cbor2, and its list inflated with
// node:zlib and unpacked here (LSB first). Prints one JSON line:
// {"jwt": {...}, "cwt": {...}} with, for each, the header values checked,
// the claims, the list length and every non-zero status as [idx, status].
import { readFileSync } from 'node:fs';
import { X509Certificate, verify } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';
import { decodeProtectedHeader, decodeJwt, importX509, jwtVerify } from 'jose';
import { decode, encode, Tag } from 'cbor2';

const [jwtFile, cwtFile, uri] = process.argv.slice(2);

function nonZero(len, get) {
  const out = [];
  for (let i = 0; i < len; i++) {
    const s = get(i);
    if (s !== 0) out.push([i, s]);
  }
  return out;
}

async function checkJWT(token) {
  const header = decodeProtectedHeader(token);
  const pem = `-----BEGIN CERTIFICATE-----\n${header.x5c[0]}\n-----END CERTIFICATE-----`;
  const key = await importX509(pem, 'ES256');
  const { payload } = await jwtVerify(token, key, { typ: 'statuslist+jwt', algorithms: ['ES256'], subject: uri });
  const list = getListFromStatusListJWT(token);
  const len = list.statusList.length;
  return {
    typ: header.typ, alg: header.alg, kid: header.kid ?? null, x5c: header.x5c.length,
    sub: payload.sub, iat: payload.iat, exp: payload.exp, ttl: payload.ttl,
    bits: list.getBitsPerStatus(), len,
    statuses: nonZero(len, (i) => list.getStatus(i)),
    unverified_sub: decodeJwt(token).sub,
  };
}

function checkCWT(bytes) {
  const msg = decode(bytes);
  if (!(msg instanceof Tag) || msg.tag !== 18) throw new Error('not COSE_Sign1_Tagged');
  const [protectedBytes, , payloadBytes, signature] = msg.contents;
  const prot = decode(protectedBytes);
  const get = (m, k) => (m instanceof Map ? m.get(k) : m[k]);
  const chain = get(prot, 33);
  const leaf = new X509Certificate(Buffer.from(Array.isArray(chain) ? chain[0] : chain));
  const toBeSigned = encode(['Signature1', protectedBytes, new Uint8Array(0), payloadBytes]);
  const ok = verify('sha256', toBeSigned, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) throw new Error('COSE signature does not verify');
  const claims = decode(payloadBytes);
  const sl = get(claims, 65533);
  const bits = get(sl, 'bits');
  const raw = inflateSync(Buffer.from(get(sl, 'lst')));
  const perByte = 8 / bits;
  const len = raw.length * perByte;
  const mask = (1 << bits) - 1;
  return {
    alg: get(prot, 1), typ: get(prot, 16), kid: Buffer.from(get(prot, 4) ?? []).toString() || null,
    x5chain: Array.isArray(chain) ? chain.length : 1,
    sub: get(claims, 2), iat: get(claims, 6), exp: get(claims, 4), ttl: get(claims, 65534),
    bits, len,
    statuses: nonZero(len, (i) => (raw[Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask),
  };
}

try {
  const jwt = await checkJWT(readFileSync(jwtFile, 'utf8').trim());
  const cwt = checkCWT(new Uint8Array(readFileSync(cwtFile)));
  console.log(JSON.stringify({ ok: true, jwt, cwt }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  process.exit(1);
}
