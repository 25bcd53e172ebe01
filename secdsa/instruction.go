package secdsa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
)

const (
	seedSize = 32
	ivSize   = 12
	tagSize  = 16
	hashSize = sha256.Size
)

// EncSignedInstruction is what the wallet sends for one instruction
// (reference §3.3): in the clear the account, the serial number, the nonce
// point R, R' = aU·R, the challenge (E, H2, SigChal) and the GCM IV; the
// ciphertext carries the seed, the instruction I, the additional data A,
// G”, Y” and the blinding proof π.
type EncSignedInstruction struct {
	AccountID  []byte
	SN         uint64
	R          []byte // 65
	RPrime     []byte // 65
	E          []byte // 65, the challenge key
	H2         []byte // 32
	SigChal    []byte // 64, device signature over the challenge digest
	IV         []byte // 12
	Ciphertext []byte // AES-256-GCM ciphertext ‖ 16-byte tag
}

// Marshal encodes the instruction.
func (x *EncSignedInstruction) Marshal() []byte {
	return frame(labelEnvelope, x.AccountID, u64(x.SN), x.R, x.RPrime, x.E, x.H2, x.SigChal, x.IV, x.Ciphertext)
}

// ParseEncSignedInstruction decodes Marshal's output (lengths only; the
// points are validated by ExecESInstruction).
func ParseEncSignedInstruction(b []byte) (*EncSignedInstruction, error) {
	f, err := unframe(b, labelEnvelope, -1, 8, PointSize, PointSize, PointSize, hashSize, 64, ivSize, -1)
	if err != nil {
		return nil, err
	}
	if len(f[8]) < tagSize+3*maxFieldHeader {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrMalformed)
	}
	return &EncSignedInstruction{AccountID: clone(f[0]), SN: binary.BigEndian.Uint64(f[1]), R: clone(f[2]),
		RPrime: clone(f[3]), E: clone(f[4]), H2: clone(f[5]), SigChal: clone(f[6]), IV: clone(f[7]), Ciphertext: clone(f[8])}, nil
}

// maxFieldHeader is a field's length prefix.
const maxFieldHeader = 4

// message is the SECDSA-signed message M; e = int(SHA-256(M)) mod n.
func message(accountID []byte, sn uint64, ins, ad []byte) []byte {
	return frame(labelInstruction, accountID, u64(sn), ins, ad)
}

// challengeDigest is c, signed by the device key and used as GCM AAD.
func challengeDigest(accountID []byte, sn uint64, e, r, rp, h2 []byte) []byte {
	return digest(frame(labelChallenge, accountID, u64(sn), e, r, rp, h2))
}

// challengeScalars derives d_1, d_2 in [1, n-1] from the seed:
// d_i = 1 + (OS2IP(HKDF-SHA256(seed, salt = "", info = label‖0x00‖i, 48)) mod (n-1)).
func challengeScalars(seed []byte) (*scalar, *scalar, error) {
	var d [2]*scalar
	for i := range d {
		b, err := hkdf.Key(sha256.New, seed, nil, labelScalar+"\x00"+string(rune('1'+i)), 48)
		if err != nil {
			return nil, nil, fmt.Errorf("secdsa: hkdf: %w", err)
		}
		d[i] = reduceNonZero(b)
		clear(b)
	}
	return d[0], d[1], nil
}

// challengeHashes returns H1 = SHA-256(label‖0x00‖d1‖d2) and H2 = SHA-256(H1).
func challengeHashes(d1, d2 *scalar) (h1, h2 []byte) {
	b1, b2 := scalarBytes(d1), scalarBytes(d2)
	h1 = digest([]byte(labelH1), []byte{0}, b1, b2)
	clear(b1)
	clear(b2)
	return h1, digest(h1)
}

