package client

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bytemare/opaque"
	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/pin/profile"
	"github.com/wsca/wsca/r2ps"
)

// pinClient is an OPAQUE client for one exchange.
type pinClient struct {
	*opaque.Client
}

func newPINClient(p profile.Profile) (*pinClient, error) {
	conf, err := p.Configuration()
	if err != nil {
		return nil, err
	}
	c, err := conf.Client()
	if err != nil {
		return nil, fmt.Errorf("client: opaque: %w", err)
	}
	return &pinClient{c}, nil
}

// register runs the two OPAQUE registration rounds through exchange, which
// sends a TFARequest and returns the TFAResponse.
func (c *Client) register(ctx context.Context, newPIN []byte, exchange func(r2ps.TFARequest) (r2ps.TFAResponse, error), finalize func(*r2ps.TFARequest)) error {
	oc, err := c.conf()
	if err != nil {
		return err
	}
	defer oc.ClearState()
	regReq, err := oc.RegistrationInit(newPIN)
	if err != nil {
		return fmt.Errorf("client: opaque: %w", err)
	}
	resp, err := exchange(r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: regReq.Serialize()})
	if err != nil {
		return err
	}
	regResp, err := oc.Deserialize.RegistrationResponse(resp.PData)
	if err != nil {
		return fmt.Errorf("client: opaque registration response: %w", err)
	}
	rec, export, err := oc.RegistrationFinalize(regResp, nil, nil)
	if err != nil {
		return fmt.Errorf("client: opaque: %w", err)
	}
	clear(export)
	tr := r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateFinalize, PData: rec.Serialize()}
	if finalize != nil {
		finalize(&tr)
	}
	_, err = exchange(tr)
	return err
}

func (c *Client) cakJWK() *jose.JSONWebKey {
	pub, _ := ecp256.ParsePublicKey(c.cfg.AgreementKey.PublicKey().Bytes())
	return &jose.JSONWebKey{Key: pub, KeyID: r2ps.Thumbprint(pub)}
}

// Enrol registers this client's keys and PIN for its unit with an
// activation code (docs/protocol.md §5). It also serves a PIN reset, with a
// reset code.
func (c *Client) Enrol(ctx context.Context, activationCode string, newPIN []byte) error {
	exchange := func(tr r2ps.TFARequest) (r2ps.TFAResponse, error) {
		tr.CAK = c.cakJWK()
		var out r2ps.TFAResponse
		err := c.call1FA(ctx, r2ps.Type2FARegistration, tr, &out, true)
		return out, err
	}
	return c.register(ctx, newPIN, exchange, func(tr *r2ps.TFARequest) {
		tr.Authorization = []byte(strings.TrimSpace(activationCode))
		tr.AuthorizationType = r2ps.AuthorizationTypeOTP
	})
}

// LoginOptions shape a session.
type LoginOptions struct {
	// Task binds the session: "2fa_update" for one PIN change, or
	// "sign:<hex SHA-256>[,…]" for exactly those signatures.
	Task string
	// Duration asks for a session length (0: the server's default).
	Duration time.Duration
}

// Login proves the PIN with OPAQUE (create_session) and returns the
// session.
func (c *Client) Login(ctx context.Context, pinCode []byte, opts LoginOptions) (*Session, error) {
	oc, err := c.conf()
	if err != nil {
		return nil, err
	}
	defer oc.ClearState()
	ke1, err := oc.GenerateKE1(pinCode)
	if err != nil {
		return nil, fmt.Errorf("client: opaque: %w", err)
	}
	var r1 r2ps.TFAResponse
	err = c.call1FA(ctx, r2ps.TypeCreateSession, r2ps.TFARequest{
		Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: ke1.Serialize(),
		Task: opts.Task, SessionDuration: int64(opts.Duration / time.Second),
	}, &r1, false)
	if err != nil {
		return nil, err
	}
	ke2, err := oc.Deserialize.KE2(r1.PData)
	if err != nil {
		return nil, fmt.Errorf("client: opaque KE2: %w", err)
	}
	ke3, key, export, err := oc.GenerateKE3(ke2, nil, nil)
	clear(export)
	if err != nil {
		// The server's record does not open with this PIN: the attempt is
		// counted there; say so as the server would.
		return nil, &Error{Code: r2ps.CodeUnauthorized, Status: 200}
	}
	var r2 r2ps.TFAResponse
	err = c.call1FA(ctx, r2ps.TypeCreateSession, r2ps.TFARequest{
		Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateFinalize, PData: ke3.Serialize(), SessionID: r1.SessionID,
	}, &r2, false)
	if err != nil {
		clear(key)
		return nil, err
	}
	return &Session{c: c, ID: r1.SessionID, Key: key, Task: r2.Task, ExpiresAt: time.Unix(r2.SessionExpirationTime, 0)}, nil
}

