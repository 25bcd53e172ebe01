package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/secdsa"
)

// verify-record checks a SECDSA transaction record offline (docs/secdsa.md,
// "Transaction record"): with the unit's Internal Certificate and the
// provider's public key, and nothing else: no server, no secret.

// errInvalid is returned after "invalid: <reason>" has been printed, so
// that the command exits 1.
var errInvalid = errors.New("verification failed")

// maxVerifyInput bounds each input file: a record has at most four 64 KiB
// fields, and text encodings double that.
const maxVerifyInput = 1 << 20

// secdsaPrefix starts every encoded SECDSA structure (its label).
const secdsaPrefix = "wsca-secdsa-v1 "

// providerKey is one candidate key of the provider: from a JWKS, a PEM
// certificate or a PEM public key.
type providerKey struct {
	pub *ecdsa.PublicKey
	kid string // the JWK's kid, or the project's kid of the key
}

func verifyRecordCmd(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("wsca verify-record", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	recordFile := fs.String("record", "", "`file` with the transaction record: binary, hex or base64(url); - reads stdin")
	certFile := fs.String("cert", "", "`file` with the unit's Internal Certificate: binary, hex or base64(url)")
	providerFile := fs.String("provider", "", "`file` with the provider's public key: JWKS (or one JWK), PEM CERTIFICATE or PEM PUBLIC KEY")
	kid := fs.String("kid", "", "use only the JWKS key with this `kid`")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(e, fs, args, 0, nil); err != nil {
		return err
	}
	if *recordFile == "" || *certFile == "" || *providerFile == "" {
		fmt.Fprintln(e.stderr, "wsca: verify-record needs --record, --cert and --provider")
		return errUsage
	}
	read := func(name string) ([]byte, error) {
		var r io.Reader
		if name == "-" {
			r = e.stdin
		} else {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, maxVerifyInput+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxVerifyInput {
			return nil, fmt.Errorf("%s: more than %d bytes", name, maxVerifyInput)
		}
		return b, nil
	}
	recRaw, err := read(*recordFile)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	certRaw, err := read(*certFile)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	keyRaw, err := read(*providerFile)
	if err != nil {
		return fmt.Errorf("provider key: %w", err)
	}
	keys, err := parseProviderKeys(keyRaw, *kid)
	if err != nil {
		return fmt.Errorf("provider key %s: %w", *providerFile, err)
	}
	res := verifyRecord(recRaw, certRaw, keys)
	if err := printResult(e, *asJSON, res, res.text); err != nil {
		return err
	}
	if !res.Valid {
		return errInvalid
	}
	return nil
}

// recordResult is what verify-record prints.
type recordResult struct {
	Valid  bool          `json:"valid"`
	Reason string        `json:"reason,omitempty"`
	Record *recordFields `json:"record,omitempty"`
}

// recordFields are a valid record's fields, readable. Byte strings that
// are UTF-8 are shown quoted (control characters escaped), others in hex.
type recordFields struct {
	Account     string `json:"account"`
	CertID      string `json:"certificate_id"`
	CertIssued  string `json:"certificate_issued_at"`
	SN          uint64 `json:"serial_number"`
	Instruction string `json:"instruction"`
	Additional  string `json:"additional_data"`
	Result      string `json:"result"`
	Time        string `json:"time"`
	Hash        string `json:"record_hash"`
	ProviderKID string `json:"provider_kid"`
}

func (r *recordResult) text(w io.Writer) {
	if !r.Valid {
		fmt.Fprintf(w, "invalid: %s\n", r.Reason)
		return
	}
	f := r.Record
	fmt.Fprintln(w, "valid")
	for _, l := range [][2]string{
		{"account", f.Account}, {"certificate", f.CertID + " (issued " + f.CertIssued + ")"},
		{"serial number", strconv.FormatUint(f.SN, 10)}, {"instruction", f.Instruction},
		{"additional data", f.Additional}, {"result", f.Result}, {"time", f.Time},
		{"record hash", f.Hash}, {"provider key", f.ProviderKID},
	} {
		fmt.Fprintf(w, "  %-16s %s\n", l[0]+":", l[1])
	}
}

// verifyRecord decodes and checks the record and the certificate under the
// first key that verifies the certificate (or, if none does, the first).
func verifyRecord(recRaw, certRaw []byte, keys []providerKey) *recordResult {
	invalid := func(format string, a ...any) *recordResult {
		return &recordResult{Reason: fmt.Sprintf(format, a...)}
	}
	recBytes, err := decodeSECDSA(recRaw)
	if err != nil {
		return invalid("transaction record: %v", err)
	}
	certBytes, err := decodeSECDSA(certRaw)
	if err != nil {
		return invalid("internal certificate: %v", err)
	}
	tr, err := secdsa.ParseTRecord(recBytes)
	if err != nil {
		return invalid("transaction record: %s", reason(err))
	}
	ic, err := secdsa.ParseInternalCert(certBytes)
	if err != nil {
		return invalid("internal certificate: %s", reason(err))
	}
	key := keys[0]
	for _, k := range keys {
		if secdsa.VerifyInternalCert(ic, k.pub) == nil {
			key = k
			break
		}
	}
	if err := secdsa.VerifyTRecord(ic, key.pub, tr); err != nil {
		if len(keys) > 1 && errors.Is(err, secdsa.ErrSignature) && secdsa.VerifyInternalCert(ic, key.pub) != nil {
			return invalid("internal certificate: signed by none of the %d provider keys", len(keys))
		}
		return invalid("%s", reason(err))
	}
	return &recordResult{Valid: true, Record: &recordFields{
		Account: readable(tr.AccountID), CertID: hex.EncodeToString(tr.CertID), CertIssued: unixTime(ic.IssuedAt),
		SN: tr.SN, Instruction: readable(tr.Instruction), Additional: readable(tr.Additional),
		Result: readable(tr.Result), Time: unixTime(tr.Time), Hash: hex.EncodeToString(tr.Hash()), ProviderKID: key.kid,
	}}
}

// reason turns a secdsa error into the text after "invalid: ".
func reason(err error) string {
	if errors.Is(err, secdsa.ErrAccount) {
		return "the record does not name this Internal Certificate (account or certificate id)"
	}
	return strings.TrimPrefix(err.Error(), "secdsa: ")
}

// readable shows a byte string: quoted if UTF-8 (escapes keep terminal
// control sequences in a record from reaching the terminal), else hex.
func readable(b []byte) string {
	if utf8.Valid(b) {
		return strconv.Quote(string(b))
	}
	return "0x" + hex.EncodeToString(b)
}

func unixTime(t uint64) string {
	if t > 1<<62 {
		return strconv.FormatUint(t, 10)
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// decodeSECDSA accepts an encoded SECDSA structure as it is (binary), or
// as hex, base64url or base64 text (padded or not, surrounding white space
// ignored): the first decoding that gives a SECDSA encoding wins.
func decodeSECDSA(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, []byte(secdsaPrefix)) {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	for _, dec := range []func(string) ([]byte, error){hex.DecodeString, base64.RawURLEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawStdEncoding.DecodeString, base64.StdEncoding.DecodeString} {
		if d, err := dec(s); err == nil && bytes.HasPrefix(d, []byte(secdsaPrefix)) {
			return d, nil
		}
	}
	return nil, errors.New("not a SECDSA encoding (binary, hex or base64)")
}

// parseProviderKeys reads the provider's P-256 public key(s): a JWKS (or
// one JWK), one or more PEM CERTIFICATE blocks (the first is the
// provider's) or a PEM PUBLIC KEY. Private keys are refused: verification
// needs none. kid, if set, selects one key of a JWKS.
func parseProviderKeys(b []byte, kid string) ([]providerKey, error) {
	b = bytes.TrimSpace(b)
	var keys []providerKey
	switch {
	case bytes.HasPrefix(b, []byte("{")):
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("JSON: %w", err)
		}
		raws := set.Keys
		if raws == nil { // one JWK
			raws = []json.RawMessage{b}
		}
		for i, raw := range raws {
			var j jose.JSONWebKey
			if err := j.UnmarshalJSON(raw); err != nil {
				return nil, fmt.Errorf("JWK %d: %w", i, err)
			}
			if !j.IsPublic() {
				return nil, fmt.Errorf("JWK %d is a private key; give the public key", i)
			}
			pub, ok := j.Key.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() || j.Use != "" && j.Use != "sig" {
				continue // another provider key (encryption, other curve)
			}
			if kid != "" && j.KeyID != kid {
				continue
			}
			keys = append(keys, providerKey{pub: pub, kid: j.KeyID})
		}
	case bytes.HasPrefix(b, []byte("-----BEGIN ")):
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, errors.New("malformed PEM")
		}
		var pub any
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate: %w", err)
			}
			pub = c.PublicKey
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: %w", err)
			}
			pub = k
		default:
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE or PUBLIC KEY (no private key is needed)", block.Type)
		}
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, errors.New("not a P-256 ECDSA key")
		}
		if kid != "" {
			return nil, errors.New("--kid applies to a JWKS only")
		}
		keys = append(keys, providerKey{pub: k})
	default:
		return nil, errors.New("neither JSON (JWKS) nor PEM")
	}
	if len(keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("no P-256 signing key with kid %q", kid)
		}
		return nil, errors.New("no P-256 signing key")
	}
	for i := range keys {
		if keys[i].kid == "" {
			id, err := ecp256.KID(keys[i].pub)
			if err != nil {
				return nil, err
			}
			keys[i].kid = id
		}
	}
	return keys, nil
}