// instructionAEAD is AES-256-GCM keyed with HKDF-SHA256(z, salt = "",
// info = label, 32).
func instructionAEAD(z []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, z, nil, labelKey, 32)
	if err != nil {
		return nil, fmt.Errorf("secdsa: hkdf: %w", err)
	}
	defer clear(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// GenESInstruction is the wallet's side of one instruction (reference §3.3;
// docs/secdsa.md, "Instruction"). sn must exceed every serial number the
// wallet used with this certificate. rand supplies the seed, the proof
// nonce and the IV; the device chooses the ECDSA nonce.
func GenESInstruction(rand io.Reader, ic *InternalCert, binder PINBinder, dev DeviceKey, pin []byte, sn uint64, instruction, additional []byte) (*EncSignedInstruction, error) {
	if len(instruction) > maxField || len(additional) > maxField {
		return nil, fmt.Errorf("%w: instruction too long", ErrMalformed)
	}
	u, gp, yp, err := ic.points()
	if err != nil {
		return nil, err
	}
	du, err := devicePoint(dev)
	if err != nil {
		return nil, err
	}
	if !equal(u, du) {
		return nil, fmt.Errorf("%w: device key is not the certificate's", ErrAccount)
	}
	pb, err := binder.PINKey(pin)
	if err != nil {
		return nil, fmt.Errorf("secdsa: PIN binder: %w", err)
	}
	p, err := parseScalar(pb)
	clear(pb)
	if err != nil {
		return nil, fmt.Errorf("secdsa: PIN binder output: %w", err)
	}
	defer wipe(p)
	y, err := mul(u, p)
	if err != nil {
		return nil, err
	}
	m := message(ic.AccountID, sn, instruction, additional)
	md := digest(m)
	e := hashToScalar(md)
	r, s, err := splitSign(dev, p, e)
	if err != nil {
		return nil, err
	}
	w := invN(s)
	wipe(s)
	defer wipe(w)
	// Full format: R = (e·w)·G + (r·w)·Y.
	rPoint, err := lin(mulN(e, w), generator(), mulN(r, w), y)
	if err != nil {
		return nil, err
	}
	if !equalScalar(rOf(rPoint), r) {
		return nil, fmt.Errorf("secdsa: device signature does not verify")
	}
	gpp, err := mul(gp, w)
	if err != nil {
		return nil, err
	}
	ypp, err := mul(yp, w)
	if err != nil {
		return nil, err
	}
	proof, err := dleqProve(rand, labelDLEQBlind, []*point{gp, yp}, []*point{gpp, ypp}, w, md)
	if err != nil {
		return nil, err
	}
	rp, err := lin(e, gpp, r, ypp)
	if err != nil {
		return nil, err
	}
	// Trusted challenge over (G, G'), (R, R').
	seed := make([]byte, seedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("secdsa: randomness: %w", err)
	}
	d1, d2, err := challengeScalars(seed)
	if err != nil {
		return nil, err
	}
	defer wipe(d1)
	defer wipe(d2)
	ePoint, err := lin(d1, generator(), d2, rPoint)
	if err != nil {
		return nil, err
	}
	z, err := lin(d1, gp, d2, rp)
	if err != nil {
		return nil, err
	}
	_, h2 := challengeHashes(d1, d2)
	x := &EncSignedInstruction{AccountID: clone(ic.AccountID), SN: sn, R: encodePoint(rPoint), RPrime: encodePoint(rp),
		E: encodePoint(ePoint), H2: h2, IV: make([]byte, ivSize)}
	c := challengeDigest(x.AccountID, sn, x.E, x.R, x.RPrime, x.H2)
	if x.SigChal, err = dev.SignDigest(c); err != nil {
		return nil, fmt.Errorf("secdsa: device: %w", err)
	}
	if _, err := io.ReadFull(rand, x.IV); err != nil {
		return nil, fmt.Errorf("secdsa: randomness: %w", err)
	}
	aead, err := instructionAEAD(xOf(z))
	if err != nil {
		return nil, err
	}
	pt := frame(labelPlaintext, seed, instruction, additional, encodePoint(gpp), encodePoint(ypp), proof)
	x.Ciphertext = aead.Seal(nil, x.IV, pt, c)
	clear(pt)
	clear(seed)
	return x, nil
}

// Executed is an instruction that ExecESInstruction authenticated: what
// the provider executes, and what goes into the transaction record.
type Executed struct {
	Envelope    *EncSignedInstruction
	Instruction []byte
	Additional  []byte
	GPP, YPP    []byte // G'', Y''
	Proof       []byte
	H1          []byte
}

// CheckPerimeter runs the checks that need no HSM (reference §3.4 steps
// 1–4): the account, the serial number (sn > lastSN), every received point
// and the device's challenge signature. Its refusals never count as PIN
// failures. ExecESInstruction runs it first.
func CheckPerimeter(ic *InternalCert, x *EncSignedInstruction, lastSN uint64) error {
	_, err := checkPerimeter(ic, x, lastSN)
	return err
}

// perimeter is what checkPerimeter parsed and computed, for
// ExecESInstruction to use rather than do again.
type perimeter struct {
	gp, yp   *point // the certificate's G', Y'
	r, rp, e *point // R, R', E
	c        []byte // the challenge digest
}

func checkPerimeter(ic *InternalCert, x *EncSignedInstruction, lastSN uint64) (*perimeter, error) {
	if !bytes.Equal(x.AccountID, ic.AccountID) {
		return nil, ErrAccount
	}
	if x.SN <= lastSN {
		return nil, ErrReplay
	}
	if len(x.H2) != hashSize || len(x.IV) != ivSize || len(x.Ciphertext) < tagSize {
		return nil, fmt.Errorf("%w: field length", ErrMalformed)
	}
	var p perimeter
	var err error
	for _, f := range []struct {
		dst **point
		b   []byte
	}{{&p.r, x.R}, {&p.rp, x.RPrime}, {&p.e, x.E}} {
		if *f.dst, err = ParsePoint(f.b); err != nil {
			return nil, err
		}
	}
	var u *point
	if u, p.gp, p.yp, err = ic.points(); err != nil {
		return nil, err
	}
	p.c = challengeDigest(x.AccountID, x.SN, x.E, x.R, x.RPrime, x.H2)
	if !verifyDigest(u, p.c, x.SigChal) {
		return nil, ErrChallengeSignature
	}
	return &p, nil
}

// ExecESInstruction authenticates one instruction on the provider side
// (reference §3.4) with exactly one call of d, the ECDH of the unit's key
// aU, on the challenge key E. Errors wrapping ErrAuthentication come after
// that call and count as PIN failures; perimeter errors (CheckPerimeter)
// and errors of d do not. The caller checks the lock before, consumes the
// serial number after any outcome past the perimeter, resets the counter on
// success, executes Executed.Instruction and signs the record (NewTRecord).
//
// Every value the checks after the derive combine is public to the
// provider (the seed is in the plaintext it decrypted); what they cost is
// in docs/benchmarks.md, "SECDSA server": the points and the challenge
// digest of the perimeter are not computed twice, and d₁·G comes from the
// generator's precomputed table.
func ExecESInstruction(ic *InternalCert, x *EncSignedInstruction, lastSN uint64, d DeriveFunc) (*Executed, error) {
	p, err := checkPerimeter(ic, x, lastSN)
	if err != nil {
		return nil, err
	}
	z, err := derive(d, p.e) // the one HSM call
	if err != nil {
		return nil, err
	}
	fail := func(what string) error { return fmt.Errorf("%w: %s", ErrAuthentication, what) }
	aead, err := instructionAEAD(z)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, x.IV, x.Ciphertext, p.c)
	if err != nil {
		return nil, fail("decryption")
	}
	f, err := unframe(pt, labelPlaintext, seedSize, -1, -1, PointSize, PointSize, ProofSize)
	if err != nil {
		return nil, fail("plaintext")
	}
	d1, d2, err := challengeScalars(f[0])
	if err != nil {
		return nil, err
	}
	defer wipe(d1)
	defer wipe(d2)
	wantE, err := linG(d1, d2, p.r)
	if err != nil || !equal(wantE, p.e) {
		return nil, fail("challenge key")
	}
	wantZ, err := lin(d1, p.gp, d2, p.rp)
	if err != nil || subtle.ConstantTimeCompare(xOf(wantZ), z) != 1 {
		return nil, fail("challenge response")
	}
	h1, h2 := challengeHashes(d1, d2)
	if subtle.ConstantTimeCompare(h2, x.H2) != 1 {
		return nil, fail("challenge hash")
	}
	ex := &Executed{Envelope: x, Instruction: clone(f[1]), Additional: clone(f[2]), GPP: clone(f[3]), YPP: clone(f[4]),
		Proof: clone(f[5]), H1: h1}
	if err := checkSignature(p.gp, p.yp, x.AccountID, x.SN, ex.Instruction, ex.Additional, p.r, p.rp, ex.GPP, ex.YPP, ex.Proof); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuthentication, err)
	}
	return ex, nil
}

