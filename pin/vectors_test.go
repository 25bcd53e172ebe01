package pin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bytemare/opaque"
)

// hexBytes decodes a JSON hex string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// opaqueVector is one RFC 9807 Appendix C vector, in the JSON form of
// testdata/opaque (see its README).
type opaqueVector struct {
	Config struct {
		Context                                hexBytes
		Fake, Group, Hash, KDF, KSF, MAC, Name string
		OPRF                                   string
		Nh, Nm, Nok, Npk, Nsk, Nx              string
	} `json:"config"`
	Inputs struct {
		BlindLogin           hexBytes `json:"blind_login"`
		BlindRegistration    hexBytes `json:"blind_registration"`
		ClientIdentity       hexBytes `json:"client_identity"`
		ClientKeyshareSeed   hexBytes `json:"client_keyshare_seed"`
		ClientNonce          hexBytes `json:"client_nonce"`
		CredentialIdentifier hexBytes `json:"credential_identifier"`
		EnvelopeNonce        hexBytes `json:"envelope_nonce"`
		MaskingNonce         hexBytes `json:"masking_nonce"`
		OPRFSeed             hexBytes `json:"oprf_seed"`
		Password             hexBytes `json:"password"`
		ServerIdentity       hexBytes `json:"server_identity"`
		ServerKeyshareSeed   hexBytes `json:"server_keyshare_seed"`
		ServerNonce          hexBytes `json:"server_nonce"`
		ServerPrivateKey     hexBytes `json:"server_private_key"`
		ServerPublicKey      hexBytes `json:"server_public_key"`
		// Fake vectors only.
		ClientPublicKey  hexBytes `json:"client_public_key"`
		ClientPrivateKey hexBytes `json:"client_private_key"`
		MaskingKey       hexBytes `json:"masking_key"`
		KE1              hexBytes `json:"KE1"`
	} `json:"inputs"`
	Intermediates map[string]hexBytes `json:"intermediates"`
	Outputs       struct {
		KE1                  hexBytes `json:"KE1"`
		KE2                  hexBytes `json:"KE2"`
		KE3                  hexBytes `json:"KE3"`
		ExportKey            hexBytes `json:"export_key"`
		RegistrationRequest  hexBytes `json:"registration_request"`
		RegistrationResponse hexBytes `json:"registration_response"`
		RegistrationRecord   hexBytes `json:"registration_upload"`
		SessionKey           hexBytes `json:"session_key"`
	} `json:"outputs"`
}

func loadOPAQUEVectors(t *testing.T) []opaqueVector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "opaque", "rfc9807-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var vs []opaqueVector
	if err := dec.Decode(&vs); err != nil {
		t.Fatalf("rfc9807-vectors.json: %v", err)
	}
	return vs
}

// inSuite reports whether the vector uses the pin suite: the only
// configurations run.
func (v *opaqueVector) inSuite() bool {
	c := v.Config
	return c.Name == "3DH" && c.OPRF == "P256-SHA256" && c.Group == "P256_XMD:SHA-256_SSWU_RO_" &&
		c.Hash == "SHA256" && c.KDF == "HKDF-SHA256" && c.MAC == "HMAC-SHA256" && c.KSF == "Identity"
}

func (v *opaqueVector) fake(t *testing.T) bool {
	switch v.Config.Fake {
	case "True":
		return true
	case "False":
		return false
	}
	t.Fatalf("Fake = %q", v.Config.Fake)
	return false
}

// TestRFC9807Vectors runs the P-256 vectors of RFC 9807 Appendix C through
// the profile's configuration and the Server's own code paths (evaluate,
// CheckRecord, key generation, GenerateKE2 with its randomness drawn from
// Config.Rand), with bytemare's client on the other side, and checks every
// output byte for byte.
func TestRFC9807Vectors(t *testing.T) {
	var nReal, nFake int
	for i, v := range loadOPAQUEVectors(t) {
		name := fmt.Sprintf("%d-%s-fake=%s", i, v.Config.Group, v.Config.Fake)
		if !v.inSuite() {
			t.Logf("%s: skipped, not the pin suite", name)
			continue
		}
		isFake := v.fake(t)
		t.Run(name, func(t *testing.T) {
			if isFake {
				nFake++
				v.testFake(t)
			} else {
				nReal++
				v.testReal(t)
			}
		})
	}
	if nReal != 2 || nFake != 1 {
		t.Fatalf("ran %d real and %d fake P-256 vectors, want 2 and 1", nReal, nFake)
	}
}

// server returns a Server holding the vector's key material, whose random
// source yields the vector's masking nonce, server key share seed and
// server nonce, the order in which GenerateKE2 draws them.
func (v *opaqueVector) server(t *testing.T) *Server {
	t.Helper()
	conf, err := Profile{Context: string(v.Config.Context)}.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := opaque.DeserializeScalar(conf.AKE.Group(), v.Inputs.ServerPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	in := v.Inputs
	s := &Server{conf: conf, rand: bytes.NewReader(slices.Concat(in.MaskingNonce, in.ServerKeyshareSeed, in.ServerNonce))}
	skm := &opaque.ServerKeyMaterial{
		PrivateKey:     sk,
		PublicKeyBytes: in.ServerPublicKey,
		OPRFGlobalSeed: in.OPRFSeed,
		Identity:       in.ServerIdentity,
	}
	if err := s.setKeyMaterial(skm); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %x\nwant %x", what, got, want)
	}
}

