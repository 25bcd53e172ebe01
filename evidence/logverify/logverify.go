// Package logverify verifies wsca's evidence log with no server and no
// secret (docs/evidence.md): the signature of a checkpoint (a C2SP
// tlog-checkpoint in a signed note, signature type 0x02: ECDSA P-256 over
// SHA-256 of the note text), the inclusion of a leaf and the consistency of
// two checkpoints (RFC 6962 hashing, golang.org/x/mod/sumdb/tlog).
//
// It is wallet side: no server package, no cgo, builds for js/wasm.
package logverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors of verification. Each comes wrapped with its cause.
var (
	// ErrMalformed: the input is not a checkpoint, key or proof.
	ErrMalformed = errors.New("logverify: malformed input")
	// ErrSignature: the checkpoint is not signed by the key.
	ErrSignature = errors.New("logverify: checkpoint signature does not verify")
	// ErrInclusion: the leaf is not in the checkpoint's tree at that index.
	ErrInclusion = errors.New("logverify: inclusion proof does not verify")
	// ErrConsistency: the newer checkpoint's tree does not extend the
	// older one's (a rewritten or truncated log, or a fork).
	ErrConsistency = errors.New("logverify: consistency proof does not verify")
)

// SigTypeECDSA is the C2SP signed-note signature type of the checkpoints:
// 0x02, "ECDSA signatures as implemented by
// github.com/transparency-dev/witness" (c2sp.org/signed-note).
const SigTypeECDSA = 0x02

// MaxNoteSize bounds a signed checkpoint this package reads.
const MaxNoteSize = 8 << 10

// MaxProofHashes bounds a proof's hashes: 2×63 covers any tree of up to
// 2^63 leaves.
const MaxProofHashes = 126

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, the
// tree size and the root hash. wsca's checkpoints carry no extension lines.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text returns the checkpoint's note text.
func (c Checkpoint) Text() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint reads a checkpoint's note text. It accepts exactly what
// Text makes, and refuses extension lines.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > MaxNoteSize || !utf8.Valid(text) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint text", ErrMalformed)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: a checkpoint is three lines", ErrMalformed)
	}
	c := Checkpoint{Origin: lines[0]}
	if err := checkName(c.Origin); err != nil {
		return Checkpoint{}, err
	}
	size, err := parseIndex(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint size", ErrMalformed)
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root hash", ErrMalformed)
	}
	copy(c.Root[:], root)
	return c, nil
}

// parseIndex reads a non-negative decimal without sign or leading zeros.
func parseIndex(s string) (int64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q is not a decimal index", ErrMalformed, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a decimal index", ErrMalformed, s)
	}
	return n, nil
}

// ParseIndex reads an index or size as the log writes it: a non-negative
// decimal without sign or leading zeros, at most 19 digits.
func ParseIndex(s string) (int64, error) { return parseIndex(s) }

// checkName checks a key name / origin: non-empty, printable, no space
// or '+' (c2sp.org/signed-note).
func checkName(name string) error {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) || strings.ContainsAny(name, "+") {
		return fmt.Errorf("%w: name %q", ErrMalformed, name)
	}
	for _, r := range name {
		if r <= 0x20 || r == 0x7f || r == 0x85 || r == 0xa0 || (r >= 0x2000 && r <= 0x200a) || r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000 || r == 0x1680 {
			return fmt.Errorf("%w: name %q", ErrMalformed, name)
		}
	}
	return nil
}

// KeyHash is the key ID of a type-0x02 key: the first four bytes,
// big-endian, of SHA-256 of the DER SubjectPublicKeyInfo.
func KeyHash(spki []byte) uint32 {
	h := sha256.Sum256(spki)
	return binary.BigEndian.Uint32(h[:4])
}

// VerifierKey returns the verifier key of a P-256 checkpoint key under a
// name (the log's origin): name+hex(key hash)+base64(0x02 ‖ DER SPKI).
func VerifierKey(name string, pub *ecdsa.PublicKey) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: not a P-256 key", ErrMalformed)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fmt.Sprintf("%s+%08x+%s", name, KeyHash(spki), base64.StdEncoding.EncodeToString(append([]byte{SigTypeECDSA}, spki...))), nil
}

// Verifier is a note.Verifier of type-0x02 signatures by one P-256 key.
type Verifier struct {
	name string
	hash uint32
	pub  *ecdsa.PublicKey
}

var _ note.Verifier = (*Verifier)(nil)

