package logverify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wsca/wsca/evidence/logverify"
)

// testSigner signs type-0x02 notes with a software key.
type testSigner struct {
	name string
	key  *ecdsa.PrivateKey
}

func (s testSigner) Name() string { return s.name }
func (s testSigner) KeyHash() uint32 {
	spki, _ := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	return logverify.KeyHash(spki)
}
func (s testSigner) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.key, d[:])
}

// memTree is an in-memory tlog.
type memTree struct{ hashes []tlog.Hash }

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) add(t *testing.T, n int64, leaf []byte) {
	hs, err := tlog.StoredHashes(n, leaf, m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
}

func fixture(t *testing.T, n int) (testSigner, *logverify.Verifier, *memTree, [][]byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := testSigner{name: "log.example/evidence", key: k}
	vkey, err := logverify.VerifierKey(s.name, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := logverify.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != s.KeyHash() {
		t.Fatal("key hash differs")
	}
	m := &memTree{}
	var leaves [][]byte
	for i := range n {
		leaf := fmt.Appendf(nil, "leaf %d", i)
		m.add(t, int64(i), leaf)
		leaves = append(leaves, leaf)
	}
	return s, v, m, leaves
}

func signed(t *testing.T, s note.Signer, c logverify.Checkpoint) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: string(c.Text())}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestCheckpointRoundTrip(t *testing.T) {
	s, v, m, _ := fixture(t, 7)
	root, _ := tlog.TreeHash(7, m)
	c := logverify.Checkpoint{Origin: s.name, Size: 7, Root: root}
	got, err := logverify.OpenCheckpoint(signed(t, s, c), v)
	if err != nil || got != c {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
}

// TestCheckpointFieldChanged: changing any single field of a signed
// checkpoint (origin, size, root, key name, key hash, signature) fails.
func TestCheckpointFieldChanged(t *testing.T) {
	s, v, m, _ := fixture(t, 7)
	root, _ := tlog.TreeHash(7, m)
	good := string(signed(t, s, logverify.Checkpoint{Origin: s.name, Size: 7, Root: root}))
	lines := strings.Split(good, "\n") // origin, size, root, "", sig line, ""
	sigLine := lines[4]
	name, b64, _ := strings.Cut(strings.TrimPrefix(sigLine, "— "), " ")
	sig, _ := base64.StdEncoding.DecodeString(b64)
	flip := func(b []byte, i int) string {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return base64.StdEncoding.EncodeToString(c)
	}
	otherRoot := root
	otherRoot[0] ^= 1
	for _, tc := range []struct {
		name string
		msg  string
		want error
	}{
		{"origin", strings.Replace(good, s.name+"\n", "log.example/other\n", 1), logverify.ErrSignature},
		{"size", strings.Replace(good, "\n7\n", "\n8\n", 1), logverify.ErrSignature},
		{"root", strings.Replace(good, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(otherRoot[:]), 1), logverify.ErrSignature},
		{"key name", strings.Replace(good, "— "+name, "— other.example/evidence", 1), logverify.ErrSignature},
		{"key hash", strings.Replace(good, b64, flip(sig, 0), 1), logverify.ErrSignature},
		{"signature", strings.Replace(good, b64, flip(sig, len(sig)-1), 1), logverify.ErrSignature},
		{"extension line", strings.Replace(good, "\n\n", "\nextra\n\n", 1), logverify.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.msg == good {
				t.Fatal("no change")
			}
			if _, err := logverify.OpenCheckpoint([]byte(tc.msg), v); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCheckpointSignedWrongText: a correctly signed note whose text is not
// a checkpoint of the key's origin is refused.
func TestCheckpointSignedWrongText(t *testing.T) {
	s, v, _, _ := fixture(t, 1)
	for _, text := range []string{
		"other.example/log\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		s.name + "\n01\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		s.name + "\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n",
		s.name + "\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\next\n",
	} {
		msg, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := logverify.OpenCheckpoint(msg, v); err == nil {
			t.Errorf("accepted %q", text)
		}
	}
}

func TestInclusionAndConsistency(t *testing.T) {
	const n = 13
	s, _, m, leaves := fixture(t, n)
	roots := make([]tlog.Hash, n+1)
	for i := int64(1); i <= n; i++ {
		roots[i], _ = tlog.TreeHash(i, m)
	}
	cp := func(size int64) logverify.Checkpoint {
		return logverify.Checkpoint{Origin: s.name, Size: size, Root: roots[size]}
	}
	raw := func(hs []tlog.Hash) [][]byte {
		out := make([][]byte, len(hs))
		for i := range hs {
			out[i] = hs[i][:]
		}
		return out
	}
	for size := int64(1); size <= n; size++ {
		for i := range size {
			p, err := tlog.ProveRecord(size, i, m)
			if err != nil {
				t.Fatal(err)
			}
			proof := logverify.InclusionProof{Index: i, Size: size, Hashes: raw(p)}
			if err := logverify.VerifyInclusion(cp(size), leaves[i], proof); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
			// Another leaf, another index, a changed hash: refused.
			if err := logverify.VerifyInclusion(cp(size), append(leaves[i], 'x'), proof); !errors.Is(err, logverify.ErrInclusion) {
				t.Fatalf("changed leaf: %v", err)
			}
			if size > 1 {
				wrong := proof
				wrong.Index = (i + 1) % size
				if err := logverify.VerifyInclusion(cp(size), leaves[i], wrong); !errors.Is(err, logverify.ErrInclusion) {
					t.Fatalf("wrong index: %v", err)
				}
				bad := logverify.InclusionProof{Index: i, Size: size, Hashes: raw(p)}
				bad.Hashes[0] = append([]byte(nil), bad.Hashes[0]...)
				bad.Hashes[0][0] ^= 1
				if err := logverify.VerifyInclusion(cp(size), leaves[i], bad); !errors.Is(err, logverify.ErrInclusion) {
					t.Fatalf("changed proof: %v", err)
				}
			}
		}
		for old := int64(1); old <= size; old++ {
			p, err := tlog.ProveTree(size, old, m)
			if err != nil {
				t.Fatal(err)
			}
			proof := logverify.ConsistencyProof{Old: old, New: size, Hashes: raw(p)}
			if err := logverify.VerifyConsistency(cp(old), cp(size), proof); err != nil {
				t.Fatalf("consistency %d→%d: %v", old, size, err)
			}
			forked := cp(old)
			forked.Root[0] ^= 1
			if err := logverify.VerifyConsistency(forked, cp(size), proof); !errors.Is(err, logverify.ErrConsistency) {
				t.Fatalf("forked old root %d→%d: %v", old, size, err)
			}
		}
	}
	// A proof for other sizes, a shrinking log, other origins: refused.
	p, _ := tlog.ProveTree(9, 4, m)
	for _, tc := range []struct {
		name     string
		old, new logverify.Checkpoint
		proof    logverify.ConsistencyProof
	}{
		{"sizes", cp(4), cp(9), logverify.ConsistencyProof{Old: 5, New: 9, Hashes: raw(p)}},
		{"shrank", cp(9), cp(4), logverify.ConsistencyProof{Old: 9, New: 4, Hashes: raw(p)}},
		{"origin", cp(4), logverify.Checkpoint{Origin: "x.example/log", Size: 9, Root: roots[9]}, logverify.ConsistencyProof{Old: 4, New: 9, Hashes: raw(p)}},
		{"hash size", cp(4), cp(9), logverify.ConsistencyProof{Old: 4, New: 9, Hashes: [][]byte{{1}}}},
	} {
		if err := logverify.VerifyConsistency(tc.old, tc.new, tc.proof); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := logverify.VerifyInclusion(cp(5), leaves[1], logverify.InclusionProof{Index: 1, Size: 6}); !errors.Is(err, logverify.ErrInclusion) {
		t.Errorf("proof of another size: %v", err)
	}
}

func TestVerifierKey(t *testing.T) {
	_, v, _, _ := fixture(t, 1)
	good, err := logverify.VerifierKey(v.Name(), v.Public())
	if err != nil {
		t.Fatal(err)
	}
	name, rest, _ := strings.Cut(good, "+")
	hash, key, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(key)
	other := append([]byte(nil), raw...)
	other[0] = 0x01
	// A key whose hash has a letter, so that its upper case differs (a
	// hash of digits only, about 1 key in 40, would make the row valid).
	upper := ""
	for upper == "" {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		vk, err := logverify.VerifierKey(name, &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		n, r, _ := strings.Cut(vk, "+")
		h, kk, _ := strings.Cut(r, "+")
		if u := strings.ToUpper(h); u != h {
			upper = n + "+" + u + "+" + kk
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	spki384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for _, bad := range []string{
		"", name, name + "+" + hash,
		"a b+" + hash + "+" + key,
		upper,
		name + "+00000000+" + key,
		name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(other),
		name + "+" + fmt.Sprintf("%08x", logverify.KeyHash(spki384)) + "+" + base64.StdEncoding.EncodeToString(append([]byte{2}, spki384...)),
	} {
		if _, err := logverify.NewVerifier(bad); !errors.Is(err, logverify.ErrMalformed) {
			t.Errorf("NewVerifier(%q) = %v", bad, err)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("log.example/evidence\n7\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"))
	f.Add([]byte("a\n0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := logverify.ParseCheckpoint(b)
		if err != nil {
			return
		}
		if string(c.Text()) != string(b) {
			t.Fatalf("not canonical: %q → %q", b, c.Text())
		}
	})
}

func FuzzNewVerifier(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vkey, _ := logverify.VerifierKey("log.example/evidence", &k.PublicKey)
	f.Add(vkey)
	f.Add("a+00000000+AA==")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := logverify.NewVerifier(s)
		if err != nil {
			return
		}
		again, err := logverify.VerifierKey(v.Name(), v.Public())
		if err != nil || again != strings.TrimSpace(s) {
			t.Fatalf("%q → %q, %v", s, again, err)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := testSigner{name: "log.example/evidence", key: k}
	vkey, _ := logverify.VerifierKey(s.name, &k.PublicKey)
	v, _ := logverify.NewVerifier(vkey)
	msg, _ := note.Sign(&note.Note{Text: string(logverify.Checkpoint{Origin: s.name, Size: 3}.Text())}, s)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := logverify.OpenCheckpoint(b, v)
		if err == nil && c.Origin != s.name {
			t.Fatalf("origin %q", c.Origin)
		}
	})
}
