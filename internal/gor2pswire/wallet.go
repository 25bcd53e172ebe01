package gor2pswire

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bytemare/opaque"
	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
)

// opaqueConfig is pkg/client's OPAQUE profile: P256-SHA256 OPRF and AKE,
// SHA-256 KDF, MAC and hash, identity KSF, no context, no identities.
var opaqueConfig = opaque.Configuration{
	OPRF: opaque.P256Sha256,
	AKE:  opaque.P256Sha256,
	KDF:  crypto.SHA256,
	MAC:  crypto.SHA256,
	Hash: crypto.SHA256,
}

// Session is an authenticated 2FA session: the id the server named and the
// OPAQUE session key. pkg/client keeps the key and never uses it; with
// WithJWE this wallet uses it for the 2FA JWE.
type Session struct {
	ID        string
	Key       []byte
	ExpiresAt time.Time // zero when the server did not say
}

// KeyInfo is one entry of a key list, or a generated key.
type KeyInfo struct {
	KID          string
	CurveName    string
	CreationTime int64
	PublicKey    *ecdsa.PublicKey // nil when the answer carried none
}

// ServerError is a failure the server answered outside the JWS, as
// {"error_code", "error_message"} with an HTTP status (pkg/client would
// report it only as an unparsable JWS).
type ServerError struct {
	Status  int
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("gor2pswire: server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrNoSession is returned by session calls before Authenticate.
var ErrNoSession = errors.New("gor2pswire: not authenticated")

// Option configures a Wallet.
type Option func(*Wallet)

// WithHTTPClient sets the HTTP client (default http.DefaultClient).
func WithHTTPClient(c *http.Client) Option { return func(w *Wallet) { w.http = c } }

// WithJWE wraps every request that carries a session (service calls and
// 2fa_change) in go-r2ps-service's A256KW 2FA JWE (c2s) and requires the
// response in one (s2c). pkg/client does not do this.
func WithJWE() Option { return func(w *Wallet) { w.jwe = true } }

// WithKID sets a kid in every request JWS header (pkg/client sends none;
// the SIROS Rust client sends kid = client_id).
func WithKID(kid string) Option { return func(w *Wallet) { w.kid = kid } }

// WithRegistrationJWK embeds the CSK's public JWK in the header of the
// 2fa_registration requests (wscad's self-signed enrolment; pkg/client
// sends no key).
func WithRegistrationJWK() Option { return func(w *Wallet) { w.regJWK = true } }

// WithClock sets the clock of iat (default time.Now).
func WithClock(now func() time.Time) Option { return func(w *Wallet) { w.now = now } }

// Wallet is a go-r2ps-service Go client's wire, over HTTP. It is not safe
// for concurrent use.
type Wallet struct {
	url       string
	clientID  string
	context   string
	csk       *ecdsa.PrivateKey
	serverKey *ecdsa.PublicKey
	http      *http.Client
	now       func() time.Time
	kid       string
	jwe       bool
	regJWK    bool
	session   *Session
}

// New returns a wallet that POSTs to baseURL + "/r2ps" as clientID in
// context, signs with csk and verifies responses with serverSigningKey.
func New(baseURL, clientID, context string, csk *ecdsa.PrivateKey, serverSigningKey *ecdsa.PublicKey, opts ...Option) *Wallet {
	w := &Wallet{
		url: strings.TrimSuffix(baseURL, "/") + r2ps.Path, clientID: clientID, context: context,
		csk: csk, serverKey: serverSigningKey, http: http.DefaultClient, now: time.Now,
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Session returns the current session, nil before Authenticate.
func (w *Wallet) Session() *Session { return w.session }

// UseSession replaces the session, for tests that present a session id
// (with or without its key) they did not authenticate; nil clears it.
func (w *Wallet) UseSession(s *Session) { w.session = s }

// Register runs OPAQUE registration as pkg/client's Register does: two
// 2fa_registration rounds without a session, an authorization or any key
// but the signature.
func (w *Wallet) Register(ctx context.Context, pin []byte) error {
	return w.register(ctx, type2FARegistration, pin, "")
}

// RegisterAuthorized is Register with authorization = code and
// authorization_type = otp in the finalize round (the I-D's rule, which
// pkg/client does not follow).
func (w *Wallet) RegisterAuthorized(ctx context.Context, pin []byte, code string) error {
	return w.register(ctx, type2FARegistration, pin, code)
}

// ChangePIN re-registers in the current session with type 2fa_change, the
// way a pkg/client caller would through CallService (pkg/client has no
// method for it).
func (w *Wallet) ChangePIN(ctx context.Context, newPIN []byte) error {
	if w.session == nil {
		return ErrNoSession
	}
	return w.register(ctx, type2FAChange, newPIN, "")
}

func (w *Wallet) register(ctx context.Context, typ string, pin []byte, code string) error {
	client, err := opaqueConfig.Client()
	if err != nil {
		return fmt.Errorf("gor2pswire: %w", err)
	}
	defer client.ClearState()
	req, err := client.RegistrationInit(pin)
	if err != nil {
		return fmt.Errorf("gor2pswire: registration init: %w", err)
	}
	var res tfaResult
	if err := w.tfa(ctx, typ, tfaData{Protocol: protocolOPAQUE, State: stateEvaluate, PData: encode(req.Serialize())}, &res); err != nil {
		return fmt.Errorf("gor2pswire: registration evaluate: %w", err)
	}
	de, err := opaqueConfig.Deserializer()
	if err != nil {
		return fmt.Errorf("gor2pswire: %w", err)
	}
	raw, err := decode(res.Response)
	if err != nil {
		return fmt.Errorf("gor2pswire: registration response: %w", err)
	}
	resp, err := de.RegistrationResponse(raw)
	if err != nil {
		return fmt.Errorf("gor2pswire: registration response: %w", err)
	}
	record, exportKey, err := client.RegistrationFinalize(resp, nil, nil)
	if err != nil {
		return fmt.Errorf("gor2pswire: registration finalize: %w", err)
	}
	clear(exportKey)
	fin := tfaData{Protocol: protocolOPAQUE, State: stateFinalize, PData: encode(record.Serialize())}
	if code != "" {
		fin.Authorization, fin.AuthorizationType = code, authorizationTypeOTP
	}
	if err := w.tfa(ctx, typ, fin, nil); err != nil {
		return fmt.Errorf("gor2pswire: registration finalize: %w", err)
	}
	return nil
}

// Authenticate runs OPAQUE login as pkg/client does (type
// 2fa_authenticate; the finalize round names the session in
// 2fa_session_id) and keeps the session for the calls that follow.
func (w *Wallet) Authenticate(ctx context.Context, pin []byte) (*Session, error) {
	client, err := opaqueConfig.Client()
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: %w", err)
	}
	defer client.ClearState()
	ke1, err := client.GenerateKE1(pin)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: KE1: %w", err)
	}
	w.session = nil
	var res tfaResult
	if err := w.tfa(ctx, type2FAAuthenticate, tfaData{Protocol: protocolOPAQUE, State: stateEvaluate, PData: encode(ke1.Serialize())}, &res); err != nil {
		return nil, fmt.Errorf("gor2pswire: login evaluate: %w", err)
	}
	if res.TFASessionID == "" {
		return nil, errors.New("gor2pswire: login evaluate: no 2fa_session_id")
	}
	de, err := opaqueConfig.Deserializer()
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: %w", err)
	}
	raw, err := decode(res.Response)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: KE2: %w", err)
	}
	ke2, err := de.KE2(raw)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: KE2: %w", err)
	}
	ke3, key, exportKey, err := client.GenerateKE3(ke2, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: KE3: %w", err)
	}
	clear(exportKey)
	var fin tfaResult
	pending := &Session{ID: res.TFASessionID}
	if err := w.call(ctx, type2FAAuthenticate, pending, tfaData{Protocol: protocolOPAQUE, State: stateFinalize, PData: encode(ke3.Serialize())}, &fin, false); err != nil {
		clear(key)
		return nil, fmt.Errorf("gor2pswire: login finalize: %w", err)
	}
	s := &Session{ID: res.TFASessionID, Key: key}
	if fin.SessionExpirationTime != 0 {
		s.ExpiresAt = time.Unix(fin.SessionExpirationTime, 0)
	}
	w.session = s
	return s, nil
}

