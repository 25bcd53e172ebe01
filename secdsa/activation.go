package secdsa

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"io"

	"filippo.io/nistec"
)

// Protocol 4, wallet activation (docs/secdsa.md, "Activation"):
//
//	wallet   BeginActivation → ActivationRequest{account, nonce, U, Ybl = t·P·U, π, PoP}
//	provider Activate (two derives with aU) → ActivationResponse{G', Y'bl}
//	wallet   (*ActivationState).Finish → Y' = t⁻¹·Y'bl
//	provider IssueInternalCert(account, U, G', Y')
//	wallet   (*ActivationState).Accept(IC)

// ActivationRequest is the wallet's first activation message.
type ActivationRequest struct {
	AccountID []byte
	Nonce     []byte // the provider's activation nonce, 16 to 64 bytes
	U         []byte // device key, 65 bytes
	YBlind    []byte // Ybl = t·Y, 65 bytes
	Proof     []byte // DLEQ (U → Ybl), witness t·P
	PoP       []byte // device signature over the request digest
}

func (r *ActivationRequest) context() []byte {
	return digest(frame(labelActRequest, r.AccountID, r.Nonce))
}

func (r *ActivationRequest) popDigest() []byte {
	return digest(frame(labelActRequest, r.AccountID, r.Nonce, r.U, r.YBlind, r.Proof))
}

// Marshal encodes the request.
func (r *ActivationRequest) Marshal() []byte {
	return frame(labelActRequest, r.AccountID, r.Nonce, r.U, r.YBlind, r.Proof, r.PoP)
}

// ParseActivationRequest decodes Marshal's output (points validated).
func ParseActivationRequest(b []byte) (*ActivationRequest, error) {
	f, err := unframe(b, labelActRequest, -1, -1, PointSize, PointSize, ProofSize, 64)
	if err != nil {
		return nil, err
	}
	r := &ActivationRequest{clone(f[0]), clone(f[1]), clone(f[2]), clone(f[3]), clone(f[4]), clone(f[5])}
	if _, _, err := r.points(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ActivationRequest) points() (u, ybl *point, err error) {
	if u, err = ParsePoint(r.U); err != nil {
		return nil, nil, fmt.Errorf("activation U: %w", err)
	}
	if ybl, err = ParsePoint(r.YBlind); err != nil {
		return nil, nil, fmt.Errorf("activation Ybl: %w", err)
	}
	return u, ybl, nil
}

// ActivationResponse is the provider's answer: G' = aU·G and Y'bl = aU·Ybl.
type ActivationResponse struct {
	GPrime      []byte
	YBlindPrime []byte
}

// Marshal encodes the response.
func (r *ActivationResponse) Marshal() []byte {
	return frame(labelActResponse, r.GPrime, r.YBlindPrime)
}

// ParseActivationResponse decodes Marshal's output (points validated).
func ParseActivationResponse(b []byte) (*ActivationResponse, error) {
	f, err := unframe(b, labelActResponse, PointSize, PointSize)
	if err != nil {
		return nil, err
	}
	for _, p := range f {
		if _, err := ParsePoint(p); err != nil {
			return nil, fmt.Errorf("activation response: %w", err)
		}
	}
	return &ActivationResponse{clone(f[0]), clone(f[1])}, nil
}

// ActivationState is what the wallet keeps between its activation
// messages. It holds the secret blinding factor t: keep it in memory only.
type ActivationState struct {
	req *ActivationRequest
	t   *scalar // wiped by Finish
	yp  []byte
	gp  []byte
}

// BeginActivation runs the wallet's first activation step: P from the PIN
// binder, Y = P·U, a random t, Ybl = t·Y, the proof of knowledge of t·P
// (DLEQ over (U, Ybl) bound to the account and nonce) and the device's
// signature over it all. Y itself is never sent, and never kept.
func BeginActivation(rand io.Reader, binder PINBinder, dev DeviceKey, pin, accountID, nonce []byte) (*ActivationRequest, *ActivationState, error) {
	if len(accountID) == 0 || len(accountID) > maxField || len(nonce) < 16 || len(nonce) > 64 {
		return nil, nil, fmt.Errorf("%w: account id or nonce", ErrMalformed)
	}
	u, err := devicePoint(dev)
	if err != nil {
		return nil, nil, err
	}
	pb, err := binder.PINKey(pin)
	if err != nil {
		return nil, nil, fmt.Errorf("secdsa: PIN binder: %w", err)
	}
	p, err := parseScalar(pb)
	clear(pb)
	if err != nil {
		return nil, nil, fmt.Errorf("secdsa: PIN binder output: %w", err)
	}
	t, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	tp := mulN(t, p)
	defer wipe(tp)
	wipe(p)
	ybl, err := mul(u, tp)
	if err != nil {
		return nil, nil, err
	}
	req := &ActivationRequest{AccountID: clone(accountID), Nonce: clone(nonce), U: encodePoint(u), YBlind: encodePoint(ybl)}
	if req.Proof, err = dleqProve(rand, labelDLEQAct, []*point{u}, []*point{ybl}, tp, req.context()); err != nil {
		return nil, nil, err
	}
	if req.PoP, err = dev.SignDigest(req.popDigest()); err != nil {
		return nil, nil, fmt.Errorf("secdsa: device: %w", err)
	}
	return req, &ActivationState{req: req, t: t}, nil
}

// Activate is the provider's activation step, as a pure function over the
// unit's HSM key: gPrime is aU's public point (CKA_EC_POINT) and derive its
// ECDH. It checks the request against the account and the nonce the
// provider issued, the proof and the device signature, and computes the
// full point Y'bl = aU·Ybl with two derives (x-only ECDH cannot give the
// sign of y): the lifts ±Q of x(aU·Ybl) are told apart by
// x(aU·(Ybl − G)) = x(Q − G').
func Activate(req *ActivationRequest, accountID, nonce, gPrime []byte, d DeriveFunc) (*ActivationResponse, error) {
	if !bytes.Equal(req.AccountID, accountID) {
		return nil, ErrAccount
	}
	if len(nonce) < 16 || !bytes.Equal(req.Nonce, nonce) {
		return nil, fmt.Errorf("%w: nonce", ErrActivation)
	}
	u, ybl, err := req.points()
	if err != nil {
		return nil, err
	}
	gp, err := ParsePoint(gPrime)
	if err != nil {
		return nil, fmt.Errorf("provider G': %w", err)
	}
	if err := dleqVerify(labelDLEQAct, []*point{u}, []*point{ybl}, req.context(), req.Proof); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrActivation, err)
	}
	if !verifyDigest(u, req.popDigest(), req.PoP) {
		return nil, fmt.Errorf("%w: device signature", ErrActivation)
	}
	q, err := recoverProduct(d, ybl, gp)
	if err != nil {
		return nil, err
	}
	return &ActivationResponse{GPrime: encodePoint(gp), YBlindPrime: encodePoint(q)}, nil
}

