package attest

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The OIDF conformance-suite conditions for key attestations
// (openid-certification/conformance-suite, vci10wallet/condition), ported
// as table rows: each starts from a valid key attestation, breaks one rule
// and names the error the verifier must return. The conditions' names are
// in the row names.

// mutation changes a token's header and claims maps; key, when non-nil,
// signs instead of the Wallet Provider key.
type mutation struct {
	name string
	edit func(f *fixture, h, c map[string]any)
	key  func(f *fixture) *ecdsa.PrivateKey
	opts KeyAttestationOptions
	want error // nil: accepted
}

func x5cOf(f *fixture, extra ...string) []any {
	var out []any
	for _, s := range encodeX5C(f.chain) {
		out = append(out, s)
	}
	for _, s := range extra {
		out = append(out, s)
	}
	return out
}

func keyAttestationRows() []mutation {
	day := int64(24 * 3600)
	return []mutation{
		{name: "valid", want: nil},
		{name: "valid/expected nonce", opts: KeyAttestationOptions{Nonce: "n-0S6_WzA2Mj"}},
		// EnsureKeyAttestationTypIsKeyAttestationJwt
		{name: "EnsureKeyAttestationTypIsKeyAttestationJwt/legacy typ", edit: func(_ *fixture, h, _ map[string]any) { h["typ"] = TypKeyAttestationLegacy }, want: ErrTyp},
		{name: "EnsureKeyAttestationTypIsKeyAttestationJwt/legacy typ accepted on input", edit: func(_ *fixture, h, _ map[string]any) { h["typ"] = TypKeyAttestationLegacy }, opts: KeyAttestationOptions{AcceptLegacyTyp: true}},
		{name: "EnsureKeyAttestationTypIsKeyAttestationJwt/jwt", edit: func(_ *fixture, h, _ map[string]any) { h["typ"] = "JWT" }, want: ErrTyp},
		{name: "EnsureKeyAttestationTypIsKeyAttestationJwt/missing", edit: func(_ *fixture, h, _ map[string]any) { delete(h, "typ") }, want: ErrTyp},
		{name: "EnsureKeyAttestationTypIsKeyAttestationJwt/case", edit: func(_ *fixture, h, _ map[string]any) { h["typ"] = "Key-Attestation+JWT" }, want: ErrTyp},
		// EnsureKeyAttestationAlgIsES256
		{name: "EnsureKeyAttestationAlgIsES256/ES384", edit: func(_ *fixture, h, _ map[string]any) { h["alg"] = "ES384" }, want: ErrAlg},
		{name: "EnsureKeyAttestationAlgIsES256/none", edit: func(_ *fixture, h, _ map[string]any) { h["alg"] = "none" }, want: ErrAlg},
		{name: "EnsureKeyAttestationAlgIsES256/missing", edit: func(_ *fixture, h, _ map[string]any) { delete(h, "alg") }, want: ErrAlg},
		// EnsureKeyAttestationHasX5cClaim
		{name: "EnsureKeyAttestationHasX5cClaim/missing", edit: func(_ *fixture, h, _ map[string]any) { delete(h, "x5c") }, want: ErrNoX5C},
		{name: "EnsureKeyAttestationHasX5cClaim/empty", edit: func(_ *fixture, h, _ map[string]any) { h["x5c"] = []any{} }, want: ErrNoX5C},
		// ValidateKeyAttestationX5cCertificateChain (HAIP §4.5.1)
		{name: "ValidateKeyAttestationX5cCertificateChain/self-signed leaf", edit: func(f *fixture, h, _ map[string]any) {
			h["x5c"] = encodeX5C(f.selfSigned)
		}, want: ErrSelfSigned},
		{name: "ValidateKeyAttestationX5cCertificateChain/trust anchor in chain", edit: func(f *fixture, h, _ map[string]any) {
			h["x5c"] = x5cOf(f, stdB64.EncodeToString(f.ca.Root.Raw))
		}, want: ErrAnchorInChain},
		{name: "ValidateKeyAttestationX5cCertificateChain/intermediate missing", edit: func(f *fixture, h, _ map[string]any) {
			h["x5c"] = encodeX5C(f.chain[:1])
		}, want: ErrChain},
		{name: "ValidateKeyAttestationX5cCertificateChain/out of order", edit: func(f *fixture, h, _ map[string]any) {
			h["x5c"] = []string{encodeX5C(f.chain)[1], encodeX5C(f.chain)[0]}
		}, want: ErrChain},
		{name: "ValidateKeyAttestationX5cCertificateChain/foreign certificate between leaf and issuer", edit: func(f *fixture, h, _ map[string]any) {
			x := encodeX5C(f.chain)
			h["x5c"] = []string{x[0], encodeX5C(f.otherChain)[1], x[1]}
		}, want: ErrChain},
		{name: "ValidateKeyAttestationX5cCertificateChain/other CA", edit: func(f *fixture, h, _ map[string]any) {
			h["x5c"] = encodeX5C(f.otherChain)
		}, want: ErrChain},
		{name: "ValidateKeyAttestationX5cCertificateChain/not base64", edit: func(_ *fixture, h, _ map[string]any) { h["x5c"] = []string{"*"} }, want: ErrMalformed},
		{name: "ValidateKeyAttestationX5cCertificateChain/signed by another key", key: func(f *fixture) *ecdsa.PrivateKey { return f.wallet[0] }, want: ErrSignature},
		// EnsureKeyAttestationExpIsPresentForJwtProof
		{name: "EnsureKeyAttestationExpIsPresentForJwtProof/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "exp") }, want: ErrTime},
		{name: "exp/past", edit: func(_ *fixture, _, c map[string]any) {
			c["iat"] = testNow.Unix() - 7200
			c["exp"] = testNow.Unix() - 3600
		}, want: ErrTime},
		{name: "iat/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "iat") }, want: ErrTime},
		{name: "iat/future", edit: func(_ *fixture, _, c map[string]any) { c["iat"] = testNow.Unix() + 3600 }, want: ErrTime},
		{name: "exp/not after iat", edit: func(_ *fixture, _, c map[string]any) { c["iat"] = testNow.Unix() - 10; c["exp"] = testNow.Unix() - 10 }, want: ErrTime},
		{name: "iat/string", edit: func(_ *fixture, _, c map[string]any) { c["iat"] = "1" }, want: ErrMalformed},
		// ValidateKeyAttestationNonce
		{name: "ValidateKeyAttestationNonce/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "nonce"); delete(c, "c_nonce") }, opts: KeyAttestationOptions{Nonce: "n-0S6_WzA2Mj"}, want: ErrNonce},
		{name: "ValidateKeyAttestationNonce/mismatch", opts: KeyAttestationOptions{Nonce: "other"}, want: ErrNonce},
		{name: "ValidateKeyAttestationNonce/c_nonce differs", edit: func(_ *fixture, _, c map[string]any) { c["c_nonce"] = "other" }, want: ErrNonce},
		{name: "ValidateKeyAttestationNonce/none issued, none sent", edit: func(_ *fixture, _, c map[string]any) { delete(c, "nonce"); delete(c, "c_nonce") }},
		// attested_keys
		{name: "attested_keys/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "attested_keys") }, want: ErrKey},
		{name: "attested_keys/empty", edit: func(_ *fixture, _, c map[string]any) { c["attested_keys"] = []any{} }, want: ErrKey},
		{name: "attested_keys/private member", edit: func(_ *fixture, _, c map[string]any) { k0(c)["d"] = "AAAA" }, want: ErrKey},
		{name: "attested_keys/wrong kid", edit: func(_ *fixture, _, c map[string]any) { k0(c)["kid"] = "00112233445566778899aabbccddeeff" }, want: ErrKey},
		{name: "attested_keys/off curve", edit: func(_ *fixture, _, c map[string]any) { k0(c)["y"] = k0(c)["x"] }, want: ErrKey},
		{name: "attested_keys/not P-256", edit: func(_ *fixture, _, c map[string]any) { k0(c)["crv"] = "P-384" }, want: ErrKey},
		{name: "attested_keys/repeated", edit: func(_ *fixture, _, c map[string]any) {
			ks := c["attested_keys"].([]any)
			c["attested_keys"] = []any{ks[0], ks[0]}
		}, want: ErrKey},
		// key_storage_status (TS3 v1.5)
		{name: "key_storage_status/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "key_storage_status") }, want: ErrStatus},
		{name: "key_storage_status/missing, optional", edit: func(_ *fixture, _, c map[string]any) { delete(c, "key_storage_status") }, opts: KeyAttestationOptions{StatusOptional: true}},
		{name: "key_storage_status/no status_list", edit: func(_ *fixture, _, c map[string]any) { kss(c)["status"] = map[string]any{} }, want: ErrStatus},
		{name: "key_storage_status/no exp", edit: func(_ *fixture, _, c map[string]any) { delete(kss(c), "exp") }, want: ErrStatus},
		{name: "key_storage_status/exp under 31 days", edit: func(_ *fixture, _, c map[string]any) {
			kss(c)["exp"] = testNow.Unix() + 31*day - 1
		}, want: ErrLifetime},
		{name: "key_storage_status/http uri", edit: func(_ *fixture, _, c map[string]any) {
			kss(c)["status"].(map[string]any)["status_list"].(map[string]any)["uri"] = "http://wp.example/1"
		}, want: ErrStatus},
		// strict decoding
		{name: "strict/member case", edit: func(_ *fixture, _, c map[string]any) { c["EXP"] = c["exp"] }, want: ErrMalformed},
		{name: "strict/nested member case", edit: func(_ *fixture, _, c map[string]any) { k0(c)["KTY"] = "EC" }, want: ErrMalformed},
		{name: "strict/crit", edit: func(_ *fixture, h, _ map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false }, want: ErrMalformed},
		{name: "unknown claims ignored", edit: func(_ *fixture, _, c map[string]any) { c["eudi_wallet_info"] = map[string]any{"x": 1} }},
	}
}

// k0 is the first attested key of claims c.
func k0(c map[string]any) map[string]any {
	return c["attested_keys"].([]any)[0].(map[string]any)
}

// kss is the key_storage_status of claims c.
func kss(c map[string]any) map[string]any {
	return c["key_storage_status"].(map[string]any)
}

func TestKeyAttestationConformance(t *testing.T) {
	f := newFixture(t)
	good, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range keyAttestationRows() {
		t.Run(tc.name, func(t *testing.T) {
			h, c := decodeToken(t, good)
			if tc.edit != nil {
				tc.edit(f, h, c)
			}
			key := f.key
			if tc.key != nil {
				key = tc.key(f)
			}
			ka, err := f.ver.VerifyKeyAttestation(resign(t, key, h, c), tc.opts)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && len(ka.Keys) != 2 && tc.name != "attested_keys/repeated" {
				t.Fatalf("keys = %d, want 2", len(ka.Keys))
			}
		})
	}
}

// TestKeyAttestationDuplicateMember: a claims set with a member twice is
// refused, whichever value a parser would keep.
func TestKeyAttestationDuplicateMember(t *testing.T) {
	f := newFixture(t)
	good, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := decodeToken(t, good)
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b64.DecodeString(strings.Split(good, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	dup := append([]byte(`{"exp":1,`), c[1:]...)
	_, err = f.ver.VerifyKeyAttestation(rawToken(t, f.key, hb, dup), KeyAttestationOptions{})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}