// Generate asks for a P-256 key. go-r2ps-service answers only
// {"created_key"}; when the answer has no kid, the wallet does what
// go-r2ps-service's e2e test does: list the keys and take the last.
func (w *Wallet) Generate(ctx context.Context) (KeyInfo, error) {
	var res generateResult
	if err := w.Call(ctx, typeP256Generate, generateData{Curve: curveP256}, &res); err != nil {
		return KeyInfo{}, err
	}
	if res.CreatedKey != curveP256 {
		return KeyInfo{}, fmt.Errorf("gor2pswire: created_key %q", res.CreatedKey)
	}
	if res.KID == "" {
		keys, err := w.ListKeys(ctx)
		if err != nil {
			return KeyInfo{}, err
		}
		if len(keys) == 0 {
			return KeyInfo{}, errors.New("gor2pswire: no key listed after p256_generate")
		}
		return keys[len(keys)-1], nil
	}
	k := KeyInfo{KID: res.KID, CurveName: curveP256}
	if res.PublicKey != "" {
		pub, err := parsePublicKey(res.PublicKey)
		if err != nil {
			return KeyInfo{}, err
		}
		k.PublicKey = pub
	}
	return k, nil
}

// ListKeys lists P-256 keys ({"curve":["P-256"]}).
func (w *Wallet) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var res listKeysResult
	if err := w.Call(ctx, typeListKeys, listKeysData{Curve: []string{curveP256}}, &res); err != nil {
		return nil, err
	}
	return keyInfos(res)
}

