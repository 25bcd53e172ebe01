package gor2pswire

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// transcript is testdata/go-r2ps-service/pkg-client-transcript.json
// (README.md there): what go-r2ps-service's own client sent and received.
type transcript struct {
	ClientID  string `json:"client_id"`
	Context   string `json:"context"`
	KeyPEM    string `json:"key_pkcs8_pem"`
	Exchanges []struct {
		Step     string `json:"step"`
		Request  string `json:"request"`
		Response string `json:"response"`
	} `json:"exchanges"`
}

func loadTranscript(t testing.TB) (transcript, *ecdsa.PrivateKey) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "go-r2ps-service", "pkg-client-transcript.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(tr.KeyPEM))
	if blk == nil {
		t.Fatal("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return tr, k.(*ecdsa.PrivateKey)
}

// upstreamVectors is the part of go-r2ps-service's vectors_go.json used here
// (testdata/r2ps/README.md).
type upstreamVectors struct {
	Protocol map[string]any    `json:"protocol_types"`
	HSM      map[string]string `json:"hsm_service_types"`
}

func loadVectors(t testing.TB) upstreamVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "r2ps", "go-r2ps-service-vectors_go.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v upstreamVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// members returns the member names of a JSON object in order, and each
// member's raw value.
func members(t testing.TB, obj []byte) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", obj)
	}
	var names []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		vals[name] = v
	}
	return names, vals
}

func str(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a string", raw)
	}
	return s
}

// shape is what must match between our request and pkg/client's: the JWS
// header bytes, member order of payload and data, type, the encoding and
// decoded size of nonce and p_data (or of tbs_hash and public_key), and
// whether 2fa_session_id is present.
type shape struct {
	header      string
	payload     string
	data        string
	typ         string
	session     bool
	binarySizes string
}

func shapeOf(t *testing.T, jws []byte) shape {
	t.Helper()
	h, p := jwsParts(t, jws)
	names, vals := members(t, p)
	s := shape{header: string(h), payload: strings.Join(names, ","), typ: str(t, vals["type"]), session: vals["2fa_session_id"] != nil}
	var sizes []string
	sizeOf := func(name string, raw json.RawMessage) {
		v := str(t, raw)
		b, err := base64.URLEncoding.Strict().DecodeString(v)
		if err != nil {
			t.Fatalf("%s %q is not padded base64url: %v", name, v, err)
		}
		sizes = append(sizes, fmt.Sprintf("%s:%d", name, len(b)))
	}
	sizeOf("nonce", vals["nonce"])
	if d := vals["data"]; len(d) > 0 && d[0] == '{' {
		dn, dv := members(t, d)
		s.data = strings.Join(dn, ",")
		for _, n := range []string{"p_data", "tbs_hash", "public_key"} {
			if dv[n] != nil {
				sizeOf(n, dv[n])
			}
		}
	}
	s.binarySizes = strings.Join(sizes, " ")
	return s
}