// NewVerifier reads a verifier key (VerifierKey's form). It accepts P-256
// keys only.
func NewVerifier(vkey string) (*Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: verifier key is name+hash+key", ErrMalformed)
	}
	name, hashHex, key := parts[0], parts[1], parts[2]
	if err := checkName(name); err != nil {
		return nil, err
	}
	if len(hashHex) != 8 || strings.ToLower(hashHex) != hashHex {
		return nil, fmt.Errorf("%w: verifier key hash", ErrMalformed)
	}
	h, err := strconv.ParseUint(hashHex, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key hash", ErrMalformed)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key)
	if err != nil || len(raw) < 2 || raw[0] != SigTypeECDSA {
		return nil, fmt.Errorf("%w: verifier key is not a type-0x02 key", ErrMalformed)
	}
	spki := raw[1:]
	if uint32(h) != KeyHash(spki) {
		return nil, fmt.Errorf("%w: verifier key hash does not match the key", ErrMalformed)
	}
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrMalformed, err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: verifier key is not P-256", ErrMalformed)
	}
	// The key must be in its one DER form, so a key has one verifier key.
	if again, err := x509.MarshalPKIXPublicKey(pub); err != nil || !bytes.Equal(again, spki) {
		return nil, fmt.Errorf("%w: verifier key is not canonical DER", ErrMalformed)
	}
	return &Verifier{name: name, hash: uint32(h), pub: pub}, nil
}

// Name is the key's name (the log's origin).
func (v *Verifier) Name() string { return v.name }

// KeyHash is the key's ID.
func (v *Verifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is an ASN.1 ECDSA signature of SHA-256(msg).
func (v *Verifier) Verify(msg, sig []byte) bool {
	d := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.pub, d[:], sig)
}

// Public is the key.
func (v *Verifier) Public() *ecdsa.PublicKey { return v.pub }

// OpenCheckpoint verifies a signed checkpoint against v and returns its
// body. The checkpoint's origin must be v's name.
func OpenCheckpoint(signed []byte, v *Verifier) (Checkpoint, error) {
	if len(signed) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("%w: note of %d bytes", ErrMalformed, len(signed))
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var invalid *note.InvalidSignatureError
		var none *note.UnverifiedNoteError
		if errors.As(err, &invalid) || errors.As(err, &none) {
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q is not the key's name %q", ErrSignature, c.Origin, v.Name())
	}
	return c, nil
}

// InclusionProof proves that the leaf at Index is in the tree of Size
// leaves (GET /evidence/proof/inclusion). Hashes are base64 in JSON.
type InclusionProof struct {
	Index  int64    `json:"index"`
	Size   int64    `json:"size"`
	Hashes [][]byte `json:"hashes"`
}

// ConsistencyProof proves that the tree of New leaves extends the tree of
// Old leaves (GET /evidence/proof/consistency).
type ConsistencyProof struct {
	Old    int64    `json:"old"`
	New    int64    `json:"new"`
	Hashes [][]byte `json:"hashes"`
}

func hashes(in [][]byte) ([]tlog.Hash, error) {
	if len(in) > MaxProofHashes {
		return nil, fmt.Errorf("%w: %d proof hashes", ErrMalformed, len(in))
	}
	out := make([]tlog.Hash, len(in))
	for i, h := range in {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%w: proof hash of %d bytes", ErrMalformed, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// VerifyInclusion checks that leaf is the leaf at p.Index of the tree c
// signs; p must be for c's size.
func VerifyInclusion(c Checkpoint, leaf []byte, p InclusionProof) error {
	if p.Size != c.Size {
		return fmt.Errorf("%w: proof for size %d, checkpoint of size %d", ErrInclusion, p.Size, c.Size)
	}
	if p.Index < 0 || p.Index >= c.Size {
		return fmt.Errorf("%w: index %d outside the tree of %d", ErrInclusion, p.Index, c.Size)
	}
	hs, err := hashes(p.Hashes)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(hs, c.Size, c.Root, p.Index, tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("%w: %v", ErrInclusion, err)
	}
	return nil
}

// VerifyConsistency checks that newer's tree extends older's: same
// origin, not smaller, and the proof links the two roots.
func VerifyConsistency(older, newer Checkpoint, p ConsistencyProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: origins %q and %q", ErrConsistency, older.Origin, newer.Origin)
	}
	if p.Old != older.Size || p.New != newer.Size {
		return fmt.Errorf("%w: proof for sizes %d→%d, checkpoints %d→%d", ErrConsistency, p.Old, p.New, older.Size, newer.Size)
	}
	if older.Size > newer.Size {
		return fmt.Errorf("%w: the log shrank from %d to %d", ErrConsistency, older.Size, newer.Size)
	}
	hs, err := hashes(p.Hashes)
	if err != nil {
		return err
	}
	if older.Size == 0 {
		if len(hs) != 0 {
			return fmt.Errorf("%w: proof from the empty tree has hashes", ErrConsistency)
		}
		return nil
	}
	if err := tlog.CheckTree(hs, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrConsistency, err)
	}
	return nil
}