func keyInfos(res listKeysResult) ([]KeyInfo, error) {
	out := make([]KeyInfo, 0, len(res.KeyInfo))
	for _, k := range res.KeyInfo {
		pub, err := parsePublicKey(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("gor2pswire: key %q: %w", k.KID, err)
		}
		out = append(out, KeyInfo{KID: k.KID, CurveName: k.CurveName, CreationTime: k.CreationTime, PublicKey: pub})
	}
	return out, nil
}

// Sign has key kid sign hash (tbs_hash in padded base64url) and returns
// the DER signature.
func (w *Wallet) Sign(ctx context.Context, kid string, hash []byte) ([]byte, error) {
	var data json.RawMessage
	if err := w.Call(ctx, typeSignECDSA, signData{KID: kid, TBSHash: encode(hash)}, &data); err != nil {
		return nil, err
	}
	return decodeBinaryString(data)
}

// ECDH has key kid agree with peer (public_key: the uncompressed point in
// padded base64url, as go-r2ps-service's handler takes it) and returns the
// shared secret.
func (w *Wallet) ECDH(ctx context.Context, kid string, peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, errors.New("gor2pswire: peer is not a P-256 key")
	}
	var data json.RawMessage
	if err := w.Call(ctx, typeAgreeECDH, ecdhData{KID: kid, PublicKey: encode(peer.Bytes())}, &data); err != nil {
		return nil, err
	}
	return decodeBinaryString(data)
}

// Call is pkg/client's CallService: data (any JSON value) as the request
// data of type typ, in the current session; out receives the response
// data (nil to ignore it).
func (w *Wallet) Call(ctx context.Context, typ string, data, out any) error {
	if w.session == nil {
		return ErrNoSession
	}
	return w.call(ctx, typ, w.session, data, out, w.jwe)
}

// Call1FA sends a request of type typ without a session, as pkg/client
// sends the WSCA types (eudiw_wka_etsi, eudiw_wia_etsi).
func (w *Wallet) Call1FA(ctx context.Context, typ string, data, out any) error {
	return w.call(ctx, typ, nil, data, out, false)
}

// tfa sends an OPAQUE round: in the session for 2fa_change, without one
// otherwise.
func (w *Wallet) tfa(ctx context.Context, typ string, data tfaData, out any) error {
	if typ == type2FAChange {
		return w.Call(ctx, typ, data, out)
	}
	return w.call(ctx, typ, nil, data, out, false)
}

