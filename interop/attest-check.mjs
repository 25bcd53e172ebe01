// attest-check.mjs: independent validators read wsca's attestations.
//
// Usage: node attest-check.mjs <input.json>
//
// The input (written by attest_test.go) holds the trust anchors (PEM) and
// tokens built by the Go attest package. The key attestation is parsed and
// verified by @openid4vc/openid4vci 0.4.6 (verifyKeyAttestationJwt for the
// proof types `attestation` and `jwt`, Openid4vciIssuer's attestation and
// jwt proof paths); the wallet instance attestation and its PoP by
// @openid4vc/oauth2 0.4.6 (Oauth2AuthorizationServer.verifyClientAttestation,
// verifyClientAttestationJwt). Those libraries leave the cryptography to a
// callback: here node:crypto checks the x5c chain (leaf not self-signed, each
// certificate issued by the next, the last by a trust anchor, no anchor in the
// chain, all within validity) and the ES256 signature. Nothing of wsca is used.
//
// It prints one JSON object: per check {ok, error?, ...}. Exit status 0
// unless the script itself failed.
import { readFile } from "node:fs/promises";
import { X509Certificate, createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import { Openid4vciIssuer, parseKeyAttestationJwt, verifyKeyAttestationJwt } from "@openid4vc/openid4vci";
import { Oauth2AuthorizationServer, verifyClientAttestationJwt } from "@openid4vc/oauth2";

const input = JSON.parse(await readFile(process.argv[2], "utf8"));
const anchors = input.trust_anchors_pem.map((p) => new X509Certificate(p));

// verifyChain returns the leaf's public key after the HAIP 4.5.1 checks.
function verifyChain(x5c) {
  const certs = x5c.map((s) => new X509Certificate(Buffer.from(s, "base64")));
  const now = new Date();
  for (const c of certs) {
    if (new Date(c.validFrom) > now || new Date(c.validTo) < now) throw new Error("certificate outside validity");
    if (anchors.some((a) => a.fingerprint256 === c.fingerprint256)) throw new Error("trust anchor in x5c");
  }
  const leaf = certs[0];
  if (leaf.checkIssued(leaf) && leaf.verify(leaf.publicKey)) throw new Error("leaf is self-signed");
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i].checkIssued(certs[i + 1]) || !certs[i].verify(certs[i + 1].publicKey)) {
      throw new Error(`x5c[${i}] not issued by x5c[${i + 1}]`);
    }
  }
  const last = certs[certs.length - 1];
  if (!anchors.some((a) => last.checkIssued(a) && last.verify(a.publicKey))) throw new Error("no trust anchor issued the chain");
  return leaf.publicKey;
}

const callbacks = {
  hash: (data) => createHash("sha256").update(data).digest(),
  generateRandom: (n) => randomBytes(n),
  verifyJwt: async (signer, { compact }) => {
    if (signer.alg !== "ES256") throw new Error(`alg ${signer.alg}`);
    let key;
    if (signer.method === "x5c") key = verifyChain(signer.x5c);
    else if (signer.method === "jwk") key = createPublicKey({ key: signer.publicJwk, format: "jwk" });
    else throw new Error(`signer method ${signer.method} not supported here`);
    const [h, p, s] = compact.split(".");
    const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
    return ok ? { verified: true, signerJwk: key.export({ format: "jwk" }) } : { verified: false };
  },
};

// run records the outcome of one check.
async function run(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e).slice(-600) };
  }
}

const issuer = new Openid4vciIssuer({ callbacks });
const as = new Oauth2AuthorizationServer({ callbacks });
const kaSummary = ({ header, payload }) => ({
  typ: header.typ,
  kids: payload.attested_keys.map((k) => k.kid),
  key_storage: payload.key_storage ?? null,
  user_authentication: payload.user_authentication ?? null,
  key_storage_status: payload.key_storage_status ?? null,
});

const result = {
  ka_parse: await run(async () => kaSummary(parseKeyAttestationJwt({ keyAttestationJwt: input.ka, use: "proof_type.attestation" }))),
  ka_attestation: await run(async () =>
    kaSummary(await verifyKeyAttestationJwt({ callbacks, keyAttestationJwt: input.ka, use: "proof_type.attestation", expectedNonce: input.nonce })),
  ),
  ka_jwt_use: await run(async () => kaSummary(await verifyKeyAttestationJwt({ callbacks, keyAttestationJwt: input.ka, use: "proof_type.jwt" }))),
  ka_issuer_attestation_proof: await run(async () =>
    kaSummary(await issuer.verifyCredentialRequestAttestationProof({ keyAttestationJwt: input.ka, expectedNonce: input.nonce })),
  ),
  ka_issuer_jwt_proof: await run(async () => {
    const r = await issuer.verifyCredentialRequestJwtProof({
      jwt: input.jwt_proof,
      expectedNonce: input.nonce,
      issuerMetadata: { credentialIssuer: { credential_issuer: input.credential_issuer } },
    });
    return { attested: r.keyAttestation !== undefined };
  }),
  ka_wrong_nonce: await run(async () =>
    kaSummary(await verifyKeyAttestationJwt({ callbacks, keyAttestationJwt: input.ka, use: "proof_type.attestation", expectedNonce: "not-the-nonce" })),
  ),
  ka_untrusted_ca: await run(async () =>
    kaSummary(await verifyKeyAttestationJwt({ callbacks, keyAttestationJwt: input.ka_untrusted, use: "proof_type.attestation" })),
  ),
  ka_legacy_typ: await run(async () =>
    kaSummary(await verifyKeyAttestationJwt({ callbacks, keyAttestationJwt: input.ka_legacy, use: "proof_type.attestation", expectedNonce: input.nonce })),
  ),
  wia_pop: await run(async () => {
    const r = await as.verifyClientAttestation({ authorizationServer: input.aud, clientAttestationJwt: input.wia, clientAttestationPopJwt: input.pop });
    return { sub: r.clientAttestation.payload.sub, iss: r.clientAttestation.payload.iss, jti: r.clientAttestationPop.payload.jti };
  }),
  wia_pop_wrong_aud: await run(async () => {
    await as.verifyClientAttestation({ authorizationServer: "https://other.example", clientAttestationJwt: input.wia, clientAttestationPopJwt: input.pop });
    return {};
  }),
  wia_no_iss: await run(async () => {
    await verifyClientAttestationJwt({ callbacks, clientAttestationJwt: input.wia_no_iss });
    return {};
  }),
};
process.stdout.write(JSON.stringify(result) + "\n");