// recoverProduct returns the full point aU·p from two x-only derives:
// x(aU·p) has the lifts ±Q, and x(aU·(p − G)) = x(Q − G') picks one.
func recoverProduct(d DeriveFunc, p, gp *point) (*point, error) {
	shifted, err := sub(p, generator())
	if err != nil {
		return nil, fmt.Errorf("%w: Ybl is the generator", ErrActivation)
	}
	x1, err := derive(d, p)
	if err != nil {
		return nil, err
	}
	x2, err := derive(d, shifted)
	if err != nil {
		return nil, err
	}
	q1, q2, err := liftX(x1)
	if err != nil {
		return nil, fmt.Errorf("secdsa: device derive: %w", err)
	}
	negGP := nistec.NewP256Point().Negate(gp)
	for _, q := range []*point{q1, q2} {
		diff := nistec.NewP256Point().Add(q, negGP)
		if diff.IsInfinity() == 0 && bytes.Equal(xOf(diff), x2) {
			return q, nil
		}
	}
	return nil, fmt.Errorf("secdsa: device derive: outputs inconsistent with G'")
}

// Finish unblinds the provider's answer: Y' = t⁻¹·Y'bl (= aU·Y). The wallet
// sends Y' to the provider for the Internal Certificate. The provider cannot
// check Y' (it never learns Y); the first instruction proves it.
func (s *ActivationState) Finish(resp *ActivationResponse) ([]byte, error) {
	if s.t == nil {
		return nil, fmt.Errorf("%w: activation state already finished", ErrActivation)
	}
	if _, err := ParsePoint(resp.GPrime); err != nil {
		return nil, fmt.Errorf("activation G': %w", err)
	}
	yblp, err := ParsePoint(resp.YBlindPrime)
	if err != nil {
		return nil, fmt.Errorf("activation Y'bl: %w", err)
	}
	tInv := invN(s.t)
	defer wipe(tInv)
	yp, err := mul(yblp, tInv)
	if err != nil {
		return nil, err
	}
	s.yp = encodePoint(yp)
	s.gp = clone(resp.GPrime)
	wipe(s.t)
	s.t = nil
	return clone(s.yp), nil
}

// Accept checks the Internal Certificate the provider issued: its signature
// under the provider's key, and that it certifies this account, this device
// key and the Y' that Finish computed.
func (s *ActivationState) Accept(ic *InternalCert, provider *ecdsa.PublicKey) error {
	if err := VerifyInternalCert(ic, provider); err != nil {
		return err
	}
	if s.yp == nil || !bytes.Equal(ic.AccountID, s.req.AccountID) || !bytes.Equal(ic.U, s.req.U) || !bytes.Equal(ic.YPrime, s.yp) || !bytes.Equal(ic.GPrime, s.gp) {
		return fmt.Errorf("%w: certificate does not match the activation", ErrActivation)
	}
	return nil
}