// checkSignature is the blinded SECDSA verification (reference §2.5): π
// shows G” and Y” are one multiple w of G' and Y', and R' = e·G” + r·Y”
// (with R' = aU·R, shown by the challenge, this holds exactly when the
// wallet held a valid ECDSA signature (r, w⁻¹) on M under Y).
func checkSignature(gp, yp *point, accountID []byte, sn uint64, ins, ad []byte, rPoint, rp *point, gppB, yppB, proof []byte) error {
	gpp, err := ParsePoint(gppB)
	if err != nil {
		return fmt.Errorf("blinded G'': %w", err)
	}
	ypp, err := ParsePoint(yppB)
	if err != nil {
		return fmt.Errorf("blinded Y'': %w", err)
	}
	md := digest(message(accountID, sn, ins, ad))
	if err := dleqVerify(labelDLEQBlind, []*point{gp, yp}, []*point{gpp, ypp}, md, proof); err != nil {
		return err
	}
	r := rOf(rPoint)
	if isZero(r) {
		return fmt.Errorf("%w: r is zero", ErrProof)
	}
	want, err := lin(hashToScalar(md), gpp, r, ypp)
	if err != nil || !equal(want, rp) {
		return fmt.Errorf("%w: R' is not e·G'' + r·Y''", ErrProof)
	}
	return nil
}