// ChangePIN replaces the PIN inside a session made with Task "2fa_update";
// the session ends with it.
func (s *Session) ChangePIN(ctx context.Context, newPIN []byte) error {
	exchange := func(tr r2ps.TFARequest) (r2ps.TFAResponse, error) {
		var out r2ps.TFAResponse
		err := s.call(ctx, r2ps.Type2FAUpdate, tr, &out)
		return out, err
	}
	return s.c.register(ctx, newPIN, exchange, nil)
}

// Key is a key of the unit.
type Key struct {
	KID     string
	Public  *ecdsa.PublicKey
	Created time.Time
}

func keyFromJWK(kid string, j *jose.JSONWebKey) (Key, error) {
	if j == nil {
		return Key{}, errors.New("client: key without public key")
	}
	pub, ok := j.Key.(*ecdsa.PublicKey)
	if !ok {
		return Key{}, errors.New("client: public key is not P-256")
	}
	if got, err := ecp256.KID(pub); err != nil || got != kid {
		return Key{}, errors.New("client: the server's kid does not match the public key")
	}
	return Key{KID: kid, Public: pub}, nil
}

// Generate makes a new P-256 key on the server's device.
func (s *Session) Generate(ctx context.Context) (Key, error) {
	var out r2ps.GenerateResponse
	if err := s.call(ctx, r2ps.TypeP256Generate, r2ps.GenerateRequest{Curve: r2ps.CurveP256}, &out); err != nil {
		return Key{}, err
	}
	return keyFromJWK(out.KID, out.PublicKey)
}

// Sign signs a SHA-256 digest with a key of the unit and returns the DER
// signature.
func (s *Session) Sign(ctx context.Context, kid string, digest []byte) ([]byte, error) {
	var out r2ps.SignResponse
	if err := s.call(ctx, r2ps.TypeSignECDSA, r2ps.SignRequest{KID: kid, TBSHash: digest}, &out); err != nil {
		return nil, err
	}
	return out.Signature, nil
}

// ECDH agrees a secret between a key of the unit and a peer point (SEC 1).
func (s *Session) ECDH(ctx context.Context, kid string, peer []byte) ([]byte, error) {
	var out r2ps.ECDHResponse
	if err := s.call(ctx, r2ps.TypeAgreeECDH, r2ps.ECDHRequest{KID: kid, PublicKey: peer}, &out); err != nil {
		return nil, err
	}
	return out.SharedSecret, nil
}

// ListKeys lists the unit's keys usable in the session's context, oldest
// first, following the server's pages.
func (s *Session) ListKeys(ctx context.Context) ([]Key, error) {
	var keys []Key
	req := r2ps.ListKeysRequest{}
	for page := 0; ; page++ {
		var out r2ps.ListKeysResponse
		if err := s.call(ctx, r2ps.TypeListKeys, req, &out); err != nil {
			return nil, err
		}
		for _, ki := range out.KeyInfo {
			k, err := keyFromJWK(ki.KID, ki.PublicKey)
			if err != nil {
				return nil, err
			}
			k.Created = time.Unix(ki.CreationTime, 0)
			keys = append(keys, k)
		}
		if out.Next == "" || out.Next == req.After || page >= maxListPages {
			return keys, nil
		}
		req.After = out.Next
	}
}

// maxListPages bounds the pages ListKeys follows, against a server that
// never ends.
const maxListPages = 1000

// DeleteKey destroys a key of the unit on the server's device.
func (s *Session) DeleteKey(ctx context.Context, kid string) error {
	var out r2ps.DeleteKeyResponse
	return s.call(ctx, r2ps.TypeDeleteKey, r2ps.DeleteKeyRequest{KID: kid}, &out)
}