// TestRequestsMatchPkgClient drives the wallet through the steps of the
// recorded pkg/client run and compares every request with pkg/client's.
func TestRequestsMatchPkgClient(t *testing.T) {
	tr, _ := loadTranscript(t)
	csk := newKey(t)
	f, srv := newFakeServer(t, &csk.PublicKey, false)
	w := New(srv.URL, tr.ClientID, tr.Context, csk, &f.ssk.PublicKey)
	ctx := context.Background()
	pin := []byte("123456")
	if err := w.Register(ctx, pin); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Authenticate(ctx, pin); err != nil {
		t.Fatal(err)
	}
	k, err := w.Generate(ctx) // p256_generate, then hsm_list_keys for the kid
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("hello"))
	if _, err := w.Sign(ctx, k.KID, h[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ECDH(ctx, k.KID, mustECDH(t).PublicKey()); err != nil {
		t.Fatal(err)
	}
	ours := f.allBodies()
	if len(ours) != len(tr.Exchanges) {
		t.Fatalf("%d requests, pkg/client sent %d", len(ours), len(tr.Exchanges))
	}
	for i, ex := range tr.Exchanges {
		want, got := shapeOf(t, []byte(ex.Request)), shapeOf(t, ours[i])
		if got != want {
			t.Errorf("request %d (%s):\n got  %+v\n want %+v", i, ex.Step, got, want)
		}
	}
}

// TestReadsPkgClientResponses feeds go-r2ps-service's recorded responses to
// the wallet's reader and decoders.
func TestReadsPkgClientResponses(t *testing.T) {
	tr, key := loadTranscript(t)
	for i, ex := range tr.Exchanges {
		_, p := jwsParts(t, []byte(ex.Request))
		_, vals := members(t, p)
		res, err := readResponse(httpResponse{status: 200, body: []byte(ex.Response)}, &key.PublicKey, nil, nil, str(t, vals["nonce"]))
		if err != nil {
			t.Fatalf("response %d (%s): %v", i, ex.Step, err)
		}
		switch {
		case ex.Step == "register" && i == 0:
			var r tfaResult
			if err := json.Unmarshal(res.Data, &r); err != nil {
				t.Fatal(err)
			}
			if b, err := decode(r.Response); err != nil || len(b) != 66 {
				t.Fatalf("registration response: %d bytes, %v", len(b), err)
			}
		case ex.Step == "authenticate" && i == 2:
			var r tfaResult
			if err := json.Unmarshal(res.Data, &r); err != nil {
				t.Fatal(err)
			}
			if b, err := decode(r.Response); err != nil || len(b) != 259 || r.TFASessionID == "" {
				t.Fatalf("KE2: %d bytes, session %q, %v", len(b), r.TFASessionID, err)
			}
		case ex.Step == "authenticate" && i == 3:
			var r tfaResult
			if err := json.Unmarshal(res.Data, &r); err != nil || r.SessionExpirationTime == 0 {
				t.Fatalf("login finalize: %+v, %v", r, err)
			}
		case ex.Step == "p256_generate":
			var r generateResult
			if err := json.Unmarshal(res.Data, &r); err != nil || r.CreatedKey != curveP256 || r.KID != "" {
				t.Fatalf("generate: %+v, %v", r, err)
			}
		case ex.Step == "hsm_list_keys":
			var r listKeysResult
			if err := json.Unmarshal(res.Data, &r); err != nil || len(r.KeyInfo) != 1 || r.KeyInfo[0].KID == "" {
				t.Fatalf("list: %+v, %v", r, err)
			}
			// Upstream sends the compressed point in padded base64url. The
			// recording's in-memory HSM made a random 33-byte "point" that
			// is not on the curve, which the wallet refuses.
			if b, err := decode(r.KeyInfo[0].PublicKey); err != nil || len(b) != 33 || b[0] != 2 {
				t.Fatalf("public_key %q", r.KeyInfo[0].PublicKey)
			}
			if _, err := keyInfos(r); err == nil || !strings.Contains(err.Error(), "compressed point") {
				t.Fatalf("off-curve point accepted: %v", err)
			}
		case ex.Step == "sign_ecdsa":
			if b, err := decodeBinaryString(res.Data); err != nil || len(b) != 64 {
				t.Fatalf("signature: %d bytes, %v", len(b), err)
			}
		case ex.Step == "agree_ecdh":
			if b, err := decodeBinaryString(res.Data); err != nil || len(b) != 32 {
				t.Fatalf("secret: %d bytes, %v", len(b), err)
			}
		}
	}
}

// TestEncodersMatchVectors compares the wallet's data encoders with
// go-r2ps-service's conformance vectors: byte for byte where the vector
// uses pkg/client's encoding, by member order and decoded value where the
// vector uses another base64 flavour.
func TestEncodersMatchVectors(t *testing.T) {
	v := loadVectors(t)
	mustMarshal := func(x any) string {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := mustMarshal(generateData{Curve: curveP256}); got != v.HSM["ec_keygen_request"] {
		t.Errorf("keygen %s, want %s", got, v.HSM["ec_keygen_request"])
	}
	if got := mustMarshal(listKeysData{Curve: []string{curveP256}}); got != v.HSM["list_keys_request"] {
		t.Errorf("list %s, want %s", got, v.HSM["list_keys_request"])
	}
	lenient := func(s string) []byte {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return b
			}
		}
		t.Fatalf("%q is no base64", s)
		return nil
	}
	same := func(name, want string, got any, binary ...string) {
		t.Helper()
		gotJSON := mustMarshal(got)
		wn, wv := members(t, []byte(want))
		gn, gv := members(t, []byte(gotJSON))
		if strings.Join(gn, ",") != strings.Join(wn, ",") {
			t.Errorf("%s: members %v, want %v", name, gn, wn)
			return
		}
		for _, n := range wn {
			isBinary := false
			for _, b := range binary {
				isBinary = isBinary || b == n
			}
			if isBinary {
				if !bytes.Equal(lenient(str(t, gv[n])), lenient(str(t, wv[n]))) {
					t.Errorf("%s: %s differs", name, n)
				}
			} else if string(gv[n]) != string(wv[n]) {
				t.Errorf("%s: %s = %s, want %s", name, n, gv[n], wv[n])
			}
		}
	}
	var sign signData
	_ = json.Unmarshal([]byte(v.HSM["ecdsa_request"]), &sign)
	same("ecdsa_request", v.HSM["ecdsa_request"], signData{KID: sign.KID, TBSHash: encode(lenient(sign.TBSHash))}, "tbs_hash")
	var ec ecdhData
	_ = json.Unmarshal([]byte(v.HSM["ecdh_request"]), &ec)
	same("ecdh_request", v.HSM["ecdh_request"], ecdhData{KID: ec.KID, PublicKey: encode(lenient(ec.PublicKey))}, "public_key")
	for _, name := range []string{"tfa_reg_evaluate_req", "tfa_auth_evaluate_req", "tfa_auth_finalize_req", "tfa_change_evaluate_req", "tfa_change_finalize_req", "tfa_request"} {
		want := v.Protocol[name].(string)
		var d tfaData
		_ = json.Unmarshal([]byte(want), &d)
		same(name, want, tfaData{Protocol: protocolOPAQUE, State: d.State, PData: encode(lenient(d.PData))}, "p_data")
	}

	// Responses: the vector's key list (SPKI in standard base64) parses to
	// its key; the signature vector survives the compat JSON string form.
	var lk listKeysResult
	if err := json.Unmarshal([]byte(v.HSM["list_keys_response"]), &lk); err != nil {
		t.Fatal(err)
	}
	keys, err := keyInfos(lk)
	if err != nil || len(keys) != 1 || keys[0].PublicKey == nil || keys[0].KID != lk.KeyInfo[0].KID {
		t.Fatalf("list_keys_response: %+v, %v", keys, err)
	}
	sig, _ := hex.DecodeString(v.HSM["ecdsa_response_hex"])
	got, err := decodeBinaryString(json.RawMessage(`"` + encode(sig) + `"`))
	if err != nil || !bytes.Equal(got, sig) {
		t.Fatalf("signature string: %x, %v", got, err)
	}
}
