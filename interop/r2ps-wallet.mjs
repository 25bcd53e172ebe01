#!/usr/bin/env node
// An R2PS wallet built only from other people's code, for interop with wsca
// (docs/protocol.md, the strict profile of draft-santesson-r2ps-00):
//
//   OPAQUE  @serenity-kit/opaque-p256 (facebook/opaque-ke in WASM, P-256 suite)
//   JOSE    jose (panva/jose): ECDH-ES + A256GCM and dir + A256GCM JWE, ES256 JWS
//
// It enrols (2fa_registration), logs in (create_session), generates a key in
// the 2FA session (p256_generate), has it sign (sign_ecdsa) and verifies the
// signature with node:crypto. Nothing here comes from the wsca repository.
//
// Usage:
//   node r2ps-wallet.mjs [--context NAME] [--state FILE] <baseURL> <unit> <code|-> <pin>
//
//   <code>   the activation code; "-" skips enrolment and loads the wallet's
//            keys from --state (written by an earlier run that enrolled)
//   --state  where the wallet keeps its private CSK and CAK (JWK, JSON)
//   --context the R2PS security context (default "hsm")
//
// Prints one JSON summary line on stdout. Exit status: 0 success, 3 the
// server refused (summary.error holds its Table 1 code), 1 anything else.

import { randomBytes, createHash, createPublicKey, verify as nodeVerify, webcrypto } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import * as jose from "jose";
import * as opaque from "@serenity-kit/opaque-p256";

// jose uses the global WebCrypto, which Node 18 has only as node:crypto's.
globalThis.crypto ??= webcrypto;

// The client's key stretching: the server never runs the KSF
// (docs/protocol.md §5, "identity KSF ... the client may harden the PIN"), so
// any choice works as long as registration and login agree. Cheapest Argon2id.
const KSF = { "argon2id-custom": { iterations: 1, memory: 1024, parallelism: 1 } };

const TIMEOUT_MS = 30_000;

// --- encodings ---------------------------------------------------------------

const utf8 = (s) => new TextEncoder().encode(s);
const sha256 = (b) => new Uint8Array(createHash("sha256").update(b).digest());
const b64url = (b) => Buffer.from(b).toString("base64url");
// Binary members of a JWS payload: standard base64 with padding (§4.2).
const std = (b) => Buffer.from(b).toString("base64");

function fromStd(s, what) {
  if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw new Error(`${what}: not standard padded base64: ${JSON.stringify(s)}`);
  }
  const b = Buffer.from(s, "base64");
  if (b.toString("base64") !== s) throw new Error(`${what}: not canonical base64`);
  return new Uint8Array(b);
}

// serenity's messages are base64url strings; p_data is standard base64.
const serenityToStd = (s) => std(Buffer.from(s, "base64url"));
const stdToSerenity = (s, what) => b64url(fromStd(s, what));

// --- errors ------------------------------------------------------------------

