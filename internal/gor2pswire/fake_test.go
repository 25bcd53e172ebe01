package gor2pswire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytemare/opaque"
	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
)

// fakeServer answers as go-r2ps-service's dispatcher does (the behaviour
// its transcript in testdata shows), strictly: padded base64url only, the
// request JWS verified with the one client key, and, when requireJWE is
// set, session requests only inside the compat 2FA JWE, answered in one.
// It records every request body.
type fakeServer struct {
	t          *testing.T
	csk        *ecdsa.PublicKey
	ssk        *ecdsa.PrivateKey
	skm        *opaque.ServerKeyMaterial
	requireJWE bool

	mu       sync.Mutex
	records  map[string][]byte // credential id -> registration record
	pending  map[string]*fakeSession
	keys     []*ecdsa.PrivateKey
	bodies   [][]byte
	override func(status int, body []byte) (int, []byte) // rewrites the answer when set
}

type fakeSession struct {
	key, mac []byte
	verified bool
}

func newFakeServer(t *testing.T, csk *ecdsa.PublicKey, requireJWE bool) (*fakeServer, *httptest.Server) {
	t.Helper()
	ssk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, pk := opaqueConfig.KeyGen()
	f := &fakeServer{
		t: t, csk: csk, ssk: ssk, requireJWE: requireJWE,
		skm:     &opaque.ServerKeyMaterial{PrivateKey: sk, PublicKeyBytes: pk.Encode(), OPRFGlobalSeed: opaqueConfig.GenerateOPRFSeed()},
		records: map[string][]byte{}, pending: map[string]*fakeSession{},
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(srv.Close)
	return f, srv
}

type fakeError struct {
	status int
	code   string
}

func (e *fakeError) Error() string { return e.code }

func fail(status int, code string) error { return &fakeError{status, code} }

func (f *fakeServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != r2ps.Path || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, body)
	status, out := http.StatusOK, []byte(nil)
	resp, err := f.process(body)
	if err != nil {
		e, ok := err.(*fakeError)
		if !ok {
			e = &fakeError{http.StatusBadRequest, "ILLEGAL_REQUEST_DATA"}
		}
		status = e.status
		out, _ = json.Marshal(map[string]string{"error_code": e.code, "error_message": "generic"})
	} else {
		out = resp
	}
	if f.override != nil {
		status, out = f.override(status, out)
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (f *fakeServer) process(body []byte) ([]byte, error) {
	var sessionKey []byte
	var jweSession string
	if bytes.Count(body, []byte{'.'}) == 4 {
		env, err := r2ps.OpenCompat2FA(body, r2ps.ClientToServer, func(id string) ([]byte, error) {
			s := f.pending[id]
			if s == nil || !s.verified {
				return nil, r2ps.ErrUnknownSession
			}
			return s.key, nil
		})
		if err != nil {
			return nil, fail(http.StatusUnauthorized, "UNAUTHORIZED")
		}
		body, sessionKey, jweSession = env.JWS, f.pending[env.SessionID].key, env.SessionID
	}
	obj, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	payload, err := obj.Verify(f.csk)
	if err != nil {
		return nil, err
	}
	var req request
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	if n, err := base64.URLEncoding.DecodeString(req.Nonce); err != nil || len(n) < 16 || req.Ver != version {
		return nil, fail(http.StatusBadRequest, "ILLEGAL_REQUEST_DATA")
	}
	if jweSession != "" && req.TFASessionID != jweSession {
		return nil, fail(http.StatusBadRequest, "ILLEGAL_REQUEST_DATA")
	}
	sessionType := req.Type != type2FARegistration && req.Type != type2FAAuthenticate
	if sessionType {
		s := f.pending[req.TFASessionID]
		if s == nil || !s.verified {
			return nil, fail(http.StatusUnauthorized, "UNAUTHORIZED")
		}
		if f.requireJWE && jweSession == "" {
			return nil, fail(http.StatusUnauthorized, "UNAUTHORIZED")
		}
	}
	data, err := f.handle(req)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	ok := true
	respPayload, _ := json.Marshal(response{Ver: version, Nonce: req.Nonce, IAT: time.Now().Unix(), Data: raw, Success: &ok})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.ssk}, (&jose.SignerOptions{}).WithType("r2ps-response+jwt"))
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(respPayload)
	if err != nil {
		return nil, err
	}
	compact, _ := jws.CompactSerialize()
	if sessionKey != nil {
		return r2ps.SealCompat2FA([]byte(compact), sessionKey, jweSession, r2ps.ServerToClient, nil)
	}
	return []byte(compact), nil
}