func (w *Wallet) call(ctx context.Context, typ string, s *Session, data, out any, wrap bool) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("gor2pswire: %w", err)
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("gor2pswire: %w", err)
	}
	req := request{Ver: version, Nonce: encode(nonce), IAT: w.now().Unix(), Data: raw, ClientID: w.clientID, Context: w.context, Type: typ}
	if s != nil {
		req.TFASessionID = s.ID
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("gor2pswire: %w", err)
	}
	body, err := w.sign(payload, typ == type2FARegistration && w.regJWK)
	if err != nil {
		return err
	}
	if wrap {
		if body, err = r2ps.SealCompat2FA(body, s.Key, s.ID, r2ps.ClientToServer, nil); err != nil {
			return fmt.Errorf("gor2pswire: %w", err)
		}
	}
	resp, err := w.post(ctx, body)
	if err != nil {
		return err
	}
	var key []byte
	if wrap {
		key = s.Key
	}
	res, err := readResponse(resp, w.serverKey, key, s, req.Nonce)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.Data, out); err != nil {
		return fmt.Errorf("gor2pswire: response data: %w", err)
	}
	return nil
}

// sign makes the request JWS as pkg/client does (go-jose, ES256, typ only),
// with the optional kid and jwk members.
func (w *Wallet) sign(payload []byte, embedJWK bool) ([]byte, error) {
	opts := (&jose.SignerOptions{}).WithType(typRequest)
	if w.kid != "" {
		opts = opts.WithHeader("kid", w.kid)
	}
	if embedJWK {
		opts = opts.WithHeader("jwk", &jose.JSONWebKey{Key: &w.csk.PublicKey})
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: w.csk}, opts)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: sign: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: %w", err)
	}
	return []byte(out), nil
}

// httpResponse is what readResponse needs of an HTTP answer.
type httpResponse struct {
	status int
	body   []byte
}

func (w *Wallet) post(ctx context.Context, body []byte) (httpResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return httpResponse{}, fmt.Errorf("gor2pswire: %w", err)
	}
	req.Header.Set("Content-Type", r2ps.MediaType)
	resp, err := w.http.Do(req)
	if err != nil {
		return httpResponse{}, fmt.Errorf("gor2pswire: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return httpResponse{}, fmt.Errorf("gor2pswire: read response: %w", err)
	}
	if len(b) > maxBody {
		return httpResponse{}, errors.New("gor2pswire: response larger than 1 MiB")
	}
	return httpResponse{status: resp.StatusCode, body: b}, nil
}

// readResponse turns an HTTP answer into the response payload: a failure
// body becomes a *ServerError; a 200 body is opened (when sessionKey is
// set, as an s2c compat 2FA JWE of session s) and verified with serverKey
// as pkg/client does, then its ver and nonce echo are checked.
func readResponse(resp httpResponse, serverKey *ecdsa.PublicKey, sessionKey []byte, s *Session, nonce string) (response, error) {
	var res response
	if resp.status != http.StatusOK {
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"error_message"`
		}
		if err := json.Unmarshal(resp.body, &e); err != nil || e.Code == "" {
			return res, &ServerError{Status: resp.status, Message: "unparsable failure body"}
		}
		return res, &ServerError{Status: resp.status, Code: e.Code, Message: e.Message}
	}
	body := resp.body
	if sessionKey != nil {
		env, err := r2ps.OpenCompat2FA(body, r2ps.ServerToClient, func(id string) ([]byte, error) {
			if id != s.ID {
				return nil, fmt.Errorf("response for session %q", id)
			}
			return sessionKey, nil
		})
		if err != nil {
			return res, fmt.Errorf("gor2pswire: response JWE: %w", err)
		}
		body = env.JWS
	}
	obj, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512})
	if err != nil {
		return res, fmt.Errorf("gor2pswire: response JWS: %w", err)
	}
	payload, err := obj.Verify(serverKey)
	if err != nil {
		return res, fmt.Errorf("gor2pswire: response JWS: %w", err)
	}
	if err := json.Unmarshal(payload, &res); err != nil {
		return res, fmt.Errorf("gor2pswire: response payload: %w", err)
	}
	if res.Ver != version || res.Nonce != nonce {
		return res, fmt.Errorf("gor2pswire: response ver %q nonce %q, want %q %q", res.Ver, res.Nonce, version, nonce)
	}
	if res.Success != nil && !*res.Success {
		return res, errors.New("gor2pswire: response says success false")
	}
	return res, nil
}
