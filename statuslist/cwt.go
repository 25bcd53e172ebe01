package statuslist

import (
	"crypto"
	"crypto/rand"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// COSE header labels go-cose does not name.
const coseX5Chain int64 = 33 // RFC 9360

// cborEnc writes deterministic CBOR (RFC 8949 §4.2.1: shortest forms,
// definite lengths, sorted map keys).
var cborEnc = mustEncMode()

// cborDec reads untrusted CBOR: no duplicate keys, no indefinite lengths,
// no tags, bounded nesting and sizes.
var cborDec = mustDecMode()

func mustEncMode() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic("statuslist: internal error: " + err.Error())
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 1024,
		MaxMapPairs:      1024,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("statuslist: internal error: " + err.Error())
	}
	return m
}

// cwtClaimsOut is the claims set as written; cwtClaimsIn as read, where a
// missing claim stays nil. Unknown claims are ignored.
type cwtClaimsOut struct {
	Sub        string        `cbor:"2,keyasint"`
	Exp        int64         `cbor:"4,keyasint,omitempty"`
	Iat        int64         `cbor:"6,keyasint"`
	StatusList cwtStatusList `cbor:"65533,keyasint"`
	TTL        int64         `cbor:"65534,keyasint,omitempty"`
}

type cwtStatusList struct {
	Bits int    `cbor:"bits"`
	Lst  []byte `cbor:"lst"`
}

type cwtClaimsIn struct {
	Sub        *string `cbor:"2,keyasint"`
	Exp        *int64  `cbor:"4,keyasint"`
	Iat        *int64  `cbor:"6,keyasint"`
	StatusList *struct {
		Bits *int             `cbor:"bits"`
		Lst  *cbor.RawMessage `cbor:"lst"`
	} `cbor:"65533,keyasint"`
	TTL *int64 `cbor:"65534,keyasint"`
}

// SignCWT returns the statuslist+cwt of t: an untagged CWT in a
// COSE_Sign1_Tagged message signed ES256 by key, with alg, typ
// application/statuslist+cwt, and the kid (4) and x5chain (33) of opts in
// the protected header. Headers and claims are deterministic CBOR.
func SignCWT(t *Token, key crypto.Signer, opts SignOptions) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := opts.Check(key); err != nil {
		return nil, err
	}
	c := cwtClaimsOut{
		Sub:        t.Subject,
		Iat:        t.IssuedAt.Unix(),
		TTL:        t.ttlSeconds(),
		StatusList: cwtStatusList{Bits: t.Bits, Lst: t.Lst},
	}
	if !t.Expiry.IsZero() {
		c.Exp = t.Expiry.Unix()
	}
	payload, err := cborEnc.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("statuslist: cwt claims: %w", err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
	msg.Headers.Protected[cose.HeaderLabelType] = TypCWT
	if opts.KeyID != "" {
		msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte(opts.KeyID)
	}
	switch len(opts.Chain) {
	case 0:
	case 1:
		msg.Headers.Protected[coseX5Chain] = opts.Chain[0].Raw
	default:
		ders := make([][]byte, len(opts.Chain))
		for i, c := range opts.Chain {
			ders[i] = c.Raw
		}
		msg.Headers.Protected[coseX5Chain] = ders
	}
	msg.Payload = payload
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("statuslist: cwt signer: %w", err)
	}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return nil, fmt.Errorf("statuslist: sign cwt: %w", err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("statuslist: sign cwt: %w", err)
	}
	return out, nil
}

// VerifyCWT verifies a statuslist+cwt (see [Verifier]) and returns its
// content and list. uri is the status list uri of the referenced token;
// the subject (2) must equal it. The x5chain is read from the protected
// header only.
func (v *Verifier) VerifyCWT(token []byte, uri string) (*Verified, error) {
	if err := v.check(len(token)); err != nil {
		return nil, err
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(token); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	p := msg.Headers.Protected
	if typ, _ := p[cose.HeaderLabelType].(string); typ != TypCWT {
		return nil, fmt.Errorf("%w: type %v", ErrType, p[cose.HeaderLabelType])
	}
	alg, err := p.Algorithm()
	if err != nil || alg != cose.AlgorithmES256 {
		return nil, fmt.Errorf("%w: %v", ErrAlg, p[cose.HeaderLabelAlgorithm])
	}
	var x5c [][]byte
	switch c := p[coseX5Chain].(type) {
	case nil:
	case []byte:
		x5c = [][]byte{c}
	case []any:
		for _, e := range c {
			der, ok := e.([]byte)
			if !ok {
				return nil, fmt.Errorf("%w: x5chain entry is not a byte string", ErrMalformed)
			}
			x5c = append(x5c, der)
		}
	default:
		return nil, fmt.Errorf("%w: x5chain is neither a byte string nor an array", ErrMalformed)
	}
	var kid string
	if k, ok := p[cose.HeaderLabelKeyID].([]byte); ok {
		kid = string(k)
	}
	key, chain, err := v.key(x5c)
	if err != nil {
		return nil, err
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	t, err := parseCWTClaims(msg.Payload)
	if err != nil {
		return nil, err
	}
	return v.finish(t, uri, chain, kid)
}

// parseCWTClaims reads the claims a statuslist+cwt must have.
func parseCWTClaims(payload []byte) (*Token, error) {
	var c cwtClaimsIn
	if err := cborDec.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	if c.Sub == nil || c.Iat == nil || c.StatusList == nil || c.StatusList.Bits == nil || c.StatusList.Lst == nil {
		return nil, fmt.Errorf("%w: 2 (sub), 6 (iat) and 65533 (status_list{bits,lst}) are required", ErrClaims)
	}
	// lst is a byte string (major type 2), not text that could be read
	// as bytes.
	var lst []byte
	if raw := *c.StatusList.Lst; len(raw) == 0 || raw[0]>>5 != 2 {
		return nil, fmt.Errorf("%w: lst is not a byte string", ErrClaims)
	} else if err := cborDec.Unmarshal(raw, &lst); err != nil {
		return nil, fmt.Errorf("%w: lst: %w", ErrClaims, err)
	}
	t := &Token{Subject: *c.Sub, Bits: *c.StatusList.Bits, Lst: lst}
	if err := checkSeconds("iat", *c.Iat); err != nil {
		return nil, err
	}
	t.IssuedAt = fromUnix(*c.Iat)
	if c.Exp != nil {
		if err := checkSeconds("exp", *c.Exp); err != nil {
			return nil, err
		}
		t.Expiry = fromUnix(*c.Exp)
	}
	if c.TTL != nil {
		if err := checkSeconds("ttl", *c.TTL); err != nil {
			return nil, err
		}
		t.TTL = secondsDuration(*c.TTL)
	}
	return t, nil
}