func (f *fakeServer) handle(req request) (any, error) {
	credID := []byte(req.Context + "|" + req.ClientID)
	server, err := opaqueConfig.Server()
	if err != nil {
		return nil, err
	}
	if err := server.SetKeyMaterial(f.skm); err != nil {
		return nil, err
	}
	de, _ := opaqueConfig.Deserializer()
	switch req.Type {
	case type2FARegistration, type2FAChange, type2FAAuthenticate:
		var d tfaData
		if err := json.Unmarshal(req.Data, &d); err != nil || d.Protocol != protocolOPAQUE {
			return nil, fail(http.StatusBadRequest, "ILLEGAL_REQUEST_DATA")
		}
		pdata, err := base64.URLEncoding.Strict().DecodeString(d.PData)
		if err != nil {
			return nil, fail(http.StatusBadRequest, "ILLEGAL_REQUEST_DATA")
		}
		switch {
		case req.Type != type2FAAuthenticate && d.State == stateEvaluate:
			rr, err := de.RegistrationRequest(pdata)
			if err != nil {
				return nil, err
			}
			resp, err := server.RegistrationResponse(rr, credID, nil)
			if err != nil {
				return nil, err
			}
			e := encode(resp.Serialize())
			return map[string]string{"p_data": e, "response": e}, nil
		case req.Type != type2FAAuthenticate && d.State == stateFinalize:
			if _, err := de.RegistrationRecord(pdata); err != nil {
				return nil, err
			}
			f.records[string(credID)] = pdata
			return map[string]string{"message": "success"}, nil
		case d.State == stateEvaluate:
			ke1, err := de.KE1(pdata)
			if err != nil {
				return nil, err
			}
			rec, ok := f.records[string(credID)]
			if !ok {
				return nil, fail(http.StatusUnauthorized, "UNAUTHORIZED")
			}
			record, _ := de.RegistrationRecord(rec)
			ke2, out, err := server.GenerateKE2(ke1, &opaque.ClientRecord{RegistrationRecord: record, CredentialIdentifier: credID})
			if err != nil {
				return nil, err
			}
			id := make([]byte, 32)
			_, _ = rand.Read(id)
			sid := encode(id)
			f.pending[sid] = &fakeSession{key: out.SessionSecret, mac: out.ClientMAC}
			e := encode(ke2.Serialize())
			return map[string]string{"session_id": sid, "2fa_session_id": sid, "p_data": e, "response": e}, nil
		default:
			s := f.pending[req.TFASessionID]
			if s == nil {
				return nil, fail(http.StatusConflict, "ILLEGAL_STATE")
			}
			ke3, err := de.KE3(pdata)
			if err != nil {
				return nil, err
			}
			if err := server.LoginFinish(ke3, s.mac); err != nil {
				delete(f.pending, req.TFASessionID)
				return nil, fail(http.StatusUnauthorized, "UNAUTHORIZED")
			}
			s.verified = true
			return map[string]any{"session_id": req.TFASessionID, "2fa_session_id": req.TFASessionID, "message": "authenticated", "session_expiration_time": time.Now().Add(5 * time.Minute).Unix()}, nil
		}
	case typeP256Generate:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		f.keys = append(f.keys, k)
		return map[string]string{"created_key": curveP256}, nil
	case typeListKeys:
		infos := make([]keyInfoWire, 0, len(f.keys))
		for i, k := range f.keys {
			infos = append(infos, keyInfoWire{KID: fmt.Sprint("k", i), CurveName: curveP256, PublicKey: encode(compress(f.t, &k.PublicKey))})
		}
		return listKeysResult{KeyInfo: infos}, nil
	case typeSignECDSA:
		var d signData
		if err := json.Unmarshal(req.Data, &d); err != nil {
			return nil, err
		}
		hash, err := base64.URLEncoding.Strict().DecodeString(d.TBSHash)
		k := f.key(d.KID)
		if err != nil || k == nil {
			return nil, fail(http.StatusInternalServerError, "SERVER_ERROR")
		}
		sig, err := ecdsa.SignASN1(rand.Reader, k, hash)
		if err != nil {
			return nil, err
		}
		return encode(sig), nil
	case typeAgreeECDH:
		var d ecdhData
		if err := json.Unmarshal(req.Data, &d); err != nil {
			return nil, err
		}
		point, err := base64.URLEncoding.Strict().DecodeString(d.PublicKey)
		k := f.key(d.KID)
		if err != nil || k == nil {
			return nil, fail(http.StatusInternalServerError, "SERVER_ERROR")
		}
		peer, err := ecdh.P256().NewPublicKey(point)
		if err != nil {
			return nil, err
		}
		priv, _ := k.ECDH()
		secret, err := priv.ECDH(peer)
		if err != nil {
			return nil, err
		}
		return encode(secret), nil
	}
	return nil, fail(http.StatusUnsupportedMediaType, "UNSUPPORTED_REQUEST_TYPE")
}

func (f *fakeServer) key(kid string) *ecdsa.PrivateKey {
	for i, k := range f.keys {
		if fmt.Sprint("k", i) == kid {
			return k
		}
	}
	return nil
}

// lastBody returns the last request body.
func (f *fakeServer) lastBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[len(f.bodies)-1]
}

// allBodies returns a copy of the request bodies so far.
func (f *fakeServer) allBodies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.bodies...)
}

// jwsParts decodes the header and payload of a compact JWS.
func jwsParts(t *testing.T, jws []byte) (header, payload []byte) {
	t.Helper()
	p := strings.Split(string(jws), ".")
	if len(p) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(p))
	}
	h, err := base64.RawURLEncoding.DecodeString(p[0])
	if err != nil {
		t.Fatal(err)
	}
	pl, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		t.Fatal(err)
	}
	return h, pl
}

// compress is the compressed SEC 1 form of pub, as go-r2ps-service lists keys.
func compress(t *testing.T, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	u, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{2 | u[64]&1}, u[1:33]...)
}