// R2PSError is a refusal by the server: a problem body (HTTP status) or
// success false inside the envelope (status 200).
class R2PSError extends Error {
  constructor(code, status, step) {
    super(`server refused ${step}: ${code} (HTTP ${status})`);
    this.code = code;
    this.status = status;
    this.step = step;
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// --- wallet ------------------------------------------------------------------

class Wallet {
  constructor(baseURL, unit, context) {
    this.base = baseURL.replace(/\/+$/, "");
    this.unit = unit;
    this.context = context;
  }

  // The server's keys from the well-known JWKS; each kid must be the key's
  // RFC 7638 thumbprint (docs/protocol.md §1).
  async fetchServerKeys() {
    const res = await fetch(this.base + "/.well-known/r2ps-keys", { signal: AbortSignal.timeout(TIMEOUT_MS) });
    check(res.ok, `GET /.well-known/r2ps-keys: HTTP ${res.status}`);
    const { keys } = await res.json();
    check(Array.isArray(keys), "JWKS without keys");
    for (const k of keys) {
      const tp = await jose.calculateJwkThumbprint(k, "sha256");
      check(tp === k.kid, `server key kid ${k.kid} is not its thumbprint ${tp}`);
      const pub = { kty: k.kty, crv: k.crv, x: k.x, y: k.y };
      if (k.use === "enc") {
        this.encKID = k.kid;
        this.encKey = await jose.importJWK(pub, "ECDH-ES");
      } else if (k.use === "sig") {
        this.sigKID = k.kid;
        this.sigKey = await jose.importJWK(pub, "ES256");
      }
    }
    check(this.encKey && this.sigKey, "JWKS needs one use:enc and one use:sig key");
  }

  // Fresh CSK (ES256) and CAK (ECDH-ES on P-256).
  async generateKeys() {
    const csk = await jose.generateKeyPair("ES256", { extractable: true });
    const cak = await jose.generateKeyPair("ECDH-ES", { crv: "P-256", extractable: true });
    await this.setKeys(csk.privateKey, csk.publicKey, cak.privateKey, cak.publicKey);
  }

  async setKeys(cskPriv, cskPub, cakPriv, cakPub) {
    this.csk = cskPriv;
    this.cak = cakPriv;
    // exportJWK gives {kty, crv, x, y}: the members RFC 7638 hashes.
    this.cskJWK = await jose.exportJWK(cskPub);
    this.cakJWK = await jose.exportJWK(cakPub);
    this.cskKID = await jose.calculateJwkThumbprint(this.cskJWK, "sha256");
    this.cakKID = await jose.calculateJwkThumbprint(this.cakJWK, "sha256");
  }

  async saveState(file) {
    const state = {
      unit: this.unit,
      context: this.context,
      csk: await jose.exportJWK(this.csk),
      cak: await jose.exportJWK(this.cak),
    };
    await writeFile(file, JSON.stringify(state), { mode: 0o600 });
  }

  async loadState(file) {
    const s = JSON.parse(await readFile(file, "utf8"));
    check(s.unit === this.unit && s.context === this.context, `state file ${file} is for another unit or context`);
    const pub = ({ kty, crv, x, y }) => ({ kty, crv, x, y });
    await this.setKeys(
      await jose.importJWK(s.csk, "ES256", { extractable: true }),
      await jose.importJWK(pub(s.csk), "ES256"),
      await jose.importJWK(s.cak, "ECDH-ES", { extractable: true }),
      await jose.importJWK(pub(s.cak), "ECDH-ES"),
    );
  }

  // seal builds a request: the JWE protected header first, then the JWS
  // whose jwe_hash covers that header (§4.2.1), then the JWE around it.
  //
  // In 1FA mode the header holds the ephemeral key, so the wallet chooses
  // it (jose's epk key management parameter) and has jose build the header
  // with an empty plaintext first. jose's header is a function of its
  // inputs only, so the real encryption must produce the same one; that is
  // checked below, never assumed.
  async seal(mode, type, data, { embedJWK = false, sessionID, sessionKey } = {}) {
    let header, key, km;
    if (mode === "1fa") {
      header = { alg: "ECDH-ES", enc: "A256GCM", typ: "r2ps-1fa", cty: "JWT", kid: this.encKID };
      // apu = client_id (the unit), apv = context (docs/protocol.md §2).
      const eph = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
      km = { epk: eph.privateKey, apu: utf8(this.unit), apv: utf8(this.context) };
      key = this.encKey;
    } else {
      header = { alg: "dir", enc: "A256GCM", typ: "r2ps-2fa", cty: "JWT", kid: sessionID };
      key = sessionKey;
    }
    const encrypt = (plaintext) => {
      const e = new jose.CompactEncrypt(plaintext).setProtectedHeader(header);
      if (km) e.setKeyManagementParameters(km);
      return e.encrypt(key);
    };
    const protectedB64 = (await encrypt(new Uint8Array(0))).split(".")[0];

    const nonce = randomBytes(16);
    const payload = {
      ver: "1.0",
      nonce: std(nonce),
      iat: Math.floor(Date.now() / 1000),
      type,
      jwe_hash: std(sha256(utf8(protectedB64))),
      data,
    };
    const jwsHeader = { alg: "ES256", typ: "r2ps-request+jwt", kid: this.cskKID };
    if (embedJWK) jwsHeader.jwk = this.cskJWK; // self-signed 2fa_registration (docs/protocol.md §5)
    const jws = await new jose.CompactSign(utf8(JSON.stringify(payload))).setProtectedHeader(jwsHeader).sign(this.csk);
    const jwe = await encrypt(utf8(jws));
    check(jwe.split(".")[0] === protectedB64, "jose produced another protected header than the one hashed");
    return { body: jwe, nonce: std(nonce) };
  }

  async post(body, step) {
    const res = await fetch(this.base + "/r2ps", {
      method: "POST",
      headers: { "content-type": "application/jose" },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status !== 200) {
      // An unauthenticated refusal: RFC 9457 problem details (docs/protocol.md §1).
      let code = "SERVER_ERROR";
      try {
        code = JSON.parse(text).code ?? code;
      } catch {}
      throw new R2PSError(code, res.status, step);
    }
    check((res.headers.get("content-type") ?? "").startsWith("application/jose"), `${step}: content-type ${res.headers.get("content-type")}`);
    return text;
  }

  // open decrypts and verifies a response, checks the nonce echo and
  // returns data; success false becomes an R2PSError.
  async open(mode, text, nonce, step, { sessionID, sessionKey } = {}) {
    let plaintext, h;
    if (mode === "1fa") {
      // Encrypted to the CAK with the party info swapped: apu = context,
      // apv = client_id (docs/protocol.md §2, I-D §4.1.1).
      ({ plaintext, protectedHeader: h } = await jose.compactDecrypt(text, this.cak, {
        keyManagementAlgorithms: ["ECDH-ES"],
        contentEncryptionAlgorithms: ["A256GCM"],
      }));
      check(h.typ === "r2ps-1fa" && h.cty === "JWT", `${step}: response JWE typ ${h.typ} cty ${h.cty}`);
      check(h.kid === this.cakKID, `${step}: response JWE kid ${h.kid}, want the CAK's ${this.cakKID}`);
      check(h.apu === b64url(utf8(this.context)) && h.apv === b64url(utf8(this.unit)), `${step}: response apu/apv`);
    } else {
      ({ plaintext, protectedHeader: h } = await jose.compactDecrypt(text, sessionKey, {
        keyManagementAlgorithms: ["dir"],
        contentEncryptionAlgorithms: ["A256GCM"],
      }));
      check(h.typ === "r2ps-2fa" && h.cty === "JWT" && h.kid === sessionID, `${step}: response JWE header ${JSON.stringify(h)}`);
    }
    const { payload, protectedHeader: jh } = await jose.compactVerify(plaintext, this.sigKey, { algorithms: ["ES256"] });
    check(jh.typ === "r2ps-response+jwt" && jh.kid === this.sigKID, `${step}: response JWS header ${JSON.stringify(jh)}`);
    const p = JSON.parse(new TextDecoder().decode(payload));
    check(p.ver === "1.0" && Number.isInteger(p.iat), `${step}: response ver/iat`);
    check(p.nonce === nonce, `${step}: response nonce ${p.nonce} does not echo ${nonce}`);
    check(p.data && typeof p.data === "object", `${step}: response without data`);
    if (p.data.success !== true) throw new R2PSError(p.data.error ?? "(none)", 200, step);
    return p.data;
  }

  async call1FA(type, data, step, opts = {}) {
    const { body, nonce } = await this.seal("1fa", type, data, opts);
    return this.open("1fa", await this.post(body, step), nonce, step);
  }

  async call2FA(type, data) {
    const s = { sessionID: this.sessionID, sessionKey: this.sessionKey };
    const { body, nonce } = await this.seal("2fa", type, data, s);
    return this.open("2fa", await this.post(body, type), nonce, type, s);
  }

  // enrol runs 2fa_registration: evaluate, then finalize with the code.
  async enrol(code, pin) {
    const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password: pin });
    const r1 = await this.call1FA(
      "2fa_registration",
      { protocol: "opaque", state: "evaluate", p_data: serenityToStd(registrationRequest), cak: this.cakJWK },
      "2fa_registration/evaluate",
      { embedJWK: true },
    );
    const { registrationRecord } = opaque.client.finishRegistration({
      clientRegistrationState,
      registrationResponse: stdToSerenity(r1.p_data, "RegistrationResponse"),
      password: pin,
      keyStretching: KSF,
    });
    await this.call1FA(
      "2fa_registration",
      {
        protocol: "opaque",
        state: "finalize",
        p_data: serenityToStd(registrationRecord),
        cak: this.cakJWK,
        authorization: std(utf8(code)),
        authorization_type: "otp",
      },
      "2fa_registration/finalize",
      { embedJWK: true },
    );
  }

  // login runs create_session. With a wrong PIN opaque-ke refuses KE2 (the
  // server's MAC does not verify), so there is no KE3 to send; the wallet
  // then finalizes with a random MAC, which no PIN can produce, so that the
  // server's verdict is seen too. The attempt was counted at KE2 either way.
  async login(pin) {
    const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password: pin });
    const r1 = await this.call1FA(
      "create_session",
      { protocol: "opaque", state: "evaluate", p_data: serenityToStd(startLoginRequest) },
      "create_session/evaluate",
    );
    check(typeof r1.session_id === "string" && r1.session_id, "create_session/evaluate: no session_id");
    const fin = opaque.client.finishLogin({
      clientLoginState,
      loginResponse: stdToSerenity(r1.p_data, "KE2"),
      password: pin,
      keyStretching: KSF,
    });
    this.clientDetectedWrongPIN = !fin;
    const ke3 = fin ? serenityToStd(fin.finishLoginRequest) : std(randomBytes(32));
    const r2 = await this.call1FA(
      "create_session",
      { protocol: "opaque", state: "finalize", p_data: ke3, session_id: r1.session_id },
      "create_session/finalize",
    );
    check(fin, "the server accepted a KE3 the client could not compute");
    this.sessionID = r1.session_id;
    this.sessionKey = new Uint8Array(Buffer.from(fin.sessionKey, "base64url"));
    check(this.sessionKey.length === 32, `OPAQUE session key is ${this.sessionKey.length} bytes, want 32`);
    return r2;
  }
}

