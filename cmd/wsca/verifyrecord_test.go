package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/secdsa"
)

// recordFixture is the record, certificate and provider key of
// secdsa/testdata/vectors.json, and files for them in a temporary directory.
type recordFixture struct {
	t        *testing.T
	dir      string
	record   []byte // binary
	cert     []byte // binary
	provider *ecdsa.PrivateKey
}

func newRecordFixture(t *testing.T) *recordFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "secdsa", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Inputs map[string]string `json:"inputs"`
		Values map[string]string `json:"intermediates"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	prov, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), dec(v.Inputs["provider"]))
	if err != nil {
		t.Fatal(err)
	}
	return &recordFixture{t: t, dir: t.TempDir(), record: dec(v.Values["transaction_record"]),
		cert: dec(v.Values["internal_certificate"]), provider: prov}
}

func (f *recordFixture) file(name string, b []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func pemPublicKey(t *testing.T, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pemCertificate(t *testing.T, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provider"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func jwks(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// resign returns the record changed by f and signed again by the provider
// (what a dishonest provider could do).
func resign(t *testing.T, rec []byte, prov *ecdsa.PrivateKey, f func(*secdsa.TRecord)) []byte {
	t.Helper()
	tr, err := secdsa.ParseTRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	f(tr)
	der, err := ecdsa.SignASN1(rand.Reader, prov, tr.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Signature, err = ecp256.DERToRaw(der); err != nil {
		t.Fatal(err)
	}
	return tr.Marshal()
}

func verifyCLI(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"verify-record"}, args...), bytes.NewReader(stdin), &out, &errb,
		func(string) (string, bool) { return "", false })
	return code, out.String(), errb.String()
}

// TestVerifyRecordValid: the vectors' record verifies under the provider's
// key in each accepted form, from each accepted encoding, and the output
// shows its fields.
func TestVerifyRecordValid(t *testing.T) {
	f := newRecordFixture(t)
	pub := &f.provider.PublicKey
	other := newP256(t)
	keyFiles := map[string]string{
		"PEM public key":  f.file("pub.pem", pemPublicKey(t, pub)),
		"PEM certificate": f.file("cert.pem", pemCertificate(t, f.provider)),
		"JWKS, provider key second": f.file("jwks.json", jwks(t,
			jose.JSONWebKey{Key: &other.PublicKey, KeyID: "old", Use: "sig"}, jose.JSONWebKey{Key: pub, KeyID: "prov", Use: "sig"})),
		"one JWK": f.file("jwk.json", func() []byte { b, _ := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: "prov"}); return b }()),
	}
	recFiles := map[string]string{
		"binary":            f.file("rec.bin", f.record),
		"hex":               f.file("rec.hex", []byte(hex.EncodeToString(f.record)+"\n")),
		"base64url":         f.file("rec.b64u", []byte(base64.RawURLEncoding.EncodeToString(f.record))),
		"base64 std padded": f.file("rec.b64", []byte(base64.StdEncoding.EncodeToString(f.record))),
	}
	cert := f.file("ic.hex", []byte(hex.EncodeToString(f.cert)))
	for kn, kf := range keyFiles {
		for rn, rf := range recFiles {
			t.Run(kn+"/"+rn, func(t *testing.T) {
				code, out, errs := verifyCLI(t, nil, "--record", rf, "--cert", cert, "--provider", kf)
				if code != 0 || !strings.HasPrefix(out, "valid\n") {
					t.Fatalf("exit %d\n%s%s", code, out, errs)
				}
				for _, want := range []string{`"unit-vector"`, "serial number:   1\n", `"Authorize 1.000 Euro to NL02INGB0123456789"`,
					`"session-42"`, `"OK"`, "2025-12-31T18:50:12Z", "(issued 2025-12-31T18:48:32Z)"} {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}
	t.Run("stdin and --json", func(t *testing.T) {
		code, out, errs := verifyCLI(t, f.record, "--record", "-", "--cert", cert, "--provider", keyFiles["JWKS, provider key second"], "--json")
		var res recordResult
		if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.Valid || res.Record.ProviderKID != "prov" || res.Record.SN != 1 {
			t.Fatalf("exit %d, %v: %s%s", code, err, out, errs)
		}
	})
}

// TestVerifyRecordInvalid: each way a record, a certificate or a key can
// be wrong gives "invalid: <reason>" and exit 1.
func TestVerifyRecordInvalid(t *testing.T) {
	f := newRecordFixture(t)
	pub := &f.provider.PublicKey
	other := newP256(t)
	good := map[string][]byte{"rec": f.record, "ic": f.cert, "key": pemPublicKey(t, pub)}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	ic, err := secdsa.ParseInternalCert(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	reissued, err := secdsa.IssueInternalCert(ic.AccountID, ic.U, ic.GPrime, ic.YPrime, ic.IssuedAt+1, f.provider)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file string
		content    []byte
		kid        string
		reason     string
	}{
		{"instruction changed", "rec", bytes.Replace(f.record, []byte("1.000 Euro"), []byte("9.000 Euro"), 1), "", "signature invalid: transaction record"},
		{"record signature changed", "rec", flip(f.record, len(f.record)-1), "", "signature invalid: transaction record"},
		{"instruction changed and re-signed", "rec", resign(t, f.record, f.provider, func(r *secdsa.TRecord) { r.Instruction = []byte("Authorize 9.000 Euro") }), "", "proof invalid"},
		{"R' changed and re-signed", "rec", resign(t, f.record, f.provider, func(r *secdsa.TRecord) { r.RPrime = r.R }), "", "R' is not e·G'' + r·Y''"},
		{"SN changed and re-signed", "rec", resign(t, f.record, f.provider, func(r *secdsa.TRecord) { r.SN = 2 }), "", "proof invalid"},
		{"H1 changed and re-signed", "rec", resign(t, f.record, f.provider, func(r *secdsa.TRecord) { r.H1 = make([]byte, 32) }), "", "H1 does not answer the challenge"},
		{"certificate re-issued", "ic", reissued.Marshal(), "", "does not name this Internal Certificate"},
		{"certificate field changed", "ic", bytes.Replace(f.cert, []byte("unit-vector"), []byte("unit-vectoR"), 1), "", "signature invalid: internal certificate"},
		{"other provider key", "key", pemPublicKey(t, &other.PublicKey), "", "signature invalid: internal certificate"},
		{"JWKS of other keys", "key", jwks(t, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &newP256(t).PublicKey, KeyID: "b"}), "", "signed by none of the 2 provider keys"},
		{"JWKS, --kid of another key", "key", jwks(t, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: pub, KeyID: "b"}), "a", "signature invalid: internal certificate"},
		{"record not SECDSA", "rec", []byte("hello"), "", "transaction record: not a SECDSA encoding"},
		{"record truncated", "rec", f.record[:len(f.record)-1], "", "transaction record: malformed input"},
		{"record given as certificate", "ic", f.record, "", "internal certificate: malformed input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]string{}
			for k, v := range good {
				in[k] = f.file(k, v)
			}
			in[c.file] = f.file(c.file, c.content)
			args := []string{"--record", in["rec"], "--cert", in["ic"], "--provider", in["key"]}
			if c.kid != "" {
				args = append(args, "--kid", c.kid)
			}
			code, out, errs := verifyCLI(t, nil, args...)
			if code != 1 || !strings.HasPrefix(out, "invalid: ") || !strings.Contains(out, c.reason) {
				t.Fatalf("exit %d, want 1 and invalid: …%s…\n%s%s", code, c.reason, out, errs)
			}
		})
	}
}

// TestVerifyRecordInputErrors: inputs that are not what the command takes
// are errors (exit 1 with a message, or 2 for usage), never a verdict.
func TestVerifyRecordInputErrors(t *testing.T) {
	f := newRecordFixture(t)
	rec, ic := f.file("rec", f.record), f.file("ic", f.cert)
	key := f.file("key", pemPublicKey(t, &f.provider.PublicKey))
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no provider", []string{"--record", rec, "--cert", ic}, 2, "needs --record"},
		{"missing file", []string{"--record", filepath.Join(f.dir, "none"), "--cert", ic, "--provider", key}, 1, "record:"},
		{"too large", []string{"--record", f.file("big", make([]byte, maxVerifyInput+1)), "--cert", ic, "--provider", key}, 1, "more than"},
		{"PEM with --kid", []string{"--record", rec, "--cert", ic, "--provider", key, "--kid", "x"}, 1, "JWKS only"},
		{"private key", []string{"--record", rec, "--cert", ic, "--provider", f.file("priv.json", func() []byte {
			b, _ := json.Marshal(jose.JSONWebKey{Key: f.provider})
			return b
		}())}, 1, "private key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := verifyCLI(t, nil, c.args...)
			if code != c.code || !strings.Contains(errs, c.msg) || strings.HasPrefix(out, "valid") || strings.HasPrefix(out, "invalid") {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, c.code, c.msg, out, errs)
			}
		})
	}
}

func TestParseProviderKeys(t *testing.T) {
	prov, other := newP256(t), newP256(t)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(prov)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := ecp256.KID(&prov.PublicKey)
	cases := []struct {
		name string
		in   []byte
		kid  string
		want []string // kids, or nil for an error containing errWant
		err  string
	}{
		{"PEM public key", pemPublicKey(t, &prov.PublicKey), "", []string{kid}, ""},
		{"PEM certificate", pemCertificate(t, prov), "", []string{kid}, ""},
		{"PEM private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "", nil, "no private key is needed"},
		{"PEM P-384", pemPublicKey(t, &p384.PublicKey), "", nil, "not a P-256"},
		{"PEM garbage", []byte("-----BEGIN PUBLIC KEY-----\nxx"), "", nil, "malformed PEM"},
		{"JWKS", jwks(t, jose.JSONWebKey{Key: &prov.PublicKey, KeyID: "p"}, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "o"}), "", []string{"p", "o"}, ""},
		{"JWKS, kid", jwks(t, jose.JSONWebKey{Key: &prov.PublicKey, KeyID: "p"}, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "o"}), "o", []string{"o"}, ""},
		{"JWKS, unknown kid", jwks(t, jose.JSONWebKey{Key: &prov.PublicKey, KeyID: "p"}), "z", nil, `kid "z"`},
		{"JWKS, encryption and other curves skipped", jwks(t, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "e", Use: "enc"},
			jose.JSONWebKey{Key: edPub, KeyID: "x"}, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "384"},
			jose.JSONWebKey{Key: &prov.PublicKey}), "", []string{kid}, ""},
		{"JWKS, nothing usable", jwks(t, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "e", Use: "enc"}), "", nil, "no P-256 signing key"},
		{"JWKS with a private key", jwks(t, jose.JSONWebKey{Key: prov, KeyID: "p"}), "", nil, "private key"},
		{"neither", []byte("04abcd"), "", nil, "neither"},
		{"bad JSON", []byte("{"), "", nil, "JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := parseProviderKeys(c.in, c.kid)
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.kid)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("kids %v, want %v", got, c.want)
			}
		})
	}
}

// TestVerifyRecordReadable: a valid record's byte strings are printed
// quoted with control characters escaped (a record cannot drive the
// terminal), or in hex when they are not UTF-8.
func TestVerifyRecordReadable(t *testing.T) {
	dir := t.TempDir()
	rec, ic, prov := freshRecord(t, []byte("pay\x1b[2J\n"), []byte{0xff, 0x00})
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, out, errs := verifyCLI(t, nil, "--record", write("r", rec), "--cert", write("c", ic), "--provider", write("k", pemPublicKey(t, prov)))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `"pay\x1b[2J\n"`) || !strings.Contains(out, "0xff00") {
		t.Fatalf("output:\n%q", out)
	}
}

// freshRecord runs a whole SECDSA flow through the package's public API and
// returns a record with the given instruction and additional data, its
// certificate and the provider's key.
func freshRecord(t *testing.T, ins, ad []byte) (rec, ic []byte, provider *ecdsa.PublicKey) {
	t.Helper()
	binder, err := secdsa.NewSoftwarePINBinder(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := secdsa.NewSoftwareDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	aU, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	prov := newP256(t)
	pin, account, nonce := []byte("1234"), []byte("unit-r"), bytes.Repeat([]byte{1}, 16)
	derive := secdsa.SoftwareDerive(aU)
	req, st, err := secdsa.BeginActivation(rand.Reader, binder, dev, pin, account, nonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := secdsa.Activate(req, account, nonce, aU.PublicKey().Bytes(), derive)
	if err != nil {
		t.Fatal(err)
	}
	yp, err := st.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := secdsa.IssueInternalCert(account, req.U, resp.GPrime, yp, 1767225600, prov)
	if err != nil {
		t.Fatal(err)
	}
	x, err := secdsa.GenESInstruction(rand.Reader, cert, binder, dev, pin, 1, ins, ad)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := secdsa.ExecESInstruction(cert, x, 0, derive)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := secdsa.NewTRecord(cert, ex, []byte("OK"), 1767225700, prov)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Marshal(), cert.Marshal(), &prov.PublicKey
}

func FuzzDecodeSECDSA(f *testing.F) {
	f.Add([]byte(secdsaPrefix + "x"))
	f.Add([]byte(hex.EncodeToString([]byte(secdsaPrefix))))
	f.Add([]byte(base64.RawURLEncoding.EncodeToString([]byte(secdsaPrefix))))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeSECDSA(b)
		if err == nil && !bytes.HasPrefix(d, []byte(secdsaPrefix)) {
			t.Fatalf("decoded %q", d)
		}
	})
}

func FuzzParseProviderKeys(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "a"}}})
	f.Add(b, "a")
	f.Fuzz(func(t *testing.T, b []byte, kid string) {
		keys, err := parseProviderKeys(b, kid)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if k.pub.Curve != elliptic.P256() || k.kid == "" {
				t.Fatalf("key %+v", k)
			}
		}
	})
}

func TestUnixTime(t *testing.T) {
	for in, want := range map[uint64]string{0: "1970-01-01T00:00:00Z", 1767225600: "2026-01-01T00:00:00Z",
		1 << 63: "9223372036854775808"} {
		if got := unixTime(in); got != want {
			t.Errorf("unixTime(%d) = %s, want %s", in, got, want)
		}
	}
}
