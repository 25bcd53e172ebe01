package pin

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bytemare/ecc"
	"github.com/bytemare/opaque"
	"github.com/bytemare/opaque/message"
)

// RFC 9807 server messages built around an OPRF evaluation made
// elsewhere (the HSM). bytemare/opaque v0.18.0 evaluates the OPRF itself,
// from a scalar, inside GenerateKE2, and its 3DH is internal; so this file
// writes the few steps of RFC 9807 that follow the evaluation, for the
// fixed P256-SHA256 suite: CreateCredentialResponse (§6.3.2.2, from the
// evaluated element on) and AuthServerRespond (§6.4.2.2). Tests prove
// byte equality with bytemare's GenerateKE2 for random inputs and with
// the RFC 9807 vectors.

// RFC 9807 labels.
const (
	labelVersion  = "OPAQUEv1-"
	labelPad      = "CredentialResponsePad"
	labelPrefix   = "OPAQUE-"
	labelDeriveDH = "OPAQUE-DeriveDiffieHellmanKeyPair"
	// dstDeriveKeyPair is RFC 9497's "DeriveKeyPair" || contextString for
	// P256-SHA256 in mode 0x00.
	dstDeriveKeyPair = "DeriveKeyPairOPRFV1-\x00-P256-SHA256"
	// Elements (Npk, Noe) and the envelope (Nn + Nm) of the suite.
	elementLen  = 33
	envelopeLen = nonceLen + macLen
)

// ke2Input is what a KE2 needs besides the evaluated element.
type ke2Input struct {
	context      []byte
	serverSK     *ecc.Scalar
	serverPK     []byte // compressed
	serverID     []byte // nil: serverPK
	ke1          *message.KE1
	rec          *opaque.ClientRecord
	maskingNonce []byte // Nn
	keyShareSeed []byte // Nseed
	serverNonce  []byte // Nn
}

// ke2Output is a KE2 with the server's side of the session.
type ke2Output struct {
	ke2           []byte
	sessionSecret []byte
	clientMAC     []byte
}

// buildKE2 returns the KE2 of RFC 9807 GenerateKE2 for in, with z (a
// compressed point) as the OPRF evaluation of the KE1's blinded element.
func buildKE2(in ke2Input, z []byte) (*ke2Output, error) {
	rec := in.rec
	if len(z) != elementLen || len(in.serverPK) != elementLen || rec == nil || rec.RegistrationRecord == nil ||
		len(rec.MaskingKey) != sha256.Size || len(rec.Envelope) != envelopeLen ||
		len(in.maskingNonce) != nonceLen || len(in.serverNonce) != nonceLen || len(in.keyShareSeed) != nonceLen {
		return nil, errors.New("pin: internal error: KE2 input sizes")
	}
	// CreateCredentialResponse: mask the server public key and envelope.
	pad, err := hkdf.Expand(sha256.New, rec.MaskingKey, string(in.maskingNonce)+labelPad, elementLen+envelopeLen)
	if err != nil {
		return nil, fmt.Errorf("pin: KE2: %w", err)
	}
	clearText := append(append(make([]byte, 0, len(pad)), in.serverPK...), rec.Envelope...)
	for i := range pad {
		pad[i] ^= clearText[i]
	}
	credResp := append(append(append(make([]byte, 0, elementLen+nonceLen+len(pad)), z...), in.maskingNonce...), pad...)

	// AuthServerRespond.
	g := ecc.P256Sha256
	skE, err := deriveKeyPair(in.keyShareSeed, []byte(labelDeriveDH))
	if err != nil {
		return nil, err
	}
	defer skE.Zero()
	epkS := g.Base().Multiply(skE).Encode()
	dh := func(s *ecc.Scalar, e *ecc.Element) []byte { return e.Copy().Multiply(s).Encode() }
	ikm := append(append(dh(skE, in.ke1.ClientKeyShare), dh(in.serverSK, in.ke1.ClientKeyShare)...), dh(skE, rec.ClientPublicKey)...)
	defer clear(ikm)

	clientID := rec.ClientIdentity
	if clientID == nil {
		clientID = rec.ClientPublicKey.Encode()
	}
	serverID := in.serverID
	if serverID == nil {
		serverID = in.serverPK
	}
	h := sha256.New()
	h.Write([]byte(labelVersion))
	h.Write(vector(in.context))
	h.Write(vector(clientID))
	h.Write(in.ke1.Serialize())
	h.Write(vector(serverID))
	h.Write(credResp)
	h.Write(in.serverNonce)
	h.Write(epkS)
	preambleHash := h.Sum(nil)

	prk, err := hkdf.Extract(sha256.New, ikm, nil)
	if err != nil {
		return nil, fmt.Errorf("pin: KE2: %w", err)
	}
	defer clear(prk)
	session := expandLabel(prk, "SessionKey", preambleHash)
	handshake := expandLabel(prk, "HandshakeSecret", preambleHash)
	defer clear(handshake)
	km2 := expandLabel(handshake, "ServerMAC", nil)
	km3 := expandLabel(handshake, "ClientMAC", nil)
	defer clear(km2)
	defer clear(km3)
	serverMAC := mac(km2, preambleHash)
	h.Write(serverMAC)
	clientMAC := mac(km3, h.Sum(nil))

	ke2 := make([]byte, 0, len(credResp)+nonceLen+elementLen+macLen)
	ke2 = append(append(append(append(ke2, credResp...), in.serverNonce...), epkS...), serverMAC...)
	return &ke2Output{ke2: ke2, sessionSecret: session, clientMAC: clientMAC}, nil
}

// vector is I2OSP(len(b), 2) || b.
func vector(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b))), b...)
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// expandLabel is RFC 9807 Expand-Label with Length Nx (so also
// Derive-Secret): Expand(secret, I2OSP(Nx, 2) || vec1("OPAQUE-" || label)
// || vec1(context), Nx).
func expandLabel(secret []byte, label string, context []byte) []byte {
	info := binary.BigEndian.AppendUint16(nil, sha256.Size)
	info = append(info, byte(len(labelPrefix)+len(label)))
	info = append(append(info, labelPrefix...), label...)
	info = append(append(info, byte(len(context))), context...)
	out, err := hkdf.Expand(sha256.New, secret, string(info), sha256.Size)
	if err != nil {
		panic("pin: internal error: HKDF-Expand of one block: " + err.Error())
	}
	return out
}

// deriveKeyPair is RFC 9497 DeriveKeyPair (§3.2.1) for P256-SHA256 in
// mode 0x00: the private scalar.
func deriveKeyPair(seed, info []byte) (*ecc.Scalar, error) {
	in := append(append([]byte{}, seed...), vector(info)...)
	defer clear(in)
	for counter := range 256 {
		sk := ecc.P256Sha256.HashToScalar(append(in, byte(counter)), []byte(dstDeriveKeyPair))
		if !sk.IsZero() {
			return sk, nil
		}
	}
	return nil, errors.New("pin: DeriveKeyPair: no valid scalar")
}