// --- main --------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { context: "hsm", state: undefined };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--context") opts.context = argv[++i];
    else if (argv[i] === "--state") opts.state = argv[++i];
    else pos.push(argv[i]);
  }
  if (pos.length !== 4 || !opts.context) {
    throw new Error("usage: node r2ps-wallet.mjs [--context NAME] [--state FILE] <baseURL> <unit> <code|-> <pin>");
  }
  const [baseURL, unit, code, pin] = pos;
  if (code === "-" && !opts.state) throw new Error('code "-" needs --state');
  return { ...opts, baseURL, unit, code, pin };
}

async function main() {
  const major = Number(process.versions.node.split(".")[0]);
  check(major >= 18, `node ${process.versions.node}: need 18 or newer`);
  const args = parseArgs(process.argv.slice(2));
  await opaque.ready;

  const w = new Wallet(args.baseURL, args.unit, args.context);
  const summary = { ok: false, unit: args.unit, context: args.context };
  try {
    await w.fetchServerKeys();
    summary.server = { enc_kid: w.encKID, sig_kid: w.sigKID };
    if (args.code === "-") {
      await w.loadState(args.state);
      summary.enrolled = false;
    } else {
      await w.generateKeys();
      await w.enrol(args.code, args.pin);
      summary.enrolled = true;
      if (args.state) await w.saveState(args.state);
    }
    summary.csk_kid = w.cskKID;
    summary.cak_kid = w.cakKID;

    const s = await w.login(args.pin);
    summary.session = { established: true, id: w.sessionID, expires: s.session_expiration_time };

    const gen = await w.call2FA("p256_generate", { curve: "P-256" });
    check(typeof gen.kid === "string" && gen.public_key?.kty === "EC" && gen.public_key.crv === "P-256", "p256_generate answer");
    check(gen.public_key.d === undefined, "p256_generate returned a private key");
    summary.kid = gen.kid;
    summary.public_key = { kty: "EC", crv: "P-256", x: gen.public_key.x, y: gen.public_key.y };

    const message = utf8(`wsca interop ${b64url(randomBytes(8))}`);
    const sig = await w.call2FA("sign_ecdsa", { kid: gen.kid, tbs_hash: std(sha256(message)) });
    const der = fromStd(sig.signature, "signature");
    const pub = createPublicKey({ key: summary.public_key, format: "jwk" });
    summary.signature_verified = nodeVerify("sha256", message, { key: pub, dsaEncoding: "der" }, der);
    summary.signature = sig.signature;
    summary.message = b64url(message);
    check(summary.signature_verified, "the server's signature does not verify under the generated key");
    summary.ok = true;
    process.stdout.write(JSON.stringify(summary) + "\n");
  } catch (e) {
    if (!(e instanceof R2PSError)) throw e;
    summary.error = { code: e.code, http_status: e.status, step: e.step };
    if (w.clientDetectedWrongPIN !== undefined) summary.client_detected_wrong_pin = w.clientDetectedWrongPIN;
    process.stdout.write(JSON.stringify(summary) + "\n");
    process.exitCode = 3;
  }
}

main().catch((e) => {
  process.stderr.write(`r2ps-wallet: ${e?.stack ?? e}\n`);
  process.exitCode = 1;
});