func (v *opaqueVector) testReal(t *testing.T) {
	in, out := v.Inputs, v.Outputs
	s := v.server(t)
	g := s.conf.OPRF.Group()

	// Our key generation, fed the vector's key and seed, yields its
	// public key.
	skm, err := generateKeyMaterial(s.conf, bytes.NewReader(slices.Concat(in.ServerPrivateKey, in.OPRFSeed)))
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "generated public key", skm.PublicKeyBytes, in.ServerPublicKey)
	dec, err := decodeKeyMaterial(s.conf, encodeKeyMaterial(skm))
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "key material round trip", dec.PublicKeyBytes, in.ServerPublicKey)

	// Registration.
	c, err := s.conf.Client()
	if err != nil {
		t.Fatal(err)
	}
	blind, err := opaque.DeserializeScalar(g, in.BlindRegistration)
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.RegistrationInit(in.Password, &opaque.ClientOptions{OPRFBlind: blind})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "registration request", req.Serialize(), out.RegistrationRequest)
	resp, err := s.evaluate(in.CredentialIdentifier, req.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "registration response", resp, out.RegistrationResponse)
	cresp, err := c.Deserialize.RegistrationResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	rec, exportKey, err := c.RegistrationFinalize(cresp, in.ClientIdentity, in.ServerIdentity,
		&opaque.ClientOptions{RegistrationEnvelopeNonce: in.EnvelopeNonce})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "record", rec.Serialize(), out.RegistrationRecord)
	wantBytes(t, "export key (registration)", exportKey, out.ExportKey)
	if err := s.CheckRecord(out.RegistrationRecord); err != nil {
		t.Fatalf("CheckRecord: %v", err)
	}

	// Login.
	c, err = s.conf.Client()
	if err != nil {
		t.Fatal(err)
	}
	blind, err = opaque.DeserializeScalar(g, in.BlindLogin)
	if err != nil {
		t.Fatal(err)
	}
	ke1, err := c.GenerateKE1(in.Password, &opaque.ClientOptions{
		OPRFBlind: blind,
		AKE:       &opaque.AKEOptions{SecretKeyShareSeed: in.ClientKeyshareSeed, Nonce: in.ClientNonce},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "KE1", ke1.Serialize(), out.KE1)

	ke2, output := v.serverKE2(t, s, out.KE1, out.RegistrationRecord)
	wantBytes(t, "KE2", ke2, out.KE2)
	wantBytes(t, "server session key", output.SessionSecret, out.SessionKey)
	wantBytes(t, "expected client MAC", output.ClientMAC, out.KE3)

	cke2, err := c.Deserialize.KE2(ke2)
	if err != nil {
		t.Fatal(err)
	}
	ke3, sessionKey, exportKey, err := c.GenerateKE3(cke2, in.ClientIdentity, in.ServerIdentity)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "KE3", ke3.Serialize(), out.KE3)
	wantBytes(t, "client session key", sessionKey, out.SessionKey)
	wantBytes(t, "export key (login)", exportKey, out.ExportKey)
	msg, err := s.op.Deserialize.KE3(out.KE3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.op.LoginFinish(msg, output.ClientMAC); err != nil {
		t.Fatalf("server finish: %v", err)
	}
	bad := bytes.Clone(out.KE3)
	bad[0] ^= 1
	badMsg, err := s.op.Deserialize.KE3(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.op.LoginFinish(badMsg, output.ClientMAC); err == nil {
		t.Fatal("server finish accepts a KE3 with a flipped bit")
	}
}

func (v *opaqueVector) testFake(t *testing.T) {
	in := v.Inputs
	s := v.server(t)
	// The fake record: the vector's client public key and masking key, and
	// the all-zero envelope, which CheckRecord refuses in a real record.
	envelopeLen := nonceLen + macLen
	record := slices.Concat(in.ClientPublicKey, in.MaskingKey, make([]byte, envelopeLen))
	if err := s.CheckRecord(record); !errors.Is(err, ErrMalformed) {
		t.Fatalf("CheckRecord of a fake record: %v", err)
	}
	ke2, _ := v.serverKE2(t, s, in.KE1, record)
	wantBytes(t, "fake KE2", ke2, v.Outputs.KE2)
}

// serverKE2 runs the Server's GenerateKE2 step for a KE1 and a record.
func (v *opaqueVector) serverKE2(t *testing.T, s *Server, ke1, record []byte) ([]byte, *opaque.ServerOutput) {
	t.Helper()
	msg, err := s.op.Deserialize.KE1(ke1)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := s.op.Deserialize.RegistrationRecord(record)
	if err != nil {
		t.Fatal(err)
	}
	rec := &opaque.ClientRecord{
		RegistrationRecord:   reg,
		CredentialIdentifier: v.Inputs.CredentialIdentifier,
		ClientIdentity:       v.Inputs.ClientIdentity,
	}
	ke2, out, err := s.ke2(s.op, msg, rec)
	if err != nil {
		t.Fatal(err)
	}
	return ke2.Serialize(), out
}
